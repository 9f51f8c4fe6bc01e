/* A bench point, one (pattern, N): the problem, its host inputs (the same for every device) and
 * what it costs in FLOPs and bytes. */
#ifndef CLATTN_BENCH_WORKLOAD_H
#define CLATTN_BENCH_WORKLOAD_H

#include <stddef.h>

#include "clattn_advanced.h"
#include "options.h"

typedef struct {
    clattn_problem problem;
    clattn_visibility visibility; /* S(i) of the problem: the FLOP count and the baseline's masks */
    pattern_id pattern;
    int n, num_summary;
    int *global_idx;        /* [num_global], spread evenly over [0, N) */
    float *q, *k, *v, *out; /* Q, O [B, H, Nq, D]; K, V [B, Hkv, N, D]; Nq = N, or 1 (decode) */
    size_t q_bytes, kv_bytes;
    double flops; /* 4 * D * (keys each query sees), summed over rows, heads and batch */
} workload;

/* The problem of a pattern at N (global_idx left NULL; workload_create fills it). */
clattn_problem workload_problem(const bench_options *o, pattern_id pattern, int n);

/* The bench's global tokens: `globals` positions spread evenly over [0, n). */
void workload_global_positions(int n, int globals, int *out);

/* 4 * D FLOPs per key each row sees (S(i) of v's problem), summed over rows, heads and batch. */
double workload_flops(const clattn_visibility *v);

/* Returns 0 or an exit status (the message printed); on failure *w needs no free. */
int workload_create(const bench_options *o, pattern_id pattern, int n, workload *w);
void workload_free(workload *w);

#endif
