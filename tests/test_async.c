/* The GPU variant's asynchronous copies (clattn_tiles.async): with K and V loaded a step ahead
 * (prefetch 1), each key tile's V and the next tile's K copied straight to __local instead of
 * through registers. On every device, tiles that ask for the copies' contract emulated (async 2:
 * each destination set to NaN when its copy is issued and written when it is waited for, so that a
 * read before the wait, or a copy issued while the destination is still read, changes the results)
 * and for cp.async itself (1) match the reference on every pattern the kernel runs, on float32
 * multiply-adds and on emulated tensor cores, with either row combine; the plan says which ran, as
 * it should: 2 wherever K and V are loaded a step ahead from float32 storage, 1 only on an NVIDIA
 * GPU of compute capability 8.0 or more (asked of OpenCL here), else 0. Where the PTX does not build
 * (a CPU's compiler, told here that its device has cp.async), the plan runs without it and says so
 * to the log callback. Infinities and NaN in K and V with the copies are test_numerics' (backend
 * gpu16ma). */
#include <stdio.h>

#include "context.h" /* the device's capabilities, to claim cp.async for a device without */
#include "harness.h"

#define TOLERANCE 2e-4

/* harness_gpu_problems, then D = 30 and Dv = 13 (vectors of 2 and of 1 float: copies of 8 and 4
 * bytes), then float16 storage, which runs without the copies whatever the tiles ask. */
static const clattn_problem d30 = {
    .batch = 1, .heads = 3, .kv_heads = 1, .q_len = 41, .kv_len = 58, .head_dim = 30, .value_dim = 13};
static const clattn_problem f16 = {
    .batch = 1, .heads = 2, .q_len = 45, .head_dim = 64, .causal = 1, .dtype = CLATTN_DTYPE_F16};
static const clattn_problem *const problems[] = {HARNESS_GPU_PROBLEM_LIST, &d30, &f16};
#define NPROBLEMS (sizeof problems / sizeof problems[0])

/* GPU tiles asking for the copies: 32 x 16 in 4 x 4 blocks (three barriers a key tile); 15 x 15
 * in 5 x 5 blocks with the butterfly through __local (a row's 3 work-items: no butterfly, three
 * barriers) and 16 x 16 in 2 x 4 blocks with it (two barriers); the emulated tensor cores in 32 x
 * 16 and, with the butterfly, 16 x 64 tiles; 32 x 16 without prefetch (run as async 0); then
 * cp.async on NVIDIA's rows with warp shuffles, on float32 multiply-adds and on tensor cores. A
 * variant that runs as async 0 is checked on the first problem alone: the other tests cover that
 * kernel. */
static const clattn_tiles variants[] = {
    {.cpu_variant = 0, .rows = 1, .bm = 32, .bn = 16, .tm = 4, .tn = 4, .stage = 8, .prefetch = 1, .async = 2},
    {.cpu_variant = 0, .rows = 1, .bm = 15, .bn = 15, .tm = 5, .tn = 5, .prefetch = 1, .shuffle = 2, .async = 2},
    {.cpu_variant = 0, .rows = 1, .bm = 16, .bn = 16, .tm = 2, .tn = 4, .prefetch = 1, .shuffle = 2, .async = 2},
    {.cpu_variant = 0, .rows = 1, .bm = 32, .bn = 16, .tm = 4, .tn = 4, .prefetch = 1, .mma = 2, .async = 2},
    {.cpu_variant = 0,
     .rows = 1,
     .bm = 16,
     .bn = 64,
     .tm = 1,
     .tn = 1,
     .prefetch = 1,
     .shuffle = 2,
     .mma = 2,
     .async = 2},
    {.cpu_variant = 0, .rows = 1, .bm = 32, .bn = 16, .tm = 4, .tn = 4, .stage = 8, .async = 2},
    {.cpu_variant = 0,
     .rows = 1,
     .bm = 64,
     .bn = 32,
     .tm = 4,
     .tn = 8,
     .reqd_wg = 1,
     .stage = 8,
     .prefetch = 1,
     .shuffle = 1,
     .async = 1},
    {.cpu_variant = 0,
     .rows = 1,
     .bm = 64,
     .bn = 32,
     .tm = 4,
     .tn = 8,
     .reqd_wg = 1,
     .stage = 8,
     .prefetch = 1,
     .shuffle = 1,
     .mma = 1,
     .async = 1},
};
static const char *const names[] = {"emu32x16",    "emu15ct3",  "emu16bfly", "emu32mma",
                                    "emu16x64mma", "nopf32x16", "cp64x32",   "cp64x32mma"};
#define NVARIANTS (sizeof variants / sizeof variants[0])

/* Where the copies run at all (clattn_advanced.h): K and V loaded a step ahead, float32 storage. */
static int async_usable(const clattn_tiles *t, const clattn_problem *p)
{
    return t->prefetch && p->dtype == CLATTN_DTYPE_F32;
}

int main(void)
{
    /* cp.async claimed for a device that does not have it: the kernel refuses to build the PTX for
     * its compiler, and the plan runs with K and V through registers, right, with a note. */
    static const harness_option_test test = {.option = offsetof(clattn_tiles, async),
                                             .option_name = "async",
                                             .name = "cp.async",
                                             .caps_flag = offsetof(clattn__device_caps, sm80),
                                             .device_has = harness_nvidia_sm80,
                                             .note = "asynchronous copies did not build",
                                             .usable = async_usable,
                                             .variants = variants,
                                             .names = names,
                                             .count = NVARIANTS,
                                             .problems = problems,
                                             .nproblems = NPROBLEMS,
                                             .tolerance = TOLERANCE};
    return harness_option_tests(&test);
}
