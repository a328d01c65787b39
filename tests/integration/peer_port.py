#!/usr/bin/env python3
"""Abuse of one replica's peer port (used by peer_port.sh): what anyone who
can reach the port may send before and after a HELLO.

    peer_port.py big HOST PORT CONNS
    peer_port.py silent HOST PORT CONNS
    peer_port.py future HOST PORT CLUSTER_HEX FROM
    peer_port.py mute HOST PORT CLUSTER_HEX FROM CONNS
    peer_port.py snap HOST PORT CLUSTER_HEX FROM SNAP_DIR
    peer_port.py pin HOST PORT CLUSTER_HEX FROM SLOT SECONDS
    peer_port.py far HOST PORT CLUSTER_HEX FROM INCARNATION SLOT

Prints one line per check ('ok ...' or 'FAIL ...') and exits 1 if any
failed. Frames and HELLO come from garbage.py (core/codec.h's format).
"""
import glob
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from garbage import frame, hello, rsm_snapshot, T_VOTE, T_SNAP_CHUNK  # noqa: E402
import it_check  # noqa: E402

T_FETCH, T_CATCHUP = 6, 7
from it_check import check, closed_now  # noqa: E402


def connect(host, port):
    return socket.create_connection((host, port), timeout=5)


def big(host, port, conns):
    """Each connection announces a 16 MiB frame before any HELLO and starts
    sending it: refused at the header, none held."""
    socks = []
    zeros = bytes(1 << 20)
    for _ in range(conns):
        s = connect(host, port)
        s.settimeout(5)
        try:
            s.sendall(frame(T_VOTE, b"", length=(16 << 20) - 16, checksum=0))
            for _ in range(4):
                s.sendall(zeros)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        socks.append(s)
    end = time.monotonic() + 5.0
    while time.monotonic() < end and not all(closed_now(s) for s in socks):
        time.sleep(0.1)
    refused = sum(closed_now(s) for s in socks)
    for s in socks:
        s.close()
    check(refused == conns, f"{refused} of {conns} connections announcing a 16 MiB frame before HELLO were closed")


def silent(host, port, conns):
    """Connections that say nothing: the oldest go when more than 64 wait,
    the rest after 10 s."""
    t0 = time.monotonic()
    socks = []
    for _ in range(conns):
        socks.append(connect(host, port))
        time.sleep(0.005)  # in order of arrival
    time.sleep(1.0)
    evicted = [closed_now(s) for s in socks]
    n_early = sum(evicted)
    check(n_early == conns - 64 and all(evicted[:conns - 64]) and not any(evicted[conns - 64:]),
          f"{conns} silent connections: the {n_early} oldest closed at once, {conns - n_early} still open")
    left = [s for e, s in zip(evicted, socks) if not e]
    while time.monotonic() < t0 + 16 and not all(closed_now(s) for s in left):
        time.sleep(0.1)
    took = time.monotonic() - t0
    check(all(closed_now(s) for s in left) and 9 <= took <= 16,
          f"the other {len(left)} closed after {took:.1f} s (no HELLO within 10 s)")
    for s in socks:
        s.close()


def future(host, port, cluster, frm):
    """A HELLO whose incarnation no replica can have (2^64-1, which was then
    remembered and made every HELLO of the real replica 'older')."""
    s = connect(host, port)
    s.sendall(hello(cluster, frm, incarnation=(1 << 64) - 1))
    check(wait_for(lambda: closed_now(s), 3.0), f"a HELLO claiming replica {frm + 1} with incarnation 2^64-1 was refused")
    s.close()


def mute(host, port, cluster, frm, conns):
    """Connections that say HELLO as replica frm + 1, each a new life (an
    incarnation newer than the real replica's), and nothing after it: a
    life is taken at its first frame after HELLO, and only the newest such
    connection waits for it (each was held for good: 300 of them held 300
    connections)."""
    base = int(time.time() * 1e6)
    socks = []
    for i in range(conns):
        s = connect(host, port)
        s.sendall(hello(cluster, frm, incarnation=base + i))
        socks.append(s)
        time.sleep(0.005)  # in order of arrival
    wait_for(lambda: sum(closed_now(s) for s in socks) >= conns - 1, 3.0)
    closed = [closed_now(s) for s in socks]
    check(all(closed[:-1]) and not closed[-1],
          f"{conns} HELLOs of replica {frm + 1} with no frame after: {sum(closed)} closed, the newest waits "
          f"({'open' if not closed[-1] else 'closed'})")
    for s in socks:
        s.close()


def chunk(slot, offset, total, body):
    return struct.pack("<QQQI", slot, offset, total, len(body)) + body


def tmp_files(snap_dir):
    return glob.glob(os.path.join(snap_dir, "*.tmp"))


def wait_for(cond, wait):
    end = time.monotonic() + wait
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def snap(host, port, cluster, frm, snap_dir):
    """Snapshot chunks from a connection that passed HELLO (no cluster secret
    here: anyone can): a transfer that stops moving bytes, or whose
    connection goes, leaves no temporary file and no held slot behind."""
    slot, total = 10 ** 9, 10 << 20
    inc = int(time.time() * 1e6) + 60 * 10 ** 6  # newer than the real replica's
    s = connect(host, port)
    s.sendall(hello(cluster, frm, incarnation=inc))
    s.sendall(frame(T_SNAP_CHUNK, chunk(slot, 0, total, bytes(65536)), frm=frm))
    check(wait_for(lambda: len(tmp_files(snap_dir)) == 1, 3.0), "a transfer began: one temporary file")
    s.sendall(frame(T_SNAP_CHUNK, chunk(slot, 65536, total, b""), frm=frm))
    check(wait_for(lambda: not tmp_files(snap_dir), 3.0), "an empty chunk dropped it and its file")
    s.sendall(frame(T_SNAP_CHUNK, chunk(slot, 0, total, bytes(65536)), frm=frm))
    check(wait_for(lambda: len(tmp_files(snap_dir)) == 1, 3.0), "a second transfer began")
    s.close()
    check(wait_for(lambda: not tmp_files(snap_dir), 3.0), "its connection closed: dropped, file removed")
    s = connect(host, port)
    s.sendall(hello(cluster, frm, incarnation=inc + 1))
    s.sendall(frame(T_SNAP_CHUNK, chunk(slot, 0, (1 << 40) - 1, bytes(65536)), frm=frm))
    time.sleep(1.0)
    check(not tmp_files(snap_dir), "a transfer of 1 TiB - 1 announced (more than the disk has free): no file")
    s.close()
    # a whole, well-formed snapshot of an empty store taken at slot 5 but
    # announced for slot 10^9: installing it would leave the apply layer and
    # the core at different slots; refused (the log says so), file removed
    body = rsm_snapshot(5)
    s = connect(host, port)
    s.sendall(hello(cluster, frm, incarnation=inc + 2))
    s.sendall(frame(T_SNAP_CHUNK, chunk(slot, 0, len(body), body), frm=frm))
    time.sleep(1.0)
    check(not tmp_files(snap_dir) and not glob.glob(os.path.join(snap_dir, f"{slot:020d}.snap")),
          "a snapshot taken at slot 5 announced for slot 10^9: not installed, no file left")
    s.close()
    # a whole, well-formed snapshot taken and announced at slot 2^64-1: no
    # cluster gets there (the core refuses slots from 2^62 on); installed,
    # the core's next slot wrapped to 0 and replica 1 applied nothing ever
    # again, restarts included. Refused before a byte is written.
    slot = (1 << 64) - 1
    body = rsm_snapshot(slot)
    s = connect(host, port)
    s.sendall(hello(cluster, frm, incarnation=inc + 3))
    s.sendall(frame(T_SNAP_CHUNK, chunk(slot, 0, len(body), body), frm=frm))
    time.sleep(1.0)
    check(not tmp_files(snap_dir) and not glob.glob(os.path.join(snap_dir, f"{slot:020d}.snap")),
          "a snapshot taken and announced at slot 2^64-1: refused, no file")
    s.close()


def pin(host, port, cluster, frm, slot, secs):
    """CATCHUP from one slot every 0.3 s: a peer that never moves on."""
    inc = int(time.time() * 1e6) + 60 * 10 ** 6
    s = connect(host, port)
    s.sendall(hello(cluster, frm, incarnation=inc))
    end = time.monotonic() + secs
    while time.monotonic() < end:
        s.sendall(frame(T_CATCHUP, struct.pack("<Q", slot), frm=frm))
        time.sleep(0.3)
    s.close()


def far(host, port, cluster, frm, inc, slot):
    """A FETCH and a CATCHUP naming `slot`, as replica FROM in its current
    incarnation (so its own reconnect takes the link back): what a faulty
    peer may send."""
    s = connect(host, port)
    s.sendall(hello(cluster, frm, incarnation=inc) + frame(T_FETCH, struct.pack("<QB", slot, 0), frm=frm) +
              frame(T_CATCHUP, struct.pack("<Q", slot), frm=frm))
    time.sleep(0.5)
    s.close()


def main():
    cmd, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if cmd == "big":
        big(host, port, int(sys.argv[4]))
    elif cmd == "silent":
        silent(host, port, int(sys.argv[4]))
    elif cmd == "future":
        future(host, port, int(sys.argv[4], 16), int(sys.argv[5]))
    elif cmd == "mute":
        mute(host, port, int(sys.argv[4], 16), int(sys.argv[5]), int(sys.argv[6]))
    elif cmd == "snap":
        snap(host, port, int(sys.argv[4], 16), int(sys.argv[5]), sys.argv[6])
    elif cmd == "pin":
        pin(host, port, int(sys.argv[4], 16), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]))
    elif cmd == "far":
        far(host, port, int(sys.argv[4], 16), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
    else:
        sys.exit(f"unknown command {cmd}")
    return 1 if it_check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
