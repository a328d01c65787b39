#!/usr/bin/env bash
# resp_compat: Redis compatibility of the RESP front end as client
# libraries see it, through redis-py (resp_compat.py): the client id
# (CLIENT ID, HELLO, CLIENT LIST) is below 2^53, so that JavaScript clients
# (integers as doubles) pass it back exact to CLIENT KILL ID and CLIENT
# UNBLOCK (it was a 63-bit hash: the id they sent back named no
# connection); a connection command inside MULTI (INFO in redis-py's
# default pipeline, CLIENT SETNAME) is refused with an error naming it and
# the fix, not Redis's bare "Command not allowed inside a transaction";
# CONFIG SET of a Redis parameter says it is not supported (not "Unknown
# option"); ACL categories of KEYS, FLUSHALL, FLUSHDB (@slow), SORT, SORT_RO
# (@dangerous) and CONFIG HELP (@slow only) are Redis 7.0's.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init resp_compat 68
here=$(cd "$(dirname "$0")" && pwd)
need_py_redis
tls_refuse "resp_compat.py connects without TLS"

# users without one category each (resp_compat.py's ACL checks); default
# as without a file
cat >"$IT_DIR/users.acl" <<'ACL'
user default on nopass ~* &* +@all
user no_slow on >pw ~* &* +@all -@slow
user no_dangerous on >pw ~* &* +@all -@dangerous
ACL
export RABIA_EXTRA_ARGS="--acl-file $IT_DIR/users.acl"
cluster_start 3 kv
out=$(timeout 60 "$PY" "$here/resp_compat.py" "$(resp_port 1),$(resp_port 2),$(resp_port 3)" 2>&1) || rc=$?
printf '%s\n' "$out" | sed "s/^/[$IT_NAME]   /"
[ "${rc:-0}" = 0 ] || fail "$(tail -1 <<<"$out")"
ok "$(tail -1 <<<"$out")"
