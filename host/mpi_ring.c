/* Ring attention for dense and causal problems: each rank's K and V shard travels once around the
 * ring while every rank computes its rows against the shard it holds (Isend/Irecv of the next
 * shard overlapped with that block), the partial results merged by log-sum-exp. */
#include <string.h>

#include "mpi_plan.h"

#define TAG_RING 1701

int clattn__mpi_ring_prepare(const clattn_mpi_plan *mp, clattn__mpi_run *st, clattn__error *err)
{
    int most = 0;
    for (int s = 0; s < mp->size; s++)
        most = mp->k_count[s] > most ? mp->k_count[s] : most;
    int status = clattn__mpi_alloc(&st->ring[0], clattn__mpi_kv_floats(&mp->p, most), "ring buffer", err);
    if (!status)
        status = clattn__mpi_alloc(&st->ring[1], clattn__mpi_kv_floats(&mp->p, most), "ring buffer", err);
    return status;
}

/* At step t this rank holds the shard of rank (rank - t) mod P, and passes it on. */
int clattn__mpi_ring(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const int r = mp->rank, P = mp->size, nq = st->own.n, pos0 = mp->q_first[r] + mp->offset;
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
            const size_t in = clattn__mpi_kv_floats(p, mp->k_count[next]);
            const size_t out = clattn__mpi_kv_floats(p, mp->k_count[src]);
            rc = MPI_Irecv(st->ring[1], (int)in, MPI_FLOAT, (r - 1 + P) % P, TAG_RING, mp->comm, &req[nreq++]);
            if (rc == MPI_SUCCESS)
                rc = MPI_Isend(st->ring[0], (int)out, MPI_FLOAT, (r + 1) % P, TAG_RING, mp->comm, &req[nreq++]);
            mp->traffic.bytes_sent += out * sizeof(float);
            mp->traffic.bytes_received += in * sizeof(float);
            mp->traffic.messages_sent++;
            mp->traffic.messages_received++;
        }
        /* Causal: shards before this rank's are seen whole, its own by the causal rule, later ones
         * not at all. A failed block leaves the ring going, so that no rank waits forever. */
        const int kc = mp->k_count[src];
        clattn__mpi_keys keys = {.k = st->ring[0],
                                 .v = st->ring[0] + kh * (size_t)kc * (size_t)p->head_dim,
                                 .k_first = mp->k_first[src],
                                 .nk = kc,
                                 .mode = CLATTN__BLOCK_VISIBLE};
        if (p->causal && src == r)
            keys.mode = CLATTN__BLOCK_ALIGNED;
        if (!status && (!p->causal || src <= r))
            status = clattn__mpi_run_rows(mp, st, &st->own, 0, nq, pos0, &keys, t->seq_lens, err);
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
