/* Tests of the double-precision reference itself, against facts that do not depend on how it is
 * written: hand-computed cases, identities between patterns, and key sets built by brute force.
 * The device tests trust the reference, so this program is what keeps it honest. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clattn_advanced.h"
#include "problem.h"
#include "reference.h"

#define MAX_KEYS 64 /* the naive model's key lists; every test stays below */
#define MAX_DIM 16

/* ------------------------------------------------------------------------------------------- */
/* Fixtures: a normalized problem with every tensor it needs, filled with values in [-1, 1).    */

typedef struct {
    clattn_problem p;    /* normalized */
    float *q, *k, *v;    /* [B, H, Nq, D], [B, Hkv, Nk, D], [B, Hkv, Nk, Dv] */
    float *out, *lse;    /* [B, H, Nq, Dv], [B, H, Nq] */
    float *qg, *kg, *vg; /* shapes of q, k, v; only with global_qkv */
    float *kx, *vx;      /* [B, Hkv, Nx, D], [B, Hkv, Nx, Dv]; only with extra keys */
    const int *seq_lens; /* [B] or NULL */
} fixture;

/* Uniform values, not bench/random.c's normal ones, on purpose: test_large_inputs bounds |O| by
 * 1e4 times the largest |V|, and the naive model sums exp() without subtracting the maximum. */
static unsigned rng_state = 2463534242u;

static float uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (float)((double)rng_state / 2147483648.0 - 1.0);
}

static float *random_tensor(size_t count)
{
    float *x = malloc(count * sizeof *x);
    if (x == NULL) {
        printf("FAIL: out of memory for a test tensor\n");
        exit(2);
    }
    for (size_t e = 0; e < count; e++)
        x[e] = uniform();
    return x;
}

static size_t q_count(const clattn_problem *p)
{
    return (size_t)p->batch * p->heads * p->q_len * p->head_dim;
}
static size_t k_count(const clattn_problem *p)
{
    return (size_t)p->batch * p->kv_heads * p->kv_len * p->head_dim;
}
static size_t v_count(const clattn_problem *p)
{
    return (size_t)p->batch * p->kv_heads * p->kv_len * p->value_dim;
}
static size_t o_count(const clattn_problem *p)
{
    return (size_t)p->batch * p->heads * p->q_len * p->value_dim;
}
static size_t lse_count(const clattn_problem *p)
{
    return (size_t)p->batch * p->heads * p->q_len;
}
static size_t x_count(const clattn_problem *p, int width)
{
    return (size_t)p->batch * p->kv_heads * p->extra_len * width;
}

/* Row `row` of slice `slice` (= b * heads + h) of a [.., rows, width] tensor. */
static float *at(float *base, int slice, int rows, int row, int width)
{
    return base + ((size_t)slice * rows + row) * width;
}

static void fixture_make(fixture *f, const clattn_problem *in, const int *seq_lens)
{
    memset(f, 0, sizeof *f);
    clattn__error err = {{0}};
    if (clattn__problem_normalize(in, &f->p, &err) != CLATTN_STATUS_OK) {
        printf("FAIL: test problem rejected: %s\n", err.text);
        exit(2);
    }
    const clattn_problem *p = &f->p;
    f->q = random_tensor(q_count(p));
    f->k = random_tensor(k_count(p));
    f->v = random_tensor(v_count(p));
    f->out = random_tensor(o_count(p)); /* garbage the reference must overwrite */
    f->lse = random_tensor(lse_count(p));
    if (p->global_qkv) {
        f->qg = random_tensor(q_count(p));
        f->kg = random_tensor(k_count(p));
        f->vg = random_tensor(v_count(p));
    }
    if (p->extra_len > 0) {
        f->kx = random_tensor(x_count(p, p->head_dim));
        f->vx = random_tensor(x_count(p, p->value_dim));
    }
    f->seq_lens = seq_lens;
}

static clattn_host_tensor host(float *data, size_t count)
{
    return (clattn_host_tensor){.data = data, .bytes = data != NULL ? count * sizeof(float) : 0};
}

static int fixture_run(fixture *f)
{
    const clattn_problem *p = &f->p;
    const clattn_host_tensors t = {
        .q = host(f->q, q_count(p)),
        .k = host(f->k, k_count(p)),
        .v = host(f->v, v_count(p)),
        .out = host(f->out, o_count(p)),
        .lse = host(f->lse, lse_count(p)),
        .qg = host(f->qg, q_count(p)),
        .kg = host(f->kg, k_count(p)),
        .vg = host(f->vg, v_count(p)),
        .kx = host(f->kx, x_count(p, p->head_dim)),
        .vx = host(f->vx, x_count(p, p->value_dim)),
        .seq_lens = f->seq_lens,
    };
    clattn__error err = {{0}};
    const int status = clattn__reference_run(p, &t, &err);
    CHECK(status == CLATTN_STATUS_OK, "reference run returned %d: %s", status, err.text);
    return status;
}

static void fixture_free(fixture *f)
{
    free(f->vx);
    free(f->kx);
    free(f->vg);
    free(f->kg);
    free(f->qg);
    free(f->lse);
    free(f->out);
    free(f->v);
    free(f->k);
    free(f->q);
}

/* Copies the inputs of `from` into `to` where both have the tensor with the same shape. */
static void copy_inputs(fixture *to, const fixture *from)
{
    memcpy(to->q, from->q, q_count(&from->p) * sizeof(float));
    memcpy(to->k, from->k, k_count(&from->p) * sizeof(float));
    memcpy(to->v, from->v, v_count(&from->p) * sizeof(float));
}

static int same_floats(const float *a, const float *b, size_t n)
{
    for (size_t e = 0; e < n; e++)
        if (a[e] != b[e]) /* -inf equals -inf; NaN equals nothing */
            return 0;
    return 1;
}

/* ------------------------------------------------------------------------------------------- */
/* The naive model: softmax attention written from the formula, over an explicit key list.      */

typedef struct {
    int n, d, dv;
    double k[MAX_KEYS][MAX_DIM];
    double v[MAX_KEYS][MAX_DIM];
} key_list;

static void key_list_add(key_list *list, const float *k, const float *v)
{
    if (list->n >= MAX_KEYS) {
        printf("FAIL: test key list overflow\n");
        exit(2);
    }
    for (int e = 0; e < list->d; e++)
        list->k[list->n][e] = k[e];
    for (int e = 0; e < list->dv; e++)
        list->v[list->n][e] = v[e];
    list->n++;
}

/* out = sum_j exp(s_j) v_j / sum_j exp(s_j), s_j = scale q·k_j; returns log sum_j exp(s_j).
 * No max subtraction: the inputs it is used on are small, and the plain formula is the point. */
static double naive_attend(const float *q, double scale, const key_list *list, double *out)
{
    double denominator = 0.0;
    for (int e = 0; e < list->dv; e++)
        out[e] = 0.0;
    for (int j = 0; j < list->n; j++) {
        double s = 0.0;
        for (int e = 0; e < list->d; e++)
            s += q[e] * list->k[j][e];
        const double weight = exp(scale * s);
        denominator += weight;
        for (int e = 0; e < list->dv; e++)
            out[e] += weight * list->v[j][e];
    }
    if (list->n == 0)
        return -INFINITY;
    for (int e = 0; e < list->dv; e++)
        out[e] /= denominator;
    return log(denominator);
}

/* Compares output row (slice, i) and its LSE with the naive model's. */
static void check_row(const fixture *f, const char *what, int slice, int i, const double *want, double want_lse,
                      double tol)
{
    const clattn_problem *p = &f->p;
    const float *got = at(f->out, slice, p->q_len, i, p->value_dim);
    for (int e = 0; e < p->value_dim; e++)
        CHECK(fabs(got[e] - want[e]) <= tol, "%s: out[slice %d, row %d][%d] = %.9g, want %.9g", what, slice, i, e,
              got[e], want[e]);
    const float lse = f->lse[(size_t)slice * p->q_len + i];
    if (isinf(want_lse))
        CHECK(isinf(lse) && lse < 0, "%s: lse[slice %d, row %d] = %g, want -inf", what, slice, i, lse);
    else
        CHECK(fabs(lse - want_lse) <= tol * (1.0 + fabs(want_lse)), "%s: lse[slice %d, row %d] = %.9g, want %.9g", what,
              slice, i, lse, want_lse);
}

/* ------------------------------------------------------------------------------------------- */
/* Brute-force key sets: S(i) built by marking what each rule adds, then striking out what      */
/* causal and padding remove. Written apart from the reference's predicate.                     */

/* win(i, len, k, d) listed explicitly: i's dilation group, then k consecutive members around i,
 * slid back inside the group when they would stick out. */
static int neighborhood_list(int i, int len, int k, int d, int *out)
{
    int members[MAX_KEYS], n = 0, a = 0;
    for (int x = i % d; x < len; x += d)
        members[n++] = x;
    while (members[a] != i)
        a++;
    if (k >= n) {
        memcpy(out, members, (size_t)n * sizeof *out);
        return n;
    }
    int start = a - k / 2;
    while (start < 0)
        start++;
    while (start + k > n)
        start--;
    memcpy(out, members + start, (size_t)k * sizeof *out);
    return k;
}

/* Swin's regions: the number of cuts s, s + M, s + 2M, ... at or before x. */
static int swin_region(int x, int m, int s)
{
    int region = 0;
    for (int cut = s; cut <= x; cut += m)
        region++;
    return region;
}

static void mark_grid(const clattn_problem *p, int t, unsigned char *mask)
{
    const int w = p->grid_w, r = t / w, c = t % w;
    int rows[MAX_KEYS], cols[MAX_KEYS], nr, nc;
    switch (p->grid_pattern) {
    case CLATTN_GRID_AXIAL_ROW:
        for (int x = 0; x < w; x++)
            mask[r * w + x] = 1;
        break;
    case CLATTN_GRID_AXIAL_COLUMN:
        for (int y = 0; y < p->grid_h; y++)
            mask[y * w + c] = 1;
        break;
    case CLATTN_GRID_CRISS_CROSS:
        for (int x = 0; x < w; x++)
            mask[r * w + x] = 1;
        for (int y = 0; y < p->grid_h; y++)
            mask[y * w + c] = 1;
        break;
    case CLATTN_GRID_NEIGHBORHOOD:
        nr = neighborhood_list(r, p->grid_h, p->grid_kernel_h, p->grid_dilation, rows);
        nc = neighborhood_list(c, w, p->grid_kernel_w, p->grid_dilation, cols);
        for (int y = 0; y < nr; y++)
            for (int x = 0; x < nc; x++)
                mask[rows[y] * w + cols[x]] = 1;
        break;
    case CLATTN_GRID_WINDOW:
        for (int y = 0; y < p->grid_h; y++)
            for (int x = 0; x < w; x++)
                if (swin_region(y, p->grid_window_size, p->grid_shift) ==
                        swin_region(r, p->grid_window_size, p->grid_shift) &&
                    swin_region(x, p->grid_window_size, p->grid_shift) ==
                        swin_region(c, p->grid_window_size, p->grid_shift))
                    mask[y * w + x] = 1;
        break;
    case CLATTN_GRID_NONE:
        break;
    }
}

static int is_global(const clattn_problem *p, int pos)
{
    for (int g = 0; g < p->num_global; g++)
        if (p->global_idx[g] == pos)
            return 1;
    return 0;
}

/* mask [Nk] = S(i) over the keys of K; returns its size. */
static int expected_set(const clattn_problem *p, int valid, int i, unsigned char *mask)
{
    const int nk = p->kv_len, pos = i + p->kv_len - p->q_len;
    memset(mask, 0, (size_t)nk);
    if (pos >= valid)
        return 0;
    if (p->grid_pattern != CLATTN_GRID_NONE) {
        mark_grid(p, pos, mask);
    } else if (p->window && !is_global(p, pos)) {
        for (int offset = -p->window_left; offset <= p->window_right; offset++)
            if (offset % p->dilation == 0 && pos + offset >= 0 && pos + offset < nk)
                mask[pos + offset] = 1;
        for (int g = 0; g < p->num_global; g++)
            mask[p->global_idx[g]] = 1;
    } else {
        memset(mask, 1, (size_t)nk);
    }
    int count = 0;
    for (int j = 0; j < nk; j++) {
        if (j >= valid || (p->causal && j > pos))
            mask[j] = 0;
        count += mask[j];
    }
    return count;
}

/* Summary blocks of a batch entry with `valid` keys: one per full block of b, the left-over keys
 * joining the last (none at all when valid < b), or with summary_tail OWN a partial block of
 * their own. */
static int summary_blocks(const clattn_problem *p, int valid)
{
    if (p->summary_block <= 0)
        return 0;
    if (p->summary_tail == CLATTN_SUMMARY_TAIL_OWN)
        return (valid + p->summary_block - 1) / p->summary_block;
    return valid / p->summary_block;
}

/* The last key of summary block c: b keys on, except the last block, which ends at valid - 1. */
static int summary_last_key(const clattn_problem *p, int valid, int c)
{
    return c == summary_blocks(p, valid) - 1 ? valid - 1 : (c + 1) * p->summary_block - 1;
}

/* Summary token c, seen by every row that is not padding, under causal once its last key is. */
static int expected_summary(const clattn_problem *p, int valid, int pos, int c)
{
    return pos < valid && (!p->causal || summary_last_key(p, valid, c) <= pos);
}

/* |S(i)|: mask [Nk] as expected_set leaves it, plus the summary tokens and the extra keys; a
 * padding row sees nothing, and a global row with its own Qg, Kg, Vg only keys (of Kg). */
static int expected_count(const clattn_problem *p, int valid, int i, unsigned char *mask)
{
    const int pos = i + p->kv_len - p->q_len;
    int count = expected_set(p, valid, i, mask);
    if (pos >= valid || (p->global_qkv && is_global(p, pos)))
        return count;
    for (int c = 0; c < summary_blocks(p, valid); c++)
        count += expected_summary(p, valid, pos, c);
    return count + p->extra_len;
}

/* ------------------------------------------------------------------------------------------- */
/* The library's S(i) (host/visibility.c, which the reference path, the bench and the device    */
/* tests use) against the brute force: key by key, summary token by token, and |S(i)| per row.  */

static void check_visibility(const char *what, const clattn_problem *in, const int *seq_lens)
{
    clattn_visibility v;
    const int status = clattn_visibility_init(&v, in);
    CHECK(status == CLATTN_STATUS_OK, "%s: clattn_visibility_init gave %d", what, status);
    if (status != CLATTN_STATUS_OK)
        return;
    const clattn_problem *p = &v.problem;
    for (int b = 0; b < p->batch; b++) {
        const int valid = clattn__valid_keys(p, seq_lens, b);
        for (int i = 0; i < p->q_len; i++) {
            const int pos = i + p->kv_len - p->q_len;
            unsigned char mask[MAX_KEYS];
            const int count = expected_count(p, valid, i, mask);
            for (int j = 0; j < p->kv_len; j++)
                CHECK((clattn_visibility_key(&v, valid, pos, j) != 0) == mask[j],
                      "%s: entry %d row %d key %d: clattn_visibility_key says %d, brute force %d", what, b, i, j,
                      clattn_visibility_key(&v, valid, pos, j), mask[j]);
            /* a global row with its own projections sees no summary token, whatever the rule says */
            CHECK(clattn_visibility_summary_count(&v, valid) == summary_blocks(p, valid),
                  "%s: entry %d: clattn_visibility_summary_count says %d, brute force %d", what, b,
                  clattn_visibility_summary_count(&v, valid), summary_blocks(p, valid));
            for (int j = 0; j < valid && i == 0; j++) {
                int want = -1;
                for (int c = 0; c < summary_blocks(p, valid); c++)
                    if (want < 0 && j <= summary_last_key(p, valid, c))
                        want = c;
                CHECK(clattn_visibility_summary_of_key(&v, valid, j) == want,
                      "%s: entry %d key %d: clattn_visibility_summary_of_key says %d, brute force %d", what, b, j,
                      clattn_visibility_summary_of_key(&v, valid, j), want);
            }
            for (int c = 0; c < summary_blocks(p, valid) && !(p->global_qkv && is_global(p, pos)); c++)
                CHECK((clattn_visibility_summary(&v, valid, pos, c) != 0) == expected_summary(p, valid, pos, c),
                      "%s: entry %d row %d summary %d: clattn_visibility_summary says %d", what, b, i, c,
                      clattn_visibility_summary(&v, valid, pos, c));
            CHECK(clattn_visibility_count(&v, valid, pos) == count,
                  "%s: entry %d row %d: clattn_visibility_count says %lld, brute force %d", what, b, i,
                  clattn_visibility_count(&v, valid, pos), count);
        }
    }
    clattn_visibility_free(&v);
}

/* Every pattern and combination the probes below cannot express (their V is the identity over K,
 * so no summary or extra keys), and windows and offsets at their edges. */
static void test_visibility(void)
{
    static const int globals[] = {5, 0, 9}, lens3[] = {12, 8, 0}, lens4[] = {8, 7, 5, 0}, lens2[] = {11, 3};
    const struct {
        const char *what;
        clattn_problem p;
        const int *seq_lens;
    } cases[] = {
        {"dense", {.batch = 1, .heads = 1, .q_len = 9, .head_dim = 1}, NULL},
        {"dense + padding", {.batch = 3, .heads = 1, .q_len = 12, .head_dim = 1}, lens3},
        {"causal + padding", {.batch = 3, .heads = 1, .q_len = 12, .head_dim = 1, .causal = 1}, lens3},
        {"decode", {.batch = 1, .heads = 1, .q_len = 1, .kv_len = 12, .head_dim = 1, .causal = 1}, NULL},
        {"Nq > Nk", {.batch = 1, .heads = 1, .q_len = 9, .kv_len = 4, .head_dim = 1}, NULL},
        {"Nq > Nk causal + padding",
         {.batch = 2, .heads = 1, .q_len = 15, .kv_len = 11, .head_dim = 1, .causal = 1},
         lens2},
        {"window (0, 0)", {.batch = 1, .heads = 1, .q_len = 9, .head_dim = 1, .window = 1}, NULL},
        {"window (7, 5) dilation 3",
         {.batch = 1,
          .heads = 1,
          .q_len = 20,
          .head_dim = 1,
          .window = 1,
          .window_left = 7,
          .window_right = 5,
          .dilation = 3},
         NULL},
        {"window (30, 30) dilation 3, wider than N",
         {.batch = 1,
          .heads = 1,
          .q_len = 10,
          .head_dim = 1,
          .window = 1,
          .window_left = 30,
          .window_right = 30,
          .dilation = 3},
         NULL},
        {"window (N, 0) causal",
         {.batch = 1, .heads = 1, .q_len = 10, .head_dim = 1, .window = 1, .window_left = 10, .causal = 1},
         NULL},
        {"window (4, 6) dilation 2, Nq > Nk",
         {.batch = 1,
          .heads = 1,
          .q_len = 14,
          .kv_len = 9,
          .head_dim = 1,
          .window = 1,
          .window_left = 4,
          .window_right = 6,
          .dilation = 2},
         NULL},
        {"decode window (5, 0) dilation 3",
         {.batch = 1,
          .heads = 1,
          .q_len = 1,
          .kv_len = 20,
          .head_dim = 1,
          .window = 1,
          .window_left = 5,
          .dilation = 3,
          .causal = 1},
         NULL},
        {"globals without a window, causal",
         {.batch = 1, .heads = 1, .q_len = 12, .head_dim = 1, .causal = 1, .global_idx = globals, .num_global = 3},
         NULL},
        {"window (2, 1) dilation 3 + globals",
         {.batch = 1,
          .heads = 1,
          .q_len = 12,
          .head_dim = 1,
          .window = 1,
          .window_left = 2,
          .window_right = 1,
          .dilation = 3,
          .global_idx = globals,
          .num_global = 3},
         NULL},
        {"window (3, 0) + globals + causal + padding",
         {.batch = 3,
          .heads = 1,
          .q_len = 12,
          .head_dim = 1,
          .window = 1,
          .window_left = 3,
          .causal = 1,
          .global_idx = globals,
          .num_global = 3},
         lens3},
        {"window (1, 1) + globals + causal, Nq < Nk",
         {.batch = 1,
          .heads = 1,
          .q_len = 4,
          .kv_len = 12,
          .head_dim = 1,
          .window = 1,
          .window_left = 1,
          .window_right = 1,
          .causal = 1,
          .global_idx = globals,
          .num_global = 3},
         NULL},
        {"global_qkv + summary + extra + causal + padding",
         {.batch = 3,
          .heads = 1,
          .q_len = 12,
          .head_dim = 1,
          .window = 1,
          .window_left = 1,
          .window_right = 1,
          .causal = 1,
          .global_idx = globals,
          .num_global = 3,
          .global_qkv = 1,
          .summary_block = 2,
          .extra_len = 2},
         lens3},
        {"summary b = 1", {.batch = 1, .heads = 1, .q_len = 6, .head_dim = 1, .summary_block = 1}, NULL},
        {"summary b = 1 causal",
         {.batch = 1, .heads = 1, .q_len = 6, .head_dim = 1, .causal = 1, .summary_block = 1},
         NULL},
        {"summary b = 3 + extra, causal, Nq < Nk, padding",
         {.batch = 4,
          .heads = 1,
          .q_len = 5,
          .kv_len = 8,
          .head_dim = 1,
          .causal = 1,
          .summary_block = 3,
          .extra_len = 2},
         lens4},
        {"summary b > N, causal",
         {.batch = 1, .heads = 1, .q_len = 7, .head_dim = 1, .causal = 1, .summary_block = 9},
         NULL},
        {"summary b = 4 causal, Nq > Nk",
         {.batch = 1, .heads = 1, .q_len = 13, .kv_len = 10, .head_dim = 1, .causal = 1, .summary_block = 4},
         NULL},
        {"window (2, 2) + globals + summary + extra + padding",
         {.batch = 3,
          .heads = 1,
          .q_len = 12,
          .head_dim = 1,
          .window = 1,
          .window_left = 2,
          .window_right = 2,
          .global_idx = globals,
          .num_global = 3,
          .summary_block = 5,
          .extra_len = 3},
         lens3},
        {"extra keys", {.batch = 1, .heads = 1, .q_len = 5, .head_dim = 1, .extra_len = 3}, NULL},
        {"extra keys, causal + padding",
         {.batch = 4, .heads = 1, .q_len = 8, .head_dim = 1, .causal = 1, .extra_len = 1},
         lens4},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        check_visibility(cases[c].what, &cases[c].p, cases[c].seq_lens);
        if (cases[c].p.summary_block > 0) { /* the left-over keys as a block of their own */
            clattn_problem own = cases[c].p;
            own.summary_tail = CLATTN_SUMMARY_TAIL_OWN;
            char what[160];
            snprintf(what, sizeof what, "%s, tail own", cases[c].what);
            check_visibility(what, &own, cases[c].seq_lens);
        }
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Set probes: with Q = K = 1 every visible key has the same logit, and with V = identity       */
/* (Dv = Nk) output column j is 1/|S| exactly when j is in S: the output spells out the set.    */

static void probe(const char *what, clattn_problem in, const int *seq_lens)
{
    in.head_dim = 2;
    in.value_dim = in.kv_len != 0 ? in.kv_len : in.q_len;
    check_visibility(what, &in, seq_lens); /* the library's rule, on the same set */
    fixture f;
    fixture_make(&f, &in, seq_lens);
    const clattn_problem *p = &f.p;
    for (size_t e = 0; e < q_count(p); e++)
        f.q[e] = 1.0f;
    for (size_t e = 0; e < k_count(p); e++)
        f.k[e] = 1.0f;
    for (size_t e = 0; e < v_count(p); e++)
        f.v[e] = (e / (size_t)p->value_dim) % (size_t)p->kv_len == e % (size_t)p->value_dim ? 1.0f : 0.0f;
    if (fixture_run(&f) == CLATTN_STATUS_OK) {
        unsigned char mask[MAX_KEYS];
        for (int b = 0; b < p->batch; b++)
            for (int h = 0; h < p->heads; h++)
                for (int i = 0; i < p->q_len; i++) {
                    const int slice = b * p->heads + h;
                    const int count = expected_set(p, clattn__valid_keys(p, seq_lens, b), i, mask);
                    double want[MAX_KEYS];
                    for (int j = 0; j < p->kv_len; j++)
                        want[j] = mask[j] ? 1.0 / count : 0.0;
                    const double want_lse = count ? p->scale * p->head_dim + log((double)count) : -INFINITY;
                    check_row(&f, what, slice, i, want, want_lse, 1e-6);
                }
    }
    fixture_free(&f);
}

static void test_probe_sequence_patterns(void)
{
    probe("causal", (clattn_problem){.batch = 1, .heads = 2, .q_len = 7, .causal = 1}, NULL);
    probe("causal, Nq < Nk", (clattn_problem){.batch = 1, .heads = 1, .q_len = 3, .kv_len = 7, .causal = 1}, NULL);
    /* Nq > Nk: the first rows sit before every key, so causal leaves them nothing. */
    probe("causal, Nq > Nk", (clattn_problem){.batch = 1, .heads = 1, .q_len = 5, .kv_len = 3, .causal = 1}, NULL);
    probe("window (2, 1)",
          (clattn_problem){.batch = 1, .heads = 1, .q_len = 9, .window = 1, .window_left = 2, .window_right = 1}, NULL);
    probe("window (3, 2), Nq < Nk",
          (clattn_problem){
              .batch = 1, .heads = 1, .q_len = 4, .kv_len = 10, .window = 1, .window_left = 3, .window_right = 2},
          NULL);
    probe("window (5, 4) dilation 2",
          (clattn_problem){
              .batch = 1, .heads = 1, .q_len = 12, .window = 1, .window_left = 5, .window_right = 4, .dilation = 2},
          NULL);

    static const int globals[] = {5, 0, 9};
    probe("window (2, 1) dilation 2 + global",
          (clattn_problem){.batch = 1,
                           .heads = 1,
                           .q_len = 12,
                           .window = 1,
                           .window_left = 2,
                           .window_right = 1,
                           .dilation = 2,
                           .global_idx = globals,
                           .num_global = 3},
          NULL);
    static const int lens[] = {12, 8, 0};
    probe("window (3, 0) + global + causal + padding",
          (clattn_problem){.batch = 3,
                           .heads = 2,
                           .kv_heads = 1,
                           .q_len = 12,
                           .causal = 1,
                           .window = 1,
                           .window_left = 3,
                           .window_right = 0,
                           .global_idx = globals,
                           .num_global = 3},
          lens);
    probe("global + causal, Nq < Nk",
          (clattn_problem){.batch = 1,
                           .heads = 1,
                           .q_len = 4,
                           .kv_len = 12,
                           .causal = 1,
                           .window = 1,
                           .window_left = 1,
                           .window_right = 1,
                           .global_idx = globals,
                           .num_global = 3},
          NULL);
}

static void test_probe_grid_patterns(void)
{
    const clattn_problem grid = {.batch = 1, .heads = 1, .q_len = 20, .grid_h = 4, .grid_w = 5};
    clattn_problem p = grid;
    p.grid_pattern = CLATTN_GRID_AXIAL_ROW;
    probe("axial row 4x5", p, NULL);
    p.grid_pattern = CLATTN_GRID_AXIAL_COLUMN;
    probe("axial column 4x5", p, NULL);
    p.grid_pattern = CLATTN_GRID_CRISS_CROSS;
    probe("criss-cross 4x5", p, NULL);
    p.causal = 1;
    probe("criss-cross 4x5 causal", p, NULL);

    p = grid;
    p.grid_pattern = CLATTN_GRID_NEIGHBORHOOD;
    p.grid_kernel_h = p.grid_kernel_w = 3;
    p.grid_dilation = 2;
    probe("neighborhood 3x3 dilation 2 on 4x5", p, NULL);
    p.grid_kernel_h = 2;
    p.grid_kernel_w = 4;
    p.grid_dilation = 1;
    probe("neighborhood 2x4 on 4x5", p, NULL);
    /* Longer groups, so that the clamp at the far border matters. */
    p.grid_h = 5;
    p.grid_w = 9;
    p.q_len = 45;
    p.grid_kernel_h = p.grid_kernel_w = 3;
    p.grid_dilation = 2;
    probe("neighborhood 3x3 dilation 2 on 5x9", p, NULL);
    p.grid_kernel_h = 2;
    p.grid_dilation = 3;
    probe("neighborhood 2x3 dilation 3 on 5x9", p, NULL);

    p = grid;
    p.grid_pattern = CLATTN_GRID_NEIGHBORHOOD;
    p.grid_kernel_h = p.grid_kernel_w = 3;
    static const int lens[] = {13, 20};
    p.batch = 2;
    p.causal = 1;
    probe("neighborhood 3x3 causal + padding on 4x5", p, lens);

    p = grid;
    p.grid_pattern = CLATTN_GRID_WINDOW;
    p.grid_window_size = 2;
    p.grid_shift = 1;
    probe("Swin M=2 shift 1 on 4x5", p, NULL);
    p.grid_window_size = 3;
    p.grid_shift = 0;
    probe("Swin M=3 shift 0 on 4x5", p, NULL);
    p.grid_h = 5;
    p.grid_w = 9;
    p.q_len = 45;
    p.grid_shift = 2;
    probe("Swin M=3 shift 2 on 5x9", p, NULL);
}

/* The brute force above is checked in turn against sets worked out by hand from SPEC.md. */
static void check_literal_set(const char *what, const clattn_problem *p, int t, const int *want, int n)
{
    unsigned char mask[MAX_KEYS], want_mask[MAX_KEYS] = {0};
    for (int e = 0; e < n; e++)
        want_mask[want[e]] = 1;
    expected_set(p, p->kv_len, t, mask);
    CHECK(memcmp(mask, want_mask, (size_t)p->kv_len) == 0, "%s: brute-force set of token %d differs from SPEC", what,
          t);
}

static void test_literal_grid_sets(void)
{
    clattn_problem p = {.batch = 1,
                        .heads = 1,
                        .q_len = 20,
                        .kv_len = 20,
                        .grid_h = 4,
                        .grid_w = 5,
                        .grid_pattern = CLATTN_GRID_NEIGHBORHOOD,
                        .grid_kernel_h = 3,
                        .grid_kernel_w = 3,
                        .grid_dilation = 2};
    /* (0,0): row group {0, 2} is shorter than the kernel (all of it); column group {0, 2, 4}. */
    check_literal_set("neighborhood", &p, 0, (const int[]){0, 2, 4, 10, 12, 14}, 6);
    /* (3,3): rows {1, 3}, columns {1, 3}. */
    check_literal_set("neighborhood", &p, 18, (const int[]){6, 8, 16, 18}, 4);
    clattn_problem wide = p;
    wide.grid_h = 5;
    wide.grid_w = 9;
    wide.q_len = wide.kv_len = 45;
    /* (0,8): rows {0, 2, 4}; column group {0, 2, 4, 6, 8} ends in {4, 6, 8}. */
    check_literal_set("neighborhood", &wide, 8, (const int[]){4, 6, 8, 22, 24, 26, 40, 42, 44}, 9);
    p.grid_dilation = 1;
    /* (0,4): rows 0..2, columns shifted inward to 2..4. */
    check_literal_set("neighborhood", &p, 4, (const int[]){2, 3, 4, 7, 8, 9, 12, 13, 14}, 9);
    p.grid_pattern = CLATTN_GRID_WINDOW;
    p.grid_window_size = 2;
    p.grid_shift = 1;
    /* Regions: rows {0} {1,2} {3}, columns {0} {1,2} {3,4}. */
    check_literal_set("Swin", &p, 0, (const int[]){0}, 1);
    check_literal_set("Swin", &p, 12, (const int[]){6, 7, 11, 12}, 4);
    check_literal_set("Swin", &p, 19, (const int[]){18, 19}, 2);
    p.grid_pattern = CLATTN_GRID_CRISS_CROSS;
    check_literal_set("criss-cross", &p, 7, (const int[]){2, 5, 6, 7, 8, 9, 12, 17}, 8);
}

/* ------------------------------------------------------------------------------------------- */
/* Hand-computed values.                                                                        */

/* N = 2, D = 1: logits s_ij = scale q_i k_j, so every output is a two-term formula. */
static void test_hand_two_keys(void)
{
    static const float q[] = {1.0f, -2.0f}, k[] = {3.0f, 1.0f}, v[] = {2.0f, -1.0f};
    for (int causal = 0; causal <= 1; causal++)
        for (int custom = 0; custom <= 1; custom++) {
            const double scale = custom ? 0.5 : 1.0; /* default: 1 / sqrt(D) = 1 */
            fixture f;
            fixture_make(
                &f,
                &(clattn_problem){
                    .batch = 1, .heads = 1, .q_len = 2, .head_dim = 1, .causal = causal, .scale = custom ? 0.5f : 0.0f},
                NULL);
            memcpy(f.q, q, sizeof q);
            memcpy(f.k, k, sizeof k);
            memcpy(f.v, v, sizeof v);
            if (fixture_run(&f) == CLATTN_STATUS_OK)
                for (int i = 0; i < 2; i++) {
                    const double e0 = exp(scale * q[i] * k[0]), e1 = exp(scale * q[i] * k[1]);
                    const int sees_second = !causal || i == 1;
                    const double want = sees_second ? (e0 * v[0] + e1 * v[1]) / (e0 + e1) : v[0];
                    const double want_lse = sees_second ? log(e0 + e1) : scale * q[i] * k[0];
                    check_row(&f, causal ? "hand, causal" : "hand, dense", 0, i, &want, want_lse, 1e-6);
                }
            fixture_free(&f);
        }

    /* One decode query over two keys sits at the last position: causal keeps both. */
    fixture f;
    fixture_make(&f, &(clattn_problem){.batch = 1, .heads = 1, .q_len = 1, .kv_len = 2, .head_dim = 1, .causal = 1},
                 NULL);
    f.q[0] = q[1];
    memcpy(f.k, k, sizeof k);
    memcpy(f.v, v, sizeof v);
    if (fixture_run(&f) == CLATTN_STATUS_OK) {
        const double e0 = exp(q[1] * k[0]), e1 = exp(q[1] * k[1]);
        const double want = (e0 * v[0] + e1 * v[1]) / (e0 + e1);
        check_row(&f, "hand, decode", 0, 0, &want, log(e0 + e1), 1e-6);
    }
    fixture_free(&f);
}

/* ------------------------------------------------------------------------------------------- */
/* Identities between patterns: the same set reached by two rules gives the same bits.          */

/* Runs `a` and `b` on the same inputs and requires identical outputs and LSE. */
static void check_same(const char *what, const clattn_problem *a, const clattn_problem *b, const int *seq_lens)
{
    fixture fa, fb;
    fixture_make(&fa, a, seq_lens);
    fixture_make(&fb, b, seq_lens);
    copy_inputs(&fb, &fa);
    if (fixture_run(&fa) == CLATTN_STATUS_OK && fixture_run(&fb) == CLATTN_STATUS_OK) {
        CHECK(same_floats(fa.out, fb.out, o_count(&fa.p)), "%s: outputs differ", what);
        CHECK(same_floats(fa.lse, fb.lse, lse_count(&fa.p)), "%s: LSE differs", what);
    }
    fixture_free(&fb);
    fixture_free(&fa);
}

static void test_pattern_identities(void)
{
    static const int lens[] = {9, 4};
    const clattn_problem dense = {.batch = 2, .heads = 2, .q_len = 9, .head_dim = 3, .value_dim = 5};
    clattn_problem wide = dense, causal = dense, left = dense, all_global = dense;
    wide.window = 1;
    wide.window_left = wide.window_right = 20;
    check_same("window wider than the sequence vs dense", &wide, &dense, lens);

    causal.causal = 1;
    left.window = 1;
    left.window_left = 9;
    check_same("window (N, 0) vs causal", &left, &causal, lens);

    static const int every[] = {8, 3, 0, 1, 2, 7, 4, 5, 6};
    all_global.window = 1;
    all_global.global_idx = every;
    all_global.num_global = 9;
    check_same("every token global vs dense", &all_global, &dense, lens);
    all_global.causal = 1;
    check_same("every token global vs dense, causal", &all_global, &causal, lens);
}

/* Grouped-query attention equals multi-head attention with each kv head copied to its group. */
static void test_gqa_mapping(void)
{
    const clattn_problem gqa = {
        .batch = 2, .heads = 6, .kv_heads = 2, .q_len = 5, .kv_len = 7, .head_dim = 3, .value_dim = 2, .causal = 1};
    clattn_problem mha = gqa;
    mha.kv_heads = 6;
    fixture fg, fm;
    fixture_make(&fg, &gqa, NULL);
    fixture_make(&fm, &mha, NULL);
    memcpy(fm.q, fg.q, q_count(&fg.p) * sizeof(float));
    const clattn_problem *p = &fg.p;
    for (int b = 0; b < p->batch; b++)
        for (int h = 0; h < p->heads; h++) {
            const int kvh = h / 3; /* heads 0-2 read kv head 0, heads 3-5 kv head 1 */
            memcpy(at(fm.k, b * 6 + h, p->kv_len, 0, p->head_dim), at(fg.k, b * 2 + kvh, p->kv_len, 0, p->head_dim),
                   (size_t)p->kv_len * p->head_dim * sizeof(float));
            memcpy(at(fm.v, b * 6 + h, p->kv_len, 0, p->value_dim), at(fg.v, b * 2 + kvh, p->kv_len, 0, p->value_dim),
                   (size_t)p->kv_len * p->value_dim * sizeof(float));
        }
    if (fixture_run(&fg) == CLATTN_STATUS_OK && fixture_run(&fm) == CLATTN_STATUS_OK) {
        CHECK(same_floats(fg.out, fm.out, o_count(p)), "GQA: output differs from MHA with copied kv heads");
        CHECK(same_floats(fg.lse, fm.lse, lse_count(p)), "GQA: LSE differs from MHA with copied kv heads");
    }
    fixture_free(&fm);
    fixture_free(&fg);
}

/* Extra keys in a dense problem equal the same keys appended to K and V. */
static void test_extra_keys_append(void)
{
    const clattn_problem with_extra = {
        .batch = 2, .heads = 2, .q_len = 5, .head_dim = 3, .value_dim = 4, .extra_len = 3};
    const clattn_problem appended = {.batch = 2, .heads = 2, .q_len = 5, .kv_len = 8, .head_dim = 3, .value_dim = 4};
    fixture fx, fa;
    fixture_make(&fx, &with_extra, NULL);
    fixture_make(&fa, &appended, NULL);
    memcpy(fa.q, fx.q, q_count(&fx.p) * sizeof(float));
    for (int s = 0; s < 4; s++) {
        memcpy(at(fa.k, s, 8, 0, 3), at(fx.k, s, 5, 0, 3), 5 * 3 * sizeof(float));
        memcpy(at(fa.k, s, 8, 5, 3), at(fx.kx, s, 3, 0, 3), 3 * 3 * sizeof(float));
        memcpy(at(fa.v, s, 8, 0, 4), at(fx.v, s, 5, 0, 4), 5 * 4 * sizeof(float));
        memcpy(at(fa.v, s, 8, 5, 4), at(fx.vx, s, 3, 0, 4), 3 * 4 * sizeof(float));
    }
    if (fixture_run(&fx) == CLATTN_STATUS_OK && fixture_run(&fa) == CLATTN_STATUS_OK) {
        for (size_t e = 0; e < o_count(&fx.p); e++)
            CHECK(fabs(fx.out[e] - fa.out[e]) <= 1e-6, "extra keys vs appended: out[%zu] = %.9g vs %.9g", e, fx.out[e],
                  fa.out[e]);
        for (size_t e = 0; e < lse_count(&fx.p); e++)
            CHECK(fabs(fx.lse[e] - fa.lse[e]) <= 1e-6, "extra keys vs appended: lse[%zu] = %.9g vs %.9g", e, fx.lse[e],
                  fa.lse[e]);
    }
    fixture_free(&fa);
    fixture_free(&fx);
}

/* ------------------------------------------------------------------------------------------- */
/* Summary tokens, extra keys, padding and global projections against the naive model.         */

/* Summary block b = 1: each key's block mean is the key itself, so the softmax runs over every
 * key twice. */
static void test_summary_block_one(void)
{
    for (int causal = 0; causal <= 1; causal++) {
        fixture f;
        fixture_make(&f,
                     &(clattn_problem){.batch = 1,
                                       .heads = 2,
                                       .kv_heads = 1,
                                       .q_len = 6,
                                       .head_dim = 3,
                                       .value_dim = 4,
                                       .causal = causal,
                                       .summary_block = 1},
                     NULL);
        const clattn_problem *p = &f.p;
        if (fixture_run(&f) == CLATTN_STATUS_OK)
            for (int h = 0; h < 2; h++)
                for (int i = 0; i < 6; i++) {
                    key_list list = {.d = 3, .dv = 4};
                    for (int copy = 0; copy < 2; copy++)
                        for (int j = 0; j < 6; j++)
                            if (!causal || j <= i)
                                key_list_add(&list, at(f.k, 0, 6, j, 3), at(f.v, 0, 6, j, 4));
                    double want[MAX_DIM];
                    const double want_lse = naive_attend(at(f.q, h, 6, i, 3), p->scale, &list, want);
                    check_row(&f, causal ? "summary b=1, causal" : "summary b=1", h, i, want, want_lse, 1e-6);
                }
        fixture_free(&f);
    }
}

/* Block means per batch entry's valid length (blocks with and without left-over keys, fewer keys
 * than one block, none), under both tail rules, with the causal visibility rule, extra keys, GQA,
 * Nq < Nk and padding rows, all in one problem. */
static void test_summary_extra_padding(void)
{
    static const int lens[] = {8, 7, 6, 5, 2, 0};
    enum { entries = 6 };
    for (int tail = CLATTN_SUMMARY_TAIL_MERGE; tail <= CLATTN_SUMMARY_TAIL_OWN; tail++) {
        fixture f;
        fixture_make(&f,
                     &(clattn_problem){.batch = entries,
                                       .heads = 2,
                                       .kv_heads = 1,
                                       .q_len = 5,
                                       .kv_len = 8,
                                       .head_dim = 3,
                                       .value_dim = 2,
                                       .causal = 1,
                                       .summary_block = 3,
                                       .extra_len = 2,
                                       .summary_tail = (clattn_summary_tail)tail},
                     lens);
        const clattn_problem *p = &f.p;
        const char *what = tail ? "summary (tail own) + extra + padding" : "summary (tail merged) + extra + padding";
        if (fixture_run(&f) == CLATTN_STATUS_OK)
            for (int b = 0; b < entries; b++) {
                const int valid = lens[b];
                float means_k[MAX_KEYS][MAX_DIM], means_v[MAX_KEYS][MAX_DIM];
                const int blocks = summary_blocks(p, valid);
                for (int c = 0; c < blocks; c++) {
                    const int lo = c * 3, n = summary_last_key(p, valid, c) + 1 - lo;
                    for (int e = 0; e < 3; e++) {
                        double sum = 0.0;
                        for (int j = lo; j < lo + n; j++)
                            sum += at(f.k, b, 8, j, 3)[e];
                        means_k[c][e] = (float)(sum / n);
                    }
                    for (int e = 0; e < 2; e++) {
                        double sum = 0.0;
                        for (int j = lo; j < lo + n; j++)
                            sum += at(f.v, b, 8, j, 2)[e];
                        means_v[c][e] = (float)(sum / n);
                    }
                }
                for (int h = 0; h < 2; h++)
                    for (int i = 0; i < 5; i++) {
                        const int pos = i + 3;
                        key_list list = {.d = 3, .dv = 2};
                        if (pos < valid) {
                            for (int j = 0; j <= pos; j++)
                                key_list_add(&list, at(f.k, b, 8, j, 3), at(f.v, b, 8, j, 2));
                            for (int c = 0; c < blocks; c++)
                                if (expected_summary(p, valid, pos, c))
                                    key_list_add(&list, means_k[c], means_v[c]);
                            for (int x = 0; x < 2; x++)
                                key_list_add(&list, at(f.kx, b, 2, x, 3), at(f.vx, b, 2, x, 2));
                        }
                        double want[MAX_DIM];
                        const double want_lse = naive_attend(at(f.q, b * 2 + h, 5, i, 3), p->scale, &list, want);
                        check_row(&f, what, b * 2 + h, i, want, want_lse, 1e-6);
                    }
            }
        fixture_free(&f);
    }
}

/* Padding: rows past seq_len give exactly 0 and -inf; the others ignore keys past seq_len. */
static void test_padding(void)
{
    static const int lens[] = {5, 2, 0};
    fixture f;
    fixture_make(&f, &(clattn_problem){.batch = 3, .heads = 1, .q_len = 5, .head_dim = 2, .value_dim = 3}, lens);
    const clattn_problem *p = &f.p;
    if (fixture_run(&f) == CLATTN_STATUS_OK)
        for (int b = 0; b < 3; b++)
            for (int i = 0; i < 5; i++) {
                key_list list = {.d = 2, .dv = 3};
                for (int j = 0; j < lens[b] && i < lens[b]; j++)
                    key_list_add(&list, at(f.k, b, 5, j, 2), at(f.v, b, 5, j, 3));
                double want[MAX_DIM];
                const double want_lse = naive_attend(at(f.q, b, 5, i, 2), p->scale, &list, want);
                check_row(&f, "padding", b, i, want, want_lse, i < lens[b] ? 1e-6 : 0.0);
            }
    fixture_free(&f);
}

/* Longformer's global projection: global rows are dense attention of Qg over Kg, Vg (causal and
 * padding only, no summary or extra keys); every other row is what it is without Qg, Kg, Vg. */
static void test_global_qkv(void)
{
    static const int globals[] = {6, 2};
    static const int lens[] = {7};
    const clattn_problem shared = {.batch = 1,
                                   .heads = 2,
                                   .q_len = 8,
                                   .head_dim = 3,
                                   .value_dim = 2,
                                   .causal = 1,
                                   .window = 1,
                                   .window_left = 1,
                                   .window_right = 1,
                                   .global_idx = globals,
                                   .num_global = 2,
                                   .summary_block = 2,
                                   .extra_len = 2};
    clattn_problem separate = shared;
    separate.global_qkv = 1;
    fixture fs, fp;
    fixture_make(&fp, &shared, lens);
    fixture_make(&fs, &separate, lens);
    copy_inputs(&fs, &fp);
    memcpy(fs.kx, fp.kx, x_count(&fp.p, 3) * sizeof(float));
    memcpy(fs.vx, fp.vx, x_count(&fp.p, 2) * sizeof(float));
    const clattn_problem *p = &fs.p;
    if (fixture_run(&fs) == CLATTN_STATUS_OK && fixture_run(&fp) == CLATTN_STATUS_OK)
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < 8; i++) {
                const size_t row = (size_t)h * 8 + i;
                if (i != 2 && i != 6) {
                    CHECK(same_floats(fs.out + row * 2, fp.out + row * 2, 2) && fs.lse[row] == fp.lse[row],
                          "global_qkv: non-global row %d of head %d changed", i, h);
                    continue;
                }
                key_list list = {.d = 3, .dv = 2};
                for (int j = 0; j <= i && j < lens[0]; j++)
                    key_list_add(&list, at(fs.kg, h, 8, j, 3), at(fs.vg, h, 8, j, 2));
                double want[MAX_DIM];
                const double want_lse = naive_attend(at(fs.qg, h, 8, i, 3), p->scale, &list, want);
                check_row(&fs, "global_qkv global row", h, i, want, want_lse, 1e-6);
            }
    fixture_free(&fs);
    fixture_free(&fp);
}

/* ------------------------------------------------------------------------------------------- */
/* Robustness.                                                                                  */

/* Inputs of magnitude 1e4: logits near 1e9, finite outputs inside the range of V (a convex
 * combination), finite LSE. */
static void test_large_inputs(void)
{
    fixture f;
    fixture_make(
        &f,
        &(clattn_problem){
            .batch = 1, .heads = 2, .q_len = 6, .head_dim = 4, .value_dim = 3, .causal = 1, .summary_block = 2},
        NULL);
    const clattn_problem *p = &f.p;
    for (size_t e = 0; e < q_count(p); e++)
        f.q[e] *= 1e4f;
    for (size_t e = 0; e < k_count(p); e++)
        f.k[e] *= 1e4f;
    for (size_t e = 0; e < v_count(p); e++)
        f.v[e] *= 1e4f;
    if (fixture_run(&f) == CLATTN_STATUS_OK) {
        for (size_t e = 0; e < o_count(p); e++)
            CHECK(isfinite(f.out[e]) && fabs(f.out[e]) <= 1e4f, "large inputs: out[%zu] = %g", e, f.out[e]);
        for (size_t e = 0; e < lse_count(p); e++)
            CHECK(isfinite(f.lse[e]), "large inputs: lse[%zu] = %g", e, f.lse[e]);
    }
    fixture_free(&f);
}

/* LSE is optional; a missing required tensor is a status, not a crash. */
static void test_optional_and_missing_tensors(void)
{
    fixture f;
    fixture_make(&f, &(clattn_problem){.batch = 2, .heads = 2, .q_len = 4, .head_dim = 2, .extra_len = 1}, NULL);
    const clattn_problem *p = &f.p;
    fixture_run(&f);
    float *const with_lse = random_tensor(o_count(p));
    memcpy(with_lse, f.out, o_count(p) * sizeof(float));
    clattn_host_tensors t = {.q = host(f.q, q_count(p)),
                             .k = host(f.k, k_count(p)),
                             .v = host(f.v, v_count(p)),
                             .out = host(f.out, o_count(p)),
                             .kx = host(f.kx, x_count(p, 2)),
                             .vx = host(f.vx, x_count(p, 2))};
    clattn__error err = {{0}};
    memset(f.out, 0xff, o_count(p) * sizeof(float));
    CHECK(clattn__reference_run(p, &t, &err) == CLATTN_STATUS_OK, "run without LSE failed: %s", err.text);
    CHECK(same_floats(f.out, with_lse, o_count(p)), "the output changes when LSE is not requested");
    t.vx.data = NULL;
    CHECK(clattn__reference_run(p, &t, &err) == CLATTN_STATUS_NULL_ARGUMENT, "missing vx is not NULL_ARGUMENT");
    free(with_lse);
    fixture_free(&f);
}

int main(void)
{
    test_hand_two_keys();
    test_probe_sequence_patterns();
    test_probe_grid_patterns();
    test_literal_grid_sets();
    test_visibility();
    test_pattern_identities();
    test_gqa_mapping();
    test_extra_keys_append();
    test_summary_block_one();
    test_summary_extra_padding();
    test_padding();
    test_global_qkv();
    test_large_inputs();
    test_optional_and_missing_tensors();
    return check_exit();
}
