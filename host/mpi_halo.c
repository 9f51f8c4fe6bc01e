/* Sliding windows across ranks: each rank receives the L keys before its shard and the R after it
 * from every rank the window spans, while it computes the rows that need none of them; then the
 * rows near each edge. Global keys of the window's problem come gathered to every rank: inside a
 * block's key range they are the block's own global tokens, outside it a block of their own. */
#include <stdlib.h>
#include <string.h>

#include "mpi_plan.h"

#define TAG_HALO 1702

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

/* This rank's rows at or after `split` see no key before its shard; rows at or after `first` see
 * keys after it; the rows before `split` see no key at or after `stop`. */
static void edges(const clattn_mpi_plan *mp, int *split, int *first, int *stop)
{
    const clattn_problem *p = &mp->p;
    const int r = mp->rank, kf = mp->k_first[r], end = kf + mp->k_count[r], qa = mp->q_first[r] + mp->offset;
    const int right = p->causal ? 0 : p->window_right;
    int lo, hi;
    needed_keys(mp, r, &lo, &hi);
    const long long edge = (long long)kf + p->window_left;
    *split = edge < qa ? qa : edge > end ? end : (int)edge;
    *first = end - right > *split ? end - right : *split;
    const long long e = (long long)*split + right;
    *stop = e > hi ? hi : (int)e;
}

int clattn__mpi_halo_prepare(const clattn_mpi_plan *mp, clattn__mpi_run *st, size_t *most_keys, clattn__error *err)
{
    clattn__mpi_halo_state *h = &st->halo;
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
        sent += clattn__mpi_kv_floats(&mp->p, h->send_count[s]);
        received += clattn__mpi_kv_floats(&mp->p, h->recv_count[s]);
    }
    needed_keys(mp, mp->rank, &h->lo, &h->hi);
    const clattn_problem *p = &mp->p;
    const size_t all = (size_t)p->batch * (size_t)p->kv_heads * (size_t)(h->hi - h->lo);
    int status = clattn__mpi_alloc(&h->send, sent, "halo sends", err);
    if (!status)
        status = clattn__mpi_alloc(&h->recv, received, "halo receives", err);
    if (!status)
        status = clattn__mpi_alloc(&h->k_all, all * (size_t)p->head_dim, "halo keys", err);
    if (!status)
        status = clattn__mpi_alloc(&h->v_all, all * (size_t)p->value_dim, "halo values", err);
    if (!status && p->num_global > 0)
        status = clattn__mpi_gathered_prepare(mp, &st->keys, mp->globals, p->num_global, 0, err);
    /* Blocks slice [lo, stop) and [end, hi) out of the halo range (the rest run on the shard),
     * the global keys out of theirs. */
    int split, first, stop;
    edges(mp, &split, &first, &stop);
    const int end = mp->k_first[mp->rank] + mp->k_count[mp->rank];
    const int most = stop - h->lo > h->hi - end ? stop - h->lo : h->hi - end;
    const int need = most > p->num_global ? most : p->num_global;
    *most_keys = need > 0 && (size_t)need > *most_keys ? (size_t)need : *most_keys;
    return status;
}

void clattn__mpi_halo_free(clattn__mpi_halo_state *h)
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

/* Packs this rank's keys [first, first + count) as [K rows | V rows] at dst; returns its floats. */
static size_t pack_keys(const clattn_mpi_plan *mp, const clattn_host_tensors *t, int first, int count, float *dst)
{
    const clattn_problem *p = &mp->p;
    const size_t kh = (size_t)p->batch * (size_t)p->kv_heads;
    const int kc = mp->k_count[mp->rank], row = first - mp->k_first[mp->rank];
    clattn__copy_rows(dst, count, 0, t->k.data, kc, row, count, kh, p->head_dim);
    clattn__copy_rows(dst + kh * (size_t)count * (size_t)p->head_dim, count, 0, t->v.data, kc, row, count, kh,
                      p->value_dim);
    return clattn__mpi_kv_floats(p, count);
}

/* Places keys [first, first + count) into the halo range, from rows [src_first, src_first + count)
 * of k, v (src_rows rows a head). */
static void place_keys(const clattn_mpi_plan *mp, clattn__mpi_halo_state *h, int first, int count, const float *k,
                       const float *v, int src_rows, int src_first)
{
    const size_t kh = (size_t)mp->p.batch * (size_t)mp->p.kv_heads;
    clattn__copy_rows(h->k_all, h->hi - h->lo, first - h->lo, k, src_rows, src_first, count, kh, mp->p.head_dim);
    clattn__copy_rows(h->v_all, h->hi - h->lo, first - h->lo, v, src_rows, src_first, count, kh, mp->p.value_dim);
}

/* Posts every receive and send of the halo; *nreq receives their count. */
static int post_exchange(clattn_mpi_plan *mp, clattn__mpi_halo_state *h, const clattn_host_tensors *t, MPI_Request *req,
                         int *nreq)
{
    const clattn_problem *p = &mp->p;
    int rc = MPI_SUCCESS;
    size_t at = 0;
    *nreq = 0;
    for (int s = 0; s < mp->size && rc == MPI_SUCCESS; s++)
        if (h->recv_count[s] > 0) {
            const size_t n = clattn__mpi_kv_floats(p, h->recv_count[s]);
            rc = MPI_Irecv(h->recv + at, (int)n, MPI_FLOAT, s, TAG_HALO, mp->comm, &req[(*nreq)++]);
            at += n;
            mp->traffic.bytes_received += n * sizeof(float);
            mp->traffic.messages_received++;
        }
    at = 0;
    for (int s = 0; s < mp->size && rc == MPI_SUCCESS; s++)
        if (h->send_count[s] > 0) {
            const size_t n = pack_keys(mp, t, h->send_first[s], h->send_count[s], h->send + at);
            rc = MPI_Isend(h->send + at, (int)n, MPI_FLOAT, s, TAG_HALO, mp->comm, &req[(*nreq)++]);
            at += n;
            mp->traffic.bytes_sent += n * sizeof(float);
            mp->traffic.messages_sent++;
        }
    return rc;
}

/* This rank's keys and every received message, placed in the halo range. */
static void assemble(clattn_mpi_plan *mp, clattn__mpi_halo_state *h, const clattn_host_tensors *t)
{
    const clattn_problem *p = &mp->p;
    const size_t kh = (size_t)p->batch * (size_t)p->kv_heads;
    const int kf = mp->k_first[mp->rank], end = kf + mp->k_count[mp->rank];
    const int own = kf > h->lo ? kf : h->lo, own_end = end < h->hi ? end : h->hi;
    if (own_end > own)
        place_keys(mp, h, own, own_end - own, t->k.data, t->v.data, mp->k_count[mp->rank], own - kf);
    size_t at = 0;
    for (int s = 0; s < mp->size; s++)
        if (h->recv_count[s] > 0) {
            const size_t nk = kh * (size_t)h->recv_count[s];
            place_keys(mp, h, h->recv_first[s], h->recv_count[s], h->recv + at, h->recv + at + nk * p->head_dim,
                       h->recv_count[s], 0);
            at += clattn__mpi_kv_floats(p, h->recv_count[s]);
        }
}

/* The global tokens among keys [a, b), as indices from a, into st->k_valid's neighbour: returns
 * how many; `out` has room for every global. */
static int globals_in(const clattn_mpi_plan *mp, int a, int b, int *out)
{
    int n = 0;
    for (int g = 0; g < mp->p.num_global; g++)
        if (mp->globals[g] >= a && mp->globals[g] < b)
            out[n++] = mp->globals[g] - a;
    return n;
}

/* Rows [row0, row0 + rows) against keys [a, b): this rank's own K and V when the range is its
 * shard, else a slice of the halo range; the global tokens among them as the block's own. */
static int window_block(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, int row0, int rows,
                        int a, int b, int *globals, clattn__error *err)
{
    const clattn__mpi_halo_state *h = &st->halo;
    const int kf = mp->k_first[mp->rank], kc = mp->k_count[mp->rank];
    if (rows <= 0 || b <= a)
        return CLATTN_STATUS_OK;
    clattn__mpi_keys keys = {.k = t->k.data,
                             .v = t->v.data,
                             .k_first = a,
                             .nk = b - a,
                             .mode = CLATTN__BLOCK_ALIGNED,
                             .globals = globals,
                             .num_globals = globals_in(mp, a, b, globals)};
    if (a != kf || b != kf + kc) {
        const size_t kh = (size_t)mp->p.batch * (size_t)mp->p.kv_heads;
        clattn__copy_rows(st->k_tmp, b - a, 0, h->k_all, h->hi - h->lo, a - h->lo, b - a, kh, mp->p.head_dim);
        clattn__copy_rows(st->v_tmp, b - a, 0, h->v_all, h->hi - h->lo, a - h->lo, b - a, kh, mp->p.value_dim);
        keys.k = st->k_tmp;
        keys.v = st->v_tmp;
    }
    const int pos0 = mp->q_first[mp->rank] + mp->offset + row0;
    return clattn__mpi_run_rows(mp, st, &st->own, row0, rows, pos0, &keys, t->seq_lens, err);
}

/* Rows [row0, row0 + rows) whose blocks covered keys [a, b): the global keys outside that range,
 * before it (seen by every row) and, without causal, after it. */
static int outside_globals(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, int row0, int rows,
                           int a, int b, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const clattn__mpi_gathered *g = &st->keys;
    int before = 0, after = g->n;
    while (before < g->n && g->pos[before] < a)
        before++;
    while (after > before && g->pos[after - 1] >= b)
        after--;
    const int pieces[2][2] = {{0, before}, {after, p->causal ? after : g->n}};
    const size_t kh = (size_t)p->batch * (size_t)p->kv_heads;
    int status = CLATTN_STATUS_OK;
    for (int i = 0; i < 2 && rows > 0 && !status; i++) {
        const int lo = pieces[i][0], n = pieces[i][1] - pieces[i][0];
        if (n <= 0)
            continue;
        clattn__copy_rows(st->k_tmp, n, 0, g->a, g->n, lo, n, kh, p->head_dim);
        clattn__copy_rows(st->v_tmp, n, 0, g->b, g->n, lo, n, kh, p->value_dim);
        for (int e = 0; e < p->batch; e++) {
            st->k_valid[e] = 0;
            for (int j = lo; j < lo + n; j++)
                st->k_valid[e] += t->seq_lens == NULL || g->pos[j] < t->seq_lens[e];
        }
        const clattn__mpi_keys keys = {
            .k = st->k_tmp, .v = st->v_tmp, .nk = n, .mode = CLATTN__BLOCK_VISIBLE, .k_valid = st->k_valid};
        status = clattn__mpi_run_rows(mp, st, &st->own, row0, rows, 0, &keys, t->seq_lens, err);
    }
    return status;
}

/* The rows that need only this rank's keys run while the halo travels; then the rows near the
 * left edge over the left halo and what follows it, and the rows near the right edge add the
 * right halo; then the global keys each group of rows has not seen. */
int clattn__mpi_halo(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    clattn__mpi_halo_state *h = &st->halo;
    const int r = mp->rank;
    int status = p->num_global > 0 ? clattn__mpi_gather(mp, &st->keys, t, 0, err) : CLATTN_STATUS_OK;
    if (status == CLATTN_STATUS_MPI)
        return status;
    MPI_Request *req = malloc(2 * (size_t)mp->size * sizeof *req);
    int *globals = malloc((size_t)(p->num_global > 0 ? p->num_global : 1) * sizeof(int));
    if (req == NULL || globals == NULL) {
        free(globals);
        free(req);
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%d requests", 2 * mp->size);
    }
    int nreq = 0;
    int rc = post_exchange(mp, h, t, req, &nreq);
    const int kf = mp->k_first[r], end = kf + mp->k_count[r];
    const int qa = mp->q_first[r] + mp->offset;
    int split, first, stop;
    edges(mp, &split, &first, &stop);
    if (!status)
        status = window_block(mp, st, t, split - qa, end - split, kf, end, globals, err);
    if (rc == MPI_SUCCESS && nreq > 0)
        rc = MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
    free(req);
    if (rc != MPI_SUCCESS) {
        free(globals);
        return clattn__mpi_failed(rc, "the halo exchange", err);
    }
    if (st->own.n > 0)
        assemble(mp, h, t);
    if (!status && st->own.n > 0)
        status = window_block(mp, st, t, 0, split - qa, h->lo, stop, globals, err);
    if (!status && st->own.n > 0 && h->hi > end)
        status = window_block(mp, st, t, first - qa, end - first, end, h->hi, globals, err);
    free(globals);
    if (!status && p->num_global > 0 && st->own.n > 0) {
        status = outside_globals(mp, st, t, 0, split - qa, h->lo, stop, err);
        if (!status)
            status = outside_globals(mp, st, t, split - qa, first - split, kf, end, err);
        if (!status)
            status = outside_globals(mp, st, t, first - qa, end - first, kf, h->hi > end ? h->hi : end, err);
    }
    return status;
}
