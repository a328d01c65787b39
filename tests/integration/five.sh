#!/usr/bin/env bash
# five: a 5-replica kv cluster. Writes through every replica are read through
# every other; kill -9 of two replicas (f = 2) leaves the other three
# serving; restarted, the two catch up to the same state hash.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init five 3
need_cmd redis-cli
cluster_start 5 kv

say "a write through each replica, read through every other"
reads=0
for ((i = 1; i <= 5; i++)); do
  [ "$(redis "$i" SET "five:$i" "written-at-$i")" = OK ] || fail "replica $i: SET five:$i did not answer OK"
  for ((j = 1; j <= 5; j++)); do
    ((j == i)) && continue
    got=$(redis "$j" GET "five:$i")
    [ "$got" = "written-at-$i" ] || fail "replica $j: GET five:$i = '$got', expected 'written-at-$i'"
    reads=$((reads + 1))
  done
done
ok "5 SETs, one per replica; $reads GETs at the other replicas all saw them"
got=""
for ((k = 1; k <= 10; k++)); do got+="$(redis $(((k - 1) % 5 + 1)) INCR five:ctr) "; done
expect_eq "10 INCRs round-robin over 5 replicas" "$got" "$(seq -s ' ' 1 10) "
wait_converged 10 1 2 3 4 5
before=$CONVERGED_APPLIED

say "kill -9 replicas 2 and 4 (f = 2 of 5)"
cluster_kill 2
cluster_kill 4
t0=$SECONDS
for i in 1 3 5; do
  expect_eq "replica $i: SET down:$i (2 replicas down)" "$(redis "$i" SET "down:$i" "v$i")" OK
done
got=""
for ((k = 1; k <= 9; k++)); do got+="$(redis $((((k - 1) % 3) * 2 + 1)) INCR five:ctr) "; done
expect_eq "9 INCRs over replicas 1,3,5 with 2 down" "$got" "$(seq -s ' ' 11 19) "
out=$(for ((k = 1; k <= 200; k++)); do printf 'SET bulk:%d %d\r\n' "$k" "$k"; done | timeout 30 redis-cli -p "$(resp_port 5)" --pipe 2>&1)
expect_match "replica 5: 200 pipelined SETs with 2 down" "$out" "errors: 0, replies: 200"
expect_eq "replica 1: GET down:5" "$(redis 1 GET down:5)" v5
expect_eq "replica 3: GET bulk:200" "$(redis 3 GET bulk:200)" 200
say "writes with 2 of 5 down took $((SECONDS - t0)) s"
wait_converged 10 1 3 5
((CONVERGED_APPLIED > before)) || fail "applied did not advance while 2 were down ($before -> $CONVERGED_APPLIED)"
ok "applied advanced from $before to $CONVERGED_APPLIED with replicas 2 and 4 down"

say "restart replicas 2 and 4: they catch up"
cluster_restart 2
cluster_restart 4
wait_ready 20 1 2 3 4 5
wait_converged 20 1 2 3 4 5
for i in 2 4; do
  expect_eq "replica $i: MGET down:1 down:3 down:5 bulk:1 bulk:200" \
    "$(redis "$i" MGET down:1 down:3 down:5 bulk:1 bulk:200 | tr '\n' ' ')" "v1 v3 v5 1 200 "
  expect_eq "replica $i: INCR five:ctr (after the restart)" "$(redis "$i" INCR five:ctr)" $((20 + (i / 2 - 1)))
done
for i in 1 2 3 4 5; do expect_eq "replica $i: DBSIZE" "$(redis "$i" DBSIZE)" 209; done
wait_converged 10 1 2 3 4 5
