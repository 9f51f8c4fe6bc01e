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
 * with K and V a step ahead (two barriers a key tile), of 4 in 3 x 3 blocks, of 3 (no butterfly:
 * they run as shuffle 0); then warp shuffles on the NVIDIA rows, with K and V a step ahead on the
 * second. A variant that runs as shuffle 0 is checked on the first problem alone: the other tests
 * cover that kernel. */
static const clattn_tiles variants[] = {
    {.cpu_variant = 0, .rows = 1, .bm = 64, .bn = 32, .tm = 4, .tn = 4, .reqd_wg = 1, .stage = 8, .shuffle = 2},
    {.cpu_variant = 0, .rows = 1, .bm = 32, .bn = 16, .tm = 2, .tn = 2, .stage = 8, .prefetch = 1, .shuffle = 2},
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
static const char *const names[] = {"local64x32", "local32pf", "local24x12", "local15ct3", "warp64x32", "warp64t4x8pf"};
#define NVARIANTS (sizeof variants / sizeof variants[0])

/* The shuffles a plan of p runs with (its tiles' shuffle), or -1 when it cannot be made. */
static int plan_shuffle(clattn_context *dev, const clattn_problem *p)
{
    clattn_tiles t = {0};
    return harness_plan_tiles(dev, p, &t) ? -1 : t.shuffle;
}

static void check_variant(clattn_context *dev, clattn_context *ref, const char *variant, size_t index)
{
    const clattn_tiles *t = &variants[index];
    const int ct = t->bn / t->tn, butterfly = (ct & (ct - 1)) == 0;
    const int expect = !butterfly || (t->shuffle == 1 && !harness_nvidia_gpu(dev, 0)) ? 0 : t->shuffle;
    for (size_t i = 0; i < (expect ? HARNESS_GPU_PROBLEMS : 1); i++) {
        const clattn_problem *p = &harness_gpu_problems[i];
        const int shuffle = plan_shuffle(dev, p);
        double err = 0.0;
        const int status = harness_compare(dev, ref, p, p->batch == 2 ? harness_gpu_lens : NULL, 1, &err);
        check(status == CLATTN_STATUS_OK && err <= TOLERANCE && shuffle == expect,
              "%-12s case %zu (D=%d Nq=%d): shuffle %d (expected %d), max err %.2e %s", variant, i, p->head_dim,
              p->q_len, shuffle, expect, err, status ? clattn_status_string(status) : "");
    }
}

/* Warp shuffles claimed for a device that does not have them: its compiler refuses the inline PTX,
 * and the plan runs without shuffles, right, with a note. */
static const harness_capability warp_shuffles = {.caps_flag = offsetof(clattn__device_caps, warp_shuffle),
                                                 .min_major = 0,
                                                 .name = "warp shuffles",
                                                 .option = offsetof(clattn_tiles, shuffle),
                                                 .option_name = "shuffle",
                                                 .note = "shuffles did not build"};

static void check_device(clattn_context *dev, clattn_context *ref, const char *variant, size_t index)
{
    check_variant(dev, ref, variant, index);
    if (index == NVARIANTS - 1)
        harness_check_claimed(dev, ref, &warp_shuffles, variants, names, NVARIANTS, TOLERANCE);
}

int main(void)
{
    return harness_each_variant(variants, names, NVARIANTS, check_device);
}
