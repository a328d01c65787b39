#!/usr/bin/env bash
# disk_full: replica 1's data dir on a small ext4 filesystem (a loop-mounted
# image this test makes), filled up under load. Replica 1 must refuse
# requests with a -MISCONF error naming the cause (as Redis does), keep
# running, corrupt nothing and serve again by itself once space returns;
# replicas 2 and 3 serve throughout. Every acknowledged write is on every
# replica at the end and the state hashes agree. Needs root (mount), else
# skipped.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init disk_full 13
[ "$(id -u)" = 0 ] || skip "needs root to loop-mount a small filesystem"
need_cmd mkfs.ext4 mount umount redis-cli
need_py_redis
W=$IT_REPO/tests/integration/acked_writer.py
export RABIA_EXTRA_ARGS="--durability wal --wal-segment-bytes 2097152 --max-log-size 4194304"
export RABIA_METRICS_BASE=$((RABIA_RESP_BASE + 60)) # /health (metrics-listen) on base+60+i
health1() { curl -s --max-time 3 -w ' %{http_code}' "http://127.0.0.1:$((RABIA_METRICS_BASE + 1))/health" | tr -d '\n' || true; }

# 128 MiB: once space is back, replica 1's state (every writer's keys, 10 MB
# and more at today's rates), a snapshot being written beside the newest
# one and the log between them must fit; 40 MiB filled up again before the
# check when writes got faster.
it_loop_fs 128M
mnt=$IT_MNT
say "a 128 MiB ext4 image mounted at $mnt: $(df -h --output=size,avail "$mnt" | tail -n 1)"

cluster_start 3 kv
# replica 1 moves its data dir onto the small filesystem
cluster_kill 1
mv "$RABIA_CLUSTER_DIR/r1" "$mnt/r1"
ln -s "$mnt/r1" "$RABIA_CLUSTER_DIR/r1"
cluster_restart 1
wait_ready 20 1 2 3
expect_eq "replica 1 (data dir on the small disk): SET" "$(redis 1 SET before-full yes)" OK

say "fill the small filesystem"
dd if=/dev/zero of="$mnt/filler" bs=1M status=none 2>/dev/null || true
say "  $(df -h --output=avail "$mnt" | tail -n 1 | tr -d ' ') left"

touch "$IT_DIR/w1.acked" "$IT_DIR/w23.acked"
bg w1 "$PY" "$W" write w1 "$(resp_port 1)" "$IT_DIR/w1.acked" "$IT_DIR/stop"
bg w23 "$PY" "$W" write w23 "$(resp_port 2),$(resp_port 3)" "$IT_DIR/w23.acked" "$IT_DIR/stop"

say "load until replica 1 refuses"
t0=$SECONDS
msg=""
while ((SECONDS - t0 < 60)); do
  msg=$(redis 1 SET probe x 2>&1 || true)
  [[ $msg == MISCONF* ]] && break
  sleep 0.3
done
expect_match "replica 1 refuses with the cause" "$msg" "^MISCONF rabia cannot persist to disk: .*No space left on device"
say "  after $((SECONDS - t0)) s: $msg"
pid1=$(replica_pid 1)
n23a=$(wc -l <"$IT_DIR/w23.acked")
sleep 2
n23b=$(wc -l <"$IT_DIR/w23.acked")
((n23b > n23a)) || fail "replicas 2 and 3 stopped acknowledging while replica 1's disk was full ($n23a -> $n23b)"
ok "replicas 2 and 3 acknowledged $((n23b - n23a)) writes in 2 s while replica 1's disk was full"
pid_runs "$pid1" "$RABIAD" || fail "replica 1 died on the full disk"
ok "replica 1 (pid $pid1) still runs"
if command -v curl >/dev/null; then
  expect_match "replica 1 /health while its disk is full" "$(health1)" "^refusing writes: .*No space left on device.* 503$"
fi
# the native client says why too: every attempt answered UNAVAILABLE with
# the cause, which rabia-cli printed as a bare "UNAVAILABLE" (found by review)
rc=0
out=$(cli -a "$(native_addr 1)" -t 200 kv set probe x 2>&1) || rc=$?
expect_eq "rabia-cli kv set on replica 1 alone: exit status (not applied)" "$rc" 3
expect_match "rabia-cli names the cause" "$out" \
  "^rabia-cli: no replica accepted the request \(last answer: UNAVAILABLE: .*No space left on device.*\); it was not applied$"
info=$(redis 1 INFO | tr -d '\r' | grep -E '^(disk_error|requests_refused_disk|wal_segment_waits):' | tr '\n' ' ')
say "  replica 1 INFO: $info"

say "free the space: replica 1 resumes by itself"
rm -f "$mnt/filler"
t0=$SECONDS
while ((SECONDS - t0 < 30)); do
  [ "$(redis 1 SET after-full yes 2>&1)" = OK ] && break
  sleep 0.3
done
expect_eq "replica 1: SET after the space came back" "$(redis 1 SET after-full yes)" OK
say "  resumed $((SECONDS - t0)) s after the filler was removed"
if command -v curl >/dev/null; then expect_match "replica 1 /health after the space came back" "$(health1)" "^ok 200$"; fi
sleep 1
touch "$IT_DIR/stop"
for p in "${IT_BG_PIDS[@]}"; do bg_wait "$p" 30; done
cat "$IT_DIR/w1.out" "$IT_DIR/w23.out" | sed "s/^/[$IT_NAME]   /"
grep -q "MISCONF" "$IT_DIR/w1.out" || fail "the writer on replica 1 never saw a MISCONF refusal"
wait_converged 30 1 2 3
acked_verify "$PY" "$W" "$IT_DIR/w1.acked" "$IT_DIR/w23.acked"
say "replica 1 restarts cleanly from the filesystem that was full"
cluster_kill 1
cluster_restart 1
wait_ready 20 1 2 3
wait_converged 20 1 2 3
