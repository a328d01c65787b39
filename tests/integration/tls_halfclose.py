"""A TLS client that sends its commands, then close_notify (SSL_shutdown:
"I send nothing more"), optionally a TCP FIN after it, and reads on: the
replies to what it sent must still come, as they do for a plaintext client
that shuts its sending side down (shutdown(SHUT_WR)).

usage: tls_halfclose.py PORT CA_FILE close_notify|close_notify+fin
Prints the replies received before the server closed, CR LF as spaces."""
import socket
import ssl
import sys

port, ca, how = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
s = socket.create_connection(("127.0.0.1", port), timeout=10)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
o = ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")


def flush():
    d = out.read()
    if d:
        s.sendall(d)


while True:
    try:
        o.do_handshake()
        break
    except ssl.SSLWantReadError:
        flush()
        d = s.recv(65536)
        if not d:
            sys.exit("closed during the handshake")
        inc.write(d)
flush()
cmds = [[b"SET", b"tls:half", b"v" * 100], [b"INCR", b"tls:halfn"], [b"GET", b"tls:half"]]
req = b"".join(b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in c) for c in cmds)
o.write(req)
flush()
try:
    o.unwrap()  # close_notify; the server's own comes later (or never)
except ssl.SSLWantReadError:
    pass
flush()
if how == "close_notify+fin":
    s.shutdown(socket.SHUT_WR)
got = b""
while True:
    try:
        d = s.recv(65536)
    except (ConnectionResetError, socket.timeout) as e:
        got += b" <%s>" % type(e).__name__.encode()
        break
    if not d:
        break
    inc.write(d)
    try:
        while True:
            b = o.read(65536)
            if not b:
                break
            got += b
    except ssl.SSLWantReadError:
        pass
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
        break
    except ssl.SSLError as e:
        got += b" <%s>" % str(e).encode()
        break
print(got.replace(b"\r\n", b" ").decode(errors="replace").strip())
