#!/usr/bin/env bash
# dns_lookup: members named by host name, and a DNS server that does not
# answer. A replica looks a member's name up again at every dial (so a
# machine replaced behind the same name is found); the lookup must never
# hold the replica's event loop, or every dial to a member whose name does
# not resolve would stop the replica serving for the resolver's whole
# timeout (it did: the lookup ran on the loop, 6 s here, again after every
# backoff).
#
# Each replica runs in a mount namespace of its own (unshare -m) with its
# own /etc/hosts and /etc/resolv.conf bound over the real ones; the network
# is the host's. members names replica 3 "r3.rabia.test": replicas 2 and 3
# find it in their hosts file, replica 1 only through DNS, which is a UDP
# socket on 127.x.y.z:53 that never answers (lookups time out after 6 s).
# Replica 1 then takes SETs one after another for 10 s: none may wait 3 s
# or more, and it logs why replica 3 is unreachable. Then the name goes
# into replica 1's hosts file: it dials replica 3 by itself and all three
# are connected and converge. In the hosts files the name has ::1 first,
# where nothing takes peers (they listen on 0.0.0.0): a dial that fails
# there must go on to the name's next address (it did not: replicas 1 and
# 2 never reached replica 3).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_init dns_lookup 37
[ "$(id -u)" = 0 ] || skip "needs root (mount namespaces, a port 53 listener)"
need_cmd unshare mount python3
need_py_redis
tls_refuse "starts its replicas itself, without certificates"
mkdir -p "$RABIA_CLUSTER_DIR"

# the DNS server that never answers, on an address of its own in 127/8
DNS=127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1))
bg dns "$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print("listening", flush=True)
while True:
    s.recvfrom(4096)  # and never answer
' "$DNS"
for ((k = 0; k < 50; k++)); do ss -Hlun | grep -q "$DNS:53" && break; sleep 0.1; done
ss -Hlun | grep -q "$DNS:53" || fail "the silent DNS server did not start on $DNS:53"
mkdir -p "$IT_DIR/etc1" "$IT_DIR/etc"
printf 'nameserver %s\noptions timeout:6 attempts:1\n' "$DNS" >"$IT_DIR/etc1/resolv.conf"
cp "$IT_DIR/etc1/resolv.conf" "$IT_DIR/etc/resolv.conf"
printf '127.0.0.1 localhost\n' >"$IT_DIR/etc1/hosts"
# the name has an IPv6 address first, where nothing listens (replicas take
# peers on 0.0.0.0: IPv4 only): a dial that fails there must try the next
printf '127.0.0.1 localhost\n::1 r3.rabia.test\n127.0.0.1 r3.rabia.test\n' >"$IT_DIR/etc/hosts"
# the lookup as replica 1 will see it: fails after the timeout
t0=$(date +%s%N)
rc=0
unshare -m sh -c 'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && exec getent ahosts r3.rabia.test' \
  sh "$IT_DIR/etc1/hosts" "$IT_DIR/etc1/resolv.conf" >/dev/null 2>&1 || rc=$?
took=$((($(date +%s%N) - t0) / 1000000))
[ "$rc" != 0 ] && ((took >= 5000)) || skip "this machine's resolver does not wait for the silent DNS server (getent: exit $rc after $took ms)"
ok "r3.rabia.test through the silent DNS server: no answer, after $took ms"

MEMBERS="1=127.0.0.1:$(peer_port 1),2=127.0.0.1:$(peer_port 2),3=r3.rabia.test:$(peer_port 3)"
start() { # start I ETC_DIR
  local i=$1 etc=$2
  unshare -m sh -c 'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@"' \
    sh "$etc/hosts" "$etc/resolv.conf" "$RABIAD" --id "$i" --members "$MEMBERS" \
    --client-listen "127.0.0.1:$(native_port "$i")" --resp-listen "127.0.0.1:$(resp_port "$i")" \
    --data-dir "$RABIA_CLUSTER_DIR/r$i" --state-machine kv >>"$RABIA_CLUSTER_DIR/r$i.log" 2>&1 &
  echo $! >"$RABIA_CLUSTER_DIR/r$i.pid"
  disown $!
  remember_pids
}
start 1 "$IT_DIR/etc1"
start 2 "$IT_DIR/etc"
start 3 "$IT_DIR/etc"
wait_ready 20 2 3
ok "replica 2 reached replica 3 by name, whose first address (::1) takes no peers"

# SETs one at a time at replica 1 for 10 s: the slowest one
cat >"$IT_DIR/slowest.py" <<'EOF'
import sys, time, redis
r = redis.Redis(port=int(sys.argv[1]), socket_timeout=30)
n, worst, t_end = 0, 0.0, time.monotonic() + 10
while time.monotonic() < t_end:
    t = time.monotonic()
    r.set("k:%d" % n, "v" * 100)
    worst = max(worst, time.monotonic() - t)
    n += 1
print(n, "%.3f" % worst)
EOF
out=$(timeout 60 "$PY" "$IT_DIR/slowest.py" "$(resp_port 1)") || fail "the SET loop at replica 1 failed: $out"
read -r n worst <<<"$out"
say "replica 1: $n SETs in 10 s, the slowest took $worst s"
awk -v w="$worst" 'BEGIN { exit !(w < 3.0) }' ||
  fail "replica 1 stalled $worst s on one SET while it looked up r3.rabia.test (the lookup held its event loop)"
ok "replica 1 served every SET in under 3 s while r3.rabia.test did not resolve ($n SETs, slowest $worst s)"
wait_log() { # wait_log FILE PATTERN SECONDS
  local k
  for ((k = 0; k < $3 * 10; k++)); do grep -q -- "$2" "$1" && return 0; sleep 0.1; done
  fail "no line matching '$2' in $1 within $3 s (last lines: $(tail -n 5 "$1" | tr '\n' ' '))"
}
wait_log "$RABIA_CLUSTER_DIR/r1.log" "replica 3 at r3.rabia.test:$(peer_port 3): cannot look the name up" 15
ok "replica 1 says why it cannot reach replica 3: $(grep -m1 'cannot look the name up' "$RABIA_CLUSTER_DIR/r1.log" | cut -c1-200)"

# the name appears in replica 1's hosts file (written in place: the file
# bound over /etc/hosts is this inode): it dials replica 3 by itself
cp "$IT_DIR/etc/hosts" "$IT_DIR/etc1/hosts.new"
cat "$IT_DIR/etc1/hosts.new" >"$IT_DIR/etc1/hosts"
wait_ready 30 1 2 3
ok "replica 1 found r3.rabia.test and connected"
expect_eq "SET through replica 3" "$(redis 3 SET after ok)" OK
wait_converged 30 1 2 3
