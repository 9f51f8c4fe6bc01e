/* The unfused OpenBLAS baseline: per head S = scale Q Kᵀ into an N x NK scratch, a masked softmax
 * per row, O = P V. Summary tokens (block means) are appended to the keys; the mask comes from
 * S(i) (clattn_visibility_key, clattn_visibility_summary) once per point, like a caller's mask tensor. */
#include "baseline.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exit_status.h"

typedef struct {
    const workload *w;
    int nk;               /* N keys + summary tokens */
    unsigned char *mask;  /* [N, NK] 1: the row sees the key */
    float *scores;        /* [N, NK] */
    float *keys, *values; /* [NK, D] one key/value head with its summary tokens (NULL without) */
} blas_run;

int baseline_applies(const workload *w)
{
    return w->n <= BASELINE_MAX_N && w->pattern != PATTERN_DECODE && w->problem.dtype == CLATTN_DTYPE_F32;
}

/* Whether row i (at position i: Nq = N) sees key j of the N keys followed by the summary tokens. */
static int key_visible(const workload *w, int i, int j)
{
    return j < w->n ? clattn_visibility_key(&w->visibility, w->n, i, j)
                    : clattn_visibility_summary(&w->visibility, w->n, i, j - w->n);
}

/* x [N, D] followed by the mean of every summary block of rows (clattn_visibility_summary_of_key
 * says which block a row joins). */
static void append_block_means(const workload *w, const float *x, int n, int d, float *out)
{
    memcpy(out, x, (size_t)n * d * sizeof(float));
    float *means = out + (size_t)n * d;
    memset(means, 0, (size_t)w->num_summary * d * sizeof(float));
    int first = 0; /* the first row of the current block */
    for (int j = 0; j < n; j++) {
        const int c = clattn_visibility_summary_of_key(&w->visibility, n, j);
        if (c < 0)
            continue;
        for (int e = 0; e < d; e++)
            means[(size_t)c * d + e] += x[(size_t)j * d + e];
        const int last = j + 1 == n || clattn_visibility_summary_of_key(&w->visibility, n, j + 1) != c;
        for (int e = 0; last && e < d; e++)
            means[(size_t)c * d + e] /= (float)(j + 1 - first);
        if (last)
            first = j + 1;
    }
}

static void masked_softmax(float *row, const unsigned char *mask, int n)
{
    float max = -INFINITY, sum = 0.0f;
    for (int j = 0; j < n; j++)
        if (mask[j] && row[j] > max)
            max = row[j];
    for (int j = 0; j < n; j++) {
        row[j] = mask[j] ? expf(row[j] - max) : 0.0f;
        sum += row[j];
    }
    for (int j = 0; j < n; j++)
        row[j] /= sum;
}

static int blas_run_once(void *state, double *device_ms)
{
    const blas_run *r = state;
    const clattn_problem *p = &r->w->problem;
    const int n = r->w->n, d = p->head_dim, group = p->heads / p->kv_heads;
    (void)device_ms; /* host time only */
    for (int b = 0; b < p->batch; b++)
        for (int kh = 0; kh < p->kv_heads; kh++) {
            const size_t kv_offset = ((size_t)b * p->kv_heads + kh) * n * d;
            const float *keys = (const float *)r->w->k + kv_offset, *values = (const float *)r->w->v + kv_offset;
            if (r->keys != NULL) {
                append_block_means(r->w, keys, n, d, r->keys);
                append_block_means(r->w, values, n, d, r->values);
                keys = r->keys;
                values = r->values;
            }
            for (int h = kh * group; h < (kh + 1) * group; h++) {
                const size_t q_offset = ((size_t)b * p->heads + h) * n * d;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, r->nk, d, 1.0f / sqrtf((float)d),
                            (const float *)r->w->q + q_offset, d, keys, d, 0.0f, r->scores, r->nk);
                for (int i = 0; i < n; i++)
                    masked_softmax(r->scores + (size_t)i * r->nk, r->mask + (size_t)i * r->nk, r->nk);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, r->nk, 1.0f, r->scores, r->nk, values, d,
                            0.0f, (float *)r->w->out + q_offset, d);
            }
        }
    return 0;
}

int baseline_run(const bench_timer *t, const workload *w, bench_row *row)
{
    const int n = w->n, nk = n + w->num_summary, summaries = w->num_summary > 0;
    const size_t cells = (size_t)n * nk, head_bytes = (size_t)nk * w->problem.head_dim * sizeof(float);
    const double start = now_ms();
    blas_run r = {w,
                  nk,
                  malloc(cells),
                  malloc(cells * sizeof(float)),
                  summaries ? malloc(head_bytes) : NULL,
                  summaries ? malloc(head_bytes) : NULL};
    int status = 0;
    if (!r.mask || !r.scores || (summaries && (!r.keys || !r.values))) {
        fprintf(stderr, "clattn bench: " BASELINE_LABEL ": N = %d: out of host memory for the score matrix\n", n);
        status = EXIT_RUNTIME;
    } else {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < nk; j++)
                r.mask[(size_t)i * nk + j] = (unsigned char)key_visible(w, i, j);
        row->plan_ms = now_ms() - start;
        row->bytes = 2 * w->q_bytes + 2 * w->kv_bytes + cells * (1 + sizeof(float)) + 2 * summaries * head_bytes;
        status = time_runs(t, blas_run_once, &r, &row->time);
    }
    free(r.values);
    free(r.keys);
    free(r.scores);
    free(r.mask);
    return status;
}
