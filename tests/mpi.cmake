# test_mpi under mpirun with 1 to 4 ranks (oversubscribed: CI machines have fewer cores). Running as
# root, as CI does, needs OpenMPI's two documented variables. Each rank runs POCL on one thread,
# and the on-disk program cache spares the ranks after the first their compiles.
if(CLATTN_HAVE_MPI)
    add_executable(test_mpi test_mpi.c)
    target_link_libraries(test_mpi PRIVATE clattn_mpi clattn_harness)
    foreach(np 1 2 3 4)
        add_test(NAME test_mpi_np${np}
                 COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} --oversubscribe ${MPIEXEC_PREFLAGS}
                         $<TARGET_FILE:test_mpi> ${MPIEXEC_POSTFLAGS})
        set_tests_properties(test_mpi_np${np} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 ENVIRONMENT
            "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;POCL_MAX_PTHREAD_COUNT=1;CLATTN_CACHE_DIR=${CMAKE_BINARY_DIR}/program_cache")
    endforeach()
endif()
