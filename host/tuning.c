/* The tile table and its fallback device -> vendor -> type default, and the build options
 * derived from it. Entries are measured with `clattn bench`; add a row per tuned device. */
#include "tuning.h"

#include <stdio.h>
#include <string.h>

#include "tuning_cache.h"

typedef struct {
    const char *device; /* substring of CL_DEVICE_NAME, or NULL */
    const char *vendor; /* substring of CL_DEVICE_VENDOR, or NULL */
    cl_device_type type;
    clattn_tiles tiles;
} tile_entry;

static const tile_entry tile_table[] = {
    {.device = NULL,
     .vendor = "NVIDIA",
     .type = CL_DEVICE_TYPE_GPU,
     .tiles = {.cpu_variant = 0, .rows = 1, .wg = 64, .bk = 32, .kw = 0}},
    {.device = NULL,
     .vendor = "Advanced Micro Devices",
     .type = CL_DEVICE_TYPE_GPU,
     .tiles = {.cpu_variant = 0, .rows = 1, .wg = 64, .bk = 32, .kw = 0}},
    /* Intel's OpenCL CPU runtime (PyPI intel-opencl-rt), whose device name says no ISA: clattn tune on
     * the Xeon below, dense N=1024, found 16 rows x 16 keys best (9.4 ms, 6 x 16 10.8, 12 x 32 12.8). */
    {.device = NULL,
     .vendor = "Intel(R) Corporation",
     .type = CL_DEVICE_TYPE_CPU,
     .tiles = {.cpu_variant = 1, .rows = 16, .wg = 1, .bk = 1, .kw = 16}},
    /* Intel's AVX-512 cores with two 512-bit FMA pipes (clattn tune on a Xeon through POCL,
     * `pthread-skylake-avx512-Intel(R) Xeon(R) Processor`, dense N=4096): 8 rows of one 16-key
     * vector left the pipes half idle (207 GFLOP/s at D=64); two vectors per row and two value
     * blocks per P.V pass (KW = 32) gave 265 with 8 rows, 274 with 10, and at D=128 287 with 12
     * rows: 24 accumulators, two key vectors and a broadcast of the 32 registers. */
    {.device = "avx512",
     .vendor = "GenuineIntel",
     .type = CL_DEVICE_TYPE_CPU,
     .tiles = {.cpu_variant = 1, .rows = 12, .wg = 1, .bk = 1, .kw = 32}},
    /* POCL's AVX-512 targets (clattn tune on a Zen 4, `pthread-skylake-avx512`): 32 registers
     * hold 8 rows of 16 scores with room to spare. On dense attention 6 to 12 rows measured
     * within 3.5% (the last run, with 4-tile work-items: 6 best); 8 led 10 by 3-8% on window
     * 256, whose edges cost more with taller tiles. */
    {.device = "avx512",
     .vendor = NULL,
     .type = CL_DEVICE_TYPE_CPU,
     .tiles = {.cpu_variant = 1, .rows = 8, .wg = 1, .bk = 1, .kw = 16}},
    /* Any CPU, tuned on POCL's AVX2 target (clattn tune): 6 rows by 16 keys or 16 value columns
     * are 12 accumulators, plus two loaded vectors and a broadcast: the 16 ymm registers. */
    {.device = NULL,
     .vendor = NULL,
     .type = CL_DEVICE_TYPE_CPU,
     .tiles = {.cpu_variant = 1, .rows = 6, .wg = 1, .bk = 1, .kw = 16}},
    {.device = NULL,
     .vendor = NULL,
     .type = CL_DEVICE_TYPE_ALL,
     .tiles = {.cpu_variant = 0, .rows = 1, .wg = 64, .bk = 32, .kw = 0}},
};

static int matches(const tile_entry *e, const clattn__device_caps *caps)
{
    return (e->device == NULL || strstr(caps->name, e->device) != NULL) &&
           (e->vendor == NULL || strstr(caps->vendor, e->vendor) != NULL) &&
           (e->type == CL_DEVICE_TYPE_ALL || (caps->type & e->type) != 0);
}

size_t clattn__tiles_local_bytes(const clattn_tiles *tiles, int d, int dv)
{
    return tiles->cpu_variant ? 0 : (size_t)tiles->bk * (size_t)(d + dv) * sizeof(float);
}

/* The largest halving of wg (at least 1) that the device's work-groups take. */
static int fit_work_group(int wg, const clattn__device_caps *caps)
{
    while (wg > 1 && (size_t)wg > caps->max_work_group)
        wg /= 2;
    return wg;
}

/* CLATTN_STATUS_DEVICE_LIMIT, naming `what`, when a kernel of wg work-items and `bytes` of local
 * memory does not fit the device. */
static int check_fits(const clattn__device_caps *caps, int wg, size_t bytes, int d, int dv, const char *what,
                      clattn__error *err)
{
    if ((size_t)wg <= caps->max_work_group && bytes <= caps->local_mem)
        return CLATTN_STATUS_OK;
    return clattn__fail(err, CLATTN_STATUS_DEVICE_LIMIT,
                        "head_dim = %d, value_dim = %d: %s needs %zu bytes of local memory, the device has %llu (max "
                        "work-group %zu)",
                        d, dv, what, bytes, (unsigned long long)caps->local_mem, caps->max_work_group);
}

int clattn__choose_tiles(const clattn_context *ctx, int d, int dv, int max_rows, clattn_tiles *out, clattn__error *err)
{
    const clattn__device_caps *caps = &ctx->caps;
    clattn_tiles t;
    if (ctx->tiles_forced)
        t = ctx->forced_tiles;
    else if (!clattn__tuning_cache_load(ctx, &t)) {
        size_t i = 0;
        while (!matches(&tile_table[i], caps))
            i++; /* the last entry matches every device */
        t = tile_table[i].tiles;
    }
    if (t.cpu_variant && t.rows > max_rows)
        t.rows = max_rows; /* decode: a tile of repeated rows would only repeat work */
    if (t.item_tiles <= 0 || !t.cpu_variant)
        t.item_tiles = t.cpu_variant ? CLATTN_ITEM_TILES : 1;
    if (t.item_tiles > CLATTN_MAX_ITEM_TILES)
        t.item_tiles = CLATTN_MAX_ITEM_TILES;
    if (!t.cpu_variant) {
        t.wg = fit_work_group(t.wg, caps);
        while (t.bk > 1 && clattn__tiles_local_bytes(&t, d, dv) > caps->local_mem)
            t.bk /= 2;
        const int status = check_fits(caps, t.wg, clattn__tiles_local_bytes(&t, d, dv), d, dv, "one key tile", err);
        if (status)
            return status;
    }
    *out = t;
    return CLATTN_STATUS_OK;
}

void clattn__attention_options(const clattn_tiles *tiles, int d, int dv, char *buf, size_t size)
{
    /* Only the variant's own options: a GPU program does not depend on the key chunk. */
    if (!tiles->cpu_variant) {
        snprintf(buf, size, "-DCLATTN_D=%d -DCLATTN_DV=%d -DCLATTN_WG=%d -DCLATTN_BK=%d", d, dv, tiles->wg, tiles->bk);
        return;
    }
    int vw = 16, wd = 16;
    while (dv % vw != 0)
        vw /= 2;
    while (d % wd != 0)
        wd /= 2;
    snprintf(buf, size,
             "-DCLATTN_D=%d -DCLATTN_DV=%d -DCLATTN_VW=%d -DCLATTN_WD=%d -DCLATTN_ROWS=%d "
             "-DCLATTN_KW=%d -DCLATTN_KC=%d -DCLATTN_TILES=%d",
             d, dv, vw, wd, tiles->rows, tiles->kw, CLATTN_KEY_CHUNK, tiles->item_tiles);
}

void clattn__pack_options(int d, char *buf, size_t size)
{
    snprintf(buf, size, "-DCLATTN_D=%d -DCLATTN_KC=%d", d, CLATTN_KEY_CHUNK);
}

size_t clattn__split_local_bytes(const clattn__split_tiles *t, int d, int dv)
{
    const size_t bn = (size_t)t->bn, rb = (size_t)t->rb;
    return (bn * (size_t)(d + dv) + rb * (size_t)d + 2 * rb * (bn + 1) + rb) * sizeof(float);
}

int clattn__choose_split_tiles(const clattn_context *ctx, int d, int dv, int group_rows, clattn__split_tiles *out,
                               clattn__error *err)
{
    const clattn__device_caps *caps = &ctx->caps;
    clattn__split_tiles t = {CLATTN_SPLIT_GPU_WG, CLATTN_SPLIT_GPU_BN,
                             group_rows < CLATTN_SPLIT_GPU_MAX_RB ? group_rows : CLATTN_SPLIT_GPU_MAX_RB};
    t.wg = fit_work_group(t.wg, caps);
    if (t.bn > t.wg)
        t.bn = t.wg;
    /* Fewer keys per tile first (down to 8), then fewer rows per block, then fewer keys again. */
    while (clattn__split_local_bytes(&t, d, dv) > caps->local_mem && (t.bn > 1 || t.rb > 1)) {
        if (t.bn > 8 || (t.bn > 1 && t.rb == 1))
            t.bn /= 2;
        else
            t.rb = (t.rb + 1) / 2;
    }
    const int status = check_fits(caps, t.wg, clattn__split_local_bytes(&t, d, dv), d, dv, "the key split", err);
    if (!status)
        *out = t;
    return status;
}

void clattn__split_options(const clattn__split_tiles *t, int d, int dv, char *buf, size_t size)
{
    snprintf(buf, size, "-DCLATTN_D=%d -DCLATTN_DV=%d -DCLATTN_SPLIT_WG=%d -DCLATTN_SPLIT_BN=%d -DCLATTN_SPLIT_RB=%d",
             d, dv, t->wg, t->bn, t->rb);
}
