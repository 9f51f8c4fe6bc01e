// The CPU variant of the 2-D grid kernel, compiled after common.cl, attention_cpu.cl (whose
// chunk walk it runs: register-blocked scores over panels of KC keys, online softmax, P.V) and
// grid_common.cl. Barrier-free: a work-item takes tiles of CLATTN_ROWS = th x tw queries
// (host/grid.h) one after another and, for each, first gathers the keys of the tile's runs into
// its own scratch, packed densely: K as panels [chunk][D][KC], V as rows, and each key's kernel
// row, column and token. A tile's keys are a few short runs (a 7 x 7 neighborhood's tile sees one
// run of a dozen keys per key row); read where they lie, each run would be a chunk walk of its own
// whose 16-key vectors are mostly empty, while packed they fill whole chunks. The copy costs D + DV
// loads and stores per key, against R (D + DV) multiply-adds, and is made once for consecutive
// tiles that see the same keys (the tiles of a Swin window, of an axial row). K and V are read in
// token order, in the storage type, and packed as float32.

// The mask of one 16-key group of the packed keys for every query of the tile: keys [base,
// base + 16) that exist (below count) and are in the query's set.
inline void grid_group_mask(int16 ok[R][NV], int group, const grid_query *gq, __global const int *info, int lanes,
                            int base, int count, int kv_len, int causal)
{
    const int16 iota = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const int16 kr = vload16(0, info + base), kc = vload16(0, info + lanes + base);
    const int16 kt = vload16(0, info + 2 * lanes + base);
    const int16 live = (base + iota < count) & (kt < kv_len);
    for (int s = 0; s < R; s++) {
        int16 in = (int16)(0);
        for (int part = 0; part < 2; part++)
            in |= (as_uint16(kr - gq[s].rlo[part]) < (uint16)(gq[s].rn[part])) &
                  (as_uint16(kc - gq[s].clo[part]) < (uint16)(gq[s].cn[part]));
        ok[s][group] = live & in & (causal ? kt <= gq[s].tok : (int16)(-1));
    }
}

// Packs the keys of runs [first, last) (slots of the key table) into the work-item's scratch;
// returns how many (grid_group_mask masks the lanes past them). V rows are copied a vector at a
// time; K is transposed 16 keys at a time, a gather of one dimension of 16 rows then one vector
// store, rather than a scalar store per element.
inline int grid_pack(__global float *kp, __global float *vp, __global int *info, int lanes, __global const elem_t *k,
                     __global const elem_t *v, __global const int *runs, int first, int last, __global const int *keys,
                     int nslots)
{
    int u = 0;
    for (int x = first; x < last; x++)
        for (int s = runs[2 * x]; s < runs[2 * x] + runs[2 * x + 1]; s++, u++) {
            const int tok = keys[2 * nslots + s];
            for (int c = 0; c < DV / CLATTN_VW; c++)
                *(__global vw_t *)(vp + (size_t)u * DV + c * CLATTN_VW) = LOAD(CLATTN_VW, c, v + (size_t)tok * DV);
            info[u] = keys[s];
            info[lanes + u] = keys[nslots + s];
            info[2 * lanes + u] = tok;
        }
    for (int base = 0; base < u; base += 16) {
        int tok[16];
        for (int t = 0; t < 16; t++)
            tok[t] = info[2 * lanes + min(base + t, u - 1)];
        __global float *dst = kp + (size_t)(base / KC) * D * KC + base % KC;
        for (int d = 0; d < D; d++) {
            float x[16] __attribute__((aligned(64)));
            for (int t = 0; t < 16; t++)
                x[t] = LOAD_1((size_t)tok[t] * D + d, k);
            vstore16(PRIV(float16, x, 0), 0, dst + d * KC);
        }
    }
    return u;
}

CPU_VARIANT_KERNEL void grid_attention(GRID_ATTENTION_ARGS)
{
    const int bh = get_global_id(1);
    const int b = bh / heads;
    const size_t bhk = kv_head_of(bh, heads, kv_heads);
    const int n = h * w, kv_len = seq_lens[b];
    const size_t item = (size_t)bh * get_global_size(0) + get_global_id(0);
    __global float *kp = scratch + item * lanes * (D + DV);
    __global float *vp = kp + (size_t)lanes * D;
    __global int *info = scratch_info + item * 3 * lanes;
    __global const int *offsets = tiles + GRID_TILE_INTS * ntiles;
    __global const int *runs = offsets + ntiles + 1;
    const int first = (int)get_global_id(0) * per_item, tile_end = min(ntiles, first + per_item);
    int count = 0;
    for (int tile = first; tile < tile_end; tile++) {
        __global const int *t = tiles + GRID_TILE_INTS * tile;
        const int r0 = t[0], th = t[1], c0 = t[2], tw = t[3];
        // Slot s is query (r0 + s / TW, c0 + s % TW); the slots a short tile lacks repeat its
        // first query and are not written.
        grid_query gq[R];
        tile_rows rows; // only the Q offsets and rows: grid_group_mask is the mask
        for (int s = 0; s < R; s++) {
            const bool live = s / CLATTN_GRID_TW < th && s % CLATTN_GRID_TW < tw;
            gq[s] = grid_query_of(axis, h, w, nparts, r0 + (live ? s / CLATTN_GRID_TW : 0),
                                  c0 + (live ? s % CLATTN_GRID_TW : 0));
            rows.qoff[s] = ((size_t)bh * n + gq[s].tok) * D;
        }
        load_rows(&rows, q);
        // Tiles of one key set follow one another (a Swin window's, an axial row's): pack once.
        if (tile == first || !t[4])
            count = grid_pack(kp, vp, info, lanes, k + bhk * n * D, v + bhk * n * DV, runs, offsets[tile],
                              offsets[tile + 1], keys, nslots);
        row_state st;
        init_state(&st);
        int16 ok[R][NV];
        for (int c = 0; c * KC < count; c++) {
            chunk_span span = make_span(c * KC, 0, count - 1, count - c * KC, true);
            int16 every = (int16)(-1);
            for (int group = span.g_lo; group < span.g_hi; group++) {
                grid_group_mask(ok, group, gq, info, lanes, c * KC + 16 * group, count, kv_len, causal);
                for (int s = 0; s < R; s++)
                    every &= ok[s][group];
            }
            // A whole chunk that every row sees entirely (a Swin window's) needs no mask.
            span.edge = !(span.nvalid == KC && span.g_lo == 0 && span.g_hi == NV && all(every));
            process_chunk(&st, q, &rows, SRC_SCRATCH(kp + (size_t)c * D * KC), false,
                          SRC_SCRATCH(vp + (size_t)c * KC * DV), span, qscale, ok);
        }
        for (int s = 0; s < R; s++)
            if (s / CLATTN_GRID_TW < th && s % CLATTN_GRID_TW < tw)
                write_row(out, lse, (size_t)bh * n + gq[s].tok, write_lse, st.acc[s], st.m[s],
                          gq[s].tok >= kv_len ? 0.0f : lane_sum(st.lsum[s]));
    }
}
