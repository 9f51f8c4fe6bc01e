/* Storage types (SPEC.md, "Element types"): the size of one element and exact conversions
 * between float32 and float16 / bfloat16 on the host, rounding to nearest even as the kernels'
 * stores do, so the reference path, the MPI path and the tests round the way the devices do. */
#ifndef CLATTN_DTYPE_H
#define CLATTN_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "clattn.h"

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

#endif
