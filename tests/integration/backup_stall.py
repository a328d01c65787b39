#!/usr/bin/env python3
"""A fake replica that starts a backup and never finishes it (used by
backup_interrupt.sh).

    backup_stall.py PORT

To a BACKUP_REQ it answers "taken" and the first 64 KiB of a 1 MiB
snapshot at slot 5, then nothing more while the connection stays open: a
rabia-cli backup is then in the middle of writing its temporary file,
for as long as the test wants. Prints 'ready' once listening; runs until
killed. Frames are codec version 2 (garbage.py's).
"""
import os
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from garbage import frame, frames  # noqa: E402

T_BACKUP_REQ, T_BACKUP_CHUNK = 28, 29  # include/rabia/types.h


def chunk(slot, off, total, value, body=b""):
    # core/codec.c: BACKUP_CHUNK = slot, u64 (offset), u64b (total), value, body
    return frame(T_BACKUP_CHUNK, struct.pack("<QQQBI", slot, off, total, value, len(body)) + body)


def serve(conn):
    for t, _p in frames(conn):
        if t == T_BACKUP_REQ:
            conn.sendall(chunk(5, 0, 0, 2) + chunk(5, 0, 1 << 20, 0, b"\x01" * 65536))


def main():
    port = int(sys.argv[1])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(8)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


main()
