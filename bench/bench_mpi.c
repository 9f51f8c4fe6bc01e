/* `clattn bench --mpi`, under mpirun: each pattern and N run sequence parallel over the ranks
 * (clattn_mpi.h), equal shards; rank 0 prints the slowest rank's median time per run and what every
 * rank sent and received, beside what the patterns should move: (P - 1) / P of K and V for the
 * ring, the L + R halo keys for a window (the causal zigzag's moves of rows, counted apart). */
#include "bench_mpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clattn_mpi.h"
#include "exit_status.h"
#include "options.h"
#include "timing.h"
#include "workload.h"

typedef struct {
    clattn_mpi_plan *plan;
    clattn_host_tensors t;
} shard_run;

static int alloc_shard(const clattn_problem *p, clattn_mpi_plan *plan, int rank, clattn_host_tensors *t)
{
    int kc, qc;
    clattn_mpi_plan_shard(plan, NULL, &kc, NULL, &qc);
    const size_t hkv = (size_t)p->batch * (size_t)(p->kv_heads ? p->kv_heads : p->heads), e = dtype_bytes(p->dtype);
    const size_t q = (size_t)p->batch * (size_t)p->heads * (size_t)qc * (size_t)p->head_dim;
    const size_t k = hkv * (size_t)kc * (size_t)p->head_dim;
    clattn_host_tensor *all[] = {&t->q, &t->k, &t->v, &t->out, &t->lse};
    const size_t bytes[] = {q * e, k * e, k * e, q * e, q / (size_t)p->head_dim * sizeof(float)}; /* LSE: float32 */
    unsigned long long seed = 0x5eedull + (unsigned long long)rank;
    for (int i = 0; i < 5; i++) {
        all[i]->bytes = bytes[i];
        all[i]->data = malloc(bytes[i] ? bytes[i] : 1);
        if (all[i]->data == NULL)
            return CLATTN_STATUS_HOST_OUT_OF_MEMORY;
        if (i < 3)
            workload_random(p->dtype, all[i]->data, bytes[i] / e, &seed);
    }
    return CLATTN_STATUS_OK;
}

static void free_shard(clattn_host_tensors *t)
{
    void *all[] = {t->q.data, t->k.data, t->v.data, t->out.data, t->lse.data};
    for (int i = 0; i < 5; i++)
        free(all[i]);
}

/* The slowest rank's time of one collective run, in ms; every rank gets it. */
static int timed_run(shard_run *s, double *ms)
{
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    const int status = clattn_mpi_plan_run_host(s->plan, &s->t);
    const double mine = 1e3 * (MPI_Wtime() - t0);
    MPI_Allreduce(&mine, ms, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return status;
}

/* Rank 0 prints one line per rank: bytes sent and received, and received as a share of the
 * whole K and V (ring) or in key rows (window). */
static void print_traffic(const clattn_problem *p, shard_run *s, int rank, int size)
{
    clattn_mpi_traffic mine;
    clattn_mpi_plan_traffic(s->plan, &mine);
    unsigned long long row[5] = {mine.bytes_sent, mine.bytes_received, mine.messages_sent, mine.messages_received,
                                 mine.layout_bytes_received};
    unsigned long long *all = rank == 0 ? malloc(5 * sizeof row[0] * (size_t)size) : NULL;
    MPI_Gather(row, 5, MPI_UNSIGNED_LONG_LONG, all, 5, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    if (rank != 0 || all == NULL)
        return;
    const int hkv = p->kv_heads ? p->kv_heads : p->heads, dv = p->value_dim ? p->value_dim : p->head_dim;
    const double key_row = (double)p->batch * hkv * (p->head_dim + dv) * dtype_bytes(p->dtype);
    const double kv_all = key_row * (p->kv_len ? p->kv_len : p->q_len);
    for (int r = 0; r < size; r++) {
        const unsigned long long *a = all + 5 * r, pattern = a[1] - a[4];
        printf("    rank %d: sent %llu B in %llu messages, received %llu B in %llu; without the zigzag's moves %llu B "
               "= %.4f of K+V = %.1f key rows\n",
               r, a[0], a[2], a[1], a[3], pattern, pattern / kv_all, pattern / key_row);
    }
    free(all);
}

static int bench_point(const bench_options *o, clattn_context *ctx, pattern_id pattern, int n, int rank, int size)
{
    clattn_problem p = workload_problem(o, pattern, n);
    int *globals = malloc((size_t)(p.num_global > 0 ? p.num_global : 1) * sizeof(int));
    if (globals == NULL)
        return EXIT_RUNTIME;
    workload_global_positions(n, p.num_global, globals);
    p.global_idx = globals;
    shard_run s;
    memset(&s, 0, sizeof s);
    int status = clattn_mpi_plan_create(ctx, MPI_COMM_WORLD, &p, n / size + (rank < n % size), &s.plan);
    int local = status ? status : alloc_shard(&p, s.plan, rank, &s.t), worst = 0;
    MPI_Allreduce(&local, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    double *samples = malloc((size_t)(o->repeat > 0 ? o->repeat : 1) * sizeof(double)), ms = 0.0;
    for (int i = 0; i < o->warmup + o->repeat && !worst && !status && samples != NULL; i++) {
        status = timed_run(&s, &ms);
        if (i >= o->warmup)
            samples[i - o->warmup] = ms;
    }
    if (!status && !worst && samples != NULL) {
        double lo, hi;
        const double median = median_of(samples, o->repeat, &lo, &hi);
        double flops = 0.0;
        clattn_visibility v;
        if (rank == 0 && clattn_visibility_init(&v, &p) == CLATTN_STATUS_OK) {
            flops = workload_flops(&v);
            clattn_visibility_free(&v);
        }
        if (rank == 0)
            printf("%-8s %s N=%-8d P=%d B=%d H=%d Hkv=%d D=%d: %.3f ms per run (min %.3f, max %.3f), %.2f GFLOP/s\n",
                   pattern_names[pattern], dtype_names[p.dtype], n, size, p.batch, p.heads,
                   p.kv_heads ? p.kv_heads : p.heads, p.head_dim, median, lo, hi, giga_per_second(flops, median));
        print_traffic(&p, &s, rank, size);
    } else if (rank == 0)
        fprintf(stderr, "clattn bench --mpi: %s N = %d: %s (%d): %s\n", pattern_names[pattern], n,
                clattn_status_string(status ? status : worst), status ? status : worst, clattn_context_message(ctx));
    free(samples);
    free_shard(&s.t);
    clattn_mpi_plan_free(s.plan);
    free(globals);
    return status ? clattn_exit_status(status) : worst ? EXIT_RUNTIME : 0;
}

int bench_mpi_main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    bench_options o; /* bench's own options: tools/clattn.c took --mpi out */
    int code = options_parse(argc, argv, &o);
    if (code == 0 && o.rounds > 1) {
        if (rank == 0)
            fprintf(stderr, "clattn bench --mpi: --rounds: the sweep runs once under --mpi\n");
        code = EXIT_USAGE;
    }
    clattn_context *ctx = NULL;
    if (code == 0) {
        const clattn_context_desc desc = {.device = o.num_devices > 0 ? o.devices[0] : NULL, .cache_dir = o.cache_dir};
        const int status = clattn_context_create(&desc, &ctx);
        if (status) {
            fprintf(stderr, "clattn bench --mpi: rank %d: %s\n", rank, clattn_context_message(NULL));
            code = clattn_exit_status(status);
        }
    }
    int worst = code;
    MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (worst == 0 && rank == 0)
        printf("clattn bench --mpi: %d ranks on %s, median of %d runs after %d warm-up\n", size,
               clattn_context_device_name(ctx), o.repeat, o.warmup);
    for (int pattern = 0; pattern < PATTERN_COUNT && worst == 0; pattern++)
        for (int i = 0; i < o.num_lengths && o.patterns[pattern] && worst == 0; i++)
            worst = bench_point(&o, ctx, (pattern_id)pattern, o.lengths[i], rank, size);
    clattn_context_free(ctx);
    MPI_Finalize();
    return worst < 0 ? 0 : worst; /* -1: --help was answered */
}
