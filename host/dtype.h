/* Storage types (SPEC.md, "Element types"): the size of one element and exact conversions
 * between float32 and float16 / bfloat16 on the host, rounding to nearest even as the kernels'
 * stores do, so the reference path, the MPI path and the tests round the way the devices do. */
#ifndef CLATTN_DTYPE_H
#define CLATTN_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "clattn.h"
#include "error.h"
#include "problem.h"

/* 1 when dtype is one of clattn_dtype. */
int clattn__dtype_valid(int dtype);
/* Bytes of one element: 4 for float32, 2 for float16 and bfloat16. */
size_t clattn__dtype_size(clattn_dtype dtype);
/* "f32", "f16" or "bf16" (build options, messages); "?" for a value outside the enum. */
const char *clattn__dtype_name(int dtype);

float clattn__half_to_float(uint16_t h);
uint16_t clattn__float_to_half(float f); /* nearest even; overflow gives inf; NaN stays NaN */
float clattn__bfloat16_to_float(uint16_t b);
uint16_t clattn__float_to_bfloat16(float f); /* nearest even; NaN stays NaN */

/* Element i of a tensor in the given storage, widened exactly. */
float clattn__load_element(clattn_dtype dtype, const void *data, size_t i);
/* Rounds value to the storage type (nearest even) and stores it as element i. */
void clattn__store_element(clattn_dtype dtype, void *data, size_t i, float value);

/* Rounds n float32 values into dst, a tensor in the given storage, from element 0. */
void clattn__store_elements(clattn_dtype dtype, void *dst, const float *src, size_t n);

/* A run's tensors in float32 for the float32 code of the host paths (the reference, MPI) when the
 * caller's storage is float16 or bfloat16: t is the caller's tensors, except that each tensor i
 * with counts[i] > 0 is a float32 copy of its first counts[i] elements (an input widened exactly;
 * O's copy left for the run to write, then rounded into the caller's O by clattn__narrow_output).
 * LSE is float32 in every storage: give it no count. */
typedef struct {
    clattn_host_tensors t;
    float *copies[CLATTN__T_COUNT];
    size_t counts[CLATTN__T_COUNT];
} clattn__wide_tensors;

/* For float32 storage, w->t is `in` itself and nothing is copied. On failure
 * (CLATTN_STATUS_HOST_OUT_OF_MEMORY) nothing stays allocated. */
int clattn__widen_tensors(clattn_dtype dtype, const clattn_host_tensors *in, const size_t *counts,
                          clattn__wide_tensors *w, clattn__error *err);
/* Rounds the float32 O of w (when it has a copy) into out, the caller's O. */
void clattn__narrow_output(clattn_dtype dtype, const clattn__wide_tensors *w, void *out);
void clattn__wide_tensors_free(clattn__wide_tensors *w); /* a zeroed or freed w is a no-op */

#endif
