/* Device limits the library must honour itself, since POCL enforces neither local memory nor (without
 * POCL_MAX_WORK_GROUP_SIZE) small work-groups: emulated small limits, the device's real largest
 * allocation, and malformed device specs. CMake runs it a second time with POCL_MAX_WORK_GROUP_SIZE=64. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tuning.h"

#define TOLERANCE 2e-4

static void report(int ok, const char *what, const char *detail)
{
    check(ok, "%s%s%s", what, detail[0] ? ": " : "", detail);
}

/* ------------------------------------------------------------------------------------------- */
/* Problems under limits: the plan adapts its tiles and matches the reference, or fails with a   */
/* status that names the limit.                                                                  */

typedef struct {
    size_t max_wg;
    cl_ulong local_mem, max_alloc; /* 0: the device's own */
} limits;

typedef struct {
    const char *what;
    limits lim;
    int forced; /* use `tiles` instead of the table */
    clattn_tiles tiles;
    clattn_problem p;
    const int *seq_lens;
    int status;        /* wanted, at plan creation or at the run */
    const char *value; /* text a failure's message must contain */
} limit_case;

#define GPU(bm_, bn_, tm_, tn_)                                                                                        \
    1,                                                                                                                 \
    {                                                                                                                  \
        .cpu_variant = 0, .rows = 1, .bm = bm_, .bn = bn_, .tm = tm_, .tn = tn_, .reqd_wg = 1, .stage = 8              \
    }
#define CPU8                                                                                                           \
    1,                                                                                                                 \
    {                                                                                                                  \
        .cpu_variant = 1, .rows = 8, .kw = 16                                                                          \
    }
#define TABLE                                                                                                          \
    0,                                                                                                                 \
    {                                                                                                                  \
        .cpu_variant = 0                                                                                               \
    }

static const int side_globals[] = {0, 40};
static const int side_lens[] = {65, 30};

/* The GPU variant's __local bytes (cl/attention_gpu.cl, host/tuning.c): 4 * (bm * QS + bn * max(QS, Dv) + bm * PS +
 * bm * bn / tn + an edge tile's flag), each array rounded up to 16 bytes, with QS = D + 4 here (D = 64: 68; 128:
 * 132; 256: 260) and PS about bn (1 x 1 tiles at D = 256: 260 + 260 + 1 + 1 + 1 floats, 2128 bytes rounded). Too large
 * a tile shrinks (fewer keys while bn >= bm, else fewer row threads, ..., then fewer rows per work-item) until it fits.
 */
static const limit_case limit_cases[] = {
    {"wg 16, 4 KiB local: 64 x 32 -> 8 x 4",
     {16, 4096, 0},
     GPU(64, 32, 4, 4),
     {.batch = 1, .heads = 2, .q_len = 65, .head_dim = 64, .causal = 1},
     NULL,
     CLATTN_STATUS_OK,
     NULL},
    {"wg 16, 4 KiB local, D 256: 1 x 1 tiles",
     {16, 4096, 0},
     GPU(64, 32, 4, 4),
     {.batch = 1, .heads = 1, .q_len = 257, .head_dim = 256},
     NULL,
     CLATTN_STATUS_OK,
     NULL},
    {"2128 bytes local, D 256: 1 x 1 tiles need 2128",
     {0, 2128, 0},
     GPU(64, 32, 4, 4),
     {.batch = 1, .heads = 1, .q_len = 257, .head_dim = 256, .causal = 1},
     NULL,
     CLATTN_STATUS_OK,
     NULL},
    {"wg 8, 1 KiB local, D 64 Dv 16: side keys, 1 x 1 tiles",
     {8, 1024, 0},
     GPU(64, 4, 4, 4),
     {.batch = 2,
      .heads = 4,
      .kv_heads = 2,
      .q_len = 65,
      .head_dim = 64,
      .value_dim = 16,
      .window = 1,
      .window_left = 8,
      .window_right = 8,
      .global_idx = side_globals,
      .num_global = 2,
      .summary_block = 16,
      .extra_len = 5},
     side_lens,
     CLATTN_STATUS_OK,
     NULL},
    {"wg 48 (not a power of two): WG 128 -> 32",
     {48, 0, 0},
     GPU(64, 32, 4, 4),
     {.batch = 1, .heads = 2, .q_len = 65, .head_dim = 64},
     NULL,
     CLATTN_STATUS_OK,
     NULL},
    {"wg 1: one work-item per work-group",
     {1, 0, 0},
     GPU(64, 32, 4, 4),
     {.batch = 1, .heads = 1, .q_len = 33, .head_dim = 16, .causal = 1},
     NULL,
     CLATTN_STATUS_OK,
     NULL},
    {"device limits, WG 256 (128 x 32, 4 x 4)",
     {0, 0, 0},
     GPU(128, 32, 4, 4),
     {.batch = 1, .heads = 2, .q_len = 257, .head_dim = 64, .causal = 1},
     NULL,
     CLATTN_STATUS_OK,
     NULL},
    {"device limits, 128 x 128 tiles, D 256",
     {0, 0, 0},
     GPU(128, 128, 4, 4),
     {.batch = 1, .heads = 1, .q_len = 65, .head_dim = 256},
     NULL,
     CLATTN_STATUS_OK,
     NULL},
    /* NVIDIA's 48 KB: the NVIDIA rows fit D = 64 (4 x 8 blocks, 36,368 bytes) and shrink to 32 x 32 at D = 128
     * (39,424) and to 16 x 16 at D = 256; AMD's 64 KB holds 64 x 32 at D = 128 (61,952). */
    {"48 KiB local, D 64: NVIDIA row",
     {0, 49152, 0},
     GPU(64, 32, 4, 8),
     {.batch = 2, .heads = 4, .kv_heads = 2, .q_len = 200, .head_dim = 64, .causal = 1},
     NULL,
     CLATTN_STATUS_OK,
     NULL},
    {"48 KiB local, D 128: 64 x 32 -> 32 x 32",
     {0, 49152, 0},
     GPU(64, 32, 4, 4),
     {.batch = 1, .heads = 4, .kv_heads = 1, .q_len = 150, .kv_len = 170, .head_dim = 128, .causal = 1},
     NULL,
     CLATTN_STATUS_OK,
     NULL},
    {"48 KiB local, D 256 Dv 200: shrunk",
     {0, 49152, 0},
     GPU(64, 32, 4, 4),
     {.batch = 1, .heads = 2, .q_len = 100, .head_dim = 256, .value_dim = 200, .window = 1, .window_left = 40},
     NULL,
     CLATTN_STATUS_OK,
     NULL},
    {"64 KiB local, D 128: AMD row",
     {0, 65536, 0},
     GPU(64, 32, 4, 4),
     {.batch = 1, .heads = 2, .q_len = 130, .head_dim = 128},
     NULL,
     CLATTN_STATUS_OK,
     NULL},
    {"16 bytes local, CPU variant (uses none)",
     {0, 16, 0},
     CPU8,
     {.batch = 1, .heads = 2, .q_len = 65, .head_dim = 64, .causal = 1},
     NULL,
     CLATTN_STATUS_OK,
     NULL},
    {"16 bytes local, table tiles",
     {0, 16, 0},
     TABLE,
     {.batch = 1, .heads = 2, .q_len = 65, .head_dim = 64},
     NULL,
     CLATTN_STATUS_OK,
     NULL},
    {"16 bytes local, GPU variant: no tile fits",
     {0, 16, 0},
     GPU(64, 32, 4, 4),
     {.batch = 1, .heads = 1, .q_len = 65, .head_dim = 64},
     NULL,
     CLATTN_STATUS_DEVICE_LIMIT,
     "16"},
    {"2127 bytes local, D 256: 1 x 1 tiles need 2128",
     {0, 2127, 0},
     GPU(64, 32, 4, 4),
     {.batch = 1, .heads = 1, .q_len = 65, .head_dim = 256},
     NULL,
     CLATTN_STATUS_DEVICE_LIMIT,
     "2127"},
    /* B=1, H=1, N=64, D=16: every tensor and the key panels are 4096 bytes (LSE 256). */
    {"max alloc 4096 = largest tensor, CPU variant",
     {0, 0, 4096},
     CPU8,
     {.batch = 1, .heads = 1, .q_len = 64, .head_dim = 16},
     NULL,
     CLATTN_STATUS_OK,
     NULL},
    {"max alloc 4096 = largest tensor, GPU variant",
     {0, 0, 4096},
     GPU(64, 32, 4, 4),
     {.batch = 1, .heads = 1, .q_len = 64, .head_dim = 16},
     NULL,
     CLATTN_STATUS_OK,
     NULL},
    {"max alloc 4095, CPU variant: key panels",
     {0, 0, 4095},
     CPU8,
     {.batch = 1, .heads = 1, .q_len = 64, .head_dim = 16},
     NULL,
     CLATTN_STATUS_DEVICE_LIMIT,
     "4095"},
    {"max alloc 4095, GPU variant: tensors",
     {0, 0, 4095},
     GPU(64, 32, 4, 4),
     {.batch = 1, .heads = 1, .q_len = 64, .head_dim = 16},
     NULL,
     CLATTN_STATUS_DEVICE_LIMIT,
     "4095"},
    {"max alloc 4096, larger problem",
     {0, 0, 4096},
     TABLE,
     {.batch = 2, .heads = 2, .q_len = 65, .head_dim = 64},
     NULL,
     CLATTN_STATUS_DEVICE_LIMIT,
     "4096"},
};

/* Plan creation and one host run, for the cases that must fail: the status and where it came. */
static int attempt(clattn_context *dev, const clattn_problem *p, const int *seq_lens, const char **stage)
{
    harness_tensors h;
    clattn_plan *plan = NULL;
    int s = harness_tensors_alloc(p, 1, 99, &h);
    *stage = "allocating test tensors";
    if (!s) {
        s = clattn_plan_create(dev, p, &plan);
        *stage = "plan_create";
    }
    if (!s) {
        h.t.seq_lens = seq_lens;
        s = clattn_plan_run_host(plan, &h.t);
        *stage = "run_host";
    }
    clattn_plan_free(plan);
    harness_tensors_free(&h);
    return s;
}

/* Whether the table gives dev's plans of p the GPU variant (on a GPU device): asked before any
 * limit is emulated. */
static int table_gives_gpu(clattn_context *dev, const clattn_problem *p)
{
    clattn_tiles t = {0};
    return harness_plan_tiles(dev, p, &t) == CLATTN_STATUS_OK && !t.cpu_variant;
}

static void check_limit_case(const char *spec, clattn_context *ref, const limit_case *c)
{
    char detail[1200];
    clattn_context *dev = NULL;
    int s = clattn_context_create(&(clattn_context_desc){.device = spec}, &dev);
    if (s) {
        snprintf(detail, sizeof detail, "context: %s", clattn_context_message(NULL));
        report(0, c->what, detail);
        return;
    }
    /* A table case under an emulated __local limit is about the CPU variant, which uses none; on a
     * GPU the table's GPU tiles meet the GPU variant's own cases instead. */
    if (!c->forced && c->lim.local_mem != 0 && table_gives_gpu(dev, &c->p)) {
        printf("SKIP %s: the table gives this device the GPU variant (the GPU variant's cases cover it)\n", c->what);
        clattn_context_free(dev);
        return;
    }
    clattn_context_emulate_limits(dev, c->lim.max_wg, c->lim.local_mem, c->lim.max_alloc);
    if (c->forced)
        clattn_context_force_tiles(dev, &c->tiles);
    if (c->status == CLATTN_STATUS_OK) {
        double err = 0.0;
        s = harness_compare(dev, ref, &c->p, c->seq_lens, 1, &err);
        const char *msg = s ? clattn_context_message(dev) : "";
        /* A limit set to the layout's exact bytes: a compiler may add a few of its own (NVIDIA's
         * reports 4 more at D = 256), and then the plan refuses after building, as it must. */
        const char *needs = strstr(msg, " work-items and ");
        const unsigned long bytes = needs != NULL ? strtoul(needs + strlen(" work-items and "), NULL, 10) : 0;
        const int compiler_bytes = s == CLATTN_STATUS_DEVICE_LIMIT && strstr(msg, "the compiled kernel") != NULL &&
                                   bytes > c->lim.local_mem && bytes <= c->lim.local_mem + 64;
        snprintf(detail, sizeof detail, "max err %.2e%s%s%s%s", err, s ? ", " : "", s ? clattn_status_string(s) : "",
                 compiler_bytes ? ": the compiled kernel needs more than its layout here: " : "",
                 compiler_bytes ? msg : "");
        report((s == CLATTN_STATUS_OK && err <= TOLERANCE) || compiler_bytes, c->what, detail);
    } else {
        /* Twice: the first attempt may leave programs in the context's cache, the second nothing. */
        const char *stage = "";
        attempt(dev, &c->p, c->seq_lens, &stage);
        const cl_uint refs = harness_context_refs(dev);
        s = attempt(dev, &c->p, c->seq_lens, &stage);
        const char *msg = clattn_context_message(dev);
        snprintf(detail, sizeof detail, "%s -> %d (%s), context references %u -> %u: %s", stage, s,
                 clattn_status_string(s), refs, harness_context_refs(dev), msg);
        report(s == c->status && strstr(msg, c->value) != NULL && refs == harness_context_refs(dev), c->what, detail);
    }
    clattn_context_free(dev);
}

/* ------------------------------------------------------------------------------------------- */
/* The device's own largest allocation, exceeded by one key tensor: the failures must come from  */
/* the checks, before anything is allocated (the host tensors are calloc'ed and never touched).  */

typedef struct {
    clattn_problem p;
    size_t k_bytes;
} huge_problem;

/* Decode over Nk keys of D = 256, with K (and V) just over the device's largest allocation.
 * Returns 0 when no such problem is valid (K would need a 32-bit index overflow). */
static int make_huge_problem(clattn_context *dev, huge_problem *h)
{
    cl_ulong max_alloc = 0;
    clGetDeviceInfo(clattn_context_cl_device(dev), CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc, &max_alloc, NULL);
    const cl_ulong row = 256 * sizeof(float);
    const cl_ulong nk = max_alloc / row + 16;
    if (nk > (1u << 28) || nk * 256 > 0x7fffffffu)
        return 0;
    h->p = (clattn_problem){.batch = 1, .heads = 1, .q_len = 1, .kv_len = (int)nk, .head_dim = 256, .causal = 1};
    h->k_bytes = (size_t)(nk * row);
    return 1;
}

static void check_cpu_plan_scratch(clattn_context *dev, const huge_problem *h)
{
    clattn_plan *plan = NULL;
    clattn_context_force_tiles(dev, &(clattn_tiles){.cpu_variant = 1, .rows = 8, .kw = 16});
    clattn_problem p = h->p;
    p.q_len = CLATTN_SPLIT_MAX_QUERIES + 1; /* past the decode path, which reads K unpacked */
    const int s = clattn_plan_create(dev, &p, &plan);
    char detail[1200];
    snprintf(detail, sizeof detail, "%d (%s): %s", s, clattn_status_string(s), clattn_context_message(dev));
    report(s == CLATTN_STATUS_DEVICE_LIMIT && plan == NULL, "K over max alloc, CPU variant: plan_create", detail);
    clattn_plan_free(plan);

    /* Decode reads K where it lies: no panel, so the plan fits (the caller's K cannot, later). */
    plan = NULL;
    const int d = clattn_plan_create(dev, &h->p, &plan);
    snprintf(detail, sizeof detail, "%d (%s): %s", d, clattn_status_string(d), clattn_context_message(dev));
    report(d == CLATTN_STATUS_OK && clattn_plan_scratch_bytes(plan) < h->k_bytes,
           "K over max alloc, CPU variant, decode: plan_create", detail);
    clattn_plan_free(plan);
}

/* Whether the message names the size K needs (which only K and V need). */
static int names_k_bytes(const char *msg, const huge_problem *h)
{
    char bytes[32];
    snprintf(bytes, sizeof bytes, "%zu", h->k_bytes);
    return strstr(msg, bytes) != NULL;
}

static void check_small_device_buffers(clattn_context *dev, clattn_plan *plan, const huge_problem *h)
{
    cl_int rc;
    cl_mem small = clCreateBuffer(clattn_context_cl_context(dev), CL_MEM_READ_WRITE, 4096, NULL, &rc);
    char detail[1200];
    int s = rc;
    if (rc == CL_SUCCESS) {
        const clattn_buffers b = {.q = small, .k = small, .v = small, .out = small};
        s = clattn_plan_enqueue(plan, NULL, &b, 0, NULL, NULL);
        clReleaseMemObject(small);
    }
    const char *msg = clattn_context_message(dev);
    snprintf(detail, sizeof detail, "%d (%s): %s", s, clattn_status_string(s), msg);
    report(s == CLATTN_STATUS_BUFFER_TOO_SMALL && names_k_bytes(msg, h),
           "K over max alloc: enqueue with 4096-byte buffers", detail);
}

static void check_host_run_over_max_alloc(clattn_context *dev, clattn_plan *plan, const huge_problem *h)
{
    float *q = calloc(256, sizeof(float)), *out = calloc(256, sizeof(float));
    float *k = calloc(h->k_bytes, 1), *v = calloc(h->k_bytes, 1); /* untouched: virtual memory only */
    if (q == NULL || out == NULL || k == NULL || v == NULL) {
        printf("SKIP K over max alloc: run_host: the host cannot reserve 2 x %zu bytes\n", h->k_bytes);
    } else {
        const clattn_host_tensors t = {.q = {q, 256 * sizeof(float)},
                                       .k = {k, h->k_bytes},
                                       .v = {v, h->k_bytes},
                                       .out = {out, 256 * sizeof(float)}};
        const int s = clattn_plan_run_host(plan, &t);
        const char *msg = clattn_context_message(dev);
        char detail[1200];
        snprintf(detail, sizeof detail, "%d (%s): %s", s, clattn_status_string(s), msg);
        report(s == CLATTN_STATUS_DEVICE_LIMIT && names_k_bytes(msg, h), "K over max alloc: run_host", detail);
    }
    free(v);
    free(k);
    free(out);
    free(q);
}

static void check_real_max_alloc(const char *spec)
{
    clattn_context *dev = NULL;
    if (clattn_context_create(&(clattn_context_desc){.device = spec}, &dev)) {
        report(0, "K over max alloc: context", clattn_context_message(NULL));
        return;
    }
    huge_problem h;
    if (!make_huge_problem(dev, &h)) {
        printf("SKIP K over max alloc: the device's largest allocation exceeds what 32-bit indices address\n");
        clattn_context_free(dev);
        return;
    }
    check_cpu_plan_scratch(dev, &h);
    clattn_plan *plan = NULL;
    clattn_context_force_tiles(
        dev, &(clattn_tiles){.cpu_variant = 0, .rows = 1, .bm = 64, .bn = 32, .tm = 4, .tn = 4}); /* small scratch */
    const int s = clattn_plan_create(dev, &h.p, &plan);
    report(s == CLATTN_STATUS_OK, "K over max alloc, GPU variant: plan_create", s ? clattn_context_message(dev) : "");
    if (s == CLATTN_STATUS_OK) {
        check_small_device_buffers(dev, plan, &h);
        check_host_run_over_max_alloc(dev, plan, &h);
    }
    clattn_plan_free(plan);
    clattn_context_free(dev);
}

/* ------------------------------------------------------------------------------------------- */
/* Dense checks as in test_dense, with work-groups that POCL_MAX_WORK_GROUP_SIZE=64 forbids.    */

static void check_dense_grid(const char *spec, clattn_context *ref)
{
    static const struct {
        const char *name;
        int forced;
        clattn_tiles tiles;
    } variants[] = {
        {"table", TABLE}, {"wg64", GPU(32, 32, 4, 4)}, {"wg128", GPU(64, 32, 4, 4)}, {"wg256", GPU(128, 32, 4, 4)}};
    static const clattn_problem problems[] = {
        {.batch = 1, .heads = 2, .q_len = 1, .kv_len = 65, .head_dim = 64, .causal = 1},
        {.batch = 1, .heads = 2, .q_len = 63, .head_dim = 16},
        {.batch = 2, .heads = 2, .kv_heads = 1, .q_len = 65, .head_dim = 64, .causal = 1},
        {.batch = 1, .heads = 1, .q_len = 257, .head_dim = 256, .causal = 1},
    };
    clattn_context *dev = NULL;
    if (clattn_context_create(&(clattn_context_desc){.device = spec}, &dev)) {
        report(0, "dense grid: context", clattn_context_message(NULL));
        return;
    }
    size_t max_wg = 0;
    clGetDeviceInfo(clattn_context_cl_device(dev), CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, NULL);
    printf("device max work-group size: %zu\n", max_wg);
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        clattn_context_force_tiles(dev, variants[v].forced ? &variants[v].tiles : NULL);
        for (size_t i = 0; i < sizeof problems / sizeof problems[0]; i++) {
            const clattn_problem *p = &problems[i];
            double err = 0.0;
            const int s = harness_compare(dev, ref, p, NULL, 1, &err);
            char what[160], detail[160];
            snprintf(what, sizeof what, "dense %-5s B=%d H=%d Nq=%d Nk=%d D=%d causal=%d", variants[v].name, p->batch,
                     p->heads, p->q_len, p->kv_len ? p->kv_len : p->q_len, p->head_dim, p->causal);
            snprintf(detail, sizeof detail, "max err %.2e%s%s", err, s ? ", " : "", s ? clattn_status_string(s) : "");
            report(s == CLATTN_STATUS_OK && err <= TOLERANCE, what, detail);
        }
    }
    clattn_context_free(dev);
}

/* ------------------------------------------------------------------------------------------- */
/* Device specs: malformed ones and ones that name no device, reported through message(NULL).   */

static void check_device_specs(void)
{
    static const struct {
        const char *spec;
        int status;
    } specs[] = {
        {"bogus", CLATTN_STATUS_INVALID_DEVICE_SPEC},
        {"1:", CLATTN_STATUS_INVALID_DEVICE_SPEC},
        {"0:0x", CLATTN_STATUS_INVALID_DEVICE_SPEC},
        {"-1:0", CLATTN_STATUS_INVALID_DEVICE_SPEC},
        {"0:-2", CLATTN_STATUS_INVALID_DEVICE_SPEC},
        {"0:999", CLATTN_STATUS_NO_DEVICE},
        {"99:0", CLATTN_STATUS_NO_DEVICE},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        clattn_context *ctx = (clattn_context *)&ctx; /* must come back NULL */
        const int s = clattn_context_create(&(clattn_context_desc){.device = specs[i].spec}, &ctx);
        const char *msg = clattn_context_message(NULL);
        char what[64], detail[1200];
        snprintf(what, sizeof what, "context_create(\"%s\")", specs[i].spec);
        snprintf(detail, sizeof detail, "%d (%s): %s", s, clattn_status_string(s), msg);
        report(s == specs[i].status && ctx == NULL && strstr(msg, specs[i].spec) != NULL, what, detail);
        if (s == CLATTN_STATUS_OK)
            clattn_context_free(ctx);
    }
    const int s = clattn_context_create(&(clattn_context_desc){.device = "reference"}, NULL);
    report(s == CLATTN_STATUS_NULL_ARGUMENT, "context_create(out = NULL)", clattn_status_string(s));
}

int main(void)
{
    char specs[HARNESS_MAX_DEVICES][16];
    const int ndev = harness_devices(specs, HARNESS_MAX_DEVICES);
    if (ndev == 0)
        return check_skip(HARNESS_NO_DEVICE);
    const char *env = getenv("POCL_MAX_WORK_GROUP_SIZE");
    printf("POCL_MAX_WORK_GROUP_SIZE=%s\n", env != NULL ? env : "(unset)");
    clattn_context *ref = NULL;
    if (clattn_context_create(&(clattn_context_desc){.device = "reference"}, &ref)) {
        check(0, "reference context: %s", clattn_context_message(NULL));
        return check_exit();
    }
    check_device_specs();
    for (int d = 0; d < ndev; d++) {
        clattn_context *usable = harness_open(specs[d]); /* to skip an unusable device; the checks make their own */
        if (usable == NULL)
            continue;
        clattn_context_free(usable);
        for (size_t i = 0; i < sizeof limit_cases / sizeof limit_cases[0]; i++)
            check_limit_case(specs[d], ref, &limit_cases[i]);
        check_real_max_alloc(specs[d]);
        check_dense_grid(specs[d], ref);
    }
    clattn_context_free(ref);
    return harness_exit();
}
