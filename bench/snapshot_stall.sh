#!/usr/bin/env bash
# How long a snapshot of a large state stalls the event loop (durable
# replicas: snapshots are written by a forked child, so the loop pays the
# fork, which copies page tables: about proportional to resident memory).
#   bench/snapshot_stall.sh [MiB of state]        (default 1024)
# Loads the state through replica 1 (64 KiB values), then lets a snapshot
# happen (snapshot-interval-s 15) while one client reads a small key in a loop
# at replica 1; prints each replica's fork time (INFO last_fork_us /
# max_fork_us), the snapshot file size, and the probe's latency percentiles.
# Data under $BENCH_DIR (default /var/tmp). Needs about 3x the state in RAM
# and 6x on disk.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-snap-bench.XXXXXX")
export RABIA_CLUSTER_DIR=$dir/c RABIA_RESP_BASE=16600 RABIA_CLIENT_BASE=17600 RABIA_PEER_BASE=17700
export RABIA_EXTRA_ARGS="--snapshot-interval-s 15 --max-log-size 17592186044416 --wal-segment-bytes 268435456 --reply-cache-bytes 1048576"
cleanup() { ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
./deploy/local-cluster.sh start 3 kv >/dev/null
keys=$((mib * 16)) # 64 KiB each
t0=$(date +%s.%N)
redis-benchmark -p 16601 -t set -d 65536 -r 100000000 -n "$keys" -c 8 -P 4 -q >/dev/null 2>&1 || true
t1=$(date +%s.%N)
sz=$(redis-cli -p 16601 DBSIZE)
echo "loaded $sz keys of 64 KiB (~$((sz / 16)) MiB) in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
rss() { awk '/VmRSS/ { print int($2 / 1024) }' "/proc/$(cat "$RABIA_CLUSTER_DIR/r$1.pid")/status"; }
echo "resident: $(rss 1) / $(rss 2) / $(rss 3) MiB"
before=$(redis-cli -p 16601 INFO | tr -d '\r' | sed -n 's/^snapshots://p')
redis-cli -p 16601 SET probe x >/dev/null
# one client, GET in a loop for 20 s: a snapshot (interval 15 s) falls inside
/usr/bin/python3 - <<'EOF'
import time, redis
r = redis.Redis(port=16601)
lat = []
end = time.time() + 20
while time.time() < end:
    t = time.perf_counter(); r.get("probe"); lat.append(time.perf_counter() - t)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] * 1e3
print(f"probe GET at replica 1 during the snapshot window: {len(lat)} reads, p50 {q(0.5):.3f} ms, "
      f"p99 {q(0.99):.3f} ms, p99.9 {q(0.999):.3f} ms, max {lat[-1]*1e3:.1f} ms")
EOF
for i in 1 2 3; do
  info=$(redis-cli -p $((16600 + i)) INFO | tr -d '\r')
  f() { sed -n "s/^$1://p" <<<"$info"; }
  snap=$(ls -l "$RABIA_CLUSTER_DIR/r$i/snap/"*.snap 2>/dev/null | awk '{ s = $5 } END { print int(s / 1048576) }')
  echo "replica $i: snapshots $(f snapshots) (before the probe: ${before:-?} at replica 1), last fork $(f last_fork_us) us, max fork $(f max_fork_us) us, newest snapshot file ${snap:-0} MiB"
done
