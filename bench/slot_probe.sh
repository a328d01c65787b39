#!/usr/bin/env bash
# What one slot costs, per replica: a 3-replica KV cluster under one
# rabia-bench load (SET, 100-byte values over 100,000 16-byte keys, 50
# connections), and the deltas of INFO and /metrics over the measured
# window: slots decided, null, fast, unanimous and adopted; loop wake-ups,
# turns and io_uring sends per slot; retransmits; proposals held past the
# window; group writes per slot and the mean group write (wal); the mean
# slot decision time and batch wait; requests per batch; and the server
# CPU (user+sys of the three processes, /proc) per request. Used to find
# where a slot's time and CPU go (core/README.md, "No DECISION after a
# unanimous exchange"; bench/README.md).
#
#   bench/slot_probe.sh [seconds]                    (default 5)
# DURABILITY=wal|memory (default wal), P=pipeline depth (default 1),
# WHERE=one|all (clients on replica 1, or spread over the three; default
# all), CONNS (default 50), EXTRA="--window 4" (more rabiad arguments),
# RABIAD=PATH (another build, for A/B runs). Placement: servers on CPU 0,
# rabia-bench on CPU 1 (SERVER_CPUS / CLIENT_CPUS). A 1 s warm-up run
# goes first and is not counted. Ports 31000-32300.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
secs=${1:-5}
dur=${DURABILITY:-wal}
P=${P:-1}
where=${WHERE:-all}
conns=${CONNS:-50}
server_cpus=${SERVER_CPUS:-0}
client_cpus=${CLIENT_CPUS:-1}
bench=${RABIA_BENCH:-build/cmd/rabia-bench}
[ -x "$bench" ] || { echo "slot_probe.sh: $bench missing: build first (cmake --build build)" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "slot_probe.sh: redis-cli missing (apt-get install redis-tools)" >&2; exit 1; }
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-probe.XXXXXX")
export RABIA_CLUSTER_DIR=$dir RABIA_RESP_BASE=31000 RABIA_CLIENT_BASE=32000 RABIA_PEER_BASE=32100 RABIA_METRICS_BASE=32200
cleanup() {
  ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
RABIA_EXTRA_ARGS="--durability $dur ${EXTRA:-}" taskset -c "$server_cpus" ./deploy/local-cluster.sh start 3 kv >/dev/null
pids=$(cat "$dir"/r*.pid)
if [ "$where" = all ]; then addr=127.0.0.1:31001,127.0.0.1:31002,127.0.0.1:31003; else addr=127.0.0.1:31001; fi
load() { # SECONDS [more rabia-bench arguments]
  local s=$1
  shift
  taskset -c "$client_cpus" "$bench" run --proto resp --addr "$addr" --connections "$conns" --pipeline "$P" \
    --value-size 100 --keys 100000 --duration "$s" --quiet "$@"
}
load 1 >/dev/null
snap() { # TAG: INFO and /metrics of each replica
  for i in 1 2 3; do
    redis-cli -p $((31000 + i)) INFO 2>/dev/null | tr -d '\r' >"$dir/info.$1.$i"
    curl -s "127.0.0.1:$((32200 + i))/metrics" >"$dir/metrics.$1.$i"
  done
}
snap 0
c0=$(cpu_of $pids)
out=$(load "$secs" --warmup 0 | tail -n 1)
c1=$(cpu_of $pids)
snap 1
reqs=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$out")
echo "placement: servers on CPU $server_cpus, rabia-bench on CPU $client_cpus; durability $dur, clients on $where, P $P, ${secs}s; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$out"
awk -v c0="$c0" -v c1="$c1" -v r="${reqs:-0}" -v s="$secs" \
  'BEGIN { if (r > 0) printf "server CPU: %.2f cores, %.1f us per request\n", (c1 - c0) / s, (c1 - c0) * 1e6 / r }'
for i in 1 2 3; do
  /usr/bin/python3 - "$dir" "$i" <<'PY'
import sys
d, i = sys.argv[1], sys.argv[2]
def info(tag):
    out = {}
    for line in open(f"{d}/info.{tag}.{i}"):
        if ":" in line and not line.startswith("#"):
            k, v = line.strip().split(":", 1)
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out
def metrics(tag):
    out = {}
    for line in open(f"{d}/metrics.{tag}.{i}"):
        p = line.split()
        if len(p) == 2 and not line.startswith("#"):
            try:
                out[p[0]] = float(p[1])
            except ValueError:
                pass
    return out
a, b, ma, mb = info(0), info(1), metrics(0), metrics(1)
D = lambda k: b.get(k, 0) - a.get(k, 0)
M = lambda k: mb.get(k, 0) - ma.get(k, 0)
def mean_us(h):
    n = M(h + "_count")
    return M(h + "_sum") / n * 1e6 if n else 0
slots = D("slots_decided") or 1
print("replica %s: slots %d null %d fast %d unanimous %d adopted %d | per slot: wake-ups %.2f (%.2f on a log write) turns %.2f sends %.1f "
      "group writes %.2f | retransmits %d held %d | means: slot %.0f us, group write %.0f us, batch wait %.0f us, "
      "%.1f requests per batch" % (
          i, D("slots_decided"), D("slots_null"), D("slots_fast"), D("slots_unanimous"), D("slots_adopted"),
          D("io_loop_waits") / slots, D("io_loop_waits_log") / slots, D("io_loop_turns") / slots, D("io_sends") / slots,
          M("rabia_wal_groups_total") / slots, D("retransmits"), D("proposals_held"),
          mean_us("rabia_slot_decision_duration_seconds"), mean_us("rabia_wal_write_duration_seconds"),
          mean_us("rabia_batch_wait_seconds"),
          M("rabia_batch_requests_sum") / M("rabia_batch_requests_count") if M("rabia_batch_requests_count") else 0))
PY
done
