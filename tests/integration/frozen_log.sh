#!/usr/bin/env bash
# A replica destroyed while its log write is parked in the kernel (a disk
# that stopped answering; here its filesystem is frozen with fsfreeze) keeps
# its data dir locked until the process exits, so that nothing written there
# later can be overwritten when the late write lands (replica/replica.c,
# rabia_replica_destroy; the program is embed_frozen.c, which says why).
# Then, in a new process, the three replicas hold every acknowledged write.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init frozen_log 65
[ "$(id -u)" = 0 ] || skip "needs root to loop-mount and freeze a filesystem"
need_cmd mkfs.ext4 mount umount fsfreeze
EF=${EMBED_FROZEN:-$IT_REPO/build/tests/integration/embed_frozen}
[ -x "$EF" ] || fail "embed_frozen not found at $EF: build first (cmake --build build)"
base=$((${RABIA_IT_PORT_BASE:-20000} + 100 * 65))

img=$IT_DIR/disk.img
mnt=$IT_DIR/mnt
truncate -s 256M "$img"
mkfs.ext4 -q -F -m 0 "$img"
mkdir -p "$mnt"
mount -o loop "$img" "$mnt" || skip "cannot loop-mount (no loop devices in this container?)"
# thawed first: a frozen filesystem cannot be unmounted
on_exit "fsfreeze -u '$mnt' 2>/dev/null; umount -l '$mnt'"
say "a 256 MiB ext4 image mounted at $mnt"

say "three replicas in one process; the filesystem frozen under a write; destroyed; replica 1 made again"
# embed_frozen thaws it itself; should it die first, its threads (and this
# test) would wait in the kernel for ever: a thaw after 60 s at the latest
(sleep 60 && fsfreeze -u "$mnt" 2>/dev/null) &
thaw_pid=$!
on_exit "kill $thaw_pid 2>/dev/null"
rc=0
timeout 90 "$EF" "$base" "$mnt" "$IT_DIR/destroy.log" freeze >"$IT_DIR/freeze.out" 2>&1 || rc=$?
sed 's/^/    /' "$IT_DIR/freeze.out"
grep -h 'in flight' "$IT_DIR/destroy.log" | sed 's/^/    log: /' | head -n 4 || true
expect_eq "embed_frozen freeze: exit" "$rc" 0

say "a new process: the replicas from their data dirs"
rc=0
timeout 90 "$EF" "$base" "$mnt" "$IT_DIR/check.log" check >"$IT_DIR/check.out" 2>&1 || rc=$?
sed 's/^/    /' "$IT_DIR/check.out"
expect_eq "embed_frozen check: exit" "$rc" 0
