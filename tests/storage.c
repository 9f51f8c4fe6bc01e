/* Test tensors in a storage type beside float32 twins, and the error of a rounded output, through
 * host/dtype.c's conversions (storage.h). */
#include "storage.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"

size_t storage_size(clattn_dtype dtype)
{
    return clattn__dtype_size(dtype);
}

void storage_widen(clattn_dtype dtype, const void *data, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = clattn__load_element(dtype, data, i);
}

/* src's float32 values in `dtype`, rounded, into a new tensor; src then holds them widened back. */
static int round_tensor(clattn_dtype dtype, clattn_host_tensor *src, clattn_host_tensor *dst, int input)
{
    const size_t n = src->bytes / sizeof(float);
    dst->bytes = n * storage_size(dtype);
    dst->data = calloc(dst->bytes ? dst->bytes : 1, 1);
    if (dst->data == NULL)
        return CLATTN_STATUS_HOST_OUT_OF_MEMORY;
    for (size_t i = 0; input && i < n; i++) {
        clattn__store_element(dtype, dst->data, i, ((float *)src->data)[i]);
        ((float *)src->data)[i] = clattn__load_element(dtype, dst->data, i);
    }
    return CLATTN_STATUS_OK;
}

int storage_alloc(clattn_dtype dtype, clattn_host_tensors *t, clattn_host_tensors *stored)
{
    memset(stored, 0, sizeof *stored);
    stored->seq_lens = t->seq_lens;
    clattn_host_tensor *from[] = {&t->q, &t->k, &t->v, &t->qg, &t->kg, &t->vg, &t->kx, &t->vx, &t->out, &t->lse};
    clattn_host_tensor *to[] = {&stored->q,  &stored->k,  &stored->v,  &stored->qg,  &stored->kg,
                                &stored->vg, &stored->kx, &stored->vx, &stored->out, &stored->lse};
    const size_t count = sizeof from / sizeof from[0], inputs = count - 2;
    int status = CLATTN_STATUS_OK;
    for (size_t k = 0; k < count && !status; k++)
        if (from[k]->data != NULL) /* LSE, the last, stays float32 */
            status = round_tensor(k + 1 < count ? dtype : CLATTN_DTYPE_F32, from[k], to[k], k < inputs);
    if (status)
        storage_free(stored);
    return status;
}

void storage_free(clattn_host_tensors *stored)
{
    clattn_host_tensor *all[] = {&stored->q,  &stored->k,  &stored->v,  &stored->out, &stored->lse,
                                 &stored->qg, &stored->kg, &stored->vg, &stored->kx,  &stored->vx};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]->data);
    memset(stored, 0, sizeof *stored);
}

/* One ulp of the storage type at magnitude x (subnormals included); 0 in float32. */
static double ulp_at(clattn_dtype dtype, double x)
{
    if (dtype == CLATTN_DTYPE_F32)
        return 0.0;
    const int mantissa = dtype == CLATTN_DTYPE_F16 ? 10 : 7, least = dtype == CLATTN_DTYPE_F16 ? -14 : -126;
    int e = 0;
    frexp(x, &e); /* x = m 2^e, 0.5 <= m < 1: its binade starts at 2^(e - 1) */
    return ldexp(1.0, (e - 1 > least ? e - 1 : least) - mantissa);
}

double storage_error(clattn_dtype dtype, const void *got, const float *want, size_t n, double ulps)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double a = clattn__load_element(dtype, got, i), b = want[i];
        if (isinf(a) || isinf(b)) {
            if (a != b)
                return INFINITY;
            continue;
        }
        const double d = fabs(a - b) - ulps * ulp_at(dtype, fmax(fabs(a), fabs(b)));
        if (!(d <= worst)) /* NaN counts as the worst */
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}
