/* The library's own way into visibility.c: S(i) of a problem that is already normalized (the
 * reference path's), without validating it a second time. */
#ifndef CLATTN_VISIBILITY_H
#define CLATTN_VISIBILITY_H

#include "clattn_advanced.h"

/* clattn_visibility_init for a problem clattn__problem_normalize accepted: only the global table
 * is built (HOST_OUT_OF_MEMORY is the one failure, with v->message). */
int clattn__visibility_init_normalized(clattn_visibility *v, const clattn_problem *normalized);

#endif
