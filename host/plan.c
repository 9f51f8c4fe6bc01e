/* Plans: created once per problem (kernels built, tiles chosen, scratch allocated), then run
 * many times. A run enqueues: key packing (CPU variant), the side keys (globals, summaries,
 * extras), the banded attention pass over every row, and a dense pass over the global rows.
 * Decode (a few query rows, CPU variant) instead splits the keys: attention_split, then
 * combine_splits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "problem.h"
#include "program.h"
#include "reference.h"
#include "tuning.h"

struct clattn_plan {
    clattn_context *ctx;
    clattn_problem p; /* normalized; p.global_idx points at global_idx below */
    int *global_idx;  /* [num_global], sorted */
    int *global_rows; /* [n_global_rows] query rows at global positions, sorted */
    int n_global_rows;
    int n_summary, n_side; /* side keys: [globals | summaries | extras] */
    clattn_tiles tiles;
    int splits;    /* decode: key splits (0: the banded pass instead) */
    int split_len; /* decode: keys per split, a multiple of CLATTN_KEY_CHUNK */
    cl_kernel attention, pack, side, split, combine;
    /* scratch (device): NULL where the problem does not need it */
    cl_mem k_panels;    /* [B, Hkv, ceil(Nk/KC), D, KC]           CPU variant, not decode */
    cl_mem kg_panels;   /* the same for Kg                         the same, global_qkv */
    cl_mem side_k;      /* [B, Hkv, NS, D] */
    cl_mem side_v;      /* [B, Hkv, NS, Dv] */
    cl_mem side_panels; /* [B, Hkv, ceil(NS/KC), D, KC]            CPU variant, not decode */
    cl_mem side_pos;    /* int [B, NS] */
    cl_mem seq_lens;    /* int [B] */
    cl_mem rows;        /* int [max(1, n_global_rows)] */
    cl_mem global_buf;  /* int [max(1, num_global)] */
    cl_mem part_acc;    /* [B, H, Nq, splits, Dv]                   decode */
    cl_mem part_ml;     /* [B, H, Nq, splits, 2] running max and sum  decode */
    float qscale;       /* the scale times log2(e): the kernels' softmax is in base 2 */
    size_t scratch_bytes;
    int *host_seq_lens; /* [B] last uploaded */
    int *host_side_pos; /* [B, NS] last uploaded */
    int uploaded;       /* host_* match the device copies */
};

/* ----------------------------------------------------------------------------------------- */
/* Creation                                                                                   */
/* ----------------------------------------------------------------------------------------- */

static int compare_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int create_buffer(clattn_plan *plan, size_t bytes, const char *what, cl_mem *out, clattn__error *err)
{
    const clattn__device_caps *caps = &plan->ctx->caps;
    if (bytes > caps->max_alloc)
        return clattn__fail(err, CLATTN_STATUS_DEVICE_LIMIT,
                           "%s needs %zu bytes, more than the device's largest allocation (%llu)", what, bytes,
                           (unsigned long long)caps->max_alloc);
    cl_int rc;
    *out = clCreateBuffer(plan->ctx->cl, CL_MEM_READ_WRITE, bytes, NULL, &rc);
    if (rc != CL_SUCCESS)
        return clattn__fail(err, rc, "%s: clCreateBuffer of %zu bytes failed: %s", what, bytes,
                           clattn__cl_error_name(rc));
    plan->scratch_bytes += bytes;
    return CLATTN_STATUS_OK;
}

static size_t panel_bytes(const clattn_plan *plan, int n)
{
    const clattn_problem *p = &plan->p;
    const size_t kc = CLATTN_KEY_CHUNK, chunks = ((size_t)n + kc - 1) / kc;
    return (size_t)p->batch * p->kv_heads * chunks * kc * p->head_dim * sizeof(float);
}

/* The CPU variant reads K as panels, except decode, which reads it row-major. */
static int packs_keys(const clattn_plan *plan)
{
    return plan->tiles.cpu_variant && plan->splits == 0;
}

static int create_scratch(clattn_plan *plan, clattn__error *err)
{
    const clattn_problem *p = &plan->p;
    const size_t bhk = (size_t)p->batch * p->kv_heads;
    const int panels = packs_keys(plan);
    int status = CLATTN_STATUS_OK;
    if (panels)
        status = create_buffer(plan, panel_bytes(plan, p->kv_len), "key panels", &plan->k_panels, err);
    if (!status && plan->splits > 0) {
        const size_t parts = (size_t)p->batch * p->heads * p->q_len * plan->splits;
        status =
            create_buffer(plan, parts * p->value_dim * sizeof(float), "split partial outputs", &plan->part_acc, err);
        if (!status)
            status = create_buffer(plan, parts * 2 * sizeof(float), "split partial sums", &plan->part_ml, err);
    }
    if (!status && panels && p->global_qkv)
        status = create_buffer(plan, panel_bytes(plan, p->kv_len), "global key panels", &plan->kg_panels, err);
    if (!status && plan->n_side > 0) {
        status = create_buffer(plan, bhk * plan->n_side * p->head_dim * sizeof(float), "side keys", &plan->side_k, err);
        if (!status)
            status = create_buffer(plan, bhk * plan->n_side * p->value_dim * sizeof(float), "side values",
                                   &plan->side_v, err);
        if (!status && panels)
            status = create_buffer(plan, panel_bytes(plan, plan->n_side), "side key panels", &plan->side_panels, err);
    }
    const size_t n_pos = (size_t)p->batch * (plan->n_side > 0 ? plan->n_side : 1);
    if (!status)
        status = create_buffer(plan, n_pos * sizeof(int), "side positions", &plan->side_pos, err);
    if (!status)
        status = create_buffer(plan, (size_t)p->batch * sizeof(int), "seq_lens", &plan->seq_lens, err);
    if (!status)
        status = create_buffer(plan, (size_t)(plan->n_global_rows > 0 ? plan->n_global_rows : 1) * sizeof(int),
                               "global rows", &plan->rows, err);
    if (!status)
        status = create_buffer(plan, (size_t)(p->num_global > 0 ? p->num_global : 1) * sizeof(int), "global indices",
                               &plan->global_buf, err);
    if (status)
        return status;
    plan->host_seq_lens = calloc((size_t)p->batch, sizeof(int));
    plan->host_side_pos = calloc(n_pos, sizeof(int));
    if (plan->host_seq_lens == NULL || plan->host_side_pos == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "host copies of %zu side positions", n_pos);

    /* Fixed for the plan's life: the global indices and the rows they select. */
    cl_int rc = CL_SUCCESS;
    if (p->num_global > 0)
        rc = clEnqueueWriteBuffer(plan->ctx->queue, plan->global_buf, CL_TRUE, 0, (size_t)p->num_global * sizeof(int),
                                  plan->global_idx, 0, NULL, NULL);
    if (rc == CL_SUCCESS && plan->n_global_rows > 0)
        rc = clEnqueueWriteBuffer(plan->ctx->queue, plan->rows, CL_TRUE, 0, (size_t)plan->n_global_rows * sizeof(int),
                                  plan->global_rows, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return clattn__fail(err, rc, "uploading global indices failed: %s", clattn__cl_error_name(rc));
    return CLATTN_STATUS_OK;
}

/* Kernel `name` of program `source` (cl/ file names joined by '+', see program.h) built with `options`. */
static int create_kernel(clattn_plan *plan, const char *source, const char *name, const char *options, cl_kernel *out,
                         clattn__error *err)
{
    cl_program prog;
    int status = clattn__program_get(plan->ctx, source, options, &prog, err);
    if (status != CLATTN_STATUS_OK)
        return status;
    cl_int rc;
    *out = clCreateKernel(prog, name, &rc);
    clReleaseProgram(prog);
    if (rc != CL_SUCCESS)
        return clattn__fail(err, rc, "clCreateKernel('%s') failed: %s", name, clattn__cl_error_name(rc));
    return CLATTN_STATUS_OK;
}

static int create_kernels(clattn_plan *plan, clattn__error *err)
{
    const clattn_problem *p = &plan->p;
    char options[512];
    clattn__attention_options(&plan->tiles, p->head_dim, p->value_dim, options, sizeof options);
    /* Each variant's program: the common part, the variant, and for the CPU the decode split. */
    const char *attention = plan->tiles.cpu_variant ? "common+attention_cpu+decode" : "common+attention_gpu";
    int status;
    if (plan->splits > 0) {
        status = create_kernel(plan, attention, "attention_split", options, &plan->split, err);
        if (!status)
            status = create_kernel(plan, attention, "combine_splits", options, &plan->combine, err);
    } else
        status = create_kernel(plan, attention, "attention", options, &plan->attention, err);
    if (!status && packs_keys(plan)) {
        char pack_options[64];
        clattn__pack_options(p->head_dim, pack_options, sizeof pack_options);
        status = create_kernel(plan, "pack_keys", "pack_keys", pack_options, &plan->pack, err);
    }
    if (!status && plan->n_side > 0)
        status = create_kernel(plan, "side_keys", "side_keys", "", &plan->side, err);
    return status;
}

/* Work-items a CPU-variant launch aims for: CLATTN_ITEMS_PER_CU per compute unit. */
static size_t wanted_items(const clattn_plan *plan)
{
    return (size_t)CLATTN_ITEMS_PER_CU * plan->ctx->caps.compute_units;
}

/* Decode: enough key splits that every compute unit gets several work-items, none shorter than
 * CLATTN_SPLIT_MIN_KEYS keys. */
static void choose_splits(clattn_plan *plan)
{
    const clattn_problem *p = &plan->p;
    const int group_rows = p->heads / p->kv_heads * p->q_len;
    const size_t items =
        (size_t)p->batch * p->kv_heads * (size_t)((group_rows + plan->tiles.rows - 1) / plan->tiles.rows);
    const size_t wanted = wanted_items(plan);
    long long splits = items >= wanted ? 1 : (long long)((wanted + items - 1) / items);
    const long long most = ((long long)p->kv_len + CLATTN_SPLIT_MIN_KEYS - 1) / CLATTN_SPLIT_MIN_KEYS;
    if (splits > most)
        splits = most; /* kv_len >= 1 (normalized), so most >= 1 */
    long long len = ((long long)p->kv_len + splits - 1) / splits;
    len = (len + CLATTN_KEY_CHUNK - 1) / CLATTN_KEY_CHUNK * CLATTN_KEY_CHUNK;
    plan->split_len = (int)len;
    plan->splits = (int)(((long long)p->kv_len + len - 1) / len);
}

/* Global tokens: a sorted private copy, and the query rows that sit at global positions. */
static int prepare_globals(clattn_plan *plan, clattn__error *err)
{
    clattn_problem *p = &plan->p;
    if (p->num_global == 0) {
        p->global_idx = NULL;
        return CLATTN_STATUS_OK;
    }
    plan->global_idx = malloc((size_t)p->num_global * sizeof(int));
    plan->global_rows = malloc((size_t)p->num_global * sizeof(int));
    if (plan->global_idx == NULL || plan->global_rows == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%d global indices", p->num_global);
    memcpy(plan->global_idx, p->global_idx, (size_t)p->num_global * sizeof(int));
    qsort(plan->global_idx, (size_t)p->num_global, sizeof(int), compare_int);
    p->global_idx = plan->global_idx;
    for (int g = 0; g < p->num_global; g++) {
        const int row = plan->global_idx[g] - (p->kv_len - p->q_len); /* p(i) = i + Nk - Nq */
        if (row >= 0 && row < p->q_len)
            plan->global_rows[plan->n_global_rows++] = row;
    }
    return CLATTN_STATUS_OK;
}

int clattn_plan_create(clattn_context *ctx, const clattn_problem *problem, clattn_plan **out)
{
    if (ctx == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    clattn__error err = {{0}};
    if (out == NULL)
        return clattn__context_report(ctx, clattn__fail(&err, CLATTN_STATUS_NULL_ARGUMENT, "out (the plan) is NULL"),
                                     &err);
    *out = NULL;
    clattn_plan *plan = calloc(1, sizeof *plan);
    if (plan == NULL)
        return clattn__context_report(ctx, clattn__fail(&err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "plan"), &err);
    plan->ctx = ctx;
    int status = clattn__problem_normalize(problem, &plan->p, &err);
    if (!status)
        status = prepare_globals(plan, &err);
    if (!status && !ctx->reference) {
        plan->n_summary = clattn__summary_count(&plan->p);
        plan->n_side = plan->p.num_global + plan->n_summary + plan->p.extra_len;
        if (plan->p.grid_pattern != CLATTN_GRID_NONE)
            status = clattn__fail(&err, CLATTN_STATUS_UNSUPPORTED,
                                 "grid_pattern = %d: 2-D patterns run on the reference device only",
                                 (int)plan->p.grid_pattern);
        /* Decode candidates: a tile holds rows of every head of a kv head's query group. */
        const int decode = plan->p.q_len <= CLATTN_SPLIT_MAX_QUERIES && plan->n_global_rows == 0;
        const int group_rows = plan->p.heads / plan->p.kv_heads * plan->p.q_len;
        if (!status)
            status = clattn__choose_tiles(ctx, plan->p.head_dim, plan->p.value_dim, decode ? group_rows : plan->p.q_len,
                                         &plan->tiles, &err);
        plan->qscale = plan->p.scale * (float)CL_M_LOG2E;
        if (!status && decode && plan->tiles.cpu_variant)
            choose_splits(plan);
        if (!status)
            status = create_kernels(plan, &err);
        if (!status)
            status = create_scratch(plan, &err);
    }
    if (status != CLATTN_STATUS_OK) {
        clattn_plan_free(plan);
        return clattn__context_report(ctx, status, &err);
    }
    *out = plan;
    return CLATTN_STATUS_OK;
}

void clattn_plan_free(clattn_plan *plan)
{
    if (plan == NULL)
        return;
    cl_mem *buffers[] = {&plan->global_buf,  &plan->rows,    &plan->seq_lens, &plan->side_pos,
                         &plan->side_panels, &plan->side_v,  &plan->side_k,   &plan->kg_panels,
                         &plan->k_panels,    &plan->part_ml, &plan->part_acc};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        if (*buffers[i] != NULL)
            clReleaseMemObject(*buffers[i]);
    cl_kernel kernels[] = {plan->side, plan->pack, plan->attention, plan->split, plan->combine};
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
        if (kernels[i] != NULL)
            clReleaseKernel(kernels[i]);
    free(plan->host_side_pos);
    free(plan->host_seq_lens);
    free(plan->global_rows);
    free(plan->global_idx);
    free(plan);
}

size_t clattn_plan_scratch_bytes(const clattn_plan *plan)
{
    return plan != NULL ? plan->scratch_bytes : 0;
}

/* ----------------------------------------------------------------------------------------- */
/* Validation of a run's buffers                                                              */
/* ----------------------------------------------------------------------------------------- */

/* One tensor argument: its name, whether the problem needs it, and the bytes it must hold. */
typedef struct {
    const char *name;
    int needed;
    size_t bytes;
} tensor_need;

/* The tensors of a run in the order q, k, v, out, lse, qg, kg, vg, kx, vx. */
enum { T_Q, T_K, T_V, T_OUT, T_LSE, T_QG, T_KG, T_VG, T_KX, T_VX, T_COUNT };

static void tensor_needs(const clattn_problem *p, const clattn__tensor_bytes *b, tensor_need *needs)
{
    const int gq = p->global_qkv != 0, ex = p->extra_len > 0;
    const tensor_need all[T_COUNT] = {
        {"q", 1, b->q},   {"k", 1, b->k},   {"v", 1, b->v},   {"out", 1, b->out}, {"lse", 0, b->lse},
        {"qg", gq, b->q}, {"kg", gq, b->k}, {"vg", gq, b->v}, {"kx", ex, b->kx},  {"vx", ex, b->vx},
    };
    memcpy(needs, all, sizeof all);
}

/* present[i]: whether tensor i was given; size[i]: its size in bytes. */
static int check_tensors(const clattn_problem *p, const int *present, const size_t *size, clattn__error *err)
{
    clattn__tensor_bytes bytes;
    int status = clattn__problem_bytes(p, &bytes, err);
    if (status)
        return status;
    tensor_need needs[T_COUNT];
    tensor_needs(p, &bytes, needs);
    for (int i = 0; i < T_COUNT; i++) {
        if (needs[i].needed && !present[i])
            return clattn__fail(err, CLATTN_STATUS_NULL_ARGUMENT, "%s is NULL", needs[i].name);
        if (present[i] && size[i] < needs[i].bytes)
            return clattn__fail(err, CLATTN_STATUS_BUFFER_TOO_SMALL, "%s holds %zu bytes, the shape needs %zu",
                               needs[i].name, size[i], needs[i].bytes);
    }
    return CLATTN_STATUS_OK;
}

static int check_device_buffers(const clattn_problem *p, const clattn_buffers *bufs, clattn__error *err)
{
    const cl_mem mems[T_COUNT] = {bufs->q,  bufs->k,  bufs->v,  bufs->out, bufs->lse,
                                  bufs->qg, bufs->kg, bufs->vg, bufs->kx,  bufs->vx};
    int present[T_COUNT];
    size_t size[T_COUNT];
    for (int i = 0; i < T_COUNT; i++) {
        present[i] = mems[i] != NULL;
        size[i] = 0;
        if (present[i]) {
            const cl_int rc = clGetMemObjectInfo(mems[i], CL_MEM_SIZE, sizeof size[i], &size[i], NULL);
            if (rc != CL_SUCCESS)
                return clattn__fail(err, rc, "tensor %d is not a valid buffer: %s", i, clattn__cl_error_name(rc));
        }
    }
    return check_tensors(p, present, size, err);
}

/* ----------------------------------------------------------------------------------------- */
/* Enqueue                                                                                    */
/* ----------------------------------------------------------------------------------------- */

/* Events chain the commands of one run, so that out-of-order queues are safe too. */
typedef struct {
    cl_command_queue queue;
    cl_uint num_wait;
    const cl_event *wait;
    cl_event last;
} command_chain;

static cl_int chain_launch(command_chain *chain, cl_kernel kernel, cl_uint dims, const size_t *global,
                           const size_t *local)
{
    cl_event done = NULL;
    const cl_int rc = clEnqueueNDRangeKernel(chain->queue, kernel, dims, NULL, global, local, chain->num_wait,
                                             chain->num_wait ? chain->wait : NULL, &done);
    if (rc != CL_SUCCESS)
        return rc;
    if (chain->last != NULL)
        clReleaseEvent(chain->last);
    chain->last = done;
    chain->num_wait = 1;
    chain->wait = &chain->last;
    return CL_SUCCESS;
}

/* Sets kernel arguments from a list of (size, pointer) pairs. */
typedef struct {
    size_t size;
    const void *value;
} kernel_arg;

static cl_int set_args(cl_kernel kernel, const kernel_arg *args, cl_uint count)
{
    for (cl_uint i = 0; i < count; i++) {
        const cl_int rc = clSetKernelArg(kernel, i, args[i].size, args[i].value);
        if (rc != CL_SUCCESS)
            return rc;
    }
    return CL_SUCCESS;
}

#define ARG(x)                                                                                                         \
    {                                                                                                                  \
        sizeof(x), &(x)                                                                                                \
    }

static cl_int enqueue_pack(clattn_plan *plan, command_chain *chain, cl_mem keys, cl_mem panels, int n)
{
    const kernel_arg args[] = {ARG(keys), ARG(panels), ARG(n)};
    const cl_int rc = set_args(plan->pack, args, 3);
    const size_t chunks = ((size_t)n + CLATTN_KEY_CHUNK - 1) / CLATTN_KEY_CHUNK;
    const size_t global[2] = {chunks * plan->p.head_dim, (size_t)plan->p.batch * plan->p.kv_heads};
    return rc != CL_SUCCESS ? rc : chain_launch(chain, plan->pack, 2, global, NULL);
}

static cl_int enqueue_side(clattn_plan *plan, command_chain *chain, cl_mem src, cl_mem extra, cl_mem side, int width)
{
    const clattn_problem *p = &plan->p;
    if (extra == NULL)
        extra = src; /* never read: n_extra is 0 */
    const kernel_arg args[] = {
        ARG(src),          ARG(extra),           ARG(plan->global_buf), ARG(plan->seq_lens), ARG(side),
        ARG(p->kv_len),    ARG(width),           ARG(p->kv_heads),      ARG(p->num_global),  ARG(plan->n_summary),
        ARG(p->extra_len), ARG(p->summary_block)};
    const cl_int rc = set_args(plan->side, args, 12);
    const size_t global[2] = {(size_t)plan->n_side * width, (size_t)p->batch * p->kv_heads};
    return rc != CL_SUCCESS ? rc : chain_launch(chain, plan->side, 2, global, NULL);
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

/* Tiles per work-item of the CPU variant for a launch of `tiles` tiles per (batch, head):
 * CLATTN_ITEM_TILES, halved while that leaves fewer than CLATTN_ITEMS_PER_CU work-items per
 * compute unit. (1 for the GPU variant, whose work-group owns one tile.) */
static int item_tiles(const clattn_plan *plan, size_t tiles)
{
    if (!plan->tiles.cpu_variant)
        return 1;
    const size_t heads = (size_t)plan->p.batch * plan->p.heads;
    const size_t wanted = wanted_items(plan);
    int t = CLATTN_ITEM_TILES;
    while (t > 1 && (tiles + t - 1) / t * heads < wanted)
        t /= 2;
    return t;
}

static cl_int enqueue_attention(clattn_plan *plan, command_chain *chain, const attention_pass *pass)
{
    const clattn_problem *p = &plan->p;
    const size_t per_tile = (size_t)(plan->tiles.cpu_variant ? plan->tiles.rows : plan->tiles.wg);
    const size_t tiles = ((size_t)pass->num_rows + per_tile - 1) / per_tile;
    const int per_item = item_tiles(plan, tiles);
    const cl_mem side_k = or_unread(packs_keys(plan) ? plan->side_panels : plan->side_k, pass->keys);
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
    const cl_int rc = set_args(plan->attention, args, sizeof args / sizeof args[0]);
    if (rc != CL_SUCCESS)
        return rc;
    const size_t local[2] = {plan->tiles.cpu_variant ? 1 : (size_t)plan->tiles.wg, 1};
    const size_t global[2] = {(tiles + per_item - 1) / per_item * local[0], (size_t)p->batch * p->heads};
    return chain_launch(chain, plan->attention, 2, global, local);
}

/* Positions of the side keys of every batch entry (SPEC.md 4-6), see cl/common.cl. */
static void fill_side_positions(const clattn_plan *plan, const int *seq_lens, int *pos)
{
    const clattn_problem *p = &plan->p;
    for (int b = 0; b < p->batch; b++) {
        int *row = pos + (size_t)b * plan->n_side;
        for (int g = 0; g < p->num_global; g++)
            row[g] = p->global_idx[g];
        for (int c = 0; c < plan->n_summary; c++) {
            const long long start = (long long)c * p->summary_block;
            const long long end = start + p->summary_block < seq_lens[b] ? start + p->summary_block : seq_lens[b];
            row[p->num_global + c] = start < seq_lens[b] ? (int)(end - 1) : -1;
        }
        for (int x = 0; x < p->extra_len; x++)
            row[p->num_global + plan->n_summary + x] = 0;
    }
}

/* Uploads seq_lens and side positions when they differ from the last run's. */
static cl_int upload_lengths(clattn_plan *plan, cl_command_queue queue, const int *seq_lens)
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
    cl_int rc = clEnqueueWriteBuffer(queue, plan->seq_lens, CL_TRUE, 0, (size_t)p->batch * sizeof(int),
                                     plan->host_seq_lens, 0, NULL, NULL);
    if (rc == CL_SUCCESS && plan->n_side > 0)
        rc = clEnqueueWriteBuffer(queue, plan->side_pos, CL_TRUE, 0, (size_t)p->batch * plan->n_side * sizeof(int),
                                  plan->host_side_pos, 0, NULL, NULL);
    plan->uploaded = rc == CL_SUCCESS;
    return rc;
}

/* Window sides as the kernel wants them: clamped to a width no distance reaches, causal folded
 * into the right side. */
static void band_sides(const clattn_problem *p, int *left, int *right)
{
    const int unbounded = p->q_len + p->kv_len;
    *left = p->window && p->window_left < unbounded ? p->window_left : unbounded;
    *right = p->window && p->window_right < unbounded ? p->window_right : unbounded;
    if (p->causal)
        *right = 0 < *right ? 0 : *right;
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
    band_sides(p, &left, &right);
    const kernel_arg args[] = {ARG(bufs->q),         ARG(bufs->k),        ARG(bufs->v),        ARG(side_k),
                               ARG(side_v),          ARG(plan->side_pos), ARG(plan->seq_lens), ARG(plan->part_acc),
                               ARG(plan->part_ml),   ARG(p->heads),       ARG(p->kv_heads),    ARG(p->q_len),
                               ARG(p->kv_len),       ARG(left),           ARG(right),          ARG(p->dilation),
                               ARG(p->causal),       ARG(plan->n_side),   ARG(p->num_global),  ARG(plan->n_summary),
                               ARG(plan->split_len), ARG(plan->qscale)};
    if (rc == CL_SUCCESS)
        rc = set_args(plan->split, args, sizeof args / sizeof args[0]);
    const int group_rows = p->heads / p->kv_heads * p->q_len;
    const size_t global[3] = {(size_t)plan->splits, (size_t)((group_rows + plan->tiles.rows - 1) / plan->tiles.rows),
                              (size_t)p->batch * p->kv_heads};
    const size_t local[3] = {1, 1, 1};
    if (rc == CL_SUCCESS)
        rc = chain_launch(chain, plan->split, 3, global, local);

    const int rows = p->batch * p->heads * p->q_len;
    const cl_mem lse = or_unread(bufs->lse, bufs->out);
    const int write_lse = bufs->lse != NULL;
    const kernel_arg merge[] = {ARG(plan->part_acc), ARG(plan->part_ml), ARG(bufs->out), ARG(lse),
                                ARG(rows),           ARG(plan->splits),  ARG(write_lse)};
    if (rc == CL_SUCCESS)
        rc = set_args(plan->combine, merge, sizeof merge / sizeof merge[0]);
    const size_t one = 1, all_rows = (size_t)rows;
    return rc == CL_SUCCESS ? chain_launch(chain, plan->combine, 1, &all_rows, &one) : rc;
}

static cl_int enqueue_passes(clattn_plan *plan, command_chain *chain, const clattn_buffers *bufs)
{
    const clattn_problem *p = &plan->p;
    const int panels = packs_keys(plan);
    if (plan->splits > 0)
        return enqueue_split(plan, chain, bufs);
    cl_int rc = CL_SUCCESS;
    if (panels)
        rc = enqueue_pack(plan, chain, bufs->k, plan->k_panels, p->kv_len);
    if (rc == CL_SUCCESS && plan->n_side > 0) {
        rc = enqueue_side_keys(plan, chain, bufs);
        if (rc == CL_SUCCESS && panels)
            rc = enqueue_pack(plan, chain, plan->side_k, plan->side_panels, plan->n_side);
    }
    attention_pass band = {bufs->q,   panels ? plan->k_panels : bufs->k,
                           bufs->v,   bufs->out,
                           bufs->lse, 0,
                           p->q_len,  0,
                           0,         p->dilation,
                           0,         plan->n_side,
                           p->causal};
    band_sides(p, &band.left, &band.right);
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
            rc = enqueue_pack(plan, chain, bufs->kg, plan->kg_panels, p->kv_len);
            dense.keys = plan->kg_panels;
        }
    }
    return rc == CL_SUCCESS ? enqueue_attention(plan, chain, &dense) : rc;
}

int clattn_plan_enqueue(clattn_plan *plan, cl_command_queue queue, const clattn_buffers *buffers, cl_uint num_wait,
                        const cl_event *wait, cl_event *event)
{
    if (plan == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    clattn_context *ctx = plan->ctx;
    clattn__error err = {{0}};
    if (buffers == NULL)
        return clattn__context_report(ctx, clattn__fail(&err, CLATTN_STATUS_NULL_ARGUMENT, "buffers is NULL"), &err);
    if (ctx->reference)
        return clattn__context_report(
            ctx, clattn__fail(&err, CLATTN_STATUS_UNSUPPORTED, "the reference device has no OpenCL buffers"), &err);
    if (num_wait > 0 && wait == NULL)
        return clattn__context_report(
            ctx, clattn__fail(&err, CLATTN_STATUS_NULL_ARGUMENT, "wait is NULL with num_wait = %u", num_wait), &err);
    int status = check_device_buffers(&plan->p, buffers, &err);
    if (!status)
        status = clattn__check_seq_lens(&plan->p, buffers->seq_lens, &err);
    if (status)
        return clattn__context_report(ctx, status, &err);

    command_chain chain = {queue != NULL ? queue : ctx->queue, num_wait, wait, NULL};
    cl_int rc = upload_lengths(plan, chain.queue, buffers->seq_lens);
    if (rc == CL_SUCCESS)
        rc = enqueue_passes(plan, &chain, buffers);
    if (rc != CL_SUCCESS) {
        if (chain.last != NULL) {
            clWaitForEvents(1, &chain.last); /* nothing of this run may still be running */
            clReleaseEvent(chain.last);
        }
        return clattn__context_report(
            ctx, clattn__fail(&err, rc, "enqueueing attention failed: %s", clattn__cl_error_name(rc)), &err);
    }
    if (event != NULL)
        *event = chain.last;
    else
        clReleaseEvent(chain.last);
    return CLATTN_STATUS_OK;
}

/* ----------------------------------------------------------------------------------------- */
/* Host-pointer convenience call                                                              */
/* ----------------------------------------------------------------------------------------- */

static int check_host_tensors(const clattn_problem *p, const clattn_host_tensors *t, clattn__error *err)
{
    const clattn_host_tensor *all[T_COUNT] = {&t->q,  &t->k,  &t->v,  &t->out, &t->lse,
                                              &t->qg, &t->kg, &t->vg, &t->kx,  &t->vx};
    int present[T_COUNT];
    size_t size[T_COUNT];
    for (int i = 0; i < T_COUNT; i++) {
        present[i] = all[i]->data != NULL;
        size[i] = all[i]->bytes;
    }
    int status = check_tensors(p, present, size, err);
    return status ? status : clattn__check_seq_lens(p, t->seq_lens, err);
}

/* Device copies of the host tensors for one blocking run. */
static int run_on_device(clattn_plan *plan, const clattn_host_tensors *t, clattn__error *err)
{
    const clattn_host_tensor *all[T_COUNT] = {&t->q,  &t->k,  &t->v,  &t->out, &t->lse,
                                              &t->qg, &t->kg, &t->vg, &t->kx,  &t->vx};
    clattn__tensor_bytes bytes;
    tensor_need needs[T_COUNT];
    clattn__problem_bytes(&plan->p, &bytes, err);
    tensor_needs(&plan->p, &bytes, needs);
    cl_mem mem[T_COUNT] = {0};
    int status = CLATTN_STATUS_OK;
    for (int i = 0; i < T_COUNT && !status; i++) {
        if (all[i]->data == NULL || (i != T_LSE && !needs[i].needed))
            continue;
        const int output = i == T_OUT || i == T_LSE;
        cl_int rc;
        if (needs[i].bytes > plan->ctx->caps.max_alloc)
            status = clattn__fail(err, CLATTN_STATUS_DEVICE_LIMIT, "%s needs %zu bytes, the device allows %llu",
                                 needs[i].name, needs[i].bytes, (unsigned long long)plan->ctx->caps.max_alloc);
        else {
            mem[i] = clCreateBuffer(plan->ctx->cl, output ? CL_MEM_WRITE_ONLY : CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                    needs[i].bytes, output ? NULL : all[i]->data, &rc);
            if (rc != CL_SUCCESS)
                status = clattn__fail(err, rc, "%s: clCreateBuffer of %zu bytes failed: %s", needs[i].name,
                                     needs[i].bytes, clattn__cl_error_name(rc));
        }
    }
    const clattn_buffers bufs = {mem[T_Q],  mem[T_K],  mem[T_V],  mem[T_OUT], mem[T_LSE], mem[T_QG],
                                 mem[T_KG], mem[T_VG], mem[T_KX], mem[T_VX],  t->seq_lens};
    cl_event done = NULL;
    if (!status && (status = clattn_plan_enqueue(plan, plan->ctx->queue, &bufs, 0, NULL, &done)) != 0)
        snprintf(err->text, sizeof err->text, "%s", plan->ctx->message);
    cl_int rc = CL_SUCCESS;
    if (!status)
        rc = clEnqueueReadBuffer(plan->ctx->queue, mem[T_OUT], CL_TRUE, 0, needs[T_OUT].bytes, t->out.data, 1, &done,
                                 NULL);
    if (!status && rc == CL_SUCCESS && mem[T_LSE] != NULL)
        rc = clEnqueueReadBuffer(plan->ctx->queue, mem[T_LSE], CL_TRUE, 0, needs[T_LSE].bytes, t->lse.data, 0, NULL,
                                 NULL);
    if (!status && rc != CL_SUCCESS)
        status = clattn__fail(err, rc, "reading the output failed: %s", clattn__cl_error_name(rc));
    if (done != NULL)
        clReleaseEvent(done);
    for (int i = T_COUNT - 1; i >= 0; i--)
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
    int status = check_host_tensors(&plan->p, tensors, &err);
    if (!status)
        status =
            plan->ctx->reference ? clattn__reference_run(&plan->p, tensors, &err) : run_on_device(plan, tensors, &err);
    return clattn__context_report(plan->ctx, status, &err);
}
