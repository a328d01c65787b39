#!/usr/bin/env bash
# What durability costs, side by side in one run (issue: durable replicas):
#   - a 3-replica rabia KV cluster with durability = wal (the default),
#   - the same cluster with durability = memory (the paper's setting),
#   - one redis-server with appendonly yes, appendfsync always,
# driven by the same redis-benchmark (SET, 100-byte values over 100,000 keys,
# 50 connections, -P 1 and -P 16): throughput, p50, p99, ratios, and CPU
# seconds per request (user+sys of every server process, from /proc);
# then one client, one request at a time: rabia SET against a Redis primary
# with two replicas (appendfsync always on all three), SET followed by
# WAIT 2 0, through the same Python client (python3-redis), the systems
# taking turns of 100 requests (the disk's latency drifts within a run).
#
#   bench/durable_vs_redis.sh [requests per test]     (default 200000)
# WARMUP=N (default 1000000): every system first takes N SETs at -P 16,
# not measured, so each is measured warm and with its key space filled: a
# fresh cluster pays first-touch page faults that a running one has paid
# long ago (bench/fresh_vs_warm.sh: 5.0 against 3.1-3.5 us of CPU per
# SET), and a fresh redis-server grows its dictionary. WARMUP=0: fresh.
# RABIAD_ARGS="--wal-segment-bytes 1gb": more rabiad arguments (every cluster).
# RB_SECS=N (default 5): the same tests once more from rabia-bench, N
# seconds each (0: not), next to redis-benchmark's; every test prints its
# generator's CPU in cores busy (near 1.00: the generator is the limit).
# RABIAD_B=PATH: a second rabiad build (e.g. the commit before a change) as
# one more wal cluster in the one-client test, side by side ("wal B").
# Placement: every server process on CPU 0, the load generator on CPU 1
# (SERVER_CPUS / CLIENT_CPUS to change). Data dirs under $BENCH_DIR
# (default /var/tmp: a real disk, O_DIRECT).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh # cpu_of, rss_of
n=${1:-200000}
server_cpus=${SERVER_CPUS:-0}
client_cpus=${CLIENT_CPUS:-1}
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-durable-bench.XXXXXX")
PY=/usr/bin/python3
pids=()
cleanup() {
  RABIA_CLUSTER_DIR=$dir/wal ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true
  RABIA_CLUSTER_DIR=$dir/mem ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true
  RABIA_CLUSTER_DIR=$dir/walb ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  rm -rf "$dir"
}
trap cleanup EXIT
command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install redis-server" >&2; exit 1; }

start_cluster() { # NAME BASE DURABILITY
  RABIA_CLUSTER_DIR=$dir/$1 RABIA_RESP_BASE=$2 RABIA_CLIENT_BASE=$(($2 + 1000)) RABIA_PEER_BASE=$(($2 + 1100)) \
    RABIA_EXTRA_ARGS="--durability $3 ${RABIAD_ARGS:-}" taskset -c "$server_cpus" ./deploy/local-cluster.sh start 3 kv >/dev/null
}
start_cluster wal 16400 wal
start_cluster mem 18400 memory
[ -n "${RABIAD_B:-}" ] && RABIAD=$RABIAD_B start_cluster walb 24400 wal
redis() { # PORT EXTRA...
  local port=$1
  shift
  mkdir -p "$dir/redis$port"
  taskset -c "$server_cpus" redis-server --port "$port" --dir "$dir/redis$port" --save "" --appendonly yes \
    --appendfsync always --daemonize no --logfile "$dir/redis$port.log" "$@" &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
}
redis 16399                                           # alone, appendfsync always
redis 16390                                           # primary ...
redis 16391 --replicaof 127.0.0.1 16390               # ... and two replicas
redis 16392 --replicaof 127.0.0.1 16390
for _ in $(seq 100); do
  [ "$(redis-cli -p 16390 INFO replication | tr -d '\r' | sed -n 's/^connected_slaves://p')" = 2 ] && break
  sleep 0.1
done

wal_pids=$(cat "$dir"/wal/r*.pid)
mem_pids=$(cat "$dir"/mem/r*.pid)
redis_pid=${pids[0]}

# the same warm-up for every system, before any is measured
warmup=${WARMUP:-1000000}
if [ "$warmup" -gt 0 ]; then
  for port in 16401 18401 16399 ${RABIAD_B:+24401}; do
    taskset -c "$client_cpus" redis-benchmark -p "$port" -t set -d 100 -r 100000 -n "$warmup" -c 50 -P 16 -q \
      >/dev/null 2>&1
  done
fi

# The load generator's own CPU (user+sys of the command, bash's `time`) as
# cores busy over the run: near 1.00 it, not the server, is the limit.
# redis-benchmark spends about 27 us of CPU per request at -P 1 here (five
# epoll_ctl per request, strace -c), rabia-bench about 12: against a
# redis-server without persistence, -P 1, it saturated CPU 1 at 49 k SET/s
# where rabia-bench reached 81-87 k (bench/README.md).
gen_cores() { # WALL_START FILE -> cores
  awk -v t0="$1" -v t1="$(date +%s.%N)" '{ printf "%.2f", ($1 + $2) / (t1 - t0) }' "$2"
}
# bench PORT PIDS P -> "rps p50 p99 cpu_us_per_req generator_cores"
bench() {
  local port=$1 pp=$2 P=$3 c0 c1 out t0
  # shellcheck disable=SC2086
  c0=$(cpu_of $pp)
  t0=$(date +%s.%N)
  out=$( { TIMEFORMAT='%U %S'; time taskset -c "$client_cpus" redis-benchmark -p "$port" -t set -d 100 -r 100000 \
    -n "$n" -c 50 -P "$P" --csv 2>/dev/null; } 2>"$dir/gen.time" | awk -F',' 'NR>1 { gsub(/"/,""); print $2, $5, $7 }')
  # shellcheck disable=SC2086
  c1=$(cpu_of $pp)
  echo "$out $(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }') $(gen_cores "$t0" "$dir/gen.time")"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
# table TITLE FN: the three systems at -P 1 and -P 16 through FN (bench or rbench)
table() {
  local title=$1 fn=$2 P
  printf '%-22s %12s %12s %12s %10s %10s\n' "$title" "rabia wal" "rabia memory" "redis always" "wal/mem" "wal/redis"
  for P in 1 16; do
    read -r w_rps w_p50 w_p99 w_cpu w_gen <<<"$($fn 16401 "$wal_pids" $P)"
    read -r m_rps m_p50 m_p99 m_cpu m_gen <<<"$($fn 18401 "$mem_pids" $P)"
    read -r r_rps r_p50 r_p99 r_cpu r_gen <<<"$($fn 16399 "$redis_pid" $P)"
    printf '%-22s %12s %12s %12s %10s %10s\n' "-c 50 -P $P req/s" "$w_rps" "$m_rps" "$r_rps" \
      "$(ratio "$w_rps" "$m_rps")" "$(ratio "$w_rps" "$r_rps")"
    printf '%-22s %12s %12s %12s\n' "  p50 ms" "$w_p50" "$m_p50" "$r_p50"
    printf '%-22s %12s %12s %12s\n' "  p99 ms" "$w_p99" "$m_p99" "$r_p99"
    printf '%-22s %12s %12s %12s\n' "  CPU us/request" "$w_cpu" "$m_cpu" "$r_cpu"
    printf '%-22s %12s %12s %12s\n' "  generator cores" "$w_gen" "$m_gen" "$r_gen"
  done
}
table "SET -d 100 -r 100000" bench

# The same load from rabia-bench (RB_SECS seconds per test, 0: skipped):
# a generator with half redis-benchmark's CPU per request, so -P 1 is not
# bound by the generator (see gen_cores).
rb_secs=${RB_SECS:-5}
rb=${RABIA_BENCH:-build/cmd/rabia-bench}
if [ "$rb_secs" -gt 0 ] && [ -x "$rb" ]; then
  # rbench PORT PIDS P -> "rps p50_ms p99_ms cpu_us_per_req generator_cores"
  rbench() {
    local port=$1 pp=$2 P=$3 c0 c1 out t0
    # shellcheck disable=SC2086
    c0=$(cpu_of $pp)
    t0=$(date +%s.%N)
    out=$( { TIMEFORMAT='%U %S'; time taskset -c "$client_cpus" "$rb" run --proto resp --addr "127.0.0.1:$port" \
      --connections 50 --pipeline "$P" --value-size 100 --keys 100000 --duration "$rb_secs" --warmup 0 --quiet; } \
      2>"$dir/gen.time" | tail -n 1)
    # shellcheck disable=SC2086
    c1=$(cpu_of $pp)
    sed -n 's/.*requests=\([0-9]*\).*throughput=\([0-9.]*\) p50_us=\([0-9]*\).*p99_us=\([0-9]*\).*/\1 \2 \3 \4/p' <<<"$out" |
      awk -v a="$c0" -v b="$c1" -v g="$(gen_cores "$t0" "$dir/gen.time")" \
        '{ printf "%.0f %.3f %.3f %.1f %s\n", $2, $3 / 1e3, $4 / 1e3, $1 ? (b - a) * 1e6 / $1 : 0, g }'
  }
  table "rabia-bench, ${rb_secs}s" rbench
fi

# one client, one request at a time
WALB=${RABIAD_B:+24401} taskset -c "$client_cpus" "$PY" - <<'EOF'
import os, time, redis
# The systems take turns, 100 requests each, 30 turns: the disk's latency
# moves by 2x and more within a minute on this shared machine, and
# measuring one system after the other would charge that to whichever ran
# during a slow spell.
val = "x" * 100
p = redis.Redis(port=16390)
def set_wait(c, i):
    c.set(f"lat:{i}", val)
    assert c.execute_command("WAIT", 2, 0) == 2
systems = [("rabia wal", redis.Redis(port=16401), lambda c, i: c.set(f"lat:{i}", val)),
           ("rabia memory", redis.Redis(port=18401), lambda c, i: c.set(f"lat:{i}", val)),
           ("redis+2 WAIT 2", p, set_wait)]
b = os.environ.get("WALB")
if b:
    systems.append(("wal B", redis.Redis(port=int(b)), lambda c, i: c.set(f"lat:{i}", val)))
lat = {name: [] for name, _, _ in systems}
for turn in range(30):
    for name, c, fn in systems:
        for k in range(100):
            t = time.perf_counter()
            fn(c, turn * 100 + k)
            lat[name].append(time.perf_counter() - t)
def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, len(v) * q // 100)] * 1e3
print(f"{'1 client, SET, 3000':22s}" + "".join(f" {name:>15s}" for name, _, _ in systems))
print(f"{'  p50 ms':22s}" + "".join(f" {pct(lat[name], 50):15.3f}" for name, _, _ in systems))
print(f"{'  p99 ms':22s}" + "".join(f" {pct(lat[name], 99):15.3f}" for name, _, _ in systems))
EOF
echo "servers on CPU $server_cpus, clients on CPU $client_cpus; $n requests per redis-benchmark test after $warmup SETs of warm-up each; data on $(df --output=source,fstype "$dir" | tail -n 1)"
