#!/usr/bin/env bash
# One run, one machine, one load generator (rabia-bench): rabia against Redis
# and etcd on the same workload.
#
#   bench/compare.sh [seconds per measurement]        (default 10; or DURATION)
#
# Systems (each started, measured and stopped in turn, in this one run):
#   rabia-wal        3 rabiad replicas, durability wal (fsync'd before replying)
#   rabia-memory     3 rabiad replicas, durability memory (the paper's setting)
#   redis-always     one redis-server, appendonly yes, appendfsync always
#   redis-nopersist  one redis-server, --save "" --appendonly no
#   redis-wait2      a Redis primary + 2 replicas, appendfsync always on all
#                    three; every SET followed by WAIT 2 0
#   etcd             3 etcd members (Debian's etcd-server), through the HTTP/JSON
#                    gateway (POST /v3/kv/put, /v3/kv/range)
# Workloads: 16-byte keys, 100-byte values, 100,000 keys, closed loop with 50
# connections at pipeline 1 and 16; writes only (read ratio 0) and 50% writes
# (read ratio 0.5); warm-up WARMUP seconds (default 2) before each measurement.
# RATE=R: open loop instead, every system offered the same R requests/s
# (rabia-bench --rate; latency from the intended send time): CPU per
# request then compares what each system spends on the same load, where
# the closed loop compares them each at its own saturation.
# For each: throughput, p50, p99, server CPU per request (user+sys of every
# server process of that system, from /proc/PID/stat, sampled inside the
# measured window) and ratios against redis-always, plus rabia-memory against
# redis-wait2 and rabia-wal against etcd. Table on stdout; the table, the
# machine and the placement to bench/results/compare-<UTC time>.md and .csv.
#
# Environment: SERVER_CPUS (default 0) pins every server process,
# CLIENT_CPUS (default 1) pins rabia-bench; DURATION, WARMUP, CONNECTIONS
# (50), KEY_SIZE (16) and VALUE_SIZE (100; 16 is the Rabia paper's
# workload), PIPELINES ("1 16"), ETCD_PIPELINES (default: PIPELINES), READ_RATIOS
# ("0 0.5"), SYSTEMS (the list above, to run a subset; rabia-wal-logreads and
# rabia-memory-logreads, not in the default list, run the clusters with
# read-index no: every read a slot of the log, as before the read index;
# rabia-wal-one and rabia-memory-one, not in the default list either, put
# every connection on replica 1 instead of spreading them), RABIA_PROTO (resp or
# native: how rabia-bench talks to rabia; default resp, the protocol Redis is
# driven with), RABIA_BENCH (path of rabia-bench), BENCH_DIR (where the data
# dirs go; default /var/tmp: a real disk, O_DIRECT works there, not on
# tmpfs), COMPARE_PORT_BASE (default 30000; ports base+100 .. base+999).
#
# NEIGHBOUR=1: one CPU-bound process (a shell busy loop at nice 19) pinned
# to the first server CPU for the whole run, the issue's "one niced
# CPU-bound process beside them"; the results file says so.
#
# Why one system at a time: every idle server still costs CPU (rabia's ticks,
# etcd's raft heartbeats, Redis's replication pings) on the one pinned server
# CPU, which would be charged to whichever system is being measured. Running
# them in turn within one invocation keeps the comparison to one run (same
# build, same machine state, ratios computed here) without that noise.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

duration=${1:-${DURATION:-10}}
warmup=${WARMUP:-2}
server_cpus=${SERVER_CPUS:-0}
client_cpus=${CLIENT_CPUS:-1}
conns=${CONNECTIONS:-50}
rate=${RATE:-}
loop_desc="closed loop"
[ -n "$rate" ] && loop_desc="open loop at $rate requests/s offered to every system"
pipelines=${PIPELINES:-1 16}
etcd_pipelines=${ETCD_PIPELINES:-$pipelines}
read_ratios=${READ_RATIOS:-0 0.5}
systems=${SYSTEMS:-rabia-wal rabia-memory redis-always redis-nopersist redis-wait2 etcd}
rabia_proto=${RABIA_PROTO:-resp}
keys=100000
key_size=${KEY_SIZE:-16}
value_size=${VALUE_SIZE:-100}
base=${COMPARE_PORT_BASE:-30000}
bench=${RABIA_BENCH:-$root/build/cmd/rabia-bench}
rabiad=${RABIAD:-$root/build/cmd/rabiad}
rabia_cli=${RABIA_CLI:-$root/build/cmd/rabia-cli}

die() {
  echo "compare: $*" >&2
  exit 1
}

# ---- dependencies and arguments, checked before anything starts ----------
{ [[ $duration =~ ^[0-9]+$ ]] && ((duration >= 3)); } || die "duration must be a whole number of seconds >= 3 (got '$duration'): the CPU samples are taken 0.5 s inside each end of the measured window"
[[ $warmup =~ ^[0-9]+$ ]] || die "WARMUP must be a whole number of seconds (got '$warmup')"
[ -z "$rate" ] || [[ $rate =~ ^[1-9][0-9]*$ ]] || die "RATE must be a whole number of requests per second (got '$rate'), or unset for a closed loop"
[[ $rabia_proto == resp || $rabia_proto == native ]] || die "RABIA_PROTO must be resp or native (got '$rabia_proto')"
# every name in SYSTEMS is checked here, before anything starts: a typo
# found when its turn came lost the minutes of measurements before it
known_systems="rabia-wal rabia-memory rabia-wal-logreads rabia-memory-logreads rabia-wal-one rabia-memory-one redis-always redis-nopersist redis-wait2 etcd"
need=(redis-cli taskset awk) # redis-cli counts the keys of every system but etcd
for sys in $systems; do
  [[ " $known_systems " == *" $sys "* ]] || die "unknown system '$sys' in SYSTEMS (known: $known_systems)"
  case $sys in
  redis-*) need+=(redis-server) ;;
  etcd) need+=(etcd etcdctl) ;;
  esac
done
[ -n "${systems// /}" ] || die "SYSTEMS is empty (known: $known_systems)"
# only what the chosen systems use: SYSTEMS="rabia-wal redis-always" runs without etcd installed
for c in "${need[@]}"; do
  command -v "$c" >/dev/null || die "$c not found: run deploy/install-deps.sh as root (redis-server, etcd-server, etcd-client, util-linux)"
done
[ -x "$rabiad" ] || die "$rabiad not found: build first (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2)"
[ -x "$rabia_cli" ] || die "$rabia_cli not found: build first (cmake --build build --target rabia-cli)"
[ -x "$bench" ] || die "$bench not found: build it (cmake --build build --target rabia-bench) or set RABIA_BENCH"
taskset -c "$server_cpus" true 2>/dev/null || die "SERVER_CPUS=$server_cpus is not a CPU list this machine has (nproc: $(nproc))"
taskset -c "$client_cpus" true 2>/dev/null || die "CLIENT_CPUS=$client_cpus is not a CPU list this machine has (nproc: $(nproc))"
hz=$(getconf CLK_TCK)

dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-compare.XXXXXX")
pids=()       # every process this script started itself (redis, etcd, rabia-bench)
clusters=()   # rabia cluster dirs (local-cluster.sh stop stops them by their pid files)
stop_pids() { # PIDS...: SIGTERM, up to 5 s, then SIGKILL
  local p i
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "$@"; do
    for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
cleanup() {
  local c
  trap - EXIT INT TERM
  for c in "${clusters[@]}"; do RABIA_CLUSTER_DIR=$c ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true; done
  ((${#pids[@]})) && stop_pids "${pids[@]}"
  [ -n "${neighbour_pid:-}" ] && { kill "$neighbour_pid" 2>/dev/null || true; wait "$neighbour_pid" 2>/dev/null || true; }
  if [ -n "${KEEP_DIR:-}" ]; then echo "compare: data and logs kept in $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'echo "compare: interrupted; stopping everything it started" >&2; exit 130' INT TERM

# ---- CPU accounting --------------------------------------------------------
# cpu_of PIDS... -> user+sys seconds of those processes, all their threads and
# their reaped children (Redis forks for AOF rewrites), summed. Fields after
# the ")" that closes the command name: 12-15 = utime stime cutime cstime.
cpu_of() {
  local p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || { echo "compare: process $p is gone (it exited during the measurement: see the logs, run with KEEP_DIR=1)" >&2; return 1; }
    cat "/proc/$p/stat"
  done | awk -v hz="$hz" '{ sub(/^.*\) /, ""); split($0, f, " "); t += f[12] + f[13] + f[14] + f[15] } END { printf "%.2f", t / hz }'
}
now() { date +%s.%N; }
# sleep_until T0 OFFSET: sleep until T0 (a now) + OFFSET (an awk expression) seconds
sleep_until() {
  sleep "$(awk -v t0="$1" -v n="$(now)" "BEGIN { d = t0 + ($2) - n; printf \"%.3f\", (d > 0 ? d : 0) }")"
}

# ---- the systems -----------------------------------------------------------
# start_<system> sets sys_pids (server PIDs), sys_addr (rabia-bench --addr),
# sys_proto and sys_args (extra rabia-bench options); stop_system stops them.
sys_pids="" sys_addr="" sys_proto="" sys_args="" sys_count=""

start_rabia() { # NAME DURABILITY OFFSET [READ_INDEX [CLIENTS]]
  local c=$dir/$1 off=$3 i a="" last=3
  # ours to stop from before its start: this script killed while
  # local-cluster.sh starts it (kill PID: the replicas get no signal) must
  # not leave them running
  clusters+=("$c")
  RABIA_CLUSTER_DIR=$c RABIA_RESP_BASE=$((base + off)) RABIA_CLIENT_BASE=$((base + off + 10)) \
    RABIA_PEER_BASE=$((base + off + 20)) RABIA_EXTRA_ARGS="--durability $2 --read-index ${4:-yes}" RABIAD=$rabiad RABIA_CLI=$rabia_cli \
    taskset -c "$server_cpus" ./deploy/local-cluster.sh start 3 kv >"$dir/$1.start.log" 2>&1 || {
    cat "$dir/$1.start.log" >&2
    die "the rabia cluster ($1) did not start: see above"
  }
  sys_pids=$(cat "$c"/r1.pid "$c"/r2.pid "$c"/r3.pid | tr '\n' ' ')
  [ "${5:-all}" = one ] && last=1
  for ((i = 1; i <= last; i++)); do
    if [ "$rabia_proto" = resp ]; then a+="${a:+,}127.0.0.1:$((base + off + i))"; else a+="${a:+,}127.0.0.1:$((base + off + 10 + i))"; fi
  done
  # every replica takes clients (Rabia has no leader): spread connections over
  # all three, or (the -one systems) all on replica 1, whose batches then
  # carry every client's requests (bench/README.md, "Clients on one replica")
  sys_addr=$a sys_proto=$rabia_proto sys_args="" sys_count="resp $((base + off + 1))"
}

redis_start() { # PORT ARGS...: one redis-server, pinned, data under $dir; prints its PID
  local port=$1 i
  shift
  mkdir -p "$dir/redis$port"
  taskset -c "$server_cpus" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir/redis$port" \
    --daemonize no --logfile "$dir/redis$port.log" "$@" &
  pids+=($!)
  for ((i = 0; i < 100; i++)); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 5 "$dir/redis$port.log" >&2 || true
  die "redis-server on port $port did not answer PING within 10 s (port in use? log above)"
}

start_redis_always() {
  redis_start $((base + 301)) --save "" --appendonly yes --appendfsync always
  sys_pids=${pids[-1]} sys_addr=127.0.0.1:$((base + 301)) sys_proto=resp sys_args="" sys_count="resp $((base + 301))"
}
start_redis_nopersist() {
  redis_start $((base + 302)) --save "" --appendonly no
  sys_pids=${pids[-1]} sys_addr=127.0.0.1:$((base + 302)) sys_proto=resp sys_args="" sys_count="resp $((base + 302))"
}
start_redis_wait2() {
  local p=$((base + 310)) i n ps=""
  redis_start $p --save "" --appendonly yes --appendfsync always
  ps+="${pids[-1]} "
  for i in 1 2; do
    redis_start $((p + i)) --save "" --appendonly yes --appendfsync always --replicaof 127.0.0.1 $p
    ps+="${pids[-1]} "
  done
  for ((i = 0; i < 200; i++)); do
    n=$(redis-cli -p $p INFO replication | tr -d '\r' | sed -n 's/^connected_slaves://p')
    [ "$n" = 2 ] && [ "$(redis-cli -p $p SET compare:probe x)" = OK ] && [ "$(redis-cli -p $p WAIT 2 1000)" = 2 ] && break
    sleep 0.1
  done
  [ "$n" = 2 ] || die "the Redis primary on port $p has $n replicas connected after 20 s, not 2 (see $dir/redis*.log with KEEP_DIR=1)"
  redis-cli -p $p DEL compare:probe >/dev/null
  sys_pids=$ps sys_addr=127.0.0.1:$p sys_proto=resp sys_args="--wait-replicas 2" sys_count="resp $p"
}

start_etcd() {
  local i cl="" a="" ps="" ok
  for i in 1 2 3; do cl+="${cl:+,}e$i=http://127.0.0.1:$((base + 410 + i))"; done
  for i in 1 2 3; do
    taskset -c "$server_cpus" etcd --name "e$i" --data-dir "$dir/etcd$i" \
      --listen-client-urls "http://127.0.0.1:$((base + 400 + i))" --advertise-client-urls "http://127.0.0.1:$((base + 400 + i))" \
      --listen-peer-urls "http://127.0.0.1:$((base + 410 + i))" --initial-advertise-peer-urls "http://127.0.0.1:$((base + 410 + i))" \
      --initial-cluster "$cl" --initial-cluster-state new --initial-cluster-token "compare-$$" \
      >"$dir/etcd$i.log" 2>&1 &
    pids+=($!)
    ps+="$! "
    a+="${a:+,}127.0.0.1:$((base + 400 + i))"
  done
  for ((i = 0; i < 60; i++)); do
    ok=1
    ETCDCTL_API=3 etcdctl --endpoints "${a//127/http://127}" --dial-timeout 1s --command-timeout 2s endpoint health >/dev/null 2>&1 || ok=0
    ((ok)) && break
    sleep 0.5
  done
  ((ok)) || {
    tail -n 3 "$dir"/etcd*.log >&2
    die "etcd's 3 members were not all healthy within 30 s (etcdctl endpoint health; logs above)"
  }
  # spread connections over the 3 members: each forwards writes to the raft leader
  sys_pids=$ps sys_addr=$a sys_proto=etcd sys_args=""
  sys_count="etcd $((base + 401))"
}

start_system() {
  case $1 in
  rabia-wal) start_rabia rabia-wal wal 100 ;;
  rabia-memory) start_rabia rabia-memory memory 200 ;;
  rabia-wal-logreads) start_rabia rabia-wal-logreads wal 500 no ;;
  rabia-memory-logreads) start_rabia rabia-memory-logreads memory 600 no ;;
  rabia-wal-one) start_rabia rabia-wal-one wal 700 yes one ;;
  rabia-memory-one) start_rabia rabia-memory-one memory 800 yes one ;;
  redis-always) start_redis_always ;;
  redis-nopersist) start_redis_nopersist ;;
  redis-wait2) start_redis_wait2 ;;
  etcd) start_etcd ;;
  *) die "unknown system '$1' in SYSTEMS (known: rabia-wal rabia-memory rabia-wal-logreads rabia-memory-logreads rabia-wal-one rabia-memory-one redis-always redis-nopersist redis-wait2 etcd)" ;;
  esac
}
forget() { # PID: no longer ours to stop (it was stopped or has exited and was reaped)
  local p keep=()
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}
stop_system() {
  local c p
  for c in "${clusters[@]}"; do RABIA_CLUSTER_DIR=$c ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true; done
  clusters=()
  # shellcheck disable=SC2086
  stop_pids $sys_pids
  for p in $sys_pids; do forget "$p"; done
}

# placement: where each server process may run, as the kernel has it
placement() { # NAME
  local p
  for p in $sys_pids; do
    printf '  %-16s pid %-7s %-14s CPUs %s\n' "$1" "$p" "$(cat "/proc/$p/comm")" "$(taskset -pc "$p" | sed 's/.*: //')"
  done
}

# ---- one measurement -------------------------------------------------------
csv=$dir/rows.csv
echo "system,read_ratio,connections,pipeline,keys_before,requests,errors,seconds,throughput,p50_us,p99_us,cpu_us_per_req,server_cpu_util,gen_cpu_util" >"$csv"
# key_count -> how many keys the running system holds (etcd: the range
# count, which --limit does not cap; etcdctl 3.4 has no --count-only). There is no prefill:
# the write-only runs come first and fill the key space, as far as their
# throughput gets (random keys), before the 50% runs read it; the count
# says how far, since a GET of a missing key costs less than a hit.
key_count() {
  local n how=${sys_count% *} port=${sys_count#* }
  if [ "$how" = etcd ]; then
    n=$(ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:$port" get --prefix "" --limit 1 --write-out fields 2>/dev/null |
      sed -n 's/^"Count" : //p')
  else
    n=$(redis-cli -p "$port" DBSIZE 2>/dev/null)
  fi
  echo "${n:-?}"
}
measure() { # SYSTEM READ_RATIO PIPELINE
  local sys=$1 rr=$2 pp=$3 out=$dir/bench.$1.$2.$3 bpid c0 c1 t0 t1 g0 g1 last kb rc tl
  kb=$(key_count)
  tl=$(now)
  # shellcheck disable=SC2086
  taskset -c "$client_cpus" "$bench" run --proto "$sys_proto" --addr "$sys_addr" --connections "$conns" \
    --pipeline "$pp" --keys $keys --key-size $key_size --value-size $value_size --read-ratio "$rr" \
    --duration "$duration" --warmup "$warmup" --quiet --label "$sys r$rr P$pp" ${rate:+--rate "$rate"} $sys_args >"$out" 2>"$out.err" &
  bpid=$!
  pids+=("$bpid")
  # server CPU sampled inside the measured window, 0.5 s from each end, then
  # divided by the window's length and the throughput: CPU per request,
  # without the warm-up and the connection setup and teardown. The sample
  # times count from rabia-bench's launch (sleep_until), not from the end
  # of the first sample: on a busy machine the forks of the samples took
  # more than the 0.5 s margin and the last sample came after rabia-bench
  # had exited, which ended the whole run (half the runs at load 8).
  sleep_until "$tl" "$warmup + 0.5"
  # (separate assignments: set -e acts on each failed sample)
  t0=$(now)
  # shellcheck disable=SC2086
  c0=$(cpu_of $sys_pids)
  g0=$(cpu_of "$bpid") || g0=""
  sleep_until "$tl" "$warmup + $duration - 0.5"
  # (rabia-bench's first: it is the one about to exit)
  g1=$(cpu_of "$bpid") || g1=""
  t1=$(now)
  # shellcheck disable=SC2086
  c1=$(cpu_of $sys_pids)
  # exit 3: some requests failed; they are counted in errors= and shown in
  # the table rather than ending the run
  rc=0
  wait "$bpid" || rc=$?
  if ((rc != 0 && rc != 3)); then
    cat "$out.err" >&2
    die "rabia-bench failed against $sys (read ratio $rr, pipeline $pp; exit $rc): see above"
  fi
  last=$(tail -n 1 "$out")
  [[ $last == requests=* ]] || die "rabia-bench's last line is not its summary: '$last'"
  { [ -n "$g0" ] && [ -n "$g1" ]; } || die "rabia-bench ended before the measured window did (against $sys): its output: $(tail -n 3 "$out" "$out.err")"
  # requests=N errors=E seconds=S throughput=X p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=..
  awk -v sys="$sys" -v rr="$rr" -v c="$conns" -v pp="$pp" -v kb="$kb" -v dc="$(awk -v a="$c0" -v b="$c1" 'BEGIN{print b-a}')" \
    -v dg="$(awk -v a="$g0" -v b="$g1" 'BEGIN{print b-a}')" -v dt="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" '
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END {
      cpu = (v["throughput"] > 0) ? dc / dt / v["throughput"] * 1e6 : 0
      printf "%s,%s,%s,%s,%s,%d,%d,%.2f,%.0f,%.0f,%.0f,%.1f,%.2f,%.2f\n", sys, rr, c, pp, kb, v["requests"], v["errors"],
        v["seconds"], v["throughput"], v["p50_us"], v["p99_us"], cpu, dc / dt, dg / dt
    }' <<<"$last" | tee -a "$csv" | awk -F, '{ printf "  %-16s reads %-4s P%-3s %9s req/s  p50 %7s us  p99 %8s us  %7s CPU-us/req  server CPU %s  rabia-bench CPU %s  errors %s  keys before %s\n", $1, $2, $4, $9, $10, $11, $12, $13, $14, $7, $5 }'
  forget "$bpid"
}

# ---- the run ---------------------------------------------------------------
stamp=$(date -u +%Y-%m-%dT%H%MZ)
# two runs in one minute: the second keeps the first's files (seconds added)
[ -e "bench/results/compare-$stamp.md" ] && stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "compare: $loop_desc, $duration s per measurement after $warmup s of warm-up; servers on CPUs $server_cpus, rabia-bench on CPUs $client_cpus; data under $dir ($(df --output=fstype "$dir" | tail -n 1 | tr -d ' '))"
placement_txt=$dir/placement.txt
: >"$placement_txt"
neighbour_pid=
if [ "${NEIGHBOUR:-0}" = 1 ]; then
  taskset -c "${server_cpus%%[,-]*}" nice -n 19 bash -c 'while :; do :; done' &
  neighbour_pid=$!
  echo "compare: a CPU-bound neighbour (nice 19 busy loop, pid $neighbour_pid) runs on CPU ${server_cpus%%[,-]*} throughout" |
    tee -a "$placement_txt"
fi
for sys in $systems; do
  start_system "$sys"
  placement "$sys" | tee -a "$placement_txt"
  ps_list=$pipelines
  [ "$sys" = etcd ] && ps_list=$etcd_pipelines
  for rr in $read_ratios; do
    for pp in $ps_list; do measure "$sys" "$rr" "$pp"; done
  done
  stop_system
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- tables ----------------------------------------------------------------
mkdir -p bench/results
out_md=bench/results/compare-$stamp.md
out_csv=bench/results/compare-$stamp.csv
# ratios: against redis-always for every system, and the two pairs
awk -F, -v OFS=, '
  NR == 1 { print $0, "thr_vs_redis_always", "p50_vs_redis_always", "p99_vs_redis_always", "cpu_vs_redis_always"; next }
  { row[NR] = $0; k = $2 "|" $4; if ($1 == "redis-always") { rt[k] = $9; r50[k] = $10; r99[k] = $11; rc[k] = $12 } n = NR }
  function q(a, b) { return (b > 0) ? sprintf("%.2f", a / b) : "" }
  END { for (i = 2; i <= n; i++) { split(row[i], f, ","); k = f[2] "|" f[4]
          print row[i], q(f[9], rt[k]), q(f[10], r50[k]), q(f[11], r99[k]), q(f[12], rc[k]) } }' "$csv" >"$out_csv"

table() { # the markdown table, from the CSV
  awk -F, '
    NR == 1 { print "| system | writes | P | req/s | p50 us | p99 us | server CPU us/req | server CPU | rabia-bench CPU | errors | keys before | req/s vs redis-always | p99 vs redis-always | CPU/req vs redis-always |"
              print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"; next }
    { printf "| %s | %d%% | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, (1 - $2) * 100, $4, $9, $10, $11, $12, $13, $14, $7, $5, $15, $17, $18 }' "$out_csv"
}
pairs() { # rabia-memory vs redis-wait2, rabia-wal vs etcd (and the two against Redis alone), same workload
  awk -F, '
    NR > 1 { k = $2 "|" $4; t[$1, k] = $9; p50[$1, k] = $10; p99[$1, k] = $11; c[$1, k] = $12
             if (!(k in seen)) { seen[k] = 1; order[++nk] = k } }
    function q(a, b) { return (b > 0 && a != "") ? sprintf("%.2f", a / b) : "n/a" }
    END {
      print "| pair | writes | P | req/s ratio | p50 ratio | p99 ratio | CPU/req ratio |"
      print "|---|---:|---:|---:|---:|---:|---:|"
      np = split("rabia-memory:redis-wait2 rabia-wal:etcd rabia-wal:redis-always rabia-memory:redis-nopersist rabia-wal:rabia-wal-logreads rabia-memory:rabia-memory-logreads rabia-wal-one:redis-always rabia-wal-one:rabia-wal rabia-memory-one:rabia-memory", pr, " ")
      for (j = 1; j <= np; j++) {
        split(pr[j], s, ":")
        for (i = 1; i <= nk; i++) {
          k = order[i]
          if (!((s[1], k) in t) || !((s[2], k) in t)) continue
          split(k, w, "|")
          printf "| %s / %s | %d%% | %s | %s | %s | %s | %s |\n", s[1], s[2], (1 - w[1]) * 100, w[2],
            q(t[s[1], k], t[s[2], k]), q(p50[s[1], k], p50[s[2], k]), q(p99[s[1], k], p99[s[2], k]), q(c[s[1], k], c[s[2], k])
        }
      }
    }' "$out_csv"
}

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
{
  echo "# rabia vs Redis vs etcd, one run ($stamp)"
  echo
  echo "\`${rate:+RATE=$rate }bench/compare.sh $duration\`: rabia-bench, $conns connections per run, $loop_desc, $key_size-byte keys, $value_size-byte values over $keys keys;"
  echo "$duration s measured after $warmup s of warm-up. \"writes\" = share of SETs/puts (the rest GETs/ranges). rabia driven over $rabia_proto."
  echo "Server CPU us/req = user+sys of every server process of the system (/proc/PID/stat) over the measured window / requests;"
  echo "server CPU and rabia-bench CPU = cores busy (1.00 = one core). Ratios against redis-always in the same run."
  echo
  table
  echo
  pairs
  echo
  echo "## Machine and placement"
  echo
  echo "- $(nproc) CPUs, $cpu_model; kernel $(uname -r); load average $load0 before, $load1 after (the machine is shared)"
  echo "- data on $(df --output=source,fstype "$dir" | tail -n 1 | tr -s ' ') ($dir)"
  echo "- servers pinned to CPUs $server_cpus, rabia-bench to CPUs $client_cpus; each system started, measured and stopped in turn"
  echo "- $(command -v redis-server >/dev/null && redis-server --version | cut -d' ' -f1-3)$(command -v etcd >/dev/null && echo "; etcd $(etcd --version | sed -n 's/^etcd Version: //p') (Go $(etcd --version | sed -n 's/^Go Version: go//p'))"); rabia $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)')"
  echo
  echo '```'
  cat "$placement_txt"
  echo '```'
} >"$out_md"
echo
cat "$out_md"
echo
echo "compare: wrote $out_md and $out_csv"
