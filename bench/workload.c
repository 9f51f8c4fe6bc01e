/* Bench points: the problem of each pattern at one N, unit-normal inputs from a fixed seed in the
 * storage type of --dtype, and the FLOPs counted from the keys each query row sees
 * (clattn_visibility_count, SPEC.md's S(i)). */
#include "workload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "dtype.h" /* the library's own rounding to float16 and bfloat16 */
#include "exit_status.h"
#include "random.h"

void workload_free(workload *w)
{
    clattn_visibility_free(&w->visibility);
    free(w->out);
    free(w->v);
    free(w->k);
    free(w->q);
    free(w->global_idx);
}

/* 4 * D FLOPs per key a row sees (two multiply-adds: the score and the value). O(globals) per
 * row for a window, so N = 262144 still counts in a moment. */
double workload_flops(const clattn_visibility *v)
{
    const clattn_problem *p = &v->problem;
    long long keys = 0;
    for (int row = 0; row < p->q_len; row++) /* row i sits at position i + Nk - Nq */
        keys += clattn_visibility_count(v, p->kv_len, row + p->kv_len - p->q_len);
    return 4.0 * p->head_dim * (double)keys * p->batch * p->heads;
}

int workload_outputs_differ(const workload *w, const void *out, const void *want, double *max_err, size_t *at)
{
    const clattn_dtype dtype = w->problem.dtype;
    const double step = dtype == CLATTN_DTYPE_F16 ? 0x1p-10 : dtype == CLATTN_DTYPE_BF16 ? 0x1p-7 : 0.0;
    int differ = 0;
    *max_err = 0.0;
    *at = 0;
    for (size_t i = 0; i < w->q_bytes / dtype_bytes(dtype); i++) {
        const double a = clattn__load_element(dtype, out, i), b = clattn__load_element(dtype, want, i);
        if ((isnan(a) && isnan(b)) || a == b) /* equal infinities too */
            continue;
        const double err = isnan(a) || isnan(b) ? INFINITY : fabs(a - b);
        if (err > *max_err) {
            *max_err = err;
            *at = i;
        }
        differ |= !(err <= 1e-3 + step * fabs(b));
    }
    return differ;
}

void workload_random(clattn_dtype dtype, void *x, size_t count, unsigned long long *seed)
{
    if (dtype == CLATTN_DTYPE_F32) {
        random_normal(x, count, seed);
        return;
    }
    float chunk[4096]; /* even, so that the values are those of one random_normal call */
    for (size_t done = 0; done < count; done += sizeof chunk / sizeof chunk[0]) {
        const size_t n = count - done < sizeof chunk / sizeof chunk[0] ? count - done : sizeof chunk / sizeof chunk[0];
        random_normal(chunk, n, seed);
        for (size_t i = 0; i < n; i++)
            clattn__store_element(dtype, x, done + i, chunk[i]);
    }
}

void workload_global_positions(int n, int globals, int *out)
{
    for (int g = 0; g < globals; g++)
        out[g] = (int)((long long)g * n / globals);
}

/* The 2-D grid fields of a pattern (none for the sequence patterns). */
static void grid_of(const bench_options *o, pattern_id pattern, int n, clattn_problem *p)
{
    static const clattn_grid_pattern grids[] = {CLATTN_GRID_AXIAL_ROW, CLATTN_GRID_CRISS_CROSS,
                                                CLATTN_GRID_NEIGHBORHOOD, CLATTN_GRID_WINDOW};
    if (!pattern_is_grid(pattern))
        return;
    p->grid_pattern = grids[pattern - PATTERN_AXIAL];
    options_grid(o, n, &p->grid_h, &p->grid_w);
    p->grid_kernel_h = o->kernel_h;
    p->grid_kernel_w = o->kernel_w;
    p->grid_dilation = o->grid_dilation;
    p->grid_window_size = o->swin_size;
    p->grid_shift = o->swin_shift;
}

clattn_problem workload_problem(const bench_options *o, pattern_id pattern, int n)
{
    const int windowed = pattern >= PATTERN_WINDOW && pattern <= PATTERN_WINDOW_SUMMARY;
    const int decode = pattern == PATTERN_DECODE;
    clattn_problem p = {.batch = o->batch,
                        .heads = o->heads,
                        .kv_heads = o->kv_heads,
                        .q_len = decode ? 1 : n,
                        .kv_len = n,
                        .head_dim = o->head_dim,
                        .causal = pattern == PATTERN_CAUSAL || decode,
                        .window = windowed,
                        .window_left = windowed ? o->window : 0,
                        .window_right = windowed ? o->window : 0,
                        .num_global = pattern == PATTERN_WINDOW_GLOBAL ? (o->globals < n ? o->globals : n) : 0,
                        .summary_block = pattern == PATTERN_WINDOW_SUMMARY ? o->summary_block : 0,
                        .dtype = o->dtype};
    grid_of(o, pattern, n, &p);
    return p;
}

int workload_create(const bench_options *o, pattern_id pattern, int n, workload *w)
{
    *w = (workload){.problem = workload_problem(o, pattern, n), .pattern = pattern, .n = n};
    clattn_problem *p = &w->problem;
    const int globals = p->num_global;
    w->q_bytes = (size_t)o->batch * o->heads * p->q_len * o->head_dim * dtype_bytes(o->dtype);
    w->kv_bytes = (size_t)o->batch * o->kv_heads * n * o->head_dim * dtype_bytes(o->dtype);
    w->global_idx = malloc((size_t)(globals > 0 ? globals : 1) * sizeof(int));
    w->q = malloc(w->q_bytes);
    w->k = malloc(w->kv_bytes);
    w->v = malloc(w->kv_bytes);
    w->out = malloc(w->q_bytes);
    if (!w->global_idx || !w->q || !w->k || !w->v || !w->out) {
        workload_free(w);
        fprintf(stderr, "clattn bench: N = %d: out of host memory for the inputs\n", n);
        return EXIT_RUNTIME;
    }
    workload_global_positions(n, globals, w->global_idx);
    p->global_idx = w->global_idx;
    const int status = clattn_visibility_init(&w->visibility, p);
    if (status) {
        fprintf(stderr, "clattn bench: %s N = %d: the problem is not valid: %s (%d): %s\n", pattern_names[pattern], n,
                clattn_status_string(status), status, w->visibility.message);
        workload_free(w);
        return clattn_exit_status(status);
    }
    w->num_summary = clattn_visibility_summary_count(&w->visibility, n);
    unsigned long long seed = 0x5eed;
    workload_random(o->dtype, w->q, w->q_bytes / dtype_bytes(o->dtype), &seed);
    workload_random(o->dtype, w->k, w->kv_bytes / dtype_bytes(o->dtype), &seed);
    workload_random(o->dtype, w->v, w->kv_bytes / dtype_bytes(o->dtype), &seed);
    w->flops = workload_flops(&w->visibility);
    return 0;
}
