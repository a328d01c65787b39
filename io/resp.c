/* RESP2/RESP3 front end: parser, per-connection dispatcher and the RESP3
 * conversion of replicated results (see resp.h). */
#include "resp.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <xxhash.h>

#include "codec.h" /* RABIA_MAX_BATCH_BODY, RABIA_BATCH_REQ_HEADER */
#include "invariant.h"
#include "kv.h"    /* the KV operation encoding, glob matching */

/* ====================================================================== */
/* Writers                                                                 */

static int put(struct rabia_buf *o, const void *p, size_t n)
{
    return rabia_buf_append(o, p, n);
}

static int put_cstr(struct rabia_buf *o, const char *s)
{
    return put(o, s, strlen(s));
}

/* Client bytes inside an error line: CR and LF become spaces (Redis's
 * rejectCommandFormat does the same), so the reply stays one line. */
static int put_sanitized(struct rabia_buf *o, const uint8_t *p, size_t n)
{
    size_t at = o->len;
    int rc = put(o, p, n);
    if (rc)
        return rc;
    for (size_t i = at; i < o->len; i++)
        if (o->data[i] == '\r' || o->data[i] == '\n')
            o->data[i] = ' ';
    return 0;
}

static int put_line(struct rabia_buf *o, char type, const char *s)
{
    int rc = put(o, &type, 1);
    if (!rc)
        rc = put_cstr(o, s);
    return rc ? rc : put(o, "\r\n", 2);
}

int resp_put_simple(struct rabia_buf *out, const char *s)
{
    return put_line(out, '+', s);
}

int resp_put_error(struct rabia_buf *out, const char *s)
{
    return put_line(out, '-', s);
}

static int put_num(struct rabia_buf *o, char type, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%c%" PRId64 "\r\n", type, v);
    return put(o, tmp, (size_t)n);
}

int resp_put_int(struct rabia_buf *out, int64_t v)
{
    return put_num(out, ':', v);
}

int resp_put_array(struct rabia_buf *out, uint64_t n)
{
    char tmp[32];
    int k = snprintf(tmp, sizeof tmp, "*%" PRIu64 "\r\n", n);
    return put(out, tmp, (size_t)k);
}

int resp_put_bulk(struct rabia_buf *out, const void *p, size_t n)
{
    char tmp[32];
    int k = snprintf(tmp, sizeof tmp, "$%zu\r\n", n);
    int rc = rabia_buf_reserve(out, (size_t)k + n + 2);
    if (!rc)
        rc = put(out, tmp, (size_t)k);
    if (!rc)
        rc = put(out, p, n);
    return rc ? rc : put(out, "\r\n", 2);
}

static int put_bulk_cstr(struct rabia_buf *o, const char *s)
{
    return resp_put_bulk(o, s, strlen(s));
}

int resp_put_null(struct rabia_buf *out)
{
    return put_cstr(out, "$-1\r\n");
}

int resp_put_verbatim(struct rabia_buf *out, const void *p, size_t n)
{
    char tmp[40];
    int k = snprintf(tmp, sizeof tmp, "=%zu\r\ntxt:", n + 4);
    int rc = rabia_buf_reserve(out, (size_t)k + n + 2);
    if (!rc)
        rc = put(out, tmp, (size_t)k);
    if (!rc)
        rc = put(out, p, n);
    return rc ? rc : put(out, "\r\n", 2);
}

/* The aggregate headers and the null of the connection's protocol. */
static int put_agg(struct rabia_buf *o, char type, uint64_t n)
{
    char tmp[32];
    int k = snprintf(tmp, sizeof tmp, "%c%" PRIu64 "\r\n", type, n);
    return put(o, tmp, (size_t)k);
}

/* n field/value pairs: "%n" in RESP3, "*2n" in RESP2 */
static int put_map(struct rabia_buf *o, uint8_t proto, uint64_t n)
{
    return proto == 3 ? put_agg(o, '%', n) : put_agg(o, '*', 2 * n);
}

static int put_set(struct rabia_buf *o, uint8_t proto, uint64_t n)
{
    return put_agg(o, proto == 3 ? '~' : '*', n);
}

static int put_push(struct rabia_buf *o, uint8_t proto, uint64_t n)
{
    return put_agg(o, proto == 3 ? '>' : '*', n);
}

/* a nil bulk string in RESP2, a null in RESP3 */
static int put_nil(struct rabia_buf *o, uint8_t proto)
{
    return proto == 3 ? put_cstr(o, "_\r\n") : resp_put_null(o);
}

/* ====================================================================== */
/* Small helpers                                                           */

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static uint8_t upper(uint8_t c)
{
    return c >= 'a' && c <= 'z' ? (uint8_t)(c - 32) : c;
}

/* p[0..n) equals the lowercase NUL-terminated name, ignoring ASCII case. */
static bool eq_ci(const uint8_t *p, size_t n, const char *name)
{
    size_t i = 0;
    for (; i < n; i++)
        if (!name[i] || lower(p[i]) != (uint8_t)name[i])
            return false;
    return name[i] == '\0';
}


/* ====================================================================== */
/* Parser                                                                  */

enum { ST_IDLE = 0, ST_ARRAY = 1, ST_INLINE = 2 };
#define ARGV_KEEP_CAP 1024u /* larger argv arrays are freed between commands */

void resp_argv_init(struct resp_argv *a, size_t max_bulk)
{
    memset(a, 0, sizeof *a);
    if (max_bulk == 0)
        max_bulk = RESP_DEFAULT_MAX_BULK;
    if (max_bulk > RESP_MAX_BULK_LIMIT)
        max_bulk = RESP_MAX_BULK_LIMIT;
    a->max_bulk = max_bulk;
    a->nargs = -1;
    a->bulk = -1;
}

void resp_argv_reset(struct resp_argv *a)
{
    a->st = ST_IDLE;
    a->argc = 0;
    a->nargs = -1;
    a->bulk = -1;
    a->pos = a->scan = 0;
    a->want = 0;
}

static void argv_release(struct resp_argv *a)
{
    free(a->argv);
    free(a->argv_len);
    free(a->off);
    a->argv = NULL;
    a->argv_len = NULL;
    a->off = NULL;
    a->cap = 0;
}

size_t resp_argv_memory(const struct resp_argv *a)
{
    return (size_t)a->cap * (sizeof *a->argv + sizeof *a->argv_len + sizeof *a->off) + a->scratch.cap;
}

void resp_argv_free(struct resp_argv *a)
{
    argv_release(a);
    rabia_buf_free(&a->scratch);
    resp_argv_reset(a);
}

static int argv_grow(struct resp_argv *a, uint32_t need)
{
    if (need <= a->cap)
        return 0;
    uint32_t cap = a->cap ? a->cap : 8;
    while (cap < need)
        cap *= 2;
    const uint8_t **v = realloc(a->argv, cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    a->argv = v;
    size_t *l = realloc(a->argv_len, cap * sizeof *l);
    if (!l)
        return -ENOMEM;
    a->argv_len = l;
    size_t *o = realloc(a->off, cap * sizeof *o);
    if (!o)
        return -ENOMEM;
    a->off = o;
    a->cap = cap;
    return 0;
}

static int proto_err(struct resp_argv *a, const char *msg)
{
    snprintf(a->err, sizeof a->err, "%s", msg);
    return -EPROTO;
}

int resp_parse_error_reply(const struct resp_argv *a, struct rabia_buf *out)
{
    int rc = put_cstr(out, "-ERR ");
    if (!rc)
        rc = put_sanitized(out, (const uint8_t *)a->err, strlen(a->err));
    return rc ? rc : put(out, "\r\n", 2);
}

/* Find the CR ending the header line that starts at `line` (its first byte
 * is the type byte), resuming at a->scan. 1 with *cr set and the LF
 * checked, 0 for more bytes, or -EPROTO. */
static int header_line(struct resp_argv *a, const uint8_t *b, size_t n, size_t line,
                       size_t *cr, const char *too_big)
{
    size_t from = a->scan > line + 1 ? a->scan : line + 1;
    const uint8_t *c = from < n ? memchr(b + from, '\r', n - from) : NULL;
    size_t i = c ? (size_t)(c - b) : n;
    if (i - line > RESP_MAX_INLINE)
        return proto_err(a, too_big);
    if (!c || i + 1 >= n) {
        a->scan = i; /* resume here: nothing before it is a CR */
        return 0;
    }
    if (b[i + 1] != '\n')
        return proto_err(a, "Protocol error: expected LF after CR");
    *cr = i;
    return 1;
}

/* A RESP array of bulk strings. 1 complete, 2 empty (skip), 0 more, <0. */
static int parse_array(struct resp_argv *a, const uint8_t *b, size_t n, size_t *used)
{
    size_t cr;
    int rc;
    if (a->nargs < 0) {
        rc = header_line(a, b, n, 0, &cr, "Protocol error: too big mbulk count string");
        if (rc <= 0)
            return rc;
        int64_t v;
        if (!rabia_kv_parse_int(b + 1, cr - 1, &v) || v > (int64_t)RESP_MAX_ARGS)
            return proto_err(a, "Protocol error: invalid multibulk length");
        if (a->unauthenticated && v > (int64_t)RESP_UNAUTH_MAX_ARGS)
            return proto_err(a, "Protocol error: unauthenticated multibulk length");
        if (v <= 0) { /* "*0" and "*-1": no command, as in Redis */
            *used = cr + 2;
            return 2;
        }
        a->nargs = v;
        a->argc = 0;
        a->bulk = -1;
        a->pos = a->scan = cr + 2;
    }
    while ((int64_t)a->argc < a->nargs) {
        size_t pos = a->pos;
        if (a->bulk < 0) {
            if (pos >= n)
                return 0;
            if (b[pos] != '$') {
                char c = (char)b[pos];
                if (c == '\r' || c == '\n')
                    c = ' ';
                snprintf(a->err, sizeof a->err, "Protocol error: expected '$', got '%c'", c);
                return -EPROTO;
            }
            rc = header_line(a, b, n, pos, &cr, "Protocol error: too big bulk count string");
            if (rc <= 0)
                return rc;
            int64_t v;
            if (!rabia_kv_parse_int(b + pos + 1, cr - pos - 1, &v) || v < 0 || (uint64_t)v > a->max_bulk)
                return proto_err(a, "Protocol error: invalid bulk length");
            if (a->unauthenticated && (uint64_t)v > RESP_UNAUTH_MAX_BULK)
                return proto_err(a, "Protocol error: unauthenticated bulk length");
            a->bulk = v;
            a->pos = pos = cr + 2;
            a->scan = pos;
        }
        size_t blen = (size_t)a->bulk;
        if (pos > n || n - pos < blen + 2) { /* pos > n: the caller broke the contract */
            a->want = pos + blen + 2;
            return 0;
        }
        if (b[pos + blen] != '\r' || b[pos + blen + 1] != '\n')
            return proto_err(a, "Protocol error: expected CRLF after bulk string");
        if (argv_grow(a, a->argc + 1))
            return -ENOMEM;
        a->off[a->argc] = pos;
        a->argv_len[a->argc] = blen;
        a->argc++;
        a->pos = a->scan = pos + blen + 2;
        a->bulk = -1;
    }
    for (uint32_t i = 0; i < a->argc; i++)
        a->argv[i] = b + a->off[i];
    *used = a->pos;
    return 1;
}

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int hex_val(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Redis's sdssplitargs over line[0..n) (which holds no NUL), arguments
 * unescaped into a->scratch. 0, -EPROTO or -ENOMEM. */
static int split_inline(struct resp_argv *a, const uint8_t *line, size_t n)
{
#define AT(k) ((k) < n ? (int)line[k] : 0)
    const char *unbalanced = "Protocol error: unbalanced quotes in request";
    rabia_buf_clear(&a->scratch);
    if (rabia_buf_reserve(&a->scratch, n + 1))
        return -ENOMEM;
    uint8_t *out = a->scratch.data; /* never reallocated below: output <= input */
    size_t w = 0, i = 0;
    a->argc = 0;
    for (;;) {
        while (i < n && is_space(line[i]))
            i++;
        if (i >= n)
            break;
        size_t tok = w;
        bool inq = false, insq = false, done = false;
        while (!done) {
            int c = AT(i);
            if (inq) {
                if (c == '\\' && AT(i + 1) == 'x' && hex_val(AT(i + 2)) >= 0 &&
                    hex_val(AT(i + 3)) >= 0) {
                    out[w++] = (uint8_t)(hex_val(AT(i + 2)) * 16 + hex_val(AT(i + 3)));
                    i += 3;
                } else if (c == '\\' && AT(i + 1)) {
                    i++;
                    switch (AT(i)) {
                    case 'n': out[w++] = '\n'; break;
                    case 'r': out[w++] = '\r'; break;
                    case 't': out[w++] = '\t'; break;
                    case 'b': out[w++] = '\b'; break;
                    case 'a': out[w++] = '\a'; break;
                    default: out[w++] = (uint8_t)AT(i); break;
                    }
                } else if (c == '"') {
                    /* a closing quote must be followed by a blank or the end */
                    if (AT(i + 1) && !is_space(AT(i + 1)))
                        return proto_err(a, unbalanced);
                    done = true;
                } else if (!c) {
                    return proto_err(a, unbalanced);
                } else {
                    out[w++] = (uint8_t)c;
                }
            } else if (insq) {
                if (c == '\\' && AT(i + 1) == '\'') {
                    i++;
                    out[w++] = '\'';
                } else if (c == '\'') {
                    if (AT(i + 1) && !is_space(AT(i + 1)))
                        return proto_err(a, unbalanced);
                    done = true;
                } else if (!c) {
                    return proto_err(a, unbalanced);
                } else {
                    out[w++] = (uint8_t)c;
                }
            } else {
                switch (c) {
                case ' ': case '\n': case '\r': case '\t': case 0:
                    done = true;
                    break;
                case '"':
                    inq = true;
                    break;
                case '\'':
                    insq = true;
                    break;
                default:
                    out[w++] = (uint8_t)c;
                    break;
                }
            }
            if (AT(i))
                i++;
        }
        if (argv_grow(a, a->argc + 1))
            return -ENOMEM;
        a->off[a->argc] = tok;
        a->argv_len[a->argc] = w - tok;
        a->argc++;
    }
    a->scratch.len = w;
    for (uint32_t k = 0; k < a->argc; k++)
        a->argv[k] = out + a->off[k];
    return 0;
#undef AT
}

/* An inline command: one line. 1 complete, 2 blank (skip), 0 more, <0. */
static int parse_inline(struct resp_argv *a, const uint8_t *b, size_t n, size_t *used)
{
    size_t from = a->scan;
    const uint8_t *nl = from < n ? memchr(b + from, '\n', n - from) : NULL;
    size_t i = nl ? (size_t)(nl - b) : n;
    if (i > RESP_MAX_INLINE)
        return proto_err(a, "Protocol error: too big inline request");
    if (!nl) {
        a->scan = n;
        return 0;
    }
    size_t line = i;
    if (line > 0 && b[line - 1] == '\r')
        line--;
    const uint8_t *z = memchr(b, 0, line); /* sdssplitargs stops at a NUL */
    if (z)
        line = (size_t)(z - b);
    int rc = split_inline(a, b, line);
    if (rc)
        return rc;
    *used = i + 1;
    return a->argc ? 1 : 2;
}

int resp_parse(const uint8_t *p, size_t len, size_t *consumed, struct resp_argv *a)
{
    size_t start = 0;
    *consumed = 0;
    a->want = 0;
    for (;;) {
        const uint8_t *b = p + start;
        size_t n = len - start, used = 0;
        if (a->st == ST_IDLE) {
            a->argc = 0;
            if (n == 0) {
                *consumed = start;
                return 0;
            }
            if (a->cap > ARGV_KEEP_CAP)
                argv_release(a);
            resp_argv_reset(a);
            a->st = b[0] == '*' ? ST_ARRAY : ST_INLINE;
        }
        int rc = a->st == ST_ARRAY ? parse_array(a, b, n, &used) : parse_inline(a, b, n, &used);
        if (rc == 2) { /* an empty command: drop it, go on */
            start += used;
            resp_argv_reset(a);
            continue;
        }
        if (rc == 1) {
            *consumed = start + used;
            a->st = ST_IDLE;
            return 1;
        }
        if (rc == 0) {
            *consumed = start;
            return 0;
        }
        resp_argv_reset(a);
        return rc;
    }
}

/* ====================================================================== */
/* Sessions                                                                */

size_t resp_default_max_op(void)
{
    return RABIA_MAX_BATCH_BODY - RABIA_BATCH_HEADER - RABIA_BATCH_REQ_HEADER;
}

/* The id a client sees (CLIENT ID, HELLO, CLIENT LIST, the ID filters of
 * CLIENT LIST, KILL and UNBLOCK): the session id's low 53 bits. The session
 * id is a 64-bit hash; shown whole (up to 2^63) it was read wrong by the
 * clients whose integers are doubles, exact only below 2^53 (ioredis and
 * node-redis by default): the id they passed back to CLIENT KILL ID or
 * CLIENT UNBLOCK named no connection (found by review). Redis's own ids
 * are small counters. Bit 0 of a session id is set, so this is never 0. */
static uint64_t visible_id(const struct resp_session *s)
{
    return s->id & ((UINT64_C(1) << 53) - 1);
}

void resp_session_init(struct resp_session *s, uint64_t id, size_t max_op)
{
    memset(s, 0, sizeof *s);
    s->id = id;
    s->proto = 2;
    s->max_op = max_op ? max_op : resp_default_max_op();
}

static void multi_discard(struct resp_session *s)
{
    s->in_multi = false;
    s->multi_dirty = false;
    s->nqueued = 0;
    s->txn_bytes = 0;
    rabia_buf_clear(&s->qops);
    rabia_buf_clear(&s->qkinds);
    if (s->qops.cap > (1u << 20)) { /* do not keep a huge queue's memory */
        rabia_buf_free(&s->qops);
        rabia_buf_free(&s->qkinds);
        free(s->qlen);
        s->qlen = NULL;
        s->qcap = 0;
    }
}

static void unwatch(struct resp_session *s)
{
    for (uint32_t i = 0; i < s->nwatch; i++)
        free(s->watch[i].key);
    s->nwatch = 0;
    s->watch_bytes = 0;
}

static void sub_index_free(struct resp_sub_index *ix)
{
    free(ix->slot);
    *ix = (struct resp_sub_index){0};
}

static void unsubscribe_all(struct resp_session *s)
{
    rabia_buf_free(&s->subs);
    rabia_buf_free(&s->psubs);
    sub_index_free(&s->subs_idx);
    sub_index_free(&s->psubs_idx);
    s->nsubs = s->npsubs = 0;
}

size_t resp_session_memory(const struct resp_session *s)
{
    return s->exec_kinds.cap + s->enc.cap + s->subs.cap + s->psubs.cap +
           ((size_t)s->subs_idx.cap + s->psubs_idx.cap) * sizeof(uint32_t) + s->qops.cap + s->qkinds.cap + s->name.cap +
           (size_t)s->qcap * sizeof *s->qlen + (size_t)s->watch_cap * sizeof *s->watch + s->watch_bytes;
}

void resp_session_free(struct resp_session *s)
{
    unwatch(s);
    free(s->watch);
    s->watch = NULL;
    s->watch_cap = 0;
    unsubscribe_all(s);
    rabia_buf_free(&s->qops);
    rabia_buf_free(&s->qkinds);
    rabia_buf_free(&s->exec_kinds);
    rabia_buf_free(&s->enc);
    rabia_buf_free(&s->name);
    free(s->qlen);
    s->qlen = NULL;
    s->qcap = 0;
}

/* ====================================================================== */
/* Command table                                                           */

struct ctx {
    struct resp_session *s;
    const struct resp_argv *c;
    struct rabia_buf *out;
    struct rabia_buf *op;
};
#define ARG(i) (x->c->argv[i])
#define LEN(i) (x->c->argv_len[i])
#define ARGC (x->c->argc)

enum { K_REPL = 1, K_LOCAL = 2, K_INFO = 3 };
enum {
    F_WRITE = 1u << 0,
    F_READONLY = 1u << 1,
    F_DENYOOM = 1u << 2,
    F_NOSCRIPT = 1u << 3,
    F_LOADING = 1u << 4,
    F_STALE = 1u << 5,
    F_FAST = 1u << 6,
    F_NOW = 1u << 7,   /* acts immediately even inside MULTI */
    F_QUEUE = 1u << 8, /* local outside MULTI, queued (replicated) inside */
    F_BLOCKING = 1u << 9, /* a blocking pop (kv) */
    F_PUBSUB = 1u << 10,  /* PUBLISH (kv) */
};
static const char *const flag_names[] = {"write", "readonly", "denyoom", "noscript",
                                         "loading", "stale", "fast"};

struct cmd;
typedef int (*cmd_fn)(struct ctx *x, const struct cmd *cmd);

struct cmd {
    const char *name; /* lowercase; "config|get" for a subcommand */
    int arity;        /* Redis's: n exactly n args (name included), -n at least n */
    uint8_t kind;
    uint16_t flags;
    int8_t first, last, step; /* key positions, as COMMAND INFO reports them */
    const char *kv_name;      /* replicated under this name (NULL: as sent) */
    cmd_fn fn;                /* K_LOCAL */
    const struct cmd *subs;
    unsigned nsubs;
};

static int cmd_ping(struct ctx *x, const struct cmd *cmd);
static int cmd_echo(struct ctx *x, const struct cmd *cmd);
static int cmd_multi(struct ctx *x, const struct cmd *cmd);
static int cmd_exec(struct ctx *x, const struct cmd *cmd);
static int cmd_discard(struct ctx *x, const struct cmd *cmd);
static int cmd_quit(struct ctx *x, const struct cmd *cmd);
static int cmd_reset(struct ctx *x, const struct cmd *cmd);
static int cmd_select(struct ctx *x, const struct cmd *cmd);
static int cmd_auth(struct ctx *x, const struct cmd *cmd);
static int cmd_hello(struct ctx *x, const struct cmd *cmd);
static int cmd_command(struct ctx *x, const struct cmd *cmd);
static int cmd_command_count(struct ctx *x, const struct cmd *cmd);
static int cmd_command_docs(struct ctx *x, const struct cmd *cmd);
static int cmd_command_info(struct ctx *x, const struct cmd *cmd);
static int cmd_command_list(struct ctx *x, const struct cmd *cmd);
static int cmd_config_get(struct ctx *x, const struct cmd *cmd);
static int cmd_config_set(struct ctx *x, const struct cmd *cmd);
static int cmd_ok(struct ctx *x, const struct cmd *cmd);
static int cmd_client_setname(struct ctx *x, const struct cmd *cmd);
static int cmd_client_getname(struct ctx *x, const struct cmd *cmd);
static int cmd_client_id(struct ctx *x, const struct cmd *cmd);
static int cmd_client_info(struct ctx *x, const struct cmd *cmd);
static int cmd_client_setinfo(struct ctx *x, const struct cmd *cmd);
static int cmd_client_kill(struct ctx *x, const struct cmd *cmd);
static int cmd_client_no_evict(struct ctx *x, const struct cmd *cmd);
static int cmd_client_reply(struct ctx *x, const struct cmd *cmd);
static int cmd_client_unblock(struct ctx *x, const struct cmd *cmd);
static int cmd_help(struct ctx *x, const struct cmd *cmd);
static int cmd_watch(struct ctx *x, const struct cmd *cmd);
static int cmd_wait(struct ctx *x, const struct cmd *cmd);
static int cmd_unwatch(struct ctx *x, const struct cmd *cmd);
static int cmd_subscribe(struct ctx *x, const struct cmd *cmd);
static int cmd_psubscribe(struct ctx *x, const struct cmd *cmd);
static int cmd_unsubscribe(struct ctx *x, const struct cmd *cmd);
static int cmd_punsubscribe(struct ctx *x, const struct cmd *cmd);
static int cmd_pubsub(struct ctx *x, const struct cmd *cmd);

#define LOCAL(name, arity, flags, fn) {name, arity, K_LOCAL, flags, 0, 0, 0, NULL, fn, NULL, 0}
#define REPL(name, arity, flags, f, l, s) {name, arity, K_REPL, flags, f, l, s, NULL, NULL, NULL, 0}
#define NSUBS(a) (unsigned)(sizeof a / sizeof a[0])

static const struct cmd command_subs[] = {
    LOCAL("command|count", 2, F_LOADING | F_STALE, cmd_command_count),
    LOCAL("command|docs", -2, F_LOADING | F_STALE, cmd_command_docs),
    LOCAL("command|info", -2, F_LOADING | F_STALE, cmd_command_info),
    LOCAL("command|list", -2, F_LOADING | F_STALE, cmd_command_list),
    LOCAL("command|help", 2, F_LOADING | F_STALE, cmd_help),
};
static const struct cmd config_subs[] = {
    LOCAL("config|get", -3, F_NOSCRIPT | F_LOADING | F_STALE, cmd_config_get),
    LOCAL("config|set", -4, F_NOSCRIPT | F_LOADING | F_STALE, cmd_config_set),
    LOCAL("config|resetstat", 2, F_NOSCRIPT | F_LOADING | F_STALE, cmd_ok),
    LOCAL("config|help", 2, F_LOADING | F_STALE, cmd_help),
};
static const struct cmd client_subs[] = {
    LOCAL("client|setname", 3, F_NOSCRIPT | F_LOADING | F_STALE, cmd_client_setname),
    LOCAL("client|getname", 2, F_NOSCRIPT | F_LOADING | F_STALE, cmd_client_getname),
    LOCAL("client|id", 2, F_NOSCRIPT | F_LOADING | F_STALE, cmd_client_id),
    LOCAL("client|info", 2, F_NOSCRIPT | F_LOADING | F_STALE, cmd_client_info),
    LOCAL("client|list", -2, F_NOSCRIPT | F_LOADING | F_STALE, cmd_client_info),
    LOCAL("client|setinfo", 4, F_NOSCRIPT | F_LOADING | F_STALE, cmd_client_setinfo),
    LOCAL("client|kill", -3, F_NOSCRIPT | F_LOADING | F_STALE, cmd_client_kill),
    LOCAL("client|no-evict", 3, F_NOSCRIPT | F_LOADING | F_STALE, cmd_client_no_evict),
    LOCAL("client|reply", 3, F_NOSCRIPT | F_LOADING | F_STALE, cmd_client_reply),
    LOCAL("client|unblock", -3, F_NOSCRIPT | F_LOADING | F_STALE, cmd_client_unblock),
    LOCAL("client|help", 2, F_LOADING | F_STALE, cmd_help),
};

/* PUBSUB: this replica's subscriptions, as PUBLISH's reply counts them
 * (kv/README.md "Differences"); there are no shard channels here */
static const struct cmd pubsub_subs[] = {
    LOCAL("pubsub|channels", -2, F_LOADING | F_STALE, cmd_pubsub),
    LOCAL("pubsub|numsub", -2, F_LOADING | F_STALE, cmd_pubsub),
    LOCAL("pubsub|numpat", 2, F_LOADING | F_STALE, cmd_pubsub),
    LOCAL("pubsub|shardchannels", -2, F_LOADING | F_STALE, cmd_pubsub),
    LOCAL("pubsub|shardnumsub", -2, F_LOADING | F_STALE, cmd_pubsub),
    LOCAL("pubsub|help", 2, F_LOADING | F_STALE, cmd_help),
};

/* SCRIPT's subcommands are the state machine's (the script cache is
 * replicated), but checked here like CONFIG's: an unknown one or a wrong
 * arity is refused before it is queued in MULTI, as Redis does. */
#define SCRIPT_SUB(name, arity) {name, arity, K_REPL, F_NOSCRIPT, 0, 0, 0, NULL, NULL, NULL, 0}
static const struct cmd script_subs[] = {
    SCRIPT_SUB("script|load", 3), SCRIPT_SUB("script|exists", -3), SCRIPT_SUB("script|flush", -2),
    SCRIPT_SUB("script|kill", 2), SCRIPT_SUB("script|help", 2),
};

/* The connection's own commands. Everything else is the KV state
 * machine's (kv/kv.h: rabia_kv_lookup) and replicated. */
static const struct cmd commands[] = {
    LOCAL("ping", -1, F_FAST | F_QUEUE, cmd_ping),
    LOCAL("echo", 2, F_FAST | F_QUEUE, cmd_echo),
    LOCAL("multi", 1, F_NOSCRIPT | F_LOADING | F_STALE | F_FAST | F_NOW, cmd_multi),
    LOCAL("exec", 1, F_NOSCRIPT | F_LOADING | F_STALE | F_NOW, cmd_exec),
    LOCAL("discard", 1, F_NOSCRIPT | F_LOADING | F_STALE | F_FAST | F_NOW, cmd_discard),
    LOCAL("quit", -1, F_NOSCRIPT | F_LOADING | F_STALE | F_FAST | F_NOW, cmd_quit),
    LOCAL("reset", 1, F_NOSCRIPT | F_LOADING | F_STALE | F_FAST | F_NOW, cmd_reset),
    LOCAL("select", 2, F_LOADING | F_STALE | F_FAST | F_QUEUE, cmd_select),
    /* WATCH's keys are keys (1, -1, 1) as in Redis: an ACL key pattern
     * covers them (else EXEC's nil would tell whether a key outside the
     * user's patterns changed) */
    {"watch", -2, K_LOCAL, F_NOSCRIPT | F_LOADING | F_STALE | F_FAST | F_NOW, 1, -1, 1, NULL, cmd_watch, NULL, 0},
    LOCAL("unwatch", 1, F_NOSCRIPT | F_LOADING | F_STALE | F_FAST | F_QUEUE, cmd_unwatch),
    LOCAL("wait", 3, F_NOSCRIPT, cmd_wait),
    LOCAL("subscribe", -2, F_NOSCRIPT | F_LOADING | F_STALE, cmd_subscribe),
    LOCAL("psubscribe", -2, F_NOSCRIPT | F_LOADING | F_STALE, cmd_psubscribe),
    LOCAL("unsubscribe", -1, F_NOSCRIPT | F_LOADING | F_STALE, cmd_unsubscribe),
    LOCAL("punsubscribe", -1, F_NOSCRIPT | F_LOADING | F_STALE, cmd_punsubscribe),
    LOCAL("auth", -2, F_NOSCRIPT | F_LOADING | F_STALE | F_FAST, cmd_auth),
    LOCAL("hello", -1, F_NOSCRIPT | F_LOADING | F_STALE | F_FAST, cmd_hello),
    {"command", -1, K_LOCAL, F_LOADING | F_STALE, 0, 0, 0, NULL, cmd_command, command_subs,
     NSUBS(command_subs)},
    {"config", -2, K_LOCAL, 0, 0, 0, 0, NULL, NULL, config_subs, NSUBS(config_subs)},
    {"client", -2, K_LOCAL, 0, 0, 0, 0, NULL, NULL, client_subs, NSUBS(client_subs)},
    {"script", -2, K_LOCAL, 0, 0, 0, 0, NULL, NULL, script_subs, NSUBS(script_subs)},
    {"pubsub", -2, K_LOCAL, 0, 0, 0, 0, NULL, NULL, pubsub_subs, NSUBS(pubsub_subs)},
    {"info", -1, K_INFO, F_LOADING | F_STALE, 0, 0, 0, NULL, NULL, NULL, 0},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* The KV state machine's commands as this table's entries (all K_REPL),
 * built once (those the table has itself, and SWEEP, left out). */
#define MAX_KV_CMDS 512
static struct cmd kv_cmds[MAX_KV_CMDS];
static uint8_t kv_cmd_level[MAX_KV_CMDS]; /* each one's feature level (kv/kv.h) */
static unsigned n_kv_cmds;
static pthread_once_t kv_cmds_once = PTHREAD_ONCE_INIT;

static const struct cmd *lookup(const struct cmd *t, unsigned n, const uint8_t *p, size_t len);
static const char *short_name(const char *name);

/* Every command by lowercase name (this table's first, by short name, then
 * the KV store's): an open-addressing table built once. find_cmd scanned
 * this table linearly (strchr and a compare per entry) before asking the
 * KV store: 10% of a proxy replica's instructions under SET load
 * (bench/callgrind.sh). */
#define CMD_NAME_MAX 31
#define CTAB 2048
static const struct cmd *ctab[CTAB];

static uint32_t cmd_hash(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static const struct cmd *ctab_find(const uint8_t *low, size_t n)
{
    for (uint32_t h = cmd_hash(low, n) & (CTAB - 1), k = 0; ctab[h] && k < CTAB; h = (h + 1) & (CTAB - 1), k++) {
        const char *nm = short_name(ctab[h]->name);
        if (strlen(nm) == n && !memcmp(nm, low, n))
            return ctab[h];
    }
    return NULL;
}

static void ctab_add(const struct cmd *c)
{
    const char *nm = short_name(c->name);
    size_t n = strlen(nm);
    RABIA_ASSERT(n <= CMD_NAME_MAX);
    if (ctab_find((const uint8_t *)nm, n))
        return; /* an earlier entry of the same name wins, as the scan did */
    uint32_t h = cmd_hash((const uint8_t *)nm, n) & (CTAB - 1);
    while (ctab[h])
        h = (h + 1) & (CTAB - 1);
    ctab[h] = c;
}

static void kv_cmds_init(void)
{
    unsigned n = rabia_kv_ncommands();
    RABIA_ASSERT(n <= MAX_KV_CMDS);
    for (unsigned i = 0; i < n; i++) {
        const struct rabia_kv_cmd_info *k = rabia_kv_command(i);
        /* the connection's own PING / ECHO answer outside MULTI; SWEEP,
         * FEATURES, FEATURELEVEL are the replicas' own */
        if (lookup(commands, N_COMMANDS, (const uint8_t *)k->name, strlen(k->name)) ||
            (k->flags & RABIA_KV_CMD_INTERNAL))
            continue;
        RABIA_ASSERT(k->level <= UINT8_MAX);
        kv_cmd_level[n_kv_cmds] = (uint8_t)k->level;
        uint16_t f = 0;
        if (k->flags & RABIA_KV_CMD_WRITE) f |= F_WRITE;
        if (k->flags & RABIA_KV_CMD_READONLY) f |= F_READONLY;
        if (k->flags & RABIA_KV_CMD_DENYOOM) f |= F_DENYOOM;
        if (k->flags & RABIA_KV_CMD_FAST) f |= F_FAST;
        if (k->flags & RABIA_KV_CMD_BLOCKING) f |= F_BLOCKING;
        if (k->flags & RABIA_KV_CMD_PUBSUB) f |= F_PUBSUB;
        kv_cmds[n_kv_cmds++] = (struct cmd){k->name, k->arity, K_REPL, f, (int8_t)k->first, (int8_t)k->last,
                                            (int8_t)k->step, NULL, NULL, NULL, 0};
    }
    RABIA_ASSERT((N_COMMANDS + n_kv_cmds) * 4 <= CTAB);
    for (unsigned i = 0; i < N_COMMANDS; i++)
        ctab_add(&commands[i]);
    for (unsigned i = 0; i < n_kv_cmds; i++)
        ctab_add(&kv_cmds[i]);
}

static const struct cmd *find_cmd(const uint8_t *p, size_t len)
{
    if (len == 0 || len > CMD_NAME_MAX)
        return NULL;
    pthread_once(&kv_cmds_once, kv_cmds_init);
    uint8_t low[CMD_NAME_MAX];
    for (size_t i = 0; i < len; i++)
        low[i] = lower(p[i]);
    return ctab_find(low, len);
}

/* The feature level of a command (kv/README.md "Feature levels"): the KV
 * store's; 0 for the connection's own. */
static unsigned cmd_level(const struct cmd *c)
{
    uintptr_t p = (uintptr_t)c, lo = (uintptr_t)kv_cmds, hi = (uintptr_t)(kv_cmds + n_kv_cmds);
    return p >= lo && p < hi ? kv_cmd_level[c - kv_cmds] : 0;
}

/* A command above the cluster's agreed level does not exist yet: refused
 * before it is replicated, left out of COMMAND's answers. */
static bool cmd_visible(const struct resp_session *s, const struct cmd *c)
{
    return !s->feature_level || cmd_level(c) <= __atomic_load_n(s->feature_level, __ATOMIC_RELAXED);
}

static unsigned all_count(void)
{
    pthread_once(&kv_cmds_once, kv_cmds_init);
    return (unsigned)N_COMMANDS + n_kv_cmds;
}

static const struct cmd *all_at(unsigned i)
{
    return i < N_COMMANDS ? &commands[i] : &kv_cmds[i - N_COMMANDS];
}

unsigned resp_command_count(void)
{
    return all_count();
}

/* The name a subcommand answers to: what follows the '|'. */
static const char *short_name(const char *name)
{
    const char *bar = strchr(name, '|');
    return bar ? bar + 1 : name;
}

static const struct cmd *lookup(const struct cmd *t, unsigned n, const uint8_t *p, size_t len)
{
    for (unsigned i = 0; i < n; i++)
        if (eq_ci(p, len, short_name(t[i].name)))
            return &t[i];
    return NULL;
}

/* ====================================================================== */
/* Errors                                                                  */

/* The reply to a command refused before it ran. Inside MULTI it makes EXEC
 * abort, as Redis's rejectCommand does. */
static int reject(struct ctx *x, const char *msg)
{
    if (x->s->in_multi)
        x->s->multi_dirty = true;
    return resp_put_error(x->out, msg) ? -ENOMEM : RESP_LOCAL;
}

static int arity_text(struct rabia_buf *o, const char *prefix, const char *name)
{
    int rc = put_cstr(o, prefix);
    if (!rc)
        rc = put_cstr(o, "wrong number of arguments for '");
    if (!rc)
        rc = put_cstr(o, name);
    return rc ? rc : put_cstr(o, "' command\r\n");
}

static int reject_arity(struct ctx *x, const char *name)
{
    if (x->s->in_multi)
        x->s->multi_dirty = true;
    return arity_text(x->out, "-ERR ", name) ? -ENOMEM : RESP_LOCAL;
}

/* The bytes of p before its first NUL, at most max: what Redis's "%.*s"
 * prints of an argument. */
static size_t c_len(const uint8_t *p, size_t n, size_t max)
{
    const uint8_t *z = n ? memchr(p, 0, n) : NULL;
    if (z)
        n = (size_t)(z - p);
    return n < max ? n : max;
}

/* Redis 7's text: "ERR unknown command '<name>', with args beginning with:
 * '<a1>' '<a2>' " with the name cut at 128 bytes and about 128 bytes of
 * arguments (the same text kv/command.c writes). Redis prints them with
 * %.128s and %.*s, so each also ends at a NUL byte, and the 128 count
 * what was printed. */
static int reject_unknown(struct ctx *x)
{
    struct rabia_buf *o = x->out;
    if (x->s->in_multi)
        x->s->multi_dirty = true;
    int rc = put_cstr(o, "-ERR unknown command '");
    if (!rc)
        rc = put_sanitized(o, ARG(0), c_len(ARG(0), LEN(0), 128));
    if (!rc)
        rc = put_cstr(o, "', with args beginning with: ");
    size_t args = 0;
    for (uint32_t i = 1; !rc && i < ARGC && args < 128; i++) {
        size_t n = c_len(ARG(i), LEN(i), 128 - args);
        if (!(rc = put_cstr(o, "'")) && !(rc = put_sanitized(o, ARG(i), n)))
            rc = put_cstr(o, "' ");
        args += n + 3;
    }
    if (!rc)
        rc = put_cstr(o, "\r\n");
    return rc ? -ENOMEM : RESP_LOCAL;
}

/* A command of this build that the cluster has not agreed yet (kv/README.md
 * "Feature levels"): told apart from an unknown one, with the fix. */
static int reject_level(struct ctx *x, const struct cmd *cmd, unsigned need, unsigned agreed)
{
    char msg[400];
    snprintf(msg, sizeof msg,
             "ERR unknown command '%s' until the cluster agrees feature level %u (it is at %u): every replica "
             "must run a build of level %u or later (INFO server: rabia_feature_level, rabia_build_feature_level)",
             cmd->name, need, agreed, need);
    return reject(x, msg);
}

/* "ERR unknown subcommand '<sub>'. Try <CMD> HELP." */
static int reject_unknown_sub(struct ctx *x)
{
    struct rabia_buf *o = x->out;
    if (x->s->in_multi)
        x->s->multi_dirty = true;
    int rc = put_cstr(o, "-ERR unknown subcommand '");
    if (!rc)
        rc = put_sanitized(o, ARG(1), c_len(ARG(1), LEN(1), 128)); /* Redis's %.128s */
    if (!rc)
        rc = put_cstr(o, "'. Try ");
    size_t at = o->len;
    if (!rc)
        rc = put_sanitized(o, ARG(0), c_len(ARG(0), LEN(0), LEN(0)));
    for (size_t i = at; !rc && i < o->len; i++)
        o->data[i] = upper(o->data[i]);
    if (!rc)
        rc = put_cstr(o, " HELP.\r\n");
    return rc ? -ENOMEM : RESP_LOCAL;
}

/* ====================================================================== */
/* Replication and MULTI                                                   */

/* Size of the argv operation encoding of the command. */
static size_t argv_op_size(const struct resp_argv *c)
{
    size_t n = 4;
    for (uint32_t i = 0; i < c->argc; i++)
        n += 4 + c->argv_len[i];
    return n;
}

/* Append the command's argv operation, under kv_name when set. */
static int encode_op(struct rabia_buf *out, const struct resp_argv *c, const char *kv_name)
{
    if (!kv_name)
        return rabia_kv_encode_argv(out, (int)c->argc, (const char *const *)c->argv, c->argv_len);
    /* on the stack for the usual few arguments: no allocation per command */
    const char *sv[16];
    size_t sl[16];
    bool small = c->argc <= 16;
    const char **v = small ? sv : malloc(c->argc * sizeof *v);
    size_t *l = small ? sl : malloc(c->argc * sizeof *l);
    int rc = -ENOMEM;
    if (v && l) {
        v[0] = kv_name;
        l[0] = strlen(kv_name);
        for (uint32_t i = 1; i < c->argc; i++) {
            v[i] = (const char *)c->argv[i];
            l[i] = c->argv_len[i];
        }
        rc = rabia_kv_encode_argv(out, (int)c->argc, v, l);
    }
    if (!small) {
        free(v);
        free(l);
    }
    return rc;
}

static int too_large(struct ctx *x, const char *what, size_t size)
{
    char msg[160];
    /* the limit is the largest batch a replica can carry (a frame's bound):
     * no setting raises it, unlike batch-max-bytes below it */
    snprintf(msg, sizeof msg, "ERR %s too large to replicate: %zu bytes encoded, the limit is %zu: split it",
             what, size, x->s->max_op);
    return reject(x, msg);
}

/* Append op (an encoded argv) to out as it runs in database db: as is in
 * database 0, else wrapped in "@DB db op" (kv/kv.h). */
static int put_in_db(struct rabia_buf *out, uint32_t db, const uint8_t *op, size_t n)
{
    if (db == 0)
        return rabia_buf_append(out, op, n);
    char num[16];
    snprintf(num, sizeof num, "%u", db);
    const char *v[3] = {"@DB", num, (const char *)op};
    size_t l[3] = {3, strlen(num), n};
    return rabia_kv_encode_argv(out, 3, v, l);
}

#define DB_WRAP 32 /* what put_in_db adds at most */

/* The seconds of a blocking pop's timeout (its last argument) in ms, 0 for
 * "forever"; a bad one is left for the state machine to refuse. */
/* BLMPOP / BZMPOP timeout numkeys key...: the blocking commands whose
 * timeout comes first (the others end with it). */
static bool timeout_first(const uint8_t *name, size_t n)
{
    return eq_ci(name, n, "blmpop") || eq_ci(name, n, "bzmpop");
}

static uint64_t block_timeout(const struct resp_argv *c)
{
    char buf[64];
    uint32_t at = timeout_first(c->argv[0], c->argv_len[0]) ? 1 : c->argc - 1;
    size_t n = c->argv_len[at];
    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, c->argv[at], n);
    buf[n] = 0;
    char *end;
    double d = strtod(buf, &end);
    if (*end || !(d > 0) || d > 1e12)
        return 0;
    uint64_t ms = (uint64_t)(d * 1000.0 + 0.999);
    return ms ? ms : 1;
}

/* Whether one of c's arguments from index `from` on is the word (any case). */
static bool has_word(const struct resp_argv *c, uint32_t from, const char *word)
{
    for (uint32_t i = from; i < c->argc; i++)
        if (eq_ci(c->argv[i], c->argv_len[i], word))
            return true;
    return false;
}

/* Whether a GEORADIUS / GEOSEARCH family command asks for WITHCOORD: its
 * options from argument `from`, walked as Redis parses them (an option's
 * values skipped: a member or a store key named "withcoord" is not one). */
static bool geo_withcoord(const struct resp_argv *c, uint32_t from, bool search)
{
    static const struct {
        const char *name;
        uint32_t values;
        bool search; /* GEOSEARCH's own (else GEORADIUS's) */
    } opts[] = {{"count", 1, false}, {"count", 1, true}, {"store", 1, false}, {"storedist", 1, false},
                {"frommember", 1, true}, {"fromlonlat", 2, true}, {"byradius", 2, true}, {"bybox", 3, true}};
    for (uint32_t i = from; i < c->argc; i++) {
        if (eq_ci(c->argv[i], c->argv_len[i], "withcoord"))
            return true;
        for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
            if (opts[k].search == search && eq_ci(c->argv[i], c->argv_len[i], opts[k].name)) {
                i += opts[k].values;
                break;
            }
    }
    return false;
}

/* The enum resp3_kind of a replicated command: how Redis 7.0 answers it in
 * RESP3 (checked against redis-server 7.0.15 with HELLO 3). A malformed
 * command gets an error reply, which every kind leaves as it is. */
static uint8_t r3_kind(const struct resp_argv *c)
{
    const uint8_t *n = c->argv[0];
    size_t l = c->argv_len[0];
    uint32_t argc = c->argc;
#define IS(name) eq_ci(n, l, name)
    if (IS("hgetall"))
        return R3_MAP;
    if (IS("smembers") || IS("sinter") || IS("sunion") || IS("sdiff"))
        return R3_SET;
    if (IS("spop")) /* with a count: a set (SRANDMEMBER's stays an array) */
        return argc >= 3 ? R3_SET : R3_PLAIN;
    if (IS("zscore") || IS("zincrby"))
        return R3_DOUBLE;
    if (IS("zadd")) { /* ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member... */
        for (uint32_t i = 2; i < argc; i++) {
            const uint8_t *a = c->argv[i];
            size_t al = c->argv_len[i];
            if (eq_ci(a, al, "incr"))
                return R3_DOUBLE;
            if (!eq_ci(a, al, "nx") && !eq_ci(a, al, "xx") && !eq_ci(a, al, "gt") && !eq_ci(a, al, "lt") &&
                !eq_ci(a, al, "ch"))
                break; /* the first score: options come before it */
        }
        return R3_PLAIN;
    }
    if (IS("zmscore"))
        return R3_DOUBLE_ARRAY;
    /* key min max [options]: WITHSCORES can only be an option (a min or max
     * or LIMIT's numbers that read "withscores" are errors) */
    if (IS("zrange") || IS("zrangebyscore") || IS("zrevrange") || IS("zrevrangebyscore"))
        return has_word(c, 4, "withscores") ? R3_SCORED : R3_PLAIN;
    if (IS("zunion") || IS("zinter") || IS("zdiff")) { /* numkeys key... [options] */
        int64_t nk;
        if (argc < 2 || !rabia_kv_parse_int(c->argv[1], c->argv_len[1], &nk) || nk < 0 || nk > (int64_t)argc)
            return R3_PLAIN;
        return has_word(c, 2 + (uint32_t)nk, "withscores") ? R3_SCORED : R3_PLAIN;
    }
    if (IS("zrandmember"))
        return argc == 4 && eq_ci(c->argv[3], c->argv_len[3], "withscores") ? R3_SCORED : R3_PLAIN;
    if (IS("zpopmin") || IS("zpopmax")) /* with a count: pairs; without: [member, score] */
        return argc >= 3 ? R3_SCORED : R3_TAIL_DOUBLE;
    if (IS("bzpopmin") || IS("bzpopmax")) /* [key, member, score] */
        return R3_TAIL_DOUBLE;
    if (IS("zmpop") || IS("bzmpop"))
        return R3_MPOP;
    if (IS("lcs")) /* IDX: {"matches": [...], "len": n} */
        return has_word(c, 3, "idx") ? R3_MAP : R3_PLAIN;
    if (IS("hrandfield"))
        return argc == 4 && eq_ci(c->argv[3], c->argv_len[3], "withvalues") ? R3_PAIRS : R3_PLAIN;
    if (IS("geopos"))
        return R3_GEOPOS;
    if (IS("georadius") || IS("georadius_ro"))
        return geo_withcoord(c, 6, false) ? R3_GEOCOORD : R3_PLAIN;
    if (IS("georadiusbymember") || IS("georadiusbymember_ro"))
        return geo_withcoord(c, 5, false) ? R3_GEOCOORD : R3_PLAIN;
    if (IS("geosearch"))
        return geo_withcoord(c, 2, true) ? R3_GEOCOORD : R3_PLAIN;
#undef IS
    return R3_PLAIN;
}

static int replicate(struct ctx *x, const struct cmd *cmd)
{
    size_t size = argv_op_size(x->c) + (x->s->db ? DB_WRAP : 0);
    if (cmd->kv_name)
        size = size - LEN(0) + strlen(cmd->kv_name);
    if (size > x->s->max_op)
        return too_large(x, "request", size);
    int rc;
    if (!x->s->db) { /* database 0: the op as it is, straight into the caller's buffer */
        rc = encode_op(x->op, x->c, cmd->kv_name);
    } else { /* wrapped: encoded first in the session's buffer (kept: no allocation per command) */
        rabia_buf_clear(&x->s->enc);
        rc = encode_op(&x->s->enc, x->c, cmd->kv_name);
        if (!rc)
            rc = put_in_db(x->op, x->s->db, x->s->enc.data, x->s->enc.len);
        if (x->s->enc.cap > (64u << 10)) rabia_buf_free(&x->s->enc); /* a big op's memory is not kept */
    }
    if (rc)
        return -ENOMEM;
    x->s->r3 = x->s->proto == 3 ? r3_kind(x->c) : R3_NONE;
    if (cmd->flags & F_PUBSUB) {
        x->s->post = RESP_POST_PUBLISH;
    } else if (cmd->flags & F_BLOCKING) {
        x->s->post = RESP_POST_BLOCK;
        x->s->block_timeout_ms = block_timeout(x->c);
    }
    return RESP_REPLICATE;
}

static int queue(struct ctx *x, const struct cmd *cmd)
{
    struct resp_session *s = x->s;
    size_t size = argv_op_size(x->c);
    if (cmd->kv_name)
        size = size - LEN(0) + strlen(cmd->kv_name);
    if (s->txn_bytes + 4 + size > s->max_op)
        return too_large(x, "transaction", s->txn_bytes + 4 + size);
    if (s->nqueued == s->qcap) {
        uint32_t cap = s->qcap ? s->qcap * 2 : 16;
        size_t *l = realloc(s->qlen, cap * sizeof *l);
        if (!l)
            return -ENOMEM;
        s->qlen = l;
        s->qcap = cap;
    }
    if (rabia_buf_reserve(&s->qkinds, 1))
        return -ENOMEM;
    size_t at = s->qops.len;
    if (encode_op(&s->qops, x->c, cmd->kv_name)) {
        s->qops.len = at;
        return -ENOMEM;
    }
    uint8_t kind = cmd->kind == K_REPL ? r3_kind(x->c) : R3_PLAIN; /* PING, ECHO, SELECT */
    put(&s->qkinds, &kind, 1); /* reserved */
    s->qlen[s->nqueued++] = s->qops.len - at;
    s->txn_bytes += 4 + size;
    return resp_put_simple(x->out, "QUEUED") ? -ENOMEM : RESP_LOCAL;
}

static int cmd_multi(struct ctx *x, const struct cmd *cmd)
{
    struct resp_session *s = x->s;
    if (s->in_multi) /* not a rejection: the transaction goes on */
        return resp_put_error(x->out, "ERR MULTI calls can not be nested") ? -ENOMEM : RESP_LOCAL;
    multi_discard(s);
    s->in_multi = true;
    s->multi_db = s->db;
    s->txn_bytes = 4 + 4 + 3 + (s->db ? DB_WRAP : 0); /* argc, then "TXN" */
    return resp_put_simple(x->out, "OK") ? -ENOMEM : RESP_LOCAL;
}

/* EXEC: the queued ops as one TXN (TXNW with the WATCHed keys'
 * versions), in the database the connection had at MULTI. */
static int cmd_exec(struct ctx *x, const struct cmd *cmd)
{
    struct resp_session *s = x->s;
    if (!s->in_multi)
        return resp_put_error(x->out, "ERR EXEC without MULTI") ? -ENOMEM : RESP_LOCAL;
    if (s->multi_dirty) {
        multi_discard(s);
        unwatch(s);
        return resp_put_error(x->out,
                              "EXECABORT Transaction discarded because of previous errors.")
                   ? -ENOMEM
                   : RESP_LOCAL;
    }
    if (s->nqueued == 0 && s->nwatch == 0) { /* nothing to run, nothing to check */
        multi_discard(s);
        return resp_put_array(x->out, 0) ? -ENOMEM : RESP_LOCAL;
    }
    uint32_t nw = s->nwatch, n = 2 + 3 * nw + s->nqueued;
    const char **v = malloc(n * sizeof *v);
    size_t *l = malloc(n * sizeof *l);
    char (*nums)[24] = malloc((size_t)(1 + 2 * nw) * sizeof *nums);
    int rc = -ENOMEM;
    if (v && l && nums) {
        uint32_t a = 0;
        v[a] = nw ? "TXNW" : "TXN";
        l[a] = strlen(v[a]);
        a++;
        if (nw) {
            snprintf(nums[0], sizeof nums[0], "%u", nw);
            v[a] = nums[0];
            l[a] = strlen(nums[0]);
            a++;
        }
        for (uint32_t i = 0; i < nw; i++) {
            snprintf(nums[1 + 2 * i], sizeof nums[0], "%u", s->watch[i].db);
            snprintf(nums[2 + 2 * i], sizeof nums[0], "%" PRIu64, s->watch[i].ver);
            v[a] = nums[1 + 2 * i];
            l[a++] = strlen(nums[1 + 2 * i]);
            v[a] = (const char *)s->watch[i].key;
            l[a++] = s->watch[i].len;
            v[a] = nums[2 + 2 * i];
            l[a++] = strlen(nums[2 + 2 * i]);
        }
        size_t at = 0;
        for (uint32_t i = 0; i < s->nqueued; i++) {
            v[a] = (const char *)s->qops.data + at;
            l[a++] = s->qlen[i];
            at += s->qlen[i];
        }
        struct rabia_buf tmp = {0};
        rc = rabia_kv_encode_argv(&tmp, (int)a, v, l);
        if (!rc)
            rc = put_in_db(x->op, s->db, tmp.data, tmp.len);
        rabia_buf_free(&tmp);
    }
    free(v);
    free(l);
    free(nums);
    if (rc)
        return -ENOMEM;
    /* the queued commands' kinds go with the reply (the next MULTI reuses
     * the queue's buffer) */
    struct rabia_buf k = s->exec_kinds;
    s->exec_kinds = s->qkinds;
    s->qkinds = k;
    s->r3 = s->proto == 3 ? R3_EXEC : R3_NONE;
    if (s->multi_db != s->db) {
        /* a queued SELECT: it takes effect only if the transaction runs (a
         * WATCH may abort it), so the next commands wait for the answer */
        s->exec_db = s->multi_db;
        s->post = RESP_POST_EXEC_DB;
        s->barrier = true;
    }
    multi_discard(s);
    unwatch(s);
    return RESP_REPLICATE;
}

static int cmd_discard(struct ctx *x, const struct cmd *cmd)
{
    if (!x->s->in_multi)
        return resp_put_error(x->out, "ERR DISCARD without MULTI") ? -ENOMEM : RESP_LOCAL;
    multi_discard(x->s);
    unwatch(x->s);
    return resp_put_simple(x->out, "OK") ? -ENOMEM : RESP_LOCAL;
}

/* ====================================================================== */
/* Connection commands                                                     */

static int local_ok(struct ctx *x)
{
    return resp_put_simple(x->out, "OK") ? -ENOMEM : RESP_LOCAL;
}

static int local_err(struct ctx *x, const char *msg)
{
    return resp_put_error(x->out, msg) ? -ENOMEM : RESP_LOCAL;
}

/* "<prefix><argument i, at most max bytes, sanitized>'\r\n": Redis's
 * errors that quote what the client sent (prefix ends with "'"). */
static int local_err_arg(struct ctx *x, const char *prefix, uint32_t i, size_t max)
{
    int rc = put_cstr(x->out, prefix);
    if (!rc) /* Redis prints the argument with %s: it ends at a NUL byte */
        rc = put_sanitized(x->out, ARG(i), c_len(ARG(i), LEN(i), max));
    if (!rc)
        rc = put_cstr(x->out, "'\r\n");
    return rc ? -ENOMEM : RESP_LOCAL;
}

static int cmd_ok(struct ctx *x, const struct cmd *cmd)
{
    return local_ok(x);
}

static int cmd_ping(struct ctx *x, const struct cmd *cmd)
{
    if (ARGC > 2)
        return arity_text(x->out, "-ERR ", "ping") ? -ENOMEM : RESP_LOCAL;
    if ((x->s->nsubs || x->s->npsubs) && x->s->proto == 2) { /* RESP2 subscribed mode: a "pong" push */
        int rc = resp_put_array(x->out, 2);
        if (!rc) rc = put_bulk_cstr(x->out, "pong");
        if (!rc) rc = ARGC == 2 ? resp_put_bulk(x->out, ARG(1), LEN(1)) : resp_put_bulk(x->out, "", 0);
        return rc ? -ENOMEM : RESP_LOCAL;
    }
    if (ARGC == 2)
        return resp_put_bulk(x->out, ARG(1), LEN(1)) ? -ENOMEM : RESP_LOCAL;
    return resp_put_simple(x->out, "PONG") ? -ENOMEM : RESP_LOCAL;
}

static int cmd_echo(struct ctx *x, const struct cmd *cmd)
{
    return resp_put_bulk(x->out, ARG(1), LEN(1)) ? -ENOMEM : RESP_LOCAL;
}

static int cmd_quit(struct ctx *x, const struct cmd *cmd)
{
    multi_discard(x->s);
    unwatch(x->s);
    return resp_put_simple(x->out, "OK") ? -ENOMEM : RESP_QUIT;
}

static int cmd_reset(struct ctx *x, const struct cmd *cmd)
{
    multi_discard(x->s);
    unwatch(x->s);
    unsubscribe_all(x->s);
    x->s->db = 0;
    x->s->proto = 2;
    x->s->no_evict = false; /* as Redis 7.0's RESET */
    x->s->reply_off = x->s->reply_skip_next = false; /* as Redis's RESET: CLIENT REPLY ON */
    rabia_buf_clear(&x->s->name);
    return resp_put_simple(x->out, "RESET") ? -ENOMEM : RESP_LOCAL;
}

#define N_DBS 16 /* kv/internal.h's KV_DBS */

static int cmd_select(struct ctx *x, const struct cmd *cmd)
{
    int64_t db;
    if (!rabia_kv_parse_int(ARG(1), LEN(1), &db) || db < INT32_MIN || db > INT32_MAX)
        return local_err(x, "ERR value is not an integer or out of range");
    if (db < 0 || db >= N_DBS)
        return local_err(x, "ERR DB index is out of range");
    x->s->db = (uint32_t)db;
    return local_ok(x);
}

/* ====================================================================== */
/* WAIT                                                                    */

/* WAIT numreplicas timeout. Every write this connection was answered for
 * is decided already, so a majority of the replicas had it; WAIT tells how
 * many others are known to. It goes through the log as a DBSIZE whose
 * answer is dropped (RESP_POST_WAIT): decided after every earlier command
 * of the connection, its reply is the number of other replicas that
 * received that slot's batch before its decision (all of them after a
 * unanimous exchange, the usual case; the caller asks the node). It never
 * blocks for more: the count is final when the slot is decided (Redis
 * would wait up to `timeout` for numreplicas). */
static int cmd_wait(struct ctx *x, const struct cmd *cmd)
{
    int64_t want, ms;
    if (!rabia_kv_parse_int(ARG(1), LEN(1), &want) || !rabia_kv_parse_int(ARG(2), LEN(2), &ms))
        return local_err(x, "ERR value is not an integer or out of range");
    if (ms < 0)
        return local_err(x, "ERR timeout is negative");
    const char *dbsize = "DBSIZE";
    size_t dl = 6;
    struct rabia_buf tmp = {0};
    int rc = rabia_kv_encode_argv(&tmp, 1, &dbsize, &dl);
    if (!rc)
        rc = put_in_db(x->op, x->s->db, tmp.data, tmp.len);
    rabia_buf_free(&tmp);
    if (rc)
        return -ENOMEM;
    x->s->post = RESP_POST_WAIT;
    return RESP_REPLICATE;
}

/* ====================================================================== */
/* WATCH                                                                   */

/* WATCH replicates WATCHVER (the keys' versions now, in log order) and
 * raises the barrier: nothing after it is handled before the versions are
 * in, so an EXEC always carries them. */
static int cmd_watch(struct ctx *x, const struct cmd *cmd)
{
    struct resp_session *s = x->s;
    if (s->in_multi)
        return local_err(x, "ERR WATCH inside MULTI is not allowed");
    if (s->nwatch + ARGC - 1 > 4096)
        return local_err(x, "ERR too many WATCHed keys (at most 4096 per connection)");
    size_t bytes = s->watch_bytes;
    for (uint32_t i = 1; i < ARGC; i++)
        bytes += LEN(i);
    if (bytes > RESP_WATCH_MAX_BYTES)
        return local_err(x, "ERR WATCHed keys too large (at most 1 MiB of key names per connection)");
    if (s->nwatch + ARGC > s->watch_cap) {
        uint32_t cap = (s->nwatch + ARGC) * 2;
        struct resp_watch *w = realloc(s->watch, cap * sizeof *w);
        if (!w)
            return -ENOMEM;
        s->watch = w;
        s->watch_cap = cap;
    }
    struct rabia_buf tmp = {0};
    int rc = encode_op(&tmp, x->c, "WATCHVER");
    if (!rc)
        rc = put_in_db(x->op, s->db, tmp.data, tmp.len);
    rabia_buf_free(&tmp);
    if (rc)
        return -ENOMEM;
    uint32_t first = s->nwatch;
    for (uint32_t i = 1; i < ARGC; i++) {
        uint8_t *k = malloc(LEN(i) ? LEN(i) : 1);
        if (!k) {
            while (s->nwatch > first) {
                s->nwatch--;
                s->watch_bytes -= s->watch[s->nwatch].len;
                free(s->watch[s->nwatch].key);
            }
            return -ENOMEM;
        }
        memcpy(k, ARG(i), LEN(i));
        s->watch[s->nwatch++] = (struct resp_watch){.db = s->db, .len = (uint32_t)LEN(i), .ver = UINT64_MAX,
                                                    .key = k};
        s->watch_bytes += LEN(i);
    }
    s->post = RESP_POST_WATCH;
    s->barrier = true;
    return RESP_REPLICATE;
}

void resp_exec_result(struct resp_session *s, const uint8_t *res, size_t len)
{
    if (len >= 1 && res[0] == '*' && !(len == 5 && memcmp(res, "*-1\r\n", 5) == 0))
        s->db = s->exec_db;
}

static int cmd_unwatch(struct ctx *x, const struct cmd *cmd)
{
    unwatch(x->s);
    return local_ok(x);
}

/* WATCHVER's reply "*n\r\n:v\r\n..." for the n keys WATCHed last. An
 * unreadable one (an error reply) leaves UINT64_MAX: EXEC then aborts. */
void resp_watch_result(struct resp_session *s, const uint8_t *res, size_t len)
{
    size_t i = 0;
    uint64_t n = 0;
    if (len < 4 || res[0] != '*')
        return;
    for (i = 1; i < len && res[i] >= '0' && res[i] <= '9' && n <= s->nwatch; i++)
        n = n * 10 + (uint64_t)(res[i] - '0');
    i += 2;
    if (n > s->nwatch)
        return;
    for (uint32_t k = s->nwatch - (uint32_t)n; k < s->nwatch && i < len && res[i] == ':'; k++) {
        uint64_t v = 0;
        for (i++; i < len && res[i] >= '0' && res[i] <= '9'; i++)
            v = v * 10 + (uint64_t)(res[i] - '0');
        i += 2;
        s->watch[k].ver = v;
    }
}

/* ====================================================================== */
/* Pub/Sub (the subscriptions are the connection's; PUBLISH goes through
 * the log, so every replica delivers messages in the same order)          */

static bool allowed_subscribed(const struct cmd *c)
{
    return c->fn == cmd_subscribe || c->fn == cmd_psubscribe || c->fn == cmd_unsubscribe ||
           c->fn == cmd_punsubscribe || c->fn == cmd_ping || c->fn == cmd_quit || c->fn == cmd_reset;
}

/* Each list of channels or patterns has an open-addressing hash index of
 * entry offsets (+ 1). A linear scan per name made one SUBSCRIBE of 65,536
 * channels cost 7.6 s of the event loop (a replica that long away from its
 * votes), every PUBLISH a scan of each subscriber's list, and UNSUBSCRIBE
 * a move of the list's tail per name (found by review). An unsubscribed
 * entry keeps its place, its length marked SUB_DEAD, until the dead bytes
 * are half the list; then list and index are rebuilt. The hash is seeded
 * per process, so a client cannot choose names that collide. */
#define SUB_DEAD 0x80000000u         /* an entry's length with this bit: unsubscribed */
#define SUB_SLOT_FREE 0u
#define SUB_SLOT_GONE UINT32_MAX     /* a removed entry's slot: probes go past it */

static uint64_t sub_seed;
static pthread_once_t sub_seed_once = PTHREAD_ONCE_INIT;

static void sub_seed_init(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
        v = (uint64_t)(uintptr_t)&v ^ 0x9e3779b97f4a7c15ull; /* ASLR's bits at least */
    sub_seed = v;
}

static uint32_t sub_hash(const uint8_t *p, size_t n)
{
    pthread_once(&sub_seed_once, sub_seed_init);
    return (uint32_t)XXH3_64bits_withSeed(p, n, sub_seed);
}

/* The offset of name in list, or SIZE_MAX; *at_slot its index slot. */
static size_t sub_find(const struct rabia_buf *list, const struct resp_sub_index *ix, const uint8_t *p, size_t n,
                       uint32_t *at_slot)
{
    if (!ix->cap)
        return SIZE_MAX;
    uint32_t mask = ix->cap - 1;
    uint32_t i = sub_hash(p, n) & mask;
    for (uint32_t probes = 0; probes < ix->cap; probes++, i = (i + 1) & mask) {
        uint32_t v = ix->slot[i];
        if (v == SUB_SLOT_FREE)
            return SIZE_MAX;
        if (v == SUB_SLOT_GONE)
            continue;
        size_t at = (size_t)v - 1;
        uint32_t l;
        memcpy(&l, list->data + at, 4);
        RABIA_ASSERT(!(l & SUB_DEAD) && at + 4 + l <= list->len);
        if (l == n && memcmp(list->data + at + 4, p, n) == 0) {
            if (at_slot)
                *at_slot = i;
            return at;
        }
    }
    return SIZE_MAX;
}

static void sub_index_insert(struct resp_sub_index *ix, const uint8_t *name, size_t n, size_t at)
{
    uint32_t mask = ix->cap - 1;
    uint32_t i = sub_hash(name, n) & mask;
    while (ix->slot[i] != SUB_SLOT_FREE && ix->slot[i] != SUB_SLOT_GONE)
        i = (i + 1) & mask;
    if (ix->slot[i] == SUB_SLOT_FREE)
        ix->used++;
    ix->slot[i] = (uint32_t)(at + 1);
}

/* Drop the dead entries from list and index it again, with room for
 * `room` more live entries at a load of at most one half. */
static int sub_rebuild(struct rabia_buf *list, struct resp_sub_index *ix, uint32_t live, uint32_t room)
{
    uint32_t cap = 16;
    while (cap < 2u * (live + room))
        cap *= 2;
    uint32_t *slot = calloc(cap, sizeof *slot);
    if (!slot)
        return -ENOMEM;
    if (ix->dead_bytes) { /* compact in place, order kept */
        size_t w = 0;
        for (size_t at = 0; at + 4 <= list->len;) {
            uint32_t l;
            memcpy(&l, list->data + at, 4);
            size_t step = 4 + (l & ~SUB_DEAD);
            if (!(l & SUB_DEAD)) {
                memmove(list->data + w, list->data + at, step);
                w += step;
            }
            at += step;
        }
        list->len = w;
    }
    free(ix->slot);
    *ix = (struct resp_sub_index){.slot = slot, .cap = cap};
    uint32_t seen = 0;
    for (size_t at = 0; at + 4 <= list->len; seen++) {
        uint32_t l;
        memcpy(&l, list->data + at, 4);
        RABIA_ASSERT(!(l & SUB_DEAD));
        sub_index_insert(ix, list->data + at + 4, l, at);
        at += 4 + l;
    }
    RABIA_ASSERT(seen == live);
    return 0;
}

/* A (un)subscribe confirmation: a push in RESP3. */
static int sub_reply(struct rabia_buf *o, uint8_t proto, const char *kind, const uint8_t *p, size_t n,
                     uint32_t count)
{
    int rc = put_push(o, proto, 3);
    if (!rc) rc = put_bulk_cstr(o, kind);
    if (!rc) rc = p ? resp_put_bulk(o, p, n) : put_nil(o, proto);
    return rc ? rc : resp_put_int(o, count);
}

static int subscribe(struct ctx *x, bool pattern)
{
    struct resp_session *s = x->s;
    struct rabia_buf *list = pattern ? &s->psubs : &s->subs;
    struct resp_sub_index *ix = pattern ? &s->psubs_idx : &s->subs_idx;
    uint32_t *count = pattern ? &s->npsubs : &s->nsubs;
    for (uint32_t i = 1; i < ARGC; i++) {
        if (sub_find(list, ix, ARG(i), LEN(i), NULL) == SIZE_MAX) {
            if (*count >= 65536)
                return local_err(x, "ERR too many subscriptions (at most 65536 per connection)");
            if ((s->subs.len - s->subs_idx.dead_bytes) + (s->psubs.len - s->psubs_idx.dead_bytes) + 4 + LEN(i) >
                RESP_SUBS_MAX_BYTES) /* the live names' bytes */
                return local_err(x, "ERR subscriptions too large (at most 16 MiB of channel and pattern names "
                                    "per connection)");
            if ((ix->used + 1) * 2 > ix->cap && sub_rebuild(list, ix, *count, *count + 1))
                return -ENOMEM;
            size_t at = list->len;
            uint32_t l = (uint32_t)LEN(i);
            if (put(list, &l, 4) || put(list, ARG(i), LEN(i))) {
                list->len = at;
                return -ENOMEM;
            }
            sub_index_insert(ix, ARG(i), LEN(i), at);
            (*count)++;
        }
        if (sub_reply(x->out, s->proto, pattern ? "psubscribe" : "subscribe", ARG(i), LEN(i),
                      s->nsubs + s->npsubs))
            return -ENOMEM;
    }
    return RESP_LOCAL;
}

static int unsubscribe_one(struct ctx *x, bool pattern, const uint8_t *p, size_t n)
{
    struct resp_session *s = x->s;
    struct rabia_buf *list = pattern ? &s->psubs : &s->subs;
    struct resp_sub_index *ix = pattern ? &s->psubs_idx : &s->subs_idx;
    uint32_t *count = pattern ? &s->npsubs : &s->nsubs;
    uint32_t slot = 0;
    size_t at = sub_find(list, ix, p, n, &slot);
    if (at != SIZE_MAX) {
        ix->slot[slot] = SUB_SLOT_GONE;
        uint32_t l = (uint32_t)n | SUB_DEAD;
        memcpy(list->data + at, &l, 4);
        ix->dead_bytes += 4 + (uint32_t)n;
        (*count)--;
        if (!*count) {
            rabia_buf_free(list);
            sub_index_free(ix);
        } else if ((size_t)ix->dead_bytes * 2 > list->len) {
            (void)sub_rebuild(list, ix, *count, 0); /* out of memory: left as it is, still correct */
        }
    }
    return sub_reply(x->out, s->proto, pattern ? "punsubscribe" : "unsubscribe", p, n, s->nsubs + s->npsubs);
}

static int unsubscribe(struct ctx *x, bool pattern)
{
    struct resp_session *s = x->s;
    struct rabia_buf *list = pattern ? &s->psubs : &s->subs;
    uint32_t *count = pattern ? &s->npsubs : &s->nsubs;
    if (ARGC > 1) {
        for (uint32_t i = 1; i < ARGC; i++)
            if (unsubscribe_one(x, pattern, ARG(i), LEN(i)))
                return -ENOMEM;
        return RESP_LOCAL;
    }
    if (*count == 0)
        return sub_reply(x->out, s->proto, pattern ? "punsubscribe" : "unsubscribe", NULL, 0,
                         s->nsubs + s->npsubs)
                   ? -ENOMEM
                   : RESP_LOCAL;
    /* every one, first subscribed first; then the list goes */
    for (size_t at = 0; at + 4 <= list->len;) {
        uint32_t l;
        memcpy(&l, list->data + at, 4);
        size_t n = l & ~SUB_DEAD;
        if (!(l & SUB_DEAD)) {
            (*count)--;
            if (sub_reply(x->out, s->proto, pattern ? "punsubscribe" : "unsubscribe", list->data + at + 4, n,
                          s->nsubs + s->npsubs))
                return -ENOMEM; /* the connection is closed for it */
        }
        at += 4 + n;
    }
    RABIA_ASSERT(*count == 0);
    rabia_buf_free(list);
    sub_index_free(pattern ? &s->psubs_idx : &s->subs_idx);
    return RESP_LOCAL;
}

static int cmd_subscribe(struct ctx *x, const struct cmd *cmd) { return subscribe(x, false); }
static int cmd_psubscribe(struct ctx *x, const struct cmd *cmd) { return subscribe(x, true); }
static int cmd_unsubscribe(struct ctx *x, const struct cmd *cmd) { return unsubscribe(x, false); }
static int cmd_punsubscribe(struct ctx *x, const struct cmd *cmd) { return unsubscribe(x, true); }

/* A pattern is matched against a published channel in at most this many
 * steps (about 10 ms here): the matcher's worst case is O(pattern x
 * name), and a 100,000-byte pattern against a 100,000-byte channel held
 * the replica's event loop, in the middle of applying a slot, for 7.9 s
 * (found by review). Redis has the same worst case, unbounded. PUBSUB
 * CHANNELS's pattern has the same bound per channel. */
#define RESP_PUBSUB_MATCH_STEPS (1u << 24)

/* PUBSUB CHANNELS, NUMSUB and NUMPAT over every connection of this replica
 * (Redis answers them from its server-wide tables; subscriptions here are
 * per connection, so a walk of the connections): without them redis-py's
 * pubsub_numsub() and the like got "unknown command". Names are collected
 * in a list and index of the subscriptions' own kind (sub_find), so a walk
 * costs the subscriptions there are plus the names asked about, not their
 * product. */
struct pubsub_walk {
    bool patterns;          /* the connections' patterns (NUMPAT), else their channels */
    const uint8_t *match;   /* CHANNELS' pattern (NULL: every channel) */
    size_t match_len;
    bool add;               /* CHANNELS, NUMPAT: add names not seen yet; NUMSUB: count the asked ones */
    struct rabia_buf names; /* [u32 length][name], in the order first met (NUMSUB: asked) */
    struct resp_sub_index ix;
    uint32_t n;
    size_t *at;     /* NUMSUB: each name's offset in names, ascending */
    uint32_t *subs; /* NUMSUB: each name's subscribers */
    int rc;
};

static int pubsub_add(struct pubsub_walk *w, const uint8_t *p, uint32_t l)
{
    if ((w->ix.used + 1) * 2 > w->ix.cap && sub_rebuild(&w->names, &w->ix, w->n, w->n + 1))
        return -ENOMEM;
    size_t at = w->names.len;
    if (put(&w->names, &l, 4) || put(&w->names, p, l))
        return -ENOMEM;
    sub_index_insert(&w->ix, p, l, at);
    w->n++;
    return 0;
}

/* NUMSUB: the ordinal of the name at offset `found` of names (offsets ascend) */
static uint32_t pubsub_place(const struct pubsub_walk *w, size_t found)
{
    uint32_t lo = 0, hi = w->n;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (w->at[mid] <= found) lo = mid;
        else hi = mid;
    }
    RABIA_ASSERT(lo < w->n && w->at[lo] == found);
    return lo;
}

static void pubsub_one(void *arg, const struct resp_session *s)
{
    struct pubsub_walk *w = arg;
    const struct rabia_buf *list = w->patterns ? &s->psubs : &s->subs;
    for (size_t at = 0; !w->rc && at + 4 <= list->len;) {
        uint32_t l;
        memcpy(&l, list->data + at, 4);
        const uint8_t *p = list->data + at + 4;
        at += 4 + (l & ~SUB_DEAD);
        if (l & SUB_DEAD) /* unsubscribed */
            continue;
        if (w->match && rabia_kv_glob_match_limited(w->match, w->match_len, p, l, RESP_PUBSUB_MATCH_STEPS) != 1)
            continue;
        size_t found = sub_find(&w->names, &w->ix, p, l, NULL);
        if (!w->add) {
            if (found == SIZE_MAX)
                continue;
            w->subs[pubsub_place(w, found)]++;
        } else if (found == SIZE_MAX) {
            w->rc = pubsub_add(w, p, l);
        }
    }
}

static void pubsub_walk(struct ctx *x, struct pubsub_walk *w)
{
    if (x->s->clients && x->s->clients->each)
        x->s->clients->each(x->s->clients->ctx, pubsub_one, w);
    else
        pubsub_one(w, x->s);
}

static int cmd_pubsub(struct ctx *x, const struct cmd *cmd)
{
    struct pubsub_walk w = {0};
    int rc = 0;
    if (!strcmp(cmd->name, "pubsub|numpat")) { /* distinct patterns */
        w.patterns = w.add = true;
        pubsub_walk(x, &w);
        if (!(rc = w.rc))
            rc = resp_put_int(x->out, w.n);
    } else if (!strcmp(cmd->name, "pubsub|channels") || !strcmp(cmd->name, "pubsub|shardchannels")) {
        if (ARGC > 3) { /* Redis 7.0's error: the subcommand's arity allows more */
            int e = put_cstr(x->out, "-ERR unknown subcommand or wrong number of arguments for '");
            if (!e) e = put_sanitized(x->out, ARG(1), c_len(ARG(1), LEN(1), 128));
            if (!e) e = put_cstr(x->out, "'. Try PUBSUB HELP.\r\n");
            return e ? -ENOMEM : RESP_LOCAL;
        }
        w.add = true;
        if (ARGC == 3) {
            w.match = ARG(2);
            w.match_len = LEN(2);
        }
        if (cmd->name[7] == 'c') /* no shard channels: SSUBSCRIBE is not served */
            pubsub_walk(x, &w);
        if (!(rc = w.rc))
            rc = resp_put_array(x->out, w.n);
        for (size_t at = 0; !rc && at + 4 <= w.names.len;) {
            uint32_t l;
            memcpy(&l, w.names.data + at, 4);
            rc = resp_put_bulk(x->out, w.names.data + at + 4, l);
            at += 4 + l;
        }
    } else { /* NUMSUB, SHARDNUMSUB: each channel asked and its subscribers, duplicates too */
        uint32_t asked = ARGC - 2;
        w.at = calloc(asked ? asked : 1, sizeof *w.at);
        w.subs = calloc(asked ? asked : 1, sizeof *w.subs);
        if (!w.at || !w.subs)
            rc = -ENOMEM;
        for (uint32_t i = 2; !rc && i < ARGC; i++)
            if (sub_find(&w.names, &w.ix, ARG(i), LEN(i), NULL) == SIZE_MAX) {
                w.at[w.n] = w.names.len;
                rc = pubsub_add(&w, ARG(i), (uint32_t)LEN(i));
            }
        if (!rc && cmd->name[7] == 'n') /* no shard channels */
            pubsub_walk(x, &w);
        if (!rc && !(rc = w.rc))
            rc = resp_put_array(x->out, 2ull * asked);
        for (uint32_t i = 2; !rc && i < ARGC; i++) {
            uint32_t k = pubsub_place(&w, sub_find(&w.names, &w.ix, ARG(i), LEN(i), NULL));
            if (!(rc = resp_put_bulk(x->out, ARG(i), LEN(i))))
                rc = resp_put_int(x->out, w.subs[k]);
        }
    }
    rabia_buf_free(&w.names);
    free(w.ix.slot);
    free(w.at);
    free(w.subs);
    return rc ? -ENOMEM : RESP_LOCAL;
}

static _Atomic uint64_t pubsub_giveups;

uint64_t resp_pubsub_giveups(void) { return atomic_load_explicit(&pubsub_giveups, memory_order_relaxed); }

int resp_pubsub_deliver(const struct resp_session *s, const uint8_t *ch, size_t chn, const uint8_t *msg,
                        size_t msgn, struct rabia_buf *out)
{
    int n = 0, rc = 0;
    if (s->nsubs && sub_find(&s->subs, &s->subs_idx, ch, chn, NULL) != SIZE_MAX) {
        if ((rc = put_push(out, s->proto, 3)) || (rc = put_bulk_cstr(out, "message")) ||
            (rc = resp_put_bulk(out, ch, chn)) || (rc = resp_put_bulk(out, msg, msgn)))
            return rc;
        n++;
    }
    size_t at = 0;
    while (s->npsubs && at + 4 <= s->psubs.len) {
        uint32_t l;
        memcpy(&l, s->psubs.data + at, 4);
        const uint8_t *pat = s->psubs.data + at + 4;
        if (l & SUB_DEAD) { /* unsubscribed */
            at += 4 + (l & ~SUB_DEAD);
            continue;
        }
        int m = rabia_kv_glob_match_limited(pat, l, ch, chn, RESP_PUBSUB_MATCH_STEPS);
        if (m < 0) { /* not delivered: logged, counted */
            uint64_t k = atomic_fetch_add_explicit(&pubsub_giveups, 1, memory_order_relaxed) + 1;
            if ((k & (k - 1)) == 0)
                fprintf(stderr,
                        "rabia: a PSUBSCRIBE pattern of %u bytes against a channel name of %zu bytes needed more "
                        "than %u matching steps; the message was not delivered to it (%" PRIu64 " so far): "
                        "a pattern with '*' against a long channel name can cost pattern x name steps\n",
                        l, chn, RESP_PUBSUB_MATCH_STEPS, k);
        }
        if (m == 1) {
            if ((rc = put_push(out, s->proto, 4)) || (rc = put_bulk_cstr(out, "pmessage")) ||
                (rc = resp_put_bulk(out, pat, l)) || (rc = resp_put_bulk(out, ch, chn)) ||
                (rc = resp_put_bulk(out, msg, msgn)))
                return rc;
            n++;
        }
        at += 4 + l;
    }
    return n;
}

/* ====================================================================== */
/* Blocking pops                                                           */

/* Argument i of an encoded argv (u32 argc, then u32 length + bytes each). */
static bool op_arg(const uint8_t *op, size_t n, uint32_t i, const uint8_t **p, size_t *len, uint32_t *argc)
{
    if (n < 4)
        return false;
    uint32_t c;
    memcpy(&c, op, 4);
    size_t at = 4;
    for (uint32_t k = 0; k < c; k++) {
        if (n - at < 4)
            return false;
        uint32_t l;
        memcpy(&l, op + at, 4);
        at += 4;
        if (l > n - at)
            return false;
        if (k == i) {
            *p = op + at;
            *len = l;
        }
        at += l;
    }
    *argc = c;
    return i < c;
}

bool resp_block_waits_on(const uint8_t *op, size_t n, uint32_t db, const uint8_t *k, size_t kn)
{
    const uint8_t *a0 = NULL, *a = NULL;
    size_t l0 = 0, l = 0;
    uint32_t argc = 0, opdb = 0;
    if (!op_arg(op, n, 0, &a0, &l0, &argc))
        return false;
    if (eq_ci(a0, l0, "@db")) { /* @DB n op */
        const uint8_t *num = NULL, *inner = NULL;
        size_t numl = 0, innerl = 0;
        if (!op_arg(op, n, 1, &num, &numl, &argc) || !op_arg(op, n, 2, &inner, &innerl, &argc))
            return false;
        for (size_t i = 0; i < numl && i < 3; i++)
            opdb = opdb * 10 + (uint32_t)(num[i] - '0');
        op = inner;
        n = innerl;
        if (!op_arg(op, n, 0, &a0, &l0, &argc))
            return false;
    }
    if (opdb != db)
        return false;
    /* BLPOP / BRPOP / BZPOPMIN / BZPOPMAX key... timeout; BLMOVE and
     * BRPOPLPUSH source destination ... (only the source wakes them);
     * BLMPOP / BZMPOP timeout numkeys key... */
    uint32_t first = 1, last = eq_ci(a0, l0, "blmove") || eq_ci(a0, l0, "brpoplpush") ? 1 : argc - 2;
    if (timeout_first(a0, l0)) {
        int64_t nk = 0;
        if (!op_arg(op, n, 2, &a, &l, &argc) || !rabia_kv_parse_int(a, l, &nk) || nk < 1 || nk > (int64_t)argc - 3)
            return false;
        first = 3;
        last = 2 + (uint32_t)nk;
    }
    for (uint32_t i = first; i <= last && i < argc; i++)
        if (op_arg(op, n, i, &a, &l, &argc) && l == kn && memcmp(a, k, kn) == 0)
            return true;
    return false;
}

/* No passwords: the default user is "nopass", as in a Redis without
 * requirepass. */
static int cmd_auth(struct ctx *x, const struct cmd *cmd)
{
    if (ARGC > 3)
        return local_err(x, "ERR syntax error");
    if (ARGC == 2)
        return local_err(x, "ERR AUTH <password> called without any password configured for "
                            "the default user. Are you sure your configuration is correct?");
    if (LEN(1) == 7 && memcmp(ARG(1), "default", 7) == 0)
        return local_ok(x);
    return local_err(x, "WRONGPASS invalid username-password pair or user is disabled.");
}

/* Redis's client name rule: printable ASCII without spaces. */
static bool valid_name(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '!' || p[i] > '~')
            return false;
    return true;
}

static int set_name(struct ctx *x, const uint8_t *p, size_t n)
{
    if (!valid_name(p, n))
        return 1;
    rabia_buf_clear(&x->s->name);
    return rabia_buf_append(&x->s->name, p, n);
}

#define E_NAME "ERR Client names cannot contain spaces, newlines or special characters."

/* Redis 7.0's helloCommand: the version, then the options; the protocol
 * switches when everything was accepted, and the reply (a map in RESP3)
 * is in the new one. */
static int cmd_hello(struct ctx *x, const struct cmd *cmd)
{
    uint32_t next = 1;
    uint8_t proto = x->s->proto;
    if (ARGC >= 2) {
        int64_t ver;
        if (!rabia_kv_parse_int(ARG(1), LEN(1), &ver))
            return local_err(x, "ERR Protocol version is not an integer or out of range");
        next = 2;
        if (ver < 2 || ver > 3)
            return local_err(x, "NOPROTO unsupported protocol version");
        proto = (uint8_t)ver;
    }
    const uint8_t *user = NULL, *name = NULL;
    size_t user_len = 0, name_len = 0;
    bool has_name = false;
    for (uint32_t j = next; j < ARGC; j++) {
        uint32_t more = ARGC - 1 - j;
        if (eq_ci(ARG(j), LEN(j), "auth") && more >= 2) {
            user = ARG(j + 1);
            user_len = LEN(j + 1);
            j += 2;
        } else if (eq_ci(ARG(j), LEN(j), "setname") && more >= 1) {
            name = ARG(j + 1);
            name_len = LEN(j + 1);
            has_name = true;
            j++;
        } else {
            return local_err_arg(x, "-ERR Syntax error in HELLO option '", j, SIZE_MAX);
        }
    }
    if (user && !x->s->auth_checked && !(user_len == 7 && memcmp(user, "default", 7) == 0))
        return local_err(x, "WRONGPASS invalid username-password pair or user is disabled.");
    if (has_name) {
        int rc = set_name(x, name, name_len);
        if (rc > 0)
            return local_err(x, E_NAME);
        if (rc < 0)
            return -ENOMEM;
    }
    x->s->proto = proto;
    struct rabia_buf *o = x->out;
    int rc = put_map(o, proto, 7);
    if (!rc) rc = put_bulk_cstr(o, "server");
    if (!rc) rc = put_bulk_cstr(o, RESP_SERVER_NAME);
    if (!rc) rc = put_bulk_cstr(o, "version");
    if (!rc) rc = put_bulk_cstr(o, RESP_SERVER_VERSION);
    if (!rc) rc = put_bulk_cstr(o, "proto");
    if (!rc) rc = resp_put_int(o, proto);
    if (!rc) rc = put_bulk_cstr(o, "id");
    if (!rc) rc = resp_put_int(o, (int64_t)visible_id(x->s));
    if (!rc) rc = put_bulk_cstr(o, "mode");
    if (!rc) rc = put_bulk_cstr(o, "standalone");
    if (!rc) rc = put_bulk_cstr(o, "role");
    if (!rc) rc = put_bulk_cstr(o, "master");
    if (!rc) rc = put_bulk_cstr(o, "modules");
    if (!rc) rc = resp_put_array(o, 0);
    return rc ? -ENOMEM : RESP_LOCAL;
}

/* COMMAND INFO's 10-field entry (Redis 7 shape; ACL categories, tips and
 * key specs are left empty). In RESP3 Redis 7.0 sends the flags, ACL
 * categories, tips and key specs as sets, and no subcommands as an empty
 * set. */
static int put_cmd_info(struct rabia_buf *o, uint8_t proto, const struct cmd *c)
{
    unsigned nflags = 0;
    for (unsigned b = 0; b < sizeof flag_names / sizeof flag_names[0]; b++)
        nflags += (c->flags >> b) & 1u;
    int rc = resp_put_array(o, 10);
    if (!rc) rc = put_bulk_cstr(o, c->name);
    if (!rc) rc = resp_put_int(o, c->arity);
    if (!rc) rc = put_set(o, proto, nflags);
    for (unsigned b = 0; !rc && b < sizeof flag_names / sizeof flag_names[0]; b++)
        if (c->flags & (1u << b))
            rc = resp_put_simple(o, flag_names[b]);
    if (!rc) rc = resp_put_int(o, c->first);
    if (!rc) rc = resp_put_int(o, c->last);
    if (!rc) rc = resp_put_int(o, c->step);
    if (!rc) rc = put_set(o, proto, 0);
    if (!rc) rc = put_set(o, proto, 0);
    if (!rc) rc = put_set(o, proto, 0);
    if (!rc) rc = c->nsubs ? resp_put_array(o, c->nsubs) : put_set(o, proto, 0);
    for (unsigned i = 0; !rc && i < c->nsubs; i++)
        rc = put_cmd_info(o, proto, &c->subs[i]);
    return rc;
}

static unsigned visible_count(const struct resp_session *s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < all_count(); i++)
        n += cmd_visible(s, all_at(i));
    return n;
}

static int cmd_command(struct ctx *x, const struct cmd *cmd)
{
    int rc = resp_put_array(x->out, visible_count(x->s));
    for (unsigned i = 0; !rc && i < all_count(); i++)
        if (cmd_visible(x->s, all_at(i)))
            rc = put_cmd_info(x->out, x->s->proto, all_at(i));
    return rc ? -ENOMEM : RESP_LOCAL;
}

static int cmd_command_count(struct ctx *x, const struct cmd *cmd)
{
    return resp_put_int(x->out, (int64_t)visible_count(x->s)) ? -ENOMEM : RESP_LOCAL;
}

/* redis-cli asks for COMMAND DOCS at start (for its hints): an empty map
 * (a RESP2 empty array) makes it fall back to its built-in docs. */
static int cmd_command_docs(struct ctx *x, const struct cmd *cmd)
{
    return put_map(x->out, x->s->proto, 0) ? -ENOMEM : RESP_LOCAL;
}

/* A name as COMMAND INFO takes it: "get", or "config|get". */
static const struct cmd *lookup_full(const uint8_t *p, size_t n)
{
    const uint8_t *bar = memchr(p, '|', n);
    const struct cmd *c = find_cmd(p, bar ? (size_t)(bar - p) : n);
    if (!c || !bar)
        return c;
    return c->subs ? lookup(c->subs, c->nsubs, bar + 1, n - (size_t)(bar + 1 - p)) : NULL;
}

static int cmd_command_info(struct ctx *x, const struct cmd *cmd)
{
    if (ARGC == 2)
        return cmd_command(x, cmd);
    int rc = resp_put_array(x->out, ARGC - 2);
    for (uint32_t i = 2; !rc && i < ARGC; i++) {
        const struct cmd *c = lookup_full(ARG(i), LEN(i));
        rc = c && cmd_visible(x->s, c) ? put_cmd_info(x->out, x->s->proto, c) : put_nil(x->out, x->s->proto);
    }
    return rc ? -ENOMEM : RESP_LOCAL;
}

static int cmd_command_list(struct ctx *x, const struct cmd *cmd)
{
    int rc = resp_put_array(x->out, visible_count(x->s));
    for (unsigned i = 0; !rc && i < all_count(); i++)
        if (cmd_visible(x->s, all_at(i)))
            rc = put_bulk_cstr(x->out, all_at(i)->name);
    return rc ? -ENOMEM : RESP_LOCAL;
}

static int cmd_help(struct ctx *x, const struct cmd *cmd)
{
    static const char *const command_help[] = {
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)", "    Return details about all commands.",
        "COUNT", "    Return the total number of commands.",
        "LIST", "    Return a list of all commands.",
        "INFO [<command-name> ...]", "    Return details about the given commands.",
        "DOCS [<command-name> ...]", "    Return documentation (empty here).",
        "HELP", "    Print this help.", NULL};
    static const char *const config_help[] = {
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>", "    Not supported: nothing is configurable at run time.",
        "RESETSTAT", "    Does nothing.",
        "HELP", "    Print this help.", NULL};
    static const char *const client_help[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME", "    Return the name of the current connection.",
        "ID", "    Return the ID of the current connection.",
        "INFO", "    Return information about the current client connection.",
        "KILL <ip:port>", "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]", "    Kill connections. Options are:",
        "    * ADDR <ip:port>", "      Kill connections made from the specified address",
        "    * LADDR <ip:port>", "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Kill connections by type.",
        "    * USER <username>", "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)", "      Skip killing current connection (default: yes).",
        "LIST [options ...]", "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Return clients of specified type.",
        "    * ID <client-id> [<client-id> ...]", "      Return clients of the specified IDs only.",
        "NO-EVICT (ON|OFF)", "    Protect current client connection from eviction (maxmemory-clients).",
        "REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection.",
        "SETNAME <name>", "    Assign the name <name> to the current connection.",
        "SETINFO <LIB-NAME|LIB-VER> <value>", "    Accepted and ignored.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]", "    Unblock the specified blocked client.",
        "HELP", "    Print this help.", NULL};
    static const char *const pubsub_help[] = {
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]", "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT", "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]", "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]", "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]", "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP", "    Prints this help.", NULL};
    const char *const *lines = !strncmp(cmd->name, "command|", 8)  ? command_help
                               : !strncmp(cmd->name, "config|", 7) ? config_help
                               : !strncmp(cmd->name, "pubsub|", 7) ? pubsub_help
                                                                   : client_help;
    unsigned n = 0;
    while (lines[n])
        n++;
    int rc = resp_put_array(x->out, n);
    for (unsigned i = 0; !rc && i < n; i++)
        rc = resp_put_simple(x->out, lines[i]);
    return rc ? -ENOMEM : RESP_LOCAL;
}

/* CONFIG GET: fixed values that tell clients what kind of server this is
 * (redis-benchmark asks for "save" and "appendonly"). */
static const char *const config_params[][2] = {
    {"save", ""},
    {"appendonly", "no"},
    {"databases", "16"},
    {"maxmemory", "0"},
    {"maxmemory-policy", "noeviction"},
    {"timeout", "0"},
    {"cluster-enabled", "no"},
    {"proto-max-bulk-len", NULL}, /* filled in: RESP_DEFAULT_MAX_BULK */
    {"maxclients", NULL},         /* filled in: resp_clients.maxclients */
};
#define N_PARAMS (sizeof config_params / sizeof config_params[0])

static int cmd_config_get(struct ctx *x, const struct cmd *cmd)
{
    uint32_t matched = 0; /* one bit per parameter: each is listed once */
    for (uint32_t i = 2; i < ARGC; i++) {
        /* Redis matches without regard to case: lower the pattern, the
         * names are lowercase. */
        uint8_t *pat = malloc(LEN(i) ? LEN(i) : 1);
        if (!pat)
            return -ENOMEM;
        for (size_t k = 0; k < LEN(i); k++)
            pat[k] = lower(ARG(i)[k]);
        for (unsigned k = 0; k < N_PARAMS; k++) {
            const char *name = config_params[k][0];
            if (rabia_kv_glob_match(pat, LEN(i), (const uint8_t *)name, strlen(name)))
                matched |= 1u << k;
        }
        free(pat);
    }
    unsigned n = (unsigned)__builtin_popcount(matched);
    int rc = put_map(x->out, x->s->proto, n);
    for (unsigned k = 0; !rc && k < N_PARAMS; k++) {
        if (!(matched & (1u << k)))
            continue;
        char num[24];
        const char *v = config_params[k][1];
        if (!v) {
            const struct resp_clients *cl = x->s->clients;
            unsigned maxc = cl && cl->maxclients ? cl->maxclients : 10000;
            snprintf(num, sizeof num, "%u", !strcmp(config_params[k][0], "maxclients") ? maxc
                                                : (unsigned)RESP_DEFAULT_MAX_BULK);
            v = num;
        }
        rc = put_bulk_cstr(x->out, config_params[k][0]);
        if (!rc)
            rc = put_bulk_cstr(x->out, v);
    }
    return rc ? -ENOMEM : RESP_LOCAL;
}

/* Redis parameters that clients and set-up scripts commonly CONFIG SET.
 * Redis's "Unknown option" for them read as a typo: this server takes no
 * CONFIG SET at all (found by review). */
static const char *const config_set_known[] = {
    "save", "appendonly", "appendfsync", "databases", "maxmemory", "maxmemory-policy", "maxmemory-samples",
    "maxmemory-clients", "timeout", "maxclients", "proto-max-bulk-len", "notify-keyspace-events", "requirepass",
    "loglevel", "hz", "slowlog-log-slower-than", "slowlog-max-len", "client-output-buffer-limit",
    "lua-time-limit", "busy-reply-threshold", "lazyfree-lazy-user-del", "cluster-enabled", NULL};

static int cmd_config_set(struct ctx *x, const struct cmd *cmd)
{
    if ((ARGC - 2) % 2)
        return arity_text(x->out, "-ERR ", cmd->name) ? -ENOMEM : RESP_LOCAL;
    for (unsigned i = 0; config_set_known[i]; i++) {
        if (!eq_ci(ARG(2), LEN(2), config_set_known[i]))
            continue;
        char msg[400];
        snprintf(msg, sizeof msg,
                 "ERR CONFIG SET '%s' is not supported: rabiad takes its settings at start from its config file or "
                 "command line, alike on every replica (rabiad --help lists them), never from clients%s",
                 config_set_known[i],
                 !strcmp(config_set_known[i], "notify-keyspace-events") ? "; keyspace notifications are not sent" : "");
        return local_err(x, msg);
    }
    return local_err_arg(x, "-ERR Unknown option or number of arguments for CONFIG SET - '", 2, 128);
}

static int cmd_client_setname(struct ctx *x, const struct cmd *cmd)
{
    int rc = set_name(x, ARG(2), LEN(2));
    if (rc > 0)
        return local_err(x, E_NAME);
    return rc ? -ENOMEM : local_ok(x);
}

static int cmd_client_getname(struct ctx *x, const struct cmd *cmd)
{
    const struct rabia_buf *n = &x->s->name;
    int rc = n->len ? resp_put_bulk(x->out, n->data, n->len) : put_nil(x->out, x->s->proto);
    return rc ? -ENOMEM : RESP_LOCAL;
}

static int cmd_client_id(struct ctx *x, const struct cmd *cmd)
{
    return resp_put_int(x->out, (int64_t)visible_id(x->s)) ? -ENOMEM : RESP_LOCAL;
}

/* One connection's CLIENT INFO / CLIENT LIST line, Redis's fields; the
 * figures the session does not know come from the server (s->clients). */
static int client_line(struct rabia_buf *line, const struct resp_session *s, const char *cmd)
{
    struct resp_client_stats st = {0};
    if (s->clients && s->clients->stats)
        s->clients->stats(s->clients->ctx, s, &st);
    char flags[16];
    snprintf(flags, sizeof flags, "%s%s%s%s", s->in_multi ? "x" : "", s->nsubs || s->npsubs ? "P" : "", st.flags,
             s->no_evict ? "e" : "");
    char head[256], tail[640];
    snprintf(head, sizeof head, "id=%" PRIu64 " addr=%s laddr=%s fd=-1 name=", visible_id(s), s->addr, s->laddr);
    snprintf(tail, sizeof tail,
             " age=%" PRIu64 " idle=%" PRIu64 " flags=%s db=%u sub=%u psub=%u ssub=0 multi=%ld qbuf=%" PRIu64
             " qbuf-free=%" PRIu64 " argv-mem=%" PRIu64 " multi-mem=%zu rbs=0 rbp=0 obl=0 oll=%" PRIu64
             " omem=%" PRIu64 " tot-mem=%" PRIu64 " events=r cmd=%s user=%s redir=-1 resp=%u\n",
             st.age_s, st.idle_s, flags[0] ? flags : "N", s->db, s->nsubs, s->npsubs,
             s->in_multi ? (long)s->nqueued : -1L, st.qbuf, st.qbuf_free, st.argv_mem, s->qops.cap, st.oll, st.omem,
             st.tot_mem, cmd ? cmd : "NULL", s->user && s->user[0] ? s->user : "default", (unsigned)s->proto);
    int rc = put_cstr(line, head);
    if (!rc)
        rc = put(line, s->name.data, s->name.len);
    if (!rc)
        rc = put_cstr(line, tail);
    return rc;
}

/* A CLIENT LIST / CLIENT KILL TYPE name: 1 normal, 2 pubsub, 3 a kind of
 * connection that never exists here (master, replica, slave); -1 unknown. */
static int client_type(const uint8_t *p, size_t n)
{
    static const char *const types[] = {"normal", "pubsub", "master", "replica", "slave"};
    for (int t = 0; t < 5; t++)
        if (eq_ci(p, n, types[t]))
            return t < 2 ? t + 1 : 3;
    return -1;
}

struct list_ctx {
    struct rabia_buf *line;
    const struct resp_session *self;
    const char *self_cmd;
    int type;            /* 0 any, 1 normal, 2 pubsub, 3 none (master, replica: no such connections) */
    const uint64_t *ids; /* ID filter, n_ids of them (0: none) */
    uint32_t n_ids;
    int rc;
};

static bool list_wants(const struct list_ctx *l, const struct resp_session *s)
{
    bool pubsub = s->nsubs || s->npsubs;
    if (l->type == 3 || (l->type == 1 && pubsub) || (l->type == 2 && !pubsub))
        return false;
    if (!l->n_ids)
        return true;
    for (uint32_t i = 0; i < l->n_ids; i++)
        if (l->ids[i] == visible_id(s))
            return true;
    return false;
}

static void list_one(void *arg, const struct resp_session *s)
{
    struct list_ctx *l = arg;
    if (!l->rc && list_wants(l, s))
        l->rc = client_line(l->line, s, s == l->self ? l->self_cmd : s->last_cmd);
}

/* CLIENT INFO: this connection's line. CLIENT LIST: every client
 * connection's (with s->clients; this one's alone without), as Redis's
 * (a verbatim string in RESP3, as Redis 7.0's). */
static int cmd_client_info(struct ctx *x, const struct cmd *cmd)
{
    const struct resp_session *s = x->s;
    struct rabia_buf line = {0};
    int rc;
    if (!strcmp(cmd->name, "client|list")) { /* [TYPE normal|master|replica|pubsub] [ID id ...], as Redis 7.0 */
        uint64_t ids[64];
        struct list_ctx l = {&line, s, cmd->name, 0, ids, 0, 0};
        uint32_t i = 2;
        if (ARGC > 3 && eq_ci(ARG(2), LEN(2), "type")) {
            if ((l.type = client_type(ARG(3), LEN(3))) < 0)
                return local_err_arg(x, "-ERR Unknown client type '", 3, 128);
            i = 4;
        }
        if (i < ARGC && eq_ci(ARG(i), LEN(i), "id") && i + 1 < ARGC) {
            for (i++; i < ARGC; i++) {
                int64_t id;
                if (!rabia_kv_parse_int(ARG(i), LEN(i), &id) || id < 0)
                    return local_err(x, "ERR Invalid client ID");
                if (l.n_ids < 64) /* more than 64: the first 64 */
                    ids[l.n_ids++] = (uint64_t)id;
            }
        }
        if (i != ARGC)
            return local_err(x, "ERR syntax error");
        if (s->clients && s->clients->each)
            s->clients->each(s->clients->ctx, list_one, &l);
        else
            list_one(&l, s);
        rc = l.rc;
    } else {
        rc = client_line(&line, s, cmd->name);
    }
    if (!rc)
        rc = s->proto == 3 ? resp_put_verbatim(x->out, line.data, line.len)
                           : resp_put_bulk(x->out, line.data, line.len);
    rabia_buf_free(&line);
    return rc ? -ENOMEM : RESP_LOCAL;
}

struct kill_ctx {
    const struct resp_session *self;
    const struct resp_clients *view;
    int type; /* as list_ctx's */
    uint64_t id;
    const uint8_t *addr, *laddr, *user;
    size_t addr_len, laddr_len, user_len;
    bool skipme;
    uint32_t killed;
    bool self_killed;
};

static bool str_is(const char *s, const uint8_t *p, size_t n)
{
    return strlen(s) == n && memcmp(s, p, n) == 0;
}

static void kill_one(void *arg, const struct resp_session *s)
{
    struct kill_ctx *k = arg;
    bool pubsub = s->nsubs || s->npsubs;
    if ((k->skipme && s == k->self) || k->type == 3 || (k->type == 1 && pubsub) || (k->type == 2 && !pubsub))
        return;
    if ((k->id && visible_id(s) != k->id) || (k->addr && !str_is(s->addr, k->addr, k->addr_len)) ||
        (k->laddr && !str_is(s->laddr, k->laddr, k->laddr_len)) ||
        (k->user && !str_is(s->user && s->user[0] ? s->user : "default", k->user, k->user_len)))
        return;
    k->killed++;
    if (s == k->self)
        k->self_killed = true; /* after its reply */
    else if (k->view && k->view->kill)
        k->view->kill(k->view->ctx, s);
}

/* CLIENT KILL ip:port (+OK or "No such client"), or CLIENT KILL with
 * filters ADDR, LADDR, ID, TYPE, USER, SKIPME (the number closed), as
 * Redis 7.0 with its errors. Closing the caller (SKIPME no, or the old
 * form naming it) closes it after this reply. */
static int cmd_client_kill(struct ctx *x, const struct cmd *cmd)
{
    const struct resp_session *s = x->s;
    struct kill_ctx k = {.self = s, .view = s->clients, .skipme = true};
    bool old = ARGC == 3;
    if (old) {
        k.addr = ARG(2);
        k.addr_len = LEN(2);
        k.skipme = false;
    }
    for (uint32_t i = 2; !old && i < ARGC; i += 2) {
        if (i + 1 >= ARGC)
            return local_err(x, "ERR syntax error");
        const uint8_t *v = ARG(i + 1);
        size_t vn = LEN(i + 1);
        if (eq_ci(ARG(i), LEN(i), "id")) {
            int64_t id;
            if (!rabia_kv_parse_int(v, vn, &id) || id <= 0)
                return local_err(x, "ERR client-id should be greater than 0");
            k.id = (uint64_t)id;
        } else if (eq_ci(ARG(i), LEN(i), "type")) {
            if ((k.type = client_type(v, vn)) < 0)
                return local_err_arg(x, "-ERR Unknown client type '", i + 1, 128);
        } else if (eq_ci(ARG(i), LEN(i), "addr")) {
            k.addr = v;
            k.addr_len = vn;
        } else if (eq_ci(ARG(i), LEN(i), "laddr")) {
            k.laddr = v;
            k.laddr_len = vn;
        } else if (eq_ci(ARG(i), LEN(i), "user")) {
            bool exists = s->clients && s->clients->user_exists ? s->clients->user_exists(s->clients->ctx, v, vn)
                                                                 : str_is("default", v, vn);
            if (!exists)
                return local_err_arg(x, "-ERR No such user '", i + 1, 128);
            k.user = v;
            k.user_len = vn;
        } else if (eq_ci(ARG(i), LEN(i), "skipme")) {
            if (eq_ci(v, vn, "yes"))
                k.skipme = true;
            else if (eq_ci(v, vn, "no"))
                k.skipme = false;
            else
                return local_err(x, "ERR syntax error");
        } else {
            return local_err(x, "ERR syntax error");
        }
    }
    if (s->clients && s->clients->each)
        s->clients->each(s->clients->ctx, kill_one, &k);
    else
        kill_one(&k, s);
    int rc;
    if (old)
        rc = k.killed ? resp_put_simple(x->out, "OK") : resp_put_error(x->out, "ERR No such client");
    else
        rc = resp_put_int(x->out, k.killed);
    if (rc)
        return -ENOMEM;
    return k.self_killed ? RESP_QUIT : RESP_LOCAL;
}

/* CLIENT NO-EVICT ON|OFF: this connection is never the one closed for
 * maxmemory-clients (its memory still counts), as Redis 7.0's. */
static int cmd_client_no_evict(struct ctx *x, const struct cmd *cmd)
{
    if (eq_ci(ARG(2), LEN(2), "on"))
        x->s->no_evict = true;
    else if (eq_ci(ARG(2), LEN(2), "off"))
        x->s->no_evict = false;
    else
        return local_err(x, "ERR syntax error");
    return local_ok(x);
}

/* CLIENT REPLY ON|OFF|SKIP, as Redis 7.0's: OFF and SKIP answer nothing
 * (the front end drops their replies and those they silence: a client
 * that sent OFF to load data without reading replies got an error, then
 * every reply; found by review), ON answers +OK. */
static int cmd_client_reply(struct ctx *x, const struct cmd *cmd)
{
    if (eq_ci(ARG(2), LEN(2), "on")) {
        x->s->reply_off = x->s->reply_skip = x->s->reply_skip_next = false;
        return local_ok(x);
    }
    if (eq_ci(ARG(2), LEN(2), "off"))
        x->s->reply_off = true;
    else if (eq_ci(ARG(2), LEN(2), "skip"))
        x->s->reply_skip = x->s->reply_skip_next = true;
    else
        return local_err(x, "ERR syntax error");
    return RESP_LOCAL;
}

/* Redis 7.2's CLIENT SETINFO (redis-py and go-redis send it on connect):
 * accepted, not kept. */
/* CLIENT UNBLOCK id [TIMEOUT|ERROR], Redis 7.0's replies and errors: a
 * connection of this replica parked in a blocking pop answers as at its
 * timeout (or UNBLOCKED's error), 1; else 0. Job queues stop blocked
 * workers with it; it was an unknown subcommand (found by review). */
struct unblock_ctx {
    const struct resp_clients *view;
    uint64_t id;
    bool error, done;
};

static void unblock_one(void *arg, const struct resp_session *s)
{
    struct unblock_ctx *u = arg;
    if (!u->done && visible_id(s) == u->id)
        u->done = u->view->unblock(u->view->ctx, s, u->error);
}

static int cmd_client_unblock(struct ctx *x, const struct cmd *cmd)
{
    (void)cmd;
    if (ARGC > 4) {
        int e = put_cstr(x->out, "-ERR unknown subcommand or wrong number of arguments for '");
        if (!e) e = put_sanitized(x->out, ARG(1), c_len(ARG(1), LEN(1), 128));
        if (!e) e = put_cstr(x->out, "'. Try CLIENT HELP.\r\n");
        return e ? -ENOMEM : RESP_LOCAL;
    }
    struct unblock_ctx u = {.view = x->s->clients};
    if (ARGC == 4) {
        if (eq_ci(ARG(3), LEN(3), "error"))
            u.error = true;
        else if (!eq_ci(ARG(3), LEN(3), "timeout"))
            return local_err(x, "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
    }
    int64_t id;
    if (!rabia_kv_parse_int(ARG(2), LEN(2), &id))
        return local_err(x, "ERR value is not an integer or out of range");
    u.id = (uint64_t)id;
    if (id > 0 && u.view && u.view->each && u.view->unblock)
        u.view->each(u.view->ctx, unblock_one, &u);
    return resp_put_int(x->out, u.done) ? -ENOMEM : RESP_LOCAL;
}

static int cmd_client_setinfo(struct ctx *x, const struct cmd *cmd)
{
    if (eq_ci(ARG(2), LEN(2), "lib-name") || eq_ci(ARG(2), LEN(2), "lib-ver"))
        return local_ok(x);
    return local_err_arg(x, "-ERR Unrecognized option '", 2, 128);
}

/* ====================================================================== */
/* RESP3 conversion of replicated results                                  */

#define R3_MAX_DEPTH 32
#define R3_EACH_TAIL_DOUBLE 0x80 /* internal: an array of R3_TAIL_DOUBLE (ZMPOP's pairs) */
#define R3_TAIL_DOUBLE_ARRAY 0x81 /* internal: an array whose last element is an R3_DOUBLE_ARRAY (one WITHCOORD result) */

struct r3 {
    const uint8_t *p;
    size_t len, at;       /* p[at..len): not read yet */
    struct rabia_buf *out;
    const uint8_t *kinds; /* EXEC: the queued commands' kinds */
    size_t nkinds;
};

static int r3_value(struct r3 *r, uint8_t kind, unsigned depth);

/* The integer of the header line at r->at (type byte, digits, CRLF): true
 * with *v and *next (the byte after the CRLF), or false. */
static bool r3_header(const struct r3 *r, int64_t *v, size_t *next)
{
    size_t from = r->at + 1;
    const uint8_t *cr = from < r->len ? memchr(r->p + from, '\r', r->len - from) : NULL;
    if (!cr)
        return false;
    size_t i = (size_t)(cr - r->p);
    if (i + 1 >= r->len || r->p[i + 1] != '\n' || !rabia_kv_parse_int(r->p + from, i - from, v) || *v < -1)
        return false;
    *next = i + 2;
    return true;
}

/* Redis 7.0's text of a double (%.17g, or "inf", "-inf"): [-] digits
 * [. digits] [e[+-]digits], or [-]inf. */
static bool r3_double_text(const uint8_t *p, size_t n)
{
    size_t i = 0;
    if (i < n && p[i] == '-')
        i++;
    if (n - i == 3 && memcmp(p + i, "inf", 3) == 0)
        return true;
    size_t d = i;
    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++;
    if (i == d)
        return false;
    if (i < n && p[i] == '.') {
        d = ++i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        d = i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    return i == n;
}

/* n elements at r->at, the array's kind: the aggregate header, then each
 * element by its own kind. 0, 1 (cannot parse) or -ENOMEM. */
static int r3_array(struct r3 *r, uint8_t kind, uint64_t n, unsigned depth)
{
    int rc;
    char type = '*';
    uint64_t count = n;
    switch (kind) {
    case R3_MAP:
    case R3_SCORED:
    case R3_PAIRS:
        if (n % 2)
            return 1;
        count = n / 2;
        type = kind == R3_MAP ? '%' : '*';
        break;
    case R3_SET:
        type = '~';
        break;
    default:
        break;
    }
    if (put_agg(r->out, type, count))
        return -ENOMEM;
    bool exec = kind == R3_EXEC && depth == 0 && r->kinds && r->nkinds == n;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t k = R3_PLAIN;
        switch (kind) {
        case R3_DOUBLE_ARRAY:
            k = R3_DOUBLE;
            break;
        case R3_SCORED:
        case R3_PAIRS:
            if (i % 2 == 0 && put_cstr(r->out, "*2\r\n"))
                return -ENOMEM;
            k = kind == R3_SCORED && i % 2 ? R3_DOUBLE : R3_PLAIN;
            break;
        case R3_TAIL_DOUBLE:
            k = i == n - 1 ? R3_DOUBLE : R3_PLAIN;
            break;
        case R3_MPOP:
            k = i == 1 ? R3_EACH_TAIL_DOUBLE : R3_PLAIN;
            break;
        case R3_EACH_TAIL_DOUBLE:
            k = R3_TAIL_DOUBLE;
            break;
        case R3_GEOPOS:
            k = R3_DOUBLE_ARRAY;
            break;
        case R3_GEOCOORD:
            k = R3_TAIL_DOUBLE_ARRAY;
            break;
        case R3_TAIL_DOUBLE_ARRAY:
            k = i == n - 1 ? R3_DOUBLE_ARRAY : R3_PLAIN;
            break;
        case R3_EXEC:
            k = exec ? r->kinds[i] : R3_PLAIN;
            break;
        default:
            break;
        }
        if ((rc = r3_value(r, k, depth + 1)))
            return rc;
    }
    return 0;
}

/* One RESP2 value at r->at in the given kind. 0, 1 (cannot parse) or
 * -ENOMEM. */
static int r3_value(struct r3 *r, uint8_t kind, unsigned depth)
{
    if (r->at >= r->len || depth > R3_MAX_DEPTH)
        return 1;
    size_t start = r->at, next;
    int64_t n;
    switch (r->p[start]) {
    case '+':
    case '-':
    case ':': { /* one line; an integer's digits canonical */
        const uint8_t *cr = memchr(r->p + start, '\r', r->len - start);
        if (!cr || (size_t)(cr - r->p) + 1 >= r->len || cr[1] != '\n')
            return 1;
        size_t body = (size_t)(cr - r->p) - start - 1;
        if (memchr(r->p + start + 1, '\n', body) ||
            (r->p[start] == ':' && !rabia_kv_parse_int(r->p + start + 1, body, &n)))
            return 1;
        r->at = (size_t)(cr - r->p) + 2;
        return put(r->out, r->p + start, r->at - start) ? -ENOMEM : 0;
    }
    case '$':
        if (!r3_header(r, &n, &next))
            return 1;
        if (n == -1) {
            r->at = next;
            return put_cstr(r->out, "_\r\n") ? -ENOMEM : 0;
        }
        if ((uint64_t)n > r->len - next || r->len - next - (size_t)n < 2 || r->p[next + (size_t)n] != '\r' ||
            r->p[next + (size_t)n + 1] != '\n')
            return 1;
        r->at = next + (size_t)n + 2;
        if (kind != R3_DOUBLE)
            return put(r->out, r->p + start, r->at - start) ? -ENOMEM : 0;
        /* Redis 7.0 writes a double's text (%.17g, "inf", "-inf") the same
         * way in both: "$<n>\r\n<text>\r\n" becomes ",<text>\r\n" */
        if (!r3_double_text(r->p + next, (size_t)n))
            return 1;
        if (put(r->out, ",", 1) || put(r->out, r->p + next, (size_t)n) || put(r->out, "\r\n", 2))
            return -ENOMEM;
        return 0;
    case '*':
        if (!r3_header(r, &n, &next))
            return 1;
        r->at = next;
        if (n == -1)
            return put_cstr(r->out, "_\r\n") ? -ENOMEM : 0;
        if ((uint64_t)n > (r->len - next) / 3) /* every element takes 3 bytes at least */
            return 1;
        return r3_array(r, kind, (uint64_t)n, depth);
    default: /* not a RESP2 type */
        return 1;
    }
}

static int convert(uint8_t kind, const uint8_t *kinds, size_t nkinds, const uint8_t *r2, size_t len,
                   struct rabia_buf *out)
{
    size_t at0 = out->len;
    if (kind != R3_NONE) {
        struct r3 r = {r2, len, 0, out, kinds, nkinds};
        int rc = r3_value(&r, kind, 0);
        if (rc == 0 && r.at == len)
            return 0;
        out->len = at0;
        if (rc < 0)
            return rc;
    }
    return put(out, r2, len);
}

int resp3_convert(uint8_t kind, const uint8_t *r2, size_t len, struct rabia_buf *out)
{
    return convert(kind, NULL, 0, r2, len, out);
}

int resp3_convert_exec(const uint8_t *kinds, size_t nkinds, const uint8_t *r2, size_t len,
                       struct rabia_buf *out)
{
    return convert(R3_EXEC, kinds, nkinds, r2, len, out);
}

/* ====================================================================== */
/* Dispatch                                                                */

static bool arity_ok(const struct cmd *c, uint32_t argc)
{
    return c->arity > 0 ? argc == (uint32_t)c->arity : argc >= (uint32_t)-c->arity;
}

static int dispatch(struct ctx *x)
{
    struct resp_session *s = x->s;
    if (ARGC == 0)
        return local_err(x, "ERR empty command");
    const struct cmd *cmd = find_cmd(ARG(0), LEN(0));
    if (!cmd)
        return reject_unknown(x);
    if (!cmd_visible(s, cmd)) /* refused here rather than decided: the store would answer plain
                                 "unknown command" (kv/features.c) */
        return reject_level(x, cmd, cmd_level(cmd), __atomic_load_n(s->feature_level, __ATOMIC_RELAXED));
    s->last_cmd = cmd->name;
    s->post = RESP_POST_NONE;
    s->r3 = R3_NONE;
    s->barrier = false;
    if (cmd->subs && ARGC >= 2) {
        cmd = lookup(cmd->subs, cmd->nsubs, ARG(1), LEN(1));
        if (!cmd)
            return reject_unknown_sub(x);
        s->last_cmd = cmd->name;
    }
    if (!arity_ok(cmd, ARGC)) {
        if (s->in_multi && cmd->fn == cmd_exec) {
            /* Redis 7: a rejected EXEC aborts the transaction at once. */
            multi_discard(s);
            return arity_text(x->out, "-EXECABORT Transaction discarded because of: ", "exec")
                       ? -ENOMEM
                       : RESP_LOCAL;
        }
        return reject_arity(x, cmd->name);
    }
    /* RESP2's subscribed mode; a RESP3 connection may run anything. After
     * the subcommand and arity checks, as Redis 7.0: its error names the
     * subcommand ('client|id'; it named 'client'), and an unknown
     * subcommand or a wrong arity gets its own error first */
    if ((s->nsubs || s->npsubs) && s->proto == 2 && !allowed_subscribed(cmd)) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are "
                 "allowed in this context",
                 cmd->name);
        return local_err(x, msg);
    }
    if (s->in_multi && !(cmd->flags & F_NOW)) {
        if (cmd->fn == cmd_select) { /* checked at EXEC, as Redis: a bad one is an error there */
            int64_t db;
            if (rabia_kv_parse_int(ARG(1), LEN(1), &db) && db >= 0 && db < N_DBS)
                s->multi_db = (uint32_t)db;
        }
        if (cmd->kind == K_REPL || (cmd->flags & F_QUEUE))
            return queue(x, cmd);
        /* Redis queues it and answers it in EXEC's array; here the
         * connection's own commands are answered at once, never at EXEC
         * (kv/README.md "Differences"). Redis's "Command not allowed inside
         * a transaction" named neither which command nor what to do, and
         * redis-py's default pipeline is a MULTI (found by review). */
        char msg[300];
        snprintf(msg, sizeof msg,
                 "ERR '%s' cannot be queued inside MULTI on this server: it answers the connection's own "
                 "commands at once, not at EXEC. Send it before MULTI or after EXEC (redis-py: "
                 "pipeline(transaction=False))",
                 cmd->name);
        return reject(x, msg);
    }
    switch (cmd->kind) {
    case K_REPL:
        return replicate(x, cmd);
    case K_INFO:
        return RESP_INFO;
    default:
        return cmd->fn(x, cmd);
    }
}

int resp_command_meta(const struct resp_argv *c, struct resp_cmd_meta *m)
{
    if (c->argc == 0)
        return 0;
    const struct cmd *cmd = find_cmd(c->argv[0], c->argv_len[0]);
    if (cmd && cmd->subs && c->argc >= 2)
        cmd = lookup(cmd->subs, cmd->nsubs, c->argv[1], c->argv_len[1]);
    if (!cmd || !arity_ok(cmd, c->argc))
        return 0;
    *m = (struct resp_cmd_meta){.fullname = cmd->name,
                                .readonly = cmd->flags & F_READONLY,
                                .write = cmd->flags & F_WRITE,
                                .fast = cmd->flags & F_FAST,
                                .pubsub = cmd->flags & F_PUBSUB,
                                .is_exec = cmd->fn == cmd_exec,
                                .first = cmd->first,
                                .last = cmd->last,
                                .step = cmd->step};
    return 1;
}

int resp_command_known(const char *name)
{
    size_t tl = strcspn(name, "|");
    const struct cmd *cmd = find_cmd((const uint8_t *)name, tl);
    if (!cmd)
        return 0;
    if (!name[tl])
        return 1;
    if (!cmd->subs)
        return -1;
    const char *sub = name + tl + 1;
    return lookup(cmd->subs, cmd->nsubs, (const uint8_t *)sub, strlen(sub)) ? 1 : -2;
}

void resp_multi_discard(struct resp_session *s)
{
    multi_discard(s);
}

int resp_handle(struct resp_session *s, const struct resp_argv *c, struct rabia_buf *local_reply,
                struct rabia_buf *op)
{
    size_t out0 = local_reply->len, op0 = op->len;
    struct ctx x = {s, c, local_reply, op};
    int rc = dispatch(&x);
    if (rc < 0) {
        local_reply->len = out0;
        op->len = op0;
        return RESP_CLOSE;
    }
    return rc;
}
