/* The tests' .npy files in every storage type (SPEC.md, "Element types"): random inputs rounded
 * to the storage type as they are written, outputs widened to float32 as they are read, and the
 * tolerance of a result stored in 16 bits. Conversions are the library's own (host/dtype.h). */
#ifndef CLATTN_NPY_FILES_H
#define CLATTN_NPY_FILES_H

#include "npy.h"

/* Writes unit-normal values (random_normal from *seed, which it advances) of `shape` to path,
 * rounded to `dtype`; `rounded`, when not NULL, receives the stored values widened (count
 * floats). Returns a status, err saying why. */
int npy_files_random(const char *path, clattn_dtype dtype, int rank, const long long *shape, unsigned long long *seed,
                     float *rounded, tool_error *err);

/* npy_read, then the elements widened to float32 (exactly): t->dtype is F32 afterwards, `stored`
 * (when not NULL) the file's own type. */
int npy_files_read_f32(const char *path, int min_rank, int max_rank, npy_tensor *t, clattn_dtype *stored,
                       tool_error *err);

/* SPEC.md's tolerance of a value stored in `dtype` against an exact reference `ref`: half an ulp
 * of the storage type at |ref| + tol32 (the magnitude the float32 result may reach), plus tol32,
 * the float32 tolerance. For float32 it is tol32 alone. */
double npy_files_tolerance(clattn_dtype dtype, double ref, double tol32);

/* The largest |out[i] - ref[i]| beyond npy_files_tolerance(dtype, ref[i], tol32), as a multiple
 * of that tolerance: <= 1 passes; infinity for a NaN or an infinity that ref lacks. */
double npy_files_worst(clattn_dtype dtype, const float *out, const float *ref, size_t n, double tol32);

#endif
