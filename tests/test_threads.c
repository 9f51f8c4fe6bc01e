/* Concurrency: on every OpenCL device, 8 threads x 100 calls on one shared context, each thread with
 * its own plan (created concurrently: the program cache is contended) and queue, results checked
 * against a precomputed reference, and faults whose message is read back. Run it under
 * ThreadSanitizer (-DCLATTN_TSAN=ON). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define THREADS 8
#define CALLS 100
#define HOST_CALL_EVERY 10 /* every 10th call goes through run_host on the context's shared queue */
#define FAULT_EVERY 25     /* and every 25th a call with a bad seq_lens, whose message is read back */
#define TOLERANCE 2e-4

typedef struct {
    const char *what;
    clattn_problem p;
    const int *seq_lens;
} thread_case;

static const int lens2[] = {33, 17}, globals[] = {0, 20};

/* N = 33, D = 16; threads 0 and 6 share a problem (and so a cached program). */
static const thread_case cases[THREADS] = {
    {"causal", {.batch = 1, .heads = 2, .q_len = 33, .head_dim = 16, .causal = 1}, NULL},
    {"window (4, 0)", {.batch = 1, .heads = 2, .q_len = 33, .head_dim = 16, .window = 1, .window_left = 4}, NULL},
    {"dense GQA", {.batch = 1, .heads = 4, .kv_heads = 2, .q_len = 33, .head_dim = 16}, NULL},
    {"window (3, 3) + globals",
     {.batch = 1,
      .heads = 2,
      .q_len = 33,
      .head_dim = 16,
      .window = 1,
      .window_left = 3,
      .window_right = 3,
      .global_idx = globals,
      .num_global = 2},
     NULL},
    {"causal, padding {33, 17}", {.batch = 2, .heads = 2, .q_len = 33, .head_dim = 16, .causal = 1}, lens2},
    {"summary blocks of 8", {.batch = 1, .heads = 2, .q_len = 33, .head_dim = 16, .summary_block = 8}, NULL},
    {"causal", {.batch = 1, .heads = 2, .q_len = 33, .head_dim = 16, .causal = 1}, NULL},
    {"causal window (8, 0) dilation 2",
     {.batch = 1, .heads = 2, .q_len = 33, .head_dim = 16, .causal = 1, .window = 1, .window_left = 8, .dilation = 2},
     NULL},
};

typedef struct {
    int index;
    clattn_context *ctx;
    harness_tensors h; /* inputs; out_ref and lse_ref hold the reference */
    /* results, written by the thread, read by main after join */
    int status, wrong, unstable; /* first failing status; calls off the reference; calls != first call */
    int bad_faults;              /* deliberate faults without INVALID_SEQ_LEN and a seq_lens message */
    double max_err;
    char message[256];
} thread_state;

static double max_diff(const float *a, const float *b, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = a[i] == b[i] ? 0.0 : fabs((double)a[i] - (double)b[i]); /* -inf == -inf */
        worst = isnan(d) ? INFINITY : d > worst ? d : worst;
    }
    return worst;
}

typedef struct {
    cl_command_queue queue;
    cl_mem q, k, v, out, lse;
} thread_device;

static cl_mem upload(thread_state *st, const thread_device *d, const clattn_host_tensor *t, int output)
{
    cl_int rc;
    cl_mem m = clCreateBuffer(clattn_context_cl_context(st->ctx), CL_MEM_READ_WRITE, t->bytes, NULL, &rc);
    if (rc == CL_SUCCESS && !output)
        rc = clEnqueueWriteBuffer(d->queue, m, CL_TRUE, 0, t->bytes, t->data, 0, NULL, NULL);
    if (rc != CL_SUCCESS && st->status == CLATTN_STATUS_OK)
        st->status = rc;
    return m;
}

/* One call: enqueue on the thread's queue and read back, or (every 10th) run_host. */
static int one_call(thread_state *st, clattn_plan *plan, const thread_device *d, int call)
{
    clattn_host_tensors *t = &st->h.t;
    if (call % HOST_CALL_EVERY == HOST_CALL_EVERY - 1)
        return clattn_plan_run_host(plan, t);
    const clattn_buffers b = {.q = d->q, .k = d->k, .v = d->v, .out = d->out, .lse = d->lse, .seq_lens = t->seq_lens};
    cl_event done = NULL;
    int s = clattn_plan_enqueue(plan, d->queue, &b, 0, NULL, &done);
    if (!s)
        s = clEnqueueReadBuffer(d->queue, d->out, CL_FALSE, 0, t->out.bytes, t->out.data, 1, &done, NULL);
    if (!s)
        s = clEnqueueReadBuffer(d->queue, d->lse, CL_TRUE, 0, t->lse.bytes, t->lse.data, 0, NULL, NULL);
    if (done != NULL)
        clReleaseEvent(done);
    return s;
}

/* A call with seq_lens[0] = -1: every thread fails now and then, so messages are written and
 * read concurrently. */
static void faulty_call(thread_state *st, clattn_plan *plan, const thread_device *d)
{
    static const int bad_lens[2] = {-1, -1};
    const clattn_buffers b = {.q = d->q, .k = d->k, .v = d->v, .out = d->out, .seq_lens = bad_lens};
    const int s = clattn_plan_enqueue(plan, d->queue, &b, 0, NULL, NULL);
    char message[256];
    snprintf(message, sizeof message, "%s", clattn_context_message(st->ctx));
    st->bad_faults += s != CLATTN_STATUS_INVALID_SEQ_LEN || strstr(message, "seq_lens") == NULL;
}

static void run_calls(thread_state *st, clattn_plan *plan, const thread_device *d)
{
    const size_t n_out = st->h.t.out.bytes / sizeof(float), n_lse = st->h.t.lse.bytes / sizeof(float);
    float *first = malloc(st->h.t.out.bytes);
    if (first == NULL) {
        st->status = CLATTN_STATUS_HOST_OUT_OF_MEMORY;
        return;
    }
    for (int call = 0; call < CALLS && st->status == CLATTN_STATUS_OK; call++) {
        if (call % FAULT_EVERY == FAULT_EVERY - 1)
            faulty_call(st, plan, d);
        memset(st->h.t.out.data, 0xff, st->h.t.out.bytes); /* NaN: a call that writes nothing fails */
        memset(st->h.t.lse.data, 0xff, st->h.t.lse.bytes);
        st->status = one_call(st, plan, d, call);
        if (st->status != CLATTN_STATUS_OK)
            break;
        const double err = max_diff(st->h.t.out.data, st->h.out_ref, n_out);
        const double lse_err = max_diff(st->h.t.lse.data, st->h.lse_ref, n_lse);
        const double worst = err > lse_err ? err : lse_err;
        st->max_err = worst > st->max_err ? worst : st->max_err;
        st->wrong += !(worst <= TOLERANCE);
        if (call == 0)
            memcpy(first, st->h.t.out.data, st->h.t.out.bytes);
        else
            st->unstable += memcmp(first, st->h.t.out.data, st->h.t.out.bytes) != 0;
    }
    free(first);
}

static void *thread_main(void *arg)
{
    thread_state *st = arg;
    thread_device d = {0};
    clattn_plan *plan = NULL;
    cl_int rc;
    d.queue = clCreateCommandQueue(clattn_context_cl_context(st->ctx), clattn_context_cl_device(st->ctx), 0, &rc);
    st->status = rc;
    if (!st->status)
        st->status = clattn_plan_create(st->ctx, &cases[st->index].p, &plan);
    if (!st->status) {
        d.q = upload(st, &d, &st->h.t.q, 0);
        d.k = upload(st, &d, &st->h.t.k, 0);
        d.v = upload(st, &d, &st->h.t.v, 0);
        d.out = upload(st, &d, &st->h.t.out, 1);
        d.lse = upload(st, &d, &st->h.t.lse, 1);
    }
    if (!st->status)
        run_calls(st, plan, &d);
    if (st->status) /* racy by nature: another thread may have failed since (see clattn.h) */
        snprintf(st->message, sizeof st->message, "%s", clattn_context_message(st->ctx));
    const cl_mem mems[] = {d.lse, d.out, d.v, d.k, d.q};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i] != NULL)
            clReleaseMemObject(mems[i]);
    clattn_plan_free(plan);
    if (d.queue != NULL)
        clReleaseCommandQueue(d.queue);
    return NULL;
}

/* Inputs for every thread and their reference outputs, computed before any thread starts; 0, with
 * a failed check, when they cannot be. */
static int prepare(clattn_context *ref, clattn_context *dev, thread_state *states)
{
    for (int i = 0; i < THREADS; i++) {
        thread_state *st = &states[i];
        st->index = i;
        st->ctx = dev;
        if (harness_tensors_alloc(&cases[i].p, 1, 1000u + (unsigned)i, &st->h) != CLATTN_STATUS_OK)
            return check(0, "tensors for thread %d: out of memory", i);
        st->h.t.seq_lens = cases[i].seq_lens;
        clattn_host_tensors want = st->h.t;
        want.out.data = st->h.out_ref;
        want.lse.data = st->h.lse_ref;
        clattn_plan *plan = NULL;
        int s = clattn_plan_create(ref, &cases[i].p, &plan);
        if (!s)
            s = clattn_plan_run_host(plan, &want);
        clattn_plan_free(plan);
        if (s)
            return check(0, "reference for thread %d: %s", i, clattn_context_message(ref));
    }
    return 1;
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + 1e-9 * (double)(now.tv_nsec - start->tv_nsec);
}

/* The threads on one device's shared context, then one check per thread. */
static void run_device(clattn_context *dev, clattn_context *ref, const char *variant, size_t index)
{
    (void)variant, (void)index;
    printf("%d threads x %d calls\n", THREADS, CALLS);
    static thread_state states[THREADS];
    memset(states, 0, sizeof states);
    const int prepared = prepare(ref, dev, states);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_t threads[THREADS];
    int started = 0;
    for (; prepared && started < THREADS; started++)
        if (pthread_create(&threads[started], NULL, thread_main, &states[started]) != 0) {
            check(0, "pthread_create %d", started);
            break;
        }
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    const double elapsed = seconds_since(&start);
    for (int i = 0; i < started; i++) {
        const thread_state *st = &states[i];
        check(st->status == CLATTN_STATUS_OK && st->wrong == 0 && st->unstable == 0 && st->bad_faults == 0,
              "thread %d %-32s max err %.2e, %d wrong, %d differ from call 0, %d faults misreported%s%s%s%s", i,
              cases[i].what, st->max_err, st->wrong, st->unstable, st->bad_faults, st->status ? ", status " : "",
              st->status ? clattn_status_string(st->status) : "", st->status ? ": " : "",
              st->status ? st->message : "");
    }
    printf("%d threads x %d calls in %.2f s\n", THREADS, CALLS, elapsed);
    for (int i = 0; i < THREADS; i++)
        harness_tensors_free(&states[i].h);
}

int main(void)
{
    return harness_each_variant(NULL, NULL, 1, run_device);
}
