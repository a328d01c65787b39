#!/usr/bin/env bash
# lost_data_dir: a replica whose data dir was lost (or emptied) and that is
# started again without --rejoin. It came back as new: a first start, voting
# at once in every slot, with nothing of what it sent before (its log is
# gone). A slot still open could then be decided two ways (core.h rule 2),
# and its peers took it like any new member (found reviewing the left-alone
# list: "a wiped data dir without --rejoin may vote again").
#  1. A new cluster whose replica 3 first starts late, after 1 and 2 wrote:
#     taken (it never ran before), converges.
#  2. Replica 3 killed, its data dir moved aside, started on an empty one
#     without --rejoin: replicas 1 and 2 refuse it, each logging an ERROR
#     with the cause and the fix; it logs a WARN saying so; a SET through it
#     is not answered (it takes no part), the cluster serves; INFO
#     peer_first_starts_refused counts it.
#  2b. The refused replica 3 restarted on what its refused life wrote
#     (an incarnation file and a log), plainly and then with --rejoin:
#     still refused (before, either restart took part at once, voting from
#     that log: the peers took it as a restart).
#  3. Its data dir put back, it restarts with its log: taken (the refused
#     life never counted: its incarnation is not "older"), converges.
#  4. Replica 1 restarted (what it heard is read back from
#     data-dir/peers-seen), replica 3 emptied again without --rejoin:
#     still refused by both.
#  5. The fix the message names: --rejoin on the empty data dir: taken, it
#     recovers from its peers and has every write.
#  6. Its incarnation file removed, its log intact: a restart with its log,
#     taken (it said FIRST_START and was refused as a lost data dir).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init lost_data_dir 66
need_cmd redis-cli
export RABIA_EXTRA_ARGS="${RABIA_EXTRA_ARGS:-} --wal-segment-bytes 1048576"
D=$RABIA_CLUSTER_DIR
cluster_dir_new 3 kv

# wait_log I ERE SECONDS: a line of replica I's log matches
wait_log() {
  local t0=$SECONDS
  until grep -Eq -- "$2" "$D/r$1.log"; do
    ((SECONDS - t0 < $3)) || fail "replica $1's log has no line matching '$2' after $3 s"
    sleep 0.2
  done
}
refusals() { redis "$1" INFO stats | tr -d '\r' | sed -n 's/^peer_first_starts_refused://p'; }

say "1. a new cluster: replicas 1 and 2 start and write, replica 3's first start comes later"
cluster_restart 1
cluster_restart 2
set_until 1 early:1 a 30
for k in 2 3 4 5; do expect_eq "SET early:$k through replica 2" "$(redis 2 SET "early:$k" a)" OK >/dev/null; done
cluster_restart 3
wait_converged 30 1 2 3
expect_eq "replica 3 (late first start): GET early:5" "$(redis 3 GET early:5)" a
for i in 1 2; do
  grep -q "refusing replica 3" "$D/r$i.log" && fail "replica $i refused replica 3's late first start"
  { head -n 1 "$D/r$i/peers-seen" | grep -qx "rabia peers-seen 1" && grep -qx "3 [0-9]*" "$D/r$i/peers-seen"; } ||
    fail "replica $i's data-dir/peers-seen has no line for replica 3: $(tr '\n' '|' <"$D/r$i/peers-seen")"
  ok "replica $i keeps what it first heard: $(tr '\n' '|' <"$D/r$i/peers-seen")"
done
inc3=$(sed -n 's/.*replica 3 of 3, incarnation \([0-9]*\).*/\1/p' "$D/r3.log" | head -n 1)
expect_eq "replica 1's peers-seen holds replica 3's first incarnation" "$(sed -n 's/^3 //p' "$D/r1/peers-seen")" "$inc3"
ok "replica 3's late first start was taken (it never ran before)"

say "2. replica 3's data dir lost: started again on an empty one without --rejoin"
for k in $(seq 1 50); do redis 1 SET "before:$k" "v$k" >/dev/null; done
cluster_kill 3
mv "$D/r3" "$D/r3.saved"
mv "$D/r3.log" "$D/r3.log.1"
cluster_restart 3
for ((t = 0; t < 100; t++)); do [ "$(timeout 2 redis-cli -p "$(resp_port 3)" PING 2>/dev/null)" = PONG ] && break; sleep 0.1; done
out=$(timeout 3 redis-cli -p "$(resp_port 3)" SET during:3 x 2>&1 || true)
[ "$out" = OK ] && fail "replica 3, started on an empty data dir without --rejoin, took part: a SET through it was decided"
ok "a SET through replica 3 (it answers PING) is not answered within 3 s ('$out'): it takes no part"
for i in 1 2; do
  wait_log "$i" "ERROR .*refusing replica 3: replica 3 starts as new \(incarnation [0-9]+: an empty data dir, no --rejoin\), but this replica heard it before \(first as incarnation $inc3\): its data dir was lost or emptied" 15
  expect_match "replica $i names the fix" "$(grep 'refusing replica 3' "$D/r$i.log" | tail -n 1)" \
    "Stop it, empty its data dir \(what it wrote there since counts for nothing: a restart on it is refused too\) and start it again with --rejoin and cluster-id 0x$(cluster_id_of 1)"
done
wait_log 3 "WARN .*replica [12] closed our connection right after our HELLO, [0-9]+ times in a row: it refuses this replica, and its log says why. This replica's data dir began empty without --rejoin" 20
ok "replica 3 says why its peers close its connections: $(grep -m1 -o "This replica's data dir began empty[^:]*" "$D/r3.log")"
for k in $(seq 1 20); do expect_eq "SET during:$k through replica 1" "$(redis 1 SET "during:$k" "d$k")" OK >/dev/null; done
ok "replicas 1 and 2 serve meanwhile"
for i in 1 2; do
  n=$(refusals "$i")
  ((${n:-0} >= 1)) || fail "replica $i: INFO peer_first_starts_refused is '${n}', not >= 1"
  ok "replica $i: INFO peer_first_starts_refused $n"
done

say "2b. the refused replica 3 restarted on what it wrote: plainly, then with --rejoin"
# (the refused life left an incarnation file and a log: a restart on them
# took part at once, voting from that log, and so did a --rejoin, which a
# log makes a restart; data-dir/first-start says the data dir's first start)
[ -f "$D/r3/first-start" ] || fail "replica 3's refused start left no data-dir/first-start"
for how in plain --rejoin; do
  cluster_kill 3
  mv "$D/r3.log" "$D/r3.log.1$how"
  n0=$(cat "$D/r1.log" "$D/r2.log" | grep -c "refusing replica 3: replica 3 starts as new" || true)
  if [ "$how" = plain ]; then cluster_restart 3; else RABIA_EXTRA_ARGS="$RABIA_EXTRA_ARGS --rejoin" cluster_restart 3; fi
  wait_log 3 "restart with its log: taking part at once" 15
  for ((t = 0; t < 100; t++)); do [ "$(timeout 2 redis-cli -p "$(resp_port 3)" PING 2>/dev/null)" = PONG ] && break; sleep 0.1; done
  out=$(timeout 3 redis-cli -p "$(resp_port 3)" SET "during:3$how" x 2>&1 || true)
  [ "$out" = OK ] && fail "replica 3, restarted ($how) on the data dir its refused life wrote, took part: a SET through it was decided"
  for ((t = 0; t < 150; t++)); do
    n1=$(cat "$D/r1.log" "$D/r2.log" | grep -c "refusing replica 3: replica 3 starts as new" || true)
    ((n1 > n0)) && break
    sleep 0.1
  done
  ((n1 > n0)) || fail "no new refusal of replica 3 in 15 s after its $how restart"
  expect_match "replicas 1 and 2 say it restarted on that data dir" "$(cat "$D/r1.log" "$D/r2.log" | grep "refusing replica 3" | tail -n 1)" \
    "replica 3 starts as new \(incarnation [0-9]+: an empty data dir, no --rejoin; restarted on it since: incarnation [0-9]+\)"
  ok "replica 3 restarted ($how) on what its refused life wrote: still refused, a SET through it not answered"
done

say "3. the data dir put back: replica 3 restarts with its log"
cluster_kill 3
rm -rf "$D/r3"
mv "$D/r3.saved" "$D/r3"
mv "$D/r3.log" "$D/r3.log.2"
cluster_restart 3
wait_converged 30 1 2 3
expect_eq "replica 3: GET during:20" "$(redis 3 GET during:20)" d20
expect_eq "replica 3: SET after:3" "$(redis 3 SET after:3 y)" OK
grep -q "is older than" "$D/r1.log" "$D/r2.log" && fail "replica 3's put-back life was refused as older than the refused one"
ok "taken with its log: the refused life did not count"

say "4. replica 1 restarted (peers-seen read back), replica 3 emptied again without --rejoin"
cluster_kill 1
mv "$D/r1.log" "$D/r1.log.1"
cluster_restart 1
wait_converged 30 1 2 3
cluster_kill 3
rm -rf "$D/r3"
mv "$D/r3.log" "$D/r3.log.3"
r1_before=$(grep -c "refusing replica 3" "$D/r1.log" || true)
cluster_restart 3
wait_log 1 "ERROR .*refusing replica 3: replica 3 starts as new .*first as incarnation $inc3\)" 15
((r1_before == 0)) || fail "replica 1's new log had refusals before replica 3 started"
ok "replica 1, restarted, still refuses it (peers-seen: $(tr '\n' ' ' <"$D/r1/peers-seen"))"
expect_eq "replica 1 serves: SET during2 x" "$(redis 1 SET during2 x)" OK

say "5. the fix: --rejoin on the empty data dir"
cluster_kill 3
rm -rf "$D/r3"
mv "$D/r3.log" "$D/r3.log.4"
before=$(cat "$D/r1.log" "$D/r2.log" | grep -c "refusing replica 3" || true)
RABIA_EXTRA_ARGS="$RABIA_EXTRA_ARGS --rejoin" cluster_restart 3
wait_converged 60 1 2 3
for k in 1 20; do expect_eq "replica 3: GET during:$k" "$(redis 3 GET "during:$k")" "d$k"; done
expect_eq "replica 3: GET before:50" "$(redis 3 GET before:50)" v50
expect_eq "replica 3: GET during2" "$(redis 3 GET during2)" x
expect_eq "replica 3: SET after:5" "$(redis 3 SET after:5 z)" OK
expect_eq "refusals of replica 3 logged by 1 and 2 during the --rejoin" \
  "$(($(cat "$D/r1.log" "$D/r2.log" | grep -c "refusing replica 3" || true) - before))" 0

say "6. replica 3's data dir without its incarnation file, its log intact"
# (a copy that left out the small file): a restart with its log, which holds
# what it sent before; no first start from nothing (it said FIRST_START, was
# refused, and the fix named threw the log away)
cluster_kill 3
rm "$D/r3/incarnation"
mv "$D/r3.log" "$D/r3.log.5"
before=$(cat "$D/r1.log" "$D/r2.log" | grep -c "refusing replica 3" || true)
cluster_restart 3
wait_log 3 "replica 3 of 3, incarnation [0-9]+ \(restart with its log: taking part at once\)" 15
set_until 3 after:6 w 15
wait_converged 30 1 2 3
expect_eq "refusals of replica 3 logged by 1 and 2 after the restart with its log" \
  "$(($(cat "$D/r1.log" "$D/r2.log" | grep -c "refusing replica 3" || true) - before))" 0
all_alive 3
ok "lost_data_dir passed"
