// Builds the side keys (or values) that every query may see besides its band, laid out
// [globals | summaries | extras] per (batch, kv head): the global tokens' own rows, the block
// means of LongT5's transient global tokens over each entry's valid keys, and the caller's Kx.
// Compiled after common.cl: it reads K, V, Kx and Vx in the storage type (CLATTN_DTYPE) and
// writes float32, the means summed in float32. No other build option: the row width is an
// argument, so one program serves keys and values.

// One work-item per element: dim 0 = slot * width + w, dim 1 = batch * Hkv. Summary block c of an
// entry with `valid` keys averages keys [c * block, c * block + block), except its last block,
// which runs to `valid`: with tail_own a partial block of the left-over keys, else a full block
// that the left-over keys joined (SPEC.md 5; host/problem.h's clattn__summary_keys). The slots
// past the entry's blocks (padding) hold 0 and are never visible.
__kernel void side_keys(__global const elem_t *src,     // [B, Hkv, N, width]
                        __global const elem_t *extra,   // [B, Hkv, n_extra, width]
                        __global const int *global_idx, // [n_global]
                        __global const int *seq_lens,   // [B]
                        __global float *side,           // [B, Hkv, n_global+n_summary+n_extra, width]
                        int n, int width, int kv_heads, int n_global, int n_summary, int n_extra, int block,
                        int tail_own)
{
    const int n_side = n_global + n_summary + n_extra;
    const int x = get_global_id(0);
    if (x >= n_side * width)
        return;
    const size_t bhk = get_global_id(1);
    const int slot = x / width;
    const int w = x % width;
    __global const elem_t *rows = src + bhk * n * width + w;
    float value;
    if (slot < n_global) {
        value = LOAD_1((size_t)global_idx[slot] * width, rows);
    } else if (slot < n_global + n_summary) {
        const int valid = seq_lens[bhk / kv_heads];
        const int blocks = valid / block + (tail_own && valid % block != 0);
        const int c = slot - n_global;
        const int start = c * block;
        const int end = c == blocks - 1 ? valid : start + block;
        float sum = 0.0f;
        for (int j = start; c < blocks && j < end; j++)
            sum += LOAD_1((size_t)j * width, rows);
        value = c < blocks ? sum / (float)(end - start) : 0.0f;
    } else {
        value = LOAD_1((bhk * n_extra + (slot - n_global - n_summary)) * width + w, extra);
    }
    side[bhk * n_side * width + x] = value;
}
