/* The bench's yardsticks for a device: its fp32 FMA peak and its copy bandwidth, measured with
 * the kernels of bench/probes.cl (embedded into the tool, not the library). */
#ifndef CLATTN_BENCH_PROBES_H
#define CLATTN_BENCH_PROBES_H

#include "clattn.h"

/* Measures an OpenCL context's device: the FMA peak in GFLOP/s and the copy bandwidth in GB/s
 * (bytes read plus written). Returns CL_SUCCESS, or the failing call's code with *step naming
 * what failed. */
cl_int probes_measure(clattn_context *ctx, double *peak_gflops, double *copy_gbps, const char **step);

#endif
