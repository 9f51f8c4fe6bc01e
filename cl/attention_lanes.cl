// The CPU variant's kernel for narrow bands (sliding windows) over float32 tensors, compiled after
// common.cl, attention_cpu.cl (exp2_nonpositive, PRIV, tile_row) and lane_softmax.cl: a tile's 16
// query rows lie in the 16 lanes of a vector, and K and V are read as the caller stores them.
//
// Why. attention_cpu.cl's `attention` puts keys in lanes, so K must first be packed into panels
// (pack_keys.cl), a pass bound by memory that dense attention spreads over every query but a
// narrow band does not, and its score passes round a tile's band up to whole 16- or 32-key
// vectors. Here Q is transposed instead, once per tile: a key's element d, broadcast, times Q's
// dimension d (16 rows) advances the 16 rows' scores against that key, so a tile computes exactly
// the keys its band meets (its rows' band, 15 keys wider than one row's), and the keys need no
// pass of their own. The online softmax is lane-wise (lane_softmax.cl). P.V adds each key's value
// row, as stored, into the 16 rows' accumulators, its weights broadcast.
#define LK 16    // keys per score pass: one accumulator vector each
#define LSTEP 32 // keys per online-softmax step (two score passes; 64 measured the same)
#define LDVP ((DV + 15) / 16 * 16)

#if CLATTN_DTYPE != 0
#error "attention_lanes.cl reads float32 K and V"
#endif

// A tile: its rows' Q transposed and scaled (qt[d], lane r: row r's element d), their positions,
// and the lanes' softmax state and accumulators.
typedef struct {
    float qt[D][16] __attribute__((aligned(64)));
    float acc[16][LDVP] __attribute__((aligned(64)));
    int pos[16] __attribute__((aligned(64)));
    float16 m, l;
    int pmin, pmax;
    bool first; // no P.V step yet: the accumulators hold nothing
} lane_tile;

// The tile's rows (slots first_slot .. + 15 of the launch; a short last tile repeats its last
// row), Q transposed.
inline void start_lane_tile(lane_tile *t, __global const float *q, __global const int *rows, int use_rows, int bh,
                            int nq, int nk, int first_slot, int num_rows, float qscale)
{
    size_t qoff[16];
    t->pmin = INT_MAX;
    t->pmax = INT_MIN;
    for (int r = 0; r < 16; r++) {
        const int i = tile_row(rows, use_rows, min(first_slot + r, num_rows - 1));
        t->pos[r] = i + nk - nq;
        t->pmin = min(t->pmin, t->pos[r]);
        t->pmax = max(t->pmax, t->pos[r]);
        qoff[r] = ((size_t)bh * nq + i) * D;
    }
    // 4 x 4 blocks: 4 rows' 4 elements loaded as vectors, written as 4 dimensions' 4 lanes. One
    // element at a time took 2-6% longer, and a 16 x 16 transpose in registers as long as that.
    int d0 = 0;
    for (; d0 + 4 <= D; d0 += 4)
        for (int r = 0; r < 16; r += 4) {
            const float4 a = vload4(0, q + qoff[r] + d0) * qscale, b = vload4(0, q + qoff[r + 1] + d0) * qscale;
            const float4 c = vload4(0, q + qoff[r + 2] + d0) * qscale, e = vload4(0, q + qoff[r + 3] + d0) * qscale;
            *(float4 *)&t->qt[d0][r] = (float4)(a.s0, b.s0, c.s0, e.s0);
            *(float4 *)&t->qt[d0 + 1][r] = (float4)(a.s1, b.s1, c.s1, e.s1);
            *(float4 *)&t->qt[d0 + 2][r] = (float4)(a.s2, b.s2, c.s2, e.s2);
            *(float4 *)&t->qt[d0 + 3][r] = (float4)(a.s3, b.s3, c.s3, e.s3);
        }
    for (int d = d0; d < D; d++)
        for (int r = 0; r < 16; r++)
            t->qt[d][r] = q[qoff[r] + d] * qscale;
    t->m = (float16)(-INFINITY);
    t->l = (float16)(0.0f);
    t->first = true;
}

// Scores of the tile's rows against n <= LK keys whose rows start at `keys` (row-major, D floats
// apart): s[k], lane r, is row r against key k. Each key's element d is broadcast from memory into
// a multiply-add with Q's dimension d. Keys past n repeat key n - 1 (masked by the caller).
inline __attribute__((always_inline)) void lane_scores(float16 *s, const lane_tile *t, __global const float *keys,
                                                       int n)
{
    float16 a[LK];
#pragma unroll
    for (int k = 0; k < LK; k++)
        a[k] = (float16)(0.0f);
    // Two copies of the loop: in the first the keys lie at constant offsets from `keys` (a memory
    // operand of each multiply-add). One loop through an inlined helper with the case as a constant
    // argument took 17% longer at window ±64 on POCL.
    if (n == LK) {
        for (int d = 0; d < D; d++) {
            const float16 qd = PRIV(float16, t->qt[d], 0);
#pragma unroll
            for (int k = 0; k < LK; k++)
                a[k] = fma(qd, (float16)(keys[k * D + d]), a[k]);
        }
    } else {
        for (int d = 0; d < D; d++) {
            const float16 qd = PRIV(float16, t->qt[d], 0);
#pragma unroll
            for (int k = 0; k < LK; k++)
                a[k] = fma(qd, (float16)(keys[min(k, n - 1) * D + d]), a[k]);
        }
    }
#pragma unroll
    for (int k = 0; k < LK; k++)
        s[k] = a[k];
}

// acc = alpha * acc + P.V over the step's n keys (weights p[k], lane r row r's; value rows from
// `vals`, DV floats apart), 4 rows by 4 column vectors at a time: a key's 4 value vectors, loaded
// once, feed 16 multiply-adds with the 4 rows' weights broadcast. `masked`: each key adds its value
// row only to the rows whose ok[k] lane holds it, through a select, so that a NaN or inf planted in
// a value reaches only the rows that see it (lane_step takes this path only for such values).
inline __attribute__((always_inline)) void lane_values(lane_tile *t, const float16 *p, float16 alpha,
                                                       __global const float *vals, int n, const int16 *ok,
                                                       const bool masked)
{
    float al[16] __attribute__((aligned(64)));
    PRIV(float16, al, 0) = alpha;
    for (int c = 0; c < DV / 16; c += 4) {
        const int nb = min(4, DV / 16 - c);
        for (int g = 0; g < 16; g += 4) {
            float16 a[4][4];
#pragma unroll
            for (int r = 0; r < 4; r++)
#pragma unroll
                for (int b = 0; b < 4; b++)
                    if (b < nb)
                        a[r][b] = t->first ? (float16)(0.0f) : PRIV(float16, t->acc[g + r], c + b) * al[g + r];
            for (int k = 0; k < n; k++) {
                float16 v[4];
#pragma unroll
                for (int b = 0; b < 4; b++)
                    if (b < nb)
                        v[b] = *(__global const float16_unaligned *)(vals + (size_t)k * DV + 16 * (c + b));
                const float *pk = (const float *)(p + k) + g;
                const int *okk = (const int *)(ok + k) + g;
                if (masked) {
#pragma unroll
                    for (int r = 0; r < 4; r++) {
                        const float16 w = (float16)(pk[r]);
                        const int16 m = (int16)(okk[r]);
#pragma unroll
                        for (int b = 0; b < 4; b++)
                            if (b < nb)
                                a[r][b] = select(a[r][b], fma(w, v[b], a[r][b]), m);
                    }
                } else {
#pragma unroll
                    for (int r = 0; r < 4; r++) {
                        const float16 w = (float16)(pk[r]);
#pragma unroll
                        for (int b = 0; b < 4; b++)
                            if (b < nb)
                                a[r][b] = fma(w, v[b], a[r][b]);
                    }
                }
            }
#pragma unroll
            for (int r = 0; r < 4; r++)
#pragma unroll
                for (int b = 0; b < 4; b++)
                    if (b < nb)
                        PRIV(float16, t->acc[g + r], c + b) = a[r][b];
        }
    }
    for (int c = DV / 16 * 16; c < DV; c++) // the last DV % 16 columns, one at a time
        for (int r = 0; r < 16; r++) {
            float a = t->first ? 0.0f : t->acc[r][c] * al[r];
            for (int k = 0; k < n; k++)
                if (!masked || ((const int *)(ok + k))[r])
                    a = fma(((const float *)(p + k))[r], vals[(size_t)k * DV + c], a);
            t->acc[r][c] = a;
        }
    t->first = false;
}

// Whether the n value rows from `vals` hold only finite values: then the rows that do not see
// some of their keys may add them too, with their weight of exactly 0 (a masked score is -inf), and
// P.V needs no per-row select. One test for the step's keys: v * 0 (NaN where v is inf or NaN)
// summed into 8 sums, two keys by four column blocks. Into one sum, each multiply-add waited for
// the one before, and the test took 7% of window ±64's time (1-4% less with 8, Xeon, POCL).
inline bool values_finite(__global const float *vals, int n)
{
    float16 z[2][4];
#pragma unroll
    for (int h = 0; h < 2; h++)
#pragma unroll
        for (int i = 0; i < 4; i++)
            z[h][i] = (float16)(0.0f);
    float t = 0.0f;
    for (int k = 0; k < n; k += 2)
#pragma unroll
        for (int h = 0; h < 2; h++)
            if (k + h < n) {
                __global const float *row = vals + (size_t)(k + h) * DV;
#pragma unroll
                for (int c = 0; c + 16 <= DV; c += 16)
                    z[h][c / 16 % 4] = fma(*(__global const float16_unaligned *)(row + c), 0.0f, z[h][c / 16 % 4]);
                for (int c = DV / 16 * 16; c < DV; c++)
                    t = fma(row[c], 0.0f, t);
            }
    const float16 all = (z[0][0] + z[0][1]) + (z[0][2] + z[0][3]) + (z[1][0] + z[1][1]) + (z[1][2] + z[1][3]);
    return !any(isnan(all)) && !isnan(t);
}

// One step: the scores of n <= LSTEP keys (rows at `keys` and `vals`), their masks where
// `masked` (ok[k], lane r: whether row r sees key k; set by the caller), the online softmax and
// P.V.
inline void lane_step(lane_tile *t, __global const float *keys, __global const float *vals, int n, int16 *ok,
                      const bool masked)
{
    float16 sc[LSTEP];
    for (int k0 = 0; k0 < n; k0 += LK)
        lane_scores(sc + k0, t, keys + (size_t)k0 * D, min(LK, n - k0));
    int16 seen = (int16)(masked ? 0 : -1);
    if (masked)
        for (int k = 0; k < n; k++) {
            sc[k] = select((float16)(-INFINITY), sc[k], ok[k]);
            seen |= ok[k];
        }
    const float16 alpha = lane_softmax(&t->m, &t->l, sc, seen, n, 1);
    if (masked && !values_finite(vals, n))
        lane_values(t, sc, alpha, vals, n, ok, true);
    else
        lane_values(t, sc, alpha, vals, n, ok, false);
}

// The tile's band keys (row-major K and V of the kv head, kv_len keys valid), LSTEP at a time;
// masks only on steps with a key that some row does not see.
inline void lane_band(lane_tile *t, __global const float *kh, __global const float *vh, band_rule rule, int kv_len)
{
    const int lo = max(0, t->pmin - rule.left), hi = min(kv_len - 1, t->pmax + rule.right);
    const int16 pos = PRIV(int16, t->pos, 0);
    int16 ok[LSTEP];
    for (int j0 = lo; j0 <= hi; j0 += LSTEP) {
        const int n = min(LSTEP, hi + 1 - j0);
        if (!band_covers(rule, t->pmin, t->pmax, j0, j0 + n - 1)) {
            for (int k = 0; k < n; k++)
                ok[k] = band_mask((int16)(j0 + k) - pos, rule);
            lane_step(t, kh + (size_t)j0 * D, vh + (size_t)j0 * DV, n, ok, true);
        } else
            lane_step(t, kh + (size_t)j0 * D, vh + (size_t)j0 * DV, n, ok, false);
    }
}

// Side keys [side_begin, side_begin + side_count) (row-major float32 scratch), each with its own
// rule (common.cl's side_visible).
inline void lane_side(lane_tile *t, __global const float *side_kh, __global const float *side_vh,
                      __global const int *side_pos, band_rule rule, int n_global, int n_summary, int kv_len,
                      int side_begin, int side_count)
{
    int16 ok[LSTEP];
    for (int s0 = side_begin; s0 < side_begin + side_count; s0 += LSTEP) {
        const int n = min(LSTEP, side_begin + side_count - s0);
        for (int k = 0; k < n; k++) {
            int okr[16] __attribute__((aligned(64)));
            for (int r = 0; r < 16; r++)
                okr[r] = side_visible(rule, t->pos[r], s0 + k, side_pos[s0 + k], n_global, n_summary, kv_len) ? -1 : 0;
            ok[k] = PRIV(int16, okr, 0);
        }
        lane_step(t, side_kh + (size_t)s0 * D, side_vh + (size_t)s0 * DV, n, ok, true);
    }
}

CPU_VARIANT_KERNEL void attention_lanes(ATTENTION_ARGS(float))
{
    const int ntiles = (num_rows + 15) / 16;
    const int first = (int)get_global_id(0) * item_tiles;
    const int count = min(item_tiles, ntiles - first);
    const int bh = get_global_id(1);
    const int b = bh / heads;
    const size_t bhk = kv_head_of(bh, heads, kv_heads);
    const int kv_len = seq_lens[b];
    const band_rule rule = {left, right, dilation, causal};
    lane_tile t;
    for (int x = 0; x < count; x++) {
        const int tile = reverse_tiles ? ntiles - 1 - (first + x) : first + x;
        start_lane_tile(&t, q, rows, use_rows, bh, nq, nk, tile * 16, num_rows, qscale);
        lane_band(&t, k + bhk * nk * D, v + bhk * nk * DV, rule, kv_len);
        lane_side(&t, side_k + bhk * n_side * D, side_v + bhk * n_side * DV, side_pos + (size_t)b * n_side, rule,
                  n_global, n_summary, kv_len, side_begin, side_count);
        float ml[2][16] __attribute__((aligned(64)));
        PRIV(float16, ml[0], 0) = t.m;
        PRIV(float16, ml[1], 0) = t.l;
        for (int r = 0; r < 16 && tile * 16 + r < num_rows; r++) {
            const size_t row = (size_t)bh * nq + tile_row(rows, use_rows, tile * 16 + r);
            const bool padding = t.pos[r] >= kv_len;
            if (t.first) // no key at all: every row empty
                for (int c = 0; c < DV; c++)
                    t.acc[r][c] = 0.0f;
            write_row(out, lse, row, write_lse, t.acc[r], ml[0][r], padding ? 0.0f : ml[1][r]);
        }
    }
}
