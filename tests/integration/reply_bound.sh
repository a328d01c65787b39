#!/usr/bin/env bash
# reply_bound: a reply the store would build larger than KV_REPLY_MAX
# (kv/internal.h, 512 MiB + 64 KiB: feature level 10) is answered with an
# error instead, on every path: EXEC (every replica applies it from the log),
# a read answered by one replica, a script's result. Before, every replica
# built the whole reply in memory: one EXEC of 300 MGETs of a 4 MB string
# (1.2 GB) stopped every replica that could not allocate it ("applying slot
# N failed: Cannot allocate memory"), and again at every replay of the log.
# Before, the EXEC here closed the connection (a RESP connection holds at
# most 64 MiB of output) after each replica built 1.2 GB; with less memory
# than that every replica stopped. The replicas run with a 3 GB data limit
# (ulimit -d: about 0.7 GB at rest, and the apply's and the reads' reply
# buffers keep their largest size). Ends with every replica running and
# equal state hashes.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init reply_bound 63
need_cmd redis-cli python3
# (a sanitizer's shadow memory counts toward the data limit: no limit there)
if ldd "$RABIAD" 2>/dev/null | grep -q 'libasan\|libtsan'; then
  say "sanitizer build: the replicas run without a data limit"
else
  ulimit -d 3000000
fi
cluster_start 3 kv
wait_level 3

# reply_bound.py PORT MODE: a 4 MB string k, then MODE's request; prints the
# reply's first line(s), or "closed" when the connection closed first
cat >"$IT_DIR/big.py" <<'EOF'
import socket, sys
port, mode = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(60)
buf = b""
def enc(argv):
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)
def line():
    global buf
    while b"\r\n" not in buf:
        d = s.recv(1 << 20)
        if not d:
            print("closed")
            sys.exit(0)
        buf += d
    l, buf = buf.split(b"\r\n", 1)
    return l.decode("latin1")
def call(*argv):
    s.sendall(enc([a if isinstance(a, bytes) else a.encode() for a in argv]))
    return line()
if mode == "fill":
    call("DEL", "k")
    for _ in range(20):
        call("APPEND", "k", b"x" * (200 << 10))
    print(call("STRLEN", "k"))
elif mode == "exec":
    assert call("MULTI") == "+OK"
    assert call("MGET", *["k"] * 300) == "+QUEUED"
    assert call("SET", "after", "1") == "+QUEUED"
    first = call("EXEC")
    print(first, line(), line())
elif mode == "read":
    print(call("MGET", *["k"] * 300))
elif mode == "script":
    print(call("EVAL", "local v = redis.call('get', KEYS[1]) local t = {} for i = 1, 300 do t[i] = v end return t",
               "1", "k"))
elif mode == "small":
    print(call("MGET", "k", "k"), len(buf) >= 0)
EOF
PY=$IT_DIR/big.py
expect_eq "replica 1: a 4 MB string k (20 APPENDs)" "$(timeout 60 python3 "$PY" "$(resp_port 1)" fill)" ":4096000"
err="-ERR reply too large: more than 536936448 bytes, which every replica would build in memory: ask for less per command (LRANGE, ZRANGE or SCAN in parts, fewer keys per MGET)"
expect_eq "replica 1: MULTI; MGET k x300 (1.2 GB); SET after 1; EXEC" \
  "$(timeout 60 python3 "$PY" "$(resp_port 1)" exec)" "*2 $err +OK"
expect_eq "replica 2: MGET k x300 (a read by the read index)" "$(timeout 60 python3 "$PY" "$(resp_port 2)" read)" "$err"
expect_match "replica 3: EVAL returning k 300 times" "$(timeout 60 python3 "$PY" "$(resp_port 3)" script)" \
  "^-ERR reply too large: more than 536936448 bytes"
expect_eq "replica 3: MGET k k (8 MB) is answered" "$(timeout 60 python3 "$PY" "$(resp_port 3)" small)" "*2 True"
expect_eq "replica 2: GET after (the EXEC's write after the refused MGET)" "$(redis 2 GET after)" 1
all_alive 3
wait_converged 30 1 2 3
