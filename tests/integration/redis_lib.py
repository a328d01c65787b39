#!/usr/bin/env python3
"""What client libraries ask around the commands, through redis-py
(python3-redis), against a 3-replica kv cluster (used by redis_lib.sh):

- INFO memory as redis-py parses it: used_memory, used_memory_human,
  maxmemory_policy (dashboards and `redis-cli --stat` read used_memory;
  BullMQ and Sidekiq read maxmemory_policy at start and warn of eviction
  when it is not "noeviction"). They were missing.
- PUBSUB CHANNELS, NUMSUB and NUMPAT (redis-py's pubsub_channels(),
  pubsub_numsub(), pubsub_numpat()), over this replica's subscriptions as
  PUBLISH's reply counts them (kv/README.md "Differences"). They were
  "unknown command".

    redis_lib.py PORT1,PORT2,PORT3

Prints one line per failed check and a last line "redis_lib: ..."; exits 1
if any check failed.
"""
import sys
import time

import redis

failed = []


def check(what, got, want):
    if got != want:
        failed.append(what)
        print(f"FAIL {what}: got {got!r}, want {want!r}")


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


def main():
    ports = [int(p) for p in sys.argv[1].split(",")]
    c = redis.Redis(port=ports[0], socket_timeout=10)
    info_memory(c)
    pubsub(ports[0], ports[1])
    if failed:
        print(f"redis_lib: {len(failed)} checks failed: {', '.join(failed)}")
        sys.exit(1)
    print("redis_lib: INFO memory's fields and PUBSUB CHANNELS/NUMSUB/NUMPAT as redis-py reads them")


main()
