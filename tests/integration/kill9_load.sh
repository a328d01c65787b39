#!/usr/bin/env bash
# kill9_load: exactly-once under crashes. Two load generators run
# `rabia-cli bench-counter 20000` rounds back to back (pipelined increments,
# each retried across the replicas under the same session and sequence
# number) against a 3-replica counter cluster, while each replica in turn is
# killed with -9 and restarted. Every round must end with all its increments
# acknowledged (exit 0), and the counter must equal exactly the number of
# acknowledged increments: none lost, none applied twice. Then all replicas
# reach the same state hash.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init kill9_load 4
ROUND=${KILL9_ROUND:-20000}  # increments per bench-counter run
MAX_ROUNDS=60                # per generator: bounds the load in count
cluster_start 3 counter
A=$(all_addrs 3)
expect_eq "counter set 0" "$(cli -a "$A" counter set 0)" 0

# load NAME ADDRS: bench-counter rounds until $IT_DIR/stop-load exists (or a
# round fails, or MAX_ROUNDS); one "round exit-status" line per round in
# $IT_DIR/NAME.rounds. Runs in the background; SIGTERM stops its client too.
load() {
  local name=$1 addrs=$2 r=0 rc child=
  trap '[ -n "$child" ] && kill "$child" 2>/dev/null; exit 143' TERM
  while [ ! -e "$IT_DIR/stop-load" ] && ((r < MAX_ROUNDS)); do
    r=$((r + 1))
    timeout 60 "$RABIA_CLI" -a "$addrs" bench-counter "$ROUND" >"$IT_DIR/$name.r$r.out" 2>&1 &
    child=$!
    rc=0
    wait "$child" || rc=$?
    child=
    echo "$r $rc" >>"$IT_DIR/$name.rounds"
    ((rc == 0)) || break
  done
}

say "two load generators: bench-counter $ROUND, round after round"
bg load1 load load1 "$A"
p1=$BG_PID
bg load2 load load2 "$(native_addr 3),$(native_addr 1),$(native_addr 2)" # other order
p2=$BG_PID
say "load generators: pids $p1 $p2"

for victim in 1 2 3; do
  sleep 0.6
  v=$(snapshot 1 2 3)
  for p in $p1 $p2; do kill -0 "$p" 2>/dev/null || fail "load generator $p ended before replica $victim was killed (see *.rounds)"; done
  cluster_kill "$victim"
  say "  under load; applied/state_hash before: $v"
  sleep 0.7
  cluster_restart "$victim"
  wait_ready 20 1 2 3
  say "  replica $victim back: applied/state_hash $(snapshot 1 2 3)"
done
sleep 0.5
touch "$IT_DIR/stop-load"
say "stopping the load (each generator finishes its round)"
bg_wait "$p1" 60
bg_wait "$p2" 60

total=0
for g in load1 load2; do
  [ -s "$IT_DIR/$g.rounds" ] || fail "$g ran no round"
  rounds=$(wc -l <"$IT_DIR/$g.rounds")
  bad=$(awk '$2 != 0' "$IT_DIR/$g.rounds")
  if [ -n "$bad" ]; then
    r=${bad%% *}
    sed "s/^/[$IT_NAME]     $g round $r: /" "$IT_DIR/$g.r$r.out"
    fail "$g: bench-counter round $r exited ${bad#* } (not every increment acknowledged)"
  fi
  acked=0
  for ((r = 1; r <= rounds; r++)); do
    grep -q "^bench-counter: $ROUND increments in" "$IT_DIR/$g.r$r.out" || fail "$g round $r: no '$ROUND increments' summary"
    acked=$((acked + ROUND))
  done
  sed "s/^/[$IT_NAME]     $g last round: /" "$IT_DIR/$g.r$rounds.out"
  ok "$g: $rounds rounds, all exit 0: $acked increments acknowledged"
  total=$((total + acked))
done
for i in 1 2 3; do
  expect_eq "replica $i: counter get = acknowledged increments" "$(cli -a "$(native_addr "$i")" counter get)" "$total"
done
wait_converged 15 1 2 3
{ grep -h "installed snapshot" "$RABIA_CLUSTER_DIR"/r*.log || echo "no snapshot installed: the restarted replicas resumed from their logs"; } |
  sed "s/^/[$IT_NAME]     log: /"
