#!/bin/sh
# run_meta_case.sh BINDIR NRANKS PRELOAD_LIB|- PROGRAM — runs PROGRAM under
# mpirun (with PRELOAD_LIB in LD_PRELOAD unless "-") and checks that the run
# holds metadata from every rank.
set -eu
bindir=$1; n=$2; preload=$3; prog=$4
tmp=$(mktemp -d /tmp/cairn-meta-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
set -- --oversubscribe -np "$n" -x CAIRN_RUN_DIR="$tmp" -x CAIRN_MPI_RANKS_PER_AGGREGATOR=2
if [ "$preload" != "-" ]; then set -- "$@" -x LD_PRELOAD="$preload"; fi
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun "$@" "$prog"
"$bindir/mpi_check_meta" "$tmp" "$n"
