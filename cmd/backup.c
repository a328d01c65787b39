/* rabia-cli backup PATH / backup --verify PATH (cmd/backup.h).
 *
 * The backup comes from one replica over its native port: BACKUP_REQ, then
 * BACKUP_CHUNKs (a snapshot taken at one applied slot, in order, 1 MiB
 * each) written straight to PATH's temporary file: one frame in memory at a
 * time. The file is persist/snapfile.c's snapshot format (so rabiad
 * --restore and every replica read it as they read their own snapshots),
 * made durable as they are: temporary file, fsync, rename, fsync of the
 * folder.
 *
 * The connection is the native client library's: TLS 1.3 with --tls
 * (client/client_tls.h, the same context and handshake as every other
 * rabia-cli command), and CLIENT_AUTH first when a password is given, sent
 * in the same write as BACKUP_REQ (the replica answers them in order). A
 * replica with users configured takes backups only from a user with +@all
 * and allkeys (replica_auth_may_backup): its refusal, like a refused
 * CLIENT_AUTH, is printed as the replica wrote it and nothing is written. */
#define _GNU_SOURCE
#include "backup.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "client_tls.h"
#include "codec.h"
#include "snapfile.h"

#define BACKUP_MAX_BYTES (1ull << 40) /* a replica announcing more is not believed (the daemon's SNAP_MAX) */
#define AUTH_MAX_USER 255             /* CLIENT_AUTH's u8 user length */
#define AUTH_MAX_PASS 4096            /* as client.c's auth_frame: bounded, on the stack */

/* One connection to one replica: the socket, and its TLS session when
 * --tls (NULL: plain; ctls_send/ctls_recv then use the socket directly). */
struct link {
    int fd;
    SSL *ssl;
    char tls_err[512]; /* the last TLS failure's reason */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dial(const char *addr, int timeout_ms, char *err, size_t errlen)
{
    char host[256], port[16];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host || strlen(colon + 1) >= sizeof port) {
        snprintf(err, errlen, "%s: not host:port", addr);
        return -EINVAL;
    }
    /* "[v6]:port", as the other commands (client.c) and rabiad take it: the
     * brackets went to getaddrinfo ("Name or service not known") */
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)hl, h);
    snprintf(port, sizeof port, "%s", colon + 1);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g) {
        snprintf(err, errlen, "%s: %s", addr, gai_strerror(g));
        return -EHOSTUNREACH;
    }
    int fd = -1, rc = -ECONNREFUSED;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        int f = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (f < 0) continue;
        if (connect(f, a->ai_addr, a->ai_addrlen) && errno != EINPROGRESS) {
            rc = -errno;
            close(f);
            continue;
        }
        struct pollfd p = {.fd = f, .events = POLLOUT};
        int e = 0;
        socklen_t el = sizeof e;
        if (poll(&p, 1, timeout_ms) <= 0) e = ETIMEDOUT;
        else if (getsockopt(f, SOL_SOCKET, SO_ERROR, &e, &el)) e = errno;
        if (e) {
            rc = -e;
            close(f);
            continue;
        }
        fd = f;
    }
    freeaddrinfo(ai);
    if (fd < 0) snprintf(err, errlen, "%s: %s", addr, strerror(-rc));
    return fd < 0 ? rc : fd;
}

/* Send all n bytes within timeout_ms. 0, or a negative errno (-EPROTO:
 * TLS, the reason in l->tls_err). */
static int send_all(struct link *l, const uint8_t *p, size_t n, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    size_t off = 0;
    while (off < n) {
        ssize_t w = ctls_send(l->ssl, l->fd, p + off, n - off, l->tls_err, sizeof l->tls_err);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
        int64_t left = deadline - mono_ms();
        if (left <= 0) return -ETIMEDOUT;
        struct pollfd pf = {.fd = l->fd, .events = POLLOUT};
        if (poll(&pf, 1, (int)left) < 0 && errno != EINTR) return -errno;
    }
    return 0;
}

/* Read until buf holds one whole frame (at most RABIA_MAX_FRAME: the codec's
 * bound on what a peer may announce). 0 with *flen, or a negative errno.
 * It reads before it polls: a TLS session may already hold decrypted bytes
 * that no poll() on the socket would announce. */
static int read_frame(struct link *l, struct rabia_buf *rx, size_t *flen, int idle_ms)
{
    for (;;) {
        if (rx->len >= RABIA_FRAME_HEADER) {
            int pr = rabia_frame_peek(rx->data, rx->len, flen);
            if (pr < 0) return -EPROTO;
            if (rx->len >= *flen) return 0;
        }
        size_t want = rx->len >= RABIA_FRAME_HEADER ? *flen - rx->len : 64u << 10;
        if (rabia_buf_reserve(rx, want)) return -ENOMEM;
        ssize_t got = ctls_recv(l->ssl, l->fd, rx->data + rx->len, rx->cap - rx->len, l->tls_err, sizeof l->tls_err);
        if (got > 0) {
            rx->len += (size_t)got;
            continue;
        }
        if (got == 0) return -ECONNRESET;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
        struct pollfd p = {.fd = l->fd, .events = POLLIN};
        int r = poll(&p, 1, idle_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return -ETIMEDOUT;
        if (r < 0) return -errno;
    }
}

/* The request: CLIENT_AUTH (u8 user length, user, password) when a password
 * is given, then BACKUP_REQ. The length of what was written into out, or a
 * negative errno. */
static int request(const struct rabia_client_cfg *cfg, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (cfg->password) {
        const char *user = cfg->user ? cfg->user : "";
        size_t ul = strlen(user), pl = strlen(cfg->password);
        if (ul > AUTH_MAX_USER || pl > AUTH_MAX_PASS) return -EINVAL;
        uint8_t body[1 + AUTH_MAX_USER + AUTH_MAX_PASS];
        body[0] = (uint8_t)ul;
        memcpy(body + 1, user, ul);
        memcpy(body + 1 + ul, cfg->password, pl);
        struct rabia_msg a = {.type = RABIA_MSG_CLIENT_AUTH, .body = body, .body_len = (uint32_t)(1 + ul + pl)};
        int w = rabia_msg_encode(&a, out, cap);
        explicit_bzero(body, sizeof body); /* the password: only in out, which the caller wipes after sending */
        if (w < 0) return w;
        n = (size_t)w;
    }
    struct rabia_msg m = {.type = RABIA_MSG_BACKUP_REQ};
    int w = rabia_msg_encode(&m, out + n, cap - n);
    if (w < 0) return w;
    return (int)(n + (size_t)w);
}

/* The temporary file being written (PATH.<pid>.tmp), removed by a signal
 * that stops rabia-cli meanwhile: Ctrl-C, timeout's SIGTERM, a closed
 * terminal's SIGHUP. Without it every interrupted backup left its partial
 * snapshot (up to the whole state) under a name no later run reuses, as
 * many as backups were interrupted (found by review; integration
 * backup_interrupt). The handler unlinks (async-signal-safe) and dies of
 * the same signal (SA_RESETHAND, raise): the exit status is the signal's,
 * as before. */
static char interrupted_tmp[sizeof(((struct rabia_snapfile_writer *)0)->tmp)];
static volatile sig_atomic_t interrupted_tmp_set;
static const int interrupt_sigs[] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction interrupt_old[sizeof interrupt_sigs / sizeof interrupt_sigs[0]];

static void on_interrupt(int sig)
{
    if (interrupted_tmp_set) (void)unlink(interrupted_tmp);
    raise(sig); /* SA_RESETHAND: the default action once this returns */
}

/* Install (on) or restore (off) the handlers; a signal ignored at start
 * (nohup) stays ignored. */
static void interrupt_handlers(bool on)
{
    for (size_t i = 0; i < sizeof interrupt_sigs / sizeof interrupt_sigs[0]; i++) {
        if (!on) {
            (void)sigaction(interrupt_sigs[i], &interrupt_old[i], NULL);
            continue;
        }
        struct sigaction sa = {.sa_handler = on_interrupt, .sa_flags = SA_RESETHAND};
        sigemptyset(&sa.sa_mask);
        if (sigaction(interrupt_sigs[i], NULL, &interrupt_old[i]) == 0 && interrupt_old[i].sa_handler != SIG_IGN)
            (void)sigaction(interrupt_sigs[i], &sa, NULL);
    }
}

/* The writer's temporary file from now on (tmp), or none any more (NULL):
 * the path is complete before the handler may read it. */
static void interrupt_removes(const char *tmp)
{
    interrupted_tmp_set = 0;
    if (!tmp) return;
    snprintf(interrupted_tmp, sizeof interrupted_tmp, "%s", tmp);
    interrupted_tmp_set = 1;
}

/* One replica: 0 and the backup at path, or a negative errno with err. */
static int backup_from(const char *addr, const char *path, SSL_CTX *tls, const struct rabia_client_cfg *cfg,
                       int first_ms, int idle_ms, struct rabia_snapfile_info *out, bool *local, char *err,
                       size_t errlen)
{
    *local = false; /* set where writing PATH failed: no other replica can help */
    struct link l = {.fd = dial(addr, first_ms, err, errlen), .ssl = NULL, .tls_err = ""};
    if (l.fd < 0) return l.fd;
    int hsr = tls ? ctls_handshake(tls, l.fd, addr, cfg->tls_server_name, mono_ms() + first_ms, &l.ssl, l.tls_err,
                                   sizeof l.tls_err)
                  : 0;
    if (hsr) {
        const char *why = hsr == -EPROTO || hsr == -ETIMEDOUT ? l.tls_err : strerror(-hsr);
        if (strstr(why, "subjectAltName")) /* a name mismatch: the reason holds its fix */
            snprintf(err, errlen, "%s: %s", addr, why);
        else
            snprintf(err, errlen, "%s: %s (%s)", addr, why,
                     strstr(why, "certificate verify failed")
                         ? "is --cacert the CA that signed the replicas' certificates?"
                         : "is it a replica's native client port with tls-clients = yes?");
        close(l.fd);
        return hsr;
    }
    uint8_t req[2 * RABIA_FRAME_HEADER + 1 + AUTH_MAX_USER + AUTH_MAX_PASS];
    int n = request(cfg, req, sizeof req);
    int sr = n < 0 ? n : send_all(&l, req, (size_t)n, first_ms);
    explicit_bzero(req, sizeof req);
    if (sr) {
        snprintf(err, errlen, "%s: sending the request: %s", addr,
                 n < 0 ? (n == -EINVAL ? "user name or password too long" : rabia_strerror(n))
                 : sr == -EPROTO ? l.tls_err : strerror(-sr));
        SSL_free(l.ssl);
        close(l.fd);
        return n < 0 ? -EINVAL : -EIO;
    }
    struct rabia_buf rx = {0};
    struct rabia_snapfile_writer w;
    bool begun = false;
    XXH64_state_t hs;
    XXH64_reset(&hs, 0);
    uint64_t slot = 0, total = 0, got = 0;
    int rc = 0;
    char why[800];
    bool taken = false;
    for (;;) {
        size_t flen = 0;
        /* until the replica says it took the request: the short timeout (a
         * wrong port answers nothing); then the long one (it may first write
         * a snapshot of a large state) */
        rc = read_frame(&l, &rx, &flen, taken ? idle_ms : first_ms);
        if (rc) {
            /* a TLS failure's reason is OpenSSL's; a bad frame is ours */
            const char *what = l.tls_err[0] ? l.tls_err : rc == -EPROTO ? (taken ? "a bad frame" : "not a rabia frame")
                                                                         : strerror(-rc);
            if (!taken)
                snprintf(err, errlen, "%s: %s before any answer: is it a replica's native client port (client-listen)%s?",
                         addr, what, tls ? "" : ", and does it want --tls (tls-clients = yes)");
            else
                snprintf(err, errlen, "%s: %s after %" PRIu64 " of %" PRIu64 " bytes", addr, what, got, total);
            break;
        }
        struct rabia_msg c;
        if (!rabia_msg_decode(rx.data, flen, &c) && c.type == RABIA_MSG_CLIENT_AUTH_REPLY) {
            if (c.value != 0) { /* WRONGPASS ...: the replica's own words; its BACKUP_REQ is refused too */
                snprintf(err, errlen, "%s refused the authentication: %.*s", addr, (int)c.body_len,
                         (const char *)c.body);
                rc = -EACCES;
                break;
            }
            memmove(rx.data, rx.data + flen, rx.len - flen); /* accepted: the backup's answer follows */
            rx.len -= flen;
            continue;
        }
        if ((rc = rabia_msg_decode(rx.data, flen, &c)) || c.type != RABIA_MSG_BACKUP_CHUNK) {
            snprintf(err, errlen, "%s: unexpected answer (%s): a replica of this version?", addr,
                     rc ? rabia_strerror(rc) : rabia_msg_type_name(c.type));
            rc = -EPROTO;
            break;
        }
        if (c.value == 1) {
            snprintf(err, errlen, "%s refused the backup: %.*s%s", addr, (int)c.body_len, (const char *)c.body,
                     !cfg->password && c.body_len >= 6 && !memcmp(c.body, "NOAUTH", 6)
                         ? " (give --user/--pass or RABIA_PASSWORD)" : "");
            rc = c.body_len >= 6 && (!memcmp(c.body, "NOAUTH", 6) || !memcmp(c.body, "NOPERM", 6)) ? -EACCES : -EAGAIN;
            break;
        }
        taken = true;
        if (c.value == 2) { /* taken: a snapshot at c.slot or later comes */
            memmove(rx.data, rx.data + flen, rx.len - flen);
            rx.len -= flen;
            continue;
        }
        if (!begun) {
            if (c.u64 != 0 || c.u64b > BACKUP_MAX_BYTES || c.u64b < 16) {
                snprintf(err, errlen, "%s: refusing a backup announced at %" PRIu64 " bytes from offset %" PRIu64
                         " (at most %llu, from 0)", addr, c.u64b, c.u64, (unsigned long long)BACKUP_MAX_BYTES);
                rc = -EPROTO;
                break;
            }
            slot = c.slot;
            total = c.u64b;
            if ((rc = rabia_snapfile_begin_path(&w, path, slot, total, (unsigned)getpid(), why, sizeof why))) {
                snprintf(err, errlen, "%s", why);
                *local = true;
                break;
            }
            begun = true;
            interrupt_removes(w.tmp);
        }
        if (c.slot != slot || c.u64b != total || c.u64 != got) {
            snprintf(err, errlen, "%s: chunk out of order (slot %" PRIu64 " offset %" PRIu64 ", expected slot %" PRIu64
                     " offset %" PRIu64 ")", addr, c.slot, c.u64, slot, got);
            rc = -EPROTO;
            break;
        }
        if ((rc = rabia_snapfile_append(&w, c.body, c.body_len, why, sizeof why))) {
            snprintf(err, errlen, "%s", why);
            *local = true;
            break;
        }
        XXH64_update(&hs, c.body, c.body_len);
        got += c.body_len;
        memmove(rx.data, rx.data + flen, rx.len - flen); /* what came after this frame */
        rx.len -= flen;
        if (got == total) break;
    }
    if (l.ssl && !rc) (void)SSL_shutdown(l.ssl); /* close_notify: best effort, the backup is complete */
    SSL_free(l.ssl);
    close(l.fd);
    rabia_buf_free(&rx);
    if (rc) {
        if (begun) rabia_snapfile_abort(&w);
        return rc;
    }
    if ((rc = rabia_snapfile_finish(&w, why, sizeof why))) {
        snprintf(err, errlen, "%s", why);
        *local = true;
        return rc;
    }
    /* read back from the disk, what restore will check, before it takes
     * PATH: a copy that does not check out never replaces an earlier good
     * backup there (it did: renamed first, checked after; found by review) */
    if ((rc = rabia_snapfile_verify(w.tmp, out, why, sizeof why))) {
        rabia_snapfile_abort(&w);
        snprintf(err, errlen, "the backup just written does not check out (%s left as it was): %s", path, why);
        return rc;
    }
    if (out->checksum != XXH64_digest(&hs) || out->slot != slot) {
        rabia_snapfile_abort(&w);
        snprintf(err, errlen, "%s: the file read back differs from what was received (left as it was)", path);
        return -EIO;
    }
    if ((rc = rabia_snapfile_publish(&w, why, sizeof why))) {
        snprintf(err, errlen, "%s", why);
        *local = true;
        return rc;
    }
    return 0;
}

static void print_info(const char *what, const char *path, const struct rabia_snapfile_info *i)
{
    printf("%s %s\nslot: %" PRIu64 "\nbytes: %" PRIu64 "\nstate_hash: %016" PRIx64 "\nstate_machine: %s\n", what,
           path, i->slot, i->len, i->state_hash, i->sm);
}

/* PATH must name a file in a folder this process can write: checked before
 * any replica is asked (it was found only after a whole backup had been
 * received, from every replica in turn, and reported as "no replica
 * reachable"). 0, or -1 with err. */
static int path_check(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    if (!path[0]) {
        snprintf(err, errlen, "PATH is empty: give the backup file's path (e.g. /backups/rabia.snap)");
        return -1;
    }
    if (!stat(path, &sb) && S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%.400s is a directory: give the backup file's path in it (e.g. %.400s/rabia.snap)", path,
                 path);
        return -1;
    }
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    errno = 0;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode) || access(dir, W_OK)) {
        snprintf(err, errlen, "%.400s: cannot write in %.400s: %s (create the folder, or give a path in a writable one)",
                 path, dir, errno ? strerror(errno) : "not a directory");
        return -1;
    }
    return 0;
}

int cli_backup(char **addrs, size_t n_addrs, const char *path, uint32_t timeout_ms, const struct rabia_client_cfg *cfg)
{
    assert(cfg);
    /* the replica may first fork a snapshot: wait up to its own limit (120 s) and more */
    int idle_ms = timeout_ms > 150000 ? (int)timeout_ms : 150000;
    int first_ms = timeout_ms > 3000 ? (int)timeout_ms : 3000;
    char err[1200];
    if (path_check(path, err, sizeof err)) {
        fprintf(stderr, "rabia-cli: backup: %s\n", err);
        return 2; /* EX_USAGE: nothing was tried */
    }
    SSL_CTX *tls = NULL;
    if (cfg->tls && !(tls = ctls_ctx_new(cfg, err, sizeof err))) {
        fprintf(stderr, "rabia-cli: backup: %s\n", err);
        return 2; /* EX_USAGE in rabia-cli: a setup error, nothing was tried */
    }
    int ex = 3;
    interrupt_handlers(true);
    for (size_t i = 0; i < n_addrs; i++) {
        struct rabia_snapfile_info info;
        bool local;
        int rc = backup_from(addrs[i], path, tls, cfg, first_ms, idle_ms, &info, &local, err, sizeof err);
        interrupt_removes(NULL); /* renamed into place, or removed */
        if (!rc) {
            print_info("backup written to", path, &info);
            printf("from: %s\n", addrs[i]);
            ex = 0;
            break;
        }
        /* refused for who we are: every replica has the same users, asking
         * the next is no use; nor where PATH could not be written here */
        bool final = rc == -EACCES || local || i + 1 == n_addrs;
        fprintf(stderr, "rabia-cli: backup: %s%s\n", err, final ? "" : "; trying the next replica");
        if (rc == -EACCES || local) {
            ex = 1; /* rejected, as rabia-cli's other commands' NOAUTH/NOPERM; or not written here */
            break;
        }
    }
    interrupt_handlers(false);
    SSL_CTX_free(tls);
    return ex;
}

int cli_backup_verify(const char *path)
{
    struct rabia_snapfile_info info;
    char err[1200];
    if (rabia_snapfile_verify(path, &info, err, sizeof err)) {
        fprintf(stderr, "rabia-cli: backup --verify: %s\n", err);
        return 1;
    }
    print_info("backup intact:", path, &info);
    return 0;
}
