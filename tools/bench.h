/* `clattn bench`: sweeps devices, patterns and sizes, timed with profiling events. */
#ifndef CLATTN_BENCH_H
#define CLATTN_BENCH_H

/* argv[0] is "bench"; returns the tool's exit status (0, 2 bad usage, 3 runtime failure). */
int bench_main(int argc, char **argv);

#endif
