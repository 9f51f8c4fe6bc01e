// The GPU variant's split over the keys (flash-decoding), compiled after common.cl and
// gpu_stage.cl: decode (a few query rows) and the global-rows pass (rows that see every key),
// then a merge of the splits.
//
// A work-group takes one split of the keys (a range of the band, or of the side keys) for a block
// of RB rows of one kv head's query group: the group's heads and rows share every K and V read.
// It walks its split BN keys at a time: K and V staged in __local by contiguous vector loads (or,
// with CLATTN_DIRECT, read where they lie), scores with one work-item per (row, key), each row's max
// through __local, the weights, then P.V with one work-item per (row, 4 value columns). Every split writes a partial
// (m, l, acc) that merge_splits combines by log-sum-exp, as combine_splits does for the CPU program.
//
// Build options besides common.cl's D and DV (tuning.c chooses them from the device's limits):
//   -DCLATTN_SPLIT_WG=<32..256>  work-group size (a multiple of CLATTN_SPLIT_BN)
//   -DCLATTN_SPLIT_BN=<1..64>    keys per __local tile (32: a warp's lanes are the tile's keys)
//   -DCLATTN_SPLIT_RB=<1..32>    query rows per block (a kv head's query group, or a part of it)
//   -DCLATTN_DIRECT=<0|1>        read K and V from global memory where they lie instead of staging
//                                them (the attention tiles' `direct`, attention_gpu.cl's option)
// __local use: 4 * (BN * (D + DV) + RB * D + 2 * RB * (BN + 1) + RB) bytes (without BN * (D + DV)
// with CLATTN_DIRECT).
#ifndef CLATTN_SPLIT_WG
#define CLATTN_SPLIT_WG 128
#endif
#ifndef CLATTN_SPLIT_BN
#define CLATTN_SPLIT_BN 32
#endif
#ifndef CLATTN_SPLIT_RB
#define CLATTN_SPLIT_RB 4
#endif
#define SWG CLATTN_SPLIT_WG
#define SBN CLATTN_SPLIT_BN
#define SRB CLATTN_SPLIT_RB
#if SWG % SBN != 0
#error "CLATTN_SPLIT_WG must be a multiple of CLATTN_SPLIT_BN"
#endif
// Row stride of the scores and weights in __local: odd, so that the rows of one warp fall in
// different banks.
#define SS (SBN + 1)
#define SPAIRS ((SRB * SBN + SWG - 1) / SWG) // (row, key) pairs per work-item

// Vectors of 4 floats over D and over DV where they divide them, else scalars.
#if D % 4 == 0
#define SQW 4
typedef float4 qw_t;
#define QLOAD vload4
#define QSTORE vstore4
#define QSUM(a) ((a).x + (a).y + (a).z + (a).w)
#else
#define SQW 1
typedef float qw_t;
#define QLOAD(i, p) ((p)[(i)])
#define QSTORE(x, i, p) ((p)[(i)] = (x))
#define QSUM(x) (x)
#endif
#if DV % 4 == 0
#define SOW 4
typedef float4 ow_t;
#define OLOAD vload4
#define OSTORE vstore4
#else
#define SOW 1
typedef float ow_t;
#define OLOAD(i, p) ((p)[(i)])
#define OSTORE(x, i, p) ((p)[(i)] = (x))
#endif
#define QN (D / SQW)                         // vectors per key row
#define ON (DV / SOW)                        // vectors per value row
#define OPAIRS ((SRB * ON + SWG - 1) / SWG)  // (row, value vector) pairs per work-item
#define KSHARE ROWS_SHARE(D, SQW, SBN, SWG)  // vectors of a K tile a work-item stages
#define VSHARE ROWS_SHARE(DV, SOW, SBN, SWG) // and of a V tile

// Vector c of the row of K of tile key t (0 .. BN - 1), and vector c of its row of V: staged in ks
// and vs; or (CLATTN_DIRECT) where they lie in the tile's rows src, a key from count on reading the
// tile's last row (its score is masked; P.V walks the first count keys alone).
inline qw_t split_key(__local const float *ks, src_t src, int t, int count, int c)
{
#if CLATTN_DIRECT
    return SRC_GLOAD(qw_t, SQW, SRC_AT(src, (size_t)min(t, count - 1) * D), c);
#else
    return QLOAD(c, ks + t * D);
#endif
}

inline ow_t split_value(__local const float *vs, src_t src, int t, int c)
{
#if CLATTN_DIRECT
    return SRC_GLOAD(ow_t, SOW, SRC_AT(src, (size_t)t * DV), c);
#else
    return OLOAD(c, vs + t * DV);
#endif
}

// A masked key's weight: -0, which no visible key's weight is (exp2 gives +0 at the least).
#define MASKED_BITS 0x80000000u

// The arguments of split_keys (the host sets them in this order).
// clang-format off
#define SPLIT_ARGS                                                                                  \
    __global const elem_t *q,      /* [B, H, Nq, D] */                                             \
    __global const elem_t *k,      /* [B, Hkv, Nk, D] */                                           \
    __global const elem_t *v,      /* [B, Hkv, Nk, DV] */                                          \
    __global const float *side_k,  /* [B, Hkv, NS, D] */                                           \
    __global const float *side_v,  /* [B, Hkv, NS, DV] */                                          \
    __global const int *side_pos,  /* [B, NS] */                                                   \
    __global const int *seq_lens,  /* [B] */                                                       \
    __global const int *rows,      /* [num_rows] when use_rows */                                  \
    __global float *part_acc,      /* [B, H, num_rows, splits, DV] */                              \
    __global float *part_ml,       /* [B, H, num_rows, splits, 2] */                               \
    int heads, int kv_heads, int nq, int nk, int num_rows, int use_rows, int left, int right,      \
    int dilation, int causal, int n_side, int n_global, int n_summary, int side_begin,             \
    int side_count, int key_lo, int band_splits, int split_len, float qscale
// clang-format on

// Query row i and head h of slot gr of a kv head's query group: the group's heads one after
// another, each with its num_rows rows.
typedef struct {
    int h, i;
} group_row;

inline group_row group_row_of(__global const int *rows, int use_rows, int num_rows, int group, int hk, int gr)
{
    const group_row g = {hk * group + gr / num_rows, tile_row(rows, use_rows, gr % num_rows)};
    return g;
}

// Whether key j of the split's keys (band keys, or side keys when `side`) is visible from position p.
inline bool split_visible(bool side, band_rule rule, int p, int j, int kv_len, __global const int *side_pos, int b,
                          int n_side, int n_global, int n_summary)
{
    return side ? side_visible(rule, p, j, side_pos[(size_t)b * n_side + j], n_global, n_summary, kv_len)
                : band_visible(rule, p, j, kv_len);
}

// One work-group per (split, block of SRB rows of a kv head's query group, batch * kv head).
// Splits [0, band_splits) take split_len band keys each from key_lo on; the splits after them take
// split_len side keys each from side_begin on.
__kernel __attribute__((reqd_work_group_size(SWG, 1, 1))) void split_keys(SPLIT_ARGS)
{
#if CLATTN_DIRECT
    __local float *const ks = NULL, *const vs = NULL; // K and V are read where they lie
#else
    __local float ks[SBN * D] __attribute__((aligned(16))); // read as vectors: gpu_stage.cl's LVEC
    __local float vs[SBN * DV] __attribute__((aligned(16)));
#endif
    __local float qs[SRB * D];  // the block's query rows times qscale
    __local float sc[SRB * SS]; // scores; -inf where masked
    __local float pw[SRB * SS]; // weights; -0 where masked
    __local float mrow[SRB];    // each row's max after the tile
    const int lid = get_local_id(0);
    const int split = get_group_id(0);
    const int splits = get_num_groups(0);
    const int block = get_group_id(1);
    const size_t bhk = get_group_id(2);
    const int b = bhk / kv_heads;
    const int hk = bhk % kv_heads;
    const int group = heads / kv_heads;
    const int group_rows = group * num_rows;
    const int kv_len = seq_lens[b];
    const band_rule rule = {left, right, dilation, causal};

    // The block's rows: Q staged once, scaled; their positions span [pmin, pmax].
    int pmin = INT_MAX, pmax = INT_MIN;
    for (int r = 0; r < SRB; r++) {
        const group_row g = group_row_of(rows, use_rows, num_rows, group, hk, min(block * SRB + r, group_rows - 1));
        pmin = min(pmin, g.i + nk - nq);
        pmax = max(pmax, g.i + nk - nq);
    }
    for (int x = lid; x < SRB * QN; x += SWG) {
        const int r = x / QN;
        const group_row g = group_row_of(rows, use_rows, num_rows, group, hk, min(block * SRB + r, group_rows - 1));
        __global const elem_t *qrow = q + (((size_t)b * heads + g.h) * nq + g.i) * D;
        QSTORE(LOAD(SQW, x % QN, qrow) * qscale, x, qs);
    }

    // The split's keys [lo, hi]: its range, cut to the band of the block's rows and to kv_len.
    const bool side = split >= band_splits;
    int lo, hi;
    src_t kbase, vbase;
    if (side) {
        lo = side_begin + (split - band_splits) * split_len;
        hi = min(lo + split_len, side_begin + side_count) - 1;
        kbase = SRC_SCRATCH(side_k + bhk * n_side * D);
        vbase = SRC_SCRATCH(side_v + bhk * n_side * DV);
    } else {
        const int first = key_lo + split * split_len;
        lo = max(first, pmin - left);
        hi = min(min(first + split_len, nk) - 1, min(kv_len - 1, pmax + right));
        kbase = SRC_CALLER(k + bhk * nk * D);
        vbase = SRC_CALLER(v + bhk * nk * DV);
    }

    // Work-item roles: (row, key) pairs x = lid + n * SWG for the scores (key x % SBN: the same
    // for all of an item's pairs) and (row, value vector) pairs for P.V.
    const int t = lid % SBN;
    int pos[SPAIRS];
    float m[SPAIRS];
#pragma unroll
    for (int n = 0; n < SPAIRS; n++) {
        const int r = min((lid + n * SWG) / SBN, SRB - 1);
        pos[n] = group_row_of(rows, use_rows, num_rows, group, hk, min(block * SRB + r, group_rows - 1)).i + nk - nq;
        m[n] = -INFINITY;
    }
    ow_t acc[OPAIRS];
    float om[OPAIRS], ol[OPAIRS];
#pragma unroll
    for (int n = 0; n < OPAIRS; n++) {
        acc[n] = (ow_t)(0.0f);
        om[n] = -INFINITY;
        ol[n] = 0.0f;
    }

    for (int j0 = lo; j0 <= hi; j0 += SBN) {
        const int count = min(SBN, hi + 1 - j0);
        barrier(CLK_LOCAL_MEM_FENCE); // the previous tile's readers are done (and Q is staged)
        // K and V rows (gpu_stage.cl): rows past count as zeros, so that no work-item reads
        // outside the buffers; contiguous, so the loads coalesce. Where a work-item's share of
        // both is at most 16 vectors, all its loads are issued before any store: one wait for
        // memory per tile instead of one for K and one for V.
        const src_t ksrc = SRC_AT(kbase, (size_t)j0 * D), vsrc = SRC_AT(vbase, (size_t)j0 * DV);
#if CLATTN_DIRECT
        // nothing to stage: the barrier above is the tile's first (Q's too)
#elif KSHARE + VSHARE <= 16
        qw_t kb[KSHARE];
        ow_t vb[VSHARE];
        ROWS_LOAD(0, qw_t, SQW, kb, 0, KSHARE, ksrc, count, D, SBN, SWG)
        ROWS_LOAD(0, ow_t, SOW, vb, 0, VSHARE, vsrc, count, DV, SBN, SWG)
        ROWS_STORE(0, qw_t, SQW, kb, 0, KSHARE, ks, D, count, D, SBN, SWG)
        ROWS_STORE(0, ow_t, SOW, vb, 0, VSHARE, vs, DV, count, DV, SBN, SWG)
#else
        STAGE_ROWS_IN(qw_t, SQW, ks, D, ksrc, count, D, SBN, SWG)
        STAGE_ROWS_IN(ow_t, SOW, vs, DV, vsrc, count, DV, SBN, SWG)
#endif
#if !CLATTN_DIRECT
        barrier(CLK_LOCAL_MEM_FENCE);
#endif

        // Scores. Each lane starts its walk over D at its own vector (t): lanes' keys are D
        // floats apart, which would put them all in one bank.
        float s[SPAIRS];
        bool ok[SPAIRS];
        {
            qw_t dot[SPAIRS];
#pragma unroll
            for (int n = 0; n < SPAIRS; n++)
                dot[n] = (qw_t)(0.0f);
                // Unrolled by 2 only: clang's amdgcn backend, left to itself, unrolls it whole at
                // D = 64 and needs 256 VGPRs and scratch (ci/gpu_static.sh).
#pragma unroll 2
            for (int u = 0; u < QN; u++) {
                const int c = (u + t) % QN;
                const qw_t kv = split_key(ks, ksrc, t, count, c);
#pragma unroll
                for (int n = 0; n < SPAIRS; n++) {
                    const int r = min((lid + n * SWG) / SBN, SRB - 1);
                    dot[n] = fma(QLOAD(c, qs + r * D), kv, dot[n]);
                }
            }
#pragma unroll
            for (int n = 0; n < SPAIRS; n++) {
                const int x = lid + n * SWG;
                ok[n] = x < SRB * SBN && t < count &&
                        split_visible(side, rule, pos[n], j0 + t, kv_len, side_pos, b, n_side, n_global, n_summary);
                s[n] = QSUM(dot[n]);
                if (x < SRB * SBN)
                    sc[x / SBN * SS + t] = ok[n] ? s[n] : -INFINITY;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);

        // Weights. fmax skips NaN scores: they reach the output through their weight. A row with
        // no finite score yet gives its visible keys weight +0 (NaN for a NaN score): their
        // values still multiply, as in write_row's rule.
#pragma unroll
        for (int n = 0; n < SPAIRS; n++) {
            const int x = lid + n * SWG;
            if (x < SRB * SBN) {
                const int r = x / SBN;
                float mt = -INFINITY;
                for (int u = 0; u < SBN; u++)
                    mt = fmax(mt, sc[r * SS + u]);
                m[n] = fmax(m[n], mt);
                const float w = m[n] == -INFINITY ? (isnan(s[n]) ? NAN : 0.0f) : exp2(s[n] - m[n]);
                pw[r * SS + t] = ok[n] ? w : -0.0f;
                if (t == 0)
                    mrow[r] = m[n];
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);

        // P.V, with each row's sum of weights l beside it.
#pragma unroll
        for (int n = 0; n < OPAIRS; n++) {
            const int x = lid + n * SWG;
            if (x >= SRB * ON)
                continue;
            const int r = x / ON, c = x % ON;
            const float mnew = mrow[r];
            if (mnew == -INFINITY) { // rare: l records visible NaN (NaN) or -inf (-0) scores
                for (int u = 0; u < count; u++) {
                    const float p = pw[r * SS + u];
                    if (as_uint(p) != MASKED_BITS) {
                        ol[n] = isnan(p) ? NAN : copysign(ol[n], -1.0f);
                        acc[n] += p * split_value(vs, vsrc, u, c);
                    }
                }
            } else {
                const float alpha = exp2(om[n] - mnew); // 1 when the max did not grow
                acc[n] *= alpha;
                ol[n] *= alpha;
                for (int u = 0; u < count; u++) {
                    const float p = pw[r * SS + u];
                    // A masked key's value (maybe NaN, past kv_len) is never used.
                    const ow_t val = as_uint(p) == MASKED_BITS ? (ow_t)(0.0f) : split_value(vs, vsrc, u, c);
                    acc[n] = fma((ow_t)(p), val, acc[n]);
                    ol[n] += p;
                }
            }
            om[n] = mnew;
        }
    }

    // The partial results: a padding row's l is +0, as if it had seen no key.
#pragma unroll
    for (int n = 0; n < OPAIRS; n++) {
        const int x = lid + n * SWG;
        const int r = x / ON, c = x % ON;
        if (x >= SRB * ON || block * SRB + r >= group_rows)
            continue;
        const group_row g = group_row_of(rows, use_rows, num_rows, group, hk, block * SRB + r);
        const size_t part = (((size_t)b * heads + g.h) * num_rows + (block * SRB + r) % num_rows) * splits + split;
        OSTORE(acc[n], c, part_acc + part * DV);
        if (c == 0) {
            part_ml[2 * part] = om[n];
            part_ml[2 * part + 1] = g.i + nk - nq >= kv_len ? 0.0f : ol[n];
        }
    }
}

// Merges the splits of one query row (dimension 1: b * H * num_rows + slot) by log-sum-exp, one
// work-item per value column (dimension 0): O = sum_s 2^(m_s - M) acc_s / L, M = max m_s, L =
// sum_s 2^(m_s - M) l_s. A split that saw no key (l = +0) adds nothing; a -0 one weighs
// 2^(-inf - M), 0 beside a finite M and NaN when no split has one, as the row's one softmax would.
__kernel void merge_splits(__global const float *part_acc, // [B, H, num_rows, splits, DV]
                           __global const float *part_ml,  // [B, H, num_rows, splits, 2]
                           __global const int *rows,       // [num_rows] when use_rows
                           __global elem_t *out,           // [B, H, Nq, DV]
                           __global float *lse,            // [B, H, Nq] when write_lse
                           int nq, int num_rows, int use_rows, int splits, int write_lse)
{
    const int c = get_global_id(0);
    const size_t row = get_global_id(1);
    __global const float *ml = part_ml + row * splits * 2;
    float mx = -INFINITY;
    for (int s = 0; s < splits; s++)
        if (as_uint(ml[2 * s + 1]) != 0)
            mx = max(mx, ml[2 * s]);
    float l = 0.0f, a = 0.0f;
    for (int s = 0; s < splits; s++) {
        if (as_uint(ml[2 * s + 1]) == 0)
            continue;
        const float w = exp2(ml[2 * s] - mx);
        l += w * ml[2 * s + 1];
        if (c < DV)
            a = fma(w, part_acc[(row * splits + s) * DV + c], a);
    }
    const size_t orow = row / num_rows * nq + tile_row(rows, use_rows, row % num_rows);
    if (c < DV)
        STORE_1(row_value(a, l), orow * DV + c, out);
    if (c == 0 && write_lse)
        lse[orow] = row_lse(mx, l);
}
