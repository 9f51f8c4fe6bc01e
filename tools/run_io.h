/* `clattn run`'s tensors: reading the .npy inputs, deriving the problem's shape from them, writing
 * the outputs. */
#ifndef CLATTN_RUN_IO_H
#define CLATTN_RUN_IO_H

#include "clattn.h"
#include "npy.h"
#include "run_args.h"

enum { IN_Q, IN_K, IN_V, IN_QG, IN_KG, IN_VG, IN_KX, IN_VX, IN_COUNT };

/* Reads every input the arguments name into in[IN_COUNT], which must share one storage type, and
 * sets a->problem.dtype to it; a failure's text in a->message. */
int run_io_read_inputs(run_args *a, npy_tensor *in);

/* Fills a->problem's shape from Q, K, V and checks the optional tensors and --seq-lens against it. */
int run_io_derive_shape(const npy_tensor *in, run_args *a);

clattn_host_tensor run_io_host_tensor(const npy_tensor *t);

/* Writes O (Q's rank and shape, the value dim last, in the problem's storage type) and, when
 * asked, LSE (float32). */
int run_io_write_outputs(run_args *a, const npy_tensor *q, const void *out, const float *lse);

#endif
