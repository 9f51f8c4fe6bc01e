/* Timed plan runs: inputs uploaded once per point, the device time spanned by profiling events
 * of one in-order queue, the reference path timed by the wall clock. */
#include "runs.h"

#include <stdio.h>

#include "exit_status.h"

int device_open(const char *spec, const char *cache_dir, bench_device *dev)
{
    const clattn_context_desc desc = {.device = spec, .cache_dir = cache_dir};
    *dev = (bench_device){0};
    const int status = clattn_context_create(&desc, &dev->ctx);
    if (status) {
        fprintf(stderr, "clattn bench: --device '%s': %s (%d): %s\n", desc.device, clattn_status_string(status), status,
                clattn_context_message(NULL));
        return clattn_exit_status(status);
    }
    const int reference = clattn_context_is_reference(dev->ctx);
    snprintf(dev->label, sizeof dev->label, "%s", reference ? "reference" : clattn_context_device_name(dev->ctx));
    return 0;
}

int runtime_error(const bench_device *dev, const char *step, int status)
{
    const char *detail = clattn_context_message(dev->ctx);
    fprintf(stderr, "clattn bench: %s: %s failed: %s (%d)%s%s\n", dev->label, step, clattn_status_string(status),
            status, detail[0] ? ": " : "", detail);
    return clattn_exit_status(status);
}

typedef struct {
    clattn_plan *plan;
    cl_command_queue queue;
    clattn_buffers buffers;
} device_run;

/* The plan's event covers only its last command, so a marker enqueued first on the same
 * in-order queue opens the span. */
static int device_run_once(void *state, double *device_ms)
{
    device_run *r = state;
    cl_event start = NULL, end = NULL;
    int status = clEnqueueMarkerWithWaitList(r->queue, 0, NULL, &start);
    if (!status)
        status = clattn_plan_enqueue(r->plan, r->queue, &r->buffers, 0, NULL, &end);
    if (!status)
        status = clFinish(r->queue);
    if (!status)
        status = event_span_ms(start, end, device_ms);
    if (end != NULL)
        clReleaseEvent(end);
    if (start != NULL)
        clReleaseEvent(start);
    return status;
}

/* The caller's tensors are uploaded once per point; the runs reuse them. With `output`, the
 * last run's O is read back into w->out. */
static int run_on_buffers(const bench_timer *t, const bench_device *dev, const workload *w, clattn_plan *plan,
                          int output, bench_row *row)
{
    const cl_context cl = clattn_context_cl_context(dev->ctx);
    const cl_mem_flags input = CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR;
    device_run r = {plan, clattn_context_queue(dev->ctx), {0}};
    cl_int rc;
    r.buffers.q = clCreateBuffer(cl, input, w->q_bytes, w->q, &rc);
    if (rc == CL_SUCCESS)
        r.buffers.k = clCreateBuffer(cl, input, w->kv_bytes, w->k, &rc);
    if (rc == CL_SUCCESS)
        r.buffers.v = clCreateBuffer(cl, input, w->kv_bytes, w->v, &rc);
    if (rc == CL_SUCCESS)
        r.buffers.out = clCreateBuffer(cl, CL_MEM_WRITE_ONLY, w->q_bytes, NULL, &rc);
    int status = rc != CL_SUCCESS ? runtime_error(dev, "uploading the inputs", rc) : 0;
    if (!status && (status = time_runs(t, device_run_once, &r, &row->time)) != 0)
        status = runtime_error(dev, "running the plan", status);
    if (!status && output &&
        (rc = clEnqueueReadBuffer(r.queue, r.buffers.out, CL_TRUE, 0, w->q_bytes, w->out, 0, NULL, NULL)) != CL_SUCCESS)
        status = runtime_error(dev, "reading the output", rc);
    const cl_mem mems[] = {r.buffers.out, r.buffers.v, r.buffers.k, r.buffers.q};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i] != NULL)
            clReleaseMemObject(mems[i]);
    return status;
}

typedef struct {
    clattn_plan *plan;
    clattn_host_tensors tensors;
} host_run;

static int host_run_once(void *state, double *device_ms)
{
    host_run *r = state;
    (void)device_ms; /* host time only */
    return clattn_plan_run_host(r->plan, &r->tensors);
}

int run_plan(const bench_timer *t, const bench_device *dev, const workload *w, int output, bench_row *row)
{
    clattn_plan *plan = NULL;
    const double start = now_ms();
    int status = clattn_plan_create(dev->ctx, &w->problem, &plan);
    row->plan_ms = now_ms() - start;
    if (status)
        return runtime_error(dev, "clattn_plan_create", status);
    row->bytes = 2 * w->q_bytes + 2 * w->kv_bytes + clattn_plan_scratch_bytes(plan);
    if (clattn_context_is_reference(dev->ctx)) {
        host_run r = {
            plan,
            {.q = {w->q, w->q_bytes}, .k = {w->k, w->kv_bytes}, .v = {w->v, w->kv_bytes}, .out = {w->out, w->q_bytes}}};
        if ((status = time_runs(t, host_run_once, &r, &row->time)) != 0)
            status = runtime_error(dev, "clattn_plan_run_host", status);
    } else
        status = run_on_buffers(t, dev, w, plan, output, row);
    clattn_plan_free(plan);
    return status;
}
