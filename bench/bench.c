/* `clattn bench`: times each pattern and sequence length on OpenCL devices (profiling events),
 * the reference path and an unfused OpenBLAS baseline, against each device's measured FMA peak
 * and copy bandwidth, and writes a table, JSON lines, CSV or an SVG plot. */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exit_status.h"
#include "options.h"
#include "plot.h"
#include "probes.h"
#include "report.h"
#include "runs.h"
#include "timing.h"
#include "workload.h"
#ifdef CLATTN_HAVE_OPENBLAS
#include "baseline.h"
#endif

#define REFERENCE_MAX_N 2048 /* the double-precision host path takes seconds per run beyond */

typedef struct {
    const bench_options *o;
    bench_device devices[MAX_DEVICES];
    int num_devices;
    bench_timer timer;
    bench_results results;
    /* --rounds: every row's samples of every pass, [row][device times, then wall times][round *
     * repeat + run], and how many passes each row has had. */
    int round;       /* the pass under way */
    size_t next_row; /* after the first pass: the row of the next timed run (the sweep's order) */
    double *pool;
    int *pooled;
    size_t pool_rows;
} bench_state;

/* Opens the devices of o into a fresh state; free_state() undoes it, also after a failure. */
static int open_state(const bench_options *o, bench_state *s)
{
    *s = (bench_state){.o = o, .results = {.o = o}};
    int status = timer_init(&s->timer, o->warmup, o->repeat);
    for (int i = 0; i < o->num_devices && !status; i++)
        if ((status = device_open(o->devices[i], o->cache_dir, &s->devices[i])) == 0)
            s->num_devices++;
    s->results.baseline = s->num_devices; /* the baseline's rows come after every device's */
    return status;
}

static void free_state(bench_state *s)
{
    free(s->pool);
    free(s->pooled);
    results_free(&s->results);
    for (int d = s->num_devices - 1; d >= 0; d--) {
        peak_probe_free(&s->devices[d].peak);
        clattn_context_free(s->devices[d].ctx);
    }
    timer_free(&s->timer);
}

/* The device whose probes stand for device i: the first one on the same OpenCL device. */
static bench_device *probe_owner(bench_state *s, int i)
{
    int j = 0;
    while (clattn_context_cl_device(s->devices[j].ctx) != clattn_context_cl_device(s->devices[i].ctx))
        j++;
    return &s->devices[j];
}

/* The copy bandwidth, measured once per OpenCL device of the process, and the FMA probe's chain
 * count, chosen once; the probe is then sampled by sample_peaks(). */
static int measure_devices(bench_state *s)
{
    for (int i = 0; i < s->num_devices; i++) {
        bench_device *dev = &s->devices[i];
        if (clattn_context_is_reference(dev->ctx))
            continue;
        const bench_device *owner = probe_owner(s, i);
        if (owner != dev) {
            dev->copy_gbps = owner->copy_gbps;
            continue;
        }
        fprintf(stderr, "clattn bench: measuring the fp32 FMA peak and copy bandwidth of %s\n", dev->label);
        const char *step = NULL;
        cl_int rc = peak_probe_init(dev->ctx, &dev->peak, &step);
        if (rc == CL_SUCCESS)
            rc = copy_probe_measure(dev->ctx, &dev->copy_gbps, &step);
        if (rc != CL_SUCCESS)
            return runtime_error(dev, step, rc);
    }
    return 0;
}

/* A sample of each device's FMA probe: taken before every point and after the last, so that the
 * peak the rows are measured against saw the same machine as their workloads. */
static int sample_peaks(bench_state *s)
{
    for (int i = 0; i < s->num_devices; i++) {
        peak_probe *p = &s->devices[i].peak;
        if (p->kernel == NULL)
            continue;
        const cl_int rc = peak_probe_sample(p);
        if (rc != CL_SUCCESS)
            return runtime_error(&s->devices[i], "sampling the FMA peak", rc);
        fprintf(stderr, "clattn bench: %s FMA probe (%d chains):", s->devices[i].label, p->chains);
        for (int k = p->num_samples - PEAK_SAMPLE_LAUNCHES; k < p->num_samples; k++)
            fprintf(stderr, " %.1f", p->samples[k]);
        fprintf(stderr, " GFLOP/s\n");
    }
    return 0;
}

/* Every row of an OpenCL device against the median and extremes of all of its probe's samples. */
static void results_peaks(bench_state *s)
{
    for (int i = 0; i < s->num_devices; i++) {
        double median = 0.0, min = 0.0, max = 0.0;
        peak_probe_summary(&probe_owner(s, i)->peak, &median, &min, &max);
        for (size_t r = 0; r < s->results.num_rows; r++) {
            bench_row *row = &s->results.rows[r];
            if (row->device != i)
                continue;
            row->peak_gflops = median;
            row->peak_min = min;
            row->peak_max = max;
            row->pct_peak = percent(row->gflops, median);
        }
    }
}

/* Room in the pool for row k. */
static int pool_reserve(bench_state *s, size_t k)
{
    if (k < s->pool_rows)
        return 0;
    const size_t rows = k < 16 ? 32 : 2 * k, per_row = 2 * (size_t)s->o->rounds * (size_t)s->o->repeat;
    double *pool = realloc(s->pool, rows * per_row * sizeof *pool);
    if (pool != NULL)
        s->pool = pool;
    int *pooled = pool != NULL ? realloc(s->pooled, rows * sizeof *pooled) : NULL;
    if (pooled == NULL) {
        fprintf(stderr, "clattn bench: out of host memory for the samples\n");
        return EXIT_RUNTIME;
    }
    s->pooled = pooled;
    for (size_t i = s->pool_rows; i < rows; i++)
        s->pooled[i] = 0;
    s->pool_rows = rows;
    return 0;
}

/* A timed row: added in the first pass, its samples (still in the timer) pooled in every pass;
 * dev: NULL for the baseline, which has no measured bandwidth. */
static int record_row(bench_state *s, bench_row *row, const bench_device *dev)
{
    row->copy_gbps = dev != NULL ? dev->copy_gbps : 0.0;
    int status = s->round == 0 ? results_add(&s->results, row) : 0;
    const size_t k = s->round == 0 ? s->results.num_rows - 1 : s->next_row++;
    const bench_row *first = k < s->results.num_rows ? &s->results.rows[k] : NULL;
    if (!status && (first == NULL || first->device != row->device || first->pattern != row->pattern ||
                    first->n != row->n)) { /* the passes' order differs: a bug here, not a user error */
        fprintf(stderr, "clattn bench: pass %d of the sweep ran its points in another order\n", s->round + 1);
        status = EXIT_RUNTIME;
    }
    if (!status)
        status = pool_reserve(s, k);
    if (status)
        return status;
    const size_t repeat = (size_t)s->o->repeat, per_row = 2 * (size_t)s->o->rounds * repeat;
    double *pool = s->pool + k * per_row + (size_t)s->round * repeat;
    for (size_t i = 0; i < repeat; i++) {
        pool[i] = s->timer.samples[i];                        /* device */
        pool[per_row / 2 + i] = s->timer.samples[repeat + i]; /* wall */
    }
    s->pooled[k]++;
    /* progress: a long sweep is silent on stdout until the end */
    fprintf(stderr, "clattn bench: %s %s N=%d: %.3f ms\n", row->label, pattern_names[row->pattern], row->n,
            row->time.ms_median);
    return 0;
}

/* Each row's times over all of its passes (where there was more than one) and its rates (its peak
 * comes from results_peaks). */
static void results_rates(bench_state *s)
{
    const size_t repeat = (size_t)s->o->repeat, per_row = 2 * (size_t)s->o->rounds * repeat;
    for (size_t k = 0; k < s->results.num_rows; k++) {
        bench_row *row = &s->results.rows[k];
        if (k < s->pool_rows && s->pooled[k] > 1) {
            double *pool = s->pool + k * per_row, min, max;
            const int n = s->pooled[k] * s->o->repeat;
            row->time.ms_median = median_of(pool, n, &row->time.ms_min, &row->time.ms_max);
            row->time.wall_ms = median_of(pool + per_row / 2, n, &min, &max);
        }
        row->gflops = giga_per_second(row->flops, row->time.ms_median);
        row->gbps = giga_per_second(row->io_bytes, row->time.ms_median);
        row->pct_copy = percent(row->gbps, row->copy_gbps);
    }
}

static int bench_point(bench_state *s, const workload *w)
{
    int status = 0;
    for (int d = 0; d < s->num_devices && !status; d++) {
        const bench_device *dev = &s->devices[d];
        if (clattn_context_is_reference(dev->ctx) && w->n > REFERENCE_MAX_N)
            continue;
        bench_row row;
        row_init(&row, d, dev->label, w);
        if ((status = run_plan(&s->timer, dev, w, 0, &row)) == 0)
            status = record_row(s, &row, dev);
    }
#ifdef CLATTN_HAVE_OPENBLAS
    if (!status && baseline_applies(w)) {
        bench_row row;
        row_init(&row, s->results.baseline, BASELINE_LABEL, w);
        if ((status = baseline_run(&s->timer, w, &row)) == 0)
            status = record_row(s, &row, NULL);
    }
#endif
    return status;
}

/* The sweep, --rounds times over: the same points in the same order each time. */
static int run_sweep(bench_state *s)
{
    int status = 0;
    for (s->round = 0; s->round < s->o->rounds && !status; s->round++) {
        s->next_row = 0;
        for (int p = 0; p < PATTERN_COUNT && !status; p++)
            for (int i = 0; i < s->o->num_lengths && s->o->patterns[p] && !status; i++) {
                workload w;
                if ((status = sample_peaks(s)) == 0 &&
                    (status = workload_create(s->o, (pattern_id)p, s->o->lengths[i], &w)) == 0) {
                    status = bench_point(s, &w);
                    workload_free(&w);
                }
            }
    }
    return status;
}

int bench_main(int argc, char **argv)
{
    bench_options o;
    int status = options_parse(argc, argv, &o);
    if (status)
        return status < 0 ? 0 : status;
    if (o.save) {
        fprintf(stderr, "clattn bench: --save: only clattn tune saves tiles (see clattn bench --help)\n");
        return EXIT_USAGE;
    }
    if (o.num_devices == 0)
        options_default_devices(&o);
    FILE *plot = NULL; /* opened before the sweep, so that a bad path costs no run */
    if (o.plot != NULL && (plot = fopen(o.plot, "w")) == NULL) {
        fprintf(stderr, "clattn bench: --plot '%s': %s\n", o.plot, strerror(errno));
        return EXIT_USAGE;
    }
    bench_state s;
    status = open_state(&o, &s);
    if (!status)
        status = measure_devices(&s);
    if (!status)
        status = run_sweep(&s);
    if (!status)
        status = sample_peaks(&s);
    /* What finished before a failure is still worth printing. */
    results_rates(&s);
    results_peaks(&s);
    results_speedups(&s.results);
    results_print(&s.results);
    if (plot != NULL) {
        const int plot_status = plot_write(&s.results, plot);
        if ((fclose(plot) != 0 || plot_status) && !status) {
            fprintf(stderr, "clattn bench: --plot '%s': writing failed\n", o.plot);
            status = EXIT_RUNTIME;
        }
    }
    free_state(&s);
    return status;
}
