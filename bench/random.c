/* Unit-normal floats and uniform integers from a 64-bit linear congruential generator (Knuth's MMIX
 * constants). */
#include "random.h"

#include <math.h>

/* Uniform in (0, 1), so that the logarithm below stays finite. */
static double uniform(unsigned long long *seed)
{
    *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(*seed >> 11) + 0.5) / 9007199254740992.0;
}

void random_normal(float *x, size_t n, unsigned long long *seed)
{
    for (size_t i = 0; i < n; i += 2) {
        const double u0 = uniform(seed), u1 = uniform(seed);
        const double r = sqrt(-2.0 * log(u0));
        x[i] = (float)(r * cos(6.283185307179586 * u1));
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(6.283185307179586 * u1));
    }
}

int random_int(int lo, int hi, unsigned long long *seed)
{
    return lo + (int)(uniform(seed) * ((double)hi - lo + 1.0));
}
