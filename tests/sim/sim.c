/* Deterministic simulator: n replicas running rabiad's own runtime
 * (replica/node.c: waiters, batcher, the core, the durability rules, apply
 * and replies; replica/replay.c: recovery from the log) over a simulated
 * network, clock, disk and clients, driven by one seed. Only the world is
 * fake: sim.c keeps the network, disk, clock, faults, clients and checkers. Faults (jitter, link breaks, partitions, crashes with restarts,
 * pauses) are injected during a first phase, then healed; after every run
 * the checkers below must hold, and any failing seed replays exactly.
 *
 * Checked per run:
 *   agreement      every replica applies the same value in each slot
 *   validity       a decided batch was proposed in that slot by a majority
 *                  and is byte-for-byte the batch its proxy submitted
 *   exactly-once   no (client, seq) reaches the state machine twice
 *   batch ids      no proxy numbers a new batch with an id already decided
 *   state          equal state hash at equal applied slot
 *   linearizable   the KV clients' history (Wing & Gong, per key)
 *   liveness       after healing, every request completes within a bound,
 *                  every slot within MAX_PHASES phases, all replicas converge
 *   anomalies      no core counted a protocol anomaly (peers are honest here)
 *   no contradiction  no replica sends a PROPOSAL, STATE or VOTE that differs
 *                  from what it sent before for that slot and phase
 *   sessions       no SESSION_EXPIRED answer in a run whose clients sent fewer
 *                  OPENs than the session table holds (no eviction possible)
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "codec.h"
#include "hello.h"
#include "invariant.h"
#include "kv.h"
#include "linearize.h"
#include "logcatch.h"
#include "node.h"
#include "rabia/core.h"
#include "rabia/state_machine.h"
#include "replay.h"
#include "rsm.h"
#include "snapsched.h"
#include "snapstream.h"

#define MS 1000ull
#define MAX_N 7
#define MAX_CLIENTS 8
#define NKEYS 4
#define T_HEAL (800 * MS)      /* faults stop, everything heals */
#define T_STOP (1500 * MS)     /* clients stop issuing */
#define LIVENESS_US (1500 * MS)/* after healing, a request completes within this */
#define T_END (T_STOP + LIVENESS_US + 500 * MS)
#define CLIENT_TIMEOUT (40 * MS)
#define MAX_PHASES 30          /* P(correct core needs more) < 2^-29 per slot */
#define BATCH_MAX_REQS 8
#define BATCH_DELAY (500)      /* us a proxy waits to fill a batch */
#define WAITERS 256            /* requests waiting for their slot, per replica */

/* planted bugs outside the core */
#define SIM_BUG_STALE_READ (1u << 16)  /* GET served from local state */
#define SIM_BUG_FORGET_VOTE (1u << 17) /* a restarted replica votes at once (no horizon rule) */
/* planted bugs of the durable mode (--durable) */
#define SIM_BUG_SEND_EARLY (1u << 18)  /* messages leave before their records are durable */
#define SIM_BUG_SKIP_RECORD (1u << 19) /* recovery skips a damaged record instead of refusing the log */
#define SIM_BUG_FORGET_RESERVE (1u << 20) /* recovery ignores RESERVE records: a restart may reuse a batch id */
#define SIM_BUG_REPLY_EARLY (1u << 21) /* decided slots applied (and answered) before they are durable */
#define SIM_BUG_FORGET_REF (1u << 22)  /* the log releases an own BATCH record a DECIDED_REF still needs */
#define SIM_BUG_FRAME_NOREF (1u << 23) /* a connection holds a shared frame without a reference of its own */
#define SIM_BUG_KEEP_OLD_LINK (1u << 24) /* a new life's HELLO leaves its old connection delivering (hello.c) */
#define SIM_BUG_CATCHUP_BODY (1u << 25) /* catch-up from the log sends a decision with another batch's body */
#define SIM_OUT_MAX (8u << 10) /* a peer link's output limit (rabiad: io/loop's 64 MiB per connection, scaled to the world) */
#define SIM_BUG_LOG_FETCH (1u << 26)    /* the log serves a FETCH past the slot the peer catches up from (node.c) */
#define SIM_CLUSTER_ID 0x51AC1u         /* what HELLO announces */
#define SIM_BUG_READ_NOWAIT (1u << 27)  /* node_read answers from the state at once, no read-index round (node.c) */
#define SIM_BUG_LOG_REFUSAL (1u << 28)  /* old-slot messages hold a snapshot back after the log refused (node.c) */
#define SIM_BUG_FIRST_START (1u << 29)  /* peers take a FIRST_START without hello_first_start_ok (--wipes) */

enum mix_flags { M_JITTER = 1, M_LINKS = 2, M_PARTITION = 4, M_CRASH = 8, M_PAUSE = 16 };
static const struct {
    const char *name;
    unsigned flags;
} MIXES[] = {
    {"calm", 0},
    {"jitter", M_JITTER},
    {"links", M_LINKS | M_JITTER},
    {"partition", M_PARTITION},
    {"crash", M_CRASH},
    {"pause", M_PAUSE | M_JITTER},
    {"all", M_JITTER | M_LINKS | M_PARTITION | M_CRASH | M_PAUSE},
};
#define N_MIXES (sizeof MIXES / sizeof MIXES[0])

/* ------------------------------------------------------------------ */
/* deterministic randomness */

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t rng_state;
static uint64_t rnd(void) { return splitmix(&rng_state); }
static uint64_t rnd_range(uint64_t lo, uint64_t hi) { return lo + rnd() % (hi - lo + 1); }
/* durable mode's local snapshots draw from a stream of their own: until a
 * replica restarts from a log with a released prefix, a run takes the steps
 * it took before they were modelled (planted bugs' seeds stay where they were) */
static uint64_t snap_rng_state;
static uint64_t snap_rnd_range(uint64_t lo, uint64_t hi) { return lo + splitmix(&snap_rng_state) % (hi - lo + 1); }
/* and so do the connections holding shared frames (env_send_shared) */
static uint64_t share_rng_state;
/* and the delays of snapshot chunks (replica/snapstream.c: a transfer sends
 * many where one message went before) */
static uint64_t xfer_rng_state;

/* ------------------------------------------------------------------ */
/* run configuration and result */

struct run_cfg {
    uint64_t seed;
    uint8_t n;
    uint32_t window;
    uint32_t linger_us; /* batch-linger-us (node.c): --linger, else 200 (rabiad's default) or 0 by seed */
    uint8_t policy;
    uint32_t log_retain;
    uint64_t log_retain_bytes; /* by seed: a quarter of them keep at most 8 KiB of bodies (a few slots) */
    uint32_t max_sessions; /* apply layer's session table; 0: tight_sessions decides */
    uint32_t tight_sessions; /* 0: 64 sessions, else clients - tight_sessions */
    unsigned mix;
    uint32_t bugs;
    int64_t trace_slot; /* -1: none */
    int verbose; /* --faults: log every fault and recovery */
    bool durable; /* --durable: replicas keep a simulated write-ahead log (replica/node.c's rules) */
    int clients_on; /* --clients-on R: every client starts at replica R (0: spread at random) */
    uint64_t snap_log_bytes;   /* durable: max-log-size (snapsched.c): log bytes that call for a local snapshot */
    uint64_t snap_interval_us; /* ... snapshot-interval-s (0: by size only) */
    uint64_t snap_bytes_fixed; /* --snap-bytes: snap_log_bytes for every seed (0: by seed) */
    int64_t linger_fixed;      /* --linger: linger_us for every seed (-1: by seed) */
    int64_t retain_bytes_fixed; /* --log-retain-bytes: for every seed (-1: by seed) */
    bool no_log_pin;           /* --no-log-pin: snapshots release the log whatever peers still read from it */
    bool no_read_index;        /* --no-read-index: every GET through the log (read-index no) */
    int old_reads_at;          /* --old-read-answers R: replica R (1-based) answers read-index rounds as
                                  builds before the probe did (core.h READ INDEX); 0: none */
    int start_level;           /* the stores' feature level at creation: this build's on half the seeds (reads
                                  by the read index from the start), 0 on the others (a typed FEATURELEVEL
                                  raises it during the run) */
    uint32_t seg_recs;   /* durable: log records per segment, the unit the log releases */
    uint32_t xfer_chunk; /* snapshot transfers: bytes per chunk (snapstream.h; rabiad: 1 MiB) */
    uint64_t xfer_rate;  /* ... bytes per second out of a replica (transfer-rate; 0: no cap) */
    bool wipes;          /* --wipes: some crashes lose the whole data dir and the replica is started again
                            without --rejoin (an operator's mistake); its peers must refuse it until the
                            operator, told so, empties it and starts it with --rejoin */
};

struct run_result {
    bool failed;
    char why[512];
    uint64_t slots, nulls, fast, decided_own, max_phase, ops_ok, ops_unknown, crashes, snapshots;
    uint64_t restarts;      /* crashed replicas started again (recovering) */
    uint64_t restarts_open; /* ... while a slot they had voted in was still open */
    uint64_t hz_splits;     /* n >= 5: horizon arranged from peers that missed the last messages */
    uint64_t expired;       /* client requests answered SESSION_EXPIRED */
    uint64_t crash_all;     /* durable: crashes that took every replica down at once */
    uint64_t torn;          /* durable: crashes that lost a write in flight */
    uint64_t damaged;       /* durable: logs found damaged at restart (rebuilt from peers) */
    uint64_t disk_faults;   /* durable: latency spikes and full-disk periods */
    uint64_t restored;      /* durable: records handed back to a core at restart */
    uint64_t local_snaps;   /* durable: snapshots a replica wrote of its own state */
    uint64_t released;      /* durable: log segments released behind them */
    uint64_t restarts_tail; /* durable: restarts from a log whose prefix was released */
    uint64_t by_ref;        /* durable: DECIDED records written without their body (DECIDED_REF) */
    uint64_t frames_shared, frames_copied; /* the nodes' frame pools (env_send_shared) */
    uint64_t linger_cohort; /* open batches held for the clients an own decision answered (node.c linger) */
    uint64_t reads_indexed, reads_logged, read_rounds, read_retried; /* node_read (node.c), the read index */
    uint64_t read_old;         /* answers to rounds that kept the probe (an older build's) */
    uint64_t xfers, xfer_chunks, xfer_dropped, xfer_stopped; /* snapshot transfers started, chunks delivered,
                                                              dropped, stopped by a decline */
    uint64_t xfer_rate_waits, xfer_rate_lifted; /* chunks held by the rate cap; transfers it let go */
    uint64_t xfer_cap_queued; /* transfers that waited to start under the cap */
    uint64_t catchup_log_slots; /* durable: decided slots peers got from a log, below the retained one */
    uint64_t catchup_log_requests; /* ... requests the logs read for (-EAGAIN ones included) */
    uint64_t catchup_fetch_held;   /* ... FETCHes left to such a catch-up (node.c) */
    uint64_t catchup_continued;    /* ... reads that went on at the next turn, short of their first slot */
    uint64_t adopted;         /* decisions the cores adopted from peers (DECISION, catch-up) */
    uint64_t catchup_deduped; /* catch-up decisions a core did not send again (core_on_catchup) */
    uint64_t unanimous;       /* slots the cores decided by a unanimous exchange (no DECISION sent) */
    uint64_t props_held;      /* PROPOSALs for the slot just past a core's window, held (core_on_consensus) */
    uint64_t out_full;      /* links closed by their sender: a paused peer let SIM_OUT_MAX bytes pile up */
    uint64_t wipes;         /* --wipes: data dirs lost and started again without --rejoin */
    uint64_t first_refused; /* ... connections of such a life its peers refused (FIRST_START) */
    uint32_t sessions;      /* max_sessions used */
    uint32_t clients;
    uint64_t events;
};

/* ------------------------------------------------------------------ */
/* events */

enum ev_kind {
    E_DELIVER, E_TICK, E_CLIENT_NEXT, E_CLIENT_TIMEOUT, E_FAULT, E_RESTART, E_HEAL_LINK, E_CONNECT,
    E_CRASH, /* a crash attempt (follow-up of a crash fault) */
    E_DISK,  /* durable: a log write completes (a: node, x: life, y: write id) */
    E_CRASH_NOW, /* durable: the cluster dies at the moment a client was answered (armed by a crash fault) */
    E_OPFIX, /* --wipes: the operator, told by a refusal, empties replica a's data dir and starts it with
                --rejoin (x: the refused life) */
};

struct ev {
    uint64_t t, seq;
    uint8_t kind;
    uint8_t a, b;          /* from/to or node or client */
    uint64_t x, y;         /* link epoch, incarnation, attempt... */
    uint8_t *data;
    uint32_t len;
};

struct heap {
    struct ev *v;
    size_t n, cap;
    uint64_t seq;
};

static bool ev_less(const struct ev *a, const struct ev *b)
{
    return a->t != b->t ? a->t < b->t : a->seq < b->seq;
}

static void heap_push(struct heap *h, struct ev e)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 1024;
        h->v = realloc(h->v, h->cap * sizeof(*h->v));
        if (!h->v) abort();
    }
    e.seq = h->seq++;
    size_t i = h->n++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (!ev_less(&e, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = e;
}

static struct ev heap_pop(struct heap *h)
{
    struct ev top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct ev *best = &last;
        if (l < h->n && ev_less(&h->v[l], best)) {
            m = l;
            best = &h->v[l];
        }
        if (r < h->n && ev_less(&h->v[r], best)) m = r;
        if (m == i) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* ------------------------------------------------------------------ */
/* the test state machine: KV plus a record of which (client, seq) reached
 * it, kept in its snapshot so restored replicas still know */

struct tsm {
    void *kv;
    uint64_t *seen; /* sorted (client << 32 | seq) */
    size_t n_seen, cap;
    uint64_t seen_sum; /* sum of seen_term over seen: the state hash's part, kept up to date */
    bool *double_apply;
};
static uint64_t seen_term(uint64_t k) { return XXH64(&k, sizeof k, 0x5EE5); }
static bool g_double_apply;
static uint64_t g_watch_client; /* RABIA_SIM_CLIENT: print every apply of this session's requests */
static uint64_t g_double_key;

/* The feature level every replica's store starts at (run_cfg.start_level):
 * every replica creates its store alike, so it is the same initial state
 * on all of them, as a first FEATURELEVEL operation would make it. */
static int g_start_level;
static void *tsm_create(void)
{
    struct tsm *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->kv = rabia_sm_kv.create();
    if (!t->kv) {
        free(t);
        return NULL;
    }
    if (g_start_level) {
        char lv[8];
        snprintf(lv, sizeof lv, "%d", g_start_level);
        const char *argv[2] = {"FEATURELEVEL", lv};
        struct rabia_buf op = {0}, rep = {0};
        if (rabia_kv_encode_argv(&op, 2, argv, NULL) || rabia_sm_kv.apply(t->kv, op.data, op.len, &rep)) abort();
        rabia_buf_free(&op);
        rabia_buf_free(&rep);
    }
    return t;
}
static void tsm_destroy(void *p)
{
    struct tsm *t = p;
    rabia_sm_kv.destroy(t->kv);
    free(t->seen);
    free(t);
}
static bool tsm_insert(struct tsm *t, uint64_t k)
{
    size_t lo = 0, hi = t->n_seen;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->seen[mid] < k) lo = mid + 1;
        else hi = mid;
    }
    if (lo < t->n_seen && t->seen[lo] == k) return false;
    if (t->n_seen == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 256;
        t->seen = realloc(t->seen, t->cap * sizeof(uint64_t));
        if (!t->seen) abort();
    }
    memmove(&t->seen[lo + 1], &t->seen[lo], (t->n_seen - lo) * sizeof(uint64_t));
    t->seen[lo] = k;
    t->n_seen++;
    t->seen_sum += seen_term(k);
    return true;
}
static int tsm_apply(void *p, const uint8_t *op, size_t len, struct rabia_buf *reply)
{
    struct tsm *t = p;
    if (len < 16) return rabia_buf_append(reply, "-ERR short\r\n", 12);
    uint64_t client, seq;
    memcpy(&client, op, 8);
    memcpy(&seq, op + 8, 8);
    uint64_t k = client << 32 | seq;
    if (!tsm_insert(t, k)) {
        g_double_apply = true;
        g_double_key = k;
    }
    return rabia_sm_kv.apply(t->kv, op + 16, len - 16, reply);
}
/* The KV store's reads by the read index (node_read): the (client, seq)
 * header stays out of the state, as it is not applied. */
static int tsm_query(void *p, const uint8_t *op, size_t len, uint64_t now_ms, struct rabia_buf *reply)
{
    struct tsm *t = p;
    if (len < 16) return 1;
    return rabia_sm_kv.query(t->kv, op + 16, len - 16, now_ms, reply);
}
static int tsm_snapshot(void *p, struct rabia_buf *out)
{
    struct tsm *t = p;
    int rc = rabia_buf_put_u64(out, t->n_seen);
    for (size_t i = 0; !rc && i < t->n_seen; i++) rc = rabia_buf_put_u64(out, t->seen[i]);
    return rc ? rc : rabia_sm_kv.snapshot(t->kv, out);
}
static int tsm_restore(void *p, const uint8_t *d, size_t len)
{
    struct tsm *t = p;
    if (len < 8) return -EINVAL;
    uint64_t n;
    memcpy(&n, d, 8);
    if (n > (len - 8) / 8) return -EINVAL;
    int rc = rabia_sm_kv.restore(t->kv, d + 8 + n * 8, len - 8 - n * 8);
    if (rc) return rc;
    uint64_t *s = malloc((n ? n : 1) * sizeof(uint64_t));
    if (!s) return -ENOMEM;
    memcpy(s, d + 8, n * 8);
    free(t->seen);
    t->seen = s;
    t->n_seen = t->cap = n;
    t->seen_sum = 0;
    for (size_t i = 0; i < n; i++) t->seen_sum += seen_term(s[i]);
    return 0;
}
/* The KV store's incremental hash with the seen set's sum: what rabiad's
 * KV replicas run (the incremental path), checked against a recomputation
 * from scratch whenever a snapshot is restored (rabia_rsm_hash_mismatches)
 * and at the end of every run (check_hash_roundtrip). */
static int tsm_state_hash(void *p, uint64_t *out)
{
    struct tsm *t = p;
    uint64_t kvh;
    int rc = rabia_sm_kv.state_hash(t->kv, &kvh);
    if (rc) return rc;
    uint64_t v[3] = {t->n_seen, t->seen_sum, kvh};
    *out = XXH64(v, sizeof v, 0x75736d);
    return 0;
}
static void tsm_begin(void *p, const struct rabia_sm_batch *b)
{
    rabia_sm_kv.begin(((struct tsm *)p)->kv, b);
}
static const struct rabia_sm_ops TSM = {.name = "sim-kv", .create = tsm_create, .destroy = tsm_destroy, .apply = tsm_apply, .snapshot = tsm_snapshot, .restore = tsm_restore, .begin = tsm_begin, .state_hash = tsm_state_hash, .query = tsm_query};

/* ------------------------------------------------------------------ */
/* world */

/* durable mode: a replica's disk, the log under replica/node.c. Records
 * [0, durable) are on it; [durable, flight_end) are the write in flight;
 * the rest is the group being formed. r[0] is the oldest record not yet
 * released; segments (run_cfg.seg_recs records each) count from it. */
struct drec {
    uint8_t type;            /* NODE_REC_SENT, BATCH, DECIDED (replica/node.h) */
    uint64_t slot;
    struct rabia_msg m;      /* m.body points at body */
    uint8_t *body;
};
struct sdisk {
    struct drec *r;
    size_t n, cap, durable, flight_end;
    bool busy;
    uint64_t wid;            /* names the write in flight's completion */
    uint64_t batch_inc;      /* the log's batch incarnation (0: no log yet) */
    uint8_t *snap;           /* the newest snapshot file (its own, or installed from a peer) */
    size_t snap_len;
    uint64_t snap_slot;
    struct rabia_buf snap_new; /* a local snapshot being written (rabiad's forked child), of slot snap_new_slot */
    uint64_t snap_new_slot;
    uint64_t snap_done_at;   /* ... durable as a file from then on */
    struct snapsched sched;  /* when to snapshot: replica/snapsched.c, as durable.c (snapsched_soon: a transfer
                                waits for a snapshot file the core's log goes on from) */
    uint64_t log_bytes;      /* bytes of records appended, ever (the schedule's log size) */
    uint64_t released;       /* records this log released (0: a restart replays it whole) */
    uint64_t full_until;     /* ENOSPC: writes stall, requests refused */
    uint64_t slow_until;     /* a latency spike */
    bool damaged;            /* a flipped bit or misdirected write in the middle of the log */
    bool began_recovering;   /* the log's first segment says it began a recovery (wal.c header byte 41:
                                durable when the log is made, before any record); gone with that segment */
};

struct world;

struct node {
    struct world *w;        /* the node's environment (node.h's ctx) */
    uint8_t idx;
    bool alive;
    struct sdisk disk;
    uint64_t incarnation;
    uint64_t paused_until;
    uint64_t paused_since;  /* when the pause now running (or the last) began */
    uint64_t tick_at;       /* the wake-up scheduled (E_TICK), 0: none */
    struct rabia_node *rt;  /* replica/node.c: the runtime rabiad runs */
    struct rabia_core *core; /* rt's */
    struct rabia_rsm *rsm;   /* rt's */
    uint64_t last_voted;    /* highest slot this life sent PROPOSAL/STATE/VOTE in */
    uint32_t *voted_life;   /* slot -> the life that sent PROPOSAL/STATE/VOTE there (0: none) */
    size_t voted_cap;
    /* pool frames that "connections" still hold (env_send_shared), as the
     * real loop's peer connections do until the kernel has the bytes; each
     * with the hash of its bytes, which must not change while held */
    struct {
        void *buf;
        uint32_t len;
        uint64_t hash;
    } held[6];
    uint32_t n_held;
    /* snapshot transfers, replica/snapstream.c's rules over this world:
     * the sources being sent (a copy of the state, or of the snapshot
     * file), the files being received, and the connection each one's
     * chunks came on (a newer epoch: it closed) */
    struct snapstream xfer;
    struct rabia_buf xfer_src[MAX_N];
    struct rabia_buf xfer_file[MAX_N];
    uint64_t xfer_epoch[MAX_N];
    /* peers' incoming connections and incarnations: replica/hello.c's
     * rules, as rabiad keeps them (a fresh table each life) */
    struct hello_rules hello;
    /* the data dir's small files beside the log (with durability memory
     * too): peers-seen (persist/peers_seen.c: the first life heard from
     * each peer, the birth it said) and first-start (the incarnation the
     * data dir began with when it voted at once; 0: it began recovering, or
     * a recovering start ended it). A wiped data dir loses both. */
    uint64_t seen[MAX_N];
    uint64_t fs_birth;
    bool wipe_next;   /* --wipes: the next start is on an empty data dir, without --rejoin */
    bool op_rejoin;   /* --wipes: the next start is on an empty data dir, with --rejoin */
    bool wiped_life;  /* this life began on a lost data dir without --rejoin (until a recovering start) */
    bool fix_planned; /* ... a refusal told the operator (E_OPFIX pushed) */
    /* peers' catch-up from its log (replica/logcatch.c, as durable.c): a
     * read position per peer */
    struct sim_catchup {
        struct logcatch lc;
        bool ready, on; /* on: the position continues the request lc.next names */
        uint64_t at;    /* the next record to read, counted from the log's first ever (disk.released on) */
        uint64_t wide_from; /* a read for this slot starts a segment back (as durable.c) */
    } cu[MAX_N];
    struct rabia_stats acc; /* stats of earlier lives */
};

struct client {
    uint8_t idx;       /* fixed: its connection address (0xF0 | idx) */
    uint64_t id;       /* session id: a new one after SESSION_EXPIRED */
    bool opened;       /* the session's OPEN (empty op, seq 1) was answered */
    uint64_t opno;     /* requests issued by this client: names timeouts */
    uint64_t seq, ack;
    uint8_t target;
    uint32_t attempt;
    bool busy;
    size_t lin;        /* history index */
    bool is_read;
    bool typed;        /* a command on the other types: checked by the state hashes, not linearized */
    uint64_t key, value;
    uint64_t invoke;
    struct rabia_buf op;
};

struct slotrec {
    bool set, null;
    struct rabia_batch_id id;
    uint64_t body_hash;
    uint64_t state_hash;
    bool hashed;
};

struct proprec { /* (slot, id) -> proposer mask */
    uint64_t slot;
    struct rabia_batch_id id;
    uint8_t mask;
    bool used;
};

struct coinrec { /* (slot, phase) -> the coin value the first replica saw */
    uint64_t slot;
    uint32_t phase;
    uint8_t value;
    bool used;
};

struct subrec {
    struct rabia_batch_id id;
    uint64_t hash;
    bool used;
    bool decided; /* in some slot: a new batch under this id would be skipped as applied */
};

struct sentrec { /* (node, slot, type, phase) -> what was sent first */
    uint64_t slot;
    uint16_t phase;
    uint8_t node, type, value, has_id;
    struct rabia_batch_id id;
    uint32_t life;
    bool used;
};

struct world {
    struct run_cfg cfg;
    struct sentrec *sent;
    size_t sent_cap, sent_used;
    struct run_result *res;
    uint64_t now;
    struct heap h;
    struct node nodes[MAX_N];
    struct client clients[MAX_CLIENTS];
    uint32_t n_clients;
    /* links: one connection per pair */
    bool link_up[MAX_N][MAX_N];
    uint64_t link_epoch[MAX_N][MAX_N];
    uint64_t link_last[MAX_N][MAX_N]; /* FIFO: last delivery time a->b */
    /* a->b bytes sent while b is paused, in that link epoch and that pause of
     * b (a resumed receiver reads what piled up: the next pause starts at 0) */
    uint64_t out_bytes[MAX_N][MAX_N], out_epoch[MAX_N][MAX_N], out_pause[MAX_N][MAX_N];
    uint64_t link_base[MAX_N][MAX_N];
    uint64_t heard[MAX_N][MAX_N];     /* newest life of b that a heard from */
    uint32_t conn_seq;                /* names connections for hello.c */
    /* snapshot chunk bytes sent a->b on connection `epoch`, not yet delivered */
    struct {
        uint64_t epoch, bytes;
    } xq[MAX_N][MAX_N];
    struct slotrec *slots;
    size_t slots_cap;
    struct proprec *props;
    size_t props_cap, props_used;
    struct subrec *subs;
    size_t subs_cap;
    struct lin_history *hist;
    struct coinrec *coins;
    size_t coins_cap, coins_used;
    uint64_t coin_flips;
    uint64_t next_cid;     /* next OPEN nonce (never reused in a run) */
    uint64_t opens_sent;   /* OPEN attempts clients sent, retries too: each opens at most one session */
    uint64_t applying;     /* the slot being applied (for RABIA_SIM_CLIENT) */
    uint8_t touched;       /* nodes that had an event: their loop turn runs after it */
    bool crash_on_reply;   /* durable: the next answer to a client brings the whole cluster down */
    bool healed;
    struct world *abandoned; /* the previous run stopped by a failed invariant (see rabia_invariant_failed) */
    uint8_t enc[RABIA_MAX_FRAME / 64];
};

static void fail(struct world *w, const char *fmt, ...)
{
    if (w->res->failed) return;
    w->res->failed = true;
    va_list ap;
    va_start(ap, fmt);
    int k = snprintf(w->res->why, sizeof w->res->why, "t=%" PRIu64 "us: ", w->now);
    vsnprintf(w->res->why + k, sizeof w->res->why - (size_t)k, fmt, ap);
    va_end(ap);
}

/* A failed invariant (invariant.h) in the code under test: rabiad aborts
 * there. The simulator's copy of rabia_invariant_failed (linked before the
 * core library's) fails the run instead, so that it prints its replay line
 * and the other seeds still run. The run's world is left as it was, not
 * freed (the replicas' memory can no longer be trusted), and stays
 * reachable from g_abandoned. */
static jmp_buf g_invariant_jmp;
static bool g_invariant_armed; /* inside run(): g_invariant_jmp is set */
static char g_invariant[400];
static struct world *g_abandoned;

_Noreturn void rabia_invariant_failed(const char *cond, const char *file, int line)
{
    if (!g_invariant_armed) {
        fprintf(stderr, "rabia: invariant failed at %s:%d: %s\n", file, line, cond);
        abort();
    }
    g_invariant_armed = false;
    snprintf(g_invariant, sizeof g_invariant, "%s:%d: %s", file, line, cond);
    longjmp(g_invariant_jmp, 1);
}

static void flog(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void flog(struct world *w, const char *fmt, ...)
{
    if (!w->cfg.verbose) return;
    printf("%10.3fms fault: ", (double)w->now / 1000.0);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static void push(struct world *w, uint64_t t, uint8_t kind, uint8_t a, uint8_t b, uint64_t x, uint64_t y)
{
    struct ev e = {.t = t, .kind = kind, .a = a, .b = b, .x = x, .y = y};
    heap_push(&w->h, e);
}

/* draws from rng (NULL: the run's main stream) */
static uint64_t link_delay(struct world *w, uint8_t a, uint8_t b, uint64_t *rng)
{
#define R(lo, hi) ((lo) + (rng ? splitmix(rng) : rnd()) % ((hi) - (lo) + 1))
    uint64_t d = w->link_base[a][b] + R(0, 40);
    if (w->cfg.mix & M_JITTER) {
        uint64_t r = R(0, 99);
        d += r < 70 ? R(0, 300) : r < 97 ? R(300, 3000) : R(3000, 15000);
    }
    return d;
#undef R
}

/* Hash tables keyed simply; sizes stay small in a run. */
static struct slotrec *slotrec(struct world *w, uint64_t slot)
{
    if (slot >= w->slots_cap) {
        size_t nc = w->slots_cap ? w->slots_cap : 1024;
        while (nc <= slot) nc *= 2;
        w->slots = realloc(w->slots, nc * sizeof(*w->slots));
        if (!w->slots) abort();
        memset(w->slots + w->slots_cap, 0, (nc - w->slots_cap) * sizeof(*w->slots));
        w->slots_cap = nc;
    }
    return &w->slots[slot];
}

static uint64_t idh(const struct rabia_batch_id *id, uint64_t slot)
{
    uint64_t in[4] = {id->incarnation, id->seq, id->proxy, slot};
    return XXH64(in, sizeof in, 7);
}

static void grow_props(struct world *w);
static struct proprec *proprec(struct world *w, uint64_t slot, const struct rabia_batch_id *id, bool create)
{
    if (!w->props_cap) grow_props(w);
    for (;;) {
        size_t mask = w->props_cap - 1, i = idh(id, slot) & mask;
        for (size_t k = 0; k < w->props_cap; k++, i = (i + 1) & mask) {
            struct proprec *p = &w->props[i];
            if (!p->used) {
                if (!create) return NULL;
                break;
            }
            if (p->slot == slot && rabia_batch_id_eq(&p->id, id)) return p;
        }
        if (w->props_used * 2 >= w->props_cap) {
            grow_props(w);
            continue;
        }
        i = idh(id, slot) & mask;
        while (w->props[i].used) i = (i + 1) & mask;
        struct proprec *p = &w->props[i];
        p->used = true;
        p->slot = slot;
        p->id = *id;
        p->mask = 0;
        w->props_used++;
        return p;
    }
}
static void grow_props(struct world *w)
{
    size_t oc = w->props_cap, nc = oc ? oc * 2 : 4096;
    struct proprec *old = w->props;
    w->props = calloc(nc, sizeof(*w->props));
    if (!w->props) abort();
    w->props_cap = nc;
    for (size_t i = 0; i < oc; i++) {
        if (!old[i].used) continue;
        size_t j = idh(&old[i].id, old[i].slot) & (nc - 1);
        while (w->props[j].used) j = (j + 1) & (nc - 1);
        w->props[j] = old[i];
    }
    free(old);
}

static struct subrec *subrec(struct world *w, const struct rabia_batch_id *id, bool create)
{
    if (!w->subs_cap || (create && 0)) {
        w->subs_cap = 1 << 15;
        w->subs = calloc(w->subs_cap, sizeof(*w->subs));
        if (!w->subs) abort();
    }
    size_t mask = w->subs_cap - 1, i = idh(id, 0) & mask;
    for (size_t k = 0; k < w->subs_cap; k++, i = (i + 1) & mask) {
        struct subrec *s = &w->subs[i];
        if (!s->used) {
            if (!create) return NULL;
            s->used = true;
            s->id = *id;
            return s;
        }
        if (rabia_batch_id_eq(&s->id, id)) return s;
    }
    fprintf(stderr, "sim: submitted-batch table full\n");
    abort();
}

/* ------------------------------------------------------------------ */
/* sending */

static void output_full(struct world *w, uint8_t from, uint8_t to);

static void net_send(struct world *w, uint8_t from, uint8_t to, const struct rabia_msg *m)
{
    if (!w->link_up[from][to]) return; /* connection down: lost */
    int len = rabia_msg_encode(m, w->enc, sizeof w->enc);
    if (len < 0) {
        fail(w, "encode of %s failed: %d", rabia_msg_type_name(m->type), len);
        return;
    }
    if (w->nodes[to].alive && w->nodes[to].paused_until > w->now) { /* nothing read: it piles up */
        if (w->out_epoch[from][to] != w->link_epoch[from][to] || w->out_pause[from][to] != w->nodes[to].paused_since) {
            w->out_epoch[from][to] = w->link_epoch[from][to];
            w->out_pause[from][to] = w->nodes[to].paused_since;
            w->out_bytes[from][to] = 0;
        }
        w->out_bytes[from][to] += (uint64_t)len;
        if (w->out_bytes[from][to] > SIM_OUT_MAX) {
            output_full(w, from, to);
            return;
        }
    }
    bool chunk = m->type == RABIA_MSG_SNAP_CHUNK;
    if (chunk) { /* what the connection holds until the peer reads it (snapstream's flow control) */
        if (w->xq[from][to].epoch != w->link_epoch[from][to])
            w->xq[from][to].epoch = w->link_epoch[from][to], w->xq[from][to].bytes = 0;
        w->xq[from][to].bytes += (uint64_t)len;
    }
    uint64_t t = w->now + link_delay(w, from, to, chunk ? &xfer_rng_state : NULL);
    if (t <= w->link_last[from][to]) t = w->link_last[from][to] + 1; /* TCP is FIFO */
    w->link_last[from][to] = t;
    struct ev e = {.t = t, .kind = E_DELIVER, .a = from, .b = to, .x = w->link_epoch[from][to],
                   .y = w->nodes[from].incarnation};
    e.data = malloc((size_t)len);
    if (!e.data) abort();
    memcpy(e.data, w->enc, (size_t)len);
    e.len = (uint32_t)len;
    heap_push(&w->h, e);
}

/* clients talk to replicas over their own connections, outside partitions */
static void client_net(struct world *w, uint8_t client, uint8_t node, bool to_node, const struct rabia_msg *m)
{
    int len = rabia_msg_encode(m, w->enc, sizeof w->enc);
    if (len < 0) {
        fail(w, "client encode failed: %d", len);
        return;
    }
    struct ev e = {.t = w->now + rnd_range(50, 250), .kind = E_DELIVER, .a = to_node ? 0xF0 | client : node,
                   .b = to_node ? node : 0xF0 | client, .x = to_node ? w->nodes[node].incarnation : 0};
    e.data = malloc((size_t)len);
    if (!e.data) abort();
    memcpy(e.data, w->enc, (size_t)len);
    e.len = (uint32_t)len;
    heap_push(&w->h, e);
}

static void trace_cb(void *ctx, uint64_t slot, const char *line)
{
    struct world *w = ctx;
    if (w->cfg.trace_slot >= 0 && (slot == (uint64_t)w->cfg.trace_slot || slot == 0))
        printf("%10.3fms slot %" PRIu64 " %s\n", (double)w->now / 1000.0, slot, line);
}

static void step(struct world *w, uint8_t i, struct rabia_event *ev);

/* node.h's reply: back on the client connection the request came on */
static void env_reply(void *ctx, const struct node_to *to, uint64_t client_id, uint64_t seq, int status,
                      const uint8_t *reply, size_t len)
{
    struct node *nd = ctx;
    struct world *w = nd->w;
    if (g_watch_client && client_id == g_watch_client)
        printf("%10.3fms r%u slot %" PRIu64 " answers client %" PRIu64 " seq %" PRIu64 ": status %d\n",
               (double)w->now / 1000.0, nd->idx, w->applying, client_id, seq, status);
    if (to->conn >= w->n_clients || !seq) return;
    if (w->crash_on_reply && status == RABIA_REPLY_OK && w->now < T_HEAL && !w->healed) {
        /* the answer leaves; every replica dies right after, its writes in
         * flight torn or not: an answer must only report what survives this */
        w->crash_on_reply = false;
        push(w, w->now, E_CRASH_NOW, nd->idx, 0, 0, 0);
    }
    struct rabia_msg m = {.type = RABIA_MSG_CLIENT_REPLY, .from = nd->idx, .u64 = client_id, .slot = seq,
                          .value = (uint8_t)status, .body = reply, .body_len = (uint32_t)len};
    client_net(w, (uint8_t)to->conn, nd->idx, false, &m);
}

/* The horizon rule as core.h reads it (abstain in every slot <= H): a
 * restarted replica never takes part in a slot that may have started, so no
 * life of a replica sends PROPOSAL, STATE or VOTE in a slot where an earlier
 * life of it sent one (the strict form of no-contradiction; agreement needs
 * only the weaker form, of messages received). */
static void note_vote(struct world *w, uint8_t i, uint64_t slot, const char *what)
{
    struct node *nd = &w->nodes[i];
    if (slot > nd->last_voted) nd->last_voted = slot;
    if (slot >= nd->voted_cap) {
        size_t nc = nd->voted_cap ? nd->voted_cap : 1024;
        while (nc <= slot) nc *= 2;
        nd->voted_life = realloc(nd->voted_life, nc * sizeof(uint32_t));
        if (!nd->voted_life) abort();
        memset(nd->voted_life + nd->voted_cap, 0, (nc - nd->voted_cap) * sizeof(uint32_t));
        nd->voted_cap = nc;
    }
    uint32_t life = (uint32_t)nd->incarnation, *v = &nd->voted_life[slot];
    if (!*v) *v = life;
    else if (*v != life)
        fail(w, "horizon rule: replica %u life %u sends %s in slot %" PRIu64 ", where its life %u took part", i, life,
             what, slot, *v);
}

/* No life of a replica may send a PROPOSAL, STATE or VOTE that says
 * something else than what an earlier send (of any life) said for the same
 * slot and phase: persistence contract rule 1 in durable mode; within one
 * life in memory too, where only the horizon rule (across lives) was
 * checked. Two planted bugs passed every other check of 700 in-memory
 * runs (100 seeds from 14400001, all mixes) and fail this one at once: a
 * retransmission of an older phase's STATE carrying the current phase's
 * state (events.c resend_inst), and a snapshot install that forgets the
 * open slots above it, after which the replica proposes again in a slot
 * it proposed in (events.c core_on_snapshot; seed 14400007, partition). */
static void note_sent(struct world *w, uint8_t i, const struct rabia_msg *m)
{
    if (w->sent_used * 2 >= w->sent_cap) {
        size_t oc = w->sent_cap, nc = oc ? 2 * oc : 4096;
        struct sentrec *old = w->sent;
        w->sent = calloc(nc, sizeof(*w->sent));
        if (!w->sent) abort();
        w->sent_cap = nc;
        for (size_t k = 0; k < oc; k++) {
            if (!old[k].used) continue;
            size_t j = (old[k].slot * 131 + old[k].phase * 7 + old[k].type * 3 + old[k].node) & (nc - 1);
            while (w->sent[j].used) j = (j + 1) & (nc - 1);
            w->sent[j] = old[k];
        }
        free(old);
    }
    uint16_t phase = m->type == RABIA_MSG_PROPOSAL ? 0 : m->phase;
    size_t mask = w->sent_cap - 1, j = (m->slot * 131 + phase * 7 + m->type * 3 + i) & mask;
    uint32_t life = (uint32_t)w->nodes[i].incarnation;
    for (; w->sent[j].used; j = (j + 1) & mask) {
        struct sentrec *r = &w->sent[j];
        if (r->slot != m->slot || r->phase != phase || r->type != m->type || r->node != i) continue;
        /* a PROPOSAL's batch is its content; a STATE or VOTE carries the
         * majority batch once known, so a resend may add it, never change it */
        bool same = r->value == m->value &&
                    (m->type == RABIA_MSG_PROPOSAL ? r->has_id == m->has_id && (!m->has_id || rabia_batch_id_eq(&r->id, &m->id))
                                                   : !r->has_id || !m->has_id || rabia_batch_id_eq(&r->id, &m->id));
        if (!same)
            fail(w, "contradiction: replica %u life %u sends %s slot %" PRIu64 " phase %u value %u%s, its life %u sent "
                 "value %u%s", i, life, rabia_msg_type_name(m->type), m->slot, phase, m->value,
                 m->has_id ? " with a batch" : "", r->life, r->value, r->has_id ? " with a batch" : "");
        return;
    }
    w->sent[j] = (struct sentrec){.slot = m->slot, .phase = phase, .node = i, .type = m->type, .value = m->value,
                                  .has_id = m->has_id, .id = m->id, .life = life, .used = true};
    w->sent_used++;
}

static void do_send(struct world *w, uint8_t i, uint8_t to, const struct rabia_msg *m)
{
    if (w->nodes[i].wiped_life) {
        /* a life its peers refused (--wipes) sends into links that are
         * down: nothing of it is delivered, so what it says is no vote.
         * Once a peer takes it (the planted bug), every check applies. */
        bool linked = false;
        for (uint8_t j = 0; j < w->cfg.n; j++) linked |= j != i && w->link_up[i][j];
        if (!linked) return;
    }
    if (m->type == RABIA_MSG_PROPOSAL && m->has_id) {
        struct proprec *p = proprec(w, m->slot, &m->id, true);
        p->mask |= (uint8_t)(1u << i);
    }
    if (m->type == RABIA_MSG_PROPOSAL || m->type == RABIA_MSG_STATE || m->type == RABIA_MSG_VOTE) {
        if (!w->cfg.durable) note_vote(w, i, m->slot, rabia_msg_type_name(m->type));
        note_sent(w, i, m);
    }
    if (to == RABIA_TO_ALL) {
        for (uint8_t j = 0; j < w->cfg.n; j++)
            if (j != i) net_send(w, i, j, m);
    } else if (to < w->cfg.n && to != i) {
        net_send(w, i, to, m);
    }
}

/* node.h's observers: a decided slot about to be applied at a replica
 * (agreement and validity), applied (exactly-once, state hash), a batch
 * submitted by its proxy (what validity compares against). */
static void env_decided(void *ctx, uint64_t slot, const struct rabia_batch_id *id, const uint8_t *body,
                        uint32_t body_len)
{
    struct node *nd = ctx;
    struct world *w = nd->w;
    uint8_t i = nd->idx;
    bool null = id == NULL;
    uint8_t maj = (uint8_t)(w->cfg.n / 2 + 1);
    struct slotrec *r = slotrec(w, slot);
    uint64_t bh = null ? 0 : XXH64(body, body_len, 0);
    w->applying = slot;
    if (!r->set) {
        r->set = true;
        r->null = null;
        if (!null) r->id = *id;
        r->body_hash = bh;
        if (!null) {
            struct proprec *p = proprec(w, slot, id, false);
            if (!p || __builtin_popcount(p->mask) < maj)
                fail(w, "validity: slot %" PRIu64 " decided batch %u.%" PRIu64 " proposed by %d replicas", slot,
                     id->proxy, id->seq, p ? __builtin_popcount(p->mask) : 0);
            struct subrec *sr = subrec(w, id, false);
            if (!sr || sr->hash != bh)
                fail(w, "validity: slot %" PRIu64 " batch %u.%" PRIu64 " differs from what its proxy submitted", slot,
                     id->proxy, id->seq);
            if (sr) sr->decided = true;
        }
    } else if (r->null != null || (!null && (!rabia_batch_id_eq(&r->id, id) || r->body_hash != bh))) {
        fail(w, "agreement: replica %u applied %s in slot %" PRIu64 ", another applied %s", i,
             null ? "null" : "a batch", slot, r->null ? "null" : "a different batch");
    }
    if (w->cfg.trace_slot >= 0 && slot == (uint64_t)w->cfg.trace_slot)
        printf("%10.3fms slot %" PRIu64 " r%u applies %s\n", (double)w->now / 1000.0, slot, i, null ? "null" : "batch");
}

/* The incremental state hash against one recomputed from scratch: the
 * replica's state through a snapshot into a fresh apply layer, whose
 * restore recomputes every term and compares with the stored hash. Also
 * fails a run in which any restore met a differing hash. */
static void check_hash_roundtrip(struct world *w, struct node *nd, uint64_t h)
{
    if (rabia_rsm_hash_mismatches(nd->rsm))
        fail(w, "state hash: replica %u restored %" PRIu64 " snapshot(s) whose recomputed hash differed", nd->idx,
             rabia_rsm_hash_mismatches(nd->rsm));
    struct rabia_buf b = {0};
    struct rabia_rsm_config cfg = {.max_sessions = w->res->sessions, .max_reply_bytes = 1024};
    struct rabia_rsm *fresh = rabia_rsm_create(&TSM, &cfg);
    if (!fresh || rabia_rsm_snapshot(nd->rsm, &b) || rabia_rsm_restore(fresh, b.data, b.len)) {
        fail(w, "state hash: replica %u's snapshot did not restore", nd->idx);
    } else if (rabia_rsm_hash_mismatches(fresh) || rabia_rsm_hash(fresh) != h) {
        fail(w, "state hash: replica %u's incremental hash %016" PRIx64 " differs from a recomputation %016" PRIx64,
             nd->idx, h, rabia_rsm_hash(fresh));
    }
    rabia_rsm_destroy(fresh);
    rabia_buf_free(&b);
}

static void env_applied(void *ctx, uint64_t slot)
{
    struct node *nd = ctx;
    struct world *w = nd->w;
    if (g_double_apply) fail(w, "exactly-once: client %" PRIu64 " seq %" PRIu64 " applied twice",
                             g_double_key >> 32, g_double_key & 0xFFFFFFFF);
    if (slot % 8 == 0) {
        struct slotrec *r = slotrec(w, slot);
        uint64_t hsh = rabia_rsm_hash(nd->rsm);
        if (!r->hashed) {
            r->hashed = true;
            r->state_hash = hsh;
        } else if (r->state_hash != hsh) {
            fail(w, "state: replica %u hash differs at slot %" PRIu64, nd->idx, slot);
        }
    }
}

static void env_submitted(void *ctx, const struct rabia_batch_id *id, const uint8_t *body, uint32_t len)
{
    struct node *nd = ctx;
    struct subrec *s = subrec(nd->w, id, true);
    /* every replica's apply layer would skip it as a duplicate and its
     * clients would only get an answer by retrying elsewhere (the clients
     * here do, so no other check sees it) */
    if (s->decided)
        fail(nd->w, "batch ids: replica %u numbered a new batch %u.%" PRIu64 ".%" PRIu64 ", an id already decided",
             nd->idx, id->proxy, id->incarnation, id->seq);
    s->hash = XXH64(body, len, 0);
}

/* ------------------------------------------------------------------ */
/* durable mode: the simulated disk under node.h's log */

static uint8_t *dup_body(const struct rabia_msg *m)
{
    if (!m->body_len) return NULL;
    uint8_t *b = malloc(m->body_len);
    if (!b) abort();
    memcpy(b, m->body, m->body_len);
    return b;
}

static void disk_append(struct sdisk *d, uint8_t type, uint64_t slot, const struct rabia_msg *m)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 256;
        d->r = realloc(d->r, d->cap * sizeof(*d->r));
        if (!d->r) abort();
    }
    struct drec *r = &d->r[d->n++];
    d->log_bytes += 16 + rabia_msg_encoded_size(m); /* a record's header and its frame */
    r->type = type;
    r->slot = slot;
    r->m = *m;
    r->body = dup_body(m);
    r->m.body = r->body;
}

static void disk_free(struct sdisk *d, size_t from)
{
    for (size_t k = from; k < d->n; k++) free(d->r[k].body);
    d->n = from;
}

static int log_append(void *ctx, uint8_t type, uint64_t slot, const struct rabia_msg *m)
{
    struct node *nd = ctx;
    disk_append(&nd->disk, type, slot, m);
    return 0;
}

/* One group write: everything appended so far, an O_DIRECT write with
 * RWF_DSYNC taking 30-300 us, milliseconds while the disk stalls, and
 * until space returns while it is full. */
static int log_write(void *ctx)
{
    struct node *nd = ctx;
    struct world *w = nd->w;
    struct sdisk *d = &nd->disk;
    if (d->busy) abort(); /* the node starts one write at a time */
    if (d->n == d->durable) return NODE_WRITE_NONE;
    d->flight_end = d->n;
    d->busy = true;
    d->wid++;
    uint64_t at = w->now + rnd_range(30, 300);
    if (w->now < d->slow_until) at = w->now + rnd_range(1 * MS, 20 * MS);
    if (w->now < d->full_until) at = d->full_until + rnd_range(30, 300);
    push(w, at, E_DISK, nd->idx, 0, nd->incarnation, d->wid);
    return NODE_WRITE_ALL;
}

/* A peer's catch-up from the durable part of the log, through
 * replica/logcatch.c as durable.c feeds it from the write-ahead log: the
 * read starts half a segment before the sixteenth of the first segment
 * reaching `from` where its decision can begin (rabia_wal_cursor_for; 16
 * MiB, the reader's ring, in rabiad), reads at most an eighth of a
 * segment's records per request towards `from` and goes on from there at
 * the node's next turn or when the peer asks for the same slot again
 * (-EAGAIN meanwhile);
 * each peer has its own position. Once it serves, it reads on to the
 * request's end: 4 MiB holds the records of far more than a request's
 * catch-up chunk, a simulated eighth of a segment those of a slot or two. */
static int log_catchup(void *ctx, uint8_t peer, uint64_t from, uint64_t until,
                       void (*emit)(void *, const struct rabia_msg *), void *ectx)
{
    struct node *nd = ctx;
    struct world *w = nd->w;
    struct sdisk *d = &nd->disk;
    RABIA_ASSERT(peer < w->cfg.n && peer != nd->idx);
    struct sim_catchup *c = &nd->cu[peer];
    if (!c->ready) {
        if (logcatch_init(&c->lc, nd->idx, 256u << 10)) abort();
        c->lc.bugs = (w->cfg.bugs & SIM_BUG_CATCHUP_BODY) ? LOGCATCH_BUG_ANY_BODY : 0;
        c->ready = true;
    }
    size_t seg = w->cfg.seg_recs, budget = seg / 8;
    bool keep = c->on && c->lc.next == from, wide = c->wide_from == from;
    if (!keep) {
        size_t k = 0; /* the first segment whose decisions reach `from` (as rabia_wal_cursor_for:
                         DECIDED records only; a SENT record may name an old slot) */
        for (;; k++) {
            if (k * seg >= d->durable) {
                c->on = false;
                return 0; /* nothing durable reaches it yet */
            }
            uint64_t max_slot = 0;
            for (size_t j = k * seg; j < (k + 1) * seg && j < d->durable; j++)
                if ((d->r[j].type == NODE_REC_DECIDED || d->r[j].type == NODE_REC_DECIDED_REF) && d->r[j].slot > max_slot)
                    max_slot = d->r[j].slot;
            if (max_slot >= from) break;
        }
        /* as rabia_wal_cursor_for: the last sixteenth of segment k with
         * every decision before it below `from`, then `back` records
         * before that (half a segment: the reader's ring is small here) */
        size_t at = k * seg, part = seg / 16 ? seg / 16 : 1, back = seg / 2;
        uint64_t before = 0;
        for (size_t j = k * seg; j < (k + 1) * seg && j < d->durable; j++) {
            if ((j - k * seg) % part == 0 && before < from) at = j;
            if ((d->r[j].type == NODE_REC_DECIDED || d->r[j].type == NODE_REC_DECIDED_REF) && d->r[j].slot > before)
                before = d->r[j].slot;
        }
        c->at = d->released + (wide ? (k ? k - 1 : 0) * seg : at > back ? at - back : 0);
    }
    if (c->at < d->released) c->at = d->released; /* released meanwhile: the next kept one */
    logcatch_begin(&c->lc, from, until, keep);
    size_t k = c->at - d->released, n = 0;
    bool ended = false;
    for (; k < d->durable && (n < budget || c->lc.served) && !ended; k++, n++)
        ended = logcatch_feed(&c->lc, d->r[k].type, d->r[k].slot, &d->r[k].m, emit, ectx);
    c->at = d->released + k;
    w->res->catchup_log_requests++;
    w->res->catchup_log_slots += c->lc.served;
    if (c->lc.served) {
        c->on = true;
        return (int)c->lc.served;
    }
    if (!ended && k < d->durable) { /* read up to the budget, not there yet */
        c->on = true;
        return -EAGAIN;
    }
    if (c->lc.no_body && !wide) { /* a body older than the start: again from a segment back */
        c->wide_from = from;
        c->on = false;
        return -EAGAIN;
    }
    c->on = false;
    return 0;
}

/* As durable.c: every decided slot after the newest snapshot file is in the log. */
static bool log_holds(void *ctx, uint64_t from)
{
    const struct node *nd = ctx;
    return from > (nd->disk.snap ? nd->disk.snap_slot : 0);
}

static const char *log_refusal(void *ctx)
{
    struct node *nd = ctx;
    return nd->w->now < nd->disk.full_until ? "no space left on the log's disk (simulated ENOSPC)" : "";
}

/* Release the log's prefix behind the snapshot file at slot `upto` as
 * persist/wal.c's rabia_wal_release does: whole segments, oldest first, each
 * only if every SENT or DECIDED record in it is of a slot <= upto and its
 * highest own BATCH or RESERVE seq (the record's slot field; 0: none) is
 * below keep (node_keep_batch_seq); it stops at the first that must
 * stay. The segment written last never goes, so what goes was on the disk
 * whole. Returns the segments released. */
static uint32_t disk_release(struct world *w, struct sdisk *d, uint64_t upto, uint64_t keep)
{
    size_t seg = w->cfg.seg_recs, end = d->busy ? d->flight_end : d->durable, k = 0;
    while ((k + 1) * seg <= d->durable && (k + 1) * seg < end) {
        uint64_t max_slot = 0, max_batch_seq = 0;
        for (size_t j = k * seg; j < (k + 1) * seg; j++) {
            const struct drec *r = &d->r[j];
            if (r->type == NODE_REC_BATCH || r->type == NODE_REC_RESERVE) {
                if (r->slot > max_batch_seq) max_batch_seq = r->slot;
            } else if (r->slot > max_slot) {
                max_slot = r->slot;
            }
        }
        if (max_slot > upto || (max_batch_seq && max_batch_seq >= keep)) break;
        k++;
    }
    size_t gone = k * seg;
    if (!gone) return 0;
    d->began_recovering = false; /* its first segment went */
    for (size_t j = 0; j < gone; j++) free(d->r[j].body);
    memmove(d->r, d->r + gone, (d->n - gone) * sizeof(*d->r));
    d->n -= gone;
    d->released += gone;
    d->durable -= gone;
    d->flight_end -= gone; /* == durable when no write is in flight */
    return (uint32_t)k;
}

/* durable mode: local snapshots, when replica/snapsched.c says, as
 * durable.c's durable_tick asks it (not while recovering: the log must keep
 * its first record). A child writes the state as of the applied slot (1-30
 * ms; a crash kills it and its file is lost); once that file is durable
 * the newest snapshot file covers the log's prefix, which is released with
 * the keep seq the node gives at that moment (node_keep_batch_seq: the
 * core's, or lower for an own batch a DECIDED_REF record of a later slot
 * names). */
static void snap_tick(struct world *w, uint8_t i)
{
    struct node *nd = &w->nodes[i];
    struct sdisk *d = &nd->disk;
    if (d->snap_new.data) {
        if (w->now < d->snap_done_at) return;
        uint64_t upto = snapsched_finished(&d->sched, true, w->now);
        if (d->snap_new_slot > d->snap_slot) {
            free(d->snap);
            d->snap = d->snap_new.data;
            d->snap_len = d->snap_new.len;
            d->snap_slot = d->snap_new_slot;
        } else { /* a peer's snapshot installed meanwhile is newer: a restart loads that one */
            free(d->snap_new.data);
        }
        d->snap_new = (struct rabia_buf){0};
        RABIA_ASSERT(upto == d->snap_slot); /* the schedule knows the newest file */
        w->res->local_snaps++;
        uint64_t keep = (w->cfg.bugs & SIM_BUG_FORGET_REF) ? rabia_core_own_keep_seq(nd->core)
                                                             : node_keep_batch_seq(nd->rt, d->snap_slot);
        /* as durable.c: the slots peers still need from the log stay */
        uint64_t pin = snapstream_pin(&nd->xfer, w->now), lpin = node_log_pin(nd->rt, w->now);
        if (lpin && (!pin || lpin < pin)) pin = lpin;
        if (pin && upto >= pin && !w->cfg.no_log_pin) upto = pin - 1;
        uint32_t gone = disk_release(w, d, upto, keep);
        w->res->released += gone;
        if (gone)
            flog(w, "r%u: snapshot of slot %" PRIu64 " durable; %u log segment(s) released (own batch keep seq %" PRIu64
                 ")", i, d->snap_slot, gone, keep);
        return;
    }
    uint64_t applied = rabia_rsm_applied(nd->rsm);
    if (!snapsched_due(&d->sched, applied, d->log_bytes, w->now, rabia_core_recovering(nd->core))) return;
    snapsched_began(&d->sched, applied, d->log_bytes, w->now);
    if (rabia_rsm_snapshot(nd->rsm, &d->snap_new)) abort();
    d->snap_new_slot = applied;
    d->snap_done_at = w->now + snap_rnd_range(1 * MS, 30 * MS);
}

/* A node's counters, before it goes (a crash, the run's end). */
static void node_count(struct world *w, struct node *nd)
{
    if (!nd->rt) return; /* down at the end */
    struct node_stats st;
    node_stats(nd->rt, &st);
    w->res->by_ref += st.decided_by_ref;
    w->res->catchup_fetch_held += st.catchup_log_fetch_held;
    w->res->catchup_continued += st.catchup_log_continued;
    w->res->frames_shared += st.frames_shared;
    w->res->linger_cohort += st.linger_cohort;
    w->res->reads_indexed += st.reads_indexed;
    w->res->reads_logged += st.reads_logged;
    w->res->read_rounds += st.read_rounds;
    w->res->read_retried += st.read_rounds_retried;
    if (nd->core) w->res->read_old += rabia_core_stats(nd->core)->read_old_answers;
    w->res->frames_copied += st.frames_copied;
    w->res->xfers += nd->xfer.st.sent;
    w->res->xfer_dropped += nd->xfer.st.dropped;
    w->res->xfer_stopped += nd->xfer.st.stopped;
    w->res->xfer_rate_waits += nd->xfer.st.rate_waits;
    w->res->xfer_rate_lifted += nd->xfer.st.rate_lifted;
    w->res->xfer_cap_queued += nd->xfer.st.cap_queued;
}

/* The write in flight is on the disk: its decisions go back to the node. */
static void disk_done(struct world *w, uint8_t i)
{
    struct node *nd = &w->nodes[i];
    struct sdisk *d = &nd->disk;
    d->busy = false;
    size_t from = d->durable;
    d->durable = d->flight_end;
    for (size_t k = from; k < d->durable && !w->res->failed; k++) {
        struct drec *r = &d->r[k];
        if (r->type == NODE_REC_DECIDED)
            node_log_decided(nd->rt, r->slot, r->m.value ? &r->m.id : NULL, r->m.value ? r->m.body : NULL,
                             r->m.value ? r->m.body_len : 0);
    }
    if (!w->res->failed) node_log_written(nd->rt);
}

/* ------------------------------------------------------------------ */
/* the node's environment: network, clock, snapshots */

static uint64_t env_now(void *ctx) { return ((struct node *)ctx)->w->now; }
/* Wall clocks: a fixed epoch (1 Jan 2026) plus simulated time, each replica's
 * off by up to +-50 ms so that the log's stamps are not monotonic. */
static uint64_t env_wall_ms(void *ctx)
{
    const struct node *nd = ctx;
    return 1767225600000ull + nd->w->now / 1000u + (uint64_t)(nd->idx * 37u % 101u) - 50u;
}

static void share_drop(struct node *nd, uint32_t k);

static void env_send(void *ctx, uint8_t to, const uint8_t *frame, uint32_t len)
{
    struct node *nd = ctx;
    /* each send (shared or copied), a held frame's connection may finish it */
    for (uint32_t k = 0; k < nd->n_held;) {
        if (splitmix(&share_rng_state) % 3 == 0)
            share_drop(nd, k);
        else
            k++;
    }
    struct rabia_msg m;
    int rc = rabia_msg_decode(frame, len, &m);
    if (rc) {
        fail(nd->w, "replica %u sent a frame that does not decode: %d", nd->idx, rc);
        return;
    }
    do_send(nd->w, nd->idx, to, &m);
}

/* Drop held frame k (checking that its bytes never changed). */
static void share_drop(struct node *nd, uint32_t k)
{
    if (XXH3_64bits(nd->held[k].buf, nd->held[k].len) != nd->held[k].hash)
        fail(nd->w, "replica %u: a pool frame changed while a connection still held it", nd->idx);
    if (!(nd->w->cfg.bugs & SIM_BUG_FRAME_NOREF)) node_frame_unref(nd->rt, nd->held[k].buf);
    nd->held[k] = nd->held[--nd->n_held];
}

static void share_drop_all(struct node *nd)
{
    while (nd->n_held) share_drop(nd, nd->n_held - 1);
}

/* A frame from the node's pool: delivered as env_send delivers, and held
 * for a while as a connection would (some sends later: a slow peer),
 * so the node's pool runs out and copies (the simulator's pool has 3). */
static void env_send_shared(void *ctx, uint8_t to, const uint8_t *frame, uint32_t len, void *buf)
{
    struct node *nd = ctx;
    if (nd->n_held == sizeof nd->held / sizeof nd->held[0]) share_drop(nd, 0);
    env_send(ctx, to, frame, len);
    if (!(nd->w->cfg.bugs & SIM_BUG_FRAME_NOREF)) node_frame_ref(nd->rt, buf);
    nd->held[nd->n_held].buf = buf;
    nd->held[nd->n_held].len = len;
    nd->held[nd->n_held].hash = XXH3_64bits(frame, len);
    nd->n_held++;
}

static void env_snapshot_to(void *ctx, uint8_t peer) { snapstream_want(&((struct node *)ctx)->xfer, peer); }

/* ------------------------------------------------------------------ */
/* snapshot transfers: snapstream.c (what rabiad's transfer.c drives) over
 * this world's links, disk and clock */

static void env_note(void *ctx, int level, const char *msg);
static void xfer_note(void *ctx, int level, const char *msg) { env_note(ctx, level, msg); }

static bool xfer_link_ready(void *ctx, uint8_t p)
{
    struct node *nd = ctx;
    return nd->w->link_up[nd->idx][p];
}

static uint64_t xfer_link_pending(void *ctx, uint8_t p)
{
    struct node *nd = ctx;
    struct world *w = nd->w;
    return w->xq[nd->idx][p].epoch == w->link_epoch[nd->idx][p] ? w->xq[nd->idx][p].bytes : 0;
}

/* The source, copied as rabiad's open file descriptor keeps a snapshot file
 * a later snapshot replaces: durable, the newest snapshot file if the
 * core's log goes on from it (else one is taken soon, as durable.c's
 * durable_snapshot_soon); in memory, the state as applied now. */
static int xfer_source_open(void *ctx, uint8_t p, uint64_t *slot, uint64_t *total)
{
    struct node *nd = ctx;
    struct sdisk *d = &nd->disk;
    struct rabia_buf *b = &nd->xfer_src[p];
    rabia_buf_clear(b);
    if (nd->w->cfg.durable) {
        /* as transfer.c: the newest file, the peer catches up after it from
         * the log; a fresh one when none, or the peer declined this one */
        if (!d->snap || (d->snap_slot == nd->xfer.tx[p].declined_slot && d->snap_slot == nd->xfer.tx[p].completed_slot)) {
            snapsched_soon(&d->sched);
            return -EAGAIN;
        }
        if (rabia_buf_append(b, d->snap, d->snap_len)) abort();
        *slot = d->snap_slot;
    } else {
        *slot = rabia_rsm_applied(nd->rsm);
        if (!*slot) return -EAGAIN;
        if (rabia_rsm_snapshot(nd->rsm, b)) abort();
    }
    *total = b->len;
    return 0;
}

static const uint8_t *xfer_source_read(void *ctx, uint8_t p, uint64_t off, uint32_t n, char *why, size_t whylen)
{
    struct node *nd = ctx;
    (void)why;
    (void)whylen;
    if (off + n > nd->xfer_src[p].len) {
        fail(nd->w, "replica %u: snapshot transfer to %u read past its source (%" PRIu64 " + %u of %zu)", nd->idx, p,
             off, n, nd->xfer_src[p].len);
        return NULL;
    }
    return nd->xfer_src[p].data + off;
}

static void xfer_source_close(void *ctx, uint8_t p) { rabia_buf_free(&((struct node *)ctx)->xfer_src[p]); }

static void xfer_send(void *ctx, uint8_t p, const struct rabia_msg *m)
{
    struct node *nd = ctx;
    net_send(nd->w, nd->idx, p, m);
}

/* the disk: full while a full-disk fault lasts (durable runs) */
static bool xfer_disk_full(const struct node *nd) { return nd->w->now < nd->disk.full_until; }

static uint64_t xfer_space_free(void *ctx, char *where, size_t wherelen)
{
    snprintf(where, wherelen, "the simulated disk");
    return xfer_disk_full(ctx) ? 0 : UINT64_MAX;
}

static int xfer_file_begin(void *ctx, uint8_t from, uint64_t slot, uint64_t total, char *why, size_t whylen)
{
    struct node *nd = ctx;
    (void)slot;
    (void)why;
    (void)whylen;
    rabia_buf_free(&nd->xfer_file[from]);
    if (rabia_buf_reserve(&nd->xfer_file[from], total)) abort();
    return 0;
}

static int xfer_file_append(void *ctx, uint8_t from, const uint8_t *p, uint32_t n, char *why, size_t whylen)
{
    struct node *nd = ctx;
    if (xfer_disk_full(nd)) {
        snprintf(why, whylen, "writing the snapshot file: no space left on device (simulated)");
        return -ENOSPC;
    }
    if (rabia_buf_append(&nd->xfer_file[from], p, n)) abort();
    return 0;
}

static int xfer_file_commit(void *ctx, uint8_t from, char *why, size_t whylen)
{
    struct node *nd = ctx;
    (void)from;
    if (xfer_disk_full(nd)) {
        snprintf(why, whylen, "syncing the snapshot file: no space left on device (simulated)");
        rabia_buf_free(&nd->xfer_file[from]);
        return -ENOSPC;
    }
    return 0;
}

static void xfer_file_abort(void *ctx, uint8_t from)
{
    struct node *nd = ctx;
    rabia_buf_free(&nd->xfer_file[from]);
}

/* The received file installed; durable, it is the replica's newest
 * snapshot file from now on (made durable before anything after it is
 * logged: the install is synchronous here). */
static int xfer_install(void *ctx, uint8_t from, uint64_t slot)
{
    struct node *nd = ctx;
    struct world *w = nd->w;
    struct rabia_buf *f = &nd->xfer_file[from];
    int rc = node_install_snapshot(nd->rt, f->data, f->len, slot);
    if (rc == 0) {
        w->res->snapshots++;
        w->touched |= (uint8_t)(1u << nd->idx);
        if (w->cfg.durable) {
            free(nd->disk.snap);
            nd->disk.snap = f->data;
            nd->disk.snap_len = f->len;
            nd->disk.snap_slot = slot;
            snapsched_adopted(&nd->disk.sched, slot);
            *f = (struct rabia_buf){0};
        }
    } else if (rc != -EALREADY) { /* peers are honest here: a sender bug (-EALREADY: caught up meanwhile) */
        fail(w, "replica %u: snapshot from replica %u at slot %" PRIu64 " not installed: %d", nd->idx, from, slot, rc);
    }
    rabia_buf_free(f);
    return rc;
}

static void xfer_start(struct world *w, struct node *nd)
{
    struct snapstream_cfg c = {.chunk = w->cfg.xfer_chunk, .max = 1u << 20, .queued = 8ull * w->cfg.xfer_chunk,
                               .per_turn = 4ull * w->cfg.xfer_chunk, .stall_us = 100 * MS, .yield_us = 20 * MS,
                               .decline_backoff_us = 20 * MS, .rate = w->cfg.xfer_rate,
                               .log_retain = w->cfg.durable ? 0 : w->cfg.log_retain, .pin_us = 200 * MS};
    struct snapstream_env e = {.ctx = nd, .now_us = env_now, .note = xfer_note, .link_ready = xfer_link_ready,
                               .link_pending = xfer_link_pending, .source_open = xfer_source_open,
                               .source_read = xfer_source_read, .source_close = xfer_source_close, .send = xfer_send,
                               .space_free = xfer_space_free, .file_begin = xfer_file_begin,
                               .file_append = xfer_file_append, .file_commit = xfer_file_commit,
                               .file_abort = xfer_file_abort, .install = xfer_install};
    snapstream_init(&nd->xfer, &c, &e, nd->idx, w->cfg.n);
    snapstream_set_node(&nd->xfer, nd->rt);
}

/* Once per loop turn, as rabiad's: a transfer whose connection closed is
 * dropped, the rest move; a transfer out, or one waiting for its source,
 * wakes the replica again soon (rabiad's loop wakes when a send completes). */
static uint64_t xfer_turn(struct world *w, struct node *nd)
{
    for (uint8_t p = 0; p < w->cfg.n; p++)
        if (nd->xfer.rx[p].active && nd->xfer_epoch[p] != w->link_epoch[p][nd->idx])
            snapstream_link_closed(&nd->xfer, p);
    if (!w->cfg.durable && nd->rt) nd->xfer.cfg.log_retain = node_log_span(nd->rt); /* as rabiad */
    uint64_t due = snapstream_turn(&nd->xfer); /* a chunk held by the rate cap */
    for (uint8_t p = 0; p < w->cfg.n; p++) {
        if ((nd->xfer.tx[p].active || nd->xfer.tx[p].wanted) && (!due || w->now + 500 < due)) due = w->now + 500;
        uint64_t stall = nd->xfer.rx[p].last_us + nd->xfer.cfg.stall_us;
        if (nd->xfer.rx[p].active && (!due || stall < due)) due = stall;
    }
    return due;
}

/* Transfers end with the process (a crash, the run's end): a file being
 * received is gone, as rabiad's temporary file is removed at its next start. */
static void xfer_stop(struct node *nd)
{
    snapstream_end_all(&nd->xfer);
    for (uint8_t p = 0; p < MAX_N; p++) {
        rabia_buf_free(&nd->xfer_src[p]);
        rabia_buf_free(&nd->xfer_file[p]);
    }
}

static void env_fatal(void *ctx, const char *why)
{
    struct node *nd = ctx;
    fail(nd->w, "replica %u stops: %s", nd->idx, why);
}

static void env_note(void *ctx, int level, const char *msg)
{
    struct node *nd = ctx;
    if (level <= RABIA_LOG_WARN || nd->w->cfg.verbose > 1) flog(nd->w, "r%u: %s", nd->idx, msg);
}

/* Checks after a replica's core stepped; the loop turn of every replica
 * that had an event (node_turn: tick, batches, the next log write) and its
 * next wake-up. */
static void check_core(struct world *w, uint8_t i)
{
    struct node *nd = &w->nodes[i];
    /* per-slot phase bound: a replica stuck in a slot shows here */
    const struct rabia_stats *st = rabia_core_stats(nd->core);
    if (st->max_phase > MAX_PHASES) fail(w, "liveness: replica %u needed %" PRIu64 " phases in one slot", i, st->max_phase);
    if (st->anomalies)
        fail(w, "replica %u counted %" PRIu64 " protocol anomalies (last: %s)", i, st->anomalies,
             rabia_core_last_anomaly(nd->core));
}

static void turn(struct world *w, uint8_t i)
{
    struct node *nd = &w->nodes[i];
    if (!nd->alive || nd->paused_until > w->now || w->res->failed) return;
    uint64_t due = node_turn(nd->rt);
    check_core(w, i);
    if (w->cfg.durable) snap_tick(w, i);
    uint64_t xdue = xfer_turn(w, nd);
    if (xdue && (!due || xdue < due)) due = xdue;
    if (!due) return;
    if (due <= w->now) due = w->now + 1;
    if (nd->tick_at > w->now && nd->tick_at <= due) return; /* an earlier wake-up comes first */
    nd->tick_at = due;
    push(w, due, E_TICK, i, 0, nd->incarnation, 0);
}

static void step(struct world *w, uint8_t i, struct rabia_event *ev)
{
    struct node *nd = &w->nodes[i];
    bool rec = w->cfg.verbose && rabia_core_recovering(nd->core);
    node_step(nd->rt, ev);
    if (rec && !rabia_core_recovering(nd->core))
        flog(w, "r%u recovered: abstains in slots <= %" PRIu64 ", next apply %" PRIu64, i,
             rabia_core_abstain_below(nd->core), rabia_core_next_apply(nd->core));
    check_core(w, i);
    w->touched |= (uint8_t)(1u << i);
}

/* ------------------------------------------------------------------ */
/* proxies */

/* A request from the client on connection `ci` (its index; the session id
 * is in the message). */
static void on_client_req(struct world *w, uint8_t i, uint8_t ci, const struct rabia_msg *m)
{
    struct node *nd = &w->nodes[i];
    uint64_t cid = m->u64, seq = m->slot;
    if (ci >= w->n_clients || !cid) return;
    struct client *cl = &w->clients[ci];
    if ((w->cfg.bugs & SIM_BUG_STALE_READ) && cl->id == cid && cl->opened && cl->is_read && cl->seq == seq &&
        m->body_len > 16) {
        /* planted bug: serve the read from local state, no consensus */
        struct rabia_buf rep = {0};
        void *sm = rabia_rsm_sm(nd->rsm);
        rabia_sm_kv.apply(((struct tsm *)sm)->kv, m->body + 16, m->body_len - 16, &rep);
        struct rabia_msg r = {.type = RABIA_MSG_CLIENT_REPLY, .from = i, .u64 = cid, .slot = seq,
                              .value = RABIA_REPLY_OK, .body = rep.data, .body_len = (uint32_t)rep.len};
        client_net(w, ci, i, false, &r);
        rabia_buf_free(&rep);
        return;
    }
    struct node_to to = {.conn = ci};
    /* a client's GET: by the read index (node_read) three times in four,
     * through the log else (both paths in every run, interleaved; chosen
     * by a hash, not the world's random stream) */
    bool get = cl->id == cid && cl->opened && cl->is_read && cl->seq == seq;
    bool by_index = get && !w->cfg.no_read_index && ((cid * 0x9E3779B97F4A7C15ull) ^ (seq * 0xC2B2AE3D27D4EB4Full)) >> 62;
    if (!(by_index && node_read(nd->rt, cid, seq, m->u64b, m->body, m->body_len, &to)))
        node_request(nd->rt, cid, seq, m->u64b, m->body, m->body_len, &to);
    w->touched |= (uint8_t)(1u << i);
}

/* ------------------------------------------------------------------ */
/* clients */

static void client_send(struct world *w, struct client *c)
{
    struct rabia_msg m = {.type = RABIA_MSG_CLIENT_REQ, .u64 = c->id, .slot = c->seq, .u64b = c->ack,
                          .body = c->op.data, .body_len = (uint32_t)c->op.len};
    if (!c->opened) w->opens_sent++;
    client_net(w, c->idx, c->target, true, &m);
    push(w, w->now + CLIENT_TIMEOUT, E_CLIENT_TIMEOUT, c->idx, 0, c->opno, c->attempt);
}

/* A client's first request in a session is an OPEN: an empty op with
 * seq 1 under a nonce, never passed to the state machine and answered with
 * the id the log gives the session (core/rsm.h). Only then come its
 * operations, seq 2, 3, ..., under that id. */
static void typed_op(struct world *w, struct client *c);

static void client_next(struct world *w, struct client *c)
{
    if (w->now >= T_STOP || w->res->failed) return;
    c->opno++;
    c->attempt = 0;
    c->busy = true;
    rabia_buf_clear(&c->op);
    if (!c->opened) {
        c->seq = 1;
        c->ack = 1;
        c->is_read = false;
        c->invoke = w->now;
        client_send(w, c);
        return;
    }
    c->seq++;
    c->typed = rnd() % 4 == 0;
    if (c->typed) {
        c->is_read = false;
        typed_op(w, c);
        return;
    }
    c->key = rnd_range(1, NKEYS);
    c->is_read = rnd() % 2;
    c->value = c->id << 32 | c->seq;
    char kbuf[16], vbuf[24];
    snprintf(kbuf, sizeof kbuf, "k%" PRIu64, c->key);
    snprintf(vbuf, sizeof vbuf, "%" PRIu64, c->value);
    const char *argv[3] = {c->is_read ? "GET" : "SET", kbuf, vbuf};
    size_t lens[3] = {strlen(argv[0]), strlen(kbuf), strlen(vbuf)};
    rabia_buf_put_u64(&c->op, c->id);
    rabia_buf_put_u64(&c->op, c->seq);
    struct rabia_buf tmp = {0};
    rabia_kv_encode_argv(&tmp, c->is_read ? 2 : 3, argv, lens);
    rabia_buf_append(&c->op, tmp.data, tmp.len);
    rabia_buf_free(&tmp);
    c->invoke = w->now;
    c->lin = lin_history_invoke(w->hist, c->id, c->is_read ? LIN_READ : LIN_WRITE, c->key, c->value, 0, w->now);
    client_send(w, c);
}

/* A random command on hashes, lists, sets, sorted sets, expiry and the
 * keyspace, on keys of its own (the linearized GET/SET keys are k*): its
 * reply is not checked against a model, but every replica must compute it
 * and the state alike, and the state hashes compare them. Random pops and
 * expiry exercise the slot-seeded randomness and the log's clock. */
static void typed_op(struct world *w, struct client *c)
{
    char a[16][24];
    const char *argv[16];
    int n = 0;
    unsigned k = (unsigned)rnd_range(1, 4), j = (unsigned)rnd_range(1, 6), v = (unsigned)rnd_range(1, 99);
#define ARGF(...) (snprintf(a[n], sizeof a[n], __VA_ARGS__), argv[n] = a[n], n++)
    switch (rnd() % 20) {
    case 0: ARGF("HSET"); ARGF("h%u", k); ARGF("f%u", j); ARGF("%u", v); break;
    case 1: ARGF("HINCRBY"); ARGF("h%u", k); ARGF("n"); ARGF("%u", v); break;
    case 2: ARGF("HDEL"); ARGF("h%u", k); ARGF("f%u", j); break;
    case 3: ARGF("HGETALL"); ARGF("h%u", k); break;
    case 4: ARGF("LPUSH"); ARGF("l%u", k); ARGF("%u", v); break;
    case 5: ARGF("RPOP"); ARGF("l%u", k); break;
    case 6: ARGF("LMOVE"); ARGF("l%u", k); ARGF("l%u", j % 4 + 1); ARGF("LEFT"); ARGF("RIGHT"); break;
    case 7: ARGF("SADD"); ARGF("s%u", k); ARGF("m%u", j); break;
    case 8: ARGF("SPOP"); ARGF("s%u", k); break;
    case 9: ARGF("SRANDMEMBER"); ARGF("s%u", k); ARGF("-3"); break;
    case 10: ARGF("SINTERSTORE"); ARGF("s%u", k); ARGF("s%u", j % 4 + 1); ARGF("s%u", v % 4 + 1); break;
    case 11: ARGF("ZADD"); ARGF("z%u", k); ARGF("%u", v); ARGF("m%u", j); break;
    case 12: ARGF("ZINCRBY"); ARGF("z%u", k); ARGF("1.5"); ARGF("m%u", j); break;
    case 13: ARGF("ZPOPMIN"); ARGF("z%u", k); break;
    case 14: ARGF("ZRANGE"); ARGF("z%u", k); ARGF("0"); ARGF("-1"); ARGF("WITHSCORES"); break;
    case 15: ARGF("SET"); ARGF("t%u", k); ARGF("%u", v); ARGF("PX"); ARGF("%u", 50 + v * 5); break;
    case 16: ARGF("PEXPIRE"); ARGF("%c%u", "hlsz"[j % 4], k); ARGF("%u", 100 + v * 10); break;
    case 17: ARGF("SWEEP"); ARGF("50"); break;
    case 18:
        /* feature levels (kv/features.c): the level rises at one point of
         * the log, LMPOP and ZMPOP are unknown before it on every replica
         * and carried out after it; snapshots and transfers carry the
         * level. Chosen by v: the random stream stays the same. Level 1
         * or this build's (2: scripts count their allocations, the
         * clients' EVALs run under both; 4: PFADD, PFCOUNT, PFMERGE, BITFIELD;
         * 5: GEOADD, GEOSEARCHSTORE, SORT). */
        if (v % 8 == 0) {
            ARGF("FEATURELEVEL"); ARGF("%d", j % 2 ? 1 : RABIA_KV_FEATURE_LEVEL);
        } else if (v % 8 == 1) {
            ARGF("LMPOP"); ARGF("2"); ARGF("l%u", k); ARGF("l%u", j % 4 + 1); ARGF("LEFT"); ARGF("COUNT"); ARGF("2");
        } else if (v % 8 == 2) {
            ARGF("ZMPOP"); ARGF("1"); ARGF("z%u", k); ARGF("MAX");
        } else if (v % 8 == 3) { /* HyperLogLog (level 4): strings changed in place */
            ARGF("PFADD"); ARGF("p%u", k); ARGF("e%u", v * 7 + j); ARGF("e%u", v * 13 + k);
        } else if (v % 8 == 4) {
            ARGF("PFCOUNT"); ARGF("p%u", k); /* writes the cached count */
        } else if (v % 8 == 5) {
            ARGF("PFMERGE"); ARGF("p%u", k); ARGF("p%u", j % 4 + 1);
        } else if (v % 8 == 6) { /* BITFIELD (level 4): bits written in place */
            ARGF("BITFIELD"); ARGF("b%u", k); ARGF("INCRBY"); ARGF("i5"); ARGF("#%u", j); ARGF("%u", v);
            ARGF("OVERFLOW"); ARGF("SAT");
        } else if (j % 3 == 0) { /* geo (level 5): a sorted set of geohash scores */
            ARGF("GEOADD"); ARGF("g%u", k); ARGF("%u.%02u", 13 + v % 3, (v * 7 + j) % 100);
            ARGF("%u.%02u", 37 + j % 2, (v * 13 + k) % 100); ARGF("m%u", j);
        } else if (j % 3 == 1) { /* distances stored as scores: doubles in snapshots and hashes */
            ARGF("GEOSEARCHSTORE"); ARGF("g%u", j % 4 + 1); ARGF("g%u", k); ARGF("FROMLONLAT"); ARGF("14");
            ARGF("37.5"); ARGF("BYRADIUS"); ARGF("%u", 50 + v * 5); ARGF("km"); ARGF("COUNT"); ARGF("3");
            ARGF("STOREDIST");
        } else if (v % 2 == 0) { /* SORT (level 5) of a list into another: a new list in the log */
            ARGF("SORT"); ARGF("l%u", k); ARGF("ALPHA"); ARGF("DESC"); ARGF("STORE"); ARGF("l%u", j % 4 + 1);
        } else {
            ARGF("RANDOMKEY");
        }
        break;
    default:
        /* a script, by body or by its SHA-1 (NOSCRIPT until some replica's
         * EVAL cached it: the cache is state, carried by snapshots and
         * transfers), or SCAN; chosen by v so the random stream is the
         * same as before scripts were added */
        if (v % 3 != 2) {
            static const char body[] = "redis.call('SADD', KEYS[1], ARGV[1]) return redis.call('SCARD', KEYS[1])";
            argv[n++] = v % 3 == 0 ? "EVAL" : "EVALSHA";
            argv[n++] = v % 3 == 0 ? body : "ebd99465f7d0b61fa77f815cf9f6123ee3f76fb5";
            ARGF("1");
            ARGF("s%u", k);
            ARGF("m%u", j);
        } else {
            ARGF("SCAN"); ARGF("0"); ARGF("COUNT"); ARGF("5");
        }
        break;
    }
#undef ARGF
    rabia_buf_put_u64(&c->op, c->id);
    rabia_buf_put_u64(&c->op, c->seq);
    struct rabia_buf tmp = {0};
    rabia_kv_encode_argv(&tmp, n, argv, NULL);
    rabia_buf_append(&c->op, tmp.data, tmp.len);
    rabia_buf_free(&tmp);
    c->invoke = w->now;
    client_send(w, c);
}

/* The session is gone (evicted, or never opened): the outstanding op's
 * outcome is unknown (it stays LIN_UNKNOWN in the history); continue as a
 * new session with an id never used before, so (client, seq) stays unique
 * for the exactly-once check. */
static void client_new_session(struct world *w, struct client *c)
{
    if (c->opened) w->res->ops_unknown++;
    c->busy = false;
    c->opened = false;
    c->id = w->next_cid++;
    c->seq = 0;
    c->ack = 1;
    push(w, w->now + rnd_range(1 * MS, 6 * MS), E_CLIENT_NEXT, c->idx, 0, 0, 0);
}

static uint64_t parse_get(const uint8_t *p, size_t len, bool *ok)
{
    *ok = true;
    if (len >= 5 && !memcmp(p, "$-1\r\n", 5)) return 0;
    if (len < 4 || p[0] != '$') {
        *ok = false;
        return 0;
    }
    size_t i = 1;
    while (i < len && p[i] != '\r') i++;
    i += 2;
    uint64_t v = 0;
    while (i < len && p[i] >= '0' && p[i] <= '9') v = v * 10 + (uint64_t)(p[i++] - '0');
    return v;
}

static void on_client_reply(struct world *w, struct client *c, const struct rabia_msg *m)
{
    if (!c->busy || m->u64 != c->id || m->slot != c->seq) return; /* late reply to an old attempt */
    if (m->value == RABIA_REPLY_SESSION_EXPIRED) {
        /* A client's session is evicted only from a table full of client
         * sessions (connection-scoped ones go first: core/rsm.h), so with
         * fewer OPENs sent than it holds none was: this answer is wrong (a
         * window that forgot the reply of the seq the client still waits
         * for, its ack, passed every other check of 525 runs, answering
         * 650 of one calm run's 885 requests so). */
        if (w->opens_sent < w->res->sessions)
            fail(w, "sessions: client %" PRIu64 " seq %" PRIu64 " answered SESSION_EXPIRED, but clients sent %" PRIu64
                 " OPENs, fewer than the table's %" PRIu64 " sessions: none can have been evicted", c->id, c->seq,
                 w->opens_sent, (uint64_t)w->res->sessions);
        w->res->expired++;
        client_new_session(w, c);
        return;
    }
    if (m->value != RABIA_REPLY_OK) return;     /* wait for the timeout, retry */
    c->busy = false;
    if (!c->opened) {
        /* the log names the session (core/rsm.h): its id, 8 bytes LE */
        if (m->body_len != 8) {
            fail(w, "client %" PRIu64 ": OPEN answered with %u bytes, not a session id", c->id, m->body_len);
            return;
        }
        uint64_t id = 0;
        for (int k = 7; k >= 0; k--) id = id << 8 | m->body[k];
        if (!(id & RABIA_SESSION_ASSIGNED) || (id & ~RABIA_SESSION_ASSIGNED) >> 32)
            fail(w, "client %" PRIu64 ": OPEN answered with session id %" PRIx64, c->id, id);
        c->id = id;
        c->opened = true;
        c->ack = 2;
        push(w, w->now + rnd_range(0, 1 * MS), E_CLIENT_NEXT, c->idx, 0, 0, 0);
        return;
    }
    uint64_t result = 0;
    if (c->typed) {
        size_t used;
        /* LMPOP and ZMPOP are unknown until a FEATURELEVEL 1 was applied,
         * the PF commands and BITFIELD until level 4, the geo ones until 5
         * (every replica answers alike: the state hashes check that) */
        static const char before_level[][40] = {"-ERR unknown command 'LMPOP'", "-ERR unknown command 'ZMPOP'",
                                                "-ERR unknown command 'PFADD'", "-ERR unknown command 'PFCOUNT'",
                                                "-ERR unknown command 'PFMERGE'", "-ERR unknown command 'BITFIELD'",
                                                "-ERR unknown command 'GEOADD'",
                                                "-ERR unknown command 'GEOSEARCHSTORE'",
                                                "-ERR unknown command 'SORT'"};
        bool early = false;
        for (size_t k = 0; k < sizeof before_level / sizeof before_level[0]; k++)
            early |= m->body_len >= strlen(before_level[k]) &&
                     !memcmp(m->body, before_level[k], strlen(before_level[k]));
        if (rabia_kv_resp_check(m->body, m->body_len, &used) != 0 || used != m->body_len ||
            (m->body_len >= 4 && !memcmp(m->body, "-ERR", 4) && !early))
            fail(w, "client %" PRIu64 ": bad reply to a typed command: %.*s", c->id, (int)m->body_len,
                 (const char *)m->body);
        w->res->ops_ok++;
        c->ack = c->seq + 1;
        push(w, w->now + rnd_range(1 * MS, 6 * MS), E_CLIENT_NEXT, c->idx, 0, 0, 0);
        return;
    }
    if (c->is_read) {
        bool ok;
        result = parse_get(m->body, m->body_len, &ok);
        if (!ok) fail(w, "client %" PRIu64 ": bad GET reply", c->id);
    } else if (m->body_len < 3 || memcmp(m->body, "+OK", 3)) {
        fail(w, "client %" PRIu64 ": bad SET reply", c->id);
    }
    lin_history_complete(w->hist, c->lin, LIN_OK, result, w->now);
    w->res->ops_ok++;
    if (w->healed && w->now - (c->invoke > T_HEAL ? c->invoke : T_HEAL) > LIVENESS_US)
        fail(w, "liveness: client %" PRIu64 " seq %" PRIu64 " took %" PRIu64 " ms after healing", c->id, c->seq,
             (w->now - c->invoke) / MS);
    c->ack = c->seq + 1;
    push(w, w->now + rnd_range(1 * MS, 6 * MS), E_CLIENT_NEXT, c->idx, 0, 0, 0);
}

static void on_client_timeout(struct world *w, struct client *c, uint64_t opno, uint64_t attempt)
{
    if (!c->busy || c->opno != opno || c->attempt != attempt) return;
    c->attempt++;
    if (!w->healed && c->attempt >= 12) { /* give up: outcome unknown */
        if (!c->opened) { /* the session may or may not exist: start afresh */
            client_new_session(w, c);
            return;
        }
        c->busy = false;
        w->res->ops_unknown++;
        c->ack = c->seq + 1;
        push(w, w->now + rnd_range(1 * MS, 6 * MS), E_CLIENT_NEXT, c->idx, 0, 0, 0);
        return;
    }
    c->target = (uint8_t)((c->target + 1) % w->cfg.n);
    client_send(w, c);
}

/* ------------------------------------------------------------------ */
/* nodes: start, crash, restart */

/* The coin must be common: every replica flips the same value for a
 * (slot, phase). A per-replica coin breaks termination, not safety, so no
 * other checker would see it quickly. */
static void coin_cb(void *ctx, uint64_t slot, uint32_t phase, int value)
{
    struct world *w = ctx;
    w->coin_flips++;
    if (w->coins_used * 2 >= w->coins_cap) {
        size_t oc = w->coins_cap, nc = oc ? 2 * oc : 1024;
        struct coinrec *old = w->coins;
        w->coins = calloc(nc, sizeof(*w->coins));
        if (!w->coins) abort();
        w->coins_cap = nc;
        for (size_t i = 0; i < oc; i++) {
            if (!old[i].used) continue;
            size_t j = (old[i].slot * 31 + old[i].phase) & (nc - 1);
            while (w->coins[j].used) j = (j + 1) & (nc - 1);
            w->coins[j] = old[i];
        }
        free(old);
    }
    size_t m = w->coins_cap - 1, j = (slot * 31 + phase) & m;
    for (; w->coins[j].used; j = (j + 1) & m) {
        if (w->coins[j].slot == slot && w->coins[j].phase == phase) {
            if (w->coins[j].value != value)
                fail(w, "common coin: replicas flipped different coins in slot %" PRIu64 " phase %u", slot, phase);
            return;
        }
    }
    w->coins[j] = (struct coinrec){.slot = slot, .phase = phase, .value = (uint8_t)value, .used = true};
    w->coins_used++;
}

/* durable mode, a restart with an intact log: the snapshot file, then the
 * log's records through replica/replay.c (what rabiad's durable_open runs
 * over the write-ahead log's scan), which rebuilds the state and says what
 * the core gets back. */
static int recover(struct world *w, uint8_t i, struct replay *rp, struct node_restore *rest)
{
    struct node *nd = &w->nodes[i];
    struct sdisk *d = &nd->disk;
    if (d->snap && rabia_rsm_restore(nd->rsm, d->snap, d->snap_len)) {
        fail(w, "replica %u: its snapshot file does not restore", i);
        return -1;
    }
    size_t skip = SIZE_MAX;
    if (d->damaged && (w->cfg.bugs & SIM_BUG_SKIP_RECORD)) {
        /* planted bug: the damaged record is skipped, not refused: the newest
         * record of what this replica sent in a slot still open */
        for (size_t k = d->n; k-- > 0;)
            if (d->r[k].type == NODE_REC_SENT) {
                skip = k;
                break;
            }
        d->damaged = false;
    }
    replay_init(rp, i, w->cfg.window, d->snap ? d->snap_slot : 0, nd->rsm);
    if (d->released) w->res->restarts_tail++;
    for (size_t k = 0; k < d->n; k++) {
        if (k == skip) continue;
        struct drec *r = &d->r[k];
        if (r->type == NODE_REC_RESERVE && (w->cfg.bugs & SIM_BUG_FORGET_RESERVE)) continue;
        int len = rabia_msg_encode(&r->m, w->enc, sizeof w->enc);
        char err[512];
        if (len < 0) {
            fail(w, "replica %u: a log record does not encode: %d", i, len);
            return -1;
        }
        if (replay_record(rp, r->type, r->slot, w->enc, (uint32_t)len, err, sizeof err)) {
            fail(w, "replica %u: recovery refused its log: %s", i, err);
            return -1;
        }
    }
    if (rp->rejoin_pending) {
        fail(w, "replica %u: an unfinished recovery's log reached replay (restart should have removed it)", i);
        return -1;
    }
    if (replay_finish(rp, d->batch_inc, rest)) abort();
    w->res->restored += rest->n;
    return 0;
}

static void start_node(struct world *w, uint8_t i, bool recovering)
{
    struct node *nd = &w->nodes[i];
    nd->w = w;
    nd->idx = i;
    struct rabia_config cfg;
    rabia_config_default(&cfg, w->cfg.n, i);
    cfg.window = w->cfg.window;
    cfg.policy = w->cfg.policy;
    cfg.log_retain = w->cfg.log_retain;
    cfg.log_retain_bytes = w->cfg.log_retain_bytes;
    cfg.catchup_chunk = 16;
    cfg.max_batch_bytes = 4096;
    cfg.max_pending = 32;
    cfg.retransmit_us = 5 * MS;
    cfg.cluster_seed = 0xC0FFEE;
    cfg.incarnation = ++nd->incarnation;
    if (w->cfg.durable) { /* the batch id namespace is the log's (core.h rule 1) */
        if (!nd->disk.batch_inc) nd->disk.batch_inc = nd->incarnation;
        cfg.incarnation = nd->disk.batch_inc;
        /* the schedule starts over with the process, from the newest file */
        struct snapsched_cfg sc = {.max_log_bytes = w->cfg.snap_log_bytes, .interval_us = w->cfg.snap_interval_us,
                                   .retry_us = 50 * MS};
        snapsched_init(&nd->disk.sched, &sc, nd->disk.snap ? nd->disk.snap_slot : 0, nd->disk.log_bytes);
    }
    cfg.recovering = recovering;
    cfg.bugs = w->cfg.bugs & 0xFFFF;
    if (w->cfg.old_reads_at == i + 1) cfg.bugs |= RABIA_BUG_READ_OLD_ANSWER;
    hello_init(&nd->hello, SIM_CLUSTER_ID, w->cfg.n, i);
    nd->hello.bugs = (w->cfg.bugs & SIM_BUG_KEEP_OLD_LINK) ? HELLO_BUG_KEEP_OLD : 0;
    for (uint8_t p = 0; p < w->cfg.n; p++) nd->hello.peer[p].first_heard = nd->seen[p]; /* peers-seen, read */
    /* first-start, as replica.c keeps it: written by a start that votes at
     * once on an empty data dir (the first one, or one that lost it all),
     * ended by a recovering start, kept by any other */
    if (recovering) nd->fs_birth = 0;
    else if (nd->incarnation == 1 || nd->wiped_life) nd->fs_birth = nd->incarnation;
    RABIA_ASSERT(!nd->wiped_life || !recovering);
    /* the world's time runs about 20 times rabiad's (snapstream's limits too) */
    struct node_cfg nc = {.self = i, .n = w->cfg.n, .sm = &TSM, .waiters_cap = WAITERS, .log_serving_us = 50 * MS};
    nc.rsm = (struct rabia_rsm_config){.max_sessions = w->res->sessions, .max_reply_bytes = 1024};
    batcher_cfg_default(&nc.batch);
    nc.batch.max_bytes = 4096;
    nc.batch.max_reqs = BATCH_MAX_REQS;
    nc.batch.timeout_us = BATCH_DELAY;
    nc.linger_us = w->cfg.linger_us;
    nc.bugs = ((w->cfg.bugs & SIM_BUG_SEND_EARLY) ? NODE_BUG_SEND_EARLY : 0) |
              ((w->cfg.bugs & SIM_BUG_REPLY_EARLY) ? NODE_BUG_REPLY_EARLY : 0) |
              ((w->cfg.bugs & SIM_BUG_LOG_FETCH) ? NODE_BUG_LOG_FETCH : 0) |
              ((w->cfg.bugs & SIM_BUG_READ_NOWAIT) ? NODE_BUG_READ_NOWAIT : 0) |
              ((w->cfg.bugs & SIM_BUG_LOG_REFUSAL) ? NODE_BUG_LOG_REFUSAL : 0);
    nc.reads_cap = w->cfg.no_read_index ? 0 : 16; /* small: a full queue sends reads through the log */
    nc.read_fallback_us = 8 * cfg.retransmit_us;   /* partitions outlast it: reads go through the log after all */
    nc.read_cid = (XXH64(&nd->incarnation, sizeof nd->incarnation, 0x4EADu + i) | 1) | RABIA_SESSION_CONN_SCOPED;
    for (uint8_t p = 0; p < MAX_N; p++) nd->cu[p].on = false; /* a new life reads from scratch */
    struct node_env env = {.ctx = nd, .now_us = env_now, .wall_ms = env_wall_ms, .send = env_send, .send_shared = env_send_shared,
                           .reply = env_reply,
                           .snapshot_to = env_snapshot_to, .fatal = env_fatal, .note = env_note,
                           .decided = env_decided, .applied = env_applied, .submitted = env_submitted};
    nd->rt = node_create(&nc, &env);
    if (!nd->rt) {
        fprintf(stderr, "sim: cannot create replica\n");
        abort();
    }
    nd->rsm = node_rsm(nd->rt);
    xfer_start(w, nd);
    nd->alive = true;
    nd->tick_at = 0;
    nd->last_voted = 0;
    struct replay *rp = calloc(1, sizeof(*rp));
    if (!rp) abort();
    struct node_restore rest = {0};
    bool restored = w->cfg.durable && !recovering && recover(w, i, rp, &rest) == 0;
    struct node_log lg = {.ctx = nd, .append = log_append, .write = log_write, .refusal = log_refusal,
                          .catchup = log_catchup, .holds = log_holds};
    if (node_start(nd->rt, &cfg, w->cfg.durable ? &lg : NULL, restored ? &rest : NULL)) {
        fprintf(stderr, "sim: cannot start replica\n");
        abort();
    }
    replay_free(rp);
    free(rp);
    nd->core = node_core(nd->rt);
    if (w->cfg.trace_slot >= 0) rabia_core_set_trace(nd->core, trace_cb, w);
    rabia_core_set_coin_observer(nd->core, coin_cb, w);
    struct node_stats ns;
    node_stats(nd->rt, &ns);
    if (ns.restore_refused)
        fail(w, "replica %u: %" PRIu64 " log record(s) refused at restore (a decided slot may need one)", i,
             ns.restore_refused);
    check_core(w, i);
    w->touched |= (uint8_t)(1u << i);
}

static void acc_stats(struct rabia_stats *a, const struct rabia_stats *s)
{
    a->slots_decided += s->slots_decided;
    a->slots_null += s->slots_null;
    a->slots_fast += s->slots_fast;
    a->decisions_adopted += s->decisions_adopted;
    a->catchup_deduped += s->catchup_deduped;
    a->slots_unanimous += s->slots_unanimous;
    a->proposals_held += s->proposals_held;
    if (s->max_phase > a->max_phase) a->max_phase = s->max_phase;
}

/* The connection b dialed to a ends (a reset, a cut, a new one replacing
 * it): a's HELLO rules forget it; what it held is never delivered (the
 * caller moves link_epoch[b][a] on). */
static void link_closed(struct world *w, uint8_t a, uint8_t b)
{
    struct node *na = &w->nodes[a];
    if (na->alive) (void)hello_closed(&na->hello, b, hello_conn(&na->hello, b));
}

/* a takes the HELLO of b's new connection, by replica/hello.c's rules as
 * rabiad does: what b's connection before it held is discarded, unread,
 * when the rules say so (the persistence contract's rule 3). */
static void take_hello(struct world *w, uint8_t a, uint8_t b)
{
    struct node *na = &w->nodes[a], *nb = &w->nodes[b];
    struct rabia_msg m = {.type = RABIA_MSG_HELLO, .from = b, .u64 = SIM_CLUSTER_ID, .u64b = nb->incarnation,
                          .value = RABIA_PROTOCOL_VERSION};
    uint64_t wall = env_wall_ms(na) * 1000u;
    enum hello_verdict v = hello_check(&na->hello, &m, wall);
    if (v != HELLO_OK) {
        char why[400];
        hello_refusal(&na->hello, v, &m, wall, why, sizeof why);
        fail(w, "replica %u refused the HELLO of replica %u life %" PRIu64 ": %s", a, b, nb->incarnation, why);
        return;
    }
    struct hello_taken t = hello_take(&na->hello, b, nb->incarnation, ++w->conn_seq);
    if (t.refused) fail(w, "replica %u refused replica %u's life %" PRIu64 " as older", a, b, nb->incarnation);
    if (t.drop != HELLO_NO_CONN) w->link_epoch[b][a]++;
    if (hello_heard(&na->hello, b, nb->incarnation, nb->fs_birth ? nb->fs_birth : nb->incarnation))
        na->seen[b] = na->hello.peer[b].first_heard; /* peers-seen, written */
}

/* Whether a refuses the connection b dialed to it: b's life votes at once
 * on a data dir that began empty (FIRST_START, sent after HELLO), and a
 * heard an earlier life of b (replica/hello.c, as replica.c asks before it
 * takes the connection). A refusal tells the operator (the ERROR names the
 * fix): E_OPFIX, a while later. */
static bool first_start_refused(struct world *w, uint8_t a, uint8_t b)
{
    struct node *na = &w->nodes[a], *nb = &w->nodes[b];
    if (!nb->fs_birth || (w->cfg.bugs & SIM_BUG_FIRST_START)) return false;
    if (hello_first_start_ok(&na->hello, b, nb->fs_birth)) return false;
    w->res->first_refused++;
    char why[400];
    hello_first_start_refusal(&na->hello, b, nb->fs_birth, nb->incarnation, why, sizeof why);
    flog(w, "r%u refuses r%u's connection: %s", a, b, why);
    if (!nb->wiped_life) fail(w, "replica %u refused replica %u, whose data dir was never lost: %s", a, b, why);
    if (!nb->fix_planned) {
        nb->fix_planned = true;
        push(w, w->now + rnd_range(5 * MS, 60 * MS), E_OPFIX, b, 0, nb->incarnation, 0);
    }
    return true;
}

/* Reopen the connection a-b: a new epoch, so nothing of the old one is
 * delivered any more. */
static void reconnect(struct world *w, uint8_t a, uint8_t b)
{
    link_closed(w, a, b);
    link_closed(w, b, a);
    w->link_epoch[a][b]++;
    w->link_epoch[b][a]++;
    push(w, w->now + rnd_range(100, 2 * MS), E_CONNECT, a, b, w->link_epoch[a][b], 0);
}

/* rabiad's sender closes a peer link whose output limit a stopped peer
 * filled (replica.c, send_to_peers): what the connection held is lost, the
 * sender redials 50 ms later (2.5 ms of the world's time) and the paused
 * peer takes the new connection's HELLO once it runs again. (Called from
 * within the sender's step, nothing steps here; PEER_DOWN is a no-op in
 * the core anyway.)
 * integration.peer_stall's CI failure began this way: a stopped replica
 * lost the batches of decided slots with that connection. */
static void output_full(struct world *w, uint8_t from, uint8_t to)
{
    w->res->out_full++;
    w->link_up[from][to] = w->link_up[to][from] = false;
    link_closed(w, from, to);
    link_closed(w, to, from);
    w->link_epoch[from][to]++;
    w->link_epoch[to][from]++;
    push(w, w->now + rnd_range(2 * MS, 3 * MS), E_HEAL_LINK, from, to, 0, 0);
}

static void cut(struct world *w, uint8_t a, uint8_t b)
{
    w->link_up[a][b] = w->link_up[b][a] = false;
    link_closed(w, a, b);
    link_closed(w, b, a);
    w->link_epoch[a][b]++;
    w->link_epoch[b][a]++;
    struct rabia_event ev = {.type = RABIA_EV_PEER_DOWN};
    if (w->nodes[a].alive) {
        ev.peer = b;
        step(w, a, &ev);
    }
    if (w->nodes[b].alive) {
        ev.peer = a;
        step(w, b, &ev);
    }
}

static bool partitioned[MAX_N][MAX_N];

/* Down: crashed, recovering, or abstaining in a slot it has not applied
 * yet. The horizon rule (include/rabia/core.h) assumes at most f replicas
 * down at once; crashes keep to that, and nothing else. */
static bool is_down(struct world *w, uint8_t i)
{
    struct node *nd = &w->nodes[i];
    if (!nd->alive || nd->wiped_life || nd->wipe_next || nd->op_rejoin) return true; /* refused until rebuilt */
    return rabia_core_recovering(nd->core) || rabia_core_abstain_below(nd->core) >= rabia_core_next_apply(nd->core);
}

/* durable: a new, empty data dir in place of the old one (its log,
 * snapshot and batch id namespace gone); began_recovering: it is started
 * with --rejoin, which its log's first segment says */
static void disk_empty(struct sdisk *d, bool began_recovering)
{
    disk_free(d, 0);
    d->durable = d->flight_end = 0;
    free(d->snap);
    d->snap = NULL;
    d->snap_len = d->snap_slot = 0;
    d->batch_inc = 0; /* a new log, a new batch id namespace */
    d->released = 0;
    d->damaged = false;
    d->began_recovering = began_recovering;
}

/* durable: the log began with a recovery (--rejoin) that has not ended;
 * a start finds it so and begins again with a new log (restart) */
static bool recovery_pending(const struct sdisk *d)
{
    bool pending = d->began_recovering;
    for (size_t k = 0; k < d->n; k++) {
        if (d->r[k].type != NODE_REC_SENT) continue;
        if (d->r[k].m.type == RABIA_MSG_HORIZON_REQ) pending = true;
        else if (d->r[k].m.type == RABIA_MSG_HORIZON) pending = false;
    }
    return pending;
}

/* --wipes: a replica runs a life on a lost data dir, or will: a rebuild
 * (--rejoin) of another meanwhile would not know it (maybe_wipe) */
static bool any_wiped(const struct world *w)
{
    for (uint8_t j = 0; j < w->cfg.n; j++)
        if (w->nodes[j].wiped_life || w->nodes[j].wipe_next) return true;
    return false;
}

/* --wipes: whether the crash of replica i just now also loses its data
 * dir, the replica then started again without --rejoin (one such replica
 * at a time, and only while fewer than f others are down: until the
 * operator rebuilds it, it counts as down). Draws from the run's random
 * stream only with --wipes, so every other run replays as before. */
static bool maybe_wipe(struct world *w, uint8_t i)
{
    if (!w->cfg.wipes) return false;
    uint8_t n = w->cfg.n, f = (uint8_t)((n - 1) / 2);
    uint32_t down = 0;
    for (uint8_t j = 0; j < n; j++) {
        if (j == i) continue;
        if (w->nodes[j].wiped_life || w->nodes[j].wipe_next || w->nodes[j].op_rejoin) return false;
        /* A peer whose data dir never heard i (rebuilt with --rejoin since
         * i was last up) cannot tell i's first start from a lost data dir:
         * it takes it (a known gap, replica/README.md "A data dir lost";
         * seed 14900036 of --wipes --mix crash without this line). */
        if (!w->nodes[j].seen[i]) return false;
        if (w->cfg.durable && recovery_pending(&w->nodes[j].disk)) return false; /* ... which it may start over */
        if (is_down(w, j)) down++;
    }
    if (down >= f || rnd() % 3) return false;
    w->nodes[i].wipe_next = true;
    flog(w, "r%u's data dir is lost with it", i);
    return true;
}

/* The process dies. What it already sent still reaches the peers in
 * `keep` (a dead process's TCP data in flight is delivered); its
 * connections to the others are reset, so their tail is lost. Nothing
 * sent to it is delivered to any later life. */
static void crash(struct world *w, uint8_t i, uint8_t keep)
{
    struct node *nd = &w->nodes[i];
    acc_stats(&nd->acc, rabia_core_stats(nd->core));
    node_count(w, nd);
    share_drop_all(nd); /* its connections went with it */
    xfer_stop(nd);
    node_destroy(nd->rt); /* what it held in memory (sends, waiters, batches) is gone */
    nd->rt = NULL;
    nd->core = NULL;
    nd->rsm = NULL;
    nd->alive = false;
    nd->paused_until = 0;
    for (uint8_t j = 0; j < w->cfg.n; j++) {
        if (j == i) continue;
        w->link_epoch[j][i]++;
        if (!((keep >> j) & 1)) { /* reset: j's end closes */
            link_closed(w, j, i);
            w->link_epoch[i][j]++;
        }
    }
    w->res->crashes++;
    if (w->cfg.durable) {
        /* unsynced writes are lost; the write in flight either reached the
         * disk (its completion never came) or is torn, which the log's group
         * checksum cuts off whole */
        struct sdisk *d = &nd->disk;
        size_t keep_n = d->durable;
        if (d->busy && rnd() % 2) keep_n = d->flight_end;
        else if (d->busy) w->res->torn++;
        disk_free(d, keep_n);
        d->durable = d->flight_end = keep_n;
        d->busy = false;
        rabia_buf_free(&d->snap_new); /* the snapshot child dies with it; its temporary file goes at the next start */
    }
}

/* Start a crashed replica again, recovering (the persistence contract's
 * rule 2). Its connections open anew; on each, the peer discards what is
 * left of the old life's connection before it processes the new one (rule
 * 3: the E_CONNECT below bumps that epoch). Until then the old life's
 * messages in flight may still arrive. */
static void restart(struct world *w, uint8_t i)
{
    struct node *nd = &w->nodes[i];
    if (nd->alive) return;
    w->res->restarts++;
    bool open = nd->last_voted && !slotrec(w, nd->last_voted)->set;
    if (open) w->res->restarts_open++;
    flog(w, "r%u restarts (life %" PRIu64 "); its last vote was in slot %" PRIu64 ", %s", i, nd->incarnation + 1,
         nd->last_voted, open ? "still open" : "applied somewhere");
    for (uint8_t j = 0; j < w->cfg.n; j++) {
        if (j == i) continue;
        w->link_up[i][j] = w->link_up[j][i] = false;
        w->link_epoch[j][i]++;
    }
    bool recovering = !(w->cfg.bugs & SIM_BUG_FORGET_VOTE);
    bool lost = nd->wipe_next || nd->op_rejoin; /* --wipes: the data dir is empty at this start */
    if (lost) {
        flog(w, "r%u's data dir is %s", i,
             nd->op_rejoin ? "emptied by the operator: it starts with --rejoin"
                           : "lost: it starts again on an empty one, without --rejoin");
        if (nd->wipe_next) w->res->wipes++;
        memset(nd->seen, 0, sizeof nd->seen);
        recovering = nd->op_rejoin; /* no incarnation file: a first start unless --rejoin says otherwise */
        nd->wiped_life = nd->wipe_next && !nd->op_rejoin;
        nd->fix_planned = false;
        nd->wipe_next = nd->op_rejoin = false;
        if (w->cfg.durable) disk_empty(&nd->disk, recovering);
    } else if (w->cfg.durable) {
        struct sdisk *d = &nd->disk;
        recovering = false; /* its log is intact: it takes part at once */
        bool pending = recovery_pending(d);
        if (pending) {
            flog(w, "r%u: its recovery did not finish: again, with a new log", i);
            d->damaged = true;
        }
        if (d->damaged && (pending || !(w->cfg.bugs & SIM_BUG_SKIP_RECORD))) {
            /* the log refuses to open (persist/README.md); the operator moves the
             * data dir aside and starts it with --rejoin: no log, horizon rule */
            flog(w, "r%u: its log is damaged: rebuilt from its peers (--rejoin)", i);
            w->res->damaged++;
            disk_empty(d, true);
            recovering = true;
            memset(nd->seen, 0, sizeof nd->seen); /* a new data dir: peers-seen starts over */
        }
    }
    if (recovering) nd->wiped_life = false; /* a recovering start ends it (replica.c forgets first-start) */
    start_node(w, i, recovering);
    for (uint8_t j = 0; j < w->cfg.n; j++)
        if (j != i && w->nodes[j].alive && !partitioned[i][j])
            push(w, w->now + rnd_range(100, 2 * MS), E_CONNECT, j, i, w->link_epoch[j][i], 1);
}

static void partition_until(struct world *w, uint8_t a, uint8_t b, uint64_t until)
{
    partitioned[a][b] = partitioned[b][a] = true;
    if (w->link_up[a][b]) cut(w, a, b);
    push(w, until, E_HEAL_LINK, a, b, 1, 0);
}

/* A crash fault: replica i dies if at most f replicas are down with it,
 * and comes back soon (slots take about a millisecond), often while the
 * slots it voted in are still open: the others are paused or split around
 * the crash. With n >= 5 its last messages sometimes reach only a few
 * peers (R), which are then cut off from it until it has its horizon, so
 * the horizon comes from the peers that missed those messages. */
static void crash_fault(struct world *w, int target, int stale)
{
    uint8_t n = w->cfg.n, f = (uint8_t)((n - 1) / 2);
    uint8_t i = target >= 0 ? (uint8_t)target : (uint8_t)(rnd() % n);
    struct node *nd = &w->nodes[i];
    if (!nd->alive) return;
    uint32_t down = 0;
    for (uint8_t j = 0; j < n; j++)
        if (j != i && is_down(w, j)) down++;
    if (down >= f) return;
    uint8_t keep = 0, others = (uint8_t)(((1u << n) - 1) & ~(1u << i));
    if (target < 0 && rnd() % 5 == 0) {
        /* A stale responder: another replica j is cut off for a while and
         * falls behind; i crashes as j comes back and returns at once while
         * the rest are paused, so j's (too low) horizon comes first and i
         * must wait for n - f answers. */
        uint8_t j = (uint8_t)((i + 1 + rnd() % (n - 1)) % n);
        uint64_t at = w->now + rnd_range(3 * MS, 40 * MS);
        flog(w, "r%u cut off until %.3fms, then r%u crashes", j, (double)at / 1000.0, i);
        for (uint8_t x = 0; x < n; x++)
            if (x != j) partition_until(w, j, x, at);
        push(w, at, E_CRASH, i, j, 1, 0);
        return;
    }
    uint64_t r = rnd() % 100;
    uint64_t back = w->now + (stale >= 0 ? rnd_range(100, 3 * MS)
                              : r < 70   ? rnd_range(100, 5 * MS)
                              : r < 90   ? rnd_range(5 * MS, 50 * MS)
                                         : rnd_range(50 * MS, 300 * MS));
    if (stale < 0 && n >= 5 && rnd() % 4 == 0) {
        uint8_t nr = (uint8_t)rnd_range(1, f - 1); /* n - 1 - nr >= n - f peers answer */
        while (__builtin_popcount(keep) < nr) keep |= (uint8_t)(others & (1u << (rnd() % n)));
        for (uint8_t j = 0; j < n; j++) {
            if (!((keep >> j) & 1)) continue;
            partitioned[i][j] = partitioned[j][i] = true; /* no reset: the tail still arrives */
            w->link_up[i][j] = w->link_up[j][i] = false;
            push(w, back, E_HEAL_LINK, i, j, 2, nd->incarnation); /* once i has its horizon */
        }
        w->res->hz_splits++;
        flog(w, "horizon split: mask 0x%x cut off from r%u until it has its horizon", keep, i);
    } else {
        keep = (uint8_t)(rnd() & others);
    }
    flog(w, "r%u crashes (last vote in slot %" PRIu64 "), back at %.3fms; what it sent still reaches mask 0x%x", i,
         nd->last_voted, (double)back / 1000.0, keep);
    crash(w, i, keep);
    push(w, back, E_RESTART, i, 0, nd->incarnation, 0);
    (void)maybe_wipe(w, i);
    switch (stale >= 0 ? 0 : rnd() % 4) {
    case 0: { /* pause some of the others until after it is back */
        uint8_t set = 0;
        if (stale >= 0) set = (uint8_t)(others & ~(1u << stale)); /* all but the stale one */
        while (!set) set = (uint8_t)(rnd() & others);
        for (uint8_t j = 0; j < n; j++) {
            if (!((set >> j) & 1) || !w->nodes[j].alive) continue;
            uint64_t until = back + rnd_range(200, 10 * MS);
            if (w->nodes[j].paused_until <= w->now) w->nodes[j].paused_since = w->now;
            if (until > w->nodes[j].paused_until) w->nodes[j].paused_until = until;
            flog(w, "r%u paused until %.3fms", j, (double)w->nodes[j].paused_until / 1000.0);
        }
        break;
    }
    case 1: { /* split the others until after it is back */
        uint8_t side = 0;
        while (!side || side == others) side = (uint8_t)(rnd() & others);
        uint64_t until = back + rnd_range(200, 10 * MS);
        flog(w, "others split: mask 0x%x | 0x%x until %.3fms", side, others & ~side, (double)until / 1000.0);
        for (uint8_t a = 0; a < n; a++)
            for (uint8_t b = (uint8_t)(a + 1); b < n; b++)
                if (a != i && b != i && ((side >> a) & 1) != ((side >> b) & 1)) partition_until(w, a, b, until);
        break;
    }
    default:
        break;
    }
    if (rnd() % 2) push(w, back + rnd_range(0, 20 * MS), E_CRASH, 0, 0, 0, 0); /* crashes come in bursts */
}

/* durable mode: any number of replicas crash at the same moment (all of
 * them a third of the time), each restarts from its log after its own
 * delay; sometimes a crash also damages the middle of one replica's log
 * (only while the others are up: that replica comes back without a log,
 * under the horizon rule, and counts against f). */
static void crash_set(struct world *w, uint8_t set);

static void crash_fault_durable(struct world *w)
{
    uint8_t n = w->cfg.n, all = (uint8_t)((1u << n) - 1), set = 0;
    uint64_t r = rnd() % 4;
    if (r == 3) { /* at the moment of the next answer to a client */
        w->crash_on_reply = true;
        flog(w, "the cluster crashes at the next answer to a client");
        return;
    }
    if (r == 0) set = all;
    else if (r == 1) set = (uint8_t)(1u << (rnd() % n));
    else
        while (!set) set = (uint8_t)(rnd() & all);
    crash_set(w, set);
}

static void crash_set(struct world *w, uint8_t set)
{
    uint8_t n = w->cfg.n, f = (uint8_t)((n - 1) / 2), all = (uint8_t)((1u << n) - 1);
    uint32_t down = 0;
    for (uint8_t j = 0; j < n; j++)
        if (is_down(w, j)) down++;
    bool together = rnd() % 2; /* all back at once, or each on its own */
    uint64_t back_all = w->now + rnd_range(100, 20 * MS);
    int crashed = 0;
    for (uint8_t i = 0; i < n; i++) {
        struct node *nd = &w->nodes[i];
        if (!((set >> i) & 1) || !nd->alive) continue;
        uint8_t keep = (uint8_t)(rnd() & all & ~(1u << i));
        uint64_t back = together ? back_all : w->now + rnd_range(100, 50 * MS);
        crash(w, i, keep);
        crashed++;
        if (set != all && __builtin_popcount(set) == 1 && down < f && !any_wiped(w) && rnd() % 6 == 0) {
            nd->disk.damaged = true; /* a bit flip or misdirected write in the middle */
            flog(w, "r%u's log is damaged in the middle", i);
        }
        if (!nd->disk.damaged) (void)maybe_wipe(w, i);
        push(w, back, E_RESTART, i, 0, nd->incarnation, 0);
    }
    if (crashed == n) w->res->crash_all++;
    flog(w, "crash of mask 0x%x (%d replicas%s), back %s", set, crashed, crashed == n ? ": all of them" : "",
         together ? "together" : "one by one");
}

/* durable mode: a disk that stalls for a while, or a full disk (writes wait
 * for space, requests are refused, as replica/durable.c does) */
static void disk_fault(struct world *w)
{
    uint8_t i = (uint8_t)(rnd() % w->cfg.n);
    struct sdisk *d = &w->nodes[i].disk;
    w->res->disk_faults++;
    if (rnd() % 2) {
        d->slow_until = w->now + rnd_range(5 * MS, 60 * MS);
        flog(w, "r%u's disk stalls until %.3fms", i, (double)d->slow_until / 1000.0);
    } else {
        d->full_until = w->now + rnd_range(10 * MS, 100 * MS);
        flog(w, "r%u's disk is full until %.3fms", i, (double)d->full_until / 1000.0);
    }
}

/* ------------------------------------------------------------------ */
/* faults */

static void heal_all(struct world *w)
{
    w->healed = true;
    flog(w, "everything heals");
    for (uint8_t i = 0; i < w->cfg.n; i++) {
        w->nodes[i].paused_until = 0;
        for (uint8_t j = 0; j < w->cfg.n; j++) partitioned[i][j] = false;
    }
    for (uint8_t i = 0; i < w->cfg.n; i++) {
        struct node *nd = &w->nodes[i];
        if (nd->wiped_life || nd->wipe_next) { /* refused (or about to be): the operator rebuilds it now */
            if (nd->alive) crash(w, i, 0);
            nd->wipe_next = false;
            nd->op_rejoin = true;
        }
        if (!nd->alive) restart(w, i);
    }
    for (uint8_t i = 0; i < w->cfg.n; i++)
        for (uint8_t j = (uint8_t)(i + 1); j < w->cfg.n; j++)
            if (!w->link_up[i][j] && w->nodes[i].alive && w->nodes[j].alive) reconnect(w, i, j);
}

static void inject(struct world *w)
{
    unsigned f = w->cfg.mix;
    unsigned choices[5], nc = 0;
    for (unsigned b = M_LINKS; b <= M_PAUSE; b <<= 1)
        if (f & b) choices[nc++] = b;
    if (!nc) return;
    unsigned what = choices[rnd() % nc];
    uint8_t n = w->cfg.n;
    switch (what) {
    case M_LINKS: {
        uint8_t a = (uint8_t)(rnd() % n), b = (uint8_t)((a + 1 + rnd() % (n - 1)) % n);
        if (w->link_up[a][b]) {
            flog(w, "link r%u-r%u cut", a, b);
            cut(w, a, b);
            push(w, w->now + rnd_range(2 * MS, 80 * MS), E_HEAL_LINK, a, b, 0, 0);
        }
        break;
    }
    case M_PARTITION: {
        /* one side: a single node, a minority or a majority */
        uint8_t side = 0, sz = (uint8_t)rnd_range(1, n - 1);
        while (__builtin_popcount(side) < sz) side |= (uint8_t)(1u << (rnd() % n));
        uint64_t until = w->now + rnd_range(20 * MS, 250 * MS);
        flog(w, "partition: mask 0x%x until %.3fms", side, (double)until / 1000.0);
        for (uint8_t a = 0; a < n; a++)
            for (uint8_t b = (uint8_t)(a + 1); b < n; b++)
                if (((side >> a) & 1) != ((side >> b) & 1)) partition_until(w, a, b, until);
        break;
    }
    case M_CRASH:
        if (w->cfg.durable) {
            if (rnd() % 4 == 0) disk_fault(w);
            else crash_fault_durable(w);
        } else {
            crash_fault(w, -1, -1);
        }
        break;
    case M_PAUSE: {
        if (w->cfg.durable && rnd() % 3 == 0) {
            disk_fault(w);
            break;
        }
        uint8_t i = (uint8_t)(rnd() % n);
        if (w->nodes[i].alive) {
            if (w->nodes[i].paused_until <= w->now) w->nodes[i].paused_since = w->now;
            w->nodes[i].paused_until = w->now + rnd_range(5 * MS, 150 * MS);
            flog(w, "r%u paused until %.3fms", i, (double)w->nodes[i].paused_until / 1000.0);
        }
        break;
    }
    }
}

/* ------------------------------------------------------------------ */
/* event loop */

static bool node_event_deferred(struct world *w, struct ev *e, uint8_t node)
{
    struct node *nd = &w->nodes[node];
    if (nd->alive && nd->paused_until > w->now) {
        e->t = nd->paused_until; /* paused: everything waits, order kept */
        heap_push(&w->h, *e);
        return true;
    }
    return false;
}

static void dispatch(struct world *w, struct ev *e)
{
    switch (e->kind) {
    case E_DELIVER: {
        uint8_t from = e->a, to = e->b;
        struct rabia_msg m;
        if (to >= 0xF0) { /* reply to a client */
            if ((to & 0x0F) >= w->n_clients) break;
            struct client *c = &w->clients[to & 0x0F];
            if (rabia_msg_decode(e->data, e->len, &m) == 0) on_client_reply(w, c, &m);
            break;
        }
        if (!w->nodes[to].alive) break;
        if (node_event_deferred(w, e, to)) return;
        if (from >= 0xF0) {
            if (e->x != w->nodes[to].incarnation) break;
            if (rabia_msg_decode(e->data, e->len, &m) == 0) on_client_req(w, to, from & 0x0F, &m);
            break;
        }
        if (e->x != w->link_epoch[from][to]) break; /* connection it came on is gone */
        if (e->y < w->heard[to][from]) { /* rule 3, kept by replica/hello.c's rules */
            fail(w, "rule 3: replica %u got a message of replica %u's life %" PRIu64 " after hearing life %" PRIu64,
                 to, from, e->y, w->heard[to][from]);
            break;
        }
        w->heard[to][from] = e->y;
        int rc = rabia_msg_decode(e->data, e->len, &m);
        if (rc) {
            fail(w, "decode failed: %d", rc);
            break;
        }
        if (m.from != from) fail(w, "message claims sender %u, came from %u", m.from, from);
        if (m.type == RABIA_MSG_SNAP_CHUNK) { /* the connection has it: room for the next (flow control) */
            struct node *nd = &w->nodes[to];
            if (w->xq[from][to].epoch == e->x) {
                if (w->xq[from][to].bytes < e->len) fail(w, "simulator: chunk bytes in flight %u->%u below zero", from, to);
                w->xq[from][to].bytes -= e->len;
            }
            w->res->xfer_chunks++;
            nd->xfer_epoch[from] = e->x;
            snapstream_receive(&nd->xfer, from, &m);
            w->touched |= (uint8_t)(1u << to) | (uint8_t)(1u << from); /* the sender's next chunks */
            break;
        }
        struct rabia_event ev = {.type = RABIA_EV_RECEIVE, .msg = m};
        step(w, to, &ev);
        break;
    }
    case E_TICK: {
        struct node *nd = &w->nodes[e->a];
        if (!nd->alive || e->x != nd->incarnation) break;
        if (node_event_deferred(w, e, e->a)) return;
        if (nd->tick_at == e->t) nd->tick_at = 0;
        w->touched |= (uint8_t)(1u << e->a); /* a wake-up: the loop turn runs below */
        break;
    }
    case E_DISK: {
        struct node *nd = &w->nodes[e->a];
        if (!nd->alive || e->x != nd->incarnation || e->y != nd->disk.wid || !nd->disk.busy) break;
        if (node_event_deferred(w, e, e->a)) return;
        disk_done(w, e->a);
        w->touched |= (uint8_t)(1u << e->a);
        break;
    }
    case E_CLIENT_NEXT:
        client_next(w, &w->clients[e->a]);
        break;
    case E_CLIENT_TIMEOUT:
        on_client_timeout(w, &w->clients[e->a], e->x, e->y);
        break;
    case E_FAULT:
        if (w->now < T_HEAL) {
            inject(w);
            push(w, w->now + rnd_range(10 * MS, 120 * MS), E_FAULT, 0, 0, 0, 0);
        } else if (!w->healed) {
            heal_all(w);
        }
        break;
    case E_CRASH_NOW:
        if (!w->healed && w->now < T_HEAL) crash_set(w, (uint8_t)((1u << w->cfg.n) - 1));
        break;
    case E_RESTART:
        if (!w->healed && w->nodes[e->a].incarnation == e->x) restart(w, e->a);
        break;
    case E_OPFIX: { /* the refusal's ERROR names the fix: empty the data dir, --rejoin */
        struct node *nd = &w->nodes[e->a];
        if (w->healed || !nd->wiped_life) break;
        flog(w, "operator: r%u was refused as a data dir lost without --rejoin: it is rebuilt", e->a);
        if (nd->alive) {
            crash(w, e->a, 0);
            push(w, w->now + rnd_range(100, 2 * MS), E_RESTART, e->a, 0, nd->incarnation, 0);
        }
        nd->op_rejoin = true; /* the restart pending (this one, or a crash's) starts it so */
        break;
    }
    case E_CRASH: /* x: a set-up crash of replica a, b the stale one */
        if (!w->healed && w->now < T_HEAL) crash_fault(w, e->x ? e->a : -1, e->x ? e->b : -1);
        break;
    case E_HEAL_LINK: {
        uint8_t a = e->a, b = e->b;
        if (e->x == 2 && !w->healed) { /* a's peers cut off while a collects its horizon */
            struct node *na = &w->nodes[a];
            if (na->incarnation == e->y || (na->incarnation == e->y + 1 && na->alive && rabia_core_recovering(na->core))) {
                push(w, w->now + 500, E_HEAL_LINK, a, b, 2, e->y);
                break;
            }
        }
        if (e->x) partitioned[a][b] = partitioned[b][a] = false;
        if (partitioned[a][b] || w->link_up[a][b]) break;
        if (w->nodes[a].alive && w->nodes[b].alive) reconnect(w, a, b);
        break;
    }
    case E_CONNECT: {
        uint8_t a = e->a, b = e->b;
        if (e->x != w->link_epoch[a][b] || partitioned[a][b]) break;
        if (!w->nodes[a].alive || !w->nodes[b].alive) break;
        if (node_event_deferred(w, e, a) || node_event_deferred(w, e, b)) return;
        /* a life on a lost data dir started without --rejoin: refused by
         * a peer that heard an earlier one (its connection to that peer
         * closes; the peer's to it is of no use either, every answer of
         * its goes back on its own: the pair stays down) */
        if (first_start_refused(w, a, b) || first_start_refused(w, b, a)) break;
        /* each takes the other's HELLO: a new life's replaces the
         * connection of the life before it, which a peer the crash did not
         * reset still held (rule 3, replica/hello.c) */
        take_hello(w, a, b);
        take_hello(w, b, a);
        w->heard[a][b] = w->nodes[b].incarnation;
        w->heard[b][a] = w->nodes[a].incarnation;
        w->link_up[a][b] = w->link_up[b][a] = true;
        w->link_last[a][b] = w->link_last[b][a] = w->now;
        struct rabia_event ev = {.type = RABIA_EV_PEER_UP};
        ev.peer = b;
        step(w, a, &ev);
        ev.peer = a;
        step(w, b, &ev);
        break;
    }
    }
    free(e->data);
}

static void run_checks_end(struct world *w)
{
    /* clients done? */
    for (uint32_t k = 0; k < w->n_clients; k++)
        if (w->clients[k].busy)
            fail(w, "liveness: client %" PRIu64 " seq %" PRIu64 " never completed (invoked at %" PRIu64 " ms)",
                 w->clients[k].id, w->clients[k].seq, w->clients[k].invoke / MS);
    /* replicas converge */
    uint64_t top = 0;
    for (uint8_t i = 0; i < w->cfg.n; i++)
        if (rabia_core_next_apply(w->nodes[i].core) > top) top = rabia_core_next_apply(w->nodes[i].core);
    uint64_t h0 = 0;
    for (uint8_t i = 0; i < w->cfg.n; i++) {
        struct node *nd = &w->nodes[i];
        if (rabia_core_next_apply(nd->core) != top || rabia_rsm_applied(nd->rsm) != top - 1) {
            fail(w, "liveness: replica %u applied up to %" PRIu64 ", others %" PRIu64, i,
                 rabia_rsm_applied(nd->rsm), top - 1);
            continue;
        }
        uint64_t h = rabia_rsm_hash(nd->rsm);
        if (i == 0) h0 = h;
        else if (h != h0) fail(w, "state: replica %u differs at the end (slot %" PRIu64 ")", i, top - 1);
        check_hash_roundtrip(w, nd, h);
    }
    w->res->slots = top - 1;
    /* no acknowledged write is lost: a final read of every key from the
     * converged state joins the history, after everything else */
    for (uint64_t key = 1; key <= NKEYS && !w->res->failed; key++) {
        char kbuf[16];
        snprintf(kbuf, sizeof kbuf, "k%" PRIu64, key);
        const char *argv[2] = {"GET", kbuf};
        size_t lens[2] = {3, strlen(kbuf)};
        struct rabia_buf op = {0}, rep = {0};
        rabia_kv_encode_argv(&op, 2, argv, lens);
        void *sm = rabia_rsm_sm(w->nodes[0].rsm);
        rabia_sm_kv.apply(((struct tsm *)sm)->kv, op.data, op.len, &rep);
        bool ok;
        uint64_t v = parse_get(rep.data, rep.len, &ok);
        size_t id = lin_history_invoke(w->hist, 0, LIN_READ, key, 0, 0, w->now + 1);
        lin_history_complete(w->hist, id, LIN_OK, v, w->now + 2);
        rabia_buf_free(&op);
        rabia_buf_free(&rep);
    }
    struct lin_result lr;
    int v = lin_check(w->hist, 2000000, &lr);
    if (v == LIN_VIOLATION) fail(w, "linearizability: %s", lr.why);
    else if (v == LIN_ERROR) fail(w, "linearizability checker error: %s", lr.why);
}

static void run(const struct run_cfg *cfg, struct run_result *res)
{
    memset(res, 0, sizeof(*res));
    struct world *w = calloc(1, sizeof(*w));
    if (!w) abort();
    w->cfg = *cfg;
    w->res = res;
    rng_state = cfg->seed * 0x2545F4914F6CDD1Dull + 1;
    snap_rng_state = cfg->seed * 0x9E3779B97F4A7C15ull + 0x5A5;
    share_rng_state = cfg->seed * 0xD1B54A32D192ED03ull + 0x5EA;
    xfer_rng_state = cfg->seed * 0x94D049BB133111EBull + 0x5F7;
    g_double_apply = false;
    g_start_level = cfg->start_level;
    memset(partitioned, 0, sizeof partitioned);
    w->hist = lin_history_create();
    uint8_t n = cfg->n;
    for (uint8_t a = 0; a < n; a++)
        for (uint8_t b = 0; b < n; b++) {
            w->link_up[a][b] = a != b;
            w->link_base[a][b] = a < b ? rnd_range(60, 200) : 0;
        }
    for (uint8_t a = 0; a < n; a++)
        for (uint8_t b = 0; b < a; b++) w->link_base[a][b] = w->link_base[b][a];
    w->n_clients = (uint32_t)rnd_range(3, 6);
    res->clients = w->n_clients;
    /* fewer session slots than clients: sessions are evicted */
    res->sessions = cfg->max_sessions ? cfg->max_sessions : cfg->tight_sessions ? w->n_clients - cfg->tight_sessions : 64;
    if (!res->sessions) res->sessions = 1;
    if (setjmp(g_invariant_jmp)) {
        fail(w, "invariant failed at %s (rabiad aborts here)", g_invariant);
        w->abandoned = g_abandoned;
        g_abandoned = w;
        return;
    }
    g_invariant_armed = true;
    for (uint8_t i = 0; i < n; i++) start_node(w, i, false);
    for (uint8_t a = 0; a < n; a++) /* the links are up from the start: each said HELLO */
        for (uint8_t b = 0; b < n; b++)
            if (a != b) take_hello(w, a, b);
    w->next_cid = 1;
    for (uint32_t k = 0; k < w->n_clients; k++) {
        struct client *c = &w->clients[k];
        c->idx = (uint8_t)k;
        c->id = w->next_cid++;
        c->ack = 1;
        c->target = (uint8_t)(rnd() % n);
        if (cfg->clients_on) c->target = (uint8_t)((cfg->clients_on - 1) % n);
        push(w, rnd_range(0, 2 * MS), E_CLIENT_NEXT, (uint8_t)k, 0, 0, 0);
    }
    if (cfg->mix & ~(unsigned)M_JITTER) push(w, rnd_range(20 * MS, 80 * MS), E_FAULT, 0, 0, 0, 0);
    push(w, T_HEAL, E_FAULT, 0, 0, 0, 0);
    while (w->h.n && !res->failed) {
        struct ev e = heap_pop(&w->h);
        if (e.t > T_END) {
            free(e.data);
            break;
        }
        w->now = e.t;
        res->events++;
        w->touched = 0;
        dispatch(w, &e);
        for (uint8_t i = 0; i < n && w->touched; i++) /* each replica that had an event: its loop turn */
            if (w->touched & (1u << i)) turn(w, i);
        /* done: clients idle after the stop, replicas caught up */
        if (w->now > T_STOP && (res->events & 63) == 0) {
            bool idle = true;
            for (uint32_t k = 0; k < w->n_clients && idle; k++) idle = !w->clients[k].busy;
            uint64_t na = rabia_core_next_apply(w->nodes[0].core);
            for (uint8_t i = 1; i < n && idle; i++) idle = rabia_core_next_apply(w->nodes[i].core) == na;
            for (uint8_t i = 0; i < n && idle; i++) idle = rabia_core_pending(w->nodes[i].core) == 0;
            for (uint8_t i = 0; i < n && idle; i++) /* durable: the last writes completed too */
                idle = !w->nodes[i].disk.busy && w->nodes[i].disk.n == w->nodes[i].disk.durable;
            if (idle) break;
        }
    }
    if (!res->failed) run_checks_end(w);
    g_invariant_armed = false;
    /* null-slot rate over the agreed log: each slot counted once */
    for (size_t k = 1; k < w->slots_cap; k++)
        if (w->slots[k].set && w->slots[k].null) res->nulls++;
    const char *dbg = getenv("RABIA_SIM_DESCRIBE"); /* proxy.incarnation.seq */
    if (dbg) {
        struct rabia_batch_id id = {0};
        unsigned p = 0;
        unsigned long long inc = 0, sq = 0;
        if (sscanf(dbg, "%u.%llu.%llu", &p, &inc, &sq) == 3) {
            id.proxy = (uint8_t)p;
            id.incarnation = inc;
            id.seq = sq;
            for (uint8_t i = 0; i < n; i++) {
                char line[256];
                if (!w->nodes[i].core) continue;
                rabia_core_describe_batch(w->nodes[i].core, &id, line, sizeof line);
                printf("r%u %s: %s\n", i, dbg, line);
            }
        }
    }
    for (uint8_t i = 0; i < n; i++) {
        struct node *nd = &w->nodes[i];
        if (nd->core) acc_stats(&nd->acc, rabia_core_stats(nd->core));
        res->fast += nd->acc.slots_fast;
        res->decided_own += nd->acc.slots_decided - nd->acc.decisions_adopted;
        res->catchup_deduped += nd->acc.catchup_deduped;
        res->unanimous += nd->acc.slots_unanimous;
        res->props_held += nd->acc.proposals_held;
        res->adopted += nd->acc.decisions_adopted;
        if (nd->acc.max_phase > res->max_phase) res->max_phase = nd->acc.max_phase;
        node_count(w, nd);
        if (nd->rt) share_drop_all(nd);
        xfer_stop(nd);
        node_destroy(nd->rt);
        free(nd->voted_life);
        disk_free(&nd->disk, 0);
        free(nd->disk.r);
        free(nd->disk.snap);
        rabia_buf_free(&nd->disk.snap_new);
        for (uint8_t p = 0; p < MAX_N; p++)
            if (nd->cu[p].ready) logcatch_free(&nd->cu[p].lc);
    }
    /* slots_null counts per replica: normalise to per-slot rates */
    while (w->h.n) free(heap_pop(&w->h).data);
    free(w->h.v);
    for (uint32_t k = 0; k < w->n_clients; k++) rabia_buf_free(&w->clients[k].op);
    lin_history_destroy(w->hist);
    free(w->slots);
    free(w->props);
    free(w->subs);
    free(w->coins);
    free(w->sent);
    free(w);
}

/* ------------------------------------------------------------------ */
/* command line */

static void seed_cfg(struct run_cfg *c, uint64_t seed, const struct run_cfg *over, int fixed_mix, int fixed_n,
                     int fixed_variant)
{
    *c = *over;
    c->seed = seed;
    /* the mix is seed % 7 unless fixed; the rest comes from a hash of the
     * seed alone, so a seed run under every mix (--all-mixes) still spreads
     * over n, variants, log retention and session tables */
    uint64_t h = seed + 0x9E3779B97F4A7C15ull;
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    h ^= h >> 31;
    c->mix = MIXES[fixed_mix >= 0 ? (unsigned)fixed_mix : seed % N_MIXES].flags;
    c->n = fixed_n ? (uint8_t)fixed_n : (h & 1 ? 5 : 3);
    unsigned variant = fixed_variant >= 0 ? (unsigned)fixed_variant : (unsigned)((h >> 1) % 4);
    switch (variant) {
    case 0: c->window = 1; c->policy = RABIA_POLICY_GLOBAL; break;
    case 3: c->window = 4; c->policy = RABIA_POLICY_GLOBAL; break;
    case 1: c->window = c->n; c->policy = RABIA_POLICY_CLASSES; break;
    default: c->window = 8; c->policy = RABIA_POLICY_CLASSES; break;
    }
    c->log_retain = (h >> 8) & 1 ? 24 : 1024;
    c->log_retain_bytes = over->retain_bytes_fixed >= 0 ? (uint64_t)over->retain_bytes_fixed
                                                        : ((h >> 52) & 3) == 0 ? 8192 : 0;
    /* rabiad's default (200 us) on half the seeds, off on the others
     * (batch-linger-us = 0 is a setting users choose too); it acts only
     * with window 1 (variant 0) */
    c->linger_us = over->linger_fixed >= 0 ? (uint32_t)over->linger_fixed : ((h >> 48) & 1 ? 200u : 0u);
    c->start_level = (h >> 56) & 1 && !over->no_read_index ? RABIA_KV_FEATURE_LEVEL : 0;
    /* a third of the seeds: one or two session slots fewer than clients */
    c->tight_sessions = (h >> 16) % 3 == 0 ? 1 + (unsigned)((h >> 24) & 1) : 0;
    /* durable: a local snapshot by replica/snapsched.c's rule once the log
     * grew by 16, 32, 64 or 128 KiB (about 30 a run), on half the seeds
     * also every 150 ms (snapshot-interval-s); segments of 16, 32 or 64
     * records (a slot writes about five at each replica) */
    c->snap_log_bytes = 16384u << ((h >> 32) % 4);
    c->snap_interval_us = (h >> 60) & 1 ? 150 * MS : 0;
    if (over->snap_bytes_fixed) c->snap_log_bytes = over->snap_bytes_fixed;
    c->seg_recs = 16u << ((h >> 40) % 3);
    /* snapshot chunks of 512 B to 1 MiB: many chunks per transfer (a state
     * here is 1-40 KB), or one */
    static const uint32_t chunks[4] = {512, 4096, 65536, 1u << 20};
    c->xfer_chunk = chunks[(h >> 48) % 4];
    /* half the seeds cap transfers (transfer-rate): 256 KiB/s or 2 MiB/s, at
     * least a chunk per 25 ms (the receiver's stall limit is 100 ms here) */
    static const uint64_t rates[4] = {0, 0, 256u << 10, 2u << 20};
    c->xfer_rate = rates[(h >> 56) % 4];
    if (c->xfer_rate && c->xfer_rate < 40ull * c->xfer_chunk) c->xfer_rate = 40ull * c->xfer_chunk;
}

static void usage(void)
{
    printf("usage: rabia_sim [options]\n"
           "  --seeds N          run N seeds (default 100) starting at --first\n"
           "  --first S          first seed of the range (default 1)\n"
           "  --seed S           run exactly one seed (replay), verbose\n"
           "  --trace-slot X     with --seed: print every protocol step of slot X\n"
           "  --faults           with --seed: log every fault, restart and recovery\n"
           "  --snap-bytes N     durable: a local snapshot every N bytes of log (default: 16-128 KiB by seed)\n"
           "  --no-log-pin       durable: snapshots release the log even where peers still read it\n"
           "  --mix NAME         calm|jitter|links|partition|crash|pause|all (default: by seed)\n"
           "  --all-mixes        run every seed under each of the seven mixes\n"
           "  --n N              3, 5 or 7 (default: 3 or 5 by seed)\n"
           "  --variant V        0: window 1 global, 1: window n classes, 2: window 8 classes,\n"
           "                     3: window 4 global (pipelined: initiator s mod n)\n"
           "  --clients-on R     every client starts at replica R (1..n; default: spread)\n"
           "  --log-retain-bytes B  log_retain_bytes of every replica (default: by seed, 8192 on\n"
           "                     a quarter of them, else 0 = no bound)\n"
           "  --linger US        batch-linger-us of every replica (default: by seed, 200\n"
           "                     as rabiad on half the seeds, 0 (off) on the others)\n"
           "  --sessions K       the apply layer's max_sessions (default: by seed, 64 or\n"
           "                     one or two fewer than the run's clients)\n"
           "  --bug NAME         plant a bug: coin|majority|double-count|stale-read|\n"
           "                     forget-vote (a restarted replica votes at once),\n"
           "                     frame-noref (a connection holds a shared frame of the\n"
           "                     replica's pool without a reference: the pool reuses it);\n"
           "                     with --durable: send-early (a message leaves before its\n"
           "                     record is durable), skip-record (recovery skips a damaged\n"
           "                     record), reply-early (answers before the decision is durable),\n"
           "                     forget-reserve (recovery ignores the seq reservations that\n"
           "                     let an own batch leave before its record is durable),\n"
           "                     forget-ref (a snapshot releases an own BATCH record that a\n"
           "                     DECIDED_REF record of a later slot still needs),\n"
           "                     catchup-body (catch-up from the log sends another batch's\n"
           "                     body), log-fetch (the log serves a FETCH past the slot the\n"
           "                     same peer catches up from: its read position never gets there),\n"
           "                     read-nowait (a GET taken by the read index is answered from\n"
           "                     the state at once, without a read-index round), read-self (a\n"
           "                     read-index round closes on the replica's own bound, no peer asked),\n"
           "                     log-refusal (a peer's retransmitted old-slot messages hold its\n"
           "                     snapshot back after the log refused its catch-up),\n"
           "                     first-start (with --wipes: peers take a data dir that began\n"
           "                     again from nothing without --rejoin, as a new member)\n"
           "  --old-read-answers R  replica R answers read-index rounds as builds before the\n"
           "                     probe did (core.h READ INDEX): the others' reads pause until it restarts\n"
           "  --no-read-index    every GET through the log (read-index no); by default three\n"
           "                     GETs in four are answered by the read index (node_read)\n"
           "  --durable          replicas keep a write-ahead log (durability = wal): persist\n"
           "                     before send, group commit, local snapshots that release the\n"
           "                     log's prefix, restart from snapshot and log; crashes take\n"
           "                     any number of replicas down (all of them a third of the time),\n"
           "                     lose unsynced writes, tear the write in flight, damage logs;\n"
           "                     disks stall and fill up\n"
           "  --wipes            some crashes lose the replica's whole data dir, and it is\n"
           "                     started again without --rejoin (an operator's mistake): its\n"
           "                     peers must refuse it (FIRST_START, replica/hello.c) until the\n"
           "                     operator, told by the refusal, empties it and uses --rejoin\n"
           "  --expect-fail      exit 0 iff some run fails (for planted-bug tests)\n"
           "  --quiet            only the summary (and failures)\n"
           "A failing run prints the command that replays it exactly.\n");
}

struct totals {
    uint64_t runs, failed, slots, nulls, fast, own, max_phase, ok, unknown, crashes, restarts, restarts_open,
        hz_splits, expired, tight, snaps, crash_all, torn, damaged, disk_faults, restored, local_snaps, released, restarts_tail,
        by_ref, frames_shared, frames_copied, linger_cohort, reads_indexed, reads_logged, read_rounds, read_retried, read_old, xfers, xfer_chunks, xfer_dropped, xfer_stopped, xfer_rate_waits, xfer_rate_lifted, xfer_cap_queued, catchup_log_slots,
        catchup_log_requests, catchup_fetch_held, catchup_continued,
        out_full, catchup_deduped, adopted, unanimous, props_held, wipes, first_refused;
    uint64_t var_slots[4], var_nulls[4];
};

int main(int argc, char **argv)
{
    struct run_cfg base = {.trace_slot = -1, .linger_fixed = -1, .retain_bytes_fixed = -1};
    uint64_t first = 1, count = 100;
    int single = 0, quiet = 0, expect_fail = 0, fixed_mix = -1, fixed_n = 0, fixed_variant = -1, all_mixes = 0;
    char extra[160] = ""; /* options a replay must repeat */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t el = strlen(extra);
        if (!strcmp(a, "--seeds") && v) count = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--first") && v) first = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--seed") && v) {
            first = strtoull(argv[++i], NULL, 10);
            count = 1;
            single = 1;
        } else if (!strcmp(a, "--trace-slot") && v) base.trace_slot = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(a, "--clients-on") && v) {
            base.clients_on = atoi(argv[++i]);
            snprintf(extra + el, sizeof extra - el, " --clients-on %d", base.clients_on);
        } else if (!strcmp(a, "--n") && v) {
            fixed_n = atoi(argv[++i]);
            snprintf(extra + el, sizeof extra - el, " --n %d", fixed_n);
        } else if (!strcmp(a, "--no-log-pin")) {
            base.no_log_pin = true;
            snprintf(extra + el, sizeof extra - el, " --no-log-pin");
        } else if (!strcmp(a, "--snap-bytes") && v) {
            base.snap_bytes_fixed = strtoull(argv[++i], NULL, 10);
            if (base.snap_bytes_fixed < 1024) {
                fprintf(stderr, "--snap-bytes must be at least 1024\n");
                return 2;
            }
            snprintf(extra + el, sizeof extra - el, " --snap-bytes %" PRIu64, base.snap_bytes_fixed);
        } else if (!strcmp(a, "--linger") && v) {
            base.linger_fixed = strtoll(argv[++i], NULL, 10);
            if (base.linger_fixed < 0 || base.linger_fixed > 100000) {
                fprintf(stderr, "--linger must be 0..100000\n");
                return 2;
            }
            snprintf(extra + el, sizeof extra - el, " --linger %" PRId64, base.linger_fixed);
        } else if (!strcmp(a, "--log-retain-bytes") && v) {
            base.retain_bytes_fixed = strtoll(argv[++i], NULL, 10);
            if (base.retain_bytes_fixed < 0) {
                fprintf(stderr, "--log-retain-bytes must be 0 (no bound) or more\n");
                return 2;
            }
            snprintf(extra + el, sizeof extra - el, " --log-retain-bytes %" PRId64, base.retain_bytes_fixed);
        } else if (!strcmp(a, "--variant") && v) {
            fixed_variant = atoi(argv[++i]);
            if (fixed_variant < 0 || fixed_variant > 3) {
                fprintf(stderr, "--variant must be 0..3\n");
                return 2;
            }
            snprintf(extra + el, sizeof extra - el, " --variant %d", fixed_variant);
        } else if (!strcmp(a, "--sessions") && v) {
            base.max_sessions = (uint32_t)strtoul(argv[++i], NULL, 10);
            if (!base.max_sessions) {
                fprintf(stderr, "--sessions must be at least 1\n");
                return 2;
            }
            snprintf(extra + el, sizeof extra - el, " --sessions %u", base.max_sessions);
        } else if (!strcmp(a, "--all-mixes")) all_mixes = 1;
        else if (!strcmp(a, "--mix") && v) {
            i++;
            for (size_t k = 0; k < N_MIXES; k++)
                if (!strcmp(v, MIXES[k].name)) fixed_mix = (int)k;
            if (fixed_mix < 0) {
                fprintf(stderr, "unknown mix '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--bug") && v) {
            i++;
            if (!strcmp(v, "coin")) base.bugs |= RABIA_BUG_COIN_PER_REPLICA;
            else if (!strcmp(v, "majority")) base.bugs |= RABIA_BUG_MAJORITY_OF_VOTES;
            else if (!strcmp(v, "double-count")) base.bugs |= RABIA_BUG_DOUBLE_COUNT;
            else if (!strcmp(v, "stale-read")) base.bugs |= SIM_BUG_STALE_READ;
            else if (!strcmp(v, "forget-vote")) base.bugs |= SIM_BUG_FORGET_VOTE;
            else if (!strcmp(v, "send-early")) base.bugs |= SIM_BUG_SEND_EARLY;
            else if (!strcmp(v, "skip-record")) base.bugs |= SIM_BUG_SKIP_RECORD;
            else if (!strcmp(v, "forget-reserve")) base.bugs |= SIM_BUG_FORGET_RESERVE;
            else if (!strcmp(v, "reply-early")) base.bugs |= SIM_BUG_REPLY_EARLY;
            else if (!strcmp(v, "forget-ref")) base.bugs |= SIM_BUG_FORGET_REF;
            else if (!strcmp(v, "frame-noref")) base.bugs |= SIM_BUG_FRAME_NOREF;
            else if (!strcmp(v, "keep-old-link")) base.bugs |= SIM_BUG_KEEP_OLD_LINK;
            else if (!strcmp(v, "catchup-body")) base.bugs |= SIM_BUG_CATCHUP_BODY;
            else if (!strcmp(v, "log-fetch")) base.bugs |= SIM_BUG_LOG_FETCH;
            else if (!strcmp(v, "read-nowait")) base.bugs |= SIM_BUG_READ_NOWAIT;
            else if (!strcmp(v, "log-refusal")) base.bugs |= SIM_BUG_LOG_REFUSAL;
            else if (!strcmp(v, "read-self")) base.bugs |= RABIA_BUG_READ_SELF;
            else if (!strcmp(v, "first-start")) base.bugs |= SIM_BUG_FIRST_START;
            else {
                fprintf(stderr, "unknown bug '%s'\n", v);
                return 2;
            }
            snprintf(extra + el, sizeof extra - el, " --bug %s", v);
        } else if (!strcmp(a, "--old-read-answers") && i + 1 < argc) {
            base.old_reads_at = atoi(argv[++i]);
            if (base.old_reads_at < 1 || base.old_reads_at > 7) {
                fprintf(stderr, "--old-read-answers R: a replica 1..n\n");
                return 2;
            }
            snprintf(extra + el, sizeof extra - el, " --old-read-answers %d", base.old_reads_at);
        } else if (!strcmp(a, "--wipes")) {
            base.wipes = true;
            snprintf(extra + el, sizeof extra - el, " --wipes");
        } else if (!strcmp(a, "--no-read-index")) {
            base.no_read_index = true;
            snprintf(extra + el, sizeof extra - el, " --no-read-index");
        } else if (!strcmp(a, "--durable")) {
            base.durable = true;
            snprintf(extra + el, sizeof extra - el, " --durable");
        } else if (!strcmp(a, "--expect-fail")) expect_fail = 1;
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--faults")) base.verbose = getenv("RABIA_SIM_NOTES") ? 2 : 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (fixed_n && fixed_n != 3 && fixed_n != 5 && fixed_n != 7) {
        fprintf(stderr, "--n must be 3, 5 or 7\n");
        return 2;
    }
    if (all_mixes && fixed_mix >= 0) {
        fprintf(stderr, "--all-mixes and --mix exclude each other\n");
        return 2;
    }
    const char *watch = getenv("RABIA_SIM_CLIENT");
    if (watch) g_watch_client = strtoull(watch, NULL, 10);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct totals T = {0};
    uint64_t per_mix[N_MIXES] = {0};
    uint64_t first_failed = 0;
    int first_failed_mix = -1;
    bool stop = false;
    for (uint64_t s = first; s < first + count && !stop; s++) {
        for (size_t mi = 0; mi < (all_mixes ? N_MIXES : 1) && !stop; mi++) {
            int mix = all_mixes ? (int)mi : fixed_mix;
            struct run_cfg c;
            seed_cfg(&c, s, &base, mix, fixed_n, fixed_variant);
            if (mix < 0) mix = (int)(s % N_MIXES);
            struct run_result r;
            run(&c, &r);
            T.runs++;
            per_mix[mix]++;
            T.slots += r.slots;
            T.nulls += r.nulls;
            unsigned v = c.policy == RABIA_POLICY_GLOBAL ? (c.window == 1 ? 0 : 3) : c.window == c.n ? 1 : 2;
            T.var_slots[v] += r.slots;
            T.var_nulls[v] += r.nulls;
            T.fast += r.fast;
            T.own += r.decided_own;
            T.ok += r.ops_ok;
            T.unknown += r.ops_unknown;
            T.crashes += r.crashes;
            T.restarts += r.restarts;
            T.restarts_open += r.restarts_open;
            T.hz_splits += r.hz_splits;
            T.wipes += r.wipes;
            T.first_refused += r.first_refused;
            T.expired += r.expired;
            T.snaps += r.snapshots;
            T.crash_all += r.crash_all;
            T.torn += r.torn;
            T.damaged += r.damaged;
            T.disk_faults += r.disk_faults;
            T.restored += r.restored;
            T.local_snaps += r.local_snaps;
            T.released += r.released;
            T.restarts_tail += r.restarts_tail;
            T.by_ref += r.by_ref;
            T.frames_shared += r.frames_shared;
            T.linger_cohort += r.linger_cohort;
            T.reads_indexed += r.reads_indexed;
            T.reads_logged += r.reads_logged;
            T.read_rounds += r.read_rounds;
            T.read_retried += r.read_retried;
            T.read_old += r.read_old;
            T.frames_copied += r.frames_copied;
            T.xfers += r.xfers;
            T.xfer_chunks += r.xfer_chunks;
            T.xfer_dropped += r.xfer_dropped;
            T.xfer_stopped += r.xfer_stopped;
            T.xfer_rate_waits += r.xfer_rate_waits;
            T.xfer_rate_lifted += r.xfer_rate_lifted;
            T.xfer_cap_queued += r.xfer_cap_queued;
            T.catchup_log_slots += r.catchup_log_slots;
            T.catchup_log_requests += r.catchup_log_requests;
            T.catchup_fetch_held += r.catchup_fetch_held;
            T.catchup_continued += r.catchup_continued;
            T.out_full += r.out_full;
            T.catchup_deduped += r.catchup_deduped;
            T.adopted += r.adopted;
            T.unanimous += r.unanimous;
            T.props_held += r.props_held;
            if (r.sessions < r.clients) T.tight++;
            if (r.max_phase > T.max_phase) T.max_phase = r.max_phase;
            if (single || r.failed || (!quiet && s % 250 == 0 && mi == 0))
                printf("seed %" PRIu64 " n=%u window=%u policy=%s linger=%u mix=%s clients=%u sessions=%u: %s slots=%" PRIu64
                       " null=%.1f%% fast=%.1f%% max-phase=%" PRIu64 " ops=%" PRIu64 " unknown=%" PRIu64
                       " expired=%" PRIu64 " crashes=%" PRIu64 " restarts=%" PRIu64 " (open %" PRIu64
                       ", horizon-split %" PRIu64 ") snapshots=%" PRIu64 " events=%" PRIu64 "%s%s\n",
                       s, c.n, c.window, c.policy ? "classes" : "global", c.linger_us, MIXES[mix].name, r.clients,
                       r.sessions,
                       r.failed ? "FAIL" : "ok", r.slots,
                       r.slots ? 100.0 * (double)r.nulls / (double)r.slots : 0.0,
                       r.decided_own ? 100.0 * (double)r.fast / (double)r.decided_own : 0.0, r.max_phase, r.ops_ok,
                       r.ops_unknown, r.expired, r.crashes, r.restarts, r.restarts_open, r.hz_splits, r.snapshots,
                       r.events, r.failed ? "\n  " : "", r.failed ? r.why : "");
            if (r.failed) {
                if (!expect_fail || !quiet)
                    printf("  replay: rabia_sim --seed %" PRIu64 " --mix %s%s\n", s, MIXES[mix].name, extra);
                if (!T.failed) {
                    first_failed = s;
                    first_failed_mix = mix;
                }
                T.failed++;
                if (expect_fail) stop = true;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("mixes:");
    for (size_t k = 0; k < N_MIXES; k++) printf(" %s=%" PRIu64, MIXES[k].name, per_mix[k]);
    printf("\nslots=%" PRIu64 " null-rate=%.2f%% fast-path=%.2f%% max-phase=%" PRIu64 " client-ops=%" PRIu64
           " unknown=%" PRIu64 " snapshots=%" PRIu64 " in %.1fs\n",
           T.slots, T.slots ? 100.0 * (double)T.nulls / (double)T.slots : 0.0,
           T.own ? 100.0 * (double)T.fast / (double)T.own : 0.0, T.max_phase, T.ok, T.unknown, T.snaps, secs);
    printf("faults: crashes=%" PRIu64 " restarts=%" PRIu64 " restarts-into-open-slot=%" PRIu64
           " horizon-splits=%" PRIu64 " runs-with-evicting-sessions=%" PRIu64 " session-expired-replies=%" PRIu64
           "\n",
           T.crashes, T.restarts, T.restarts_open, T.hz_splits, T.tight, T.expired);
    if (base.wipes)
        printf("wipes: data dirs lost and started again without --rejoin=%" PRIu64
               " connections of such lives refused=%" PRIu64 "\n", T.wipes, T.first_refused);
    printf("frame pools: frames sent shared=%" PRIu64 " copied with the pool exhausted=%" PRIu64
           "; links closed by a paused peer's full output=%" PRIu64 "\n", T.frames_shared, T.frames_copied, T.out_full);
    if (base.durable)
        printf("batching: open batches held for the clients an own decision answered (a log, no other batch "
               "pending)=%" PRIu64 "\n", T.linger_cohort);
    printf("reads by the read index (every life of every replica): answered=%" PRIu64
           " sent through the log after all=%" PRIu64 " rounds=%" PRIu64 " rounds opened again=%" PRIu64
           " answers from an older build=%" PRIu64 "\n",
           T.reads_indexed, T.reads_logged, T.read_rounds, T.read_retried, T.read_old);
    printf("exchange: slots decided by a unanimous one (no DECISION sent)=%" PRIu64
           " proposals held for the slot just past the window=%" PRIu64 "\n", T.unanimous, T.props_held);
    printf("catch-up: decisions adopted=%" PRIu64 " asked for again within half a retransmit period, not resent=%" PRIu64
           "\n", T.adopted, T.catchup_deduped);
    printf("snapshot transfers: started=%" PRIu64 " chunks delivered=%" PRIu64 " dropped on the way=%" PRIu64
           " stopped by a decline=%" PRIu64 " installed=%" PRIu64 " chunks held by the rate cap=%" PRIu64
           " transfers it let go at full speed=%" PRIu64 " waited to start (as many run as the stall limit allows)=%" PRIu64
           "\n",
           T.xfers, T.xfer_chunks, T.xfer_dropped, T.xfer_stopped, T.snaps, T.xfer_rate_waits, T.xfer_rate_lifted,
           T.xfer_cap_queued);
    if (base.durable)
        printf("durable: whole-cluster crashes=%" PRIu64 " torn-writes=%" PRIu64 " damaged-logs=%" PRIu64
               " disk-stalls-and-full=%" PRIu64 " records-restored=%" PRIu64 " local-snapshots=%" PRIu64
               " segments-released=%" PRIu64 " restarts-from-snapshot-and-tail=%" PRIu64 " decided-by-ref=%" PRIu64
               " slots-caught-up-from-a-log=%" PRIu64 " (in %" PRIu64 " reads, %" PRIu64 " of them going on at the next turn; fetches left to them=%"
               PRIu64 ")\n",
               T.crash_all, T.torn, T.damaged, T.disk_faults, T.restored, T.local_snaps, T.released, T.restarts_tail,
               T.by_ref, T.catchup_log_slots, T.catchup_log_requests, T.catchup_continued, T.catchup_fetch_held);
    static const char *vname[4] = {"window 1 global", "window n classes", "window 8 classes", "window 4 global"};
    printf("null-slot rate by variant:");
    for (int v = 0; v < 4; v++)
        if (T.var_slots[v]) printf(" %s %.1f%%", vname[v], 100.0 * (double)T.var_nulls[v] / (double)T.var_slots[v]);
    printf("\n");
    if (expect_fail) {
        if (T.failed) {
            printf("planted bug caught by seed %" PRIu64 " mix %s (after %" PRIu64 " runs)\n", first_failed,
                   MIXES[first_failed_mix].name, T.runs);
            printf("1 passed, 0 failed\n");
            return 0;
        }
        printf("planted bug NOT caught in %" PRIu64 " runs\n0 passed, 1 failed\n", T.runs);
        return 1;
    }
    printf("%" PRIu64 " runs (%" PRIu64 " seeds%s): %" PRIu64 " passed, %" PRIu64 " failed\n", T.runs, count,
           all_mixes ? " x 7 mixes" : "", T.runs - T.failed, T.failed);
    if (T.failed)
        printf("first failing run: seed %" PRIu64 " mix %s (replay: rabia_sim --seed %" PRIu64 " --mix %s%s)\n",
               first_failed, MIXES[first_failed_mix].name, first_failed, MIXES[first_failed_mix].name, extra);
    return T.failed ? 1 : 0;
}
