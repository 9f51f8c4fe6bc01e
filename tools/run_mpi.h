/* `clattn run ... --mpi`: the run across MPI ranks (built when CMake finds MPI). */
#ifndef CLATTN_RUN_MPI_H
#define CLATTN_RUN_MPI_H

/* argv[0] = "run"; run's flags and --mpi. Initializes and finalizes MPI; returns the tool's exit
 * status, the same on every rank. Rank 0 reads and writes the files. */
int run_mpi_main(int argc, char **argv);

#endif
