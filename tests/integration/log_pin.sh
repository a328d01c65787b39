#!/usr/bin/env bash
# log_pin: a peer that asks for a catch-up from the log (CATCHUP) keeps
# the slots it asks for in the log while it catches up (replica/node.c,
# node_log_pin); one that keeps asking from the same slot, a peer stuck
# or anyone on the peer port without a cluster secret, kept every log
# segment after that slot for as long as it asked: with max-log-size 1mb
# replica 1 held 82 segments against replica 2's 15 after 40 s of writes,
# growing until its disk was full. It keeps them for ten serving periods
# (10 s) now, then the log is released as on its peers.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init log_pin 41
tls_refuse "peer_port.py writes raw peer frames over plain TCP"
need_py_redis
export RABIA_EXTRA_ARGS="--log-retain=16 --max-log-size=1mb --wal-segment-bytes=1mb"
cluster_start 3 kv
here=$(cd "$(dirname "$0")" && pwd)
cluster_kill 3
load() { # load I SECONDS: pipelined SETs of 8 KiB values through replica I
  timeout $(($2 + 30)) "$PY" - "$(resp_port "$1")" "$2" <<'PY'
import redis, sys, time
r = redis.Redis(port=int(sys.argv[1]))
v, end, i = b"x" * 8192, time.time() + float(sys.argv[2]), 0
while time.time() < end:
    p = r.pipeline(transaction=False)
    for k in range(16):
        p.set(f"k{i % 500}:{k}", v)
    p.execute()
    i += 1
PY
}
load 1 3
newest=$(ls "$RABIA_CLUSTER_DIR/r1/snap" | grep '\.snap$' | tail -n 1)
[ -n "$newest" ] || fail "replica 1 took no snapshot in 3 s of writes (max-log-size 1mb)"
from=$((10#${newest%.snap} + 1))
say "replica 1's newest snapshot is at slot $((from - 1)): its log holds slot $from on"
bg pin timeout 60 python3 "$here/peer_port.py" pin 127.0.0.1 "$(peer_port 1)" "$(cluster_id_of 1)" 2 "$from" 35
pin=$BG_PID
load 2 30
segs() { ls "$RABIA_CLUSTER_DIR/r$1/wal" | wc -l; }
s1=$(segs 1) s2=$(segs 2)
say "log segments after 30 s of writes, replica 1 asked for a catch-up from slot $from all along: $s1 (replica 2: $s2)"
[ "$s1" -le $((s2 + 6)) ] || fail "replica 1 kept $s1 log segments, replica 2 $s2: the stuck peer pinned the log"
ok "replica 1's log released as replica 2's ($s1 segments, $s2)"
bg_wait "$pin" 60
expect_eq "the peer's CATCHUP stream (exit status)" "$BG_RC" 0
all_alive 2
writes_everywhere lp 2
