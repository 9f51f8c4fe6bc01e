// The GPU variant of `attention`, compiled after common.cl: K/V tiles staged in __local memory.
//
// A work-group of CLATTN_WG work-items owns CLATTN_WG query rows (one each); the group stages
// CLATTN_BK keys and values at a time in __local memory and every work-item runs the online
// softmax of its own row over the staged tile.
#define BK CLATTN_BK

typedef struct {
    float m, l;
    float acc[DV];
} row_state;

// Copies keys [j0, j0 + BK) (or the listed side keys) of one kv head into __local; rows past
// `count` become zeros so no work-item reads outside the buffers.
inline __attribute__((always_inline)) void stage_tile(__local float *ks, __local float *vs, __global const float *k,
                                                      __global const float *vals, int count)
{
    for (int x = get_local_id(0); x < BK * D; x += CLATTN_WG)
        ks[x] = x / D < count ? k[x] : 0.0f;
    for (int x = get_local_id(0); x < BK * DV; x += CLATTN_WG)
        vs[x] = x / DV < count ? vals[x] : 0.0f;
}

inline __attribute__((always_inline)) void process_tile(row_state *st, __global const float *qrow,
                                                        __local const float *ks, __local const float *vs,
                                                        const bool *ok, float qscale)
{
    float s[BK];
    float mtile = -INFINITY;
    for (int t = 0; t < BK; t++) {
        float dot = 0.0f;
        for (int d = 0; d < D; d++)
            dot = fma(qrow[d], ks[t * D + d], dot);
        s[t] = ok[t] ? dot * qscale : -INFINITY;
        mtile = fmax(mtile, s[t]);
    }
    const float mnew = fmax(st->m, mtile);
    if (mnew == -INFINITY) { // no finite logit yet: l records visible NaN (NaN) or -inf (-0) ones, write_row
        for (int t = 0; t < BK; t++)
            if (ok[t]) {
                st->l = isnan(s[t]) ? NAN : copysign(st->l, -1.0f);
                // Their weight is 0, and 0 times an infinite or NaN value is NaN (as in the
                // reference and the CPU variant); a finite value leaves acc as it is. A product
                // and a sum, not fma(0, v, acc): clang 15's AMDGPU library-call pass folds that
                // fma to acc, NaN and infinity notwithstanding.
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
    for (int t = 0; t < BK; t++) {
        if (!ok[t])
            continue; // masked: weight 0, and its value (maybe NaN) is never read
        const float e = exp2(s[t] - mnew);
        st->l += e;
        for (int dv = 0; dv < DV; dv++)
            st->acc[dv] = fma(e, vs[t * DV + dv], st->acc[dv]);
    }
}

__kernel __attribute__((reqd_work_group_size(CLATTN_WG, 1, 1))) void attention(ATTENTION_ARGS)
{
    __local float ks[BK * D];
    __local float vs[BK * DV];
    const int ntiles = (num_rows + CLATTN_WG - 1) / CLATTN_WG;
    const int group = get_group_id(0);
    const int tile = reverse_tiles ? ntiles - 1 - group : group;
    const int bh = get_global_id(1);
    const int b = bh / heads;
    const size_t bhk = kv_head_of(bh, heads, kv_heads);
    const int kv_len = seq_lens[b];
    const band_rule rule = {left, right, dilation, causal};

    const int slot = tile * CLATTN_WG + get_local_id(0);
    const int first_row = tile_row(rows, use_rows, tile * CLATTN_WG);
    const int last_row = tile_row(rows, use_rows, min(tile * CLATTN_WG + CLATTN_WG, num_rows) - 1);
    const int i = tile_row(rows, use_rows, min(slot, num_rows - 1));
    const int p = i + nk - nq;
    __global const float *qrow = q + ((size_t)bh * nq + i) * D;

    row_state st;
    st.m = -INFINITY;
    st.l = 0.0f;
    for (int dv = 0; dv < DV; dv++)
        st.acc[dv] = 0.0f;

    // Rows of a tile are sorted, so the tile's band spans its first and last positions.
    const int lo = max(0, first_row + nk - nq - left);
    const int hi = min(kv_len - 1, last_row + nk - nq + right);
    bool ok[BK];
    for (int j0 = lo - lo % BK; lo <= hi && j0 <= hi; j0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        stage_tile(ks, vs, k + (bhk * nk + j0) * D, v + (bhk * nk + j0) * DV, min(BK, nk - j0));
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int t = 0; t < BK; t++)
            ok[t] = band_visible(rule, p, j0 + t, kv_len);
        process_tile(&st, qrow, ks, vs, ok, qscale);
    }
    for (int s0 = side_begin; s0 < side_begin + side_count; s0 += BK) {
        const int count = min(BK, side_begin + side_count - s0);
        barrier(CLK_LOCAL_MEM_FENCE);
        stage_tile(ks, vs, side_k + (bhk * n_side + s0) * D, side_v + (bhk * n_side + s0) * DV, count);
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int t = 0; t < BK; t++)
            ok[t] = t < count &&
                    side_visible(rule, p, s0 + t, side_pos[(size_t)b * n_side + s0 + t], n_global, n_summary, kv_len);
        process_tile(&st, qrow, ks, vs, ok, qscale);
    }
    if (slot < num_rows)
        write_row(out, lse, (size_t)bh * nq + i, write_lse, st.acc, st.m, p >= kv_len ? 0.0f : st.l);
}
