/* Ring attention: each rank's keys and values travel once around the ring while every rank computes
 * its rows against the ones it holds (Isend/Irecv of the next overlapped with that block), the
 * partial results merged by log-sum-exp. The plain ring passes the callers' shards; the zigzag
 * (mpi_zigzag.c) passes its own. */
#include <string.h>

#include "mpi_plan.h"

#define TAG_RING 1701

int clattn__mpi_ring_prepare(const clattn_mpi_plan *mp, clattn__mpi_run *st, const int *counts, clattn__error *err)
{
    int most = 0;
    for (int s = 0; s < mp->size; s++)
        most = counts[s] > most ? counts[s] : most;
    int status = clattn__mpi_alloc(&st->ring[0], clattn__mpi_kv_floats(&mp->p, most), "ring buffer", err);
    if (!status)
        status = clattn__mpi_alloc(&st->ring[1], clattn__mpi_kv_floats(&mp->p, most), "ring buffer", err);
    return status;
}

int clattn__mpi_ring_pass(clattn_mpi_plan *mp, clattn__mpi_run *st, const float *k, const float *v, const int *counts,
                          clattn__ring_block block, void *user, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const int r = mp->rank, P = mp->size;
    const size_t kh = (size_t)p->batch * (size_t)p->kv_heads;
    if (counts[r] > 0) { /* a shard of no keys may have no buffer */
        memcpy(st->ring[0], k, kh * (size_t)counts[r] * (size_t)p->head_dim * sizeof(float));
        memcpy(st->ring[0] + kh * (size_t)counts[r] * (size_t)p->head_dim, v,
               kh * (size_t)counts[r] * (size_t)p->value_dim * sizeof(float));
    }
    int status = CLATTN_STATUS_OK;
    for (int step = 0; step < P; step++) {
        const int src = ((r - step) % P + P) % P, next = (src - 1 + P) % P;
        MPI_Request req[2];
        int nreq = 0, rc = MPI_SUCCESS;
        if (step < P - 1) {
            const size_t in = clattn__mpi_kv_floats(p, counts[next]), out = clattn__mpi_kv_floats(p, counts[src]);
            rc = MPI_Irecv(st->ring[1], (int)in, MPI_FLOAT, (r - 1 + P) % P, TAG_RING, mp->comm, &req[nreq++]);
            if (rc == MPI_SUCCESS)
                rc = MPI_Isend(st->ring[0], (int)out, MPI_FLOAT, (r + 1) % P, TAG_RING, mp->comm, &req[nreq++]);
            mp->traffic.bytes_sent += out * sizeof(float);
            mp->traffic.bytes_received += in * sizeof(float);
            mp->traffic.messages_sent++;
            mp->traffic.messages_received++;
        }
        /* A failed block leaves the ring going, so that no rank waits forever. */
        if (!status)
            status = block(mp, st, src, st->ring[0], st->ring[0] + kh * (size_t)counts[src] * (size_t)p->head_dim, user,
                           err);
        if (rc == MPI_SUCCESS && nreq > 0)
            rc = MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS)
            return clattn__mpi_failed(rc, "the ring's exchange", err);
        float *swap = st->ring[0];
        st->ring[0] = st->ring[1];
        st->ring[1] = swap;
    }
    return status;
}

/* The plain ring's block: this rank's rows against shard src. Causal: shards before this rank's
 * are seen whole, its own by the causal rule, later ones not at all. */
static int shard_block(clattn_mpi_plan *mp, clattn__mpi_run *st, int src, const float *k, const float *v, void *user,
                       clattn__error *err)
{
    const clattn_host_tensors *t = user;
    const clattn_problem *p = &mp->p;
    const int r = mp->rank;
    clattn__mpi_keys keys = {
        .k = k, .v = v, .k_first = mp->k_first[src], .nk = mp->k_count[src], .mode = CLATTN__BLOCK_VISIBLE};
    if (p->causal && src == r)
        keys.mode = CLATTN__BLOCK_ALIGNED;
    if (p->causal && src > r)
        return CLATTN_STATUS_OK;
    return clattn__mpi_run_rows(mp, st, &st->own, 0, st->own.n, mp->q_first[r] + mp->offset, &keys, t->seq_lens, err);
}

int clattn__mpi_ring(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, clattn__error *err)
{
    return clattn__mpi_ring_pass(mp, st, t->k.data, t->v.data, mp->k_count, shard_block, (void *)t, err);
}
