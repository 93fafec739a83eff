# MPI runtime tests: real mpirun, oversubscribed, "virtual nodes" through
# mpi.ranks_per_aggregator. Each case runs mpi_log_app and checks the run
# with the independent checker mpi_check_run.
add_executable(mpi_log_app mpirt/mpi_log_app.c)
target_link_libraries(mpi_log_app PRIVATE cairn::cairn MPI::MPI_C Threads::Threads cairn_build_flags)
add_executable(mpi_check_run mpirt/mpi_check_run.c)
target_link_libraries(mpi_check_run PRIVATE cairn_internal cairn_build_flags m)

# NRANKS;RANKS_PER_AGGREGATOR;AGGREGATORS_PER_FILE: 1, 2, 4, 8 and 16 ranks
# with 1, 2 and 4 ranks per aggregator (and one aggregator per node), with
# one file per run or several; and aggregators of a number of ranks that is
# not a power of two (most real nodes: their views' rows are sized to it).
foreach(_case "1;0;16" "1;1;16" "2;1;16" "2;2;16" "2;4;16" "4;1;16" "4;2;1" "4;4;16"
              "8;1;3" "8;2;2" "8;4;16" "16;1;16" "16;2;4" "16;4;2" "16;0;16"
              "6;3;16" "12;0;16")
  list(GET _case 0 _n)
  list(GET _case 1 _rpa)
  list(GET _case 2 _apf)
  add_test(NAME mpi_run_np${_n}_rpa${_rpa}_apf${_apf}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpirt/run_mpi_case.sh
                   $<TARGET_FILE_DIR:mpi_log_app> ${_n} ${_rpa} 300)
  set_tests_properties(mpi_run_np${_n}_rpa${_rpa}_apf${_apf} PROPERTIES LABELS "mpi" TIMEOUT 300
                       RUN_SERIAL ON ENVIRONMENT "AGGS_PER_FILE=${_apf}")
endforeach()
add_test(NAME mpi_run_two_threads_np4_rpa2
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpirt/run_mpi_case.sh
                 $<TARGET_FILE_DIR:mpi_log_app> 4 2 300 side)
set_tests_properties(mpi_run_two_threads_np4_rpa2 PROPERTIES LABELS "mpi" TIMEOUT 300 RUN_SERIAL ON)
# Many small blocks through a small channel: wrap-around and back-pressure.
add_test(NAME mpi_run_small_channel_np8_rpa4
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpirt/run_mpi_case.sh
                 $<TARGET_FILE_DIR:mpi_log_app> 8 4 20000)
set_tests_properties(mpi_run_small_channel_np8_rpa4 PROPERTIES LABELS "mpi" TIMEOUT 300 RUN_SERIAL ON
                     ENVIRONMENT "CHANNEL_BYTES=65536;FLUSH_MS=5")
# MPI_Finalize without the aggregators' ready views: with
# mpi.aggregator_memory 0 they read their logs back; with 4 KiB the view is
# given up during the run (said once) and the log is read back as well.
add_test(NAME mpi_run_log_readback_np8_rpa4
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpirt/run_mpi_case.sh
                 $<TARGET_FILE_DIR:mpi_log_app> 8 4 300)
set_tests_properties(mpi_run_log_readback_np8_rpa4 PROPERTIES LABELS "mpi" TIMEOUT 300
                     RUN_SERIAL ON ENVIRONMENT "AGG_MEMORY=0;AGGS_PER_FILE=1")
add_test(NAME mpi_run_view_over_memory_np8_rpa2
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpirt/run_mpi_case.sh
                 $<TARGET_FILE_DIR:mpi_log_app> 8 2 300)
set_tests_properties(mpi_run_view_over_memory_np8_rpa2 PROPERTIES LABELS "mpi" TIMEOUT 300
                     RUN_SERIAL ON ENVIRONMENT
                     "AGG_MEMORY=4K;LOG_LEVEL=info;EXPECT_LOG=passed mpi.aggregator_memory")
# The aggregator thread runs at mpi.aggregator_nice (read back from the
# kernel, not the configuration): the default 19, and 0 (the ranks').
foreach(_nice 19 0)
  add_test(NAME mpi_run_aggregator_nice${_nice}_np4_rpa2
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpirt/run_mpi_case.sh
                   $<TARGET_FILE_DIR:mpi_log_app> 4 2 300)
  set_tests_properties(mpi_run_aggregator_nice${_nice}_np4_rpa2 PROPERTIES LABELS "mpi"
                       TIMEOUT 300 RUN_SERIAL ON ENVIRONMENT
                       "AGG_NICE=${_nice};LOG_LEVEL=debug;EXPECT_LOG=aggregator thread at nice ${_nice}")
endforeach()

# The aggregators' run views in the huge-page pool (mpi.aggregator_huge_pages):
# the same exact accounting and statistics, two aggregators per file, and
# the pool really used (its debug line) — except under AddressSanitizer,
# where the pool is off by design (io/hugemem.h) and only the accounting
# is checked.
if(CAIRN_SANITIZE MATCHES "address")
  set(_huge_expect "")
else()
  set(_huge_expect ";EXPECT_LOG=run view held in huge-page regions")
endif()
add_test(NAME mpi_run_huge_pages_np8_rpa4
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpirt/run_mpi_case.sh
                 $<TARGET_FILE_DIR:mpi_log_app> 8 4 2000)
set_tests_properties(mpi_run_huge_pages_np8_rpa4 PROPERTIES LABELS "mpi" TIMEOUT 300 RUN_SERIAL ON
                     ENVIRONMENT "HUGE_PAGES=true;LOG_LEVEL=debug${_huge_expect}")

# An unmodified MPI program (not linked with cairn) under LD_PRELOAD.
add_executable(plain_mpi mpirt/plain_mpi.c)
target_link_libraries(plain_mpi PRIVATE MPI::MPI_C)
add_executable(mpi_check_meta mpirt/mpi_check_meta.c)
target_link_libraries(mpi_check_meta PRIVATE cairn_internal cairn_build_flags)
add_test(NAME mpi_ld_preload_unmodified_np4
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpirt/run_meta_case.sh
                 $<TARGET_FILE_DIR:mpi_check_meta> 4 $<TARGET_FILE:cairn> $<TARGET_FILE:plain_mpi>)
set_tests_properties(mpi_ld_preload_unmodified_np4 PROPERTIES LABELS "mpi" TIMEOUT 300 RUN_SERIAL ON)

# A Fortran MPI program linked with cairn.
include(CheckLanguage)
check_language(Fortran)
if(CMAKE_Fortran_COMPILER)
  enable_language(Fortran)
  find_package(MPI COMPONENTS Fortran QUIET)
endif()
if(MPI_Fortran_FOUND)
  add_executable(fortran_app mpirt/fortran_app.f90)
  # cairn first, so its MPI_INIT / MPI_FINALIZE come before the MPI library's.
  target_link_libraries(fortran_app PRIVATE cairn MPI::MPI_Fortran)
  add_test(NAME mpi_fortran_linked_np4
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpirt/run_meta_case.sh
                   $<TARGET_FILE_DIR:mpi_check_meta> 4 - $<TARGET_FILE:fortran_app>)
  set_tests_properties(mpi_fortran_linked_np4 PROPERTIES LABELS "mpi" TIMEOUT 300 RUN_SERIAL ON)
else()
  message(STATUS "cairn: no Fortran MPI compiler; the Fortran capture test is skipped")
endif()

# Killed jobs: SIGKILL keeps everything flushed before it; SIGTERM (what a
# scheduler sends first) leaves complete output.
foreach(_sig KILL TERM)
  add_test(NAME mpi_job_sig${_sig}_np8_rpa4
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpirt/run_kill_case.sh
                   $<TARGET_FILE_DIR:mpi_log_app> 8 4 ${_sig})
  set_tests_properties(mpi_job_sig${_sig}_np8_rpa4 PROPERTIES LABELS "mpi" TIMEOUT 300 RUN_SERIAL ON)
endforeach()

# The application itself hammers MPI and parallel HDF5 while logging from
# two threads: no corruption of its data or ours, no deadlock.
add_executable(mpi_heavy_app mpirt/mpi_heavy_app.c)
target_link_libraries(mpi_heavy_app PRIVATE cairn::cairn MPI::MPI_C ${CAIRN_HDF5_LINK}
                      Threads::Threads cairn_build_flags)
target_include_directories(mpi_heavy_app SYSTEM PRIVATE ${HDF5_C_INCLUDE_DIRS})
add_test(NAME mpi_heavy_app_mpi_and_hdf5_np4_rpa2
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpirt/run_heavy_case.sh
                 $<TARGET_FILE_DIR:mpi_log_app> 4 2 200)
set_tests_properties(mpi_heavy_app_mpi_and_hdf5_np4_rpa2 PROPERTIES LABELS "mpi" TIMEOUT 300 RUN_SERIAL ON)

# The collective flush point: kill the job after the ranks reported points
# they reached together; everything before those points is in the log.
add_test(NAME mpi_job_sigKILL_after_collective_flush_np8_rpa4
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpirt/run_kill_case.sh
                 $<TARGET_FILE_DIR:mpi_log_app> 8 4 KILL cflush=25)
set_tests_properties(mpi_job_sigKILL_after_collective_flush_np8_rpa4 PROPERTIES LABELS "mpi"
                     TIMEOUT 300 RUN_SERIAL ON)

# Lineage at scale: 8 ranks log 10,000 artifacts in 1,000 executions.
add_test(NAME mpi_lineage_10k_artifacts_np8_rpa4
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpirt/run_mpi_case.sh
                 $<TARGET_FILE_DIR:mpi_log_app> 8 4 50 lineage)
set_tests_properties(mpi_lineage_10k_artifacts_np8_rpa4 PROPERTIES LABELS "mpi" TIMEOUT 300
                     RUN_SERIAL ON)
