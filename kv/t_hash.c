/* t_hash.c: hashes (HSET ... HRANDFIELD).
 *
 * Two encodings, as Redis 7.0 has (listpack and hashtable):
 *   HASH_COMPACT: (field, value) pairs in insertion order, while the hash
 *     has at most 512 fields and no field or value is longer than 64 bytes
 *     (Redis 7.0's hash-max-listpack-entries / -value defaults: 512, not
 *     the 128 of zsets). Keeping the insertion order makes small hashes
 *     reply in the order Redis does.
 *   HASH_DICT: a struct kv_dict, fields as keys, the value kv_dup'ed in
 *     v.p and its length in x; replies in hash order.
 * A hash goes from compact to dict when a threshold is crossed, never back
 * (Redis does not convert back either). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { HASH_COMPACT = 0, HASH_DICT = 1 };

#define HASH_COMPACT_MAX_FIELDS 512
#define HASH_COMPACT_MAX_BYTES 64
/* HRANDFIELD with a negative count replies |count| fields: Redis builds
 * any size (and dies of it); a replica must not, since a failed allocation
 * stops it. */
#define HASH_RAND_MAX_REPEAT (1u << 20)
/* Redis's MAX_LONG_DOUBLE_CHARS: "%.17Lf" of any finite long double fits. */
#define HASH_LD_CHARS 5120

#define TRY(x)                  \
    do {                        \
        int r_ = (x);           \
        if (r_ < 0)             \
            return r_;          \
    } while (0)

struct hpair {
    uint8_t *f, *v; /* kv_dup'ed */
    uint32_t fn, vn;
};

struct hcompact {
    uint32_t n, cap;
    struct hpair *a;
};

/* ------------------------------------------------------------------ */
/* The structure.                                                      */

static void hent_release(struct kv_store *s, struct kv_dent *e)
{
    kv_free(s, e->v.p);
}

static void hc_free(struct kv_store *s, struct hcompact *h)
{
    for (uint32_t i = 0; i < h->n; i++) {
        kv_free(s, h->a[i].f);
        kv_free(s, h->a[i].v);
    }
    kv_free(s, h->a);
    kv_free(s, h);
}

static void hd_free(struct kv_store *s, struct kv_dict *d)
{
    kv_dict_clear(s, d, hent_release);
    kv_free(s, d);
}

static void hash_free_ptr(struct kv_store *s, uint8_t enc, void *ptr)
{
    if (enc == HASH_COMPACT)
        hc_free(s, ptr);
    else
        hd_free(s, ptr);
}

static struct kv_obj *hash_wrap(struct kv_store *s, uint8_t enc, void *ptr)
{
    struct kv_obj *o = kv_obj_new(s, KV_HASH, enc, ptr);
    if (!o)
        hash_free_ptr(s, enc, ptr);
    return o;
}

static struct kv_obj *hash_new(struct kv_store *s)
{
    struct hcompact *h = kv_alloc(s, sizeof *h);
    if (!h)
        return NULL;
    *h = (struct hcompact){0};
    return hash_wrap(s, HASH_COMPACT, h);
}

static uint64_t hash_len(const struct kv_obj *o)
{
    if (o->enc == HASH_COMPACT)
        return ((const struct hcompact *)o->ptr)->n;
    return kv_dict_size(o->ptr);
}

static int64_t hc_find(const struct hcompact *h, const uint8_t *f, size_t fn)
{
    for (uint32_t i = 0; i < h->n; i++)
        if (h->a[i].fn == fn && memcmp(h->a[i].f, f, fn) == 0)
            return i;
    return -1;
}

/* The value of field f: true and *v, *vn; false when absent. */
static bool hash_get(struct kv_store *s, struct kv_obj *o, const uint8_t *f, size_t fn,
                     const uint8_t **v, uint32_t *vn)
{
    if (o->enc == HASH_COMPACT) {
        struct hcompact *h = o->ptr;
        int64_t i = hc_find(h, f, fn);
        if (i < 0)
            return false;
        *v = h->a[i].v;
        *vn = h->a[i].vn;
        return true;
    }
    struct kv_dent *e = kv_dict_find(s, o->ptr, f, fn);
    if (!e)
        return false;
    *v = e->v.p;
    *vn = (uint32_t)e->x;
    return true;
}

bool kv_hash_get(struct kv_store *s, struct kv_obj *o, const uint8_t *f, size_t fn, const uint8_t **v, size_t *vn)
{
    RABIA_ASSERT(o->type == KV_HASH);
    uint32_t n32 = 0;
    bool found = hash_get(s, o, f, fn, v, &n32);
    *vn = n32;
    return found;
}

/* Add field f with value v to d (f absent). 0 or -ENOMEM. */
static int hd_add(struct kv_store *s, struct kv_dict *d, const uint8_t *f, size_t fn,
                  const uint8_t *v, size_t vn)
{
    uint8_t *nv = kv_dup(s, v, vn);
    if (!nv)
        return -ENOMEM;
    struct kv_dent *e = kv_dict_add(s, d, f, fn);
    if (!e) {
        kv_free(s, nv);
        return -ENOMEM;
    }
    e->v.p = nv;
    e->x = vn;
    return 0;
}

static struct kv_dict *hd_new(struct kv_store *s)
{
    struct kv_dict *d = kv_alloc(s, sizeof *d);
    if (d)
        kv_dict_init(d);
    return d;
}

/* Compact to dict. On failure o is unchanged. */
static int hash_convert(struct kv_store *s, struct kv_obj *o)
{
    RABIA_ASSERT(o->enc == HASH_COMPACT);
    struct hcompact *h = o->ptr;
    struct kv_dict *d = hd_new(s);
    if (!d)
        return -ENOMEM;
    for (uint32_t i = 0; i < h->n; i++) {
        if (hd_add(s, d, h->a[i].f, h->a[i].fn, h->a[i].v, h->a[i].vn) < 0) {
            hd_free(s, d);
            return -ENOMEM;
        }
    }
    hc_free(s, h);
    o->ptr = d;
    o->enc = HASH_DICT;
    return 0;
}

static int hc_replace_value(struct kv_store *s, struct hpair *p, const uint8_t *v, size_t vn)
{
    uint8_t *nv = kv_dup(s, v, vn);
    if (!nv)
        return -ENOMEM;
    kv_free(s, p->v);
    p->v = nv;
    p->vn = (uint32_t)vn;
    return 0;
}

static int hc_append(struct kv_store *s, struct hcompact *h, const uint8_t *f, size_t fn,
                     const uint8_t *v, size_t vn)
{
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 4;
        struct hpair *a = kv_realloc(s, h->a, (size_t)cap * sizeof *a);
        if (!a)
            return -ENOMEM;
        h->a = a;
        h->cap = cap;
    }
    struct hpair p = {.f = kv_dup(s, f, fn), .v = kv_dup(s, v, vn), .fn = (uint32_t)fn,
                      .vn = (uint32_t)vn};
    if (!p.f || !p.v) {
        kv_free(s, p.f);
        kv_free(s, p.v);
        return -ENOMEM;
    }
    h->a[h->n++] = p;
    return 0;
}

/* Set field f to v: 1 when f is new, 0 when it was updated, -ENOMEM.
 * Converts to a dict first when f or v is too long for the compact
 * encoding (as Redis's hashTypeSet), after when there are too many
 * fields. */
static int hash_set(struct kv_store *s, struct kv_obj *o, const uint8_t *f, size_t fn,
                    const uint8_t *v, size_t vn)
{
    if (o->enc == HASH_COMPACT && (fn > HASH_COMPACT_MAX_BYTES || vn > HASH_COMPACT_MAX_BYTES))
        TRY(hash_convert(s, o));
    if (o->enc == HASH_COMPACT) {
        struct hcompact *h = o->ptr;
        int64_t i = hc_find(h, f, fn);
        if (i >= 0)
            return hc_replace_value(s, &h->a[i], v, vn);
        TRY(hc_append(s, h, f, fn, v, vn));
        if (h->n > HASH_COMPACT_MAX_FIELDS)
            TRY(hash_convert(s, o));
        return 1;
    }
    struct kv_dent *e = kv_dict_find(s, o->ptr, f, fn);
    if (!e) {
        TRY(hd_add(s, o->ptr, f, fn, v, vn));
        return 1;
    }
    uint8_t *nv = kv_dup(s, v, vn);
    if (!nv)
        return -ENOMEM;
    kv_free(s, e->v.p);
    e->v.p = nv;
    e->x = vn;
    return 0;
}

/* Remove field f: whether it was there. */
static bool hash_del(struct kv_store *s, struct kv_obj *o, const uint8_t *f, size_t fn)
{
    if (o->enc == HASH_COMPACT) {
        struct hcompact *h = o->ptr;
        int64_t i = hc_find(h, f, fn);
        if (i < 0)
            return false;
        kv_free(s, h->a[i].f);
        kv_free(s, h->a[i].v);
        memmove(&h->a[i], &h->a[i + 1], (size_t)(h->n - i - 1) * sizeof h->a[0]);
        h->n--;
        return true;
    }
    struct kv_dent *e = kv_dict_unlink(s, o->ptr, f, fn);
    if (!e)
        return false;
    hent_release(s, e);
    kv_free(s, e);
    return true;
}

/* Visit every (field, value) in the hash's order: insertion order for
 * compact, hash order for dict. fn returns 0 or a negative errno (which
 * stops the walk and is returned). */
typedef int (*hash_visit_fn)(void *arg, const uint8_t *f, uint32_t fn, const uint8_t *v,
                             uint32_t vn);

struct hash_walk {
    hash_visit_fn fn;
    void *arg;
};

static int hash_walk_dent(void *arg, struct kv_dent *e)
{
    struct hash_walk *w = arg;
    return w->fn(w->arg, e->key, e->klen, e->v.p, (uint32_t)e->x);
}

/* Walk a dict in hash order, in steps so that kv_dict_scan's scratch space
 * stays small. */
static int dict_walk(struct kv_store *s, struct kv_dict *d, int (*fn)(void *, struct kv_dent *),
                     void *arg)
{
    uint64_t cursor = 0;
    int err = 0;
    do
        cursor = kv_dict_scan(s, d, cursor, 256, fn, arg, &err);
    while (cursor != 0 && err == 0);
    return err;
}

static int hash_each(struct kv_store *s, struct kv_obj *o, hash_visit_fn fn, void *arg)
{
    if (o->enc == HASH_COMPACT) {
        struct hcompact *h = o->ptr;
        for (uint32_t i = 0; i < h->n; i++)
            TRY(fn(arg, h->a[i].f, h->a[i].fn, h->a[i].v, h->a[i].vn));
        return 0;
    }
    struct hash_walk w = {fn, arg};
    return dict_walk(s, o->ptr, hash_walk_dent, &w);
}

/* ------------------------------------------------------------------ */
/* Type operations.                                                    */

static void hash_ops_free(struct kv_store *s, struct kv_obj *o)
{
    hash_free_ptr(s, o->enc, o->ptr);
    kv_free(s, o);
}

static int hash_save_pair(void *arg, const uint8_t *f, uint32_t fn, const uint8_t *v, uint32_t vn)
{
    struct rabia_buf *out = arg;
    TRY(kv_wr_str(out, f, fn));
    return kv_wr_str(out, v, vn);
}

/* enc (u8), the field count (u64), then (field, value) strings in the
 * hash's order: insertion order (which is state) for compact, hash order
 * (canonical) for dict. */
static int hash_ops_save(struct kv_store *s, const struct kv_obj *o, struct rabia_buf *out)
{
    TRY(kv_wr_u8(out, o->enc));
    TRY(kv_wr_u64(out, hash_len(o)));
    /* The walk moves no entry (kv_dict_scan changes nothing observable). */
    return hash_each(s, (struct kv_obj *)o, hash_save_pair, out);
}

static int hash_load_compact(struct kv_store *s, struct kv_rd *rd, uint64_t n, struct kv_obj *o)
{
    struct hcompact *h = o->ptr;
    if (n > HASH_COMPACT_MAX_FIELDS)
        return -EINVAL;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *f, *v;
        uint32_t fn, vn;
        if (!kv_rd_str(rd, &f, &fn) || !kv_rd_str(rd, &v, &vn))
            return -EINVAL;
        if (fn > HASH_COMPACT_MAX_BYTES || vn > HASH_COMPACT_MAX_BYTES || hc_find(h, f, fn) >= 0)
            return -EINVAL;
        TRY(hc_append(s, h, f, fn, v, vn));
    }
    return 0;
}

static int hash_load_dict(struct kv_store *s, struct kv_rd *rd, uint64_t n, struct kv_obj *o)
{
    uint64_t prev = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *f, *v;
        uint32_t fn, vn;
        if (!kv_rd_str(rd, &f, &fn) || !kv_rd_str(rd, &v, &vn))
            return -EINVAL;
        /* Saved in hash order: a field out of order or twice is corrupt. */
        uint64_t hv = kv_hash(f, fn);
        if ((i > 0 && hv < prev) || kv_dict_find(s, o->ptr, f, fn))
            return -EINVAL;
        prev = hv;
        TRY(hd_add(s, o->ptr, f, fn, v, vn));
    }
    return 0;
}

static int hash_ops_load(struct kv_store *s, struct kv_rd *rd, struct kv_obj **out)
{
    uint8_t enc;
    uint64_t n;
    if (!kv_rd_u8(rd, &enc) || !kv_rd_u64(rd, &n))
        return -EINVAL;
    /* An empty hash is never stored; each pair takes two length words. */
    if ((enc != HASH_COMPACT && enc != HASH_DICT) || n == 0 || n > (uint64_t)(rd->end - rd->p) / 8)
        return -EINVAL;
    struct kv_obj *o;
    if (enc == HASH_COMPACT) {
        o = hash_new(s);
    } else {
        struct kv_dict *d = hd_new(s);
        o = d ? hash_wrap(s, HASH_DICT, d) : NULL;
    }
    if (!o)
        return -ENOMEM;
    int r = enc == HASH_COMPACT ? hash_load_compact(s, rd, n, o) : hash_load_dict(s, rd, n, o);
    if (r < 0) {
        hash_ops_free(s, o);
        return r;
    }
    *out = o;
    return 0;
}

static int hash_copy_pair(void *arg, const uint8_t *f, uint32_t fn, const uint8_t *v, uint32_t vn)
{
    void **a = arg;
    struct kv_store *s = a[0];
    struct kv_obj *o = a[1];
    if (o->enc == HASH_COMPACT)
        return hc_append(s, o->ptr, f, fn, v, vn);
    return hd_add(s, o->ptr, f, fn, v, vn);
}

static int hash_ops_copy(struct kv_store *s, const struct kv_obj *src, struct kv_obj **out)
{
    struct kv_obj *o;
    if (src->enc == HASH_COMPACT) {
        o = hash_new(s);
    } else {
        struct kv_dict *d = hd_new(s);
        o = d ? hash_wrap(s, HASH_DICT, d) : NULL;
    }
    if (!o)
        return -ENOMEM;
    void *arg[2] = {s, o};
    int r = hash_each(s, (struct kv_obj *)src, hash_copy_pair, arg);
    if (r < 0) {
        hash_ops_free(s, o);
        return r;
    }
    *out = o;
    return 0;
}

/* From the contents only (not the capacity, which depends on the history
 * and differs after a snapshot load), so that every replica agrees. */
static uint64_t hash_ops_mem(const struct kv_obj *o)
{
    uint64_t m = sizeof *o;
    if (o->enc == HASH_COMPACT) {
        const struct hcompact *h = o->ptr;
        m += sizeof *h + (uint64_t)h->n * sizeof h->a[0];
        for (uint32_t i = 0; i < h->n; i++)
            m += (uint64_t)h->a[i].fn + 1 + h->a[i].vn + 1;
        return m;
    }
    const struct kv_dict *d = o->ptr;
    m += sizeof *d + kv_dict_table_bytes(d);
    /* Summing is order-free, so the chains may be read directly. */
    for (int t = 0; t < 2; t++) {
        if (!d->t[t])
            continue;
        for (uint64_t b = 0; b < (1ull << d->bits[t]); b++)
            for (const struct kv_dent *e = d->t[t][b]; e; e = e->next)
                m += sizeof *e + e->klen + 1 + e->x + 1;
    }
    return m;
}

const struct kv_type_ops kv_hash_ops = {
    .name = "hash",
    .free = hash_ops_free,
    .save = hash_ops_save,
    .load = hash_ops_load,
    .copy = hash_ops_copy,
    .mem = hash_ops_mem,
    .len = hash_len,
};

/* ------------------------------------------------------------------ */
/* Commands.                                                           */

/* The hash at key argument 1 for reading: *o NULL when absent. false when
 * the key holds another type (WRONGTYPE replied). */
static bool hash_read(struct kv_ctx *c, struct kv_obj **o)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!kv_type_ok(c, e, KV_HASH))
        return false;
    *o = e ? e->v.p : NULL;
    return true;
}

/* The hash at key argument 1, created empty when absent (the caller adds
 * to it at once): 1 and *e, 0 when WRONGTYPE was replied, -ENOMEM. */
static int hash_write(struct kv_ctx *c, struct kv_dent **e)
{
    *e = kv_find_arg(c, 1);
    if (!kv_type_ok(c, *e, KV_HASH))
        return 0;
    if (*e)
        return 1;
    struct kv_obj *o = hash_new(c->s);
    if (!o)
        return -ENOMEM;
    *e = kv_add(c, c->argv[1], c->len[1], o);
    return *e ? 1 : -ENOMEM;
}

static int hset_generic(struct kv_ctx *c, bool reply_ok)
{
    if (c->argc % 2 == 1)
        return kv_reply_arity(c);
    struct kv_dent *e;
    int r = hash_write(c, &e);
    if (r <= 0)
        return r;
    int64_t added = 0;
    for (uint32_t i = 2; i < c->argc; i += 2) {
        r = hash_set(c->s, e->v.p, c->argv[i], c->len[i], c->argv[i + 1], c->len[i + 1]);
        if (r < 0)
            return r;
        added += r;
    }
    kv_touch(c, e);
    return reply_ok ? kv_reply_ok(c) : kv_reply_int(c, added);
}

KV_CMD(hset)
{
    return hset_generic(c, false);
}

KV_CMD(hmset)
{
    return hset_generic(c, true);
}

KV_CMD(hsetnx)
{
    struct kv_obj *o;
    const uint8_t *v;
    uint32_t vn;
    if (!hash_read(c, &o))
        return 0;
    if (o && hash_get(c->s, o, c->argv[2], c->len[2], &v, &vn))
        return kv_reply_int(c, 0);
    struct kv_dent *e;
    int r = hash_write(c, &e);
    if (r <= 0)
        return r;
    TRY(hash_set(c->s, e->v.p, c->argv[2], c->len[2], c->argv[3], c->len[3]));
    kv_touch(c, e);
    return kv_reply_int(c, 1);
}

KV_CMD(hget)
{
    struct kv_obj *o;
    const uint8_t *v;
    uint32_t vn;
    if (!hash_read(c, &o))
        return 0;
    if (!o || !hash_get(c->s, o, c->argv[2], c->len[2], &v, &vn))
        return kv_reply_null(c);
    return kv_reply_bulk(c, v, vn);
}

KV_CMD(hmget)
{
    struct kv_obj *o;
    if (!hash_read(c, &o))
        return 0;
    TRY(kv_reply_array(c, c->argc - 2));
    for (uint32_t i = 2; i < c->argc; i++) {
        const uint8_t *v;
        uint32_t vn;
        if (o && hash_get(c->s, o, c->argv[i], c->len[i], &v, &vn))
            TRY(kv_reply_bulk(c, v, vn));
        else
            TRY(kv_reply_null(c));
    }
    return 0;
}

KV_CMD(hdel)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!kv_type_ok(c, e, KV_HASH))
        return 0;
    if (!e)
        return kv_reply_int(c, 0);
    struct kv_obj *o = e->v.p;
    int64_t deleted = 0;
    for (uint32_t i = 2; i < c->argc; i++)
        deleted += hash_del(c->s, o, c->argv[i], c->len[i]);
    if (deleted) {
        kv_touch(c, e);
        kv_delete_if_empty(c, e, hash_len(o));
    }
    return kv_reply_int(c, deleted);
}

KV_CMD(hlen)
{
    struct kv_obj *o;
    if (!hash_read(c, &o))
        return 0;
    return kv_reply_int(c, o ? (int64_t)hash_len(o) : 0);
}

KV_CMD(hexists)
{
    struct kv_obj *o;
    const uint8_t *v;
    uint32_t vn;
    if (!hash_read(c, &o))
        return 0;
    return kv_reply_int(c, o && hash_get(c->s, o, c->argv[2], c->len[2], &v, &vn));
}

KV_CMD(hstrlen)
{
    struct kv_obj *o;
    const uint8_t *v;
    uint32_t vn;
    if (!hash_read(c, &o))
        return 0;
    if (!o || !hash_get(c->s, o, c->argv[2], c->len[2], &v, &vn))
        return kv_reply_int(c, 0);
    return kv_reply_int(c, vn);
}

enum { H_FIELDS = 1, H_VALUES = 2 };

struct hreply {
    struct kv_ctx *c;
    int what; /* H_FIELDS | H_VALUES */
};

static int hreply_pair(void *arg, const uint8_t *f, uint32_t fn, const uint8_t *v, uint32_t vn)
{
    struct hreply *h = arg;
    if (h->what & H_FIELDS)
        TRY(kv_reply_bulk(h->c, f, fn));
    if (h->what & H_VALUES)
        TRY(kv_reply_bulk(h->c, v, vn));
    return 0;
}

static int hgetall_generic(struct kv_ctx *c, int what)
{
    struct kv_obj *o;
    if (!hash_read(c, &o))
        return 0;
    if (!o)
        return kv_reply_array(c, 0);
    uint64_t per = what == (H_FIELDS | H_VALUES) ? 2 : 1;
    TRY(kv_reply_array(c, hash_len(o) * per));
    struct hreply h = {c, what};
    return hash_each(c->s, o, hreply_pair, &h);
}

KV_CMD(hkeys)
{
    return hgetall_generic(c, H_FIELDS);
}

KV_CMD(hvals)
{
    return hgetall_generic(c, H_VALUES);
}

KV_CMD(hgetall)
{
    return hgetall_generic(c, H_FIELDS | H_VALUES);
}

static bool add_overflows(int64_t a, int64_t b)
{
    return (b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b);
}

KV_CMD(hincrby)
{
    int64_t incr, cur = 0;
    if (!kv_arg_i64(c, 3, &incr))
        return 0;
    struct kv_obj *o;
    const uint8_t *v;
    uint32_t vn;
    if (!hash_read(c, &o))
        return 0;
    if (o && hash_get(c->s, o, c->argv[2], c->len[2], &v, &vn) && !kv_parse_i64(v, vn, &cur))
        return kv_reply_err(c, "ERR hash value is not an integer");
    if (add_overflows(cur, incr))
        return kv_reply_err(c, KV_ERR_OVERFLOW);
    cur += incr;
    char buf[64];
    int n = kv_fmt_i64(buf, cur);
    struct kv_dent *e;
    int r = hash_write(c, &e);
    if (r <= 0)
        return r;
    TRY(hash_set(c->s, e->v.p, c->argv[2], c->len[2], (const uint8_t *)buf, (size_t)n));
    kv_touch(c, e);
    return kv_reply_int(c, cur);
}

/* Redis's string2ld: strtold over the whole string (a NUL byte inside
 * ends strtold early: refused), no leading space, not NaN, no overflow.
 * Not kv_parse_long_double: that one refuses
 * strings of 320 bytes or more, and HINCRBYFLOAT's own results reach
 * 4933 bytes ("%.17Lf" of 1e4932), which Redis parses again. */
static bool hash_parse_ld(const uint8_t *p, size_t n, long double *v)
{
    char buf[HASH_LD_CHARS];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, p, n);
    buf[n] = 0;
    char *end;
    errno = 0;
    long double d = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || (size_t)(end - buf) != n || isnan(d) ||
        (errno == ERANGE && (isinf(d) || fpclassify(d) == FP_ZERO)) || errno == EINVAL)
        return false;
    *v = d;
    return true;
}

/* Redis's ld2string(LD_STR_HUMAN) for a finite value: "%.17Lf" without
 * trailing zeros (nor a trailing '.'), "-0" as "0". buf holds
 * HASH_LD_CHARS bytes; returns the length, or -1 if it did not fit. */
static int hash_fmt_ld(char *buf, long double v)
{
    int l = snprintf(buf, HASH_LD_CHARS, "%.17Lf", v);
    if (l < 0 || l + 1 > HASH_LD_CHARS)
        return -1;
    if (memchr(buf, '.', (size_t)l)) {
        while (buf[l - 1] == '0')
            l--;
        if (buf[l - 1] == '.')
            l--;
    }
    if (l == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        l = 1;
    }
    return l;
}

KV_CMD(hincrbyfloat)
{
    long double incr, cur = 0;
    if (!hash_parse_ld(c->argv[3], c->len[3], &incr))
        return kv_reply_err(c, KV_ERR_NOTFLOAT);
    if (isnan(incr) || isinf(incr))
        return kv_reply_err(c, "ERR value is NaN or Infinity");
    struct kv_obj *o;
    const uint8_t *v;
    uint32_t vn;
    if (!hash_read(c, &o))
        return 0;
    if (o && hash_get(c->s, o, c->argv[2], c->len[2], &v, &vn) &&
        !hash_parse_ld(v, vn, &cur))
        return kv_reply_err(c, "ERR hash value is not a float");
    cur += incr;
    if (isnan(cur) || isinf(cur))
        return kv_reply_err(c, "ERR increment would produce NaN or Infinity");
    char buf[HASH_LD_CHARS];
    int n = hash_fmt_ld(buf, cur);
    RABIA_ASSERT(n > 0); /* a finite long double always fits */
    struct kv_dent *e;
    int r = hash_write(c, &e);
    if (r <= 0)
        return r;
    TRY(hash_set(c->s, e->v.p, c->argv[2], c->len[2], (const uint8_t *)buf, (size_t)n));
    kv_touch(c, e);
    return kv_reply_bulk(c, buf, (size_t)n);
}

/* HSCAN: a compact hash is returned whole with cursor 0 (as Redis does
 * for a listpack); a dict is walked in hash order from the cursor (a hash
 * value), as kv_dict_scan_match says. */
static int hscan_dict(struct kv_ctx *c, struct kv_obj *o, uint64_t cursor,
                      const struct kv_scan_opts *opt)
{
    struct kv_scan_acc a = {.s = c->s, .opt = opt};
    uint64_t next;
    int r = kv_dict_scan_match(c->s, o->ptr, cursor, &a, &next);
    struct kv_dent **v = a.v;
    uint64_t n = a.n;
    char buf[32];
    if (r == 0)
        r = kv_reply_array(c, 2);
    if (r == 0)
        r = kv_reply_bulk(c, buf, (size_t)snprintf(buf, sizeof buf, "%llu", (unsigned long long)next));
    if (r == 0)
        r = kv_reply_array(c, n * 2);
    for (uint64_t i = 0; i < n && r == 0; i++) {
        r = kv_reply_bulk(c, v[i]->key, v[i]->klen);
        if (r == 0)
            r = kv_reply_bulk(c, v[i]->v.p, v[i]->x);
    }
    kv_free(c->s, v);
    return r;
}

static int hscan_compact(struct kv_ctx *c, struct kv_obj *o, const struct kv_scan_opts *opt)
{
    struct hcompact *h = o->ptr;
    uint64_t n = 0;
    for (uint32_t i = 0; i < h->n; i++)
        n += !opt->match || kv_glob(opt->match, opt->match_len, h->a[i].f, h->a[i].fn);
    TRY(kv_reply_array(c, 2));
    TRY(kv_reply_cstr(c, "0"));
    TRY(kv_reply_array(c, n * 2));
    for (uint32_t i = 0; i < h->n; i++) {
        if (opt->match && !kv_glob(opt->match, opt->match_len, h->a[i].f, h->a[i].fn))
            continue;
        TRY(kv_reply_bulk(c, h->a[i].f, h->a[i].fn));
        TRY(kv_reply_bulk(c, h->a[i].v, h->a[i].vn));
    }
    return 0;
}

KV_CMD(hscan)
{
    uint64_t cursor;
    struct kv_obj *o;
    struct kv_scan_opts opt;
    if (!kv_arg_cursor(c, 2, &cursor))
        return 0;
    /* Redis answers an absent key before looking at the options. */
    if (!hash_read(c, &o))
        return 0;
    if (!o) {
        TRY(kv_reply_array(c, 2));
        TRY(kv_reply_cstr(c, "0"));
        return kv_reply_array(c, 0);
    }
    if (!kv_scan_args(c, 3, false, &opt))
        return 0;
    if (o->enc == HASH_COMPACT)
        return hscan_compact(c, o, &opt);
    return hscan_dict(c, o, cursor, &opt);
}

/* ---- HRANDFIELD ---- */

static int hrand_reply(struct kv_ctx *c, const uint8_t *f, uint32_t fn, const uint8_t *v,
                       uint32_t vn, bool withvalues)
{
    TRY(kv_reply_bulk(c, f, fn));
    return withvalues ? kv_reply_bulk(c, v, vn) : 0;
}

/* A random (field, value). The hash is not empty. */
static void hash_random(struct kv_store *s, struct kv_obj *o, const uint8_t **f, uint32_t *fn,
                        const uint8_t **v, uint32_t *vn)
{
    if (o->enc == HASH_COMPACT) {
        struct hcompact *h = o->ptr;
        struct hpair *p = &h->a[kv_rand(s) % h->n];
        *f = p->f, *fn = p->fn, *v = p->v, *vn = p->vn;
        return;
    }
    struct kv_dent *e = kv_dict_at(s, o->ptr, kv_rand(s));
    RABIA_ASSERT(e != NULL);
    *f = e->key, *fn = e->klen, *v = e->v.p, *vn = (uint32_t)e->x;
}

/* Selection sampling (Knuth's algorithm S): `want` of the hash's fields,
 * each subset equally likely, replied in the hash's order. */
struct hsample {
    struct kv_ctx *c;
    uint64_t left, want;
    bool withvalues;
};

static int hsample_pair(void *arg, const uint8_t *f, uint32_t fn, const uint8_t *v, uint32_t vn)
{
    struct hsample *h = arg;
    bool take = h->want > 0 && kv_rand(h->c->s) % h->left < h->want;
    h->left--;
    if (!take)
        return 0;
    h->want--;
    return hrand_reply(h->c, f, fn, v, vn, h->withvalues);
}

struct hpick {
    struct kv_ctx *c;
    struct kv_obj *o;
    bool withvalues;
};

static int hpick_reply(void *arg, struct kv_dent *e)
{
    struct hpick *p = arg;
    const uint8_t *v;
    uint32_t vn;
    bool found = hash_get(p->c->s, p->o, e->key, e->klen, &v, &vn);
    RABIA_ASSERT(found);
    return hrand_reply(p->c, e->key, e->klen, v, vn, p->withvalues);
}

/* Add e's field to picked unless there: 1 added, 0 already, -ENOMEM. */
static int hpick_add(struct kv_store *s, struct kv_dict *picked, const struct kv_dent *e)
{
    if (kv_dict_find(s, picked, e->key, e->klen))
        return 0;
    return kv_dict_add(s, picked, e->key, e->klen) ? 1 : -ENOMEM;
}

static int hpick_fill(void *arg, struct kv_dent *e)
{
    void **a = arg;
    uint64_t *need = a[2];
    if (*need == 0)
        return 0;
    int r = hpick_add(a[0], a[1], e);
    if (r > 0)
        (*need)--;
    return r < 0 ? r : 0;
}

/* `count` distinct random fields of a big dict (count * 3 <= size): random
 * picks into a set of picked fields, replied in that set's hash order. The
 * picks end with probability 1; should they take absurdly long, the fields
 * are completed in hash order so that the loop is bounded. */
static int hrand_sparse(struct kv_ctx *c, struct kv_obj *o, uint64_t count, bool withvalues)
{
    struct kv_dict picked;
    kv_dict_init(&picked);
    uint64_t need = count;
    int r = 0;
    for (uint64_t tries = 0; need > 0 && tries < count * 8 + 64 && r == 0; tries++) {
        r = hpick_add(c->s, &picked, kv_dict_at(c->s, o->ptr, kv_rand(c->s)));
        if (r > 0) {
            need--;
            r = 0;
        }
    }
    if (r == 0 && need > 0) {
        void *a[3] = {c->s, &picked, &need};
        r = dict_walk(c->s, o->ptr, hpick_fill, a);
    }
    if (r == 0)
        r = kv_reply_array(c, withvalues ? count * 2 : count);
    if (r == 0) {
        struct hpick p = {c, o, withvalues};
        r = dict_walk(c->s, &picked, hpick_reply, &p);
    }
    kv_dict_clear(c->s, &picked, NULL);
    return r;
}

static int hrandfield_count(struct kv_ctx *c, int64_t count, bool withvalues)
{
    struct kv_obj *o;
    if (!hash_read(c, &o))
        return 0;
    if (!o || count == 0)
        return kv_reply_array(c, 0);
    uint64_t size = hash_len(o), per = withvalues ? 2 : 1;
    if (count < 0) {
        uint64_t n = (uint64_t)-count;
        if (n > HASH_RAND_MAX_REPEAT)
            return kv_reply_err(c, "ERR value is out of range");
        TRY(kv_reply_array(c, n * per));
        for (uint64_t i = 0; i < n; i++) {
            const uint8_t *f, *v;
            uint32_t fn, vn;
            hash_random(c->s, o, &f, &fn, &v, &vn);
            TRY(hrand_reply(c, f, fn, v, vn, withvalues));
        }
        return 0;
    }
    if ((uint64_t)count >= size) {
        TRY(kv_reply_array(c, size * per));
        struct hreply h = {c, withvalues ? H_FIELDS | H_VALUES : H_FIELDS};
        return hash_each(c->s, o, hreply_pair, &h);
    }
    if (o->enc == HASH_DICT && (uint64_t)count * 3 <= size)
        return hrand_sparse(c, o, (uint64_t)count, withvalues);
    TRY(kv_reply_array(c, (uint64_t)count * per));
    struct hsample h = {c, size, (uint64_t)count, withvalues};
    return hash_each(c->s, o, hsample_pair, &h);
}

KV_CMD(hrandfield)
{
    if (c->argc >= 3) {
        int64_t count;
        bool withvalues;
        if (!kv_rand_count_args(c, "withvalues", &count, &withvalues))
            return 0;
        return hrandfield_count(c, count, withvalues);
    }
    struct kv_obj *o;
    if (!hash_read(c, &o))
        return 0;
    if (!o)
        return kv_reply_null(c);
    const uint8_t *f, *v;
    uint32_t fn, vn;
    hash_random(c->s, o, &f, &fn, &v, &vn);
    return kv_reply_bulk(c, f, fn);
}
