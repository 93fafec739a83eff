#!/bin/sh
# run_kill_case.sh BINDIR NRANKS RANKS_PER_AGG SIGNAL [FLUSH] — starts a long
# mpi_log_app job, waits until every rank has reported durable steps, sends
# SIGNAL (KILL or TERM) to all of its ranks at once, and checks what the run
# directory holds:
#   KILL: every step each rank reported durable is there, exact;
#   TERM: the output is complete (accounting closed on every rank).
# FLUSH: flush=25 (each rank on its own, the default) or cflush=25
# (cairn_flush_collective on MPI_COMM_WORLD).
set -eu
bindir=$1; n=$2; rpa=$3; sig=$4; flush=${5:-flush=25}
tmp=$(mktemp -d /tmp/cairn-kill-XXXXXX)
trap 'pkill -9 -f "mpi_log_app 100000" 2>/dev/null || true; rm -rf "$tmp"' EXIT
aggs=$(( (n + rpa - 1) / rpa ))
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  mpirun --oversubscribe -np "$n" -x CAIRN_RUN_DIR="$tmp/runs" \
  -x CAIRN_MPI_RANKS_PER_AGGREGATOR="$rpa" -x CAIRN_DRAIN_FLUSH_INTERVAL_MS=20 \
  "$bindir/mpi_log_app" 100000 sleep=1000 "$flush" > "$tmp/out.txt" 2> "$tmp/err.txt" &
mpirun_pid=$!
# Wait until every rank has reported at least 4 durable points.
for i in $(seq 1 600); do
  ok=1
  for r in $(seq 0 $((n - 1))); do
    c=$(grep -c "^rank $r durable" "$tmp/out.txt" 2>/dev/null || true)
    [ "${c:-0}" -ge 4 ] || { ok=0; break; }
  done
  [ $ok = 1 ] && break
  sleep 0.1
done
[ $ok = 1 ] || { echo "ranks did not report durable steps in time"; cat "$tmp/err.txt"; exit 1; }
pkill -"$sig" -f "mpi_log_app 100000"
wait $mpirun_pid 2>/dev/null || true
echo "killed with SIG$sig after: $(tail -n 1 "$tmp/out.txt")"
if [ "$sig" = KILL ]; then
  "$bindir/mpi_check_run" "$tmp/runs" "$n" 100000 "$aggs" wal durable="$tmp/out.txt"
else
  "$bindir/mpi_check_run" "$tmp/runs" "$n" 100000 "$aggs" wal term
fi
