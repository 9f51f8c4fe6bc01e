// The GPU variant of `attention`, compiled after common.cl and gpu_stage.cl: a register-tiled
// flash attention for GPUs (FlashAttention 2's loop order, a GEMM's register blocking).
//
// A work-group owns BM query rows and walks key tiles of BN keys. Its WG = (BM/TM) * (BN/TN)
// work-items form a grid of RT = BM/TM row threads by CT = BN/TN column threads; work-item
// (ty, tx) owns the scores of rows ty + RT*i (i < TM) against keys tx + CT*j (j < TN), and the
// output of the same rows in the value column groups tx + CT*g. Strided ownership makes the lanes
// of a warp read consecutive rows of Q and of K (one row stride apart, strides padded so that
// they fall in distinct banks) or one row of V (contiguous): every __local read is conflict-free
// or a broadcast (ROW_OF, KEY_OF; with CLATTN_MMA, the tensor cores' layout instead). Q is staged
// once (each score is then scaled by scale * log2(e)). Per key tile:
// K in __local, scores in registers, the mask (edge tiles only: a work-group-uniform branch), each
// row's max across its CT work-items (through __local, or CLATTN_SHUFFLE), P = exp2(S - max) into
// __local, V in __local, rescale and P.V. Row sums stay partial per work-item until the end. K and
// V are staged when they are needed, in one buffer, each load waited for there; or
// (CLATTN_PREFETCH) loaded a step ahead, V during the scores and the next tile's K during P.V
// (key_tile), into registers or by asynchronous copies (CLATTN_ASYNC); or (CLATTN_DIRECT) not
// staged at all, read where they lie through the caches.
//
// Build options (cl/common.cl lists the shared ones):
//   -DCLATTN_BM, -DCLATTN_BN   query rows per work-group, keys per tile
//   -DCLATTN_TM, -DCLATTN_TN   each work-item's register block of scores (TM * TN <= 32)
//   -DCLATTN_REQD_WG=<0|1>     declare reqd_work_group_size (the table leaves it out on Adreno,
//                              as CLBlast does)
//   -DCLATTN_STAGE=<0..8>      vector loads a work-item issues before it stores them (gpu_stage.cl)
//   -DCLATTN_PREFETCH=<0|1>    load K and V a step ahead (V then has a __local buffer of its own)
//   -DCLATTN_DIRECT=<0|1>      read K and V from global memory where they lie, through the caches,
//                              instead of staging them in __local: for GPUs whose __local is the
//                              same memory as global (ARM Mali), where staging only adds copies
//                              and barriers. Not with CLATTN_PREFETCH or CLATTN_MMA.
//   -DCLATTN_ASYNC=<0|1|2>     with CLATTN_PREFETCH and float32 storage, K and V copied to __local
//                              asynchronously rather than through registers: 1 NVIDIA's cp.async
//                              (inline PTX), 2 its contract emulated (tests; gpu_stage.cl)
//   -DCLATTN_SHUFFLE=<0|1|2>   combine a row's CT partial values (each tile's max, the sums at the
//                              end) by a butterfly of exchanges among the row's work-items: 1
//                              NVIDIA's warp shuffle (shfl.sync through inline PTX: CT a power of
//                              two up to 32, whole warps); 2 the same exchanges through __local,
//                              two barriers each, so that devices without shuffles run this code
//                              (the tests); 0 through __local, each work-item's value once.
//   -DCLATTN_MMA=<0|1|2>       the scores and P.V: 0 by float32 multiply-adds in TM x TN blocks;
//                              1 as NVIDIA's tensor-core products (mma.sync through inline PTX,
//                              3xTF32: below), each warp 16 rows, TM 2 and TN BN / 4; 2 the same
//                              layout with each work-item computing its part from __local (tests).
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
#ifndef CLATTN_MMA
#define CLATTN_MMA 0
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
#if CLATTN_MMA && (TM != 2 || TN * 4 != BN || BM % 16 != 0 || BN % 8 != 0 || D % 8 != 0 || DV % 8 != 0 || OW != 2)
#error "CLATTN_MMA needs TM 2, TN BN / 4, BM a multiple of 16, BN, D and DV of 8 (and common.cl's OW 2)"
#endif
#if CLATTN_ASYNC && !CLATTN_PREFETCH
#error "CLATTN_ASYNC is a way of CLATTN_PREFETCH's loads"
#endif
#if CLATTN_DIRECT && (CLATTN_PREFETCH || CLATTN_MMA)
#error "CLATTN_DIRECT stages no K or V: not with CLATTN_PREFETCH or CLATTN_MMA"
#endif
#define TWO_BARRIERS (CLATTN_SHUFFLE && CLATTN_PREFETCH) // a key tile's (key_tile)
#define FLAG(t) (TWO_BARRIERS ? (t)&1 : 0)               // key tile t's nonfinite flag: its V
#define FLAGS 2
#define GUARDED_GROUPS (CLATTN_MMA ? 1 : TG) // value vectors per walk of the guarded P.V (below)

// Which rows and keys work-item (ty, tx) owns: its i-th row and j-th key (module comment). With
// CLATTN_MMA, the layout of an m16n8k8 product's accumulators: warp w (ty / 8) owns rows 16w ..
// 16w + 15 against every key; its lane 4g + tx (g = ty % 8) rows 16w + g and 16w + g + 8, and in
// each 8 keys the two at 2tx and 2tx + 1 (then TM = 2, TN = BN / 4, CT = 4).
#if CLATTN_MMA
#define ROW_OF(ty, i) ((ty) / 8 * 16 + (ty) % 8 + 8 * (i))
#define KEY_OF(tx, j) (8 * ((j) / 2) + 2 * (tx) + (j) % 2)
#else
#define ROW_OF(ty, i) ((ty) + RT * (i))
#define KEY_OF(tx, j) ((tx) + CT * (j))
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
#if CLATTN_MMA
// The products read K in pairs of floats, lanes 4g + tx at row g, column 2tx: a stride of 8 (mod
// 32) puts a half-warp's 16 pairs in distinct banks. V by single floats, lanes 4g + tx at row
// 2tx, column g: a stride of 4 (mod 16) does the same for the warp's 32.
#define QS (D + (40 - D % 32) % 32)
#define VS (DV + (20 - DV % 16) % 16)
// Q is staged in the order of the scores' A fragments instead: for each warp's 16 rows and each
// 8 of D (kk), lane 4g + q's four floats side by side, in the order of its registers (rows g and
// g + 8 at d = 8kk + TERM(q, 0), then at TERM(q, 1)). A lane reads its fragment with one 16-byte
// load, the warp's 32 loads are contiguous, and no register moves follow.
#define Q_AT(r, d) ((r) / 16 * 16 * D + ((d) / 8 * 32 + (r) % 8 * 4 + (d) % 8 / 2) * 4 + (d) % 2 * 2 + (r) % 16 / 8)
#define Q_SIZE (BM * D)
#else
#define QS (D + ((D / QW) % 2 == 0 ? QW : 0)) // row stride of staged Q and K
#define VS DV                                 // of staged V
#define Q_SIZE (BM * QS)
#endif
#define PU (CT % PW == 0 ? CT : PW)             // P's padding unit: its writers are CT to a row
#define PS (BN + ((BN / PU) % 2 == 0 ? PU : 0)) // row stride of P
#if CLATTN_DIRECT
#define KS 0 // neither K nor V in __local
#elif CLATTN_PREFETCH
#define KS QS // K's rows; V has a buffer of its own
#else
#define KS (QS > VS ? QS : VS) // K rows (stride QS), then V rows (stride VS) in the same buffer
#endif
#define NG (DV / OW)                      // value column groups
#define TG ((NG + CT - 1) / CT)           // of them per work-item
#define KSHARE ROWS_SHARE(D, QW, BN, WG)  // vectors of a K tile a work-item stages
#define VSHARE ROWS_SHARE(DV, VW, BN, WG) // and of a V tile
#define MASKED_P 0x80000000u              // -0: a masked weight (a visible one is >= +0)
// On tensor cores Q's small TF32 parts (SPLIT_TF32) are staged too, in Q's buffer behind Q, where
// the work-group's __local still fits 48 KB with them (NVIDIA's limit; D = 128 at 32 x 16, not at
// 64 x 32 below it): the scores then split only K.
#define LOCAL_FLOATS                                                                                                   \
    (Q_SIZE + BN * KS + (CLATTN_PREFETCH ? BN * VS : 0) + BM * PS + (CLATTN_SHUFFLE != 1 ? BM * CT : 0) + FLAGS)
#define Q_SMALL_STAGED (CLATTN_MMA && 4 * (LOCAL_FLOATS + Q_SIZE) <= 48 * 1024)
#if OW == 1
#define NONFINITE(x) (!isfinite(x))
#else
#define NONFINITE(x) (!all(isfinite(x)))
#endif
// Sets *flag when a tile of BN rows of `width` floats holds an infinity or a NaN: each work-item
// looks at its share of the tile (vectors of vw: STAGE_ROWS_IN's share, get_local_id(0) + n * WG),
// `value` being its vector at SHARE_EACH's row r_ and column c_ (vector x_ of the tile). A staged
// tile's work-items read back only what each stored itself: no barrier needed. The sum of a
// work-item's values is finite when they all are, and an infinity or NaN among them leaves it
// infinite or NaN: one addition a value and one test at the end. A finite sum that overflows also
// sets the flag (values near 1e37), which costs the tile its exact float32 path and nothing else.
// Unrolled where every tile is checked (CLATTN_MMA); rolled for the edge tiles of the others, whose
// registers it would raise (gfx906: 125 to 127 VGPRs at D = 64, 211 to 218 at D = 128).
#if CLATTN_MMA
#define UNROLL_CHECK _Pragma("unroll")
#else
#define UNROLL_CHECK _Pragma("unroll 1")
#endif
#define FLAG_NONFINITE(type, vw, width, flag, value)                                                                   \
    {                                                                                                                  \
        type sum_ = (type)(0.0f);                                                                                      \
        SHARE_EACH(UNROLL_CHECK, vw, width, BN, WG, sum_ += (value);)                                                  \
        if (NONFINITE(sum_))                                                                                           \
            atomic_or(flag, 1);                                                                                        \
    }

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

#if CLATTN_MMA
// Products on tensor cores in float32 accuracy: x = big + small with each part a TF32 (10 mantissa
// bits; SPLIT_TF32) and a b ~ a_big b_big + a_big b_small + a_small b_big, three TF32
// products (small small, at most 2^-20 of the product, is left out: CUTLASS's "3xTF32"). Only for
// finite values: the parts of an infinity are inf and inf - inf = NaN, so the work-items whose
// scores come out NaN (an infinity or NaN in Q or K) compute them again exactly, and the tiles whose
// V holds one take the exact float32 P.V instead (key_tile).
//
// big is x truncated to TF32 and small = x - big, truncated as the tensor cores read it: two
// instructions a value (a LOP3 and an FADD), as ptxas drops the masks of values that only feed
// HMMA, the tensor cores reading 10 mantissa bits, and passes x itself as the big part. Rounding
// big to nearest, as cvt.rna.tf32 does (which ptxas makes four instructions on sm_90), halves
// small but costs an addition a value; a value's pair is within 2^-21 of x, rounded within 2^-22.
inline float tf32_truncate(float x)
{
    return as_float(as_uint(x) & 0xffffe000u);
}

inline float tf32_small(float x)
{
    return tf32_truncate(x - tf32_truncate(x));
}

#define SPLIT_TF32(x, big, small, n)                                                                                   \
    _Pragma("unroll") for (int u_ = 0; u_ < (n); u_++)                                                                 \
    {                                                                                                                  \
        big[u_] = tf32_truncate((x)[u_]);                                                                              \
        small[u_] = tf32_small((x)[u_]);                                                                               \
    }

// The warp's fragments of an m16n8k8 product C += A B (PTX ISA, mma.m16n8k8 for .tf32), lane 4g + q
// holding: A's register r, A[g + 8 (r % 2)][q + 4 (r / 2)]; B's register r, B[q + 4r][g]; C's
// register r, C[g + 8 (r / 2)][2q + r % 2]. The 8 terms of a product are taken in another order
// (any order gives the same sum): term q + 4h is d = 8kk + TERM(q, h) of the scores' product kk, key
// 8n + TERM(q, h) of P.V's product n, so that a lane's terms are two neighbours: one pair of floats
// of K (and of each of Q's two rows, staged side by side: Q_AT), and in P.V the weights its
// scores' registers hold (KEY_OF).
#define TERM(q, h) (2 * (q) + (h))

#if CLATTN_MMA == 1
#if !defined(__NVPTX__) && !defined(cl_nv_pragma_unroll)
// clang's NVPTX target and NVIDIA's compiler (which defines its extensions' names): elsewhere the
// text would reach another assembler, which POCL's and Intel's took without a word and ran
// (garbage), so the build fails here and the plan runs without (host/plan.c).
#error "CLATTN_MMA 1 is PTX (mma.sync), for NVIDIA's compiler"
#endif
// Every operand a 32-bit integer register ("r"; PTX takes .b32 for .f32): x86's "f" is the x87
// stack, whose overflow aborted POCL's LLVM before the check above was there.
inline void mma_tf32(float *c, const float *a, const float *b)
{
    uint d[4] = {as_uint(c[0]), as_uint(c[1]), as_uint(c[2]), as_uint(c[3])};
    __asm__ volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                     "{%0, %1, %2, %3};"
                     : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                     : "r"(as_uint(a[0])), "r"(as_uint(a[1])), "r"(as_uint(a[2])), "r"(as_uint(a[3])),
                       "r"(as_uint(b[0])), "r"(as_uint(b[1])));
#pragma unroll
    for (int r = 0; r < 4; r++)
        c[r] = as_float(d[r]);
}

// c += a b in 3xTF32 from the lane's fragments: a (4 floats) already split, b (2); the small
// terms first.
inline void mma_3xtf32(float *c, const float *a_big, const float *a_small, const float *b)
{
    float b_big[2], b_small[2];
    SPLIT_TF32(b, b_big, b_small, 2)
    mma_tf32(c, a_small, b_big);
    mma_tf32(c, a_big, b_small);
    mma_tf32(c, a_big, b_big);
}
#else
// The same product for devices without mma.sync (tests): each work-item computes its C registers
// from A(row, k) and B(k, col), A[row][k] and B[k][col] read where the lanes that hold them as
// fragments would read them, each split as they would split it (A_SMALL: A's small part where the
// lanes read that too). No exchange between work-items, so no barrier in the loops (POCL's
// compiler took minutes over a kernel with one there).
#define EMULATED_PRODUCT(c, A, B, A_SMALL)                                                                             \
    {                                                                                                                  \
        const int g_ = (get_local_id(0) & 31) / 4, q_ = get_local_id(0) % 4;                                           \
        _Pragma("unroll 1") for (int r_ = 0; r_ < 4; r_++)                                                             \
        {                                                                                                              \
            const int row_ = g_ + 8 * (r_ / 2), col_ = 2 * q_ + r_ % 2;                                                \
            float acc_ = (c)[r_];                                                                                      \
            _Pragma("unroll 1") for (int k_ = 0; k_ < 8; k_++)                                                         \
            {                                                                                                          \
                const float a_[1] = {A(row_, k_)}, b_[1] = {B(k_, col_)};                                              \
                float ab_[1], as_[1], bb_[1], bs_[1];                                                                  \
                SPLIT_TF32(a_, ab_, as_, 1)                                                                            \
                SPLIT_TF32(b_, bb_, bs_, 1)                                                                            \
                as_[0] = A_SMALL(row_, k_, as_[0]);                                                                    \
                acc_ = fma(as_[0], bb_[0], acc_);                                                                      \
                acc_ = fma(ab_[0], bs_[0], acc_);                                                                      \
                acc_ = fma(ab_[0], bb_[0], acc_);                                                                      \
            }                                                                                                          \
            (c)[r_] = acc_;                                                                                            \
        }                                                                                                              \
    }
#endif
#endif

typedef union {
    qv_t v;
    float s[QW];
} q_lanes;

// Stages vector c of Q's row r where the scores read it (Q_AT), and on tensor cores its small
// TF32 parts behind Q where they are staged.
inline void q_store(__local float *qs, int r, int c, qv_t x)
{
#if CLATTN_MMA
    const q_lanes u = {x};
#pragma unroll
    for (int i = 0; i < QW; i++) {
        qs[Q_AT(r, c * QW + i)] = u.s[i];
        if (Q_SMALL_STAGED)
            qs[Q_SIZE + Q_AT(r, c * QW + i)] = tf32_small(u.s[i]);
    }
#else
    LVEC(qv_t, qs + r * QS, c) = x;
#endif
}

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

// Vector d of the row of K of tile key j (0 .. BN - 1), and vector col of its row of V: staged in
// ks and vs; or (CLATTN_DIRECT) where they lie, a short tile's keys from count on reading its last
// row, as its clamped staging loads do (such a tile is an edge tile, whose mask hides them).
inline qv_t key_vector(__local const float *ks, key_src cur, int j, int d)
{
#if CLATTN_DIRECT
    return SRC_GLOAD(qv_t, QW, SRC_AT(cur.k, (size_t)min(j, cur.count - 1) * D), d);
#else
    return LVEC(qv_t, ks + j * QS, d);
#endif
}

inline ov_t value_vector(__local const float *vs, key_src cur, int j, int col)
{
#if CLATTN_DIRECT
    return SRC_GLOAD(ov_t, OW, SRC_AT(cur.v, (size_t)min(j, cur.count - 1) * DV), col);
#else
    return LVEC(ov_t, vs + j * VS, col);
#endif
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

#if CLATTN_MMA
// The loops around products: unrolled for mma.sync, whose accumulators must be registers; rolled
// for the emulation, which indexes its arrays (and builds sooner).
// The scores' loop over D runs two products a step on tensor cores, so that the next step's
// __local loads overlap this one's products (clang's sm_90 build, one warp alone in sass_loops.py's
// model: 181 to 163 cycles a product at D = 64, 119 to 99 at D = 128; registers unchanged).
#if CLATTN_MMA == 1
#define UNROLL_PRODUCTS _Pragma("unroll")
#define UNROLL_TERMS _Pragma("unroll 2")
#else
#define UNROLL_PRODUCTS _Pragma("unroll 1")
#define UNROLL_TERMS _Pragma("unroll 1")
#endif
#define PV_BLOCKS 2 // P.V's column blocks interleaved (pv_mma)

// The work-item's weights p (its scores' registers) to P's rows in ps, where the guarded P.V and the
// emulated products read them.
inline void weights_to_local(__local float *ps, float p[TM][TN])
{
    const int tx = get_local_id(0) % CT, ty = get_local_id(0) / CT;
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++)
            ps[ROW_OF(ty, i) * PS + KEY_OF(tx, j)] = p[i][j];
}

// S = Q K^T for the warp's 16 rows (ROW_OF), product kk over terms d = 8kk .. 8kk + 7 and product n
// over keys 8n .. 8n + 7: C's registers are s[r / 2][2n + r % 2] (KEY_OF).
inline __attribute__((always_inline)) void scores_mma(float s[TM][TN], __local const float *qs, __local const float *ks)
{
    const int l = get_local_id(0), g = (l & 31) / 4, q = l % 4, w = l / 32 * 16; // w: the warp's first row
    UNROLL_TERMS for (int kk = 0; kk < D / 8; kk++)
    {
#if CLATTN_MMA == 1
        // A's registers, side by side (Q_AT: the next 8 of D are 128 floats on)
        const float4 a4 = LVEC(float4, qs + Q_AT(w + g, TERM(q, 0)) + 128 * kk, 0);
        const float a[4] = {a4.x, a4.y, a4.z, a4.w};
        float a_big[4], a_small[4];
#if Q_SMALL_STAGED
        const float4 small4 = LVEC(float4, qs + Q_SIZE + Q_AT(w + g, TERM(q, 0)) + 128 * kk, 0);
        const float small[4] = {small4.x, small4.y, small4.z, small4.w};
#pragma unroll
        for (int u = 0; u < 4; u++) {
            a_big[u] = tf32_truncate(a[u]);
            a_small[u] = small[u];
        }
#else
        SPLIT_TF32(a, a_big, a_small, 4)
#endif
#endif
        UNROLL_PRODUCTS for (int n = 0; n < BN / 8; n++)
        {
            float c[4] = {s[0][2 * n], s[0][2 * n + 1], s[1][2 * n], s[1][2 * n + 1]};
#if CLATTN_MMA == 1
            // B's registers 0 and 1 (terms q and q + 4): one pair of K's row 8n + g
            const float2 k2 = LVEC(float2, ks + (8 * n + g) * QS + 8 * kk + TERM(q, 0), 0);
            const float b[2] = {k2.x, k2.y};
            mma_3xtf32(c, a_big, a_small, b);
#else
// A(row, k) as mma.sync's lane 4 (row % 8) + k % 4 has it: register row / 8 + 2 (k / 4) of its load
#define A_INDEX(row, k) (Q_AT(w + (row) % 8, TERM((k) % 4, 0)) + 128 * kk + (row) / 8 + (k) / 4 * 2)
#define A_AT(row, k) qs[A_INDEX(row, k)]
#define A_SMALL_AT(row, k, split) (Q_SMALL_STAGED ? qs[Q_SIZE + A_INDEX(row, k)] : (split))
#define B_AT(k, col) ks[(8 * n + (col)) * QS + 8 * kk + TERM((k) % 4, (k) / 4)]
            EMULATED_PRODUCT(c, A_AT, B_AT, A_SMALL_AT)
#undef A_INDEX
#undef A_AT
#undef A_SMALL_AT
#undef B_AT
#endif
            s[0][2 * n] = c[0];
            s[0][2 * n + 1] = c[1];
            s[1][2 * n] = c[2];
            s[1][2 * n + 1] = c[3];
        }
    }
}

// O += P V for the warp's rows, product n over keys 8n .. 8n + 7 (term q + 4h is key 8n + TERM(q, h)
// = KEY_OF(q, 2n + h): A's registers are the weights p[r % 2][2n + r / 2] as the scores left them,
// and the emulation reads them from ps) and product c over output columns 8c .. 8c + 7 (C's
// registers: o[r / 2][c], a pair of columns).
inline __attribute__((always_inline)) void pv_mma(item_state *st, float p[TM][TN], __local const float *ps,
                                                  __local const float *vs)
{
    const int l = get_local_id(0), g = (l & 31) / 4, q = l % 4;
    // B's register h of product (n, c), of lane 4g + q: key 8n + TERM(q, h), column 8c + g, at a
    // constant offset from the lane's first value (V_LANE). Written as offsets from vs, each of
    // the 64 at D = 64 took an address register of its own, live across the key tiles (clang's
    // sm_90 build, 168 registers to 132 with MUFU.EX2). The emulation reads them the same way.
#define V_LANE(q, g) (vs + TERM(q, 0) * VS + (g))
#define V_OFFSET(n, h, c) ((8 * (n) + (h)) * VS + 8 * (c))
#if CLATTN_MMA == 2
    __local const float *pw = ps + l / 32 * 16 * PS; // the warp's rows of P (key_tile stored them)
#endif
#if CLATTN_MMA == 1
    __local const float *vl = V_LANE(q, g);
    float a_big[BN / 8][4], a_small[BN / 8][4]; // the weights split once, for every column block
#pragma unroll
    for (int n = 0; n < BN / 8; n++) {
        const float a[4] = {p[0][2 * n], p[1][2 * n], p[0][2 * n + 1], p[1][2 * n + 1]};
        SPLIT_TF32(a, a_big[n], a_small[n], 4)
    }
#endif
    // Column blocks PV_BLOCKS at a time, the keys inside: a block's products form one chain of
    // mma.sync on its accumulators, and the chains of the blocks taken together interleave. In
    // clang's sm_90 build with MUFU.EX2 (one warp alone, sass_loops.py's model) P.V took 1,923
    // cycles at D = 64 one block at a time, 1,479 two at a time (2 registers less), 925 all at once
    // (6 more: 134, over 128); D = 128 took the same time and registers every way.
    UNROLL_PRODUCTS for (int c0 = 0; c0 < DV / 8; c0 += PV_BLOCKS)
    {
        UNROLL_PRODUCTS for (int n = 0; n < BN / 8; n++)
        {
            UNROLL_PRODUCTS for (int u = 0; u < PV_BLOCKS && c0 + u < DV / 8; u++)
            {
                const int c = c0 + u;
                float acc[4] = {st->o[0][c].x, st->o[0][c].y, st->o[1][c].x, st->o[1][c].y};
#if CLATTN_MMA == 1
                const float b[2] = {vl[V_OFFSET(n, 0, c)], vl[V_OFFSET(n, 1, c)]};
                mma_3xtf32(acc, a_big[n], a_small[n], b);
#else
#define A_AT(row, k) pw[(row)*PS + KEY_OF((k) % 4, 2 * n + (k) / 4)]
#define SPLIT_SMALL(row, k, split) (split)
#define B_AT(k, col) V_LANE((k) % 4, col)[V_OFFSET(n, (k) / 4, c)]
                EMULATED_PRODUCT(acc, A_AT, B_AT, SPLIT_SMALL)
#undef A_AT
#undef SPLIT_SMALL
#undef B_AT
#endif
                st->o[0][c] = (float2)(acc[0], acc[1]);
                st->o[1][c] = (float2)(acc[2], acc[3]);
            }
        }
    }
#undef V_LANE
#undef V_OFFSET
}
#define PUT_P(i, j, x) (s[i][j] = (x)) // P stays in the scores' registers
#else
#define PUT_P(i, j, x) (prow[KEY_OF(tx, j)] = (x))
#endif

// One key tile, cur, the walk's t-th: scores, softmax and P.V. `ok` has bit i * TN + j set when
// row i sees key j of the work-item (edge tiles only; every key is visible in the others).
//
// Staged K and V rows past cur.count are zeros, so that no stale value enters the scores (with
// CLATTN_DIRECT nothing is staged: key_vector and value_vector read K and V where they lie). Without
// CLATTN_PREFETCH, K is staged in ks, then V over it once the scores are done, each waited for
// there. With it, ks holds K already (the previous tile stored it, or the walk's start): the tile
// loads its V into registers before the scores and stores it in vs after them, and loads the next
// tile's K (next, when has_next) before P.V and stores it after: each load's latency is spent
// computing. With CLATTN_ASYNC the same copies are issued where those loads were and waited for
// where the stores were (V's after the weights), and no register holds them; V's check then
// reads back what the work-item's copies wrote, as the staged tiles' do. The tile ends on a
// barrier, so that ks, vs and ps are free at the next one's start. A barrier after the scores
// publishes the rows' maxima through red and frees ks for V; with CLATTN_SHUFFLE and
// CLATTN_PREFETCH there is neither to wait for, and the tile has two barriers (TWO_BARRIERS; and
// the exchanges' own where they go through __local).
//
// nonfinite[FLAG(t)] says whether an edge tile's values (with CLATTN_MMA, any tile's) hold an
// infinity or NaN: set by atomic_or before the barrier ahead of P.V, read after it. The first
// work-item clears a flag at the tile's start, whose last readers were behind the previous tile's
// last barrier: the tile's own, whose writers wait behind the barrier after the scores; with two
// barriers, the other of two, the next tile's, whose writers wait behind this tile's last barrier.
inline __attribute__((always_inline)) void key_tile(item_state *st, __local float *qs, __local float *ks,
                                                    __local float *vs, __local float *ps, __local float *red,
                                                    volatile __local int *nonfinite, int t, key_src cur, key_src next,
                                                    bool has_next, bool edge, uint ok, float qscale)
{
    const int tx = get_local_id(0) % CT, ty = get_local_id(0) / CT;
    if (get_local_id(0) == 0 && (TWO_BARRIERS || CLATTN_MMA || edge))
        nonfinite[FLAG(t + TWO_BARRIERS)] = 0;
#if CLATTN_PREFETCH && CLATTN_ASYNC
    ASYNC_ISSUE(vv_t, VW, vs, VS, cur.v, cur.count, DV, BN, WG)
#elif CLATTN_PREFETCH
    vv_t vr_next[VSHARE];
    ROWS_LOAD(0, vv_t, VW, vr_next, 0, VSHARE, cur.v, cur.count, DV, BN, WG)
    // Whether P.V must guard its sums, from the values this work-item loaded (a short tile's clamped
    // loads repeat its last row, which is checked anyway); told after the scores.
    bool bad = false;
    if (CLATTN_MMA || edge)
#pragma unroll
        for (int n = 0; n < VSHARE; n++)
            bad |= NONFINITE(vr_next[n]);
#elif !CLATTN_DIRECT
    STAGE_ROWS_IN(qv_t, QW, ks, QS, cur.k, cur.count, D, BN, WG)
    barrier(CLK_LOCAL_MEM_FENCE);
#endif

    float s[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++)
            s[i][j] = 0.0f;
#if CLATTN_MMA
    scores_mma(s, qs, ks);
    // An infinity or NaN in Q or K leaves NaN in every score it enters, whatever it meets: its TF32
    // parts are inf and inf - inf (NaN truncated stays NaN, and a NaN's big part is inf or NaN). A
    // work-item that holds such a score computes its scores again exactly, one float of D at a
    // time: the rare path keeps few registers live (vectors over D took clang's sm_90 build of the
    // kernel from 225 registers to 238 at D = 64). Finite Q and K give finite scores, or infinite
    // ones (float32 overflow: then a sum of +inf and -inf also takes the exact path, as it may).
    float any_nan = 0.0f;
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++)
            any_nan += s[i][j];
    if (isnan(any_nan)) {
#pragma unroll
        for (int i = 0; i < TM; i++)
#pragma unroll
            for (int j = 0; j < TN; j++)
                s[i][j] = 0.0f;
#pragma unroll 1
        for (int d = 0; d < D; d++)
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++)
                    s[i][j] = fma(qs[Q_AT(ROW_OF(ty, i), d)], ks[KEY_OF(tx, j) * QS + d], s[i][j]);
    }
#else
#pragma unroll 1
    for (int d = 0; d < D / QW; d++) {
        qv_t qr[TM], kr[TN];
#pragma unroll
        for (int i = 0; i < TM; i++)
            qr[i] = LVEC(qv_t, qs + ROW_OF(ty, i) * QS, d);
#pragma unroll
        for (int j = 0; j < TN; j++)
            kr[j] = key_vector(ks, cur, KEY_OF(tx, j), d);
#pragma unroll
        for (int i = 0; i < TM; i++)
#pragma unroll
            for (int j = 0; j < TN; j++)
                s[i][j] = DOT_ACC(qr[i], kr[j], s[i][j]);
    }
#endif
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
        red[ROW_OF(ty, i) * CT + tx] = mt[i];
#endif
    }
#if CLATTN_SHUFFLE
    ROWS_BUTTERFLY(mt, fmax)
#endif
#if CLATTN_PREFETCH && !CLATTN_ASYNC
    ROWS_STORE(0, vv_t, VW, vr_next, 0, VSHARE, vs, VS, cur.count, DV, BN, WG)
#endif
#if !TWO_BARRIERS
    barrier(CLK_LOCAL_MEM_FENCE);
#endif
#if CLATTN_PREFETCH && !CLATTN_ASYNC
    if (bad)
        atomic_or(nonfinite + FLAG(t), 1);
#endif

#pragma unroll
    for (int i = 0; i < TM; i++) {
#if !CLATTN_SHUFFLE
        mt[i] = row_max(red + ROW_OF(ty, i) * CT);
#endif
        const float mnew = fmax(st->m[i], mt[i]);
#if !CLATTN_MMA
        __local float *prow = ps + ROW_OF(ty, i) * PS;
#endif
        if (mnew == -INFINITY) {
            // No finite logit in the row yet (rare): weights of +0, and the sum records what the
            // visible keys were (write_row's rule): NaN for a NaN logit, else -0. The weights
            // still multiply the values, so that an infinite value gives NaN as in the reference.
#pragma unroll
            for (int j = 0; j < TN; j++) {
                const bool seen = !edge || ((ok >> (i * TN + j)) & 1u);
                if (seen)
                    st->l[i] = isnan(s[i][j]) ? NAN : copysign(st->l[i], -1.0f);
                PUT_P(i, j, seen ? 0.0f : as_float(MASKED_P));
            }
            continue;
        }
        const float alpha = exp2(st->m[i] - mnew); // 0 when m was -inf, 1 when the max held
        st->m[i] = mnew;
        // The max holds on most tiles once a row has met its largest logits: the products by 1
        // are skipped there (the same bits), and a warp jumps over them when none of its rows
        // needs them. Not on CPU devices (common.cl's CLATTN_CPU_DEVICE: the GPU variant forced
        // there, for tests), where POCL 3.1 ran this branch wrong for 4 x 4 blocks in 32 x 16 tiles
        // (test_patterns' gpu32x16; Intel's runtime and Oclgrind, with --data-races, ran it right).
        if (CLATTN_CPU_DEVICE || alpha != 1.0f) {
            st->l[i] *= alpha;
#pragma unroll
            for (int g = 0; g < TG; g++)
                st->o[i][g] *= alpha;
        }
#pragma unroll
        for (int j = 0; j < TN; j++) {
            const bool seen = !edge || ((ok >> (i * TN + j)) & 1u);
            const float p = exp2(s[i][j] - mnew);
            if (seen)
                st->l[i] += p;
            PUT_P(i, j, seen ? p : as_float(MASKED_P));
        }
    }
#if CLATTN_PREFETCH && CLATTN_ASYNC
    // As late as the barrier allows: the copies had the scores and the weights to land. The flag
    // is set after the barrier that follows its clear at the tile's start, or with two barriers a
    // tile before its use (FLAG).
    ASYNC_WAIT(vv_t, VW, vs, VS, cur.v, cur.count, DV, BN, WG)
    if (CLATTN_MMA || edge)
        FLAG_NONFINITE(vv_t, VW, DV, nonfinite + FLAG(t), LVEC(vv_t, vs + r_ * VS, c_))
#elif CLATTN_PREFETCH
    qv_t kr_next[KSHARE];
    if (has_next)
        ROWS_LOAD(0, qv_t, QW, kr_next, 0, KSHARE, next.k, next.count, D, BN, WG)
#elif CLATTN_DIRECT
    // Whether P.V must guard its sums: each work-item looks at its share of the tile's V.
    if (edge)
        FLAG_NONFINITE(vv_t, VW, DV, nonfinite + FLAG(t),
                       SRC_GLOAD(vv_t, VW, cur.v, min(x_, cur.count * (DV / VW) - 1)))
#else
    // Every work-item has passed the barrier after its scores: K is no longer read.
    STAGE_ROWS_IN(vv_t, VW, vs, VS, cur.v, cur.count, DV, BN, WG)
    // Whether P.V must guard its sums: each work-item looks at the vectors it staged itself.
    if (CLATTN_MMA || edge)
        FLAG_NONFINITE(vv_t, VW, DV, nonfinite + FLAG(t), LVEC(vv_t, vs + r_ * VS, c_))
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
#if CLATTN_PREFETCH && CLATTN_ASYNC
    // Every work-item has passed the scores, the last reads of ks: the next tile's K lands during
    // P.V.
    if (has_next) {
        ASYNC_ISSUE(qv_t, QW, ks, QS, next.k, next.count, D, BN, WG)
    }
#endif

    // P.V. A masked key (edge tiles only) must add nothing, not even 0 times its value, which is
    // NaN when the value is infinite or NaN; a masked weight (-0) times a finite value adds nothing
    // by itself. So only an edge tile with a value that is not finite (rare) guards its sums, key by
    // key; the others take the loop without a select per multiply-add (guarding every edge tile in
    // that loop cost one per multiply-add on all tiles: the H200's PTX had as many selp as fma).
    // With CLATTN_MMA any tile with such a value takes it (a value's TF32 parts would turn inf into
    // NaN), its weights first stored to ps from the registers that hold them: where it does with
    // mma.sync; on every tile with the emulation, whose products read them there too (a barrier
    // in a branch, which the hardware path has, is what POCL's compiler handles worst).
#if CLATTN_MMA == 2
    weights_to_local(ps, s);
    barrier(CLK_LOCAL_MEM_FENCE);
#endif
    // The guarded sums walk the tile's keys once for every GUARDED_GROUPS of the work-item's value
    // vectors: on tensor cores, whose 16 pairs of columns at D = 128 would hold 32 registers of V
    // at once in a walk over all of them, one pair at a time (clang's sm_90 build of NVIDIA's D =
    // 128 row, with exp2 as MUFU.EX2, 212 registers to 168: docs/GPU.md); the other kernels'
    // few vectors in one walk.
    if ((CLATTN_MMA || edge) && nonfinite[FLAG(t)]) {
#if CLATTN_MMA == 1
        weights_to_local(ps, s);
        barrier(CLK_LOCAL_MEM_FENCE);
#endif
#pragma unroll
        for (int g0 = 0; g0 < TG; g0 += GUARDED_GROUPS)
#pragma unroll 1
            for (int t = 0; t < BN; t++)
#pragma unroll
                for (int i = 0; i < TM; i++) {
                    const float p = ps[ROW_OF(ty, i) * PS + t];
                    if (as_uint(p) == MASKED_P)
                        continue;
#pragma unroll
                    for (int u = 0; u < GUARDED_GROUPS; u++) {
                        const int g = g0 + u, col = tx + CT * g;
                        if (NG % CT == 0 || col < NG)
                            st->o[i][g] = fma((ov_t)(p), value_vector(vs, cur, t, col), st->o[i][g]);
                    }
                }
    } else {
#if CLATTN_MMA
        pv_mma(st, s, ps, vs);
#else
#pragma unroll 1
        for (int t = 0; t < BN; t += PW) {
            p_lanes pr[TM];
#pragma unroll
            for (int i = 0; i < TM; i++)
                pr[i].v = LVEC(pv_t, ps + ROW_OF(ty, i) * PS, t / PW);
#pragma unroll
            for (int u = 0; u < PW; u++)
#pragma unroll
                for (int g = 0; g < TG; g++) {
                    const int col = tx + CT * g;
                    if (NG % CT != 0 && col >= NG)
                        continue;
                    const ov_t vr = value_vector(vs, cur, t + u, col);
#pragma unroll
                    for (int i = 0; i < TM; i++)
                        st->o[i][g] = fma((ov_t)(pr[i].s[u]), vr, st->o[i][g]);
                }
        }
#endif
    }
#if CLATTN_PREFETCH
    // ks was last read by the scores, before two barriers.
    if (has_next) {
#if CLATTN_ASYNC
        ASYNC_WAIT(qv_t, QW, ks, QS, next.k, next.count, D, BN, WG)
#else
        ROWS_STORE(0, qv_t, QW, kr_next, 0, KSHARE, ks, QS, next.count, D, BN, WG)
#endif
    }
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
    __local float qs[Q_SIZE * (1 + Q_SMALL_STAGED)] __attribute__((aligned(16)));
#if CLATTN_DIRECT
    __local float *const ks = NULL, *const vs = NULL; // K and V are read where they lie
#else
    __local float ks[BN * KS] __attribute__((aligned(16)));
#if CLATTN_PREFETCH
    __local float vs[BN * VS] __attribute__((aligned(16)));
#else
    __local float *const vs = ks;
#endif
#endif
    __local float ps[BM * PS] __attribute__((aligned(16)));
#if CLATTN_SHUFFLE != 1
    __local float red[BM * CT] __attribute__((aligned(16)));
#else
    __local float *const red = NULL; // the rows' values are combined by shuffles instead
#endif
    // key_tile's flags: a tile's V holds an infinity or NaN (FLAG)
    volatile __local int nonfinite[FLAGS];
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
        const qv_t qv = GLOAD(qv_t, QW, q + ((size_t)bh * nq + i) * D, c);
        q_store(qs, r, c, qv);
    }
    item_state st;
#pragma unroll
    for (int i = 0; i < TM; i++) {
        st.pos[i] = min(tile * BM + ROW_OF(ty, i), num_rows - 1) + nk - nq;
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
#elif CLATTN_DIRECT
    barrier(CLK_LOCAL_MEM_FENCE);    // Q (elsewhere the first tile's staging waits for it)
#endif
#if CLATTN_PREFETCH
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
                    ok |= (uint)band_visible(rule, st.pos[i], j0 + KEY_OF(tx, j), kv_len) << (i * TN + j);
        key_tile(&st, qs, ks, vs, ps, red, nonfinite, t, cur, NEXT_TILE(walk_tile, t), edge, ok, qscale);
    }
    for (int t = walk.nband; t < nwalk; t++) {
        const key_src cur = side_tile(&walk, t);
        uint ok = 0;
#pragma unroll
        for (int j = 0; j < TN; j++) {
            const int x = KEY_OF(tx, j), s = cur.first + x;
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
        red[ROW_OF(ty, i) * CT + tx] = st.l[i];
    barrier(CLK_LOCAL_MEM_FENCE);
#endif
#pragma unroll
    for (int i = 0; i < TM; i++) {
        const int r = ROW_OF(ty, i);
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
