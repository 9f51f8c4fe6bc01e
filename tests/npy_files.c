/* The tests' .npy files in every storage type: written rounded, read widened, judged against the
 * tolerance of SPEC.md's "Element types". */
#include "npy_files.h"

#include <math.h>
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

int npy_files_read_f32(const char *path, int min_rank, int max_rank, npy_tensor *t, clattn_dtype *stored,
                       tool_error *err)
{
    int status = npy_read(path, min_rank, max_rank, t, err);
    if (status)
        return status;
    if (stored != NULL)
        *stored = t->dtype;
    if (t->dtype == CLATTN_DTYPE_F32 || t->count == 0) {
        t->dtype = CLATTN_DTYPE_F32;
        return status;
    }
    float *wide = malloc(t->count * sizeof *wide);
    if (wide == NULL) {
        npy_free(t);
        return tool_fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%s: widening %zu elements", path, t->count);
    }
    for (size_t i = 0; i < t->count; i++)
        wide[i] = clattn__load_element(t->dtype, t->data, i);
    free(t->data);
    t->data = wide;
    t->dtype = CLATTN_DTYPE_F32;
    return status;
}

double npy_files_tolerance(clattn_dtype dtype, double ref, double tol32)
{
    if (dtype == CLATTN_DTYPE_F32)
        return tol32;
    /* significand bits after the point, and the smallest ulp (float16's subnormals) */
    const int bits = dtype == CLATTN_DTYPE_F16 ? 10 : 7;
    const double min_ulp = dtype == CLATTN_DTYPE_F16 ? ldexp(1.0, -24) : ldexp(1.0, -133);
    int exponent = 0;
    frexp(fabs(ref) + tol32, &exponent); /* |x| in [2^(exponent-1), 2^exponent) */
    const double ulp = fmax(ldexp(1.0, exponent - 1 - bits), min_ulp);
    return 0.5 * ulp + tol32;
}

double npy_files_worst(clattn_dtype dtype, const float *out, const float *ref, size_t n, double tol32)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(out[i]) || isnan(ref[i]))
            return INFINITY;
        if (isinf(out[i]) || isinf(ref[i])) { /* only the same infinity matches */
            if (out[i] != ref[i])
                return INFINITY;
            continue;
        }
        const double e = fabs((double)out[i] - (double)ref[i]) / npy_files_tolerance(dtype, ref[i], tol32);
        worst = e > worst ? e : worst;
    }
    return worst;
}
