#!/usr/bin/env bash
# tests/upgrade.sh [OLD_COMMIT]: an upgrade in place. Builds rabiad and
# rabia-cli of OLD_COMMIT (default: the last commit before the frame
# checksum became XXH3, version 3) in a temporary git worktree, runs a
# 3-replica cluster of it with write-ahead logs under a SET load, stops it,
# and starts this checkout's build/cmd/rabiad on the same data directories:
# every replica replays the old log (its records carry version 2 frames),
# every key reads back the same on all three, and writes go on.
# Not part of ctest (it builds a second tree: 3-5 minutes on 2 cores; ctest runs
# the same checks on packed data directories: integration.upgrade_fixture); the
# README lists it among the long modes.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:-$(git log --format=%H -n 1 --grep='frames carry XXH3' | xargs -r -I{} git rev-parse '{}~1')}
[ -n "$old" ] || { echo "upgrade.sh: name the old commit (no commit says 'frames carry XXH3')" >&2; exit 2; }
[ -x build/cmd/rabiad ] || { echo "upgrade.sh: build this checkout first (cmake --build build)" >&2; exit 2; }
wt=$(mktemp -d /tmp/rabia-upgrade-wt.XXXXXX)
trap 'git worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"' EXIT
git worktree add -q --detach "$wt" "$old"
echo "upgrade.sh: building $(git log --oneline -n 1 "$old") in $wt"
cmake -S "$wt" -B "$wt/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$wt/build" -j2 --target rabiad rabia-cli >/dev/null
OLD_RABIAD=$wt/build/cmd/rabiad OLD_RABIA_CLI=$wt/build/cmd/rabia-cli \
  RABIAD=$PWD/build/cmd/rabiad RABIA_CLI=$PWD/build/cmd/rabia-cli bash tests/integration/upgrade_log.sh
