/* Numerics every backend (reference; CPU and local-memory kernels on every OpenCL device) must show: empty rows give 0
 * and LSE -inf, 1e4 logits stay finite, NaN/inf in masked keys never reach O, NaN/inf in used ones reach it as IEEE
 * arithmetic has it (also from float16 and bfloat16 inputs), constant Q = K gives mean(V), 50 runs are bit-identical,
 * and nothing is written past the outputs (canaries). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TOLERANCE 2e-4 /* against the reference */
#define MEAN_TOLERANCE 1e-5
#define GUARD 4096 /* bytes after each output that must stay untouched */
#define GUARD_BYTE 0xA5
#define REPEATS 50
#define MAX_BACKENDS 9 /* the reference and a device's eight kernel variants */

static void report(int ok, const char *backend, const char *property, const char *what, const char *detail)
{
    check(ok, "%-9s %-12s %-44s %s", backend, property, what, detail);
}

/* A context, and for a device the kernel variant its plans are forced to. */
typedef struct {
    const char *name;
    clattn_context *ctx;
    const clattn_tiles *tiles; /* NULL on the reference */
} backend;

/* A problem and its padding, as every property's table lists them. */
typedef struct {
    const char *what;
    clattn_problem p;
    const int *seq_lens;
} numerics_case;

static int run_on(const backend *be, const clattn_problem *p, clattn_host_tensors *t)
{
    clattn_plan *plan = NULL;
    if (be->tiles != NULL)
        clattn_context_force_tiles(be->ctx, be->tiles);
    int s = clattn_plan_create(be->ctx, p, &plan);
    if (!s)
        s = clattn_plan_run_host(plan, t);
    if (s)
        printf("     %s: status %d (%s): %s\n", be->name, s, clattn_status_string(s), clattn_context_message(be->ctx));
    clattn_plan_free(plan);
    return s;
}

/* ------------------------------------------------------------------------------------------- */
/* Inputs. Which keys a row sees (SPEC.md's S(i)) comes from the library's visibility functions, */
/* which test_reference checks against a brute force of its own.                                */

typedef struct {
    clattn_visibility vis; /* vis.problem: the case's problem, normalized */
    const int *seq_lens;
    harness_tensors h; /* random normal inputs; h.out_ref, h.lse_ref hold the expected output */
    size_t rows;
} fixture;

/* Valid keys of batch entry b: seq_lens[b], or Nk without seq_lens. */
static int valid_keys(const fixture *f, int b)
{
    return f->seq_lens != NULL ? f->seq_lens[b] : f->vis.problem.kv_len;
}

/* Row r of O [B, H, Nq, Dv]: its batch entry's valid keys and its position. */
static void row_place(const fixture *f, size_t r, int *valid, int *pos)
{
    const clattn_problem *p = &f->vis.problem;
    *valid = valid_keys(f, (int)(r / ((size_t)p->heads * p->q_len)));
    *pos = (int)(r % (size_t)p->q_len) + p->kv_len - p->q_len;
}

/* A row with no visible key, summary or extra: SPEC.md wants 0 and LSE -inf. */
static int row_empty(const fixture *f, int valid, int pos)
{
    return clattn_visibility_count(&f->vis, valid, pos) == 0;
}

static void fixture_free(fixture *f)
{
    harness_tensors_free(&f->h);
    clattn_visibility_free(&f->vis);
}

static int fixture_make(fixture *f, const numerics_case *c)
{
    memset(f, 0, sizeof *f);
    const int s = clattn_visibility_init(&f->vis, &c->p);
    if (s != CLATTN_STATUS_OK) {
        printf("     bad test case %s: %s\n", c->what, clattn_status_string(s));
        return 0;
    }
    f->seq_lens = c->seq_lens;
    f->rows = (size_t)f->vis.problem.batch * f->vis.problem.heads * f->vis.problem.q_len;
    if (harness_tensors_alloc(&f->vis.problem, 1, 4242, &f->h) != CLATTN_STATUS_OK) {
        clattn_visibility_free(&f->vis);
        return 0;
    }
    f->h.t.seq_lens = c->seq_lens;
    return 1;
}

/* The tensors with the expected-output arrays in place of out and lse. */
static clattn_host_tensors expected_tensors(const fixture *f)
{
    clattn_host_tensors t = f->h.t;
    t.out.data = f->h.out_ref;
    t.lse.data = f->h.lse_ref;
    return t;
}

static float *tensor(const clattn_host_tensor *t)
{
    return t->data;
}

static size_t count(const clattn_host_tensor *t)
{
    return t->bytes / sizeof(float);
}

/* x = +magnitude or -magnitude with the sign x had (random signs from the normal fill). */
static void to_signs(const clattn_host_tensor *t, float magnitude)
{
    for (size_t e = 0; e < count(t); e++)
        tensor(t)[e] = tensor(t)[e] >= 0.0f ? magnitude : -magnitude;
}

static void to_constant(const clattn_host_tensor *t, float value)
{
    for (size_t e = 0; e < count(t); e++)
        tensor(t)[e] = value;
}

/* ------------------------------------------------------------------------------------------- */
/* Comparisons of one run's output                                                              */

typedef struct {
    double out_err, lse_err; /* largest absolute error of O; of LSE relative to max(1, |LSE|) */
    size_t nonfinite;        /* NaN or inf in O, or NaN / +inf in LSE */
    size_t bad_empty;        /* rows the rules leave empty that are not exactly 0 with LSE -inf */
} comparison;

/* The larger error, NaN counting as infinite. */
static double worse(double current, double d)
{
    return isnan(d) ? INFINITY : d > current ? d : current;
}

static void compare_rows(const fixture *f, const float *out, const float *lse, const float *want_out,
                         const float *want_lse, comparison *c)
{
    const int dv = f->vis.problem.value_dim;
    memset(c, 0, sizeof *c);
    for (size_t r = 0; r < f->rows; r++) {
        int valid, pos;
        row_place(f, r, &valid, &pos);
        const int empty = row_empty(f, valid, pos);
        int zero = lse[r] == -INFINITY;
        c->nonfinite += isnan(lse[r]) || lse[r] == INFINITY || (!empty && !isfinite(lse[r]));
        for (int e = 0; e < dv; e++) {
            const float x = out[r * dv + e];
            zero = zero && x == 0.0f;
            c->nonfinite += !isfinite(x);
            const double d = fabs((double)x - want_out[r * dv + e]);
            c->out_err = worse(c->out_err, d);
        }
        c->bad_empty += empty && !zero;
        if (want_lse != NULL && isfinite(want_lse[r])) {
            const double scale = fabs(want_lse[r]) > 1.0 ? fabs(want_lse[r]) : 1.0;
            const double d = fabs((double)lse[r] - want_lse[r]) / scale;
            c->lse_err = worse(c->lse_err, d);
        } else if (want_lse != NULL && lse[r] != want_lse[r]) {
            c->lse_err = INFINITY;
        }
    }
}

static int comparison_ok(const comparison *c, double tolerance)
{
    return c->nonfinite == 0 && c->bad_empty == 0 && c->out_err <= tolerance && c->lse_err <= tolerance;
}

static void describe(const comparison *c, char *buf, size_t size)
{
    snprintf(buf, size, "out err %.2e, lse err %.2e, %zu non-finite, %zu bad empty rows", c->out_err, c->lse_err,
             c->nonfinite, c->bad_empty);
}

/* The expected output: the reference on the fixture's current inputs (0 when it failed). */
static int expect_reference(const backend *bes, fixture *f)
{
    clattn_host_tensors want = expected_tensors(f);
    return run_on(&bes[0], &f->vis.problem, &want) == CLATTN_STATUS_OK;
}

/* Runs the fixture on every backend and compares with its expected output; one line each. */
static void compare_backends(const backend *bes, int nbe, fixture *f, const char *property, const char *what,
                             double tolerance, int with_lse, const char *note)
{
    for (int b = 0; b < nbe; b++) {
        comparison c = {0};
        const int s = run_on(&bes[b], &f->vis.problem, &f->h.t);
        if (!s)
            compare_rows(f, tensor(&f->h.t.out), tensor(&f->h.t.lse), f->h.out_ref, with_lse ? f->h.lse_ref : NULL, &c);
        char detail[200];
        describe(&c, detail, sizeof detail);
        const size_t used = strlen(detail);
        snprintf(detail + used, sizeof detail - used, "%s", note);
        report(!s && comparison_ok(&c, tolerance), bes[b].name, property, what, detail);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Property 1: rows with no visible key are 0 with LSE -inf; the others match the reference.    */

static const int pad3[] = {37, 20, 0}, pad2[] = {9, 3}, decode3[] = {50, 0, 49}, gqa2[] = {0, 65}, side2[] = {37, 0};

static const numerics_case empty_cases[] = {
    {"padding, seq_lens {37, 20, 0}", {.batch = 3, .heads = 2, .q_len = 37, .head_dim = 32}, pad3},
    {"causal padding {37, 20, 0}", {.batch = 3, .heads = 2, .q_len = 37, .head_dim = 32, .causal = 1}, pad3},
    {"causal Nq 40 > Nk 9", {.batch = 1, .heads = 2, .q_len = 40, .kv_len = 9, .head_dim = 16, .causal = 1}, NULL},
    {"causal Nq 40 > Nk 9, seq_lens {9, 3}",
     {.batch = 2, .heads = 2, .q_len = 40, .kv_len = 9, .head_dim = 16, .causal = 1},
     pad2},
    {"decode, seq_lens {50, 0, 49}", {.batch = 3, .heads = 2, .q_len = 1, .kv_len = 50, .head_dim = 64}, decode3},
    {"GQA causal, seq_lens {0, 65}",
     {.batch = 2, .heads = 4, .kv_heads = 2, .q_len = 65, .head_dim = 64, .causal = 1},
     gqa2},
    {"summary + extra keys, seq_lens {37, 0}",
     {.batch = 2, .heads = 2, .q_len = 37, .head_dim = 16, .summary_block = 4, .extra_len = 2},
     side2},
};

static void check_empty_rows(const backend *bes, int nbe)
{
    for (size_t i = 0; i < sizeof empty_cases / sizeof empty_cases[0]; i++) {
        fixture f;
        if (!fixture_make(&f, &empty_cases[i]))
            continue;
        if (expect_reference(bes, &f))
            compare_backends(bes, nbe, &f, "empty rows", empty_cases[i].what, TOLERANCE, 1, "");
        fixture_free(&f);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Property 2: logits of magnitude 1e4. Q and K are +-c, so every logit is an exact multiple of  */
/* scale * c^2 and the softmax is a one-hot (or an exact tie): the reference is exact.           */

typedef struct {
    numerics_case c;
    float magnitude; /* of every element of Q and K */
} large_case;

static const int large_pad[] = {130, 77};
static const int large_globals[] = {5, 90};

static const large_case large_cases[] = {
    /* 64 * 40^2 / 8 = 12800 */
    {{"dense D 64, |logit| <= 12800", {.batch = 1, .heads = 2, .q_len = 65, .head_dim = 64}, NULL}, 40.0f},
    {{"causal D 64, padding, |logit| <= 12800",
      {.batch = 2, .heads = 2, .q_len = 130, .head_dim = 64, .causal = 1},
      large_pad},
     40.0f},
    /* 6.25 * 16 * 10^2 = 10000 */
    {{"window + globals D 16, scale 6.25, |logit| <= 1e4",
      {.batch = 2,
       .heads = 2,
       .q_len = 130,
       .head_dim = 16,
       .scale = 6.25f,
       .window = 1,
       .window_left = 7,
       .window_right = 3,
       .global_idx = large_globals,
       .num_global = 2},
      large_pad},
     10.0f},
    /* Full summary blocks: their keys are means of +-c over 8, still exact. */
    {{"summary + extra D 32, |logit| <= 14142",
      {.batch = 1, .heads = 2, .q_len = 64, .head_dim = 32, .causal = 1, .summary_block = 8, .extra_len = 3},
      NULL},
     50.0f},
};

static void check_large_logits(const backend *bes, int nbe)
{
    for (size_t i = 0; i < sizeof large_cases / sizeof large_cases[0]; i++) {
        const large_case *lc = &large_cases[i];
        fixture f;
        if (!fixture_make(&f, &lc->c))
            continue;
        const clattn_host_tensor *qk[] = {&f.h.t.q, &f.h.t.k, &f.h.t.kx};
        for (size_t t = 0; t < sizeof qk / sizeof qk[0]; t++)
            to_signs(qk[t], lc->magnitude);
        if (expect_reference(bes, &f))
            compare_backends(bes, nbe, &f, "large logits", lc->c.what, TOLERANCE, 1, "");
        fixture_free(&f);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Property 3: NaN and inf planted in K and V where no query of the batch entry may look (padding */
/* and keys outside every query's window) leave the output equal to the reference on clean data. */

typedef struct {
    numerics_case c;
    int plant_padding_queries; /* also NaN in the Q rows of padding queries */
} planted_case;

static const int plant_pad[] = {37, 20, 0}, plant_side[] = {37, 21}, plant_globals[] = {2, 30};

static const planted_case planted_cases[] = {
    {{"padding {37, 20, 0}", {.batch = 3, .heads = 2, .q_len = 37, .head_dim = 32}, plant_pad}, 0},
    {{"padding, NaN queries too", {.batch = 3, .heads = 2, .q_len = 37, .head_dim = 32}, plant_pad}, 1},
    {{"GQA causal padding {37, 20, 0}",
      {.batch = 3, .heads = 4, .kv_heads = 2, .q_len = 37, .head_dim = 64, .causal = 1},
      plant_pad},
     0},
    {{"decode, window (4, 0)",
      {.batch = 1, .heads = 2, .q_len = 1, .kv_len = 40, .head_dim = 64, .window = 1, .window_left = 4},
      NULL},
     0},
    {{"Nq 8, Nk 64, causal window (4, 0)",
      {.batch = 1, .heads = 2, .q_len = 8, .kv_len = 64, .head_dim = 16, .causal = 1, .window = 1, .window_left = 4},
      NULL},
     0},
    {{"decode, window (16, 0) dilation 2",
      {.batch = 1, .heads = 1, .q_len = 1, .kv_len = 41, .head_dim = 32, .window = 1, .window_left = 16, .dilation = 2},
      NULL},
     0},
    {{"neighborhood 3x3 on 7x9, padding {37, 20, 0}",
      {.batch = 3,
       .heads = 2,
       .q_len = 63,
       .head_dim = 16,
       .grid_pattern = CLATTN_GRID_NEIGHBORHOOD,
       .grid_h = 7,
       .grid_w = 9,
       .grid_kernel_h = 3,
       .grid_kernel_w = 3},
      plant_pad},
     1},
    {{"summary blocks of 4, padding {37, 21}",
      {.batch = 2, .heads = 2, .q_len = 37, .head_dim = 16, .summary_block = 4},
      plant_side},
     0},
    {{"globals {2, 30}, window (3, 3), padding {37, 20}",
      {.batch = 2,
       .heads = 2,
       .q_len = 37,
       .head_dim = 16,
       .window = 1,
       .window_left = 3,
       .window_right = 3,
       .global_idx = plant_globals,
       .num_global = 2},
      plant_pad},
     0},
};

/* Whether key j of batch entry b is outside the set of every query (and of every summary mean). */
static int masked_everywhere(const fixture *f, int b, int j)
{
    const clattn_problem *p = &f->vis.problem;
    const int valid = valid_keys(f, b);
    if (j >= valid)
        return 1;
    if (clattn_visibility_summary_of_key(&f->vis, valid, j) >= 0)
        return 0; /* a key that joins a block's mean, which every row may see */
    for (int i = 0; i < p->q_len; i++)
        if (clattn_visibility_key(&f->vis, valid, i + p->kv_len - p->q_len, j))
            return 0;
    return 1;
}

static const float poison[] = {NAN, INFINITY, -INFINITY};

/* Overwrites the masked rows of K and V (and optionally padding rows of Q); returns how many keys. */
static int plant(fixture *f, int queries_too)
{
    const clattn_problem *p = &f->vis.problem;
    int planted = 0;
    for (int b = 0; b < p->batch; b++)
        for (int j = 0; j < p->kv_len; j++) {
            if (!masked_everywhere(f, b, j))
                continue;
            planted++;
            for (int h = 0; h < p->kv_heads; h++) {
                const size_t row = ((size_t)b * p->kv_heads + h) * p->kv_len + j;
                for (int e = 0; e < p->head_dim; e++)
                    tensor(&f->h.t.k)[row * p->head_dim + e] = poison[(e + j) % 3];
                for (int e = 0; e < p->value_dim; e++)
                    tensor(&f->h.t.v)[row * p->value_dim + e] = poison[(e + j + 1) % 3];
            }
        }
    for (size_t r = 0; queries_too && r < f->rows; r++) {
        int valid, pos;
        row_place(f, r, &valid, &pos);
        for (int e = 0; pos >= valid && e < p->head_dim; e++)
            tensor(&f->h.t.q)[r * p->head_dim + e] = NAN;
    }
    return planted;
}

static void check_planted(const backend *bes, int nbe)
{
    for (size_t i = 0; i < sizeof planted_cases / sizeof planted_cases[0]; i++) {
        const planted_case *pc = &planted_cases[i];
        fixture f;
        if (!fixture_make(&f, &pc->c))
            continue;
        if (expect_reference(bes, &f)) { /* on clean data */
            char note[48];
            const int planted = plant(&f, pc->plant_padding_queries);
            snprintf(note, sizeof note, " (%d keys poisoned)", planted);
            if (planted == 0)
                report(0, "-", "NaN/inf", pc->c.what, "the case masks no key: nothing was planted");
            else
                compare_backends(bes, nbe, &f, "NaN/inf", pc->c.what, TOLERANCE, 1, note);
        }
        fixture_free(&f);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Property 4: constant Q and K make every visible logit equal: O = mean of V over visible keys. */

typedef struct {
    numerics_case c;
    float q_value, k_value;
} constant_case;

static const int const_pad[] = {65, 40}, const_globals[] = {0, 17};

static const constant_case constant_cases[] = {
    {{"dense N 33 D 16", {.batch = 1, .heads = 2, .q_len = 33, .head_dim = 16}, NULL}, 0.5f, 0.5f},
    {{"GQA causal, padding {65, 40}",
      {.batch = 2, .heads = 4, .kv_heads = 2, .q_len = 65, .head_dim = 64, .causal = 1},
      const_pad},
     0.5f,
     0.5f},
    {{"window (5, 2) N 50 D 32",
      {.batch = 1, .heads = 2, .q_len = 50, .head_dim = 32, .window = 1, .window_left = 5, .window_right = 2},
      NULL},
     0.25f,
     0.25f},
    {{"causal Nq 7 < Nk 50", {.batch = 1, .heads = 1, .q_len = 7, .kv_len = 50, .head_dim = 16, .causal = 1}, NULL},
     1.0f,
     1.0f},
    {{"globals + window (3, 3) N 40",
      {.batch = 1,
       .heads = 2,
       .q_len = 40,
       .head_dim = 16,
       .window = 1,
       .window_left = 3,
       .window_right = 3,
       .global_idx = const_globals,
       .num_global = 2},
      NULL},
     0.5f,
     0.5f},
    {{"every logit -12800 (Q = 40, K = -40)", {.batch = 1, .heads = 2, .q_len = 65, .head_dim = 64, .causal = 1}, NULL},
     40.0f,
     -40.0f},
};

/* want [rows, Dv] = mean of V over the keys each row sees (0 for an empty row). */
static void visible_means(const fixture *f, float *want)
{
    const clattn_problem *p = &f->vis.problem;
    for (size_t r = 0; r < f->rows; r++) {
        int valid, pos;
        row_place(f, r, &valid, &pos);
        const size_t bh = r / (size_t)p->q_len, heads = (size_t)p->heads;
        /* query head h reads kv head h / (H / Hkv) */
        const size_t kv = bh / heads * p->kv_heads + bh % heads / (heads / (size_t)p->kv_heads);
        for (int e = 0; e < p->value_dim; e++) {
            double sum = 0.0;
            int n = 0;
            for (int j = 0; j < p->kv_len; j++)
                if (clattn_visibility_key(&f->vis, valid, pos, j)) {
                    sum += tensor(&f->h.t.v)[(kv * p->kv_len + j) * p->value_dim + e];
                    n++;
                }
            want[r * p->value_dim + e] = n > 0 ? (float)(sum / n) : 0.0f;
        }
    }
}

static void check_constant(const backend *bes, int nbe)
{
    for (size_t i = 0; i < sizeof constant_cases / sizeof constant_cases[0]; i++) {
        const constant_case *cc = &constant_cases[i];
        fixture f;
        if (!fixture_make(&f, &cc->c))
            continue;
        to_constant(&f.h.t.q, cc->q_value);
        to_constant(&f.h.t.k, cc->k_value);
        visible_means(&f, f.h.out_ref);
        compare_backends(bes, nbe, &f, "mean(V)", cc->c.what, MEAN_TOLERANCE, 0, "");
        fixture_free(&f);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Property 5: one plan run 50 times gives bit-identical O and LSE.                            */

static const int busy_globals[] = {3, 50}, busy_pad[] = {97, 60};
static const numerics_case busy_case = {"globals, summary, extra, causal, padding",
                                        {.batch = 2,
                                         .heads = 4,
                                         .kv_heads = 2,
                                         .q_len = 97,
                                         .head_dim = 64,
                                         .causal = 1,
                                         .global_idx = busy_globals,
                                         .num_global = 2,
                                         .summary_block = 8,
                                         .extra_len = 4},
                                        busy_pad};

static void check_determinism(const backend *be)
{
    fixture f;
    if (!fixture_make(&f, &busy_case))
        return;
    clattn_plan *plan = NULL;
    if (be->tiles != NULL)
        clattn_context_force_tiles(be->ctx, be->tiles);
    int s = clattn_plan_create(be->ctx, &f.vis.problem, &plan);
    clattn_host_tensors first = expected_tensors(&f);
    if (!s)
        s = clattn_plan_run_host(plan, &first);
    int differing = 0;
    for (int r = 1; r < REPEATS && !s; r++) {
        memset(f.h.t.out.data, 0xff, f.h.t.out.bytes); /* NaN: a run that writes nothing fails */
        memset(f.h.t.lse.data, 0xff, f.h.t.lse.bytes);
        s = clattn_plan_run_host(plan, &f.h.t);
        differing += memcmp(first.out.data, f.h.t.out.data, f.h.t.out.bytes) != 0 ||
                     memcmp(first.lse.data, f.h.t.lse.data, f.h.t.lse.bytes) != 0;
    }
    char detail[160];
    snprintf(detail, sizeof detail, "%d of %d runs differ from the first%s%s", differing, REPEATS - 1, s ? ", " : "",
             s ? clattn_context_message(be->ctx) : "");
    report(!s && differing == 0, be->name, "determinism", busy_case.what, detail);
    clattn_plan_free(plan);
    fixture_free(&f);
}

/* ------------------------------------------------------------------------------------------- */
/* Property 6: canaries. Outputs sit in buffers GUARD bytes larger, filled with GUARD_BYTE; a run */
/* must write every output element and no guard byte, and never write its inputs.               */

static const numerics_case decode_case = {
    "decode", {.batch = 2, .heads = 8, .kv_heads = 2, .q_len = 1, .kv_len = 100, .head_dim = 128}, NULL};
static const numerics_case wide_case = {
    "N 65, D 256, Dv 16", {.batch = 1, .heads = 3, .q_len = 65, .head_dim = 256, .value_dim = 16}, NULL};
static const numerics_case *const canary_cases[] = {&busy_case, &decode_case, &wide_case};

/* Whether x [bytes + GUARD] has a written body (no float left as the fill pattern) and an intact guard. */
static int canary_ok(const unsigned char *x, size_t bytes, size_t *unwritten, size_t *guard_hits)
{
    const unsigned char pattern[4] = {GUARD_BYTE, GUARD_BYTE, GUARD_BYTE, GUARD_BYTE};
    *unwritten = *guard_hits = 0;
    for (size_t e = 0; e < bytes; e += 4)
        *unwritten += memcmp(x + e, pattern, 4) == 0;
    for (size_t e = bytes; e < bytes + GUARD; e++)
        *guard_hits += x[e] != GUARD_BYTE;
    return *unwritten == 0 && *guard_hits == 0;
}

static void report_canaries(const backend *be, const char *what, const unsigned char *const *outs, const size_t *bytes,
                            int inputs_same)
{
    size_t unwritten[2], hits[2];
    const int ok =
        canary_ok(outs[0], bytes[0], &unwritten[0], &hits[0]) & canary_ok(outs[1], bytes[1], &unwritten[1], &hits[1]);
    char detail[200];
    snprintf(detail, sizeof detail, "out: %zu unwritten, %zu guard bytes hit; lse: %zu unwritten, %zu hit; inputs %s",
             unwritten[0], hits[0], unwritten[1], hits[1], inputs_same ? "intact" : "WRITTEN");
    report(ok && inputs_same, be->name, "canary", what, detail);
}

/* Host outputs with guards; `declared_extra` is how much larger than needed the call is told they are. */
static void check_host_canary(const backend *be, const numerics_case *nc, size_t declared_extra)
{
    fixture f, copy;
    if (!fixture_make(&f, nc))
        return;
    if (!fixture_make(&copy, nc)) {
        fixture_free(&f);
        return;
    }
    clattn_host_tensor *outs[2] = {&f.h.t.out, &f.h.t.lse};
    unsigned char *guarded[2];
    size_t bytes[2];
    for (int o = 0; o < 2; o++) {
        bytes[o] = outs[o]->bytes;
        guarded[o] = malloc(bytes[o] + GUARD);
        if (guarded[o] != NULL)
            memset(guarded[o], GUARD_BYTE, bytes[o] + GUARD);
    }
    if (guarded[0] != NULL && guarded[1] != NULL) {
        clattn_host_tensors t = f.h.t;
        t.out = (clattn_host_tensor){guarded[0], bytes[0] + declared_extra};
        t.lse = (clattn_host_tensor){guarded[1], bytes[1] + declared_extra};
        const int s = run_on(be, &f.vis.problem, &t);
        const clattn_host_tensor *in[] = {&f.h.t.q, &f.h.t.k, &f.h.t.v, &f.h.t.kx, &f.h.t.vx};
        const clattn_host_tensor *in_copy[] = {&copy.h.t.q, &copy.h.t.k, &copy.h.t.v, &copy.h.t.kx, &copy.h.t.vx};
        int same = !s;
        for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
            same = same && (in[i]->data == NULL || memcmp(in[i]->data, in_copy[i]->data, in[i]->bytes) == 0);
        char what[96];
        snprintf(what, sizeof what, "host, %s%s", nc->what, declared_extra ? ", size declared larger" : "");
        report_canaries(be, what, (const unsigned char *const *)guarded, bytes, same);
    }
    free(guarded[0]);
    free(guarded[1]);
    fixture_free(&copy);
    fixture_free(&f);
}

/* Device buffers: inputs from the fixture, outputs GUARD bytes larger and filled with the pattern. */
enum { D_Q, D_K, D_V, D_KX, D_VX, D_OUT, D_LSE, D_COUNT };

static cl_mem device_copy(clattn_context *ctx, const clattn_host_tensor *t, size_t extra, int *ok)
{
    cl_int rc = CL_SUCCESS;
    cl_mem m = NULL;
    if (t->data != NULL) {
        m = clCreateBuffer(clattn_context_cl_context(ctx), CL_MEM_READ_WRITE, t->bytes + extra, NULL, &rc);
        if (rc == CL_SUCCESS && extra == 0)
            rc = clEnqueueWriteBuffer(clattn_context_queue(ctx), m, CL_TRUE, 0, t->bytes, t->data, 0, NULL, NULL);
        if (rc == CL_SUCCESS && extra != 0) {
            const unsigned char pattern = GUARD_BYTE;
            rc = clEnqueueFillBuffer(clattn_context_queue(ctx), m, &pattern, 1, 0, t->bytes + extra, 0, NULL, NULL);
        }
    }
    *ok = *ok && rc == CL_SUCCESS;
    return m;
}

static int device_read(clattn_context *ctx, cl_mem m, size_t bytes, void *to)
{
    return clEnqueueReadBuffer(clattn_context_queue(ctx), m, CL_TRUE, 0, bytes, to, 0, NULL, NULL) == CL_SUCCESS;
}

static void check_device_canary(const backend *be, const numerics_case *nc)
{
    fixture f;
    if (!fixture_make(&f, nc))
        return;
    const clattn_host_tensor *host[D_COUNT] = {&f.h.t.q,  &f.h.t.k,   &f.h.t.v,  &f.h.t.kx,
                                               &f.h.t.vx, &f.h.t.out, &f.h.t.lse};
    cl_mem mem[D_COUNT] = {0};
    int ok = 1;
    for (int i = 0; i < D_COUNT; i++)
        mem[i] = device_copy(be->ctx, host[i], i >= D_OUT ? GUARD : 0, &ok);
    clattn_plan *plan = NULL;
    clattn_context_force_tiles(be->ctx, be->tiles);
    int s = ok ? clattn_plan_create(be->ctx, &f.vis.problem, &plan) : CLATTN_STATUS_HOST_OUT_OF_MEMORY;
    const clattn_buffers b = {.q = mem[D_Q],
                              .k = mem[D_K],
                              .v = mem[D_V],
                              .out = mem[D_OUT],
                              .lse = mem[D_LSE],
                              .kx = mem[D_KX],
                              .vx = mem[D_VX],
                              .seq_lens = f.seq_lens};
    if (!s)
        s = clattn_plan_enqueue(plan, NULL, &b, 0, NULL, NULL);
    unsigned char *back[D_COUNT] = {0};
    size_t bytes[D_COUNT];
    int same = !s && clFinish(clattn_context_queue(be->ctx)) == CL_SUCCESS;
    for (int i = 0; i < D_COUNT; i++) {
        bytes[i] = host[i]->bytes;
        if (mem[i] == NULL)
            continue;
        back[i] = malloc(bytes[i] + (i >= D_OUT ? GUARD : 0));
        same = same && back[i] != NULL && device_read(be->ctx, mem[i], bytes[i] + (i >= D_OUT ? GUARD : 0), back[i]);
        if (same && i < D_OUT)
            same = memcmp(back[i], host[i]->data, bytes[i]) == 0;
    }
    if (s)
        printf("     %s: status %d: %s\n", be->name, s, clattn_context_message(be->ctx));
    char what[96];
    snprintf(what, sizeof what, "device, %s", nc->what);
    if (back[D_OUT] != NULL && back[D_LSE] != NULL)
        report_canaries(be, what, (const unsigned char *const *)&back[D_OUT], &bytes[D_OUT], same);
    else
        report(0, be->name, "canary", what, "could not run or read back");
    for (int i = D_COUNT - 1; i >= 0; i--) {
        free(back[i]);
        if (mem[i] != NULL)
            clReleaseMemObject(mem[i]);
    }
    clattn_plan_free(plan);
    fixture_free(&f);
}

static void check_canaries(const backend *be)
{
    for (size_t i = 0; i < sizeof canary_cases / sizeof canary_cases[0]; i++) {
        check_host_canary(be, canary_cases[i], 0);
        check_host_canary(be, canary_cases[i], GUARD);
        if (be->tiles != NULL)
            check_device_canary(be, canary_cases[i]);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Property 7: a NaN or an infinity planted where some rows use it (SPEC.md: in a query, in a    */
/* key a row sees, in the value of such a key) reaches those rows as IEEE arithmetic carries it  */
/* through the reference's max-subtracted softmax, and no other row. Every output element and    */
/* LSE of a backend is NaN, +inf, -inf or finite as the reference's is, finite ones within the   */
/* tolerance. On the reference itself: a row that does not use the planted value is finite (or   */
/* empty); one that uses it in its query, a whole key or a whole value has no finite output.     */
/* One element of a key is the exception: its infinity makes the logit +inf (NaN through inf -   */
/* inf) or -inf, a weight of exactly 0, and so a finite row, as IEEE arithmetic has it.          */

typedef enum { SITE_Q, SITE_K_ELEMENT, SITE_K_ROW, SITE_V_ROW, SITE_PADDING, SITE_COUNT } site;

static const char *const site_names[SITE_COUNT] = {"Q element", "K element", "K row", "V row", "padding K, V, Q"};

typedef struct {
    numerics_case c;
    int query;       /* row i of batch entry 0, head 0 whose element 1 is planted (SITE_Q) */
    int key;         /* key j of batch entry 0, kv head 0 whose K or V is planted */
    float magnitude; /* 0: normal inputs; else Q and K are +-magnitude: one-hot softmax */
} nonfinite_case;

static const int nf_pad[] = {37, 20}, nf_causal_pad[] = {70, 50}, nf_globals[] = {2, 70}, nf_globals_pad[] = {90, 60},
                 nf_decode_pad[] = {600, 300}, nf_grid_pad[] = {63, 40};

/* Planted once at a key of the band (30) and once at a global key (70, a side key of the window rows). */
#define NF_WINDOW_GLOBALS                                                                                              \
    {                                                                                                                  \
        .batch = 2, .heads = 2, .q_len = 90, .head_dim = 16, .window = 1, .window_left = 5, .window_right = 2,         \
        .global_idx = nf_globals, .num_global = 2                                                                      \
    }

static const nonfinite_case nonfinite_cases[] = {
    {{"dense, padding {37, 20}", {.batch = 2, .heads = 2, .q_len = 37, .head_dim = 32}, nf_pad}, 5, 9, 0.0f},
    {{"GQA causal, padding {70, 50}",
      {.batch = 2, .heads = 4, .kv_heads = 2, .q_len = 70, .head_dim = 16, .causal = 1},
      nf_causal_pad},
     66,
     40,
     0.0f},
    /* Key 63 ends chunk 0: row 67 sees only it there, before the keys of chunk 1. */
    {{"causal window (4, 0), key 63",
      {.batch = 1, .heads = 2, .q_len = 100, .head_dim = 16, .causal = 1, .window = 1, .window_left = 4},
      NULL},
     67,
     63,
     0.0f},
    /* One key per row: an infinite Q or K element makes the row's only logit +inf or -inf, NaN either way. */
    {{"window (0, 0)", {.batch = 1, .heads = 2, .q_len = 40, .head_dim = 16, .window = 1}, NULL}, 20, 20, 0.0f},
    {{"window (5, 2) + globals {2, 70}, padding {90, 60}", NF_WINDOW_GLOBALS, nf_globals_pad}, 30, 30, 0.0f},
    {{"window (5, 2) + globals, a global key planted", NF_WINDOW_GLOBALS, nf_globals_pad}, 80, 70, 0.0f},
    {{"causal summary blocks of 4, padding {37, 20}",
      {.batch = 2, .heads = 2, .q_len = 37, .head_dim = 16, .causal = 1, .summary_block = 4},
      nf_pad},
     30,
     13,
     0.0f},
    /* Nq <= 4: the CPU variant splits the keys (attention_split, combine_splits). */
    {{"decode GQA Nq 3, Nk 600, padding {600, 300}",
      {.batch = 2, .heads = 4, .kv_heads = 2, .q_len = 3, .kv_len = 600, .head_dim = 32},
      nf_decode_pad},
     1,
     400,
     0.0f},
    {{"decode window (0, 0) Nq 2, Nk 600",
      {.batch = 1, .heads = 2, .q_len = 2, .kv_len = 600, .head_dim = 32, .window = 1},
      NULL},
     1,
     599,
     0.0f},
    {{"decode causal window (100, 0) Nq 2, Nk 600",
      {.batch = 1, .heads = 2, .q_len = 2, .kv_len = 600, .head_dim = 32, .causal = 1, .window = 1, .window_left = 100},
      NULL},
     0,
     498, /* row 0 (p = 598) sees it, row 1 (p = 599) does not */
     0.0f},
    /* 2-D neighborhoods: a key some lanes of a vector of queries see and their neighbours do not,
     * inside the grid and at its corner, where windows shift inward. */
    {{"neighborhood 3x5 dilation 2 on 7x9, padding {63, 40}",
      {.batch = 2,
       .heads = 2,
       .q_len = 63,
       .head_dim = 16,
       .grid_pattern = CLATTN_GRID_NEIGHBORHOOD,
       .grid_h = 7,
       .grid_w = 9,
       .grid_kernel_h = 3,
       .grid_kernel_w = 5,
       .grid_dilation = 2},
      nf_grid_pad},
     20,
     22,
     0.0f},
    {{"causal neighborhood 5x5 on 14x14, the corner key",
      {.batch = 1,
       .heads = 2,
       .q_len = 196,
       .head_dim = 32,
       .causal = 1,
       .grid_pattern = CLATTN_GRID_NEIGHBORHOOD,
       .grid_h = 14,
       .grid_w = 14,
       .grid_kernel_h = 5,
       .grid_kernel_w = 5},
      NULL},
     30,
     0,
     0.0f},
    /* Swin windows (the CPU variant's regions kernel): under causal, key (5, 5) is seen by the
     * queries of its window after it, and not by those before it in the same vector of queries. */
    {{"causal Swin window 7 shift 3 on 14x14, a key inside a window",
      {.batch = 1,
       .heads = 2,
       .q_len = 196,
       .head_dim = 32,
       .causal = 1,
       .grid_pattern = CLATTN_GRID_WINDOW,
       .grid_h = 14,
       .grid_w = 14,
       .grid_window_size = 7,
       .grid_shift = 3},
      NULL},
     104,
     75,
     0.0f},
    /* Criss-cross (the regions kernel's row pass, then its column pass, which masks each query's
     * own token; it takes grids whose rows and columns hold 16 tokens or more): under causal, key
     * (5, 5) is seen by the queries below it in its column and after it in its row, and not by
     * those before it, which share its row's and its column's vector of queries. */
    {{"causal criss-cross on 16x17, a key inside the grid",
      {.batch = 1,
       .heads = 2,
       .q_len = 272,
       .head_dim = 32,
       .causal = 1,
       .grid_pattern = CLATTN_GRID_CRISS_CROSS,
       .grid_h = 16,
       .grid_w = 17},
      NULL},
     125,
     90,
     0.0f},
    /* Logits +-1e4: the planted key's weight is exactly 0 for most rows, and 0 * NaN is NaN. */
    {{"window (7, 3), |logit| 1e4",
      {.batch = 1,
       .heads = 2,
       .q_len = 70,
       .head_dim = 16,
       .scale = 6.25f,
       .window = 1,
       .window_left = 7,
       .window_right = 3},
      NULL},
     20,
     40,
     10.0f},
};

/* What one backend's runs over a case's plantings came to. */
typedef struct {
    size_t class_diff; /* output and LSE elements whose class (NaN, +inf, -inf, finite) differs */
    size_t leaked;     /* rows that do not use the planted value with a non-finite output */
    size_t hidden;     /* rows that use a planted query, key row or value row with a finite output */
    double err;        /* largest error where both are finite (LSE relative to max(1, |LSE|)) */
    char first[96];    /* the first planting with a fault */
} nonfinite_tally;

static int fp_class(float x)
{
    return isnan(x) ? 1 : x == INFINITY ? 2 : x == -INFINITY ? 3 : 0;
}

/* The first padding key of the first batch entry that has one; -1 when none has. */
static int padding_entry(const fixture *f)
{
    for (int b = 0; f->seq_lens != NULL && b < f->vis.problem.batch; b++)
        if (f->seq_lens[b] < f->vis.problem.kv_len)
            return b;
    return -1;
}

/* Writes x at the site (keys and values of kv head 0 of batch entry 0, or a padding entry). */
static void plant_site(fixture *f, const nonfinite_case *nc, site s, float x)
{
    const clattn_problem *p = &f->vis.problem;
    float *q = tensor(&f->h.t.q), *k = tensor(&f->h.t.k), *v = tensor(&f->h.t.v);
    const size_t key = (size_t)nc->key;
    if (s == SITE_Q)
        q[(size_t)nc->query * p->head_dim + 1] = x;
    if (s == SITE_K_ELEMENT)
        k[key * p->head_dim + 1] = x;
    for (int e = 0; s == SITE_K_ROW && e < p->head_dim; e++)
        k[key * p->head_dim + e] = x;
    for (int e = 0; s == SITE_V_ROW && e < p->value_dim; e++)
        v[key * p->value_dim + e] = x;
    const int b = padding_entry(f);
    if (s != SITE_PADDING || b < 0)
        return;
    const int j = f->seq_lens[b]; /* the entry's first padding key, in every kv head */
    for (int h = 0; h < p->kv_heads; h++) {
        const size_t row = ((size_t)b * p->kv_heads + h) * p->kv_len + j;
        for (int e = 0; e < p->head_dim; e++)
            k[row * p->head_dim + e] = x;
        for (int e = 0; e < p->value_dim; e++)
            v[row * p->value_dim + e] = x;
    }
    const int i = j - (p->kv_len - p->q_len); /* the entry's first padding query, p(i) = j, if any */
    for (int h = 0; i >= 0 && i < p->q_len && h < p->heads; h++)
        for (int e = 0; e < p->head_dim; e++)
            q[(((size_t)b * p->heads + h) * p->q_len + i) * p->head_dim + e] = x;
}

/* Whether row r of O uses the planted site: its own query, or key j of kv head 0 of batch entry 0
 * (directly or through the mean of its summary block). */
static int row_uses(const fixture *f, const nonfinite_case *nc, site s, size_t r)
{
    const clattn_problem *p = &f->vis.problem;
    int valid, pos;
    row_place(f, r, &valid, &pos);
    const size_t bh = r / (size_t)p->q_len;
    if (pos >= valid || s == SITE_PADDING)
        return 0;
    if (s == SITE_Q)
        return r == (size_t)nc->query;
    if (bh / (size_t)(p->heads / p->kv_heads) != 0) /* batch entry 0 and a head of kv head 0 */
        return 0;
    const int j = nc->key;
    return clattn_visibility_key(&f->vis, valid, pos, j) ||
           clattn_visibility_summary(&f->vis, valid, pos, clattn_visibility_summary_of_key(&f->vis, valid, j));
}

static void tally_fault(nonfinite_tally *t, const char *why, site s, float x)
{
    if (t->first[0] == '\0')
        snprintf(t->first, sizeof t->first, "; first: %s = %g%s", site_names[s], (double)x, why);
}

/* One run's out and lse: on the reference, against SPEC.md's rules; on a device, against the
 * reference's out_ref and lse_ref, class by class (a finite O in 16-bit storage within its own
 * rounding, half an ulp, besides the tolerance). */
static void tally_run(const fixture *f, const nonfinite_case *nc, site s, float x, const float *out, const float *lse,
                      int is_reference, nonfinite_tally *t)
{
    const int dv = f->vis.problem.value_dim;
    const size_t before = t->class_diff + t->leaked + t->hidden;
    for (size_t r = 0; r < f->rows; r++) {
        const int uses = row_uses(f, nc, s, r);
        int finite = 0, nonfinite = 0;
        for (int e = 0; e < dv; e++) {
            const float got = out[r * dv + e], want = f->h.out_ref[r * dv + e];
            finite += isfinite(got) != 0;
            nonfinite += !isfinite(got);
            if (!is_reference && fp_class(got) != fp_class(want))
                t->class_diff++;
            else if (!is_reference && isfinite(got))
                t->err = worse(t->err, harness_max_error(&got, &want, 1, f->vis.problem.dtype));
        }
        if (is_reference) {
            int valid, pos;
            row_place(f, r, &valid, &pos);
            const int empty = row_empty(f, valid, pos);
            t->leaked += !uses && (nonfinite > 0 || isnan(lse[r]) || lse[r] == INFINITY || (!empty && isinf(lse[r])));
            t->hidden += uses && s != SITE_K_ELEMENT && finite > 0;
        } else if (fp_class(lse[r]) != fp_class(f->h.lse_ref[r])) {
            t->class_diff++;
        } else if (isfinite(lse[r])) {
            const double scale = fabs(f->h.lse_ref[r]) > 1.0 ? fabs(f->h.lse_ref[r]) : 1.0;
            t->err = worse(t->err, fabs((double)lse[r] - f->h.lse_ref[r]) / scale);
        }
    }
    if (t->class_diff + t->leaked + t->hidden > before)
        tally_fault(t, "", s, x);
}

/* Runs the fixture on backend b: the reference (b = 0) in float32 into the expected arrays, on the
 * inputs as the storage type rounded them; a device in the storage type (harness_run), its output
 * in f->h.t. Returns the tensors the run wrote. */
static int run_fixture(const backend *bes, int b, fixture *f, clattn_host_tensors *ran)
{
    clattn_problem p = f->vis.problem;
    if (b == 0) {
        *ran = expected_tensors(f);
        p.dtype = CLATTN_DTYPE_F32;
        return run_on(&bes[0], &p, ran);
    }
    *ran = f->h.t;
    clattn_context_force_tiles(bes[b].ctx, bes[b].tiles);
    const int s = harness_run(bes[b].ctx, &p, &f->h);
    if (s)
        printf("     %s: status %d (%s): %s\n", bes[b].name, s, clattn_status_string(s),
               clattn_context_message(bes[b].ctx));
    return s;
}

/* nonfinite_cases in float32, or with dtype (float16, bfloat16) the cases listed in `only`. */
static void check_nonfinite(const backend *bes, int nbe, clattn_dtype dtype, const size_t *only, size_t n_only)
{
    static const float values[] = {NAN, INFINITY, -INFINITY};
    const size_t n = n_only > 0 ? n_only : sizeof nonfinite_cases / sizeof nonfinite_cases[0];
    for (size_t c = 0; c < n; c++) {
        const nonfinite_case *nc = &nonfinite_cases[n_only > 0 ? only[c] : c];
        numerics_case stored = nc->c;
        stored.p.dtype = dtype;
        fixture f;
        if (!fixture_make(&f, &stored))
            continue;
        if (nc->magnitude > 0.0f) {
            to_signs(&f.h.t.q, nc->magnitude);
            to_signs(&f.h.t.k, nc->magnitude);
        }
        harness_tensors_store(&f.h); /* the inputs as the storage type holds them */
        const clattn_host_tensor *inputs[3] = {&f.h.t.q, &f.h.t.k, &f.h.t.v};
        float *clean[3];
        for (int t = 0; t < 3; t++) {
            clean[t] = malloc(inputs[t]->bytes);
            if (clean[t] != NULL)
                memcpy(clean[t], inputs[t]->data, inputs[t]->bytes);
        }
        nonfinite_tally tally[MAX_BACKENDS] = {0};
        int plantings = 0;
        for (int s = 0; s < SITE_COUNT && clean[0] != NULL && clean[1] != NULL && clean[2] != NULL; s++) {
            if (s == SITE_PADDING && padding_entry(&f) < 0)
                continue;
            for (size_t x = 0; x < sizeof values / sizeof values[0]; x++) {
                plant_site(&f, nc, (site)s, values[x]);
                plantings++;
                for (int b = 0; b < nbe; b++) {
                    clattn_host_tensors t;
                    if (run_fixture(bes, b, &f, &t) != CLATTN_STATUS_OK) {
                        tally[b].class_diff++;
                        tally_fault(&tally[b], " (could not run)", (site)s, values[x]);
                    } else {
                        tally_run(&f, nc, (site)s, values[x], t.out.data, t.lse.data, b == 0, &tally[b]);
                    }
                }
                for (int t = 0; t < 3; t++)
                    memcpy(inputs[t]->data, clean[t], inputs[t]->bytes);
            }
        }
        for (int b = 0; b < nbe; b++) {
            const nonfinite_tally *t = &tally[b];
            char detail[240];
            snprintf(detail, sizeof detail, "%d plantings: %zu class differences, %zu leaked, %zu hidden, err %.2e%s",
                     plantings, t->class_diff, t->leaked, t->hidden, t->err, t->first);
            char what[96];
            snprintf(what, sizeof what, "%s%s", nc->c.what, harness_storage(dtype));
            report(plantings > 0 && t->class_diff + t->leaked + t->hidden == 0 && t->err <= TOLERANCE, bes[b].name,
                   "non-finite", what, detail);
        }
        for (int t = 0; t < 3; t++)
            free(clean[t]);
        fixture_free(&f);
    }
}

/* ------------------------------------------------------------------------------------------- */

/* Every property on the reference and, when there is one, a device's kernel variants (bes[1..]). */
/* Keys 0..39 whose logits are all -inf (Q positive, K -inf), one of them with an infinite value:
 * every row that sees it gets weight 0 times inf = NaN, in the reference's one softmax, even when
 * the first key tiles (GPU variant: 32 or 8 keys) hold nothing but those keys. */
static void check_infinite_value_behind_minus_inf(const backend *bes, int nbe)
{
    static const numerics_case c = {
        "keys 0..39 at -inf, V[0] = +inf", {.batch = 1, .heads = 2, .q_len = 100, .head_dim = 16, .causal = 1}, NULL};
    fixture f;
    if (!fixture_make(&f, &c)) {
        check(0, "non-finite: could not make '%s'", c.what);
        return;
    }
    const clattn_problem *p = &f.vis.problem;
    to_constant(&f.h.t.q, 1.0f);
    for (int h = 0; h < p->kv_heads; h++)
        for (int j = 0; j < 40; j++)
            for (int e = 0; e < p->head_dim; e++)
                tensor(&f.h.t.k)[((size_t)h * p->kv_len + j) * p->head_dim + e] = -INFINITY;
    for (int h = 0; h < p->kv_heads; h++)
        tensor(&f.h.t.v)[(size_t)h * p->kv_len * p->value_dim] = INFINITY;
    for (int b = 0; b < nbe; b++) {
        clattn_host_tensors t = b == 0 ? expected_tensors(&f) : f.h.t;
        size_t differ = 0, nan_rows = 0;
        const int status = run_on(&bes[b], p, &t);
        for (size_t r = 0; status == CLATTN_STATUS_OK && r < f.rows; r++) {
            const float *out = (const float *)t.out.data + r * p->value_dim;
            nan_rows += isnan(out[0]) != 0;
            for (int e = 0; b > 0 && e < p->value_dim; e++)
                differ += fp_class(out[e]) != fp_class(f.h.out_ref[r * p->value_dim + e]);
        }
        report(status == CLATTN_STATUS_OK && differ == 0 && nan_rows == f.rows, bes[b].name, "non-finite", c.what,
               status   ? clattn_status_string(status)
               : differ ? "class differs from the reference"
                        : "NaN rows");
    }
    fixture_free(&f);
}

static void check_backends(const backend *bes, int nbe)
{
    check_empty_rows(bes, nbe);
    check_large_logits(bes, nbe);
    check_planted(bes, nbe);
    check_nonfinite(bes, nbe, CLATTN_DTYPE_F32, NULL, 0);
    /* NaN and inf from float16 inputs in the band pass (case 0) and from bfloat16 ones in the
     * decode split (case 7), on the reference, a CPU and a GPU variant (one of each: every
     * storage type builds programs of its own). */
    const backend stored[3] = {bes[0], bes[1], bes[nbe > 3 ? 3 : 0]};
    const int n_stored = nbe > 3 ? 3 : nbe > 1 ? 2 : 1;
    check_nonfinite(stored, n_stored, CLATTN_DTYPE_F16, (const size_t[]){0}, 1);
    check_nonfinite(stored, n_stored, CLATTN_DTYPE_BF16, (const size_t[]){7}, 1);
    check_infinite_value_behind_minus_inf(bes, nbe);
    check_constant(bes, nbe);
    for (int b = 0; b < nbe; b++) {
        check_determinism(&bes[b]);
        check_canaries(&bes[b]);
    }
}

int main(void)
{
    /* CPU variant: narrow windows with query rows in vector lanes and the 2-D kernels' AVX-512
     * register blocks (cpu8, `lanes`), narrow windows as dense runs and the AVX2 blocks
     * (cpu8kw32). GPU variant: the NVIDIA row's tiles, and 8 x 8 tiles of 2 x 2 blocks, whose rows'
     * sums (and their +0 / -0 / NaN rule) are combined across 4 work-items: through __local once, and
     * (gpu8x) by the butterfly of warp shuffles with its exchanges through __local (shuffle 2), K
     * and V loaded a step ahead; and (gpu16m) one warp of 16 rows by 8 keys on emulated tensor cores
     * (mma 2), whose tiles with an infinity or NaN in Q, K or V take float32 multiply-adds, also
     * (gpu16ma) with K and V a step ahead by emulated asynchronous copies (async 2), whose checks
     * read back what the copies wrote; and (gpu8d) 8 x 8 tiles with K and V read where they lie
     * (direct), whose edge tiles check V there. */
    static const clattn_tiles
        cpu_tiles = {.cpu_variant = 1, .rows = 8, .kw = 16, .lanes = 1},
        cpu32_tiles = {.cpu_variant = 1, .rows = 8, .kw = 32},
        gpu_tiles = {.cpu_variant = 0, .rows = 1, .bm = 64, .bn = 32, .tm = 4, .tn = 4, .reqd_wg = 1, .stage = 8},
        gpu8_tiles = {.cpu_variant = 0, .rows = 1, .bm = 8, .bn = 8, .tm = 2, .tn = 2},
        gpu8x_tiles = {.cpu_variant = 0, .rows = 1, .bm = 8, .bn = 8, .tm = 2, .tn = 2, .prefetch = 1, .shuffle = 2},
        gpu16m_tiles = {.cpu_variant = 0, .rows = 1, .bm = 16, .bn = 8, .tm = 2, .tn = 2, .mma = 2},
        gpu16ma_tiles =
            {.cpu_variant = 0, .rows = 1, .bm = 16, .bn = 8, .tm = 2, .tn = 2, .prefetch = 1, .mma = 2, .async = 2},
        gpu8d_tiles = {.cpu_variant = 0, .rows = 1, .bm = 8, .bn = 8, .tm = 2, .tn = 2, .direct = 1};
    backend bes[MAX_BACKENDS] = {
        {"reference", NULL, NULL},       {"cpu8", NULL, &cpu_tiles},        {"cpu8kw32", NULL, &cpu32_tiles},
        {"gpu64", NULL, &gpu_tiles},     {"gpu8", NULL, &gpu8_tiles},       {"gpu8x", NULL, &gpu8x_tiles},
        {"gpu16m", NULL, &gpu16m_tiles}, {"gpu16ma", NULL, &gpu16ma_tiles}, {"gpu8d", NULL, &gpu8d_tiles}};
    if (clattn_context_create(&(clattn_context_desc){.device = "reference"}, &bes[0].ctx))
        return 1;
    char specs[HARNESS_MAX_DEVICES][16];
    const int ndev = harness_devices(specs, HARNESS_MAX_DEVICES);
    for (int d = 0; d < ndev || (ndev == 0 && d == 0); d++) {
        clattn_context *dev = NULL;
        int nbe = 1;
        if (ndev > 0) {
            if ((dev = harness_open(specs[d])) == NULL)
                continue; /* harness_open said why; harness_exit() will not let the test pass */
            for (nbe = 1; nbe < MAX_BACKENDS; nbe++)
                bes[nbe].ctx = dev;
        }
        check_backends(bes, nbe);
        clattn_context_free(dev);
    }
    clattn_context_free(bes[0].ctx);
    const int status = harness_exit();
    if (status == 0 && ndev == 0)
        return check_skip("reference checks passed; kernel variants not run: " HARNESS_NO_DEVICE);
    return status;
}
