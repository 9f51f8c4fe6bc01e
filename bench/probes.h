/* The bench's yardsticks for a device: its fp32 FMA peak, sampled between the workloads, and its
 * copy bandwidth, measured with the kernels of bench/probes.cl (embedded into the tool, not the
 * library). */
#ifndef CLATTN_BENCH_PROBES_H
#define CLATTN_BENCH_PROBES_H

#include "clattn.h"

#define PEAK_SAMPLE_LAUNCHES 3 /* timed launches per sample */

/* The FMA probe of one device at the chain count that ran fastest, and the rate of each of its
 * timed launches. A shared machine's peak moves with its neighbours, so the bench samples the
 * probe between its workloads and reports the median and the extremes of every sample. */
typedef struct {
    cl_command_queue queue;
    cl_program program;
    cl_kernel kernel; /* NULL: no probe (the reference path, or not measured) */
    cl_mem out;
    size_t global;   /* work-items per launch */
    double flops;    /* per launch */
    int chains;      /* independent float16 FMA chains per work-item */
    double *samples; /* [max_samples] GFLOP/s of each timed launch */
    int num_samples, max_samples;
} peak_probe;

/* Builds the FMA probe at each candidate chain count (iterations calibrated to a launch long
 * enough to time), times them in turns and keeps the fastest; no sample is recorded yet. Returns
 * CL_SUCCESS, or the failing call's code with *step naming what failed; peak_probe_free() undoes
 * it either way. */
cl_int peak_probe_init(clattn_context *ctx, peak_probe *p, const char **step);

/* A few timed launches of the chosen probe, each appended to p->samples; returns CL_SUCCESS, the
 * failing call's code, or CL_OUT_OF_HOST_MEMORY. */
cl_int peak_probe_sample(peak_probe *p);

/* The median, least and greatest GFLOP/s of the samples so far (zeros when there are none);
 * reorders p->samples. */
void peak_probe_summary(peak_probe *p, double *median, double *min, double *max);

void peak_probe_free(peak_probe *p); /* a zeroed or freed probe is a no-op */

/* The copy bandwidth in GB/s (bytes read plus written), best of a few launches. Returns
 * CL_SUCCESS, or the failing call's code with *step naming what failed. */
cl_int copy_probe_measure(clattn_context *ctx, double *copy_gbps, const char **step);

#endif
