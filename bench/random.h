/* The one pseudo-random generator of the bench and the tests: unit-normal floats (and uniform
 * integers, test_random's draws) from a fixed seed, so that every device of a bench point and every
 * run of a test sees the same inputs. */
#ifndef CLATTN_BENCH_RANDOM_H
#define CLATTN_BENCH_RANDOM_H

#include <stddef.h>

/* Fills x [n] with unit-normal values (Box-Muller over a 64-bit LCG) and advances *seed. */
void random_normal(float *x, size_t n, unsigned long long *seed);

/* An integer uniform in lo .. hi (both included, hi - lo below 2^31), from the same sequence. */
int random_int(int lo, int hi, unsigned long long *seed);

#endif
