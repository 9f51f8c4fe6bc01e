/* Bit-exact float32 <-> float16 / bfloat16 conversions in portable C (no _Float16, no F16C), so
 * that every host path rounds exactly like vstore_half_rte and the kernels' bfloat16 store; and the
 * float32 copies of a run's tensors that the reference and MPI paths compute on. */
#include "dtype.h"

#include <stdlib.h>
#include <string.h>

int clattn__dtype_valid(int dtype)
{
    return dtype == CLATTN_DTYPE_F32 || dtype == CLATTN_DTYPE_F16 || dtype == CLATTN_DTYPE_BF16;
}

size_t clattn__dtype_size(clattn_dtype dtype)
{
    return dtype == CLATTN_DTYPE_F32 ? 4 : 2;
}

const char *clattn__dtype_name(int dtype)
{
    switch (dtype) {
    case CLATTN_DTYPE_F32:
        return "f32";
    case CLATTN_DTYPE_F16:
        return "f16";
    case CLATTN_DTYPE_BF16:
        return "bf16";
    default:
        return "?";
    }
}

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float clattn__half_to_float(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) /* inf or NaN: keep the payload's top bits */
        return bits_float(sign | 0x7f800000u | (man << 13));
    if (exp != 0)
        return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
    if (man == 0)
        return bits_float(sign);
    /* subnormal: man * 2^-24, normalised */
    int e = -1;
    do {
        man <<= 1;
        e++;
    } while (!(man & 0x400u));
    return bits_float(sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13));
}

/* Shifts the magnitude right by `shift` bits, rounding to nearest even on the bits shifted out. */
static uint32_t shift_round_even(uint32_t value, unsigned shift)
{
    if (shift >= 32)
        return 0;
    const uint32_t kept = value >> shift;
    const uint32_t rest = value & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1);
    return kept + (rest > half || (rest == half && (kept & 1u)));
}

uint16_t clattn__float_to_half(float f)
{
    const uint32_t u = float_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) /* NaN: quiet, top payload bits kept */
        return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
    if (abs >= 0x47800000u) /* >= 65536 (and inf): past the largest finite half after rounding */
        return (uint16_t)(sign | 0x7c00u);
    const int exp = (int)(abs >> 23) - 127;
    if (exp >= -14) /* normal half: drop 13 mantissa bits; a carry may round up to inf */
        return (uint16_t)(sign | shift_round_even(abs - (112u << 23), 13));
    if (exp < -25) /* below half the smallest subnormal */
        return sign;
    /* subnormal half: the significand with its hidden bit, shifted to units of 2^-24 */
    const uint32_t significand = (abs & 0x7fffffu) | 0x800000u;
    return (uint16_t)(sign | shift_round_even(significand, (unsigned)(-exp - 1)));
}

float clattn__bfloat16_to_float(uint16_t b)
{
    return bits_float((uint32_t)b << 16);
}

uint16_t clattn__float_to_bfloat16(float f)
{
    const uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: quiet it so the truncation cannot make it inf */
        return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)shift_round_even(u, 16); /* a carry out of the mantissa rounds up to inf */
}

float clattn__load_element(clattn_dtype dtype, const void *data, size_t i)
{
    if (dtype == CLATTN_DTYPE_F32)
        return ((const float *)data)[i];
    const uint16_t h = ((const uint16_t *)data)[i];
    return dtype == CLATTN_DTYPE_F16 ? clattn__half_to_float(h) : clattn__bfloat16_to_float(h);
}

void clattn__store_element(clattn_dtype dtype, void *data, size_t i, float value)
{
    if (dtype == CLATTN_DTYPE_F32)
        ((float *)data)[i] = value;
    else
        ((uint16_t *)data)[i] =
            dtype == CLATTN_DTYPE_F16 ? clattn__float_to_half(value) : clattn__float_to_bfloat16(value);
}

void clattn__store_elements(clattn_dtype dtype, void *dst, const float *src, size_t n)
{
    if (dtype == CLATTN_DTYPE_F32) {
        if (n > 0)
            memcpy(dst, src, n * sizeof *src);
        return;
    }
    for (size_t i = 0; i < n; i++)
        clattn__store_element(dtype, dst, i, src[i]);
}

int clattn__widen_tensors(clattn_dtype dtype, const clattn_host_tensors *in, const size_t *counts,
                          clattn__wide_tensors *w, clattn__error *err)
{
    memset(w, 0, sizeof *w);
    w->t = *in;
    if (dtype == CLATTN_DTYPE_F32)
        return CLATTN_STATUS_OK;
    for (int i = 0; i < CLATTN__T_COUNT; i++) {
        if (counts[i] == 0)
            continue;
        float *copy = malloc(counts[i] * sizeof *copy);
        if (copy == NULL) {
            clattn__wide_tensors_free(w);
            return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "a float32 copy of %zu %s elements", counts[i],
                                clattn__dtype_name(dtype));
        }
        const void *data = clattn__host_tensor(in, i)->data;
        for (size_t e = 0; i != CLATTN__T_OUT && e < counts[i]; e++)
            copy[e] = clattn__load_element(dtype, data, e);
        w->copies[i] = copy;
        w->counts[i] = counts[i];
        clattn_host_tensor *wide = (clattn_host_tensor *)clattn__host_tensor(&w->t, i);
        *wide = (clattn_host_tensor){copy, counts[i] * sizeof *copy};
    }
    return CLATTN_STATUS_OK;
}

void clattn__narrow_output(clattn_dtype dtype, const clattn__wide_tensors *w, void *out)
{
    if (w->copies[CLATTN__T_OUT] != NULL)
        clattn__store_elements(dtype, out, w->copies[CLATTN__T_OUT], w->counts[CLATTN__T_OUT]);
}

void clattn__wide_tensors_free(clattn__wide_tensors *w)
{
    for (int i = CLATTN__T_COUNT - 1; i >= 0; i--)
        free(w->copies[i]);
    memset(w, 0, sizeof *w);
}
