#!/usr/bin/env python3
"""Record a history of reads, writes and compare-and-sets on a few keys, as
Jepsen's register test does, for lincheck (tests/sim/lincheck.c) to judge.
Used by jepsen.sh; with python3-redis, the client most Redis applications use.

    jepsen.py run --ports A,A,.. --out FILE [--read-ports A,..] [--keys K]
                  [--clients C] [--seconds S] [--timeout T] [--seed N]
                  [--prefix NAME] [--stop FILE] [--bank-clients B]
    jepsen.py final --ports A,A,.. --out FILE [--keys K] [--prefix NAME]
                    [--bank-clients B]

A: PORT (on 127.0.0.1) or HOST:PORT.

run: the keys are deleted first; then C client threads, each with one
connection, for S seconds (or until FILE exists): each picks a
key of K (NAME:1..NAME:K) and a GET (40%), a SET of a value never written
before (35%) or a compare-and-set (25%: an EVAL that sets the key to a new
value if it holds the expected one, the value this client last saw there).
Every operation is written to FILE in lincheck's format, its invocation
and completion read from CLOCK_MONOTONIC around the call. The outcome:
  ok       the reply came back (GET: the value seen; CAS: 1 swapped, 0 not)
  unknown  a write or CAS whose reply did not come (timeout, connection
           lost) or was an error: it may have taken effect, then or later
  (a read without a reply says nothing: written as unknown, which lincheck
  drops)
After an error the client closes its connection and goes to the next port.
Writes and CASes go to --ports, reads to --read-ports (default: the same):
pointing reads at an asynchronous Redis replica is the negative control.

With --bank-clients B, B more clients run Jepsen's bank test beside them
on accounts NAME:bank:0..7, opened with 100 each: transfers of 1-5 in
WATCH/MULTI/EXEC transactions that read both balances and never overdraw,
and reads of all eight (MGET, or GETs in MULTI/EXEC); every read that
completes must sum to 800 with no negative balance (exit 1 otherwise,
printing the first wrong reads).

final: one GET of every key at every port, appended to FILE as ok reads
(after the cluster has converged: the state each replica ends with must be
one a linearization reaches); with --bank-clients, the balances at every
port must be equal, sum to 800 and none be negative (exit 1 otherwise).

Prints a summary: operations by kind and outcome, errors by first word.
A GET that answers something no client wrote (not a number, or negative)
is printed as WRONG and makes run exit 1.
"""
import argparse
import os
import random
import sys
import threading
import time

import redis

_tls_dir = os.environ.get("RABIA_TLS_DIR", "")
TLS_KW = (dict(ssl=True, ssl_ca_certs=os.path.join(_tls_dir, "ca.crt"),
               ssl_certfile=os.path.join(_tls_dir, "client.crt"),
               ssl_keyfile=os.path.join(_tls_dir, "client.key")) if _tls_dir else {})

# the register's compare-and-set; an absent key holds "0" (lincheck's initial value)
CAS = ("local v = redis.call('GET', KEYS[1]) if v == false then v = '0' end "
       "if v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end return 0")


def now():
    return time.monotonic_ns()


def addrs(spec):
    """"P,HOST:P,...": (host, port) pairs, 127.0.0.1 where no host is given"""
    out = []
    for a in spec.split(","):
        host, _, port = a.rpartition(":")
        out.append((host or "127.0.0.1", int(port)))
    return out


def connect(addr, timeout):
    # retry=None and retry_on_timeout=False: python3-redis sends each command
    # once (a hidden resend would be an operation this history does not have)
    return redis.Redis(host=addr[0], port=addr[1], socket_timeout=timeout,
                       socket_connect_timeout=timeout, retry_on_timeout=False,
                       **TLS_KW)


class Garbage(Exception):
    """A reply no operation of this history could produce."""


def as_value(reply):
    if reply is None:
        return 0
    try:
        v = int(reply)
    except ValueError:
        raise Garbage(f"read {reply!r}: not a value any client wrote") from None
    if v < 0:
        raise Garbage(f"read {v}: not a value any client wrote")
    return v


class Client(threading.Thread):
    def __init__(self, cid, args, ports, read_ports, deadline):
        super().__init__(daemon=True)
        self.cid, self.args, self.deadline = cid, args, deadline
        self.ports, self.read_ports = ports, read_ports
        self.rng = random.Random(args.seed * 1000003 + cid)
        self.ops = []            # lincheck lines, each with its invocation first
        self.errors = {}
        self.seq = 0
        self.last = {}           # key -> the value this client last saw or wrote
        self.conns = {}          # "w"/"r" -> (port index, connection)
        self.garbage = []        # replies no operation could produce

    def conn(self, role):
        ports = self.read_ports if role == "r" else self.ports
        if role not in self.conns:
            i = (self.cid + self.rng.randrange(len(ports))) % len(ports)
            self.conns[role] = [i, connect(ports[i], self.args.timeout)]
        return self.conns[role][1]

    def drop(self, role, err):
        word = (str(err).split() or [type(err).__name__])[0]
        key = f"{type(err).__name__}:{word}"
        self.errors[key] = self.errors.get(key, 0) + 1
        ports = self.read_ports if role == "r" else self.ports
        c = self.conns.pop(role, None)
        if c:
            try:
                c[1].close()
            except Exception:
                pass
            # the next port, where this client reconnects
            self.conns[role] = [(c[0] + 1) % len(ports), None]
            self.conns[role][1] = connect(ports[self.conns[role][0]], self.args.timeout)
        time.sleep(0.02 + self.rng.random() * 0.05)

    def record(self, key, kind, arg, arg2, result, status, t0, t1):
        self.ops.append((t0, f"{self.cid} {key} {kind} {arg} {arg2} {result} {status} {t0} {t1}"))

    def run(self):
        a = self.args
        while time.monotonic() < self.deadline and not (a.stop and os.path.exists(a.stop)):
            key = self.rng.randrange(1, a.keys + 1)
            name = f"{a.prefix}:{key}"
            x = self.rng.random()
            if x < 0.40:
                role, kind = "r", "r"
            elif x < 0.75:
                role, kind = "w", "w"
            else:
                role, kind = "w", "c"
            self.seq += 1
            val = self.cid * 1_000_000_000 + self.seq
            exp = self.last.get(key, 0)
            try:
                c = self.conn(role)
            except redis.RedisError as e:
                self.drop(role, e)
                continue
            t0 = now()
            try:
                if kind == "r":
                    got = as_value(c.get(name))
                    self.record(key, "r", 0, 0, got, "ok", t0, now())
                    self.last[key] = got
                elif kind == "w":
                    if c.set(name, val) is not True:
                        raise redis.ResponseError("SET did not answer OK")
                    self.record(key, "w", val, 0, 0, "ok", t0, now())
                    self.last[key] = val
                else:
                    swapped = int(c.eval(CAS, 1, name, exp, val))
                    if swapped not in (0, 1):
                        raise redis.ResponseError(f"CAS answered {swapped}")
                    self.record(key, "c", exp, val, swapped, "ok", t0, now())
                    if swapped:
                        self.last[key] = val
            except Garbage as e:
                self.garbage.append(f"client {self.cid} key {key}: {e}")
            except (redis.RedisError, OSError, ValueError) as e:
                # no reply, or an error reply: unknown (a read: dropped)
                self.record(key, kind, 0 if kind == "r" else (val if kind == "w" else exp),
                            val if kind == "c" else 0, 0, "unknown", t0, 0)
                self.drop(role, e)


ACCOUNTS = 8
BALANCE = 100  # each account's opening balance: the total is ACCOUNTS x BALANCE


def accounts(prefix):
    return [f"{prefix}:bank:{i}" for i in range(ACCOUNTS)]


class Bank(threading.Thread):
    """Jepsen's bank test: transfers between accounts in WATCH/MULTI/EXEC
    transactions (read both balances, refuse to overdraw, write both), and
    reads of every account at once (MGET, or GETs in MULTI/EXEC). Any read
    that completed must see the opening total and no negative balance,
    whatever the faults did to the transfers around it."""

    def __init__(self, cid, args, ports, deadline):
        super().__init__(daemon=True)
        self.cid, self.args, self.ports, self.deadline = cid, args, ports, deadline
        self.rng = random.Random(args.seed * 1000003 + 500 + cid)
        self.i = cid % len(ports)
        self.c = connect(ports[self.i], args.timeout)
        self.acct = accounts(args.prefix)
        self.counts = {}
        self.bad = []            # reads that saw money created or lost
        self.errors = {}

    def count(self, what):
        self.counts[what] = self.counts.get(what, 0) + 1

    def drop(self, err):
        word = (str(err).split() or [type(err).__name__])[0]
        key = f"{type(err).__name__}:{word}"
        self.errors[key] = self.errors.get(key, 0) + 1
        try:
            self.c.close()
        except Exception:
            pass
        self.i = (self.i + 1) % len(self.ports)
        self.c = connect(self.ports[self.i], self.args.timeout)
        time.sleep(0.02 + self.rng.random() * 0.05)

    def transfer(self):
        a, b = self.rng.sample(self.acct, 2)
        amount = self.rng.randint(1, 5)
        with self.c.pipeline(transaction=True) as p:
            try:
                p.watch(a, b)
                ga, gb = p.get(a), p.get(b)
                if ga is None or gb is None:
                    self.bad.append(f"client b{self.cid} transfer read {a}={ga} {b}={gb}: an account is gone")
                    return
                va, vb = int(ga), int(gb)
                if va < amount:
                    self.count("transfer refused (balance)")
                    return
                p.multi()
                p.set(a, va - amount)
                p.set(b, vb + amount)
                p.execute()
                self.count("transfer ok")
            except redis.WatchError:
                self.count("transfer conflict (WATCH)")

    def read(self):
        if self.rng.random() < 0.5:
            got = self.c.mget(self.acct)
            how = "MGET"
        else:
            with self.c.pipeline(transaction=True) as p:
                for k in self.acct:
                    p.get(k)
                got = p.execute()
            how = "MULTI"
        self.count(f"read ok ({how})")
        if any(v is None for v in got):
            self.bad.append(f"client b{self.cid} {how} read {got}: an account is gone")
            return
        vals = [int(v) for v in got]
        if sum(vals) != ACCOUNTS * BALANCE or min(vals) < 0:
            self.bad.append(f"client b{self.cid} {how} read {vals}: sum {sum(vals)}, expected "
                            f"{ACCOUNTS * BALANCE}, none negative")

    def run(self):
        a = self.args
        while time.monotonic() < self.deadline and not (a.stop and os.path.exists(a.stop)):
            try:
                if self.rng.random() < 0.6:
                    self.transfer()
                else:
                    self.read()
            except (redis.RedisError, OSError, ValueError) as e:
                self.count("unknown (error)")
                self.drop(e)


def summary(ops, errors, secs):
    by = {}
    for _, line in ops:
        f = line.split()
        by[(f[2], f[6])] = by.get((f[2], f[6]), 0) + 1
    names = {"r": "read", "w": "write", "c": "cas"}
    parts = []
    for k in "rwc":
        parts.append(f"{names[k]} " + ", ".join(f"{st} {by.get((k, st), 0)}" for st in ("ok", "unknown")))
    ok = sum(v for (k, st), v in by.items() if st == "ok")
    print(f"{len(ops)} ops in {secs:.1f} s ({ok / max(secs, 1e-9):.0f} ok/s): " + "; ".join(parts))
    if errors:
        print("errors: " + ", ".join(f"{k} {v}" for k, v in sorted(errors.items(), key=lambda kv: -kv[1])))


def run(a):
    ports = addrs(a.ports)
    read_ports = addrs(a.read_ports) if a.read_ports else ports
    # the registers start absent (lincheck's 0): a DEL acknowledged before
    # any operation is invoked
    c = connect(ports[0], 10.0)
    c.delete(*[f"{a.prefix}:{k}" for k in range(1, a.keys + 1)])
    if a.bank_clients:  # the accounts open, before any transfer
        c.mset({k: BALANCE for k in accounts(a.prefix)})
    c.close()
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    clients = [Client(i + 1, a, ports, read_ports, deadline) for i in range(a.clients)]
    banks = [Bank(i + 1, a, ports, deadline) for i in range(a.bank_clients)]
    for c in clients + banks:
        c.start()
    for c in clients + banks:
        c.join(a.seconds + 4 * a.timeout + 10)
        if c.is_alive():
            print(f"client {c.cid} did not stop", file=sys.stderr)
            return 1
    secs = time.monotonic() - t0
    ops, errors = [], {}
    for c in clients:
        ops += c.ops
        for k, v in c.errors.items():
            errors[k] = errors.get(k, 0) + v
    ops.sort()
    with open(a.out, "a") as f:
        f.write(f"# jepsen.py run: {a.clients} clients, {a.keys} keys, {a.seconds} s, ports {a.ports}"
                f"{', reads at ' + a.read_ports if a.read_ports else ''}\n")
        for _, line in ops:
            f.write(line + "\n")
    summary(ops, errors, secs)
    garbage = [g for c in clients for g in c.garbage]
    for g in garbage[:10]:
        print("WRONG " + g)
    if not banks:
        return 1 if garbage else 0
    counts, berr, bad = {}, {}, []
    for b in banks:
        bad += b.bad
        for k, v in b.counts.items():
            counts[k] = counts.get(k, 0) + v
        for k, v in b.errors.items():
            berr[k] = berr.get(k, 0) + v
    print(f"bank: {len(banks)} clients, {ACCOUNTS} accounts of {BALANCE}: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if berr:
        print("bank errors: " + ", ".join(f"{k} {v}" for k, v in sorted(berr.items(), key=lambda kv: -kv[1])))
    for line in bad[:10]:
        print("bank: WRONG " + line)
    if bad:
        print(f"bank: {len(bad)} reads saw money created or lost")
    return 1 if bad or garbage else 0


def final(a):
    ports = addrs(a.ports)
    lines = []
    for i, p in enumerate(ports):
        c = connect(p, 5.0)
        for key in range(1, a.keys + 1):
            t0 = now()
            v = as_value(c.get(f"{a.prefix}:{key}"))
            lines.append(f"{900 + i} {key} r 0 0 {v} ok {t0} {now()}")
        c.close()
    with open(a.out, "a") as f:
        f.write(f"# jepsen.py final: every key at ports {a.ports}\n")
        f.write("\n".join(lines) + "\n")
    print(f"final reads: {len(lines)} ({a.keys} keys x {len(ports)} ports)")
    if not a.bank_clients:
        return 0
    seen = []
    for p in ports:
        c = connect(p, 5.0)
        seen.append([int(v) if v is not None else -1 for v in c.mget(accounts(a.prefix))])
        c.close()
    print(f"bank: final balances at each port: {seen}")
    if any(v != seen[0] for v in seen) or sum(seen[0]) != ACCOUNTS * BALANCE or min(seen[0]) < 0:
        print(f"bank: WRONG final balances: sums {[sum(v) for v in seen]}, expected {ACCOUNTS * BALANCE} everywhere")
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("run", "final"))
    ap.add_argument("--ports", required=True)
    ap.add_argument("--read-ports", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("--keys", type=int, default=5)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prefix", default="jepsen")
    ap.add_argument("--stop", default="", help="end early once this file exists")
    ap.add_argument("--bank-clients", type=int, default=0)
    a = ap.parse_args()
    if a.keys < 1 or a.clients < 1 or a.clients > 900:
        ap.error("--keys >= 1 and 1 <= --clients <= 900")
    return run(a) if a.mode == "run" else final(a)


if __name__ == "__main__":
    sys.exit(main())
