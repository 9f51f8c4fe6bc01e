/* `clattn bench --mpi`: the sequence-parallel bench, run under mpirun (built when CMake finds MPI). */
#ifndef CLATTN_BENCH_MPI_H
#define CLATTN_BENCH_MPI_H

/* argv[0] = "bench"; bench's flags (the first --device only) and --mpi. Initializes and
 * finalizes MPI. Returns the exit status, the same on every rank. */
int bench_mpi_main(int argc, char **argv);

#endif
