#!/usr/bin/env bash
# io_threads: client connections on I/O threads (io-threads = 2; io/threads.c).
# A 3-replica kv cluster (durability wal) whose RESP and native ports are
# served by two threads per replica: INFO says so; 64 python3-redis
# connections at once, each pipelining 200 SETs of 100-byte values, are all
# answered and read back at another replica; redis-benchmark with 50
# connections (-P 16) and with a new connection per request (-k 0, churn)
# exit 0 and leave no connection behind; a blocked BLPOP on one thread is
# woken by an LPUSH at another replica; rabia-cli (native protocol) works;
# QUIT closes; tls-clients with io-threads is refused with the fix; the
# replicas stop on SIGTERM (the threads are joined) with equal state hashes.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init io_threads 30
tls_refuse "io-threads serve plain client ports only (rabiad refuses tls-clients with io-threads)"
need_cmd redis-cli redis-benchmark
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import redis' 2>/dev/null || skip "python3-redis is not installed (deploy/install-deps.sh installs it)"
export RABIA_EXTRA_ARGS="--io-threads 2"
cluster_start 3 kv
for i in 1 2 3; do
  expect_eq "replica $i: INFO io_threads_active" "$(redis "$i" INFO server | tr -d '\r' | sed -n 's/^io_threads_active://p')" 2
done
grep -q "io-threads 2: client connections on their own threads" "$RABIA_CLUSTER_DIR/r1.log" ||
  fail "replica 1 did not log its I/O threads"

say "64 connections at once, 200 pipelined SETs each"
out=$("$PY" - "$(resp_port 1)" "$(resp_port 2)" <<'PYEOF'
import sys, threading, redis
p1, p2 = int(sys.argv[1]), int(sys.argv[2])
errs = []
def worker(t):
    try:
        r = redis.Redis(port=p1, socket_timeout=30)
        pipe = r.pipeline(transaction=False)
        for k in range(200):
            pipe.set(f"io:{t}:{k}", (f"{t}:{k}:" * 20)[:100])
        res = pipe.execute()
        if res != [True] * 200:
            errs.append(f"conn {t}: {res[:3]}")
        r.close()
    except Exception as e:
        errs.append(f"conn {t}: {e!r}")
ts = [threading.Thread(target=worker, args=(t,)) for t in range(64)]
for t in ts: t.start()
for t in ts: t.join()
r2 = redis.Redis(port=p2, socket_timeout=30)
bad = 0
for t in range(64):
    vals = r2.mget([f"io:{t}:{k}" for k in range(200)])
    bad += sum(1 for k, v in enumerate(vals) if v != (f"{t}:{k}:" * 20)[:100].encode())
print(f"errors {len(errs)} wrong {bad} {errs[:3]}")
PYEOF
)
expect_eq "64 x 200 SETs answered at replica 1, read back at replica 2" "$out" "errors 0 wrong 0 []"

bench() {
  local i=$1 rc=0 res
  shift
  res=$(timeout 90 redis-benchmark -p "$(resp_port "$i")" -q "$@" 2>&1) || rc=$?
  [ "$rc" = 0 ] || fail "redis-benchmark $* at replica $i exited $rc: $(tail -c 300 <<<"$res")"
  res=$(tr '\r' '\n' <<<"$res" | grep -E 'requests per second' | tr '\n' ' ')
  [ -n "$res" ] || fail "redis-benchmark $*: no rate in its output"
  ok "redis-benchmark $* at replica $i: $res"
}
bench 1 -t set,get -n 40000 -c 50 -P 16 -d 100 -r 100000
bench 3 -t set -n 3000 -c 20 -k 0 -d 100 -r 100000
for ((k = 0; k < 50; k++)); do
  n=$(redis 3 INFO clients | tr -d '\r' | sed -n 's/^connected_clients://p')
  [ "${n:-9}" -le 1 ] && break
  sleep 0.1
done
expect_eq "replica 3: connected_clients after the churn (this INFO's own)" "$n" 1

say "a blocked BLPOP is woken by an LPUSH at another replica"
(timeout 20 redis-cli -p "$(resp_port 1)" BLPOP io:q 10 >"$IT_DIR/blpop.out" 2>&1; echo "rc=$?" >>"$IT_DIR/blpop.out") &
bl=$!
sleep 0.5
expect_eq "replica 2: LPUSH io:q hello" "$(redis 2 LPUSH io:q hello)" 1
wait "$bl" || true
expect_eq "the BLPOP's answer" "$(tr '\n' ' ' <"$IT_DIR/blpop.out")" "io:q hello rc=0 "

say "native protocol and QUIT"
expect_eq "rabia-cli kv SET at replica 2" "$(cli -a "$(native_addr 2)" kv set io:native yes)" OK
expect_eq "rabia-cli kv GET at replica 3" "$(cli -a "$(native_addr 3)" kv get io:native)" "\"yes\""
out=$("$PY" - "$(resp_port 1)" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"PING\r\nQUIT\r\nPING\r\n")
got = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    got += b
print(repr(got))
PYEOF
)
expect_eq "PING, QUIT, PING on one connection: the answers, then EOF" "$out" "b'+PONG\\r\\n+OK\\r\\n'"

say "tls-clients with io-threads is refused"
rc=0
msg=$(timeout 10 "$RABIAD" --id 1 --members 1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3 --data-dir "$IT_DIR/nodir" \
  --io-threads 2 --tls-clients yes --tls-cert-file /x --tls-key-file /x --tls-ca-cert-file /x 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "rabiad started with tls-clients and io-threads"
expect_match "rabiad's refusal" "$msg" "io-threads = 2 with tls-clients = yes: .*set io-threads = 0"

wait_converged 30 1 2 3
cluster_stop
for i in 1 2; do
  grep -q "stopping" "$RABIA_CLUSTER_DIR/r$i.log" || fail "replica $i did not stop cleanly"
done
ok "3 replicas with 2 I/O threads each served RESP and native clients and stopped cleanly"
