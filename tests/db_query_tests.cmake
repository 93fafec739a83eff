# The questions: `cairn runs`, `show`, `metrics`, `diff`, `search`, against
# the lineage fixture (db_tests.cmake). tests/db/test_queries.py reads the
# database independently with Python's sqlite3 module and checks metric
# series against `cairn dump --series`, which reads the run's HDF5 files.
foreach(case help errors runs show metrics hostile diff search csv)
  add_test(NAME db_query_${case}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/db/test_queries.py
                   $<TARGET_FILE:cairn_cli> ${CMAKE_CURRENT_BINARY_DIR}/db_fixture ${case})
  set_tests_properties(db_query_${case} PROPERTIES FIXTURES_REQUIRED db_fixture LABELS "db"
                       TIMEOUT 120)
endforeach()
