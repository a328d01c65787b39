#!/usr/bin/env bash
# What one replica down costs: a 3-replica KV cluster under the same
# rabia-bench load (SET, 100-byte values over 100,000 16-byte keys, 50
# connections spread over replicas 1 and 2, the two that stay up) in three
# phases, one after the other in one run:
#   all up      the three replicas;
#   r3 down     replica 3 killed with SIGKILL (maintenance, a crash);
#   r3 back     replica 3 started again on its data dir and caught up
#               (the time it took to reach the others' applied slot is
#               printed), then warmed up as the cluster was at the start
#               (2 s of the -P 16 load, not measured).
# Per phase and pipeline depth: throughput, p50, p99, the servers' CPU per
# request (user+sys of the running rabiad processes, /proc), and from
# replica 1's INFO over the measured window: requests per slot, the share
# of slots decided by a unanimous exchange (no STATE and VOTE rounds:
# needs every replica's proposal), log group writes per slot and the mean
# slot decision time (/metrics).
#
#   bench/degraded.sh [seconds]                       (default 5)
# DURABILITY="wal memory" (default both), PIPELINES="1 16", CONNS=50,
# RABIAD=PATH (another build). Servers on CPU 0 (SERVER_CPUS), rabia-bench
# on CPU 1 (CLIENT_CPUS). Ports 35000-36400. Every process it starts is
# stopped by PID at the end (deploy/local-cluster.sh stop).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
secs=${1:-5}
durs=${DURABILITY:-wal memory}
pipes=${PIPELINES:-1 16}
conns=${CONNS:-50}
server_cpus=${SERVER_CPUS:-0}
client_cpus=${CLIENT_CPUS:-1}
bench=${RABIA_BENCH:-build/cmd/rabia-bench}
[ -x "$bench" ] || { echo "degraded.sh: $bench missing: build first (cmake --build build)" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "degraded.sh: redis-cli missing (apt-get install redis-tools)" >&2; exit 1; }
command -v curl >/dev/null || { echo "degraded.sh: curl missing (apt-get install curl)" >&2; exit 1; }
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-degraded.XXXXXX")
export RABIA_CLUSTER_DIR=$dir/cluster RABIA_RESP_BASE=35000 RABIA_CLIENT_BASE=35100 RABIA_PEER_BASE=35200 \
  RABIA_METRICS_BASE=35300
cleanup() {
  taskset -c "$server_cpus" ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
addr=127.0.0.1:35001,127.0.0.1:35002
load() { # SECONDS P [more rabia-bench arguments]
  local s=$1 p=$2
  shift 2
  taskset -c "$client_cpus" "$bench" run --proto resp --addr "$addr" --connections "$conns" --pipeline "$p" \
    --value-size 100 --keys 100000 --duration "$s" --quiet "$@" | tail -n 1
}
live_pids() {
  local f
  for f in "$RABIA_CLUSTER_DIR"/r*.pid; do
    [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"
  done
}
snap() { # TAG: replica 1's INFO and /metrics
  redis-cli -p 35001 INFO 2>/dev/null | tr -d '\r' >"$dir/info.$1"
  curl -s 127.0.0.1:35301/metrics >"$dir/metrics.$1"
}
applied() { # I -> replica I's applied slot
  { redis-cli -p $((35000 + $1)) INFO 2>/dev/null || true; } | tr -d '\r' | sed -n 's/^slots_applied://p'
}
# measure PHASE P: one line of the table
measure() {
  local phase=$1 p=$2 c0 c1 out
  snap a
  # shellcheck disable=SC2046
  c0=$(cpu_of $(live_pids))
  out=$(load "$secs" "$p" --warmup 0)
  # shellcheck disable=SC2046
  c1=$(cpu_of $(live_pids))
  snap b
  /usr/bin/python3 - "$dir" "$phase" "$p" "$out" "$c0" "$c1" "$dur" <<'PY'
import re, sys
d, phase, p, out, c0, c1, dur = sys.argv[1:8]
def kv(path, sep):
    r = {}
    for line in open(path):
        if line.startswith("#"):
            continue
        parts = line.strip().split(sep, 1) if sep else line.split()
        if len(parts) == 2:
            try:
                r[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return r
a, b = kv(f"{d}/info.a", ":"), kv(f"{d}/info.b", ":")
ma, mb = kv(f"{d}/metrics.a", None), kv(f"{d}/metrics.b", None)
D = lambda k: b.get(k, 0) - a.get(k, 0)
M = lambda k: mb.get(k, 0) - ma.get(k, 0)
f = dict(re.findall(r"(\w+)=([\d.]+)", out))
reqs = float(f.get("requests", 0))
slots = D("slots_decided") or 1
hist = "rabia_slot_decision_duration_seconds"
slot_us = M(hist + "_sum") / M(hist + "_count") * 1e6 if M(hist + "_count") else 0
cpu = (float(c1) - float(c0)) * 1e6 / reqs if reqs else 0
print(f"{dur:7s} {phase:9s} {p:>3s} {float(f.get('throughput', 0)):10.0f} {float(f.get('p50_us', 0)) / 1e3:8.2f} "
      f"{float(f.get('p99_us', 0)) / 1e3:8.2f} {cpu:8.1f} {reqs / slots:9.1f} {100 * D('slots_null') / slots:5.1f}% "
      f"{100 * D('slots_unanimous') / slots:8.1f}% "
      f"{M('rabia_wal_groups_total') / slots:8.2f} {slot_us:9.0f}")
PY
}
echo "placement: servers on CPU $server_cpus, rabia-bench on CPU $client_cpus; $conns connections on replicas 1 and 2; ${secs}s per line; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-7s %-9s %3s %10s %8s %8s %8s %9s %6s %9s %8s %9s\n' durabil. phase P "req/s" "p50 ms" "p99 ms" "CPU us" \
  "req/slot" null unanimous "wr/slot" "slot us"
for dur in $durs; do
  RABIA_EXTRA_ARGS="--durability $dur" taskset -c "$server_cpus" ./deploy/local-cluster.sh start 3 kv >/dev/null
  load 2 16 --warmup 0 >/dev/null # warm-up: every phase measures a running cluster
  for p in $pipes; do measure "all up" "$p"; done
  ./deploy/local-cluster.sh kill 3 >/dev/null
  sleep 1
  for p in $pipes; do measure "r3 down" "$p"; done
  t0=$(date +%s%N)
  RABIA_EXTRA_ARGS="--durability $dur" taskset -c "$server_cpus" ./deploy/local-cluster.sh restart 3 >/dev/null
  caught=""
  for _ in $(seq 600); do
    a1=$(applied 1) a3=$(applied 3)
    if [ -n "$a3" ] && [ -n "$a1" ] && [ "$a3" -ge "$a1" ]; then
      caught=$((($(date +%s%N) - t0) / 1000000))
      break
    fi
    sleep 0.05
  done
  if [ -n "$caught" ]; then
    echo "        replica 3 restarted: caught up $caught ms after its start (idle cluster)"
  else
    echo "        replica 3 restarted: not caught up within 30 s"
  fi
  load 2 16 --warmup 0 >/dev/null # the restarted process warms up as the others did
  for p in $pipes; do measure "r3 back" "$p"; done
  taskset -c "$server_cpus" ./deploy/local-cluster.sh stop >/dev/null
done
