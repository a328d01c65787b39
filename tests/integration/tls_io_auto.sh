#!/usr/bin/env bash
# tls_io_auto: tls-clients = yes with io-threads = auto (the default) on a
# machine of 4 CPUs or more. Auto picked I/O threads there, and a connection
# an I/O thread serves cannot speak TLS (rio_conn_start_tls: -EOPNOTSUPP):
# every client connection was closed at accept ("cannot start TLS on an
# accepted connection"), so no client could reach the replica, while
# --check-config passed and io-threads = N > 0 is refused with "set
# io-threads = 0 (or auto)". Auto is 0 with tls-clients. fake_cpus.so makes
# this machine look like 8 CPUs to rabiad.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init tls_io_auto 54
need_cmd openssl
[ -n "${FAKE_CPUS:-}" ] && [ -r "$FAKE_CPUS" ] || skip "FAKE_CPUS (the fake_cpus shim) not given (a sanitizer build)"
C=$IT_DIR/certs
bash "$IT_REPO/deploy/make-test-certs.sh" "$C" 3 >/dev/null || fail "make-test-certs.sh $C 3 failed"
addr=$(native_addr 1)
m="1=127.0.0.1:$(peer_port 1),2=127.0.0.1:$(peer_port 2),3=127.0.0.1:$(peer_port 3)"
bg r1 env LD_PRELOAD="$FAKE_CPUS" "$RABIAD" --id 1 --members "$m" \
  --client-listen "$addr" --data-dir "$IT_DIR/r1" --durability memory --io-threads-pin no \
  --tls-clients yes --tls-cert-file "$C/replica-1.crt" --tls-key-file "$C/replica-1.key" --tls-ca-cert-file "$C/ca.crt"
for _ in $(seq 100); do grep -q "replica 1 of 3" "$IT_DIR/r1.out" && break; sleep 0.1; done
grep -q "replica 1 of 3" "$IT_DIR/r1.out" || fail "rabiad did not start: $(cat "$IT_DIR/r1.out")"
sleep 0.5 # past open_io: the I/O threads start and the listeners open after the line above
out=$(timeout 20 "$RABIA_CLI" -a "$addr" --timeout 3000 --tls --cacert "$C/ca.crt" status 2>&1) || true
if grep -q "^unreachable" <<<"$out"; then
  fail "a TLS client cannot reach a replica with io-threads auto on 8 CPUs: $out; rabiad: $(tail -n 3 "$IT_DIR/r1.out")"
fi
grep -q "io-threads 0 (auto, tls-clients)" "$IT_DIR/r1.out" ||
  fail "no 'io-threads 0 (auto, tls-clients)' line (auto would pick 2 on the shim's 8 CPUs): $(cat "$IT_DIR/r1.out")"
grep -q "^member_1: .* self" <<<"$out" || fail "rabia-cli --tls status: unexpected answer: $out"
ok "tls-clients with io-threads auto on 8 CPUs: served on the consensus thread"
