# Packaging tests (label "install"): cairn is configured, built and installed
# ONCE into a temporary prefix (the fixture cairn_install_prefix, a fresh
# build without tests, benchmarks or examples, whose build tree is deleted
# afterwards); then each way of using it builds one of examples/ out of tree
# against that prefix alone, runs it under mpirun on 4 ranks and checks the
# run it wrote. Included from tests/CMakeLists.txt.

if(CAIRN_SANITIZE)
  # Packaging does not change under a sanitizer, and the fixture rebuilds
  # everything: the plain build covers it.
  message(STATUS "cairn: install tests skipped in a sanitizer build")
  return()
endif()

set(_inst_work "${CMAKE_BINARY_DIR}/install-test")
set(_inst_dir "${CMAKE_CURRENT_SOURCE_DIR}/install")

# The nested build and the example projects use this build's compiler and
# dependencies (under Spack these come from the command line, not the
# environment, so they must be passed on).
set(_inst_cache "")
foreach(_v CMAKE_C_COMPILER CMAKE_PREFIX_PATH MPI_C_COMPILER HDF5_C_COMPILER_EXECUTABLE
           PKG_CONFIG_EXECUTABLE CMAKE_BUILD_TYPE)
  if(DEFINED ${_v} AND NOT "${${_v}}" STREQUAL "")
    string(REPLACE "\"" "\\\"" _val "${${_v}}")
    string(APPEND _inst_cache "set(${_v} \"${_val}\" CACHE STRING \"\")\n")
  endif()
endforeach()
file(WRITE "${_inst_work}/init-cache.cmake" "${_inst_cache}")

if(MPIEXEC_EXECUTABLE)
  set(_inst_mpiexec "${MPIEXEC_EXECUTABLE}")
else()
  set(_inst_mpiexec mpirun)
endif()
if(MPI_C_COMPILER)
  set(_inst_mpicc "${MPI_C_COMPILER}")
else()
  set(_inst_mpicc mpicc)
endif()
set(_inst_env "MPIEXEC=${_inst_mpiexec}" "MPICC=${_inst_mpicc}" "CAIRN_LOG_LEVEL=warn")
if(TARGET mpi_check_meta)
  set(_inst_checker $<TARGET_FILE:mpi_check_meta>)
else()
  set(_inst_checker "")
endif()

add_test(NAME install_prefix_setup
         COMMAND ${_inst_dir}/setup_prefix.sh ${PROJECT_SOURCE_DIR} ${_inst_work} ${CMAKE_GENERATOR})
set_tests_properties(install_prefix_setup PROPERTIES
  LABELS "install" TIMEOUT 1200 PROCESSORS 2 FIXTURES_SETUP cairn_install_prefix)

add_test(NAME install_cleanup COMMAND ${CMAKE_COMMAND} -E rm -rf
         ${_inst_work}/prefix ${_inst_work}/examples ${_inst_work}/relocated)
set_tests_properties(install_cleanup PROPERTIES
  LABELS "install" FIXTURES_CLEANUP cairn_install_prefix)

add_test(NAME install_layout
         COMMAND ${_inst_dir}/check_layout.sh ${_inst_work}/prefix ${PROJECT_VERSION}
                 $<TARGET_PROPERTY:cairn,SOVERSION> ${PROJECT_SOURCE_DIR} ${_inst_work})
add_test(NAME install_config_package
         COMMAND ${_inst_dir}/check_config.sh ${_inst_work} ${PROJECT_VERSION} ${_inst_dir}/probe)
set_tests_properties(install_layout install_config_package PROPERTIES
  LABELS "install" TIMEOUT 300 FIXTURES_REQUIRED cairn_install_prefix)

foreach(_kind cmake pkgconfig ld_preload static static_pkgconfig)
  if(_kind STREQUAL "cmake")
    set(_name install_find_package_np4)
  else()
    set(_name install_${_kind}_np4)
  endif()
  add_test(NAME ${_name}
           COMMAND ${_inst_dir}/run_example.sh ${_kind} ${_inst_work}
                   ${PROJECT_SOURCE_DIR}/examples ${PROJECT_VERSION} ${_inst_checker})
  set_tests_properties(${_name} PROPERTIES
    LABELS "install;mpi" TIMEOUT 300 RUN_SERIAL ON
    FIXTURES_REQUIRED cairn_install_prefix ENVIRONMENT "${_inst_env}")
endforeach()

# The Spack recipes: valid Python, the structure Spack 1.x expects, and every
# dependency the CMake build looks for declared (no Spack needed).
set(CAIRN_SPACK_TEST_PYTHON "/usr/bin/python3" CACHE FILEPATH
    "Python 3 interpreter for tests/test_spack_recipe.py (standard library only)")
add_test(NAME spack_recipe
         COMMAND ${CAIRN_SPACK_TEST_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_spack_recipe.py
                 ${PROJECT_SOURCE_DIR})
set_tests_properties(spack_recipe PROPERTIES LABELS "install;spack" TIMEOUT 60)
