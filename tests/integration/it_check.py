"""Helpers shared by the integration tests' own Python scripts
(peer_port.py, client_limits.py, client_memory.py; redis_lib.py and
resp_compat.py use expect): one line per check,
whether a replica closed a socket without waiting, and RESP on a raw
socket (a command, a line, a simple or bulk reply)."""
import socket

failures = 0


def check(good, what):
    """Print 'ok ...' or 'FAIL ...'; the script exits 1 if any failed
    (it_check.failures)."""
    global failures
    print(f"  {'ok  ' if good else 'FAIL'} {what}", flush=True)
    if not good:
        failures += 1


failed = []


def expect(what, got, want):
    """Silent when got == want; else print 'FAIL what: got ..., want ...'
    and note what in it_check.failed (the script's last line lists them)."""
    if got != want:
        failed.append(what)
        print(f"FAIL {what}: got {got!r}, want {want!r}")


def closed_now(s):
    """Whether the replica has closed s (EOF or reset), without waiting."""
    s.setblocking(False)
    try:
        return s.recv(1 << 20) == b""
    except (BlockingIOError, socket.timeout):
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True


def bulk(*args):
    """One RESP command as an array of bulk strings (bytes arguments)."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_line(s, wait=10.0):
    """Bytes up to and including the next CRLF (less at EOF)."""
    s.settimeout(wait)
    buf = b""
    while not buf.endswith(b"\r\n"):
        d = s.recv(1)
        if not d:
            break
        buf += d
    return buf


def read_reply(s, wait=10.0):
    """One simple reply (+, -, :) or bulk string, its header included."""
    head = read_line(s, wait)
    if not head.startswith(b"$") or head.startswith(b"$-1") or not head.endswith(b"\r\n"):
        return head
    n = int(head[1:-2]) + 2
    body = b""
    while len(body) < n:
        d = s.recv(n - len(body))
        if not d:
            break
        body += d
    return head + body
