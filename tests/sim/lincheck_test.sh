#!/usr/bin/env bash
# lincheck's command line on small histories: exit 0 / 1 / 3 as documented,
# the violating op starred, malformed lines named by file and line.
set -euo pipefail
L=${1:?usage: lincheck_test.sh path/to/lincheck}
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
fail() { echo "lincheck_test: FAIL: $*" >&2; exit 1; }
run() { rc=0; out=$("$L" "$@" 2>&1) || rc=$?; }

# a write, then reads of it and a CAS from it; an unknown write seen later
cat >"$d/ok.txt" <<'H'
# client key kind arg arg2 result status invoke complete
1 1 w 5 0 0 ok 10 20
2 1 r 0 0 5 ok 25 30
3 1 c 5 7 1 ok 31 35
4 1 w 9 0 0 unknown 32 0
4 1 r 0 0 9 ok 50 60
5 2 r 0 0 0 ok 1 2
H
run "$d/ok.txt"
[ "$rc" = 0 ] && grep -q '^linearizable$' <<<"$out" || fail "ok.txt: exit $rc: $out"
grep -q 'history .*: 6 ops (read ok 3, unknown 0, fail 0; write ok 1, unknown 1' <<<"$out" || fail "ok.txt counts: $out"

# a stale read: 0 after the write of 5 completed
cat >"$d/stale.txt" <<'H'
1 1 w 5 0 0 ok 10 20
2 1 r 0 0 5 ok 25 30
3 1 r 0 0 0 ok 31 35
H
run "$d/stale.txt"
[ "$rc" = 1 ] || fail "stale.txt: exit $rc, expected 1: $out"
grep -q '^\* c3 READ k1 -> 0 \[31,35\]$' <<<"$out" || fail "stale.txt: the stale read is not starred: $out"

# a CAS that claims to swap from a value the register never held
printf '1 3 w 4 0 0 ok 1 2\n2 3 c 6 8 1 ok 3 4\n' >"$d/cas.txt"
run "$d/cas.txt"
[ "$rc" = 1 ] || fail "cas.txt: exit $rc, expected 1: $out"

# malformed input: named by file and line, exit 3
printf '1 1 w 5 0 0 ok 10 20\n1 1 x 5 0 0 ok 10 20\n' >"$d/bad.txt"
run "$d/bad.txt"
[ "$rc" = 3 ] && grep -q 'bad.txt:2: KIND must be r, w or c' <<<"$out" || fail "bad.txt: exit $rc: $out"
printf '1 1 w 5 0 0 ok 20 10\n' >"$d/time.txt"
run "$d/time.txt"
[ "$rc" = 3 ] && grep -q 'completes before its invocation' <<<"$out" || fail "time.txt: exit $rc: $out"
printf '1 1 w -5 0 0 ok 1 2\n' >"$d/neg.txt"
run "$d/neg.txt"
[ "$rc" = 3 ] || fail "neg.txt: exit $rc: $out"
run "$d/missing.txt"
[ "$rc" = 3 ] && grep -q 'cannot open' <<<"$out" || fail "missing file: exit $rc: $out"
run
[ "$rc" = 3 ] || fail "no arguments: exit $rc"
echo "lincheck_test: ok (linearizable, stale read, impossible CAS, three malformed lines, a missing file, no arguments)"
