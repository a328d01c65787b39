/* kv/reply.c: RESP2 replies as Redis 7.0 writes them. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Whether n more bytes of reply may be written: from KV_LEVEL_REPLY_BOUND
 * a reply stops at KV_REPLY_MAX bytes (every replica builds it: MGET of one
 * large key a million times would take more memory than any has). Past it
 * the command's writes are dropped (reply_over), the command runs to its
 * end, and kv_run replaces what it wrote by an error. */
static bool room(struct kv_ctx *c, size_t n)
{
    struct kv_store *s = c->s;
    if (!s || s->feature_level < KV_LEVEL_REPLY_BOUND) /* (a transaction's header: no store) */
        return true;
    if (!s->reply_over && n <= KV_REPLY_MAX && c->out->len <= KV_REPLY_MAX - n)
        return true;
    s->reply_over = true;
    return false;
}

static int put(struct kv_ctx *c, const void *p, size_t n)
{
    return room(c, n) ? rabia_buf_append(c->out, p, n) : 0;
}

static int line(struct kv_ctx *c, char type, const char *s)
{
    size_t n = strlen(s);
    if (!room(c, n + 3))
        return 0;
    int rc = rabia_buf_reserve(c->out, n + 3);
    if (rc)
        return rc;
    rabia_buf_put_u8(c->out, (uint8_t)type);
    /* A reply line must stay one line: CR and LF become spaces, as Redis
     * does with user bytes in errors. */
    size_t at = c->out->len;
    rabia_buf_append(c->out, s, n);
    for (size_t i = at; i < c->out->len; i++)
        if (c->out->data[i] == '\r' || c->out->data[i] == '\n')
            c->out->data[i] = ' ';
    return put(c, "\r\n", 2);
}

int kv_reply_ok(struct kv_ctx *c) { return put(c, "+OK\r\n", 5); }
int kv_reply_status(struct kv_ctx *c, const char *s) { return line(c, '+', s); }
int kv_reply_err(struct kv_ctx *c, const char *msg) { return line(c, '-', msg); }

int kv_reply_errf(struct kv_ctx *c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k < sizeof buf)
        return line(c, '-', k < 0 ? "ERR" : buf);
    /* longer (a script's error quotes what the script raised): whole */
    char *big = malloc((size_t)k + 1);
    if (!big)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    int rc = line(c, '-', big);
    free(big);
    return rc;
}

static int num(struct kv_ctx *c, char type, int64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%c%" PRId64 "\r\n", type, v);
    return put(c, buf, (size_t)n);
}

int kv_reply_int(struct kv_ctx *c, int64_t v) { return num(c, ':', v); }
int kv_reply_array(struct kv_ctx *c, uint64_t n) { return num(c, '*', (int64_t)n); }
int kv_reply_null(struct kv_ctx *c) { return put(c, "$-1\r\n", 5); }
int kv_reply_null_array(struct kv_ctx *c) { return put(c, "*-1\r\n", 5); }

int kv_reply_bulk(struct kv_ctx *c, const void *p, size_t n)
{
    if (!room(c, n + 32))
        return 0;
    int rc = rabia_buf_reserve(c->out, n + 32);
    if (rc)
        return rc;
    num(c, '$', (int64_t)n); /* reserved: cannot fail */
    if (n)
        put(c, p, n);
    return put(c, "\r\n", 2);
}

int kv_reply_cstr(struct kv_ctx *c, const char *s) { return kv_reply_bulk(c, s, strlen(s)); }

int kv_reply_double(struct kv_ctx *c, double d)
{
    char buf[64];
    int n = kv_fmt_double(buf, d);
    return kv_reply_bulk(c, buf, (size_t)n);
}

size_t kv_reply_defer(struct kv_ctx *c)
{
    return c->out->len;
}

int kv_reply_set_len(struct kv_ctx *c, size_t mark, uint64_t n)
{
    RABIA_ASSERT(mark <= c->out->len);
    char hdr[32];
    int h = snprintf(hdr, sizeof hdr, "*%" PRIu64 "\r\n", n);
    if (!room(c, (size_t)h))
        return 0;
    int rc = rabia_buf_reserve(c->out, (size_t)h);
    if (rc)
        return rc;
    memmove(c->out->data + mark + h, c->out->data + mark, c->out->len - mark);
    memcpy(c->out->data + mark, hdr, (size_t)h);
    c->out->len += (size_t)h;
    return 0;
}

int kv_reply_arity(struct kv_ctx *c)
{
    char name[64];
    size_t n = c->len[0] < sizeof name - 1 ? c->len[0] : sizeof name - 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = c->argv[0][i];
        name[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
    }
    name[n] = 0;
    return kv_reply_errf(c, "ERR wrong number of arguments for '%s' command", name);
}
