#!/usr/bin/env bash
# backup_interrupt: a rabia-cli backup interrupted in the middle (Ctrl-C,
# `timeout`'s SIGTERM, a closed terminal's SIGHUP) leaves no temporary file.
#
# A fake replica (backup_stall.py) takes the backup and sends the first
# 64 KiB of a 1 MiB snapshot, then nothing: rabia-cli is writing
# PATH.<pid>.tmp. Each signal in turn stops it; the folder must hold
# nothing afterwards (no PATH either) and the exit status is the signal's.
# (SIGINT takes the same path; a background job of a script starts with it
# ignored, and an ignored signal stays ignored, so it is not sent here.)
# Until 2026-12-06 every interrupted backup left its PATH.<pid>.tmp, a
# partial snapshot of up to the whole state under a name no later run
# reuses (found by review).
# (The fake speaks plain TCP: under RABIA_TLS_DIR, tests/integration/
# tls_suite.sh, this test is left to the plain run.)
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init backup_interrupt 53
[ -z "${RABIA_TLS_DIR:-}" ] || skip "a plain-TCP fake replica: the plain run covers it"

fake_port=$((${RABIA_IT_PORT_BASE:-20000} + 100 * 53 + 90))
bg fake python3 "$(dirname "$0")/backup_stall.py" "$fake_port"
for _ in $(seq 50); do grep -q ready "$IT_DIR/fake.out" && break; sleep 0.1; done
grep -q ready "$IT_DIR/fake.out" || fail "backup_stall.py did not start: $(cat "$IT_DIR/fake.out")"

for sig in TERM HUP; do
  out=$IT_DIR/b-$sig
  mkdir -p "$out"
  bg "backup-$sig" "$RABIA_CLI" -a "127.0.0.1:$fake_port" -t 30000 backup "$out/backup.snap"
  pid=$BG_PID
  # the temporary file is there once the first chunk is written
  for _ in $(seq 100); do [ -n "$(ls "$out")" ] && break; sleep 0.05; done
  tmp=$(ls "$out")
  expect_eq "a backup in the middle of its copy (SIG$sig next): the folder holds" "$tmp" "backup.snap.$pid.tmp"
  kill -"$sig" "$pid"
  bg_wait "$pid" 10
  expect_eq "rabia-cli backup stopped by SIG$sig: exit status" "$BG_RC" "$((128 + $(kill -l "$sig")))"
  expect_eq "rabia-cli backup stopped by SIG$sig: files left in the folder" "$(ls -A "$out")" ""
done
