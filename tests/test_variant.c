/* CLATTN_VARIANT=gpu|cpu, the developer knob that forces a kernel variant on any device with the
 * tile table's row of that variant: plans take it (forced tiles still come first), their results
 * match the reference on every pattern (some in float16 and bfloat16 storage too), and another
 * value fails plan creation with a message. */
#define _POSIX_C_SOURCE 200809L /* setenv, unsetenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TOLERANCE 2e-4

static const int globals[] = {3, 90};
static const int lens[] = {131, 60};

/* Every pattern the device kernels run, at sizes that are no tile multiples. */
static const clattn_problem problems[] = {
    {.batch = 2, .heads = 4, .kv_heads = 2, .q_len = 131, .head_dim = 64, .causal = 1},
    {.batch = 1, .heads = 2, .q_len = 97, .head_dim = 256, .value_dim = 40},
    {.batch = 1, .heads = 3, .kv_heads = 1, .q_len = 5, .kv_len = 300, .head_dim = 80, .causal = 1},
    {.batch = 2,
     .heads = 2,
     .q_len = 131,
     .head_dim = 32,
     .value_dim = 48,
     .window = 1,
     .window_left = 17,
     .window_right = 5,
     .dilation = 2,
     .global_idx = globals,
     .num_global = 2,
     .summary_block = 20,
     .extra_len = 3},
    {.batch = 1,
     .heads = 2,
     .q_len = 131,
     .head_dim = 64,
     .window = 1,
     .window_left = 9,
     .window_right = 9,
     .global_idx = globals,
     .num_global = 2,
     .global_qkv = 1},
};

/* The variant of a plan of p on dev, or -1 when plan creation fails (*status says how). */
static int plan_variant(clattn_context *dev, const clattn_problem *p, int *status)
{
    clattn_tiles t = {0};
    *status = harness_plan_tiles(dev, p, &t);
    return *status ? -1 : t.cpu_variant;
}

static void check_problem(clattn_context *dev, clattn_context *ref, const char *value, int cpu_variant, size_t i,
                          clattn_dtype dtype)
{
    clattn_problem p = problems[i];
    p.dtype = dtype;
    int status = 0;
    const int variant = plan_variant(dev, &p, &status);
    double err = 0.0;
    if (variant == cpu_variant)
        status = harness_compare(dev, ref, &p, p.batch == 2 ? lens : NULL, 1, &err);
    check(variant == cpu_variant && status == CLATTN_STATUS_OK && err <= TOLERANCE,
          "CLATTN_VARIANT=%s case %zu%s (D=%d Dv=%d Nq=%d): variant %d, status %d, max err %.2e", value, i,
          harness_storage(dtype), p.head_dim, p.value_dim ? p.value_dim : p.head_dim, p.q_len, variant, status, err);
}

/* Every problem in float32; two of them in float16 and bfloat16, other ones for each variant. */
static void check_variant(clattn_context *dev, clattn_context *ref, const char *value, int cpu_variant)
{
    setenv("CLATTN_VARIANT", value, 1);
    for (size_t i = 0; i < sizeof problems / sizeof problems[0]; i++)
        check_problem(dev, ref, value, cpu_variant, i, CLATTN_DTYPE_F32);
    check_problem(dev, ref, value, cpu_variant, 1 + (size_t)cpu_variant, CLATTN_DTYPE_F16);
    check_problem(dev, ref, value, cpu_variant, 3 + (size_t)cpu_variant, CLATTN_DTYPE_BF16);
}

/* Once per device (harness_each_variant with no tiles: the table's choice, which the knob overrides). */
static void check_device(clattn_context *dev, clattn_context *ref, const char *variant, size_t index)
{
    (void)variant;
    (void)index;
    check_variant(dev, ref, "gpu", 0);
    check_variant(dev, ref, "cpu", 1);

    /* Forced tiles come before the knob. */
    clattn_context_force_tiles(dev, &(clattn_tiles){.cpu_variant = 1, .rows = 4, .kw = 16});
    setenv("CLATTN_VARIANT", "gpu", 1);
    int status = 0;
    const int forced = plan_variant(dev, &problems[0], &status);
    check(forced == 1, "forced CPU tiles win over CLATTN_VARIANT=gpu: variant %d, status %d", forced, status);
    clattn_context_force_tiles(dev, NULL);

    setenv("CLATTN_VARIANT", "fast", 1);
    const int bad = plan_variant(dev, &problems[0], &status);
    const char *msg = clattn_context_message(dev);
    check(bad == -1 && status == CLATTN_STATUS_UNSUPPORTED && strstr(msg, "CLATTN_VARIANT") != NULL &&
              strstr(msg, "fast") != NULL,
          "CLATTN_VARIANT=fast is refused: status %d: %s", status, msg);
    unsetenv("CLATTN_VARIANT");
    const int table = plan_variant(dev, &problems[0], &status);
    check(table >= 0, "unset again: the table's tiles, status %d", status);
}

int main(void)
{
    return harness_each_variant(NULL, NULL, 0, check_device);
}
