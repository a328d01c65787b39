#!/usr/bin/env python3
"""A RESP server whose replies rabia_bench_edges.sh can predict.

    bench_fake_resp.py PORT MODE

MODE delay: command k (counted over all connections, from 0) is answered
+OK after DELAYS_MS[k % 10], so 10 requests on one connection have the
latencies 0, 0, 0, 0, 100, 200, 200, 200, 300, 400 ms sorted (plus the
server's and the scheduler's overhead): each percentile's rank and its
neighbours 100 ms apart, so a rank off by one shows on a busy machine;
MODE err: every second command gets -ERR; MODE hang: nothing is ever
answered. Prints "ready" once it listens.
"""
import socket
import sys
import threading
import time

port, mode = int(sys.argv[1]), sys.argv[2]
DELAYS_MS = [0, 400, 0, 200, 100, 0, 300, 200, 0, 200]
lock = threading.Lock()
count = 0


def commands(buf):
    """complete RESP arrays at the front of buf: (how many, bytes used)"""
    n = used = 0
    while buf[used:]:
        if buf[used:used + 1] != b"*":
            raise ValueError("not a RESP array")
        e = buf.find(b"\r\n", used)
        if e < 0:
            break
        p = e + 2
        for _ in range(int(buf[used + 1:e])):
            j = buf.find(b"\r\n", p)
            if j < 0:
                return n, used
            p = j + 2 + int(buf[p + 1:j]) + 2
            if p > len(buf):
                return n, used
        n, used = n + 1, p
    return n, used


def serve(c):
    global count
    buf = b""
    with c:
        while True:
            try:
                d = c.recv(65536)
            except OSError:  # rabia-bench closes with requests unanswered: a reset
                return
            if not d:
                return
            buf += d
            n, used = commands(buf)
            buf = buf[used:]
            for _ in range(n):
                with lock:
                    k = count
                    count += 1
                if mode == "delay":
                    time.sleep(DELAYS_MS[k % 10] / 1000)
                    c.sendall(b"+OK\r\n")
                elif mode == "err":
                    c.sendall(b"-ERR refused by the test\r\n" if k % 2 else b"+OK\r\n")


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
print("ready", flush=True)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
