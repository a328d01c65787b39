#!/usr/bin/env bash
# client_limits: what a client can make a replica hold, and the errors it
# gets instead (review of 2026-12-01):
#   - a SET too large for any batch (1 MB against batch-max-bytes 256 KiB)
#     gets "-ERR request of N bytes does not fit in a batch ..." (it got
#     "-BUSY ... retry", which clients retry for ever);
#   - a RESP3 subscriber whose BLPOP is parked reads nothing while 200 KB
#     messages are published: closed once 32 MiB of them wait (Redis's
#     client-output-buffer-limit pubsub), with a log line; they queued
#     behind the parked reply, out of the output limit's sight, and one
#     such subscriber held 865 MB;
#   - a connection that pipelined 4096 COMMANDs (about 57 MB of replies),
#     read them and stays open idle: the heap grows by less than 16 MB (a
#     slot kept a buffer of up to 64 KiB: 58 MB per such connection);
#   - 4100 client connections: 132 refused (128 of the 4096 slots stay for
#     the peers), with a log line, each after Redis's "-ERR max number of
#     clients reached" (they saw only the close before); replica 2 killed and restarted meanwhile
#     reaches replica 1 again (it could not while clients held every slot).
# Afterwards the three serve and converge.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init client_limits 33
tls_refuse "client_limits.py speaks plain RESP"
need_cmd redis-cli python3
export RABIA_METRICS_BASE=$((RABIA_RESP_BASE + 60)) # /metrics for the heap's size
cluster_start 3 kv
here=$(cd "$(dirname "$0")" && pwd)
py() { it_py 120 "$here/client_limits.py" "$@"; }

say "a request no batch can hold"
py toolarge "$(resp_port 1)"

say "a subscriber that cannot read (RESP3, a blocking pop parked)"
py subscriber "$(resp_port 1)" "$(resp_port 1)"
expect_match "replica 1 logs it" "$(grep -m1 'does not read its messages' "$RABIA_CLUSTER_DIR/r1.log")" \
  'subscriber 127\.0\.0\.1:[0-9]+ does not read its messages \([0-9]+ bytes and [0-9]+ replies waiting; at most 33554432 bytes\): closing it'

say "a connection that walked its reply ring with large replies, then idle"
py ringwalk "$(resp_port 1)" $((RABIA_METRICS_BASE + 1))

say "more client connections than the replica takes"
ulimit -n 8192 2>/dev/null || skip "cannot raise the open-file limit to 8192 for 4100 connections"
py conns "$(resp_port 1)" 4100 "$IT_CLUSTER_SH" "$RABIA_CLI" "$(native_addr 2)"
remember_pids
expect_match "replica 1 logs the refusals" "$(grep -m1 'too many client connections' "$RABIA_CLUSTER_DIR/r1.log")" \
  'too many client connections \(3968\): refusing one \(128 of the 4096 slots stay for the peers\)'

say "afterwards"
all_alive 3
wait_ready 20 1 2 3
writes_everywhere cl 3
wait_converged 10 1 2 3
