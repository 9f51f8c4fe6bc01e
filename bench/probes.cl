// Device probes for the bench (embedded into the clattn tool, not the library): the fp32 FMA peak
// and the copy bandwidth.
//
// FMA peak (clpeak-style): each work-item runs CLATTN_CHAINS independent float16 FMA
// chains. The chain loops are unrolled so that every chain lives in registers: a rolled loop
// over a private array keeps the chains in memory and measures load/store, not FMA, throughput.
//   -DCLATTN_CHAINS=<1..16>    independent chains per work-item
//   -DCLATTN_ITERS=<n>         iterations of the chain loop (each: CHAINS * 16 FMAs)
#ifndef CLATTN_CHAINS
#define CLATTN_CHAINS 16
#endif
#ifndef CLATTN_ITERS
#define CLATTN_ITERS 1024
#endif

__kernel void peak(__global float *out, float a, float b)
{
    float16 acc[CLATTN_CHAINS];
#pragma unroll
    for (int c = 0; c < CLATTN_CHAINS; c++)
        acc[c] = (float16)(get_global_id(0) + c);
    for (int it = 0; it < CLATTN_ITERS; it++)
#pragma unroll
        for (int c = 0; c < CLATTN_CHAINS; c++)
            acc[c] = fma(acc[c], (float16)(a), (float16)(b));
    float16 sum = (float16)(0.0f);
#pragma unroll
    for (int c = 0; c < CLATTN_CHAINS; c++)
        sum += acc[c];
    // Stored so that the compiler keeps every chain; the value itself is meaningless.
    out[get_global_id(0)] = sum.s0 + sum.s1 + sum.s2 + sum.s3 + sum.s4 + sum.s5 + sum.s6 + sum.s7 + sum.s8 + sum.s9 +
                            sum.sa + sum.sb + sum.sc + sum.sd + sum.se + sum.sf;
}

// Copy bandwidth probe: each work-item copies one float4. The bench times it on buffers far
// larger than the caches and counts the bytes read plus the bytes written.
__kernel void copy(__global const float4 *src, __global float4 *dst)
{
    dst[get_global_id(0)] = src[get_global_id(0)];
}
