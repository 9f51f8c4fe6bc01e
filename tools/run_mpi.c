/* `clattn run ... --mpi` under mpirun: rank 0 reads the whole .npy files and sends every rank its
 * shard (equal shares of the tokens: Q rows, K and V rows; extra keys to all), the ranks run the
 * problem sequence parallel (clattn_mpi.h), and rank 0 gathers O and LSE and writes them whole. */
#include "run_mpi.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clattn_mpi.h"
#include "exit_status.h"
#include "run_io.h"

#define TAG_SHARD 1801

typedef struct {
    int k_first, k_count, q_first, q_count;
} shard;

/* A [heads, rows, width] tensor of elements of `size` bytes (the storage type's, or LSE's float). */
typedef struct {
    void *data;
    size_t heads;
    int rows, width;
    size_t size;
} piece;

static size_t piece_elements(const piece *p, int rows)
{
    return p->heads * (size_t)rows * (size_t)p->width;
}

/* The elements travel as what they are: float32, or 16-bit storage as unsigned shorts. */
static MPI_Datatype piece_type(const piece *p)
{
    return p->size == sizeof(float) ? MPI_FLOAT : MPI_UINT16_T;
}

/* Rows [first, first + count) of every head of `whole`, packed; or back. */
static void pack_rows(unsigned char *packed, const piece *whole, int first, int count, int unpack)
{
    const size_t w = (size_t)whole->width * whole->size, n = (size_t)count * w;
    for (size_t h = 0; h < whole->heads; h++) {
        unsigned char *a = packed + h * n;
        unsigned char *b = (unsigned char *)whole->data + (h * (size_t)whole->rows + (size_t)first) * w;
        memcpy(unpack ? b : a, unpack ? a : b, n);
    }
}

/* Rank 0 sends each rank its rows of each input; the others receive theirs. */
static int scatter(const piece *whole, piece *mine, int count, const shard *all, int rank, int size, int is_q)
{
    int rc = MPI_SUCCESS;
    for (int i = 0; i < count && rc == MPI_SUCCESS; i++) {
        for (int d = 0; d < size && rank == 0 && rc == MPI_SUCCESS; d++) {
            const int first = is_q ? all[d].q_first : all[d].k_first, n = is_q ? all[d].q_count : all[d].k_count;
            const size_t elements = piece_elements(&whole[i], n);
            unsigned char *dst = d == 0 ? mine[i].data : malloc(elements * whole[i].size + 4);
            if (dst == NULL)
                return MPI_ERR_NO_MEM;
            pack_rows(dst, &whole[i], first, n, 0);
            if (d > 0) {
                rc = MPI_Send(dst, (int)elements, piece_type(&whole[i]), d, TAG_SHARD, MPI_COMM_WORLD);
                free(dst);
            }
        }
        if (rank > 0)
            rc = MPI_Recv(mine[i].data, (int)piece_elements(&mine[i], mine[i].rows), piece_type(&mine[i]), 0, TAG_SHARD,
                          MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    return rc;
}

/* Rank 0 receives each rank's rows of O and LSE into the whole tensors. */
static int gather(piece *whole, const piece *mine, int count, const shard *all, int rank, int size)
{
    int rc = MPI_SUCCESS;
    for (int i = 0; i < count && rc == MPI_SUCCESS; i++) {
        if (rank > 0) {
            rc = MPI_Send(mine[i].data, (int)piece_elements(&mine[i], mine[i].rows), piece_type(&mine[i]), 0, TAG_SHARD,
                          MPI_COMM_WORLD);
            continue;
        }
        for (int d = 0; d < size && rc == MPI_SUCCESS; d++) {
            const size_t n = piece_elements(&whole[i], all[d].q_count);
            unsigned char *src = d == 0 ? mine[i].data : malloc(n * whole[i].size + 4);
            if (src == NULL)
                return MPI_ERR_NO_MEM;
            if (d > 0)
                rc = MPI_Recv(src, (int)n, piece_type(&whole[i]), d, TAG_SHARD, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            if (rc == MPI_SUCCESS)
                pack_rows(src, &whole[i], all[d].q_first, all[d].q_count, 1);
            if (d > 0)
                free(src);
        }
    }
    return rc;
}

/* One status for every rank: the largest of the failed ranks' statuses (OpenCL's negative codes
 * count), 0 when none failed. Each failed rank prints its own message. */
static int agree(int status, int rank, const run_args *a)
{
    int code = status != 0 ? status : INT_MIN;
    MPI_Allreduce(MPI_IN_PLACE, &code, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (code == INT_MIN)
        return 0;
    if (status)
        fprintf(stderr, "clattn: rank %d: %s (%s)\n", rank, a->message, tool_status_string(status));
    return code;
}

static int run_ranks(run_args *a, npy_tensor *in, int rank, int size)
{
    int status = CLATTN_STATUS_OK;
    if (rank == 0 && (status = run_io_read_inputs(a, in)) == CLATTN_STATUS_OK)
        status = run_io_derive_shape(in, a);
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (status) {
        if (rank == 0)
            fprintf(stderr, "clattn: %s (%s)\n", a->message, tool_status_string(status));
        return status;
    }
    MPI_Bcast(&a->problem, (int)sizeof a->problem, MPI_BYTE, 0, MPI_COMM_WORLD);
    clattn_problem *p = &a->problem;
    p->global_idx = a->globals; /* every rank parsed the same arguments */
    if (p->kv_heads == 0)
        p->kv_heads = p->heads;
    /* Equal shares of the tokens; the plan says which query rows each share holds. */
    const int k_count = (int)((long long)p->kv_len * (rank + 1) / size - (long long)p->kv_len * rank / size);
    clattn_context *ctx = NULL;
    clattn_mpi_plan *plan = NULL;
    status = clattn_context_create(&(clattn_context_desc){.device = a->device}, &ctx);
    snprintf(a->message, sizeof a->message, "%s", clattn_context_message(NULL));
    status = agree(status, rank, a);
    if (!status) {
        status = clattn_mpi_plan_create(ctx, MPI_COMM_WORLD, p, k_count, &plan); /* the same on every rank */
        if (status && rank == 0)
            fprintf(stderr, "clattn: %s (%s)\n", clattn_context_message(ctx), tool_status_string(status));
    }
    shard *all = malloc((size_t)size * sizeof *all);
    shard me = {0};
    if (!status)
        clattn_mpi_plan_shard(plan, &me.k_first, &me.k_count, &me.q_first, &me.q_count);
    const size_t qh = (size_t)p->batch * (size_t)p->heads, kh = (size_t)p->batch * (size_t)p->kv_heads;
    const size_t x = kh * (size_t)p->extra_len, e = npy_dtype_size(p->dtype), f = sizeof(float);
    piece mine_in[3] = {{NULL, qh, me.q_count, p->head_dim, e},
                        {NULL, kh, me.k_count, p->head_dim, e},
                        {NULL, kh, me.k_count, p->value_dim, e}};
    piece mine_out[2] = {{NULL, qh, me.q_count, p->value_dim, e}, {NULL, qh, me.q_count, 1, f}};
    piece kx = {rank == 0 ? in[IN_KX].data : malloc(x * (size_t)p->head_dim * e + 4), x, 1, p->head_dim, e};
    piece vx = {rank == 0 ? in[IN_VX].data : malloc(x * (size_t)p->value_dim * e + 4), x, 1, p->value_dim, e};
    if (!status) {
        int ok = all != NULL && ((kx.data != NULL && vx.data != NULL) || x == 0);
        for (int i = 0; i < 3; i++)
            ok &= (mine_in[i].data = malloc(piece_elements(&mine_in[i], mine_in[i].rows) * e + 4)) != NULL;
        for (int i = 0; i < 2; i++)
            ok &= (mine_out[i].data = malloc(piece_elements(&mine_out[i], mine_out[i].rows) * mine_out[i].size + 4)) !=
                  NULL;
        if (!ok)
            snprintf(a->message, sizeof a->message, "no memory for this rank's shard");
        status = agree(ok ? 0 : CLATTN_STATUS_HOST_OUT_OF_MEMORY, rank, a);
    }
    if (!status) {
        const piece whole_q = {in[IN_Q].data, qh, p->q_len, p->head_dim, e};
        const piece whole_kv[2] = {{in[IN_K].data, kh, p->kv_len, p->head_dim, e},
                                   {in[IN_V].data, kh, p->kv_len, p->value_dim, e}};
        int rc = MPI_Allgather(&me, 4, MPI_INT, all, 4, MPI_INT, MPI_COMM_WORLD);
        if (rc == MPI_SUCCESS)
            rc = scatter(&whole_q, mine_in, 1, all, rank, size, 1);
        if (rc == MPI_SUCCESS)
            rc = scatter(whole_kv, mine_in + 1, 2, all, rank, size, 0);
        if (rc == MPI_SUCCESS && x > 0)
            rc = MPI_Bcast(kx.data, (int)piece_elements(&kx, 1), piece_type(&kx), 0, MPI_COMM_WORLD);
        if (rc == MPI_SUCCESS && x > 0)
            rc = MPI_Bcast(vx.data, (int)piece_elements(&vx, 1), piece_type(&vx), 0, MPI_COMM_WORLD);
        snprintf(a->message, sizeof a->message, "sending the shards failed");
        status = agree(rc == MPI_SUCCESS ? 0 : CLATTN_STATUS_MPI, rank, a);
    }
    if (!status) {
        const clattn_host_tensors t = {
            .q = {mine_in[0].data, qh * (size_t)me.q_count * (size_t)p->head_dim * e},
            .k = {mine_in[1].data, kh * (size_t)me.k_count * (size_t)p->head_dim * e},
            .v = {mine_in[2].data, kh * (size_t)me.k_count * (size_t)p->value_dim * e},
            .out = {mine_out[0].data, qh * (size_t)me.q_count * (size_t)p->value_dim * e},
            .lse = {mine_out[1].data, qh * (size_t)me.q_count * f},
            .kx = {kx.data, x * (size_t)p->head_dim * e},
            .vx = {vx.data, x * (size_t)p->value_dim * e},
            .seq_lens = a->seq_lens,
        };
        status = clattn_mpi_plan_run_host(plan, &t); /* every rank returns the same status */
        if (status && rank == 0)
            fprintf(stderr, "clattn: %s (%s)\n", clattn_context_message(ctx), tool_status_string(status));
    }
    void *out = NULL;
    float *lse = NULL;
    if (!status) {
        const size_t rows = qh * (size_t)p->q_len;
        out = rank == 0 ? malloc(rows * (size_t)p->value_dim * e + 4) : NULL;
        lse = rank == 0 ? malloc(rows * f + 4) : NULL;
        piece whole_out[2] = {{out, qh, p->q_len, p->value_dim, e}, {lse, qh, p->q_len, 1, f}};
        const int rc = rank == 0 && (out == NULL || lse == NULL) ? MPI_ERR_NO_MEM
                                                                 : gather(whole_out, mine_out, 2, all, rank, size);
        if (rc != MPI_SUCCESS)
            snprintf(a->message, sizeof a->message, "gathering the output failed");
        status = rc == MPI_SUCCESS && rank == 0 ? run_io_write_outputs(a, &in[IN_Q], out, lse)
                 : rc == MPI_SUCCESS            ? 0
                                                : CLATTN_STATUS_MPI;
        status = agree(status, rank, a);
    }
    free(lse);
    free(out);
    clattn_mpi_plan_free(plan);
    clattn_context_free(ctx);
    for (int i = 1; i >= 0; i--)
        free(mine_out[i].data);
    for (int i = 2; i >= 0; i--)
        free(mine_in[i].data);
    if (rank > 0) {
        free(vx.data);
        free(kx.data);
    }
    free(all);
    return status;
}

int run_mpi_main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    run_args a = {0};
    npy_tensor in[IN_COUNT] = {{0}};
    int status = run_args_parse(argc, argv, &a); /* tools/clattn.c took --mpi out */
    if (status && rank == 0)
        fprintf(stderr, "clattn: %s (%s)\n", a.message, tool_status_string(status));
    if (!status)
        status = run_ranks(&a, in, rank, size);
    for (int i = IN_COUNT - 1; i >= 0; i--)
        npy_free(&in[i]);
    run_args_free(&a);
    MPI_Finalize();
    return status == CLATTN_STATUS_MPI ? EXIT_RUNTIME : clattn_exit_status(status);
}
