#!/usr/bin/env bash
# restart_idle: sequential crash-restarts of an idle cluster. On a 3-replica
# counter cluster with no traffic, replica 2 is killed with -9 and restarted
# (back, connected, not recovering), then replica 3 the same way; never more
# than one replica is down. A write must then succeed.
#
# This found a real bug: each restarted replica abstains in slots <= K +
# window (the horizon rule, include/rabia/core.h rule 2); while the cluster
# was idle no slot past replica 2's horizon got decided, so replica 3's
# restart left replica 1 alone to vote there and the cluster stalled for
# good. Fixed: replicas answering a horizon request decide the slots up to
# the asker's horizon at once (null when nothing is queued).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init restart_idle 8
cluster_start 3 counter
A=$(all_addrs 3)
expect_eq "counter incr" "$(cli -a "$A" counter incr)" 1
wait_converged 10 1 2 3
for victim in 2 3; do
  cluster_kill "$victim"
  sleep 0.5
  cluster_restart "$victim"
  wait_ready 20 1 2 3
  s=$(snapshot 1 2 3)
  say "  replica $victim back: applied/state_hash $s; known: $(for i in 1 2 3; do field "$(replica_status "$i")" known; done | tr '\n' ' ')"
done
rc=0
t0=$SECONDS
out=$(timeout 30 "$RABIA_CLI" -a "$A" --timeout 1000 counter incr 2>&1) || rc=$?
[ "$rc" = 0 ] || fail "counter incr after two sequential restarts: exit $rc after $((SECONDS - t0)) s: $out; known: $(for i in 1 2 3; do field "$(replica_status "$i")" known; done | tr '\n' ' ')"
expect_eq "counter incr after two sequential restarts" "$out" 2
wait_converged 10 1 2 3
