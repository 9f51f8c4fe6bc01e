/* A run of a plan on device buffers: key packing (CPU variant), the side keys (globals,
 * summaries, extras), the banded attention pass over every row, and a dense pass over the
 * global rows. Decode (a few query rows) instead splits the keys: attention_split, then
 * combine_splits on the CPU variant; split_keys, then merge_splits on the GPU variant, which also
 * runs its global rows that way. Every launch is chained to the previous one by its event. */
#include "launch.h"
#include "problem.h"

/* `done`, the event of a command just enqueued after the chain's last, becomes the last. */
static void chain_push(command_chain *chain, cl_event done)
{
    if (chain->last != NULL)
        clReleaseEvent(chain->last);
    chain->last = done;
    chain->num_wait = 1;
    chain->wait = &chain->last;
}

cl_int clattn__chain_launch(command_chain *chain, cl_kernel kernel, cl_uint dims, const size_t *global,
                            const size_t *local)
{
    cl_event done = NULL;
    const cl_int rc = clEnqueueNDRangeKernel(chain->queue, kernel, dims, NULL, global, local, chain->num_wait,
                                             chain->num_wait ? chain->wait : NULL, &done);
    if (rc == CL_SUCCESS)
        chain_push(chain, done);
    return rc;
}

/* Writes `data` into `buffer` after the chain's last command, which the write becomes. The data
 * goes through a buffer filled as it is created, so nothing here blocks and `data` may change as
 * soon as this returns; the copy waits for what the caller's wait list waits for (an earlier run
 * on another queue may still be reading `buffer`). */
static cl_int chain_upload(command_chain *chain, cl_context cl, cl_mem buffer, size_t bytes, const void *data)
{
    cl_int rc;
    cl_mem staged = clCreateBuffer(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, (void *)data, &rc);
    if (rc != CL_SUCCESS)
        return rc;
    cl_event done = NULL;
    rc = clEnqueueCopyBuffer(chain->queue, staged, buffer, 0, 0, bytes, chain->num_wait,
                             chain->num_wait ? chain->wait : NULL, &done);
    clReleaseMemObject(staged); /* freed once the copy is done */
    if (rc == CL_SUCCESS)
        chain_push(chain, done);
    return rc;
}

/* Sets kernel arguments from a list of (size, pointer) pairs. */
cl_int clattn__set_args(cl_kernel kernel, const kernel_arg *args, cl_uint count)
{
    for (cl_uint i = 0; i < count; i++) {
        const cl_int rc = clSetKernelArg(kernel, i, args[i].size, args[i].value);
        if (rc != CL_SUCCESS)
            return rc;
    }
    return CL_SUCCESS;
}

/* pack: plan->pack for the caller's keys (storage type), plan->pack_side for the side keys (float32). */
static cl_int enqueue_pack(clattn_plan *plan, command_chain *chain, cl_kernel pack, cl_mem keys, cl_mem panels, int n)
{
    const kernel_arg args[] = {ARG(keys), ARG(panels), ARG(n)};
    const cl_int rc = clattn__set_args(pack, args, 3);
    const size_t chunks = ((size_t)n + CLATTN_KEY_CHUNK - 1) / CLATTN_KEY_CHUNK;
    const size_t global[2] = {chunks * plan->p.head_dim, (size_t)plan->p.batch * plan->p.kv_heads};
    return rc != CL_SUCCESS ? rc : clattn__chain_launch(chain, pack, 2, global, NULL);
}

static cl_int enqueue_side(clattn_plan *plan, command_chain *chain, cl_mem src, cl_mem extra, cl_mem side, int width)
{
    const clattn_problem *p = &plan->p;
    if (extra == NULL)
        extra = src; /* never read: n_extra is 0 */
    const int tail_own = p->summary_tail == CLATTN_SUMMARY_TAIL_OWN;
    const kernel_arg args[] = {ARG(src),
                               ARG(extra),
                               ARG(plan->global_buf),
                               ARG(plan->seq_lens),
                               ARG(side),
                               ARG(p->kv_len),
                               ARG(width),
                               ARG(p->kv_heads),
                               ARG(p->num_global),
                               ARG(plan->n_summary),
                               ARG(p->extra_len),
                               ARG(p->summary_block),
                               ARG(tail_own)};
    const cl_int rc = clattn__set_args(plan->side, args, sizeof args / sizeof args[0]);
    const size_t global[2] = {(size_t)plan->n_side * width, (size_t)p->batch * p->kv_heads};
    return rc != CL_SUCCESS ? rc : clattn__chain_launch(chain, plan->side, 2, global, NULL);
}

/* One attention pass: the band of every row, or (use_rows) the dense rows of the global tokens. */
typedef struct {
    cl_mem q, keys, v, out, lse;
    int use_rows, num_rows, left, right, dilation, side_begin, side_count, reverse;
} attention_pass;

/* A kernel argument that must be a buffer even where the kernel never reads it (no side keys,
 * no lse): `mem`, else a buffer of the run. */
static cl_mem or_unread(cl_mem mem, cl_mem fallback)
{
    return mem != NULL ? mem : fallback;
}

/* Tiles per work-item of the CPU variant for a launch of `tiles` tiles per (batch, head): the
 * plan's item_tiles (at most CLATTN_BAND_ITEM_TILES where the pass's band holds fewer than
 * CLATTN_WIDE_BAND_KEYS keys), halved while that leaves fewer than CLATTN_ITEMS_PER_CU work-items
 * per compute unit. (1 for the GPU variant, whose work-group owns one tile.) */
static int item_tiles(const clattn_plan *plan, const attention_pass *pass, size_t tiles)
{
    if (!plan->tiles.cpu_variant)
        return 1;
    const size_t heads = (size_t)plan->p.batch * plan->p.heads;
    const size_t wanted = clattn__plan_wanted_items(plan);
    const int narrow = (long long)pass->left + pass->right + 1 < CLATTN_WIDE_BAND_KEYS;
    int t = plan->tiles.item_tiles;
    if (narrow && t > CLATTN_BAND_ITEM_TILES)
        t = CLATTN_BAND_ITEM_TILES;
    while (t > 1 && (tiles + t - 1) / t * heads < wanted)
        t /= 2;
    return t;
}

static cl_int enqueue_attention(clattn_plan *plan, command_chain *chain, const attention_pass *pass)
{
    const clattn_problem *p = &plan->p;
    const size_t per_tile = plan->lanes ? CLATTN_LANES_ROWS : (size_t)clattn__tiles_group_rows(&plan->tiles);
    const size_t tiles = ((size_t)pass->num_rows + per_tile - 1) / per_tile;
    const int per_item = item_tiles(plan, pass, tiles);
    const cl_mem side_k = or_unread(clattn__plan_packs_keys(plan) ? plan->side_panels : plan->side_k, pass->keys);
    const cl_mem side_v = or_unread(plan->side_v, pass->v);
    const cl_mem lse = or_unread(pass->lse, pass->out);
    const int write_lse = pass->lse != NULL;
    const kernel_arg args[] = {
        ARG(pass->q),        ARG(pass->keys),     ARG(pass->v),         ARG(side_k),           ARG(side_v),
        ARG(plan->side_pos), ARG(plan->seq_lens), ARG(plan->rows),      ARG(pass->out),        ARG(lse),
        ARG(p->heads),       ARG(p->kv_heads),    ARG(p->q_len),        ARG(p->kv_len),        ARG(pass->num_rows),
        ARG(pass->use_rows), ARG(pass->left),     ARG(pass->right),     ARG(pass->dilation),   ARG(p->causal),
        ARG(plan->n_side),   ARG(p->num_global),  ARG(plan->n_summary), ARG(pass->side_begin), ARG(pass->side_count),
        ARG(plan->qscale),   ARG(write_lse),      ARG(pass->reverse),   ARG(per_item)};
    const cl_int rc = clattn__set_args(plan->attention, args, sizeof args / sizeof args[0]);
    if (rc != CL_SUCCESS)
        return rc;
    const size_t local[2] = {clattn__tiles_group_size(&plan->tiles), 1};
    const size_t global[2] = {(tiles + per_item - 1) / per_item * local[0], (size_t)p->batch * p->heads};
    return clattn__chain_launch(chain, plan->attention, 2, global, local);
}

/* Positions of the side keys of every batch entry (SPEC.md 4-6), see cl/common.cl. */
static void fill_side_positions(const clattn_plan *plan, const int *seq_lens, int *pos)
{
    const clattn_problem *p = &plan->p;
    for (int b = 0; b < p->batch; b++) {
        int *row = pos + (size_t)b * plan->n_side;
        for (int g = 0; g < p->num_global; g++)
            row[g] = p->global_idx[g];
        const int blocks = clattn__summary_blocks(p, seq_lens[b]);
        for (int c = 0; c < plan->n_summary; c++) {
            int start, end;
            if (c < blocks)
                clattn__summary_keys(p, seq_lens[b], c, &start, &end);
            row[p->num_global + c] = c < blocks ? end - 1 : -1; /* its last key; -1: no block */
        }
        for (int x = 0; x < p->extra_len; x++)
            row[p->num_global + plan->n_summary + x] = 0;
    }
}

/* Uploads seq_lens and side positions when they differ from the last run's. */
static cl_int upload_lengths(clattn_plan *plan, command_chain *chain, const int *seq_lens)
{
    const clattn_problem *p = &plan->p;
    int changed = !plan->uploaded;
    for (int b = 0; b < p->batch; b++) {
        const int len = clattn__valid_keys(p, seq_lens, b);
        changed |= plan->host_seq_lens[b] != len;
        plan->host_seq_lens[b] = len;
    }
    if (!changed)
        return CL_SUCCESS;
    plan->uploaded = 0;
    fill_side_positions(plan, plan->host_seq_lens, plan->host_side_pos);
    cl_int rc = chain_upload(chain, plan->ctx->cl, plan->seq_lens, (size_t)p->batch * sizeof(int), plan->host_seq_lens);
    if (rc == CL_SUCCESS && plan->n_side > 0)
        rc = chain_upload(chain, plan->ctx->cl, plan->side_pos, (size_t)p->batch * plan->n_side * sizeof(int),
                          plan->host_side_pos);
    plan->uploaded = rc == CL_SUCCESS;
    return rc;
}

static cl_int enqueue_side_keys(clattn_plan *plan, command_chain *chain, const clattn_buffers *bufs)
{
    cl_int rc = enqueue_side(plan, chain, bufs->k, bufs->kx, plan->side_k, plan->p.head_dim);
    return rc == CL_SUCCESS ? enqueue_side(plan, chain, bufs->v, bufs->vx, plan->side_v, plan->p.value_dim) : rc;
}

/* Decode: every split's partial result, then their merge into out and lse. */
static cl_int enqueue_split(clattn_plan *plan, command_chain *chain, const clattn_buffers *bufs)
{
    const clattn_problem *p = &plan->p;
    cl_int rc = plan->n_side > 0 ? enqueue_side_keys(plan, chain, bufs) : CL_SUCCESS;
    const cl_mem side_k = or_unread(plan->side_k, bufs->k);
    const cl_mem side_v = or_unread(plan->side_v, bufs->v);
    int left, right;
    clattn__band_sides(p, &left, &right);
    const kernel_arg args[] = {ARG(bufs->q),         ARG(bufs->k),        ARG(bufs->v),        ARG(side_k),
                               ARG(side_v),          ARG(plan->side_pos), ARG(plan->seq_lens), ARG(plan->part_acc),
                               ARG(plan->part_ml),   ARG(p->heads),       ARG(p->kv_heads),    ARG(p->q_len),
                               ARG(p->kv_len),       ARG(left),           ARG(right),          ARG(p->dilation),
                               ARG(p->causal),       ARG(plan->n_side),   ARG(p->num_global),  ARG(plan->n_summary),
                               ARG(plan->split_len), ARG(plan->qscale)};
    if (rc == CL_SUCCESS)
        rc = clattn__set_args(plan->split, args, sizeof args / sizeof args[0]);
    const int group_rows = p->heads / p->kv_heads * p->q_len;
    const size_t global[3] = {(size_t)plan->splits, (size_t)((group_rows + plan->tiles.rows - 1) / plan->tiles.rows),
                              (size_t)p->batch * p->kv_heads};
    const size_t local[3] = {1, 1, 1};
    if (rc == CL_SUCCESS)
        rc = clattn__chain_launch(chain, plan->split, 3, global, local);

    const int rows = p->batch * p->heads * p->q_len;
    const cl_mem lse = or_unread(bufs->lse, bufs->out);
    const int write_lse = bufs->lse != NULL;
    const kernel_arg merge[] = {ARG(plan->part_acc), ARG(plan->part_ml), ARG(bufs->out), ARG(lse),
                                ARG(rows),           ARG(plan->splits),  ARG(write_lse)};
    if (rc == CL_SUCCESS)
        rc = clattn__set_args(plan->combine, merge, sizeof merge / sizeof merge[0]);
    const size_t one = 1, all_rows = (size_t)rows;
    return rc == CL_SUCCESS ? clattn__chain_launch(chain, plan->combine, 1, &all_rows, &one) : rc;
}

/* GPU variant: a pass's rows (decode's, or the global rows) split over the keys they see, then the
 * merge of the splits into the pass's out and lse (cl/decode_gpu.cl). */
static cl_int enqueue_split_gpu(clattn_plan *plan, command_chain *chain, const attention_pass *pass)
{
    const clattn_problem *p = &plan->p;
    const cl_mem side_k = or_unread(plan->side_k, pass->keys);
    const cl_mem side_v = or_unread(plan->side_v, pass->v);
    const kernel_arg args[] = {
        ARG(pass->q),        ARG(pass->keys),        ARG(pass->v),         ARG(side_k),           ARG(side_v),
        ARG(plan->side_pos), ARG(plan->seq_lens),    ARG(plan->rows),      ARG(plan->part_acc),   ARG(plan->part_ml),
        ARG(p->heads),       ARG(p->kv_heads),       ARG(p->q_len),        ARG(p->kv_len),        ARG(pass->num_rows),
        ARG(pass->use_rows), ARG(pass->left),        ARG(pass->right),     ARG(pass->dilation),   ARG(p->causal),
        ARG(plan->n_side),   ARG(p->num_global),     ARG(plan->n_summary), ARG(pass->side_begin), ARG(pass->side_count),
        ARG(plan->key_lo),   ARG(plan->band_splits), ARG(plan->split_len), ARG(plan->qscale)};
    cl_int rc = clattn__set_args(plan->split, args, sizeof args / sizeof args[0]);
    const clattn_split_tiles *t = &plan->split_tiles;
    const int group_rows = p->heads / p->kv_heads * pass->num_rows;
    const size_t local[3] = {(size_t)t->wg, 1, 1};
    const size_t global[3] = {(size_t)plan->splits * t->wg, (size_t)((group_rows + t->rb - 1) / t->rb),
                              (size_t)p->batch * p->kv_heads};
    if (rc == CL_SUCCESS)
        rc = clattn__chain_launch(chain, plan->split, 3, global, local);

    const cl_mem lse = or_unread(pass->lse, pass->out);
    const int write_lse = pass->lse != NULL;
    const kernel_arg merge[] = {
        ARG(plan->part_acc), ARG(plan->part_ml),  ARG(plan->rows),     ARG(pass->out),    ARG(lse),
        ARG(p->q_len),       ARG(pass->num_rows), ARG(pass->use_rows), ARG(plan->splits), ARG(write_lse)};
    if (rc == CL_SUCCESS)
        rc = clattn__set_args(plan->combine, merge, sizeof merge / sizeof merge[0]);
    /* One work-item per value column: the smallest halving of the work-group that covers Dv. */
    size_t cols = (size_t)t->wg;
    while (cols > 1 && cols / 2 >= (size_t)p->value_dim)
        cols /= 2;
    const size_t merge_local[2] = {cols, 1};
    const size_t merge_global[2] = {((size_t)p->value_dim + cols - 1) / cols * cols,
                                    (size_t)p->batch * p->heads * pass->num_rows};
    return rc == CL_SUCCESS ? clattn__chain_launch(chain, plan->combine, 2, merge_global, merge_local) : rc;
}

static cl_int enqueue_passes(clattn_plan *plan, command_chain *chain, const clattn_buffers *bufs)
{
    const clattn_problem *p = &plan->p;
    const int panels = clattn__plan_packs_keys(plan);
    if (plan->decode && plan->tiles.cpu_variant)
        return enqueue_split(plan, chain, bufs);
    cl_int rc = CL_SUCCESS;
    if (panels)
        rc = enqueue_pack(plan, chain, plan->pack, bufs->k, plan->k_panels, p->kv_len);
    if (rc == CL_SUCCESS && plan->n_side > 0) {
        rc = enqueue_side_keys(plan, chain, bufs);
        if (rc == CL_SUCCESS && panels)
            rc = enqueue_pack(plan, chain, plan->pack_side, plan->side_k, plan->side_panels, plan->n_side);
    }
    attention_pass band = {bufs->q,   panels ? plan->k_panels : bufs->k,
                           bufs->v,   bufs->out,
                           bufs->lse, 0,
                           p->q_len,  0,
                           0,         p->dilation,
                           0,         plan->n_side,
                           p->causal};
    clattn__band_sides(p, &band.left, &band.right);
    if (plan->decode) /* GPU variant */
        return rc == CL_SUCCESS ? enqueue_split_gpu(plan, chain, &band) : rc;
    if (rc == CL_SUCCESS)
        rc = enqueue_attention(plan, chain, &band);
    if (rc != CL_SUCCESS || plan->n_global_rows == 0)
        return rc;

    /* Global rows see every key: a dense pass that overwrites their banded result. */
    attention_pass dense = band;
    dense.use_rows = 1;
    dense.num_rows = plan->n_global_rows;
    dense.left = p->q_len + p->kv_len;
    dense.right = p->causal ? 0 : dense.left;
    dense.dilation = 1;
    dense.reverse = 0;
    dense.side_begin = p->num_global; /* the globals are inside the dense band already */
    dense.side_count = plan->n_side - p->num_global;
    if (p->global_qkv) { /* Longformer's own projections: no summary or extra keys */
        dense.q = bufs->qg;
        dense.keys = bufs->kg;
        dense.v = bufs->vg;
        dense.side_count = 0;
        if (panels) {
            rc = enqueue_pack(plan, chain, plan->pack, bufs->kg, plan->kg_panels, p->kv_len);
            dense.keys = plan->kg_panels;
        }
    }
    if (rc != CL_SUCCESS)
        return rc;
    return plan->tiles.cpu_variant ? enqueue_attention(plan, chain, &dense) : enqueue_split_gpu(plan, chain, &dense);
}

int clattn__plan_enqueue(clattn_plan *plan, cl_command_queue queue, const clattn_buffers *buffers, cl_uint num_wait,
                         const cl_event *wait, cl_event *event, clattn__error *err)
{
    command_chain chain = {queue != NULL ? queue : plan->ctx->queue, num_wait, wait, NULL};
    cl_int rc = upload_lengths(plan, &chain, buffers->seq_lens);
    if (rc == CL_SUCCESS)
        rc = plan->grid != NULL ? clattn__grid_enqueue(plan, &chain, buffers) : enqueue_passes(plan, &chain, buffers);
    if (rc != CL_SUCCESS) {
        if (chain.last != NULL) {
            clWaitForEvents(1, &chain.last); /* nothing of this run may still be running */
            clReleaseEvent(chain.last);
        }
        return clattn__fail(err, rc, "enqueueing attention failed: %s", clattn__cl_error_name(rc));
    }
    if (event != NULL)
        *event = chain.last;
    else
        clReleaseEvent(chain.last);
    return CLATTN_STATUS_OK;
}

int clattn_plan_enqueue(clattn_plan *plan, cl_command_queue queue, const clattn_buffers *buffers, cl_uint num_wait,
                        const cl_event *wait, cl_event *event)
{
    if (plan == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    clattn_context *ctx = plan->ctx;
    clattn__error err = {{0}};
    int status = CLATTN_STATUS_OK;
    if (buffers == NULL)
        status = clattn__fail(&err, CLATTN_STATUS_NULL_ARGUMENT, "buffers is NULL");
    else if (ctx->reference)
        status = clattn__fail(&err, CLATTN_STATUS_UNSUPPORTED, "the reference device has no OpenCL buffers");
    else if (num_wait > 0 && wait == NULL)
        status = clattn__fail(&err, CLATTN_STATUS_NULL_ARGUMENT, "wait is NULL with num_wait = %u", num_wait);
    else
        status = clattn__check_device_buffers(&plan->p, buffers, &err);
    if (!status)
        status = clattn__plan_enqueue(plan, queue, buffers, num_wait, wait, event, &err);
    return clattn__context_report(ctx, status, &err);
}
