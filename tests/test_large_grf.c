/* Intel's large register file (clattn_tiles.large_grf): GPU tiles that ask for it match the
 * reference on every pattern the kernel runs, and the plan says it ran only on an Intel GPU (asked
 * of OpenCL), else as 0. On an Intel GPU whose compiler refuses the option the plan runs without
 * it. And with an Intel GPU claimed for a device that is not one, the option reaches a compiler that
 * refuses it (POCL's and Intel's CPU compilers answer CL_INVALID_BUILD_OPTIONS): the plan is built
 * without it, right, and says so to the log callback. */
#include <stdio.h>

#include "context.h" /* the device's capabilities, to claim an Intel GPU for a device that is not */
#include "harness.h"

#define TOLERANCE 2e-4

/* The Intel row's tiles (2 x 4 blocks), and the larger blocks the register file is for: 4 x 4 in
 * 64 x 32 tiles, with K and V a step ahead. */
static const clattn_tiles variants[] = {
    {.cpu_variant = 0, .rows = 1, .bm = 32, .bn = 32, .tm = 2, .tn = 4, .reqd_wg = 1, .large_grf = 1},
    {.cpu_variant = 0, .rows = 1, .bm = 64, .bn = 32, .tm = 4, .tn = 4, .reqd_wg = 1, .prefetch = 1, .large_grf = 1},
};
static const char *const names[] = {"grf32x32", "grf64x32pf"};
#define NVARIANTS (sizeof variants / sizeof variants[0])

int main(void)
{
    static const clattn_problem *const problems[] = {HARNESS_GPU_PROBLEM_LIST};
    static const harness_option_test test = {.option = offsetof(clattn_tiles, large_grf),
                                             .option_name = "large_grf",
                                             .name = "Intel GPU",
                                             .caps_flag = offsetof(clattn__device_caps, intel_gpu),
                                             .device_has = harness_intel_gpu,
                                             .may_refuse = 1,
                                             .note = "Intel's large register file did not build",
                                             .variants = variants,
                                             .names = names,
                                             .count = NVARIANTS,
                                             .problems = problems,
                                             .nproblems = HARNESS_GPU_PROBLEMS,
                                             .tolerance = TOLERANCE};
    return harness_option_tests(&test);
}
