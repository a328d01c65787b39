#!/usr/bin/env bash
# replace_member: a machine lost for good is replaced by a new one at another
# address, as README "Replacing a machine" says, with the cluster serving
# throughout and no survivor restarted.
#
# Three replicas from config files (durability wal). Replica 3 is killed
# with -9 and its data dir deleted; writes go on. A new replica 3 listens
# for peers at another port (a new machine's address):
#  - started without the cluster's id, it derives another one from the new
#    members list: the survivors refuse its HELLO and say what to set;
#    started again on that data dir with cluster-id, it is refused naming
#    both ids (the data dir kept the id it first ran with);
#  - with an empty data dir, cluster-id (INFO server rabia_cluster_id) and
#    --rejoin it starts; the survivors' config files get the new address
#    and SIGHUP: they log the change and dial it, and the three converge.
# Then replica 1 is killed: 2 and the new 3 must form a quorum alone (so 2
# really talks to the new address), and replica 1 restarts with the new
# members list and no cluster-id: its data dir's cluster-id file keeps the
# id (before that file, the derived id changed with the list and its log
# refused to open, as it still does without the file). SIGHUP with 5
# members, a moved own address or another cluster-id is refused with the
# running configuration kept; a damaged cluster-id file stops a start
# naming the file. Every write acknowledged is read back at the end.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init replace_member 36
tls_refuse "starts its replicas from its own config files, without certificates"
mkdir -p "$RABIA_CLUSTER_DIR"
NEW_PEER=$((RABIA_PEER_BASE + 4)) # replica 3's new machine

members() { # members OLD|NEW
  local p3=$(($(peer_port 3)))
  [ "$1" = NEW ] && p3=$NEW_PEER
  echo "1=127.0.0.1:$(peer_port 1),2=127.0.0.1:$(peer_port 2),3=127.0.0.1:$p3"
}
conf() { # conf I OLD|NEW [extra line]: replica I's config file
  {
    echo "id $1"
    echo "members $(members "$2")"
    echo "client-listen 127.0.0.1:$(native_port "$1")"
    echo "resp-listen 127.0.0.1:$(resp_port "$1")"
    echo "data-dir $RABIA_CLUSTER_DIR/r$1"
    echo "state-machine kv"
    [ -z "${3:-}" ] || echo "$3"
  } >"$IT_DIR/r$1.conf"
}
start() { # start I [args]: rabiad --config, PID in the cluster dir (cleanup stops it)
  local i=$1
  shift
  "$RABIAD" --config "$IT_DIR/r$i.conf" "$@" >>"$RABIA_CLUSTER_DIR/r$i.log" 2>&1 &
  echo $! >"$RABIA_CLUSTER_DIR/r$i.pid"
  disown $! # no job notice when a test kills it
  remember_pids
}
kill9() {
  local pid
  pid=$(replica_pid "$1")
  kill -KILL "$pid"
  local k
  for ((k = 0; k < 50; k++)); do pid_runs "$pid" "$RABIAD" || break; sleep 0.05; done
  pid_runs "$pid" "$RABIAD" && fail "replica $1 (pid $pid) survived kill -9"
  say "kill -9 replica $1 (pid $pid)"
}
wait_log() { # wait_log FILE PATTERN SECONDS
  local k
  for ((k = 0; k < $3 * 10; k++)); do grep -q -- "$2" "$1" && return 0; sleep 0.1; done
  fail "no line matching '$2' in $1 within $3 s (last lines: $(tail -n 5 "$1" | tr '\n' ' '))"
}
# put FROM TO REPLICA: SET key:i val:i for i in FROM..TO through one replica,
# every reply OK
put() {
  local out
  out=$(for ((k = $1; k <= $2; k++)); do echo "SET key:$k val:$k"; done | timeout 30 redis-cli -p "$(resp_port "$3")")
  expect_eq "SET key:$1..key:$2 through replica $3" "$(grep -c '^OK$' <<<"$out")" "$(($2 - $1 + 1))"
}

for i in 1 2 3; do conf "$i" OLD; start "$i"; done
wait_ready 20 1 2 3
put 1 200 1
ID=$(redis 1 INFO server | tr -d '\r' | sed -n 's/^rabia_cluster_id:0x//p')
expect_match "INFO server rabia_cluster_id (0x and the id)" "$ID" '^[0-9a-f]{16}$'
expect_eq "the id replica 1 logged at start" "$(cluster_id_of 1)" "$ID"
expect_eq "data-dir/cluster-id of replica 2" "$(cat "$RABIA_CLUSTER_DIR/r2/cluster-id")" "$ID"

# the machine of replica 3 is lost
kill9 3
rm -rf "$RABIA_CLUSTER_DIR/r3"
put 201 400 1

# its replacement, first without the cluster's id
conf 3 NEW
start 3 --rejoin
wait_log "$RABIA_CLUSTER_DIR/r1.log" "is not ours ($ID).*needs the running cluster's id as cluster-id" 10
ok "a replacement without cluster-id is refused by replica 1, saying what to set"
stop_pids "$RABIAD" "$(replica_pid 3)"
conf 3 NEW "cluster-id 0x$ID"
rc=0
timeout 20 "$RABIAD" --config "$IT_DIR/r3.conf" --rejoin >"$IT_DIR/r3-refused.out" 2>&1 || rc=$?
expect_eq "exit status of a start on a data dir of another cluster id" "$rc" 1
expect_match "its message" "$(cat "$IT_DIR/r3-refused.out")" "belongs to cluster [0-9a-f]{16} \(its cluster-id file\), but cluster-id is $ID"
rm -rf "$RABIA_CLUSTER_DIR/r3"
start 3 --rejoin
wait_log "$RABIA_CLUSTER_DIR/r3.log" "cluster $ID" 10
# the survivors learn the new address without a restart
for i in 1 2; do conf "$i" NEW; kill -HUP "$(replica_pid "$i")"; done
for i in 1 2; do
  wait_log "$RABIA_CLUSTER_DIR/r$i.log" "replica 3's address changed (reload): 127.0.0.1:$(peer_port 3) -> 127.0.0.1:$NEW_PEER" 10
done
ok "replicas 1 and 2 took replica 3's new address on SIGHUP"
wait_ready 30 1 2 3
put 401 500 2
wait_converged 60 1 2 3

# 2 and the new 3 alone: a quorum only if 2 sends to the new address
kill9 1
put 501 600 2
wait_converged 30 2 3
# replica 1 restarts with the new list and no cluster-id. Without its data
# dir's cluster-id file (as an older build left it) the id derived from the
# new list is not the one its log was written with: refused, naming the id
mv "$RABIA_CLUSTER_DIR/r1/cluster-id" "$IT_DIR/cluster-id.r1"
rc=0
timeout 20 "$RABIAD" --config "$IT_DIR/r1.conf" >"$IT_DIR/r1-no-id.out" 2>&1 || rc=$?
expect_eq "exit status of a restart with a changed members list and no cluster-id file" "$rc" 1
expect_match "its message" "$(cat "$IT_DIR/r1-no-id.out")" "written by replica 1 of cluster $ID, .*set cluster-id 0x$ID"
# with the file, the data dir's id
mv "$IT_DIR/cluster-id.r1" "$RABIA_CLUSTER_DIR/r1/cluster-id"
start 1
wait_log "$RABIA_CLUSTER_DIR/r1.log" "keeping the cluster id $ID from" 10
wait_ready 30 1 2 3
expect_eq "replica 1's cluster id after the restart" "$(redis 1 INFO server | tr -d '\r' | sed -n 's/^rabia_cluster_id:0x//p')" "$ID"
wait_converged 60 1 2 3

# reloads that cannot be taken: logged, the running configuration stays
conf 2 NEW
sed -i "s/^members .*/members $(members NEW),4=127.0.0.1:$((RABIA_PEER_BASE + 5)),5=127.0.0.1:$((RABIA_PEER_BASE + 6))/" "$IT_DIR/r2.conf"
kill -HUP "$(replica_pid 2)"
wait_log "$RABIA_CLUSTER_DIR/r2.log" "reload (SIGHUP): members lists 5 replicas, this cluster has 3.*the running configuration stays" 10
conf 2 NEW
sed -i "s/^members .*/members 1=127.0.0.1:$(peer_port 1),2=127.0.0.1:$((RABIA_PEER_BASE + 7)),3=127.0.0.1:$NEW_PEER/" "$IT_DIR/r2.conf"
kill -HUP "$(replica_pid 2)"
wait_log "$RABIA_CLUSTER_DIR/r2.log" "reload (SIGHUP): this replica's own address changed" 10
conf 2 NEW "cluster-id 0x1"
kill -HUP "$(replica_pid 2)"
wait_log "$RABIA_CLUSTER_DIR/r2.log" "reload (SIGHUP): cluster-id 0000000000000001 is not this cluster's ($ID)" 10
ok "SIGHUP with 5 members, with a moved own address, with another cluster-id: refused and logged"
conf 2 NEW
put 601 650 2

# a damaged cluster-id file stops a start, naming it
stop_pids "$RABIAD" "$(replica_pid 2)"
cp "$RABIA_CLUSTER_DIR/r2/cluster-id" "$IT_DIR/cluster-id.good"
printf 'not an id\n' >"$RABIA_CLUSTER_DIR/r2/cluster-id"
rc=0
timeout 20 "$RABIAD" --config "$IT_DIR/r2.conf" >"$IT_DIR/r2-damaged.out" 2>&1 || rc=$?
expect_eq "exit status with a damaged cluster-id file" "$rc" 1
expect_match "its message" "$(cat "$IT_DIR/r2-damaged.out")" "r2/cluster-id is damaged .*rabia_cluster_id"
cp "$IT_DIR/cluster-id.good" "$RABIA_CLUSTER_DIR/r2/cluster-id"
start 2
wait_ready 30 1 2 3

# every acknowledged write, read back through the replacement
got=$(for ((k = 1; k <= 650; k++)); do echo "GET key:$k"; done | timeout 30 redis-cli -p "$(resp_port 3)")
bad=$(paste <(seq 1 650) <(printf '%s\n' "$got") | awk '$2 != "val:" $1' | head -n 3)
expect_eq "the 650 acknowledged writes read back through the new replica 3 (first wrong: ${bad:-none})" "$bad" ""
wait_converged 60 1 2 3
