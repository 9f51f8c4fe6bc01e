/* The double-precision host reference of SPEC.md: visibility.c decides which keys a query row
 * sees, summary and extra keys join the same softmax, and a textbook two-pass softmax does the
 * rest. It is the oracle of the device kernels, so it favours being plainly right over speed.
 * Float16 and bfloat16 tensors are widened to float32 copies first and O rounded once at the end. */
#define _POSIX_C_SOURCE 200809L

#include "reference.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clattn_advanced.h"
#include "dtype.h"
#include "problem.h"
#include "visibility.h"

/* What every worker reads: the problem, its tensors and the tables built once per run. */
typedef struct {
    const clattn_problem *p;
    const clattn_host_tensors *t;
    const clattn_visibility *vis; /* S(i) of p */
    const float *summary_k;       /* [B, Hkv, Ns, D], Ns = clattn__summary_count(p); or NULL */
    const float *summary_v;       /* [B, Hkv, Ns, Dv]; or NULL */
    size_t num_pairs;             /* B * H (batch, head) pairs: the units of work */
    size_t num_workers;
} shared_run;

/* One worker: pairs first, first + num_workers, ...; scratch for the key set of one row. */
typedef struct {
    const shared_run *run;
    size_t first;
    const float **keys;   /* [Nk + Ns + Nx]: the key rows of S(i), in softmax order */
    const float **values; /* [Nk + Ns + Nx]: their value rows */
    double *logits;       /* [Nk + Ns + Nx] */
    pthread_t thread;
    int threaded; /* 1 once `thread` runs this worker */
} worker;

/* The rows one (batch, head) pair draws its keys from. */
typedef struct {
    const float *k, *v;   /* [Nk, D], [Nk, Dv]: K and V of kv head h / (H / Hkv) */
    const float *kg, *vg; /* [Nk, D], [Nk, Dv]: Kg and Vg of that head; NULL without them */
    const float *sk, *sv; /* [Ns, D], [Ns, Dv]: summary tokens; NULL without them */
    const float *xk, *xv; /* [Nx, D], [Nx, Dv]: extra keys; NULL without them */
    int valid;            /* keys j >= valid are padding */
    int num_summary;      /* summary tokens of this batch entry (clattn__summary_blocks) */
} head_keys;

/* One query row: its position and the facts every key test asks about it. */
typedef struct {
    int pos;    /* p(i) = i + Nk - Nq; negative for early rows when Nq > Nk */
    int valid;  /* keys of its batch entry that are not padding */
    int global; /* p(i) is in G: the row is dense */
} query_row;

/* Rows [index * rows, (index + 1) * rows) of a [.., rows, width] tensor; NULL when it is absent. */
static const float *rows_of(const void *data, size_t index, int rows, int width)
{
    return data != NULL ? (const float *)data + index * (size_t)rows * (size_t)width : NULL;
}

static size_t push_key(worker *w, size_t n, const float *key, const float *value)
{
    w->keys[n] = key;
    w->values[n] = value;
    return n + 1;
}

/* Gathers S(i) into w->keys / w->values: the visible rows of `k`/`v` (K, V or Kg, Vg), then,
 * for rows that use K and V, the visible summary tokens and the extra keys. */
static size_t gather_keys(worker *w, const head_keys *hk, const query_row *row, int separate)
{
    const clattn_problem *p = w->run->p;
    const float *k = separate ? hk->kg : hk->k;
    const float *v = separate ? hk->vg : hk->v;
    size_t n = 0;
    for (int j = 0; j < p->kv_len; j++)
        if (clattn_visibility_key(w->run->vis, row->valid, row->pos, j))
            n = push_key(w, n, k + (size_t)j * p->head_dim, v + (size_t)j * p->value_dim);
    if (separate)
        return n; /* Longformer's global projection sees neither summary nor extra keys */
    for (int c = 0; c < hk->num_summary; c++)
        if (clattn_visibility_summary(w->run->vis, row->valid, row->pos, c))
            n = push_key(w, n, hk->sk + (size_t)c * p->head_dim, hk->sv + (size_t)c * p->value_dim);
    for (int x = 0; x < p->extra_len; x++)
        n = push_key(w, n, hk->xk + (size_t)x * p->head_dim, hk->xv + (size_t)x * p->value_dim);
    return n;
}

static double dot(const float *a, const float *b, int n)
{
    double sum = 0.0;
    for (int e = 0; e < n; e++)
        sum += (double)a[e] * (double)b[e];
    return sum;
}

/* out [Dv] = softmax over the n gathered keys of scale * q·k, applied to their values, with the
 * maximum subtracted first so that large logits cannot overflow. Returns the log of the
 * denominator of the unshifted softmax; an empty set gives 0 and -inf rather than 0/0.
 * Non-finite inputs go through this formula as IEEE arithmetic has them, which is what SPEC.md
 * means and what the kernels match class by class (NaN, +inf, -inf, finite; cl/common.cl's
 * write_row): a NaN logit has weight exp(NaN - max), NaN, whatever the max (`>` skips it); a +inf
 * logit makes the max +inf and its weight exp(inf - inf), NaN; a -inf logit weighs exp(-inf - max)
 * = 0 beside a finite max, and when every logit is -inf so is the max and every weight is
 * exp(-inf + inf), NaN; an infinite value times a positive weight stays infinite, times 0 is NaN. */
static double softmax_gathered(const worker *w, size_t n, const float *q, float *out)
{
    const clattn_problem *p = w->run->p;
    if (n == 0) {
        memset(out, 0, (size_t)p->value_dim * sizeof *out);
        return -INFINITY;
    }
    double max = -INFINITY;
    for (size_t j = 0; j < n; j++) {
        w->logits[j] = (double)p->scale * dot(q, w->keys[j], p->head_dim);
        if (w->logits[j] > max)
            max = w->logits[j];
    }
    double acc[CLATTN_MAX_HEAD_DIM] = {0.0}; /* [Dv] */
    double denominator = 0.0;
    for (size_t j = 0; j < n; j++) {
        const double weight = exp(w->logits[j] - max);
        denominator += weight;
        for (int e = 0; e < p->value_dim; e++)
            acc[e] += weight * (double)w->values[j][e];
    }
    for (int e = 0; e < p->value_dim; e++)
        out[e] = (float)(acc[e] / denominator);
    return max + log(denominator);
}

/* Row i of pair (b, h); `index` = (b * H + h) * Nq + i, its place in O and LSE. */
static void attend_row(worker *w, const head_keys *hk, size_t index, int i)
{
    const shared_run *run = w->run;
    const clattn_problem *p = run->p;
    const int pos = i + p->kv_len - p->q_len;
    const query_row row = {.pos = pos, .valid = hk->valid, .global = clattn_visibility_row_global(run->vis, pos)};
    const int separate = row.global && p->global_qkv;
    const float *q = (const float *)(separate ? run->t->qg.data : run->t->q.data) + index * (size_t)p->head_dim;
    /* A padding row keeps the empty set: output 0, LSE -inf. */
    const size_t n = pos < row.valid ? gather_keys(w, hk, &row, separate) : 0;
    const double lse = softmax_gathered(w, n, q, (float *)run->t->out.data + index * (size_t)p->value_dim);
    if (run->t->lse.data != NULL)
        ((float *)run->t->lse.data)[index] = (float)lse;
}

static head_keys head_keys_of(const shared_run *run, size_t pair)
{
    const clattn_problem *p = run->p;
    const clattn_host_tensors *t = run->t;
    const int b = (int)(pair / (size_t)p->heads);
    const int h = (int)(pair % (size_t)p->heads);
    const size_t kv = (size_t)b * (size_t)p->kv_heads + (size_t)(h / (p->heads / p->kv_heads));
    const int valid = clattn__valid_keys(p, t->seq_lens, b);
    const int ns = clattn__summary_count(p);
    return (head_keys){
        .k = rows_of(t->k.data, kv, p->kv_len, p->head_dim),
        .v = rows_of(t->v.data, kv, p->kv_len, p->value_dim),
        .kg = p->global_qkv ? rows_of(t->kg.data, kv, p->kv_len, p->head_dim) : NULL,
        .vg = p->global_qkv ? rows_of(t->vg.data, kv, p->kv_len, p->value_dim) : NULL,
        .sk = rows_of(run->summary_k, kv, ns, p->head_dim),
        .sv = rows_of(run->summary_v, kv, ns, p->value_dim),
        .xk = p->extra_len > 0 ? rows_of(t->kx.data, kv, p->extra_len, p->head_dim) : NULL,
        .xv = p->extra_len > 0 ? rows_of(t->vx.data, kv, p->extra_len, p->value_dim) : NULL,
        .valid = valid,
        .num_summary = clattn__summary_blocks(p, valid),
    };
}

static void *work(void *arg)
{
    worker *w = arg;
    const shared_run *run = w->run;
    for (size_t pair = w->first; pair < run->num_pairs; pair += run->num_workers) {
        const head_keys hk = head_keys_of(run, pair);
        for (int i = 0; i < run->p->q_len; i++)
            attend_row(w, &hk, pair * (size_t)run->p->q_len + (size_t)i, i);
    }
    return NULL;
}

/* means [blocks, width] = the summary blocks' means (clattn__summary_keys) of the rows of
 * x [valid.., width], summed in double and rounded once to float32, the precision of every other
 * key. */
static void block_means(const clattn_problem *p, const float *x, int valid, int width, float *means)
{
    for (int c = 0; c < clattn__summary_blocks(p, valid); c++) {
        int lo, hi;
        clattn__summary_keys(p, valid, c, &lo, &hi);
        for (int e = 0; e < width; e++) {
            double sum = 0.0;
            for (int j = lo; j < hi; j++)
                sum += (double)x[(size_t)j * (size_t)width + (size_t)e];
            means[(size_t)c * (size_t)width + (size_t)e] = (float)(sum / (double)(hi - lo));
        }
    }
}

/* Summary tokens of every (batch, kv head), once per run rather than once per query row; each
 * batch entry averages only its valid keys. *summary owns [B, Hkv, Ns, D] then [B, Hkv, Ns, Dv],
 * which run->summary_k and run->summary_v point into. */
static int build_summaries(shared_run *run, float **summary, clattn__error *err)
{
    const clattn_problem *p = run->p;
    const size_t ns = (size_t)clattn__summary_count(p);
    const size_t kv_count = (size_t)p->batch * (size_t)p->kv_heads;
    *summary = NULL;
    if (ns == 0)
        return CLATTN_STATUS_OK;
    *summary = calloc(kv_count * ns * (size_t)(p->head_dim + p->value_dim), sizeof **summary);
    if (*summary == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "reference: %zu summary tokens", kv_count * ns);
    float *const sk = *summary;
    float *const sv = sk + kv_count * ns * (size_t)p->head_dim;
    for (size_t kv = 0; kv < kv_count; kv++) {
        const int valid = clattn__valid_keys(p, run->t->seq_lens, (int)(kv / (size_t)p->kv_heads));
        block_means(p, rows_of(run->t->k.data, kv, p->kv_len, p->head_dim), valid, p->head_dim,
                    sk + kv * ns * (size_t)p->head_dim);
        block_means(p, rows_of(run->t->v.data, kv, p->kv_len, p->value_dim), valid, p->value_dim,
                    sv + kv * ns * (size_t)p->value_dim);
    }
    run->summary_k = sk;
    run->summary_v = sv;
    return CLATTN_STATUS_OK;
}

static void worker_free(worker *w)
{
    free(w->logits);
    free(w->values);
    free(w->keys);
}

/* Scratch for key sets of up to `capacity` keys; on failure nothing stays allocated. */
static int worker_alloc(worker *w, size_t capacity)
{
    w->keys = malloc(capacity * sizeof *w->keys);
    w->values = malloc(capacity * sizeof *w->values);
    w->logits = malloc(capacity * sizeof *w->logits);
    if (w->keys != NULL && w->values != NULL && w->logits != NULL)
        return 1;
    worker_free(w);
    return 0;
}

/* One worker per online CPU, at most one per (batch, head) pair. */
static size_t worker_count(size_t num_pairs)
{
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    const size_t n = cpus > 1 ? (size_t)cpus : 1;
    return n < num_pairs ? n : num_pairs;
}

/* Runs every worker, the first on the calling thread. A thread that cannot be started costs only
 * time: its share then runs here too. */
static void run_workers(worker *workers, size_t count)
{
    for (size_t k = 1; k < count; k++)
        workers[k].threaded = pthread_create(&workers[k].thread, NULL, work, &workers[k]) == 0;
    work(&workers[0]);
    for (size_t k = 1; k < count; k++) {
        if (workers[k].threaded)
            pthread_join(workers[k].thread, NULL);
        else
            work(&workers[k]);
    }
}

/* t's tensors in float32 (SPEC.md, "Element types"): in float16 or bfloat16 storage, every input
 * the problem reads widened exactly and room for a float32 O; in float32, t itself. */
static int widen_run(const clattn_problem *p, const clattn_host_tensors *t, clattn__wide_tensors *wide,
                     clattn__error *err)
{
    clattn__tensor_need needs[CLATTN__T_COUNT];
    clattn__tensor_needs(p, needs);
    size_t counts[CLATTN__T_COUNT] = {0};
    for (int i = 0; i < CLATTN__T_COUNT; i++)
        if (i != CLATTN__T_LSE && needs[i].needed) /* LSE is float32 in every storage */
            counts[i] = needs[i].bytes / clattn__dtype_size(p->dtype);
    return clattn__widen_tensors(p->dtype, t, counts, wide, err);
}

int clattn__reference_run(const clattn_problem *p, const clattn_host_tensors *t, clattn__error *err)
{
    int status = clattn__check_host_tensors(p, t, err); /* the same rule as the device path's */
    if (status != CLATTN_STATUS_OK)
        return status;
    clattn__wide_tensors wide = {0};
    clattn_visibility vis = {0};
    float *summary = NULL;
    worker *workers = NULL;
    size_t allocated = 0;
    /* The largest S(i): every key, every summary token, every extra key. */
    const size_t capacity = (size_t)p->kv_len + (size_t)clattn__summary_count(p) + (size_t)p->extra_len;
    shared_run run = {.p = p, .t = &wide.t, .vis = &vis, .num_pairs = (size_t)p->batch * (size_t)p->heads};
    run.num_workers = worker_count(run.num_pairs);

    if ((status = widen_run(p, t, &wide, err)) != CLATTN_STATUS_OK)
        goto cleanup;
    if ((status = clattn__visibility_init_normalized(&vis, p)) != CLATTN_STATUS_OK) {
        status = clattn__fail(err, status, "reference: %s", vis.message);
        goto cleanup;
    }
    if ((status = build_summaries(&run, &summary, err)) != CLATTN_STATUS_OK)
        goto cleanup;
    workers = calloc(run.num_workers, sizeof *workers);
    if (workers == NULL) {
        status = clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "reference: %zu workers", run.num_workers);
        goto cleanup;
    }
    for (; allocated < run.num_workers; allocated++) {
        workers[allocated] = (worker){.run = &run, .first = allocated};
        if (!worker_alloc(&workers[allocated], capacity)) {
            status = clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY,
                                  "reference: key list of %zu entries per worker", capacity);
            goto cleanup;
        }
    }
    run_workers(workers, run.num_workers);
    clattn__narrow_output(p->dtype, &wide, t->out.data); /* O rounded once into its storage */

cleanup:
    while (allocated > 0)
        worker_free(&workers[--allocated]);
    free(workers);
    free(summary);
    clattn_visibility_free(&vis);
    clattn__wide_tensors_free(&wide);
    return status;
}
