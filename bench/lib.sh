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
