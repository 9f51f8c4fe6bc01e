# test_mpi under mpirun with 1 to 4 ranks (oversubscribed: CI machines have fewer cores). Running as
# root, as CI does, needs OpenMPI's two documented variables. Each rank runs POCL on one thread,
# and the on-disk program cache spares the ranks after the first their compiles. Under the
# sanitizers, leaks are not checked here: OpenMPI leaves allocations of components it has already
# unloaded at MPI_Finalize, which LeakSanitizer cannot name to suppress (AddressSanitizer and
# UBSan still check every access).
if(CLATTN_HAVE_MPI)
    set(CLATTN_MPI_TEST_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 POCL_MAX_PTHREAD_COUNT=1
        CLATTN_CACHE_DIR=${CMAKE_BINARY_DIR}/program_cache)
    if(CLATTN_SANITIZE)
        list(APPEND CLATTN_MPI_TEST_ENV ASAN_OPTIONS=detect_leaks=0)
    endif()
    add_executable(test_mpi test_mpi.c)
    target_link_libraries(test_mpi PRIVATE clattn_mpi clattn_harness clattn_storage)
    foreach(np 1 2 3 4)
        add_test(NAME test_mpi_np${np}
                 COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} --oversubscribe ${MPIEXEC_PREFLAGS}
                         $<TARGET_FILE:test_mpi> ${MPIEXEC_POSTFLAGS})
        set_tests_properties(test_mpi_np${np} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 ENVIRONMENT
                             "${CLATTN_MPI_TEST_ENV}")
    endforeach()
    # `clattn run --mpi` end to end: three ranks against one process, through .npy files.
    add_executable(test_run_mpi test_run_mpi.c)
    target_link_libraries(test_run_mpi PRIVATE clattn_npy_files)
    add_test(NAME test_run_mpi COMMAND test_run_mpi $<TARGET_FILE:clattn_tool> ${MPIEXEC_EXECUTABLE})
    set_tests_properties(test_run_mpi PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 ENVIRONMENT "${CLATTN_MPI_TEST_ENV}")
endif()
