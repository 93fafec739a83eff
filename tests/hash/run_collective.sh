#!/bin/sh
# run_collective.sh BINARY NRANKS — runs the collective content-hash check
# under mpirun (oversubscribed, root allowed) in a fresh scratch directory.
set -eu
bin=$1; n=$2
tmp=$(mktemp -d /tmp/cairn-hash-mpi-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
  mpirun --oversubscribe -np "$n" "$bin" "$tmp"
