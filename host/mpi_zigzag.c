/* Causal ring attention balanced by a zigzag: the sequence is cut into 2P chunks and rank r computes
 * chunks r and 2P - 1 - r, an early one and a late one, so that every rank sees as many visible
 * keys as any other. The callers' contiguous shards are moved there (Q, K, V) and back (O, LSE) by
 * MPI_Alltoallv; the ring passes each rank's two chunks of K and V. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_plan.h"

/* Up to two ranges of positions a rank holds, its rows in that order. */
typedef struct {
    int first[2], count[2], n;
} ranges;

static int chunk_start(const clattn_mpi_plan *mp, int c)
{
    return (int)((long long)mp->p.kv_len * c / (2 * mp->size));
}

static ranges shard_of(const clattn_mpi_plan *mp, int s)
{
    return (ranges){.first = {mp->k_first[s], 0}, .count = {mp->k_count[s], 0}, .n = 1};
}

static ranges zigzag_of(const clattn_mpi_plan *mp, int s)
{
    const int late = 2 * mp->size - 1 - s;
    return (ranges){
        .first = {chunk_start(mp, s), chunk_start(mp, late)},
        .count = {chunk_start(mp, s + 1) - chunk_start(mp, s), chunk_start(mp, late + 1) - chunk_start(mp, late)},
        .n = 2};
}

static int rows_of(const ranges *r)
{
    return r->count[0] + (r->n > 1 ? r->count[1] : 0);
}

/* The row of position x, which range i of r holds. */
static int row_of(const ranges *r, int i, int x)
{
    return (i > 0 ? r->count[0] : 0) + x - r->first[i];
}

typedef ranges (*layout_fn)(const clattn_mpi_plan *mp, int s);

/* For every overlap of a range of `from` with a range of `to`: packs local rows into the message
 * (pack 1), unpacks the message into local rows (0), or only counts (-1); local is the layout of
 * local_data, `from` or `to`. Returns the floats of the message. */
static size_t walk_overlaps(const ranges *from, const ranges *to, const ranges *local, int local_is_from,
                            float *local_data, float *packed, size_t heads, int width, int pack)
{
    size_t at = 0;
    for (int i = 0; i < from->n; i++)
        for (int j = 0; j < to->n; j++) {
            const int a = from->first[i] > to->first[j] ? from->first[i] : to->first[j];
            const int b = from->first[i] + from->count[i] < to->first[j] + to->count[j]
                              ? from->first[i] + from->count[i]
                              : to->first[j] + to->count[j];
            if (b <= a)
                continue;
            const int row = row_of(local, local_is_from ? i : j, a), rows = rows_of(local);
            if (pack > 0)
                clattn__copy_rows(packed + at, b - a, 0, local_data, rows, row, b - a, heads, width);
            else if (pack == 0)
                clattn__copy_rows(local_data, rows, row, packed + at, b - a, 0, b - a, heads, width);
            at += heads * (size_t)(b - a) * (size_t)width;
        }
    return at;
}

/* Moves rows of `width` floats of `heads` heads from layout `from` to layout `to`. */
static int move_rows(clattn_mpi_plan *mp, layout_fn from, layout_fn to, size_t heads, int width, const float *src,
                     float *dst, clattn__error *err)
{
    const int r = mp->rank, P = mp->size;
    const ranges mine_from = from(mp, r), mine_to = to(mp, r);
    const size_t out_total = heads * (size_t)rows_of(&mine_from) * (size_t)width;
    const size_t in_total = heads * (size_t)rows_of(&mine_to) * (size_t)width;
    float *send = malloc((out_total ? out_total : 1) * sizeof(float));
    float *recv = malloc((in_total ? in_total : 1) * sizeof(float));
    int *counts = malloc(4 * (size_t)P * sizeof(int));
    int status = CLATTN_STATUS_OK;
    if (send == NULL || recv == NULL || counts == NULL)
        status = clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "zigzag buffers of %zu and %zu floats", out_total,
                              in_total);
    int *sdispl = counts + P, *rcounts = counts + 2 * P, *rdispl = counts + 3 * P;
    size_t at = 0, got = 0;
    for (int d = 0; d < P && !status; d++) {
        const ranges dest = to(mp, d), origin = from(mp, d);
        sdispl[d] = (int)at;
        counts[d] = (int)walk_overlaps(&mine_from, &dest, &mine_from, 1, (float *)src, send + at, heads, width, 1);
        at += (size_t)counts[d];
        rdispl[d] = (int)got;
        rcounts[d] = (int)walk_overlaps(&origin, &mine_to, &mine_to, 0, NULL, NULL, heads, width, -1);
        got += (size_t)rcounts[d];
    }
    /* Every rank joins the exchange, a failed one with nothing to send, so that none waits. */
    if (status)
        for (int d = 0; d < P && counts != NULL; d++)
            counts[d] = sdispl[d] = rcounts[d] = rdispl[d] = 0;
    const int rc = counts == NULL
                       ? MPI_ERR_NO_MEM
                       : MPI_Alltoallv(send, counts, sdispl, MPI_FLOAT, recv, rcounts, rdispl, MPI_FLOAT, mp->comm);
    if (!status && rc != MPI_SUCCESS)
        status = clattn__mpi_failed(rc, "MPI_Alltoallv of the zigzag", err);
    for (int s = 0; s < P && !status; s++) {
        const ranges origin = from(mp, s);
        walk_overlaps(&origin, &mine_to, &mine_to, 0, dst, recv + rdispl[s], heads, width, 0);
        if (s != r) {
            mp->traffic.bytes_sent += (unsigned long long)counts[s] * sizeof(float);
            mp->traffic.bytes_received += (unsigned long long)rcounts[s] * sizeof(float);
            mp->traffic.layout_bytes_sent += (unsigned long long)counts[s] * sizeof(float);
            mp->traffic.layout_bytes_received += (unsigned long long)rcounts[s] * sizeof(float);
            mp->traffic.messages_sent += counts[s] > 0;
            mp->traffic.messages_received += rcounts[s] > 0;
        }
    }
    free(counts);
    free(recv);
    free(send);
    return status;
}

int clattn__mpi_zigzag_prepare(const clattn_mpi_plan *mp, clattn__mpi_run *st, int *rows, size_t *most_keys,
                               clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const ranges mine = zigzag_of(mp, mp->rank);
    const int n = rows_of(&mine);
    const size_t qh = (size_t)p->batch * (size_t)p->heads, kh = (size_t)p->batch * (size_t)p->kv_heads;
    float *q = NULL;
    st->zig_counts = malloc((size_t)mp->size * sizeof(int));
    if (st->zig_counts == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%d counts", mp->size);
    *most_keys = 0;
    for (int s = 0; s < mp->size; s++) {
        const ranges z = zigzag_of(mp, s);
        st->zig_counts[s] = rows_of(&z);
        for (int i = 0; i < 2; i++)
            *most_keys = (size_t)z.count[i] > *most_keys ? (size_t)z.count[i] : *most_keys;
    }
    *rows = n;
    int status = clattn__mpi_alloc(&q, qh * (size_t)n * (size_t)p->head_dim, "zigzag rows", err);
    st->zig.q = q;
    st->zig.n = n;
    if (!status)
        status = clattn__mpi_alloc(&st->zig.acc_o, qh * (size_t)n * (size_t)p->value_dim, "zigzag output", err);
    if (!status)
        status = clattn__mpi_alloc(&st->zig.acc_lse, qh * (size_t)n, "zigzag LSE", err);
    if (!status)
        status = clattn__mpi_alloc(&st->zig_k, kh * (size_t)n * (size_t)p->head_dim, "zigzag keys", err);
    if (!status)
        status = clattn__mpi_alloc(&st->zig_v, kh * (size_t)n * (size_t)p->value_dim, "zigzag values", err);
    if (!status)
        status = clattn__mpi_ring_prepare(mp, st, st->zig_counts, err);
    return status;
}

void clattn__mpi_zigzag_free(clattn__mpi_run *st)
{
    free(st->zig_v);
    free(st->zig_k);
    free(st->zig.acc_lse);
    free(st->zig.acc_o);
    free((float *)st->zig.q);
    free(st->zig_counts);
}

/* This rank's two chunks of rows against the two chunks of keys of rank src: earlier chunks whole,
 * the same chunk by the causal rule, later ones not at all. */
static int zigzag_block(clattn_mpi_plan *mp, clattn__mpi_run *st, int src, const float *k, const float *v, void *user,
                        clattn__error *err)
{
    const clattn_host_tensors *t = user;
    const clattn_problem *p = &mp->p;
    const int P = mp->size;
    const ranges mine = zigzag_of(mp, mp->rank), held = zigzag_of(mp, src);
    const int my_chunk[2] = {mp->rank, 2 * P - 1 - mp->rank}, held_chunk[2] = {src, 2 * P - 1 - src};
    const size_t kh = (size_t)p->batch * (size_t)p->kv_heads;
    const int held_rows = rows_of(&held);
    int status = CLATTN_STATUS_OK;
    for (int kk = 0; kk < 2 && !status; kk++) {
        const int nk = held.count[kk];
        if (nk == 0)
            continue;
        const int k0 = kk == 0 ? 0 : held.count[0];
        clattn__copy_rows(st->k_tmp, nk, 0, k, held_rows, k0, nk, kh, p->head_dim);
        clattn__copy_rows(st->v_tmp, nk, 0, v, held_rows, k0, nk, kh, p->value_dim);
        for (int kq = 0; kq < 2 && !status; kq++) {
            if (held_chunk[kk] > my_chunk[kq])
                continue;
            const clattn__mpi_keys keys = {.k = st->k_tmp,
                                           .v = st->v_tmp,
                                           .k_first = held.first[kk],
                                           .nk = nk,
                                           .mode = held_chunk[kk] == my_chunk[kq] ? CLATTN__BLOCK_ALIGNED
                                                                                  : CLATTN__BLOCK_VISIBLE};
            status = clattn__mpi_run_rows(mp, st, &st->zig, kq == 0 ? 0 : mine.count[0], mine.count[kq], mine.first[kq],
                                          &keys, t->seq_lens, err);
        }
    }
    return status;
}

int clattn__mpi_zigzag(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const size_t qh = (size_t)p->batch * (size_t)p->heads, kh = (size_t)p->batch * (size_t)p->kv_heads;
    float *q = (float *)st->zig.q;
    int status = move_rows(mp, shard_of, zigzag_of, qh, p->head_dim, t->q.data, q, err);
    if (status != CLATTN_STATUS_MPI) {
        const int k = move_rows(mp, shard_of, zigzag_of, kh, p->head_dim, t->k.data, st->zig_k, err);
        status = status ? status : k;
    }
    if (status != CLATTN_STATUS_MPI) {
        const int v = move_rows(mp, shard_of, zigzag_of, kh, p->value_dim, t->v.data, st->zig_v, err);
        status = status ? status : v;
    }
    if (status == CLATTN_STATUS_MPI)
        return status;
    const size_t rows = qh * (size_t)st->zig.n;
    memset(st->zig.acc_o, 0, rows * (size_t)p->value_dim * sizeof(float));
    for (size_t i = 0; i < rows; i++)
        st->zig.acc_lse[i] = -INFINITY;
    const int ring = clattn__mpi_ring_pass(mp, st, st->zig_k, st->zig_v, st->zig_counts, zigzag_block, (void *)t, err);
    status = status ? status : ring;
    if (ring == CLATTN_STATUS_MPI)
        return ring;
    const int o = move_rows(mp, zigzag_of, shard_of, qh, p->value_dim, st->zig.acc_o, st->own.acc_o, err);
    const int l = move_rows(mp, zigzag_of, shard_of, qh, 1, st->zig.acc_lse, st->own.acc_lse, err);
    return status ? status : o ? o : l;
}
