/* NumPy .npy tensor files (float32, float16 or bfloat16, little-endian, C order, rank 1..4) for
 * the clattn tool.
 * Files come from outside the program, so the reader treats every byte as hostile: it never
 * reads past the input, checks every size for overflow and reports what it found. */
#ifndef TOOL_NPY_H
#define TOOL_NPY_H

#include <stddef.h>

#include "clattn.h"
#include "tool_error.h"

#define NPY_MAX_RANK 4

/* Every call returns a status: FILE_* are the tool's (TOOL_STATUS_FILE_*, tool_error.h), the
 * others the library's (CLATTN_STATUS_*); on failure err, which must not be NULL, says why. */

/* The storage types (SPEC.md, "Element types") and their descr in a file: '<f4' float32, '<f2'
 * float16, and '<V2' for bfloat16, which is what NumPy writes for ml_dtypes.bfloat16 (a 2-byte
 * void: np.load gives |V2 bytes, which .view(ml_dtypes.bfloat16) reads as bfloat16 again). */
size_t npy_dtype_size(clattn_dtype dtype);      /* bytes of one element: 4 or 2; 0 outside the enum */
const char *npy_dtype_name(clattn_dtype dtype); /* "float32", "float16", "bfloat16"; "?" outside */

typedef struct {
    int rank; /* 1..NPY_MAX_RANK */
    long long shape[NPY_MAX_RANK];
    clattn_dtype dtype; /* the storage type of the elements, which are kept as the file has them */
    void *data;         /* malloc'd, `count` elements of `dtype` in C order; NULL when count is 0 */
    size_t count;       /* product of the shape; 0 when a dimension is 0 */
} npy_tensor;

/* Parses an in-memory .npy image (format 1.0, 2.0 or 3.0) whose rank must lie in
 * [min_rank, max_rank] (a range within [1, NPY_MAX_RANK]). On failure *out is zeroed and
 * the status is FILE_TRUNCATED (malformed or short), FILE_DTYPE (not '<f4', '<f2' or '<V2', or Fortran order),
 * FILE_RANK, SIZE_OVERFLOW or HOST_OUT_OF_MEMORY. A zero dimension is valid: count 0, data NULL. */
int npy_parse(const unsigned char *bytes, size_t size, int min_rank, int max_rank, npy_tensor *out, tool_error *err);

/* Reads a file with the checks of npy_parse, streaming the data straight into the tensor
 * (no second copy of the file). FILE_IO when it cannot be opened or read; messages name `path`. */
int npy_read(const char *path, int min_rank, int max_rank, npy_tensor *out, tool_error *err);

/* FILE_DTYPE when the tensors whose names are not NULL (names[i], the file of t[i], in messages)
 * do not all have the storage type of the first of them: one storage type per call (SPEC.md). */
int npy_same_dtype(const npy_tensor *t, const char *const *names, int count, tool_error *err);

/* Writes format 1.0, `data` being elements of `dtype` (host order), with a header padded to a
 * multiple of 64 bytes. The bytes go to a temporary file beside `path` that is renamed over it,
 * so a failure never leaves a partial file at `path`. FILE_IO (naming the path and the system's
 * reason), FILE_RANK, FILE_DTYPE (a dtype outside clattn_dtype), INVALID_SIZE, SIZE_OVERFLOW or
 * NULL_ARGUMENT (data NULL while the shape has elements). */
int npy_write(const char *path, clattn_dtype dtype, int rank, const long long *shape, const void *data,
              tool_error *err);

/* Frees the data and zeroes *t; NULL is a no-op, and so is freeing twice. */
void npy_free(npy_tensor *t);

#endif
