#!/bin/sh
# check_config.sh WORK_DIR VERSION PROBE_DIR — checks the installed CMake
# config package and cairn.pc beyond the examples: version compatibility
# (same minor accepted while the major version is 0, a newer minor refused),
# components (static accepted, unknown refused), the targets' interfaces
# (cairn::cairn brings MPI::MPI_C; cairn::cairn_static brings
# CAIRN_STATIC_DEFINE), and relocation: a copy of the prefix at another path
# is found at its new place by both find_package and pkg-config; without
# HDF5 the shared library is still found and the static component is not.
set -eu
work=$1; version=$2; probe=$3
fail() { echo "FAIL: $*" >&2; exit 1; }
major=${version%%.*}
rest=${version#*.}; minor=${rest%%.*}

n=0
extra=
probe() {  # probe PREFIX REQ_VERSION REQ_COMPONENTS -> output in $out
  n=$((n + 1))
  out=$(CMAKE_PREFIX_PATH=$1 cmake -S "$probe" -B "$work/probe$n" -C "$work/init-cache.cmake" \
        -DREQ_VERSION="$2" -DREQ_COMPONENTS="$3" $extra 2>&1) || { echo "$out"; fail "probe configure failed"; }
  rm -rf "$work/probe$n"
  echo "--- find_package(cairn $2${3:+ COMPONENTS $3}) in $1 $extra"
  echo "$out" | grep -e '^-- cairn' || true
}
expect() {  # expect PATTERN WHAT
  echo "$out" | grep -q -e "$1" || fail "$2"
}

probe "$work/prefix" "$major.$minor" ""
expect "cairn_FOUND=1" "find_package(cairn $major.$minor) failed"
expect "cairn_VERSION=$version" "cairn_VERSION is not $version"
expect "cairn::cairn: libs=MPI::MPI_C" "cairn::cairn does not bring MPI::MPI_C"

probe "$work/prefix" "$version" "static"
expect "cairn_FOUND=1" "find_package(cairn COMPONENTS static) failed"
expect "cairn::cairn_static: .*defines=CAIRN_STATIC_DEFINE" "cairn::cairn_static lacks CAIRN_STATIC_DEFINE"

# Without HDF5's development files the shared library is still usable, and
# asking for the static one fails.
extra=-DCMAKE_DISABLE_FIND_PACKAGE_HDF5=ON
probe "$work/prefix" "$major.$minor" ""
expect "cairn_FOUND=1" "find_package(cairn) needs HDF5, which only libcairn.a needs"
probe "$work/prefix" "$major.$minor" "static"
expect "cairn_FOUND=0" "find_package(cairn COMPONENTS static) succeeded without HDF5"
extra=

if [ "$major" -eq 0 ]; then newer="$major.$((minor + 1))"; else newer="$((major + 1)).0"; fi
probe "$work/prefix" "$newer" ""
expect "cairn_FOUND=0" "find_package(cairn $newer) accepted cairn $version"

probe "$work/prefix" "" "no_such_component"
expect "cairn_FOUND=0" "an unknown component was accepted"

# Relocation.
rm -rf "$work/relocated"
cp -a "$work/prefix" "$work/relocated"
libdir=lib; [ -e "$work/relocated/lib/libcairn.so" ] || libdir=lib64
probe "$work/relocated" "$major.$minor" ""
expect "cairn_DIR=$work/relocated/$libdir/cmake/cairn" "the relocated package was not the one found"
expect "cairn_INCLUDE_DIR=$work/relocated/include" "the relocated package points elsewhere for its header"
expect "cairn_PRELOAD_LIBRARY=$work/relocated/$libdir/libcairn.so" "cairn_PRELOAD_LIBRARY is wrong"
inc=$(PKG_CONFIG_PATH=$work/relocated/$libdir/pkgconfig pkg-config --variable=includedir cairn)
[ -f "$inc/cairn.h" ] && [ "$(cd "$inc" && pwd -P)" = "$(cd "$work/relocated/include" && pwd -P)" ] ||
  fail "pkg-config includedir of the relocated copy is $inc"
libs=$(PKG_CONFIG_PATH=$work/relocated/$libdir/pkgconfig pkg-config --libs cairn)
echo "relocated pkg-config --libs cairn: $libs"
case $libs in *"$work/relocated/"*) ;; *) fail "pkg-config --libs does not point into the relocated copy" ;; esac
rm -rf "$work/relocated"
echo "config package and cairn.pc: OK"
