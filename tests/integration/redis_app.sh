#!/usr/bin/env bash
# redis_app: an application on a 3-replica kv cluster through redis-py
# (redis_app.py): every type through all three replicas, pipelines with and
# without MULTI/EXEC, Pub/Sub across replicas (publish order kept), BLPOP
# woken by an RPUSH at another replica and a BLPOP timeout; then threads
# incrementing a JSON counter with WATCH/MULTI/EXEC retry loops and a list/set
# writer while replica 1 is killed with kill -9 midway (clients fail over to
# the survivors; writes cut off are resolved afterwards). The final counter
# must equal the increments that took effect, every acknowledged list/set
# element must be there. Afterwards replica 1 is restarted and catches up:
# equal applied slots and state hashes.
#
#   bash tests/integration/redis_app.sh [BUILD_DIR]   (else $RABIAD/$RABIA_CLI, else build/)
# Environment: REDIS_APP_ARGS (more redis_app.py options, e.g. "--threads 8").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${1:-}" ]; then
  RABIAD=$(cd "$1" && pwd)/cmd/rabiad
  RABIA_CLI=$(cd "$1" && pwd)/cmd/rabia-cli
  export RABIAD RABIA_CLI
fi
# shellcheck source=lib.sh
. "$here/lib.sh"
# (ctest sets the watchdog from its TIMEOUT; run directly, this one)
export RABIA_IT_DEADLINE=${RABIA_IT_DEADLINE:-165}
it_init redis_app 16
# Debian's python3 (python3-redis lives there), not another one first on PATH
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import redis' 2>/dev/null || skip "python3-redis is not installed (deploy/install-deps.sh installs it)"
cluster_start 3 kv
wait_level 3 # HyperLogLog, geo: levels 4, 5

victim_pid=$(replica_pid 1)
rc=0
# shellcheck disable=SC2086
timeout 120 "$PY" "$here/redis_app.py" --ports "$(resp_port 1),$(resp_port 2),$(resp_port 3)" \
  --victim 1 --victim-pid "$victim_pid" ${REDIS_APP_ARGS:-} >"$IT_DIR/redis_app.out" 2>&1 || rc=$?
sed "s/^/[$IT_NAME]   /" "$IT_DIR/redis_app.out"
summary=$(grep -a '^redis_app: ' "$IT_DIR/redis_app.out" | tail -n 1 || true)
[ "$rc" = 0 ] || fail "redis_app.py exit status $rc: ${summary:-no summary line}"
ok "${summary#redis_app: }"

pid_runs "$victim_pid" "$RABIAD" && fail "replica 1 (pid $victim_pid) still runs after the application's kill -9"
rm -f "$RABIA_CLUSTER_DIR/r1.pid"
wait_converged 20 2 3
cluster_restart 1
wait_converged 30 1 2 3
expect_eq "replica 1 after its restart: LLEN app:log = replica 2's" "$(redis 1 LLEN app:log)" "$(redis 2 LLEN app:log)"
