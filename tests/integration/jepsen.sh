#!/usr/bin/env bash
# jepsen: linearizability of real replicas under crashes, pauses and
# partitions, checked the way Jepsen's register test does. Eight
# python3-redis clients run GET, SET (values never written before) and
# compare-and-set (an EVAL) on five keys against a 3-replica KV cluster
# (5 or 7 with JEPSEN_N; durability wal, small log segments so that
# snapshots and released segments happen during the run), recording each
# operation's invocation and completion (jepsen.py). Meanwhile a nemesis,
# one fault at a time with calm in between: kill -9 of one replica, of a
# majority (two of three), of all of them at once (whole-cluster crash),
# each restarted from its data directory; SIGSTOP of one replica (SIGCONT
# after 1-3 s); and, with each replica in a network namespace of its own on
# a bridge (as root: the default, JEPSEN_NET=netns), partitions by iptables
# on peer traffic: one replica cut off from all others, or two cut from
# each other while the rest reach both (clients still reach every
# replica). Without namespaces the replicas run on 127.0.0.1 with no
# partitions (JEPSEN_NET=loopback; said in the output). Afterwards the
# replicas must converge, every key is read at every replica, and the
# whole history must be linearizable (lincheck: the simulator's exact
# checker, tests/sim/linearize.h): no stale or lost read, no acknowledged
# write lost, no write applied twice. Beside them four clients run
# Jepsen's bank test: transfers between eight accounts in WATCH/MULTI/EXEC
# transactions, and reads of all accounts (MGET, or GETs in MULTI/EXEC)
# that must always sum to the opening total; at the end every replica
# holds the same balances with that sum.
#
# The checker must be able to fail on such a history: the same clients
# against a redis-server primary whose reads go to a replica that serves
# stale data (before its first synchronization) must be found not
# linearizable.
#
#   JEPSEN_SECONDS  how long faults go on (default 40; longer if not every kind
#                   has had its turn, up to twice that)
#   JEPSEN_SEED     seed of the faults' order and victims and of the clients'
#                   choices (default: random; printed); real processes' timing
#                   is not replayed
#   JEPSEN_EXTRA    extra rabiad arguments (e.g. "--window 8 --policy classes")
#   JEPSEN_NET      netns (default, falls back to loopback) or loopback
#   JEPSEN_N        replicas (default 3; 3 to 7): with 5 or more, "most"
#                   kills f+1 of them and a "split" partition (f against
#                   f+1) joins the faults
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init jepsen 39
need_py_redis
need_cmd redis-server redis-cli
LINCHECK=${LINCHECK:-$IT_REPO/build/tests/sim/lincheck}
[ -x "$LINCHECK" ] || fail "lincheck not found at $LINCHECK: build first (cmake --build build)"
SECS=${JEPSEN_SECONDS:-40}
N=${JEPSEN_N:-3}
[[ $N =~ ^[3-7]$ ]] || fail "JEPSEN_N=$N: 3 to 7 replicas"
F=$(((N - 1) / 2))
mapfile -t IDS < <(seq 1 "$N")
SEED=${JEPSEN_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$SEED
J=$IT_REPO/tests/integration/jepsen.py
say "seed $SEED (JEPSEN_SEED=$SEED gives the same faults in the same order and the same client choices)"

export RABIA_EXTRA_ARGS="--durability wal --max-log-size 4194304 --wal-segment-bytes 4194304 ${JEPSEN_EXTRA:-}"

# --- where the replicas run: each in a network namespace of its own on a
# bridge (partitions possible), or all on 127.0.0.1 (no partitions)
NET=${JEPSEN_NET:-netns}
netns_setup() {
  [ "$(id -u)" = 0 ] || { say "not root: no network namespaces"; return 1; }
  command -v ip >/dev/null && command -v iptables >/dev/null || { say "no ip or iptables"; return 1; }
  SUB=$(free_subnet 10.214) || { say "no free 10.214.x.0/24 subnet"; return 1; }
  BR=rjb$$
  ip link add "$BR" type bridge 2>/dev/null || { say "cannot create a bridge"; return 1; }
  on_exit "ip link del $BR"
  ip addr add "$SUB.254/24" dev "$BR"
  ip link set "$BR" up
  for i in "${IDS[@]}"; do
    netns_veth "rabia-jp$$-$i" "rj$$h$i" "rj$$n$i" "$SUB.$i" || { say "$NETNS_WHY"; return 1; }
    ip link set "rj$$h$i" master "$BR"
    ip netns exec "rabia-jp$$-$i" iptables -L -n >/dev/null 2>&1 || { say "no iptables inside a namespace"; return 1; }
  done
  return 0
}
if [ "$NET" = netns ] && ! netns_setup; then
  say "falling back to 127.0.0.1: the run has no partitions (JEPSEN_NET=netns needs root, ip, iptables and bridges)"
  NET=loopback
fi
if [ "$NET" = netns ]; then
  host() { echo "$SUB.$1"; }
  native_addr() { echo "$(host "$1"):$(native_port "$1")"; }
  MEMBERS=""
  for i in "${IDS[@]}"; do MEMBERS+="${MEMBERS:+,}$i=$(host "$i"):$(peer_port "$i")"; done
  start_replica() {
    local i=$1
    mkdir -p "$IT_DIR/r$i"
    # shellcheck disable=SC2086  # RABIA_EXTRA_ARGS and the TLS options are word lists
    ip netns exec "rabia-jp$$-$i" "$RABIAD" --id "$i" --members "$MEMBERS" --peer-listen "$(host "$i"):$(peer_port "$i")" \
      --client-listen "$(native_addr "$i")" --resp-listen "$(host "$i"):$(resp_port "$i")" --data-dir "$IT_DIR/r$i" \
      --state-machine kv $RABIA_EXTRA_ARGS $(it_tls_args "$i") >>"$IT_DIR/r$i.log" 2>&1 &
    echo $! >"$IT_DIR/r$i.pid"
    IT_DAEMON_PIDS+=($!)
  }
  replica_pid() { cat "$IT_DIR/r$1.pid" 2>/dev/null || true; }
  cluster_kill() {
    local pid
    pid=$(replica_pid "$1")
    pid_runs "$pid" "$RABIAD" || fail "replica $1 (pid $pid) was not running before kill -9"
    kill -KILL "$pid"
    local k
    for ((k = 0; k < 100; k++)); do pid_runs "$pid" "$RABIAD" || break; sleep 0.02; done
    pid_runs "$pid" "$RABIAD" && fail "replica $1 (pid $pid) survived kill -9"
    say "kill -9 replica $1 (pid $pid)"
  }
  cluster_restart() {
    start_replica "$1"
    say "restarted replica $1 (pid $(replica_pid "$1"))"
  }
  for i in "${IDS[@]}"; do start_replica "$i"; done
  say "replicas 1-$N in namespaces rabia-jp$$-1..$N at $SUB.1-$N on bridge $BR (clients from $SUB.254): pids $(for i in "${IDS[@]}"; do printf '%s ' "$(replica_pid "$i")"; done)"
else
  cluster_start "$N" kv
fi
wait_ready 20 "${IDS[@]}"
PORTS=""
for i in "${IDS[@]}"; do
  if [ "$NET" = netns ]; then PORTS+="${PORTS:+,}$(host "$i"):$(resp_port "$i")"; else PORTS+="${PORTS:+,}$(resp_port "$i")"; fi
done
H=$IT_DIR/history.txt

# the clients run until the nemesis is done (at most 2 x JEPSEN_SECONDS)
bg load "$PY" "$J" run --ports "$PORTS" --out "$H" --seconds $((2 * SECS + 30)) --stop "$IT_DIR/stop" --seed "$SEED" \
  --clients 8 --keys 5 --bank-clients 4
LOAD=$BG_PID
t_end=$((SECONDS + SECS - 3))
t_hard=$((SECONDS + 2 * SECS))

# rnd A B: a number of seconds in [A, B) with two decimals
rnd() { awk -v r=$RANDOM -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a + (b - a) * (r % 1000) / 1000 }'; }
kill_set() {
  local i
  for i in "$@"; do cluster_kill "$i"; done
  sleep "$(rnd 0.3 2)"
  for i in "$@"; do cluster_restart "$i"; done
}
# drop_links I J...: replica I drops everything from and to replicas J... (peer
# traffic only: clients, on the bridge's address, still reach it); heal I
drop_links() {
  local i=$1 j
  shift
  for j in "$@"; do
    ip netns exec "rabia-jp$$-$i" iptables -A INPUT -s "$(host "$j")" -j DROP
    ip netns exec "rabia-jp$$-$i" iptables -A OUTPUT -d "$(host "$j")" -j DROP
  done
}
heal() { ip netns exec "rabia-jp$$-$1" iptables -F INPUT && ip netns exec "rabia-jp$$-$1" iptables -F OUTPUT; }
kinds=(one most all pause)
[ "$NET" = netns ] && kinds+=(isolate bridge)
[ "$NET" = netns ] && ((N >= 5)) && kinds+=(split)
nk=${#kinds[@]}
declare -A done_faults=()
faults=0
# faults until JEPSEN_SECONDS have passed and every kind was tried once
while ((SECONDS < t_hard)) && ((SECONDS < t_end || ${#done_faults[@]} < nk)); do
  sleep "$(rnd 1 2.5)"
  kill -0 "$LOAD" 2>/dev/null || fail "the clients ended early (see $IT_DIR/load.out)"
  # every kind once first, in a seeded order, then at random
  k=$((RANDOM % nk))
  if ((${#done_faults[@]} < nk)); then
    while [ -n "${done_faults[${kinds[$k]}]:-}" ]; do k=$(((k + 1) % nk)); done
  fi
  kind=${kinds[$k]}
  done_faults[$kind]=1
  # the victims: the replicas in a seeded random order
  v=("${IDS[@]}")
  for ((i = N - 1; i > 0; i--)); do
    j=$((RANDOM % (i + 1)))
    t=${v[$i]}
    v[$i]=${v[$j]}
    v[$j]=$t
  done
  a=${v[0]}
  b=${v[1]}
  case $kind in
  one) kill_set "$a" ;;
  most) kill_set "${v[@]:0:F+1}" ;; # no majority left
  all) kill_set "${IDS[@]}" ;;
  pause)
    pid=$(replica_pid "$a")
    pid_runs "$pid" "$RABIAD" || fail "replica $a (pid $pid) is not running"
    kill -STOP "$pid"
    say "SIGSTOP replica $a (pid $pid)"
    sleep "$(rnd 1 3)"
    kill -CONT "$pid"
    say "SIGCONT replica $a"
    ;;
  isolate) # a minority of one: its clients' reads and writes must wait
    drop_links "$a" "${v[@]:1}"
    say "partition: replica $a cut off from ${v[*]:1}"
    sleep "$(rnd 1 4)"
    heal "$a"
    say "healed"
    ;;
  bridge) # not transitive: a and b cannot talk, the others talk to both
    drop_links "$a" "$b"
    drop_links "$b" "$a"
    say "partition: replicas $a and $b cut from each other, ${v[*]:2} reach both"
    sleep "$(rnd 1 4)"
    heal "$a"
    heal "$b"
    say "healed"
    ;;
  split) # a minority of F against a majority of F+1
    for i in "${v[@]:0:F}"; do drop_links "$i" "${v[@]:F}"; done
    for i in "${v[@]:F}"; do drop_links "$i" "${v[@]:0:F}"; done
    say "partition: replicas ${v[*]:0:F} | ${v[*]:F}"
    sleep "$(rnd 1 4)"
    for i in "${IDS[@]}"; do heal "$i"; done
    say "healed"
    ;;
  esac
  faults=$((faults + 1))
  # the next fault starts from a cluster that serves again
  wait_ready 30 "${IDS[@]}"
done
sleep 1.5 # the clients see the healthy cluster again before they stop
touch "$IT_DIR/stop"
bg_wait "$LOAD" 30
sed "s/^/[$IT_NAME] clients: /" "$IT_DIR/load.out"
[ "$BG_RC" = 0 ] || fail "jepsen.py run exited $BG_RC (1 with WRONG lines: a read saw money created or lost, or a value nobody wrote)"
((${#done_faults[@]} == nk)) || fail "only ${#done_faults[@]} of $nk kinds of fault fitted in $((2 * SECS))s (${!done_faults[*]}): raise JEPSEN_SECONDS"
ok "$faults faults injected, every kind at least once (${!done_faults[*]}; replicas on $NET)"

wait_ready 30 "${IDS[@]}"
wait_converged 60 "${IDS[@]}"
rc=0
out=$("$PY" "$J" final --ports "$PORTS" --out "$H" --keys 5 --bank-clients 4 2>&1) || rc=$?
printf '%s\n' "$out" | sed "s/^/[$IT_NAME] /"
[ "$rc" = 0 ] || fail "jepsen.py final exited $rc"
ok "bank: every completed read summed to 800, and the final balances are equal on all $N replicas"
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
# the reads were answered by the read index (core.h, READ INDEX), not as
# slots of the log: INFO's counters since each replica's last start
indexed=0
for i in "${IDS[@]}"; do
  if [ "$NET" = netns ]; then h=$(host "$i"); else h=127.0.0.1; fi
  v=$(timeout 20 redis-cli -h "$h" -p "$(resp_port "$i")" INFO sessions | tr -d '\r' | sed -n 's/^reads_indexed://p')
  indexed=$((indexed + ${v:-0}))
done
if [[ " $RABIA_EXTRA_ARGS " == *" --read-index no "* ]]; then
  expect_eq "reads answered by the read index (read-index no)" "$indexed" 0
else
  ((indexed >= 100)) || fail "only $indexed reads answered by the read index since the replicas' last starts"
  ok "$indexed reads answered by the read index since the replicas' last starts"
fi

# --- the negative control: reads at a Redis replica that serves its own,
# older data (replica-serve-stale-data, Redis's default) while its first
# synchronization waits out the primary's repl-diskless-sync-delay
say "negative control: redis-server primary, reads at a replica still waiting for its first sync"
# plain redis-cli and clients: the TLS wrappers (lib.sh it_tls_wrap) are for the cluster
PATH=${PATH#"$IT_DIR/tls-bin:"}
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
RABIA_TLS_DIR='' "$PY" "$J" run --ports "$RP" --read-ports "$RR" --out "$NEG" --seconds 3 --seed "$SEED" \
  --clients 8 --keys 5 | sed "s/^/[$IT_NAME] control: /"
link=$(timeout 2 redis-cli -p "$RR" INFO replication | tr -d '\r' | sed -n 's/^master_link_status://p')
say "control: the replica's master_link_status after the run: $link"
rc=0
out=$("$LINCHECK" --show 6 "$NEG") || rc=$?
printf '%s\n' "$out" | sed "s/^/[$IT_NAME] control: /"
expect_eq "lincheck's exit status on reads at a stale Redis replica (1: not linearizable)" "$rc" 1
