/* The `clattn` command-line tool: list devices, run attention on .npy tensors, benchmark.
 * Exit status: 0 success, 2 bad input or usage (nothing written), 3 device or runtime failure. */
#define _POSIX_C_SOURCE 200112L /* setenv */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#ifdef CLATTN_HAVE_MPI
#include "bench_mpi.h"
#include "run_mpi.h"
#endif
#include "clattn.h"
#include "clattn_advanced.h"
#include "exit_status.h"
#include "npy.h"
#include "run_args.h"
#include "run_io.h"

static const char usage_text[] =
    "usage: clattn <command> [options]\n"
    "\n"
    "  devices                      list OpenCL devices (P:D index) and the reference path\n"
    "  run --q Q.npy --k K.npy --v V.npy --out O.npy [options]\n"
    "      [--lse L.npy] [--causal] [--window L,R | --window W] [--dilation D]\n"
    "      [--global I,J,...] [--summary-block B [--summary-tail merge|own]] [--qg F --kg F --vg F] [--kx F --vx F]\n"
    "      [--seq-lens N0,N1,...] [--scale S] [--device SPEC]\n"
    "      [--grid H,W --grid-pattern axial-row|axial-column|criss-cross|neighborhood=KH,KW[,D]|window=M[,S]]\n"
    "      tensors: .npy of rank 4 [B,H,N,D], 3 [H,N,D] or 2 [N,D], all float32 ('<f4'), all float16\n"
    "      ('<f2') or all bfloat16 ('<V2', as NumPy saves ml_dtypes.bfloat16); O is written in their\n"
    "      type, LSE in float32\n"
    "      --mpi (under mpirun): sequence parallel over the ranks, rank 0 reading and writing the files\n"
    "  bench [options]              benchmark devices (clattn bench --help; --mpi under mpirun: sequence\n"
    "                               parallel, with the bytes each rank sends and receives)\n"
    "  tune [bench options]         time the kernel tile sizes on one device, print the best\n"
    "                               (--save: keep it in the cache directory for this device)\n"
    "\n"
    "SPEC: cpu, gpu, P:D or reference; default $CLATTN_DEVICE, else the first GPU, else the\n"
    "first OpenCL CPU device, else reference.\n"
    "POCL_AFFINITY: set to 1 unless given (POCL's worker threads pinned, one per core).\n";

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
/* run                                                                                        */
/* ----------------------------------------------------------------------------------------- */

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

static int cmd_run(int argc, char **argv)
{
    run_args a = {0};
    npy_tensor in[IN_COUNT] = {{0}};
    clattn_context *ctx = NULL;
    clattn_plan *plan = NULL;
    void *out = NULL;
    float *lse = NULL;
    int status = run_args_parse(argc, argv, &a);
    if (!status)
        status = run_io_read_inputs(&a, in);
    if (!status)
        status = run_io_derive_shape(in, &a);
    a.problem.global_idx = a.globals;
    if (!status)
        status = make_plan(&a, &ctx, &plan);
    const size_t rows = (size_t)a.problem.batch * a.problem.heads * a.problem.q_len;
    const size_t out_bytes = rows * a.problem.value_dim * npy_dtype_size(a.problem.dtype);
    if (!status && ((out = malloc(out_bytes + 1)) == NULL || (lse = malloc(rows * sizeof *lse + 1)) == NULL)) {
        snprintf(a.message, sizeof a.message, "no memory for an output of %zu rows", rows);
        status = CLATTN_STATUS_HOST_OUT_OF_MEMORY;
    }
    if (!status) {
        const clattn_host_tensors t = {run_io_host_tensor(&in[IN_Q]),
                                       run_io_host_tensor(&in[IN_K]),
                                       run_io_host_tensor(&in[IN_V]),
                                       {out, out_bytes},
                                       {a.lse != NULL ? lse : NULL, rows * sizeof *lse},
                                       run_io_host_tensor(&in[IN_QG]),
                                       run_io_host_tensor(&in[IN_KG]),
                                       run_io_host_tensor(&in[IN_VG]),
                                       run_io_host_tensor(&in[IN_KX]),
                                       run_io_host_tensor(&in[IN_VX]),
                                       a.seq_lens};
        status = clattn_plan_run_host(plan, &t);
        if (status)
            snprintf(a.message, sizeof a.message, "%s", clattn_context_message(ctx));
    }
    int code = status ? fail(status, clattn_exit_status(status), a.message) : 0;
    if (!status && (status = run_io_write_outputs(&a, &in[IN_Q], out, lse)) != CLATTN_STATUS_OK)
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

#ifdef CLATTN_HAVE_MPI
/* Removes every "--mpi" from argv[0..*argc) in place (the MPI entry points parse the rest as the
 * plain command would); 1 when there was one. */
static int take_mpi_flag(int *argc, char **argv)
{
    int kept = 0;
    for (int i = 0; i < *argc; i++)
        if (strcmp(argv[i], "--mpi") != 0)
            argv[kept++] = argv[i];
    const int found = kept < *argc;
    if (found)
        argv[kept] = NULL;
    *argc = kept;
    return found;
}
#endif

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    /* POCL's CPU driver leaves its worker threads where the OS puts them, and on 2-core machines
     * whole bench points of 3 ms kernels at times ran at one thread's speed; with the workers
     * pinned (POCL_AFFINITY=1) none did (docs/PERFORMANCE.md, "Slow points"). The tool's choice,
     * before any OpenCL call; the caller's setting wins, and the library itself sets nothing. */
    setenv("POCL_AFFINITY", "1", 0);
    if (strcmp(argv[1], "devices") == 0)
        return cmd_devices();
    int n = argc - 1; /* the command's arguments, argv + 1 */
    if (strcmp(argv[1], "run") == 0) {
#ifdef CLATTN_HAVE_MPI
        if (take_mpi_flag(&n, argv + 1))
            return run_mpi_main(n, argv + 1);
#endif
        return cmd_run(n, argv + 1);
    }
    if (strcmp(argv[1], "bench") == 0) {
#ifdef CLATTN_HAVE_MPI
        if (take_mpi_flag(&n, argv + 1))
            return bench_mpi_main(n, argv + 1);
#endif
        return bench_main(n, argv + 1);
    }
    if (strcmp(argv[1], "tune") == 0)
        return tune_main(argc - 1, argv + 1);
    fprintf(stderr, "clattn: unknown command '%s'\n\n%s", argv[1], usage_text);
    return EXIT_USAGE;
}
