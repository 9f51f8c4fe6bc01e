/* The unfused baseline: attention as a C user writes it with OpenBLAS (two SGEMMs around a
 * masked softmax). Compiled only when CMake finds OpenBLAS (CLATTN_HAVE_OPENBLAS). */
#ifndef CLATTN_BENCH_BASELINE_H
#define CLATTN_BENCH_BASELINE_H

#include "report.h"
#include "timing.h"
#include "workload.h"

#define BASELINE_LABEL "openblas"
#define BASELINE_MAX_N 8192 /* the baseline holds an N x N score matrix */

/* Whether the baseline runs w: it holds N x N scores, assumes Nq = N (no decode) and float32
 * storage (SGEMM's). */
int baseline_applies(const workload *w);

/* Times the baseline on w: row->plan_ms (the scratch and the mask, what the caller prepares
 * once), row->bytes, row->time. Returns 0 or EXIT_RUNTIME (the message printed). */
int baseline_run(const bench_timer *t, const workload *w, bench_row *row);

#endif
