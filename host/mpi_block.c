/* Partial attention of query rows over one range of keys (a plan with the LSE output, positions
 * kept by padding the queries) and the log-sum-exp merge of partial results: the two pieces the
 * sequence-parallel patterns of mpi.c are made of. */
#include "mpi_block.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Grows *buf to hold n floats. */
static int reserve(float **buf, size_t *have, size_t n, clattn__error *err)
{
    if (n <= *have)
        return CLATTN_STATUS_OK;
    float *grown = realloc(*buf, n * sizeof(float));
    if (grown == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "block buffer of %zu floats", n);
    *buf = grown;
    *have = n;
    return CLATTN_STATUS_OK;
}

/* The block's valid keys of batch entry b. */
static int local_valid(const clattn__block *b, const int *seq_lens, int entry)
{
    if (b->k_valid != NULL)
        return b->k_valid[entry];
    const int v = seq_lens[entry] - b->k_first;
    return v < 0 ? 0 : v > b->nk ? b->nk : v;
}

/* The block as a problem of its own; *pad receives the dummy query rows it adds at the end. */
static clattn_problem local_problem(const clattn_problem *w, const clattn__block *b, const int *seq_lens, int *pad)
{
    clattn_problem l;
    memset(&l, 0, sizeof l); /* the plan cache compares whole structs */
    l.batch = w->batch;
    l.heads = w->heads;
    l.kv_heads = w->kv_heads;
    l.head_dim = w->head_dim;
    l.value_dim = w->value_dim;
    l.scale = w->scale;
    l.kv_len = b->nk;
    if (b->mode == CLATTN__BLOCK_ALIGNED || b->mode == CLATTN__BLOCK_ALIGNED_DENSE) {
        /* q_len = keys' end - first row: then p(i) = i + kv_len - q_len is the row's position
         * relative to k_first, as in the whole problem. */
        l.causal = w->causal;
        if (b->mode == CLATTN__BLOCK_ALIGNED) {
            l.window = w->window;
            l.window_left = w->window_left;
            l.window_right = w->window_right;
            l.dilation = w->dilation;
            l.num_global = b->num_globals;
        }
        *pad = b->k_first + b->nk - (b->q_first + b->nq);
    } else {
        /* No rule but the keys' padding: the rows may sit anywhere before the first invalid key,
         * which dummy rows at the end push them to. */
        int least = b->nk;
        const int masked = b->mode == CLATTN__BLOCK_VISIBLE && (seq_lens != NULL || b->k_valid != NULL);
        for (int e = 0; masked && e < w->batch; e++) {
            const int v = local_valid(b, seq_lens, e);
            least = v < least ? v : least;
        }
        *pad = b->nk - least;
    }
    l.q_len = b->nq + *pad;
    return l;
}

static int same_plan(const clattn__cached_plan *c, const clattn_problem *l, const int *globals)
{
    return c->plan != NULL && memcmp(&c->local, l, sizeof *l) == 0 &&
           (l->num_global == 0 || memcmp(c->globals, globals, (size_t)l->num_global * sizeof(int)) == 0);
}

/* A plan of the local problem l (global_idx NULL) with the global tokens `globals`, from the
 * cache or created into its oldest slot. */
static int get_plan(clattn__block_runner *r, const clattn_problem *l, const int *globals, clattn_plan **out,
                    clattn__error *err)
{
    for (int i = 0; i < CLATTN__BLOCK_PLANS; i++)
        if (same_plan(&r->cache[i], l, globals)) {
            *out = r->cache[i].plan;
            return CLATTN_STATUS_OK;
        }
    clattn__cached_plan *slot = &r->cache[r->next_slot];
    r->next_slot = (r->next_slot + 1) % CLATTN__BLOCK_PLANS;
    clattn_plan_free(slot->plan);
    free(slot->globals);
    memset(slot, 0, sizeof *slot);
    const size_t bytes = (size_t)(l->num_global > 0 ? l->num_global : 1) * sizeof(int);
    slot->globals = malloc(bytes);
    if (slot->globals == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%d global indices", l->num_global);
    if (l->num_global > 0)
        memcpy(slot->globals, globals, bytes);
    clattn_problem with_globals = *l;
    with_globals.global_idx = slot->globals;
    const int status = clattn_plan_create(r->ctx, &with_globals, &slot->plan);
    if (status)
        return clattn__fail(err, status, "block plan (Nq = %d, Nk = %d): %s", l->q_len, l->kv_len,
                            clattn_context_message(r->ctx));
    memcpy(&slot->local, l, sizeof *l); /* padding bytes too: same_plan compares them */
    *out = slot->plan;
    return CLATTN_STATUS_OK;
}

void clattn__copy_rows(float *dst, int dst_rows, int dst_first, const float *src, int src_rows, int src_first, int rows,
                       size_t heads, int width)
{
    const size_t w = (size_t)width;
    for (size_t h = 0; h < heads && rows > 0; h++) /* a shard of no rows may have no buffer */
        memcpy(dst + (h * (size_t)dst_rows + (size_t)dst_first) * w,
               src + (h * (size_t)src_rows + (size_t)src_first) * w, (size_t)rows * w * sizeof(float));
}

int clattn__block_run(clattn__block_runner *r, const clattn__block *b, const int *seq_lens, float *o, float *lse,
                      clattn__error *err)
{
    const clattn_problem *w = &r->whole;
    int pad = 0;
    const clattn_problem l = local_problem(w, b, seq_lens, &pad);
    int *lens = NULL;
    if ((seq_lens != NULL || b->k_valid != NULL) && b->mode != CLATTN__BLOCK_EXTRA) {
        for (int e = 0; e < w->batch; e++)
            r->lens[e] = local_valid(b, seq_lens, e);
        lens = r->lens;
    }
    clattn_plan *plan = NULL;
    int status = get_plan(r, &l, b->globals, &plan, err);
    const size_t heads = (size_t)w->batch * (size_t)w->heads;
    const size_t nk = (size_t)w->batch * (size_t)w->kv_heads * (size_t)b->nk;
    const float *q = b->q;
    float *out = o, *out_lse = lse;
    if (!status && pad > 0) {
        status = reserve(&r->q_pad, &r->q_pad_n, heads * (size_t)l.q_len * (size_t)w->head_dim, err);
        if (!status)
            status = reserve(&r->o_pad, &r->o_pad_n, heads * (size_t)l.q_len * (size_t)w->value_dim, err);
        if (!status)
            status = reserve(&r->lse_pad, &r->lse_pad_n, heads * (size_t)l.q_len, err);
        if (!status) {
            memset(r->q_pad, 0, heads * (size_t)l.q_len * (size_t)w->head_dim * sizeof(float));
            clattn__copy_rows(r->q_pad, l.q_len, 0, b->q, b->nq, 0, b->nq, heads, w->head_dim);
        }
        q = r->q_pad;
        out = r->o_pad;
        out_lse = r->lse_pad;
    }
    const size_t f = sizeof(float);
    const clattn_host_tensors t = {
        .q = {(void *)q, heads * (size_t)l.q_len * (size_t)w->head_dim * f},
        .k = {(void *)b->k, nk * (size_t)w->head_dim * f},
        .v = {(void *)b->v, nk * (size_t)w->value_dim * f},
        .out = {out, heads * (size_t)l.q_len * (size_t)w->value_dim * f},
        .lse = {out_lse, heads * (size_t)l.q_len * f},
        .seq_lens = lens,
    };
    if (!status && (status = clattn_plan_run_host(plan, &t)) != 0)
        clattn__fail(err, status, "block run (Nq = %d, Nk = %d): %s", l.q_len, l.kv_len,
                     clattn_context_message(r->ctx));
    if (!status && pad > 0) {
        clattn__copy_rows(o, b->nq, 0, out, l.q_len, 0, b->nq, heads, w->value_dim);
        clattn__copy_rows(lse, b->nq, 0, out_lse, l.q_len, 0, b->nq, heads, 1);
    }
    return status;
}

int clattn__block_runner_init(clattn__block_runner *r, clattn_context *ctx, const clattn_problem *whole,
                              clattn__error *err)
{
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
    r->whole = *whole;
    r->lens = malloc((size_t)whole->batch * sizeof(int));
    if (r->lens == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "seq_lens of %d blocks", whole->batch);
    return CLATTN_STATUS_OK;
}

void clattn__block_runner_free(clattn__block_runner *r)
{
    for (int i = CLATTN__BLOCK_PLANS - 1; i >= 0; i--) {
        clattn_plan_free(r->cache[i].plan);
        free(r->cache[i].globals);
    }
    free(r->lse_pad);
    free(r->o_pad);
    free(r->q_pad);
    free(r->lens);
    memset(r, 0, sizeof *r);
}

void clattn__merge_rows(float *acc_o, float *acc_lse, const float *o, const float *lse, size_t rows, int dv)
{
    for (size_t i = 0; i < rows; i++) {
        const double a = acc_lse[i], b = lse[i];
        float *ao = acc_o + i * (size_t)dv;
        const float *bo = o + i * (size_t)dv;
        if (b == -INFINITY) /* the part saw no key */
            continue;
        if (a == -INFINITY) {
            memcpy(ao, bo, (size_t)dv * sizeof(float));
            acc_lse[i] = lse[i];
            continue;
        }
        /* NaN in either LSE propagates through m and the weights. */
        const double m = a > b ? a : b, wa = exp(a - m), wb = exp(b - m), s = wa + wb;
        for (int c = 0; c < dv; c++)
            ao[c] = (float)((wa * ao[c] + wb * bo[c]) / s);
        acc_lse[i] = (float)(m + log(s));
    }
}
