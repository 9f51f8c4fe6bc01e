/* NumPy .npy tensor files (float32, little-endian, C order, rank 1..4) for the clattn tool.
 * Files come from outside the program, so the reader treats every byte as hostile: it never
 * reads past the input, checks every size for overflow and reports what it found. */
#ifndef TOOL_NPY_H
#define TOOL_NPY_H

#include <stddef.h>

#include "tool_error.h"

#define NPY_MAX_RANK 4

/* Every call returns a status: FILE_* are the tool's (TOOL_STATUS_FILE_*, tool_error.h), the
 * others the library's (CLATTN_STATUS_*); on failure err, which must not be NULL, says why. */

typedef struct {
    int rank; /* 1..NPY_MAX_RANK */
    long long shape[NPY_MAX_RANK];
    float *data;  /* malloc'd, `count` elements in C order; NULL when count is 0 */
    size_t count; /* product of the shape; 0 when a dimension is 0 */
} npy_tensor;

/* Parses an in-memory .npy image (format 1.0, 2.0 or 3.0) whose rank must lie in
 * [min_rank, max_rank] (a range within [1, NPY_MAX_RANK]). On failure *out is zeroed and
 * the status is FILE_TRUNCATED (malformed or short), FILE_DTYPE (not '<f4', or Fortran order),
 * FILE_RANK, SIZE_OVERFLOW or HOST_OUT_OF_MEMORY. A zero dimension is valid: count 0, data NULL. */
int npy_parse(const unsigned char *bytes, size_t size, int min_rank, int max_rank, npy_tensor *out, tool_error *err);

/* Reads a file with the checks of npy_parse, streaming the data straight into the tensor
 * (no second copy of the file). FILE_IO when it cannot be opened or read; messages name `path`. */
int npy_read(const char *path, int min_rank, int max_rank, npy_tensor *out, tool_error *err);

/* Writes format 1.0 with a header padded to a multiple of 64 bytes. The bytes go to a temporary
 * file beside `path` that is renamed over it, so a failure never leaves a partial file at `path`.
 * FILE_IO (naming the path and the system's reason), FILE_RANK, INVALID_SIZE, SIZE_OVERFLOW or
 * NULL_ARGUMENT (data NULL while the shape has elements). */
int npy_write(const char *path, int rank, const long long *shape, const float *data, tool_error *err);

/* Frees the data and zeroes *t; NULL is a no-op, and so is freeing twice. */
void npy_free(npy_tensor *t);

#endif
