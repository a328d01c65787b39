#!/usr/bin/env python3
"""Client-port limits (used by client_limits.sh).

    client_limits.py toolarge RESP_PORT
    client_limits.py subscriber SUB_PORT PUB_PORT
    client_limits.py ringwalk RESP_PORT METRICS_PORT
    client_limits.py conns RESP_PORT COUNT LOCAL_CLUSTER_SH RABIA_CLI REPLICA2_NATIVE_ADDR

Prints one line per check ('ok ...' or 'FAIL ...') and exits 1 if any
failed.
"""
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import it_check  # noqa: E402
from it_check import bulk, check, closed_now, read_line  # noqa: E402


def toolarge(port):
    """A request that no batch can hold gets an error that says so, not a
    BUSY its client would retry for ever."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(bulk(b"SET", b"big", b"x" * 1000000))
    line = read_line(s)
    check(line.startswith(b"-ERR request of ") and b"does not fit in a batch (batch-max-bytes 262144)" in line,
          f"SET of a 1 MB value: {line[:100]!r}")
    s.sendall(bulk(b"SET", b"small", b"y"))
    check(read_line(s) == b"+OK\r\n", "the same connection then serves a SET that fits")
    s.close()


def subscriber(sub_port, pub_port):
    """A RESP3 subscriber whose blocking pop is parked reads nothing while
    200 KB messages are published: closed at 32 MiB of them, not held."""
    s = socket.create_connection(("127.0.0.1", sub_port), timeout=5)
    s.sendall(b"HELLO 3\r\n")
    time.sleep(0.3)
    s.recv(65536)
    s.sendall(b"SUBSCRIBE cl:ch\r\n")
    time.sleep(0.3)
    s.recv(65536)
    s.sendall(b"BLPOP cl:nolist 0\r\n")  # parked: the messages queue behind its reply
    time.sleep(0.3)
    p = socket.create_connection(("127.0.0.1", pub_port), timeout=20)
    msg = bulk(b"PUBLISH", b"cl:ch", b"m" * 200000)
    delivered = []
    for _ in range(40):  # 8 MB each round, 320 MB in all at most
        p.sendall(msg * 40)
        got = b""
        while got.count(b"\r\n") < 40:
            got += p.recv(65536)
        delivered += [int(x[1:]) for x in got.split(b"\r\n") if x.startswith(b":")]
        if delivered[-1] == 0:
            break
    check(delivered[0] == 1 and delivered[-1] == 0,
          f"published {len(delivered)} messages of 200 KB: the first reached the subscriber, the last nobody")
    check(closed_now(s), "the subscriber was closed")
    s.close()
    p.close()


def heap_allocated(metrics_port):
    """rabia_heap_allocated_bytes (jemalloc's stats.allocated), or None."""
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith("rabia_heap_allocated_bytes "):
            return float(line.split()[1])
    return None


def ringwalk(port, metrics_port):
    """One connection pipelines 4096 COMMANDs (replies of about 14 KB each),
    reads them all and stays open: the replica keeps little of them."""
    before = heap_allocated(metrics_port)
    if before is None:
        print("  skip (no heap statistics: not a jemalloc build)", flush=True)
        return
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    # a PING last: its PONG ends the replies (a quiet second did not, under load)
    s.sendall(b"*1\r\n$7\r\nCOMMAND\r\n" * 4096 + b"*1\r\n$4\r\nPING\r\n")
    s.settimeout(60)
    got, tail = 0, b""
    while not tail.endswith(b"+PONG\r\n"):
        d = s.recv(1 << 20)
        if not d:
            break
        got += len(d)
        tail = (tail + d)[-16:]
    time.sleep(0.5)  # the flushed slots' buffers are recycled as the sends complete
    after = heap_allocated(metrics_port)
    grew = (after - before) / 1e6
    check(got > 4096 * 1000 and grew < 16,
          f"4096 COMMAND replies ({got / 1e6:.0f} MB) read, the connection idle and open: the heap grew {grew:.1f} MB")
    s.close()


def conns(port, count):
    """More client connections than the replica takes: the excess is
    refused, the rest served."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    time.sleep(1.0)

    def refusal(s):
        """What a refused connection read before its close (None: open)."""
        s.setblocking(False)
        got = b""
        try:
            while True:
                d = s.recv(1 << 16)
                if not d:
                    return got
                got += d
        except (BlockingIOError, socket.timeout):
            return None
        except (ConnectionResetError, BrokenPipeError):
            return got + b"<reset>"

    said = [refusal(s) for s in socks]
    refused = [x for x in said if x is not None]
    check(len(refused) == count - (4096 - 128),
          f"{count} connections: {len(refused)} refused (4096 - 128 slots for clients)")
    # as a Redis at maxclients: its error, then the close (they saw only the close)
    wrong = [x for x in refused if x != b"-ERR max number of clients reached\r\n"]
    check(refused and not wrong, f"each refused one read Redis's '-ERR max number of clients reached' first "
          f"({len(wrong)} did not{': ' + repr(wrong[0][:80]) if wrong else ''})")
    open_ones = [s for i, s in enumerate(socks) if said[i] is None]
    t = open_ones[-1]
    t.setblocking(True)
    t.sendall(b"PING\r\n")
    check(read_line(t) == b"+PONG\r\n", "the last one accepted is served")
    # INFO's maxclients is the number accepted (it said 4096, the peers' share included)
    t.sendall(b"INFO clients\r\n")
    hdr = read_line(t)
    body = b""
    while len(body) < int(hdr[1:]) + 2:
        body += t.recv(65536)
    mc = [l for l in body.split(b"\r\n") if l.startswith(b"maxclients:")]
    check(mc == [b"maxclients:%d" % (count - len(refused))],
          f"INFO maxclients {mc} = the {count - len(refused)} connections accepted")
    # replica 2 killed and restarted meanwhile: its links to this replica
    # (whose client slots are all taken) come back
    cluster, cli, peer_native = sys.argv[4], sys.argv[5], sys.argv[6]
    subprocess.run(["bash", cluster, "kill", "2"], capture_output=True, timeout=30)
    time.sleep(0.5)
    subprocess.run(["bash", cluster, "restart", "2"], capture_output=True, timeout=30)
    status = ""
    for _ in range(60):
        status = subprocess.run([cli, "-a", peer_native, "--timeout", "500", "status"], capture_output=True,
                                text=True, timeout=10).stdout
        if "member_1: " in status and "member_1: 127.0.0.1" in status and \
                [l for l in status.splitlines() if l.startswith("member_1:")][0].endswith("reachable") and \
                "unreachable" not in [l for l in status.splitlines() if l.startswith("member_1:")][0]:
            break
        time.sleep(0.25)
    line = [l for l in status.splitlines() if l.startswith("member_1:")]
    check(bool(line) and "unreachable" not in line[0],
          f"replica 2, restarted while the client slots were full, reaches replica 1: {line}")
    for s in socks:
        s.close()


def main():
    cmd = sys.argv[1]
    if cmd == "toolarge":
        toolarge(int(sys.argv[2]))
    elif cmd == "subscriber":
        subscriber(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "ringwalk":
        ringwalk(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "conns":
        conns(int(sys.argv[2]), int(sys.argv[3]))
    return 1 if it_check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
