/* 2-D grid patterns on a device: the plan (tile sides from host/grid.c, the grid kernel of the
 * plan's variant, the tables on the device, K and V in slot order where it is not the token
 * order) and a run's passes: the slot-order copies, the CPU variant's key panels, the kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grid.h"
#include "launch.h"
#include "tuning.h"

struct clattn__grid_plan {
    clattn__grid geo;
    cl_kernel order;                  /* cl/grid_order.cl; NULL when slot order is token order */
    cl_mem tiles, axis, keys;         /* host/grid.c's tables */
    cl_mem k_order, v_order;          /* K and V in slot order; NULL when it is token order */
};

/* Most query slots of a CPU tile: cl/attention_cpu.cl keeps the rows' factors in one float16. */
#define GRID_CPU_MAX_SLOTS 16

/* A table of `count` ints on the device, uploaded once for the plan's life. */
static int upload_table(clattn_plan *plan, const int *data, size_t count, const char *what, cl_mem *out,
                        clattn__error *err)
{
    int status = clattn__plan_buffer(plan, count * sizeof(int), what, out, err);
    if (status)
        return status;
    const cl_int rc =
        clEnqueueWriteBuffer(plan->ctx->queue, *out, CL_TRUE, 0, count * sizeof(int), data, 0, NULL, NULL);
    return rc == CL_SUCCESS ? CLATTN_STATUS_OK
                            : clattn__fail(err, rc, "uploading the grid's %s failed: %s", what, clattn__cl_error_name(rc));
}

/* The GPU variant also stages three ints per key (its slot's coordinates and token). */
static size_t gpu_local_bytes(const clattn_tiles *t, int d, int dv)
{
    return clattn__tiles_local_bytes(t, d, dv) + 3 * (size_t)t->bk * sizeof(int);
}

static int create_kernels(clattn_plan *plan, clattn__error *err)
{
    const clattn_problem *p = &plan->p;
    const int cpu = plan->tiles.cpu_variant;
    char options[600];
    clattn__attention_options(&plan->tiles, p->head_dim, p->value_dim, options, sizeof options - 32);
    snprintf(options + strlen(options), 32, " -DCLATTN_GRID_TW=%d", plan->grid->geo.tw);
    int status = clattn__plan_kernel(plan, cpu ? "common+attention_cpu+grid_common+grid_cpu" : "common+grid_common+grid_gpu",
                                     "grid_attention", options, &plan->attention, err);
    if (!status && cpu) {
        char pack_options[64];
        clattn__pack_options(p->head_dim, pack_options, sizeof pack_options);
        status = clattn__plan_kernel(plan, "pack_keys", "pack_keys", pack_options, &plan->pack, err);
    }
    if (!status && !plan->grid->geo.identity)
        status = clattn__plan_kernel(plan, "grid_order", "grid_order", "", &plan->grid->order, err);
    return status;
}

int clattn__grid_plan_create(clattn_plan *plan, clattn__error *err)
{
    const clattn_problem *p = &plan->p;
    plan->grid = calloc(1, sizeof *plan->grid);
    if (plan->grid == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "grid plan");
    clattn__grid_plan *g = plan->grid;
    int status = clattn__choose_tiles(plan->ctx, p->head_dim, p->value_dim, p->q_len, &plan->tiles, err);
    if (status)
        return status;
    clattn_tiles *t = &plan->tiles;
    if (!t->cpu_variant) {
        while (t->bk > 1 && gpu_local_bytes(t, p->head_dim, p->value_dim) > plan->ctx->caps.local_mem)
            t->bk /= 2;
        if (gpu_local_bytes(t, p->head_dim, p->value_dim) > plan->ctx->caps.local_mem)
            return clattn__fail(err, CLATTN_STATUS_DEVICE_LIMIT,
                                "head_dim = %d, value_dim = %d: one key tile of the grid kernel needs %zu bytes of "
                                "local memory, the device has %llu",
                                p->head_dim, p->value_dim, gpu_local_bytes(t, p->head_dim, p->value_dim),
                                (unsigned long long)plan->ctx->caps.local_mem);
    }
    const int slots = !t->cpu_variant ? t->wg : t->rows < GRID_CPU_MAX_SLOTS ? t->rows : GRID_CPU_MAX_SLOTS;
    status = clattn__grid_build(p, slots, t->cpu_variant, CLATTN_KEY_CHUNK, &g->geo, err);
    if (status)
        return status;
    if (t->cpu_variant)
        t->rows = g->geo.th * g->geo.tw; /* the kernel's R: one tile of th x tw queries per work-item */
    plan->qscale = p->scale * (float)CL_M_LOG2E;
    const clattn__grid *geo = &g->geo;
    if ((status = create_kernels(plan, err)) || (status = clattn__plan_create_scratch(plan, err)) ||
        (status = upload_table(plan, geo->tiles, 4 * (size_t)geo->ntiles, "tiles", &g->tiles, err)) ||
        (status = upload_table(plan, geo->axis, (size_t)geo->axis_ints, "axis table", &g->axis, err)) ||
        (status = upload_table(plan, geo->keys, 3 * (size_t)geo->nslots, "key table", &g->keys, err)))
        return status;
    /* the tiles buffer holds the tiles, then the run offsets and the runs */
    clReleaseMemObject(g->tiles);
    g->tiles = NULL;
    const size_t tile_ints = 4 * (size_t)geo->ntiles + (size_t)geo->ntiles + 1 + 2 * (size_t)geo->nruns;
    int *packed = malloc(tile_ints * sizeof(int));
    if (packed == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "grid tiles");
    memcpy(packed, geo->tiles, 4 * (size_t)geo->ntiles * sizeof(int));
    memcpy(packed + 4 * (size_t)geo->ntiles, geo->runs, (tile_ints - 4 * (size_t)geo->ntiles) * sizeof(int));
    status = upload_table(plan, packed, tile_ints, "tiles and runs", &g->tiles, err);
    free(packed);
    if (status || geo->identity)
        return status;
    const size_t bhk_n = (size_t)p->batch * p->kv_heads * p->kv_len;
    status = clattn__plan_buffer(plan, bhk_n * p->head_dim * sizeof(float), "keys in slot order", &g->k_order, err);
    if (!status)
        status = clattn__plan_buffer(plan, bhk_n * p->value_dim * sizeof(float), "values in slot order", &g->v_order,
                                     err);
    return status;
}

void clattn__grid_plan_free(clattn_plan *plan)
{
    clattn__grid_plan *g = plan->grid;
    if (g == NULL)
        return;
    cl_mem buffers[] = {g->tiles, g->axis, g->keys, g->k_order, g->v_order};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        if (buffers[i] != NULL)
            clReleaseMemObject(buffers[i]);
    if (g->order != NULL)
        clReleaseKernel(g->order);
    clattn__grid_free(&g->geo);
    free(g);
    plan->grid = NULL;
}

/* rows [B, Hkv, N, width] into slot order. */
static cl_int enqueue_order(clattn_plan *plan, command_chain *chain, cl_mem src, cl_mem dst, int width)
{
    const clattn__grid_plan *g = plan->grid;
    const int n = plan->p.kv_len, tokens_at = 2 * g->geo.nslots;
    const kernel_arg args[] = {ARG(src), ARG(g->keys), ARG(dst), ARG(n), ARG(width), ARG(tokens_at)};
    const cl_int rc = clattn__set_args(g->order, args, sizeof args / sizeof args[0]);
    const size_t global[2] = {(size_t)n * width, (size_t)plan->p.batch * plan->p.kv_heads};
    return rc != CL_SUCCESS ? rc : clattn__chain_launch(chain, g->order, 2, global, NULL);
}

cl_int clattn__grid_enqueue(clattn_plan *plan, command_chain *chain, const clattn_buffers *bufs)
{
    const clattn_problem *p = &plan->p;
    clattn__grid_plan *g = plan->grid;
    cl_mem keys = bufs->k, values = bufs->v;
    cl_int rc = CL_SUCCESS;
    if (!g->geo.identity) {
        rc = enqueue_order(plan, chain, bufs->k, g->k_order, p->head_dim);
        if (rc == CL_SUCCESS)
            rc = enqueue_order(plan, chain, bufs->v, g->v_order, p->value_dim);
        keys = g->k_order;
        values = g->v_order;
    }
    if (rc == CL_SUCCESS && plan->tiles.cpu_variant) {
        rc = clattn__enqueue_pack(plan, chain, keys, plan->k_panels, p->kv_len);
        keys = plan->k_panels;
    }
    const cl_mem lse = bufs->lse != NULL ? bufs->lse : bufs->out; /* not written without write_lse */
    const int write_lse = bufs->lse != NULL;
    const int h = g->geo.h, w = g->geo.w, nparts = g->geo.nparts, ntiles = g->geo.ntiles, nslots = g->geo.nslots;
    const kernel_arg args[] = {ARG(bufs->q),     ARG(keys),     ARG(values),   ARG(g->tiles),       ARG(g->axis),
                               ARG(g->keys),     ARG(plan->seq_lens), ARG(bufs->out), ARG(lse),     ARG(p->heads),
                               ARG(p->kv_heads), ARG(h),        ARG(w),        ARG(nparts),         ARG(ntiles),
                               ARG(nslots),      ARG(p->causal), ARG(plan->qscale), ARG(write_lse)};
    if (rc == CL_SUCCESS)
        rc = clattn__set_args(plan->attention, args, sizeof args / sizeof args[0]);
    const size_t local[2] = {plan->tiles.cpu_variant ? 1 : (size_t)plan->tiles.wg, 1};
    const size_t global[2] = {(size_t)ntiles * local[0], (size_t)p->batch * p->heads};
    return rc == CL_SUCCESS ? clattn__chain_launch(chain, plan->attention, 2, global, local) : rc;
}
