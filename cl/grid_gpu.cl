// The GPU variant of the 2-D grid kernel, compiled after common.cl and grid_common.cl: a
// work-group of CLATTN_WG work-items owns one tile of th x tw <= WG queries (host/grid.h), one
// query each, and walks the tile's runs of key slots CLATTN_BK at a time: the group stages the
// keys, values and slot coordinates in __local memory, then each work-item runs the online
// softmax of its own query over them, with its rectangle test (grid_visible) as the mask.
// K and V are read in token order, a row where the key table's token column says.
#define BK CLATTN_BK

typedef struct {
    float m, l; // running max (log2 domain) and sum of weights; see write_row for l's sign
    float acc[DV];
} grid_row;

// Slots [j0, j0 + count) into __local: first their coordinates and tokens, then (after a
// barrier) the K and V rows of those tokens; rows past count become zeros and slots that see
// nothing.
inline void grid_stage(__local float *ks, __local float *vs, __local int *kinfo, __global const elem_t *k,
                       __global const elem_t *v, __global const int *keys, int nslots, int j0, int count)
{
    for (int x = get_local_id(0); x < 3 * BK; x += CLATTN_WG) {
        const int t = x % BK, field = x / BK;
        kinfo[x] = t < count ? keys[field * nslots + j0 + t] : -1;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int x = get_local_id(0); x < BK * D; x += CLATTN_WG)
        ks[x] = x / D < count ? LOAD_1((size_t)kinfo[2 * BK + x / D] * D + x % D, k) : 0.0f;
    for (int x = get_local_id(0); x < BK * DV; x += CLATTN_WG)
        vs[x] = x / DV < count ? LOAD_1((size_t)kinfo[2 * BK + x / DV] * DV + x % DV, v) : 0.0f;
}

// One staged block of `count` keys for one query (a run of a neighborhood may stage far fewer
// than BK, and the slots past `count` would be masked anyway). A row with no finite logit yet keeps m = -inf; l records
// a visible NaN (NaN) or only -inf logits (-0), and a visible key's value still meets a weight of 0, so that NaN and
// infinite values reach the output as SPEC.md asks (write_row settles it).
inline void grid_block(grid_row *st, __global const elem_t *qrow, __local const float *ks, __local const float *vs,
                       const bool *ok, int count, float qscale)
{
    float s[BK];
    float mblock = -INFINITY;
    for (int t = 0; t < count; t++) {
        float dot = 0.0f;
        for (int d = 0; d < D; d++)
            dot = fma(LOAD_1(d, qrow), ks[t * D + d], dot);
        s[t] = ok[t] ? dot * qscale : -INFINITY;
        mblock = fmax(mblock, s[t]);
    }
    const float mnew = fmax(st->m, mblock);
    if (mnew == -INFINITY) {
        for (int t = 0; t < count; t++)
            if (ok[t]) {
                st->l = isnan(s[t]) ? NAN : copysign(st->l, -1.0f);
                for (int dv = 0; dv < DV; dv++)
                    st->acc[dv] += 0.0f * vs[t * DV + dv];
            }
        return;
    }
    if (mnew > st->m) {
        const float alpha = exp2(st->m - mnew);
        st->l *= alpha;
        for (int dv = 0; dv < DV; dv++)
            st->acc[dv] *= alpha;
        st->m = mnew;
    }
    for (int t = 0; t < count; t++) {
        if (!ok[t])
            continue;
        const float e = exp2(s[t] - mnew);
        st->l += e;
        for (int dv = 0; dv < DV; dv++)
            st->acc[dv] = fma(e, vs[t * DV + dv], st->acc[dv]);
    }
}

__kernel __attribute__((reqd_work_group_size(CLATTN_WG, 1, 1))) void grid_attention(GRID_ATTENTION_ARGS)
{
    __local float ks[BK * D];
    __local float vs[BK * DV];
    __local int kinfo[3 * BK];
    const int tile = get_group_id(0);
    const int bh = get_global_id(1);
    const int b = bh / heads;
    const size_t bhk = kv_head_of(bh, heads, kv_heads);
    const int n = h * w, kv_len = seq_lens[b];
    __global const int *t = tiles + GRID_TILE_INTS * tile;
    const int r0 = t[0], th = t[1], c0 = t[2], tw = t[3];
    const int s = get_local_id(0);
    const bool live = s / CLATTN_GRID_TW < th && s % CLATTN_GRID_TW < tw;
    const grid_query gq =
        grid_query_of(axis, h, w, nparts, r0 + (live ? s / CLATTN_GRID_TW : 0), c0 + (live ? s % CLATTN_GRID_TW : 0));
    __global const elem_t *qrow = q + ((size_t)bh * n + gq.tok) * D;
    __global const elem_t *kh = k + bhk * n * D;
    __global const elem_t *vh = v + bhk * n * DV;

    grid_row st;
    st.m = -INFINITY;
    st.l = 0.0f;
    for (int dv = 0; dv < DV; dv++)
        st.acc[dv] = 0.0f;
    __global const int *offsets = tiles + GRID_TILE_INTS * ntiles;
    __global const int *runs = offsets + ntiles + 1;
    bool ok[BK];
    for (int x = offsets[tile]; x < offsets[tile + 1]; x++) {
        const int lo = runs[2 * x], end = lo + runs[2 * x + 1];
        for (int j0 = lo; j0 < end; j0 += BK) {
            const int count = min(BK, end - j0);
            barrier(CLK_LOCAL_MEM_FENCE);
            grid_stage(ks, vs, kinfo, kh, vh, keys, nslots, j0, count);
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int t = 0; t < count; t++)
                ok[t] = grid_visible(&gq, kinfo[t], kinfo[BK + t], kinfo[2 * BK + t], kv_len, causal);
            grid_block(&st, qrow, ks, vs, ok, count, qscale);
        }
    }
    if (live)
        write_row(out, lse, (size_t)bh * n + gq.tok, write_lse, st.acc, st.m, gq.tok >= kv_len ? 0.0f : st.l);
}
