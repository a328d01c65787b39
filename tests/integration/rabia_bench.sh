#!/usr/bin/env bash
# rabia_bench: cmd/rabia-bench against real servers. A 3-replica kv cluster:
# RESP closed loop (8 connections x pipeline 4, 3 s) and native, each read
# back from its JSON and CSV (requests > 0, errors == 0, p50 <= p99 <= max),
# then every replica holds the same non-zero DBSIZE; an open loop at 200/s
# must measure 200/s within 10%. A real redis-server (port base+80 of this
# slot): closed loop with reads, its DBSIZE > 0. A real etcd (base+81/82,
# skipped when not installed): pipelined puts and ranges, keys written. A
# closed port: exit 1.
# A sweep of 2 batch-max-reqs x 1 timeout (2 s each) over this test's
# cluster directory: a CSV with 2 rows, and the PNG/SVG plots when gnuplot
# is installed (skipped with a message otherwise).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init rabia_bench 26
need_cmd redis-cli redis-server python3
BENCH=${RABIA_BENCH:-$IT_REPO/build/cmd/rabia-bench}
[ -x "$BENCH" ] || fail "rabia-bench not found at $BENCH: build first (cmake --build build)"
cluster_start 3 kv

resp_addrs="127.0.0.1:$(resp_port 1),127.0.0.1:$(resp_port 2),127.0.0.1:$(resp_port 3)"

# check_result NAME JSON CSV: the JSON and the CSV's last row agree and are sane
check_result() {
  local name=$1 json=$2 csv=$3 out
  out=$(python3 - "$json" "$csv" <<'PY'
import csv, json, sys
j = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(sys.argv[2])))
c = rows[-1]
errs = []
if j["requests"] <= 0: errs.append("requests %d <= 0" % j["requests"])
if j["errors"] != 0: errs.append("errors %d != 0" % j["errors"])
if not (0 < j["p50_us"] <= j["p99_us"] <= j["max_us"]):
    errs.append("not 0 < p50 %d <= p99 %d <= max %d" % (j["p50_us"], j["p99_us"], j["max_us"]))
for k in ("requests", "errors", "p50_us", "p99_us", "max_us"):
    if int(c[k]) != j[k]: errs.append("csv %s %s != json %s" % (k, c[k], j[k]))
if abs(j["throughput"] - j["requests"] / j["seconds"]) > 1: errs.append("throughput != requests/seconds")
print("; ".join(errs) if errs else "requests=%d throughput=%.0f p50=%d p99=%d max=%d us" %
      (j["requests"], j["throughput"], j["p50_us"], j["p99_us"], j["max_us"]))
sys.exit(1 if errs else 0)
PY
) || fail "$name: $out"
  ok "$name: $out"
}

# run_bench NAME ARGS...: rabia-bench run, bounded in time, with --json/--csv
run_bench() {
  local name=$1 rc=0
  shift
  timeout 30 "$BENCH" run --quiet --json "$IT_DIR/$name.json" --csv "$IT_DIR/bench.csv" --label "$name" "$@" \
    >"$IT_DIR/$name.out" 2>&1 || rc=$?
  tail -n 1 "$IT_DIR/$name.out" | sed "s/^/[$IT_NAME]     /"
  [ "$rc" = 0 ] || fail "rabia-bench $name exited $rc: $(tail -n 3 "$IT_DIR/$name.out" | tr '\n' '|')"
  expect_match "$name: stdout's last line" "$(tail -n 1 "$IT_DIR/$name.out")" \
    '^requests=[0-9]+ errors=0 seconds=[0-9.]+ throughput=[0-9.]+ p50_us=[0-9]+ p90_us=[0-9]+ p99_us=[0-9]+ p999_us=[0-9]+ max_us=[0-9]+$'
  check_result "$name" "$IT_DIR/$name.json" "$IT_DIR/bench.csv"
}

say "RESP closed loop, 8 connections x pipeline 4, 3 s, over the 3 replicas"
run_bench resp --addr "$resp_addrs" --connections 8 --pipeline 4 --duration 3 --warmup 0.5 --keys 1000
say "native closed loop, 8 connections x pipeline 4, 3 s, 20% reads"
run_bench native --proto native --addr "$(all_addrs 3)" --connections 8 --pipeline 4 --duration 3 --warmup 0.5 \
  --keys 1000 --read-ratio 0.2
expect_eq "CSV rows (header + resp + native)" "$(wc -l <"$IT_DIR/bench.csv")" 3
wait_converged 15 1 2 3
d1=$(redis 1 DBSIZE)
((d1 > 0 && d1 <= 1000)) || fail "replica 1: DBSIZE $d1 after the bench wrote keys below 1000"
ok "replica 1: DBSIZE $d1 (0 < d <= 1000 keys)"
for i in 2 3; do expect_eq "replica $i: DBSIZE" "$(redis "$i" DBSIZE)" "$d1"; done
k=$(redis 2 --scan --pattern 'rb:*' | awk 'NR == 1')
expect_match "a key the bench wrote" "$k" '^rb:[0-9]{3}x+$'
expect_eq "its value on replica 3 (--value-size 100)" "$(redis 3 GET "$k" | wc -c)" 101

say "open loop at 200/s for 3 s: latency from the intended send times"
run_bench open --addr "$resp_addrs" --connections 8 --pipeline 4 --rate 200 --duration 3 --warmup 0.5
tp=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["throughput"])' "$IT_DIR/open.json")
awk -v t="$tp" 'BEGIN { exit !(t >= 180 && t <= 220) }' || fail "open loop at 200/s measured $tp/s (not within 10%)"
ok "open loop at 200/s measured $tp/s"

say "against a real redis-server"
rport=$((RABIA_RESP_BASE + 80))
bg redis-server redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$IT_DIR"
for ((i = 0; i < 50; i++)); do timeout 2 redis-cli -p "$rport" PING >/dev/null 2>&1 && break; sleep 0.1; done
run_bench redis --addr "127.0.0.1:$rport" --connections 8 --pipeline 8 --duration 2 --warmup 0.5 --read-ratio 0.5 \
  --threads 2
dr=$(timeout 5 redis-cli -p "$rport" DBSIZE)
((dr > 0)) || fail "redis-server DBSIZE $dr after the bench"
ok "redis-server DBSIZE $dr"

if command -v etcd >/dev/null 2>&1; then
  say "against a real etcd (HTTP/JSON gateway, pipelined)"
  eport=$((RABIA_RESP_BASE + 81))
  bg etcd-server etcd --name bench --data-dir "$IT_DIR/etcd" --listen-client-urls "http://127.0.0.1:$eport" \
    --advertise-client-urls "http://127.0.0.1:$eport" --listen-peer-urls "http://127.0.0.1:$((eport + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((eport + 1))" \
    --initial-cluster "bench=http://127.0.0.1:$((eport + 1))"
  for ((i = 0; i < 100; i++)); do
    curl -sf -X POST "http://127.0.0.1:$eport/v3/kv/range" -d '{"key":"YQ=="}' >/dev/null 2>&1 && break
    sleep 0.1
  done
  run_bench etcd --proto etcd --addr "127.0.0.1:$eport" --connections 4 --pipeline 4 --duration 2 --warmup 0.5 \
    --read-ratio 0.5 --keys 1000
  # every key the bench wrote is under rb: (base64 "cmI6"; range_end "rb;" = "cmI7")
  cnt=$(curl -sf -X POST "http://127.0.0.1:$eport/v3/kv/range" -d '{"key":"cmI6","range_end":"cmI7","count_only":true}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("count", 0))')
  ((cnt > 0 && cnt <= 1000)) || fail "etcd holds $cnt keys under rb: after the bench"
  ok "etcd holds $cnt keys under rb:"
else
  say "etcd is not installed: the etcd part is skipped (deploy/install-deps.sh installs etcd-server)"
fi

rc=0
timeout 10 "$BENCH" run --quiet --addr "127.0.0.1:$((RABIA_RESP_BASE + 79))" --duration 1 >"$IT_DIR/closed.out" 2>&1 || rc=$?
expect_eq "rabia-bench against a closed port: exit status" "$rc" 1
expect_match "its message" "$(cat "$IT_DIR/closed.out")" 'cannot connect to 127.0.0.1:[0-9]+: Connection refused'

say "sweep: batch-max-reqs 1,64 x batch-timeout-us 200, 2 s each, restarting the cluster"
cluster_stop
bg sweep "$BENCH" sweep --quiet --connections 8 --pipeline 4 --duration 2 --warmup 0.5 --keys 1000 \
  --batch-max-reqs 1,64 --batch-timeout-us 200 --cluster-dir "$RABIA_CLUSTER_DIR" --out "$IT_DIR/sweep" \
  --p99-bound-us 10000000 --cluster-script "$IT_CLUSTER_SH"
bg_wait "$BG_PID" 50
cat "$IT_DIR/sweep.out" | grep -E '^(requests=|best:)' | sed "s/^/[$IT_NAME]     /"
[ "$BG_RC" = 0 ] || fail "sweep exited $BG_RC"
expect_eq "sweep CSV rows (header + 2)" "$(wc -l <"$IT_DIR/sweep.csv")" 3
expect_eq "sweep CSV: batch_max_reqs column" "$(cut -d, -f1 "$IT_DIR/sweep.csv" | tr '\n' ' ')" "batch_max_reqs 1 64 "
python3 - "$IT_DIR/sweep.csv" <<'PY' || fail "sweep rows not sane"
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    assert int(r["requests"]) > 0 and int(r["errors"]) == 0, r
    assert int(r["p50_us"]) <= int(r["p99_us"]) <= int(r["max_us"]), r
PY
ok "sweep rows: requests > 0, errors 0, p50 <= p99 <= max"
expect_match "sweep: best setting line" "$(grep '^best:' "$IT_DIR/sweep.out")" '^best: batch_max_reqs=(1|64) batch_timeout_us=200 '
if command -v gnuplot >/dev/null 2>&1; then
  for f in sweep-throughput.png sweep-throughput.svg sweep-p99.png sweep-p99.svg; do
    [ -s "$IT_DIR/$f" ] || fail "sweep: $f missing or empty"
  done
  expect_match "sweep-throughput.png is a PNG" "$(head -c 8 "$IT_DIR/sweep-throughput.png" | od -An -c | tr -d ' ')" 'PNG'
  expect_match "sweep-p99.svg is an SVG" "$(head -c 400 "$IT_DIR/sweep-p99.svg")" '<svg'
else
  say "gnuplot is not installed: the plots are not checked (deploy/install-deps.sh installs gnuplot-nox)"
fi
