#!/bin/sh
# run_collective_artifact.sh BINDIR NRANKS — runs artifact_collective under
# mpirun (oversubscribed, root allowed) in a scratch directory, then checks
# its run with check_collective.
set -eu
bindir=$1; n=$2
tmp=$(mktemp -d /tmp/cairn-artcoll-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
  mpirun --oversubscribe -np "$n" -x CAIRN_RUN_DIR="$tmp/runs" -x CAIRN_LOG_LEVEL=error \
  "$bindir/artifact_collective" "$tmp"
"$bindir/check_collective" "$tmp/runs" "$tmp"
