/* t_set.c: sets (SADD ... SSCAN).
 *
 * Two encodings, as Redis 7.0 has:
 *   SET_INTSET: a sorted array of int64, while every member is a canonical
 *     integer (kv_parse_i64, Redis's string2ll) and there are at most 512
 *     (set-max-intset-entries): small integer sets reply sorted, as Redis's.
 *   SET_DICT: a struct kv_dict of the members (nothing in the entries);
 *     replies in hash order.
 * A set goes from intset to dict when a member does not fit, never back.
 *
 * Results of SUNION, SDIFF and the *STORE commands are built as a new set
 * (starting as an intset, as Redis's) and replied in that set's order;
 * SINTER replies in the order of the smallest input, which it walks (as
 * Redis does). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { SET_INTSET = 0, SET_DICT = 1 };

#define SET_INTSET_MAX 512
/* SRANDMEMBER with a negative count replies |count| members: Redis builds
 * any size (and dies of it); a replica must not, since a failed allocation
 * stops it. */
#define SET_RAND_MAX_REPEAT (1u << 20)

#define TRY(x)                  \
    do {                        \
        int r_ = (x);           \
        if (r_ < 0)             \
            return r_;          \
    } while (0)

/* A status internal to walks: stop early, not an error. */
#define SET_STOP (-ECANCELED)

struct intset {
    uint32_t n, cap;
    int64_t *a; /* strictly increasing */
};

/* ------------------------------------------------------------------ */
/* The structure.                                                      */

static void is_free(struct kv_store *s, struct intset *is)
{
    kv_free(s, is->a);
    kv_free(s, is);
}

static void sd_free(struct kv_store *s, struct kv_dict *d)
{
    kv_dict_clear(s, d, NULL);
    kv_free(s, d);
}

static void set_free_ptr(struct kv_store *s, uint8_t enc, void *ptr)
{
    if (enc == SET_INTSET)
        is_free(s, ptr);
    else
        sd_free(s, ptr);
}

static struct kv_obj *set_wrap(struct kv_store *s, uint8_t enc, void *ptr)
{
    struct kv_obj *o = kv_obj_new(s, KV_SET, enc, ptr);
    if (!o)
        set_free_ptr(s, enc, ptr);
    return o;
}

static struct kv_obj *set_new(struct kv_store *s)
{
    struct intset *is = kv_alloc(s, sizeof *is);
    if (!is)
        return NULL;
    *is = (struct intset){0};
    return set_wrap(s, SET_INTSET, is);
}

static struct kv_obj *set_new_dict(struct kv_store *s)
{
    struct kv_dict *d = kv_alloc(s, sizeof *d);
    if (!d)
        return NULL;
    kv_dict_init(d);
    return set_wrap(s, SET_DICT, d);
}

static void set_ops_free(struct kv_store *s, struct kv_obj *o)
{
    set_free_ptr(s, o->enc, o->ptr);
    kv_free(s, o);
}

static uint64_t set_len(const struct kv_obj *o)
{
    if (o->enc == SET_INTSET)
        return ((const struct intset *)o->ptr)->n;
    return kv_dict_size(o->ptr);
}

/* Where v is or would go: true when there. */
static bool is_find(const struct intset *is, int64_t v, uint32_t *pos)
{
    uint32_t lo = 0, hi = is->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (is->a[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return lo < is->n && is->a[lo] == v;
}

static bool set_has(struct kv_store *s, struct kv_obj *o, const uint8_t *p, size_t n)
{
    if (o->enc == SET_INTSET) {
        int64_t v;
        uint32_t pos;
        return kv_parse_i64(p, n, &v) && is_find(o->ptr, v, &pos);
    }
    return kv_dict_find(s, o->ptr, p, n) != NULL;
}

/* Intset to dict. On failure o is unchanged. */
static int set_convert(struct kv_store *s, struct kv_obj *o)
{
    RABIA_ASSERT(o->enc == SET_INTSET);
    struct intset *is = o->ptr;
    struct kv_dict *d = kv_alloc(s, sizeof *d);
    if (!d)
        return -ENOMEM;
    kv_dict_init(d);
    for (uint32_t i = 0; i < is->n; i++) {
        char buf[64];
        int n = kv_fmt_i64(buf, is->a[i]);
        if (!kv_dict_add(s, d, (const uint8_t *)buf, (size_t)n)) {
            sd_free(s, d);
            return -ENOMEM;
        }
    }
    is_free(s, is);
    o->ptr = d;
    o->enc = SET_DICT;
    return 0;
}

static int is_insert(struct kv_store *s, struct intset *is, uint32_t pos, int64_t v)
{
    if (is->n == is->cap) {
        uint32_t cap = is->cap ? is->cap * 2 : 4;
        int64_t *a = kv_realloc(s, is->a, (size_t)cap * sizeof *a);
        if (!a)
            return -ENOMEM;
        is->a = a;
        is->cap = cap;
    }
    memmove(&is->a[pos + 1], &is->a[pos], (size_t)(is->n - pos) * sizeof is->a[0]);
    is->a[pos] = v;
    is->n++;
    return 0;
}

static void is_remove(struct intset *is, uint32_t pos)
{
    memmove(&is->a[pos], &is->a[pos + 1], (size_t)(is->n - pos - 1) * sizeof is->a[0]);
    is->n--;
}

/* Add member p: 1 added, 0 already there, -ENOMEM. */
static int set_add(struct kv_store *s, struct kv_obj *o, const uint8_t *p, size_t n)
{
    if (o->enc == SET_INTSET) {
        int64_t v;
        uint32_t pos;
        if (kv_parse_i64(p, n, &v)) {
            struct intset *is = o->ptr;
            if (is_find(is, v, &pos))
                return 0;
            TRY(is_insert(s, is, pos, v));
            if (is->n > SET_INTSET_MAX)
                TRY(set_convert(s, o));
            return 1;
        }
        TRY(set_convert(s, o));
    }
    if (kv_dict_find(s, o->ptr, p, n))
        return 0;
    return kv_dict_add(s, o->ptr, p, n) ? 1 : -ENOMEM;
}

/* Remove member p: whether it was there. */
static bool set_rem(struct kv_store *s, struct kv_obj *o, const uint8_t *p, size_t n)
{
    if (o->enc == SET_INTSET) {
        int64_t v;
        uint32_t pos;
        if (!kv_parse_i64(p, n, &v) || !is_find(o->ptr, v, &pos))
            return false;
        is_remove(o->ptr, pos);
        return true;
    }
    struct kv_dent *e = kv_dict_unlink(s, o->ptr, p, n);
    kv_free(s, e);
    return e != NULL;
}

/* Visit every member in the set's order (ascending for an intset, hash
 * order for a dict). fn returns 0, or a negative status that stops the
 * walk and is returned. */
typedef int (*set_visit_fn)(void *arg, const uint8_t *p, size_t n);

struct set_walk {
    set_visit_fn fn;
    void *arg;
};

static int set_walk_dent(void *arg, struct kv_dent *e)
{
    struct set_walk *w = arg;
    return w->fn(w->arg, e->key, e->klen);
}

/* In steps, so that kv_dict_scan's scratch space stays small. */
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

static int set_each(struct kv_store *s, struct kv_obj *o, set_visit_fn fn, void *arg)
{
    if (o->enc == SET_INTSET) {
        struct intset *is = o->ptr;
        for (uint32_t i = 0; i < is->n; i++) {
            char buf[64];
            int n = kv_fmt_i64(buf, is->a[i]);
            TRY(fn(arg, (const uint8_t *)buf, (size_t)n));
        }
        return 0;
    }
    struct set_walk w = {fn, arg};
    return dict_walk(s, o->ptr, set_walk_dent, &w);
}

/* For other types (internal.h): the same, checked. */
uint64_t kv_set_card(const struct kv_obj *set)
{
    RABIA_ASSERT(set->type == KV_SET);
    return set_len(set);
}

bool kv_set_has(struct kv_store *s, struct kv_obj *set, const uint8_t *p, size_t n)
{
    RABIA_ASSERT(set->type == KV_SET);
    return set_has(s, set, p, n);
}

int kv_set_each(struct kv_store *s, struct kv_obj *set,
                int (*fn)(void *arg, const uint8_t *p, size_t n), void *arg)
{
    RABIA_ASSERT(set->type == KV_SET);
    return set_each(s, set, fn, arg);
}

/* A random member (the set is not empty), formatted into buf when it is
 * an integer. */
static void set_random(struct kv_store *s, struct kv_obj *o, char *buf, const uint8_t **p,
                       size_t *n)
{
    if (o->enc == SET_INTSET) {
        struct intset *is = o->ptr;
        *n = (size_t)kv_fmt_i64(buf, is->a[kv_rand(s) % is->n]);
        *p = (const uint8_t *)buf;
        return;
    }
    struct kv_dent *e = kv_dict_at(s, o->ptr, kv_rand(s));
    RABIA_ASSERT(e != NULL);
    *p = e->key;
    *n = e->klen;
}

/* ------------------------------------------------------------------ */
/* Type operations.                                                    */

static int set_save_member(void *arg, const uint8_t *p, size_t n)
{
    return kv_wr_str(arg, p, (uint32_t)n);
}

/* enc (u8), the member count (u64), then the members: int64s (as u64)
 * ascending for an intset, strings in hash order for a dict. */
static int set_ops_save(struct kv_store *s, const struct kv_obj *o, struct rabia_buf *out)
{
    TRY(kv_wr_u8(out, o->enc));
    TRY(kv_wr_u64(out, set_len(o)));
    if (o->enc == SET_INTSET) {
        const struct intset *is = o->ptr;
        for (uint32_t i = 0; i < is->n; i++)
            TRY(kv_wr_u64(out, (uint64_t)is->a[i]));
        return 0;
    }
    return set_each(s, (struct kv_obj *)o, set_save_member, out);
}

static int set_load_intset(struct kv_store *s, struct kv_rd *rd, uint64_t n, struct kv_obj *o)
{
    struct intset *is = o->ptr;
    if (n > SET_INTSET_MAX)
        return -EINVAL;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t u;
        if (!kv_rd_u64(rd, &u))
            return -EINVAL;
        int64_t v = (int64_t)u;
        if (i > 0 && v <= is->a[is->n - 1])
            return -EINVAL;
        TRY(is_insert(s, is, is->n, v));
    }
    return 0;
}

static int set_load_dict(struct kv_store *s, struct kv_rd *rd, uint64_t n, struct kv_obj *o)
{
    uint64_t prev = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *p;
        uint32_t len;
        if (!kv_rd_str(rd, &p, &len))
            return -EINVAL;
        /* Saved in hash order: a member out of order or twice is corrupt. */
        uint64_t h = kv_hash(p, len);
        if ((i > 0 && h < prev) || kv_dict_find(s, o->ptr, p, len))
            return -EINVAL;
        prev = h;
        if (!kv_dict_add(s, o->ptr, p, len))
            return -ENOMEM;
    }
    return 0;
}

static int set_ops_load(struct kv_store *s, struct kv_rd *rd, struct kv_obj **out)
{
    uint8_t enc;
    uint64_t n;
    if (!kv_rd_u8(rd, &enc) || !kv_rd_u64(rd, &n))
        return -EINVAL;
    /* An empty set is never stored; a member takes at least 4 bytes (a
     * string's length), an integer 8. */
    uint64_t left = (uint64_t)(rd->end - rd->p);
    if ((enc != SET_INTSET && enc != SET_DICT) || n == 0 ||
        n > left / (enc == SET_INTSET ? 8 : 4))
        return -EINVAL;
    struct kv_obj *o = enc == SET_INTSET ? set_new(s) : set_new_dict(s);
    if (!o)
        return -ENOMEM;
    int r = enc == SET_INTSET ? set_load_intset(s, rd, n, o) : set_load_dict(s, rd, n, o);
    if (r < 0) {
        set_ops_free(s, o);
        return r;
    }
    *out = o;
    return 0;
}

static int set_copy_dent(void *arg, struct kv_dent *e)
{
    void **a = arg;
    return kv_dict_add(a[0], a[1], e->key, e->klen) ? 0 : -ENOMEM;
}

static int set_ops_copy(struct kv_store *s, const struct kv_obj *src, struct kv_obj **out)
{
    struct kv_obj *o = src->enc == SET_INTSET ? set_new(s) : set_new_dict(s);
    if (!o)
        return -ENOMEM;
    int r = 0;
    if (src->enc == SET_INTSET) {
        const struct intset *from = src->ptr;
        struct intset *is = o->ptr;
        if (from->n) {
            is->a = kv_alloc(s, (size_t)from->n * sizeof is->a[0]);
            if (is->a) {
                memcpy(is->a, from->a, (size_t)from->n * sizeof is->a[0]);
                is->n = is->cap = from->n;
            } else {
                r = -ENOMEM;
            }
        }
    } else {
        void *a[2] = {s, o->ptr};
        r = dict_walk(s, src->ptr, set_copy_dent, a);
    }
    if (r < 0) {
        set_ops_free(s, o);
        return r;
    }
    *out = o;
    return 0;
}

/* From the contents only (not the capacity, which depends on the history
 * and differs after a snapshot load), so that every replica agrees. */
static uint64_t set_ops_mem(const struct kv_obj *o)
{
    uint64_t m = sizeof *o;
    if (o->enc == SET_INTSET) {
        const struct intset *is = o->ptr;
        return m + sizeof *is + (uint64_t)is->n * sizeof is->a[0];
    }
    const struct kv_dict *d = o->ptr;
    m += sizeof *d + kv_dict_table_bytes(d);
    /* Summing is order-free, so the chains may be read directly. */
    for (int t = 0; t < 2; t++) {
        if (!d->t[t])
            continue;
        for (uint64_t b = 0; b < (1ull << d->bits[t]); b++)
            for (const struct kv_dent *e = d->t[t][b]; e; e = e->next)
                m += sizeof *e + e->klen + 1;
    }
    return m;
}

const struct kv_type_ops kv_set_ops = {
    .name = "set",
    .free = set_ops_free,
    .save = set_ops_save,
    .load = set_ops_load,
    .copy = set_ops_copy,
    .mem = set_ops_mem,
    .len = set_len,
};

/* ------------------------------------------------------------------ */
/* Single-key commands.                                                */

/* The set at key argument i for reading: *o NULL when absent. false when
 * the key holds another type (WRONGTYPE replied). */
static bool set_read(struct kv_ctx *c, uint32_t i, struct kv_obj **o)
{
    struct kv_dent *e = kv_find_arg(c, i);
    if (!kv_type_ok(c, e, KV_SET))
        return false;
    *o = e ? e->v.p : NULL;
    return true;
}

static int reply_member(void *arg, const uint8_t *p, size_t n)
{
    return kv_reply_bulk(arg, p, n);
}

/* The whole set as an array, in its order. */
static int reply_set(struct kv_ctx *c, struct kv_obj *o)
{
    TRY(kv_reply_array(c, set_len(o)));
    return set_each(c->s, o, reply_member, c);
}

KV_CMD(sadd)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!kv_type_ok(c, e, KV_SET))
        return 0;
    if (!e) {
        struct kv_obj *o = set_new(c->s);
        if (!o)
            return -ENOMEM;
        e = kv_add(c, c->argv[1], c->len[1], o);
        if (!e)
            return -ENOMEM;
    }
    int64_t added = 0;
    for (uint32_t i = 2; i < c->argc; i++) {
        int r = set_add(c->s, e->v.p, c->argv[i], c->len[i]);
        if (r < 0)
            return r;
        added += r;
    }
    if (added)
        kv_touch(c, e);
    return kv_reply_int(c, added);
}

KV_CMD(srem)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!kv_type_ok(c, e, KV_SET))
        return 0;
    if (!e)
        return kv_reply_int(c, 0);
    struct kv_obj *o = e->v.p;
    int64_t removed = 0;
    for (uint32_t i = 2; i < c->argc; i++)
        removed += set_rem(c->s, o, c->argv[i], c->len[i]);
    if (removed) {
        kv_touch(c, e);
        kv_delete_if_empty(c, e, set_len(o));
    }
    return kv_reply_int(c, removed);
}

KV_CMD(sismember)
{
    struct kv_obj *o;
    if (!set_read(c, 1, &o))
        return 0;
    return kv_reply_int(c, o && set_has(c->s, o, c->argv[2], c->len[2]));
}

KV_CMD(smismember)
{
    struct kv_obj *o;
    if (!set_read(c, 1, &o))
        return 0;
    TRY(kv_reply_array(c, c->argc - 2));
    for (uint32_t i = 2; i < c->argc; i++)
        TRY(kv_reply_int(c, o && set_has(c->s, o, c->argv[i], c->len[i])));
    return 0;
}

KV_CMD(smembers)
{
    struct kv_obj *o;
    if (!set_read(c, 1, &o))
        return 0;
    return o ? reply_set(c, o) : kv_reply_array(c, 0);
}

KV_CMD(scard)
{
    struct kv_obj *o;
    if (!set_read(c, 1, &o))
        return 0;
    return kv_reply_int(c, o ? (int64_t)set_len(o) : 0);
}

/* Remove a random member and reply it. */
static int spop_one(struct kv_ctx *c, struct kv_obj *o)
{
    char buf[64];
    const uint8_t *p;
    size_t n;
    set_random(c->s, o, buf, &p, &n);
    TRY(kv_reply_bulk(c, p, n));
    /* p may point into the entry that set_rem frees: it is replied first. */
    bool removed = set_rem(c->s, o, p, n);
    RABIA_ASSERT(removed);
    return 0;
}

KV_CMD(spop)
{
    if (c->argc > 3)
        return kv_reply_err(c, KV_ERR_SYNTAX);
    int64_t count = 1;
    if (c->argc == 3 && (!kv_parse_i64(c->argv[2], c->len[2], &count) || count < 0))
        return kv_reply_err(c, KV_ERR_POSITIVE);
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!kv_type_ok(c, e, KV_SET))
        return 0;
    if (!e)
        return c->argc == 3 ? kv_reply_array(c, 0) : kv_reply_null(c);
    struct kv_obj *o = e->v.p;
    if (c->argc == 2) {
        TRY(spop_one(c, o));
    } else if (count == 0) {
        return kv_reply_array(c, 0);
    } else if ((uint64_t)count >= set_len(o)) {
        TRY(reply_set(c, o));
        kv_touch(c, e);
        kv_delete(c, e);
        return 0;
    } else {
        TRY(kv_reply_array(c, (uint64_t)count));
        for (int64_t i = 0; i < count; i++)
            TRY(spop_one(c, o));
    }
    kv_touch(c, e);
    kv_delete_if_empty(c, e, set_len(o));
    return 0;
}

/* ---- SRANDMEMBER ---- */

/* Selection sampling (Knuth's algorithm S): `want` members, each subset
 * equally likely, replied in the set's order. */
struct ssample {
    struct kv_ctx *c;
    uint64_t left, want;
};

static int ssample_member(void *arg, const uint8_t *p, size_t n)
{
    struct ssample *h = arg;
    bool take = h->want > 0 && kv_rand(h->c->s) % h->left < h->want;
    h->left--;
    if (!take)
        return 0;
    h->want--;
    return kv_reply_bulk(h->c, p, n);
}

/* Add e's member to picked unless there: 1 added, 0 already, -ENOMEM. */
static int spick_add(struct kv_store *s, struct kv_dict *picked, const struct kv_dent *e)
{
    if (kv_dict_find(s, picked, e->key, e->klen))
        return 0;
    return kv_dict_add(s, picked, e->key, e->klen) ? 1 : -ENOMEM;
}

static int spick_fill(void *arg, struct kv_dent *e)
{
    void **a = arg;
    uint64_t *need = a[2];
    if (*need == 0)
        return 0;
    int r = spick_add(a[0], a[1], e);
    if (r > 0)
        (*need)--;
    return r < 0 ? r : 0;
}

static int spick_reply(void *arg, struct kv_dent *e)
{
    return kv_reply_bulk(arg, e->key, e->klen);
}

/* `count` distinct random members of a big dict (count * 3 <= size):
 * random picks into a set of picked members, replied in its hash order.
 * The picks end with probability 1; should they take absurdly long, the
 * members are completed in hash order so that the loop is bounded. */
static int srand_sparse(struct kv_ctx *c, struct kv_obj *o, uint64_t count)
{
    struct kv_dict picked;
    kv_dict_init(&picked);
    uint64_t need = count;
    int r = 0;
    for (uint64_t tries = 0; need > 0 && tries < count * 8 + 64 && r == 0; tries++) {
        r = spick_add(c->s, &picked, kv_dict_at(c->s, o->ptr, kv_rand(c->s)));
        if (r > 0) {
            need--;
            r = 0;
        }
    }
    if (r == 0 && need > 0) {
        void *a[3] = {c->s, &picked, &need};
        r = dict_walk(c->s, o->ptr, spick_fill, a);
    }
    if (r == 0)
        r = kv_reply_array(c, count);
    if (r == 0)
        r = dict_walk(c->s, &picked, spick_reply, c);
    kv_dict_clear(c->s, &picked, NULL);
    return r;
}

static int srandmember_count(struct kv_ctx *c, struct kv_obj *o, int64_t count)
{
    uint64_t size = set_len(o);
    if (count < 0) {
        uint64_t n = (uint64_t)-count;
        if (n > SET_RAND_MAX_REPEAT)
            return kv_reply_err(c, "ERR value is out of range");
        TRY(kv_reply_array(c, n));
        for (uint64_t i = 0; i < n; i++) {
            char buf[64];
            const uint8_t *p;
            size_t len;
            set_random(c->s, o, buf, &p, &len);
            TRY(kv_reply_bulk(c, p, len));
        }
        return 0;
    }
    if ((uint64_t)count >= size)
        return reply_set(c, o);
    if (o->enc == SET_DICT && (uint64_t)count * 3 <= size)
        return srand_sparse(c, o, (uint64_t)count);
    TRY(kv_reply_array(c, (uint64_t)count));
    struct ssample h = {c, size, (uint64_t)count};
    return set_each(c->s, o, ssample_member, &h);
}

KV_CMD(srandmember)
{
    if (c->argc > 3)
        return kv_reply_err(c, KV_ERR_SYNTAX);
    int64_t count = 0;
    if (c->argc == 3) {
        if (!kv_arg_i64(c, 2, &count))
            return 0;
        if (count == INT64_MIN)
            return kv_reply_err(c, "ERR value is out of range, value must between "
                                   "-9223372036854775807 and 9223372036854775807");
    }
    struct kv_obj *o;
    if (!set_read(c, 1, &o))
        return 0;
    if (c->argc == 3)
        return o && count != 0 ? srandmember_count(c, o, count) : kv_reply_array(c, 0);
    if (!o)
        return kv_reply_null(c);
    char buf[64];
    const uint8_t *p;
    size_t n;
    set_random(c->s, o, buf, &p, &n);
    return kv_reply_bulk(c, p, n);
}

/* ------------------------------------------------------------------ */
/* Multi-key commands.                                                 */

struct setref {
    struct kv_obj *o; /* NULL: the key is absent (an empty set) */
    uint64_t size;
    uint32_t arg;     /* argument index: ties in size keep argument order */
};

/* The sets at key arguments first .. first+n-1 into refs (kv_alloc'ed, n
 * entries, freed by the caller; NULL and nothing to free when 0 is
 * returned). 1, 0 when a key holds another type (WRONGTYPE replied),
 * -ENOMEM. */
static int sets_read(struct kv_ctx *c, uint32_t first, uint32_t n, struct setref **refs)
{
    struct setref *r = kv_alloc(c->s, (size_t)n * sizeof *r);
    if (!r)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        struct kv_obj *o;
        if (!set_read(c, first + i, &o)) {
            kv_free(c->s, r);
            *refs = NULL;
            return 0;
        }
        r[i] = (struct setref){o, o ? set_len(o) : 0, first + i};
    }
    *refs = r;
    return 1;
}

static int setref_cmp(const void *a, const void *b)
{
    const struct setref *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? -1 : 1;
    return x->arg < y->arg ? -1 : x->arg > y->arg;
}

/* Where an operation's result goes: a reply, a new set, or a count. */
enum { OUT_REPLY, OUT_SET, OUT_COUNT };

struct setout {
    struct kv_ctx *c;
    int kind;
    struct kv_obj *set; /* OUT_SET */
    uint64_t n;         /* members output */
    uint64_t limit;     /* OUT_COUNT: stop there (0: no limit) */
};

static int out_member(struct setout *out, const uint8_t *p, size_t n)
{
    if (out->kind == OUT_SET) {
        int r = set_add(out->c->s, out->set, p, n);
        if (r < 0)
            return r;
        out->n += (uint64_t)r;
        return 0;
    }
    out->n++;
    if (out->kind == OUT_REPLY)
        return kv_reply_bulk(out->c, p, n);
    return out->limit && out->n >= out->limit ? SET_STOP : 0;
}

struct inter {
    struct setout *out;
    struct setref *refs;
    uint32_t nrefs;
};

static int inter_member(void *arg, const uint8_t *p, size_t n)
{
    struct inter *x = arg;
    for (uint32_t j = 1; j < x->nrefs; j++) {
        /* The walked set itself is skipped: a lookup may rehash a dict,
         * which must not change while it is walked. */
        if (x->refs[j].o != x->refs[0].o && !set_has(x->out->c->s, x->refs[j].o, p, n))
            return 0;
    }
    return out_member(x->out, p, n);
}

/* The intersection of refs (all present) into out: the smallest set is
 * walked in its order and each member looked up in the others. */
static int set_inter(struct setref *refs, uint32_t n, struct setout *out)
{
    qsort(refs, n, sizeof *refs, setref_cmp);
    struct inter x = {out, refs, n};
    int r = set_each(out->c->s, refs[0].o, inter_member, &x);
    return r == SET_STOP ? 0 : r;
}

static int union_member(void *arg, const uint8_t *p, size_t n)
{
    return out_member(arg, p, n);
}

struct diff {
    struct setout *out;
    struct setref *refs;
    uint32_t nrefs;
};

static int diff_member(void *arg, const uint8_t *p, size_t n)
{
    struct diff *x = arg;
    for (uint32_t j = 1; j < x->nrefs; j++)
        if (x->refs[j].o && set_has(x->out->c->s, x->refs[j].o, p, n))
            return 0;
    return out_member(x->out, p, n);
}

enum { OP_UNION, OP_DIFF };

/* The union or difference of refs into out->set. */
static int set_union_diff(struct setref *refs, uint32_t n, int op, struct setout *out)
{
    struct kv_store *s = out->c->s;
    if (op == OP_UNION) {
        for (uint32_t i = 0; i < n; i++)
            if (refs[i].o)
                TRY(set_each(s, refs[i].o, union_member, out));
        return 0;
    }
    if (!refs[0].o)
        return 0;
    /* A set minus itself is empty (and may not be looked up while it is
     * walked). */
    for (uint32_t j = 1; j < n; j++)
        if (refs[j].o == refs[0].o)
            return 0;
    struct diff x = {out, refs, n};
    return set_each(s, refs[0].o, diff_member, &x);
}

/* Store result (taken over) at key argument `dst`, replacing whatever
 * is there, or delete dst when result is empty; reply the count. */
static int store_result(struct kv_ctx *c, uint32_t dst, struct kv_obj *result)
{
    uint64_t n = set_len(result);
    if (n == 0) {
        set_ops_free(c->s, result);
        struct kv_dent *e = kv_find_arg(c, dst);
        if (e)
            kv_delete(c, e);
        return kv_reply_int(c, 0);
    }
    TRY(kv_set(c, c->argv[dst], c->len[dst], result, false));
    return kv_reply_int(c, (int64_t)n);
}

/* SINTER, SINTERSTORE (dst: the destination's argument index, else 0)
 * and SINTERCARD (limit >= 0) over key arguments first .. first+n-1. */
static int sinter_generic(struct kv_ctx *c, uint32_t first, uint32_t n, uint32_t dst,
                          int64_t limit)
{
    struct setref *refs;
    int r = sets_read(c, first, n, &refs);
    if (r <= 0)
        return r;
    bool empty = false;
    for (uint32_t i = 0; i < n; i++)
        empty |= refs[i].o == NULL;
    struct setout out = {.c = c, .kind = dst ? OUT_SET : limit >= 0 ? OUT_COUNT : OUT_REPLY,
                         .limit = limit > 0 ? (uint64_t)limit : 0};
    if (out.kind == OUT_SET) {
        out.set = set_new(c->s);
        if (!out.set) {
            kv_free(c->s, refs);
            return -ENOMEM;
        }
    }
    size_t mark = 0;
    if (out.kind == OUT_REPLY)
        mark = kv_reply_defer(c);
    r = empty ? 0 : set_inter(refs, n, &out);
    kv_free(c->s, refs);
    if (out.kind == OUT_SET) {
        if (r < 0) {
            set_ops_free(c->s, out.set);
            return r;
        }
        return store_result(c, dst, out.set);
    }
    if (r < 0)
        return r;
    if (out.kind == OUT_COUNT)
        return kv_reply_int(c, (int64_t)out.n);
    return kv_reply_set_len(c, mark, out.n);
}

/* SUNION, SDIFF and their STORE forms (dst 0: reply the result). */
static int sunion_diff_generic(struct kv_ctx *c, uint32_t first, uint32_t dst, int op)
{
    struct setref *refs;
    uint32_t n = c->argc - first;
    int r = sets_read(c, first, n, &refs);
    if (r <= 0)
        return r;
    struct setout out = {.c = c, .kind = OUT_SET, .set = set_new(c->s)};
    r = out.set ? set_union_diff(refs, n, op, &out) : -ENOMEM;
    kv_free(c->s, refs);
    if (r < 0) {
        if (out.set)
            set_ops_free(c->s, out.set);
        return r;
    }
    if (dst)
        return store_result(c, dst, out.set);
    r = reply_set(c, out.set);
    set_ops_free(c->s, out.set);
    return r;
}

KV_CMD(sinter)
{
    return sinter_generic(c, 1, c->argc - 1, 0, -1);
}

KV_CMD(sinterstore)
{
    return sinter_generic(c, 2, c->argc - 2, 1, -1);
}

KV_CMD(sunion)
{
    return sunion_diff_generic(c, 1, 0, OP_UNION);
}

KV_CMD(sunionstore)
{
    return sunion_diff_generic(c, 2, 1, OP_UNION);
}

KV_CMD(sdiff)
{
    return sunion_diff_generic(c, 1, 0, OP_DIFF);
}

KV_CMD(sdiffstore)
{
    return sunion_diff_generic(c, 2, 1, OP_DIFF);
}

KV_CMD(sintercard)
{
    int64_t numkeys, limit = 0;
    if (!kv_parse_i64(c->argv[1], c->len[1], &numkeys) || numkeys < 1)
        return kv_reply_err(c, "ERR numkeys should be greater than 0");
    if ((uint64_t)numkeys > c->argc - 2)
        return kv_reply_err(c, "ERR Number of keys can't be greater than number of args");
    for (uint32_t i = 2 + (uint32_t)numkeys; i < c->argc; i++) {
        if (!kv_arg_is(c, i, "limit") || i + 1 == c->argc)
            return kv_reply_err(c, KV_ERR_SYNTAX);
        i++;
        if (!kv_parse_i64(c->argv[i], c->len[i], &limit) || limit < 0)
            return kv_reply_err(c, "ERR LIMIT can't be negative");
    }
    return sinter_generic(c, 2, (uint32_t)numkeys, 0, limit);
}

KV_CMD(smove)
{
    struct kv_dent *src = kv_find_arg(c, 1);
    struct kv_dent *dst = kv_find_arg(c, 2);
    const uint8_t *m = c->argv[3];
    size_t mn = c->len[3];
    if (!src)
        return kv_reply_int(c, 0);
    if (!kv_type_ok(c, src, KV_SET) || !kv_type_ok(c, dst, KV_SET))
        return 0;
    if (src == dst)
        return kv_reply_int(c, set_has(c->s, src->v.p, m, mn));
    if (!set_rem(c->s, src->v.p, m, mn))
        return kv_reply_int(c, 0);
    kv_touch(c, src);
    kv_delete_if_empty(c, src, set_len(src->v.p));
    if (!dst) {
        struct kv_obj *o = set_new(c->s);
        if (!o)
            return -ENOMEM;
        dst = kv_add(c, c->argv[2], c->len[2], o);
        if (!dst)
            return -ENOMEM;
    }
    int r = set_add(c->s, dst->v.p, m, mn);
    if (r < 0)
        return r;
    if (r)
        kv_touch(c, dst);
    return kv_reply_int(c, 1);
}

/* SSCAN: an intset is returned whole with cursor 0 (as Redis does); a
 * dict is walked in hash order from the cursor (a hash value), as
 * kv_dict_scan_match says. */
static int sscan_dict(struct kv_ctx *c, struct kv_obj *o, uint64_t cursor,
                      const struct kv_scan_opts *opt)
{
    struct kv_scan_acc a = {.s = c->s, .opt = opt};
    uint64_t next;
    int r = kv_dict_scan_match(c->s, o->ptr, cursor, &a, &next);
    struct kv_dent **v = a.v;
    uint64_t n = a.n;
    char buf[64];
    if (r == 0)
        r = kv_reply_array(c, 2);
    if (r == 0)
        r = kv_reply_bulk(c, buf, (size_t)snprintf(buf, sizeof buf, "%llu", (unsigned long long)next));
    if (r == 0)
        r = kv_reply_array(c, n);
    for (uint64_t i = 0; i < n && r == 0; i++)
        r = kv_reply_bulk(c, v[i]->key, v[i]->klen);
    kv_free(c->s, v);
    return r;
}

static int sscan_intset(struct kv_ctx *c, struct kv_obj *o, const struct kv_scan_opts *opt)
{
    struct intset *is = o->ptr;
    char buf[64];
    for (int pass = 0; pass < 2; pass++) {
        uint64_t n = 0;
        for (uint32_t i = 0; i < is->n; i++) {
            int len = kv_fmt_i64(buf, is->a[i]);
            if (opt->match && !kv_glob(opt->match, opt->match_len, (const uint8_t *)buf, (size_t)len))
                continue;
            n++;
            if (pass == 1)
                TRY(kv_reply_bulk(c, buf, (size_t)len));
        }
        if (pass == 0) {
            TRY(kv_reply_array(c, 2));
            TRY(kv_reply_cstr(c, "0"));
            TRY(kv_reply_array(c, n));
        }
    }
    return 0;
}

KV_CMD(sscan)
{
    uint64_t cursor;
    struct kv_obj *o;
    struct kv_scan_opts opt;
    if (!kv_arg_cursor(c, 2, &cursor))
        return 0;
    /* Redis answers an absent key before looking at the options. */
    if (!set_read(c, 1, &o))
        return 0;
    if (!o) {
        TRY(kv_reply_array(c, 2));
        TRY(kv_reply_cstr(c, "0"));
        return kv_reply_array(c, 0);
    }
    if (!kv_scan_args(c, 3, false, &opt))
        return 0;
    if (o->enc == SET_INTSET)
        return sscan_intset(c, o, &opt);
    return sscan_dict(c, o, cursor, &opt);
}
