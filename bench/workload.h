/* A bench point, one (pattern, N): the problem, its host inputs (the same for every device, in
 * the storage type of --dtype) and what it costs in FLOPs and bytes. */
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
    int *global_idx;          /* [num_global], spread evenly over [0, N) */
    void *q, *k, *v, *out;    /* Q, O [B, H, Nq, D]; K, V [B, Hkv, N, D]; Nq = N, or 1 (decode); problem.dtype */
    size_t q_bytes, kv_bytes; /* at the storage type's size */
    double flops;             /* 4 * D * (keys each query sees), summed over rows, heads and batch */
} workload;

/* The problem of a pattern at N (global_idx left NULL; workload_create fills it). */
clattn_problem workload_problem(const bench_options *o, pattern_id pattern, int n);

/* The bench's global tokens: `globals` positions spread evenly over [0, n). */
void workload_global_positions(int n, int globals, int *out);

/* 4 * D FLOPs per key each row sees (S(i) of v's problem), summed over rows, heads and batch. */
double workload_flops(const clattn_visibility *v);

/* Fills x [count] with unit-normal values (random_normal from *seed, which it advances) stored in
 * `dtype`, rounded to nearest even as the library rounds. */
void workload_random(clattn_dtype dtype, void *x, size_t count, unsigned long long *seed);

/* Whether out, an O of w's shape and storage type, differs from want by more than two right plans
 * of the problem may: 1e-3, plus one rounding step of the storage type at the value (float16
 * 2^-10 of it, bfloat16 2^-7), or a NaN on one side only. *max_err: the largest difference (inf
 * for a NaN), *at: its element. */
int workload_outputs_differ(const workload *w, const void *out, const void *want, double *max_err, size_t *at);

/* Returns 0 or an exit status (the message printed); on failure *w needs no free. */
int workload_create(const bench_options *o, pattern_id pattern, int n, workload *w);
void workload_free(workload *w);

#endif
