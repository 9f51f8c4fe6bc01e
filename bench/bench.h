/* `clattn bench`: the performance sweep of every device, the reference path and an unfused
 * OpenBLAS baseline over patterns and sequence lengths; and `clattn tune`, which times the tile
 * space on one device with the same machinery. The tool's entry points into bench/. */
#ifndef CLATTN_BENCH_H
#define CLATTN_BENCH_H

/* Runs `clattn bench ...` with argv[0] = "bench"; results go to stdout, problems to stderr.
 * Returns the exit status: 0 success, 2 bad arguments, 3 a device or runtime failure. */
int bench_main(int argc, char **argv);

/* Runs `clattn tune ...` (argv[0] = "tune"; bench's flags, first --device, first pattern, largest
 * --n): prints each candidate's time and the winning row for host/tuning.c's table; --save also
 * stores the winner in the cache directory, where plans on this device and driver find it. */
int tune_main(int argc, char **argv);

#endif
