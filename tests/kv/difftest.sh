#!/usr/bin/env bash
# difftest: the kv state machine against Redis. A reference redis-server and a
# 3-replica kv cluster get the same random command sequence (tests/kv/
# difftest.py: strings, keys, expiry, hashes, lists, sets, sorted sets,
# MULTI/EXEC, WATCH from two connections, SELECT, errors); 3 logical clients,
# one on each replica. Every reply must agree (the rules are in difftest.py);
# on a disagreement the sequence is minimized to a short reproducer. Ends with
# equal applied slots and state hashes on the replicas.
#
#   bash tests/kv/difftest.sh [BUILD_DIR]     (rabiad, rabia-cli from BUILD_DIR/cmd;
#                                              else $RABIAD/$RABIA_CLI, else build/)
# Environment: DIFFTEST_SEED (default 1; "random" for a new one each run),
# DIFFTEST_OPS (default 3000), DIFFTEST_DURATION (s, default 45),
# DIFFTEST_ARGS (more difftest.py options, e.g. "--keep-going 20 --no-minimize"),
# DIFFTEST_MINIMIZE_S (default 40). Ports: slot 44 (lib.sh): replicas RESP
# 24401-24403, native 24421-24423, peers 24441-24443; reference redis-server 24490.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${1:-}" ]; then
  RABIAD=$(cd "$1" && pwd)/cmd/rabiad
  RABIA_CLI=$(cd "$1" && pwd)/cmd/rabia-cli
  export RABIAD RABIA_CLI
fi
# shellcheck source=../integration/lib.sh
. "$here/../integration/lib.sh"
# (ctest sets the watchdog from its TIMEOUT; run directly, this one)
export RABIA_IT_DEADLINE=${RABIA_IT_DEADLINE:-140}
it_init difftest 44
tls_refuse "the reference redis-server runs without TLS and difftest.py talks to both over plain sockets"
need_cmd redis-server redis-cli python3

# the reference: a plain redis-server (no persistence), stopped by PID
REF_PORT=$((RABIA_RESP_BASE + 90))
REDIS_SERVER=$(command -v redis-server)
ref_pidfile=$IT_DIR/ref-redis.pid
stop_ref() {
  local pid
  pid=$(cat "$ref_pidfile" 2>/dev/null) || return 0
  [ -n "$pid" ] && stop_pids "$REDIS_SERVER" "$pid"
  rm -f "$ref_pidfile"
}
on_exit stop_ref
# (hz 100: expired keys are reclaimed within ~10 ms, DBSIZE settles sooner)
"$REDIS_SERVER" --port "$REF_PORT" --bind 127.0.0.1 --save '' --appendonly no --hz 100 \
  --daemonize yes --pidfile "$ref_pidfile" --dir "$IT_DIR" --logfile "$IT_DIR/ref-redis.log"
for ((i = 0; i < 50; i++)); do
  [ "$(timeout 2 redis-cli -p "$REF_PORT" PING 2>/dev/null)" = PONG ] && break
  sleep 0.1
done
[ "$(timeout 2 redis-cli -p "$REF_PORT" PING 2>/dev/null)" = PONG ] || fail "the reference redis-server on port $REF_PORT did not start"
ok "reference $("$REDIS_SERVER" --version | cut -d' ' -f3) on port $REF_PORT (pid $(cat "$ref_pidfile"))"

cluster_start 3 kv

seed=${DIFFTEST_SEED:-1}
[ "$seed" = random ] && seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
say "difftest.py: seed $seed, ${DIFFTEST_OPS:-3000} ops within ${DIFFTEST_DURATION:-45} s, 3 clients (one per replica)"
rc=0
# shellcheck disable=SC2086
timeout $((${DIFFTEST_DURATION:-45} + ${DIFFTEST_MINIMIZE_S:-40} + 30)) \
  python3 "$here/difftest.py" --ref "127.0.0.1:$REF_PORT" \
  --sut "127.0.0.1:$(resp_port 1)" --sut "127.0.0.1:$(resp_port 2)" --sut "127.0.0.1:$(resp_port 3)" \
  --clients 3 --seed "$seed" --ops "${DIFFTEST_OPS:-3000}" --duration "${DIFFTEST_DURATION:-45}" \
  --flush-first --minimize-budget "${DIFFTEST_MINIMIZE_S:-40}" --max-sleep 5 \
  ${DIFFTEST_ARGS:-} >"$IT_DIR/difftest.out" 2>&1 || rc=$?
sed "s/^/[$IT_NAME]   /" "$IT_DIR/difftest.out"
summary=$(grep -a '^difftest: [0-9]* commands' "$IT_DIR/difftest.out" | tail -n 1 || true)
[ "$rc" = 0 ] || fail "difftest.py exit status $rc (seed $seed): ${summary:-no summary line}; rerun with DIFFTEST_SEED=$seed"
ok "${summary#difftest: }"

all_alive 3
wait_converged 20 1 2 3
