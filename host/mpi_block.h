/* The piece sequence-parallel attention is built from: this rank's query rows against one range of
 * keys, as an ordinary plan with the LSE output, and the log-sum-exp merge of such partial results.
 * A plan places query row i at p(i) = i + Nk - Nq; a block is made to agree with the whole
 * problem's positions by padding its queries with dummy rows, so that no kernel needs an offset. */
#ifndef CLATTN_MPI_BLOCK_H
#define CLATTN_MPI_BLOCK_H

#include "clattn.h"
#include "error.h"

#define CLATTN__BLOCK_PLANS 8

typedef enum {
    /* Keys [k_first, k_first + nk) end at or after the query rows, whose positions the block
     * keeps exactly (every rule of the pattern applies: causal, window, dilation, padding). */
    CLATTN__BLOCK_ALIGNED,
    /* The same, for rows that see every key (global rows, a ring's decode rows): only causal and
     * padding apply, not the window. */
    CLATTN__BLOCK_ALIGNED_DENSE,
    /* Every query row sees every valid key of the range (keys before a causal row, keys of a
     * dense problem): only padding of the keys applies. */
    CLATTN__BLOCK_VISIBLE,
    /* The caller's extra keys Kx, Vx: seen by every row, no rule at all. */
    CLATTN__BLOCK_EXTRA
} clattn__block_mode;

typedef struct {
    clattn_problem local; /* global_idx NULL: the indices are in `globals` */
    int *globals;
    clattn_plan *plan;
} clattn__cached_plan;

typedef struct {
    clattn_context *ctx;
    clattn_problem whole; /* normalized */
    clattn__cached_plan cache[CLATTN__BLOCK_PLANS];
    int next_slot;
    float *q_pad, *o_pad, *lse_pad; /* grown as blocks need */
    size_t q_pad_n, o_pad_n, lse_pad_n;
    int *lens; /* [B] a block's seq_lens */
} clattn__block_runner;

/* A runner of blocks of `whole` (normalized) on ctx. */
int clattn__block_runner_init(clattn__block_runner *r, clattn_context *ctx, const clattn_problem *whole,
                              clattn__error *err);

/* Query rows of positions [q_first, q_first + nq): q [B, H, nq, D]; keys of positions [k_first,
 * k_first + nk) (or the extra keys): k [B, Hkv, nk, D], v [B, Hkv, nk, Dv]. Writes the partial
 * result o [B, H, nq, Dv] and lse [B, H, nq] (-inf and 0 where a row sees none of the keys).
 * seq_lens: the whole problem's, or NULL. */
typedef struct {
    const float *q;
    int q_first, nq;
    const float *k, *v;
    int k_first, nk;
    clattn__block_mode mode;
    const int *globals; /* aligned modes: global tokens among the block's keys, as block indices */
    int num_globals;
    const int *k_valid; /* visible mode: [B] valid keys of each batch entry instead of seq_lens' */
} clattn__block;

int clattn__block_run(clattn__block_runner *r, const clattn__block *b, const int *seq_lens, float *o, float *lse,
                      clattn__error *err);
void clattn__block_runner_free(clattn__block_runner *r);

/* Copies rows [src_first, src_first + rows) of each of `heads` heads of src (src_rows rows a head)
 * to rows [dst_first, dst_first + rows) of dst (dst_rows rows a head); rows of `width` floats. */
void clattn__copy_rows(float *dst, int dst_rows, int dst_first, const float *src, int src_rows, int src_first, int rows,
                       size_t heads, int width);

/* Merges `rows` partial results (o [rows, dv], lse [rows]) into the accumulated ones by
 * log-sum-exp; an accumulator starts at o = 0, lse = -inf. */
void clattn__merge_rows(float *acc_o, float *acc_lse, const float *o, const float *lse, size_t rows, int dv);

#endif
