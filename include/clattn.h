/* clattn — transformer attention (dense, sliding window, global, summary and extra keys,
 * 2-D grid patterns) offloaded to any OpenCL device, with a double-precision host reference.
 * The semantics of every pattern are those of SPEC.md; this header is the only public one. */
#ifndef CLATTN_H
#define CLATTN_H

#include <stddef.h>

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; clattn_version() gives the library's, which differs when a program
 * runs against another build than it was compiled with. CMake and the Python package read their
 * version from CLATTN_VERSION_STRING, so this is the one place it is written. */
#define CLATTN_VERSION_MAJOR 0
#define CLATTN_VERSION_MINOR 1
#define CLATTN_VERSION_PATCH 0
#define CLATTN_VERSION_STRING "0.1.0"

/* The shared library exports only what carries CLATTN_API (it is built with -fvisibility=hidden
 * and CLATTN_BUILDING); the library's internal clattn__ functions stay hidden. */
#if defined(CLATTN_BUILDING) && (defined(__GNUC__) || defined(__clang__))
#define CLATTN_API __attribute__((visibility("default")))
#else
#define CLATTN_API
#endif

/* "MAJOR.MINOR.PATCH" of the library this program runs against. */
CLATTN_API const char *clattn_version(void);

/* ---------------------------------------------------------------------------------------------
 * Status codes. 0 is success; negative values are OpenCL's own codes, passed through unchanged
 * (CL_OUT_OF_RESOURCES, CL_BUILD_PROGRAM_FAILURE, ...); positive values are clattn's own.
 * One table generates the enum, clattn_status_string() and clattn_status_name().
 * 1016-1019 (FILE_IO, FILE_TRUNCATED, FILE_DTYPE, FILE_RANK) are retired and never reused: the
 * library reads no tensor files (only its own cache directory); the clattn tool, which reads .npy
 * files, keeps those numbers for itself.
 * ------------------------------------------------------------------------------------------- */
#define CLATTN_STATUS_TABLE(X)                                                                                         \
    X(OK, 0, "success")                                                                                                \
    X(NULL_ARGUMENT, 1001, "a required handle, pointer or buffer is null")                                             \
    X(INVALID_SIZE, 1002, "a tensor size is zero or negative")                                                         \
    X(INVALID_HEADS, 1003, "heads is not a multiple of kv_heads")                                                      \
    X(INVALID_WINDOW, 1004, "a window side is negative")                                                               \
    X(INVALID_DILATION, 1005, "a dilation is less than 1")                                                             \
    X(INVALID_BLOCK, 1006, "the summary block size is less than 1")                                                    \
    X(INVALID_GLOBAL_INDEX, 1007, "a global token index is out of range or repeated")                                  \
    X(INVALID_SEQ_LEN, 1008, "a seq_lens entry is outside [0, kv_len]")                                                \
    X(INVALID_GRID, 1009, "grid height times width is not the sequence length")                                        \
    X(INVALID_KERNEL_SIZE, 1010, "a neighborhood kernel size or window size is less than 1")                           \
    X(INVALID_SHIFT, 1011, "a window shift is outside [0, window size)")                                               \
    X(BUFFER_TOO_SMALL, 1012, "a buffer is smaller than the tensor it must hold")                                      \
    X(SHAPE_MISMATCH, 1013, "tensor shapes disagree")                                                                  \
    X(SIZE_OVERFLOW, 1014, "a byte count or element index overflows")                                                  \
    X(UNSUPPORTED_HEAD_DIM, 1015, "the head dimension is not supported by the kernels")                                \
    X(INVALID_DEVICE_SPEC, 1020, "the device spec is malformed")                                                       \
    X(NO_DEVICE, 1021, "no OpenCL device matches the spec")                                                            \
    X(UNSUPPORTED, 1022, "the operation is not available on this context")                                             \
    X(DEVICE_LIMIT, 1023, "the problem exceeds a device limit")                                                        \
    X(HOST_OUT_OF_MEMORY, 1024, "a host allocation failed")                                                            \
    X(INVALID_PATTERN, 1025, "the pattern combination is not valid")                                                   \
    X(CACHE_WRITE_FAILED, 1026, "a file could not be written to the cache directory")                                  \
    X(INVALID_DTYPE, 1027, "the storage type is not one of clattn_dtype")

typedef enum {
#define CLATTN_STATUS_ENUM_(name, value, text) CLATTN_STATUS_##name = value,
    CLATTN_STATUS_TABLE(CLATTN_STATUS_ENUM_)
#undef CLATTN_STATUS_ENUM_
} clattn_status;

/* A fixed text for any status (clattn's, OpenCL's, or unknown); never NULL. */
CLATTN_API const char *clattn_status_string(int status);
/* The status's name: "CLATTN_STATUS_INVALID_WINDOW", OpenCL's "CL_OUT_OF_RESOURCES", or
 * "CLATTN_STATUS_UNKNOWN"; never NULL. For bindings that raise errors by name. */
CLATTN_API const char *clattn_status_name(int status);

/* ---------------------------------------------------------------------------------------------
 * Context: one device, a program cache, a log sink and the last error message.
 * Thread safety: a context may be shared by any number of threads (its program cache is locked).
 * clattn_context_message() reports the most recent failure of any thread using the context, as a
 * copy that stays valid until the calling thread's next call of it.
 * ------------------------------------------------------------------------------------------- */
typedef struct clattn_context clattn_context;

typedef void (*clattn_log_fn)(void *user, const char *message);

typedef struct {
    /* "cpu", "gpu", "P:D" (platform, device index), or "reference" (the double-precision host
     * path, no OpenCL). NULL or "": $CLATTN_DEVICE, else the first GPU, else the first CPU
     * device, else the reference path. */
    const char *device;
    /* Opt-in on-disk cache: compiled binaries are stored there, keyed by a hash of the kernel
     * source, build options, device and driver, and plans read the tiles `clattn tune --save`
     * stored there for their device and driver. Created, with the directories above it, when
     * something is first written there. NULL: $CLATTN_CACHE_DIR, else none. */
    const char *cache_dir;
    /* Receives build logs and notes; NULL discards them. */
    clattn_log_fn log;
    void *log_user;
} clattn_context_desc;

CLATTN_API int clattn_context_create(const clattn_context_desc *desc, clattn_context **out);
/* Wraps a context and queue the caller already owns (both are retained, released on free). */
CLATTN_API int clattn_context_wrap(cl_context cl_ctx, cl_device_id device, cl_command_queue queue,
                                   const clattn_context_desc *desc, clattn_context **out);
CLATTN_API void clattn_context_free(clattn_context *ctx); /* NULL is a no-op */

/* The last detailed message (which argument, which value); "" when none. With NULL: the message
 * of this thread's last failed clattn_context_create or clattn_context_wrap. */
CLATTN_API const char *clattn_context_message(const clattn_context *ctx);
/* 1 for the double-precision host reference path, 0 for an OpenCL device. */
CLATTN_API int clattn_context_is_reference(const clattn_context *ctx);
/* Human-readable device name; the OpenCL handles (NULL on the reference path). */
CLATTN_API const char *clattn_context_device_name(const clattn_context *ctx);
CLATTN_API cl_context clattn_context_cl_context(const clattn_context *ctx);
CLATTN_API cl_device_id clattn_context_cl_device(const clattn_context *ctx);
CLATTN_API cl_command_queue clattn_context_queue(const clattn_context *ctx);

/* ---------------------------------------------------------------------------------------------
 * Problem: shapes and pattern, fixed at plan creation. Fill with designated initialisers;
 * a zero field means its default; new fields are only ever added at the end.
 * Tensors are contiguous, row-major, in the problem's storage type (LSE is always float32):
 *   Q [B, H, Nq, D]   K [B, Hkv, Nk, D]   V [B, Hkv, Nk, Dv]   O [B, H, Nq, Dv]   LSE [B, H, Nq]
 * ------------------------------------------------------------------------------------------- */
/* Storage type of Q, K, V, O, Qg, Kg, Vg, Kx, Vx (SPEC.md, "Element types"): arithmetic is float32
 * whatever the storage; O is rounded once, to nearest even. */
typedef enum {
    CLATTN_DTYPE_F32 = 0, /* float32 */
    CLATTN_DTYPE_F16,     /* IEEE binary16 */
    CLATTN_DTYPE_BF16     /* bfloat16: the upper 16 bits of a float32 */
} clattn_dtype;

typedef enum {
    CLATTN_GRID_NONE = 0,
    CLATTN_GRID_AXIAL_ROW,
    CLATTN_GRID_AXIAL_COLUMN,
    CLATTN_GRID_CRISS_CROSS,
    CLATTN_GRID_NEIGHBORHOOD, /* grid_kernel_h x grid_kernel_w, grid_dilation */
    CLATTN_GRID_WINDOW        /* Swin: grid_window_size, grid_shift */
} clattn_grid_pattern;

/* Where the summary tokens' left-over keys go (SPEC.md 5): the Nk_valid mod b keys after the last
 * full block join that block, as LongT5 does (no summary token at all when Nk_valid < b), or form
 * a partial block of their own (ceil(Nk_valid / b) blocks). */
typedef enum { CLATTN_SUMMARY_TAIL_MERGE = 0, CLATTN_SUMMARY_TAIL_OWN } clattn_summary_tail;

typedef struct {
    int batch;     /* B */
    int heads;     /* H */
    int kv_heads;  /* Hkv; 0: H */
    int q_len;     /* Nq */
    int kv_len;    /* Nk; 0: Nq */
    int head_dim;  /* D */
    int value_dim; /* Dv; 0: D */
    float scale;   /* 0: 1/sqrt(D) */
    int causal;    /* nonzero: remove keys after the query's position */

    /* Sliding window: key j is seen by the query at position p when p-L <= j <= p+R and
     * (j - p) % dilation == 0. */
    int window;       /* nonzero enables it */
    int window_left;  /* L >= 0 */
    int window_right; /* R >= 0 */
    int dilation;     /* 0: 1 */

    /* Global tokens (Longformer): positions in [0, Nk), any order, no repeats. */
    const int *global_idx;
    int num_global;
    int global_qkv; /* nonzero: global rows use separate Qg, Kg, Vg tensors (run arguments) */

    int summary_block; /* LongT5 transient-global block size b; 0: no summary tokens (see summary_tail) */
    int extra_len;     /* Nx: caller's extra keys Kx [B,Hkv,Nx,D], Vx [B,Hkv,Nx,Dv]; 0: none */

    /* 2-D grid patterns (Nq == Nk == grid_h * grid_w). */
    clattn_grid_pattern grid_pattern;
    int grid_h, grid_w;
    int grid_kernel_h, grid_kernel_w, grid_dilation; /* neighborhood; dilation 0: 1 */
    int grid_window_size, grid_shift;                /* Swin window */

    clattn_summary_tail summary_tail; /* 0: left-over keys join the last summary block */
    clattn_dtype dtype;               /* 0: float32 */
} clattn_problem;

/* ---------------------------------------------------------------------------------------------
 * Plan: one problem's compiled kernels, tile sizes and scratch buffers. All compilation happens
 * in clattn_plan_create; running a plan never compiles.
 * Thread safety: a plan is used by one thread at a time; create one plan per thread. Its runs
 * share its scratch buffers: a run on another queue than the previous run's must wait for that
 * run's event (its wait list), as runs on one in-order queue do by themselves.
 * ------------------------------------------------------------------------------------------- */
typedef struct clattn_plan clattn_plan;

CLATTN_API int clattn_plan_create(clattn_context *ctx, const clattn_problem *problem, clattn_plan **out);
CLATTN_API void clattn_plan_free(clattn_plan *plan); /* NULL is a no-op */

/* Bytes of device memory one run takes beyond the caller's tensors (scratch buffers). */
CLATTN_API size_t clattn_plan_scratch_bytes(const clattn_plan *plan);

/* Device buffers. lse, seq_lens and the pattern-specific tensors are optional (NULL). */
typedef struct {
    cl_mem q, k, v, out;
    cl_mem lse;          /* float32 [B, H, Nq] */
    cl_mem qg, kg, vg;   /* required when problem.global_qkv */
    cl_mem kx, vx;       /* required when problem.extra_len > 0 */
    const int *seq_lens; /* host array [B]; NULL: every entry is Nk */
} clattn_buffers;

/* Asynchronous: enqueues on `queue` (NULL: the context's), after the wait list; *event (if not
 * NULL) receives an event that completes when the output is written. */
CLATTN_API int clattn_plan_enqueue(clattn_plan *plan, cl_command_queue queue, const clattn_buffers *buffers,
                                   cl_uint num_wait, const cl_event *wait, cl_event *event);

/* A host tensor: its data and its size in bytes (checked against the shape). */
typedef struct {
    void *data;
    size_t bytes;
} clattn_host_tensor;

typedef struct {
    clattn_host_tensor q, k, v, out;
    clattn_host_tensor lse;        /* optional */
    clattn_host_tensor qg, kg, vg; /* when problem.global_qkv */
    clattn_host_tensor kx, vx;     /* when problem.extra_len > 0 */
    const int *seq_lens;           /* optional, [B] */
} clattn_host_tensors;

/* Blocking convenience call on host memory (on any context, the reference path included). On a
 * device it runs on the context's queue, without a wait list: an earlier run of the plan on
 * another queue must have completed. */
CLATTN_API int clattn_plan_run_host(clattn_plan *plan, const clattn_host_tensors *tensors);

#ifdef __cplusplus
}
#endif
#endif
