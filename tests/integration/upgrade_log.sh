#!/usr/bin/env bash
# upgrade_log: an older rabiad's write-ahead logs replayed by this build.
#
# Live (OLD_RABIAD, OLD_RABIA_CLI: the old client, since an older replica
# refuses newer frames; run by tests/upgrade.sh, which builds the old
# version): a cluster of the old version writes under load and stops, and
# this build (RABIAD) starts on the same data directories: each replica
# replays the old log, every key reads back the same on all three, the
# cluster takes writes. With FIXTURE_OUT=FILE it also packs the old
# cluster's data directories and what it read (keys, digest) into FILE.
#
# Fixture (FIXTURE_IN=FILE, the ctest test integration.upgrade_fixture):
# the same checks on data directories an old version wrote and packed that
# way (tests/fixtures/README.md says which), without building it.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init upgrade_log 20
need_cmd redis-cli redis-benchmark md5sum tar xz
# a fixed cluster id: the packed logs name it, and the ports differ per run
export RABIA_EXTRA_ARGS="--cluster-id 20261201 --wal-segment-bytes 1048576"
# md5 of GET of every key, in key order (each GET is a slot of its own: reads
# are linearized through consensus, so applied moves on by about the key count)
digest() {
  redis-cli -p "$(resp_port "$1")" --scan | sort | while read -r k; do printf 'GET %s\n' "$k"; done |
    redis-cli -p "$(resp_port "$1")" | md5sum | cut -c1-16
}
if [ -n "${FIXTURE_IN:-}" ]; then
  [ -f "$FIXTURE_IN" ] || fail "FIXTURE_IN=$FIXTURE_IN: no such file"
  mkdir -p "$RABIA_CLUSTER_DIR"
  tar -xJf "$FIXTURE_IN" -C "$RABIA_CLUSTER_DIR" || fail "cannot unpack $FIXTURE_IN"
  # shellcheck disable=SC1091
  . "$RABIA_CLUSTER_DIR/expected" # n0, d0, old (what the old version read before it stopped)
  say "fixture $(basename "$FIXTURE_IN"): written by $old; $n0 keys, digest $d0"
else
  [ -x "${OLD_RABIAD:-}" ] && [ -x "${OLD_RABIA_CLI:-}" ] ||
    fail "set OLD_RABIAD and OLD_RABIA_CLI (tests/upgrade.sh does), or FIXTURE_IN"
  NEW_RABIAD=$RABIAD NEW_RABIA_CLI=$RABIA_CLI
  export RABIAD=$OLD_RABIAD RABIA_CLI=$OLD_RABIA_CLI
  cluster_start 3 kv
  # UPGRADE_REQUESTS, UPGRADE_PIPELINE: the packed fixture was made with 1500 and 16 (a small file)
  timeout 60 redis-benchmark -p "$(resp_port 1)" -t set -d 100 -r 5000 -n "${UPGRADE_REQUESTS:-20000}" -c 20 -P "${UPGRADE_PIPELINE:-4}" -q \
    >/dev/null 2>&1 ||
    fail "redis-benchmark against the old version failed"
  expect_eq "old version: SET upg:key" "$(redis 2 SET upg:key before)" OK
  wait_converged 30 1 2 3
  n0=$(redis 1 DBSIZE)
  d0=$(digest 1)
  old="$("$OLD_RABIAD" --version 2>&1 | head -n 1)"
  say "old version ($OLD_RABIAD: $old): applied $CONVERGED_APPLIED, $n0 keys, digest $d0"
  cluster_stop
  if [ -n "${FIXTURE_OUT:-}" ]; then
    printf 'n0=%q\nd0=%q\nold=%q\n' "$n0" "$d0" "$old" >"$RABIA_CLUSTER_DIR/expected"
    tar -cJf "$FIXTURE_OUT" -C "$RABIA_CLUSTER_DIR" --exclude="*/LOCK" r1 r2 r3 n sm expected
    say "packed the old data directories into $FIXTURE_OUT ($(stat -c %s "$FIXTURE_OUT") bytes)"
  fi
  export RABIAD=$NEW_RABIAD RABIA_CLI=$NEW_RABIA_CLI
fi
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
