/* Dense and causal attention on every OpenCL device, both kernel variants, against the
 * double-precision reference over sizes that are not tile multiples, GQA, decode and padding. */
#include <stdio.h>

#include "harness.h"

#define TOLERANCE 2e-4

typedef struct {
    clattn_problem p;
    const int *seq_lens;
} dense_case;

static void check_case(clattn_context *dev, clattn_context *ref, const char *variant, const dense_case *c)
{
    double err = 0.0;
    const int s = harness_compare(dev, ref, &c->p, c->seq_lens, 1, &err);
    check(s == CLATTN_STATUS_OK && err <= TOLERANCE,
          "%-6s B=%d H=%d Hkv=%d Nq=%d Nk=%d D=%d Dv=%d causal=%d pad=%d: max err %.2e %s", variant, c->p.batch,
          c->p.heads, c->p.kv_heads, c->p.q_len, c->p.kv_len, c->p.head_dim, c->p.value_dim, c->p.causal,
          c->seq_lens != NULL, err, s ? clattn_status_string(s) : "");
}

static dense_case cases[64];
static int num_cases;

static void add_cases(void)
{
    static const int pad2[] = {5, 0}, pad3[] = {1000, 333, 1};
    static const int lens[] = {1, 7, 63, 64, 65, 257, 1000};
    static const int dims[] = {13, 16, 30, 64, 80, 128, 256};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        for (int causal = 0; causal < 2; causal++)
            cases[num_cases++] =
                (dense_case){{.batch = 1, .heads = 2, .q_len = lens[i], .head_dim = 64, .causal = causal}, NULL};
    /* Head dims odd, of 2 mod 4 (float2 vectors) and multiples of 4. */
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        cases[num_cases++] =
            (dense_case){{.batch = 1, .heads = 1, .q_len = 65, .head_dim = dims[i], .causal = (int)i % 2}, NULL};
    /* GQA, Dv != D, decode (Nq = 1; once with D = 30, Dv = 13), Nq < Nk and Nq > Nk, custom scale, padding. */
    cases[num_cases++] = (dense_case){{.batch = 2, .heads = 6, .kv_heads = 2, .q_len = 63, .head_dim = 64}, NULL};
    cases[num_cases++] = (dense_case){
        {.batch = 1, .heads = 4, .kv_heads = 2, .q_len = 1, .kv_len = 333, .head_dim = 30, .value_dim = 13}, NULL};
    cases[num_cases++] = (dense_case){
        {.batch = 1, .heads = 4, .kv_heads = 1, .q_len = 65, .head_dim = 80, .value_dim = 16, .causal = 1}, NULL};
    cases[num_cases++] = (dense_case){
        {.batch = 1, .heads = 8, .kv_heads = 2, .q_len = 1, .kv_len = 1000, .head_dim = 128, .causal = 1}, NULL};
    cases[num_cases++] =
        (dense_case){{.batch = 1, .heads = 2, .q_len = 7, .kv_len = 257, .head_dim = 64, .causal = 1}, NULL};
    cases[num_cases++] =
        (dense_case){{.batch = 1, .heads = 2, .q_len = 65, .kv_len = 7, .head_dim = 16, .causal = 1}, NULL};
    cases[num_cases++] = (dense_case){{.batch = 1, .heads = 2, .q_len = 63, .head_dim = 64, .scale = 0.5f}, NULL};
    cases[num_cases++] = (dense_case){{.batch = 2, .heads = 2, .q_len = 7, .head_dim = 16, .causal = 1}, pad2};
    cases[num_cases++] = (dense_case){{.batch = 3, .heads = 2, .kv_heads = 1, .q_len = 1000, .head_dim = 64}, pad3};
    cases[num_cases++] = (dense_case){{.batch = 3, .heads = 2, .q_len = 1000, .head_dim = 64, .causal = 1}, pad3};
}

/* The variants (main's list) that run the full grid: the first of each kernel variant. */
#define FULL_CPU 0
#define FULL_GPU 4

static void run_variant(clattn_context *dev, clattn_context *ref, const char *variant, size_t index)
{
    for (int i = 0; i < num_cases; i++)
        if (index == FULL_CPU || index == FULL_GPU || i % 3 == 0 || cases[i].p.q_len == 1000)
            check_case(dev, ref, variant, &cases[i]);
}

int main(void)
{
    add_cases();
    /* CPU variant: 8-, 16- and 32-key score passes (32: two vectors per row, and P.V two column
     * blocks, with an odd block left when Dv / 16 is odd), even and odd row counts; 8 x 32 takes
     * P.V in blocks of 4 rows by 4 column vectors where Dv = 64 (the default Xeon tile's shape).
     * GPU variant: the NVIDIA and AMD rows' tiles (NVIDIA's below D = 128: 4 x 8 blocks), and tiles
     * that are no powers of two (8 x 4 work-items of 3 x 3 scores) with K and V loaded a step ahead. */
    static const clattn_tiles variants[] = {
        {.cpu_variant = 1, .rows = 7, .kw = 32},
        {.cpu_variant = 1, .rows = 8, .kw = 8},
        {.cpu_variant = 1, .rows = 5, .kw = 16},
        {.cpu_variant = 1, .rows = 8, .kw = 32},
        {.cpu_variant = 0, .rows = 1, .bm = 64, .bn = 32, .tm = 4, .tn = 4, .reqd_wg = 1, .stage = 8},
        {.cpu_variant = 0, .rows = 1, .bm = 64, .bn = 32, .tm = 4, .tn = 8, .reqd_wg = 1, .stage = 8},
        {.cpu_variant = 0, .rows = 1, .bm = 24, .bn = 12, .tm = 3, .tn = 3, .stage = 4, .prefetch = 1}};
    static const char *const names[] = {"cpu7x32", "cpu8x8", "cpu5x16", "cpu8x32", "gpu64", "gpu64t4x8", "gpu24x12"};
    return harness_each_variant(variants, names, sizeof variants / sizeof variants[0], run_variant);
}
