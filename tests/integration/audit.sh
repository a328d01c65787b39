#!/usr/bin/env bash
# audit: the audit log (audit-log = path) on every replica of a 3-replica KV
# cluster, with a small audit-log-max-bytes (65536) so that it rotates.
#
# audit_check.py load sends writes of several types (and reads, a MULTI/EXEC,
# writes the store refuses) through python3-redis at all three replicas, one
# at a time. Each replica's audit files, oldest first, must hold exactly the
# answered writes, in that order, no reads, each line JSON, the user and
# client address on the line of the replica that took the write only, and
# the same (slot, session, seq, command) sequence on every replica. Then
# redis-benchmark writes far more than the files keep: at most
# audit-log-keep rotated files, none past max-bytes, long values truncated
# (and said so), INFO counts the rotations and no errors. Last, an audit
# path that cannot be written (a link to /dev/full: ENOSPC) is logged as an
# error and counted in INFO (errors, lines dropped) while the replica keeps
# serving, and the log resumes in a new file once the path is writable.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init audit 22
need_cmd redis-cli redis-benchmark
PY=/usr/bin/python3 # Debian's python3 (python3-redis lives there), not another one first on PATH
[ -x "$PY" ] || PY=python3
"$PY" -c 'import redis' 2>/dev/null || skip "python3-redis is not installed (deploy/install-deps.sh installs it)"
HERE=$(cd "$(dirname "$0")" && pwd)
KEEP=6
MAXB=65536

RABIA_EXTRA_ARGS="--audit-log audit.log --audit-log-max-bytes $MAXB --audit-log-keep $KEEP" cluster_start 3 kv "$IT_DIR/c"
AUD=()
for i in 1 2 3; do AUD+=("$IT_DIR/c/r$i/audit.log"); done

say "writes and reads at all three replicas, one at a time"
timeout 90 "$PY" "$HERE/audit_check.py" load "$(resp_port 1),$(resp_port 2),$(resp_port 3)" 900 "$IT_DIR/expected.json" ||
  fail "audit_check.py load failed"
NW=$(wc -l <"$IT_DIR/expected.json")
wait_converged 20 1 2 3
sleep 0.5 # the last turn's lines are written at the next loop turn
out=$("$PY" "$HERE/audit_check.py" verify "$IT_DIR/expected.json" "$KEEP" "$MAXB" "${AUD[@]}" 2>&1) ||
  fail "audit logs: $out"
say "$out"
ok "every replica's audit log holds exactly the $NW answered writes, in slot order, no reads"
[ -e "${AUD[0]}.1" ] || fail "no rotation happened (${AUD[0]}.1 missing; $(wc -c <"${AUD[0]}") bytes in ${AUD[0]})"
ok "rotated: $(ls "$IT_DIR/c/r1" | grep -c '^audit.log') files on replica 1"
line=$(grep -m1 '"cmd":"SET"' "${AUD[1]}.1" 2>/dev/null || grep -m1 '"cmd":"SET"' "${AUD[1]}")
say "a line: $line"

say "far more than the files keep: redis-benchmark SETs of 200-byte values"
timeout 60 redis-benchmark -p "$(resp_port 2)" -q -n 3000 -r 1000 -d 200 -t set -P 8 >/dev/null || fail "redis-benchmark failed"
redis 1 GET s:1 >/dev/null
wait_converged 20 1 2 3
sleep 0.5
out=$("$PY" "$HERE/audit_check.py" tail "$KEEP" "$MAXB" "${AUD[@]}" 2>&1) || fail "audit logs after the rotations: $out"
say "$out"
for i in 1 2 3; do
  n=$(ls "$IT_DIR/c/r$i" | grep -c '^audit\.log')
  expect_eq "replica $i: audit files (audit.log and $KEEP rotated)" "$n" $((KEEP + 1))
  info=$(redis "$i" INFO persistence | tr -d '\r')
  rot=$(sed -n 's/^audit_log_rotations://p' <<<"$info")
  ((rot > KEEP)) || fail "replica $i: INFO audit_log_rotations $rot, expected more than $KEEP"
  expect_eq "replica $i: INFO audit_log_errors" "$(sed -n 's/^audit_log_errors://p' <<<"$info")" 0
done
last=$(tail -n 1 "${AUD[2]}")
shown=$("$PY" -c 'import json,sys; e=json.loads(sys.argv[1]); print(e["cmd"], len(e["args"][1]), e["args_bytes"], e.get("truncated"))' "$last") ||
  fail "the last line does not parse: $last"
expect_eq "a 200-byte value: cmd, bytes shown, args_bytes, truncated" "$shown" "SET 128 216 True"

say "an audit file that cannot be written (ENOSPC): counted, logged, the replica keeps serving"
mv "${AUD[2]}" "${AUD[2]}.moved"
ln -s /dev/full "${AUD[2]}" # reopened within a second (the path changed): every write fails with ENOSPC
sleep 1.5
for k in 1 2 3 4 5; do redis 3 SET "e:$k" v >/dev/null; done
expect_eq "replica 3 still serves" "$(redis 3 GET e:5)" v
sleep 0.5
info=$(redis 3 INFO persistence | tr -d '\r')
errs=$(sed -n 's/^audit_log_errors://p' <<<"$info")
dropped=$(sed -n 's/^audit_log_lines_dropped://p' <<<"$info")
((errs > 0 && dropped >= 5)) || fail "replica 3: INFO audit_log_errors $errs, audit_log_lines_dropped $dropped after its audit file became /dev/full"
ok "replica 3: INFO audit_log_errors $errs, audit_log_lines_dropped $dropped"
grep -q "ERROR.*audit-log ${AUD[2]}: write: No space left on device" "$IT_DIR/c/r3.log" ||
  fail "replica 3 logged no audit error: $(grep -i audit "$IT_DIR/c/r3.log" | tail -n 3)"
ok "replica 3 logged: $(grep -m1 'audit-log.*write: No space' "$IT_DIR/c/r3.log")"
rm "${AUD[2]}"
sleep 1.5
redis 3 SET e:after v >/dev/null
sleep 0.5
grep -q '"args":\["e:after","v"\]' "${AUD[2]}" || fail "replica 3 did not resume its audit log once the path was writable again"
ok "replica 3 resumed its audit log in a new file"

if [ -n "${RABIA_TLS_DIR:-}" ]; then
  say "malformed transactions: not over TLS (native_req writes plain frames)"
else
say "malformed transactions (native ops the RESP front end never builds): applied as errors, logged as nothing"
NATIVE_REQ=${NATIVE_REQ:-$IT_REPO/build/tests/integration/native_req}
[ -x "$NATIVE_REQ" ] || fail "native_req not found at $NATIVE_REQ: build first"
# connection-scoped ids (bit 63) need no OPEN; a one-argument TXNW once made
# the audit hook read arguments that were never parsed, at every replica
out=$(timeout 20 "$NATIVE_REQ" "$(native_addr 1)" 9223372036854775841 1 0 TXNW)
expect_match "TXNW without its count" "$out" "malformed TXNW"
out=$(timeout 20 "$NATIVE_REQ" "$(native_addr 2)" 9223372036854775842 1 0 TXNW 00 SET aud:txnw v)
expect_match "TXNW with a count of 00" "$out" "malformed TXNW"
redis 1 SET aud:after-txnw v >/dev/null
wait_converged 20 1 2 3
all_alive 3
recent() { cat "${AUD[1]}.1" "${AUD[1]}" 2>/dev/null; } # the file may have rotated meanwhile
if recent | grep -q 'aud:txnw'; then fail "a refused TXNW was logged as a write: $(recent | grep aud:txnw)"; fi
recent | grep -q '"args":\["aud:after-txnw","v"\]' || fail "replica 1's audit log lacks the SET after the malformed TXNWs"
ok "the refused TXNWs left no line; the SET after them is logged"
fi
cluster_stop
