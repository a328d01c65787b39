#!/usr/bin/env bash
# redis_lib: what client libraries ask around the commands, through redis-py
# (redis_lib.py): INFO memory's used_memory and maxmemory_policy (they were
# missing: `redis-cli --stat` showed no memory, BullMQ and Sidekiq warn of
# eviction without the policy), INFO's role and redis_mode as HELLO's
# (master, standalone; they were rabia-replica and rabia), INFO with several sections (only the first
# was answered), PUBSUB CHANNELS / NUMSUB / NUMPAT (they were "unknown
# command") and CLIENT UNBLOCK of a worker parked in BLPOP (an unknown
# subcommand: the worker stayed blocked). Run on the loop's own sockets and
# with io-threads 2 (the subscriptions of I/O threads' connections count
# too).
#
#   bash tests/integration/redis_lib.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init redis_lib 58
here=$(cd "$(dirname "$0")" && pwd)
# Debian's python3 (python3-redis lives there), not another one first on PATH
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import redis' 2>/dev/null || skip "python3-redis is not installed (deploy/install-deps.sh installs it)"
tls_refuse "redis_lib.py connects without TLS"

run_checks() { # run_checks WHAT
  local out rc=0
  out=$(timeout 60 "$PY" "$here/redis_lib.py" "$(resp_port 1),$(resp_port 2),$(resp_port 3)" 2>&1) || rc=$?
  printf '%s\n' "$out" | sed "s/^/[$IT_NAME]   /"
  [ "$rc" = 0 ] || fail "$1: $(tail -1 <<<"$out")"
  ok "$1: $(tail -1 <<<"$out")"
}

cluster_start 3 kv
run_checks "the loop's sockets"
cluster_stop

export RABIA_EXTRA_ARGS="--io-threads 2"
export RABIA_CLUSTER_DIR=$IT_DIR/cluster-threads
cluster_start 3 kv
run_checks "io-threads 2"
