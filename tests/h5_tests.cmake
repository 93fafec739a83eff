# Tests of the HDF5 run file (io/h5, io/run_view.c): round trips, crash
# shapes, independent readers (h5py, h5dump) through the zstd plugin, and the
# parallel writer under a real mpirun. Included from tests/CMakeLists.txt.

cairn_test(test_h5_roundtrip TIMEOUT 120)
set_tests_properties(test_h5_roundtrip PROPERTIES LABELS "unit;hdf5"
  ENVIRONMENT "CAIRN_LOG_LEVEL=error;CAIRN_MPI_ENABLED=false")
target_link_libraries(test_h5_roundtrip PRIVATE m)
# The view an aggregator builds while it logs, and the serial writer's own
# chunk compression, against the log and HDF5's filter pipeline.
cairn_test(test_view_builder TIMEOUT 120)
set_tests_properties(test_view_builder PROPERTIES LABELS "unit;hdf5"
  ENVIRONMENT "CAIRN_LOG_LEVEL=error;CAIRN_MPI_ENABLED=false")
target_link_libraries(test_view_builder PRIVATE m)

# A file with known content for the independent readers.
add_executable(h5_fixture h5_fixture.c)
target_link_libraries(h5_fixture PRIVATE cairn_internal cairn_build_flags m)

set(CAIRN_H5PY_PYTHON "/usr/bin/python3" CACHE FILEPATH
    "Python interpreter with h5py (Debian python3-h5py), used as an independent reader")
get_filename_component(_h5_h5bin "${HDF5_C_COMPILER_EXECUTABLE}" DIRECTORY)
find_program(CAIRN_H5DUMP_EXECUTABLE h5dump HINTS ${_h5_h5bin})
set(_h5_fixture_dir "${CMAKE_CURRENT_BINARY_DIR}/h5-fixture")
set(_h5_plugin_env "HDF5_PLUGIN_PATH=${CAIRN_HDF5_PLUGIN_DIR}")

add_test(NAME h5_fixture_write
         COMMAND ${CMAKE_COMMAND} -E env CAIRN_MPI_ENABLED=false
                 $<TARGET_FILE:h5_fixture> ${_h5_fixture_dir})
set_tests_properties(h5_fixture_write PROPERTIES LABELS "unit;hdf5" TIMEOUT 60
  FIXTURES_SETUP cairn_h5_fixture)

add_test(NAME h5_read_h5py
         COMMAND ${CAIRN_H5PY_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/h5_readers.py h5py
                 ${_h5_fixture_dir}/run-g000000.h5)
add_test(NAME h5_read_h5dump_matches_format_doc
         COMMAND ${CAIRN_H5PY_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/h5_readers.py h5dump
                 ${_h5_fixture_dir}/run-g000000.h5 ${PROJECT_SOURCE_DIR}/docs/format.md
                 "${CAIRN_H5DUMP_EXECUTABLE}")
set_tests_properties(h5_read_h5py h5_read_h5dump_matches_format_doc PROPERTIES
  LABELS "unit;hdf5" TIMEOUT 60 FIXTURES_REQUIRED cairn_h5_fixture
  ENVIRONMENT "${_h5_plugin_env}" SKIP_RETURN_CODE 77)

# The parallel writer under a real mpirun (4 processes, oversubscribed),
# compared with the serial writer's file for the same data, first through
# cairn's reader (inside the MPI program), then independently by h5py.
add_executable(mpi_h5_parallel_write mpi/h5_parallel_write.c)
target_link_libraries(mpi_h5_parallel_write PRIVATE cairn_internal MPI::MPI_C cairn_build_flags m)
target_include_directories(mpi_h5_parallel_write PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
find_program(CAIRN_MPIEXEC NAMES mpirun mpiexec HINTS ${MPIEXEC_EXECUTABLE})
set(_h5_par_dir "${CMAKE_CURRENT_BINARY_DIR}/h5-parallel")
add_test(NAME h5_parallel_writer_np4
         COMMAND ${CMAKE_COMMAND} -E env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
                 ${CAIRN_MPIEXEC} --oversubscribe -np 4 -x CAIRN_MPI_ENABLED=false
                 $<TARGET_FILE:mpi_h5_parallel_write> ${_h5_par_dir})
set_tests_properties(h5_parallel_writer_np4 PROPERTIES LABELS "mpi;hdf5" TIMEOUT 120
  RUN_SERIAL ON FIXTURES_SETUP cairn_h5_parallel
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1;CAIRN_MPI_ENABLED=false")
add_test(NAME h5_parallel_equals_serial_h5py
         COMMAND ${CAIRN_H5PY_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/h5_readers.py compare
                 ${_h5_par_dir}/run-g000000.h5 ${_h5_par_dir}/serial/run-g000000.h5)
set_tests_properties(h5_parallel_equals_serial_h5py PROPERTIES LABELS "mpi;hdf5" TIMEOUT 60
  FIXTURES_REQUIRED cairn_h5_parallel ENVIRONMENT "${_h5_plugin_env}" SKIP_RETURN_CODE 77)
# the same file written the other way (collective MPI-IO, forced by the test)
add_test(NAME h5_parallel_collective_equals_serial_h5py
         COMMAND ${CAIRN_H5PY_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/h5_readers.py compare
                 ${_h5_par_dir}/collective/run-g000000.h5 ${_h5_par_dir}/serial/run-g000000.h5)
set_tests_properties(h5_parallel_collective_equals_serial_h5py PROPERTIES LABELS "mpi;hdf5"
  TIMEOUT 60 FIXTURES_REQUIRED cairn_h5_parallel ENVIRONMENT "${_h5_plugin_env}"
  SKIP_RETURN_CODE 77)

# Criterion-free: the view finished on several threads and the chunk
# compressor's workers, also run by the ThreadSanitizer build (tools/test.sh).
add_executable(stress_h5_write stress_h5_write.c)
target_link_libraries(stress_h5_write PRIVATE cairn_internal cairn_build_flags)
add_test(NAME stress_h5_write COMMAND stress_h5_write 3)
set_tests_properties(stress_h5_write PROPERTIES LABELS "unit;stress;hdf5" TIMEOUT 600
  ENVIRONMENT "CAIRN_LOG_LEVEL=error;CAIRN_MPI_ENABLED=false")
