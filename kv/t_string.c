/* kv/t_string.c: the string commands, as Redis 7.0's t_string.c answers
 * them, and the string type's operations.
 *
 * A string is a struct kv_obj (KV_STRING) holding its bytes inline, so a
 * change of length reallocates the object and the key's entry is pointed
 * at the new one. Redis keeps small integers in an "int" encoding; that is
 * invisible in replies, so here every string is plain bytes (enc 0).
 *
 * Helpers that may reply an error return 0 to go on, 1 when they replied
 * (the command then returns 0), or -ENOMEM; DONE() turns that into the
 * command's return value. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define LD_MAX_CHARS 5120              /* Redis's MAX_LONG_DOUBLE_CHARS */
#define ERR_TOO_BIG "ERR string exceeds maximum allowed size (proto-max-bulk-len)"

#define DONE(rc) ((rc) < 0 ? (rc) : 0)

/* An error reply, as a helper's result. */
static int fail(struct kv_ctx *c, const char *msg)
{
    int rc = kv_reply_err(c, msg);
    return rc < 0 ? rc : 1;
}

static struct kv_obj *obj(const struct kv_dent *e)
{
    return e->v.p;
}

/* e is absent or holds a string. */
static int check_str(struct kv_ctx *c, const struct kv_dent *e)
{
    return !e || obj(e)->type == KV_STRING ? 0 : fail(c, KV_ERR_WRONGTYPE);
}

static int arg_int(struct kv_ctx *c, uint32_t i, int64_t *v)
{
    return kv_parse_i64(c->argv[i], c->len[i], v) ? 0 : fail(c, KV_ERR_NOTINT);
}

static int reply_str(struct kv_ctx *c, const struct kv_dent *e)
{
    return e ? kv_reply_bulk(c, obj(e)->str, obj(e)->len) : kv_reply_null(c);
}

/* ------------------------------------------------------------------ */
/* SET and GETEX options (Redis's parseExtendedStringArgumentsOrReply). */

enum {
    F_NX = 1 << 0,
    F_XX = 1 << 1,
    F_GET = 1 << 2,
    F_KEEPTTL = 1 << 3,
    F_PERSIST = 1 << 4,
    F_EX = 1 << 5,
    F_PX = 1 << 6,
    F_EXAT = 1 << 7,
    F_PXAT = 1 << 8,
    F_EXPIRE = F_EX | F_PX | F_EXAT | F_PXAT,
};

struct str_opts {
    unsigned flags;
    uint32_t expire_arg; /* the argument holding the time; 0: none */
};

/* Redis compares options as C strings: "nx\0junk" is NX. */
static bool opt_is(const struct kv_ctx *c, uint32_t i, const char *name)
{
    const uint8_t *z = memchr(c->argv[i], 0, c->len[i]);
    return kv_eq(c->argv[i], z ? (size_t)(z - c->argv[i]) : c->len[i], name);
}

static unsigned expire_opt(const struct kv_ctx *c, uint32_t i)
{
    if (opt_is(c, i, "ex"))
        return F_EX;
    if (opt_is(c, i, "px"))
        return F_PX;
    if (opt_is(c, i, "exat"))
        return F_EXAT;
    if (opt_is(c, i, "pxat"))
        return F_PXAT;
    return 0;
}

/* Options from argument `from`; SET's (set) or GETEX's. A repeated option
 * is accepted, conflicting ones are a syntax error, as in Redis. */
static int parse_opts(struct kv_ctx *c, uint32_t from, bool set, struct str_opts *o)
{
    *o = (struct str_opts){0};
    for (uint32_t j = from; j < c->argc; j++) {
        unsigned f = o->flags, unit;
        if (set && opt_is(c, j, "nx") && !(f & F_XX)) {
            o->flags |= F_NX;
        } else if (set && opt_is(c, j, "xx") && !(f & F_NX)) {
            o->flags |= F_XX;
        } else if (set && opt_is(c, j, "get")) {
            o->flags |= F_GET;
        } else if (set && opt_is(c, j, "keepttl") && !(f & (F_PERSIST | F_EXPIRE))) {
            o->flags |= F_KEEPTTL;
        } else if (!set && opt_is(c, j, "persist") && !(f & (F_KEEPTTL | F_EXPIRE))) {
            o->flags |= F_PERSIST;
        } else if ((unit = expire_opt(c, j)) != 0 &&
                   !(f & (F_KEEPTTL | F_PERSIST | (F_EXPIRE & ~unit))) && j + 1 < c->argc) {
            o->flags |= unit;
            o->expire_arg = ++j;
        } else {
            return fail(c, KV_ERR_SYNTAX);
        }
    }
    return 0;
}

/* The absolute expiry (Unix ms) that argument i gives with unit (one of
 * F_EXPIRE), as Redis's getExpireMillisecondsOrReply: positive, and no
 * overflow once made milliseconds and absolute. */
static int expire_at(struct kv_ctx *c, uint32_t i, unsigned unit, const char *cmd, uint64_t *out)
{
    int64_t v;
    int rc = arg_int(c, i, &v);
    if (rc)
        return rc;
    bool secs = unit & (F_EX | F_EXAT);
    if (v <= 0 || (secs && v > INT64_MAX / 1000))
        goto bad;
    if (secs)
        v *= 1000;
    if (unit & (F_EX | F_PX)) {
        if (c->s->now_ms > (uint64_t)(INT64_MAX - v))
            goto bad;
        v += (int64_t)c->s->now_ms;
    }
    *out = (uint64_t)v;
    return 0;
bad:
    rc = kv_reply_errf(c, "ERR invalid expire time in '%s' command", cmd);
    return rc < 0 ? rc : 1;
}

/* ------------------------------------------------------------------ */
/* GET, SET and their variants.                                         */

KV_CMD(get)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    int rc = check_str(c, e);
    return rc ? DONE(rc) : reply_str(c, e);
}

/* Redis's setGenericCommand: key argument 1, value argument vi; int_reply
 * for SETNX's :1 / :0 instead of OK / nil. */
static int set_generic(struct kv_ctx *c, const struct str_opts *o, uint32_t vi, const char *cmd,
                       bool int_reply)
{
    uint64_t when = 0;
    int rc;
    if (o->expire_arg && (rc = expire_at(c, o->expire_arg, o->flags & F_EXPIRE, cmd, &when)))
        return DONE(rc);
    struct kv_dent *e = kv_find_arg(c, 1);
    if (o->flags & F_GET) {
        if ((rc = check_str(c, e)))
            return DONE(rc);
        if ((rc = reply_str(c, e)))
            return rc;
    }
    if (((o->flags & F_NX) && e) || ((o->flags & F_XX) && !e)) {
        if (o->flags & F_GET)
            return 0;
        return int_reply ? kv_reply_int(c, 0) : kv_reply_null(c);
    }
    struct kv_obj *v = kv_str_new(c->s, c->argv[vi], c->len[vi]);
    if (!v)
        return -ENOMEM;
    if (e)
        /* a new expiry replaces the old one below: no need to drop it */
        kv_replace(c, e, v, (o->flags & F_KEEPTTL) || when);
    else if (!(e = kv_add(c, c->argv[1], c->len[1], v)))
        return -ENOMEM;
    if (when && (rc = kv_set_expire(c, e, when)))
        return rc;
    if (o->flags & F_GET)
        return 0;
    return int_reply ? kv_reply_int(c, 1) : kv_reply_ok(c);
}

KV_CMD(set)
{
    struct str_opts o;
    int rc = parse_opts(c, 3, true, &o);
    return rc ? DONE(rc) : set_generic(c, &o, 2, "set", false);
}

KV_CMD(setnx)
{
    struct str_opts o = {.flags = F_NX};
    return set_generic(c, &o, 2, "setnx", true);
}

KV_CMD(setex)
{
    struct str_opts o = {.flags = F_EX, .expire_arg = 2};
    return set_generic(c, &o, 3, "setex", false);
}

KV_CMD(psetex)
{
    struct str_opts o = {.flags = F_PX, .expire_arg = 2};
    return set_generic(c, &o, 3, "psetex", false);
}

KV_CMD(getset)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    int rc = check_str(c, e);
    if (rc)
        return DONE(rc);
    struct kv_obj *v = kv_str_new(c->s, c->argv[2], c->len[2]);
    if (!v)
        return -ENOMEM;
    if ((rc = reply_str(c, e))) {
        kv_obj_free(c->s, v);
        return rc;
    }
    if (e)
        kv_replace(c, e, v, false);
    else if (!kv_add(c, c->argv[1], c->len[1], v))
        return -ENOMEM;
    return 0;
}

KV_CMD(getdel)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    int rc = check_str(c, e);
    if (rc)
        return DONE(rc);
    if ((rc = reply_str(c, e)) || !e)
        return rc;
    kv_delete(c, e);
    return 0;
}

KV_CMD(getex)
{
    struct str_opts o;
    int rc = parse_opts(c, 2, false, &o);
    if (rc)
        return DONE(rc);
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!e)
        return kv_reply_null(c);
    if ((rc = check_str(c, e)))
        return DONE(rc);
    uint64_t when = 0;
    if (o.expire_arg && (rc = expire_at(c, o.expire_arg, o.flags & F_EXPIRE, "getex", &when)))
        return DONE(rc);
    if ((rc = reply_str(c, e)))
        return rc;
    if ((o.flags & (F_EXAT | F_PXAT)) && when <= c->s->now_ms)
        kv_delete(c, e); /* an absolute time already past: Redis deletes at once */
    else if (when)
        return kv_set_expire(c, e, when);
    else if ((o.flags & F_PERSIST) && e->x)
        return kv_set_expire(c, e, 0);
    return 0;
}

KV_CMD(mget)
{
    int rc = kv_reply_array(c, c->argc - 1);
    for (uint32_t i = 1; i < c->argc && rc == 0; i++) {
        struct kv_dent *e = kv_find_arg(c, i);
        rc = reply_str(c, e && obj(e)->type == KV_STRING ? e : NULL);
    }
    return rc;
}

static int mset_generic(struct kv_ctx *c, bool nx)
{
    if (c->argc % 2 == 0)
        return kv_reply_arity(c);
    if (nx)
        for (uint32_t i = 1; i < c->argc; i += 2)
            if (kv_find_arg(c, i))
                return kv_reply_int(c, 0);
    for (uint32_t i = 1; i < c->argc; i += 2) {
        struct kv_obj *v = kv_str_new(c->s, c->argv[i + 1], c->len[i + 1]);
        if (!v)
            return -ENOMEM;
        int rc = kv_set(c, c->argv[i], c->len[i], v, false);
        if (rc)
            return rc;
    }
    return nx ? kv_reply_int(c, 1) : kv_reply_ok(c);
}

KV_CMD(mset)
{
    return mset_generic(c, false);
}

KV_CMD(msetnx)
{
    return mset_generic(c, true);
}

/* ------------------------------------------------------------------ */
/* Lengths and ranges.                                                 */

KV_CMD(append)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    int rc = check_str(c, e);
    if (rc)
        return DONE(rc);
    if (!e) {
        struct kv_obj *v = kv_str_new(c->s, c->argv[2], c->len[2]);
        if (!v || !(e = kv_add(c, c->argv[1], c->len[1], v)))
            return -ENOMEM;
        return kv_reply_int(c, c->len[2]);
    }
    struct kv_obj *o = obj(e);
    uint64_t len = (uint64_t)o->len + c->len[2];
    if (len > KV_STR_MAX)
        return DONE(fail(c, ERR_TOO_BIG));
    uint32_t at = o->len;
    if (!(o = kv_str_resize(c->s, o, len)))
        return -ENOMEM;
    if (c->len[2])
        memcpy(o->str + at, c->argv[2], c->len[2]);
    e->v.p = o;
    kv_touch(c, e);
    return kv_reply_int(c, (int64_t)len);
}

KV_CMD(strlen)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    int rc = check_str(c, e);
    return rc ? DONE(rc) : kv_reply_int(c, e ? obj(e)->len : 0);
}

KV_CMD(getrange)
{
    int64_t start, end;
    int rc;
    if ((rc = arg_int(c, 2, &start)) || (rc = arg_int(c, 3, &end)))
        return DONE(rc);
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!e)
        return kv_reply_bulk(c, "", 0);
    if ((rc = check_str(c, e)))
        return DONE(rc);
    const struct kv_obj *o = obj(e);
    int64_t n = o->len;
    if (start < 0 && end < 0 && start > end)
        return kv_reply_bulk(c, "", 0);
    if (start < 0)
        start += n;
    if (end < 0)
        end += n;
    if (start < 0)
        start = 0;
    if (end < 0)
        end = 0;
    if (end >= n)
        end = n - 1;
    if (start > end || n == 0)
        return kv_reply_bulk(c, "", 0);
    return kv_reply_bulk(c, o->str + start, (size_t)(end - start + 1));
}

KV_CMD(setrange)
{
    int64_t off;
    int rc = arg_int(c, 2, &off);
    if (rc)
        return DONE(rc);
    if (off < 0)
        return DONE(fail(c, "ERR offset is out of range"));
    const uint8_t *v = c->argv[3];
    uint32_t vn = c->len[3];
    struct kv_dent *e = kv_find_arg(c, 1);
    if ((rc = check_str(c, e)))
        return DONE(rc);
    if (vn == 0) /* nothing to write: nothing created either */
        return kv_reply_int(c, e ? obj(e)->len : 0);
    if ((uint64_t)off + vn > KV_STR_MAX)
        return DONE(fail(c, ERR_TOO_BIG));
    uint64_t end = (uint64_t)off + vn;
    struct kv_obj *o;
    if (!e) {
        struct kv_obj *empty = kv_str_new(c->s, v, 0);
        if (!empty)
            return -ENOMEM;
        if (!(o = kv_str_resize(c->s, empty, end))) {
            kv_obj_free(c->s, empty);
            return -ENOMEM;
        }
        memcpy(o->str + off, v, vn);
        if (!kv_add(c, c->argv[1], c->len[1], o))
            return -ENOMEM;
        return kv_reply_int(c, (int64_t)end);
    }
    o = obj(e);
    if (end > o->len && !(o = kv_str_resize(c->s, o, end)))
        return -ENOMEM;
    memcpy(o->str + off, v, vn);
    e->v.p = o;
    kv_touch(c, e);
    return kv_reply_int(c, o->len);
}

/* ------------------------------------------------------------------ */
/* Counters.                                                           */

/* Store the new value text in key argument 1 (e its entry or NULL),
 * keeping its expiry, as Redis's dbOverwrite. */
static int store_number(struct kv_ctx *c, struct kv_dent *e, const char *p, size_t n)
{
    struct kv_obj *v = kv_str_new(c->s, (const uint8_t *)p, n);
    if (!v)
        return -ENOMEM;
    if (e)
        kv_replace(c, e, v, true);
    else if (!kv_add(c, c->argv[1], c->len[1], v))
        return -ENOMEM;
    return 0;
}

static int incr_generic(struct kv_ctx *c, int64_t incr)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    int rc = check_str(c, e);
    if (rc)
        return DONE(rc);
    int64_t v = 0;
    if (e && !kv_parse_i64(obj(e)->str, obj(e)->len, &v))
        return DONE(fail(c, KV_ERR_NOTINT));
    if ((incr < 0 && v < 0 && incr < INT64_MIN - v) || (incr > 0 && v > 0 && incr > INT64_MAX - v))
        return DONE(fail(c, KV_ERR_OVERFLOW));
    v += incr;
    char buf[64];
    int n = kv_fmt_i64(buf, v);
    if ((rc = store_number(c, e, buf, (size_t)n)))
        return rc;
    return kv_reply_int(c, v);
}

KV_CMD(incr)
{
    return incr_generic(c, 1);
}

KV_CMD(decr)
{
    return incr_generic(c, -1);
}

KV_CMD(incrby)
{
    int64_t by;
    int rc = arg_int(c, 2, &by);
    return rc ? DONE(rc) : incr_generic(c, by);
}

KV_CMD(decrby)
{
    int64_t by;
    int rc = arg_int(c, 2, &by);
    if (rc)
        return DONE(rc);
    if (by == INT64_MIN)
        return DONE(fail(c, "ERR decrement would overflow"));
    return incr_generic(c, -by);
}

/* Redis's string2ld with its own buffer size: kv_parse_long_double stops
 * at 320 bytes, but INCRBYFLOAT writes (and must read back) values with
 * hundreds of digits. */
static bool parse_ld(const uint8_t *p, size_t n, long double *out)
{
    char buf[LD_MAX_CHARS];
    if (n == 0 || n >= sizeof buf || memchr(p, 0, n))
        return false;
    memcpy(buf, p, n);
    buf[n] = 0;
    if (isspace((unsigned char)buf[0]))
        return false;
    char *end;
    errno = 0;
    long double v = strtold(buf, &end);
    if (*end || isnan(v) ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)))
        return false;
    *out = v;
    return true;
}

KV_CMD(incrbyfloat)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    int rc = check_str(c, e);
    if (rc)
        return DONE(rc);
    long double v = 0, by;
    if ((e && !parse_ld(obj(e)->str, obj(e)->len, &v)) || !parse_ld(c->argv[2], c->len[2], &by))
        return DONE(fail(c, KV_ERR_NOTFLOAT));
    v += by;
    if (isnan(v) || isinf(v))
        return DONE(fail(c, "ERR increment would produce NaN or Infinity"));
    /* Redis replies with the object it stored: store the reply's text
     * (formatted once, in util.c, for every length), from a buffer of our
     * own: a reply over KV_REPLY_MAX is not written (kv_run) */
    char text[KV_LD_MAX_CHARS];
    size_t n = kv_fmt_long_double_human(text, v);
    if ((rc = kv_reply_bulk(c, text, n)))
        return rc;
    return store_number(c, e, text, n);
}

/* ------------------------------------------------------------------ */
/* The type's operations.                                              */

static void str_free(struct kv_store *s, struct kv_obj *o)
{
    kv_free(s, o);
}

static int str_save(struct kv_store *s, const struct kv_obj *o, struct rabia_buf *out)
{
    int rc = kv_wr_u8(out, o->enc);
    return rc ? rc : kv_wr_str(out, o->str, o->len);
}

static int str_load(struct kv_store *s, struct kv_rd *rd, struct kv_obj **out)
{
    uint8_t enc;
    const uint8_t *p;
    uint32_t n;
    *out = NULL;
    if (!kv_rd_u8(rd, &enc) || enc != 0 || !kv_rd_str(rd, &p, &n))
        return -EINVAL;
    *out = kv_str_new(s, p, n);
    return *out ? 0 : -ENOMEM;
}

static int str_copy(struct kv_store *s, const struct kv_obj *o, struct kv_obj **out)
{
    *out = kv_str_new(s, o->str, o->len);
    return *out ? 0 : -ENOMEM;
}

/* What the object needs, not what the allocator gave (that may differ
 * between replicas whose strings grew differently): MEMORY USAGE is a
 * reply. */
static uint64_t str_len(const struct kv_obj *o)
{
    return o->len;
}

static uint64_t str_mem(const struct kv_obj *o)
{
    return sizeof *o + (uint64_t)o->len + 1;
}

const struct kv_type_ops kv_string_ops = {
    .name = "string",
    .free = str_free,
    .save = str_save,
    .load = str_load,
    .copy = str_copy,
    .mem = str_mem,
    .len = str_len,
};

/* LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN] (feature
 * level 4), as Redis 7.0's lcsCommand: the dynamic programming table of
 * (len1 + 1) x (len2 + 1) 32-bit cells, refused past proto-max-bulk-len
 * bytes (512 MiB: two strings of about 11,500 bytes; such a table took
 * redis-server 2.4 s, and takes each replica about as long), walked back
 * from its end the way Redis walks it so that the string and the ranges
 * are Redis's among the several a pair may have. The table is not the
 * state's: a failed allocation stops the replica (-ENOMEM) instead of
 * answering an error another replica would not (a script may store the
 * answer). */
#ifndef LCS_TABLE_MAX /* the fuzz targets lower it, as KV_STR_MAX */
#define LCS_TABLE_MAX (512ull * 1024 * 1024)
#endif

KV_CMD(lcs)
{
    struct kv_dent *ea = kv_find_arg(c, 1), *eb = kv_find_arg(c, 2);
    if ((ea && obj(ea)->type != KV_STRING) || (eb && obj(eb)->type != KV_STRING))
        return kv_reply_err(c, "ERR The specified keys must contain string values");
    const uint8_t *a = ea ? obj(ea)->str : (const uint8_t *)"", *b = eb ? obj(eb)->str : (const uint8_t *)"";
    const uint64_t alen = ea ? obj(ea)->len : 0, blen = eb ? obj(eb)->len : 0;
    bool getlen = false, getidx = false, withmatchlen = false;
    int64_t minmatchlen = 0;
    for (uint32_t j = 3; j < c->argc; j++) {
        if (kv_arg_is(c, j, "idx")) {
            getidx = true;
        } else if (kv_arg_is(c, j, "len")) {
            getlen = true;
        } else if (kv_arg_is(c, j, "withmatchlen")) {
            withmatchlen = true;
        } else if (kv_arg_is(c, j, "minmatchlen") && j + 1 < c->argc) {
            if (!kv_arg_i64(c, j + 1, &minmatchlen))
                return 0;
            if (minmatchlen < 0)
                minmatchlen = 0;
            j++;
        } else {
            return kv_reply_err(c, KV_ERR_SYNTAX);
        }
    }
    if (getlen && getidx)
        return kv_reply_err(c, "ERR If you want both the length and indexes, please just use IDX.");
    RABIA_ASSERT(alen <= KV_STR_MAX && blen <= KV_STR_MAX);
    const uint64_t cols = blen + 1, cells = (alen + 1) * cols;
    if (cells * sizeof(uint32_t) > LCS_TABLE_MAX)
        return kv_reply_err(c, "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    uint32_t *t = malloc(cells * sizeof *t);
    if (!t)
        return -ENOMEM;
#define LCS(i, j) t[(uint64_t)(j) + (uint64_t)(i) * cols]
    for (uint64_t i = 0; i <= alen; i++)
        for (uint64_t j = 0; j <= blen; j++) {
            if (i == 0 || j == 0)
                LCS(i, j) = 0;
            else if (a[i - 1] == b[j - 1])
                LCS(i, j) = LCS(i - 1, j - 1) + 1;
            else
                LCS(i, j) = LCS(i - 1, j) > LCS(i, j - 1) ? LCS(i - 1, j) : LCS(i, j - 1);
        }
    const uint32_t total = LCS(alen, blen);
    int rc = 0;
    uint8_t *result = NULL;
    const bool compute = getidx || !getlen;
    if (compute && !(result = malloc(total ? total : 1))) {
        free(t);
        return -ENOMEM;
    }
    size_t mark = 0;
    uint64_t ranges = 0;
    if (getidx) { /* a map in RESP3: "matches" [ranges...] "len" n */
        if (!(rc = kv_reply_array(c, 4)) && !(rc = kv_reply_cstr(c, "matches")))
            mark = kv_reply_defer(c);
    }
    /* the walk back: a range grows backward while the matches are
     * contiguous and is emitted at the first step that is not a match, or
     * when it reached either string's first byte (astart == alen: none) */
    uint64_t i = alen, j = blen, idx = total, astart = alen, aend = 0, bstart = 0, bend = 0;
    while (!rc && compute && i > 0 && j > 0) {
        bool emit = false;
        if (a[i - 1] == b[j - 1]) {
            result[idx - 1] = a[i - 1];
            if (astart == alen) {
                astart = aend = i - 1;
                bstart = bend = j - 1;
            } else if (astart == i && bstart == j) {
                astart--;
                bstart--;
            } else {
                emit = true;
            }
            if (astart == 0 || bstart == 0)
                emit = true;
            idx--;
            i--;
            j--;
        } else {
            if (LCS(i - 1, j) > LCS(i, j - 1))
                i--;
            else
                j--;
            if (astart != alen)
                emit = true;
        }
        const uint64_t match_len = aend - astart + 1;
        if (emit) {
            if (getidx && (minmatchlen == 0 || match_len >= (uint64_t)minmatchlen)) {
                if (!(rc = kv_reply_array(c, 2 + withmatchlen)) && !(rc = kv_reply_array(c, 2)) &&
                    !(rc = kv_reply_int(c, (int64_t)astart)) && !(rc = kv_reply_int(c, (int64_t)aend)) &&
                    !(rc = kv_reply_array(c, 2)) && !(rc = kv_reply_int(c, (int64_t)bstart)) &&
                    !(rc = kv_reply_int(c, (int64_t)bend)) && withmatchlen)
                    rc = kv_reply_int(c, (int64_t)match_len);
                ranges++;
            }
            astart = alen;
        }
    }
#undef LCS
    if (!rc) {
        if (getidx) {
            if (!(rc = kv_reply_set_len(c, mark, ranges)) && !(rc = kv_reply_cstr(c, "len")))
                rc = kv_reply_int(c, total);
        } else if (getlen) {
            rc = kv_reply_int(c, total);
        } else {
            rc = kv_reply_bulk(c, result, total);
        }
    }
    free(result);
    free(t);
    return rc;
}
