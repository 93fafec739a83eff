# Lineage tests: typed properties, artifacts with properties, models,
# metrics artifacts, executions with type and command line.
cairn_test(test_props)
cairn_test(test_lineage_api TIMEOUT 600)

# The collective artifact calls of cairn_mpi.h under a real mpirun: the same
# identity with 1, 2, 4 and 7 ranks (each checked against a serial hash),
# recorded once by rank 0.
add_executable(artifact_collective lineage/artifact_collective.c)
target_link_libraries(artifact_collective PRIVATE cairn::cairn MPI::MPI_C cairn_build_flags)
add_executable(check_collective lineage/check_collective.c)
target_link_libraries(check_collective PRIVATE cairn_internal cairn_build_flags)
foreach(_n 1 2 4 7)
  add_test(NAME artifact_collective_np${_n}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/lineage/run_collective_artifact.sh
                   $<TARGET_FILE_DIR:artifact_collective> ${_n})
  set_tests_properties(artifact_collective_np${_n} PROPERTIES LABELS "mpi;lineage" TIMEOUT 300
                       RUN_SERIAL ON
                       PASS_REGULAR_EXPRESSION "check_collective: ${_n} ranks, cairn-merkle")
endforeach()

# Criterion-free, so that it also runs under ThreadSanitizer: application
# threads logging artifacts while the hasher pool hashes.
add_executable(stress_hasher stress_hasher.c)
target_link_libraries(stress_hasher PRIVATE cairn_internal cairn_build_flags)
add_test(NAME stress_hasher COMMAND stress_hasher 6)
set_tests_properties(stress_hasher PROPERTIES LABELS "unit;stress;lineage" TIMEOUT 300
  ENVIRONMENT "CAIRN_LOG_LEVEL=error")
