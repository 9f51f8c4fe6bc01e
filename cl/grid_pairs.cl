// The CPU variant's neighborhood kernel, compiled after common.cl, attention_cpu.cl (for
// exp2_nonpositive and PRIV) and lane_softmax.cl: two neighbouring queries of a kernel row at a
// time, Q, K, V and O read and written as the caller stores them, nothing transposed or packed.
//
// Why. A 7 x 7 neighborhood's queries see 49 keys each, and the windows of two queries side by
// side, (r, c) and (r, c + 1), cover 8 columns of the same key rows: 14 of the 16 (query, key)
// pairs of a key row's 8 columns are ones the queries see. The two queries' rows are interleaved
// by 8 elements (a's in lanes 0-7, b's in 8-15), and each key's 8 elements are loaded into both
// halves of a vector, so one multiply-add advances both queries' dot products with that key: D/8
// of them per key into one accumulator, and 21 shuffles and adds turn the 8 accumulators into one
// vector of 16 scores, lanes 0-7 query a against the 8 keys, lanes 8-15 query b. (With a whole
// vector of 16 elements per key and query, the same multiply-adds filled 16 accumulators, whose
// reduction took 45 operations.) Softmax then runs on whole vectors, each half one query, and
// P.V adds each key's value row, as stored, into the one or two queries that see it: no key a
// query does not see is ever multiplied in.
//
// Kernel coordinates are host/grid.h's (a dilated axis listed group by group, so each window is
// an interval of kernel rows and one of kernel columns).
#define GROUP 8          // key columns per score vector: 2 queries x 8 keys
#define CHUNK 16         // score vectors per online-softmax step
#define D8 ((D + 7) / 8) // 8-element chunks of a row
#define DVP ((DV + 15) / 16 * 16)

// The arguments of `grid_pairs` (host/launch_grid.c sets them in this order).
// clang-format off
#define GRID_PAIRS_ARGS                                                                            \
    __global const elem_t *q,     /* [B, H, N, D], token order */                                  \
    __global const elem_t *k,     /* [B, Hkv, N, D], token order */                                \
    __global const elem_t *v,     /* [B, Hkv, N, DV], token order */                               \
    __global const int *axis,     /* host/grid.c's axis table */                                   \
    __global const int *seq_lens, /* [B] */                                                        \
    __global elem_t *out,         /* [B, H, N, DV] */                                              \
    __global float *lse,          /* [B, H, N] when write_lse */                                   \
    int heads, int kv_heads, int h, int w, int rows_per_item, int causal, float qscale,            \
    int write_lse
// clang-format on

// The running softmax of the two queries: lanes 0-7 hold query a's m and l, lanes 8-15 query b's
// (common.cl's row rule for l, lane-wise), and each query's accumulator.
typedef struct {
    float16 m, l;
    float acc[2][DVP] __attribute__((aligned(64)));
} pair_state;

// The 8 accumulators x[j] (lanes 0-7: partial sums of query a against key j, lanes 8-15 of query
// b) summed within each half: lane j of the result is a's score against key j, lane 8 + j b's.
// In-block shuffles halve the partial sums twice (4 + 2 pairs), then one pair of block shuffles
// adds each half's two blocks: 21 vector operations for the 16 dot products.
inline __attribute__((always_inline)) float16 reduce8(const float16 x[8])
{
    const uint16 even = (uint16)(0, 2, 16, 18, 4, 6, 20, 22, 8, 10, 24, 26, 12, 14, 28, 30);
    const uint16 odd = even + 1;
    float16 y[4], z[2];
#pragma unroll
    for (int i = 0; i < 4; i++)
        y[i] = shuffle2(x[2 * i], x[2 * i + 1], even) + shuffle2(x[2 * i], x[2 * i + 1], odd);
#pragma unroll
    for (int i = 0; i < 2; i++)
        z[i] = shuffle2(y[2 * i], y[2 * i + 1], even) + shuffle2(y[2 * i], y[2 * i + 1], odd);
    return shuffle2(z[0], z[1], (uint16)(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27)) +
           shuffle2(z[0], z[1], (uint16)(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31));
}

// a & b for lane masks of 0 and -1, as a select: Oclgrind (CI runs the kernels under it) made
// lanes of 1, not -1, of `&` between comparisons here, which every select then read as false.
inline int16 mask_and(int16 a, int16 b)
{
    return select((int16)(0), a, b);
}

// The 8-element chunks of a key row read as vectors: POCL's vload_half8 assumes 16-byte alignment,
// which float16 rows of a length that is not a multiple of 8 do not keep.
#define KEY_CHUNKS (CLATTN_DTYPE == 1 && D % 8 != 0 ? 0 : D / 8)

// Scores of the two queries against the 8 keys whose rows start at key[0..7]: lanes 0-7 query a,
// lanes 8-15 query b. qab[c] holds elements [8c, 8c + 8) of both queries' rows (widened, scaled,
// zero past D), a's in lanes 0-7 and b's in 8-15, so that one multiply-add of a key's 8 elements,
// loaded into both halves, serves both queries.
inline __attribute__((always_inline)) float16 pair_scores(const float16 qab[D8],
                                                          __global const elem_t *const key[GROUP])
{
    float16 x[GROUP];
#pragma unroll
    for (int j = 0; j < GROUP; j++)
        x[j] = (float16)(0.0f);
#pragma unroll
    for (int c = 0; c < KEY_CHUNKS; c++)
#pragma unroll
        for (int j = 0; j < GROUP; j++) {
            const float8 k8 = LOAD_8(0, key[j] + 8 * c);
            x[j] = c == 0 ? qab[0] * (float16)(k8, k8) : fma(qab[c], (float16)(k8, k8), x[j]);
        }
    for (int c = KEY_CHUNKS; c < D8; c++) // the rest, one element at a time (a row's end may be the buffer's)
#pragma unroll
        for (int j = 0; j < GROUP; j++) {
            float t[8] __attribute__((aligned(32)));
            for (int e = 0; e < 8; e++)
                t[e] = 8 * c + e < D ? LOAD_1(8 * c + e, key[j]) : 0.0f;
            const float8 k8 = PRIV(float8, t, 0);
            x[j] = fma(qab[c], (float16)(k8, k8), x[j]);
        }
    return reduce8(x);
}

// acc = alpha * acc + P.V over the chunk's n score vectors: weights p[j][lane], masks ok[j][lane]
// and the value rows val[j][key] of each vector's 8 keys. A key's value row is read once for the
// queries that see it, and only they add it (a NaN planted in a value no query sees stays out; a
// visible key whose weight is 0 still multiplies its value, as the reference does).
inline void pair_values(pair_state *st, const float p[CHUNK][16], const int ok[CHUNK][16],
                        __global const elem_t *const val[CHUNK][GROUP], float16 alpha, int n)
{
    const float alpha_a = alpha.s0, alpha_b = alpha.s8;
    int c = 0;
    for (; c + 16 <= DV; c += 64) {
        const int blocks = min(4, (DV - c) / 16);
        float16 oa[4], ob[4];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            oa[u] = u < blocks ? PRIV(float16, st->acc[0], c / 16 + u) * alpha_a : (float16)(0.0f);
            ob[u] = u < blocks ? PRIV(float16, st->acc[1], c / 16 + u) * alpha_b : (float16)(0.0f);
        }
        for (int j = 0; j < n; j++)
#pragma unroll
            for (int t = 0; t < GROUP; t++) {
                const int see_a = ok[j][t], see_b = ok[j][GROUP + t];
                if (!(see_a | see_b))
                    continue;
                float16 vv[4];
#pragma unroll
                for (int u = 0; u < 4; u++)
                    vv[u] = LOAD_16(0, val[j][t] + c + 16 * (u < blocks ? u : 0));
                if (see_a) {
                    const float16 pa = (float16)(p[j][t]);
#pragma unroll
                    for (int u = 0; u < 4; u++)
                        oa[u] = fma(pa, vv[u], oa[u]);
                }
                if (see_b) {
                    const float16 pb = (float16)(p[j][GROUP + t]);
#pragma unroll
                    for (int u = 0; u < 4; u++)
                        ob[u] = fma(pb, vv[u], ob[u]);
                }
            }
#pragma unroll
        for (int u = 0; u < 4; u++)
            if (u < blocks) {
                PRIV(float16, st->acc[0], c / 16 + u) = oa[u];
                PRIV(float16, st->acc[1], c / 16 + u) = ob[u];
            }
    }
    for (c = DV / 16 * 16; c < DV; c++) { // the last DV % 16 columns, one at a time
        float a = st->acc[0][c] * alpha_a, b = st->acc[1][c] * alpha_b;
        for (int j = 0; j < n; j++)
            for (int t = 0; t < GROUP; t++) {
                if (ok[j][t])
                    a = fma(p[j][t], LOAD_1(c, val[j][t]), a);
                if (ok[j][GROUP + t])
                    b = fma(p[j][GROUP + t], LOAD_1(c, val[j][t]), b);
            }
        st->acc[0][c] = a;
        st->acc[1][c] = b;
    }
}

// One query's output row (common.cl's row rule) and LSE: whole vectors of the row, or, for an
// empty row, common.cl's write_row, one element at a time (POCL compiles a 16-bit vstore of
// constant zeros to an aligned store, which faults where DV is odd).
inline void store_row(__global elem_t *out, __global float *lse, size_t row, const float *acc, float m, float l,
                      int write_lse)
{
    if (row_empty(l)) {
        write_row(out, lse, row, write_lse, acc, m, l);
        return;
    }
    const float inv = row_inverse(l);
    int c = 0;
    for (; c + 16 <= DV; c += 16)
        STORE_ROW16(PRIV(float16, acc, c / 16) * inv, out + row * DV + c);
    for (; c < DV; c++)
        STORE_1(acc[c] * inv, row * DV + c, out);
    if (write_lse)
        lse[row] = row_lse(m, l);
}

// The queries (r, c) and (r, c + 1) (kernel coordinates; the second only when c + 1 < w).
inline void pair_block(__global const elem_t *q, __global const elem_t *kh, __global const elem_t *vh,
                       __global elem_t *out, __global float *lse, __global const int *axis, int h, int w, int r, int c,
                       int kv_len, int causal, float qscale, int write_lse)
{
    __global const int *part = axis + h + w; // [lo_r H][n_r H][lo_c W][n_c W]
    const bool has_b = c + 1 < w;
    const int cb = has_b ? c + 1 : c;
    const int row_tok = axis[r] * w;
    const int tok_a = row_tok + axis[h + c], tok_b = row_tok + axis[h + cb];
    const int lo_a = part[2 * h + c], hi_a = lo_a + part[2 * h + w + c];
    const int lo_b = has_b ? part[2 * h + cb] : lo_a, hi_b = has_b ? lo_b + part[2 * h + w + cb] : lo_a;
    const int u0 = min(lo_a, lo_b), u1 = max(hi_a, hi_b);
    const int r0 = part[r], r1 = r0 + part[h + r];

    float16 qab[D8];
    for (int c = 0; c < D8; c++) {
        float t[16] __attribute__((aligned(64)));
        for (int e = 0; e < 8; e++) {
            const int d = 8 * c + e;
            t[e] = d < D ? LOAD_1((size_t)tok_a * D + d, q) * qscale : 0.0f;
            t[8 + e] = d < D && has_b ? LOAD_1((size_t)tok_b * D + d, q) * qscale : 0.0f;
        }
        qab[c] = PRIV(float16, t, 0);
    }
    pair_state st;
    st.m = (float16)(-INFINITY);
    st.l = (float16)(0.0f);
    for (int x = 0; x < DVP; x++)
        st.acc[0][x] = st.acc[1][x] = 0.0f;

    const int16 upper = (int16)(0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1); // query b's lanes
    const int16 lane_key = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
    const int16 lo = select((int16)(lo_a), (int16)(lo_b), upper), hi = select((int16)(hi_a), (int16)(hi_b), upper);
    const int16 qtok = select((int16)(tok_a), (int16)(tok_b), upper);

    float16 sc[CHUNK];
    int16 seen = (int16)(0);
    float p[CHUNK][16] __attribute__((aligned(64)));
    int ok[CHUNK][16] __attribute__((aligned(64)));
    __global const elem_t *val[CHUNK][GROUP];
    int n = 0;
    // Column groups outside, key rows inside: a group's columns (their grid columns and which
    // lanes' windows hold them) are worked out once for all of its key rows.
    for (int g0 = u0; g0 < u1; g0 += GROUP) {
        int col[GROUP] __attribute__((aligned(32))); // each key's grid column (past the end: the last)
        for (int j = 0; j < GROUP; j++)
            col[j] = axis[h + min(g0 + j, w - 1)];
        // The same as a vector: read from the table where the group lies inside the grid (a vector
        // load of the 8 ints just stored would wait for the stores).
        const int8 col8 = g0 + GROUP <= w ? vload8(0, axis + h + g0) : PRIV(int8, col, 0);
        const int16 kc = (int16)(g0) + lane_key, kcol = (int16)(col8, col8);
        const int16 in_cols = mask_and(kc >= lo, kc < hi);
        for (int kr = r0; kr < r1; kr++) {
            const int key_row = axis[kr] * w;
            __global const elem_t *key[GROUP];
            for (int j = 0; j < GROUP; j++) {
                key[j] = kh + (size_t)(key_row + col[j]) * D;
                val[n][j] = vh + (size_t)(key_row + col[j]) * DV;
            }
            const int16 ktok = (int16)(key_row) + kcol;
            int16 in = mask_and(in_cols, ktok < (int16)(kv_len));
            if (causal)
                in = mask_and(in, ktok <= qtok);
            PRIV(int16, ok[n], 0) = in;
            seen |= in;
            sc[n] = select((float16)(-INFINITY), pair_scores(qab, key), in);
            if (++n == CHUNK || (kr == r1 - 1 && g0 + GROUP >= u1)) {
                const float16 alpha = lane_softmax(&st.m, &st.l, sc, seen, n, GROUP);
                for (int j = 0; j < n; j++)
                    PRIV(float16, p[j], 0) = sc[j];
                pair_values(&st, p, ok, val, alpha, n);
                n = 0;
                seen = (int16)(0);
            }
        }
    }
    // A padding query (at or past kv_len) is empty (SPEC.md 7).
    store_row(out, lse, tok_a, st.acc[0], st.m.s0, tok_a >= kv_len ? 0.0f : st.l.s0, write_lse);
    if (has_b)
        store_row(out, lse, tok_b, st.acc[1], st.m.s8, tok_b >= kv_len ? 0.0f : st.l.s8, write_lse);
}

__kernel void grid_pairs(GRID_PAIRS_ARGS)
{
    const int bh = get_global_id(1);
    const int b = bh / heads;
    const size_t bhk = kv_head_of(bh, heads, kv_heads);
    const int n = h * w, kv_len = seq_lens[b];
    __global const elem_t *kh = k + bhk * n * D, *vh = v + bhk * n * DV;
    const int r_first = (int)get_global_id(0) * rows_per_item, r_end = min(h, r_first + rows_per_item);
    for (int r = r_first; r < r_end; r++)
        for (int c = 0; c < w; c += 2)
            pair_block(q + (size_t)bh * n * D, kh, vh, out + (size_t)bh * n * DV, lse + (size_t)bh * n, axis, h, w, r,
                       c, kv_len, causal, qscale, write_lse);
}
