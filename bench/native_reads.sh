#!/usr/bin/env bash
# Native clients' reads by the read index against the log: a 3-replica KV
# cluster started with `read-index yes`, then `no`, ROUNDS times in turn;
# each prefilled with 300,000 SETs over 100,000 keys (100-byte values),
# then rabia-bench --proto native, 50 connections spread over the three
# replicas, 100% and 50% reads at pipeline 1 and 16. One CSV row per test:
# throughput, p50, p99, errors, server CPU per request (user+sys of the
# three replicas from /proc over the measured run and its warm-up, scaled
# to the measured part) and the reads the three replicas answered by the
# index (INFO reads_indexed, cumulative over the cluster's life).
#
#   bench/native_reads.sh [seconds]          (default 5 per test)
# DURABILITY=wal|memory (default wal), ROUNDS (default 2), OUT=file.csv
# (default: stdout only). Placement: servers on CPU 0, rabia-bench on CPU 1
# (SERVER_CPUS / CLIENT_CPUS). Ports 33000-34300. Results: bench/README.md
# "Reads by the read index".
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
secs=${1:-5}
dur=${DURABILITY:-wal}
rounds=${ROUNDS:-2}
server_cpus=${SERVER_CPUS:-0}
client_cpus=${CLIENT_CPUS:-1}
bench=${RABIA_BENCH:-build/cmd/rabia-bench}
[ -x "$bench" ] || { echo "native_reads.sh: $bench missing: build first (cmake --build build)" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "native_reads.sh: redis-cli missing (apt-get install redis-tools)" >&2; exit 1; }
bench_local_cluster nreads
header="round,read_index,durability,read_ratio,pipeline,req_s,p50_us,p99_us,errors,server_cpu_us_per_req,reads_indexed"
bench_csv_header "$header"
for ((round = 1; round <= rounds; round++)); do
  for ri in yes no; do
    rm -rf "$RABIA_CLUSTER_DIR"
    RABIA_EXTRA_ARGS="--durability $dur --read-index $ri" taskset -c "$server_cpus" ./deploy/local-cluster.sh start 3 kv >/dev/null
    sleep 1.5
    taskset -c "$client_cpus" "$bench" run --proto native --addr "$addrs" --connections 50 --pipeline 16 --requests 300000 \
      --warmup 0 --quiet >/dev/null
    pids=$(cat "$RABIA_CLUSTER_DIR"/r*.pid)
    for rr in 1.0 0.5; do
      for p in 1 16; do
        # shellcheck disable=SC2086
        c0=$(cpu_of $pids)
        res=$(taskset -c "$client_cpus" "$bench" run --proto native --addr "$addrs" --connections 50 --pipeline "$p" \
          --read-ratio "$rr" --duration "$secs" --warmup 1 --quiet | tail -n 1)
        # shellcheck disable=SC2086
        c1=$(cpu_of $pids)
        req=$(bench_field requests "$res")
        idx=0
        for i in 1 2 3; do
          v=$(redis-cli -p $((RABIA_RESP_BASE + i)) INFO sessions | tr -d '\r' | sed -n 's/^reads_indexed://p')
          idx=$((idx + ${v:-0}))
        done
        cpu=$(awk -v a="$c0" -v b="$c1" -v r="$req" -v s="$secs" 'BEGIN { printf "%.2f", (b - a) * 1e6 / (r > 0 ? r : 1) * s / (s + 1) }')
        row="$round,$ri,$dur,$rr,$p,$(bench_field throughput "$res"),$(bench_field p50_us "$res"),$(bench_field p99_us "$res"),$(bench_field errors "$res"),$cpu,$idx"
        echo "$row"
        [ -n "${OUT:-}" ] && echo "$row" >>"$OUT"
      done
    done
    ./deploy/local-cluster.sh stop >/dev/null
  done
done
