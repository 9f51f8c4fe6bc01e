/* A problem with its defaults filled in and every field checked against SPEC.md ("Inputs that
 * are errors"), plus the byte size of each tensor. Shared by the device and reference paths. */
#ifndef CLATTN_PROBLEM_H
#define CLATTN_PROBLEM_H

#include <stddef.h>

#include "clattn.h"
#include "error.h"

#define CLATTN_MAX_HEAD_DIM 256
#define CLATTN_MAX_SEQ_LEN (1 << 28)

/* Byte sizes of every tensor of a normalized problem (0 for a tensor the problem has not). */
typedef struct {
    size_t q, k, v, out, lse, kx, vx;
} clattn__tensor_bytes;

/* Copies `in` to `out` with every default resolved (kv_heads, kv_len, value_dim, scale,
 * dilations) and validates it. out->global_idx still points at the caller's array. */
int clattn__problem_normalize(const clattn_problem *in, clattn_problem *out, clattn__error *err);

/* Byte sizes; fails with CLATTN_STATUS_SIZE_OVERFLOW when one does not fit in size_t or an
 * element index would not fit in 32 bits (the kernels index with int). */
int clattn__problem_bytes(const clattn_problem *p, clattn__tensor_bytes *bytes, clattn__error *err);

/* Checks seq_lens (may be NULL) of a normalized problem: each entry in [0, kv_len]. */
int clattn__check_seq_lens(const clattn_problem *p, const int *seq_lens, clattn__error *err);

/* Valid keys of batch entry b: seq_lens[b], or kv_len without seq_lens. */
static inline int clattn__valid_keys(const clattn_problem *p, const int *seq_lens, int b)
{
    return seq_lens != NULL ? seq_lens[b] : p->kv_len;
}

/* Number of summary tokens of a normalized problem (0 without summary). */
static inline int clattn__summary_count(const clattn_problem *p)
{
    return p->summary_block > 0 ? p->kv_len / p->summary_block + (p->kv_len % p->summary_block != 0) : 0;
}

#endif
