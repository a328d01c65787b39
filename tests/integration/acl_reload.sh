#!/usr/bin/env bash
# acl_reload: users changed without a restart (README "Authentication"):
# SIGHUP makes each replica read requirepass and its acl-file again, as
# Redis's ACL LOAD.
#   - a 3-replica kv cluster with requirepass and an acl-file (app, ro);
#     python3-redis connections as app and as default on replica 1;
#   - the file changes (app's password rotated, ro removed, new added) and
#     every replica gets SIGHUP: each logs the users it took and the
#     connections it closed; app's open connection is closed (its next
#     command fails), default's stays; the old password and the removed
#     user are refused (WRONGPASS) on every replica, the new ones log in over
#     RESP and the native protocol;
#   - a file with a bad rule: the reload is refused, naming file:line, and
#     the users before it keep working;
#   - ACL LOAD over RESP does the same at the replica asked: refused with a
#     bad file (file:line in the error), NOPERM without @admin, and after it
#     the file's users log in there while another replica keeps its own.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init acl_reload 38
tls_refuse "python3-redis and rabia-cli connect without certificates here; integration.tls covers SIGHUP over TLS"
need_cmd redis-cli
need_py_redis

D=$IT_DIR
cat >"$D/users.acl" <<'EOF'
user app on >apppw ~app:* +@all
user ro on >ropw ~* +@read +@connection
EOF
export RABIA_PASSWORD=defpw # rabia-cli (lib.sh's status and convergence checks)
export RABIA_EXTRA_ARGS="--requirepass=defpw --acl-file=$D/users.acl"
cluster_start 3 kv
A=$(all_addrs 3)

wait_log() { # wait_log FILE ERE SECONDS
  local k
  for ((k = 0; k < $3 * 10; k++)); do grep -Eq -- "$2" "$1" && return 0; sleep 0.1; done
  fail "no line matching /$2/ in $1 within $3 s (last lines: $(tail -n 5 "$1" | tr '\n' ' '))"
}
login() { # login I USER PASS: the reply to AUTH on a fresh RESP connection
  redis-cli -p "$(resp_port "$1")" --no-auth-warning AUTH "$2" "$3" 2>&1 | head -n 1
}

# connections open across the reload: app's and default's, on replica 1
cat >"$D/hold.py" <<'EOF'
import sys, time, redis
port = int(sys.argv[1])
app = redis.Redis(port=port, username="app", password="apppw", socket_timeout=10)
dflt = redis.Redis(port=port, password="defpw", socket_timeout=10)
print("before", app.set("app:1", "x"), dflt.ping(), flush=True)
open(sys.argv[2], "w").close()   # ready: reload now
while not __import__("os").path.exists(sys.argv[3]):
    time.sleep(0.05)
try:
    app.get("app:1")
    print("app: still open", flush=True)
except redis.exceptions.ConnectionError:
    print("app: closed", flush=True)
except redis.exceptions.ResponseError as e:  # redis-py reconnected: the old password
    print("app: closed" if "WRONGPASS" in str(e) else "app: %s" % e, flush=True)
print("default:", dflt.ping(), dflt.get("app:1"), flush=True)
EOF
bg hold "$PY" "$D/hold.py" "$(resp_port 1)" "$D/ready" "$D/reloaded"
for ((k = 0; k < 100; k++)); do [ -e "$D/ready" ] && break; sleep 0.1; done
[ -e "$D/ready" ] || fail "the held connections did not come up: $(cat "$D/hold.out")"
expect_eq "app and default before the reload" "$(head -n 1 "$D/hold.out")" "before True True"

cat >"$D/users.acl" <<'EOF'
user app on >apppw2 ~app:* +@all
user new on >newpw ~* +@all
EOF
for i in 1 2 3; do kill -HUP "$(replica_pid "$i")"; done
for i in 1 2 3; do
  wait_log "$RABIA_CLUSTER_DIR/r$i.log" "reload: 3 users from requirepass and $D/users.acl; closed [0-9]+ connections? of users other than default" 10
done
ok "replicas 1-3 took the new users: $(grep -m1 'reload: 3 users' "$RABIA_CLUSTER_DIR/r1.log" | cut -c26-)"
touch "$D/reloaded"
bg_wait "$BG_PID" 20
expect_eq "app's connection open across the reload, then default's" "$(tail -n 2 "$D/hold.out")" \
  "app: closed
default: True b'x'"
for i in 1 2 3; do
  expect_eq "replica $i: app with the old password" "$(login "$i" app apppw)" \
    "WRONGPASS invalid username-password pair or user is disabled."
  expect_eq "replica $i: ro, removed" "$(login "$i" ro ropw)" "WRONGPASS invalid username-password pair or user is disabled."
  expect_eq "replica $i: app with the new password" "$(login "$i" app apppw2)" "OK"
  expect_eq "replica $i: new" "$(login "$i" new newpw)" "OK"
done
expect_eq "native: rabia-cli as app with the new password" \
  "$(RABIA_USER=app RABIA_PASSWORD=apppw2 cli -a "$A" kv set app:2 y)" "OK"
rc=0
out=$(RABIA_USER=app RABIA_PASSWORD=apppw timeout 20 "$RABIA_CLI" -a "$A" kv set app:3 z 2>&1) || rc=$?
expect_match "native: rabia-cli as app with the old password is refused" "$rc:$out" '^[1-9][0-9]*:.*WRONGPASS'

# a file that does not parse: nothing is taken
cat >"$D/users.acl" <<'EOF'
user app on >apppw3 ~app:* +@all
user bad on >pw +@nosuchcategory
EOF
kill -HUP "$(replica_pid 2)"
wait_log "$RABIA_CLUSTER_DIR/r2.log" "reload \(SIGHUP\): $D/users.acl:2: .*the running configuration stays" 10
ok "a bad acl-file is refused at replica 2: $(grep -m1 'users.acl:2' "$RABIA_CLUSTER_DIR/r2.log" | cut -c1-200)"
expect_eq "replica 2: app with the password before the bad file" "$(login 2 app apppw2)" "OK"
expect_eq "replica 2: app with the bad file's password" "$(login 2 app apppw3)" \
  "WRONGPASS invalid username-password pair or user is disabled."
expect_eq "SET as new through replica 2" "$(redis-cli -p "$(resp_port 2)" --user new --pass newpw --no-auth-warning SET k v)" "OK"

# ACL LOAD over RESP: the same reload for the replica asked (each has its own file)
as() { # as I USER PASS CMD...
  local i=$1 u=$2 p=$3
  shift 3
  redis-cli -p "$(resp_port "$i")" --user "$u" --pass "$p" --no-auth-warning "$@" 2>&1 | head -n 1
}
expect_match "ACL LOAD with the bad file (replica 1)" "$(as 1 new newpw ACL LOAD)" "^ERR $D/users.acl:2: user 'bad': unknown command category"
expect_eq "replica 1 keeps its users" "$(login 1 app apppw2)" "OK"
cat >"$D/users.acl" <<'EOF'
user app on >apppw3 ~app:* +@all
user new on >newpw ~* +@all
user ops on >opspw ~* +@all -@admin
EOF
expect_eq "replica 1: ops, not loaded yet" "$(login 1 ops opspw)" "WRONGPASS invalid username-password pair or user is disabled."
expect_eq "ACL LOAD as new" "$(as 1 new newpw ACL LOAD)" "OK"
expect_eq "replica 1: ops after the ACL LOAD" "$(login 1 ops opspw)" "OK"
expect_eq "ACL LOAD as ops (no @admin)" "$(as 1 ops opspw ACL LOAD)" \
  "NOPERM this user has no permissions to run the 'acl|load' command"
expect_eq "replica 1: app with the password of the file ACL LOAD read" "$(login 1 app apppw3)" "OK"
expect_eq "replica 1: default keeps requirepass" "$(login 1 default defpw)" "OK"
expect_eq "replica 3 (not asked) keeps app's password from the SIGHUP" "$(login 3 app apppw2)" "OK"
wait_log "$RABIA_CLUSTER_DIR/r1.log" "ACL LOAD from 127\.0\.0\.1:[0-9]+ \(user 'new'\): 4 users from $D/users.acl" 10
ok "replica 1 logged the ACL LOAD"

# A transaction queued under the old rules: its EXEC checks the queued
# commands against the new ones ("ACL rules changed", as Redis 7.0 says it;
# it ran as queued before; here the whole transaction is discarded). default
# loses @write while one connection has SET queued and another SELECT and GET.
cat >"$D/multi.py" <<'EOF'
import sys, redis
port, acl, newtext = int(sys.argv[1]), sys.argv[2], sys.argv[3]
w = redis.Redis(port=port, password="defpw", single_connection_client=True, socket_timeout=10)
r = redis.Redis(port=port, password="defpw", single_connection_client=True, socket_timeout=10)
adm = redis.Redis(port=port, username="new", password="newpw", socket_timeout=10)
adm.set("mr:key", "before")
for c, cmd in ((w, ("SET", "mr:key", "after")), (r, ("GET", "mr:key"))):
    c.execute_command("MULTI")
    if c is r:  # a queued SELECT is no command to check again (it was refused)
        c.execute_command("SELECT", "0")
    print("queued", c.execute_command(*cmd))  # (redis-py reads SET's QUEUED as False)
open(acl, "w").write(newtext)
print("ACL LOAD", adm.execute_command("ACL", "LOAD"))
try:
    print("EXEC set", w.execute_command("EXEC"))
except redis.exceptions.ResponseError as e:
    print("EXEC set:", e)
print("EXEC get", r.execute_command("EXEC"))
print("mr:key", adm.get("mr:key"))
EOF
out=$("$PY" "$D/multi.py" "$(resp_port 1)" "$D/users.acl" "user default on >defpw ~* -@all +@read +@connection +@transaction
user new on >newpw ~* +@all
" 2>&1) || fail "multi.py: $out"
expect_eq "EXEC after an ACL LOAD that took SET away: refused, nothing written; a GET-only one runs" "$out" \
  "queued False
queued b'QUEUED'
ACL LOAD b'OK'
EXEC set: Transaction discarded because of: NOPERM ACL rules changed between the moment the transaction was accumulated and the EXEC call: 'set' is no longer allowed (the command)
EXEC get [b'OK', b'before']
mr:key b'before'"

say "a SIGHUP while a replica starts (waiting for its data dir's lock, as under a restart) is taken once it runs"
pid3=$(replica_pid 3)
m="1=127.0.0.1:$(peer_port 1),2=127.0.0.1:$(peer_port 2),3=127.0.0.1:$(peer_port 3)"
# shellcheck disable=SC2086
"$RABIAD" --id 3 --members "$m" --client-listen "127.0.0.1:$(native_port 3)" --resp-listen "127.0.0.1:$(resp_port 3)" \
  --data-dir "$RABIA_CLUSTER_DIR/r3" --state-machine kv $RABIA_EXTRA_ARGS >>"$D/r3b.log" 2>&1 &
pid3b=$!
IT_DAEMON_PIDS+=("$pid3b")
wait_log "$D/r3b.log" "is locked; waiting up to 5 s" 5
printf 'user default on >defpw ~* +@all\nuser late on >latepw ~* +@all\n' >"$D/users.acl"
kill -HUP "$pid3b" # it read the file before: the new user is only in the reload
sleep 0.2
stop_pids "$RABIAD" "$pid3"
echo "$pid3b" >"$RABIA_CLUSTER_DIR/r3.pid"
wait_log "$D/r3b.log" "reload: 2 users from requirepass and" 10
expect_eq "replica 3, SIGHUP while it started: AUTH late latepw" "$(login 3 late latepw)" OK

wait_converged 30 1 2 3
all_alive 3
