# Lineage tests: typed properties, artifacts with properties, models,
# metrics artifacts, executions with type and command line.
cairn_test(test_props)
