/* A device the bench times (a clattn context, its label and its probes) and the timed
 * runs of one plan on it: on cl_mem buffers of an OpenCL device, or host memory on the
 * reference path. Shared by the sweep and `clattn tune`. */
#ifndef CLATTN_BENCH_RUNS_H
#define CLATTN_BENCH_RUNS_H

#include "clattn.h"
#include "probes.h"
#include "report.h"
#include "timing.h"
#include "workload.h"

typedef struct {
    clattn_context *ctx;
    char label[128];
    peak_probe peak;  /* the bench's FMA probe; empty on the reference path and where another device's stands in */
    double copy_gbps; /* measured copy bandwidth (bytes read + written); 0 on the reference path */
} bench_device;

/* Opens the context of a --device spec with a cache directory (NULL: $CLATTN_CACHE_DIR, else
 * none); returns 0 or an exit status (the message printed). */
int device_open(const char *spec, const char *cache_dir, bench_device *dev);

/* Prints the failing step with the library's detailed message (the bench stops at the first
 * failure, so a message in the context always belongs to this one); returns the exit status. */
int runtime_error(const bench_device *dev, const char *step, int status);

/* Creates w's plan on dev (row->plan_ms) and times its runs (row->time, row->bytes); with
 * `output`, the last run's O is left in w->out (the reference path writes it there always).
 * Returns 0 or an exit status (the message printed). */
int run_plan(const bench_timer *t, const bench_device *dev, const workload *w, int output, bench_row *row);

#endif
