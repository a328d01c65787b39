#!/usr/bin/env bash
# peer_stall: a follower stops (SIGSTOP) for 3 s under SET -P 16 load on
# replica 1. Replica 1's link to it keeps references to the pooled frames
# it cannot send (replica/node.c's frame pool, io/loop.c's
# rio_send_shared): at most 16 queued and 16 in its send, so the pool (32)
# keeps serving the healthy link, then copies if it ever runs dry (INFO
# frames_copied); the link's output limit closes it and its references go.
# The two others keep serving. After SIGCONT the follower catches up, all
# three converge, and once the cluster is idle no replica holds a pool
# frame any more (INFO frames_in_use 0): every reference a connection took
# was dropped, through sends that completed, queues a closing link
# discarded, and links freed with a send in flight.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init peer_stall 31
tls_refuse "TLS peer links copy frames instead of sharing them: nothing of the frame pool to test"
need_cmd redis-cli redis-benchmark
cluster_start 3 kv
info() { redis "$1" INFO | tr -d '\r' | sed -n "s/^$2://p"; }
p3=$(replica_pid 3)
on_exit "kill -CONT $p3 2>/dev/null || true" # a stopped process would ignore the cleanup's SIGTERM

say "SET -d 100 -r 100000 -P 16 -c 50 on replica 1 for 8 s"
bg load timeout 8 redis-benchmark -p "$(resp_port 1)" -t set -d 100 -r 100000 -n 100000000 -c 50 -P 16 -q
load=$BG_PID
sleep 1.5
shared0=$(info 1 frames_shared)
copied0=$(info 1 frames_copied)
kill -STOP "$p3"
say "replica 3 (pid $p3) stopped; replica 1 so far: frames_shared $shared0, frames_copied $copied0"
# replica 1's pool frames in use while replica 3 is stopped: its link
# holds some (the references are real), never more than its 32 ranges
# (plus the one being sent elsewhere), so the healthy link keeps sharing
# PEER_STALL_S (whole seconds, default 3) sets how long: at 4-5 s replica
# 1's link to it closes at its output limit more often, with the batches
# of decided slots in it, and replica 3 then catches up from the logs while
# fetching those bodies (the stall sim.bug.log_fetch plants)
stall_s=${PEER_STALL_S:-3}
[[ $stall_s =~ ^[1-9][0-9]?$ ]] || fail "PEER_STALL_S=$stall_s: whole seconds, 1-99"
maxuse=0
for ((k = 0; k < stall_s * 5; k++)); do
  u=$(info 1 frames_in_use)
  ((u > maxuse)) && maxuse=$u
  sleep 0.2
done
expect_eq "replica 1 serves with replica 3 stopped: SET stall:k" "$(redis 1 SET stall:k v1)" OK
expect_eq "replica 2 reads it: GET stall:k" "$(redis 2 GET stall:k)" v1
shared1=$(info 1 frames_shared)
copied1=$(info 1 frames_copied)
say "replica 1 after $stall_s s: frames_shared $shared1, frames_copied $copied1, most frames in use $maxuse"
((shared1 > shared0)) || fail "replica 1 shared no frame while replica 3 was stopped ($shared0 -> $shared1)"
((maxuse >= 2)) || fail "replica 1's link to the stopped replica 3 held no pool frame (most in use: $maxuse)"
((maxuse <= 33)) || fail "replica 1 held $maxuse pool frames with one link stalled (at most 2 x 16 + 1)"
ok "the stalled link held at most $maxuse pool frames; the pool went on: $((shared1 - shared0)) frames shared, $((copied1 - copied0)) copied"
kill -CONT "$p3"
say "replica 3 continued"
bg_wait "$load" 30
((BG_RC == 0 || BG_RC == 124)) || fail "redis-benchmark failed (exit $BG_RC): $(tail -c 300 "$IT_DIR/load.out")"
wait_converged 60 1 2 3
all_alive 3
for i in 1 2; do say "replica $i: $(redis "$i" INFO | tr -d '\r' | grep -E '^(wal_catchup_slots|wal_catchup_requests|wal_catchup_fetches_held|state_transfers_sent):' | tr '\n' ' ')"; done

# idle now: every pool frame must be back (none held by a connection or
# by a send the node keeps behind a log write)
for i in 1 2 3; do
  n=""
  for ((k = 0; k < 30; k++)); do
    n=$(info "$i" frames_in_use)
    [ "$n" = 0 ] && break
    sleep 0.1
  done
  expect_eq "replica $i idle: pool frames in use" "$n" 0
done

say "the pool serves again: 100000 SETs -P 16"
timeout 60 redis-benchmark -p "$(resp_port 1)" -t set -d 100 -r 100000 -n 100000 -c 50 -P 16 -q >/dev/null 2>&1 ||
  fail "the second load failed"
shared2=$(info 1 frames_shared)
((shared2 > shared1)) || fail "replica 1 shared no frame after the stall ($shared1 -> $shared2)"
ok "replica 1 shared $((shared2 - shared1)) more frames after the stall (copied in all: $(info 1 frames_copied))"
wait_converged 30 1 2 3
