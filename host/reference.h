/* The double-precision host implementation of all of SPEC.md: the oracle of the tests and the
 * device called "reference". Plain C, parallel over batch x heads. */
#ifndef CLATTN_REFERENCE_H
#define CLATTN_REFERENCE_H

#include "clattn.h"
#include "error.h"

/* `p` is normalized (clattn__problem_normalize) and every tensor in `t` is known to be large
 * enough (the caller checked sizes and seq_lens). Writes t->out and, when given, t->lse. */
int clattn__reference_run(const clattn_problem *p, const clattn_host_tensors *t, clattn__error *err);

#endif
