#!/usr/bin/env bash
# Where the servers' time goes, in real time (user and kernel): a 3-replica
# KV cluster under redis-benchmark SET (100-byte values over 100,000 keys,
# 50 connections), sampled with `perf record -e cpu-clock` on the servers'
# CPU. This VM has no hardware counters (perf stat prints "not supported"),
# but the software clock samples every CPU; callgrind counts instructions
# and misses what cache misses and the kernel cost (bench/results/
# callgrind.md, "Later the same day").
#
#   bench/perf_profile.sh [wal|memory] [pipeline] [seconds]   (default wal 16 5)
#
# Servers on CPU 0, redis-benchmark on CPU 1 (as durable_vs_redis.sh). The
# profile is kept as $OUT (default /tmp/rabia-perf.data); the top symbols
# and the split by process and object are printed. PERF_ARGS adds perf
# record options (for example "-g").
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-wal}
P=${2:-16}
secs=${3:-5}
out=${OUT:-/tmp/rabia-perf.data}
command -v perf >/dev/null || { echo "perf_profile.sh: perf missing: apt-get install linux-perf" >&2; exit 1; }
command -v redis-benchmark >/dev/null || { echo "perf_profile.sh: redis-benchmark missing: apt-get install redis-tools" >&2; exit 1; }
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-perf.XXXXXX")
bench_pid=
cleanup() {
  if [ -n "$bench_pid" ]; then kill "$bench_pid" 2>/dev/null || true; fi
  RABIA_CLUSTER_DIR=$dir ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
port=${PERF_PORT_BASE:-15400}
RABIA_CLUSTER_DIR=$dir RABIA_RESP_BASE=$port RABIA_CLIENT_BASE=$((port + 1000)) RABIA_PEER_BASE=$((port + 1100)) \
  RABIA_EXTRA_ARGS="--durability $dur ${RABIAD_ARGS:-}" taskset -c 0 ./deploy/local-cluster.sh start 3 kv >/dev/null
# warm up (the key space fills, the log preallocates), then profile a steady load
redis-benchmark -p $((port + 1)) -t set -d 100 -r 100000 -n 20000 -c 50 -P "$P" -q >/dev/null 2>&1
taskset -c 1 redis-benchmark -p $((port + 1)) -t set -d 100 -r 100000 -n 100000000 -c 50 -P "$P" -q >/dev/null 2>&1 &
bench_pid=$!
sleep 1
# shellcheck disable=SC2086
perf record -e cpu-clock -F 4000 -C 0 ${PERF_ARGS:-} -o "$out" -- sleep "$secs" 2>&1 | tail -n 1
kill "$bench_pid" 2>/dev/null || true
wait "$bench_pid" 2>/dev/null || true
bench_pid=
echo "== CPU 0 by process and object (durability $dur, -P $P)"
perf report -i "$out" --stdio --no-children --sort comm,dso -g none 2>/dev/null | grep -E '^ +[0-9]' | head -n 6
echo "== top symbols"
perf report -i "$out" --stdio --no-children --sort sym -g none 2>/dev/null | grep -E '^ +[0-9]' | head -n 30
echo "(profile kept in $out: perf report -i $out; perf annotate -i $out -s SYMBOL)"
