#!/usr/bin/env python3
"""What client libraries ask around the commands, through redis-py
(python3-redis), against a 3-replica kv cluster (used by redis_lib.sh):

- INFO memory as redis-py parses it: used_memory, used_memory_human,
  maxmemory_policy (dashboards and `redis-cli --stat` read used_memory;
  BullMQ and Sidekiq read maxmemory_policy at start and warn of eviction
  when it is not "noeviction"). They were missing.
- INFO's role and redis_mode ("rabia-replica", "rabia": HELLO says master
  and standalone).
- INFO with several sections (INFO server memory): only the first was
  answered.
- PUBSUB CHANNELS, NUMSUB and NUMPAT (redis-py's pubsub_channels(),
  pubsub_numsub(), pubsub_numpat()), over this replica's subscriptions as
  PUBLISH's reply counts them (kv/README.md "Differences"). They were
  "unknown command".
- CLIENT UNBLOCK id [TIMEOUT|ERROR] (redis-py's client_unblock(), what a
  job queue stops a worker blocked in BLPOP with): the pop answers now, nil
  or the UNBLOCKED error, and the connection goes on. It was an unknown
  subcommand, and the worker stayed blocked until its timeout.

    redis_lib.py PORT1,PORT2,PORT3

Prints one line per failed check and a last line "redis_lib: ..."; exits 1
if any check failed.
"""
import os
import sys
import threading
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from it_check import expect as check, failed  # noqa: E402


def safe(fn):
    try:
        return fn()
    except Exception as e:  # the error is what the check compares
        return f"{type(e).__name__}: {e}"


def info_memory(c):
    m = safe(lambda: c.info("memory"))
    if isinstance(m, str):
        check("INFO memory", m, "a dict")
        return
    check("INFO memory used_memory is an int > 0",
          isinstance(m.get("used_memory"), int) and m["used_memory"] > 0, True)
    check("INFO memory used_memory_human", isinstance(m.get("used_memory_human"), str), True)
    check("INFO memory maxmemory_policy", m.get("maxmemory_policy"), "noeviction")
    check("INFO memory maxmemory", m.get("maxmemory"), 0)
    check("INFO memory maxmemory_human", m.get("maxmemory_human"), "0B")
    # several sections in one INFO (Redis 7.0; redis-py's info("server",
    # "memory"), what exporters send): each one asked, in the server's order
    # role and mode as HELLO says them: every replica takes writes
    # (HAProxy's usual Redis health check expects role:master)
    hello = safe(lambda: c.execute_command("HELLO", "2"))
    hello = dict(zip(hello[::2], hello[1::2])) if isinstance(hello, list) else {}
    check("INFO replication role = HELLO's role = master",
          (safe(lambda: c.info("replication").get("role")), hello.get(b"role")), ("master", b"master"))
    check("INFO server redis_mode = HELLO's mode = standalone",
          (safe(lambda: c.info("server").get("redis_mode")), hello.get(b"mode")), ("standalone", b"standalone"))
    check("INFO memory server CLIENTS: those sections, no other",
          safe(lambda: sorted(k for k in c.execute_command("INFO", "memory", "server", "CLIENTS")
                              if k in ("redis_version", "used_memory", "connected_clients", "total_connections_received"))),
          ["connected_clients", "redis_version", "used_memory"])
    check("INFO default commandstats: the default sections and commandstats",
          safe(lambda: sorted(k for k in c.info("default", "commandstats")
                              if k in ("redis_version", "used_memory", "cmdstat_info"))),
          ["cmdstat_info", "redis_version", "used_memory"])


def pubsub(p1, p2):
    c1, c2 = redis.Redis(port=p1), redis.Redis(port=p2)
    subs = []
    for i in range(3):
        ps = redis.Redis(port=p1).pubsub()
        ps.subscribe("news", f"ch{i}")
        ps.psubscribe("n*", "p?")
        subs.append(ps)
    gone = redis.Redis(port=p1).pubsub()
    gone.subscribe("gone")
    gone.unsubscribe("gone")
    subs.append(gone)
    for ps in subs:  # every confirmation read: the subscriptions are in place
        while ps.get_message(timeout=0.2):
            pass
    check("PUBSUB NUMSUB", safe(lambda: c1.pubsub_numsub("news", "ch1", "nope", "news", "gone")),
          [(b"news", 3), (b"ch1", 1), (b"nope", 0), (b"news", 3), (b"gone", 0)])
    check("PUBSUB NUMSUB (no channels)", safe(lambda: c1.pubsub_numsub()), [])
    check("PUBSUB NUMPAT (distinct patterns)", safe(lambda: c1.pubsub_numpat()), 2)
    check("PUBSUB CHANNELS", safe(lambda: sorted(c1.pubsub_channels())), [b"ch0", b"ch1", b"ch2", b"news"])
    check("PUBSUB CHANNELS ch*", safe(lambda: sorted(c1.pubsub_channels("ch*"))), [b"ch0", b"ch1", b"ch2"])
    check("PUBSUB SHARDNUMSUB", safe(lambda: c1.execute_command("PUBSUB", "SHARDNUMSUB", "news")), [b"news", 0])
    check("PUBSUB CHANNELS a b (Redis 7.0's error)", safe(lambda: c1.execute_command("PUBSUB", "CHANNELS", "a", "b")),
          "ResponseError: unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.")
    # another replica counts its own subscribers, as its PUBLISH does
    check("PUBSUB NUMSUB at replica 2", safe(lambda: c2.pubsub_numsub("news")), [(b"news", 0)])
    check("PUBLISH at replica 1 counts its subscribers", safe(lambda: c1.publish("news", "x")), 6)
    for ps in subs:
        ps.close()
    got = None
    for _ in range(50):  # the closes reach the replica
        got = safe(lambda: (c1.pubsub_numsub("news"), c1.pubsub_numpat(), c1.pubsub_channels()))
        if got == ([(b"news", 0)], 0, []):
            break
        time.sleep(0.05)
    check("PUBSUB after every subscriber left", got, ([(b"news", 0)], 0, []))


def unblock(p1, p2):
    c = redis.Redis(port=p1)
    c.delete("jobs")
    for how, want in (((), None), (("ERROR",), "ResponseError: UNBLOCKED client unblocked via CLIENT UNBLOCK")):
        w = redis.Redis(port=p1, single_connection_client=True, socket_timeout=20)
        wid = w.client_id()
        got = []

        def worker():
            got.append(safe(lambda: w.blpop("jobs", 10)))
            got.append(safe(lambda: w.incr("after_unblock")))  # the connection goes on

        t = threading.Thread(target=worker)
        t.start()
        for _ in range(100):  # parked: CLIENT LIST's flag b
            if safe(lambda: c.client_list(client_id=[str(wid)])[0]["flags"]) == "b":
                break
            time.sleep(0.05)
        t0 = time.monotonic()
        check(f"CLIENT UNBLOCK {' '.join(how)}", safe(lambda: c.execute_command("CLIENT", "UNBLOCK", wid, *how)), 1)
        t.join(15)
        check(f"BLPOP unblocked with {how or 'TIMEOUT'} answers at once", time.monotonic() - t0 < 5, True)
        check(f"BLPOP unblocked with {how or 'TIMEOUT'}", got[:1], [want])
        check(f"the unblocked connection's next command ({how or 'TIMEOUT'})", isinstance(got[1:2] and got[1], int), True)
        w.close()
    check("CLIENT UNBLOCK of a client not blocked", safe(lambda: c.execute_command("CLIENT", "UNBLOCK", c.client_id())), 0)
    check("CLIENT UNBLOCK bad reason", safe(lambda: c.execute_command("CLIENT", "UNBLOCK", 1, "NOW")),
          "ResponseError: CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    check("a push after the unblock stays in the list",
          safe(lambda: (redis.Redis(port=p2).rpush("jobs", "j1"), c.lrange("jobs", 0, -1))), (1, [b"j1"]))


def main():
    ports = [int(p) for p in sys.argv[1].split(",")]
    c = redis.Redis(port=ports[0], socket_timeout=10)
    info_memory(c)
    pubsub(ports[0], ports[1])
    unblock(ports[0], ports[1])
    if failed:
        print(f"redis_lib: {len(failed)} checks failed: {', '.join(failed)}")
        sys.exit(1)
    print("redis_lib: INFO memory's fields, PUBSUB CHANNELS/NUMSUB/NUMPAT and CLIENT UNBLOCK as redis-py uses them")


main()
