/* kv/dict.c: the hash tables against a sorted-array reference, scans
 * across growth, shrinking and rehashing, order independent of history,
 * kv_dict_at, nested scans (the scratch stack) and memory accounting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"

static uint64_t rng_state;
static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A pool of distinct keys: the empty key, then 4 bytes of the index (NULs
 * included) and 0..8 random bytes. */
#define POOL 6000
struct key {
    uint8_t b[16];
    uint32_t n;
    uint64_t h;
};
static struct key pool[POOL];

static void make_pool(void)
{
    pool[0].n = 0;
    for (uint32_t i = 1; i < POOL; i++) {
        memcpy(pool[i].b, &i, 4);
        pool[i].n = 4 + (uint32_t)(rng() % 9);
        for (uint32_t j = 4; j < pool[i].n; j++)
            pool[i].b[j] = (uint8_t)rng();
    }
    for (uint32_t i = 0; i < POOL; i++)
        pool[i].h = kv_hash(pool[i].b, pool[i].n);
}

static int key_cmp(const struct key *a, const struct key *b)
{
    if (a->h != b->h)
        return a->h < b->h ? -1 : 1;
    uint32_t n = a->n < b->n ? a->n : b->n;
    int r = n ? memcmp(a->b, b->b, n) : 0;
    return r ? r : (a->n > b->n) - (a->n < b->n);
}

static int idx_cmp(const void *a, const void *b)
{
    return key_cmp(&pool[*(const uint32_t *)a], &pool[*(const uint32_t *)b]);
}

/* The reference: which pool keys are present, and their (hash, key) order. */
struct ref {
    bool in[POOL];
    uint32_t sorted[POOL];
    uint32_t n;
};

static void ref_sort(struct ref *r)
{
    r->n = 0;
    for (uint32_t i = 0; i < POOL; i++)
        if (r->in[i])
            r->sorted[r->n++] = i;
    qsort(r->sorted, r->n, sizeof r->sorted[0], idx_cmp);
}

/* Structural invariants of d (through its public fields). */
static void check_dict(const struct kv_dict *d)
{
    CHECK((d->rehash >= 0) == (d->t[1] != NULL));
    if (!d->t[0]) {
        CHECK(!d->t[1] && d->used[0] == 0 && d->used[1] == 0);
        return;
    }
    for (int i = 0; i < 2; i++) {
        if (!d->t[i])
            continue;
        CHECK(d->bits[i] >= 2 && d->bits[i] < 64);
        uint64_t nb = (uint64_t)1 << d->bits[i], n = 0;
        for (uint64_t b = 0; b < nb; b++) {
            if (i == 0 && d->rehash >= 0 && b < (uint64_t)d->rehash)
                CHECK(d->t[0][b] == NULL);
            for (const struct kv_dent *e = d->t[i][b]; e; e = e->next) {
                CHECK((e->hash >> (64 - d->bits[i])) == b);
                CHECK(e->hash == kv_hash(e->key, e->klen));
                CHECK(e->key[e->klen] == 0);
                n++;
            }
        }
        CHECK_EQ(n, d->used[i]);
    }
}

struct collect {
    const struct kv_dent **v;
    size_t n, cap;
};

static int collect_one(void *arg, struct kv_dent *e)
{
    struct collect *c = arg;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->v = realloc(c->v, c->cap * sizeof *c->v);
        if (!c->v)
            abort();
    }
    c->v[c->n++] = e;
    return 0;
}

/* A full scan with COUNT count: the entries in visiting order. */
static struct collect full_scan(struct kv_store *s, struct kv_dict *d, uint64_t count)
{
    struct collect c = {0};
    uint64_t cur = 0, calls = 0;
    do {
        int err = -1;
        uint64_t next = kv_dict_scan(s, d, cur, count, collect_one, &c, &err);
        CHECK_EQ(err, 0);
        CHECK(next == 0 || next > cur);
        cur = next;
        calls++;
    } while (cur != 0 && calls < 10000000);
    return c;
}

static void check_scan_matches(struct kv_store *s, struct kv_dict *d, const struct ref *r,
                               uint64_t count)
{
    struct collect c = full_scan(s, d, count);
    CHECK_EQ(c.n, r->n);
    for (size_t i = 0; i < c.n && i < r->n; i++) {
        const struct key *k = &pool[r->sorted[i]];
        CHECK(c.v[i]->klen == k->n && memcmp(c.v[i]->key, k->b, k->n) == 0);
    }
    free(c.v);
}

static const struct key *ref_at(const struct ref *r, uint64_t h)
{
    if (r->n == 0)
        return NULL;
    for (uint32_t i = 0; i < r->n; i++)
        if (pool[r->sorted[i]].h >= h)
            return &pool[r->sorted[i]];
    return &pool[r->sorted[0]];
}

static bool dent_is(const struct kv_dent *e, const struct key *k)
{
    if (!e || !k)
        return !e && !k;
    return e->klen == k->n && memcmp(e->key, k->b, k->n) == 0;
}

static void test_basic(void)
{
    struct kv_store *s = kv_store_new();
    struct kv_dict d;
    kv_dict_init(&d);
    CHECK_EQ(kv_dict_size(&d), 0);
    CHECK(kv_dict_find(s, &d, (const uint8_t *)"a", 1) == NULL);
    CHECK(kv_dict_unlink(s, &d, (const uint8_t *)"a", 1) == NULL);
    CHECK(kv_dict_at(s, &d, 0) == NULL);
    int err = -1;
    CHECK_EQ(kv_dict_scan(s, &d, 0, 10, collect_one, NULL, &err), 0);
    CHECK_EQ(err, 0);
    CHECK_EQ(kv_dict_table_bytes(&d), 0);

    struct kv_dent *e = kv_dict_add(s, &d, (const uint8_t *)"", 0);
    CHECK(e && e->klen == 0 && e->key[0] == 0 && e->v.p == NULL && e->v2 == NULL && e->x == 0 &&
          e->ver == 0);
    CHECK(kv_dict_find(s, &d, (const uint8_t *)"", 0) == e);
    struct kv_dent *f = kv_dict_add(s, &d, (const uint8_t *)"a\0b", 3);
    CHECK(f && f->klen == 3 && memcmp(f->key, "a\0b", 4) == 0);
    CHECK(kv_dict_find(s, &d, (const uint8_t *)"a\0b", 3) == f);
    CHECK(kv_dict_find(s, &d, (const uint8_t *)"a", 1) == NULL);
    CHECK(kv_dict_find(s, &d, (const uint8_t *)"a\0c", 3) == NULL);
    CHECK_EQ(kv_dict_size(&d), 2);
    CHECK_EQ(kv_dict_table_bytes(&d), 4 * sizeof(void *));
    CHECK(kv_dict_unlink(s, &d, (const uint8_t *)"", 0) == e);
    kv_free(s, e);
    CHECK_EQ(kv_dict_size(&d), 1);
    CHECK(kv_dict_at(s, &d, 12345) == f);
    check_dict(&d);
    kv_dict_clear(s, &d, NULL);
    CHECK_EQ(kv_dict_size(&d), 0);
    CHECK(d.t[0] == NULL && d.rehash == -1);
    /* reusable after clear */
    CHECK(kv_dict_add(s, &d, (const uint8_t *)"x", 1) != NULL);
    kv_dict_clear(s, &d, NULL);
    kv_free(s, s->scratch);
    s->scratch = NULL;
    s->scratch_cap = 0;
    CHECK_EQ(s->mem, 0);
    kv_store_free(s);
}

/* Random adds, finds and unlinks against the reference; every so often a
 * full scan (random COUNT) must give exactly the reference's order, and
 * kv_dict_at must pick what the reference picks. */
static void test_random_vs_reference(void)
{
    struct kv_store *s = kv_store_new();
    struct kv_dict d;
    kv_dict_init(&d);
    static struct ref r;
    memset(&r, 0, sizeof r);
    uint32_t n = 0;
    int grew = 0, shrank = 0;
    uint8_t last_bits = 0;
    for (int step = 0; step < 60000; step++) {
        /* phases: fill up, then drain, so both growth and shrinking run */
        int phase = (step / 15000) % 2;
        uint32_t i = (uint32_t)(rng() % POOL);
        bool add = phase == 0 ? rng() % 4 != 0 : rng() % 16 == 0;
        struct kv_dent *e = kv_dict_find(s, &d, pool[i].b, pool[i].n);
        CHECK((e != NULL) == r.in[i]);
        if (add && !r.in[i]) {
            e = kv_dict_add(s, &d, pool[i].b, pool[i].n);
            CHECK(e != NULL);
            e->x = i;
            r.in[i] = true;
            n++;
        } else if (!add && r.in[i]) {
            e = kv_dict_unlink(s, &d, pool[i].b, pool[i].n);
            CHECK(e && e->x == i);
            CHECK(e && e->next == NULL);
            kv_free(s, e);
            r.in[i] = false;
            n--;
        } else if (r.in[i]) {
            CHECK(e && e->x == i);
        }
        CHECK_EQ(kv_dict_size(&d), n);
        uint8_t bits = d.t[0] ? d.bits[0] : 0;
        if (bits > last_bits && last_bits)
            grew++;
        if (bits < last_bits)
            shrank++;
        last_bits = bits;
        if (step % 997 == 0) {
            check_dict(&d);
            ref_sort(&r);
            check_scan_matches(s, &d, &r, 1 + rng() % 50);
            for (int k = 0; k < 50; k++) {
                uint64_t h = rng();
                if (k == 0)
                    h = 0;
                if (k == 1)
                    h = UINT64_MAX;
                CHECK(dent_is(kv_dict_at(s, &d, h), ref_at(&r, h)));
            }
            for (uint32_t k = 0; k < r.n && k < 20; k++) {
                const struct key *key = &pool[r.sorted[k]];
                CHECK(dent_is(kv_dict_at(s, &d, key->h), key));
            }
        }
    }
    CHECK(grew > 0);
    CHECK(shrank > 0);
    /* drain completely: the table shrinks back to 4 buckets */
    for (uint32_t i = 0; i < POOL; i++) {
        if (!r.in[i])
            continue;
        struct kv_dent *e = kv_dict_unlink(s, &d, pool[i].b, pool[i].n);
        CHECK(e != NULL);
        kv_free(s, e);
    }
    for (int k = 0; k < 100; k++)
        kv_dict_find(s, &d, (const uint8_t *)"z", 1);
    check_dict(&d);
    CHECK_EQ(kv_dict_size(&d), 0);
    CHECK(d.rehash == -1 && d.bits[0] == 2);
    CHECK(kv_dict_at(s, &d, 5) == NULL);
    kv_dict_clear(s, &d, NULL);
    kv_store_free(s);
}

/* A scan started, then the table grows (many adds), shrinks (many unlinks)
 * and is left mid-rehash between calls: the keys present throughout are
 * visited exactly once, and no key more than once. */
static void test_scan_across_changes(void)
{
    struct kv_store *s = kv_store_new();
    struct kv_dict d;
    kv_dict_init(&d);
    static uint32_t seen[POOL];
    static bool stable[POOL], in[POOL];
    memset(seen, 0, sizeof seen);
    memset(in, 0, sizeof in);
    /* keys < 1000 stay throughout; the others come and go */
    for (uint32_t i = 0; i < 1000; i++) {
        stable[i] = true;
        in[i] = true;
        struct kv_dent *e = kv_dict_add(s, &d, pool[i].b, pool[i].n);
        CHECK(e != NULL);
        if (e)
            e->x = i;
    }
    for (uint32_t i = 1000; i < POOL; i++)
        stable[i] = false;
    uint64_t cur = 0;
    int calls = 0, rehashing_seen = 0;
    do {
        struct collect c = {0};
        int err = -1;
        uint64_t next = kv_dict_scan(s, &d, cur, 1 + rng() % 40, collect_one, &c, &err);
        CHECK_EQ(err, 0);
        CHECK(next == 0 || next > cur);
        for (size_t j = 0; j < c.n; j++) {
            seen[c.v[j]->x]++;
            CHECK(c.v[j]->hash >= cur && (next == 0 || c.v[j]->hash < next));
        }
        free(c.v);
        cur = next;
        calls++;
        /* change things between calls */
        int what = calls % 3;
        int ops = (int)(rng() % 300);
        for (int k = 0; k < ops; k++) {
            uint32_t i = 1000 + (uint32_t)(rng() % (POOL - 1000));
            bool add = what == 0 ? rng() % 8 != 0 : what == 1 ? rng() % 8 == 0 : rng() % 2;
            if (add && !in[i]) {
                struct kv_dent *e = kv_dict_add(s, &d, pool[i].b, pool[i].n);
                CHECK(e != NULL);
                if (e)
                    e->x = i;
                in[i] = true;
            } else if (!add && in[i]) {
                kv_free(s, kv_dict_unlink(s, &d, pool[i].b, pool[i].n));
                in[i] = false;
            }
        }
        if (d.rehash >= 0)
            rehashing_seen++;
    } while (cur != 0);
    CHECK(calls > 10);
    CHECK(rehashing_seen > 0);
    for (uint32_t i = 0; i < POOL; i++) {
        if (stable[i])
            CHECK_EQ(seen[i], 1);
        else
            CHECK(seen[i] <= 1);
    }
    check_dict(&d);
    kv_dict_clear(s, &d, NULL);
    kv_store_free(s);
}

static void shuffle(uint32_t *v, uint32_t n)
{
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)(rng() % i);
        uint32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* The same contents reached in different ways (insertion orders, a big
 * table shrunk, one left mid-rehash) scan in the same order and answer
 * kv_dict_at alike. */
static void test_order_independent(void)
{
    struct kv_store *s = kv_store_new();
    enum { N = 700, D = 4 };
    struct kv_dict d[D];
    static uint32_t order[POOL];
    for (uint32_t i = 0; i < POOL; i++)
        order[i] = i;
    for (int k = 0; k < D; k++)
        kv_dict_init(&d[k]);
    /* d[0]: keys 0..N-1 in order; d[1]: shuffled */
    for (uint32_t i = 0; i < N; i++)
        kv_dict_add(s, &d[0], pool[i].b, pool[i].n);
    shuffle(order, N);
    for (uint32_t i = 0; i < N; i++)
        kv_dict_add(s, &d[1], pool[order[i]].b, pool[order[i]].n);
    /* d[2]: every key, then all but the first N deleted (shrinks) */
    for (uint32_t i = 0; i < POOL; i++)
        kv_dict_add(s, &d[2], pool[i].b, pool[i].n);
    for (uint32_t i = POOL; i-- > N;)
        kv_free(s, kv_dict_unlink(s, &d[2], pool[i].b, pool[i].n));
    /* d[3]: grown to exactly the point where a rehash has just started */
    for (uint32_t i = 0; i < N; i++) {
        kv_dict_add(s, &d[3], pool[order[N - 1 - i]].b, pool[order[N - 1 - i]].n);
    }
    for (uint32_t i = N; d[3].rehash < 0 && i < POOL; i++)
        kv_dict_add(s, &d[3], pool[i].b, pool[i].n);
    for (uint32_t i = N; i < POOL; i++)
        kv_free(s, kv_dict_unlink(s, &d[3], pool[i].b, pool[i].n));
    struct collect c[D];
    for (int k = 0; k < D; k++) {
        check_dict(&d[k]);
        CHECK_EQ(kv_dict_size(&d[k]), N);
        c[k] = full_scan(s, &d[k], 1 + (uint64_t)k * 7);
        CHECK_EQ(c[k].n, N);
    }
    for (int k = 1; k < D; k++)
        for (size_t i = 0; i < N && i < c[k].n && i < c[0].n; i++)
            CHECK(c[k].v[i]->klen == c[0].v[i]->klen &&
                  memcmp(c[k].v[i]->key, c[0].v[i]->key, c[0].v[i]->klen) == 0);
    for (int t = 0; t < 2000; t++) {
        uint64_t h = rng();
        const struct kv_dent *a = kv_dict_at(s, &d[0], h);
        for (int k = 1; k < D; k++) {
            const struct kv_dent *b = kv_dict_at(s, &d[k], h);
            CHECK(a && b && a->klen == b->klen && memcmp(a->key, b->key, a->klen) == 0);
        }
    }
    for (int k = 0; k < D; k++) {
        free(c[k].v);
        kv_dict_clear(s, &d[k], NULL);
    }
    kv_store_free(s);
}

/* Keys whose hashes share their top 16 bits: they stay in one bucket (one
 * scan range) at every table size used here. */
#define CRAFT 80
static uint8_t craft_key[2][CRAFT][12];
static size_t craft_len[2][CRAFT];

static void make_crafted(int set, uint64_t top)
{
    uint32_t found = 0;
    for (uint64_t i = 0; found < CRAFT; i++) {
        char buf[24];
        int n = snprintf(buf, sizeof buf, "%c%llx", set ? 'q' : 'p', (unsigned long long)i);
        if ((kv_hash((const uint8_t *)buf, (size_t)n) >> 48) != top)
            continue;
        memcpy(craft_key[set][found], buf, (size_t)n);
        craft_len[set][found++] = (size_t)n;
    }
}

struct nested {
    struct kv_store *s;
    struct kv_dict *inner;
    int outer_visits, inner_visits;
    uint64_t last_hash;
    bool ordered;
};

static int inner_visit(void *arg, struct kv_dent *e)
{
    ((struct nested *)arg)->inner_visits++;
    return 0;
}

static int outer_visit(void *arg, struct kv_dent *e)
{
    struct nested *n = arg;
    if (n->outer_visits && e->hash < n->last_hash)
        n->ordered = false;
    n->last_hash = e->hash;
    n->outer_visits++;
    /* a nested full scan whose range is larger than the stack left: the
     * stack moves under the outer walk */
    uint64_t cur = 0;
    do {
        int err = 0;
        cur = kv_dict_scan(n->s, n->inner, cur, 1, inner_visit, n, &err);
        CHECK_EQ(err, 0);
    } while (cur);
    return 0;
}

static void test_nested_scan(void)
{
    struct kv_store *s = kv_store_new();
    make_crafted(0, 0x1234);
    make_crafted(1, 0xfedc);
    struct kv_dict a, b;
    kv_dict_init(&a);
    kv_dict_init(&b);
    for (int i = 0; i < CRAFT; i++) {
        CHECK(kv_dict_add(s, &a, craft_key[0][i], craft_len[0][i]) != NULL);
        CHECK(kv_dict_add(s, &b, craft_key[1][i], craft_len[1][i]) != NULL);
    }
    check_dict(&a);
    struct nested n = {.s = s, .inner = &b, .ordered = true};
    uint64_t cur = 0;
    int calls = 0;
    do {
        int err = 0;
        cur = kv_dict_scan(s, &a, cur, 1, outer_visit, &n, &err);
        CHECK_EQ(err, 0);
        calls++;
    } while (cur);
    CHECK_EQ(n.outer_visits, CRAFT);
    CHECK_EQ(n.inner_visits, CRAFT * CRAFT);
    CHECK(n.ordered);
    CHECK(s->scratch != NULL);
    /* COUNT 1 stops after each entry (distinct hashes), inside a bucket
     * range: where a call stops depends on the entries, not the table */
    CHECK(calls == CRAFT || calls == CRAFT + 1); /* + a last empty page */
    kv_dict_clear(s, &a, NULL);
    kv_dict_clear(s, &b, NULL);
    kv_store_free(s);
}

static int fail_third(void *arg, struct kv_dent *e)
{
    int *n = arg;
    return ++*n == 3 ? -EIO : 0;
}

static int released;
static void release_count(struct kv_store *s, struct kv_dent *e)
{
    CHECK(e->v.p != NULL);
    kv_free(s, e->v.p);
    released++;
}

/* A callback's error stops the walk and comes back through *err; clear
 * calls release for every entry; the store's byte count returns to what
 * it was. */
static void test_errors_clear_memory(void)
{
    struct kv_store *s = kv_store_new();
    struct kv_dict d;
    kv_dict_init(&d);
    uint64_t mem0 = s->mem;
    for (uint32_t i = 0; i < 300; i++) {
        struct kv_dent *e = kv_dict_add(s, &d, pool[i].b, pool[i].n);
        CHECK(e != NULL);
        if (e)
            e->v.p = kv_dup(s, pool[i].b, pool[i].n);
    }
    CHECK(s->mem > mem0);
    CHECK(kv_dict_table_bytes(&d) >= 300 * sizeof(void *));
    int calls = 0, err = 0;
    CHECK_EQ(kv_dict_scan(s, &d, 0, 1000, fail_third, &calls, &err), 0);
    CHECK_EQ(err, -EIO);
    CHECK_EQ(calls, 3);
    /* the stack was popped: a new walk starts clean */
    struct collect c = full_scan(s, &d, 1000);
    CHECK_EQ(c.n, 300);
    CHECK_EQ(((size_t *)s->scratch)[0], 0);
    free(c.v);
    /* clear in the middle of a rehash */
    for (uint32_t i = 300; d.rehash < 0 && i < POOL; i++) {
        struct kv_dent *e = kv_dict_add(s, &d, pool[i].b, pool[i].n);
        if (e)
            e->v.p = kv_dup(s, pool[i].b, pool[i].n);
    }
    CHECK(d.rehash >= 0);
    uint64_t size = kv_dict_size(&d);
    released = 0;
    kv_dict_clear(s, &d, release_count);
    CHECK_EQ(released, size);
    CHECK_EQ(kv_dict_size(&d), 0);
    CHECK_EQ(kv_dict_table_bytes(&d), 0);
    kv_free(s, s->scratch);
    s->scratch = NULL;
    s->scratch_cap = 0;
    CHECK_EQ(s->mem, mem0);
    kv_store_free(s);
}

/* The cursor is a hash position: a scan from any cursor visits exactly
 * the entries with hash >= cursor, in order, and a cursor in the middle
 * of a range leaves out the range's earlier entries. */
/* The hash is part of the replicated state (bucket and scan order, the
 * snapshot's key order, skip-list levels): pinned by known answers, so a
 * build whose XXH3 computes other values (xxHash before 0.8.0) fails here
 * instead of diverging from the other replicas. */
static void test_hash_known_answers(void)
{
    static const char long_key[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                                   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                                   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                                   "0123456789abcdef0123456789abcdef0123456789abcdef";
    CHECK(kv_hash((const uint8_t *)"", 0) == 0x06827036b247dee3ull);
    CHECK(kv_hash((const uint8_t *)"abc", 3) == 0x737de48a0c30d656ull);
    CHECK_EQ(sizeof long_key - 1, 240);
    CHECK(kv_hash((const uint8_t *)long_key, 240) == 0xf962e22ca07f21e2ull);
}

static void test_scan_from_any_cursor(void)
{
    struct kv_store *s = kv_store_new();
    struct kv_dict d;
    kv_dict_init(&d);
    static struct ref r;
    memset(&r, 0, sizeof r);
    for (uint32_t i = 0; i < 500; i++) {
        kv_dict_add(s, &d, pool[i].b, pool[i].n);
        r.in[i] = true;
    }
    ref_sort(&r);
    for (int t = 0; t < 200; t++) {
        uint64_t cur = t == 0 ? pool[r.sorted[17]].h : rng();
        uint32_t first = 0;
        while (first < r.n && pool[r.sorted[first]].h < cur)
            first++;
        struct collect c = {0};
        while (1) {
            int err = 0;
            cur = kv_dict_scan(s, &d, cur, 3, collect_one, &c, &err);
            if (cur == 0)
                break;
        }
        CHECK_EQ(c.n, r.n - first);
        for (size_t i = 0; i < c.n && first + i < r.n; i++)
            CHECK(dent_is(c.v[i], &pool[r.sorted[first + i]]));
        free(c.v);
    }
    kv_dict_clear(s, &d, NULL);
    kv_store_free(s);
}

int main(void)
{
    rng_state = 42;
    make_pool();
    RUN(test_basic);
    RUN(test_random_vs_reference);
    RUN(test_scan_across_changes);
    RUN(test_order_independent);
    RUN(test_nested_scan);
    RUN(test_errors_clear_memory);
    RUN(test_scan_from_any_cursor);
    RUN(test_hash_known_answers);
    return CHECK_DONE();
}
