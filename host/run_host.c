/* clattn_plan_run_host, the blocking call on host memory: on the reference device the host
 * reference itself, elsewhere device copies of the tensors, one enqueue, and the output read back. */
#include "plan.h"
#include "problem.h"
#include "reference.h"

/* Device copies of the host tensors for one blocking run. */
static int run_on_device(clattn_plan *plan, const clattn_host_tensors *t, clattn__error *err)
{
    int status = clattn__check_host_tensors(&plan->p, t, err);
    if (status)
        return status;
    clattn__tensor_need needs[CLATTN__T_COUNT];
    clattn__tensor_needs(&plan->p, needs);
    cl_mem mem[CLATTN__T_COUNT] = {0};
    for (int i = 0; i < CLATTN__T_COUNT && !status; i++) {
        const clattn_host_tensor *host = clattn__host_tensor(t, i);
        if (host->data == NULL || (i != CLATTN__T_LSE && !needs[i].needed))
            continue;
        const int output = i == CLATTN__T_OUT || i == CLATTN__T_LSE;
        cl_int rc;
        if (needs[i].bytes > plan->ctx->caps.max_alloc)
            status = clattn__fail(err, CLATTN_STATUS_DEVICE_LIMIT, "%s needs %zu bytes, the device allows %llu",
                                  needs[i].name, needs[i].bytes, (unsigned long long)plan->ctx->caps.max_alloc);
        else {
            mem[i] = clCreateBuffer(plan->ctx->cl, output ? CL_MEM_WRITE_ONLY : CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                    needs[i].bytes, output ? NULL : host->data, &rc);
            if (rc != CL_SUCCESS)
                status = clattn__fail(err, rc, "%s: clCreateBuffer of %zu bytes failed: %s", needs[i].name,
                                      needs[i].bytes, clattn__cl_error_name(rc));
        }
    }
#define CLATTN__DEVICE_COPY_(field, NAME) .field = mem[CLATTN__T_##NAME],
    const clattn_buffers bufs = {CLATTN__TENSORS(CLATTN__DEVICE_COPY_).seq_lens = t->seq_lens};
#undef CLATTN__DEVICE_COPY_
    cl_event done = NULL;
    if (!status) /* the buffers were made to the checked tensors' sizes */
        status = clattn__plan_enqueue(plan, plan->ctx->queue, &bufs, 0, NULL, &done, err);
    cl_int rc = CL_SUCCESS;
    if (!status)
        rc = clEnqueueReadBuffer(plan->ctx->queue, mem[CLATTN__T_OUT], CL_TRUE, 0, needs[CLATTN__T_OUT].bytes,
                                 t->out.data, 1, &done, NULL);
    if (!status && rc == CL_SUCCESS && mem[CLATTN__T_LSE] != NULL)
        rc = clEnqueueReadBuffer(plan->ctx->queue, mem[CLATTN__T_LSE], CL_TRUE, 0, needs[CLATTN__T_LSE].bytes,
                                 t->lse.data, 0, NULL, NULL);
    if (!status && rc != CL_SUCCESS)
        status = clattn__fail(err, rc, "reading the output failed: %s", clattn__cl_error_name(rc));
    if (done != NULL)
        clReleaseEvent(done);
    for (int i = CLATTN__T_COUNT - 1; i >= 0; i--)
        if (mem[i] != NULL)
            clReleaseMemObject(mem[i]);
    return status;
}

int clattn_plan_run_host(clattn_plan *plan, const clattn_host_tensors *tensors)
{
    if (plan == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    clattn__error err = {{0}};
    if (tensors == NULL)
        return clattn__context_report(plan->ctx, clattn__fail(&err, CLATTN_STATUS_NULL_ARGUMENT, "tensors is NULL"),
                                      &err);
    /* Both paths check the tensors first, with the same rule and messages. */
    const int status =
        plan->ctx->reference ? clattn__reference_run(&plan->p, tensors, &err) : run_on_device(plan, tensors, &err);
    return clattn__context_report(plan->ctx, status, &err);
}
