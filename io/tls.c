/* io/tls.c: OpenSSL contexts and the per-connection TLS engine behind io/tls.h. */
#define _GNU_SOURCE
#include "tls.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct rio_tls_ctx {
    SSL_CTX *ctx;
    bool require_peer_cert;
    char desc[256];
};

struct rio_tls_conn {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl (SSL_set_bio) */
    bool server, ready, shut;
    char err[256];
};

/* The first error on this thread's OpenSSL queue as "reason (library)",
 * then the queue cleared so the next connection starts clean. */
static void ossl_reason(char *buf, size_t len, const char *fallback)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(buf, len, "%s", fallback);
        return;
    }
    const char *reason = ERR_reason_error_string(e);
    const char *lib = ERR_lib_error_string(e);
    if (reason)
        snprintf(buf, len, "%s%s%s%s", reason, lib ? " (" : "", lib ? lib : "", lib ? ")" : "");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
}

/* Say which file could not be read before OpenSSL's less direct "no such
 * file" / "PEM lib". */
static int check_readable(const char *what, const char *path, char *err, size_t errlen)
{
    if (!path || !path[0]) {
        snprintf(err, errlen, "%s is not set: give the path of a PEM file (deploy/make-test-certs.sh makes test ones)",
                 what);
        return -EINVAL;
    }
    if (access(path, R_OK) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s %s: cannot read it: %s (check the path and its permissions)", what, path,
                 strerror(e));
        return -e;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s %s: is a directory: give the path of a PEM file in it", what, path);
        return -EISDIR;
    }
    return 0;
}

/* An ASN1_TIME as OpenSSL prints it ("Dec  1 12:00:00 2027 GMT"), or "?". */
static void time_str(const ASN1_TIME *t, char *buf, size_t len)
{
    snprintf(buf, len, "?");
    BIO *m = BIO_new(BIO_s_mem());
    if (!m)
        return;
    if (t && ASN1_TIME_print(m, t) == 1) {
        int n = BIO_read(m, buf, (int)len - 1);
        buf[n > 0 ? n : 0] = 0;
    }
    BIO_free(m);
}

/* The own certificate (with the chain from its file) verified against the
 * CA store now, as every peer and client will: an expired, not yet valid
 * or foreign certificate would load fine and then fail every handshake
 * ("certificate verify failed"), so it is refused here, at start and on a
 * reload (which then keeps the previous contexts). No purpose is checked:
 * the other side checks the one it needs. */
static int verify_own(SSL_CTX *c, const struct rio_tls_opts *o, char *err, size_t errlen)
{
    X509 *own = SSL_CTX_get0_certificate(c);
    if (!own)
        return 0;
    STACK_OF(X509) *chain = NULL;
    SSL_CTX_get0_chain_certs(c, &chain);
    X509_STORE_CTX *x = X509_STORE_CTX_new();
    if (!x || X509_STORE_CTX_init(x, SSL_CTX_get_cert_store(c), own, chain) != 1) {
        X509_STORE_CTX_free(x);
        ERR_clear_error();
        snprintf(err, errlen, "out of memory verifying tls-cert-file %s", o->cert_file);
        return -ENOMEM;
    }
    int ok = X509_verify_cert(x);
    if (ok == 1) {
        X509_STORE_CTX_free(x);
        return 0;
    }
    int e = X509_STORE_CTX_get_error(x);
    int depth = X509_STORE_CTX_get_error_depth(x);
    X509 *bad = X509_STORE_CTX_get_current_cert(x);
    if (!bad || depth <= 0)
        bad = own;
    char cn[96] = "?", from[64], until[64];
    X509_NAME_get_text_by_NID(X509_get_subject_name(bad), NID_commonName, cn, sizeof cn);
    time_str(X509_get0_notBefore(bad), from, sizeof from);
    time_str(X509_get0_notAfter(bad), until, sizeof until);
    const char *fix;
    switch (e) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        fix = "renew it (a new certificate from the CA; deploy/make-test-certs.sh makes test ones)";
        break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        fix = "check this machine's clock, or replace it with a certificate valid now";
        break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        fix = "replace it with a certificate signed by that CA, or set tls-ca-cert-file to the CA that signed it";
        break;
    default:
        fix = "replace the certificate";
        break;
    }
    snprintf(err, errlen,
             "tls-cert-file %s: %s certificate CN=%s (valid from %s until %s) does not verify against "
             "tls-ca-cert-file %s: %s: %s",
             o->cert_file, bad == own ? "the" : "its chain's", cn, from, until, o->ca_file,
             X509_verify_cert_error_string(e), fix);
    X509_STORE_CTX_free(x);
    ERR_clear_error();
    return -EINVAL;
}

int rio_tls_ctx_new(struct rio_tls_ctx **out, const struct rio_tls_opts *o, char *err, size_t errlen)
{
    *out = NULL;
    int rc;
    if ((rc = check_readable("tls-cert-file", o->cert_file, err, errlen)) ||
        (rc = check_readable("tls-key-file", o->key_file, err, errlen)) ||
        (rc = check_readable("tls-ca-cert-file", o->ca_file, err, errlen)))
        return rc;
    ERR_clear_error();
    struct rio_tls_ctx *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    char why[200];
    SSL_CTX *c = SSL_CTX_new(TLS_method());
    if (!c) {
        ossl_reason(why, sizeof why, "unknown error");
        snprintf(err, errlen, "SSL_CTX_new: %s", why);
        free(t);
        return -ENOMEM;
    }
    t->ctx = c;
    t->require_peer_cert = o->require_peer_cert;
    /* TLS 1.3 only: one cipher-suite family, no renegotiation, a 1-RTT
     * handshake; both ends are ours, so nothing older needs to connect. */
    SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
    /* No resumption: peer links and clients are long-lived; tickets would
     * only add bytes to every handshake. */
    SSL_CTX_set_num_tickets(c, 0);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    /* Send the chain of tls-cert-file only, not one built from the CA store:
     * every member has the CA already, and a stranger's verifier then says
     * "unable to get local issuer certificate" instead of speaking of a
     * self-signed certificate in the chain. */
    SSL_CTX_set_mode(c, SSL_MODE_NO_AUTO_CHAIN);
    if (SSL_CTX_use_certificate_chain_file(c, o->cert_file) != 1) {
        ossl_reason(why, sizeof why, "unknown error");
        snprintf(err, errlen, "tls-cert-file %s: not a usable PEM certificate: %s (give the PEM certificate, "
                              "or chain, made for this replica)", o->cert_file, why);
        rc = -EINVAL;
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(c, o->key_file, SSL_FILETYPE_PEM) != 1) {
        ossl_reason(why, sizeof why, "unknown error");
        if (strstr(why, "mismatch"))
            snprintf(err, errlen, "tls-key-file %s does not belong to tls-cert-file %s (%s): give the key the "
                                  "certificate was made for", o->key_file, o->cert_file, why);
        else
            snprintf(err, errlen, "tls-key-file %s: not a usable PEM private key: %s (give the PEM key of "
                                  "tls-cert-file)", o->key_file, why);
        rc = -EINVAL;
        goto fail;
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        ossl_reason(why, sizeof why, "unknown error");
        snprintf(err, errlen, "tls-key-file %s does not belong to tls-cert-file %s (%s): give the key the "
                              "certificate was made for", o->key_file, o->cert_file, why);
        rc = -EINVAL;
        goto fail;
    }
    if (SSL_CTX_load_verify_locations(c, o->ca_file, NULL) != 1) {
        ossl_reason(why, sizeof why, "unknown error");
        snprintf(err, errlen, "tls-ca-cert-file %s: not a usable PEM CA certificate: %s (give the PEM "
                              "certificate of the CA that signed the members' certificates)", o->ca_file, why);
        rc = -EINVAL;
        goto fail;
    }
    /* The server tells clients which CA it accepts (redis-cli and openssl
     * pick their certificate by it). */
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
    if (names)
        SSL_CTX_set_client_CA_list(c, names);
    ERR_clear_error();
    if ((rc = verify_own(c, o, err, errlen)))
        goto fail;
    /* Verification is set per connection (rio_tls_conn_new): a client
     * always verifies the server; a server asks for a certificate only
     * when require_peer_cert. */
    X509 *own = SSL_CTX_get0_certificate(c);
    char cn[96] = "?", until[64] = "?";
    if (own) {
        X509_NAME_get_text_by_NID(X509_get_subject_name(own), NID_commonName, cn, sizeof cn);
        time_str(X509_get0_notAfter(own), until, sizeof until);
    }
    snprintf(t->desc, sizeof t->desc, "certificate CN=%s (valid until %s), CA %s%s", cn, until, o->ca_file,
             o->require_peer_cert ? ", the other side's certificate required" : "");
    *out = t;
    return 0;
fail:
    SSL_CTX_free(c);
    free(t);
    return rc;
}

void rio_tls_ctx_free(struct rio_tls_ctx *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx); /* connections hold their own references */
    free(t);
}

const char *rio_tls_ctx_describe(const struct rio_tls_ctx *t) { return t->desc; }

static int cert_cn(X509 *x, char *buf, size_t len)
{
    if (!x)
        return -ENOENT;
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, NULL, 0);
    if (n < 0)
        return -ENOENT;
    if ((size_t)n >= len)
        return -ENOSPC;
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)len);
    return 0;
}

int rio_tls_ctx_own_cn(const struct rio_tls_ctx *t, char *buf, size_t len)
{
    return cert_cn(SSL_CTX_get0_certificate(t->ctx), buf, len);
}

/* ---- the engine ---- */

int rio_tls_conn_new(struct rio_tls_conn **out, const struct rio_tls_ctx *ctx, bool server)
{
    *out = NULL;
    struct rio_tls_conn *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->server = server;
    t->ssl = SSL_new(ctx->ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        ERR_clear_error();
        return -ENOMEM;
    }
    /* An empty read BIO means "wait for more" (WANT_READ), not EOF: the
     * socket's EOF is reported by the loop itself. */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (server) {
        SSL_set_accept_state(t->ssl);
        SSL_set_verify(t->ssl, ctx->require_peer_cert ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                                      : SSL_VERIFY_NONE, NULL);
    } else {
        SSL_set_connect_state(t->ssl);
        SSL_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
    }
    *out = t;
    return 0;
}

void rio_tls_conn_free(struct rio_tls_conn *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* frees both BIOs and drops its context reference */
    free(t);
}

int rio_tls_feed(struct rio_tls_conn *t, const uint8_t *p, size_t n)
{
    while (n > 0) {
        int k = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        int w = BIO_write(t->rbio, p, k);
        if (w <= 0) {
            ERR_clear_error();
            rio_tls_conn_set_error(t, "out of memory buffering received TLS records");
            return -ENOMEM;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Turn an SSL_get_error into a reason and -EPROTO. */
static int engine_fail(struct rio_tls_conn *t, int e)
{
    char why[200];
    if (e == SSL_ERROR_SSL) {
        ossl_reason(why, sizeof why, "protocol error");
        long vr = SSL_get_verify_result(t->ssl);
        if (vr != X509_V_OK && strstr(why, "certificate verify failed"))
            snprintf(why + strlen(why), sizeof why - strlen(why), ": %s",
                     X509_verify_cert_error_string(vr));
    } else if (e == SSL_ERROR_SYSCALL) {
        ossl_reason(why, sizeof why, "unexpected end of the TLS stream");
    } else {
        ERR_clear_error();
        snprintf(why, sizeof why, "TLS error %d", e);
    }
    rio_tls_conn_set_error(t, why);
    return -EPROTO;
}

int rio_tls_step(struct rio_tls_conn *t, uint8_t *buf, size_t cap, size_t *got)
{
    *got = 0;
    ERR_clear_error(); /* the queue is per thread: another connection's leftovers are not ours */
    if (!t->ready) {
        int r = SSL_do_handshake(t->ssl);
        if (r == 1) {
            t->ready = true;
            return RIO_TLS_READY;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return RIO_TLS_WANT;
        return engine_fail(t, e);
    }
    assert(cap > 0);
    int r = SSL_read(t->ssl, buf, cap > (size_t)INT_MAX ? INT_MAX : (int)cap);
    if (r > 0) {
        *got = (size_t)r;
        return RIO_TLS_DATA;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return RIO_TLS_WANT;
    if (e == SSL_ERROR_ZERO_RETURN)
        return RIO_TLS_EOF;
    return engine_fail(t, e);
}

bool rio_tls_ready(const struct rio_tls_conn *t) { return t->ready; }

int rio_tls_encrypt(struct rio_tls_conn *t, const uint8_t *p, size_t n)
{
    assert(t->ready);
    ERR_clear_error();
    while (n > 0) {
        int k = n > (1u << 30) ? (1 << 30) : (int)n;
        /* A memory BIO always takes everything: SSL_write writes all of it
         * as records of at most 16 KiB, or fails. */
        int w = SSL_write(t->ssl, p, k);
        if (w <= 0)
            return engine_fail(t, SSL_get_error(t->ssl, w));
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void rio_tls_shutdown(struct rio_tls_conn *t)
{
    if (!t->ready || t->shut)
        return;
    t->shut = true;
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl); /* queues close_notify; we do not wait for the peer's */
    ERR_clear_error();
}

size_t rio_tls_output_pending(const struct rio_tls_conn *t) { return BIO_ctrl_pending(t->wbio); }

size_t rio_tls_output_take(struct rio_tls_conn *t, uint8_t *dst, size_t cap)
{
    size_t done = 0;
    while (done < cap) {
        size_t k = cap - done;
        int r = BIO_read(t->wbio, dst + done, k > (size_t)INT_MAX ? INT_MAX : (int)k);
        if (r <= 0)
            break;
        done += (size_t)r;
    }
    return done;
}

const char *rio_tls_conn_error(const struct rio_tls_conn *t) { return t->err[0] ? t->err : NULL; }

void rio_tls_conn_set_error(struct rio_tls_conn *t, const char *why)
{
    if (!t->err[0])
        snprintf(t->err, sizeof t->err, "%s", why);
}

int rio_tls_conn_peer_cn(const struct rio_tls_conn *t, char *buf, size_t len)
{
    if (!t->ready)
        return -ENOENT;
    X509 *peer = SSL_get0_peer_certificate(t->ssl);
    if (!peer || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return -ENOENT;
    return cert_cn(peer, buf, len);
}
