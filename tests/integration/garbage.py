#!/usr/bin/env python3
"""Malformed input for one replica port (used by garbage.sh).

    garbage.py peer|native|resp HOST PORT [--cluster-id HEX] [--self-id N] [--n N] [--quiet]

Each case opens its own connection, sends its bytes, and reads what comes
back for a short while: 'closed' (EOF or reset), 'open' (no answer, still
connected) or the bytes received. Cases carry an expectation; the script
prints one line per case (--quiet: only failed ones, and the count) and
exits 1 if any expectation failed.

Frames follow core/codec.h, version 2 (which replicas still read; they
write version 3, whose checksum is XXH3): 16-byte header 'RBA', version 2,
type, from, flags u16 = 0, payload_len u32, checksum u32 = low 32 bits of
XXH64(header bytes 4..11 + payload, seed 0x5241424941); little-endian
throughout. XXH64 is implemented below (no xxhash module needed); a
STATUS_REQ that the replica answers proves the checksum right. A HELLO's
own version byte is the protocol's (3).
"""
import os
import socket
import struct
import sys
import time

M64 = (1 << 64) - 1
P1, P2, P3, P4, P5 = (11400714785074694791, 14029467366897019727, 1609587929392839161,
                      9650029242287828579, 2870177450012600261)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc, lane):
    acc = (acc + lane * P2) & M64
    return (_rotl(acc, 31) * P1) & M64


def _merge(acc, val):
    acc ^= _round(0, val)
    return (acc * P1 + P4) & M64


def xxh64(data, seed=0):
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed & M64, (seed - P1) & M64]
        while i + 32 <= n:
            for k in range(4):
                v[k] = _round(v[k], struct.unpack_from("<Q", data, i + 8 * k)[0])
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & M64
        for k in range(4):
            h = _merge(h, v[k])
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        h ^= _round(0, struct.unpack_from("<Q", data, i)[0])
        h = (_rotl(h, 27) * P1 + P4) & M64
        i += 8
    if i + 4 <= n:
        h ^= (struct.unpack_from("<I", data, i)[0] * P1) & M64
        h = (_rotl(h, 23) * P2 + P3) & M64
        i += 4
    while i < n:
        h ^= (data[i] * P5) & M64
        h = (_rotl(h, 11) * P1) & M64
        i += 1
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    h ^= h >> 32
    return h


assert xxh64(b"") == 0xEF46DB3751D8E999, "xxh64 self-test"
assert xxh64(b"a") == 0xD24EC4F1A98C6E5B, "xxh64 self-test"

SEED = 0x5241424941
T_HELLO, T_VOTE, T_PROPOSAL, T_SNAP_CHUNK = 12, 4, 2, 11
T_CLIENT_REQ, T_CLIENT_REPLY, T_STATUS_REQ, T_STATUS = 20, 21, 22, 23


def frame(mtype, payload=b"", frm=0, version=2, flags=0, length=None, checksum=None):
    length = len(payload) if length is None else length
    hdr = b"RBA" + struct.pack("<BBBHI", version, mtype, frm, flags, length)
    if checksum is None:
        checksum = xxh64(hdr[4:12] + payload, SEED) & 0xFFFFFFFF
    return hdr + struct.pack("<I", checksum) + payload


def hello(cluster_id, frm, incarnation=1, version=3):
    return frame(T_HELLO, struct.pack("<QQB", cluster_id, incarnation, version), frm=frm)


def rsm_snapshot(applied, rsm1=False):
    """An apply-layer snapshot (core/rsm.h) of an empty kv store taken at
    slot `applied`; rsm1: the format before the batch trackers (RSM1)."""
    body = struct.pack("<II", 0x314D5352 if rsm1 else 0x324D5352, 2) + b"kv"
    body += struct.pack("<QQQ", applied, 0, 0)  # applied slot, sessions opened, no sessions
    if not rsm1:
        body += struct.pack("<I", 0)  # no batch trackers
    # kv snapshot version 2 (kv/snapshot.c): clock, version counter, then 16
    # empty databases (256 absent-key versions, sweep cursor, no keys)
    kv = struct.pack("<BQQ", 2, 0, 0) + (bytes(256 * 8) + struct.pack("<QQ", 0, 0)) * 16
    body += struct.pack("<Q", len(kv)) + kv
    return body + struct.pack("<Q", xxh64(body, 0))


def client_auth(user, pw):
    """CLIENT_AUTH (24): u8 user length, user, password."""
    body = bytes([len(user)]) + user + pw
    return frame(24, struct.pack("<I", len(body)) + body)


def client_op(*args):
    """A KV operation as a CLIENT_REQ body carries it: u32 count, then each
    argument as u32 length and bytes."""
    b = struct.pack("<I", len(args))
    for a in args:
        b += struct.pack("<I", len(a)) + a
    return b


def client_req(cid, seq, ack, body=b""):
    """CLIENT_REQ (20): client id, seq, ack, body."""
    return frame(20, struct.pack("<QQQI", cid, seq, ack, len(body)) + body)


def frames(conn):
    """The frames arriving on a connection, as (type, payload), until EOF:
    a fake replica's read loop (cli_outcome.py, backup_stall.py)."""
    buf = b""
    while True:
        d = conn.recv(65536)
        if not d:
            return
        buf += d
        while len(buf) >= 16 and len(buf) >= 16 + struct.unpack_from("<I", buf, 8)[0]:
            n = struct.unpack_from("<I", buf, 8)[0]
            yield buf[4], buf[16:16 + n]
            buf = buf[16 + n:]


def read_frame(sock, wait=10.0):
    """The next whole frame on sock as (type, payload), None at EOF; frames
    after it in the same read are dropped (callers send one at a time)."""
    sock.settimeout(wait)
    buf = b""
    while len(buf) < 16 or len(buf) < 16 + struct.unpack_from("<I", buf, 8)[0]:
        b = sock.recv(65536)
        if not b:
            return None
        buf += b
    return buf[4], buf[16:16 + struct.unpack_from("<I", buf, 8)[0]]


def exchange(host, port, data, wait=1.0, enough=None):
    """Send data on a fresh connection; return ('closed'|'open', bytes received).
    Reads until the peer closes, `wait` seconds pass, or enough(got) is true."""
    s = socket.create_connection((host, port), timeout=3)
    got = b""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return "closed", got
        s.settimeout(0.2)
        end = time.monotonic() + wait
        while time.monotonic() < end:
            try:
                d = s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return "closed", got
            if not d:
                return "closed", got
            got += d
            if enough and enough(got):
                return "open", got
        return "open", got
    finally:
        s.close()


def main():
    kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    args = [a for a in sys.argv[4:] if a not in ("--quiet", "--rsm1")]
    opts = dict(zip(args[0::2], args[1::2]))
    cluster = int(opts.get("--cluster-id", "0"), 16)
    self_id = int(opts.get("--self-id", "1"))
    n = int(opts.get("--n", "3"))
    wrong_cluster = cluster ^ 0x5A5A5A5A5A5A5A5A
    failures = 0

    quiet = "--quiet" in sys.argv
    count = 0

    def case(name, data, expect, wait=1.0, enough=None):
        """expect: 'closed', 'any', or a callable (outcome, bytes) -> bool;
        enough(bytes): stop reading early (the answer is complete)."""
        nonlocal failures, count
        count += 1
        outcome, got = exchange(host, port, data, wait, enough)
        if expect == "any":
            good = True
        elif callable(expect):
            good = expect(outcome, got)
        else:
            good = outcome == expect
        shown = got[:60]
        if not good or not quiet:
            print(f"  {'ok  ' if good else 'FAIL'} {kind}:{port} {name}: sent {len(data)} bytes -> "
                  f"{outcome}{', got ' + repr(shown) if got else ''}")
        if not good:
            failures += 1

    good_status = frame(T_STATUS_REQ)
    bad_sum = bytearray(frame(T_STATUS_REQ, b""))
    bad_sum[12] ^= 0xFF
    vote = struct.pack("<QHBB", 1, 1, 1, 0)  # slot 1, phase 1, value 1, no id
    # frame-level garbage: every binary port closes the connection
    if kind in ("peer", "native"):
        if kind == "native":
            case("STATUS_REQ (valid: checks our checksum code)", good_status,
                 lambda o, g: len(g) >= 16 and g[:3] == b"RBA" and g[4] == T_STATUS,
                 enough=lambda g: len(g) >= 16)
        case("bad magic", b"XYZ\x01" + os.urandom(12), "closed")
        case("wrong header version", frame(T_STATUS_REQ, version=9), "closed")
        case("nonzero flags", frame(T_STATUS_REQ, flags=1), "closed")
        case("bad checksum", bytes(bad_sum), "closed")
        case("bad checksum on a VOTE", frame(T_VOTE, vote, checksum=0x12345678), "closed")
        case("huge length (4 GiB)", frame(T_VOTE, b"", length=0xFFFFFFF0, checksum=0), "closed")
        case("length over the 16 MiB frame limit", frame(T_VOTE, b"", length=(16 << 20), checksum=0), "closed")
        case("unknown type 99, good checksum", frame(99, b"\x00" * 8), "closed")
        case("VOTE with a trailing byte", frame(T_VOTE, vote + b"\x00"), "closed")
        case("VOTE cut short (payload 3 of 12 bytes)", frame(T_VOTE, vote[:3]), "closed")
        # a frame that never completes: the replica waits for the rest; we leave
        case("truncated frame (header says 100 bytes, 40 sent)", frame(T_VOTE, os.urandom(100))[:56], "any", 0.3)
        case("header only, 16 MiB - 16 announced", frame(T_VOTE, b"", length=(16 << 20) - 16, checksum=0), "any", 0.3)
    if kind == "peer":
        case("VOTE before HELLO", frame(T_VOTE, vote, frm=1), "closed")
        case("HELLO with the wrong cluster id", hello(wrong_cluster, frm=(self_id % n)), "closed")
        if cluster:
            case("HELLO, right cluster, protocol version 7", hello(cluster, frm=(self_id % n), version=7), "closed")
            case("HELLO of an older replica (protocol version 2)", hello(cluster, frm=(self_id % n), version=2),
                 "closed")
            case("HELLO claiming to be the replica itself", hello(cluster, frm=self_id - 1), "closed")
            case(f"HELLO claiming replica id {n + 1} of {n}", hello(cluster, frm=n), "closed")
        case("HELLO then random bytes", hello(wrong_cluster, frm=0) + os.urandom(300), "closed")
        # snapshot chunks after a HELLO that passes: peer_port.sh (a HELLO
        # that passes takes the claimed replica's place, which this test's
        # "afterwards" checks could not survive)
    if kind == "native":
        case("a replica-to-replica PROPOSAL on the client port", frame(T_PROPOSAL, struct.pack("<QB", 5, 0)), "closed")
        case("HELLO on the client port", hello(cluster or wrong_cluster, frm=0), "closed")
        case("CLIENT_REPLY from a client", frame(T_CLIENT_REPLY, struct.pack("<QQBI", 7, 1, 0, 0)), "closed")
        # well-framed request with a body that is no valid operation: answered, not applied
        for size in (0, 1, 33, 4096):
            body = os.urandom(size)
            req = frame(T_CLIENT_REQ, struct.pack("<QQQI", 0xBAD0 + size, 1, 1, len(body)) + body)
            case(f"CLIENT_REQ with a random {size}-byte op", req,
                 lambda o, g: (len(g) >= 16 and g[4] == T_CLIENT_REPLY) or o == "closed", 2.0,
                 enough=lambda g: len(g) >= 16)
    if kind == "resp":
        def err_and_close(o, g):
            return o == "closed" and g.startswith(b"-ERR Protocol error")
        case("bulk length 999999999999", b"*2\r\n$3\r\nGET\r\n$999999999999\r\n", err_and_close)
        case("bulk length not a number", b"*1\r\n$abc\r\n", err_and_close)
        case("multibulk length 100000000", b"*100000000\r\n", err_and_close)
        case("multibulk length not a number", b"*x\r\n", err_and_close)
        case("bulk without its CRLF", b"*1\r\n$3\r\nGETxx", err_and_close)
        case("unbalanced quotes inline", b'SET "a b\r\n', err_and_close)
        case("negative multibulk (ignored, as Redis does)", b"*-5\r\nPING\r\n",
             lambda o, g: g.startswith(b"+PONG"), enough=lambda g: b"\r\n" in g)
        case("inline garbage then PING", b"\x01\x02\x03 zz\r\nPING\r\n", lambda o, g: b"+PONG" in g,
             enough=lambda g: b"+PONG\r\n" in g)
        case("QUIT", b"QUIT\r\n", lambda o, g: o == "closed" and g.startswith(b"+OK"))
        case("MULTI without EXEC, then close", b"MULTI\r\nSET g:never 1\r\n",
             lambda o, g: g == b"+OK\r\n+QUEUED\r\n", enough=lambda g: g.count(b"\r\n") >= 2)
    print(f"  {kind}:{port}: {count} cases, {failures} failed expectation(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
