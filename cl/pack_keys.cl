// Repacks keys [B, Hkv, N, D] into panels of KC keys, [B, Hkv, ceil(N/KC), D, KC], so that the
// CPU attention variant reads KC keys of one dimension with contiguous loads. Keys past N are
// zero (the attention kernel masks them).
//   -DCLATTN_D=<1..256>  head dimension
//   -DCLATTN_KC=<16,32,64>  keys per panel (the attention kernel's chunk)
#ifndef CLATTN_D
#define CLATTN_D 64
#endif
#ifndef CLATTN_KC
#define CLATTN_KC 32
#endif
#define KC CLATTN_KC

// One work-item per panel element: dim 0 = (chunk * D + d) * KC + t, dim 1 = batch * Hkv.
__kernel void pack_keys(__global const float *k, // [B, Hkv, N, D]
                        __global float *panels,  // [B, Hkv, ceil(N/KC), D, KC]
                        int n)
{
    const int x = get_global_id(0);
    const int chunks = (n + KC - 1) / KC;
    if (x >= chunks * CLATTN_D * KC)
        return;
    const size_t bhk = get_global_id(1);
    const int t = x % KC;
    const int d = (x / KC) % CLATTN_D;
    const int j = (x / KC / CLATTN_D) * KC + t;
    panels[bhk * chunks * CLATTN_D * KC + x] = j < n ? k[(bhk * n + j) * CLATTN_D + d] : 0.0f;
}
