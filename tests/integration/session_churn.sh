#!/usr/bin/env bash
# session_churn: client sessions under connection churn (issue: review
# fixes, item 2).
#  1. 200,000 GETs of 4,000-byte values over short-lived RESP connections
#     (redis-benchmark -k 0 -P 50 -c 50; read-index no, so that each is a
#     request of the log, as a write would be): every connection's session is
#     closed through the log when it closes, so each replica stays small
#     (before the fix: 1.6 GB resident per replica, every session kept up
#     to 64 cached replies) and no session is left behind.
#  2. With max-sessions 16: a native client's request is applied, its
#     reply "lost"; 2,000 short RESP connections churn; the client's retry
#     (same client id, seq, ack) gets the cached reply and is not applied a
#     second time (before the fix the churn evicted its session and the
#     retry incremented again).
#  3. Then 20 other native clients push that session out after all: the
#     retry is answered SESSION_EXPIRED, still never applied twice.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init session_churn 9
tls_refuse "part 2 sends requests with native_req, which writes plain native frames with a chosen session (no TLS in it)"
need_cmd redis-cli redis-benchmark
NATIVE_REQ=${NATIVE_REQ:-$IT_REPO/build/tests/integration/native_req}
[ -x "$NATIVE_REQ" ] || fail "native_req not found at $NATIVE_REQ: build first"
RSS_LIMIT_MB=${RSS_LIMIT_MB:-400}
PARTS=${SESSION_CHURN_PARTS:-123} # run only some parts (e.g. 23), for debugging

rss_mb() { awk '/^VmRSS/ {printf "%d", $2 / 1024}' "/proc/$(replica_pid "$1")/status"; }
info() { redis "$1" INFO | tr -d '\r' | sed -n "s/^$2://p"; }
# the GET count of a redis-benchmark -q run
bench_rate() { tr '\r' '\n' | grep -E '^ *GET: [0-9.]+ requests per second' | tail -n 1 | sed 's/^ *//'; }
# wait_sessions I: until replica I holds at most one session (5 s); prints the count
wait_sessions() {
  local k s
  for ((k = 0; k < 50; k++)); do
    s=$(info "$1" sessions)
    [ "$s" -le 1 ] && break
    sleep 0.1
  done
  echo "$s"
}

# ---------------------------------------------------------------- part 1
if [[ $PARTS == *1* ]]; then
# read-index no: every GET goes through the log and opens its connection's
# session there (by the read index a connection of reads opens none, and
# only the closes of those that used the log would be counted)
RABIA_EXTRA_ARGS="--read-index no" cluster_start 3 kv
say "1,000 keys of 4,000 bytes"
timeout 60 redis-benchmark -p "$(resp_port 1)" -q -t set -d 4000 -r 1000 -n 5000 -c 20 -P 10 >/dev/null 2>&1 ||
  fail "loading the keys failed"
for i in 1 2 3; do say "replica $i before: $(rss_mb "$i") MB resident"; done
say "200,000 GETs over short-lived connections (-k 0 -P 50 -c 50)"
t0=$SECONDS
out=$(timeout 120 redis-benchmark -p "$(resp_port 1)" -q -t get -d 4000 -r 1000 -n 200000 -c 50 -P 50 -k 0 2>&1) ||
  fail "redis-benchmark -k 0 failed: $(tail -c 300 <<<"$out")"
say "$(bench_rate <<<"$out") in $((SECONDS - t0)) s"
wait_converged 20 1 2 3
for i in 1 2 3; do
  mb=$(rss_mb "$i")
  ((mb <= RSS_LIMIT_MB)) || fail "replica $i: $mb MB resident after the churn (limit $RSS_LIMIT_MB MB)"
  ok "replica $i after: $mb MB resident (limit $RSS_LIMIT_MB MB)"
done
# every connection is gone: its session was closed through the log
for i in 1 2 3; do
  s=$(wait_sessions "$i")
  ((s <= 1)) || fail "replica $i still holds $s sessions after every connection closed"
  ok "replica $i: $s session(s) left (the INFO connection's own at most), $(info "$i" session_reply_bytes) reply bytes kept"
done
say "20 rabia-cli calls: each opens a session and closes it on exit"
for ((k = 1; k <= 20; k++)); do
  cli -a "$(all_addrs 3)" kv set "cli:$k" "$k" >/dev/null || fail "rabia-cli kv set cli:$k failed"
done
s=$(wait_sessions 1)
((s <= 1)) || fail "replica 1 holds $s sessions after 20 rabia-cli calls exited (not closed?)"
ok "sessions after 20 rabia-cli calls: $s"
closed=$(info 1 sessions_closed)
((closed >= 4000)) || fail "replica 1 closed only $closed sessions for 4,000 connections"
ok "replica 1 submitted $closed session closes to the log (connections, and the rabia-cli calls it served)"
cluster_stop
fi

# ---------------------------------------------------------------- part 2
RABIA_EXTRA_ARGS="--max-sessions=16" cluster_start 3 kv "$IT_DIR/cluster2"
req() { timeout 20 "$NATIVE_REQ" "$(native_addr "$1")" "${@:2}"; }
# a native client opens its session (an OPEN: empty op, seq 1, under a
# nonce); the cluster names it (SESSION_OPEN=0: builds before sessions were
# named by the log, where the nonce itself was the session)
if [ "${SESSION_OPEN:-1}" = 1 ]; then
  out=$(req 1 4660 1 1)
  C=$(sed -n 's/^OK session \([0-9]*\)$/\1/p' <<<"$out")
  [ -n "$C" ] || fail "OPEN at replica 1: got '$out', expected 'OK session ID'"
  ok "native client opened session $C"
else
  C=4660
  expect_eq "native client $C: GET n (seq 1 opens its session)" "$(req 1 $C 1 1 GET n)" 'OK $-1'
fi
expect_eq "native client $C: INCR n (seq 2)" "$(req 1 "$C" 2 2 INCR n)" "OK :1"
say "2,000 short RESP connections while the client waits for its (lost) reply"
timeout 120 redis-benchmark -p "$(resp_port 2)" -q -t get -n 2000 -c 20 -P 1 -k 0 >/dev/null 2>&1 ||
  fail "RESP churn failed"
expect_eq "the retry of seq 2 at replica 3 (same client, seq, ack)" "$(req 3 "$C" 2 2 INCR n)" "OK :1"
expect_eq "GET n: applied once" "$(redis 1 GET n)" 1

# ---------------------------------------------------------------- part 3
say "20 other native clients open sessions: with max-sessions 16, $C is evicted"
for ((k = 1; k <= 20; k++)); do
  if [ "${SESSION_OPEN:-1}" = 1 ]; then
    r=$(req $(((k % 3) + 1)) $((9000 + k)) 1 1)
    [[ $r == "OK session "* ]] || fail "client $((9000 + k)) OPEN: $r"
  else
    r=$(req $(((k % 3) + 1)) $((9000 + k)) 1 1 GET n)
    [ "$r" = "OK \$1 1" ] || fail "client $((9000 + k)) GET n: $r"
  fi
done
expect_eq "the retry of seq 2 after the eviction" "$(req 2 "$C" 2 2 INCR n)" "SESSION_EXPIRED"
expect_eq "GET n: still applied once" "$(redis 3 GET n)" 1
wait_converged 20 1 2 3
