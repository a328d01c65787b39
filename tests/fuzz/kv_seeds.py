#!/usr/bin/env python3
"""Seed inputs for fuzz_kv, fuzz_resp and fuzz_acl, written at build time.

    kv_seeds.py kv DIR     programs in fuzz_kv's encoding (tests/fuzz/fuzz_kv.c)
    kv_seeds.py resp DIR   client streams for fuzz_resp
    kv_seeds.py acl DIR    ACL files and operations for fuzz_acl
    kv_seeds.py match DIR  pattern calls for fuzz_match

fuzz_kv reads its input as a program whose commands are picked from the
command table by index; from an empty corpus it seldom builds a command
that does anything (a script with its number of keys, a sorted set range
with valid bounds). These seeds spell commands out by name (a 0xff byte,
the name, the argument count, each argument as raw bytes) in programs of
a few dozen commands per type, so the fuzzer starts from states with every
encoding and mutates from there. They are generated rather than kept in
the tree so that they follow the harness's encoding."""
import os
import sys

RAW = 0xE0  # gen_arg: kind >= 224, then a length byte and the bytes


def arg(a):
    b = a if isinstance(a, bytes) else str(a).encode()
    assert len(b) < 256, b
    return bytes([RAW, len(b)]) + b


def cmd(*argv):
    name = argv[0].encode()
    assert len(argv) - 1 < 16 and len(name) < 32
    # what = 64 (a command from gen_cmd), then 0xff: by name
    return bytes([64, 0xFF, len(name)]) + name + bytes([len(argv) - 1]) + b"".join(arg(a) for a in argv[1:])


def cmd_in_txn(*argv):
    name = argv[0].encode()
    return bytes([0xFF, len(name)]) + name + bytes([len(argv) - 1]) + b"".join(arg(a) for a in argv[1:])


def txn(*cmds, watch=False):
    # what 24..31: TXN; 32..39: TXNW with the versions of the last WATCHVER
    assert 1 <= len(cmds) <= 6
    return bytes([32 if watch else 24, len(cmds) - 1]) + b"".join(cmd_in_txn(*c) for c in cmds)


def tick(ms):
    return bytes([1, ms])  # a new batch, the clock ms later


def secs(s):
    return bytes([8, s])  # a new batch, the clock s seconds later


RESTORE = bytes([16])


def db(n, *argv):
    return bytes([40]) + cmd_in_txn(*argv) + bytes([n])


def program(*steps):
    return b"\x00" + b"".join(steps)  # first byte even: a program


def many(n, f):
    return b"".join(f(i) for i in range(n))


def kv_seeds():
    p = {}
    p["strings"] = program(
        cmd("set", "k0", "hello"), cmd("append", "k0", " world"), cmd("getrange", "k0", 0, 4),
        cmd("setrange", "k0", 20, "x"), cmd("strlen", "k0"), cmd("incr", "k1"), cmd("incrby", "k1", -5),
        cmd("incrbyfloat", "k1", "1.5"), cmd("mset", "k2", "a", "k3", "b"), cmd("msetnx", "k2", "c", "k4", "d"),
        cmd("getset", "k2", "z"), cmd("getdel", "k3"), cmd("set", "k5", "v", "EX", 10), tick(200),
        cmd("getex", "k5", "PX", 50), tick(100), cmd("get", "k5"), cmd("set", "k5", "v", "NX", "GET"),
        cmd("lcs", "k0", "k2"), cmd("lcs", "k0", "k2", "IDX", "MINMATCHLEN", 1, "WITHMATCHLEN"),
        cmd("setnx", "k4", "q"), cmd("decrby", "k1", 3), RESTORE, cmd("mget", "k0", "k1", "k2", "k9"))
    p["bitmaps"] = program(
        cmd("setbit", "k0", 7, 1), cmd("setbit", "k0", 100, 1), cmd("bitcount", "k0"),
        cmd("bitcount", "k0", 0, -1, "BIT"), cmd("bitpos", "k0", 1), cmd("bitpos", "k0", 0, 2, 10, "BIT"),
        cmd("getbit", "k0", 100), cmd("set", "k1", "\xff\x0f"), cmd("bitop", "AND", "k2", "k0", "k1"),
        cmd("bitop", "XOR", "k3", "k0", "k1"), cmd("bitop", "NOT", "k4", "k1"),
        cmd("bitfield", "k5", "SET", "u8", 0, 200, "INCRBY", "i16", 8, 300, "GET", "u8", 0),
        cmd("bitfield", "k5", "OVERFLOW", "SAT", "INCRBY", "u8", 0, 100, "OVERFLOW", "FAIL", "INCRBY", "u8", 0, 100),
        cmd("bitfield_ro", "k5", "GET", "i16", 8), RESTORE, cmd("bitcount", "k2", 0, 0))
    p["hll"] = program(
        many(40, lambda i: cmd("pfadd", "k0", *[f"e{i}-{j}" for j in range(14)])), cmd("pfcount", "k0"),
        many(8, lambda i: cmd("pfadd", "k1", *[f"f{i}-{j}" for j in range(14)])), cmd("pfcount", "k1", "k0"),
        cmd("pfmerge", "k2", "k1"), cmd("pfmerge", "k1", "k0"), cmd("get", "k2"),
        cmd("set", "k3", b"HYLL\x01\0\0\0" + b"\0" * 7 + b"\x80\x71\xa4\x83\x80\x4e\x55"),
        cmd("pfadd", "k3", "a"), cmd("append", "k3", "\x7f"), cmd("pfadd", "k3", "b", "c"), cmd("pfcount", "k3"),
        cmd("setrange", "k2", 20, "\x3f\x7f"), cmd("pfmerge", "k4", "k2"), RESTORE, cmd("pfcount", "k2", "k4"),
        many(100, lambda i: cmd("pfadd", "k5", *[f"g{i}-{j}" for j in range(14)])), cmd("pfcount", "k5"),
        cmd("pfmerge", "k1", "k5"), cmd("pfadd", "k5", "more"), cmd("setrange", "k5", 100, "\xff"),
        cmd("pfcount", "k5"), cmd("pfcount", "k5", "k1"), RESTORE, cmd("get", "k1"))
    p["geo"] = program(
        cmd("geoadd", "k0", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
        many(15, lambda i: cmd("geoadd", "k0", *sum([[f"{13 + (i * 7 + j) % 30 / 10}", f"{37 + (i + j) % 20 / 10}",
                                                      f"m{i}-{j}"] for j in range(4)], []))),
        cmd("geoadd", "k0", "NX", "CH", "180", "85.05112878", "ne", "-180", "-85.05112878", "sw"),
        cmd("geopos", "k0", "Palermo", "ne", "nope"), cmd("geohash", "k0", "sw", "Catania"),
        cmd("geodist", "k0", "Palermo", "Catania", "mi"),
        cmd("georadius", "k0", 15, 37, 200, "km", "WITHDIST", "WITHHASH", "WITHCOORD", "COUNT", 5, "DESC"),
        cmd("georadiusbymember", "k0", "Palermo", 100, "km", "STOREDIST", "k1", "COUNT", 3, "ANY"),
        cmd("geosearch", "k0", "FROMLONLAT", 14, 37.5, "BYBOX", 300, 200, "km", "ASC", "COUNT", 20),
        cmd("geosearchstore", "k2", "k0", "FROMMEMBER", "Catania", "BYRADIUS", 20000, "km"),
        cmd("zadd", "k0", "-5", "neg", "1e300", "huge", "inf", "pinf"), cmd("geopos", "k0", "neg", "huge", "pinf"),
        cmd("georadius_ro", "k2", 0, 0, 20000, "km", "WITHDIST"), RESTORE,
        cmd("geosearch", "k1", "FROMMEMBER", "m1-1", "BYRADIUS", 500, "mi", "WITHCOORD"), cmd("zrange", "k2", 0, -1))
    p["sort"] = program(
        cmd("rpush", "k0", 3, 1, 2, 10, -5, "1.5", "b\0z", ""), cmd("sadd", "k1", 5, 3, "x", "y"),
        cmd("zadd", "k2", 3, "c", 1, "a", 2, "b"), cmd("mset", "w_3", 30, "w_1", 10, "w_a", "z", "w_b", "y"),
        cmd("hset", "h_1", "f", "one", "g", 7), cmd("sort", "k0"), cmd("sort", "k0", "ALPHA", "DESC", "LIMIT", 1, 3),
        cmd("sort", "k0", "BY", "w_*", "GET", "#", "GET", "h_*->f", "STORE", "k3"),
        cmd("sort", "k1", "BY", "nosort", "STORE", "k4"), cmd("sort", "k2", "BY", "nosort", "DESC", "LIMIT", 1, 1),
        cmd("sort", "k2", "BY", "w_*", "ALPHA", "LIMIT", 0, 2), cmd("sort_ro", "k1", "ALPHA", "GET", "w_*"),
        cmd("sort", "k0", "BY", "h_*->g", "GET", "h_*->", "LIMIT", -1, 100), RESTORE,
        cmd("sort", "k3", "ALPHA", "STORE", "k3"), cmd("lrange", "k3", 0, -1), cmd("sort", "k9", "STORE", "k4"))
    p["lists"] = program(
        cmd("rpush", "k0", *[f"v{i}" for i in range(11)]),
        many(14, lambda i: cmd("lpush", "k0", *[f"w{i}-{j}-" + "x" * (i * 4) for j in range(8)])),
        cmd("llen", "k0"), cmd("lrange", "k0", 5, 20), cmd("lindex", "k0", -3), cmd("lset", "k0", 4, "s"),
        cmd("linsert", "k0", "BEFORE", "v3", "ins"), cmd("lrem", "k0", -2, "v1"), cmd("ltrim", "k0", 2, 90),
        cmd("lpos", "k0", "v5", "RANK", -1, "COUNT", 0, "MAXLEN", 50), cmd("rpoplpush", "k0", "k1"),
        cmd("lmove", "k0", "k1", "LEFT", "RIGHT"), cmd("lmpop", 2, "k9", "k0", "RIGHT", "COUNT", 3),
        cmd("blpop", "k1", 0), cmd("lpop", "k0", 5), RESTORE, cmd("rpop", "k1", 2), cmd("lrange", "k1", 0, -1))
    p["hashes"] = program(
        cmd("hset", "k0", "f1", "v1", "f2", "v2", "f3", "3"), cmd("hincrby", "k0", "f3", 10),
        cmd("hincrbyfloat", "k0", "f4", "2.5"), cmd("hsetnx", "k0", "f1", "x"),
        many(20, lambda i: cmd("hset", "k1", *sum([[f"field{i}-{j}", "y" * (i * 5)] for j in range(5)], []))),
        cmd("hgetall", "k0"), cmd("hmget", "k1", "field3-1", "nope"), cmd("hkeys", "k0"), cmd("hvals", "k0"),
        cmd("hstrlen", "k1", "field7-2"), cmd("hrandfield", "k1", -5, "WITHVALUES"), cmd("hrandfield", "k0", 2),
        cmd("hscan", "k1", 0, "MATCH", "field1*", "COUNT", 20), cmd("hdel", "k1", "field0-0", "field0-1"),
        RESTORE, cmd("hlen", "k1"), cmd("hexists", "k0", "f2"))
    p["sets"] = program(
        cmd("sadd", "k0", 1, 2, 3, 4, 5, 100, -7), cmd("sadd", "k1", "a", "b", "c", 3, 4),
        many(30, lambda i: cmd("sadd", "k2", *[f"m{i}-{j}" for j in range(10)])),
        cmd("sinter", "k0", "k1"), cmd("sunion", "k0", "k1"), cmd("sdiff", "k0", "k1"),
        cmd("sinterstore", "k3", "k0", "k1"), cmd("sintercard", 2, "k0", "k1", "LIMIT", 1),
        cmd("smove", "k0", "k1", 5), cmd("srandmember", "k2", -20), cmd("spop", "k2", 15),
        cmd("smismember", "k0", 1, 9), cmd("sscan", "k2", 0, "COUNT", 50), cmd("srem", "k0", 1, 2),
        RESTORE, cmd("scard", "k2"), cmd("sdiffstore", "k4", "k2", "k0"), cmd("smembers", "k0"))
    p["zsets"] = program(
        cmd("zadd", "k0", 1, "a", 2, "b", "2.5", "c", "-inf", "m", "+inf", "z"),
        many(30, lambda i: cmd("zadd", "k1", *sum([[i * 10 + j, f"member{i}-{j}"] for j in range(5)], []))),
        cmd("zadd", "k1", "XX", "GT", "CH", 1000, "member3-1"), cmd("zincrby", "k0", 5, "a"),
        cmd("zrange", "k1", 10, 40), cmd("zrange", "k1", "(50", "+inf", "BYSCORE", "LIMIT", 2, 10, "WITHSCORES"),
        cmd("zrange", "k0", "[a", "(z", "BYLEX"), cmd("zrange", "k1", "+inf", "-inf", "BYSCORE", "REV"),
        cmd("zrangebyscore", "k1", 20, 80), cmd("zrevrangebyscore", "k1", 80, "(20", "LIMIT", 1, 3),
        cmd("zrangebylex", "k0", "-", "+"), cmd("zrevrangebylex", "k0", "[z", "[b"), cmd("zlexcount", "k0", "[a", "[c"),
        cmd("zcount", "k1", 5, 55), cmd("zrank", "k1", "member4-2"), cmd("zrevrank", "k1", "member4-2", "WITHSCORE"),
        cmd("zscore", "k0", "c"), cmd("zmscore", "k0", "a", "q"), cmd("zremrangebyrank", "k1", 0, 5),
        cmd("zremrangebyscore", "k1", 100, 150), cmd("zremrangebylex", "k0", "[m", "[m"),
        cmd("zunionstore", "k2", 2, "k0", "k1", "WEIGHTS", 2, 3, "AGGREGATE", "MAX"),
        cmd("zinterstore", "k3", 2, "k1", "k2"), cmd("zdiff", 2, "k1", "k0", "WITHSCORES"),
        cmd("zrangestore", "k4", "k1", 0, 10), cmd("zpopmin", "k1", 3), cmd("zpopmax", "k0"),
        cmd("zmpop", 2, "k9", "k1", "MIN", "COUNT", 2), cmd("zrandmember", "k1", -4, "WITHSCORES"),
        cmd("zscan", "k1", 0), RESTORE, cmd("zcard", "k1"), cmd("zrem", "k1", "member9-1"))
    p["keys"] = program(
        cmd("set", "k0", "a"), cmd("rpush", "k1", "x"), cmd("sadd", "k2", "y"), cmd("expire", "k0", 5),
        cmd("pexpire", "k1", 300, "NX"), cmd("expireat", "k2", 1767225700, "GT"), cmd("ttl", "k0"), cmd("pttl", "k1"),
        cmd("expiretime", "k2"), cmd("persist", "k0"), cmd("type", "k1"), cmd("rename", "k1", "k3"),
        cmd("renamenx", "k3", "k0"), cmd("copy", "k3", "k4", "REPLACE"), cmd("exists", "k0", "k3", "k9"),
        cmd("keys", "k*"), cmd("scan", 0, "MATCH", "k[0-3]", "COUNT", 5, "TYPE", "list"), cmd("randomkey"),
        cmd("dbsize"), cmd("touch", "k0"), cmd("object", "encoding", "k3"), cmd("unlink", "k4"), secs(10),
        cmd("sweep"), cmd("dbsize"), db(3, "set", "k0", "in three"), cmd("move", "k0", 3), cmd("swapdb", 0, 3),
        RESTORE, cmd("flushdb"), cmd("flushall"))
    p["txn"] = program(
        cmd("set", "k0", 1), cmd("rpush", "k1", "a"), cmd("watchver", "k0", "k1", "k2", "k3"),
        txn(("incr", "k0"), ("rpush", "k1", "b"), ("get", "k0"), ("lpop", "k9"), ("hset", "k0", "f", "v")),
        txn(("incr", "k0"),), cmd("watchver", "k0", "k1", "k2", "k3"),
        txn(("incr", "k0"), ("set", "k2", "x"), watch=True), txn(("del", "k0"), watch=True),
        RESTORE, txn(("multi",), ("exec",), ("watch", "k0")))
    p["scripts"] = program(
        cmd("eval", "return redis.call('set',KEYS[1],ARGV[1])", 1, "k0", "v"),
        cmd("eval", "return redis.call('get',KEYS[1])", 1, "k0"),
        cmd("eval", "return {1,'two',{3},redis.status_reply('ok'),redis.error_reply('bad'),false,true,3.7}", 0),
        cmd("eval", "local t = {} for i=1,50 do t[i]=redis.call('rpush',KEYS[1],i) end return #t", 1, "k1"),
        cmd("eval", "return redis.pcall('incr',KEYS[1])", 1, "k1"),
        cmd("eval", "redis.setresp(3) return redis.call('hgetall',KEYS[1])", 1, "k2"),
        cmd("eval", "return cjson.encode({a=1,b={1,2,3}})", 0), cmd("eval", "return cjson.decode(ARGV[1])", 0, "[1,2,{\"a\":3}]"),
        cmd("eval", "return bit.bxor(tonumber(ARGV[1]),255)", 0, "12"), cmd("eval", "return redis.sha1hex('x')", 0),
        cmd("eval", "return math.random(1,100)", 0), cmd("eval", "return string.rep('ab', 10)", 0),
        cmd("eval", "return tostring(redis.call('zadd',KEYS[1],1,'a'))", 1, "k3"),
        cmd("eval", "local ok, e = pcall(function() return redis.call('nosuch') end) return tostring(ok)", 0),
        cmd("eval", "x = 1", 0), cmd("eval", "while true do end", 0),
        cmd("eval", "local s='' for i=1,1e6 do s=s..'xxxxxxxxxx' end", 0),
        cmd("eval_ro", "return redis.call('get',KEYS[1])", 1, "k0"), cmd("eval_ro", "return redis.call('set','k0','x')", 0),
        cmd("script", "load", "return 42"), cmd("evalsha", "1fa00e76656cc152ad327c13fe365858fd7be306", 0),
        cmd("script", "exists", "1fa00e76656cc152ad327c13fe365858fd7be306", "00"), RESTORE,
        cmd("evalsha", "1fa00e76656cc152ad327c13fe365858fd7be306", 0), cmd("script", "flush"))
    p["mixed_small"] = program(
        cmd("set", "k0", "v"), cmd("lpush", "k0", "x"), cmd("hset", "k1", "f", "v"), cmd("zadd", "k1", 1, "a"),
        cmd("incr", "k2"), cmd("sadd", "k2", "m"), tick(5), RESTORE, cmd("ping"), cmd("echo", "hi"), cmd("time"))
    return p


def resp_seeds():
    # first byte: bulk limit choice (>= 32: the default), second: chunk size
    s = {}
    s["array"] = b"\x40\x03*3\r\n$3\r\nSET\r\n$2\r\nk0\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n"
    s["inline"] = b"\x40\x05PING\r\nSET k0 \"a b\\x41\\n\" 'c\\'d'\r\n\r\nGET k0\n"
    s["empty"] = b"\x40\x01*0\r\n*-1\r\n*1\r\n$0\r\n\r\n"
    s["big"] = b"\x02\x10*2\r\n$3\r\nGET\r\n$10\r\n0123456789\r\n"
    s["errors"] = b"\x40\x07*2\r\n$x\r\n*1\r\n$-5\r\n"
    s["neg"] = b"\x40\x02*1\r\n$-1\r\n*1048577\r\n"
    s["pipeline"] = b"\x40\x0b" + b"*2\r\n$4\r\nINCR\r\n$2\r\nk1\r\n" * 8
    return s


def acl_seeds():
    # ACL file lines, a NUL, then operations separated by NULs (arguments
    # split at 0x01)
    def ops(*cmds):
        return b"\0" + b"\0".join(b"\x01".join(a.encode() for a in c) for c in cmds)
    s = {}
    s["users"] = b"\n".join([
        b"user alice on >pw ~app:* %R~ro:* +@read +@write -flushall",
        b"user bob on nopass ~* &* +@all -@dangerous +config|get",
        b"user carol off #" + b"a" * 64 + b" resetkeys ~x allchannels -@all +get",
        b"user dave on >p1 <p1 >p2 allkeys allcommands nocommands +ping",
        b"# a comment", b"",
    ]) + ops(("set", "app:1", "v"), ("get", "ro:2"), ("flushall",), ("zunionstore", "app:d", "2", "app:a", "x"),
             ("eval", "return 1", "1", "app:k"), ("sintercard", "2", "app:a", "app:b", "LIMIT", "1"),
             ("mset", "app:a", "1", "ro:b", "2"), ("config", "get", "maxmemory"), ("blmpop", "0", "1", "app:l", "LEFT"))
    return s


def match_seeds():
    # op (0 find, 1 plain find, 2 match, 3 gmatch, 4 gsub string, 5 gsub
    # table, 6 gsub function, 7 gfind), init or max (0x80: none), pattern
    # length, pattern, replacement length, replacement, subject
    def call(op, pat, subj, repl=b"", arg=0x80):
        return bytes([op, arg & 0xFF, len(pat)]) + pat + bytes([len(repl)]) + repl + subj
    s = {}
    s["find_caps"] = call(0, b"(%a+)%s*=%s*(%d+)", b"  key = 42; other=7")
    s["find_anchor"] = call(0, b"^(h)(e)()llo$", b"hello", arg=1)
    s["plain"] = call(1, b"a.b", b"xxa.bxx", arg=-4)
    s["match_class"] = call(2, b"[%w_]+%f[%W]", b"hello_world! 12")
    s["match_balance"] = call(2, b"%b()", b"f(a(b)c)d")
    s["match_back"] = call(2, b"([\"'])(.-)%1", b"say 'hi' \"x\"")
    s["gmatch_words"] = call(3, b"%a+", b"one two  three")
    s["gmatch_empty"] = call(3, b"x*", b"axxbx")
    s["gsub_str"] = call(4, b"(%w+)=(%w+)", b"a=1, b=2", repl=b"%2=%1 %0 %%", arg=1)
    s["gsub_table"] = call(5, b"%a+", b"a ab b x c")
    s["gsub_fn"] = call(6, b"()(%a)(%d?)", b"a1 b c2 x")
    s["gfind_range"] = call(7, b"[^a-c%]]+", b"abcd]efa]")
    s["frontier_end"] = call(0, b"%a+%f[%z]", b"ab cd")
    s["lazy"] = call(2, b"<(.-)>.*-$", b"<a><b>cd")
    s["errors"] = call(0, b"(()%1[a", b"aaa")
    return s


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("kv", "resp", "acl", "match"):
        sys.exit("usage: kv_seeds.py kv|resp|acl|match DIR")
    seeds = {"kv": kv_seeds, "resp": resp_seeds, "acl": acl_seeds, "match": match_seeds}[sys.argv[1]]()
    os.makedirs(sys.argv[2], exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(sys.argv[2], name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
