/* clattn_gpu_profile: what plans would build and run on a described NVIDIA or AMD GPU, for
 * ci/gpu_static.sh, which checks the GPU programs without such a device. It asks the library's own
 * tile choice (host/tuning.c), so the checks follow the tile table.
 *   options nvidia|amd D   the GPU programs and their build options ("PROGRAM OPTIONS" lines)
 *   run nvidia|amd D [DEV] small problems on device DEV (default 0:0, e.g. Oclgrind) with the
 *                          profile's tiles forced and its limits emulated: dense causal, decode
 *                          with GQA, global rows with Qg/Kg/Vg, a 7 x 7 neighborhood */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "grid.h"
#include "tuning.h"

/* What the tile choice reads of a device, as the vendors' OpenCL drivers report it. */
typedef struct {
    const char *profile, *vendor, *name;
    cl_uint compute_units;
    size_t max_work_group;
    cl_ulong local_mem;
} gpu_profile;

static const gpu_profile profiles[] = {
    {"nvidia", "NVIDIA Corporation", "NVIDIA H200", 132, 1024, 48 * 1024},
    {"amd", "Advanced Micro Devices, Inc.", "gfx906", 60, 256, 64 * 1024},
};

/* A context that is only the profile's capabilities: no cache directory or forced tiles, so
 * that the tile table decides. */
static void profile_context(const gpu_profile *g, clattn_context *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    snprintf(ctx->caps.name, sizeof ctx->caps.name, "%s", g->name);
    snprintf(ctx->caps.vendor, sizeof ctx->caps.vendor, "%s", g->vendor);
    ctx->caps.type = CL_DEVICE_TYPE_GPU;
    ctx->caps.compute_units = g->compute_units;
    ctx->caps.max_work_group = g->max_work_group;
    ctx->caps.local_mem = g->local_mem;
    ctx->caps.max_alloc = ctx->caps.global_mem = (cl_ulong)16 << 30;
    ctx->caps.warp_shuffle = ctx->caps.sm80 = strstr(g->vendor, "NVIDIA") != NULL; /* an sm_90 */
}

/* A 7 x 7 neighborhood on an h x w grid, one kv head for `heads` query heads. */
static clattn_problem neighborhood_7x7(int h, int w, int d, int heads)
{
    clattn_problem p = {.batch = 1, .heads = heads, .kv_heads = 1, .head_dim = d, .value_dim = d, .grid_dilation = 1};
    p.q_len = p.kv_len = h * w;
    p.grid_pattern = CLATTN_GRID_NEIGHBORHOOD;
    p.grid_h = h, p.grid_w = w;
    p.grid_kernel_h = p.grid_kernel_w = 7;
    return p;
}

static int print_options(const clattn_context *ctx, int d)
{
    clattn__error err = {{0}};
    clattn_tiles tiles;
    clattn_split_tiles split;
    char options[512];
    /* The split's largest row block: the most registers it takes. */
    if (clattn__choose_tiles(ctx, d, d, CLATTN_DTYPE_F32, 4096, &tiles, &err) ||
        clattn__choose_split_tiles(ctx, tiles.direct, d, d, CLATTN_SPLIT_GPU_MAX_RB, &split, &err)) {
        fprintf(stderr, "clattn_gpu_profile: %s\n", err.text);
        return 1;
    }
    if (tiles.cpu_variant) {
        fprintf(stderr, "clattn_gpu_profile: the tile table gives %s the CPU variant\n", ctx->caps.name);
        return 1;
    }
    clattn__attention_options(&tiles, d, d, options, sizeof options);
    printf("%s %s\n", CLATTN_GPU_ATTENTION_PROGRAM, options);
    if (ctx->caps.sm80) {
        /* The same tiles on tensor cores with warp shuffles (the tune's candidates), as a plan
         * that asks for them gets them, then with K and V a step ahead by asynchronous copies; from
         * D = 128 on, 16 keys a tile (32 spill in clang's sm_90 build, and 16 leave room for Q's
         * small parts: docs/GPU.md). */
        clattn_context mma = *ctx;
        clattn_tiles ask = tiles;
        ask.shuffle = ask.mma = 1;
        if (d >= 128 && ask.bn > 16)
            ask.bn = 16;
        mma.tiles_forced = 1;
        for (int copies = 0; copies <= 1; copies++) {
            ask.prefetch = ask.async = copies;
            mma.forced_tiles = ask;
            clattn_tiles chosen;
            if (clattn__choose_tiles(&mma, d, d, CLATTN_DTYPE_F32, 4096, &chosen, &err)) {
                fprintf(stderr, "clattn_gpu_profile: %s\n", err.text);
                return 1;
            }
            clattn__attention_options(&chosen, d, d, options, sizeof options);
            printf("%s %s\n", CLATTN_GPU_ATTENTION_PROGRAM, options);
        }
    }
    clattn__split_options(&split, tiles.direct, d, d, options, sizeof options);
    printf("%s %s\n", CLATTN_GPU_SPLIT_PROGRAM, options);
    /* The grid kernel as a 7 x 7 neighborhood on 64 x 48 gets it (the tile's width is the only
     * option the pattern sets). */
    const clattn_problem grid = neighborhood_7x7(64, 48, d, 1);
    int wg, bk;
    clattn__grid geo;
    clattn__grid_gpu_sizes(&tiles, &ctx->caps, d, d, &wg, &bk);
    if (clattn__grid_build(&grid, wg, 0, CLATTN_KEY_CHUNK, &geo, &err)) {
        fprintf(stderr, "clattn_gpu_profile: %s\n", err.text);
        return 1;
    }
    clattn__grid_gpu_options(&tiles, d, d, wg, bk, geo.tw, options, sizeof options);
    clattn__grid_free(&geo);
    printf("%s %s\n", CLATTN_GRID_GPU_PROGRAM, options);
    return 0;
}

/* A host tensor of count floats, filled with a fixed pseudo-random sequence. */
static float *tensor(clattn_host_tensor *t, size_t count, unsigned *state)
{
    float *x = malloc(count * sizeof *x);
    for (size_t i = 0; x != NULL && i < count; i++) {
        *state = *state * 1664525u + 1013904223u;
        x[i] = (float)(*state >> 8) / (float)(1u << 24) - 0.5f;
    }
    t->data = x;
    t->bytes = count * sizeof *x;
    return x;
}

/* p's sizes are written out in full (Hkv, Nk; Dv = D). */
static int run_problem(clattn_context *dev, const char *what, const clattn_problem *p)
{
    const size_t q = (size_t)p->batch * p->heads * p->q_len * p->head_dim;
    const size_t kv = (size_t)p->batch * p->kv_heads * p->kv_len * p->head_dim;
    clattn_host_tensors t = {0};
    unsigned state = 1;
    int ok =
        tensor(&t.q, q, &state) && tensor(&t.k, kv, &state) && tensor(&t.v, kv, &state) && tensor(&t.out, q, &state);
    if (ok && p->global_qkv)
        ok = tensor(&t.qg, q, &state) && tensor(&t.kg, kv, &state) && tensor(&t.vg, kv, &state);
    clattn_plan *plan = NULL;
    int status = !ok ? CLATTN_STATUS_HOST_OUT_OF_MEMORY : clattn_plan_create(dev, p, &plan);
    if (!status)
        status = clattn_plan_run_host(plan, &t);
    printf("%s %s: %s\n", status ? "FAIL" : "ran ", what, status ? clattn_context_message(dev) : "");
    clattn_plan_free(plan);
    clattn_host_tensor *all[] = {&t.q, &t.k, &t.v, &t.out, &t.qg, &t.kg, &t.vg};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]->data);
    return status != 0;
}

static int run(const gpu_profile *g, const clattn_context *profile, int d, const char *device)
{
    clattn__error err = {{0}};
    clattn_tiles tiles;
    if (clattn__choose_tiles(profile, d, d, CLATTN_DTYPE_F32, 4096, &tiles, &err)) {
        fprintf(stderr, "clattn_gpu_profile: %s\n", err.text);
        return 1;
    }
    clattn_context *dev = NULL;
    if (clattn_context_create(&(clattn_context_desc){.device = device}, &dev)) {
        fprintf(stderr, "clattn_gpu_profile: device %s: %s\n", device, clattn_context_message(NULL));
        return 1;
    }
    clattn_context_force_tiles(dev, &tiles);
    clattn_context_emulate_limits(dev, g->max_work_group, g->local_mem, 0);
    static const int globals[] = {0, 70};
    const clattn_problem problems[] = {
        {.batch = 1, .heads = 2, .kv_heads = 1, .q_len = 130, .kv_len = 130, .head_dim = d, .causal = 1},
        {.batch = 1, .heads = 8, .kv_heads = 2, .q_len = 2, .kv_len = 300, .head_dim = d, .causal = 1},
        {.batch = 1,
         .heads = 2,
         .kv_heads = 2,
         .q_len = 100,
         .kv_len = 100,
         .head_dim = d,
         .window = 1,
         .window_left = 8,
         .window_right = 8,
         .global_idx = globals,
         .num_global = 2,
         .global_qkv = 1},
        neighborhood_7x7(16, 16, d, 2),
    };
    static const char *const names[] = {"dense causal N=130 GQA", "decode Nq=2 Nk=300 GQA 4",
                                        "window 8 + global rows (Qg,Kg,Vg) N=100", "neighborhood 7x7 on 16x16 GQA"};
    int failed = 0;
    for (size_t i = 0; i < sizeof problems / sizeof problems[0]; i++)
        failed |= run_problem(dev, names[i], &problems[i]);
    clattn_context_free(dev);
    return failed;
}

int main(int argc, char **argv)
{
    const gpu_profile *g = NULL;
    for (size_t i = 0; argc >= 4 && i < sizeof profiles / sizeof profiles[0]; i++)
        if (strcmp(argv[2], profiles[i].profile) == 0)
            g = &profiles[i];
    const int d = argc >= 4 ? atoi(argv[3]) : 0;
    const int options = argc == 4 && strcmp(argv[1], "options") == 0;
    const int running = (argc == 4 || argc == 5) && strcmp(argv[1], "run") == 0;
    if (g == NULL || d < 1 || d > 256 || !(options || running)) {
        fprintf(stderr, "usage: clattn_gpu_profile options|run nvidia|amd HEAD_DIM [DEVICE]\n");
        return 2;
    }
    clattn_context profile;
    profile_context(g, &profile);
    return options ? print_options(&profile, d) : run(g, &profile, d, argc == 5 ? argv[4] : "0:0");
}
