#!/usr/bin/env bash
# resp_conn: the RESP connection's lifecycle against redis-server 7.0.15's
# bytes (resp_conn.py). A client that sends commands and then shuts its
# sending side down (shutdown(SHUT_WR), `nc -N`, a batch job) gets every
# reply before the close, as from Redis: pipelines of reads and writes,
# MULTI/EXEC, WATCH, SUBSCRIBE, a BLPOP that pops; a blocked BLPOP is
# dropped at EOF, as Redis drops it. Before, every reply still owed at EOF
# was lost (the writes applied all the same). CLIENT REPLY OFF|ON|SKIP
# silences replies as Redis does (it was an unknown subcommand). Run on the loop's own sockets
# and with io-threads 2 (io/threads.c), then: no connection left behind.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init resp_conn 15
tls_refuse "resp_conn.py writes raw RESP over plain TCP"
need_cmd redis-cli python3
here=$(cd "$(dirname "$0")" && pwd)

run_cases() { # run_cases WHAT
  local out rc=0
  out=$(timeout 120 python3 "$here/resp_conn.py" 127.0.0.1 "$(resp_port 1)" 2>&1) || rc=$?
  printf '%s\n' "$out" | sed "s/^/[$IT_NAME]   /"
  [ "$rc" = 0 ] || fail "$1: a reply differs from redis-server 7.0.15's (see above)"
  ok "$1: $(tail -1 <<<"$out")"
  local n t
  for ((t = 0; t < 50; t++)); do # every case's connection closed (the one asking included)
    n=$(redis 1 CLIENT LIST | grep -c '^id=')
    [ "$n" = 1 ] && break
    sleep 0.1
  done
  expect_eq "$1: connections left on replica 1 (CLIENT LIST, this one included)" "$n" 1
}

cluster_start 3 kv
run_cases "the loop's sockets"
cluster_stop

export RABIA_EXTRA_ARGS="--io-threads 2"
export RABIA_CLUSTER_DIR=$IT_DIR/cluster-threads
cluster_start 3 kv
run_cases "io-threads 2"
