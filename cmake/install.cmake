# `cmake --install`: the headers, both libraries, the CMake package (find_package(clattn) gives
# clattn::clattn, the shared library, and clattn::clattn_static) and clattn.pc for pkg-config.
# A Python build (scikit-build-core sets SKBUILD) installs only the shared library, into the
# package folder where python/clattn/_library.py looks for it.
include(CMakePackageConfigHelpers)

if(SKBUILD)
    # One regular file (a wheel keeps no symbolic links), loaded by its path, not its SONAME.
    install(FILES $<TARGET_FILE:clattn_shared> DESTINATION clattn)
    return()
endif()

set(CLATTN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/clattn)

# clattn_advanced.h is installed beside clattn.h and its functions are exported too: the tool,
# the bench and the Python package (clattn.devices()) use them. Including it is the caller's
# opt-in to an API that may change with any minor version; the SONAME changes with the minor
# version before 1.0, so a program built against one never loads another.
install(FILES include/clattn.h include/clattn_advanced.h include/clattn_multi.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS clattn clattn_shared EXPORT clattnTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT clattnTargets NAMESPACE clattn:: DESTINATION ${CLATTN_CMAKE_DIR})

configure_package_config_file(cmake/clattnConfig.cmake.in ${PROJECT_BINARY_DIR}/clattnConfig.cmake
                              INSTALL_DESTINATION ${CLATTN_CMAKE_DIR})
# Before 1.0 a minor version may break the API, so only the same MAJOR.MINOR is compatible.
if(PROJECT_VERSION_MAJOR EQUAL 0)
    set(CLATTN_COMPATIBILITY SameMinorVersion)
else()
    set(CLATTN_COMPATIBILITY SameMajorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/clattnConfigVersion.cmake
                                 COMPATIBILITY ${CLATTN_COMPATIBILITY})
install(FILES ${PROJECT_BINARY_DIR}/clattnConfig.cmake ${PROJECT_BINARY_DIR}/clattnConfigVersion.cmake
        DESTINATION ${CLATTN_CMAKE_DIR})

# pkg-config: paths relative to the .pc file itself, so that a moved prefix still works.
file(RELATIVE_PATH CLATTN_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" CLATTN_PC_TO_PREFIX "${CLATTN_PC_TO_PREFIX}")
configure_file(cmake/clattn.pc.in ${PROJECT_BINARY_DIR}/clattn.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/clattn.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
