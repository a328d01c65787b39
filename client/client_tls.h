/* client/client_tls.h: TLS 1.3 for the native client library (client.c),
 * over its non-blocking socket. Private to client/. */
#ifndef RABIA_CLIENT_TLS_H
#define RABIA_CLIENT_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "rabia/client.h"

/* "host:port" or "[v6]:port" into host and port (client.c). 0 or -EINVAL. */
int client_split_addr(const char *a, char *host, size_t hcap, char *port, size_t pcap);
/* A client context from cfg's tls_* files (TLS 1.3 only, the server
 * verified against tls_ca_file; tls_cert_file/tls_key_file optional).
 * NULL with err filled (the file and OpenSSL's reason). */
SSL_CTX *ctls_ctx_new(const struct rabia_client_cfg *cfg, char *err, size_t errlen);
/* Handshake on the connected non-blocking socket fd, waiting with poll()
 * until deadline_ms (monotonic ms). The replica's certificate must name
 * server_name, or when that is NULL or "" the host of addr ("host:port" or
 * "[v6]:port", the address dialed): a DNS name is checked against the
 * certificate's DNS names (and sent as SNI), an IP address against its IP
 * addresses. 0 and *out, or a negative errno (-ETIMEDOUT, -EPROTO with err
 * filled, -EINVAL for an addr without a host, -ENOMEM). */
int ctls_handshake(SSL_CTX *ctx, int fd, const char *addr, const char *server_name, int64_t deadline_ms, SSL **out,
                   char *err, size_t errlen);
/* send()/recv() through ssl when it is not NULL: bytes, or -1 with errno
 * (EAGAIN: wait for poll; EPROTO: TLS failure, reason in err; ECONNRESET
 * for the peer's close_notify on recv). Never raises SIGPIPE. */
ssize_t ctls_send(SSL *ssl, int fd, const void *p, size_t n, char *err, size_t errlen);
ssize_t ctls_recv(SSL *ssl, int fd, void *p, size_t n, char *err, size_t errlen);

#endif
