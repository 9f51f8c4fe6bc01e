/* Sequence parallel over MPI (clattn_mpi.h), run under `mpirun -np P`: every rank makes the whole
 * inputs (the same seed), runs them as one call on its device, then runs its shard across the ranks;
 * its shard of O and LSE must match the single call within 2e-4 and be bit-identical when run
 * again. Dense (ring), causal (zigzag), windows wider than a shard (with dilation, padding), windows
 * with global tokens on several ranks, decode (rows gathered), GQA, extra keys, unequal and empty
 * shards, float16 and bfloat16 storage (O then within half an ulp of its storage type more), and a
 * bad input on one rank that every rank must report. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clattn_mpi.h"
#include "harness.h"
#include "storage.h"

#define TOLERANCE 2e-4

static int rank, size;

/* Rows [first, first + count) of every head of a [heads, rows, width] tensor of `size`-byte
 * elements, packed. */
static void *head_rows(const void *src, size_t heads, int rows, int first, int count, int width, size_t size)
{
    const size_t row = (size_t)width * size;
    char *dst = malloc((size_t)(count > 0 ? count : 1) * heads * row);
    for (size_t h = 0; dst != NULL && h < heads; h++)
        memcpy(dst + h * (size_t)count * row, (const char *)src + (h * (size_t)rows + (size_t)first) * row,
               (size_t)count * row);
    return dst;
}

/* Keys per rank: equal shards, or shares 1, 2, 3, ... with rank 1 empty when there are 3 ranks or
 * more (a shard of no tokens still passes the ring on). */
static int shard_keys(int n, int unequal)
{
    if (!unequal)
        return n / size + (rank < n % size);
    long long total = 0, before = 0;
    for (int r = 0; r < size; r++)
        total += size >= 3 && r == 1 ? 0 : r + 1;
    for (int r = 0; r < rank; r++)
        before += size >= 3 && r == 1 ? 0 : r + 1;
    const long long mine = size >= 3 && rank == 1 ? 0 : rank + 1;
    return (int)(n * (before + mine) / total - n * before / total);
}

typedef struct {
    int status;
    void *o;    /* in the problem's storage type */
    float *lse; /* float32 in every storage */
} shard_result;

/* This rank's shard of the whole tensors (in p's storage type) run across the ranks. */
static shard_result run_shard(clattn_mpi_plan *mp, const clattn_problem *p, const clattn_host_tensors *whole,
                              const int *seq_lens, int corrupt)
{
    const int hkv = p->kv_heads ? p->kv_heads : p->heads, nk = p->kv_len ? p->kv_len : p->q_len;
    const int dv = p->value_dim ? p->value_dim : p->head_dim;
    int kf, kc, qf, qc;
    clattn_mpi_plan_shard(mp, &kf, &kc, &qf, &qc);
    const size_t qh = (size_t)p->batch * (size_t)p->heads, kh = (size_t)p->batch * (size_t)hkv;
    const size_t e = storage_size(p->dtype);
    shard_result res = {0};
    clattn_host_tensors t = {
        .q = {head_rows(whole->q.data, qh, p->q_len, qf, qc, p->head_dim, e), qh * (size_t)qc * p->head_dim * e},
        .k = {head_rows(whole->k.data, kh, nk, kf, kc, p->head_dim, e), kh * (size_t)kc * p->head_dim * e},
        .v = {head_rows(whole->v.data, kh, nk, kf, kc, dv, e), kh * (size_t)kc * (size_t)dv * e},
        .out = {calloc(qh * (size_t)(qc + 1) * (size_t)dv, e), qh * (size_t)qc * (size_t)dv * e},
        .lse = {calloc(qh * (size_t)(qc + 1), 4), qh * (size_t)qc * 4},
        .kx = whole->kx,
        .vx = whole->vx,
        .seq_lens = seq_lens,
    };
    if (corrupt) /* a K too small on this rank */
        t.k.bytes = t.k.bytes > 4 ? t.k.bytes - 4 : 0;
    res.status = clattn_mpi_plan_run_host(mp, &t);
    res.o = t.out.data;
    res.lse = t.lse.data;
    free(t.v.data);
    free(t.k.data);
    free(t.q.data);
    return res;
}

/* 1 on every rank when cond holds on every rank. */
static int all_ranks(int cond)
{
    int all = 0;
    MPI_Allreduce(&cond, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return all;
}

static double worst_of_ranks(double e)
{
    double worst = 0.0;
    MPI_Allreduce(&e, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

/* Counts one check on every rank; rank 0 prints it. */
static void collective_check(int ok, const char *what, const clattn_problem *p, double err, int identical)
{
    ok = all_ranks(ok);
    if (rank == 0)
        check(ok, "P=%d %-28s Nq=%d Nk=%d causal=%d L=%d R=%d: max error %.2e, repeat %s", size, what, p->q_len,
              p->kv_len ? p->kv_len : p->q_len, p->causal, p->window_left, p->window_right, err,
              identical ? "identical" : "DIFFERS");
    else if (!ok)
        check_at(__func__, __LINE__, 0, "%s", what); /* every rank's exit status reports it */
}

/* The whole problem as one float32 call on ctx (its inputs rounded to p's storage type first) is
 * what each rank's shard is judged against: O within its storage's half ulp and TOLERANCE. */
static void check_case(clattn_context *ctx, const char *what, const clattn_problem *p, const int *seq_lens, int unequal)
{
    harness_tensors h;
    clattn_host_tensors stored;
    if (harness_tensors_alloc(p, 1, 2026u + (unsigned)p->q_len, &h)) {
        collective_check(0, what, p, INFINITY, 0);
        return;
    }
    h.t.seq_lens = seq_lens;
    int s = storage_alloc(p->dtype, &h.t, &stored);
    clattn_problem wide = *p;
    wide.dtype = CLATTN_DTYPE_F32;
    clattn_plan *plan = NULL;
    if (!s)
        s = clattn_plan_create(ctx, &wide, &plan);
    if (!s)
        s = clattn_plan_run_host(plan, &h.t);
    clattn_plan_free(plan);
    clattn_mpi_plan *mp = NULL;
    const int nk = p->kv_len ? p->kv_len : p->q_len;
    if (!s)
        s = clattn_mpi_plan_create(ctx, MPI_COMM_WORLD, p, shard_keys(nk, unequal), &mp);
    shard_result a = {s, NULL, NULL}, b = {s, NULL, NULL};
    if (!s) {
        a = run_shard(mp, p, &stored, seq_lens, 0);
        b = run_shard(mp, p, &stored, seq_lens, 0);
    }
    if (a.status || b.status)
        printf("rank %d: %s: %s\n", rank, what, clattn_context_message(ctx));
    double err = INFINITY;
    int identical = 0;
    if (!a.status && !b.status) {
        int qf, qc;
        clattn_mpi_plan_shard(mp, NULL, NULL, &qf, &qc);
        const size_t qh = (size_t)p->batch * (size_t)p->heads;
        const int dv = p->value_dim ? p->value_dim : p->head_dim;
        const size_t no = qh * (size_t)qc * (size_t)dv;
        float *want_o = head_rows(h.t.out.data, qh, p->q_len, qf, qc, dv, sizeof(float));
        float *want_l = head_rows(h.t.lse.data, qh, p->q_len, qf, qc, 1, sizeof(float));
        err = fmax(storage_error(p->dtype, a.o, want_o, no, 0.5), harness_max_diff(a.lse, want_l, qh * (size_t)qc));
        identical =
            memcmp(a.o, b.o, no * storage_size(p->dtype)) == 0 && memcmp(a.lse, b.lse, qh * (size_t)qc * 4) == 0;
        free(want_l);
        free(want_o);
    }
    err = worst_of_ranks(err);
    identical = all_ranks(identical);
    collective_check(err <= TOLERANCE && identical, what, p, err, identical);
    free(a.o);
    free(a.lse);
    free(b.o);
    free(b.lse);
    clattn_mpi_plan_free(mp);
    storage_free(&stored);
    harness_tensors_free(&h);
}

/* A bad input on the last rank only: every rank returns its status, none waits forever. */
static void check_bad_rank(clattn_context *ctx)
{
    const clattn_problem p = {.batch = 1, .heads = 2, .q_len = 50, .head_dim = 32, .causal = 1};
    harness_tensors h;
    clattn_mpi_plan *mp = NULL;
    int s = harness_tensors_alloc(&p, 1, 5u, &h);
    if (!s)
        s = clattn_mpi_plan_create(ctx, MPI_COMM_WORLD, &p, shard_keys(50, 0), &mp);
    shard_result r = {s, NULL, NULL};
    if (!s)
        r = run_shard(mp, &p, &h.t, NULL, rank == size - 1);
    char expect[32];
    snprintf(expect, sizeof expect, "rank %d: ", size - 1);
    const int ok = r.status == CLATTN_STATUS_BUFFER_TOO_SMALL && strstr(clattn_context_message(ctx), expect) != NULL;
    if (rank == 0)
        printf("bad K on rank %d, rank 0 returns %d: %s\n", size - 1, r.status, clattn_context_message(ctx));
    collective_check(ok, "bad input on the last rank", &p, 0.0, 1);
    /* A shard count that does not add up fails plan creation on every rank alike. */
    clattn_mpi_plan *bad = NULL;
    const int s2 = clattn_mpi_plan_create(ctx, MPI_COMM_WORLD, &p, rank == 0 ? 1 : shard_keys(50, 0), &bad);
    collective_check(s2 == CLATTN_STATUS_SHAPE_MISMATCH, "shards that do not add up", &p, 0.0, 1);
    clattn_mpi_plan_free(bad);
    /* What the ranks cannot split yet fails on every rank alike. */
    clattn_problem own_globals = p;
    const int g[] = {7};
    own_globals.global_idx = g;
    own_globals.num_global = 1;
    own_globals.global_qkv = 1;
    bad = NULL;
    const int s3 = clattn_mpi_plan_create(ctx, MPI_COMM_WORLD, &own_globals, shard_keys(50, 0), &bad);
    collective_check(s3 == CLATTN_STATUS_UNSUPPORTED && bad == NULL, "Qg, Kg, Vg: unsupported", &p, 0.0, 1);
    free(r.o);
    free(r.lse);
    clattn_mpi_plan_free(mp);
    harness_tensors_free(&h);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char specs[HARNESS_MAX_DEVICES][16];
    clattn_context *ctx = harness_devices(specs, HARNESS_MAX_DEVICES) > 0 ? harness_open(specs[0]) : NULL;
    if (!all_ranks(ctx != NULL)) {
        clattn_context_free(ctx);
        const int code = check_failures() ? check_exit() : check_skip(HARNESS_NO_DEVICE);
        MPI_Finalize();
        return code;
    }
    const int lens[] = {101, 60};
    const int lens_window[] = {90, 47};
    const int lens_causal_summary[] = {97, 50};
    const clattn_problem dense = {.batch = 1, .heads = 4, .kv_heads = 2, .q_len = 97, .head_dim = 32};
    const clattn_problem causal = {.batch = 2, .heads = 2, .q_len = 101, .head_dim = 64, .causal = 1};
    const clattn_problem causal_gqa = {.batch = 1, .heads = 4, .kv_heads = 2, .q_len = 83, .head_dim = 32, .causal = 1};
    const clattn_problem dense_pad = {.batch = 2, .heads = 2, .kv_heads = 1, .q_len = 101, .head_dim = 32};
    const clattn_problem wide = {
        .batch = 1, .heads = 2, .q_len = 90, .head_dim = 32, .window = 1, .window_left = 40, .window_right = 35};
    const clattn_problem dilated = {.batch = 2,
                                    .heads = 4,
                                    .kv_heads = 2,
                                    .q_len = 90,
                                    .head_dim = 16,
                                    .window = 1,
                                    .window_left = 29,
                                    .window_right = 11,
                                    .dilation = 3};
    const clattn_problem sliding = {.batch = 1,
                                    .heads = 2,
                                    .q_len = 77,
                                    .head_dim = 32,
                                    .causal = 1,
                                    .window = 1,
                                    .window_left = 30,
                                    .window_right = 0};
    const clattn_problem decode = {
        .batch = 1, .heads = 4, .kv_heads = 2, .q_len = 1, .kv_len = 157, .head_dim = 64, .causal = 1};
    const clattn_problem decode_window = {.batch = 1,
                                          .heads = 2,
                                          .q_len = 3,
                                          .kv_len = 157,
                                          .head_dim = 32,
                                          .window = 1,
                                          .window_left = 70,
                                          .window_right = 0};
    const clattn_problem extra = {.batch = 1, .heads = 2, .q_len = 61, .head_dim = 32, .causal = 1, .extra_len = 5};
    const int globals[] = {0, 33, 80};
    const clattn_problem dense_globals = {
        .batch = 1, .heads = 2, .q_len = 95, .head_dim = 32, .causal = 1, .global_idx = globals, .num_global = 3};
    const int spread[] = {89, 0, 17, 44, 45};
    const int some[] = {60, 3, 30, 88};
    const clattn_problem window_globals = {.batch = 1,
                                           .heads = 4,
                                           .kv_heads = 2,
                                           .q_len = 90,
                                           .head_dim = 32,
                                           .window = 1,
                                           .window_left = 7,
                                           .window_right = 5,
                                           .global_idx = spread,
                                           .num_global = 5};
    const clattn_problem wide_globals = {.batch = 1,
                                         .heads = 2,
                                         .q_len = 90,
                                         .head_dim = 32,
                                         .window = 1,
                                         .window_left = 40,
                                         .window_right = 35,
                                         .global_idx = some,
                                         .num_global = 4};
    const clattn_problem causal_window_globals = {.batch = 2,
                                                  .heads = 2,
                                                  .q_len = 90,
                                                  .head_dim = 32,
                                                  .causal = 1,
                                                  .window = 1,
                                                  .window_left = 20,
                                                  .global_idx = some,
                                                  .num_global = 4};
    const clattn_problem decode_dense = {.batch = 1, .heads = 2, .q_len = 3, .kv_len = 157, .head_dim = 32};
    const clattn_problem window_summary = {.batch = 2,
                                           .heads = 2,
                                           .q_len = 90,
                                           .head_dim = 32,
                                           .window = 1,
                                           .window_left = 9,
                                           .window_right = 4,
                                           .summary_block = 7,
                                           .extra_len = 3};
    const clattn_problem dense_summary = {.batch = 1,
                                          .heads = 4,
                                          .kv_heads = 2,
                                          .q_len = 61,
                                          .head_dim = 32,
                                          .summary_block = 5,
                                          .summary_tail = CLATTN_SUMMARY_TAIL_OWN};
    /* No left-over keys: the two tail rules agree. */
    const clattn_problem aligned_summary = {
        .batch = 1, .heads = 4, .kv_heads = 2, .q_len = 60, .head_dim = 32, .causal = 1, .summary_block = 5};
    const clattn_problem causal_summary = {
        .batch = 2, .heads = 4, .kv_heads = 2, .q_len = 97, .head_dim = 32, .causal = 1, .summary_block = 6};
    clattn_problem causal_summary_own = causal_summary;
    causal_summary_own.summary_tail = CLATTN_SUMMARY_TAIL_OWN;
    const clattn_problem sliding_summary = {.batch = 2,
                                            .heads = 2,
                                            .q_len = 90,
                                            .head_dim = 32,
                                            .causal = 1,
                                            .window = 1,
                                            .window_left = 12,
                                            .summary_block = 8,
                                            .summary_tail = CLATTN_SUMMARY_TAIL_OWN};
    check_case(ctx, "dense GQA", &dense, NULL, 0);
    check_case(ctx, "dense GQA unequal shards", &dense, NULL, 1);
    check_case(ctx, "dense padding", &dense_pad, lens, 0);
    check_case(ctx, "causal padding", &causal, lens, 0);
    check_case(ctx, "causal unequal shards", &causal, lens, 1);
    check_case(ctx, "causal GQA", &causal_gqa, NULL, 0);
    check_case(ctx, "window L, R over a shard", &wide, NULL, 0);
    check_case(ctx, "window unequal shards", &wide, NULL, 1);
    check_case(ctx, "window dilated GQA padding", &dilated, lens_window, 0);
    check_case(ctx, "causal sliding window", &sliding, NULL, 1);
    check_case(ctx, "decode causal GQA", &decode, NULL, 0);
    check_case(ctx, "decode window", &decode_window, NULL, 1);
    check_case(ctx, "decode dense", &decode_dense, NULL, 1);
    check_case(ctx, "extra keys", &extra, NULL, 0);
    check_case(ctx, "window + globals GQA", &window_globals, NULL, 0);
    check_case(ctx, "window + globals unequal", &window_globals, NULL, 1);
    check_case(ctx, "wide window + globals", &wide_globals, NULL, 0);
    check_case(ctx, "causal window + globals pad", &causal_window_globals, lens_window, 1);
    check_case(ctx, "window + summary + extra pad", &window_summary, lens_window, 0);
    check_case(ctx, "window + summary unequal", &window_summary, NULL, 1);
    check_case(ctx, "dense summary GQA", &dense_summary, NULL, 1);
    check_case(ctx, "causal summary GQA padding", &causal_summary, lens_causal_summary, 1);
    check_case(ctx, "causal window + summary pad", &sliding_summary, lens_window, 0);
    check_case(ctx, "causal summary, no left-over keys", &aligned_summary, NULL, 1);
    check_case(ctx, "causal summary GQA padding, own tail", &causal_summary_own, lens_causal_summary, 1);
    check_case(ctx, "causal + globals", &dense_globals, NULL, 0);
    /* Storage types: shards widened to float32 at the run's start, O rounded once at its end. */
    clattn_problem causal_f16 = causal, decode_f16 = decode, globals_bf16 = window_globals,
                   summary_bf16 = window_summary;
    causal_f16.dtype = decode_f16.dtype = CLATTN_DTYPE_F16;
    globals_bf16.dtype = summary_bf16.dtype = CLATTN_DTYPE_BF16;
    check_case(ctx, "f16 causal unequal shards", &causal_f16, lens, 1);
    check_case(ctx, "f16 decode causal GQA", &decode_f16, NULL, 0);
    check_case(ctx, "bf16 window + globals unequal", &globals_bf16, NULL, 1);
    check_case(ctx, "bf16 window + summary + extra pad", &summary_bf16, lens_window, 0);
    check_bad_rank(ctx);
    clattn_context_free(ctx);
    const int code = harness_exit();
    MPI_Finalize();
    return code;
}
