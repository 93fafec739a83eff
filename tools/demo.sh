#!/bin/sh
# demo.sh — the README's main job: install what is missing, build, run the
# standalone demo training loop and show what its run directory holds.
set -eu
cd "$(dirname "$0")/.."
./tools/bootstrap.sh
BUILD=${CAIRN_BUILD_DIR:-build}
out=$(mktemp)
./"$BUILD"/examples/train_demo "${1:-2000}" | tee "$out"
run_dir=$(sed -n 's/^train_demo: output in //p' "$out")
rm -f "$out"
echo
echo "== contents of $run_dir (read back with cairn-wal-dump) =="
ls -l "$run_dir"
./"$BUILD"/tools/cairn-wal-dump "$run_dir"
