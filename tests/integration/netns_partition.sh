#!/usr/bin/env bash
# netns_partition: a real network partition. Replicas 1 and 2 run in the root
# network namespace, replica 3 in a namespace of its own, joined by a veth
# pair on a private /24 that exists only between the two. Replica 3 is cut
# off with iptables DROP rules inside its namespace: writes at 1 and 2 still
# succeed (2 of 3 is a majority), replica 3 applies none of them and does
# not answer reads on its own; after the rules are removed it rejoins with
# the same applied slot and state hash. Needs root and `ip netns` (else
# exit 77: skipped).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init netns_partition 5
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, veth, iptables)"
need_cmd ip redis-cli

NS=rabia-it-$$
VA=rit$$a # root side
VB=rit$$b # namespace side
sub=$(free_subnet 10.213) || skip "no free 10.213.x.0/24 subnet"
RA=$sub.1
NA=$sub.2

netns_veth "$NS" "$VA" "$VB" "$NA" || skip "$NETNS_WHY"
ip addr add "$RA/24" dev "$VA"
use_iptables=1
ip netns exec "$NS" iptables -L -n >/dev/null 2>&1 || use_iptables=0
say "namespace $NS: veth $VA ($RA, root side) <-> $VB ($NA, in $NS); partition by $( ((use_iptables)) && echo "iptables DROP" || echo "link down")"

# replicas: peers on the veth addresses, clients on each namespace's 127.0.0.1
members="1=$RA:$(peer_port 1),2=$RA:$(peer_port 2),3=$NA:$(peer_port 3)"
start_replica() {
  local i=$1 host=$RA
  local -a pre=()
  if ((i == 3)); then
    host=$NA
    pre=(ip netns exec "$NS")
  fi
  mkdir -p "$IT_DIR/r$i"
  "${pre[@]}" "$RABIAD" --id "$i" --members "$members" --peer-listen "$host:$(peer_port "$i")" \
    --client-listen "127.0.0.1:$(native_port "$i")" --resp-listen "127.0.0.1:$(resp_port "$i")" \
    --data-dir "$IT_DIR/r$i" --state-machine kv $(it_tls_args "$i") >>"$IT_DIR/r$i.log" 2>&1 &
  IT_DAEMON_PIDS+=($!)
  eval "PID$i=$!"
}
in_ns() { timeout 20 ip netns exec "$NS" "$@"; }
IT_STATUS_ONE_BY_ONE=1
replica_status() {
  if [ "$1" = 3 ]; then
    timeout 5 ip netns exec "$NS" "$RABIA_CLI" -a "127.0.0.1:$(native_port 3)" --timeout 500 status 2>/dev/null || true
  else
    timeout 5 "$RABIA_CLI" -a "$(native_addr "$1")" --timeout 500 status 2>/dev/null || true
  fi
}
redis3() { in_ns redis-cli -p "$(resp_port 3)" "$@"; }

start_replica 1
start_replica 2
start_replica 3
sleep 0.3
for i in 1 2 3; do
  eval "p=\$PID$i"
  pid_runs "$p" "$RABIAD" || fail "replica $i (pid $p) did not start; see $IT_DIR/r$i.log"
done
say "replicas: 1 (pid $PID1) and 2 (pid $PID2) in the root namespace, 3 (pid $PID3) in $NS"
wait_ready 20 1 2 3
ok "all 3 replicas connected over the veth pair"

say "before the partition"
out=$(for ((k = 1; k <= 50; k++)); do printf 'SET pre:%d %d\r\n' "$k" "$k"; done | timeout 30 redis-cli -p "$(resp_port 1)" --pipe 2>&1)
expect_match "replica 1: 50 pipelined SETs" "$out" "errors: 0, replies: 50"
expect_eq "replica 3 (in $NS): GET pre:50" "$(redis3 GET pre:50)" 50
expect_eq "replica 3 (in $NS): SET from3 x" "$(redis3 SET from3 x)" OK
expect_eq "replica 2: GET from3" "$(redis 2 GET from3)" x
wait_converged 10 1 2 3
before=$CONVERGED_APPLIED

say "partition: replica 3 cut off"
if ((use_iptables)); then
  ip netns exec "$NS" iptables -I INPUT -i "$VB" -j DROP
  ip netns exec "$NS" iptables -I OUTPUT -o "$VB" -j DROP
  heal() {
    ip netns exec "$NS" iptables -D INPUT -i "$VB" -j DROP
    ip netns exec "$NS" iptables -D OUTPUT -o "$VB" -j DROP
  }
else
  ip netns exec "$NS" ip link set "$VB" down
  heal() {
    ip netns exec "$NS" ip link set "$VB" up
  }
fi
t_cut=$SECONDS
out=$(for ((k = 1; k <= 100; k++)); do printf 'SET part:%d %d\r\n' "$k" "$k"; done | timeout 30 redis-cli -p "$(resp_port 1)" --pipe 2>&1) ||
  fail "replica 1: pipelined SETs during the partition did not finish: $out"
expect_match "replica 1: 100 pipelined SETs while 3 is cut off" "$out" "errors: 0, replies: 100"
got=""
for ((k = 1; k <= 10; k++)); do got+="$(redis $((k % 2 + 1)) INCR part:ctr) "; done
expect_eq "10 INCRs alternating replicas 2 and 1 while 3 is cut off" "$got" "$(seq -s ' ' 1 10) "
wait_converged 10 1 2
majority=$CONVERGED_APPLIED
((majority > before)) || fail "replicas 1 and 2 did not advance during the partition ($before -> $majority)"
sleep 1
s3=$(replica_status 3)
a3=$(field "$s3" applied)
[ -n "$a3" ] || fail "replica 3 does not answer status inside $NS"
((a3 < majority)) || fail "replica 3 applied $a3 while cut off (the majority is at $majority)"
((a3 == before)) || fail "replica 3 applied moved from $before to $a3 while cut off"
ok "replica 3 stayed at applied $a3 while replicas 1 and 2 went from $before to $majority"
rc=0
out=$(timeout 2 ip netns exec "$NS" redis-cli -p "$(resp_port 3)" GET part:1 2>&1) || rc=$?
if [ "$rc" = 0 ] && ! grep -q '^ERR\|^BUSY' <<<"$out"; then
  fail "replica 3, cut off, answered GET part:1 with '$out' (a read without a majority)"
fi
ok "replica 3, cut off, gave no value for GET part:1 within 2 s (exit $rc${out:+, output '$out'})"
say "status of replica 1 during the partition: $(replica_status 1 | grep '^member_3')"
say "partition lasted $((SECONDS - t_cut)) s"

say "heal"
heal
t_heal=$SECONDS
wait_converged 15 1 2 3
ok "replica 3 rejoined within $((SECONDS - t_heal)) s of the heal (applied $CONVERGED_APPLIED)"
expect_eq "replica 3 (in $NS): MGET part:1 part:100 part:ctr" "$(redis3 MGET part:1 part:100 part:ctr | tr '\n' ' ')" "1 100 10 "
expect_eq "replica 3 (in $NS): INCR part:ctr" "$(redis3 INCR part:ctr)" 11
expect_eq "replica 1: GET part:ctr" "$(redis 1 GET part:ctr)" 11
expect_eq "replica 2: DBSIZE" "$(redis 2 DBSIZE)" 152
wait_converged 10 1 2 3
