#!/usr/bin/env bash
# wal_damage: what a replica does with a damaged data dir (the outcomes
# persist/README.md documents), on a 3-replica kv cluster with durability = wal:
#   1. a torn last write (garbage after the last complete group, as a crash in
#      the middle of a write leaves it): cut off, the replica starts and
#      catches up;
#   2. a bit flipped in the middle of a segment: refused, naming file and
#      offset, and the fix;
#   3. a segment file truncated: refused, naming the file;
#   4. a snapshot file damaged with no older one: refused;
#   5. the fix: the data dir moved aside and the replica started with --rejoin
#      rebuilds its state from its peers (state transfer) and every
#      acknowledged write is there.
# A second process on a data dir in use is refused too (flock).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init wal_damage 12
need_cmd redis-cli
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
export RABIA_EXTRA_ARGS="--durability wal --wal-segment-bytes 1048576 --max-log-size 1048576 --snapshot-interval-s 1 --log-retain 64"
cluster_start 3 kv
W=$IT_REPO/tests/integration/acked_writer.py
D3=$RABIA_CLUSTER_DIR/r3

# write N keys through replica 1 (pipelined, each acknowledged)
load() {
  local from=$1 n=$2
  out=$(for ((k = from; k < from + n; k++)); do printf 'SET dmg:%d %0100d\r\n' "$k" "$k"; done |
    timeout 60 redis-cli -p "$(resp_port 1)" --pipe 2>&1)
  expect_match "$n pipelined SETs through replica 1" "$out" "errors: 0, replies: $n"
}
start3() { # start replica 3: 0 once it answers, 1 once it exited (15 s at most: a busy machine)
  cluster_restart 3
  local pid i
  pid=$(replica_pid 3)
  for ((i = 0; i < 150; i++)); do
    pid_runs "$pid" "$RABIAD" || return 1
    # rabia-cli prints "unreachable" when nobody answers: a status has fields
    [ -n "$(field "$(replica_status 3)" applied)" ] && return 0
    sleep 0.1
  done
  fail "replica 3 neither answered nor exited within 15 s"
}
refused() { # what: replica 3 must refuse to start (exit) with a message matching $2
  local what=$1 pat=$2 pid i
  cluster_restart 3
  pid=$(replica_pid 3)
  # until it has exited with its message: under load the PID may not be
  # rabiad's yet when first looked at (the shell before its exec), and
  # an early look found neither the process nor the message
  for ((i = 0; i < 150; i++)); do
    if ! pid_runs "$pid" "$RABIAD" && grep -qE "$pat" "$RABIA_CLUSTER_DIR/r3.log"; then break; fi
    sleep 0.1
  done
  pid_runs "$pid" "$RABIAD" && fail "$what: replica 3 still runs 15 s after starting on a damaged data dir"
  local msg
  msg=$(grep -E "$pat" "$RABIA_CLUSTER_DIR/r3.log" | tail -n 1 || true)
  [ -n "$msg" ] || { tail -n 5 "$RABIA_CLUSTER_DIR/r3.log"; fail "$what: no refusal matching /$pat/ in the log"; }
  ok "$what: refused to start: ${msg#*ERROR }"
}
data_seg() { # last|first: the newest or oldest segment holding a group (others are preallocated)
  local f order=-r
  [ "$1" = first ] && order=
  for f in $(ls $order "$D3"/wal/*.seg); do
    if "$PY" - "$f" <<'EOF'; then echo "$f"; return; fi
import sys
d = open(sys.argv[1], 'rb').read()
sys.exit(0 if d[4096:4100] == b'RWG1' else 1)
EOF
  done
}

say "a second rabiad on replica 1's data dir is refused"
out=$("$RABIAD" --id 1 --members "1=127.0.0.1:$(peer_port 1),2=127.0.0.1:$(peer_port 2),3=127.0.0.1:$(peer_port 3)" \
  --peer-listen "127.0.0.1:$(($(peer_port 1) + 10))" --client-listen "127.0.0.1:$(($(native_port 1) + 10))" \
  --resp-listen off --data-dir "$RABIA_CLUSTER_DIR/r1" --state-machine kv 2>&1 || true)
expect_match "second process on r1's data dir" "$out" "in use by another process"

load 1 3000
wait_converged 20 1 2 3

say "1. a torn last write: garbage after the last complete group"
# (when the newest segment happens to be full, the next write would have
# started the preallocated segment after it: the garbage goes at that one's
# start, which recovery also takes as the torn last write; without such a
# segment the test writes a little more and tries again, twice at most)
torn=1
for try in 1 2 3; do
  cluster_kill 3
  seg=$(data_seg last)
  torn=0
  "$PY" - "$seg" <<'EOF' || torn=$?
import sys
f = sys.argv[1]
d = bytearray(open(f, 'rb').read())
off = 4096
while off + 4 <= len(d) and d[off:off + 4] == b'RWG1':             # walk the groups to the end
    n = int.from_bytes(d[off + 16:off + 24], 'little')
    off = (off + n + 4095) // 4096 * 4096
if off + 4096 > len(d):
    import os
    nxt = os.path.join(os.path.dirname(f), "%020d.seg" % (int(os.path.basename(f)[:20]) + 1))
    if not os.path.exists(nxt):
        print(f"{f} is full and no segment follows it")
        sys.exit(3)
    f, off = nxt, 4096
g = bytes((i * 37 + 11) & 0xff for i in range(6000))  # a group's worth of garbage, half written
with open(f, 'r+b') as fh:
    fh.seek(off); fh.write(g)
print(f"garbage at {f} offset {off}")
EOF
  ((torn == 3)) || break
  start3 || fail "replica 3 did not start again"
  load $((90000 + 100 * try)) 50
  wait_converged 20 1 2 3
done
((torn == 0)) || fail "could not place a torn write (exit $torn)"
start3 || { tail -n 5 "$RABIA_CLUSTER_DIR/r3.log"; fail "replica 3 did not start after a torn write"; }
expect_match "replica 3's log says" "$(grep 'zeroing it' "$RABIA_CLUSTER_DIR/r3.log" | tail -n 1)" "after the last complete write; zeroing it"
load 3001 500
wait_converged 20 1 2 3

say "2. a bit flipped in the middle of the log (the oldest segment's first group)"
cluster_kill 3
seg=$(data_seg first)
cp "$seg" "$IT_DIR/seg.bak"
"$PY" - "$seg" <<'EOF'
import sys
f = sys.argv[1]
d = bytearray(open(f, 'rb').read())
off = 4096 + 60                               # inside the first record of the first group
d[off] ^= 0x04
open(f, 'r+b').write(d)
EOF
refused "bit flip" "offset 4096: .*intact log records follow"
cp "$IT_DIR/seg.bak" "$seg"

say "3. a segment file truncated"
truncate -s 500000 "$seg"
refused "truncated segment" "$(basename "$seg") is 500000 bytes, expected 1048576"
cp "$IT_DIR/seg.bak" "$seg"
start3 || fail "replica 3 did not start once the segment was restored"
ok "replica 3 starts again with the original segment"
wait_converged 20 1 2 3

say "4. the only snapshot file damaged"
load 3501 2000
wait_converged 20 1 2 3
for ((k = 0; k < 50; k++)); do # snapshot-interval-s 1: one follows the load
  [ "$(ls "$D3"/snap/*.snap 2>/dev/null | wc -l)" -gt 0 ] && break
  sleep 0.2
done
sleep 0.5
cluster_kill 3
snaps=$(ls "$D3"/snap/*.snap 2>/dev/null | wc -l || true)
((snaps > 0)) || fail "replica 3 wrote no snapshot file (max-log-size 1 MiB)"
for s in "$D3"/snap/*.snap; do printf 'X' | dd of="$s" bs=1 seek=100 conv=notrunc status=none; done
refused "damaged snapshot" "damaged .*no older intact snapshot"

say "5. the fix: move the data dir aside, start with --rejoin"
mv "$D3" "$IT_DIR/r3.damaged"
RABIA_EXTRA_ARGS="$RABIA_EXTRA_ARGS --rejoin" cluster_restart 3
wait_ready 30 1 2 3
load 5501 300
wait_converged 30 1 2 3
# rebuilt from a peer's snapshot, or from the peers' write-ahead logs
# when they still hold every slot from the first (replica/logcatch.c)
line=$(grep -E 'installed snapshot from replica' "$RABIA_CLUSTER_DIR/r3.log" | tail -n 1 || true)
fromlogs=0
for i in 1 2; do
  fromlogs=$((fromlogs + $(redis "$i" INFO persistence | tr -d '\r' | sed -n 's/^wal_catchup_slots:\([0-9]*\)$/\1/p')))
done
if [ -n "$line" ]; then
  ok "replica 3 rebuilt from a peer's snapshot: ${line#*INFO  }"
else
  ((fromlogs > 0)) || fail "replica 3 rebuilt from neither a snapshot nor the peers' logs"
  ok "replica 3 rebuilt from the peers' write-ahead logs: $fromlogs decided slots"
fi
for k in 1 3000 3500 5500 5800; do
  expect_eq "replica 3: GET dmg:$k" "$(redis 3 GET "dmg:$k")" "$(printf '%0100d' "$k")"
done
expect_eq "replica 3: DBSIZE" "$(redis 3 DBSIZE)" 5800
