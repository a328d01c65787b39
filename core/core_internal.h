/* core/core_internal.h: the consensus core's state and the functions its
 * files share (one file per concern: config.c, emit.c, batches.c,
 * decided_log.c, instance.c, handlers.c, events.c, rabia.c). Nothing here
 * is public: include/rabia/core.h is the contract. */
#ifndef RABIA_CORE_INTERNAL_H
#define RABIA_CORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rabia/core.h"

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
    uint64_t first_us;/* when this replica first had the slot in its window (decision time) */
    uint64_t body_wait_until; /* joining: waiting for the body of a batch a peer proposed (0: not) */
    uint64_t start_us;        /* when my proposal went out */
    bool unanimous;           /* decided by a unanimous exchange (core_progress) */
    bool full_seen;           /* all n proposals were counted (full_lag_us took its lag) */
    uint64_t xwait_until;     /* exchange: n-f proposals in, no majority yet but still possible, or a
                                 majority that may become unanimous: waiting for the rest until then
                                 (0: not waiting) */
    struct phase ph[PH_RING];
};

/* A decided slot, kept for in-order apply and for peers' catch-up. */
struct logent {
    uint64_t slot;   /* 0 = empty */
    uint8_t value;
    struct rabia_batch_id id;
    int32_t entry;   /* batch body, -1 while it is being fetched */
    uint64_t fetch_us;
    bool by_peer;    /* decided by a peer's DECISION (core_on_decision), not here */
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
    uint64_t log_low;    /* no slot below this is in the log (a snapshot covered it, or log_retain_bytes) */
    uint64_t retain_bytes; /* batch bodies of the applied slots the log holds */
    uint64_t next_seq;
    uint64_t max_seen;   /* highest slot seen or sent in any message */
    uint64_t abstain_below;
    uint64_t horizon_restored; /* abstain_below as a restored HORIZON record set it (events.c) */
    uint64_t drive_until; /* start slots up to here even with nothing to propose */
    bool recovering;
    /* the last wait for a unanimous exchange ran out (a replica is down or
     * slow): do not wait for one again until a slot counts all n proposals */
    bool unan_wait_off;
    uint64_t full_lag_us; /* moving average: from my proposal to the n-th one counted */
    uint8_t horizon_mask;
    uint64_t horizon_max;
    /* the read-index round open here (READ INDEX in core.h; 0: none) */
    uint64_t ri_round;
    uint8_t ri_mask;   /* who answered it, self included */
    uint64_t ri_max;   /* the largest answer */
    uint8_t read_old;  /* peers that answered a round as a build without rounds, since their last PEER_UP */
    uint64_t horizon_sent_us;
    uint64_t peer_known[RABIA_MAX_REPLICAS];
    uint64_t catchup_us;
    uint8_t catchup_rr; /* the peer a stalled replica that knows no one ahead asked last (events.c) */
    uint64_t last_reply_slot[RABIA_MAX_REPLICAS];
    uint64_t last_reply_us[RABIA_MAX_REPLICAS];
    uint64_t cu_sent_until[RABIA_MAX_REPLICAS]; /* catch-up: decisions below this went to the peer ... */
    uint64_t cu_sent_us[RABIA_MAX_REPLICAS];    /* ... at this time */
    uint64_t snap_us[RABIA_MAX_REPLICAS];
    /* a PROPOSAL per peer for the slot just past the window (handlers.c,
     * core_on_consensus): delivered once the window reaches it */
    struct rabia_msg held_prop[RABIA_MAX_REPLICAS];
    uint8_t held_mask;

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
    rabia_decide_fn decide_obs;
    void *decide_ctx;
};

/* emit.c */
void core_anomaly(struct rabia_core *c, const char *what);
int core_coin(struct rabia_core *c, uint64_t slot, uint32_t phase);
struct rabia_send *core_emit(struct rabia_core *c, uint8_t to, uint8_t type, uint64_t slot);
const char *core_idstr(const struct rabia_batch_id *id, bool has, char *buf, size_t len);
int core_key_cmp(const struct rabia_batch_id *a, const struct rabia_batch_id *b);
void core_persist(struct rabia_core *c, const struct rabia_msg *m);
void core_tracef_on(struct rabia_core *c, uint64_t slot, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Arguments are evaluated only with a trace set: core_idstr's snprintf in
 * four of them ran for every slot otherwise (6% of a follower's
 * instructions at SET -P 1, callgrind). */
#define core_tracef(c, slot, ...)                                                                                      \
    do {                                                                                                               \
        if ((c)->trace) core_tracef_on((c), (slot), __VA_ARGS__);                                                     \
    } while (0)

/* batches.c */
int32_t core_bt_alloc(struct rabia_core *c, const struct rabia_batch_id *id, const uint8_t *body, uint32_t len);
int32_t core_bt_find(const struct rabia_core *c, const struct rabia_batch_id *id);
void core_bt_maybe_free(struct rabia_core *c, int32_t e);
void core_bt_reap(struct rabia_core *c);
int32_t core_choose(struct rabia_core *c, uint64_t slot);
bool core_pq_insert(struct rabia_core *c, int32_t e);
void core_pq_remove(struct rabia_core *c, int32_t e);
bool core_tr_decided(const struct rabia_core *c, const struct rabia_batch_id *id);
void core_tr_mark(struct rabia_core *c, const struct rabia_batch_id *id);
void core_tr_reset(struct rabia_core *c, uint8_t proxy, uint64_t incarnation);

/* decided_log.c */
void core_log_attach(struct rabia_core *c, struct logent *l, int32_t e);
void core_log_clear(struct rabia_core *c, struct logent *l);
void core_log_decide(struct rabia_core *c, uint64_t slot, uint8_t value, const struct rabia_batch_id *id);
uint64_t core_log_first(const struct rabia_core *c);
struct logent *core_log_get(struct rabia_core *c, uint64_t slot);
uint64_t core_log_retain_first(const struct rabia_core *c);
void core_log_drop_applied(struct rabia_core *c, uint64_t slot);
void core_log_trim_bytes(struct rabia_core *c);
void core_send_fetch(struct rabia_core *c, struct logent *l);

/* instance.c */
void core_apply_ready(struct rabia_core *c);
bool core_count(struct rabia_core *c, struct round *r, uint8_t from, uint8_t value);
void core_decide(struct rabia_core *c, struct inst *in, uint8_t value, bool adopted);
void core_fill_id(const struct inst *in, struct rabia_msg *m);
struct inst *core_inst_get(struct rabia_core *c, uint64_t slot);
void core_learn_id(struct rabia_core *c, struct inst *in, const struct rabia_msg *m);
struct phase *core_ph_get(struct inst *in, uint16_t phase, bool create);
void core_progress(struct rabia_core *c, struct inst *in);
void core_release_proposal(struct rabia_core *c, struct inst *in);
void core_send_proposal(struct rabia_core *c, struct inst *in, uint8_t to);
void core_start_slots(struct rabia_core *c);

/* handlers.c */
uint64_t core_known_slot(const struct rabia_core *c);
void core_maybe_catchup(struct rabia_core *c, uint8_t peer);
/* The peer that spoke of the highest slot (self when none spoke of any). */
uint8_t core_best_peer(const struct rabia_core *c);
void core_on_batch(struct rabia_core *c, const struct rabia_msg *m);
void core_on_catchup(struct rabia_core *c, const struct rabia_msg *m);
void core_on_consensus(struct rabia_core *c, const struct rabia_msg *m);
void core_on_decision(struct rabia_core *c, const struct rabia_msg *m);
void core_deliver_ahead(struct rabia_core *c);
void core_on_fetch(struct rabia_core *c, const struct rabia_msg *m);
void core_on_horizon(struct rabia_core *c, const struct rabia_msg *m);
void core_on_horizon_req(struct rabia_core *c, const struct rabia_msg *m);
int core_on_read_index(struct rabia_core *c, uint64_t round);

/* events.c */
void core_on_peer_up(struct rabia_core *c, uint8_t peer);
void core_on_peer_down(struct rabia_core *c, uint8_t peer);
int core_on_restore(struct rabia_core *c, const struct rabia_event *ev);
int core_on_resubmit(struct rabia_core *c, const struct rabia_event *ev);
void core_on_snapshot(struct rabia_core *c, uint64_t slot);
int core_on_submit(struct rabia_core *c, const struct rabia_event *ev);
void core_on_tick(struct rabia_core *c);
/* When the earliest wait for a proposed batch's body before joining a slot
 * ends (instance.c), 0 when no slot waits. */
uint64_t core_body_wait_end(const struct rabia_core *c);
/* Exchanges waiting for more proposals whose wait has ended: decide them. */
void core_exchange_waits(struct rabia_core *c);

#endif
