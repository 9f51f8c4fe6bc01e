/* Every pattern on tiny shapes, both kernel variants, on every OpenCL device, against the
 * reference: quick everywhere, and small enough for ci/oclgrind.sh to run under Oclgrind's race
 * and bounds checks. A few of them again in float16 and bfloat16 storage. */
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define TOLERANCE 2e-4

static const int globals[] = {12, 0};
static const int lens[] = {19, 11};
static const clattn_problem cases[] = {
    {.batch = 1, .heads = 2, .kv_heads = 1, .q_len = 19, .head_dim = 16},
    {.batch = 1, .heads = 2, .q_len = 19, .head_dim = 8, .value_dim = 4, .causal = 1},
    {.batch = 1, .heads = 1, .q_len = 1, .kv_len = 37, .head_dim = 16, .causal = 1, .window = 1, .window_left = 9},
    {.batch = 1,
     .heads = 2,
     .q_len = 19,
     .head_dim = 16,
     .window = 1,
     .window_left = 3,
     .window_right = 2,
     .dilation = 2},
    {.batch = 2,
     .heads = 2,
     .kv_heads = 1,
     .q_len = 19,
     .head_dim = 16,
     .window = 1,
     .window_left = 4,
     .window_right = 1,
     .causal = 1,
     .global_idx = globals,
     .num_global = 2,
     .summary_block = 5,
     .extra_len = 2},
    {.batch = 1,
     .heads = 1,
     .q_len = 19,
     .head_dim = 16,
     .window = 1,
     .window_left = 2,
     .window_right = 2,
     .global_idx = globals,
     .num_global = 2,
     .global_qkv = 1},
    {.batch = 1, .heads = 2, .kv_heads = 1, .q_len = 19, .kv_len = 40, .head_dim = 128, .value_dim = 72, .causal = 1},
/* one small case of each 2-D pattern, on a 5 x 7 grid */
#define SMALL_GRID(pattern, ...)                                                                                       \
    {                                                                                                                  \
        .batch = 1, .heads = 2, .kv_heads = 1, .q_len = 35, .head_dim = 16, .value_dim = 8,                            \
        .grid_pattern = CLATTN_GRID_##pattern, .grid_h = 5, .grid_w = 7, __VA_ARGS__                                   \
    }
    SMALL_GRID(AXIAL_ROW, .causal = 0),
    SMALL_GRID(AXIAL_COLUMN, .causal = 0),
    SMALL_GRID(CRISS_CROSS, .causal = 1),
    SMALL_GRID(NEIGHBORHOOD, .grid_kernel_h = 3, .grid_kernel_w = 3, .grid_dilation = 2),
    SMALL_GRID(WINDOW, .grid_window_size = 4, .grid_shift = 2),
#undef SMALL_GRID
};

/* Cases run again in a 16-bit storage type: every side key and padding (4) and a grid (9) in
 * float16; decode (2) and Qg, Kg, Vg (5) in bfloat16. */
static const struct {
    size_t index;
    clattn_dtype dtype;
} stored_cases[] = {{4, CLATTN_DTYPE_F16}, {9, CLATTN_DTYPE_F16}, {2, CLATTN_DTYPE_BF16}, {5, CLATTN_DTYPE_BF16}};

static void check_case(clattn_context *dev, clattn_context *ref, const char *variant, size_t c, clattn_dtype dtype)
{
    clattn_problem p = cases[c];
    p.dtype = dtype;
    double err = 0.0;
    const int s = harness_compare(dev, ref, &p, p.batch == 2 ? lens : NULL, 1, &err);
    check(s == CLATTN_STATUS_OK && err <= TOLERANCE, "%s case %zu%s: max err %.2e", variant, c, harness_storage(dtype),
          err);
}

static void run_variant(clattn_context *dev, clattn_context *ref, const char *variant, size_t index)
{
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_case(dev, ref, variant, c, CLATTN_DTYPE_F32);
    /* the first CPU tiles and the NVIDIA row's GPU tiles: each storage type builds its own programs */
    for (size_t c = 0; (index == 0 || index == 2) && c < sizeof stored_cases / sizeof stored_cases[0]; c++)
        check_case(dev, ref, variant, stored_cases[c].index, stored_cases[c].dtype);
}

/* `test_small --gpu` runs the GPU variant's tiles alone (ci/oclgrind.sh, under NVIDIA-like limits). */
int main(int argc, char **argv)
{
    /* GPU variant: the NVIDIA row's tiles (ci/oclgrind.sh runs them under 48 KB of local memory,
     * which shrinks them at D = 128), and odd ones: 2 x 1 work-items of 3 x 5 scores, K and V
     * loaded a step ahead; 8 x 4 work-items of 2 x 2 scores, K and V a step ahead, the rows' maxima
     * and sums combined by the butterfly of warp shuffles with each exchange through __local; one
     * warp of 16 rows by 16 keys on emulated tensor cores, K and V a step ahead by emulated
     * asynchronous copies (whose contract ci/oclgrind.sh's race checks watch), the butterfly; 2 x 1
     * work-items of 3 x 5 scores again with K and V read where they lie (direct: one barrier
     * fewer a tile, the first tile's wait for Q its own). */
    static const clattn_tiles variants[] = {
        {.cpu_variant = 1, .rows = 4, .kw = 16, .lanes = 1},
        {.cpu_variant = 1, .rows = 3, .kw = 32},
        {.cpu_variant = 0, .rows = 1, .bm = 64, .bn = 32, .tm = 4, .tn = 4, .reqd_wg = 1, .stage = 8},
        {.cpu_variant = 0, .rows = 1, .bm = 6, .bn = 5, .tm = 3, .tn = 5, .prefetch = 1},
        {.cpu_variant = 0, .rows = 1, .bm = 16, .bn = 8, .tm = 2, .tn = 2, .prefetch = 1, .shuffle = 2},
        {.cpu_variant = 0,
         .rows = 1,
         .bm = 16,
         .bn = 16,
         .tm = 2,
         .tn = 4,
         .prefetch = 1,
         .shuffle = 2,
         .mma = 2,
         .async = 2},
        {.cpu_variant = 0, .rows = 1, .bm = 6, .bn = 5, .tm = 3, .tn = 5, .direct = 1}};
    static const char *const names[] = {"cpu4x16", "cpu3x32", "gpu64", "gpu6x5", "gpu16x8x", "gpu16m", "gpu6x5d"};
    const size_t first = argc > 1 && strcmp(argv[1], "--gpu") == 0 ? 2 : 0; /* the GPU variants come last */
    return harness_each_variant(variants + first, names + first, sizeof variants / sizeof variants[0] - first,
                                run_variant);
}
