#!/usr/bin/env python3
"""RESP connection lifecycle cases for one replica (used by resp_conn.sh).

    resp_conn.py HOST PORT

Each case opens its own connection, sends its bytes, optionally shuts its
sending side down (shutdown(SHUT_WR), as `nc -N` or a client that sends a
batch and then reads), and reads until the replica closes (or 5 s). What
came back, and whether the connection was closed, must equal what
redis-server 7.0.15 sends for the same bytes. Prints one line per case;
exits 1 if any differs.
"""
import socket
import sys
import time


def cmd(*a):
    out = b"*%d\r\n" % len(a)
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    return out


def talk(addr, data, shut, wait=5.0):
    s = socket.create_connection(addr, timeout=wait)
    s.sendall(data)
    if shut:
        s.shutdown(socket.SHUT_WR)
    got, closed, end = b"", False, time.monotonic() + wait
    while time.monotonic() < end:
        try:
            d = s.recv(1 << 16)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not d:
            closed = True
            break
        got += d
    s.close()
    return got, closed


PIPE_SETS = 50
# (name, bytes, shut, redis-server 7.0.15's reply, closed by it)
CASES = [
    ("PING, then EOF", cmd("PING"), True, b"+PONG\r\n", True),
    ("inline PING, then EOF", b"PING\r\n", True, b"+PONG\r\n", True),
    ("SET, then EOF", cmd("SET", "eof:a", "1"), True, b"+OK\r\n", True),
    ("SET GET INCR, then EOF", cmd("SET", "eof:b", "1") + cmd("GET", "eof:b") + cmd("INCR", "eof:b"), True,
     b"+OK\r\n$1\r\n1\r\n:2\r\n", True),
    ("%d SETs and GETs, then EOF" % PIPE_SETS,
     b"".join(cmd("SET", "eof:p%d" % i, i) + cmd("GET", "eof:p%d" % i) for i in range(PIPE_SETS)), True,
     b"".join(b"+OK\r\n$%d\r\n%d\r\n" % (len(str(i)), i) for i in range(PIPE_SETS)), True),
    ("SET and a partial GET, then EOF", cmd("SET", "eof:c", "1") + b"*2\r\n$3\r\nGET", True, b"+OK\r\n", True),
    ("MULTI SET INCR EXEC, then EOF", cmd("MULTI") + cmd("SET", "eof:d", "1") + cmd("INCR", "eof:d") + cmd("EXEC"),
     True, b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:2\r\n", True),
    ("WATCH MULTI SET EXEC GET, then EOF",
     cmd("WATCH", "eof:e") + cmd("MULTI") + cmd("SET", "eof:e", "1") + cmd("EXEC") + cmd("GET", "eof:e"), True,
     b"+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n$1\r\n1\r\n", True),
    ("SUBSCRIBE PING, then EOF", cmd("SUBSCRIBE", "eof:ch") + cmd("PING"), True,
     b"*3\r\n$9\r\nsubscribe\r\n$6\r\neof:ch\r\n:1\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n", True),
    ("RPUSH BLPOP PING, then EOF", cmd("RPUSH", "eof:l", "a") + cmd("BLPOP", "eof:l", "1") + cmd("PING"), True,
     b":1\r\n*2\r\n$5\r\neof:l\r\n$1\r\na\r\n+PONG\r\n", True),
    # Redis drops a blocked client at EOF, without a reply
    ("BLPOP of an empty list, then EOF", cmd("BLPOP", "eof:none", "3"), True, b"", True),
    ("SET QUIT PING, then EOF", cmd("SET", "eof:f", "1") + cmd("QUIT") + cmd("PING"), True, b"+OK\r\n+OK\r\n", True),
    ("SET and a bad multibulk length, then EOF", cmd("SET", "eof:g", "1") + b"*x\r\n", True,
     b"+OK\r\n-ERR Protocol error: invalid multibulk length\r\n", True),
    # CLIENT REPLY: OFF silences every reply until ON, SKIP its own and the
    # next command's (it was an unknown subcommand: its error, then every
    # reply a client that asked for none was not reading)
    ("CLIENT REPLY OFF, PING SET, ON, GET",
     cmd("CLIENT", "REPLY", "OFF") + cmd("PING") + cmd("SET", "rep:a", "1") + cmd("CLIENT", "REPLY", "ON") +
     cmd("GET", "rep:a"), True, b"+OK\r\n$1\r\n1\r\n", True),
    ("CLIENT REPLY OFF, 100 INCRs, an error, ON, GET",
     cmd("CLIENT", "REPLY", "OFF") + cmd("INCR", "rep:n") * 100 + cmd("FOO") + cmd("CLIENT", "REPLY", "ON") +
     cmd("GET", "rep:n"), True, b"+OK\r\n$3\r\n100\r\n", True),
    ("CLIENT REPLY SKIP, SET, GET", cmd("CLIENT", "REPLY", "SKIP") + cmd("SET", "rep:b", "2") + cmd("GET", "rep:b"),
     True, b"$1\r\n2\r\n", True),
    ("CLIENT REPLY SKIP twice, PING a, PING x",
     cmd("CLIENT", "REPLY", "SKIP") * 2 + cmd("PING", "a") + cmd("PING", "x"), True, b"$1\r\nx\r\n", True),
    ("CLIENT REPLY SKIP, ON, PING x", cmd("CLIENT", "REPLY", "SKIP") + cmd("CLIENT", "REPLY", "ON") + cmd("PING", "x"),
     True, b"+OK\r\n$1\r\nx\r\n", True),
    ("CLIENT REPLY OFF, MULTI INCR EXEC, ON, GET",
     cmd("CLIENT", "REPLY", "OFF") + cmd("MULTI") + cmd("INCR", "rep:m") + cmd("EXEC") + cmd("CLIENT", "REPLY", "ON") +
     cmd("GET", "rep:m"), True, b"+OK\r\n$1\r\n1\r\n", True),
    ("CLIENT REPLY OFF, RESET, PING", cmd("CLIENT", "REPLY", "OFF") + cmd("RESET") + cmd("PING"), True,
     b"+RESET\r\n+PONG\r\n", True),
    ("CLIENT REPLY SKIP, RPUSH BLPOP PING" , cmd("RPUSH", "rep:l", "v") + cmd("CLIENT", "REPLY", "SKIP") +
     cmd("BLPOP", "rep:l", "1") + cmd("PING"), True, b":1\r\n+PONG\r\n", True),
    ("CLIENT REPLY with a bad mode", cmd("CLIENT", "REPLY", "X"), True, b"-ERR syntax error\r\n", True),
    # and without EOF the connection stays open
    ("SET GET, kept open", cmd("SET", "eof:h", "1") + cmd("GET", "eof:h"), False, b"+OK\r\n$1\r\n1\r\n", False),
]


def main():
    addr = (sys.argv[1], int(sys.argv[2]))
    failed = 0
    for name, data, shut, want, want_closed in CASES:
        wait = 5.0 if want_closed else 1.0
        t0 = time.monotonic()
        got, closed = talk(addr, data, shut, wait)
        dt = time.monotonic() - t0
        if got == want and closed == want_closed:
            print("ok   %s: %d bytes, %s (%.2f s)" % (name, len(got), "closed" if closed else "open", dt))
        else:
            failed += 1
            print("FAIL %s: got %r (%s), redis-server sends %r (%s)" %
                  (name, got[:300], "closed" if closed else "open", want[:300], "closed" if want_closed else "open"))
    print("%d cases, %d failed" % (len(CASES), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
