// The GPU variant of `attention`, compiled after common.cl and gpu_stage.cl: a register-tiled
// flash attention for GPUs (FlashAttention 2's loop order, a GEMM's register blocking).
//
// A work-group owns BM query rows and walks key tiles of BN keys. Its WG = (BM/TM) * (BN/TN)
// work-items form a grid of RT = BM/TM row threads by CT = BN/TN column threads; work-item
// (ty, tx) owns the scores of rows ty + RT*i (i < TM) against keys tx + CT*j (j < TN), and the
// output of the same rows in the value column groups tx + CT*g. Strided ownership makes the lanes
// of a warp read consecutive rows of Q and of K (one row stride apart, strides padded so that
// they fall in distinct banks) or one row of V (contiguous): every __local read is conflict-free
// or a broadcast. Q is staged once (each score is then scaled by scale * log2(e)). Per key tile:
// K in __local, scores in registers, the mask (edge tiles only: a work-group-uniform branch), each
// row's max across its CT work-items (through __local, or CLATTN_SHUFFLE), P = exp2(S - max) into
// __local, V in __local, rescale and P.V. Row sums stay partial per work-item until the end. K and
// V are staged when they are needed, in one buffer, each load waited for there; or
// (CLATTN_PREFETCH) loaded into registers a step ahead, V during the scores and the next tile's K
// during P.V (key_tile).
//
// Build options (cl/common.cl lists the shared ones):
//   -DCLATTN_BM, -DCLATTN_BN   query rows per work-group, keys per tile
//   -DCLATTN_TM, -DCLATTN_TN   each work-item's register block of scores (TM * TN <= 32)
//   -DCLATTN_REQD_WG=<0|1>     declare reqd_work_group_size (the table leaves it out on Adreno,
//                              as CLBlast does)
//   -DCLATTN_STAGE=<0..8>      vector loads a work-item issues before it stores them (gpu_stage.cl)
//   -DCLATTN_PREFETCH=<0|1>    load K and V a step ahead (V then has a __local buffer of its own)
//   -DCLATTN_SHUFFLE=<0|1|2>   combine a row's CT partial values (each tile's max, the sums at the
//                              end) by a butterfly of exchanges among the row's work-items: 1
//                              NVIDIA's warp shuffle (shfl.sync through inline PTX: CT a power of
//                              two up to 32, whole warps); 2 the same exchanges through __local,
//                              two barriers each, so that devices without shuffles run this code
//                              (the tests); 0 through __local, each work-item's value once.
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
#ifndef CLATTN_PREFETCH
#define CLATTN_PREFETCH 0
#endif
#ifndef CLATTN_SHUFFLE
#define CLATTN_SHUFFLE 0
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
#if CLATTN_SHUFFLE && (CT & (CT - 1)) != 0
#error "CLATTN_SHUFFLE needs a power of two of column threads (CLATTN_BN / CLATTN_TN)"
#endif
#define TWO_BARRIERS (CLATTN_SHUFFLE && CLATTN_PREFETCH) // a key tile's (key_tile)
#define FLAG(t) (TWO_BARRIERS ? (t)&1 : 0)               // key tile t's nonfinite flag

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
#if CLATTN_PREFETCH
#define KS QS // K's rows; V has a buffer of its own
#else
#define KS (QS > DV ? QS : DV) // K rows (stride QS), then V rows (stride DV) in the same buffer
#endif
#define NG (DV / OW)                      // value column groups
#define TG ((NG + CT - 1) / CT)           // of them per work-item
#define KSHARE ROWS_SHARE(D, QW, BN, WG)  // vectors of a K tile a work-item stages
#define VSHARE ROWS_SHARE(DV, OW, BN, WG) // and of a V tile
#define MASKED_P 0x80000000u              // -0: a masked weight (a visible one is >= +0)
#if OW == 1
#define NONFINITE(x) (!isfinite(x))
#else
#define NONFINITE(x) (!all(isfinite(x)))
#endif

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

// Two of a row's partial sums added, where two zeros keep the sign bit of either (write_row's
// rule: -0 when some visible key had logit -inf, +0 when none was visible), which + would lose.
inline float sum_zeros_signed(float a, float b)
{
    return a == 0.0f && b == 0.0f ? as_float(as_uint(a) | as_uint(b)) : a + b;
}

// y[i] = x[i] (i < TM) of the work-item whose local id differs from this one's in the bits of mask
// (below CT: one of the same rows). Every work-item of the work-group reaches each call.
#if CLATTN_SHUFFLE == 1
// shfl.sync in butterfly mode over the whole warp: the work-group is whole warps, and CT divides 32.
inline void exchange_xor(__local float *scratch, const float *x, float *y, uint mask)
{
#pragma unroll
    for (int i = 0; i < TM; i++)
        __asm__ volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(y[i]) : "f"(x[i]), "r"(mask));
}
#elif CLATTN_SHUFFLE == 2
// Through scratch, TM * WG floats of __local.
inline void exchange_xor(__local float *scratch, const float *x, float *y, uint mask)
{
    const int l = get_local_id(0);
    barrier(CLK_LOCAL_MEM_FENCE); // the last exchange's readers are done with scratch
#pragma unroll
    for (int i = 0; i < TM; i++)
        scratch[i * WG + l] = x[i];
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (int i = 0; i < TM; i++)
        y[i] = scratch[i * WG + (l ^ mask)];
}
#endif
#if CLATTN_SHUFFLE
// The TM values v[i] each combined over its row's CT work-items (red: exchange_xor's scratch) by a
// butterfly: every one of them ends with the same value (fmax, and the sums' additions, give the
// same result in either order of two operands).
#define ROWS_BUTTERFLY(v, combine)                                                                                     \
    _Pragma("unroll") for (uint m_ = 1; m_ < CT; m_ <<= 1)                                                             \
    {                                                                                                                  \
        float other_[TM];                                                                                              \
        exchange_xor(red, (v), other_, m_);                                                                            \
        _Pragma("unroll") for (int i_ = 0; i_ < TM; i_++)(v)[i_] = combine((v)[i_], other_[i_]);                       \
    }
#endif

// What a work-item carries across key tiles: its rows' positions, the rows' running max (the
// same in every work-item of a row), its own part of the rows' sums, and its output block.
typedef struct {
    int pos[TM];
    float m[TM], l[TM];
    ov_t o[TM][TG];
} item_state;

// One key tile: its K and V rows, the first key (band tiles) or side key (side tiles), and how
// many keys there are (the rest of the BN are zeros).
typedef struct {
    src_t k, v;
    int first, count;
} key_src;

// What a work-group walks: the tiles of its band (nband of them from key j_lo), then those of the
// side keys (global, summary, extra) of its batch and kv head.
typedef struct {
    src_t k, v, side_k, side_v; // at key 0 and side key 0
    int j_lo, nband, nk, side_begin, side_end;
} key_walk;

// Tile t of the walk: band tiles for t < nband, side tiles after them.
inline key_src band_tile(const key_walk *w, int t)
{
    const int j0 = w->j_lo + t * BN;
    const key_src s = {SRC_AT(w->k, (size_t)j0 * D), SRC_AT(w->v, (size_t)j0 * DV), j0, min(BN, w->nk - j0)};
    return s;
}

inline key_src side_tile(const key_walk *w, int t)
{
    const int s0 = w->side_begin + (t - w->nband) * BN;
    const key_src s = {SRC_AT(w->side_k, (size_t)s0 * D), SRC_AT(w->side_v, (size_t)s0 * DV), s0,
                       min(BN, w->side_end - s0)};
    return s;
}

inline key_src walk_tile(const key_walk *w, int t)
{
    return t < w->nband ? band_tile(w, t) : side_tile(w, t);
}

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

// One key tile, cur, the walk's t-th: scores, softmax and P.V. `ok` has bit i * TN + j set when
// row i sees key j of the work-item (edge tiles only; every key is visible in the others).
//
// Staged K and V rows past cur.count are zeros, so that no stale value enters the scores. Without
// CLATTN_PREFETCH, K is staged in ks, then V over it once the scores are done, each waited for
// there. With it, ks holds K already (the previous tile stored it, or the walk's start): the tile
// loads its V into registers before the scores and stores it in vs after them, and loads the next
// tile's K (next, when has_next) before P.V and stores it after: each load's latency is spent
// computing. The tile ends on a barrier, so that ks, vs and ps are free at the next one's start.
// A barrier after the scores publishes the rows' maxima through red and frees ks for V; with
// CLATTN_SHUFFLE and CLATTN_PREFETCH there is neither to wait for, and the tile has two barriers
// (TWO_BARRIERS; and the exchanges' own where they go through __local).
//
// nonfinite[FLAG(t)] says whether an edge tile's values hold an infinity or NaN: set by atomic_or
// before the barrier ahead of P.V, read after it. The first work-item clears a flag at the tile's
// start, whose last readers were behind the previous tile's last barrier: the tile's own, whose
// writers wait behind the barrier after the scores; with two barriers, the other of two, the next
// tile's, whose writers wait behind this tile's last barrier.
inline __attribute__((always_inline)) void key_tile(item_state *st, __local float *qs, __local float *ks,
                                                    __local float *vs, __local float *ps, __local float *red,
                                                    volatile __local int *nonfinite, int t, key_src cur, key_src next,
                                                    bool has_next, bool edge, uint ok, float qscale)
{
    const int tx = get_local_id(0) % CT, ty = get_local_id(0) / CT;
    if (get_local_id(0) == 0 && (TWO_BARRIERS || edge))
        nonfinite[FLAG(t + TWO_BARRIERS)] = 0;
#if CLATTN_PREFETCH
    ov_t vr_next[VSHARE];
    ROWS_LOAD(0, ov_t, OW, vr_next, 0, VSHARE, cur.v, cur.count, DV, BN, WG)
    // Whether P.V must guard its sums, from the values this work-item loaded (a short tile's clamped
    // loads repeat its last row, which is checked anyway); told after the scores.
    bool bad = false;
    if (edge)
#pragma unroll
        for (int n = 0; n < VSHARE; n++)
            bad |= NONFINITE(vr_next[n]);
#else
    STAGE_ROWS_IN(qv_t, QW, ks, QS, cur.k, cur.count, D, BN, WG)
    barrier(CLK_LOCAL_MEM_FENCE);
#endif

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
            kr[j] = LVEC(qv_t, ks + (tx + CT * j) * QS, d);
#pragma unroll
        for (int i = 0; i < TM; i++)
#pragma unroll
            for (int j = 0; j < TN; j++)
                s[i][j] = DOT_ACC(qr[i], kr[j], s[i][j]);
    }
    // fmax, not max: a NaN logit must not become the row's max (it reaches the row through its
    // weight, exp2(NaN) = NaN, instead).
    float mt[TM]; // the rows' maxima over this work-item's keys, then over the row's
#pragma unroll
    for (int i = 0; i < TM; i++) {
        mt[i] = -INFINITY;
#pragma unroll
        for (int j = 0; j < TN; j++) {
            s[i][j] *= qscale;
            if (edge && !((ok >> (i * TN + j)) & 1u))
                s[i][j] = -INFINITY;
            mt[i] = fmax(mt[i], s[i][j]);
        }
#if !CLATTN_SHUFFLE
        red[(ty + RT * i) * CT + tx] = mt[i];
#endif
    }
#if CLATTN_SHUFFLE
    ROWS_BUTTERFLY(mt, fmax)
#endif
#if CLATTN_PREFETCH
    ROWS_STORE(0, ov_t, OW, vr_next, 0, VSHARE, vs, DV, cur.count, DV, BN, WG)
#endif
#if !TWO_BARRIERS
    barrier(CLK_LOCAL_MEM_FENCE);
#endif
#if CLATTN_PREFETCH
    if (bad)
        atomic_or(nonfinite + FLAG(t), 1);
#endif

#pragma unroll
    for (int i = 0; i < TM; i++) {
#if !CLATTN_SHUFFLE
        mt[i] = row_max(red + (ty + RT * i) * CT);
#endif
        const float mnew = fmax(st->m[i], mt[i]);
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
#if CLATTN_PREFETCH
    qv_t kr_next[KSHARE];
    if (has_next)
        ROWS_LOAD(0, qv_t, QW, kr_next, 0, KSHARE, next.k, next.count, D, BN, WG)
#else
    // Every work-item has passed the barrier after its scores: K is no longer read.
    STAGE_ROWS_IN(ov_t, OW, vs, DV, cur.v, cur.count, DV, BN, WG)
    // Whether P.V must guard its sums: each work-item looks at the vectors it staged itself.
    if (edge)
        for (int x = get_local_id(0); x < BN * NG; x += WG)
            if (NONFINITE(LVEC(ov_t, vs, x)))
                atomic_or(nonfinite + FLAG(t), 1);
#endif
    barrier(CLK_LOCAL_MEM_FENCE);

    // P.V. A masked key (edge tiles only) must add nothing, not even 0 times its value, which is
    // NaN when the value is infinite or NaN; a masked weight (-0) times a finite value adds nothing
    // by itself. So only an edge tile with a value that is not finite (rare) guards its sums, key by
    // key; the others take the loop without a select per multiply-add (guarding every edge tile in
    // that loop cost one per multiply-add on all tiles: the H200's PTX had as many selp as fma).
    if (edge && nonfinite[FLAG(t)]) {
#pragma unroll 1
        for (int t = 0; t < BN; t++)
#pragma unroll
            for (int i = 0; i < TM; i++) {
                const float p = ps[(ty + RT * i) * PS + t];
                if (as_uint(p) == MASKED_P)
                    continue;
#pragma unroll
                for (int g = 0; g < TG; g++) {
                    const int col = tx + CT * g;
                    if (NG % CT == 0 || col < NG)
                        st->o[i][g] = fma((ov_t)(p), LVEC(ov_t, vs + t * DV, col), st->o[i][g]);
                }
            }
    } else {
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
                    const ov_t vr = LVEC(ov_t, vs + (t + u) * DV, col);
#pragma unroll
                    for (int i = 0; i < TM; i++)
                        st->o[i][g] = fma((ov_t)(pr[i].s[u]), vr, st->o[i][g]);
                }
        }
    }
#if CLATTN_PREFETCH
    // ks was last read by the scores, before two barriers.
    if (has_next)
        ROWS_STORE(0, qv_t, QW, kr_next, 0, KSHARE, ks, QS, next.count, D, BN, WG)
#endif
    // The barrier ends the tile rather than starting the next one: POCL 6.0 aborted on the other
    // order (an assertion in its parallel-region formation, with 6 x 5 tiles of 3 x 5 blocks),
    // where P.V's loop ran into the key loop's exit.
    barrier(CLK_LOCAL_MEM_FENCE);
}

// The band pass only: the host sends decode and the global rows (which see every key) to
// decode_gpu.cl's split over the keys, so `rows` and `use_rows` of the shared argument list go unused.
__kernel
#if CLATTN_REQD_WG
    __attribute__((reqd_work_group_size(WG, 1, 1)))
#endif
#if CLATTN_SHUFFLE == 2 && defined(cl_intel_required_subgroup_size)
    // Intel's CPU runtime (2026.22) vectorizes this kernel across work-items once the exchanges go
    // through __local (it leaves the others scalar) and then crashes or computes garbage on some
    // shapes (Dv = 16 with D >= 128, among others); one work-item at a time it runs them right.
    __attribute__((intel_reqd_sub_group_size(1)))
#endif
    void
    attention(ATTENTION_ARGS(elem_t))
{
    __local float qs[BM * QS] __attribute__((aligned(16)));
    __local float ks[BN * KS] __attribute__((aligned(16)));
#if CLATTN_PREFETCH
    __local float vs[BN * DV] __attribute__((aligned(16)));
#else
    __local float *const vs = ks;
#endif
    __local float ps[BM * PS] __attribute__((aligned(16)));
#if CLATTN_SHUFFLE != 1
    __local float red[BM * CT] __attribute__((aligned(16)));
#else
    __local float *const red = NULL; // the rows' values are combined by shuffles instead
#endif
    volatile __local int nonfinite[2]; // key_tile's flags: an edge tile's values hold an inf or NaN
    const int tx = get_local_id(0) % CT, ty = get_local_id(0) / CT;
    if (TWO_BARRIERS && get_local_id(0) == 0)
        nonfinite[0] = 0; // tile 0's (key_tile clears tile t + 1's), behind the barriers before its writers
    // Causal (reverse_tiles): the heaviest tiles first across all heads, not within each head.
    // Work-groups start in the order of their linear id (dimension 0 fastest) and there are ntiles
    // of them along it, so the linear id over batch * heads is a tile's rank: the last heads' heavy
    // tiles no longer start when the rest of the work is nearly done.
    const int ntiles = (num_rows + BM - 1) / BM;
    const int nbh = get_num_groups(1);
    const int linear = get_group_id(0) + get_num_groups(0) * get_group_id(1);
    const int tile = reverse_tiles ? ntiles - 1 - linear / nbh : (int)get_group_id(0);
    const int bh = reverse_tiles ? linear % nbh : (int)get_group_id(1);
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
    const key_walk walk = {SRC_CALLER(k + bhk * nk * D),
                           SRC_CALLER(v + bhk * nk * DV),
                           SRC_SCRATCH(side_k + bhk * n_side * D),
                           SRC_SCRATCH(side_v + bhk * n_side * DV),
                           lo - lo % BN,
                           lo <= hi ? hi / BN - lo / BN + 1 : 0,
                           nk,
                           side_begin,
                           side_begin + side_count};
    const int nwalk = walk.nband + (side_count + BN - 1) / BN; // key tiles
#if CLATTN_PREFETCH
    if (nwalk > 0) {
        const key_src first = walk_tile(&walk, 0);
        STAGE_ROWS_IN(qv_t, QW, ks, QS, first.k, first.count, D, BN, WG)
    }
    barrier(CLK_LOCAL_MEM_FENCE); // Q and the first K
// key_tile's next and has_next: the tile after t, which tile_at gives (its K is loaded a step
// ahead), or none
#define NEXT_TILE(tile_at, t) (t) + 1 < nwalk ? tile_at(&walk, (t) + 1) : cur, (t) + 1 < nwalk
#else
#define NEXT_TILE(tile_at, t) cur, false
#endif
    // The band's tiles, then the side keys'. Two loops, so that each knows its kind of tile (one
    // loop over both took 36 more registers on sm_90 and spilled SGPRs on gfx906).
    for (int t = 0; t < walk.nband; t++) {
        const key_src cur = band_tile(&walk, t);
        const int j0 = cur.first;
        const bool edge = !band_covers(rule, pfirst, plast, j0, j0 + BN - 1) || j0 + BN > kv_len;
        uint ok = 0;
        if (edge)
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++)
                    ok |= (uint)band_visible(rule, st.pos[i], j0 + tx + CT * j, kv_len) << (i * TN + j);
        key_tile(&st, qs, ks, vs, ps, red, nonfinite, t, cur, NEXT_TILE(walk_tile, t), edge, ok, qscale);
    }
    for (int t = walk.nband; t < nwalk; t++) {
        const key_src cur = side_tile(&walk, t);
        uint ok = 0;
#pragma unroll
        for (int j = 0; j < TN; j++) {
            const int x = tx + CT * j, s = cur.first + x;
            const int spos = x < cur.count ? side_pos[(size_t)b * n_side + s] : -1;
#pragma unroll
            for (int i = 0; i < TM; i++)
                ok |= (uint)(x < cur.count && side_visible(rule, st.pos[i], s, spos, n_global, n_summary, kv_len))
                      << (i * TN + j);
        }
        key_tile(&st, qs, ks, vs, ps, red, nonfinite, t, cur, NEXT_TILE(side_tile, t), true, ok, qscale);
    }
#undef NEXT_TILE

    // Each row's sum over its CT work-items (sum_zeros_signed): by exchanges, before the loop below,
    // which not every work-item finishes; or through red, whose last readers passed the barriers
    // that end a tile.
#if CLATTN_SHUFFLE
    ROWS_BUTTERFLY(st.l, sum_zeros_signed)
#else
#pragma unroll
    for (int i = 0; i < TM; i++)
        red[(ty + RT * i) * CT + tx] = st.l[i];
    barrier(CLK_LOCAL_MEM_FENCE);
#endif
#pragma unroll
    for (int i = 0; i < TM; i++) {
        const int r = ty + RT * i;
        if (tile * BM + r >= num_rows)
            break; // rows ascend with i
#if CLATTN_SHUFFLE
        float l = st.l[i];
#else
        float l = red[r * CT];
        for (int x = 1; x < CT; x++)
            l = sum_zeros_signed(l, red[r * CT + x]);
#endif
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
