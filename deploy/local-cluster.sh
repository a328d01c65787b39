#!/usr/bin/env bash
# Runs a local rabia cluster on 127.0.0.1 in the background.
#   local-cluster.sh start N [kv|counter|bank]   N = 3, 5 or 7 replicas
#   local-cluster.sh stop                         stop every replica (SIGTERM, then SIGKILL)
#   local-cluster.sh status                       pids and each replica's status
#   local-cluster.sh kill I | restart I           kill -9 / start again replica I (for fault drills;
#                                                 restart fails, showing its log, if it exits at once)
# Replica i serves RESP on 6400+i, the native protocol on 7400+i and peers
# on 7500+i (override the bases with RABIA_RESP_BASE, RABIA_CLIENT_BASE,
# RABIA_PEER_BASE). State lives under $RABIA_CLUSTER_DIR (default
# /tmp/rabia-cluster): one data dir, log and pid file per replica.
# RABIA_METRICS_BASE set: replica i also serves /metrics and /health on
# 127.0.0.1:(RABIA_METRICS_BASE + i) (metrics-listen).
# TLS: with RABIA_TLS_DIR set (certificates from deploy/make-test-certs.sh DIR N)
# peer links and both client ports run over TLS 1.3, replica i with
# DIR/replica-i.crt; RABIA_TLS_AUTH_CLIENTS=yes also requires client
# certificates (DIR/client.crt). This script's own status checks use TLS then.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${RABIA_CLUSTER_DIR:-/tmp/rabia-cluster}
bin=${RABIAD:-$here/build/cmd/rabiad}
cli=${RABIA_CLI:-$here/build/cmd/rabia-cli}
resp_base=${RABIA_RESP_BASE:-6400}
client_base=${RABIA_CLIENT_BASE:-7400}
peer_base=${RABIA_PEER_BASE:-7500}
metrics_base=${RABIA_METRICS_BASE:-}

die() { echo "local-cluster: $*" >&2; exit 1; }

tls_dir=${RABIA_TLS_DIR:-}
# tls_args I: the TLS options of replica I (none without RABIA_TLS_DIR)
tls_args() {
  [ -n "$tls_dir" ] || return 0
  echo "--tls-peers yes --tls-clients yes --tls-auth-clients ${RABIA_TLS_AUTH_CLIENTS:-no}" \
    "--tls-cert-file $tls_dir/replica-$1.crt --tls-key-file $tls_dir/replica-$1.key --tls-ca-cert-file $tls_dir/ca.crt"
}
# rabia-cli's TLS options (the client certificate too: it works with and
# without tls-auth-clients)
cli_tls=()
if [ -n "$tls_dir" ]; then
  for f in ca.crt client.crt client.key replica-1.crt; do
    [ -r "$tls_dir/$f" ] || die "RABIA_TLS_DIR=$tls_dir has no $f: make it with deploy/make-test-certs.sh $tls_dir N"
  done
  cli_tls=(--tls --cacert "$tls_dir/ca.crt" --cert "$tls_dir/client.crt" --key "$tls_dir/client.key")
fi

# runs_replica I PID: PID is replica I, started by start_one (its command
# line has --data-dir $dir/rI; whichever rabiad binary). A pid file outlives
# its process (a crash, kill -9, a reboot) and the pid may then be another
# program's: stop and kill signalled it (SIGTERM, then SIGKILL). A zombie's
# command line is empty.
runs_replica() {
  local c
  # 2>/dev/null before the < : a failed redirection is reported to the
  # stderr in effect when it fails (restart after a crash printed
  # "/proc/PID/cmdline: No such file or directory")
  [ -n "$2" ] && c=$(tr '\0' '\n' 2>/dev/null <"/proc/$2/cmdline") && grep -qxF -- "$dir/r$1" <<<"$c"
}

members() {
  local n=$1 m="" i
  for ((i = 1; i <= n; i++)); do m+="${m:+,}$i=127.0.0.1:$((peer_base + i))"; done
  echo "$m"
}

start_one() {
  local i=$1 n sm
  n=$(cat "$dir/n") sm=$(cat "$dir/sm")
  local resp="off"
  [ "$sm" = kv ] && resp="127.0.0.1:$((resp_base + i))"
  "$bin" --id "$i" --members "$(members "$n")" \
    --client-listen "127.0.0.1:$((client_base + i))" --resp-listen "$resp" \
    --data-dir "$dir/r$i" --state-machine "$sm" ${metrics_base:+--metrics-listen "127.0.0.1:$((metrics_base + i))"} \
    $(tls_args "$i") ${RABIA_EXTRA_ARGS:-} \
    >>"$dir/r$i.log" 2>&1 &
  echo $! >"$dir/r$i.pid"
}

addrs() {
  local n i a=""
  n=$(cat "$dir/n")
  for ((i = 1; i <= n; i++)); do a+="${a:+,}127.0.0.1:$((client_base + i))"; done
  echo "$a"
}

wait_ready() { # every replica up, connected to all peers and not recovering
  local n i deadline=$((SECONDS + ${RABIA_START_TIMEOUT:-20}))
  n=$(cat "$dir/n")
  while :; do
    local ok=1
    for ((i = 1; i <= n; i++)); do
      local out
      # a replica that exited (a refused option, a port in use) ends the
      # wait at once: it waited out the whole timeout before
      if [ -f "$dir/r$i.pid" ] && ! kill -0 "$(cat "$dir/r$i.pid")" 2>/dev/null; then
        echo "local-cluster: replica $i exited while starting (see $dir/r$i.log)" >&2
        return 1
      fi
      out=$("$cli" "${cli_tls[@]}" -a "127.0.0.1:$((client_base + i))" --timeout 500 status 2>/dev/null) || { ok=0; break; }
      grep -q '^recovering: no' <<<"$out" || { ok=0; break; }
      if grep -q 'unreachable' <<<"$out"; then ok=0; break; fi
    done
    ((ok)) && return 0
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

case "${1:-}" in
start)
  n=${2:-3}
  sm=${3:-kv}
  [[ $n == 3 || $n == 5 || $n == 7 ]] || die "N must be 3, 5 or 7 (got '$n')"
  [[ $sm == kv || $sm == counter || $sm == bank ]] || die "state machine must be kv, counter or bank"
  [ -x "$bin" ] || die "$bin not found: build first (cmake -S . -B build && cmake --build build -j)"
  if [ -d "$dir" ] && ls "$dir"/r*.pid >/dev/null 2>&1; then
    for f in "$dir"/r*.pid; do kill -0 "$(cat "$f")" 2>/dev/null && die "a cluster is running in $dir: stop it first"; done
  fi
  # it replaces a previous cluster's folder, nothing else: RABIA_CLUSTER_DIR
  # pointed at a folder in use (/var/tmp, a home) had all of it removed
  if [ -d "$dir" ] && [ ! -f "$dir/n" ] && [ -n "$(ls -A "$dir")" ]; then
    die "$dir holds files and no local cluster: give RABIA_CLUSTER_DIR a new or empty folder (start removes what it holds)"
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "$n" >"$dir/n"
  echo "$sm" >"$dir/sm"
  for ((i = 1; i <= n; i++)); do start_one "$i"; done
  if ! wait_ready; then
    echo "local-cluster: the cluster did not become ready; last log lines:" >&2
    tail -n 5 "$dir"/r*.log >&2
    exit 1
  fi
  echo "started $n replicas ($sm) under $dir"
  for ((i = 1; i <= n; i++)); do
    if [ "$sm" = kv ]; then
      echo "  replica $i: pid $(cat "$dir/r$i.pid")  resp 127.0.0.1:$((resp_base + i))  native 127.0.0.1:$((client_base + i))  peers 127.0.0.1:$((peer_base + i))"
    else
      echo "  replica $i: pid $(cat "$dir/r$i.pid")  native 127.0.0.1:$((client_base + i))  peers 127.0.0.1:$((peer_base + i))"
    fi
  done
  if [ "$sm" = kv ]; then
    if [ -n "$tls_dir" ]; then
      echo "try:  redis-cli --tls --cacert $tls_dir/ca.crt --cert $tls_dir/client.crt --key $tls_dir/client.key -p $((resp_base + 1)) SET greeting hello"
    else
      echo "try:  redis-cli -p $((resp_base + 1)) SET greeting hello && redis-cli -p $((resp_base + 2)) GET greeting"
    fi
  fi
  echo "      $cli ${cli_tls[*]} -a $(addrs) status"
  echo "stop: $0 stop"
  ;;
stop)
  [ -d "$dir" ] || { echo "no cluster in $dir"; exit 0; }
  for f in "$dir"/r*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f") i=${f##*/r} i=${i%.pid}
    if runs_replica "$i" "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for f in "$dir"/r*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f") i=${f##*/r} i=${i%.pid}
    for _ in $(seq 50); do runs_replica "$i" "$pid" || break; sleep 0.1; done
    if runs_replica "$i" "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$f"
  done
  echo "stopped (data and logs kept in $dir)"
  ;;
status)
  [ -f "$dir/n" ] || { echo "no cluster in $dir"; exit 1; }
  n=$(cat "$dir/n")
  for ((i = 1; i <= n; i++)); do
    pid=$(cat "$dir/r$i.pid" 2>/dev/null || echo "")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then state="running (pid $pid)"; else state="not running"; fi
    echo "replica $i: $state"
    "$cli" "${cli_tls[@]}" -a "127.0.0.1:$((client_base + i))" --timeout 500 status 2>/dev/null | sed 's/^/    /' || true
  done
  ;;
kill)
  i=${2:?replica number}
  pid=$(cat "$dir/r$i.pid") || die "replica $i has no pid file"
  if runs_replica "$i" "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$dir/r$i.pid"
  echo "killed replica $i (pid $pid)"
  ;;
restart)
  i=${2:?replica number}
  # a second process for a running replica fails on its data-dir lock, and
  # its pid in r$i.pid hid the running one from stop (left running)
  pid=$(cat "$dir/r$i.pid" 2>/dev/null || true)
  if runs_replica "$i" "$pid"; then die "replica $i is running (pid $pid): kill $i first (or stop)"; fi
  start_one "$i"
  pid=$(cat "$dir/r$i.pid")
  # until it answers on its client port or exits: a bad option or a refused
  # start (a damaged log, the data dir locked) exits at once, and was
  # reported "restarted" (found by review). A long log replay only delays
  # the answer: said, not failed.
  deadline=$((SECONDS + ${RABIA_RESTART_WAIT:-10}))
  while :; do
    # exited: gone, or a zombie (this shell's child, not yet waited for)
    if ! kill -0 "$pid" 2>/dev/null || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
      wait "$pid" 2>/dev/null && rc=0 || rc=$?
      echo "local-cluster: replica $i (pid $pid) exited while starting (status $rc); last lines of $dir/r$i.log:" >&2
      tail -n 5 "$dir/r$i.log" >&2
      exit 1
    fi
    if "$cli" "${cli_tls[@]}" -a "127.0.0.1:$((client_base + i))" --timeout 500 status >/dev/null 2>&1; then
      echo "restarted replica $i (pid $pid)"
      break
    fi
    if ((SECONDS >= deadline)); then
      echo "restarted replica $i (pid $pid); not answering yet (still starting? see $dir/r$i.log)"
      break
    fi
    sleep 0.1
  done
  ;;
*)
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
  ;;
esac
