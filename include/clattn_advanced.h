/* clattn's advanced interface: what the tool, the bench and the tests need beyond clattn.h
 * (forced tile sizes, emulated device limits, the device list, SPEC.md's visibility rule).
 * Unlike clattn.h it may change between minor versions, the way zstd keeps its experimental
 * API behind ZSTD_STATIC_LINKING_ONLY: include it only where you accept that. It is installed and
 * its functions are exported by the shared library (the Python package lists devices with them);
 * before 1.0 the SONAME changes with every minor version, so no program loads a library whose
 * advanced API differs from the one it was built against. */
#ifndef CLATTN_ADVANCED_H
#define CLATTN_ADVANCED_H

#include "clattn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Tiles: the attention kernel's variant and tile sizes. A plan takes the tiles its context
 * forces (tests, `clattn tune`), else those saved in the context's cache directory for its
 * device and driver (`clattn tune --save`), else the table's row for the device name, vendor
 * and type. A saved file that does not parse strictly, or names another device or driver, is
 * ignored with a note to the log callback: plan creation never fails because of it. The
 * environment variable CLATTN_VARIANT=gpu|cpu, a developer knob, makes plans whose tiles are not
 * forced pass over saved tiles and table rows of the other variant (the variant's generic row
 * where none matches the device); another value fails plan creation. GPU tiles that do not fit
 * the device shrink (docs/GPU.md).
 * ------------------------------------------------------------------------------------------- */
typedef struct {
    int cpu_variant; /* 1: barrier-free register-blocked kernel; 0: the GPU variant (__local tiles) */
    int rows;        /* CPU variant: query rows per tile (a work-item takes several tiles) */
    int kw;          /* CPU variant: keys per score pass (8, 16, or 32: two vectors per row) */
    int item_tiles;  /* CPU variant: most tiles per work-item, which share each key chunk's reads
                      * (1 to 32; 0: the default, 32; a window of under 1024 keys takes at most 4) */
    int lanes;       /* CPU variant: 1, for CPUs whose vector registers hold 16 floats (AVX-512):
                      * float32 windows of under 384 keys (not decode) put a tile's 16 query rows in
                      * the lanes of a vector (cl/attention_lanes.cl), and the 2-D kernels whose
                      * queries lie in lanes keep register blocks for 32 such registers; 0: those
                      * windows run as dense does, and the 2-D blocks fit 16 registers of 8 floats
                      * (AVX2) */
    /* GPU variant: a work-group of (bm / tm) * (bn / tn) work-items owns bm query rows and walks
     * tiles of bn keys; each work-item holds a tm x tn block of scores (tm * tn <= 32). */
    int bm;       /* query rows per work-group, a multiple of tm (1 to 256) */
    int bn;       /* keys per tile, a multiple of tn (1 to 256) */
    int tm, tn;   /* register block (1 to 32 each) */
    int reqd_wg;  /* 1: the kernel declares reqd_work_group_size (0 for compilers that do worse) */
    int stage;    /* K and V vectors a work-item loads before it stores them to __local (1 to 8, its
                   * loads in flight together); 0: one load, then its store, at a time */
    int prefetch; /* 1: each key tile's V and the next tile's K are loaded into registers while the
                   * tile computes (V gets its own __local buffer); 0: staged when needed */
    int shuffle;  /* how each row's max and sum are combined across its bn / tn work-items: 0 through
                   * __local, each value once; 1 by a butterfly of NVIDIA's warp shuffles, on an
                   * NVIDIA GPU where bn / tn is a power of two up to 32 and the work-group whole
                   * warps (else as 0); 2 the same butterfly with each exchange through __local,
                   * slower, so that any device runs that code (tests). A plan's tiles say which ran */
    int mma;      /* how the scores and P.V are multiplied: 0 by float32 multiply-adds in tm x tn
                   * blocks; 1 on NVIDIA's tensor cores (compute capability 8.0 or more: mma.sync
                   * through inline PTX), each product as three TF32 products for float32 accuracy
                   * ("3xTF32"), where bm is a multiple of 16, bn of 8 up to 64, the head and value
                   * dims of 8 and the value dim up to 128 (else as 0); tm and tn are then 2 and
                   * bn / 4, a warp's 16 rows by the tile's keys. 2 the same products, each
                   * work-item computing its part from the __local values that its warp's lanes
                   * would hold, slower, so that any device runs that code (tests). A tile whose
                   * values hold an infinity or NaN takes float32 multiply-adds */
    int async;    /* with prefetch 1 and float32 storage, how K and V reach __local: 0 loaded into
                   * registers and stored; 1 by NVIDIA's asynchronous copies (cp.async through inline
                   * PTX, compute capability 8.0 or more, else as 0), straight to __local with no
                   * register holding them; 2 the same contract emulated (each copy done when it is
                   * waited for), slower, so that any device runs that code (tests) */
    int direct;   /* 1: K and V are not staged in __local but read from global memory where they lie,
                   * through the caches, for GPUs whose __local is that same memory (ARM Mali), by
                   * the attention kernel, decode's split and the 2-D grid kernel; prefetch, async
                   * and mma then run as 0. 0: staged */
    /* 1: on an Intel GPU, the attention kernel built with Intel's large register file
     * (-cl-intel-256-GRF-per-thread: 256 registers a hardware thread instead of 128, half as many
     * threads), for register blocks that would not fit 128; a compiler that refuses the option
     * builds without it (a note to the log callback); elsewhere as 0 */
    int large_grf;
} clattn_tiles;

/* The plans created after this call use these tiles (still clamped to the device's limits);
 * NULL goes back to the saved tiles or the table. Not thread-safe against plan creation on the
 * same context. */
CLATTN_API void clattn_context_force_tiles(clattn_context *ctx, const clattn_tiles *tiles);

/* Saves tiles as the tuned tiles of ctx's device and driver: a small text file in the cache
 * directory (clattn_context_desc.cache_dir or $CLATTN_CACHE_DIR), written to a temporary file and
 * renamed, which the plans created afterwards read. path (may be NULL) receives the file's path.
 * Fails with CLATTN_STATUS_UNSUPPORTED without a cache directory, on the reference path or for
 * tiles outside the kernels' ranges, and CLATTN_STATUS_CACHE_WRITE_FAILED when the file cannot
 * be written. */
CLATTN_API int clattn_context_save_tiles(clattn_context *ctx, const clattn_tiles *tiles, char *path, size_t path_size);

/* The context's cache directory, or NULL when it has none. */
CLATTN_API const char *clattn_context_cache_dir(const clattn_context *ctx);

/* The tiles a plan runs with, after the device's limits and the problem's rows clamped them.
 * CLATTN_STATUS_UNSUPPORTED for a plan of the reference path, which has none. */
CLATTN_API int clattn_plan_tiles(const clattn_plan *plan, clattn_tiles *out);

/* The GPU variant's split over the keys, which decode and the global rows take (cl/decode_gpu.cl):
 * work-groups of wg work-items stage bn keys at a time in __local for a block of rb query rows of
 * a kv head's group, and the keys are split so that each compute unit gets about groups_per_cu
 * work-groups. A field at 0 takes the default (host/tuning.h). */
typedef struct {
    int wg;            /* work-items per work-group, a multiple of bn (1 to 1024) */
    int bn;            /* keys per __local tile (1 to 64) */
    int rb;            /* most query rows per block (1 to 32) */
    int groups_per_cu; /* work-groups the split aims for per compute unit (1 to 256) */
} clattn_split_tiles;

/* The plans created after this call split with these sizes (still shrunk to the device's limits;
 * out of range, plan creation fails with CLATTN_STATUS_UNSUPPORTED); NULL goes back to the
 * defaults. For `clattn tune`; not thread-safe against plan creation on the same context. */
CLATTN_API void clattn_context_force_split_tiles(clattn_context *ctx, const clattn_split_tiles *split);

/* The split sizes a plan runs with. CLATTN_STATUS_UNSUPPORTED for a plan without the GPU split
 * (the CPU variant, no decode and no global rows, or the reference path). */
CLATTN_API int clattn_plan_split_tiles(const clattn_plan *plan, clattn_split_tiles *out);

/* Lowers the limits the plans honour, to emulate a smaller device; 0 keeps a limit as it is. */
CLATTN_API void clattn_context_emulate_limits(clattn_context *ctx, size_t max_work_group, cl_ulong local_mem,
                                              cl_ulong max_alloc);

/* ---------------------------------------------------------------------------------------------
 * Devices: every OpenCL device of every platform, in the order "P:D" specs count them.
 * ------------------------------------------------------------------------------------------- */
typedef struct {
    char spec[16];  /* "P:D", as clattn_context_desc.device takes it */
    char name[256]; /* CL_DEVICE_NAME */
    cl_device_type type;
    cl_device_id id;
} clattn_device_info;

/* Fills up to `max` entries of `out` (may be NULL when max is 0) and sets *count to the number
 * of devices present. No platform installed is 0 devices and success; another OpenCL failure
 * is returned as its code. */
CLATTN_API int clattn_device_list(clattn_device_info *out, int max, int *count);

/* ---------------------------------------------------------------------------------------------
 * Visibility: which keys each query row sees (SPEC.md's S(i)). The reference path, the bench
 * (FLOP counts, the unfused baseline's masks) and the tests all ask these functions.
 * ------------------------------------------------------------------------------------------- */
typedef struct {
    clattn_problem problem;   /* normalized copy: defaults resolved, global_idx still the caller's */
    unsigned char *is_global; /* [Nk]: 1 at the positions of G; NULL without global tokens */
    char message[1024];       /* after a failed init: which field, which value */
} clattn_visibility;

/* Normalizes and validates `problem` (the statuses and messages of clattn_plan_create) and
 * builds the global-position table; on failure *v needs no free and v->message says why. */
CLATTN_API int clattn_visibility_init(clattn_visibility *v, const clattn_problem *problem);
CLATTN_API void clattn_visibility_free(clattn_visibility *v); /* zeroes *v; freeing twice is a no-op */

/* A query row is placed by its position p(i) = i + Nk - Nq and by `valid`, the valid keys of
 * its batch entry (seq_lens[b], or Nk). A row with p(i) >= valid is padding and sees nothing. */

/* 1 when the row at `pos` is a global row (p(i) in G): it sees every key. */
CLATTN_API int clattn_visibility_row_global(const clattn_visibility *v, int pos);

/* 1 when key j of K (of Kg for a separately projected global row) is in S(i). */
CLATTN_API int clattn_visibility_key(const clattn_visibility *v, int valid, int pos, int j);

/* Summary tokens of a batch entry with `valid` keys: floor(valid / b), or ceil(valid / b) when
 * the left-over keys keep a block of their own (summary_tail); 0 without summary tokens. */
CLATTN_API int clattn_visibility_summary_count(const clattn_visibility *v, int valid);

/* The summary block that key j (< valid) averages into, or -1 when it joins none (valid < b with
 * the left-over keys merged, or no summary tokens). */
CLATTN_API int clattn_visibility_summary_of_key(const clattn_visibility *v, int valid, int j);

/* 1 when summary token c (of clattn_visibility_summary_count) is in S(i); the row is not padding. */
CLATTN_API int clattn_visibility_summary(const clattn_visibility *v, int valid, int pos, int c);

/* |S(i)|: the keys of K, the summary tokens and the extra keys the row sees (a separately
 * projected global row sees neither summary nor extra keys). O(globals) for a window, O(Nk)
 * for a grid pattern. */
CLATTN_API long long clattn_visibility_count(const clattn_visibility *v, int valid, int pos);

#ifdef __cplusplus
}
#endif
#endif
