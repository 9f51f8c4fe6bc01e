/* The device geometry of the 2-D grid patterns (host/grid.h says why it has this shape): kernel
 * coordinates and intervals per axis, slot order, tiles and their runs of key slots, and the
 * choice of tile sides by an estimate of the work. */
#include "grid.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* What one part asks of one axis. */
typedef enum { AXIS_ALL, AXIS_SELF, AXIS_NEIGHBORHOOD, AXIS_WINDOW } axis_kind;

typedef enum { ORDER_ROW_MAJOR, ORDER_COLUMN_MAJOR, ORDER_WINDOW_MAJOR } slot_order;

/* One axis of length len: kernel coordinates, the segments tiles stay inside, and each part's
 * interval of keys for every query. */
typedef struct {
    int len;
    int *orig;         /* [len] grid index of kernel coordinate i */
    int *seg;          /* [len] first kernel coordinate of i's segment (group or window) */
    int *seg_end;      /* [len] one past its last */
    int *lo[2], *n[2]; /* [len] per part */
} axis;

/* The pattern as two axis kinds per part, and the kernel size, dilation, window and shift of the
 * row (index 0) and column (index 1) axes. */
typedef struct {
    int nparts;
    axis_kind kind[2][2]; /* [part][axis] */
    int k[2], dilation, size, shift;
    slot_order order;
} pattern_axes;

static pattern_axes axes_of(const clattn_problem *p)
{
    pattern_axes a = {.nparts = 1,
                      .k = {p->grid_kernel_h, p->grid_kernel_w},
                      .dilation = p->grid_dilation,
                      .size = p->grid_window_size,
                      .shift = p->grid_shift,
                      .order = ORDER_ROW_MAJOR};
    switch (p->grid_pattern) {
    case CLATTN_GRID_AXIAL_ROW:
        a.kind[0][0] = AXIS_SELF, a.kind[0][1] = AXIS_ALL;
        break;
    case CLATTN_GRID_AXIAL_COLUMN:
        a.kind[0][0] = AXIS_ALL, a.kind[0][1] = AXIS_SELF;
        a.order = ORDER_COLUMN_MAJOR;
        break;
    case CLATTN_GRID_CRISS_CROSS:
        a.nparts = 2;
        a.kind[0][0] = AXIS_SELF, a.kind[0][1] = AXIS_ALL;
        a.kind[1][0] = AXIS_ALL, a.kind[1][1] = AXIS_SELF;
        break;
    case CLATTN_GRID_NEIGHBORHOOD:
        a.kind[0][0] = a.kind[0][1] = AXIS_NEIGHBORHOOD;
        break;
    case CLATTN_GRID_WINDOW:
    case CLATTN_GRID_NONE:
        a.kind[0][0] = a.kind[0][1] = AXIS_WINDOW;
        a.order = ORDER_WINDOW_MAJOR;
        break;
    }
    return a;
}

static void axis_free(axis *x)
{
    free(x->orig);
    free(x->seg);
    free(x->seg_end);
    for (int part = 0; part < 2; part++) {
        free(x->lo[part]);
        free(x->n[part]);
    }
    memset(x, 0, sizeof *x);
}

/* Swin's window of grid index i along an axis of length len: [*lo, *hi). Cuts at shift, shift +
 * size, ...; the strip [0, shift) is a window of its own (the whole axis when shift >= len: a
 * window larger than the grid may be shifted past its end). */
static void swin_segment(int i, int len, int size, int shift, int *lo, int *hi)
{
    if (i < shift) {
        *lo = 0;
        *hi = shift < len ? shift : len;
        return;
    }
    *lo = shift + (i - shift) / size * size;
    *hi = len - *lo > size ? *lo + size : len;
}

/* Axis `which` (0 rows, 1 columns) of a pattern. A dilated neighborhood lists the axis group by
 * group, so that win(i, L, k, d) of SPEC.md is an interval of k (or Lg) kernel coordinates. */
static int axis_build(const pattern_axes *a, int which, int len, axis *x)
{
    memset(x, 0, sizeof *x);
    x->len = len;
    const size_t bytes = (size_t)len * sizeof(int);
    x->orig = malloc(bytes), x->seg = malloc(bytes), x->seg_end = malloc(bytes);
    int ok = x->orig && x->seg && x->seg_end;
    for (int part = 0; part < 2; part++) {
        x->lo[part] = calloc((size_t)len, sizeof(int));
        x->n[part] = calloc((size_t)len, sizeof(int));
        ok = ok && x->lo[part] && x->n[part];
    }
    if (!ok)
        return 0;
    const int grouped = a->kind[0][which] == AXIS_NEIGHBORHOOD;
    const int d = grouped ? a->dilation : 1;
    /* kernel coordinate i: group g, member m (i = first + m) */
    for (int g = 0, i = 0; g < d; g++) {
        const int first = i, members = (len - g + d - 1) / d;
        for (int m = 0; m < members; m++, i++) {
            x->orig[i] = g + m * d;
            x->seg[i] = first;
            x->seg_end[i] = first + members;
            if (a->kind[0][which] == AXIS_WINDOW)
                swin_segment(i, len, a->size, a->shift, &x->seg[i], &x->seg_end[i]);
            for (int part = 0; part < a->nparts; part++) {
                switch (a->kind[part][which]) {
                case AXIS_ALL:
                    x->lo[part][i] = 0, x->n[part][i] = len;
                    break;
                case AXIS_SELF:
                    x->lo[part][i] = i, x->n[part][i] = 1;
                    break;
                case AXIS_NEIGHBORHOOD: {
                    const int k = a->k[which];
                    int start = m - k / 2;
                    if (start > members - k)
                        start = members - k;
                    if (start < 0)
                        start = 0;
                    x->lo[part][i] = first + start;
                    x->n[part][i] = k < members ? k : members;
                    break;
                }
                case AXIS_WINDOW:
                    x->lo[part][i] = x->seg[i];
                    x->n[part][i] = x->seg_end[i] - x->seg[i];
                    break;
                }
            }
        }
    }
    return 1;
}

/* The slot of the key at kernel coordinates (r, c). */
static int slot_of(const pattern_axes *a, const axis *rows, const axis *cols, int r, int c)
{
    switch (a->order) {
    case ORDER_COLUMN_MAJOR:
        return c * rows->len + r;
    case ORDER_WINDOW_MAJOR: {
        /* windows row-major, each window's keys row-major: the windows above take seg * W slots,
         * those to the left in the same band (seg rows) x (their columns) */
        const int r0 = rows->seg[r], c0 = cols->seg[c];
        const int band = rows->seg_end[r] - r0, width = cols->seg_end[c] - c0;
        return r0 * cols->len + band * c0 + (r - r0) * width + (c - c0);
    }
    case ORDER_ROW_MAJOR:
        break;
    }
    return r * cols->len + c;
}

typedef struct {
    int lo, hi;
} interval;

static int compare_interval(const void *a, const void *b)
{
    const interval *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

/* The runs of slots of the rectangle rows [r0, r1) x columns [c0, c1), appended to out: one per
 * key row (per column in column-major order); adjacent runs merge later. */
static int rect_runs(const pattern_axes *a, const axis *rows, const axis *cols, int r0, int r1, int c0, int c1,
                     interval *out)
{
    int count = 0;
    if (a->order == ORDER_COLUMN_MAJOR)
        for (int c = c0; c < c1; c++, count++)
            out[count] = (interval){slot_of(a, rows, cols, r0, c), slot_of(a, rows, cols, r0, c) + (r1 - r0)};
    else
        for (int r = r0; r < r1; r++, count++)
            out[count] = (interval){slot_of(a, rows, cols, r, c0), slot_of(a, rows, cols, r, c0) + (c1 - c0)};
    return count;
}

/* The union of the piece's intervals along one axis for one part: [*lo, *hi). Intervals of
 * neighbouring queries of one segment overlap or touch, so their union is an interval. */
static void piece_union(const axis *x, int part, int first, int count, int *lo, int *hi)
{
    *lo = INT_MAX, *hi = INT_MIN;
    for (int i = first; i < first + count; i++) {
        *lo = x->lo[part][i] < *lo ? x->lo[part][i] : *lo;
        *hi = x->lo[part][i] + x->n[part][i] > *hi ? x->lo[part][i] + x->n[part][i] : *hi;
    }
}

/* Pieces of at most `side` kernel coordinates, each inside one segment: (first, count) pairs
 * into out (may be NULL, to count them). */
static int pieces(const axis *x, int side, int *out)
{
    int count = 0;
    for (int i = 0; i < x->len;) {
        const int n = x->seg_end[i] - i < side ? x->seg_end[i] - i : side;
        if (out != NULL)
            out[2 * count] = i, out[2 * count + 1] = n;
        count++;
        i += n;
    }
    return count;
}

/* Sorts and merges a tile's runs in place (overlapping ones too: criss-cross's two parts share
 * the tile's own cells); returns how many remain. */
static int merge_runs(interval *runs, int count)
{
    qsort(runs, (size_t)count, sizeof *runs, compare_interval);
    int kept = 0;
    for (int i = 0; i < count; i++) {
        if (kept > 0 && runs[i].lo <= runs[kept - 1].hi) {
            runs[kept - 1].hi = runs[i].hi > runs[kept - 1].hi ? runs[i].hi : runs[kept - 1].hi;
            continue;
        }
        runs[kept++] = runs[i];
    }
    return kept;
}

/* The merged runs of tile (row piece rp, column piece cp) into out; returns their count. */
static int tile_runs(const pattern_axes *a, const axis *rows, const axis *cols, const int *rp, const int *cp,
                     interval *out)
{
    int count = 0;
    for (int part = 0; part < a->nparts; part++) {
        int r0, r1, c0, c1;
        piece_union(rows, part, rp[0], rp[1], &r0, &r1);
        piece_union(cols, part, cp[0], cp[1], &c0, &c1);
        count += rect_runs(a, rows, cols, r0, r1, c0, c1, out + count);
    }
    return merge_runs(out, count);
}

/* Work of a tile that sees `keys` keys, as the kernels do it: the CPU variant packs them (about
 * as much work per key as 8 query rows' worth of score and value lanes) and computes whole
 * 16-key groups for its th x tw rows, plus a chunk's set-up; the GPU variant's work-group of
 * `slots` items stages and scores every key. */
static long long tile_work(long long keys, int cpu, int rows, int slots)
{
    if (!cpu)
        return keys * slots;
    return ((keys + 15) / 16 * 16 + 8) * (rows + 2) + 8 * keys;
}

/* Tiles of th x tw: their estimated cost (and, when g is not NULL, their tables into g). */
static long long tiling(const pattern_axes *a, const axis *rows, const axis *cols, int th, int tw, int cpu, int slots,
                        interval *scratch, clattn__grid *g)
{
    const int nr = pieces(rows, th, NULL), nc = pieces(cols, tw, NULL);
    int *rp = malloc(2 * (size_t)nr * sizeof(int)), *cp = malloc(2 * (size_t)nc * sizeof(int));
    if (rp == NULL || cp == NULL) {
        free(rp);
        free(cp);
        return -1;
    }
    pieces(rows, th, rp);
    pieces(cols, tw, cp);
    long long cost = 0;
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nc; j++) {
            const int count = tile_runs(a, rows, cols, rp + 2 * i, cp + 2 * j, scratch);
            const int tile = i * nc + j;
            int keys = 0;
            for (int r = 0; r < count; r++)
                keys += scratch[r].hi - scratch[r].lo;
            if (g != NULL && keys > g->max_keys)
                g->max_keys = keys;
            cost += tile_work(keys, cpu, th * tw, slots);
            for (int r = 0; r < count; r++) {
                if (g != NULL) {
                    g->runs[g->ntiles + 1 + 2 * (g->runs[tile] + r)] = scratch[r].lo;
                    g->runs[g->ntiles + 1 + 2 * (g->runs[tile] + r) + 1] = scratch[r].hi - scratch[r].lo;
                }
            }
            if (g != NULL) {
                g->runs[tile + 1] = g->runs[tile] + count;
                const int t[CLATTN__GRID_TILE_INTS] = {rp[2 * i], rp[2 * i + 1], cp[2 * j], cp[2 * j + 1], 0};
                memcpy(g->tiles + CLATTN__GRID_TILE_INTS * tile, t, sizeof t);
            }
        }
    free(rp);
    free(cp);
    return cost;
}

/* The most runs one tile can have: one per key row or column of each part's rectangle. */
static int max_tile_runs(const axis *rows, const axis *cols)
{
    return 2 * (rows->len > cols->len ? rows->len : cols->len);
}

/* Counts the runs of every tile of th x tw (a first pass, to size g->runs). */
static int count_runs(const pattern_axes *a, const axis *rows, const axis *cols, int th, int tw, interval *scratch)
{
    const int nr = pieces(rows, th, NULL), nc = pieces(cols, tw, NULL);
    int *rp = malloc(2 * (size_t)nr * sizeof(int)), *cp = malloc(2 * (size_t)nc * sizeof(int));
    long long total = -1;
    if (rp != NULL && cp != NULL) {
        pieces(rows, th, rp);
        pieces(cols, tw, cp);
        total = 0;
        for (int i = 0; i < nr; i++)
            for (int j = 0; j < nc; j++)
                total += tile_runs(a, rows, cols, rp + 2 * i, cp + 2 * j, scratch);
    }
    free(rp);
    free(cp);
    return total > INT_MAX ? -1 : (int)total;
}

/* The longest segment of an axis: a tile side beyond it only adds empty slots. */
static int longest_segment(const axis *x)
{
    int most = 1;
    for (int i = 0; i < x->len; i++)
        most = x->seg_end[i] - x->seg[i] > most ? x->seg_end[i] - x->seg[i] : most;
    return most;
}

static int fill_tables(const pattern_axes *a, const axis *rows, const axis *cols, int chunk, clattn__grid *g)
{
    const int h = rows->len, w = cols->len, n = h * w;
    g->nslots = (n + chunk - 1) / chunk * chunk;
    g->axis_ints = CLATTN__GRID_AXIS_INTS(h, w);
    g->axis = calloc((size_t)g->axis_ints, sizeof(int));
    g->keys = malloc(3 * (size_t)g->nslots * sizeof(int));
    if (g->axis == NULL || g->keys == NULL)
        return 0;
    memcpy(g->axis, rows->orig, (size_t)h * sizeof(int));
    memcpy(g->axis + h, cols->orig, (size_t)w * sizeof(int));
    for (int part = 0; part < a->nparts; part++) {
        int *base = g->axis + h + w + part * 2 * (h + w);
        memcpy(base, rows->lo[part], (size_t)h * sizeof(int));
        memcpy(base + h, rows->n[part], (size_t)h * sizeof(int));
        memcpy(base + 2 * h, cols->lo[part], (size_t)w * sizeof(int));
        memcpy(base + 2 * h + w, cols->n[part], (size_t)w * sizeof(int));
    }
    for (int i = 0; i < 3 * g->nslots; i++)
        g->keys[i] = -1;
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++) {
            const int s = slot_of(a, rows, cols, r, c), token = rows->orig[r] * w + cols->orig[c];
            g->keys[s] = r;
            g->keys[g->nslots + s] = c;
            g->keys[2 * g->nslots + s] = token;
        }
    return 1;
}

typedef struct {
    int first, index; /* a tile's first key slot, and its place */
} tile_key;

static int compare_tile_key(const void *a, const void *b)
{
    const tile_key *x = a, *y = b;
    if (x->first != y->first)
        return (x->first > y->first) - (x->first < y->first);
    return (x->index > y->index) - (x->index < y->index);
}

/* Whether tiles a and b (of g, before sorting) have the same runs. */
static int same_runs(const clattn__grid *g, int a, int b)
{
    const int *offsets = g->runs, *runs = g->runs + g->ntiles + 1;
    const int count = offsets[a + 1] - offsets[a];
    return count == offsets[b + 1] - offsets[b] &&
           memcmp(runs + 2 * offsets[a], runs + 2 * offsets[b], 2 * (size_t)count * sizeof(int)) == 0;
}

/* Sorts the tiles by their first key slot, so that the tiles of one key set follow one another
 * (a CPU work-item packs their keys once), and marks each tile that has its predecessor's keys. */
static int sort_tiles(clattn__grid *g)
{
    const size_t n = (size_t)g->ntiles, ti = CLATTN__GRID_TILE_INTS;
    tile_key *order = malloc(n * sizeof *order);
    int *tiles = malloc(n * ti * sizeof(int)), *runs = malloc((n + 1 + 2 * (size_t)g->nruns) * sizeof(int));
    const int ok = order != NULL && tiles != NULL && runs != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        const int count = g->runs[i + 1] - g->runs[i];
        order[i] = (tile_key){count > 0 ? g->runs[n + 1 + 2 * (size_t)g->runs[i]] : -1, (int)i};
    }
    if (ok) {
        qsort(order, n, sizeof *order, compare_tile_key);
        runs[0] = 0;
        for (size_t i = 0; i < n; i++) {
            const int from = order[i].index, count = g->runs[from + 1] - g->runs[from];
            memcpy(tiles + ti * i, g->tiles + ti * (size_t)from, ti * sizeof(int));
            tiles[ti * i + ti - 1] = i > 0 && same_runs(g, order[i - 1].index, from);
            runs[i + 1] = runs[i] + count;
            memcpy(runs + n + 1 + 2 * (size_t)runs[i], g->runs + n + 1 + 2 * (size_t)g->runs[from],
                   2 * (size_t)count * sizeof(int));
        }
        free(g->tiles);
        free(g->runs);
        g->tiles = tiles, g->runs = runs;
        tiles = runs = NULL;
    }
    free(order);
    free(tiles);
    free(runs);
    return ok;
}

int clattn__grid_build(const clattn_problem *p, int slots, int cpu, int chunk, clattn__grid *g, clattn__error *err)
{
    memset(g, 0, sizeof *g);
    const pattern_axes a = axes_of(p);
    axis rows = {0}, cols = {0};
    interval *scratch = NULL;
    int ok = axis_build(&a, 0, p->grid_h, &rows) && axis_build(&a, 1, p->grid_w, &cols);
    if (ok)
        ok = (scratch = malloc((size_t)max_tile_runs(&rows, &cols) * 2 * sizeof *scratch)) != NULL;
    /* The tile sides of least estimated work, th x tw <= slots. */
    const int most_h = longest_segment(&rows), most_w = longest_segment(&cols);
    long long best = -1;
    for (int th = 1; ok && th <= slots && th <= most_h; th++) {
        int tw = slots / th < most_w ? slots / th : most_w;
        const long long cost = tiling(&a, &rows, &cols, th, tw, cpu, slots, scratch, NULL);
        ok = cost >= 0;
        if (ok && (best < 0 || cost < best)) {
            best = cost;
            g->th = th, g->tw = tw;
        }
    }
    if (ok) {
        g->h = p->grid_h, g->w = p->grid_w, g->nparts = a.nparts, g->cost = best;
        g->ntiles = pieces(&rows, g->th, NULL) * pieces(&cols, g->tw, NULL);
        g->nruns = count_runs(&a, &rows, &cols, g->th, g->tw, scratch);
        ok = g->nruns >= 0;
    }
    if (ok) {
        g->tiles = malloc(CLATTN__GRID_TILE_INTS * (size_t)g->ntiles * sizeof(int));
        g->runs = calloc((size_t)g->ntiles + 1 + 2 * (size_t)g->nruns, sizeof(int));
        ok = g->tiles != NULL && g->runs != NULL &&
             tiling(&a, &rows, &cols, g->th, g->tw, cpu, slots, scratch, g) >= 0 && sort_tiles(g) &&
             fill_tables(&a, &rows, &cols, chunk, g);
    }
    free(scratch);
    axis_free(&rows);
    axis_free(&cols);
    if (!ok) {
        clattn__grid_free(g);
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "the tables of a %d x %d grid", p->grid_h,
                            p->grid_w);
    }
    return CLATTN_STATUS_OK;
}

void clattn__grid_free(clattn__grid *g)
{
    free(g->tiles);
    free(g->runs);
    free(g->axis);
    free(g->keys);
    memset(g, 0, sizeof *g);
}
