#!/usr/bin/env bash
# Side-by-side benchmark, one run: redis-benchmark against a 3-replica rabia
# KV cluster and against a plain redis-server, same client flags.
#   bench/cluster_vs_redis.sh [requests]      (default 200000 per test)
# Placement: every server process (the 3 replicas, redis-server) on CPU 0,
# redis-benchmark on CPU 1 (set SERVER_CPUS / CLIENT_CPUS to change).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
server_cpus=${SERVER_CPUS:-0}
client_cpus=${CLIENT_CPUS:-1}
dir=$(mktemp -d /tmp/rabia-bench.XXXXXX)
export RABIA_CLUSTER_DIR=$dir/cluster RABIA_RESP_BASE=16400 RABIA_CLIENT_BASE=17400 RABIA_PEER_BASE=17500
redis_port=16399
redis_pid=""
cleanup() {
  ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install redis-server" >&2; exit 1; }

taskset -c "$server_cpus" ./deploy/local-cluster.sh start 3 kv >/dev/null
taskset -c "$server_cpus" redis-server --port $redis_port --save "" --appendonly no --daemonize no \
  --dir "$dir" --logfile "$dir/redis.log" &
redis_pid=$!
for _ in $(seq 50); do redis-cli -p $redis_port ping >/dev/null 2>&1 && break; sleep 0.1; done

# run TARGET_PORT ARGS... -> prints "rps p50 p99" for each test in -t order
run() {
  local port=$1; shift
  taskset -c "$client_cpus" redis-benchmark -p "$port" --csv "$@" 2>/dev/null |
    awk -F',' 'NR>1 { gsub(/"/,""); print $2, $5, $7 }'
}
printf '%-34s %14s %14s %8s\n' "test (50 clients unless noted)" "rabia 3 repl." "redis-server" "ratio"
for p in 1 16; do
  mapfile -t ra < <(run $((RABIA_RESP_BASE + 1)) -t set,get -n "$n" -c 50 -P $p)
  mapfile -t rr < <(run $redis_port -t set,get -n "$n" -c 50 -P $p)
  for i in 0 1; do
    name=$([ $i = 0 ] && echo SET || echo GET)
    read -r r_rps r_p50 r_p99 <<<"${ra[$i]}"
    read -r s_rps s_p50 s_p99 <<<"${rr[$i]}"
    printf '%-34s %14s %14s %8s\n' "$name -P $p (req/s)" "$r_rps" "$s_rps" "$(awk -v a="$r_rps" -v b="$s_rps" 'BEGIN{printf "%.2f", a/b}')"
    printf '%-34s %14s %14s\n' "  p50 / p99 (ms)" "$r_p50 / $r_p99" "$s_p50 / $s_p99"
  done
done
# low load: one client, no pipelining
mapfile -t ra < <(run $((RABIA_RESP_BASE + 1)) -t set -n 5000 -c 1 -P 1)
mapfile -t rr < <(run $redis_port -t set -n 5000 -c 1 -P 1)
read -r r_rps r_p50 r_p99 <<<"${ra[0]}"
read -r s_rps s_p50 s_p99 <<<"${rr[0]}"
printf '%-34s %14s %14s\n' "SET 1 client -P 1: p50 / p99 (ms)" "$r_p50 / $r_p99" "$s_p50 / $s_p99"
printf '%-34s %14s %14s\n' "  (req/s)" "$r_rps" "$s_rps"
echo "servers on CPU $server_cpus, redis-benchmark on CPU $client_cpus; $n requests per test; redis-server without persistence"
