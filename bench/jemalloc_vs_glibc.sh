#!/usr/bin/env bash
# What jemalloc buys rabiad over glibc malloc, side by side in one run:
# rabiad built twice (RABIA_JEMALLOC=ON in build-bench-jemalloc, OFF in
# build-bench-glibc), a 3-replica KV cluster of each (durability memory:
# no disk in the way), the same redis-benchmark load against each (SET,
# 100-byte values over 100,000 keys, 50 connections, -P 1 and -P 16):
# throughput, p50, p99, CPU seconds per request (user+sys of the 3
# replicas, from /proc) and resident memory after the load (VmRSS of the 3
# replicas summed), and the ratios jemalloc/glibc.
#
#   bench/jemalloc_vs_glibc.sh [requests per test]     (default 200000)
# RABIAD_JEMALLOC / RABIAD_GLIBC: use these rabiad binaries instead of
# building (rabia-cli is taken from the same folder). Placement: every
# server process on CPU 0, the load generator on CPU 1 (SERVER_CPUS /
# CLIENT_CPUS to change). ROUNDS (default 2): each test runs that many
# times, alternating the two clusters, and the best throughput is kept
# (the machine is shared: the best run is the least disturbed one).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh # cpu_of, rss_of
n=${1:-200000}
rounds=${ROUNDS:-2}
server_cpus=${SERVER_CPUS:-0}
client_cpus=${CLIENT_CPUS:-1}

build() { # DIR ON|OFF -> path of rabiad
  cmake -S . -B "$1" -DCMAKE_BUILD_TYPE=Release -DRABIA_JEMALLOC="$2" >/dev/null
  cmake --build "$1" -j"${BUILD_JOBS:-2}" --target rabiad rabia-cli >/dev/null
  echo "$1/cmd/rabiad"
}
je_bin=${RABIAD_JEMALLOC:-$(build build-bench-jemalloc ON)}
gl_bin=${RABIAD_GLIBC:-$(build build-bench-glibc OFF)}
# (ldd's output taken whole: grep -q closing the pipe early fails it under pipefail)
je_libs=$(ldd "$je_bin") gl_libs=$(ldd "$gl_bin")
grep -q libjemalloc <<<"$je_libs" || { echo "$je_bin is not linked with jemalloc" >&2; exit 1; }
if grep -q libjemalloc <<<"$gl_libs"; then echo "$gl_bin is linked with jemalloc" >&2; exit 1; fi

dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-jemalloc-bench.XXXXXX")
cleanup() {
  RABIA_CLUSTER_DIR=$dir/je ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true
  RABIA_CLUSTER_DIR=$dir/gl ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

start_cluster() { # NAME BASE BIN
  RABIA_CLUSTER_DIR=$dir/$1 RABIA_RESP_BASE=$2 RABIA_CLIENT_BASE=$(($2 + 1000)) RABIA_PEER_BASE=$(($2 + 1100)) \
    RABIAD=$3 RABIA_CLI=$(dirname "$3")/rabia-cli RABIA_EXTRA_ARGS="--durability memory" \
    taskset -c "$server_cpus" ./deploy/local-cluster.sh start 3 kv >/dev/null
}
start_cluster je 16600 "$je_bin"
start_cluster gl 18600 "$gl_bin"
je_pids=$(cat "$dir"/je/r*.pid)
gl_pids=$(cat "$dir"/gl/r*.pid)


# bench PORT PIDS P -> "rps p50 p99 cpu_us_per_req"
bench() {
  local port=$1 pp=$2 P=$3 c0 c1 out
  # shellcheck disable=SC2086
  c0=$(cpu_of $pp)
  out=$(taskset -c "$client_cpus" timeout 600 redis-benchmark -p "$port" -t set -d 100 -r 100000 -n "$n" -c 50 -P "$P" --csv 2>/dev/null |
    awk -F',' 'NR>1 { gsub(/"/,""); print $2, $5, $7 }')
  [ -n "$out" ] || { echo "redis-benchmark against port $port gave no result" >&2; exit 1; }
  # shellcheck disable=SC2086
  c1=$(cpu_of $pp)
  echo "$out $(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }')"
}
# best of ROUNDS (highest throughput), alternating: "rps p50 p99 cpu"
declare -A best
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '%-22s %12s %12s %10s\n' "SET -d 100 -r 100000" "jemalloc" "glibc" "je/glibc"
for P in 1 16; do
  best[je]="0 0 0 0" best[gl]="0 0 0 0"
  for ((k = 0; k < rounds; k++)); do
    for c in je gl; do
      if [ $c = je ]; then r=$(bench 16601 "$je_pids" $P); else r=$(bench 18601 "$gl_pids" $P); fi
      awk -v a="${r%% *}" -v b="${best[$c]%% *}" 'BEGIN { exit !(a > b) }' && best[$c]=$r
    done
  done
  read -r j_rps j_p50 j_p99 j_cpu <<<"${best[je]}"
  read -r g_rps g_p50 g_p99 g_cpu <<<"${best[gl]}"
  printf '%-22s %12s %12s %10s\n' "-c 50 -P $P req/s" "$j_rps" "$g_rps" "$(ratio "$j_rps" "$g_rps")"
  printf '%-22s %12s %12s %10s\n' "  p50 ms" "$j_p50" "$g_p50" "$(ratio "$j_p50" "$g_p50")"
  printf '%-22s %12s %12s %10s\n' "  p99 ms" "$j_p99" "$g_p99" "$(ratio "$j_p99" "$g_p99")"
  printf '%-22s %12s %12s %10s\n' "  CPU us/request" "$j_cpu" "$g_cpu" "$(ratio "$j_cpu" "$g_cpu")"
done
# shellcheck disable=SC2086
j_rss=$(rss_of $je_pids) g_rss=$(rss_of $gl_pids)
printf '%-22s %12s %12s %10s\n' "VmRSS MiB, 3 replicas" "$j_rss" "$g_rss" "$(ratio "$j_rss" "$g_rss")"
echo "servers on CPU $server_cpus, clients on CPU $client_cpus; $n requests per redis-benchmark run, best of $rounds;" \
  "3 replicas each, durability memory; $(nproc) CPUs; $(awk '/libjemalloc/ { print $3 }' <<<"$je_libs")," \
  "glibc $(ldd --version | head -n 1 | awk '{ print $NF }')"
