/* Hash tables for the keyspace and the collections.
 *
 * Buckets are indexed by the TOP bits of the hash, so a bucket of a table
 * with b bits is one contiguous range of the hash space, and the buckets of
 * a table are in hash order. Everything a caller can observe (kv_dict_scan's
 * order, kv_dict_at's choice) is defined by (hash, key) order, which
 * depends only on the contents: not on the table sizes, the rehashing
 * progress or the order of insertion. That is what lets replicas whose
 * tables had different histories (one restored from a snapshot) answer
 * alike.
 *
 * A scan cursor is a hash value: the call visits the entries with hash in
 * [cursor, next). Entries present throughout a full scan are therefore
 * visited exactly once whatever the tables do between calls, because a
 * hash never moves.
 *
 * s->scratch is used as a stack of entry pointers (struct scan_stack,
 * scratch_cap in bytes), because a scan's callback may itself scan another
 * dict (a snapshot saves a hash while walking the keyspace): each call
 * pushes its range above the caller's and re-reads s->scratch after every
 * callback, as the nested call may have moved it. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "internal.h"

/* XXH3's output is final from xxHash 0.8.0 on (0.7.x computed other
 * values): replicas built against different versions would order their
 * tables, scans and snapshots differently. */
#if XXH_VERSION_NUMBER < 800
#error "kv/ needs xxHash 0.8.0 or later (stable XXH3)"
#endif

#define KV_HASH_SEED 0x5ab1a7e5c0ffee01ull
#define DICT_MIN_BITS 2   /* 4 buckets */
#define DICT_MAX_BITS 56  /* beyond, a table's size would overflow size_t math */
#define REHASH_EMPTY_VISITS 10

uint64_t kv_hash(const uint8_t *p, size_t n)
{
    return XXH3_64bits_withSeed(p, n, KV_HASH_SEED);
}

void kv_dict_init(struct kv_dict *d)
{
    memset(d, 0, sizeof *d);
    d->rehash = -1;
}

uint64_t kv_dict_size(const struct kv_dict *d)
{
    return d->used[0] + d->used[1];
}

static uint64_t nbuckets(const struct kv_dict *d, int i)
{
    return d->t[i] ? (uint64_t)1 << d->bits[i] : 0;
}

/* Never shifts by 64: a table always has DICT_MIN_BITS or more. */
static uint64_t bucket_of(uint64_t h, uint8_t bits)
{
    RABIA_ASSERT(bits >= DICT_MIN_BITS && bits <= DICT_MAX_BITS);
    return h >> (64 - bits);
}

/* (hash, key bytes, shorter first): a total order on distinct keys. */
static int dent_cmp(const struct kv_dent *a, const struct kv_dent *b)
{
    if (a->hash != b->hash)
        return a->hash < b->hash ? -1 : 1;
    uint32_t n = a->klen < b->klen ? a->klen : b->klen;
    int r = n ? memcmp(a->key, b->key, n) : 0;
    if (r)
        return r;
    return a->klen < b->klen ? -1 : a->klen > b->klen;
}

static struct kv_dent **table_new(struct kv_store *s, uint8_t bits)
{
    size_t bytes = ((size_t)1 << bits) * sizeof(struct kv_dent *);
    struct kv_dent **t = kv_alloc(s, bytes);
    if (t)
        memset(t, 0, bytes);
    return t;
}

static void start_rehash(struct kv_store *s, struct kv_dict *d, uint8_t bits)
{
    RABIA_ASSERT(d->rehash < 0 && d->t[0] && !d->t[1]);
    if (bits == d->bits[0])
        return;
    /* On allocation failure the table just stays as it is: its size is
     * invisible to callers, and the next add or unlink tries again. */
    struct kv_dent **t = table_new(s, bits);
    if (!t)
        return;
    d->t[1] = t;
    d->bits[1] = bits;
    d->used[1] = 0;
    d->rehash = 0;
}

static void finish_rehash(struct kv_store *s, struct kv_dict *d)
{
    RABIA_ASSERT(d->used[0] == 0);
    kv_free(s, d->t[0]);
    d->t[0] = d->t[1];
    d->bits[0] = d->bits[1];
    d->used[0] = d->used[1];
    d->t[1] = NULL;
    d->bits[1] = 0;
    d->used[1] = 0;
    d->rehash = -1;
}

static uint8_t bits_for(uint64_t n)
{
    uint8_t b = DICT_MIN_BITS;
    while (b < DICT_MAX_BITS && ((uint64_t)1 << b) < n)
        b++;
    return b;
}

/* Below 1/8 full: shrink to the smallest table that holds the entries. */
static void maybe_shrink(struct kv_store *s, struct kv_dict *d)
{
    if (d->rehash < 0 && d->t[0] && d->bits[0] > DICT_MIN_BITS && d->used[0] < nbuckets(d, 0) / 8)
        start_rehash(s, d, bits_for(d->used[0]));
}

/* Move one non-empty t[0] bucket to t[1], looking at no more than
 * REHASH_EMPTY_VISITS empty ones on the way. */
static void rehash_step(struct kv_store *s, struct kv_dict *d)
{
    if (d->rehash < 0 || s->query) /* a read outside the log moves nothing (kv_query) */
        return;
    uint64_t n0 = nbuckets(d, 0);
    for (int empty = 0; d->used[0] && (uint64_t)d->rehash < n0; d->rehash++) {
        struct kv_dent *e = d->t[0][d->rehash];
        if (!e) {
            if (++empty >= REHASH_EMPTY_VISITS) {
                d->rehash++;
                break;
            }
            continue;
        }
        d->t[0][d->rehash] = NULL;
        while (e) {
            struct kv_dent *next = e->next;
            uint64_t b = bucket_of(e->hash, d->bits[1]);
            e->next = d->t[1][b];
            d->t[1][b] = e;
            d->used[0]--;
            d->used[1]++;
            e = next;
        }
        d->rehash++;
        break;
    }
    if (d->used[0] == 0) {
        finish_rehash(s, d);
        /* entries removed while growing may leave the new table sparse */
        maybe_shrink(s, d);
    }
}

const struct kv_dent *kv_dict_peek(const struct kv_dict *d, const uint8_t *k, size_t n)
{
    if (kv_dict_size(d) == 0)
        return NULL;
    uint64_t h = kv_hash(k, n);
    for (int i = 0; i < 2; i++) {
        if (!d->t[i])
            continue;
        for (const struct kv_dent *e = d->t[i][bucket_of(h, d->bits[i])]; e; e = e->next)
            if (e->hash == h && e->klen == n && (n == 0 || memcmp(e->key, k, n) == 0))
                return e;
    }
    return NULL;
}

struct kv_dent *kv_dict_find(struct kv_store *s, struct kv_dict *d, const uint8_t *k, size_t n)
{
    rehash_step(s, d);
    return (struct kv_dent *)kv_dict_peek(d, k, n);
}

void kv_dict_prefetch(const struct kv_dict *d, uint64_t h, int stage)
{
    for (int i = 0; i < 2; i++) {
        if (!d->t[i])
            continue;
        struct kv_dent *const *slot = &d->t[i][bucket_of(h, d->bits[i])];
        if (stage == 1) {
            __builtin_prefetch(slot);
            continue;
        }
        const struct kv_dent *e = *slot;
        if (stage == 2) {
            if (e) { /* the entry and its key: a 16-byte key ends in the second line */
                __builtin_prefetch(e);
                __builtin_prefetch((const char *)e + 64);
            }
            continue;
        }
        for (int k = 0; e && k < 4; e = e->next, k++) /* chains are short: load <= 1 */
            if (e->hash == h) {
                const char *v = e->v.p;
                if (v) {
                    __builtin_prefetch(v);
                    __builtin_prefetch(v + 64);
                }
                return;
            }
    }
}

struct kv_dent *kv_dict_add(struct kv_store *s, struct kv_dict *d, const uint8_t *k, size_t n)
{
    if (n > UINT32_MAX)
        return NULL;
    rehash_step(s, d);
    if (!d->t[0]) {
        d->t[0] = table_new(s, DICT_MIN_BITS);
        if (!d->t[0])
            return NULL;
        d->bits[0] = DICT_MIN_BITS;
    } else if (d->rehash < 0 && d->used[0] >= nbuckets(d, 0)) {
        uint8_t b = bits_for(d->used[0] + 1);
        if (b <= d->bits[0])
            b = d->bits[0] + 1 <= DICT_MAX_BITS ? d->bits[0] + 1 : DICT_MAX_BITS;
        start_rehash(s, d, b);
    }
    struct kv_dent *e = kv_alloc(s, sizeof *e + n + 1);
    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    e->hash = kv_hash(k, n);
    e->klen = (uint32_t)n;
    if (n)
        memcpy(e->key, k, n);
    e->key[n] = 0;
    int i = d->rehash >= 0 ? 1 : 0;
    uint64_t b = bucket_of(e->hash, d->bits[i]);
    e->next = d->t[i][b];
    d->t[i][b] = e;
    d->used[i]++;
    return e;
}

struct kv_dent *kv_dict_unlink(struct kv_store *s, struct kv_dict *d, const uint8_t *k, size_t n)
{
    rehash_step(s, d);
    if (kv_dict_size(d) == 0)
        return NULL;
    uint64_t h = kv_hash(k, n);
    for (int i = 0; i < 2; i++) {
        if (!d->t[i])
            continue;
        for (struct kv_dent **pp = &d->t[i][bucket_of(h, d->bits[i])]; *pp; pp = &(*pp)->next) {
            struct kv_dent *e = *pp;
            if (e->hash != h || e->klen != n || (n && memcmp(e->key, k, n) != 0))
                continue;
            *pp = e->next;
            e->next = NULL;
            d->used[i]--;
            if (i == 0 && d->rehash >= 0 && d->used[0] == 0)
                finish_rehash(s, d);
            maybe_shrink(s, d);
            return e;
        }
    }
    return NULL;
}

void kv_dict_clear(struct kv_store *s, struct kv_dict *d,
                   void (*release)(struct kv_store *s, struct kv_dent *e))
{
    for (int i = 0; i < 2; i++) {
        uint64_t nb = nbuckets(d, i);
        for (uint64_t b = 0; b < nb; b++) {
            struct kv_dent *e = d->t[i][b];
            while (e) {
                struct kv_dent *next = e->next;
                if (release)
                    release(s, e);
                kv_free(s, e);
                e = next;
            }
        }
        kv_free(s, d->t[i]);
    }
    kv_dict_init(d);
}

uint64_t kv_dict_table_bytes(const struct kv_dict *d)
{
    return (nbuckets(d, 0) + nbuckets(d, 1)) * sizeof(struct kv_dent *);
}

/* ------------------------------------------------------------------ */
/* Walking in hash order.                                              */

/* The finest bucket width of the tables present: a range of that width
 * lies within one bucket of each table. */
static uint8_t range_bits(const struct kv_dict *d)
{
    uint8_t b = d->t[0] ? d->bits[0] : 0;
    if (d->t[1] && d->bits[1] > b)
        b = d->bits[1];
    return b;
}

/* The last hash of the range holding h. */
static uint64_t range_end(uint64_t h, uint8_t bits)
{
    return bits ? h | (UINT64_MAX >> bits) : UINT64_MAX;
}

/* Calls fn(arg, e) for each entry with lo <= hash <= hi (one range: within
 * a single bucket of each table), in no particular order; stops at the
 * first nonzero return. */
static int range_each(const struct kv_dict *d, uint64_t lo, uint64_t hi,
                      int (*fn)(void *arg, struct kv_dent *e), void *arg)
{
    for (int i = 0; i < 2; i++) {
        if (!d->t[i])
            continue;
        for (struct kv_dent *e = d->t[i][bucket_of(lo, d->bits[i])]; e; e = e->next) {
            if (e->hash < lo || e->hash > hi)
                continue;
            int r = fn(arg, e);
            if (r)
                return r;
        }
    }
    return 0;
}

struct scan_stack {
    size_t top;
    struct kv_dent *e[];
};

struct gather {
    struct kv_store *s;
    size_t n;   /* entries counted / pushed */
    size_t cap; /* entries that fit above the base */
    size_t base;
};

static int count_one(void *arg, struct kv_dent *e)
{
    ((struct gather *)arg)->n++;
    return 0;
}

static int push_one(void *arg, struct kv_dent *e)
{
    struct gather *g = arg;
    struct scan_stack *st = g->s->scratch;
    RABIA_ASSERT(g->n < g->cap);
    st->e[g->base + g->n++] = e;
    return 0;
}

/* Room for n more entries on the stack. 0 or -ENOMEM. */
static int stack_reserve(struct kv_store *s, size_t n)
{
    size_t top = s->scratch ? ((struct scan_stack *)s->scratch)->top : 0;
    size_t need = sizeof(struct scan_stack) + (top + n) * sizeof(struct kv_dent *);
    if (s->scratch && s->scratch_cap >= need)
        return 0;
    size_t cap = s->scratch_cap ? s->scratch_cap : 256;
    while (cap < need)
        cap *= 2;
    struct scan_stack *st = kv_realloc(s, s->scratch, cap);
    if (!st)
        return -ENOMEM;
    if (!s->scratch)
        st->top = 0;
    s->scratch = st;
    s->scratch_cap = cap;
    return 0;
}

static int dent_qcmp(const void *a, const void *b)
{
    return dent_cmp(*(struct kv_dent *const *)a, *(struct kv_dent *const *)b);
}

static void sort_dents(struct kv_dent **v, size_t n)
{
    if (n > 16) {
        qsort(v, n, sizeof *v, dent_qcmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        struct kv_dent *x = v[i];
        size_t j = i;
        for (; j > 0 && dent_cmp(v[j - 1], x) > 0; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

/* Visit the entries with lo <= hash <= hi in (hash, key) order. Returns the
 * number visited, or a negative errno (fn's, or -ENOMEM). */
/* Visit the entries of hashes [lo, hi] in order, stopping once `budget`
 * were visited and the next has another hash; *next is where to go on:
 * past the last hash visited when stopped early, hi + 1 otherwise. Where
 * it stops depends on the entries only, never on the table's size (a
 * replica restored from a snapshot has other table sizes than one that
 * grew and shrank, and SCAN's cursors and the sweep's deletions must
 * agree). */
static int64_t scan_range(struct kv_store *s, const struct kv_dict *d, uint64_t lo, uint64_t hi, uint64_t budget,
                          int (*fn)(void *arg, struct kv_dent *e), void *arg, uint64_t *next)
{
    struct gather g = {.s = s};
    *next = hi + 1;
    range_each(d, lo, hi, count_one, &g);
    if (g.n == 0)
        return 0;
    if (stack_reserve(s, g.n) != 0)
        return -ENOMEM;
    struct scan_stack *st = s->scratch;
    g.base = st->top;
    g.cap = g.n;
    g.n = 0;
    range_each(d, lo, hi, push_one, &g);
    RABIA_ASSERT(g.n == g.cap);
    st->top = g.base + g.n;
    sort_dents(st->e + g.base, g.n);
    int rc = 0;
    size_t i = 0;
    uint64_t last = 0;
    for (; i < g.n && rc == 0; i++) {
        /* fn may scan another dict, which may move the stack */
        st = s->scratch;
        struct kv_dent *e = st->e[g.base + i];
        if (i >= budget && e->hash != last) {
            *next = last + 1; /* last < e->hash: no overflow */
            break;
        }
        last = e->hash;
        rc = fn(arg, e);
    }
    /* COUNT reached (inside the range or at its very end): go on after the
     * last hash visited, not at the range's end, which depends on the table */
    if (i > 0 && i >= budget)
        *next = last + 1;
    st = s->scratch;
    RABIA_ASSERT(st->top == g.base + g.n);
    st->top = g.base;
    return rc < 0 ? rc : (int64_t)i;
}

uint64_t kv_dict_scan(struct kv_store *s, struct kv_dict *d, uint64_t cursor, uint64_t count,
                      int (*fn)(void *arg, struct kv_dent *e), void *arg, int *err)
{
    if (err)
        *err = 0;
    if (kv_dict_size(d) == 0)
        return 0;
    uint8_t bits = range_bits(d);
    uint64_t visited = 0;
    do {
        uint64_t hi = range_end(cursor, bits), next;
        int64_t r = scan_range(s, d, cursor, hi, count - visited, fn, arg, &next);
        if (r < 0) {
            if (err)
                *err = (int)r;
            return 0;
        }
        visited += (uint64_t)r;
        cursor = next; /* 0 past the end of the hash space */
    } while (cursor != 0 && visited < count);
    return cursor;
}

struct best {
    struct kv_dent *e;
};

static int keep_least(void *arg, struct kv_dent *e)
{
    struct best *b = arg;
    if (!b->e || dent_cmp(e, b->e) < 0)
        b->e = e;
    return 0;
}

/* The least entry with hash >= r, or NULL. */
static struct kv_dent *first_from(const struct kv_dict *d, uint64_t r)
{
    uint8_t bits = range_bits(d);
    do {
        uint64_t hi = range_end(r, bits);
        struct best b = {0};
        range_each(d, r, hi, keep_least, &b);
        if (b.e)
            return b.e;
        r = hi + 1;
    } while (r != 0);
    return NULL;
}

struct kv_dent *kv_dict_at(struct kv_store *s, struct kv_dict *d, uint64_t r)
{
    if (kv_dict_size(d) == 0)
        return NULL;
    struct kv_dent *e = first_from(d, r);
    if (!e)
        e = first_from(d, 0);
    RABIA_ASSERT(e);
    return e;
}

int kv_scan_take(void *arg, struct kv_dent *e)
{
    struct kv_scan_acc *a = arg;
    if (a->opt->match && !kv_glob(a->opt->match, a->opt->match_len, e->key, e->klen))
        return 0;
    if (a->n == a->cap) {
        uint64_t cap = a->cap ? a->cap * 2 : 16;
        struct kv_dent **v = kv_realloc(a->s, a->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = e;
    return 0;
}

int kv_dict_scan_match(struct kv_store *s, struct kv_dict *d, uint64_t cursor, struct kv_scan_acc *a, uint64_t *next)
{
    RABIA_ASSERT(a && a->s == s && a->opt && next);
    int r = 0;
    *next = kv_dict_scan(s, d, cursor, a->opt->count, kv_scan_take, a, &r);
    return r;
}
