/* Storage types (SPEC.md, "Element types"): host/dtype.c's conversions on known bit patterns (ties
 * both ways, the edges of float16's range, subnormals, NaN, -0) and on every float16 and bfloat16
 * pattern, and the reference path in float16 and bfloat16, which by definition is the float32
 * reference of the rounded inputs with O rounded: bit for bit. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dtype.h"
#include "harness.h"
#include "storage.h"

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

typedef struct {
    const char *what;
    uint32_t in;   /* float32 bits */
    uint16_t want; /* float16 or bfloat16 bits */
} rounding_case;

typedef struct {
    const char *name;
    uint16_t (*convert)(float);
    uint16_t exponent; /* the exponent field's mask: all ones for inf and NaN */
} conversion;

/* Each case rounds to its pattern, each NaN to a NaN of its sign. */
static void check_conversion(const conversion *c, const rounding_case *cases, size_t count, const uint32_t *nans,
                             size_t nan_count)
{
    for (size_t i = 0; i < count; i++) {
        const uint16_t got = c->convert(from_bits(cases[i].in));
        check(got == cases[i].want, "%-4s %-36s 0x%08x -> 0x%04x (want 0x%04x)", c->name, cases[i].what,
              (unsigned)cases[i].in, got, cases[i].want);
    }
    const uint16_t mantissa = (uint16_t)(0x7fffu & ~c->exponent);
    for (size_t i = 0; i < nan_count; i++) {
        const uint16_t got = c->convert(from_bits(nans[i]));
        check((got & c->exponent) == c->exponent && (got & mantissa) != 0 &&
                  (got & 0x8000) == ((nans[i] >> 16) & 0x8000),
              "%-4s NaN 0x%08x -> 0x%04x: NaN of the same sign", c->name, (unsigned)nans[i], got);
    }
}

/* float32 -> float16, rounded to nearest even. */
static void check_to_half(void)
{
    const rounding_case cases[] = {
        {"1", 0x3f800000u, 0x3c00},
        {"1 + 2^-11: tie, down to even", 0x3f801000u, 0x3c00},
        {"1 + 3 2^-11: tie, up to even", 0x3f803000u, 0x3c02},
        {"1 + 2^-11 + 2^-23: above the tie", 0x3f801001u, 0x3c01},
        {"-(1 + 3 2^-11): tie, up to even", 0xbf803000u, 0xbc02},
        {"65504: largest finite", 0x477fe000u, 0x7bff},
        {"65519.996: below the tie", 0x477fefffu, 0x7bff},
        {"65520: tie, to inf", 0x477ff000u, 0x7c00},
        {"-65520: tie, to -inf", 0xc77ff000u, 0xfc00},
        {"1e10: overflow", 0x501502f9u, 0x7c00},
        {"inf", 0x7f800000u, 0x7c00},
        {"-inf", 0xff800000u, 0xfc00},
        {"2^-14: smallest normal", 0x38800000u, 0x0400},
        {"2^-14 - 2^-25: tie, up to the normal", 0x387fe000u, 0x0400},
        {"2^-24: smallest subnormal", 0x33800000u, 0x0001},
        {"2^-25: tie, to 0", 0x33000000u, 0x0000},
        {"-2^-25: tie, to -0", 0xb3000000u, 0x8000},
        {"1.5 2^-25: above the tie", 0x33400000u, 0x0001},
        {"3 2^-25: tie, up to even", 0x33c00000u, 0x0002},
        {"2^-26: below half the smallest", 0x32800000u, 0x0000},
        {"float32 subnormal", 0x00000001u, 0x0000},
        {"0", 0x00000000u, 0x0000},
        {"-0", 0x80000000u, 0x8000},
    };
    const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fbfffffu};
    const conversion half = {"f16", clattn__float_to_half, 0x7c00};
    check_conversion(&half, cases, sizeof cases / sizeof cases[0], nans, sizeof nans / sizeof nans[0]);
}

/* float32 -> bfloat16, rounded to nearest even. */
static void check_to_bfloat16(void)
{
    const rounding_case cases[] = {
        {"1", 0x3f800000u, 0x3f80},
        {"1 + 2^-8: tie, down to even", 0x3f808000u, 0x3f80},
        {"1 + 3 2^-8: tie, up to even", 0x3f818000u, 0x3f82},
        {"1 + 2^-8 + 2^-23: above the tie", 0x3f808001u, 0x3f81},
        {"-(1 + 3 2^-8): tie, up to even", 0xbf818000u, 0xbf82},
        {"largest finite bfloat16", 0x7f7f0000u, 0x7f7f},
        {"below the tie past it", 0x7f7f7fffu, 0x7f7f},
        {"tie past it: to inf", 0x7f7f8000u, 0x7f80},
        {"largest finite float32: to inf", 0x7f7fffffu, 0x7f80},
        {"-largest finite float32: to -inf", 0xff7fffffu, 0xff80},
        {"inf", 0x7f800000u, 0x7f80},
        {"float32 subnormal tie, to 0", 0x00008000u, 0x0000},
        {"float32 subnormal tie, up to even", 0x00018000u, 0x0002},
        {"0", 0x00000000u, 0x0000},
        {"-0", 0x80000000u, 0x8000},
    };
    /* 0x7f800001: truncating would give inf; 0x7fffffff: rounding up would carry into the sign. */
    const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu, 0xffffffffu};
    const conversion bfloat16 = {"bf16", clattn__float_to_bfloat16, 0x7f80};
    check_conversion(&bfloat16, cases, sizeof cases / sizeof cases[0], nans, sizeof nans / sizeof nans[0]);
}

/* The value of float16 bits h, computed from the format's definition. */
static double half_value(uint16_t h)
{
    const int exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    if (exp == 0)
        return sign * ldexp(man, -24);
    if (exp == 0x1f)
        return man ? NAN : sign * INFINITY;
    return sign * ldexp(1024 + man, exp - 25);
}

/* Every float16 and bfloat16 pattern widens to its value and rounds back to itself (a signalling
 * NaN comes back quiet, its payload kept). */
static void check_round_trips(void)
{
    int half_bad = 0, bf16_bad = 0;
    for (uint32_t h = 0; h <= 0xffffu; h++) {
        const float f = clattn__half_to_float((uint16_t)h);
        const double want = half_value((uint16_t)h);
        const int nan = isnan(want);
        const uint16_t back = clattn__float_to_half(f);
        const int value_ok = !signbit(f) == !(h & 0x8000) && (nan ? isnan(f) : (double)f == want);
        half_bad += !CHECK(value_ok && back == (nan ? (h | 0x0200u) : h), "f16 0x%04x -> %a -> 0x%04x", (unsigned)h,
                           (double)f, back);
        const float b = clattn__bfloat16_to_float((uint16_t)h);
        const int bnan = (h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0;
        const uint16_t bback = clattn__float_to_bfloat16(b);
        const uint32_t b_bits = h << 16;
        bf16_bad += !CHECK(memcmp(&b, &b_bits, sizeof b) == 0 && bback == (bnan ? (h | 0x0040u) : h),
                           "bf16 0x%04x -> 0x%04x", (unsigned)h, bback);
    }
    check(half_bad == 0, "all 65536 float16 patterns: value and round trip (%d wrong)", half_bad);
    check(bf16_bad == 0, "all 65536 bfloat16 patterns: value and round trip (%d wrong)", bf16_bad);
    check(clattn__half_to_float(0x7bff) == 65504.0f && clattn__half_to_float(0x0001) == ldexpf(1.0f, -24) &&
              signbit(clattn__half_to_float(0x8000)) && clattn__half_to_float(0xfc00) == -INFINITY,
          "f16 65504, 2^-24, -0, -inf widen exactly");
}

/* p on the reference context, its message printed on failure. */
static int run(clattn_context *ref, const clattn_problem *p, const clattn_host_tensors *t)
{
    clattn_plan *plan = NULL;
    int s = clattn_plan_create(ref, p, &plan);
    if (!s)
        s = clattn_plan_run_host(plan, t);
    if (s)
        printf("  %s: %s\n", clattn_status_name(s), clattn_context_message(ref));
    clattn_plan_free(plan);
    return s;
}

/* The reference in `dtype` against the float32 reference of the same rounded inputs, O rounded: the
 * same bits, LSE included. */
static void check_reference_case(clattn_context *ref, clattn_dtype dtype, const char *what, const clattn_problem *p,
                                 const int *seq_lens)
{
    harness_tensors h;
    clattn_host_tensors stored;
    if (harness_tensors_alloc(p, 1, 777u + (unsigned)p->q_len, &h)) {
        check(0, "%s: allocation", what);
        return;
    }
    h.t.seq_lens = seq_lens;
    int s = storage_alloc(dtype, &h.t, &stored);
    clattn_problem wide = *p, narrow = *p;
    wide.dtype = CLATTN_DTYPE_F32;
    narrow.dtype = dtype;
    if (!s)
        s = run(ref, &wide, &h.t);
    if (!s)
        s = run(ref, &narrow, &stored);
    const size_t n = h.t.out.bytes / sizeof(float);
    size_t differ = 0;
    for (size_t i = 0; !s && i < n; i++) {
        uint16_t want;
        clattn__store_element(dtype, &want, 0, ((const float *)h.t.out.data)[i]);
        differ += want != ((const uint16_t *)stored.out.data)[i];
    }
    const int lse_same = !s && memcmp(h.t.lse.data, stored.lse.data, h.t.lse.bytes) == 0;
    check(!s && differ == 0 && lse_same, "%-4s reference %-28s O: %zu of %zu differ from the rounded f32, LSE %s",
          clattn__dtype_name(dtype), what, differ, n, lse_same ? "identical" : "DIFFERS");
    storage_free(&stored);
    harness_tensors_free(&h);
}

/* The tensors' sizes count the storage type's bytes: exactly enough passes, a byte less does not;
 * a storage type outside clattn_dtype is refused when the plan is made. */
static void check_sizes(clattn_context *ref)
{
    const clattn_problem p = {.batch = 1, .heads = 2, .q_len = 9, .head_dim = 8, .dtype = CLATTN_DTYPE_F16};
    harness_tensors h;
    clattn_host_tensors stored;
    if (harness_tensors_alloc(&p, 1, 5u, &h) || storage_alloc(p.dtype, &h.t, &stored)) {
        check(0, "sizes: allocation");
        return;
    }
    check(stored.q.bytes == 2u * 9 * 2 * 8 && run(ref, &p, &stored) == CLATTN_STATUS_OK,
          "f16 tensors of 2 bytes an element (q %zu bytes) run", stored.q.bytes);
    stored.v.bytes--;
    clattn_plan *plan = NULL;
    int s = clattn_plan_create(ref, &p, &plan);
    if (!s)
        s = clattn_plan_run_host(plan, &stored);
    check(s == CLATTN_STATUS_BUFFER_TOO_SMALL, "f16 v a byte short: %s: %s", clattn_status_name(s),
          clattn_context_message(ref));
    clattn_plan_free(plan);
    clattn_problem bad = p;
    bad.dtype = (clattn_dtype)7;
    plan = NULL;
    s = clattn_plan_create(ref, &bad, &plan);
    check(s == CLATTN_STATUS_INVALID_DTYPE && plan == NULL, "dtype 7: %s: %s", clattn_status_name(s),
          clattn_context_message(ref));
    clattn_plan_free(plan);
    storage_free(&stored);
    harness_tensors_free(&h);
}

int main(void)
{
    check_to_half();
    check_to_bfloat16();
    check_round_trips();
    clattn_context *ref = NULL;
    if (clattn_context_create(&(clattn_context_desc){.device = "reference"}, &ref)) {
        check(0, "reference context: %s", clattn_context_message(NULL));
        return check_exit();
    }
    const int lens[] = {45, 30}, lens_summary[] = {40, 23};
    const int globals[] = {0, 17, 31};
    const clattn_problem causal = {
        .batch = 2, .heads = 4, .kv_heads = 2, .q_len = 37, .kv_len = 45, .head_dim = 24, .value_dim = 16, .causal = 1};
    const clattn_problem longformer = {.batch = 1,
                                       .heads = 2,
                                       .q_len = 50,
                                       .head_dim = 32,
                                       .window = 1,
                                       .window_left = 5,
                                       .window_right = 4,
                                       .global_idx = globals,
                                       .num_global = 3,
                                       .global_qkv = 1};
    const clattn_problem summary_extra = {
        .batch = 2, .heads = 2, .kv_heads = 1, .q_len = 40, .head_dim = 16, .summary_block = 6, .extra_len = 3};
    const clattn_problem neighborhood = {.batch = 1,
                                         .heads = 2,
                                         .q_len = 42,
                                         .head_dim = 8,
                                         .grid_pattern = CLATTN_GRID_NEIGHBORHOOD,
                                         .grid_h = 6,
                                         .grid_w = 7,
                                         .grid_kernel_h = 3,
                                         .grid_kernel_w = 3};
    const clattn_dtype types[] = {CLATTN_DTYPE_F16, CLATTN_DTYPE_BF16};
    for (int d = 0; d < 2; d++) {
        check_reference_case(ref, types[d], "causal GQA Dv != D padding", &causal, lens);
        check_reference_case(ref, types[d], "window + Qg, Kg, Vg", &longformer, NULL);
        check_reference_case(ref, types[d], "summary + extra keys padding", &summary_extra, lens_summary);
        check_reference_case(ref, types[d], "grid neighborhood", &neighborhood, NULL);
    }
    check_sizes(ref);
    clattn_context_free(ref);
    return check_exit();
}
