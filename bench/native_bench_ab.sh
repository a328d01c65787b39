#!/usr/bin/env bash
# Two variants of rabia-bench's native driver side by side against one
# 3-replica KV cluster: two builds (of rabia-bench, or of the client
# library it links), or one build with two sets of arguments. A and B in
# turn (the order swapped every round), 50 connections over the three
# replicas, 100% reads and 100% writes at each pipeline depth, prefilled
# 100,000 keys of 100-byte values. One CSV row per test: throughput, p50,
# p99, errors, the servers' CPU per request (user+sys of the three replicas
# from /proc, over the measured run and its warm-up, scaled to the measured
# part) and the generator's (rabia-bench's user+sys, likewise).
#
#   RABIA_BENCH_B=path bench/native_bench_ab.sh [seconds]      (two builds)
#   B_ARGS="--native-cork no" PIPELINES="4 16" bench/native_bench_ab.sh 4
#                                        (the cork on and off, one build)
# RABIA_BENCH_A / RABIA_BENCH_B (default build/cmd/rabia-bench, both),
# A_ARGS / B_ARGS (rabia-bench arguments of each), default 4 s per test,
# PIPELINES (default "1 16"), DURABILITY (default memory), ROUNDS (default
# 3), OUT=file.csv. Servers on CPU 0, rabia-bench on CPU 1 (SERVER_CPUS /
# CLIENT_CPUS). Ports 33000-34300. Results: bench/README.md "Native
# clients: the cork" and "Native clients: one epoll set".
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
secs=${1:-4}
dur=${DURABILITY:-memory}
rounds=${ROUNDS:-3}
server_cpus=${SERVER_CPUS:-0}
client_cpus=${CLIENT_CPUS:-1}
a=${RABIA_BENCH_A:-build/cmd/rabia-bench}
b=${RABIA_BENCH_B:-build/cmd/rabia-bench}
pipelines=${PIPELINES:-1 16}
[ "$a" != "$b" ] || [ "${A_ARGS:-}" != "${B_ARGS:-}" ] ||
  { echo "native_bench_ab.sh: A and B are the same: set RABIA_BENCH_B or B_ARGS" >&2; exit 1; }
for x in "$a" "$b"; do [ -x "$x" ] || { echo "native_bench_ab.sh: $x missing" >&2; exit 1; }; done
bench_local_cluster nab
header="round,build,durability,read_ratio,pipeline,req_s,p50_us,p99_us,errors,server_cpu_us_per_req,bench_cpu_us_per_req"
bench_csv_header "$header"
RABIA_EXTRA_ARGS="--durability $dur" taskset -c "$server_cpus" ./deploy/local-cluster.sh start 3 kv >/dev/null
sleep 1.5
taskset -c "$client_cpus" "$a" run --proto native --addr "$addrs" --connections 50 --pipeline 16 --requests 300000 \
  --warmup 0 --quiet >/dev/null
pids=$(cat "$RABIA_CLUSTER_DIR"/r*.pid)
for ((round = 1; round <= rounds; round++)); do
  order="A B"
  ((round % 2 == 0)) && order="B A"
  for rr in 1.0 0.0; do
    for p in $pipelines; do
      for which in $order; do
        bin=$a args=${A_ARGS:-}
        [ "$which" = B ] && bin=$b args=${B_ARGS:-}
        # shellcheck disable=SC2086
        c0=$(cpu_of $pids)
        # shellcheck disable=SC2086 # $args: words on purpose
        res=$( { /usr/bin/time -f "benchcpu=%U+%S" taskset -c "$client_cpus" "$bin" run --proto native --addr "$addrs" \
          --connections 50 --pipeline "$p" --read-ratio "$rr" --duration "$secs" --warmup 1 --quiet $args | tail -n 1; } 2>&1)
        # shellcheck disable=SC2086
        c1=$(cpu_of $pids)
        req=$(bench_field requests "$res")
        bcpu=$(sed -n 's/.*benchcpu=\([0-9.]*\)+\([0-9.]*\).*/\1 \2/p' <<<"$res" | awk '{ print $1 + $2 }')
        scale() { awk -v c="$1" -v r="$req" -v s="$secs" 'BEGIN { printf "%.2f", c * 1e6 / (r > 0 ? r : 1) * s / (s + 1) }'; }
        row="$round,$which,$dur,$rr,$p,$(bench_field throughput "$res"),$(bench_field p50_us "$res"),$(bench_field p99_us "$res"),$(bench_field errors "$res"),$(scale "$(awk -v x="$c0" -v y="$c1" 'BEGIN { print y - x }')"),$(scale "${bcpu:-0}")"
        echo "$row"
        [ -n "${OUT:-}" ] && echo "$row" >>"$OUT"
      done
    done
  done
done
