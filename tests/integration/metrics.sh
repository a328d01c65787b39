#!/usr/bin/env bash
# metrics: metrics-listen on a 3-replica kv cluster (deploy/local-cluster.sh
# with RABIA_METRICS_BASE). redis-benchmark drives a bounded load (SET and
# GET, -d 100 -r 100000) at replica 1 while /metrics is scraped with curl;
# promtool must find no problem in a scrape taken under load nor in one
# after it, and the values must agree with the load (requests counted at
# least as many as were sent, latency histogram counts equal to the request
# counters, the applied slot equal to the status's, decided slots > 0, every
# proposed request in a batch). /health: 200 on all; kill -9 one replica:
# the others stay 200; kill a second: the survivor answers 503 "no
# majority"; restart both: 200 again. Garbage on the metrics port (random
# bytes, a 1 MiB request line, an unterminated request, a huge
# Content-Length, a POST, an unknown path, 300 mutated requests, 80 idle
# connections) gets 400/404/405/408 or a close, and the replica keeps
# serving. A replica that lost its data dir (--rejoin) answers 503
# recovering / receiving a snapshot, then 200; the transfer is counted on
# both sides. promtool check rules and promtool test rules on
# deploy/prometheus-alerts.yml, promtool check rules on the dashboard's
# queries, and every rabia_ name both query is one /metrics exports.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init metrics 17
need_cmd curl promtool redis-cli redis-benchmark python3
# metrics ports: base+60+i, inside this test's port slot (lib.sh checks base..base+59)
export RABIA_METRICS_BASE=$((RABIA_RESP_BASE + 60))
mport() { echo $((RABIA_METRICS_BASE + $1)); }

say "promtool check rules deploy/prometheus-alerts.yml"
out=$(promtool check rules "$IT_REPO/deploy/prometheus-alerts.yml" 2>&1) || fail "promtool check rules: $out"
expect_match "promtool check rules" "$out" "SUCCESS: [1-9][0-9]* rules found"
out=$(promtool test rules "$IT_REPO/deploy/prometheus-alerts.test.yml" 2>&1) ||
  fail "promtool test rules deploy/prometheus-alerts.test.yml: $out"
ok "promtool test rules deploy/prometheus-alerts.test.yml: the thresholds fire past their bounds, not before"

# the dashboard's queries must parse: as recording rules, through promtool
python3 - "$IT_REPO/deploy/grafana-dashboard.json" >"$IT_DIR/dashboard-rules.yml" <<'EOF' || fail "reading deploy/grafana-dashboard.json"
import json, sys
d = json.load(open(sys.argv[1]))
print("groups:\n  - name: dashboard\n    rules:")
n = 0
for p in d["panels"]:
    for t in p["targets"]:
        e = t["expr"].replace("$__rate_interval", "1m").replace("$job", "rabia").replace("$instance", ".*")
        n += 1
        print("      - record: dashboard:expr%d\n        expr: %s" % (n, json.dumps(e)))
EOF
out=$(promtool check rules "$IT_DIR/dashboard-rules.yml" 2>&1) || fail "the dashboard's queries: $out"
expect_match "promtool check rules on deploy/grafana-dashboard.json's queries" "$out" "SUCCESS: [1-9][0-9]* rules found"

# 1 MiB segments: backups release segments below. log-retain 16: the
# peers keep few decided slots in memory, so the replica rebuilt below
# (--rejoin, after the backups released the logs' start) comes back by a
# snapshot. With the default 1024 (more than the ~350 slots of this run) it
# sometimes caught up slot by slot from memory before any snapshot was
# offered, and the checks of the transfer counters failed (a clean-clone CI
# run: "caught up slot by slot but counted no declined transfer").
export RABIA_EXTRA_ARGS="${RABIA_EXTRA_ARGS:-} --wal-segment-bytes 1048576 --log-retain 16"
cluster_start 3 kv

# scrape I: the text of replica I's /metrics (fails the test on a non-200)
scrape() {
  local code
  code=$(curl -sS --max-time 5 -o "$IT_DIR/scrape.$1" -w '%{http_code}' "http://127.0.0.1:$(mport "$1")/metrics") ||
    fail "curl /metrics of replica $1 failed"
  [ "$code" = 200 ] || fail "GET /metrics of replica $1: HTTP $code"
  cat "$IT_DIR/scrape.$1"
}
# metric TEXT 'NAME{LABELS}': its value (the exact series; "" if absent)
metric() { awk -v n="$2" '$1 == n { print $2; exit }' <<<"$1"; }
# health I: "CODE BODY" of replica I's /health ("000" when it does not answer)
health() {
  local code body
  code=$(curl -s --max-time 3 -o "$IT_DIR/health.$1" -w '%{http_code}' "http://127.0.0.1:$(mport "$1")/health" || true)
  body=$(cat "$IT_DIR/health.$1" 2>/dev/null || true)
  echo "${code:-000} $body"
}
# wait_health I CODE [SECONDS]: until replica I's /health answers CODE
wait_health() {
  local i=$1 want=$2 limit=${3:-10} t0=$SECONDS h
  while :; do
    h=$(health "$i")
    [ "${h%% *}" = "$want" ] && { ok "replica $i /health: $h"; return 0; }
    ((SECONDS - t0 < limit)) || fail "replica $i /health: '$h', expected $want within ${limit}s"
    sleep 0.2
  done
}
promcheck() { # WHAT FILE: promtool check metrics prints nothing and exits 0
  local out rc=0
  out=$(promtool check metrics <"$2" 2>&1) || rc=$?
  [ "$rc" = 0 ] && [ -z "$out" ] || fail "promtool check metrics ($1): exit $rc: $out"
  ok "promtool check metrics ($1): no problems ($(wc -l <"$2") lines)"
}

for i in 1 2 3; do wait_health "$i" 200; done
before=$(scrape 1)
w0=$(metric "$before" 'rabia_requests_total{frontend="resp",kind="write"}')
r0=$(metric "$before" 'rabia_requests_total{frontend="resp",kind="read"}')
[ -n "$w0" ] && [ -n "$r0" ] || fail "no rabia_requests_total series for resp in the first scrape"
# every rabia_ name the alert rules and the dashboard query is one this
# replica exports: promtool checks their syntax only, and an alert on a
# renamed or misspelt metric never fires
exported=$(awk '$1 == "#" && $2 == "TYPE" { print $3 }' <<<"$before" | sort -u)
for f in prometheus-alerts.yml grafana-dashboard.json; do
  used=$(grep -oE 'rabia_[a-z0-9_]+' "$IT_REPO/deploy/$f" | sed -E 's/_(bucket|sum|count)$//' | sort -u)
  [ -n "$used" ] || fail "deploy/$f names no rabia_ metric"
  missing=$(comm -23 <(echo "$used") <(echo "$exported"))
  [ -z "$missing" ] || fail "deploy/$f queries metrics /metrics does not export: $(echo $missing)"
  ok "deploy/$f: all $(wc -l <<<"$used") rabia_ metric names it queries are exported"
done

# ---- a bounded load, scraped while it runs
N=20000
say "load: redis-benchmark -t set,get -n $N -d 100 -r 100000 -c 20 -P 4 at replica 1"
timeout 60 redis-benchmark -p "$(resp_port 1)" -q -t set,get -n $N -d 100 -r 100000 -c 20 -P 4 \
  >"$IT_DIR/bench.out" 2>&1 &
bench_pid=$!
IT_BG_PIDS+=("$bench_pid")
under=""
for ((k = 0; k < 200; k++)); do
  kill -0 "$bench_pid" 2>/dev/null || break
  s=$(scrape 1)
  w=$(metric "$s" 'rabia_requests_total{frontend="resp",kind="write"}')
  r=$(metric "$s" 'rabia_requests_total{frontend="resp",kind="read"}')
  # under load: some of the load counted, not all of it
  if ((w > w0 && w + r < w0 + r0 + 2 * N)); then
    under=$s
    cp "$IT_DIR/scrape.1" "$IT_DIR/under_load.prom"
  fi
  sleep 0.25
done
wait "$bench_pid" || fail "redis-benchmark exited non-zero: $(tail -c 300 "$IT_DIR/bench.out")"
[ -n "$under" ] || fail "no scrape fell inside the load (it ended before the first one?)"
ok "scraped replica 1 under load: writes counted $(metric "$under" 'rabia_requests_total{frontend="resp",kind="write"}'), reads $(metric "$under" 'rabia_requests_total{frontend="resp",kind="read"}')"
promcheck "under load" "$IT_DIR/under_load.prom"
grep -E '^rabia_(requests_total\{frontend="resp"|request_duration_seconds_(count|sum)\{frontend="resp",kind="write"|slots_decided_total|applied_slot|lag_slots|healthy|pending_batches|wal_fsync_duration_seconds_count)' \
  "$IT_DIR/under_load.prom" | grep -v 'kind="other"' | sed "s/^/[$IT_NAME]     /"

# a few native requests (rabia-cli) at replica 2
s=$(scrape 2)
n0=$(metric "$s" 'rabia_requests_total{frontend="native",kind="write"}')
g0=$(metric "$s" 'rabia_requests_total{frontend="native",kind="read"}')
for k in 1 2 3 4 5; do cli -a "$(native_addr 2)" kv set "native:$k" "v$k" >/dev/null || fail "rabia-cli kv set failed"; done
for k in 1 2 3; do cli -a "$(native_addr 2)" kv get "native:$k" >/dev/null || fail "rabia-cli kv get failed"; done

wait_converged 20 1 2 3
after=$(scrape 1)
cp "$IT_DIR/scrape.1" "$IT_DIR/after.prom"
promcheck "after the load" "$IT_DIR/after.prom"
for i in 2 3; do scrape "$i" >"$IT_DIR/after.$i.prom"; promcheck "replica $i" "$IT_DIR/after.$i.prom"; done

w1=$(metric "$after" 'rabia_requests_total{frontend="resp",kind="write"}')
r1=$(metric "$after" 'rabia_requests_total{frontend="resp",kind="read"}')
((w1 - w0 >= N)) || fail "SET requests counted $((w1 - w0)), redis-benchmark sent $N"
ok "SETs counted: $((w1 - w0)) >= $N"
((r1 - r0 >= N)) || fail "GET requests counted $((r1 - r0)), redis-benchmark sent $N"
ok "GETs counted: $((r1 - r0)) >= $N"
expect_eq "write latency histogram count = write requests" \
  "$(metric "$after" 'rabia_request_duration_seconds_count{frontend="resp",kind="write"}')" "$w1"
expect_eq "read latency histogram count = read requests" \
  "$(metric "$after" 'rabia_request_duration_seconds_count{frontend="resp",kind="read"}')" "$r1"
expect_eq "write latency +Inf bucket = its count" \
  "$(metric "$after" 'rabia_request_duration_seconds_bucket{frontend="resp",kind="write",le="+Inf"}')" "$w1"
s=$(scrape 2)
n1=$(metric "$s" 'rabia_requests_total{frontend="native",kind="write"}')
g1=$(metric "$s" 'rabia_requests_total{frontend="native",kind="read"}')
((g1 - g0 >= 3)) || fail "native GETs counted as reads at replica 2: $((g1 - g0)), rabia-cli sent 3"
ok "native GETs counted as reads at replica 2: $((g1 - g0)) >= 3"
((n1 - n0 >= 5)) || fail "native requests counted at replica 2: $((n1 - n0)), rabia-cli sent 5"
ok "native SETs counted as writes at replica 2: $((n1 - n0)) >= 5"
# with the log (the default durability) the loop sleeps through a log write
# that every send waits for, not once per message (rio_run_once_file_first)
wl=$(redis 1 INFO stats | tr -d '\r' | sed -n 's/^io_loop_waits_log://p')
[[ $wl =~ ^[0-9]+$ ]] && ((wl > 0)) ||
  fail "INFO io_loop_waits_log is '$wl' after $N SETs with a log: the loop never slept on a log write"
ok "INFO io_loop_waits_log: $wl sleeps on a log write at replica 1"
st=$(replica_status 1)
# status reports as applied the slot its state hash is for, which lags
# when hashing the state is expensive (replica.c): INFO has the live one
expect_eq "rabia_applied_slot = INFO slots_applied (replica 1)" "$(metric "$after" rabia_applied_slot)" \
  "$(redis 1 INFO replication | tr -d '\r' | sed -n 's/^slots_applied://p')"
sa=$(field "$st" applied)
(($(metric "$after" rabia_applied_slot) >= sa && sa > 0)) || fail "status applied $sa is above rabia_applied_slot"
ok "status applied (the hashed slot) $sa <= rabia_applied_slot"
expect_eq "rabia_slots_decided_total = status slots_decided (replica 1)" \
  "$(metric "$after" rabia_slots_decided_total)" "$(field "$st" slots_decided)"
dec=$(metric "$after" rabia_slots_decided_total)
((dec > 0)) || fail "no slot decided"
ok "slots decided: $dec, null $(metric "$after" rabia_slots_null_total), fast $(metric "$after" rabia_slots_fast_total)"
# a unanimous exchange decides in phase 0: one kind of fast slot; with the
# load on one replica and nothing lost, most slots are
un=$(metric "$after" rabia_slots_unanimous_total) fa=$(metric "$after" rabia_slots_fast_total)
((un > 0 && un <= fa)) || fail "rabia_slots_unanimous_total $un: not in 1..rabia_slots_fast_total ($fa)"
ok "unanimous slots $un <= fast slots $fa"
expect_eq "slot phase histogram count = slots decided here (decided - adopted)" \
  "$(metric "$after" rabia_slot_phases_count)" "$((dec - $(metric "$after" rabia_slots_adopted_total)))"
# the SETs went into replica 1's batches; the GETs (a phase of their own,
# pipelines of reads only) were answered by the read index, without a slot
breqs=$(metric "$after" rabia_batch_requests_sum)
ridx=$(metric "$after" rabia_reads_indexed_total)
awk -v b="$breqs" -v n=$N 'BEGIN { exit !(b >= n) }' || fail "requests in replica 1's batches: $breqs < $N"
awk -v b="$breqs" -v r="$ridx" -v n=$((2 * N)) 'BEGIN { exit !(b + r >= n) }' ||
  fail "requests in replica 1's batches ($breqs) and reads answered by the read index ($ridx): fewer than $((2 * N))"
((ridx > 0)) || fail "no read answered by the read index (rabia_reads_indexed_total $ridx)"
ok "requests in replica 1's proposed batches: $breqs >= $N; with the $ridx reads by the read index >= $((2 * N))"
fs=$(metric "$after" rabia_wal_fsync_duration_seconds_count)
((fs > 0)) || fail "no log fsync observed"
ok "durable log writes (fsync) observed: $fs"
sz=$(metric "$after" rabia_state_size_bytes)
((sz > N * 50)) || fail "rabia_state_size_bytes $sz is too small for the load"
ok "state size $sz bytes, log $(metric "$after" rabia_log_size_bytes) bytes, RSS $(metric "$after" rabia_process_resident_memory_bytes) bytes"
expect_eq "peer 2 up (replica 1)" "$(metric "$after" 'rabia_peer_up{peer="2"}')" 1
rtt=$(metric "$after" 'rabia_peer_rtt_seconds_count{peer="2"}')
((rtt > 0)) || fail "no peer round-trip time sampled"
ok "peer RTT samples: $rtt"

# ---- scripts by outcome, counted at every replica alike
expect_eq "EVAL ok" "$(redis 1 EVAL 'return 1' 0)" 1
redis 2 EVAL "error('no')" 0 >/dev/null
redis 3 EVAL 'while true do end' 0 >/dev/null
wait_converged 30 1 2 3
for i in 1 2 3; do
  s=$(scrape "$i")
  got="$(metric "$s" 'rabia_scripts_total{outcome="ok"}') $(metric "$s" 'rabia_scripts_total{outcome="error"}') $(metric "$s" 'rabia_scripts_total{outcome="stopped"}')"
  expect_eq "replica $i: rabia_scripts_total ok, error, stopped" "$got" "1 1 1"
  # one build on all three: the level each offers is agreed (kv/README.md "Feature levels")
  got="$(metric "$s" 'rabia_feature_level{kind="agreed"}') $(metric "$s" 'rabia_feature_level{kind="offered"}') $(metric "$s" 'rabia_feature_level{kind="build"}')"
  expect_eq "replica $i: rabia_feature_level agreed, offered, build" "$got" "$BUILD_LEVEL $BUILD_LEVEL $BUILD_LEVEL"
done

# ---- INFO's sections
info=$(redis 1 INFO everything | tr -d '\r')
for s in Server Clients Memory Persistence Stats Replication Commandstats Latencystats Keyspace; do
  grep -qx "# $s" <<<"$info" || fail "INFO everything has no '# $s' section"
done
ok "INFO everything has the sections server, clients, memory, persistence, stats, replication, commandstats, latencystats, keyspace"
cs=$(grep '^cmdstat_set:' <<<"$info" || true)
expect_match "INFO commandstats set" "$cs" '^cmdstat_set:calls=[0-9]+,usec=[0-9]+,usec_per_call=[0-9.]+,rejected_calls=0,failed_calls=0$'
calls=$(sed -n 's/^cmdstat_set:calls=\([0-9]*\),.*/\1/p' <<<"$info")
((calls >= N)) || fail "cmdstat_set calls=$calls < $N"
expect_match "INFO latencystats get" "$(grep '^latency_percentiles_usec_get:' <<<"$info" || true)" \
  '^latency_percentiles_usec_get:p50=[0-9.]+,p99=[0-9.]+,p99.9=[0-9.]+$'
dflt=$(redis 1 INFO | tr -d '\r')
grep -q '^# Commandstats' <<<"$dflt" && fail "INFO without a section shows commandstats (Redis does not)"
expect_match "INFO keyspace" "$(redis 1 INFO keyspace | tr -d '\r')" '^db0:keys=[0-9]+,expires=0'

# ---- garbage on the metrics port: answered 400 (or closed), never a crash
mp=$(mport 1)
python3 - "$mp" <<'EOF' || fail "garbage on the metrics port: see above"
import os, socket, sys
port = int(sys.argv[1])
def ask(payload, what, expect):
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    data = b""
    try:
        s.sendall(payload)
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break  # closed with our unread bytes: fine, as long as it closes
            if not chunk:
                break
            data += chunk
    except (BrokenPipeError, ConnectionResetError):
        data = b""
    finally:
        s.close()
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    if data and not line.startswith("HTTP/1.1 %d" % expect):
        print("FAIL %s: got %r, expected %d" % (what, line, expect)); sys.exit(1)
    print("[metrics]   ok: %s -> %s" % (what, line or "closed"))
import random
random.seed(17)
ask(bytes(random.getrandbits(8) for _ in range(4096)), "4 KiB of random bytes", 400)
ask(b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\n\r\n", "a 1 MiB request line", 400)
ask(b"GET /metrics HTTP/1.1\r\nContent-Length: 99999999999999\r\n\r\n", "a huge Content-Length", 400)
ask(b"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "a chunked body", 400)
ask(b"GET /metrics\r\n\r\n", "a request line without a version", 400)
ask(b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "POST", 405)
ask(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", "an unknown path", 404)
ask(b"GET /health HTTP/1.0\r\n\r\n", "HTTP/1.0 /health", 200)
# a head a few bytes at a time: each piece is checked once (resumed where
# the last check stopped), a CRLFCRLF split across pieces still ends it
def drip(payload, what, expect, step):
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    import time
    for i in range(0, len(payload), step):
        s.sendall(payload[i:i + step])
        time.sleep(0.002)
    data = b""
    while not data.endswith(b"\r\n\r\n") and b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    if not line.startswith("HTTP/1.1 %d" % expect):
        print("FAIL %s: got %r, expected %d" % (what, line, expect)); sys.exit(1)
    print("[metrics]   ok: %s -> %s" % (what, line))
drip(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 600 + b"\r\n\r\n", "/health a byte at a time", 200, 1)
drip(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", "/health three bytes at a time", 200, 3)
drip(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 300 + b"\x01\r\n\r\n", "a bad byte late in a dripped head", 400, 7)
# 300 mutated requests (bytes flipped, inserted, deleted; always ending the
# head): each gets a status line (200/400/404/405) or a close, never a hang
base = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n"
codes = {}
for i in range(300):
    b = bytearray(base)
    for _ in range(random.randint(1, 4)):
        op, at = random.randint(0, 2), random.randrange(len(b))
        if op == 0: b[at] = random.getrandbits(8)
        elif op == 1: b.insert(at, random.choice(b" :/\r\n\tGETHP1.0aZ\x00\xff"))
        elif len(b) > 1: del b[at]
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(bytes(b) + b"\r\n\r\n")
    data = b""
    try:
        while True:
            c = s.recv(65536)
            if not c: break
            data += c
    except ConnectionResetError:
        pass
    except socket.timeout:
        print("FAIL: mutated request %r: no answer within 5 s" % bytes(b)); sys.exit(1)
    s.close()
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    code = line[9:12] if line.startswith("HTTP/1.1 ") else "closed"
    if code not in ("200", "400", "404", "405", "closed"):
        print("FAIL: mutated request %r: %r" % (bytes(b), line)); sys.exit(1)
    codes[code] = codes.get(code, 0) + 1
print("[metrics]   ok: 300 mutated requests answered: %s" % ", ".join("%s x%d" % kv for kv in sorted(codes.items())))
# more connections than the metrics port keeps (64): the rest are closed at once
socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(80)]
import select, time
time.sleep(0.5)
closed = 0
for s in socks:
    r, _, _ = select.select([s], [], [], 0)
    if r:
        try:
            closed += s.recv(1) == b""
        except ConnectionResetError:
            closed += 1
for s in socks:
    s.close()
if closed != 16:
    print("FAIL: 80 idle connections to the metrics port: %d closed at once, expected 16 (64 kept)" % closed); sys.exit(1)
print("[metrics]   ok: 80 idle connections to the metrics port: 64 kept, %d closed at once" % closed)
time.sleep(0.5)
# unterminated: the replica answers 408 after its 10 s idle limit
t = __import__("time").time()
ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\n", "an unterminated request", 408)
print("[metrics]   ok: the unterminated request was answered after %.1f s" % (__import__("time").time() - t))
EOF
all_alive 3
expect_eq "replica 1 serves after the garbage (SET)" "$(redis 1 SET after:garbage 1)" OK
after_garbage=$(scrape 1)
expect_match "replica 1 metrics after the garbage: 400s" "$(metric "$after_garbage" 'rabia_http_requests_total{code="400"}')" '^[5-9]$|^[1-9][0-9]+$'
expect_eq "replica 1 metrics after the garbage: connections refused" "$(metric "$after_garbage" rabia_http_connections_refused_total)" 16

# ---- health transitions
cluster_kill 3
sleep 1
wait_health 1 200
wait_health 2 200
cluster_kill 2
wait_health 1 503 10
h=$(health 1)
expect_match "replica 1 /health reason" "$h" '^503 no majority: connected to 1 of 3 replicas'
expect_eq "rabia_healthy (replica 1, alone)" "$(metric "$(scrape 1)" rabia_healthy)" 0
cluster_restart 2
cluster_restart 3
for i in 1 2 3; do wait_health "$i" 200 20; done
wait_converged 20 1 2 3
expect_eq "rabia_healthy (replica 1, majority back)" "$(metric "$(scrape 1)" rabia_healthy)" 1

# ---- a replica that lost its data dir: /health while it rebuilds, and the
# state transfer counted on both sides (the cluster is past log-retain, 1024
# slots, and the peers' logs no longer start at slot 1 after the backups
# below: only a snapshot brings it back)
sent0=$(($(metric "$(scrape 1)" rabia_state_transfers_sent_total) + $(metric "$(scrape 2)" rabia_state_transfers_sent_total)))
cluster_kill 3
rm -rf "$RABIA_CLUSTER_DIR/r3"
# replicas 1 and 2 would serve it every slot from their logs
# (replica/logcatch.c): a backup each takes a snapshot, which releases the
# log segments it covers (1 MiB segments here), so slot 1 is gone from them
released() { redis "$1" INFO persistence | tr -d '\r' | sed -n 's/^wal_segments_released:\([0-9]*\)$/\1/p'; }
for round in 1 2; do # the second snapshot releases what the first covers (node_keep_batch_seq)
  for i in 1 2; do
    cli -a "$(native_addr "$i")" backup "$IT_DIR/backup$i.snap" >/dev/null || fail "rabia-cli backup at replica $i"
  done
  expect_eq "SET between the backups" "$(redis 1 SET between "$round")" OK
done
(($(released 1) > 0 && $(released 2) > 0)) || fail "the backups' snapshots released no log segment"
ok "log segments released by the backups' snapshots: replica 1 $(released 1), replica 2 $(released 2)"
# replica 3's /health every 10 ms (from before its start) until it says 200:
# each distinct answer and how often it came
python3 - "$(mport 3)" "$IT_DIR/rejoin_poll.ready" >"$IT_DIR/rejoin_health.out" 2>&1 <<'PY' &
import socket, sys, time
port, seen, order, t0 = int(sys.argv[1]), {}, [], time.time()
first = True
while time.time() - t0 < 40:
    if not first:
        open(sys.argv[2], "w").close() # one poll made: replica 3 may start
    first = False
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            c = s.recv(4096)
            if not c: break
            data += c
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        key = head.split(b" ")[1].decode() + " " + body.decode().strip().split(":")[0]
    except OSError:
        key = "000 no answer"
    if key not in seen: order.append(key)
    seen[key] = seen.get(key, 0) + 1
    if key.startswith("200"): break
    time.sleep(0.01)
for k in order: print("%s: %d" % (k, seen[k]))
PY
poll_pid=$!
IT_BG_PIDS+=("$poll_pid")
# its first poll before replica 3 starts: on a loaded machine the poller's
# start took longer than the whole rebuild, and its first answer was 200
for ((k = 0; k < 200; k++)); do
  [ -e "$IT_DIR/rejoin_poll.ready" ] && break
  kill -0 "$poll_pid" 2>/dev/null || break
  sleep 0.05
done
[ -e "$IT_DIR/rejoin_poll.ready" ] || fail "the /health poller made no poll in 10 s: $(cat "$IT_DIR/rejoin_health.out")"
# Replicas 1 and 2 stopped for a second while replica 3 starts: it cannot
# collect its horizon (rule 2) and says 503 recovering all that time. A CI
# run without the pause rebuilt a 2.6 MB state in 8 ms and the 10 ms poll
# saw only 200.
p1=$(replica_pid 1) p2=$(replica_pid 2)
on_exit "kill -CONT $p1 $p2 2>/dev/null || true"
kill -STOP "$p1" "$p2"
RABIA_EXTRA_ARGS="${RABIA_EXTRA_ARGS:-} --rejoin" cluster_restart 3
sleep 1
kill -CONT "$p1" "$p2"
wait "$poll_pid" || fail "polling replica 3's /health: $(cat "$IT_DIR/rejoin_health.out")"
say "replica 3's /health while it rejoined (answer: times seen):"
sed "s/^/[$IT_NAME]     /" "$IT_DIR/rejoin_health.out"
grep -q '^200 ok:' "$IT_DIR/rejoin_health.out" || fail "replica 3 never answered 200 after --rejoin"
grep -qE '^503 (recovering|receiving a snapshot)' "$IT_DIR/rejoin_health.out" ||
  fail "replica 3 never answered 503 recovering / receiving a snapshot while it rebuilt its state"
ok "replica 3 answered 503 while it rebuilt its state, then 200"
wait_converged 30 1 2 3
s3=$(scrape 3)
# Two legitimate ways back: a snapshot, or (690 slots here, under the
# 1024 a peer retains in memory, log-retain) a catch-up of decided slots
# from the peers, during which replica 3
# declines the snapshot offered (replica/snapstream.c rx_begin; seen in 1
# of 3 runs). Either way the metrics must show it.
if (($(metric "$s3" rabia_snapshots_installed_total) >= 1)); then
  (($(metric "$s3" rabia_state_transfers_received_total) >= 1)) || fail "replica 3 installed a snapshot but counted no state transfer received"
  ok "replica 3: state transfers received $(metric "$s3" rabia_state_transfers_received_total), snapshots installed $(metric "$s3" rabia_snapshots_installed_total)"
else
  adopted=$(metric "$s3" rabia_slots_adopted_total)
  ((adopted >= 1)) || fail "replica 3 counted no snapshot installed and no decided slot caught up from its peers"
  (($(metric "$s3" rabia_state_transfers_declined_total) >= 1)) || fail "replica 3 caught up slot by slot but counted no declined transfer"
  ok "replica 3: caught up $adopted decided slots from its peers, declined $(metric "$s3" rabia_state_transfers_declined_total) snapshot transfer(s)"
fi
sent1=$(($(metric "$(scrape 1)" rabia_state_transfers_sent_total) + $(metric "$(scrape 2)" rabia_state_transfers_sent_total)))
((sent1 > sent0)) || fail "replicas 1 and 2 counted no state transfer sent ($sent0 -> $sent1)"
ok "replicas 1 and 2: state transfers sent $sent0 -> $sent1"
