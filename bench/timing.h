/* Timing, done the clpeak way: untimed warm-up runs, then the median of repeated runs, timed
 * with OpenCL profiling events where a device ran them and with the wall clock otherwise. */
#ifndef CLATTN_BENCH_TIMING_H
#define CLATTN_BENCH_TIMING_H

#include "clattn.h"

/* How often to run, and room for the samples (allocated once per sweep). */
typedef struct {
    int warmup, repeat;
    double *samples; /* [2 * repeat]: device times, then wall times */
} bench_timer;

typedef struct {
    double ms_median, ms_min, ms_max; /* device time (the wall clock on host paths) */
    double wall_ms;                   /* median of what a caller waits */
} run_times;

/* Returns 0 or EXIT_RUNTIME (out of host memory); timer_free() undoes it either way. */
int timer_init(bench_timer *t, int warmup, int repeat);
void timer_free(bench_timer *t);

/* One blocking run; sets *device_ms when the device timed it, leaves it negative otherwise.
 * Returns 0 or the failing call's status. */
typedef int (*run_fn)(void *state, double *device_ms);

/* Warm-up runs (first-launch compilation, uploads), then t->repeat timed ones; returns 0 or
 * the first failing run's status. */
int time_runs(const bench_timer *t, run_fn run, void *state, run_times *out);

/* Sorts n > 0 samples; returns their median and sets their extremes. */
double median_of(double *samples, int n, double *min, double *max);

/* Milliseconds of a monotonic clock. */
double now_ms(void);

/* From the start of `first` to the end of `last` (profiling events of one in-order queue). */
cl_int event_span_ms(cl_event first, cl_event last, double *ms);

/* `amount` (flops, bytes) per run at `ms` per run, in G per second; 0 for a run too short to time. */
double giga_per_second(double amount, double ms);

/* part as a percentage of whole; 0 where whole was not measured. */
double percent(double part, double whole);

#endif
