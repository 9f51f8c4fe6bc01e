/* `clattn bench`: the performance sweep of every device, the reference path and an unfused
 * OpenBLAS baseline over patterns and sequence lengths (issue 5). */
#ifndef CLATTN_BENCH_H
#define CLATTN_BENCH_H

/* Runs `clattn bench ...` with argv[0] = "bench"; results go to stdout, problems to stderr.
 * Returns the exit status: 0 success, 2 bad arguments, 3 a device or runtime failure. */
int bench_main(int argc, char **argv);

#endif
