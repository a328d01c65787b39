#!/usr/bin/env bash
# Per-type micro-benchmarks of the KV state machine next to redis-server's
# figures, in one run (issue: "Micro-benchmarks per type with the ops/s
# next to redis-server's from redis-benchmark where it has a test for the
# command"):
#   ours:  bench/bench_kv.cc (rabia_microbench, the KV/ benchmarks), each
#          benchmark in its own process, so that one that aborts (a command
#          not implemented, a wrong reply) costs only its own row;
#   Redis: a redis-server 7 (no persistence) on a free port, driven by
#          redis-benchmark -d 100 -r 100000 -n $REQUESTS -P 64 -c 1.
# Prints one table and writes it to bench/results/kv_micro.csv and .md.
#
#   bench/kv_vs_redis.sh
# Environment:
#   BENCH_BIN   rabia_microbench to run (default: build it in $BUILD_DIR)
#   BUILD_DIR   default build-bench (Release: -O2 -g, assertions on); JOBS (2)
#   MIN_TIME    --benchmark_min_time per benchmark, seconds (0.5)
#   REPS        repetitions per benchmark; > 1 reports the median (1)
#   REQUESTS    redis-benchmark -n (200000)
#   SERVER_CPU  CPU of redis-server and of our benchmarks (0)
#   CLIENT_CPU  CPU of redis-benchmark (1)
# With one CPU nothing is pinned.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
min_time=${MIN_TIME:-0.5}
reps=${REPS:-1}
requests=${REQUESTS:-200000}
out_dir=$root/bench/results
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kv-vs-redis.XXXXXX")
redis_pid=
cleanup() {
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
for tool in redis-server redis-benchmark redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "$tool missing (apt-get install redis-server python3)" >&2; exit 1; }
done

if [ -z "${BENCH_BIN:-}" ]; then
  build=${BUILD_DIR:-build-bench}
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"${JOBS:-2}" --target rabia_microbench >/dev/null
  BENCH_BIN=$build/bench/rabia_microbench
fi
[ -x "$BENCH_BIN" ] || { echo "no benchmark binary at $BENCH_BIN" >&2; exit 1; }

# Placement: redis-server and redis-benchmark on different CPUs; ours on
# the server's CPU, run before redis-server starts (never at the same time).
ncpu=$(nproc)
if [ "$ncpu" -ge 2 ]; then
  server_cpu=${SERVER_CPU:-0}
  client_cpu=${CLIENT_CPU:-1}
  pin_server=(taskset -c "$server_cpu")
  pin_client=(taskset -c "$client_cpu")
  placement="rabia_microbench (ours) on CPU $server_cpu, alone; then redis-server on CPU $server_cpu and redis-benchmark on CPU $client_cpu ($ncpu CPUs)"
else
  pin_server=()
  pin_client=()
  placement="one CPU: nothing pinned; redis-server and redis-benchmark share it"
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "placement: $placement"
echo "load average at start: $load_before"

# ---- ours: one process per benchmark
ours_cmd=("${pin_server[@]}" "$BENCH_BIN" --benchmark_min_time="$min_time" --benchmark_format=json)
if [ "$reps" -gt 1 ]; then
  ours_cmd+=(--benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true)
fi
mkdir -p "$tmp/ours"
mapfile -t names < <("$BENCH_BIN" --benchmark_list_tests --benchmark_filter='^KV/')
[ "${#names[@]}" -gt 0 ] || { echo "no KV/ benchmarks in $BENCH_BIN" >&2; exit 1; }
i=0
for name in "${names[@]}"; do
  i=$((i + 1))
  f=$tmp/ours/$(printf '%03d' "$i")
  echo "$name" >"$f.name"
  if "${ours_cmd[@]}" --benchmark_filter="^${name}\$" >"$f.json" 2>"$f.err"; then
    printf '  ours %-48s ok\n' "$name"
  else
    printf '  ours %-48s FAILED: %s\n' "$name" "$(grep -m1 FATAL "$f.err" || tail -n1 "$f.err")"
  fi
done

# ---- Redis: its own server on a free port, stopped by PID
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${pin_server[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize no --logfile "$tmp/redis.log" --dir "$tmp" &
redis_pid=$!
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$port" ping >/dev/null || { echo "redis-server did not start" >&2; cat "$tmp/redis.log" >&2; exit 1; }
redis_version=$(redis-cli -p "$port" info server | tr -d '\r' | sed -n 's/^redis_version://p')
echo "redis-server $redis_version pid $redis_pid: $(taskset -cp "$redis_pid" 2>/dev/null | sed 's/.*: //;s/^/CPUs /')"
tests=set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset
redis_cmd=(redis-benchmark -p "$port" -t "$tests" -d 100 -r 100000 -n "$requests" -P 64 -c 1 --csv)
echo "running: ${pin_client[*]} ${redis_cmd[*]}"
"${pin_client[@]}" "${redis_cmd[@]}" >"$tmp/redis.csv" 2>"$tmp/redis.err"
# geo: redis-benchmark has no test for it; 10,000 places over the same 3 x 2
# degrees as ours (KV/geo/), then each search with one fixed centre (its
# arguments cannot be drawn at random: ours draw the centre per operation)
python3 - >"$tmp/geo.resp" <<'PY'
import random, sys
r = random.Random(8000000)
out = []
for i in range(10000):
    a = [b"GEOADD", b"geo:big", b"%.6f" % (13.0 + 3.0 * r.random()), b"%.6f" % (36.5 + 2.0 * r.random()), b"member:%09d" % i]
    out.append(b"*5\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a))
# SORT's list: 1,000 values of 100 bytes; and 100 integers
vals = [bytes(97 + r.randrange(26) for _ in range(100)) for _ in range(1000)]
a = [b"RPUSH", b"list:sort"] + vals
out.append(b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a))
a = [b"SADD", b"set:ints"] + [b"%d" % i for i in range(100)]
out.append(b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a))
sys.stdout.buffer.write(b"".join(out))
PY
redis-cli -p "$port" --pipe <"$tmp/geo.resp" >/dev/null
geo_searches=("GEOSEARCH geo:big FROMLONLAT 14.5 37.5 BYRADIUS 10 km ASC COUNT 10 WITHDIST"
              "GEOSEARCH geo:big FROMLONLAT 14.5 37.5 BYBOX 20 20 km" "GEOPOS geo:big member:000004242"
              "SORT list:sort ALPHA LIMIT 0 10" "SORT set:ints DESC")
for g in "${geo_searches[@]}"; do
  # shellcheck disable=SC2086
  "${pin_client[@]}" redis-benchmark -p "$port" -n "$((requests / 4))" -P 64 -c 1 --csv $g >>"$tmp/redis.csv" 2>>"$tmp/redis.err"
done
kill "$redis_pid"
wait "$redis_pid" 2>/dev/null || true
redis_pid=

# ---- the table
mkdir -p "$out_dir"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain -- kv bench 2>/dev/null)" ]; then commit="$commit + uncommitted changes in kv/ or bench/"; fi
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
python3 - "$tmp" "$out_dir" <<EOF
import csv, glob, json, os, sys
tmp, out_dir = sys.argv[1], sys.argv[2]

# Ours: items_per_second (operations applied per second of CPU time).
ours = {}
for nf in sorted(glob.glob(os.path.join(tmp, "ours", "*.name"))):
    base = nf[:-5]
    name = open(nf).read().strip()
    rate, status = None, ""
    try:
        runs = json.load(open(base + ".json"))["benchmarks"]
        pick = [b for b in runs if b.get("aggregate_name") == "median"] or runs
        rate = pick[0]["items_per_second"]
    except Exception:
        err = open(base + ".err").read().splitlines()
        fatal = [l for l in err if "FATAL" in l]
        status = (fatal[0].split("FATAL: ", 1)[-1] if fatal else (err[-1] if err else "no result"))
    ours[name] = (rate, status)

redis = {}
with open(os.path.join(tmp, "redis.csv")) as f:
    for row in csv.reader(f):
        if row and row[0] != "test":
            redis[row[0]] = float(row[1])

# command, our benchmark, what ours does, redis-benchmark test, what it does
R = "redis-benchmark"
rows = [
    ("SET", "KV/string/SET", "overwrite 1 of 100k keys, 100 B", "SET", "SET key:rand (100k), 100 B"),
    ("GET (hit)", "KV/string/GET_hit", "1 of 100k keys, 100 B", "GET", "GET key:rand (the keys SET made)"),
    ("INCR", "KV/string/INCR", "1 of 100k integer keys", "INCR", "INCR counter:rand (100k)"),
    ("MSET (10 keys)", "KV/string/MSET_10keys", "10 of 100k keys, 100 B", "MSET (10 keys)", "10 x key:rand, 100 B"),
    ("MULTI + 5 SET + EXEC (TXN)", "KV/txn/TXN_5xSET", "one TXN op, 5 SETs", None, ""),
    ("EXPIRE", "KV/keys/EXPIRE", "1 of 100k keys with a TTL", None, ""),
    ("TTL", "KV/keys/TTL", "1 of 100k keys with a TTL", None, ""),
    ("HSET", "KV/hash/HSET/fields:100", "overwrite 1 of 100 fields, 100 B", "HSET", "myhash element:rand (up to 100k fields), 100 B"),
    ("HGET", "KV/hash/HGET/fields:100", "1 of 100 fields, 100 B", None, ""),
    ("HSET (small hashes)", "KV/hash/HSET/small_x100k", "1 of 100k hashes of 4 fields, 32 B (compact)", None, ""),
    ("HGET (small hashes)", "KV/hash/HGET/small_x100k", "1 of 100k hashes of 4 fields, 32 B", None, ""),
    ("LPUSH", "KV/list/LPUSH/len:1000", "list of 1,000-2,000, 100 B", "LPUSH", "mylist, grows to n elements, 100 B"),
    ("RPUSH", "KV/list/RPUSH/len:1000", "list of 1,000-2,000, 100 B", "RPUSH", "mylist, grows by n more"),
    ("LPOP", "KV/list/LPOP/len:1000", "list of 500-1,000, 100 B", "LPOP", "mylist (2n elements before)"),
    ("RPOP", "KV/list/RPOP/len:1000", "list of 500-1,000, 100 B", "RPOP", "mylist (n elements before)"),
    ("LRANGE 0 99", "KV/list/LRANGE_0_99/len:1000", "list of 1,000, 100 B", "LRANGE_100 (first 100 elements)", "mylist of n, 100 B"),
    ("SADD (intset, present)", "KV/set/SADD/intset:100", "set of 100 integers", None, ""),
    ("SISMEMBER (intset)", "KV/set/SISMEMBER/intset:100", "set of 100 integers", None, ""),
    ("SMEMBERS (intset)", "KV/set/SMEMBERS/intset:100", "set of 100 integers", None, ""),
    ("SADD", "KV/set/SADD/members:10000", "set of 10k, member present", "SADD", "myset element:rand (up to 100k)"),
    ("SISMEMBER", "KV/set/SISMEMBER/members:10000", "set of 10k, hit", None, ""),
    ("SMEMBERS", "KV/set/SMEMBERS/members:10000", "set of 10k", None, ""),
    ("SPOP", "KV/set/SPOP/members:10000", "set of 5k-10k", "SPOP", "myset (what SADD made) until empty, then nil"),
    ("ZADD", "KV/zset/ZADD/members:10000", "new score for 1 of 10k", "ZADD", "myzset element:rand (up to 100k)"),
    ("ZSCORE", "KV/zset/ZSCORE/members:10000", "zset of 10k, hit", None, ""),
    ("ZRANGE 0 99 WITHSCORES", "KV/zset/ZRANGE_0_99_WITHSCORES/members:10000", "zset of 10k", None, ""),
    ("ZRANK", "KV/zset/ZRANK/members:10000", "zset of 10k, hit", None, ""),
    ("ZPOPMIN", "KV/zset/ZPOPMIN/members:10000", "zset of 5k-10k", "ZPOPMIN", "myzset (what ZADD made) until empty, then nil"),
    ("SORT ALPHA LIMIT 0 10", "KV/sort/SORT_ALPHA_LIMIT_0_10/len:1000", "list of 1,000, 100 B",
     "SORT list:sort ALPHA LIMIT 0 10", "list of 1,000, 100 B"),
    ("SORT DESC (intset)", "KV/sort/SORT_DESC/intset:100", "set of 100 integers", "SORT set:ints DESC", "set of 100 integers"),
    ("GEOADD", "KV/geo/GEOADD/members:10000", "new place for 1 of 10k places", None, ""),
    ("GEOPOS", "KV/geo/GEOPOS/members:10000", "1 of 10k places", "GEOPOS geo:big member:000004242", "1 of 10k places, always the same"),
    ("GEOSEARCH 10 km COUNT 10 WITHDIST", "KV/geo/GEOSEARCH_10km_COUNT_10/members:10000", "10k places over 3x2 degrees, random centre",
     "GEOSEARCH geo:big FROMLONLAT 14.5 37.5 BYRADIUS 10 km ASC COUNT 10 WITHDIST", "the same places, one centre"),
    ("GEOSEARCH BYBOX 20x20 km", "KV/geo/GEOSEARCH_BYBOX_20km/members:10000", "10k places over 3x2 degrees, random centre",
     "GEOSEARCH geo:big FROMLONLAT 14.5 37.5 BYBOX 20 20 km", "the same places, one centre"),
]
known = {r[1] for r in rows}
for name in ours:  # a benchmark added later still gets a row
    if name not in known:
        rows.append((name, name, "", None, ""))

def num(x):
    return "" if x is None else "%.0f" % x

table = []
for cmd, ob, odesc, rt, rdesc in rows:
    rate, status = ours.get(ob, (None, "not run (not in this binary)"))
    rr = redis.get(rt) if rt else None
    table.append((cmd, ob, rate, status, odesc, rt or "", rr, rdesc))

with open(os.path.join(out_dir, "kv_micro.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["command", "ours_benchmark", "ours_apply_ops_per_s", "ours_status", "ours_data",
                "redis_benchmark_test", "redis_ops_per_s", "redis_data"])
    for cmd, ob, rate, status, odesc, rt, rr, rdesc in table:
        w.writerow([cmd, ob, num(rate), status, odesc, rt, num(rr), rdesc])

def fmt(x):
    return "{:,.0f}".format(x)

md = []
md.append("# KV micro-benchmarks next to redis-server")
md.append("")
md.append("Written by \`bench/kv_vs_redis.sh\` (run $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit).")
md.append("")
md.append("**These are not the same measure.** *Ours* is \`rabia_sm_kv.apply\` called in-process")
md.append("on operations encoded beforehand (bench/bench_kv.cc): no network, no RESP parsing, no")
md.append("consensus, no client; operations per second of CPU time of one thread. *redis-server*")
md.append("is requests per second (wall clock) over a loopback TCP socket, measured by")
md.append("redis-benchmark with 64 requests pipelined on one connection (\`-P 64 -c 1\`): with")
md.append("pipelining the server reads, parses and answers 64 commands per system call, so the")
md.append("figure is close to the server's own per-command cost, but it still includes RESP")
md.append("parsing, the reply's encoding and the event loop (and redis-benchmark can be the")
md.append("bottleneck on the cheapest commands). The data differ too: redis-benchmark works on")
md.append("one key per type (\`mylist\`, \`myset\`, ...) grown by its own earlier tests, ours on")
md.append("collections of fixed size next to 100,000 string keys (columns *data*).")
md.append("")
md.append("| command | ours: apply ops/s (in-process) | redis-server ops/s (redis-benchmark) | ours: data | redis-benchmark test: data |")
md.append("|---|---:|---:|---|---|")
for cmd, ob, rate, status, odesc, rt, rr, rdesc in table:
    o = fmt(rate) if rate is not None else "aborted: " + status.replace("|", "/")
    r = fmt(rr) if rr is not None else ("(no test)" if not rt else "(no result)")
    md.append("| %s | %s | %s | %s | %s |" % (cmd, o, r, odesc, (rt + ": " + rdesc) if rt else ""))
md.append("")
md.append("How it ran:")
md.append("")
md.append("- machine: $cpu_model, $ncpu CPUs; load average at start $load_before")
md.append("- placement: $placement")
md.append("- ours: \`${ours_cmd[*]} --benchmark_filter='^<name>\$'\`, one process per benchmark")
md.append("  ($BENCH_BIN; Release build, -O2 -g, assertions on); each reply is checked (a")
md.append("  wrong or error reply aborts, and the row says why)")
md.append("- Redis: redis-server $redis_version \`--save '' --appendonly no\` on 127.0.0.1:<free port>;")
md.append("  \`${pin_client[*]} ${redis_cmd[*]}\`")
md.append("- redis-benchmark keys are \`key:\` + 12 digits (16 bytes), as ours; its random part")
md.append("  is drawn from 100,000 (-r), so $requests requests reach about 1 - e^(-n/100000) of")
md.append("  them: the first SET/SADD/ZADD/HSET requests add, the later ones overwrite (ours always")
md.append("  overwrite, or add a member already present: a steady state); GET misses the keys SET")
md.append("  never drew; SPOP and ZPOPMIN empty the set and then answer nil; LPOP and RPOP pop")
md.append("  real elements (LPUSH and RPUSH pushed 2n, LPOP and RPOP take n each).")
open(os.path.join(out_dir, "kv_micro.md"), "w").write("\n".join(md) + "\n")
print("\n".join(md))
EOF
echo
echo "written: bench/results/kv_micro.csv, bench/results/kv_micro.md"
