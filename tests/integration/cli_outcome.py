#!/usr/bin/env python3
"""A fake replica for rabia-cli's outcome reporting (used by counter_bank.sh).

    cli_outcome.py PORT MODE      MODE: expire | bad | noauth

It opens every session it is asked for (an OPEN: seq 1, empty op; the
answer names the session), then:
  expire  swallows the first request (as if applied, its answer lost) and
          answers the retry with SESSION_EXPIRED, as core/rsm.h's step 2
          does for a session evicted meanwhile: the outcome is unknown;
  bad     answers the first request with BAD_REQUEST: it was refused;
  noauth  opens nothing: answers every request, OPENs included, with
          NOAUTH and a replica's WRONGPASS message, as a replica answers a
          client whose password it refused.
Prints 'ready' once listening; runs until killed. Frames are codec
version 2 (garbage.py's, which the client library reads too).
"""
import os
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from garbage import frame, frames, T_CLIENT_REQ, T_CLIENT_REPLY  # noqa: E402

SESSION_EXPIRED, BAD_REQUEST, NOAUTH = 2, 4, 7  # include/rabia/types.h
WRONGPASS = b"WRONGPASS invalid username-password pair or user is disabled."
SID = (1 << 62) | 1  # RABIA_SESSION_ASSIGNED | 1
seen = {"requests": 0}
lock = threading.Lock()


def reply(cid, seq, status, body=b""):
    return frame(T_CLIENT_REPLY, struct.pack("<QQBI", cid, seq, status, len(body)) + body)


def serve(conn, mode):
    for t, p in frames(conn):
        if t != T_CLIENT_REQ:
            continue
        cid, seq, _ack, blen = struct.unpack_from("<QQQI", p)
        if mode == "noauth":
            conn.sendall(reply(cid, seq, NOAUTH, WRONGPASS))
            continue
        if seq == 1 and blen == 0:
            conn.sendall(reply(cid, 1, 0, struct.pack("<Q", SID)))
            continue
        with lock:
            seen["requests"] += 1
            k = seen["requests"]
        if mode == "bad":
            conn.sendall(reply(cid, seq, BAD_REQUEST))
        elif k >= 2:  # expire: the retry
            conn.sendall(reply(cid, seq, SESSION_EXPIRED))


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    assert mode in ("expire", "bad", "noauth"), mode
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, mode), daemon=True).start()


main()
