#!/usr/bin/env bash
# netns_heal: how soon a cluster serves again after a long partition heals.
# Three replicas, each in a network namespace of its own on a bridge
# (clients reach all of them from the bridge's address; iptables DROP
# rules inside the namespaces cut peer traffic only). Under a writer that
# records every acknowledged SET:
#   1. a one-way cut for 12 s: replica 3 drops what it sends to 1 (what 1
#      sends arrives, but not the acknowledgments: both links between them
#      stall, are closed and cannot be dialed again); 1 and 2 go on writing,
#      and within HEAL_BOUND_S of the heal replica 3 has caught up;
#   2. every peer link cut for HEAL_CUT_S (default 28) seconds: no majority
#      anywhere, no write succeeds. After the heal a write must succeed at
#      replica 1 within HEAL_BOUND_S (default 12) seconds. Before peer
#      sockets had TCP_USER_TIMEOUT, a link stuck in the partition stayed
#      open while the kernel retransmitted at ever longer intervals (26 s
#      apart by then, up to 120 s): the first write came 20-25 s after the
#      heal. Now a link whose data goes unacknowledged for
#      PEER_USER_TIMEOUT_MS is closed and redialed.
# Afterwards the replicas converge (applied slot and state hash) and every
# acknowledged write is on each of them. Needs root, ip, iptables and
# bridges (else exit 77). NETNS_HEAL_DURABILITY: wal (default) or memory.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init netns_heal 42
tls_refuse "the test certificates name 127.0.0.1, and the clients here reach the replicas at bridge addresses"
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, veth, iptables)"
need_cmd ip iptables redis-cli
need_py_redis
CUT_S=${HEAL_CUT_S:-28}
BOUND_S=${HEAL_BOUND_S:-12}
DUR=${NETNS_HEAL_DURABILITY:-wal}

netns_bridge3 nh 10.215
for i in 1 2 3; do
  ip netns exec "$(ns "$i")" iptables -L -n >/dev/null 2>&1 || skip "no iptables inside a namespace"
done
MEMBERS="1=$(host 1):$(peer_port 1),2=$(host 2):$(peer_port 2),3=$(host 3):$(peer_port 3)"
for i in 1 2 3; do
  mkdir -p "$IT_DIR/r$i"
  # shellcheck disable=SC2046  # the TLS options are a word list
  ip netns exec "$(ns "$i")" "$RABIAD" --id "$i" --members "$MEMBERS" --peer-listen "$(host "$i"):$(peer_port "$i")" \
    --client-listen "$(native_addr "$i")" --resp-listen "$(host "$i"):$(resp_port "$i")" --data-dir "$IT_DIR/r$i" \
    --state-machine kv --durability "$DUR" $(it_tls_args "$i") >>"$IT_DIR/r$i.log" 2>&1 &
  IT_DAEMON_PIDS+=($!)
done
wait_ready 20 1 2 3
say "replicas 1-3 (durability $DUR) in namespaces $(ns 1)..3 at $SUB.1-3 on bridge $BR"

# drop I J: replica I drops what it sends to J; heal I...: drops nothing
drop() { ip netns exec "$(ns "$1")" iptables -A OUTPUT -d "$(host "$2")" -j DROP; }
heal() {
  local i
  for i in "$@"; do ip netns exec "$(ns "$i")" iptables -F OUTPUT; done
}
W=$(dirname "$0")/acked_writer.py
bg writer "$PY" "$W" write heal "$(host 1):$(resp_port 1),$(host 2):$(resp_port 2)" "$IT_DIR/heal.ack" "$IT_DIR/stop" \
  --pipeline 4
sleep 1

say "one-way cut: replica 3 drops what it sends to 1"
drop 3 1
sleep 12
expect_eq "replica 2 serves during the one-way cut: SET oneway:k" "$(redis 2 SET oneway:k v)" OK
s=$(replica_status 1)
expect_match "replica 1's status of replica 3 after the one-way cut" "$(grep '^member_3:' <<<"$s")" "unreachable$"
a3=$(field "$(replica_status 3)" applied)
heal 3
wait_within "$BOUND_S" 20 3 1
ok "replica 3 caught up after the one-way cut: from applied $a3 to $WITHIN_I (replica 1: $WITHIN_J)"

say "every peer link cut for ${CUT_S}s: no majority"
for i in 1 2 3; do
  for j in 1 2 3; do ((i == j)) || drop "$i" "$j"; done
done
sleep "$CUT_S"
# the links noticed the cut (data unacknowledged for PEER_USER_TIMEOUT_MS)
s=$(replica_status 1)
expect_eq "replica 1's status of its peers after ${CUT_S}s cut" "$(grep -c '^member_[23]: .* unreachable$' <<<"$s")" 2
rc=0
out=$(timeout 2 redis-cli -h "$(host 1)" -p "$(resp_port 1)" SET cut:k v 2>&1) || rc=$?
[ "$rc" != 0 ] || [ "$out" != OK ] || fail "replica 1 acknowledged a write with every peer link cut"
heal 1 2 3
t0=$(date +%s%N)
while :; do
  out=$(timeout 2 redis-cli -h "$(host 1)" -p "$(resp_port 1)" SET healed:k v 2>/dev/null) || true
  [ "$out" = OK ] && break
  (($(date +%s%N) - t0 < BOUND_S * 1000000000)) || fail "no write succeeded at replica 1 within ${BOUND_S}s of the heal (links: $(grep -h 'lost connection\|connected to' "$IT_DIR"/r*.log | tail -n 6 | tr '\n' '|'))"
  sleep 0.1
done
ms=$((($(date +%s%N) - t0) / 1000000))
ok "a write succeeded at replica 1 ${ms} ms after the heal (bound ${BOUND_S}s)"

sleep 1
touch "$IT_DIR/stop"
bg_wait "$BG_PID" 30
say "writer: $(cat "$IT_DIR/writer.out")"
wait_converged 30 1 2 3
for i in 1 2 3; do
  out=$("$PY" "$W" verify "$(host "$i"):$(resp_port "$i")" "$IT_DIR/heal.ack" 2>&1) || {
    printf '%s\n' "$out"
    fail "replica $i lost acknowledged writes"
  }
  ok "replica $i: $out"
done
expect_eq "replica 3: GET healed:k" "$(redis 3 GET healed:k)" v
