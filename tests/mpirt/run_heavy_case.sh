#!/bin/sh
# run_heavy_case.sh BINDIR NRANKS RANKS_PER_AGG STEPS — the application does
# heavy MPI collectives and parallel HDF5 writes of its own while logging from
# two threads; its data and cairn's run must both come out intact.
set -eu
bindir=$1; n=$2; rpa=$3; steps=$4
tmp=$(mktemp -d /tmp/cairn-heavy-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  mpirun --oversubscribe -np "$n" -x CAIRN_RUN_DIR="$tmp/runs" \
  -x CAIRN_MPI_RANKS_PER_AGGREGATOR="$rpa" "$bindir/mpi_heavy_app" "$steps" "$tmp/app.h5"
"$bindir/mpi_check_run" "$tmp/runs" "$n" "$steps" 1 side
