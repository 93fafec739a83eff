# Tests of the automatic run metadata (runtime/src/runmeta.c). They spawn
# the git CLI to build repositories; the library itself never does.
cairn_test(test_runmeta TIMEOUT 60)
