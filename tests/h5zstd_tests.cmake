# Tests of the zstd HDF5 filter (io/h5zstd): in-process registration, the
# stored chunk format, independent readers through the dynamic plugin, and
# the plugin's link hygiene. Included from tests/CMakeLists.txt.

# Independent readers. h5dump and readelf are optional (their tests skip with
# a message); h5py must come from a Python that has it, which on Debian is
# /usr/bin/python3 (python3-h5py), not necessarily the python3 on PATH.
# h5dump is looked for next to HDF5's compiler wrapper first (Spack, modules).
get_filename_component(_h5zstd_h5bin "${HDF5_C_COMPILER_EXECUTABLE}" DIRECTORY)
find_program(CAIRN_H5DUMP_EXECUTABLE h5dump HINTS ${_h5zstd_h5bin})
find_program(CAIRN_READELF_EXECUTABLE readelf)
set(CAIRN_H5PY_PYTHON "/usr/bin/python3" CACHE FILEPATH
    "Python interpreter with h5py, used by test_h5zstd as an independent reader")
foreach(_tool CAIRN_H5DUMP_EXECUTABLE CAIRN_READELF_EXECUTABLE)
  if(NOT ${_tool})
    set(${_tool} "")
  endif()
endforeach()

cairn_test(test_h5zstd TIMEOUT 60)
set_tests_properties(test_h5zstd PROPERTIES LABELS "unit;hdf5")
# The filter is not (yet) part of cairn_internal; link its objects directly.
target_link_libraries(test_h5zstd PRIVATE cairn_h5zstd ${CMAKE_DL_LIBS})
target_compile_definitions(test_h5zstd PRIVATE
  CAIRN_H5ZSTD_PLUGIN_DIR="$<TARGET_FILE_DIR:cairn_h5zstd_plugin>"
  CAIRN_H5ZSTD_PLUGIN_FILE="$<TARGET_FILE:cairn_h5zstd_plugin>"
  CAIRN_H5DUMP="${CAIRN_H5DUMP_EXECUTABLE}"
  CAIRN_READELF="${CAIRN_READELF_EXECUTABLE}"
  CAIRN_H5PY_PYTHON="${CAIRN_H5PY_PYTHON}")
add_dependencies(test_h5zstd cairn_h5zstd_plugin)
