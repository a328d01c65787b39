#!/usr/bin/env bash
# What TLS costs: one 3-replica rabia KV cluster measured with TLS off and on,
# in one run, with the same redis-benchmark flags (--tls for the TLS one).
#   bench/tls_throughput.sh [rounds]        (default 3)
# Each round starts the cluster without TLS, benchmarks it, stops it, then
# the same with TLS 1.3 on peer links and client ports (certificates from
# deploy/make-test-certs.sh), alternating so that the machine's other load
# hits both alike; the table shows the median of the rounds.
# redis-benchmark: -t set,get -d 100 -r 100000 -c 50, -P 1 (-n N1) and -P 16
# (-n N16), against replica 1. Environment: DURABILITY (wal | memory, default
# wal: rabiad's default), N1 (default 20000), N16 (default 200000), BENCH_PORT_BASE
# (default 16800: RESP base+i, native base+20+i, peers base+40+i).
# Besides ops/s it reports the CPU time the three replicas spent per request
# (utime + stime from /proc, SET and GET together): on a machine shared with
# other work the rates swing between rounds; the CPU per request much less.
# Prints the table and writes it to bench/results/tls.md.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
load0=$(cut -d" " -f1-3 /proc/loadavg)
durability=${DURABILITY:-wal}
n1=${N1:-20000}
n16=${N16:-200000}
base=${BENCH_PORT_BASE:-16800}
export RABIAD=${RABIAD:-$PWD/build/cmd/rabiad} RABIA_CLI=${RABIA_CLI:-$PWD/build/cmd/rabia-cli}
[ -x "$RABIAD" ] || { echo "build first: $RABIAD not found" >&2; exit 1; }
command -v redis-benchmark >/dev/null || { echo "redis-benchmark missing (apt-get install redis-tools)" >&2; exit 1; }
dir=$(mktemp -d /tmp/rabia-bench-tls.XXXXXX)
export RABIA_RESP_BASE=$base RABIA_CLIENT_BASE=$((base + 20)) RABIA_PEER_BASE=$((base + 40))
export RABIA_EXTRA_ARGS="--durability $durability"
cleanup() {
  RABIA_CLUSTER_DIR=$dir/cluster ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
bash deploy/make-test-certs.sh "$dir/certs" 3 >/dev/null
tls_opts=(--tls --cacert "$dir/certs/ca.crt")

# bench MODE P N -> "SET_rps GET_rps"
bench() {
  local mode=$1 p=$2 n=$3 extra=()
  [ "$mode" = on ] && extra=("${tls_opts[@]}")
  timeout 300 redis-benchmark "${extra[@]}" -p $((base + 1)) -t set,get -d 100 -r 100000 -c 50 -P "$p" -n "$n" --csv 2>/dev/null |
    awk -F',' 'NR>1 { gsub(/"/,""); r[$1]=$2 } END { print r["SET"], r["GET"] }'
}

declare -A res
# cpu_ticks: utime + stime of the cluster's rabiad processes, in clock ticks
cpu_ticks() {
  local f t=0 pid
  for f in "$RABIA_CLUSTER_DIR"/r*.pid; do
    pid=$(cat "$f")
    t=$((t + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
  done
  echo "$t"
}
hz=$(getconf CLK_TCK)
for ((round = 1; round <= rounds; round++)); do
  for mode in off on; do
    export RABIA_CLUSTER_DIR=$dir/cluster
    if [ "$mode" = on ]; then export RABIA_TLS_DIR=$dir/certs; else unset RABIA_TLS_DIR; fi
    ./deploy/local-cluster.sh start 3 kv >/dev/null
    for p in 1 16; do
      n=$n1
      [ "$p" = 16 ] && n=$n16
      c0=$(cpu_ticks)
      read -r s g <<<"$(bench "$mode" "$p" "$n")"
      c1=$(cpu_ticks)
      us=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v n="$n" 'BEGIN { printf "%.1f", t * 1e6 / hz / (2 * n) }')
      res[$mode,$p,CPU]+="$us "
      [ -n "$s" ] && [ -n "$g" ] || { echo "redis-benchmark gave no rates (TLS $mode, -P $p)" >&2; exit 1; }
      res[$mode,$p,SET]+="$s "
      res[$mode,$p,GET]+="$g "
      echo "round $round, TLS $mode, -P $p: SET $s/s, GET $g/s, replicas' CPU $us us/request" >&2
    done
    ./deploy/local-cluster.sh stop >/dev/null
    rm -rf "$dir/cluster"
  done
done
unset RABIA_TLS_DIR

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
table=$(
  printf '| test (-c 50 -d 100 -r 100000) | TLS off (ops/s) | TLS on (ops/s) | on / off |\n'
  printf '|---|---:|---:|---:|\n'
  for p in 1 16; do
    for t in SET GET; do
      off=$(median <<<"${res[off,$p,$t]}")
      on=$(median <<<"${res[on,$p,$t]}")
      printf '| %s -P %s | %.0f | %.0f | %.2f |\n' "$t" "$p" "$off" "$on" "$(awk -v a="$on" -v b="$off" 'BEGIN { print a / b }')"
    done
    off=$(median <<<"${res[off,$p,CPU]}")
    on=$(median <<<"${res[on,$p,CPU]}")
    printf '| replicas'"'"' CPU per request, -P %s (us, 3 replicas together) | %.1f | %.1f | %.2f |\n' "$p" "$off" "$on" "$(awk -v a="$on" -v b="$off" 'BEGIN { print a / b }')"
  done
)
raw=$(for p in 1 16; do for t in SET GET CPU; do echo "  $t -P $p: off ${res[off,$p,$t]}; on ${res[on,$p,$t]}"; done; done)
echo "$table"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
{
  echo "# TLS on and off: cluster throughput"
  echo
  echo "\`bench/tls_throughput.sh $rounds\` (commit $commit, $(date -u +%Y-%m-%dT%H:%MZ)): a 3-replica KV cluster"
  echo "(durability $durability, everything on 127.0.0.1) measured without TLS and with TLS 1.3 on peer"
  echo "links and both client ports, alternating, $rounds rounds; medians. redis-benchmark"
  echo "against replica 1, $n1 requests per test at -P 1 and $n16 at -P 16, --tls --cacert for the TLS runs."
  echo
  echo "$table"
  echo
  echo "Every round's rates (ops/s; CPU: us per request):"
  echo
  echo '```'
  echo "$raw"
  echo '```'
  echo
  echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), Linux $(uname -r),"
  echo "$(openssl version | cut -d' ' -f1-2), load average before the run: $load0 (shared with other work)."
} >"bench/results/tls.md.new"
mv bench/results/tls.md.new bench/results/tls.md
echo "written to bench/results/tls.md"
