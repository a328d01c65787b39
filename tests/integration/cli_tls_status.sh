#!/usr/bin/env bash
# cli_tls_status: rabia-cli --tls status against a fake replica (python3's
# ssl module, the test CA's certificate) that writes its whole answer in
# one TLS record: a STATUS of 10 000 bytes, and with --pass an accepted
# CLIENT_AUTH_REPLY followed by a STATUS of 5 000 bytes in the same record
# (a replica answers both in one write). OpenSSL decrypts a record whole:
# what the first read's 4 KiB buffer did not take stays inside the TLS
# session, where no poll() on the socket announces it. The status call
# polled before every read, so it waited for bytes that had all arrived and
# answered -ETIMEDOUT at its deadline ("unreachable: Connection timed out",
# exit 3); it must print the text at once (backup.c reads before it polls
# for the same reason).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init cli_tls_status 52
need_cmd python3 openssl
C=$IT_DIR/certs
bash "$IT_REPO/deploy/make-test-certs.sh" "$C" 1 >/dev/null || fail "make-test-certs.sh $C 1 failed"
port=$((RABIA_RESP_BASE + 1))

bg fake python3 -c '
import socket, ssl, struct, sys
sys.path.insert(0, sys.argv[3])
from garbage import frame, T_STATUS
port, certs = int(sys.argv[1]), sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain(certs + "/replica-1.crt", certs + "/replica-1.key")
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(4)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    try:
        t = ctx.wrap_socket(c, server_side=True)
        buf = b""
        while True:  # up to the STATUS_REQ (type 22), after a CLIENT_AUTH (24) if any
            d = t.recv(65536)
            if not d:
                break
            buf += d
            if len(buf) >= 16 and buf[4] == 24 and len(buf) >= 32 + struct.unpack_from("<I", buf, 8)[0]:
                break
            if len(buf) >= 16 and buf[4] == 22:
                break
        auth = len(buf) >= 16 and buf[4] == 24
        text = b"role: fake\n" + b"x" * ((5000 if auth else 10000) - 12) + b"\n"
        out = frame(25, struct.pack("<BI", 0, 0)) if auth else b""
        out += frame(T_STATUS, struct.pack("<I", len(text)) + text)
        t.sendall(out)  # one write: one TLS record (under 16 KiB)
        t.recv(1)
    except Exception as e:
        print("connection:", e, flush=True)
    finally:
        c.close()
' "$port" "$C" "$(dirname "$0")"
for _ in $(seq 50); do grep -q ready "$IT_DIR/fake.out" && break; sleep 0.1; done
grep -q ready "$IT_DIR/fake.out" || fail "the fake TLS replica did not start: $(cat "$IT_DIR/fake.out")"

# status_case WHAT BYTES ARGS...: rabia-cli --tls status (3 s timeout) exits
# 0 within 1.5 s and prints the whole text of BYTES bytes
status_case() {
  local what=$1 bytes=$2 rc=0 out t0 took
  shift 2
  t0=$(date +%s%N)
  out=$(timeout 20 "$RABIA_CLI" -a "127.0.0.1:$port" --tls --cacert "$C/ca.crt" -t 3000 "$@" status 2>&1) || rc=$?
  took=$((($(date +%s%N) - t0) / 1000000))
  [ "$rc" = 0 ] || fail "$what: rabia-cli exited $rc after $took ms, expected 0 (output: $(head -c 300 <<<"$out" | tr '\n' '|'))"
  expect_match "$what: the text" "$out" "^role: fake$"
  expect_eq "$what: the whole text" "$(sed -n '/^role: fake$/,$p' <<<"$out" | wc -c)" "$bytes"
  ((took < 1500)) || fail "$what: took $took ms (the answer had all arrived: no wait for the timeout)"
  ok "$what: answered in $took ms"
}
status_case "a 10 000-byte STATUS in one TLS record" 10000
status_case "an accepted CLIENT_AUTH_REPLY and a 5 000-byte STATUS in one TLS record" 5000 --pass secret
