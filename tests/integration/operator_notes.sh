#!/usr/bin/env bash
# operator_notes: what an operator is told, where rabiad was silent
# (found by review).
#  1. data-dir/peers-seen cannot be written when the peers are first heard
#     (here a folder where its temporary file goes; in the field a full
#     disk or an EIO): the write is tried again until it succeeds. It was
#     given up after one WARN, and the peers' first incarnations never
#     reached the disk: after a restart of this replica, a peer back from a
#     lost data dir without --rejoin was taken.
#  2. SIGHUP with keys changed that a reload does not take (log-level,
#     max-sessions): a WARN for each, naming it and saying a restart is
#     needed; unchanged keys say nothing, and the reload itself is done.
#  3. --rejoin on a data dir whose log is intact: a plain restart from the
#     log (safe), now with a WARN that --rejoin was not needed and why.
#  4. deploy/local-cluster.sh restart of a replica that exits at once (an
#     unknown option): it fails with the log's last lines; it said
#     "restarted".
#  5. A data dir begun on a clock over a day ahead (since corrected): its
#     incarnation stays ahead and every peer refuses it; the replica now
#     says so at start, with the way out.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init operator_notes 69
need_cmd redis-cli
D=$RABIA_CLUSTER_DIR
wait_log() { # wait_log FILE ERE SECONDS
  local k
  for ((k = 0; k < $3 * 10; k++)); do grep -Eq -- "$2" "$1" && return 0; sleep 0.1; done
  fail "no line matching /$2/ in $1 within $3 s (last lines: $(tail -n 5 "$1" | tr '\n' ' '))"
}
cluster_dir_new 3 kv

say "1. replica 1 first, alone; its peers-seen cannot be written when replicas 2 and 3 come"
printf 'log-level info\nmax-sessions 1000\n' >"$IT_DIR/r1.conf"
RABIA_EXTRA_ARGS="--config $IT_DIR/r1.conf" cluster_restart 1
mkdir -p "$D/r1/peers-seen.tmp" # open(O_CREAT) of the temporary file fails: EISDIR
cluster_restart 2
cluster_restart 3
wait_ready 30 1 2 3
wait_log "$D/r1.log" "peers-seen.tmp: .*not kept on disk yet \(trying again every second\)" 10
[ -e "$D/r1/peers-seen" ] && fail "replica 1 wrote peers-seen while its temporary file could not be made"
sleep 2
[ -e "$D/r1/peers-seen" ] && fail "replica 1 wrote peers-seen while its temporary file could not be made"
n=$(grep -c "not kept on disk yet" "$D/r1.log" || true)
expect_eq "replica 1 warned once, not at every try" "$n" 1
rmdir "$D/r1/peers-seen.tmp"
wait_log "$D/r1.log" "peers-seen written: the peers first heard are kept on disk" 5
expect_match "replica 1's peers-seen holds replicas 2 and 3" "$(tr '\n' ' ' <"$D/r1/peers-seen")" \
  "^rabia peers-seen 1 2 [0-9]+ 3 [0-9]+ $"

say "2. SIGHUP with log-level and max-sessions changed in replica 1's config file"
printf 'log-level debug\nmax-sessions 2000\n' >"$IT_DIR/r1.conf"
kill -HUP "$(replica_pid 1)"
wait_log "$D/r1.log" "reload: the members' addresses are unchanged" 10
wait_log "$D/r1.log" "reload \(SIGHUP\): WARN log-level changed \(info -> debug\) but is not taken while running: .*restart this replica" 5
wait_log "$D/r1.log" "reload \(SIGHUP\): WARN max-sessions changed \(1000 -> 2000\)" 5
n=$(grep -c "reload (SIGHUP): WARN" "$D/r1.log" || true)
expect_eq "only the two keys changed are warned about" "$n" 2
expect_eq "replica 1 serves after the reload: SET" "$(redis 1 SET after-hup yes)" OK

say "3. replica 3 restarted with --rejoin on its intact log"
cluster_kill 3
RABIA_EXTRA_ARGS="--rejoin" cluster_restart 3
wait_log "$D/r3.log" "WARN .*--rejoin was not needed: $D/r3 holds this replica's log, so this start is a plain restart" 10
wait_log "$D/r3.log" "restart with its log: taking part at once" 10
wait_ready 30 1 2 3
expect_eq "replica 3 serves: GET after-hup" "$(redis 3 GET after-hup)" yes

say "4. local-cluster.sh restart of a replica that exits at once"
cluster_kill 2
rc=0
out=$(RABIA_EXTRA_ARGS="--no-such-option 1" cluster restart 2 2>&1) || rc=$?
((rc != 0)) || fail "local-cluster.sh restart said '$out' for a replica that exited at once"
expect_match "it names the exit" "$out" "replica 2 \(pid [0-9]+\) exited while starting \(status 2\)"
expect_match "and shows the log's cause" "$out" "unknown key 'no-such-option'"
out=$(cluster restart 2 2>&1)
remember_pids
expect_match "a good restart says restarted" "$out" "^restarted replica 2 \(pid [0-9]+\)$"
wait_ready 30 1 2 3

say "5. replica 3's data dir begun on a clock two days ahead (its incarnation file says so)"
cluster_kill 3
echo $(($(date +%s) * 1000000 + 2 * 86400 * 1000000)) >"$D/r3/incarnation"
cluster_restart 3
wait_log "$D/r3.log" "WARN .*incarnation [0-9]+ is 17[0-9]{4} s ahead of this machine's clock: .*start it with --rejoin" 10
wait_log "$D/r1.log" "replica 3 announces incarnation [0-9]+, 17[0-9]{4} s ahead of this machine's clock" 10
ok "operator_notes passed"
