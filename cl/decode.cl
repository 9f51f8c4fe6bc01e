// The decode split of the CPU program (after common.cl and attention_cpu.cl, whose chunk walk it
// reuses): for few query rows, a split over the keys and a kernel that merges the splits.
//
// One work-item per (key split, block of R rows of one kv head's query group, batch * kv head):
// the group's heads share each K and V row it reads, keys are read row-major (no panels to
// pack), and every split writes a partial (m, l, acc) that combine_splits merges. Side keys go
// to split 0.
CPU_VARIANT_KERNEL void attention_split(__global const elem_t *q,     // [B, H, Nq, D]
                                        __global const elem_t *k,     // [B, Hkv, Nk, D]
                                        __global const elem_t *v,     // [B, Hkv, Nk, DV]
                                        __global const float *side_k, // [B, Hkv, NS, D]
                                        __global const float *side_v, // [B, Hkv, NS, DV]
                                        __global const int *side_pos, // [B, NS]
                                        __global const int *seq_lens, // [B]
                                        __global float *part_acc,     // [B, H, Nq, splits, DV]
                                        __global float *part_ml,      // [B, H, Nq, splits, 2]
                                        int heads, int kv_heads, int nq, int nk, int left, int right, int dilation,
                                        int causal, int n_side, int n_global, int n_summary, int split_len,
                                        float qscale)
{
    const int split = get_global_id(0);
    const int splits = get_global_size(0);
    const int block = get_global_id(1);
    const size_t bhk = get_global_id(2);
    const int b = bhk / kv_heads;
    const int group = heads / kv_heads;
    const int group_rows = group * nq; // the host launches ceil(group_rows / R) blocks
    const int kv_len = seq_lens[b];
    const band_rule rule = {left, right, dilation, causal};

    tile_rows t;
    size_t row[R];
    for (int r = 0; r < R; r++) {
        const int gr = min(block * R + r, group_rows - 1); // a short last block repeats a row
        const int h = (bhk % kv_heads) * group + gr / nq;
        const int i = gr % nq;
        row[r] = ((size_t)b * heads + h) * nq + i;
        t.pos[r] = i + nk - nq;
        t.qoff[r] = row[r] * D;
    }
    span_rows(&t);
    row_state st;
    init_state(&st);
    walk_band(&st, &t, q, SRC_CALLER(k), true, v, bhk, nk, kv_len, rule, split * split_len,
              split * split_len + split_len - 1, qscale);
    if (split == 0)
        walk_side(&st, &t, q, side_k, true, side_v, side_pos, b, bhk, n_side, n_global, n_summary, kv_len, rule, 0,
                  n_side, qscale);

    for (int r = 0; r < R && block * R + r < group_rows; r++) {
        const size_t part = row[r] * splits + split;
        part_ml[2 * part] = st.m[r];
        part_ml[2 * part + 1] = t.pos[r] >= kv_len ? 0.0f : lane_sum(st.lsum[r]);
        for (int dv = 0; dv < DV; dv++)
            part_acc[part * DV + dv] = st.acc[r][dv];
    }
}

// Merges the splits' partial results of one query row: O = sum_s 2^(m_s - M) acc_s / L with
// M = max m_s and L = sum_s 2^(m_s - M) l_s. A split that saw no key (l = +0) adds nothing; the
// others carry their NaN or -0 sums (write_row) into L: a -0 split weighs 2^(-inf - M), 0 beside
// a finite M and NaN when no split has a finite max, as the row's one softmax would.
__kernel void combine_splits(__global const float *part_acc, // [rows, splits, DV]
                             __global const float *part_ml,  // [rows, splits, 2]
                             __global elem_t *out,           // [rows, DV]
                             __global float *lse,            // [rows] when write_lse
                             int rows, int splits, int write_lse)
{
    const int row = get_global_id(0);
    if (row >= rows)
        return;
    __global const float *ml = part_ml + (size_t)row * splits * 2;
    float m = -INFINITY;
    for (int s = 0; s < splits; s++)
        if (as_uint(ml[2 * s + 1]) != 0)
            m = max(m, ml[2 * s]);
    float l = 0.0f;
    float acc[DV];
    for (int dv = 0; dv < DV; dv++)
        acc[dv] = 0.0f;
    for (int s = 0; s < splits; s++) {
        if (as_uint(ml[2 * s + 1]) == 0)
            continue;
        const float w = exp2(ml[2 * s] - m);
        l += w * ml[2 * s + 1];
        __global const float *a = part_acc + ((size_t)row * splits + s) * DV;
        for (int dv = 0; dv < DV; dv++)
            acc[dv] = fma(w, a[dv], acc[dv]);
    }
    write_row(out, lse, row, write_lse, acc, m, l);
}
