#!/usr/bin/env bash
# Every test that listens on fixed ports owns a port slot (lib.sh: ports
# 20000 + 100*SLOT .. +99), and ctest -j runs them side by side; two tests
# on one slot fail at random when they happen to overlap ("Address already in
# use"; embed_stop and embed_default did on 2026-12-05). This check fails when
# a slot has two owners, naming both, so the clash shows on every run instead.
#
# Owners: `it_init NAME SLOT` in a test script; `${RABIA_IT_PORT_BASE:-20000}
# + 100 * SLOT` elsewhere in a script (a second set of ports of its own); the
# port base given to a C test in tests/integration/CMakeLists.txt
# (`$<TARGET_FILE:embed_x> BASE`, BASE = 20000 + 100*SLOT).
#   port_slots.sh [REPO]      exit 0 when every slot has one owner
set -euo pipefail
repo=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
owners=$(mktemp)
trap 'rm -f "$owners"' EXIT

while IFS= read -r f; do
  rel=${f#"$repo"/}
  own=$(sed -n 's/^it_init [A-Za-z0-9_]* \([0-9][0-9]*\)$/\1/p' "$f" | head -n 1)
  [ -n "$own" ] && echo "$own $rel (it_init)" >>"$owners"
  # more slots the same script takes (not its own again: counter_bank's
  # fake server and tls_suite's base lie inside their own slot)
  { grep -o 'RABIA_IT_PORT_BASE:-20000} + 100 \* [0-9][0-9]*' "$f" || true; } | sed 's/.* //' | sort -u |
    while read -r s; do [ "$s" = "$own" ] || echo "$s $rel (a second set of ports)"; done >>"$owners"
done < <(find "$repo/tests" -name '*.sh' ! -name lib.sh ! -name port_slots.sh | sort)

grep -o 'TARGET_FILE:[a-z_]*> [0-9][0-9]*' "$repo/tests/integration/CMakeLists.txt" |
  while read -r target base; do
    t=${target#TARGET_FILE:}
    t=${t%>}
    # a C test takes ports base+1 .. base+99: the slots that range touches
    for p in "$base" $((base + 99)); do
      echo "$(((p - 20000) / 100)) tests/integration/CMakeLists.txt ($t, port base $base)"
    done | sort -u
  done >>"$owners"

n=$(wc -l <"$owners")
[ "$n" -ge 40 ] || { echo "port_slots: found only $n slot owners: the patterns above no longer match the tests" >&2; exit 1; }
max=$(sort -n "$owners" | tail -n 1 | cut -d' ' -f1)
# the ports must stay below the kernel's ephemeral range (32768 by default),
# where outgoing connections take their local ports
if [ $((20000 + 100 * max + 99)) -ge 32768 ]; then
  echo "port_slots: slot $max reaches port $((20000 + 100 * max + 99)), inside the ephemeral range (32768..): use a free lower slot" >&2
  exit 1
fi
dups=$(cut -d' ' -f1 "$owners" | sort -n | uniq -d)
if [ -n "$dups" ]; then
  for s in $dups; do
    echo "port_slots: slot $s (ports $((20000 + 100 * s))..$((20000 + 100 * s + 99))) has more than one owner:" >&2
    grep "^$s " "$owners" | sed 's/^[0-9]* /  /' >&2
  done
  free=$(comm -23 <(seq 1 "$((max + 1))" | sort) <(cut -d' ' -f1 "$owners" | sort -u) | sort -n | head -n 3 | tr '\n' ' ')
  echo "port_slots: give each its own slot (free: $free)" >&2
  exit 1
fi
echo "port_slots: $n owners, slots 1..$max, each slot one owner"
