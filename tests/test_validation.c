/* Input validation (SPEC.md, "Inputs that are errors") through clattn_plan_create, _run_host and
 * _enqueue: each fault gives its own status and a fresh message naming the argument and its value,
 * leaves every output untouched, and an exactly-sized or one-byte-larger buffer passes, in float32
 * and (devices) in float16 storage, whose tensors but LSE take 2 bytes an element. */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "random.h"

#define SENTINEL 0x5A       /* every output byte before a call that must fail */
#define STALE_VALUE -424242 /* a value only the priming failure's message contains */

/* ------------------------------------------------------------------------------------------- */
/* Checking a status and the context's message                                                  */

/* Whether `word` occurs in text with no identifier character right before or after it. */
static int has_word(const char *text, const char *word)
{
    const size_t n = strlen(word);
    for (const char *at = strstr(text, word); at != NULL; at = strstr(at + 1, word)) {
        const char before = at > text ? at[-1] : ' ', after = at[n];
        const int ident_before = before == '_' || (before >= '0' && before <= '9') ||
                                 (before >= 'a' && before <= 'z') || (before >= 'A' && before <= 'Z');
        const int ident_after = after == '_' || (after >= '0' && after <= '9') || (after >= 'a' && after <= 'z') ||
                                (after >= 'A' && after <= 'Z');
        if (!ident_before && !ident_after)
            return 1;
    }
    return 0;
}

/* A check with no status of its own. */
static void report(int ok, const char *where, const char *what)
{
    check(ok, "%-9s      %s", where, what);
}

/* Leaves a known message in ctx, so that a later check can tell a fresh message from a stale one. */
static void prime_message(clattn_context *ctx)
{
    clattn_plan *plan = NULL;
    clattn_plan_create(ctx, &(clattn_problem){.batch = STALE_VALUE, .heads = 1, .q_len = 1, .head_dim = 1}, &plan);
    clattn_plan_free(plan);
}

/* One check: the status is `want`; a failure's message (when ctx can hold one) is fresh and names
 * `arg` and `value` (either may be NULL); `outputs_ok` says whether the outputs are as required. */
static void expect(const clattn_context *ctx, const char *where, const char *what, int got, int want, const char *arg,
                   const char *value, int outputs_ok)
{
    const char *msg = ctx != NULL ? clattn_context_message(ctx) : "";
    char stale[16];
    snprintf(stale, sizeof stale, "%d", STALE_VALUE);
    int ok = got == want && outputs_ok;
    if (ok && want != CLATTN_STATUS_OK && ctx != NULL)
        ok = !has_word(msg, stale) && (arg == NULL || has_word(msg, arg)) && (value == NULL || has_word(msg, value));
    check(ok, "%-9s %4d %s%s%s%s", where, got, what, outputs_ok ? "" : " OUTPUT OVERWRITTEN",
          got == CLATTN_STATUS_OK ? "" : ": ", got == CLATTN_STATUS_OK ? "" : msg);
    if (!ok)
        printf("     want status %d (%s), message naming '%s' and '%s'\n", want, clattn_status_string(want),
               arg ? arg : "-", value ? value : "-");
}

/* ------------------------------------------------------------------------------------------- */
/* Problems that are errors, at plan creation                                                   */

typedef struct {
    const char *name; /* NULL: unused */
    size_t offset;    /* of an int (or int-sized enum) field of clattn_problem */
    int value;
} field_set;

#define SET(field, v)                                                                                                  \
    {                                                                                                                  \
#field, offsetof(clattn_problem, field), (int)(v)                                                              \
    }
/* A grid problem over 12 tokens (Nq = Nk = 12) with grid h x w. */
#define GRID(pattern, h, w)                                                                                            \
    SET(q_len, 12), SET(kv_len, 12), SET(grid_pattern, CLATTN_GRID_##pattern), SET(grid_h, h), SET(grid_w, w)

typedef struct {
    field_set set[8];   /* applied over base_problem */
    const int *globals; /* global_idx, when not NULL */
    float scale;        /* when nonzero */
    int status;         /* wanted; OK cases show that the limits themselves pass */
    const char *arg, *value;
} problem_case;

/* B=2, H=4, Hkv=2, Nq=6, Nk=8, D=16, Dv=8. */
static const clattn_problem base_problem = {
    .batch = 2, .heads = 4, .kv_heads = 2, .q_len = 6, .kv_len = 8, .head_dim = 16, .value_dim = 8};

static const int globals_past_end[] = {3, 8}, globals_negative[] = {-1}, globals_repeated[] = {2, 5, 2};
static const int globals_ok[] = {7, 0};

#define S(name) CLATTN_STATUS_##name
static const problem_case problem_cases[] = {
    {{SET(batch, 0)}, NULL, 0, S(INVALID_SIZE), "batch", "0"},
    {{SET(batch, -1)}, NULL, 0, S(INVALID_SIZE), "batch", "-1"},
    {{SET(heads, 0)}, NULL, 0, S(INVALID_SIZE), "heads", "0"},
    {{SET(heads, -4)}, NULL, 0, S(INVALID_SIZE), "heads", "-4"},
    {{SET(kv_heads, -2)}, NULL, 0, S(INVALID_SIZE), "kv_heads", "-2"},
    {{SET(q_len, 0)}, NULL, 0, S(INVALID_SIZE), "q_len", "0"},
    {{SET(q_len, -6)}, NULL, 0, S(INVALID_SIZE), "q_len", "-6"},
    {{SET(kv_len, -1)}, NULL, 0, S(INVALID_SIZE), "kv_len", "-1"},
    {{SET(head_dim, 0)}, NULL, 0, S(INVALID_SIZE), "head_dim", "0"},
    {{SET(head_dim, -16)}, NULL, 0, S(INVALID_SIZE), "head_dim", "-16"},
    {{SET(value_dim, -8)}, NULL, 0, S(INVALID_SIZE), "value_dim", "-8"},
    {{SET(num_global, -1)}, NULL, 0, S(INVALID_SIZE), "num_global", "-1"},
    {{SET(extra_len, -1)}, NULL, 0, S(INVALID_SIZE), "extra_len", "-1"},
    {{{0}}, NULL, NAN, S(INVALID_SIZE), "scale", "nan"},
    {{{0}}, NULL, INFINITY, S(INVALID_SIZE), "scale", "inf"},
    {{SET(kv_heads, 3)}, NULL, 0, S(INVALID_HEADS), "kv_heads", "3"},
    {{SET(heads, 5)}, NULL, 0, S(INVALID_HEADS), "heads", "5"},
    {{SET(window, 1), SET(window_left, -1), SET(window_right, 2)}, NULL, 0, S(INVALID_WINDOW), "window", "-1"},
    {{SET(window, 1), SET(window_left, 3), SET(window_right, -3)}, NULL, 0, S(INVALID_WINDOW), "window", "-3"},
    {{SET(window, 1), SET(window_left, 2), SET(window_right, 2), SET(dilation, -1)},
     NULL,
     0,
     S(INVALID_DILATION),
     "dilation",
     "-1"},
    {{SET(dilation, -3)}, NULL, 0, S(INVALID_DILATION), "dilation", "-3"},
    {{SET(summary_block, -1)}, NULL, 0, S(INVALID_BLOCK), "summary_block", "-1"},
    {{SET(summary_block, 3), SET(summary_tail, 2)}, NULL, 0, S(INVALID_PATTERN), "summary_tail", "2"},
    {{SET(summary_tail, 1)}, NULL, 0, S(INVALID_PATTERN), "summary_tail", "1"},
    {{SET(num_global, 2)}, globals_past_end, 0, S(INVALID_GLOBAL_INDEX), "global_idx", "8"},
    {{SET(num_global, 1)}, globals_negative, 0, S(INVALID_GLOBAL_INDEX), "global_idx", "-1"},
    {{SET(num_global, 3)}, globals_repeated, 0, S(INVALID_GLOBAL_INDEX), "global_idx", "2"},
    {{SET(num_global, 2)}, NULL, 0, S(NULL_ARGUMENT), "global_idx", "NULL"},
    {{GRID(AXIAL_ROW, 3, 5)}, NULL, 0, S(INVALID_GRID), "grid", "5"},
    {{GRID(CRISS_CROSS, 0, 4)}, NULL, 0, S(INVALID_GRID), "grid", "0"},
    {{GRID(AXIAL_COLUMN, 3, 4), SET(kv_len, 8)}, NULL, 0, S(INVALID_GRID), "kv_len", "8"},
    {{GRID(NEIGHBORHOOD, 3, 4), SET(grid_kernel_h, 0), SET(grid_kernel_w, 3)},
     NULL,
     0,
     S(INVALID_KERNEL_SIZE),
     "kernel",
     "0"},
    {{GRID(NEIGHBORHOOD, 3, 4), SET(grid_kernel_h, 3), SET(grid_kernel_w, -1)},
     NULL,
     0,
     S(INVALID_KERNEL_SIZE),
     "kernel",
     "-1"},
    {{GRID(NEIGHBORHOOD, 3, 4), SET(grid_kernel_h, 3), SET(grid_kernel_w, 3), SET(grid_dilation, -1)},
     NULL,
     0,
     S(INVALID_DILATION),
     "grid_dilation",
     "-1"},
    {{GRID(WINDOW, 3, 4), SET(grid_window_size, 0)}, NULL, 0, S(INVALID_KERNEL_SIZE), "grid_window_size", "0"},
    {{GRID(WINDOW, 3, 4), SET(grid_window_size, 2), SET(grid_shift, -1)},
     NULL,
     0,
     S(INVALID_SHIFT),
     "grid_shift",
     "-1"},
    {{GRID(WINDOW, 3, 4), SET(grid_window_size, 2), SET(grid_shift, 2)}, NULL, 0, S(INVALID_SHIFT), "grid_shift", "2"},
    {{SET(head_dim, 257)}, NULL, 0, S(UNSUPPORTED_HEAD_DIM), "head_dim", "257"},
    {{SET(value_dim, 300)}, NULL, 0, S(UNSUPPORTED_HEAD_DIM), "value_dim", "300"},
    /* 2^56 elements: the byte count fits in size_t, a 32-bit element index does not. */
    {{SET(batch, 65536), SET(heads, 65536), SET(kv_heads, 0), SET(q_len, 65536), SET(kv_len, 0), SET(head_dim, 256),
      SET(value_dim, 0)},
     NULL,
     0,
     S(SIZE_OVERFLOW),
     NULL,
     "65536"},
    /* 2^96 elements: the byte count itself overflows size_t. */
    {{SET(batch, 1 << 30), SET(heads, 1 << 30), SET(kv_heads, 0), SET(q_len, 1 << 28), SET(kv_len, 0),
      SET(head_dim, 256), SET(value_dim, 0)},
     NULL,
     0,
     S(SIZE_OVERFLOW),
     NULL,
     "1073741824"},
    /* Q of exactly 2^31 elements, one more than a 32-bit index reaches. */
    {{SET(batch, 1), SET(heads, 1), SET(kv_heads, 1), SET(q_len, 1 << 27), SET(kv_len, 1)},
     NULL,
     0,
     S(SIZE_OVERFLOW),
     NULL,
     "134217728"},
    {{SET(q_len, (1 << 28) + 1)}, NULL, 0, S(SIZE_OVERFLOW), "q_len", "268435457"},
    {{SET(kv_len, (1 << 28) + 1)}, NULL, 0, S(SIZE_OVERFLOW), "kv_len", "268435457"},
    {{SET(extra_len, (1 << 28) + 1)}, NULL, 0, S(SIZE_OVERFLOW), "extra_len", "268435457"},
    {{SET(extra_len, 1 << 28)}, NULL, 0, S(SIZE_OVERFLOW), "extra_len", "268435456"},
    {{SET(global_qkv, 1)}, NULL, 0, S(INVALID_PATTERN), "global_qkv", "1"},
    {{SET(dilation, 2)}, NULL, 0, S(INVALID_PATTERN), "dilation", "2"},
    {{GRID(AXIAL_ROW, 3, 4), SET(window, 1)}, NULL, 0, S(INVALID_PATTERN), "grid_pattern", NULL},
    {{SET(grid_pattern, 99)}, NULL, 0, S(INVALID_PATTERN), "grid_pattern", "99"},
    {{SET(dtype, 7)}, NULL, 0, S(INVALID_DTYPE), "dtype", "7"},
    {{SET(dtype, -1)}, NULL, 0, S(INVALID_DTYPE), "dtype", "-1"},
    /* Limits that must pass: zero fields are defaults (dilation 0 is 1), the largest head dim,
     * a shift of M - 1, empty window sides, global tokens at both ends. */
    {{SET(kv_heads, 0), SET(kv_len, 0), SET(value_dim, 0), SET(summary_block, 0)}, NULL, 0, S(OK), NULL, NULL},
    {{SET(window, 1), SET(window_left, 0), SET(window_right, 0), SET(dilation, 0)}, NULL, 0, S(OK), NULL, NULL},
    {{SET(head_dim, 256), SET(value_dim, 256)}, NULL, 0, S(OK), NULL, NULL},
    {{SET(num_global, 2)}, globals_ok, 0, S(OK), NULL, NULL},
    {{SET(summary_block, 1), SET(extra_len, 1)}, NULL, 0, S(OK), NULL, NULL},
    {{GRID(WINDOW, 3, 4), SET(grid_window_size, 2), SET(grid_shift, 1)}, NULL, 0, S(OK), NULL, NULL},
};

static clattn_problem apply_case(const problem_case *c, char *what, size_t size)
{
    clattn_problem p = base_problem;
    size_t used = (size_t)snprintf(what, size, "plan_create");
    for (size_t i = 0; i < sizeof c->set / sizeof c->set[0] && c->set[i].name != NULL; i++) {
        memcpy((char *)&p + c->set[i].offset, &c->set[i].value, sizeof(int));
        if (used < size)
            used += (size_t)snprintf(what + used, size - used, " %s=%d", c->set[i].name, c->set[i].value);
    }
    if (c->globals != NULL)
        p.global_idx = c->globals;
    if (c->scale != 0.0f) {
        p.scale = c->scale;
        if (used < size)
            snprintf(what + used, size - used, " scale=%g", (double)c->scale);
    }
    return p;
}

static void check_problem_cases(clattn_context *ctx, const char *where)
{
    for (size_t i = 0; i < sizeof problem_cases / sizeof problem_cases[0]; i++) {
        const problem_case *c = &problem_cases[i];
        char what[160];
        const clattn_problem p = apply_case(c, what, sizeof what);
        const int want = c->status;               /* every pattern, 2-D grids included, on every device */
        clattn_plan *plan = (clattn_plan *)&plan; /* must come back NULL on failure */
        prime_message(ctx);
        const int s = clattn_plan_create(ctx, &p, &plan);
        const int plan_ok = s == CLATTN_STATUS_OK ? plan != NULL : plan == NULL;
        expect(ctx, where, what, s, want, c->arg, c->value, plan_ok);
        if (s == CLATTN_STATUS_OK)
            clattn_plan_free(plan);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Run-time arguments: a problem that needs every tensor                                        */

enum { T_Q, T_K, T_V, T_OUT, T_LSE, T_QG, T_KG, T_VG, T_KX, T_VX, T_COUNT };

typedef struct {
    const char *name;
    size_t host; /* offset of its clattn_host_tensor in clattn_host_tensors */
    size_t mem;  /* offset of its cl_mem in clattn_buffers */
    int required;
    int output;
} tensor_info;

#define TENSOR(name, required, output)                                                                                 \
    {                                                                                                                  \
#name, offsetof(clattn_host_tensors, name), offsetof(clattn_buffers, name), required, output                   \
    }
static const tensor_info tensor_infos[T_COUNT] = {
    TENSOR(q, 1, 0),  TENSOR(k, 1, 0),  TENSOR(v, 1, 0),  TENSOR(out, 1, 1), TENSOR(lse, 0, 1),
    TENSOR(qg, 1, 0), TENSOR(kg, 1, 0), TENSOR(vg, 1, 0), TENSOR(kx, 1, 0),  TENSOR(vx, 1, 0),
};

/* Global rows with their own Qg, Kg, Vg (global 6 is query row 4), extra keys, LSE. */
static const int run_globals[] = {6, 1};
static const clattn_problem run_problem = {.batch = 2,
                                           .heads = 4,
                                           .kv_heads = 2,
                                           .q_len = 6,
                                           .kv_len = 8,
                                           .head_dim = 16,
                                           .value_dim = 8,
                                           .global_idx = run_globals,
                                           .num_global = 2,
                                           .global_qkv = 1,
                                           .extra_len = 3};

/* Bytes each tensor of run_problem needs in storage type `dtype`, computed here from SPEC.md's
 * shapes and element types (LSE is float32 whatever the storage). */
static void tensor_needs(size_t *need, clattn_dtype dtype)
{
    const clattn_problem *p = &run_problem;
    const size_t f = dtype == CLATTN_DTYPE_F32 ? sizeof(float) : 2, bh = (size_t)p->batch * p->heads,
                 bhk = (size_t)p->batch * p->kv_heads;
    need[T_Q] = need[T_QG] = bh * p->q_len * p->head_dim * f;
    need[T_K] = need[T_KG] = bhk * p->kv_len * p->head_dim * f;
    need[T_V] = need[T_VG] = bhk * p->kv_len * p->value_dim * f;
    need[T_OUT] = bh * p->q_len * p->value_dim * f;
    need[T_LSE] = bh * p->q_len * sizeof(float);
    need[T_KX] = bhk * p->extra_len * p->head_dim * f;
    need[T_VX] = bhk * p->extra_len * p->value_dim * f;
}

/* What is done to one tensor of an otherwise valid call. */
typedef struct {
    const char *what;
    long delta; /* bytes beyond what the shape needs */
    int null;
} buffer_fault;

static const buffer_fault buffer_faults[] = {
    {"one byte short", -1, 0}, {"exact size", 0, 0}, {"one byte more", 1, 0}, {"null", 0, 1}};

static int fault_status(const buffer_fault *f, const tensor_info *t)
{
    if (f->null)
        return t->required ? CLATTN_STATUS_NULL_ARGUMENT : CLATTN_STATUS_OK;
    return f->delta < 0 ? CLATTN_STATUS_BUFFER_TOO_SMALL : CLATTN_STATUS_OK;
}

/* seq_lens of a run (B = 2, Nk = 8); the boundaries pass. */
typedef struct {
    int lens[2];
    int status;
    const char *value;
} seq_case;

static const seq_case seq_cases[] = {
    {{8, -1}, S(INVALID_SEQ_LEN), "-1"},
    {{9, 0}, S(INVALID_SEQ_LEN), "9"},
    {{0, 8}, S(OK), NULL},
};

/* The host tensors of run_problem in one storage type, each need + 1 bytes (inputs random bits:
 * normal floats, or as many bytes of them in 16-bit storage; outputs sentinel). */
typedef struct {
    const char *storage; /* harness_storage(dtype), in every check's description */
    size_t need[T_COUNT];
    unsigned char *data[T_COUNT];
} run_fixture;

static int fixture_make(run_fixture *f, clattn_dtype dtype)
{
    unsigned long long seed = 7;
    f->storage = harness_storage(dtype);
    tensor_needs(f->need, dtype);
    for (int i = 0; i < T_COUNT; i++) {
        f->data[i] = malloc(f->need[i] + 1);
        if (f->data[i] == NULL)
            return 0;
        random_normal((float *)f->data[i], f->need[i] / sizeof(float), &seed);
        f->data[i][f->need[i]] = 0;
    }
    return 1;
}

static void fixture_free(run_fixture *f)
{
    for (int i = 0; i < T_COUNT; i++)
        free(f->data[i]);
}

static void fill_host_outputs(run_fixture *f)
{
    memset(f->data[T_OUT], SENTINEL, f->need[T_OUT] + 1);
    memset(f->data[T_LSE], SENTINEL, f->need[T_LSE] + 1);
}

static int bytes_are(const unsigned char *x, size_t n, unsigned char value)
{
    for (size_t i = 0; i < n; i++)
        if (x[i] != value)
            return 0;
    return 1;
}

static int host_outputs_untouched(const run_fixture *f)
{
    return bytes_are(f->data[T_OUT], f->need[T_OUT] + 1, SENTINEL) &&
           bytes_are(f->data[T_LSE], f->need[T_LSE] + 1, SENTINEL);
}

static clattn_host_tensors host_tensors(const run_fixture *f)
{
    clattn_host_tensors t = {0};
    for (int i = 0; i < T_COUNT; i++)
        *(clattn_host_tensor *)((char *)&t + tensor_infos[i].host) = (clattn_host_tensor){f->data[i], f->need[i]};
    return t;
}

/* One host run with tensors t, checked for status, message and untouched outputs. */
static void check_host_run(clattn_plan *plan, clattn_context *ctx, run_fixture *f, const clattn_host_tensors *t,
                           const char *what, int want, const char *arg, const char *value)
{
    fill_host_outputs(f);
    prime_message(ctx);
    const int s = clattn_plan_run_host(plan, t);
    expect(ctx, "run_host", what, s, want, arg, value, s == CLATTN_STATUS_OK || host_outputs_untouched(f));
}

static void check_host_runs(clattn_context *ctx, clattn_plan *plan, run_fixture *f)
{
    char what[96], value[32];
    for (int i = 0; i < T_COUNT; i++)
        for (size_t k = 0; k < sizeof buffer_faults / sizeof buffer_faults[0]; k++) {
            const buffer_fault *fault = &buffer_faults[k];
            clattn_host_tensors t = host_tensors(f);
            clattn_host_tensor *x = (clattn_host_tensor *)((char *)&t + tensor_infos[i].host);
            x->bytes = (size_t)((long)x->bytes + fault->delta);
            if (fault->null)
                x->data = NULL;
            snprintf(what, sizeof what, "%s %s%s (%zu bytes)", tensor_infos[i].name, fault->what, f->storage, x->bytes);
            snprintf(value, sizeof value, "%zu", x->bytes);
            check_host_run(plan, ctx, f, &t, what, fault_status(fault, &tensor_infos[i]), tensor_infos[i].name,
                           fault->null ? "NULL" : value);
        }
    for (size_t k = 0; k < sizeof seq_cases / sizeof seq_cases[0]; k++) {
        clattn_host_tensors t = host_tensors(f);
        t.seq_lens = seq_cases[k].lens;
        snprintf(what, sizeof what, "seq_lens = {%d, %d}", seq_cases[k].lens[0], seq_cases[k].lens[1]);
        check_host_run(plan, ctx, f, &t, what, seq_cases[k].status, "seq_lens", seq_cases[k].value);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Device buffers through clattn_plan_enqueue                                                   */

typedef struct {
    clattn_context *ctx;
    cl_command_queue queue;
    cl_mem mem[T_COUNT]; /* exactly sized; outputs filled with the sentinel before each call */
    cl_mem odd;          /* the one buffer of a case that is not exactly sized */
} device_fixture;

static cl_mem make_buffer(const device_fixture *d, size_t bytes, const void *init)
{
    cl_int rc;
    cl_mem m = clCreateBuffer(clattn_context_cl_context(d->ctx), CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0),
                              bytes, (void *)init, &rc);
    return rc == CL_SUCCESS ? m : NULL;
}

static int fill_sentinel(const device_fixture *d, cl_mem m)
{
    const unsigned char pattern = SENTINEL;
    size_t bytes = 0;
    clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    return clEnqueueFillBuffer(d->queue, m, &pattern, 1, 0, bytes, 0, NULL, NULL) == CL_SUCCESS &&
           clFinish(d->queue) == CL_SUCCESS;
}

static int device_untouched(const device_fixture *d, cl_mem m)
{
    size_t bytes = 0;
    clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    unsigned char *x = malloc(bytes);
    const int ok = x != NULL && clEnqueueReadBuffer(d->queue, m, CL_TRUE, 0, bytes, x, 0, NULL, NULL) == CL_SUCCESS &&
                   bytes_are(x, bytes, SENTINEL);
    free(x);
    return ok;
}

/* Enqueues with buffers b; checks status, message, and (on failure) that outputs kept the sentinel. */
static void check_enqueue(device_fixture *d, clattn_plan *plan, const clattn_buffers *b, const char *what, int want,
                          const char *arg, const char *value)
{
    const cl_mem outs[] = {b->out, b->lse};
    int filled = 1;
    for (int i = 0; i < 2; i++)
        filled = filled && (outs[i] == NULL || fill_sentinel(d, outs[i]));
    prime_message(d->ctx);
    cl_event done = NULL;
    const int s = clattn_plan_enqueue(plan, d->queue, b, 0, NULL, &done);
    if (done != NULL) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
    }
    int untouched = filled;
    for (int i = 0; i < 2 && s != CLATTN_STATUS_OK; i++)
        untouched = untouched && (outs[i] == NULL || device_untouched(d, outs[i]));
    expect(d->ctx, "enqueue", what, s, want, arg, value, s == CLATTN_STATUS_OK || untouched);
}

static clattn_buffers device_buffers(const device_fixture *d)
{
    clattn_buffers b = {0};
    for (int i = 0; i < T_COUNT; i++)
        *(cl_mem *)((char *)&b + tensor_infos[i].mem) = d->mem[i];
    return b;
}

static void check_device_runs(device_fixture *d, clattn_plan *plan, const run_fixture *f)
{
    char what[96], value[32];
    for (int i = 0; i < T_COUNT; i++)
        for (size_t k = 0; k < sizeof buffer_faults / sizeof buffer_faults[0]; k++) {
            const buffer_fault *fault = &buffer_faults[k];
            const size_t bytes = (size_t)((long)f->need[i] + fault->delta);
            clattn_buffers b = device_buffers(d);
            cl_mem *slot = (cl_mem *)((char *)&b + tensor_infos[i].mem);
            d->odd = fault->null ? NULL : make_buffer(d, bytes, tensor_infos[i].output ? NULL : f->data[i]);
            *slot = d->odd;
            snprintf(what, sizeof what, "%s %s%s (CL_MEM_SIZE %zu)", tensor_infos[i].name, fault->what, f->storage,
                     fault->null ? (size_t)0 : bytes);
            snprintf(value, sizeof value, "%zu", bytes);
            if (!fault->null && d->odd == NULL)
                expect(d->ctx, "enqueue", what, -1, 0, NULL, NULL, 0); /* could not create the buffer */
            else
                check_enqueue(d, plan, &b, what, fault_status(fault, &tensor_infos[i]), tensor_infos[i].name,
                              fault->null ? "NULL" : value);
            if (d->odd != NULL)
                clReleaseMemObject(d->odd);
            d->odd = NULL;
        }
    for (size_t k = 0; k < sizeof seq_cases / sizeof seq_cases[0]; k++) {
        clattn_buffers b = device_buffers(d);
        b.seq_lens = seq_cases[k].lens;
        snprintf(what, sizeof what, "seq_lens = {%d, %d}", seq_cases[k].lens[0], seq_cases[k].lens[1]);
        check_enqueue(d, plan, &b, what, seq_cases[k].status, "seq_lens", seq_cases[k].value);
    }
}

static void device_fixture_free(device_fixture *d)
{
    for (int i = T_COUNT - 1; i >= 0; i--)
        if (d->mem[i] != NULL)
            clReleaseMemObject(d->mem[i]);
    if (d->queue != NULL)
        clReleaseCommandQueue(d->queue);
}

static void check_enqueue_buffers(clattn_context *ctx, clattn_plan *plan, const run_fixture *f)
{
    device_fixture d = {ctx, NULL, {0}, NULL};
    cl_int rc;
    d.queue = clCreateCommandQueue(clattn_context_cl_context(ctx), clattn_context_cl_device(ctx), 0, &rc);
    int ok = rc == CL_SUCCESS;
    for (int i = 0; i < T_COUNT && ok; i++)
        ok = (d.mem[i] = make_buffer(&d, f->need[i], tensor_infos[i].output ? NULL : f->data[i])) != NULL;
    if (ok)
        check_device_runs(&d, plan, f);
    else
        expect(ctx, "enqueue", "creating the exactly-sized buffers", rc, CLATTN_STATUS_OK, NULL, NULL, 0);
    device_fixture_free(&d);
}

/* ------------------------------------------------------------------------------------------- */
/* Null handles                                                                                 */

typedef struct {
    clattn_context *ctx;
    clattn_plan *plan;
    clattn_host_tensors tensors;
} call_args;

static int create_null_ctx(call_args *a)
{
    clattn_plan *plan = NULL;
    (void)a;
    return clattn_plan_create(NULL, &run_problem, &plan);
}
static int create_null_problem(call_args *a)
{
    clattn_plan *plan = NULL;
    return clattn_plan_create(a->ctx, NULL, &plan);
}
static int create_null_out(call_args *a)
{
    return clattn_plan_create(a->ctx, &run_problem, NULL);
}
static int run_null_plan(call_args *a)
{
    return clattn_plan_run_host(NULL, &a->tensors);
}
static int run_null_tensors(call_args *a)
{
    return clattn_plan_run_host(a->plan, NULL);
}
static int enqueue_null_plan(call_args *a)
{
    (void)a;
    return clattn_plan_enqueue(NULL, NULL, &(clattn_buffers){0}, 0, NULL, NULL);
}
static int enqueue_null_buffers(call_args *a)
{
    return clattn_plan_enqueue(a->plan, NULL, NULL, 0, NULL, NULL);
}
static int enqueue_null_wait(call_args *a)
{
    return clattn_plan_enqueue(a->plan, NULL, &(clattn_buffers){0}, 1, NULL, NULL);
}
static int enqueue_all_null(call_args *a)
{
    return clattn_plan_enqueue(a->plan, NULL, &(clattn_buffers){0}, 0, NULL, NULL);
}

typedef struct {
    const char *what;
    int (*call)(call_args *);
    int has_ctx;          /* the call names a context that can hold a message */
    int status;           /* wanted on a device */
    int reference_status; /* wanted on the reference device, where enqueue is UNSUPPORTED first */
    const char *arg;
} null_case;

static const null_case null_cases[] = {
    {"plan_create(NULL ctx)", create_null_ctx, 0, S(NULL_ARGUMENT), S(NULL_ARGUMENT), NULL},
    {"plan_create(NULL problem)", create_null_problem, 1, S(NULL_ARGUMENT), S(NULL_ARGUMENT), "problem"},
    {"plan_create(NULL out)", create_null_out, 1, S(NULL_ARGUMENT), S(NULL_ARGUMENT), "out"},
    {"run_host(NULL plan)", run_null_plan, 0, S(NULL_ARGUMENT), S(NULL_ARGUMENT), NULL},
    {"run_host(NULL tensors)", run_null_tensors, 1, S(NULL_ARGUMENT), S(NULL_ARGUMENT), "tensors"},
    {"enqueue(NULL plan)", enqueue_null_plan, 0, S(NULL_ARGUMENT), S(NULL_ARGUMENT), NULL},
    {"enqueue(NULL buffers)", enqueue_null_buffers, 1, S(NULL_ARGUMENT), S(NULL_ARGUMENT), "buffers"},
    {"enqueue(num_wait 1, NULL wait)", enqueue_null_wait, 1, S(NULL_ARGUMENT), S(UNSUPPORTED), "wait"},
    {"enqueue(all-NULL buffers)", enqueue_all_null, 1, S(NULL_ARGUMENT), S(UNSUPPORTED), "q"},
};

static void check_null_cases(clattn_context *ctx, clattn_plan *plan, const run_fixture *f, const char *where)
{
    call_args a = {ctx, plan, host_tensors(f)};
    const int reference = clattn_context_is_reference(ctx);
    for (size_t i = 0; i < sizeof null_cases / sizeof null_cases[0]; i++) {
        const null_case *c = &null_cases[i];
        const int want = reference ? c->reference_status : c->status;
        prime_message(ctx);
        const int s = c->call(&a);
        expect(c->has_ctx ? ctx : NULL, where, c->what, s, want, want == CLATTN_STATUS_UNSUPPORTED ? NULL : c->arg,
               NULL, 1);
    }
    clattn_plan_free(NULL); /* no-ops; a crash here fails the test */
    clattn_context_free(NULL);
    report(clattn_plan_scratch_bytes(NULL) == 0 && clattn_context_message(NULL) != NULL, where,
           "plan_free(NULL), context_free(NULL), plan_scratch_bytes(NULL) == 0, context_message(NULL) != NULL");
}

/* ------------------------------------------------------------------------------------------- */
/* Status strings                                                                               */

static void check_status_strings(void)
{
    static const struct {
        int value;
        const char *text;
    } table[] = {
#define STATUS_ROW_(name, value, text) {value, text},
        CLATTN_STATUS_TABLE(STATUS_ROW_)
#undef STATUS_ROW_
    };
    const size_t n = sizeof table / sizeof table[0];
    for (size_t i = 0; i < n; i++) {
        int distinct = 1;
        for (size_t j = 0; j < i; j++)
            distinct = distinct && table[j].value != table[i].value;
        const char *s = clattn_status_string(table[i].value);
        check(s != NULL && strcmp(s, table[i].text) == 0 && distinct, "status    %4d -> \"%s\"%s", table[i].value,
              s ? s : "(null)", distinct ? "" : " (value repeated)");
    }
    int bad = 0;
    for (int v = -100; v <= 1100; v++) {
        const char *s = clattn_status_string(v);
        bad += s == NULL || s[0] == '\0';
    }
    check(bad == 0, "status    -    clattn_status_string(-100 .. 1100): %d NULL or empty", bad);
}

/* ------------------------------------------------------------------------------------------- */

/* The context's references (harness_context_refs) once they come down to `want`, or after 2 s:
 * POCL's driver thread drops the references of finished commands a little after their events
 * complete. */
static cl_uint settled_refs(const clattn_context *ctx, cl_uint want)
{
    cl_uint n = harness_context_refs(ctx);
    for (int wait = 0; n > want && wait < 200; wait++) {
        nanosleep(&(struct timespec){0, 10000000}, NULL);
        n = harness_context_refs(ctx);
    }
    return n;
}

/* A device's host tensors and buffers for a float16 plan of run_problem: Q, K, V, O, Qg, Kg, Vg,
 * Kx, Vx sized at 2 bytes an element pass, one byte less fails; LSE keeps 4 bytes an element.
 * (bfloat16 has the same sizes.) */
static void check_storage_sizes(clattn_context *ctx, const char *where)
{
    run_fixture f = {"", {0}, {0}};
    clattn_problem p = run_problem;
    p.dtype = CLATTN_DTYPE_F16;
    clattn_plan *plan = NULL;
    const int s = fixture_make(&f, p.dtype) ? clattn_plan_create(ctx, &p, &plan) : CLATTN_STATUS_HOST_OUT_OF_MEMORY;
    expect(ctx, where, "plan_create(run problem, f16)", s, CLATTN_STATUS_OK, NULL, NULL, 1);
    if (s == CLATTN_STATUS_OK) {
        check_host_runs(ctx, plan, &f);
        check_enqueue_buffers(ctx, plan, &f);
    }
    clattn_plan_free(plan);
    fixture_free(&f);
}

/* Every check on one context: problems, null handles, host tensors, and device buffers. */
static void check_context(clattn_context *ctx, const char *where)
{
    printf("== %s: %s\n", where, clattn_context_device_name(ctx));
    check_problem_cases(ctx, where);
    const int device = !clattn_context_is_reference(ctx);
    run_fixture f = {"", {0}, {0}};
    clattn_plan *plan = NULL;
    int s = fixture_make(&f, CLATTN_DTYPE_F32) ? clattn_plan_create(ctx, &run_problem, &plan)
                                               : CLATTN_STATUS_HOST_OUT_OF_MEMORY;
    clattn_plan_free(plan); /* its programs stay in the context's cache */
    plan = NULL;
    const cl_uint refs = device && !s ? harness_context_refs(ctx) : 0;
    if (!s)
        s = clattn_plan_create(ctx, &run_problem, &plan);
    expect(ctx, where, "plan_create(run problem)", s, CLATTN_STATUS_OK, NULL, NULL, 1);
    if (s == CLATTN_STATUS_OK) {
        check_null_cases(ctx, plan, &f, where);
        check_host_runs(ctx, plan, &f);
        if (device)
            check_enqueue_buffers(ctx, plan, &f);
    }
    clattn_plan_free(plan);
    if (device && s == CLATTN_STATUS_OK) {
        const cl_uint after = settled_refs(ctx, refs);
        char what[96];
        snprintf(what, sizeof what, "OpenCL objects released: context references %u before the runs, %u after", refs,
                 after);
        report(refs == after, where, what);
    }
    fixture_free(&f);
    if (device)
        check_storage_sizes(ctx, where);
}

int main(void)
{
    check_status_strings();
    clattn_context *ref = NULL;
    const int s = clattn_context_create(&(clattn_context_desc){.device = "reference"}, &ref);
    expect(NULL, "context", "context_create(reference)", s, CLATTN_STATUS_OK, NULL, NULL, 1);
    if (s == CLATTN_STATUS_OK)
        check_context(ref, "reference");
    clattn_context_free(ref);

    char specs[HARNESS_MAX_DEVICES][16];
    const int ndev = harness_devices(specs, HARNESS_MAX_DEVICES);
    for (int d = 0; d < ndev; d++) {
        clattn_context *dev = harness_open(specs[d]);
        if (dev != NULL)
            check_context(dev, specs[d]);
        clattn_context_free(dev);
    }
    const int status = harness_exit();
    if (status == 0 && ndev == 0)
        return check_skip("reference checks passed; device checks not run: " HARNESS_NO_DEVICE);
    return status;
}
