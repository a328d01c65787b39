#!/usr/bin/env bash
# own_seq_restart: a replica restarted from its log must number its next
# batch above every own batch the state already applied.
#
# This found a real bug (integration.crash_all's unanswered read, 1 run in
# 4-10): a replica's batch sequence numbers follow its peers' (a Lamport
# clock), and the log releases, after a snapshot, the segment that held its
# newest own BATCH record once that clock has passed it. A restart then
# took the next number from the BATCH records left in the log: a number the
# restored state counts as applied, so the apply layer skipped the new batch
# as a duplicate and its clients waited forever. Now the restart also
# numbers above what the state applied (replay.c, rabia_rsm_batch_high).
#
# Here: replica 1 proposes a few writes, then replicas 2 and 3 write far
# more (the clock moves, the log grows past several 1 MiB segments, a
# snapshot releases the first ones); replica 1 is killed with -9 and
# restarted, and writes through it must be answered.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init own_seq_restart 29
need_cmd redis-cli redis-benchmark
export RABIA_EXTRA_ARGS="--durability wal --wal-segment-bytes 1048576 --max-log-size 1048576"
cluster_start 3 kv

for k in 1 2 3 4 5; do expect_eq "SET a$k at replica 1" "$(redis 1 SET "a$k" "v$k")" OK; done
say "replicas 2 and 3: 40000 SETs of 100 bytes each, until replica 1 has released a log segment"
released=0
for round in 1 2 3 4 5 6; do
  for i in 2 3; do
    timeout 60 redis-benchmark -p "$(resp_port "$i")" -q -t set -n 20000 -c 10 -P 16 -d 100 -r 100000 >/dev/null 2>&1 ||
      fail "redis-benchmark at replica $i failed"
  done
  wait_converged 30 1 2 3
  released=$(redis 1 INFO | tr -d '\r' | sed -n 's/^wal_segments_released://p')
  say "  round $round: replica 1 released ${released:-?} segment(s)"
  [ "${released:-0}" -ge 2 ] && break
done
[ "${released:-0}" -ge 2 ] || fail "replica 1 released no log segment after 6 rounds (snapshot not taken?)"

cluster_kill 1
cluster_restart 1
wait_ready 30 1 2 3
for k in 1 2 3 4 5; do
  out=$(timeout 15 redis-cli -p "$(resp_port 1)" SET "b$k" "w$k" 2>&1) ||
    fail "SET b$k at replica 1 after its restart: no answer in 15 s ($out; waiters: $(redis 2 INFO >/dev/null; redis 1 INFO | tr -d '\r' | sed -n 's/^waiters://p'))"
  expect_eq "SET b$k at replica 1 after its restart" "$out" OK
done
expect_eq "GET b5 at replica 2" "$(redis 2 GET b5)" w5
wait_converged 30 1 2 3
ok "writes through a replica restarted after its own batches' segments were released are answered"
