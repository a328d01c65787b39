#!/usr/bin/env python3
"""maxmemory-clients: one memory budget for all client connections
together (used by client_memory.sh).

    client_memory.py inputs RESP_PORT BUDGET_BYTES
    client_memory.py nonreader RESP_PORT BUDGET_BYTES
    client_memory.py idle RESP_PORT BUDGET_BYTES
    client_memory.py kill RESP_PORT BUDGET_BYTES

Prints one line per check ('ok ...' or 'FAIL ...') and exits 1 if any
failed.
"""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import it_check  # noqa: E402
from it_check import bulk, check, closed_now, read_reply  # noqa: E402


def info(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"INFO\r\n")
    r = read_reply(s)
    s.close()
    out = {}
    for line in r.decode(errors="replace").split("\r\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return out


def good_clients(port, n):
    """n ordinary clients: one SET each, answered."""
    socks, ok = [], 0
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(bulk(b"SET", b"good:%d" % i, b"v%d" % i))
        ok += read_reply(s) == b"+OK\r\n"
        socks.append(s)
    check(ok == n, f"{ok} of {n} ordinary clients' SETs answered +OK")
    return socks


def good_clients_still_served(socks, what):
    ok = 0
    for i, s in enumerate(socks):
        try:
            if closed_now(s):
                continue
            s.setblocking(True)
            s.sendall(bulk(b"GET", b"good:%d" % i))
            if read_reply(s) == b"$%d\r\nv%d\r\n" % (len(b"v%d" % i), i):
                ok += 1
        except OSError:
            pass
    check(ok == len(socks), f"{what}: {ok} of {len(socks)} ordinary clients still connected and served")


def wait_total_under(port, budget, secs):
    deadline = time.time() + secs
    mem = None
    while time.time() < deadline:
        mem = int(info(port).get("mem_clients_normal", "-1"))
        if 0 <= mem <= budget:
            break
        time.sleep(0.1)
    return mem


def inputs(port, budget):
    """Four clients each send 12 MB of one unfinished 60 MB value (each
    within the 64 MiB per-connection input limit; 64 MiB of buffers
    together, 16 MiB each): the largest are closed until the rest fit in the budget;
    twenty ordinary clients are not touched."""
    good = good_clients(port, 20)
    before = int(info(port).get("evicted_clients", "-1"))
    check(before == 0, f"evicted_clients before: {before}")
    hogs = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
    chunk = b"x" * (1 << 20)

    def feed(s):
        try:
            s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nhog\r\n$60000000\r\n")
            for _ in range(12):
                s.sendall(chunk)
        except OSError:
            pass  # closed by the replica: what this test wants

    ts = [threading.Thread(target=feed, args=(s,)) for s in hogs]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    mem = wait_total_under(port, budget, 5)
    time.sleep(0.3)
    closed = sum(closed_now(s) for s in hogs)
    check(closed >= 3, f"4 clients holding 12 MB of input each, budget {budget >> 20} MiB: {closed} closed")
    check(mem is not None and 0 <= mem <= budget,
          f"client memory afterwards (INFO mem_clients_normal): {mem} bytes, budget {budget}")
    ev = int(info(port).get("evicted_clients", "-1"))
    check(ev == closed, f"INFO evicted_clients: {ev} (the closed ones)")
    good_clients_still_served(good, "after the input hogs")
    client_list(port, closed)
    for s in hogs + good:
        s.close()


def client_list(port, closed):
    """CLIENT LIST shows every RESP connection of the replica with its
    memory (Redis's qbuf, omem, tot-mem): the twenty ordinary ones, this
    one, and the input hog that was not closed, if one was not."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"CLIENT LIST\r\n")
    text = read_reply(s).decode(errors="replace")
    s.close()
    lines = [l for l in text.split("\r\n", 1)[-1].split("\n") if l.startswith("id=")]
    fields = [dict(f.split("=", 1) for f in l.split(" ") if "=" in f) for l in lines]
    want = 20 + 1 + (4 - closed)
    check(len(lines) == want, f"CLIENT LIST: {len(lines)} connections (20 ordinary, this one, {4 - closed} hog left)")
    check(sum(1 for f in fields if f.get("cmd") == "client|list") == 1 and
          all(int(f.get("tot-mem", "0")) > 0 for f in fields), "CLIENT LIST: this one's cmd=client|list, tot-mem on all")
    if closed < 4:
        big = max(fields, key=lambda f: int(f.get("tot-mem", "0")))
        check(int(big["qbuf"]) >= 8000000 and int(big["tot-mem"]) >= int(big["qbuf"]),
              f"CLIENT LIST: the hog left shows qbuf={big['qbuf']} tot-mem={big['tot-mem']}")


def nonreader(port, budget):
    """A client pipelines GETs of a 200 KB value and reads nothing: its
    replies pile up (up to 64 MiB per connection) until the budget closes
    it; ordinary clients are not touched."""
    good = good_clients(port, 20)
    before = int(info(port).get("evicted_clients", "-1"))
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(bulk(b"SET", b"bigval", b"b" * 200000))
    check(read_reply(s) == b"+OK\r\n", "SET of a 200 KB value")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    req = bulk(b"GET", b"bigval") * 100
    closed = False
    deadline = time.time() + 30
    s.settimeout(1)
    while time.time() < deadline and not closed:  # 2000 GETs: 400 MB of replies, none read
        try:
            for _ in range(20):
                s.sendall(req)
            time.sleep(0.5)
        except (OSError, socket.timeout):
            pass
        closed = int(info(port).get("evicted_clients", "-1")) > before
    check(closed, "a client that pipelines GETs of 200 KB and never reads is closed for maxmemory-clients")
    mem = wait_total_under(port, budget, 5)
    check(mem is not None and 0 <= mem <= budget, f"client memory afterwards: {mem} bytes, budget {budget}")
    good_clients_still_served(good, "after the non-reader")
    for t in good + [s]:
        t.close()


def client_fields(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"CLIENT LIST\r\n")
    text = read_reply(s).decode(errors="replace")
    s.close()
    lines = [l for l in text.split("\r\n", 1)[-1].split("\n") if l.startswith("id=")]
    return [dict(f.split("=", 1) for f in l.split(" ") if "=" in f) for l in lines]


IDLE_MAX = 16384  # redis-server 7.0.15 reports tot-mem=37632 for an idle client


def idle(port, budget):
    """What an idle connection costs: its ring of reply slots starts small
    and, grown by a deep pipeline, goes back once the connection is idle
    (each held 130 KiB before: a ring of 4096 slots of 32 bytes)."""
    before = int(info(port).get("mem_clients_normal", "-1"))
    socks, ok = [], 0
    for i in range(100):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(bulk(b"SET", b"idle:%d" % i, b"v") + b"PING\r\n")
        ok += read_reply(s) == b"+OK\r\n" and read_reply(s) == b"+PONG\r\n"
        socks.append(s)
    check(ok == 100, f"100 connections: SET and PING answered on {ok}")
    fields = [f for f in client_fields(port) if f.get("cmd") != "client|list"]
    mems = sorted(int(f["tot-mem"]) for f in fields)
    check(len(fields) >= 100 and mems[-1] <= IDLE_MAX,
          f"100 idle connections: tot-mem {mems[0]}..{mems[-1]} bytes each in CLIENT LIST (at most {IDLE_MAX})")
    after = int(info(port).get("mem_clients_normal", "-1"))
    per = (after - before) / 100
    check(0 < per <= IDLE_MAX, f"INFO mem_clients_normal grew {after - before} bytes: {per:.0f} per idle connection")
    # one of them pipelines 4000 GETs: its ring grows to 4096 slots; it reads them all
    s = socks[0]
    s.sendall(bulk(b"GET", b"idle:0") * 4000)
    got = 0
    for _ in range(4000):
        got += read_reply(s) == b"$1\r\nv\r\n"
    check(got == 4000, f"a pipeline of 4000 GETs on one connection: {got} answered in order")
    deadline, big = time.time() + 5, None
    while time.time() < deadline:  # the periodic check (every 100 ms) shrinks an idle ring
        big = max(int(f["tot-mem"]) for f in client_fields(port) if f.get("cmd") != "client|list")
        if big <= IDLE_MAX:
            break
        time.sleep(0.2)
    check(big is not None and big <= IDLE_MAX, f"... idle again, the largest connection holds {big} bytes")
    for s in socks:
        s.close()


def closed_within(s, secs):
    deadline = time.time() + secs
    while time.time() < deadline:
        if closed_now(s):
            return True
        time.sleep(0.05)
    return False


def call(s, *args):
    s.setblocking(True)
    s.sendall(bulk(*args))
    return read_reply(s)


def kill(port, budget):
    """CLIENT KILL closes the connections its filters name (another's by
    ID, the subscribers by TYPE, itself with SKIPME no after the reply);
    CLIENT NO-EVICT ON keeps a connection from being closed for
    maxmemory-clients while another is."""
    a, b, c = (socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3))
    ida, idb = (int(call(x, b"CLIENT", b"ID")[1:-2]) for x in (a, b))
    check(call(c, b"SUBSCRIBE", b"news").startswith(b"*3\r\n"), "a subscriber")
    check(call(a, b"CLIENT", b"KILL", b"ID", b"%d" % idb) == b":1\r\n" and closed_within(b, 2),
          "CLIENT KILL ID: :1, that connection closed")
    check(call(a, b"CLIENT", b"KILL", b"TYPE", b"pubsub") == b":1\r\n" and closed_within(c, 2),
          "CLIENT KILL TYPE pubsub: :1, the subscriber closed")
    check(call(a, b"CLIENT", b"KILL", b"ID", b"%d" % ida) == b":0\r\n" and call(a, b"PING") == b"+PONG\r\n",
          "CLIENT KILL of itself with SKIPME yes (the default): :0, still served")
    check(call(a, b"CLIENT", b"KILL", b"127.0.0.1:1") == b"-ERR No such client\r\n", "CLIENT KILL ip:port of nobody")
    # LADDR: the address a client connected to (the RESP port), as Redis
    b2 = socket.create_connection(("127.0.0.1", port), timeout=10)
    check(call(b2, b"PING") == b"+PONG\r\n", "another client")
    mine = call(a, b"CLIENT", b"INFO").split(b"\r\n")[1].decode()
    laddr = dict(kv.split("=", 1) for kv in mine.split() if "=" in kv).get("laddr")
    check(laddr == f"127.0.0.1:{port}", f"CLIENT INFO laddr={laddr}: the RESP port")
    check(call(a, b"CLIENT", b"KILL", b"LADDR", b"127.0.0.1:1") == b":0\r\n", "CLIENT KILL LADDR of no client: :0")
    check(call(a, b"CLIENT", b"KILL", b"LADDR", laddr.encode()) == b":1\r\n" and closed_within(b2, 2),
          "CLIENT KILL LADDR of the RESP port (SKIPME yes): :1, the other client closed")
    check(call(a, b"CLIENT", b"KILL", b"ID", b"%d" % ida, b"SKIPME", b"no") == b":1\r\n" and closed_within(a, 2),
          "CLIENT KILL of itself with SKIPME no: :1, then closed")
    # NO-EVICT: e holds more than the whole budget; f, an ordinary one, is closed instead
    before = int(info(port).get("evicted_clients", "-1"))
    e, f = (socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2))
    check(call(e, b"CLIENT", b"NO-EVICT", b"on") == b"+OK\r\n", "CLIENT NO-EVICT on")
    f.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nf\r\n$60000000\r\n" + b"f" * 4000000)
    time.sleep(0.2)
    e.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\ne\r\n$60000000\r\n")
    chunk = b"e" * 1000000
    for _ in range(40):
        e.sendall(chunk)
    f_closed = closed_within(f, 5)
    e_kept = not closed_now(e)
    e.close()  # (while it holds 40 MB, every other connection is closed as it comes: INFO's too)
    f.close()
    wait_total_under(port, budget, 5)
    evicted = int(info(port).get("evicted_clients", "-1")) - before
    check(f_closed and e_kept and evicted >= 1, f"past the budget with a no-evict client holding 40 MB: the other "
          f"closed ({evicted} evicted), the no-evict one kept")


def main():
    cmd, port, budget = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if cmd == "inputs":
        inputs(port, budget)
    elif cmd == "nonreader":
        nonreader(port, budget)
    elif cmd == "idle":
        idle(port, budget)
    elif cmd == "kill":
        kill(port, budget)
    else:
        sys.exit(f"unknown command {cmd}")
    sys.exit(1 if it_check.failures else 0)


if __name__ == "__main__":
    main()
