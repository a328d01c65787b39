#!/usr/bin/env bash
# kv3: a 3-replica kv cluster through redis-cli and rabia-cli: a write at one
# replica is read at the others, INCRs through different replicas are
# consecutive, MULTI/EXEC, SET options, multi-key commands, Redis's error
# texts, pipelines, and rabia-cli agreeing with redis-cli. Ends with equal
# applied slots and state hashes.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init kv3 1
need_cmd redis-cli
cluster_start 3 kv

say "writes at one replica, reads at the others"
expect_eq "replica 1: SET greeting hello" "$(redis 1 SET greeting hello)" OK
expect_eq "replica 2: GET greeting" "$(redis 2 GET greeting)" hello
expect_eq "replica 3: GET greeting" "$(redis 3 GET greeting)" hello

say "INCR through replicas 1,2,3,1,2,3,... gives consecutive values"
got=""
want=""
for ((k = 1; k <= 12; k++)); do
  got+="$(redis $(((k - 1) % 3 + 1)) INCR ctr) "
  want+="$k "
done
expect_eq "12 INCRs round-robin over the replicas" "$got" "$want"
expect_eq "replica 3: INCRBY ctr 100" "$(redis 3 INCRBY ctr 100)" 112
expect_eq "replica 1: DECR ctr" "$(redis 1 DECR ctr)" 111

say "MULTI/EXEC on replica 1, visible on replica 2"
out=$(printf 'MULTI\nSET tx:a 10\nINCR tx:a\nSET tx:b x\nEXEC\n' | timeout 20 redis-cli -p "$(resp_port 1)")
expect_eq "replica 1: MULTI; SET tx:a 10; INCR tx:a; SET tx:b x; EXEC" "$(tr '\n' ' ' <<<"$out")" "OK QUEUED QUEUED QUEUED OK 11 OK "
expect_eq "replica 2: MGET tx:a tx:b" "$(redis 2 MGET tx:a tx:b | tr '\n' ' ')" "11 x "
out=$(printf 'MULTI\nSET tx:c 1\nDISCARD\nGET tx:c\n' | timeout 20 redis-cli --no-raw -p "$(resp_port 3)")
expect_eq "replica 3: MULTI; SET tx:c 1; DISCARD; GET tx:c" "$(tr '\n' ' ' <<<"$out")" "OK QUEUED OK (nil) "

say "SET NX / XX / GET"
expect_eq "replica 1: SET nx:k v1 NX (new key)" "$(redisn 1 SET nx:k v1 NX)" OK
expect_eq "replica 2: SET nx:k v2 NX (exists)" "$(redisn 2 SET nx:k v2 NX)" "(nil)"
expect_eq "replica 3: SET nx:missing v XX" "$(redisn 3 SET nx:missing v XX)" "(nil)"
expect_eq "replica 3: SET nx:k v3 XX" "$(redisn 3 SET nx:k v3 XX)" OK
expect_eq "replica 1: SET nx:k v4 GET (old value)" "$(redisn 1 SET nx:k v4 GET)" '"v3"'
expect_eq "replica 2: GET nx:k" "$(redisn 2 GET nx:k)" '"v4"'
expect_eq "replica 3: EXISTS nx:missing" "$(redisn 3 EXISTS nx:missing)" "(integer) 0"

say "MSET / MGET / EXISTS / DEL / KEYS / DBSIZE"
expect_eq "replica 2: MSET m:1 a m:2 b m:3 c" "$(redis 2 MSET m:1 a m:2 b m:3 c)" OK
expect_eq "replica 3: MGET m:1 m:2 m:3 m:none" "$(redisn 3 MGET m:1 m:2 m:3 m:none | tr '\n' ' ')" '1) "a" 2) "b" 3) "c" 4) (nil) '
expect_eq "replica 1: EXISTS m:1 m:2 m:none" "$(redis 1 EXISTS m:1 m:2 m:none)" 2
expect_eq "replica 1: DEL m:1 m:none" "$(redis 1 DEL m:1 m:none)" 1
expect_eq "replica 2: EXISTS m:1" "$(redis 2 EXISTS m:1)" 0
expect_eq "replica 3: KEYS m:* (sorted)" "$(redis 3 KEYS 'm:*' | sort | tr '\n' ' ')" "m:2 m:3 "
# greeting ctr tx:a tx:b nx:k m:2 m:3
for i in 1 2 3; do expect_eq "replica $i: DBSIZE" "$(redis "$i" DBSIZE)" 7; done

say "errors are Redis's"
expect_match "replica 1: unknown command" "$(redis 1 FOOBAR a b)" "^ERR unknown command 'FOOBAR', with args beginning with: 'a' 'b'"
expect_eq "replica 2: GET (no key)" "$(redis 2 GET)" "ERR wrong number of arguments for 'get' command"
expect_eq "replica 3: SET k (no value)" "$(redis 3 SET onlykey)" "ERR wrong number of arguments for 'set' command"
expect_match "replica 1: INCR on a non-integer" "$(redis 1 INCR greeting)" "^ERR value is not an integer or out of range"
expect_eq "replica 1: PING" "$(redis 1 PING)" PONG

say "pipelines"
out=$(for ((k = 1; k <= 100; k++)); do printf 'SET pipe:%d v%d\r\n' "$k" "$k"; done | timeout 30 redis-cli -p "$(resp_port 2)" --pipe 2>&1)
expect_match "replica 2: 100 SETs through redis-cli --pipe" "$out" "errors: 0, replies: 100"
out=$(for ((k = 1; k <= 100; k++)); do printf 'INCR pipe:ctr\r\n'; done | timeout 30 redis-cli -p "$(resp_port 3)" --pipe 2>&1)
expect_match "replica 3: 100 INCRs through redis-cli --pipe" "$out" "errors: 0, replies: 100"
expect_eq "replica 1: GET pipe:ctr (each pipelined INCR applied once)" "$(redis 1 GET pipe:ctr)" 100
expect_eq "replica 1: MGET pipe:1 pipe:50 pipe:100" "$(redis 1 MGET pipe:1 pipe:50 pipe:100 | tr '\n' ' ')" "v1 v50 v100 "
out=$(for ((k = 1; k <= 50; k++)); do printf 'INCR seq:ctr\n'; done | timeout 30 redis-cli -p "$(resp_port 1)" | tr '\n' ' ')
expect_eq "replica 1: 50 INCRs on one connection (replies in order)" "$out" "$(seq -s ' ' 1 50) "
for i in 1 2 3; do expect_eq "replica $i: DBSIZE after the pipelines" "$(redis "$i" DBSIZE)" 109; done

say "rabia-cli agrees with redis-cli"
A=$(all_addrs 3)
expect_eq "rabia-cli kv set cli:k hello (via replica 3)" "$(cli -a "$(native_addr 3)" kv set cli:k hello)" OK
expect_eq "redis-cli replica 1: GET cli:k" "$(redis 1 GET cli:k)" hello
expect_eq "redis-cli replica 2: SET red:k world" "$(redis 2 SET red:k world)" OK
expect_eq "rabia-cli kv get red:k (via replica 1)" "$(cli -a "$(native_addr 1)" kv get red:k)" '"world"'
expect_eq "rabia-cli kv get ctr" "$(cli -a "$A" kv get ctr)" '"111"'
expect_eq "rabia-cli kv get absent" "$(cli -a "$A" kv get absent)" '(nil)'
out=$(cli -a "$A" kv txn 'SET t:1 5' 'INCR t:1' 'GET t:1' | tr '\n' ' ')
expect_eq "rabia-cli kv txn 'SET t:1 5' 'INCR t:1' 'GET t:1'" "$out" '1) OK 2) (integer) 6 3) "6" '
expect_eq "redis-cli replica 3: GET t:1" "$(redis 3 GET t:1)" 6
expect_eq "rabia-cli kv del cli:k red:k t:1" "$(cli -a "$A" kv del cli:k red:k t:1)" "(integer) 3"
expect_eq "redis-cli replica 2: EXISTS cli:k red:k t:1" "$(redis 2 EXISTS cli:k red:k t:1)" 0
rc=0
out=$(cli -a "$A" kv raw FOOBAR 2>&1) || rc=$?
expect_eq "rabia-cli kv raw FOOBAR exit status (error result)" "$rc" 1
expect_match "rabia-cli kv raw FOOBAR" "$out" "ERR unknown command 'FOOBAR'"
expect_eq "rabia-cli kv keys m:* (sorted: KEYS lists in hash order)" "$(cli -a "$A" kv keys 'm:*' | sed 's/^[0-9]*) //' | sort | tr '\n' ' ')" '"m:2" "m:3" '

say "feature levels (kv/README.md): one build, so its level is agreed; the replicas' own operations are no client's"
flevel() { redis "$1" INFO server | tr -d '\r' | sed -n 's/^rabia_feature_level://p'; }
for i in 1 2 3; do
  for ((t = 0; t < 100; t++)); do [ "$(flevel "$i")" = "$BUILD_LEVEL" ] && break; sleep 0.1; done # agreed within a second or two of the start
  expect_eq "replica $i: INFO rabia_feature_level" "$(flevel "$i")" "$BUILD_LEVEL"
done
expect_match "redis-cli FEATURELEVEL 9" "$(redis 1 FEATURELEVEL 9 2>&1)" "ERR unknown command 'FEATURELEVEL'"
expect_match "redis-cli SWEEP" "$(redis 2 SWEEP 2>&1)" "ERR unknown command 'SWEEP'"
expect_match "a script's redis.call('featurelevel', 9)" "$(redis 3 EVAL "return redis.call('featurelevel', '9')" 0 2>&1)" \
  "Unknown Redis command called from script"
for op in "FEATURELEVEL 9" "FEATURES 1 1 9" "SWEEP"; do
  rc=0
  out=$(cli -a "$A" kv raw $op 2>&1) || rc=$?
  expect_match "rabia-cli kv raw $op (exit $rc)" "$out" "replicas' own operations"
done
out=$(cli -a "$A" kv txn 'FEATURELEVEL 9' 'GET t:1' | tr '\n' ' ')
expect_match "rabia-cli kv txn 'FEATURELEVEL 9' 'GET t:1' (inside a transaction: unknown)" "$out" "^1\) \(error\) ERR unknown command 'FEATURELEVEL'"
expect_eq "LMPOP (level 1) on replica 3" "$(redis 3 RPUSH fl:l a b >/dev/null; redis 3 LMPOP 1 fl:l RIGHT | tr '\n' ' ')" "fl:l b "

say "scripts whose work the instruction count does not see (kv/README.md \"Scripts\", feature levels 2 and 3)"
# Lua 5.1's matcher recursed once per quantified item: this killed every
# replica with SIGSEGV (and would again at each replay of the log)
expect_match "EVAL string.find with 300,000 'a?' items" \
  "$(redis 2 EVAL "return string.find(string.rep('a', 300000), string.rep('a?', 300000))" 0 2>&1)" "pattern too complex"
# a string grown by concatenation: held every replica for hours
t0=$SECONDS
expect_match "EVAL a loop growing a string a million times" \
  "$(redis 1 EVAL "local s = '' for i = 1, 1e6 do s = s .. 'xxxxxxxxxx' end return #s" 0 2>&1)" "script stopped after"
((SECONDS - t0 < 20)) || fail "the growing-string script took $((SECONDS - t0)) s"
# feature level 3: the matcher's steps count (Lua 5.1's backtracked in C
# for years on this one), and gfind, which level 2 left to 5.1's
# unbounded recursion, is bounded too
t0=$SECONDS
expect_match "EVAL a pattern that backtracks (5000^6 / 720 positions)" \
  "$(redis 3 EVAL "return string.find(string.rep('a', 5000), string.rep('a*', 6) .. 'b')" 0 2>&1)" "script stopped after"
((SECONDS - t0 < 20)) || fail "the backtracking script took $((SECONDS - t0)) s"
expect_match "EVAL string.gfind with 300,000 'a?' items" \
  "$(redis 1 EVAL "return string.gfind(string.rep('a', 300000), string.rep('a?', 300000))()" 0 2>&1)" "pattern too complex"
# and a command that walks its key counts the key's size (this loop was
# counted 5 instructions a call: 400 ms per check of the hook, hours in all)
redis 2 SETRANGE big 20000000 x >/dev/null
t0=$SECONDS
expect_match "EVAL a loop of BITCOUNT over a 20 MB string" \
  "$(redis 2 EVAL "for i = 1, 1e6 do redis.call('bitcount', 'big') end" 0 2>&1)" "script stopped after"
((SECONDS - t0 < 20)) || fail "the BITCOUNT loop took $((SECONDS - t0)) s"
redis 2 DEL big >/dev/null
# cjson.encode past 2 GiB exited every replica (status 255) below level 3
expect_match "EVAL cjson.encode of one 10 MB string 1,000 times" \
  "$(redis 1 EVAL "local s = string.rep('x', 1e7) local t = {} for i = 1, 1000 do t[i] = s end return cjson.encode(t)" 0 2>&1)" \
  "the result would pass the script heap bound"
# feature level 8: pairs() over keys that are tables or functions, which
# Lua places by address; with malloc's each replica wrote its own order
# (three orders, three state hashes: the check below failed)
expect_eq "EVAL writing in pairs() order over table and function keys" \
  "$(redis 2 EVAL "local t = {} for i = 1, 40 do t[{i}] = i t[function() return i end] = -i end local o = {} for k, v in pairs(t) do o[#o + 1] = v end redis.call('set', 'pairs_order', table.concat(o, ',')) return #o" 0)" 80
wait_converged 10 1 2 3
order=$(redis 1 GET pairs_order)
for i in 2 3; do expect_eq "replica $i: the order pairs() gave" "$(redis "$i" GET pairs_order)" "$order"; done
# and a coroutine's instructions count (short ones never were)
t0=$SECONDS
expect_match "EVAL 200,000 short coroutines" \
  "$(redis 3 EVAL "for i = 1, 200000 do coroutine.wrap(function() for j = 1, 3300 do end end)() end return 1" 0 2>&1)" \
  "script stopped after"
((SECONDS - t0 < 20)) || fail "the coroutine loop took $((SECONDS - t0)) s"
all_alive 3

say "local-cluster.sh restart of a running replica is refused (it lost the replica's pid: stop left it running)"
pid1=$(replica_pid 1)
if out=$(cluster restart 1 2>&1); then fail "local-cluster.sh restart 1 of a running replica 1 succeeded: $out"; fi
expect_match "local-cluster.sh restart 1 says" "$out" "replica 1 is running \\(pid $pid1\\): kill 1 first"
expect_eq "replica 1's pid file" "$(replica_pid 1)" "$pid1"
all_alive 3
# a stale pid file (its replica gone) whose pid is now another program's:
# stop and kill leave that program alone (they sent it SIGTERM, then SIGKILL)
mkdir -p "$IT_DIR/stale"
bg sleeper sleep 300
echo "$BG_PID" >"$IT_DIR/stale/r1.pid"
echo "$BG_PID" >"$IT_DIR/stale/r2.pid"
RABIA_CLUSTER_DIR=$IT_DIR/stale cluster kill 2 >/dev/null
RABIA_CLUSTER_DIR=$IT_DIR/stale cluster stop >/dev/null
sleep 0.2
kill -0 "$BG_PID" 2>/dev/null || fail "local-cluster.sh stop/kill signalled pid $BG_PID of a stale pid file (a sleep)"
ok "local-cluster.sh stop and kill leave a stale pid file's process (not a replica) alone"
kill "$BG_PID"
# start in a folder in use that is not a cluster's: refused, nothing removed
mkdir -p "$IT_DIR/precious" && echo keep >"$IT_DIR/precious/file"
if out=$(RABIA_CLUSTER_DIR=$IT_DIR/precious cluster start 3 2>&1); then
  RABIA_CLUSTER_DIR=$IT_DIR/precious cluster stop >/dev/null 2>&1 || true
  fail "local-cluster.sh start in a folder in use: $out"
fi
expect_match "local-cluster.sh start in a folder in use says" "$out" "holds files and no local cluster"
expect_eq "the folder's file" "$(cat "$IT_DIR/precious/file" 2>&1)" keep
# a replica that exits at once (a refused option) ends the start at once
# with its log; it waited out RABIA_START_TIMEOUT (20 s) before
t0=$SECONDS
if out=$(RABIA_CLUSTER_DIR=$IT_DIR/badopt RABIA_EXTRA_ARGS="--window 1048576" cluster start 3 2>&1); then
  fail "local-cluster.sh start with a refused option succeeded: $out"
fi
RABIA_CLUSTER_DIR=$IT_DIR/badopt cluster stop >/dev/null 2>&1 || true
expect_match "local-cluster.sh start with a refused option says" "$out" "replica [123] exited while starting"
expect_match "and shows the replica's log" "$out" "window = '1048576': must be 1..64"
((SECONDS - t0 < 10)) || fail "local-cluster.sh start with a refused option took $((SECONDS - t0)) s"
ok "local-cluster.sh start with a refused option ended after $((SECONDS - t0)) s"
# its replicas never ran: their logs would fail tls_suite's check that every
# replica log of the run shows TLS peer links
rm -rf "$IT_DIR/badopt"

say "all replicas agree"
wait_converged 10 1 2 3
for i in 1 2 3; do
  info=$(redis "$i" INFO)
  expect_eq "replica $i: RESP INFO state_hash" "$(sed -n 's/^state_hash:\(.*\)\r$/\1/p' <<<"$info")" "$CONVERGED_HASH"
done

say "state hash checkpoints: every 1024 slots each replica compares its peers' with its own (replica/hashcheck.c)"
redis 1 -r 1100 SET hc:k v >/dev/null # one slot each (one client, one command at a time): past slot 1024
wait_converged 10 1 2 3
for i in 1 2 3; do
  info_wait "$i" hash_checks_agreed 2
  expect_eq "replica $i: INFO hash_checks_agreed >= 2 (both peers' checkpoints), differed, state_diverged" \
    "$(($(info_field hash_checks_agreed) >= 2))/$(info_field hash_checks_differed)/$(info_field state_diverged)" "1/0/0"
  expect_match "replica $i: rabia-cli status" "$(replica_status "$i")" "^hash_checks: [0-9]+ agreed \(newest slot [1-9][0-9]*\), 0 differed$"
done
