#!/usr/bin/env bash
# client_memory: maxmemory-clients, one memory budget for every client
# connection of a replica together (as Redis's maxmemory-clients). With
# --maxmemory-clients=32mb:
#   - four clients each send 12 MB of an unfinished 60 MB value (each one
#     within its own 64 MiB input limit): the largest are closed until the
#     rest fit (at least three), with a log line naming the cause and the
#     fix; INFO's mem_clients_normal is back under the budget and
#     evicted_clients counts them; twenty ordinary clients keep their
#     connections and are served;
#   - a client that pipelines GETs of a 200 KB value and reads nothing is
#     closed the same way (replies piled up), the ordinary ones again not;
#   - 100 idle connections hold at most 16 KiB each (CLIENT LIST tot-mem,
#     INFO mem_clients_normal), and one that pipelined 4000 GETs goes back
#     under that once idle (its ring of reply slots and input buffer);
#   - CLIENT KILL closes what its filters name (ID, TYPE pubsub, LADDR the
#     RESP port (CLIENT INFO's laddr), itself with SKIPME no, after its
#     reply; rabia_clients_killed_total counts the three others); a
#     CLIENT NO-EVICT connection holding
#     more than the budget is kept while an ordinary one is closed;
#   - /metrics carries rabia_client_memory_bytes, rabia_clients_killed_total and
#     rabia_clients_evicted_total;
#   - a bad value is refused with the key named.
# Afterwards the three serve and converge.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init client_memory 34
tls_refuse "client_memory.py speaks plain RESP"
need_cmd redis-cli python3 curl
export RABIA_METRICS_BASE=$((RABIA_RESP_BASE + 60))
budget=$((32 << 20))
say "a bad value is refused"
out=$("$RABIAD" --check-config --id=1 --members=1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3 \
  --maxmemory-clients=12x 2>&1 || true)
expect_match "--maxmemory-clients=12x" "$out" "maxmemory-clients = '12x': use 0 \(no limit\), N% of memory"
out=$("$RABIAD" --check-config --id=1 --members=1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3 \
  --maxmemory-clients=200% 2>&1 || true)
expect_match "--maxmemory-clients=200%" "$out" "a percentage must be 1%..100%"

export RABIA_EXTRA_ARGS="--maxmemory-clients=32mb"
cluster_start 3 kv
here=$(cd "$(dirname "$0")" && pwd)
py() { it_py 120 "$here/client_memory.py" "$@"; }

say "clients that send large unfinished values"
py inputs "$(resp_port 1)" "$budget"
expect_match "replica 1 logs why and the fix" "$(grep -m1 'over maxmemory-clients' "$RABIA_CLUSTER_DIR/r1.log")" \
  'closing client 127\.0\.0\.1:[0-9]+ \(user default\): client connections hold [0-9.]+ MiB together, over maxmemory-clients 32\.0 MiB, and it holds the most, [0-9.]+ MiB \(input [0-9.]+ MiB, replies and output [0-9.]+ [KMG]?i?B\)\. Raise maxmemory-clients'

say "a client that reads none of its replies"
py nonreader "$(resp_port 1)" "$budget"
expect_match "replica 1 logs its replies as the cause" \
  "$(grep 'over maxmemory-clients' "$RABIA_CLUSTER_DIR/r1.log" | grep -v 'replies and output 0 B' | head -1)" \
  'it holds the most, [0-9.]+ MiB \(input [0-9.]+ [KM]?i?B, replies and output [0-9.]+ MiB\)'

say "what an idle connection holds"
py idle "$(resp_port 1)" "$budget"

say "CLIENT KILL and CLIENT NO-EVICT"
py kill "$(resp_port 1)" "$budget"

say "metrics"
m=$(curl -fsS "http://127.0.0.1:$((RABIA_METRICS_BASE + 1))/metrics")
expect_match "rabia_clients_evicted_total" "$(grep '^rabia_clients_evicted_total ' <<<"$m")" '^rabia_clients_evicted_total ([4-9]|[1-9][0-9])$'
expect_match "rabia_client_memory_limit_bytes" "$(grep '^rabia_client_memory_limit_bytes ' <<<"$m")" "^rabia_client_memory_limit_bytes $budget\$"
expect_match "rabia_client_memory_bytes" "$(grep '^rabia_client_memory_bytes ' <<<"$m")" '^rabia_client_memory_bytes [0-9]+$'
expect_match "rabia_clients_killed_total" "$(grep '^rabia_clients_killed_total ' <<<"$m")" '^rabia_clients_killed_total 3$'

say "afterwards"
all_alive 3
wait_ready 20 1 2 3
writes_everywhere cm 3
wait_converged 10 1 2 3
