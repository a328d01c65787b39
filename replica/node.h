/* replica/node.h: the replica's runtime without I/O, driven by rabiad
 * (replica.c, over io/ and the write-ahead log) and by the simulator (over
 * its simulated network, clock and disk): the same code from a client's
 * request to its reply.
 *
 *   requests --> waiters + batcher --> core --> sends, log records
 *   log write done --> decided slots applied (sessions + state machine) --> replies
 *
 * It owns the core, the apply layer, the batcher and the waiter table, and
 * the durability rules of include/rabia/core.h (persistence contract rule
 * 1): with a log, every update's persist records and decided slots are
 * appended before its sends, the sends are held until the write holding
 * them completes (group commit: one write per loop turn, the next group
 * forming while one is in flight), and decided slots are applied, and
 * clients answered, once their records are durable. Without a log
 * (durability = memory) sends leave and slots apply at once, as in the
 * paper.
 *
 * The driver gives the time, carries frames, answers clients, streams
 * snapshots and writes the log (struct node_log). Everything here runs on
 * the driver's one thread; nothing here makes a system call. */
#ifndef RABIA_REPLICA_NODE_H
#define RABIA_REPLICA_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batcher.h"
#include "rabia/core.h"
#include "rabia/replica.h"
#include "rabia/state_machine.h"
#include "rsm.h"

/* Log record types (persist/wal.h's enum rabia_wal_rec has the same values). */
enum node_rec {
    NODE_REC_SENT = 1,
    NODE_REC_BATCH = 2,
    NODE_REC_DECIDED = 3,
    NODE_REC_RESERVE = 4,
    /* a DECIDED record without the body: an earlier record of this log
     * holds it (node.c, append_decided); node_log_decided never sees one */
    NODE_REC_DECIDED_REF = 5,
};

/* Planted bugs for the simulator's self-test (RABIA_TEST_BUGS builds only). */
enum node_bug {
    NODE_BUG_SEND_EARLY = 1u << 0,  /* sends leave before their records are durable */
    NODE_BUG_REPLY_EARLY = 1u << 1, /* decided slots applied (and answered) before they are durable */
    NODE_BUG_LOG_FETCH = 1u << 2,   /* the log serves a FETCH past the slot the peer catches up from, and a
                                       short read waits for the peer's next ask (log_continue off): the
                                       older rules, which together stalled a catching-up peer */
    NODE_BUG_READ_NOWAIT = 1u << 3, /* node_read answers from the state at once: no read-index round */
    NODE_BUG_LOG_REFUSAL = 1u << 4, /* a peer's old-slot messages hold its snapshot back even after the log
                                       refused its catch-up (the older rule) */
};

/* Who waits for a request's answer, in the driver's words, handed back. */
struct node_to {
    uint32_t conn, gen, slot;
    rabia_replica_done_fn fn;
    void *ctx;
    uint64_t t_us; /* when the request arrived (the driver's clock; metrics) */
    bool read;     /* taken by node_read (answered by the read index, or through the log after all) */
};

struct node_env {
    void *ctx;
    uint64_t (*now_us)(void *ctx);
    /* the wall clock in Unix ms, stamped on proposed batches (may be NULL: 0) */
    uint64_t (*wall_ms)(void *ctx);
    /* an encoded frame to a peer index, or RABIA_TO_ALL (every peer but self) */
    void (*send)(void *ctx, uint8_t to, const uint8_t *frame, uint32_t len);
    /* May be NULL. The same, for a frame that starts a shared buffer of the
     * node's frame pool (buf == frame): the driver may keep it without a
     * copy, taking node_frame_ref for each holder and node_frame_unref when
     * done; the bytes do not change until the last reference goes. Frames
     * of NODE_SHARE_MIN bytes and more go this way when the pool has a free
     * buffer: one encode for every peer, no copy per peer. */
    void (*send_shared)(void *ctx, uint8_t to, const uint8_t *frame, uint32_t len, void *buf);
    /* a request's answer (status enum rabia_reply_status) */
    void (*reply)(void *ctx, const struct node_to *to, uint64_t cid, uint64_t seq, int status, const uint8_t *res,
                  size_t len);
    /* a peer needs a snapshot of the state (it is behind the retained log) */
    void (*snapshot_to)(void *ctx, uint8_t peer);
    /* the replica cannot go on (a log failure, an apply that failed): stop */
    void (*fatal)(void *ctx, const char *why);
    void (*note)(void *ctx, int level, const char *msg); /* enum rabia_log_level */
    /* observers, may be NULL: the simulator's checkers, metrics */
    void (*decided)(void *ctx, uint64_t slot, const struct rabia_batch_id *id, const uint8_t *body, uint32_t len);
    void (*applied)(void *ctx, uint64_t slot);
    void (*submitted)(void *ctx, const struct rabia_batch_id *id, const uint8_t *body, uint32_t len);
};

/* The write-ahead log as the node sees it. append copies the record into
 * the group being formed; write starts writing everything appended so far
 * (or its first part, when large) and reports completion later through
 * node_log_decided (each DECIDED record of the write, in order) and
 * node_log_written. */
enum { NODE_WRITE_NONE = 0, NODE_WRITE_ALL = 1, NODE_WRITE_PART = 2 };
struct node_log {
    void *ctx;
    int (*append)(void *ctx, uint8_t type, uint64_t slot, const struct rabia_msg *m);
    /* NODE_WRITE_NONE: nothing to write; NODE_WRITE_ALL: the rest of what was
     * appended is in flight; NODE_WRITE_PART: a part, more follow; -EAGAIN:
     * not now (no segment: refusal says why); < 0: failed (it said why) */
    int (*write)(void *ctx);
    const char *(*refusal)(void *ctx); /* "" or why client writes are refused now */
    /* May be NULL. Peer `peer`'s catch-up below the core's retained log,
     * from the log (logcatch.h): DECISION messages for [from, until)
     * through emit; the number of slots sent, 0 when the log does not hold
     * `from` (the core's snapshot offer stands), -EAGAIN while reading
     * towards it (no offer: the peer asks again). Each peer has its own
     * read position: two peers behind by different amounts never move
     * each other's. */
    int (*catchup)(void *ctx, uint8_t peer, uint64_t from, uint64_t until,
                   void (*emit)(void *ectx, const struct rabia_msg *m), void *ectx);
    /* With catchup: whether the log surely holds the decided slot `from`
     * and all after it (they follow its newest snapshot). */
    bool (*holds)(void *ctx, uint64_t from);
};

struct node_cfg {
    uint8_t self, n;
    const struct rabia_sm_ops *sm;
    struct rabia_rsm_config rsm;
    struct batcher_cfg batch;
    uint32_t waiters_cap; /* requests waiting for their slot; a power of two */
    uint32_t linger_us;   /* batch-linger-us (node.c, cut_batches): 0 = cut as soon as no own batch waits */
    uint64_t log_serving_us; /* a peer served catch-up from the log gets no snapshot offer, and the log keeps
                                its slots, this long after its last request (0: NODE_LOG_SERVING_US); the
                                log stops keeping them for a peer that asked from one slot for ten times
                                that (node_log_pin) */
    uint32_t bugs;        /* enum node_bug, RABIA_TEST_BUGS builds only */
    /* Reads answered by the read index (node_read; core.h READ INDEX):
     * off when 0. At most reads_cap wait at once (beyond: through the log). */
    uint32_t reads_cap;
    /* The session a read taken without one (node_read with seq 0) goes
     * through the log under when its rounds do not complete: a
     * connection-scoped id of this replica's own (never a client's). */
    uint64_t read_cid;
    /* A read not answered this long after it came (no n-f answers to its
     * rounds, or the state did not reach its index) goes through the log
     * after all, with every read behind it (0: NODE_READ_FALLBACK_US, 1 s). */
    uint64_t read_fallback_us;
};

/* What a log gives back at start (replay.h builds it). */
struct node_restore {
    const struct rabia_msg *msgs; /* own batches first, then sent records in log order */
    uint32_t n;
    uint64_t applied;  /* last slot the rebuilt state holds */
    uint64_t horizon;  /* abstain up to here (a finished --rejoin's horizon), 0 none */
};

struct node_stats {
    uint64_t sessions_closed, sessions_close_lost;
    uint64_t resubmitted;         /* own batches queued again after a snapshot install */
    uint64_t refused_unavailable; /* requests refused: the log cannot be written */
    uint64_t restore_refused;     /* log records the core did not take back at start */
    uint64_t frames_shared;       /* frames encoded once into the frame pool for every peer (send_shared) */
    uint64_t frames_copied;       /* frames copied because every pool frame was held */
    uint32_t frames_in_use;       /* pool frames held now (by the node or a connection): 0 when idle */
    uint64_t answered_early;      /* slots answered before their DECIDED record was durable: decided
                                     by a unanimous exchange, own PROPOSAL durable (node.c) */
    uint64_t decided_by_ref;      /* DECIDED records written without the body (NODE_REC_DECIDED_REF) */
    uint64_t catchup_log_slots;   /* decided slots sent to peers from the log (below the retained log) */
    uint64_t catchup_log_offers;  /* snapshot offers the log made unneeded (a catch-up it served or reads) */
    uint64_t catchup_log_fetch_held; /* FETCHes left to the asker's catch-up from the log, which brings them */
    uint64_t catchup_log_continued;  /* log reads for a peer's catch-up that went on at the next loop turn (the
                                        last stopped at its budget before the first slot asked for) */
    uint64_t linger_cohort;       /* open batches held after an own decision, with a log and no other proxy's
                                     batch pending, for the clients it answered (node.c, linger) */
    uint32_t waiters;
    uint64_t reads_indexed;   /* reads answered by the read index (node_read), no slot of their own */
    uint64_t reads_logged;    /* reads node_read took that went through the log after all: not answered
                                 within read_fallback_us, or this replica is recovering */
    uint64_t read_rounds;     /* read-index rounds opened (several reads share one) */
    uint64_t read_rounds_retried; /* ... opened again: no n-f answers within the core's retransmit period */
    uint32_t reads_waiting;   /* reads waiting now for their round or for the apply to reach its index */
};

struct rabia_node;
/* How many applied slots the core's log keeps for peers' catch-up at the
 * body sizes of now: log-retain, or fewer while log-retain-bytes binds
 * (snapstream.c's transfer-rate forecast with durability = memory). */
uint64_t node_log_span(const struct rabia_node *n);
/* The first slot the log must keep for peers it serves catch-up to now
 * (0: none): a snapshot of this replica's own must not release it. A peer
 * that has asked from one slot for ten serving periods pins nothing. */
uint64_t node_log_pin(const struct rabia_node *n, uint64_t now);

/* The apply layer, batcher and waiter table; the core comes with
 * node_start (its settings depend on what the log holds). NULL: out of
 * memory or bad settings. */
struct rabia_node *node_create(const struct node_cfg *cfg, const struct node_env *env);
void node_destroy(struct rabia_node *n);
/* References to a frame env.send_shared passed (the pool's buffers:
 * RABIA_ASSERT on anything else, or on a buffer with no reference). */
void node_frame_ref(struct rabia_node *n, void *buf);
void node_frame_unref(struct rabia_node *n, void *buf);
/* A fresh, empty apply layer (before node_start: a log that must be
 * rebuilt). 0 or -ENOMEM. */
int node_reset_state(struct rabia_node *n);
/* Create the core and hand it what the log holds (rest may be NULL); log
 * NULL: durability = memory. With a log and core->recovering, the log
 * first says so (a HORIZON_REQ record: a restart before the recovery ends
 * starts it over). 0, or -ENOMEM / RABIA_E_CONFIG. */
int node_start(struct rabia_node *n, const struct rabia_config *core, const struct node_log *log,
               const struct node_restore *rest);

/* A client request (seq 0: close the session cid, nobody waits). Answered
 * through env->reply: at once (a retry of an applied request, a refusal),
 * or once its slot is applied. */
void node_request(struct rabia_node *n, uint64_t cid, uint64_t seq, uint64_t ack, const uint8_t *op, uint32_t len,
                  const struct node_to *to);
/* A read-only request (the state machine's query says so) answered
 * without a slot of its own: it joins the next read-index round (core.h,
 * READ INDEX), and once the state applied every slot up to the round's
 * index it is answered from the state through env->reply (to->read set),
 * in the order reads came. seq 0: a request without a session (RESP);
 * else the client's (cid, seq, ack), under which it goes through the log
 * if its round never completes. False when it must go through the log
 * now (node_request): reads off, no query, the state machine says it is
 * not such a read, the read queue full, reads sent through the log still
 * unanswered (order), the core recovering. The caller keeps its own
 * order: a write behind a read waits for the read's answer. */
bool node_read(struct rabia_node *n, uint64_t cid, uint64_t seq, uint64_t ack, const uint8_t *op, uint32_t len,
               const struct node_to *to);
/* A read index without a read (a backup must hold every write acknowledged
 * before it was asked, by any replica): node_index_ask asks for one with
 * the next round node_turn opens and returns its ticket, 0 when none can
 * be had (the core recovering, a peer of a build without rounds: the
 * caller goes by its own applied slot). node_index_got: true, with *slot
 * (every slot a majority knew of when asked; the state must reach it),
 * once a round opened after the ask completed. */
uint64_t node_index_ask(struct rabia_node *n);
bool node_index_got(const struct rabia_node *n, uint64_t ticket, uint64_t *slot);
/* Who waits here for (cid, seq), if anyone: this replica took the request
 * from its client (the audit log names the client's user and address). */
bool node_waiter(struct rabia_node *n, uint64_t cid, uint64_t seq, struct node_to *out);
/* While env.reply runs for an applied request: the replicas known to have
 * received its slot's batch before the decision, this one included
 * (rabia_apply.holders; RESP's WAIT). */
uint8_t node_reply_holders(const struct rabia_node *n);
/* Forget who waits for (cid, seq): the answer goes nowhere. */
void node_forget(struct rabia_node *n, uint64_t cid, uint64_t seq);
/* The driver stops for good (no node_turn or node_step follows): every
 * request and read waiting for driver connection `conn` is answered with
 * `status` and no result through env->reply, and forgotten; the read queue
 * is emptied. env->reply must not call back into the node. */
void node_abandon(struct rabia_node *n, uint32_t conn, int status);
/* One core event (RECEIVE, PEER_UP, PEER_DOWN, TICK); now_us is filled in. */
void node_step(struct rabia_node *n, struct rabia_event *ev);
/* Once per loop turn, after the turn's events: the core's tick when due,
 * batches cut when due, the next group write started when none is in
 * flight. Returns when to call again at the latest (0: nothing due). */
uint64_t node_turn(struct rabia_node *n);
/* After node_turn: how many events (client reads, peer messages, log
 * writes) its caller may let arrive before the next turn (1: wake for the
 * first). More than 1 only while a batch is held for the clients the last
 * one answered (linger, with a log and no other proxy's batch pending):
 * an estimate of the reads that bring the rest of them back (their
 * requests, counted in runs of one client's), at most
 * NODE_WAIT_EVENTS_MAX. A wrong estimate costs time only: too low, an
 * early turn; too high, the hold ends at node_turn's deadline, which
 * bounds the sleep. A peer's message arriving meanwhile (another proxy
 * starting a slot) is handled at the wake-up, within that deadline. */
uint32_t node_wait_events(const struct rabia_node *n);
/* After node_turn: whether a log write is in flight that every send this
 * node would make waits for (it holds a persist record: handle_update
 * holds sends behind it), so that the caller may sleep until it finishes
 * rather than wake for each message that arrives meanwhile (the loop's
 * rio_run_once_file_first): what those messages produce leaves only after
 * the write anyway. */
bool node_log_gates(const struct rabia_node *n);
/* Completion of a log write: each DECIDED record it held, then written. */
void node_log_decided(struct rabia_node *n, uint64_t slot, const struct rabia_batch_id *id, const uint8_t *body,
                      uint32_t len);
void node_log_written(struct rabia_node *n);
/* A snapshot (the apply layer's format) taken at `slot` replaces the state
 * (the driver has made it durable first, with a log). 0; -EALREADY (this
 * replica caught up meanwhile); -EINVAL (not a snapshot of that slot); or
 * the apply layer's error. */
int node_install_snapshot(struct rabia_node *n, const uint8_t *data, size_t len, uint64_t slot);

/* The own batch sequence below which the log may release BATCH records
 * once a durable snapshot covers slot `upto` (and `upto` only grows): the
 * core's (rabia_core_own_keep_seq), or lower while a DECIDED_REF record of
 * a slot above `upto` names an own batch whose body only its BATCH record
 * holds. */
uint64_t node_keep_batch_seq(struct rabia_node *n, uint64_t upto);

struct rabia_core *node_core(struct rabia_node *n);
struct rabia_rsm *node_rsm(struct rabia_node *n);
const struct batcher *node_batcher(const struct rabia_node *n);
void node_stats(const struct rabia_node *n, struct node_stats *out);
/* "" or why client writes are refused now (a full disk, a failed log). */
const char *node_refusal(struct rabia_node *n);

#endif
