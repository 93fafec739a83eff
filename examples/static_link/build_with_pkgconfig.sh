#!/bin/sh
# build_with_pkgconfig.sh [OUTPUT] — links app.c with libcairn.a using
# pkg-config and mpicc (no CMake). Needs cairn.pc on PKG_CONFIG_PATH
# (export PKG_CONFIG_PATH=<cairn prefix>/lib/pkgconfig, or spack load cairn).
#
# `pkg-config --static --libs cairn` lists libcairn and what the archive
# needs; -lcairn would pick libcairn.so, so it is rewritten to -l:libcairn.a
# (GNU ld, gold, lld). Never link both libcairn.a and libcairn.so into one
# program: cairn would start twice. -DCAIRN_STATIC_DEFINE declares the API
# without shared-library visibility attributes.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-app}
# shellcheck disable=SC2046  # pkg-config's flags are meant to be split into words
${MPICC:-mpicc} -DCAIRN_STATIC_DEFINE $(pkg-config --cflags cairn) "$here/app.c" -o "$out" \
  $(pkg-config --static --libs cairn | sed 's/-lcairn\>/-l:libcairn.a/')
