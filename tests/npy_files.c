/* The tests' .npy inputs in every storage type, rounded as they are written. */
#include "npy_files.h"

#include <stdlib.h>

#include "dtype.h"
#include "random.h"

int npy_files_random(const char *path, clattn_dtype dtype, int rank, const long long *shape, unsigned long long *seed,
                     float *rounded, tool_error *err)
{
    size_t count = 1;
    for (int i = 0; i < rank; i++)
        count *= (size_t)shape[i];
    float *x = malloc(count * sizeof *x + 1);
    void *stored = malloc(count * npy_dtype_size(dtype) + 1);
    int status = x == NULL || stored == NULL
                     ? tool_fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%s: %zu elements", path, count)
                     : CLATTN_STATUS_OK;
    if (!status) {
        random_normal(x, count, seed);
        for (size_t i = 0; i < count; i++) {
            clattn__store_element(dtype, stored, i, x[i]);
            if (rounded != NULL)
                rounded[i] = clattn__load_element(dtype, stored, i);
        }
        status = npy_write(path, dtype, rank, shape, stored, err);
    }
    free(stored);
    free(x);
    return status;
}
