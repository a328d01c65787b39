#!/usr/bin/env bash
# upgrade_log: a cluster of an older rabiad (OLD_RABIAD, OLD_RABIA_CLI: the
# old client, since an older replica refuses newer frames) writes under
# load, stops, and this build (RABIAD) starts on the same data directories:
# each replica replays the old log, every key reads back the same on all
# three, the cluster takes writes. Run by tests/upgrade.sh, which builds
# the old version; not a ctest test.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init upgrade_log 20
need_cmd redis-cli redis-benchmark md5sum
[ -x "${OLD_RABIAD:-}" ] && [ -x "${OLD_RABIA_CLI:-}" ] || fail "set OLD_RABIAD and OLD_RABIA_CLI (tests/upgrade.sh does)"
NEW_RABIAD=$RABIAD NEW_RABIA_CLI=$RABIA_CLI
export RABIAD=$OLD_RABIAD RABIA_CLI=$OLD_RABIA_CLI
cluster_start 3 kv
timeout 60 redis-benchmark -p "$(resp_port 1)" -t set -d 100 -r 5000 -n 20000 -c 20 -P 4 -q >/dev/null 2>&1 ||
  fail "redis-benchmark against the old version failed"
expect_eq "old version: SET upg:key" "$(redis 2 SET upg:key before)" OK
wait_converged 30 1 2 3
n0=$(redis 1 DBSIZE)
# md5 of GET of every key, in key order (each GET is a slot of its own: reads
# are linearized through consensus, so applied moves on by about the key count)
digest() {
  redis-cli -p "$(resp_port "$1")" --scan | sort | while read -r k; do printf 'GET %s\n' "$k"; done |
    redis-cli -p "$(resp_port "$1")" | md5sum | cut -c1-16
}
d0=$(digest 1)
say "old version ($OLD_RABIAD): applied $CONVERGED_APPLIED, $n0 keys, digest $d0"
cluster_stop
export RABIAD=$NEW_RABIAD RABIA_CLI=$NEW_RABIA_CLI
for i in 1 2 3; do cluster_restart "$i"; done
wait_converged 60 1 2 3
for i in 1 2 3; do
  grep -q "decided slots replayed" "$RABIA_CLUSTER_DIR/r$i.log" || fail "replica $i did not say what it replayed"
  say "replica $i: $(grep -o 'state at slot [0-9]* ([^)]*)' "$RABIA_CLUSTER_DIR/r$i.log" | tail -n 1)"
  expect_eq "replica $i: every value after the upgrade (digest)" "$(digest "$i")" "$d0"
done
expect_eq "keys after the upgrade" "$(redis 1 DBSIZE)" "$n0"
expect_eq "a key written before, read on replica 3" "$(redis 3 GET upg:key)" before
expect_eq "a write after the upgrade" "$(redis 1 SET upg:key after)" OK
expect_eq "read back on replica 2" "$(redis 2 GET upg:key)" after
