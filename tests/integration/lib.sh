# shellcheck shell=bash disable=SC2034  # (CONVERGED_*, BG_* are outputs for the tests)
# Shared helpers of the integration tests (sourced by every *.sh here).
#
# A test calls `it_init NAME SLOT` first. SLOT picks the test's own ports
# (base = RABIA_IT_PORT_BASE (default 20000) + 100*SLOT: RESP base+i, native
# base+20+i, peers base+40+i for replica i), so tests run in parallel
# (ctest -j). Everything lives in a fresh mktemp directory (kept, with its
# replica logs, when the test fails). An EXIT trap stops every process the
# test started, by PID; a watchdog ends the test (through the same trap)
# before ctest's TIMEOUT would kill it without cleaning up.
#
# Environment: RABIAD and RABIA_CLI (the built binaries; ctest sets them),
# RABIA_IT_DEADLINE (seconds before the watchdog fires), RABIA_IT_KEEP=1
# (keep the temporary directory even on success), RABIA_TLS_DIR (certificates
# from deploy/make-test-certs.sh DIR 7: the clusters run with TLS 1.3 on peer
# links and client ports, and redis-cli, redis-benchmark, rabia-cli and
# python3-redis (IT_PY_TLS) reach them over TLS; see it_tls_wrap).

set -euo pipefail

IT_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IT_CLUSTER_SH=$IT_REPO/deploy/local-cluster.sh
IT_NAME=it
IT_DIR=
IT_CHECKS=0
IT_BG_PIDS=()      # load generators and other helpers started in the background
IT_DAEMON_PIDS=()  # every rabiad this test started (also those of local-cluster.sh)
IT_CLEANUP=()      # extra cleanup commands (run in reverse order)
IT_WATCHDOG=
IT_T0=$SECONDS

# ---------------------------------------------------------------------------
# output

say() { printf '[%s] %s\n' "$IT_NAME" "$*"; }
ok() {
  IT_CHECKS=$((IT_CHECKS + 1))
  printf '[%s]   ok: %s\n' "$IT_NAME" "$*"
}
fail() {
  printf '[%s] FAIL: %s\n' "$IT_NAME" "$*" >&2
  exit 1
}
skip() {
  printf '[%s] SKIP: %s\n' "$IT_NAME" "$*"
  IT_SKIPPED=1
  exit 77
}
# expect_eq WHAT ACTUAL EXPECTED
expect_eq() {
  if [ "$2" != "$3" ]; then
    fail "$1: got '$(printf '%s' "$2" | head -c 400 | tr '\n' '|')', expected '$(printf '%s' "$3" | head -c 400 | tr '\n' '|')'"
  fi
  ok "$1 = $(printf '%s' "$3" | head -c 120 | tr '\n' '|')"
}
# expect_match WHAT ACTUAL ERE
expect_match() {
  if ! grep -Eq -- "$3" <<<"$2"; then
    fail "$1: got '$(printf '%s' "$2" | head -c 400 | tr '\n' '|')', which does not match /$3/"
  fi
  ok "$1 ~ /$3/"
}
# need_py_redis: PY is Debian's python3 (python3-redis lives there, not in
# another python3 first on PATH); skips the test without python3-redis
need_py_redis() {
  PY=/usr/bin/python3
  [ -x "$PY" ] || PY=python3
  "$PY" -c 'import redis' 2>/dev/null || skip "python3-redis is not installed (deploy/install-deps.sh installs it)"
}
need_cmd() {
  local c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "'$c' is not installed"; done
}

# ---------------------------------------------------------------------------
# set-up and clean-up

it_init() {
  IT_NAME=$1
  local slot=$2
  RABIAD=${RABIAD:-$IT_REPO/build/cmd/rabiad}
  RABIA_CLI=${RABIA_CLI:-$IT_REPO/build/cmd/rabia-cli}
  export RABIAD RABIA_CLI
  [ -x "$RABIAD" ] || fail "rabiad not found at $RABIAD: build first (cmake --build build)"
  [ -x "$RABIA_CLI" ] || fail "rabia-cli not found at $RABIA_CLI: build first"
  # the KV feature level this build supports (kv/README.md "Feature levels")
  BUILD_LEVEL=$("$RABIAD" --version | sed -n 's/.*(feature level \([0-9]*\)).*/\1/p')
  [ -n "$BUILD_LEVEL" ] || fail "$RABIAD --version does not name its feature level"
  local base=$((${RABIA_IT_PORT_BASE:-20000} + 100 * slot))
  export RABIA_RESP_BASE=$base RABIA_CLIENT_BASE=$((base + 20)) RABIA_PEER_BASE=$((base + 40))
  IT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rabia-it-$IT_NAME.XXXXXX")
  export RABIA_CLUSTER_DIR=$IT_DIR/cluster
  trap it_cleanup EXIT
  trap 'fail "interrupted (SIGINT)"' INT
  trap 'fail "terminated (SIGTERM): the watchdog fired after ${RABIA_IT_DEADLINE:-?}s, or ctest timed out"' TERM
  # our ports must be free: a leftover cluster would answer in our place
  local p busy=""
  local listening
  listening=$(ss -Hltn 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
  for ((p = base; p < base + 60; p++)); do
    if grep -qx "$p" <<<"$listening"; then busy+=" $p"; fi
  done
  [ -z "$busy" ] || fail "ports in use:$busy (a leftover cluster? see ss -ltnp); set RABIA_IT_PORT_BASE to move"
  # watchdog: TERM this shell before ctest's TIMEOUT hits (its trap cleans up)
  local deadline=${RABIA_IT_DEADLINE:-100}
  # (builtins only, so that killing it leaves no child behind: read -t on a
  # FIFO nobody writes is the sleep)
  mkfifo "$IT_DIR/.watchdog"
  (
    exec 3<>"$IT_DIR/.watchdog"
    read -r -t "$deadline" -u 3 _ || true
    echo "[$IT_NAME] watchdog: still running after ${deadline}s, stopping the test" >&2
    kill -TERM $$ 2>/dev/null
  ) &
  IT_WATCHDOG=$!
  it_tls_wrap
  say "ports: RESP $((base + 1))+, native $((base + 21))+, peers $((base + 41))+; dir $IT_DIR${RABIA_TLS_DIR:+; TLS with the certificates in $RABIA_TLS_DIR}"
}

# With RABIA_TLS_DIR set, every client a test runs speaks TLS without the
# test knowing: wrappers for redis-cli and redis-benchmark go first on PATH
# and RABIA_CLI becomes a wrapper, each adding --tls and the CA and client
# certificate (accepted with and without tls-auth-clients);
# deploy/local-cluster.sh starts the replicas with their certificates.
# IT_PY_TLS holds python3-redis's keyword arguments for a test's own script.
IT_PY_TLS=
it_tls_wrap() {
  [ -n "${RABIA_TLS_DIR:-}" ] || return 0
  local d=$RABIA_TLS_DIR f real w
  for f in ca.crt client.crt client.key replica-1.crt replica-3.crt; do
    [ -r "$d/$f" ] || fail "RABIA_TLS_DIR=$d has no $f: make it with deploy/make-test-certs.sh $d 7"
  done
  local opts="--tls --cacert $d/ca.crt --cert $d/client.crt --key $d/client.key"
  mkdir -p "$IT_DIR/tls-bin"
  for f in redis-cli redis-benchmark; do
    real=$(command -v "$f" 2>/dev/null) || continue
    printf '#!/bin/sh\nexec %s %s "$@"\n' "$real" "$opts" >"$IT_DIR/tls-bin/$f"
    chmod +x "$IT_DIR/tls-bin/$f"
  done
  w=$IT_DIR/tls-bin/rabia-cli
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$RABIA_CLI" "$opts" >"$w"
  chmod +x "$w"
  export RABIA_CLI=$w PATH=$IT_DIR/tls-bin:$PATH
  IT_PY_TLS="ssl=True,ssl_ca_certs='$d/ca.crt',ssl_certfile='$d/client.crt',ssl_keyfile='$d/client.key'"
  export IT_PY_TLS
}
# it_tls_args I: rabiad's TLS options for replica I (nothing without
# RABIA_TLS_DIR), for tests that start rabiad themselves
it_tls_args() {
  [ -n "${RABIA_TLS_DIR:-}" ] || return 0
  local d=$RABIA_TLS_DIR
  echo "--tls-peers yes --tls-clients yes --tls-cert-file $d/replica-$1.crt --tls-key-file $d/replica-$1.key --tls-ca-cert-file $d/ca.crt"
}
# tls_refuse WHY: a test that cannot run over TLS skips itself with the reason
tls_refuse() { [ -z "${RABIA_TLS_DIR:-}" ] || skip "cannot run over TLS (RABIA_TLS_DIR is set): $*"; }

on_exit() { IT_CLEANUP+=("$*"); }

# it_loop_fs SIZE: a new ext4 filesystem of SIZE (truncate's units, 128M)
# loop-mounted at IT_MNT ($IT_DIR/mnt), unmounted at exit (thawed first,
# should the test have frozen it with fsfreeze); the test is skipped where
# no loop device can be had. Needs root.
it_loop_fs() {
  local img=$IT_DIR/disk.img
  IT_MNT=$IT_DIR/mnt
  truncate -s "$1" "$img"
  mkfs.ext4 -q -F -m 0 "$img"
  mkdir -p "$IT_MNT"
  mount -o loop "$img" "$IT_MNT" || skip "cannot loop-mount (no loop devices in this container?)"
  on_exit "fsfreeze -u '$IT_MNT' 2>/dev/null; umount -l '$IT_MNT'"
}

# is PID a live process running the binary $2? (A rebuild while the test
# runs replaces the file: /proc/PID/exe then names it "PATH (deleted)",
# still our process; without the suffix stripped, the test left its cluster
# running.)
pid_runs() {
  local pid=$1 exe=$2 got
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  got=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [ "${got% (deleted)}" = "$(readlink -f "$exe")" ]
}

# wait_exec PID EXE: a process just started with & runs the shell's copy
# until its exec, so pid_runs says "no" for it for a moment (longer on a
# loaded machine); wait up to 5 s until it runs EXE or has exited.
wait_exec() {
  local pid=$1 exe=$2 i
  for ((i = 0; i < 100; i++)); do
    pid_runs "$pid" "$exe" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# stop_pids EXE PID...: TERM, up to 5 s, then KILL; only PIDs still running EXE
stop_pids() {
  local exe=$1 pid i
  shift
  for pid in "$@"; do pid_runs "$pid" "$exe" && kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for ((i = 0; i < 50; i++)); do pid_runs "$pid" "$exe" || break; sleep 0.1; done
    if pid_runs "$pid" "$exe"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
}

it_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [ "${IT_SKIPPED:-0}" = 1 ] && rc=77
  local pid i
  for pid in "${IT_BG_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${IT_BG_PIDS[@]}"; do
    for ((i = 0; i < 30; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  # every rabiad by PID (local-cluster.sh stop would wait for zombies to be
  # reaped, which some container inits do slowly)
  remember_pids
  [ ${#IT_DAEMON_PIDS[@]} -gt 0 ] && stop_pids "$RABIAD" "${IT_DAEMON_PIDS[@]}"
  for ((i = ${#IT_CLEANUP[@]} - 1; i >= 0; i--)); do eval "${IT_CLEANUP[$i]}" >/dev/null 2>&1; done
  if [ -n "$IT_WATCHDOG" ]; then
    kill -TERM "$IT_WATCHDOG" 2>/dev/null
    wait "$IT_WATCHDOG" 2>/dev/null
  fi
  if [ "$rc" = 0 ]; then
    say "PASS: $IT_CHECKS checks in $((SECONDS - IT_T0)) s"
    [ "${RABIA_IT_KEEP:-0}" = 1 ] || rm -rf "$IT_DIR"
  elif [ "$rc" = 77 ]; then
    rm -rf "$IT_DIR"
  else
    if [ -n "$IT_DIR" ]; then
      local f
      for f in $(find "$IT_DIR" -name '*.log' | sort) $(ls -t "$IT_DIR"/*.out 2>/dev/null | head -n 4); do
        echo "----- last lines of $f" >&2
        tail -n 15 "$f" >&2
      done
      echo "[$IT_NAME] FAILED (exit $rc) after $((SECONDS - IT_T0)) s; logs kept in $IT_DIR" >&2
    fi
  fi
  exit "$rc"
}

# ---------------------------------------------------------------------------
# addresses and clients

resp_port() { echo $((RABIA_RESP_BASE + $1)); }
native_port() { echo $((RABIA_CLIENT_BASE + $1)); }
peer_port() { echo $((RABIA_PEER_BASE + $1)); }
native_addr() { echo "127.0.0.1:$(native_port "$1")"; }
# all_addrs N: the native addresses of replicas 1..N
all_addrs() {
  local i a=""
  for ((i = 1; i <= $1; i++)); do a+="${a:+,}$(native_addr "$i")"; done
  echo "$a"
}

# redis I ARGS...: redis-cli against replica I (raw output), bounded in time
redis() {
  local i=$1
  shift
  timeout 20 redis-cli -p "$(resp_port "$i")" "$@"
}
# info_wait I FIELD MIN: replica I's INFO, read again every 0.1 s for up to
# 5 s until its FIELD is at least MIN; the last text (CRs removed) is left
# in INFO_TEXT for info_field, whether or not FIELD got there
info_wait() {
  local t v
  for ((t = 0; t < 50; t++)); do
    INFO_TEXT=$(redis "$1" INFO 2>/dev/null | tr -d '\r') || true
    v=$(info_field "$2")
    [ "${v:-0}" -ge "$3" ] && return 0
    sleep 0.1
  done
  return 0
}
# info_field NAME: NAME's value in INFO_TEXT (empty when absent)
info_field() { sed -n "s/^$1://p" <<<"${INFO_TEXT:-}" | head -n 1; }
# writes_everywhere PREFIX N: replica i takes SET PREFIX:i vi, and every
# replica reads all N values back (MGET)
writes_everywhere() {
  local p=$1 n=$2 i keys=() want=""
  for ((i = 1; i <= n; i++)); do
    expect_eq "replica $i: SET $p:$i v$i" "$(redis "$i" SET "$p:$i" "v$i")" OK
    keys+=("$p:$i")
    want+="v$i "
  done
  for ((i = 1; i <= n; i++)); do
    expect_eq "replica $i: MGET ${keys[*]}" "$(redis "$i" MGET "${keys[@]}" | tr '\n' ' ')" "$want"
  done
}
# it_py TIMEOUT_S SCRIPT ARGS...: a test's own Python script (its lines
# prefixed with the test's name); the test fails if it exits non-zero
it_py() {
  local t=$1 script=$2 out rc=0
  shift 2
  out=$(timeout "$t" python3 "$script" "$@" 2>&1) || rc=$?
  printf '%s\n' "$out" | sed "s/^/[$IT_NAME] /"
  [ "$rc" = 0 ] || fail "$(basename "$script") $1: see above"
}
# redisn I ARGS...: the same with typed output ((nil), (integer) 1, "str")
redisn() {
  local i=$1
  shift
  timeout 20 redis-cli --no-raw -p "$(resp_port "$i")" "$@"
}
# cli ARGS...: rabia-cli, bounded in time (its own retries take up to ~10 s)
cli() { timeout 60 "$RABIA_CLI" "$@"; }

# replica_status I: the status text of replica I ("" when unreachable).
# Tests whose replicas are not on 127.0.0.1 redefine it.
replica_status() { timeout 5 "$RABIA_CLI" -a "$(native_addr "$1")" --timeout 500 status 2>/dev/null || true; }
# field TEXT KEY: the value of "KEY: value" in a status text
field() { sed -n "s/^$2: //p" <<<"$1" | head -n 1; }

# snapshot I...: "applied/state_hash" of each replica, space separated ("/"
# for one that does not answer). One rabia-cli process asks them all, unless
# the test set IT_STATUS_ONE_BY_ONE=1 (its own replica_status).
snapshot() {
  local i s out=""
  if [ "${IT_STATUS_ONE_BY_ONE:-0}" = 1 ]; then
    for i in "$@"; do
      s=$(replica_status "$i")
      out+="${out:+ }$(field "$s" applied)/$(field "$s" state_hash)"
    done
    echo "$out"
    return 0
  fi
  local addrs=""
  for i in "$@"; do addrs+="${addrs:+,}$(native_addr "$i")"; done
  timeout 10 "$RABIA_CLI" -a "$addrs" --timeout 500 status 2>/dev/null |
    awk 'function flush() { if (n++) printf " "; printf "%s/%s", a, h; a = h = "" }
         /^== / { if (seen) flush(); seen = 1; next }
         /^applied: / { a = $2 } /^state_hash: / { h = $2 }
         END { if (seen) flush(); print "" }' || true
}

# wait_converged TIMEOUT_S I...: the replicas report the same applied slot and
# state hash, twice in a row 0.3 s apart (applied is refreshed every 100 ms,
# the hash is live). Prints the result; fails with every replica's view.
wait_converged() {
  local limit=$1 t0=$SECONDS prev="" cur first i same
  shift
  while :; do
    cur=$(snapshot "$@")
    first=${cur%% *}
    same=1
    for i in $cur; do [ "$i" = "$first" ] || same=0; done
    [[ $first == */* && $first != /* && $first != */ ]] || same=0
    if ((same)) && [ "$cur" = "$prev" ]; then
      ok "replicas $* converged: applied ${first%/*}, state_hash ${first#*/} (after $((SECONDS - t0)) s)"
      CONVERGED_APPLIED=${first%/*}
      CONVERGED_HASH=${first#*/}
      return 0
    fi
    prev=$cur
    if ((SECONDS - t0 >= limit)); then
      for i in "$@"; do say "replica $i: $(replica_status "$i" | grep -E '^(applied|known|state_hash|recovering|member_)' | tr '\n' ' ')"; done
      # how each got (or did not get) the slots it missed: catch-up from the
      # logs, snapshot transfers; the whole INFO stays in the kept directory
      for i in "$@"; do
        timeout 5 redis-cli -p "$(resp_port "$i")" INFO 2>/dev/null | tr -d '\r' >"$IT_DIR/r$i.info" || true
        say "replica $i INFO: $(grep -E '^(lag_slots|wal_catchup_[a-z_]*|snapshots_installed|state_transfers_[a-z]*|retransmits|anomalies|connected_peers):' "$IT_DIR/r$i.info" | tr '\n' ' ')"
      done
      fail "replicas $* did not converge within ${limit}s (applied/state_hash: $cur; INFO in $IT_DIR/r*.info)"
    fi
    sleep 0.3
  done
}

# wait_within TIMEOUT_S SLOTS I J: replica I's applied slot comes within
# SLOTS of replica J's (a replica catching up while writes go on); sets
# WITHIN_I and WITHIN_J to the last values read, fails past TIMEOUT_S
wait_within() {
  local limit=$1 slots=$2 i=$3 j=$4 k
  for ((k = 0; k < limit * 10; k++)); do
    WITHIN_J=$(replica_status "$j" | sed -n 's/^applied: //p')
    WITHIN_I=$(replica_status "$i" | sed -n 's/^applied: //p')
    [ -n "$WITHIN_I" ] && [ -n "$WITHIN_J" ] && ((WITHIN_I + slots >= WITHIN_J)) && return 0
    sleep 0.1
  done
  fail "replica $i at slot ${WITHIN_I:-?}, replica $j at ${WITHIN_J:-?} after ${limit}s"
}

# wait_ready TIMEOUT_S I...: each replica answers status, is not recovering and
# reaches all its peers
wait_ready() {
  local limit=$1 t0=$SECONDS i s good
  shift
  while :; do
    good=1
    for i in "$@"; do
      s=$(replica_status "$i")
      if [ -z "$s" ] || ! grep -q '^recovering: no' <<<"$s" || grep -q 'unreachable' <<<"$s"; then good=0; break; fi
    done
    ((good)) && return 0
    if ((SECONDS - t0 >= limit)); then
      say "replica $i: ${s:-(no answer)}" | tr '\n' ' '
      echo
      fail "replicas $* not ready within ${limit}s"
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------
# clusters through deploy/local-cluster.sh (on 127.0.0.1)

cluster() { bash "$IT_CLUSTER_SH" "$@"; }
replica_pid() { cat "$RABIA_CLUSTER_DIR/r$1.pid" 2>/dev/null || true; }
# the cluster id replica N logged at start (the id its peer frames carry)
cluster_id_of() { grep -o 'cluster [0-9a-f]\{16\}' "$RABIA_CLUSTER_DIR/r$1.log" | head -n 1 | cut -d' ' -f2; }
remember_pids() {
  local f
  [ -n "${RABIA_CLUSTER_DIR:-}" ] || return 0
  for f in "$RABIA_CLUSTER_DIR"/r*.pid; do [ -f "$f" ] && IT_DAEMON_PIDS+=("$(cat "$f")"); done
  return 0
}
# cluster_dir_new N SM: an empty cluster folder at $RABIA_CLUSTER_DIR that
# deploy/local-cluster.sh's restart I starts replicas in one at a time
# (first starts, each with its own RABIA_EXTRA_ARGS), unlike cluster_start
cluster_dir_new() {
  mkdir -p "$RABIA_CLUSTER_DIR"
  echo "$1" >"$RABIA_CLUSTER_DIR/n"
  echo "$2" >"$RABIA_CLUSTER_DIR/sm"
}
# set_until I KEY VALUE SECONDS: SET through replica I, retried until it
# answers OK (a cluster still starting); fails after SECONDS
set_until() {
  local t0=$SECONDS out
  while :; do
    out=$(timeout 3 redis-cli -p "$(resp_port "$1")" SET "$2" "$3" 2>&1 || true)
    [ "$out" = OK ] && return 0
    ((SECONDS - t0 < $4)) || fail "replica $1: SET $2 not answered OK within $4 s (last: $out)"
    sleep 0.2
  done
}
# cluster_start N SM [DIR]
cluster_start() {
  [ -n "${3:-}" ] && export RABIA_CLUSTER_DIR=$3
  local out
  if ! out=$(cluster start "$1" "$2" 2>&1); then
    remember_pids
    printf '%s\n' "$out" >&2
    fail "local-cluster.sh start $1 $2 failed"
  fi
  remember_pids
  say "started $1 replicas ($2): pids $(for ((i = 1; i <= $1; i++)); do printf '%s ' "$(replica_pid "$i")"; done)"
}
# wait_level N [redis-cli options]: until replicas 1..N report the build's
# feature level agreed (INFO server; a second or two after a start), 10 s
# at most: commands of that level are unknown before it
wait_level() {
  local n=$1 i t lv
  shift
  for ((i = 1; i <= n; i++)); do
    for ((t = 0; t < 100; t++)); do
      lv=$(redis "$i" "$@" INFO server 2>/dev/null | tr -d '\r' | sed -n 's/^rabia_feature_level://p')
      [ "$lv" = "$BUILD_LEVEL" ] && break
      sleep 0.1
    done
    [ "$lv" = "$BUILD_LEVEL" ] || fail "replica $i: feature level '${lv}', not the build's $BUILD_LEVEL, 10 s after the start"
  done
  say "replicas 1..$n agreed feature level $BUILD_LEVEL"
}
# stop every replica of the current cluster by PID (SIGTERM, then SIGKILL)
cluster_stop() {
  local f pids=()
  for f in "$RABIA_CLUSTER_DIR"/r*.pid; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
  [ ${#pids[@]} -gt 0 ] && stop_pids "$RABIAD" "${pids[@]}"
  rm -f "$RABIA_CLUSTER_DIR"/r*.pid
  say "stopped the cluster in $RABIA_CLUSTER_DIR (pids ${pids[*]})"
}
# kill -9 replica I (by its PID)
cluster_kill() {
  local pid
  pid=$(replica_pid "$1")
  [ -n "$pid" ] || fail "replica $1 has no pid file"
  pid_runs "$pid" "$RABIAD" || fail "replica $1 (pid $pid) was not running before kill -9"
  cluster kill "$1" >/dev/null
  local i
  for ((i = 0; i < 50; i++)); do pid_runs "$pid" "$RABIAD" || break; sleep 0.05; done
  pid_runs "$pid" "$RABIAD" && fail "replica $1 (pid $pid) survived kill -9"
  say "kill -9 replica $1 (pid $pid)"
}
cluster_restart() {
  # a start that is refused (what some tests look for) fails the restart
  # with the log's last lines; the test checks what it expects
  cluster restart "$1" >/dev/null || say "replica $1 exited while starting"
  remember_pids
  say "restarted replica $1 (pid $(replica_pid "$1"))"
}
# all_alive N: every replica 1..N still runs (kill -0 on its PID)
all_alive() {
  local i pid
  for ((i = 1; i <= $1; i++)); do
    pid=$(replica_pid "$i")
    pid_runs "$pid" "$RABIAD" || fail "replica $i (pid ${pid:-?}) is not running"
  done
  ok "all $1 replicas still running (kill -0)"
}

# acked_verify PY WRITER ACKFILE...: every write acked_writer.py recorded in
# the ACKFILEs is on each of replicas 1-3 with its value (its verify mode)
acked_verify() {
  local py=$1 w=$2 i out
  shift 2
  for i in 1 2 3; do
    out=$("$py" "$w" verify "$(resp_port "$i")" "$@" 2>&1) || {
      printf '%s\n' "$out"
      fail "replica $i lost acknowledged writes"
    }
    ok "replica $i: $out"
  done
}

# ---------------------------------------------------------------------------
# network namespaces (root only)

# free_subnet A.B: prints A.B.x for the first x in 20..219 (starting at
# one that depends on this shell's PID) with no address or route of this
# host in A.B.x.0/24; fails when there is none
free_subnet() {
  local re=${1//./\\.} o k
  for ((k = 0; k < 200; k++)); do
    o=$(((($$ + k) % 200) + 20))
    if ! ip -4 addr show | grep -q " $re\\.$o\\." && ! ip -4 route show | grep -q "^$re\\.$o\\."; then
      echo "$1.$o"
      return 0
    fi
  done
  return 1
}
# netns_veth NS HOST_IF NS_IF NS_ADDR: a network namespace NS joined to this
# one by a veth pair, HOST_IF here (up, no address) and NS_IF inside with
# NS_ADDR/24 (up, lo up too); both removed when the test exits. Fails with
# the reason in NETNS_WHY.
netns_veth() {
  local ns=$1 hif=$2 nif=$3 addr=$4
  NETNS_WHY=
  ip netns add "$ns" 2>/dev/null || { NETNS_WHY="ip netns add failed (no network namespaces here)"; return 1; }
  on_exit "ip netns del $ns"
  ip link add "$hif" type veth peer name "$nif" 2>/dev/null || { NETNS_WHY="cannot create a veth pair"; return 1; }
  on_exit "ip link del $hif"
  ip link set "$nif" netns "$ns"
  ip link set "$hif" up
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip addr add "$addr/24" dev "$nif"
  ip netns exec "$ns" ip link set "$nif" up
}

# netns_bridge3 TAG A.B: three namespaces rabia-TAG<pid>-1..3 joined by a
# bridge (BR) at SUB.1..3, this host at SUB.254 (SUB: a free A.B.x), all
# removed at exit; then ns I, host I, native_addr I, replica_status I and
# redis I ARGS... reach replica I there. Skips the test when namespaces,
# veths, a bridge or a free subnet cannot be had.
netns_bridge3() {
  local tag=$1 i
  SUB=$(free_subnet "$2") || skip "no free $2.x.0/24 subnet"
  NETNS_TAG=$tag
  BR=r$tag$$
  ip link add "$BR" type bridge 2>/dev/null || skip "cannot create a bridge"
  on_exit "ip link del $BR"
  ip addr add "$SUB.254/24" dev "$BR"
  ip link set "$BR" up
  for i in 1 2 3; do
    netns_veth "$(ns "$i")" "r$tag$$h$i" "r$tag$$n$i" "$SUB.$i" || skip "$NETNS_WHY"
    ip link set "r$tag$$h$i" master "$BR"
  done
  host() { echo "$SUB.$1"; }
  native_addr() { echo "$(host "$1"):$(native_port "$1")"; }
  replica_status() { timeout 5 "$RABIA_CLI" -a "$(native_addr "$1")" --timeout 500 status 2>/dev/null || true; }
  redis() {
    local i=$1
    shift
    timeout 20 redis-cli -h "$(host "$i")" -p "$(resp_port "$i")" "$@"
  }
}
ns() { echo "rabia-$NETNS_TAG$$-$1"; }

# ---------------------------------------------------------------------------
# background jobs

# bg NAME CMD...: run CMD in the background, output in $IT_DIR/NAME.out;
# its PID is in BG_PID (and stopped by the EXIT trap)
bg() {
  local name=$1
  shift
  "$@" >"$IT_DIR/$name.out" 2>&1 &
  BG_PID=$!
  IT_BG_PIDS+=("$BG_PID")
}
# bg_wait PID TIMEOUT_S: its exit status in BG_RC; fails if it runs longer
bg_wait() {
  local pid=$1 limit=$2 t0=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS - t0 < limit)) || fail "background job $pid still running after ${limit}s"
    sleep 0.1
  done
  BG_RC=0
  wait "$pid" || BG_RC=$?
}
