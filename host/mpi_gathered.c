/* Rows or keys at given positions gathered from the ranks that hold them to every rank
 * (MPI_Allgatherv): the global keys of a window, and the query rows that see every key (global
 * rows; every row of a decode). Such rows are computed by each rank over its own keys and their
 * partial results merged by an LSE reduction in rank order, which their owners keep. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_plan.h"

/* Floats of one position: a query row of every head (rows) or a key and value of every head. */
static size_t width(const clattn_problem *p, int rows)
{
    return rows ? (size_t)p->heads * (size_t)p->head_dim : (size_t)p->kv_heads * (size_t)(p->head_dim + p->value_dim);
}

int clattn__mpi_gathered_prepare(const clattn_mpi_plan *mp, clattn__mpi_gathered *g, const int *pos, int n, int rows,
                                 clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const size_t per = (size_t)p->batch * width(p, rows);
    g->n = n;
    g->pos = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    g->from = malloc((size_t)(mp->size + 1) * sizeof(int));
    if (g->pos == NULL || g->from == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%d gathered positions", n);
    memcpy(g->pos, pos, (size_t)n * sizeof(int));
    for (int s = 0, i = 0; s <= mp->size; s++) {
        while (s < mp->size && i < n && pos[i] < mp->k_first[s])
            i++;
        g->from[s] = s < mp->size ? i : n;
    }
    if ((size_t)n * per > (size_t)INT_MAX)
        return clattn__fail(err, CLATTN_STATUS_SIZE_OVERFLOW, "%d gathered positions of %zu floats", n, per);
    const size_t own = (size_t)(g->from[mp->rank + 1] - g->from[mp->rank]) * per;
    const size_t heads = (size_t)p->batch * (size_t)(rows ? p->heads : p->kv_heads) * (size_t)n;
    int status = clattn__mpi_alloc(&g->packed, own, "gathered pack", err);
    if (!status)
        status = clattn__mpi_alloc(&g->all, (size_t)n * per, "gathered rows", err);
    if (!status)
        status = clattn__mpi_alloc(&g->a, heads * (size_t)p->head_dim, "gathered Q or K", err);
    if (!status && !rows)
        status = clattn__mpi_alloc(&g->b, heads * (size_t)p->value_dim, "gathered V", err);
    return status;
}

void clattn__mpi_gathered_free(clattn__mpi_gathered *g)
{
    free(g->b);
    free(g->a);
    free(g->all);
    free(g->packed);
    free(g->from);
    free(g->pos);
    memset(g, 0, sizeof *g);
}

/* Packs this rank's positions of g from its shard of t, gathers every rank's, reassembles them. */
int clattn__mpi_gather(clattn_mpi_plan *mp, clattn__mpi_gathered *g, const clattn_host_tensors *t, int rows,
                       clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const int r = mp->rank, P = mp->size, first = g->from[r], own = g->from[r + 1] - first;
    const int q0 = mp->q_first[r] + mp->offset, kf = mp->k_first[r];
    const size_t per = (size_t)p->batch * width(p, rows);
    const size_t qh = (size_t)p->batch * (size_t)p->heads, kh = (size_t)p->batch * (size_t)p->kv_heads;
    for (int i = 0; i < own; i++) {
        const int x = g->pos[first + i];
        if (rows)
            clattn__copy_rows(g->packed, own, i, t->q.data, mp->q_count[r], x - q0, 1, qh, p->head_dim);
        else {
            clattn__copy_rows(g->packed, own, i, t->k.data, mp->k_count[r], x - kf, 1, kh, p->head_dim);
            clattn__copy_rows(g->packed + kh * (size_t)own * (size_t)p->head_dim, own, i, t->v.data, mp->k_count[r],
                              x - kf, 1, kh, p->value_dim);
        }
    }
    int *counts = malloc(2 * (size_t)P * sizeof(int));
    if (counts == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%d counts", 2 * P);
    int *displs = counts + P;
    for (int s = 0; s < P; s++) {
        counts[s] = (int)((size_t)(g->from[s + 1] - g->from[s]) * per);
        displs[s] = (int)((size_t)g->from[s] * per);
    }
    const int rc = MPI_Allgatherv(g->packed, counts[r], MPI_FLOAT, g->all, counts, displs, MPI_FLOAT, mp->comm);
    free(counts);
    if (rc != MPI_SUCCESS)
        return clattn__mpi_failed(rc, "MPI_Allgatherv of gathered positions", err);
    /* A ring allgather's traffic: each rank passes on every pack but one. */
    const unsigned long long moved = (unsigned long long)((size_t)(g->n - own) * per * sizeof(float));
    mp->traffic.bytes_sent += moved;
    mp->traffic.bytes_received += moved;
    mp->traffic.messages_sent += (unsigned long long)(P - 1);
    mp->traffic.messages_received += (unsigned long long)(P - 1);
    for (int s = 0; s < P; s++) {
        const int cnt = g->from[s + 1] - g->from[s];
        const float *src = g->all + (size_t)g->from[s] * per;
        if (rows)
            clattn__copy_rows(g->a, g->n, g->from[s], src, cnt, 0, cnt, qh, p->head_dim);
        else {
            clattn__copy_rows(g->a, g->n, g->from[s], src, cnt, 0, cnt, kh, p->head_dim);
            clattn__copy_rows(g->b, g->n, g->from[s], src + kh * (size_t)cnt * (size_t)p->head_dim, cnt, 0, cnt, kh,
                              p->value_dim);
        }
    }
    return CLATTN_STATUS_OK;
}

int clattn__mpi_rows_prepare(const clattn_mpi_plan *mp, clattn__mpi_run *st, const int *pos, int n, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const size_t rows = (size_t)p->batch * (size_t)p->heads * (size_t)n;
    int status = clattn__mpi_gathered_prepare(mp, &st->rows, pos, n, 1, err);
    if (!status)
        status = clattn__mpi_alloc(&st->rows_o, rows * (size_t)p->value_dim, "gathered rows' output", err);
    if (!status)
        status = clattn__mpi_alloc(&st->rows_lse, rows, "gathered rows' LSE", err);
    if (!status)
        status = clattn__mpi_alloc(&st->records, rows * (size_t)(1 + p->value_dim), "merge records", err);
    if (!status)
        status = clattn__mpi_alloc(&st->merged, rows * (size_t)(1 + p->value_dim), "merged records", err);
    return status;
}

/* The reduction of records [lse, o[Dv]]: inout = in merged with inout. */
static void merge_records(void *in, void *inout, int *len, MPI_Datatype *type)
{
    int bytes = 0;
    MPI_Type_size(*type, &bytes);
    const int dv = bytes / (int)sizeof(float) - 1;
    const float *a = in;
    float *b = inout;
    for (int i = 0; i < *len; i++, a += dv + 1, b += dv + 1)
        clattn__merge_rows(b + 1, b, a + 1, a, 1, dv);
}

/* Merges every rank's partial results of the gathered rows; the owners keep their rows' merge. */
static int merge_on_owners(clattn_mpi_plan *mp, clattn__mpi_run *st, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const clattn__mpi_gathered *g = &st->rows;
    const size_t heads = (size_t)p->batch * (size_t)p->heads, dv = (size_t)p->value_dim, rec = dv + 1;
    for (size_t i = 0; i < heads * (size_t)g->n; i++) {
        st->records[i * rec] = st->rows_lse[i];
        memcpy(st->records + i * rec + 1, st->rows_o + i * dv, dv * sizeof(float));
    }
    MPI_Datatype type;
    MPI_Op op;
    int rc = MPI_Type_contiguous((int)rec, MPI_FLOAT, &type);
    if (rc == MPI_SUCCESS)
        rc = MPI_Type_commit(&type);
    if (rc == MPI_SUCCESS) {
        rc = MPI_Op_create(merge_records, 0, &op); /* not commutative: merged in rank order, the same every run */
        if (rc == MPI_SUCCESS) {
            rc = MPI_Allreduce(st->records, st->merged, (int)(heads * (size_t)g->n), type, op, mp->comm);
            MPI_Op_free(&op);
        }
        MPI_Type_free(&type);
    }
    if (rc != MPI_SUCCESS)
        return clattn__mpi_failed(rc, "MPI_Allreduce of partial results", err);
    const unsigned long long bytes = (unsigned long long)(heads * (size_t)g->n * rec * sizeof(float));
    const unsigned long long moved = 2ull * bytes * (unsigned long long)(mp->size - 1) / (unsigned long long)mp->size;
    mp->traffic.bytes_sent += moved; /* a ring allreduce's */
    mp->traffic.bytes_received += moved;
    mp->traffic.messages_sent += 2ull * (unsigned long long)(mp->size - 1);
    mp->traffic.messages_received += 2ull * (unsigned long long)(mp->size - 1);
    const int r = mp->rank, nq = st->own.n, q0 = mp->q_first[r] + mp->offset;
    for (int i = g->from[r]; i < g->from[r + 1]; i++)
        for (size_t h = 0; h < heads; h++) {
            const float *m = st->merged + (h * (size_t)g->n + (size_t)i) * rec;
            const size_t row = h * (size_t)nq + (size_t)(g->pos[i] - q0);
            st->own.acc_lse[row] = m[0];
            memcpy(st->own.acc_o + row * dv, m + 1, dv * sizeof(float));
        }
    return CLATTN_STATUS_OK;
}

/* The gathered rows against this rank's keys: whole where the row is at or after the shard's last
 * key or there is no causal rule, a prefix (runs of consecutive rows as one block) where the row
 * sits inside the shard, nothing where it sits before it. */
static int rows_over_shard(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t,
                           const clattn__mpi_rows *set, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const int *pos = st->rows.pos, n = st->rows.n;
    const int kf = mp->k_first[mp->rank], kc = mp->k_count[mp->rank], end = kf + kc;
    const size_t kh = (size_t)p->batch * (size_t)p->kv_heads;
    const clattn__mpi_keys whole = {
        .k = t->k.data, .v = t->v.data, .k_first = kf, .nk = kc, .mode = CLATTN__BLOCK_VISIBLE};
    int status = CLATTN_STATUS_OK;
    for (int i = 0; i < n && kc > 0 && !status;) {
        if (!p->causal || pos[i] >= end - 1)
            return clattn__mpi_run_rows(mp, st, set, i, n - i, pos[i], &whole, t->seq_lens, err);
        if (pos[i] < kf) {
            i++;
            continue;
        }
        int j = i;
        while (j + 1 < n && pos[j + 1] == pos[j] + 1 && pos[j + 1] < end - 1)
            j++;
        const int nk = pos[j] + 1 - kf;
        clattn__copy_rows(st->k_tmp, nk, 0, t->k.data, kc, 0, nk, kh, p->head_dim);
        clattn__copy_rows(st->v_tmp, nk, 0, t->v.data, kc, 0, nk, kh, p->value_dim);
        const clattn__mpi_keys prefix = {
            .k = st->k_tmp, .v = st->v_tmp, .k_first = kf, .nk = nk, .mode = CLATTN__BLOCK_ALIGNED_DENSE};
        status = clattn__mpi_run_rows(mp, st, set, i, j + 1 - i, pos[i], &prefix, t->seq_lens, err);
        i = j + 1;
    }
    return status;
}

int clattn__mpi_rows_run(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const size_t rows = (size_t)p->batch * (size_t)p->heads * (size_t)st->rows.n;
    int status = clattn__mpi_gather(mp, &st->rows, t, 1, err);
    if (status == CLATTN_STATUS_MPI)
        return status;
    memset(st->rows_o, 0, rows * (size_t)p->value_dim * sizeof(float));
    for (size_t i = 0; i < rows; i++)
        st->rows_lse[i] = -INFINITY;
    const clattn__mpi_rows set = {.q = st->rows.a, .n = st->rows.n, .acc_o = st->rows_o, .acc_lse = st->rows_lse};
    if (!status)
        status = rows_over_shard(mp, st, t, &set, err);
    /* Merged even after a failed block (its rank's part is then wrong, and the run fails), so that
     * no rank waits forever. */
    const int merged = merge_on_owners(mp, st, err);
    return status ? status : merged;
}
