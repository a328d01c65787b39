/* The Rabia protocol as a pure step function: SMR layer (pending queues,
 * slot assignment, in-order apply) and weak multi-valued consensus per slot.
 * See include/rabia/core.h for the contract and shared/design/RABIA.md for
 * the rules this file implements. */
#include "rabia/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL /* small fixed inputs: let the compiler inline */
#include <xxhash.h>

#include "invariant.h"

#define PH_RING 64       /* phases of one slot remembered (2^-63 to need more) */
/* A queue holds up to max_pending batches, except the own queue right
 * after a restart with the log: the undecided own batches (max_pending at
 * most) and those decided in slots whose decisions had not reached the
 * disk (a few windows) all come back, and a decided slot may need any of
 * them: twice max_pending. */
#define PQ_CAP(c) (2 * (c)->cfg.max_pending)
/* Bodies a restart keeps for open slots: own batches applied in the last
 * windows of slots, and other proxies' batches proposed in open slots. */
#define PIN_CAP(c) ((c)->cfg.max_pending + 2 * (c)->cfg.window)
#define LOST_DROP 8      /* a peer's batch that lost this many slots is dropped */
#define REBROADCAST_TICKS 4 /* own pending batch re-sent after this many retransmit periods */

/* Counters of one round of one phase: who was counted, how many per value. */
struct round {
    uint8_t mask;    /* senders seen (counted or not) */
    uint8_t counted; /* at most n-f */
    uint8_t cnt[3];  /* per value 0, 1, ? among the counted */
};

struct phase {
    uint16_t phase; /* tag: which phase this ring entry holds */
    struct round st, vt;
    uint8_t my_state, my_vote;
    uint8_t sent; /* bit 0: my state sent, bit 1: my vote sent */
};

/* One consensus instance (one slot in the window). */
struct inst {
    uint64_t slot;
    bool used;       /* initialised for `slot` */
    bool started;    /* my proposal made (or, muted, joined as listener) */
    bool mute;       /* abstaining: send nothing, count nothing of mine */
    bool seen;       /* a peer sent something for this slot */
    bool decided;
    uint8_t value;
    bool known_id;   /* maj_id is the batch a majority proposed */
    struct rabia_batch_id maj_id;
    int32_t my_entry; /* batch table index of my proposal, -1 = none */
    bool my_has;
    struct rabia_batch_id my_id;
    uint8_t prop_mask, prop_counted;
    struct rabia_batch_id props[RABIA_MAX_REPLICAS];
    uint8_t props_has[RABIA_MAX_REPLICAS];
    uint16_t phase;  /* current phase (0 = exchange) */
    uint8_t round;   /* 0 exchange, 1 state round, 2 vote round */
    uint8_t state;   /* my state entering the current phase */
    uint64_t last_us;/* last progress or retransmission */
    struct phase ph[PH_RING];
};

/* A decided slot, kept for in-order apply and for peers' catch-up. */
struct logent {
    uint64_t slot;   /* 0 = empty */
    uint8_t value;
    struct rabia_batch_id id;
    int32_t entry;   /* batch body, -1 while it is being fetched */
    uint64_t fetch_us;
};

/* A batch body the core holds. */
struct bent {
    bool used;
    bool in_pq;      /* pending in its proxy's queue */
    bool zombie;     /* free at the start of the next step */
    uint8_t inflight;/* my active slots proposing it */
    uint8_t lost;    /* slots it lost while I proposed it */
    uint16_t refs;   /* log entries holding it */
    struct rabia_batch_id id;
    uint32_t len;
    uint64_t sent_us;/* own batches: when last broadcast */
    uint64_t pin_until; /* restored own batch, applied already: kept for peers' FETCH while a
                           slot up to here may decide it again (0: not pinned) */
    uint8_t *data;
};

/* Per proxy: which of its batches are known decided. */
struct tracker {
    uint64_t incarnation;
    uint64_t base;   /* every seq < base decided */
    uint64_t bits[4];/* seq base+i decided */
};

struct pq {
    uint32_t n;
    int32_t *items; /* batch entries sorted by (incarnation, seq) */
};

struct rabia_core {
    struct rabia_config cfg;
    uint8_t nf, maj, f1; /* n-f, floor(n/2)+1, f+1 */
    uint64_t now;
    uint64_t next_apply;
    uint64_t log_low;    /* no slot below this is in the log (a snapshot covered it) */
    uint64_t next_seq;
    uint64_t max_seen;   /* highest slot seen or sent in any message */
    uint64_t abstain_below;
    uint64_t drive_until; /* start slots up to here even with nothing to propose */
    bool recovering;
    uint8_t horizon_mask;
    uint64_t horizon_max;
    uint64_t horizon_sent_us;
    uint64_t peer_known[RABIA_MAX_REPLICAS];
    uint64_t catchup_us;
    uint64_t last_reply_slot[RABIA_MAX_REPLICAS];
    uint64_t last_reply_us[RABIA_MAX_REPLICAS];
    uint64_t snap_us[RABIA_MAX_REPLICAS];

    struct inst *inst;   /* [window] */
    struct logent *log;  /* [log_size] */
    uint32_t log_size, ahead;

    struct bent *bt;     /* batch table */
    uint32_t bt_cap, bt_used;
    int32_t *idx;        /* hash index id -> entry, open addressing */
    uint32_t idx_mask;
    uint8_t *arena;
    int32_t *zombies;
    uint32_t n_zombies;
    int32_t *free_list; /* unused entries */
    uint32_t n_free;

    struct pq pq[RABIA_MAX_REPLICAS];
    struct tracker tr[RABIA_MAX_REPLICAS];

    struct rabia_send *sends;
    uint32_t sends_cap;
    struct rabia_apply *applies;
    uint32_t applies_cap;
    struct rabia_apply *retired; /* [PQ_CAP] */
    struct rabia_msg *persist;   /* [sends_cap]: first sends a restart must not contradict */
    int32_t *pinned;             /* [PIN_CAP]: restored bodies kept for FETCH (bent.pin_until) */
    uint32_t n_pinned;
    uint64_t pin_max;
    struct rabia_update *out;

    struct rabia_stats stats;
    rabia_trace_fn trace;
    void *trace_ctx;
    const char *last_anomaly;
    rabia_coin_fn coin_obs;
    void *coin_ctx;
};

/* ------------------------------------------------------------------ */
/* configuration */

void rabia_config_default(struct rabia_config *cfg, uint8_t n, uint8_t self)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->n = n;
    cfg->self = self;
    cfg->epoch = 1;
    cfg->cluster_seed = 0x5261626961ull; /* "Rabia" */
    cfg->incarnation = 1;
    cfg->window = 1;
    cfg->max_batch_bytes = 64 * 1024;
    cfg->max_pending = 64;
    cfg->log_retain = 1024;
    cfg->catchup_chunk = 32;
    cfg->retransmit_us = 20000;
    cfg->policy = RABIA_POLICY_GLOBAL;
}

int rabia_config_check(const struct rabia_config *cfg, char *why, size_t len)
{
#define BAD(...)                                  \
    do {                                          \
        if (why && len) snprintf(why, len, __VA_ARGS__); \
        return RABIA_E_CONFIG;                    \
    } while (0)
    if (cfg->n != 3 && cfg->n != 5 && cfg->n != 7)
        BAD("n = %u: a cluster has 3, 5 or 7 replicas", cfg->n);
    if (cfg->self >= cfg->n)
        BAD("self = %u: replica id must be below n = %u", cfg->self, cfg->n);
    if (cfg->window < 1 || cfg->window > RABIA_MAX_WINDOW)
        BAD("window = %u: must be 1..%u", cfg->window, RABIA_MAX_WINDOW);
    if (cfg->policy > RABIA_POLICY_CLASSES)
        BAD("policy = %u: use 0 (global) or 1 (classes)", cfg->policy);
    if (cfg->policy == RABIA_POLICY_CLASSES && cfg->window < cfg->n)
        BAD("policy classes needs window >= n (window = %u, n = %u)", cfg->window, cfg->n);
    /* Measured in the simulator: with several slots in flight, replicas
     * assign queue heads to slots differently and proposals stop matching
     * (livelock of null slots under load from every proxy). */
    if (cfg->policy == RABIA_POLICY_GLOBAL && cfg->window != 1)
        BAD("policy global runs one slot at a time: set window = 1, or use policy classes for window > 1");
    if (cfg->max_pending < 1 || cfg->max_pending > RABIA_MAX_PENDING)
        BAD("max_pending = %u: must be 1..%u", cfg->max_pending, RABIA_MAX_PENDING);
    if (cfg->max_batch_bytes < 16 || cfg->max_batch_bytes > RABIA_MAX_FRAME - 256)
        BAD("max_batch_bytes = %u: must be 16..%u", cfg->max_batch_bytes, RABIA_MAX_FRAME - 256);
    if (cfg->log_retain < 1 || cfg->log_retain > (1u << 20))
        BAD("log_retain = %u: must be 1..%u", cfg->log_retain, 1u << 20);
    if (cfg->catchup_chunk < 1 || cfg->catchup_chunk > 4096)
        BAD("catchup_chunk = %u: must be 1..4096", cfg->catchup_chunk);
    if (cfg->retransmit_us < 100)
        BAD("retransmit_us = %llu: must be at least 100", (unsigned long long)cfg->retransmit_us);
    if (cfg->incarnation == 0) BAD("incarnation must be > 0");
    return 0;
#undef BAD
}

/* ------------------------------------------------------------------ */
/* helpers */

static void tracef(struct rabia_core *c, uint64_t slot, const char *fmt, ...)
{
    if (!c->trace) return;
    char line[256];
    int k = snprintf(line, sizeof line, "r%u ", c->cfg.self);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + k, sizeof line - (size_t)k, fmt, ap);
    va_end(ap);
    c->trace(c->trace_ctx, slot, line);
}

/* A peer broke a protocol rule (or, in tests, a planted bug did): count it,
 * remember what, never trust it. */
static void anomaly(struct rabia_core *c, const char *what)
{
    c->stats.anomalies++;
    c->last_anomaly = what;
}

static const char *idstr(const struct rabia_batch_id *id, bool has, char *buf, size_t len)
{
    if (!has) return "none";
    snprintf(buf, len, "%u.%llu.%llu", id->proxy, (unsigned long long)id->incarnation,
             (unsigned long long)id->seq);
    return buf;
}

int rabia_coin(uint64_t cluster_seed, uint64_t epoch, uint64_t slot, uint32_t phase)
{
    uint64_t in[3] = {epoch, slot, phase};
    return (int)(XXH64(in, sizeof in, cluster_seed) >> 63);
}

static int coin(struct rabia_core *c, uint64_t slot, uint32_t phase)
{
    uint64_t seed = c->cfg.cluster_seed;
#ifdef RABIA_TEST_BUGS
    if (c->cfg.bugs & RABIA_BUG_COIN_PER_REPLICA) seed ^= 0x9E3779B97F4A7C15ull * (c->cfg.self + 1);
#endif
    return rabia_coin(seed, c->cfg.epoch, slot, phase);
}

static int key_cmp(const struct rabia_batch_id *a, const struct rabia_batch_id *b)
{
    if (a->seq != b->seq) return a->seq < b->seq ? -1 : 1;
    if (a->proxy != b->proxy) return a->proxy < b->proxy ? -1 : 1;
    if (a->incarnation != b->incarnation) return a->incarnation < b->incarnation ? -1 : 1;
    return 0;
}

static struct rabia_send *emit(struct rabia_core *c, uint8_t to, uint8_t type, uint64_t slot)
{
    struct rabia_update *o = c->out;
    if (o->n_sends >= c->sends_cap) {
        c->stats.sends_dropped++;
        return NULL;
    }
    struct rabia_send *s = &c->sends[o->n_sends++];
    memset(s, 0, sizeof(*s));
    s->to = to;
    s->msg.type = type;
    s->msg.from = c->cfg.self;
    s->msg.slot = slot;
    if (slot > c->max_seen && type >= RABIA_MSG_PROPOSAL && type <= RABIA_MSG_DECISION) c->max_seen = slot;
    return s;
}

/* Persistence contract rule 1: record a message this replica sends for
 * the first time and must never contradict after a restart. Recorded even
 * when emit() had no room for the send itself: the content is decided the
 * moment it is chosen (p->sent is set), and its retransmission must find it
 * durable. */
static void persist(struct rabia_core *c, const struct rabia_msg *m)
{
    struct rabia_update *o = c->out;
    RABIA_ASSERT(o->n_persist < c->sends_cap); /* one per first send, at most sends_cap per step */
    RABIA_ASSERT(m->type == RABIA_MSG_BATCH || m->type == RABIA_MSG_HORIZON ||
                 (m->slot >= c->next_apply && m->type >= RABIA_MSG_PROPOSAL && m->type <= RABIA_MSG_VOTE));
    c->persist[o->n_persist] = *m;
    c->persist[o->n_persist].from = c->cfg.self;
    o->n_persist++;
}

/* ------------------------------------------------------------------ */
/* batch table */

static uint32_t id_hash(const struct rabia_batch_id *id)
{
    uint64_t in[3] = {id->incarnation, id->seq, id->proxy};
    return (uint32_t)XXH64(in, sizeof in, 0);
}

static int32_t bt_find(const struct rabia_core *c, const struct rabia_batch_id *id)
{
    uint32_t h = id_hash(id) & c->idx_mask;
    for (uint32_t i = 0; i <= c->idx_mask; i++) {
        int32_t e = c->idx[(h + i) & c->idx_mask];
        if (e < 0) return -1;
        if (rabia_batch_id_eq(&c->bt[e].id, id)) return e;
    }
    return -1;
}

static void idx_remove(struct rabia_core *c, int32_t e)
{
    uint32_t i = id_hash(&c->bt[e].id) & c->idx_mask;
    while (c->idx[i] != e) {
        RABIA_ASSERT(c->idx[i] >= 0);
        i = (i + 1) & c->idx_mask;
    }
    /* backward-shift deletion keeps probe chains intact without tombstones */
    uint32_t j = i;
    for (;;) {
        c->idx[i] = -1;
        for (;;) {
            j = (j + 1) & c->idx_mask;
            if (c->idx[j] < 0) return;
            uint32_t k = id_hash(&c->bt[c->idx[j]].id) & c->idx_mask;
            /* move j to i unless its home k lies cyclically in (i, j] */
            if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
            break;
        }
        c->idx[i] = c->idx[j];
        i = j;
    }
}

static int32_t bt_alloc(struct rabia_core *c, const struct rabia_batch_id *id,
                        const uint8_t *body, uint32_t len)
{
    if (len > c->cfg.max_batch_bytes || c->bt_used >= c->bt_cap) return -1;
    RABIA_ASSERT(c->n_free > 0);
    int32_t e = c->free_list[--c->n_free]; /* most recently freed: warm memory */
    RABIA_ASSERT(!c->bt[e].used);
    struct bent *b = &c->bt[e];
    uint8_t *data = b->data;
    memset(b, 0, sizeof(*b));
    b->data = data;
    b->used = true;
    b->id = *id;
    b->len = len;
    if (len) memcpy(b->data, body, len);
    c->bt_used++;
    uint32_t h = id_hash(id) & c->idx_mask;
    while (c->idx[h] >= 0) h = (h + 1) & c->idx_mask;
    c->idx[h] = e;
    return e;
}

/* Free the entry if nothing holds it; deferred to the next step so that
 * bodies referenced by this step's output stay intact. */
static void bt_maybe_free(struct rabia_core *c, int32_t e)
{
    struct bent *b = &c->bt[e];
    if (!b->used || b->zombie || b->in_pq || b->inflight || b->refs || b->pin_until >= c->next_apply) return;
    b->zombie = true;
    RABIA_ASSERT(c->n_zombies < c->bt_cap);
    c->zombies[c->n_zombies++] = e;
}

static void bt_reap(struct rabia_core *c)
{
    for (uint32_t i = 0; i < c->n_zombies; i++) {
        int32_t e = c->zombies[i];
        struct bent *b = &c->bt[e];
        RABIA_ASSERT(b->used && b->zombie);
        if (b->in_pq || b->inflight || b->refs) { /* picked up again */
            b->zombie = false;
            continue;
        }
        idx_remove(c, e);
        b->used = false;
        b->zombie = false;
        c->bt_used--;
        c->free_list[c->n_free++] = e;
    }
    c->n_zombies = 0;
}

/* ------------------------------------------------------------------ */
/* decided-batch tracker and pending queues */

static bool tr_decided(const struct rabia_core *c, const struct rabia_batch_id *id)
{
    const struct tracker *t = &c->tr[id->proxy];
    if (id->incarnation < t->incarnation) return true; /* obsolete life */
    if (id->incarnation > t->incarnation) return false;
    if (id->seq < t->base) return true;
    uint64_t d = id->seq - t->base;
    return d < 256 && (t->bits[d / 64] >> (d % 64) & 1);
}

static void pq_remove(struct rabia_core *c, int32_t e)
{
    struct bent *b = &c->bt[e];
    if (!b->in_pq) return;
    struct pq *q = &c->pq[b->id.proxy];
    for (uint32_t i = 0; i < q->n; i++) {
        if (q->items[i] == e) {
            memmove(&q->items[i], &q->items[i + 1], (q->n - i - 1) * sizeof(int32_t));
            q->n--;
            break;
        }
    }
    b->in_pq = false;
    bt_maybe_free(c, e);
}

static void tr_reset(struct rabia_core *c, uint8_t proxy, uint64_t incarnation)
{
    struct tracker *t = &c->tr[proxy];
    t->incarnation = incarnation;
    t->base = 1; /* sequence numbers start at 1 */
    memset(t->bits, 0, sizeof t->bits);
    /* batches of the proxy's earlier lives are dropped: their clients retry */
    struct pq *q = &c->pq[proxy];
    for (uint32_t i = 0; i < q->n;) {
        int32_t e = q->items[i];
        if (c->bt[e].id.incarnation < incarnation) pq_remove(c, e);
        else i++;
    }
}

static void tr_mark(struct rabia_core *c, const struct rabia_batch_id *id)
{
    struct tracker *t = &c->tr[id->proxy];
    if (id->incarnation > t->incarnation) tr_reset(c, id->proxy, id->incarnation);
    if (id->incarnation != t->incarnation || id->seq < t->base) return;
    if (id->seq - t->base >= 256) { /* slide: far older seqs count as decided */
        uint64_t nb = id->seq - 255;
        uint64_t shift = nb - t->base;
        uint64_t nbits[4] = {0};
        for (uint64_t i = shift; i < 256; i++)
            if (t->bits[i / 64] >> (i % 64) & 1) nbits[(i - shift) / 64] |= 1ull << ((i - shift) % 64);
        memcpy(t->bits, nbits, sizeof nbits);
        t->base = nb;
    }
    uint64_t d = id->seq - t->base;
    t->bits[d / 64] |= 1ull << (d % 64);
    while (t->bits[0] & 1) { /* advance the base past the decided prefix */
        for (int i = 0; i < 4; i++) {
            t->bits[i] >>= 1;
            if (i < 3) t->bits[i] |= (t->bits[i + 1] & 1) << 63;
        }
        t->base++;
    }
}

static bool pq_insert(struct rabia_core *c, int32_t e)
{
    struct bent *b = &c->bt[e];
    struct pq *q = &c->pq[b->id.proxy];
    if (q->n >= PQ_CAP(c)) return false;
    uint32_t i = q->n;
    while (i > 0) {
        const struct rabia_batch_id *p = &c->bt[q->items[i - 1]].id;
        if (p->incarnation < b->id.incarnation ||
            (p->incarnation == b->id.incarnation && p->seq < b->id.seq))
            break;
        i--;
    }
    memmove(&q->items[i + 1], &q->items[i], (q->n - i) * sizeof(int32_t));
    q->items[i] = e;
    q->n++;
    b->in_pq = true;
    return true;
}

/* The next batch of proxy p's queue that I am not proposing elsewhere. */
static int32_t pq_head(struct rabia_core *c, uint8_t p)
{
    struct pq *q = &c->pq[p];
    for (uint32_t i = 0; i < q->n; i++)
        if (!c->bt[q->items[i]].inflight) return q->items[i];
    return -1;
}

static int32_t choose(struct rabia_core *c, uint64_t slot)
{
    if (c->cfg.policy == RABIA_POLICY_CLASSES) return pq_head(c, (uint8_t)(slot % c->cfg.n));
    int32_t best = -1;
    for (uint8_t p = 0; p < c->cfg.n; p++) {
        int32_t e = pq_head(c, p);
        if (e >= 0 && (best < 0 || key_cmp(&c->bt[e].id, &c->bt[best].id) < 0)) best = e;
    }
    return best;
}

/* ------------------------------------------------------------------ */
/* decided log */

static struct logent *log_get(struct rabia_core *c, uint64_t slot)
{
    struct logent *l = &c->log[slot % c->log_size];
    return l->slot == slot ? l : NULL;
}

/* The retention window: applied slots kept for peers' catch-up. */
static uint64_t log_retain_first(const struct rabia_core *c)
{
    return c->next_apply > c->cfg.log_retain ? c->next_apply - c->cfg.log_retain : 1;
}

/* The lowest applied slot the log really holds. A snapshot install empties
 * the log below its slot, so after one the retention window can reach
 * below what is there: every request for such a slot must get a snapshot
 * offer, or the asker waits for ever (sim seed 633, --mix all). */
static uint64_t log_first(const struct rabia_core *c)
{
    uint64_t f = log_retain_first(c);
    return f > c->log_low ? f : c->log_low;
}

static void log_clear(struct rabia_core *c, struct logent *l)
{
    if (l->slot && l->entry >= 0) {
        struct bent *b = &c->bt[l->entry];
        RABIA_ASSERT(b->refs > 0);
        b->refs--;
        bt_maybe_free(c, l->entry);
    }
    memset(l, 0, sizeof(*l));
    l->entry = -1;
}

static void log_attach(struct rabia_core *c, struct logent *l, int32_t e)
{
    RABIA_ASSERT(l->entry < 0 && e >= 0);
    l->entry = e;
    c->bt[e].refs++;
    tr_mark(c, &l->id);
    pq_remove(c, e);
    /* Keep proxies' sequence numbers in step (a Lamport clock) so that the
     * GLOBAL order (seq, proxy) stays fair to every proxy; only while none of
     * my batches is pending, so peers' trackers never skip a pending one. */
    if (l->id.seq >= c->next_seq && c->pq[c->cfg.self].n == 0) c->next_seq = l->id.seq + 1;
}

static void send_fetch(struct rabia_core *c, struct logent *l)
{
    struct rabia_send *s = emit(c, RABIA_TO_ALL, RABIA_MSG_FETCH, l->slot);
    if (s) {
        s->msg.has_id = 1;
        s->msg.id = l->id;
    }
    l->fetch_us = c->now;
    c->stats.fetches++;
}

/* Record a decision. The log is the single source of truth for apply. */
static void log_decide(struct rabia_core *c, uint64_t slot, uint8_t value,
                       const struct rabia_batch_id *id)
{
    if (slot < c->next_apply || slot >= c->next_apply + c->ahead) return;
    struct logent *l = &c->log[slot % c->log_size];
    if (l->slot == slot) {
        if (l->value != value || (value && !rabia_batch_id_eq(&l->id, id))) anomaly(c, "a decision differs from the one logged");
        return;
    }
    log_clear(c, l);
    l->slot = slot;
    l->value = value;
    if (value) {
        l->id = *id;
        int32_t e = bt_find(c, id);
        if (e >= 0) log_attach(c, l, e);
        else send_fetch(c, l);
    }
}

/* ------------------------------------------------------------------ */
/* consensus instances */

/* The ring entry of a phase. Creating one may only replace an OLDER phase:
 * a late message of an old phase must never wipe what was counted for the
 * newer phase sharing its entry (NULL then: the message is stale). */
static struct phase *ph_get(struct inst *in, uint16_t phase, bool create)
{
    RABIA_ASSERT(phase > 0);
    struct phase *p = &in->ph[phase % PH_RING];
    if (p->phase == phase) return p;
    if (!create || p->phase > phase) return NULL;
    memset(p, 0, sizeof(*p));
    p->phase = phase;
    return p;
}

static bool in_window(const struct rabia_core *c, uint64_t slot)
{
    return slot >= c->next_apply && slot < c->next_apply + c->cfg.window;
}

static struct inst *inst_get(struct rabia_core *c, uint64_t slot)
{
    if (!in_window(c, slot)) return NULL;
    struct inst *in = &c->inst[slot % c->cfg.window];
    if (in->used && in->slot == slot) return in;
    memset(in, 0, sizeof(*in));
    in->used = true;
    in->slot = slot;
    in->my_entry = -1;
    in->mute = c->recovering || slot <= c->abstain_below;
    in->last_us = c->now;
    struct logent *l = log_get(c, slot);
    if (l) { /* decided already, e.g. by catch-up */
        in->decided = true;
        in->value = l->value;
        in->known_id = l->value;
        in->maj_id = l->id;
        in->started = true;
    }
    return in;
}

static void learn_id(struct rabia_core *c, struct inst *in, const struct rabia_msg *m)
{
    if (!m->has_id) return;
    if (!in->known_id) {
        in->known_id = true;
        in->maj_id = m->id;
    } else if (!rabia_batch_id_eq(&in->maj_id, &m->id)) {
        anomaly(c, "a peer's majority batch differs from ours");
    }
}

static void fill_id(const struct inst *in, struct rabia_msg *m)
{
    if (in->known_id) {
        m->has_id = 1;
        m->id = in->maj_id;
    }
}

/* My proposal for the slot is over: free it for later slots, or drop a
 * peer's batch that keeps losing (its proxy re-sends it if still pending). */
static void release_proposal(struct rabia_core *c, struct inst *in)
{
    if (in->my_entry < 0) return;
    struct bent *b = &c->bt[in->my_entry];
    RABIA_ASSERT(b->inflight > 0);
    b->inflight--;
    bool won = in->decided && in->value && rabia_batch_id_eq(&in->maj_id, &b->id);
    if (!won && b->in_pq && b->id.proxy != c->cfg.self && ++b->lost >= LOST_DROP) pq_remove(c, in->my_entry);
    bt_maybe_free(c, in->my_entry);
    in->my_entry = -1;
}

static void decide(struct rabia_core *c, struct inst *in, uint8_t value, bool adopted)
{
    char ib[64];
    if (in->decided) return;
    in->decided = true;
    in->value = value;
    c->stats.slots_decided++;
    if (!value) c->stats.slots_null++;
    if (adopted) c->stats.decisions_adopted++;
    else if (in->phase == 1) c->stats.slots_fast++;
    if (in->phase > c->stats.max_phase) c->stats.max_phase = in->phase;
    tracef(c, in->slot, "decide %u %s in phase %u%s", value, idstr(&in->maj_id, value, ib, sizeof ib),
           in->phase, adopted ? " (adopted)" : "");
    if (value && !in->known_id) {
        /* Cannot happen when every message carries the id its sender knows;
         * counted, and the slot waits for a peer's DECISION. */
        anomaly(c, "decided 1 without knowing the batch");
        in->decided = false;
        c->stats.slots_decided--;
        return;
    }
    log_decide(c, in->slot, value, &in->maj_id);
    release_proposal(c, in);
    if (!adopted && !in->mute) {
        struct rabia_send *s = emit(c, RABIA_TO_ALL, RABIA_MSG_DECISION, in->slot);
        if (s) {
            s->msg.value = value;
            if (value) fill_id(in, &s->msg);
        }
    }
}

/* First sends of a state or vote: persisted (rule 1), then sent. */
static void send_state(struct rabia_core *c, struct inst *in, struct phase *p)
{
    struct rabia_msg m = {.type = RABIA_MSG_STATE, .slot = in->slot, .phase = p->phase, .value = p->my_state};
    fill_id(in, &m);
    persist(c, &m);
    struct rabia_send *s = emit(c, RABIA_TO_ALL, RABIA_MSG_STATE, in->slot);
    if (!s) return;
    s->msg.phase = m.phase;
    s->msg.value = m.value;
    s->msg.has_id = m.has_id;
    s->msg.id = m.id;
}

static void send_vote(struct rabia_core *c, struct inst *in, struct phase *p)
{
    struct rabia_msg m = {.type = RABIA_MSG_VOTE, .slot = in->slot, .phase = p->phase, .value = p->my_vote};
    fill_id(in, &m);
    persist(c, &m);
    struct rabia_send *s = emit(c, RABIA_TO_ALL, RABIA_MSG_VOTE, in->slot);
    if (!s) return;
    s->msg.phase = m.phase;
    s->msg.value = m.value;
    s->msg.has_id = m.has_id;
    s->msg.id = m.id;
}

static void send_proposal(struct rabia_core *c, struct inst *in, uint8_t to)
{
    struct rabia_send *s = emit(c, to, RABIA_MSG_PROPOSAL, in->slot);
    if (!s) return;
    s->msg.has_id = in->my_has;
    if (in->my_has) s->msg.id = in->my_id;
}

/* Count one message of a round: only the first n-f distinct senders. */
static bool count(struct rabia_core *c, struct round *r, uint8_t from, uint8_t value)
{
    uint8_t bit = (uint8_t)(1u << from);
    bool dup = r->mask & bit;
#ifdef RABIA_TEST_BUGS
    if (c->cfg.bugs & RABIA_BUG_DOUBLE_COUNT) dup = false;
#endif
    if (dup) {
        c->stats.msgs_ignored++;
        return false;
    }
    r->mask |= bit;
    if (r->counted >= c->nf) return false;
    r->counted++;
    r->cnt[value]++;
    return true;
}

static void enter_phase(struct rabia_core *c, struct inst *in, uint16_t phase, uint8_t state)
{
    in->phase = phase;
    in->round = 1;
    in->state = state;
    struct phase *p = ph_get(in, phase, true);
    RABIA_ASSERT(p != NULL);
    p->my_state = state;
    if (!in->mute) {
        p->sent |= 1;
        send_state(c, in, p);
        count(c, &p->st, c->cfg.self, state);
    }
}

/* Advance the instance as far as the counted messages allow. */
static void progress(struct rabia_core *c, struct inst *in)
{
    char ib[64];
    for (int guard = 0; guard < 4 * PH_RING && !in->decided; guard++) {
        if (in->round == 0) {
            if (!in->started || in->prop_counted < c->nf) return;
            /* state = 1 iff one batch was proposed by a majority */
            uint8_t st = 0;
            for (uint8_t i = 0; i < in->prop_counted && !st; i++) {
                if (!in->props_has[i]) continue;
                uint8_t k = 0;
                for (uint8_t j = 0; j < in->prop_counted; j++)
                    if (in->props_has[j] && rabia_batch_id_eq(&in->props[i], &in->props[j])) k++;
                if (k >= c->maj) {
                    st = 1;
                    if (!in->known_id) {
                        in->known_id = true;
                        in->maj_id = in->props[i];
                    } else if (!rabia_batch_id_eq(&in->maj_id, &in->props[i])) {
                        anomaly(c, "two batches with a majority in one slot");
                    }
                }
            }
            tracef(c, in->slot, "exchange done: state %u (majority %s)", st,
                   idstr(&in->maj_id, st, ib, sizeof ib));
            in->last_us = c->now;
            enter_phase(c, in, 1, st);
            continue;
        }
        struct phase *p = ph_get(in, in->phase, true);
        RABIA_ASSERT(p != NULL); /* the current phase is the newest one */
        if (in->round == 1) {
            if (p->st.counted < c->nf) return;
            uint8_t v = RABIA_VQ;
            if (p->st.cnt[0] >= c->maj) v = 0;
            else if (p->st.cnt[1] >= c->maj) v = 1;
            tracef(c, in->slot, "phase %u states 0:%u 1:%u -> vote %c", in->phase, p->st.cnt[0],
                   p->st.cnt[1], v == RABIA_VQ ? '?' : '0' + v);
            in->round = 2;
            in->last_us = c->now;
            p->my_vote = v;
            if (!in->mute) {
                p->sent |= 2;
                send_vote(c, in, p);
                count(c, &p->vt, c->cfg.self, v);
            }
            continue;
        }
        /* round 2: votes */
        if (p->vt.counted < c->nf) return;
        uint8_t need = c->f1;
#ifdef RABIA_TEST_BUGS
        if (c->cfg.bugs & RABIA_BUG_MAJORITY_OF_VOTES) need = (uint8_t)(c->nf / 2 + 1);
#endif
        if (p->vt.cnt[0] && p->vt.cnt[1]) anomaly(c, "votes for 0 and 1 in one phase"); /* impossible among honest peers */
        tracef(c, in->slot, "phase %u votes 0:%u 1:%u ?:%u", in->phase, p->vt.cnt[0], p->vt.cnt[1],
               p->vt.cnt[RABIA_VQ]);
        in->last_us = c->now;
        if (p->vt.cnt[1] >= need) {
            decide(c, in, 1, false);
            return;
        }
        if (p->vt.cnt[0] >= need) {
            decide(c, in, 0, false);
            return;
        }
        uint8_t st;
        if (p->vt.cnt[1]) st = 1;
        else if (p->vt.cnt[0]) st = 0;
        else {
            st = (uint8_t)coin(c, in->slot, in->phase);
            tracef(c, in->slot, "phase %u coin %u", in->phase, st);
            if (c->coin_obs) c->coin_obs(c->coin_ctx, in->slot, in->phase, st);
        }
        if (in->phase + 1u >= 0xFFFFu) return; /* 2^-65535: stop, peers' DECISION ends it */
        enter_phase(c, in, (uint16_t)(in->phase + 1), st);
    }
}

static void start_inst(struct rabia_core *c, struct inst *in)
{
    char ib[64];
    if (in->started) return;
    in->started = true;
    in->last_us = c->now;
    if (in->slot > c->max_seen) c->max_seen = in->slot;
    if (in->mute) {
        tracef(c, in->slot, "listening (abstain below %llu)", (unsigned long long)c->abstain_below);
        progress(c, in);
        return;
    }
    /* Joining a slot a peer started: propose what it proposed when I hold
     * that batch and am not proposing it elsewhere. Any batch of mine is a
     * valid proposal; matching the initiator is what avoids null slots when
     * replicas' queues differ (measured: see core/README.md). */
    int32_t e = -1;
    for (uint8_t i = 0; i < in->prop_counted; i++) {
        if (!in->props_has[i]) continue;
        int32_t k = bt_find(c, &in->props[i]);
        if (k >= 0 && c->bt[k].in_pq && !c->bt[k].inflight &&
            (e < 0 || key_cmp(&c->bt[k].id, &c->bt[e].id) < 0))
            e = k;
    }
    if (e < 0) e = choose(c, in->slot);
    if (e >= 0) {
        in->my_entry = e;
        in->my_has = true;
        in->my_id = c->bt[e].id;
        c->bt[e].inflight++;
    }
    tracef(c, in->slot, "propose %s", idstr(&in->my_id, in->my_has, ib, sizeof ib));
    if (e >= 0 && c->bt[e].id.proxy != c->cfg.self) {
        /* Another proxy's batch: its body goes to this log too. A slot decides
         * a batch only if a majority proposed it there, so after any crash,
         * and any f lost disks (its proxy's among them), a copy survives. */
        struct rabia_msg bm = {.type = RABIA_MSG_BATCH, .slot = in->slot, .has_id = 1, .id = c->bt[e].id,
                               .body = c->bt[e].data, .body_len = c->bt[e].len};
        persist(c, &bm);
    }
    struct rabia_msg pm = {.type = RABIA_MSG_PROPOSAL, .slot = in->slot, .has_id = in->my_has, .id = in->my_id};
    persist(c, &pm);
    send_proposal(c, in, RABIA_TO_ALL);
    /* count my own proposal like a peer's */
    uint8_t self = c->cfg.self;
    if (!(in->prop_mask & (1u << self))) {
        in->prop_mask |= (uint8_t)(1u << self);
        if (in->prop_counted < c->nf) {
            in->props[in->prop_counted] = in->my_id;
            in->props_has[in->prop_counted] = in->my_has;
            in->prop_counted++;
        }
    }
    progress(c, in);
}

/* Start slots of the window in order while there is something to propose
 * or a peer already started a later slot. */
static void start_slots(struct rabia_core *c)
{
    if (c->recovering) return;
    uint64_t end = c->next_apply + c->cfg.window;
    uint64_t last = 0;
    for (uint64_t s = c->next_apply; s < end; s++) {
        struct inst *in = inst_get(c, s);
        if (in->seen || in->started) last = s;
    }
    if (c->drive_until >= c->next_apply) { /* see on_horizon_req */
        uint64_t d = c->drive_until < end ? c->drive_until : end - 1;
        if (d > last) last = d;
    }
    if (c->cfg.policy == RABIA_POLICY_CLASSES) {
        /* each class (proxy) supplies its own slots: find the last slot that
         * has a batch, counting the batches earlier slots of its class take */
        uint32_t taken[RABIA_MAX_REPLICAS] = {0};
        for (uint64_t s = c->next_apply; s < end; s++) {
            struct inst *in = inst_get(c, s);
            if (in->started) continue;
            uint8_t p = (uint8_t)(s % c->cfg.n);
            uint32_t avail = 0;
            for (uint32_t i = 0; i < c->pq[p].n; i++)
                if (!c->bt[c->pq[p].items[i]].inflight) avail++;
            if (taken[p] < avail) {
                taken[p]++;
                last = s > last ? s : last;
            }
        }
    } else {
        uint32_t avail = 0;
        for (uint8_t p = 0; p < c->cfg.n; p++)
            for (uint32_t i = 0; i < c->pq[p].n; i++)
                if (!c->bt[c->pq[p].items[i]].inflight) avail++;
        for (uint64_t s = c->next_apply; s < end && avail; s++) {
            struct inst *in = inst_get(c, s);
            if (in->started) continue;
            avail--;
            last = s > last ? s : last;
        }
    }
    for (uint64_t s = c->next_apply; s <= last && s < end; s++) {
        struct inst *in = inst_get(c, s);
        if (!in->started && !in->decided) start_inst(c, in);
    }
}

/* Apply decided slots in order, then retire what peers no longer need. */
static void apply_ready(struct rabia_core *c)
{
    for (;;) {
        struct logent *l = log_get(c, c->next_apply);
        if (!l || (l->value && l->entry < 0)) break;
        struct rabia_update *o = c->out;
        RABIA_ASSERT(o->n_applies < c->applies_cap);
        struct rabia_apply *a = &c->applies[o->n_applies++];
        memset(a, 0, sizeof(*a));
        a->slot = l->slot;
        a->null = !l->value;
        if (l->value) {
            struct bent *b = &c->bt[l->entry];
            a->id = b->id;
            a->body = b->data;
            a->body_len = b->len;
        }
        struct inst *in = &c->inst[c->next_apply % c->cfg.window];
        if (in->used && in->slot == c->next_apply) {
            if (!in->decided) { /* learned from the log (catch-up) */
                in->decided = true;
                in->value = l->value;
                in->maj_id = l->id;
                in->known_id = l->value;
            }
            release_proposal(c, in);
            in->used = false;
        }
        c->next_apply++;
        if (c->n_pinned && c->next_apply > c->pin_max) { /* every slot that could decide them is done */
            for (uint32_t k = 0; k < c->n_pinned; k++) {
                c->bt[c->pinned[k]].pin_until = 0;
                bt_maybe_free(c, c->pinned[k]);
            }
            c->n_pinned = 0;
        }
        uint64_t first = log_retain_first(c);
        if (first > 1) {
            struct logent *old = log_get(c, first - 1);
            if (old) log_clear(c, old);
        }
    }
}

/* ------------------------------------------------------------------ */
/* message handlers */

static void note_peer(struct rabia_core *c, uint8_t from, uint64_t slot)
{
    if (slot > c->peer_known[from]) c->peer_known[from] = slot;
    if (slot > c->max_seen) c->max_seen = slot;
}

/* A peer is behind: tell it the decision of a slot we applied. */
static void offer_snapshot(struct rabia_core *c, uint8_t to)
{
    if (c->snap_us[to] && c->now - c->snap_us[to] < 4 * c->cfg.retransmit_us) return;
    c->snap_us[to] = c->now ? c->now : 1;
    c->out->snapshot_to_mask |= (uint8_t)(1u << to);
}

static void reply_decision(struct rabia_core *c, uint8_t to, uint64_t slot, bool with_body)
{
    struct logent *l = log_get(c, slot);
    if (!l) {
        /* Every applied slot at or above log_first() is in the log; below
         * it only a snapshot can help. */
        RABIA_ASSERT(slot >= c->next_apply || slot < log_first(c));
        if (slot < c->next_apply) offer_snapshot(c, to);
        return;
    }
    struct rabia_send *s = emit(c, to, RABIA_MSG_DECISION, slot);
    if (!s) return;
    s->msg.value = l->value;
    if (l->value) {
        s->msg.has_id = 1;
        s->msg.id = l->id;
        if (with_body && l->entry >= 0) {
            s->msg.body = c->bt[l->entry].data;
            s->msg.body_len = c->bt[l->entry].len;
        }
    }
}

static void maybe_catchup(struct rabia_core *c, uint8_t peer)
{
    if (c->now - c->catchup_us < c->cfg.retransmit_us && c->catchup_us) return;
    c->catchup_us = c->now;
    struct rabia_send *s = emit(c, peer, RABIA_MSG_CATCHUP, c->next_apply);
    (void)s;
}

/* Is a decided slot waiting for this batch's body? */
static bool awaited(struct rabia_core *c, const struct rabia_batch_id *id)
{
    for (uint64_t s = c->next_apply; s < c->next_apply + c->ahead; s++) {
        struct logent *l = log_get(c, s);
        if (l && l->value && l->entry < 0 && rabia_batch_id_eq(&l->id, id)) return true;
    }
    return false;
}

/* Give a newly stored body to every decided slot waiting for it. */
static void attach_waiting(struct rabia_core *c, int32_t e)
{
    for (uint64_t s = c->next_apply; s < c->next_apply + c->ahead; s++) {
        struct logent *l = log_get(c, s);
        if (l && l->value && l->entry < 0 && rabia_batch_id_eq(&l->id, &c->bt[e].id)) log_attach(c, l, e);
    }
}

static void on_batch(struct rabia_core *c, const struct rabia_msg *m)
{
    if (m->id.proxy >= c->cfg.n || m->body_len > c->cfg.max_batch_bytes) {
        anomaly(c, "batch from an unknown proxy or too large");
        return;
    }
    int32_t e = bt_find(c, &m->id);
    if (e >= 0) return;
    if (awaited(c, &m->id)) { /* a body some decided slot waits for */
        e = bt_alloc(c, &m->id, m->body, m->body_len);
        if (e >= 0) attach_waiting(c, e);
        return;
    }
    /* my own batches come back only as fetch replies; unless a decided slot
     * waits for it (above), an echo is stale (e.g. decided in a snapshot) */
    if (m->id.proxy == c->cfg.self || tr_decided(c, &m->id)) {
        c->stats.msgs_ignored++;
        return;
    }
    if (m->id.incarnation > c->tr[m->id.proxy].incarnation) tr_reset(c, m->id.proxy, m->id.incarnation);
    if (c->pq[m->id.proxy].n >= c->cfg.max_pending) {
        c->stats.msgs_ignored++;
        return;
    }
    e = bt_alloc(c, &m->id, m->body, m->body_len);
    if (e < 0) {
        c->stats.msgs_ignored++;
        return;
    }
    pq_insert(c, e);
}

static void on_consensus(struct rabia_core *c, const struct rabia_msg *m)
{
    uint8_t from = m->from;
    note_peer(c, from, m->slot);
    if (m->slot < c->next_apply) {
        /* the sender is behind: help it along, at most once per slot per period */
        if (c->last_reply_slot[from] != m->slot || c->now - c->last_reply_us[from] >= c->cfg.retransmit_us / 2) {
            c->last_reply_slot[from] = m->slot;
            c->last_reply_us[from] = c->now;
            reply_decision(c, from, m->slot, true);
        }
        return;
    }
    struct inst *in = inst_get(c, m->slot);
    if (!in) { /* beyond my window: I am behind */
        c->stats.msgs_ignored++;
        maybe_catchup(c, from);
        return;
    }
    in->seen = true;
    if (m->type == RABIA_MSG_PROPOSAL) {
        uint8_t bit = (uint8_t)(1u << from);
        bool dup = in->prop_mask & bit;
#ifdef RABIA_TEST_BUGS
        if (c->cfg.bugs & RABIA_BUG_DOUBLE_COUNT) dup = false;
#endif
        if (dup) {
            c->stats.msgs_ignored++;
        } else {
            in->prop_mask |= bit;
            if (in->prop_counted < c->nf) {
                in->props[in->prop_counted] = m->id;
                in->props_has[in->prop_counted] = m->has_id;
                in->prop_counted++;
            }
        }
    } else if (m->type == RABIA_MSG_STATE || m->type == RABIA_MSG_VOTE) {
        learn_id(c, in, m);
        if (in->decided) {
            /* the sender still works on a slot I decided: tell it */
            if (c->last_reply_slot[from] != m->slot || c->now - c->last_reply_us[from] >= c->cfg.retransmit_us / 2) {
                c->last_reply_slot[from] = m->slot;
                c->last_reply_us[from] = c->now;
                struct rabia_send *s = emit(c, from, RABIA_MSG_DECISION, in->slot);
                if (s) {
                    s->msg.value = in->value;
                    if (in->value) fill_id(in, &s->msg);
                }
            }
            return;
        }
        /* phases far ahead of mine are dropped; the sender resends them */
        if (m->phase >= in->phase + PH_RING || (in->phase >= PH_RING && m->phase <= in->phase - PH_RING)) {
            c->stats.msgs_ignored++;
            return;
        }
        struct phase *p = ph_get(in, m->phase, true);
        if (!p) { /* older than the phase its ring entry holds now */
            c->stats.msgs_ignored++;
            return;
        }
        if (m->type == RABIA_MSG_STATE) {
            if (m->value > 1) {
                anomaly(c, "STATE value out of range");
                return;
            }
            count(c, &p->st, from, m->value);
        } else {
            count(c, &p->vt, from, m->value);
        }
    }
    start_slots(c); /* joining: a peer started this slot */
    progress(c, in);
}

static void on_decision(struct rabia_core *c, const struct rabia_msg *m)
{
    note_peer(c, m->from, m->slot);
    if (m->slot < c->next_apply) return;
    if (m->slot >= c->next_apply + c->ahead) {
        maybe_catchup(c, m->from);
        return;
    }
    if (m->value && !m->has_id) {
        anomaly(c, "DECISION 1 without a batch id");
        return;
    }
    int32_t fresh = -1;
    if (m->value && m->body && bt_find(c, &m->id) < 0) {
        if (m->id.proxy >= c->cfg.n || m->body_len > c->cfg.max_batch_bytes) {
            anomaly(c, "DECISION batch from an unknown proxy or too large");
            return;
        }
        fresh = bt_alloc(c, &m->id, m->body, m->body_len); /* if full, fetched later */
    }
    struct inst *in = inst_get(c, m->slot);
    if (in) {
        learn_id(c, in, m);
        if (in->decided && in->value != m->value) anomaly(c, "a DECISION contradicts our decision");
        decide(c, in, m->value, true);
    } else {
        log_decide(c, m->slot, m->value, &m->id);
        c->stats.slots_decided++;
        c->stats.decisions_adopted++;
        if (!m->value) c->stats.slots_null++;
    }
    if (fresh >= 0) {
        attach_waiting(c, fresh);
        bt_maybe_free(c, fresh); /* unless the log took it */
    }
}

static void on_fetch(struct rabia_core *c, const struct rabia_msg *m)
{
    note_peer(c, m->from, m->slot);
    struct logent *l = log_get(c, m->slot);
    if (l && l->value && l->entry >= 0) {
        reply_decision(c, m->from, m->slot, true);
        return;
    }
    if (!l && m->slot < log_first(c)) { /* compacted away: only a snapshot helps */
        offer_snapshot(c, m->from);
        return;
    }
    if (!m->has_id) return;
    int32_t e = bt_find(c, &m->id);
    if (e < 0) return;
    struct rabia_send *s = emit(c, m->from, RABIA_MSG_BATCH, 0);
    if (!s) return;
    s->msg.has_id = 1;
    s->msg.id = c->bt[e].id;
    s->msg.body = c->bt[e].data;
    s->msg.body_len = c->bt[e].len;
}

static void on_catchup(struct rabia_core *c, const struct rabia_msg *m)
{
    uint64_t from = m->slot ? m->slot : 1;
    /* the asker has applied everything below `from`: if that is more than
     * we have, we are the one behind (a restart with its log into a cluster
     * that moved on while idle: nothing else would tell us) */
    if (from > 1) note_peer(c, m->from, from - 1);
    if (from > c->next_apply && !c->recovering) {
        c->catchup_us = 0;
        maybe_catchup(c, m->from);
    }
    if (from < log_first(c)) {
        offer_snapshot(c, m->from);
        return;
    }
    for (uint64_t s = from; s < c->next_apply && s < from + c->cfg.catchup_chunk; s++)
        reply_decision(c, m->from, s, true);
}

static uint64_t known_slot(const struct rabia_core *c)
{
    uint64_t k = c->max_seen;
    if (c->next_apply - 1 > k) k = c->next_apply - 1;
    if (c->abstain_below > k) k = c->abstain_below;
    return k;
}

static void on_horizon_req(struct rabia_core *c, const struct rabia_msg *m)
{
    if (c->recovering) return; /* answer only once my own horizon is known */
    uint64_t k = known_slot(c);
    struct rabia_send *s = emit(c, m->from, RABIA_MSG_HORIZON, k);
    if (s) s->msg.u64 = m->u64;
    /* The asker will abstain up to (the largest answer) + window. Decide
     * those slots now, null if nothing is queued, while enough replicas
     * take part: an idle cluster would otherwise keep them open, and a
     * second restart would then leave more than f abstainers in them
     * (found by integration.restart_idle). */
    if (k + c->cfg.window > c->drive_until) c->drive_until = k + c->cfg.window;
}

static void on_horizon(struct rabia_core *c, const struct rabia_msg *m)
{
    if (!c->recovering || m->u64 != c->cfg.incarnation) return;
    uint8_t bit = (uint8_t)(1u << m->from);
    if (c->horizon_mask & bit) return;
    c->horizon_mask |= bit;
    if (m->slot > c->horizon_max) c->horizon_max = m->slot;
    note_peer(c, m->from, m->slot);
    if (__builtin_popcount(c->horizon_mask) < c->nf) return;
    c->recovering = false;
    c->abstain_below = c->horizon_max + c->cfg.window;
    if (c->abstain_below > c->max_seen) c->max_seen = c->abstain_below;
    /* rule 1 for the horizon itself: a restart with the log must keep
     * abstaining up to it (an earlier life, before the data was lost, may
     * have voted there) */
    struct rabia_msg hm = {.type = RABIA_MSG_HORIZON, .slot = c->abstain_below};
    persist(c, &hm);
    tracef(c, 0, "recovered: abstain in slots <= %llu", (unsigned long long)c->abstain_below);
    /* instances created while recovering were muted; above the horizon
     * nothing of mine can exist, so those may take part after all */
    for (uint32_t w = 0; w < c->cfg.window; w++) {
        struct inst *in = &c->inst[w];
        if (in->used && in->slot > c->abstain_below && !in->started) in->mute = false;
    }
    /* learn what was decided meanwhile */
    c->catchup_us = 0;
    maybe_catchup(c, m->from);
}

/* ------------------------------------------------------------------ */
/* resending */

static void resend_inst(struct rabia_core *c, struct inst *in, uint8_t to)
{
    if (!in->started || in->mute) return;
    send_proposal(c, in, to);
    if (in->phase == 0) return;
    uint16_t lo = in->phase >= PH_RING ? (uint16_t)(in->phase - PH_RING + 1) : 1;
    for (uint16_t ph = lo; ph <= in->phase; ph++) {
        struct phase *p = ph_get(in, ph, false);
        if (!p) continue;
        if (p->sent & 1) {
            struct rabia_send *s = emit(c, to, RABIA_MSG_STATE, in->slot);
            if (s) {
                s->msg.phase = ph;
                s->msg.value = p->my_state;
                fill_id(in, &s->msg);
            }
        }
        if (p->sent & 2) {
            struct rabia_send *s = emit(c, to, RABIA_MSG_VOTE, in->slot);
            if (s) {
                s->msg.phase = ph;
                s->msg.value = p->my_vote;
                fill_id(in, &s->msg);
            }
        }
    }
}

static void send_own_batch(struct rabia_core *c, int32_t e, uint8_t to)
{
    struct rabia_send *s = emit(c, to, RABIA_MSG_BATCH, 0);
    if (!s) return;
    s->msg.has_id = 1;
    s->msg.id = c->bt[e].id;
    s->msg.body = c->bt[e].data;
    s->msg.body_len = c->bt[e].len;
    c->bt[e].sent_us = c->now;
}

static void on_tick(struct rabia_core *c)
{
    uint64_t rt = c->cfg.retransmit_us;
    if (c->recovering) {
        if (c->now - c->horizon_sent_us >= rt || !c->horizon_sent_us) {
            struct rabia_send *s = emit(c, RABIA_TO_ALL, RABIA_MSG_HORIZON_REQ, 0);
            if (s) s->msg.u64 = c->cfg.incarnation;
            c->horizon_sent_us = c->now ? c->now : 1;
        }
        return;
    }
    bool stalled = false;
    for (uint64_t s = c->next_apply; s < c->next_apply + c->cfg.window; s++) {
        struct inst *in = inst_get(c, s);
        if (!in->started || in->decided || c->now - in->last_us < rt) continue;
        stalled = true;
        in->last_us = c->now;
        c->stats.retransmits++;
        resend_inst(c, in, RABIA_TO_ALL);
        tracef(c, s, "resend (phase %u round %u)", in->phase, in->round);
    }
    for (uint64_t s = c->next_apply; s < c->next_apply + c->ahead; s++) {
        struct logent *l = log_get(c, s);
        if (l && l->value && l->entry < 0 && c->now - l->fetch_us >= rt) send_fetch(c, l);
    }
    /* own batches not decided after a while: a peer may have lost them */
    struct pq *q = &c->pq[c->cfg.self];
    for (uint32_t i = 0; i < q->n; i++) {
        int32_t e = q->items[i];
        if (c->now - c->bt[e].sent_us >= REBROADCAST_TICKS * rt) send_own_batch(c, e, RABIA_TO_ALL);
    }
    /* behind a peer, or stuck on a slot no one talks about any more */
    uint8_t best = c->cfg.self;
    for (uint8_t p = 0; p < c->cfg.n; p++)
        if (c->peer_known[p] > c->peer_known[best]) best = p;
    if (best != c->cfg.self && (c->peer_known[best] >= c->next_apply + c->cfg.window ||
                                (stalled && c->peer_known[best] >= c->next_apply)))
        maybe_catchup(c, best);
}

static void on_peer_up(struct rabia_core *c, uint8_t peer)
{
    if (peer >= c->cfg.n || peer == c->cfg.self) return;
    if (c->recovering) {
        struct rabia_send *s = emit(c, peer, RABIA_MSG_HORIZON_REQ, 0);
        if (s) s->msg.u64 = c->cfg.incarnation;
        return;
    }
    /* A replica restarted with its log knows nothing of what the others
     * decided meanwhile, and an idle cluster says nothing by itself: ask
     * each peer as it comes up (it answers with decisions from our next
     * slot on, or a snapshot offer; nothing when we are level). */
    struct rabia_send *cu = emit(c, peer, RABIA_MSG_CATCHUP, c->next_apply);
    (void)cu;
    /* whatever was in flight on the old connection is lost: resend */
    struct pq *q = &c->pq[c->cfg.self];
    for (uint32_t i = 0; i < q->n; i++) send_own_batch(c, q->items[i], peer);
    for (uint64_t s = c->next_apply; s < c->next_apply + c->cfg.window; s++) {
        struct inst *in = inst_get(c, s);
        if (in->started && !in->decided) resend_inst(c, in, peer);
    }
}

static void on_snapshot(struct rabia_core *c, uint64_t slot)
{
    if (slot < c->next_apply) return;
    /* Slots up to the snapshot are done. Later ones keep everything: this
     * replica may already have sent states and votes there, and forgetting
     * them would let it vote again differently (found by sim seed 6124). */
    for (uint32_t i = 0; i < c->log_size; i++)
        if (c->log[i].slot && c->log[i].slot <= slot) log_clear(c, &c->log[i]);
    for (uint32_t w = 0; w < c->cfg.window; w++) {
        struct inst *in = &c->inst[w];
        if (!in->used || in->slot > slot) continue;
        release_proposal(c, in);
        in->used = false;
    }
    /* batches decided inside the snapshot are indistinguishable from
     * pending ones here: drop them all; live proxies re-send theirs, and my
     * own go back to the embedder, which knows from the restored sessions
     * which requests were applied (bodies stay valid until the next step:
     * freed entries are only reaped then) */
    struct rabia_update *o = c->out;
    struct pq *own = &c->pq[c->cfg.self];
    RABIA_ASSERT(own->n <= PQ_CAP(c));
    for (uint32_t i = 0; i < own->n; i++) {
        const struct bent *b = &c->bt[own->items[i]];
        struct rabia_apply *r = &c->retired[o->n_retired++];
        memset(r, 0, sizeof(*r));
        r->id = b->id;
        r->body = b->data;
        r->body_len = b->len;
    }
    for (uint8_t p = 0; p < c->cfg.n; p++)
        while (c->pq[p].n) pq_remove(c, c->pq[p].items[0]);
    /* my own earlier batches are decided or dropped now: never again */
    struct tracker *mine = &c->tr[c->cfg.self];
    if (mine->incarnation != c->cfg.incarnation) tr_reset(c, c->cfg.self, c->cfg.incarnation);
    if (mine->base < c->next_seq) {
        mine->base = c->next_seq;
        memset(mine->bits, 0, sizeof mine->bits);
    }
    c->next_apply = slot + 1;
    c->log_low = slot + 1;
    if (slot > c->max_seen) c->max_seen = slot;
    tracef(c, slot, "snapshot installed up to slot %llu", (unsigned long long)slot);
}

/* A batch handed back by a snapshot install (update.retired) that the
 * restored state did not apply: pending again, under its own id. */
static int on_resubmit(struct rabia_core *c, const struct rabia_event *ev)
{
    const struct rabia_batch_id *id = &ev->msg.id;
    if (ev->body_len > c->cfg.max_batch_bytes) return RABIA_E_TOOBIG;
    if (id->proxy != c->cfg.self || id->incarnation != c->cfg.incarnation || id->seq == 0 || id->seq >= c->next_seq)
        return RABIA_E_MALFORMED; /* not one of mine */
    int32_t e = bt_find(c, id);
    if (e >= 0 && c->bt[e].in_pq) return 0;
    if (c->pq[c->cfg.self].n >= c->cfg.max_pending) return RABIA_E_FULL;
    if (e < 0) {
        e = bt_alloc(c, id, ev->body, ev->body_len);
        if (e < 0) return RABIA_E_FULL;
    }
    pq_insert(c, e); /* an entry still held (a kept slot proposes it) is queued again too */
    struct rabia_msg bm = {.type = RABIA_MSG_BATCH, .has_id = 1, .id = *id, .body = c->bt[e].data,
                           .body_len = c->bt[e].len};
    persist(c, &bm); /* again: the log prefix that held it may be released by now */
    send_own_batch(c, e, RABIA_TO_ALL);
    return 0;
}

static int on_submit(struct rabia_core *c, const struct rabia_event *ev)
{
    if (ev->body_len > c->cfg.max_batch_bytes) return RABIA_E_TOOBIG;
    uint8_t self = c->cfg.self;
    if (c->pq[self].n >= c->cfg.max_pending || c->bt_used >= c->bt_cap) return RABIA_E_FULL;
    struct rabia_batch_id id = {.proxy = self, .incarnation = c->cfg.incarnation, .seq = c->next_seq};
    int32_t e = bt_alloc(c, &id, ev->body, ev->body_len);
    if (e < 0) return RABIA_E_FULL;
    c->next_seq++;
    pq_insert(c, e);
    c->out->submitted = id;
    struct rabia_msg bm = {.type = RABIA_MSG_BATCH, .has_id = 1, .id = id, .body = c->bt[e].data,
                           .body_len = c->bt[e].len};
    persist(c, &bm); /* after a whole-cluster crash only this copy may be left */
    send_own_batch(c, e, RABIA_TO_ALL);
    return 0;
}

/* RABIA_EV_RESTORE: one message this replica persisted in an earlier life
 * (update.persist), handed back in the order it was persisted, after a
 * SNAPSHOT_INSTALLED for the last applied slot and before any other event.
 * The instance resumes where the message left it, so the replica never
 * sends anything that contradicts it (contract rule 1). */
static int on_restore(struct rabia_core *c, const struct rabia_event *ev)
{
    const struct rabia_msg *m = &ev->msg;
    if (m->from != c->cfg.self) return RABIA_E_MALFORMED;
    if (m->type == RABIA_MSG_BATCH && m->has_id && m->id.proxy != c->cfg.self) {
        /* a batch of another proxy this replica proposed in a slot still open:
         * kept for the slot and for peers' FETCH until that slot is done */
        if (m->id.proxy >= c->cfg.n || m->body_len > c->cfg.max_batch_bytes) return RABIA_E_MALFORMED;
        if (bt_find(c, &m->id) >= 0 || c->n_pinned >= PIN_CAP(c)) return 0;
        int32_t e = bt_alloc(c, &m->id, m->body, m->body_len);
        if (e < 0) return RABIA_E_FULL;
        c->bt[e].pin_until = c->next_apply + c->cfg.window;
        if (c->bt[e].pin_until > c->pin_max) c->pin_max = c->bt[e].pin_until;
        c->pinned[c->n_pinned++] = e;
        return 0;
    }
    if (m->type == RABIA_MSG_BATCH) {
        const struct rabia_batch_id *id = &m->id;
        if (!m->has_id || id->proxy != c->cfg.self || id->incarnation != c->cfg.incarnation || id->seq == 0 ||
            m->body_len > c->cfg.max_batch_bytes)
            return RABIA_E_MALFORMED;
        if (id->seq >= c->next_seq) c->next_seq = id->seq + 1; /* never reuse a sent id */
        if (m->value == 1 && !m->body_len) { /* applied long ago: only the id counts */
            tr_mark(c, id);
            return 0;
        }
        if (m->value == 1) {
            /* Applied, but a slot still open may have it proposed by a
             * majority and decide it again: then the peers FETCH its body,
             * and after a whole-cluster crash this log holds the only copy. */
            tr_mark(c, id);
            if (bt_find(c, id) >= 0 || c->n_pinned >= PIN_CAP(c)) return 0;
            int32_t e = bt_alloc(c, id, m->body, m->body_len);
            if (e < 0) return RABIA_E_FULL;
            c->bt[e].pin_until = c->next_apply + c->cfg.window;
            if (c->bt[e].pin_until > c->pin_max) c->pin_max = c->bt[e].pin_until;
            c->pinned[c->n_pinned++] = e;
            return 0;
        }
        if (tr_decided(c, id) || bt_find(c, id) >= 0) return 0;
        if (c->pq[c->cfg.self].n >= PQ_CAP(c)) return RABIA_E_FULL;
        int32_t e = bt_alloc(c, id, m->body, m->body_len);
        if (e < 0) return RABIA_E_FULL;
        pq_insert(c, e);
        c->bt[e].sent_us = c->now; /* PEER_UP sends it */
        return 0;
    }
    if (m->type == RABIA_MSG_HORIZON) { /* abstain up to an earlier life's horizon */
        if (m->slot > c->abstain_below) c->abstain_below = m->slot;
        if (m->slot > c->max_seen) c->max_seen = m->slot;
        return 0;
    }
    if (m->type < RABIA_MSG_PROPOSAL || m->type > RABIA_MSG_VOTE || m->slot == 0) return RABIA_E_MALFORMED;
    if (m->type != RABIA_MSG_PROPOSAL && (m->phase == 0 || m->value > RABIA_VQ)) return RABIA_E_MALFORMED;
    if (m->has_id && m->id.proxy >= c->cfg.n) return RABIA_E_MALFORMED;
    if (m->slot > c->max_seen) c->max_seen = m->slot;
    struct inst *in = inst_get(c, m->slot);
    if (!in || in->decided) return 0; /* applied already, or beyond the window: nothing to resume */
    RABIA_ASSERT(!in->mute);
    if (m->type == RABIA_MSG_PROPOSAL) {
        if (in->started) return 0;
        in->started = true;
        in->my_has = m->has_id;
        in->my_id = m->id;
        int32_t e = m->has_id ? bt_find(c, &m->id) : -1;
        if (e >= 0) {
            in->my_entry = e;
            c->bt[e].inflight++;
        }
        uint8_t self = c->cfg.self;
        in->prop_mask |= (uint8_t)(1u << self);
        if (in->prop_counted < c->nf) {
            in->props[in->prop_counted] = in->my_id;
            in->props_has[in->prop_counted] = in->my_has;
            in->prop_counted++;
        }
        return 0;
    }
    in->started = true; /* past the exchange (its PROPOSAL record may be in a released segment) */
    learn_id(c, in, m);
    struct phase *p = ph_get(in, m->phase, true);
    if (!p) return 0; /* older than the ring: superseded */
    bool state = m->type == RABIA_MSG_STATE;
    if (state) {
        if (p->sent & 1) return 0;
        if (m->value > 1) return RABIA_E_MALFORMED;
        p->my_state = m->value;
        p->sent |= 1;
        count(c, &p->st, c->cfg.self, m->value);
    } else {
        if (p->sent & 2) return 0;
        p->my_vote = m->value;
        p->sent |= 2;
        count(c, &p->vt, c->cfg.self, m->value);
    }
    if (m->phase > in->phase || (m->phase == in->phase && in->round < (state ? 1 : 2))) {
        in->phase = m->phase;
        in->round = state ? 1 : 2;
        if (state) in->state = m->value;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* public entry points */

struct rabia_core *rabia_core_create(const struct rabia_config *cfg)
{
    if (rabia_config_check(cfg, NULL, 0)) return NULL;
    struct rabia_core *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->cfg = *cfg;
    uint8_t n = cfg->n, f = (uint8_t)((n - 1) / 2);
    c->nf = (uint8_t)(n - f);
    c->maj = (uint8_t)(n / 2 + 1);
    c->f1 = (uint8_t)(f + 1);
    c->next_apply = 1;
    c->log_low = 1;
    c->next_seq = 1;
    c->recovering = cfg->recovering;
    c->ahead = cfg->window > cfg->catchup_chunk ? cfg->window : cfg->catchup_chunk;
    c->log_size = cfg->log_retain + c->ahead + 1;
    /* + 2: PQ_CAP of the own queue, and the pinned bodies of a restart */
    c->bt_cap = (n + 3) * cfg->max_pending + c->log_size + 3 * cfg->window + 16;
    uint32_t isz = 16;
    while (isz < 2 * c->bt_cap) isz *= 2;
    c->idx_mask = isz - 1;
    c->sends_cap = cfg->window * (2 + 2 * PH_RING) + 2 * n * cfg->max_pending + 2 * c->ahead +
                   cfg->catchup_chunk + 8 * n + 64;
    c->applies_cap = c->log_size;
    c->inst = calloc(cfg->window, sizeof(*c->inst));
    c->log = calloc(c->log_size, sizeof(*c->log));
    c->bt = calloc(c->bt_cap, sizeof(*c->bt));
    c->idx = malloc(isz * sizeof(int32_t));
    c->zombies = calloc(c->bt_cap, sizeof(int32_t));
    c->free_list = calloc(c->bt_cap, sizeof(int32_t));
    c->arena = malloc((size_t)c->bt_cap * cfg->max_batch_bytes);
    c->sends = calloc(c->sends_cap, sizeof(*c->sends));
    c->applies = calloc(c->applies_cap, sizeof(*c->applies));
    c->retired = calloc(2 * cfg->max_pending, sizeof(*c->retired));
    c->persist = calloc(c->sends_cap, sizeof(*c->persist));
    c->pinned = calloc(cfg->max_pending + 2 * (size_t)cfg->window, sizeof(*c->pinned));
    bool ok = c->inst && c->log && c->bt && c->idx && c->zombies && c->free_list && c->arena && c->sends &&
              c->applies && c->retired && c->persist && c->pinned;
    for (uint8_t p = 0; ok && p < n; p++) {
        c->pq[p].items = calloc(2 * (size_t)cfg->max_pending, sizeof(int32_t));
        ok = c->pq[p].items != NULL;
    }
    if (!ok) {
        rabia_core_destroy(c);
        return NULL;
    }
    memset(c->idx, 0xFF, isz * sizeof(int32_t));
    for (uint32_t i = 0; i < c->log_size; i++) c->log[i].entry = -1;
    for (uint32_t i = 0; i < c->bt_cap; i++) {
        c->bt[i].data = c->arena + (size_t)i * cfg->max_batch_bytes;
        c->free_list[c->n_free++] = (int32_t)(c->bt_cap - 1 - i); /* low entries first */
    }
    return c;
}

void rabia_core_destroy(struct rabia_core *c)
{
    if (!c) return;
    for (int p = 0; p < RABIA_MAX_REPLICAS; p++) free(c->pq[p].items);
    free(c->inst);
    free(c->log);
    free(c->bt);
    free(c->idx);
    free(c->zombies);
    free(c->free_list);
    free(c->arena);
    free(c->sends);
    free(c->applies);
    free(c->retired);
    free(c->persist);
    free(c->pinned);
    free(c);
}

static bool msg_sane(const struct rabia_core *c, const struct rabia_msg *m)
{
    if (m->from >= c->cfg.n || m->from == c->cfg.self) return false;
    switch (m->type) {
    case RABIA_MSG_PROPOSAL:
    case RABIA_MSG_STATE:
    case RABIA_MSG_VOTE:
    case RABIA_MSG_DECISION:
    case RABIA_MSG_FETCH:
        if (m->slot == 0) return false;
        if ((m->type == RABIA_MSG_STATE || m->type == RABIA_MSG_VOTE) && m->phase == 0) return false;
        if (m->value > RABIA_VQ) return false;
        /* a decision is 0 (null) or 1 (the batch); "?" is a vote only */
        if (m->type == RABIA_MSG_DECISION && m->value > 1) return false;
        if (m->has_id && m->id.proxy >= c->cfg.n) return false;
        return true;
    case RABIA_MSG_BATCH:
        return m->has_id;
    default:
        return true;
    }
}

int rabia_core_step(struct rabia_core *c, const struct rabia_event *ev, struct rabia_update *out)
{
    memset(out, 0, sizeof(*out));
    out->sends = c->sends;
    out->applies = c->applies;
    out->retired = c->retired;
    out->persist = c->persist;
    c->out = out;
    bt_reap(c);
    if (ev->now_us > c->now) c->now = ev->now_us; /* time never goes back */
    int rc = 0;
    switch (ev->type) {
    case RABIA_EV_TICK:
        on_tick(c);
        break;
    case RABIA_EV_SUBMIT:
        rc = on_submit(c, ev);
        break;
    case RABIA_EV_RECEIVE: {
        const struct rabia_msg *m = &ev->msg;
        if (!msg_sane(c, m)) {
            anomaly(c, "message fails sanity checks");
            break;
        }
        switch (m->type) {
        case RABIA_MSG_BATCH: on_batch(c, m); break;
        case RABIA_MSG_PROPOSAL:
        case RABIA_MSG_STATE:
        case RABIA_MSG_VOTE: on_consensus(c, m); break;
        case RABIA_MSG_DECISION: on_decision(c, m); break;
        case RABIA_MSG_FETCH: on_fetch(c, m); break;
        case RABIA_MSG_CATCHUP: on_catchup(c, m); break;
        case RABIA_MSG_HORIZON_REQ: on_horizon_req(c, m); break;
        case RABIA_MSG_HORIZON: on_horizon(c, m); break;
        default: c->stats.msgs_ignored++; break; /* not the core's */
        }
        break;
    }
    case RABIA_EV_PEER_UP:
        on_peer_up(c, ev->peer);
        break;
    case RABIA_EV_PEER_DOWN:
        break;
    case RABIA_EV_SNAPSHOT_INSTALLED:
        on_snapshot(c, ev->slot);
        break;
    case RABIA_EV_RESUBMIT:
        rc = on_resubmit(c, ev);
        break;
    case RABIA_EV_RESTORE:
        rc = on_restore(c, ev);
        break;
    default:
        rc = RABIA_E_MALFORMED;
        break;
    }
    apply_ready(c);
    /* no new slot while earlier lives' records are still coming in: a slot
     * started now could propose over a record not yet restored */
    if (rc == 0 && ev->type != RABIA_EV_RESTORE) start_slots(c);
    apply_ready(c);
    /* still behind a peer after applying what we had: next chunk */
    if (!c->recovering && out->n_applies) {
        for (uint8_t p = 0; p < c->cfg.n; p++) {
            if (p != c->cfg.self && c->peer_known[p] >= c->next_apply + c->cfg.window) {
                c->catchup_us = 0;
                maybe_catchup(c, p);
                break;
            }
        }
    }
    bool busy = c->recovering || c->pq[c->cfg.self].n || c->drive_until >= c->next_apply;
    for (uint32_t w = 0; w < c->cfg.window && !busy; w++)
        busy = c->inst[w].used && c->inst[w].started && !c->inst[w].decided;
    out->next_tick_us = busy ? c->now + c->cfg.retransmit_us / 2 : 0;
    c->out = NULL;
    return rc;
}

uint64_t rabia_core_next_apply(const struct rabia_core *c) { return c->next_apply; }
uint64_t rabia_core_known_slot(const struct rabia_core *c) { return known_slot(c); }
uint64_t rabia_core_log_first(const struct rabia_core *c) { return log_first(c); }
bool rabia_core_recovering(const struct rabia_core *c) { return c->recovering; }
uint64_t rabia_core_abstain_below(const struct rabia_core *c) { return c->abstain_below; }
const struct rabia_stats *rabia_core_stats(const struct rabia_core *c) { return &c->stats; }

const char *rabia_core_last_anomaly(const struct rabia_core *c) { return c->last_anomaly ? c->last_anomaly : "none"; }

uint32_t rabia_core_inflight(const struct rabia_core *c)
{
    uint32_t k = 0;
    for (uint32_t w = 0; w < c->cfg.window; w++) {
        const struct inst *in = &c->inst[w];
        k += in->used && in->started && !in->decided && in->slot >= c->next_apply;
    }
    return k;
}

uint64_t rabia_core_own_keep_seq(const struct rabia_core *c)
{
    const struct pq *q = &c->pq[c->cfg.self];
    uint64_t low = c->next_seq - 1;
    for (uint32_t i = 0; i < q->n; i++) {
        const struct bent *b = &c->bt[q->items[i]];
        if (b->id.incarnation == c->cfg.incarnation && b->id.seq < low) low = b->id.seq;
    }
    return low;
}

uint32_t rabia_core_own_waiting(const struct rabia_core *c)
{
    const struct pq *q = &c->pq[c->cfg.self];
    uint32_t k = 0;
    for (uint32_t i = 0; i < q->n; i++)
        if (!c->bt[q->items[i]].inflight) k++;
    return k;
}

uint32_t rabia_core_pending(const struct rabia_core *c)
{
    uint32_t k = 0;
    for (uint8_t p = 0; p < c->cfg.n; p++) k += c->pq[p].n;
    return k;
}

int rabia_core_describe_batch(const struct rabia_core *c, const struct rabia_batch_id *id, char *buf, size_t len)
{
    if (id->proxy >= c->cfg.n) return snprintf(buf, len, "proxy out of range");
    int32_t e = bt_find(c, id);
    const struct tracker *t = &c->tr[id->proxy];
    return snprintf(buf, len, "%s%s inflight=%u lost=%u tracker(inc=%llu base=%llu) decided=%d pq_len=%u",
                    e >= 0 ? "held" : "absent", e >= 0 && c->bt[e].in_pq ? " in-queue" : "",
                    e >= 0 ? c->bt[e].inflight : 0, e >= 0 ? c->bt[e].lost : 0, (unsigned long long)t->incarnation,
                    (unsigned long long)t->base, tr_decided(c, id), c->pq[id->proxy].n);
}

void rabia_core_set_coin_observer(struct rabia_core *c, rabia_coin_fn fn, void *ctx)
{
    c->coin_obs = fn;
    c->coin_ctx = ctx;
}

void rabia_core_set_trace(struct rabia_core *c, rabia_trace_fn fn, void *ctx)
{
    c->trace = fn;
    c->trace_ctx = ctx;
}
