/* clattn across processes over MPI (sequence parallel): each rank holds a contiguous shard of the
 * tokens of Q, K and V and writes its shard of O and LSE; SPEC.md, "Split over several devices or
 * processes": the result is the attention of the whole tensors, merged by log-sum-exp. Built when
 * CMake finds MPI, as the library clattn_mpi (link it beside clattn). */
#ifndef CLATTN_MPI_H
#define CLATTN_MPI_H

#include <mpi.h>

#include "clattn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An MPI call failed (its error class is in the message). Not in clattn.h's table: only this
 * part of the library returns it. */
#define CLATTN_STATUS_MPI 1090

/* ---------------------------------------------------------------------------------------------
 * Sequence-parallel plan. Every function taking one is collective over its communicator: every
 * rank calls it, with the same whole problem, and every rank returns the same status (a rank
 * whose input is bad makes every rank fail with its status and message, "rank R: ...").
 * Thread safety: one thread of each rank uses a plan at a time.
 *
 * Shards: rank r holds keys and values of the positions [k_first, k_first + k_count) (rank 0
 * from 0, each rank where the one before ends: counts may differ, and may be 0), and the query
 * rows whose positions p(i) = i + Nk - Nq fall in that range (a decode query lives on the last
 * rank). How it computes:
 * - a sliding window: each rank receives the L keys before its shard and the R after it (from as
 *   many ranks as the window spans) while it computes the rows that need none of them;
 * - dense and causal: ring attention, K and V shards passed around the ring while each rank
 *   computes its rows against the shard it holds; causal with Nq = Nk balanced by a zigzag (the
 *   sequence cut into 2P chunks, rank r computing chunks r and 2P - 1 - r: rows moved there and
 *   back); fewer query rows than a shard has keys (a decode): the rows gathered to every rank
 *   instead, their partial results merged on their owners;
 * - extra keys Kx, Vx: the same on every rank (replicated);
 * - padding: seq_lens over the whole sequence, the same on every rank;
 * - global tokens with a window: their K and V rows gathered to every rank, their query rows
 *   computed by every rank over its keys and merged on the owner; without a window they change no
 *   S(i) (dense and causal rows already see them).
 * - summary tokens without causal: each rank sums its keys into their blocks, an allreduce adds
 *   the sums (blocks need not align with shards), every row sees the means.
 * Not yet (CLATTN_STATUS_UNSUPPORTED): summary tokens with causal, separate global projections
 * Qg, Kg, Vg, grid patterns, q_len > kv_len.
 * ------------------------------------------------------------------------------------------- */
typedef struct clattn_mpi_plan clattn_mpi_plan;

/* problem: the whole problem (q_len, kv_len of the whole sequence). k_count: this rank's keys.
 * The communicator is duplicated (the plan's messages never meet the caller's). */
int clattn_mpi_plan_create(clattn_context *ctx, MPI_Comm comm, const clattn_problem *problem, int k_count,
                           clattn_mpi_plan **out);
void clattn_mpi_plan_free(clattn_mpi_plan *plan); /* collective; NULL is a no-op */

/* This rank's shard: first key position and count, first query row and count. */
void clattn_mpi_plan_shard(const clattn_mpi_plan *plan, int *k_first, int *k_count, int *q_first, int *q_count);

/* Blocking, collective. tensors holds this rank's shard: q [B, H, q_count, D], k [B, Hkv,
 * k_count, D], v [B, Hkv, k_count, Dv], out [B, H, q_count, Dv], lse [B, H, q_count] (optional);
 * kx, vx whole (every rank the same); seq_lens whole [B]. A tensor of 0 bytes may be NULL.
 * Tensors are in the problem's storage type (dtype), LSE in float32: a float16 or bfloat16 run
 * widens this rank's inputs to float32 at its start, computes and exchanges float32 throughout, and
 * rounds O once, to nearest even, at its end (SPEC.md, "Element types").
 * Outputs are written only when every rank succeeds. */
int clattn_mpi_plan_run_host(clattn_mpi_plan *plan, const clattn_host_tensors *tensors);

/* What this rank sent and received in its last run: payload bytes and messages, all of it, and the
 * part that moved rows between the callers' shards and the causal zigzag's chunks (Q, K, V there,
 * O and LSE back). Collectives count what a ring algorithm moves: an allgather passes on every
 * rank's part but one, an allreduce 2 (P - 1) / P of its data. The payload is float32 whatever the
 * storage type (the run widens float16 and bfloat16 first), so these are float32 bytes. */
typedef struct {
    unsigned long long bytes_sent, bytes_received;
    unsigned long long messages_sent, messages_received;
    unsigned long long layout_bytes_sent, layout_bytes_received;
} clattn_mpi_traffic;

void clattn_mpi_plan_traffic(const clattn_mpi_plan *plan, clattn_mpi_traffic *out);

#ifdef __cplusplus
}
#endif
#endif
