#!/usr/bin/env bash
# crash_all: every replica killed with -9 at the same moment, under load, again
# and again (durability = wal, the default). Two writers (python3-redis,
# pipelines of 16 SETs of 100-byte values) record every acknowledged write;
# after each whole-cluster kill the replicas restart from their logs, finish
# their open slots and serve again. At the end every acknowledged write must
# be present with its value on every replica, no writer's last-write key may
# be behind what was acknowledged, and all state hashes agree.
#
#   CRASH_ALL_ROUNDS   whole-cluster kills (default 8; the long mode runs 50)
#   CRASH_ALL_EXTRA    extra rabiad arguments (e.g. --window 8 --policy classes)
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init crash_all 11
need_cmd redis-cli
need_py_redis
ROUNDS=${CRASH_ALL_ROUNDS:-8}
export RABIA_EXTRA_ARGS="--durability wal --max-log-size 4194304 --wal-segment-bytes 4194304 ${CRASH_ALL_EXTRA:-}"
cluster_start 3 kv
W=$IT_REPO/tests/integration/acked_writer.py
PORTS="$(resp_port 1),$(resp_port 2),$(resp_port 3)"
PORTS2="$(resp_port 3),$(resp_port 1),$(resp_port 2)"

say "two writers, acknowledged writes recorded"
touch "$IT_DIR/w1.acked" "$IT_DIR/w2.acked"
bg w1 "$PY" "$W" write w1 "$PORTS" "$IT_DIR/w1.acked" "$IT_DIR/stop"
bg w2 "$PY" "$W" write w2 "$PORTS2" "$IT_DIR/w2.acked" "$IT_DIR/stop"

survived=0
for ((round = 1; round <= ROUNDS; round++)); do
  # a random moment: 0.3 .. 1.5 s of load
  sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.3 + (r % 120) / 100 }')"
  n1=$(cat "$IT_DIR/w1.acked" "$IT_DIR/w2.acked" | wc -l)
  pids=()
  for i in 1 2 3; do pids+=("$(replica_pid "$i")"); done
  kill -9 "${pids[@]}"
  for pid in "${pids[@]}"; do
    for ((k = 0; k < 100; k++)); do pid_runs "$pid" "$RABIAD" || break; sleep 0.02; done
    pid_runs "$pid" "$RABIAD" && fail "pid $pid survived kill -9"
  done
  say "round $round: kill -9 of all 3 replicas (pids ${pids[*]}) with $n1 writes acknowledged so far"
  for i in 1 2 3; do cluster_restart "$i"; done
  wait_ready 30 1 2 3
  survived=$((survived + 1))
done
sleep 1
touch "$IT_DIR/stop"
for p in "${IT_BG_PIDS[@]}"; do bg_wait "$p" 30; done
cat "$IT_DIR/w1.out" "$IT_DIR/w2.out" | sed "s/^/[$IT_NAME]   /"
acked=$(cat "$IT_DIR/w1.acked" "$IT_DIR/w2.acked" | wc -l)
((acked > 0)) || fail "no write was acknowledged"
wait_converged 30 1 2 3
acked_verify "$PY" "$W" "$IT_DIR/w1.acked" "$IT_DIR/w2.acked"
ok "$survived whole-cluster kills survived; $acked acknowledged writes all present on all 3 replicas"
# the restarts replayed decisions whose bodies only earlier records held
# (DECIDED_REF, replica/node.c): the start lines say how many
by_ref=$(sed -n 's/.*decided slots replayed, \([0-9]*\) by reference.*/\1/p' "$RABIA_CLUSTER_DIR"/r[123].log |
  awk '{ s += $1 } END { print s + 0 }')
((by_ref > 0)) || fail "no restart replayed a decision by reference: the path this test should cover was not taken"
ok "restarts replayed $by_ref decisions by reference (body from an earlier record of the log)"
for i in 1 2 3; do
  say "replica $i log: $(grep -c 'rabia: log ' "$RABIA_CLUSTER_DIR/r$i.log") starts, $(grep -c 'torn last write' "$RABIA_CLUSTER_DIR/r$i.log" || true) with a torn tail cut; $(redis "$i" INFO | grep -E '^(snapshots|wal_segments_released):' | tr -d '\r' | tr '\n' ' ')"
done
