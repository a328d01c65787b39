#!/usr/bin/env python3
"""difftest: differential tester of a Redis-compatible server (the system
under test, SUT) against a reference redis-server. Python 3 standard library
only: its own RESP2 encoder and parser over raw sockets.

    difftest.py --ref HOST:PORT --sut HOST:PORT [--sut HOST:PORT ...]
                [--seed S] [--ops N] [--duration S] [--clients K]
                [--flush-first] [--minimize | --no-minimize] [--keep-going M]
                [--only CMD,..] [--exclude CMD,..] [--fault NAME] [-v]

From a seed (random.Random(seed)) it generates a command sequence over a
small key space (so types collide and WRONGTYPE errors happen): strings,
keys, expiry, bitmaps, hashes, lists, sets, sorted sets, MULTI/EXEC/DISCARD,
WATCH/UNWATCH from two connections (a watched key changed by the other
connection must make EXEC return nil), SELECT over several databases, and
deliberate errors (wrong arity, wrong type, bad numbers, syntax errors,
unknown commands, mixed-case names). K logical clients each hold one
connection to the reference and one to the SUT; with several --sut
addresses client i uses address i mod n (round-robin), so a 3-replica
cluster is exercised through all its replicas. The sequence depends on the
seed only (never on the replies). Every command goes to both sides; the
replies are compared:

  * exact RESP bytes, except
  * unordered replies (SMEMBERS SINTER SUNION SDIFF HKEYS HVALS KEYS, HGETALL
    as a set of field/value pairs) are compared as multisets; SCAN is
    iterated to its end on each side (hidden SCANs with the returned cursor)
    and the key sets are compared (so cursor values may differ);
  * TTL +-1 s, PTTL +-1500 ms, EXPIRETIME +-1 s, PEXPIRETIME +-1500 ms
    (negative replies -1/-2 exact);
  * random commands (SRANDMEMBER HRANDFIELD ZRANDMEMBER RANDOMKEY) are checked for shape
    (type, length, distinct elements for a positive count) and membership
    (in the reference's SMEMBERS / HGETALL / KEYS *, read after the reply);
  * DBSIZE: Redis counts expired keys it has not reclaimed yet (SET with
    EXAT/PXAT in the past leaves one), so before a DBSIZE both sides are
    made to reclaim them (a SCAN through each database on connections of
    their own), and a SUT count between the logical count (KEYS *, which
    must agree) and the reference's raw count is accepted;
  * lexicographic ranges (ZLEXCOUNT, ZRANGE/ZRANGESTORE BYLEX) of a sorted
    set whose scores differ are unspecified in Redis (the answer depends on
    the encoding and even on the skiplist's random levels): such a command
    is skipped on both sides (the reference's ZRANGE WITHSCORES decides),
    and none is generated inside MULTI;
  * EXEC's array is compared element by element with the rules of the
    queued commands (a SCAN inside EXEC only for shape);
  * DOCUMENTED below lists deliberate differences (skipped and counted).

Expiry: keys get relative TTLs of 1-3 s in short bursts (and EXPIREAT/
PEXPIREAT/EXAT/PXAT a few seconds ahead); a few commands later an expiry
point waits until they have run out (total bounded by --max-sleep) and
makes both sides reclaim expired keys (a SCAN through each database on a
connection of its own); reads of those keys follow. Between a burst and its
expiry point the deadlines are seconds away, so which keys have expired
depends on the order of the commands, not on timing, and a replay behaves
the same. Other TTLs are long (never run out during a run), zero, negative
or in the past (deleted at once), or invalid. As a safety net no command is
sent from --expiry-margin before to after any deadline the tester has set.

On a disagreement it prints the seed, the command index, the command and
both replies and (unless --no-minimize) minimizes it: replays of subsets of
the sequence, each on fresh connections after FLUSHALL on both sides (the
failing command alone, without the read-only commands, without expiry, only
the commands on related keys, then delta debugging over the command list),
keeping a candidate when its first disagreement is again at a command of
the same name; the short reproducer is printed as redis-cli lines (with
[client N] prefixes when it needs several connections). --keep-going M
goes on after a disagreement (FLUSHALL both sides, fresh connections), up
to M of them; only the first is minimized. --only/--exclude narrow the
command set (e.g. while a SUT implements it). --fault corrupts the SUT's
replies to test the tester itself.

Exit status: 0 without disagreements (outside DOCUMENTED), 1 with, 2 when
the test could not run (reference unreachable, bad options). The last line
is the summary:
    difftest: N commands, D disagreements (K documented differences skipped)
"""

import argparse
import collections
import hashlib
import math
import random
import socket
import sys
import time

# ---------------------------------------------------------------------------
# Deliberate differences of the system under test, skipped and counted.
# name -> (predicate, reason); predicate(cmd, argv, ref, sut) gets the command
# name (upper-case bytes), the argv (list of bytes) and both parsed replies
# (see parse(): ('+', b'OK'), ('-', b'ERR ...'), (':', 3), ('$', b'v' or
# None), ('*', (node, ...) or None)) and returns True when the disagreement is
# this documented one. Example:
#   "scan-cursor": (lambda c, a, r, s: c == b"SCAN" and ...,
#                   "SCAN cursors are opaque; only the keys must agree"),
def _negzero(n):
    """the reply with every bulk -0 read as 0"""
    if n[0] == "$" and n[1] == b"-0":
        return ("$", b"0")
    if n[0] == "*" and n[1] is not None:
        return ("*", tuple(_negzero(x) for x in n[1]))
    return n


ZSET_SCORE_CMDS = {b"ZRANGE", b"ZREVRANGE", b"ZRANGEBYSCORE", b"ZSCORE", b"ZMSCORE", b"ZINCRBY",
                   b"ZPOPMIN", b"ZPOPMAX", b"ZADD", b"EXEC"}

def _sort_unordered(c, a, r, s):
    """SORT of a set BY a constant (its own order), or ALPHA BY a pattern
    (equal values in the order of a set's or sorted set's hash table)"""
    if c not in (b"SORT", b"SORT_RO") or r[0] != "*" or s[0] != "*" or r[1] is None or s[1] is None:
        return False
    up = [x.upper() for x in a]
    if b"STORE" in up:
        return False
    pats = [a[i + 1] for i in range(2, len(a) - 1) if up[i] == b"BY"]
    const = any(b"*" not in p.split(b"\0")[0] for p in pats)
    if not (const or (pats and b"ALPHA" in up)) or len(r[1]) != len(s[1]):
        return False
    return b"LIMIT" in up or sorted(r[1], key=repr) == sorted(s[1], key=repr)  # with LIMIT: another part


DOCUMENTED = {
    "sort-hash-order": (
        _sort_unordered,
        "SORT of a set BY a constant returns the set in its own order, and SORT ... BY a pattern ALPHA "
        "leaves elements with equal values in the order it read them, a set's or sorted set's hash-table "
        "order: the same on every replica, not redis-server's (kv/README.md); the elements must be the same"),
    "zset-negative-zero": (
        lambda c, a, r, s: c in ZSET_SCORE_CMDS and r != s and _negzero(r) == _negzero(s),
        "a sorted-set score of -0 (e.g. ZUNIONSTORE ... WEIGHTS -1 of a 0 score) is answered \"0\" by "
        "Redis while the set is listpack-encoded and \"-0\" once it is a skiplist: Redis itself gives "
        "both, so either is accepted"),
}

# ---------------------------------------------------------------------------
# RESP2


class Incomplete(Exception):
    pass


class ProtocolError(Exception):
    pass


def encode(argv):
    out = [b"*%d\r\n" % len(argv)]
    for a in argv:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def parse(buf, pos):
    """One reply from buf at pos: (node, next position); Incomplete if more
    bytes are needed."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete
    t = buf[pos:pos + 1]
    line = bytes(buf[pos + 1:end])
    nxt = end + 2
    try:
        if t == b"+":
            return ("+", line), nxt
        if t == b"-":
            return ("-", line), nxt
        if t == b":":
            return (":", int(line)), nxt
        if t == b"$":
            n = int(line)
            if n < 0:
                return ("$", None), nxt
            if len(buf) < nxt + n + 2:
                raise Incomplete
            if buf[nxt + n:nxt + n + 2] != b"\r\n":
                raise ProtocolError("bulk string not followed by CRLF")
            return ("$", bytes(buf[nxt:nxt + n])), nxt + n + 2
        if t == b"*":
            n = int(line)
            if n < 0:
                return ("*", None), nxt
            items = []
            for _ in range(n):
                it, nxt = parse(buf, nxt)
                items.append(it)
            return ("*", tuple(items)), nxt
    except ValueError:
        raise ProtocolError("bad number in %r" % bytes(buf[pos:end + 2]))
    raise ProtocolError("unexpected reply type byte %r" % t)


class Conn:
    """One connection; a failure turns into a reply node ('!', why)."""

    def __init__(self, addr, timeout):
        self.addr = addr
        self.timeout = timeout
        self.buf = bytearray()
        self.dead = None
        self.sock = None
        try:
            self.sock = socket.create_connection(addr, timeout=timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            self.dead = "cannot connect to %s:%d: %s" % (addr[0], addr[1], e)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def send(self, argv):
        if self.dead:
            return
        try:
            self.sock.sendall(encode(argv))
        except OSError as e:
            self.dead = "send failed: %s" % e

    def read(self):
        if self.dead:
            return ("!", self.dead.encode()), b""
        while True:
            if self.buf:
                try:
                    node, p = parse(self.buf, 0)
                    raw = bytes(self.buf[:p])
                    del self.buf[:p]
                    return node, raw
                except Incomplete:
                    pass
                except ProtocolError as e:
                    self.dead = "protocol error: %s (buffer %r)" % (e, bytes(self.buf[:80]))
                    return ("!", self.dead.encode()), b""
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                self.dead = "no reply within %.0f s" % self.timeout
                return ("!", self.dead.encode()), b""
            except OSError as e:
                self.dead = "receive failed: %s" % e
                return ("!", self.dead.encode()), b""
            if not data:
                self.dead = "connection closed by the server"
                return ("!", self.dead.encode()), b""
            self.buf += data

    def call(self, argv):
        self.send(argv)
        return self.read()[0]


def fmt(node, limit=600):
    """A reply the way redis-cli shows it, on one line."""
    t, v = node
    if t == "+":
        s = v.decode("latin-1")
    elif t == "-":
        s = "(error) " + v.decode("latin-1")
    elif t == ":":
        s = "(integer) %d" % v
    elif t == "!":
        s = "(no reply: %s)" % v.decode("latin-1")
    elif v is None:
        s = "(nil)"
    elif t == "$":
        s = cli_quote(v, always=True)
    elif not v:
        s = "(empty array)"
    else:
        s = "[" + ", ".join("%d) %s" % (i + 1, fmt(x, limit)) for i, x in enumerate(v)) + "]"
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


def cli_quote(a, always=False):
    """An argument as redis-cli reads it (sdssplitargs quoting)."""
    if a and not always and all(33 <= c < 127 and c not in b"\"'\\" for c in a):
        return a.decode()
    out = ['"']
    for c in a:
        if c == 34:
            out.append('\\"')
        elif c == 92:
            out.append("\\\\")
        elif c == 10:
            out.append("\\n")
        elif c == 13:
            out.append("\\r")
        elif c == 9:
            out.append("\\t")
        elif 32 <= c < 127:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    out.append('"')
    return "".join(out)


def cli_line(argv):
    return " ".join(cli_quote(a) for a in argv)


# ---------------------------------------------------------------------------
# the generator

STR_KEYS = [b"s1", b"s2", b"s3"]
HASH_KEYS = [b"h1", b"h2"]
LIST_KEYS = [b"l1", b"l2"]
SET_KEYS = [b"t1", b"t4", b"t3"]
ZSET_KEYS = [b"z1", b"z2", b"z3"]
SHARED_KEYS = [b"x"]
HLL_KEYS = [b"pf1", b"pf2", b"pf3"]
GEO_KEYS = [b"g1", b"g2"]
ALL_KEYS = STR_KEYS + HASH_KEYS + LIST_KEYS + SET_KEYS + ZSET_KEYS + SHARED_KEYS + HLL_KEYS + GEO_KEYS + [b"nokey"]
KEYSET = set(ALL_KEYS)
# No two of these names share one of the store's 256 deleted-key slots of a
# database (kv/README.md "Transactions and WATCH"): an absent watched key
# reads as changed when a key of its slot is deleted, on purpose, where Redis
# would run the EXEC (t2 and z1 did: seed 23 found it). gone_slots_distinct()
# checks it at start where libxxhash can be loaded.
KV_HASH_SEED = 0x5ab1a7e5c0ffee01  # kv/dict.c
KV_GONE_SLOTS = 256  # kv/internal.h


def gone_slots_distinct():
    """None when the names' slots are distinct (or libxxhash is not there to
    tell), else a message naming two names that share one."""
    import ctypes
    try:
        lib = ctypes.CDLL("libxxhash.so.0")
    except OSError:
        return None
    f = lib.XXH3_64bits_withSeed
    f.restype = ctypes.c_uint64
    f.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
    seen = {}
    for k in ALL_KEYS:
        slot = f(k, len(k), KV_HASH_SEED) % KV_GONE_SLOTS
        if slot in seen:
            return "keys %r and %r share deleted-key slot %d: WATCH of one aborts when the other is deleted" % (
                seen[slot], k, slot)
        seen[slot] = k
    return None
FAMILY_KEYS = {"str": STR_KEYS, "hash": HASH_KEYS, "list": LIST_KEYS, "set": SET_KEYS,
               "zset": ZSET_KEYS, "hll": HLL_KEYS, "geo": GEO_KEYS, "any": ALL_KEYS}

VALS = [b"a", b"b", b"c", b"foo", b"bar", b"", b"0", b"1", b"-1", b"7", b"10", b"42", b"100",
        b"3.5", b"-0.5", b"1e3", b"9223372036854775807", b"-9223372036854775808",
        b"hello world", b"x" * 40, b"\x00\xff\r\nz", b"+5", b"007", b" 1", b"abc"]
ELEMS = [b"a", b"b", b"c", b"d", b"1", b"2", b"10"]
FIELDS = [b"f1", b"f2", b"f3", b"n"]
ZMEMS = [b"a", b"b", b"c", b"d", b"e"]
SCORES = [b"1", b"2", b"2.5", b"-1", b"0", b"10", b"3", b"1e2", b"+inf", b"-inf", b"0.1", b"3"]
BAD_SCORES = [b"nan", b"abc", b"", b"1x"]
SCORE_BOUNDS = [b"-inf", b"+inf", b"0", b"1", b"(1", b"2", b"(2.5", b"3", b"10", b"(10", b"-1"]
LEX_BOUNDS = [b"-", b"+", b"[a", b"(a", b"[b", b"(c", b"[d", b"[e", b"(z"]
INCR_BY = [b"1", b"-1", b"5", b"100", b"-3", b"0", b"9223372036854775807", b"-9223372036854775808"]
FLOAT_BY = [b"1.5", b"-0.25", b"10", b"0.1", b"1e2", b"-3", b"2.0e-1", b"5.0", b"3"]
BAD_INT = [b"abc", b"1.5", b"", b"99999999999999999999", b"1 "]
PATTERNS = [b"*", b"s*", b"h?", b"?1", b"[st]*", b"x", b"nokey", b"*1*", b"\\*", b"[^s]*", b"z[1-2]"]
TYPES = [b"string", b"hash", b"list", b"set", b"zset"]

# HyperLogLog strings (kv/t_hll.c) for SET: empty sparse, a fresh cached count,
# VALs, too few and too many registers, a bad encoding, a dense header of the
# wrong length, every dense register at 51 (an infinite estimate). Not an
# XZERO cut in half at the end: Redis reads past the string there
# (kv/README.md "Differences").
_HLL_SPARSE = b"HYLL\x01\0\0\0"
_HLL_STALE = b"\0" * 7 + b"\x80"
HLL_BLOBS = [_HLL_SPARSE + b"\0" * 8 + b"\x7f\xff", _HLL_SPARSE + b"\x05" + b"\0" * 7 + b"\x7f\xff",
             _HLL_SPARSE + _HLL_STALE + b"\x88\x7f\xfa\x8b", _HLL_SPARSE + _HLL_STALE + b"\x7f\xfe",
             _HLL_SPARSE + _HLL_STALE + b"\x7f\xff\x80", b"HYLL\x02\0\0\0" + _HLL_STALE + b"\x7f\xff",
             b"HYLL\0\0\0\0" + _HLL_STALE + b"\x7f\xff",
             b"HYLL\0\0\0\0" + _HLL_STALE + bytes([0b11110011, 0b00111100, 0b11001111]) * 4096]

# Geo positions (kv/t_geo.c): points within a few hundred km of each other
# (so that searches find several, and COUNT below the matches takes Redis's
# partial sort), repeated ones (equal distances: the sorts' order of ties),
# the valid range's corners and edges, and some outside it (errors).
GEO_POINTS = [(b"13.361389", b"38.115556"), (b"15.087269", b"37.502669"), (b"13.5", b"37.9"),
              (b"14.25", b"37.5"), (b"14.25", b"37.5"), (b"15", b"37"), (b"12.7", b"38.0"), (b"14.0", b"38.8"),
              (b"13.9", b"36.7"), (b"15.6", b"38.2"), (b"14.9999", b"37.0001"), (b"16.5", b"39.3"),
              (b"0", b"0"), (b"180", b"85.05112878"), (b"-180", b"-85.05112878"), (b"179.9999", b"-85"),
              (b"-0.0001", b"0.0001"), (b"14.25", b"37.5")]
GEO_BAD = [(b"181", b"10"), (b"10", b"86"), (b"abc", b"1"), (b"1", b""), (b"inf", b"0"), (b"-180.0001", b"0")]
GEO_MEMS = [b"Palermo", b"Catania", b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h", b"i", b"j"]
GEO_MANY = [b"m%d" % i for i in range(60)]  # a bulk GEOADD's: sets past 40 matches (the partial sort's ninther)
GEO_UNITS = [b"m", b"km", b"ft", b"mi", b"KM", b"Mi"]
GEO_RADII = [b"0", b"1", b"50", b"100", b"200", b"1000", b"20000", b"0.5", b"30000", b"6000"]

# commands whose replies may come in any order
UNORDERED = {b"SMEMBERS", b"SINTER", b"SUNION", b"SDIFF", b"HKEYS", b"HVALS", b"KEYS"}
PAIRS = {b"HGETALL"}
TOLERANCE = {b"TTL": 1, b"PTTL": 1500, b"EXPIRETIME": 1, b"PEXPIRETIME": 1500}
RANDOM_CMDS = {b"SRANDMEMBER", b"HRANDFIELD", b"ZRANDMEMBER", b"RANDOMKEY"}
CONTROL = {b"SELECT", b"MULTI", b"EXEC", b"DISCARD", b"WATCH", b"UNWATCH"}
# commands that change nothing (the minimizer drops them all at once first)
READ_ONLY = {b"GET", b"MGET", b"STRLEN", b"GETRANGE", b"SUBSTR", b"GETBIT", b"BITCOUNT", b"BITPOS", b"EXISTS", b"TYPE", b"KEYS", b"SCAN", b"DBSIZE",
             b"TTL", b"PTTL", b"EXPIRETIME", b"PEXPIRETIME", b"HGET", b"HMGET", b"HLEN", b"HEXISTS", b"HKEYS",
             b"HVALS", b"HGETALL", b"HSTRLEN", b"HRANDFIELD", b"ZRANDMEMBER", b"LLEN", b"LRANGE", b"LINDEX", b"LPOS",
             b"SISMEMBER", b"SMISMEMBER", b"SMEMBERS", b"SCARD", b"SINTER", b"SUNION", b"SDIFF", b"SINTERCARD",
             b"SRANDMEMBER", b"ZSCORE", b"ZMSCORE", b"ZCARD", b"ZCOUNT", b"ZLEXCOUNT", b"ZRANGE", b"ZREVRANGE",
             b"ZRANGEBYSCORE", b"ZUNION", b"ZINTER", b"ZDIFF", b"ZINTERCARD", b"ZRANK", b"ZREVRANK", b"RANDOMKEY", b"PING", b"ECHO", b"TOUCH",
             b"GEODIST", b"GEOHASH", b"GEOPOS", b"GEORADIUS_RO", b"GEORADIUSBYMEMBER_RO", b"GEOSEARCH", b"SORT_RO"}
# commands that give keys a TTL or take it away (dropped together by the minimizer)
BURST_EXPIRY = {b"SETEX", b"PSETEX", b"GETEX", b"EXPIRE", b"PEXPIRE", b"EXPIREAT", b"PEXPIREAT", b"PERSIST"}
GLOBAL = {b"KEYS", b"SCAN", b"DBSIZE", b"RANDOMKEY", b"FLUSHALL", b"FLUSHDB"}
BURST_CMDS = {"SET", "SETEX", "PSETEX", "GETEX", "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"}
WRITE_CMDS = ["SET", "DEL", "INCR", "APPEND", "HSET", "HDEL", "LPUSH", "RPOP", "SADD", "SREM",
              "ZADD", "ZREM", "EXPIRE", "PERSIST", "RENAME", "SETRANGE", "GETDEL", "MSET",
              "HINCRBY", "LSET", "SMOVE", "ZINCRBY", "COPY", "UNLINK", "SETBIT", "BITOP", "ZDIFFSTORE",
              "PFADD", "PFMERGE", "BITFIELD", "GEOADD", "GEOSEARCHSTORE", "SORT"]


# Scripts for EVAL / EVALSHA / SCRIPT LOAD: (body, keys family, number of
# keys, kind of ARGV). Nothing whose reply depends on randomness or on
# addresses (math.random, SPOP, tostring of a table, pairs order): those are
# the replicas' own (kv/README.md "Scripts").
SCRIPTS = [
    (b"return redis.call('GET', KEYS[1])", "any", 1, "v"),
    (b"return redis.call('INCR', KEYS[1])", "str", 1, "v"),
    (b"return redis.call('SET', KEYS[1], ARGV[1])", "str", 1, "v"),
    (b"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
     "str", 1, "v"),
    (b"return redis.pcall('HSET', KEYS[1], 'f', ARGV[1])", "hash", 1, "v"),
    (b"local n = redis.call('LLEN', KEYS[1]) redis.call('RPUSH', KEYS[1], ARGV[1]) return n", "list", 1, "v"),
    (b"return redis.call('ZADD', KEYS[1], ARGV[1], 'm')", "zset", 1, "n"),
    (b"return {redis.call('EXISTS', KEYS[1]), redis.call('TYPE', KEYS[1])['ok']}", "any", 1, "v"),
    (b"local t = redis.call('LRANGE', KEYS[1], 0, -1) return #t", "list", 1, "v"),
    (b"return redis.call('SET', KEYS[1], ARGV[1], 'EX', 1000)", "str", 1, "v"),
    (b"return tonumber(ARGV[1]) + 1", "any", 0, "n"),
    (b"return {err='custom ' .. ARGV[1]}", "any", 0, "v"),
    (b"return redis.status_reply(ARGV[1])", "any", 0, "v"),
    (b"return redis.error_reply(ARGV[1])", "any", 0, "v"),
    (b"error('boom ' .. ARGV[1])", "any", 0, "v"),
    (b"return redis.call('nosuch')", "any", 0, "v"),
    (b"return (", "any", 0, "v"),
    (b"#!lua flags=no-writes\nreturn redis.call('GET', KEYS[1])", "str", 1, "v"),
    (b"#!lua flags=no-writes\nreturn redis.call('SET', KEYS[1], 'x')", "str", 1, "v"),
    (b"return redis.call('MGET', unpack(KEYS))", "str", 2, "v"),
    (b"return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')", "zset", 1, "v"),
    (b"return redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])", "str", 1, "n"),
    (b"return cjson.encode({redis.call('STRLEN', KEYS[1])})", "str", 1, "v"),
    (b"local r = redis.pcall('INCR', KEYS[1]) if type(r) == 'table' then return r.err end return r", "any", 1, "v"),
    (b"return string.format('%s:%d', ARGV[1], #KEYS)", "any", 1, "v"),
    (b"redis.call('SADD', KEYS[1], ARGV[1]) return redis.call('SISMEMBER', KEYS[1], ARGV[1])", "set", 1, "v"),
    (b"return {redis.call('HINCRBY', KEYS[1], 'n', 2), redis.call('HGET', KEYS[1], 'n')}", "hash", 1, "v"),
    (b"local v = redis.call('GET', KEYS[1]) if not v then return false end return string.upper(v)", "str", 1, "v"),
    (b"x = 1", "any", 0, "v"),
    (b"return undefined_thing", "any", 0, "v"),
    (b"redis.call('DEL', KEYS[1]) return redis.call('LPUSH', KEYS[1], ARGV[1], ARGV[1])", "list", 1, "v"),
    (b"return {1, 2.5, 'x', false, {ok='fine'}, nil, 7}", "any", 0, "v"),
    (b"return {redis.pcall('MULTI'), redis.pcall('EVAL'), redis.pcall('BLPOP', KEYS[1], 0)}", "list", 1, "v"),
    (b"local ok, e = pcall(redis.call, 'WATCH', KEYS[1]) return e", "any", 1, "v"),
    (b"return redis.call('SELECT', ARGV[1])", "any", 0, "n"),
]


class Op:
    """One step: a command of one logical client, or (sleep > 0) an expiry
    point: wait until every short TTL set so far has run out (sleep is the
    generator's estimate, in seconds). argv items are bytes, or
    ('abs_s'|'abs_ms', delta): a unix time resolved when sent."""
    __slots__ = ("client", "argv", "sleep")

    def __init__(self, client, argv=None, sleep=0.0):
        self.client = client
        self.argv = argv
        self.sleep = sleep

    def name(self):
        return self.argv[0].upper() if self.argv else b""

    def keys(self):
        if not self.argv:
            return set()
        return {a for a in self.argv[1:] if isinstance(a, bytes) and a in KEYSET}


def resolve(argv, now):
    out = []
    for a in argv:
        if isinstance(a, tuple):
            kind, d = a
            a = b"%d" % (int(now) + d if kind == "abs_s" else int(now * 1000) + d)
        out.append(a)
    return out


class Gen:
    def __init__(self, seed, nclients, sleep_budget, exclude):
        self.rng = random.Random(seed)
        self.n = nclients
        self.exclude = exclude
        self.db = [0] * nclients
        self.pending = collections.deque()
        self.sleep_left = sleep_budget
        self.sleep_at = None
        self.sleep_len = 0.0
        self.count = 0
        self.forced = None
        self.burst = False
        self.burst_ms = 1000
        self.burst_keys = []
        self.in_multi = False
        table = []
        for name in dir(self):
            if name.startswith("c_"):
                cmd = name[2:].upper()
                if cmd in exclude:
                    continue
                table.append((getattr(self, name).__func__.weight, cmd, getattr(self, name)))
        table.sort(key=lambda t: t[1])
        self.table = table
        self.by_name = {cmd: fn for _, cmd, fn in table}
        self.weights = [w for w, _, _ in table]
        self.write_cmds = [c for c in WRITE_CMDS if c in self.by_name]

    def reset_clients(self):
        self.db = [0] * self.n
        self.pending.clear()
        self.in_multi = False

    # --- argument helpers
    def k(self, fam="any"):
        if self.forced is not None:
            key, self.forced = self.forced, None
            return key
        r = self.rng.random()
        if r < 0.9:
            return self.rng.choice(FAMILY_KEYS[fam])
        if r < 0.95:
            return b"x"
        return self.rng.choice(ALL_KEYS)

    def ks(self, fam, lo, hi):
        return [self.k(fam) for _ in range(self.rng.randint(lo, hi))]

    def v(self):
        return self.rng.choice(VALS)

    def i(self, lo=-4, hi=6):
        r = self.rng.random()
        if r < 0.03:
            return self.rng.choice(BAD_INT)
        if r < 0.06:
            return self.rng.choice([b"100", b"-100", b"9223372036854775807"])
        return b"%d" % self.rng.randint(lo, hi)

    def cnt(self):
        r = self.rng.random()
        if r < 0.04:
            return self.rng.choice([b"-1", b"abc"])
        return b"%d" % self.rng.randint(0, 4)

    def ttl(self, kind):
        """A TTL argument: short (1-3 s) within a burst, else one that will
        not expire during the run (long, past, zero, negative, invalid)."""
        r = self.rng
        if self.burst:
            ms = self.burst_ms
            return {"s": b"%d" % (ms // 1000), "ms": b"%d" % ms,
                    "abs_s": ("abs_s", ms // 1000 + 1), "abs_ms": ("abs_ms", ms)}[kind]
        x = r.random()
        if kind == "s":
            if x < 0.7:
                return r.choice([b"100000", b"1000", b"5000", b"86400"])
            if x < 0.85:
                return r.choice([b"0", b"-1", b"-100"])
            return r.choice(BAD_INT + [b"9223372036854775807"])
        if kind == "ms":
            if x < 0.7:
                return r.choice([b"10000000", b"5000000", b"86400000"])
            if x < 0.85:
                return r.choice([b"0", b"-1", b"-5000"])
            return r.choice(BAD_INT + [b"9223372036854775807"])
        if kind == "abs_s":
            if x < 0.4:
                return ("abs_s", -r.randint(1, 100))
            if x < 0.8:
                return ("abs_s", r.choice([100000, 1000000]))
            return r.choice([b"1", b"0", b"abc"])
        if x < 0.4:
            return ("abs_ms", -r.randint(1000, 100000))
        if x < 0.8:
            return ("abs_ms", r.choice([100000000, 1000000000]))
        return r.choice([b"1000", b"1", b"abc"])

    def expire_flags(self):
        r = self.rng.random()
        if r < 0.6:
            return []
        if r < 0.95:
            return [self.rng.choice([b"NX", b"XX", b"GT", b"LT"])]
        return self.rng.sample([b"NX", b"XX", b"GT", b"LT"], 2)

    # --- strings
    def c_get(s):
        # an HyperLogLog's string now and then: its bytes must be Redis's
        return [b"GET", s.k("hll" if s.rng.random() < 0.15 else "str")]
    c_get.weight = 8

    def c_set(s):
        r = s.rng
        groups = []
        if r.random() < 0.4:
            opt = r.choice(["EX", "PX", "EXAT", "PXAT", "KEEPTTL", "bad", "both"])
            if opt == "EX":
                groups.append([b"EX", s.ttl("s")])
            elif opt == "PX":
                groups.append([b"PX", s.ttl("ms")])
            elif opt == "EXAT":
                groups.append([b"EXAT", s.ttl("abs_s")])
            elif opt == "PXAT":
                groups.append([b"PXAT", s.ttl("abs_ms")])
            elif opt == "KEEPTTL":
                groups.append([b"KEEPTTL"])
            elif opt == "bad":
                groups.append([b"EX", r.choice(BAD_INT + [b"0", b"-1"])])
            else:
                groups += [[b"EX", b"100000"], [r.choice([b"PX", b"KEEPTTL"])]]
        if r.random() < 0.3:
            groups.append([r.choice([b"NX", b"XX"])])
        if r.random() < 0.04:
            groups += [[b"NX"], [b"XX"]]
        if r.random() < 0.2:
            groups.append([b"GET"])
        if r.random() < 0.02:
            groups.append([b"EX"])
        r.shuffle(groups)
        return [b"SET", s.k("str"), s.v()] + [a for g in groups for a in g]
    c_set.weight = 10

    def c_setnx(s):
        return [b"SETNX", s.k("str"), s.v()]
    c_setnx.weight = 2

    def c_setex(s):
        return [b"SETEX", s.k("str"), s.ttl("s"), s.v()]
    c_setex.weight = 2

    def c_psetex(s):
        return [b"PSETEX", s.k("str"), s.ttl("ms"), s.v()]
    c_psetex.weight = 1

    def c_getset(s):
        return [b"GETSET", s.k("str"), s.v()]
    c_getset.weight = 2

    def c_getdel(s):
        return [b"GETDEL", s.k("str")]
    c_getdel.weight = 2

    def c_getex(s):
        r = s.rng
        a = [b"GETEX", s.k("str")]
        x = r.random()
        if x < 0.2:
            a += [b"EX", s.ttl("s")]
        elif x < 0.35:
            a += [b"PX", s.ttl("ms")]
        elif x < 0.45:
            a += [b"EXAT", s.ttl("abs_s")]
        elif x < 0.55:
            a += [b"PXAT", s.ttl("abs_ms")]
        elif x < 0.7:
            a.append(b"PERSIST")
        elif x < 0.75:
            a += [b"EX", b"100000", b"PERSIST"]
        return a
    c_getex.weight = 3

    def c_mget(s):
        return [b"MGET"] + s.ks("str", 1, 4)
    c_mget.weight = 3

    def c_mset(s):
        a = [b"MSET"]
        for _ in range(s.rng.randint(1, 3)):
            a += [s.k("str"), s.v()]
        return a
    c_mset.weight = 3

    def c_msetnx(s):
        a = [b"MSETNX"]
        for _ in range(s.rng.randint(1, 3)):
            a += [s.k("str"), s.v()]
        return a
    c_msetnx.weight = 2

    def c_append(s):
        return [b"APPEND", s.k("str"), s.v()]
    c_append.weight = 3

    def c_strlen(s):
        return [b"STRLEN", s.k("str")]
    c_strlen.weight = 2

    def c_getrange(s):
        return [b"GETRANGE", s.k("str"), s.i(-6, 8), s.i(-6, 12)]
    c_getrange.weight = 2

    def c_substr(s):
        return [b"SUBSTR", s.k("str"), s.i(-6, 8), s.i(-6, 12)]
    c_substr.weight = 1

    def c_setrange(s):
        r = s.rng.random()
        off = s.i(0, 12) if r < 0.9 else s.rng.choice([b"-1", b"536870912"])
        v = s.v() if off != b"536870912" else b"zz"
        return [b"SETRANGE", s.k("str"), off, v]
    c_setrange.weight = 2

    # bitmaps: offsets around the values' few bytes, now and then out of
    # range or not numbers; ranges in bytes or bits, negative ones too
    def bit_off(s):
        r = s.rng.random()
        if r < 0.9:
            return s.i(0, 90)
        return s.rng.choice([b"-1", b"4294967296", b"x", b"1.5", b"4294967295"])

    def c_setbit(s):
        off = s.bit_off()
        if off == b"4294967295":
            off = b"5"  # not a 512 MiB string on every side (GETBIT reads there)
        return [b"SETBIT", s.k("str"), off, s.rng.choice([b"0", b"1", b"1", b"0", b"2", b"-1", b"x"])]
    c_setbit.weight = 3

    def c_getbit(s):
        return [b"GETBIT", s.k("str"), s.bit_off()]
    c_getbit.weight = 2

    def bit_unit(s):
        return [s.rng.choice([b"BIT", b"BYTE", b"bit", b"byte", b"bits"])]

    def c_bitcount(s):
        a = [b"BITCOUNT", s.k("str")]
        r = s.rng.random()
        if r < 0.3:
            return a
        a += [s.i(-12, 12), s.i(-12, 40)]
        if r < 0.6:
            a += s.bit_unit()
        elif r > 0.95:
            a = a[:3]  # a start without an end: a syntax error
        return a
    c_bitcount.weight = 2

    def c_bitpos(s):
        a = [b"BITPOS", s.k("str"), s.rng.choice([b"0", b"1", b"1", b"0", b"2", b"x"])]
        r = s.rng.random()
        if r < 0.25:
            return a
        a.append(s.i(-12, 12))
        if r < 0.45:
            return a
        a.append(s.i(-12, 40))
        if r < 0.8:
            a += s.bit_unit()
        return a
    c_bitpos.weight = 3

    def c_bitop(s):
        op = s.rng.choice([b"AND", b"OR", b"XOR", b"NOT", b"not", b"or", b"nand"])
        n = 1 if op.upper() == b"NOT" and s.rng.random() < 0.9 else s.rng.randint(1, 3)
        return [b"BITOP", op, s.k("str")] + s.ks("str", n, n)
    c_bitop.weight = 2

    # --- HyperLogLog (feature level 4): the strings are compared by GET
    def pf_elems(s):
        r = s.rng.random()
        n = s.rng.randint(0, 6) if r < 0.9 else s.rng.randint(200, 1500)
        return [b"e%d" % s.rng.randrange(4000) for _ in range(n)]

    def c_pfadd(s):
        if s.rng.random() < 0.05:  # a crafted HLL string, valid or not
            return [b"SET", s.k("hll"), s.rng.choice(HLL_BLOBS)]
        return [b"PFADD", s.k("hll")] + s.pf_elems()
    c_pfadd.weight = 4

    def c_pfcount(s):
        return [b"PFCOUNT"] + s.ks("hll", 1, 3)
    c_pfcount.weight = 2

    def c_pfmerge(s):
        return [b"PFMERGE", s.k("hll")] + s.ks("hll", 0, 3)
    c_pfmerge.weight = 2

    # --- SORT / SORT_RO (feature level 5): lists, sets and sorted sets, by
    # their values or by strings (s1..s3) and hash fields (h1, h2) named by
    # patterns from their elements (ELEMS: 1, 2, a, ...)
    def sort_args(s, ro):
        r = s.rng
        opts = []
        by = r.choice([b"nosort", b"s*", b"h*->f1", b"h*->n", b"*", b"x*", b"nokey_*", b"#", b"h*->", b"s*->f1"]) \
            if r.random() < 0.5 else None
        alpha = r.random() < 0.4
        if s.in_multi and by is not None and (alpha or b"*" not in by):
            by = None  # inside MULTI the EXEC reply is compared whole: no order that is documented to differ
        if by is not None:
            opts.append([b"BY", by])
        # a set BY a constant comes back in its own order, not Redis's (DOCUMENTED): mostly lists and sorted sets
        fams = ["list", "zset", "any"] if by is not None and b"*" not in by else ["list", "set", "zset", "any"]
        key = s.k(r.choice(fams))
        a = [b"SORT_RO" if ro else b"SORT", key]
        for _ in range(r.choice([0, 0, 1, 1, 2])):
            opts.append([b"GET", r.choice([b"#", b"s*", b"h*->f1", b"h*->n", b"t*", b"nostar", b"l*"])])
        if alpha:
            opts.append([b"ALPHA"])
        if r.random() < 0.3:
            opts.append([r.choice([b"ASC", b"DESC"])])
        if r.random() < 0.3:
            opts.append([b"LIMIT", r.choice([b"0", b"1", b"2", b"-1", b"5"]), r.choice([b"1", b"2", b"3", b"0", b"-1", b"10"])])
        # STORE, but not of an ALPHA BY a pattern: equal values would be stored in an order of their own
        if not ro and r.random() < 0.2 and not (alpha and by is not None and b"*" in by):
            opts.append([b"STORE", r.choice([s.k("list"), s.k("any")])])
        if r.random() < 0.02:
            opts.append([r.choice([b"FOO", b"LIMIT", b"BY", b"STORE"])])
        r.shuffle(opts)
        return a + [t for o in opts for t in o]

    def c_sort(s):
        return s.sort_args(False)
    c_sort.weight = 3

    def c_sort_ro(s):
        return s.sort_args(True)
    c_sort_ro.weight = 1

    # --- geo (feature level 5): members of sorted sets, mostly g1 / g2
    def geo_key(s):
        r = s.rng.random()
        return b"g1" if r < 0.5 else s.k("geo") if r < 0.9 else s.k("zset")

    def geo_point(s):
        r = s.rng.random()
        if r < 0.25:  # anywhere in the points' area, 4 decimals (x.xxxx and y.yyyy repeat now and then)
            return [b"%.4f" % s.rng.uniform(12.5, 16.5), b"%.4f" % s.rng.uniform(36.5, 39.5)]
        return list(s.rng.choice(GEO_POINTS if r < 0.97 else GEO_BAD))

    def geo_unit(s):
        return s.rng.choice(GEO_UNITS) if s.rng.random() < 0.97 else b"parsec"

    def geo_radius(s):
        return s.rng.choice(GEO_RADII) if s.rng.random() < 0.97 else s.rng.choice([b"-1", b"abc"])

    def geo_mem(s):
        return s.rng.choice(GEO_MEMS) if s.rng.random() < 0.93 else b"nomember"

    def geo_opts(s, store_ok, search):
        """WITHDIST / WITHHASH / WITHCOORD, ASC / DESC, COUNT [ANY], STORE."""
        r = s.rng
        a = []
        for w in (b"WITHDIST", b"WITHHASH", b"WITHCOORD"):
            if r.random() < 0.35:
                a.append(w)
        if r.random() < 0.5:
            a.append(r.choice([b"ASC", b"DESC"]))
        if r.random() < 0.5:
            a += [b"COUNT", r.choice([b"1", b"2", b"3", b"5", b"20"]) if r.random() < 0.95 else r.choice([b"0", b"-1", b"x"])]
            if r.random() < 0.3:
                a.append(b"ANY")
        elif r.random() < 0.03:
            a.append(b"ANY")
        if store_ok and r.random() < 0.25:
            a = [x for x in a if not x.startswith(b"WITH")] if r.random() < 0.9 else a
            a += [r.choice([b"STORE", b"STOREDIST"]), b"g2" if r.random() < 0.8 else s.k("geo")]
        r.shuffle(a) if r.random() < 0.05 else None
        return a

    def c_geoadd(s):
        r = s.rng
        a = [b"GEOADD", b"g1" if r.random() < 0.5 else s.geo_key()]
        if r.random() < 0.2:
            a.append(r.choice([b"NX", b"XX"]))
        if r.random() < 0.2:
            a.append(b"CH")
        if r.random() < 0.02:
            a.append(r.choice([b"GT", b"NX"]))
        if r.random() < 0.1:  # many members, half the time on two or three places (ties for the sorts)
            places = [s.geo_point() for _ in range(r.randint(2, 3))] if r.random() < 0.5 else None
            for m in r.sample(GEO_MANY, r.randint(20, 50)):
                a += (list(r.choice(places)) if places else s.geo_point()) + [m]
        else:
            for _ in range(r.randint(1, 4)):
                a += s.geo_point() + [s.geo_mem()]
        if r.random() < 0.02:
            a.pop()
        return a
    c_geoadd.weight = 4

    def c_geodist(s):
        a = [b"GEODIST", s.geo_key(), s.geo_mem(), s.geo_mem()]
        if s.rng.random() < 0.6:
            a.append(s.geo_unit())
        return a
    c_geodist.weight = 2

    def c_geohash(s):
        return [b"GEOHASH", s.geo_key()] + [s.geo_mem() for _ in range(s.rng.randint(0, 3))]
    c_geohash.weight = 1

    def c_geopos(s):
        return [b"GEOPOS", s.geo_key()] + [s.geo_mem() for _ in range(s.rng.randint(0, 3))]
    c_geopos.weight = 2

    def c_georadius(s):
        r = s.rng
        name = r.choice([b"GEORADIUS", b"GEORADIUS_RO"])
        return [name, s.geo_key()] + s.geo_point() + [s.geo_radius(), s.geo_unit()] + \
            s.geo_opts(name == b"GEORADIUS" or r.random() < 0.05, False)
    c_georadius.weight = 2

    def c_georadiusbymember(s):
        r = s.rng
        name = r.choice([b"GEORADIUSBYMEMBER", b"GEORADIUSBYMEMBER_RO"])
        return [name, s.geo_key(), s.geo_mem(), s.geo_radius(), s.geo_unit()] + \
            s.geo_opts(name == b"GEORADIUSBYMEMBER" or r.random() < 0.05, False)
    c_georadiusbymember.weight = 2

    def geo_search_args(s):
        r = s.rng
        frm = [b"FROMMEMBER", s.geo_mem()] if r.random() < 0.5 else [b"FROMLONLAT"] + s.geo_point()
        if r.random() < 0.5:
            by = [b"BYRADIUS", s.geo_radius(), s.geo_unit()]
        else:
            by = [b"BYBOX", s.geo_radius(), s.geo_radius(), s.geo_unit()]
        parts = [frm, by]
        x = r.random()
        if x < 0.03:
            parts.pop(r.randint(0, 1))
        elif x < 0.05:
            parts.append([b"FROMLONLAT"] + s.geo_point())
        r.shuffle(parts)
        return [t for p in parts for t in p]

    def c_geosearch(s):
        opts = s.geo_opts(False, True)
        return [b"GEOSEARCH", s.geo_key()] + s.geo_search_args() + opts
    c_geosearch.weight = 3

    def c_geosearchstore(s):
        opts = [x for x in s.geo_opts(False, True) if not x.startswith(b"WITH") or s.rng.random() < 0.1]
        if s.rng.random() < 0.4:
            opts.append(b"STOREDIST")
        return [b"GEOSEARCHSTORE", b"g2" if s.rng.random() < 0.8 else s.k("geo"), s.geo_key()] + \
            s.geo_search_args() + opts
    c_geosearchstore.weight = 2

    # LCS (feature level 4)
    def c_lcs(s):
        a = [b"LCS", s.k("str"), s.k("str")]
        for _ in range(s.rng.randint(0, 3)):
            r = s.rng.random()
            if r < 0.35:
                a.append(s.rng.choice([b"IDX", b"idx"]))
            elif r < 0.5:
                a.append(b"LEN")
            elif r < 0.75:
                a.append(b"WITHMATCHLEN")
            elif r < 0.95:
                a += [b"MINMATCHLEN", s.rng.choice([b"0", b"1", b"2", b"3", b"-1", b"x"])]
            else:
                a.append(s.rng.choice([b"FOO", b"MINMATCHLEN"]))
        return a
    c_lcs.weight = 2

    # BITFIELD / BITFIELD_RO (feature level 4)
    def bf_type(s):
        r = s.rng.random()
        if r < 0.9:
            sign = s.rng.choice([b"i", b"u"])
            bits = s.rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 31, 32, 33, 63] + ([64] if sign == b"i" else []))
            return sign + str(bits).encode()
        return s.rng.choice([b"u64", b"i65", b"i0", b"x8", b"I8", b"u08", b"u", b"i-1", b"u8x"])

    def bf_offset(s, write):
        r = s.rng.random()
        if r < 0.75:
            return str(s.rng.randint(0, 90)).encode()
        if r < 0.92:
            return b"#" + str(s.rng.randint(0, 6)).encode()
        if write:
            return s.rng.choice([b"-1", b"x", b"#-1", b"4294967296", b"", b"#x"])
        return s.rng.choice([b"-1", b"x", b"#-1", b"4294967296", b"4294967295", b"#99999999", b"1000000"])

    def bf_value(s):
        return s.rng.choice([b"0", b"1", b"-1", b"5", b"100", b"127", b"128", b"-128", b"-129", b"255", b"256",
                             b"65535", b"-32768", b"1000000", b"9223372036854775807", b"-9223372036854775808",
                             b"x", b"1.5", b"4294967296"])

    def bf_ops(s, ro):
        a = []
        for _ in range(s.rng.randint(0, 4)):
            r = s.rng.random()
            if r < 0.35 or (ro and r < 0.9):
                a += [s.rng.choice([b"GET", b"get"]), s.bf_type(), s.bf_offset(False)]
            elif r < 0.6:
                a += [b"SET", s.bf_type(), s.bf_offset(True), s.bf_value()]
            elif r < 0.85:
                a += [s.rng.choice([b"INCRBY", b"incrby"]), s.bf_type(), s.bf_offset(True), s.bf_value()]
            elif r < 0.97:
                a += [b"OVERFLOW", s.rng.choice([b"WRAP", b"SAT", b"FAIL", b"sat", b"fail", b"nope"])]
            else:
                a += [s.rng.choice([b"FOO", b"GET", b"SET"])]  # unknown, or too few arguments
        return a

    def c_bitfield(s):
        return [b"BITFIELD", s.k("str")] + s.bf_ops(False)
    c_bitfield.weight = 3

    def c_bitfield_ro(s):
        return [b"BITFIELD_RO", s.k("str")] + s.bf_ops(True)
    c_bitfield_ro.weight = 1

    def c_incr(s):
        return [b"INCR", s.k("str")]
    c_incr.weight = 4

    def c_decr(s):
        return [b"DECR", s.k("str")]
    c_decr.weight = 2

    def c_incrby(s):
        return [b"INCRBY", s.k("str"), s.rng.choice(INCR_BY + BAD_INT[:2])]
    c_incrby.weight = 3

    def c_decrby(s):
        return [b"DECRBY", s.k("str"), s.rng.choice(INCR_BY + BAD_INT[:2])]
    c_decrby.weight = 2

    def c_incrbyfloat(s):
        return [b"INCRBYFLOAT", s.k("str"), s.rng.choice(FLOAT_BY + [b"abc", b"inf"])]
    c_incrbyfloat.weight = 3

    # --- keys
    def c_del(s):
        return [b"DEL"] + s.ks("any", 1, 3)
    c_del.weight = 3

    def c_unlink(s):
        return [b"UNLINK"] + s.ks("any", 1, 2)
    c_unlink.weight = 1

    def c_exists(s):
        return [b"EXISTS"] + s.ks("any", 1, 4)
    c_exists.weight = 3

    def c_type(s):
        return [b"TYPE", s.k("any")]
    c_type.weight = 3

    def c_rename(s):
        fam = s.rng.choice(["str", "hash", "list", "set", "zset"])
        return [b"RENAME", s.k(fam), s.k(fam)]
    c_rename.weight = 2

    def c_renamenx(s):
        fam = s.rng.choice(["str", "hash", "list", "set", "zset"])
        return [b"RENAMENX", s.k(fam), s.k(fam)]
    c_renamenx.weight = 1

    def c_keys(s):
        return [b"KEYS", s.rng.choice(PATTERNS)]
    c_keys.weight = 2

    def c_scan(s):
        r = s.rng
        a = [b"SCAN", b"0" if r.random() < 0.97 else b"abc"]
        if r.random() < 0.4:
            a += [b"MATCH", r.choice(PATTERNS)]
        if s.in_multi:
            a += [b"COUNT", b"1000"]
        elif r.random() < 0.5:
            a += [b"COUNT", r.choice([b"1", b"2", b"5", b"100", b"0"])]
        if r.random() < 0.3:
            a += [b"TYPE", r.choice(TYPES)]
        return a
    c_scan.weight = 2

    def c_dbsize(s):
        return [b"DBSIZE"]
    c_dbsize.weight = 2

    def c_move(s):
        return [b"MOVE", s.k("any"), s.rng.choice([b"0", b"1", b"2", b"1", b"15", b"16", b"-1", b"x"])]
    c_move.weight = 2

    def c_copy(s):
        fam = s.rng.choice(["str", "hash", "list", "set", "zset"])
        a = [b"COPY", s.k(fam), s.k(fam)]
        if s.rng.random() < 0.4:
            a += [b"DB", s.rng.choice([b"0", b"1", b"2", b"16"])]
        if s.rng.random() < 0.4:
            a.append(b"REPLACE")
        return a
    c_copy.weight = 2

    def c_touch(s):
        return [b"TOUCH"] + s.ks("any", 1, 3)
    c_touch.weight = 1

    def c_select(s):
        if s.in_multi:
            return [b"SELECT", s.rng.choice([b"0", b"1"])]
        return [b"SELECT", s.rng.choice([b"0", b"0", b"1", b"1", b"2", b"15", b"16", b"-1", b"x"])]
    c_select.weight = 2

    def c_randomkey(s):
        return [b"RANDOMKEY"]
    c_randomkey.weight = 1

    # --- expiry
    def c_expire(s):
        return [b"EXPIRE", s.k("any"), s.ttl("s")] + s.expire_flags()
    c_expire.weight = 3

    def c_pexpire(s):
        return [b"PEXPIRE", s.k("any"), s.ttl("ms")] + s.expire_flags()
    c_pexpire.weight = 2

    def c_expireat(s):
        return [b"EXPIREAT", s.k("any"), s.ttl("abs_s")] + s.expire_flags()
    c_expireat.weight = 2

    def c_pexpireat(s):
        return [b"PEXPIREAT", s.k("any"), s.ttl("abs_ms")] + s.expire_flags()
    c_pexpireat.weight = 1

    def c_ttl(s):
        return [b"TTL", s.k("any")]
    c_ttl.weight = 3

    def c_pttl(s):
        return [b"PTTL", s.k("any")]
    c_pttl.weight = 2

    def c_expiretime(s):
        return [b"EXPIRETIME", s.k("any")]
    c_expiretime.weight = 1

    def c_pexpiretime(s):
        return [b"PEXPIRETIME", s.k("any")]
    c_pexpiretime.weight = 1

    def c_persist(s):
        return [b"PERSIST", s.k("any")]
    c_persist.weight = 2

    # --- hashes
    def c_hset(s):
        a = [b"HSET", s.k("hash")]
        for _ in range(s.rng.randint(1, 3)):
            a += [s.rng.choice(FIELDS), s.v()]
        return a
    c_hset.weight = 6

    def c_hsetnx(s):
        return [b"HSETNX", s.k("hash"), s.rng.choice(FIELDS), s.v()]
    c_hsetnx.weight = 2

    def c_hget(s):
        return [b"HGET", s.k("hash"), s.rng.choice(FIELDS)]
    c_hget.weight = 4

    def c_hmget(s):
        return [b"HMGET", s.k("hash")] + [s.rng.choice(FIELDS) for _ in range(s.rng.randint(1, 4))]
    c_hmget.weight = 2

    def c_hmset(s):
        a = [b"HMSET", s.k("hash")]
        for _ in range(s.rng.randint(1, 3)):
            a += [s.rng.choice(FIELDS), s.v()]
        return a
    c_hmset.weight = 2

    def c_hdel(s):
        return [b"HDEL", s.k("hash")] + [s.rng.choice(FIELDS) for _ in range(s.rng.randint(1, 3))]
    c_hdel.weight = 3

    def c_hlen(s):
        return [b"HLEN", s.k("hash")]
    c_hlen.weight = 2

    def c_hexists(s):
        return [b"HEXISTS", s.k("hash"), s.rng.choice(FIELDS)]
    c_hexists.weight = 2

    def c_hkeys(s):
        return [b"HKEYS", s.k("hash")]
    c_hkeys.weight = 2

    def c_hvals(s):
        return [b"HVALS", s.k("hash")]
    c_hvals.weight = 2

    def c_hgetall(s):
        return [b"HGETALL", s.k("hash")]
    c_hgetall.weight = 3

    def c_hincrby(s):
        return [b"HINCRBY", s.k("hash"), s.rng.choice(FIELDS), s.rng.choice(INCR_BY + BAD_INT[:2])]
    c_hincrby.weight = 3

    def c_hincrbyfloat(s):
        return [b"HINCRBYFLOAT", s.k("hash"), s.rng.choice(FIELDS), s.rng.choice(FLOAT_BY + [b"abc"])]
    c_hincrbyfloat.weight = 2

    def c_hstrlen(s):
        return [b"HSTRLEN", s.k("hash"), s.rng.choice(FIELDS)]
    c_hstrlen.weight = 1

    def c_zrandmember(s):
        a = [b"ZRANDMEMBER", s.k("zset")]
        if s.rng.random() < 0.7:
            a.append(s.rng.choice([b"1", b"2", b"3", b"10", b"-2", b"-5", b"0", b"x"]))
            if s.rng.random() < 0.5:
                a.append(s.rng.choice([b"WITHSCORES", b"withscores", b"WITHSCORE"]))
        return a
    c_zrandmember.weight = 1

    def c_hrandfield(s):
        a = [b"HRANDFIELD", s.k("hash")]
        if s.rng.random() < 0.6:
            a.append(s.rng.choice([b"1", b"2", b"3", b"10", b"-2", b"-5", b"0"]))
            if s.rng.random() < 0.5:
                a.append(b"WITHVALUES")
        return a
    c_hrandfield.weight = 1

    # --- scripts
    def script_args(s, body, fam, nk, argk):
        keys = [s.k(fam) for _ in range(nk)]
        args = [s.rng.choice([b"1", b"2.5", b"-3", b"10"]) if argk == "n" else s.v()
                for _ in range(s.rng.randint(1, 2))]
        r = s.rng.random()
        if r < 0.04:
            numkeys = s.rng.choice([b"x", b"-1", b"%d" % (nk + len(args) + 1), b""])
        else:
            numkeys = b"%d" % nk
        return [numkeys] + keys + args

    def c_eval(s):
        body, fam, nk, argk = s.rng.choice(SCRIPTS)
        return [s.rng.choice([b"EVAL", b"eval"]), body] + s.script_args(body, fam, nk, argk)
    c_eval.weight = 4

    def c_eval_ro(s):
        body, fam, nk, argk = s.rng.choice(SCRIPTS)
        return [b"EVAL_RO", body] + s.script_args(body, fam, nk, argk)
    c_eval_ro.weight = 1

    def c_evalsha(s):
        body, fam, nk, argk = s.rng.choice(SCRIPTS)
        sha = hashlib.sha1(body).hexdigest().encode()
        r = s.rng.random()
        if r < 0.1:
            sha = sha.upper()
        elif r < 0.15:
            sha = b"f" * 40
        elif r < 0.17:
            sha = b"abc"
        return [s.rng.choice([b"EVALSHA", b"EVALSHA_RO"]), sha] + s.script_args(body, fam, nk, argk)
    c_evalsha.weight = 3

    def c_script(s):
        r = s.rng.random()
        if r < 0.6:
            return [b"SCRIPT", b"LOAD", s.rng.choice(SCRIPTS)[0]]
        if r < 0.9:
            shas = [hashlib.sha1(s.rng.choice(SCRIPTS)[0]).hexdigest().encode() for _ in range(s.rng.randint(1, 3))]
            return [b"SCRIPT", b"EXISTS"] + shas + [b"0" * 40]
        if r < 0.95:
            return [b"SCRIPT", s.rng.choice([b"FLUSH", b"KILL", b"NOSUCH"])]
        return [b"SCRIPT", b"FLUSH", s.rng.choice([b"SYNC", b"ASYNC", b"x"])]
    c_script.weight = 1

    # --- lists
    def c_lpush(s):
        return [b"LPUSH", s.k("list")] + [s.rng.choice(ELEMS) for _ in range(s.rng.randint(1, 3))]
    c_lpush.weight = 5

    def c_rpush(s):
        return [b"RPUSH", s.k("list")] + [s.rng.choice(ELEMS) for _ in range(s.rng.randint(1, 3))]
    c_rpush.weight = 5

    def c_lpushx(s):
        return [b"LPUSHX", s.k("list"), s.rng.choice(ELEMS)]
    c_lpushx.weight = 1

    def c_rpushx(s):
        return [b"RPUSHX", s.k("list"), s.rng.choice(ELEMS)]
    c_rpushx.weight = 1

    def c_lpop(s):
        a = [b"LPOP", s.k("list")]
        if s.rng.random() < 0.3:
            a.append(s.cnt())
        return a
    c_lpop.weight = 3

    def mpop(s, name, fam, ends):
        # LMPOP / ZMPOP numkeys key... WHERE [COUNT n] (feature level 1):
        # numkeys that miss the keys given, odd WHEREs, repeated COUNTs
        keys = s.ks(fam, 1, 3)
        r = s.rng.random()
        nk = b"%d" % len(keys) if r < 0.85 else s.rng.choice([b"0", b"-1", b"x", b"%d" % (len(keys) + 1)])
        a = [name, nk] + keys + [s.rng.choice(ends) if s.rng.random() < 0.95 else b"MIDDLE"]
        if s.rng.random() < 0.5:
            a += [b"COUNT", s.rng.choice([b"1", b"2", b"5", b"0", b"-1"]) if s.rng.random() < 0.9 else b"x"]
        if s.rng.random() < 0.05:
            a += s.rng.choice([[b"COUNT"], [b"COUNT", b"1"], [b"extra"]])
        return a

    def c_lmpop(s):
        return s.mpop(b"LMPOP", "list", [b"LEFT", b"RIGHT", b"left", b"Right"])
    c_lmpop.weight = 2

    def btimeout(s):
        # a blocking form's timeout: short (both sides wait it out on empty
        # keys, one command at a time), or refused
        return s.rng.choice([b"0.01", b"0.02", b"0.01", b"x", b"-1", b"inf"])

    def c_blmpop(s):
        a = s.mpop(b"BLMPOP", "list", [b"LEFT", b"RIGHT"])
        return a[:1] + [s.btimeout()] + a[1:]
    c_blmpop.weight = 1

    def c_bzmpop(s):
        a = s.mpop(b"BZMPOP", "zset", [b"MIN", b"MAX"])
        return a[:1] + [s.btimeout()] + a[1:]
    c_bzmpop.weight = 1

    def c_bzpopmin(s):
        return [s.rng.choice([b"BZPOPMIN", b"BZPOPMAX"])] + s.ks("zset", 1, 3) + [s.btimeout()]
    c_bzpopmin.weight = 1

    def c_rpop(s):
        a = [b"RPOP", s.k("list")]
        if s.rng.random() < 0.3:
            a.append(s.cnt())
        return a
    c_rpop.weight = 3

    def c_llen(s):
        return [b"LLEN", s.k("list")]
    c_llen.weight = 3

    def c_lrange(s):
        return [b"LRANGE", s.k("list"), s.i(-5, 3), s.i(-3, 8)]
    c_lrange.weight = 4

    def c_lindex(s):
        return [b"LINDEX", s.k("list"), s.i(-5, 5)]
    c_lindex.weight = 2

    def c_lset(s):
        return [b"LSET", s.k("list"), s.i(-4, 4), s.rng.choice(ELEMS)]
    c_lset.weight = 2

    def c_linsert(s):
        return [b"LINSERT", s.k("list"), s.rng.choice([b"BEFORE", b"AFTER", b"before", b"MIDDLE"]),
                s.rng.choice(ELEMS), s.rng.choice(ELEMS)]
    c_linsert.weight = 2

    def c_lrem(s):
        return [b"LREM", s.k("list"), s.i(-2, 2), s.rng.choice(ELEMS)]
    c_lrem.weight = 2

    def c_ltrim(s):
        return [b"LTRIM", s.k("list"), s.i(0, 2), s.i(-1, 8)]
    c_ltrim.weight = 1

    def c_lpos(s):
        a = [b"LPOS", s.k("list"), s.rng.choice(ELEMS)]
        opts = []
        if s.rng.random() < 0.3:
            opts.append([b"RANK", s.rng.choice([b"1", b"2", b"-1", b"-2", b"0"])])
        if s.rng.random() < 0.4:
            opts.append([b"COUNT", s.rng.choice([b"0", b"1", b"2", b"-1"])])
        if s.rng.random() < 0.2:
            opts.append([b"MAXLEN", s.rng.choice([b"0", b"1", b"3", b"-1"])])
        s.rng.shuffle(opts)
        return a + [x for o in opts for x in o]
    c_lpos.weight = 2

    def c_lmove(s):
        return [b"LMOVE", s.k("list"), s.k("list"), s.rng.choice([b"LEFT", b"RIGHT"]),
                s.rng.choice([b"LEFT", b"RIGHT", b"UP"] if s.rng.random() < 0.05 else [b"LEFT", b"RIGHT"])]
    c_lmove.weight = 2

    def c_rpoplpush(s):
        return [b"RPOPLPUSH", s.k("list"), s.k("list")]
    c_rpoplpush.weight = 2

    # --- sets
    def c_sadd(s):
        return [b"SADD", s.k("set")] + [s.rng.choice(ELEMS) for _ in range(s.rng.randint(1, 4))]
    c_sadd.weight = 6

    def c_srem(s):
        return [b"SREM", s.k("set")] + [s.rng.choice(ELEMS) for _ in range(s.rng.randint(1, 3))]
    c_srem.weight = 3

    def c_sismember(s):
        return [b"SISMEMBER", s.k("set"), s.rng.choice(ELEMS)]
    c_sismember.weight = 2

    def c_smismember(s):
        return [b"SMISMEMBER", s.k("set")] + [s.rng.choice(ELEMS) for _ in range(s.rng.randint(1, 3))]
    c_smismember.weight = 2

    def c_smembers(s):
        return [b"SMEMBERS", s.k("set")]
    c_smembers.weight = 3

    def c_scard(s):
        return [b"SCARD", s.k("set")]
    c_scard.weight = 2

    def c_sinter(s):
        return [b"SINTER"] + s.ks("set", 1, 3)
    c_sinter.weight = 2

    def c_sunion(s):
        return [b"SUNION"] + s.ks("set", 1, 3)
    c_sunion.weight = 2

    def c_sdiff(s):
        return [b"SDIFF"] + s.ks("set", 1, 3)
    c_sdiff.weight = 2

    def c_sinterstore(s):
        return [b"SINTERSTORE", s.k("set")] + s.ks("set", 1, 3)
    c_sinterstore.weight = 1

    def c_sunionstore(s):
        return [b"SUNIONSTORE", s.k("set")] + s.ks("set", 1, 3)
    c_sunionstore.weight = 1

    def c_sdiffstore(s):
        return [b"SDIFFSTORE", s.k("set")] + s.ks("set", 1, 3)
    c_sdiffstore.weight = 1

    def c_sintercard(s):
        keys = s.ks("set", 1, 3)
        n = b"%d" % len(keys)
        if s.rng.random() < 0.05:
            n = s.rng.choice([b"0", b"5", b"x"])
        a = [b"SINTERCARD", n] + keys
        if s.rng.random() < 0.3:
            a += [b"LIMIT", s.rng.choice([b"0", b"1", b"2", b"-1"])]
        return a
    c_sintercard.weight = 1

    def c_smove(s):
        return [b"SMOVE", s.k("set"), s.k("set"), s.rng.choice(ELEMS)]
    c_smove.weight = 2

    def c_srandmember(s):
        a = [b"SRANDMEMBER", s.k("set")]
        if s.rng.random() < 0.6:
            a.append(s.rng.choice([b"1", b"2", b"3", b"10", b"-2", b"-5", b"0"]))
        return a
    c_srandmember.weight = 1

    # --- sorted sets
    def c_zadd(s):
        r = s.rng
        key = s.k("zset")
        same = key == b"z3" and r.random() < 0.85   # (for lexicographic ranges)
        a = [b"ZADD", key]
        if r.random() < 0.3:
            a.append(r.choice([b"NX", b"XX"]))
        if r.random() < 0.25:
            a.append(r.choice([b"GT", b"LT"]))
        if r.random() < 0.25:
            a.append(b"CH")
        n = r.randint(1, 3)
        if r.random() < 0.15:
            a.append(b"INCR")
            n = 1 if r.random() < 0.9 else 2
        for _ in range(n):
            a += [b"0" if same else r.choice(SCORES if r.random() < 0.97 else BAD_SCORES), r.choice(ZMEMS)]
        if r.random() < 0.02:
            a.append(b"f")
        return a
    c_zadd.weight = 7

    def c_zrem(s):
        return [b"ZREM", s.k("zset")] + [s.rng.choice(ZMEMS) for _ in range(s.rng.randint(1, 2))]
    c_zrem.weight = 2

    def c_zscore(s):
        return [b"ZSCORE", s.k("zset"), s.rng.choice(ZMEMS)]
    c_zscore.weight = 3

    def c_zmscore(s):
        return [b"ZMSCORE", s.k("zset")] + [s.rng.choice(ZMEMS) for _ in range(s.rng.randint(1, 3))]
    c_zmscore.weight = 2

    def c_zincrby(s):
        return [b"ZINCRBY", s.k("zset"), s.rng.choice(SCORES + [b"abc"]), s.rng.choice(ZMEMS)]
    c_zincrby.weight = 3

    def c_zcard(s):
        return [b"ZCARD", s.k("zset")]
    c_zcard.weight = 2

    def c_zcount(s):
        return [b"ZCOUNT", s.k("zset"), s.rng.choice(SCORE_BOUNDS), s.rng.choice(SCORE_BOUNDS)]
    c_zcount.weight = 2

    def c_zlexcount(s):
        if s.in_multi:   # (see zrange_mode)
            return [b"ZCOUNT", s.k("zset"), s.rng.choice(SCORE_BOUNDS), s.rng.choice(SCORE_BOUNDS)]
        return [b"ZLEXCOUNT", s.zkey("lex"), s.rng.choice(LEX_BOUNDS + [b"a"]), s.rng.choice(LEX_BOUNDS)]
    c_zlexcount.weight = 1

    def zrange_mode(s):
        """None (by rank), "score" or "lex". Lexicographic ranges of a sorted
        set whose scores differ are unspecified in Redis (the answer depends
        on the encoding, even on the skiplist's random levels): the executor
        skips such commands, which it cannot do inside MULTI, so none there."""
        x = s.rng.random()
        if x < 0.45:
            return None
        if x < 0.8 or s.in_multi:
            return "score"
        return "lex"

    def zkey(s, mode):
        """z3 gets equal scores (mostly): lexicographic ranges go there"""
        if mode == "lex" and s.forced is None and s.rng.random() < 0.7:
            return b"z3"
        return s.k("zset")

    def zrange_args(s, mode):
        r = s.rng
        if mode is None:
            a = [s.i(-4, 3), s.i(-2, 6)]
        elif mode == "score":
            a = [r.choice(SCORE_BOUNDS), r.choice(SCORE_BOUNDS), b"BYSCORE"]
        else:
            a = [r.choice(LEX_BOUNDS), r.choice(LEX_BOUNDS), b"BYLEX"]
        if r.random() < 0.3:
            a.append(b"REV")
        if (mode and r.random() < 0.35) or r.random() < 0.03:
            a += [b"LIMIT", r.choice([b"0", b"1", b"2"]), r.choice([b"1", b"2", b"-1", b"0"])]
        return a

    def c_zrange(s):
        mode = s.zrange_mode()
        a = [b"ZRANGE", s.zkey(mode)] + s.zrange_args(mode)
        if s.rng.random() < 0.4:
            a.append(b"WITHSCORES")
        return a
    c_zrange.weight = 5

    def c_zrangestore(s):
        mode = s.zrange_mode()
        dst = s.k("zset")
        return [b"ZRANGESTORE", dst, s.zkey(mode)] + s.zrange_args(mode)
    c_zrangestore.weight = 1

    def c_zrevrange(s):
        a = [b"ZREVRANGE", s.k("zset"), s.i(-4, 3), s.i(-2, 6)]
        if s.rng.random() < 0.4:
            a.append(b"WITHSCORES")
        return a
    c_zrevrange.weight = 2

    def c_zrangebyscore(s):
        a = [b"ZRANGEBYSCORE", s.k("zset"), s.rng.choice(SCORE_BOUNDS), s.rng.choice(SCORE_BOUNDS)]
        if s.rng.random() < 0.4:
            a.append(b"WITHSCORES")
        if s.rng.random() < 0.3:
            a += [b"LIMIT", s.rng.choice([b"0", b"1"]), s.rng.choice([b"1", b"2", b"-1"])]
        return a
    c_zrangebyscore.weight = 2

    def c_zrank(s):
        return [b"ZRANK", s.k("zset"), s.rng.choice(ZMEMS)]
    c_zrank.weight = 2

    def c_zrevrank(s):
        return [b"ZREVRANK", s.k("zset"), s.rng.choice(ZMEMS)]
    c_zrevrank.weight = 1

    def c_zpopmin(s):
        a = [b"ZPOPMIN", s.k("zset")]
        if s.rng.random() < 0.4:
            a.append(s.cnt())
        return a
    c_zpopmin.weight = 2

    def c_zmpop(s):
        return s.mpop(b"ZMPOP", "zset", [b"MIN", b"MAX", b"min", b"Max"])
    c_zmpop.weight = 2

    def c_zpopmax(s):
        a = [b"ZPOPMAX", s.k("zset")]
        if s.rng.random() < 0.4:
            a.append(s.cnt())
        return a
    c_zpopmax.weight = 2

    def c_zremrangebyrank(s):
        return [b"ZREMRANGEBYRANK", s.k("zset"), s.i(-3, 2), s.i(-3, 2)]
    c_zremrangebyrank.weight = 1

    def c_zremrangebyscore(s):
        return [b"ZREMRANGEBYSCORE", s.k("zset"), s.rng.choice(SCORE_BOUNDS), s.rng.choice(SCORE_BOUNDS)]
    c_zremrangebyscore.weight = 1

    def zstore(s, cmd, store=True, scored=True, card=False):
        r = s.rng
        keys = s.ks("zset", 1, 3)
        n = b"%d" % len(keys)
        if r.random() < 0.04:
            n = r.choice([b"0", b"9", b"x"])
        a = [cmd] + ([s.k("zset")] if store else []) + [n] + keys
        # WEIGHTS / AGGREGATE now and then where they are not allowed too (a syntax error)
        if r.random() < (0.3 if scored else 0.03):
            a += [b"WEIGHTS"] + [r.choice([b"1", b"2", b"0.5", b"-1", b"0"]) for _ in keys]
        if r.random() < (0.3 if scored else 0.03):
            a += [b"AGGREGATE", r.choice([b"SUM", b"MIN", b"MAX", b"AVG"] if r.random() < 0.1 else [b"SUM", b"MIN", b"MAX"])]
        if not store and not card and r.random() < 0.5:
            a.append(r.choice([b"WITHSCORES", b"withscores"]))
        if card and r.random() < 0.4:
            a += [b"LIMIT", r.choice([b"0", b"1", b"2", b"-1", b"x"])]
        return a

    def c_zunionstore(s):
        return s.zstore(b"ZUNIONSTORE")
    c_zunionstore.weight = 1

    def c_zinterstore(s):
        return s.zstore(b"ZINTERSTORE")
    c_zinterstore.weight = 1

    def c_zdiffstore(s):
        return s.zstore(b"ZDIFFSTORE", scored=False)
    c_zdiffstore.weight = 1

    def c_zunion(s):
        return s.zstore(b"ZUNION", store=False)
    c_zunion.weight = 1

    def c_zinter(s):
        return s.zstore(b"ZINTER", store=False)
    c_zinter.weight = 1

    def c_zdiff(s):
        return s.zstore(b"ZDIFF", store=False, scored=False)
    c_zdiff.weight = 1

    def c_zintercard(s):
        return s.zstore(b"ZINTERCARD", store=False, scored=False, card=True)
    c_zintercard.weight = 1

    # --- misc and transaction commands outside a transaction (errors, stray watches)
    def c_ping(s):
        return [b"PING"] + ([s.v()] if s.rng.random() < 0.5 else [])
    c_ping.weight = 1

    def c_echo(s):
        return [b"ECHO", s.v()]
    c_echo.weight = 1

    def c_exec(s):
        return [b"EXEC"]
    c_exec.weight = 0.3

    def c_discard(s):
        return [b"DISCARD"]
    c_discard.weight = 0.3

    def c_watch(s):
        return [b"WATCH"] + s.ks("any", 1, 2)
    c_watch.weight = 0.5

    def c_unwatch(s):
        return [b"UNWATCH"]
    c_unwatch.weight = 0.5

    # --- composition
    def random_cmd(self, names=None):
        r = self.rng
        if names is None:
            if r.random() < 0.003:
                return r.choice([[b"NOSUCHCMD", b"a", b"b"], [b"GETT", self.k()], [b"hgetal", self.k("hash")]])
            fn = r.choices(self.table, weights=self.weights)[0][2]
        else:
            fn = self.by_name[r.choice(names)]
        argv = fn()
        self.forced = None
        x = r.random()
        if x < 0.03 and len(argv) > 1 and not (self.in_multi and argv[0] == b"SCAN"):  # wrong arity, junk, bad numbers
            m = r.randint(0, 2)
            if m == 0:
                argv = argv[:r.randint(1, len(argv) - 1)]
            elif m == 1:
                argv = argv + [b"junkarg"]
            else:
                j = r.randint(1, len(argv) - 1)
                argv = argv[:j] + [r.choice(BAD_INT)] + argv[j + 1:]
        x = r.random()
        if x < 0.08:
            argv = [argv[0].lower()] + argv[1:]
        elif x < 0.1:
            argv = [bytes(c ^ 32 if 97 <= (c | 32) <= 122 and r.random() < 0.5 else c for c in argv[0])] + argv[1:]
        return argv

    def other(self, a):
        b_ = self.rng.randrange(self.n - 1)
        return b_ if b_ < a else b_ + 1

    def multi_block(self, a):
        r = self.rng
        ops = [Op(a, [b"MULTI"])]
        self.in_multi = True
        for _ in range(r.randint(0, 5)):
            x = r.random()
            if x < 0.03:
                ops.append(Op(a, [b"MULTI"]))
            elif x < 0.06:
                ops.append(Op(a, [b"WATCH", self.k()]))
            elif x < 0.09:
                ops.append(Op(a, [r.choice([b"GET", b"HSET", b"ZADD"])]))    # arity: EXECABORT
            elif x < 0.16 and self.n > 1:
                ops.append(Op(self.other(a), self.random_cmd()))
            else:
                argv = self.random_cmd()
                if argv[0].upper() == b"SELECT":
                    self.db[a] = None
                ops.append(Op(a, argv))
        self.in_multi = False
        ops.append(Op(a, [b"EXEC"] if r.random() < 0.85 else [b"DISCARD"]))
        return ops

    def watch_block(self, a):
        r = self.rng
        b_ = self.other(a)
        ops = []
        for c in (a, b_):
            if self.db[c] != 0 or r.random() < 0.05:
                ops.append(Op(c, [b"SELECT", b"0"]))
                self.db[c] = 0
        keys = [self.k("any") for _ in range(r.randint(1, 2))]
        ops.append(Op(a, [b"WATCH"] + keys))
        x = r.random()
        if x < 0.4:
            self.forced = keys[0]
            ops.append(Op(b_, self.random_cmd(self.write_cmds)))
        elif x < 0.5:
            ops.append(Op(b_, [r.choice([b"GET", b"EXISTS", b"TYPE", b"TTL"]), keys[0]]))
        elif x < 0.6:
            self.forced = keys[0]
            ops.append(Op(a, self.random_cmd(self.write_cmds)))
        elif x < 0.68:
            self.forced = keys[0]
            ops += [Op(b_, [b"SELECT", b"1"]), Op(b_, self.random_cmd(self.write_cmds)), Op(b_, [b"SELECT", b"0"])]
        elif x < 0.74:
            self.forced = keys[0]
            ops += [Op(a, [b"UNWATCH"]), Op(b_, self.random_cmd(self.write_cmds))]
        elif x < 0.8:
            ops.append(Op(b_, self.random_cmd(self.write_cmds)))
        block = self.multi_block(a)
        if r.random() < 0.3:   # a change between MULTI and EXEC also aborts
            self.forced = keys[-1]
            block.insert(r.randint(1, len(block) - 1), Op(b_, self.random_cmd(self.write_cmds)))
        return ops + block

    def ttl_burst(self, c):
        r = self.rng
        self.burst = True
        self.burst_ms = r.choice([1000, 2000, 3000])
        self.burst_keys = []
        names = sorted(BURST_CMDS)
        ops = []
        for _ in range(r.randint(2, 5)):
            n = r.choice(names)
            k = self.k("any")
            if n == "SET":
                argv = [b"SET", k, self.v(), r.choice([b"EX", b"PX", b"EXAT", b"PXAT"])]
                argv.append(self.ttl({b"EX": "s", b"PX": "ms", b"EXAT": "abs_s", b"PXAT": "abs_ms"}[argv[3]]))
                if r.random() < 0.3:
                    argv.append(r.choice([b"NX", b"XX", b"GET"]))
            elif n == "GETEX":
                o = r.choice([b"EX", b"PX", b"EXAT", b"PXAT"])
                argv = [b"GETEX", k, o, self.ttl({b"EX": "s", b"PX": "ms", b"EXAT": "abs_s", b"PXAT": "abs_ms"}[o])]
            else:
                self.forced = k
                argv = self.by_name[n]()
                self.forced = None
            ops.append(Op(c, argv))
            if isinstance(argv[1], bytes):
                self.burst_keys.append(argv[1])
        for _ in range(r.randint(0, 2)):
            ops.append(Op(c, [r.choice([b"TTL", b"PTTL", b"EXPIRETIME", b"PEXPIRETIME"]), r.choice(self.burst_keys)]))
        self.burst = False
        # the expiry point that lets these keys run out: after a few more
        # commands (well before the deadline even on a slow SUT), so that which
        # keys have expired depends on the order of the commands, not on timing
        self.sleep_at = self.count + r.randint(2, 30)
        self.sleep_len = self.burst_ms / 1000.0 + 1.3
        self.sleep_left -= self.sleep_len
        return ops

    def next_op(self):
        self.count += 1
        if self.pending:
            return self.pending.popleft()
        r = self.rng
        if self.sleep_at is not None and self.count >= self.sleep_at:
            self.sleep_at = None
            # then look at the keys that should have expired
            keys = sorted(set(self.burst_keys))
            for _ in range(r.randint(1, 3)):
                x = r.random()
                if x < 0.3:
                    argv = [b"EXISTS"] + keys
                elif x < 0.5:
                    argv = [b"TTL", r.choice(keys)]
                elif x < 0.6:
                    argv = [b"DBSIZE"]
                elif x < 0.7:
                    argv = [b"KEYS", b"*"]
                else:
                    argv = [r.choice([b"GET", b"TYPE", b"PTTL", b"LLEN", b"HLEN"]), r.choice(keys)]
                self.pending.append(Op(r.randrange(self.n), argv))
            return Op(None, sleep=self.sleep_len)
        c = r.randrange(self.n)
        x = r.random()
        ops = None
        if x < 0.008 and self.sleep_at is None and self.sleep_left >= 4.3 and not self.exclude & BURST_CMDS:
            ops = self.ttl_burst(c)
        elif x < 0.03 and self.n > 1 and self.write_cmds and not {"WATCH", "MULTI"} & self.exclude:
            ops = self.watch_block(c)
        elif x < 0.05 and "MULTI" not in self.exclude:
            ops = self.multi_block(c)
        if ops:
            self.pending.extend(ops[1:])
            return ops[0]
        argv = self.random_cmd()
        name = argv[0].upper()
        if name == b"SELECT" and len(argv) == 2 and argv[1] in (b"0", b"1", b"2", b"15"):
            self.db[c] = int(argv[1])
        if name.decode() in BURST_CMDS and len(argv) > 2 and r.random() < 0.5:
            # a look at the TTL just set (keys keep one only briefly)
            self.pending.append(Op(c, [r.choice([b"TTL", b"PTTL", b"EXPIRETIME", b"PEXPIRETIME"]), argv[1]]))
        return Op(c, argv)


# ---------------------------------------------------------------------------
# comparing replies

def is_arr(n):
    return n[0] == "*" and n[1] is not None


def node_key(n):
    return repr(n)


def multiset_eq(a, b):
    return sorted(map(node_key, a)) == sorted(map(node_key, b))


def pairs(items):
    return [(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]


def cmp_random(name, argv, r, s, members):
    """Shape and membership of SRANDMEMBER / HRANDFIELD / ZRANDMEMBER /
    RANDOMKEY replies. members: the reference's elements (set of bytes; for
    HRANDFIELD a dict field -> value, for ZRANDMEMBER member -> score) or
    None when unknown."""
    if r[0] != s[0] or r[0] in "+-:!" or r[1] is None or s[1] is None:
        return r == s
    if r[0] == "$":
        return members is None or s[1] in members
    withvalues = len(argv) > 3 and ((name == b"HRANDFIELD" and argv[3].upper() == b"WITHVALUES") or
                                    (name == b"ZRANDMEMBER" and argv[3].upper() == b"WITHSCORES"))
    if len(r[1]) != len(s[1]):
        return False
    if any(x[0] != "$" or x[1] is None for x in s[1]):
        return False
    if withvalues:
        got = pairs([x[1] for x in s[1]])
        fields = [f for f, _ in got]
        if members is not None and any(f not in members or members[f] != v for f, v in got):
            return False
    else:
        fields = [x[1] for x in s[1]]
        if members is not None and any(f not in members for f in fields):
            return False
    try:
        count = int(argv[2])
    except (IndexError, ValueError):
        count = 0
    if count > 0 and len(set(fields)) != len(fields):
        return False
    return True


def cmp_rule(name, argv, r, s, in_exec):
    """True when r and s agree under the command's rule (exact otherwise)."""
    if r == s:
        return True
    if name in RANDOM_CMDS:
        return cmp_random(name, argv, r, s, None)
    if r[0] != s[0] or r[0] not in ":*":
        return False
    if name in TOLERANCE and r[0] == ":":
        if r[1] < 0 or s[1] < 0:
            return False
        return abs(r[1] - s[1]) <= TOLERANCE[name]
    if not (is_arr(r) and is_arr(s)):
        return False
    if name in UNORDERED:
        return multiset_eq(r[1], s[1])
    if name in PAIRS:
        return len(r[1]) == len(s[1]) and len(r[1]) % 2 == 0 and \
            sorted(map(node_key, pairs(r[1]))) == sorted(map(node_key, pairs(s[1])))
    if name == b"SCAN" and in_exec:
        # (inside EXEC the iteration cannot be finished: an unfinished one is
        # only checked for shape)
        if len(r[1]) == 2 and len(s[1]) == 2 and r[1][0][0] == s[1][0][0] == "$" \
                and is_arr(r[1][1]) and is_arr(s[1][1]):
            if r[1][0] == s[1][0] == ("$", b"0"):
                return set(r[1][1][1]) == set(s[1][1][1])
            return r[1][0][1] != b"0" or s[1][0][1] != b"0"
        return False
    return False


# ---------------------------------------------------------------------------
# faults (to check the tester itself): they corrupt the SUT's replies

def _fault_llen(argv, node, raw):
    if argv[0].upper() == b"LLEN" and node[0] == ":" and node[1] >= 3:
        return (":", node[1] + 1), b":%d\r\n" % (node[1] + 1)
    return node, raw


def _fault_wrongtype(argv, node, raw):
    if node[0] == "-" and node[1].startswith(b"WRONGTYPE"):
        n = ("-", node[1].replace(b"wrong kind of value", b"wrong type of value"))
        return n, b"-" + n[1] + b"\r\n"
    return node, raw


def _fault_hgetall(argv, node, raw):
    if argv[0].upper() == b"HGETALL" and is_arr(node) and len(node[1]) >= 6:
        n = ("*", node[1][2:])
        return n, b"(altered)"
    return node, raw


def _fault_ttl(argv, node, raw):
    if argv[0].upper() == b"TTL" and node[0] == ":" and node[1] > 0:
        return (":", node[1] + 5), b":%d\r\n" % (node[1] + 5)
    return node, raw


def _fault_zscore(argv, node, raw):
    if argv[0].upper() == b"ZINCRBY" and node[0] == "$" and node[1] is not None and b"." in node[1]:
        n = ("$", node[1] + b"0")
        return n, b"$%d\r\n%s\r\n" % (len(n[1]), n[1])
    return node, raw


FAULTS = {
    "llen": ("LLEN answers one more than the length of a list of 3 or more elements", _fault_llen),
    "wrongtype": ("WRONGTYPE errors say 'type' where Redis says 'kind'", _fault_wrongtype),
    "hgetall": ("HGETALL leaves out one field of a hash with 3 or more fields", _fault_hgetall),
    "ttl": ("TTL answers 5 s more than the truth", _fault_ttl),
    "zincrby": ("ZINCRBY formats fractional scores with a trailing 0", _fault_zscore),
}


# ---------------------------------------------------------------------------
# running a sequence on both sides

class RefError(Exception):
    pass


def deadline_of(argv, now):
    """The unix time at which this command would expire its key, if it sets a
    TTL in the future (whether or not it succeeds), else None."""
    name = argv[0].upper()

    def num(x):   # (strictly: int() would take b"1 ")
        if not x.lstrip(b"-").isdigit():
            return None
        return int(x)
    rel = absolute = None
    if name in (b"SET", b"GETEX"):
        i = 3 if name == b"SET" else 2
        while i + 1 < len(argv):
            o = argv[i].upper()
            n = num(argv[i + 1])
            if n is not None:
                if o == b"EX":
                    rel = n * 1000
                elif o == b"PX":
                    rel = n
                elif o == b"EXAT":
                    absolute = n * 1000
                elif o == b"PXAT":
                    absolute = n
            i += 1
    elif len(argv) >= 3:
        n = num(argv[2])
        if n is None:
            return None
        if name in (b"SETEX", b"EXPIRE"):
            rel = n * 1000
        elif name in (b"PSETEX", b"PEXPIRE"):
            rel = n
        elif name == b"EXPIREAT":
            absolute = n * 1000
        elif name == b"PEXPIREAT":
            absolute = n
    if rel is not None and 0 < rel < 10 ** 9:
        return now + rel / 1000.0
    if absolute is not None and now * 1000 < absolute < 10 ** 15:
        return absolute / 1000.0
    return None


def is_lex(argv):
    """a lexicographic range of a sorted set"""
    name = argv[0].upper()
    return len(argv) > 2 and (name == b"ZLEXCOUNT" or (name in (b"ZRANGE", b"ZRANGESTORE") and
                                                        any(isinstance(a, bytes) and a.upper() == b"BYLEX"
                                                            for a in argv)))


class Client:
    def __init__(self, ref, sut):
        self.ref = ref
        self.sut = sut
        self.in_multi = False
        self.queued = []


class Result:
    __slots__ = ("status", "argv", "ref", "sut", "ref_raw", "sut_raw", "doc", "client")

    def __init__(self, status, argv=None, ref=None, sut=None, ref_raw=b"", sut_raw=b"", doc=None, client=None):
        self.status = status
        self.argv = argv
        self.ref = ref
        self.sut = sut
        self.ref_raw = ref_raw
        self.sut_raw = sut_raw
        self.doc = doc
        self.client = client


class Executor:
    def __init__(self, ref_addr, sut_addrs, nclients, timeout, margin_before, margin_after, fault, verbose):
        self.ref_addr = ref_addr
        self.sut_addrs = sut_addrs
        self.n = nclients
        self.timeout = timeout
        self.before = margin_before
        self.after = margin_after
        self.fault = fault
        self.verbose = verbose
        self.clients = []
        self.deadlines = []
        self.waited = 0.0
        self.slept = 0.0
        self.commands = 0
        self.skipped = 0
        self.resolved = {}

    def connect(self):
        self.close()
        self.clients = []
        for i in range(self.n):
            ref = Conn(self.ref_addr, self.timeout)
            if ref.dead:
                raise RefError(ref.dead)
            self.clients.append(Client(ref, Conn(self.sut_addrs[i % len(self.sut_addrs)], self.timeout)))
        self.deadlines = []

    def close(self):
        for c in self.clients:
            c.ref.close()
            c.sut.close()
        self.clients = []

    def sut_down(self):
        return [c.sut.dead for c in self.clients if c.sut.dead]

    def flushall(self):
        """FLUSHALL on the reference and on every SUT address (DEL of the key
        space in databases 0-15 where FLUSHALL is refused)."""
        r = Conn(self.ref_addr, self.timeout)
        if r.call([b"FLUSHALL"]) != ("+", b"OK"):
            raise RefError("FLUSHALL failed on the reference: %s" % (r.dead or "error"))
        r.call([b"SCRIPT", b"FLUSH"])  # scripts too: EVALSHA must find the same ones on both sides
        r.close()
        notes = []
        for addr in dict.fromkeys(self.sut_addrs):
            c = Conn(addr, self.timeout)
            c.call([b"SCRIPT", b"FLUSH"])
            rep = c.call([b"FLUSHALL"])
            if rep != ("+", b"OK"):
                notes.append("FLUSHALL at %s:%d answered %s; deleting the key space instead" % (addr + (fmt(rep),)))
                for db in range(16):
                    if c.call([b"SELECT", b"%d" % db])[0] != "+" and db > 0:
                        break
                    c.call([b"DEL"] + ALL_KEYS + [x for x in BAD_INT if x] + [b"junkarg"])
            c.close()
        return notes

    def reset(self):
        self.connect()
        notes = self.flushall()
        self.resolved = {}
        return notes

    def reclaim(self):
        """Make both sides drop the keys that have expired (a SCAN through
        every database in use, on connections of its own): Redis counts an
        expired key in DBSIZE until it reclaims it, which its active expiry
        does at its own pace."""
        for addr in [self.ref_addr] + list(dict.fromkeys(self.sut_addrs)):
            c = Conn(addr, self.timeout)
            for db in (b"0", b"1", b"2", b"15"):
                if c.call([b"SELECT", db]) != ("+", b"OK"):
                    break
                cur = b"0"
                for _ in range(1000):
                    rep = c.call([b"SCAN", cur, b"COUNT", b"1000"])
                    if not (is_arr(rep) and len(rep[1]) == 2 and rep[1][0][0] == "$"):
                        break
                    cur = rep[1][0][1]
                    if cur == b"0":
                        break
            c.close()

    def wait_quiet(self):
        now = time.time()
        while True:
            moved = False
            for d in self.deadlines:
                if d - self.before <= now <= d + self.after:
                    pause = d + self.after - now + 0.001
                    if self.verbose:
                        print("  (waiting %.2f s around a TTL deadline)" % pause, file=sys.stderr)
                    time.sleep(pause)
                    self.waited += pause
                    now = time.time()
                    moved = True
            if not moved:
                break
        self.deadlines = [d for d in self.deadlines if d + self.after >= now]

    def scan_all(self, conn, argv, first):
        items = set(first[1][1][1] or ())
        cur = first[1][0][1]
        for _ in range(10000):
            if cur == b"0":
                return items
            rep = conn.call([argv[0], cur] + argv[2:])
            if not (is_arr(rep) and len(rep[1]) == 2 and rep[1][0][0] == "$" and is_arr(rep[1][1])):
                return None
            cur = rep[1][0][1]
            items |= set(rep[1][1][1])
        return None

    def members(self, conn, name, argv):
        if name == b"RANDOMKEY":
            rep = conn.call([b"KEYS", b"*"])
            return {x[1] for x in rep[1]} if is_arr(rep) else None
        if name == b"SRANDMEMBER":
            rep = conn.call([b"SMEMBERS", argv[1]])
        elif name == b"HRANDFIELD":
            rep = conn.call([b"HGETALL", argv[1]])
        else:
            rep = conn.call([b"ZRANGE", argv[1], b"0", b"-1", b"WITHSCORES"])
        if not is_arr(rep):
            return None
        vals = [x[1] for x in rep[1]]
        if name == b"SRANDMEMBER":
            return set(vals)
        return dict(pairs(vals))

    def step(self, op):
        """Run one op on both sides; returns a Result ('ok', 'diff', 'doc',
        'sleep')."""
        if op.sleep:
            now = time.time()
            soon = [d for d in self.deadlines if d < now + 10]
            if soon:
                pause = max(soon) + self.after - now
                if pause > 0:
                    time.sleep(pause)
                    self.slept += pause
                self.reclaim()
            return Result("sleep")
        self.wait_quiet()
        cl = self.clients[op.client]
        name = op.argv[0].upper()
        if (name == b"DBSIZE" and not cl.in_multi) or \
                (name == b"EXEC" and cl.in_multi and any(q[0].upper() == b"DBSIZE" for q in cl.queued)):
            # (SET with EXAT/PXAT in the past leaves a key that Redis counts
            # until its active expiry gets to it)
            self.reclaim()
        if not cl.in_multi and is_lex(op.argv):
            key = op.argv[2] if name == b"ZRANGESTORE" else op.argv[1]
            rep = cl.ref.call([b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"])
            if is_arr(rep) and len({x[1] for x in rep[1][1::2]}) > 1:
                self.skipped += 1
                return Result("skip")
        now = time.time()
        argv = resolve(op.argv, now)
        self.resolved[id(op)] = argv
        cl.ref.send(argv)
        cl.sut.send(argv)
        r, rraw = cl.ref.read()
        s, sraw = cl.sut.read()
        self.commands += 1
        if r[0] == "!":
            raise RefError("reference %s:%d: %s" % (self.ref_addr + (r[1].decode(),)))
        if self.fault:
            s, sraw = self.fault(argv, s, sraw)
        # state: MULTI, queued commands, expiry deadlines
        was_multi = cl.in_multi
        queued = cl.queued
        d = deadline_of(argv, now)
        if name == b"MULTI" and r == ("+", b"OK"):
            cl.in_multi = True
            cl.queued = []
        elif was_multi and r == ("+", b"QUEUED"):
            cl.queued.append(argv)
        elif was_multi and name in (b"EXEC", b"DISCARD"):
            cl.in_multi = False
            cl.queued = []
            if name == b"EXEC" and is_arr(r):
                t = time.time()
                for q in queued:
                    dq = deadline_of(q, t)
                    if dq:
                        self.deadlines.append(dq)
        if d and not was_multi:
            self.deadlines.append(d)
        # compare
        if rraw == sraw:
            same = True
        elif name == b"EXEC" and was_multi and is_arr(r) and is_arr(s) and len(r[1]) == len(s[1]) == len(queued):
            same = all(cmp_rule(q[0].upper(), q, x, y, True) for q, x, y in zip(queued, r[1], s[1]))
        elif name == b"SCAN" and not was_multi and is_arr(r) and is_arr(s) and len(r[1]) == 2 and len(s[1]) == 2 \
                and is_arr(r[1][1]) and is_arr(s[1][1]):
            a = self.scan_all(cl.ref, argv, r)
            b_ = self.scan_all(cl.sut, argv, s)
            same = a is not None and a == b_
        elif name == b"DBSIZE" and not was_multi and r[0] == s[0] == ":":
            # Redis counts expired keys it has not reclaimed yet: accept a SUT
            # between the logical count (KEYS *, the same on both sides) and
            # the reference's raw count
            lr = cl.ref.call([b"KEYS", b"*"])
            ls = cl.sut.call([b"KEYS", b"*"])
            same = is_arr(lr) and is_arr(ls) and len(lr[1]) == len(ls[1]) and len(lr[1]) <= s[1] <= r[1]
        elif name in RANDOM_CMDS and not was_multi:
            same = cmp_random(name, argv, r, s, self.members(cl.ref, name, argv) if r[0] in "$*" else None)
        else:
            same = cmp_rule(name, argv, r, s, False)
        status = "ok"
        doc = None
        if not same:
            status = "diff"
            for dname, (pred, _) in DOCUMENTED.items():
                try:
                    if pred(name, argv, r, s):
                        status, doc = "doc", dname
                        break
                except Exception:
                    pass
        if self.verbose:
            print("  [c%d] %s -> %s%s" % (op.client, cli_line(argv), fmt(r, 200),
                                        "" if same else "   SUT: " + fmt(s, 200)), file=sys.stderr)
        return Result(status, argv, r, s, rraw, sraw, doc, op.client)


# ---------------------------------------------------------------------------
# minimizing

class OutOfBudget(Exception):
    pass


class Minimizer:
    """Delta debugging over the op list. A candidate reproduces when its first
    disagreement is at a command with the same name as the original one (the
    candidate is then cut after that command), each replay on fresh
    connections after FLUSHALL on both sides."""

    def __init__(self, ex, budget_s, log):
        self.ex = ex
        self.t0 = time.time()
        self.deadline = self.t0 + budget_s
        self.replays = 0
        self.log = log
        self.last = None
        self.sig = None
        self.best = None
        self.verbose = False

    def check(self, seq):
        """The candidate cut after its first disagreement when that one has
        the signature, else None."""
        if time.time() > self.deadline:
            raise OutOfBudget
        if not any(op.name() == self.sig for op in seq):
            return None
        self.replays += 1
        self.ex.reset()
        for i, op in enumerate(seq):
            res = self.ex.step(op)
            if res.status == "diff":
                if op.name() == self.sig:
                    self.last = res
                    if self.best is None or i + 1 < len(self.best):
                        self.best = seq[:i + 1]
                    return seq[:i + 1]
                if self.verbose:
                    self.log("  (candidate of %d: first disagreement at %s)" % (len(seq), cli_line(res.argv)))
                return None
        if self.verbose:
            self.log("  (candidate of %d: no disagreement)" % len(seq))
        return None

    def slice_by_keys(self, seq):
        target = seq[-1]
        if target.name() in GLOBAL:
            return seq
        keys = set(target.keys())
        changed = True
        while changed:
            changed = False
            for op in seq:
                ks = op.keys()
                if ks & keys and not ks <= keys:
                    keys |= ks
                    changed = True
        return [op for op in seq if op.sleep or op.name() in CONTROL or op.name() in GLOBAL or op.keys() & keys]

    def attempt(self, cand, best, what):
        if len(cand) >= len(best):
            return best
        got = self.check(cand)
        if got is not None:
            self.log("  %s: %d -> %d commands (replay %d)" % (what, len(best), len(got), self.replays))
            return got
        return best

    def ddmin(self, items):
        n = 2
        while len(items) >= 2:
            chunk = int(math.ceil(len(items) / float(n)))
            reduced = False
            for i in range(0, len(items), chunk):
                got = self.check(items[:i] + items[i + chunk:])
                if got is not None:
                    self.log("  ddmin: %d -> %d commands (replay %d)" % (len(items), len(got), self.replays))
                    items = got
                    n = max(n - 1, 2)
                    reduced = True
                    break
            if not reduced:
                if n >= len(items):
                    break
                n = min(len(items), n * 2)
        return items

    def run(self, seq):
        self.sig = seq[-1].name()
        best = seq
        try:
            best = self.check(seq)
            if best is None:
                return None, "the disagreement did not reproduce on a replay (timing?)"
            # the failing command alone; without expiry; only the commands on related keys
            best = self.attempt(best[-1:], best, "alone")
            best = self.attempt([op for op in best[:-1] if op.name() not in READ_ONLY] + best[-1:], best,
                                "without the read-only commands")
            best = self.attempt([op for op in best if not op.sleep and op.name() not in BURST_EXPIRY], best,
                                "without expiry")
            best = self.attempt(self.slice_by_keys(best), best, "key slicing")
            best = self.ddmin(best)
        except OutOfBudget:
            return self.best, "minimizing stopped at its time budget after %d replays" % self.replays
        return best, None


# ---------------------------------------------------------------------------
# main

def addr(s):
    host, _, port = s.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % s)
    return (host, int(port))


def describe(seed, index, op, res):
    return ("difftest: DISAGREEMENT (seed %d, command #%d, client %d)\n"
            "  command:   %s\n"
            "  reference: %s\n"
            "  SUT:       %s\n"
            "  raw ref:   %r\n"
            "  raw SUT:   %r") % (seed, index, op.client, cli_line(res.argv), fmt(res.ref), fmt(res.sut),
                                 res.ref_raw[:300], res.sut_raw[:300])


def print_reproducer(ex, full, args):
    clients = sorted({op.client for op in full if not op.sleep})
    print("difftest: minimized reproducer (%d commands), after FLUSHALL, one connection per client:" %
          sum(1 for op in full if not op.sleep))
    for op in full:
        if op.sleep:
            print("    # wait until the keys given a short TTL above have expired (~%.1f s)" % op.sleep)
            continue
        argv = ex.resolved.get(id(op)) or resolve(op.argv, time.time())
        prefix = "" if len(clients) == 1 else "[client %d] " % op.client
        line = "    %s%s" % (prefix, cli_line(argv))
        if any(isinstance(a, tuple) for a in op.argv):
            line += "      # " + ", ".join("%s now%+d" % ("unix s" if a[0] == "abs_s" else "unix ms", a[1])
                                        for a in op.argv if isinstance(a, tuple))
        print(line)
    if len(clients) == 1:
        print("  (one client: the lines above, after FLUSHALL, can be piped into redis-cli -h %s -p %d)"
              % args.sut[clients[0] % len(args.sut)])
    else:
        print("  (" + ", ".join("client %d: SUT %s:%d" % ((c,) + args.sut[c % len(args.sut)]) for c in clients) + ")")


def main():
    clash = gone_slots_distinct()
    if clash:
        print("difftest: " + clash + ": rename one (tests/kv/difftest.py)", file=sys.stderr)
        sys.exit(2)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", type=addr, required=True, help="reference redis-server HOST:PORT")
    ap.add_argument("--sut", type=addr, action="append", required=True,
                    help="system under test HOST:PORT (repeat: clients are spread round-robin)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock)")
    ap.add_argument("--ops", type=int, default=None, help="commands to run (default 2000, or unlimited with --duration)")
    ap.add_argument("--duration", type=float, default=None, help="stop generating after S seconds")
    ap.add_argument("--clients", type=int, default=2, help="logical clients (connections per side), default 2")
    ap.add_argument("--flush-first", action="store_true", help="FLUSHALL both sides before starting")
    ap.add_argument("--minimize", dest="minimize", action="store_true", default=True,
                    help="minimize the first disagreement (default)")
    ap.add_argument("--no-minimize", dest="minimize", action="store_false")
    ap.add_argument("--minimize-budget", type=float, default=120.0, help="seconds for minimizing (default 120)")
    ap.add_argument("--keep-going", type=int, default=0, metavar="M",
                    help="after a disagreement, FLUSHALL both sides and go on, up to M disagreements")
    ap.add_argument("--max-sleep", type=float, default=8.0,
                    help="total seconds of waiting for short TTLs to run out (default 8)")
    ap.add_argument("--expiry-margin", default="0.15,0.3", metavar="BEFORE,AFTER",
                    help="send nothing from BEFORE s before to AFTER s after a TTL deadline (default 0.15,0.3)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a reply (default 10)")
    ap.add_argument("--exclude", default="", help="commands never to generate, comma separated (e.g. WATCH,SCAN;"
                    " MULTI: no transaction blocks)")
    ap.add_argument("--only", default="", help="generate only these commands, comma separated (transaction blocks,"
                    " if MULTI is listed, still use SELECT, WATCH and a few reads)")
    ap.add_argument("--fault", choices=sorted(FAULTS), help="corrupt the SUT's replies (tests the tester): " +
                    "; ".join("%s: %s" % (k, v[0]) for k, v in sorted(FAULTS.items())))
    ap.add_argument("-v", "--verbose", action="store_true", help="print every command and reply (stderr)")
    args = ap.parse_args()
    if args.clients < 1:
        ap.error("--clients must be at least 1")
    try:
        before, after = (float(x) for x in args.expiry_margin.split(","))
    except ValueError:
        ap.error("--expiry-margin: expected BEFORE,AFTER in seconds")
    seed = args.seed if args.seed is not None else int(time.time() * 1000) % 1000000007
    max_ops = args.ops if args.ops is not None else (None if args.duration else 2000)
    exclude = {x.strip().upper() for x in args.exclude.split(",") if x.strip()}
    if args.only.strip():
        only = {x.strip().upper() for x in args.only.split(",") if x.strip()}
        exclude |= ({n[2:].upper() for n in dir(Gen) if n.startswith("c_")} | {"MULTI", "WATCH"}) - only

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    gen = Gen(seed, args.clients, args.max_sleep, exclude)
    ex = Executor(args.ref, args.sut, args.clients, args.timeout, before, after,
                  FAULTS[args.fault][1] if args.fault else None, args.verbose)
    print("difftest: seed %d, %s ops%s, %d clients, ref %s:%d, SUT %s%s" % (
        seed, max_ops if max_ops is not None else "unlimited",
        ", %.0f s" % args.duration if args.duration else "", args.clients, args.ref[0], args.ref[1],
        " ".join("%s:%d" % a for a in args.sut), ", fault %s" % args.fault if args.fault else ""), flush=True)
    try:
        ex.connect()
        if ex.sut_down():
            print("difftest: cannot use the SUT: %s" % ex.sut_down()[0])
            return 2
        # a cluster agrees its feature level (kv/README.md "Feature levels")
        # within a second or two of starting: LMPOP and ZMPOP are unknown
        # until then
        for c in ex.clients:
            deadline = time.time() + 15
            while True:
                info = c.sut.call([b"INFO", b"server"])
                text = info[1].decode("latin-1") if info[0] == "$" else ""
                have = dict(l.split(":", 1) for l in text.split("\r\n") if ":" in l)
                if "rabia_feature_level" not in have or \
                        int(have["rabia_feature_level"]) >= int(have["rabia_offered_feature_level"]):
                    break
                if time.time() > deadline:
                    print("difftest: the SUT stays at feature level %s (offered %s): LMPOP and ZMPOP will differ"
                          % (have["rabia_feature_level"], have["rabia_offered_feature_level"]))
                    break
                time.sleep(0.1)
        if args.flush_first:
            for note in ex.flushall():
                print("difftest: " + note)
        else:
            n = ex.clients[0].ref.call([b"DBSIZE"])
            if n != (":", 0):
                print("difftest: warning: the reference's database 0 is not empty (%s); use --flush-first" % fmt(n))
    except RefError as e:
        print("difftest: cannot use the reference: %s" % e)
        return 2

    t0 = time.time()
    last_progress = t0
    ops = []
    segment = 0
    first = None
    diffs = documented = 0
    doc_names = collections.Counter()
    commands = 0
    try:
        while (max_ops is None or len(ops) < max_ops) and (args.duration is None or time.time() - t0 < args.duration):
            op = gen.next_op()
            ops.append(op)
            res = ex.step(op)
            if res.status in ("sleep", "skip"):
                continue
            commands += 1
            if res.status == "doc":
                documented += 1
                doc_names[res.doc] += 1
            elif res.status == "diff":
                diffs += 1
                print(describe(seed, len(ops) - 1, op, res), flush=True)
                if first is None:
                    first = ops[segment:]
                if diffs > args.keep_going:
                    break
                print("difftest: FLUSHALL both sides and going on (--keep-going)", flush=True)
                for note in ex.reset():
                    print("difftest: " + note)
                gen.reset_clients()
                segment = len(ops)
            if time.time() - last_progress > 10:
                last_progress = time.time()
                log("difftest: %d commands, %d disagreements so far (%.0f s)" % (commands, diffs, last_progress - t0))
    except RefError as e:
        print("difftest: the reference failed: %s" % e)
        return 2
    elapsed = time.time() - t0
    print("difftest: ran %d commands in %.1f s (%.1f s waiting for TTLs to run out, %.1f s waiting around deadlines;"
          " %d lexicographic ranges of sorted sets with different scores skipped: unspecified in Redis)"
          % (commands, elapsed, ex.slept, ex.waited, ex.skipped))
    for name, n in sorted(doc_names.items()):
        print("difftest: documented difference %r skipped %d times: %s" % (name, n, DOCUMENTED[name][1]))

    if first is not None and args.minimize:
        print("difftest: minimizing (%d commands, budget %.0f s)..." % (len(first), args.minimize_budget), flush=True)
        m = Minimizer(ex, args.minimize_budget, log)
        m.verbose = args.verbose
        try:
            best, note = m.run(first)
            if note:
                print("difftest: " + note)
            if best is not None:
                # confirm, and record the arguments and replies of the reproducer
                m.deadline = time.time() + 120
                ok = sum(1 for _ in range(3) if m.check(best) is not None)
                print_reproducer(ex, best, args)
                if m.last is not None:
                    print("  last command: reference %s, SUT %s" % (fmt(m.last.ref), fmt(m.last.sut)))
                print("difftest: the reproducer disagreed on %d of 3 replays (%d replays in all, %.1f s)"
                      % (ok, m.replays, time.time() - m.t0))
        except (RefError, OutOfBudget) as e:
            print("difftest: minimizing stopped: %s" % (e or "time budget"))
    ex.close()
    print("difftest: %d commands, %d disagreements (%d documented differences skipped)" % (commands, diffs, documented))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
