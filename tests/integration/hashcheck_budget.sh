#!/usr/bin/env bash
# hashcheck_budget: a replica whose reply-cache-bytes differs from its
# peers' holds the same state and passes the state hash checkpoints
# (replica/hashcheck.c). Replica 3 runs with a 64 KiB reply cache, the
# others with the default 64 MiB; 60 clients SET ... GET 2000-byte values
# past two checkpoints, so replica 3 drops replies its peers keep. The
# checkpoints leave the kept replies out (rabia_rsm_check_hash): every
# replica agrees, none differs, replica 3 keeps running and its keys equal
# the others'. Before (hash_checkpoints_v1: rabia_rsm_hash, replies
# included) replica 3 stopped itself ("stopping this replica") at the
# first checkpoint after its budget dropped a reply.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init hashcheck_budget 51
need_cmd redis-cli
need_cmd redis-benchmark
cluster_start 3 kv
cluster_kill 3
export RABIA_EXTRA_ARGS="--reply-cache-bytes 65536"
cluster_restart 3
unset RABIA_EXTRA_ARGS
wait_ready 30 1 2 3

say "60 clients SET ... GET of 2000-byte values through replica 1: replies over replica 3's budget"
value=$(head -c 2000 /dev/zero | tr '\0' x)
bg bench timeout 100 redis-benchmark -p "$(resp_port 1)" -c 60 -n 40000 -r 500 SET key:__rand_int__ "$value" GET
bench=$BG_PID
# meanwhile one slot per SET (one client, one command at a time) through
# replica 2: checkpoints pass while the 60 sessions keep their replies
while kill -0 "$bench" 2>/dev/null; do redis 2 -r 200 SET hc:k v >/dev/null; done
bg_wait "$bench" 100
((BG_RC == 0)) || fail "redis-benchmark failed: $(tail -c 300 "$IT_DIR/bench.out")"
redis 1 -r 100 SET hc:k v >/dev/null # a few more slots: every replica applies the last checkpoint's slot
for i in 1 2 3; do
  info_wait "$i" hash_check_slot 2048
  slot=$(info_field hash_check_slot)
  expect_eq "replica $i: INFO hash_checks_differed, state_diverged; checkpoints agreed past 2048" \
    "$(info_field hash_checks_differed)/$(info_field state_diverged)/$((${slot:-0} >= 2048))" "0/0/1"
done
all_alive 3
if grep -q "stopping this replica" "$RABIA_CLUSTER_DIR/r3.log"; then fail "replica 3 stopped: $(grep 'stopping this replica' "$RABIA_CLUSTER_DIR/r3.log" | head -1)"; fi
ok "replica 3 (64 KiB reply cache) runs on"
expect_eq "replica 3's keys = replica 1's (DBSIZE)" "$(redis 3 DBSIZE)" "$(redis 1 DBSIZE)"
