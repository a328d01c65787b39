/* client/client_tls.c: TLS 1.3 for the native client library (client_tls.h).
 *
 * The socket sits behind a small BIO of our own so that OpenSSL writes with
 * send(MSG_NOSIGNAL): a replica that went away is EPIPE, never a SIGPIPE
 * that would kill the embedding program (OpenSSL's socket BIO uses write()). */
#define _GNU_SOURCE
#include "client_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reason(char *buf, size_t len, const char *fallback)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    if (r)
        snprintf(buf, len, "%s", r);
    else if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "%s", fallback);
    ERR_clear_error();
}

/* ---- a socket BIO that sends with MSG_NOSIGNAL ---- */

static int sock_write(BIO *b, const char *p, int n)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t w;
    do
        w = send(fd, p, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_write(b);
    return (int)w;
}

static int sock_read(BIO *b, char *p, int n)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t r;
    do
        r = recv(fd, p, (size_t)n, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_read(b);
    return (int)r;
}

static long sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* writes are unbuffered */
}

static int sock_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *sock_method(void)
{
    /* made once per process; the library is single-threaded per client,
     * but two clients on two threads could race here: guard it */
    static BIO_METHOD *m;
    static int once;
    if (__atomic_load_n(&once, __ATOMIC_ACQUIRE))
        return m;
    BIO_METHOD *nm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "rabia socket");
    if (!nm)
        return NULL;
    BIO_meth_set_write(nm, sock_write);
    BIO_meth_set_read(nm, sock_read);
    BIO_meth_set_ctrl(nm, sock_ctrl);
    BIO_meth_set_create(nm, sock_create);
    BIO_METHOD *expected = NULL;
    if (!__atomic_compare_exchange_n(&m, &expected, nm, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        BIO_meth_free(nm); /* another thread won */
    __atomic_store_n(&once, 1, __ATOMIC_RELEASE);
    return m;
}

SSL_CTX *ctls_ctx_new(const struct rabia_client_cfg *cfg, char *err, size_t errlen)
{
    char why[200];
    const char *ca = cfg->tls_ca_file;
    if (!ca || !ca[0]) {
        snprintf(err, errlen, "TLS needs the CA certificate that signed the replicas' (--cacert FILE)");
        return NULL;
    }
    const char *files[3] = {ca, cfg->tls_cert_file, cfg->tls_key_file};
    for (int i = 0; i < 3; i++)
        if (files[i] && files[i][0] && access(files[i], R_OK) != 0) {
            snprintf(err, errlen, "%s: %s", files[i], strerror(errno));
            return NULL;
        }
    if (!cfg->tls_cert_file != !cfg->tls_key_file) {
        snprintf(err, errlen, "a client certificate needs both --cert and --key");
        return NULL;
    }
    ERR_clear_error();
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    if (!c) {
        reason(why, sizeof why, "SSL_CTX_new failed");
        snprintf(err, errlen, "%s", why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    /* a write retried after WANT_WRITE comes from c->tx, which a submit in
     * between may have reallocated: without this OpenSSL fails the retry
     * (bad write retry) and the client fails over for nothing */
    SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
    const char *bad = NULL;
    if (SSL_CTX_load_verify_locations(c, ca, NULL) != 1)
        bad = ca;
    else if (cfg->tls_cert_file && SSL_CTX_use_certificate_chain_file(c, cfg->tls_cert_file) != 1)
        bad = cfg->tls_cert_file;
    else if (cfg->tls_key_file && (SSL_CTX_use_PrivateKey_file(c, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
                                   SSL_CTX_check_private_key(c) != 1))
        bad = cfg->tls_key_file;
    if (bad) {
        reason(why, sizeof why, "unusable");
        snprintf(err, errlen, "%s: %s", bad, why);
        SSL_CTX_free(c);
        return NULL;
    }
    return c;
}

static void fail_reason(SSL *s, int e, char *err, size_t errlen)
{
    char why[200];
    if (e == SSL_ERROR_SSL) {
        reason(why, sizeof why, "protocol error");
        long vr = SSL_get_verify_result(s);
        if (vr != X509_V_OK && strstr(why, "certificate verify failed"))
            snprintf(why + strlen(why), sizeof why - strlen(why), ": %s", X509_verify_cert_error_string(vr));
    } else if (e == SSL_ERROR_SYSCALL) {
        reason(why, sizeof why, errno ? strerror(errno) : "the replica closed the connection");
    } else {
        snprintf(why, sizeof why, "TLS error %d", e);
        ERR_clear_error();
    }
    snprintf(err, errlen, "TLS: %s", why);
}

/* Make s check that the certificate names `name`: an address literal
 * against the certificate's IP addresses, a DNS name against its DNS names
 * (no partial wildcards such as w*.example.com), and send a DNS name as SNI.
 * Without this any server certificate of the CA would do (a company CA
 * signs many), so whoever holds one could stand in for a replica.
 * 0 or -ENOMEM. */
static int expect_name(SSL *s, const char *name)
{
    unsigned char ip[16];
    X509_VERIFY_PARAM *vp = SSL_get0_param(s);
    if (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(vp, name) == 1 ? 0 : -ENOMEM;
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(s, name) != 1 || SSL_set_tlsext_host_name(s, name) != 1)
        return -ENOMEM;
    return 0;
}

int ctls_handshake(SSL_CTX *ctx, int fd, const char *addr, const char *server_name, int64_t deadline_ms, SSL **out,
                   char *err, size_t errlen)
{
    *out = NULL;
    char host[256], port[16];
    const char *name = server_name && server_name[0] ? server_name : host;
    if (name == host && client_split_addr(addr, host, sizeof host, port, sizeof port) < 0) {
        snprintf(err, errlen, "TLS: no host in the address '%s' to check the certificate against",
                 addr ? addr : "(null)");
        return -EINVAL;
    }
    BIO_METHOD *m = sock_method();
    SSL *s = SSL_new(ctx);
    BIO *b = m ? BIO_new(m) : NULL;
    if (!s || !b) {
        SSL_free(s);
        BIO_free(b);
        ERR_clear_error();
        return -ENOMEM;
    }
    BIO_set_data(b, (void *)(intptr_t)fd);
    SSL_set_bio(s, b, b);
    if (expect_name(s, name) < 0) {
        SSL_free(s);
        ERR_clear_error();
        return -ENOMEM;
    }
    SSL_set_connect_state(s);
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_do_handshake(s);
        if (r == 1) {
            *out = s;
            return 0;
        }
        int e = SSL_get_error(s, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            fail_reason(s, e, err, errlen);
            long vr = SSL_get_verify_result(s);
            if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
                size_t l = strlen(err);
                snprintf(err + l, errlen - l,
                         " (the replica's certificate does not name '%s' in its subjectAltName: dial a name or "
                         "address it holds, or name one as the TLS server name, rabia-cli --tls-server-name)",
                         name);
            }
            SSL_free(s);
            return -EPROTO;
        }
        int64_t left = deadline_ms - mono_ms();
        if (left <= 0) {
            snprintf(err, errlen, "TLS: no handshake within the timeout");
            SSL_free(s);
            return -ETIMEDOUT;
        }
        struct pollfd p = {.fd = fd, .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, .revents = 0};
        if (poll(&p, 1, left > 60000 ? 60000 : (int)left) < 0 && errno != EINTR) {
            int ee = -errno;
            SSL_free(s);
            return ee;
        }
    }
}

/* An SSL_read/SSL_write that returned r <= 0, as send/recv would say it:
 * -1 with errno EAGAIN (the engine waits for the socket), or -1 with the
 * socket's errno (or EPROTO) and err filled. e is SSL_get_error's. */
static ssize_t io_fail(SSL *ssl, int e, char *err, size_t errlen)
{
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    int saved = errno;
    fail_reason(ssl, e, err, errlen);
    errno = e == SSL_ERROR_SYSCALL && saved ? saved : EPROTO;
    return -1;
}

ssize_t ctls_send(SSL *ssl, int fd, const void *p, size_t n, char *err, size_t errlen)
{
    if (!ssl)
        return send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    ERR_clear_error();
    errno = 0;
    int r = SSL_write(ssl, p, n > (size_t)INT_MAX ? INT_MAX : (int)n);
    if (r > 0)
        return r;
    return io_fail(ssl, SSL_get_error(ssl, r), err, errlen);
}

ssize_t ctls_recv(SSL *ssl, int fd, void *p, size_t n, char *err, size_t errlen)
{
    if (!ssl)
        return recv(fd, p, n, MSG_DONTWAIT);
    ERR_clear_error();
    errno = 0;
    int r = SSL_read(ssl, p, n > (size_t)INT_MAX ? INT_MAX : (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0; /* close_notify: an orderly end, as EOF */
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0)
        return 0; /* EOF without close_notify */
    return io_fail(ssl, e, err, errlen);
}
