/* Sliding window, global tokens, summary tokens, extra keys and their combinations on every
 * OpenCL device and both kernel variants, against the reference; plus the identities that must
 * hold bit for bit (a window as wide as the sequence is dense, (N, 0) is causal), and the patterns
 * in float16 and bfloat16 storage. */
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define TOLERANCE 2e-4

static void report(int ok, const char *variant, const char *what, const clattn_problem *p, double err)
{
    check(ok, "%-7s %-26s Nq=%d Nk=%d D=%d L=%d R=%d dil=%d causal=%d G=%d b=%d Nx=%d: %.2e", variant, what, p->q_len,
          p->kv_len ? p->kv_len : p->q_len, p->head_dim, p->window_left, p->window_right, p->dilation, p->causal,
          p->num_global, p->summary_block, p->extra_len, err);
}

static void check_case(clattn_context *dev, clattn_context *ref, const char *variant, const char *what,
                       const clattn_problem *p, const int *seq_lens)
{
    double err = 0.0;
    const int s = harness_compare(dev, ref, p, seq_lens, 1, &err);
    report(s == CLATTN_STATUS_OK && err <= TOLERANCE, variant, what, p, err);
}

/* Runs a and b on dev with the same inputs; they must agree bit for bit. */
static void check_identical(clattn_context *dev, const char *variant, const char *what, const clattn_problem *a,
                            const clattn_problem *b)
{
    harness_tensors h;
    if (harness_tensors_alloc(a, 0, 777, &h)) {
        report(0, variant, what, a, -1);
        return;
    }
    clattn_plan *pa = NULL, *pb = NULL;
    int s = clattn_plan_create(dev, a, &pa);
    if (!s)
        s = clattn_plan_run_host(pa, &h.t);
    memcpy(h.out_ref, h.t.out.data, h.t.out.bytes);
    memset(h.t.out.data, 0xff, h.t.out.bytes); /* NaN: a second run that writes nothing fails */
    if (!s)
        s = clattn_plan_create(dev, b, &pb);
    if (!s)
        s = clattn_plan_run_host(pb, &h.t);
    const int same = !s && memcmp(h.out_ref, h.t.out.data, h.t.out.bytes) == 0;
    report(same, variant, what, a, same ? 0.0 : 1.0);
    clattn_plan_free(pb);
    clattn_plan_free(pa);
    harness_tensors_free(&h);
}

static clattn_problem window(int n, int d, int left, int right, int causal)
{
    return (clattn_problem){.batch = 1,
                            .heads = 2,
                            .q_len = n,
                            .head_dim = d,
                            .window = 1,
                            .window_left = left,
                            .window_right = right,
                            .causal = causal};
}

static void run_device(clattn_context *dev, clattn_context *ref, const char *variant, int full)
{
    const int n = 257;
    const int sides[] = {0, 1, 3, 17, n - 1, n, n + 5};
    const int nsides = sizeof sides / sizeof sides[0];
    for (int i = 0; i < nsides; i++)
        for (int j = 0; j < nsides; j++)
            if (full || i == j || j == 0)
                check_case(dev, ref, variant, "window",
                           &(clattn_problem){.batch = 1,
                                             .heads = 2,
                                             .q_len = n,
                                             .head_dim = 64,
                                             .window = 1,
                                             .window_left = sides[i],
                                             .window_right = sides[j],
                                             .causal = (i + j) % 3 == 0},
                           NULL);
    clattn_problem dil = window(1000, 64, 40, 17, 0);
    dil.dilation = 3;
    check_case(dev, ref, variant, "window dilated", &dil, NULL);
    dil.causal = 1;
    dil.kv_heads = 1;
    check_case(dev, ref, variant, "window dilated causal GQA", &dil, NULL);
    /* float32 bands of CLATTN_LANES_BAND_KEYS keys and more, but fewer than the keys, run on the
     * panels' kernel with its band edges: 451 and 501 keys of 1200, GQA, padding, a global token. */
    static const int wide_lens[] = {1200, 1000}, wide_global[] = {3};
    clattn_problem wide_band = window(1200, 64, 250, 200, 0);
    wide_band.batch = 2;
    wide_band.heads = 4;
    wide_band.kv_heads = 2;
    wide_band.global_idx = wide_global;
    wide_band.num_global = 1;
    check_case(dev, ref, variant, "window of 451 keys + global, GQA", &wide_band, wide_lens);
    wide_band.window_left = 500;
    wide_band.window_right = 0;
    wide_band.causal = 1;
    check_case(dev, ref, variant, "causal window of 501 keys + global", &wide_band, wide_lens);

    /* Identities that must hold bit for bit, below and above the length where the CPU variant
     * switches to 64-key chunks (tuning.h). */
    static const int identity_lens[] = {n, 2100};
    for (int i = 0; i < 2; i++) {
        const int len = identity_lens[i];
        clattn_problem dense = {.batch = 1, .heads = 2, .q_len = len, .head_dim = 64};
        clattn_problem wide = window(len, 64, len, len, 0);
        check_identical(dev, variant, "window (N,N) == dense", &wide, &dense);
        clattn_problem causal = dense;
        causal.causal = 1;
        clattn_problem left_only = window(len, 64, len, 0, 0);
        check_identical(dev, variant, "window (N,0) == causal", &left_only, &causal);
    }
    check_case(dev, ref, variant, "causal GQA, 64-key chunks",
               &(clattn_problem){.batch = 1, .heads = 4, .kv_heads = 2, .q_len = 2100, .head_dim = 64, .causal = 1},
               NULL);

    /* Global tokens: {}, {0}, {0, N/2, N-1}, every token; with and without Qg/Kg/Vg. */
    static int every[257];
    for (int i = 0; i < n; i++)
        every[i] = n - 1 - i; /* any order */
    const int g1[] = {0}, g3[] = {n / 2, 0, n - 1};
    const struct {
        const int *idx;
        int count;
    } sets[] = {{NULL, 0}, {g1, 1}, {g3, 3}, {every, n}};
    for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++)
        for (int causal_flag = 0; causal_flag < 2; causal_flag++) {
            clattn_problem p = window(n, 64, 5, 3, causal_flag);
            p.global_idx = sets[s].idx;
            p.num_global = sets[s].count;
            check_case(dev, ref, variant, "window + global", &p, NULL);
            if (sets[s].count > 0 && (full || s == 2)) {
                p.global_qkv = 1;
                check_case(dev, ref, variant, "window + global (Qg,Kg,Vg)", &p, NULL);
            }
        }
    /* Global rows over long keys (the GPU variant splits their keys): GQA, padding, with and
     * without Qg/Kg/Vg, summary and extra keys beside the second. */
    static const int long_globals[] = {1499, 0, 700}, long_lens[] = {1500, 900};
    clattn_problem longer = {.batch = 2,
                             .heads = 4,
                             .kv_heads = 2,
                             .q_len = 1500,
                             .head_dim = 64,
                             .window = 1,
                             .window_left = 16,
                             .window_right = 16,
                             .global_idx = long_globals,
                             .num_global = 3,
                             .global_qkv = 1};
    check_case(dev, ref, variant, "long global rows (Qg,Kg,Vg)", &longer, long_lens);
    longer.global_qkv = 0;
    longer.causal = 1;
    longer.summary_block = 50;
    longer.extra_len = 2;
    check_case(dev, ref, variant, "long global rows + summary", &longer, long_lens);
    /* Summary tokens: b = 1, b = N, b > N (no token when the left-over keys merge), left-over
     * keys (257 mod 16 = 1, 257 mod 60 = 17), under both tail rules; extra keys. */
    const int blocks[] = {1, 16, 60, n, n + 3};
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++)
        for (int tail = CLATTN_SUMMARY_TAIL_MERGE; tail <= CLATTN_SUMMARY_TAIL_OWN; tail++)
            for (int causal_flag = 0; causal_flag < 2; causal_flag++) {
                clattn_problem p = window(n, 64, 8, 8, causal_flag);
                p.summary_block = blocks[b];
                p.summary_tail = (clattn_summary_tail)tail;
                check_case(dev, ref, variant, tail ? "window + summary (own)" : "window + summary (merge)", &p, NULL);
            }
    clattn_problem extra = window(65, 80, 4, 4, 1);
    extra.extra_len = 5;
    extra.value_dim = 16;
    check_case(dev, ref, variant, "window + extra keys", &extra, NULL);

    /* Padding that cuts through a window and a summary block; all patterns at once. */
    static const int lens[] = {257, 100, 37, 0};
    clattn_problem all = {.batch = 4,
                          .heads = 4,
                          .kv_heads = 2,
                          .q_len = n,
                          .head_dim = 64,
                          .value_dim = 32,
                          .window = 1,
                          .window_left = 20,
                          .window_right = 7,
                          .causal = 1,
                          .global_idx = g3,
                          .num_global = 3,
                          .summary_block = 30,
                          .extra_len = 3};
    check_case(dev, ref, variant, "everything + padding", &all, lens);
    all.summary_tail = CLATTN_SUMMARY_TAIL_OWN;
    check_case(dev, ref, variant, "everything + padding (own)", &all, lens);
    all.summary_tail = CLATTN_SUMMARY_TAIL_MERGE;
    all.summary_block = 50; /* 37 valid keys: fewer than a block */
    check_case(dev, ref, variant, "everything + Nk_valid < b", &all, lens);
    all.summary_block = 30;
    all.causal = 0;
    all.dilation = 2;
    check_case(dev, ref, variant, "everything dilated + padding", &all, lens);
    /* Decode: one query at the last position with a causal window, plus Nq < Nk. */
    clattn_problem decode = {.batch = 1,
                             .heads = 8,
                             .kv_heads = 2,
                             .q_len = 1,
                             .kv_len = 1000,
                             .head_dim = 128,
                             .window = 1,
                             .window_left = 100,
                             .window_right = 0,
                             .causal = 1};
    check_case(dev, ref, variant, "decode causal window", &decode, NULL);
    /* 1000 keys in blocks of 64: 40 left over join the last block, which only the last
     * position sees (decode and the last of 7 rows); padding {1000, 990} cuts it. */
    static const int decode_lens[] = {1000, 990};
    decode.summary_block = 64;
    decode.batch = 2;
    check_case(dev, ref, variant, "decode causal merged summary", &decode, decode_lens);
    decode.summary_tail = CLATTN_SUMMARY_TAIL_OWN;
    check_case(dev, ref, variant, "decode causal summary (own)", &decode, decode_lens);
    decode.batch = 1;
    decode.q_len = 7;
    decode.global_idx = g3;
    decode.num_global = 3;
    check_case(dev, ref, variant, "Nq<Nk window+global+summary", &decode, NULL);
    decode.summary_tail = CLATTN_SUMMARY_TAIL_MERGE;
    check_case(dev, ref, variant, "Nq<Nk window+global+summary", &decode, NULL);
}

/* Storage types (SPEC.md, "Element types"): every pattern again with Q, K, V, O (Qg, Kg, Vg, Kx,
 * Vx) in float16 and bfloat16, against the reference on the same rounded inputs. One head
 * dimension pair, and query groups of at least 8 rows, so that the cases share their programs
 * (Intel's runtime takes seconds to build one). */
/* A case of run_stored: 8 heads, D = 64, Dv = 32. */
#define STORED_CASE(...)                                                                                               \
    {                                                                                                                  \
        .heads = 8, .head_dim = 64, .value_dim = 32, __VA_ARGS__                                                       \
    }

static void run_stored(clattn_context *dev, clattn_context *ref, const char *variant)
{
    static const int g3[] = {128, 0, 256}, lens[] = {257, 100, 37, 0}, decode_lens[] = {1000, 990};
    static const struct {
        const char *what;
        clattn_problem p;
        const int *seq_lens;
    } cases[] = {
        {"everything + padding",
         STORED_CASE(.batch = 4, .kv_heads = 2, .q_len = 257, .window = 1, .window_left = 20, .window_right = 7,
                     .dilation = 2, .causal = 1, .global_idx = g3, .num_global = 3, .summary_block = 30,
                     .extra_len = 3),
         lens},
        {"window + global (Qg,Kg,Vg)",
         STORED_CASE(.batch = 1, .kv_heads = 2, .q_len = 257, .window = 1, .window_left = 5, .window_right = 3,
                     .global_idx = g3, .num_global = 3, .global_qkv = 1),
         NULL},
        {"dense", STORED_CASE(.batch = 1, .q_len = 65), NULL},
        {"Nq<Nk causal", STORED_CASE(.batch = 1, .kv_heads = 2, .q_len = 7, .kv_len = 1000, .causal = 1), NULL},
        {"decode + summary",
         STORED_CASE(.batch = 2, .kv_heads = 1, .q_len = 1, .kv_len = 1000, .causal = 1, .window = 1,
                     .window_left = 700, .summary_block = 64),
         decode_lens},
    };
    for (clattn_dtype dtype = CLATTN_DTYPE_F16; dtype <= CLATTN_DTYPE_BF16; dtype++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            clattn_problem p = cases[c].p;
            p.dtype = dtype;
            double err = 0.0;
            const int s = harness_compare(dev, ref, &p, cases[c].seq_lens, 1, &err);
            char label[64];
            snprintf(label, sizeof label, "%s%s", cases[c].what, harness_storage(dtype));
            report(s == CLATTN_STATUS_OK && err <= TOLERANCE, variant, label, &p, err);
        }
}

static void run_variant(clattn_context *dev, clattn_context *ref, const char *variant, size_t index)
{
    run_device(dev, ref, variant, index == 0);
    if (index != 1) /* the first CPU tiles and the GPU tiles */
        run_stored(dev, ref, variant);
}

int main(void)
{
    /* CPU variant: narrow windows with query rows in vector lanes (cl/attention_lanes.cl) and as
     * dense runs. GPU variant: small tiles, so that windows and side keys cross many tile edges,
     * with K and V staged when needed (4 x 4 blocks, which POCL 3.1 ran wrong with the skipped
     * rescale's branch ahead of V's staging: cl/attention_gpu.cl) and loaded a step ahead (which
     * crosses from the band's tiles to the side keys'), and read where they lie (ARM Mali's row:
     * direct, asked with prefetch, which it runs without). */
    static const clattn_tiles variants[] = {
        {.cpu_variant = 1, .rows = 6, .kw = 16, .lanes = 1},
        {.cpu_variant = 1, .rows = 8, .kw = 32},
        {.cpu_variant = 0, .rows = 1, .bm = 32, .bn = 16, .tm = 4, .tn = 4, .stage = 8},
        {.cpu_variant = 0, .rows = 1, .bm = 32, .bn = 16, .tm = 2, .tn = 2, .stage = 8, .prefetch = 1},
        {.cpu_variant = 0, .rows = 1, .bm = 32, .bn = 16, .tm = 2, .tn = 2, .prefetch = 1, .direct = 1}};
    static const char *const names[] = {"cpu6", "cpu8x32", "gpu32x16", "gpu32x16p", "gpu32x16d"};
    return harness_each_variant(variants, names, sizeof variants / sizeof variants[0], run_variant);
}
