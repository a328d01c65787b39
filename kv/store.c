/* kv/store.c: the store's databases and keys: lookups with lazy expiry,
 * adds, replaces and deletes, WATCH versions, the expiry index and its
 * sweep, the log's clock and the slot-seeded random numbers. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ------------------------------------------------------------------ */
/* Counted allocation: malloc_usable_size is what the allocator really
 * holds for the block, so INFO memory adds up without per-block headers. */

void *kv_alloc(struct kv_store *s, size_t n)
{
    void *p = malloc(n ? n : 1);
    s->allocs++;
    if (p)
        s->mem += malloc_usable_size(p);
    return p;
}

void *kv_realloc(struct kv_store *s, void *p, size_t n)
{
    size_t old = p ? malloc_usable_size(p) : 0;
    void *q = realloc(p, n ? n : 1);
    s->allocs++;
    if (!q)
        return NULL;
    RABIA_ASSERT(s->mem >= old);
    s->mem = s->mem - old + malloc_usable_size(q);
    return q;
}

void kv_free(struct kv_store *s, void *p)
{
    if (!p)
        return;
    size_t n = malloc_usable_size(p);
    RABIA_ASSERT(s->mem >= n);
    s->mem -= n;
    free(p);
}

uint8_t *kv_dup(struct kv_store *s, const uint8_t *p, size_t n)
{
    uint8_t *d = kv_alloc(s, n + 1);
    if (d) {
        if (n)
            memcpy(d, p, n);
        d[n] = 0;
    }
    return d;
}

/* ------------------------------------------------------------------ */
/* Objects. */

struct kv_obj *kv_str_new(struct kv_store *s, const uint8_t *p, size_t n)
{
    RABIA_ASSERT(n <= UINT32_MAX);
    struct kv_obj *o = kv_alloc(s, sizeof *o + n + 1);
    if (!o)
        return NULL;
    o->type = KV_STRING;
    o->enc = 0;
    o->len = (uint32_t)n;
    o->ptr = NULL;
    o->hsum = 0;
    if (n)
        memcpy(o->str, p, n);
    o->str[n] = 0;
    return o;
}

struct kv_obj *kv_str_resize(struct kv_store *s, struct kv_obj *o, size_t n)
{
    RABIA_ASSERT(o->type == KV_STRING && n <= UINT32_MAX);
    struct kv_obj *r = kv_realloc(s, o, sizeof *r + n + 1);
    if (!r)
        return NULL;
    if (n > r->len)
        memset(r->str + r->len, 0, n - r->len);
    r->len = (uint32_t)n;
    r->str[n] = 0;
    return r;
}

struct kv_obj *kv_obj_new(struct kv_store *s, uint8_t type, uint8_t enc, void *ptr)
{
    RABIA_ASSERT(type > KV_STRING && type < KV_NTYPES);
    struct kv_obj *o = kv_alloc(s, sizeof *o);
    if (!o)
        return NULL;
    o->type = type;
    o->enc = enc;
    o->len = 0;
    o->ptr = ptr;
    o->hsum = 0;
    return o;
}

const struct kv_type_ops *kv_type_ops(uint8_t type)
{
    switch (type) {
    case KV_STRING: return &kv_string_ops;
    case KV_LIST: return &kv_list_ops;
    case KV_SET: return &kv_set_ops;
    case KV_ZSET: return &kv_zset_ops;
    case KV_HASH: return &kv_hash_ops;
    default: return NULL;
    }
}

void kv_obj_free(struct kv_store *s, struct kv_obj *o)
{
    if (!o)
        return;
    const struct kv_type_ops *t = kv_type_ops(o->type);
    RABIA_ASSERT(t && t->free);
    t->free(s, o);
}

/* ------------------------------------------------------------------ */
/* Keys. */

bool kv_expired(struct kv_store *s, const struct kv_dent *e)
{
    if (e->x == 0)
        return false;
    if (s->now_ms > e->x) /* Redis: expired when now > when */
        return true;
    if (s->query && s->query_now > e->x)
        s->query_clock = true;
    return false;
}

static bool expired(struct kv_store *s, const struct kv_dent *e) { return kv_expired(s, e); }

/* Remove e from db (it is in db->keys): its expiry entry, its value, the
 * entry itself. */
static void drop_key(struct kv_store *s, struct kv_db *db, struct kv_dent *e)
{
    RABIA_ASSERT(!s->query);
    if (e->x) {
        struct kv_dent *x = kv_dict_unlink(s, &db->expires, e->key, e->klen);
        RABIA_ASSERT(x && x->v.p == e);
        kv_free(s, x);
    }
    struct kv_dent *k = kv_dict_unlink(s, &db->keys, e->key, e->klen);
    RABIA_ASSERT(k == e);
    kv_hash_detach(s, k, k->v.p); /* v.p NULL: moved away, detached already */
    db->gone[k->hash % KV_GONE_SLOTS] = ++s->version;
    kv_obj_free(s, k->v.p);
    kv_free(s, k);
}

struct kv_dent *kv_find(struct kv_ctx *c, const uint8_t *k, size_t n)
{
    struct kv_dent *e = kv_dict_find(c->s, &c->db->keys, k, n);
    if (e && expired(c->s, e)) {
        if (c->s->query)
            return NULL; /* reclaimed by the next write that finds it, or the sweep: both in the log */
        drop_key(c->s, c->db, e);
        c->s->expired_keys++;
        return NULL;
    }
    return e;
}

struct kv_dent *kv_find_arg(struct kv_ctx *c, uint32_t i)
{
    RABIA_ASSERT(i < c->argc);
    return kv_find(c, c->argv[i], c->len[i]);
}

bool kv_type_ok(struct kv_ctx *c, const struct kv_dent *e, uint8_t t)
{
    if (!e || ((const struct kv_obj *)e->v.p)->type == t)
        return true;
    kv_reply_err(c, KV_ERR_WRONGTYPE);
    return false;
}

void kv_touch(struct kv_ctx *c, struct kv_dent *e)
{
    RABIA_ASSERT(e->v.p);
    RABIA_ASSERT(!c->s->query); /* a read answered outside the log changes nothing */
    e->ver = ++c->s->version;
    kv_hash_dirty(c->s, e, c->dbi);
}

struct kv_dent *kv_add(struct kv_ctx *c, const uint8_t *k, size_t n, struct kv_obj *o)
{
    RABIA_ASSERT(o);
    RABIA_ASSERT(!kv_dict_find(c->s, &c->db->keys, k, n));
    struct kv_dent *e = kv_dict_add(c->s, &c->db->keys, k, n);
    if (!e) {
        kv_obj_free(c->s, o);
        return NULL;
    }
    o->hsum = 0; /* not in key_sum until settled (o may come from another key: move_value) */
    e->v.p = o;
    kv_touch(c, e);
    return e;
}

void kv_replace(struct kv_ctx *c, struct kv_dent *e, struct kv_obj *o, bool keep_ttl)
{
    RABIA_ASSERT(o && e->v.p != o);
    kv_hash_detach(c->s, e, e->v.p);
    kv_obj_free(c->s, e->v.p);
    o->hsum = 0;
    e->v.p = o;
    if (!keep_ttl && e->x) {
        int rc = kv_set_expire(c, e, 0); /* clearing never allocates */
        RABIA_ASSERT(rc == 0);
    }
    kv_touch(c, e);
}

int kv_set(struct kv_ctx *c, const uint8_t *k, size_t n, struct kv_obj *o, bool keep_ttl)
{
    struct kv_dent *e = kv_find(c, k, n);
    if (e) {
        kv_replace(c, e, o, keep_ttl);
        return 0;
    }
    return kv_add(c, k, n, o) ? 0 : -ENOMEM;
}

void kv_delete(struct kv_ctx *c, struct kv_dent *e)
{
    drop_key(c->s, c->db, e);
}

bool kv_delete_if_empty(struct kv_ctx *c, struct kv_dent *e, uint64_t members)
{
    if (members)
        return false;
    kv_delete(c, e);
    return true;
}

int kv_set_expire(struct kv_ctx *c, struct kv_dent *e, uint64_t ms)
{
    struct kv_db *db = c->db;
    if (ms == 0) {
        if (e->x) {
            struct kv_dent *x = kv_dict_unlink(c->s, &db->expires, e->key, e->klen);
            RABIA_ASSERT(x && x->v.p == e);
            kv_free(c->s, x);
        }
    } else if (!e->x) {
        struct kv_dent *x = kv_dict_add(c->s, &db->expires, e->key, e->klen);
        if (!x)
            return -ENOMEM;
        x->v.p = e;
    }
    e->x = ms;
    kv_touch(c, e);
    return 0;
}

void kv_key_ready(struct kv_ctx *c, const uint8_t *k, size_t n)
{
    kv_event(c->s, RABIA_SM_EV_KEY_READY, c->dbi, k, n, NULL, 0);
}

uint64_t kv_key_version(struct kv_ctx *c, const uint8_t *k, size_t n)
{
    struct kv_dent *e = kv_find(c, k, n);
    return e ? e->ver : c->db->gone[kv_hash(k, n) % KV_GONE_SLOTS];
}

void kv_event(struct kv_store *s, uint32_t kind, uint32_t db, const uint8_t *a, size_t an,
              const uint8_t *b, size_t bn)
{
    RABIA_ASSERT(!s->query);
    if (!s->ev_fn)
        return;
    struct rabia_sm_event ev = {.kind = kind, .db = db, .a = a, .a_len = an, .b = b, .b_len = bn};
    s->ev_fn(s->ev_arg, &ev);
}

/* splitmix64: small, fast, and the same everywhere. */
uint64_t kv_rand(struct kv_store *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void release_key(struct kv_store *s, struct kv_dent *e)
{
    kv_hash_detach(s, e, e->v.p);
    kv_obj_free(s, e->v.p);
}

static void release_key_marked(struct kv_store *s, struct kv_dent *e)
{
    s->flush_hit[e->hash % KV_GONE_SLOTS] = true;
    release_key(s, e);
}

void kv_db_flush(struct kv_store *s, uint32_t i)
{
    RABIA_ASSERT(i < KV_DBS);
    struct kv_db *db = &s->db[i];
    kv_dict_clear(s, &db->expires, NULL);
    db->sweep = 0;
    if (s->feature_level < KV_LEVEL_FLUSH_WATCH) {
        kv_dict_clear(s, &db->keys, release_key);
        uint64_t v = ++s->version; /* every key of the database is gone */
        for (int k = 0; k < KV_GONE_SLOTS; k++)
            db->gone[k] = v;
        return;
    }
    /* the slots of the keys deleted, as any delete bumps its key's */
    memset(s->flush_hit, 0, sizeof s->flush_hit);
    kv_dict_clear(s, &db->keys, release_key_marked);
    uint64_t v = 0;
    for (int k = 0; k < KV_GONE_SLOTS; k++)
        if (s->flush_hit[k])
            db->gone[k] = v ? v : (v = ++s->version);
}

struct sweep_walk {
    struct kv_store *s;
    struct kv_dent **due;
    uint64_t n, cap;
};

static int sweep_visit(void *arg, struct kv_dent *x)
{
    struct sweep_walk *w = arg;
    struct kv_dent *e = x->v.p;
    if (!expired(w->s, e) || w->n == w->cap)
        return 0;
    w->due[w->n++] = e;
    return 0;
}

uint64_t kv_db_sweep(struct kv_store *s, uint32_t i, uint64_t budget)
{
    RABIA_ASSERT(i < KV_DBS);
    struct kv_db *db = &s->db[i];
    if (budget == 0 || kv_dict_size(&db->expires) == 0)
        return 0;
    /* Collect first: the dict must not change while it is walked. */
    struct kv_dent *due[256];
    struct sweep_walk w = {.s = s, .due = due, .n = 0, .cap = budget < 256 ? budget : 256};
    int err = 0;
    uint64_t next = kv_dict_scan(s, &db->expires, db->sweep, w.cap, sweep_visit, &w, &err);
    if (err)
        return 0; /* no scratch memory: try again later, nothing changed */
    /* a full collector may have left expired keys behind in the range: the
     * next sweep walks it again (those deleted now are gone from it) */
    if (w.n < w.cap)
        db->sweep = next;
    for (uint64_t k = 0; k < w.n; k++)
        drop_key(s, db, due[k]);
    s->expired_keys += w.n;
    return w.n;
}

/* ------------------------------------------------------------------ */
/* The store. */

struct kv_store *kv_store_new(void)
{
    struct kv_store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    for (int i = 0; i < KV_DBS; i++) {
        kv_dict_init(&s->db[i].keys);
        kv_dict_init(&s->db[i].expires);
    }
    kv_dict_init(&s->scripts);
    return s;
}

void kv_store_free(struct kv_store *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < KV_DBS; i++) {
        kv_dict_clear(s, &s->db[i].expires, NULL);
        kv_dict_clear(s, &s->db[i].keys, release_key);
    }
    kv_scripts_clear(s);
    kv_free(s, s->scratch);
    RABIA_ASSERT(s->n_dirty == 0 && s->key_sum == 0 && s->script_sum == 0);
    free(s->dirty);
    rabia_buf_free(&s->hbuf);
    free(s);
}
