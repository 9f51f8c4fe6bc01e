/* Test tensors in float16 or bfloat16 storage beside float32 twins holding the same rounded inputs
 * (SPEC.md, "Element types"): a float32 run of the twins is the reference of a run in the storage
 * type, and an output rounded to that storage is judged with its own rounding allowed. The
 * conversions are host/dtype.c's, which test_dtype checks on known bit patterns. */
#ifndef CLATTN_TEST_STORAGE_H
#define CLATTN_TEST_STORAGE_H

#include <stddef.h>

#include "clattn.h"

/* Bytes of one element of the storage type. */
size_t storage_size(clattn_dtype dtype);

/* stored receives the tensors of t (float32, as harness_tensors_alloc makes them) in `dtype`:
 * every input rounded to nearest even, O zeroed, LSE (float32 in every storage) zeroed when t has
 * one; t's inputs are overwritten with the rounded values widened back exactly, its O and LSE left
 * as they were. seq_lens is t's. In float32, stored is a copy of t. Returns a clattn status. */
int storage_alloc(clattn_dtype dtype, clattn_host_tensors *t, clattn_host_tensors *stored);
void storage_free(clattn_host_tensors *stored);

/* n elements of a tensor in `dtype`, widened exactly into out. */
void storage_widen(clattn_dtype dtype, const void *data, float *out, size_t n);

/* The largest |got[i] - want[i]| beyond `ulps` ulps of the storage type at their magnitude (none in
 * float32), got in `dtype` storage and want in float32; NaN and unequal infinities count as
 * infinity, as harness_max_diff counts them. Half an ulp against an unrounded reference is
 * SPEC.md's allowance; two rounded results may be a whole ulp apart. */
double storage_error(clattn_dtype dtype, const void *got, const float *want, size_t n, double ulps);

#endif
