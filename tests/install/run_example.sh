#!/bin/sh
# run_example.sh KIND WORK_DIR EXAMPLES_DIR VERSION [CHECKER] — builds one of
# the examples/ projects out of tree against the cairn installed in
# WORK_DIR/prefix, runs it on 4 ranks and checks the run it wrote.
#
#   KIND  cmake            examples/cmake_find_package (find_package(cairn))
#         pkgconfig        examples/pkgconfig (pkg-config + mpicc, Makefile)
#         ld_preload       examples/ld_preload: an MPI binary not linked with
#                          cairn, run as LD_PRELOAD=.../libcairn.so mpirun ...
#         static           examples/static_link (cairn::cairn_static)
#         static_pkgconfig examples/static_link/build_with_pkgconfig.sh
#   CHECKER  optional independent checker (tests/mpirt/mpi_check_meta):
#            CHECKER RUN_PARENT NRANKS
#
# The run is checked with the installed cairn-dump: one run directory,
# all 4 ranks present, complete accounting and, for the instrumented
# examples, every rank's 20 "loss" samples.
# Environment: MPICC, MPIEXEC (defaults mpicc, mpirun); WORK_DIR/init-cache.cmake
# gives the example projects the compiler and dependencies of the enclosing build.
set -eu
kind=$1; work=$2; examples=$3; version=$4; checker=${5:-}
prefix=$work/prefix
mpicc=${MPICC:-mpicc}
mpiexec=${MPIEXEC:-mpirun}
nranks=4
libdir=$prefix/lib
[ -e "$libdir/libcairn.so" ] || libdir=$prefix/lib64
out=$work/examples/$kind
rm -rf "$out"
mkdir -p "$out"
fail() { echo "FAIL ($kind): $*" >&2; exit 1; }

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
cmake_example() {  # cmake_example SOURCE_SUBDIR
  CMAKE_PREFIX_PATH=$prefix cmake -S "$examples/$1" -B "$out/build" -C "$work/init-cache.cmake" \
    >"$out/configure.log" 2>&1 || { cat "$out/configure.log"; fail "configure failed"; }
  cat "$out/configure.log"
  grep -q "Found cairn $version in $libdir/cmake/cairn" "$out/configure.log" ||
    fail "find_package did not find cairn $version in $prefix"
  cmake --build "$out/build" || fail "build failed"
  app=$out/build/app
}
no_libcairn_so() {
  if needed "$app" | grep -q '^libcairn\.so'; then
    needed "$app" >&2; fail "$app needs libcairn.so"
  fi
}

preload=""
instrumented=1
case $kind in
  cmake)
    cmake_example cmake_find_package
    needed "$app" | grep -q '^libcairn\.so\.' || fail "app does not link libcairn.so"
    ;;
  pkgconfig)
    PKG_CONFIG_PATH=$libdir/pkgconfig make -C "$out" -f "$examples/pkgconfig/Makefile" MPICC="$mpicc" ||
      fail "make failed"
    app=$out/app
    needed "$app" | grep -q '^libcairn\.so\.' || fail "app does not link libcairn.so"
    ;;
  ld_preload)
    "$mpicc" "$examples/ld_preload/app.c" -o "$out/app" || fail "mpicc failed"
    app=$out/app
    no_libcairn_so
    if nm "$app" | grep -q ' cairn_'; then fail "the unmodified binary refers to cairn"; fi
    preload=$libdir/libcairn.so
    instrumented=0
    ;;
  static)
    cmake_example static_link
    no_libcairn_so
    ;;
  static_pkgconfig)
    MPICC=$mpicc PKG_CONFIG_PATH=$libdir/pkgconfig "$examples/static_link/build_with_pkgconfig.sh" "$out/app" ||
      fail "build_with_pkgconfig.sh failed"
    app=$out/app
    no_libcairn_so
    ;;
  *) fail "unknown kind" ;;
esac
case $kind in static*)
  # cairn's own MPI_Init is in the binary, ahead of the MPI library's.
  nm "$app" | grep -q ' T MPI_Init$' || fail "MPI_Init is not defined in the statically linked binary"
esac

runs=$out/runs
mkdir -p "$runs"
set -- -np "$nranks"
if "$mpiexec" --version 2>/dev/null | grep -q -E "Open MPI|OpenRTE|Open RTE"; then
  set -- --oversubscribe "$@"
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
echo "running: ${preload:+LD_PRELOAD=$preload }CAIRN_RUN_DIR=$runs $mpiexec $* $app"
if [ -n "$preload" ]; then
  LD_PRELOAD=$preload CAIRN_RUN_DIR=$runs "$mpiexec" "$@" "$app" >"$out/run.log" 2>&1 || {
    cat "$out/run.log"; fail "mpirun failed"; }
else
  CAIRN_RUN_DIR=$runs "$mpiexec" "$@" "$app" >"$out/run.log" 2>&1 || {
    cat "$out/run.log"; fail "mpirun failed"; }
fi
cat "$out/run.log"

set -- "$runs"/*
[ $# -eq 1 ] && [ -d "$1" ] || fail "expected one run directory in $runs, found: $*"
run=$1
ls -l "$run"
set -- "$run"/run-g*.h5
[ -f "$1" ] || fail "no HDF5 run file in $run"
set -- "$run"/wal-r*.cwal
[ ! -e "$1" ] || fail "write-ahead log left behind in $run after a clean finish"
if [ $instrumented -eq 1 ]; then
  grep -q "^cairn $version: run $run\$" "$out/run.log" ||
    fail "the program did not report cairn_version() $version and its run directory"
fi
"$prefix/bin/cairn-dump" "$run" >"$out/dump.txt" || { cat "$out/dump.txt"; fail "cairn-dump failed"; }
cat "$out/dump.txt"
grep -q "ranks: $nranks logged of $nranks declared" "$out/dump.txt" || fail "not every rank is in the run"
grep -q "complete: logged = written + dropped on every rank" "$out/dump.txt" || fail "accounting incomplete"
if [ $instrumented -eq 1 ]; then
  awk -v n="$nranks" '$1 == "loss" && $2 == 20 * n && $3 == n { ok = 1 } END { exit !ok }' "$out/dump.txt" ||
    fail "expected $((20 * nranks)) loss samples from $nranks ranks"
fi
if [ -n "$checker" ]; then
  "$checker" "$runs" "$nranks" || fail "$checker rejected the run"
fi
echo "$kind: OK"
