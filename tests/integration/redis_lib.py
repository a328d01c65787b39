#!/usr/bin/env python3
"""What client libraries ask around the commands, through redis-py
(python3-redis), against a 3-replica kv cluster (used by redis_lib.sh):

- INFO memory as redis-py parses it: used_memory, used_memory_human,
  maxmemory_policy (dashboards and `redis-cli --stat` read used_memory;
  BullMQ and Sidekiq read maxmemory_policy at start and warn of eviction
  when it is not "noeviction"). They were missing.

    redis_lib.py PORT1,PORT2,PORT3

Prints one line per failed check and a last line "redis_lib: ..."; exits 1
if any check failed.
"""
import sys

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


def main():
    ports = [int(p) for p in sys.argv[1].split(",")]
    c = redis.Redis(port=ports[0], socket_timeout=10)
    info_memory(c)
    if failed:
        print(f"redis_lib: {len(failed)} checks failed: {', '.join(failed)}")
        sys.exit(1)
    print("redis_lib: INFO memory's fields as redis-py reads them")


main()
