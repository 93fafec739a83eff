# Lineage tests: typed properties, artifacts with properties, models,
# metrics artifacts, executions with type and command line.
cairn_test(test_props)
cairn_test(test_lineage_api TIMEOUT 600)
