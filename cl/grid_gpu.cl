// The GPU variant of the 2-D grid kernel, compiled after common.cl, gpu_stage.cl (its aligned
// vector loads) and grid_common.cl: a work-group of CLATTN_WG work-items owns one tile of
// th x tw <= WG queries (host/grid.h), one query each, and walks the keys of the tile's runs (one
// after another, as one list) CLATTN_BK at a time. Per block of keys: stage their slot
// coordinates and tokens (for the next block, double buffered) and their K and V rows in __local
// memory, then each work-item scores them against its own query and folds them into its online
// softmax, with its rectangle test (grid_visible) as the mask. Two barriers per block, both
// reached by the whole group.
//
// Registers, not the stack: every private array (the block's scores and mask, the output
// accumulator) is indexed only in fully unrolled loops with compile-time bounds, so that nothing
// needs an address (ci/gpu_static.sh checks it for NVIDIA sm_90 and AMD gfx906). The query is
// staged once in __local, transposed, and read a vector per BK keys' QW multiply-adds, in a loop
// over D that is not unrolled: kept in registers beside the scores and the accumulator, it made
// clang schedule the unrolled score loop into 247 registers on sm_90 at D = 64 (153 this way) and
// spill at D = 128. host/launch_grid.c sizes BK for the same reason. __local reads: the query's
// are each work-item's own consecutive vectors; every work-item reads the same staged key or value
// at the same time, a broadcast, one vector of QW (OW) floats for QW (OW) multiply-adds.
// K and V are read in token order, a row where the key table's token column says.
//   -DCLATTN_WG=<1..>          work-items (query slots) of a tile
//   -DCLATTN_BK=<1..64>        keys per staged block (each a score register per work-item)
//   -DCLATTN_STAGE=<0..8>      the tiles' `stage`: above 0, a block's loads all issued before its
//                              stores (grid_stage_rows)
//   -DCLATTN_DIRECT=<0|1>      the tiles' `direct`: K and V read where they lie instead of staged
//                              (the block's tokens still are), as attention_gpu.cl's option
#define BK CLATTN_BK

// Vectors over D (qv_t, QW floats) and DV (ov_t, OW floats): common.cl's.
#define NQ (D / QW)
#define NO (DV / OW)
// Each work-item reads its own query row and writes its own output row: 8 floats at a time where
// the width allows (one whole 32-byte sector per work-item, as many sectors per request as a
// coalesced access to the same bytes), else a vector.
#if QW == 4 && D % 8 == 0
#define QSTEP 2
#else
#define QSTEP 1
#endif
#if OW == 4 && DV % 8 == 0
#define OSTEP 2
#else
#define OSTEP 1
#endif

// __local vectors: LVLOAD(n, i, p) is vector i of n floats, LVSTORE(n, x, i, p) writes it.
#define LVLOAD_1(i, p) ((p)[(i)])
#define LVLOAD_2 vload2
#define LVLOAD_4 vload4
#define LVSTORE_1(x, i, p) ((p)[(i)] = (x))
#define LVSTORE_2 vstore2
#define LVSTORE_4 vstore4
#define LVLOAD(n, i, p) CLATTN_CAT(LVLOAD_, n)(i, p)
#define LVSTORE(n, x, i, p) CLATTN_CAT(LVSTORE_, n)(x, i, p)

// acc + a . b, one multiply-add per lane in lane order.
inline float qdot(qv_t a, qv_t b, float acc)
{
#if QW == 4
    return fma(a.w, b.w, fma(a.z, b.z, fma(a.y, b.y, fma(a.x, b.x, acc))));
#elif QW == 2
    return fma(a.y, b.y, fma(a.x, b.x, acc));
#else
    return fma(a, b, acc);
#endif
}

// The slot coordinates and tokens of keys [j0, j0 + BK) of the tile's list (its runs [first,
// last) one after another, `total` keys) into info: [BK] kernel rows, [BK] columns, [BK] tokens;
// -1 past the list, which grid_visible never sees.
inline void grid_stage_info(__local int *info, __global const int *runs, int first, int last, __global const int *keys,
                            int nslots, int j0, int total)
{
    for (int x = get_local_id(0); x < BK; x += CLATTN_WG) {
        int v = j0 + x, slot = -1;
        for (int r = first; v < total && r < last; r++) {
            const int len = runs[2 * r + 1];
            if (v < len) {
                slot = runs[2 * r] + v;
                break;
            }
            v -= len;
        }
        for (int field = 0; field < 3; field++)
            info[field * BK + x] = slot >= 0 ? keys[field * nslots + slot] : -1;
    }
}

// The K and V rows of the block's tokens (info's third field) into ks [BK][D] and vs [BK][DV], as
// float32; rows without a token become zeros. Consecutive work-items take consecutive vectors,
// each one aligned load (GLOAD: vloadn would split it into floats). Where a work-item's share of
// both is at most 16 vectors, all its loads are issued before any store, a row without a token
// loading token 0's (then stored as zeros), when the tiles' `stage` is above 0 (the NVIDIA rows):
// written as a guarded load then its store, NVIDIA's compiler waited out each load's latency in
// turn (docs/GPU.md, decode's split). Stage 0 (the AMD and other rows) and larger shares (small
// work-groups) keep that loop; the batch costs registers (sm_90, D = 64: 162 -> 208).
#define KSHARE ((BK * NQ + CLATTN_WG - 1) / CLATTN_WG)
#define VSHARE ((BK * NO + CLATTN_WG - 1) / CLATTN_WG)
#define BLOCK_TOKEN(info, r) (info)[2 * BK + (r)] // the token of the block's key r, -1 for none
// A work-item's share (n vectors, vecs to a row) of the block's rows of src into buf. A row
// without a token loads token 0's, a vector past the block the block's last: neither is stored.
#define GATHER_LOAD(type, vw, buf, n, vecs, src, info)                                                                 \
    _Pragma("unroll") for (int n_ = 0; n_ < (n); n_++)                                                                 \
    {                                                                                                                  \
        const int x_ = min((int)get_local_id(0) + n_ * CLATTN_WG, BK * (vecs)-1);                                      \
        buf[n_] = GLOAD(type, vw, src, (size_t)max(BLOCK_TOKEN(info, x_ / (vecs)), 0) * (vecs) + x_ % (vecs));         \
    }
// Stores what GATHER_LOAD loaded to dst, zeros for a row without a token.
#define GATHER_STORE(type, vw, buf, n, vecs, dst, info)                                                                \
    _Pragma("unroll") for (int n_ = 0; n_ < (n); n_++)                                                                 \
    {                                                                                                                  \
        const int x_ = (int)get_local_id(0) + n_ * CLATTN_WG;                                                          \
        if ((BK * (vecs)) % CLATTN_WG == 0 || x_ < BK * (vecs))                                                        \
            LVSTORE(vw, BLOCK_TOKEN(info, x_ / (vecs)) >= 0 ? buf[n_] : (type)(0.0f), x_, dst);                        \
    }
inline void grid_stage_rows(__local float *ks, __local float *vs, __local const int *info, __global const elem_t *k,
                            __global const elem_t *v)
{
#if CLATTN_STAGE > 0 && KSHARE + VSHARE <= 16
    qv_t kb[KSHARE];
    ov_t vb[VSHARE];
    GATHER_LOAD(qv_t, QW, kb, KSHARE, NQ, k, info)
    GATHER_LOAD(ov_t, OW, vb, VSHARE, NO, v, info)
    GATHER_STORE(qv_t, QW, kb, KSHARE, NQ, ks, info)
    GATHER_STORE(ov_t, OW, vb, VSHARE, NO, vs, info)
#else
    for (int x = get_local_id(0); x < BK * NQ; x += CLATTN_WG) {
        const int tok = BLOCK_TOKEN(info, x / NQ);
        LVSTORE(QW, tok >= 0 ? GLOAD(qv_t, QW, k, (size_t)tok * NQ + x % NQ) : (qv_t)(0.0f), x, ks);
    }
    for (int x = get_local_id(0); x < BK * NO; x += CLATTN_WG) {
        const int tok = BLOCK_TOKEN(info, x / NO);
        LVSTORE(OW, tok >= 0 ? GLOAD(ov_t, OW, v, (size_t)tok * NO + x % NO) : (ov_t)(0.0f), x, vs);
    }
#endif
}

// Vector i of the row of K of the block's key u (token tok, -1 for none), and vector j of its row of
// V: staged in ks and vs; or (CLATTN_DIRECT) read from the head's rows k and v, a key without a
// token reading token 0's row (it is masked).
inline qv_t grid_key(__local const float *ks, __global const elem_t *k, int tok, int u, int i)
{
#if CLATTN_DIRECT
    return GLOAD(qv_t, QW, k, (size_t)max(tok, 0) * NQ + i);
#else
    return LVLOAD(QW, u * NQ + i, ks);
#endif
}

inline ov_t grid_value(__local const float *vs, __global const elem_t *v, int tok, int u, int j)
{
#if CLATTN_DIRECT
    return GLOAD(ov_t, OW, v, (size_t)max(tok, 0) * NO + j);
#else
    return LVLOAD(OW, u * NO + j, vs);
#endif
}

__kernel __attribute__((reqd_work_group_size(CLATTN_WG, 1, 1))) void grid_attention(GRID_ATTENTION_ARGS)
{
    __local float qs[CLATTN_WG * D];
#if CLATTN_DIRECT
    __local float *const ks = NULL, *const vs = NULL; // K and V are read where they lie
#else
    __local float ks[BK * D];
    __local float vs[BK * DV];
#endif
    __local int info[2][3 * BK];
    const int tile = get_group_id(0);
    const int bh = get_global_id(1);
    const int b = bh / heads;
    const size_t bhk = kv_head_of(bh, heads, kv_heads);
    const int n = h * w, kv_len = seq_lens[b];
    __global const int *t = tiles + GRID_TILE_INTS * tile;
    const int r0 = t[0], th = t[1], c0 = t[2], tw = t[3];
    const int s = get_local_id(0);
    // Slots a short tile lacks take its first query and are not written.
    const bool live = s / CLATTN_GRID_TW < th && s % CLATTN_GRID_TW < tw;
    const grid_query gq =
        grid_query_of(axis, h, w, nparts, r0 + (live ? s / CLATTN_GRID_TW : 0), c0 + (live ? s % CLATTN_GRID_TW : 0));
    const size_t row = (size_t)bh * n + gq.tok;
    __global const elem_t *qrow = q + row * D;
    // The query, transposed: vector i of work-item s is vector i * WG + s of qs. Its own row, written
    // by itself: the first barrier of the key loop orders it before any read.
#pragma unroll 1
    for (int i = 0; i < NQ; i += QSTEP) {
#if QSTEP == 2
        const float8 q8 = LOAD(8, i / 2, qrow);
        LVSTORE(4, q8.lo, i * CLATTN_WG + s, qs);
        LVSTORE(4, q8.hi, (i + 1) * CLATTN_WG + s, qs);
#else
        LVSTORE(QW, LOAD(QW, i, qrow), i * CLATTN_WG + s, qs);
#endif
    }
    __global const elem_t *kh = k + bhk * n * D;
    __global const elem_t *vh = v + bhk * n * DV;

    // m: running max (log2 domain); l: sum of weights, with write_row's meaning of its sign.
    float m = -INFINITY, l = 0.0f;
    ov_t acc[NO];
#pragma unroll
    for (int j = 0; j < NO; j++)
        acc[j] = (ov_t)(0.0f);
    __global const int *offsets = tiles + GRID_TILE_INTS * ntiles;
    __global const int *runs = offsets + ntiles + 1;
    const int first = offsets[tile], last = offsets[tile + 1];
    int total = 0;
    for (int x = first; x < last; x++)
        total += runs[2 * x + 1];
    grid_stage_info(info[0], runs, first, last, keys, nslots, 0, total);
    for (int j0 = 0, buf = 0; j0 < total; j0 += BK, buf ^= 1) {
        barrier(CLK_LOCAL_MEM_FENCE); // info[buf] is written; nobody reads the last block any more
#if !CLATTN_DIRECT
        grid_stage_rows(ks, vs, info[buf], kh, vh);
#endif
        grid_stage_info(info[buf ^ 1], runs, first, last, keys, nslots, j0 + BK, total);
        barrier(CLK_LOCAL_MEM_FENCE);

        __local const int *inf = info[buf];
        bool ok[BK];
        float sc[BK];
        int tok[BK];
#pragma unroll
        for (int u = 0; u < BK; u++) {
            tok[u] = BLOCK_TOKEN(inf, u);
            ok[u] = grid_visible(&gq, inf[u], inf[BK + u], tok[u], kv_len, causal);
            sc[u] = 0.0f;
        }
#pragma unroll 1
        for (int i = 0; i < NQ; i++) {
            const qv_t qi = LVLOAD(QW, i * CLATTN_WG + s, qs);
#pragma unroll
            for (int u = 0; u < BK; u++)
                sc[u] = qdot(qi, grid_key(ks, kh, tok[u], u, i), sc[u]);
        }
        float mblock = -INFINITY;
#pragma unroll
        for (int u = 0; u < BK; u++) {
            sc[u] = ok[u] ? sc[u] * qscale : -INFINITY;
            mblock = fmax(mblock, sc[u]);
        }
        // A row with no finite logit yet keeps m = -inf and gives its visible keys a weight of 0
        // (their values still meet it: 0 * inf is NaN, as SPEC.md asks); l records a visible NaN
        // (NaN) or only -inf logits (-0). Masked keys never touch the row.
        const float mnew = fmax(m, mblock);
        const bool none = mnew == -INFINITY;
        const float alpha = mnew > m ? exp2(m - mnew) : 1.0f;
        l *= alpha;
#pragma unroll
        for (int j = 0; j < NO; j++)
            acc[j] *= alpha;
        m = mnew;
#pragma unroll
        for (int u = 0; u < BK; u++) {
            if (!ok[u])
                continue;
            const float e = none ? 0.0f : exp2(sc[u] - mnew);
            l = none ? (isnan(sc[u]) ? NAN : copysign(l, -1.0f)) : l + e;
#pragma unroll
            for (int j = 0; j < NO; j++)
                acc[j] = fma((ov_t)(e), grid_value(vs, vh, tok[u], u, j), acc[j]);
        }
    }
    if (!live)
        return;
    const float lf = gq.tok >= kv_len ? 0.0f : l;
    const bool empty = row_empty(lf);
    const float inv = row_inverse(lf);
#pragma unroll
    for (int j = 0; j < NO; j += OSTEP)
#if OSTEP == 2
        STORE(8, empty ? (float8)(0.0f) : (float8)(acc[j], acc[j + 1]) * inv, (row * NO + j) / 2, out);
#else
        STORE(OW, empty ? (ov_t)(0.0f) : acc[j] * inv, row * NO + j, out);
#endif
    if (write_lse)
        lse[row] = row_lse(m, lf);
}
