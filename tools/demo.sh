#!/bin/sh
# demo.sh — the README's main job: install what is missing, build, run the
# multi-rank demo training loop under mpirun (4 ranks as 2 "virtual nodes"
# of 2 ranks, so two aggregators) and show what its run directory holds.
set -eu
cd "$(dirname "$0")/.."
./tools/bootstrap.sh
BUILD=${CAIRN_BUILD_DIR:-build}
NP=${CAIRN_DEMO_RANKS:-4}
runs="$PWD/cairn-runs"
# Open MPI refuses root without these; --oversubscribe runs more ranks than cores.
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  mpirun --oversubscribe -np "$NP" -x CAIRN_RUN_DIR="$runs" -x CAIRN_MPI_RANKS_PER_AGGREGATOR=2 \
  ./"$BUILD"/examples/mpi_train_demo "${1:-300}"
run_dir="$runs/$(ls -1t "$runs" | head -n 1)"
echo
echo "== output: $run_dir =="
ls -l "$run_dir"
echo
./"$BUILD"/tools/cairn-dump "$run_dir"
echo
echo "== per-rank compute time of the first steps (rank 1 is the straggler) =="
./"$BUILD"/tools/cairn dump "$run_dir" --series compute_s --ranks | head -n 4
