// The CPU variant of `attention`, compiled after common.cl (decode.cl, which reuses its chunk
// walk, follows it in the CPU program): register-blocked and barrier-free.
//
// A work-item of `attention` owns up to CLATTN_TILES tiles of CLATTN_ROWS query rows and walks
// their key chunks alone (no barriers, no __local: on a CPU, work-items of a group run one after
// another), each chunk for all of its tiles in turn. Keys come as panels of KC ([chunk][D][KC],
// made by pack_keys.cl) so that the QK^T step does contiguous loads, and a chunk of the key loop
// is one panel. (Decode's attention_split is in decode.cl.)
#define KC CLATTN_KC
// Vector i of a private array, as one full-width load or store: POCL compiles vload and vstore
// on private memory to 16-byte pieces. Such arrays are declared 64-byte aligned and sized in
// whole vectors.
#define PRIV(type, p, i) (((type *)(p))[i])
// 16 elements x to p in the caller's storage: float32 as one unaligned vector store, where POCL
// compiles vstore16 to four 16-byte stores (after a transpose, from a copy in private memory).
#if CLATTN_DTYPE == 0
typedef float16 float16_unaligned __attribute__((aligned(4)));
#define STORE_ROW16(x, p) (*(__global float16_unaligned *)(p) = (x))
#else
#define STORE_ROW16(x, p) STORE_16(x, 0, p)
#endif

// Whether this is a CPU's own compiler (POCL's clang for the host), which takes clang's
// builtins on __global pointers; SPIR compilers (Intel's CPU runtime, Oclgrind) and GPU targets
// do not.
#if defined(__clang__) && !defined(__SPIR__) &&                                                                        \
    (defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__) || defined(__riscv) ||       \
     defined(__powerpc64__))
#define CPU_COMPILER 1
#else
#define CPU_COMPILER 0
#endif

// 16 float32 elements x of an output row to p, where nothing in the launch reads them again:
// with a CPU's compiler, a non-temporal store where p is 64-byte aligned (every row where DV is a
// multiple of 16), so that the line is neither read before it is written nor kept in the caches
// in place of K and V. The 2-D kernels, which write O a row per query after a few dozen keys:
// on a Zen 3 (POCL, one thread, 64 x 64, H = 8, D = 64, ten interleaved rounds) the neighborhood
// 7 x 7 went from 11.2-11.5 ms to 10.9-11.3, Swin 8 / 4 (without its O rows hinted) from 9.3-9.7
// to 8.9-9.4. Non-temporal stores are weakly ordered: a work-item that made them ends with
// stream_fence(). Elsewhere, and for 16-bit storage, STORE_ROW16 and no fence.
#if CLATTN_DTYPE == 0 && CPU_COMPILER && defined(__has_builtin)
#if __has_builtin(__builtin_nontemporal_store)
#define STREAMS_ROWS 1
#endif
#endif
#ifndef STREAMS_ROWS
#define STREAMS_ROWS 0
#endif
#if STREAMS_ROWS
inline void stream_row16(float16 x, __global float *p)
{
    if (((size_t)p & 63) == 0)
        __builtin_nontemporal_store(x, (__global float16 *)p);
    else
        STORE_ROW16(x, p);
}
#define STREAM_ROW16(x, p) stream_row16((x), (p))
#if defined(__x86_64__) || defined(__i386__)
#define stream_fence() __builtin_ia32_sfence()
#else
#define stream_fence() mem_fence(CLK_GLOBAL_MEM_FENCE)
#endif
#else
#define STREAM_ROW16(x, p) STORE_ROW16(x, p)
#define stream_fence()
#endif
#define NV (KC / 16) // float16 vectors per row of a chunk
#define R CLATTN_ROWS
#define TILES CLATTN_TILES
#if R > 16
#error "CLATTN_ROWS > 16: the rows' rescale factors are one float16"
#endif
#if TILES < 1 || TILES > 32
#error "CLATTN_TILES must be 1 to 32"
#endif

// A score pass computes CLATTN_KW keys of R rows: KV vectors of KVW keys per row. With KW = 32 a
// pass keeps 2R accumulators (and P.V two column blocks of R): on a core with two FMA pipes of 4
// cycles' latency, 8 rows of one vector leave the pipes waiting and the loads of Q's broadcasts
// outnumber the FMAs' slots; two vectors per row halve the loads per FMA.
#if CLATTN_KW == 32
typedef float16 kw_t;
#define VLOAD_K vload16
#define KV 2
#elif CLATTN_KW == 16
typedef float16 kw_t;
#define VLOAD_K vload16
#define KV 1
#else
typedef float8 kw_t;
#define VLOAD_K vload8
#define KV 1
#endif
#define KVW (CLATTN_KW / KV) // keys per score vector
// P.V's register block: PV_ROWS rows by VB column vectors per pass over a chunk's keys. Where the
// scores' R x KV accumulators number 16 to 24 and a row of the accumulator is 4 vectors (DV = 64
// at 16 lanes), P.V holds as many, rearranged as R * KV / 4 rows by 4 columns: a value vector,
// loaded once per key, feeds more rows, and a weight is read once per key rather than once per
// pass of KV columns (Xeon, POCL, 12 rows x 32 keys: dense D = 64 2-3% less time, causal 1.4%,
// window ±256 0.7%; Intel's runtime, 10 rows, the same). At DV = 128 (two passes of 4 columns)
// POCL took the same time and Intel's runtime 1.36x. Other tiles keep R rows by KV columns. (KV
// is 1 or 2, so R * KV / 4 rows divide the tile's R.)
#if DV == 4 * CLATTN_VW && R * KV >= 16 && R * KV <= 24 && (R * KV) % 4 == 0
#define VB 4
#define PV_ROWS (R * KV / 4)
#define PV_UNROLL 2 // keys per step of the P.V loop (4 lost the gain)
#else
#define VB KV
#define PV_ROWS R
#define PV_UNROLL 4
#endif

typedef struct {
    float m[R];       // running max of each row's scores (log2 domain)
    float16 lsum[R];  // running sum of exp2(score - m), kept per lane: reduced once at the end
    float acc[R][DV]; // running sum of the weighted values (64-byte aligned: after lsum)
} row_state;

// 2^x for the softmax's x <= 0 (a score minus its row's max): 2^n * p(f) with n = x rounded and a
// degree-5 polynomial p on f = x - n in [-0.5, 0.5] (relative error 2.2e-7, fitted for this
// kernel). Masked keys (-inf) get exactly 0 and NaN stays NaN. Fewer instructions than the library
// exp2, which must also handle x > 0.
inline float16 exp2_poly(float16 f)
{
    float16 p = (float16)(1.326697039e-3f);
    p = fma(p, f, (float16)(9.675459746e-3f));
    p = fma(p, f, (float16)(5.550742616e-2f));
    p = fma(p, f, (float16)(2.402212175e-1f));
    p = fma(p, f, (float16)(6.931469492e-1f));
    return fma(p, f, (float16)(1.000000071e+0f));
}

#if defined(__AVX512F__) && !defined(__SPIR__)
// AVX-512 (POCL's x86 targets): 8 or 9 vector instructions where the portable code takes 15, so
// the softmax takes fewer of the two ports the FMAs use. vrndscaleps rounds to nearest and
// vscalefps multiplies by 2^n, denormal results included; NaN stays NaN throughout. Equal, bit for
// bit, to the portable code for x >= -126.
#if defined(__AVX512DQ__)
// vreduceps gives f = x - n in one instruction, and 0 for x = -inf (where x - n is NaN), whose
// n = -inf then scales to exactly 0: no clamp. (1.5% less time on dense and window attention, Xeon.)
inline float16 exp2_nonpositive(float16 x)
{
    const float16 n = __builtin_ia32_rndscaleps_mask(x, 8, x, (ushort)0xffff, 4);
    const float16 f = __builtin_ia32_reduceps512_mask(x, 8, x, (ushort)0xffff, 4);
    return __builtin_ia32_scalefps512_mask(exp2_poly(f), n, f, (ushort)0xffff, 4);
}
#else
// vmaxps returns its second operand when either is NaN, so NaN passes the clamp; -inf becomes
// -FLT_MAX, whose scale underflows to exactly 0.
inline float16 exp2_nonpositive(float16 x)
{
    const float16 xc = __builtin_ia32_maxps512((float16)(-0x1.fffffep127f), x, 4);
    const float16 n = __builtin_ia32_rndscaleps_mask(xc, 8, xc, (ushort)0xffff, 4);
    const float16 p = exp2_poly(xc - n);
    return __builtin_ia32_scalefps512_mask(p, n, p, (ushort)0xffff, 4);
}
#endif
#elif defined(__AVX2__) && !defined(__SPIR__)
// AVX2 (POCL's x86 targets without AVX-512), per 8-float half: vroundps rounds to nearest and
// vcvtps2dq converts the integer exactly; the clamp at -127 makes the scale's exponent field 0, so
// -inf and anything below -126.5 give exactly 0. vmaxps returns its second operand when either is
// NaN, so NaN passes. 12 instructions a half where the portable code below took 20 and, with its
// extra constants, reloaded the polynomial's from the stack (a Zen 3). Equal, bit for bit, to the
// portable code for x >= -126.
inline float16 exp2_nonpositive(float16 x)
{
    const float16 xc =
        (float16)(__builtin_ia32_maxps256((float8)(-127.0f), x.lo), __builtin_ia32_maxps256((float8)(-127.0f), x.hi));
    const float16 n = (float16)(__builtin_ia32_roundps256(xc.lo, 8), __builtin_ia32_roundps256(xc.hi, 8));
    const int16 e = (int16)(__builtin_ia32_cvtps2dq256(n.lo), __builtin_ia32_cvtps2dq256(n.hi));
    return exp2_poly(xc - n) * as_float16((e + 127) << 23);
}
#else
// Exactly 0 below -126. The exponent is built in the integer unit, and x is rounded by adding
// 1.5 * 2^23: the integer lands in the low mantissa bits (POCL emulates rint() and
// convert_int_rte() in a dozen instructions each).
inline float16 exp2_nonpositive(float16 x)
{
    const int16 tiny = isless(x, (float16)(-126.0f));
    const float16 xc = select(x, (float16)(-126.0f), tiny);
    const float16 t = xc + 0x1.8p23f;
    const float16 f = xc - (t - 0x1.8p23f);
    const int16 n = as_int16(t) - 0x4B400000;
    const float16 scale = as_float16((n + 127) << 23);
    return select(exp2_poly(f) * scale, (float16)(0.0f), tiny);
}
#endif

// The part of a chunk that is computed: the 16-key groups [g_lo, g_hi) that meet the tile's
// band, of which only keys below nvalid exist (the rest lie past the end of K). `edge`: some
// computed key is masked for some row, so the chunk needs its mask.
typedef struct {
    int g_lo, g_hi, nvalid;
    bool edge;
} chunk_span;

// The span of the chunk starting at key `first` that keys [lo, hi] meet (they meet it somewhere),
// with `remaining` keys stored from `first` on.
inline chunk_span make_span(int first, int lo, int hi, int remaining, bool edge)
{
    const chunk_span span = {max(0, lo - first) / 16, min(KC - 1, hi - first) / 16 + 1, min(KC, remaining), edge};
    return span;
}

// The query rows of a tile: their positions, Q offsets and the span of their positions, and,
// for the panel path, the rows themselves (load_rows).
typedef struct {
    // The rows copied (16-bit storage: widened) once per tile into one private block, so that
    // every broadcast of the score loop addresses it from one base register at a constant
    // offset: read through the rows' own offsets, R rows need R address registers, and at 16
    // rows Intel's runtime reloaded them from the stack inside the loop. (A conversion per
    // broadcast made dense f16 2.7x slower than f32.)
    float qf[R][D] __attribute__((aligned(64)));
    int pos[R];
    size_t qoff[R];
    int pmin, pmax;
} tile_rows;

inline void load_rows(tile_rows *t, __global const elem_t *q)
{
    for (int r = 0; r < R; r++) {
        int d = 0;
        if (D % 16 == 0) // whole vectors (each row stays 64-byte aligned)
            for (; d < D; d += 16)
                PRIV(float16, t->qf[r], d / 16) = LOAD_16(0, q + t->qoff[r] + d);
        for (; d < D; d++)
            t->qf[r][d] = LOAD_1(t->qoff[r] + d, q);
    }
}

// Scores of R rows against the span's keys, computed CLATTN_KW keys at a time so that the R * KV
// accumulators, the key vectors and one broadcast fit the register file. A pass may start before
// the span or end after it (KW = 32 steps by 32 keys): the panel holds the whole chunk, and the
// softmax reads only the span.
inline void chunk_scores(float sc[R][KC], const tile_rows *t, __global const float *panel, chunk_span span,
                         float qscale)
{
    const int per_group = 16 / KVW; // score vectors per 16-key group
    for (int h = span.g_lo * per_group / KV; h < (span.g_hi * per_group + KV - 1) / KV; h++) {
        kw_t s[R][KV];
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int k = 0; k < KV; k++)
                s[r][k] = (kw_t)(0.0f);
#pragma unroll 4
        for (int d = 0; d < D; d++) {
            kw_t kv[KV];
#pragma unroll
            for (int k = 0; k < KV; k++)
                kv[k] = VLOAD_K(h * KV + k, panel + d * KC);
#pragma unroll
            for (int r = 0; r < R; r++) {
                const kw_t qb = (kw_t)(t->qf[r][d]);
#pragma unroll
                for (int k = 0; k < KV; k++)
                    s[r][k] = fma(qb, kv[k], s[r][k]);
            }
        }
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int k = 0; k < KV; k++)
                PRIV(kw_t, sc[r], h * KV + k) = s[r][k] * qscale;
    }
}

// Online softmax of one chunk: turns the span's scores into weights in place and returns, per
// row, the factor by which the running accumulator must be rescaled (1 when the row max did not
// grow). The rows' maxima come first, so that one vector exp2 gives every row's factor.
inline void chunk_softmax(row_state *st, float sc[R][KC], float *alpha, chunk_span span, const int16 ok[R][NV])
{
    float mnew[16], shift[16] __attribute__((aligned(64)));
    for (int r = 0; r < R; r++) {
        float16 h16 = (float16)(-INFINITY);
#pragma unroll
        for (int v = 0; v < NV; v++) {
            if (v < span.g_lo || v >= span.g_hi)
                continue;
            float16 sr = PRIV(float16, sc[r], v);
            if (span.edge) {
                sr = select((float16)(-INFINITY), sr, ok[r][v]);
                PRIV(float16, sc[r], v) = sr;
            }
            // max, not fmax: a NaN score reaches the output either way (through exp2, or the
            // sum when the row has nothing else), and max skips fmax's NaN tests.
            h16 = max(h16, sr);
        }
        const float8 h8 = max(h16.lo, h16.hi);
        const float4 h4 = max(h8.lo, h8.hi);
        const float2 h2 = max(h4.lo, h4.hi);
        mnew[r] = max(st->m[r], max(h2.x, h2.y));
        // A row with nothing visible yet keeps m = -inf and a factor of 1 (its sums are 0).
        shift[r] = mnew[r] == -INFINITY ? 0.0f : st->m[r] - mnew[r];
    }
    for (int r = R; r < 16; r++)
        shift[r] = 0.0f;
    const float16 x = PRIV(float16, shift, 0);
    PRIV(float16, alpha, 0) = select(exp2_nonpositive(x), (float16)(1.0f), x == 0.0f); // exactly 1
    for (int r = 0; r < R; r++) {
        st->m[r] = mnew[r];
        float16 lsum = st->lsum[r] * alpha[r];
        if (mnew[r] == -INFINITY) {
            // No finite logit in this row yet: every weight is 0, and the sum keeps what the
            // visible keys had (write_row): NaN for a NaN logit (max skipped it), -0 when all
            // were -inf. A rare branch: with finite inputs, a row of the tile not yet in its band.
            int16 seen = (int16)(span.edge ? 0 : -1), nan = (int16)(0);
#pragma unroll
            for (int v = 0; v < NV; v++) {
                if (v >= span.g_lo && v < span.g_hi) {
                    nan |= isnan(PRIV(float16, sc[r], v)); // masked keys are -inf by now
                    if (span.edge)
                        seen |= ok[r][v];
                }
                PRIV(float16, sc[r], v) = (float16)(0.0f);
            }
            if (any(nan))
                st->lsum[r] = (float16)(NAN);
            else if (any(seen))
                st->lsum[r] = copysign(lsum, (float16)(-1.0f));
            continue;
        }
#pragma unroll
        for (int v = 0; v < NV; v++) {
            if (v < span.g_lo || v >= span.g_hi)
                continue;
            const float16 e = exp2_nonpositive(PRIV(float16, sc[r], v) - mnew[r]);
            lsum += e;
            PRIV(float16, sc[r], v) = e;
        }
        st->lsum[r] = lsum;
    }
}

// For each key of an edge chunk's span, how many of the R rows see it: 0 (the key is skipped), R
// (no row needs a test) or in between (each row is tested). The mask, not the weight, decides:
// a visible key whose weight is 0 (a -inf logit, or one that underflows) still multiplies its
// value, as the reference does, so that 0 * NaN and 0 * inf give NaN.
inline void count_visible_rows(int visible[KC], const int16 ok[R][NV], chunk_span span)
{
    for (int v = span.g_lo; v < span.g_hi; v++) {
        int16 n = (int16)(0);
#pragma unroll
        for (int r = 0; r < R; r++)
            n -= ok[r][v]; // -1 where visible
        PRIV(int16, visible, v) = n;
    }
}

// a[r][b] += p[r0 + r][t] * vv[b] for each of the block's rows, or, `masked`, for the rows whose
// mask ok[r0 + r] holds key t: the others keep their sums through a select (on AVX-512 a masked
// multiply-add), not a branch per row, whose outcome changes from key to key along a band's edges.
// (A select on every key of an edge chunk, those every row sees included, took 1.3x the time of
// this.)
inline __attribute__((always_inline)) void add_value_row(vw_t a[PV_ROWS][VB], float p[R][KC], int r0, int t,
                                                         const vw_t vv[VB], int nb, const int16 ok[R][NV],
                                                         const bool masked)
{
#pragma unroll
    for (int r = 0; r < PV_ROWS; r++) {
        const vw_t pb = (vw_t)(p[r0 + r][t]);
        const vw_mask_t m = (vw_mask_t)(masked ? PRIV(const int, ok[r0 + r], t) : -1);
#pragma unroll
        for (int b = 0; b < VB; b++)
            if (b < nb)
                a[r][b] = masked ? select(a[r][b], fma(pb, vv[b], a[r][b]), m) : fma(pb, vv[b], a[r][b]);
    }
}

// Rows [r0, r0 + PV_ROWS) and columns [c * VW, (c + nb) * VW) of acc = alpha * acc + P.V (nb <=
// VB), the weights p of the chunk's keys; an edge chunk skips the keys no row sees (visible,
// count_visible_rows). Always inlined: POCL called it, nb an argument tested inside the key loop,
// which cost the 4-column block its gain.
inline __attribute__((always_inline)) void column_blocks(row_state *st, float p[R][KC], const float *alpha, src_t vals,
                                                         chunk_span span, const int16 ok[R][NV], const int visible[KC],
                                                         int t_end, int r0, int c, int nb)
{
    vw_t a[PV_ROWS][VB];
#pragma unroll
    for (int r = 0; r < PV_ROWS; r++)
#pragma unroll
        for (int b = 0; b < VB; b++)
            if (b < nb)
                a[r][b] = PRIV(vw_t, st->acc[r0 + r], c + b) * alpha[r0 + r];
    if (!span.edge) {
#pragma unroll PV_UNROLL
        for (int t = 0; t < KC; t++) {
            const src_t row = SRC_AT(vals, (size_t)t * DV);
            vw_t vv[VB];
#pragma unroll
            for (int b = 0; b < VB; b++)
                if (b < nb)
                    vv[b] = SRC_LOAD(CLATTN_VW, c + b, row);
            add_value_row(a, p, r0, t, vv, nb, ok, false);
        }
    } else {
        for (int t = 16 * span.g_lo; t < t_end; t++) {
            if (visible[t] == 0)
                continue;
            const src_t row = SRC_AT(vals, (size_t)t * DV);
            vw_t vv[VB];
#pragma unroll
            for (int b = 0; b < VB; b++)
                if (b < nb)
                    vv[b] = SRC_LOAD(CLATTN_VW, c + b, row);
            if (visible[t] == R)
                add_value_row(a, p, r0, t, vv, nb, ok, false);
            else
                add_value_row(a, p, r0, t, vv, nb, ok, true);
        }
    }
#pragma unroll
    for (int r = 0; r < PV_ROWS; r++)
#pragma unroll
        for (int b = 0; b < VB; b++)
            if (b < nb)
                PRIV(vw_t, st->acc[r0 + r], c + b) = a[r][b];
}

// acc = alpha * acc + P.V, PV_ROWS rows by VB CLATTN_VW-wide column blocks of the accumulator at a
// time so that the partial rows stay in registers across the chunk's keys (blocks left over, one
// at a time). Edge chunks skip masked keys (`ok`): NaN or inf planted in a masked value never
// reaches the output.
inline void chunk_values(row_state *st, float p[R][KC], const float *alpha, src_t vals, chunk_span span,
                         const int16 ok[R][NV])
{
    int visible[KC] __attribute__((aligned(64)));
    if (span.edge)
        count_visible_rows(visible, ok, span);
    const int t_end = min(span.nvalid, 16 * span.g_hi);
    const int blocks = DV / CLATTN_VW;
    for (int r0 = 0; r0 < R; r0 += PV_ROWS) {
        int c = 0;
        for (; c + VB <= blocks; c += VB)
            column_blocks(st, p, alpha, vals, span, ok, visible, t_end, r0, c, VB);
        for (; c < blocks; c++)
            column_blocks(st, p, alpha, vals, span, ok, visible, t_end, r0, c, 1);
    }
}

// A hint that *p will be read soon, into the outer caches (x86: prefetcht2; prefetcht0 measured
// slower, its lines crowding the L1). SPIR compilers (Intel's CPU runtime, Oclgrind) have no
// such intrinsic and take OpenCL's prefetch() of the 64-byte line instead: on Intel's runtime it
// took decode (Nk = 32768, H = 32, Hkv = 8, D = 128) from 16.4 to 10.0 ms, POCL's time. A
// prefetch never faults, so it may point past the end of a buffer. Callers step by 16 floats, a
// 64-byte line: a row whose length is not a multiple of 16 may leave its last line to the
// hardware. The intrinsic takes a flat pointer, which only a CPU's compiler (POCL's,
// CPU_COMPILER above) accepts from __global: a GPU that runs this variant (forced, in the tests)
// takes prefetch() too.
#if CPU_COMPILER
#define PREFETCH(p) __builtin_prefetch((p), 0, 1)
#else
#define PREFETCH(p) prefetch((const __global uchar *)(p), 64)
#endif
#if CLATTN_DTYPE == 0
#define SRC_PREFETCH(s, off) PREFETCH((s) + (off))
#else
#define SRC_PREFETCH(s, off)                                                                                           \
    if ((s).scratch)                                                                                                   \
        PREFETCH((s).scratch + (off));                                                                                 \
    else                                                                                                               \
        PREFETCH((s).caller + (off))
#endif
// Keys ahead of the current one whose K row the decode path prefetches (16, 32 and 64 measured
// alike on a Zen 4 through POCL).
#define PREFETCH_KEYS 16

// Scores of R rows against the span's keys stored row-major ([key][D]), CLATTN_WD dimensions
// at a time: the decode path, which reads each key once and so would not repay packing panels.
// Keys past nvalid are not read (their chunk is an edge chunk: masked). It streams K and V from
// memory, so it prefetches: K PREFETCH_KEYS keys ahead and V for the chunk's P.V pass, which
// (decode, Nk = 32768, Zen 4) took it from about 0.57 to 0.82 of a plain read of the same
// buffers; neither alone gave more than 0.70.
inline void chunk_scores_rows(float sc[R][KC], __global const elem_t *q, const size_t *qoff, src_t keys, src_t vals,
                              chunk_span span, float qscale)
{
    for (int u = 16 * span.g_lo; u < 16 * span.g_hi; u++) {
        wd_t s[R];
#pragma unroll
        for (int r = 0; r < R; r++)
            s[r] = (wd_t)(0.0f);
        if (u < span.nvalid) {
            for (int l = 0; l < D; l += 16)
                SRC_PREFETCH(keys, (size_t)(u + PREFETCH_KEYS) * D + l);
            for (int l = 0; l < DV; l += 16)
                SRC_PREFETCH(vals, (size_t)u * DV + l);
            const src_t key = SRC_AT(keys, (size_t)u * D);
            for (int c = 0; c < D / CLATTN_WD; c++) {
                const wd_t kv = SRC_LOAD(CLATTN_WD, c, key);
#pragma unroll
                for (int r = 0; r < R; r++)
                    s[r] = fma(LOAD(CLATTN_WD, c, q + qoff[r]), kv, s[r]);
            }
        }
#pragma unroll
        for (int r = 0; r < R; r++)
            sc[r][u] = WD_SUM(s[r]) * qscale;
    }
}

// One chunk: scores of its span, mask (edge chunks only), online softmax, P.V.
// Keys are panels (float32 scratch) or, row_major, rows of the caller's K or of the side keys.
inline void process_chunk(row_state *st, __global const elem_t *q, const tile_rows *t, src_t keys, bool row_major,
                          src_t vals, chunk_span span, float qscale, const int16 ok[R][NV])
{
    float sc[R][KC] __attribute__((aligned(64)));
    float alpha[16] __attribute__((aligned(64))); // R <= 16 rows' factors, as one vector
    if (row_major)
        chunk_scores_rows(sc, q, t->qoff, keys, vals, span, qscale);
    else
        chunk_scores(sc, t, SRC_FLOATS(keys), span, qscale);
    chunk_softmax(st, sc, alpha, span, ok);
    chunk_values(st, sc, alpha, vals, span, ok);
}

inline void span_rows(tile_rows *t)
{
    t->pmin = INT_MAX;
    t->pmax = INT_MIN;
    for (int r = 0; r < R; r++) {
        t->pmin = min(t->pmin, t->pos[r]);
        t->pmax = max(t->pmax, t->pos[r]);
    }
}

inline void init_state(row_state *st)
{
    for (int r = 0; r < R; r++) {
        st->m[r] = -INFINITY;
        st->lsum[r] = (float16)(0.0f);
        for (int dv = 0; dv < DV; dv++)
            st->acc[r][dv] = 0.0f;
    }
}

// An inclusive range [lo, hi] of keys or of chunks: empty when lo > hi.
typedef struct {
    int lo, hi;
} index_range;

// The keys in [j_lo, j_hi] that meet the tile's band and [0, kv_len).
inline index_range band_keys(const tile_rows *t, band_rule rule, int kv_len, int j_lo, int j_hi)
{
    const index_range kr = {max(j_lo, max(0, t->pmin - rule.left)), min(j_hi, min(kv_len - 1, t->pmax + rule.right))};
    return kr;
}

// The chunks (of KC keys) that keys `kr` meet, as a range of chunk indices: empty when kr is.
inline index_range chunks_of(index_range kr)
{
    const index_range chunks = {kr.lo / KC, kr.lo <= kr.hi ? kr.hi / KC : -1};
    return chunks;
}

// Chunk c (keys [c * KC, c * KC + KC)) of the tile's band keys `kr`, which it meets. Keys are
// panels ([chunk][D][KC], float32) or, row_major, the caller's [Nk][D].
inline void band_chunk(row_state *st, const tile_rows *t, __global const elem_t *q, src_t keys, bool row_major,
                       __global const elem_t *v, size_t bhk, int nk, int kv_len, band_rule rule, index_range kr, int c,
                       float qscale)
{
    const int16 iota = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int16 ok[R][NV];
    const int j0 = c * KC;
    // Only the 16-key groups that meet [kr.lo, kr.hi] are computed: a narrow band's edge chunks
    // would otherwise spend most of their time on keys the mask drops.
    const chunk_span span =
        make_span(j0, kr.lo, kr.hi, nk - j0, !band_covers(rule, t->pmin, t->pmax, j0, j0 + KC - 1) || j0 + KC > kv_len);
    if (span.edge)
        for (int r = 0; r < R; r++)
            for (int w = span.g_lo; w < span.g_hi; w++) {
                const int16 j = j0 + 16 * w + iota;
                ok[r][w] = mask_and(j < (int16)(kv_len), band_mask(j - t->pos[r], rule));
            }
    const src_t k =
        row_major ? SRC_AT(keys, (bhk * nk + j0) * D) : SRC_AT(keys, (bhk * ((nk + KC - 1) / KC) + c) * (D * KC));
    process_chunk(st, q, t, k, row_major, SRC_CALLER(v + (bhk * nk + j0) * DV), span, qscale, ok);
}

// The tile's band keys within [j_lo, j_hi] (j_lo a multiple of KC), chunk by chunk (decode: one
// tile per work-item).
inline void walk_band(row_state *st, const tile_rows *t, __global const elem_t *q, src_t keys, bool row_major,
                      __global const elem_t *v, size_t bhk, int nk, int kv_len, band_rule rule, int j_lo, int j_hi,
                      float qscale)
{
    const index_range kr = band_keys(t, rule, kv_len, j_lo, j_hi);
    const index_range chunks = chunks_of(kr);
    for (int c = chunks.lo; c <= chunks.hi; c++)
        band_chunk(st, t, q, keys, row_major, v, bhk, nk, kv_len, rule, kr, c, qscale);
}

// Side keys [side_begin, side_begin + side_count): always edge chunks, since each key has its
// own rule (side_visible).
inline void walk_side(row_state *st, const tile_rows *t, __global const elem_t *q, __global const float *side_keys,
                      bool row_major, __global const float *side_v, __global const int *side_pos, int b, size_t bhk,
                      int n_side, int n_global, int n_summary, int kv_len, band_rule rule, int side_begin,
                      int side_count, float qscale)
{
    const int side_end = side_begin + side_count;
    int16 ok[R][NV];
    for (int c = side_begin / KC; side_count > 0 && c <= (side_end - 1) / KC; c++) {
        const int first = c * KC;
        const chunk_span span = make_span(first, side_begin, side_end - 1, n_side - first, true);
        // The mask of the span's keys only: one side_pos read per key, each row's rule.
        int okv[R][KC] __attribute__((aligned(64)));
        for (int u = 16 * span.g_lo; u < 16 * span.g_hi; u++) {
            const int s = first + u;
            const bool listed = s >= side_begin && s < side_end;
            const int spos = listed ? side_pos[(size_t)b * n_side + s] : -1;
            for (int r = 0; r < R; r++)
                okv[r][u] = listed && side_visible(rule, t->pos[r], s, spos, n_global, n_summary, kv_len) ? -1 : 0;
        }
        for (int r = 0; r < R; r++)
            for (int w = span.g_lo; w < span.g_hi; w++)
                ok[r][w] = PRIV(int16, okv[r], w);
        __global const float *k = row_major ? side_keys + (bhk * n_side + first) * D
                                            : side_keys + (bhk * ((n_side + KC - 1) / KC) + c) * (D * KC);
        process_chunk(st, q, t, SRC_SCRATCH(k), row_major, SRC_SCRATCH(side_v + (bhk * n_side + first) * DV), span,
                      qscale, ok);
    }
}

// The query rows of the next work-item (the item_tiles tiles after this item's: POCL's threads
// take items in runs of consecutive indices), hinted into the cache HINTS_PER_CHUNK lines per
// chunk of this item: read all at once by that item's load_rows, they kept it waiting, the more
// so the fewer chunks an item has (window ±64, N = 8192: 6% less time with Q in the cache, 3-4%
// with these hints; dense the same).
typedef struct {
    int first_tile, lines, at; // lines: LINES_PER_ROW per row of the next item; at: the next to hint
} next_rows;

#define LINES_PER_ROW ((D * (int)sizeof(elem_t) + 63) / 64)
#define HINTS_PER_CHUNK 16

inline next_rows next_item_rows(int first, int item_tiles, int ntiles, int num_rows)
{
    const int next = first + item_tiles, tiles = clamp(ntiles - next, 0, item_tiles);
    const next_rows h = {next, max(0, min(tiles * R, num_rows - next * R)) * LINES_PER_ROW, 0};
    return h;
}

inline void hint_next_rows(next_rows *h, __global const elem_t *q, __global const int *rows, int use_rows,
                           int reverse_tiles, int ntiles, size_t bh, int nq)
{
    for (int n = 0; n < HINTS_PER_CHUNK && h->at < h->lines; n++, h->at++) {
        const int k = h->at / LINES_PER_ROW, tile = h->first_tile + k / R;
        const int slot = (reverse_tiles ? ntiles - 1 - tile : tile) * R + k % R;
        PREFETCH(q + (bh * nq + tile_row(rows, use_rows, slot)) * D + h->at % LINES_PER_ROW * (64 / sizeof(elem_t)));
    }
}

CPU_VARIANT_KERNEL void attention(ATTENTION_ARGS(float))
{
    const int ntiles = (num_rows + R - 1) / R;
    const int first = (int)get_global_id(0) * item_tiles;
    const int count = min(item_tiles, ntiles - first);
    if (count <= 0)
        return;
    const int bh = get_global_id(1);
    const int b = bh / heads;
    const size_t bhk = kv_head_of(bh, heads, kv_heads);
    const int kv_len = seq_lens[b];
    const band_rule rule = {left, right, dilation, causal};

    int tile_index[TILES];
    tile_rows t[TILES];
    row_state st[TILES];
    index_range kr[TILES], chunks[TILES];
    int c_lo = INT_MAX, c_hi = INT_MIN; // the chunks that any of the tiles meets
    for (int x = 0; x < count; x++) {
        tile_index[x] = reverse_tiles ? ntiles - 1 - (first + x) : first + x;
        for (int r = 0; r < R; r++) {
            // a short last tile repeats a row
            const int slot = min(tile_index[x] * R + r, num_rows - 1);
            const int i = tile_row(rows, use_rows, slot);
            t[x].pos[r] = i + nk - nq;
            t[x].qoff[r] = ((size_t)bh * nq + i) * D;
        }
        span_rows(&t[x]);
        load_rows(&t[x], q);
        init_state(&st[x]);
        kr[x] = band_keys(&t[x], rule, kv_len, 0, nk - 1);
        chunks[x] = chunks_of(kr[x]);
        if (chunks[x].lo <= chunks[x].hi) {
            c_lo = min(c_lo, chunks[x].lo);
            c_hi = max(c_hi, chunks[x].hi);
        }
    }
    // Chunk by chunk over the item's tiles, so that each chunk's K panel and values come from
    // memory (or L3) once for all of them and from the L1 or L2 for the rest.
    next_rows hints = next_item_rows(first, item_tiles, ntiles, num_rows);
    for (int c = c_lo; c <= c_hi; c++)
        for (int x = 0; x < count; x++)
            if (c >= chunks[x].lo && c <= chunks[x].hi) {
                hint_next_rows(&hints, q, rows, use_rows, reverse_tiles, ntiles, bh, nq);
                band_chunk(&st[x], &t[x], q, SRC_SCRATCH(k), false, v, bhk, nk, kv_len, rule, kr[x], c, qscale);
            }

    for (int x = 0; x < count; x++) {
        walk_side(&st[x], &t[x], q, side_k, false, side_v, side_pos, b, bhk, n_side, n_global, n_summary, kv_len, rule,
                  side_begin, side_count, qscale);
        for (int r = 0; r < R; r++) {
            const int slot = tile_index[x] * R + r;
            if (slot >= num_rows)
                break;
            const size_t row = (size_t)bh * nq + tile_row(rows, use_rows, slot);
            const bool padding = t[x].pos[r] >= kv_len;
            write_row(out, lse, row, write_lse, st[x].acc[r], st[x].m[r], padding ? 0.0f : lane_sum(st[x].lsum[r]));
        }
    }
}
