#!/bin/sh
# demo.sh — the README's main job: install what is missing, build, run the
# multi-rank demo training loop under mpirun (4 ranks as 2 "virtual nodes"
# of 2 ranks, so two aggregators), show what its run directory holds, merge
# it into the lineage database, print a short summary and write the report.
set -eu
cd "$(dirname "$0")/.."
./tools/bootstrap.sh
BUILD=${CAIRN_BUILD_DIR:-build}
NP=${CAIRN_DEMO_RANKS:-4}
runs="$PWD/cairn-runs"
# Open MPI refuses root without these; --oversubscribe runs more ranks than cores.
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  mpirun --oversubscribe -np "$NP" -x CAIRN_RUN_DIR="$runs" -x CAIRN_MPI_RANKS_PER_AGGREGATOR=2 \
  -x CAIRN_PIPELINE_NAME=mpi-train-demo \
  ./"$BUILD"/examples/mpi_train_demo "${1:-300}"
run_dir=$(ls -1td "$runs"/*/ | head -n 1)
run_dir=${run_dir%/}
run_id=$(basename "$run_dir")
cairn=./"$BUILD"/tools/cairn
db="$runs/cairn.db"
echo
echo "== output: $run_dir =="
ls -l "$run_dir"
echo
echo "== merge into the lineage database $db =="
"$cairn" merge --quiet --db "$db" "$run_dir"
echo
echo "== the run, from the database =="
"$cairn" show --db "$db" "$run_id" | head -n 40
echo "   ... (cairn show --db $db $run_id prints all of it)"
echo
echo "== per-rank compute time of the first steps (rank 1 is the straggler) =="
"$cairn" metrics --db "$db" "$run_id" --name compute_s --rank 1 --to 2
"$cairn" metrics --db "$db" "$run_id" --name compute_s --rank 0 --to 2
echo
echo "== lineage of the run: what its outputs were made from =="
"$cairn" lineage --db "$db" "$run_id" --up --depth 2 | head -n 25
report="$runs/report-$run_id.html"
"$cairn" report --db "$db" "$run_id" -o "$report"
echo
echo "report: $report (open it in a browser: summary, metric curves, step-time heatmap, lineage)"
echo "database: $db (cairn runs --db $db; cairn --help for the other questions)"
