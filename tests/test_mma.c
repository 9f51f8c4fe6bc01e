/* The GPU variant on tensor cores (clattn_tiles.mma): the scores and P.V as m16n8k8 products in
 * TF32, three of them a product for float32 accuracy. On every device, tiles that ask for the
 * emulated products (mma 2: mma.sync's layout, each work-item computing its accumulators from
 * __local) and for mma.sync itself (1) match the reference on every pattern the kernel runs, with
 * and without K and V loaded a step ahead and with either row combine; the plan says which ran, as
 * it should: 2 wherever the tiles and dims have the products' shape, 1 only on an NVIDIA GPU of
 * compute capability 8.0 or more (asked of OpenCL here), else 0, with tm = 2 and tn = bn / 4
 * whenever products run. Where the PTX does not build (a CPU's compiler, told here that its device
 * has tensor cores: the kernel refuses PTX to compilers other than NVIDIA's and clang's NVPTX), the
 * plan runs without it and says so to the log callback. Infinities and NaN in Q, K and V, which
 * take the float32 path, are test_numerics' (backend gpu16m). */
#include <stdio.h>

#include "context.h" /* the device's capabilities, to claim tensor cores for a device without */
#include "harness.h"

#define TOLERANCE 2e-4

/* harness_gpu_problems, then one with Dv = 20, not a multiple of 8, which runs without products
 * whatever the tiles ask. */
static const clattn_problem dv20 = {.batch = 1, .heads = 2, .q_len = 45, .head_dim = 32, .value_dim = 20, .causal = 1};
static const clattn_problem *const problems[] = {HARNESS_GPU_PROBLEM_LIST, &dv20};
#define NPROBLEMS (sizeof problems / sizeof problems[0])

/* GPU tiles asking for products: 64 x 32 (four warps) with the rows combined through __local; 32 x
 * 16 with K and V a step ahead; 16 x 64 with both and the butterfly (two barriers a key tile); 32 x
 * 16 as NVIDIA's D = 128 row on tensor cores, with Q's small parts staged (the two before stage
 * them at D = 64, and 32 x 16 with K and V a step ahead at D = 128 with Dv = 24 too); 24 x 12, not
 * of the products' shape (run as mma 0); then mma.sync on NVIDIA's shapes, the second with K and V
 * a step ahead and warp shuffles. tm and tn are what the plan replaces. A variant that runs as mma
 * 0 is checked on the first problem alone: the other tests cover that kernel. */
static const clattn_tiles variants[] = {
    {.cpu_variant = 0, .rows = 1, .bm = 64, .bn = 32, .tm = 4, .tn = 4, .reqd_wg = 1, .stage = 8, .mma = 2},
    {.cpu_variant = 0, .rows = 1, .bm = 32, .bn = 16, .tm = 4, .tn = 4, .stage = 8, .prefetch = 1, .mma = 2},
    {.cpu_variant = 0, .rows = 1, .bm = 16, .bn = 64, .tm = 1, .tn = 1, .prefetch = 1, .shuffle = 2, .mma = 2},
    {.cpu_variant = 0, .rows = 1, .bm = 32, .bn = 16, .tm = 2, .tn = 4, .reqd_wg = 1, .stage = 8, .mma = 2},
    {.cpu_variant = 0, .rows = 1, .bm = 24, .bn = 12, .tm = 3, .tn = 3, .mma = 2},
    {.cpu_variant = 0, .rows = 1, .bm = 64, .bn = 32, .tm = 4, .tn = 8, .reqd_wg = 1, .stage = 8, .mma = 1},
    {.cpu_variant = 0,
     .rows = 1,
     .bm = 64,
     .bn = 64,
     .tm = 4,
     .tn = 8,
     .reqd_wg = 1,
     .stage = 8,
     .prefetch = 1,
     .shuffle = 1,
     .mma = 1},
};
static const char *const names[] = {"emu64x32", "emu32pf",  "emu16x64",  "emu32x16",
                                    "emu24x12", "mma64x32", "mma64x64pf"};
#define NVARIANTS (sizeof variants / sizeof variants[0])

/* Where products run at all (clattn_advanced.h): tiles and dims of the products' shape, the value
 * dim up to 128. */
static int mma_usable(const clattn_tiles *t, const clattn_problem *p)
{
    const int dv = p->value_dim ? p->value_dim : p->head_dim;
    return t->bm % 16 == 0 && t->bn % 8 == 0 && t->bn <= 64 && p->head_dim % 8 == 0 && dv % 8 == 0 && dv <= 128;
}

/* Products run in a warp's 16 rows by the tile's keys: tm 2 and tn bn / 4. */
static int mma_block(const clattn_tiles *ran)
{
    return !ran->mma || (ran->tm == 2 && ran->tn * 4 == ran->bn);
}

int main(void)
{
    /* mma.sync claimed for a device that does not have it: the kernel refuses to build the PTX for
     * its compiler, and the plan runs with float32 multiply-adds, right, with a note. */
    static const harness_option_test test = {.option = offsetof(clattn_tiles, mma),
                                             .option_name = "mma",
                                             .name = "tensor cores",
                                             .caps_flag = offsetof(clattn__device_caps, sm80),
                                             .device_has = harness_nvidia_sm80,
                                             .note = "tensor cores did not build",
                                             .usable = mma_usable,
                                             .tiles_ok = mma_block,
                                             .variants = variants,
                                             .names = names,
                                             .count = NVARIANTS,
                                             .problems = problems,
                                             .nproblems = NPROBLEMS,
                                             .tolerance = TOLERANCE};
    return harness_option_tests(&test);
}
