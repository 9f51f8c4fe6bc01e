/* Plans: created once per problem (kernels built, tiles chosen, scratch allocated by scratch.c),
 * then run many times (launch.c, run_host.c). This file decides which kernels a problem needs and,
 * for decode, how many key splits; it creates and frees the plan object. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "problem.h"
#include "program.h"

static int compare_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int clattn__plan_kernel(clattn_plan *plan, const char *source, const char *name, const char *options, cl_kernel *out,
                        clattn__error *err)
{
    /* Every program reads and writes the caller's tensors in the problem's storage type. */
    char all[1024];
    const int len =
        snprintf(all, sizeof all, "%s%s-DCLATTN_DTYPE=%d", options, options[0] ? " " : "", (int)plan->p.dtype);
    if (len < 0 || (size_t)len >= sizeof all)
        return clattn__fail(err, CLATTN_STATUS_UNSUPPORTED, "build options of kernel '%s' exceed %zu bytes: %s", name,
                            sizeof all - 1, options);
    cl_program prog;
    int status = clattn__program_get(plan->ctx, source, all, &prog, err);
    if (status != CLATTN_STATUS_OK)
        return status;
    cl_int rc;
    *out = clCreateKernel(prog, name, &rc);
    clReleaseProgram(prog);
    if (rc != CL_SUCCESS)
        return clattn__fail(err, rc, "clCreateKernel('%s') failed: %s", name, clattn__cl_error_name(rc));
    return CLATTN_STATUS_OK;
}

/* The tiles' options whose value 1 a vendor's compiler may refuse, in the order a plan gives them
 * up when the kernel does not build: inline PTX on NVIDIA's GPUs (tensor cores, asynchronous
 * copies, warp shuffles), the large register file's build option on Intel's. */
static const struct {
    size_t offset;
    const char *name;
} vendor_options[] = {{offsetof(clattn_tiles, mma), "tensor cores"},
                      {offsetof(clattn_tiles, async), "asynchronous copies"},
                      {offsetof(clattn_tiles, shuffle), "shuffles"},
                      {offsetof(clattn_tiles, large_grf), "Intel's large register file"}};

/* The first of them that t sets to 1 (the vendor's; 2 is its emulation), or -1. */
static int vendor_option(const clattn_tiles *t)
{
    for (int i = 0; i < (int)(sizeof vendor_options / sizeof vendor_options[0]); i++)
        if (*(const int *)((const char *)t + vendor_options[i].offset) == 1)
            return i;
    return -1;
}

/* The attention kernel; for the GPU variant, rebuilt with smaller tiles while the compiled
 * kernel's own limits (work-group size, local memory) refuse the tiles, so that no enqueue fails. */
static int create_attention(clattn_plan *plan, const char *program, const char *name, clattn__error *err)
{
    const clattn_problem *p = &plan->p;
    for (;;) {
        char options[512];
        clattn__attention_options(&plan->tiles, p->head_dim, p->value_dim, options, sizeof options);
        int rebuild = 0;
        int status = clattn__plan_kernel(plan, program, name, options, &plan->attention, err);
        const int refused = status ? vendor_option(&plan->tiles) : -1;
        if (refused >= 0) {
            /* a driver's compiler may refuse inline PTX or a build option: the same tiles without
             * it, one option at a time (tm and tn stay a valid block), rather than no plan */
            clattn__context_log(plan->ctx,
                                "clattn: the attention kernel with %s did not build (%.300s); rebuilt with it off",
                                vendor_options[refused].name, err != NULL ? err->text : "");
            *(int *)((char *)&plan->tiles + vendor_options[refused].offset) = 0;
            continue;
        }
        if (!status)
            status = clattn__tiles_fit_kernel(plan->ctx, plan->attention, &plan->tiles, &rebuild, err);
        if (status || !rebuild)
            return status;
        clReleaseKernel(plan->attention);
        plan->attention = NULL;
    }
}

/* Whether cl/attention_lanes.cl runs the plan's passes: the CPU variant's float32 windows, other
 * than decode, whose band (clattn__band_sides) holds fewer than CLATTN_LANES_BAND_KEYS keys and
 * fewer than the keys themselves (a wider band, dense attention among them, runs as dense
 * does), where the tiles ask for it (the table's AVX-512 rows: with 8-float vectors, AVX2, the
 * kernel's 16 score vectors take 32 of 16 registers, and on a Zen 3 EPYC it ran a window ±191 in
 * 122 ms where the panels' kernel ran ±192 in 66). */
static int runs_lanes(const clattn_plan *plan)
{
    const clattn_problem *p = &plan->p;
    int left, right;
    clattn__band_sides(p, &left, &right);
    const long long band = (long long)left + right + 1;
    return plan->tiles.cpu_variant && !plan->decode && p->dtype == CLATTN_DTYPE_F32 && band < CLATTN_LANES_BAND_KEYS &&
           band < p->kv_len && plan->tiles.lanes;
}

static int create_kernels(clattn_plan *plan, clattn__error *err)
{
    const clattn_problem *p = &plan->p;
    const int cpu = plan->tiles.cpu_variant;
    /* Each variant's program: the common part, the variant, and for the CPU the decode split. The
     * GPU's split is a program of its own: decode builds no attention kernel. */
    const char *attention = cpu ? "common+attention_cpu+decode" : CLATTN_GPU_ATTENTION_PROGRAM;
    char options[512];
    int status = CLATTN_STATUS_OK;
    if (plan->decode && cpu) {
        clattn__attention_options(&plan->tiles, p->head_dim, p->value_dim, options, sizeof options);
        status = clattn__plan_kernel(plan, attention, "attention_split", options, &plan->split, err);
        if (!status)
            status = clattn__plan_kernel(plan, attention, "combine_splits", options, &plan->combine, err);
    } else if (plan->lanes)
        status = create_attention(plan, "common+attention_cpu+lane_softmax+attention_lanes", "attention_lanes", err);
    else if (!plan->decode)
        status = create_attention(plan, attention, "attention", err);
    if (!status && !cpu && plan->splits > 0) {
        clattn__split_options(&plan->split_tiles, plan->tiles.direct, p->head_dim, p->value_dim, options,
                              sizeof options);
        status = clattn__plan_kernel(plan, CLATTN_GPU_SPLIT_PROGRAM, "split_keys", options, &plan->split, err);
        if (!status)
            status = clattn__plan_kernel(plan, CLATTN_GPU_SPLIT_PROGRAM, "merge_splits", options, &plan->combine, err);
    }
    if (!status && clattn__plan_packs_keys(plan)) {
        char pack_options[64];
        clattn__pack_options(p->head_dim, pack_options, sizeof pack_options);
        status = clattn__plan_kernel(plan, CLATTN_PACK_PROGRAM, "pack_keys", pack_options, &plan->pack, err);
        if (!status && plan->n_side > 0)
            status =
                clattn__plan_kernel(plan, CLATTN_PACK_PROGRAM, "pack_side_keys", pack_options, &plan->pack_side, err);
    }
    if (!status && plan->n_side > 0)
        status = clattn__plan_kernel(plan, "common+side_keys", "side_keys", "", &plan->side, err);
    return status;
}

/* CPU variant's decode: enough key splits that every compute unit gets several work-items, none
 * shorter than CLATTN_SPLIT_MIN_KEYS keys. */
static void choose_splits(clattn_plan *plan)
{
    const clattn_problem *p = &plan->p;
    const int group_rows = p->heads / p->kv_heads * p->q_len;
    const size_t items =
        (size_t)p->batch * p->kv_heads * (size_t)((group_rows + plan->tiles.rows - 1) / plan->tiles.rows);
    const size_t wanted = clattn__plan_wanted_items(plan);
    long long splits = items >= wanted ? 1 : (long long)((wanted + items - 1) / items);
    const long long most = ((long long)p->kv_len + CLATTN_SPLIT_MIN_KEYS - 1) / CLATTN_SPLIT_MIN_KEYS;
    if (splits > most)
        splits = most; /* kv_len >= 1 (normalized), so most >= 1 */
    long long len = ((long long)p->kv_len + splits - 1) / splits;
    len = (len + CLATTN_KEY_CHUNK - 1) / CLATTN_KEY_CHUNK * CLATTN_KEY_CHUNK;
    plan->split_len = (int)len;
    plan->splits = (int)(((long long)p->kv_len + len - 1) / len);
    plan->split_rows = p->q_len;
}

/* GPU variant: the keys in the band of the split pass's rows, [*lo, *hi]. Decode's rows sit at the
 * last positions, so only a window's left side cuts the band; the global rows see every key, up
 * to the last of them with causal. */
static void split_band(const clattn_plan *plan, int *lo, int *hi)
{
    const clattn_problem *p = &plan->p;
    const long long first = (long long)p->kv_len - p->q_len - p->window_left;
    *lo = plan->decode && p->window && first > 0 ? (int)first : 0;
    *hi =
        !plan->decode && p->causal ? plan->global_rows[plan->n_global_rows - 1] + p->kv_len - p->q_len : p->kv_len - 1;
}

/* GPU variant: the split over the keys of decode or of the global-rows pass (launch.c). Enough
 * splits that each compute unit gets CLATTN_SPLIT_GPU_GROUPS_PER_CU work-groups, none shorter
 * than CLATTN_SPLIT_GPU_MIN_KEYS keys; the pass's side keys (decode: all of them; global rows:
 * the summary and extra keys, none with Qg/Kg/Vg) take splits of the same length after the band's. */
static int choose_gpu_splits(clattn_plan *plan, clattn__error *err)
{
    const clattn_problem *p = &plan->p;
    plan->split_rows = plan->decode ? p->q_len : plan->n_global_rows;
    const int group_rows = p->heads / p->kv_heads * plan->split_rows;
    int status = clattn__choose_split_tiles(plan->ctx, plan->tiles.direct, p->head_dim, p->value_dim, group_rows,
                                            &plan->split_tiles, err);
    if (status)
        return status;
    int lo, hi;
    split_band(plan, &lo, &hi);
    const long long keys = (long long)hi - lo + 1, bn = plan->split_tiles.bn;
    const size_t groups =
        (size_t)p->batch * p->kv_heads * ((group_rows + plan->split_tiles.rb - 1) / plan->split_tiles.rb);
    const size_t wanted = (size_t)plan->split_tiles.groups_per_cu * plan->ctx->caps.compute_units;
    long long splits = groups >= wanted ? 1 : (long long)((wanted + groups - 1) / groups);
    const long long most = (keys + CLATTN_SPLIT_GPU_MIN_KEYS - 1) / CLATTN_SPLIT_GPU_MIN_KEYS;
    if (splits > most)
        splits = most;
    long long len = (keys + splits - 1) / splits;
    len = (len + bn - 1) / bn * bn;
    const int side = plan->decode ? plan->n_side : p->global_qkv ? 0 : plan->n_side - p->num_global;
    plan->key_lo = lo;
    plan->split_len = (int)len;
    plan->band_splits = (int)((keys + len - 1) / len);
    plan->splits = plan->band_splits + (int)((side + len - 1) / len);
    return CLATTN_STATUS_OK;
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
            status = clattn__grid_plan_create(plan, &err);
        const int banded = plan->grid == NULL;
        /* Decode candidates: a tile holds rows of every head of a kv head's query group. */
        plan->decode = banded && plan->p.q_len <= CLATTN_SPLIT_MAX_QUERIES && plan->n_global_rows == 0;
        const int group_rows = plan->p.heads / plan->p.kv_heads * plan->p.q_len;
        if (!status && banded)
            status = clattn__choose_tiles(ctx, plan->p.head_dim, plan->p.value_dim, plan->p.dtype,
                                          plan->decode ? group_rows : plan->p.q_len, &plan->tiles, &err);
        plan->qscale = plan->p.scale * (float)CL_M_LOG2E;
        if (!status && banded && plan->decode && plan->tiles.cpu_variant)
            choose_splits(plan);
        else if (!status && banded && !plan->tiles.cpu_variant && (plan->decode || plan->n_global_rows > 0))
            status = choose_gpu_splits(plan, &err);
        plan->lanes = !status && banded && runs_lanes(plan);
        if (!status && banded)
            status = create_kernels(plan, &err);
        if (!status && banded)
            status = clattn__plan_create_scratch(plan, &err);
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
    clattn__grid_plan_free(plan);
    clattn__plan_free_scratch(plan);
    cl_kernel kernels[] = {plan->side, plan->pack_side, plan->pack, plan->attention, plan->split, plan->combine};
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
        if (kernels[i] != NULL)
            clReleaseKernel(kernels[i]);
    free(plan->global_rows);
    free(plan->global_idx);
    free(plan);
}

int clattn_plan_tiles(const clattn_plan *plan, clattn_tiles *out)
{
    if (plan == NULL || out == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    *out = plan->tiles;
    return plan->ctx->reference ? CLATTN_STATUS_UNSUPPORTED : CLATTN_STATUS_OK;
}

int clattn_plan_split_tiles(const clattn_plan *plan, clattn_split_tiles *out)
{
    if (plan == NULL || out == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    *out = plan->split_tiles;
    return plan->split_tiles.wg > 0 ? CLATTN_STATUS_OK : CLATTN_STATUS_UNSUPPORTED;
}

size_t clattn_plan_scratch_bytes(const clattn_plan *plan)
{
    return plan != NULL ? plan->scratch_bytes : 0;
}
