#!/usr/bin/env python3
"""Write unique keys through RESP and record every write that was acknowledged
(used by crash_all.sh and disk_full.sh). With python3-redis, the client most
Redis applications use.

    acked_writer.py write NAME PORTS ACKFILE STOPFILE [--pipeline N] [--value-bytes B]
    acked_writer.py verify PORT ACKFILE... [--progress]

PORT: a port on 127.0.0.1, or HOST:PORT (replicas in network namespaces).

write: pipelines of N SETs of NAME:<seq> = <seq>:<filler to B bytes>, each
followed by SET NAME:last <seq> in the same pipeline; the keys of a pipeline
whose replies all came back OK are appended to ACKFILE (one "key seq" line
each) and flushed before the next pipeline starts. A connection error or a
refused write means the outcome is unknown: nothing is recorded, the writer
moves to the next port and goes on with new keys. Ends when STOPFILE exists.
Prints a summary line: acknowledged, unknown, refusals (by first error word).

verify: every key in every ACKFILE must be present on the replica at PORT
with its value (MGET in chunks), and NAME:last must be at least the highest
acknowledged seq of NAME (a later write is never lost behind an earlier one).
Exit 1 on any loss, printing the first ones.
"""
import os
import sys
import time

import redis

# With RABIA_TLS_DIR (lib.sh) the replicas speak TLS 1.3: verify them
# against the test CA and present the test client certificate.
_tls_dir = os.environ.get("RABIA_TLS_DIR", "")
TLS_KW = (dict(ssl=True, ssl_ca_certs=os.path.join(_tls_dir, "ca.crt"),
               ssl_certfile=os.path.join(_tls_dir, "client.crt"),
               ssl_keyfile=os.path.join(_tls_dir, "client.key")) if _tls_dir else {})


def value(seq, size):
    head = f"{seq}:"
    return head + "v" * max(0, size - len(head))


def addr(a):
    """PORT (on 127.0.0.1) or HOST:PORT"""
    host, _, port = a.rpartition(":")
    return host or "127.0.0.1", int(port)


def write(name, ports, ackfile, stopfile, pipeline, size):
    ports = [addr(p) for p in ports.split(",")]
    seq = 0
    acked = unknown = 0
    refused = {}
    k = 0
    out = open(ackfile, "a", buffering=1)
    conn = None
    while not os.path.exists(stopfile):
        host, port = ports[k % len(ports)]
        try:
            if conn is None:
                conn = redis.Redis(host=host, port=port, socket_timeout=3, socket_connect_timeout=1, **TLS_KW)
            pipe = conn.pipeline(transaction=False)
            batch = []
            for _ in range(pipeline):
                seq += 1
                batch.append(seq)
                pipe.set(f"{name}:{seq}", value(seq, size))
            pipe.set(f"{name}:last", str(seq))
            res = pipe.execute(raise_on_error=False)
            errs = [r for r in res if isinstance(r, Exception)]
            if errs:
                word = str(errs[0]).split(" ")[0]
                refused[word] = refused.get(word, 0) + 1
                unknown += len(batch)
                time.sleep(0.05)
                continue
            for s in batch:
                out.write(f"{name}:{s} {s}\n")
            acked += len(batch)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            unknown += pipeline
            conn = None
            k += 1
            time.sleep(0.05)
    out.close()
    print(f"{name}: acknowledged {acked}, unknown {unknown}, refused pipelines {refused}", flush=True)


def verify(port, ackfiles, size):
    host, port = addr(port)
    conn = redis.Redis(host=host, port=port, socket_timeout=10, **TLS_KW)
    keys = []
    last = {}
    for f in ackfiles:
        with open(f) as fh:
            for line in fh:
                # a copy taken while the writer flushed (backup.sh's
                # acked_before) may end in part of a line: that write's
                # acknowledgement was still being recorded, as if the copy
                # were taken a moment earlier (a tls_suite run failed on it)
                if not line.endswith("\n"):
                    break
                key, seq = line.split()
                keys.append((key, int(seq)))
                name = key.rsplit(":", 1)[0]
                last[name] = max(last.get(name, 0), int(seq))
    lost = []
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        got = conn.mget([k for k, _ in chunk])
        for (k, s), v in zip(chunk, got):
            if v is None or v.decode() != value(s, size):
                lost.append((k, v))
    for name, s in last.items():
        v = conn.get(f"{name}:last")
        if v is None or int(v) < s:
            lost.append((f"{name}:last", f"{v!r} < acknowledged {s}"))
    if lost:
        for k, v in lost[:10]:
            print(f"LOST on port {port}: {k} -> {v!r}")
        print(f"port {port}: {len(lost)} of {len(keys)} acknowledged writes lost or wrong")
        return 1
    print(f"port {port}: all {len(keys)} acknowledged writes present; last-write keys of {len(last)} writers not behind")
    return 0


def main():
    a = sys.argv[1:]
    opts = {"--pipeline": 16, "--value-bytes": 100}
    rest = []
    i = 0
    while i < len(a):
        if a[i] in opts:
            opts[a[i]] = int(a[i + 1])
            i += 2
        else:
            rest.append(a[i])
            i += 1
    if rest and rest[0] == "write" and len(rest) == 5:
        write(rest[1], rest[2], rest[3], rest[4], opts["--pipeline"], opts["--value-bytes"])
        return 0
    if rest and rest[0] == "verify" and len(rest) >= 3:
        return verify(rest[1], rest[2:], opts["--value-bytes"])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
