// The CPU variant of the 2-D grid kernel, compiled after common.cl, attention_cpu.cl (whose
// chunk walk it runs: panels of KC keys, register-blocked scores, online softmax, P.V) and
// grid_common.cl. Barrier-free: a work-item owns one tile of CLATTN_ROWS = th x tw queries
// (host/grid.h) and walks the tile's runs of key slots alone, chunk by chunk; every chunk is an
// edge chunk whose mask is each query's rectangle test (grid_visible) on the slots' coordinates.
// K comes as panels of the keys in slot order (pack_keys.cl), V as rows in slot order.

// The mask of one 16-slot group for every query of the tile: slots [base, base + 16) that lie in
// the run [lo, hi] and in the query's set.
inline void grid_group_mask(int16 ok[R][NV], int group, const grid_query *gq, __global const int *keys, int nslots,
                            int base, int lo, int hi, int kv_len, int causal)
{
    const int16 iota = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const int16 slot = base + iota;
    const int16 kr = vload16(0, keys + base), kc = vload16(0, keys + nslots + base);
    const int16 kt = vload16(0, keys + 2 * nslots + base);
    const int16 live = (slot >= lo) & (slot <= hi) & (kt >= 0) & (kt < kv_len);
    for (int s = 0; s < R; s++) {
        int16 in = (int16)(0);
        for (int part = 0; part < 2; part++)
            in |= (as_uint16(kr - gq[s].rlo[part]) < (uint16)(gq[s].rn[part])) &
                  (as_uint16(kc - gq[s].clo[part]) < (uint16)(gq[s].cn[part]));
        ok[s][group] = live & in & (causal ? kt <= gq[s].tok : (int16)(-1));
    }
}

__kernel void grid_attention(__global const float *q,      // [B, H, N, D], token order
                             __global const float *k,      // [B, Hkv, ceil(N/KC), D, KC], slot order
                             __global const float *v,      // [B, Hkv, N, DV], slot order
                             __global const int *tiles,    // host/grid.c: [4 ntiles], run offsets, runs
                             __global const int *axis,     // host/grid.c's axis table
                             __global const int *keys,     // [3 nslots] kernel row, column, token
                             __global const int *seq_lens, // [B]
                             __global float *out,          // [B, H, N, DV]
                             __global float *lse,          // [B, H, N] when write_lse
                             int heads, int kv_heads, int h, int w, int nparts, int ntiles, int nslots, int causal,
                             float qscale, int write_lse)
{
    const int tile = get_global_id(0);
    if (tile >= ntiles)
        return;
    const int bh = get_global_id(1);
    const int b = bh / heads;
    const size_t bhk = kv_head_of(bh, heads, kv_heads);
    const int n = h * w, kv_len = seq_lens[b];
    const int r0 = tiles[4 * tile], th = tiles[4 * tile + 1], c0 = tiles[4 * tile + 2], tw = tiles[4 * tile + 3];

    // Slot s is query (r0 + s / TW, c0 + s % TW); the slots a short tile lacks repeat its first
    // query and are not written.
    grid_query gq[R];
    size_t qoff[R];
    for (int s = 0; s < R; s++) {
        const bool live = s / CLATTN_GRID_TW < th && s % CLATTN_GRID_TW < tw;
        gq[s] = grid_query_of(axis, h, w, nparts, r0 + (live ? s / CLATTN_GRID_TW : 0),
                              c0 + (live ? s % CLATTN_GRID_TW : 0));
        qoff[s] = ((size_t)bh * n + gq[s].tok) * D;
    }
    row_state st;
    init_state(&st);

    __global const int *offsets = tiles + 4 * ntiles;
    __global const int *runs = offsets + ntiles + 1;
    const int chunks = nslots / KC;
    int16 ok[R][NV];
    for (int x = offsets[tile]; x < offsets[tile + 1]; x++) {
        const int lo = runs[2 * x], hi = lo + runs[2 * x + 1] - 1;
        for (int c = lo / KC; c <= hi / KC; c++) {
            const int j0 = c * KC;
            const chunk_span span = make_span(j0, lo, hi, n - j0, true);
            for (int group = span.g_lo; group < span.g_hi; group++)
                grid_group_mask(ok, group, gq, keys, nslots, j0 + 16 * group, lo, hi, kv_len, causal);
            process_chunk(&st, q, qoff, k + (bhk * chunks + c) * (D * KC), false, v + (bhk * n + j0) * DV, span,
                          qscale, ok);
        }
    }
    for (int s = 0; s < R; s++)
        if (s / CLATTN_GRID_TW < th && s % CLATTN_GRID_TW < tw)
            write_row(out, lse, (size_t)bh * n + gq[s].tok, write_lse, st.acc[s], st.m[s],
                      gq[s].tok >= kv_len ? 0.0f : lane_sum(st.lsum[s]));
}
