/* Runs of one plan on two queues, ordered only by their wait lists, with seq_lens that change from
 * run to run. A user event holds the first run back until every run is enqueued: an upload of the
 * lengths that ignored the wait list would overwrite them under the held run (wrong results), and
 * one that blocked the caller would wait for the held run forever (ctest's timeout). The same
 * event holds the context's own queue while the plan is created: creating a plan must not wait on
 * that queue, which other threads may be using (nor, as a blocking write there once did, leave a
 * table half written for a kernel on another queue). Each run is checked against the reference
 * for its own lengths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TOLERANCE 2e-4
#define RUNS 3

static const int globals[] = {0, 20};

typedef struct {
    const char *what;
    clattn_problem p;
} queue_case;

/* B = 2, N = 35: padding in both entries, side keys whose positions follow seq_lens, and 2-D
 * patterns whose tables are made with the plan. */
static const queue_case cases[] = {
    {"causal", {.batch = 2, .heads = 2, .q_len = 35, .head_dim = 16, .causal = 1}},
    {"window (4, 4) + globals + summary blocks of 8",
     {.batch = 2,
      .heads = 2,
      .q_len = 35,
      .head_dim = 16,
      .window = 1,
      .window_left = 4,
      .window_right = 4,
      .global_idx = globals,
      .num_global = 2,
      .summary_block = 8}},
    {"neighborhood 3 x 3 on 5 x 7",
     {.batch = 2,
      .heads = 2,
      .q_len = 35,
      .head_dim = 16,
      .grid_pattern = CLATTN_GRID_NEIGHBORHOOD,
      .grid_h = 5,
      .grid_w = 7,
      .grid_kernel_h = 3,
      .grid_kernel_w = 3}},
    {"criss-cross on 5 x 7",
     {.batch = 2,
      .heads = 2,
      .q_len = 35,
      .head_dim = 16,
      .grid_pattern = CLATTN_GRID_CRISS_CROSS,
      .grid_h = 5,
      .grid_w = 7}},
};

/* Run r's lengths: they change from each run to the next. */
static const int run_lens[RUNS][2] = {{35, 21}, {25, 35}, {35, 21}};

typedef struct {
    cl_mem q, k, v, out[RUNS], lse[RUNS];
} device_tensors;

/* A buffer of `bytes`, filled from `data` when that is not NULL; NULL once *rc is a failure. */
static cl_mem device_buffer(cl_context cl, size_t bytes, void *data, cl_int *rc)
{
    if (*rc != CL_SUCCESS)
        return NULL;
    return clCreateBuffer(cl, data != NULL ? CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR : CL_MEM_READ_WRITE, bytes, data,
                          rc);
}

static void release_buffer(cl_mem mem)
{
    if (mem != NULL)
        clReleaseMemObject(mem);
}

/* Reference O and LSE of every run, on the same inputs. */
static int reference_runs(clattn_context *ref, const clattn_problem *p, harness_tensors *h, float *out[RUNS],
                          float *lse[RUNS])
{
    clattn_plan *plan = NULL;
    int status = clattn_plan_create(ref, p, &plan);
    for (int r = 0; r < RUNS && !status; r++) {
        clattn_host_tensors want = h->t;
        want.seq_lens = run_lens[r];
        want.out.data = out[r];
        want.lse.data = lse[r];
        status = clattn_plan_run_host(plan, &want);
    }
    clattn_plan_free(plan);
    return status;
}

/* The runs, run r on queue r % 2 after run r - 1's event; run 0 after the gate. */
static int enqueue_runs(clattn_plan *plan, cl_command_queue queues[2], const device_tensors *d, cl_event gate,
                        cl_event events[RUNS])
{
    for (int r = 0; r < RUNS; r++) {
        const clattn_buffers b = {
            .q = d->q, .k = d->k, .v = d->v, .out = d->out[r], .lse = d->lse[r], .seq_lens = run_lens[r]};
        const int s = clattn_plan_enqueue(plan, queues[r % 2], &b, 1, r == 0 ? &gate : &events[r - 1], &events[r]);
        if (s)
            return s;
        clFlush(queues[r % 2]);
    }
    return CLATTN_STATUS_OK;
}

static void run_case(clattn_context *dev, clattn_context *ref, const queue_case *c)
{
    const clattn_problem *p = &c->p;
    harness_tensors h;
    if (harness_tensors_alloc(p, 1, 4242u, &h) != CLATTN_STATUS_OK) {
        check(0, "%s: tensors: out of memory", c->what);
        return;
    }
    const size_t out_n = h.t.out.bytes / sizeof(float), lse_n = h.t.lse.bytes / sizeof(float);
    float *want_out[RUNS] = {0}, *want_lse[RUNS] = {0}, *got = malloc(h.t.out.bytes + h.t.lse.bytes);
    int ok = got != NULL;
    for (int r = 0; r < RUNS; r++) {
        want_out[r] = malloc(h.t.out.bytes);
        want_lse[r] = malloc(h.t.lse.bytes);
        ok &= want_out[r] != NULL && want_lse[r] != NULL;
    }
    if (!ok || reference_runs(ref, p, &h, want_out, want_lse) != CLATTN_STATUS_OK) {
        check(0, "%s: reference: %s", c->what, ok ? clattn_context_message(ref) : "out of memory");
        ok = 0;
    }

    cl_context cl = clattn_context_cl_context(dev);
    cl_int rc = CL_SUCCESS;
    cl_command_queue queues[2] = {NULL, NULL};
    for (int i = 0; i < 2 && rc == CL_SUCCESS; i++)
        queues[i] = clCreateCommandQueue(cl, clattn_context_cl_device(dev), 0, &rc);
    device_tensors d = {0};
    d.q = device_buffer(cl, h.t.q.bytes, h.t.q.data, &rc);
    d.k = device_buffer(cl, h.t.k.bytes, h.t.k.data, &rc);
    d.v = device_buffer(cl, h.t.v.bytes, h.t.v.data, &rc);
    for (int r = 0; r < RUNS; r++) {
        d.out[r] = device_buffer(cl, h.t.out.bytes, NULL, &rc);
        d.lse[r] = device_buffer(cl, h.t.lse.bytes, NULL, &rc);
    }
    cl_event gate = rc == CL_SUCCESS ? clCreateUserEvent(cl, &rc) : NULL;
    ok &= check(rc == CL_SUCCESS, "%s: queues, buffers and the gate (OpenCL %d)", c->what, rc);

    /* The context's queue waits for the gate, and the plan is made meanwhile. */
    if (ok)
        ok &= check(clEnqueueMarkerWithWaitList(clattn_context_queue(dev), 1, &gate, NULL) == CL_SUCCESS,
                    "%s: the context's queue held", c->what);
    clattn_plan *plan = NULL;
    cl_event events[RUNS] = {0};
    int status = ok ? clattn_plan_create(dev, p, &plan) : CLATTN_STATUS_OK;
    if (ok && !status)
        status = enqueue_runs(plan, queues, &d, gate, events);
    if (gate != NULL)
        clSetUserEventStatus(gate, CL_COMPLETE); /* after every run is enqueued, failed or not */
    ok &= check(status == CLATTN_STATUS_OK, "%s: plan (the context's queue held) and %d enqueues%s%s", c->what, RUNS,
                status ? ": " : "", status ? clattn_context_message(dev) : "");

    for (int r = 0; r < RUNS && ok; r++) {
        float *got_lse = got + out_n;
        rc = clEnqueueReadBuffer(queues[r % 2], d.out[r], CL_TRUE, 0, h.t.out.bytes, got, 1, &events[r], NULL);
        if (rc == CL_SUCCESS)
            rc = clEnqueueReadBuffer(queues[r % 2], d.lse[r], CL_TRUE, 0, h.t.lse.bytes, got_lse, 0, NULL, NULL);
        const double err = rc == CL_SUCCESS ? harness_max_diff(got, want_out[r], out_n) : -1.0;
        const double lse_err = rc == CL_SUCCESS ? harness_max_diff(got_lse, want_lse[r], lse_n) : -1.0;
        const double worst = err > lse_err ? err : lse_err;
        check(rc == CL_SUCCESS && worst <= TOLERANCE, "%s: run %d on queue %d, seq_lens {%d, %d}: max err %.2e%s",
              c->what, r, r % 2, run_lens[r][0], run_lens[r][1], worst, rc == CL_SUCCESS ? "" : ", read failed");
    }

    for (int r = 0; r < RUNS; r++)
        if (events[r] != NULL)
            clWaitForEvents(1, &events[r]), clReleaseEvent(events[r]);
    if (gate != NULL)
        clReleaseEvent(gate);
    clattn_plan_free(plan);
    release_buffer(d.q), release_buffer(d.k), release_buffer(d.v);
    for (int r = 0; r < RUNS; r++)
        release_buffer(d.out[r]), release_buffer(d.lse[r]);
    for (int i = 0; i < 2; i++)
        if (queues[i] != NULL)
            clReleaseCommandQueue(queues[i]);
    for (int r = 0; r < RUNS; r++)
        free(want_out[r]), free(want_lse[r]);
    free(got);
    harness_tensors_free(&h);
}

static void run_device(clattn_context *dev, clattn_context *ref, const char *variant, size_t index)
{
    (void)variant, (void)index;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(dev, ref, &cases[i]);
}

int main(void)
{
    return harness_each_variant(NULL, NULL, 1, run_device);
}
