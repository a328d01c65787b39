"""Helpers shared by the integration tests' own Python scripts
(peer_port.py, client_limits.py): one line per check, and whether a
replica closed a socket, without waiting."""
import socket

failures = 0


def check(good, what):
    """Print 'ok ...' or 'FAIL ...'; the script exits 1 if any failed
    (it_check.failures)."""
    global failures
    print(f"  {'ok  ' if good else 'FAIL'} {what}", flush=True)
    if not good:
        failures += 1


def closed_now(s):
    """Whether the replica has closed s (EOF or reset), without waiting."""
    s.setblocking(False)
    try:
        return s.recv(1 << 20) == b""
    except (BlockingIOError, socket.timeout):
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
