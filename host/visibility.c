/* SPEC.md's S(i), written once: which keys of K, which summary tokens and how many extra keys a
 * query row sees. The reference path gathers its keys with these predicates; the bench counts
 * FLOPs and builds its baseline's masks with them; the tests derive expected results from them. */
#include "visibility.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "problem.h"

int clattn__visibility_init_normalized(clattn_visibility *v, const clattn_problem *normalized)
{
    memset(v, 0, sizeof *v);
    v->problem = *normalized;
    if (v->problem.num_global > 0) {
        v->is_global = calloc((size_t)v->problem.kv_len, 1);
        if (v->is_global == NULL) {
            snprintf(v->message, sizeof v->message, "the global-position table of %d keys", v->problem.kv_len);
            return CLATTN_STATUS_HOST_OUT_OF_MEMORY;
        }
        for (int g = 0; g < v->problem.num_global; g++)
            v->is_global[v->problem.global_idx[g]] = 1;
    }
    return CLATTN_STATUS_OK;
}

int clattn_visibility_init(clattn_visibility *v, const clattn_problem *problem)
{
    if (v == NULL || problem == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    clattn_problem normalized;
    clattn__error err = {{0}};
    const int status = clattn__problem_normalize(problem, &normalized, &err);
    if (status != CLATTN_STATUS_OK) {
        memset(v, 0, sizeof *v);
        snprintf(v->message, sizeof v->message, "%s", err.text);
        return status;
    }
    return clattn__visibility_init_normalized(v, &normalized);
}

void clattn_visibility_free(clattn_visibility *v)
{
    if (v == NULL)
        return;
    free(v->is_global);
    memset(v, 0, sizeof *v);
}

int clattn_visibility_row_global(const clattn_visibility *v, int pos)
{
    return v->is_global != NULL && pos >= 0 && pos < v->problem.kv_len && v->is_global[pos];
}

/* Whether j lies in win(i, len, k, d) of SPEC.md: i's dilation group g, g + d, ..., k members
 * around i, shifted inward at the borders so that they stay k. */
static int in_neighborhood(int i, int j, int len, int k, int d)
{
    const int group = i % d;
    if (j % d != group)
        return 0;
    const int members = (len - group + d - 1) / d;
    int start = i / d - k / 2;
    if (start > members - k)
        start = members - k;
    if (start < 0)
        start = 0;
    const int member = j / d;
    return member >= start && member - start < k;
}

/* floor((x - shift) / size) for Swin's shifted windows; x - shift > -size, so a negative value
 * can only floor to -1 (the strip [0, shift) before the first cut). */
static int swin_window(int x, int size, int shift)
{
    return x >= shift ? (x - shift) / size : -1;
}

/* The 2-D rule of SPEC.md for token t and key j of the grid (p has a grid pattern). */
static int grid_visible(const clattn_problem *p, int t, int j)
{
    const int r = t / p->grid_w, c = t % p->grid_w;
    const int rj = j / p->grid_w, cj = j % p->grid_w;
    switch (p->grid_pattern) {
    case CLATTN_GRID_AXIAL_ROW:
        return rj == r;
    case CLATTN_GRID_AXIAL_COLUMN:
        return cj == c;
    case CLATTN_GRID_CRISS_CROSS:
        return rj == r || cj == c;
    case CLATTN_GRID_NEIGHBORHOOD:
        return in_neighborhood(r, rj, p->grid_h, p->grid_kernel_h, p->grid_dilation) &&
               in_neighborhood(c, cj, p->grid_w, p->grid_kernel_w, p->grid_dilation);
    case CLATTN_GRID_WINDOW:
        return swin_window(r, p->grid_window_size, p->grid_shift) ==
                   swin_window(rj, p->grid_window_size, p->grid_shift) &&
               swin_window(c, p->grid_window_size, p->grid_shift) ==
                   swin_window(cj, p->grid_window_size, p->grid_shift);
    case CLATTN_GRID_NONE:
        break;
    }
    return 1; /* no grid rule */
}

/* The sliding window; offsets in long long because L and R may be as large as INT_MAX. */
static int in_window(const clattn_problem *p, int pos, int j)
{
    const long long offset = (long long)j - pos;
    return offset >= -(long long)p->window_left && offset <= p->window_right && offset % p->dilation == 0;
}

/* The last key of K a row may see: padding and causal cut every pattern. */
static int last_key(const clattn_problem *p, int valid, int pos)
{
    return p->causal && pos < valid - 1 ? pos : valid - 1;
}

/* Padding and causal cut every pattern; a global row is dense; otherwise the window joined by
 * the global columns, or the grid rule, or with neither every key. Each j is asked once, so no
 * key is counted twice however many rules admit it. */
int clattn_visibility_key(const clattn_visibility *v, int valid, int pos, int j)
{
    const clattn_problem *p = &v->problem;
    if (pos >= valid || j < 0 || j > last_key(p, valid, pos))
        return 0;
    if (clattn_visibility_row_global(v, pos))
        return 1;
    if (p->window)
        return (v->is_global != NULL && v->is_global[j]) || in_window(p, pos, j);
    return p->grid_pattern == CLATTN_GRID_NONE || grid_visible(p, pos, j);
}

int clattn_visibility_summary_count(const clattn_visibility *v, int valid)
{
    return clattn__summary_blocks(&v->problem, valid);
}

int clattn_visibility_summary_of_key(const clattn_visibility *v, int valid, int j)
{
    const int blocks = clattn__summary_blocks(&v->problem, valid);
    if (j < 0 || j >= valid || blocks == 0)
        return -1;
    const int c = j / v->problem.summary_block;
    return c < blocks ? c : blocks - 1; /* a merged left-over key belongs to the last block */
}

/* Summary c is visible under causal only once its whole block is: its last key, which for a
 * merged last block is the batch entry's last valid key. */
int clattn_visibility_summary(const clattn_visibility *v, int valid, int pos, int c)
{
    const clattn_problem *p = &v->problem;
    if (pos >= valid || c < 0 || c >= clattn__summary_blocks(p, valid))
        return 0;
    int start, end;
    clattn__summary_keys(p, valid, c, &start, &end);
    return !p->causal || end - 1 <= pos;
}

/* floor(a / b) for b > 0 and any sign of a. */
static long long floor_div(long long a, long long b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* Keys of K in the window of the row at pos, up to `last`, and the global keys outside it. */
static long long window_keys(const clattn_visibility *v, int pos, int last)
{
    const clattn_problem *p = &v->problem;
    const long long lo = (long long)pos - p->window_left > 0 ? (long long)pos - p->window_left : 0;
    const long long hi = (long long)pos + p->window_right < last ? (long long)pos + p->window_right : last;
    /* window keys are pos + m * dilation for m in [ceil((lo - pos) / d), floor((hi - pos) / d)] */
    const long long first = -floor_div(pos - lo, p->dilation), final = floor_div(hi - pos, p->dilation);
    long long count = hi >= lo && final >= first ? final - first + 1 : 0;
    for (int g = 0; g < p->num_global; g++) {
        const int j = p->global_idx[g];
        count += j <= last && !in_window(p, pos, j);
    }
    return count;
}

/* Summary tokens of a batch entry with `valid` keys that the row at pos sees. */
static long long summary_keys(const clattn_problem *p, int valid, int pos)
{
    const long long blocks = clattn__summary_blocks(p, valid);
    if (!p->causal || pos >= valid - 1)
        return blocks;
    /* a block c < blocks - 1 ends at (c + 1) * b - 1 <= pos; the last one at valid - 1 > pos */
    const long long ended = pos < 0 ? 0 : (pos + 1) / p->summary_block;
    return ended < blocks - 1 ? ended : (blocks > 0 ? blocks - 1 : 0);
}

long long clattn_visibility_count(const clattn_visibility *v, int valid, int pos)
{
    const clattn_problem *p = &v->problem;
    if (pos >= valid)
        return 0;
    const int last = last_key(p, valid, pos);
    const int global_row = clattn_visibility_row_global(v, pos);
    long long count = 0;
    if (last >= 0) {
        if (global_row || (!p->window && p->grid_pattern == CLATTN_GRID_NONE))
            count = (long long)last + 1;
        else if (p->window)
            count = window_keys(v, pos, last);
        else
            for (int j = 0; j <= last; j++)
                count += grid_visible(p, pos, j);
    }
    if (global_row && p->global_qkv)
        return count; /* Longformer's global projection sees neither summary nor extra keys */
    if (p->summary_block > 0)
        count += summary_keys(p, valid, pos);
    return count + p->extra_len;
}
