# Tests of content hashes (io/hash): the Criterion unit tests (independent
# checks through sha256sum and dd, thread counts, failure shapes) and the
# collective variant under a real mpirun. Included from tests/CMakeLists.txt.
# io/hash objects are not in libcairn yet, so they are linked directly.

add_executable(test_hash test_hash.c)
target_link_libraries(test_hash PRIVATE cairn_hash cairn_internal PkgConfig::CRITERION cairn_build_flags)
add_test(NAME test_hash COMMAND test_hash --jobs 2)
set_tests_properties(test_hash PROPERTIES LABELS "unit;hash" TIMEOUT 120
  ENVIRONMENT "CAIRN_LOG_LEVEL=error")

add_executable(hash_collective hash/hash_collective.c)
target_link_libraries(hash_collective PRIVATE cairn_hash cairn_internal MPI::MPI_C cairn_build_flags)
foreach(_n 1 3 4)
  add_test(NAME hash_collective_np${_n}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/hash/run_collective.sh
                   $<TARGET_FILE:hash_collective> ${_n})
  set_tests_properties(hash_collective_np${_n} PROPERTIES LABELS "mpi;hash" TIMEOUT 120
                       RUN_SERIAL ON PASS_REGULAR_EXPRESSION "hash_collective: [0-9]+ ranks, ok")
endforeach()
