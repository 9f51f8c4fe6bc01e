/* Parsing of `clattn run`'s arguments into a problem and file names; apart from the tool so
 * that a fuzzer can feed it. */
#ifndef CLATTN_RUN_ARGS_H
#define CLATTN_RUN_ARGS_H

#include "clattn.h"

typedef struct {
    const char *q, *k, *v, *out, *lse, *qg, *kg, *vg, *kx, *vx, *device; /* point into argv */
    clattn_problem problem;                                              /* the pattern; shapes come from the tensors */
    int *globals;                                                        /* owned, [problem.num_global] */
    int *seq_lens;                                                       /* owned, [num_seq_lens] */
    int num_seq_lens;
    char message[1024]; /* why parsing failed: the flag and its value */
} run_args;

/* argv[0] is "run". Returns CLATTN_STATUS_OK or TOOL_STATUS_USAGE (tool_error.h), with the
 * message naming the flag. The caller zeroes *a before and calls run_args_free after, whatever
 * the result. */
int run_args_parse(int argc, char **argv, run_args *a);
void run_args_free(run_args *a);

#endif
