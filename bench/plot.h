/* `clattn bench --plot FILE.svg`: time and GFLOP/s against N, log-log, one series per
 * (device, pattern). */
#ifndef CLATTN_BENCH_PLOT_H
#define CLATTN_BENCH_PLOT_H

#include <stdio.h>

#include "report.h"

/* Writes the SVG of r to f; returns 0 or EXIT_RUNTIME when writing failed. */
int plot_write(const bench_results *r, FILE *f);

#endif
