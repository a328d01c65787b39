#!/usr/bin/env bash
# The write-ahead log's commit rate next to fio on the same disk, one run:
# fio with O_DIRECT, the same block size, an fdatasync after every write,
# queue depth 1 (fio's sync engine), the same with three writers at once
# (three replicas on one disk) and with two writes in flight each, then bench/wal_commit.c (the ways a
# write can be made durable, and the log itself). Prints the ratio.
#   bench/wal_vs_fio.sh [seconds per case] [block]      (default 5, 4096)
# Data under $BENCH_DIR (default /var/tmp: a real disk).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
bs=${2:-4096}
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-wal-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
bin=${RABIA_WAL_BENCH:-build/bench/rabia_wal_bench}
[ -x "$bin" ] || { echo "$bin missing: cmake --build build --target rabia_wal_bench" >&2; exit 1; }
command -v fio >/dev/null || { echo "fio missing: apt-get install fio" >&2; exit 1; }
fio_json=$(fio --name=commit --filename="$dir/fio.dat" --size=256M --bs="$bs" --rw=write --direct=1 --fdatasync=1 \
  --ioengine=sync --iodepth=1 --runtime="$secs" --time_based --output-format=json 2>/dev/null)
summary='
import json, sys
j = json.load(sys.stdin)["jobs"][0]
w = j["write"]; s = j["sync"]
# a commit = the write + its fdatasync: latency percentiles of each, summed
wp = w["clat_ns"]["percentile"]; sp = s["lat_ns"]["percentile"]
print("%.0f %.0f %.0f" % (w["iops"], (wp["50.000000"] + sp["50.000000"]) / 1e3, (wp["99.000000"] + sp["99.000000"]) / 1e3))
'
read -r fio_iops fio_p50 fio_p99 <<<"$(/usr/bin/python3 -c "$summary" <<<"$fio_json")"
printf '%-26s %6s B  %9s commits/s  p50 %6s us  p99 %6s us   (write + fdatasync percentiles added)\n' "fio sync+fdatasync" "$bs" "$fio_iops" "$fio_p50" "$fio_p99"
# Three writers at once, each on its own file: what three replicas sharing
# one disk (a local cluster, bench/compare.sh) get from it.
fio3_json=$(fio --name=commit3 --directory="$dir" --size=64M --bs="$bs" --rw=write --direct=1 --fdatasync=1 \
  --ioengine=sync --iodepth=1 --numjobs=3 --group_reporting --runtime="$secs" --time_based --output-format=json 2>/dev/null)
read -r fio3_iops fio3_p50 fio3_p99 <<<"$(/usr/bin/python3 -c "$summary" <<<"$fio3_json")"
printf '%-26s %6s B  %9s commits/s  p50 %6s us  p99 %6s us   (all three writers together; per-writer latency)\n' "fio, 3 writers at once" "$bs" "$fio3_iops" "$fio3_p50" "$fio3_p99"
# ... and with two writes in flight each (io_uring, O_DSYNC): would a log
# that kept a second group in flight beside the first commit sooner?
fio3q_json=$(fio --name=commit3q --directory="$dir" --size=64M --bs="$bs" --rw=write --direct=1 --sync=dsync \
  --ioengine=io_uring --iodepth=2 --numjobs=3 --group_reporting --runtime="$secs" --time_based --output-format=json 2>/dev/null)
summary_dsync='
import json, sys
w = json.load(sys.stdin)["jobs"][0]["write"]
p = w["clat_ns"]["percentile"]  # O_DSYNC: the write is the commit
print("%.0f %.0f %.0f" % (w["iops"], p["50.000000"] / 1e3, p["99.000000"] / 1e3))
'
read -r fio3q_iops fio3q_p50 fio3q_p99 <<<"$(/usr/bin/python3 -c "$summary_dsync" <<<"$fio3q_json")"
printf '%-26s %6s B  %9s commits/s  p50 %6s us  p99 %6s us   (all three writers together; per-write latency)\n' "fio, 3 writers, 2 in flight" "$bs" "$fio3q_iops" "$fio3q_p50" "$fio3q_p99"
out=$("$bin" "$dir" "$secs" "$bs")
printf '%s\n' "$out"
wal=$(awk '/^wal \(rabia_wal\)/ { for (i = 1; i <= NF; i++) if ($(i) == "commits/s") print $(i - 1) }' <<<"$out")
echo "ratio: rabia_wal one-record commits / fio commits = $(awk -v a="$wal" -v b="$fio_iops" 'BEGIN { printf "%.2f", a / b }')"
echo "disk: $(df --output=source,fstype "$dir" | tail -n 1)"
