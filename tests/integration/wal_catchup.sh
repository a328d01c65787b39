#!/usr/bin/env bash
# wal_catchup: a replica further behind than the peers' retained log
# (log-retain 16) catches up from their write-ahead logs (replica/logcatch.c)
# instead of receiving a whole snapshot, as long as their logs still hold the
# slots it misses (max-log-size 1 GiB here: no snapshot releases them).
#  1. Replica 3 killed with -9 (its log intact); 3,000 SETs through replica
#     1 (thousands of slots past log-retain); replica 3 restarted: it
#     converges with every key, receives no snapshot, and replicas 1 and 2
#     count the slots they read back from their logs for it.
#  2. The same while a writer keeps writing through the restart.
#  3. Replica 3's data dir wiped (--rejoin) after backups of replicas 1 and
#     2 (each a snapshot, which releases the log segments it covers): their
#     logs no longer reach back to slot 1, so it gets a snapshot, and the
#     slots decided after it from the logs.
# Scripts loaded while replica 3 was away run there by their SHA-1 after
# each catch-up: the script cache comes with the log and with the snapshot.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init wal_catchup 18
need_cmd redis-cli redis-benchmark

export RABIA_EXTRA_ARGS="--log-retain 16 --max-log-size 1073741824 --wal-segment-bytes 1048576"
cluster_start 3 kv

persist() { redis "$1" INFO persistence | tr -d '\r' | sed -n "s/^$2:\([0-9]*\)$/\1/p"; }
sum12() { echo $(($(persist 1 "$1") + $(persist 2 "$1"))); }
snapshots_received() { grep -c "receiving a snapshot" "$RABIA_CLUSTER_DIR/r3.log" || true; }

say "replica 3 down; 3,000 SETs through replica 1"
expect_eq "SET k0" "$(redis 1 SET k0 v0)" OK
wait_converged 30 1 2 3
was=$CONVERGED_APPLIED
cluster_kill 3
sha1=$(redis 1 SCRIPT LOAD "return 'p1:' .. ARGV[1]")
timeout 60 redis-benchmark -p "$(resp_port 1)" -t set -d 100 -r 100000 -n 3000 -c 4 -P 1 -q >/dev/null 2>&1 ||
  fail "redis-benchmark did not finish"
expect_eq "SET marker" "$(redis 1 SET marker one)" OK
before=$(sum12 wal_catchup_slots)
cluster_restart 3
wait_ready 60 1 2 3
wait_converged 60 1 2 3
expect_eq "replica 3: GET marker" "$(redis 3 GET marker)" one
expect_eq "replica 3: DBSIZE" "$(redis 3 DBSIZE)" "$(redis 1 DBSIZE)"
expect_eq "replica 3 received no snapshot" "$(snapshots_received)" 0
expect_eq "replica 3: EVALSHA of the script loaded while it was down (from the logs)" "$(redis 3 EVALSHA "$sha1" 0 x)" p1:x
got=$(($(sum12 wal_catchup_slots) - before)) missed=$((CONVERGED_APPLIED - was))
((got > 100)) || fail "replicas 1 and 2 sent $got slots from their logs (INFO wal_catchup_slots)"
# each decision once or so (it was 35 times over before the resend rule in node.c)
((got <= 2 * missed + 64)) || fail "replicas 1 and 2 sent $got decisions from their logs for $missed slots"
ok "replicas 1 and 2 sent $got decided slots from their logs for the $missed slots replica 3 missed"

say "the same while a writer writes through the restart"
cluster_kill 3
bg writer timeout 60 redis-benchmark -p "$(resp_port 1)" -t set -d 100 -r 100000 -c 2 -P 1 -n 100000000 -q
writer=$BG_PID
sleep 3
before=$(sum12 wal_catchup_slots)
mv "$RABIA_CLUSTER_DIR/r3.log" "$RABIA_CLUSTER_DIR/r3.log.1"
cluster_restart 3
wait_within 20 16 3 1 # within the retained log of replica 1
ok "replica 3 at slot $WITHIN_I, replica 1 at $WITHIN_J, the writer still writing"
kill -TERM "$writer" 2>/dev/null || true # timeout passes it on to redis-benchmark
bg_wait "$writer" 10
expect_eq "SET marker" "$(redis 1 SET marker two)" OK
wait_converged 60 1 2 3
expect_eq "replica 3: GET marker" "$(redis 3 GET marker)" two
expect_eq "replica 3 received no snapshot" "$(snapshots_received)" 0
ok "from the logs: $(($(sum12 wal_catchup_slots) - before)) slots"

say "replica 3 wiped (--rejoin): a snapshot, then the slots after it from the log"
cluster_kill 3
rm -rf "$RABIA_CLUSTER_DIR/r3"
mv "$RABIA_CLUSTER_DIR/r3.log" "$RABIA_CLUSTER_DIR/r3.log.2"
sha2=$(redis 2 SCRIPT LOAD "return redis.call('GET', KEYS[1]) .. '!'")
for round in 1 2; do # a snapshot each; the second releases what the first covers (node_keep_batch_seq)
  for i in 1 2; do
    cli -a "$(native_addr "$i")" backup "$IT_DIR/backup$i.snap" >/dev/null || fail "rabia-cli backup at replica $i"
  done
  expect_eq "SET between the backups" "$(redis 1 SET between "$round")" OK
done
(($(persist 1 wal_segments_released) > 0 && $(persist 2 wal_segments_released) > 0)) || fail "the backups released no segment"
ok "log segments released: replica 1 $(persist 1 wal_segments_released), replica 2 $(persist 2 wal_segments_released)"
timeout 60 redis-benchmark -p "$(resp_port 1)" -t set -d 100 -r 100000 -n 2000 -c 4 -P 1 -q >/dev/null 2>&1 ||
  fail "redis-benchmark did not finish"
before=$(sum12 wal_catchup_slots)
RABIA_EXTRA_ARGS="$RABIA_EXTRA_ARGS --rejoin" cluster_restart 3
wait_ready 60 1 2 3
expect_eq "SET marker" "$(redis 1 SET marker three)" OK
wait_converged 60 1 2 3
expect_eq "replica 3: GET marker" "$(redis 3 GET marker)" three
expect_eq "replica 3: DBSIZE" "$(redis 3 DBSIZE)" "$(redis 1 DBSIZE)"
expect_eq "replica 3: EVALSHA of a script loaded before the snapshot" "$(redis 3 EVALSHA "$sha2" 1 marker)" 'three!'
expect_eq "replica 3: EVALSHA of the first script" "$(redis 3 EVALSHA "$sha1" 0 y)" p1:y
expect_eq "replica 3: SCRIPT EXISTS" "$(redis 3 SCRIPT EXISTS "$sha1" "$sha2" | tr '\n' ' ')" "1 1 "
line=$(grep -h "installed snapshot from replica" "$RABIA_CLUSTER_DIR/r3.log" | tail -n 1)
[ -n "$line" ] || fail "replica 3 installed no snapshot"
ok "replica 3: ${line#*INFO  }; from the logs after it: $(($(sum12 wal_catchup_slots) - before)) slots"
ok "wal_catchup passed"
