/* Sequence-parallel attention over MPI (clattn_mpi.h): the shards, one status agreed by every rank,
 * ring attention for dense and causal problems, the halo exchange of a sliding window overlapped
 * with the rows that need no halo, and the merge of the partial results (mpi_block.c). */
#include "clattn_mpi.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "mpi_block.h"
#include "problem.h"

#define TAG_RING 1701
#define TAG_HALO 1702

struct clattn_mpi_plan {
    clattn_context *ctx;
    MPI_Comm comm; /* the caller's, duplicated */
    int rank, size;
    clattn_problem p;       /* whole, normalized */
    int offset;             /* Nk - Nq: the position of query row 0 */
    int *k_first, *k_count; /* [P] each rank's keys */
    int *q_first, *q_count; /* [P] each rank's query rows */
    int *statuses;          /* [P] */
    clattn__block_runner runner;
    clattn_mpi_traffic traffic;
};

/* A sliding window's exchange: the key range a rank needs, and one message per rank pair. */
typedef struct {
    int lo, hi;           /* keys [lo, hi) this rank's rows need */
    int *send_first;      /* [P] first key sent to each rank (count in send_count) */
    int *send_count;      /* [P] */
    int *recv_first;      /* [P] */
    int *recv_count;      /* [P] */
    float *send, *recv;   /* packed [K rows | V rows] per message, back to back */
    float *k_all, *v_all; /* [B, Hkv, hi - lo, D or Dv] */
} halo_state;

/* One run's buffers, all allocated before the ranks agree to start. */
typedef struct {
    float *acc_o, *acc_lse;   /* [B, H, nq, Dv], [B, H, nq] */
    float *part_o, *part_lse; /* the same */
    float *q_rows;            /* [B, H, nq, D] rows gathered for a block of some rows */
    float *k_tmp, *v_tmp;     /* a block's keys */
    float *ring[2];           /* [K | V] of the largest shard */
    halo_state halo;
} run_state;

static int mpi_failed(int rc, const char *what, clattn__error *err)
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
        return mpi_failed(rc, "MPI_Allgather of the statuses", err);
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
        return mpi_failed(rc, "MPI_Bcast of a message", err);
    text[sizeof text - 1] = '\0';
    return clattn__fail(err, mp->statuses[first], "rank %d: %s", first, text);
}

static int report(clattn_context *ctx, int status, const clattn__error *err)
{
    return ctx != NULL ? clattn__context_report(ctx, status, err) : status;
}

static size_t kv_floats(const clattn_problem *p, int keys)
{
    return (size_t)p->batch * (size_t)p->kv_heads * (size_t)keys * (size_t)(p->head_dim + p->value_dim);
}

/* The checks every rank makes alike (the whole problem) or on its own (its count). */
static int check_plan(clattn_mpi_plan *mp, const clattn_problem *problem, clattn__error *err)
{
    int status = clattn__problem_normalize(problem, &mp->p, err);
    if (status)
        return status;
    const clattn_problem *p = &mp->p;
    if (p->grid_pattern != CLATTN_GRID_NONE || p->summary_block > 0 || p->global_qkv ||
        (p->window && p->num_global > 0))
        return clattn__fail(err, CLATTN_STATUS_UNSUPPORTED,
                            "across ranks: grid patterns, summary tokens, separate global projections and global "
                            "tokens with a window are not available yet");
    if (p->q_len > p->kv_len)
        return clattn__fail(err, CLATTN_STATUS_UNSUPPORTED, "across ranks: q_len = %d > kv_len = %d", p->q_len,
                            p->kv_len);
    long long total = 0;
    for (int s = 0; s < mp->size; s++) {
        if (mp->k_count[s] < 0)
            return clattn__fail(err, CLATTN_STATUS_INVALID_SIZE, "rank %d: k_count = %d", s, mp->k_count[s]);
        total += mp->k_count[s];
        if (kv_floats(p, mp->k_count[s]) > (size_t)INT32_MAX)
            return clattn__fail(err, CLATTN_STATUS_SIZE_OVERFLOW, "rank %d: a shard of %d keys is over 2^31 floats", s,
                                mp->k_count[s]);
    }
    if (total != p->kv_len)
        return clattn__fail(err, CLATTN_STATUS_SHAPE_MISMATCH, "the ranks' k_count add up to %lld, kv_len = %d", total,
                            p->kv_len);
    mp->p.global_idx = NULL; /* without a window they change no S(i) */
    mp->p.num_global = 0;
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
        return report(ctx, mpi_failed(rc, "MPI_Comm_dup", &err), &err);
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
        status = mpi_failed(rc, "MPI_Allgather of the shards", &err);
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

static int check_tensor(const clattn_host_tensor *t, size_t floats, const char *name, clattn__error *err)
{
    const size_t bytes = floats * sizeof(float);
    if (bytes > 0 && t->data == NULL)
        return clattn__fail(err, CLATTN_STATUS_NULL_ARGUMENT, "%s is NULL", name);
    if (t->data != NULL && t->bytes < bytes)
        return clattn__fail(err, CLATTN_STATUS_BUFFER_TOO_SMALL, "%s holds %zu bytes, this rank's shard needs %zu",
                            name, t->bytes, bytes);
    return CLATTN_STATUS_OK;
}

static int check_shard(const clattn_mpi_plan *mp, const clattn_host_tensors *t, clattn__error *err)
{
    if (t == NULL)
        return clattn__fail(err, CLATTN_STATUS_NULL_ARGUMENT, "tensors is NULL");
    const clattn_problem *p = &mp->p;
    const size_t qh = (size_t)p->batch * (size_t)p->heads * (size_t)mp->q_count[mp->rank];
    const size_t kh = (size_t)p->batch * (size_t)p->kv_heads * (size_t)mp->k_count[mp->rank];
    const size_t xh = (size_t)p->batch * (size_t)p->kv_heads * (size_t)p->extra_len;
    const clattn_host_tensor none = {0};
    int status = check_tensor(&t->q, qh * (size_t)p->head_dim, "q", err);
    if (!status)
        status = check_tensor(&t->k, kh * (size_t)p->head_dim, "k", err);
    if (!status)
        status = check_tensor(&t->v, kh * (size_t)p->value_dim, "v", err);
    if (!status)
        status = check_tensor(&t->out, qh * (size_t)p->value_dim, "out", err);
    if (!status)
        status = check_tensor(t->lse.data != NULL ? &t->lse : &none, t->lse.data != NULL ? qh : 0, "lse", err);
    if (!status)
        status = check_tensor(&t->kx, xh * (size_t)p->head_dim, "kx", err);
    if (!status)
        status = check_tensor(&t->vx, xh * (size_t)p->value_dim, "vx", err);
    if (!status)
        status = clattn__check_seq_lens(p, t->seq_lens, err);
    return status;
}

static int alloc_floats(float **out, size_t n, const char *what, clattn__error *err)
{
    *out = malloc((n ? n : 1) * sizeof(float));
    return *out != NULL ? CLATTN_STATUS_OK
                        : clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%s of %zu floats", what, n);
}

static int use_ring(const clattn_problem *p)
{
    return !p->window;
}

/* The keys a rank's rows need under the window: [lo, hi); empty for a rank without rows. */
static void needed_keys(const clattn_mpi_plan *mp, int s, int *lo, int *hi)
{
    const clattn_problem *p = &mp->p;
    if (mp->q_count[s] == 0) {
        *lo = *hi = 0;
        return;
    }
    const long long qa = (long long)mp->q_first[s] + mp->offset;
    const long long right = p->causal ? 0 : p->window_right;
    const long long a = qa - p->window_left, b = (long long)mp->k_first[s] + mp->k_count[s] + right;
    *lo = a < 0 ? 0 : (int)a;
    *hi = b > p->kv_len ? p->kv_len : (int)b;
}

/* Keys of rank `from` that rank `to` needs and does not hold: [*first, *first + *count). */
static void halo_overlap(const clattn_mpi_plan *mp, int from, int to, int *first, int *count)
{
    int lo, hi;
    needed_keys(mp, to, &lo, &hi);
    const int a = lo > mp->k_first[from] ? lo : mp->k_first[from];
    const int b = hi < mp->k_first[from] + mp->k_count[from] ? hi : mp->k_first[from] + mp->k_count[from];
    *first = a;
    *count = from != to && b > a ? b - a : 0;
}

static int prepare_halo(const clattn_mpi_plan *mp, halo_state *h, clattn__error *err)
{
    const size_t n = (size_t)mp->size;
    h->send_first = calloc(n, sizeof(int));
    h->send_count = calloc(n, sizeof(int));
    h->recv_first = calloc(n, sizeof(int));
    h->recv_count = calloc(n, sizeof(int));
    if (h->send_first == NULL || h->send_count == NULL || h->recv_first == NULL || h->recv_count == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "halo tables");
    size_t sent = 0, received = 0;
    for (int s = 0; s < mp->size; s++) {
        halo_overlap(mp, mp->rank, s, &h->send_first[s], &h->send_count[s]);
        halo_overlap(mp, s, mp->rank, &h->recv_first[s], &h->recv_count[s]);
        sent += kv_floats(&mp->p, h->send_count[s]);
        received += kv_floats(&mp->p, h->recv_count[s]);
    }
    needed_keys(mp, mp->rank, &h->lo, &h->hi);
    const clattn_problem *p = &mp->p;
    const size_t all = (size_t)p->batch * (size_t)p->kv_heads * (size_t)(h->hi - h->lo);
    int status = alloc_floats(&h->send, sent, "halo sends", err);
    if (!status)
        status = alloc_floats(&h->recv, received, "halo receives", err);
    if (!status)
        status = alloc_floats(&h->k_all, all * (size_t)p->head_dim, "halo keys", err);
    if (!status)
        status = alloc_floats(&h->v_all, all * (size_t)p->value_dim, "halo values", err);
    return status;
}

static void free_halo(halo_state *h)
{
    free(h->v_all);
    free(h->k_all);
    free(h->recv);
    free(h->send);
    free(h->recv_count);
    free(h->recv_first);
    free(h->send_count);
    free(h->send_first);
}

static int prepare_run(const clattn_mpi_plan *mp, run_state *st, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const size_t rows = (size_t)p->batch * (size_t)p->heads * (size_t)mp->q_count[mp->rank];
    int status = alloc_floats(&st->acc_o, rows * (size_t)p->value_dim, "accumulated output", err);
    if (!status)
        status = alloc_floats(&st->acc_lse, rows, "accumulated LSE", err);
    if (!status)
        status = alloc_floats(&st->part_o, rows * (size_t)p->value_dim, "partial output", err);
    if (!status)
        status = alloc_floats(&st->part_lse, rows, "partial LSE", err);
    if (!status)
        status = alloc_floats(&st->q_rows, rows * (size_t)p->head_dim, "query rows", err);
    if (status)
        return status;
    for (size_t i = 0; i < rows; i++)
        st->acc_lse[i] = -INFINITY;
    memset(st->acc_o, 0, rows * (size_t)p->value_dim * sizeof(float));
    if (use_ring(p)) {
        int most = 0;
        for (int s = 0; s < mp->size; s++)
            most = mp->k_count[s] > most ? mp->k_count[s] : most;
        status = alloc_floats(&st->ring[0], kv_floats(p, most), "ring buffer", err);
        if (!status)
            status = alloc_floats(&st->ring[1], kv_floats(p, most), "ring buffer", err);
        return status;
    }
    status = prepare_halo(mp, &st->halo, err);
    const size_t keys = (size_t)p->batch * (size_t)p->kv_heads * (size_t)(st->halo.hi - st->halo.lo);
    if (!status)
        status = alloc_floats(&st->k_tmp, keys * (size_t)p->head_dim, "block keys", err);
    if (!status)
        status = alloc_floats(&st->v_tmp, keys * (size_t)p->value_dim, "block values", err);
    return status;
}

static void free_run(run_state *st)
{
    free_halo(&st->halo);
    free(st->ring[1]);
    free(st->ring[0]);
    free(st->v_tmp);
    free(st->k_tmp);
    free(st->q_rows);
    free(st->part_lse);
    free(st->part_o);
    free(st->acc_lse);
    free(st->acc_o);
}

/* This rank's rows [row0, row0 + rows) (of its q_count) against keys k, v of positions [k_first,
 * k_first + nk), merged into the accumulated result. */
static int run_rows(clattn_mpi_plan *mp, run_state *st, const clattn_host_tensors *t, int row0, int rows,
                    const float *k, const float *v, int k_first, int nk, clattn__block_mode mode, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const int nq = mp->q_count[mp->rank];
    if (rows <= 0 || nk <= 0)
        return CLATTN_STATUS_OK;
    const size_t heads = (size_t)p->batch * (size_t)p->heads;
    const float *q = t->q.data;
    if (rows != nq) {
        clattn__copy_rows(st->q_rows, rows, 0, t->q.data, nq, row0, rows, heads, p->head_dim);
        q = st->q_rows;
    }
    const clattn__block b = {.q = q,
                             .q_first = mp->q_first[mp->rank] + mp->offset + row0,
                             .nq = rows,
                             .k = k,
                             .v = v,
                             .k_first = k_first,
                             .nk = nk,
                             .mode = mode};
    const int status = clattn__block_run(&mp->runner, &b, t->seq_lens, st->part_o, st->part_lse, err);
    if (status)
        return status;
    for (size_t h = 0; h < heads; h++)
        clattn__merge_rows(st->acc_o + (h * (size_t)nq + (size_t)row0) * (size_t)p->value_dim,
                           st->acc_lse + h * (size_t)nq + (size_t)row0, st->part_o + h * (size_t)rows * p->value_dim,
                           st->part_lse + h * (size_t)rows, (size_t)rows, p->value_dim);
    return CLATTN_STATUS_OK;
}

/* Ring attention: at step t this rank holds the shard of rank (rank - t) mod P and passes it on. */
static int run_ring(clattn_mpi_plan *mp, run_state *st, const clattn_host_tensors *t, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const int r = mp->rank, P = mp->size, nq = mp->q_count[r];
    const size_t kh = (size_t)p->batch * (size_t)p->kv_heads;
    memcpy(st->ring[0], t->k.data, kh * (size_t)mp->k_count[r] * (size_t)p->head_dim * sizeof(float));
    memcpy(st->ring[0] + kh * (size_t)mp->k_count[r] * (size_t)p->head_dim, t->v.data,
           kh * (size_t)mp->k_count[r] * (size_t)p->value_dim * sizeof(float));
    int status = CLATTN_STATUS_OK;
    for (int step = 0; step < P; step++) {
        const int src = ((r - step) % P + P) % P, next = (src - 1 + P) % P;
        MPI_Request req[2];
        int nreq = 0, rc = MPI_SUCCESS;
        if (step < P - 1) {
            const int in = (int)kv_floats(p, mp->k_count[next]), out = (int)kv_floats(p, mp->k_count[src]);
            rc = MPI_Irecv(st->ring[1], in, MPI_FLOAT, (r - 1 + P) % P, TAG_RING, mp->comm, &req[nreq++]);
            if (rc == MPI_SUCCESS)
                rc = MPI_Isend(st->ring[0], out, MPI_FLOAT, (r + 1) % P, TAG_RING, mp->comm, &req[nreq++]);
            mp->traffic.bytes_sent += (unsigned long long)out * sizeof(float);
            mp->traffic.bytes_received += (unsigned long long)in * sizeof(float);
            mp->traffic.messages_sent++;
            mp->traffic.messages_received++;
        }
        /* Causal: shards before this rank's are seen whole, its own by the causal rule, later ones
         * not at all. A failed block leaves the ring going, so that no rank waits forever. */
        const int kc = mp->k_count[src];
        const float *k = st->ring[0], *v = st->ring[0] + kh * (size_t)kc * (size_t)p->head_dim;
        if (!status && (!p->causal || src < r))
            status = run_rows(mp, st, t, 0, nq, k, v, mp->k_first[src], kc, CLATTN__BLOCK_VISIBLE, err);
        else if (!status && src == r)
            status = run_rows(mp, st, t, 0, nq, k, v, mp->k_first[src], kc, CLATTN__BLOCK_ALIGNED, err);
        if (rc == MPI_SUCCESS && nreq > 0)
            rc = MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS)
            return mpi_failed(rc, "the ring's exchange", err);
        float *swap = st->ring[0];
        st->ring[0] = st->ring[1];
        st->ring[1] = swap;
    }
    return status;
}

/* Keys [first, first + count) of the assembled halo range, contiguous in st->k_tmp, st->v_tmp. */
static void halo_keys(const clattn_mpi_plan *mp, run_state *st, int first, int count)
{
    const halo_state *h = &st->halo;
    const size_t kh = (size_t)mp->p.batch * (size_t)mp->p.kv_heads;
    clattn__copy_rows(st->k_tmp, count, 0, h->k_all, h->hi - h->lo, first - h->lo, count, kh, mp->p.head_dim);
    clattn__copy_rows(st->v_tmp, count, 0, h->v_all, h->hi - h->lo, first - h->lo, count, kh, mp->p.value_dim);
}

/* Packs this rank's keys [first, first + count) as [K rows | V rows] at dst; returns its floats. */
static size_t pack_keys(const clattn_mpi_plan *mp, const clattn_host_tensors *t, int first, int count, float *dst)
{
    const clattn_problem *p = &mp->p;
    const size_t kh = (size_t)p->batch * (size_t)p->kv_heads, kc = (size_t)mp->k_count[mp->rank];
    const int row = first - mp->k_first[mp->rank];
    clattn__copy_rows(dst, count, 0, t->k.data, (int)kc, row, count, kh, p->head_dim);
    clattn__copy_rows(dst + kh * (size_t)count * (size_t)p->head_dim, count, 0, t->v.data, (int)kc, row, count, kh,
                      p->value_dim);
    return kv_floats(p, count);
}

/* Places keys [first, first + count) into the halo range, from rows [src_first, src_first + count)
 * of k, v (src_rows rows a head). */
static void place_keys(const clattn_mpi_plan *mp, halo_state *h, int first, int count, const float *k, const float *v,
                       int src_rows, int src_first)
{
    const size_t kh = (size_t)mp->p.batch * (size_t)mp->p.kv_heads;
    clattn__copy_rows(h->k_all, h->hi - h->lo, first - h->lo, k, src_rows, src_first, count, kh, mp->p.head_dim);
    clattn__copy_rows(h->v_all, h->hi - h->lo, first - h->lo, v, src_rows, src_first, count, kh, mp->p.value_dim);
}

/* A sliding window: the rows that need only this rank's keys run while the halo travels; then
 * the rows near the left edge run over the left halo and what follows it, and the rows near the
 * right edge add the right halo. */
static int run_halo(clattn_mpi_plan *mp, run_state *st, const clattn_host_tensors *t, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    halo_state *h = &st->halo;
    const int r = mp->rank, P = mp->size;
    const size_t kh = (size_t)p->batch * (size_t)p->kv_heads;
    MPI_Request *req = malloc(2 * (size_t)P * sizeof *req);
    if (req == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%d requests", 2 * P);
    int nreq = 0, rc = MPI_SUCCESS;
    size_t at = 0;
    for (int s = 0; s < P && rc == MPI_SUCCESS; s++)
        if (h->recv_count[s] > 0) {
            const size_t n = kv_floats(p, h->recv_count[s]);
            rc = MPI_Irecv(h->recv + at, (int)n, MPI_FLOAT, s, TAG_HALO, mp->comm, &req[nreq++]);
            at += n;
            mp->traffic.bytes_received += n * sizeof(float);
            mp->traffic.messages_received++;
        }
    at = 0;
    for (int s = 0; s < P && rc == MPI_SUCCESS; s++)
        if (h->send_count[s] > 0) {
            const size_t n = pack_keys(mp, t, h->send_first[s], h->send_count[s], h->send + at);
            rc = MPI_Isend(h->send + at, (int)n, MPI_FLOAT, s, TAG_HALO, mp->comm, &req[nreq++]);
            at += n;
            mp->traffic.bytes_sent += n * sizeof(float);
            mp->traffic.messages_sent++;
        }
    const int nq = mp->q_count[r], kf = mp->k_first[r], kc = mp->k_count[r], end = kf + kc;
    const int qa = mp->q_first[r] + mp->offset;
    const int right = p->causal ? 0 : p->window_right;
    /* Rows at or after `split` see no key before this shard. */
    const long long edge = (long long)kf + p->window_left;
    const int split = edge < qa ? qa : edge > end ? end : (int)edge;
    int status = run_rows(mp, st, t, split - qa, end - split, t->k.data, t->v.data, kf, kc, CLATTN__BLOCK_ALIGNED, err);
    if (rc == MPI_SUCCESS && nreq > 0)
        rc = MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
    free(req);
    if (rc != MPI_SUCCESS)
        return mpi_failed(rc, "the halo exchange", err);
    if (nq == 0)
        return status;
    const int own = kf > h->lo ? kf : h->lo, own_end = end < h->hi ? end : h->hi;
    if (own_end > own)
        place_keys(mp, h, own, own_end - own, t->k.data, t->v.data, kc, own - kf);
    at = 0;
    for (int s = 0; s < P; s++)
        if (h->recv_count[s] > 0) {
            const size_t nk = kh * (size_t)h->recv_count[s];
            place_keys(mp, h, h->recv_first[s], h->recv_count[s], h->recv + at, h->recv + at + nk * p->head_dim,
                       h->recv_count[s], 0);
            at += kv_floats(p, h->recv_count[s]);
        }
    if (!status && split > qa) { /* rows [qa, split): every key they see is in [lo, split + right) */
        const long long e = (long long)split + right;
        const int stop = e > h->hi ? h->hi : (int)e;
        halo_keys(mp, st, h->lo, stop - h->lo);
        status =
            run_rows(mp, st, t, 0, split - qa, st->k_tmp, st->v_tmp, h->lo, stop - h->lo, CLATTN__BLOCK_ALIGNED, err);
    }
    const int first = end - right > split ? end - right : split; /* rows that reach past the shard */
    if (!status && h->hi > end && first < end) {
        halo_keys(mp, st, end, h->hi - end);
        status = run_rows(mp, st, t, first - qa, end - first, st->k_tmp, st->v_tmp, end, h->hi - end,
                          CLATTN__BLOCK_ALIGNED, err);
    }
    return status;
}

/* Padding rows (p(i) >= seq_lens[b]) output 0 and LSE -inf whatever the blocks left there. */
static void clear_padding(const clattn_mpi_plan *mp, run_state *st, const int *seq_lens)
{
    const clattn_problem *p = &mp->p;
    const int nq = mp->q_count[mp->rank], pos0 = mp->q_first[mp->rank] + mp->offset;
    for (int b = 0; b < p->batch && seq_lens != NULL; b++)
        for (int h = 0; h < p->heads; h++)
            for (int i = 0; i < nq; i++) {
                if (pos0 + i < seq_lens[b])
                    continue;
                const size_t row = ((size_t)b * (size_t)p->heads + (size_t)h) * (size_t)nq + (size_t)i;
                memset(st->acc_o + row * (size_t)p->value_dim, 0, (size_t)p->value_dim * sizeof(float));
                st->acc_lse[row] = -INFINITY;
            }
}

int clattn_mpi_plan_run_host(clattn_mpi_plan *plan, const clattn_host_tensors *tensors)
{
    if (plan == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    clattn__error err = {{0}};
    clattn_mpi_plan *mp = plan;
    memset(&mp->traffic, 0, sizeof mp->traffic);
    run_state st;
    memset(&st, 0, sizeof st);
    int status = check_shard(mp, tensors, &err);
    if (!status)
        status = prepare_run(mp, &st, &err);
    status = agree(mp, status, &err);
    const clattn_problem *p = &mp->p;
    const int nq = mp->q_count[mp->rank];
    if (!status) {
        status = use_ring(p) ? run_ring(mp, &st, tensors, &err) : run_halo(mp, &st, tensors, &err);
        if (!status && p->extra_len > 0)
            status = run_rows(mp, &st, tensors, 0, nq, tensors->kx.data, tensors->vx.data, 0, p->extra_len,
                              CLATTN__BLOCK_EXTRA, &err);
        status = agree(mp, status, &err);
    }
    if (!status) {
        const size_t rows = (size_t)p->batch * (size_t)p->heads * (size_t)nq;
        clear_padding(mp, &st, tensors->seq_lens);
        if (rows > 0)
            memcpy(tensors->out.data, st.acc_o, rows * (size_t)p->value_dim * sizeof(float));
        if (rows > 0 && tensors->lse.data != NULL)
            memcpy(tensors->lse.data, st.acc_lse, rows * sizeof(float));
    }
    free_run(&st);
    return report(mp->ctx, status, &err);
}
