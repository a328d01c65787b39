/* io/tls.h: TLS 1.3 for io/loop.h connections, OpenSSL over memory BIOs.
 *
 * Two parts:
 * - rio_tls_ctx: an SSL_CTX built from PEM files (certificate chain, key,
 *   CA), TLS 1.3 only, peers verified against the CA. Contexts are
 *   reference counted by OpenSSL: a connection keeps the one it started
 *   with, so a reload (SIGHUP) builds a new context for new connections and
 *   frees the old one at once (connections still using it keep it alive).
 * - rio_tls_conn: one connection's TLS engine, pure memory transforms with
 *   no I/O of its own. io/loop.c feeds it the ciphertext that recv brought
 *   (rio_tls_feed), pulls plaintext and handshake progress out of it
 *   (rio_tls_step), encrypts what rio_send queued (rio_tls_encrypt) and
 *   moves the ciphertext it produced into the connection's send queue
 *   (rio_tls_output_take). Nothing here blocks, allocates per message
 *   beyond the BIOs' own growth, or runs a thread.
 *
 * Use from a loop: rio_conn_start_tls (loop.h) on an accepted connection
 * (in on_accept) or right after rio_connect. */
#ifndef RABIA_IO_TLS_H
#define RABIA_IO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rio_tls_ctx;
struct rio_tls_conn;

struct rio_tls_opts {
    const char *cert_file;  /* PEM: certificate (chain) presented to the other side */
    const char *key_file;   /* PEM: its private key */
    const char *ca_file;    /* PEM: the CA the other side's certificate must chain to */
    bool require_peer_cert; /* server role: a client without a CA-signed certificate is refused
                               (the client role always verifies the server) */
};

/* Build a context; err gets the file and OpenSSL's reason with the fix on
 * failure (missing file or a directory, key not matching the certificate,
 * bad PEM, an own certificate that does not verify against the CA now:
 * expired, not yet valid, another CA's). 0 or a negative errno. */
int rio_tls_ctx_new(struct rio_tls_ctx **out, const struct rio_tls_opts *o, char *err, size_t errlen);
/* Connections made from it keep working. NULL is a no-op. */
void rio_tls_ctx_free(struct rio_tls_ctx *t);
/* This context's own certificate's subject CN: 0, -ENOENT, -ENOSPC. */
int rio_tls_ctx_own_cn(const struct rio_tls_ctx *t, char *buf, size_t len);
/* "CN=replica-1, expires 2027-12-01 ..." for logs. */
const char *rio_tls_ctx_describe(const struct rio_tls_ctx *t);

/* ---- the per-connection engine (used by io/loop.c) ---- */

enum rio_tls_step {
    RIO_TLS_WANT = 0,  /* needs more ciphertext */
    RIO_TLS_READY = 1, /* the handshake completed in this call */
    RIO_TLS_DATA = 2,  /* *got plaintext bytes were written to buf */
    RIO_TLS_EOF = 3,   /* the peer sent close_notify */
};

int rio_tls_conn_new(struct rio_tls_conn **out, const struct rio_tls_ctx *ctx, bool server);
void rio_tls_conn_free(struct rio_tls_conn *t);
/* Ciphertext received from the socket. 0 or -ENOMEM. */
int rio_tls_feed(struct rio_tls_conn *t, const uint8_t *p, size_t n);
/* Drive the handshake, or decrypt one chunk into buf. Returns an
 * enum rio_tls_step, or a negative errno (-EPROTO: handshake or record
 * failure, reason in rio_tls_conn_error). Call until RIO_TLS_WANT. */
int rio_tls_step(struct rio_tls_conn *t, uint8_t *buf, size_t cap, size_t *got);
bool rio_tls_ready(const struct rio_tls_conn *t);
/* Encrypt n plaintext bytes (only once ready). 0 or a negative errno. */
int rio_tls_encrypt(struct rio_tls_conn *t, const uint8_t *p, size_t n);
/* Queue close_notify (once ready; idempotent). */
void rio_tls_shutdown(struct rio_tls_conn *t);
/* Ciphertext waiting to go out, and taking it (up to cap bytes). */
size_t rio_tls_output_pending(const struct rio_tls_conn *t);
size_t rio_tls_output_take(struct rio_tls_conn *t, uint8_t *dst, size_t cap);
/* Why the connection failed (OpenSSL's reason, the verify error for a
 * certificate), or NULL. */
const char *rio_tls_conn_error(const struct rio_tls_conn *t);
/* Record a failure reason found outside the engine (first one wins). */
void rio_tls_conn_set_error(struct rio_tls_conn *t, const char *why);
/* The verified peer certificate's subject CN; 0, -ENOENT (none presented or
 * not verified) or -ENOSPC. */
int rio_tls_conn_peer_cn(const struct rio_tls_conn *t, char *buf, size_t len);

#endif
