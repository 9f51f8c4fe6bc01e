// The CPU variant's neighborhood kernel, compiled after common.cl and attention_cpu.cl (for
// exp2_nonpositive): one query per vector lane, 16 neighbouring queries of a kernel row at a
// time, so that a key offset is the same for every lane and a key of the window is one
// unmasked vector load, with no key a lane does not see computed.
//
// Why. A 7 x 7 neighborhood's queries see 49 keys each, but any tile of several queries sees
// the union of their windows (a 2 x 8 tile: 8 x 14 keys, 44% of them useful), and packing that
// union costs as much again. Instead the 16 queries (r, c0 + i) of one kernel row see, at key
// row kr and offset o, the keys (kr, c0 + i + o): contiguous columns. A work-item transposes the
// key rows its queries need into its own scratch, K as [D][columns] and V as [DV][columns]
// (a ring of as many key rows as a window is tall: walking down the rows, each key row is
// transposed once), and then a score is D multiply-adds of a query vector (16 queries' d-th
// elements) with one key vector, and P.V the same over DV. Lanes whose window does not hold the
// key (only at the grid's borders, where windows shift inward, and past the row's end) are
// masked; interior offsets need no mask at all.
//
// Kernel coordinates are host/grid.h's (a dilated axis listed group by group, so each window is
// an interval). Scratch columns: `pad` columns before the grid's first, then the grid's W, then
// enough that c0 + 15 + o stays inside for every offset o a row uses (host/launch_grid.c).
// -DCLATTN_LANE_ROWS=<1..3>  kernel rows of queries a work-item takes at once (host/launch_grid.c):
//                            they share each key and value vector, which is then loaded once for
//                            all of them, at the price of the rows of their windows' union that one
//                            of them does not see (computed, then masked)
#ifndef CLATTN_LANE_ROWS
#define CLATTN_LANE_ROWS 3
#endif
#define RB CLATTN_LANE_ROWS
#define PAIRS 8        // (key row, offset) pairs scored together: they share each key vector's load
#define CHUNK 64       // pairs per online-softmax step: 16-lane scores in private memory
#define FAR 0x20000000 // the token of a padding column: past every kv_len, after every query

// The arguments of `grid_lanes` (host/launch_grid.c sets them in this order).
// clang-format off
#define GRID_LANES_ARGS                                                                            \
    __global const elem_t *q,     /* [B, H, N, D], token order */                                  \
    __global const elem_t *k,     /* [B, Hkv, N, D], token order */                                \
    __global const elem_t *v,     /* [B, Hkv, N, DV], token order */                               \
    __global const int *axis,     /* host/grid.c's axis table */                                   \
    __global const int *tokc,     /* [wp] grid column of each scratch column; FAR for padding */   \
    __global const int *seq_lens, /* [B] */                                                        \
    __global elem_t *out,         /* [B, H, N, DV] */                                              \
    __global float *lse,          /* [B, H, N] when write_lse */                                   \
    __global float *scratch,      /* per work-item [ring][D + DV][wp] */                           \
    int heads, int kv_heads, int h, int w, int wp, int pad, int ring, int rows_per_item,           \
    int causal, float qscale, int write_lse
// clang-format on

// The running softmax of 16 queries, one per lane (common.cl's row rule for l: +0 no visible
// key, -0 visible keys whose logits were all -inf, NaN a NaN or +inf logit).
typedef struct {
    float16 m, l;
    float16 acc[DV];
} lane_state;

// Which lanes of a query row see a pair's key: every live lane (no mask needed), none (the key
// row is outside the row's window: the row skips the pair's values) or some (at the grid's
// borders and past the row's end: lane-wise masks).
#define SEEN_BY_ALL 0
#define SEEN_BY_NONE 1
#define SEEN_BY_SOME 2

// One (key row, offset) pair of a chunk: where its key and value vectors start, and its masks.
typedef struct {
    __global const float *kb, *vb; // scratch column c0 + o of key row kr: element d at kb[d * wp]
    int16 ok[RB];                  // per query row of the block, the lanes that see the key
    int seen[RB];                  // per query row, SEEN_BY_ALL, _NONE or _SOME
} lane_pair;

// Transposes a 16 x 16 block in registers: x[i][j] becomes x[j][i]. Four butterfly steps, each
// swapping bit k of the row index with bit k of the column index through 16 two-vector shuffles
// (constant masks: one permute instruction each on AVX-512), instead of 256 scalar moves.
#define TRANSPOSE_STEP(x, k, lo_mask, hi_mask)                                                                         \
    for (int i = 0; i < 16; i++)                                                                                       \
        if (!(i & (k))) {                                                                                              \
            const float16 a = x[i], b = x[i + (k)];                                                                    \
            x[i] = shuffle2(a, b, lo_mask);                                                                            \
            x[i + (k)] = shuffle2(a, b, hi_mask);                                                                      \
        }
inline __attribute__((always_inline)) void transpose16(float16 x[16])
{
#pragma unroll
    TRANSPOSE_STEP(x, 8, (uint16)(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
                   (uint16)(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31))
#pragma unroll
    TRANSPOSE_STEP(x, 4, (uint16)(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27),
                   (uint16)(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31))
#pragma unroll
    TRANSPOSE_STEP(x, 2, (uint16)(0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
                   (uint16)(2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31))
#pragma unroll
    TRANSPOSE_STEP(x, 1, (uint16)(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30),
                   (uint16)(1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31))
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

// Elements [0, width) of 16 rows as `width` vectors of 16, element e of every row at
// dst + e * stride.
inline void transpose_rows(__global float *dst, size_t stride, __global const elem_t *src, const int *rows, int width)
{
    int e = 0;
    for (; e + 16 <= width; e += 16) {
        float16 x[16];
        gather_block(x, src, rows, width, e);
        for (int u = 0; u < 16; u++)
            vstore16(x[u], 0, dst + (size_t)(e + u) * stride);
    }
    for (; e < width; e++)
        vstore16(gather_column(src, rows, width, e), 0, dst + (size_t)e * stride);
}

// Key row kr (kernel coordinates) transposed into a ring slot: K as [D][wp], V as [DV][wp],
// columns pad + kc, sixteen at a time (the last group's extra columns repeat the row's last key
// and land in the padding, which no lane sees).
inline void transpose_key_row(__global float *slot, __global const elem_t *k, __global const elem_t *v,
                              __global const int *axis, int h, int w, int wp, int pad, int kr)
{
    const int row_tok = axis[kr] * w;
    for (int kc = 0; kc < w; kc += 16) {
        int tok[16];
        for (int t = 0; t < 16; t++)
            tok[t] = row_tok + axis[h + min(kc + t, w - 1)];
        transpose_rows(slot + pad + kc, wp, k, tok, D);
        transpose_rows(slot + (size_t)D * wp + pad + kc, wp, v, tok, DV);
    }
}

// Scores of the block's rows against pairs [0, n) into sc: PAIRS at a time, each key vector
// loaded once for the RB rows and each query vector once for the PAIRS keys (a short last pass
// repeats pair 0 and drops the extra sums). Masked lanes get -inf.
inline void lane_scores(float16 sc[RB][CHUNK], float16 qv[RB][D], const lane_pair *pr, int n, int wp)
{
    for (int j0 = 0; j0 < n; j0 += PAIRS) {
        __global const float *kb[PAIRS];
        for (int j = 0; j < PAIRS; j++)
            kb[j] = pr[j0 + j < n ? j0 + j : 0].kb;
        float16 s[RB][PAIRS];
        for (int rb = 0; rb < RB; rb++)
            for (int j = 0; j < PAIRS; j++)
                s[rb][j] = (float16)(0.0f);
        for (int d = 0; d < D; d++) {
            float16 qd[RB];
#pragma unroll
            for (int rb = 0; rb < RB; rb++)
                qd[rb] = qv[rb][d];
#pragma unroll
            for (int j = 0; j < PAIRS; j++) {
                const float16 kv = vload16(0, kb[j] + (size_t)d * wp);
#pragma unroll
                for (int rb = 0; rb < RB; rb++)
                    s[rb][j] = fma(qd[rb], kv, s[rb][j]);
            }
        }
        for (int j = 0; j < PAIRS && j0 + j < n; j++)
            for (int rb = 0; rb < RB; rb++)
                sc[rb][j0 + j] = pr[j0 + j].seen[rb] == SEEN_BY_ALL
                                     ? s[rb][j]
                                     : select((float16)(-INFINITY), s[rb][j], pr[j0 + j].ok[rb]);
    }
}

// One online-softmax step of 16 queries, one per lane, over the scores sc[0, n) (masked keys at
// -inf): the scores become weights and the factor alpha is returned. `seen`: the lanes that see
// at least one of the n keys. Every lane is its own row, so common.cl's rule is applied
// lane-wise: a lane whose max is still -inf keeps alpha = 1 and weights 0 (or NaN, for a NaN
// logit), and its sum turns -0 once it has seen a key.
inline float16 lane_softmax(lane_state *st, float16 *sc, int16 seen, int n)
{
    float16 mx = (float16)(-INFINITY);
    for (int j = 0; j < n; j++)
        mx = fmax(mx, sc[j]);
    const float16 mnew = fmax(st->m, mx);
    const int16 none = mnew == (float16)(-INFINITY);
    const float16 base = select(mnew, (float16)(0.0f), none);
    const float16 shift = select(st->m - mnew, (float16)(0.0f), none);
    const float16 alpha = select(exp2_nonpositive(shift), (float16)(1.0f), shift == (float16)(0.0f));
    float16 sum = (float16)(0.0f);
    for (int j = 0; j < n; j++) {
        sc[j] = exp2_nonpositive(sc[j] - base);
        sum += sc[j];
    }
    const float16 kept = select(st->l, copysign(st->l, (float16)(-1.0f)), seen);
    st->l = select(st->l * alpha + sum, select(kept, sum, isnan(sum)), none);
    st->m = mnew;
    return alpha;
}

// acc = alpha * acc + P.V for the block's rows, four columns at a time so that each value vector
// is loaded once for the RB rows. A row skips the pairs none of its lanes sees (the key rows of
// the block's union outside its window), and masked lanes' values are replaced by 0 (a NaN
// planted there stays out); a visible key whose weight is 0 still multiplies its value, as the
// reference does.
inline void lane_values(lane_state *st, float16 sc[RB][CHUNK], const float16 *alpha, const lane_pair *pr, int n, int wp)
{
    for (int c = 0; c < DV; c += 4) {
        const int cols = min(4, DV - c);
        float16 a[RB][4];
#pragma unroll
        for (int rb = 0; rb < RB; rb++)
#pragma unroll
            for (int u = 0; u < 4; u++)
                a[rb][u] = u < cols ? st[rb].acc[c + u] * alpha[rb] : (float16)(0.0f);
        for (int j = 0; j < n; j++) {
            __global const float *vb = pr[j].vb + (size_t)c * wp;
            float16 vv[4];
#pragma unroll
            for (int u = 0; u < 4; u++)
                vv[u] = vload16(0, vb + (size_t)(u < cols ? u : 0) * wp);
#pragma unroll
            for (int rb = 0; rb < RB; rb++) {
                const int seen = pr[j].seen[rb];
                if (seen == SEEN_BY_ALL) {
#pragma unroll
                    for (int u = 0; u < 4; u++)
                        a[rb][u] = fma(sc[rb][j], vv[u], a[rb][u]);
                } else if (seen == SEEN_BY_SOME) {
#pragma unroll
                    for (int u = 0; u < 4; u++)
                        a[rb][u] = fma(sc[rb][j], select((float16)(0.0f), vv[u], pr[j].ok[rb]), a[rb][u]);
                }
            }
        }
#pragma unroll
        for (int rb = 0; rb < RB; rb++)
#pragma unroll
            for (int u = 0; u < 4; u++)
                if (u < cols)
                    st[rb].acc[c + u] = a[rb][u];
    }
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
                STORE_16(x[i], 0, out + (size_t)tok[i] * DV + c);
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

// The queries (r + rb, c0 + i), rb < rows, i < 16: RB kernel rows (fewer at the end of a
// work-item's rows) of 16 columns. A row's window of key rows is the same for its 16 lanes; the
// columns [clo_i, clo_i + cn_i) are each lane's own and the same in every row.
inline void lane_block(__global const elem_t *q, __global elem_t *out, __global float *lse, __global const int *axis,
                       __global const int *tokc, __global const float *ring_base, size_t bh, int h, int w, int wp,
                       int pad, int ring, int r, int rows, int c0, int kv_len, int causal, float qscale, int write_lse)
{
    const int n = h * w;
    __global const int *part = axis + h + w; // [lo_r H][n_r H][lo_c W][n_c W]
    int clo[16] __attribute__((aligned(64))), cn[16] __attribute__((aligned(64)));
    int olo = INT_MAX, ohi = INT_MIN;
    for (int i = 0; i < 16; i++) {
        const int c = c0 + i;
        const bool live = c < w;
        clo[i] = live ? part[2 * h + c] - c : 0; // relative to the lane's own column
        cn[i] = live ? part[2 * h + w + c] : 0;
        if (live) {
            olo = min(olo, clo[i]);
            ohi = max(ohi, clo[i] + cn[i]);
        }
    }
    const int16 lclo = PRIV(int16, clo, 0), lcn = PRIV(int16, cn, 0), live = lcn > 0;
    int tok[RB][16] __attribute__((aligned(64)));
    int16 qtok[RB];
    int rlo[RB], rhi[RB], klo = INT_MAX, khi = INT_MIN;
    float16 qv[RB][D]; // element d of each row's 16 queries, scaled
    lane_state st[RB];
    for (int rb = 0; rb < RB; rb++) {
        const bool on = rb < rows;
        for (int i = 0; i < 16; i++)
            tok[rb][i] = on && c0 + i < w ? axis[r + rb] * w + axis[h + c0 + i] : -1;
        rlo[rb] = on ? part[r + rb] : 0;
        rhi[rb] = on ? rlo[rb] + part[h + r + rb] : 0;
        if (on) {
            klo = min(klo, rlo[rb]);
            khi = max(khi, rhi[rb]);
        }
        qtok[rb] = select(PRIV(int16, tok[rb], 0), (int16)(INT_MAX), PRIV(int16, tok[rb], 0) < (int16)(0));
        load_queries(qv[rb], q + (size_t)bh * n * D, tok[rb], qscale);
        st[rb].m = (float16)(-INFINITY);
        st[rb].l = (float16)(0.0f);
        for (int c = 0; c < DV; c++)
            st[rb].acc[c] = (float16)(0.0f);
    }
    lane_pair pr[CHUNK];
    float16 sc[RB][CHUNK];
    int np = 0;
    for (int kr = klo; kr < khi; kr++) {
        __global const float *slot = ring_base + (size_t)(kr % ring) * (D + DV) * wp;
        const int row_tok = axis[kr] * w;
        for (int o = olo; o < ohi; o++) {
            const int col = pad + c0 + o; // scratch column of lane 0's key
            const int16 ktok = (int16)(row_tok) + vload16(0, tokc + col);
            const int16 in = live & (as_uint16((int16)(o)-lclo) < as_uint16(lcn)) & (ktok < (int16)(kv_len));
            for (int rb = 0; rb < RB; rb++) {
                int16 ok = kr >= rlo[rb] && kr < rhi[rb] ? in : (int16)(0);
                if (causal)
                    ok &= ktok <= qtok[rb];
                pr[np].ok[rb] = ok;
                pr[np].seen[rb] = rb >= rows || !any(ok) ? SEEN_BY_NONE : any(live & ~ok) ? SEEN_BY_SOME : SEEN_BY_ALL;
            }
            pr[np].kb = slot + col;
            pr[np].vb = slot + (size_t)D * wp + col;
            if (++np == CHUNK || (kr == khi - 1 && o == ohi - 1)) {
                lane_scores(sc, qv, pr, np, wp);
                float16 alpha[RB];
                for (int rb = 0; rb < RB; rb++) {
                    int16 seen = (int16)(0);
                    for (int j = 0; j < np; j++)
                        seen |= pr[j].ok[rb];
                    alpha[rb] = lane_softmax(&st[rb], sc[rb], seen, np);
                }
                lane_values(st, sc, alpha, pr, np, wp);
                np = 0;
            }
        }
    }
    for (int rb = 0; rb < rows; rb++)
        store_outputs(out + (size_t)bh * n * DV, lse + (size_t)bh * n, &st[rb], tok[rb], kv_len, write_lse);
}

// The window of key rows [*lo, *hi) of kernel rows [r, r + rows).
inline void block_window(__global const int *part, int h, int r, int rows, int *lo, int *hi)
{
    *lo = INT_MAX, *hi = INT_MIN;
    for (int rb = 0; rb < rows; rb++) {
        *lo = min(*lo, part[r + rb]);
        *hi = max(*hi, part[r + rb] + part[h + r + rb]);
    }
}

__kernel void grid_lanes(GRID_LANES_ARGS)
{
    const int bh = get_global_id(1);
    const int b = bh / heads;
    const size_t bhk = kv_head_of(bh, heads, kv_heads);
    const int n = h * w, kv_len = seq_lens[b];
    const size_t item = (size_t)bh * get_global_size(0) + get_global_id(0);
    __global float *ring_base = scratch + item * (size_t)ring * (D + DV) * wp;
    __global const elem_t *kh = k + bhk * n * D, *vh = v + bhk * n * DV;
    __global const int *part = axis + h + w;
    const int r_first = (int)get_global_id(0) * rows_per_item, r_end = min(h, r_first + rows_per_item);
    int have_lo = 0, have_hi = 0; // key rows [have_lo, have_hi) are in the ring
    for (int r = r_first; r < r_end; r += RB) {
        const int rows = min(RB, r_end - r);
        int lo, hi;
        block_window(part, h, r, rows, &lo, &hi);
        // Windows move down monotonically inside a dilation group; a jump (a new group, or the
        // work-item's first row) reloads the whole window.
        if (lo < have_lo || lo >= have_hi)
            have_lo = have_hi = lo;
        for (int kr = have_hi; kr < hi; kr++)
            transpose_key_row(ring_base + (size_t)(kr % ring) * (D + DV) * wp, kh, vh, axis, h, w, wp, pad, kr);
        have_lo = lo;
        have_hi = max(have_hi, hi);
        for (int c0 = 0; c0 < w; c0 += 16)
            lane_block(q, out, lse, axis, tokc, ring_base, bh, h, w, wp, pad, ring, r, rows, c0, kv_len, causal, qscale,
                       write_lse);
    }
}
