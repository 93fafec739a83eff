#!/bin/sh
# merge_threads.sh H5_FIXTURE CAIRN DIR — the threaded paths of `cairn
# merge`, small enough for ThreadSanitizer (tools/test.sh runs it in the TSan
# build): a run directory of one HDF5 file (reading, compressing and
# inserting threads), the same run again (the unchanged path), and a
# database into another (a view walked by a compressing thread). Needs no
# MPI job.
set -eu
fixture=$1 cairn=$2 dir=$3
rm -rf "$dir"
mkdir -p "$dir"
"$fixture" "$dir/run"
out=$("$cairn" merge --quiet --db "$dir/a.db" "$dir/run")
echo "$out" | grep -q "1 run added, 0 unchanged, 0 failed" || { echo "first merge: $out" >&2; exit 1; }
out=$("$cairn" merge --quiet --db "$dir/a.db" "$dir/run")
echo "$out" | grep -q "0 runs added, 1 unchanged, 0 failed" || { echo "second merge: $out" >&2; exit 1; }
out=$("$cairn" merge --quiet --db "$dir/b.db" "$dir/a.db")
echo "$out" | grep -q "1 run added, 0 unchanged, 0 failed" || { echo "db merge: $out" >&2; exit 1; }
n=$("$cairn" runs --db "$dir/b.db" --csv | tail -n +2 | wc -l)
[ "$n" = 1 ] || { echo "runs in b.db: $n" >&2; exit 1; }
echo "threaded merge paths: ok"
