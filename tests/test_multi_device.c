/* Several devices in one call (clattn_multi.h): the split result against the reference and
 * against one device's own result, on host memory and on per-device buffers, with given and
 * measured weights, over odd sizes, GQA, padding, decode, windows, global tokens and 2-D grid
 * patterns, in float32, float16 and bfloat16 storage. With one usable device it is listed twice,
 * so that the split still runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clattn_multi.h"
#include "harness.h"
#include "storage.h"

#define TOLERANCE 2e-4

/* A case's tensors: h in float32, its random inputs rounded to p's storage type so that a float32
 * run of them is the reference (h.out_ref, h.lse_ref), and `run`, the same inputs in p's storage,
 * which the devices take. */
typedef struct {
    harness_tensors h;
    clattn_host_tensors run;
} case_tensors;

static int case_alloc(const clattn_problem *p, unsigned long long seed, const int *seq_lens, case_tensors *c)
{
    int s = harness_tensors_alloc(p, 1, seed, &c->h);
    c->h.t.seq_lens = seq_lens;
    if (!s && (s = storage_alloc(p->dtype, &c->h.t, &c->run)) != 0)
        harness_tensors_free(&c->h);
    return s;
}

static void case_free(case_tensors *c)
{
    storage_free(&c->run);
    harness_tensors_free(&c->h);
}

/* The inputs of `in` run as a single call on ctx, into out (in p's storage) and lse. */
static int single_run(clattn_context *ctx, const clattn_problem *p, const clattn_host_tensors *in, void *out,
                      float *lse)
{
    clattn_host_tensors t = *in;
    t.out.data = out;
    t.lse.data = lse;
    clattn_plan *plan = NULL;
    int s = clattn_plan_create(ctx, p, &plan);
    if (!s)
        s = clattn_plan_run_host(plan, &t);
    if (s)
        printf("  %s: %s\n", clattn_context_device_name(ctx), clattn_context_message(ctx));
    clattn_plan_free(plan);
    return s;
}

/* The reference: p in float32 on h's (rounded) inputs. */
static int reference_run(clattn_context *ref, const clattn_problem *p, case_tensors *c)
{
    clattn_problem wide = *p;
    wide.dtype = CLATTN_DTYPE_F32;
    return single_run(ref, &wide, &c->h.t, c->h.out_ref, c->h.lse_ref);
}

/* O (in p's storage, its own rounding allowed: half an ulp) and LSE against the reference. */
static double reference_error(const clattn_problem *p, const case_tensors *c, const void *out, const float *lse)
{
    return fmax(storage_error(p->dtype, out, c->h.out_ref, c->h.t.out.bytes / sizeof(float), 0.5),
                harness_max_diff(lse, c->h.lse_ref, c->h.t.lse.bytes / sizeof(float)));
}

static void check_case(clattn_multi *m, clattn_context *ref, const char *what, const clattn_problem *p,
                       const int *seq_lens, const double *weights)
{
    case_tensors c;
    if (case_alloc(p, 4242u + (unsigned)p->q_len, seq_lens, &c)) {
        check(0, "%s: allocation", what);
        return;
    }
    const size_t no = c.h.t.out.bytes / sizeof(float), nl = c.h.t.lse.bytes / sizeof(float);
    void *one_out = malloc(c.run.out.bytes);
    float *one_lse = malloc(c.run.lse.bytes), *one_wide = malloc(c.h.t.out.bytes);
    clattn_multi_plan *mp = NULL;
    int s = one_out == NULL || one_lse == NULL || one_wide == NULL ? CLATTN_STATUS_HOST_OUT_OF_MEMORY : 0;
    if (!s)
        s = reference_run(ref, p, &c);
    if (!s)
        s = single_run(clattn_multi_device(m, 0), p, &c.run, one_out, one_lse);
    if (!s && (s = clattn_multi_plan_create(m, p, weights, &mp)) != 0)
        printf("  plan: %s\n", clattn_multi_message(m));
    if (!s && (s = clattn_multi_plan_run_host(mp, &c.run)) != 0)
        printf("  run: %s\n", clattn_multi_message(m));
    char shares[128] = "";
    for (int i = 0, at = 0; !s && i < clattn_multi_device_count(m) && at < (int)sizeof shares; i++) {
        clattn_split_dim dim;
        int first, count;
        clattn_multi_plan_share(mp, i, &dim, &first, &count, NULL);
        at += snprintf(shares + at, sizeof shares - (size_t)at, "%s%s[%d,+%d)", i ? " " : "",
                       dim == CLATTN_SPLIT_KV_HEADS ? "kvh" : "b", first, count);
    }
    double e_ref = INFINITY, e_one = INFINITY;
    if (!s) {
        /* Two rounded results of float32 runs that differ in their last bits may be an ulp apart. */
        storage_widen(p->dtype, one_out, one_wide, no);
        e_ref = reference_error(p, &c, c.run.out.data, c.run.lse.data);
        e_one = fmax(storage_error(p->dtype, c.run.out.data, one_wide, no, 1.0),
                     harness_max_diff(c.run.lse.data, one_lse, nl));
    }
    check(!s && e_ref <= TOLERANCE && e_one <= TOLERANCE, "%-26s %s vs reference %.2e, vs one device %.2e", what,
          shares, e_ref, e_one);
    clattn_multi_plan_free(mp);
    free(one_wide);
    free(one_lse);
    free(one_out);
    case_free(&c);
}

/* Device i's share of a whole host tensor: `blocks` runs of `count` of the tensor's `units` per
 * block, from unit `first`. */
typedef struct {
    size_t blocks;
    int units, first, count;
} share;

static share share_of(const clattn_multi_plan *mp, const clattn_problem *p, int i)
{
    clattn_split_dim dim;
    share sh;
    clattn_multi_plan_share(mp, i, &dim, &sh.first, &sh.count, NULL);
    sh.blocks = dim == CLATTN_SPLIT_KV_HEADS ? (size_t)p->batch : 1;
    sh.units = dim == CLATTN_SPLIT_KV_HEADS ? (p->kv_heads ? p->kv_heads : p->heads) : p->batch;
    return sh;
}

/* The byte offset of block b of the share in a whole tensor of `unit`-byte units. */
static size_t share_offset(const share *sh, size_t b, size_t unit)
{
    return (b * (size_t)sh->units + (size_t)sh->first) * unit;
}

/* The per-device cl_mem entry point: each device's share copied into buffers of its own. */
static void check_enqueue(clattn_multi *m, clattn_context *ref, const char *what, const clattn_problem *p,
                          const double *weights)
{
    case_tensors c;
    if (case_alloc(p, 99u, NULL, &c)) {
        check(0, "%s: allocation", what);
        return;
    }
    const int n = clattn_multi_device_count(m);
    clattn_multi_plan *mp = NULL;
    int s = reference_run(ref, p, &c);
    if (!s && (s = clattn_multi_plan_create(m, p, weights, &mp)) != 0)
        printf("  plan: %s\n", clattn_multi_message(m));
    clattn_buffers *bufs = calloc((size_t)n, sizeof *bufs);
    cl_event *events = calloc((size_t)n, sizeof *events);
    for (int i = 0; i < n && !s; i++) {
        const share sh = share_of(mp, p, i);
        if (sh.count == 0)
            continue;
        const clattn_host_tensor *whole[] = {&c.run.q, &c.run.k, &c.run.v, &c.run.out, &c.run.lse};
        cl_mem *dev[] = {&bufs[i].q, &bufs[i].k, &bufs[i].v, &bufs[i].out, &bufs[i].lse};
        clattn_context *ctx = clattn_multi_device(m, i);
        for (int k = 0; k < 5 && !s; k++) {
            const size_t unit = whole[k]->bytes / sh.blocks / (size_t)sh.units, run = unit * (size_t)sh.count;
            cl_int rc;
            *dev[k] = clCreateBuffer(clattn_context_cl_context(ctx), CL_MEM_READ_WRITE, run * sh.blocks, NULL, &rc);
            for (size_t b = 0; b < sh.blocks && rc == CL_SUCCESS && k < 3; b++)
                rc = clEnqueueWriteBuffer(clattn_context_queue(ctx), *dev[k], CL_TRUE, b * run, run,
                                          (char *)whole[k]->data + share_offset(&sh, b, unit), 0, NULL, NULL);
            s = rc;
        }
    }
    if (!s && (s = clattn_multi_plan_enqueue(mp, bufs, events)) != 0)
        printf("  enqueue: %s\n", clattn_multi_message(m));
    for (int i = 0; i < n && !s; i++) {
        const share sh = share_of(mp, p, i);
        if (sh.count == 0)
            continue;
        const clattn_host_tensor *whole[] = {&c.run.out, &c.run.lse};
        const cl_mem dev[] = {bufs[i].out, bufs[i].lse};
        for (int k = 0; k < 2 && !s; k++) {
            const size_t unit = whole[k]->bytes / sh.blocks / (size_t)sh.units, run = unit * (size_t)sh.count;
            for (size_t b = 0; b < sh.blocks && !s; b++)
                s = clEnqueueReadBuffer(clattn_context_queue(clattn_multi_device(m, i)), dev[k], CL_TRUE, b * run, run,
                                        (char *)whole[k]->data + share_offset(&sh, b, unit), 1, &events[i], NULL);
        }
    }
    const double e = s ? INFINITY : reference_error(p, &c, c.run.out.data, c.run.lse.data);
    check(!s && e <= TOLERANCE, "%-26s per-device buffers vs reference %.2e", what, e);
    for (int i = 0; i < n && bufs != NULL; i++) {
        cl_mem all[] = {bufs[i].q, bufs[i].k, bufs[i].v, bufs[i].out, bufs[i].lse};
        for (int k = 0; k < 5; k++)
            if (all[k] != NULL)
                clReleaseMemObject(all[k]);
        if (events[i] != NULL)
            clReleaseEvent(events[i]);
    }
    free(events);
    free(bufs);
    clattn_multi_plan_free(mp);
    case_free(&c);
}

/* The device list: the first two usable devices, or the one usable device twice. */
static int device_list(char *list, size_t size)
{
    char specs[HARNESS_MAX_DEVICES][16];
    const int ndev = harness_devices(specs, HARNESS_MAX_DEVICES);
    const char *usable[2] = {NULL, NULL};
    int found = 0;
    for (int d = 0; d < ndev && found < 2; d++) {
        clattn_context *ctx = harness_open(specs[d]);
        if (ctx != NULL)
            usable[found++] = specs[d];
        clattn_context_free(ctx);
    }
    if (found == 0)
        return 0;
    if (found == 1)
        printf("one usable device: %s listed twice, so that the split logic still runs\n", usable[0]);
    snprintf(list, size, "%s,%s", usable[0], usable[found == 2 ? 1 : 0]);
    return 1;
}

int main(void)
{
    char list[64];
    if (!device_list(list, sizeof list))
        return check_failures() ? check_exit() : check_skip(HARNESS_NO_DEVICE);
    clattn_multi *m = NULL;
    clattn_context *ref = NULL;
    if (clattn_multi_create(&(clattn_multi_desc){.devices = list}, &m) ||
        clattn_context_create(&(clattn_context_desc){.device = "reference"}, &ref)) {
        check(0, "devices '%s': %s %s", list, clattn_multi_message(NULL), clattn_context_message(NULL));
        clattn_multi_free(m);
        return check_exit();
    }
    printf("devices '%s': %d contexts\n", list, clattn_multi_device_count(m));
    const double even[] = {1.0, 1.0}, skewed[] = {3.0, 1.0};
    const int lens3[] = {61, 0, 77};
    const int globals[] = {3, 40, 71};
    const clattn_problem dense = {.batch = 2, .heads = 6, .kv_heads = 3, .q_len = 77, .head_dim = 40};
    const clattn_problem causal_gqa = {.batch = 1, .heads = 8, .kv_heads = 4, .q_len = 93, .head_dim = 64, .causal = 1};
    const clattn_problem batch_split = {.batch = 3, .heads = 4, .kv_heads = 1, .q_len = 77, .head_dim = 24};
    const clattn_problem decode = {.batch = 1, .heads = 6, .kv_heads = 2, .q_len = 1, .kv_len = 301, .head_dim = 64};
    const clattn_problem window = {.batch = 1,
                                   .heads = 4,
                                   .kv_heads = 2,
                                   .q_len = 150,
                                   .head_dim = 32,
                                   .window = 1,
                                   .window_left = 13,
                                   .window_right = 6,
                                   .global_idx = globals,
                                   .num_global = 3};
    check_case(m, ref, "dense GQA even", &dense, NULL, even);
    check_case(m, ref, "dense GQA skewed", &dense, NULL, skewed);
    check_case(m, ref, "causal GQA measured", &causal_gqa, NULL, NULL);
    check_case(m, ref, "batch split padding", &batch_split, lens3, skewed);
    check_case(m, ref, "decode", &decode, NULL, even);
    check_case(m, ref, "window + globals", &window, NULL, even);
    /* 2-D patterns: every share keeps the whole grid of its heads or batch entries. */
    const int lens2[] = {63, 50};
    const clattn_problem neighborhood = {.batch = 2,
                                         .heads = 6,
                                         .kv_heads = 3,
                                         .q_len = 63,
                                         .head_dim = 40,
                                         .grid_pattern = CLATTN_GRID_NEIGHBORHOOD,
                                         .grid_h = 7,
                                         .grid_w = 9,
                                         .grid_kernel_h = 5,
                                         .grid_kernel_w = 3,
                                         .grid_dilation = 2,
                                         .causal = 1};
    const clattn_problem swin = {.batch = 3,
                                 .heads = 2,
                                 .kv_heads = 1,
                                 .q_len = 14 * 14,
                                 .head_dim = 24,
                                 .grid_pattern = CLATTN_GRID_WINDOW,
                                 .grid_h = 14,
                                 .grid_w = 14,
                                 .grid_window_size = 4,
                                 .grid_shift = 2};
    const clattn_problem criss_cross = {.batch = 1,
                                        .heads = 4,
                                        .kv_heads = 2,
                                        .q_len = 31 * 17,
                                        .head_dim = 32,
                                        .grid_pattern = CLATTN_GRID_CRISS_CROSS,
                                        .grid_h = 31,
                                        .grid_w = 17};
    check_case(m, ref, "neighborhood causal pad", &neighborhood, lens2, skewed);
    check_case(m, ref, "swin batch split padding", &swin, lens3, even);
    check_case(m, ref, "criss-cross measured", &criss_cross, NULL, NULL);
    check_enqueue(m, ref, "neighborhood heads split", &neighborhood, even);
    check_enqueue(m, ref, "heads split", &causal_gqa, skewed);
    check_enqueue(m, ref, "batch split", &batch_split, even);
    /* Storage types: every share's offset and size in 2-byte elements, LSE still float32. */
    clattn_problem dense_f16 = dense, batch_bf16 = batch_split, causal_bf16 = causal_gqa, batch_f16 = batch_split;
    dense_f16.dtype = batch_f16.dtype = CLATTN_DTYPE_F16;
    batch_bf16.dtype = causal_bf16.dtype = CLATTN_DTYPE_BF16;
    check_case(m, ref, "f16 dense GQA skewed", &dense_f16, NULL, skewed);
    check_case(m, ref, "bf16 batch split padding", &batch_bf16, lens3, skewed);
    check_case(m, ref, "bf16 causal GQA measured", &causal_bf16, NULL, NULL);
    check_enqueue(m, ref, "f16 batch split", &batch_f16, even);
    check_enqueue(m, ref, "bf16 heads split", &causal_bf16, skewed);
    /* Wildcards: every CPU device (both runtimes here are CPU devices), else every GPU (a GPU
     * machine with no CPU runtime). */
    clattn_multi *all = NULL;
    const char *wildcard = "cpu:*";
    int sc = clattn_multi_create(&(clattn_multi_desc){.devices = wildcard}, &all);
    if (sc == CLATTN_STATUS_NO_DEVICE)
        sc = clattn_multi_create(&(clattn_multi_desc){.devices = wildcard = "gpu:*"}, &all);
    check(sc == CLATTN_STATUS_OK && clattn_multi_device_count(all) >= 1, "'%s': %d device(s) %s", wildcard,
          clattn_multi_device_count(all), sc ? clattn_multi_message(NULL) : "");
    clattn_multi_free(all);
    /* A malformed list and a bad weight fail with a status, not a crash. */
    clattn_multi *bad = NULL;
    check(clattn_multi_create(&(clattn_multi_desc){.devices = "0:0,,0:0"}, &bad) == CLATTN_STATUS_INVALID_DEVICE_SPEC,
          "empty entry in the list: %s", clattn_multi_message(NULL));
    clattn_multi_plan *mp = NULL;
    const double negative[] = {1.0, -1.0};
    check(clattn_multi_plan_create(m, &dense, negative, &mp) == CLATTN_STATUS_INVALID_SIZE && mp == NULL,
          "negative weight: %s", clattn_multi_message(m));
    clattn_context_free(ref);
    clattn_multi_free(m);
    return harness_exit();
}
