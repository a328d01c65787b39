#!/usr/bin/env python3
"""An application on a 3-replica cluster through redis-py (python3-redis), the
client most Redis applications use. Run it with Debian's /usr/bin/python3.

    redis_app.py --ports P1,P2,P3 [--host 127.0.0.1] [--victim-pid PID --victim N]
                 [--threads 4] [--increments 60] [--prefix app]

It uses every type through all three replicas' RESP ports and checks what it
reads:

  1. strings with expiry (SET EX/PX, SETEX, TTL, INCR, INCRBYFLOAT, MSET/MGET,
     APPEND), hashes, lists, sets, sorted sets: written at one replica, read
     at the others;
  2. pipelines: transaction=False (100 commands in one round trip, replies
     in order) and transaction=True (MULTI/EXEC: all or nothing); WAIT after
     a SET counts the other replicas that have it (2 of 2; after the crash
     in step 5, exactly 1);
  2b. scripts: redis-py's register_script (EVALSHA, SCRIPT LOAD on
     NOSCRIPT) registered through one replica and run through the others; a
     rate limiter script; redis-py's Lock (its release, extend and
     reacquire are Lua scripts) taken by threads on all three replicas around
     a non-atomic GET/SET increment: no increment is lost (mutual
     exclusion), a wrong token's release raises LockNotOwnedError; a
     runaway script is stopped (the same error at every replica) and the
     cluster goes on;
  3. Pub/Sub: a subscriber on replica A, a publisher on replica B; every
     message arrives, in publish order;
  4. blocking pops: BLPOP on one replica woken by an RPUSH on another (and
     BZPOPMIN by a ZADD, BLMPOP by an RPUSH, BZMPOP's timeout); BLPOP
     on an empty list times out with None;
  5. concurrency with a crash: --threads threads increment a counter stored
     as JSON in one string key ({"n": total, "by": {thread: count}}) with
     WATCH/MULTI/EXEC retry loops (pipeline.watch), each starting on its own
     replica, while a writer RPUSHes sequence numbers to a list and SADDs them
     to a set. Midway the victim replica (--victim N, its PID --victim-pid) is
     killed with kill -9; clients connected to it fail over to the next
     replica (a Failover wrapper: reads are retried on the next replica;
     writes whose outcome is unknown are counted and resolved afterwards, an
     increment by reading the thread's own count in the JSON after the
     cluster settled). Pub/Sub and BLPOP are checked again across the two
     survivors;
  6. the final state, read at every survivor: counter n equals the number of
     increments that took effect and equals the sum of the per-thread counts,
     each thread's count equals its own successes (a lost update or a double
     application would show); every acknowledged list/set element is there,
     no element that was never sent, no duplicates, acknowledged elements in
     order; the data of step 1 is intact.

Prints each check ("ok: ..." / "FAIL: ...") and a summary line; exit 0 when
every check passed, 1 on any failure, 2 when it could not start.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time

import redis

# With RABIA_TLS_DIR (tests/integration/lib.sh) the replicas speak TLS 1.3:
# every client here verifies them against the test CA and presents the
# test client certificate.
_tls_dir = os.environ.get("RABIA_TLS_DIR", "")
TLS_KW = (dict(ssl=True, ssl_ca_certs=os.path.join(_tls_dir, "ca.crt"),
               ssl_certfile=os.path.join(_tls_dir, "client.crt"),
               ssl_keyfile=os.path.join(_tls_dir, "client.key")) if _tls_dir else {})

CHECKS = {"ok": 0, "fail": 0}
LOCK = threading.Lock()
T0 = time.time()


def say(msg):
    with LOCK:
        print("[redis_app %6.2fs] %s" % (time.time() - T0, msg), flush=True)


def safe(fn):
    """fn() or the exception it raised"""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 (becomes a failed check)
        return e


def check(what, cond, detail=""):
    """cond: a truth value or a function giving one (an exception is a failure)"""
    if callable(cond):
        try:
            cond = cond()
        except Exception as e:  # noqa: BLE001
            cond = False
            detail = "%s: %s" % (type(e).__name__, e)
    with LOCK:
        if cond:
            CHECKS["ok"] += 1
        else:
            CHECKS["fail"] += 1
    say(("  ok: " if cond else "FAIL: ") + what + ("" if cond or not detail else " (%s)" % detail))
    return cond


class Unknown(Exception):
    """a write whose outcome is unknown: the connection broke after it was sent"""


CONN_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def never_sent(err):
    """redis-py's message when the connection could not even be made: the
    command was not sent, so even a write may be retried elsewhere"""
    return "connecting to" in str(err)


class Failover:
    """One redis-py client per replica; commands go to the current replica.
    read(fn) retries fn(client) on the next replica on a connection error
    (reads are idempotent). write(fn) tries the current replica only: on a
    connection error the outcome is unknown (raises Unknown) and the next
    write goes to the next replica; an error while connecting (nothing sent)
    is retried like a read."""

    def __init__(self, host, ports, start, name, stats, **kw):
        kw.setdefault("socket_timeout", 5)
        kw.setdefault("socket_connect_timeout", 2)
        self.clients = [redis.Redis(host=host, port=p, **TLS_KW, **kw) for p in ports]
        self.ports = ports
        self.i = start % len(ports)
        self.name = name
        self.stats = stats

    def current(self):
        return self.clients[self.i]

    def port(self):
        return self.ports[self.i]

    def rotate(self, err):
        old = self.ports[self.i]
        self.i = (self.i + 1) % len(self.clients)
        with LOCK:
            self.stats["failovers"] = self.stats.get("failovers", 0) + 1
        say("%s: %s on port %d; now using port %d" % (self.name, type(err).__name__, old, self.ports[self.i]))

    def read(self, fn):
        last = None
        for _ in range(2 * len(self.clients)):
            try:
                return fn(self.current())
            except CONN_ERRORS as e:
                last = e
                self.rotate(e)
                time.sleep(0.05)
        raise last

    def write(self, fn):
        for _ in range(2 * len(self.clients)):
            try:
                return fn(self.current())
            except CONN_ERRORS as e:
                self.rotate(e)
                if not never_sent(e):
                    raise Unknown(str(e))
                time.sleep(0.05)
        raise Unknown("no replica reachable")


def step(name, fn):
    """run one step; an exception in it is a failed check, and the next step runs"""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001
        check("step %s ran to its end" % name, False, "%s: %s" % (type(e).__name__, e))
        return None


def wait_for(cond, timeout, step=0.05):
    t = time.time() + timeout
    while time.time() < t:
        if cond():
            return True
        time.sleep(step)
    return cond()


# ---------------------------------------------------------------------------
# 1. types

def types_phase(rs, P):
    r1, r2, r3 = rs
    say("1. every type, written at one replica and read at the others")
    # strings and expiry
    r1.delete(P + "s:ex", P + "s:px", P + "s:setex", P + "s:n", P + "s:f", P + "s:a", P + "s:m1", P + "s:m2")
    check("SET ex 2 (replica 1)", lambda: r1.set(P + "s:ex", "hello", ex=2) is True)
    check("GET at replica 2", lambda: r2.get(P + "s:ex") == b"hello")
    ttl = safe(lambda: r3.ttl(P + "s:ex"))
    check("TTL at replica 3 within 1..2", lambda: ttl in (1, 2), "TTL %r" % ttl)
    check("SET px 300 (replica 2)", lambda: r2.set(P + "s:px", "short", px=300) is True)
    check("SETEX 100 (replica 3)", lambda: r3.setex(P + "s:setex", 100, "long") is True)
    pttl = safe(lambda: r1.pttl(P + "s:setex"))
    check("PTTL at replica 1 within 90..100 s", lambda: 90000 <= pttl <= 100000, "PTTL %r" % pttl)
    check("SET nx on an existing key is refused", lambda: r3.set(P + "s:setex", "x", nx=True) is None)
    time.sleep(0.6)
    check("the PX 300 key has expired (GET at replica 3)", lambda: r3.get(P + "s:px") is None)
    check("EXISTS of the expired key at replica 1 is 0", lambda: r1.exists(P + "s:px") == 0)
    check("INCR x3 over the replicas",
          [r1.incr(P + "s:n"), r2.incr(P + "s:n"), r3.incrby(P + "s:n", 10)] == [1, 2, 12])
    check("INCRBYFLOAT", lambda: r2.incrbyfloat(P + "s:f", 1.5) == 1.5 and r3.incrbyfloat(P + "s:f", 0.25) == 1.75)
    check("MSET/MGET", lambda: r1.mset({P + "s:m1": "a", P + "s:m2": "b"}) is True
          and r3.mget(P + "s:m1", P + "s:m2", P + "s:none") == [b"a", b"b", None])
    check("APPEND/STRLEN", lambda: r2.append(P + "s:a", "abc") == 3 and r1.append(P + "s:a", "de") == 5
          and r3.strlen(P + "s:a") == 5 and r3.get(P + "s:a") == b"abcde")
    # hashes
    h = P + "h:user"
    r1.delete(h)
    check("HSET mapping (replica 1)", lambda: r1.hset(h, mapping={"name": "ada", "visits": 1, "lang": "en"}) == 3)
    check("HGETALL at replica 2", lambda: r2.hgetall(h) == {b"name": b"ada", b"visits": b"1", b"lang": b"en"})
    check("HINCRBY at replica 3", lambda: r3.hincrby(h, "visits", 41) == 42)
    check("HDEL/HEXISTS/HLEN", lambda: r1.hdel(h, "lang") == 1 and not r2.hexists(h, "lang") and r3.hlen(h) == 2)
    check("HMGET", lambda: r2.hmget(h, ["name", "visits", "none"]) == [b"ada", b"42", None])
    # lists
    lk = P + "l:list"
    r1.delete(lk)
    check("RPUSH/LPUSH", lambda: r1.rpush(lk, "b", "c") == 2 and r2.lpush(lk, "a") == 3)
    check("LRANGE at replica 3", lambda: r3.lrange(lk, 0, -1) == [b"a", b"b", b"c"])
    check("LPOP/RPOP/LLEN", lambda: r1.lpop(lk) == b"a" and r2.rpop(lk) == b"c" and r3.llen(lk) == 1)
    # sets
    s1, s2 = P + "set:1", P + "set:2"
    r1.delete(s1, s2)
    check("SADD", lambda: r1.sadd(s1, "a", "b", "c") == 3 and r2.sadd(s2, "b", "c", "d") == 3)
    check("SMEMBERS at replica 3", lambda: r3.smembers(s1) == {b"a", b"b", b"c"})
    check("SINTER/SUNION/SDIFF", lambda: r1.sinter(s1, s2) == {b"b", b"c"} and r2.sunion(s1, s2) == {b"a", b"b", b"c", b"d"}
          and r3.sdiff(s1, s2) == {b"a"})
    check("SISMEMBER/SREM/SCARD", lambda: r1.sismember(s1, "a") and r2.srem(s1, "a") == 1 and r3.scard(s1) == 2)
    # sorted sets
    z = P + "z:board"
    r1.delete(z)
    check("ZADD", lambda: r1.zadd(z, {"ann": 10, "bob": 20, "cid": 15}) == 3)
    check("ZINCRBY at replica 2", lambda: r2.zincrby(z, 12, "ann") == 22.0)
    check("ZRANGE withscores at replica 3",
          r3.zrange(z, 0, -1, withscores=True) == [(b"cid", 15.0), (b"bob", 20.0), (b"ann", 22.0)])
    check("ZREVRANK/ZSCORE/ZCARD", lambda: r1.zrevrank(z, "ann") == 0 and r2.zscore(z, "bob") == 20.0 and r3.zcard(z) == 3)
    check("ZRANGEBYSCORE", lambda: r1.zrangebyscore(z, 15, 20) == [b"cid", b"bob"])
    # HyperLogLog (feature level 4): the counts redis-server 7.0.15 gives for
    # the same adds, and the same bytes at every replica
    u1, u2, uw = P + "hll:mon", P + "hll:tue", P + "hll:week"
    r1.delete(u1, u2, uw)
    check("PFADD 1000 users (replica 1)", lambda: r1.pfadd(u1, *["user%d" % i for i in range(1000)]) == 1)
    check("PFADD of users already counted (replica 2)", lambda: r2.pfadd(u1, "user1", "user2") == 0)
    check("PFADD 1000 users, 500 of them new (replica 3)",
          lambda: r3.pfadd(u2, *["user%d" % i for i in range(500, 1500)]) == 1)
    check("PFCOUNT at replica 2: 1011, as redis-server", lambda: r2.pfcount(u1) == 1011)
    check("PFMERGE (replica 3), PFCOUNT of the union: 1504 at replicas 1 and 2",
          lambda: r3.pfmerge(uw, u1, u2) is True and r1.pfcount(uw) == 1504 and r2.pfcount(u1, u2) == 1504)
    check("the HLL strings are the same at every replica",
          lambda: r1.get(u1) == r2.get(u1) == r3.get(u1) and r1.get(uw) == r3.get(uw))
    # BITFIELD (feature level 4): counters packed in one string, through
    # redis-py's BitFieldOperation, read back at another replica
    bf = P + "bf:counters"
    r1.delete(bf)
    check("BITFIELD INCRBY u8 #0, #1 with OVERFLOW SAT (replica 1)",
          lambda: r1.bitfield(bf).incrby("u8", "#0", 200).overflow("SAT").incrby("u8", "#1", 300).execute() == [200, 255])
    check("BITFIELD_RO at replica 2, OVERFLOW FAIL at replica 3",
          lambda: r2.execute_command("BITFIELD_RO", bf, "GET", "u8", "#0", "GET", "u8", "#1") == [200, 255]
          and r3.bitfield(bf).overflow("FAIL").incrby("u8", "#0", 100).get("u8", "#0").execute() == [None, 200])
    # geo (feature level 5): positions as sorted-set scores, searched at
    # other replicas; every figure is what redis-server 7.0.15 answers
    g, gn = P + "geo:sicily", P + "geo:near"
    r1.delete(g, gn)
    check("GEOADD three places (replica 1)",
          lambda: r1.geoadd(g, (13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania", 14.25, 37.5, "Enna")) == 3)
    check("GEODIST in km, GEOPOS and GEOHASH at replica 2",
          lambda: r2.geodist(g, "Palermo", "Catania", unit="km") == 166.2742 and
          r2.geopos(g, "Palermo", "nowhere") == [(13.361389338970184, 38.1155563954963), None] and
          r2.geohash(g, "Catania") == ["sqdtr74hyu0"])
    check("GEOSEARCH by radius, nearest first, with distances and positions (replica 3)",
          lambda: r3.geosearch(g, longitude=15, latitude=37, radius=200, unit="km", sort="ASC", withdist=True,
                               withcoord=True) ==
          [[b"Catania", 56.4413, (15.087267458438873, 37.50266842333162)],
           [b"Enna", 86.614, (14.249999821186066, 37.499999361950834)],
           [b"Palermo", 190.4424, (13.361389338970184, 38.1155563954963)]])
    check("GEOSEARCH by box around a member, COUNT 2 DESC (replica 1)",
          lambda: r1.geosearch(g, member="Enna", width=200, height=100, unit="km", sort="DESC", count=2) ==
          [b"Catania", b"Enna"])
    check("GEOSEARCHSTORE STOREDIST at replica 2, read at replica 3",
          lambda: r2.geosearchstore(gn, g, longitude=15, latitude=37, radius=100, unit="km", storedist=True) == 2 and
          r3.zrange(gn, 0, -1, withscores=True) == [(b"Catania", 56.4412578701582), (b"Enna", 86.61396148749024)])
    check("GEORADIUSBYMEMBER WITHDIST (replica 3)",
          lambda: r3.georadiusbymember(g, "Palermo", 100, unit="km", withdist=True) == [[b"Palermo", 0.0]])
    # keys
    check("TYPE of each", lambda: [r2.type(k) for k in (P + "s:n", h, lk, s1, z)] ==
          [b"string", b"hash", b"list", b"set", b"zset"])
    return {"h": r3.hgetall(h), "z": r3.zrange(z, 0, -1, withscores=True), "s": r3.smembers(s1),
            "l": r3.lrange(lk, 0, -1), "n": r3.get(P + "s:n"), "u": r3.get(uw)}


def types_intact(rs, P, saved, names):
    for r, name in zip(rs, names):
        h = P + "h:user"
        now = {"h": r.hgetall(h), "z": r.zrange(P + "z:board", 0, -1, withscores=True), "s": r.smembers(P + "set:1"),
               "l": r.lrange(P + "l:list", 0, -1), "n": r.get(P + "s:n"), "u": r.get(P + "hll:week")}
        check("%s: the data of step 1 is intact (hash, zset, set, list, counter, HyperLogLog)" % name, now == saved,
              "%r != %r" % (now, saved))


# ---------------------------------------------------------------------------
# 2. pipelines

def pipeline_phase(rs, P):
    r1, r2, r3 = rs
    say("2. pipelines")
    k = P + "p:"
    r1.delete(*[k + str(i) for i in range(50)], k + "ctr", k + "a", k + "b")
    p = r1.pipeline(transaction=False)
    for i in range(50):
        p.set(k + str(i), "v%d" % i)
        p.incr(k + "ctr")
    res = p.execute()
    check("pipeline(transaction=False): 100 replies in order",
          res == [x for i in range(50) for x in (True, i + 1)], "%r..." % res[:6])
    check("the pipelined writes read at replica 2",
          r2.mget([k + str(i) for i in range(0, 50, 7)]) == [b"v%d" % i for i in range(0, 50, 7)]
          and r2.get(k + "ctr") == b"50")
    p = r2.pipeline(transaction=True)
    p.set(k + "a", 1).incrby(k + "a", 9).set(k + "b", "x").get(k + "a")
    res = p.execute()
    check("pipeline(transaction=True): MULTI/EXEC replies", lambda: res == [True, 10, True, b"10"], repr(res))
    check("the transaction's writes read at replica 3", lambda: r3.mget(k + "a", k + "b") == [b"10", b"x"])
    # a runtime error inside EXEC does not stop the others (Redis semantics)
    p = r3.pipeline(transaction=True)
    p.set(k + "a", 5).lpush(k + "a", "oops").incr(k + "a")
    res = p.execute(raise_on_error=False)
    check("MULTI/EXEC with a WRONGTYPE in the middle: the other commands applied",
          res[0] is True and isinstance(res[1], redis.ResponseError) and res[2] == 6, repr(res))
    check("... and visible at replica 1", lambda: r1.get(k + "a") == b"6")
    wait_check(rs, P, "all three up", 2)


def wait_check(rs, P, label, most):
    """WAIT after a SET at each given replica: the other replicas known to
    have the write. Never more than `most` (the other replicas alive), at
    least 1 (a majority had it); with all up a unanimous slot, the usual
    case, gives 2: at least one of ten must."""
    got = []
    for r in rs:
        for i in range(10):
            r.set(P + "wait", i)
            got.append(r.execute_command("WAIT", 2, 0))
    check("WAIT 2 0 after a SET (%s): %s" % (label, sorted(set(got))),
          all(1 <= g <= most for g in got) and max(got) == most, repr(got))


# ---------------------------------------------------------------------------
# 3. Pub/Sub and 4. blocking pops

RATE_LIMIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then return 0 end
return 1
"""


def scripts_phase(rs, P, host, ports):
    # a script registered at one replica runs at the others: the cache is replicated state
    cas = rs[0].register_script("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                "redis.call('SET', KEYS[1], ARGV[2]) return 1 end return 0")
    rs[0].set(P + "cas", "a")
    got = [cas(keys=[P + "cas"], args=["a", "b"], client=rs[1]),
           cas(keys=[P + "cas"], args=["a", "c"], client=rs[2]),
           cas(keys=[P + "cas"], args=["b", "d"], client=rs[0])]
    check("compare-and-set script through replicas 2, 3, 1: %s, value %r" % (got, rs[1].get(P + "cas")),
          got == [1, 0, 1] and rs[1].get(P + "cas") == b"d")
    check("SCRIPT EXISTS of it at every replica: %s" % [r.script_exists(cas.sha)[0] for r in rs],
          all(r.script_exists(cas.sha)[0] for r in rs))
    cached = [r.info("memory").get("number_of_cached_scripts") for r in rs]
    check("INFO memory number_of_cached_scripts alike at every replica: %s" % cached,
          len(set(cached)) == 1 and cached[0] >= 1)
    lim = rs[1].register_script(RATE_LIMIT)
    allowed = [lim(keys=[P + "rate"], args=[5, 60000], client=rs[i % 3]) for i in range(12)]
    check("rate limiter script (5 per minute) across the replicas: %s" % allowed,
          allowed == [1] * 5 + [0] * 7 and 0 < rs[2].pttl(P + "rate") <= 60000)
    err = safe(lambda: rs[2].eval("local n = 0 while true do n = n + 1 end", 0))
    errs = [str(safe(lambda r=r: r.eval("while true do end", 0))) for r in rs]
    check("a script that never ends is stopped at every replica with the same error",
          isinstance(err, redis.ResponseError) and "Lua instructions" in str(err) and len(set(errs)) == 1 and
          "Lua instructions" in errs[0], "%r / %r" % (err, errs))
    check("the cluster serves after it", rs[0].set(P + "after-loop", "1") and rs[2].get(P + "after-loop") == b"1")
    # redis-py's Lock: releases, extends and reacquires through Lua
    lkey, ckey, n_threads, per = P + "lock", P + "locked-counter", 3, 15
    rs[0].set(ckey, 0)
    errors = []

    def worker(i):
        r = redis.Redis(host=host, port=ports[i % 3], socket_timeout=5, **TLS_KW)
        try:
            for _ in range(per):
                with r.lock(lkey, timeout=10, sleep=0.005, blocking_timeout=30):
                    v = int(r.get(ckey))
                    r.set(ckey, v + 1)  # a lost update if two held the lock at once
        except Exception as e:  # noqa: BLE001
            errors.append("%s: %r" % (i, e))
        finally:
            r.close()

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    total = int(rs[1].get(ckey))
    check("%d threads on the three replicas x %d GET/SET increments under redis-py's Lock: %d"
          % (n_threads, per, total), not errors and total == n_threads * per, "; ".join(errors))
    lk = rs[0].lock(P + "lock2", timeout=5)
    ok1 = lk.acquire(blocking=False) and lk.extend(5)
    ttl1 = rs[2].pttl(P + "lock2")
    ok2 = lk.reacquire()
    ttl2 = rs[1].pttl(P + "lock2")
    check("Lock.acquire, extend by 5 s (pttl %d), reacquire to 5 s (pttl %d): scripts at replica 1" % (ttl1, ttl2),
          ok1 and ok2 and 5000 < ttl1 <= 10000 and 0 < ttl2 <= 5000)
    other = rs[1].lock(P + "lock2", timeout=5)
    other.local.token = b"not-the-owner"
    e = safe(other.release)
    check("releasing with another token raises LockNotOwnedError (the script compared tokens)",
          isinstance(e, redis.exceptions.LockNotOwnedError), repr(e))
    lk.release()
    check("the owner's release deleted the lock", rs[2].exists(P + "lock2") == 0)


def pubsub_check(host, sub_port, pub_port, channel, n, label):
    sub = redis.Redis(host=host, port=sub_port, socket_timeout=10, socket_connect_timeout=2, **TLS_KW)
    pub = redis.Redis(host=host, port=pub_port, socket_timeout=5, socket_connect_timeout=2, **TLS_KW)
    ps = sub.pubsub(ignore_subscribe_messages=False)
    ps.subscribe(channel)
    first = ps.get_message(timeout=5)
    if not check("%s: SUBSCRIBE %s on port %d confirmed" % (label, channel, sub_port),
                 first is not None and first["type"] == "subscribe", repr(first)):
        ps.close()
        return
    receivers = []
    for i in range(n):
        receivers.append(pub.publish(channel, "m%03d" % i))
    got = []
    deadline = time.time() + 10
    while len(got) < n and time.time() < deadline:
        m = ps.get_message(timeout=1)
        if m and m["type"] == "message":
            got.append(m["data"])
    want = [b"m%03d" % i for i in range(n)]
    check("%s: %d messages published on port %d arrived on port %d in publish order" % (label, n, pub_port, sub_port),
          got == want, "got %d: %r" % (len(got), got[:10]))
    say("   PUBLISH returned receiver counts %s" % sorted(set(receivers)))
    ps.unsubscribe(channel)
    ps.close()


def woken(call, push):
    """A blocking call in a thread, the push 0.5 s later: (what the push
    returned, what the call returned or raised, seconds it took)."""
    out = {}

    def pop():
        t = time.time()
        try:
            out["res"] = call()
        except Exception as e:  # noqa: BLE001 (the caller reports it)
            out["res"] = e
        out["dt"] = time.time() - t
    th = threading.Thread(target=pop)
    th.start()
    time.sleep(0.5)
    pushed = push()
    th.join(15)
    return pushed, out.get("res"), out.get("dt", -1)


def blpop_check(host, pop_port, push_port, key, label):
    popper = redis.Redis(host=host, port=pop_port, socket_timeout=20, socket_connect_timeout=2, **TLS_KW)
    pusher = redis.Redis(host=host, port=push_port, socket_timeout=5, socket_connect_timeout=2, **TLS_KW)
    pusher.delete(key)
    pushed, res, dt = woken(lambda: popper.blpop(key, timeout=8), lambda: pusher.rpush(key, "job-1"))
    out = {"res": res, "dt": dt}
    check("%s: BLPOP on port %d woken by RPUSH on port %d" % (label, pop_port, push_port),
          pushed == 1 and out.get("res") == (key.encode(), b"job-1") and 0.3 <= out.get("dt", 99) < 8,
          "RPUSH %r, BLPOP %r after %.2f s" % (pushed, out.get("res"), out.get("dt", -1)))
    check("%s: the popped list is gone (EXISTS at port %d)" % (label, push_port), pusher.exists(key) == 0)
    t = time.time()
    res = popper.blpop(key + ":empty", timeout=1)
    dt = time.time() - t
    check("%s: BLPOP on an empty list with timeout 1 returns None after ~1 s" % label,
          res is None and 0.9 <= dt < 4, "%r after %.2f s" % (res, dt))
    # pipelined blocking pops, each waited for in turn as in Redis (two of
    # them shared one parked state: the first never answered, the
    # connection hung and blocked_clients leaked)
    pipe = popper.pipeline(transaction=False)
    pipe.blpop(key + ":e1", timeout=0.3)
    pipe.blpop(key + ":e2", timeout=0.3)
    pipe.set(key + ":after", "v")
    pipe.get(key + ":after")
    pipe.blmove(key + ":e3", key + ":e4", 0.2, "LEFT", "RIGHT")
    pipe.ping()
    t = time.time()
    try:
        res = pipe.execute()
    except Exception as e:  # noqa: BLE001 (reported)
        res = e
    dt = time.time() - t
    check("%s: BLPOP, BLPOP, SET, GET, BLMOVE, PING in one pipeline: every reply, in order, after the timeouts"
          % label, res == [None, None, True, b"v", None, True] and 0.7 <= dt < 5, "%r after %.2f s" % (res, dt))
    popper.delete(key + ":after")
    blocked = popper.info("clients").get("blocked_clients")
    check("%s: no client counted as blocked afterwards (INFO blocked_clients)" % label, blocked == 0, repr(blocked))


def zpop_check(host, pop_port, push_port, key, label):
    """BZPOPMIN and BLMPOP (feature level 1, Redis 7.0's): a priority queue's
    worker parked on one replica, woken by a ZADD on another; BLMPOP the
    same with an RPUSH; BZMPOP's timeout."""
    popper = redis.Redis(host=host, port=pop_port, socket_timeout=20, socket_connect_timeout=2, **TLS_KW)
    pusher = redis.Redis(host=host, port=push_port, socket_timeout=5, socket_connect_timeout=2, **TLS_KW)
    pusher.delete(key, key + ":l")
    for name, call, push, want in (
            ("BZPOPMIN", lambda: popper.bzpopmin([key + ":none", key], timeout=8),
             lambda: pusher.zadd(key, {"job-2": 2, "job-1": 1}), (key.encode(), b"job-1", 1.0)),
            ("BLMPOP", lambda: popper.execute_command("BLMPOP", 8, 2, key + ":none", key + ":l", "LEFT", "COUNT", 5),
             lambda: pusher.rpush(key + ":l", "a", "b"), [(key + ":l").encode(), [b"a", b"b"]])):
        pushed, res, dt = woken(call, push)
        out = {"res": res, "dt": dt}
        check("%s: %s on port %d woken by a write on port %d" % (label, name, pop_port, push_port),
              out.get("res") == want and 0.3 <= out.get("dt", 99) < 8,
              "pushed %r, %s %r after %.2f s" % (pushed, name, out.get("res"), out.get("dt", -1)))
    check("%s: ZPOP left the other member" % label, pusher.zrange(key, 0, -1, withscores=True) == [(b"job-2", 2.0)])
    t = time.time()
    res = popper.execute_command("BZMPOP", 1, 1, key + ":none", "MIN")
    dt = time.time() - t
    check("%s: BZMPOP on an empty key with timeout 1 returns None after ~1 s" % label,
          res is None and 0.9 <= dt < 4, "%r after %.2f s" % (res, dt))


# ---------------------------------------------------------------------------
# 5. concurrency and the crash

class Incrementer(threading.Thread):
    def __init__(self, tid, host, ports, key, n, stats, unsafe=False):
        super().__init__(name="inc%d" % tid)
        self.unsafe = unsafe
        self.tid = str(tid)
        self.fo = Failover(host, ports, tid, "incrementer %d" % tid, stats)
        self.key = key
        self.n = n
        self.ok = 0           # increments known to have taken effect
        self.retries = 0      # WATCH conflicts (EXEC returned nil)
        self.unknown = 0      # EXECs whose outcome was unknown (resolved by reading)
        self.unknown_applied = 0
        self.errors = []

    def my_count(self):
        raw = self.fo.read(lambda c: c.get(self.key))
        return json.loads(raw)["by"].get(self.tid, 0)

    def attempt(self):
        """one WATCH/GET/MULTI/SET/EXEC round: True applied, False conflict"""
        def tx(c):
            if self.unsafe:        # --unsafe: no WATCH (shows that lost updates are caught)
                cur = json.loads(c.get(self.key))
                cur["n"] += 1
                cur["by"][self.tid] = cur["by"].get(self.tid, 0) + 1
                time.sleep(0.001)
                c.set(self.key, json.dumps(cur, sort_keys=True))
                return
            with c.pipeline() as pipe:
                pipe.watch(self.key)
                cur = json.loads(pipe.get(self.key))
                cur["n"] += 1
                cur["by"][self.tid] = cur["by"].get(self.tid, 0) + 1
                pipe.multi()
                pipe.set(self.key, json.dumps(cur, sort_keys=True))
                pipe.execute()
        try:
            tx(self.fo.current())
            return True
        except redis.WatchError as e:
            if "ConnectionError" not in str(e):
                self.retries += 1
                return False       # a clean conflict: EXEC answered nil
            err = e                # redis-py: the connection died while watching
        except CONN_ERRORS as e:
            err = e
        self.fo.rotate(err)
        if never_sent(err):
            return False           # nothing was sent: just try the next replica
        # did it take effect? only this thread changes by[tid]: read it once the
        # cluster has settled (a request in flight at a dead replica may still
        # be decided by the others)
        self.unknown += 1
        time.sleep(1.0)
        mine = self.my_count()
        if mine == self.ok + 1:
            self.unknown_applied += 1
            say("incrementer %s: the EXEC cut off by %s had taken effect (count %d)" % (self.tid, type(err).__name__, mine))
            return True
        if mine != self.ok:
            self.errors.append("own count %d after %d known increments" % (mine, self.ok))
        say("incrementer %s: the EXEC cut off by %s had not taken effect; retrying" % (self.tid, type(err).__name__))
        return False

    def run(self):
        try:
            while self.ok < self.n:
                if self.attempt():
                    self.ok += 1
        except Exception as e:  # noqa: BLE001 (reported by the main thread)
            self.errors.append("%s: %s" % (type(e).__name__, e))


class Writer(threading.Thread):
    """RPUSH seq to a list and SADD seq to a set, one at a time."""

    def __init__(self, host, ports, lkey, skey, stop, stats):
        super().__init__(name="writer")
        self.fo = Failover(host, ports, 0, "list/set writer", stats)
        self.lkey, self.skey = lkey, skey
        self.stop = stop
        self.acked_l, self.unknown_l, self.acked_s, self.unknown_s = [], [], [], []
        self.errors = []

    def run(self):
        seq = 0
        try:
            while not self.stop.is_set() and seq < 2000:
                seq += 1
                v = "%05d" % seq
                try:
                    self.fo.write(lambda c: c.rpush(self.lkey, v))
                    self.acked_l.append(v)
                except Unknown:
                    self.unknown_l.append(v)
                try:
                    self.fo.write(lambda c: c.sadd(self.skey, v))
                    self.acked_s.append(v)
                except Unknown:
                    self.unknown_s.append(v)
                time.sleep(0.005)
        except Exception as e:  # noqa: BLE001
            self.errors.append("%s: %s" % (type(e).__name__, e))


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is dead for us
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--ports", required=True, help="the three replicas' RESP ports, comma separated")
    ap.add_argument("--victim-pid", type=int, default=0, help="PID of the replica to kill -9 midway (0: no kill)")
    ap.add_argument("--victim", type=int, default=1, help="which replica (1..3) --victim-pid is")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--increments", type=int, default=60, help="per thread")
    ap.add_argument("--prefix", default="app:")
    ap.add_argument("--unsafe", action="store_true",
                    help="increment with GET and SET, without WATCH: must fail (tests the checks)")
    args = ap.parse_args()
    ports = [int(p) for p in args.ports.split(",")]
    if len(ports) != 3:
        ap.error("--ports: three ports expected")
    P = args.prefix
    host = args.host
    rs = [redis.Redis(host=host, port=p, socket_timeout=5, socket_connect_timeout=2, **TLS_KW) for p in ports]
    try:
        for r in rs:
            r.ping()
    except CONN_ERRORS as e:
        print("redis_app: cannot reach a replica: %s" % e)
        return 2
    say("redis-py %s; replicas on ports %s; victim: %s" % (redis.__version__, ports,
        "replica %d (pid %d)" % (args.victim, args.victim_pid) if args.victim_pid else "none (no kill)"))

    saved = step("1", lambda: types_phase(rs, P))
    step("2", lambda: pipeline_phase(rs, P))
    say("2b. scripts (EVAL, EVALSHA), redis-py's Lock")
    step("2b", lambda: scripts_phase(rs, P, host, ports))
    say("3. Pub/Sub")
    step("3", lambda: pubsub_check(host, ports[0], ports[1], P + "news", 50, "before the crash"))
    say("4. blocking pops")
    step("4", lambda: blpop_check(host, ports[2], ports[0], P + "queue", "before the crash"))
    step("4 (BZPOPMIN, BLMPOP)", lambda: zpop_check(host, ports[1], ports[2], P + "pq", "before the crash"))

    say("5. %d threads x %d WATCH/MULTI/EXEC increments, a list/set writer, kill -9 midway"
        % (args.threads, args.increments))
    ckey, lkey, skey = P + "counter", P + "log", P + "seen"
    rs[0].delete(lkey, skey)
    rs[0].set(ckey, json.dumps({"n": 0, "by": {}}))
    stats = {}
    stop = threading.Event()
    incs = [Incrementer(t, host, ports, ckey, args.increments, stats, args.unsafe) for t in range(args.threads)]
    writer = Writer(host, ports, lkey, skey, stop, stats)
    for t in incs + [writer]:
        t.start()
    total = args.threads * args.increments
    killed = False
    survivors = [i for i in range(3)]
    if args.victim_pid:
        wait_for(lambda: sum(t.ok for t in incs) >= total * 0.4 or not any(t.is_alive() for t in incs), 120)
        done = sum(t.ok for t in incs)
        v = args.victim - 1
        if not check("the victim replica %d (pid %d) runs before the kill" % (args.victim, args.victim_pid),
                     pid_alive(args.victim_pid)):
            return 1
        os.kill(args.victim_pid, signal.SIGKILL)
        killed = check("kill -9 replica %d (pid %d) after %d of %d increments"
                       % (args.victim, args.victim_pid, done, total),
                       wait_for(lambda: not pid_alive(args.victim_pid), 5))
        survivors = [i for i in range(3) if i != v]
        # a reader whose current replica is the dead one fails over
        fo = Failover(host, ports, v, "reader on the dead replica", stats)
        t = time.time()
        val = fo.read(lambda c: c.get(P + "s:n"))
        check("a read sent to the dead replica is retried on port %d (%.2f s)" % (fo.port(), time.time() - t),
              val is not None and val == (saved["n"] if saved else val) and fo.i != v, repr(val))
        t = time.time()
        try:
            fo2 = Failover(host, ports, v, "writer on the dead replica", stats)
            fo2.write(lambda c: c.set(P + "after-kill", "yes"))
            check("a write to the dead replica (refused connection: never sent) went to port %d" % fo2.port(),
                  rs[survivors[0]].get(P + "after-kill") == b"yes")
        except Unknown as e:
            check("a write to the dead replica is retried when nothing was sent", False, str(e))
    for t in incs:
        t.join(300)
    stop.set()
    writer.join(30)
    hung = [t.name for t in incs + [writer] if t.is_alive()]
    if not check("every thread finished", not hung, "still running: %s" % hung):
        return 1
    for t in incs:
        check("incrementer %s: %d increments, %d WATCH conflicts retried, %d cut off by the crash (%d had applied)"
              % (t.tid, t.ok, t.retries, t.unknown, t.unknown_applied), not t.errors and t.ok == args.increments,
              "; ".join(t.errors))
    check("writer: %d RPUSH acknowledged, %d unknown; %d SADD acknowledged, %d unknown"
          % (len(writer.acked_l), len(writer.unknown_l), len(writer.acked_s), len(writer.unknown_s)),
          not writer.errors and len(writer.acked_l) > 0, "; ".join(writer.errors))
    if killed:
        check("some client failed over (%d failovers)" % stats.get("failovers", 0), stats.get("failovers", 0) > 0)

    if killed:
        a, b = survivors
        say("   Pub/Sub and BLPOP across the survivors")
        step("5 (Pub/Sub)", lambda: pubsub_check(host, ports[a], ports[b], P + "news2", 30, "after the crash"))
        step("5 (BLPOP)", lambda: blpop_check(host, ports[b], ports[a], P + "queue2", "after the crash"))
        step("5 (WAIT)", lambda: wait_check([rs[a], rs[b]], P, "one replica killed", 1))
        step("5 (EVALSHA)", lambda: check(
            "a script loaded before the crash runs at both survivors",
            [rs[i].evalsha(rs[a].script_load("return ARGV[1] .. '!'"), 0, "x") for i in (a, b)] == [b"x!", b"x!"]))

    say("6. the final state at every survivor")
    names = ["replica %d (port %d)" % (i + 1, ports[i]) for i in survivors]
    srs = [rs[i] for i in survivors]
    want_n = sum(t.ok for t in incs)
    def final(r, name):
        cur = json.loads(r.get(ckey))
        by = cur["by"]
        check("%s: counter n = %d = increments that took effect" % (name, want_n), cur["n"] == want_n,
              "n = %r" % cur["n"])
        check("%s: n = sum of the per-thread counts; each thread's count = its successes" % name,
              cur["n"] == sum(by.values()) and all(by.get(t.tid, 0) == t.ok for t in incs), repr(by))
        lst = [x.decode() for x in r.lrange(lkey, 0, -1)]
        acked, unknown = set(writer.acked_l), set(writer.unknown_l)
        pos = {v: i for i, v in enumerate(lst)}
        check("%s: list: all %d acknowledged RPUSHes present, nothing else (%d of %d unknown present), no duplicates"
              % (name, len(acked), len(set(lst) & unknown), len(unknown)),
              acked <= set(lst) and set(lst) <= acked | unknown and len(lst) == len(set(lst)),
              "missing %s, extra %s, %d duplicates" % (sorted(acked - set(lst))[:5],
                                                       sorted(set(lst) - acked - unknown)[:5], len(lst) - len(set(lst))))
        order = [pos[v] for v in writer.acked_l if v in pos]
        check("%s: list: acknowledged elements in the order they were acknowledged" % name, order == sorted(order))
        members = {x.decode() for x in r.smembers(skey)}
        sacked, sunknown = set(writer.acked_s), set(writer.unknown_s)
        check("%s: set: all %d acknowledged SADDs present, nothing else" % (name, len(sacked)),
              sacked <= members and members <= sacked | sunknown,
              "missing %s, extra %s" % (sorted(sacked - members)[:5], sorted(members - sacked - sunknown)[:5]))
        check("%s: the string with a 100 s TTL is still there" % name, r.get(P + "s:setex") == b"long")
        check("%s: the key with EX 2 set at the start has expired" % name,
              wait_for(lambda: r.exists(P + "s:ex") == 0, max(0.0, T0 + 4 - time.time())))

    for r, name in zip(srs, names):
        step("6 at %s" % name, lambda: final(r, name))
    if saved is not None:
        step("6 (data of step 1)", lambda: types_intact(srs, P, saved, names))

    print("redis_app: %d checks, %d failed (%d increments, %d failovers, %.1f s)"
          % (CHECKS["ok"] + CHECKS["fail"], CHECKS["fail"], want_n, stats.get("failovers", 0), time.time() - T0))
    return 1 if CHECKS["fail"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        print("redis_app: stopped by %s: %s" % (type(e).__name__, e))
        sys.exit(1)
