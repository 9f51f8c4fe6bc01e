/* `clattn bench` and `clattn tune` arguments: the patterns, sequence lengths, shapes and output
 * format of a sweep, parsed from the command line. */
#ifndef CLATTN_BENCH_OPTIONS_H
#define CLATTN_BENCH_OPTIONS_H

#include "clattn.h"

#define MAX_DEVICES 16
#define MAX_LENGTHS 32

typedef enum {
    PATTERN_DENSE,
    PATTERN_CAUSAL,
    PATTERN_WINDOW,
    PATTERN_WINDOW_GLOBAL,
    PATTERN_WINDOW_SUMMARY,
    PATTERN_DECODE, /* one query row at the last position, causal: a step of generation */
    /* 2-D grid patterns (SPEC.md): N tokens as a grid_h x grid_w grid (options_grid) */
    PATTERN_AXIAL,        /* axial-row */
    PATTERN_CRISS_CROSS,  /* row and column */
    PATTERN_NEIGHBORHOOD, /* kernel_h x kernel_w, dilation grid_dilation */
    PATTERN_SWIN,         /* windows of swin_size, shifted by swin_shift */
    PATTERN_COUNT
} pattern_id;

extern const char *const pattern_names[PATTERN_COUNT];

/* Whether a pattern is one of the 2-D grid patterns (the last of pattern_id). */
static inline int pattern_is_grid(pattern_id pattern)
{
    return pattern >= PATTERN_AXIAL;
}

/* --dtype's names of clattn_dtype's values, in order: "f32", "f16", "bf16". */
extern const char *const dtype_names[3];

/* Bytes of one element of a storage type: 4 or 2. */
size_t dtype_bytes(clattn_dtype dtype);

/* FORMAT_BRIEF: the table's columns a person reads at a glance. */
typedef enum { FORMAT_TABLE, FORMAT_BRIEF, FORMAT_JSON, FORMAT_CSV } output_format;

typedef struct {
    char devices[MAX_DEVICES][64]; /* specs as clattn_context_desc.device takes them */
    int num_devices;
    int patterns[PATTERN_COUNT]; /* nonzero: run this pattern */
    int lengths[MAX_LENGTHS];    /* ascending, no repeats, so that plotted series run left to right */
    int num_lengths;
    int batch, heads, kv_heads, head_dim, window, globals, summary_block, repeat, warmup;
    int rounds;         /* --rounds: passes over the sweep, each point's samples pooled (bench only) */
    int grid_h, grid_w; /* --grid: the grid of N = H * W (0: near-square grids) */
    int kernel_h, kernel_w, grid_dilation; /* --kernel KH,KW[,D] of the neighborhood pattern */
    int swin_size, swin_shift;             /* --swin M[,S] */
    clattn_dtype dtype;                    /* --dtype: the storage type of Q, K, V and O */
    output_format format;
    const char *plot;      /* SVG path, or NULL */
    const char *cache_dir; /* --cache-dir, or NULL: $CLATTN_CACHE_DIR, else none */
    int save;              /* tune: store the winner in the cache directory */
} bench_options;

/* Returns 0, EXIT_USAGE (the message printed), or -1 when --help was answered. Devices are
 * left empty when no --device was given. */
int options_parse(int argc, char **argv, bench_options *o);

/* The grid of a 2-D pattern with n tokens: --grid when its product is n, else the most nearly
 * square h x w = n (h <= w). */
void options_grid(const bench_options *o, int n, int *h, int *w);

/* Every OpenCL device as "P:D", then the reference path. */
void options_default_devices(bench_options *o);

#endif
