# `cairn lineage`, `cairn export`, `cairn verify` against the lineage fixture
# (db_tests.cmake). tests/db/test_lineage.py computes the expected graphs
# from the MLMD Event table with Python's sqlite3 module, and works on copies
# when it changes files or the database.
foreach(case help errors up down formats export verify scale)
  add_test(NAME db_lineage_${case}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/db/test_lineage.py
                   $<TARGET_FILE:cairn_cli> ${CMAKE_CURRENT_BINARY_DIR}/db_fixture ${case})
  set_tests_properties(db_lineage_${case} PROPERTIES FIXTURES_REQUIRED db_fixture LABELS "db"
                       TIMEOUT 180)
endforeach()
