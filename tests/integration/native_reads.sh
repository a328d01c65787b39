#!/usr/bin/env bash
# native_reads: reads of native clients (client.h) answered by the read
# index (replica/clients.c native_request), in order with the writes of
# their connection. tests/integration/native_reads.c pipelines rounds of
# GET; SET; GET; GET (and reads-only rounds) through the client library at
# replica 1 while rabia-bench writes through replicas 2 and 3 (so that a
# read's index often names a slot still in progress, where a write behind
# the read would land if it were not held: the held-back write is what
# this checks; without the hold the same run answered a read before the
# write with the write's value within 200 rounds). Then:
#   - kv: every answer in order, the first read of each round and every
#     read of a reads-only round answered by the index (INFO reads_indexed),
#     writes held behind reads (requests_held_behind_reads > 0); a raw
#     connection sending a GET and 100 SETs at once gets all 101 answers,
#     one sending 300 is closed with a warning naming the bound (128
#     requests held at most) and the replica serves on;
#   - kv with read-index no: in order, no read by the index;
#   - counter and bank (the example state machines' query): reads by the
#     index seen on /metrics, values right (rabia-cli against every replica).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init native_reads 40
need_cmd redis-cli curl
tls_refuse "native_reads.c speaks plain TCP (the client library without TLS settings)"
NR=${NATIVE_READS:-$IT_REPO/build/tests/integration/native_reads}
BENCH=${RABIA_BENCH:-$IT_REPO/build/cmd/rabia-bench}
[ -x "$NR" ] || fail "native_reads not found at $NR: build first (cmake --build build)"
[ -x "$BENCH" ] || fail "rabia-bench not found at $BENCH: build first"
export RABIA_METRICS_BASE=$((RABIA_RESP_BASE + 60))
ROUNDS=600

info() { redis "$1" INFO sessions | tr -d '\r' | sed -n "s/^$2://p"; }
metric() { curl -sS --max-time 5 "http://127.0.0.1:$((RABIA_METRICS_BASE + $1))/metrics" | sed -n "s/^$2 //p"; }

# background writes through replicas 2 and 3 for $1 s (bounded; stopped by PID at exit too)
load() {
  "$BENCH" run --proto native --addr "$(native_addr 2),$(native_addr 3)" --connections 8 --duration "$1" --warmup 0 \
    --quiet >"$IT_DIR/load.out" 2>&1 &
  IT_BG_PIDS+=($!)
  LOAD_PID=$!
}

# requests of ROUNDS rounds: three in every fourth round, four in the others
requests_of() { echo $(($1 / 4 * 3 + ($1 - $1 / 4) * 4)); }
# reads the index answers at least: the first read of a round with a write, all three of a reads-only round
indexed_of() { echo $((($1 - $1 / 4) + $1 / 4 * 3)); }

# run_rounds SM ROUNDS: native_reads at replica 1, its output checked
run_rounds() {
  local out rc=0
  out=$(timeout 60 "$NR" "$(native_addr 1)" "$1" "$2" 2>&1) || rc=$?
  [ "$rc" = 0 ] || fail "native_reads $1 $2 exited $rc: $out"
  expect_eq "native_reads $1 $2" "$out" "native_reads: $2 rounds, $(requests_of "$2") requests, 0 out of order"
}

say "kv, read-index yes (the default), writes through replicas 2 and 3 meanwhile"
cluster_start 3 kv "$IT_DIR/kv"
wait_level 3
before=$(info 1 reads_indexed)
load 8
run_rounds kv "$ROUNDS"
after=$(info 1 reads_indexed)
held=$(info 1 requests_held_behind_reads)
want=$(indexed_of "$ROUNDS")
# a read whose round did not complete within 1 s goes through the log (reads_logged): allow a few
[ $((after - before)) -ge $((want * 9 / 10)) ] ||
  fail "replica 1 answered $((after - before)) reads by the index, expected about $want (reads_logged $(info 1 reads_logged))"
ok "replica 1 answered $((after - before)) of the rounds' reads by the index (at least $want expected but for a slow round)"
[ "$held" -gt 0 ] || fail "no write was held behind a read (requests_held_behind_reads $held)"
ok "writes held behind reads of their connection: $held"
wait "$LOAD_PID" || fail "the background load failed: $(tail -n 3 "$IT_DIR/load.out")"
ok "background load: $(tail -n 1 "$IT_DIR/load.out" | cut -d' ' -f1-3)"
say "a client far past its window behind a waiting read: bounded"
out=$(timeout 20 "$NR" "$(native_addr 1)" flood 100)
expect_eq "a GET and 100 SETs in one write (held behind the GET, answered)" "$out" "flood: 101 requests, 101 replies, open"
out=$(timeout 20 "$NR" "$(native_addr 1)" flood 300)
expect_eq "a GET and 300 SETs in one write (over 128 held: the connection is closed)" "$out" "flood: 301 requests, 0 replies, closed"
expect_match "replica 1 says why" "$(cat "$RABIA_CLUSTER_DIR/r1.log")" "native client .* sent over 128 requests \(or 64 MiB\) while its reads waited for their read index: closing it"
expect_eq "replica 1 still serves" "$(redis 1 PING)" PONG
wait_converged 20 1 2 3
cluster_stop

say "kv, read-index no"
RABIA_EXTRA_ARGS="--read-index no" cluster_start 3 kv "$IT_DIR/kv-noindex"
wait_level 3
load 5
run_rounds kv 200
expect_eq "reads by the index with read-index no" "$(info 1 reads_indexed)" 0
wait "$LOAD_PID" || fail "the background load failed: $(tail -n 3 "$IT_DIR/load.out")"
cluster_stop

say "counter: GET by the index"
cluster_start 3 counter "$IT_DIR/counter"
cli -a "$(native_addr 1)" counter set 100 >/dev/null
run_rounds counter 200
c1=$(metric 1 rabia_reads_indexed_total)
[ "${c1%.*}" -ge $(($(indexed_of 200) * 9 / 10)) ] || fail "counter: replica 1 answered ${c1} reads by the index, expected about $(indexed_of 200)"
ok "counter: replica 1 answered ${c1} reads by the index"
for i in 1 2 3; do expect_eq "counter get at replica $i" "$(cli -a "$(native_addr "$i")" counter get)" 250; done
cluster_stop

say "bank: BALANCE and ALL by the index"
cluster_start 3 bank "$IT_DIR/bank"
cli -a "$(native_addr 1)" bank create alice 100 >/dev/null
cli -a "$(native_addr 2)" bank create bob 5 >/dev/null
cli -a "$(native_addr 3)" bank transfer alice bob 30 >/dev/null
for i in 1 2 3; do
  expect_eq "bank balance alice at replica $i" "$(cli -a "$(native_addr "$i")" bank balance alice)" 70
  expect_eq "bank balance bob at replica $i" "$(cli -a "$(native_addr "$i")" bank balance bob)" 35
done
b=0
for i in 1 2 3; do v=$(metric "$i" rabia_reads_indexed_total); b=$((b + ${v%.*})); done
[ "$b" -ge 6 ] || fail "bank: $b reads by the index over the three replicas, expected 6"
ok "bank: $b reads by the index over the three replicas"
cluster_stop
