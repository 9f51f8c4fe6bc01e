/* 2-D grid patterns on a device: the plan (tile sides from host/grid.c, the grid kernel of the
 * plan's variant, the tables on the device, the CPU variant's per-work-item scratch) and a run,
 * which is one launch of that kernel on K and V as the caller gave them. The CPU variant runs
 * neighborhoods with cl/grid_pairs.cl (two neighbouring queries at a time), the patterns that cut
 * the grid into regions (Swin windows, axial rows and columns, and criss-cross as its rows then
 * its columns) with cl/grid_regions.cl, and every other pattern with cl/grid_cpu.cl's tiles. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grid.h"
#include "launch.h"
#include "tuning.h"

/* cl/grid_pairs.cl's launch: the kernel rows each work-item takes, and the work-items per
 * (batch, head); items is 0 when it does not run the pattern. */
typedef struct {
    int rows_per_item, items;
} pairs_geometry;

/* One launch of cl/grid_regions.cl: the regions' tokens, the units of work (a region's queries,
 * region_queries at a time) and the units each work-item takes; the same tables on the
 * device. Criss-cross takes two: its rows, then its columns. */
typedef struct {
    int nregions, nunits, per_item, items;
    int *offsets; /* [nregions + 1] into tokens */
    int *tokens;  /* [N] each region's tokens, ascending */
    int *units;   /* [2 nunits] region, first query of the region */
    cl_mem offsets_buf, tokens_buf, units_buf;
} regions_pass;

/* Queries of a unit of cl/grid_regions.cl (its 16 QV): two vectors of 16 where the tiles shape
 * the lane kernels for vectors of 16 floats (`lanes`, CLATTN_WIDE_VECTORS), else one. */
static int region_queries(const clattn_tiles *t)
{
    return t->lanes ? 32 : 16;
}

/* The fewest tokens per region, on average, for which cl/grid_regions.cl takes a pattern: its
 * units compute whole vectors of 16 queries. */
#define GRID_REGIONS_MIN_SIZE 16

struct clattn__grid_plan {
    clattn__grid geo;
    cl_mem tiles, axis, keys;   /* host/grid.c's tables; tiles also holds the run offsets and runs */
    cl_mem scratch, info;       /* CPU variant: each work-item's packed keys; else 1-element stand-ins */
    int items, per_item, lanes; /* CPU variant: work-items per (batch, head), tiles and keys of each */
    int wg, bk;                 /* GPU variant: work-items (query slots) of a tile, keys staged at a time */
    pairs_geometry pairs;       /* cl/grid_pairs.cl's, when it runs the pattern (items > 0) */
    regions_pass regions[2];    /* cl/grid_regions.cl's launches, when it runs the pattern */
    int region_passes;          /* how many: 0 (it does not), 1, or 2 for criss-cross */
    cl_mem region_state;        /* criss-cross: the queries' softmax between the passes */
};

/* Most query slots of a CPU tile: cl/attention_cpu.cl keeps the rows' factors in one float16. */
#define GRID_CPU_MAX_SLOTS 16

/* The GPU variant's __local: the wg queries, bk keys and values (none with the tiles' `direct`), and
 * twice three ints per key (its slot's coordinates and token, for this block and the next). */
static size_t gpu_local_bytes(int direct, int wg, int bk, int d, int dv)
{
    return (size_t)wg * (size_t)d * sizeof(float) +
           (size_t)bk * ((direct ? 0 : (size_t)(d + dv) * sizeof(float)) + 6 * sizeof(int));
}

/* Most keys per block of cl/grid_gpu.cl: each is a score register of every work-item beside its
 * DV accumulators; at DV > 64 (128 accumulators) 16 of them take clang to 254 registers on sm_90
 * and 248 VGPRs on gfx906, 8 to 219 and 207 (ci/gpu_static.sh checks it). */
static int gpu_max_keys(int dv)
{
    return dv > 64 ? 8 : 16;
}

void clattn__grid_gpu_sizes(const clattn_tiles *t, const clattn__device_caps *caps, int d, int dv, int *wg, int *bk)
{
    *wg = clattn__fit_work_group(clattn__tiles_group_rows(t), caps);
    *bk = t->bn < gpu_max_keys(dv) ? t->bn : gpu_max_keys(dv);
    while (*bk > 1 && gpu_local_bytes(t->direct, *wg, *bk, d, dv) > caps->local_mem)
        *bk /= 2;
    while (*wg > 1 && gpu_local_bytes(t->direct, *wg, *bk, d, dv) > caps->local_mem)
        *wg /= 2;
}

void clattn__grid_gpu_options(const clattn_tiles *t, int d, int dv, int wg, int bk, int tw, char *options, size_t size)
{
    snprintf(options, size,
             "-DCLATTN_D=%d -DCLATTN_DV=%d -DCLATTN_WG=%d -DCLATTN_BK=%d -DCLATTN_GRID_TW=%d -DCLATTN_STAGE=%d "
             "-DCLATTN_DIRECT=%d",
             d, dv, wg, bk, tw, clattn__group_stage(t->stage, (size_t)wg), t->direct != 0);
}

/* Shares the `count` units of work of each (batch, head) (tiles, kernel rows, regions' query
 * vectors) out to *items work-items of *per_item units each, so that the CPU variant's launch has
 * about CLATTN_ITEMS_PER_CU work-items per compute unit. */
static void share_out(const clattn_plan *plan, int count, int *per_item, int *items)
{
    const size_t heads = (size_t)plan->p.batch * plan->p.heads, wanted = clattn__plan_wanted_items(plan);
    const size_t most = (wanted + heads - 1) / heads < (size_t)count ? (wanted + heads - 1) / heads : (size_t)count;
    *per_item = (int)(((size_t)count + most - 1) / most);
    *items = (count + *per_item - 1) / *per_item;
}

/* cl/grid_pairs.cl's launch when it runs the plan's pattern (the CPU variant's neighborhoods):
 * kernel rows shared out so that it has about CLATTN_ITEMS_PER_CU work-items per compute unit.
 * Else it stays zero. */
static void plan_pairs(const clattn_plan *plan, pairs_geometry *pg)
{
    memset(pg, 0, sizeof *pg);
    if (plan->tiles.cpu_variant && plan->p.grid_pattern == CLATTN_GRID_NEIGHBORHOOD)
        share_out(plan, plan->grid->geo.h, &pg->rows_per_item, &pg->items);
}

/* Whether the key intervals of one axis (part 0 of the axis table) cut it into strips: index i
 * lies in its own interval, and every index of that interval has the same one. */
static int axis_is_cut(const int *lo, const int *n, int len)
{
    for (int i = 0; i < len; i++) {
        if (i < lo[i] || i >= lo[i] + n[i])
            return 0;
        for (int x = lo[i]; x < lo[i] + n[i]; x++)
            if (lo[x] != lo[i] || n[x] != n[i])
                return 0;
    }
    return 1;
}

static int compare_ints(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The tables of a cl/grid_regions.cl launch for part `part` of the pattern, when its key
 * rectangles cut both axes into strips (then each rectangle of a row strip and a column strip is
 * a region whose tokens see exactly each other: Swin windows, axial rows and columns, either part
 * of criss-cross) into regions of GRID_REGIONS_MIN_SIZE tokens or more on average. Otherwise rt
 * stays empty (nregions 0). The regions, and the units of each, are in grid order. */
static int regions_of(const clattn_plan *plan, int part, regions_pass *rt, clattn__error *err)
{
    const clattn__grid *geo = &plan->grid->geo;
    const int h = geo->h, w = geo->w;
    const int *base = geo->axis + h + w + 2 * part * (h + w); /* [lo_r H][n_r H][lo_c W][n_c W] */
    const int *lo_r = base, *n_r = base + h, *lo_c = base + 2 * h, *n_c = base + 2 * h + w;
    if (!axis_is_cut(lo_r, n_r, h) || !axis_is_cut(lo_c, n_c, w))
        return CLATTN_STATUS_OK;
    int row_strips = 0, col_strips = 0;
    for (int r = 0; r < h; r++)
        row_strips += lo_r[r] == r;
    for (int c = 0; c < w; c++)
        col_strips += lo_c[c] == c;
    const long long nregions = (long long)row_strips * col_strips;
    if ((long long)h * w < (long long)GRID_REGIONS_MIN_SIZE * nregions)
        return CLATTN_STATUS_OK;
    const int per_unit = region_queries(&plan->tiles);
    long long nunits = 0;
    for (int r = 0; r < h; r += n_r[r])
        for (int c = 0; c < w; c += n_c[c])
            nunits += ((long long)n_r[r] * n_c[c] + per_unit - 1) / per_unit;
    rt->offsets = malloc(((size_t)nregions + 1) * sizeof(int));
    rt->tokens = malloc((size_t)h * w * sizeof(int));
    rt->units = malloc(2 * (size_t)nunits * sizeof(int));
    if (rt->offsets == NULL || rt->tokens == NULL || rt->units == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "grid regions");
    int t = 0, u = 0;
    for (int r = 0; r < h; r += n_r[r])
        for (int c = 0; c < w; c += n_c[c]) {
            const int first = t;
            rt->offsets[rt->nregions] = first;
            for (int kr = r; kr < r + n_r[r]; kr++)
                for (int kc = c; kc < c + n_c[c]; kc++)
                    rt->tokens[t++] = geo->axis[kr] * w + geo->axis[h + kc];
            qsort(rt->tokens + first, (size_t)(t - first), sizeof(int), compare_ints);
            for (int x = 0; x < t - first; x += per_unit) {
                rt->units[2 * u] = rt->nregions;
                rt->units[2 * u + 1] = x;
                u++;
            }
            rt->nregions++;
        }
    rt->offsets[rt->nregions] = t;
    rt->nunits = u;
    share_out(plan, u, &rt->per_item, &rt->items);
    return CLATTN_STATUS_OK;
}

/* Whether cl/grid_regions.cl runs the plan's pattern (the CPU variant, every part cut into
 * regions), and if so its launches' tables. */
static int plan_regions(clattn_plan *plan, clattn__error *err)
{
    clattn__grid_plan *g = plan->grid;
    if (!plan->tiles.cpu_variant)
        return CLATTN_STATUS_OK;
    for (int part = 0; part < g->geo.nparts; part++) {
        const int status = regions_of(plan, part, &g->regions[part], err);
        if (status || g->regions[part].nregions == 0)
            return status;
    }
    g->region_passes = g->geo.nparts;
    return CLATTN_STATUS_OK;
}

static int create_kernels(clattn_plan *plan, clattn__error *err)
{
    const clattn_problem *p = &plan->p;
    const clattn__grid_plan *g = plan->grid;
    char options[600];
    /* the kernels whose queries lie in vector lanes, on cl/lane_softmax.cl's online softmax */
    const char *lanes = g->pairs.items > 0 ? "grid_pairs" : g->region_passes > 0 ? "grid_regions" : NULL;
    if (lanes != NULL) {
        char program[64];
        snprintf(program, sizeof program, "common+attention_cpu+lane_softmax+%s", lanes);
        clattn__attention_options(&plan->tiles, p->head_dim, p->value_dim, options, sizeof options - 32);
        snprintf(options + strlen(options), 32, " -DCLATTN_WIDE_VECTORS=%d", plan->tiles.lanes);
        return clattn__plan_kernel(plan, program, lanes, options, &plan->attention, err);
    }
    if (plan->tiles.cpu_variant) {
        clattn__attention_options(&plan->tiles, p->head_dim, p->value_dim, options, sizeof options - 32);
        snprintf(options + strlen(options), 32, " -DCLATTN_GRID_TW=%d", g->geo.tw);
    } else
        clattn__grid_gpu_options(&plan->tiles, p->head_dim, p->value_dim, g->wg, g->bk, g->geo.tw, options,
                                 sizeof options);
    const char *program =
        plan->tiles.cpu_variant ? "common+attention_cpu+grid_common+grid_cpu" : CLATTN_GRID_GPU_PROGRAM;
    return clattn__plan_kernel(plan, program, "grid_attention", options, &plan->attention, err);
}

/* The CPU variant's work-items: enough per (batch, head) that the launch has
 * CLATTN_ITEMS_PER_CU per compute unit, each taking the same number of tiles, and each with
 * scratch for the keys of the largest tile (host/grid.c's max_keys, in whole chunks). The GPU
 * variant gets stand-ins: both kernels take one argument list. */
static int create_item_scratch(clattn_plan *plan, clattn__error *err)
{
    const clattn_problem *p = &plan->p;
    clattn__grid_plan *g = plan->grid;
    const size_t heads = (size_t)p->batch * p->heads;
    share_out(plan, g->geo.ntiles, &g->per_item, &g->items);
    g->lanes = (g->geo.max_keys + CLATTN_KEY_CHUNK - 1) / CLATTN_KEY_CHUNK * CLATTN_KEY_CHUNK;
    const size_t all = plan->tiles.cpu_variant ? (size_t)g->items * heads * (size_t)g->lanes : 0;
    const size_t widths = (size_t)p->head_dim + (size_t)p->value_dim;
    int status = clattn__plan_buffer(plan, all > 0 ? all * widths * sizeof(float) : sizeof(float),
                                     "packed keys of the grid kernel", &g->scratch, err);
    if (!status)
        status = clattn__plan_buffer(plan, all > 0 ? all * 3 * sizeof(int) : sizeof(int),
                                     "packed key coordinates of the grid kernel", &g->info, err);
    return status;
}

/* cl/grid_regions.cl's tables and, for two passes, the queries' state between them. */
static int create_region_tables(clattn_plan *plan, clattn__error *err)
{
    const clattn_problem *p = &plan->p;
    clattn__grid_plan *g = plan->grid;
    int status = CLATTN_STATUS_OK;
    for (int pass = 0; pass < g->region_passes && !status; pass++) {
        regions_pass *rt = &g->regions[pass];
        status =
            clattn__plan_table(plan, rt->offsets, (size_t)rt->nregions + 1, "region offsets", &rt->offsets_buf, err);
        if (!status)
            status = clattn__plan_table(plan, rt->tokens, (size_t)g->geo.h * g->geo.w, "region tokens", &rt->tokens_buf,
                                        err);
        if (!status)
            status = clattn__plan_table(plan, rt->units, 2 * (size_t)rt->nunits, "region units", &rt->units_buf, err);
    }
    const size_t state = g->region_passes > 1 ? (size_t)p->batch * p->heads * p->q_len * (p->value_dim + 2) : 1;
    if (!status)
        status =
            clattn__plan_buffer(plan, state * sizeof(float), "query states of the grid kernel", &g->region_state, err);
    return status;
}

int clattn__grid_plan_create(clattn_plan *plan, clattn__error *err)
{
    const clattn_problem *p = &plan->p;
    plan->grid = calloc(1, sizeof *plan->grid);
    if (plan->grid == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "grid plan");
    clattn__grid_plan *g = plan->grid;
    int status = clattn__choose_tiles(plan->ctx, p->head_dim, p->value_dim, p->dtype, p->q_len, &plan->tiles, err);
    if (status)
        return status;
    clattn_tiles *t = &plan->tiles;
    if (!t->cpu_variant) {
        /* One query per work-item, as many as the attention tiles' rows (so forced tiles steer it
         * too), staging as many keys at a time as they do, up to gpu_max_keys. */
        clattn__grid_gpu_sizes(t, &plan->ctx->caps, p->head_dim, p->value_dim, &g->wg, &g->bk);
        status = clattn__check_fits(&plan->ctx->caps, g->wg,
                                    gpu_local_bytes(t->direct, g->wg, g->bk, p->head_dim, p->value_dim), p->head_dim,
                                    p->value_dim, "one key tile of the grid kernel", err);
        if (status)
            return status;
    }
    const int slots = !t->cpu_variant ? g->wg : t->rows < GRID_CPU_MAX_SLOTS ? t->rows : GRID_CPU_MAX_SLOTS;
    status = clattn__grid_build(p, slots, t->cpu_variant, CLATTN_KEY_CHUNK, &g->geo, err);
    if (status)
        return status;
    if (t->cpu_variant) {
        t->rows = g->geo.th * g->geo.tw; /* the kernel's R: one tile of th x tw queries at a time */
        /* A tile's packed keys are few (a 7 x 7 neighborhood's 2 x 4 tile sees 80): 32-key score
         * passes would round them up to more lanes than 16-key ones. */
        t->kw = 16;
    }
    const clattn__grid *geo = &g->geo;
    plan_pairs(plan, &g->pairs);
    if (g->pairs.items == 0 && (status = plan_regions(plan, err)))
        return status;
    if ((status = create_kernels(plan, err)) || (status = clattn__plan_create_scratch(plan, err)))
        return status;
    if (g->region_passes > 0)
        return create_region_tables(plan, err);
    status = clattn__plan_table(plan, geo->axis, (size_t)geo->axis_ints, "axis table", &g->axis, err);
    if (status || g->pairs.items > 0) /* cl/grid_pairs.cl reads the axis table alone */
        return status;
    if ((status = clattn__plan_table(plan, geo->keys, 3 * (size_t)geo->nslots, "key table", &g->keys, err)))
        return status;
    /* the tiles, then the run offsets and the runs, in one buffer */
    const size_t tile_ints = CLATTN__GRID_TILE_INTS * (size_t)geo->ntiles,
                 run_ints = (size_t)geo->ntiles + 1 + 2 * (size_t)geo->nruns;
    int *packed = malloc((tile_ints + run_ints) * sizeof(int));
    if (packed == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "grid tiles");
    memcpy(packed, geo->tiles, tile_ints * sizeof(int));
    memcpy(packed + tile_ints, geo->runs, run_ints * sizeof(int));
    status = clattn__plan_table(plan, packed, tile_ints + run_ints, "tiles and runs", &g->tiles, err);
    free(packed);
    return status ? status : create_item_scratch(plan, err);
}

void clattn__grid_plan_free(clattn_plan *plan)
{
    clattn__grid_plan *g = plan->grid;
    if (g == NULL)
        return;
    cl_mem buffers[] = {g->tiles, g->axis, g->keys, g->scratch, g->info, g->region_state};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        if (buffers[i] != NULL)
            clReleaseMemObject(buffers[i]);
    for (int pass = 0; pass < 2; pass++) {
        regions_pass *rt = &g->regions[pass];
        cl_mem tables[] = {rt->offsets_buf, rt->tokens_buf, rt->units_buf};
        for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
            if (tables[i] != NULL)
                clReleaseMemObject(tables[i]);
        free(rt->offsets);
        free(rt->tokens);
        free(rt->units);
    }
    clattn__grid_free(&g->geo);
    free(g);
    plan->grid = NULL;
}

static cl_int pairs_enqueue(clattn_plan *plan, command_chain *chain, const clattn_buffers *bufs)
{
    const clattn_problem *p = &plan->p;
    const clattn__grid_plan *g = plan->grid;
    const cl_mem lse = bufs->lse != NULL ? bufs->lse : bufs->out; /* not written without write_lse */
    const int write_lse = bufs->lse != NULL;
    const kernel_arg args[] = {ARG(bufs->q),        ARG(bufs->k),      ARG(bufs->v),  ARG(g->axis),
                               ARG(plan->seq_lens), ARG(bufs->out),    ARG(lse),      ARG(p->heads),
                               ARG(p->kv_heads),    ARG(g->geo.h),     ARG(g->geo.w), ARG(g->pairs.rows_per_item),
                               ARG(p->causal),      ARG(plan->qscale), ARG(write_lse)};
    const cl_int rc = clattn__set_args(plan->attention, args, sizeof args / sizeof args[0]);
    const size_t local[2] = {1, 1}, global[2] = {(size_t)g->pairs.items, (size_t)p->batch * p->heads};
    return rc == CL_SUCCESS ? clattn__chain_launch(chain, plan->attention, 2, global, local) : rc;
}

/* cl/grid_regions.cl's launches: one, or criss-cross's rows, which suspend each query's softmax,
 * then its columns, which resume it and skip the query's own token. */
static cl_int regions_enqueue(clattn_plan *plan, command_chain *chain, const clattn_buffers *bufs)
{
    const clattn_problem *p = &plan->p;
    const clattn__grid_plan *g = plan->grid;
    const cl_mem lse = bufs->lse != NULL ? bufs->lse : bufs->out; /* not written without write_lse */
    const int write_lse = bufs->lse != NULL, n = g->geo.h * g->geo.w;
    cl_int rc = CL_SUCCESS;
    for (int pass = 0; pass < g->region_passes && rc == CL_SUCCESS; pass++) {
        const regions_pass *rt = &g->regions[pass];
        const int resume = pass > 0, suspend = pass + 1 < g->region_passes, skip_self = pass > 0;
        const kernel_arg args[] = {
            ARG(bufs->q),        ARG(bufs->k),        ARG(bufs->v),   ARG(rt->units_buf), ARG(rt->offsets_buf),
            ARG(rt->tokens_buf), ARG(plan->seq_lens), ARG(bufs->out), ARG(lse),           ARG(g->region_state),
            ARG(p->heads),       ARG(p->kv_heads),    ARG(n),         ARG(rt->nunits),    ARG(rt->per_item),
            ARG(p->causal),      ARG(plan->qscale),   ARG(write_lse), ARG(resume),        ARG(suspend),
            ARG(skip_self)};
        rc = clattn__set_args(plan->attention, args, sizeof args / sizeof args[0]);
        const size_t local[2] = {1, 1}, global[2] = {(size_t)rt->items, (size_t)p->batch * p->heads};
        if (rc == CL_SUCCESS)
            rc = clattn__chain_launch(chain, plan->attention, 2, global, local);
    }
    return rc;
}

cl_int clattn__grid_enqueue(clattn_plan *plan, command_chain *chain, const clattn_buffers *bufs)
{
    if (plan->grid->pairs.items > 0)
        return pairs_enqueue(plan, chain, bufs);
    if (plan->grid->region_passes > 0)
        return regions_enqueue(plan, chain, bufs);
    const clattn_problem *p = &plan->p;
    clattn__grid_plan *g = plan->grid;
    const cl_mem lse = bufs->lse != NULL ? bufs->lse : bufs->out; /* not written without write_lse */
    const int write_lse = bufs->lse != NULL;
    const int h = g->geo.h, w = g->geo.w, nparts = g->geo.nparts, ntiles = g->geo.ntiles, nslots = g->geo.nslots;
    const kernel_arg args[] = {ARG(bufs->q),     ARG(bufs->k),      ARG(bufs->v),        ARG(g->tiles),
                               ARG(g->axis),     ARG(g->keys),      ARG(plan->seq_lens), ARG(bufs->out),
                               ARG(lse),         ARG(g->scratch),   ARG(g->info),        ARG(g->lanes),
                               ARG(g->per_item), ARG(p->heads),     ARG(p->kv_heads),    ARG(h),
                               ARG(w),           ARG(nparts),       ARG(ntiles),         ARG(nslots),
                               ARG(p->causal),   ARG(plan->qscale), ARG(write_lse)};
    const cl_int rc = clattn__set_args(plan->attention, args, sizeof args / sizeof args[0]);
    const int cpu = plan->tiles.cpu_variant;
    const size_t local[2] = {cpu ? 1 : (size_t)g->wg, 1};
    const size_t global[2] = {cpu ? (size_t)g->items : (size_t)ntiles * local[0], (size_t)p->batch * p->heads};
    return rc == CL_SUCCESS ? clattn__chain_launch(chain, plan->attention, 2, global, local) : rc;
}
