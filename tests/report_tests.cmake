# `cairn report`: one self-contained HTML file per run. tests/db/test_report.py
# checks the report of the fixture's runs with independent readers (Python's
# html.parser, the sqlite3 module) and opens it in headless Chromium (a
# screenshot, and the DOM: no script element, the hostile metric name as
# text). The Chromium case is skipped (77) only where Chromium is not
# installed; tools/bootstrap.sh installs it.
foreach(case self_contained content options help_and_errors atomic chromium)
  add_test(NAME report_${case}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/db/test_report.py ${case}
                   $<TARGET_FILE:cairn_cli> ${CAIRN_DB_FIXTURE}
                   ${CMAKE_CURRENT_BINARY_DIR}/report_out)
  set_tests_properties(report_${case} PROPERTIES FIXTURES_REQUIRED db_fixture LABELS "db"
                       TIMEOUT 300 SKIP_RETURN_CODE 77)
endforeach()

# The HTML pieces alone (escaping, invalid UTF-8, gaps, caps): a unit test.
add_executable(test_report_html db/test_report_html.c ${PROJECT_SOURCE_DIR}/tools/report_html.c)
target_include_directories(test_report_html PRIVATE ${PROJECT_SOURCE_DIR}/tools)
target_link_libraries(test_report_html PRIVATE cairn_internal PkgConfig::CRITERION
                      cairn_build_flags m)
add_test(NAME test_report_html COMMAND test_report_html --jobs 2)
set_tests_properties(test_report_html PROPERTIES LABELS "unit;db" TIMEOUT 120)
