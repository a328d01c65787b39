/* The apply layer with exactly-once client sessions: see rsm.h. */
#include "rsm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "codec.h"
#include "invariant.h"
#include "le.h"

#define RSM_MAGIC 0x334d5352u    /* "RSM3": the state hash stored before the checksum */
#define RSM_MAGIC_V2 0x324d5352u /* "RSM2": read still (no state hash stored) */
#define TERM_SEED 0x7273736573730000ull
#define W RABIA_RSM_WINDOW
#define TRACK_BITS 256           /* batch seqs remembered above a tracker's base */
/* Kept replies of at most RSM_SMALL bytes (+OK, a short value: most of
 * them) live in RSM_SMALL-byte buffers, all alike, so a dropped entry's
 * buffer serves the next reply: RSM_POOL of them wait in the rsm's pool
 * (128 KiB at most). Without it every applied request allocated its reply's
 * copy and every ack freed one (1 allocation per request, measured). */
#define RSM_SMALL 128
#define RSM_POOL 1024

/* A remembered reply, kept at ent[seq % W]. */
struct ent {
    uint8_t *data; /* NULL when len == 0; RSM_SMALL bytes when len <= RSM_SMALL */
    uint32_t len;
    uint8_t kept;  /* 0: applied, reply too large to keep */
};

struct sess {
    uint64_t client_id;
    uint64_t base;          /* window base: the highest ack seen */
    uint64_t last_active;   /* slot of the last request */
    uint64_t mask;          /* bit (seq % W): seq in the window applied */
    uint64_t bytes;         /* reply bytes kept */
    struct sess *prev, *next;   /* its class's activity list, oldest first */
    struct sess *bprev, *bnext; /* the list of sessions keeping bytes */
    bool in_blist;
    struct ent ent[W];
};

/* An intrusive list ordered by last activity, oldest first. */
struct slist {
    struct sess *head, *tail;
};

/* Sessions: an open-addressing table by client id (linear probing,
 * backward-shift deletion) and lists ordered by last activity: one per
 * class (0: clients with their own ids, 1: connection-scoped), and one of
 * the sessions that keep reply bytes. Slots only grow, so a touched session
 * goes to the tail and the lists stay sorted by last_active; within one
 * slot the order is the batch's, which a restored replica cannot know, so
 * every choice made from a list takes, among the equally old at its head,
 * the smallest client id. Only the table's order is arbitrary, and nothing
 * observable depends on it. */
struct sessions {
    struct sess **tab;
    size_t cap;             /* a power of two, or 0 */
    uint32_t count;
    struct slist act[2];
    struct slist kept;
};

/* Per proxy: which of its batches were applied (a batch can be decided in
 * two slots when two in-flight slots carried it; the second is skipped). */
struct btrack {
    uint64_t incarnation;
    uint64_t base;          /* every seq < base counts as applied */
    uint64_t bits[TRACK_BITS / 64];
};

struct rabia_rsm {
    const struct rabia_sm_ops *ops;
    void *sm;
    struct rabia_rsm_config cfg;
    uint64_t applied;
    uint64_t reply_bytes;       /* kept reply bytes over all sessions */
    uint64_t sessions_opened;   /* OPENs applied: names the next session */
    struct sessions s;
    struct btrack tr[RABIA_MAX_REPLICAS];
    struct rabia_buf scratch;   /* the reply being produced */
    struct rabia_buf hashbuf;   /* snapshot bytes for rabia_rsm_hash (state machines without state_hash) */
    /* The sessions' part of the state hash, kept up to date: the wrapping
     * sum of a term per session header (sess_hdr_term) and per applied
     * request in a window (ent_term); see rabia_rsm_hash. */
    uint64_t sess_sum;
    /* The same without what the reply cache holds (ent_core_term): which
     * replies are kept depends on this replica's reply-cache-bytes, not on
     * the log; the replicas' cross checks (rabia_rsm_check_hash) use it. */
    uint64_t sess_core_sum;
    uint64_t hash_mismatches;   /* restores whose recomputed hash differed from the stored one */
    uint8_t *pool[RSM_POOL];    /* free RSM_SMALL-byte reply buffers */
    uint32_t npool;
};

/* ---- sessions ---- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* ---- the sessions' hash terms ---- */

static uint64_t sess_hdr_term(const struct sess *s)
{
    uint64_t v[3] = {s->client_id, s->base, s->last_active};
    return XXH3_64bits_withSeed(v, sizeof v, TERM_SEED);
}

/* The term of the applied request seq, remembered in e. */
static uint64_t ent_term(const struct sess *s, uint64_t seq, const struct ent *e)
{
    uint64_t v[3] = {s->client_id, seq, (uint64_t)e->kept << 32 | e->len};
    uint64_t h = XXH3_64bits_withSeed(v, sizeof v, TERM_SEED + 1);
    return e->kept && e->len ? XXH3_64bits_withSeed(e->data, e->len, h) : h;
}

/* ent_term without the reply: the request seq was applied. */
static uint64_t ent_core_term(const struct sess *s, uint64_t seq)
{
    uint64_t v[2] = {s->client_id, seq};
    return XXH3_64bits_withSeed(v, sizeof v, TERM_SEED + 3);
}

/* The sequence number of the request remembered at ent[idx]. */
static uint64_t ent_seq(const struct sess *s, unsigned idx)
{
    return s->base + (idx + W - (unsigned)(s->base % W)) % W;
}

/* Everything session s adds to sess_sum. */
static uint64_t sess_term(const struct sess *s)
{
    uint64_t t = sess_hdr_term(s);
    for (unsigned i = 0; i < W; i++)
        if (s->mask & (1ull << i))
            t += ent_term(s, ent_seq(s, i), &s->ent[i]);
    return t;
}

/* Everything session s adds to sess_core_sum. */
static uint64_t sess_core_term(const struct sess *s)
{
    uint64_t t = sess_hdr_term(s);
    for (unsigned i = 0; i < W; i++)
        if (s->mask & (1ull << i))
            t += ent_core_term(s, ent_seq(s, i));
    return t;
}

/* A buffer for a kept reply of len bytes: see RSM_SMALL. */
static uint8_t *reply_alloc(size_t len)
{
    return malloc(len > RSM_SMALL ? len : RSM_SMALL);
}

static uint8_t *reply_take(struct rabia_rsm *r, size_t len)
{
    if (len <= RSM_SMALL && r->npool)
        return r->pool[--r->npool];
    return reply_alloc(len);
}

/* The buffer of a dropped reply of len bytes: to the pool when small and
 * there is room, else freed. */
static void reply_give(struct rabia_rsm *r, uint8_t *p, size_t len)
{
    if (p && len <= RSM_SMALL && r->npool < RSM_POOL) {
        r->pool[r->npool++] = p;
        return;
    }
    free(p);
}

static void sess_free(struct sess *s)
{
    if (!s)
        return;
    for (int i = 0; i < W; i++)
        free(s->ent[i].data);
    free(s);
}

/* sess_free for a session closed or evicted while running: its kept
 * replies' small buffers go to the pool first (a RESP connection's session
 * closes with its pipeline's replies still kept). */
static void sess_release(struct rabia_rsm *r, struct sess *s)
{
    for (int i = 0; i < W; i++) {
        reply_give(r, s->ent[i].data, s->ent[i].len);
        s->ent[i].data = NULL;
    }
    sess_free(s);
}

static void sessions_free(struct sessions *t)
{
    for (size_t i = 0; i < t->cap; i++)
        sess_free(t->tab[i]);
    free(t->tab);
    memset(t, 0, sizeof *t);
}

static struct sess *sessions_find(const struct sessions *t, uint64_t id)
{
    if (!t->cap)
        return NULL;
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)mix(id) & mask; t->tab[i]; i = (i + 1) & mask)
        if (t->tab[i]->client_id == id)
            return t->tab[i];
    return NULL;
}

static void table_place(struct sess **tab, size_t cap, struct sess *s)
{
    size_t mask = cap - 1;
    size_t i = (size_t)mix(s->client_id) & mask;
    while (tab[i])
        i = (i + 1) & mask;
    tab[i] = s;
}

/* Room for `more` more sessions at most 3/4 full. */
static int sessions_reserve(struct sessions *t, size_t more)
{
    size_t need = (size_t)t->count + more;
    size_t cap = t->cap ? t->cap : 16;
    while (need > cap / 4 * 3) {
        if (cap > SIZE_MAX / 2 / sizeof(struct sess *))
            return -ENOMEM;
        cap *= 2;
    }
    if (cap == t->cap)
        return 0;
    struct sess **tab = calloc(cap, sizeof *tab);
    if (!tab)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++)
        if (t->tab[i])
            table_place(tab, cap, t->tab[i]);
    free(t->tab);
    t->tab = tab;
    t->cap = cap;
    return 0;
}

static int sess_class(const struct sess *s)
{
    return (s->client_id & RABIA_SESSION_CONN_SCOPED) != 0;
}

static void list_unlink(struct sessions *t, struct sess *s)
{
    struct slist *l = &t->act[sess_class(s)];
    if (s->prev)
        s->prev->next = s->next;
    else
        l->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        l->tail = s->prev;
    s->prev = s->next = NULL;
}

static void list_append(struct sessions *t, struct sess *s)
{
    struct slist *l = &t->act[sess_class(s)];
    s->prev = l->tail;
    s->next = NULL;
    if (l->tail)
        l->tail->next = s;
    else
        l->head = s;
    l->tail = s;
}

static void kept_unlink(struct sessions *t, struct sess *s)
{
    if (!s->in_blist)
        return;
    if (s->bprev)
        s->bprev->bnext = s->bnext;
    else
        t->kept.head = s->bnext;
    if (s->bnext)
        s->bnext->bprev = s->bprev;
    else
        t->kept.tail = s->bprev;
    s->bprev = s->bnext = NULL;
    s->in_blist = false;
}

static void kept_append(struct sessions *t, struct sess *s)
{
    RABIA_ASSERT(!s->in_blist);
    s->bprev = t->kept.tail;
    s->bnext = NULL;
    if (t->kept.tail)
        t->kept.tail->bnext = s;
    else
        t->kept.head = s;
    t->kept.tail = s;
    s->in_blist = true;
}

/* A session was active now: it moves to the tail of its lists. */
static void sess_touch(struct sessions *t, struct sess *s, uint64_t slot)
{
    RABIA_ASSERT(slot >= s->last_active);
    s->last_active = slot;
    list_unlink(t, s);
    list_append(t, s);
    if (s->in_blist) {
        kept_unlink(t, s);
        kept_append(t, s);
    }
}

/* Remove s from the table (backward-shift deletion) and the list. */
static void sessions_remove(struct sessions *t, struct sess *s)
{
    size_t mask = t->cap - 1;
    size_t i = (size_t)mix(s->client_id) & mask;
    while (t->tab[i] != s)
        i = (i + 1) & mask;
    t->tab[i] = NULL;
    for (size_t j = (i + 1) & mask; t->tab[j]; j = (j + 1) & mask) {
        size_t home = (size_t)mix(t->tab[j]->client_id) & mask;
        /* Move tab[j] into the hole at i unless its home lies in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->tab[i] = t->tab[j];
            t->tab[j] = NULL;
            i = j;
        }
    }
    list_unlink(t, s);
    kept_unlink(t, s);
    t->count--;
}

/* The eviction victim: a connection-scoped session if there is one (its
 * client cannot retry on another connection, so forgetting it costs
 * nothing), else the oldest of the others; oldest last activity first,
 * then the smallest client id. */
static struct sess *sessions_victim(const struct sessions *t)
{
    const struct slist *l = t->act[1].head ? &t->act[1] : &t->act[0];
    struct sess *v = l->head;
    for (struct sess *s = v; s && s->last_active == l->head->last_active; s = s->next)
        if (s->client_id < v->client_id)
            v = s;
    return v;
}

/* The session whose kept replies go first when over the byte budget. */
static struct sess *kept_victim(const struct sessions *t)
{
    struct sess *v = t->kept.head;
    for (struct sess *s = v; s && s->last_active == t->kept.head->last_active; s = s->bnext)
        if (s->client_id < v->client_id)
            v = s;
    return v;
}

/* Forget the replies below new_base and move the window up. */
static void ent_drop(struct rabia_rsm *r, struct sess *s, struct ent *e)
{
    if (e->kept) {
        RABIA_ASSERT(s->bytes >= e->len && r->reply_bytes >= e->len);
        s->bytes -= e->len;
        r->reply_bytes -= e->len;
    }
    reply_give(r, e->data, e->len);
    memset(e, 0, sizeof *e);
}

static void sess_advance(struct rabia_rsm *r, struct sess *s, uint64_t new_base)
{
    uint64_t n = new_base - s->base;
    if (n > W)
        n = W;
    for (uint64_t k = 0; k < n; k++) {
        unsigned idx = (unsigned)((s->base + k) % W);
        if (s->mask & (1ull << idx)) {
            r->sess_sum -= ent_term(s, s->base + k, &s->ent[idx]);
            r->sess_core_sum -= ent_core_term(s, s->base + k);
        }
        s->mask &= ~(1ull << idx);
        ent_drop(r, s, &s->ent[idx]);
    }
    s->base = new_base; /* the caller holds the header's term out */
    if (!s->bytes)
        kept_unlink(&r->s, s);
}

/* Over the reply byte budget: the least recently active sessions' kept
 * replies become "applied, no result" until the total fits. */
static void trim_replies(struct rabia_rsm *r)
{
    for (int guard = 0; r->reply_bytes > r->cfg.max_reply_total; guard++) {
        RABIA_ASSERT(guard <= (int)r->s.count);
        struct sess *v = kept_victim(&r->s);
        RABIA_ASSERT(v && v->bytes > 0);
        for (unsigned i = 0; i < W; i++) {
            struct ent *e = &v->ent[i];
            if (!e->kept)
                continue;
            RABIA_ASSERT(v->mask & (1ull << i));
            uint64_t seq = ent_seq(v, i);
            r->sess_sum -= ent_term(v, seq, e);
            ent_drop(r, v, e); /* the seq stays applied (mask), kept = 0 */
            r->sess_sum += ent_term(v, seq, e);
        }
        RABIA_ASSERT(v->bytes == 0);
        kept_unlink(&r->s, v);
    }
}

/* ---- applied batches ---- */

/* Was the batch applied already? If not, remember that it is now. */
static bool batch_seen(struct rabia_rsm *r, const struct rabia_batch_id *id)
{
    if (!id || id->proxy >= RABIA_MAX_REPLICAS || id->incarnation == 0) /* 0: no proxy's */
        return false;
    struct btrack *t = &r->tr[id->proxy];
    /* a batch of an earlier life of its proxy, decided after the proxy's
     * next life was heard: its proxy is gone with every connection that
     * waited on it, and clients with their own ids retry elsewhere */
    if (id->incarnation < t->incarnation)
        return true;
    if (id->incarnation > t->incarnation) {
        memset(t, 0, sizeof *t);
        t->incarnation = id->incarnation;
        t->base = 1; /* a proxy's batch seqs start at 1 */
    }
    if (id->seq < t->base)
        return true;
    if (id->seq - t->base >= TRACK_BITS) {
        /* slide: seqs this far below the newest count as applied (a proxy
         * never has more than RABIA_MAX_PENDING batches undecided) */
        uint64_t nb = id->seq - (TRACK_BITS - 1), shift = nb - t->base;
        uint64_t nbits[TRACK_BITS / 64] = {0};
        for (uint64_t i = shift; i < TRACK_BITS; i++)
            if (t->bits[i / 64] >> (i % 64) & 1)
                nbits[(i - shift) / 64] |= 1ull << ((i - shift) % 64);
        memcpy(t->bits, nbits, sizeof nbits);
        t->base = nb;
    }
    uint64_t d = id->seq - t->base;
    if (t->bits[d / 64] >> (d % 64) & 1)
        return true;
    t->bits[d / 64] |= 1ull << (d % 64);
    while (t->bits[0] & 1) { /* move the base past the applied prefix */
        for (int i = 0; i < TRACK_BITS / 64; i++) {
            t->bits[i] >>= 1;
            if (i < TRACK_BITS / 64 - 1)
                t->bits[i] |= (t->bits[i + 1] & 1) << 63;
        }
        t->base++;
    }
    return false;
}

static const char *sm_name(const struct rabia_rsm *r)
{
    return r->ops->name ? r->ops->name : "";
}

/* ---- lifecycle ---- */

struct rabia_rsm *rabia_rsm_create(const struct rabia_sm_ops *ops, const struct rabia_rsm_config *cfg)
{
    struct rabia_rsm_config def = {.max_sessions = 4096, .max_reply_bytes = 4096};
    if (!cfg)
        cfg = &def;
    if (!ops || cfg->max_sessions == 0)
        return NULL;
    struct rabia_rsm *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->ops = ops;
    r->cfg = *cfg;
    if (!r->cfg.max_reply_total)
        r->cfg.max_reply_total = RABIA_RSM_DEFAULT_REPLY_TOTAL;
    if (!(r->sm = ops->create())) {
        free(r);
        return NULL;
    }
    return r;
}

void rabia_rsm_destroy(struct rabia_rsm *r)
{
    if (!r)
        return;
    sessions_free(&r->s);
    for (uint32_t i = 0; i < r->npool; i++)
        free(r->pool[i]);
    r->ops->destroy(r->sm);
    rabia_buf_free(&r->scratch);
    rabia_buf_free(&r->hashbuf);
    free(r);
}

uint64_t rabia_rsm_applied(const struct rabia_rsm *r)
{
    return r->applied;
}

void *rabia_rsm_sm(struct rabia_rsm *r)
{
    return r->sm;
}

uint32_t rabia_rsm_sessions(const struct rabia_rsm *r)
{
    return r->s.count;
}

bool rabia_rsm_batch_applied(const struct rabia_rsm *r, const struct rabia_batch_id *id)
{
    if (!id || id->proxy >= RABIA_MAX_REPLICAS || id->incarnation == 0)
        return false;
    const struct btrack *t = &r->tr[id->proxy];
    if (id->incarnation != t->incarnation)
        return id->incarnation < t->incarnation; /* as batch_seen skips it */
    if (id->seq < t->base)
        return true;
    uint64_t d = id->seq - t->base;
    return d < TRACK_BITS && (t->bits[d / 64] >> (d % 64) & 1);
}

uint64_t rabia_rsm_batch_high(const struct rabia_rsm *r, uint8_t proxy, uint64_t incarnation)
{
    if (proxy >= RABIA_MAX_REPLICAS || incarnation == 0)
        return 0;
    const struct btrack *t = &r->tr[proxy];
    if (t->incarnation != incarnation || t->base == 0)
        return 0;
    for (int w = TRACK_BITS / 64 - 1; w >= 0; w--)
        if (t->bits[w])
            return t->base + (uint64_t)w * 64 + (uint64_t)(63 - __builtin_clzll(t->bits[w]));
    return t->base - 1; /* below base: all counted as applied */
}

uint64_t rabia_rsm_reply_bytes(const struct rabia_rsm *r)
{
    return r->reply_bytes;
}

/* ---- apply ---- */

static void reply(rabia_rsm_reply_fn fn, void *ctx, const struct rabia_req *q, int status,
                  const uint8_t *p, size_t len)
{
    if (fn)
        fn(ctx, q->client_id, q->seq, status, len ? p : NULL, len);
}

static int new_session(struct rabia_rsm *r, uint64_t client_id, uint64_t base, struct sess **out)
{
    struct sessions *t = &r->s;
    int rc = sessions_reserve(t, 1);
    if (rc)
        return rc;
    struct sess *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    if (t->count >= r->cfg.max_sessions) {
        struct sess *v = sessions_victim(t);
        r->sess_sum -= sess_term(v);
        r->sess_core_sum -= sess_core_term(v);
        sessions_remove(t, v);
        r->reply_bytes -= v->bytes;
        sess_release(r, v);
    }
    s->client_id = client_id;
    s->base = base;
    table_place(t->tab, t->cap, s);
    list_append(t, s);
    t->count++;
    *out = s;
    return 0;
}

static int apply_one(struct rabia_rsm *r, uint64_t slot, const struct rabia_req *q,
                     rabia_rsm_reply_fn fn, void *ctx)
{
    struct sess *s = sessions_find(&r->s, q->client_id);
    if (q->seq == 0) { /* close the session: its client is gone */
        if (s) {
            r->sess_sum -= sess_term(s);
            r->sess_core_sum -= sess_core_term(s);
            r->reply_bytes -= s->bytes;
            sessions_remove(&r->s, s);
            sess_release(r, s);
        }
        reply(fn, ctx, q, RABIA_REPLY_OK, NULL, 0);
        return 0;
    }
    if (q->ack > q->seq || q->seq - q->ack >= W) {
        reply(fn, ctx, q, RABIA_REPLY_BAD_REQUEST, NULL, 0);
        return 0;
    }
    if (!s && !(q->client_id & RABIA_SESSION_CONN_SCOPED)) {
        if (q->seq == 1 && q->op_len == 0) {
            /* OPEN: a new session, named by the log (never by the client:
             * a late copy of an OPEN then opens an unused session instead
             * of reviving an evicted one, whose retried requests would
             * apply twice; found by the simulator, seed 56 --mix pause) */
            uint64_t id = RABIA_SESSION_ASSIGNED | ++r->sessions_opened;
            RABIA_ASSERT(r->sessions_opened < RABIA_SESSION_ASSIGNED);
            int rc = new_session(r, id, 2, &s);
            if (rc)
                return rc;
            sess_touch(&r->s, s, slot);
            r->sess_sum += sess_hdr_term(s);
            r->sess_core_sum += sess_hdr_term(s);
            uint8_t b[8];
            for (int i = 0; i < 8; i++)
                b[i] = (uint8_t)(id >> (8 * i));
            reply(fn, ctx, q, RABIA_REPLY_OK, b, sizeof b);
            return 0;
        }
        /* its session is gone (evicted or closed), or never was: what its
         * earlier requests did is forgotten, so applying this one could
         * apply it twice */
        reply(fn, ctx, q, RABIA_REPLY_SESSION_EXPIRED, NULL, 0);
        return 0;
    }
    if (!s) { /* a connection-scoped session: (re)opened on demand */
        int rc = new_session(r, q->client_id, q->ack, &s);
        if (rc)
            return rc;
    } else {
        r->sess_sum -= sess_hdr_term(s); /* base and last_active move */
        r->sess_core_sum -= sess_hdr_term(s);
        if (q->ack > s->base)
            sess_advance(r, s, q->ack);
    }
    sess_touch(&r->s, s, slot);
    r->sess_sum += sess_hdr_term(s);
    r->sess_core_sum += sess_hdr_term(s);

    if (q->seq < s->base) {
        reply(fn, ctx, q, RABIA_REPLY_SESSION_EXPIRED, NULL, 0);
        return 0;
    }
    unsigned idx = (unsigned)(q->seq % W);
    struct ent *e = &s->ent[idx];
    if (s->mask & (1ull << idx)) {
        if (e->kept)
            reply(fn, ctx, q, RABIA_REPLY_OK, e->data, e->len);
        else
            reply(fn, ctx, q, RABIA_REPLY_APPLIED_NO_RESULT, NULL, 0);
        return 0;
    }
    rabia_buf_clear(&r->scratch);
    if (q->op_len) { /* an empty op does nothing: no state machine call */
        int rc = r->ops->apply(r->sm, q->op, q->op_len, &r->scratch);
        if (rc < 0)
            return rc;
        if (r->cfg.on_apply)
            r->cfg.on_apply(r->cfg.on_apply_ctx, slot, q->client_id, q->seq, q->op, q->op_len,
                            r->scratch.data, r->scratch.len);
    }
    s->mask |= 1ull << idx;
    if (r->scratch.len <= r->cfg.max_reply_bytes) {
        if (r->scratch.len) {
            RABIA_ASSERT(!e->data); /* dropped (ent_drop) before its seq came round again */
            if (!(e->data = reply_take(r, r->scratch.len)))
                return -ENOMEM;
            memcpy(e->data, r->scratch.data, r->scratch.len);
            s->bytes += r->scratch.len;
            r->reply_bytes += r->scratch.len;
            if (!s->in_blist)
                kept_append(&r->s, s);
        }
        e->len = (uint32_t)r->scratch.len;
        e->kept = 1;
    }
    r->sess_sum += ent_term(s, q->seq, e);
    r->sess_core_sum += ent_core_term(s, q->seq);
    trim_replies(r);
    reply(fn, ctx, q, RABIA_REPLY_OK, r->scratch.data, r->scratch.len);
    return 0;
}

int rabia_rsm_apply(struct rabia_rsm *r, uint64_t slot, const uint8_t *body, size_t len,
                    rabia_rsm_reply_fn fn, void *ctx)
{
    return rabia_rsm_apply_batch(r, slot, NULL, body, len, fn, ctx);
}

int rabia_rsm_apply_batch(struct rabia_rsm *r, uint64_t slot, const struct rabia_batch_id *id,
                          const uint8_t *body, size_t len, rabia_rsm_reply_fn fn, void *ctx)
{
    if (r->applied == UINT64_MAX || slot != r->applied + 1)
        return -EINVAL;
    struct rabia_batch_iter it;
    struct rabia_req q;
    if (!body || len == 0 || rabia_batch_validate(body, len) != 0 ||
        rabia_batch_iter_init(&it, body, len) != 0) {
        r->applied = slot; /* a null slot, or a malformed body: a no-op */
        return 0;
    }
    if (batch_seen(r, id)) {
        r->applied = slot; /* decided a second time: applied once already */
        return 0;
    }
    if (r->ops->begin) {
        struct rabia_sm_batch b = {.slot = slot, .time_ms = rabia_batch_time(body, len)};
        r->ops->begin(r->sm, &b);
    }
    int more;
    /* the prefetch hint runs RABIA_SM_PREFETCH_AHEAD requests ahead */
    struct rabia_batch_iter ahead = it;
    struct rabia_req aq;
    bool pf = r->ops->prefetch != NULL;
    for (int k = 0; pf && k < RABIA_SM_PREFETCH_AHEAD && rabia_batch_iter_next(&ahead, &aq) == 1; k++)
        r->ops->prefetch(r->sm, aq.op, aq.op_len);
    while ((more = rabia_batch_iter_next(&it, &q)) == 1) {
        if (pf && rabia_batch_iter_next(&ahead, &aq) == 1)
            r->ops->prefetch(r->sm, aq.op, aq.op_len);
        int rc = apply_one(r, slot, &q, fn, ctx);
        if (rc < 0)
            return rc;
    }
    if (more < 0) /* validated above: cannot happen */
        return RABIA_E_INVARIANT;
    r->applied = slot;
    return 0;
}

int rabia_rsm_lookup(const struct rabia_rsm *r, uint64_t client_id, uint64_t seq, int *status,
                     const uint8_t **reply_p, size_t *len)
{
    const struct sess *s = sessions_find(&r->s, client_id);
    *reply_p = NULL;
    *len = 0;
    if (!s)
        return 0;
    if (seq < s->base) {
        *status = RABIA_REPLY_SESSION_EXPIRED;
        return 1;
    }
    if (seq - s->base >= W)
        return 0;
    unsigned idx = (unsigned)(seq % W);
    if (!(s->mask & (1ull << idx)))
        return 0;
    if (s->ent[idx].kept) {
        *status = RABIA_REPLY_OK;
        *reply_p = s->ent[idx].data;
        *len = s->ent[idx].len;
    } else {
        *status = RABIA_REPLY_APPLIED_NO_RESULT;
    }
    return 1;
}

/* ---- snapshots ---- */

static int cmp_client(const void *x, const void *y)
{
    const struct sess *a = *(const struct sess *const *)x;
    const struct sess *b = *(const struct sess *const *)y;
    return a->client_id < b->client_id ? -1 : a->client_id > b->client_id;
}

static int cmp_activity(const void *x, const void *y)
{
    const struct sess *a = *(const struct sess *const *)x;
    const struct sess *b = *(const struct sess *const *)y;
    if (a->last_active != b->last_active)
        return a->last_active < b->last_active ? -1 : 1;
    return a->client_id < b->client_id ? -1 : a->client_id > b->client_id;
}

/* The sessions as an array (NULL if none), sorted by cmp. */
static int sessions_sorted(const struct sessions *t, int (*cmp)(const void *, const void *),
                           struct sess ***out)
{
    *out = NULL;
    if (!t->count)
        return 0;
    struct sess **v = malloc(t->count * sizeof *v);
    if (!v)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->tab[i])
            v[n++] = t->tab[i];
    qsort(v, n, sizeof *v, cmp);
    *out = v;
    return 0;
}

static int put_sessions(struct rabia_buf *out, struct sess **v, uint32_t n)
{
    int rc = rabia_buf_put_u64(out, n);
    for (uint32_t k = 0; !rc && k < n; k++) {
        const struct sess *s = v[k];
        uint64_t rel = 0;
        for (unsigned i = 0; i < W; i++)
            if (s->mask & (1ull << ((s->base + i) % W)))
                rel |= 1ull << i;
        if ((rc = rabia_buf_put_u64(out, s->client_id)) || (rc = rabia_buf_put_u64(out, s->base)) ||
            (rc = rabia_buf_put_u64(out, s->last_active)) || (rc = rabia_buf_put_u64(out, rel)))
            break;
        for (unsigned i = 0; !rc && i < W; i++) {
            if (!(rel & (1ull << i)))
                continue;
            const struct ent *e = &s->ent[(s->base + i) % W];
            rc = rabia_buf_put_u8(out, e->kept);
            if (!rc && e->kept) {
                rc = rabia_buf_put_u32(out, e->len);
                if (!rc)
                    rc = rabia_buf_append(out, e->data, e->len);
            }
        }
    }
    return rc;
}

static int put_trackers(const struct rabia_rsm *r, struct rabia_buf *out)
{
    uint32_t n = 0;
    for (int p = 0; p < RABIA_MAX_REPLICAS; p++)
        n += r->tr[p].incarnation != 0;
    int rc = rabia_buf_put_u32(out, n);
    for (int p = 0; !rc && p < RABIA_MAX_REPLICAS; p++) {
        const struct btrack *t = &r->tr[p];
        if (!t->incarnation)
            continue;
        rc = rabia_buf_put_u8(out, (uint8_t)p);
        if (!rc)
            rc = rabia_buf_put_u64(out, t->incarnation);
        if (!rc)
            rc = rabia_buf_put_u64(out, t->base);
        for (int i = 0; !rc && i < TRACK_BITS / 64; i++)
            rc = rabia_buf_put_u64(out, t->bits[i]);
    }
    return rc;
}

/* The state hash: the apply layer's own state (applied slot, sessions
 * opened, the sessions' sum, the batch trackers: all fixed size) and the
 * state machine's hash, its state_hash op or, without one, XXH3 of its
 * snapshot (sm_bytes when at hand, else taken now). */
static int state_hash_with(struct rabia_rsm *r, const uint8_t *sm_bytes, size_t sm_len, uint64_t sess_sum,
                           uint64_t *out)
{
    uint64_t smh;
    if (r->ops->state_hash) {
        int rc = r->ops->state_hash(r->sm, &smh);
        if (rc)
            return rc;
    } else if (sm_bytes) {
        smh = XXH3_64bits(sm_bytes, sm_len);
    } else {
        rabia_buf_clear(&r->hashbuf);
        int rc = r->ops->snapshot(r->sm, &r->hashbuf);
        if (rc)
            return rc;
        smh = XXH3_64bits(r->hashbuf.data, r->hashbuf.len);
        if (r->hashbuf.len > (64u << 20)) rabia_buf_free(&r->hashbuf); /* not a second copy of a large state for good */
    }
    /* one flat buffer: fixed size, on the stack */
    uint64_t v[5 + RABIA_MAX_REPLICAS * (3 + TRACK_BITS / 64)] = {r->applied, r->sessions_opened, r->s.count,
                                                                 sess_sum, smh};
    size_t n = 5;
    for (int p = 0; p < RABIA_MAX_REPLICAS; p++)
        if (r->tr[p].incarnation) {
            v[n++] = (uint64_t)p;
            v[n++] = r->tr[p].incarnation;
            v[n++] = r->tr[p].base;
            memcpy(v + n, r->tr[p].bits, sizeof r->tr[p].bits);
            n += TRACK_BITS / 64;
        }
    RABIA_ASSERT(n <= sizeof v / sizeof v[0]);
    *out = XXH3_64bits_withSeed(v, n * sizeof v[0], TERM_SEED + 2);
    return 0;
}

static int state_hash(struct rabia_rsm *r, const uint8_t *sm_bytes, size_t sm_len, uint64_t *out)
{
    return state_hash_with(r, sm_bytes, sm_len, r->sess_sum, out);
}

int rabia_rsm_snapshot(struct rabia_rsm *r, struct rabia_buf *out)
{
    size_t start = out->len;
    const char *name = sm_name(r);
    size_t name_len = strlen(name);
    struct sess **v;
    int rc = sessions_sorted(&r->s, cmp_client, &v);
    if (rc)
        return rc;
    if ((rc = rabia_buf_put_u32(out, RSM_MAGIC)) || (rc = rabia_buf_put_u32(out, (uint32_t)name_len)) ||
        (rc = rabia_buf_append(out, name, name_len)) ||
        (rc = rabia_buf_put_u64(out, r->applied)) || (rc = rabia_buf_put_u64(out, r->sessions_opened)) ||
        (rc = put_sessions(out, v, r->s.count)) ||
        (rc = put_trackers(r, out)))
        goto fail;
    size_t at = out->len;
    if ((rc = rabia_buf_put_u64(out, 0)) || (rc = r->ops->snapshot(r->sm, out)))
        goto fail;
    uint64_t sm_len = out->len - at - 8, h;
    for (int i = 0; i < 8; i++)
        out->data[at + (size_t)i] = (uint8_t)(sm_len >> (8 * i));
    /* the state hash, so that whoever restores this can check its own
     * recomputation (and backups carry it) */
    if ((rc = state_hash(r, out->data + at + 8, sm_len, &h)) || (rc = rabia_buf_put_u64(out, h)) ||
        (rc = rabia_buf_put_u64(out, XXH64(out->data + start, out->len - start, 0))))
        goto fail;
    free(v);
    return 0;
fail:
    free(v);
    out->len = start;
    return rc;
}

uint64_t rabia_rsm_hash(struct rabia_rsm *r)
{
    uint64_t h;
    return state_hash(r, NULL, 0, &h) ? 0 : h;
}

uint64_t rabia_rsm_check_hash(struct rabia_rsm *r)
{
    uint64_t h;
    return state_hash_with(r, NULL, 0, r->sess_core_sum, &h) ? 0 : h;
}

uint64_t rabia_rsm_hash_mismatches(const struct rabia_rsm *r)
{
    return r->hash_mismatches;
}

/* Bounds-checked little-endian reading. */
struct rd {
    const uint8_t *p, *end;
};

static bool rd_u8(struct rd *d, uint8_t *v)
{
    if (d->end - d->p < 1)
        return false;
    *v = *d->p++;
    return true;
}

static bool rd_u32(struct rd *d, uint32_t *v)
{
    if (d->end - d->p < 4)
        return false;
    *v = rabia_le_get32(d->p);
    d->p += 4;
    return true;
}

static bool rd_u64(struct rd *d, uint64_t *v)
{
    if (d->end - d->p < 8)
        return false;
    *v = rabia_le_get64(d->p);
    d->p += 8;
    return true;
}

static bool rd_bytes(struct rd *d, size_t n, const uint8_t **p)
{
    if ((size_t)(d->end - d->p) < n)
        return false;
    *p = d->p;
    d->p += n;
    return true;
}

/* Parse one session into a new struct sess (*out). 0, -EINVAL, -ENOMEM. */
static int parse_session(struct rd *d, uint64_t applied, struct sess **out)
{
    uint64_t rel;
    struct sess *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    int rc = -EINVAL;
    if (!rd_u64(d, &s->client_id) || !rd_u64(d, &s->base) || !rd_u64(d, &s->last_active) ||
        !rd_u64(d, &rel) || s->last_active > applied)
        goto fail;
    for (unsigned i = 0; i < W; i++) {
        if (!(rel & (1ull << i)))
            continue;
        unsigned idx = (unsigned)((s->base + i) % W);
        struct ent *e = &s->ent[idx];
        uint8_t kept;
        if (!rd_u8(d, &kept) || kept > 1)
            goto fail;
        s->mask |= 1ull << idx;
        if (kept) {
            const uint8_t *p;
            if (!rd_u32(d, &e->len) || !rd_bytes(d, e->len, &p))
                goto fail;
            if (e->len) {
                if (!(e->data = reply_alloc(e->len))) {
                    rc = -ENOMEM;
                    goto fail;
                }
                memcpy(e->data, p, e->len);
            }
            e->kept = 1;
        }
    }
    *out = s;
    return 0;
fail:
    sess_free(s);
    return rc;
}

int rabia_rsm_snapshot_hash(const uint8_t *data, size_t len, uint64_t *hash)
{
    if (len < 4 + 16 || rabia_le_get32(data) != RSM_MAGIC)
        return -EINVAL;
    *hash = rabia_le_get64(data + len - 16);
    return 0;
}

int rabia_rsm_snapshot_slot(const uint8_t *data, size_t len, uint64_t *slot)
{
    if (len < 8 || XXH64(data, len - 8, 0) != rabia_le_get64(data + len - 8))
        return -EINVAL;
    struct rd d = {data, data + len - 8};
    uint32_t magic, name_len;
    const uint8_t *name;
    if (!rd_u32(&d, &magic) || (magic != RSM_MAGIC && magic != RSM_MAGIC_V2) || !rd_u32(&d, &name_len) ||
        !rd_bytes(&d, name_len, &name) || !rd_u64(&d, slot))
        return -EINVAL;
    return 0;
}

int rabia_rsm_restore(struct rabia_rsm *r, const uint8_t *data, size_t len)
{
    if (len < 8 || XXH64(data, len - 8, 0) != rabia_le_get64(data + len - 8))
        return -EINVAL;
    struct rd d = {data, data + len - 8};
    uint32_t magic, name_len;
    const uint8_t *name, *sm_data;
    uint64_t applied, opened, count, sm_len, stored_hash = 0;
    if (!rd_u32(&d, &magic) || (magic != RSM_MAGIC && magic != RSM_MAGIC_V2))
        return -EINVAL;
    if (magic == RSM_MAGIC) { /* the state hash sits before the checksum */
        if (d.end - d.p < 8)
            return -EINVAL;
        d.end -= 8;
        stored_hash = rabia_le_get64(d.end);
    }
    if (!rd_u32(&d, &name_len) ||
        !rd_bytes(&d, name_len, &name) || name_len != strlen(sm_name(r)) ||
        memcmp(name, sm_name(r), name_len) != 0 || !rd_u64(&d, &applied) || !rd_u64(&d, &opened) ||
        !rd_u64(&d, &count) || opened >= RABIA_SESSION_ASSIGNED - 1 || count > r->cfg.max_sessions ||
        count > (size_t)(d.end - d.p) / 32) /* a session takes >= 32 bytes */
        return -EINVAL;

    struct sessions nt = {0};
    struct sess **v = NULL;
    int rc = sessions_reserve(&nt, (size_t)count);
    if (!rc && count && !(v = malloc((size_t)count * sizeof *v)))
        rc = -ENOMEM;
    for (uint64_t k = 0; !rc && k < count; k++) {
        struct sess *s;
        if ((rc = parse_session(&d, applied, &s)))
            break;
        if (k > 0 && s->client_id <= v[k - 1]->client_id) {
            sess_free(s);
            rc = -EINVAL;
            break;
        }
        /* a session the log named must be one of the OPENs counted */
        if (!(s->client_id & RABIA_SESSION_CONN_SCOPED) && (s->client_id & RABIA_SESSION_ASSIGNED) &&
            (s->client_id & ~RABIA_SESSION_ASSIGNED) > opened) {
            sess_free(s);
            rc = -EINVAL;
            break;
        }
        table_place(nt.tab, nt.cap, s);
        nt.count++;
        v[k] = s;
    }
    struct btrack tr[RABIA_MAX_REPLICAS];
    memset(tr, 0, sizeof tr);
    uint32_t n_tr = 0;
    if (!rc && (!rd_u32(&d, &n_tr) || n_tr > RABIA_MAX_REPLICAS))
        rc = -EINVAL;
    for (uint32_t k = 0; !rc && k < n_tr; k++) {
        uint8_t p;
        struct btrack t;
        bool ok = rd_u8(&d, &p) && p < RABIA_MAX_REPLICAS && !tr[p].incarnation && rd_u64(&d, &t.incarnation) &&
                  t.incarnation && rd_u64(&d, &t.base);
        for (int i = 0; ok && i < TRACK_BITS / 64; i++)
            ok = rd_u64(&d, &t.bits[i]);
        if (!ok)
            rc = -EINVAL;
        else
            tr[p] = t;
    }
    if (!rc && (!rd_u64(&d, &sm_len) || sm_len != (uint64_t)(d.end - d.p)))
        rc = -EINVAL;
    if (!rc) {
        sm_data = d.p;
        /* The state machine's restore is all or nothing: once it succeeds
         * nothing else can fail. */
        rc = r->ops->restore(r->sm, sm_data, (size_t)sm_len);
    }
    if (rc) {
        free(v);
        sessions_free(&nt);
        return rc;
    }
    if (count)
        qsort(v, (size_t)count, sizeof *v, cmp_activity);
    uint64_t bytes = 0, sum = 0, core_sum = 0;
    for (uint64_t k = 0; k < count; k++) {
        sum += sess_term(v[k]);
        core_sum += sess_core_term(v[k]);
        list_append(&nt, v[k]);
        for (unsigned i = 0; i < W; i++)
            if (v[k]->ent[i].kept)
                v[k]->bytes += v[k]->ent[i].len;
        if (v[k]->bytes)
            kept_append(&nt, v[k]);
        bytes += v[k]->bytes;
    }
    free(v);
    sessions_free(&r->s);
    r->s = nt;
    r->applied = applied;
    r->sessions_opened = opened;
    r->reply_bytes = bytes;
    r->sess_sum = sum;
    r->sess_core_sum = core_sum;
    memcpy(r->tr, tr, sizeof tr);
    /* The hash recomputed from what was restored must be the one the
     * snapshot's maker had kept up to date: a difference is a bug in the
     * incremental bookkeeping (the bytes passed their checksum). Counted,
     * and reported by the embedder, never fatal: the state is the log's. */
    uint64_t h;
    if (magic == RSM_MAGIC && !state_hash(r, sm_data, (size_t)sm_len, &h) && h != stored_hash)
        r->hash_mismatches++;
    trim_replies(r); /* this replica's budget may be smaller */
    return 0;
}
