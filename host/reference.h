/* The double-precision host implementation of all of SPEC.md: the oracle of the tests and the
 * device called "reference". Plain C, parallel over batch x heads. */
#ifndef CLATTN_REFERENCE_H
#define CLATTN_REFERENCE_H

#include "clattn.h"
#include "error.h"

/* `p` is normalized (clattn__problem_normalize). Checks `t` first (clattn__check_host_tensors:
 * each tensor present and large enough, seq_lens in range), then writes t->out and, when given,
 * t->lse. The tensors are in p->dtype's storage (LSE in float32): float16 and bfloat16 inputs are
 * widened exactly, the same double-precision code runs on them and O is rounded once, to nearest
 * even. */
int clattn__reference_run(const clattn_problem *p, const clattn_host_tensors *t, clattn__error *err);

#endif
