/* The FMA peak and copy probes: bench/probes.cl built on the context's own OpenCL handles (the
 * library does not know these kernels), launched after one untimed launch, best of a few. */
#include "probes.h"

#include <math.h>
#include <stdio.h>

#include "timing.h"

#define PEAK_TARGET_MS 50.0 /* shorter probe launches measure launch overhead, not FMAs */
#define PEAK_MAX_ITERS (1 << 24)
#define PEAK_ITEMS_PER_CU 2048         /* work-items: enough to fill a GPU core, many groups on a CPU */
#define COPY_BYTES ((size_t)256 << 20) /* far beyond the caches of CPUs and GPUs */
#define COPY_RUNS 5
#define BUILD_LOG_SIZE 8192

/* Generated from bench/probes.cl by cmake/embed_kernels.cmake (bench/CMakeLists.txt). */
const char *bench_embedded_source(const char *name);

/* The best chain count differs by device: FMA latency times issue width independent registers
 * must be in flight. 16 float16 chains fill AVX-512's 32 registers; on AVX2
 * (16 registers, a float16 is two) 4 to 6 chains do and 8 or more spill; GPUs hide latency
 * with many work-items of few chains. */
static const int peak_chains[] = {2, 4, 6, 8, 16};

/* OpenCL C 1.2 like the library's kernels; -w because some compilers (POCL's among them) write
 * warnings straight to stderr. A failed build's log goes to stderr. */
static cl_int build_probes(clattn_context *ctx, const char *defines, cl_program *out)
{
    char options[128];
    snprintf(options, sizeof options, "-cl-std=CL1.2 -w%s", defines);
    const char *source = bench_embedded_source("probes");
    cl_device_id device = clattn_context_cl_device(ctx);
    cl_int rc;
    *out = clCreateProgramWithSource(clattn_context_cl_context(ctx), 1, &source, NULL, &rc);
    if (rc != CL_SUCCESS)
        return rc;
    rc = clBuildProgram(*out, 1, &device, options, NULL, NULL);
    if (rc != CL_SUCCESS) {
        char log[BUILD_LOG_SIZE] = "";
        clGetProgramBuildInfo(*out, device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        fprintf(stderr, "clattn bench: build log of bench/probes.cl (%s):\n%s\n", options, log);
        clReleaseProgram(*out);
        *out = NULL;
    }
    return rc;
}

/* Best time of `runs` launches of a probe over `global` work-items, after one untimed launch
 * (POCL compiles the work-group function at the first launch). */
static cl_int best_launch_ms(cl_command_queue queue, cl_kernel kernel, size_t global, int runs, double *best)
{
    cl_int rc = CL_SUCCESS;
    *best = HUGE_VAL;
    for (int i = 0; i <= runs && rc == CL_SUCCESS; i++) {
        cl_event done = NULL;
        double ms = HUGE_VAL;
        rc = clEnqueueNDRangeKernel(queue, kernel, 1, NULL, &global, NULL, 0, NULL, &done);
        if (rc == CL_SUCCESS)
            rc = clWaitForEvents(1, &done);
        if (rc == CL_SUCCESS)
            rc = event_span_ms(done, done, &ms);
        if (done != NULL)
            clReleaseEvent(done);
        if (i > 0 && ms < *best)
            *best = ms;
    }
    return rc;
}

/* The FMA probe with `chains` chains of `iters` iterations. */
static cl_int build_peak(clattn_context *ctx, int chains, int iters, cl_program *out)
{
    char defines[64];
    snprintf(defines, sizeof defines, " -DCLATTN_CHAINS=%d -DCLATTN_ITERS=%d", chains, iters);
    return build_probes(ctx, defines, out);
}

/* Best of `runs` launches of the FMA probe in `program` over `global` work-items. */
static cl_int peak_best_ms(clattn_context *ctx, cl_program program, size_t global, int runs, double *best)
{
    const float a = 0.999f, b = 0.001f; /* the chains converge to 1: no overflow, no denormals */
    cl_int rc;
    cl_mem out = NULL;
    cl_kernel kernel = clCreateKernel(program, "peak", &rc);
    if (rc == CL_SUCCESS)
        out = clCreateBuffer(clattn_context_cl_context(ctx), CL_MEM_WRITE_ONLY, global * sizeof(float), NULL, &rc);
    if (rc == CL_SUCCESS)
        rc = clSetKernelArg(kernel, 0, sizeof out, &out);
    if (rc == CL_SUCCESS)
        rc = clSetKernelArg(kernel, 1, sizeof a, &a);
    if (rc == CL_SUCCESS)
        rc = clSetKernelArg(kernel, 2, sizeof b, &b);
    if (rc == CL_SUCCESS)
        rc = best_launch_ms(clattn_context_queue(ctx), kernel, global, runs, best);
    if (out != NULL)
        clReleaseMemObject(out);
    if (kernel != NULL)
        clReleaseKernel(kernel);
    return rc;
}

/* The GFLOP/s of `chains` chains. ITERS doubles until a launch takes PEAK_TARGET_MS; powers of
 * two let the driver's program cache serve later runs too. */
static cl_int peak_of_chains(clattn_context *ctx, size_t global, int chains, double *gflops)
{
    int iters = 256;
    double ms = 0.0;
    cl_program program = NULL;
    cl_int rc = build_peak(ctx, chains, iters, &program);
    if (rc == CL_SUCCESS)
        rc = peak_best_ms(ctx, program, global, 1, &ms);
    while (rc == CL_SUCCESS && ms < PEAK_TARGET_MS && iters < PEAK_MAX_ITERS) {
        while (ms < PEAK_TARGET_MS && iters < PEAK_MAX_ITERS) {
            iters *= 2;
            ms *= 2.0; /* the launch time is proportional to ITERS */
        }
        clReleaseProgram(program);
        program = NULL;
        rc = build_peak(ctx, chains, iters, &program);
        if (rc == CL_SUCCESS)
            rc = peak_best_ms(ctx, program, global, 1, &ms);
    }
    if (rc == CL_SUCCESS)
        rc = peak_best_ms(ctx, program, global, 3, &ms);
    if (program != NULL)
        clReleaseProgram(program);
    *gflops = giga_per_second(2.0 * 16.0 * chains * iters * (double)global, ms);
    return rc;
}

/* The best over peak_chains. */
static cl_int measure_peak(clattn_context *ctx, double *peak_gflops)
{
    cl_uint compute_units = 0;
    cl_int rc = clGetDeviceInfo(clattn_context_cl_device(ctx), CL_DEVICE_MAX_COMPUTE_UNITS, sizeof compute_units,
                                &compute_units, NULL);
    const size_t global = (size_t)compute_units * PEAK_ITEMS_PER_CU;
    *peak_gflops = 0.0;
    for (size_t c = 0; c < sizeof peak_chains / sizeof peak_chains[0] && rc == CL_SUCCESS; c++) {
        double gflops = 0.0;
        rc = peak_of_chains(ctx, global, peak_chains[c], &gflops);
        if (rc == CL_SUCCESS && gflops > *peak_gflops)
            *peak_gflops = gflops;
    }
    return rc;
}

/* Best of COPY_RUNS launches of the copy probe over COPY_BYTES, or the device's largest
 * allocation if smaller. */
static cl_int measure_copy(clattn_context *ctx, cl_program program, double *copy_gbps)
{
    const cl_context cl = clattn_context_cl_context(ctx);
    cl_ulong max_alloc = 0;
    cl_int rc = clGetDeviceInfo(clattn_context_cl_device(ctx), CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc,
                                &max_alloc, NULL);
    size_t bytes = COPY_BYTES < max_alloc ? COPY_BYTES : (size_t)max_alloc;
    bytes -= bytes % 4096;
    cl_mem src = NULL, dst = NULL;
    cl_kernel kernel = NULL;
    if (rc == CL_SUCCESS)
        kernel = clCreateKernel(program, "copy", &rc);
    if (rc == CL_SUCCESS)
        src = clCreateBuffer(cl, CL_MEM_READ_WRITE, bytes, NULL, &rc);
    if (rc == CL_SUCCESS)
        dst = clCreateBuffer(cl, CL_MEM_READ_WRITE, bytes, NULL, &rc);
    if (rc == CL_SUCCESS) {
        const float zero = 0.0f;
        rc = clEnqueueFillBuffer(clattn_context_queue(ctx), src, &zero, sizeof zero, 0, bytes, 0, NULL, NULL);
    }
    if (rc == CL_SUCCESS)
        rc = clSetKernelArg(kernel, 0, sizeof src, &src);
    if (rc == CL_SUCCESS)
        rc = clSetKernelArg(kernel, 1, sizeof dst, &dst);
    double best = HUGE_VAL;
    if (rc == CL_SUCCESS)
        rc = best_launch_ms(clattn_context_queue(ctx), kernel, bytes / 16, COPY_RUNS, &best); /* a float4 per item */
    if (dst != NULL)
        clReleaseMemObject(dst);
    if (src != NULL)
        clReleaseMemObject(src);
    if (kernel != NULL)
        clReleaseKernel(kernel);
    *copy_gbps = giga_per_second(2.0 * (double)bytes, best);
    return rc;
}

cl_int probes_measure(clattn_context *ctx, double *peak_gflops, double *copy_gbps, const char **step)
{
    cl_program copy = NULL;
    *step = "measuring the FMA peak";
    cl_int rc = measure_peak(ctx, peak_gflops);
    if (rc == CL_SUCCESS) {
        *step = "building the copy probe";
        rc = build_probes(ctx, "", &copy);
    }
    if (rc == CL_SUCCESS) {
        *step = "measuring the copy bandwidth";
        rc = measure_copy(ctx, copy, copy_gbps);
    }
    if (copy != NULL)
        clReleaseProgram(copy);
    return rc;
}
