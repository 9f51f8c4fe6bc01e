/* The geometry of a 2-D grid pattern on the device (SPEC.md, "Two-dimensional local attention"):
 * the token order the kernels read keys in, the tiles of queries, and for each tile the runs of
 * key slots it visits. Pure host code, built once per plan; host/launch_grid.c uploads it. */
#ifndef CLATTN_GRID_H
#define CLATTN_GRID_H

#include "clattn.h"
#include "error.h"

/* Why this shape. Every 2-D pattern is separable per part: S(r, c) = rows(r) x cols(c), where
 * rows(r) and cols(c) are intervals of an axis in "kernel coordinates" (criss-cross is two parts,
 * row x all and all x column; a key in both is one key). Kernel coordinates are the grid's own
 * rows and columns, except that a dilated neighborhood lists each axis group by group (g, g + d,
 * g + 2d, ... then g + 1, ...): its windows then become intervals too. A tile of th x tw queries
 * (kernel coordinates, inside one segment of the axis: a dilation group or a Swin window) sees
 * the union of its queries' rectangles, the same rectangle for the whole tile.
 *
 * The tile's keys are listed as runs of "slots", in an order chosen so that its rectangles are
 * few runs: row-major for axial-row, criss-cross and neighborhoods (a rectangle is a run per key
 * row), column-major for axial-column, window-major for Swin (a window is one run). The kernels
 * read K and V where they lie, a D-float row per key whatever the order: the GPU variant walks the
 * tile's runs as one list of keys, staging a block of their rows at a time in __local memory for
 * every query of the tile to score (each against its own rectangle, docs/GPU.md), the CPU variant
 * packs a tile's keys densely into its own scratch before scoring them (cl/grid_cpu.cl says why);
 * CPU neighborhoods skip the tiles and take two neighbouring queries at a time, reading K and V
 * as they lie (cl/grid_pairs.cl, host/launch_grid.c); the CPU patterns that cut the grid into
 * regions, Swin windows and axial rows or columns, skip them too, with a query per vector lane
 * and each key broadcast to the lanes (cl/grid_regions.cl). Measured
 * on Swin 8 (shift 4) on 64 x 64, H = 8, D = 64, POCL on 2 Xeon cores: a layout transform of K
 * and V into slot order, with the kernel walking each run in place, took 55 ms with an
 * element-wise copy and 19 ms with a row-wise one; packing each tile's keys from K and V in place
 * took 16 ms, and packing them once per key set (the tiles of one window follow one another)
 * with unmasked whole chunks 10.5 ms; later, on a faster core, those tiles 3.4 ms and the regions
 * kernel 2.4 ms. Q and O are never copied: each query is addressed through its own token index. */
typedef struct {
    int h, w;       /* grid */
    int th, tw;     /* tile sides (kernel coordinates): th * tw query slots */
    int ntiles;     /* tiles; tile i is tiles[5i .. 5i+4] = first row, rows, first column, columns,
                     * and 1 when it sees the same keys as tile i - 1 (tiles are sorted so that
                     * tiles of one key set, as of one Swin window, follow one another) */
    int nparts;     /* 1, or 2 for criss-cross */
    int nslots;     /* slots of the key tables: N rounded up to whole chunks of `chunk` keys */
    int *tiles;     /* [CLATTN__GRID_TILE_INTS ntiles] */
    int *runs;      /* [ntiles + 1] run offsets, then [2 nruns] (first slot, length) */
    int nruns;      /* runs of every tile together */
    int max_keys;   /* the most keys one tile sees (its runs' lengths summed) */
    int *axis;      /* see CLATTN__GRID_AXIS_* below */
    int axis_ints;  /* ints in axis */
    int *keys;      /* [3 nslots]: kernel row, kernel column, token of each slot (-1 past N) */
    long long cost; /* the estimate the tile sides were chosen by (CPU: lanes x rows) */
} clattn__grid;

#define CLATTN__GRID_TILE_INTS 5 /* cl/grid_common.cl's GRID_TILE_INTS */

/* The axis table: [orig_r H] [orig_c W] (the grid row / column of each kernel coordinate), then
 * per part p < 2: [lo_r H] [n_r H] [lo_c W] [n_c W] (each query's interval of keys along the axis,
 * in kernel coordinates). cl/grid_common.cl reads it with the same offsets. */
#define CLATTN__GRID_AXIS_INTS(h, w) (5 * ((h) + (w)))

/* Builds the geometry of a normalized grid problem p for tiles of at most `slots` queries: the
 * tile sides that minimize the estimated work (cpu: lanes of 16-key vectors times (rows + 2), the
 * rows sharing each key vector; else the keys the work-group stages), key tables padded to whole
 * chunks of `chunk` slots. */
int clattn__grid_build(const clattn_problem *p, int slots, int cpu, int chunk, clattn__grid *g, clattn__error *err);

void clattn__grid_free(clattn__grid *g); /* zeroes *g */

#endif
