#!/usr/bin/env bash
# snapshot_big: state transfer of a state larger than a connection may queue
# (64 MiB), streamed. Replica 3's data dir is wiped while replicas 1 and 2
# take SNAP_BIG_MB of 100 KB values (default 160; the long mode runs 1100,
# over 1 GiB); replica 3 then starts with --rejoin, far behind the retained
# log (log-retain 16), and must be rebuilt by a snapshot streamed in 1 MiB
# chunks (the receiver writes them to a file, the sender never queues more
# than 8 MiB), then converge with every key. The cluster keeps serving
# during the transfer (a write through replica 1 must succeed meanwhile).
#   SNAP_BIG_MB       state size in MiB
#   SNAP_BIG_EXTRA    extra rabiad arguments (e.g. --durability memory)
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init snapshot_big 14
need_cmd redis-cli redis-benchmark
MB=${SNAP_BIG_MB:-160}
export RABIA_EXTRA_ARGS="--log-retain 16 --max-log-size $((MB > 256 ? 1073741824 : 67108864)) ${SNAP_BIG_EXTRA:-}"
cluster_start 3 kv
cluster_kill 3
rm -rf "$RABIA_CLUSTER_DIR/r3"
keys=$((MB * 1048576 / 100000))
say "replica 3 down and wiped; $keys values of 100,000 bytes through replica 1 (~$MB MiB)"
t0=$SECONDS
timeout $((300 + MB)) redis-benchmark -p "$(resp_port 1)" -t set -d 100000 -r 100000000 -n "$keys" -c 4 -P 2 -q >/dev/null 2>&1 ||
  fail "redis-benchmark did not finish loading"
n=$(redis 1 DBSIZE)
((n > keys * 9 / 10)) || fail "only $n keys loaded"
say "  loaded $n keys in $((SECONDS - t0)) s; replica 1 resident $(awk '/VmRSS/ { print int($2 / 1024) }' "/proc/$(replica_pid 1)/status") MiB"
expect_eq "replica 1: SET marker" "$(redis 1 SET marker before)" OK

say "replica 3 rejoins: it needs a snapshot"
t0=$SECONDS
RABIA_EXTRA_ARGS="$RABIA_EXTRA_ARGS --rejoin" cluster_restart 3
for ((k = 0; k < 600; k++)); do
  grep -q "receiving a snapshot" "$RABIA_CLUSTER_DIR/r3.log" && break
  sleep 0.1
done
expect_eq "replica 1 serves during the transfer: SET marker" "$(redis 1 SET marker during)" OK
for ((k = 0; k < 1200; k++)); do
  grep -q "installed snapshot from replica" "$RABIA_CLUSTER_DIR/r3.log" && break
  pid_runs "$(replica_pid 3)" "$RABIAD" || fail "replica 3 died during the transfer"
  sleep 0.1
done
line=$(grep "installed snapshot from replica" "$RABIA_CLUSTER_DIR/r3.log" | tail -n 1)
[ -n "$line" ] || fail "replica 3 installed no snapshot within 120 s"
bytes=$(sed -n 's/.*(\([0-9]*\) bytes).*/\1/p' <<<"$line")
((bytes > 64 * 1048576)) || fail "the snapshot was only $bytes bytes: not above the old 64 MiB limit"
ok "replica 3: ${line#*INFO  } after $((SECONDS - t0)) s"
say "  sender: $(grep -h "sending snapshot" "$RABIA_CLUSTER_DIR"/r[12].log | tail -n 1 | sed 's/.*INFO  //')"
# Both peers offer the snapshot; replica 3 takes one and declines the other,
# which stops (before, both streamed the whole state: twice the bytes).
sent=0
for i in 1 2; do
  b=$(redis "$i" INFO persistence | tr -d '\r' | sed -n 's/^state_transfer_sent_bytes:\([0-9]*\)$/\1/p')
  [ -n "$b" ] || fail "replica $i: INFO has no state_transfer_sent_bytes"
  sent=$((sent + b))
done
((sent < bytes * 3 / 2)) || fail "replicas 1 and 2 sent $sent bytes for one snapshot of $bytes"
ok "replicas 1 and 2 sent $sent bytes for one snapshot of $bytes ($(grep -h "declined the snapshot" "$RABIA_CLUSTER_DIR"/r[12].log | wc -l) transfer(s) declined and stopped)"
say "  replica 3 peak resident $(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$(replica_pid 3)/status") MiB"
wait_ready 60 1 2 3
expect_eq "replica 1: SET marker after" "$(redis 1 SET marker after)" OK
wait_converged 60 1 2 3
expect_eq "replica 3: DBSIZE" "$(redis 3 DBSIZE)" "$(redis 1 DBSIZE)"
expect_eq "replica 3: GET marker" "$(redis 3 GET marker)" after
