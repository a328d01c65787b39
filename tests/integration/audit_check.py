#!/usr/bin/env python3
"""The audit log's test driver (audit.sh), with python3-redis.

    audit_check.py load PORTS N EXPECTED
        N rounds against the RESP ports (round i at port i % len): one write
        of several types, one read, and every 50th round a MULTI/EXEC with
        two writes and a read, one at a time (each answered before the next
        is sent, so their slots are in this order). Every write that was
        answered (an error reply too: it was applied, changing nothing) is
        appended to EXPECTED as JSON: [port index, cmd, args, error, txn].
    audit_check.py verify EXPECTED KEEP MAXBYTES AUDITPATH...
        Each AUDITPATH (one replica's audit-log path) with its rotated files
        PATH.KEEP ... PATH.1, PATH, oldest first: every line parses as JSON;
        slots never go down; the writes are exactly EXPECTED in order (no
        reads, no others); the replica that took a write names its user and
        client address, the others do not; every replica logs the same
        (slot, session, seq, command) sequence; no file past MAXBYTES, none
        beyond PATH.KEEP.
    audit_check.py tail KEEP MAXBYTES AUDITPATH...
        The same file checks without EXPECTED (after rotations dropped the
        oldest lines): lines parse, slots increase, files bounded; prints
        the number of lines and files.
"""
import json
import os
import sys

import redis

# RABIA_TLS_DIR (tests/integration/README.md "TLS"): the suite over TLS
_tls_dir = os.environ.get("RABIA_TLS_DIR")
TLS_KW = (dict(ssl=True, ssl_ca_certs=os.path.join(_tls_dir, "ca.crt"),
               ssl_certfile=os.path.join(_tls_dir, "client.crt"),
               ssl_keyfile=os.path.join(_tls_dir, "client.key")) if _tls_dir else {})


def load(ports, n, expected):
    ports = [int(p) for p in ports.split(",")]
    conns = [redis.Redis(port=p, socket_timeout=20, decode_responses=True, **TLS_KW) for p in ports]
    out = open(expected, "w")
    for i in range(n):
        j = i % len(ports)
        r = conns[j]
        kind = i % 6
        if kind == 0:
            cmd, args = "SET", [f"s:{i}", f"v{i} with spaces \"quoted\" " + "x" * 20]
        elif kind == 1:
            cmd, args = "HSET", [f"h:{i % 40}", f"f{i}", str(i)]
        elif kind == 2:
            cmd, args = "RPUSH", [f"l:{i % 30}", f"e{i}", "e\t\u00e9"]
        elif kind == 3:
            cmd, args = "INCR", ["counter"]
        elif kind == 4:
            cmd, args = "SADD", [f"set:{i % 20}", f"m{i}"]
        else:
            cmd, args = "DEL", [f"s:{i - 5}"]
        err = False
        try:
            r.execute_command(cmd, *args)
        except redis.ResponseError:
            err = True
        out.write(json.dumps([j, cmd, args, err, False]) + "\n")
        # a read: never in the audit log
        r.get(f"s:{i}") if i % 2 else r.hgetall(f"h:{i % 40}")
        if i % 97 == 5:  # a write refused by the store (WRONGTYPE): applied, nothing changed
            try:
                r.execute_command("LPUSH", f"s:{i}", "x")
            except redis.ResponseError:
                err = True
            else:
                err = False
            out.write(json.dumps([j, "LPUSH", [f"s:{i}", "x"], err, False]) + "\n")
        if i % 50 == 7:
            p = r.pipeline(transaction=True)
            p.set(f"t:{i}", "a")
            p.get(f"t:{i}")
            p.incrby("counter", 10)
            p.execute()
            out.write(json.dumps([j, "SET", [f"t:{i}", "a"], False, True]) + "\n")
            out.write(json.dumps([j, "INCRBY", ["counter", "10"], False, True]) + "\n")
        out.flush()
    print(f"load: {n} rounds")


def files_of(path, keep):
    fs = [f"{path}.{k}" for k in range(keep, 0, -1) if os.path.exists(f"{path}.{k}")]
    if os.path.exists(path):
        fs.append(path)
    return fs


def read_lines(path, keep, maxbytes):
    fs = files_of(path, keep)
    if os.path.exists(f"{path}.{keep + 1}"):
        sys.exit(f"{path}.{keep + 1} exists: more than audit-log-keep = {keep} rotated files")
    lines = []
    for f in fs:
        size = os.path.getsize(f)
        if size > maxbytes:
            sys.exit(f"{f}: {size} bytes, past audit-log-max-bytes {maxbytes}")
        with open(f, encoding="ascii") as fh:  # escaped: plain ASCII
            for no, ln in enumerate(fh, 1):
                try:
                    e = json.loads(ln)
                except ValueError as ex:
                    sys.exit(f"{f}:{no}: not JSON ({ex}): {ln[:200]!r}")
                for k in ("ts", "replica", "slot", "session", "seq"):
                    if k not in e:
                        sys.exit(f"{f}:{no}: no '{k}': {ln[:200]!r}")
                lines.append(e)
    for a, b in zip(lines, lines[1:]):
        if b["slot"] < a["slot"]:
            sys.exit(f"{path}: slot {b['slot']} after slot {a['slot']}: not in slot order")
    return fs, lines


def verify(expected, keep, maxbytes, paths):
    exp = [json.loads(ln) for ln in open(expected)]
    seqs = []
    for ri, path in enumerate(paths):
        fs, lines = read_lines(path, keep, maxbytes)
        got = [(e.get("cmd"), e.get("args"), e.get("error", False), e.get("txn", False)) for e in lines]
        # a byte outside ASCII is logged as \u00XX: JSON reads it back as that code point
        want = [(c, [x.encode("utf-8").decode("latin-1") for x in a], err, txn) for (_, c, a, err, txn) in exp]
        if got != want:
            for k, (g, w) in enumerate(zip(got, want)):
                if g != w:
                    sys.exit(f"{path}: write {k}: logged {g}, expected {w}")
            sys.exit(f"{path}: {len(got)} writes logged, {len(want)} expected")
        for k, (e, x) in enumerate(zip(lines, exp)):
            origin = x[0] == ri
            if origin != ("user" in e) or (origin and (e["user"] != "default" or not e["addr"].startswith("127.0.0.1:"))):
                sys.exit(f"{path}: write {k} ({e}): the user and address belong on replica {x[0] + 1}'s line only")
            if e["replica"] != ri + 1:
                sys.exit(f"{path}: line of replica {e['replica']}")
        seqs.append([(e["slot"], e["session"], e["seq"], e["cmd"], e["args"]) for e in lines])
        print(f"{path}: {len(lines)} writes in {len(fs)} file(s), slots {lines[0]['slot']}..{lines[-1]['slot']}")
    for s in seqs[1:]:
        if s != seqs[0]:
            sys.exit("the replicas' audit logs differ (slot, session, seq or command)")
    print(f"verify: {len(exp)} writes, exactly, in the same slot order on {len(paths)} replicas")


def tail(keep, maxbytes, paths):
    for path in paths:
        fs, lines = read_lines(path, keep, maxbytes)
        trunc = sum(1 for e in lines if e.get("truncated"))
        print(f"{path}: {len(lines)} lines in {len(fs)} files ({trunc} truncated), slots {lines[0]['slot']}..{lines[-1]['slot']}")


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[:1] == ["load"]:
        load(a[1], int(a[2]), a[3])
    elif a[:1] == ["verify"]:
        verify(a[1], int(a[2]), int(a[3]), a[4:])
    elif a[:1] == ["tail"]:
        tail(int(a[1]), int(a[2]), a[3:])
    else:
        sys.exit(__doc__)
