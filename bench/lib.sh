# shellcheck shell=bash
# Shared helpers of the benchmark scripts (sourced).

# cpu_of PIDS... -> user+sys CPU seconds of those processes, summed (/proc)
cpu_of() {
  local t=0 p
  for p in "$@"; do
    t=$(awk -v t="$t" '{ print t + ($14 + $15) / 100 }' "/proc/$p/stat" 2>/dev/null || echo "$t")
  done
  echo "$t"
}

# rss_of PIDS... -> VmRSS in MiB, summed
rss_of() {
  local p
  for p in "$@"; do awk '/^VmRSS:/ { print $2 }' "/proc/$p/status"; done | awk '{ s += $1 } END { printf "%.1f", s / 1024 }'
}

# bench_field NAME TEXT -> the value of NAME=... in rabia-bench's result line
# (its last stdout line: "requests=N errors=E ... throughput=X p50_us=..."),
# wherever that line sits in TEXT
bench_field() { sed -En "s/(^|.* )$1=([0-9.]*).*/\2/p" <<<"$2"; }

# bench_local_cluster NAME: a data folder for deploy/local-cluster.sh under
# $BENCH_DIR (default /var/tmp: a real disk, for O_DIRECT), the ports
# 33000-34300, a trap that stops the cluster and removes the folder at
# exit; sets $dir and $addrs (the three native ports)
bench_local_cluster() {
  dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-$1.XXXXXX")
  export RABIA_CLUSTER_DIR=$dir/c RABIA_RESP_BASE=33000 RABIA_CLIENT_BASE=34000 RABIA_PEER_BASE=34100 RABIA_METRICS_BASE=34200
  # shellcheck disable=SC2064 # $dir now, on purpose
  trap "./deploy/local-cluster.sh stop >/dev/null 2>&1 || true; rm -rf '$dir'" EXIT
  # shellcheck disable=SC2034 # the caller's
  addrs="127.0.0.1:34001,127.0.0.1:34002,127.0.0.1:34003"
}

# bench_csv_header HEADER: print it, and start $OUT with it when set and empty
bench_csv_header() {
  echo "$1"
  if [ -n "${OUT:-}" ] && [ ! -s "$OUT" ]; then echo "$1" >"$OUT"; fi
}
