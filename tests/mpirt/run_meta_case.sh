#!/bin/sh
# run_meta_case.sh BINDIR NRANKS PRELOAD_LIB|- PROGRAM — runs PROGRAM under
# mpirun (with PRELOAD_LIB in LD_PRELOAD unless "-") and checks that the run
# holds metadata from every rank.
set -eu
bindir=$1; n=$2; preload=$3; prog=$4
tmp=$(mktemp -d /tmp/cairn-meta-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# A secret in an allowlisted variable must be refused (mpi_check_meta
# checks that its value is nowhere in the run).
set -- --oversubscribe -np "$n" -x CAIRN_RUN_DIR="$tmp" -x CAIRN_MPI_RANKS_PER_AGGREGATOR=2 \
  -x CAIRN_METADATA_ENV=HOME,MY_API_TOKEN -x MY_API_TOKEN=s3cr3t-value
if [ "$preload" != "-" ]; then set -- "$@" -x LD_PRELOAD="$preload"; fi
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun "$@" "$prog"
"$bindir/mpi_check_meta" "$tmp" "$n" secret
