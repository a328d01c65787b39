/* kv/state_hash.c: the store's state hash, kept up to date incrementally.
 *
 * Replicas compare state hashes to prove they hold the same state (status,
 * INFO, the simulator's and the tests' convergence checks). Hashing a
 * serialized snapshot costs O(state) on the event loop: about a second for
 * 1 GiB, once a second. Here the hash is a fixed-size header (the clock,
 * the version counter, each database's absent-key versions, sweep cursor
 * and key count) hashed together with key_sum, the wrapping sum over all
 * keys of a term: XXH3 of the key's snapshot record (exactly the bytes
 * kv_store_save writes for it) seeded by its database. A sum does not
 * depend on the order keys were written or are stored in, so equal stores
 * give equal hashes whatever their history.
 *
 * Every change to a key goes through kv_touch, kv_add, kv_replace or
 * drop_key (store.c), which list the key as dirty or take its term out;
 * a settle recomputes the listed keys' terms. Settling runs after a
 * command once KV_DIRTY_SETTLE keys wait, and before a hash: a key written
 * a thousand times between two hashes is hashed once, and a hash costs the
 * keys written since the last one, never the whole state. A restored
 * store computes every term while it loads (snapshot.c), from the record
 * bytes it reads. */
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "internal.h"
#include "le.h"

#define TERM_SEED 0x6b767465726d00ull /* "kvterm" */
#define HBUF_KEEP (1u << 20)           /* a larger scratch record is freed after use */

uint64_t kv_record_term(uint32_t db, const uint8_t *rec, size_t n)
{
    RABIA_ASSERT(db < KV_DBS);
    return XXH3_64bits_withSeed(rec, n, TERM_SEED + db);
}

int kv_save_record(struct kv_store *s, const struct kv_dent *e, struct rabia_buf *out)
{
    const struct kv_obj *o = e->v.p;
    RABIA_ASSERT(o);
    int rc;
    if ((rc = kv_wr_str(out, e->key, e->klen)) || (rc = kv_wr_u64(out, e->x)) || (rc = kv_wr_u64(out, e->ver)) ||
        (rc = kv_wr_u8(out, o->type)))
        return rc;
    return kv_type_ops(o->type)->save(s, o, out);
}

static uintptr_t dirty_mark(const struct kv_dent *e) { return (uintptr_t)e->v2; }

void kv_hash_dirty(struct kv_store *s, struct kv_dent *e, uint32_t db)
{
    RABIA_ASSERT(db < KV_DBS);
    if (dirty_mark(e))
        return; /* listed already */
    if (s->n_dirty == s->dirty_cap) {
        size_t cap = s->dirty_cap ? 2 * s->dirty_cap : 64;
        struct kv_dirty *d = realloc(s->dirty, cap * sizeof *d);
        if (!d) {
            s->hash_rescan = true;
            return;
        }
        s->dirty = d;
        s->dirty_cap = cap;
    }
    s->dirty[s->n_dirty] = (struct kv_dirty){.e = e, .db = db};
    e->v2 = (void *)(uintptr_t)(++s->n_dirty);
}

static void undirty(struct kv_store *s, struct kv_dent *e)
{
    uintptr_t m = dirty_mark(e);
    if (!m)
        return;
    RABIA_ASSERT(m <= s->n_dirty && s->dirty[m - 1].e == e);
    struct kv_dirty last = s->dirty[--s->n_dirty];
    if (last.e != e) {
        s->dirty[m - 1] = last;
        last.e->v2 = (void *)m;
    }
    e->v2 = NULL;
}

void kv_hash_detach(struct kv_store *s, struct kv_dent *e, struct kv_obj *o)
{
    if (o) {
        s->key_sum -= o->hsum;
        o->hsum = 0;
    }
    undirty(s, e);
}

/* A string key's record, as kv_save_record writes it (str_save: u8
 * encoding, u32 length, bytes), into rec; its length, or 0 when it does
 * not fit. Built with stores rather than rabia_buf calls: through them a
 * SET's term cost 690 instructions on every replica, 14% of a follower's
 * (bench/callgrind.sh); test_kv_hash checks both give the same bytes. */
#define STR_REC_MAX 512u
static size_t string_record(const struct kv_dent *e, const struct kv_obj *o, uint8_t *rec)
{
    RABIA_ASSERT(o->type == KV_STRING);
    size_t n = 4 + (size_t)e->klen + 8 + 8 + 1 + 1 + 4 + o->len;
    if (n > STR_REC_MAX)
        return 0;
    uint8_t *w = rec;
    rabia_le_put32(w, e->klen);
    memcpy(w + 4, e->key, e->klen);
    w += 4 + e->klen;
    rabia_le_put64(w, e->x);
    rabia_le_put64(w + 8, e->ver);
    w[16] = o->type;
    w[17] = o->enc;
    rabia_le_put32(w + 18, o->len);
    memcpy(w + 22, o->str, o->len);
    RABIA_ASSERT((size_t)(w + 22 + o->len - rec) == n);
    return n;
}

size_t kv_string_record(const struct kv_dent *e, uint8_t *rec, size_t cap)
{
    RABIA_ASSERT(cap >= STR_REC_MAX);
    (void)cap;
    return string_record(e, e->v.p, rec);
}

/* Recompute key e's term (database db). */
static int settle_one(struct kv_store *s, struct kv_dent *e, uint32_t db)
{
    struct kv_obj *o = e->v.p;
    if (o->type == KV_STRING) {
        uint8_t rec[STR_REC_MAX];
        size_t n = string_record(e, o, rec);
        if (n) {
            uint64_t t = kv_record_term(db, rec, n);
            s->key_sum += t - o->hsum;
            o->hsum = t;
            return 0;
        }
    }
    rabia_buf_clear(&s->hbuf);
    int rc = kv_save_record(s, e, &s->hbuf);
    if (rc)
        return rc;
    uint64_t t = kv_record_term(db, s->hbuf.data, s->hbuf.len);
    s->key_sum += t - o->hsum;
    o->hsum = t;
    return 0;
}

struct rescan_walk {
    struct kv_store *s;
    uint32_t db;
};

static int rescan_key(void *arg, struct kv_dent *e)
{
    struct rescan_walk *w = arg;
    return settle_one(w->s, e, w->db);
}

/* Every key's term again (after the dirty list could not grow). */
static int rescan(struct kv_store *s)
{
    for (uint32_t i = 0; i < KV_DBS; i++) {
        struct rescan_walk w = {.s = s, .db = i};
        uint64_t cursor = 0;
        do {
            int err = 0;
            cursor = kv_dict_scan(s, &s->db[i].keys, cursor, 1024, rescan_key, &w, &err);
            if (err)
                return err;
        } while (cursor != 0);
    }
    while (s->n_dirty) /* every listed key was just recomputed */
        undirty(s, s->dirty[s->n_dirty - 1].e);
    s->hash_rescan = false;
    return 0;
}

int kv_hash_settle(struct kv_store *s)
{
    int rc = 0;
    if (s->hash_rescan) {
        rc = rescan(s);
    } else {
        while (s->n_dirty) {
            struct kv_dirty d = s->dirty[s->n_dirty - 1];
            if ((rc = settle_one(s, d.e, d.db)))
                break;
            undirty(s, d.e);
        }
    }
    if (s->hbuf.cap > HBUF_KEEP)
        rabia_buf_free(&s->hbuf);
    return rc;
}

int kv_store_hash(struct kv_store *s, uint64_t *out)
{
    int rc = kv_hash_settle(s);
    if (rc)
        return rc;
    /* chained through the seeds: each part's hash seeds the next */
    uint64_t head[3] = {s->now_ms, s->version, s->key_sum};
    uint64_t h = XXH3_64bits_withSeed(head, sizeof head, TERM_SEED);
    if (s->script_seq) { /* only once scripts were used: until then, an older build's hash of the same state */
        uint64_t scripts[2] = {s->script_seq, s->script_sum};
        h = XXH3_64bits_withSeed(scripts, sizeof scripts, h);
    }
    if (s->feature_level) { /* likewise only once a level was agreed */
        uint64_t level = s->feature_level;
        h = XXH3_64bits_withSeed(&level, sizeof level, h);
    }
    for (uint32_t i = 0; i < KV_DBS; i++) {
        const struct kv_db *db = &s->db[i];
        uint64_t tail[2] = {db->sweep, kv_dict_size(&db->keys)};
        h = XXH3_64bits_withSeed(db->gone, sizeof db->gone, h);
        h = XXH3_64bits_withSeed(tail, sizeof tail, h);
    }
    *out = h;
    return 0;
}
