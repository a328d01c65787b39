#!/usr/bin/python3
"""What one hostile or careless RESP client costs the other clients of a
replica: each case runs against a live cluster while another connection to
the same replica sends a PING every 20 ms, and prints how long the case
took and the worst PING wait (the replica's event loop held meanwhile).

  bench/hostile_clients.sh                       (starts and stops a cluster)
  bench/hostile_clients.py PORT_A PORT_B [case...]   (a running one)

Cases (the review of 2026-12-05 found each one holding the loop for
seconds; bench/README.md "Hostile clients" has the figures before and after):
  gets       N GETs in one pipeline on one connection (reads_ahead scanned
             the rest of the input at every pump: quadratic)
  subscribe  one SUBSCRIBE of N channels (a linear scan per name)
  pattern    a PSUBSCRIBE of '*' + N a's + 'b' on replica A, a PUBLISH to a
             channel of N a's + 'c' from replica B (glob backtracking: N^2)
Sizes: GETS_N (1,000,000), SUBS_N (65,536), PATTERN_N (100,000).
"""
import os
import socket
import sys
import threading
import time


class Pinger:
    """A PING every 20 ms on its own connection; the worst wait."""

    def __init__(self, port):
        self.port, self.worst, self.stop = port, 0.0, False
        self.th = threading.Thread(target=self.run)

    def run(self):
        p = socket.create_connection(("127.0.0.1", self.port))
        p.settimeout(60)
        while not self.stop:
            t = time.time()
            p.sendall(b"PING\r\n")
            p.recv(100)
            self.worst = max(self.worst, time.time() - t)
            time.sleep(0.02)
        p.close()

    def __enter__(self):
        self.th.start()
        time.sleep(0.1)
        return self

    def __exit__(self, *a):
        time.sleep(0.1)
        self.stop = True
        self.th.join()


def count_stream(sock, pat, want, timeout=120):
    """Read until `pat` was seen `want` times (across recv boundaries)."""
    sock.settimeout(timeout)
    got, tail = 0, b""
    while got < want:
        d = sock.recv(1 << 20)
        if not d:
            break
        got += (tail + d).count(pat)
        tail = d[-(len(pat) - 1):]
    return got


def case_gets(port, _port_b):
    n = int(os.environ.get("GETS_N", 1000000))
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"SET hostile:k v\r\n")
    s.recv(100)
    with Pinger(port) as pg:
        t0 = time.time()
        threading.Thread(target=s.sendall, args=(b"*2\r\n$3\r\nGET\r\n$9\r\nhostile:k\r\n" * n,)).start()
        got = count_stream(s, b"$1\r\nv\r\n", n)
        dt = time.time() - t0
    return "gets: %d GETs in one pipeline, %d answered in %.2f s; worst PING %.0f ms" % (n, got, dt, pg.worst * 1e3)


def case_subscribe(port, _port_b):
    n = int(os.environ.get("SUBS_N", 65536))
    s = socket.create_connection(("127.0.0.1", port))
    parts = [b"*%d\r\n$9\r\nSUBSCRIBE\r\n" % (n + 1)]
    for i in range(n):
        nm = b"hostile:%08d" % i
        parts.append(b"$%d\r\n%s\r\n" % (len(nm), nm))
    with Pinger(port) as pg:
        t0 = time.time()
        s.sendall(b"".join(parts))
        got = count_stream(s, b"$9\r\nsubscribe\r\n", n)
        dt = time.time() - t0
    s.close()
    return "subscribe: SUBSCRIBE of %d channels, %d confirmed in %.2f s; worst PING %.0f ms" % (
        n, got, dt, pg.worst * 1e3)


def info_field(port, name):
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"INFO clients\r\n")
    time.sleep(0.2)
    txt = c.recv(1 << 16).decode(errors="replace")
    c.close()
    for line in txt.split("\r\n"):
        if line.startswith(name + ":"):
            return line.split(":", 1)[1]
    return "absent"


def case_pattern(port, port_b):
    n = int(os.environ.get("PATTERN_N", 100000))
    sub = socket.create_connection(("127.0.0.1", port))
    pat = b"*" + b"a" * n + b"b"
    sub.sendall(b"*3\r\n$10\r\nPSUBSCRIBE\r\n$%d\r\n%s\r\n$9\r\nhostile:*\r\n" % (len(pat), pat))
    count_stream(sub, b"psubscribe", 2, 30)
    pub = socket.create_connection(("127.0.0.1", port_b))
    ch = b"a" * n + b"c"
    with Pinger(port) as pg:
        t0 = time.time()
        pub.sendall(b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$1\r\nm\r\n" % (len(ch), ch))
        pub.recv(100)
        pub.sendall(b"*3\r\n$7\r\nPUBLISH\r\n$9\r\nhostile:x\r\n$1\r\nm\r\n")
        pub.recv(100)
        count_stream(sub, b"hostile:x", 1, 120)  # the message after the long one
        dt = time.time() - t0
    sub.close()
    pub.close()
    return "pattern: %d-byte pattern and channel, the next message after %.2f s; worst PING %.0f ms; " \
           "pubsub_pattern_giveups %s" % (n, dt, pg.worst * 1e3, info_field(port, "pubsub_pattern_giveups"))


CASES = {"gets": case_gets, "subscribe": case_subscribe, "pattern": case_pattern}


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    a, b = int(sys.argv[1]), int(sys.argv[2])
    for name in sys.argv[3:] or list(CASES):
        print(CASES[name](a, b), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
