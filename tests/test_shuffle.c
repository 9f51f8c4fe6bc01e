/* The GPU variant's row combines (clattn_tiles.shuffle): each row's max per key tile and its sum
 * combined across the row's work-items by a butterfly of exchanges instead of through __local once.
 * On every device, tiles that ask for the exchanges through __local (shuffle 2, the code path of
 * NVIDIA's warp shuffles with each exchange emulated) and for warp shuffles (1) match the reference
 * on every pattern the kernel runs, with and without K and V loaded a step ahead; the plan says which
 * ran, as it should: 2 wherever a row's work-items are a power of two, 1 only on an NVIDIA GPU (asked
 * of OpenCL here), else 0. And where a device's compiler refuses the warp shuffle's inline PTX (a
 * CPU's, told here that the device has warp shuffles), the plan is built without them and says so
 * to the log callback. */
#include <stdio.h>

#include "context.h" /* the device's capabilities, to claim warp shuffles for a device without */
#include "harness.h"

#define TOLERANCE 2e-4

/* GPU tiles asking for the exchanges: rows of 8 work-items (the NVIDIA row from D = 128 on), of 8
 * with K and V a step ahead (two barriers a key tile), of 8 with K and V read where they lie
 * (direct, as a tune candidate asks on NVIDIA's row), of 4 in 3 x 3 blocks, of 3 (no butterfly:
 * they run as shuffle 0); then warp shuffles on the NVIDIA rows, with K and V a step ahead on the
 * second. A variant that runs as shuffle 0 is checked on the first problem alone: the other tests
 * cover that kernel. */
static const clattn_tiles variants[] = {
    {.cpu_variant = 0, .rows = 1, .bm = 64, .bn = 32, .tm = 4, .tn = 4, .reqd_wg = 1, .stage = 8, .shuffle = 2},
    {.cpu_variant = 0, .rows = 1, .bm = 32, .bn = 16, .tm = 2, .tn = 2, .stage = 8, .prefetch = 1, .shuffle = 2},
    {.cpu_variant = 0, .rows = 1, .bm = 32, .bn = 16, .tm = 2, .tn = 2, .shuffle = 2, .direct = 1},
    {.cpu_variant = 0, .rows = 1, .bm = 24, .bn = 12, .tm = 3, .tn = 3, .shuffle = 2},
    {.cpu_variant = 0, .rows = 1, .bm = 15, .bn = 15, .tm = 5, .tn = 5, .prefetch = 1, .shuffle = 2},
    {.cpu_variant = 0, .rows = 1, .bm = 64, .bn = 32, .tm = 4, .tn = 4, .reqd_wg = 1, .stage = 8, .shuffle = 1},
    {.cpu_variant = 0,
     .rows = 1,
     .bm = 64,
     .bn = 32,
     .tm = 4,
     .tn = 8,
     .reqd_wg = 1,
     .stage = 8,
     .prefetch = 1,
     .shuffle = 1},
};
static const char *const names[] = {"local64x32", "local32pf", "local32d",    "local24x12",
                                    "local15ct3", "warp64x32", "warp64t4x8pf"};
#define NVARIANTS (sizeof variants / sizeof variants[0])

/* Where the butterfly runs at all: a power of two of a row's work-items. */
static int butterfly_usable(const clattn_tiles *t, const clattn_problem *p)
{
    (void)p;
    const int ct = t->bn / t->tn;
    return (ct & (ct - 1)) == 0;
}

int main(void)
{
    /* Warp shuffles claimed for a device that does not have them: its compiler refuses the inline
     * PTX, and the plan runs without shuffles, right, with a note. */
    static const clattn_problem *const problems[] = {HARNESS_GPU_PROBLEM_LIST};
    static const harness_option_test test = {.option = offsetof(clattn_tiles, shuffle),
                                             .option_name = "shuffle",
                                             .name = "warp shuffles",
                                             .caps_flag = offsetof(clattn__device_caps, warp_shuffle),
                                             .device_has = harness_nvidia_any,
                                             .note = "shuffles did not build",
                                             .usable = butterfly_usable,
                                             .variants = variants,
                                             .names = names,
                                             .count = NVARIANTS,
                                             .problems = problems,
                                             .nproblems = HARNESS_GPU_PROBLEMS,
                                             .tolerance = TOLERANCE};
    return harness_option_tests(&test);
}
