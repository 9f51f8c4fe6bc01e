// What both variants of the 2-D grid kernel share (compiled after common.cl, and for the CPU
// after attention_cpu.cl): a query's intervals of keys along each axis, read from host/grid.c's
// axis table, and the visibility of a key slot from them.
//
// Kernel coordinates, slots and tiles are host/grid.h's: a key slot holds its kernel row, kernel
// column and token (-1 past N); a query at kernel coordinates (r, c) sees the keys of each part's
// rectangle [lo_r, lo_r + n_r) x [lo_c, lo_c + n_c), a key in both of criss-cross's parts once.
// Padding (seq_lens) and causal apply to the tokens as everywhere else (SPEC.md 2 and 7).
//   -DCLATTN_GRID_TW=<1..>   query slots per tile row: slot s is tile row s / TW, column s % TW
#ifndef CLATTN_GRID_TW
#define CLATTN_GRID_TW 1
#endif

// The arguments of `grid_attention`, the same in both variants (host/launch_grid.c sets them in
// this order; the GPU variant leaves the CPU's scratch unused).
// clang-format off
#define GRID_ATTENTION_ARGS                                                                        \
    __global const elem_t *q,      /* [B, H, N, D], token order */                                 \
    __global const elem_t *k,      /* [B, Hkv, N, D], token order */                               \
    __global const elem_t *v,      /* [B, Hkv, N, DV], token order */                              \
    __global const int *tiles,     /* host/grid.c: tiles, run offsets, runs */                     \
    __global const int *axis,      /* host/grid.c's axis table */                                  \
    __global const int *keys,      /* [3 nslots] kernel row, column, token */                      \
    __global const int *seq_lens,  /* [B] */                                                       \
    __global elem_t *out,          /* [B, H, N, DV] */                                             \
    __global float *lse,           /* [B, H, N] when write_lse */                                  \
    __global float *scratch,       /* CPU: per work-item [lanes (D + DV)] floats */                \
    __global int *scratch_info,    /* CPU: per work-item [3 lanes] ints */                         \
    int lanes, int per_item, int heads, int kv_heads, int h, int w, int nparts, int ntiles,        \
    int nslots, int causal, float qscale, int write_lse
// clang-format on

// Ints per tile of the tile table (host/grid.h): first row, rows, first column, columns, and
// whether the tile sees the keys of the tile before it.
#define GRID_TILE_INTS 5

typedef struct {
    int tok;           // the query's token (row-major grid index), its row of Q and O
    int rlo[2], rn[2]; // per part: interval of key rows (n 0: the part is absent)
    int clo[2], cn[2]; // per part: interval of key columns
} grid_query;

// The query at kernel coordinates (r, c). The axis table is [orig_r H][orig_c W], then per part
// [lo_r H][n_r H][lo_c W][n_c W].
inline grid_query grid_query_of(__global const int *axis, int h, int w, int nparts, int r, int c)
{
    grid_query g;
    g.tok = axis[r] * w + axis[h + c];
    for (int part = 0; part < 2; part++) {
        __global const int *base = axis + h + w + part * 2 * (h + w);
        const bool on = part < nparts;
        g.rlo[part] = base[r];
        g.rn[part] = on ? base[h + r] : 0;
        g.clo[part] = base[2 * h + c];
        g.cn[part] = on ? base[2 * h + w + c] : 0;
    }
    return g;
}

// Whether the key in kernel row kr, column kc, token kt (-1: no key) is in the query's set.
inline bool grid_visible(const grid_query *g, int kr, int kc, int kt, int kv_len, int causal)
{
    bool in = false;
    for (int part = 0; part < 2; part++)
        in |= (uint)(kr - g->rlo[part]) < (uint)g->rn[part] && (uint)(kc - g->clo[part]) < (uint)g->cn[part];
    return in && kt >= 0 && kt < kv_len && !(causal && kt > g->tok);
}
