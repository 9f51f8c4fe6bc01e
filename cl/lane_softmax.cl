// One online-softmax step on vectors of 16 lanes whose rows are runs of `width` lanes: width 1,
// one query per lane (cl/grid_regions.cl, cl/attention_lanes.cl), or width 8, two queries of 8
// lanes each (cl/grid_pairs.cl). Compiled after common.cl and attention_cpu.cl (for
// exp2_nonpositive).

// Within each run of `width` lanes (1 or 8), every lane gets the run's max, sum or OR.
#define RUN_SWAP4 (uint16)(4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11)
#define RUN_SWAP2 (uint16)(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13)
#define RUN_SWAP1 (uint16)(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14)
inline float16 run_max(float16 x, int width)
{
    if (width == 8) {
        x = max(x, shuffle(x, RUN_SWAP4));
        x = max(x, shuffle(x, RUN_SWAP2));
        x = max(x, shuffle(x, RUN_SWAP1));
    }
    return x;
}

inline float16 run_sum(float16 x, int width)
{
    if (width == 8) {
        x += shuffle(x, RUN_SWAP4);
        x += shuffle(x, RUN_SWAP2);
        x += shuffle(x, RUN_SWAP1);
    }
    return x;
}

inline int16 run_any(int16 x, int width)
{
    if (width == 8) {
        x |= shuffle(x, RUN_SWAP4);
        x |= shuffle(x, RUN_SWAP2);
        x |= shuffle(x, RUN_SWAP1);
    }
    return x;
}

// The step over the scores sc[0, n) (masked keys at -inf) of rows whose running max and sum are
// *m and *l (each lane holding its row's): the scores become weights and the factor alpha by
// which the rows' accumulators are rescaled is returned. `seen`: the lanes that see at least one
// of the n keys. Once the maxima, sums and `seen` are taken per row, everything is lane-wise, as
// in common.cl's row rule: a row whose max is still -inf keeps alpha = 1 and weights 0 (or NaN,
// for a NaN logit), and its sum turns -0 once it has seen a key. Always inlined: POCL called it
// from grid_pairs.cl, its scores passed through memory (neighborhood and Swin 1-3% faster inlined).
inline __attribute__((always_inline)) float16 lane_softmax(float16 *m, float16 *l, float16 *sc, int16 seen, int n,
                                                           int width)
{
    // max, not fmax (as in attention_cpu.cl's chunk_softmax): a NaN logit makes its row NaN
    // whether the max skips it (through exp2 and the sum) or takes it (through every weight),
    // and max skips fmax's NaN tests, four instructions per vector on AVX-512.
    float16 mx = (float16)(-INFINITY);
    for (int j = 0; j < n; j++)
        mx = max(mx, sc[j]);
    const float16 mnew = max(*m, run_max(mx, width));
    const int16 none = mnew == (float16)(-INFINITY);
    const float16 base = select(mnew, (float16)(0.0f), none);
    const float16 shift = select(*m - mnew, (float16)(0.0f), none);
    const float16 alpha = select(exp2_nonpositive(shift), (float16)(1.0f), shift == (float16)(0.0f));
    float16 sum = (float16)(0.0f);
    for (int j = 0; j < n; j++) {
        sc[j] = exp2_nonpositive(sc[j] - base);
        sum += sc[j];
    }
    sum = run_sum(sum, width);
    const float16 kept = select(*l, copysign(*l, (float16)(-1.0f)), run_any(seen, width));
    *l = select(*l * alpha + sum, select(kept, sum, isnan(sum)), none);
    *m = mnew;
    return alpha;
}
