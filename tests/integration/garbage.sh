#!/usr/bin/env bash
# garbage: hostile input on every port of every replica of a 3-replica kv
# cluster: random bytes of several sizes (bash /dev/tcp), malformed frames on
# the peer and native ports (bad magic, version, flags, checksum, huge and
# truncated lengths, unknown types, HELLO with a wrong cluster id or
# impossible replica ids, replica messages on the client port, requests with
# random operations) and malformed RESP (a 999999999999-byte bulk must get
# Redis's protocol error and a close). A client keeps writing meanwhile.
# Afterwards: every replica alive, still connected to its peers, serving
# SET/GET, and all reach the same state hash.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init garbage 6
tls_refuse "garbage.py writes raw RESP, native and peer bytes over plain TCP (the TLS handshake would refuse them before the parsers it tests)"
need_cmd redis-cli python3
cluster_start 3 kv
here=$(cd "$(dirname "$0")" && pwd)
cluster_id=$(cluster_id_of 1)
say "cluster id $cluster_id (from replica 1's log)"

# a client writing all along (bounded: 300 INCRs, 10 ms apart)
bg during timeout 60 redis-cli -p "$(resp_port 1)" -r 300 -i 0.01 INCR g:during
during=$BG_PID

# random bytes: one connection per size, written and closed by bash
random_to() {
  local port=$1 size=$2
  timeout 5 bash -c 'head -c "$1" /dev/urandom >"/dev/tcp/127.0.0.1/$2"' _ "$size" "$port" 2>/dev/null || true
}
sent=0
conns=0
for i in 1 2 3; do
  for port in $(peer_port "$i") $(native_port "$i") $(resp_port "$i"); do
    for size in 1 7 16 17 333 4096 65536 1048576; do
      random_to "$port" "$size"
      sent=$((sent + size))
      conns=$((conns + 1))
    done
  done
done
ok "random bytes: $conns connections, $sent bytes to the peer, native and RESP ports of 3 replicas"

say "malformed frames and RESP"
for i in 1 2 3; do
  for kind in peer native resp; do
    case $kind in
    peer) port=$(peer_port "$i") ;;
    native) port=$(native_port "$i") ;;
    resp) port=$(resp_port "$i") ;;
    esac
    rc=0
    quiet=--quiet
    ((i == 1)) && quiet= # every case in detail for replica 1, counts for the others
    out=$(timeout 120 python3 "$here/garbage.py" "$kind" 127.0.0.1 "$port" --cluster-id "$cluster_id" \
      --self-id "$i" --n 3 $quiet ${GARBAGE_ARGS:-} 2>&1) || rc=$?
    printf '%s\n' "$out" | sed "s/^/[$IT_NAME]   replica $i /"
    [ "$rc" = 0 ] || fail "replica $i $kind port $port: malformed input was not handled as expected (see above)"
    ok "replica $i $kind port: $(sed -n 's/.*: \([0-9]*\) cases, 0 failed.*/\1/p' <<<"$out") malformed inputs handled as expected"
  done
done

say "afterwards"
bg_wait "$during" 60
expect_eq "the writer during the garbage: redis-cli -r 300 INCR exit status" "$BG_RC" 0
all_alive 3
for i in 1 2 3; do
  say "replica $i: $(grep -c 'bad frame' "$RABIA_CLUSTER_DIR/r$i.log") 'bad frame', $(grep -c 'refusing' "$RABIA_CLUSTER_DIR/r$i.log") 'refusing', $(grep -c 'client sent' "$RABIA_CLUSTER_DIR/r$i.log") 'client sent' log lines; RSS $(awk '/^VmRSS/ {print $2 $3}' "/proc/$(replica_pid "$i")/status")"
done
grep -q "refusing 127.0.0.1:[0-9]*: cluster id" "$RABIA_CLUSTER_DIR/r1.log" || fail "replica 1 did not log refusing the HELLO with the wrong cluster id"
grep -q "refusing .*protocol version 7" "$RABIA_CLUSTER_DIR/r1.log" || fail "replica 1 did not log refusing the HELLO with protocol version 7"
ok "the HELLOs were refused for the right reasons (cluster id, protocol version)"
wait_ready 10 1 2 3
ok "every replica still reaches all its peers and is not recovering"
writes_everywhere after 3
expect_eq "replica 3: GET g:during (300 INCRs during the garbage)" "$(redis 3 GET g:during)" 300
wait_converged 10 1 2 3
