#!/usr/bin/env bash
# Pipelining (issue 9, deliverable 5): window 1 against window W (policy
# global; core/README.md "Pipelining"), side by side in one run, on two
# 3-replica KV clusters (durability memory unless DURABILITY=wal), driven by
# rabia-bench (SET, 100-byte values over 100,000 16-byte keys, 50
# connections) with the clients on one replica and spread over all three,
# at pipeline 1 and 16. For each run: throughput, p50, p99, and the slots
# decided and null in that run (INFO's slots_decided / slots_null deltas,
# replica 1), so the null-slot rate is measured where the load is. An idle
# period (no client) is measured too: slots started while idle are nulls.
#
#   bench/pipeline.sh [seconds per run]            (default 8; W=4 ROUNDS=2)
# Placement: servers on CPU 0, rabia-bench on CPU 1 (SERVER_CPUS /
# CLIENT_CPUS). Ports 12400-15600 (below Linux's ephemeral range).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
W=${W:-4}
rounds=${ROUNDS:-2}
dur=${DURABILITY:-memory}
server_cpus=${SERVER_CPUS:-0}
client_cpus=${CLIENT_CPUS:-1}
bench=${RABIA_BENCH:-build/cmd/rabia-bench}
[ -x "$bench" ] || { echo "pipeline.sh: $bench missing: build first (cmake --build build)" >&2; exit 1; }
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-pipeline.XXXXXX")
cleanup() {
  for c in w1 wn; do RABIA_CLUSTER_DIR=$dir/$c ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
start() { # NAME RESP_BASE WINDOW
  RABIA_CLUSTER_DIR=$dir/$1 RABIA_RESP_BASE=$2 RABIA_CLIENT_BASE=$(($2 + 1000)) RABIA_PEER_BASE=$(($2 + 1100)) \
    RABIA_EXTRA_ARGS="--durability $dur --window $3" taskset -c "$server_cpus" ./deploy/local-cluster.sh start 3 kv >/dev/null
}
start w1 12400 1
start wn 14400 "$W"
info() { redis-cli -p "$1" INFO 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }
slots() { echo "$(info "$1" slots_decided) $(info "$1" slots_null)"; }
echo "placement: servers on CPU $server_cpus, rabia-bench on CPU $client_cpus; durability $dur; ${secs}s per run; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %-5s %-4s %10s %9s %9s %8s %6s %7s\n' cluster where P req/s p50_ms p99_ms slots nulls null%
declare -A tput
for r in $(seq "$rounds"); do
  for where in one all; do
    for p in 1 16; do
      for c in "w1 12400 1" "wn 14400 $W"; do
        set -- $c
        if [ "$where" = one ]; then addr=127.0.0.1:$(($2 + 1)); else addr=127.0.0.1:$(($2 + 1)),127.0.0.1:$(($2 + 2)),127.0.0.1:$(($2 + 3)); fi
        read -r d0 n0 <<<"$(slots $(($2 + 1)))"
        out=$(taskset -c "$client_cpus" "$bench" run --proto resp --addr "$addr" --connections 50 --pipeline "$p" \
          --value-size 100 --keys 100000 --duration "$secs" --warmup 1 --quiet | tail -1)
        read -r d1 n1 <<<"$(slots $(($2 + 1)))"
        t=$(sed -n 's/.*throughput=\([0-9.]*\).*/\1/p' <<<"$out")
        p50=$(sed -n 's/.*p50_us=\([0-9]*\).*/\1/p' <<<"$out")
        p99=$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' <<<"$out")
        ds=$((d1 - d0)); dn=$((n1 - n0))
        printf '%-10s %-5s %-4s %10.0f %9.2f %9.2f %8d %6d %6.2f%%\n' "window$3" "$where" "$p" "$t" \
          "$(bc -l <<<"$p50/1000")" "$(bc -l <<<"$p99/1000")" "$ds" "$dn" "$(bc -l <<<"100*$dn/($ds+($ds==0))")"
        tput["$1 $where $p"]="${tput["$1 $where $p"]:-} $t"
      done
    done
  done
done
for c in "w1 12400 1" "wn 14400 $W"; do
  set -- $c
  read -r d0 n0 <<<"$(slots $(($2 + 1)))"
  sleep 3
  read -r d1 n1 <<<"$(slots $(($2 + 1)))"
  echo "window$3 idle 3s: slots $((d1 - d0)), nulls $((n1 - n0))"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
echo "throughput ratio window$W / window1 (median of $rounds rounds):"
for where in one all; do
  for p in 1 16; do
    a=$(median ${tput["w1 $where $p"]})
    b=$(median ${tput["wn $where $p"]})
    printf '  clients on %-3s P%-2s: %.0f / %.0f = %.2f\n' "$where" "$p" "$b" "$a" "$(bc -l <<<"$b/$a")"
  done
done
