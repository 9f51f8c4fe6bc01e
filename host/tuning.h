/* Kernel variant and tile sizes for a device: a table keyed by device name, then vendor, then a
 * default per device type, clamped to the device's limits. The one place where device
 * capabilities turn into -D build options. */
#ifndef CLATTN_TUNING_H
#define CLATTN_TUNING_H

#include <stddef.h>

#include "context.h"

/* Keys per panel of cl/pack_keys.cl, which is also the CPU variant's chunk of the key loop. A
 * longer chunk spreads the per-chunk softmax and accumulator traffic over more keys; a band's
 * edge chunks compute only the 16-key groups that meet the band, so a narrow window wastes no
 * more than with shorter chunks. (clattn bench on a Zen 4, window 256 at N=16384, 8 rows: about
 * 150 GFLOP/s with 32 keys, 160 with 64.) */
#define CLATTN_KEY_CHUNK 64

/* Work-items per compute unit that the CPU variant's launches aim for, so that every core has
 * work and a slow item does not hold up the end. */
#define CLATTN_ITEMS_PER_CU 4

/* Most tiles of query rows per work-item of the CPU variant's attention kernel (-DCLATTN_TILES)
 * when the tiles do not say (clattn_tiles.item_tiles = 0), and the largest they may say. The item
 * walks them chunk by chunk, so each chunk's K panel and values come from memory or L3 once for
 * all of them: on the Xeon, whose cores read L3 at about 20-30 GB/s, dense attention with 16
 * tiles of 12 rows took 4% less time than with 4 at N = 4096 (H = 8) and 3-10% at N = 8192 (H = 4),
 * causal 2%; 32 against 16 (after the exp2 through vreduceps), 1% less at D = 64, 3% at D = 128,
 * 2-3% on Intel's runtime. A launch with fewer than CLATTN_ITEMS_PER_CU items per compute unit at
 * this count gives each item fewer tiles (the global-rows pass, short sequences), and a band of
 * fewer than CLATTN_WIDE_BAND_KEYS keys (a narrow window) at most CLATTN_BAND_ITEM_TILES, as
 * before: there a chunk serves only the few tiles whose band meets it, so more tiles save few
 * reads. With 16 (medians of five or six rounds, H = 4) the window ±64 at N = 8192 took 2.5% longer,
 * ±256 at N = 16384 the same time, ±1024 and ±2048 at N = 16384 2.5% and 2.9% less. */
#define CLATTN_ITEM_TILES 32
#define CLATTN_BAND_ITEM_TILES 4
#define CLATTN_WIDE_BAND_KEYS 1024
#define CLATTN_MAX_ITEM_TILES 32 /* cl/attention_cpu.cl's limit of CLATTN_TILES */

/* Bands of fewer keys than this (float32, not decode) run on cl/attention_lanes.cl where the tiles
 * ask for it (`lanes`: the table's AVX-512 rows), whose tiles are 16 query rows, one per vector
 * lane, and which reads K unpacked. On the Xeon (POCL, two
 * threads, N = 8192, H = 8, medians of 4-5 rounds against the panels' kernel): ±32 16% less time,
 * ±64 11%, ±128 4%, ±192 the same, and ±256 at N = 16384 the same or 1% more. */
#define CLATTN_LANES_BAND_KEYS 384
#define CLATTN_LANES_ROWS 16

/* Decode (CPU variant, at most CLATTN_SPLIT_MAX_QUERIES query rows, no global rows) splits the
 * keys so that each compute unit gets CLATTN_ITEMS_PER_CU work-items, each split at least
 * CLATTN_SPLIT_MIN_KEYS keys long. */
#define CLATTN_SPLIT_MAX_QUERIES 4
#define CLATTN_SPLIT_MIN_KEYS 256

/* The GPU variant's split over the keys (cl/decode_gpu.cl: decode and the global rows): a plan
 * splits the keys its rows see so that each compute unit gets CLATTN_SPLIT_GPU_GROUPS_PER_CU
 * work-groups, each split at least CLATTN_SPLIT_GPU_MIN_KEYS keys long. A work-group of
 * CLATTN_SPLIT_GPU_WG items stages CLATTN_SPLIT_GPU_BN keys at a time for a block of at most
 * CLATTN_SPLIT_GPU_MAX_RB query rows of a kv head's group: 32 keys make a warp's lanes the tile's
 * keys. 8 rows (a GQA group of 8 heads, or 4 heads times 2 decode rows) compiled for sm_90 at
 * D = 128 to 72 registers and 39 KB of __local (96 since a tile's K and V loads are all issued
 * before their stores, cl/gpu_stage.cl); 16 rows took 135 registers. These are the defaults
 * of clattn_split_tiles' fields, which clattn_context_force_split_tiles (`clattn tune --pattern
 * decode` on a GPU) replaces. */
#define CLATTN_SPLIT_GPU_WG 128
#define CLATTN_SPLIT_GPU_BN 32
#define CLATTN_SPLIT_GPU_MAX_RB 8
#define CLATTN_SPLIT_GPU_MIN_KEYS 128
#define CLATTN_SPLIT_GPU_GROUPS_PER_CU 4

/* The GPU variant's programs (program.h's lists of sources): the attention kernel, and the split
 * over the keys with its merge. */
#define CLATTN_GPU_ATTENTION_PROGRAM "common+gpu_stage+attention_gpu"
#define CLATTN_GPU_SPLIT_PROGRAM "common+gpu_stage+decode_gpu"
/* The CPU variant's key packing (common.cl for the storage type's loads). */
#define CLATTN_PACK_PROGRAM "common+pack_keys"
/* The GPU variant of the 2-D grid kernel. */
#define CLATTN_GRID_GPU_PROGRAM "common+gpu_stage+grid_common+grid_gpu"

/* The GPU grid kernel's sizes for GPU tiles t (host/launch_grid.c): work-items (query slots) per
 * tile and keys per staged block, within the device's work-group size and local memory. */
void clattn__grid_gpu_sizes(const clattn_tiles *t, const clattn__device_caps *caps, int d, int dv, int *wg, int *bk);

/* Build options of CLATTN_GRID_GPU_PROGRAM for those sizes, tiles tw queries wide, and GPU tiles t's
 * stage and direct. */
void clattn__grid_gpu_options(const clattn_tiles *t, int d, int dv, int wg, int bk, int tw, char *options, size_t size);

/* Chooses the GPU split kernel's sizes (the forced ones, else the defaults above) for head dims d
 * and dv and a query group of group_rows rows, within the device's work-group size and local
 * memory, K and V staged or (direct, the plan's GPU tiles') read where they lie;
 * CLATTN_STATUS_UNSUPPORTED for forced sizes out of range, CLATTN_STATUS_DEVICE_LIMIT when nothing
 * fits. */
int clattn__choose_split_tiles(const clattn_context *ctx, int direct, int d, int dv, int group_rows,
                               clattn_split_tiles *out, clattn__error *err);

/* Bytes of __local memory split_keys uses with these sizes (direct: K and V not staged). */
size_t clattn__split_local_bytes(const clattn_split_tiles *t, int direct, int d, int dv);

/* Build options of the GPU split program (cl/common.cl + cl/decode_gpu.cl); direct: the plan's
 * GPU tiles' (K and V read where they lie, not staged). */
void clattn__split_options(const clattn_split_tiles *t, int direct, int d, int dv, char *buf, size_t size);

/* The largest halving of wg (at least 1) that the device's work-groups take. */
int clattn__fit_work_group(int wg, const clattn__device_caps *caps);

/* The tiles' `stage` for a GPU kernel of wg work-items: 0 (one load at a time) for a lone
 * work-item, whose batched copy POCL 6.0 hung on or got wrong (docs/GPU.md); no GPU runs one. */
int clattn__group_stage(int stage, size_t wg);

/* CLATTN_STATUS_DEVICE_LIMIT, naming `what`, when a kernel of wg work-items and `bytes` of local
 * memory does not fit the device. */
int clattn__check_fits(const clattn__device_caps *caps, int wg, size_t bytes, int d, int dv, const char *what,
                       clattn__error *err);

/* Chooses tiles for head dims d (Q, K) and dv (V) on a context's device (its forced tiles, else
 * the tiles saved in its cache directory for this device and driver, else the table), with at most max_rows rows per
 * CPU tile (the rows a tile can hold: Nq, or a decode tile's query group). CLATTN_VARIANT=gpu|cpu (a developer knob)
 * forces a variant where the tiles are not forced: saved tiles of the other variant are passed over for the table's
 * row of that variant for the device, else its generic row. The GPU variant's tiles take fewer rows per work-item
 * where its output block would crowd the registers (large Dv), then shrink (clattn__tiles_shrink) until they fit the
 * device's work-group size and local memory; CLATTN_STATUS_DEVICE_LIMIT when the smallest do not,
 * CLATTN_STATUS_UNSUPPORTED for malformed forced tiles or another CLATTN_VARIANT. The storage type decides whether
 * K and V may be copied asynchronously (clattn_tiles.async). */
int clattn__choose_tiles(const clattn_context *ctx, int d, int dv, clattn_dtype dtype, int max_rows, clattn_tiles *out,
                         clattn__error *err);

/* Bytes of __local memory the attention kernel uses with these tiles: the GPU variant's layout
 * (cl/attention_gpu.cl), mirrored here to choose tiles before building. */
size_t clattn__tiles_local_bytes(const clattn_tiles *tiles, int d, int dv);

/* Work-items per work-group of the attention kernel (1 for the CPU variant) and query rows per
 * work-group (CPU variant: rows per tile). */
size_t clattn__tiles_group_size(const clattn_tiles *tiles);
int clattn__tiles_group_rows(const clattn_tiles *tiles);

/* clattn_tiles' fields, each once: its name (the tiles file's key: tuning_cache.c), byte offset and
 * range (the kernels' limits: cl/common.cl lists them), and whether it is an option of the GPU
 * variant's kernels (clattn__tiles_check). */
typedef struct {
    const char *name;
    size_t offset;
    int min, max;
    int gpu_option;
} clattn__tile_field;
#define CLATTN_TILE_FIELDS 17
extern const clattn__tile_field clattn__tile_fields[CLATTN_TILE_FIELDS];

/* 0 when the GPU variant's tiles are well formed (bm a multiple of tm, bn of tn, tm * tn <= 32,
 * each option in its range; always for the CPU variant), else -1 with why. */
int clattn__tiles_check(const clattn_tiles *tiles, char *why, size_t size);

/* One step down the GPU variant's ladder of smaller tiles: fewer keys while bn >= bm (the register
 * block's columns, then column threads), else fewer row threads, else fewer keys, else fewer rows
 * per work-item. 0 when the tiles are already 1 x 1. */
int clattn__tiles_shrink(clattn_tiles *tiles);

/* After building the GPU variant's attention kernel: when its CL_KERNEL_WORK_GROUP_SIZE is below
 * the tiles' work-group or its CL_KERNEL_LOCAL_MEM_SIZE above the device's local memory, shrinks
 * the tiles one step and sets *rebuild; CLATTN_STATUS_DEVICE_LIMIT when they cannot shrink. */
int clattn__tiles_fit_kernel(const clattn_context *ctx, cl_kernel kernel, clattn_tiles *tiles, int *rebuild,
                             clattn__error *err);

/* Build options of the attention program (cl/common.cl and its variant's files) for these tiles. */
void clattn__attention_options(const clattn_tiles *tiles, int d, int dv, char *buf, size_t size);

/* Build options of cl/pack_keys.cl for head dim d. */
void clattn__pack_options(int d, char *buf, size_t size);

#endif
