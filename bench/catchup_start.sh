#!/usr/bin/env bash
# How soon a restarted replica gets its first slot from its peers' logs.
# A 3-replica KV cluster (durability wal, default 64 MiB segments) takes
# 300,000 SETs of 100-byte values at -P 16 (about 130 MiB of log: the next
# slot lies in a later segment than the first), replica 3 is killed with -9,
# 100,000 SETs at -P 1 pass (about 2,000 slots: more than the 1,024 the core
# keeps in memory, so the logs serve them), and replica 3 starts again.
# Prints when it answered, when its applied slot first moved, when the three
# converged, what replicas 1 and 2 read from disk meanwhile (/proc/PID/io),
# and replica 1's catch-up counters (INFO wal_catchup_*).
#
#   bench/catchup_start.sh [rounds]            (default 2)
# RABIAD_B=PATH alternates another build with build/cmd/rabiad (RABIAD) in
# each round. Ports 18601-18803; data under $BENCH_DIR (default /var/tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
builds=("${RABIAD:-$PWD/build/cmd/rabiad}")
[ -n "${RABIAD_B:-}" ] && builds+=("$RABIAD_B")
cli=${RABIA_CLI:-build/cmd/rabia-cli}
for b in "${builds[@]}" "$cli"; do [ -x "$b" ] || { echo "catchup_start.sh: $b missing: build first" >&2; exit 1; }; done
command -v redis-benchmark >/dev/null || { echo "catchup_start.sh: redis-benchmark missing (apt-get install redis-tools)" >&2; exit 1; }
export RABIA_RESP_BASE=18600 RABIA_CLIENT_BASE=18700 RABIA_PEER_BASE=18800 RABIA_EXTRA_ARGS="--durability wal"
dir=""
cleanup() {
  [ -n "$dir" ] && { RABIA_CLUSTER_DIR=$dir/c ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
  return 0
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
applied() { timeout 5 "$cli" -a "127.0.0.1:$((RABIA_CLIENT_BASE + $1))" --timeout 500 status 2>/dev/null | sed -n 's/^applied: //p' || true; }
hash_of() { timeout 5 "$cli" -a "127.0.0.1:$((RABIA_CLIENT_BASE + $1))" --timeout 500 status 2>/dev/null | sed -n 's/^state_hash: //p' || true; }
# bytes replicas 1 and 2 read from storage (/proc/PID/io read_bytes), in MiB
read_mib() {
  local i t=0 v
  for i in 1 2; do
    v=$(awk '/^read_bytes:/ { print $2 }' "/proc/$(cat "$RABIA_CLUSTER_DIR/r$i.pid")/io")
    t=$((t + v))
  done
  awk -v t="$t" 'BEGIN { printf "%.1f", t / 1048576 }'
}
load() { timeout 120 redis-benchmark -p $((RABIA_RESP_BASE + 1)) -t set -d 100 -r 1000000 -n "$1" -c 50 -P "$2" -q >/dev/null 2>&1; }
for ((r = 1; r <= rounds; r++)); do
  for b in "${builds[@]}"; do
    dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-catchup.XXXXXX")
    export RABIA_CLUSTER_DIR=$dir/c RABIAD=$b
    ./deploy/local-cluster.sh start 3 kv >/dev/null
    load 300000 16
    log_mib=$(du -sm "$RABIA_CLUSTER_DIR/r1/wal" | cut -f1)
    ./deploy/local-cluster.sh kill 3 >/dev/null
    load 100000 1
    rd0=$(read_mib)
    t0=$(now)
    ./deploy/local-cluster.sh restart 3 >/dev/null
    a0="" tup="" tmove="" tconv=""
    for ((k = 0; k < 6000; k++)); do
      a=$(applied 3)
      if [ -n "$a" ] && [ -z "$a0" ]; then a0=$a tup=$(now); fi
      if [ -n "$a0" ] && [ -z "$tmove" ] && [ "$a" != "$a0" ]; then tmove=$(now); fi
      if [ -n "$tmove" ] && [ "$a" = "$(applied 1)" ] && [ "$(hash_of 3)" = "$(hash_of 1)" ]; then tconv=$(now); break; fi
      sleep 0.01
    done
    [ -n "$tconv" ] || { echo "catchup_start.sh: replica 3 did not converge (applied ${a:-?})" >&2; exit 1; }
    rd1=$(read_mib)
    info=$(redis-cli -p $((RABIA_RESP_BASE + 1)) INFO | tr -d '\r' | grep -E '^wal_catchup_(slots|requests|reads_continued):' | tr '\n' ' ')
    echo "round $r $b: log ${log_mib} MiB; replica 3 answered +$(since "$t0" "$tup") s, first slot +$(since "$t0" "$tmove") s ($(since "$tup" "$tmove") s after answering), converged +$(since "$t0" "$tconv") s; replicas 1+2 read $(awk -v a="$rd0" -v b="$rd1" 'BEGIN { printf "%.0f", b - a }') MiB from disk; replica 1: $info"
    cleanup
    dir=""
  done
done
