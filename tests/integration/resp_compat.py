#!/usr/bin/env python3
"""Redis compatibility of the RESP front end as client libraries see it,
through redis-py (python3-redis), against a 3-replica kv cluster (used by
resp_compat.sh):

- The client id (CLIENT ID, HELLO's id, CLIENT LIST's id=) is below 2^53,
  so that a client whose integers are doubles (ioredis, node-redis: every
  JavaScript client) reads it exact and passes it back to CLIENT KILL ID
  and CLIENT UNBLOCK. It was a 63-bit hash (4135448689458452697): the id a
  JavaScript client sent back named no connection ("ERR No such client").
  Checked here by sending back the id as a double holds it.
- A connection command inside MULTI (INFO, CLIENT SETNAME, ...; Redis
  queues them, this server answers them at once and refuses them in MULTI,
  kv/README.md "Differences") gets an error naming the command and the fix
  (send it before MULTI or after EXEC; redis-py: pipeline(transaction=False)),
  not Redis's bare "Command not allowed inside a transaction". redis-py's
  default pipeline is a MULTI.
- CONFIG SET of a Redis parameter (notify-keyspace-events, maxmemory, ...)
  says it is not supported here (settings come from rabiad's config file);
  it said "Unknown option", as for a typo.
- ACL categories as Redis 7.0's: "-@slow" denies KEYS, FLUSHALL and
  FLUSHDB (they had no @slow), "-@dangerous" denies SORT and SORT_RO (not
  @dangerous here), CONFIG HELP is @slow only (it had CONFIG's @admin
  @dangerous).

    resp_compat.py PORT1,PORT2,PORT3

Prints one line per failed check and a last line "resp_compat: ...";
exits 1 if any check failed.
"""
import os
import sys
import threading
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from it_check import expect as check, failed  # noqa: E402


def as_double(i):
    """The integer a client that reads integers as doubles sends back."""
    return int(float(i))


ports = [int(p) for p in sys.argv[1].split(",")]

# ids of many connections on every replica: below 2^53, HELLO's and CLIENT
# LIST's the same as CLIENT ID's
conns = []
for p in ports:
    for _ in range(20):
        r = redis.Redis(port=p, socket_timeout=10, single_connection_client=True)
        conns.append((p, r, r.client_id()))
big = [i for _, _, i in conns if i >= 2**53]
check("client ids of 60 connections at or above 2^53", big[:3], [])
p, r, i = conns[0]
hello = r.execute_command("HELLO", "2")
check("HELLO's id is CLIENT ID's", hello[hello.index(b"id") + 1], i)
listed = r.execute_command("CLIENT", "LIST", "ID", i).decode()
check("CLIENT LIST ID lists it", listed.split(" ")[0], f"id={i}")

# CLIENT KILL ID with the id as a double holds it
victim_port, victim, vid = conns[1]
killer = redis.Redis(port=victim_port, socket_timeout=10)
check("CLIENT KILL ID (id read as a double)", killer.execute_command("CLIENT", "KILL", "ID", as_double(vid)), 1)

# CLIENT UNBLOCK with the id as a double: the BLPOP answers nil at once
bp, blocked, bid = conns[2]
got = {}


def pop():
    t0 = time.monotonic()
    got["v"] = blocked.blpop("resp_compat:nothing", timeout=8)
    got["s"] = time.monotonic() - t0


t = threading.Thread(target=pop)
t.start()
other = redis.Redis(port=bp, socket_timeout=10)
unblocked = 0
for _ in range(50):  # until the BLPOP is parked on its replica
    time.sleep(0.1)
    unblocked = other.client_unblock(as_double(bid))
    if unblocked:
        break
t.join(15)
check("CLIENT UNBLOCK (id read as a double)", unblocked, True)
check("the BLPOP answered nil at the unblock", (got.get("v"), got.get("s", 99) < 5), (None, True))

# a connection command in redis-py's default (MULTI) pipeline
r = redis.Redis(port=ports[0], socket_timeout=10)
pipe = r.pipeline()
pipe.set("resp_compat:k", 1)
pipe.info("server")
try:
    pipe.execute()
    check("INFO in a MULTI pipeline refused", "no error", "an error")
except redis.ResponseError as e:
    msg = str(e)
    check("INFO in MULTI: the error names it and the fix",
          ("'info'" in msg, "before MULTI or after EXEC" in msg, "pipeline(transaction=False)" in msg),
          (True, True, True))
check("the refused MULTI pipeline wrote nothing", r.get("resp_compat:k"), None)
pipe = r.pipeline(transaction=False)
pipe.set("resp_compat:k", 1)
pipe.info("server")
res = pipe.execute()
check("INFO in a pipeline without MULTI", (res[0], "redis_version" in res[1]), (True, True))
c = redis.Redis(port=ports[1], socket_timeout=10, single_connection_client=True)
c.execute_command("MULTI")
try:
    c.execute_command("CLIENT", "SETNAME", "x")
    check("CLIENT SETNAME in MULTI refused", "no error", "an error")
except redis.ResponseError as e:
    check("CLIENT SETNAME in MULTI: the error names it", "'client|setname' cannot be queued inside MULTI" in str(e),
          True)
try:
    c.execute_command("EXEC")
    check("EXEC after a refused command aborts", "no error", "EXECABORT")
except redis.ResponseError as e:
    check("EXEC after a refused command aborts", str(e).startswith("Transaction discarded"), True)

# CONFIG SET of a Redis parameter (a keyspace-notification listener's
# set-up, a maxmemory change): said to be unsupported, not "Unknown option"
for param, value in (("notify-keyspace-events", "Ex"), ("maxmemory", "2gb")):
    try:
        r.config_set(param, value)
        check(f"CONFIG SET {param} refused", "no error", "an error")
    except redis.ResponseError as e:
        check(f"CONFIG SET {param}: said to be unsupported", str(e).startswith(f"CONFIG SET '{param}' is not supported"),
              True)
try:
    r.config_set("no-such-parameter", "1")
except redis.ResponseError as e:
    check("CONFIG SET of an unknown name: Redis's error", str(e),
          "Unknown option or number of arguments for CONFIG SET - 'no-such-parameter'")

# ACL categories as Redis 7.0's (the cluster's acl-file, resp_compat.sh):
# "-@slow" denies KEYS, FLUSHALL, FLUSHDB; "-@dangerous" denies SORT and
# SORT_RO; CONFIG HELP is @slow only. Before, each was allowed or denied
# the other way.
def denied(user, *args):
    c = redis.Redis(port=ports[0], username=user, password="pw", socket_timeout=10)
    try:
        c.execute_command(*args)
        return False
    except redis.exceptions.NoPermissionError:
        return True
    except redis.ResponseError as e:
        return str(e).startswith("NOPERM")
    finally:
        c.close()


acl = [("no_slow", ("KEYS", "resp_compat:*"), True), ("no_slow", ("FLUSHDB",), True),
       ("no_slow", ("FLUSHALL",), True), ("no_slow", ("GET", "resp_compat:k"), False),
       ("no_dangerous", ("SORT", "resp_compat:l"), True), ("no_dangerous", ("SORT_RO", "resp_compat:l"), True),
       ("no_dangerous", ("LRANGE", "resp_compat:l", 0, -1), False), ("no_dangerous", ("CONFIG", "HELP"), False),
       ("no_dangerous", ("CONFIG", "GET", "maxmemory"), True)]
for user, args, want in acl:
    check(f"{user}: {' '.join(map(str, args))} denied", denied(user, *args), want)

if failed:
    print(f"resp_compat: {len(failed)} check(s) failed")
    sys.exit(1)
print("resp_compat: client ids below 2^53 (KILL ID, UNBLOCK by them), connection commands in MULTI named, CONFIG SET of Redis parameters named, ACL categories of KEYS FLUSH* SORT* CONFIG HELP")
