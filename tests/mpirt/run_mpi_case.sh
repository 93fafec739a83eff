#!/bin/sh
# run_mpi_case.sh NRANKS RANKS_PER_AGG STEPS [side] — runs mpi_log_app under
# mpirun with "virtual nodes" of RANKS_PER_AGG ranks and checks the run.
# Environment: CHANNEL_BYTES, FLUSH_MS, AGGS_PER_FILE (passed to cairn as
# configuration).
set -eu
bindir=$1; n=$2; rpa=$3; steps=$4; side=${5:-}
tmp=$(mktemp -d /tmp/cairn-mpi-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
if [ "$rpa" -eq 0 ]; then aggs=1; else aggs=$(( (n + rpa - 1) / rpa )); fi
# HDF5 files: one per group of mpi.aggregators_per_file aggregators.
apf=${AGGS_PER_FILE:-16}
files=$(( (aggs + apf - 1) / apf ))
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
  mpirun --oversubscribe -np "$n" -x CAIRN_RUN_DIR="$tmp" -x CAIRN_MPI_RANKS_PER_AGGREGATOR="$rpa" \
  -x CAIRN_LOG_LEVEL=warn -x CAIRN_MPI_CHANNEL_BYTES="${CHANNEL_BYTES:-8M}" \
  -x CAIRN_DRAIN_FLUSH_INTERVAL_MS="${FLUSH_MS:-100}" -x CAIRN_MPI_AGGREGATORS_PER_FILE="$apf" \
  "$bindir/mpi_log_app" "$steps" $side
"$bindir/mpi_check_run" "$tmp" "$n" "$steps" "$files" $side
