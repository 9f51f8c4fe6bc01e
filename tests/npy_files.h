/* The tests' .npy inputs in every storage type (SPEC.md, "Element types"): random values rounded
 * to the storage type as they are written, by the library's own conversions (host/dtype.h). The
 * outputs are judged with storage.h's storage_error. */
#ifndef CLATTN_NPY_FILES_H
#define CLATTN_NPY_FILES_H

#include "npy.h"

/* Writes unit-normal values (random_normal from *seed, which it advances) of `shape` to path,
 * rounded to `dtype`; `rounded`, when not NULL, receives the stored values widened (as many floats
 * as the shape has elements). Returns a status, err saying why. */
int npy_files_random(const char *path, clattn_dtype dtype, int rank, const long long *shape, unsigned long long *seed,
                     float *rounded, tool_error *err);

#endif
