/* The tile table and its fallback device -> vendor -> type default, and the build options
 * derived from it. Entries are measured with `clattn bench`; add a row per tuned device. */
#include "tuning.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tuning_cache.h"

typedef struct {
    const char *device; /* substring of CL_DEVICE_NAME, or NULL */
    const char *vendor; /* substring of CL_DEVICE_VENDOR, or NULL */
    cl_device_type type;
    int min_d;      /* the row applies from this head dimension up (0: any) */
    int min_floats; /* and where the device's native float vector holds this many or more (0: any) */
    clattn_tiles tiles;
} tile_entry;

/* The GPU variant's rows: starting points from the shape of fast GPU attention (FlashAttention 2,
 * CLBlast's GEMM; see docs/GPU.md). Only the NVIDIA rows have met their GPU: on an H200 clattn
 * tune put them within 0.5% of the best of 25 tiles at D = 64 and 128 (docs/PERFORMANCE.md). A
 * row whose __local tiles do not fit a device or a head dimension is shrunk at plan creation
 * (clattn__tiles_shrink). */
#define GPU_TILES(bm_, bn_, tm_, tn_, reqd_, stage_, prefetch_, shuffle_, mma_, async_, direct_, large_grf_)           \
    {                                                                                                                  \
        .cpu_variant = 0, .rows = 1, .kw = 0, .bm = bm_, .bn = bn_, .tm = tm_, .tn = tn_, .reqd_wg = reqd_,            \
        .stage = stage_, .prefetch = prefetch_, .shuffle = shuffle_, .mma = mma_, .async = async_, .direct = direct_,  \
        .large_grf = large_grf_                                                                                        \
    }

static const tile_entry tile_table[] = {
    /* From D = 128 on, 128 work-items of 4 x 4 scores, shrunk to BM 32 (62 KB of __local at BM 64)
     * on its 48 KB; below, 64 work-items of 4 x 8 (BM 64 by BN 32). K and V staged 8 loads at a time
     * (one load at a time, NVIDIA's compiler waited out each load's latency in turn: docs/GPU.md).
     * clattn tune on the H200, dense N = 4096, H = 32 (the third session): D = 64 4 x 8 4.655 ms
     * and 8 x 4 4.644 against 5.581 for 4 x 4 (5.772 one load at a time); 8 x 4 compiles to 244
     * registers there, but clang's sm_90 build of it (ci/gpu_static.sh) spills, 4 x 8 does not.
     * D = 128 9.423 ms, every 4 x 4 candidate that stages in batches within 0.5%. */
    {.device = NULL,
     .vendor = "NVIDIA",
     .type = CL_DEVICE_TYPE_GPU,
     .min_d = 128,
     .tiles = GPU_TILES(64, 32, 4, 4, 1, 8, 0, 0, 0, 0, 0, 0)},
    {.device = NULL,
     .vendor = "NVIDIA",
     .type = CL_DEVICE_TYPE_GPU,
     .tiles = GPU_TILES(64, 32, 4, 8, 1, 8, 0, 0, 0, 0, 0, 0)},
    /* 64 KB of LDS: from D = 128 on, 64 x 32 (D = 128 fits as it is, 63 KB; 128 work-items are
     * two wavefronts); below, 64 x 64 (58 KB at D = 64, 256 work-items). Chosen by what gfx906
     * compiles without a spill (ci/gpu_static.sh): at D = 64, 64 x 32 spilled 4 SGPRs once P.V had
     * a loop for the rare edge tiles with a non-finite value. K and V staged one load at a time:
     * batched, 12-17 SGPRs spilled. */
    {.device = NULL,
     .vendor = "Advanced Micro Devices",
     .type = CL_DEVICE_TYPE_GPU,
     .min_d = 128,
     .tiles = GPU_TILES(64, 32, 4, 4, 1, 0, 0, 0, 0, 0, 0, 0)},
    {.device = NULL,
     .vendor = "Advanced Micro Devices",
     .type = CL_DEVICE_TYPE_GPU,
     .tiles = GPU_TILES(64, 64, 4, 4, 1, 0, 0, 0, 0, 0, 0, 0)},
    /* Intel GPUs: a SIMD16 thread has 64 floats of registers per work-item in the default GRF
     * mode, so half the rows per work-item. */
    {.device = NULL,
     .vendor = "Intel",
     .type = CL_DEVICE_TYPE_GPU,
     .tiles = GPU_TILES(32, 32, 2, 4, 1, 0, 0, 0, 0, 0, 0, 0)},
    /* ARM Mali: about 64 registers per thread, 2 x 2 blocks; its __local is the same memory as
     * global (no on-chip shared memory), so K and V are read where they lie, through the caches,
     * rather than copied and waited for at barriers (ARM's OpenCL guide; `direct`). */
    {.device = NULL,
     .vendor = "ARM",
     .type = CL_DEVICE_TYPE_GPU,
     .tiles = GPU_TILES(32, 16, 2, 2, 1, 0, 0, 0, 0, 0, 1, 0)},
    /* Qualcomm Adreno: no reqd_work_group_size (CLBlast leaves it out there). */
    {.device = NULL,
     .vendor = "QUALCOMM",
     .type = CL_DEVICE_TYPE_GPU,
     .tiles = GPU_TILES(32, 32, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0)},
    /* Intel's OpenCL CPU runtime (PyPI intel-opencl-rt), whose device name says no ISA: on AVX-512
     * (a native vector of 16 floats), clattn tune on the Xeon below, dense N=2048, once the score
     * loop's broadcasts came from one private block (attention_cpu.cl, tile_rows): 10 rows x 32 keys
     * 32.9 ms, 8 x 32 34.6, 12 x 32 35.5, 16 x 16 33.8, 12 x 16 34.7. On AVX2 (8 floats) the
     * generic CPU row below: on a Zen 3 EPYC 6 x 16 ran 89.0 ms against 187.0 for 10 x 32, whose
     * accumulators do not fit 16 registers. */
    {.device = NULL,
     .vendor = "Intel(R) Corporation",
     .type = CL_DEVICE_TYPE_CPU,
     .min_floats = 16,
     .tiles = {.cpu_variant = 1, .rows = 10, .kw = 32, .lanes = 1}},
    /* Intel's AVX-512 cores with two 512-bit FMA pipes (clattn tune on a Xeon through POCL,
     * `pthread-skylake-avx512-Intel(R) Xeon(R) Processor`, dense N=4096): 8 rows of one 16-key
     * vector left the pipes half idle (207 GFLOP/s at D=64); two vectors per row and two value
     * blocks per P.V pass (KW = 32) gave 265 with 8 rows, 274 with 10, and at D=128 287 with 12
     * rows: 24 accumulators, two key vectors and a broadcast of the 32 registers. */
    {.device = "avx512",
     .vendor = "GenuineIntel",
     .type = CL_DEVICE_TYPE_CPU,
     .tiles = {.cpu_variant = 1, .rows = 12, .kw = 32, .lanes = 1}},
    /* POCL's AVX-512 targets (clattn tune on a Zen 4, `pthread-skylake-avx512`): 32 registers
     * hold 8 rows of 16 scores with room to spare. On dense attention 6 to 12 rows measured
     * within 3.5% (the last run, with 4-tile work-items: 6 best); 8 led 10 by 3-8% on window
     * 256, whose edges cost more with taller tiles. */
    {.device = "avx512",
     .vendor = NULL,
     .type = CL_DEVICE_TYPE_CPU,
     .tiles = {.cpu_variant = 1, .rows = 8, .kw = 16, .lanes = 1}},
    /* Any CPU, tuned on POCL's AVX2 target (clattn tune): 6 rows by 16 keys or 16 value columns
     * are 12 accumulators, plus two loaded vectors and a broadcast: the 16 ymm registers. The
     * CPU variant's generic row (CLATTN_VARIANT=cpu on another device takes it). */
    {.device = NULL, .vendor = NULL, .type = CL_DEVICE_TYPE_CPU, .tiles = {.cpu_variant = 1, .rows = 6, .kw = 16}},
    /* Any other device, and the GPU variant's generic row (CLATTN_VARIANT=gpu on a CPU). */
    {.device = NULL,
     .vendor = NULL,
     .type = CL_DEVICE_TYPE_ALL,
     .tiles = GPU_TILES(32, 32, 4, 4, 1, 0, 0, 0, 0, 0, 0, 0)},
};

static int matches(const tile_entry *e, const clattn__device_caps *caps, int d)
{
    return d >= e->min_d && caps->native_floats >= (cl_uint)e->min_floats &&
           (e->device == NULL || strstr(caps->name, e->device) != NULL) &&
           (e->vendor == NULL || strstr(caps->vendor, e->vendor) != NULL) &&
           (e->type == CL_DEVICE_TYPE_ALL || (caps->type & e->type) != 0);
}

/* The GPU kernel's vector width over a row of n floats, and the row's stride in __local: one padding
 * unit more when the row holds an even number of units, the unit being the vector or (P's rows)
 * the `writers` per row when they are a multiple of it (cl/attention_gpu.cl's QW and QS, PW, PU
 * and PS). */
static int vector_width(int n)
{
    return n % 4 == 0 ? 4 : n % 2 == 0 ? 2 : 1;
}

static size_t padded_stride(int n, int writers)
{
    const int w = vector_width(n), unit = writers % w == 0 ? writers : w;
    return (size_t)n + ((n / unit) % 2 == 0 ? (size_t)unit : 0);
}

size_t clattn__tiles_local_bytes(const clattn_tiles *t, int d, int dv)
{
    if (t->cpu_variant)
        return 0;
    /* Q [bm][QS], K then V [bn][max(QS, VS)] (with prefetch K [bn][QS] and V [bn][VS]; direct
     * neither), P [bm][PS], the row reductions [bm][bn / tn] (none with warp shuffles), the flags
     * (2); each array 16-byte aligned, so counted in whole float4s. With mma the strides of K and V
     * are those of the products' reads (QS = 8 mod 32 floats, VS = 4 mod 16), Q is [bm][d] in the
     * fragments' order, and Q's small TF32 parts follow it where the floats, counted without the
     * rounding, still fit 48 KB (Q_SMALL_STAGED). */
    const int ct = t->bn / t->tn;
    const size_t qs = t->mma ? (size_t)(d + (40 - d % 32) % 32) : padded_stride(d, 1);
    const size_t vs = t->mma ? (size_t)(dv + (20 - dv % 16) % 16) : (size_t)dv;
    const size_t bm = (size_t)t->bm, bn = (size_t)t->bn;
    const size_t ks = t->prefetch || qs > vs ? qs : vs;
    const size_t qrow = t->mma ? (size_t)d : qs;
    const size_t floats[6] = {bm * qrow,
                              t->direct ? 0 : bn * ks,
                              t->prefetch && !t->direct ? bn * vs : 0,
                              bm * padded_stride(t->bn, ct),
                              t->shuffle == 1 ? 0 : bm * (size_t)ct,
                              2};
    size_t total = 0, bytes = 0;
    for (int i = 0; i < 6; i++) {
        total += floats[i];
        bytes += (floats[i] + 3) / 4 * 4 * sizeof(float);
    }
    if (t->mma && (total + floats[0]) * sizeof(float) <= 48 * 1024)
        bytes += floats[0] * sizeof(float); /* in Q's array, bm * d floats: whole float4s */
    return bytes;
}

size_t clattn__tiles_group_size(const clattn_tiles *t)
{
    return t->cpu_variant ? 1 : (size_t)(t->bm / t->tm) * (size_t)(t->bn / t->tn);
}

int clattn__tiles_group_rows(const clattn_tiles *t)
{
    return t->cpu_variant ? t->rows : t->bm;
}

#define TILE_FIELD(name, min, max, gpu_option)                                                                         \
    {                                                                                                                  \
#name, offsetof(clattn_tiles, name), min, max, gpu_option                                                      \
    }
const clattn__tile_field clattn__tile_fields[] = {
    TILE_FIELD(cpu_variant, 0, 1, 0), TILE_FIELD(rows, 1, 16, 0),
    TILE_FIELD(kw, 0, 32, 0),         TILE_FIELD(item_tiles, 0, CLATTN_MAX_ITEM_TILES, 0),
    TILE_FIELD(bm, 0, 256, 0),        TILE_FIELD(bn, 0, 256, 0),
    TILE_FIELD(tm, 0, 32, 0),         TILE_FIELD(tn, 0, 32, 0),
    TILE_FIELD(reqd_wg, 0, 1, 0),     TILE_FIELD(stage, 0, 8, 1),
    TILE_FIELD(prefetch, 0, 1, 1),    TILE_FIELD(lanes, 0, 1, 0),
    TILE_FIELD(shuffle, 0, 2, 1),     TILE_FIELD(mma, 0, 2, 1),
    TILE_FIELD(async, 0, 2, 1),       TILE_FIELD(direct, 0, 1, 1),
    TILE_FIELD(large_grf, 0, 1, 1),
};
#undef TILE_FIELD
/* Every field is an int and in the table (a field left out would be neither saved nor checked). */
_Static_assert(sizeof(clattn_tiles) == CLATTN_TILE_FIELDS * sizeof(int), "clattn__tile_fields lists each field");

int clattn__tiles_check(const clattn_tiles *t, char *why, size_t size)
{
    if (t->cpu_variant)
        return 0;
    if (t->tm < 1 || t->tn < 1 || t->bm < t->tm || t->bn < t->tn || t->bm % t->tm != 0 || t->bn % t->tn != 0 ||
        t->tm * t->tn > 32) {
        snprintf(why, size,
                 "GPU tiles bm = %d, bn = %d, tm = %d, tn = %d: bm must be a multiple of tm, bn of tn, and tm * tn "
                 "<= 32",
                 t->bm, t->bn, t->tm, t->tn);
        return -1;
    }
    for (int i = 0; i < CLATTN_TILE_FIELDS; i++) {
        const clattn__tile_field *f = &clattn__tile_fields[i];
        const int value = *(const int *)((const char *)t + f->offset);
        if (f->gpu_option && (value < f->min || value > f->max)) {
            snprintf(why, size, "GPU tiles %s = %d: %d to %d", f->name, value, f->min, f->max);
            return -1;
        }
    }
    return 0;
}

/* Halves the keys per tile: the register block's columns first (so the column threads, which
 * share the output's columns, stay), then the column threads. 0 when bn is 1. */
static int shrink_keys(clattn_tiles *t)
{
    int ct = t->bn / t->tn;
    if (t->tn > 1)
        t->tn /= 2;
    else if (ct > 1)
        ct /= 2;
    else
        return 0;
    t->bn = ct * t->tn;
    return 1;
}

int clattn__tiles_shrink(clattn_tiles *t)
{
    int rt = t->bm / t->tm;
    if (t->bn >= t->bm && shrink_keys(t))
        return 1;
    if (rt > 1)
        rt /= 2;
    else if (shrink_keys(t))
        return 1;
    else if (t->tm > 1)
        t->tm /= 2;
    else
        return 0;
    t->bm = rt * t->tm;
    return 1;
}

/* Floats of the output block a GPU-variant work-item holds in registers: tm rows by its share of
 * the dv columns. At D = Dv = 128 the NVIDIA row holds 64 and compiles to about 200 registers on
 * sm_90; 128 (D = 256) takes 254 of the 255, and fewer column threads spill (docs/GPU.md). */
#define GPU_OUTPUT_FLOATS 64

static size_t output_floats(const clattn_tiles *t, int dv)
{
    const size_t ow = (size_t)vector_width(dv), groups = (size_t)dv / ow, ct = (size_t)(t->bn / t->tn);
    return (size_t)t->tm * ((groups + ct - 1) / ct) * ow;
}

/* The variant CLATTN_VARIANT forces (developer knob): 1 cpu, 0 gpu, -1 unset; -2 for another value. */
static int forced_variant(void)
{
    const char *env = getenv("CLATTN_VARIANT");
    if (env == NULL || env[0] == '\0')
        return -1;
    return strcmp(env, "cpu") == 0 ? 1 : strcmp(env, "gpu") == 0 ? 0 : -2;
}

/* The table's row for the device and head dimension d, of the variant `want` when it is 0 or 1:
 * the first such row that matches, else that variant's generic row (no device or vendor named). */
static clattn_tiles table_tiles(const clattn__device_caps *caps, int d, int want)
{
    const size_t count = sizeof tile_table / sizeof tile_table[0];
    size_t generic = count - 1; /* the last entry matches every device */
    for (size_t i = 0; i < count; i++) {
        const tile_entry *e = &tile_table[i];
        if (want >= 0 && e->tiles.cpu_variant != want)
            continue;
        if (matches(e, caps, d))
            return e->tiles;
        if (e->device == NULL && e->vendor == NULL)
            generic = i;
    }
    return tile_table[generic].tiles;
}

static int gpu_tiles_fit(const clattn_tiles *t, int d, int dv, const clattn__device_caps *caps)
{
    return clattn__tiles_group_size(t) <= caps->max_work_group &&
           clattn__tiles_local_bytes(t, d, dv) <= caps->local_mem;
}

/* The tiles' `shuffle` as GPU tiles t run it when they `ask` for it (clattn_advanced.h): a butterfly
 * needs a power of two of column threads per row, NVIDIA's warp shuffle also a device with it, at
 * most 32 of them and a work-group of whole warps. */
static int usable_shuffle(int ask, const clattn_tiles *t, const clattn__device_caps *caps)
{
    const int ct = t->bn / t->tn;
    const size_t wg = clattn__tiles_group_size(t);
    if ((ct & (ct - 1)) != 0 || (ask == 1 && (!caps->warp_shuffle || ct > 32 || wg % 32 != 0)))
        return 0;
    return ask;
}

/* Whether GPU tiles t have the shape of the tensor cores' tiles (`mma`): warps of 16 query rows
 * (bm a multiple of 16) against 8 to 64 keys (bn a multiple of 8; the mask holds 2 x bn / 4 bits). */
static int mma_tiles(const clattn_tiles *t)
{
    return t->bm % 16 == 0 && t->bn % 8 == 0 && t->bn <= 64;
}

/* The tiles' `mma` as GPU tiles t run it when they `ask` for it (clattn_advanced.h): their shape,
 * head and value dims of whole products (8 terms, 8 columns), at most 64 output floats a work-item
 * (dv / 2: GPU_OUTPUT_FLOATS), and for 1 a device with TF32 products. */
static int usable_mma(int ask, const clattn_tiles *t, int d, int dv, const clattn__device_caps *caps)
{
    if (!mma_tiles(t) || d % 8 != 0 || dv % 8 != 0 || dv / 2 > GPU_OUTPUT_FLOATS || (ask == 1 && !caps->sm80))
        return 0;
    return ask;
}

/* The tiles' `async` as GPU tiles t run it when they `ask` for it (clattn_advanced.h): a way
 * of prefetch's loads, for float32 storage (a copy converts nothing), and for 1 a device with
 * cp.async. */
static int usable_async(int ask, const clattn_tiles *t, clattn_dtype dtype, const clattn__device_caps *caps)
{
    if (!t->prefetch || dtype != CLATTN_DTYPE_F32 || (ask == 1 && !caps->sm80))
        return 0;
    return ask;
}

int clattn__group_stage(int stage, size_t wg)
{
    return wg > 1 ? stage : 0;
}

int clattn__fit_work_group(int wg, const clattn__device_caps *caps)
{
    while (wg > 1 && (size_t)wg > caps->max_work_group)
        wg /= 2;
    return wg;
}

int clattn__check_fits(const clattn__device_caps *caps, int wg, size_t bytes, int d, int dv, const char *what,
                       clattn__error *err)
{
    if ((size_t)wg <= caps->max_work_group && bytes <= caps->local_mem)
        return CLATTN_STATUS_OK;
    return clattn__fail(err, CLATTN_STATUS_DEVICE_LIMIT,
                        "head_dim = %d, value_dim = %d: %s needs %zu bytes of local memory in work-groups of %d, the "
                        "device allows %llu bytes and work-groups of %zu",
                        d, dv, what, bytes, wg, (unsigned long long)caps->local_mem, caps->max_work_group);
}

int clattn__choose_tiles(const clattn_context *ctx, int d, int dv, clattn_dtype dtype, int max_rows, clattn_tiles *out,
                         clattn__error *err)
{
    const clattn__device_caps *caps = &ctx->caps;
    const int want = forced_variant();
    if (want == -2)
        return clattn__fail(err, CLATTN_STATUS_UNSUPPORTED, "CLATTN_VARIANT = '%.64s': expected 'gpu' or 'cpu'",
                            getenv("CLATTN_VARIANT"));
    clattn_tiles t;
    if (ctx->tiles_forced)
        t = ctx->forced_tiles;
    else if (!clattn__tuning_cache_load(ctx, &t) || (want >= 0 && t.cpu_variant != want))
        t = table_tiles(caps, d, want);
    char why[256];
    if (clattn__tiles_check(&t, why, sizeof why) != 0)
        return clattn__fail(err, CLATTN_STATUS_UNSUPPORTED, "%s", why);
    if (t.cpu_variant && t.rows > max_rows)
        t.rows = max_rows; /* decode: a tile of repeated rows would only repeat work */
    if (t.item_tiles <= 0 || !t.cpu_variant)
        t.item_tiles = t.cpu_variant ? CLATTN_ITEM_TILES : 1;
    t.lanes = t.cpu_variant && t.lanes;
    if (t.item_tiles > CLATTN_MAX_ITEM_TILES)
        t.item_tiles = CLATTN_MAX_ITEM_TILES;
    if (!t.cpu_variant) {
        if (t.direct) /* nothing staged: nothing to load ahead, no __local for the products */
            t.prefetch = t.async = t.mma = 0;
        t.large_grf = t.large_grf && caps->intel_gpu;
        t.mma = usable_mma(t.mma, &t, d, dv, caps);
        t.async = usable_async(t.async, &t, dtype, caps);
        if (t.mma) { /* a warp's 16 rows by the tile's keys (cl/attention_gpu.cl's ROW_OF, KEY_OF) */
            t.tm = 2;
            t.tn = t.bn / 4;
        }
        while (output_floats(&t, dv) > GPU_OUTPUT_FLOATS && t.tm > 1) {
            t.bm = t.bm / t.tm * (t.tm / 2); /* as many row threads, each with half the rows */
            t.tm /= 2;
        }
        const int ask = t.shuffle;
        for (;;) {
            t.shuffle = usable_shuffle(ask, &t, caps); /* which decides whether red takes __local */
            t.mma = mma_tiles(&t) ? t.mma : 0;         /* halving keeps tn = bn / 4 and tm */
            if (gpu_tiles_fit(&t, d, dv, caps) || !clattn__tiles_shrink(&t))
                break;
        }
        const int status =
            clattn__check_fits(caps, (int)clattn__tiles_group_size(&t), clattn__tiles_local_bytes(&t, d, dv), d, dv,
                               "the attention kernel at its smallest GPU tiles", err);
        if (status)
            return status;
        t.stage = clattn__group_stage(t.stage, clattn__tiles_group_size(&t));
    }
    *out = t;
    return CLATTN_STATUS_OK;
}

int clattn__tiles_fit_kernel(const clattn_context *ctx, cl_kernel kernel, clattn_tiles *t, int *rebuild,
                             clattn__error *err)
{
    *rebuild = 0;
    if (t->cpu_variant)
        return CLATTN_STATUS_OK;
    size_t kernel_wg = 0;
    cl_ulong kernel_local = 0;
    cl_int rc =
        clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kernel_wg, &kernel_wg, NULL);
    if (rc == CL_SUCCESS)
        rc = clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_LOCAL_MEM_SIZE, sizeof kernel_local, &kernel_local,
                                      NULL);
    if (rc != CL_SUCCESS)
        return clattn__fail(err, rc, "clGetKernelWorkGroupInfo failed: %s", clattn__cl_error_name(rc));
    const size_t group = clattn__tiles_group_size(t);
    if (group <= kernel_wg && kernel_local <= ctx->caps.local_mem)
        return CLATTN_STATUS_OK;
    if (clattn__tiles_shrink(t)) {
        t->shuffle = usable_shuffle(t->shuffle, t, &ctx->caps);
        t->mma = mma_tiles(t) ? t->mma : 0;
        *rebuild = 1;
        return CLATTN_STATUS_OK;
    }
    return clattn__fail(err, CLATTN_STATUS_DEVICE_LIMIT,
                        "the attention kernel with the smallest GPU tiles needs %zu work-items and %llu bytes of "
                        "local memory; the compiled kernel allows %zu work-items, the device has %llu bytes",
                        group, (unsigned long long)kernel_local, kernel_wg, (unsigned long long)ctx->caps.local_mem);
}

void clattn__attention_options(const clattn_tiles *tiles, int d, int dv, char *buf, size_t size)
{
    /* Only the variant's own options: a GPU program does not depend on the key chunk. */
    if (!tiles->cpu_variant) {
        snprintf(buf, size,
                 "-DCLATTN_D=%d -DCLATTN_DV=%d -DCLATTN_BM=%d -DCLATTN_BN=%d -DCLATTN_TM=%d -DCLATTN_TN=%d "
                 "-DCLATTN_REQD_WG=%d -DCLATTN_STAGE=%d -DCLATTN_PREFETCH=%d -DCLATTN_SHUFFLE=%d -DCLATTN_MMA=%d "
                 "-DCLATTN_ASYNC=%d -DCLATTN_DIRECT=%d%s",
                 d, dv, tiles->bm, tiles->bn, tiles->tm, tiles->tn, tiles->reqd_wg != 0, tiles->stage, tiles->prefetch,
                 tiles->shuffle, tiles->mma, tiles->async, tiles->direct,
                 tiles->large_grf ? " -cl-intel-256-GRF-per-thread" : "");
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

size_t clattn__split_local_bytes(const clattn_split_tiles *t, int direct, int d, int dv)
{
    const size_t bn = (size_t)t->bn, rb = (size_t)t->rb;
    return ((direct ? 0 : bn * (size_t)(d + dv)) + rb * (size_t)d + 2 * rb * (bn + 1) + rb) * sizeof(float);
}

/* A forced field, or the default where it is 0. */
static int split_field(int forced, int fallback)
{
    return forced != 0 ? forced : fallback;
}

int clattn__choose_split_tiles(const clattn_context *ctx, int direct, int d, int dv, int group_rows,
                               clattn_split_tiles *out, clattn__error *err)
{
    const clattn__device_caps *caps = &ctx->caps;
    const clattn_split_tiles *f = &ctx->forced_split;
    clattn_split_tiles t = {split_field(f->wg, CLATTN_SPLIT_GPU_WG), split_field(f->bn, CLATTN_SPLIT_GPU_BN),
                            split_field(f->rb, CLATTN_SPLIT_GPU_MAX_RB),
                            split_field(f->groups_per_cu, CLATTN_SPLIT_GPU_GROUPS_PER_CU)};
    if (t.wg < 1 || t.wg > 1024 || t.bn < 1 || t.bn > 64 || t.wg % t.bn != 0 || t.rb < 1 || t.rb > 32 ||
        t.groups_per_cu < 1 || t.groups_per_cu > 256)
        return clattn__fail(err, CLATTN_STATUS_UNSUPPORTED,
                            "forced split tiles wg %d, bn %d, rb %d, groups_per_cu %d: expected wg 1-1024 a multiple "
                            "of bn, bn 1-64, rb 1-32, groups_per_cu 1-256",
                            t.wg, t.bn, t.rb, t.groups_per_cu);
    if (t.rb > group_rows)
        t.rb = group_rows;
    t.wg = clattn__fit_work_group(t.wg, caps);
    while (t.wg % t.bn != 0) /* a smaller work-group than asked for still takes whole tiles */
        t.bn /= 2;
    /* Fewer keys per tile first (down to 8), then fewer rows per block, then fewer keys again. */
    while (clattn__split_local_bytes(&t, direct, d, dv) > caps->local_mem && (t.bn > 1 || t.rb > 1)) {
        if (t.bn > 8 || (t.bn > 1 && t.rb == 1))
            t.bn /= 2;
        else
            t.rb = (t.rb + 1) / 2;
    }
    const int status =
        clattn__check_fits(caps, t.wg, clattn__split_local_bytes(&t, direct, d, dv), d, dv, "the key split", err);
    if (!status)
        *out = t;
    return status;
}

void clattn__split_options(const clattn_split_tiles *t, int direct, int d, int dv, char *buf, size_t size)
{
    snprintf(buf, size,
             "-DCLATTN_D=%d -DCLATTN_DV=%d -DCLATTN_SPLIT_WG=%d -DCLATTN_SPLIT_BN=%d -DCLATTN_SPLIT_RB=%d "
             "-DCLATTN_DIRECT=%d",
             d, dv, t->wg, t->bn, t->rb, direct != 0);
}
