/* The sequence-parallel plan and one run's state, shared by the files of its patterns: mpi.c (the
 * plan, agreement, the run), mpi_ring.c (dense and causal), mpi_halo.c (windows, global keys) and
 * mpi_gathered.c (rows gathered to every rank: global rows, decode), mpi_zigzag.c (causal balance)
 * and mpi_summary.c (summary tokens). */
#ifndef CLATTN_MPI_PLAN_H
#define CLATTN_MPI_PLAN_H

#include "clattn_mpi.h"
#include "error.h"
#include "mpi_block.h"

struct clattn_mpi_plan {
    clattn_context *ctx;
    MPI_Comm comm; /* the caller's, duplicated */
    int rank, size;
    clattn_problem p;       /* whole, normalized, in float32; global_idx points at globals */
    clattn_dtype storage;   /* the caller's storage type: the run widens to p's float32 and rounds O */
    int *globals;           /* [num_global] sorted */
    int offset;             /* Nk - Nq: the position of query row 0 */
    int *k_first, *k_count; /* [P] each rank's keys */
    int *q_first, *q_count; /* [P] each rank's query rows */
    int *statuses;          /* [P] */
    clattn__block_runner runner;
    clattn_mpi_traffic traffic;
};

/* Query rows with their accumulated result: q [B, H, n, D], acc_o [B, H, n, Dv], acc_lse
 * [B, H, n] (starting at 0 and -inf). */
typedef struct {
    const float *q;
    int n;
    float *acc_o, *acc_lse;
} clattn__mpi_rows;

/* A sliding window's exchange: the key range this rank's rows need, one message per rank pair. */
typedef struct {
    int lo, hi;                   /* keys [lo, hi) */
    int *send_first, *send_count; /* [P] keys sent to each rank */
    int *recv_first, *recv_count; /* [P] keys received from each rank */
    float *send, *recv;           /* packed [K rows | V rows] per message, back to back */
    float *k_all, *v_all;         /* [B, Hkv, hi - lo, D or Dv] */
} clattn__mpi_halo_state;

/* Rows or keys at given positions, gathered from their ranks to every rank. */
typedef struct {
    int n;
    int *pos;      /* [n] ascending */
    int *from;     /* [P] index of the first one each rank holds; from[P] = n */
    float *packed; /* this rank's, packed */
    float *all;    /* every rank's packs, in rank order */
    float *a, *b;  /* reassembled: rows q [B, H, n, D]; keys k, v [B, Hkv, n, D], [.., Dv] */
} clattn__mpi_gathered;

typedef struct {
    clattn__mpi_rows own;
    float *part_o, *part_lse, *q_tmp; /* a block's result and rows: room for the most rows */
    float *k_tmp, *v_tmp;             /* a block's keys: room for the most keys */
    float *ring[2];                   /* [K | V] of the largest shard */
    clattn__mpi_halo_state halo;
    clattn__mpi_gathered rows; /* global rows or decode rows */
    float *rows_o, *rows_lse;  /* their accumulated result; records to merge */
    float *records, *merged;   /* [B, H, n, 1 + Dv] */
    clattn__mpi_gathered keys; /* global keys of a window */
    clattn__mpi_rows zig;      /* the zigzag's rows: its Q, O and LSE */
    float *zig_k, *zig_v;      /* its keys and values */
    int *zig_counts;           /* [P] keys of each rank's two chunks */
    int *k_valid;              /* [B] */
    float *sums, *means;       /* summary tokens: [B, Hkv, Ns, D] then [B, Hkv, Ns, Dv] */
} clattn__mpi_run;

int clattn__mpi_failed(int rc, const char *what, clattn__error *err);
int clattn__mpi_alloc(float **out, size_t n, const char *what, clattn__error *err);
size_t clattn__mpi_kv_floats(const clattn_problem *p, int keys);

/* Rows [row0, row0 + rows) of `set`, the first at position pos0, against keys k, v of positions
 * [k_first, k_first + nk) (block indices `globals` global tokens, k_valid as clattn__block's),
 * merged into the set's result. */
typedef struct {
    const float *k, *v;
    int k_first, nk;
    clattn__block_mode mode;
    const int *globals;
    int num_globals;
    const int *k_valid;
} clattn__mpi_keys;

int clattn__mpi_run_rows(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn__mpi_rows *set, int row0, int rows,
                         int pos0, const clattn__mpi_keys *keys, const int *seq_lens, clattn__error *err);

/* Ring attention (mpi_ring.c): counts[P] keys each rank passes; block computes with the keys and
 * values of rank src while the next travel. */
typedef int (*clattn__ring_block)(clattn_mpi_plan *mp, clattn__mpi_run *st, int src, const float *k, const float *v,
                                  void *user, clattn__error *err);
int clattn__mpi_ring_prepare(const clattn_mpi_plan *mp, clattn__mpi_run *st, const int *counts, clattn__error *err);
int clattn__mpi_ring_pass(clattn_mpi_plan *mp, clattn__mpi_run *st, const float *k, const float *v, const int *counts,
                          clattn__ring_block block, void *user, clattn__error *err);
/* The plain ring over the callers' shards. */
int clattn__mpi_ring(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, clattn__error *err);

/* Causal with Nq = Nk (mpi_zigzag.c): the sequence cut into 2P chunks, rank r computing chunks r and
 * 2P - 1 - r (moved there and back with MPI_Alltoallv), so that every rank has the same work. */
int clattn__mpi_zigzag_prepare(const clattn_mpi_plan *mp, clattn__mpi_run *st, int *rows, size_t *most_keys,
                               clattn__error *err);
int clattn__mpi_zigzag(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, clattn__error *err);
void clattn__mpi_zigzag_free(clattn__mpi_run *st);

/* A window's halo exchange and its global keys (mpi_halo.c). */
int clattn__mpi_halo_prepare(const clattn_mpi_plan *mp, clattn__mpi_run *st, size_t *most_keys, clattn__error *err);
int clattn__mpi_halo(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, clattn__error *err);
void clattn__mpi_halo_free(clattn__mpi_halo_state *h);

/* Gathering (mpi_gathered.c): rows at `pos` (the query rows of global tokens, or every query row
 * of a decode) computed by every rank over its keys, merged on their owners. */
int clattn__mpi_gathered_prepare(const clattn_mpi_plan *mp, clattn__mpi_gathered *g, const int *pos, int n, int rows,
                                 clattn__error *err);
int clattn__mpi_gather(clattn_mpi_plan *mp, clattn__mpi_gathered *g, const clattn_host_tensors *t, int rows,
                       clattn__error *err);
void clattn__mpi_gathered_free(clattn__mpi_gathered *g);
int clattn__mpi_rows_prepare(const clattn_mpi_plan *mp, clattn__mpi_run *st, const int *pos, int n, clattn__error *err);
int clattn__mpi_rows_run(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, clattn__error *err);

/* Summary tokens without causal (mpi_summary.c): block sums added across ranks, their means seen
 * by every row. */
int clattn__mpi_summary_prepare(const clattn_mpi_plan *mp, clattn__mpi_run *st, size_t *most_keys, clattn__error *err);
int clattn__mpi_summary(clattn_mpi_plan *mp, clattn__mpi_run *st, const clattn_host_tensors *t, clattn__error *err);

#endif
