#!/usr/bin/env bash
# start_refused: starts refused for what the data dir holds, and what they
# leave behind.
#  1. A new 3-replica cluster (durability = wal) whose every replica refuses
#     its first start because its log cannot be opened (here a plain file
#     where data-dir/wal goes; in the field a filesystem without O_DIRECT or
#     a full disk, the same config on each machine). Once the cause is fixed
#     the cluster must start as a new one and serve: such a refused start
#     sent nothing, so the next one is still a first start. It left its
#     incarnation file behind, and the next start took itself for a restart
#     without a log, waiting for the horizons of peers that waited too: the
#     cluster never served (found by review).
#  2. A replica whose data dir holds a log, started with durability =
#     memory: refused, naming the log. It ran, and its next start with wal
#     took the stale log for its own and took part at once, without the
#     votes the memory life sent (found by review).
#  3. A new cluster with durability = memory whose every replica is
#     refused io_uring (a seccomp filter, as Docker's default profile
#     refuses it; tests/integration/no_uring.c): each stops at its event
#     loop and leaves no incarnation file, and once io_uring is allowed the
#     three start as a new cluster and serve. The failure comes after the
#     start was set up, in rabia_replica_run: the file stayed, and the next
#     start took itself for a restart without a log, waiting for the
#     others' horizons for ever (the left-alone list's "memory-mode first
#     start failing in run leaves its incarnation").
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init start_refused 62
need_cmd redis-cli
export RABIA_EXTRA_ARGS="--durability wal --wal-segment-bytes 1048576"
D=$RABIA_CLUSTER_DIR
cluster_dir_new 3 kv

say "each replica's first start: the log folder cannot be made"
for i in 1 2 3; do
  mkdir -p "$D/r$i"
  : >"$D/r$i/wal" # a file where the log's folder goes
  cluster_restart "$i"
done
for i in 1 2 3; do
  pid=$(replica_pid "$i")
  for ((t = 0; t < 100; t++)); do pid_runs "$pid" "$RABIAD" || break; sleep 0.1; done
  pid_runs "$pid" "$RABIAD" && fail "replica $i still runs without a log folder"
  expect_match "replica $i refused to start" "$(tail -n 3 "$D/r$i.log")" "cannot create a file in the log folder"
  [ -e "$D/r$i/incarnation" ] && fail "replica $i: the refused first start left its incarnation file"
  ok "replica $i: no incarnation file after the refused first start"
done

say "the cause fixed: the cluster starts as a new one and serves"
for i in 1 2 3; do
  rm -f "$D/r$i/wal"
  cluster_restart "$i"
done
set_until 1 fsr:k v 20
ok "SET through replica 1 within 20 s"
for i in 1 2 3; do
  expect_match "replica $i's start" "$(grep 'incarnation' "$D/r$i.log" | tail -n 1)" "\(first start\)"
done
expect_eq "GET through replica 3" "$(redis 3 GET fsr:k)" v
all_alive 3

say "2. replica 3 (its data dir holds a log) started with durability = memory"
inc=$(cat "$D/r3/incarnation")
cluster_stop_one() { # SIGTERM replica I and wait for it
  local pid
  pid=$(replica_pid "$1")
  stop_pids "$RABIAD" "$pid"
}
cluster_stop_one 3
RABIA_EXTRA_ARGS="--durability memory" cluster_restart 3
pid=$(replica_pid 3)
for ((t = 0; t < 100; t++)); do pid_runs "$pid" "$RABIAD" || break; sleep 0.1; done
pid_runs "$pid" "$RABIAD" && fail "replica 3 runs with durability memory over its log"
expect_match "replica 3 refused durability memory" "$(tail -n 1 "$D/r3.log")" "holds a write-ahead log .*remove .*/wal and .*/snap first"
expect_eq "replica 3's incarnation file after the refusal" "$(cat "$D/r3/incarnation")" "$inc"
expect_eq "SET through replica 1 meanwhile" "$(redis 1 SET fsr:k2 w)" OK
cluster_restart 3
got=""
t0=$SECONDS
while ((SECONDS - t0 < 20)); do
  got=$(timeout 2 redis-cli -p "$(resp_port 3)" GET fsr:k2 2>/dev/null || true)
  [ "$got" = w ] && break
  sleep 0.2
done
expect_eq "GET fsr:k2 through replica 3 (wal again)" "$got" w
expect_match "replica 3's start" "$(grep 'incarnation' "$D/r3.log" | tail -n 1)" "restart with its log"
all_alive 3

say "3. a new cluster with durability = memory whose every replica is refused io_uring (a container's seccomp profile)"
NO_URING=${NO_URING:-$(dirname "$RABIAD")/../tests/integration/no_uring}
[ -x "$NO_URING" ] || fail "NO_URING=$NO_URING is not an executable (built as the no_uring target)"
cluster_stop
D2=$IT_DIR/memory-cluster
export RABIA_CLUSTER_DIR=$D2 RABIA_EXTRA_ARGS="--durability memory"
cluster_dir_new 3 kv
for i in 1 2 3; do NO_URING_EXEC=$RABIAD RABIAD=$NO_URING cluster_restart "$i"; done # (in this order: the second sees the first)
for i in 1 2 3; do
  pid=$(replica_pid "$i")
  for ((t = 0; t < 100; t++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  pid_runs "$pid" "$RABIAD" && fail "replica $i still runs without io_uring"
  expect_match "replica $i stopped at its event loop" "$(tr '\n' ' ' <"$D2/r$i.log")" "io_uring_setup: permission denied .*seccomp"
  [ -e "$D2/r$i/incarnation" ] && fail "replica $i: the first start that could not set up io_uring left its incarnation file (the next start waits for its peers' horizons)"
  ok "replica $i: no incarnation file after the first start that could not set up io_uring"
done
for i in 1 2 3; do cluster_restart "$i"; done
set_until 2 fsr:m v 20
ok "io_uring allowed: SET through replica 2 within 20 s"
for i in 1 2 3; do
  expect_match "replica $i's start" "$(grep 'incarnation' "$D2/r$i.log" | tail -n 1)" "\\(first start\\)"
done
all_alive 3
say "passed ($IT_CHECKS checks)"
