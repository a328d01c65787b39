#!/usr/bin/env bash
# snapshot_resubmit: a replica's own pending batch is dropped when it
# installs a snapshot (the snapshot cannot tell whether it covers the
# batch); its clients must still get their answer (issue: review fixes,
# item 3). Replica 3 takes a SET while replicas 1 and 2 are stopped
# (SIGSTOP), then is stopped itself, and its peer port rejects connections
# (iptables REJECT with a TCP reset, on 127.0.0.1, removed at the end), so
# that what 1 and 2 send it meanwhile is lost rather than buffered; 1 and 2
# decide 300 slots with log-retain 16. On SIGCONT replica 3 is too far
# behind for the log and installs a snapshot. Before the fix the SET's
# client waited for ever; now the request is answered from the restored
# sessions, or resubmitted. Needs root and iptables (else skipped).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init snapshot_resubmit 10
need_cmd redis-cli redis-benchmark iptables
[ "$(id -u)" = 0 ] || skip "needs root (iptables)"
# (overridable to run against builds without log-retain: the default keeps 1024)
WRITES=${SNAP_WRITES:-300}
RABIA_EXTRA_ARGS=${SNAP_EXTRA_ARGS---log-retain=16} cluster_start 3 kv
expect_eq "SET warm 1" "$(redis 1 SET warm 1)" OK
wait_converged 10 1 2 3
p1=$(replica_pid 1) p2=$(replica_pid 2) p3=$(replica_pid 3)
on_exit "kill -CONT $p1 $p2 $p3"

kill -STOP "$p1" "$p2"
say "replicas 1 and 2 stopped; a SET at replica 3 waits"
(timeout 30 redis-cli -p "$(resp_port 3)" SET held-write v42 >"$IT_DIR/set.out" 2>&1; echo "exit $?" >>"$IT_DIR/set.out") &
IT_BG_PIDS+=($!)
setpid=$!
sleep 0.5
kill -STOP "$p3"
rule=(INPUT -p tcp -d 127.0.0.1 --dport "$(peer_port 3)" -j REJECT --reject-with tcp-reset -m comment --comment "rabia-it-$$")
iptables -I "${rule[@]}" 2>/dev/null || skip "iptables -I failed (no netfilter here?)"
on_exit "iptables -D ${rule[*]}"
kill -CONT "$p1" "$p2"
say "replica 3 stopped, 1 and 2 resumed: $WRITES writes, one slot each"
timeout 60 redis-benchmark -p "$(resp_port 1)" -q -t set -n "$WRITES" -c 1 -P 1 -r 1000 >/dev/null 2>&1 ||
  fail "the writes at replica 1 failed"
applied1=$(field "$(replica_status 1)" applied)
((applied1 > WRITES)) || fail "replica 1 applied only $applied1 slots"
ok "replica 1 applied $applied1 slots while replica 3 was stopped"
iptables -D "${rule[@]}"
kill -CONT "$p3"
say "replica 3 resumed, its peer port open again"
for ((k = 0; k < 250; k++)); do
  kill -0 "$setpid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$setpid" 2>/dev/null && fail "the SET at replica 3 is still waiting 25 s after the replica resumed"
expect_eq "the held SET's reply (redis-cli at replica 3)" "$(tr '\n' ' ' <"$IT_DIR/set.out")" "OK exit 0 "
grep -q "installed snapshot" "$RABIA_CLUSTER_DIR/r3.log" || fail "replica 3 caught up without a snapshot: the test did not test the case"
ok "replica 3 caught up by a snapshot"
grep -q "dropped own batch" "$RABIA_CLUSTER_DIR/r3.log" || fail "replica 3 reported no dropped batch"
ok "replica 3 answered or resubmitted the requests of its dropped batch ($(grep -c "dropped own batch" "$RABIA_CLUSTER_DIR/r3.log") batch(es))"
for i in 1 2 3; do expect_eq "replica $i: GET held-write" "$(redis "$i" GET held-write)" v42; done
wait_converged 20 1 2 3
