/* Warm-up, median of repeated runs, profiling-event spans and the rates derived from times. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "timing.h"

#include <stdlib.h>
#include <time.h>

#include "exit_status.h"

int timer_init(bench_timer *t, int warmup, int repeat)
{
    *t = (bench_timer){.warmup = warmup, .repeat = repeat};
    t->samples = malloc(2 * (size_t)repeat * sizeof *t->samples);
    return t->samples != NULL ? 0 : EXIT_RUNTIME;
}

void timer_free(bench_timer *t)
{
    free(t->samples);
    t->samples = NULL;
}

double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int compare_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double median_of(double *samples, int n, double *min, double *max)
{
    qsort(samples, (size_t)n, sizeof *samples, compare_double);
    *min = samples[0];
    *max = samples[n - 1];
    return n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
}

cl_int event_span_ms(cl_event first, cl_event last, double *ms)
{
    cl_ulong start = 0, end = 0;
    cl_int rc = clGetEventProfilingInfo(first, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL);
    if (rc == CL_SUCCESS)
        rc = clGetEventProfilingInfo(last, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL);
    *ms = (double)(end - start) * 1e-6;
    return rc;
}

/* The wall clock covers what a caller waits, and stands for the device time on the host paths. */
int time_runs(const bench_timer *t, run_fn run, void *state, run_times *out)
{
    double *device = t->samples, *wall = t->samples + t->repeat, min, max;
    for (int i = 0; i < t->warmup + t->repeat; i++) {
        double device_ms = -1.0;
        const double start = now_ms();
        const int status = run(state, &device_ms);
        const double elapsed = now_ms() - start;
        if (status)
            return status;
        if (i >= t->warmup) {
            device[i - t->warmup] = device_ms >= 0.0 ? device_ms : elapsed;
            wall[i - t->warmup] = elapsed;
        }
    }
    out->ms_median = median_of(device, t->repeat, &out->ms_min, &out->ms_max);
    out->wall_ms = median_of(wall, t->repeat, &min, &max);
    return 0;
}

double giga_per_second(double amount, double ms)
{
    return ms > 0.0 ? amount / (ms * 1e6) : 0.0;
}

double percent(double part, double whole)
{
    return whole > 0.0 ? 100.0 * part / whole : 0.0;
}
