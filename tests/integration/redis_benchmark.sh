#!/usr/bin/env bash
# redis_benchmark: the stock redis-benchmark against the RESP front end of a
# 3-replica kv cluster: 20000 SETs and GETs with 20 clients pipelining 16
# commands each (replica 1), then 5000 each without pipelining (replica 2).
# Both must exit 0 and report a non-zero rate; the value they wrote is read
# back at replica 3, and all replicas reach the same state hash.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init redis_benchmark 7
need_cmd redis-cli redis-benchmark
cluster_start 3 kv

# bench I ARGS...: redis-benchmark -q against replica I; prints "SET GET" rates
bench() {
  local i=$1 rc=0 out
  shift
  out=$(timeout 90 redis-benchmark -p "$(resp_port "$i")" -q "$@" 2>&1) || rc=$?
  # -q rewrites a progress line with \r; the last piece of each line is the result
  out=$(tr '\r' '\n' <<<"$out" | grep -E '^ *(SET|GET): [0-9.]+ requests per second' || true)
  printf '%s\n' "$out" | sed "s/^ */[$IT_NAME]     /"
  [ "$rc" = 0 ] || fail "redis-benchmark -p $(resp_port "$i") $* exited $rc"
  local set get
  set=$(sed -n 's/^ *SET: \([0-9.]*\) requests per second.*/\1/p' <<<"$out" | tail -n 1)
  get=$(sed -n 's/^ *GET: \([0-9.]*\) requests per second.*/\1/p' <<<"$out" | tail -n 1)
  [ -n "$set" ] && [ -n "$get" ] || fail "redis-benchmark $*: no SET/GET rate in its output"
  awk -v s="$set" -v g="$get" 'BEGIN { exit !(s > 0 && g > 0) }' || fail "redis-benchmark $*: zero rate (SET $set, GET $get)"
  ok "redis-benchmark $* (replica $i): exit 0, SET $set rps, GET $get rps"
}

say "pipelined: -t set,get -n 20000 -c 20 -P 16 against replica 1"
bench 1 -t set,get -n 20000 -c 20 -P 16
wait_converged 10 1 2 3
a1=$CONVERGED_APPLIED
say "not pipelined: -t set,get -n 5000 -c 20 -P 1 against replica 2"
bench 2 -t set,get -n 5000 -c 20 -P 1
wait_converged 10 1 2 3
((CONVERGED_APPLIED > a1)) || fail "applied did not advance during the second run ($a1 -> $CONVERGED_APPLIED)"
# without -r every SET writes the one key "key:__rand_int__", 3 bytes (-d 3)
v=$(redis 1 GET key:__rand_int__)
expect_eq "replica 1: length of GET key:__rand_int__ (written by redis-benchmark, -d 3)" "${#v}" 3
for i in 2 3; do expect_eq "replica $i: GET key:__rand_int__" "$(redis "$i" GET key:__rand_int__)" "$v"; done
expect_eq "replica 3: DBSIZE" "$(redis 3 DBSIZE)" 1
say "slots used: $a1 for 40000 pipelined commands, $((CONVERGED_APPLIED - a1)) for 10000 unpipelined"
