/* The `clattn` command-line tool: list devices, run attention on .npy tensors, benchmark.
 * Exit status: 0 success, 2 bad input or usage (nothing written), 3 device or runtime failure. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "clattn.h"
#include "clattn_advanced.h"
#include "exit_status.h"
#include "npy.h"
#include "run_args.h"

static const char usage_text[] =
    "usage: clattn <command> [options]\n"
    "\n"
    "  devices                      list OpenCL devices (P:D index) and the reference path\n"
    "  run --q Q.npy --k K.npy --v V.npy --out O.npy [options]\n"
    "      [--lse L.npy] [--causal] [--window L,R | --window W] [--dilation D]\n"
    "      [--global I,J,...] [--summary-block B [--summary-tail merge|own]] [--qg F --kg F --vg F] [--kx F --vx F]\n"
    "      [--seq-lens N0,N1,...] [--scale S] [--device SPEC]\n"
    "      [--grid H,W --grid-pattern axial-row|axial-column|criss-cross|neighborhood=KH,KW[,D]|window=M[,S]]\n"
    "      tensors: little-endian float32 .npy of rank 4 [B,H,N,D], 3 [H,N,D] or 2 [N,D]\n"
    "  bench [options]              benchmark devices (clattn bench --help)\n"
    "  tune [bench options]         time the kernel tile sizes on one device, print the best\n"
    "                               (--save: keep it in the cache directory for this device)\n"
    "\n"
    "SPEC: cpu, gpu, P:D or reference; default $CLATTN_DEVICE, else the first GPU, else the\n"
    "first OpenCL CPU device, else reference.\n";

static int fail(int status, int code, const char *message)
{
    fprintf(stderr, "clattn: %s (%s)\n", message, tool_status_string(status));
    return code;
}

/* ----------------------------------------------------------------------------------------- */
/* devices                                                                                    */
/* ----------------------------------------------------------------------------------------- */

static const char *device_type_name(cl_device_type type)
{
    if (type & CL_DEVICE_TYPE_GPU)
        return "GPU";
    if (type & CL_DEVICE_TYPE_CPU)
        return "CPU";
    if (type & CL_DEVICE_TYPE_ACCELERATOR)
        return "accelerator";
    return "other";
}

/* One device line; the "P" of its spec is `platform`, whose heading was printed before it. */
static void print_device(const clattn_device_info *info, int platform)
{
    char driver[128] = "";
    cl_uint units = 0;
    cl_ulong global = 0, local = 0;
    size_t wg = 0;
    clGetDeviceInfo(info->id, CL_DRIVER_VERSION, sizeof driver - 1, driver, NULL);
    clGetDeviceInfo(info->id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL);
    clGetDeviceInfo(info->id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof global, &global, NULL);
    clGetDeviceInfo(info->id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local, &local, NULL);
    clGetDeviceInfo(info->id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    printf("%d:%-3s %-11s %4u CU  %8.1f GiB global  %6llu KiB local  max work-group %zu  %s (driver %s)\n", platform,
           strchr(info->spec, ':') + 1, device_type_name(info->type), units, (double)global / (1 << 30),
           (unsigned long long)(local >> 10), wg, info->name, driver);
}

/* Prints "platform P: name" before the first device of each platform. */
static void print_platform(const clattn_device_info *info, int platform)
{
    cl_platform_id id = NULL;
    char name[256] = "";
    if (clGetDeviceInfo(info->id, CL_DEVICE_PLATFORM, sizeof id, &id, NULL) == CL_SUCCESS)
        clGetPlatformInfo(id, CL_PLATFORM_NAME, sizeof name - 1, name, NULL);
    printf("platform %d: %s\n", platform, name);
}

static int cmd_devices(void)
{
    /* an OpenCL failure reads as no platform, as when none is installed */
    int count = 0, present = 0;
    clattn_device_info *list = NULL;
    if (clattn_device_list(NULL, 0, &count) != CLATTN_STATUS_OK)
        count = 0;
    if (count > 0 && (list = malloc((size_t)count * sizeof *list)) == NULL)
        return fail(CLATTN_STATUS_HOST_OUT_OF_MEMORY, EXIT_RUNTIME, "no memory for the device list");
    if (count > 0 && clattn_device_list(list, count, &present) != CLATTN_STATUS_OK)
        count = 0;
    else if (present < count)
        count = present; /* a device left between the two calls */
    for (int i = 0, last = -1; i < count; i++) {
        const int platform = atoi(list[i].spec);
        if (platform != last)
            print_platform(&list[i], platform);
        print_device(&list[i], platform);
        last = platform;
    }
    if (count == 0)
        printf("no OpenCL platform found\n");
    printf("reference   host   double-precision reference path (plain C, all patterns)\n");
    free(list);
    return 0;
}

/* ----------------------------------------------------------------------------------------- */
/* run: tensors and shapes                                                                    */
/* ----------------------------------------------------------------------------------------- */

enum { IN_Q, IN_K, IN_V, IN_QG, IN_KG, IN_VG, IN_KX, IN_VX, IN_COUNT };

/* Shape [B, H, N, D] of a tensor of rank 2, 3 or 4 (missing leading dims are 1). */
static void shape4(const npy_tensor *t, long long s[4])
{
    for (int i = 0; i < 4; i++)
        s[i] = 1;
    for (int i = 0; i < t->rank; i++)
        s[4 - t->rank + i] = t->shape[i];
}

static int shape_error(run_args *a, const char *what, const long long *x, const long long *y)
{
    snprintf(a->message, sizeof a->message, "%s: [%lld,%lld,%lld,%lld] vs [%lld,%lld,%lld,%lld]", what, x[0], x[1],
             x[2], x[3], y[0], y[1], y[2], y[3]);
    return CLATTN_STATUS_SHAPE_MISMATCH;
}

static int same_shape(run_args *a, const char *what, const long long *x, const long long *y)
{
    return memcmp(x, y, 4 * sizeof *x) != 0 ? shape_error(a, what, x, y) : CLATTN_STATUS_OK;
}

/* Fills the problem's shape from Q, K, V (and checks the optional tensors against them). */
static int derive_shape(const npy_tensor *in, run_args *a)
{
    long long q[4], k[4], v[4], x[4];
    shape4(&in[IN_Q], q);
    shape4(&in[IN_K], k);
    shape4(&in[IN_V], v);
    if (in[IN_Q].rank != in[IN_K].rank || in[IN_K].rank != in[IN_V].rank) {
        snprintf(a->message, sizeof a->message, "Q, K and V have ranks %d, %d, %d: they must be equal", in[IN_Q].rank,
                 in[IN_K].rank, in[IN_V].rank);
        return CLATTN_STATUS_SHAPE_MISMATCH;
    }
    if (q[0] != k[0] || q[3] != k[3] || k[0] != v[0] || k[1] != v[1] || k[2] != v[2]) {
        snprintf(a->message, sizeof a->message,
                 "Q [%lld,%lld,%lld,%lld], K [%lld,%lld,%lld,%lld], V [%lld,%lld,%lld,%lld]: Q and K must agree "
                 "in batch and head dim, K and V in batch, heads and keys",
                 q[0], q[1], q[2], q[3], k[0], k[1], k[2], k[3], v[0], v[1], v[2], v[3]);
        return CLATTN_STATUS_SHAPE_MISMATCH;
    }
    for (int i = 0; i < 4; i++)
        if (q[i] > INT_MAX || k[i] > INT_MAX || v[i] > INT_MAX)
            return shape_error(a, "a dimension exceeds 2^31 - 1", q, k);
    clattn_problem *p = &a->problem;
    p->batch = (int)q[0];
    p->heads = (int)q[1];
    p->kv_heads = (int)k[1];
    p->q_len = (int)q[2];
    p->kv_len = (int)k[2];
    p->head_dim = (int)q[3];
    p->value_dim = (int)v[3];
    int status = CLATTN_STATUS_OK;
    if (a->qg != NULL) {
        long long g[4];
        p->global_qkv = 1;
        shape4(&in[IN_QG], g);
        status = same_shape(a, "--qg vs --q", g, q);
        shape4(&in[IN_KG], g);
        status = status ? status : same_shape(a, "--kg vs --k", g, k);
        shape4(&in[IN_VG], g);
        status = status ? status : same_shape(a, "--vg vs --v", g, v);
    }
    if (!status && a->kx != NULL) {
        shape4(&in[IN_KX], x);
        long long y[4];
        shape4(&in[IN_VX], y);
        if (x[0] != k[0] || x[1] != k[1] || x[3] != k[3] || y[0] != v[0] || y[1] != v[1] || y[2] != x[2] ||
            y[3] != v[3] || x[2] > INT_MAX)
            return shape_error(a, "--kx/--vx disagree with K/V: Kx vs K", x, k);
        p->extra_len = (int)x[2];
    }
    if (!status && a->seq_lens != NULL && a->num_seq_lens != p->batch) {
        snprintf(a->message, sizeof a->message, "--seq-lens has %d entries, the batch is %d", a->num_seq_lens,
                 p->batch);
        return CLATTN_STATUS_SHAPE_MISMATCH;
    }
    return status;
}

static int read_inputs(run_args *a, npy_tensor *in)
{
    const char *paths[IN_COUNT] = {a->q, a->k, a->v, a->qg, a->kg, a->vg, a->kx, a->vx};
    for (int i = 0; i < IN_COUNT; i++) {
        if (paths[i] == NULL)
            continue;
        tool_error err;
        const int status = npy_read(paths[i], 2, 4, &in[i], &err);
        if (status) {
            snprintf(a->message, sizeof a->message, "%s", err.text);
            return status;
        }
    }
    return CLATTN_STATUS_OK;
}

static clattn_host_tensor host_tensor(const npy_tensor *t)
{
    return (clattn_host_tensor){t->data, t->count * sizeof(float)};
}

/* Creates the context and plan: every pattern runs on every device, so there is no fallback. */
static int make_plan(run_args *a, clattn_context **ctx, clattn_plan **plan)
{
    int status = clattn_context_create(&(clattn_context_desc){.device = a->device}, ctx);
    if (status) {
        snprintf(a->message, sizeof a->message, "%s", clattn_context_message(NULL));
        return status;
    }
    status = clattn_plan_create(*ctx, &a->problem, plan);
    if (status)
        snprintf(a->message, sizeof a->message, "%s", *ctx != NULL ? clattn_context_message(*ctx) : "");
    return status;
}

static int write_outputs(run_args *a, const npy_tensor *q, const float *out, const float *lse)
{
    long long shape[4];
    memcpy(shape, q->shape, sizeof shape);
    shape[q->rank - 1] = a->problem.value_dim;
    tool_error err;
    int status = npy_write(a->out, q->rank, shape, out, &err);
    if (!status && a->lse != NULL)
        status = npy_write(a->lse, q->rank - 1, shape, lse, &err);
    if (status)
        snprintf(a->message, sizeof a->message, "%s", err.text);
    return status;
}

static int cmd_run(int argc, char **argv)
{
    run_args a = {0};
    npy_tensor in[IN_COUNT] = {{0}};
    clattn_context *ctx = NULL;
    clattn_plan *plan = NULL;
    float *out = NULL, *lse = NULL;
    int status = run_args_parse(argc, argv, &a);
    if (!status)
        status = read_inputs(&a, in);
    if (!status)
        status = derive_shape(in, &a);
    a.problem.global_idx = a.globals;
    if (!status)
        status = make_plan(&a, &ctx, &plan);
    const size_t rows = (size_t)a.problem.batch * a.problem.heads * a.problem.q_len;
    if (!status && ((out = malloc(rows * a.problem.value_dim * sizeof *out + 1)) == NULL ||
                    (lse = malloc(rows * sizeof *lse + 1)) == NULL)) {
        snprintf(a.message, sizeof a.message, "no memory for an output of %zu rows", rows);
        status = CLATTN_STATUS_HOST_OUT_OF_MEMORY;
    }
    if (!status) {
        const clattn_host_tensors t = {host_tensor(&in[IN_Q]),
                                       host_tensor(&in[IN_K]),
                                       host_tensor(&in[IN_V]),
                                       {out, rows * a.problem.value_dim * sizeof *out},
                                       {a.lse != NULL ? lse : NULL, rows * sizeof *lse},
                                       host_tensor(&in[IN_QG]),
                                       host_tensor(&in[IN_KG]),
                                       host_tensor(&in[IN_VG]),
                                       host_tensor(&in[IN_KX]),
                                       host_tensor(&in[IN_VX]),
                                       a.seq_lens};
        status = clattn_plan_run_host(plan, &t);
        if (status)
            snprintf(a.message, sizeof a.message, "%s", clattn_context_message(ctx));
    }
    int code = status ? fail(status, clattn_exit_status(status), a.message) : 0;
    if (!status && (status = write_outputs(&a, &in[IN_Q], out, lse)) != CLATTN_STATUS_OK)
        code = fail(status, EXIT_RUNTIME, a.message); /* the output could not be written */
    free(lse);
    free(out);
    clattn_plan_free(plan);
    clattn_context_free(ctx);
    for (int i = IN_COUNT - 1; i >= 0; i--)
        npy_free(&in[i]);
    run_args_free(&a);
    return code;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "devices") == 0)
        return cmd_devices();
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "bench") == 0)
        return bench_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "tune") == 0)
        return tune_main(argc - 1, argv + 1);
    fprintf(stderr, "clattn: unknown command '%s'\n\n%s", argv[1], usage_text);
    return EXIT_USAGE;
}
