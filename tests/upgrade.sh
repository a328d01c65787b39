#!/usr/bin/env bash
# tests/upgrade.sh [--rolling] [OLD_COMMIT]: an upgrade from an older build.
# Builds rabiad and rabia-cli of OLD_COMMIT in a temporary git worktree, then:
#
# - in place (default; OLD_COMMIT defaults to the last commit before the
#   frame checksum became XXH3, version 3): runs a 3-replica cluster of it
#   with write-ahead logs under a SET load, stops it, and starts this
#   checkout's build/cmd/rabiad on the same data directories: every replica
#   replays the old log (its records carry version 2 frames), every key
#   reads back the same on all three, and writes go on
#   (tests/integration/upgrade_log.sh);
# - --rolling (OLD_COMMIT defaults to the oldest commit that speaks this
#   build's protocol version, RABIA_PROTOCOL_VERSION): replaces the old
#   build's replicas one at a time under load, rolls one back and forward
#   again, and checks that no acknowledged write is lost
#   (tests/integration/rolling_upgrade.sh). Builds of different protocol
#   versions do not mix: upgrade those in place.
#
# Not part of ctest (it builds a second tree: 3-5 minutes on 2 cores; ctest runs
# the same checks on packed data directories, integration.upgrade_fixture, and
# the rolling steps with this build on both sides, integration.rolling_upgrade);
# the README lists it among the long modes.
set -euo pipefail
cd "$(dirname "$0")/.."
rolling=0
if [ "${1:-}" = --rolling ]; then
  rolling=1
  shift
fi
if ((rolling)); then
  # the commit that set this protocol version: every build since speaks it
  v=$(sed -n 's/^#define RABIA_PROTOCOL_VERSION \([0-9]*\).*/\1/p' include/rabia/types.h)
  old=${1:-$(git log --format=%H -n 1 -S"#define RABIA_PROTOCOL_VERSION $v " -- include/rabia/types.h)}
  [ -n "$old" ] || { echo "upgrade.sh: name the old commit (none sets protocol version $v)" >&2; exit 2; }
else
  old=${1:-$(git log --format=%H -n 1 --grep='frames carry XXH3' | xargs -r -I{} git rev-parse '{}~1')}
  [ -n "$old" ] || { echo "upgrade.sh: name the old commit (no commit says 'frames carry XXH3')" >&2; exit 2; }
fi
[ -x build/cmd/rabiad ] || { echo "upgrade.sh: build this checkout first (cmake --build build)" >&2; exit 2; }
wt=$(mktemp -d /tmp/rabia-upgrade-wt.XXXXXX)
trap 'git worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"' EXIT
git worktree add -q --detach "$wt" "$old"
echo "upgrade.sh: building $(git log --oneline -n 1 "$old") in $wt"
cmake -S "$wt" -B "$wt/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$wt/build" -j2 --target rabiad rabia-cli >/dev/null
script=tests/integration/upgrade_log.sh
((rolling)) && script=tests/integration/rolling_upgrade.sh
OLD_RABIAD=$wt/build/cmd/rabiad OLD_RABIA_CLI=$wt/build/cmd/rabia-cli \
  RABIAD=$PWD/build/cmd/rabiad RABIA_CLI=$PWD/build/cmd/rabia-cli bash "$script"
