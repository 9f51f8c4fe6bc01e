// Copies the rows of K or V into the slot order of a 2-D grid pattern (host/grid.h says which
// orders and why): slot s of each (batch, kv head) receives the row of token keys[tokens_at + s],
// the token column of host/grid.c's key table. No build options: the row width is an argument,
// so one program serves keys and values.

// One work-item per element: dim 0 = slot * width + e, dim 1 = batch * Hkv.
__kernel void grid_order(__global const float *src,  // [B, Hkv, N, width], token order
                         __global const int *keys,   // host/grid.c's key table
                         __global float *dst,        // [B, Hkv, N, width], slot order
                         int n, int width, int tokens_at)
{
    const int x = get_global_id(0);
    if (x >= n * width)
        return;
    const size_t bhk = get_global_id(1);
    const int slot = x / width;
    dst[bhk * n * width + x] = src[(bhk * n + keys[tokens_at + slot]) * width + x % width];
}
