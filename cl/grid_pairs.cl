// The CPU variant's neighborhood kernel, compiled after common.cl, attention_cpu.cl (for
// exp2_nonpositive and PRIV) and lane_softmax.cl: two neighbouring queries of a kernel row at a
// time (and two such pairs, one above the other), Q, K, V and O read and written as the caller
// stores them, nothing transposed or packed.
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
// query does not see is ever multiplied in. Two pairs, one kernel row below the other, go
// together: their windows have the same columns and all but one key row in common, so a key's 8
// elements, loaded once, feed both pairs' multiply-adds, and a value row up to four queries'.
//
// Kernel coordinates are host/grid.h's (a dilated axis listed group by group, so each window is
// an interval of kernel rows and one of kernel columns).
#define GROUP 8          // key columns per score vector: 2 queries x 8 keys
#define CHUNK 16         // score vectors per online-softmax step
#define PAIRS 2          // pairs of queries, on kernel rows one below the other, that share keys (3: no faster)
#define D8 ((D + 7) / 8) // 8-element chunks of a row
#define DVP ((DV + 15) / 16 * 16)

// The register blocks, shaped for the CPU's vectors (CLATTN_WIDE_VECTORS, the tiles' `lanes`):
// the score accumulators of SCORE_KEYS keys of each pair, and the output accumulators of
// VALUE_BLOCKS 16-column blocks of VALUE_QUERIES of the 2 x PAIRS queries, are live at once.
// AVX-512's 32 registers of 16 floats take all 8 keys (16 accumulators) and all 4 queries' 4
// blocks (16); on AVX2's 16 registers of 8 floats, where a float16 takes two, 2 keys and one
// pair's 2 blocks leave 8 registers of accumulators. With AVX-512's blocks on a Zen 3 (AVX2), most
// multiply-adds loaded and stored a spilled accumulator, and the 7 x 7 neighborhood on a 64 x 64
// grid took 1.45x as long. (There, 4 queries by 1 block ran about 5% slower than a pair by 2: each
// key's masks and branches served 8 multiply-adds of 2 columns' worth of V instead of 4.)
#if CLATTN_WIDE_VECTORS
#define SCORE_KEYS GROUP
#define VALUE_QUERIES (2 * PAIRS)
#define VALUE_BLOCKS 4
#else
#define SCORE_KEYS 2
#define VALUE_QUERIES 2
#define VALUE_BLOCKS 2
#endif

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

// Query b's lanes of a score vector (lanes 0-7 are query a's).
#define B_LANES (int16)(0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1)

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

// The 8-element chunks of a key row read as vectors: POCL's vload_half8 assumes 16-byte alignment,
// which float16 rows of a length that is not a multiple of 8 do not keep.
#define KEY_CHUNKS (CLATTN_DTYPE == 1 && D % 8 != 0 ? 0 : D / 8)

// Scores against the 8 keys whose rows start at key[0..7] of `pairs` pairs of queries (1 or 2, a
// constant at each call), whose rows are qab[0] and qab[1]: s[i] lanes 0-7 the pair's query a,
// lanes 8-15 query b. qab[i][c] holds elements [8c, 8c + 8) of both queries' rows (widened,
// scaled, zero past D), a's in lanes 0-7 and b's in 8-15, so that one multiply-add of a key's 8
// elements, loaded into both halves, serves both queries; two pairs share each key's loads. The
// keys go SCORE_KEYS at a time, in a loop the compiler keeps (fully unrolled, its scheduler
// interleaved the blocks and spilled the accumulators again).
inline __attribute__((always_inline)) void pair_scores(float16 s[PAIRS], const float16 *const qab[PAIRS],
                                                       __global const elem_t *const key[GROUP], const int pairs)
{
    float16 x[PAIRS][GROUP];
#pragma unroll 1
    for (int j0 = 0; j0 < GROUP; j0 += SCORE_KEYS) {
        // Every pair's accumulators zeroed, also where pairs is 1: with only the used ones zeroed,
        // clang kept the array on the stack, storing the zeros and loading them back on each pass.
        float16 xb[PAIRS][SCORE_KEYS];
#pragma unroll
        for (int i = 0; i < PAIRS; i++)
#pragma unroll
            for (int j = 0; j < SCORE_KEYS; j++)
                xb[i][j] = (float16)(0.0f);
#pragma unroll
        for (int c = 0; c < KEY_CHUNKS; c++)
#pragma unroll
            for (int j = 0; j < SCORE_KEYS; j++) {
                const float8 k8 = LOAD_8(0, key[j0 + j] + 8 * c);
#pragma unroll
                for (int i = 0; i < pairs; i++)
                    xb[i][j] = fma(qab[i][c], (float16)(k8, k8), xb[i][j]);
            }
        for (int c = KEY_CHUNKS; c < D8; c++) // the rest, one element at a time (a row's end may be the buffer's)
#pragma unroll
            for (int j = 0; j < SCORE_KEYS; j++) {
                float t[8] __attribute__((aligned(32)));
                for (int e = 0; e < 8; e++)
                    t[e] = 8 * c + e < D ? LOAD_1(8 * c + e, key[j0 + j]) : 0.0f;
                const float8 k8 = PRIV(float8, t, 0);
#pragma unroll
                for (int i = 0; i < pairs; i++)
                    xb[i][j] = fma(qab[i][c], (float16)(k8, k8), xb[i][j]);
            }
#pragma unroll
        for (int i = 0; i < pairs; i++)
#pragma unroll
            for (int j = 0; j < SCORE_KEYS; j++)
                x[i][j0 + j] = xb[i][j];
    }
#pragma unroll
    for (int i = 0; i < pairs; i++)
        s[i] = reduce8(x[i]);
}

// A pair of queries' step and softmax: the step's score vectors p (one per key row of the step,
// lanes 0-7 query a against the row's 8 keys, 8-15 query b; all masked where the pair's window does
// not reach the row), which the softmax turns into weights in place, their masks, and the pair's
// running softmax (m and l, common.cl's row rule for l, lane-wise) and tokens: what P.V and the
// output rows need once the step's scores are in.
typedef struct {
    float p[CHUNK][16] __attribute__((aligned(64)));
    uint ok[CHUNK]; // bit `lane` of row j: the lane's query sees that key
    float16 m, l;
    int tok_a, tok_b;
} pair_weights;

// One pair of queries, (r, c) and (r, c + 1) (kernel coordinates; the second only when c + 1 < w),
// on its way through its key rows: its rows, its key rows [r0, r1) and the lanes that have seen a
// key in the current step.
typedef struct {
    float16 qab[D8];
    int16 seen, qtok;
    int r0, r1;
} pair_walk;

// A block of pairs (pair_block) whose keys fit one online-softmax step: its weights and the value
// rows of its step, kept so that its P.V can wait until the blocks after it are scored (why: the
// comment above grid_pairs).
typedef struct {
    pair_weights pw[PAIRS];
    __global const elem_t *val[CHUNK][GROUP]; // the value rows of the step's key rows
    int np, n;
    bool has_b;
} scored_block;

// acc = alpha * acc + P.V of `pairs` pairs (1 or 2, a constant at each call) over the step's n
// key rows: weights pw[i].p[j][lane], masks pw[i].ok[j] and the value rows val[j][key] of each
// row's 8 keys. A key's value row is read once for each VALUE_QUERIES of the queries, and only
// those that see it add it (a NaN planted in a value no query sees stays out; a visible key whose
// weight is 0 still multiplies its value, as the reference does). `fresh` (a constant at each
// call): the step is the walk's only one, acc starts at 0 and alpha is not read.
inline __attribute__((always_inline)) void block_values(const pair_weights pw[PAIRS], float acc[PAIRS][2][DVP],
                                                        const float16 alpha[PAIRS],
                                                        __global const elem_t *const val[CHUNK][GROUP], int n,
                                                        const int pairs, const bool fresh)
{
#pragma unroll 1
    for (int y0 = 0; y0 < 2 * pairs; y0 += VALUE_QUERIES)
        for (int c = 0; c + 16 <= DV; c += 16 * VALUE_BLOCKS) {
            const int blocks = min(VALUE_BLOCKS, (DV - c) / 16);
            float16 o[VALUE_QUERIES][VALUE_BLOCKS]; // query y0 + y (2 * pair + 0 for its query a, + 1 for b), block
#pragma unroll
            for (int y = 0; y < VALUE_QUERIES; y++)
#pragma unroll
                for (int u = 0; u < VALUE_BLOCKS; u++)
                    o[y][u] = u < blocks && !fresh ? PRIV(float16, acc[(y0 + y) / 2][y % 2], c / 16 + u) *
                                                         alpha[(y0 + y) / 2][8 * (y % 2)]
                                                   : (float16)(0.0f);
            for (int j = 0; j < n; j++) {
                // The row's bits tested where they lie, one test and branch for each key and query
                // (shifted down to bit 0 first, a key's tests took 11 instructions instead of 6, and
                // the 7 x 7 neighborhood 3% more time on a Zen 3).
                uint ok[VALUE_QUERIES / 2];
#pragma unroll
                for (int i = 0; i < VALUE_QUERIES / 2; i++)
                    ok[i] = y0 / 2 + i < pairs ? pw[y0 / 2 + i].ok[j] : 0u;
#pragma unroll
                for (int t = 0; t < GROUP; t++) {
                    uint see[VALUE_QUERIES], any = 0;
#pragma unroll
                    for (int y = 0; y < VALUE_QUERIES; y++)
                        see[y] = ok[y / 2] & (1u << (GROUP * (y % 2) + t));
#pragma unroll
                    for (int i = 0; i < VALUE_QUERIES / 2; i++)
                        any |= ok[i] & ((1u | 1u << GROUP) << t); // either query
                    if (!any)
                        continue;
                    float16 vv[VALUE_BLOCKS];
#pragma unroll
                    for (int u = 0; u < VALUE_BLOCKS; u++)
                        vv[u] = LOAD_16(0, val[j][t] + c + 16 * (u < blocks ? u : 0));
#pragma unroll
                    for (int y = 0; y < VALUE_QUERIES; y++)
                        if (see[y]) {
                            const float16 pb = (float16)(pw[(y0 + y) / 2].p[j][GROUP * (y % 2) + t]);
#pragma unroll
                            for (int u = 0; u < VALUE_BLOCKS; u++)
                                o[y][u] = fma(pb, vv[u], o[y][u]);
                        }
                }
            }
#pragma unroll
            for (int y = 0; y < VALUE_QUERIES; y++)
#pragma unroll
                for (int u = 0; u < VALUE_BLOCKS; u++)
                    if (u < blocks && y0 + y < 2 * pairs)
                        PRIV(float16, acc[(y0 + y) / 2][y % 2], c / 16 + u) = o[y][u];
        }
    for (int c = DV / 16 * 16; c < DV; c++) // the last DV % 16 columns, one at a time
        for (int y = 0; y < 2 * pairs; y++) {
            const int lane = GROUP * (y % 2);
            float a = fresh ? 0.0f : acc[y / 2][y % 2][c] * alpha[y / 2][lane];
            for (int j = 0; j < n; j++)
                for (int t = 0; t < GROUP; t++)
                    if ((pw[y / 2].ok[j] >> (lane + t)) & 1)
                        a = fma(pw[y / 2].p[j][lane + t], LOAD_1(c, val[j][t]), a);
            acc[y / 2][y % 2][c] = a;
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
        STREAM_ROW16(PRIV(float16, acc, c / 16) * inv, out + row * DV + c);
    for (; c < DV; c++)
        STORE_1(acc[c] * inv, row * DV + c, out);
    if (write_lse)
        lse[row] = row_lse(m, l);
}

// The pair at kernel row r, columns c and c + 1: its queries' rows, an empty softmax.
inline void start_pair(pair_walk *pw, pair_weights *pwt, __global const elem_t *q, __global const int *axis, int h,
                       int w, int r, int c, float qscale)
{
    __global const int *part = axis + h + w; // [lo_r H][n_r H][lo_c W][n_c W]
    const bool has_b = c + 1 < w;
    const int row_tok = axis[r] * w;
    pwt->tok_a = row_tok + axis[h + c];
    pwt->tok_b = row_tok + axis[h + (has_b ? c + 1 : c)];
    pw->r0 = part[r];
    pw->r1 = pw->r0 + part[h + r];
    // Whole 8-element chunks as vectors, then the rest element by element. (All element by element
    // through a private row, whose vector read waits on 16 scalar stores: 1% more time on one
    // thread.)
    __global const elem_t *qa = q + (size_t)pwt->tok_a * D, *qb = q + (size_t)pwt->tok_b * D;
    for (int x = 0; x < KEY_CHUNKS; x++)
        pw->qab[x] = (float16)(LOAD_8(x, qa), has_b ? LOAD_8(x, qb) : (float8)(0.0f)) * qscale;
    for (int x = KEY_CHUNKS; x < D8; x++) {
        float t[16] __attribute__((aligned(64)));
        for (int e = 0; e < 8; e++) {
            const int d = 8 * x + e;
            t[e] = d < D ? LOAD_1((size_t)pwt->tok_a * D + d, q) * qscale : 0.0f;
            t[8 + e] = d < D && has_b ? LOAD_1((size_t)pwt->tok_b * D + d, q) * qscale : 0.0f;
        }
        pw->qab[x] = PRIV(float16, t, 0);
    }
    pwt->m = (float16)(-INFINITY);
    pwt->l = (float16)(0.0f);
    pw->qtok = select((int16)(pwt->tok_a), (int16)(pwt->tok_b), B_LANES);
    pw->seen = (int16)(0);
}

// A mask of 16 lanes as bits (lane i: bit i), for P.V's tests.
inline uint lane_bits(int16 in)
{
    const int16 bits = in & (int16)(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768);
    const int8 b8 = bits.lo | bits.hi;
    const int4 b4 = b8.lo | b8.hi;
    const int2 b2 = b4.lo | b4.hi;
    return (uint)(b2.x | b2.y);
}

// A key row's scores s as row e of the pair's step: `in`, the lanes that see the row's keys, and
// the same as bits.
inline void add_key_row(pair_walk *pw, pair_weights *pwt, int e, float16 s, int16 in, uint bits)
{
    pwt->ok[e] = bits;
    pw->seen |= in;
    PRIV(float16, pwt->p[e], 0) = select((float16)(-INFINITY), s, in);
}

// The softmax of a step of n key rows for each pair: pwt[i].p's scores become weights, each
// pair's factor for its accumulators goes into alpha[i].
inline __attribute__((always_inline)) void step_softmax(pair_walk pw[PAIRS], pair_weights pwt[PAIRS],
                                                        float16 alpha[PAIRS], int n, const int pairs)
{
    for (int i = 0; i < pairs; i++) {
        alpha[i] = lane_softmax(&pwt[i].m, &pwt[i].l, (float16 *)pwt[i].p, pw[i].seen, n, GROUP);
        pw[i].seen = (int16)(0);
    }
}

inline void finish_pair(const pair_weights *pwt, float acc[2][DVP], __global elem_t *out, __global float *lse,
                        int kv_len, bool has_b, int write_lse)
{
    // A padding query (at or past kv_len) is empty (SPEC.md 7).
    store_row(out, lse, pwt->tok_a, acc[0], pwt->m.s0, pwt->tok_a >= kv_len ? 0.0f : pwt->l.s0, write_lse);
    if (has_b)
        store_row(out, lse, pwt->tok_b, acc[1], pwt->m.s8, pwt->tok_b >= kv_len ? 0.0f : pwt->l.s8, write_lse);
}

// The np <= PAIRS pairs at kernel rows r, r + 1, ..., columns c and c + 1: their windows have the
// same columns and most of their key rows, whose keys and values are loaded once for all of them.
// Where the block's keys fit one online-softmax step, only its scores and softmax are computed
// here, into *sb, and the result is true: finish_scored_block finishes it. Otherwise the block is done.
inline bool pair_block(__global const elem_t *q, __global const elem_t *kh, __global const elem_t *vh,
                       __global elem_t *out, __global float *lse, __global const int *axis, int h, int w, int r, int c,
                       int np, int kv_len, int causal, float qscale, int write_lse, scored_block *sb)
{
    __global const int *part = axis + h + w; // [lo_r H][n_r H][lo_c W][n_c W]
    const bool has_b = c + 1 < w;
    const int cb = has_b ? c + 1 : c;
    const int lo_a = part[2 * h + c], hi_a = lo_a + part[2 * h + w + c];
    const int lo_b = has_b ? part[2 * h + cb] : lo_a, hi_b = has_b ? lo_b + part[2 * h + w + cb] : lo_a;
    const int u0 = min(lo_a, lo_b), u1 = max(hi_a, hi_b);
    pair_walk pw[PAIRS];
    pair_weights *pwt = sb->pw;
    int r_lo = INT_MAX, r_hi = INT_MIN; // the key rows of any of the pairs
    for (int i = 0; i < np; i++) {
        start_pair(&pw[i], &pwt[i], q, axis, h, w, r + i, c, qscale);
        r_lo = min(r_lo, pw[i].r0);
        r_hi = max(r_hi, pw[i].r1);
    }
    const bool one_step = u1 - u0 <= GROUP && r_hi - r_lo <= CHUNK;
    float acc[PAIRS][2][DVP] __attribute__((aligned(64)));
    if (!one_step)
        for (int i = 0; i < np; i++)
            for (int x = 0; x < DVP; x++)
                acc[i][0][x] = acc[i][1][x] = 0.0f;
    int n = 0;

    const int16 lane_key = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
    const int16 lo = select((int16)(lo_a), (int16)(lo_b), B_LANES), hi = select((int16)(hi_a), (int16)(hi_b), B_LANES);
    // Column groups outside, key rows inside: a group's columns (their grid columns and which
    // lanes' windows hold them) are worked out once for all of its key rows.
    for (int g0 = u0; g0 < u1; g0 += GROUP) {
        int col[GROUP] __attribute__((aligned(32))); // each key's grid column (past the end: the last)
        int col_max = 0;
        for (int j = 0; j < GROUP; j++) {
            col[j] = axis[h + min(g0 + j, w - 1)];
            col_max = max(col_max, col[j]);
        }
        // The same as a vector: read from the table where the group lies inside the grid (a vector
        // load of the 8 ints just stored would wait for the stores).
        const int8 col8 = g0 + GROUP <= w ? vload8(0, axis + h + g0) : PRIV(int8, col, 0);
        const int16 kc = (int16)(g0) + lane_key, kcol = (int16)(col8, col8);
        const int16 in_cols = mask_and(kc >= lo, kc < hi);
        // A key row whose 8 keys all exist (below kv_len) and, without causal masks, every lane of
        // a pair whose window reaches the row sees exactly the group's columns: those masks, bits
        // included, are worked out here once for the group's rows. (Per row, they took 0.55 ms of
        // the 7 x 7 neighborhood's 11 on a Zen 3, 64 x 64, H = 8, D = 64, one thread; hoisted, the
        // kernel went from 10.8-11.4 ms to 10.5-10.8 over six interleaved rounds.)
        const uint cols_bits = lane_bits(in_cols);
        for (int kr = r_lo; kr < r_hi; kr++) {
            // The pairs whose windows reach the row, scored together.
            const float16 *qs[PAIRS];
            bool in[PAIRS];
            int m = 0;
            for (int i = 0; i < np; i++) {
                in[i] = kr >= pw[i].r0 && kr < pw[i].r1;
                if (in[i])
                    qs[m++] = pw[i].qab;
            }
            if (m == 0) // between two pairs' rows (none of the kernel's windows leaves such a gap)
                continue;
            const int key_row = axis[kr] * w;
            __global const elem_t *key[GROUP];
            for (int j = 0; j < GROUP; j++) {
                key[j] = kh + (size_t)(key_row + col[j]) * D;
                sb->val[n][j] = vh + (size_t)(key_row + col[j]) * DV;
            }
            float16 s[PAIRS];
            if (m == 2)
                pair_scores(s, qs, key, 2);
            else
                pair_scores(s, qs, key, 1);
            if (!causal && key_row + col_max < kv_len)
                for (int i = 0, x = 0; i < np; i++)
                    add_key_row(&pw[i], &pwt[i], n, s[in[i] ? x++ : 0], in[i] ? in_cols : (int16)(0),
                                in[i] ? cols_bits : 0u);
            else {
                const int16 ktok = (int16)(key_row) + kcol, reach = mask_and(in_cols, ktok < (int16)(kv_len));
                for (int i = 0, x = 0; i < np; i++) {
                    int16 lanes = in[i] ? reach : (int16)(0);
                    if (causal)
                        lanes = mask_and(lanes, ktok <= pw[i].qtok);
                    add_key_row(&pw[i], &pwt[i], n, s[in[i] ? x++ : 0], lanes, lane_bits(lanes));
                }
            }
            if (++n == CHUNK || (kr == r_hi - 1 && g0 + GROUP >= u1)) {
                float16 alpha[PAIRS];
                if (np == 2)
                    step_softmax(pw, pwt, alpha, n, 2);
                else
                    step_softmax(pw, pwt, alpha, n, 1);
                if (one_step) {
                    sb->np = np;
                    sb->n = n;
                    sb->has_b = has_b;
                    return true;
                }
                if (np == 2)
                    block_values(pwt, acc, alpha, sb->val, n, 2, false);
                else
                    block_values(pwt, acc, alpha, sb->val, n, 1, false);
                n = 0;
            }
        }
    }
    for (int i = 0; i < np; i++)
        finish_pair(&pwt[i], acc[i], out, lse, kv_len, has_b, write_lse);
    return false;
}

// P.V and the output rows of a block that pair_block scored.
inline void finish_scored_block(const scored_block *sb, __global elem_t *out, __global float *lse, int kv_len,
                                int write_lse)
{
    float acc[PAIRS][2][DVP] __attribute__((aligned(64))); // written whole by block_values (fresh)
    const float16 alpha[PAIRS] = {(float16)(1.0f)};        // not read (fresh)
    if (sb->np == 2)
        block_values(sb->pw, acc, alpha, sb->val, sb->n, 2, true);
    else
        block_values(sb->pw, acc, alpha, sb->val, sb->n, 1, true);
    for (int i = 0; i < sb->np; i++)
        finish_pair(&sb->pw[i], acc[i], out, lse, kv_len, sb->has_b, write_lse);
}

// Hints a row of D elements into the cache.
inline void hint_row(__global const elem_t *row)
{
    for (int x = 0; x < D * (int)sizeof(elem_t); x += 64)
        PREFETCH((__global const uchar *)row + x);
}

// A block's keys and values (8 key rows of 8 columns for a 7 x 7 kernel: 32 KB at D = 64 in fp32)
// fill a 32 KB L1 by themselves, so where one block's scores and P.V follow each other, each
// block, moving two columns along, finds the 6 columns it shares with the one before evicted. So
// the blocks of a kernel row go STRIP at a time: the strip's scores and softmax first, walking K
// alone, then its P.V, walking V alone (blocks of more than one step, large kernels, are done
// whole as they come). On a Zen 3 (one thread, 64 x 64, H = 8, D = 64), with every block's keys
// and values pointed at one 4 x 8 patch of the grid (wrong results, a timing only) the
// neighborhood took 14% less time; strips of 1, 2, 4, 8 and 16 blocks took 11.6, 11.5, 11.2, 11.0
// and 11.0 ms (minima of four interleaved rounds; the blocks one by one, as before, 11.3-11.8).
#define STRIP 8

CPU_VARIANT_KERNEL void grid_pairs(GRID_PAIRS_ARGS)
{
    const int bh = get_global_id(1);
    const int b = bh / heads;
    const size_t bhk = kv_head_of(bh, heads, kv_heads);
    const int n = h * w, kv_len = seq_lens[b];
    __global const elem_t *qh = q + (size_t)bh * n * D, *kh = k + bhk * n * D, *vh = v + bhk * n * DV;
    __global elem_t *oh = out + (size_t)bh * n * DV;
    __global float *lh = lse + (size_t)bh * n;
    const int r_first = (int)get_global_id(0) * rows_per_item, r_end = min(h, r_first + rows_per_item);
    for (int r = r_first; r < r_end; r += PAIRS)
        for (int c0 = 0; c0 < w; c0 += 2 * STRIP) {
            scored_block sb[STRIP];
            bool scored[STRIP];
            const int blocks = min(STRIP, (w - c0 + 1) / 2);
            for (int s = 0; s < blocks; s++) {
                const int c = c0 + 2 * s;
                // The next block's query rows, hinted: its first reads, which jump across the grid
                // (their loads took 9% of the samples on a Zen 3, 2.7% with the hints).
                const int rn = c + 2 < w ? r : r + PAIRS, cn = c + 2 < w ? c + 2 : 0;
                for (int i = 0; i < PAIRS && rn + i < r_end; i++)
                    for (int x = cn; x < min(cn + 2, w); x++)
                        hint_row(qh + (size_t)(axis[rn + i] * w + axis[h + x]) * D);
                scored[s] = pair_block(qh, kh, vh, oh, lh, axis, h, w, r, c, min(PAIRS, r_end - r), kv_len, causal,
                                       qscale, write_lse, &sb[s]);
            }
            for (int s = 0; s < blocks; s++)
                if (scored[s])
                    finish_scored_block(&sb[s], oh, lh, kv_len, write_lse);
        }
    stream_fence();
}
