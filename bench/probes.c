/* The FMA peak and copy probes: bench/probes.cl built on the context's own OpenCL handles (the
 * library does not know these kernels). The FMA probe's chain count is chosen once; the bench
 * then samples it between its workloads. The copy probe is the best of a few launches. */
#include "probes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "timing.h"

#define PEAK_TARGET_MS 50.0 /* shorter probe launches measure launch overhead, not FMAs */
#define PEAK_MAX_ITERS (1 << 24)
#define PEAK_ITEMS_PER_CU 2048         /* work-items: enough to fill a GPU core (POCL: a group per core) */
#define PEAK_ROUNDS 5                  /* turns over the chain counts when choosing one */
#define PEAK_TIE 0.90                  /* a count this close to the fastest counts as fast */
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

/* One timed launch of `kernel` over `global` work-items. */
static cl_int launch_ms(cl_command_queue queue, cl_kernel kernel, size_t global, double *ms)
{
    cl_event done = NULL;
    *ms = HUGE_VAL;
    cl_int rc = clEnqueueNDRangeKernel(queue, kernel, 1, NULL, &global, NULL, 0, NULL, &done);
    if (rc == CL_SUCCESS)
        rc = clWaitForEvents(1, &done);
    if (rc == CL_SUCCESS)
        rc = event_span_ms(done, done, ms);
    if (done != NULL)
        clReleaseEvent(done);
    return rc;
}

/* Best time of `runs` launches of a probe over `global` work-items, after one untimed launch
 * (POCL compiles the work-group function at the first launch). */
static cl_int best_launch_ms(cl_command_queue queue, cl_kernel kernel, size_t global, int runs, double *best)
{
    cl_int rc = CL_SUCCESS;
    *best = HUGE_VAL;
    for (int i = 0; i <= runs && rc == CL_SUCCESS; i++) {
        double ms = HUGE_VAL;
        rc = launch_ms(queue, kernel, global, &ms);
        if (i > 0 && ms < *best)
            *best = ms;
    }
    return rc;
}

/* (Re)builds p's FMA probe with p->chains chains of `iters` iterations, writing into p->out. */
static cl_int build_peak(clattn_context *ctx, peak_probe *p, int iters)
{
    const float a = 0.999f, b = 0.001f; /* the chains converge to 1: no overflow, no denormals */
    char defines[64];
    snprintf(defines, sizeof defines, " -DCLATTN_CHAINS=%d -DCLATTN_ITERS=%d", p->chains, iters);
    if (p->kernel != NULL)
        clReleaseKernel(p->kernel);
    if (p->program != NULL)
        clReleaseProgram(p->program);
    p->kernel = NULL;
    cl_int rc = build_probes(ctx, defines, &p->program);
    if (rc == CL_SUCCESS)
        p->kernel = clCreateKernel(p->program, "peak", &rc);
    if (rc == CL_SUCCESS)
        rc = clSetKernelArg(p->kernel, 0, sizeof p->out, &p->out);
    if (rc == CL_SUCCESS)
        rc = clSetKernelArg(p->kernel, 1, sizeof a, &a);
    if (rc == CL_SUCCESS)
        rc = clSetKernelArg(p->kernel, 2, sizeof b, &b);
    p->flops = 2.0 * 16.0 * p->chains * iters * (double)p->global;
    return rc;
}

/* p's probe at `chains` chains, ITERS doubled until a launch takes PEAK_TARGET_MS; powers of two
 * let the driver's program cache serve later runs too. The last launch leaves it warm. */
static cl_int calibrate_peak(clattn_context *ctx, size_t global, int chains, peak_probe *p)
{
    *p = (peak_probe){.queue = clattn_context_queue(ctx), .global = global, .chains = chains};
    int iters = 256;
    double ms = 0.0;
    cl_int rc;
    p->out = clCreateBuffer(clattn_context_cl_context(ctx), CL_MEM_WRITE_ONLY, global * sizeof(float), NULL, &rc);
    if (rc == CL_SUCCESS)
        rc = build_peak(ctx, p, iters);
    if (rc == CL_SUCCESS)
        rc = best_launch_ms(p->queue, p->kernel, global, 1, &ms);
    while (rc == CL_SUCCESS && ms < PEAK_TARGET_MS && iters < PEAK_MAX_ITERS) {
        while (ms < PEAK_TARGET_MS && iters < PEAK_MAX_ITERS) {
            iters *= 2;
            ms *= 2.0; /* the launch time is proportional to ITERS */
        }
        rc = build_peak(ctx, p, iters);
        if (rc == CL_SUCCESS)
            rc = best_launch_ms(p->queue, p->kernel, global, 1, &ms);
    }
    return rc;
}

cl_int peak_probe_init(clattn_context *ctx, peak_probe *p, const char **step)
{
    enum { COUNT = sizeof peak_chains / sizeof peak_chains[0] };
    peak_probe candidates[COUNT] = {{0}};
    double best_gflops[COUNT] = {0};
    cl_uint compute_units = 0;
    *p = (peak_probe){0};
    *step = "querying the compute units";
    cl_int rc = clGetDeviceInfo(clattn_context_cl_device(ctx), CL_DEVICE_MAX_COMPUTE_UNITS, sizeof compute_units,
                                &compute_units, NULL);
    const size_t global = (size_t)compute_units * PEAK_ITEMS_PER_CU;
    if (rc == CL_SUCCESS)
        *step = "building and calibrating the FMA probe";
    for (int c = 0; c < COUNT && rc == CL_SUCCESS; c++)
        rc = calibrate_peak(ctx, global, peak_chains[c], &candidates[c]);
    /* In turns, so that a neighbour's burst on a shared machine does not sink one count alone. */
    if (rc == CL_SUCCESS)
        *step = "timing the FMA probe's chain counts";
    for (int round = 0; round < PEAK_ROUNDS && rc == CL_SUCCESS; round++)
        for (int c = 0; c < COUNT && rc == CL_SUCCESS; c++) {
            double ms = HUGE_VAL;
            rc = launch_ms(candidates[c].queue, candidates[c].kernel, global, &ms);
            const double gflops = giga_per_second(candidates[c].flops, ms);
            best_gflops[c] = gflops > best_gflops[c] ? gflops : best_gflops[c];
        }
    /* The most chains among the fastest: a neighbour's burst can make every count look alike (each
     * gets a slice of a core), and then more independent chains are the safer guess. */
    int fastest = 0, best = 0;
    for (int c = 1; c < COUNT; c++)
        fastest = best_gflops[c] > best_gflops[fastest] ? c : fastest;
    for (int c = 0; c < COUNT; c++)
        best = best_gflops[c] >= PEAK_TIE * best_gflops[fastest] ? c : best;
    if (rc == CL_SUCCESS) {
        *p = candidates[best];
        candidates[best] = (peak_probe){0};
    }
    for (int c = COUNT - 1; c >= 0; c--)
        peak_probe_free(&candidates[c]);
    return rc;
}

cl_int peak_probe_sample(peak_probe *p)
{
    if (p->num_samples + PEAK_SAMPLE_LAUNCHES > p->max_samples) {
        const int max = 2 * p->max_samples + PEAK_SAMPLE_LAUNCHES;
        double *samples = realloc(p->samples, (size_t)max * sizeof *samples);
        if (samples == NULL)
            return CL_OUT_OF_HOST_MEMORY;
        p->samples = samples;
        p->max_samples = max;
    }
    cl_int rc = CL_SUCCESS;
    for (int i = 0; i < PEAK_SAMPLE_LAUNCHES && rc == CL_SUCCESS; i++) {
        double ms = HUGE_VAL;
        if ((rc = launch_ms(p->queue, p->kernel, p->global, &ms)) == CL_SUCCESS)
            p->samples[p->num_samples++] = giga_per_second(p->flops, ms);
    }
    return rc;
}

void peak_probe_summary(peak_probe *p, double *median, double *min, double *max)
{
    *median = *min = *max = 0.0;
    if (p->num_samples > 0)
        *median = median_of(p->samples, p->num_samples, min, max);
}

void peak_probe_free(peak_probe *p)
{
    free(p->samples);
    if (p->kernel != NULL)
        clReleaseKernel(p->kernel);
    if (p->program != NULL)
        clReleaseProgram(p->program);
    if (p->out != NULL)
        clReleaseMemObject(p->out);
    *p = (peak_probe){0};
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

cl_int copy_probe_measure(clattn_context *ctx, double *copy_gbps, const char **step)
{
    cl_program copy = NULL;
    *step = "building the copy probe";
    cl_int rc = build_probes(ctx, "", &copy);
    if (rc == CL_SUCCESS) {
        *step = "measuring the copy bandwidth";
        rc = measure_copy(ctx, copy, copy_gbps);
    }
    if (copy != NULL)
        clReleaseProgram(copy);
    return rc;
}
