/* Numerics every backend (reference; CPU and local-memory kernels on every OpenCL device) must
 * show: empty rows give 0 and LSE -inf, 1e4 logits stay finite, NaN/inf in masked keys never
 * reach O, constant Q = K gives mean(V), 50 runs are bit-identical, and nothing is written past
 * the outputs (canaries). */
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

static void report(int ok, const char *backend, const char *property, const char *what, const char *detail)
{
    check(ok, "%-11s %-12s %-44s %s", backend, property, what, detail);
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
    if (p->summary_block > 0)
        return 0; /* a valid key joins its block's mean, which every row may see */
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

int main(void)
{
    static const clattn_tiles cpu_tiles = {.cpu_variant = 1, .rows = 8, .wg = 1, .bk = 1, .kw = 16},
                              local_tiles = {.cpu_variant = 0, .rows = 1, .wg = 64, .bk = 32, .kw = 0};
    static const clattn_tiles *const tiles[2] = {&cpu_tiles, &local_tiles};
    static const char *const variants[2] = {"cpu8", "local64"};
    /* The reference, then for each device its two variants on one context. */
    char specs[HARNESS_MAX_DEVICES][16], names[1 + 2 * HARNESS_MAX_DEVICES][32];
    backend bes[1 + 2 * HARNESS_MAX_DEVICES] = {{"reference", NULL, NULL}};
    if (clattn_context_create(&(clattn_context_desc){.device = "reference"}, &bes[0].ctx))
        return 1;
    const int ndev = harness_devices(specs, HARNESS_MAX_DEVICES);
    int nbe = 1;
    for (int d = 0; d < ndev; d++) {
        clattn_context *dev = harness_open(specs[d]);
        for (int v = 0; dev != NULL && v < 2; v++, nbe++) {
            snprintf(names[nbe], sizeof names[0], "%.*s %s", (int)sizeof specs[d], specs[d], variants[v]);
            bes[nbe] = (backend){names[nbe], dev, tiles[v]};
        }
    }
    check_empty_rows(bes, nbe);
    check_large_logits(bes, nbe);
    check_planted(bes, nbe);
    check_constant(bes, nbe);
    for (int b = 0; b < nbe; b++) {
        check_determinism(&bes[b]);
        check_canaries(&bes[b]);
    }
    for (int b = 1; b < nbe; b += 2)
        clattn_context_free(bes[b].ctx);
    clattn_context_free(bes[0].ctx);
    const int status = harness_exit();
    if (status == 0 && ndev == 0)
        return check_skip("reference checks passed; kernel variants not run: " HARNESS_NO_DEVICE);
    return status;
}
