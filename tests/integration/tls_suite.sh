#!/usr/bin/env bash
# tls_suite: existing integration tests run unchanged against TLS clusters
# (RABIA_TLS_DIR: lib.sh's client wrappers, local-cluster.sh's certificates):
# kv3 (redis-cli, rabia-cli, pipelines, MULTI), counter_bank (rabia-cli on
# the counter and bank state machines), redis_app (python3-redis with
# failover across a kill -9), backup (rabia-cli backup over TLS, then
# rabiad --restore: the round trip). Each keeps its cluster logs, which must show
# TLS on peer links and client ports; then they are removed.
# All of them in this test's port slot (24), one after the other.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
export RABIA_IT_DEADLINE=${RABIA_IT_DEADLINE:-135}
unset RABIA_TLS_DIR
it_init tls_suite 24
need_cmd openssl redis-cli

certs=$IT_DIR/certs
bash "$IT_REPO/deploy/make-test-certs.sh" "$certs" 7 >/dev/null || fail "make-test-certs.sh $certs 7 failed"
ok "test CA and certificates for replicas 1..7 in $certs"
# our own slot: base = RABIA_IT_PORT_BASE + 100 * slot lands on 20000 + 100 * 24
our_base=$((${RABIA_IT_PORT_BASE:-20000} + 100 * 24))

for t in kv3:1 counter_bank:2 redis_app:16 backup:21; do
  name=${t%:*} slot=${t#*:}
  say "$name over TLS"
  t0=$SECONDS
  rc=0
  RABIA_TLS_DIR=$certs RABIA_IT_KEEP=1 RABIA_IT_PORT_BASE=$((our_base - 100 * slot)) RABIA_IT_DEADLINE=60 \
    timeout 75 bash "$here/$name.sh" >"$IT_DIR/$name.out" 2>&1 || rc=$?
  dir=$(sed -n 's/.*; dir \([^;]*\); TLS with the certificates in .*/\1/p' "$IT_DIR/$name.out" | head -n 1)
  [ -n "$dir" ] && on_exit "rm -rf '$dir'"
  if [ "$rc" != 0 ]; then
    tail -n 25 "$IT_DIR/$name.out" >&2
    fail "$name.sh over TLS: exit status $rc (output in $IT_DIR/$name.out)"
  fi
  [ -n "$dir" ] || fail "$name.sh did not run with TLS (no 'TLS with the certificates' in its port line)"
  checks=$(sed -n 's/.*PASS: \([0-9]*\) checks.*/\1/p' "$IT_DIR/$name.out")
  # (backup.sh's mixed-backups/: replicas restored from different backups,
  # refused by HELLO on purpose, which over TLS the dialer sees as a handshake
  # cut short)
  logs=$(find "$dir" -name 'r*.log' -not -path '*/mixed-backups/*' | sort)
  [ -n "$logs" ] || fail "$name.sh kept no replica logs in $dir"
  for f in $logs; do
    grep -q "TLS 1.3 on peer links, certificates required both ways" "$f" || fail "$f: peer links were not TLS"
    grep -q "TLS 1.3 on the client ports" "$f" || fail "$f: client ports were not TLS"
    # (a handshake cut short by a kill -9 is not a failure; a refused
    # certificate in a correctly configured cluster is)
    bad="(TLS failed|TLS with replica .* failed).*(certificate|alert|verify)|presented a certificate"
    if grep -E "$bad" "$f" >/dev/null; then
      fail "$f: a certificate refused in a cluster where everything is configured right: $(grep -E "$bad" "$f" | head -n 1)"
    fi
  done
  ok "$name.sh over TLS: PASS ($checks checks, $((SECONDS - t0)) s); its $(wc -w <<<"$logs") replica logs show TLS on peer links and client ports and no refused certificate"
  rm -rf "$dir"
done
