/* A plan's scratch: the device buffers its passes write between launches (key panels, side
 * keys, split partials) and the small index buffers, sized once at plan creation. */
#include <stdlib.h>

#include "plan.h"

/* A buffer of `bytes`, filled from `init` when that is not NULL. */
static int create_buffer(clattn_plan *plan, size_t bytes, const void *init, const char *what, cl_mem *out,
                         clattn__error *err)
{
    const clattn__device_caps *caps = &plan->ctx->caps;
    if (bytes > caps->max_alloc)
        return clattn__fail(err, CLATTN_STATUS_DEVICE_LIMIT,
                            "%s needs %zu bytes, more than the device's largest allocation (%llu)", what, bytes,
                            (unsigned long long)caps->max_alloc);
    cl_int rc;
    *out = clCreateBuffer(plan->ctx->cl, init != NULL ? CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR : CL_MEM_READ_WRITE,
                          bytes, (void *)init, &rc);
    if (rc != CL_SUCCESS)
        return clattn__fail(err, rc, "%s: clCreateBuffer of %zu bytes failed: %s", what, bytes,
                            clattn__cl_error_name(rc));
    plan->scratch_bytes += bytes;
    return CLATTN_STATUS_OK;
}

int clattn__plan_buffer(clattn_plan *plan, size_t bytes, const char *what, cl_mem *out, clattn__error *err)
{
    return create_buffer(plan, bytes, NULL, what, out, err);
}

int clattn__plan_table(clattn_plan *plan, const int *data, size_t count, const char *what, cl_mem *out,
                       clattn__error *err)
{
    static const int none = 0;
    return create_buffer(plan, (count > 0 ? count : 1) * sizeof(int), count > 0 ? data : &none, what, out, err);
}

static size_t panel_bytes(const clattn_plan *plan, int n)
{
    const clattn_problem *p = &plan->p;
    const size_t kc = CLATTN_KEY_CHUNK, chunks = ((size_t)n + kc - 1) / kc;
    return (size_t)p->batch * p->kv_heads * chunks * kc * p->head_dim * sizeof(float);
}

int clattn__plan_create_scratch(clattn_plan *plan, clattn__error *err)
{
    const clattn_problem *p = &plan->p;
    const size_t bhk = (size_t)p->batch * p->kv_heads;
    const int panels = clattn__plan_packs_keys(plan);
    int status = CLATTN_STATUS_OK;
    if (panels)
        status = clattn__plan_buffer(plan, panel_bytes(plan, p->kv_len), "key panels", &plan->k_panels, err);
    if (!status && plan->splits > 0) {
        const size_t parts = (size_t)p->batch * p->heads * plan->split_rows * plan->splits;
        status = clattn__plan_buffer(plan, parts * p->value_dim * sizeof(float), "split partial outputs",
                                     &plan->part_acc, err);
        if (!status)
            status = clattn__plan_buffer(plan, parts * 2 * sizeof(float), "split partial sums", &plan->part_ml, err);
    }
    if (!status && panels && p->global_qkv)
        status = clattn__plan_buffer(plan, panel_bytes(plan, p->kv_len), "global key panels", &plan->kg_panels, err);
    if (!status && plan->n_side > 0) {
        status = clattn__plan_buffer(plan, bhk * plan->n_side * p->head_dim * sizeof(float), "side keys", &plan->side_k,
                                     err);
        if (!status)
            status = clattn__plan_buffer(plan, bhk * plan->n_side * p->value_dim * sizeof(float), "side values",
                                         &plan->side_v, err);
        if (!status && panels)
            status =
                clattn__plan_buffer(plan, panel_bytes(plan, plan->n_side), "side key panels", &plan->side_panels, err);
    }
    const size_t n_pos = (size_t)p->batch * (plan->n_side > 0 ? plan->n_side : 1);
    if (!status)
        status = clattn__plan_buffer(plan, n_pos * sizeof(int), "side positions", &plan->side_pos, err);
    if (!status)
        status = clattn__plan_buffer(plan, (size_t)p->batch * sizeof(int), "seq_lens", &plan->seq_lens, err);
    if (!status) /* fixed for the plan's life, like the global indices below */
        status =
            clattn__plan_table(plan, plan->global_rows, (size_t)plan->n_global_rows, "global rows", &plan->rows, err);
    if (!status)
        status =
            clattn__plan_table(plan, plan->global_idx, (size_t)p->num_global, "global indices", &plan->global_buf, err);
    if (status)
        return status;
    plan->host_seq_lens = calloc((size_t)p->batch, sizeof(int));
    plan->host_side_pos = calloc(n_pos, sizeof(int));
    if (plan->host_seq_lens == NULL || plan->host_side_pos == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "host copies of %zu side positions", n_pos);
    return CLATTN_STATUS_OK;
}

void clattn__plan_free_scratch(clattn_plan *plan)
{
    cl_mem *buffers[] = {&plan->global_buf,  &plan->rows,    &plan->seq_lens, &plan->side_pos,
                         &plan->side_panels, &plan->side_v,  &plan->side_k,   &plan->kg_panels,
                         &plan->k_panels,    &plan->part_ml, &plan->part_acc};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        if (*buffers[i] != NULL)
            clReleaseMemObject(*buffers[i]);
    free(plan->host_side_pos);
    free(plan->host_seq_lens);
}
