// The GPU variant of `attention`, compiled after common.cl and gpu_stage.cl: a register-tiled
// flash attention for GPUs (FlashAttention 2's loop order, a GEMM's register blocking).
//
// A work-group owns BM query rows and walks key tiles of BN keys. Its WG = (BM/TM) * (BN/TN)
// work-items form a grid of RT = BM/TM row threads by CT = BN/TN column threads; work-item
// (ty, tx) owns the scores of rows ty + RT*i (i < TM) against keys tx + CT*j (j < TN), and the
// output of the same rows in the value column groups tx + CT*g. Strided ownership makes the lanes
// of a warp read consecutive rows of Q and of K (one row stride apart, strides padded so that
// they fall in distinct banks) or one row of V (contiguous): every __local read is conflict-free
// or a broadcast. Q is staged once (each score is then scaled by scale * log2(e)); K and V share
// one buffer, V staged after the scores are done with K. Per key tile: stage K, scores in registers, the mask
// (edge tiles only: a work-group-uniform branch), each row's max across its CT work-items
// through __local, P = exp2(S - max) into __local, stage V, rescale and P.V. Row sums stay
// partial per work-item until the end.
//
// Build options (cl/common.cl lists the shared ones):
//   -DCLATTN_BM, -DCLATTN_BN   query rows per work-group, keys per tile
//   -DCLATTN_TM, -DCLATTN_TN   each work-item's register block of scores (TM * TN <= 32)
//   -DCLATTN_REQD_WG=<0|1>     declare reqd_work_group_size (the table leaves it out on Adreno,
//                              as CLBlast does)
// host/tuning.c mirrors the __local layout below (clattn__tiles_local_bytes) to choose tiles
// before building; the built kernel's CL_KERNEL_LOCAL_MEM_SIZE is what the plan checks last.
#ifndef CLATTN_BM
#define CLATTN_BM 64
#endif
#ifndef CLATTN_BN
#define CLATTN_BN 32
#endif
#ifndef CLATTN_TM
#define CLATTN_TM 4
#endif
#ifndef CLATTN_TN
#define CLATTN_TN 4
#endif
#ifndef CLATTN_REQD_WG
#define CLATTN_REQD_WG 1
#endif
#define BM CLATTN_BM
#define BN CLATTN_BN
#define TM CLATTN_TM
#define TN CLATTN_TN
#define RT (BM / TM) // row threads
#define CT (BN / TN) // column threads
#define WG (RT * CT)
#if BM % TM != 0 || BN % TN != 0 || TM * TN > 32
#error "CLATTN_BM must be a multiple of CLATTN_TM, CLATTN_BN of CLATTN_TN, and TM * TN <= 32 (the mask bits)"
#endif

// Vector widths of the __local reads: QW over D (Q and K rows) and OW over DV (value column
// groups), common.cl's, and PW over BN (rows of P). A row stride is padded by one vector when it
// holds an even number of vectors, so that the rows that the lanes of a warp read start in
// distinct banks; P's by CT floats where CT is a multiple of PW, so that its CT writers per row (a
// warp's lanes write ty * PS + tx) fill distinct banks too.
#if BN % 4 == 0
#define PW 4
typedef float4 pv_t;
#elif BN % 2 == 0
#define PW 2
typedef float2 pv_t;
#else
#define PW 1
typedef float pv_t;
#endif
#define QS (D + ((D / QW) % 2 == 0 ? QW : 0))   // row stride of staged Q and K
#define PU (CT % PW == 0 ? CT : PW)             // P's padding unit: its writers are CT to a row
#define PS (BN + ((BN / PU) % 2 == 0 ? PU : 0)) // row stride of P
#define KVS (QS > DV ? QS : DV)                 // K rows (stride QS), then V rows (stride DV)
#define NG (DV / OW)                            // value column groups
#define TG ((NG + CT - 1) / CT)                 // of them per work-item
#define MASKED_P 0x80000000u                    // -0: a masked weight (a visible one is >= +0)

#if QW == 4
#define DOT_ACC(a, b, s) fma((a).w, (b).w, fma((a).z, (b).z, fma((a).y, (b).y, fma((a).x, (b).x, (s)))))
#elif QW == 2
#define DOT_ACC(a, b, s) fma((a).y, (b).y, fma((a).x, (b).x, (s)))
#else
#define DOT_ACC(a, b, s) fma((a), (b), (s))
#endif

typedef union {
    pv_t v;
    float s[PW];
} p_lanes;

// What a work-item carries across key tiles: its rows' positions, the rows' running max (the
// same in every work-item of a row), its own part of the rows' sums, and its output block.
typedef struct {
    int pos[TM];
    float m[TM], l[TM];
    ov_t o[TM][TG];
} item_state;

// The largest of a row's CT partial values (its max over the keys each work-item holds).
inline float row_max(__local const float *part)
{
    float m = -INFINITY;
#if CT % 4 == 0
    for (int x = 0; x < CT / 4; x++) {
        const float4 v = LVEC(float4, part, x);
        m = fmax(m, fmax(fmax(v.x, v.y), fmax(v.z, v.w)));
    }
#else
    for (int x = 0; x < CT; x++)
        m = fmax(m, part[x]);
#endif
    return m;
}

// One key tile of `count` keys (rows of k and v: the caller's K and V, or the side keys; the rest
// of the BN are zeros): scores, softmax and P.V. `ok` has bit i * TN + j set when row i sees key
// j of the work-item (edge tiles only; every key is visible in the others).
inline __attribute__((always_inline)) void key_tile(item_state *st, __local float *qs, __local float *kv,
                                                    __local float *ps, __local float *red, src_t k, src_t v, int count,
                                                    bool edge, uint ok, float qscale)
{
    const int tx = get_local_id(0) % CT, ty = get_local_id(0) / CT;
    // K; rows past count become zeros, so that no stale value enters the scores. kv and ps are
    // free: the previous tile ended on a barrier.
    STAGE_ROWS_IN(qv_t, QW, kv, QS, k, count, D, BN, WG)
    barrier(CLK_LOCAL_MEM_FENCE);

    float s[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++)
            s[i][j] = 0.0f;
#pragma unroll 1
    for (int d = 0; d < D / QW; d++) {
        qv_t qr[TM], kr[TN];
#pragma unroll
        for (int i = 0; i < TM; i++)
            qr[i] = LVEC(qv_t, qs + (ty + RT * i) * QS, d);
#pragma unroll
        for (int j = 0; j < TN; j++)
            kr[j] = LVEC(qv_t, kv + (tx + CT * j) * QS, d);
#pragma unroll
        for (int i = 0; i < TM; i++)
#pragma unroll
            for (int j = 0; j < TN; j++)
                s[i][j] = DOT_ACC(qr[i], kr[j], s[i][j]);
    }
    // fmax, not max: a NaN logit must not become the row's max (it reaches the row through its
    // weight, exp2(NaN) = NaN, instead).
#pragma unroll
    for (int i = 0; i < TM; i++) {
        float mt = -INFINITY;
#pragma unroll
        for (int j = 0; j < TN; j++) {
            s[i][j] *= qscale;
            if (edge && !((ok >> (i * TN + j)) & 1u))
                s[i][j] = -INFINITY;
            mt = fmax(mt, s[i][j]);
        }
        red[(ty + RT * i) * CT + tx] = mt;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

#pragma unroll
    for (int i = 0; i < TM; i++) {
        const float mnew = fmax(st->m[i], row_max(red + (ty + RT * i) * CT));
        __local float *prow = ps + (ty + RT * i) * PS;
        if (mnew == -INFINITY) {
            // No finite logit in the row yet (rare): weights of +0, and the sum records what the
            // visible keys were (write_row's rule): NaN for a NaN logit, else -0. The weights
            // still multiply the values, so that an infinite value gives NaN as in the reference.
#pragma unroll
            for (int j = 0; j < TN; j++) {
                const bool seen = !edge || ((ok >> (i * TN + j)) & 1u);
                if (seen)
                    st->l[i] = isnan(s[i][j]) ? NAN : copysign(st->l[i], -1.0f);
                prow[tx + CT * j] = seen ? 0.0f : as_float(MASKED_P);
            }
            continue;
        }
        const float alpha = exp2(st->m[i] - mnew); // 0 when m was -inf, 1 when the max held
        st->m[i] = mnew;
        st->l[i] *= alpha;
#pragma unroll
        for (int g = 0; g < TG; g++)
            st->o[i][g] *= alpha;
#pragma unroll
        for (int j = 0; j < TN; j++) {
            const bool seen = !edge || ((ok >> (i * TN + j)) & 1u);
            const float p = exp2(s[i][j] - mnew);
            if (seen)
                st->l[i] += p;
            prow[tx + CT * j] = seen ? p : as_float(MASKED_P);
        }
    }
    // Every work-item has passed the barrier after its scores: K is no longer read.
    STAGE_ROWS_IN(ov_t, OW, kv, DV, v, count, DV, BN, WG)
    barrier(CLK_LOCAL_MEM_FENCE);

    // P.V. On an edge tile a masked key adds nothing, not even 0 * its value (which may be NaN or
    // infinite): a select, so that the lanes of a warp stay together (a copy of the loop per kind
    // of tile took 255 VGPRs on gfx906 at D = 128). A visible key with weight 0 adds 0 * its value,
    // as in the reference.
#pragma unroll 1
    for (int t = 0; t < BN; t += PW) {
        p_lanes pr[TM];
#pragma unroll
        for (int i = 0; i < TM; i++)
            pr[i].v = LVEC(pv_t, ps + (ty + RT * i) * PS, t / PW);
#pragma unroll
        for (int u = 0; u < PW; u++)
#pragma unroll
            for (int g = 0; g < TG; g++) {
                const int col = tx + CT * g;
                if (NG % CT != 0 && col >= NG)
                    continue;
                const ov_t vr = LVEC(ov_t, kv + (t + u) * DV, col);
#pragma unroll
                for (int i = 0; i < TM; i++) {
                    const float p = pr[i].s[u];
                    const ov_t sum = fma((ov_t)(p), vr, st->o[i][g]);
                    st->o[i][g] = edge && as_uint(p) == MASKED_P ? st->o[i][g] : sum;
                }
            }
    }
    // P.V is done with kv and ps. The barrier ends the tile rather than starting the next one: the
    // same count, and POCL 6.0 aborted on the other order (an assertion in its parallel-region
    // formation, with 6 x 5 tiles of 3 x 5 blocks), where P.V's loop ran into the key loop's exit.
    barrier(CLK_LOCAL_MEM_FENCE);
}

// The band pass only: the host sends decode and the global rows (which see every key) to
// decode_gpu.cl's split over the keys, so `rows` and `use_rows` of the shared argument list go unused.
__kernel
#if CLATTN_REQD_WG
    __attribute__((reqd_work_group_size(WG, 1, 1)))
#endif
    void
    attention(ATTENTION_ARGS(elem_t))
{
    __local float qs[BM * QS] __attribute__((aligned(16)));
    __local float kv[BN * KVS] __attribute__((aligned(16)));
    __local float ps[BM * PS] __attribute__((aligned(16)));
    __local float red[BM * CT] __attribute__((aligned(16)));
    const int tx = get_local_id(0) % CT, ty = get_local_id(0) / CT;
    const int ntiles = (num_rows + BM - 1) / BM;
    const int tile = reverse_tiles ? ntiles - 1 - (int)get_group_id(0) : (int)get_group_id(0);
    const int bh = get_global_id(1);
    const int b = bh / heads;
    const size_t bhk = kv_head_of(bh, heads, kv_heads);
    const int kv_len = seq_lens[b];
    const band_rule rule = {left, right, dilation, causal};

    // Q; a short last tile repeats its last row. Not pre-scaled: qscale multiplies each score once,
    // so that Q.K of integers (the tests' 1e4 logits) stays exact until that one rounding, where
    // a scaled Q would round in each of the D steps of the sum (2e-4 off the reference there).
    for (int x = get_local_id(0); x < BM * (D / QW); x += WG) {
        const int r = x / (D / QW), c = x % (D / QW);
        const int i = min(tile * BM + r, num_rows - 1);
        LVEC(qv_t, qs + r * QS, c) = GLOAD(qv_t, QW, q + ((size_t)bh * nq + i) * D, c);
    }
    item_state st;
#pragma unroll
    for (int i = 0; i < TM; i++) {
        st.pos[i] = min(tile * BM + ty + RT * i, num_rows - 1) + nk - nq;
        st.m[i] = -INFINITY;
        st.l[i] = 0.0f;
#pragma unroll
        for (int g = 0; g < TG; g++)
            st.o[i][g] = (ov_t)(0.0f);
    }

    // A tile's rows are consecutive, so its band spans its first and last positions; a key tile
    // is an edge tile when some of its keys lie outside some row's band or past kv_len.
    const int pfirst = tile * BM + nk - nq;
    const int plast = min(tile * BM + BM, num_rows) - 1 + nk - nq;
    const int lo = max(0, pfirst - left);
    const int hi = min(kv_len - 1, plast + right);
    for (int j0 = lo - lo % BN; lo <= hi && j0 <= hi; j0 += BN) {
        const bool edge = !band_covers(rule, pfirst, plast, j0, j0 + BN - 1) || j0 + BN > kv_len;
        uint ok = 0;
        if (edge)
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++)
                    ok |= (uint)band_visible(rule, st.pos[i], j0 + tx + CT * j, kv_len) << (i * TN + j);
        key_tile(&st, qs, kv, ps, red, SRC_CALLER(k + (bhk * nk + j0) * D), SRC_CALLER(v + (bhk * nk + j0) * DV),
                 min(BN, nk - j0), edge, ok, qscale);
    }
    for (int s0 = side_begin; s0 < side_begin + side_count; s0 += BN) {
        const int count = min(BN, side_begin + side_count - s0);
        uint ok = 0;
#pragma unroll
        for (int j = 0; j < TN; j++) {
            const int t = tx + CT * j;
            const int spos = t < count ? side_pos[(size_t)b * n_side + s0 + t] : -1;
#pragma unroll
            for (int i = 0; i < TM; i++)
                ok |= (uint)(t < count && side_visible(rule, st.pos[i], s0 + t, spos, n_global, n_summary, kv_len))
                      << (i * TN + j);
        }
        key_tile(&st, qs, kv, ps, red, SRC_SCRATCH(side_k + (bhk * n_side + s0) * D),
                 SRC_SCRATCH(side_v + (bhk * n_side + s0) * DV), count, true, ok, qscale);
    }

    // Each row's sum over its CT work-items. red's last readers passed the barriers that end a tile.
    // Zeros combine by their sign bits (write_row's rule: -0 when some visible key had logit -inf,
    // +0 when none was visible), which + would turn into +0.
#pragma unroll
    for (int i = 0; i < TM; i++)
        red[(ty + RT * i) * CT + tx] = st.l[i];
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (int i = 0; i < TM; i++) {
        const int r = ty + RT * i;
        if (tile * BM + r >= num_rows)
            break; // rows ascend with i
        float l = red[r * CT];
        for (int x = 1; x < CT; x++) {
            const float y = red[r * CT + x];
            l = l == 0.0f && y == 0.0f ? as_float(as_uint(l) | as_uint(y)) : l + y;
        }
        if (st.pos[i] >= kv_len)
            l = 0.0f; // padding: the row sees nothing
        const size_t row = (size_t)bh * nq + tile * BM + r;
        const float inv = row_inverse(l);
#pragma unroll
        for (int g = 0; g < TG; g++) {
            const int col = tx + CT * g;
            if (NG % CT == 0 || col < NG)
                GSTORE(ov_t, OW, row_empty(l) ? (ov_t)(0.0f) : st.o[i][g] * inv, out + row * DV, col);
        }
        if (write_lse && tx == 0)
            lse[row] = row_lse(st.m[i], l);
    }
}
