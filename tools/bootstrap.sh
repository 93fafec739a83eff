#!/bin/sh
# bootstrap.sh — installs what is missing (Debian/Ubuntu, as root or via
# sudo), configures and builds cairn in ./build. Idempotent: a second run
# installs nothing and rebuilds only what changed.
#
# Environment: CAIRN_BUILD_DIR (default: build), CAIRN_CMAKE_ARGS (extra
# arguments for the first configure), CAIRN_NO_APT=1 to skip package checks.
set -eu
cd "$(dirname "$0")/.."

PKGS="build-essential gfortran cmake pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev \
hdf5-tools libyaml-dev libzstd-dev libcriterion-dev libsqlite3-dev libssl-dev python3-h5py chromium"

if [ "${CAIRN_NO_APT:-0}" != 1 ] && command -v dpkg-query >/dev/null 2>&1; then
  missing=""
  for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "bootstrap: installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
  fi
fi

BUILD=${CAIRN_BUILD_DIR:-build}
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  # shellcheck disable=SC2086
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_WERROR=ON ${CAIRN_CMAKE_ARGS:-}
fi
cmake --build "$BUILD" -j"$(nproc)"
