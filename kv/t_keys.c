/* kv/t_keys.c: commands on keys whatever their type: DEL, EXISTS, TYPE,
 * RENAME, KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSH*, MOVE, COPY, TOUCH, and the
 * expiry commands. Expiry times are absolute Unix ms of the log's clock
 * (c->s->now_ms), so every replica expires a key at the same operation. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static struct kv_obj *obj(const struct kv_dent *e)
{
    return e->v.p;
}

static bool is_expired(const struct kv_ctx *c, const struct kv_dent *e)
{
    return kv_expired(c->s, e);
}

static int del_keys(struct kv_ctx *c)
{
    int64_t n = 0;
    for (uint32_t i = 1; i < c->argc; i++) {
        struct kv_dent *e = kv_find_arg(c, i);
        if (e) {
            kv_delete(c, e);
            n++;
        }
    }
    return kv_reply_int(c, n);
}

KV_CMD(del) { return del_keys(c); }
KV_CMD(unlink) { return del_keys(c); }

KV_CMD(exists)
{
    int64_t n = 0;
    for (uint32_t i = 1; i < c->argc; i++)
        n += kv_find_arg(c, i) != NULL;
    return kv_reply_int(c, n);
}

KV_CMD(touch)
{
    return kv_cmd_exists(c);
}

KV_CMD(type)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    return kv_reply_status(c, e ? kv_type_ops(obj(e)->type)->name : "none");
}

KV_CMD(dbsize)
{
    /* it counts expired keys not yet reclaimed: outside the log (kv_query)
     * the count waits for the log, where this replica's pending SWEEP goes
     * first, as Redis's active expiry goes before the next command */
    if (c->s->query && kv_dict_size(&c->db->expires))
        c->s->query_clock = true;
    return kv_reply_int(c, (int64_t)kv_dict_size(&c->db->keys));
}

static bool flush_args(struct kv_ctx *c)
{
    if (c->argc > 2 || (c->argc == 2 && !kv_arg_is(c, 1, "async") && !kv_arg_is(c, 1, "sync"))) {
        kv_reply_err(c, KV_ERR_SYNTAX);
        return false;
    }
    return true;
}

KV_CMD(flushdb)
{
    if (!flush_args(c))
        return 0;
    kv_db_flush(c->s, c->dbi);
    return kv_reply_ok(c);
}

KV_CMD(flushall)
{
    if (!flush_args(c))
        return 0;
    for (uint32_t i = 0; i < KV_DBS; i++)
        kv_db_flush(c->s, i);
    return kv_reply_ok(c);
}

/* Move key e's value (and expiry) to dst in database dbi, replacing what is
 * there; e is deleted. */
static int move_value(struct kv_ctx *c, struct kv_dent *e, uint32_t dbi, const uint8_t *dst, size_t dn)
{
    struct kv_obj *o = obj(e);
    uint64_t exp = e->x;
    kv_hash_detach(c->s, e, o); /* its term goes with the old key */
    e->v.p = NULL; /* taken: kv_delete frees nothing of it */
    kv_delete(c, e);
    struct kv_ctx d = *c;
    d.db = &c->s->db[dbi];
    d.dbi = dbi;
    int rc = kv_set(&d, dst, dn, o, false);
    if (rc)
        return rc;
    if (exp && (rc = kv_set_expire(&d, kv_find(&d, dst, dn), exp)))
        return rc;
    if (o->type == KV_LIST)
        kv_key_ready(&d, dst, dn);
    return 0;
}

static int rename_key(struct kv_ctx *c, bool nx)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!e)
        return kv_reply_err(c, KV_ERR_NOSUCHKEY);
    bool same = c->len[1] == c->len[2] && memcmp(c->argv[1], c->argv[2], c->len[1]) == 0;
    if (same)
        return nx ? kv_reply_int(c, 0) : kv_reply_ok(c);
    if (nx && kv_find_arg(c, 2))
        return kv_reply_int(c, 0);
    int rc = move_value(c, e, c->dbi, c->argv[2], c->len[2]);
    if (rc)
        return rc;
    return nx ? kv_reply_int(c, 1) : kv_reply_ok(c);
}

KV_CMD(rename) { return rename_key(c, false); }
KV_CMD(renamenx) { return rename_key(c, true); }

static bool parse_dbi(struct kv_ctx *c, uint32_t i, uint32_t *dbi)
{
    int64_t v;
    if (!kv_parse_i64(c->argv[i], c->len[i], &v)) {
        kv_reply_err(c, KV_ERR_NOTINT);
        return false;
    }
    if (v < 0 || v >= KV_DBS) {
        kv_reply_err(c, "ERR DB index is out of range");
        return false;
    }
    *dbi = (uint32_t)v;
    return true;
}

KV_CMD(move)
{
    uint32_t dbi;
    if (!parse_dbi(c, 2, &dbi))
        return 0;
    if (dbi == c->dbi)
        return kv_reply_err(c, "ERR source and destination objects are the same");
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!e)
        return kv_reply_int(c, 0);
    struct kv_ctx d = *c;
    d.db = &c->s->db[dbi];
    d.dbi = dbi;
    if (kv_find(&d, c->argv[1], c->len[1]))
        return kv_reply_int(c, 0);
    int rc = move_value(c, e, dbi, c->argv[1], c->len[1]);
    return rc ? rc : kv_reply_int(c, 1);
}

/* COPY source destination [DB destination-db] [REPLACE] */
KV_CMD(copy)
{
    uint32_t dbi = c->dbi;
    bool replace = false;
    for (uint32_t i = 3; i < c->argc; i++) {
        if (kv_arg_is(c, i, "replace")) {
            replace = true;
        } else if (kv_arg_is(c, i, "db") && i + 1 < c->argc) {
            if (!parse_dbi(c, ++i, &dbi))
                return 0;
        } else {
            return kv_reply_err(c, KV_ERR_SYNTAX);
        }
    }
    bool same = c->len[1] == c->len[2] && memcmp(c->argv[1], c->argv[2], c->len[1]) == 0;
    if (same && dbi == c->dbi)
        return kv_reply_err(c, "ERR source and destination objects are the same");
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!e)
        return kv_reply_int(c, 0);
    struct kv_ctx d = *c;
    d.db = &c->s->db[dbi];
    d.dbi = dbi;
    struct kv_dent *old = kv_find(&d, c->argv[2], c->len[2]);
    if (old && !replace)
        return kv_reply_int(c, 0);
    struct kv_obj *o;
    int rc = kv_type_ops(obj(e)->type)->copy(c->s, obj(e), &o);
    if (rc)
        return rc;
    uint64_t exp = e->x;
    if ((rc = kv_set(&d, c->argv[2], c->len[2], o, false)))
        return rc;
    if (exp && (rc = kv_set_expire(&d, kv_find(&d, c->argv[2], c->len[2]), exp)))
        return rc;
    if (o->type == KV_LIST)
        kv_key_ready(&d, c->argv[2], c->len[2]);
    return kv_reply_int(c, 1);
}

/* ------------------------------------------------------------------ */
/* KEYS, SCAN, RANDOMKEY: hash order, the same on every replica. */

struct key_walk {
    struct kv_ctx *c;
    const uint8_t *pat;
    size_t pat_len; /* pat NULL: all */
    int type;       /* -1 any, -2 none */
    uint64_t n;
    struct rabia_buf *expired; /* SCAN: the expired keys met, deleted after the walk (NULL: KEYS) */
};

static int walk_key(void *arg, struct kv_dent *e)
{
    struct key_walk *w = arg;
    if (is_expired(w->c, e)) {
        if (!w->expired)
            return 0; /* KEYS only skips it */
        /* outside the log (kv_query) a SCAN cannot delete it: through the
         * log, where it does, as Redis's SCAN does (DBSIZE then stops
         * counting it; difftest seed 303: SET k v PXAT <past>, SCAN, DBSIZE) */
        if (w->c->s->query) {
            w->c->s->query_clock = true;
            return 0;
        }
        return rabia_buf_append(w->expired, &e, sizeof e);
    }
    if (w->type != -1 && w->type != obj(e)->type)
        return 0;
    if (w->pat && !kv_glob(w->pat, w->pat_len, e->key, e->klen))
        return 0;
    w->n++;
    return kv_reply_bulk(w->c, e->key, e->klen);
}

KV_CMD(keys)
{
    struct key_walk w = {.c = c, .pat = c->argv[1], .pat_len = c->len[1], .type = -1};
    if (w.pat_len == 1 && w.pat[0] == '*')
        w.pat = NULL;
    size_t mark = kv_reply_defer(c);
    uint64_t cursor = 0;
    int err = 0;
    do
        cursor = kv_dict_scan(c->s, &c->db->keys, cursor, 1024, walk_key, &w, &err);
    while (!err && cursor != 0);
    return err ? err : kv_reply_set_len(c, mark, w.n);
}

KV_CMD(scan)
{
    uint64_t cursor;
    struct kv_scan_opts o;
    if (!kv_arg_cursor(c, 1, &cursor) || !kv_scan_args(c, 2, true, &o))
        return 0;
    char cur[32];
    /* Expired keys the walk meets are deleted after it (the table must not
     * change during it), as Redis's SCAN does: DBSIZE stops counting them */
    struct rabia_buf expired = {0};
    struct key_walk w = {.c = c, .pat = o.match, .pat_len = o.match_len, .type = o.type,
                         .expired = &expired};
    int rc = kv_reply_array(c, 2);
    size_t cur_at = c->out->len;
    if (rc)
        return rc;
    size_t mark = kv_reply_defer(c);
    int err = 0;
    uint64_t next = kv_dict_scan(c->s, &c->db->keys, cursor, o.count, walk_key, &w, &err);
    for (size_t i = 0; !err && i + sizeof(struct kv_dent *) <= expired.len; i += sizeof(struct kv_dent *)) {
        struct kv_dent *e;
        memcpy(&e, expired.data + i, sizeof e);
        kv_delete(c, e);
        c->s->expired_keys++;
    }
    rabia_buf_free(&expired);
    if (err)
        return err;
    if ((rc = kv_reply_set_len(c, mark, w.n)))
        return rc;
    /* The cursor goes before the keys: insert its bulk string at cur_at. */
    int n = snprintf(cur, sizeof cur, "%llu", (unsigned long long)next);
    char hdr[48];
    int h = snprintf(hdr, sizeof hdr, "$%d\r\n%s\r\n", n, cur);
    if ((rc = rabia_buf_reserve(c->out, (size_t)h)))
        return rc;
    memmove(c->out->data + cur_at + h, c->out->data + cur_at, c->out->len - cur_at);
    memcpy(c->out->data + cur_at, hdr, (size_t)h);
    c->out->len += (size_t)h;
    return 0;
}

struct first_live {
    const struct kv_ctx *c;
    struct kv_dent *e;
};

static int find_live(void *arg, struct kv_dent *e)
{
    struct first_live *f = arg;
    if (!f->e && !is_expired(f->c, e))
        f->e = e;
    return 0;
}

KV_CMD(randomkey)
{
    /* The entry at a random point of the hash space; expired keys are
     * skipped (a few tries, then a walk), not deleted: a read stays a read. */
    for (int tries = 0; tries < 16; tries++) {
        struct kv_dent *e = kv_dict_at(c->s, &c->db->keys, kv_rand(c->s));
        if (!e)
            return kv_reply_null(c);
        if (!is_expired(c, e))
            return kv_reply_bulk(c, e->key, e->klen);
    }
    struct first_live f = {.c = c};
    uint64_t cursor = kv_rand(c->s);
    int err = 0;
    for (int round = 0; round < 2 && !f.e && !err; round++) { /* to the end, then from 0 */
        do
            cursor = kv_dict_scan(c->s, &c->db->keys, cursor, 64, find_live, &f, &err);
        while (!err && !f.e && cursor != 0);
    }
    if (err)
        return err;
    return f.e ? kv_reply_bulk(c, f.e->key, f.e->klen) : kv_reply_null(c);
}

/* ------------------------------------------------------------------ */
/* Expiry. */

enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

static const char *cmd_name(const struct kv_ctx *c, char *buf, size_t cap)
{
    size_t n = c->len[0] < cap - 1 ? c->len[0] : cap - 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = c->argv[0][i];
        buf[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
    }
    buf[n] = 0;
    return buf;
}

static int expire_generic(struct kv_ctx *c, int64_t base, bool seconds)
{
    int flags = 0;
    for (uint32_t i = 3; i < c->argc; i++) {
        if (kv_arg_is(c, i, "nx"))
            flags |= EXP_NX;
        else if (kv_arg_is(c, i, "xx"))
            flags |= EXP_XX;
        else if (kv_arg_is(c, i, "gt"))
            flags |= EXP_GT;
        else if (kv_arg_is(c, i, "lt"))
            flags |= EXP_LT;
        else {
            /* %.*s ends it at a NUL byte, as Redis's %s (KV_LEVEL_EXPIRE_OPTION) */
            size_t max = c->s->feature_level >= KV_LEVEL_EXPIRE_OPTION ? INT_MAX : 64;
            return kv_reply_errf(c, "ERR Unsupported option %.*s", (int)(c->len[i] > max ? max : c->len[i]),
                                 (const char *)c->argv[i]);
        }
    }
    if ((flags & EXP_NX) && (flags & (EXP_XX | EXP_GT | EXP_LT)))
        return kv_reply_err(c, "ERR NX and XX, GT or LT options at the same time are not compatible");
    if ((flags & EXP_GT) && (flags & EXP_LT))
        return kv_reply_err(c, "ERR GT and LT options at the same time are not compatible");
    int64_t when;
    if (!kv_arg_i64(c, 2, &when))
        return 0;
    char name[32];
    if (seconds) {
        if (when > INT64_MAX / 1000 || when < INT64_MIN / 1000)
            return kv_reply_errf(c, "ERR invalid expire time in '%s' command", cmd_name(c, name, sizeof name));
        when *= 1000;
    }
    if (when > INT64_MAX - base)
        return kv_reply_errf(c, "ERR invalid expire time in '%s' command", cmd_name(c, name, sizeof name));
    when += base;
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!e)
        return kv_reply_int(c, 0);
    int64_t cur = e->x ? (int64_t)e->x : -1;
    if ((flags & EXP_NX) && cur != -1)
        return kv_reply_int(c, 0);
    if ((flags & EXP_XX) && cur == -1)
        return kv_reply_int(c, 0);
    if ((flags & EXP_GT) && (when <= cur || cur == -1))
        return kv_reply_int(c, 0);
    if ((flags & EXP_LT) && cur != -1 && when >= cur)
        return kv_reply_int(c, 0);
    if (when <= (int64_t)c->s->now_ms) { /* already past: the key goes now */
        kv_delete(c, e);
        return kv_reply_int(c, 1);
    }
    int rc = kv_set_expire(c, e, (uint64_t)when);
    return rc ? rc : kv_reply_int(c, 1);
}

KV_CMD(expire) { return expire_generic(c, (int64_t)c->s->now_ms, true); }
KV_CMD(pexpire) { return expire_generic(c, (int64_t)c->s->now_ms, false); }
KV_CMD(expireat) { return expire_generic(c, 0, true); }
KV_CMD(pexpireat) { return expire_generic(c, 0, false); }

static int ttl_generic(struct kv_ctx *c, bool ms, bool absolute)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!e)
        return kv_reply_int(c, -2);
    if (!e->x)
        return kv_reply_int(c, -1);
    if (!absolute && c->s->query)
        c->s->query_clock = true; /* counts from now: the log's batch carries the time */
    int64_t t = absolute ? (int64_t)e->x : (int64_t)e->x - (int64_t)c->s->now_ms;
    if (t < 0)
        t = 0;
    return kv_reply_int(c, ms ? t : (t + 500) / 1000);
}

KV_CMD(ttl) { return ttl_generic(c, false, false); }
KV_CMD(pttl) { return ttl_generic(c, true, false); }
KV_CMD(expiretime) { return ttl_generic(c, false, true); }
KV_CMD(pexpiretime) { return ttl_generic(c, true, true); }

KV_CMD(persist)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!e || !e->x)
        return kv_reply_int(c, 0);
    int rc = kv_set_expire(c, e, 0);
    return rc ? rc : kv_reply_int(c, 1);
}
