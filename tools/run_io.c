/* `clattn run`'s tensors: the .npy inputs read, the problem's shape derived from them (and the
 * optional tensors checked against it), and the outputs written; shared by the single-process run
 * (clattn.c) and the run across MPI ranks (run_mpi.c). */
#include "run_io.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* Shape [B, H, N, D] of a tensor of rank 2, 3 or 4 (missing leading dims are 1). */
static void shape4(const npy_tensor *t, long long s[4])
{
    for (int i = 0; i < 4; i++)
        s[i] = 1;
    for (int i = 0; i < t->rank; i++)
        s[4 - t->rank + i] = t->shape[i];
}

static int shape_error(run_args *a, const char *what, const long long *x, const long long *y)
{
    snprintf(a->message, sizeof a->message, "%s: [%lld,%lld,%lld,%lld] vs [%lld,%lld,%lld,%lld]", what, x[0], x[1],
             x[2], x[3], y[0], y[1], y[2], y[3]);
    return CLATTN_STATUS_SHAPE_MISMATCH;
}

static int same_shape(run_args *a, const char *what, const long long *x, const long long *y)
{
    return memcmp(x, y, 4 * sizeof *x) != 0 ? shape_error(a, what, x, y) : CLATTN_STATUS_OK;
}

/* Fills the problem's shape from Q, K, V (and checks the optional tensors against them). */
int run_io_derive_shape(const npy_tensor *in, run_args *a)
{
    long long q[4], k[4], v[4], x[4];
    shape4(&in[IN_Q], q);
    shape4(&in[IN_K], k);
    shape4(&in[IN_V], v);
    if (in[IN_Q].rank != in[IN_K].rank || in[IN_K].rank != in[IN_V].rank) {
        snprintf(a->message, sizeof a->message, "Q, K and V have ranks %d, %d, %d: they must be equal", in[IN_Q].rank,
                 in[IN_K].rank, in[IN_V].rank);
        return CLATTN_STATUS_SHAPE_MISMATCH;
    }
    if (q[0] != k[0] || q[3] != k[3] || k[0] != v[0] || k[1] != v[1] || k[2] != v[2]) {
        snprintf(a->message, sizeof a->message,
                 "Q [%lld,%lld,%lld,%lld], K [%lld,%lld,%lld,%lld], V [%lld,%lld,%lld,%lld]: Q and K must agree "
                 "in batch and head dim, K and V in batch, heads and keys",
                 q[0], q[1], q[2], q[3], k[0], k[1], k[2], k[3], v[0], v[1], v[2], v[3]);
        return CLATTN_STATUS_SHAPE_MISMATCH;
    }
    for (int i = 0; i < 4; i++)
        if (q[i] > INT_MAX || k[i] > INT_MAX || v[i] > INT_MAX)
            return shape_error(a, "a dimension exceeds 2^31 - 1", q, k);
    clattn_problem *p = &a->problem;
    p->batch = (int)q[0];
    p->heads = (int)q[1];
    p->kv_heads = (int)k[1];
    p->q_len = (int)q[2];
    p->kv_len = (int)k[2];
    p->head_dim = (int)q[3];
    p->value_dim = (int)v[3];
    int status = CLATTN_STATUS_OK;
    if (a->qg != NULL) {
        long long g[4];
        p->global_qkv = 1;
        shape4(&in[IN_QG], g);
        status = same_shape(a, "--qg vs --q", g, q);
        shape4(&in[IN_KG], g);
        status = status ? status : same_shape(a, "--kg vs --k", g, k);
        shape4(&in[IN_VG], g);
        status = status ? status : same_shape(a, "--vg vs --v", g, v);
    }
    if (!status && a->kx != NULL) {
        shape4(&in[IN_KX], x);
        long long y[4];
        shape4(&in[IN_VX], y);
        if (x[0] != k[0] || x[1] != k[1] || x[3] != k[3] || y[0] != v[0] || y[1] != v[1] || y[2] != x[2] ||
            y[3] != v[3] || x[2] > INT_MAX)
            return shape_error(a, "--kx/--vx disagree with K/V: Kx vs K", x, k);
        p->extra_len = (int)x[2];
    }
    if (!status && a->seq_lens != NULL && a->num_seq_lens != p->batch) {
        snprintf(a->message, sizeof a->message, "--seq-lens has %d entries, the batch is %d", a->num_seq_lens,
                 p->batch);
        return CLATTN_STATUS_SHAPE_MISMATCH;
    }
    return status;
}

int run_io_read_inputs(run_args *a, npy_tensor *in)
{
    const char *paths[IN_COUNT] = {a->q, a->k, a->v, a->qg, a->kg, a->vg, a->kx, a->vx};
    tool_error err;
    int status = CLATTN_STATUS_OK;
    for (int i = 0; i < IN_COUNT && !status; i++)
        if (paths[i] != NULL)
            status = npy_read(paths[i], 2, 4, &in[i], &err);
    if (!status)
        status = npy_same_dtype(in, paths, IN_COUNT, &err);
    if (status)
        snprintf(a->message, sizeof a->message, "%s", err.text);
    a->problem.dtype = in[IN_Q].dtype; /* the inputs' storage type is the call's */
    return status;
}

clattn_host_tensor run_io_host_tensor(const npy_tensor *t)
{
    return (clattn_host_tensor){t->data, t->count * npy_dtype_size(t->dtype)};
}

int run_io_write_outputs(run_args *a, const npy_tensor *q, const void *out, const float *lse)
{
    long long shape[4];
    memcpy(shape, q->shape, sizeof shape);
    shape[q->rank - 1] = a->problem.value_dim;
    tool_error err;
    int status = npy_write(a->out, a->problem.dtype, q->rank, shape, out, &err);
    if (!status && a->lse != NULL)
        status = npy_write(a->lse, CLATTN_DTYPE_F32, q->rank - 1, shape, lse, &err);
    if (status)
        snprintf(a->message, sizeof a->message, "%s", err.text);
    return status;
}
