// What the attention programs share (common.cl + attention_cpu.cl + decode.cl for CPUs,
// common.cl + attention_gpu.cl and common.cl + decode_gpu.cl for GPUs): build options, vector types, the visibility
// rules, row output and the attention kernel's argument list.
//
// Flash-style attention over a band of keys plus a list of side keys (global, summary and extra
// tokens), with a running-max online softmax; never materialises a score matrix. Dense, causal
// and sliding-window attention are all bands: dense is a band wider than the sequence.
//
// Build options (each has a default below; the host sets only its variant's own):
//   -DCLATTN_D=<1..256>      head dimension of Q and K
//   -DCLATTN_DV=<1..256>     head dimension of V and O
//   -DCLATTN_VW=<1..16>      vector width over DV; the largest power of two <= 16 dividing DV
//   -DCLATTN_WD=<1..16>      the same over D (the decode path's row-major scores)
//   -DCLATTN_ROWS=<1..16>    CPU variant: query rows per tile (8 on AVX-512, 6 on AVX2: see
//                            tuning.c)
//   -DCLATTN_TILES=<1..8>    CPU variant: most tiles per work-item of `attention` (the launch
//                            passes how many), walked chunk by chunk so that they share each
//                            chunk's reads; each tile's state is private (about
//                            4 * ROWS * (DV + 17) bytes)
//   -DCLATTN_KC=<16,32,64>   CPU variant: keys per panel and per chunk of the key loop
//   -DCLATTN_KW=<8,16,32>    CPU variant: keys per score pass (32: two vectors per row, and two
//                            value column blocks per P.V pass); ROWS * KW / (native width)
//                            accumulators must fit the register file with room for 3 more
//   -DCLATTN_BM, BN, TM, TN  GPU variant: rows per work-group, keys per tile, each work-item's
//                            register block (attention_gpu.cl)
#ifndef CLATTN_D
#define CLATTN_D 64
#endif
#ifndef CLATTN_DV
#define CLATTN_DV CLATTN_D
#endif
#ifndef CLATTN_VW
#define CLATTN_VW 8
#endif
#ifndef CLATTN_WD
#define CLATTN_WD 16
#endif
#ifndef CLATTN_KW
#define CLATTN_KW 16
#endif
#ifndef CLATTN_KC
#define CLATTN_KC 64
#endif
#ifndef CLATTN_ROWS
#define CLATTN_ROWS 6
#endif
#ifndef CLATTN_TILES
#define CLATTN_TILES 4
#endif

#define D CLATTN_D
#define DV CLATTN_DV

#if CLATTN_VW == 16
typedef float16 vw_t;
#define VLOAD_W vload16
#elif CLATTN_VW == 8
typedef float8 vw_t;
#define VLOAD_W vload8
#elif CLATTN_VW == 4
typedef float4 vw_t;
#define VLOAD_W vload4
#elif CLATTN_VW == 2
typedef float2 vw_t;
#define VLOAD_W vload2
#else
typedef float vw_t;
#define VLOAD_W(i, p) ((p)[(i)])
#endif

// The sum of a vector's lanes.
inline float lane_sum(float16 x)
{
    const float8 a = x.lo + x.hi;
    const float4 b = a.lo + a.hi;
    return b.x + b.y + b.z + b.w;
}

// Vectors over D for the row-major score path (decode): CLATTN_WD wide, summed at the end.
#if CLATTN_WD == 16
typedef float16 wd_t;
#define VLOAD_D vload16
#define WD_SUM(x) lane_sum(x)
#elif CLATTN_WD == 8
typedef float8 wd_t;
#define VLOAD_D vload8
#define WD_SUM(x) dot((x).lo + (x).hi, (float4)(1.0f))
#elif CLATTN_WD == 4
typedef float4 wd_t;
#define VLOAD_D vload4
#define WD_SUM(x) dot((x), (float4)(1.0f))
#elif CLATTN_WD == 2
typedef float2 wd_t;
#define VLOAD_D vload2
#define WD_SUM(x) ((x).x + (x).y)
#else
typedef float wd_t;
#define VLOAD_D(i, p) ((p)[(i)])
#define WD_SUM(x) (x)
#endif

// The band and side-key rules of one launch (SPEC.md, patterns 2 to 7). `right` already
// includes causal (min(R, 0)); an unbounded side is Nq + Nk, wider than any distance.
typedef struct {
    int left, right, dilation, causal;
} band_rule;

// Whether key j of the band is visible from position p, for a batch entry with kv_len keys.
inline bool band_visible(band_rule rule, int p, int j, int kv_len)
{
    const int delta = j - p;
    return j < kv_len && delta >= -rule.left && delta <= rule.right &&
           (rule.dilation == 1 || delta % rule.dilation == 0);
}

// Side keys are laid out [globals | summaries | extras]; spos is the key's position (a global
// token's index, a summary block's last valid key, or -1 for an empty summary block).
inline bool side_visible(band_rule rule, int p, int s, int spos, int n_global, int n_summary, int kv_len)
{
    if (s < n_global) // counted here only when the band has not counted it already
        return spos < kv_len && !(rule.causal && spos > p) && !band_visible(rule, p, spos, kv_len);
    if (s < n_global + n_summary)
        return spos >= 0 && !(rule.causal && spos > p);
    return true;
}

// Query row handled by slot `r` of a tile: rows come from a list for the global-row pass.
inline int tile_row(__global const int *rows, int use_rows, int r)
{
    return use_rows ? rows[r] : r;
}

// The [B, Hkv] index of the kv head that serves `attention`'s work-item dimension 1, bh (batch *
// head): grouped-query attention gives each kv head heads / kv_heads consecutive query heads.
inline size_t kv_head_of(int bh, int heads, int kv_heads)
{
    const int b = bh / heads;
    const int hk = (bh % heads) / (heads / kv_heads);
    return (size_t)b * kv_heads + hk;
}

// The row's sum of weights l also says whether it met a non-finite input (SPEC.md: never hidden):
//   +0   no visible key (padding): output 0 and LSE -inf, never NaN;
//   NaN  a NaN logit, or a +inf one (its weight is 2^(inf - inf)): out and LSE NaN, as in the
//        reference, whose max-subtracted softmax meets the same NaN;
//   -0   visible keys, every logit -inf so far: weights of 0 here, but IEEE arithmetic makes them
//        exp(-inf - -inf) = NaN when the row's max ends -inf, so a -0 that lasts gives NaN. A later
//        finite max turns it into a plain sum, the -inf logits weighing 0.
// Infinities in V reach acc by arithmetic alone. All of it is settled once per row (here, and
// where a row has no finite max yet), so the key loops carry none of it.
// The GPU kernels apply the same rule through these helpers, a block of columns or one column at a
// time.
inline bool row_empty(float l)
{
    return as_uint(l) == 0;
}

// The row's sum as the rule reads it: 1 for an empty row (whose output is 0 anyway), NaN for -0.
inline float row_sum(float l)
{
    return row_empty(l) ? 1.0f : l == 0.0f ? NAN : l;
}

inline float row_inverse(float l)
{
    return 1.0f / row_sum(l);
}

// One output value of the row (the decode merge writes a column at a time).
inline float row_value(float acc, float l)
{
    return row_empty(l) ? 0.0f : acc * row_inverse(l);
}

inline float row_lse(float m, float l)
{
    return row_empty(l) ? -INFINITY : (m + log2(row_sum(l))) * M_LN2_F;
}

inline void write_row(__global float *out, __global float *lse, size_t row, int write_lse, const float *acc, float m,
                      float l)
{
    const bool empty = row_empty(l);
    const float inv = row_inverse(l);
    for (int dv = 0; dv < DV; dv++)
        out[row * DV + dv] = empty ? 0.0f : acc[dv] * inv;
    if (write_lse)
        lse[row] = row_lse(m, l);
}

// The arguments of the `attention` kernel, the same in both variants (the host sets them in this
// order). The comments are block comments: a line comment would swallow the line continuation.
// K and the side keys are row-major for the GPU variant and panels of KC keys (made by
// pack_keys.cl) for the CPU variant. Laid out by hand, one argument per line.
// clang-format off
#define ATTENTION_ARGS                                                                             \
    __global const float *q,       /* [B, H, Nq, D] (pre-scale) */                                 \
    __global const float *k,       /* [B, Hkv, Nk, D], CPU: [B, Hkv, ceil(Nk/KC), D, KC] */        \
    __global const float *v,       /* [B, Hkv, Nk, DV] */                                          \
    __global const float *side_k,  /* [B, Hkv, NS, D], CPU: [B, Hkv, ceil(NS/KC), D, KC] */        \
    __global const float *side_v,  /* [B, Hkv, NS, DV] */                                          \
    __global const int *side_pos,  /* [B, NS] */                                                   \
    __global const int *seq_lens,  /* [B] */                                                       \
    __global const int *rows,      /* [num_rows] when use_rows */                                  \
    __global float *out,           /* [B, H, Nq, DV] */                                            \
    __global float *lse,           /* [B, H, Nq] when write_lse */                                 \
    int heads, int kv_heads, int nq, int nk, int num_rows, int use_rows, int left, int right,      \
    int dilation, int causal, int n_side, int n_global, int n_summary, int side_begin,             \
    int side_count, float qscale, int write_lse, int reverse_tiles,                                \
    int item_tiles /* tiles of this work-item: 1 to CLATTN_TILES (CPU), 1 (GPU: one per group) */
// clang-format on
