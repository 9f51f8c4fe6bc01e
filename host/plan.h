/* The plan object and what its files share: plan.c creates it, scratch.c owns its scratch
 * buffers, launch.c enqueues its passes, run_host.c runs it on host tensors. */
#ifndef CLATTN_PLAN_H
#define CLATTN_PLAN_H

#include "context.h"
#include "tuning.h"

typedef struct clattn__grid_plan clattn__grid_plan; /* host/launch_grid.c */

struct clattn_plan {
    clattn_context *ctx;
    clattn_problem p; /* normalized; p.global_idx points at global_idx below */
    int *global_idx;  /* [num_global], sorted */
    int *global_rows; /* [n_global_rows] query rows at global positions, sorted */
    int n_global_rows;
    int n_summary, n_side; /* side keys: [globals | summaries | extras] */
    clattn_tiles tiles;
    int decode;     /* a few query rows: a split over the keys runs instead of the banded pass */
    int splits;     /* key splits of decode, or (GPU variant) of the global-rows pass; 0: none */
    int split_len;  /* keys per split, a multiple of CLATTN_KEY_CHUNK (CPU) or of split_tiles.bn (GPU) */
    int split_rows; /* query rows per (batch, head) of the split pass: Nq, or the global rows */
    /* GPU variant's split (cl/decode_gpu.cl): splits [0, band_splits) cover the band from key_lo
     * on, the rest the pass's side keys. */
    int band_splits, key_lo;
    clattn_split_tiles split_tiles;
    /* pack: the caller's K (or Kg) into panels; pack_side: the float32 side keys */
    cl_kernel attention, pack, pack_side, side, split, combine;
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
    cl_mem part_acc;    /* [B, H, split_rows, splits, Dv]           splits */
    cl_mem part_ml;     /* [B, H, split_rows, splits, 2] running max and sum */
    float qscale;       /* the scale times log2(e): the kernels' softmax is in base 2 */
    size_t scratch_bytes;
    int *host_seq_lens;      /* [B] last uploaded */
    int *host_side_pos;      /* [B, NS] last uploaded */
    int uploaded;            /* host_* match the device copies */
    clattn__grid_plan *grid; /* a 2-D grid pattern's tables, kernels and scratch; else NULL */
    int lanes;               /* CPU variant: cl/attention_lanes.cl runs the passes (a narrow band) */
};

/* Window sides as the kernels want them: clamped to a width no distance reaches, causal folded
 * into the right side. */
static inline void clattn__band_sides(const clattn_problem *p, int *left, int *right)
{
    const int unbounded = p->q_len + p->kv_len;
    *left = p->window && p->window_left < unbounded ? p->window_left : unbounded;
    *right = p->window && p->window_right < unbounded ? p->window_right : unbounded;
    if (p->causal)
        *right = 0 < *right ? 0 : *right;
}

/* The CPU variant reads K as panels, except decode, which reads it row-major, the narrow bands'
 * kernel (lanes), which reads it as stored, and the 2-D grid kernel, which packs each tile's keys
 * itself. */
static inline int clattn__plan_packs_keys(const clattn_plan *plan)
{
    return plan->tiles.cpu_variant && !plan->decode && plan->grid == NULL && !plan->lanes;
}

/* Work-items a CPU-variant launch aims for: CLATTN_ITEMS_PER_CU per compute unit. */
static inline size_t clattn__plan_wanted_items(const clattn_plan *plan)
{
    return (size_t)CLATTN_ITEMS_PER_CU * plan->ctx->caps.compute_units;
}

/* clattn_plan_enqueue on buffers already checked (clattn__check_device_buffers, or made to the
 * tensors' sizes): the passes, with a failure's message in err rather than the context's. */
int clattn__plan_enqueue(clattn_plan *plan, cl_command_queue queue, const clattn_buffers *buffers, cl_uint num_wait,
                         const cl_event *wait, cl_event *event, clattn__error *err);

/* Creates the scratch buffers the plan's kernels, tiles and splits need (counted in
 * scratch_bytes) and the tables of the global indices and rows, fixed for the plan's life. */
int clattn__plan_create_scratch(clattn_plan *plan, clattn__error *err);

/* Releases whatever clattn__plan_create_scratch created, even after it failed half-way. */
void clattn__plan_free_scratch(clattn_plan *plan);

/* A device buffer of `bytes` for the plan (what: its name in a failure's message), counted in
 * scratch_bytes; fails with CLATTN_STATUS_DEVICE_LIMIT beyond the device's largest allocation. */
int clattn__plan_buffer(clattn_plan *plan, size_t bytes, const char *what, cl_mem *out, clattn__error *err);

/* A read-only buffer holding `count` ints copied from `data` (one 0 when count is 0), like
 * clattn__plan_buffer otherwise. Filled as it is created: a plan's creation enqueues nothing, so
 * nothing it needs waits on the context's queue, which other threads may be using (a blocking
 * write there once let a kernel on another queue read the table before it held the data). */
int clattn__plan_table(clattn_plan *plan, const int *data, size_t count, const char *what, cl_mem *out,
                       clattn__error *err);

/* Kernel `name` of program `source` (cl/ file names joined by '+', see program.h) built with
 * `options`. */
int clattn__plan_kernel(clattn_plan *plan, const char *source, const char *name, const char *options, cl_kernel *out,
                        clattn__error *err);

/* 2-D grid patterns (host/launch_grid.c): the plan's tiles, kernels and scratch, its release. */
int clattn__grid_plan_create(clattn_plan *plan, clattn__error *err);
void clattn__grid_plan_free(clattn_plan *plan);

#endif
