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
 * The keys are read in a "slot order" chosen so that those rectangles are few contiguous runs:
 * row-major for axial-row, criss-cross and neighborhoods (a rectangle is one run per key row),
 * column-major for axial-column (a strip of columns is one run), window-major for Swin (a
 * window's M x M keys are one run). A key row is one contiguous D-float record whatever the
 * order, so the order matters for the CPU variant's 16-key vectors (a run shorter than 16 keys
 * wastes lanes) and for the GPU variant's staging (fewer, longer copies). Where slot order is not
 * the token order (axial-column, Swin, dilation) K and V are gathered into it once per run, an
 * O(N (D + Dv)) copy beside the O(N k (D + Dv)) attention, which it pays for by turning short
 * strided runs into long ones; Q and O stay in token order (each query is addressed through its
 * own token index), so nothing is copied back. */
typedef struct {
    int h, w;       /* grid */
    int th, tw;     /* tile sides (kernel coordinates): th * tw query slots */
    int ntiles;     /* tiles; tile i is tiles[4i .. 4i+3] = first row, rows, first column, columns */
    int nparts;     /* 1, or 2 for criss-cross */
    int nslots;     /* slots of the key tables: N rounded up to whole chunks of `chunk` keys */
    int identity;   /* slot order == token order: K and V are read in place */
    int *tiles;     /* [4 ntiles] */
    int *runs;      /* [ntiles + 1] run offsets, then [2 nruns] (first slot, length) */
    int nruns;      /* runs of every tile together */
    int *axis;      /* see CLATTN__GRID_AXIS_* below */
    int axis_ints;  /* ints in axis */
    int *keys;      /* [3 nslots]: kernel row, kernel column, token of each slot (-1 past N) */
    long long cost; /* the estimate the tile sides were chosen by (CPU: lanes x rows) */
} clattn__grid;

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
