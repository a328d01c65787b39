#!/usr/bin/env bash
# metrics_http: the metrics port's HTTP edge cases that metrics.sh's garbage
# does not reach, on a 3-replica kv cluster with metrics-listen. Each
# request gets its answer at once (within 2 s: not the 10 s request
# timeout), and the answer follows HTTP/1.1 (RFC 9110, 9112):
#  - a HEAD that fails (404 for an unknown path, 400 for a request body)
#    gets a status line and headers only: no body after them (curl -I
#    reported "Excess found" and the bytes would be read as the next
#    response on a kept connection);
#  - a head whose lines end in a bare LF (printf ... | nc) gets 400 at
#    once (it waited 10 s for a CRLFCRLF and got 408 "no complete request");
#  - "Content-Length: 0 " (trailing whitespace, which a field value may
#    carry) is no body: 200 (it got 400 "takes no request body");
#  - an absolute-form target (GET http://host/metrics), which a server
#    must accept, gets the metrics (it got 400).
# Histogram bucket bounds are printed exactly (not rounded to 6 digits).
# And a counter across a snapshot install (as root, with iptables):
# rabia_state_allocations_total at a replica that installs one does not
# go down (it fell to the loaded state's own count).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init metrics_http 55
need_cmd python3 curl redis-benchmark
export RABIA_METRICS_BASE=$((RABIA_RESP_BASE + 60))
# memory: a replica stopped past log-retain comes back by a snapshot (below)
export RABIA_EXTRA_ARGS="${RABIA_EXTRA_ARGS:-} --durability memory --log-retain 16"
cluster_start 3 kv
mp=$((RABIA_METRICS_BASE + 1))
for ((k = 0; k < 50; k++)); do
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $mp), timeout=1).close()" 2>/dev/null && break
  sleep 0.1
done

python3 - "$mp" <<'EOF' || fail "metrics port HTTP edge cases: see above"
import socket, sys, time
port = int(sys.argv[1])
bad = 0
def ask(payload, what, code, body=None):
    """payload's answer must come within 2 s with CODE; body: True (some
    bytes after the head, as many as Content-Length says), False (none)"""
    global bad
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    t0 = time.time()
    data = b""
    try:
        s.sendall(payload)
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
    except socket.timeout:
        data += b"<no answer within 2 s>"
    except ConnectionResetError:
        data += b"<reset>"
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    problems = []
    if not line.startswith("HTTP/1.1 %d " % code):
        problems.append("status %r, expected %d" % (line, code))
    if body is False and rest:
        problems.append("%d bytes of body after the head of a HEAD response: %r" % (len(rest), rest[:60]))
    if body is True:
        cl = [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")]
        if not cl or int(cl[0].split(b":")[1]) != len(rest) or not rest:
            problems.append("body of %d bytes, head %r" % (len(rest), head))
    if problems:
        bad += 1
        print("[metrics_http]   FAIL %s (%.1f s): %s" % (what, time.time() - t0, "; ".join(problems)))
    else:
        print("[metrics_http]   ok: %s -> %s (%.2f s)" % (what, line, time.time() - t0))
ask(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD /metrics", 200, False)
ask(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD /health", 200, False)
ask(b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD of an unknown path", 404, False)
ask(b"HEAD /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "HEAD with a body", 400, False)
ask(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", "GET of an unknown path", 404, True)
ask(b"GET /health HTTP/1.1\n\n", "a GET whose lines end in a bare LF", 400, True)
ask(b"GET /health HTTP/1.1\r\nHost: x\n\r\n", "a header line ending in a bare LF", 400, True)
ask(b"GET /health HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", "a bare CR inside the head", 400, True)
ask(b"GET /health HTTP/1.1\r\nContent-Length: 0 \r\n\r\n", "Content-Length: 0 with trailing whitespace", 200, True)
ask(b"GET /health HTTP/1.1\r\nContent-Length:\t0\t\r\n\r\n", "Content-Length: 0 between tabs", 200, True)
ask(b"GET /health HTTP/1.1\r\nContent-Length: 0 1\r\n\r\n", "Content-Length: '0 1'", 400, True)
ask(b"GET /health HTTP/1.1\r\nContent-Length:  \r\n\r\n", "an empty Content-Length", 400, True)
ask(b"GET http://127.0.0.1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "absolute-form GET http://host/metrics", 200, True)
ask(b"GET HTTP://127.0.0.1:9100/health?x=1 HTTP/1.1\r\n\r\n", "absolute-form with a port and a query", 200, True)
ask(b"HEAD https://[::1]:9100/health HTTP/1.1\r\n\r\n", "absolute-form https, an IPv6 host, HEAD", 200, False)
ask(b"GET http://127.0.0.1 HTTP/1.1\r\n\r\n", "absolute-form without a path", 404, True)
ask(b"GET http://127.0.0.1?/metrics HTTP/1.1\r\n\r\n", "absolute-form with a query and no path", 404, True)
ask(b"GET http:/metrics HTTP/1.1\r\n\r\n", "a target neither origin nor absolute form", 400, True)
ask(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", "a plain GET /health", 200, True)
sys.exit(1 if bad else 0)
EOF
ok "the metrics port answered every edge case at once and as HTTP/1.1 says"

# ---- histogram bucket bounds exactly as configured (metrics.c LE_*): they
# were printed with %g, 6 significant digits, so the batch size's 1, 4 and
# 16 MiB bounds read le="1.04858e+06" (1048580), "4.1943e+06", "1.67772e+07"
les=$(curl -sS --max-time 5 "http://127.0.0.1:$mp/metrics" |
  sed -n 's/^rabia_batch_size_bytes_bucket{le="\([^"]*\)"}.*/\1/p' | tr '\n' ' ')
expect_eq "rabia_batch_size_bytes bucket bounds" "$les" \
  "64 256 1024 4096 16384 65536 262144 1048576 4194304 16777216 +Inf "

# ---- a counter across a snapshot install: rabia_state_allocations_total
# never goes down. 20,000 SETs of one key (each allocates its value) give
# replica 3 a count far above what loading the resulting state takes. It is
# stopped (SIGSTOP) and its peer port resets connections (iptables, as
# snapshot_resubmit.sh: else what the peers send waits in their output and
# it catches up from that) while 500 SETs pass (log-retain 16, durability
# memory): it needs a snapshot when it continues. kv_restore swapped in the
# loaded store with the load's count alone: the counter fell from above
# 20,000 to a few thousand.
if [ "$(id -u)" = 0 ] && command -v iptables >/dev/null 2>&1; then
  scrape3() { curl -sS --max-time 5 "http://127.0.0.1:$((RABIA_METRICS_BASE + 3))/metrics"; }
  metric() { awk -v n="$2" '$1 == n { print $2; exit }' <<<"$1"; }
  timeout 60 redis-benchmark -p "$(resp_port 1)" -q -t set -n 20000 -r 1 -P 16 >/dev/null 2>&1 ||
    fail "redis-benchmark (20,000 SETs of one key) failed"
  wait_converged 20 1 2 3
  s=$(scrape3)
  a0=$(metric "$s" rabia_state_allocations_total) i0=$(metric "$s" rabia_snapshots_installed_total)
  ((a0 >= 20000)) || fail "replica 3's rabia_state_allocations_total after 20,000 SETs: $a0"
  p3=$(replica_pid 3)
  rule=(INPUT -p tcp -d 127.0.0.1 --dport "$((RABIA_PEER_BASE + 3))" -j REJECT --reject-with tcp-reset
    -m comment --comment "rabia-it-$$")
  on_exit "kill -CONT $p3 2>/dev/null || true"
  kill -STOP "$p3"
  iptables -I "${rule[@]}" || fail "iptables -I ${rule[*]} failed"
  on_exit "iptables -D ${rule[*]} 2>/dev/null || true"
  timeout 60 redis-benchmark -p "$(resp_port 1)" -q -t set -n 500 -d 1000 -r 100000 -c 1 -P 1 >/dev/null 2>&1 ||
    fail "redis-benchmark (500 SETs while replica 3 is stopped) failed"
  iptables -D "${rule[@]}"
  kill -CONT "$p3"
  wait_converged 30 1 2 3
  s=$(scrape3)
  a1=$(metric "$s" rabia_state_allocations_total) i1=$(metric "$s" rabia_snapshots_installed_total)
  ((i1 > i0)) || fail "replica 3 installed no snapshot ($i0 -> $i1): the test did not reach its case"
  ((a1 >= a0)) || fail "rabia_state_allocations_total (a counter) went down at replica 3's snapshot install: $a0 -> $a1"
  ok "replica 3 installed a snapshot ($i0 -> $i1); rabia_state_allocations_total $a0 -> $a1 (not down)"
else
  say "not root or no iptables: the counter across a snapshot install is not checked"
fi
all_alive 3
