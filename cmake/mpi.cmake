# Sequence parallel over MPI (include/clattn_mpi.h): the library clattn_mpi, built when CMake finds
# MPI (Debian: libopenmpi-dev), so that clattn itself never depends on it.
option(CLATTN_MPI "Build clattn_mpi when an MPI implementation is found" ON)
set(CLATTN_HAVE_MPI OFF)
if(CLATTN_MPI)
    find_package(MPI COMPONENTS C)
    if(MPI_C_FOUND)
        set(CLATTN_HAVE_MPI ON)
        add_library(clattn_mpi STATIC host/mpi.c host/mpi_block.c host/mpi_ring.c host/mpi_halo.c host/mpi_gathered.c
                host/mpi_zigzag.c host/mpi_summary.c)
        target_include_directories(clattn_mpi PUBLIC include PRIVATE host)
        target_link_libraries(clattn_mpi PUBLIC clattn MPI::MPI_C m)
    else()
        message(STATUS "MPI not found: clattn_mpi, clattn run --mpi and the MPI tests are left out")
    endif()
endif()
