/* A problem with its defaults filled in and every field checked against SPEC.md ("Inputs that
 * are errors"), the byte size of each tensor, and the check of a run's tensors against them.
 * Shared by the device and reference paths. */
#ifndef CLATTN_PROBLEM_H
#define CLATTN_PROBLEM_H

#include <stddef.h>

#include "clattn.h"
#include "error.h"

#define CLATTN_MAX_HEAD_DIM 256
#define CLATTN_MAX_SEQ_LEN (1 << 28)

/* Byte sizes of every tensor of a normalized problem (0 for a tensor the problem has not): the
 * storage type's (clattn__dtype_size) for Q, K, V, O, Kx, Vx (Qg, Kg, Vg take Q's, K's, V's),
 * 4 bytes per element for LSE. */
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

/* The tensors of a run, in the order of clattn_buffers and clattn_host_tensors; this one list
 * generates the indices CLATTN__T_Q .. CLATTN__T_VX and every per-tensor table. */
#define CLATTN__TENSORS(X)                                                                                             \
    X(q, Q) X(k, K) X(v, V) X(out, OUT) X(lse, LSE) X(qg, QG) X(kg, KG) X(vg, VG) X(kx, KX) X(vx, VX)

#define CLATTN__TENSOR_INDEX_(field, NAME) CLATTN__T_##NAME,
enum { CLATTN__TENSORS(CLATTN__TENSOR_INDEX_) CLATTN__T_COUNT };
#undef CLATTN__TENSOR_INDEX_

/* One tensor argument of a run: its name, whether the problem needs it, and the bytes it holds. */
typedef struct {
    const char *name;
    int needed;
    size_t bytes;
} clattn__tensor_need;

/* needs[CLATTN__T_COUNT] of a normalized problem (which cannot fail clattn__problem_bytes). */
void clattn__tensor_needs(const clattn_problem *p, clattn__tensor_need *needs);

/* Host tensor i (a CLATTN__T_ index) of t. */
const clattn_host_tensor *clattn__host_tensor(const clattn_host_tensors *t, int i);

/* Check a run's tensors against a normalized problem, with one rule for both kinds: every
 * tensor the problem needs is given, every tensor given is large enough for its shape, and
 * seq_lens (clattn__check_seq_lens) is in range. Device buffers are sized with CL_MEM_SIZE. */
int clattn__check_device_buffers(const clattn_problem *p, const clattn_buffers *bufs, clattn__error *err);
int clattn__check_host_tensors(const clattn_problem *p, const clattn_host_tensors *t, clattn__error *err);

/* Valid keys of batch entry b: seq_lens[b], or kv_len without seq_lens. */
static inline int clattn__valid_keys(const clattn_problem *p, const int *seq_lens, int b)
{
    return seq_lens != NULL ? seq_lens[b] : p->kv_len;
}

/* Summary tokens of a batch entry with `valid` keys (SPEC.md 5): one per full block, the left-over
 * keys joining the last one, or with summary_tail OWN a partial block of their own. */
static inline int clattn__summary_blocks(const clattn_problem *p, int valid)
{
    if (p->summary_block <= 0)
        return 0;
    const int full = valid / p->summary_block;
    return p->summary_tail == CLATTN_SUMMARY_TAIL_OWN ? full + (valid % p->summary_block != 0) : full;
}

/* Keys [*start, *end) of summary block c < clattn__summary_blocks(p, valid): b keys, except the
 * last block, which runs to `valid` (merged left-over keys, or a partial block). */
static inline void clattn__summary_keys(const clattn_problem *p, int valid, int c, int *start, int *end)
{
    *start = c * p->summary_block; /* c * b <= valid: no overflow */
    *end = c == clattn__summary_blocks(p, valid) - 1 ? valid : *start + p->summary_block;
}

/* Number of summary token slots of a normalized problem: those of a batch entry without padding
 * (0 without summary). */
static inline int clattn__summary_count(const clattn_problem *p)
{
    return clattn__summary_blocks(p, p->kv_len);
}

#endif
