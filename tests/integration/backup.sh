#!/usr/bin/env bash
# backup: rabia-cli backup and rabiad --restore, round trip.
#
# A 3-replica KV cluster (durability wal) is loaded with a few thousand keys
# of several types (redis-benchmark -r) and some known ones; `rabia-cli
# backup` runs while a writer keeps writing (python3-redis, every
# acknowledged write recorded). A second backup of the quiet cluster must
# carry exactly the state hash the replicas report at its slot. The cluster
# stops; a NEW cluster (other data dirs) starts with --restore from the first
# backup: every replica reports the backup's slot and state hash, the known
# keys read back equal, every write acknowledged before the backup was asked
# for is there. The restored cluster takes writes, is stopped and restarted
# without --restore: all of it is still there. Refusals: restore into a data
# dir that holds state, a backup with a flipped byte, a truncated one, one of
# another state machine, a missing file, --restore with --rejoin (each with
# the file, the offset or the cause); a backup PATH that cannot be written
# (a directory, a missing folder) is refused before any replica is asked. A
# restore killed during its copy is retried and restores (with strace to
# kill it there). Then the same round trip with durability = memory. Last,
# replicas restored from two different backups refuse each other's HELLO
# (their cluster ids differ) and the odd one, restored again from the
# others' backup, joins and catches up.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init backup 21
need_cmd redis-cli redis-benchmark
PY=/usr/bin/python3 # Debian's python3 (python3-redis lives there), not another one first on PATH
[ -x "$PY" ] || PY=python3
"$PY" -c 'import redis' 2>/dev/null || skip "python3-redis is not installed (deploy/install-deps.sh installs it)"
HERE=$(cd "$(dirname "$0")" && pwd)

# backup_fields OUT: "slot hash bytes" from rabia-cli backup's output
backup_fields() { printf '%s %s %s' "$(field "$1" slot)" "$(field "$1" state_hash)" "$(field "$1" bytes)"; }

# rabiad_once DIR ARGS...: one rabiad that must refuse to start; its output
# in REFUSAL, exit status in REFUSAL_RC (bounded: a start would be a bug)
rabiad_once() {
  local d=$1
  shift
  REFUSAL_RC=0
  REFUSAL=$(timeout 10 "$RABIAD" --id 1 --members "1=127.0.0.1:$(peer_port 1),2=127.0.0.1:$(peer_port 2),3=127.0.0.1:$(peer_port 3)" \
    --client-listen "127.0.0.1:$(native_port 1)" --resp-listen "127.0.0.1:$(resp_port 1)" --data-dir "$d" "$@" 2>&1) || REFUSAL_RC=$?
  say "rabiad $* -> exit $REFUSAL_RC: $(tail -n 1 <<<"$REFUSAL")"
}

# ---------------------------------------------------------------------------
say "original cluster (durability wal), loaded"
# Every cluster here is held at feature level 0 (kv/README.md "Feature
# levels"): otherwise its replicas agree their build's level through the
# log within a second of starting, so a fresh cluster has applied slots
# before any write and a restored one moves past the backup's slot and
# state hash before they are compared.
HOLD="--max-feature-level 0"
RABIA_EXTRA_ARGS="${RABIA_EXTRA_ARGS:-} $HOLD" cluster_start 3 kv "$IT_DIR/a"
# before any write: refused at once with the reason by every replica (no 120 s wait)
rc=0
t0=$SECONDS
out=$(cli -a "$(all_addrs 3)" backup "$IT_DIR/empty.snap" 2>&1) || rc=$?
expect_eq "backup of a cluster with nothing applied: exit status (3: no replica served it)" "$rc" 3
expect_match "... each replica says why" "$out" "refused the backup: nothing to back up: this replica has applied no slot yet"
((SECONDS - t0 < 10)) || fail "the refusal took $((SECONDS - t0)) s"
[ ! -e "$IT_DIR/empty.snap" ] || fail "a refused backup wrote $IT_DIR/empty.snap"
timeout 60 redis-benchmark -p "$(resp_port 1)" -q -n 4000 -r 1500 -t set,lpush,hset,sadd,zadd,incr -P 16 >/dev/null ||
  fail "redis-benchmark load failed"
redis 2 SET known:str "hello world" >/dev/null
redis 3 HSET known:hash f1 v1 f2 v2 >/dev/null
redis 1 RPUSH known:list a b c d >/dev/null
redis 2 SADD known:set x y z >/dev/null
redis 3 ZADD known:zset 1 one 2.5 two 3 three >/dev/null
redis 1 SET known:bin "$(printf 'a\tb')" >/dev/null
known() { # I: the known keys as replica I answers them, one line
  local i=$1
  printf '%s|' "$(redis "$i" GET known:str)" "$(redis "$i" HGETALL known:hash | tr '\n' ,)" \
    "$(redis "$i" LRANGE known:list 0 -1 | tr '\n' ,)" "$(redis "$i" SMEMBERS known:set | sort | tr '\n' ,)" \
    "$(redis "$i" ZRANGE known:zset 0 -1 WITHSCORES | tr '\n' ,)" "$(redis "$i" GET known:bin | od -An -c | tr -s ' ')"
}
KNOWN=$(known 1)
DBSIZE0=$(redis 1 DBSIZE)
say "loaded: $DBSIZE0 keys; known keys: $KNOWN"
[ "$DBSIZE0" -gt 2000 ] || fail "the load wrote only $DBSIZE0 keys"

say "backup while a writer writes"
bg writer "$PY" "$HERE/acked_writer.py" write w "$(resp_port 1)" "$IT_DIR/acked" "$IT_DIR/stop" --pipeline 4
WRITER=$BG_PID
for ((t = 0; t < 100; t++)); do [ -s "$IT_DIR/acked" ] && [ "$(wc -l <"$IT_DIR/acked")" -ge 200 ] && break; sleep 0.1; done
cp "$IT_DIR/acked" "$IT_DIR/acked_before" # acknowledged (so applied at replica 1) before the backup is asked for
B1=$IT_DIR/backup1.snap
out=$(cli -a "$(native_addr 1)" backup "$B1") || fail "rabia-cli backup failed: $out"
read -r S1 H1 L1 <<<"$(backup_fields "$out")"
say "rabia-cli backup: $(tr '\n' ' ' <<<"$out")"
expect_match "backup output" "$out" "^slot: [0-9]+$"
expect_eq "backup's state machine" "$(field "$out" state_machine)" kv
N_BEFORE=$(wc -l <"$IT_DIR/acked_before")
sleep 1
N_AFTER=$(wc -l <"$IT_DIR/acked")
((N_AFTER > N_BEFORE)) || fail "the writer made no progress around the backup ($N_BEFORE -> $N_AFTER acknowledged)"
ok "writes went on during the backup ($N_BEFORE acknowledged before it was asked, $N_AFTER a second later)"
touch "$IT_DIR/stop"
bg_wait "$WRITER" 30
say "writer: $(tail -n 1 "$IT_DIR/writer.out")"
[ ! -e "$B1".*.tmp ] || fail "a temporary file was left next to the backup"
expect_eq "rabia-cli backup --verify" "$(cli backup --verify "$B1" | grep -E '^(slot|state_hash|bytes):' | tr '\n' ' ')" \
  "slot: $S1 bytes: $L1 state_hash: $H1 "
# the file IS a snapshot file: 40-byte header, then the state
expect_eq "backup file size (header + state)" "$(stat -c %s "$B1")" "$((40 + L1))"
expect_eq "backup file magic" "$(head -c 8 "$B1")" RABIASNP

say "a second backup, of the quiet cluster: its hash is the replicas' state hash at its slot"
wait_converged 30 1 2 3
B2=$IT_DIR/backup2.snap
out=$(cli -a "$(native_addr 3)" backup "$B2") || fail "rabia-cli backup (replica 3) failed: $out"
read -r S2 H2 _ <<<"$(backup_fields "$out")"
expect_eq "second backup's slot (= the cluster's applied slot)" "$S2" "$CONVERGED_APPLIED"
expect_eq "second backup's state hash (= every replica's state_hash at that slot)" "$H2" "$CONVERGED_HASH"

say "a PATH that cannot be written here: refused before any replica is asked, not tried at each"
asked0=$(cat "$IT_DIR"/a/r*.log | grep -c "backup asked by" || true)
for bad in "$IT_DIR" "$IT_DIR/none/x.snap" ""; do
  rc=0
  out=$(cli -a "$(all_addrs 3)" backup "$bad" 2>&1) || rc=$?
  expect_eq "backup '$bad': exit status (2: usage)" "$rc" 2
  expect_match "... says why" "$out" "is a directory: give the backup file's path in it|cannot write in $IT_DIR/none: No such file or directory|PATH is empty"
  if grep -q "trying the next replica" <<<"$out"; then fail "backup '$bad' asked the next replica: $out"; fi
done
expect_eq "backups the replicas were asked for by those" "$(cat "$IT_DIR"/a/r*.log | grep -c "backup asked by" || true)" "$asked0"
# "[v6]:port" as every rabia-cli command takes it (the brackets went to
# getaddrinfo: "Name or service not known"); nothing listens there
out=$(cli -a "[::1]:$(native_port 1)" backup "$IT_DIR/v6.snap" 2>&1) || true
if grep -q "Name or service not known" <<<"$out"; then fail "backup -a [::1]:port: $out"; fi
ok "backup -a [::1]:port dials ::1 ($out)"
# writing fails midway (a file size limit: EFBIG, as a full disk would): one replica asked, exit 1
rc=0
out=$( (trap '' XFSZ; ulimit -f 8; cli -a "$(all_addrs 3)" backup "$IT_DIR/big.snap") 2>&1) || rc=$?
expect_eq "backup beyond the file size limit: exit status (1: not written here)" "$rc" 1
expect_match "... says why" "$out" "File too large"
if grep -q "trying the next replica" <<<"$out"; then fail "a local write error asked the next replica: $out"; fi
expect_eq "backups the replicas were asked for by it" "$(cat "$IT_DIR"/a/r*.log | grep -c "backup asked by" || true)" "$((asked0 + 1))"
[ ! -e "$IT_DIR/big.snap" ] || fail "a failed backup left $IT_DIR/big.snap"
# a full disk (ENOSPC on a small loop-mounted filesystem; root only): the
# message names the backup's folder to free (it said "free space on the
# data-dir's filesystem", a place rabia-cli has none of; found by review)
if [ "$(id -u)" = 0 ] && truncate -s 4M "$IT_DIR/small.img" && mkfs.ext4 -q -F -m 0 "$IT_DIR/small.img" &&
  mkdir -p "$IT_DIR/small" && mount -o loop "$IT_DIR/small.img" "$IT_DIR/small" 2>/dev/null; then
  on_exit "umount -l '$IT_DIR/small'"
  avail=$(df -k --output=avail "$IT_DIR/small" | tail -n 1)
  dd if=/dev/zero of="$IT_DIR/small/fill" bs=1k count=$((avail - L1 / 2048)) status=none 2>/dev/null || true
  sync
  rc=0
  out=$(cli -a "$(all_addrs 3)" backup "$IT_DIR/small/full.snap" 2>&1) || rc=$?
  expect_eq "backup onto a full filesystem: exit status (1: not written here)" "$rc" 1
  expect_match "... names the folder to free" "$out" \
    "No space left on device \(free space on the filesystem of $IT_DIR/small\)"
  expect_eq "... files left in that folder" "$(ls -A "$IT_DIR/small" | grep -v -x -e fill -e lost+found || true)" ""
else
  say "no loop mount here (not root, or no loop devices): the full-disk case is left out"
fi
A_FINAL=$(wc -l <"$IT_DIR/acked")
cluster_stop

# ---------------------------------------------------------------------------
say "a NEW cluster restored from the first backup (slot $S1, hash $H1)"
RABIA_EXTRA_ARGS="--restore $B1 $HOLD" cluster_start 3 kv "$IT_DIR/b"
for i in 1 2 3; do
  s=$(replica_status "$i")
  expect_eq "restored replica $i: applied/state_hash" "$(field "$s" applied)/$(field "$s" state_hash)" "$S1/$H1"
  grep -q "restore: seeded from $B1 at slot $S1" "$IT_DIR/b/r$i.log" || fail "replica $i logged no restore line"
done
for i in 1 2 3; do expect_eq "restored replica $i: known keys" "$(known "$i")" "$KNOWN"; done
n=$(redis 2 DBSIZE)
((n >= DBSIZE0 + N_BEFORE / 4)) || fail "restored DBSIZE $n: fewer than the $DBSIZE0 loaded keys plus the acknowledged writes"
ok "restored DBSIZE $n (loaded $DBSIZE0, and the writer's keys)"
timeout 60 "$PY" "$HERE/acked_writer.py" verify "$(resp_port 2)" "$IT_DIR/acked_before" >"$IT_DIR/verify.out" 2>&1 ||
  fail "a write acknowledged before the backup is missing from the restored cluster: $(head -c 600 "$IT_DIR/verify.out")"
ok "all $N_BEFORE writes acknowledged before the backup are in the restored cluster"
last=$(redis 1 GET w:last)
((last >= 1)) || fail "w:last is '$last' in the restored cluster"
ok "w:last in the restored cluster: $last (the writer acknowledged $A_FINAL keys in all)"

say "the restored cluster takes writes and survives a restart without --restore"
for i in 1 2 3; do redis "$i" SET "after:$i" "v$i" >/dev/null; done
redis 2 HSET known:hash f3 v3 >/dev/null
wait_converged 20 1 2 3
H_AFTER=$CONVERGED_HASH
A_AFTER=$CONVERGED_APPLIED
((A_AFTER > S1)) || fail "applied $A_AFTER did not move past the backup's slot $S1"
cluster_stop
for i in 1 2 3; do RABIA_EXTRA_ARGS="$HOLD" cluster_restart "$i"; done
wait_ready 30 1 2 3
wait_converged 30 1 2 3
expect_eq "restarted restored cluster: applied/state_hash" "$CONVERGED_APPLIED/$CONVERGED_HASH" "$A_AFTER/$H_AFTER"
for i in 1 2 3; do expect_eq "after the restart: after:$i" "$(redis 1 GET "after:$i")" "v$i"; done
expect_eq "after the restart: known:hash" "$(redis 3 HGET known:hash f3)/$(redis 3 HGET known:hash f1)" "v3/v1"
for i in 1 2 3; do
  if grep -q "restore: seeded" <(tail -n 5 "$IT_DIR/b/r$i.log"); then fail "replica $i restored again"; fi
done
cluster_stop

# ---------------------------------------------------------------------------
say "refusals"
rabiad_once "$IT_DIR/b/r1" --restore "$B1"
((REFUSAL_RC != 0)) || fail "restore into a data dir with state: exit 0"
expect_match "restore into a used data dir" "$REFUSAL" "data-dir $IT_DIR/b/r1 already holds state .*restore only into an empty data dir, or remove it"
cp "$B1" "$IT_DIR/flipped.snap"
off=$((40 + L1 / 2))
printf '\xff' | dd of="$IT_DIR/flipped.snap" bs=1 seek="$off" conv=notrunc status=none
cmp -s "$B1" "$IT_DIR/flipped.snap" && printf '\x00' | dd of="$IT_DIR/flipped.snap" bs=1 seek="$off" conv=notrunc status=none
rabiad_once "$IT_DIR/fresh1" --restore "$IT_DIR/flipped.snap"
((REFUSAL_RC != 0)) || fail "restore from a damaged backup: exit 0"
expect_match "restore from a backup with a flipped byte" "$REFUSAL" \
  "flipped.snap: the state bytes \(offsets 40 to $((40 + L1))\) do not match the checksum at offset 24"
[ ! -e "$IT_DIR/fresh1/snap" ] || [ -z "$(ls "$IT_DIR/fresh1/snap")" ] || fail "a damaged backup left a snapshot behind"
[ ! -e "$IT_DIR/fresh1/incarnation" ] || fail "a refused restore left an incarnation file (a retry would be refused)"
rc=0
cli backup --verify "$IT_DIR/flipped.snap" >/dev/null 2>&1 || rc=$?
expect_eq "rabia-cli backup --verify of the damaged file: exit" "$rc" 1
head -c $((40 + L1 - 1000)) "$B1" >"$IT_DIR/short.snap"
rabiad_once "$IT_DIR/fresh2" --restore "$IT_DIR/short.snap"
((REFUSAL_RC != 0)) || fail "restore from a truncated backup: exit 0"
expect_match "restore from a truncated backup" "$REFUSAL" "short.snap: truncated at offset $((40 + L1 - 1000)): .* 1000 bytes short"
rabiad_once "$IT_DIR/fresh3" --restore "$B1" --state-machine counter --resp-listen off
((REFUSAL_RC != 0)) || fail "restore of a kv backup into a counter replica: exit 0"
expect_match "restore into another state machine" "$REFUSAL" "backup1.snap is a backup of the 'kv' state machine, this replica runs 'counter'"
rabiad_once "$IT_DIR/fresh4" --restore "$IT_DIR/nonexistent.snap"
expect_match "restore from a missing file" "$REFUSAL" "nonexistent.snap: No such file or directory"
rabiad_once "$IT_DIR/fresh5" --restore "$B1" --rejoin
expect_match "restore with --rejoin" "$REFUSAL" "--restore and --rejoin together"
# --check-config makes the same checks of restore-from as the start (it said
# "valid" for a missing or damaged backup, and the start then refused)
for bad in "$IT_DIR/b/r1 --restore $B1|already holds state" "$IT_DIR/fresh1 --restore $IT_DIR/flipped.snap|do not match the checksum" \
  "$IT_DIR/fresh2 --restore $IT_DIR/short.snap|short.snap: truncated" "$IT_DIR/fresh4 --restore $IT_DIR/nonexistent.snap|No such file" \
  "$IT_DIR/fresh3 --restore $B1 --state-machine counter --resp-listen off|this replica runs 'counter'"; do
  # shellcheck disable=SC2086
  rabiad_once ${bad%%|*} --check-config
  expect_eq "--check-config of a bad restore ($(basename "${bad%%|*}")): exit" "$REFUSAL_RC" 2
  expect_match "--check-config of a bad restore" "$REFUSAL" "invalid configuration: .*${bad#*|}"
done
rabiad_once "$IT_DIR/fresh7" --restore "$B1" --check-config
expect_eq "--check-config of a good restore: exit" "$REFUSAL_RC" 0
expect_match "--check-config of a good restore" "$REFUSAL" "restore-from $B1: verified, a 'kv' state at slot $S1 "
[ ! -e "$IT_DIR/fresh7" ] || fail "--check-config created the data dir $IT_DIR/fresh7"

# ---------------------------------------------------------------------------
# A restore killed before its copy of the backup took the snapshot's name
# (strace makes that rename fail and kills rabiad there, as kill -9 or a
# power cut during the copy would): the data dir must still count as empty,
# and the retry restores. Before, the incarnation file was written first and
# the retry was refused ("it ran before"). Needs strace, else skipped.
if command -v strace >/dev/null; then
  say "a restore killed during its copy: the retry restores"
  d=$IT_DIR/fresh6
  # the copy's temporary name (replica/backup.c: tag 0): strace -P matches a
  # rename by its first path
  snapname=$(printf '%s/snap/%020d.snap.0.tmp' "$d" "$S1")
  members="1=127.0.0.1:$(peer_port 1),2=127.0.0.1:$(peer_port 2),3=127.0.0.1:$(peer_port 3)"
  rc=0
  timeout 30 strace -f -qq -o "$IT_DIR/strace.out" -P "$snapname" -e trace=rename,renameat,renameat2 \
    -e inject=rename,renameat,renameat2:error=EIO:signal=SIGKILL \
    "$RABIAD" --id 1 --members "$members" --client-listen "127.0.0.1:$(native_port 1)" \
    --resp-listen "127.0.0.1:$(resp_port 1)" --data-dir "$d" --restore "$B1" $HOLD $(it_tls_args 1) >"$IT_DIR/killed.out" 2>&1 || rc=$?
  # a rabiad strace did not stop (timeout ends strace, which then lets its
  # tracee go on): stopped by the exit trap
  for p in $(pgrep -f -- "--data-dir $d --restore" || true); do IT_DAEMON_PIDS+=("$p"); done
  grep -q 'killed by SIGKILL' "$IT_DIR/strace.out" || fail "strace did not stop the restore at its rename: $(tail -n 3 "$IT_DIR/strace.out")"
  ok "rabiad --restore killed at the rename of its copy (exit $rc); left: $(cd "$d" && find . -type f | sort | tr '\n' ' ')"
  "$RABIAD" --id 1 --members "$members" --client-listen "127.0.0.1:$(native_port 1)" \
    --resp-listen "127.0.0.1:$(resp_port 1)" --data-dir "$d" --restore "$B1" $HOLD $(it_tls_args 1) >"$IT_DIR/retry.log" 2>&1 &
  retry=$!
  IT_DAEMON_PIDS+=("$retry") # stopped by the exit trap too, should a check below fail
  # until its exec the PID runs bash, and the loop below would take that for
  # a retry that exited (a clean-clone CI run failed so under load)
  wait_exec "$retry" "$RABIAD" || true
  for ((t = 0; t < 100; t++)); do
    s=$(replica_status 1)
    [ -n "$(field "$s" applied)" ] && break
    pid_runs "$retry" "$RABIAD" || break
    sleep 0.1
  done
  if ! pid_runs "$retry" "$RABIAD"; then
    fail "the retry of an interrupted restore did not start: $(tail -n 1 "$IT_DIR/retry.log")"
  fi
  expect_eq "retried restore: applied/state_hash" "$(field "$s" applied)/$(field "$s" state_hash)" "$S1/$H1"
  stop_pids "$RABIAD" "$retry"
fi

# ---------------------------------------------------------------------------
say "durability = memory: the same round trip"
RABIA_EXTRA_ARGS="--durability memory $HOLD" cluster_start 3 kv "$IT_DIR/c"
timeout 60 redis-benchmark -p "$(resp_port 2)" -q -n 1000 -r 500 -t set,hset,lpush -P 8 >/dev/null || fail "redis-benchmark (memory)"
redis 1 SET mem:k memval >/dev/null
wait_converged 20 1 2 3
B3=$IT_DIR/backup3.snap
out=$(cli -a "$(native_addr 2)" backup "$B3") || fail "rabia-cli backup (memory) failed: $out"
read -r S3 H3 _ <<<"$(backup_fields "$out")"
expect_eq "memory backup: slot/hash = the replicas' applied/state_hash" "$S3/$H3" "$CONVERGED_APPLIED/$CONVERGED_HASH"
DB3=$(redis 1 DBSIZE)
cluster_stop
RABIA_EXTRA_ARGS="--durability memory --restore $B3 $HOLD" cluster_start 3 kv "$IT_DIR/d"
wait_converged 20 1 2 3
expect_eq "memory restore: applied/state_hash" "$CONVERGED_APPLIED/$CONVERGED_HASH" "$S3/$H3"
expect_eq "memory restore: mem:k" "$(redis 3 GET mem:k)" memval
expect_eq "memory restore: DBSIZE" "$(redis 2 DBSIZE)" "$DB3"
redis 1 SET mem:after 1 >/dev/null
expect_eq "memory restore: a write after it" "$(redis 2 GET mem:after)" 1
cluster_stop

# ---------------------------------------------------------------------------
# Replicas restored from different backups must not form one cluster: the
# one seeded from the newer backup holds slots the others decide again with
# other writes, and every later slot applies to different states (before,
# nothing told them apart). A restored cluster's id comes from the members
# and the backup's slot and state hash, so their HELLOs are refused. The
# same replica restored again from the others' backup joins and catches up.
# (Over TLS a dial its peer refuses ends in a handshake cut short: tls_suite
# leaves the logs in mixed-backups/ out of its check for refused certificates.)
say "replicas restored from different backups refuse each other"
((S1 > S3)) || fail "backup1 (slot $S1) is not newer than backup3 (slot $S3): the check below needs it"
# replicas 2 and 3 from backup3, replica 1 from backup1, each a first start
# (replica 1 never ran in backup3's cluster: restored again from the right
# file it is a new member there, not one back without its data dir)
export RABIA_CLUSTER_DIR=$IT_DIR/mixed-backups
cluster_dir_new 3 kv
RABIA_EXTRA_ARGS="--restore $B3 $HOLD" cluster_restart 2
RABIA_EXTRA_ARGS="--restore $B3 $HOLD" cluster_restart 3
RABIA_EXTRA_ARGS="--restore $B1 $HOLD" cluster_restart 1
wait_converged 20 2 3
ID_B3=$(cluster_id_of 2)
for ((t = 0; t < 100; t++)); do
  [ "$(field "$(replica_status 1)" applied)" = "$S1" ] && break
  sleep 0.1
done
expect_eq "replica 1 restored from the other backup: applied/state_hash" \
  "$(field "$(replica_status 1)" applied)/$(field "$(replica_status 1)" state_hash)" "$S1/$H1"
ID_B1=$(cluster_id_of 1)
[ -n "$ID_B3" ] && [ -n "$ID_B1" ] && [ "$ID_B3" != "$ID_B1" ] ||
  fail "cluster ids of the two restores: '$ID_B3' and '$ID_B1' (they must differ)"
ok "restored from $(basename "$B3") (slot $S3): cluster $ID_B3; from $(basename "$B1") (slot $S1): cluster $ID_B1"
redis 2 SET diff:k v1 >/dev/null
expect_eq "replicas 2 and 3 (one backup) serve writes" "$(redis 3 GET diff:k)" v1
# each side dials the other about every 100 ms: both refuse within a few seconds
for ((t = 0; t < 100; t++)); do
  grep -q "refusing 127.0.0.1:[0-9]*: cluster id $ID_B1 is not ours ($ID_B3)" "$IT_DIR/mixed-backups/r2.log" &&
    grep -q "refusing 127.0.0.1:[0-9]*: cluster id $ID_B3 is not ours ($ID_B1)" "$IT_DIR/mixed-backups/r1.log" && break
  sleep 0.1
done
expect_match "replica 2 refuses replica 1" "$(grep -m1 'is not ours' "$IT_DIR/mixed-backups/r2.log")" \
  "cluster id $ID_B1 is not ours \($ID_B3\).*restored \(--restore\) from different backups get different ids"
expect_match "replica 1 refuses replicas 2 and 3" "$(grep -m1 'is not ours' "$IT_DIR/mixed-backups/r1.log")" "cluster id $ID_B3 is not ours \($ID_B1\)"
s1=$(replica_status 1)
expect_eq "replica 1 still holds only its backup: applied" "$(field "$s1" applied)" "$S1"
expect_match "replica 1 reaches no peer" "$s1" "unreachable"
# the remedy: the same file as the others; it catches up from its peers
cluster_kill 1
rm -rf "$IT_DIR/mixed-backups/r1"
mv "$IT_DIR/mixed-backups/r1.log" "$IT_DIR/mixed-backups/r1-other-backup.log"
RABIA_EXTRA_ARGS="--restore $B3 $HOLD" cluster_restart 1
wait_converged 30 1 2 3
expect_eq "replica 1 restored again from $(basename "$B3"): cluster id" "$(cluster_id_of 1)" "$ID_B3"
expect_eq "... and caught up: diff:k at replica 1" "$(redis 1 GET diff:k)" v1
cluster_stop
