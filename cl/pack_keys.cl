// Repacks keys [B, Hkv, N, D] into float32 panels of KC keys, [B, Hkv, ceil(N/KC), D, KC], so
// that the CPU attention variant reads KC keys of one dimension with contiguous loads. Keys past N
// are zero (the attention kernel masks them). Compiled after common.cl (the storage type):
// pack_keys widens the caller's K or Kg, pack_side_keys copies the float32 side keys.
//   -DCLATTN_D=<1..256>  head dimension
//   -DCLATTN_KC=<16,32,64>  keys per panel (the attention kernel's chunk)
#define KC CLATTN_KC

// One work-item per panel row: dim 0 = chunk * D + d (KC keys of dimension d), dim 1 =
// batch * Hkv. (One work-item per element was 4 times slower on POCL: index arithmetic and
// gathers for every float.)
inline void pack(src_t k, __global float *panels, int n)
{
    const int x = get_global_id(0);
    const int chunks = (n + KC - 1) / KC;
    if (x >= chunks * CLATTN_D)
        return;
    const size_t bhk = get_global_id(1);
    const int c = x / CLATTN_D;
    const int valid = min(KC, n - c * KC);
    const src_t src = SRC_AT(k, (bhk * n + (size_t)c * KC) * CLATTN_D + x % CLATTN_D);
    __global float *dst = panels + (bhk * chunks * CLATTN_D + x) * KC;
    for (int t = 0; t < KC; t++)
        dst[t] = t < valid ? SRC_LOAD(1, t * CLATTN_D, src) : 0.0f;
}

__kernel void pack_keys(__global const elem_t *k, // [B, Hkv, N, D]
                        __global float *panels,   // [B, Hkv, ceil(N/KC), D, KC]
                        int n)
{
    pack(SRC_CALLER(k), panels, n);
}

__kernel void pack_side_keys(__global const float *k, // [B, Hkv, N, D]
                             __global float *panels,  // [B, Hkv, ceil(N/KC), D, KC]
                             int n)
{
    pack(SRC_SCRATCH(k), panels, n);
}
