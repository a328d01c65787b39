#!/usr/bin/env bash
# backup_tls_auth: rabia-cli backup and rabiad --restore with TLS 1.3 on
# every port AND users (requirepass, an ACL file) at once: what an operator
# of a secured cluster runs.
#   - over TLS, a backup without a password (NOAUTH), with a wrong one
#     (WRONGPASS) and as a user without +@all allkeys (NOPERM) is refused:
#     exit 1, the replica's words, no file, a "backup refused to" log line;
#   - as an ACL user with +@all ~* it is taken, carries exactly the
#     replicas' state hash at its slot, and --verify agrees;
#   - a NEW cluster, TLS and users again, restored from it reports that slot
#     and hash on every replica and serves the keys (through redis-cli --tls
#     with AUTH).
# Port slot 25.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
export RABIA_IT_DEADLINE=${RABIA_IT_DEADLINE:-75}
unset RABIA_TLS_DIR
it_init backup_tls_auth 25
need_cmd openssl redis-cli

D=$IT_DIR
bash "$IT_REPO/deploy/make-test-certs.sh" "$D/certs" 3 >/dev/null || fail "make-test-certs.sh $D/certs 3 failed"
cat >"$D/users.acl" <<'ACL'
user backup on >bkpw ~* +@all
user ro on >ropw ~* +@read
ACL
PLAIN_CLI=$RABIA_CLI # the binary: TLS options given by hand below
export RABIA_TLS_DIR=$D/certs
it_tls_wrap # redis-cli and lib.sh's status checks speak TLS
export RABIA_PASSWORD=defpw # lib.sh's status and convergence checks
export RABIA_EXTRA_ARGS="--requirepass=defpw --acl-file=$D/users.acl"
T=(--tls --cacert "$D/certs/ca.crt")
rcli() { RABIA_PASSWORD= timeout 60 "$PLAIN_CLI" "${T[@]}" "$@"; } # no password unless given

say "a TLS cluster with users, some keys"
cluster_start 3 kv "$D/a"
grep -q "TLS 1.3 on the client ports" "$D/a/r1.log" || fail "replica 1's client ports are not TLS"
for i in 1 2 3; do
  expect_eq "SET k$i through replica $i (redis-cli --tls, AUTH)" "$(redis "$i" -a defpw --no-auth-warning SET "k$i" "v$i")" OK
done
expect_eq "HSET h through replica 2" "$(redis 2 -a defpw --no-auth-warning HSET h f1 a f2 b)" 2

say "refused over TLS"
B=$D/b.snap
A=$(all_addrs 3)
refused() { # refused WHAT ERE ARGS...
  local what=$1 re=$2 rc=0 out
  shift 2
  out=$(rcli -a "$A" "$@" backup "$B" 2>&1) || rc=$?
  [ "$rc" = 1 ] || fail "backup $what: exit status $rc (want 1: refused): $out"
  [ ! -e "$B" ] || fail "backup $what: refused, yet $B was written"
  expect_match "backup over TLS $what: refused" "$out" "$re"
}
refused "without a password" "refused the backup: NOAUTH Authentication required\. \(give --user/--pass or RABIA_PASSWORD\)$"
refused "--pass wrong" "refused the authentication: WRONGPASS invalid username-password pair or user is disabled\.$" --pass wrong
refused "--user ro" "refused the backup: NOPERM user 'ro' may not take a backup" --user ro --pass ropw
logs=$(cat "$D"/a/r*.log)
expect_match "logged: the refusal of ro" "$logs" "backup refused to 127\.0\.0\.1:[0-9]+ \(user 'ro'\): NOPERM"
expect_match "logged: the wrong password" "$logs" "AUTH failed for user 'default' from 127\.0\.0\.1:[0-9]+ \(wrong password, native"

say "taken over TLS as user backup (+@all ~*)"
wait_converged 20 1 2 3
out=$(rcli -a "$(native_addr 2)" --user backup --pass bkpw backup "$B" 2>&1) || fail "backup as user backup: $out"
S=$(field "$out" slot)
H=$(field "$out" state_hash)
expect_eq "the backup's slot/hash = the replicas' applied/state_hash" "$S/$H" "$CONVERGED_APPLIED/$CONVERGED_HASH"
expect_match "replica 2 logs it" "$(cat "$D/a/r2.log")" "backup asked by 127\.0\.0\.1:[0-9]+ \(user backup\)"
out=$(timeout 10 "$PLAIN_CLI" backup --verify "$B" 2>&1) || fail "backup --verify: $out"
expect_eq "backup --verify: slot/hash" "$(field "$out" slot)/$(field "$out" state_hash)" "$S/$H"
cluster_stop

say "a NEW cluster (TLS, users) restored from it"
RABIA_EXTRA_ARGS="$RABIA_EXTRA_ARGS --restore $B" cluster_start 3 kv "$D/r"
for i in 1 2 3; do
  s=$(replica_status "$i")
  expect_eq "restored replica $i: applied/state_hash" "$(field "$s" applied)/$(field "$s" state_hash)" "$S/$H"
done
expect_eq "restored: k1 k2 k3 at replica 3" "$(redis 3 -a defpw --no-auth-warning MGET k1 k2 k3 | tr '\n' ' ')" "v1 v2 v3 "
expect_eq "restored: h at replica 1" "$(redis 1 -a defpw --no-auth-warning HGET h f2)" b
out=$(RABIA_PASSWORD= timeout 20 redis-cli -p "$(resp_port 1)" GET k1 2>&1 || true)
expect_match "restored cluster still wants AUTH" "$out" "NOAUTH"
cluster_stop
