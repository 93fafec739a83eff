#!/bin/sh
# make_fixture.sh BIN_DIR CAIRN OUT_DIR — the lineage database tests' data:
# run A (4 ranks, 2 per aggregator) trains model A from shards; run B
# continues from model A (lineage across runs); run C crashes half-way (only
# its write-ahead log remains). A and B are merged into OUT_DIR/fixture.db;
# OUT_DIR/runs.env names the run directories (RUN_A, RUN_B, RUN_C) and
# UUIDs (UUID_A, UUID_B, UUID_C).
set -eu
bin=$1 cairn=$2 out=$3
rm -rf "$out"
mkdir -p "$out/data" "$out/A" "$out/B" "$out/C"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
printf 'id,value\n1,2\n3,4\n' > "$out/data/raw.csv"
printf 'hostile file\n' > "$out/data/x'); DROP TABLE Artifact;--"
for i in 0 1 2; do head -c $((100000 + i * 1000)) /dev/urandom > "$out/data/shard-$i.bin"; done
# Under AddressSanitizer (tools/test.sh), leak checking is off for the MPI
# job only (Open MPI leaks at exit); `cairn merge` below keeps it.
run() { # NAME MODEL_IN MODEL_OUT [crash]
  name=$1; shift
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" mpirun --oversubscribe -np 4 -x CAIRN_RUN_DIR="$out/$name" \
    -x CAIRN_MPI_RANKS_PER_AGGREGATOR=2 -x CAIRN_PIPELINE_NAME=cairn-test \
    "$bin/lineage_app" "$out/data" "$@" 200 ${crash:-} >"$out/$name.log" 2>&1
}
run A - "$out/data/model-A.ckpt"
run B "$out/data/model-A.ckpt" "$out/data/model-B.ckpt"
crash=crash run C - "$out/data/model-C.ckpt" || true
: > "$out/runs.env"
for n in A B C; do
  d=$(ls -d "$out/$n"/*/ | head -n 1)
  d=${d%/}
  echo "RUN_$n='$d'" >> "$out/runs.env"
  echo "UUID_$n='$(basename "$d")'" >> "$out/runs.env"
done
. "$out/runs.env"
ls "$RUN_C" | grep -q '\.cwal$' || { echo "make_fixture: run C left no WAL" >&2; exit 1; }
if ls "$RUN_C" | grep -q '\.h5$'; then echo "make_fixture: run C was not a crash" >&2; exit 1; fi
"$cairn" merge --quiet --db "$out/fixture.db" "$RUN_A" "$RUN_B"
echo "fixture ready in $out"
