#!/usr/bin/env bash
# What a fresh cluster pays that a warmed-up one does not: the same
# redis-benchmark SET run (100-byte values over 100,000 keys, 50
# connections) on a new 3-replica KV cluster, then after WARM more SETs,
# twice. For each: SET/s, the servers' CPU per SET (user+sys of the three
# processes, /proc), their minor page faults per SET and resident memory.
# First touches of memory are what a fresh cluster pays: 0.19 faults per
# SET, about 15 us each on this VM, with the core keeping 1,024 slots of
# 110 KB batches (core/README.md, "Bodies kept for catch-up").
#
#   bench/fresh_vs_warm.sh [rounds]                     (default 1)
# DURABILITY=wal|memory (default wal), P (default 16), N requests per run
# (default 300000), WARM (default 1500000); EXTRA="--log-retain-bytes 0"
# adds rabiad arguments and EXTRA_B another set, alternated with EXTRA in
# each round. Servers on CPU 0, redis-benchmark on CPU 1. Ports 18601-18803.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-1}
[ -x build/cmd/rabiad ] || { echo "fresh_vs_warm.sh: build first (cmake --build build)" >&2; exit 1; }
command -v redis-benchmark >/dev/null || { echo "fresh_vs_warm.sh: redis-benchmark missing (apt-get install redis-tools)" >&2; exit 1; }
export RABIA_RESP_BASE=18600 RABIA_CLIENT_BASE=18700 RABIA_PEER_BASE=18800
P=${P:-16}
N=${N:-300000}
WARM=${WARM:-1500000}
dir=""
cleanup() {
  [ -n "$dir" ] && { RABIA_CLUSTER_DIR=$dir ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
  return 0
}
trap cleanup EXIT
pid() { cat "$dir/r$1.pid"; }
cpu() { local t=0 i; for i in 1 2 3; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$(pid "$i")/stat"))); done; echo "$t"; }
flt() { local t=0 i; for i in 1 2 3; do t=$((t + $(awk '{ print $10 }' "/proc/$(pid "$i")/stat"))); done; echo "$t"; }
rss() { local i; for i in 1 2 3; do awk '/VmRSS/ { printf "%d ", $2 / 1024 }' "/proc/$(pid "$i")/status"; done; }
tck=$(getconf CLK_TCK)
run() { # NAME REQUESTS
  local c0 f0 c1 f1 out
  c0=$(cpu)
  f0=$(flt)
  out=$(taskset -c 1 redis-benchmark -p $((RABIA_RESP_BASE + 1)) -t set -d 100 -r 100000 -n "$2" -c 50 -P "$P" -q 2>&1 |
    grep -o "SET: [0-9.]* requests per second" | tail -n 1 | awk '{ printf "%.0f", $2 }')
  c1=$(cpu)
  f1=$(flt)
  printf '  %-8s %8s SET/s  %5s us CPU/SET  %6s faults/SET  RSS MiB %s\n' "$1" "$out" \
    "$(awk -v a="$c0" -v b="$c1" -v n="$2" -v t="$tck" 'BEGIN { printf "%.2f", (b - a) / t * 1e6 / n }')" \
    "$(awk -v a="$f0" -v b="$f1" -v n="$2" 'BEGIN { printf "%.3f", (b - a) / n }')" "$(rss)"
}
sets=("${EXTRA:-}")
[ -n "${EXTRA_B+x}" ] && sets+=("$EXTRA_B")
for ((r = 1; r <= rounds; r++)); do
  for extra in "${sets[@]}"; do
    dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-warm.XXXXXX")
    export RABIA_CLUSTER_DIR=$dir RABIA_EXTRA_ARGS="--durability ${DURABILITY:-wal} $extra"
    taskset -c 0 ./deploy/local-cluster.sh start 3 kv >/dev/null
    echo "round $r: durability ${DURABILITY:-wal}, -P $P, rabiad ${extra:-(defaults)}"
    run fresh "$N"
    run warm-up "$WARM"
    run warm "$N"
    run warm "$N"
    cleanup
    dir=""
  done
done
