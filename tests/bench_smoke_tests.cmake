# The benchmarks of bench/, each run once with tiny arguments
# (tests/bench/bench_smoke.sh): they finish and print the lines that carry
# their figures. Nothing is timed or judged here (bench/README.md); this
# keeps the commands recorded there working.
if(CAIRN_BUILD_BENCH)
  set(_bench_dir $<TARGET_FILE_DIR:bench_metric_latency>)
  foreach(_case latency aggregator)
    add_test(NAME bench_smoke_${_case}
             COMMAND /bin/sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_smoke.sh ${_bench_dir} ${_case})
    set_tests_properties(bench_smoke_${_case} PROPERTIES LABELS "bench" TIMEOUT 120)
  endforeach()
  if(TARGET bench_h5_size)
    add_test(NAME bench_smoke_h5_size
             COMMAND /bin/sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_smoke.sh ${_bench_dir} h5_size)
    set_tests_properties(bench_smoke_h5_size PROPERTIES LABELS "bench" TIMEOUT 120)
  endif()
  add_test(NAME bench_smoke_mpi_training
           COMMAND /bin/sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_smoke.sh ${_bench_dir} mpi_training)
  set_tests_properties(bench_smoke_mpi_training PROPERTIES LABELS "mpi;bench" TIMEOUT 120 RUN_SERIAL ON)
endif()
