#!/usr/bin/env bash
# Instructions per request (valgrind --tool=callgrind; this machine has no
# hardware counters), the figure issue 9 tracks: a 3-replica KV cluster in
# memory mode (and with durability wal when DURABILITY=wal) against one
# redis-server with appendfsync always, the same redis-benchmark load (SET,
# 100-byte values over 100,000 keys, 50 connections, -P 16). Every server
# runs under callgrind with instrumentation off; it is switched on (callgrind_control
# -i on) after a warm-up and the counts are dumped after the load, so
# start-up and warm-up are not counted. Instructions are user space only
# (the kernel's share is not seen by valgrind). Sums over all threads of
# all replicas.
#
#   bench/callgrind.sh [requests]            (default 20000)
# RABIAD_ARGS="--io-threads 2" adds rabiad arguments (bench/README.md's
# io-threads table: instructions summed over every thread of each replica).
# With I/O threads the replicas run with RABIA_IO_WAIT=eventfd (their loops
# sleep in ppoll, not in io_uring_enter, across which valgrind 3.19 keeps
# its scheduler lock and starved the other threads: io/README.md); set
# RABIA_IO_WAIT=eventfd for io-threads 0 too to compare K side by side (it
# adds about 2% at -P 16: the eventfd's read and ppoll per wait).
# PROFILE_DIR=DIR keeps each server's dump there (callgrind_annotate DIR/r1.cg.1).
# RABIAD=PATH counts another rabiad build (default build/cmd/rabiad).
# PIPELINE=P sets redis-benchmark's -P (default 16); RETRANSMIT_MS the
# replicas' retransmit-ms (default 2000, see below).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
dur=${DURABILITY:-memory}
pipeline=${PIPELINE:-16}
# Valgrind runs each replica 20-50x slower: the 20 ms retransmission timer
# then resends BATCH bodies that were never lost (INFO retransmits is 0 in
# the same load without valgrind), and those copies and checksums were 18%
# of the instructions counted with the log. The replicas' retransmits are
# printed after the load: 0 means the count is the steady state's.
retransmit_ms=${RETRANSMIT_MS:-2000}
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind missing: apt-get install valgrind" >&2; exit 1; }
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-callgrind.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
members="1=127.0.0.1:12701,2=127.0.0.1:12702,3=127.0.0.1:12703"
if [ -z "${RABIA_IO_WAIT:-}" ] && grep -Eq -- '--io-threads[ =]*([1-9]|auto)' <<<"${RABIAD_ARGS:-}"; then
  export RABIA_IO_WAIT=eventfd
fi
io_wait=${RABIA_IO_WAIT:-enter}
for i in 1 2 3; do
  mkdir -p "$dir/r$i"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/r$i.cg" \
    "${RABIAD:-build/cmd/rabiad}" --id "$i" --members "$members" --state-machine kv --data-dir "$dir/r$i" \
    --resp-listen "127.0.0.1:1260$i" --client-listen "127.0.0.1:1265$i" --durability "$dur" \
    --retransmit-ms "$retransmit_ms" ${RABIAD_ARGS:-} \
    >"$dir/r$i.log" 2>&1 &
  pids+=($!)
  disown
done
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/redis.cg" \
  redis-server --port 12699 --dir "$dir" --save "" --appendonly yes --appendfsync always >"$dir/redis.log" 2>&1 &
pids+=($!)
disown
for _ in $(seq 600); do
  ok=1
  for p in 12601 12602 12603 12699; do redis-cli -p $p PING >/dev/null 2>&1 || ok=0; done
  [ $ok = 1 ] && break
  sleep 0.5
done
[ $ok = 1 ] || { echo "callgrind.sh: servers did not come up" >&2; tail -5 "$dir"/*.log >&2; exit 1; }
load() { redis-benchmark -p "$1" -t set -d 100 -r 100000 -n "$2" -c 50 -P "$pipeline" -q >/dev/null 2>&1; }
load 12601 2000; load 12699 2000                     # warm-up, not counted
ir() { # PID -> total Ir of its dumps (every thread)
  callgrind_control -d "$1" >/dev/null
  sleep 1
  local t=0
  for f in "$dir"/*.cg*; do
    [ -f "$f" ] || continue
    grep -q "^pid: $1\$" "$f" 2>/dev/null || continue
    v=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$f" | head -1)
    t=$((t + ${v:-0}))
    [ -n "${PROFILE_DIR:-}" ] && cp "$f" "$PROFILE_DIR/$(basename "$f")"   # keep for callgrind_annotate
    rm -f "$f"
  done
  echo "$t"
}
for p in "${pids[@]:0:3}"; do callgrind_control -z "$p" >/dev/null; callgrind_control -i on "$p" >/dev/null; done
load 12601 "$n"
r=0
for k in 0 1 2; do v=$(ir "${pids[$k]}"); echo "replica $((k + 1)): $v Ir"; r=$((r + v)); done
for p in "${pids[@]:0:3}"; do callgrind_control -i off "$p" >/dev/null; done
echo "retransmits (replicas 1-3, whole run): $(for i in 1 2 3; do redis-cli -p 1260$i INFO 2>/dev/null | tr -d '\r' | sed -n 's/^retransmits://p'; done | tr '\n' ' ')"
callgrind_control -z "${pids[3]}" >/dev/null
callgrind_control -i on "${pids[3]}" >/dev/null
load 12699 "$n"
x=$(ir "${pids[3]}")
echo "redis-server: $x Ir"
printf 'instructions per SET (%d requests, -P %d, 50 connections, durability %s%s): rabia 3 replicas %.0f, redis-server appendfsync always %.0f, ratio %.2f\n' \
  "$n" "$pipeline" "$dur" ", retransmit-ms $retransmit_ms${RABIAD_ARGS:+, $RABIAD_ARGS}, io wait $io_wait" "$(bc -l <<<"$r/$n")" "$(bc -l <<<"$x/$n")" "$(bc -l <<<"$r/$x")"
