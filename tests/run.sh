#!/usr/bin/env bash
# The test command: installs dependencies, builds (Release, warnings are
# errors) and runs every ctest test on both cores.
#   tests/run.sh            CI mode (what .ci/run runs)
#   tests/run.sh --long     also the long simulator modes (3,000 seeds x 7 mixes; 2,000 x 7 durable),
#                           50 whole-cluster kills under load, the KV store against redis-server
#                           for 30 minutes (tests/kv/difftest.sh), the KV fuzzer for 20 minutes
#                           (tests/fuzz/fuzz_kv), the pattern, log and snapshot fuzzers for 10
#                           each (fuzz_match, fuzz_wal, fuzz_snap), the linearizability test
#                           under faults for 5 minutes with each slot policy and with 5
#                           replicas, and the deep model checks
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" -j"$(nproc)" --output-on-failure
if [ "${1:-}" = "--long" ]; then
  "$build"/tests/sim/rabia_sim --all-mixes --seeds 3000 --first 100001 --quiet
  "$build"/tests/sim/rabia_sim --durable --all-mixes --seeds 2000 --first 900001 --quiet
  CRASH_ALL_ROUNDS=50 RABIA_IT_DEADLINE=1200 RABIAD="$build/cmd/rabiad" RABIA_CLI="$build/cmd/rabia-cli" \
    bash tests/integration/crash_all.sh
  # linearizability under kill -9 / whole-cluster kills / SIGSTOP /
  # partitions, 5 minutes each: window 1, window 8 with policy classes, 5 replicas
  JEPSEN_SECONDS=300 RABIA_IT_DEADLINE=600 RABIAD="$build/cmd/rabiad" RABIA_CLI="$build/cmd/rabia-cli" \
    LINCHECK="$build/tests/sim/lincheck" bash tests/integration/jepsen.sh
  JEPSEN_SECONDS=300 JEPSEN_EXTRA="--window 8 --policy classes" RABIA_IT_DEADLINE=600 RABIAD="$build/cmd/rabiad" \
    RABIA_CLI="$build/cmd/rabia-cli" LINCHECK="$build/tests/sim/lincheck" bash tests/integration/jepsen.sh
  JEPSEN_SECONDS=300 JEPSEN_N=5 RABIA_IT_DEADLINE=600 RABIAD="$build/cmd/rabiad" RABIA_CLI="$build/cmd/rabia-cli" \
    LINCHECK="$build/tests/sim/lincheck" bash tests/integration/jepsen.sh
  SNAP_BIG_MB=1100 RABIA_IT_DEADLINE=2400 RABIAD="$build/cmd/rabiad" RABIA_CLI="$build/cmd/rabia-cli" \
    bash tests/integration/snapshot_big.sh
  DIFFTEST_SEED=random DIFFTEST_OPS=1000000 DIFFTEST_DURATION=1800 RABIA_IT_DEADLINE=2100 \
    bash tests/kv/difftest.sh "$build"
  # the KV fuzzer for 20 minutes from its seeds, with a random libFuzzer seed
  # (a crash leaves crash-* in $build/tests/fuzz: replay it with the binary)
  if [ -x "$build"/tests/fuzz/fuzz_kv ]; then
    rm -rf "$build"/tests/fuzz/kv_long && mkdir -p "$build"/tests/fuzz/kv_long
    (cd "$build"/tests/fuzz && ./fuzz_kv -max_total_time=1200 -max_len=16384 -len_control=0 -rss_limit_mb=4096 \
      -timeout=60 -print_final_stats=1 kv_long kv_seeds)
  fi
  # the scripts' pattern matcher against Lua 5.1's for 10 minutes
  if [ -x "$build"/tests/fuzz/fuzz_match ]; then
    rm -rf "$build"/tests/fuzz/match_long && mkdir -p "$build"/tests/fuzz/match_long
    (cd "$build"/tests/fuzz && ./fuzz_match -max_total_time=600 -max_len=1024 -print_final_stats=1 \
      match_long match_seeds)
  fi
  # write-ahead log recovery from random damage for 10 minutes
  if [ -x "$build"/tests/fuzz/fuzz_wal ]; then
    rm -rf "$build"/tests/fuzz/wal_long && mkdir -p "$build"/tests/fuzz/wal_long
    (cd "$build"/tests/fuzz && ./fuzz_wal -max_total_time=600 -max_len=512 -len_control=0 -print_final_stats=1 \
      wal_long)
  fi
  # snapshots damaged behind a valid checksum for 10 minutes
  if [ -x "$build"/tests/fuzz/fuzz_snap ]; then
    rm -rf "$build"/tests/fuzz/snap_long && mkdir -p "$build"/tests/fuzz/snap_long
    (cd "$build"/tests/fuzz && ./fuzz_snap -max_total_time=600 -max_len=256 -print_final_stats=1 snap_long)
  fi
  if [ -x tests/model/check.sh ]; then tests/model/check.sh full; fi
fi
