#!/bin/sh
# check_layout.sh PREFIX VERSION SOVERSION SOURCE_DIR WORK_DIR — checks what
# `cmake --install` put into PREFIX: the libraries (shared with its SONAME
# chain, and static), the header and its version macros, the tools, the CMake
# config package, cairn.pc, the HDF5 plugin and the docs; and that no
# installed CMake or pkg-config file refers to the source or build tree.
set -eu
prefix=$1; version=$2; soversion=$3; src=$4; work=$5
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
have() { [ -e "$prefix/$1" ] || bad "missing $1"; }

libdir=lib
[ -e "$prefix/lib/libcairn.so" ] || libdir=lib64
for f in "$libdir/libcairn.so" "$libdir/libcairn.so.$soversion" "$libdir/libcairn.so.$version" \
         "$libdir/libcairn.a" include/cairn.h bin/cairn bin/cairn-dump bin/cairn-wal-dump \
         "$libdir/cmake/cairn/cairnConfig.cmake" "$libdir/cmake/cairn/cairnConfigVersion.cmake" \
         "$libdir/cmake/cairn/cairnTargets.cmake" "$libdir/pkgconfig/cairn.pc" \
         "$libdir/hdf5/plugin/libcairn_h5zstd.so" \
         share/doc/cairn/README.md share/doc/cairn/config.md share/doc/cairn/format.md \
         share/doc/cairn/examples/cmake_find_package/CMakeLists.txt \
         share/doc/cairn/examples/pkgconfig/Makefile \
         share/doc/cairn/examples/ld_preload/app.c \
         share/doc/cairn/examples/static_link/CMakeLists.txt \
         share/doc/cairn/examples/static_link/README.md; do
  have "$f"
done
[ -L "$prefix/$libdir/libcairn.so" ] || bad "$libdir/libcairn.so is not a symlink (namelink)"
[ -L "$prefix/$libdir/libcairn.so.$soversion" ] || bad "$libdir/libcairn.so.$soversion is not a symlink"

soname=$(readelf -d "$prefix/$libdir/libcairn.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libcairn.so.$soversion" ] || bad "SONAME is '$soname', expected libcairn.so.$soversion"

# The API is exported from the shared library, internals are not.
syms=$(nm -D --defined-only "$prefix/$libdir/libcairn.so.$version" | awk '{print $3}')
for s in cairn_version cairn_init cairn_metric MPI_Init MPI_Finalize PMPI_Init; do
  echo "$syms" | grep -qx "$s" || bad "libcairn.so does not export $s"
done
if echo "$syms" | grep -q '^cairn__'; then bad "libcairn.so exports internal cairn__ symbols"; fi
# The ABI of cairn.h's inline fast path (CAIRN__INLINE_ABI): exactly these.
abi=$(echo "$syms" | grep '^cairn_abi_' | sort | tr '\n' ' ')
[ "$abi" = "cairn_abi_hot cairn_abi_metric_slow cairn_abi_tls " ] ||
  bad "libcairn.so exports inline-ABI symbols '$abi'"
echo "$syms" | grep -qx cairn_metric_at || bad "libcairn.so does not export cairn_metric_at"

# Header version macros = project() version.
hv=$(awk '/#define CAIRN_VERSION_(MAJOR|MINOR|PATCH)/ {printf "%s%s", sep, $3; sep="."}' "$prefix/include/cairn.h")
[ "$hv" = "$version" ] || bad "cairn.h says version $hv, project() says $version"
# The command's version = project() version.
cv=$("$prefix/bin/cairn" --version)
[ "$cv" = "cairn $version" ] || bad "cairn --version says '$cv', project() says $version"

# Installed metadata is relocatable: nothing points into the source or the
# (now deleted) build tree.
for f in "$prefix/$libdir/cmake/cairn/"*.cmake "$prefix/$libdir/pkgconfig/cairn.pc"; do
  if grep -q -e "$src" -e "$work/build" "$f"; then
    bad "$f refers to the source or build tree:"; grep -n -e "$src" -e "$work/build" "$f" >&2
  fi
done

pcv=$(PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" pkg-config --modversion cairn)
[ "$pcv" = "$version" ] || bad "pkg-config --modversion cairn says $pcv"

[ $fail -eq 0 ] && echo "layout of $prefix: OK"
exit $fail
