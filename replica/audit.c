/* The audit log (audit-log = path): every write this replica applies, one
 * JSON line each, with the wall time, the slot, the client's session and
 * seq (the replicated request carries them, so every replica logs the same
 * writes in the same slot order) and, at the replica that took the request
 * from its client, the user it authenticated as and its address.
 *
 * Lines are built into a bounded buffer as slots are applied (core/rsm.c's
 * on_apply hook) and written with plain write()s once per loop turn
 * (replica_audit_flush), before the turn's replies leave. Not crash-durable:
 * no fsync, so the lines of the last moments before a crash of the machine
 * may be missing (after a restart, the writes the log replays are logged
 * again with "replayed": true). A failing write (ENOSPC, EIO) drops the
 * buffered lines, is counted (INFO: audit_log_errors, audit_log_lines_dropped)
 * and logged at most every 10 s; the replica keeps serving.
 *
 * A relative path (not starting with / or ./) is under data-dir.
 *
 * Rotation: a file never grows past audit-log-max-bytes; then PATH.i is
 * renamed PATH.i+1 (up to audit-log-keep files), PATH becomes PATH.1 and a
 * new PATH is opened. When PATH is renamed or removed by someone else
 * (logrotate), a new PATH is opened within a second. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "invariant.h"
#include "kv.h"

#define AUDIT_BUF (1u << 20)     /* lines buffered between writes */
#define AUDIT_LINE_MAX 8192u     /* room reserved per line (the bounds below keep one far under it) */
#define AUDIT_ARG_SHOWN 128u     /* bytes of one argument written */
#define AUDIT_ARGS_SHOWN 512u    /* bytes of all arguments written */
#define AUDIT_ARGC_SHOWN 32u     /* arguments written */
#define AUDIT_HEX_SHOWN 256u     /* bytes of a non-KV op written (as hex) */

struct replica_audit {
    char path[512];
    int fd;
    dev_t dev;
    ino_t ino;
    uint64_t file_bytes;       /* in the current file */
    char *buf;
    size_t len;
    bool live;                 /* the loop runs: before, applies are the log's replay */
    uint64_t lines, bytes, errors, dropped, rotations;
    uint64_t last_err_us, last_check_us;
    time_t ts_sec;             /* the cached "YYYY-MM-DDTHH:MM:SS" of ts_sec */
    char ts_text[32];
};

/* ------------------------------------------------------------------ */
/* a bounded line writer */

struct lw {
    char *p;
    size_t n, cap;
};

static void put(struct lw *w, const void *s, size_t k)
{
    RABIA_ASSERT(w->n + k <= w->cap); /* the bounds above keep every line within AUDIT_LINE_MAX */
    memcpy(w->p + w->n, s, k);
    w->n += k;
}

static void putf(struct lw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct lw *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(w->p + w->n, w->cap - w->n, fmt, ap);
    va_end(ap);
    RABIA_ASSERT(k >= 0 && (size_t)k < w->cap - w->n);
    w->n += (size_t)k;
}

/* A JSON string of the first `shown` bytes of s: printable ASCII as is,
 * everything else escaped, a byte outside ASCII as \u00XX (one per byte,
 * so binary values survive exactly). */
static void put_str(struct lw *w, const uint8_t *s, size_t k, size_t shown)
{
    static const char hex[] = "0123456789abcdef";
    if (k > shown) k = shown;
    put(w, "\"", 1);
    for (size_t i = 0; i < k; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(w, e, 2);
        } else if (c >= 0x20 && c < 0x7f) {
            put(w, &c, 1);
        } else if (c == '\n') {
            put(w, "\\n", 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(w, e, 6);
        }
    }
    put(w, "\"", 1);
}

/* ------------------------------------------------------------------ */
/* the file */

static int open_file(struct replica_audit *a, char *err, size_t errlen)
{
    int fd = open(a->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb)) {
        int e = errno;
        if (fd >= 0) close(fd);
        snprintf(err, errlen, "audit-log %s: %s (check the folder exists and is writable)", a->path, strerror(e));
        return -e;
    }
    if (a->fd >= 0) close(a->fd);
    a->fd = fd;
    a->dev = sb.st_dev;
    a->ino = sb.st_ino;
    a->file_bytes = (uint64_t)sb.st_size;
    return 0;
}

static void report(struct rabia_replica *r, const char *what, int e)
{
    struct replica_audit *a = r->audit;
    a->errors++;
    uint64_t now = rio_now_us();
    if (a->last_err_us && now - a->last_err_us < 10000000u) return; /* at most every 10 s */
    a->last_err_us = now;
    replica_log(r, RABIA_LOG_ERROR,
                "audit-log %s: %s: %s (%" PRIu64 " error(s), %" PRIu64 " line(s) dropped so far; the replica keeps "
                "serving: free space or fix the file, it resumes by itself)",
                a->path, what, strerror(e), a->errors, a->dropped);
}

/* Rotate: PATH.keep-1 -> PATH.keep ... PATH -> PATH.1, a new PATH. The new
 * file is created first (as PATH.new): when it cannot be (no descriptors,
 * a read-only or full folder) nothing is renamed, so a failing rotation
 * neither spins (the caller drops the lines) nor shifts the history away
 * one file per attempt. false: not rotated (reported). */
static bool rotate(struct rabia_replica *r)
{
    struct replica_audit *a = r->audit;
    char from[560], to[560];
    snprintf(to, sizeof to, "%s.new", a->path);
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb)) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
            unlink(to);
        }
        report(r, "creating the next file to rotate to", e);
        return false;
    }
    for (uint32_t i = r->cfg.audit_log_keep; i > 1; i--) { /* PATH.keep-1 -> PATH.keep (the oldest goes) */
        snprintf(from, sizeof from, "%s.%u", a->path, i - 1);
        snprintf(to, sizeof to, "%s.%u", a->path, i);
        if (rename(from, to) && errno != ENOENT) report(r, "rotating", errno);
    }
    snprintf(to, sizeof to, "%s.1", a->path);
    if (rename(a->path, to) && errno != ENOENT) report(r, "rotating", errno);
    snprintf(from, sizeof from, "%s.new", a->path);
    if (rename(from, a->path)) { /* PATH is gone now: check_reopen makes a new one within a second */
        report(r, "renaming the next file into place", errno);
        close(fd);
        unlink(from);
        return false;
    }
    if (a->fd >= 0) close(a->fd);
    a->fd = fd;
    a->dev = sb.st_dev;
    a->ino = sb.st_ino;
    a->file_bytes = 0;
    a->rotations++;
    return true;
}

/* PATH renamed or removed by someone else (logrotate): open a new one. */
static void check_reopen(struct rabia_replica *r, uint64_t now)
{
    struct replica_audit *a = r->audit;
    if (now - a->last_check_us < 1000000u) return;
    a->last_check_us = now;
    struct stat sb;
    if (a->fd >= 0 && !stat(a->path, &sb) && sb.st_dev == a->dev && sb.st_ino == a->ino) return;
    char why[700];
    if (open_file(a, why, sizeof why)) report(r, "reopening", errno ? errno : EIO);
    else replica_log(r, RABIA_LOG_INFO, "audit-log %s: reopened (renamed or removed)", a->path);
}

void replica_audit_flush(struct rabia_replica *r)
{
    struct replica_audit *a = r->audit;
    if (!a) return;
    check_reopen(r, rio_now_us());
    size_t off = 0;
    int failed = 0;
    while (off < a->len) {
        if (a->fd < 0) break;
        /* whole lines, and never past max-bytes in one file */
        size_t room = a->file_bytes < r->cfg.audit_log_max_bytes
                          ? (size_t)(r->cfg.audit_log_max_bytes - a->file_bytes) : 0;
        size_t n = a->len - off;
        if (n > room) {
            const char *nl = room ? memrchr(a->buf + off, '\n', room) : NULL;
            if (!nl) { /* not one more line fits */
                if (!a->file_bytes) n = (size_t)((const char *)memchr(a->buf + off, '\n', n) - (a->buf + off)) + 1;
                else if (rotate(r)) {
                    continue;
                } else {
                    break; /* reported; the rest is dropped */
                }
            } else {
                n = (size_t)(nl - (a->buf + off)) + 1;
            }
        }
        ssize_t k = write(a->fd, a->buf + off, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            failed = k < 0 ? errno : EIO;
            break;
        }
        off += (size_t)k;
        a->file_bytes += (uint64_t)k;
        a->bytes += (uint64_t)k;
        if (a->file_bytes >= r->cfg.audit_log_max_bytes && !rotate(r)) break;
    }
    if (off < a->len) { /* unwritten lines are dropped: the buffer stays bounded */
        for (size_t i = off; i < a->len; i++) a->dropped += a->buf[i] == '\n';
    }
    a->len = 0;
    if (failed) report(r, "write", failed);
}

int replica_audit_open(struct rabia_replica *r, char *err, size_t errlen)
{
    struct replica_audit *a = calloc(1, sizeof(*a));
    if (!a || !(a->buf = malloc(AUDIT_BUF))) {
        free(a);
        snprintf(err, errlen, "audit-log: out of memory");
        return -ENOMEM;
    }
    a->fd = -1;
    /* a relative path is under the data dir: one setting serves every replica of a host */
    if (r->cfg.audit_log[0] == '/' || !strncmp(r->cfg.audit_log, "./", 2))
        snprintf(a->path, sizeof a->path, "%s", r->cfg.audit_log);
    else if (snprintf(a->path, sizeof a->path, "%s/%s", r->cfg.data_dir, r->cfg.audit_log) >= (int)sizeof a->path) {
        free(a->buf);
        free(a);
        snprintf(err, errlen, "audit-log %s under data-dir %s: path too long", r->cfg.audit_log, r->cfg.data_dir);
        return -ENAMETOOLONG;
    }
    int rc = open_file(a, err, errlen);
    if (rc) {
        free(a->buf);
        free(a);
        return rc;
    }
    r->audit = a;
    return 0;
}

void replica_audit_live(struct rabia_replica *r)
{
    if (r->audit) r->audit->live = true;
}

void replica_audit_close(struct rabia_replica *r)
{
    struct replica_audit *a = r->audit;
    if (!a) return;
    replica_audit_flush(r);
    if (a->fd >= 0) close(a->fd);
    free(a->buf);
    free(a);
    r->audit = NULL;
}

void replica_audit_counts(const struct rabia_replica *r, uint64_t *lines, uint64_t *errors, uint64_t *dropped)
{
    const struct replica_audit *a = r->audit;
    *lines = a ? a->lines : 0;
    *errors = a ? a->errors : 0;
    *dropped = a ? a->dropped : 0;
}

int replica_audit_info(struct rabia_replica *r, char *buf, size_t len)
{
    struct replica_audit *a = r->audit;
    int n = snprintf(buf, len,
                     "audit_log_enabled:%d\r\naudit_log_lines:%" PRIu64 "\r\naudit_log_bytes:%" PRIu64
                     "\r\naudit_log_rotations:%" PRIu64 "\r\naudit_log_errors:%" PRIu64
                     "\r\naudit_log_lines_dropped:%" PRIu64 "\r\n",
                     a != NULL, a ? a->lines : 0, a ? a->bytes : 0, a ? a->rotations : 0, a ? a->errors : 0,
                     a ? a->dropped : 0);
    return n < 0 ? 0 : n >= (int)len ? (int)len - 1 : n;
}

/* ------------------------------------------------------------------ */
/* lines */

struct ident {
    uint64_t slot, cid, seq;
    char user[64 * 6 + 3];     /* as JSON, "" when not known here */
    char addr[80];
};

static void line_begin(struct rabia_replica *r, struct lw *w, const struct ident *id)
{
    struct replica_audit *a = r->audit;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != a->ts_sec || !a->ts_text[0]) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(a->ts_text, sizeof a->ts_text, "%Y-%m-%dT%H:%M:%S", &tm);
        a->ts_sec = ts.tv_sec;
    }
    putf(w, "{\"ts\":\"%s.%06ldZ\",\"replica\":%u,\"slot\":%" PRIu64 ",\"session\":\"%016" PRIx64 "\",\"seq\":%" PRIu64,
         a->ts_text, ts.tv_nsec / 1000, r->cfg.id, id->slot, id->cid, id->seq);
    if (id->user[0]) putf(w, ",\"user\":%s,\"addr\":\"%s\"", id->user, id->addr);
    if (!a->live) put(w, ",\"replayed\":true", 16);
}

static void line_end(struct rabia_replica *r, struct lw *w)
{
    put(w, "}\n", 2);
    r->audit->len += w->n;
    r->audit->lines++;
}

/* Room for one more line (a full buffer is written now: rare, bounded). */
static struct lw line_room(struct rabia_replica *r)
{
    struct replica_audit *a = r->audit;
    if (AUDIT_BUF - a->len < AUDIT_LINE_MAX) replica_audit_flush(r);
    RABIA_ASSERT(AUDIT_BUF - a->len >= AUDIT_LINE_MAX);
    return (struct lw){.p = a->buf + a->len, .n = 0, .cap = AUDIT_LINE_MAX};
}

/* An encoded argv (kv/kv.h): u32 argc, then argc x (u32 len, bytes). */
struct argv {
    uint32_t argc;
    const uint8_t *v[AUDIT_ARGC_SHOWN + 8];
    uint32_t len[AUDIT_ARGC_SHOWN + 8];
    uint64_t bytes; /* of all arguments after the name */
};

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Parse at most the first AUDIT_ARGC_SHOWN + 8 arguments (their count and
 * total length from all of them); false for a malformed op. */
static bool parse_argv(const uint8_t *p, size_t n, struct argv *a)
{
    if (n < 4) return false;
    a->argc = rd32(p);
    a->bytes = 0;
    size_t off = 4;
    for (uint32_t i = 0; i < a->argc; i++) {
        if (n - off < 4) return false;
        uint32_t l = rd32(p + off);
        off += 4;
        if (n - off < l) return false;
        if (i < AUDIT_ARGC_SHOWN + 8) {
            a->v[i] = p + off;
            a->len[i] = l;
        }
        if (i) a->bytes += l;
        off += l;
    }
    return off == n && a->argc >= 1;
}

static bool name_is(const struct argv *a, uint32_t i, const char *s)
{
    size_t k = strlen(s);
    return i < a->argc && i < AUDIT_ARGC_SHOWN + 8 && a->len[i] == k && !strncasecmp((const char *)a->v[i], s, k);
}

static uint32_t parse_db(const uint8_t *p, uint32_t n)
{
    uint32_t d = 0;
    for (uint32_t i = 0; i < n && i < 3; i++) d = d * 10 + (uint32_t)(p[i] - '0');
    return d;
}

/* One KV command: a line when it is a write. */
static void kv_cmd(struct rabia_replica *r, const struct ident *id, uint32_t db, const uint8_t *op, size_t n,
                   bool txn, const uint8_t *res, size_t rlen, int depth)
{
    struct argv a;
    if (depth > 4 || !parse_argv(op, n, &a)) return; /* the store refused it (as kv/command.c), nothing changed */
    if (name_is(&a, 0, "@db") && a.argc == 3) {
        kv_cmd(r, id, parse_db(a.v[1], a.len[1]), a.v[2], a.len[2], txn, res, rlen, depth + 1);
        return;
    }
    if (!txn && (name_is(&a, 0, "txn") || name_is(&a, 0, "txnw"))) {
        if (rlen >= 3 && !memcmp(res, "*-1", 3)) return; /* a watched key changed: nothing ran */
        if (!rlen || res[0] != '*') return; /* refused whole (malformed: -ERR): nothing ran */
        uint64_t first = 1;
        if (name_is(&a, 0, "txnw")) { /* TXNW n (db key version)*n op... */
            if (a.argc < 2) return;
            uint64_t k = 0;
            for (uint32_t i = 0; i < a.len[1] && i < 10; i++) k = k * 10 + (uint64_t)(a.v[1][i] - '0');
            first = 2 + 3 * k;
        }
        /* every command, walked in the op itself (all of them, not only the
         * arguments parse_argv kept); SELECT inside changes the database of
         * those after it */
        size_t off = 4;
        for (uint64_t i = 0; i < a.argc; i++) {
            uint32_t l = rd32(op + off); /* parse_argv checked every length */
            const uint8_t *sub = op + off + 4;
            off += 4 + (size_t)l;
            if (i < first) continue;
            struct argv s;
            if (parse_argv(sub, l, &s) && name_is(&s, 0, "select") && s.argc == 2)
                db = parse_db(s.v[1], s.len[1]);
            else
                kv_cmd(r, id, db, sub, l, true, NULL, 0, depth + 1);
        }
        return;
    }
    const struct rabia_kv_cmd_info *ci = rabia_kv_lookup(a.v[0], a.len[0]);
    if (!ci || !(ci->flags & RABIA_KV_CMD_WRITE)) return; /* reads (and unknown commands) are not logged */
    /* FEATURES and FEATURELEVEL change no data (kv/README.md "Feature
     * levels"; the replica's log says when a level is proposed) */
    if ((ci->flags & RABIA_KV_CMD_INTERNAL) && strcmp(ci->name, "sweep")) return;
    /* unknown to the store (above the agreed level, or a SWEEP nested from
     * level 1 on): it changed nothing. Only such commands need the store. */
    bool hideable = ci->level || (depth && (ci->flags & RABIA_KV_CMD_INTERNAL));
    if (hideable && !rabia_kv_cmd_runs(rabia_rsm_sm(r->rsm), ci, depth > 0)) return;
    if (!strcmp(ci->name, "sweep") && rlen == 4 && !memcmp(res, ":0\r\n", 4)) return; /* expired nothing: changed nothing */
    struct lw w = line_room(r);
    line_begin(r, &w, id);
    putf(&w, ",\"db\":%u,\"cmd\":\"", db);
    for (const char *c = ci->name; *c; c++) {
        char u = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
        put(&w, &u, 1);
    }
    put(&w, "\",\"args\":[", 10);
    uint64_t shown = 0;
    bool cut = a.argc - 1 > AUDIT_ARGC_SHOWN;
    for (uint32_t i = 1; i < a.argc && i <= AUDIT_ARGC_SHOWN && shown < AUDIT_ARGS_SHOWN; i++) {
        size_t k = a.len[i] < AUDIT_ARG_SHOWN ? a.len[i] : AUDIT_ARG_SHOWN;
        if (k > AUDIT_ARGS_SHOWN - shown) k = (size_t)(AUDIT_ARGS_SHOWN - shown);
        if (k < a.len[i] || (i + 1 < a.argc && shown + k >= AUDIT_ARGS_SHOWN)) cut = true;
        if (i > 1) put(&w, ",", 1);
        put_str(&w, a.v[i], a.len[i], k);
        shown += k;
    }
    putf(&w, "],\"argc\":%u,\"args_bytes\":%" PRIu64, a.argc - 1, a.bytes);
    if (cut) put(&w, ",\"truncated\":true", 17);
    if (txn) put(&w, ",\"txn\":true", 11);
    else putf(&w, ",\"error\":%s", rlen && res[0] == '-' ? "true" : "false");
    line_end(r, &w);
}

/* core/rsm.c's on_apply: every operation the state machine applied. */
void replica_audit_apply(void *ctx, uint64_t slot, uint64_t cid, uint64_t seq, const uint8_t *op, size_t op_len,
                         const uint8_t *res, size_t rlen)
{
    struct rabia_replica *r = ctx;
    if (!r->audit) return;
    struct ident id = {.slot = slot, .cid = cid, .seq = seq};
    struct node_to to;
    if (r->node && node_waiter(r->node, cid, seq, &to)) { /* taken here: who sent it */
        struct lw uw = {.p = id.user, .cap = sizeof id.user};
        if (to.conn < MAX_CONNS && r->conns[to.conn].gen == to.gen &&
            (r->conns[to.conn].kind == CK_RESP || r->conns[to.conn].kind == CK_CLIENT)) {
            struct conn *k = &r->conns[to.conn];
            put_str(&uw, (const uint8_t *)k->user, strnlen(k->user, sizeof k->user), 63);
            if (!k->user[0]) uw.n = 0, put_str(&uw, (const uint8_t *)"default", 7, 63);
            if (rio_conn_peer(k->c, id.addr, sizeof id.addr) < 0) snprintf(id.addr, sizeof id.addr, "?");
        } else if (to.conn == MAX_CONNS && (cid == r->app_client_id || cid == r->sweep_cid)) {
            const char *who = cid == r->sweep_cid ? "(expiry sweep)" : "(embedding API)";
            put_str(&uw, (const uint8_t *)who, strlen(who), 63);
            snprintf(id.addr, sizeof id.addr, "local");
        }
        id.user[uw.n] = 0;
    }
    if (!strcmp(r->cfg.state_machine, "kv")) {
        kv_cmd(r, &id, 0, op, op_len, false, res, rlen, 0);
        return;
    }
    /* other state machines: the op itself, as hex (reads cannot be told apart) */
    static const char hex[] = "0123456789abcdef";
    struct lw w = line_room(r);
    line_begin(r, &w, &id);
    put(&w, ",\"op_hex\":\"", 11);
    size_t k = op_len < AUDIT_HEX_SHOWN ? op_len : AUDIT_HEX_SHOWN;
    for (size_t i = 0; i < k; i++) {
        char h[2] = {hex[op[i] >> 4], hex[op[i] & 15]};
        put(&w, h, 2);
    }
    putf(&w, "\",\"op_bytes\":%zu", op_len);
    if (k < op_len) put(&w, ",\"truncated\":true", 17);
    line_end(r, &w);
}
