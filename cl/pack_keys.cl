// Repacks keys [B, Hkv, N, D] into panels of 16 keys, [B, Hkv, ceil(N/16), D, 16], so that the
// CPU attention variant reads 16 keys of one dimension with one contiguous load. Keys past N are
// zero (the attention kernel masks them).
//   -DCLATTN_D=<1..256>  head dimension
#ifndef CLATTN_D
#define CLATTN_D 64
#endif

// One work-item per panel element: dim 0 = (chunk * D + d) * 16 + t, dim 1 = batch * Hkv.
__kernel void pack_keys(__global const float *k, // [B, Hkv, N, D]
                        __global float *panels,  // [B, Hkv, ceil(N/16), D, 16]
                        int n)
{
    const int x = get_global_id(0);
    const int chunks = (n + 15) / 16;
    if (x >= chunks * CLATTN_D * 16)
        return;
    const size_t bhk = get_global_id(1);
    const int t = x % 16;
    const int d = (x / 16) % CLATTN_D;
    const int j = (x / 16 / CLATTN_D) * 16 + t;
    panels[bhk * chunks * CLATTN_D * 16 + x] = j < n ? k[(bhk * n + j) * CLATTN_D + d] : 0.0f;
}
