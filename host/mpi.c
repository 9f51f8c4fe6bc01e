/* Sequence-parallel attention over MPI (clattn_mpi.h): the plan and its shards, one status agreed
 * by every rank, a run's buffers and checks, the choice of pattern (mpi_ring.c, mpi_halo.c,
 * mpi_gathered.c), and a block of rows merged into their result. Everything between a run's entry
 * and its end is float32: float16 and bfloat16 shards are widened there and O rounded once. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "dtype.h"
#include "mpi_plan.h"
#include "problem.h"

int clattn__mpi_failed(int rc, const char *what, clattn__error *err)
{
    if (rc == MPI_SUCCESS)
        return CLATTN_STATUS_OK;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    return clattn__fail(err, CLATTN_STATUS_MPI, "%s failed: %s", what, text);
}

/* Every rank learns every rank's status; all return the first failing rank's, with its message. */
static int agree(clattn_mpi_plan *mp, int status, clattn__error *err)
{
    int rc = MPI_Allgather(&status, 1, MPI_INT, mp->statuses, 1, MPI_INT, mp->comm);
    if (rc != MPI_SUCCESS)
        return clattn__mpi_failed(rc, "MPI_Allgather of the statuses", err);
    int first = -1;
    for (int s = 0; s < mp->size && first < 0; s++)
        if (mp->statuses[s] != CLATTN_STATUS_OK)
            first = s;
    if (first < 0)
        return CLATTN_STATUS_OK;
    char text[CLATTN_MESSAGE_SIZE];
    memcpy(text, err->text, sizeof text);
    rc = MPI_Bcast(text, (int)sizeof text, MPI_CHAR, first, mp->comm);
    if (rc != MPI_SUCCESS)
        return clattn__mpi_failed(rc, "MPI_Bcast of a message", err);
    text[sizeof text - 1] = '\0';
    return clattn__fail(err, mp->statuses[first], "rank %d: %s", first, text);
}

static int report(clattn_context *ctx, int status, const clattn__error *err)
{
    return ctx != NULL ? clattn__context_report(ctx, status, err) : status;
}

size_t clattn__mpi_kv_floats(const clattn_problem *p, int keys)
{
    return (size_t)p->batch * (size_t)p->kv_heads * (size_t)keys * (size_t)(p->head_dim + p->value_dim);
}

static int compare_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The checks every rank makes alike (the whole problem) or on its own (its count). */
static int check_plan(clattn_mpi_plan *mp, const clattn_problem *problem, clattn__error *err)
{
    int status = clattn__problem_normalize(problem, &mp->p, err);
    if (status)
        return status;
    /* The patterns and their block plans work in float32 (SPEC.md's arithmetic); only a run's
     * entry and end see the caller's storage. */
    mp->storage = mp->p.dtype;
    mp->p.dtype = CLATTN_DTYPE_F32;
    const clattn_problem *p = &mp->p;
    if (p->grid_pattern != CLATTN_GRID_NONE || p->global_qkv)
        return clattn__fail(err, CLATTN_STATUS_UNSUPPORTED,
                            "across ranks: grid patterns and separate global projections are not available yet");
    if (p->q_len > p->kv_len)
        return clattn__fail(err, CLATTN_STATUS_UNSUPPORTED, "across ranks: q_len = %d > kv_len = %d", p->q_len,
                            p->kv_len);
    long long total = 0;
    for (int s = 0; s < mp->size; s++) {
        if (mp->k_count[s] < 0)
            return clattn__fail(err, CLATTN_STATUS_INVALID_SIZE, "rank %d: k_count = %d", s, mp->k_count[s]);
        total += mp->k_count[s];
        if (clattn__mpi_kv_floats(p, mp->k_count[s]) > (size_t)INT32_MAX)
            return clattn__fail(err, CLATTN_STATUS_SIZE_OVERFLOW, "rank %d: a shard of %d keys is over 2^31 floats", s,
                                mp->k_count[s]);
    }
    if (total != p->kv_len)
        return clattn__fail(err, CLATTN_STATUS_SHAPE_MISMATCH, "the ranks' k_count add up to %lld, kv_len = %d", total,
                            p->kv_len);
    if (!p->window) /* dense and causal rows see the global tokens already */
        mp->p.num_global = 0;
    mp->globals = malloc((size_t)(p->num_global > 0 ? p->num_global : 1) * sizeof(int));
    if (mp->globals == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%d global indices", p->num_global);
    if (p->num_global > 0)
        memcpy(mp->globals, p->global_idx, (size_t)p->num_global * sizeof(int));
    qsort(mp->globals, (size_t)p->num_global, sizeof(int), compare_int);
    mp->p.global_idx = mp->globals;
    mp->offset = p->kv_len - p->q_len;
    for (int s = 0, first = 0; s < mp->size; s++) {
        mp->k_first[s] = first;
        first += mp->k_count[s];
        const int qa = mp->k_first[s] > mp->offset ? mp->k_first[s] : mp->offset, end = first;
        mp->q_first[s] = qa - mp->offset;
        mp->q_count[s] = end > qa ? end - qa : 0;
    }
    return clattn__block_runner_init(&mp->runner, mp->ctx, &mp->p, err);
}

int clattn_mpi_plan_create(clattn_context *ctx, MPI_Comm comm, const clattn_problem *problem, int k_count,
                           clattn_mpi_plan **out)
{
    clattn__error err = {{0}};
    if (out != NULL)
        *out = NULL;
    clattn_mpi_plan *mp = calloc(1, sizeof *mp);
    if (mp == NULL)
        return clattn__fail(&err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "MPI plan");
    int rc = MPI_Comm_dup(comm, &mp->comm);
    if (rc != MPI_SUCCESS) {
        free(mp);
        return report(ctx, clattn__mpi_failed(rc, "MPI_Comm_dup", &err), &err);
    }
    MPI_Comm_set_errhandler(mp->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(mp->comm, &mp->rank);
    MPI_Comm_size(mp->comm, &mp->size);
    mp->ctx = ctx;
    const size_t n = (size_t)mp->size;
    mp->k_first = calloc(n, sizeof(int));
    mp->k_count = calloc(n, sizeof(int));
    mp->q_first = calloc(n, sizeof(int));
    mp->q_count = calloc(n, sizeof(int));
    mp->statuses = calloc(n, sizeof(int));
    if (mp->k_first == NULL || mp->k_count == NULL || mp->q_first == NULL || mp->q_count == NULL ||
        mp->statuses == NULL) {
        clattn_mpi_plan_free(mp); /* collective: every rank fails here alike, or hangs in MPI first */
        return report(ctx, clattn__fail(&err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "MPI plan tables"), &err);
    }
    int status = ctx == NULL || problem == NULL || out == NULL
                     ? clattn__fail(&err, CLATTN_STATUS_NULL_ARGUMENT, "ctx, problem or out is NULL")
                     : CLATTN_STATUS_OK;
    rc = MPI_Allgather(&k_count, 1, MPI_INT, mp->k_count, 1, MPI_INT, mp->comm);
    if (rc != MPI_SUCCESS)
        status = clattn__mpi_failed(rc, "MPI_Allgather of the shards", &err);
    else {
        if (!status)
            status = check_plan(mp, problem, &err);
        status = agree(mp, status, &err);
    }
    if (status) {
        clattn_mpi_plan_free(mp);
        return report(ctx, status, &err);
    }
    *out = mp;
    return CLATTN_STATUS_OK;
}

void clattn_mpi_plan_free(clattn_mpi_plan *plan)
{
    if (plan == NULL)
        return;
    clattn__block_runner_free(&plan->runner);
    free(plan->globals);
    free(plan->statuses);
    free(plan->q_count);
    free(plan->q_first);
    free(plan->k_count);
    free(plan->k_first);
    MPI_Comm_free(&plan->comm);
    free(plan);
}

void clattn_mpi_plan_shard(const clattn_mpi_plan *plan, int *k_first, int *k_count, int *q_first, int *q_count)
{
    const int r = plan->rank;
    if (k_first != NULL)
        *k_first = plan->k_first[r];
    if (k_count != NULL)
        *k_count = plan->k_count[r];
    if (q_first != NULL)
        *q_first = plan->q_first[r];
    if (q_count != NULL)
        *q_count = plan->q_count[r];
}

void clattn_mpi_plan_traffic(const clattn_mpi_plan *plan, clattn_mpi_traffic *out)
{
    *out = plan->traffic;
}

/* ----------------------------------------------------------------------------------------- */

/* A shard's tensor of `elements` elements of `size` bytes. */
static int check_tensor(const clattn_host_tensor *t, size_t elements, size_t size, const char *name, clattn__error *err)
{
    const size_t bytes = elements * size;
    if (bytes > 0 && t->data == NULL)
        return clattn__fail(err, CLATTN_STATUS_NULL_ARGUMENT, "%s is NULL", name);
    if (t->data != NULL && t->bytes < bytes)
        return clattn__fail(err, CLATTN_STATUS_BUFFER_TOO_SMALL, "%s holds %zu bytes, this rank's shard needs %zu",
                            name, t->bytes, bytes);
    return CLATTN_STATUS_OK;
}

/* elements[CLATTN__T_COUNT]: the elements of each tensor of this rank's shard (LSE's only when it
 * is given; 0 for Qg, Kg, Vg, which the ranks do not take). */
static void shard_elements(const clattn_mpi_plan *mp, const clattn_host_tensors *t, size_t *elements)
{
    const clattn_problem *p = &mp->p;
    const size_t qh = (size_t)p->batch * (size_t)p->heads * (size_t)mp->q_count[mp->rank];
    const size_t kh = (size_t)p->batch * (size_t)p->kv_heads * (size_t)mp->k_count[mp->rank];
    const size_t xh = (size_t)p->batch * (size_t)p->kv_heads * (size_t)p->extra_len;
    memset(elements, 0, CLATTN__T_COUNT * sizeof *elements);
    elements[CLATTN__T_Q] = qh * (size_t)p->head_dim;
    elements[CLATTN__T_K] = kh * (size_t)p->head_dim;
    elements[CLATTN__T_V] = kh * (size_t)p->value_dim;
    elements[CLATTN__T_OUT] = qh * (size_t)p->value_dim;
    elements[CLATTN__T_LSE] = t->lse.data != NULL ? qh : 0;
    elements[CLATTN__T_KX] = xh * (size_t)p->head_dim;
    elements[CLATTN__T_VX] = xh * (size_t)p->value_dim;
}

/* Every tensor of the shard in the caller's storage, LSE in float32, then seq_lens; elements
 * receives shard_elements. */
static int check_shard(const clattn_mpi_plan *mp, const clattn_host_tensors *t, size_t *elements, clattn__error *err)
{
#define CLATTN__TENSOR_NAME_(field, NAME) #field,
    static const char *const names[CLATTN__T_COUNT] = {CLATTN__TENSORS(CLATTN__TENSOR_NAME_)};
#undef CLATTN__TENSOR_NAME_
    if (t == NULL)
        return clattn__fail(err, CLATTN_STATUS_NULL_ARGUMENT, "tensors is NULL");
    shard_elements(mp, t, elements);
    int status = CLATTN_STATUS_OK;
    for (int i = 0; i < CLATTN__T_COUNT && !status; i++)
        status = check_tensor(clattn__host_tensor(t, i), elements[i],
                              i == CLATTN__T_LSE ? sizeof(float) : clattn__dtype_size(mp->storage), names[i], err);
    if (!status)
        status = clattn__check_seq_lens(&mp->p, t->seq_lens, err);
    return status;
}

/* The shard's inputs as float32 (SPEC.md, "Element types"): copies widened exactly from float16 or
 * bfloat16 storage, the caller's own tensors in float32. O is rounded from the run's float32
 * result at its end, LSE is float32 already. */
static int widen_shard(const clattn_mpi_plan *mp, const clattn_host_tensors *t, const size_t *elements,
                       clattn__wide_tensors *wide, clattn__error *err)
{
    size_t inputs[CLATTN__T_COUNT];
    memcpy(inputs, elements, sizeof inputs);
    inputs[CLATTN__T_OUT] = inputs[CLATTN__T_LSE] = 0;
    return clattn__widen_tensors(mp->storage, t, inputs, wide, err);
}

int clattn__mpi_alloc(float **out, size_t n, const char *what, clattn__error *err)
{
    *out = malloc((n ? n : 1) * sizeof(float));
    return *out != NULL ? CLATTN_STATUS_OK
                        : clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%s of %zu floats", what, n);
}

/* How a run goes: the halo for a window; for dense and causal problems, the queries gathered to
 * the keys when they are fewer than a shard's keys (a decode), else the ring, balanced by the
 * zigzag when causal with a query for every key. */
typedef enum { RUN_HALO, RUN_GATHERED, RUN_RING, RUN_ZIGZAG } run_kind;

static run_kind run_kind_of(const clattn_mpi_plan *mp)
{
    const clattn_problem *p = &mp->p;
    if (p->window)
        return RUN_HALO;
    const long long rows = (long long)p->q_len * p->heads, keys = (long long)p->kv_len / mp->size * p->kv_heads;
    if (rows <= keys && p->q_len < p->kv_len)
        return RUN_GATHERED;
    return p->causal && p->q_len == p->kv_len && mp->size > 1 ? RUN_ZIGZAG : RUN_RING;
}

/* Positions of the rows gathered to every rank: the global tokens' query rows under a window,
 * every query row of a decode. */
static int gathered_positions(const clattn_mpi_plan *mp, int **pos, int *n, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const int all = run_kind_of(mp) == RUN_GATHERED;
    *n = 0;
    *pos = malloc((size_t)(all ? p->q_len : p->num_global > 0 ? p->num_global : 1) * sizeof(int));
    if (*pos == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "gathered positions");
    for (int i = 0; all && i < p->q_len; i++)
        (*pos)[(*n)++] = mp->offset + i;
    for (int g = 0; !all && g < p->num_global; g++)
        if (mp->globals[g] >= mp->offset)
            (*pos)[(*n)++] = mp->globals[g];
    return CLATTN_STATUS_OK;
}

static int prepare_run(const clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const int nq = mp->q_count[mp->rank];
    const size_t heads = (size_t)p->batch * (size_t)p->heads;
    float *acc_o = NULL, *acc_lse = NULL;
    int status = clattn__mpi_alloc(&acc_o, heads * (size_t)nq * (size_t)p->value_dim, "accumulated output", err);
    if (!status)
        status = clattn__mpi_alloc(&acc_lse, heads * (size_t)nq, "accumulated LSE", err);
    st->own = (clattn__mpi_rows){.q = t->q.data, .n = nq, .acc_o = acc_o, .acc_lse = acc_lse};
    if (status)
        return status;
    memset(acc_o, 0, heads * (size_t)nq * (size_t)p->value_dim * sizeof(float));
    for (size_t i = 0; i < heads * (size_t)nq; i++)
        acc_lse[i] = -INFINITY;
    size_t most_keys = 0; /* keys a block slices into k_tmp */
    const run_kind kind = run_kind_of(mp);
    if (kind == RUN_HALO)
        status = clattn__mpi_halo_prepare(mp, st, &most_keys, err);
    else if (kind == RUN_RING)
        status = clattn__mpi_ring_prepare(mp, st, mp->k_count, err);
    int *pos = NULL, n = 0;
    if (!status && kind == RUN_ZIGZAG)
        status = clattn__mpi_zigzag_prepare(mp, st, &n, &most_keys, err);
    else if (!status && kind != RUN_RING)
        status = gathered_positions(mp, &pos, &n, err);
    if (!status && n > 0 && kind != RUN_ZIGZAG) {
        status = clattn__mpi_rows_prepare(mp, st, pos, n, err);
        if ((size_t)mp->k_count[mp->rank] > most_keys) /* a causal prefix of this rank's keys */
            most_keys = (size_t)mp->k_count[mp->rank];
    }
    free(pos);
    if (!status && p->summary_block > 0)
        status = clattn__mpi_summary_prepare(mp, st, &most_keys, err);
    const size_t rows = heads * (size_t)(n > nq ? n : nq), keys = (size_t)p->batch * (size_t)p->kv_heads * most_keys;
    if (!status)
        status = clattn__mpi_alloc(&st->part_o, rows * (size_t)p->value_dim, "partial output", err);
    if (!status)
        status = clattn__mpi_alloc(&st->part_lse, rows, "partial LSE", err);
    if (!status)
        status = clattn__mpi_alloc(&st->q_tmp, rows * (size_t)p->head_dim, "block rows", err);
    if (!status)
        status = clattn__mpi_alloc(&st->k_tmp, keys * (size_t)p->head_dim, "block keys", err);
    if (!status)
        status = clattn__mpi_alloc(&st->v_tmp, keys * (size_t)p->value_dim, "block values", err);
    if (!status && (st->k_valid = malloc((size_t)p->batch * sizeof(int))) == NULL)
        status = clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%d counts", p->batch);
    return status;
}

static void free_run(clattn__mpi_run *st)
{
    free(st->means);
    free(st->sums);
    free(st->k_valid);
    clattn__mpi_zigzag_free(st);
    clattn__mpi_gathered_free(&st->keys);
    free(st->merged);
    free(st->records);
    free(st->rows_lse);
    free(st->rows_o);
    clattn__mpi_gathered_free(&st->rows);
    clattn__mpi_halo_free(&st->halo);
    free(st->ring[1]);
    free(st->ring[0]);
    free(st->v_tmp);
    free(st->k_tmp);
    free(st->q_tmp);
    free(st->part_lse);
    free(st->part_o);
    free(st->own.acc_lse);
    free(st->own.acc_o);
}

int clattn__mpi_run_rows(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn__mpi_rows *set, int row0, int rows,
                         int pos0, const clattn__mpi_keys *keys, const int *seq_lens, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    if (rows <= 0 || keys->nk <= 0)
        return CLATTN_STATUS_OK;
    const size_t heads = (size_t)p->batch * (size_t)p->heads, dv = (size_t)p->value_dim;
    const float *q = set->q;
    if (rows != set->n) {
        clattn__copy_rows(st->q_tmp, rows, 0, set->q, set->n, row0, rows, heads, p->head_dim);
        q = st->q_tmp;
    }
    const clattn__block b = {.q = q,
                             .q_first = pos0,
                             .nq = rows,
                             .k = keys->k,
                             .v = keys->v,
                             .k_first = keys->k_first,
                             .nk = keys->nk,
                             .mode = keys->mode,
                             .globals = keys->globals,
                             .num_globals = keys->num_globals,
                             .k_valid = keys->k_valid};
    const int status = clattn__block_run(&mp->runner, &b, seq_lens, st->part_o, st->part_lse, err);
    if (status)
        return status;
    for (size_t h = 0; h < heads; h++)
        clattn__merge_rows(set->acc_o + (h * (size_t)set->n + (size_t)row0) * dv,
                           set->acc_lse + h * (size_t)set->n + (size_t)row0, st->part_o + h * (size_t)rows * dv,
                           st->part_lse + h * (size_t)rows, (size_t)rows, p->value_dim);
    return CLATTN_STATUS_OK;
}

/* The pattern's blocks, then the gathered rows (global rows of a window, decode rows), which every
 * rank joins even after its own failure, so that none waits forever. */
static int run_pattern(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, clattn__error *err)
{
    const run_kind kind = run_kind_of(mp);
    int status = CLATTN_STATUS_OK;
    if (kind == RUN_RING)
        return clattn__mpi_ring(mp, st, t, err);
    if (kind == RUN_ZIGZAG)
        return clattn__mpi_zigzag(mp, st, t, err);
    if (kind == RUN_HALO)
        status = clattn__mpi_halo(mp, st, t, err);
    if (status == CLATTN_STATUS_MPI || st->rows.n == 0)
        return status;
    clattn__error rows_err = {{0}};
    const int rows = clattn__mpi_rows_run(mp, st, t, &rows_err);
    if (!status && rows)
        *err = rows_err;
    return status ? status : rows;
}
/* Padding rows (p(i) >= seq_lens[b]) output 0 and LSE -inf whatever the blocks left there. */
static void clear_padding(const clattn_mpi_plan *mp, clattn__mpi_run *st, const int *seq_lens)
{
    const clattn_problem *p = &mp->p;
    const int nq = mp->q_count[mp->rank], pos0 = mp->q_first[mp->rank] + mp->offset;
    for (int b = 0; b < p->batch && seq_lens != NULL; b++)
        for (int h = 0; h < p->heads; h++)
            for (int i = 0; i < nq; i++) {
                if (pos0 + i < seq_lens[b])
                    continue;
                const size_t row = ((size_t)b * (size_t)p->heads + (size_t)h) * (size_t)nq + (size_t)i;
                memset(st->own.acc_o + row * (size_t)p->value_dim, 0, (size_t)p->value_dim * sizeof(float));
                st->own.acc_lse[row] = -INFINITY;
            }
}

int clattn_mpi_plan_run_host(clattn_mpi_plan *plan, const clattn_host_tensors *tensors)
{
    if (plan == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    clattn__error err = {{0}};
    clattn_mpi_plan *mp = plan;
    memset(&mp->traffic, 0, sizeof mp->traffic);
    clattn__mpi_run st;
    memset(&st, 0, sizeof st);
    clattn__wide_tensors wide = {0};
    size_t elements[CLATTN__T_COUNT];
    int status = check_shard(mp, tensors, elements, &err);
    if (!status)
        status = widen_shard(mp, tensors, elements, &wide, &err);
    const clattn_host_tensors *t = &wide.t; /* float32 from here to the end */
    if (!status)
        status = prepare_run(mp, &st, t, &err);
    status = agree(mp, status, &err);
    const clattn_problem *p = &mp->p;
    const int nq = mp->q_count[mp->rank];
    if (!status) {
        status = run_pattern(mp, &st, t, &err);
        if (p->summary_block > 0 && status != CLATTN_STATUS_MPI) { /* every rank joins its allreduce */
            clattn__error summary_err = {{0}};
            const int summary = clattn__mpi_summary(mp, &st, t, &summary_err);
            if (!status && summary) {
                status = summary;
                err = summary_err;
            }
        }
        const clattn__mpi_keys extra = {
            .k = t->kx.data, .v = t->vx.data, .nk = p->extra_len, .mode = CLATTN__BLOCK_EXTRA};
        if (!status && p->extra_len > 0)
            status = clattn__mpi_run_rows(mp, &st, &st.own, 0, nq, 0, &extra, t->seq_lens, &err);
        status = agree(mp, status, &err);
    }
    if (!status) {
        const size_t rows = (size_t)p->batch * (size_t)p->heads * (size_t)nq;
        clear_padding(mp, &st, t->seq_lens);
        /* O rounded once into the caller's storage; LSE is float32 in every storage. */
        clattn__store_elements(mp->storage, tensors->out.data, st.own.acc_o, rows * (size_t)p->value_dim);
        if (rows > 0 && tensors->lse.data != NULL)
            memcpy(tensors->lse.data, st.own.acc_lse, rows * sizeof(float));
    }
    free_run(&st);
    clattn__wide_tensors_free(&wide);
    return report(mp->ctx, status, &err);
}
