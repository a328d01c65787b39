#!/usr/bin/env bash
# snapshot_stuck: a snapshot child that does not end (here stopped with
# SIGSTOP; in the field a snapshot callback waiting for a lock the
# application's threads held at the fork, include/rabia/state_machine.h)
# holds the log, which is not released until it ends. INFO persistence
# snapshot_running_seconds and /metrics rabia_snapshot_running_seconds show
# its age, the replica's log says so with the child's pid and the fix
# (RABIA_SNAPSHOT_WARN_S=2 here, 60 s by default), writes go on meanwhile,
# and once the child goes on the snapshot completes and the age is 0.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init snapshot_stuck 61
need_cmd redis-cli redis-benchmark curl pgrep
export RABIA_METRICS_BASE=$((RABIA_RESP_BASE + 60))
export RABIA_SNAPSHOT_WARN_S=2
# a snapshot every second, of a state large enough that its child runs a while
export RABIA_EXTRA_ARGS="--snapshot-interval-s 1 ${RABIA_EXTRA_ARGS:-}"
cluster_start 3 kv
say "loading ~40 MB through replica 1"
timeout 120 redis-benchmark -p "$(resp_port 1)" -t set -d 4000 -r 10000 -n 10000 -c 8 -P 4 -q >/dev/null 2>&1 ||
  fail "redis-benchmark did not finish loading"
p1=$(replica_pid 1)
child=""
for ((k = 0; k < 3000; k++)); do # up to ~30 s: a snapshot begins every second
  child=$(pgrep -P "$p1" | head -n 1 || true)
  if [ -n "$child" ]; then
    kill -STOP "$child" 2>/dev/null && break
    child=""
  fi
  sleep 0.01
done
[ -n "$child" ] || fail "no snapshot child of replica 1 seen in 30 s"
on_exit "kill -CONT $child 2>/dev/null || true"
say "stopped replica 1's snapshot child $child"
sleep 3.5
INFO_TEXT=$(redis 1 INFO persistence | tr -d '\r')
age=$(info_field snapshot_running_seconds)
[[ $age =~ ^[0-9]+$ ]] && ((age >= 3)) || fail "INFO snapshot_running_seconds is '$age' with the child stopped 3.5 s"
ok "INFO persistence snapshot_running_seconds: $age (snapshot_in_progress $(info_field snapshot_in_progress))"
m=$(curl -s "127.0.0.1:$((RABIA_METRICS_BASE + 1))/metrics" | sed -n 's/^rabia_snapshot_running_seconds //p')
awk -v m="${m:-0}" 'BEGIN { exit !(m >= 3) }' || fail "/metrics rabia_snapshot_running_seconds is '$m'"
ok "/metrics rabia_snapshot_running_seconds: $m"
grep -q "WARNING: the snapshot at slot [0-9]* has run for [0-9]* s (child process $child)" "$RABIA_CLUSTER_DIR/r1.log" ||
  fail "replica 1's log does not say that its snapshot child $child has run too long"
ok "replica 1's log: $(grep -o "WARNING: the snapshot at slot [0-9]* has run for [0-9]* s (child process $child)" "$RABIA_CLUSTER_DIR/r1.log" | head -n 1)"
expect_eq "SET through replica 1 while its snapshot child is stopped" "$(redis 1 SET during stuck)" OK
taken0=$(redis 1 INFO persistence | tr -d '\r' | sed -n 's/^snapshots://p')
kill -CONT "$child"
say "child $child continued"
for ((k = 0; k < 100; k++)); do
  INFO_TEXT=$(redis 1 INFO persistence | tr -d '\r')
  [ "$(info_field snapshot_running_seconds)" = 0 ] && [ "$(info_field snapshots)" -gt "$taken0" ] && break
  sleep 0.1
done
expect_eq "snapshot_running_seconds once the child went on" "$(info_field snapshot_running_seconds)" 0
(($(info_field snapshots) > taken0)) || fail "no snapshot completed after the child went on (snapshots $(info_field snapshots), before $taken0)"
ok "the snapshot completed: snapshots $taken0 -> $(info_field snapshots)"
