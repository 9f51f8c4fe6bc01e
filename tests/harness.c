/* Test helpers shared by the device tests: see harness.h. Tests may print; the library never. */
#include "harness.h"
#include "context.h" /* host/: a context's capabilities and log callback (check_claimed) */
#include "dtype.h"   /* host/: the library's own float32 <-> float16 / bfloat16 rounding */
#include "random.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CL/cl_ext.h> /* CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV, after clattn.h sets the OpenCL version */

int harness_devices(char specs[][16], int max)
{
    clattn_device_info devices[HARNESS_MAX_DEVICES];
    int count = 0;
    if (max > HARNESS_MAX_DEVICES)
        max = HARNESS_MAX_DEVICES;
    if (clattn_device_list(devices, max, &count) != CLATTN_STATUS_OK)
        return 0;
    if (count > max)
        count = max;
    for (int d = 0; d < count; d++)
        memcpy(specs[d], devices[d].spec, sizeof devices[d].spec);
    return count;
}

static char skipped[400]; /* why the first unusable device was left out; empty when none was */

static void skip_device(const char *spec, const char *why)
{
    char line[sizeof skipped];
    snprintf(line, sizeof line, "device %s: %s", spec, why);
    printf("SKIP %s\n", line);
    if (skipped[0] == '\0')
        memcpy(skipped, line, sizeof skipped);
}

/* 1 when the OpenCL runtime of device `spec` works here, without clattn: it makes a context and
 * builds a one-line kernel. Else 0 with the reason (OpenCL code, start of the build log) in why. */
static int runtime_works(const char *spec, char *why, size_t size)
{
    static const char *source = "kernel void probe(global float *x) { x[get_global_id(0)] = 1.0f; }";
    clattn_device_info devices[HARNESS_MAX_DEVICES];
    int count = 0, d = 0;
    if (clattn_device_list(devices, HARNESS_MAX_DEVICES, &count) != CLATTN_STATUS_OK)
        count = 0;
    while (d < count && d < HARNESS_MAX_DEVICES && strcmp(devices[d].spec, spec) != 0)
        d++;
    if (d >= count || d >= HARNESS_MAX_DEVICES) {
        snprintf(why, size, "not in the device list");
        return 0;
    }
    cl_device_id device = devices[d].id;
    cl_int rc = CL_SUCCESS;
    cl_context context = clCreateContext(NULL, 1, &device, NULL, NULL, &rc);
    cl_program program = rc == CL_SUCCESS ? clCreateProgramWithSource(context, 1, &source, NULL, &rc) : NULL;
    if (rc == CL_SUCCESS)
        rc = clBuildProgram(program, 1, &device, "", NULL, NULL);
    if (rc != CL_SUCCESS) {
        size_t bytes = 0;
        char *log = NULL;
        if (program != NULL &&
            clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, 0, NULL, &bytes) == CL_SUCCESS)
            log = calloc(bytes + 1, 1);
        if (log != NULL)
            clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, bytes, log, NULL);
        snprintf(why, size, "its runtime cannot make a context or build a one-line kernel (OpenCL error %d) %s", rc,
                 log != NULL ? log : "");
        free(log);
    }
    if (program != NULL)
        clReleaseProgram(program);
    if (context != NULL)
        clReleaseContext(context);
    return rc == CL_SUCCESS;
}

clattn_context *harness_open(const char *spec)
{
    char why[sizeof skipped - 32];
    if (!runtime_works(spec, why, sizeof why)) {
        skip_device(spec, why);
        return NULL;
    }
    /* The runtime works, so a failure from here on is clattn's own: the test fails. */
    clattn_context *ctx = NULL;
    if (clattn_context_create(&(clattn_context_desc){.device = spec}, &ctx)) {
        check(0, "device %s: clattn_context_create: %s", spec, clattn_context_message(NULL));
        return NULL;
    }
    printf("device %s: %s\n", spec, clattn_context_device_name(ctx));
    return ctx;
}

int harness_exit(void)
{
    const int status = check_exit();
    return status == 0 && skipped[0] != '\0' ? check_skip(skipped) : status;
}

int harness_each_variant(const clattn_tiles *tiles, const char *const *names, size_t count, harness_body body)
{
    char specs[HARNESS_MAX_DEVICES][16];
    const int ndev = harness_devices(specs, HARNESS_MAX_DEVICES);
    if (ndev == 0)
        return check_skip(HARNESS_NO_DEVICE);
    clattn_context *ref = NULL;
    if (clattn_context_create(&(clattn_context_desc){.device = "reference"}, &ref)) {
        check(0, "reference context: %s", clattn_context_message(NULL));
        return check_exit();
    }
    for (int d = 0; d < ndev; d++) {
        clattn_context *dev = harness_open(specs[d]);
        if (dev == NULL)
            continue;
        for (size_t v = 0; v < (tiles != NULL ? count : 1); v++) {
            clattn_context_force_tiles(dev, tiles != NULL ? &tiles[v] : NULL);
            body(dev, ref, tiles != NULL ? names[v] : "table", v);
        }
        clattn_context_free(dev);
    }
    clattn_context_free(ref);
    return harness_exit();
}

static int alloc_tensor(clattn_host_tensor *t, size_t bytes, int random, unsigned long long *seed)
{
    t->bytes = bytes;
    t->data = calloc(bytes ? bytes : 1, 1);
    if (t->data == NULL)
        return CLATTN_STATUS_HOST_OUT_OF_MEMORY;
    if (random)
        random_normal(t->data, bytes / sizeof(float), seed);
    return CLATTN_STATUS_OK;
}

/* The tensors of a set, in one order: the inputs, then out (OUT_INDEX) and lse (LSE_INDEX). */
#define TENSOR_COUNT 10
#define OUT_INDEX 3
#define LSE_INDEX 4

static clattn_host_tensor *tensor_of(clattn_host_tensors *t, int i)
{
    clattn_host_tensor *const all[TENSOR_COUNT] = {&t->q,  &t->k,  &t->v,  &t->out, &t->lse,
                                                   &t->qg, &t->kg, &t->vg, &t->kx,  &t->vx};
    return all[i];
}

static int has_storage(clattn_dtype dtype)
{
    return dtype == CLATTN_DTYPE_F16 || dtype == CLATTN_DTYPE_BF16;
}

/* h->stored: every tensor of h->t but LSE in the storage type, LSE shared with h->t. */
static int alloc_stored(harness_tensors *h)
{
    for (int i = 0; i < TENSOR_COUNT; i++) {
        const clattn_host_tensor *from = tensor_of(&h->t, i);
        clattn_host_tensor *to = tensor_of(&h->stored, i);
        if (i == LSE_INDEX || from->data == NULL) {
            *to = i == LSE_INDEX ? *from : (clattn_host_tensor){NULL, 0};
            continue;
        }
        to->bytes = from->bytes / sizeof(float) * clattn__dtype_size(h->dtype);
        to->data = calloc(to->bytes ? to->bytes : 1, 1);
        if (to->data == NULL)
            return CLATTN_STATUS_HOST_OUT_OF_MEMORY;
    }
    harness_tensors_store(h);
    return CLATTN_STATUS_OK;
}

void harness_tensors_store(harness_tensors *h)
{
    if (!has_storage(h->dtype))
        return;
    for (int i = 0; i < TENSOR_COUNT; i++) {
        if (i == OUT_INDEX || i == LSE_INDEX)
            continue;
        float *from = tensor_of(&h->t, i)->data;
        void *to = tensor_of(&h->stored, i)->data;
        for (size_t e = 0; from != NULL && e < tensor_of(&h->t, i)->bytes / sizeof(float); e++) {
            clattn__store_element(h->dtype, to, e, from[e]);
            from[e] = clattn__load_element(h->dtype, to, e);
        }
    }
}

int harness_tensors_alloc(const clattn_problem *problem, int with_lse, unsigned long long seed, harness_tensors *h)
{
    memset(h, 0, sizeof *h);
    clattn_problem p = *problem;
    if (p.kv_heads == 0)
        p.kv_heads = p.heads;
    if (p.kv_len == 0)
        p.kv_len = p.q_len;
    if (p.value_dim == 0)
        p.value_dim = p.head_dim;
    const size_t f = sizeof(float);
    const size_t q = (size_t)p.batch * p.heads * p.q_len * p.head_dim * f;
    const size_t k = (size_t)p.batch * p.kv_heads * p.kv_len * p.head_dim * f;
    const size_t v = (size_t)p.batch * p.kv_heads * p.kv_len * p.value_dim * f;
    const size_t o = (size_t)p.batch * p.heads * p.q_len * p.value_dim * f;
    const size_t l = (size_t)p.batch * p.heads * p.q_len * f;
    int s = alloc_tensor(&h->t.q, q, 1, &seed) || alloc_tensor(&h->t.k, k, 1, &seed) ||
            alloc_tensor(&h->t.v, v, 1, &seed) || alloc_tensor(&h->t.out, o, 0, &seed);
    if (!s && with_lse)
        s = alloc_tensor(&h->t.lse, l, 0, &seed);
    if (!s && p.global_qkv)
        s = alloc_tensor(&h->t.qg, q, 1, &seed) || alloc_tensor(&h->t.kg, k, 1, &seed) ||
            alloc_tensor(&h->t.vg, v, 1, &seed);
    if (!s && p.extra_len > 0)
        s = alloc_tensor(&h->t.kx, (size_t)p.batch * p.kv_heads * p.extra_len * p.head_dim * f, 1, &seed) ||
            alloc_tensor(&h->t.vx, (size_t)p.batch * p.kv_heads * p.extra_len * p.value_dim * f, 1, &seed);
    if (!s) {
        h->out_ref = calloc(o, 1);
        h->lse_ref = calloc(l, 1);
        if (h->out_ref == NULL || h->lse_ref == NULL)
            s = CLATTN_STATUS_HOST_OUT_OF_MEMORY;
    }
    h->dtype = p.dtype;
    if (!s && has_storage(h->dtype))
        s = alloc_stored(h);
    if (s)
        harness_tensors_free(h);
    return s ? CLATTN_STATUS_HOST_OUT_OF_MEMORY : CLATTN_STATUS_OK;
}

void harness_tensors_free(harness_tensors *h)
{
    for (int i = 0; i < TENSOR_COUNT; i++) {
        if (i != LSE_INDEX) /* shared with t */
            free(tensor_of(&h->stored, i)->data);
        free(tensor_of(&h->t, i)->data);
    }
    free(h->out_ref);
    free(h->lse_ref);
    memset(h, 0, sizeof *h);
}

static int run(clattn_context *ctx, const clattn_problem *p, const clattn_host_tensors *t)
{
    clattn_plan *plan = NULL;
    int s = clattn_plan_create(ctx, p, &plan);
    if (!s)
        s = clattn_plan_run_host(plan, t);
    if (s)
        fprintf(stderr, "  %s: status %d (%s): %s\n", clattn_context_device_name(ctx), s, clattn_status_string(s),
                clattn_context_message(ctx));
    clattn_plan_free(plan);
    return s;
}

int harness_run(clattn_context *ctx, const clattn_problem *p, harness_tensors *h)
{
    if (p->dtype != h->dtype) {
        fprintf(stderr, "  harness_run: problem dtype %d, tensors made for %d\n", (int)p->dtype, (int)h->dtype);
        return CLATTN_STATUS_INVALID_DTYPE;
    }
    if (!has_storage(h->dtype))
        return run(ctx, p, &h->t);
    harness_tensors_store(h);
    h->stored.seq_lens = h->t.seq_lens;
    const int s = run(ctx, p, &h->stored);
    float *out = h->t.out.data;
    for (size_t e = 0; !s && e < h->t.out.bytes / sizeof(float); e++)
        out[e] = clattn__load_element(h->dtype, h->stored.out.data, e);
    return s;
}

const char *harness_storage(clattn_dtype dtype)
{
    return dtype == CLATTN_DTYPE_F16 ? " f16" : dtype == CLATTN_DTYPE_BF16 ? " bf16" : "";
}

double harness_half_ulp(clattn_dtype dtype, double x)
{
    if (!has_storage(dtype))
        return 0.0;
    /* explicit mantissa bits and the least normal exponent; below it the ulp is the subnormals' */
    const int mantissa = dtype == CLATTN_DTYPE_F16 ? 10 : 7, least = dtype == CLATTN_DTYPE_F16 ? -14 : -126;
    int e = 0;
    frexp(x, &e); /* x = m * 2^e, m in [0.5, 1): x's binade is 2^(e - 1) */
    e -= 1;
    if (x == 0.0 || e < least)
        e = least;
    return ldexp(1.0, e - mantissa - 1);
}

double harness_max_error(const float *a, const float *b, size_t n, clattn_dtype dtype)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isinf(a[i]) || isinf(b[i])) {
            if (a[i] != b[i])
                return INFINITY;
            continue;
        }
        const double x = fabs((double)a[i]), y = fabs((double)b[i]);
        const double d = fabs((double)a[i] - (double)b[i]) - harness_half_ulp(dtype, x > y ? x : y);
        if (!(d <= worst)) /* NaN counts as the worst */
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

double harness_max_diff(const float *a, const float *b, size_t n)
{
    return harness_max_error(a, b, n, CLATTN_DTYPE_F32);
}

int harness_plan_tiles(clattn_context *ctx, const clattn_problem *p, clattn_tiles *out)
{
    clattn_plan *plan = NULL;
    clattn_tiles t;
    int status = clattn_plan_create(ctx, p, &plan);
    if (!status)
        status = clattn_plan_tiles(plan, &t);
    clattn_plan_free(plan);
    if (!status)
        *out = t;
    return status;
}

int harness_compare(clattn_context *dev, clattn_context *ref, const clattn_problem *p, const int *seq_lens,
                    int with_lse, double *max_err)
{
    harness_tensors h;
    int s = harness_tensors_alloc(p, with_lse, 12345u + (unsigned)p->q_len * 31u + (unsigned)p->head_dim, &h);
    if (s)
        return s;
    h.t.seq_lens = seq_lens;
    clattn_host_tensors rt = h.t;
    rt.out.data = h.out_ref;
    rt.lse.data = with_lse ? h.lse_ref : NULL;
    clattn_problem wide = *p; /* the reference in float32, on the inputs rounded to p's storage type */
    wide.dtype = CLATTN_DTYPE_F32;
    s = run(ref, &wide, &rt);
    if (!s)
        s = harness_run(dev, p, &h);
    if (!s) {
        *max_err = harness_max_error(h.t.out.data, h.out_ref, h.t.out.bytes / sizeof(float), p->dtype);
        if (with_lse) {
            const double e = harness_max_diff(h.t.lse.data, h.lse_ref, h.t.lse.bytes / sizeof(float));
            *max_err = e > *max_err ? e : *max_err;
        }
    }
    harness_tensors_free(&h);
    return s;
}

cl_uint harness_context_refs(const clattn_context *ctx)
{
    cl_uint n = 0;
    clGetContextInfo(clattn_context_cl_context(ctx), CL_CONTEXT_REFERENCE_COUNT, sizeof n, &n, NULL);
    return n;
}

static const int gpu_globals[] = {0, 40};
const int harness_gpu_lens[] = {77, 30};

const clattn_problem harness_gpu_problems[HARNESS_GPU_PROBLEMS] = {
    {.batch = 2, .heads = 4, .kv_heads = 2, .q_len = 77, .head_dim = 64, .causal = 1},
    {.batch = 1, .heads = 2, .q_len = 37, .kv_len = 103, .head_dim = 128, .value_dim = 24},
    {.batch = 2,
     .heads = 2,
     .q_len = 77,
     .head_dim = 64,
     .window = 1,
     .window_left = 21,
     .window_right = 3,
     .dilation = 3,
     .global_idx = gpu_globals,
     .num_global = 2,
     .summary_block = 16,
     .extra_len = 5},
    {.batch = 1,
     .heads = 3,
     .q_len = 61,
     .head_dim = 64,
     .window = 1,
     .window_left = 12,
     .window_right = 12,
     .global_idx = gpu_globals,
     .num_global = 2,
     .global_qkv = 1},
};

typedef struct {
    const char *text;
    int count;
} note_count;

static void count_note(void *user, const char *line)
{
    note_count *n = user;
    n->count += strstr(line, n->text) != NULL;
}

/* Whether dev is a GPU whose vendor's name holds `vendor`, asked of OpenCL. */
static int vendor_gpu(clattn_context *dev, const char *vendor)
{
    char name[256] = "";
    cl_device_type type = 0;
    clGetDeviceInfo(clattn_context_cl_device(dev), CL_DEVICE_VENDOR, sizeof name - 1, name, NULL);
    clGetDeviceInfo(clattn_context_cl_device(dev), CL_DEVICE_TYPE, sizeof type, &type, NULL);
    return (type & CL_DEVICE_TYPE_GPU) && strstr(name, vendor) != NULL;
}

int harness_nvidia_any(clattn_context *dev)
{
    return vendor_gpu(dev, "NVIDIA");
}

int harness_nvidia_sm80(clattn_context *dev)
{
    cl_uint major = 0;
    return vendor_gpu(dev, "NVIDIA") &&
           clGetDeviceInfo(clattn_context_cl_device(dev), CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV, sizeof major, &major,
                           NULL) == CL_SUCCESS &&
           major >= 8;
}

int harness_intel_gpu(clattn_context *dev)
{
    return vendor_gpu(dev, "Intel");
}

/* The int at byte offset `offset` of a struct. */
static int int_at(const void *base, size_t offset)
{
    int x;
    memcpy(&x, (const char *)base + offset, sizeof x);
    return x;
}

/* The option that test t's tiles ask for, as a plan of p on dev should run it. */
static int expected_option(clattn_context *dev, const harness_option_test *t, const clattn_tiles *tiles,
                           const clattn_problem *p)
{
    const int ask = int_at(tiles, t->option);
    return (t->usable != NULL && !t->usable(tiles, p)) || (ask == 1 && !t->device_has(dev)) ? 0 : ask;
}

/* Variant `index` of the test on each of its problems (harness_option_tests). */
static void check_option(clattn_context *dev, clattn_context *ref, const harness_option_test *t, size_t index)
{
    const clattn_tiles *tiles = &t->variants[index];
    const int runs = expected_option(dev, t, tiles, t->problems[0]) != 0;
    for (size_t i = 0; i < (runs ? t->nproblems : 1); i++) {
        const clattn_problem *p = t->problems[i];
        const int expect = expected_option(dev, t, tiles, p);
        clattn_tiles ran;
        memset(&ran, 0xff, sizeof ran); /* -1 in every field unless a plan says what ran */
        harness_plan_tiles(dev, p, &ran);
        const int used = int_at(&ran, t->option);
        double err = 0.0;
        const int status = harness_compare(dev, ref, p, p->batch == 2 ? harness_gpu_lens : NULL, 1, &err);
        check(status == CLATTN_STATUS_OK && err <= t->tolerance && (used == expect || (t->may_refuse && used == 0)) &&
                  (t->tiles_ok == NULL || t->tiles_ok(&ran)),
              "%-12s case %zu (D=%d Dv=%d Nq=%d dtype %d): %s %d (expected %d), %dx%d tiles of %dx%d, max err %.2e %s",
              t->names[index], i, p->head_dim, p->value_dim ? p->value_dim : p->head_dim, p->q_len, (int)p->dtype,
              t->option_name, used, expect, ran.bm, ran.bn, ran.tm, ran.tn, err,
              status ? clattn_status_string(status) : "");
    }
}

/* The capability claimed for a device without it (harness_option_tests). */
static void check_claimed(clattn_context *dev, clattn_context *ref, const harness_option_test *t)
{
    if (t->device_has(dev))
        return; /* the variants ran it */
    size_t index = 0;
    while (index < t->count && int_at(&t->variants[index], t->option) != 1)
        index++;
    if (index == t->count) {
        check(0, "%s: no variant asks for it", t->name);
        return;
    }
    int *const claim = (int *)((char *)&dev->caps + t->caps_flag);
    note_count n = {t->note, 0};
    const clattn_log_fn log = dev->log;
    void *const log_user = dev->log_user;
    *claim = 1;
    dev->log = count_note;
    dev->log_user = &n;
    clattn_context_force_tiles(dev, &t->variants[index]);
    clattn_tiles ran;
    memset(&ran, 0xff, sizeof ran); /* -1 in every field until a plan says what ran */
    harness_plan_tiles(dev, &harness_gpu_problems[0], &ran);
    double err = 0.0;
    const int status = harness_compare(dev, ref, &harness_gpu_problems[0], harness_gpu_lens, 1, &err);
    *claim = 0;
    dev->log = log;
    dev->log_user = log_user;
    const int used = int_at(&ran, t->option);
    check(status == CLATTN_STATUS_OK && err <= t->tolerance && used == 0 && n.count > 0,
          "%-12s %s claimed, refused by the compiler: %s %d, %d note(s), max err %.2e %s", t->names[index], t->name,
          t->option_name, used, n.count, err, status ? clattn_status_string(status) : "");
}

static const harness_option_test *option_test; /* harness_option_tests' (harness_body has no user pointer) */

static void option_test_body(clattn_context *dev, clattn_context *ref, const char *variant, size_t index)
{
    (void)variant;
    check_option(dev, ref, option_test, index);
    if (index == option_test->count - 1)
        check_claimed(dev, ref, option_test);
}

int harness_option_tests(const harness_option_test *test)
{
    option_test = test;
    return harness_each_variant(test->variants, test->names, test->count, option_test_body);
}
