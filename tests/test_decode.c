/* Decode: plans with at most CLATTN_SPLIT_MAX_QUERIES query rows take the split-over-keys path
 * on the CPU variant (attention_split, then combine_splits). Every case runs against the
 * reference: 1 to 4 query rows, key counts around the panel and split sizes, GQA and MQA (more
 * group rows than one tile holds), odd head dims, Dv != D, padding, windows, dilation, global,
 * summary and extra keys, and O and LSE both. The GPU variant runs the same cases through its
 * own split (cl/decode_gpu.cl), whose row blocks hold up to 16 rows of a query group, with K and V
 * staged and (gpud, the tiles' `direct`) read where they lie. */
#include <stdio.h>

#include "harness.h"
#include "tuning.h"

#define TOLERANCE 2e-4

static void check_case(clattn_context *dev, clattn_context *ref, const char *variant, const char *what,
                       const clattn_problem *p, const int *seq_lens)
{
    double err = 0.0;
    const int s = harness_compare(dev, ref, p, seq_lens, 1, &err);
    check(s == CLATTN_STATUS_OK && err <= TOLERANCE,
          "%-6s %-24s%s B=%d H=%d Hkv=%d Nq=%d Nk=%d D=%d Dv=%d: status %d, max err %.2e", variant, what,
          harness_storage(p->dtype), p->batch, p->heads, p->kv_heads, p->q_len, p->kv_len, p->head_dim, p->value_dim, s,
          err);
}

/* The split in float16 and bfloat16 storage: odd head dims (scalar loads) with MQA, and the side
 * keys (globals, summary, extra keys; one global in padding). */
static void run_stored(clattn_context *dev, clattn_context *ref, const char *variant)
{
    static const int globals[] = {0, 7, 500};
    static const int side_lens[] = {1201, 300};
    clattn_problem odd = {
        .batch = 2, .heads = 16, .kv_heads = 1, .q_len = 1, .kv_len = 777, .head_dim = 7, .value_dim = 20};
    clattn_problem side = {.batch = 2,
                           .heads = 8,
                           .kv_heads = 1,
                           .q_len = 2,
                           .kv_len = 1201,
                           .head_dim = 64,
                           .causal = 1,
                           .window = 1,
                           .window_left = 100,
                           .global_idx = globals,
                           .num_global = 3,
                           .summary_block = 64,
                           .extra_len = 5};
    for (clattn_dtype dtype = CLATTN_DTYPE_F16; dtype <= CLATTN_DTYPE_BF16; dtype++) {
        odd.dtype = side.dtype = dtype;
        check_case(dev, ref, variant, "MQA D=7 Dv=20", &odd, NULL);
        check_case(dev, ref, variant, "window+global+summary+x", &side, side_lens);
    }
}

/* The GPU split with forced sizes (some of clattn tune's candidates, and odd ones): results match
 * the reference, the plan reports the sizes it ran with, and sizes out of range fail plan creation. */
static void run_forced_splits(clattn_context *dev, clattn_context *ref, const char *variant)
{
    static const clattn_split_tiles splits[] = {{64, 16, 2, 16}, {256, 64, 0, 1}, {96, 32, 3, 64}, {32, 8, 1, 2}};
    static const clattn_split_tiles bad[] = {{48, 32, 0, 0}, {128, 128, 0, 0}, {0, 0, 33, 0}, {0, 0, 0, 257}};
    const clattn_problem p = {
        .batch = 1, .heads = 12, .kv_heads = 2, .q_len = 2, .kv_len = 3001, .head_dim = 64, .causal = 1};
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) {
        const clattn_split_tiles *f = &splits[i];
        char what[64];
        snprintf(what, sizeof what, "split %d %d %d %d", f->wg, f->bn, f->rb, f->groups_per_cu);
        clattn_context_force_split_tiles(dev, f);
        check_case(dev, ref, variant, what, &p, NULL);
        clattn_plan *plan = NULL;
        clattn_split_tiles used = {0};
        int s = clattn_plan_create(dev, &p, &plan);
        if (!s)
            s = clattn_plan_split_tiles(plan, &used);
        clattn_plan_free(plan);
        const int rb = f->rb != 0 ? f->rb : 8; /* the default block holds the query group's 12 rows up to 8 */
        check(s == CLATTN_STATUS_OK && used.wg == f->wg && used.bn == f->bn && used.rb == rb &&
                  used.groups_per_cu == f->groups_per_cu,
              "%-6s %s: the plan ran wg %d bn %d rb %d groups/cu %d (status %d)", variant, what, used.wg, used.bn,
              used.rb, used.groups_per_cu, s);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clattn_context_force_split_tiles(dev, &bad[i]);
        clattn_plan *plan = NULL;
        const int s = clattn_plan_create(dev, &p, &plan);
        check(s == CLATTN_STATUS_UNSUPPORTED && plan == NULL, "%-6s split %d %d %d %d refused: status %d, %s", variant,
              bad[i].wg, bad[i].bn, bad[i].rb, bad[i].groups_per_cu, s, clattn_context_message(dev));
        clattn_plan_free(plan);
    }
    clattn_context_force_split_tiles(dev, NULL);
}

static void run_variant(clattn_context *dev, clattn_context *ref, const char *variant, size_t index)
{
    if (index == 3) /* gpu */
        run_forced_splits(dev, ref, variant);
    if (index == 0 || index >= 3) /* cpu6 and the GPU tiles */
        run_stored(dev, ref, variant);
    static const int lens[] = {1, 31, 33, 256, 257, 1000, 3001};
    for (int q = 1; q <= CLATTN_SPLIT_MAX_QUERIES; q++)
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            if (lens[i] < q)
                continue;
            const clattn_problem p = {
                .batch = 1, .heads = 8, .kv_heads = 2, .q_len = q, .kv_len = lens[i], .head_dim = 64, .causal = q > 1};
            check_case(dev, ref, variant, "GQA 4", &p, NULL);
        }
    /* MQA: 16 group rows, several tiles of one kv head; odd D (scalar dot products), Dv != D. */
    check_case(dev, ref, variant, "MQA D=7 Dv=20",
               &(clattn_problem){
                   .batch = 2, .heads = 16, .kv_heads = 1, .q_len = 1, .kv_len = 777, .head_dim = 7, .value_dim = 20},
               NULL);
    check_case(dev, ref, variant, "MHA D=80 Nq=3",
               &(clattn_problem){.batch = 1, .heads = 3, .q_len = 3, .kv_len = 2049, .head_dim = 80, .causal = 1},
               NULL);
    /* Long keys: many splits; 96 rows of one kv head's group: several row blocks. (Shapes whose
     * programs earlier cases built: Intel's runtime takes seconds per program.) */
    check_case(dev, ref, variant, "long keys GQA 4",
               &(clattn_problem){
                   .batch = 1, .heads = 32, .kv_heads = 8, .q_len = 1, .kv_len = 20001, .head_dim = 128, .causal = 1},
               NULL);
    check_case(dev, ref, variant, "MQA 32 heads Nq=3",
               &(clattn_problem){
                   .batch = 2, .heads = 32, .kv_heads = 1, .q_len = 3, .kv_len = 1333, .head_dim = 64, .causal = 1},
               NULL);
    /* Padding: entry 1 has 100 valid keys of 1500, entry 2 none at all. */
    static const int seq_lens[] = {1500, 100, 0};
    check_case(dev, ref, variant, "padding",
               &(clattn_problem){
                   .batch = 3, .heads = 4, .kv_heads = 2, .q_len = 1, .kv_len = 1500, .head_dim = 128, .causal = 1},
               seq_lens);
    check_case(dev, ref, variant, "causal window 512,0",
               &(clattn_problem){.batch = 1,
                                 .heads = 32,
                                 .kv_heads = 8,
                                 .q_len = 1,
                                 .kv_len = 4000,
                                 .head_dim = 128,
                                 .causal = 1,
                                 .window = 1,
                                 .window_left = 512,
                                 .window_right = 0},
               NULL);
    check_case(dev, ref, variant, "window dilated Nq=2",
               &(clattn_problem){.batch = 1,
                                 .heads = 4,
                                 .kv_heads = 4,
                                 .q_len = 2,
                                 .kv_len = 1000,
                                 .head_dim = 32,
                                 .window = 1,
                                 .window_left = 300,
                                 .window_right = 5,
                                 .dilation = 3},
               NULL);
    static const int globals[] = {0, 7, 500};
    static const int side_lens[] = {1201, 300}; /* global 500 lies in entry 1's padding */
    check_case(dev, ref, variant, "window+global+summary+x",
               &(clattn_problem){.batch = 2,
                                 .heads = 8,
                                 .kv_heads = 2,
                                 .q_len = 1,
                                 .kv_len = 1201,
                                 .head_dim = 64,
                                 .causal = 1,
                                 .window = 1,
                                 .window_left = 100,
                                 .window_right = 0,
                                 .global_idx = globals,
                                 .num_global = 3,
                                 .summary_block = 64,
                                 .extra_len = 5},
               side_lens);
    /* Every rule at once with Nq = 3: entry 2's two valid keys make all its rows padding. */
    static const int all_lens[] = {2500, 1800, 2};
    check_case(dev, ref, variant, "everything Nq=3 + padding",
               &(clattn_problem){.batch = 3,
                                 .heads = 8,
                                 .kv_heads = 2,
                                 .q_len = 3,
                                 .kv_len = 2500,
                                 .head_dim = 64,
                                 .causal = 1,
                                 .window = 1,
                                 .window_left = 700,
                                 .window_right = 0,
                                 .dilation = 2,
                                 .global_idx = (const int[]){3, 1000, 2400},
                                 .num_global = 3,
                                 .summary_block = 100,
                                 .extra_len = 4},
               all_lens);
}

int main(void)
{
    static const clattn_tiles variants[] = {
        {.cpu_variant = 1, .rows = 6, .kw = 16},
        {.cpu_variant = 1, .rows = 4, .kw = 8},
        {.cpu_variant = 1, .rows = 5, .kw = 32},
        {.cpu_variant = 0, .rows = 1, .bm = 16, .bn = 32, .tm = 2, .tn = 4},
        {.cpu_variant = 0, .rows = 1, .bm = 16, .bn = 32, .tm = 2, .tn = 4, .direct = 1}};
    static const char *const names[] = {"cpu6", "cpu4", "cpu5x32", "gpu", "gpud"};
    return harness_each_variant(variants, names, sizeof variants / sizeof variants[0], run_variant);
}
