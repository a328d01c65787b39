#!/usr/bin/env bash
# jepsen: linearizability of real replicas under crashes and pauses, checked
# the way Jepsen's register test does. Eight python3-redis clients run GET,
# SET (values never written before) and compare-and-set (an EVAL) on five
# keys against a 3-replica KV cluster (durability wal, small log segments so
# that snapshots and released segments happen during the run), recording
# each operation's invocation and completion (jepsen.py). Meanwhile a
# nemesis, one fault at a time with calm in between: kill -9 of one replica,
# of two (no majority left), of all three at once (whole-cluster crash),
# each restarted from its data directory, and SIGSTOP of one replica
# (SIGCONT after 1-3 s). Afterwards the replicas must converge, every key is
# read at every replica, and the whole history must be linearizable
# (lincheck: the simulator's exact checker, tests/sim/linearize.h): no
# stale or lost read, no acknowledged write lost, no write applied twice.
#
# The checker must be able to fail on such a history: the same clients
# against a redis-server primary whose reads go to a replica that serves
# stale data (before its first synchronization) must be found not
# linearizable.
#
#   JEPSEN_SECONDS  load duration (default 40)
#   JEPSEN_SEED     seed of the faults' order and victims and of the clients'
#                   choices (default: random; printed); real processes' timing
#                   is not replayed
#   JEPSEN_EXTRA    extra rabiad arguments (e.g. "--window 8 --policy classes")
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init jepsen 39
need_py_redis
need_cmd redis-server redis-cli
LINCHECK=${LINCHECK:-$IT_REPO/build/tests/sim/lincheck}
[ -x "$LINCHECK" ] || fail "lincheck not found at $LINCHECK: build first (cmake --build build)"
SECS=${JEPSEN_SECONDS:-40}
SEED=${JEPSEN_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$SEED
J=$IT_REPO/tests/integration/jepsen.py
say "seed $SEED (JEPSEN_SEED=$SEED gives the same faults in the same order and the same client choices)"

export RABIA_EXTRA_ARGS="--durability wal --max-log-size 4194304 --wal-segment-bytes 4194304 ${JEPSEN_EXTRA:-}"
cluster_start 3 kv
wait_ready 20 1 2 3
PORTS="$(resp_port 1),$(resp_port 2),$(resp_port 3)"
H=$IT_DIR/history.txt

bg load "$PY" "$J" run --ports "$PORTS" --out "$H" --seconds "$SECS" --seed "$SEED" --clients 8 --keys 5
LOAD=$BG_PID
t_end=$((SECONDS + SECS - 3))

# rnd A B: a number of seconds in [A, B) with two decimals
rnd() { awk -v r=$RANDOM -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a + (b - a) * (r % 1000) / 1000 }'; }
kill_set() {
  local i
  for i in "$@"; do cluster_kill "$i"; done
  sleep "$(rnd 0.3 2)"
  for i in "$@"; do cluster_restart "$i"; done
}
declare -A done_faults=()
faults=0
while ((SECONDS < t_end)); do
  sleep "$(rnd 1 2.5)"
  ((SECONDS < t_end)) || break
  kill -0 "$LOAD" 2>/dev/null || fail "the clients ended early (see $IT_DIR/load.out)"
  # every kind once first, in a seeded order, then at random
  kinds=(one two all pause)
  k=$((RANDOM % 4))
  if ((${#done_faults[@]} < 4)); then
    while [ -n "${done_faults[${kinds[$k]}]:-}" ]; do k=$(((k + 1) % 4)); done
  fi
  kind=${kinds[$k]}
  done_faults[$kind]=1
  a=$((RANDOM % 3 + 1))
  b=$((a % 3 + 1))
  case $kind in
  one) kill_set "$a" ;;
  two) kill_set "$a" "$b" ;;
  all) kill_set 1 2 3 ;;
  pause)
    pid=$(replica_pid "$a")
    pid_runs "$pid" "$RABIAD" || fail "replica $a (pid $pid) is not running"
    kill -STOP "$pid"
    say "SIGSTOP replica $a (pid $pid)"
    sleep "$(rnd 1 3)"
    kill -CONT "$pid"
    say "SIGCONT replica $a"
    ;;
  esac
  faults=$((faults + 1))
  # the next fault starts from a cluster that serves again
  wait_ready 30 1 2 3
done
bg_wait "$LOAD" $((SECS + 30))
[ "$BG_RC" = 0 ] || fail "jepsen.py run exited $BG_RC (see $IT_DIR/load.out)"
sed "s/^/[$IT_NAME] clients: /" "$IT_DIR/load.out"
((${#done_faults[@]} == 4)) || fail "only ${#done_faults[@]} kinds of fault fitted in ${SECS}s (${!done_faults[*]}): raise JEPSEN_SECONDS"
ok "$faults faults injected, every kind at least once (${!done_faults[*]})"

wait_ready 30 1 2 3
wait_converged 60 1 2 3
"$PY" "$J" final --ports "$PORTS" --out "$H" --keys 5 | sed "s/^/[$IT_NAME] /"
out=$("$LINCHECK" "$H") || {
  rc=$?
  printf '%s\n' "$out"
  fail "lincheck exited $rc on $H (1: not linearizable, 2: gave up, 3: bad input)"
}
printf '%s\n' "$out" | sed "s/^/[$IT_NAME] /"
ok "the history is linearizable ($(sed -n 's/^history [^:]*: \([0-9]*\) ops.*/\1/p' <<<"$out") ops)"
# the run must have exercised what it claims: writes and CASes that
# succeeded, and operations the faults left with an unknown outcome
reads=$(grep -c ' r [0-9]* [0-9]* [0-9]* ok ' "$H" || true)
swaps=$(grep -c ' c [0-9]* [0-9]* 1 ok ' "$H" || true)
unknown=$(grep -c ' unknown ' "$H" || true)
((reads >= 500 && swaps >= 100)) || fail "too little load to mean anything: $reads reads, $swaps successful CASes"
((unknown >= 1)) || fail "no operation had an unknown outcome: the faults did not reach the clients"
ok "$reads ok reads, $swaps successful CASes, $unknown operations with unknown outcome"

# --- the negative control: reads at a Redis replica that serves its own,
# older data (replica-serve-stale-data, Redis's default) while its first
# synchronization waits out the primary's repl-diskless-sync-delay
say "negative control: redis-server primary, reads at a replica still waiting for its first sync"
RP=$((RABIA_RESP_BASE + 50))
RR=$((RABIA_RESP_BASE + 51))
mkdir -p "$IT_DIR/redis"
bg redis-primary redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$IT_DIR/redis" \
  --repl-diskless-sync yes --repl-diskless-sync-delay 10
bg redis-replica redis-server --port "$RR" --bind 127.0.0.1 --save "" --appendonly no --dir "$IT_DIR/redis" \
  --replicaof 127.0.0.1 "$RP" --replica-serve-stale-data yes
for ((k = 0; k < 100; k++)); do
  timeout 2 redis-cli -p "$RP" PING 2>/dev/null | grep -q PONG &&
    timeout 2 redis-cli -p "$RR" PING 2>/dev/null | grep -q PONG && break
  sleep 0.1
done
((k < 100)) || fail "redis-server did not start (see $IT_DIR/redis-*.out)"
NEG=$IT_DIR/negative.txt
# plain clients: the TLS options the cluster may use do not apply to Redis
RABIA_TLS_DIR='' "$PY" "$J" run --ports "$RP" --read-ports "$RR" --out "$NEG" --seconds 3 --seed "$SEED" \
  --clients 8 --keys 5 | sed "s/^/[$IT_NAME] control: /"
link=$(timeout 2 redis-cli -p "$RR" INFO replication | tr -d '\r' | sed -n 's/^master_link_status://p')
say "control: the replica's master_link_status after the run: $link"
rc=0
out=$("$LINCHECK" --show 6 "$NEG") || rc=$?
printf '%s\n' "$out" | sed "s/^/[$IT_NAME] control: /"
expect_eq "lincheck's exit status on reads at a stale Redis replica (1: not linearizable)" "$rc" 1
