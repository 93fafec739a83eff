#!/bin/sh
# bench_smoke.sh BENCH_DIR CASE — runs one benchmark of bench/ with tiny
# arguments and checks that it finished and printed the lines that carry its
# figures. No figure is judged (performance targets live in the benchmarks
# themselves, run by hand; bench/README.md): this only keeps every benchmark
# runnable, so that the commands bench/README.md records still work.
set -eu
bin=$1; case=$2
tmp=$(mktemp -d /tmp/cairn-bench-XXXXXX)
out=$tmp/out.txt
trap 'rm -rf "$tmp"' EXIT
export CAIRN_RUN_DIR="$tmp"

# expect PATTERN...: every extended regular expression must match a line.
expect() {
  for p in "$@"; do
    if ! grep -Eq -- "$p" "$out"; then
      cat "$out"
      echo "bench_smoke $case: no line of the output matches: $p" >&2
      exit 1
    fi
  done
}

run() {
  if ! "$@" >"$out" 2>&1; then
    cat "$out"
    echo "bench_smoke $case: '$*' failed" >&2
    exit 1
  fi
}

case $case in
  latency)
    run "$bin/bench_metric_latency" 100000
    expect '^cairn_metric latency, 100000 calls each' \
           '^  cairn_metric \(inline, cairn\.h\) +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +mean' \
           'of which the fast path \([0-9.]+% of calls\) +mean +-?[0-9.]+ ns' \
           '^  targets \(cairn_metric\): p50 <= 4 ns' \
           'records logged ([0-9]+), written ([0-9]+), dropped 0 '
    # every record logged was written: the two counts are the same number
    logged=$(sed -n 's/.*records logged \([0-9]*\), written \([0-9]*\),.*/\1 \2/p' "$out")
    set -- $logged
    [ "$1" = "$2" ] || { cat "$out"; echo "bench_smoke latency: logged $1, written $2" >&2; exit 1; }
    ;;
  aggregator)
    run "$bin/bench_aggregator" 2 10 20 5 1
    expect '^aggregator work per record: 2 ranks x 10 metrics x 20 steps, 5 steps per block: 8 blocks, 400 records' \
           '^  (decode|log|view|aggregator) +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+x$' \
           '^  the log holds [0-9.]+ bytes per record \(zstd level 1\)' \
           '^  finishing the kept view \(400 per-rank samples\): [0-9.]+ s' \
           '^  freeing the finished view' \
           'warm in the caches\): [0-9.]+ ns CPU per record'
    ;;
  h5_size)
    run "$bin/bench_h5_size" 2 100 "$tmp"
    expect 'bytes per per-rank sample' 'lossless floor'
    ;;
  mpi_training)
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
    run mpirun --oversubscribe -np 2 -x CAIRN_RUN_DIR="$tmp" "$bin/bench_mpi_training" 3 2 10 0 4 4
    expect '^synthetic training loop: 2 ranks, 3 steps x 2 rounds per mode, 10 metrics per step per rank' \
           '^  (untracked|cairn|gather_h5|csv) +[0-9.]+ +[-+]?[0-9.]+%' \
           '^  cairn records logged 120, lost 0$' \
           '^  MPI_Finalize \(cairn completes the run.s output\): [0-9.]+ s'
    ;;
  *)
    echo "bench_smoke: unknown case '$case'" >&2
    exit 2
    ;;
esac
cat "$out"
