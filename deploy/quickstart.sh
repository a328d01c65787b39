#!/usr/bin/env bash
# Installs dependencies (Debian 12, as root), builds in ./build and starts a
# 3-replica KV cluster on 127.0.0.1 (deploy/local-cluster.sh start 3).
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
if [ -f "${RABIA_CLUSTER_DIR:-/tmp/rabia-cluster}/n" ]; then ./deploy/local-cluster.sh stop >/dev/null || true; fi
./deploy/local-cluster.sh start "${1:-3}" "${2:-kv}"
