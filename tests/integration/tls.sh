#!/usr/bin/env bash
# tls: a 3-replica kv cluster with TLS 1.3 on peer links and both client
# ports (certificates from deploy/make-test-certs.sh):
# - redis-cli --tls, rabia-cli --tls and python3-redis ssl=True are served;
#   rabia-cli refuses a certificate that does not name the host dialed (or
#   --tls-server-name);
# - rabia-cli --tls backup takes a backup that --verify accepts; a plaintext
#   one, or one trusting another CA, fails saying why and writes nothing;
# - a client that sends close_notify (and a FIN) after its commands still
#   gets their replies (tls_halfclose.py);
# - a plaintext client gets no service and a log line saying why;
# - tls-auth-clients = yes refuses a client without a certificate;
# - a replica presenting the certificate of another id is refused on both
#   sides of each link, and the cluster keeps serving;
# - a replica whose certificate comes from another CA is refused;
# - rabiad --check-config refuses what a start would: a key of another
#   certificate, a directory as the certificate, a key as the CA, a missing
#   certificate, an expired one and one of another CA (the start refuses the
#   last two as well), each with the file, the cause and the fix;
# - SIGHUP with a new certificate: new connections get it, the links stay;
#   SIGHUP with a broken key file, or with an expired certificate: the old
#   one stays and the log says why;
# - SIGHUP with a new certificate and a config file rabiad refuses: nothing
#   is taken, the certificate neither (it was reloaded under "the running
#   configuration stays").
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
export RABIA_IT_DEADLINE=${RABIA_IT_DEADLINE:-75}
unset RABIA_TLS_DIR
it_init tls 23
need_cmd openssl redis-cli
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

REDIS_CLI=$(command -v redis-cli) # the plain binary, before the TLS wrappers
C=$IT_DIR/certs
O=$IT_DIR/other-ca
bash "$IT_REPO/deploy/make-test-certs.sh" "$C" 3 >/dev/null || fail "make-test-certs.sh $C 3 failed"
bash "$IT_REPO/deploy/make-test-certs.sh" "$O" 3 >/dev/null || fail "make-test-certs.sh $O 3 failed"
ok "test CA and certificates for replicas 1..3 and a client; a second, foreign CA"

# dated_cert KEY CN OUT START END: a certificate for KEY signed by the test CA,
# valid START..END (YYYYMMDDHHMMSSZ; openssl x509 -req cannot backdate)
dated_cert() {
  local db=$IT_DIR/ca-db
  rm -rf "$db" && mkdir -p "$db" && : >"$db/index.txt" && echo 01 >"$db/serial"
  printf '%s\n' "[ca]" "default_ca = t" "[t]" "database = $db/index.txt" "new_certs_dir = $db" \
    "serial = $db/serial" "default_md = sha256" "policy = p" "[p]" "commonName = supplied" \
    "organizationName = optional" "[ext]" "basicConstraints = critical,CA:FALSE" \
    "extendedKeyUsage = serverAuth,clientAuth" "subjectAltName = DNS:$2,IP:127.0.0.1" >"$db/ca.cnf"
  openssl req -new -key "$1" -subj "/O=rabia test/CN=$2" -out "$db/req.csr" 2>/dev/null ||
    fail "cannot make a request for $2"
  openssl ca -batch -config "$db/ca.cnf" -cert "$C/ca.crt" -keyfile "$C/ca.key" -in "$db/req.csr" -out "$3" \
    -startdate "$4" -enddate "$5" -extensions ext -notext >/dev/null 2>&1 || fail "cannot make a certificate valid $4..$5"
}
dated_cert "$C/replica-1.key" replica-1 "$IT_DIR/expired.crt" 20200101000000Z 20200201000000Z

say "rabiad --check-config refuses broken TLS files as a start does"
# cfgcheck WHAT ERE [--check-config] OPTIONS...: replica 1 with these TLS files
# (and the valid ones for what is not given) exits with 2 and a line matching ERE
cfgcheck() {
  local what=$1 re=$2 rc=0 out
  shift 2
  out=$(timeout 10 "$RABIAD" --id 1 --members "1=127.0.0.1:$(peer_port 1),2=127.0.0.1:$(peer_port 2),3=127.0.0.1:$(peer_port 3)" \
    --resp-listen "127.0.0.1:$(resp_port 1)" --data-dir "$IT_DIR/cfgcheck" --tls-peers yes --tls-clients yes \
    --tls-cert-file "$C/replica-1.crt" --tls-key-file "$C/replica-1.key" --tls-ca-cert-file "$C/ca.crt" "$@" 2>&1) || rc=$?
  expect_eq "$what: exit status" "$rc" 2
  expect_match "... and says" "$(tr '\n' ' ' <<<"$out")" "^rabiad: invalid configuration: $re"
}
out=$(timeout 10 "$RABIAD" --id 1 --members "1=127.0.0.1:$(peer_port 1),2=127.0.0.1:$(peer_port 2),3=127.0.0.1:$(peer_port 3)" \
  --resp-listen "127.0.0.1:$(resp_port 1)" --data-dir "$IT_DIR/cfgcheck" --tls-peers yes --tls-clients yes \
  --tls-cert-file "$C/replica-1.crt" --tls-key-file "$C/replica-1.key" --tls-ca-cert-file "$C/ca.crt" --check-config 2>&1) ||
  fail "rabiad --check-config with the test certificates: $out"
expect_match "rabiad --check-config with the test certificates" "$out" "^configuration is valid"
cfgcheck "--check-config, replica-2.key for replica-1.crt" \
  "tls-key-file $C/replica-2.key does not belong to tls-cert-file $C/replica-1.crt .*give the key the certificate was made for" \
  --tls-key-file "$C/replica-2.key" --check-config
cfgcheck "--check-config, a directory as tls-cert-file" "tls-cert-file $C: is a directory: give the path of a PEM file" \
  --tls-cert-file "$C" --check-config
cfgcheck "--check-config, a private key as tls-ca-cert-file" \
  "tls-ca-cert-file $C/ca.key: not a usable PEM CA certificate: .*give the PEM certificate of the CA" \
  --tls-ca-cert-file "$C/ca.key" --check-config
cfgcheck "--check-config, a missing tls-cert-file" \
  "tls-cert-file $IT_DIR/none/replica-1.crt: cannot read it: No such file or directory \(check the path" \
  --tls-cert-file "$IT_DIR/none/replica-1.crt" --check-config
for chk in --check-config ""; do
  w=${chk:-start}
  cfgcheck "$w, an expired tls-cert-file" \
    "tls-cert-file $IT_DIR/expired.crt: the certificate CN=replica-1 \(valid from Jan  1 00:00:00 2020 GMT until Feb  1 00:00:00 2020 GMT\) does not verify against tls-ca-cert-file $C/ca.crt: certificate has expired: renew it" \
    --tls-cert-file "$IT_DIR/expired.crt" $chk
  cfgcheck "$w, a tls-cert-file of another CA" \
    "tls-cert-file $O/replica-1.crt: the certificate CN=replica-1 \(valid from .* until .*\) does not verify against tls-ca-cert-file $C/ca.crt: unable to get local issuer certificate: replace it with a certificate signed by that CA" \
    --tls-cert-file "$O/replica-1.crt" --tls-key-file "$O/replica-1.key" $chk
done
[ ! -e "$IT_DIR/cfgcheck" ] || fail "a refused start made its data dir $IT_DIR/cfgcheck"
# from here on the cluster and lib.sh's clients use TLS (it_tls_wrap)
PLAIN_CLI=$RABIA_CLI
export RABIA_TLS_DIR=$C
it_tls_wrap

# every replica also reads a config file (empty for now): a SIGHUP rereads it
: >"$IT_DIR/extra.conf"
export RABIA_EXTRA_ARGS="--config $IT_DIR/extra.conf"
cluster_start 3 kv
log() { cat "$RABIA_CLUSTER_DIR/r$1.log"; }
# wait_log I ERE [TIMEOUT_S]: replica I's log has a line matching ERE; prints it
wait_log() {
  local i=$1 re=$2 limit=${3:-10} t0=$SECONDS line
  while :; do
    line=$(grep -E -- "$re" "$RABIA_CLUSTER_DIR/r$i.log" | tail -n 1 || true)
    if [ -n "$line" ]; then
      ok "replica $i logs: ${line#* r$i }"
      return 0
    fi
    ((SECONDS - t0 < limit)) || fail "replica $i: no log line matching /$re/ within ${limit}s; last lines: $(tail -n 5 "$RABIA_CLUSTER_DIR/r$i.log" | tr '\n' '|')"
    sleep 0.2
  done
}
wait_log 1 "TLS 1.3 on peer links, certificates required both ways: certificate CN=replica-1"
wait_log 2 "TLS 1.3 on the client ports"

say "TLS clients are served"
T=(--tls --cacert "$C/ca.crt")
expect_eq "redis-cli --tls replica 1: SET tls:k v1" "$(timeout 10 "$REDIS_CLI" "${T[@]}" -p "$(resp_port 1)" SET tls:k v1)" OK
expect_eq "redis-cli --tls replica 2: GET tls:k" "$(timeout 10 "$REDIS_CLI" "${T[@]}" -p "$(resp_port 2)" GET tls:k)" v1
expect_eq "rabia-cli --tls replica 3: kv get tls:k" "$(timeout 20 "$RABIA_CLI" -a "$(native_addr 3)" kv get tls:k)" '"v1"'
out=$(timeout 20 "$PY" -c "
import redis
r = redis.Redis(port=$(resp_port 3), ssl=True, ssl_ca_certs='$C/ca.crt', socket_timeout=5)
print(r.incr('tls:n', 5), r.get('tls:k').decode())")
expect_eq "python3-redis ssl=True replica 3: INCRBY tls:n 5, GET tls:k" "$out" "5 v1"
# what goes over the wire is TLS 1.3 with the replica's certificate
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$(resp_port 2)" -CAfile "$C/ca.crt" </dev/null 2>&1 || true)
expect_match "openssl s_client to replica 2's RESP port: TLS 1.3" "$out" "New, TLSv1\.3, Cipher is TLS_"
expect_match "replica 2's certificate" "$out" "subject=.*CN *= *replica-2"
expect_match "verified against the test CA" "$out" "Verify return code: 0 \(ok\)"

say "a TLS client that sends close_notify after its commands still gets the replies"
# as a plaintext client that shuts its sending side down; before, the
# close_notify closed the connection at once and the replies were lost
# (the script printed nothing)
v100=$(printf 'v%.0s' $(seq 100))
n=0
for how in close_notify close_notify+fin; do
  n=$((n + 1))
  out=$(timeout 20 "$PY" "$here/tls_halfclose.py" "$(resp_port 2)" "$C/ca.crt" "$how" 2>&1) || fail "tls_halfclose.py $how: $out"
  expect_eq "SET, INCR, GET, then $how: the three replies" "$out" "+OK :$n \$100 $v100"
done

say "rabia-cli checks that the certificate names the replica dialed"
# the test certificates hold DNS:replica-I, DNS:localhost and IP:127.0.0.1
expect_eq "rabia-cli --tls -a localhost:PORT (DNS:localhost in the certificate)" \
  "$(timeout 20 "$RABIA_CLI" -a "localhost:$(native_port 3)" kv get tls:k)" '"v1"'
expect_eq "rabia-cli --tls --tls-server-name replica-3 to replica 3" \
  "$(timeout 20 "$RABIA_CLI" --tls-server-name replica-3 -a "$(native_addr 3)" kv get tls:k)" '"v1"'
rc=0
out=$(timeout 20 "$RABIA_CLI" --tls-server-name replica-2 -a "$(native_addr 3)" --timeout 300 kv get tls:k 2>&1) || rc=$?
expect_eq "rabia-cli --tls-server-name replica-2 to replica 3 (another replica's certificate): exit status" "$rc" 3
expect_match "... and says why" "$out" "hostname mismatch \(the replica's certificate does not name 'replica-2' in its subjectAltName"
rc=0
out=$(timeout 20 "$PLAIN_CLI" --tls --cacert "$C/ca.crt" --tls-server-name replica-2 -a "$(native_addr 3)" backup "$IT_DIR/mismatch.snap" 2>&1) || rc=$?
expect_eq "rabia-cli backup with --tls-server-name replica-2 from replica 3: exit status" "$rc" 3
expect_match "... and says why" "$out" "does not name 'replica-2' in its subjectAltName"
[ ! -e "$IT_DIR/mismatch.snap" ] || fail "a backup from a replica of the wrong name wrote $IT_DIR/mismatch.snap"
rc=0
out=$(timeout 20 "$PLAIN_CLI" --tls-server-name replica-2 -a "$(native_addr 3)" kv get tls:k 2>&1) || rc=$?
expect_eq "rabia-cli --tls-server-name without --tls: exit status (2: usage)" "$rc" 2

say "a plaintext client gets no service"
rc=0
out=$(timeout 10 "$REDIS_CLI" -p "$(resp_port 1)" PING 2>&1) || rc=$?
[ "$out" != PONG ] || fail "plaintext redis-cli got PONG from a TLS port"
ok "plaintext redis-cli PING: no PONG (exit $rc: $(head -c 80 <<<"$out" | tr '\n' ' '))"
wait_log 1 "client 127\.0\.0\.1:[0-9]+: TLS failed: wrong version number.*a client without TLS\?"
rc=0
out=$(timeout 20 "$PLAIN_CLI" -a "$(native_addr 2)" --timeout 300 kv get tls:k 2>&1) || rc=$?
expect_eq "plaintext rabia-cli kv get: exit status (3: unreachable)" "$rc" 3
# it said only "timed out: no replica answered", as for replicas down
expect_match "plaintext rabia-cli kv get: names --tls" "$out" "every connection was closed by the replica before any answer \(Connection reset by peer\): is $(native_addr 2) a replica's native client port \(client-listen\), and does it want --tls \(tls-clients = yes\)\?"
rc=0
out=$(timeout 20 "$PLAIN_CLI" -a "$(native_addr 2),$(native_addr 3)" --timeout 300 kv set tls:plain v 2>&1) || rc=$?
expect_eq "plaintext rabia-cli kv set (two replicas): exit status (3: unreachable)" "$rc" 3
expect_match "plaintext rabia-cli kv set: names --tls" "$out" "are $(native_addr 2),$(native_addr 3) replicas' native client ports \(client-listen\), and do they want --tls"
# status said only "unreachable: Connection reset by peer", as for a replica
# that is down: it names the likely cause as backup does
rc=0
out=$(timeout 20 "$PLAIN_CLI" -a "$(native_addr 2)" --timeout 300 status 2>&1) || rc=$?
expect_eq "plaintext rabia-cli status: exit status (3: unreachable)" "$rc" 3
expect_match "plaintext rabia-cli status: names --tls" "$out" "does it want --tls \(tls-clients = yes\)\?"
wait_log 2 "client 127\.0\.0\.1:[0-9]+: TLS failed: wrong version number"
all_alive 3

say "rabia-cli backup over TLS"
BK=$IT_DIR/tls-backup.snap
out=$(timeout 30 "$PLAIN_CLI" --tls --cacert "$C/ca.crt" -a "$(native_addr 1)" backup "$BK" 2>&1) ||
  fail "rabia-cli --tls --cacert ca.crt backup from replica 1: $out"
expect_match "rabia-cli --tls --cacert ca.crt backup" "$(tr '\n' ' ' <<<"$out")" "^backup written to $BK slot: [0-9]+ .*from: $(native_addr 1)"
bslot=$(sed -n 's/^slot: //p' <<<"$out")
bhash=$(sed -n 's/^state_hash: //p' <<<"$out")
out=$(timeout 10 "$PLAIN_CLI" backup --verify "$BK" 2>&1) || fail "rabia-cli backup --verify $BK: $out"
expect_match "rabia-cli backup --verify of the TLS backup: same slot and hash" "$(tr '\n' ' ' <<<"$out")" \
  "^backup intact: $BK slot: $bslot .*state_hash: $bhash "
wait_log 1 "backup at slot $bslot sent"
rm -f "$BK"
rc=0
out=$(timeout 20 "$PLAIN_CLI" -a "$(native_addr 2)" backup "$BK" 2>&1) || rc=$?
expect_eq "plaintext rabia-cli backup from a TLS port: exit status (3: no replica served it)" "$rc" 3
expect_match "... and says why" "$out" "before any answer: is it a replica's native client port \(client-listen\), and does it want --tls \(tls-clients = yes\)\?"
[ ! -e "$BK" ] || fail "a failed plaintext backup wrote $BK"
rc=0
out=$(timeout 20 "$PLAIN_CLI" --tls --cacert "$O/ca.crt" -a "$(native_addr 2)" backup "$BK" 2>&1) || rc=$?
expect_eq "rabia-cli --tls backup trusting another CA: exit status" "$rc" 3
expect_match "... and says why" "$out" "TLS: certificate verify failed.*is --cacert the CA that signed the replicas. certificates\?"
[ ! -e "$BK" ] || fail "a backup from an untrusted replica wrote $BK"

say "tls-auth-clients = yes on replica 3"
pid3=$(replica_pid 3)
stop_pids "$RABIAD" "$pid3"
RABIA_TLS_AUTH_CLIENTS=yes cluster_restart 3
wait_ready 20 1 2 3
rc=0
out=$(timeout 10 "$REDIS_CLI" "${T[@]}" -p "$(resp_port 3)" GET tls:k 2>&1) || rc=$?
[ "$out" != v1 ] || fail "replica 3 with tls-auth-clients served a client without a certificate"
ok "redis-cli --tls without a client certificate: refused ($(head -c 80 <<<"$out" | tr '\n' ' '))"
wait_log 3 "client 127\.0\.0\.1:[0-9]+: TLS failed: (peer did not return a certificate|.*certificate)"
expect_eq "redis-cli --tls --cert client.crt replica 3: GET tls:k" \
  "$(timeout 10 "$REDIS_CLI" "${T[@]}" --cert "$C/client.crt" --key "$C/client.key" -p "$(resp_port 3)" GET tls:k)" v1

# start_r3 CERT KEY CA: replica 3 by hand (as local-cluster.sh does) with
# other TLS files and its own data dir
R3X=
start_r3() {
  stop_pids "$RABIAD" "$(replica_pid 3)" ${R3X:+"$R3X"}
  rm -f "$RABIA_CLUSTER_DIR/r3.pid"
  local m="1=127.0.0.1:$(peer_port 1),2=127.0.0.1:$(peer_port 2),3=127.0.0.1:$(peer_port 3)"
  rm -rf "$RABIA_CLUSTER_DIR/r3-$4"
  : >"$RABIA_CLUSTER_DIR/r3-$4.log"
  "$RABIAD" --id 3 --members "$m" --client-listen "127.0.0.1:$(native_port 3)" \
    --resp-listen "127.0.0.1:$(resp_port 3)" --data-dir "$RABIA_CLUSTER_DIR/r3-$4" \
    --tls-peers yes --tls-clients yes --tls-cert-file "$1" --tls-key-file "$2" --tls-ca-cert-file "$3" \
    >>"$RABIA_CLUSTER_DIR/r3-$4.log" 2>&1 &
  IT_DAEMON_PIDS+=("$!")
  R3X=$!
}
log3x() { cat "$RABIA_CLUSTER_DIR/r3-$1.log"; }
wait_log3x() { # NAME ERE
  local t0=$SECONDS line
  while :; do
    line=$(grep -E -- "$2" "$RABIA_CLUSTER_DIR/r3-$1.log" | tail -n 1 || true)
    if [ -n "$line" ]; then
      ok "replica 3 ($1) logs: ${line#* r3 }"
      return 0
    fi
    ((SECONDS - t0 < 10)) || fail "replica 3 ($1): no log line matching /$2/; last lines: $(tail -n 5 "$RABIA_CLUSTER_DIR/r3-$1.log" | tr '\n' '|')"
    sleep 0.2
  done
}
# the cluster keeps serving through replicas 1 and 2
serving() {
  expect_eq "$1: redis-cli --tls replica 1: SET tls:$2 x" "$(redis 1 SET "tls:$2" x)" OK
  expect_eq "$1: redis-cli --tls replica 2: GET tls:$2" "$(redis 2 GET "tls:$2")" x
}

say "replica 3 presents replica 2's certificate"
start_r3 "$C/replica-2.crt" "$C/replica-2.key" "$C/ca.crt" wrongid
wait_log3x wrongid "ERROR r3 tls-cert-file .*replica-2.crt has subject CN \"replica-2\", not \"replica-3\""
wait_log 1 "peer 127\.0\.0\.1:[0-9]+ presented a certificate for replica 2 but claims to be replica 3: refused"
wait_log 2 "replica 3 at 127\.0\.0\.1:$(peer_port 3) presented a certificate for replica 2: refused"
wait_log3x wrongid "TLS failed: the other side closed the connection during the TLS handshake|lost connection to replica"
s=$(replica_status 1)
expect_match "replica 1 does not count the impostor as replica 3" "$s" "member_3: 127\.0\.0\.1:$(peer_port 3) unreachable"
serving "wrong id" wrongid
pid_runs "$R3X" "$RABIAD" || fail "the replica with the wrong certificate exited (it should keep trying, refused)"

say "replica 3 has a certificate of another CA"
start_r3 "$O/replica-3.crt" "$O/replica-3.key" "$O/ca.crt" otherca
wait_log 1 "(peer 127\.0\.0\.1:[0-9]+: TLS failed: .*(unknown ca|certificate verify failed)|TLS with replica 3 at .* failed: certificate verify failed.*unable to get local issuer)"
wait_log3x otherca "TLS with replica [12] at .* failed: certificate verify failed \(SSL routines\): unable to get local issuer certificate: refused"
serving "foreign CA" otherca
stop_pids "$RABIAD" "$R3X"

say "replica 3's peer port accepts and never answers: the dialers give up on the handshake and redial"
bg blackhole "$PY" -c "
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', $(peer_port 3)))
s.listen(64)
held = []
while True:
    held.append(s.accept()[0])"
hole=$BG_PID
wait_log 1 "TLS with replica 3 at 127\.0\.0\.1:$(peer_port 3): no handshake within 5 s: closing, will redial" 15
serving "black hole" hole
kill "$hole" 2>/dev/null || true

say "replica 3 back with its own certificate"
cluster_restart 3
wait_ready 30 1 2 3
wait_converged 30 1 2 3

say "SIGHUP: a new certificate for replica 1"
fp() { # the SHA-256 fingerprint of the certificate replica I's RESP port presents
  timeout 10 openssl s_client -connect "127.0.0.1:$(resp_port "$1")" -CAfile "$C/ca.crt" </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//'
}
old_fp=$(fp 1)
[ -n "$old_fp" ] || fail "no certificate from replica 1's RESP port"
# a new key and certificate for replica-1 from the same CA, replacing the files in place
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$IT_DIR/new.key" 2>/dev/null
openssl req -new -key "$IT_DIR/new.key" -subj "/O=rabia test/CN=replica-1" -out "$IT_DIR/new.csr" 2>/dev/null
printf 'extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:replica-1,IP:127.0.0.1\n' >"$IT_DIR/new.ext"
openssl x509 -req -in "$IT_DIR/new.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial -days 30 \
  -extfile "$IT_DIR/new.ext" -out "$IT_DIR/new.crt" 2>/dev/null || fail "cannot issue the new certificate"
new_fp=$(openssl x509 -in "$IT_DIR/new.crt" -noout -fingerprint -sha256 | sed 's/.*=//')
cp "$IT_DIR/new.crt" "$C/replica-1.crt"
cp "$IT_DIR/new.key" "$C/replica-1.key"
pid1=$(replica_pid 1)
lost_before=$(grep -c "lost connection" "$RABIA_CLUSTER_DIR/r1.log" || true)
kill -HUP "$pid1"
wait_log 1 "TLS reloaded: certificate CN=replica-1 .*new connections use it"
expect_eq "replica 1's RESP port now presents the new certificate" "$(fp 1)" "$new_fp"
[ "$new_fp" != "$old_fp" ] || fail "the new certificate has the old fingerprint"
expect_eq "after the reload: redis-cli --tls replica 1: SET tls:hup y" "$(redis 1 SET tls:hup y)" OK
expect_eq "after the reload: redis-cli --tls replica 3: GET tls:hup" "$(redis 3 GET tls:hup)" y
pid_runs "$pid1" "$RABIAD" || fail "replica 1 exited after SIGHUP"
expect_eq "replica 1's peer links stayed up through the reload (lost-connection lines in its log)" \
  "$(grep -c "lost connection" "$RABIA_CLUSTER_DIR/r1.log" || true)" "$lost_before"

say "SIGHUP with a broken key file keeps the previous certificate"
echo "not a key" >"$C/replica-1.key"
kill -HUP "$pid1"
wait_log 1 "reload \(SIGHUP\): tls-key-file .*replica-1.key: not a usable PEM private key: .*; the running configuration stays"
expect_eq "replica 1 still presents the reloaded certificate" "$(fp 1)" "$new_fp"
expect_eq "after the failed reload: redis-cli --tls replica 1: INCR tls:n" "$(redis 1 INCR tls:n)" 6
pid_runs "$pid1" "$RABIAD" || fail "replica 1 exited after a SIGHUP with a broken key"
cp "$IT_DIR/new.key" "$C/replica-1.key"

say "SIGHUP with an expired certificate keeps the previous certificate"
dated_cert "$C/replica-1.key" replica-1 "$IT_DIR/new-expired.crt" 20200101000000Z 20200201000000Z
cp "$IT_DIR/new-expired.crt" "$C/replica-1.crt"
kill -HUP "$pid1"
wait_log 1 "reload \(SIGHUP\): tls-cert-file .*replica-1.crt: the certificate CN=replica-1 \(valid from Jan  1 00:00:00 2020 GMT until Feb  1 00:00:00 2020 GMT\) does not verify against .*certificate has expired: renew it.*; the running configuration stays"
expect_eq "replica 1 still presents the reloaded certificate" "$(fp 1)" "$new_fp"
expect_eq "after the failed reload: a new TLS connection: redis-cli --tls replica 1: INCR tls:n" "$(redis 1 INCR tls:n)" 7
pid_runs "$pid1" "$RABIAD" || fail "replica 1 exited after a SIGHUP with an expired certificate"
cp "$IT_DIR/new.crt" "$C/replica-1.crt"

say "SIGHUP with a new certificate and a config file with a mistake takes neither"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$IT_DIR/new2.key" 2>/dev/null
openssl req -new -key "$IT_DIR/new2.key" -subj "/O=rabia test/CN=replica-1" -out "$IT_DIR/new2.csr" 2>/dev/null
openssl x509 -req -in "$IT_DIR/new2.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial -days 30 \
  -extfile "$IT_DIR/new.ext" -out "$IT_DIR/new2.crt" 2>/dev/null || fail "cannot issue the second new certificate"
new2_fp=$(openssl x509 -in "$IT_DIR/new2.crt" -noout -fingerprint -sha256 | sed 's/.*=//')
cp "$IT_DIR/new2.crt" "$C/replica-1.crt"
cp "$IT_DIR/new2.key" "$C/replica-1.key"
echo "windw 1" >"$IT_DIR/extra.conf"
reloaded_before=$(grep -c "TLS reloaded" "$RABIA_CLUSTER_DIR/r1.log" || true)
kill -HUP "$pid1"
wait_log 1 "reload \(SIGHUP\): .*extra.conf:1: unknown key 'windw'.*; the running configuration stays"
sleep 0.5 # a TLS reload the SIGHUP asked for runs at the loop's next turn
expect_eq "no TLS reload under a refused configuration (TLS reloaded lines)" \
  "$(grep -c "TLS reloaded" "$RABIA_CLUSTER_DIR/r1.log" || true)" "$reloaded_before"
expect_eq "replica 1 still presents the certificate of the last reload taken" "$(fp 1)" "$new_fp"
: >"$IT_DIR/extra.conf"
kill -HUP "$pid1"
t0=$SECONDS # (wait_log would find the first reload's line)
until [ "$(grep -c "TLS reloaded" "$RABIA_CLUSTER_DIR/r1.log" || true)" -gt "$reloaded_before" ]; do
  ((SECONDS - t0 < 10)) || fail "no TLS reload within 10 s of a SIGHUP with a valid configuration"
  sleep 0.1
done
ok "the mistake fixed, SIGHUP again: TLS reloaded"
expect_eq "the mistake fixed, SIGHUP again: the new certificate" "$(fp 1)" "$new2_fp"
expect_eq "after it: redis-cli --tls replica 1: INCR tls:n" "$(redis 1 INCR tls:n)" 8

all_alive 3
wait_converged 30 1 2 3
