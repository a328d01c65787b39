#!/usr/bin/env bash
# bench/hostile_clients.py against a fresh 3-replica KV cluster on
# 127.0.0.1 (ports 33000-33300, data under /var/tmp), stopped and removed
# at the end. RABIAD=PATH runs another build (for before/after pairs);
# the case names pass through: bench/hostile_clients.sh gets subscribe
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rabia-hostile.XXXXXX")
export RABIA_CLUSTER_DIR=$dir RABIA_RESP_BASE=33000 RABIA_CLIENT_BASE=33100 RABIA_PEER_BASE=33200 \
  RABIA_METRICS_BASE=33300
cleanup() {
  ./deploy/local-cluster.sh stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
./deploy/local-cluster.sh start 3 kv >/dev/null
echo "# rabiad ${RABIAD:-build/cmd/rabiad}; cases on replica 3 (PUBLISH from replica 1)"
/usr/bin/python3 bench/hostile_clients.py 33003 33001 "$@"
