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
//   -DCLATTN_TILES=<1..16>   CPU variant: most tiles per work-item of `attention` (the launch
//                            passes how many), walked chunk by chunk so that they share each
//                            chunk's reads; each tile's state is private (about
//                            4 * ROWS * (DV + 17) bytes)
//   -DCLATTN_KC=<16,32,64>   CPU variant: keys per panel and per chunk of the key loop
//   -DCLATTN_KW=<8,16,32>    CPU variant: keys per score pass (32: two vectors per row, and two
//                            value column blocks per P.V pass); ROWS * KW / (native width)
//                            accumulators must fit the register file with room for 3 more
//   -DCLATTN_BM, BN, TM, TN  GPU variant: rows per work-group, keys per tile, each work-item's
//                            register block (attention_gpu.cl)
//   -DCLATTN_DTYPE=<0|1|2>   storage type of the caller's Q, K, V, O, Qg, Kg, Vg, Kx, Vx
//                            (clattn_dtype): 0 float32, 1 float16, 2 bfloat16. LSE and every
//                            scratch buffer of the plan (key panels, side keys, split partials)
//                            are float32 whatever it is. Every program sets it (host/plan.c).
//   -DCLATTN_CPU_DEVICE=<0|1> 1 when the device is a CPU (host/program.c sets it for every
//                            program): code that a CPU's OpenCL compiler runs wrong is left out
//                            there (attention_gpu.cl's skipped rescale, for POCL 3.1)

// The CPU variant's kernels are declared as CPU_VARIANT_KERNEL. A work-item computes in vectors
// of its own (rows by 16 keys, or 16 queries in the lanes), yet Intel's CPU compiler vectorized
// grid_pairs and grid_regions again across 16 work-items, which took most of its build time
// (grid_pairs at D = 256: 76 s) and ran them no faster (clattn bench on its runtime: within the
// runs' noise either way); the others it left one work-item a vector after trying (grid_cpu's
// program: 2.2 s to build, 1.0 s when told). So it is told: cl_intel_vec_len_hint.
#ifdef cl_intel_vec_len_hint
#define CPU_VARIANT_KERNEL __kernel __attribute__((intel_vec_len_hint(1)))
#else
#define CPU_VARIANT_KERNEL __kernel
#endif
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

#ifndef CLATTN_DTYPE
#define CLATTN_DTYPE 0
#endif
#ifndef CLATTN_CPU_DEVICE
#define CLATTN_CPU_DEVICE 0
#endif

#define D CLATTN_D
#define DV CLATTN_DV

#define CLATTN_CAT_(a, b) a##b
#define CLATTN_CAT(a, b) CLATTN_CAT_(a, b)

// Loads of float32 scratch: FLOAD_n(i, p) is vector i of n floats (n = 1: element i).
#define FLOAD_1(i, p) ((p)[(i)])
#define FLOAD_2 vload2
#define FLOAD_4 vload4
#define FLOAD_8 vload8
#define FLOAD_16 vload16

// The caller's tensors (SPEC.md, "Element types"): elem_t is their storage type. LOAD_n(i, p)
// reads vector i of n elements widened exactly to float(n); STORE_n(x, i, p) writes float(n) x
// rounded once to nearest even (float16 overflow gives inf, NaN stays NaN). Arithmetic is always
// float32. LOAD(n, ...) and STORE(n, ...) take the width as a macro (CLATTN_VW, QW, ...).
#if CLATTN_DTYPE == 0
typedef float elem_t;
#define LOAD_1 FLOAD_1
#define LOAD_2 vload2
#define LOAD_4 vload4
#define LOAD_8 vload8
#define LOAD_16 vload16
#define STORE_1(x, i, p) ((p)[(i)] = (x))
#define STORE_2 vstore2
#define STORE_4 vstore4
#define STORE_8 vstore8
#define STORE_16 vstore16
#elif CLATTN_DTYPE == 1
// float16 through the core vload_half and vstore_half_rte functions: no cl_khr_fp16 needed.
typedef half elem_t;
#define LOAD_1 vload_half
#define LOAD_2 vload_half2
#define LOAD_4 vload_half4
#define LOAD_8 vload_half8
#define LOAD_16 vload_half16
#define STORE_1 vstore_half_rte
#define STORE_2 vstore_half2_rte
#define STORE_4 vstore_half4_rte
#define STORE_8 vstore_half8_rte
#define STORE_16 vstore_half16_rte
#elif CLATTN_DTYPE == 2
// bfloat16: the upper 16 bits of a float32, kept as ushort. Widening is a shift; rounding adds
// 0x7fff plus the lowest kept bit (nearest even, a carry into the exponent rounds up to inf) and
// quiets a NaN instead, so that no NaN truncates to inf (host/dtype.c's clattn__float_to_bfloat16).
typedef ushort elem_t;
#define BF16_FUNCTIONS(n, vload, vstore)                                                                               \
    inline float##n bf16_load##n(size_t i, __global const ushort *p)                                                   \
    {                                                                                                                  \
        return as_float##n(convert_uint##n(vload(i, p)) << 16);                                                        \
    }                                                                                                                  \
    inline void bf16_store##n(float##n x, size_t i, __global ushort *p)                                                \
    {                                                                                                                  \
        const uint##n u = as_uint##n(x);                                                                               \
        const uint##n rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;                                                \
        const uint##n quiet = (u >> 16) | 0x40u; /* a NaN's upper half, quieted */                                     \
        vstore(convert_ushort##n(select(rounded, quiet, (u & 0x7fffffffu) > 0x7f800000u)), i, p);                      \
    }
#define BF16_SCALAR_LOAD(i, p) ((p)[(i)])
#define BF16_SCALAR_STORE(x, i, p) ((p)[(i)] = (x))
BF16_FUNCTIONS(, BF16_SCALAR_LOAD, BF16_SCALAR_STORE)
BF16_FUNCTIONS(2, vload2, vstore2)
BF16_FUNCTIONS(4, vload4, vstore4)
BF16_FUNCTIONS(8, vload8, vstore8)
BF16_FUNCTIONS(16, vload16, vstore16)
#define LOAD_1 bf16_load
#define LOAD_2 bf16_load2
#define LOAD_4 bf16_load4
#define LOAD_8 bf16_load8
#define LOAD_16 bf16_load16
#define STORE_1 bf16_store
#define STORE_2 bf16_store2
#define STORE_4 bf16_store4
#define STORE_8 bf16_store8
#define STORE_16 bf16_store16
#else
#error "CLATTN_DTYPE must be 0 (float32), 1 (float16) or 2 (bfloat16)"
#endif
#define LOAD(n, i, p) CLATTN_CAT(LOAD_, n)(i, p)
#define STORE(n, x, i, p) CLATTN_CAT(STORE_, n)(x, i, p)
#define FLOAD(n, i, p) CLATTN_CAT(FLOAD_, n)(i, p)

// Rows of keys or values that the same code reads from the caller's tensor (the band: storage
// type) or from the plan's float32 scratch (side keys, packed keys). With float32 storage both
// are one pointer type and src_t is that pointer: the code is what it was before storage types.
// Otherwise src_t holds one pointer of each type, one of them NULL; the kernels inline every
// function, so the choice folds away where a call site passes a constant kind.
#if CLATTN_DTYPE == 0
typedef __global const float *src_t;
#define SRC_CALLER(p) (p)
#define SRC_SCRATCH(p) (p)
#define SRC_AT(s, off) ((s) + (off))
#define SRC_LOAD(n, i, s) FLOAD(n, i, s)
#define SRC_FLOATS(s) (s)
#else
typedef struct {
    __global const elem_t *caller;
    __global const float *scratch;
} src_t;
inline src_t src_of(__global const elem_t *caller, __global const float *scratch)
{
    const src_t s = {caller, scratch};
    return s;
}
#define SRC_CALLER(p) src_of((p), 0)
#define SRC_SCRATCH(p) src_of(0, (p))
#define SRC_AT(s, off) ((s).scratch ? SRC_SCRATCH((s).scratch + (off)) : SRC_CALLER((s).caller + (off)))
#define SRC_LOAD(n, i, s) ((s).scratch ? FLOAD(n, i, (s).scratch) : LOAD(n, i, (s).caller))
#define SRC_FLOATS(s) ((s).scratch)
#endif

// vw_t: CLATTN_VW floats; vw_mask_t: a select's mask for them.
#if CLATTN_VW == 16
typedef float16 vw_t;
typedef int16 vw_mask_t;
#elif CLATTN_VW == 8
typedef float8 vw_t;
typedef int8 vw_mask_t;
#elif CLATTN_VW == 4
typedef float4 vw_t;
typedef int4 vw_mask_t;
#elif CLATTN_VW == 2
typedef float2 vw_t;
typedef int2 vw_mask_t;
#else
typedef float vw_t;
typedef int vw_mask_t;
#endif

// The GPU kernels' vectors over D (qv_t, QW floats) and DV (vv_t, VW floats): the widest of 4, 2
// and 1 dividing each. Those of the output (ov_t, OW floats) are VW's but for the attention kernel
// on tensor cores (CLATTN_MMA), whose accumulators hold pairs of output columns (OW 2); it stages
// V by VW all the same (float2 copies took twice the instructions, and with asynchronous copies 55
// more registers at D = 128, in clang's sm_90 build).
#if D % 4 == 0
#define QW 4
typedef float4 qv_t;
#elif D % 2 == 0
#define QW 2
typedef float2 qv_t;
#else
#define QW 1
typedef float qv_t;
#endif
#if DV % 4 == 0
#define VW 4
typedef float4 vv_t;
#elif DV % 2 == 0
#define VW 2
typedef float2 vv_t;
#else
#define VW 1
typedef float vv_t;
#endif
#if CLATTN_MMA
#define OW 2
typedef float2 ov_t;
#else
#define OW VW
typedef vv_t ov_t;
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
#define WD_SUM(x) lane_sum(x)
#elif CLATTN_WD == 8
typedef float8 wd_t;
#define WD_SUM(x) dot((x).lo + (x).hi, (float4)(1.0f))
#elif CLATTN_WD == 4
typedef float4 wd_t;
#define WD_SUM(x) dot((x), (float4)(1.0f))
#elif CLATTN_WD == 2
typedef float2 wd_t;
#define WD_SUM(v) ((v).x + (v).y)
#else
typedef float wd_t;
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

// a & b for lane masks of 0 and -1, as a select: Oclgrind (CI runs the kernels under it) made
// lanes of 1, not -1, of `&` between comparisons, which every select then read as false.
inline int16 mask_and(int16 a, int16 b)
{
    return select((int16)(0), a, b);
}

// band_visible's band rule for 16 distances at once (delta: key position minus query
// position): -1 in the lanes the band holds, 0 elsewhere. The sequence's end is the caller's.
inline int16 band_mask(int16 delta, band_rule rule)
{
    const int16 in = mask_and(delta >= (int16)(-rule.left), delta <= (int16)(rule.right));
    return rule.dilation == 1 ? in : mask_and(in, delta % rule.dilation == (int16)(0));
}

// Whether the band alone shows every key in [first, last] to every position in [pmin, pmax]: a
// run of keys that needs no mask, but for the sequence's end.
inline bool band_covers(band_rule rule, int pmin, int pmax, int first, int last)
{
    return rule.dilation == 1 && first >= pmax - rule.left && last <= pmin + rule.right;
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

inline void write_row(__global elem_t *out, __global float *lse, size_t row, int write_lse, const float *acc, float m,
                      float l)
{
    const bool empty = row_empty(l);
    const float inv = row_inverse(l);
    for (int dv = 0; dv < DV; dv++)
        STORE_1(empty ? 0.0f : acc[dv] * inv, row * DV + dv, out);
    if (write_lse)
        lse[row] = row_lse(m, l);
}

// The arguments of the `attention` kernel, the same in both variants (the host sets them in this
// order). The comments are block comments: a line comment would swallow the line continuation.
// K and the side keys are row-major for the GPU variant and panels of KC keys (made by
// pack_keys.cl) for the CPU variant: key_t is K's element type, the caller's elem_t for the GPU
// and the panels' float for the CPU. Q, V and O are the caller's (elem_t), side keys and values
// float32 scratch. Laid out by hand, one argument per line.
// clang-format off
#define ATTENTION_ARGS(key_t)                                                                      \
    __global const elem_t *q,      /* [B, H, Nq, D] (pre-scale) */                                 \
    __global const key_t *k,       /* [B, Hkv, Nk, D], CPU: [B, Hkv, ceil(Nk/KC), D, KC] */        \
    __global const elem_t *v,      /* [B, Hkv, Nk, DV] */                                          \
    __global const float *side_k,  /* [B, Hkv, NS, D], CPU: [B, Hkv, ceil(NS/KC), D, KC] */        \
    __global const float *side_v,  /* [B, Hkv, NS, DV] */                                          \
    __global const int *side_pos,  /* [B, NS] */                                                   \
    __global const int *seq_lens,  /* [B] */                                                       \
    __global const int *rows,      /* [num_rows] when use_rows */                                  \
    __global elem_t *out,          /* [B, H, Nq, DV] */                                            \
    __global float *lse,           /* [B, H, Nq] when write_lse */                                 \
    int heads, int kv_heads, int nq, int nk, int num_rows, int use_rows, int left, int right,      \
    int dilation, int causal, int n_side, int n_global, int n_summary, int side_begin,             \
    int side_count, float qscale, int write_lse, int reverse_tiles,                                \
    int item_tiles /* tiles of this work-item: 1 to CLATTN_TILES (CPU), 1 (GPU: one per group) */
// clang-format on
