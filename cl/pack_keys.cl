// Repacks keys [B, Hkv, N, D] into panels of KC keys, [B, Hkv, ceil(N/KC), D, KC], so that the
// CPU attention variant reads KC keys of one dimension with contiguous loads. Keys past N are
// zero (the attention kernel masks them).
//   -DCLATTN_D=<1..256>  head dimension
//   -DCLATTN_KC=<16,32,64>  keys per panel (the attention kernel's chunk)
#ifndef CLATTN_D
#define CLATTN_D 64
#endif
#ifndef CLATTN_KC
#define CLATTN_KC 64
#endif
#define KC CLATTN_KC

// One work-item per panel row: dim 0 = chunk * D + d (KC keys of dimension d), dim 1 =
// batch * Hkv. (One work-item per element was 4 times slower on POCL: index arithmetic and
// gathers for every float.)
__kernel void pack_keys(__global const float *k, // [B, Hkv, N, D]
                        __global float *panels,  // [B, Hkv, ceil(N/KC), D, KC]
                        int n)
{
    const int x = get_global_id(0);
    const int chunks = (n + KC - 1) / KC;
    if (x >= chunks * CLATTN_D)
        return;
    const size_t bhk = get_global_id(1);
    const int c = x / CLATTN_D;
    const int valid = min(KC, n - c * KC);
    __global const float *src = k + (bhk * n + (size_t)c * KC) * CLATTN_D + x % CLATTN_D;
    __global float *dst = panels + (bhk * chunks * CLATTN_D + x) * KC;
    for (int t = 0; t < KC; t++)
        dst[t] = t < valid ? src[t * CLATTN_D] : 0.0f;
}
