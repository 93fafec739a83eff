# The lineage database. One fixture (tests/db/make_fixture.sh) produces real
# multi-rank runs with mpirun — A, B continuing from A's model, C crashed —
# and merges A and B into fixture.db; the tests of every command use it
# (FIXTURES_REQUIRED db_fixture) and read the results back with the sqlite3
# Python module, an independent reader.
add_executable(lineage_app db/lineage_app.c)
target_link_libraries(lineage_app PRIVATE cairn::cairn MPI::MPI_C cairn_build_flags)
set(CAIRN_DB_FIXTURE ${CMAKE_CURRENT_BINARY_DIR}/db_fixture)
add_test(NAME db_fixture_runs
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/db/make_fixture.sh $<TARGET_FILE_DIR:lineage_app>
                 $<TARGET_FILE:cairn_cli> ${CAIRN_DB_FIXTURE})
set_tests_properties(db_fixture_runs PROPERTIES FIXTURES_SETUP db_fixture LABELS "mpi;db"
                     TIMEOUT 300 RUN_SERIAL ON)

# `cairn merge`: the MLMD v10 schema and CMF names, values against the run
# directory, merge twice, killed mid-transaction, a crashed run's WAL,
# corrupt and foreign files, concurrent merges, database into database,
# hostile names, usage errors.
foreach(_case schema roundtrip twice kill crashed corrupt concurrent dbmerge hostile errors)
  add_test(NAME db_merge_${_case}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/db/test_merge.py
                   $<TARGET_FILE:cairn_cli> ${CAIRN_DB_FIXTURE} ${_case})
  set_tests_properties(db_merge_${_case} PROPERTIES FIXTURES_REQUIRED db_fixture LABELS "db"
                       TIMEOUT 300)
endforeach()

# The threaded merge paths without MPI; tools/test.sh runs this one under
# ThreadSanitizer too.
add_test(NAME db_merge_threads
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/db/merge_threads.sh $<TARGET_FILE:h5_fixture>
                 $<TARGET_FILE:cairn_cli> ${CMAKE_CURRENT_BINARY_DIR}/db_merge_threads)
set_tests_properties(db_merge_threads PROPERTIES LABELS "db;stress" TIMEOUT 300)
