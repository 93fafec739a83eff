#!/bin/sh
# run_mpi_case.sh NRANKS RANKS_PER_AGG STEPS [side] — runs mpi_log_app under
# mpirun with "virtual nodes" of RANKS_PER_AGG ranks and checks the run.
# Environment: CHANNEL_BYTES, FLUSH_MS, AGGS_PER_FILE, AGG_MEMORY, AGG_NICE, HUGE_PAGES, LOG_LEVEL
# (passed to cairn as configuration); EXPECT_LOG: a text the job's output
# must contain.
set -eu
bindir=$1; n=$2; rpa=$3; steps=$4; side=${5:-}
tmp=$(mktemp -d /tmp/cairn-mpi-XXXXXX)
out=$(mktemp /tmp/cairn-mpi-out-XXXXXX)
trap 'rm -rf "$tmp" "$out"' EXIT
if [ "$rpa" -eq 0 ]; then aggs=1; else aggs=$(( (n + rpa - 1) / rpa )); fi
# HDF5 files: one per group of mpi.aggregators_per_file aggregators.
apf=${AGGS_PER_FILE:-16}
files=$(( (aggs + apf - 1) / apf ))
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
  mpirun --oversubscribe -np "$n" -x CAIRN_RUN_DIR="$tmp" -x CAIRN_MPI_RANKS_PER_AGGREGATOR="$rpa" \
  -x CAIRN_LOG_LEVEL="${LOG_LEVEL:-warn}" -x CAIRN_MPI_CHANNEL_BYTES="${CHANNEL_BYTES:-8M}" \
  -x CAIRN_DRAIN_FLUSH_INTERVAL_MS="${FLUSH_MS:-100}" -x CAIRN_MPI_AGGREGATORS_PER_FILE="$apf" \
  -x CAIRN_MPI_AGGREGATOR_MEMORY="${AGG_MEMORY:-1G}" -x CAIRN_MPI_AGGREGATOR_NICE="${AGG_NICE:-19}" \
  -x CAIRN_MPI_AGGREGATOR_HUGE_PAGES="${HUGE_PAGES:-false}" \
  "$bindir/mpi_log_app" "$steps" $side >"$out" 2>&1 || { cat "$out"; exit 1; }
cat "$out"
if [ -n "${EXPECT_LOG:-}" ] && ! grep -q "$EXPECT_LOG" "$out"; then
  echo "run_mpi_case: expected the job's output to contain: $EXPECT_LOG" >&2
  exit 1
fi
"$bindir/mpi_check_run" "$tmp" "$n" "$steps" "$files" $side
