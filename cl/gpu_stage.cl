// What the GPU variant's tiled kernels share (attention_gpu.cl, decode_gpu.cl), compiled after
// common.cl: aligned vector access to rows, and the staging of a tile of rows into __local, by
// loads and stores or by asynchronous copies.

// Vector i of a __local or __global row, as one aligned load or store: rows start at multiples of
// the vector width (strides and buffer offsets are multiples of it), and vloadn would promise the
// compiler only a float's alignment, which splits the access on several GPUs.
#define LVEC(type, p, i) (((__local type *)(p))[i])
#define GVEC(type, p, i) (((__global type *)(p))[i])
// The same for the caller's tensors (a pointer p) and for rows of a src_t s, of vw elements each:
// float32 storage is read and written as GVEC; float16 and bfloat16 are widened and rounded by
// common.cl's LOAD and STORE.
#if CLATTN_DTYPE == 0
#define GLOAD(type, vw, p, i) GVEC(type, p, i)
#define GSTORE(type, vw, x, p, i) (GVEC(type, p, i) = (x))
#define SRC_GLOAD(type, vw, s, i) GVEC(type, s, i)
#else
#define GLOAD(type, vw, p, i) LOAD(vw, i, p)
#define GSTORE(type, vw, x, p, i) STORE(vw, x, i, p)
#define SRC_GLOAD(type, vw, s, i) SRC_LOAD(vw, i, s)
#endif

// Whether the kernels stage K and V in __local (0, the copies below) or read them where they lie,
// through the caches (1: the tiles' `direct`, for GPUs whose __local is the same memory as global,
// ARM Mali's).
#ifndef CLATTN_DIRECT
#define CLATTN_DIRECT 0
#endif

// The wg work-items of a work-group copy `rows` rows of `width` elements from src (a src_t whose
// rows lie `width` elements apart) to __local floats whose rows lie `stride` apart, as vectors of
// vw elements of `type`; rows from `count` on (count >= 1) become zeros. Vector x of the tile is
// vector x of src; consecutive work-items take consecutive vectors, so the loads coalesce. A
// work-item's share is ROWS_SHARE vectors: its n-th is vector get_local_id(0) + n * wg.
#define ROWS_SHARE(width, vw, rows, wg) (((rows) * ((width) / (vw)) + (wg)-1) / (wg))

// The row and column of vector x = l + n wg of a tile whose rows hold vecs vectors (l the
// work-item's id, n its place in the share): where wg is a multiple of vecs, the same column for
// every vector of the share and rows a constant apart, so that a work-item's accesses lie at
// constant offsets from its first (x / vecs for each took an address register of its own).
#define SHARE_ROW(l, n, x, vecs, wg) ((wg) % (vecs) == 0 ? (l) / (vecs) + (n) * ((wg) / (vecs)) : (x) / (vecs))
#define SHARE_COL(l, x, vecs, wg) ((wg) % (vecs) == 0 ? (l) % (vecs) : (x) % (vecs))

// Vector n of the work-item's share (at row r, column c) in the __local tile dst of `type`
// vectors, rows `stride` floats apart: where wg is a multiple of vecs, as an offset from the
// work-item's first vector, which stays one address and constant offsets (taken from r and c,
// each store of the full K tiles of NVIDIA's D = 128 row held an address register of its own).
#define SHARE_AT(type, vw, dst, stride, l, n, r, c, vecs, wg)                                                          \
    ((wg) % (vecs) == 0 ? (__local type *)((dst) + SHARE_ROW(l, 0, l, vecs, wg) * (stride)) +                          \
                              SHARE_COL(l, l, vecs, wg) + (n) * ((wg) / (vecs)) * ((stride) / (vw))                    \
                        : (__local type *)((dst) + (r) * (stride)) + (c))

// body once for each vector x_ of the work-item's share of a tile (ROWS_SHARE: x_ < rows * vecs_),
// at row r_ and column c_ of the tile, the loop under `unroll` (a _Pragma).
#define SHARE_EACH(unroll, vw, width, rows, wg, body)                                                                  \
    unroll for (int n_ = 0; n_ < ROWS_SHARE(width, vw, rows, wg); n_++)                                                \
    {                                                                                                                  \
        const int vecs_ = (width) / (vw), l_ = (int)get_local_id(0), x_ = l_ + n_ * (wg);                              \
        const int r_ = SHARE_ROW(l_, n_, x_, vecs_, wg), c_ = SHARE_COL(l_, x_, vecs_, wg);                            \
        if (((rows)*vecs_) % (wg) == 0 || x_ < (rows)*vecs_) {                                                         \
            body                                                                                                       \
        }                                                                                                              \
    }

// Loads vectors first .. first + n - 1 of the work-item's share into buf[0 .. n - 1], with no
// branch around a load: a short tile's loads clamp to its last vector (the rows past count are
// stored as zeros by ROWS_STORE), and vectors past the share are not loaded. `full` (a constant)
// is 1 where the caller knows that count >= rows: then no load clamps but past the tile's end
// where the work-items do not divide it, and no store writes zeros, so that a work-item's loads
// and stores lie at constant offsets from its first vector's (in clang's sm_90 code, 18
// instructions a vector became about 2 at D = 128).
#define ROWS_LOAD(full, type, vw, buf, first, n, src, count, width, rows, wg)                                          \
    {                                                                                                                  \
        const int total_ = (rows) * ((width) / (vw));                                                                  \
        const int last_ =                                                                                              \
            (full) ? total_ - 1 : min((count), (rows)) * ((width) / (vw)) - 1; /* the last vector read */              \
        _Pragma("unroll") for (int n_ = 0; n_ < (n) && (first) + n_ < ROWS_SHARE(width, vw, rows, wg); n_++)           \
        {                                                                                                              \
            const int x_ = (int)get_local_id(0) + ((first) + n_) * (wg);                                               \
            buf[n_] = SRC_GLOAD(type, vw, src, (full) && total_ % (wg) == 0 ? x_ : min(x_, last_));                    \
        }                                                                                                              \
    }

// Stores what ROWS_LOAD loaded (the same full, first and n) to the __local tile dst.
#define ROWS_STORE(full, type, vw, buf, first, n, dst, stride, count, width, rows, wg)                                 \
    {                                                                                                                  \
        const int vecs_ = (width) / (vw), total_ = (rows)*vecs_;                                                       \
        _Pragma("unroll") for (int n_ = 0; n_ < (n) && (first) + n_ < ROWS_SHARE(width, vw, rows, wg); n_++)           \
        {                                                                                                              \
            const int l_ = (int)get_local_id(0), x_ = l_ + ((first) + n_) * (wg);                                      \
            const int r_ = SHARE_ROW(l_, (first) + n_, x_, vecs_, wg), c_ = SHARE_COL(l_, x_, vecs_, wg);              \
            if (total_ % (wg) == 0 || x_ < total_)                                                                     \
                *SHARE_AT(type, vw, dst, stride, l_, (first) + n_, r_, c_, vecs_, wg) =                                \
                    (full) || r_ < (count) ? buf[n_] : (type)(0.0f);                                                   \
        }                                                                                                              \
    }

// The copy, CLATTN_STAGE loads at a time (the tiles' `stage`; decode's split always takes 8): a
// work-item issues that many loads before it stores any, so that their latencies overlap. Written
// as one loop of load-then-store (CLATTN_STAGE 0), NVIDIA's compiler put each load in its own
// conditional block ahead of its store (the H200 run's PTX), and every load waited out the
// memory's whole latency before the next was issued: 16 times a tile in decode, 32 in the D = 128
// attention.
#ifndef CLATTN_STAGE
#define CLATTN_STAGE 8
#endif
// One vector at a time, rows past count as zeros: the copy of CLATTN_STAGE 0, and of a short tile.
#define STAGE_ONE_BY_ONE(type, vw, dst, stride, src, count, width, rows, wg)                                           \
    for (int x_ = get_local_id(0); x_ < (rows) * ((width) / (vw)); x_ += (wg)) {                                       \
        const int r_ = x_ / ((width) / (vw)), c_ = x_ % ((width) / (vw));                                              \
        LVEC(type, (dst) + r_ * (stride), c_) =                                                                        \
            r_ < (count) ? SRC_GLOAD(type, vw, SRC_AT(src, (size_t)r_ * (width)), c_) : (type)(0.0f);                  \
    }
#if CLATTN_STAGE > 0
// A tile that fills its rows (count >= rows: every key tile but a walk's last) takes the batches
// without clamps or zeros; a walk's short last tile the one-by-one copy, whose registers stay few
// (a second form of the batches cost the tensor-core kernel 38 registers at D = 128 in clang's
// sm_90 build). The branch is the same for the whole work-group.
#define STAGE_ROWS_IN(type, vw, dst, stride, src, count, width, rows, wg)                                              \
    if ((count) >= (rows))                                                                                             \
        STAGE_BATCHES(1, type, vw, dst, stride, src, count, width, rows, wg)                                           \
    else                                                                                                               \
        STAGE_ONE_BY_ONE(type, vw, dst, stride, src, count, width, rows, wg)
#define STAGE_BATCHES(full, type, vw, dst, stride, src, count, width, rows, wg)                                        \
    for (int b_ = 0; b_ < ROWS_SHARE(width, vw, rows, wg); b_ += CLATTN_STAGE) {                                       \
        type buf_[CLATTN_STAGE];                                                                                       \
        ROWS_LOAD(full, type, vw, buf_, b_, CLATTN_STAGE, src, count, width, rows, wg)                                 \
        ROWS_STORE(full, type, vw, buf_, b_, CLATTN_STAGE, dst, stride, count, width, rows, wg)                        \
    }
#else
#define STAGE_ROWS_IN STAGE_ONE_BY_ONE
#endif

// Asynchronous copies (CLATTN_ASYNC, float32 storage: a copy moves the caller's bytes as they
// are): the same share of the same tile as the copies above, rows from count on as zeros, but
// straight from global to __local, no register holding a value in between. ASYNC_ISSUE starts the
// work-item's copies; ASYNC_WAIT returns once they have landed, where the work-item sees its own
// (a barrier then shows them to the others). Nothing may read or write the destination between
// the two. 1: NVIDIA's cp.async (compute capability 8.0 or more, through inline PTX: one LDGSTS a
// vector, which skips the register file); 2 the same contract kept by copies done at the wait,
// the destination set to NaN at the issue, so that a read before the wait, or a copy issued while
// others still read the destination between the same two barriers, shows in the results (tests,
// on any device).
#ifndef CLATTN_ASYNC
#define CLATTN_ASYNC 0
#endif
#if CLATTN_ASYNC && CLATTN_DTYPE != 0
#error "CLATTN_ASYNC copies float32 storage only"
#endif
#if CLATTN_ASYNC == 1
#if !defined(__NVPTX__) && !defined(cl_nv_pragma_unroll)
// As for mma.sync (attention_gpu.cl): PTX only for clang's NVPTX target and NVIDIA's compiler.
#error "CLATTN_ASYNC 1 is PTX (cp.async), for NVIDIA's compiler"
#endif
// One vector of `type` from src to dst, src_bytes of it read (the vector's or 0: then zeros). 16
// bytes bypass L1 (.cg: a work-group reads a tile once, from L2); .cg takes only 16.
#define COPY_ASYNC(type, dst, src, src_bytes)                                                                          \
    if (sizeof(type) == 16)                                                                                            \
        __asm__ volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;"                                               \
                         :                                                                                             \
                         : "l"((ulong)(dst)), "l"((ulong)(src)), "r"(src_bytes)                                        \
                         : "memory");                                                                                  \
    else                                                                                                               \
        __asm__ volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;"                                               \
                         :                                                                                             \
                         : "l"((ulong)(dst)), "l"((ulong)(src)), "n"(sizeof(type)), "r"(src_bytes)                     \
                         : "memory");
// A row past count reads 0 bytes from the tile's last vector (an address inside the tensor).
#define ASYNC_ISSUE(type, vw, dst, stride, src, count, width, rows, wg)                                                \
    SHARE_EACH(_Pragma("unroll"), vw, width, rows, wg,                                                                 \
               COPY_ASYNC(type, (__local type *)((dst) + r_ * (stride)) + c_,                                          \
                          (__global const type *)(src) + min(x_, (count)*vecs_ - 1),                                   \
                          r_ < (count) ? (uint)sizeof(type) : 0u))
#define ASYNC_WAIT(type, vw, dst, stride, src, count, width, rows, wg)                                                 \
    __asm__ volatile("cp.async.wait_all;" ::: "memory");
#elif CLATTN_ASYNC == 2
#define ASYNC_ISSUE(type, vw, dst, stride, src, count, width, rows, wg)                                                \
    SHARE_EACH(_Pragma("unroll"), vw, width, rows, wg, LVEC(type, (dst) + r_ * (stride), c_) = (type)(NAN);)
#define ASYNC_WAIT(type, vw, dst, stride, src, count, width, rows, wg)                                                 \
    SHARE_EACH(_Pragma("unroll"), vw, width, rows, wg,                                                                 \
               LVEC(type, (dst) + r_ * (stride), c_) = r_ < (count) ? GVEC(type, src, x_) : (type)(0.0f);)
#endif
