#!/usr/bin/env bash
# Installs what building and testing rabia needs on Debian 12 (run as root).
# Runs apt-get update and installs only when something is missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config git
      liburing-dev libjemalloc-dev libxxhash-dev libbenchmark-dev
      liblua5.1-0-dev lua-cjson-dev lua-bitop-dev   # scripting (EVAL): Lua 5.1 as in Redis, with its cjson and bit
      clang libclang-rt-14-dev   # libFuzzer target of the codec
      spin                       # model checking (tests/model)
      redis-tools                # redis-cli / redis-benchmark against the RESP port
      redis-server               # tests and benchmarks compare with a real Redis
      python3 python3-redis      # tests: acknowledged-write checkers use the client most apps use
      iproute2 iptables procps
      strace                     # tests: integration.backup stops a restore at its rename (skipped without it)
      xz-utils                   # tests/fixtures: an older version's data directories, packed
      libssl-dev openssl         # TLS 1.3 on peer and client links (OpenSSL 3.0)
      prometheus                 # promtool: tests check /metrics and the alert rules
      gnuplot-nox                # rabia-bench sweep draws its plots (PNG, SVG)
      fio                        # bench/wal_vs_fio.sh: the log's commits against fio's on the same disk
      etcd-server etcd-client)   # bench/compare.sh: a 3-member etcd 3.4 (etcd, etcdctl for its health and key count)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root (or: sudo $0)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all build and test dependencies present"
