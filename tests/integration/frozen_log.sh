#!/usr/bin/env bash
# A replica destroyed while its log write is parked in the kernel (a disk
# that stopped answering; here its filesystem is frozen with fsfreeze) keeps
# its data dir locked until the process exits, so that nothing written there
# later can be overwritten when the late write lands (replica/replica.c,
# rabia_replica_destroy; the program is embed_frozen.c, which says why).
# Then, in a new process, the three replicas hold every acknowledged write.
# Part 2: a rabiad cluster with replica 1's data dir on that filesystem,
# frozen while it runs: replica 1 warns that its log write waits for the
# disk, /health turns 503 with the reason, INFO and /metrics give the age,
# replicas 2 and 3 go on; after the thaw replica 1 says the write completed,
# turns healthy, answers its client and catches up.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init frozen_log 65
[ "$(id -u)" = 0 ] || skip "needs root to loop-mount and freeze a filesystem"
need_cmd mkfs.ext4 mount umount fsfreeze redis-cli curl
EF=${EMBED_FROZEN:-$IT_REPO/build/tests/integration/embed_frozen}
[ -x "$EF" ] || fail "embed_frozen not found at $EF: build first (cmake --build build)"
base=$((${RABIA_IT_PORT_BASE:-20000} + 100 * 65))

it_loop_fs 256M # thawed at exit before the unmount: a frozen filesystem cannot be unmounted
mnt=$IT_MNT
say "a 256 MiB ext4 image mounted at $mnt"

say "three replicas in one process; the filesystem frozen under a write; destroyed; replica 1 made again"
# embed_frozen thaws it itself; should it die first, its threads (and this
# test) would wait in the kernel for ever: a thaw after 60 s at the latest
(sleep 60 && fsfreeze -u "$mnt" 2>/dev/null) &
thaw_pid=$!
on_exit "kill $thaw_pid 2>/dev/null"
rc=0
timeout 90 "$EF" "$base" "$mnt" "$IT_DIR/destroy.log" freeze >"$IT_DIR/freeze.out" 2>&1 || rc=$?
kill "$thaw_pid" 2>/dev/null || true # not to thaw part 2's freeze
sed 's/^/    /' "$IT_DIR/freeze.out"
grep -h 'in flight' "$IT_DIR/destroy.log" | sed 's/^/    log: /' | head -n 4 || true
expect_eq "embed_frozen freeze: exit" "$rc" 0

say "a new process: the replicas from their data dirs"
rc=0
timeout 90 "$EF" "$base" "$mnt" "$IT_DIR/check.log" check >"$IT_DIR/check.out" 2>&1 || rc=$?
sed 's/^/    /' "$IT_DIR/check.out"
expect_eq "embed_frozen check: exit" "$rc" 0

# ---------------------------------------------------------------------------
say "rabiad: replica 1's data dir on the filesystem, frozen under load"
export RABIA_METRICS_BASE=$((RABIA_RESP_BASE + 60)) # /health and /metrics on base+60+i
export RABIA_WAL_STALL_WARN_S=2
export RABIA_EXTRA_ARGS="--durability wal --wal-segment-bytes 4194304"
wait_log() { # wait_log FILE REGEX SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -Eq "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
health1() { curl -s --max-time 3 -w ' %{http_code}' "http://127.0.0.1:$((RABIA_METRICS_BASE + 1))/health" | tr -d '\n' || true; }
metric1() { curl -s --max-time 3 "http://127.0.0.1:$((RABIA_METRICS_BASE + 1))/metrics" | sed -n "s/^$1 //p"; }
waiting1() { redis 1 INFO persistence | tr -d '\r' | sed -n 's/^wal_write_waiting_us://p'; }
cluster_start 3 kv
cluster_kill 1
mv "$RABIA_CLUSTER_DIR/r1" "$mnt/rabiad-r1"
ln -s "$mnt/rabiad-r1" "$RABIA_CLUSTER_DIR/r1"
cluster_restart 1
wait_ready 20 1 2 3
expect_eq "replica 1: SET before the freeze" "$(redis 1 SET before yes)" OK
expect_match "replica 1 /health before the freeze" "$(health1)" " 200$"
expect_eq "INFO wal_write_waiting_us before the freeze" "$(waiting1)" 0
fsfreeze -f "$mnt"
(sleep 40 && fsfreeze -u "$mnt" 2>/dev/null) & # should a check below fail, the thaw of on_exit comes first anyway
on_exit "kill $! 2>/dev/null"
say "frozen $mnt"
# replicas 2 and 3 decide without replica 1; its PROPOSAL's write waits
expect_eq "replica 2: SET while replica 1's disk is frozen" "$(timeout 10 redis-cli -p "$(resp_port 2)" SET during yes)" OK
(timeout 40 redis-cli -p "$(resp_port 1)" SET frozen:k v1 >"$IT_DIR/frozen_set.out" 2>&1; echo "exit $?" >>"$IT_DIR/frozen_set.out") &
setpid=$!
on_exit "kill $setpid 2>/dev/null"
wait_log "$RABIA_CLUSTER_DIR/r1.log" "WARNING: a write to the log has waited [0-9.]+ s for the disk" 15 ||
  fail "replica 1 logged no warning of its waiting log write: $(tail -n 3 "$RABIA_CLUSTER_DIR/r1.log")"
ok "replica 1: $(grep -m1 -o 'WARNING: a write to the log has waited.*for the disk' "$RABIA_CLUSTER_DIR/r1.log")"
expect_match "replica 1 /health while its write waits" "$(health1)" "^a write to the log has waited [0-9.]+ s for the disk .* 503$"
w=$(waiting1)
((w >= 2000000)) || fail "INFO wal_write_waiting_us is '$w' while the write waits (2 s or more expected)"
ok "INFO persistence wal_write_waiting_us: $w"
m=$(metric1 rabia_wal_write_waiting_seconds)
python3 -c "import sys; sys.exit(0 if float('$m') >= 2 else 1)" || fail "rabia_wal_write_waiting_seconds is '$m' (2 or more expected)"
ok "/metrics rabia_wal_write_waiting_seconds $m"
expect_eq "replica 3: GET during (replicas 2 and 3 go on)" "$(redis 3 GET during)" yes
grep -q '^exit' "$IT_DIR/frozen_set.out" && fail "replica 1 answered a SET while its log write waited: $(cat "$IT_DIR/frozen_set.out")"
ok "replica 1's client waits (no answer yet)"
fsfreeze -u "$mnt"
say "thawed $mnt"
wait_log "$RABIA_CLUSTER_DIR/r1.log" "the log write the disk had not answered completed after [0-9.]+ s" 15 ||
  fail "replica 1 did not say its write completed: $(tail -n 3 "$RABIA_CLUSTER_DIR/r1.log")"
ok "replica 1: $(grep -m1 -o 'the log write the disk had not answered completed after.*' "$RABIA_CLUSTER_DIR/r1.log")"
for ((t = 0; t < 100; t++)); do grep -q '^exit' "$IT_DIR/frozen_set.out" && break; sleep 0.1; done
expect_eq "replica 1's client after the thaw" "$(tr '\n' ' ' <"$IT_DIR/frozen_set.out")" "OK exit 0 "
wait_converged 20 1 2 3
expect_eq "replica 1: GET during (caught up)" "$(redis 1 GET during)" yes
expect_match "replica 1 /health after the thaw" "$(health1)" " 200$"
expect_eq "INFO wal_write_waiting_us after the thaw" "$(waiting1)" 0
cluster_stop
