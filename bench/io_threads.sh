#!/usr/bin/env bash
# io-threads (issue 9, deliverable 4): three 3-replica KV clusters side by
# side in one run, identical but for io-threads = 0, 1, 2 (client
# connections on the consensus thread, or on 1 or 2 I/O threads per
# replica), durability memory unless DURABILITY=wal, driven in turn by the
# same rabia-bench load (SET, 100-byte values over 100,000 16-byte keys, 50
# connections spread over the three replicas) at pipeline 1 and 16, ROUNDS
# times in rotating order. For each run: throughput, p50, p99, and CPU
# seconds per request (user + sys of the three rabiad processes, every
# thread, from /proc, over the run's requests). Medians at the end.
#
#   bench/io_threads.sh [seconds per run]          (default 6; ROUNDS=3)
# Placement: by default nothing is pinned (servers and rabia-bench share
# every CPU; io-threads-pin no, since 3 replicas on one machine would pin
# their I/O threads to the same CPUs); SERVER_CPUS / CLIENT_CPUS restrict
# them with taskset. Ports 16400-18600 (below Linux's ephemeral range).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
secs=${1:-6}
rounds=${ROUNDS:-3}
dur=${DURABILITY:-memory}
bench=${RABIA_BENCH:-build/cmd/rabia-bench}
[ -x "$bench" ] || { echo "io_threads.sh: $bench missing: build first (cmake --build build)" >&2; exit 1; }
srv=(); cli=()
[ -n "${SERVER_CPUS:-}" ] && srv=(taskset -c "$SERVER_CPUS")
[ -n "${CLIENT_CPUS:-}" ] && cli=(taskset -c "$CLIENT_CPUS")
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-iothreads.XXXXXX")
cleanup() {
  for k in 0 1 2; do RABIA_CLUSTER_DIR=$dir/k$k ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
base() { echo $((16400 + 1000 * $1)); } # K -> RESP base port (16400, 17400, 18400)
for k in 0 1 2; do
  b=$(base "$k")
  RABIA_CLUSTER_DIR=$dir/k$k RABIA_RESP_BASE=$b RABIA_CLIENT_BASE=$((b + 200)) RABIA_PEER_BASE=$((b + 300)) \
    RABIA_EXTRA_ARGS="--durability $dur --io-threads $k --io-threads-pin no" "${srv[@]}" \
    ./deploy/local-cluster.sh start 3 kv >/dev/null
done
pids_of() { cat "$dir/k$1"/r*.pid; }
echo "placement: servers on CPUs ${SERVER_CPUS:-all}, rabia-bench on CPUs ${CLIENT_CPUS:-all}; durability $dur;" \
  "${secs}s per run; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-12s %-4s %10s %9s %9s %12s\n' io-threads P req/s p50_ms p99_ms cpu_us/req
declare -A tput cpu
for r in $(seq "$rounds"); do
  for p in 1 16; do
    order="0 1 2"
    [ $((r % 3)) = 2 ] && order="1 2 0"
    [ $((r % 3)) = 0 ] && order="2 0 1"
    for k in $order; do
      b=$(base "$k")
      addr=127.0.0.1:$((b + 1)),127.0.0.1:$((b + 2)),127.0.0.1:$((b + 3))
      # shellcheck disable=SC2046
      c0=$(cpu_of $(pids_of "$k"))
      out=$("${cli[@]}" "$bench" run --proto resp --addr "$addr" --connections 50 --pipeline "$p" \
        --value-size 100 --keys 100000 --duration "$secs" --warmup 0 --quiet | tail -1)
      # shellcheck disable=SC2046
      c1=$(cpu_of $(pids_of "$k"))
      n=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$out")
      t=$(sed -n 's/.*throughput=\([0-9.]*\).*/\1/p' <<<"$out")
      p50=$(sed -n 's/.*p50_us=\([0-9]*\).*/\1/p' <<<"$out")
      p99=$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' <<<"$out")
      u=$(bc -l <<<"($c1 - $c0) * 1000000 / ($n + ($n == 0))")
      printf '%-12s %-4s %10.0f %9.2f %9.2f %12.1f\n' "$k" "$p" "$t" "$(bc -l <<<"$p50/1000")" \
        "$(bc -l <<<"$p99/1000")" "$u"
      tput["$k $p"]="${tput["$k $p"]:-} $t"
      cpu["$k $p"]="${cpu["$k $p"]:-} $u"
    done
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
echo "medians of $rounds rounds (ratio to io-threads 0):"
for p in 1 16; do
  a=$(median ${tput["0 $p"]}); ac=$(median ${cpu["0 $p"]})
  for k in 0 1 2; do
    t=$(median ${tput["$k $p"]}); c=$(median ${cpu["$k $p"]})
    printf '  P%-2s io-threads %s: %8.0f req/s (%.2f)  %6.1f us CPU/req (%.2f)\n' "$p" "$k" "$t" \
      "$(bc -l <<<"$t/$a")" "$c" "$(bc -l <<<"$c/$ac")"
  done
done
