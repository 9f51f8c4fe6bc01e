// The CPU variant's kernel for the 2-D patterns that cut the grid into regions whose tokens see
// exactly each other (Swin windows, axial rows, axial columns), compiled after common.cl,
// attention_cpu.cl (for exp2_nonpositive and PRIV) and lane_softmax.cl: 16 queries of a region
// per vector lane, and each key one broadcast.
//
// Why. Every query of a region sees the same keys, so with the queries in the lanes a key is the
// same for all of them: its D elements are broadcast from K as the caller stores it, a score pass
// is D multiply-adds of a query vector (element d of 16 queries) with one broadcast, and P.V
// broadcasts V's elements the same way. Nothing is packed: only Q and O are transposed, once per
// query, where the tiles of cl/grid_cpu.cl pack every region's K into panels and mask each chunk.
// Within a region, the tokens are in ascending order (host/launch_grid.c), so the keys a padded
// sequence drops, and under causal those after the last query, end the key list.
//
// Criss-cross is two launches: the rows (each a region), which suspend every query's running
// softmax into `state`, then the columns, which resume it and skip the query's own token (a key
// of both parts counts once).
//
// The register blocks are shaped for the CPU's vectors (CLATTN_WIDE_VECTORS, the tiles' `lanes`):
// AVX-512's 32 registers of 16 floats hold two query vectors' 16 score (or output) accumulators;
// AVX2's 16 registers of 8 floats, where a float16 takes two, one vector's 4 (8 registers). With
// AVX-512's blocks on a Zen 3 (AVX2), every score multiply-add loaded and stored its spilled
// accumulator, and Swin 8 / 4 on a 64 x 64 grid took 1.45x as long.
#if CLATTN_WIDE_VECTORS
#define QV 2 // query vectors of 16 a work-item's unit takes: they share every key's broadcasts
#define KB 8 // keys per score pass: KB x QV accumulators
#define VC 8 // value columns per P.V pass: VC x QV accumulators
#else
#define QV 1
#define KB 4
#define VC 4
#endif
#define KCH 32 // keys per online-softmax step

// The arguments of `grid_regions` (host/launch_grid.c sets them in this order).
// clang-format off
#define GRID_REGIONS_ARGS                                                                          \
    __global const elem_t *q,      /* [B, H, N, D] */                                              \
    __global const elem_t *k,      /* [B, Hkv, N, D] */                                            \
    __global const elem_t *v,      /* [B, Hkv, N, DV] */                                           \
    __global const int *units,     /* [nunits][2]: region, first query of the region */            \
    __global const int *regions,   /* [nregions + 1] offsets into tokens */                        \
    __global const int *tokens,    /* [N] each region's tokens, ascending */                       \
    __global const int *seq_lens,  /* [B] */                                                       \
    __global elem_t *out,          /* [B, H, N, DV] */                                             \
    __global float *lse,           /* [B, H, N] when write_lse */                                  \
    __global float *state,         /* [B, H, N, DV + 2]: acc, m and l of suspended queries */      \
    int heads, int kv_heads, int n, int nunits, int per_item, int causal, float qscale,            \
    int write_lse,                                                                                 \
    int resume,                    /* start from `state` rather than from nothing */               \
    int suspend,                   /* end by writing `state` rather than O and LSE */              \
    int skip_self                  /* a query does not see its own token */
// clang-format on

// The running softmax of 16 queries, one per lane (common.cl's row rule for l: +0 no visible
// key, -0 visible keys whose logits were all -inf, NaN a NaN or +inf logit).
typedef struct {
    float16 m, l;
    float16 acc[DV];
} lane_state;

// Transposes a 16 x 16 block in registers: x[i][j] becomes x[j][i]. Four butterfly steps, each
// swapping bit k of the row index with bit k of the column index through 16 two-vector shuffles
// (constant masks: one permute instruction each on AVX-512), instead of 256 scalar moves. Clang's
// shufflevector where the compiler has it: POCL's shuffle2 on AVX2 moved the elements one by one
// (vbroadcastss and vblendps, about 300 instructions a transpose), where shufflevector's masks give
// vshufps, vunpck and vperm2f128 (Zen 3, one thread, Swin 8 / 4 on 64 x 64, H = 8, D = 64:
// 8.8-9.0 ms before, 8.3-8.8 after).
#define MASK_LIST(...) __VA_ARGS__
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define SHUFFLE16(a, b, mask) __builtin_shufflevector((a), (b), MASK_LIST mask)
#endif
#endif
#ifndef SHUFFLE16
#define SHUFFLE16(a, b, mask) shuffle2((a), (b), (uint16)mask)
#endif
#define TRANSPOSE_STEP(x, k, lo_mask, hi_mask)                                                                         \
    for (int i = 0; i < 16; i++)                                                                                       \
        if (!(i & (k))) {                                                                                              \
            const float16 a = x[i], b = x[i + (k)];                                                                    \
            x[i] = SHUFFLE16(a, b, lo_mask);                                                                           \
            x[i + (k)] = SHUFFLE16(a, b, hi_mask);                                                                     \
        }
inline __attribute__((always_inline)) void transpose16(float16 x[16])
{
#pragma unroll
    TRANSPOSE_STEP(x, 8, (0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
                   (8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31))
#pragma unroll
    TRANSPOSE_STEP(x, 4, (0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27),
                   (4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31))
#pragma unroll
    TRANSPOSE_STEP(x, 2, (0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
                   (2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31))
#pragma unroll
    TRANSPOSE_STEP(x, 1, (0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30),
                   (1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31))
}

// Elements [e, e + 16) of 16 rows of a row-major tensor (rows[t] is row t's index), transposed:
// x[u] holds element e + u of every row.
inline void gather_block(float16 x[16], __global const elem_t *src, const int *rows, int width, int e)
{
    for (int t = 0; t < 16; t++)
        x[t] = LOAD_16(0, src + (size_t)rows[t] * width + e);
    transpose16(x);
}

// Element e of the same 16 rows, as one vector (a last block narrower than 16 elements).
inline float16 gather_column(__global const elem_t *src, const int *rows, int width, int e)
{
    float x[16] __attribute__((aligned(64)));
    for (int t = 0; t < 16; t++)
        x[t] = LOAD_1((size_t)rows[t] * width + e, src);
    return PRIV(float16, x, 0);
}

// Element d of the 16 queries (row tok[i]; -1 past the row's end) in qv[d], times qscale.
inline void load_queries(float16 *qv, __global const elem_t *q, const int *tok, float qscale)
{
    int rows[16];
    for (int i = 0; i < 16; i++)
        rows[i] = max(tok[i], 0); // a live query's row stands in for the lanes past the end
    int d = 0;
    for (; d + 16 <= D; d += 16) {
        float16 x[16];
        gather_block(x, q, rows, D, d);
        for (int u = 0; u < 16; u++)
            qv[d + u] = x[u] * qscale;
    }
    for (; d < D; d++)
        qv[d] = gather_column(q, rows, D, d) * qscale;
}

// The 16 lanes' outputs (common.cl's write_row, lane-wise) into their rows of O, and their LSE.
inline void store_outputs(__global elem_t *out, __global float *lse, const lane_state *st, const int *tok, int kv_len,
                          int write_lse)
{
    float l[16] __attribute__((aligned(64))), m[16] __attribute__((aligned(64)));
    PRIV(float16, l, 0) = st->l;
    PRIV(float16, m, 0) = st->m;
    for (int i = 0; i < 16; i++)
        if (tok[i] >= kv_len)
            l[i] = 0.0f; // a padding query is empty (SPEC.md 7)
    const float16 lv = PRIV(float16, l, 0);
    const int16 empty = as_int16(lv) == (int16)(0);
    const float16 sum = select(select(lv, (float16)(NAN), lv == (float16)(0.0f)), (float16)(1.0f), empty);
    const float16 inv = (float16)(1.0f) / sum;
    int c = 0;
    for (; c + 16 <= DV; c += 16) {
        float16 x[16];
        for (int u = 0; u < 16; u++)
            x[u] = select(st->acc[c + u] * inv, (float16)(0.0f), empty);
        transpose16(x);
        for (int i = 0; i < 16; i++)
            if (tok[i] >= 0)
                STREAM_ROW16(x[i], out + (size_t)tok[i] * DV + c);
    }
    for (; c < DV; c++) {
        float x[16] __attribute__((aligned(64)));
        PRIV(float16, x, 0) = select(st->acc[c] * inv, (float16)(0.0f), empty);
        for (int i = 0; i < 16; i++)
            if (tok[i] >= 0)
                STORE_1(x[i], (size_t)tok[i] * DV + c, out);
    }
    if (write_lse)
        for (int i = 0; i < 16; i++)
            if (tok[i] >= 0)
                lse[tok[i]] = row_lse(m[i], l[i]);
}

// A key's (or value's) row as the loops read it, in floats: float32 storage is read where it
// lies; 16-bit storage is widened first, a chunk of rows at a time, into private memory
// (widen_rows), since a conversion per broadcast made criss-cross in float16 twice as slow.
#if CLATTN_DTYPE == 0
typedef __global const float *key_row;
#else
typedef const float *key_row;
#define D16 ((D + 15) / 16 * 16)
#define DV16 ((DV + 15) / 16 * 16)

// The caller's rows tok[0, n) of `width` elements, widened into dst's rows of `stride` floats.
inline void widen_rows(float *dst, int stride, __global const elem_t *src, const int *tok, int n, int width)
{
    for (int j = 0; j < n; j++) {
        __global const elem_t *row = src + (size_t)tok[j] * width;
        int e = 0;
        for (; e + 16 <= width; e += 16)
            PRIV(float16, dst + j * stride, e / 16) = LOAD_16(0, row + e);
        for (; e < width; e++)
            dst[j * stride + e] = LOAD_1(e, row);
    }
}
#endif

// The first reads of unit x, hinted one unit ahead: its Q rows, its rows of `state` when the launch
// resumes or suspends (`state_rows`), its O rows when it writes them (`out_rows`) and, where it
// starts a region other than `current`, the K and V rows of that region's first
// REGION_PREFETCH_KEYS keys. A unit's tokens jump across the grid (the next rows of a Swin window,
// the next window, the next column), where the hardware's stream prefetchers do not follow them.
// The rows are listed at the start of a unit and hinted a few lines at a time while it computes:
// all at once, a seventh of the samples sat on the prefetch instructions themselves. One POCL
// thread, 64 x 64, H = 8, D = 64: Swin 8 / 4 took 7.1 ms against 9.0-9.3 without hints (the Q rows
// alone: 8.5; every row at once: 7.4-7.9), criss-cross 21.6-22.6 against 28.0-29.3. Its O rows too,
// where it writes them: on a Zen 3 (AVX2, one thread) the stores of O, each a cache miss, took a
// fifth of Swin's samples, and Swin 8 / 4 went from 11.0 to 9.9 ms with them hinted. Where the
// O rows are streamed instead (STREAMS_ROWS, attention_cpu.cl, and DV a multiple of 16), a hint
// would only fetch the lines that the stores then evict: they are not hinted (Swin 8 / 4, the
// same Zen 3, streamed and hinted 9.7-10.0 ms, streamed alone 8.9-9.4).
#define HINT_OUT_ROWS (!STREAMS_ROWS || DV % 16 != 0)
#define REGION_PREFETCH_KEYS (2 * KCH)
#define HINT_ROWS (3 * 16 * QV + 2 * REGION_PREFETCH_KEYS)
#define HINT_LINES 64 // lines hinted per score pass of KB keys (24 to 96 measured alike)
typedef struct {
    __global const uchar *row[HINT_ROWS];
    int bytes[HINT_ROWS];
    int n, at, line; // rows listed; the row and the byte of it hinted next
} row_hints;

inline void hint_row(row_hints *h, __global const void *p, int bytes)
{
    h->row[h->n] = (__global const uchar *)p;
    h->bytes[h->n++] = bytes;
}

// The next `lines` 64-byte lines of the listed rows (all that are left: INT_MAX).
inline void hint_lines(row_hints *h, int lines)
{
    for (; lines > 0 && h->at < h->n; lines--) {
        PREFETCH(h->row[h->at] + h->line);
        h->line += 64;
        if (h->line >= h->bytes[h->at]) {
            h->at++;
            h->line = 0;
        }
    }
}

// Scores of the unit's QV query vectors against keys krow[0, nk): KB keys at a time, each key
// element broadcast once for the QV vectors and each query vector loaded once for the KB keys (a
// short last pass repeats the last key and drops the extra sums).
inline void region_scores(float16 sc[QV][KCH], float16 qt[QV][D], const key_row *krow, int nk, row_hints *hints)
{
    for (int j0 = 0; j0 < nk; j0 += KB) {
        hint_lines(hints, HINT_LINES);
        key_row kr[KB];
        for (int j = 0; j < KB; j++)
            kr[j] = krow[min(j0 + j, nk - 1)];
        float16 s[KB][QV];
#pragma unroll
        for (int j = 0; j < KB; j++)
#pragma unroll
            for (int u = 0; u < QV; u++)
                s[j][u] = (float16)(0.0f);
        for (int d = 0; d < D; d++) {
            float16 qd[QV];
#pragma unroll
            for (int u = 0; u < QV; u++)
                qd[u] = qt[u][d];
#pragma unroll
            for (int j = 0; j < KB; j++) {
                const float16 kb = (float16)(kr[j][d]);
#pragma unroll
                for (int u = 0; u < QV; u++)
                    s[j][u] = fma(kb, qd[u], s[j][u]);
            }
        }
        for (int j = 0; j < KB && j0 + j < nk; j++)
#pragma unroll
            for (int u = 0; u < QV; u++)
                sc[u][j0 + j] = s[j][u];
    }
}

// acc = alpha * acc + P.V for the unit's query vectors, VC value columns at a time, each value
// element broadcast once for the QV vectors. With `masked`, a lane that does not see key j
// (ok[u][j] is 0) keeps its accumulator: its weight is 0, but a NaN or inf planted in the value
// must not reach it. A visible key whose weight is 0 still multiplies its value, as the
// reference does.
inline void region_values(lane_state st[QV], float16 sc[QV][KCH], const float16 alpha[QV], const key_row *vrow, int nk,
                          bool masked, int16 ok[QV][KCH])
{
    for (int c = 0; c < DV; c += VC) {
        const int cols = min(VC, DV - c);
        float16 a[QV][VC];
#pragma unroll
        for (int u = 0; u < QV; u++)
#pragma unroll
            for (int x = 0; x < VC; x++)
                a[u][x] = x < cols ? st[u].acc[c + x] * alpha[u] : (float16)(0.0f);
        for (int j = 0; j < nk; j++) {
            const key_row vr = vrow[j] + c;
            float16 p[QV];
#pragma unroll
            for (int u = 0; u < QV; u++)
                p[u] = sc[u][j];
            if (!masked) {
#pragma unroll
                for (int x = 0; x < VC; x++) {
                    const float16 vb = (float16)(vr[x < cols ? x : 0]);
#pragma unroll
                    for (int u = 0; u < QV; u++)
                        a[u][x] = fma(p[u], vb, a[u][x]);
                }
            } else {
#pragma unroll
                for (int x = 0; x < VC; x++) {
                    const float16 vb = (float16)(vr[x < cols ? x : 0]);
#pragma unroll
                    for (int u = 0; u < QV; u++)
                        a[u][x] = select(a[u][x], fma(p[u], vb, a[u][x]), ok[u][j]);
                }
            }
        }
#pragma unroll
        for (int u = 0; u < QV; u++)
#pragma unroll
            for (int x = 0; x < VC; x++)
                if (x < cols)
                    st[u].acc[c + x] = a[u][x];
    }
}

// Whether the value rows vrow[0, nk) hold only finite values (cl/attention_lanes.cl's
// values_finite does the same over rows that lie one after the other). Then a masked step's P.V
// needs no select: a lane's weight for a key it does not see is exactly 0 (lane_softmax), and 0
// times a finite value adds nothing. v * 0 is NaN where v is inf or NaN; four sums, so that the
// multiply-adds do not wait on each other. Criss-cross's column pass masks each query's own token
// in every step that holds its queries: on 64 x 64 (one POCL thread, Zen 3) it went from
// 27.2-29.4 ms to 25.4-27.3 with this test in front of the select.
inline bool values_finite(const key_row *vrow, int nk)
{
    float16 z[4];
    for (int i = 0; i < 4; i++)
        z[i] = (float16)(0.0f);
    float t = 0.0f;
    for (int j = 0; j < nk; j++) {
        int c = 0;
        for (; c + 16 <= DV; c += 16)
            z[c / 16 % 4] = fma(vload16(0, vrow[j] + c), (float16)(0.0f), z[c / 16 % 4]);
        for (; c < DV; c++)
            t = fma(vrow[j][c], 0.0f, t);
    }
    return !any(isnan((z[0] + z[1]) + (z[2] + z[3]))) && !isnan(t);
}

#define STATE_WIDTH (DV + 2) // a suspended query's row of `state`: acc[DV], m, l

// Lists unit x's rows in h (see row_hints).
inline void list_unit_rows(row_hints *h, __global const elem_t *qh, __global const elem_t *kh,
                           __global const elem_t *vh, __global const float *stateh, bool state_rows,
                           __global const elem_t *oh, bool out_rows, __global const int *units,
                           __global const int *regions, __global const int *tokens, int x, int current)
{
    const int region = units[2 * x], first = regions[region], count = regions[region + 1] - first;
    for (int i = units[2 * x + 1]; i < min(count, units[2 * x + 1] + 16 * QV); i++) {
        const size_t tok = tokens[first + i];
        hint_row(h, qh + tok * D, D * sizeof(elem_t));
        if (state_rows)
            hint_row(h, stateh + tok * STATE_WIDTH, STATE_WIDTH * sizeof(float));
        if (out_rows && HINT_OUT_ROWS)
            hint_row(h, oh + tok * DV, DV * sizeof(elem_t));
    }
    if (region != current)
        for (int i = 0; i < min(count, REGION_PREFETCH_KEYS); i++) {
            const size_t tok = tokens[first + i];
            hint_row(h, kh + tok * D, D * sizeof(elem_t));
            hint_row(h, vh + tok * DV, DV * sizeof(elem_t));
        }
}

// The running softmax of 16 queries (rows tok[i] of `state`, -1 for none) written to, or read
// back from, their rows of `state`: the accumulator transposed 16 columns at a time.
inline void suspend_lanes(__global float *state, const lane_state *st, const int *tok)
{
    int c = 0;
    for (; c + 16 <= DV; c += 16) {
        float16 x[16];
        for (int u = 0; u < 16; u++)
            x[u] = st->acc[c + u];
        transpose16(x);
        for (int i = 0; i < 16; i++)
            if (tok[i] >= 0)
                vstore16(x[i], 0, state + (size_t)tok[i] * STATE_WIDTH + c);
    }
    float col[16] __attribute__((aligned(64)));
    for (; c < DV + 2; c++) {
        PRIV(float16, col, 0) = c < DV ? st->acc[c] : c == DV ? st->m : st->l;
        for (int i = 0; i < 16; i++)
            if (tok[i] >= 0)
                state[(size_t)tok[i] * STATE_WIDTH + c] = col[i];
    }
}

inline void resume_lanes(lane_state *st, __global const float *state, const int *tok)
{
    int rows[16];
    for (int i = 0; i < 16; i++)
        rows[i] = max(tok[i], 0); // a live query's row stands in for the lanes past the end
    int c = 0;
    for (; c + 16 <= DV; c += 16) {
        float16 x[16];
        for (int t = 0; t < 16; t++)
            x[t] = vload16(0, state + (size_t)rows[t] * STATE_WIDTH + c);
        transpose16(x);
        for (int u = 0; u < 16; u++)
            st->acc[c + u] = x[u];
    }
    float col[16] __attribute__((aligned(64)));
    for (; c < DV + 2; c++) {
        for (int i = 0; i < 16; i++)
            col[i] = state[(size_t)rows[i] * STATE_WIDTH + c];
        const float16 x = PRIV(float16, col, 0);
        if (c < DV)
            st->acc[c] = x;
        else if (c == DV)
            st->m = x;
        else
            st->l = x;
    }
}

// The options of a launch (GRID_REGIONS_ARGS' last three).
typedef struct {
    bool resume, suspend, skip_self;
} unit_mode;

// One unit: up to QV x 16 queries of one region (the lanes past its end are dead: tok -1)
// against the region's keys.
inline void region_unit(__global const elem_t *qh, __global const elem_t *kh, __global const elem_t *vh,
                        __global elem_t *oh, __global float *lseh, __global float *stateh, __global const int *tokens,
                        int first, int count, int q0, int kv_len, int causal, float qscale, int write_lse,
                        unit_mode mode, row_hints *hints)
{
    int tok[QV][16] __attribute__((aligned(64)));
    int16 qtok[QV];
    int qmax = -1, qmin = INT_MAX;
    float16 qt[QV][D]; // element d of each vector's 16 queries, scaled
    lane_state st[QV];
    for (int u = 0; u < QV; u++) {
        for (int i = 0; i < 16; i++) {
            const int x = q0 + 16 * u + i;
            tok[u][i] = x < count ? tokens[first + x] : -1;
            if (tok[u][i] >= 0) {
                qmax = max(qmax, tok[u][i]);
                qmin = min(qmin, tok[u][i]);
            }
        }
        qtok[u] = PRIV(int16, tok[u], 0);
        load_queries(qt[u], qh, tok[u], qscale);
        if (mode.resume) {
            resume_lanes(&st[u], stateh, tok[u]);
            continue;
        }
        st[u].m = (float16)(-INFINITY);
        st[u].l = (float16)(0.0f);
        for (int c = 0; c < DV; c++)
            st[u].acc[c] = (float16)(0.0f);
    }
    // The keys: the region's tokens below kv_len and, under causal, up to the last query.
    const int last = causal ? min(kv_len - 1, qmax) : kv_len - 1;
    int nkeys = 0;
    while (nkeys < count && tokens[first + nkeys] <= last)
        nkeys++;
    float16 sc[QV][KCH];
    int16 ok[QV][KCH];
#if CLATTN_DTYPE != 0
    float kf[KCH][D16] __attribute__((aligned(64))), vf[KCH][DV16] __attribute__((aligned(64)));
#endif
    for (int j0 = 0; j0 < nkeys; j0 += KCH) {
        const int nk = min(KCH, nkeys - j0);
        int kt[KCH];
        key_row krow[KCH], vrow[KCH];
        for (int j = 0; j < nk; j++) {
            kt[j] = tokens[first + j0 + j];
#if CLATTN_DTYPE == 0
            krow[j] = kh + (size_t)kt[j] * D;
            vrow[j] = vh + (size_t)kt[j] * DV;
#else
            krow[j] = kf[j];
            vrow[j] = vf[j];
#endif
        }
#if CLATTN_DTYPE != 0
        widen_rows(&kf[0][0], D16, kh, kt, nk, D);
        widen_rows(&vf[0][0], DV16, vh, kt, nk, DV);
#endif
        region_scores(sc, qt, krow, nk, hints);
        const bool masked = (causal && kt[nk - 1] > qmin) || (mode.skip_self && kt[0] <= qmax && kt[nk - 1] >= qmin);
        float16 alpha[QV];
        for (int u = 0; u < QV; u++) {
            int16 seen = (int16)(-1);
            if (masked) {
                seen = (int16)(0);
                for (int j = 0; j < nk; j++) {
                    const int16 key = (int16)(kt[j]);
                    ok[u][j] =
                        (causal ? key <= qtok[u] : (int16)(-1)) & (mode.skip_self ? key != qtok[u] : (int16)(-1));
                    sc[u][j] = select((float16)(-INFINITY), sc[u][j], ok[u][j]);
                    seen |= ok[u][j];
                }
            }
            alpha[u] = lane_softmax(&st[u].m, &st[u].l, sc[u], seen, nk, 1);
        }
        region_values(st, sc, alpha, vrow, nk, masked && !values_finite(vrow, nk), ok);
    }
    for (int u = 0; u < QV; u++)
        if (mode.suspend)
            suspend_lanes(stateh, &st[u], tok[u]);
        else
            store_outputs(oh, lseh, &st[u], tok[u], kv_len, write_lse);
}

CPU_VARIANT_KERNEL void grid_regions(GRID_REGIONS_ARGS)
{
    const int bh = get_global_id(1);
    const int b = bh / heads;
    const size_t bhk = kv_head_of(bh, heads, kv_heads);
    const int kv_len = seq_lens[b];
    __global const elem_t *qh = q + (size_t)bh * n * D, *kh = k + bhk * n * D, *vh = v + bhk * n * DV;
    __global elem_t *oh = out + (size_t)bh * n * DV;
    __global float *lseh = lse + (size_t)bh * n, *stateh = state + (size_t)bh * n * STATE_WIDTH;
    const unit_mode mode = {resume, suspend, skip_self};
    const int u_first = (int)get_global_id(0) * per_item, u_end = min(nunits, u_first + per_item);
    for (int x = u_first; x < u_end; x++) {
        row_hints hints; // its row lists are filled as far as n, never read beyond
        hints.n = hints.at = hints.line = 0;
        if (x + 1 < u_end)
            list_unit_rows(&hints, qh, kh, vh, stateh, resume || suspend, oh, !suspend, units, regions, tokens, x + 1,
                           units[2 * x]);
        const int region = units[2 * x], first = regions[region];
        region_unit(qh, kh, vh, oh, lseh, stateh, tokens, first, regions[region + 1] - first, units[2 * x + 1], kv_len,
                    causal, qscale, write_lse, mode, &hints);
        hint_lines(&hints, INT_MAX);
    }
    stream_fence();
}
