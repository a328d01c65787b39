/* The replica's runtime without I/O (node.h): waiters, batcher, stepping
 * the core, the durability rules, apply and replies. */
#include "node.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "invariant.h"
#include "pool.h"

/* How long a lazy log record (urgent_pending) may wait for a write that
 * something needs: bounds how far a follower's applied state trails its
 * decisions when idle. */
#define NODE_LAZY_US 2000u
/* Own batch sequence numbers reserved ahead by one RESERVE record (see
 * res_durable); a restart skips at most this many. */
#define NODE_SEQ_RESERVE 64u /* well below RABIA_SEQ_SPAN: a restart's jump stays inside the trackers' window */

/* Reads (node_read): a read not answered this long after it came (its
 * rounds found no n-f answers: every round is retried each retransmit
 * period meanwhile; or the state did not reach its index) goes through the
 * log after all, with every read behind it (node_cfg.read_fallback_us
 * overrides it); the bytes of the reads
 * waiting at once, at most (beyond: through the log at once). */
#define NODE_READ_FALLBACK_US 1000000u
#define NODE_READ_BYTES_MAX (16u << 20)
#define NODE_WAIT_EVENTS_MAX 64u /* node_wait_events: well within the loop's completion queue */

/* A read waiting in node_read's queue: its op's bytes are rq_ops[off, off + len). */
struct node_readq {
    uint64_t cid, seq, ack;
    uint64_t index; /* its round's index, once the round completed */
    uint64_t t_us;  /* when it came (node's clock) */
    uint64_t wall_ms; /* ... by the wall clock (query's now_ms: what a batch cut then would carry) */
    size_t off;
    uint32_t len;
    struct node_to to;
};

/* one cache line each (the table is line-aligned): a prefetch of the key
 * brings the rest, which answering the request reads */
struct waiter {
    uint64_t client_id, seq; /* 0,0 = free */
    struct node_to to;
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct waiter) == 64, "a waiter is one cache line");

static struct waiter *waiters_alloc(uint32_t cap)
{
    struct waiter *w = aligned_alloc(64, (size_t)cap * sizeof(*w));
    if (w) memset(w, 0, (size_t)cap * sizeof(*w));
    return w;
}

/* own seqs DECIDED_REF records name, awaiting a snapshot; the simulator's
 * build keeps 4, so that its runs merge entries (refq) all the time */
#ifdef RABIA_TEST_BUGS
enum { NODE_REFQ = 4 };
#else
enum { NODE_REFQ = 1024 };
#endif

/* The frame pool (env.send_shared): frames of NODE_SHARE_MIN bytes and
 * more are encoded once into one of NODE_FRAMES buffers and every peer's
 * connection sends from it (rio_send_shared). At SET -P 16 the proxy's
 * BATCH frames are 50-110 KB; each used to be copied into a scratch
 * buffer and then into each peer's send queue. When all buffers are held
 * (a slow peer's connection keeps its references until the kernel has the
 * bytes) a frame is copied as before: the pool bounds the memory, never
 * the sends. The simulator's build keeps 3 and shares frames from 64
 * bytes, so that its runs exhaust the pool. */
#ifdef RABIA_TEST_BUGS
enum { NODE_FRAMES = 3, NODE_SHARE_MIN = 64 }; /* the simulator's frames are small */
#else
enum { NODE_FRAMES = 32, NODE_SHARE_MIN = 1024 };
#endif
/* a held entry's length word with this bit: the frame is in the pool, and
 * the entry holds its address instead of its bytes (node's reference) */
#define HELD_SHARED 0x80000000u

enum { NODE_WFILT_BITS = 11, NODE_WFILT = 1 << NODE_WFILT_BITS };

struct rabia_node {
    struct node_cfg cfg;
    struct node_env env;
    struct node_log log;
    bool has_log;
    struct rabia_core *core;
    struct rabia_rsm *rsm;
    struct batcher batcher;
    bool batcher_ok;
    struct waiter *waiters;
    uint32_t n_waiters;
    uint32_t wcap;           /* the table's size now: a power of two, up to cfg.waiters_cap */
    uint32_t wfilt[NODE_WFILT]; /* waiters per client-id bucket (wfilt_of): 0 = none to look up */
    uint64_t next_tick_us;
    uint64_t last_req_us;     /* the newest client request's arrival (node_request) */
    uint64_t own_done_us;     /* since when no own batch is undecided or unanswered (0: one is) */
    uint64_t own_unapplied;   /* the newest own batch's slot decided but, for want of its DECIDED
                                 record on the disk, not yet applied here (0: none) */
    uint64_t arrived, answered; /* client requests taken here, and answered from a waiter */
    uint64_t arrived_mark;    /* ... arrived as of own_done_us */
    uint64_t answered_mark;   /* ... answered as of the newest own batch's cut */
    uint64_t arrived_runs, answered_runs;          /* the same counted in runs of one client's */
    uint64_t arrived_runs_mark, answered_runs_mark;
    uint64_t arrived_cid, answered_cid;            /* the client of the newest run */
    bool cohort_counted;      /* st.linger_cohort counted this wait */
    uint32_t wait_events;     /* node_wait_events: the reads that would end the linger, or 1 */
    uint64_t linger_until_us; /* the open batch is held until then (0: not held) */
    bool linger_own;          /* the open batch is held while an own batch is undecided */
    bool one_slot;            /* window 1: the only shape linger() is for */
    /* rabia_apply.holders of the last decided slots, by slot % 64, and of
     * the slot being applied (node_reply_holders: RESP's WAIT) */
    struct {
        uint64_t slot;
        uint8_t holders;
    } holders[64];
    uint8_t applying_holders;
    struct rabia_buf scratch;
    struct buf_pool frames;  /* env.send_shared's buffers; empty without it */
    bool frames_ok;
    /* with a log: sends held behind the group being formed (open) and the
     * write in flight; each entry is [to:1][len:4][frame], or
     * [to:1][len | HELD_SHARED:4][address of a pool frame:8] */
    struct rabia_buf held_open, held_flight;
    bool write_busy;
    bool failed;
    /* records appended, and how many of them are durable: a slot decided by
     * a unanimous exchange is answered once this replica's own PROPOSAL
     * for it is (rabia_apply.unanimous) */
    uint64_t rec_appended, rec_flight_end, rec_durable;
    bool flight_whole;       /* the write in flight holds everything appended before it started */
    /* Lazy records: a DECIDED record nobody here waits for (a null slot,
     * another proxy's batch, or an own batch answered already) does not
     * start a write of its own; it goes with the next write that a send or
     * a reply needs, or NODE_LAZY_US after it was appended. A follower wrote
     * 2.4 groups per slot at SET -P 16, each a virtio kick and an interrupt
     * (7 us of the one CPU each, perf cpu-clock); the PROPOSAL, STATE and
     * VOTE records its sends wait for are what has to be fast. */
    bool urgent_pending;     /* a record appended since the last write starts one */
    bool flight_urgent;      /* the write in flight holds such records */
    uint64_t lazy_since_us;  /* when the oldest unwritten lazy record was appended; 0: none */
    /* Sequence reservations. What persisting an own BATCH before sending it
     * protects is that a batch id never names two bodies: a restart must
     * number past every id that left. A durable RESERVE record saying "own
     * seqs up to R may have left" protects the same (replay.c numbers past
     * R), so a BATCH whose seq is at most the durable R leaves at once,
     * before its record lands: its peers write their PROPOSAL of it while
     * this replica writes its own, one disk write on a slot's path instead
     * of two. Its record still precedes this replica's PROPOSAL of it, and
     * every replica that proposes it has logged its body first, so a
     * decided batch's body is on some disk whatever crashes. One RESERVE
     * every NODE_SEQ_RESERVE / 2 batches; the log keeps the segment of the
     * newest one (rabia_wal_release treats it as a BATCH record). */
    uint64_t res_appended, res_flight, res_durable; /* R appended, in the write in flight, durable */
    /* A slot decided by a unanimous exchange while this replica's own
     * PROPOSAL of it was still being written: answered when that write
     * lands (node_log_written), not after a DECIDED write of its own. With
     * BATCH sent early, peers' proposals often arrive before the proxy's
     * own write completes: 30-40% of the proxy's slots waited for one
     * more write (INFO slots_answered_early). The body is copied (the
     * core's memory is reused by the next step): a memcpy is cheaper than a
     * disk write. */
    struct {
        bool set;
        uint64_t slot, rec;
        struct rabia_batch_id id;
        struct rabia_buf body;
    } early;
    struct {
        uint64_t slot, rec;  /* own PROPOSAL of `slot` is record number `rec` (1-based) */
        struct rabia_batch_id id; /* what it proposed (has: not the null value) */
        bool has;
    } own_prop[64];
    /* DECIDED records by reference. A slot decided for the batch this
     * replica proposed there already has the body in this log: another
     * proxy's body in the SENT record before that PROPOSAL (core/instance.c
     * persists it there, keyed by the slot), an own one in its BATCH record.
     * Its DECIDED record then names the batch and leaves the body out
     * (NODE_REC_DECIDED_REF; replay.c finds the body): at SET -P 16 every
     * replica wrote each body twice, 104 KB per slot, and the log's size
     * is what sets how often a snapshot forks. Only slots applied already
     * (answered early) go so: the write's completion needs no body. A
     * foreign body's record is kept while its slot is, but an own BATCH
     * record is keyed by seq and kept only while the batch is pending
     * (rabia_core_own_keep_seq): refq holds the own seqs named by
     * DECIDED_REF records of slots no durable snapshot covers yet, as a
     * min-queue (slots rising front to back, seqs too), so that
     * node_keep_batch_seq keeps their BATCH records. Full: its two oldest
     * entries merge (conservatively). */
    struct {
        uint64_t slot, seq;
    } refq[NODE_REFQ];
    uint32_t refq_head, refq_n;
    uint64_t incarnation;    /* the core's: own batches of an earlier one are not referenced */
    uint32_t catchup_chunk;  /* the core's: decisions per catch-up request */
    uint64_t log_serving[RABIA_MAX_REPLICAS]; /* until then the log serves that peer's catch-up: no snapshot offer */
    uint64_t log_from[RABIA_MAX_REPLICAS];    /* ... from this slot (node_log_pin) */
    uint64_t log_from_us[RABIA_MAX_REPLICAS]; /* ... asked for since then (node_log_pin) */
    uint64_t log_sent_until[RABIA_MAX_REPLICAS], log_sent_us[RABIA_MAX_REPLICAS]; /* the last slots sent, when */
    uint64_t log_cont_from[RABIA_MAX_REPLICAS], log_cont_until[RABIA_MAX_REPLICAS]; /* a read short of its first
                                                                                         slot, to go on (0: none) */
    uint64_t log_refused_from[RABIA_MAX_REPLICAS], log_refused_us[RABIA_MAX_REPLICAS]; /* the log lacked that slot */
    uint64_t log_retain, log_retain_bytes; /* the core's (node_log_span) */
    /* node_read's queue, first come first answered: reads [0, rq_indexed)
     * from the head have their index, [rq_indexed, rq_assigned) wait for
     * the round open now (ri_round), the rest for the next round, opened
     * by node_turn (one round per loop turn carries every read that came
     * in it). */
    struct node_readq *rq;   /* cfg.reads_cap entries */
    uint32_t rq_head, rq_n, rq_indexed, rq_assigned;
    struct rabia_buf rq_ops; /* the waiting reads' ops; [0, rq_ops_head) are answered ones' */
    size_t rq_ops_head;
    struct rabia_buf rq_reply;
    uint64_t ri_round, ri_next, ri_sent_us;
    /* read indexes asked without a read (node_index_ask: a backup): tickets
     * up to bar_asked were asked, up to bar_done have one (bar_index, the
     * largest any round gave); ri_bar: the tickets the open round covers */
    uint64_t bar_asked, bar_done, bar_index, ri_bar;
    uint64_t retransmit_us;  /* the core's: a round without n-f answers by then is opened again */
    uint64_t read_seq;       /* cfg.read_cid's seqs */
    uint32_t fb_out;         /* waiters of reads sent through the log (to.read), not answered yet */
    bool rq_moving;          /* reads_to_log runs */
    struct node_stats st;
};

static void note(struct rabia_node *n, int level, const char *fmt, ...)
{
    if (!n->env.note) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    n->env.note(n->env.ctx, level, msg);
}

static void fatal(struct rabia_node *n, const char *why)
{
    n->failed = true;
    n->env.fatal(n->env.ctx, why);
}

static uint32_t bugs(const struct rabia_node *n)
{
#ifdef RABIA_TEST_BUGS
    return n->cfg.bugs;
#else
    (void)n;
    return 0;
#endif
}

/* ------------------------------------------------------------------ */
/* waiters: (client id, seq) -> who to answer; open addressing, linear
 * probing, at most half full so probes stay short. The table starts small
 * and doubles as more requests wait, up to cfg.waiters_cap: allocated at
 * that size (64 K entries, 4 MiB), every lookup of a random slot missed
 * the cache, 4-6% of the CPU at SET -P 16 (800 requests waiting, perf
 * record -e cpu-clock); 2 K entries are 128 KiB. */
#define WAITERS_START 2048u

/* Every replica applies every request, but only the proxy that took it (or
 * one a client retried at) has a waiter for it: two lookups of three, with
 * n = 3, find nothing, and each missed the cache (a random slot of the
 * table, cold after the store's own misses in between): waiter_find was
 * 6-9% of the CPU at SET -P 16 (perf record -e cpu-clock, 3 replicas on
 * one CPU). A count of waiters per client-id bucket, 8 KiB that stay in
 * the cache, answers those from one hot word. */
static uint32_t wfilt_of(uint64_t cid)
{
    return (uint32_t)((cid * 0x9E3779B97F4A7C15ull) >> (64 - NODE_WFILT_BITS));
}

/* A multiply-xorshift mix, not XXH64 (2.2% of a replica's instructions at
 * SET -P 16 by callgrind, for up to five slots per request): a client's
 * seqs count up and ids are few, so any odd multiplier spreads them; the
 * high bits are the mixed ones. */
static uint32_t wslot(const struct rabia_node *n, uint64_t cid, uint64_t seq)
{
    uint64_t h = (cid * 0x9E3779B97F4A7C15ull) ^ seq;
    h *= 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
    return (uint32_t)(h >> 32) & (n->wcap - 1);
}

static struct waiter *waiter_find(struct rabia_node *n, uint64_t cid, uint64_t seq)
{
    if (!n->wfilt[wfilt_of(cid)]) return NULL;
    uint32_t mask = n->wcap - 1, i = wslot(n, cid, seq);
    for (uint32_t k = 0; k <= mask; k++, i = (i + 1) & mask) {
        struct waiter *w = &n->waiters[i];
        if (!w->client_id && !w->seq) return NULL;
        if (w->client_id == cid && w->seq == seq) return w;
    }
    return NULL;
}

/* Double the table (every entry moves: O(waiting), once per doubling).
 * false when it is at its cap or out of memory. */
static bool waiters_grow(struct rabia_node *n)
{
    if (n->wcap >= n->cfg.waiters_cap) return false;
    uint32_t old = n->wcap;
    struct waiter *ow = n->waiters, *nw = waiters_alloc(old * 2);
    if (!nw) return false;
    n->waiters = nw;
    n->wcap = old * 2;
    uint32_t mask = n->wcap - 1;
    for (uint32_t k = 0; k < old; k++) {
        if (!ow[k].client_id && !ow[k].seq) continue;
        uint32_t i = wslot(n, ow[k].client_id, ow[k].seq);
        while (nw[i].client_id || nw[i].seq) i = (i + 1) & mask;
        nw[i] = ow[k];
    }
    free(ow);
    return true;
}

static struct waiter *waiter_add(struct rabia_node *n, uint64_t cid, uint64_t seq)
{
    RABIA_ASSERT(cid || seq);
    struct waiter *w = waiter_find(n, cid, seq);
    if (w) return w;
    if (n->n_waiters >= n->wcap / 2 && !waiters_grow(n)) return NULL;
    RABIA_ASSERT(n->n_waiters < n->wcap / 2);
    uint32_t mask = n->wcap - 1, i = wslot(n, cid, seq);
    while (n->waiters[i].client_id || n->waiters[i].seq) i = (i + 1) & mask;
    w = &n->waiters[i];
    memset(w, 0, sizeof(*w));
    w->client_id = cid;
    w->seq = seq;
    n->n_waiters++;
    n->wfilt[wfilt_of(cid)]++;
    return w;
}

/* Who a waiter answers: node_read's reads sent through the log are
 * counted (fb_out), so that no read overtakes them. */
static void waiter_set_to(struct rabia_node *n, struct waiter *w, const struct node_to *to)
{
    if (w->to.read) {
        RABIA_ASSERT(n->fb_out > 0);
        n->fb_out--;
    }
    w->to = *to;
    if (to->read) n->fb_out++;
}

static void waiter_del(struct rabia_node *n, struct waiter *w)
{
    /* backward-shift deletion keeps every probe chain unbroken */
    uint32_t mask = n->wcap - 1, i = (uint32_t)(w - n->waiters), j = i;
    RABIA_ASSERT(n->n_waiters > 0);
    if (w->to.read) {
        RABIA_ASSERT(n->fb_out > 0);
        n->fb_out--;
    }
    RABIA_ASSERT(n->wfilt[wfilt_of(w->client_id)] > 0);
    n->wfilt[wfilt_of(w->client_id)]--;
    for (;;) {
        n->waiters[i].client_id = n->waiters[i].seq = 0;
        for (;;) {
            j = (j + 1) & mask;
            struct waiter *x = &n->waiters[j];
            if (!x->client_id && !x->seq) goto done;
            uint32_t h = wslot(n, x->client_id, x->seq);
            if (i <= j ? (i < h && h <= j) : (i < h || h <= j)) continue;
            break;
        }
        n->waiters[i] = n->waiters[j];
        i = j;
    }
done:
    n->n_waiters--;
}

/* Before a batch is applied: the table slot of each of its requests that
 * may have a waiter here is fetched into the cache, so that answering it
 * (complete, per request, after the store's work on it) does not wait for
 * memory; the misses overlap instead of coming one per request. With the
 * filter (wfilt) alone waiter_find was still 5% of the CPU at SET -P 16,
 * 88% of it the load of that slot. */
static void prefetch_waiters(const struct rabia_node *n, const uint8_t *body, uint32_t len)
{
    struct rabia_batch_iter it;
    struct rabia_req q;
    if (!n->n_waiters || !body || rabia_batch_iter_init(&it, body, len) != 0) return;
    for (uint32_t k = 0; k <= len / RABIA_BATCH_REQ_HEADER && rabia_batch_iter_next(&it, &q) == 1; k++)
        if (n->wfilt[wfilt_of(q.client_id)]) {
            uint32_t i = wslot(n, q.client_id, q.seq);
            __builtin_prefetch(&n->waiters[i]);
            __builtin_prefetch(&n->waiters[(i + 1) & (n->wcap - 1)]); /* waiter_del looks at the next */
        }
}

/* A request finished (applied, or refused): answer whoever waits for it. */
static void complete(struct rabia_node *n, uint64_t cid, uint64_t seq, int status, const uint8_t *res, size_t len)
{
    struct waiter *w = waiter_find(n, cid, seq);
    if (!w) return;
    struct waiter copy = *w;
    waiter_del(n, w);
    n->answered++;
    if (cid != n->answered_cid) { /* a run of one client's answers leaves in one send */
        n->answered_cid = cid;
        n->answered_runs++;
    }
    n->env.reply(n->env.ctx, &copy.to, cid, seq, status, res, len);
}

static void on_applied(void *ctx, uint64_t cid, uint64_t seq, int status, const uint8_t *res, size_t len)
{
    complete(ctx, cid, seq, status, res, len);
}

bool node_waiter(struct rabia_node *n, uint64_t cid, uint64_t seq, struct node_to *out)
{
    struct waiter *w = waiter_find(n, cid, seq);
    if (w) *out = w->to;
    return w != NULL;
}

uint8_t node_reply_holders(const struct rabia_node *n) { return n->applying_holders; }

void node_forget(struct rabia_node *n, uint64_t cid, uint64_t seq)
{
    struct waiter *w = waiter_find(n, cid, seq);
    if (w) waiter_del(n, w);
}

/* ------------------------------------------------------------------ */
/* apply */

/* replicas that make a majority of n (the least a decided batch reached) */
static uint8_t majority(uint8_t n) { return (uint8_t)(n / 2 + 1); }

static void reads_run(struct rabia_node *n);

static void apply_slot(struct rabia_node *n, uint64_t slot, const struct rabia_batch_id *id, const uint8_t *body,
                       uint32_t len)
{
    if (n->failed) return;
    if (n->env.decided) n->env.decided(n->env.ctx, slot, id, body, len);
    if (slot <= rabia_rsm_applied(n->rsm)) return; /* a snapshot installed meanwhile covers it */
    RABIA_ASSERT(slot == rabia_rsm_applied(n->rsm) + 1);
    /* a slot decided more than 64 slots ago (a DECIDED record that waited
     * long): a majority had it, which any decided slot's batch had */
    const uint32_t k = (uint32_t)(slot % 64);
    n->applying_holders = n->holders[k].slot == slot ? n->holders[k].holders : majority(n->cfg.n);
    RABIA_ASSERT(n->applying_holders > n->cfg.n / 2 && n->applying_holders <= n->cfg.n);
    prefetch_waiters(n, body, len);
    int rc = rabia_rsm_apply_batch(n->rsm, slot, id, body, len, on_applied, n);
    if (rc) {
        /* not deterministic (out of memory): stop rather than diverge */
        char why[160];
        snprintf(why, sizeof why, "applying slot %" PRIu64 " failed: %s", slot, rabia_strerror(rc));
        fatal(n, why);
        return;
    }
    if (n->env.applied) n->env.applied(n->env.ctx, slot);
    if (n->rq_indexed) reads_run(n);
}

/* ------------------------------------------------------------------ */
/* the log: records of an update, sends held behind them */

/* An own BATCH whose seq a durable reservation covers (res_durable). */
static bool reserved(const struct rabia_node *n, const struct rabia_msg *m)
{
    return m->type == RABIA_MSG_BATCH && m->id.proxy == n->cfg.self && m->id.seq <= n->res_durable;
}

/* A read-index round's question or answer (core.h, READ INDEX): it carries
 * no content a restart could contradict (an answer is a bound, and a
 * larger one only makes reads wait longer), so it never waits for a log
 * write. */
static bool read_msg(const struct rabia_msg *m)
{
    return (m->type == RABIA_MSG_HORIZON_REQ || m->type == RABIA_MSG_HORIZON) && (m->u64 & RABIA_READ_NONCE);
}

/* A record appended now is lazy: it waits at most NODE_LAZY_US. */
static void mark_lazy(struct rabia_node *n, uint64_t now)
{
    if (!n->lazy_since_us) n->lazy_since_us = now | 1; /* 0 means none */
}

static int append_records(struct rabia_node *n, const struct rabia_update *u, uint64_t now)
{
    int rc = 0;
    for (uint32_t i = 0; i < u->n_persist && !rc; i++) {
        const struct rabia_msg *m = &u->persist[i];
        /* the sends of this step wait for these records, but an own BATCH
         * a reservation lets leave at once waits for nothing: its record
         * only has to precede this replica's PROPOSAL of it, whose write
         * carries it */
        if (reserved(n, m)) mark_lazy(n, now);
        else n->urgent_pending = true;
        if (m->type == RABIA_MSG_BATCH && m->id.proxy != n->cfg.self) { /* a body it proposes: SENT, by slot */
            struct rabia_msg b = *m;
            b.slot = 0; /* the frame has no slot: the record carries it */
            rc = n->log.append(n->log.ctx, NODE_REC_SENT, m->slot, &b);
        } else if (m->type == RABIA_MSG_BATCH) {
            if (m->id.seq + NODE_SEQ_RESERVE / 2 > n->res_appended) { /* running low: reserve ahead */
                uint64_t r = m->id.seq + NODE_SEQ_RESERVE;
                struct rabia_msg mk = {.type = RABIA_MSG_HORIZON_REQ, .from = n->cfg.self, .u64 = r};
                if ((rc = n->log.append(n->log.ctx, NODE_REC_RESERVE, r, &mk))) break;
                n->rec_appended++;
                n->res_appended = r;
                n->urgent_pending = true; /* the batches after this one may leave early once it lands */
            }
            rc = n->log.append(n->log.ctx, NODE_REC_BATCH, m->id.seq, m);
        } else {
            rc = n->log.append(n->log.ctx, NODE_REC_SENT, m->slot, m);
        }
        if (rc) break;
        n->rec_appended++;
        if (m->type == RABIA_MSG_PROPOSAL) {
            n->own_prop[m->slot % 64].slot = m->slot;
            n->own_prop[m->slot % 64].rec = n->rec_appended;
            n->own_prop[m->slot % 64].has = m->has_id;
            n->own_prop[m->slot % 64].id = m->id;
        }
    }
    return rc;
}

/* refq's k-th entry from the front */
static inline uint32_t refq_at(const struct rabia_node *n, uint32_t k) { return (n->refq_head + k) % NODE_REFQ; }

/* Can slot a's DECIDED record leave its body out (see refq)? An own batch
 * is entered into refq here. */
static bool decided_by_ref(struct rabia_node *n, const struct rabia_apply *a)
{
    const uint32_t k = (uint32_t)(a->slot % 64);
    if (a->null || a->slot > rabia_rsm_applied(n->rsm)) return false; /* its write's completion applies it */
    if (n->own_prop[k].slot != a->slot || !n->own_prop[k].has || !rabia_batch_id_eq(&n->own_prop[k].id, &a->id))
        return false; /* this replica did not propose it here: no body record of it in this log, perhaps */
    if (a->id.proxy != n->cfg.self) return true; /* its SENT body record is keyed by this slot */
    if (a->id.incarnation != n->incarnation) return false;
    if (n->refq_n == NODE_REFQ) {
        /* full (no snapshot for NODE_REFQ such slots: the log is far below
         * max-log-size): the two oldest entries become one, with the older
         * seq and the newer slot, which keeps that BATCH record longer
         * than it must, never shorter. Refusing instead wrote every own
         * body twice again after 1024 slots (INFO wal_decided_by_ref
         * stopped at 1024 at -P 1). */
        uint32_t second = refq_at(n, 1);
        RABIA_ASSERT(n->refq[n->refq_head].seq <= n->refq[second].seq);
        n->refq[second].seq = n->refq[n->refq_head].seq;
        n->refq_head = second;
        n->refq_n--;
    }
    /* min-queue: an entry with a seq at least this one's never sets the
     * minimum again (this one stays longer: its slot is higher) */
    while (n->refq_n && n->refq[refq_at(n, n->refq_n - 1)].seq >= a->id.seq) n->refq_n--;
    RABIA_ASSERT(!n->refq_n || n->refq[refq_at(n, n->refq_n - 1)].slot < a->slot);
    uint32_t back = refq_at(n, n->refq_n++);
    n->refq[back].slot = a->slot;
    n->refq[back].seq = a->id.seq;
    return true;
}

uint64_t node_keep_batch_seq(struct rabia_node *n, uint64_t upto)
{
    uint64_t keep = rabia_core_own_keep_seq(n->core);
    while (n->refq_n && n->refq[n->refq_head].slot <= upto) { /* a snapshot covers it: its body is not needed */
        n->refq_head = refq_at(n, 1);
        n->refq_n--;
    }
    if (n->refq_n && n->refq[n->refq_head].seq < keep) keep = n->refq[n->refq_head].seq;
    return keep;
}

/* The DECIDED records of an update, after its sends were queued (they do
 * not wait for these) and its early answers given: a record is lazy when
 * nobody here waits for it to land (see urgent_pending). */
static int append_decided(struct rabia_node *n, const struct rabia_update *u, uint64_t now)
{
    int rc = 0;
    for (uint32_t i = 0; i < u->n_applies && !rc; i++) {
        const struct rabia_apply *a = &u->applies[i];
        bool lazy = a->null || a->id.proxy != n->cfg.self || a->slot <= rabia_rsm_applied(n->rsm) ||
                    (n->early.set && n->early.slot == a->slot);
        if (!lazy) {
            n->urgent_pending = true;
            /* an own batch this record will apply: its clients wait until
             * then (linger). Not the held early slot, answered when the
             * write in flight lands: waiting for that as well measured
             * slower (SET -P 16, clients on this replica alone) */
            n->own_unapplied = a->slot;
        } else {
            mark_lazy(n, now);
        }
        struct rabia_msg m = {.type = RABIA_MSG_DECISION, .from = n->cfg.self, .slot = a->slot};
        bool by_ref = decided_by_ref(n, a);
        if (!a->null) {
            m.value = 1;
            m.has_id = 1;
            m.id = a->id;
            m.body = by_ref ? NULL : a->body;
            m.body_len = by_ref ? 0 : a->body_len;
        }
        rc = n->log.append(n->log.ctx, by_ref ? NODE_REC_DECIDED_REF : NODE_REC_DECIDED, a->slot, &m);
        if (!rc) {
            n->rec_appended++;
            if (by_ref) n->st.decided_by_ref++;
        }
    }
    return rc;
}

/* A slot whose decision may be answered before its DECIDED record is
 * durable, the next to apply, with no held early slot before it:
 *  - decided here by a unanimous exchange (every replica persisted a
 *    PROPOSAL of this batch before sending it, so any restart decides it
 *    again) once this replica's own PROPOSAL of it is on the disk;
 *  - learned from a peer's DECISION (rabia_apply.adopted): it left its
 *    sender behind the sender's records, and what the sender counted had
 *    left theirs behind their own, so it is answered at once. With the
 *    clients on one replica a third of its slots were adopted (the peers'
 *    DECISION came before the last PROPOSAL) and each waited for one more
 *    group write before its clients were answered.
 * Returns the record number that must be on the disk first (compared with
 * rec_durable; 1 when nothing of this replica's is needed), or 0 when the
 * slot is not such a one. Saves the DECIDED write on a reply's path. */
static uint64_t forced_rec(const struct rabia_node *n, const struct rabia_apply *a)
{
    if (n->early.set || a->null || (bugs(n) & NODE_BUG_REPLY_EARLY)) return 0;
    if (a->slot != rabia_rsm_applied(n->rsm) + 1) return 0;
    if (a->adopted) return 1;
    if (!a->unanimous || n->own_prop[a->slot % 64].slot != a->slot) return 0;
    return n->own_prop[a->slot % 64].rec;
}

/* Encode once (need: its rabia_msg_encoded_size) into buf (held) or
 * scratch (sent now). 0, or -ENOMEM. */
static int encode_into(struct rabia_node *n, struct rabia_buf *b, uint8_t to, const struct rabia_msg *m, size_t need)
{
    if (!need || need > UINT32_MAX) return 0;
    if (rabia_buf_reserve(b, b->len + 5 + need)) return -ENOMEM;
    uint8_t *p = b->data + b->len;
    int k = rabia_msg_encode(m, p + 5, need);
    if (k < 0) {
        note(n, RABIA_LOG_ERROR, "encode %s: %s", rabia_msg_type_name(m->type), rabia_strerror(k));
        return 0;
    }
    p[0] = to;
    uint32_t l = (uint32_t)k;
    memcpy(p + 1, &l, 4);
    b->len += 5 + (size_t)k;
    return 0;
}

/* Encode m into a pool frame (holding one reference) when it is large
 * enough to share and a frame is free; NULL otherwise (then copied). */
static uint8_t *encode_shared(struct rabia_node *n, const struct rabia_msg *m, size_t need, uint32_t *len)
{
    if (!n->frames_ok || need < NODE_SHARE_MIN || need > buf_pool_buf_size(&n->frames)) return NULL;
    uint8_t *f = buf_pool_get(&n->frames);
    if (!f) {
        n->st.frames_copied++; /* all held by slow connections: copied */
        return NULL;
    }
    int k = rabia_msg_encode(m, f, need);
    if (k < 0) {
        buf_pool_unref(&n->frames, f);
        return NULL; /* encode_into says why */
    }
    RABIA_ASSERT((size_t)k == need && need < HELD_SHARED);
    *len = (uint32_t)k;
    n->st.frames_shared++;
    return f;
}

/* Hold a pool frame (and the node's reference to it) in b. */
static int hold_shared(struct rabia_buf *b, uint8_t to, uint8_t *f, uint32_t len)
{
    if (rabia_buf_reserve(b, b->len + 13)) return -ENOMEM;
    uint8_t *p = b->data + b->len;
    uint32_t l = len | HELD_SHARED;
    p[0] = to;
    memcpy(p + 1, &l, 4);
    memcpy(p + 5, &f, sizeof f);
    b->len += 13;
    return 0;
}

/* Send a pool frame and drop the node's reference (the driver took its own). */
static void send_shared(struct rabia_node *n, uint8_t to, uint8_t *f, uint32_t len)
{
    n->env.send_shared(n->env.ctx, to, f, len, f);
    buf_pool_unref(&n->frames, f);
}

/* Each held entry of b: sent (send) or only its reference dropped. */
static void held_walk(struct rabia_node *n, struct rabia_buf *b, bool send)
{
    for (size_t p = 0; p + 5 <= b->len;) {
        uint32_t l;
        memcpy(&l, b->data + p + 1, 4);
        if (l & HELD_SHARED) {
            uint8_t *f;
            RABIA_ASSERT(p + 13 <= b->len && n->frames_ok);
            memcpy(&f, b->data + p + 5, sizeof f);
            if (send)
                send_shared(n, b->data[p], f, l & ~HELD_SHARED);
            else
                buf_pool_unref(&n->frames, f);
            p += 13;
            continue;
        }
        RABIA_ASSERT(p + 5 + l <= b->len);
        if (send) n->env.send(n->env.ctx, b->data[p], b->data + p + 5, l);
        p += 5 + l;
    }
    rabia_buf_clear(b);
}

static void release(struct rabia_node *n, struct rabia_buf *b) { held_walk(n, b, true); }

void node_frame_ref(struct rabia_node *n, void *buf)
{
    RABIA_ASSERT(n->frames_ok);
    buf_pool_ref(&n->frames, buf);
}

void node_frame_unref(struct rabia_node *n, void *buf)
{
    RABIA_ASSERT(n->frames_ok);
    buf_pool_unref(&n->frames, buf);
}

static void handle_update(struct rabia_node *n, struct rabia_update *u);

/* A snapshot install dropped this replica's own pending batches (the core
 * cannot tell which of them the snapshot covers; update.retired). The
 * restored apply layer can: a batch it applied is answered from the
 * sessions (answer_from_sessions); one it did not apply goes back to the
 * core under the SAME id, so that a copy still proposed in a kept slot and
 * this one can never both apply (the apply layer skips a batch id it
 * applied). A new batch with new ids could: the connection's session might
 * be closed between the two. */
static void requeue_retired(struct rabia_node *n, const struct rabia_apply *ret, uint32_t cnt)
{
    struct held {
        struct rabia_batch_id id;
        uint8_t *body;
        uint32_t len;
    } *h = calloc(cnt, sizeof(*h));
    if (!h) {
        note(n, RABIA_LOG_ERROR, "snapshot install: out of memory keeping %u dropped batch(es)", cnt);
        return;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < cnt; i++) { /* copy first: the next step reuses the core's memory */
        if (rabia_rsm_batch_applied(n->rsm, &ret[i].id)) continue;
        h[k].id = ret[i].id;
        h[k].len = ret[i].body_len;
        h[k].body = malloc(ret[i].body_len ? ret[i].body_len : 1);
        if (!h[k].body) break;
        memcpy(h[k].body, ret[i].body, ret[i].body_len);
        k++;
    }
    for (uint32_t i = 0; i < k; i++) {
        struct rabia_event ev = {.type = RABIA_EV_RESUBMIT, .body = h[i].body, .body_len = h[i].len};
        ev.msg.id = h[i].id;
        ev.now_us = n->env.now_us(n->env.ctx);
        struct rabia_update u;
        int rc = rabia_core_step(n->core, &ev, &u);
        handle_update(n, &u);
        if (rc)
            note(n, RABIA_LOG_ERROR, "requeueing own batch %u.%" PRIu64 ".%" PRIu64 " after a snapshot: %s",
                 h[i].id.proxy, h[i].id.incarnation, h[i].id.seq, rabia_strerror(rc));
        n->st.resubmitted++;
    }
    note(n, RABIA_LOG_INFO, "snapshot install dropped %u own pending batch(es): %u queued again, %u covered by the snapshot",
         cnt, k, cnt - k);
    for (uint32_t i = 0; i < cnt; i++) free(h[i].body);
    free(h);
}

static void handle_update(struct rabia_node *n, struct rabia_update *u)
{
    if (n->failed) return;
    bool hold = n->has_log && !(bugs(n) & NODE_BUG_SEND_EARLY);
    bool apply_now = !n->has_log || (bugs(n) & NODE_BUG_REPLY_EARLY);
    uint64_t now = n->env.now_us(n->env.ctx);
    if (n->has_log && append_records(n, u, now)) {
        fatal(n, "out of memory logging a core update");
        return;
    }
    for (uint32_t i = 0; i < u->n_applies; i++) {
        const struct rabia_apply *a = &u->applies[i];
        if (a->null) continue;
        n->holders[a->slot % 64].slot = a->slot;
        n->holders[a->slot % 64].holders = a->holders;
    }
    /* A send waits for every persist record before it (this step's and
     * earlier ones: the contract's "in order behind the records") and
     * behind every send held before it; with none of either it leaves now,
     * whatever lazy records wait. */
    hold = hold && (n->urgent_pending || n->held_open.len || n->held_flight.len || (n->write_busy && n->flight_urgent));
    for (uint32_t i = 0; i < u->n_sends; i++) {
        struct rabia_send *s = &u->sends[i];
        if (s->to != RABIA_TO_ALL && (s->to >= n->cfg.n || s->to == n->cfg.self)) continue;
        uint32_t flen = 0;
        size_t need = rabia_msg_encoded_size(&s->msg); /* once: shared or copied */
        uint8_t *f = encode_shared(n, &s->msg, need, &flen);
        if (hold && !reserved(n, &s->msg) && !read_msg(&s->msg)) {
            if (f ? hold_shared(&n->held_open, s->to, f, flen) : encode_into(n, &n->held_open, s->to, &s->msg, need)) {
                if (f) buf_pool_unref(&n->frames, f);
                fatal(n, "out of memory holding a send behind its log record");
                return;
            }
            continue;
        }
        if (f) {
            send_shared(n, s->to, f, flen);
            continue;
        }
        rabia_buf_clear(&n->scratch); /* encoded once, for every peer */
        if (encode_into(n, &n->scratch, s->to, &s->msg, need)) continue; /* lost: the core retransmits */
        release(n, &n->scratch);
    }
    for (uint32_t i = 0; i < u->n_applies && apply_now && !n->failed; i++) {
        struct rabia_apply *a = &u->applies[i];
        apply_slot(n, a->slot, a->null ? NULL : &a->id, a->null ? NULL : a->body, a->null ? 0 : a->body_len);
    }
    /* with a log: slots whose outcome no crash can change are answered now,
     * in order (node_log_decided skips them when their records land) */
    for (uint32_t i = 0; i < u->n_applies && !apply_now && !n->failed; i++) {
        const struct rabia_apply *a = &u->applies[i];
        uint64_t rec = forced_rec(n, a);
        if (!rec) break;
        if (rec > n->rec_durable) { /* its PROPOSAL is still on its way: held until it lands */
            rabia_buf_clear(&n->early.body);
            if (rabia_buf_append(&n->early.body, a->body, a->body_len) == 0) {
                n->early.set = true;
                n->early.slot = a->slot;
                n->early.rec = rec;
                n->early.id = a->id;
            }
            break;
        }
        apply_slot(n, a->slot, &a->id, a->body, a->body_len);
        n->st.answered_early++;
    }
    if (n->has_log && !n->failed && append_decided(n, u, now)) {
        fatal(n, "out of memory logging a decided slot");
        return;
    }
    for (uint8_t p = 0; p < n->cfg.n; p++) {
        if (!(u->snapshot_to_mask & (1u << p))) continue;
        if (now < n->log_serving[p]) { /* the log serves its catch-up */
            n->st.catchup_log_offers++;
            continue;
        }
        n->env.snapshot_to(n->env.ctx, p);
    }
    if (u->next_tick_us && (!n->next_tick_us || u->next_tick_us < n->next_tick_us)) n->next_tick_us = u->next_tick_us;
    if (u->read_round && u->read_round == n->ri_round) { /* the open round completed: its reads have their index */
        RABIA_ASSERT(n->rq_indexed <= n->rq_assigned && n->rq_assigned <= n->rq_n);
        for (uint32_t k = n->rq_indexed; k < n->rq_assigned; k++)
            n->rq[(n->rq_head + k) % n->cfg.reads_cap].index = u->read_slot;
        n->rq_indexed = n->rq_assigned;
        n->ri_round = 0; /* node_turn opens the next */
        n->bar_done = n->ri_bar;
        if (u->read_slot > n->bar_index) n->bar_index = u->read_slot;
        reads_run(n);
    }
    if (u->n_retired) requeue_retired(n, u->retired, u->n_retired); /* last: it steps the core */
}

/* A DECISION read back from the log, to the peer catching up. */
struct log_emit {
    struct rabia_node *n;
    uint8_t to;
};

static void log_emit(void *ctx, const struct rabia_msg *m)
{
    struct log_emit *e = ctx;
    struct rabia_node *n = e->n;
    RABIA_ASSERT(m->type == RABIA_MSG_DECISION && m->from == n->cfg.self);
    rabia_buf_clear(&n->scratch);
    if (encode_into(n, &n->scratch, e->to, m, rabia_msg_encoded_size(m))) return; /* lost: the peer asks again */
    release(n, &n->scratch);
    n->st.catchup_log_slots++;
}

/* A peer's CATCHUP or FETCH of a slot below the core's retained log: the
 * log serves the decisions from that slot when it still holds them
 * (decided and durable: nothing to hold back for the persistence
 * contract), up to where the core's log begins, and for a second after
 * that no snapshot is offered to that peer. A replica that fell
 * log-retain slots behind (a restart, a pause, a snapshot installed while
 * the cluster moved on) catches up from what its peers' logs hold since
 * their last snapshot, instead of a whole snapshot; a slot the log no
 * longer holds gets the snapshot as before. Its consensus messages of an
 * old slot (a restarted replica retransmits its open slot's before it
 * learns it is behind) make the core offer a snapshot too: none while the
 * log surely holds that slot (and has not just refused the peer's
 * catch-up), and nothing read for them. */
#define NODE_LOG_SERVING_US 1000000u
/* A peer that keeps asking from one slot this many serving periods makes
 * no progress: the log no longer keeps that slot for it (node_log_pin). */
#define NODE_LOG_PIN_PERIODS 10u
#define NODE_LOG_RESEND_US 50000u
static uint64_t serving_us(const struct rabia_node *n) { return n->cfg.log_serving_us ? n->cfg.log_serving_us : NODE_LOG_SERVING_US; }
/* Peer p's catch-up from the log starts at `from` now. */
static void log_from_set(struct rabia_node *n, uint8_t p, uint64_t from, uint64_t now)
{
    if (n->log_from[p] != from) n->log_from_us[p] = now;
    n->log_from[p] = from;
}
static void log_serve(struct rabia_node *n, uint8_t p, uint64_t from, uint64_t until, uint64_t now);
static void catchup_from_log(struct rabia_node *n, const struct rabia_msg *m, uint64_t now)
{
    if (!n->has_log || !n->log.catchup || m->from >= n->cfg.n || m->from == n->cfg.self) return;
    if (m->type != RABIA_MSG_CATCHUP && !m->slot) return; /* a FETCH of a batch's body only: the core's */
    uint64_t from = m->slot ? m->slot : 1, first = rabia_core_log_first(n->core);
    if (from >= first || from >= rabia_core_next_apply(n->core)) return; /* the core's own */
    if (m->type != RABIA_MSG_CATCHUP && m->type != RABIA_MSG_FETCH) {
        /* an old slot's message: the peer asks for decisions once it knows
         * it is behind; until then no snapshot while the log holds them.
         * Unless the log just refused this peer's catch-up (a decision by
         * reference whose batch body lies beyond the read's reach): then
         * the snapshot is its only way on. Held here by every
         * retransmission of its open slot's PROPOSAL, every 5 ms, it never
         * went, and the replica stayed behind for good (sim --seed 6303497
         * --mix all --durable). */
        bool refused = n->log_refused_us[m->from] && now - n->log_refused_us[m->from] < serving_us(n) &&
                       !(bugs(n) & NODE_BUG_LOG_REFUSAL);
        if (!refused && n->log.holds && n->log.holds(n->log.ctx, from)) {
            n->log_serving[m->from] = now + serving_us(n);
            log_from_set(n, m->from, from, now);
        }
        return;
    }
    uint8_t p = m->from;
    /* A FETCH of a slot past where this peer catches up from the log: that
     * catch-up brings the slot's decision, body and all, in order. Read
     * for the FETCH, the peer's log cursor would move past the catch-up's
     * slot and the next CATCHUP would start the read over, a segment back:
     * a replica behind by two segments that FETCHes the bodies of a few
     * decided slots ahead (its link dropped their batches) alternated the
     * two for ever, each read 4 MiB from the start and none got there
     * (integration.peer_stall, once in CI: 26,645 requests, 0 slots). */
    if (m->type == RABIA_MSG_FETCH && now < n->log_serving[p] && from > n->log_from[p] &&
        !(bugs(n) & NODE_BUG_LOG_FETCH)) {
        n->st.catchup_log_fetch_held++;
        return;
    }
    /* a FETCH wants the one slot (a body the asker could not keep) */
    uint64_t until = from + (m->type == RABIA_MSG_FETCH || !n->catchup_chunk ? 1 : n->catchup_chunk);
    if (until > first) until = first;
    log_from_set(n, p, from, now);
    /* The asker takes a chunk's decisions one step each and asks again
     * after each slot it applies (core/rabia.c: still behind after
     * applying), so the same chunk was asked for once per slot: a replica
     * 2,000 slots behind was sent 70,000 decisions from the log
     * (integration.wal_catchup). What was sent in the last
     * NODE_LOG_RESEND_US is not sent again; a chunk lost on the way is,
     * after that. */
    if (m->type == RABIA_MSG_CATCHUP && from < n->log_sent_until[p] && now - n->log_sent_us[p] < NODE_LOG_RESEND_US) {
        if (n->log_sent_until[p] >= until) { /* all of it on its way */
            n->log_serving[p] = now + serving_us(n);
            return;
        }
        from = n->log_sent_until[p];
    }
    /* The log did not hold `from` when last read for this peer: let the
     * core's snapshot offer of this step through. A fresh read starts with
     * -EAGAIN (it is a segment's sixteenth and 16 MiB before `from`), which
     * keeps the offer back; the read that found the gap ends at a later
     * turn (log_continue), when no offer is on its way. Reading again at
     * every ask, a replica rebuilt with --rejoin never got its snapshot
     * (sim --seed 1941021 --mix all --durable). A log does not come to
     * hold a slot it lacked: the refusal stands as long as a serving
     * period. */
    if (from == n->log_refused_from[p] && now - n->log_refused_us[p] < serving_us(n)) return;
    log_serve(n, p, from, until, now);
}

/* Read the log for peer p's slots [from, until) and send what it holds.
 * A read stops at its budget (DURABLE_CATCHUP_READ, 4 MiB) and returns
 * -EAGAIN while it has not reached `from` yet: it starts 16 MiB before the
 * sixteenth of a segment where `from`'s decision can begin (a whole
 * segment back before, up to 32 reads with 64 MiB segments), so a few
 * reads come before the first slot. The read goes on at the next loop
 * turn (node_turn), not at the peer's next ask a retransmission period
 * (20 ms) later. */
static void log_serve(struct rabia_node *n, uint8_t p, uint64_t from, uint64_t until, uint64_t now)
{
    RABIA_ASSERT(p < n->cfg.n && p != n->cfg.self);
    RABIA_ASSERT(from >= 1 && until > from);
    struct log_emit e = {.n = n, .to = p};
    int k = n->log.catchup(n->log.ctx, p, from, until, log_emit, &e);
    n->log_serving[p] = k > 0 || k == -EAGAIN ? now + serving_us(n) : 0;
    if (k > 0) {
        n->log_sent_until[p] = from + (uint64_t)k;
        n->log_sent_us[p] = now;
    }
    /* a read short of `from` goes on at the next turn (log_continue) */
    n->log_cont_from[p] = k == -EAGAIN ? from : 0;
    n->log_cont_until[p] = k == -EAGAIN ? until : 0;
    if (k == 0) {
        n->log_refused_from[p] = from;
        n->log_refused_us[p] = now;
    }
}

/* The reads that stopped short of their first slot last turn go on (one
 * budget per peer and turn); true while one still has not got there. */
static bool log_continue(struct rabia_node *n, uint64_t now)
{
    bool more = false;
    /* the planted bug is the older rules together: going on at the next
     * turn alone lets the read outrun the FETCHes that move it back
     * (sim.bug.log_fetch no longer caught it in 1,200 seeds) */
    if (bugs(n) & NODE_BUG_LOG_FETCH) return false;
    for (uint8_t p = 0; p < n->cfg.n; p++) {
        if (!n->log_cont_from[p]) continue;
        uint64_t from = n->log_cont_from[p], until = n->log_cont_until[p];
        n->st.catchup_log_continued++;
        log_serve(n, p, from, until, now);
        more |= n->log_cont_from[p] != 0;
    }
    return more;
}

uint64_t node_log_span(const struct rabia_node *n)
{
    RABIA_ASSERT(n->core);
    uint64_t next = rabia_core_next_apply(n->core), first = rabia_core_log_first(n->core);
    uint64_t bytes = rabia_core_log_bytes(n->core), slots = next - first;
    RABIA_ASSERT(first <= next);
    if (!n->log_retain_bytes || !bytes || !slots) return n->log_retain;
    /* the bound over the bodies' mean size so far */
    uint64_t span = n->log_retain_bytes / (bytes / slots ? bytes / slots : 1);
    return span < 1 ? 1 : span < n->log_retain ? span : n->log_retain;
}

uint64_t node_log_pin(const struct rabia_node *n, uint64_t now)
{
    uint64_t pin = 0;
    /* Not for a peer that has asked from the same slot for
     * NODE_LOG_PIN_PERIODS serving periods: a peer catching up asks from
     * further on after each slot it applies. Pinned while it asked, a peer
     * (or anyone on the peer port without a cluster secret) sending
     * CATCHUP from one slot every 300 ms kept every log segment after it:
     * 82 segments against 15 on its peers with max-log-size 1mb, growing
     * until the disk was full (found by review). Once the log is released
     * past that slot, the peer gets a snapshot offer instead. */
    for (uint8_t p = 0; p < n->cfg.n; p++)
        if (now < n->log_serving[p] && now - n->log_from_us[p] < NODE_LOG_PIN_PERIODS * serving_us(n) &&
            (!pin || n->log_from[p] < pin))
            pin = n->log_from[p];
    return pin;
}

void node_step(struct rabia_node *n, struct rabia_event *ev)
{
    RABIA_ASSERT(n->core);
    struct rabia_update u;
    ev->now_us = n->env.now_us(n->env.ctx);
    if (ev->type == RABIA_EV_RECEIVE &&
        (ev->msg.type == RABIA_MSG_CATCHUP || ev->msg.type == RABIA_MSG_FETCH || ev->msg.type == RABIA_MSG_PROPOSAL ||
         ev->msg.type == RABIA_MSG_STATE || ev->msg.type == RABIA_MSG_VOTE))
        catchup_from_log(n, &ev->msg, ev->now_us);
    rabia_core_step(n->core, ev, &u);
    handle_update(n, &u);
}

/* ------------------------------------------------------------------ */
/* requests and batches */

/* The time stamped on batches this replica proposes: the state machine's
 * clock (expiry), the same on every replica because it travels in the log. */
static uint64_t wall_ms(struct rabia_node *n)
{
    return n->env.wall_ms ? n->env.wall_ms(n->env.ctx) : 0;
}

const char *node_refusal(struct rabia_node *n)
{
    if (n->failed) return "this replica failed and is stopping";
    return n->has_log ? n->log.refusal(n->log.ctx) : "";
}

/* ------------------------------------------------------------------ */
/* reads by the read index (node_read; core.h, READ INDEX) */

static struct node_readq *rq_at(const struct rabia_node *n, uint32_t k)
{
    RABIA_ASSERT(k < n->rq_n);
    return &n->rq[(n->rq_head + k) % n->cfg.reads_cap];
}

static void rq_pop(struct rabia_node *n)
{
    RABIA_ASSERT(n->rq_n > 0 && n->rq_indexed <= n->rq_assigned && n->rq_assigned <= n->rq_n);
    struct node_readq *q = rq_at(n, 0);
    n->rq_ops_head = q->off + q->len;
    n->rq_head = (n->rq_head + 1) % n->cfg.reads_cap;
    n->rq_n--;
    if (n->rq_indexed) n->rq_indexed--;
    if (n->rq_assigned) n->rq_assigned--;
    if (!n->rq_n) { /* nothing waits: the bytes start over */
        rabia_buf_clear(&n->rq_ops);
        n->rq_ops_head = 0;
    }
}

/* Room for len more bytes of ops: the answered reads' bytes at the front
 * go once they are half the buffer (each byte moves at most once per
 * time the buffer fills: amortized O(1) per read). */
static bool rq_ops_room(struct rabia_node *n, uint32_t len)
{
    size_t live = n->rq_ops.len - n->rq_ops_head;
    if (live + len > NODE_READ_BYTES_MAX) return false;
    if (n->rq_ops_head && (n->rq_ops_head >= n->rq_ops.len / 2 || n->rq_ops.len + len > NODE_READ_BYTES_MAX)) {
        memmove(n->rq_ops.data, n->rq_ops.data + n->rq_ops_head, live);
        for (uint32_t k = 0; k < n->rq_n; k++) rq_at(n, k)->off -= n->rq_ops_head;
        n->rq_ops.len = live;
        n->rq_ops_head = 0;
    }
    return rabia_buf_reserve(&n->rq_ops, len) == 0;
}

/* Every waiting read goes through the log, in the order they came (a
 * round that does not complete, a core that recovers); reads node_read
 * takes later wait until those are answered (fb_out), so none overtakes
 * them. */
static void reads_to_log(struct rabia_node *n)
{
    RABIA_ASSERT(!n->rq_moving);
    n->rq_moving = true; /* a reply given meanwhile takes no read (node_read): the queue is being emptied */
    uint32_t cnt = n->rq_n;
    for (uint32_t k = 0; k < cnt && !n->failed; k++) {
        struct node_readq q = *rq_at(n, k);
        bool own = q.seq == 0; /* no session: under this replica's read session */
        uint64_t cid = own ? n->cfg.read_cid : q.cid, seq = own ? ++n->read_seq : q.seq, ack = own ? seq : q.ack;
        node_request(n, cid, seq, ack, n->rq_ops.data + q.off, q.len, &q.to);
    }
    n->st.reads_logged += cnt;
    n->rq_head = n->rq_n = n->rq_indexed = n->rq_assigned = 0;
    rabia_buf_clear(&n->rq_ops);
    n->rq_ops_head = 0;
    n->ri_round = 0;
    n->rq_moving = false;
}

void node_abandon(struct rabia_node *n, uint32_t conn, int status)
{
    /* the read queue goes whole (nothing is turned again); its reads of
     * conn are answered in the order they came */
    for (uint32_t k = 0; k < n->rq_n; k++) {
        struct node_readq *q = rq_at(n, k);
        if (q->to.conn == conn) n->env.reply(n->env.ctx, &q->to, q->cid, q->seq, status, NULL, 0);
    }
    n->rq_head = n->rq_n = n->rq_indexed = n->rq_assigned = 0;
    rabia_buf_clear(&n->rq_ops);
    n->rq_ops_head = 0;
    /* Every slot before i holds only other connections' waiters, so a
     * deletion's backward shift never carries one of conn's below i. */
    for (uint32_t i = 0; i < n->wcap && n->n_waiters; i++) {
        struct waiter *w = &n->waiters[i];
        while ((w->client_id || w->seq) && w->to.conn == conn) {
            struct waiter copy = *w;
            waiter_del(n, w);
            n->env.reply(n->env.ctx, &copy.to, copy.client_id, copy.seq, status, NULL, 0);
        }
    }
}

/* Answer the reads at the head whose index the state has reached. */
static void reads_run(struct rabia_node *n)
{
    uint64_t applied = rabia_rsm_applied(n->rsm);
    void *sm = rabia_rsm_sm(n->rsm);
    while (n->rq_indexed && !n->failed) {
        struct node_readq *q = rq_at(n, 0);
        if (q->index > applied) break;
        rabia_buf_clear(&n->rq_reply);
        int rc = n->cfg.sm->query(sm, n->rq_ops.data + q->off, q->len, q->wall_ms, &n->rq_reply);
        if (rc > 0) { /* the state machine wants it in the log after all: it and every read behind it */
            reads_to_log(n);
            return;
        }
        struct node_to to = q->to;
        uint64_t cid = q->cid, seq = q->seq;
        rq_pop(n);
        n->st.reads_indexed++;
        if (rc < 0) n->env.reply(n->env.ctx, &to, cid, seq, RABIA_REPLY_BUSY, NULL, 0);
        else n->env.reply(n->env.ctx, &to, cid, seq, RABIA_REPLY_OK, n->rq_reply.data, n->rq_reply.len);
    }
}

/* Once per loop turn: a round open too long is opened again, reads whose
 * rounds never completed go through the log, and the reads that came
 * since the last round get one. When to come back (0: nothing due). */
static uint64_t reads_turn(struct rabia_node *n, uint64_t now)
{
    bool bar = n->bar_done < n->bar_asked; /* node_index_ask's tickets wait for a round */
    if (!n->rq_n && !bar) return 0;
    uint64_t fallback = n->cfg.read_fallback_us ? n->cfg.read_fallback_us : NODE_READ_FALLBACK_US;
    /* the oldest read waited that long for its index (peers answering
     * rounds: fewer than n-f) or for the state to reach it (a log that
     * cannot be written holds the apply): the log path answers, or says
     * why it cannot (node_request's refusal) */
    if (n->rq_n && now - rq_at(n, 0)->t_us >= fallback) {
        note(n, RABIA_LOG_WARN, "%u read(s) waited %" PRIu64 " ms for a read index (%s): answered through the log",
             n->rq_n, fallback / 1000, n->rq_indexed ? "the state did not reach it" : "fewer than n-f answers");
        reads_to_log(n);
        return 0;
    }
    if (n->ri_round && now - n->ri_sent_us >= n->retransmit_us) { /* a question or answers lost */
        n->ri_round = 0;
        n->rq_assigned = n->rq_indexed;
        n->st.read_rounds_retried++;
    }
    if (!n->ri_round && (n->rq_assigned < n->rq_n || bar)) {
        struct rabia_event ev = {.type = RABIA_EV_READ_INDEX, .slot = ++n->ri_next, .now_us = now};
        struct rabia_update u;
        int rc = rabia_core_step(n->core, &ev, &u);
        if (rc == 0) {
            n->ri_round = ev.slot;
            n->ri_sent_us = now;
            n->rq_assigned = n->rq_n;
            n->ri_bar = n->bar_asked;
            n->st.read_rounds++;
        }
        handle_update(n, &u);
        if (rc) { /* recovering: what it knows is no bound */
            reads_to_log(n);
            return 0;
        }
    }
    uint64_t next = n->ri_round ? n->ri_sent_us + n->retransmit_us : 0;
    if (n->rq_n) {
        uint64_t fb = rq_at(n, 0)->t_us + fallback;
        if (!next || fb < next) next = fb;
    }
    return next;
}

uint64_t node_index_ask(struct rabia_node *n)
{
    RABIA_ASSERT(n->core);
    if (n->failed || !rabia_core_reads_ok(n->core)) return 0; /* recovering, or an older peer */
    return ++n->bar_asked;
}

bool node_index_got(const struct rabia_node *n, uint64_t ticket, uint64_t *slot)
{
    RABIA_ASSERT(ticket && ticket <= n->bar_asked);
    if (n->bar_done < ticket) return false;
    *slot = n->bar_index;
    return true;
}

bool node_read(struct rabia_node *n, uint64_t cid, uint64_t seq, uint64_t ack, const uint8_t *op, uint32_t len,
               const struct node_to *to)
{
    RABIA_ASSERT(n->core);
    if (!n->rq || !n->cfg.sm->query || n->failed || n->fb_out || n->rq_moving || n->rq_n >= n->cfg.reads_cap)
        return false;
    if ((!seq && !n->cfg.read_cid) || !rabia_core_reads_ok(n->core)) return false; /* recovering, or an older peer */
    void *sm = rabia_rsm_sm(n->rsm);
    if (n->cfg.sm->query(sm, op, len, 0, NULL) != 0) return false;
    struct node_to t = *to;
    t.read = true;
    if (bugs(n) & NODE_BUG_READ_NOWAIT) { /* planted: the state as it is, no round */
        rabia_buf_clear(&n->rq_reply);
        if (n->cfg.sm->query(sm, op, len, wall_ms(n), &n->rq_reply) != 0) return false;
        n->st.reads_indexed++;
        n->env.reply(n->env.ctx, &t, cid, seq, RABIA_REPLY_OK, n->rq_reply.data, n->rq_reply.len);
        return true;
    }
    if (!rq_ops_room(n, len)) return false;
    RABIA_ASSERT(n->rq_n < n->cfg.reads_cap);
    struct node_readq *q = &n->rq[(n->rq_head + n->rq_n) % n->cfg.reads_cap];
    *q = (struct node_readq){.cid = cid, .seq = seq, .ack = ack, .t_us = n->env.now_us(n->env.ctx),
                             .wall_ms = wall_ms(n), .off = n->rq_ops.len, .len = len, .to = t};
    if (len) memcpy(n->rq_ops.data + n->rq_ops.len, op, len);
    n->rq_ops.len += len;
    n->rq_n++;
    return true;
}

void node_request(struct rabia_node *n, uint64_t cid, uint64_t seq, uint64_t ack, const uint8_t *op, uint32_t len,
                  const struct node_to *to)
{
    uint64_t now = n->env.now_us(n->env.ctx);
    n->last_req_us = now;
    n->arrived++;
    if (cid != n->arrived_cid) { /* a run of one client's requests came in one read */
        n->arrived_cid = cid;
        n->arrived_runs++;
    }
    batcher_set_wall(&n->batcher, wall_ms(n));
    if (seq == 0) { /* a session close (rsm.h): idempotent, nobody waits for it */
        struct rabia_req rq = {.client_id = cid, .seq = 0, .ack = 0, .op = NULL, .op_len = 0};
        if (batcher_add(&n->batcher, &rq, now) < 0) n->st.sessions_close_lost++;
        else n->st.sessions_closed++;
        return;
    }
    int status = RABIA_REPLY_OK;
    const uint8_t *rep;
    size_t rlen;
    if (rabia_rsm_lookup(n->rsm, cid, seq, &status, &rep, &rlen) == 1) {
        struct waiter *stale = waiter_find(n, cid, seq); /* an earlier attempt's: this one answers */
        if (stale) waiter_del(n, stale);
        n->env.reply(n->env.ctx, to, cid, seq, status, rep, rlen); /* a retry of an applied request, or an expired one */
        return;
    }
    const char *why = node_refusal(n);
    if (*why) { /* nothing new enters a log that cannot be written */
        n->st.refused_unavailable++;
        n->env.reply(n->env.ctx, to, cid, seq, RABIA_REPLY_UNAVAILABLE, (const uint8_t *)why, strlen(why));
        return;
    }
    struct waiter *w = waiter_add(n, cid, seq);
    if (!w) {
        note(n, RABIA_LOG_WARN, "too many requests waiting; refusing client %" PRIx64, cid);
        n->env.reply(n->env.ctx, to, cid, seq, RABIA_REPLY_BUSY, NULL, 0);
        return;
    }
    waiter_set_to(n, w, to); /* a retry on another connection takes the answer over */
    struct rabia_req rq = {.client_id = cid, .seq = seq, .ack = ack, .op = op, .op_len = len};
    int rc = batcher_add(&n->batcher, &rq, now);
    if (rc == -EMSGSIZE) { /* never fits: retrying (BUSY) would go on for ever */
        char msg[200];
        int ml = snprintf(msg, sizeof msg,
                          "request of %u bytes does not fit in a batch (batch-max-bytes %u): split it, or raise "
                          "batch-max-bytes on every replica",
                          len, n->batcher.cfg.max_bytes);
        complete(n, cid, seq, RABIA_REPLY_BAD_REQUEST, (const uint8_t *)msg, ml > 0 ? (size_t)ml : 0);
    } else if (rc < 0) {
        complete(n, cid, seq, RABIA_REPLY_BUSY, NULL, 0);
    }
}

/* Whether the open batch is held back now (batch-linger-us), and until
 * when (n->linger_until_us, for node_turn's wake-up).
 *
 * With clients on several replicas, slots go round the proxies (the GLOBAL
 * order), and a proxy cut its next batch as soon as its last one was in a
 * slot: its closed-loop clients split into two cohorts, one in a slot, the
 * other in the next batch, so a slot carried half of a proxy's clients
 * (SET -P 1, 50 connections over 3 replicas: 8.3 requests per slot, -P 16:
 * 131, a sixth of the 800 in flight, whatever the timeout). Holding the
 * open batch while an own batch is undecided, and after it is decided for
 * as long as its clients' next requests keep coming (at most linger_us
 * after the last, 4 x linger_us in all), puts the cohorts back together:
 * the other proxies' slots run meanwhile, so no slot waits for it.
 * The hold while an own batch is undecided applies with the clients on
 * this replica alone too: with window 1 a batch cut meanwhile could not
 * be proposed before that decision anyway, and cut on the timeout it
 * split the clients into three or four cohorts (wal, SET -P 1, 50
 * connections on one replica: 17 requests per slot, 24 with the hold,
 * and 40 -> 32 us of server CPU per request, medians of 5 alternating
 * runs). The wait after the decision runs while another proxy's batch is
 * pending, and with a log also when none is: this replica's clients alone
 * still split into two cohorts (one answered by the slot just decided, one
 * that arrived during it and waits in the open batch), and a durable slot
 * costs a commit on every replica whatever it carries, so the batch waits
 * until the answered cohort is back (as many requests arrived since the
 * decision as answers since the batch was cut; the time bound above holds
 * too). bench/slot_probe.sh, wal, 50 connections on replica 1, three
 * alternating pairs: SET -P 1 19-21 k -> 28-29 k req/s, 25 -> 46-49
 * requests per slot, CPU per request 30-34 -> 22-23 us; -P 16 111-142 k
 * -> 144-156 k; one client, one request at a time, never waits (its
 * answer is the whole cohort, and its next request is it back). In memory the same
 * wait lost 13% at -P 16 and gained nothing at -P 1 (slots there cost
 * little beside the CPU the batch takes), so it is off without a log.
 * Only with window 1 (a wider window runs several own batches at once).
 * An own batch decided but not yet applied here (with a log, a slot not
 * decided by a unanimous exchange waits for its DECIDED record: one
 * replica down, say) counts as undecided: its clients have no answer yet,
 * so none can be back, and the wait after it would end empty. Counted
 * from the decision, it ended after linger_us with the few requests that
 * came meanwhile: with replica 3 of 3 down, wal, SET -P 1, 50 connections
 * on replicas 1 and 2, 12.5 requests per slot and 7 k req/s in two of
 * three runs (bench/degraded.sh). */
static bool linger(struct rabia_node *n, uint64_t now)
{
    RABIA_ASSERT(!n->linger_until_us || n->cfg.linger_us);
    if (!n->cfg.linger_us || !n->one_slot) return false; /* off: no state kept either */
    uint32_t own = rabia_core_own_queued(n->core) + (n->own_unapplied > rabia_rsm_applied(n->rsm));
    if (own) {
        if (n->own_done_us) { /* a batch cut: its clients are answered after this */
            n->answered_mark = n->answered;
            n->answered_runs_mark = n->answered_runs;
        }
        n->own_done_us = 0;
    } else if (!n->own_done_us) {
        n->own_done_us = now;
        n->arrived_mark = n->arrived;
        n->arrived_runs_mark = n->arrived_runs;
        n->cohort_counted = false;
    }
    n->linger_until_us = 0;
    n->linger_own = false;
    n->wait_events = 1;
    if (rabia_core_recovering(n->core)) return false;
    if (own) return n->linger_own = true; /* its decision (a loop turn of its own) ends this */
    bool alone = rabia_core_pending(n->core) == 0; /* no other proxy's batch to run meanwhile */
    if (alone) {
        if (!n->has_log) return false;
        /* with a log, and this replica's clients alone: until the clients
         * its last batch answered are back (every answer since that batch
         * was cut has a request after it), or the time bound below */
        if (n->arrived - n->arrived_mark >= n->answered - n->answered_mark) return false;
        /* what the loop may sleep for (node_wait_events): the requests
         * still to come, or fewer, as many as the runs of answers to one
         * client still unmatched by runs of requests from one (a client
         * that pipelines sends its next requests together, as one read) */
        uint64_t need = (n->answered - n->answered_mark) - (n->arrived - n->arrived_mark);
        uint64_t runs = n->answered_runs - n->answered_runs_mark, came = n->arrived_runs - n->arrived_runs_mark;
        runs = runs > came ? runs - came : 1;
        if (runs < need) need = runs;
        n->wait_events = need > NODE_WAIT_EVENTS_MAX ? NODE_WAIT_EVENTS_MAX : (uint32_t)need;
    }
    uint64_t from = n->last_req_us > n->own_done_us ? n->last_req_us : n->own_done_us;
    uint64_t until = from + n->cfg.linger_us, cap = n->own_done_us + 4ull * n->cfg.linger_us;
    if (until > cap) until = cap;
    if (now >= until) return false;
    RABIA_ASSERT(until > now && until <= cap);
    n->linger_until_us = until;
    if (alone && !n->cohort_counted && batcher_open_count(&n->batcher)) {
        n->cohort_counted = true;
        n->st.linger_cohort++;
    }
    return true;
}

/* Returns whether the core refused a batch (its pending queue is full):
 * then the batcher's deadline means nothing until a slot is decided. */
static bool cut_batches(struct rabia_node *n, uint64_t now)
{
    batcher_set_wall(&n->batcher, wall_ms(n));
    bool idle = rabia_core_inflight(n->core) == 0 && !rabia_core_recovering(n->core);
    for (int guard = 0; guard < 64 && !n->failed; guard++) {
        /* While a batch of ours waits for a slot, the open batch keeps
         * filling (only full ones are cut): cutting on the timeout then only
         * queued many small batches, one per slot. With durable slots (three
         * disk writes each) that cut SET -c 50 to 2.2 requests per slot and
         * 1.2 k requests/s; memory slots rarely outlast the timeout. A full
         * batch is cut by batcher_add and goes regardless. */
        bool lingering = linger(n, now);
        bool hold = rabia_core_own_waiting(n->core) || lingering;
        const struct rabia_buf *b = hold ? batcher_peek(&n->batcher) : batcher_poll(&n->batcher, now, idle);
        if (!b) break;
        struct rabia_event ev = {.type = RABIA_EV_SUBMIT, .body = b->data, .body_len = (uint32_t)b->len,
                                 .now_us = now};
        struct rabia_update u;
        int rc = rabia_core_step(n->core, &ev, &u);
        /* a new id the state counts as applied would be skipped, its
         * clients never answered (replay.c numbers past the applied ones) */
        RABIA_ASSERT(rc != 0 || !rabia_rsm_batch_applied(n->rsm, &u.submitted));
        if (rc == 0 && n->env.submitted) n->env.submitted(n->env.ctx, &u.submitted, b->data, (uint32_t)b->len);
        handle_update(n, &u);
        if (rc) return true; /* pending queue full: keep it, retry next turn */
        batcher_pop(&n->batcher);
        idle = false;
    }
    return false;
}

/* Group commit: everything appended since the last write goes in one
 * write, started when none is in flight. */
static void flush_log(struct rabia_node *n, uint64_t now)
{
    if (!n->has_log || n->write_busy || n->failed) return;
    if (!n->urgent_pending) {
        /* every persist record is durable: sends held behind the write that
         * just finished leave now; lazy records wait, but not for long,
         * for a write that something needs (node_turn wakes at their deadline) */
        if (n->held_open.len) release(n, &n->held_open);
        if (!n->lazy_since_us || now < n->lazy_since_us + NODE_LAZY_US) return;
    }
    int rc = n->log.write(n->log.ctx);
    if (rc == NODE_WRITE_NONE) {
        /* nothing to write: sends held only behind the write that just
         * finished leave now */
        if (n->held_open.len) release(n, &n->held_open);
        n->urgent_pending = false;
        n->lazy_since_us = 0;
        return;
    }
    if (rc == -EAGAIN) return; /* waiting for a segment: the refusal says why */
    if (rc < 0) {
        n->failed = true; /* the log said why and stops the replica */
        return;
    }
    /* the sends wait for every record before them: when a large group goes
     * out in parts, they stay held until its last part */
    RABIA_ASSERT(n->held_flight.len == 0);
    n->flight_whole = rc == NODE_WRITE_ALL;
    n->flight_urgent = n->urgent_pending;
    if (n->flight_whole) { /* everything appended so far is in this write */
        n->rec_flight_end = n->rec_appended;
        n->res_flight = n->res_appended;
        n->urgent_pending = false;
        n->lazy_since_us = 0;
    } else {
        n->urgent_pending = true; /* the rest of a large group follows at once */
    }
    if (rc == NODE_WRITE_ALL) {
        struct rabia_buf t = n->held_flight;
        n->held_flight = n->held_open;
        n->held_open = t;
        rabia_buf_clear(&n->held_open);
    }
    n->write_busy = true;
}

uint32_t node_wait_events(const struct rabia_node *n)
{
    RABIA_ASSERT(n->wait_events >= 1 && n->wait_events <= NODE_WAIT_EVENTS_MAX);
    return n->wait_events;
}

bool node_log_gates(const struct rabia_node *n)
{
    RABIA_ASSERT(!n->write_busy || n->has_log);
    return n->write_busy && n->flight_urgent && !n->failed;
}

uint64_t node_turn(struct rabia_node *n)
{
    RABIA_ASSERT(n->core);
    uint64_t now = n->env.now_us(n->env.ctx);
    if (n->next_tick_us && now >= n->next_tick_us) {
        n->next_tick_us = 0;
        struct rabia_event ev = {.type = RABIA_EV_TICK};
        node_step(n, &ev);
    }
    uint64_t rdue = reads_turn(n, now);
    bool refused = cut_batches(n, now);
    bool reading = n->has_log && log_continue(n, now);
    flush_log(n, now);
    uint64_t next = reading ? now : n->next_tick_us;
    if (rdue && (!next || rdue < next)) next = rdue;
    if (n->has_log && !n->write_busy && !n->urgent_pending && n->lazy_since_us) {
        uint64_t due = n->lazy_since_us + NODE_LAZY_US;
        if (!next || due < next) next = due;
    }
    uint64_t bd = batcher_deadline(&n->batcher);
    /* while an own batch waits for a slot, or the core is full, a decided
     * slot (a loop turn of its own) is what lets the next batch in: waking
     * for the batcher's deadline would only spin */
    if (n->linger_until_us && bd) { /* held (linger): cut when it ends */
        if (!next || n->linger_until_us < next) next = n->linger_until_us;
        /* ... or when the clients are back (wait_events): nothing to do
         * before, and the linger's own deadline bounds the wait */
        RABIA_ASSERT(next && next <= n->linger_until_us);
    } else {
        n->wait_events = 1; /* no open batch held: wake for the first event */
        if (bd && (!next || bd < next) && !refused && !rabia_core_own_waiting(n->core) && !n->linger_own) next = bd;
    }
    return next;
}

/* Answer the held early slot when `durable` says its PROPOSAL landed (or
 * forget it when a snapshot or its own record applied it). */
static void early_settle(struct rabia_node *n, bool durable)
{
    if (!n->early.set) return;
    if (n->early.slot <= rabia_rsm_applied(n->rsm)) {
        n->early.set = false;
        return;
    }
    if (!durable || n->early.slot != rabia_rsm_applied(n->rsm) + 1) return;
    n->early.set = false;
    apply_slot(n, n->early.slot, &n->early.id, n->early.body.data, (uint32_t)n->early.body.len);
    n->st.answered_early++;
}

void node_log_decided(struct rabia_node *n, uint64_t slot, const struct rabia_batch_id *id, const uint8_t *body,
                      uint32_t len)
{
    RABIA_ASSERT(n->has_log && n->write_busy);
    if (bugs(n) & NODE_BUG_REPLY_EARLY) return; /* applied already */
    /* a held early slot before this one: its PROPOSAL precedes this DECIDED
     * record in the log, so it is durable too */
    if (n->early.set && n->early.slot < slot) early_settle(n, true);
    apply_slot(n, slot, id, body, len); /* replies now report durable decisions */
    early_settle(n, false);
}

void node_log_written(struct rabia_node *n)
{
    RABIA_ASSERT(n->has_log && n->write_busy);
    n->write_busy = false;
    if (n->flight_whole) n->rec_durable = n->rec_flight_end; /* everything appended before the write */
    if (!n->failed) early_settle(n, n->early.set && n->early.rec <= n->rec_durable);
    if (n->flight_whole && n->res_flight > n->res_durable) n->res_durable = n->res_flight;
    if (!n->failed) release(n, &n->held_flight);
}

/* ------------------------------------------------------------------ */
/* snapshots */

/* After a snapshot install: answer every waiting request that the restored
 * state applied (from its sessions). Some were in batches of this replica
 * that were decided but not yet applied here when the snapshot replaced the
 * log; their clients would otherwise wait for ever. O(waiter table), once
 * per install (itself O(state)). */
static void answer_from_sessions(struct rabia_node *n)
{
    struct key {
        uint64_t cid, seq;
    } *ks = malloc((size_t)n->n_waiters * sizeof(*ks) + 1);
    if (!ks) {
        note(n, RABIA_LOG_ERROR, "snapshot install: out of memory answering waiting requests");
        return;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n->wcap && k < n->n_waiters; i++) {
        const struct waiter *w = &n->waiters[i];
        int status;
        const uint8_t *rep;
        size_t rlen;
        if ((w->client_id || w->seq) && rabia_rsm_lookup(n->rsm, w->client_id, w->seq, &status, &rep, &rlen) == 1)
            ks[k++] = (struct key){w->client_id, w->seq};
    }
    n->applying_holders = majority(n->cfg.n); /* slots the snapshot covers: a majority had them */
    for (uint32_t j = 0; j < k; j++) { /* no apply in between: replies stay valid */
        int status = RABIA_REPLY_OK;
        const uint8_t *rep = NULL;
        size_t rlen = 0;
        (void)rabia_rsm_lookup(n->rsm, ks[j].cid, ks[j].seq, &status, &rep, &rlen);
        complete(n, ks[j].cid, ks[j].seq, status, rep, rlen);
    }
    if (k) note(n, RABIA_LOG_INFO, "snapshot install: %u waiting request(s) answered from the restored sessions", k);
    free(ks);
}

int node_install_snapshot(struct rabia_node *n, const uint8_t *data, size_t len, uint64_t slot)
{
    uint64_t own = 0;
    if (rabia_rsm_snapshot_slot(data, len, &own) || own != slot) return -EINVAL;
    if (slot <= rabia_rsm_applied(n->rsm) || slot < rabia_core_next_apply(n->core)) return -EALREADY;
    int rc = rabia_rsm_restore(n->rsm, data, len);
    if (rc == RABIA_E_FEATURE) {
        /* a state this build cannot carry on from (kv/README.md "Feature
         * levels"): every peer's snapshot holds it, a retry refuses again */
        char why[240];
        snprintf(why, sizeof why, "installing a peer's snapshot of slot %" PRIu64 " failed: %s", slot,
                 rabia_strerror(rc));
        fatal(n, why);
    }
    if (rc) return rc;
    RABIA_ASSERT(rabia_rsm_applied(n->rsm) == slot);
    struct rabia_event ev = {.type = RABIA_EV_SNAPSHOT_INSTALLED, .slot = slot};
    node_step(n, &ev);
    answer_from_sessions(n);
    reads_run(n);
    return 0;
}

/* ------------------------------------------------------------------ */
/* lifecycle */

struct rabia_node *node_create(const struct node_cfg *cfg, const struct node_env *env)
{
    if (!cfg->waiters_cap || (cfg->waiters_cap & (cfg->waiters_cap - 1)) || !cfg->n || cfg->self >= cfg->n ||
        !env->now_us || !env->send || !env->reply || !env->snapshot_to || !env->fatal)
        return NULL;
    struct rabia_node *n = calloc(1, sizeof(*n));
    if (!n) return NULL;
    n->cfg = *cfg;
    n->env = *env;
    n->wcap = cfg->waiters_cap < WAITERS_START ? cfg->waiters_cap : WAITERS_START;
    n->applying_holders = majority(cfg->n); /* node_reply_holders before any apply */
    n->waiters = waiters_alloc(n->wcap);
    n->rsm = rabia_rsm_create(cfg->sm, &cfg->rsm);
    n->batcher_ok = n->waiters && batcher_init(&n->batcher, &cfg->batch) == 0;
    /* a pool frame holds a BATCH (or PROPOSAL) frame of a full batch; larger
     * frames (retransmitted DECIDED bodies of another proxy's larger batch) copy */
    if (env->send_shared) {
        /* at most 64 MiB of address space (batch-max-bytes goes to 8 MiB);
         * the pool hands out the frame freed last, so only as many frames
         * as are held at once become resident */
        size_t fsz = (size_t)cfg->batch.max_bytes + 4096;
        uint32_t cnt = NODE_FRAMES;
        while (cnt > 3 && (size_t)cnt * fsz > ((size_t)64 << 20)) cnt--;
        n->frames_ok = buf_pool_init(&n->frames, fsz, cnt) == 0;
    }
    if (cfg->reads_cap) n->rq = calloc(cfg->reads_cap, sizeof(*n->rq));
    if (!n->waiters || !n->rsm || !n->batcher_ok || (env->send_shared && !n->frames_ok) || (cfg->reads_cap && !n->rq)) {
        node_destroy(n);
        return NULL;
    }
    return n;
}

void node_destroy(struct rabia_node *n)
{
    if (!n) return;
    if (n->batcher_ok) batcher_free(&n->batcher);
    rabia_core_destroy(n->core);
    if (n->rsm) rabia_rsm_destroy(n->rsm);
    if (n->frames_ok) { /* the driver dropped its references first (its loop went) */
        held_walk(n, &n->held_open, false);
        held_walk(n, &n->held_flight, false);
        RABIA_ASSERT(buf_pool_in_use(&n->frames) == 0);
        buf_pool_destroy(&n->frames);
    }
    rabia_buf_free(&n->scratch);
    rabia_buf_free(&n->held_open);
    rabia_buf_free(&n->held_flight);
    rabia_buf_free(&n->early.body);
    rabia_buf_free(&n->rq_ops);
    rabia_buf_free(&n->rq_reply);
    free(n->rq);
    free(n->waiters);
    free(n);
}

int node_reset_state(struct rabia_node *n)
{
    RABIA_ASSERT(!n->core);
    struct rabia_rsm *fresh = rabia_rsm_create(n->cfg.sm, &n->cfg.rsm);
    if (!fresh) return -ENOMEM;
    rabia_rsm_destroy(n->rsm);
    n->rsm = fresh;
    return 0;
}

static void restore_step(struct rabia_node *n, struct rabia_event *ev)
{
    struct rabia_update u;
    ev->now_us = n->env.now_us(n->env.ctx);
    if (rabia_core_step(n->core, ev, &u)) n->st.restore_refused++;
    handle_update(n, &u);
}

int node_start(struct rabia_node *n, const struct rabia_config *cc, const struct node_log *log,
               const struct node_restore *rest)
{
    RABIA_ASSERT(!n->core);
    RABIA_ASSERT(cc->n == n->cfg.n && cc->self == n->cfg.self);
    n->core = rabia_core_create(cc);
    if (!n->core) return -ENOMEM;
    n->one_slot = cc->window == 1;
    n->wait_events = 1;
    n->incarnation = cc->incarnation;
    n->catchup_chunk = cc->catchup_chunk;
    n->log_retain = cc->log_retain;
    n->log_retain_bytes = cc->log_retain_bytes;
    n->retransmit_us = cc->retransmit_us;
    if (log) {
        n->log = *log;
        n->has_log = true;
        if (cc->recovering) { /* the log says so before anything else */
            struct rabia_msg mk = {.type = RABIA_MSG_HORIZON_REQ, .from = n->cfg.self, .u64 = cc->incarnation};
            if (n->log.append(n->log.ctx, NODE_REC_SENT, 0, &mk)) return -ENOMEM;
            n->rec_appended++;
            n->urgent_pending = true;
        }
    }
    if (rest) {
        RABIA_ASSERT(rest->applied == rabia_rsm_applied(n->rsm));
        if (rest->horizon) { /* first: instances made below it must be mute */
            struct rabia_event ev = {.type = RABIA_EV_RESTORE};
            ev.msg = (struct rabia_msg){.type = RABIA_MSG_HORIZON, .from = n->cfg.self, .slot = rest->horizon};
            restore_step(n, &ev);
        }
        if (rest->applied) {
            struct rabia_event ev = {.type = RABIA_EV_SNAPSHOT_INSTALLED, .slot = rest->applied};
            restore_step(n, &ev);
        }
        for (uint32_t i = 0; i < rest->n; i++) {
            struct rabia_event ev = {.type = RABIA_EV_RESTORE, .msg = rest->msgs[i]};
            restore_step(n, &ev);
        }
        if (n->st.restore_refused) /* cannot happen within the core's restore capacity (PQ_CAP) */
            note(n, RABIA_LOG_ERROR, "%" PRIu64 " record(s) of the log could not be resumed (more own batches than "
                 "the core takes back): a slot that decided one of them waits for its body", n->st.restore_refused);
    }
    struct rabia_event ev = {.type = RABIA_EV_TICK};
    node_step(n, &ev);
    return 0;
}

struct rabia_core *node_core(struct rabia_node *n) { return n->core; }
struct rabia_rsm *node_rsm(struct rabia_node *n) { return n->rsm; }
const struct batcher *node_batcher(const struct rabia_node *n) { return &n->batcher; }

void node_stats(const struct rabia_node *n, struct node_stats *out)
{
    *out = n->st;
    out->waiters = n->n_waiters;
    out->frames_in_use = n->frames_ok ? buf_pool_in_use(&n->frames) : 0;
    out->reads_waiting = n->rq_n;
}
