#!/usr/bin/env bash
# peer_faults: what a faulty peer and a second process with a replica's id
# do to a 3-replica kv cluster (found by review).
#  1. A FETCH and a CATCHUP naming slot 2^61 (here from a connection that
#     passed HELLO as replica 3, in replica 3's own incarnation) must not
#     change what replica 1 counts as the highest slot it knows of: that
#     count is defined by consensus messages (core.h, READ INDEX). FETCH
#     and CATCHUP raised it too: after one such frame every linearizable
#     read of every replica waited 1 s for a read index no slot would
#     reach (the read rounds spread the count to the peers) and was
#     answered through the log, /health said "lagging" by 2^61 slots, and
#     a replica rebuilt with --rejoin took 2^61 as its horizon: it would
#     abstain there for good, while its peers drove null slots towards it
#     (applied climbed by hundreds a second on an idle cluster). Checked:
#     every replica's known slot stays small and its health ok, reads are
#     answered in well under 1 s, a --rejoin of replica 3 converges and
#     takes a write, and the idle cluster applies no slots.
#  2. A second process started as replica 2 on an empty data dir without
#     --rejoin: a first start, so the peers that heard replica 2 refuse it
#     as a replica back without its data dir; the first process serves on.
#     Then one with --rejoin (its own data dir): the peers
#     take the newer incarnation and refuse the first process's HELLO,
#     saying what that means and what to do. The refused process only saw
#     its connections close: it redialed each peer every 50 ms for good,
#     two INFO lines per peer each time (thousands a minute) and not one
#     saying why. It backs off to 2 s now and logs a WARN with the causes
#     and the fix. The cluster keeps serving; the second process stopped
#     and the first restarted as the message says (empty data dir,
#     --rejoin), the three converge.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init peer_faults 57
tls_refuse "peer_port.py writes raw peer frames over plain TCP"
need_cmd redis-cli python3
cluster_start 3 kv
say "1. a FETCH and a CATCHUP of a slot far ahead"
here=$(cd "$(dirname "$0")" && pwd)
cluster_id=$(cluster_id_of 1)
redis 1 SET far:before 1 >/dev/null
inc3=$(sed -n 's/.*replica 3 of 3, incarnation \([0-9]*\).*/\1/p' "$RABIA_CLUSTER_DIR/r3.log" | tail -n 1)
[ -n "$inc3" ] || fail "replica 3's incarnation is not in its log"
say "a FETCH and a CATCHUP of slot 2^61 to replica 1, as replica 3 (incarnation $inc3)"
it_py 30 "$here/peer_port.py" far 127.0.0.1 "$(peer_port 1)" "$cluster_id" 2 "$inc3" $((1 << 61))
wait_ready 10 1 2 3
known() { redis "$1" INFO | tr -d '\r' | sed -n 's/^slots_known://p'; }
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
for i in 1 2 3; do
  k=$(known "$i")
  [ "${k:-0}" -lt 1000000 ] || fail "replica $i knows of slot $k (the far FETCH's, or one its read rounds took from replica 1)"
  expect_eq "replica $i: INFO health" "$(redis "$i" INFO | tr -d '\r' | sed -n 's/^health://p')" ok
done
ok "every replica's known slot stays below 10^6"
for i in 1 2; do
  t0=$(date +%s%N)
  for k in 1 2 3 4 5; do expect_eq "replica $i: GET far:before" "$(redis "$i" GET far:before)" 1 >/dev/null; done
  t=$(ms "$t0")
  [ "$t" -lt 2500 ] || fail "replica $i: 5 GETs took $t ms (each waited for a read index it never reached)"
  ok "replica $i: 5 GETs in $t ms"
done

say "replica 3 rebuilt with --rejoin: its horizon comes from replicas 1 and 2"
cluster_kill 3
rm -rf "$RABIA_CLUSTER_DIR/r3"
mkdir "$RABIA_CLUSTER_DIR/r3"
cp "$RABIA_CLUSTER_DIR/r1/cluster-id" "$RABIA_CLUSTER_DIR/r3/" 2>/dev/null || true
RABIA_EXTRA_ARGS="${RABIA_EXTRA_ARGS:-} --rejoin" cluster_restart 3
wait_ready 20 1 2 3
expect_eq "replica 3: SET far:after" "$(redis 3 SET far:after 2)" OK
wait_converged 20 1 2 3
a1=$(field "$(replica_status 1)" applied)
sleep 2
a2=$(field "$(replica_status 1)" applied)
[ $((a2 - a1)) -lt 50 ] || fail "replica 1 applied $((a2 - a1)) slots in 2 s of an idle cluster (null slots driven towards slot 2^61)"
ok "idle cluster: replica 1 applied $((a2 - a1)) slots in 2 s"
k=$(known 3)
[ "${k:-0}" -lt 1000000 ] || fail "replica 3 took slot $k as known after --rejoin"
ok "replica 3 knows of slot $k after --rejoin"

say "2. a second process started as replica 2 on an empty data dir, without --rejoin"
members="1=127.0.0.1:$(peer_port 1),2=127.0.0.1:$(peer_port 2),3=127.0.0.1:$(peer_port 3)"
r2log=$RABIA_CLUSTER_DIR/r2.log
# second_r2 DIR ARGS...: another rabiad as replica 2 (own ports and data dir)
second_r2() {
  local d=$1
  shift
  "$RABIAD" --id 2 --members "$members" --peer-listen "127.0.0.1:$(peer_port 12)" \
    --client-listen "127.0.0.1:$(native_port 12)" --resp-listen "127.0.0.1:$(resp_port 12)" \
    --data-dir "$d" --state-machine kv ${RABIA_EXTRA_ARGS:-} "$@" >"$d.log" 2>&1 &
  second=$!
  IT_DAEMON_PIDS+=("$second")
}
# A first start that votes at once: replicas 1 and 3 heard replica 2 before,
# so they take it for replica 2 back without its data dir and refuse it
# (replica/README.md "A data dir lost"); the first process goes on (before,
# the newest incarnation was taken and the first process, the one with the
# log, refused: the one voting from nothing served)
second_r2 "$IT_DIR/fresh"
sleep 4
for i in 1 3; do
  expect_match "replica $i refuses the new process" "$(grep -m1 'refusing replica 2' "$RABIA_CLUSTER_DIR/r$i.log")" \
    'ERROR .*refusing replica 2: replica 2 starts as new .*heard it before'
done
expect_eq "replica 2 (the first process) serves: SET far:fresh" "$(redis 2 SET far:fresh 1)" OK
grep -q 'closed our connection right after our HELLO' "$r2log" && fail "the first process was refused"
ok "the first process is not refused"
stop_pids "$RABIAD" "$second"

say "2b. a second process started as replica 2 with --rejoin"
lines0=$(wc -l <"$r2log")
second_r2 "$IT_DIR/second" --rejoin
sleep 6
expect_eq "replica 1: SET far:during (replicas 1 and 3 serve)" "$(redis 1 SET far:during 3)" OK
expect_match "replica 1 logs why it refuses the first process" \
  "$(grep -m1 'refusing .*replica 2 incarnation' "$RABIA_CLUSTER_DIR/r1.log")" \
  'is older than [0-9]+, the newest taken from it: .*two processes running as replica 2 .*--rejoin'
expect_match "the refused process logs that its peers refuse it, with the causes" \
  "$(grep -m1 'closed our connection right after our HELLO' "$r2log")" \
  'WARN .*replica [13] closed our connection right after our HELLO, 5 times in a row: it refuses this replica.*--rejoin'
dials=$(tail -n +"$((lines0 + 1))" "$r2log" | grep -c 'connected to replica' || true)
[ "$dials" -le 30 ] || fail "the refused process logged $dials connections in 6 s (it redials every 50 ms)"
ok "the refused process logged $dials connections in 6 s (backing off)"
stop_pids "$RABIAD" "$second"
say "the second process stopped; the first restarted with an empty data dir and --rejoin"
cluster_kill 2
mv "$RABIA_CLUSTER_DIR/r2" "$IT_DIR/r2.aside"
mkdir "$RABIA_CLUSTER_DIR/r2"
cp "$IT_DIR/r2.aside/cluster-id" "$RABIA_CLUSTER_DIR/r2/" 2>/dev/null || true
RABIA_EXTRA_ARGS="${RABIA_EXTRA_ARGS:-} --rejoin" cluster_restart 2
wait_ready 20 1 2 3
expect_eq "replica 2: GET far:during" "$(redis 2 GET far:during)" 3
wait_converged 20 1 2 3
