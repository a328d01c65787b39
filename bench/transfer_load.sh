#!/usr/bin/env bash
# Serving while a wiped replica is rebuilt by a streamed snapshot (issue 8:
# "throttled so the cluster keeps serving").
#   bench/transfer_load.sh [MiB of state]        (default 1024)
# A 3-replica KV cluster (durability wal, log-retain 16). Replica 3 is killed
# and its data dir wiped; the state is loaded through replica 1 (100 KB
# values). Then the same write load (redis-benchmark SET -d 100 -r 100000,
# 50 connections, -P 16) runs against replica 1 in slices of 400,000: before
# replica 3 comes back, while it receives the snapshot (it starts with
# --rejoin, far behind the retained log), and after it installed it. Prints
# each slice's SET/s and p50, and the medians of the three phases with the
# ratios. All processes share this machine's CPUs (no pinning): the sender
# reads and sends up to 4 MiB per loop turn, the receiver writes what comes.
# Data under $BENCH_DIR (default /var/tmp); needs about 3x the state in RAM
# and 4x on disk.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-transfer-bench.XXXXXX")
export RABIA_CLUSTER_DIR=$dir/c RABIA_RESP_BASE=16700 RABIA_CLIENT_BASE=17800 RABIA_PEER_BASE=17900
export RABIA_EXTRA_ARGS="--log-retain ${LOG_RETAIN:-1024} --max-log-size 1073741824 ${EXTRA_ARGS:-}"
cleanup() {
  ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true
  if [ "${KEEP_DIR:-0}" = 1 ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
./deploy/local-cluster.sh start 3 kv >/dev/null
./deploy/local-cluster.sh kill 3 >/dev/null
rm -rf "$RABIA_CLUSTER_DIR/r3"
keys=$((mib * 1048576 / 100000))
t0=$(date +%s.%N)
redis-benchmark -p 16701 -t set -d 100000 -r 100000000 -n "$keys" -c 4 -P 2 -q >/dev/null 2>&1 || true
t1=$(date +%s.%N)
echo "loaded $(redis-cli -p 16701 DBSIZE) keys of 100 KB (~$mib MiB) in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s through replica 1; replica 3 down and wiped"

# one slice of writes at replica 1 (400,000 SETs, about 1-3 s here): "SET/s p50_ms"
slice() {
  timeout 60 redis-benchmark -p 16701 -t set -d 100 -r 100000 -c 50 -P 16 -n 400000 -q 2>/dev/null | tr '\r' '\n' |
    sed -nE 's/^SET: ([0-9.]+) requests per second, p50=([0-9.]+) msec.*/\1 \2/p' | tail -n 1
}

before=() during=() after=()
for i in 1 2 3 4 5; do
  r=$(slice)
  before+=("${r%% *}")
  echo "before:  slice $i: $r"
done
# a wiped replica that ran before must rejoin (the horizon rule: core.h rule 2)
RABIA_EXTRA_ARGS="$RABIA_EXTRA_ARGS --rejoin" ./deploy/local-cluster.sh restart 3 >/dev/null
log=$RABIA_CLUSTER_DIR/r3.log
t0=$(date +%s.%N)
n=0
while ! grep -q "installed snapshot from replica" "$log" 2>/dev/null && ((n < ${MAX_SLICES:-40})); do
  r=$(slice)
  n=$((n + 1))
  grep -q "receiving a snapshot" "$log" 2>/dev/null || { echo "(not receiving yet) $r"; continue; }
  during+=("${r%% *}")
  echo "during:  slice $n: $r"
done
t1=$(date +%s.%N)
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')
if grep -q "installed snapshot from replica" "$log"; then
  echo "$(grep -h "installed snapshot from replica" "$log" | sed 's/.*INFO  //') ($secs s after the restart)"
else
  echo "replica 3 installed no snapshot in $secs s; the senders say: $(grep -h 'behind the retained log' "$RABIA_CLUSTER_DIR"/r[12].log | tail -n 1 | sed 's/.*WARN  //')"
fi
for i in 1 2 3 4 5; do
  r=$(slice)
  after+=("${r%% *}")
  echo "after:   slice $i: $r"
done
med() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2); else print 0 }'; }
mb=$(med ${before[@]+"${before[@]}"})
md=$(med ${during[@]+"${during[@]}"})
ma=$(med ${after[@]+"${after[@]}"})
echo "medians, SET/s: before $mb, during the transfer $md (${#during[@]} slices), after $ma"
awk -v b="$mb" -v d="$md" -v a="$ma" 'BEGIN { if (b > 0) printf "during / before %.2f, after / before %.2f\n", d / b, a / b }'
for i in 1 2; do
  echo "replica $i: $(redis-cli -p $((16700 + i)) INFO persistence | tr -d '\r' | grep -E '^state_transfer(s_sent|_sent_bytes|s_stopped):' | tr '\n' ' ')"
done
