#!/usr/bin/env bash
# snapshot_backoff: snapshots that keep failing are tried less and less
# often, and one succeeds by itself once the cause is gone. Each try forks
# the replica and serializes its whole state; a failed one was tried again
# every second for as long as the cause lasted (a full disk: with a large
# state, a core busy and the loop stalling on a fork every second; the
# left-alone list's "failing snapshot retried every second without
# backoff"). Now: 1 s, doubling to 32 s, back to 1 s after a success.
# Replica 1 (1 MiB of log calls for a snapshot) takes one, then its snap
# folder is replaced by a plain file: every try fails (ENOTDIR) while a
# load goes on. Checked: at most 5 tries in the 14 s after the first
# failure (1 + 2 + 4 + 8: tries at 0, 1, 3 and 7 s), each logged with its
# count and the wait; replica 1 serves throughout; the folder put back, the
# next try writes the snapshot and releases log segments.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init snapshot_backoff 67
need_cmd redis-cli redis-benchmark
export RABIA_EXTRA_ARGS="${RABIA_EXTRA_ARGS:-} --wal-segment-bytes 1048576 --max-log-size 1048576"
cluster_start 3 kv
L=$RABIA_CLUSTER_DIR/r1.log
load() { timeout 60 redis-benchmark -p "$(resp_port 1)" -t set -d 100 -r 100000 -n "$1" -c 8 -P 4 -q >/dev/null 2>&1 || true; }
written() { grep -c "rabia: snapshot at slot [0-9]* written" "$L" || true; }
failed() { grep -c "rabia: the snapshot at slot [0-9]* failed" "$L" || true; }

say "a snapshot by log size"
t0=$SECONDS
while (($(written) == 0)); do
  ((SECONDS - t0 < 60)) || fail "replica 1 wrote no snapshot in 60 s of load (max-log-size 1 MiB)"
  load 20000
done
ok "replica 1: $(grep -m1 -o 'snapshot at slot [0-9]* written.*' "$L")"

say "replica 1's snap folder replaced by a plain file: every snapshot fails"
mv "$RABIA_CLUSTER_DIR/r1/snap" "$RABIA_CLUSTER_DIR/r1/snap.away"
: >"$RABIA_CLUSTER_DIR/r1/snap"
t0=$SECONDS
while (($(failed) == 0)); do
  ((SECONDS - t0 < 60)) || fail "no snapshot failed in 60 s of load"
  load 20000
done
t1=$SECONDS
say "  the first failure after $((t1 - t0)) s; 14 s of load more"
while ((SECONDS - t1 < 14)); do
  load 5000
  expect_eq "replica 1 serves: SET" "$(redis 1 SET during "$SECONDS")" OK >/dev/null
done
n=$(failed)
grep "the snapshot at slot" "$L" | sed 's/^/    /' | tail -n 6
((n >= 3 && n <= 5)) || fail "$n failed snapshots in the 14 s after the first (expected 3 to 5: tries 1, 2, 4, 8 s apart; every second before)"
ok "$n failed snapshots in the 14 s after the first failure"
expect_match "each failure gives its count and the wait" "$(grep 'the snapshot at slot' "$L" | sed -n 3p)" \
  "failed \(see the message above\), 3 in a row; the next try in 4 s at the earliest"

say "the folder put back: the next try writes the snapshot"
w0=$(written)
rm -f "$RABIA_CLUSTER_DIR/r1/snap"
mv "$RABIA_CLUSTER_DIR/r1/snap.away" "$RABIA_CLUSTER_DIR/r1/snap"
t2=$SECONDS
while (($(written) == w0)); do
  ((SECONDS - t2 < 40)) || fail "no snapshot written within 40 s of the folder's return"
  load 2000
  sleep 0.5
done
ok "snapshot written $((SECONDS - t2)) s after the folder's return: $(grep -o 'snapshot at slot [0-9]* written.*' "$L" | tail -n 1)"
expect_eq "replica 1 serves: SET after" "$(redis 1 SET after 1)" OK
wait_converged 30 1 2 3
all_alive 3
ok "snapshot_backoff passed"
