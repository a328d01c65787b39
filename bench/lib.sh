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
