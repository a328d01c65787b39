/* tests/io/test_tls.c: TLS 1.3 under io/loop connections (ctest io.tls).
 *
 * Both ends are connections of one loop over 127.0.0.1, each with its own
 * engine (server and client roles), so every byte goes through OpenSSL and
 * the kernel twice:
 * - echo: 8 MiB in rio_sends of random sizes (1 B .. 70 KB) through a
 *   mutually authenticated link and back, XXH3 of both streams equal; each
 *   side sees the other's verified certificate CN; on_connect comes after
 *   the handshake;
 * - garbage: a plain TCP client sends random bytes to a TLS port: closed
 *   with -EPROTO and a reason;
 * - huge record: a record header announcing 65535 bytes (the limit is
 *   16 KiB + 256) followed by 70 KB: closed with -EPROTO as soon as the
 *   header is read ("packet length too long"), nothing reaches on_data;
 * - foreign CA: the client refuses the server's certificate (on_connect
 *   -EPROTO, "certificate verify failed") and the server hears the alert;
 * - input limit: a peer that never gets consumed is closed with -EMSGSIZE
 *   (the limit holds for plaintext);
 * - close after send: 1 MiB then rio_close_after_send arrives whole, then an
 *   orderly end (close_notify, err 0);
 * - refusals: rio_tls_ctx_new refuses an own certificate that is expired,
 *   not yet valid or of another CA (made here, signed by the test CA's key),
 *   a key of another certificate, a directory as the certificate and a key
 *   as the CA, each naming the file, the cause and the fix; the test
 *   certificates (replica and client-only) load.
 * Usage: test_io_tls CERTS_DIR OTHER_CA_DIR (deploy/make-test-certs.sh). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "loop.h"
#include "tls.h"

#define CHECK(cond, ...)                                                                                   \
    do {                                                                                                   \
        if (!(cond)) {                                                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                \
            fprintf(stderr, __VA_ARGS__);                                                                  \
            fputc('\n', stderr);                                                                           \
            exit(1);                                                                                       \
        }                                                                                                  \
    } while (0)

#define ECHO_BYTES ((size_t)8 << 20)
#define CAS_BYTES ((size_t)1 << 20)
#define LIMIT_IN ((size_t)64 << 10)

enum kind { K_ECHO, K_GARBAGE, K_FOREIGN, K_LIMIT, K_CAS, K_HUGE, K_N };
static const char *kname[K_N] = {"echo", "garbage", "foreign CA", "input limit", "close after send", "huge record"};

struct tc {
    enum kind kind;
    bool server;
    struct rio_conn *c;
    bool connected, closed;
    int connect_err, close_err;
    bool connect_before_close;
    char err[256];
    char cn[64];
    size_t got, sent;
    XXH3_state_t *h;
};

static struct rio_tls_ctx *ctx_a_srv, *ctx_a_cli, *ctx_b_srv;
static struct tc *srv[K_N], *cli[K_N];
static uint64_t seed = 0x1234567;
static uint8_t chunk[70000];

static uint64_t rnd(void)
{
    uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static struct tc *tc_new(enum kind k, bool server)
{
    struct tc *t = calloc(1, sizeof *t);
    CHECK(t, "oom");
    t->kind = k;
    t->server = server;
    t->h = XXH3_createState();
    XXH3_64bits_reset(t->h);
    return t;
}

static int on_accept(void *ctx, struct rio_listener *l, struct rio_conn *c)
{
    (void)ctx;
    enum kind k = (enum kind)(intptr_t)rio_listener_user(l);
    CHECK(!srv[k], "%s: a second connection", kname[k]);
    struct tc *t = tc_new(k, true);
    t->c = c;
    srv[k] = t;
    rio_conn_set_user(c, t);
    const struct rio_tls_ctx *x = k == K_FOREIGN ? ctx_b_srv : ctx_a_srv;
    int rc = rio_conn_start_tls(c, x, true);
    CHECK(rc == 0, "start_tls: %d", rc);
    CHECK(rio_conn_start_tls(c, x, true) == -EALREADY, "a second start_tls");
    if (k == K_LIMIT) rio_conn_set_limits(c, LIMIT_IN, 0);
    return 0;
}

static size_t on_data(void *ctx, struct rio_conn *c, const uint8_t *p, size_t len)
{
    (void)ctx;
    struct tc *t = rio_conn_user(c);
    if (t->server && !t->cn[0]) rio_conn_tls_peer_cn(c, t->cn, sizeof t->cn);
    if (t->server && t->kind == K_LIMIT) return 0; /* never consumed */
    t->got += len;
    XXH3_64bits_update(t->h, p, len);
    if (t->server && t->kind == K_ECHO) {
        int rc = rio_send(c, p, len);
        CHECK(rc == 0, "echo rio_send: %d", rc);
    }
    if (t->server && t->kind == K_CAS && t->got == 1) {
        /* like a QUIT: the reply, then close once it is out */
        XXH3_64bits_reset(t->h);
        for (size_t off = 0; off < CAS_BYTES; off += sizeof chunk) {
            size_t n = CAS_BYTES - off < sizeof chunk ? CAS_BYTES - off : sizeof chunk;
            for (size_t i = 0; i < n; i++) chunk[i] = (uint8_t)rnd();
            CHECK(rio_send(c, chunk, n) == 0, "cas send");
            XXH3_64bits_update(t->h, chunk, n);
            t->sent += n;
        }
        rio_close_after_send(c);
        CHECK(rio_send(c, "x", 1) == -ESHUTDOWN, "send after close_after_send");
    }
    return len;
}

static void on_connect(void *ctx, struct rio_conn *c, int err)
{
    (void)ctx;
    struct tc *t = rio_conn_user(c);
    CHECK(!t->connected && !t->closed, "%s: on_connect twice or after on_close", kname[t->kind]);
    t->connected = true;
    t->connect_err = err;
    if (err) return;
    /* TLS: only after the handshake, so the server's certificate is known */
    if (t->kind != K_GARBAGE && t->kind != K_HUGE) {
        int rc = rio_conn_tls_peer_cn(c, t->cn, sizeof t->cn);
        CHECK(rc == 0, "%s: no verified server certificate in on_connect (%d)", kname[t->kind], rc);
    }
    if (t->kind == K_GARBAGE) {
        for (size_t i = 0; i < sizeof chunk; i++) chunk[i] = (uint8_t)rnd();
        CHECK(rio_send(c, chunk, sizeof chunk) == 0, "garbage send");
    } else if (t->kind == K_HUGE) {
        /* a handshake record (type 22, TLS 1.0 legacy version) of 65535 bytes */
        static const uint8_t hdr[5] = {0x16, 0x03, 0x01, 0xff, 0xff};
        CHECK(rio_send(c, hdr, sizeof hdr) == 0, "huge header");
        for (size_t i = 0; i < sizeof chunk; i++) chunk[i] = (uint8_t)rnd();
        CHECK(rio_send(c, chunk, sizeof chunk) == 0, "huge body");
    } else if (t->kind == K_LIMIT) {
        for (size_t off = 0; off < LIMIT_IN * 4; off += 4096) CHECK(rio_send(c, chunk, 4096) == 0, "limit send");
    } else if (t->kind == K_CAS) {
        CHECK(rio_send(c, "g", 1) == 0, "cas go");
    }
}

static void on_close(void *ctx, struct rio_conn *c, int err)
{
    (void)ctx;
    struct tc *t = rio_conn_user(c);
    CHECK(!t->closed, "on_close twice");
    t->closed = true;
    t->close_err = err;
    t->connect_before_close = t->connected;
    const char *why = rio_conn_tls_error(c);
    if (why) snprintf(t->err, sizeof t->err, "%s", why);
    t->c = NULL;
}

static struct rio_tls_ctx *mk(const char *dir, const char *name, bool require)
{
    char cert[512], key[512], ca[512], err[512];
    snprintf(cert, sizeof cert, "%s/%s.crt", dir, name);
    snprintf(key, sizeof key, "%s/%s.key", dir, name);
    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    struct rio_tls_opts o = {.cert_file = cert, .key_file = key, .ca_file = ca, .require_peer_cert = require};
    struct rio_tls_ctx *x;
    int rc = rio_tls_ctx_new(&x, &o, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    return x;
}

/* rio_tls_ctx_new over these files: its return, err in err */
static int try_ctx(const char *cert, const char *key, const char *ca, char *err, size_t errlen)
{
    struct rio_tls_opts o = {.cert_file = cert, .key_file = key, .ca_file = ca, .require_peer_cert = true};
    struct rio_tls_ctx *x = NULL;
    err[0] = 0;
    int rc = rio_tls_ctx_new(&x, &o, err, errlen);
    CHECK((rc == 0) == (x != NULL), "rc %d with ctx %p", rc, (void *)x);
    rio_tls_ctx_free(x);
    return rc;
}

/* OUT: a certificate "replica-1" for DIR/replica-1.key signed by DIR's CA,
 * valid from now + from_s until now + until_s */
static void issue(const char *dir, const char *out, long from_s, long until_s)
{
    char p[512];
    snprintf(p, sizeof p, "%s/ca.key", dir);
    FILE *f = fopen(p, "r");
    CHECK(f, "%s", p);
    EVP_PKEY *cakey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    snprintf(p, sizeof p, "%s/ca.crt", dir);
    f = fopen(p, "r");
    CHECK(f, "%s", p);
    X509 *ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    snprintf(p, sizeof p, "%s/replica-1.key", dir);
    f = fopen(p, "r");
    CHECK(f, "%s", p);
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    CHECK(cakey && ca && key, "reading the test CA of %s", dir);
    X509 *x = X509_new();
    CHECK(x, "oom");
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(rnd() & 0x7fffffff));
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), until_s);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"rabia test", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"replica-1", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    X509_set_pubkey(x, key);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_ext_key_usage, "serverAuth,clientAuth");
    CHECK(ext && X509_add_ext(x, ext, -1), "extension");
    X509_EXTENSION_free(ext);
    CHECK(X509_sign(x, cakey, EVP_sha256()) > 0, "signing");
    f = fopen(out, "w");
    CHECK(f && PEM_write_X509(f, x), "%s", out);
    fclose(f);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(cakey);
}

/* what rio_tls_ctx_new refuses, and with which words */
static void refusals(const char *a, const char *b)
{
    char tmp[] = "/tmp/test_io_tls.XXXXXX", cert[512], key[512], ca[512], p[512], q[512], err[1024];
    CHECK(mkdtemp(tmp), "mkdtemp");
    snprintf(key, sizeof key, "%s/replica-1.key", a);
    snprintf(ca, sizeof ca, "%s/ca.crt", a);
    /* the test certificates load: a replica's, and the client-only one */
    snprintf(cert, sizeof cert, "%s/replica-1.crt", a);
    CHECK(try_ctx(cert, key, ca, err, sizeof err) == 0, "%s", err);
    snprintf(p, sizeof p, "%s/client.crt", a);
    snprintf(q, sizeof q, "%s/client.key", a);
    CHECK(try_ctx(p, q, ca, err, sizeof err) == 0, "client.crt: %s", err);
    /* one made here, valid now: the maker is right */
    snprintf(p, sizeof p, "%s/valid.crt", tmp);
    issue(a, p, -3600, 86400);
    CHECK(try_ctx(p, key, ca, err, sizeof err) == 0, "a certificate valid now: %s", err);
    printf("ok: the test certificates (replica, client-only) and one valid now load\n");

    snprintf(p, sizeof p, "%s/expired.crt", tmp);
    issue(a, p, -60L * 86400, -30L * 86400);
    CHECK(try_ctx(p, key, ca, err, sizeof err) == -EINVAL && strstr(err, p) && strstr(err, "certificate has expired") &&
              strstr(err, "valid from ") && strstr(err, " until ") && strstr(err, "renew it"),
          "expired: %s", err);
    printf("ok: expired: %s\n", err);
    unlink(p);

    snprintf(p, sizeof p, "%s/future.crt", tmp);
    issue(a, p, 30L * 86400, 60L * 86400);
    CHECK(try_ctx(p, key, ca, err, sizeof err) == -EINVAL && strstr(err, p) &&
              strstr(err, "certificate is not yet valid") && strstr(err, "clock"),
          "not yet valid: %s", err);
    printf("ok: not yet valid: %s\n", err);
    unlink(p);

    snprintf(p, sizeof p, "%s/replica-1.crt", b);
    snprintf(q, sizeof q, "%s/replica-1.key", b);
    CHECK(try_ctx(p, q, ca, err, sizeof err) == -EINVAL && strstr(err, p) && strstr(err, ca) &&
              strstr(err, "unable to get local issuer certificate") && strstr(err, "signed by that CA"),
          "another CA: %s", err);
    printf("ok: another CA's certificate: %s\n", err);

    snprintf(q, sizeof q, "%s/replica-2.key", a);
    CHECK(try_ctx(cert, q, ca, err, sizeof err) == -EINVAL && strstr(err, q) && strstr(err, "does not belong") &&
              strstr(err, "give the key"),
          "key of another certificate: %s", err);
    printf("ok: another certificate's key: %s\n", err);

    CHECK(try_ctx(a, key, ca, err, sizeof err) == -EISDIR && strstr(err, a) && strstr(err, "is a directory"),
          "directory: %s", err);
    printf("ok: a directory as the certificate: %s\n", err);

    snprintf(p, sizeof p, "%s/ca.key", a);
    CHECK(try_ctx(cert, key, p, err, sizeof err) == -EINVAL && strstr(err, "tls-ca-cert-file") && strstr(err, p) &&
              strstr(err, "give the PEM certificate of the CA"),
          "a key as the CA: %s", err);
    printf("ok: a key as the CA: %s\n", err);

    snprintf(p, sizeof p, "%s/valid.crt", tmp);
    unlink(p);
    CHECK(rmdir(tmp) == 0, "rmdir %s", tmp);
}

static XXH3_state_t *sent_h; /* what the echo client sent */

static void run_until(struct rio_loop *l, bool (*done)(void), const char *what)
{
    uint64_t deadline = rio_now_us() + 20000000u;
    while (!done()) {
        CHECK(rio_now_us() < deadline, "%s: not done within 20 s", what);
        /* keep the echo client fed, at most 2 MiB ahead of what left */
        struct tc *e = cli[K_ECHO];
        while (e && e->c && e->connected && !e->connect_err && e->sent < ECHO_BYTES &&
               rio_conn_pending(e->c) < (2u << 20)) {
            size_t n = 1 + rnd() % sizeof chunk;
            if (n > ECHO_BYTES - e->sent) n = ECHO_BYTES - e->sent;
            for (size_t i = 0; i < n; i++) chunk[i] = (uint8_t)rnd();
            CHECK(rio_send(e->c, chunk, n) == 0, "echo client send");
            XXH3_64bits_update(sent_h, chunk, n);
            e->sent += n;
        }
        int r = rio_run_once(l, 10000);
        CHECK(r >= 0, "rio_run_once: %d", r);
    }
}

static bool echo_done(void) { return cli[K_ECHO] && cli[K_ECHO]->got == ECHO_BYTES; }
static bool echo_closed(void) { return cli[K_ECHO]->closed && srv[K_ECHO] && srv[K_ECHO]->closed; }
static bool garbage_done(void) { return srv[K_GARBAGE] && srv[K_GARBAGE]->closed && cli[K_GARBAGE]->closed; }
static bool huge_done(void) { return srv[K_HUGE] && srv[K_HUGE]->closed && cli[K_HUGE]->closed; }
static bool foreign_done(void) { return cli[K_FOREIGN]->closed && srv[K_FOREIGN] && srv[K_FOREIGN]->closed; }
static bool limit_done(void) { return srv[K_LIMIT] && srv[K_LIMIT]->closed && cli[K_LIMIT]->closed; }
static bool cas_done(void) { return cli[K_CAS]->closed && srv[K_CAS] && srv[K_CAS]->closed; }

static struct tc *dial(struct rio_loop *l, uint16_t port, enum kind k, const struct rio_tls_ctx *x)
{
    struct tc *t = tc_new(k, false);
    int rc = rio_connect(l, "127.0.0.1", port, t, &t->c);
    CHECK(rc == 0, "connect: %d", rc);
    if (x) {
        rc = rio_conn_start_tls(t->c, x, false);
        CHECK(rc == 0, "start_tls client: %d", rc);
    }
    cli[k] = t;
    return t;
}

int main(int argc, char **argv)
{
    CHECK(argc == 3, "usage: test_io_tls CERTS_DIR OTHER_CA_DIR");
    sent_h = XXH3_createState();
    XXH3_64bits_reset(sent_h);
    ctx_a_srv = mk(argv[1], "replica-1", true);
    ctx_a_cli = mk(argv[1], "replica-2", false);
    ctx_b_srv = mk(argv[2], "replica-1", true);
    {   /* a bad file is refused with its name and the cause */
        char err[512];
        struct rio_tls_ctx *x;
        struct rio_tls_opts o = {.cert_file = "/nonexistent.crt", .key_file = "/x", .ca_file = "/y"};
        CHECK(rio_tls_ctx_new(&x, &o, err, sizeof err) < 0 && strstr(err, "/nonexistent.crt"), "%s", err);
        printf("ok: a missing certificate file: %s\n", err);
    }
    refusals(argv[1], argv[2]);
    struct rio_handlers h = {.on_accept = on_accept, .on_data = on_data, .on_connect = on_connect, .on_close = on_close};
    struct rio_loop *l;
    char err[512];
    CHECK(rio_loop_create(&l, &h, NULL, err, sizeof err) == 0, "%s", err);
    struct rio_listener *ls[K_N];
    for (int k = 0; k < K_N; k++)
        CHECK(rio_listen(l, "127.0.0.1", 0, (void *)(intptr_t)k, &ls[k]) == 0, "listen");

    /* echo */
    dial(l, rio_listener_port(ls[K_ECHO]), K_ECHO, ctx_a_cli);
    run_until(l, echo_done, "echo");
    struct tc *ec = cli[K_ECHO], *es = srv[K_ECHO];
    CHECK(ec->connect_err == 0, "echo connect %d", ec->connect_err);
    CHECK(XXH3_64bits_digest(ec->h) == XXH3_64bits_digest(sent_h), "echo: the stream came back different");
    CHECK(es->got == ECHO_BYTES, "server got %zu", es->got);
    CHECK(!strcmp(ec->cn, "replica-1"), "client saw server CN '%s'", ec->cn);
    CHECK(!strcmp(es->cn, "replica-2"), "server saw client CN '%s'", es->cn);
    printf("ok: echo: %zu bytes both ways through TLS, XXH3 equal; the client verified CN=%s, the server CN=%s\n",
           ec->got, ec->cn, es->cn);
    rio_close(ec->c);
    run_until(l, echo_closed, "echo close");
    CHECK(ec->close_err == 0 && es->close_err == 0, "echo closes: %d %d", ec->close_err, es->close_err);

    /* garbage from a plain client */
    dial(l, rio_listener_port(ls[K_GARBAGE]), K_GARBAGE, NULL);
    run_until(l, garbage_done, "garbage");
    CHECK(srv[K_GARBAGE]->close_err == -EPROTO && srv[K_GARBAGE]->err[0], "garbage: close %d '%s'",
          srv[K_GARBAGE]->close_err, srv[K_GARBAGE]->err);
    CHECK(srv[K_GARBAGE]->got == 0, "garbage reached on_data");
    printf("ok: garbage on a TLS port: closed, -EPROTO: %s\n", srv[K_GARBAGE]->err);

    /* a record far over the size TLS allows */
    dial(l, rio_listener_port(ls[K_HUGE]), K_HUGE, NULL);
    run_until(l, huge_done, "huge record");
    CHECK(srv[K_HUGE]->close_err == -EPROTO && srv[K_HUGE]->err[0] && srv[K_HUGE]->got == 0, "huge: close %d '%s'",
          srv[K_HUGE]->close_err, srv[K_HUGE]->err);
    printf("ok: a record header announcing 65535 bytes: closed, -EPROTO: %s\n", srv[K_HUGE]->err);

    /* a server with a certificate of another CA */
    dial(l, rio_listener_port(ls[K_FOREIGN]), K_FOREIGN, ctx_a_cli);
    run_until(l, foreign_done, "foreign CA");
    struct tc *fc = cli[K_FOREIGN], *fs = srv[K_FOREIGN];
    CHECK(fc->connect_err == -EPROTO && strstr(fc->err, "certificate verify failed"), "client: %d '%s'",
          fc->connect_err, fc->err);
    CHECK(fs->close_err != 0 && fs->err[0] && fs->got == 0, "server: %d '%s'", fs->close_err, fs->err);
    printf("ok: foreign CA: the client refused (%s); the server heard: %s\n", fc->err, fs->err);

    /* the input limit holds for plaintext */
    dial(l, rio_listener_port(ls[K_LIMIT]), K_LIMIT, ctx_a_cli);
    run_until(l, limit_done, "limit");
    CHECK(srv[K_LIMIT]->close_err == -EMSGSIZE, "limit: server closed with %d", srv[K_LIMIT]->close_err);
    printf("ok: input limit %zu KiB: closed with -EMSGSIZE\n", LIMIT_IN >> 10);

    /* close after send: everything, then an orderly end */
    dial(l, rio_listener_port(ls[K_CAS]), K_CAS, ctx_a_cli);
    run_until(l, cas_done, "close after send");
    CHECK(cli[K_CAS]->got == CAS_BYTES && XXH3_64bits_digest(cli[K_CAS]->h) == XXH3_64bits_digest(srv[K_CAS]->h),
          "cas: got %zu of %zu", cli[K_CAS]->got, CAS_BYTES);
    CHECK(cli[K_CAS]->close_err == 0 && !cli[K_CAS]->err[0], "cas: client end %d '%s'", cli[K_CAS]->close_err,
          cli[K_CAS]->err);
    printf("ok: close after send: %zu bytes, then close_notify (err 0)\n", cli[K_CAS]->got);

    struct rio_stats st;
    rio_loop_stats(l, &st);
    CHECK(st.conns_open == 0, "%llu connections still open", (unsigned long long)st.conns_open);
    rio_loop_destroy(l);
    rio_tls_ctx_free(ctx_a_srv);
    rio_tls_ctx_free(ctx_a_cli);
    rio_tls_ctx_free(ctx_b_srv);
    for (int k = 0; k < K_N; k++) {
        if (srv[k]) XXH3_freeState(srv[k]->h), free(srv[k]);
        if (cli[k]) XXH3_freeState(cli[k]->h), free(cli[k]);
    }
    XXH3_freeState(sent_h);
    printf("PASS\n");
    return 0;
}
