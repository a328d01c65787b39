#!/usr/bin/env bash
# tests/io/bench.sh: the io/README.md measurements: ping-pong and one-way flood of
# 64-byte messages over loopback, io_uring loop vs blocking sockets side by side,
# each pinned with taskset; prints every run and the median per configuration.
#   tests/io/bench.sh [BENCH_BINARY] [RUNS]
set -euo pipefail
bin=${1:-build/tests/io/bench_io}
runs=${2:-5}
port=${BENCH_PORT:-9317}

# run SERVER_CPU CLIENT_CPU SERVER_MODE CLIENT_ARGS...: one server, one client run.
run() {
  local scpu=$1 ccpu=$2 smode=$3; shift 3
  taskset -c "$scpu" "$bin" "$smode" "$port" >/dev/null 2>&1 &
  local spid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
  taskset -c "$ccpu" "$bin" "$@" 127.0.0.1 "$port" ${N:-} || true
  kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true
  port=$((port + 1)) # a fresh port: no TIME_WAIT or half-dead listener between runs
}

# median FIELD_REGEX: median of the numbers following the regex in stdin lines.
median() { grep -oP "$1\K[0-9.]+" | sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "n/a")}'; }

conf() { # NAME SERVER_CPU CLIENT_CPU SERVER_MODE CLIENT_MODE REGEX
  local name=$1 scpu=$2 ccpu=$3 smode=$4 cmode=$5 re=$6 out=""
  for _ in $(seq "$runs"); do
    out+="$(run "$scpu" "$ccpu" "$smode" "$cmode")"$'\n'
  done
  printf '%s' "$out" | sed 's/^/    /'
  printf '%-66s median %s, client cpu %s\n' "$name (server cpu $scpu, client cpu $ccpu)" \
    "$(printf '%s' "$out" | median "$re")" "$(printf '%s' "$out" | median 'cpu ')"
}

echo "load before: $(cat /proc/loadavg)"
N=20000  conf "pingpong io_uring, same core"        0 0 server       pingpong       'median '
N=20000  conf "pingpong blocking sockets, same core" 0 0 plain-server plain-pingpong 'median '
N=5000   conf "pingpong io_uring, two cores"        0 1 server       pingpong       'median '
N=5000   conf "pingpong blocking sockets, two cores" 0 1 plain-server plain-pingpong 'median '
N=5000000 conf "flood io_uring coalesced, two cores" 0 1 server      flood          ': '
N=1000000 conf "flood one send() per msg, two cores" 0 1 plain-server plain-flood   ': '
N=5000000 conf "flood io_uring coalesced, same core" 0 0 server      flood          ': '
N=1000000 conf "flood one send() per msg, same core" 0 0 plain-server plain-flood   ': '
echo "load after: $(cat /proc/loadavg)"
