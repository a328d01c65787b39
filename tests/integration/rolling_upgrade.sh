#!/usr/bin/env bash
# rolling_upgrade: replicas replaced one at a time while the cluster serves.
#
# A 3-replica KV cluster of an older build (OLD_RABIAD; run by
# `tests/upgrade.sh --rolling`, which builds it) takes writes from two
# python3-redis writers that record every acknowledged SET. Each replica in
# turn is stopped with SIGTERM and started again from its data directory with
# this build (RABIAD): the cluster runs mixed (new and old replicas voting in
# the same slots) between the steps, and writes must be acknowledged in every
# mixed phase. Then replica 1 is rolled back to the old build and forward
# again (the operator's way back when a new build misbehaves: the old build
# reads what the new one wrote while the log's segment version is one it
# reads, persist/wal.c SEG_VERSION_MIN). At the end every acknowledged write
# is present with its value on all three replicas and their state hashes
# agree.
#
# Only builds of one protocol version mix (include/rabia/types.h,
# RABIA_PROTOCOL_VERSION; a replica refuses a peer's HELLO of another
# version). Across versions, stop the cluster and start the new build on the
# same data directories (tests/upgrade.sh without --rolling).
#
# Without OLD_RABIAD both builds are this one: a rolling restart under load,
# as an operator does for a configuration change (ctest's
# integration.rolling_upgrade).
#
#   ROLLING_PHASE_S   seconds of load in each phase (default 3)
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init rolling_upgrade 35
need_cmd redis-cli
need_py_redis
OLD_RABIAD=${OLD_RABIAD:-$RABIAD}
[ -x "$OLD_RABIAD" ] || fail "OLD_RABIAD=$OLD_RABIAD is not an executable (tests/upgrade.sh --rolling builds one)"
PHASE=${ROLLING_PHASE_S:-3}
NEW_RABIAD=$RABIAD
old_version="$("$OLD_RABIAD" --version 2>&1 | head -n 1)"
new_version="$("$NEW_RABIAD" --version 2>&1 | head -n 1)"
say "old: $old_version ($OLD_RABIAD); new: $new_version ($NEW_RABIAD)"
# rabiad --version: "rabiad X.Y.Z (protocol N)"
proto() { sed -n 's/.*(protocol \([0-9]*\)).*/\1/p' <<<"$1"; }
[ -n "$(proto "$old_version")" ] || fail "the old build's --version does not name its protocol version: '$old_version'"
[ "$(proto "$old_version")" = "$(proto "$new_version")" ] ||
  fail "the old build speaks protocol $(proto "$old_version") and this one $(proto "$new_version"): they refuse each other's peer frames, so they cannot run in one cluster; upgrade in place instead (tests/upgrade.sh without --rolling)"
BASE_ARGS="--durability wal --wal-segment-bytes 4194304 --max-log-size 8388608"
# Feature levels (kv/README.md "Feature levels"): rabiad --version says
# "(feature level N)" from the first build that has them. Until every
# replica runs the new build, the cluster stays at the old level: builds
# with levels are started with max-feature-level 0 while the upgrade may
# still be rolled back (an agreed level is never lowered, and a build
# without it cannot follow), and the upgrade is finalized at the end by
# restarting each replica without it.
flevel() { sed -n 's/.*(feature level \([0-9]*\)).*/\1/p' <<<"$1"; }
OLD_LEVEL=$(flevel "$old_version")
NEW_LEVEL=$(flevel "$new_version")
[ -n "$NEW_LEVEL" ] || fail "this build's --version does not name its feature level: '$new_version'"
hold_args() { # hold_args BUILD_VERSION: the upgrade's hold for that build
  [ -n "$(flevel "$1")" ] && echo "--max-feature-level 0"
  return 0
}
export RABIA_EXTRA_ARGS="$BASE_ARGS $(hold_args "$old_version")"

# The old build's replicas: lib.sh's clean-up stops only PIDs running
# $RABIAD, so these are stopped by their own executable.
export RABIAD=$OLD_RABIAD
cluster_start 3 kv
old_pids=()
for i in 1 2 3; do old_pids+=("$(replica_pid "$i")"); done
on_exit "stop_pids '$OLD_RABIAD' ${old_pids[*]}"
wait_ready 30 1 2 3

W=$IT_REPO/tests/integration/acked_writer.py
PORTS="$(resp_port 1),$(resp_port 2),$(resp_port 3)"
PORTS2="$(resp_port 3),$(resp_port 2),$(resp_port 1)"
touch "$IT_DIR/w1.acked" "$IT_DIR/w2.acked"
bg w1 "$PY" "$W" write w1 "$PORTS" "$IT_DIR/w1.acked" "$IT_DIR/stop" --pipeline 8
bg w2 "$PY" "$W" write w2 "$PORTS2" "$IT_DIR/w2.acked" "$IT_DIR/stop" --pipeline 8
acked() { cat "$IT_DIR/w1.acked" "$IT_DIR/w2.acked" | wc -l; }
# phase NAME: PHASE seconds of load; writes must be acknowledged in it
phase() {
  local a0 a1
  a0=$(acked)
  sleep "$PHASE"
  a1=$(acked)
  ((a1 > a0)) || fail "$1: no write acknowledged in ${PHASE}s"
  ok "$1: $((a1 - a0)) writes acknowledged in ${PHASE}s"
}
phase "3 old replicas"

# swap I FROM TO: stop replica I (running FROM) with SIGTERM, start it again
# on its data directory with TO, wait until all three serve
swap() {
  local i=$1 from=$2 to=$3 pid starts
  pid=$(replica_pid "$i")
  pid_runs "$pid" "$from" || fail "replica $i (pid ${pid:-?}) is not running $from"
  stop_pids "$from" "$pid"
  pid_runs "$pid" "$from" && fail "replica $i (pid $pid) did not stop"
  say "stopped replica $i (pid $pid, SIGTERM)"
  starts=$(grep -c "decided slots replayed" "$RABIA_CLUSTER_DIR/r$i.log" || true)
  export RABIAD=$to
  local v
  v="$("$to" --version 2>&1 | head -n 1)"
  export RABIA_EXTRA_ARGS="$BASE_ARGS ${HOLD-$(hold_args "$v")}"
  cluster_restart "$i"
  pid_runs "$(replica_pid "$i")" "$to" || fail "replica $i did not start with $to"
  # stopped by PID whatever RABIAD names when the test ends
  on_exit "stop_pids '$to' $(replica_pid "$i")"
  wait_ready 30 1 2 3
  # this start's line (earlier starts' lines are above it)
  (($(grep -c "decided slots replayed" "$RABIA_CLUSTER_DIR/r$i.log") > starts)) ||
    fail "replica $i did not say what it replayed from its log"
  say "replica $i now runs $to (pid $(replica_pid "$i")): $(grep "decided slots replayed" "$RABIA_CLUSTER_DIR/r$i.log" |
    tail -n 1 | sed 's/^.*rabia: //' | cut -c1-150)"
}
# info_field I KEY: INFO's KEY of replica I ("" when absent)
info_field() { redis "$1" INFO server | tr -d '\r' | sed -n "s/^$2://p"; }
# reads_indexed I: reads replica I answered by the read index ("" for a build without it)
reads_indexed() { redis "$1" INFO sessions | tr -d '\r' | sed -n 's/^reads_indexed://p'; }
# held: every replica with levels still at level 0, and a command of a
# higher level refused by the new ones (before it is decided) with the fix
held() {
  local i lv seen=""
  for i in 1 2 3; do
    lv=$(info_field "$i" rabia_feature_level)
    seen+=" r$i ${lv:-none}/$(info_field "$i" rabia_offered_feature_level)"
    [ -z "$lv" ] || [ "$lv" = 0 ] || fail "replica $i is at feature level $lv during the upgrade (held at 0)"
    if [ -n "$lv" ] && ((NEW_LEVEL >= 1)); then
      expect_match "replica $i: LMPOP while the cluster is held at level 0" "$(redis "$i" LMPOP 1 lm LEFT 2>&1)" \
        "until the cluster agrees feature level 1 \\(it is at 0\\)"
    fi
    # reads by the read index wait for level 6: a build without read-index
    # rounds would take one for a recovering replica's question
    redis "$i" GET lm >/dev/null
    ri=$(reads_indexed "$i")
    [ -z "$ri" ] || [ "$ri" = 0 ] || fail "replica $i answered $ri reads by the read index while the cluster is held at level 0"
  done
  ok "feature levels agreed/offered:${seen} (none: a build without levels)"
}
for i in 1 2 3; do
  # an old build without levels never offers one: the first new replica
  # runs unheld, and the level still stays at 0 (held checks it)
  if ((i == 1)) && [ -z "$OLD_LEVEL" ]; then HOLD=""; else unset HOLD; fi
  swap "$i" "$OLD_RABIAD" "$NEW_RABIAD"
  unset HOLD
  phase "$i new, $((3 - i)) old"
  held
done
swap 1 "$NEW_RABIAD" "$OLD_RABIAD"
phase "replica 1 rolled back to the old build"
swap 1 "$OLD_RABIAD" "$NEW_RABIAD"
phase "replica 1 forward again: 3 new"
held
# finalize: each replica restarted without the hold; the level rises
# once the last one offers it, through the log, on all three alike
HOLD=""
for i in 1 2 3; do
  swap "$i" "$NEW_RABIAD" "$NEW_RABIAD"
  phase "replica $i no longer holds the feature level"
done
t0=$SECONDS
for i in 1 2 3; do
  while [ "$(info_field "$i" rabia_feature_level)" != "$NEW_LEVEL" ]; do
    ((SECONDS - t0 < 20)) || fail "replica $i: feature level $(info_field "$i" rabia_feature_level), not $NEW_LEVEL, 20 s after the hold was lifted"
    sleep 0.2
  done
done
ok "all 3 replicas agreed feature level $NEW_LEVEL after the hold was lifted ($((SECONDS - t0)) s)"
if ((NEW_LEVEL >= 6)); then
  for i in 1 2 3; do
    redis "$i" GET lm >/dev/null
    ri=$(reads_indexed "$i")
    ((${ri:-0} > 0)) || fail "replica $i answered no read by the read index at level $NEW_LEVEL"
  done
  ok "at level $NEW_LEVEL every replica answers reads by the read index"
fi
if ((NEW_LEVEL >= 1)); then
  expect_eq "RPUSH lm a b c" "$(redis 1 RPUSH lm a b c)" 3
  expect_eq "LMPOP at level $NEW_LEVEL (replica 2)" "$(redis 2 LMPOP 1 lm RIGHT COUNT 2 | tr '\n' ' ')" "lm c b "
  expect_eq "ZMPOP at level $NEW_LEVEL (replica 3)" "$(redis 3 ZMPOP 1 nozset MIN)" ""
fi
# a hold set again later does not lower an agreed level
HOLD="--max-feature-level 0"
swap 3 "$NEW_RABIAD" "$NEW_RABIAD"
expect_eq "replica 3 restarted with max-feature-level 0: offers" "$(info_field 3 rabia_offered_feature_level)" 0
expect_eq "... and the cluster's level stays" "$(info_field 3 rabia_feature_level)" "$NEW_LEVEL"
phase "3 new, the level agreed"
export RABIAD=$NEW_RABIAD

touch "$IT_DIR/stop"
for p in "${IT_BG_PIDS[@]}"; do bg_wait "$p" 30; done
cat "$IT_DIR/w1.out" "$IT_DIR/w2.out" | sed "s/^/[$IT_NAME]   /"
total=$(acked)
((total > 0)) || fail "no write was acknowledged"
wait_converged 30 1 2 3
acked_verify "$PY" "$W" "$IT_DIR/w1.acked" "$IT_DIR/w2.acked"
for i in 1 2 3; do
  grep -q "we speak" "$RABIA_CLUSTER_DIR/r$i.log" &&
    fail "replica $i refused a peer's protocol version: these builds do not mix"
done
ok "rolling upgrade: 3 replicas replaced one at a time; $total acknowledged writes all present on all 3"
