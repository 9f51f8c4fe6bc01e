/* The bench's results: one row per (device, pattern, N), printed as a table (full or brief),
 * JSON lines or CSV with the same column names and decimals in every format. */
#ifndef CLATTN_BENCH_REPORT_H
#define CLATTN_BENCH_REPORT_H

#include <stddef.h>

#include "options.h"
#include "timing.h"
#include "workload.h"

typedef struct {
    int device; /* index into the device list; the device count for the baseline */
    char label[128];
    pattern_id pattern;
    int n, window, globals;
    double plan_ms;
    run_times time;
    double gflops, peak_gflops, pct_peak;
    double speedup; /* against the baseline of the same (pattern, N); 0: no baseline */
    size_t bytes;
    double flops, io_bytes;           /* per run: the workload's flops, and Q, K, V read and O written */
    double gbps, copy_gbps, pct_copy; /* Q, K, V read and O written once, per second */
    double peak_min, peak_max;        /* the FMA probe's extremes; peak_gflops is its median */
} bench_row;

typedef struct {
    const bench_options *o;
    int baseline; /* the device index of the baseline's rows */
    bench_row *rows;
    size_t num_rows, max_rows;
} bench_results;

/* A row of w for a device (index, label), its measurements still zero. */
void row_init(bench_row *row, int device, const char *label, const workload *w);

/* Appends a copy of row; returns 0 or EXIT_RUNTIME (the message printed). */
int results_add(bench_results *r, const bench_row *row);

/* Each row's speedup against the baseline row of the same (pattern, N), where there is one. */
void results_speedups(bench_results *r);

/* In r->o->format; the table is left out when there is no row. */
void results_print(const bench_results *r);

void results_free(bench_results *r);

#endif
