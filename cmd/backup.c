/* rabia-cli backup PATH / backup --verify PATH (cmd/backup.h).
 *
 * The backup comes from one replica over its native port: BACKUP_REQ, then
 * BACKUP_CHUNKs (a snapshot taken at one applied slot, in order, 1 MiB
 * each) written straight to PATH's temporary file: one frame in memory at a
 * time. The file is persist/snapfile.c's snapshot format (so rabiad
 * --restore and every replica read it as they read their own snapshots),
 * made durable as they are: temporary file, fsync, rename, fsync of the
 * folder. */
#define _GNU_SOURCE
#include "backup.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "codec.h"
#include "snapfile.h"

#define BACKUP_MAX_BYTES (1ull << 40) /* a replica announcing more is not believed (the daemon's SNAP_MAX) */

static int dial(const char *addr, int timeout_ms, char *err, size_t errlen)
{
    char host[256], port[16];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host || strlen(colon + 1) >= sizeof port) {
        snprintf(err, errlen, "%s: not host:port", addr);
        return -EINVAL;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
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

/* Read until buf holds one whole frame (at most RABIA_MAX_FRAME: the codec's
 * bound on what a peer may announce). 0 with *flen, or a negative errno. */
static int read_frame(int fd, struct rabia_buf *rx, size_t *flen, int idle_ms)
{
    for (;;) {
        if (rx->len >= RABIA_FRAME_HEADER) {
            int pr = rabia_frame_peek(rx->data, rx->len, flen);
            if (pr < 0) return -EPROTO;
            if (rx->len >= *flen) return 0;
        }
        size_t want = rx->len >= RABIA_FRAME_HEADER ? *flen - rx->len : 64u << 10;
        if (rabia_buf_reserve(rx, want)) return -ENOMEM;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, idle_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return -ETIMEDOUT;
        if (r < 0) return -errno;
        ssize_t got = recv(fd, rx->data + rx->len, rx->cap - rx->len, MSG_DONTWAIT);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got < 0) return -errno;
        if (got == 0) return -ECONNRESET;
        rx->len += (size_t)got;
    }
}

/* One replica: 0 and the backup at path, or a negative errno with err. */
static int backup_from(const char *addr, const char *path, int first_ms, int idle_ms, struct rabia_snapfile_info *out,
                       char *err, size_t errlen)
{
    int fd = dial(addr, first_ms, err, errlen);
    if (fd < 0) return fd;
    uint8_t req[RABIA_FRAME_HEADER];
    struct rabia_msg m = {.type = RABIA_MSG_BACKUP_REQ};
    int n = rabia_msg_encode(&m, req, sizeof req);
    if (n < 0 || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) { /* 16 bytes into an empty socket buffer */
        snprintf(err, errlen, "%s: sending the request: %s", addr, n < 0 ? rabia_strerror(n) : strerror(errno));
        close(fd);
        return -EIO;
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
        rc = read_frame(fd, &rx, &flen, taken ? idle_ms : first_ms);
        if (rc) {
            if (!taken)
                snprintf(err, errlen, "%s: %s before any answer: is it a replica's native client port (client-listen)?",
                         addr, rc == -EPROTO ? "not a rabia frame" : strerror(-rc));
            else
                snprintf(err, errlen, "%s: %s after %" PRIu64 " of %" PRIu64 " bytes", addr,
                         rc == -EPROTO ? "a bad frame" : strerror(-rc), got, total);
            break;
        }
        struct rabia_msg c;
        if ((rc = rabia_msg_decode(rx.data, flen, &c)) || c.type != RABIA_MSG_BACKUP_CHUNK) {
            snprintf(err, errlen, "%s: unexpected answer (%s): a replica of this version?", addr,
                     rc ? rabia_strerror(rc) : rabia_msg_type_name(c.type));
            rc = -EPROTO;
            break;
        }
        if (c.value == 1) {
            snprintf(err, errlen, "%s refused the backup: %.*s", addr, (int)c.body_len, (const char *)c.body);
            rc = -EAGAIN;
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
                break;
            }
            begun = true;
        }
        if (c.slot != slot || c.u64b != total || c.u64 != got) {
            snprintf(err, errlen, "%s: chunk out of order (slot %" PRIu64 " offset %" PRIu64 ", expected slot %" PRIu64
                     " offset %" PRIu64 ")", addr, c.slot, c.u64, slot, got);
            rc = -EPROTO;
            break;
        }
        if ((rc = rabia_snapfile_append(&w, c.body, c.body_len, why, sizeof why))) {
            snprintf(err, errlen, "%s", why);
            break;
        }
        XXH64_update(&hs, c.body, c.body_len);
        got += c.body_len;
        memmove(rx.data, rx.data + flen, rx.len - flen); /* what came after this frame */
        rx.len -= flen;
        if (got == total) break;
    }
    close(fd);
    rabia_buf_free(&rx);
    if (rc) {
        if (begun) rabia_snapfile_abort(&w);
        return rc;
    }
    if ((rc = rabia_snapfile_commit(&w, why, sizeof why))) {
        snprintf(err, errlen, "%s", why);
        return rc;
    }
    /* read back from the disk: what restore will check */
    if ((rc = rabia_snapfile_verify(path, out, why, sizeof why))) {
        snprintf(err, errlen, "the backup just written does not check out: %s", why);
        return rc;
    }
    if (out->state_hash != XXH64_digest(&hs) || out->slot != slot) {
        snprintf(err, errlen, "%s: the file read back differs from what was received", path);
        return -EIO;
    }
    return 0;
}

static void print_info(const char *what, const char *path, const struct rabia_snapfile_info *i)
{
    printf("%s %s\nslot: %" PRIu64 "\nbytes: %" PRIu64 "\nstate_hash: %016" PRIx64 "\nstate_machine: %s\n", what,
           path, i->slot, i->len, i->state_hash, i->sm);
}

int cli_backup(char **addrs, size_t n_addrs, const char *path, uint32_t timeout_ms)
{
    /* the replica may first fork a snapshot: wait up to its own limit (120 s) and more */
    int idle_ms = timeout_ms > 150000 ? (int)timeout_ms : 150000;
    int first_ms = timeout_ms > 3000 ? (int)timeout_ms : 3000;
    char err[1200];
    for (size_t i = 0; i < n_addrs; i++) {
        struct rabia_snapfile_info info;
        int rc = backup_from(addrs[i], path, first_ms, idle_ms, &info, err, sizeof err);
        if (!rc) {
            print_info("backup written to", path, &info);
            printf("from: %s\n", addrs[i]);
            return 0;
        }
        fprintf(stderr, "rabia-cli: backup: %s%s\n", err, i + 1 < n_addrs ? "; trying the next replica" : "");
    }
    return 3;
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
