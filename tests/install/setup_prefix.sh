#!/bin/sh
# setup_prefix.sh SOURCE_DIR WORK_DIR GENERATOR — the install tests' fixture:
# configures a fresh build of SOURCE_DIR (no tests, benchmarks or examples),
# builds it, installs it into WORK_DIR/prefix, then deletes the build tree so
# that the tests consume the prefix alone. WORK_DIR/init-cache.cmake (written
# by tests/install_tests.cmake) carries the compiler and the dependencies the
# enclosing build used.
set -eu
src=$1; work=$2; gen=$3
rm -rf "$work/build" "$work/prefix" "$work/relocated" "$work/examples"
cmake -S "$src" -B "$work/build" -G "$gen" -C "$work/init-cache.cmake" \
  -DCMAKE_INSTALL_PREFIX="$work/prefix" \
  -DCAIRN_BUILD_TESTS=OFF -DCAIRN_BUILD_BENCH=OFF -DCAIRN_BUILD_EXAMPLES=OFF
cmake --build "$work/build" -j "${CAIRN_INSTALL_TEST_JOBS:-2}"
cmake --install "$work/build"
rm -rf "$work/build"
echo "installed into $work/prefix:"
(cd "$work/prefix" && find . -type f -o -type l | sort)
