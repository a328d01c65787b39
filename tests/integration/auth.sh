#!/usr/bin/env bash
# Authentication and access control (replica/README.md "Authentication"):
# a 3-replica kv cluster with a cluster secret, requirepass and an ACL file
# (a read-only user, a key-pattern user, a disabled user, a +@read-only user).
#   - bad configurations refused at start with the file and the fix
#     (missing, world-readable, too short secret; a bad ACL rule: file:line;
#     also by rabiad --check-config);
#   - RESP: one connection's command sequence (NOAUTH, unknown command,
#     HELLO without AUTH, WRONGPASS, NOPERM for a command and for keys (and
#     CLIENT LIST, KILL and NO-EVICT for a user without @admin), MULTI
#     with a refused command, ACL WHOAMI, RESET...) answers byte for byte as
#     a real redis-server 7.0.15 with the same users; the failed AUTHs are
#     logged with the address and user and counted in INFO (auth_failures);
#     a connection's AUTHs after failures are slowed down (100 ms doubling)
#     and the tenth failure closes it; redis-cli and python3-redis log in;
#     before AUTH an array of over 10 arguments or a bulk over 16 KiB is a
#     protocol error and a close, as Redis (the same bytes from both);
#     30 connections failing at once: 20 log lines, one summary, 30 counted;
#   - native: rabia-cli without a password, with a wrong one, as the
#     read-only and the key-pattern user (NOAUTH, WRONGPASS, NOPERM);
#     rabia-cli backup refused the same way (and for ro and app, which lack
#     +@all or allkeys: NOPERM), logged by the replicas, and taken with the
#     default user's password (then --verify); frames
#     by hand: a request before CLIENT_AUTH, the AUTH after a failure
#     answered only after the delay, two AUTHs at once closing the connection;
#     a frame over 33 KiB before CLIENT_AUTH closing it (logged), a 20 KiB
#     wrong password answered, a 200 KiB value accepted after CLIENT_AUTH;
#   - peers: a forger without the secret (HELLO as replica 2, a made-up
#     proof; a VOTE instead of the handshake) is refused and closed while the
#     real replica 2 stays connected; replica 3 restarted with the wrong
#     secret, then with none, is
#     refused with a log line on the good replicas and on itself while 1 and
#     2 keep serving; with the right secret it rejoins and converges.
# Ports: slot 19 for the cluster, slot 46 for the refused starts and redis-server.
source "$(dirname "$0")/lib.sh"
it_init auth 19
tls_refuse "it speaks RESP and native frames on raw sockets (the byte-for-byte comparison with redis-server, frames by hand); integration.backup_tls_auth covers users over TLS"
need_cmd redis-cli python3
# Debian's python3 (python3-redis lives there), not another one first on PATH
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

D=$IT_DIR
head -c 32 /dev/urandom | base64 >"$D/secret"
chmod 600 "$D/secret"
cat >"$D/users.acl" <<'EOF'
# test users (Redis ACL syntax)
user ro on >ropw ~* +@read +@connection
user app on >apppw ~app:* +@all
user off1 off >offpw ~* +@all
user onlyread on >p ~* +@read
user ops on >opspw ~* +@all -@admin
user quiet on >qpw ~* resetchannels +@all
EOF
export RABIA_PASSWORD=defpw # rabia-cli (lib.sh's status and convergence checks)
export RABIA_EXTRA_ARGS="--cluster-secret-file=$D/secret --requirepass=defpw --acl-file=$D/users.acl"

# ---------------------------------------------------------------------------
say "bad configurations are refused at start"
B=$((${RABIA_IT_PORT_BASE:-20000} + 100 * 46)) # a slot of its own (lib.sh): these rabiads may bind before they refuse
refused_start() { # refused_start ARGS...: rabiad's exit status and stderr
  mkdir -p "$D/bad"
  rm -rf "$D/bad/data"
  timeout 20 "$RABIAD" --id 1 --members "1=127.0.0.1:$((B + 41)),2=127.0.0.1:$((B + 42)),3=127.0.0.1:$((B + 43))" \
    --client-listen "127.0.0.1:$((B + 21))" --resp-listen "127.0.0.1:$((B + 1))" --data-dir "$D/bad/data" \
    --state-machine kv "$@" 2>&1
  echo "exit $?"
}
out=$(refused_start --cluster-secret-file="$D/nonexistent")
expect_match "missing secret file" "$out" "cluster-secret-file $D/nonexistent: cannot open: No such file"
cp "$D/secret" "$D/secret.world"
chmod 644 "$D/secret.world"
out=$(refused_start --cluster-secret-file="$D/secret.world")
expect_match "world-readable secret file" "$out" "readable or writable by every user \(mode 644\): run 'chmod 600"
printf 'short\n' >"$D/secret.short"
chmod 600 "$D/secret.short"
out=$(refused_start --cluster-secret-file="$D/secret.short")
expect_match "too short secret" "$out" "secret.short: too short \(5 bytes; at least 16"
printf 'user ok on >x ~* +@all\nuser bob on >pw ~* +@nosuch\n' >"$D/bad.acl"
out=$(refused_start --acl-file="$D/bad.acl")
expect_match "bad ACL rule" "$out" "$D/bad.acl:2: user 'bob': unknown command category '@nosuch'"
out=$(refused_start --acl-file="$D/bad.acl" --check-config)
expect_match "rabiad --check-config reports it too" "$out" "invalid configuration: $D/bad.acl:2: user 'bob'"
expect_eq "... and exits 2" "$(tail -n 1 <<<"$out")" "exit 2"
out=$(refused_start --acl-file="$D/users.acl" --cluster-secret-file="$D/secret" --requirepass=x --check-config)
expect_match "rabiad --check-config with good files" "$out" "configuration is valid"

# ---------------------------------------------------------------------------
cluster_start 3 kv
P1=$(resp_port 1)

# raw RESP: send the bytes on one connection, print what came back (CRLF
# shown); with RAW_CLOSED=1 also "<closed>" when the server closed it
cat >"$D/raw.py" <<'EOF'
import os, socket, sys, time
port, wait = int(sys.argv[1]), float(sys.argv[2])
data = open(sys.argv[3], "rb").read() if len(sys.argv) > 3 else sys.stdin.buffer.read()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(data)
s.settimeout(wait)
out, t0 = b"", time.time()
try:
    while time.time() - t0 < 30:
        b = s.recv(65536)
        if not b:
            if os.environ.get("RAW_CLOSED") == "1":
                out += b"<closed>"
            break
        out += b
except socket.timeout:
    pass
sys.stdout.write(out.decode("latin1").replace("\r\n", "\\r\\n\n"))
EOF
printf '%s\r\n' 'GET x' 'FOO' 'HELLO 3' 'ACL WHOAMI' 'MULTI' 'AUTH wrong' 'AUTH nosuchuser x' 'AUTH a b c' \
  'AUTH ro ropw' 'SET a 1' 'GET auth:none' 'PING' 'MULTI' 'ACL WHOAMI' 'AUTH app apppw' 'SET app:1 x' \
  'SET other:1 x' 'MGET app:1 other:1' 'RPUSH app:l 2 1' 'SORT app:l BY app:w_*' 'SORT app:l LIMIT 0 1 GET #' \
  'SORT app:l BY nosort' 'SORT app:l STORE other:d' 'SORT app:l LIMIT 0 1 STORE app:d' 'WATCH other:1' 'WATCH app:1' 'UNWATCH' 'MULTI' 'SET app:2 y' 'SET other:2 y' 'EXEC' 'ACL WHOAMI' \
  'AUTH default defpw' 'ACL WHOAMI' 'AUTH ops opspw' 'CLIENT LIST' 'CLIENT KILL ID 999' 'CLIENT NO-EVICT on' \
  'CLIENT INFO x' 'AUTH default defpw' 'AUTH off1 offpw' 'HELLO 3 AUTH ro bad' 'ACL WHOAMI' 'AUTH onlyread p' \
  'PING' 'HELLO 4 AUTH app wrong' 'RESET' 'GET app:1' 'QUIT' >"$D/seq.txt"
# SORT is of feature level 5: the sequence waits for the cluster to agree
# its build's level (a second or two after the start)
wait_level 1 --user default --pass defpw --no-auth-warning
t0=$(date +%s%N)
got=$(python3 "$D/raw.py" "$P1" 1 <"$D/seq.txt")
t1=$(date +%s%N)
expected='-NOAUTH Authentication required.\r\n
-ERR unknown command '"'"'FOO'"'"', with args beginning with: \r\n
-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n
-NOAUTH Authentication required.\r\n
-NOAUTH Authentication required.\r\n
-WRONGPASS invalid username-password pair or user is disabled.\r\n
-WRONGPASS invalid username-password pair or user is disabled.\r\n
-ERR syntax error\r\n
+OK\r\n
-NOPERM this user has no permissions to run the '"'"'set'"'"' command\r\n
$-1\r\n
+PONG\r\n
-NOPERM this user has no permissions to run the '"'"'multi'"'"' command\r\n
-NOPERM this user has no permissions to run the '"'"'acl|whoami'"'"' command\r\n
+OK\r\n
+OK\r\n
-NOPERM this user has no permissions to access one of the keys used as arguments\r\n
-NOPERM this user has no permissions to access one of the keys used as arguments\r\n
:2\r\n
-ERR BY option of SORT denied due to insufficient ACL permissions.\r\n
-ERR GET option of SORT denied due to insufficient ACL permissions.\r\n
*2\r\n
$1\r\n
2\r\n
$1\r\n
1\r\n
-NOPERM this user has no permissions to access one of the keys used as arguments\r\n
:1\r\n
-NOPERM this user has no permissions to access one of the keys used as arguments\r\n
+OK\r\n
+OK\r\n
+OK\r\n
+QUEUED\r\n
-NOPERM this user has no permissions to access one of the keys used as arguments\r\n
-EXECABORT Transaction discarded because of previous errors.\r\n
$3\r\n
app\r\n
+OK\r\n
$7\r\n
default\r\n
+OK\r\n
-NOPERM this user has no permissions to run the '"'"'client|list'"'"' command\r\n
-NOPERM this user has no permissions to run the '"'"'client|kill'"'"' command\r\n
-NOPERM this user has no permissions to run the '"'"'client|no-evict'"'"' command\r\n
-ERR wrong number of arguments for '"'"'client|info'"'"' command\r\n
+OK\r\n
-WRONGPASS invalid username-password pair or user is disabled.\r\n
-WRONGPASS invalid username-password pair or user is disabled.\r\n
$7\r\n
default\r\n
+OK\r\n
-NOPERM this user has no permissions to run the '"'"'ping'"'"' command\r\n
-NOPROTO unsupported protocol version\r\n
+RESET\r\n
-NOAUTH Authentication required.\r\n
+OK\r\n'
expect_eq "RESP sequence (NOAUTH, WRONGPASS, NOPERM, SORT's patterns, MULTI, WHOAMI, HELLO, RESET, QUIT)" "$got" "$expected"
# four failed AUTHs on that connection: 100 + 200 + 400 ms before the last three were read
ms=$(((t1 - t0) / 1000000))
((ms >= 700)) || fail "four failed AUTHs took only $ms ms: the slow-down did not hold the connection"
ok "the connection's AUTHs after failures were delayed ($ms ms for the sequence, >= 700)"

# HELLO 3 AUTH as a user other than default: RESP3 from then on, CLIENT INFO names the user
h3=$(printf '%s\r\n' 'HELLO 3 AUTH app apppw' 'CLIENT INFO' 'ACL WHOAMI' 'QUIT' | python3 "$D/raw.py" "$P1" 1)
expect_match "HELLO 3 AUTH app: the RESP3 map" "$(head -n 1 <<<"$h3")" '^%7\\r\\n$'
expect_match "... CLIENT INFO names the user" "$h3" ' user=app redir=-1 resp=3'
expect_match "... ACL WHOAMI" "$h3" '^app\\r\\n$'

# the same bytes against a real redis-server 7.0.15 with the same users
if command -v redis-server >/dev/null 2>&1 && redis-server --version | grep -q 'v=7\.0\.'; then
  RP=$((B + 60))
  grep -v '^#' "$D/users.acl" | sed 's/ ~\([^ ]*\)/ ~\1 \&*/' >"$D/redis.acl" # (no comments in Redis's ACL files)
  echo 'user default on >defpw ~* &* +@all' >>"$D/redis.acl"
  redis-server --port "$RP" --bind 127.0.0.1 --aclfile "$D/redis.acl" --save '' --appendonly no \
    --logfile "$D/redis-server.log" --dir "$D" &
  RS_PID=$!
  IT_BG_PIDS+=("$RS_PID")
  for ((i = 0; i < 50; i++)); do redis-cli -p "$RP" PING 2>/dev/null | grep -q NOAUTH && break; sleep 0.1; done
  redis_got=$(python3 "$D/raw.py" "$RP" 1 <"$D/seq.txt")
  expect_eq "redis-server 7.0.15 with the same users answers the same bytes" "$redis_got" "$got"
else
  say "(redis-server 7.0 not installed: the comparison with it is skipped)"
fi

# Redis's limits for a client that has not authenticated (6.2.6+, CVE-2021-32675):
# an array of more than 10 arguments, or a bulk over 16 KiB, is a protocol
# error (the reply, then the connection closed) before the replica buffers it;
# a rabiad took a 512 MB bulk or a million-argument array from anyone before.
# Only the headers are sent: a server that closes leaves the rest unsent.
{ printf '*11\r\n$3\r\nDEL\r\n'; for i in 1 2 3 4 5 6 7 8 9 10; do printf '$2\r\nk%d\r\n' $((i - 1)); done; } >"$D/unauth_args.txt"
printf '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n' >"$D/unauth_bulk.txt"
# authenticated: the same array and a whole 20,000-byte bulk are served
{ printf 'AUTH defpw\r\n'; cat "$D/unauth_args.txt"; printf '*3\r\n$3\r\nSET\r\n$8\r\nauth:big\r\n$20000\r\n'
  head -c 20000 /dev/zero | tr '\0' v; printf '\r\n*2\r\n$6\r\nSTRLEN\r\n$8\r\nauth:big\r\nQUIT\r\n'; } >"$D/auth_big.txt"
for t in "unauth_args|-ERR Protocol error: unauthenticated multibulk length\\r\\n
<closed>" "unauth_bulk|-ERR Protocol error: unauthenticated bulk length\\r\\n
<closed>" "auth_big|+OK\\r\\n
:0\\r\\n
+OK\\r\\n
:20000\\r\\n
+OK\\r\\n
<closed>"; do
  f=${t%%|*}
  want=${t#*|}
  got=$(RAW_CLOSED=1 python3 "$D/raw.py" "$P1" 2 "$D/$f.txt")
  expect_eq "$f: replica 1 answers" "$got" "$want"
  if [ -n "${RS_PID:-}" ]; then
    expect_eq "$f: redis-server 7.0.15 answers the same bytes" "$(RAW_CLOSED=1 python3 "$D/raw.py" "$RP" 2 "$D/$f.txt")" "$got"
  fi
done

# the failed AUTHs: logged with user, address and cause, counted
log1=$(grep -h 'AUTH failed' "$RABIA_CLUSTER_DIR/r1.log" || true)
expect_match "log line: wrong password" "$log1" "WARN  r1 AUTH failed for user 'default' from 127\.0\.0\.1:[0-9]+ \(wrong password, RESP"
expect_match "log line: no such user" "$log1" "AUTH failed for user 'nosuchuser' from 127\.0\.0\.1:[0-9]+ \(no such user"
expect_match "log line: disabled user" "$log1" "AUTH failed for user 'off1' from 127\.0\.0\.1:[0-9]+ \(user is disabled"
expect_match "log line: HELLO AUTH" "$log1" "AUTH failed for user 'ro' from 127\.0\.0\.1:[0-9]+ \(wrong password, RESP HELLO"
info=$(redis 1 --user default --pass defpw --no-auth-warning INFO stats)
expect_match "INFO stats counts them" "$info" "auth_failures:4"

# ten failures close the connection (in the background: the delays add up to ~21 s)
printf 'AUTH bad%d\r\n' 1 2 3 4 5 6 7 8 9 10 11 >"$D/ten.txt"
printf 'PING\r\n' >>"$D/ten.txt"
bg ten python3 "$D/raw.py" "$P1" 40 "$D/ten.txt"
TEN_PID=$BG_PID

# redis-cli and python3-redis as users
expect_eq "redis-cli without a password" "$(redis 1 GET app:1 2>&1)" "NOAUTH Authentication required."
expect_eq "redis-cli --user app: its key" "$(redis 1 --user app --pass apppw --no-auth-warning GET app:1)" "x"
expect_eq "redis-cli --user app: another key" "$(redis 1 --user app --pass apppw --no-auth-warning SET other:9 v 2>&1)" \
  "NOPERM this user has no permissions to access one of the keys used as arguments"
expect_eq "redis-cli --user ro: SET" "$(redis 2 --user ro --pass ropw --no-auth-warning SET app:1 y 2>&1)" \
  "NOPERM this user has no permissions to run the 'set' command"
expect_eq "redis-cli -a (requirepass)" "$(redis 3 -a defpw --no-auth-warning SET plain 1)" "OK"
# resetchannels: no channel (accepted and ignored before)
for c in "PUBLISH news hi" "SUBSCRIBE news"; do
  # shellcheck disable=SC2086 # (the command's words)
  expect_eq "redis-cli --user quiet (resetchannels): $c" "$(timeout 5 redis-cli -p "$(resp_port 1)" --user quiet --pass qpw --no-auth-warning $c 2>&1 | head -n 1)" \
    "NOPERM this user has no permissions to access one of the channels used as arguments"
done
expect_eq "redis-cli --user quiet: SET" "$(redis 1 --user quiet --pass qpw --no-auth-warning SET quiet:1 v)" "OK"
if "$PY" -c 'import redis' 2>/dev/null; then
  py=$(
    timeout 30 "$PY" - "$(resp_port 2)" 2>&1 <<'EOF'
import sys, redis
port = int(sys.argv[1])
out = []
app = redis.Redis(port=port, username="app", password="apppw")
out.append(str(app.set("app:py", "v")))
out.append(app.get("app:py").decode())
try:
    app.set("other:py", "v")
    out.append("other:py allowed")
except redis.exceptions.NoPermissionError as e:
    out.append("NoPermissionError")
ro = redis.Redis(port=port, username="ro", password="ropw")
out.append(ro.get("app:py").decode())
try:
    ro.set("app:py", "w")
    out.append("ro set allowed")
except redis.exceptions.NoPermissionError:
    out.append("NoPermissionError")
try:
    redis.Redis(port=port, username="app", password="nope").ping()
    out.append("wrong password accepted")
except redis.exceptions.ResponseError as e:  # redis-py 4.3 has no class for WRONGPASS
    out.append(str(e).split()[0])
print(" ".join(out))
EOF
  ) || fail "python3-redis: $py"

  expect_eq "python3-redis: app writes its key, not another; ro reads, cannot write; wrong password" "$py" \
    "True v NoPermissionError v NoPermissionError WRONGPASS"
else
  say "(python3-redis not installed: skipped)"
fi

# many connections failing at once: logged at most 20 a second, all counted
flood=$(
  timeout 20 python3 - "$(resp_port 3)" 2>&1 <<'EOF'
import socket, sys
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
for s in socks:
    s.sendall(b"AUTH flood wrong\r\n")
n = 0
for s in socks:
    s.settimeout(10)
    if s.recv(4096).startswith(b"-WRONGPASS"):
        n += 1
print(n)
EOF
) || fail "flood: $flood"
expect_eq "30 connections' wrong AUTHs answered WRONGPASS" "$flood" "30"
for ((i = 0; i < 30; i++)); do grep -q 'more failed client authentications' "$RABIA_CLUSTER_DIR/r3.log" && break; sleep 0.1; done
expect_eq "... logged 20 of them (the rate limit)" "$(grep -c "AUTH failed for user 'flood'" "$RABIA_CLUSTER_DIR/r3.log")" "20"
expect_match "... and the rest counted in one line" "$(cat "$RABIA_CLUSTER_DIR/r3.log")" \
  "10 more failed client authentications in the last second were not logged \(at most 20 lines a second"
expect_match "... INFO counts all 30" "$(redis 3 -a defpw --no-auth-warning INFO stats)" "auth_failures:30"

# ---------------------------------------------------------------------------
say "native protocol: rabia-cli"
A=$(all_addrs 3)
out=$(RABIA_PASSWORD= cli -a "$A" kv get app:1 2>&1) && fail "rabia-cli without a password succeeded: $out"
expect_match "rabia-cli without a password" "$out" "refused: NOAUTH Authentication required\. \(give --user/--pass or RABIA_PASSWORD\)"
out=$(RABIA_PASSWORD= cli -a "$A" --pass wrong kv get app:1 2>&1) && fail "rabia-cli with a wrong password succeeded: $out"
expect_match "rabia-cli --pass wrong" "$out" "refused: WRONGPASS invalid username-password pair or user is disabled\."
expect_eq "rabia-cli --pass (requirepass)" "$(RABIA_PASSWORD= cli -a "$A" --pass defpw kv get app:1)" '"x"'
expect_eq "rabia-cli --user app: its key" "$(cli -a "$A" --user app --pass apppw kv set app:cli 1)" "OK"
out=$(cli -a "$A" --user app --pass apppw kv set other:cli 1 2>&1) && fail "app wrote other:cli: $out"
expect_match "rabia-cli --user app: another key" "$out" "refused: NOPERM this user has no permissions to access one of the keys used as arguments"
out=$(cli -a "$A" --user app --pass apppw kv txn 'SET app:t 1' 'SET other:t 2' 2>&1) && fail "app's txn ran: $out"
expect_match "rabia-cli --user app: a transaction naming another key" "$out" "NOPERM .* keys used as arguments"
expect_eq "rabia-cli --user ro: read" "$(cli -a "$A" --user ro --pass ropw kv get app:cli)" '"1"'
out=$(cli -a "$A" --user ro --pass ropw kv set app:cli 2 2>&1) && fail "ro wrote: $out"
expect_match "rabia-cli --user ro: write" "$out" "refused: NOPERM this user has no permissions to run the 'set' command"
out=$(RABIA_PASSWORD= cli -a "$(native_addr 1)" status 2>&1) && fail "status without a password: $out"
expect_match "rabia-cli status without a password" "$out" "refused: NOAUTH Authentication required"
logn=$(cat "$RABIA_CLUSTER_DIR"/r*.log | grep -h 'AUTH failed' | grep native || true)
expect_match "native failure logged" "$logn" "AUTH failed for user 'default' from 127\.0\.0\.1:[0-9]+ \(wrong password, native"

say "rabia-cli backup: only a user with +@all and allkeys (a backup holds every key and session)"
BK=$D/backup.snap
# backup_refused WHAT ERE ARGS...: exit status 1, the replica's message, no file written
backup_refused() {
  local what=$1 re=$2 rc=0 out
  shift 2
  rm -f "$BK"
  out=$(RABIA_PASSWORD= timeout 30 "$RABIA_CLI" -a "$A" "$@" backup "$BK" 2>&1) || rc=$?
  [ "$rc" = 1 ] || fail "rabia-cli backup $what: exit status $rc (want 1: refused): $out"
  [ ! -e "$BK" ] || fail "rabia-cli backup $what: refused, yet $BK was written"
  ls "$D" | grep -q '^backup\.snap\.' && fail "rabia-cli backup $what: a temporary file was left: $(ls "$D")"
  expect_match "rabia-cli backup $what: refused (exit 1, nothing written)" "$out" "$re"
}
backup_refused "without a password" \
  "rabia-cli: backup: 127\.0\.0\.1:[0-9]+ refused the backup: NOAUTH Authentication required\. \(give --user/--pass or RABIA_PASSWORD\)$"
backup_refused "--pass wrong" \
  "refused the authentication: WRONGPASS invalid username-password pair or user is disabled\.$" --pass wrong
backup_refused "--user ro (+@read)" \
  "refused the backup: NOPERM user 'ro' may not take a backup: a backup holds every key, so only a user with \+@all and allkeys may" \
  --user ro --pass ropw
backup_refused "--user app (~app:* +@all: not allkeys)" "refused the backup: NOPERM user 'app' may not take a backup" \
  --user app --pass apppw
# refused for who it is: one line, not one per replica
n_lines=$( (RABIA_PASSWORD= timeout 30 "$RABIA_CLI" -a "$A" --user ro --pass ropw backup "$BK" 2>&1 || true) | wc -l)
expect_eq "a refusal is not retried on the other replicas (lines of output)" "$n_lines" 1
out=$(RABIA_PASSWORD= cli -a "$A" --pass defpw backup "$BK" 2>&1) || fail "rabia-cli backup --pass defpw: $out"
expect_match "rabia-cli backup --pass defpw (the default user, requirepass)" "$out" "^backup written to $BK"
bslot=$(sed -n 's/^slot: //p' <<<"$out")
bhash=$(sed -n 's/^state_hash: //p' <<<"$out")
[[ "$bslot" =~ ^[0-9]+$ && "$bhash" =~ ^[0-9a-f]{16}$ ]] || fail "backup output without slot and hash: $out"
out=$(cli backup --verify "$BK" 2>&1) || fail "rabia-cli backup --verify: $out"
expect_match "rabia-cli backup --verify: same slot and hash" "$(tr '\n' ' ' <<<"$out")" "backup intact: $BK slot: $bslot .*state_hash: $bhash "
rm -f "$BK"
out=$(RABIA_PASSWORD=defpw cli -a "$A" backup "$BK" 2>&1) || fail "rabia-cli backup with RABIA_PASSWORD: $out"
expect_match "rabia-cli backup with RABIA_PASSWORD=defpw" "$out" "^backup written to $BK"
logb=$(cat "$RABIA_CLUSTER_DIR"/r*.log | grep -h 'backup refused to' || true)
expect_match "replicas log the refusal without a password" "$logb" "backup refused to 127\.0\.0\.1:[0-9]+ \(user 'default'\): NOAUTH"
expect_match "replicas log the refusal of ro" "$logb" "backup refused to 127\.0\.0\.1:[0-9]+ \(user 'ro'\): NOPERM user 'ro' may not take a backup"
expect_match "replicas log the refusal of app" "$logb" "backup refused to 127\.0\.0\.1:[0-9]+ \(user 'app'\): NOPERM"

say "native protocol by hand: NOAUTH before CLIENT_AUTH, the delayed AUTH after a failure, two at once"
native=$(
  timeout 30 python3 - "$IT_REPO/tests/integration" "$(native_port 2)" 2>&1 <<'EOF'
import socket, struct, sys, time
sys.path.insert(0, sys.argv[1])
import garbage as g
port = int(sys.argv[2])
T_REQ, T_REPLY, T_AUTH, T_AUTH_REPLY = 20, 21, 24, 25
auth, read_frame = g.client_auth, g.read_frame
res = []
s = socket.create_connection(("127.0.0.1", port))
# a request before authenticating: NOAUTH (status 7) with the message
s.sendall(g.frame(T_REQ, struct.pack("<QQQI", 5, 1, 1, 0)))
t, p = read_frame(s)
res.append("req:%d/%d/%s" % (t, p[16], p[21:].decode()))
# a wrong password: refused at once
t0 = time.time()
s.sendall(auth(b"app", b"wrong"))
t, p = read_frame(s)
res.append("wrong:%d/%d" % (t, p[0]))
# the right one at once: answered only after the 100 ms delay
s.sendall(auth(b"app", b"apppw"))
t, p = read_frame(s)
dt = time.time() - t0
res.append("right:%d/%d/%s" % (t, p[0], "delayed" if dt >= 0.095 else "not delayed (%.3f s)" % dt))
s.close()
# after a failure, two AUTHs without waiting for the first: closed
s = socket.create_connection(("127.0.0.1", port))
s.sendall(auth(b"app", b"wrong"))
read_frame(s)
s.sendall(auth(b"app", b"apppw") + auth(b"app", b"apppw"))
res.append("two:" + ("closed" if read_frame(s) is None else "answered"))
print(" ".join(res))
EOF
) || fail "native by hand: $native"
expect_eq "native: NOAUTH before CLIENT_AUTH; a wrong password refused; the right one after the delay; two at once closed" \
  "$native" "req:21/7/NOAUTH Authentication required. wrong:25/1 right:25/0/delayed two:closed"
expect_match "... logged" "$(cat "$RABIA_CLUSTER_DIR/r2.log")" "AUTH failed from 127\.0\.0\.1:[0-9]+ \(another AUTH sent before the last was answered; closing\)"

say "native protocol by hand: the frame size limit before CLIENT_AUTH (RESP's is Redis's 16 KiB bulk)"
# Before, a client without a password could announce a 16 MiB frame and
# hold that much input buffer; now a frame over 33 KiB before a CLIENT_AUTH
# succeeds closes the connection. A long wrong password still gets its
# answer, and an authenticated client still sends large values (up to
# batch-max-bytes, here 256 KiB).
big=$(
  timeout 30 python3 - "$IT_REPO/tests/integration" "$(native_port 3)" 2>&1 <<'EOF'
import socket, struct, sys
sys.path.insert(0, sys.argv[1])
import garbage as g
port = int(sys.argv[2])
auth, read_frame, op, req = g.client_auth, g.read_frame, g.client_op, g.client_req
res = []
# unauthenticated: a 1 MiB request frame; the header and 4 KiB are sent
s = socket.create_connection(("127.0.0.1", port))
f = req(0x777, 1, 0, op(b"SET", b"app:big", b"v" * (1 << 20)))
try:
    s.sendall(f[:16 + 4096])
    res.append("unauth-1MiB:" + ("closed" if read_frame(s, 5.0) is None else "answered"))
except (ConnectionResetError, BrokenPipeError):
    res.append("unauth-1MiB:closed")
except socket.timeout:
    res.append("unauth-1MiB:open-after-5s")
s.close()
# a 20 KiB wrong password is under the limit: refused as wrong, and the
# connection goes on (the right password, after the failure's delay)
s = socket.create_connection(("127.0.0.1", port))
s.sendall(auth(b"app", b"x" * 20000))
t, p = read_frame(s)
res.append("long-wrong:%d/%d" % (t, p[0]))
s.sendall(auth(b"app", b"apppw"))
t, p = read_frame(s)
res.append("right:%d/%d" % (t, p[0]))
# authenticated: a 1 MiB value goes through
s.sendall(req(0x778, 1, 0))                    # OPEN under a nonce
t, p = read_frame(s)
sid = struct.unpack("<Q", p[21:29])[0]
s.sendall(req(sid, 2, 2, op(b"SET", b"app:big", b"v" * (200 << 10))))
t, p = read_frame(s)
res.append("authed-200KiB:%d/%s" % (p[16], p[21:].decode().strip()))
print(" ".join(res))
EOF
) || fail "native frame limit by hand: $big"
expect_eq "native: 1 MiB before CLIENT_AUTH closed; a 20 KiB wrong password answered; 200 KiB after it accepted" "$big" \
  "unauth-1MiB:closed long-wrong:25/1 right:25/0 authed-200KiB:0/+OK"
expect_match "... the refusal logged, naming the cause and the fix" "$(cat "$RABIA_CLUSTER_DIR/r3.log")" \
  "refusing client 127\.0\.0\.1:[0-9]+: a frame of 1048[0-9]+ bytes before it authenticated \(at most 33792 until a CLIENT_AUTH succeeds.*rabia-cli --user/--pass or RABIA_PASSWORD"

# ---------------------------------------------------------------------------
say "native protocol by hand: a restricted user cannot use another client's session"
# The session id and seq of a CLIENT_REQ come from the wire. Under another
# client's session a request would be answered from that client's cached
# replies (here: ro reading app's reply), take over its waiting answer, or
# burn its sequence numbers; a restricted user may use only sessions opened
# on its own connection.
hijack=$(
  timeout 30 python3 - "$IT_REPO/tests/integration" "$(native_port 1)" 2>&1 <<'EOF'
import socket, struct, sys
sys.path.insert(0, sys.argv[1])
import garbage as g
port = int(sys.argv[2])
auth, read_frame, op, req = g.client_auth, g.read_frame, g.client_op, g.client_req
def reply(s):
    t, p = read_frame(s)
    return p[16], p[21:]
res = []
a = socket.create_connection(("127.0.0.1", port))
a.sendall(auth(b"app", b"apppw"))
read_frame(a)
a.sendall(req(0x1234567, 1, 0))                   # OPEN under a nonce
st, body = reply(a)
sid = struct.unpack("<Q", body)[0]
a.sendall(req(sid, 2, 2, op(b"GET", b"app:1")))    # app's reply, cached for retries
st, body = reply(a)
res.append("app:%d/%s" % (st, body.decode().replace("\r\n", " ").strip()))
b = socket.create_connection(("127.0.0.1", port))
b.sendall(auth(b"ro", b"ropw"))
read_frame(b)
b.sendall(req(sid, 2, 2))                         # app's seq 2, empty: its cached reply?
st, body = reply(b)
res.append("ro-replay:%d" % st)
b.sendall(req(sid, 3, 2, op(b"GET", b"app:1")))    # a new seq in app's session
st, body = reply(b)
res.append("ro-new:%d" % st)
b.sendall(req(sid, 0, 2))                         # close app's session
st, body = reply(b)
res.append("ro-close:%d" % st)
a.sendall(req(sid, 3, 3, op(b"GET", b"app:1")))    # app's session is intact
st, body = reply(a)
res.append("app-again:%d/%s" % (st, body.decode().replace("\r\n", " ").strip()))
print(" ".join(res))
EOF
) || fail "session hijack by hand: $hijack"
expect_eq "native: ro cannot replay, extend or close app's session (2 = SESSION_EXPIRED)" "$hijack" \
  'app:0/$1 x ro-replay:2 ro-new:2 ro-close:2 app-again:0/$1 x'

say "peers: a forger without the secret (frames by hand, garbage.py's codec)"
cluster_id=$(sed -n 's/.* cluster \([0-9a-f]\{16\}\), state machine.*/\1/p' "$RABIA_CLUSTER_DIR/r1.log" | head -n 1)
[ -n "$cluster_id" ] || fail "no cluster id in replica 1's log"
forged=$(
  timeout 20 python3 - "$IT_REPO/tests/integration" "$(peer_port 1)" "$cluster_id" 2>&1 <<'EOF'
import os, socket, struct, sys, time
sys.path.insert(0, sys.argv[1])
import garbage as g
port, cluster = int(sys.argv[2]), int(sys.argv[3], 16)
T_PEER_AUTH, T_VOTE = 13, 4
def auth(step, body, cause=0, frm=1):
    return g.frame(T_PEER_AUTH, struct.pack("<QBI", cause, step, len(body)) + body, frm=frm)
def frames(sock, wait=3.0):
    sock.settimeout(wait)
    buf, out, t0 = b"", [], time.time()
    while time.time() - t0 < wait:
        try:
            b = sock.recv(65536)
        except socket.timeout:
            return out, "open"
        if not b:
            return out, "closed"
        buf += b
        while len(buf) >= 16:
            n = struct.unpack_from("<I", buf, 8)[0]
            if len(buf) < 16 + n:
                break
            out.append((buf[4], buf[16:16 + n]))
            buf = buf[16 + n:]
    return out, "open"
res = []
# newer than the real replica 2's (its first start's wall clock), and not
# more than a day ahead of replica 1's clock (refused before the handshake)
inc = int(time.time() * 1e6) + 60 * 10**6
# 1. HELLO as replica 2, our nonce, then a proof made up: refused, closed
s = socket.create_connection(("127.0.0.1", port))
s.sendall(g.hello(cluster, frm=1, incarnation=inc) + auth(1, os.urandom(32)))
got, state = frames(s, 1.0)
ch = [p for t, p in got if t == T_PEER_AUTH and p[8] == 2]
res.append("challenge" if ch and len(ch[0]) == 8 + 1 + 4 + 64 else "no-challenge:%r" % (got,))
s.sendall(auth(3, os.urandom(32)))
got, state = frames(s)
ref = [p for t, p in got if t == T_PEER_AUTH and p[8] == 4]
res.append("refused-%d" % struct.unpack_from("<Q", ref[0])[0] if ref else "no-refusal")
res.append(state)
# 2. HELLO, then a consensus message instead of the handshake: refused, closed
s = socket.create_connection(("127.0.0.1", port))
s.sendall(g.hello(cluster, frm=1, incarnation=inc) + g.frame(T_VOTE, struct.pack("<QHBB", 1, 1, 1, 0), frm=1))
got, state = frames(s)
res.append(state)
print(" ".join(res))
EOF
) || fail "forger: $forged"
expect_eq "forged proof: challenge answered, proof refused (cause 1 = wrong secret), closed; a VOTE instead of the handshake: closed" \
  "$forged" "challenge refused-1 closed closed"
log1=$(cat "$RABIA_CLUSTER_DIR/r1.log")
expect_match "replica 1 logs the forged proof" "$log1" "peer 127\.0\.0\.1:[0-9]+ failed cluster-secret authentication: wrong secret \(check cluster-secret-file on both replicas\); it claims to be replica 2$"
expect_match "replica 1 logs the VOTE without a proof" "$log1" "it claims to be replica 2 and sent VOTE instead of a proof"
expect_eq "the real replica 2 is still connected: a write through replica 1" "$(redis 1 -a defpw --no-auth-warning SET after:forger 1)" "OK"
expect_eq "... read at replica 2" "$(redis 2 -a defpw --no-auth-warning GET after:forger)" "1"

# ---------------------------------------------------------------------------
say "peers: replica 3 with the wrong secret, then with none"
wait_converged 20 1 2 3
members="1=127.0.0.1:$(peer_port 1),2=127.0.0.1:$(peer_port 2),3=127.0.0.1:$(peer_port 3)"
start_r3() { # start_r3 NAME ARGS...: replica 3 by hand (its own data dir and log)
  local name=$1
  shift
  bg "$name" "$RABIAD" --id 3 --members "$members" --client-listen "$(native_addr 3)" \
    --resp-listen "127.0.0.1:$(resp_port 3)" --data-dir "$RABIA_CLUSTER_DIR/r3" --state-machine kv \
    --requirepass=defpw --acl-file="$D/users.acl" "$@"
}
stop_r3() { stop_pids "$RABIAD" "$1"; }
wait_log() { # wait_log FILE ERE: up to 10 s
  local i
  for ((i = 0; i < 100; i++)); do grep -Eq -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
stop_pids "$RABIAD" "$(replica_pid 3)"
rm -f "$RABIA_CLUSTER_DIR/r3.pid"
head -c 32 /dev/urandom | base64 >"$D/secret.wrong"
chmod 600 "$D/secret.wrong"
n1=$(wc -l <"$RABIA_CLUSTER_DIR/r1.log")
start_r3 wrong3 --cluster-secret-file="$D/secret.wrong"
W=$BG_PID
wrong_re='failed cluster-secret authentication: wrong secret \(check cluster-secret-file on both replicas\)'
wait_log "$D/wrong3.out" "peer 127\.0\.0\.1:$(peer_port 1) $wrong_re" || fail "replica 3 logged no refusal of replica 1: $(tail -5 "$D/wrong3.out")"
ok "replica 3 (wrong secret) logs: $(grep -Em1 "peer 127\.0\.0\.1:$(peer_port 1) $wrong_re" "$D/wrong3.out" | cut -c26-)"
wait_log "$RABIA_CLUSTER_DIR/r1.log" "peer 127\.0\.0\.1:$(peer_port 3) $wrong_re" || fail "replica 1 logged no refusal of replica 3"
ok "replica 1 logs: $(tail -n +"$n1" "$RABIA_CLUSTER_DIR/r1.log" | grep -Em1 "peer 127\.0\.0\.1:$(peer_port 3) $wrong_re" | cut -c26-)"
wait_log "$RABIA_CLUSTER_DIR/r2.log" "peer 127\.0\.0\.1:[0-9]+ $wrong_re; it claims to be replica 3" || fail "replica 2 logged no refusal of replica 3's dial"
ok "replica 2 logs: $(grep -Em1 "peer 127\.0\.0\.1:[0-9]+ $wrong_re; it claims to be replica 3" "$RABIA_CLUSTER_DIR/r2.log" | cut -c26-)"
expect_eq "the cluster keeps serving (SET at replica 1)" "$(redis 1 -a defpw --no-auth-warning SET during:wrong 1)" "OK"
st=$(replica_status 1)
expect_match "replica 1 does not count replica 3 as reachable" "$(field "$st" member_3)" "unreachable"
stop_r3 "$W"
start_r3 none3
N=$BG_PID
none_re='failed cluster-secret authentication: it requires a cluster secret and this replica has none'
wait_log "$D/none3.out" "peer 127\.0\.0\.1:$(peer_port 1) $none_re" || fail "replica 3 (no secret) logged no refusal: $(tail -5 "$D/none3.out")"
ok "replica 3 (no secret) logs: $(grep -Em1 "$none_re" "$D/none3.out" | cut -c26-)"
wait_log "$RABIA_CLUSTER_DIR/r2.log" "failed cluster-secret authentication: it has no cluster secret while this replica has one" ||
  fail "replica 2 logged no refusal of the replica without a secret"
ok "replica 2 logs: $(grep -Em1 'it has no cluster secret while this replica has one' "$RABIA_CLUSTER_DIR/r2.log" | cut -c26-)"
expect_eq "the cluster keeps serving (SET at replica 2)" "$(redis 2 -a defpw --no-auth-warning SET during:none 1)" "OK"
stop_r3 "$N"
cluster_restart 3
wait_converged 30 1 2 3
expect_eq "replica 3 (right secret) serves what was written meanwhile" \
  "$(redis 3 -a defpw --no-auth-warning GET during:none)" "1"

# ---------------------------------------------------------------------------
bg_wait "$TEN_PID" 40
ten=$(cat "$D/ten.out")
expect_eq "ten failed AUTHs on one connection: ten WRONGPASS, then closed (the eleventh and PING unanswered)" \
  "$(grep -c WRONGPASS <<<"$ten")/$(grep -c PONG <<<"$ten" || true)" "10/0"
expect_match "the close is logged" "$(cat "$RABIA_CLUSTER_DIR/r1.log")" "closing the connection from 127\.0\.0\.1:[0-9]+ after 10 failed AUTHs"
all_alive 3
