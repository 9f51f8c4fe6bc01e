/* Summary tokens across ranks (without causal): each rank sums its keys and values into the blocks
 * they belong to, whichever rank a block starts on, an allreduce adds the ranks' sums (a block cut
 * by a shard boundary gets both parts), and every rank's rows see the block means as keys of their
 * own, in the same softmax. Blocks as the reference path cuts them: ceil(valid / b) per batch
 * entry, the last one averaging the keys it has. */
#include <string.h>

#include "mpi_plan.h"
#include "problem.h"

int clattn__mpi_summary_prepare(const clattn_mpi_plan *mp, clattn__mpi_run *st, size_t *most_keys, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const int ns = clattn__summary_count(p);
    const size_t kh = (size_t)p->batch * (size_t)p->kv_heads;
    *most_keys = (size_t)ns > *most_keys ? (size_t)ns : *most_keys;
    int status = clattn__mpi_alloc(&st->sums, kh * (size_t)ns * (size_t)(p->head_dim + p->value_dim), "block sums",
                                   err);
    if (!status)
        status = clattn__mpi_alloc(&st->means, kh * (size_t)ns * (size_t)(p->head_dim + p->value_dim),
                                   "block means", err);
    return status;
}

/* Adds `rows` of width w of each head of x (x_rows rows a head, from x_first) into sums (ns rows a
 * head), row j of x going to block (x_first + j - k0) / b. */
static void add_rows(float *sums, int ns, const float *x, int x_rows, int first, int rows, int k0, int block, size_t heads,
                     int w)
{
    for (size_t h = 0; h < heads; h++)
        for (int j = first; j < first + rows; j++) {
            float *s = sums + (h * (size_t)ns + (size_t)((k0 + j) / block)) * (size_t)w;
            const float *v = x + (h * (size_t)x_rows + (size_t)j) * (size_t)w;
            for (int e = 0; e < w; e++)
                s[e] += v[e];
        }
}

int clattn__mpi_summary(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const int ns = clattn__summary_count(p), b = p->summary_block, d = p->head_dim, dv = p->value_dim;
    const int kf = mp->k_first[mp->rank], kc = mp->k_count[mp->rank];
    const size_t kh = (size_t)p->batch * (size_t)p->kv_heads, hk = (size_t)p->kv_heads;
    const size_t n = kh * (size_t)ns * (size_t)(d + dv);
    float *sum_k = st->sums, *sum_v = st->sums + kh * (size_t)ns * (size_t)d;
    memset(st->sums, 0, n * sizeof(float));
    for (int e = 0; e < p->batch; e++) {
        const int valid = clattn__valid_keys(p, t->seq_lens, e);
        const int mine = valid - kf < 0 ? 0 : valid - kf > kc ? kc : valid - kf;
        const size_t at = (size_t)e * hk;
        add_rows(sum_k + at * (size_t)ns * (size_t)d, ns, (const float *)t->k.data + at * (size_t)kc * (size_t)d, kc,
                 0, mine, kf, b, hk, d);
        add_rows(sum_v + at * (size_t)ns * (size_t)dv, ns, (const float *)t->v.data + at * (size_t)kc * (size_t)dv,
                 kc, 0, mine, kf, b, hk, dv);
    }
    const int rc = MPI_Allreduce(st->sums, st->means, (int)n, MPI_FLOAT, MPI_SUM, mp->comm);
    if (rc != MPI_SUCCESS)
        return clattn__mpi_failed(rc, "MPI_Allreduce of the block sums", err);
    const unsigned long long moved = 2ull * n * sizeof(float) * (unsigned long long)(mp->size - 1) / (unsigned)mp->size;
    mp->traffic.bytes_sent += moved; /* a ring allreduce's */
    mp->traffic.bytes_received += moved;
    mp->traffic.messages_sent += 2ull * (unsigned long long)(mp->size - 1);
    mp->traffic.messages_received += 2ull * (unsigned long long)(mp->size - 1);
    float *mean_k = st->means, *mean_v = st->means + kh * (size_t)ns * (size_t)d;
    for (int e = 0; e < p->batch; e++) {
        const int valid = clattn__valid_keys(p, t->seq_lens, e);
        st->k_valid[e] = (valid + b - 1) / b;
        for (size_t h = (size_t)e * hk; h < (size_t)(e + 1) * hk; h++)
            for (int c = 0; c < st->k_valid[e]; c++) {
                const int hi = (c + 1) * b < valid ? (c + 1) * b : valid;
                const float count = (float)(hi - c * b);
                for (int i = 0; i < d; i++)
                    mean_k[(h * (size_t)ns + (size_t)c) * (size_t)d + (size_t)i] /= count;
                for (int i = 0; i < dv; i++)
                    mean_v[(h * (size_t)ns + (size_t)c) * (size_t)dv + (size_t)i] /= count;
            }
    }
    const clattn__mpi_keys keys = {
        .k = mean_k, .v = mean_v, .nk = ns, .mode = CLATTN__BLOCK_VISIBLE, .k_valid = st->k_valid};
    return clattn__mpi_run_rows(mp, st, &st->own, 0, st->own.n, 0, &keys, t->seq_lens, err);
}
