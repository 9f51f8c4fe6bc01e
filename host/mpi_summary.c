/* Summary tokens across ranks: each rank sums its keys and values into the blocks they belong to,
 * whichever rank a block starts on, an allreduce adds the ranks' sums (a block cut by a shard
 * boundary gets both parts), and every rank's rows see the block means as keys of their own, in
 * the same softmax. Blocks as the reference path cuts them (problem.h: the left-over keys join the
 * last block, or with summary_tail own keep a partial block of their own). With causal, a row at p
 * sees the floor((p + 1) / b) full blocks before it, so the rows p, p + b, p + 2b, ... see one
 * block more each: a causal block of its own for each of the b classes of rows. The last block,
 * whose last key is the last valid one, is seen by the last valid row alone: a partial block of
 * its own is added to that row on the host; a merged one (b + r keys) is in that row's class run,
 * and the r rows before it, which the class runs would show it, get their blocks on the host. */
#include <math.h>
#include <string.h>

#include "mpi_plan.h"
#include "problem.h"

int clattn__mpi_summary_prepare(const clattn_mpi_plan *mp, clattn__mpi_run *st, size_t *most_keys, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const int ns = clattn__summary_count(p);
    const size_t kh = (size_t)p->batch * (size_t)p->kv_heads;
    *most_keys = (size_t)ns > *most_keys ? (size_t)ns : *most_keys;
    int status =
        clattn__mpi_alloc(&st->sums, kh * (size_t)ns * (size_t)(p->head_dim + p->value_dim), "block sums", err);
    if (!status)
        status =
            clattn__mpi_alloc(&st->means, kh * (size_t)ns * (size_t)(p->head_dim + p->value_dim), "block means", err);
    return status;
}

/* Adds `rows` of width w of each head of x (x_rows rows a head, from x_first) into sums (ns rows a
 * head), row j of x (key k0 + j) going to its block: (k0 + j) / b, the left-over keys of a merged
 * tail into the last of the entry's `blocks`. */
static void add_rows(float *sums, int ns, const float *x, int x_rows, int first, int rows, int k0, int block,
                     int blocks, size_t heads, int w)
{
    for (size_t h = 0; h < heads && blocks > 0; h++)
        for (int j = first; j < first + rows; j++) {
            const int c = (k0 + j) / block < blocks ? (k0 + j) / block : blocks - 1;
            float *s = sums + (h * (size_t)ns + (size_t)c) * (size_t)w;
            const float *v = x + (h * (size_t)x_rows + (size_t)j) * (size_t)w;
            for (int e = 0; e < w; e++)
                s[e] += v[e];
        }
}

/* Rows o, o + b, o + 2b, ... of this rank against the full blocks each sees (causal). */
/* 1 when the row at position pos of batch entry e must not take its class run's blocks: under the
 * merged tail, the rows before the last valid one that the run would show the last block. */
static int hides_last_block(const clattn_problem *p, const int *seq_lens, int e, int pos)
{
    const int valid = clattn__valid_keys(p, seq_lens, e), b = p->summary_block;
    return p->summary_tail == CLATTN_SUMMARY_TAIL_MERGE && valid % b != 0 && valid >= b && pos >= valid / b * b - 1 &&
           pos < valid - 1;
}

static int summary_class(clattn_mpi_plan *mp, clattn__mpi_run *st, int o, const float *mean_k, const float *mean_v,
                         const int *seq_lens, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    const int b = p->summary_block, nq = st->own.n, ns = clattn__summary_count(p);
    const int rows = (nq - o + b - 1) / b, pos = mp->q_first[mp->rank] + mp->offset + o;
    const int before = (pos + 1) / b - 1; /* the first row sees blocks 0 .. before */
    const int nk = before + rows < ns ? before + rows : ns;
    const size_t heads = (size_t)p->batch * (size_t)p->heads, dv = (size_t)p->value_dim;
    if (rows <= 0 || nk <= 0)
        return CLATTN_STATUS_OK;
    for (int i = 0; i < rows; i++)
        clattn__copy_rows(st->q_tmp, rows, i, st->own.q, nq, o + i * b, 1, heads, p->head_dim);
    /* Row i sits at position before + i of the blocks: the causal rule leaves it blocks 0 .. before + i. */
    const clattn__block blk = {.q = st->q_tmp,
                               .q_first = before,
                               .nq = rows,
                               .k = mean_k,
                               .v = mean_v,
                               .k_first = 0,
                               .nk = nk,
                               .mode = CLATTN__BLOCK_ALIGNED_DENSE};
    const float *k = mean_k, *v = mean_v;
    float *kt = st->k_tmp, *vt = st->v_tmp;
    const size_t kh = (size_t)p->batch * (size_t)p->kv_heads;
    clattn__block cut = blk;
    if (nk < ns) { /* the first nk blocks of every head, contiguous */
        clattn__copy_rows(kt, nk, 0, k, ns, 0, nk, kh, p->head_dim);
        clattn__copy_rows(vt, nk, 0, v, ns, 0, nk, kh, p->value_dim);
        cut.k = kt;
        cut.v = vt;
    }
    const int status = clattn__block_run(&mp->runner, &cut, NULL, st->part_o, st->part_lse, err);
    for (int i = 0; i < rows && !status; i++)
        for (size_t h = 0; h < heads; h++)
            if (!hides_last_block(p, seq_lens, (int)(h / (size_t)p->heads), pos + i * b))
                clattn__merge_rows(st->own.acc_o + (h * (size_t)nq + (size_t)(o + i * b)) * dv,
                                   st->own.acc_lse + h * (size_t)nq + (size_t)(o + i * b),
                                   st->part_o + (h * (size_t)rows + (size_t)i) * dv,
                                   st->part_lse + h * (size_t)rows + i, 1, p->value_dim);
    return status;
}

/* Blocks [c_lo, c_hi) of batch entry e added on the host to this rank's row at position pos (when
 * it has it): one logit per head and block, merged one after another. */
static void host_blocks(clattn_mpi_plan *mp, clattn__mpi_run *st, int e, int pos, int c_lo, int c_hi,
                        const float *mean_k, const float *mean_v)
{
    const clattn_problem *p = &mp->p;
    const int ns = clattn__summary_count(p), nq = st->own.n;
    const int row = pos - (mp->q_first[mp->rank] + mp->offset), group = p->heads / p->kv_heads;
    if (row < 0 || row >= nq)
        return;
    for (int h = 0; h < p->heads; h++)
        for (int c = c_lo; c < c_hi; c++) {
            const size_t qh = (size_t)e * (size_t)p->heads + (size_t)h;
            const size_t kvh = (size_t)e * (size_t)p->kv_heads + (size_t)(h / group);
            const float *q = st->own.q + (qh * (size_t)nq + (size_t)row) * (size_t)p->head_dim;
            const float *k = mean_k + (kvh * (size_t)ns + (size_t)c) * (size_t)p->head_dim;
            double dot = 0.0;
            for (int i = 0; i < p->head_dim; i++)
                dot += (double)q[i] * (double)k[i];
            const float lse = (float)(dot * p->scale);
            clattn__merge_rows(st->own.acc_o + (qh * (size_t)nq + (size_t)row) * (size_t)p->value_dim,
                               st->own.acc_lse + qh * (size_t)nq + (size_t)row,
                               mean_v + (kvh * (size_t)ns + (size_t)c) * (size_t)p->value_dim, &lse, 1, p->value_dim);
        }
}

/* What the class runs leave out of batch entry e's blocks: a partial last block of its own for
 * the last valid row; under the merged tail, blocks 0 .. nb - 2 for the rows that hid the last
 * block (hides_last_block). */
static void late_blocks(clattn_mpi_plan *mp, clattn__mpi_run *st, int e, const int *seq_lens, const float *mean_k,
                        const float *mean_v)
{
    const clattn_problem *p = &mp->p;
    const int valid = clattn__valid_keys(p, seq_lens, e), b = p->summary_block, nb = valid / b;
    if (valid % b == 0)
        return;
    if (p->summary_tail == CLATTN_SUMMARY_TAIL_OWN) {
        host_blocks(mp, st, e, valid - 1, nb, nb + 1, mean_k, mean_v);
        return;
    }
    for (int pos = nb * b - 1; nb > 0 && pos < valid - 1; pos++)
        host_blocks(mp, st, e, pos, 0, nb - 1, mean_k, mean_v);
}

static int causal_summaries(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, const float *mean_k,
                            const float *mean_v, clattn__error *err)
{
    const clattn_problem *p = &mp->p;
    int status = CLATTN_STATUS_OK;
    for (int o = 0; o < p->summary_block && o < st->own.n && !status; o++)
        status = summary_class(mp, st, o, mean_k, mean_v, t->seq_lens, err);
    for (int e = 0; e < p->batch && !status; e++)
        late_blocks(mp, st, e, t->seq_lens, mean_k, mean_v);
    return status;
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
        const int blocks = clattn__summary_blocks(p, valid);
        const size_t at = (size_t)e * hk;
        add_rows(sum_k + at * (size_t)ns * (size_t)d, ns, (const float *)t->k.data + at * (size_t)kc * (size_t)d, kc, 0,
                 mine, kf, b, blocks, hk, d);
        add_rows(sum_v + at * (size_t)ns * (size_t)dv, ns, (const float *)t->v.data + at * (size_t)kc * (size_t)dv, kc,
                 0, mine, kf, b, blocks, hk, dv);
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
        st->k_valid[e] = clattn__summary_blocks(p, valid);
        for (size_t h = (size_t)e * hk; h < (size_t)(e + 1) * hk; h++)
            for (int c = 0; c < st->k_valid[e]; c++) {
                int start, end;
                clattn__summary_keys(p, valid, c, &start, &end);
                const float count = (float)(end - start);
                for (int i = 0; i < d; i++)
                    mean_k[(h * (size_t)ns + (size_t)c) * (size_t)d + (size_t)i] /= count;
                for (int i = 0; i < dv; i++)
                    mean_v[(h * (size_t)ns + (size_t)c) * (size_t)dv + (size_t)i] /= count;
            }
    }
    if (p->causal)
        return causal_summaries(mp, st, t, mean_k, mean_v, err);
    const clattn__mpi_keys keys = {
        .k = mean_k, .v = mean_v, .nk = ns, .mode = CLATTN__BLOCK_VISIBLE, .k_valid = st->k_valid};
    return clattn__mpi_run_rows(mp, st, &st->own, 0, st->own.n, 0, &keys, t->seq_lens, err);
}
