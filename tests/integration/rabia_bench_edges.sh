#!/usr/bin/env bash
# rabia_bench_edges: what rabia-bench reports when things go wrong, against
# real servers. A server with known reply delays (bench_fake_resp.py): the
# percentiles equal the exact ones of the latencies it gave; error replies
# counted (exit 3) and a server that never answers ends on time (exit 1),
# both with JSON and CSV that parse; requests a silent server never
# answered show as unfinished, at their wait (closed loop too). A real redis-server stopped with
# SIGSTOP for 1 s during an open loop: p99 and max show the stall (no
# coordinated omission). A port past 65535 is refused (getaddrinfo would
# wrap it onto another port: 65536 + P measured the server on P); buffers
# larger than the machine's memory are refused with a message. A --label
# that is not UTF-8 still gives valid JSON (U+FFFD); a CSV that starts
# with another header (an older rabia-bench's) is refused before the run,
# unchanged; CSV and JSON agree on unfinished and warmup_requests. A sweep
# killed by PID (SIGTERM) stops the cluster it started before it exits.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init rabia_bench_edges 45
tls_refuse "rabia-bench speaks plaintext only"
need_cmd redis-cli redis-server python3
BENCH=${RABIA_BENCH:-$IT_REPO/build/cmd/rabia-bench}
[ -x "$BENCH" ] || fail "rabia-bench not found at $BENCH: build first (cmake --build build)"
here=$(cd "$(dirname "$0")" && pwd)

# fake MODE PORT: bench_fake_resp.py in the background, once it listens
fake() {
  bg "fake-$1" python3 "$here/bench_fake_resp.py" "$2" "$1"
  local i
  for ((i = 0; i < 50; i++)); do grep -q ready "$IT_DIR/fake-$1.out" 2>/dev/null && return 0; sleep 0.1; done
  fail "bench_fake_resp.py $1 did not listen on $2: $(cat "$IT_DIR/fake-$1.out")"
}
# bench NAME TIMEOUT ARGS...: rabia-bench run with --json/--csv; exit status in RC
bench() {
  local name=$1 limit=$2
  shift 2
  RC=0
  timeout "$limit" "$BENCH" run --quiet --json "$IT_DIR/$name.json" --csv "$IT_DIR/$name.csv" "$@" \
    >"$IT_DIR/$name.out" 2>&1 || RC=$?
  tail -n 1 "$IT_DIR/$name.out" | sed "s/^/[$IT_NAME]     /"
}
# load NAME: NAME.json into J[key] (numbers only), after checking that
# NAME.json and NAME.csv parse and agree (one python3 per run: it is slow to
# start on a busy machine)
declare -A J
load() {
  local kv
  kv=$(python3 - "$IT_DIR/$1.json" "$IT_DIR/$1.csv" <<'PY'
import csv, json, sys
j = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(sys.argv[2])))
assert len(rows) == 1, rows
for k in ("requests", "errors", "p50_us", "p99_us", "max_us", "warmup_requests", "unfinished"):
    assert int(rows[0][k]) == j[k], (k, rows[0][k], j[k])
print(" ".join("%s=%d" % (k, v) for k, v in j.items() if isinstance(v, int)))
PY
) || fail "$1: JSON or CSV not valid"
  J=()
  for kv in $kv; do J[${kv%%=*}]=${kv#*=}; done
}

say "a server with known reply delays: percentiles against the exact ones"
fake delay $((RABIA_RESP_BASE + 70))
bench delay 30 --addr "127.0.0.1:$((RABIA_RESP_BASE + 70))" --connections 1 --pipeline 1 --warmup 0 --requests 10
load delay
expect_eq "exit status" "$RC" 0
expect_eq "requests" "${J[requests]}" 10
# latencies 0,0,0,0,100,200,200,200,300,400 ms: p50 is the 5th smallest (100 ms),
# p90 the 9th (300 ms), p99 the 10th (ceil(0.99 * 10)) and max 400 ms; the
# neighbours of each rank are 100 ms away, so up to 60 ms of overhead (a busy
# machine) still tells a wrong rank
for q in p50_us:100000 p90_us:300000 p99_us:400000 max_us:400000; do
  v=${J[${q%%:*}]}
  ((v >= ${q#*:} && v <= ${q#*:} + 60000)) || fail "${q%%:*} = $v us, exact ${q#*:} us (+ up to 60 ms)"
  ok "${q%%:*} = $v us (exact ${q#*:})"
done

say "error replies are counted; a server that never answers ends on time"
fake err $((RABIA_RESP_BASE + 71))
bench err 20 --addr "127.0.0.1:$((RABIA_RESP_BASE + 71))" --connections 2 --pipeline 2 --warmup 0 --duration 1
load err
expect_eq "every second command an error: exit status" "$RC" 3
req=${J[requests]} errs=${J[errors]}
((req > 0 && errs * 2 >= req - 4 && errs * 2 <= req + 4)) || fail "errors $errs of $req requests, not half"
ok "errors $errs of $req requests"
fake hang $((RABIA_RESP_BASE + 72))
t0=$SECONDS
bench hang 20 --addr "127.0.0.1:$((RABIA_RESP_BASE + 72))" --connections 2 --warmup 0.5 --duration 1
load hang
expect_eq "no reply at all: exit status" "$RC" 1
((SECONDS - t0 <= 5)) || fail "a 1.5 s run against a silent server took $((SECONDS - t0)) s"
expect_eq "requests" "${J[requests]}" 0
# the 2 requests sent at the start (in the warm-up) are reported at their
# wait, 1.5 s, instead of vanishing from the results
expect_eq "unfinished" "${J[unfinished]}" 2
max=${J[max_us]}
((max >= 1400000 && max <= 2500000)) || fail "max $max us: not the 1.5 s the unanswered requests waited"
ok "max $max us"

say "a real redis-server, SIGSTOP for 1 s during an open loop at 1000/s"
rport=$((RABIA_RESP_BASE + 80))
bg redis-server redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$IT_DIR"
rpid=$BG_PID
on_exit "kill -CONT $rpid"
for ((i = 0; i < 50; i++)); do timeout 2 redis-cli -p "$rport" PING >/dev/null 2>&1 && break; sleep 0.1; done
(sleep 1.5 && kill -STOP "$rpid" && sleep 1 && kill -CONT "$rpid") &
stall=$!
bench stall 30 --addr "127.0.0.1:$rport" --connections 2 --pipeline 1 --rate 1000 --warmup 0.5 --duration 3.5
load stall
wait "$stall"
expect_eq "exit status" "$RC" 0
p99=${J[p99_us]} max=${J[max_us]}
# 1000 of the 3500 requests were due during the stall, waiting 0..1 s: the
# 99th percentile is close to 1 s (a generator that waited for the server
# would have measured the few in flight then, and p99 would be microseconds)
((p99 >= 700000 && max >= 900000 && max <= 2500000)) || fail "p99 $p99 us, max $max us: the 1 s stall does not show"
ok "p99 $p99 us, max $max us: the stall shows"

say "closed loop over a healthy server and a silent one: the silent one's requests show"
bench mixed 20 --addr "127.0.0.1:$rport,127.0.0.1:$((RABIA_RESP_BASE + 72))" --connections 2 --warmup 0 --duration 1
load mixed
expect_eq "exit status" "$RC" 0
# (the silent server's request, and the healthy one's last when it was in flight at the end)
un=${J[unfinished]} max=${J[max_us]}
((un >= 1 && un <= 2)) || fail "unfinished $un, not 1 or 2"
((max >= 900000)) || fail "max $max us: the request the silent server never answered (1 s) does not show"
ok "max $max us"

say "a --label that is not UTF-8 still makes valid JSON; a CSV of another header is refused before the run"
# bytes outside UTF-8 become U+FFFD (a JSON parser refused the whole file),
# control characters \u escapes, UTF-8 stays as it is
bench label 20 --addr "127.0.0.1:$rport" --connections 1 --warmup 0 --requests 20 --label $'caf\xc3\xa9 \xff\xfe\xc0\xaf "q" \x01\x7f'
expect_eq "exit status" "$RC" 0
expect_eq "the label, read back from the JSON" \
  "$(python3 -c 'import json,sys; print(ascii(json.load(open(sys.argv[1], encoding="utf-8"))["label"]))' "$IT_DIR/label.json")" \
  "'caf\\xe9 \\ufffd\\ufffd\\ufffd\\ufffd \"q\" \\x01\\x7f'"
# a file an older rabia-bench wrote (no warmup_requests, unfinished columns)
old_header="label,proto,addr,connections,pipeline,threads,rate,keys,key_size,value_size,read_ratio,wait_replicas,warmup_s,requests,errors,seconds,throughput,mean_us,p50_us,p90_us,p99_us,p999_us,max_us"
printf '%s\n%s\n' "$old_header" "old,resp,x,1,1,1,0,1,16,100,0.000,0,0.0,1,0,1.000,1.0,1.0,1,1,1,1,1" >"$IT_DIR/old.csv"
cp "$IT_DIR/old.csv" "$IT_DIR/old.csv.before"
rc=0
t0=$SECONDS
timeout 20 "$BENCH" run --quiet --addr "127.0.0.1:$rport" --connections 1 --warmup 0 --duration 3 --csv "$IT_DIR/old.csv" \
  >"$IT_DIR/oldcsv.out" 2>&1 || rc=$?
expect_eq "appending to an older rabia-bench's CSV: exit status" "$rc" 1
expect_match "its message" "$(cat "$IT_DIR/oldcsv.out")" "old\.csv starts with another header than a run's rows have: .*give a new file"
((SECONDS - t0 < 3)) || fail "refused only after the 3 s run ($((SECONDS - t0)) s)"
cmp -s "$IT_DIR/old.csv" "$IT_DIR/old.csv.before" || fail "the refused CSV was changed"
ok "refused before the run; the file unchanged"

say "bad arguments: a port past 65535, buffers past the machine's memory"
rc=0
timeout 10 "$BENCH" run --quiet --addr "127.0.0.1:$((rport + 65536))" --duration 0.5 >"$IT_DIR/port.out" 2>&1 || rc=$?
expect_eq "--addr 127.0.0.1:$((rport + 65536)): exit status" "$rc" 2
expect_match "its message" "$(cat "$IT_DIR/port.out")" 'each port 1\.\.65535'
rc=0
# (ulimit -v: without the check, the buffers' allocation must fail, not fill the machine's memory)
(ulimit -v 8000000 && timeout 20 "$BENCH" run --quiet --addr "127.0.0.1:$rport" --connections 10000 --pipeline 1024 \
  --value-size 1048576 --duration 1) >"$IT_DIR/huge.out" 2>&1 || rc=$?
expect_eq "10000 connections x pipeline 1024 x 1 MiB values: exit status" "$rc" 1
expect_match "its message" "$(cat "$IT_DIR/huge.out")" "more than this machine's [0-9]+ MiB of memory"

say "a sweep killed by PID (SIGTERM) stops the cluster it started"
bg sweep "$BENCH" sweep --quiet --connections 4 --duration 60 --warmup 0 --batch-max-reqs 16,64 \
  --batch-timeout-us 200 --cluster-dir "$RABIA_CLUSTER_DIR" --out "$IT_DIR/sweep" --cluster-script "$IT_CLUSTER_SH"
spid=$BG_PID
for ((i = 0; i < 300; i++)); do grep -q '^started 3 replicas' "$IT_DIR/sweep.out" && break; sleep 0.1; done
grep -q '^started 3 replicas' "$IT_DIR/sweep.out" || fail "the sweep's cluster did not start: $(tail -n 5 "$IT_DIR/sweep.out")"
sleep 1
pids=$(cat "$RABIA_CLUSTER_DIR"/r*.pid | tr '\n' ' ')
remember_pids
kill -TERM "$spid"
bg_wait "$spid" 20
expect_eq "the sweep's exit status (killed by SIGTERM)" "$BG_RC" 143
for p in $pids; do pid_runs "$p" "$RABIAD" && fail "replica pid $p still runs after the sweep was killed"; done
ok "replicas $pids stopped"
expect_match "its message" "$(cat "$IT_DIR/sweep.out")" 'sweep interrupted by signal 15 at setting 1/2: the cluster in .* is stopped'

say "a sweep whose only setting cannot start (rabiad refuses window 1048576)"
rc=0
RABIA_START_TIMEOUT=1 timeout 40 "$BENCH" sweep --quiet --connections 2 --duration 1 --warmup 0 --batch-max-reqs 16 \
  --batch-timeout-us 200 --window 1048576 --cluster-dir "$RABIA_CLUSTER_DIR" --out "$IT_DIR/nosweep" \
  --cluster-script "$IT_CLUSTER_SH" >"$IT_DIR/nosweep.out" 2>&1 || rc=$?
expect_eq "exit status" "$rc" 1
expect_match "its message" "$(cat "$IT_DIR/nosweep.out")" "no setting was measured: no plots"
expect_match "and its best line" "$(grep '^best:' "$IT_DIR/nosweep.out")" '^best: none'
grep -q 'is gnuplot-nox installed' "$IT_DIR/nosweep.out" && fail "gnuplot was run on no data and its failure blamed on its installation"
compgen -G "$IT_DIR/nosweep-*" >/dev/null && fail "plots of no data: $(echo "$IT_DIR"/nosweep-*)"
for f in "$RABIA_CLUSTER_DIR"/r*.pid; do [ -f "$f" ] && pid_runs "$(cat "$f")" "$RABIAD" && fail "replica pid $(cat "$f") runs after the sweep"; done
ok "no plots, no replica left"

say "bench/compare.sh: a typo in SYSTEMS ends it before anything starts"
need_cmd taskset
rc=0 t0=$SECONDS
SYSTEMS="redis-nopersist etdc" BENCH_DIR=$IT_DIR COMPARE_PORT_BASE=$((RABIA_RESP_BASE - 200)) SERVER_CPUS=0 \
  CLIENT_CPUS=0 RABIA_BENCH=$BENCH timeout 30 bash "$IT_REPO/bench/compare.sh" 3 >"$IT_DIR/cmp-typo.out" 2>&1 || rc=$?
expect_eq "exit status" "$rc" 1
expect_match "its message" "$(cat "$IT_DIR/cmp-typo.out")" "unknown system 'etdc' in SYSTEMS"
grep -q 'redis-nopersist .*pid' "$IT_DIR/cmp-typo.out" && fail "redis-nopersist was started and measured before the typo was seen"
((SECONDS - t0 <= 5)) || fail "compare.sh took $((SECONDS - t0)) s to refuse the typo"
ok "refused in $((SECONDS - t0)) s, nothing started"

say "bench/compare.sh killed (SIGTERM) while its rabia cluster starts: the cluster is stopped"
mkdir -p "$IT_DIR/cmp"
# rabia-memory's ports: COMPARE_PORT_BASE + 201..203, 211..213, 221..223 = this test's
bg compare env SYSTEMS=rabia-memory PIPELINES=1 READ_RATIOS=0 BENCH_DIR="$IT_DIR/cmp" \
  COMPARE_PORT_BASE=$((RABIA_RESP_BASE - 200)) SERVER_CPUS=0 CLIENT_CPUS=0 RABIA_BENCH="$BENCH" \
  bash "$IT_REPO/bench/compare.sh" 3
cpid=$BG_PID
for ((i = 0; i < 100; i++)); do compgen -G "$IT_DIR/cmp/rabia-compare.*/rabia-memory/r1.pid" >/dev/null && break; sleep 0.1; done
compgen -G "$IT_DIR/cmp/rabia-compare.*/rabia-memory/r1.pid" >/dev/null || fail "compare.sh did not start its cluster: $(tail -n 3 "$IT_DIR/compare.out")"
kill -TERM "$cpid"
bg_wait "$cpid" 40
expect_eq "compare.sh's exit status" "$BG_RC" 130
sleep 0.5
# (by the data dir in their command lines: the pid files went with the dir)
left=$(ps -eo pid=,comm=,args= | awk -v d="$IT_DIR/cmp/rabia-compare" '$2 == "rabiad" && index($0, d) { print $1 }' | tr '\n' ' ')
# shellcheck disable=SC2206
IT_DAEMON_PIDS+=($left) # a failure below still leaves nothing running
[ -z "$left" ] || fail "rabiad $left still run after compare.sh was killed during their start"
ok "no rabiad of compare.sh left"
