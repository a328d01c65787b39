/* The Rabia consensus core: a pure step function (events in, actions out).
 *
 * The core never calls the kernel, never reads a clock and never allocates
 * after rabia_core_create(): time, messages and completions come in as
 * events; messages to send and decided slots to apply go out in an update.
 * The daemon and the deterministic simulator run the same core.
 *
 * One replica runs one core. Slots (log positions) are decided by weak
 * multi-valued consensus with a common coin, exactly as
 * shared/design/RABIA.md states it; up to `window` slots run at once and
 * are always applied in slot order.
 *
 * ---------------------------------------------------------------------
 * PERSISTENCE CONTRACT (what survives a crash; the model in tests/model
 * checks this rule, keep the two in step)
 *
 * 1. Persist before send. Every message whose content the replica must
 *    never contradict (its PROPOSAL, STATE and VOTE of a slot, and the body
 *    of a batch it proxies) is listed in update.persist the step it is
 *    first sent. The embedder makes the step's persist records durable
 *    BEFORE any of that step's sends leave, and sends nothing of a later
 *    step before the earlier records are durable either (sends stay in
 *    order behind the records; group commit: one durable write covers all
 *    records of a loop turn, across every slot and peer, and the next group
 *    forms while a write is in flight). Retransmissions repeat only what
 *    was persisted. One exception: an own BATCH may leave before its
 *    record is durable when a durable record already makes every restart
 *    number its batches past that id (replica/node.c reserves sequence
 *    numbers ahead in RESERVE records): what persisting the body first
 *    protects is that one id never names two bodies. The BATCH record
 *    still goes in the same group, before this replica's PROPOSAL of it,
 *    and every replica logs a body before proposing it, so the body of a
 *    decided batch is on a disk whatever crashes. Decided slots (update.applies) are logged by the
 *    embedder too, and a client is answered only once the decision it
 *    reports is durable on this replica (the decision may count this
 *    replica's own vote, whose record is in the same group: answered
 *    earlier, a whole-cluster crash can lose that vote and the slot be
 *    decided otherwise; the simulator's planted reply-early bug). Two
 *    exceptions: a slot this replica decided by a unanimous exchange
 *    (rabia_apply.unanimous) may be answered once this replica's own
 *    PROPOSAL record is durable: every replica persisted a PROPOSAL of
 *    that batch before sending it, so every restart decides it again; and
 *    a slot learned from a peer's DECISION (rabia_apply.adopted) may be
 *    answered at once: that DECISION left its sender behind the sender's
 *    records, and every message the sender counted had left its own
 *    sender behind that one's records, so the outcome is on disks already.
 *    A replica restarted with its log intact is created with
 *    recovering = false and the SAME batch incarnation (ids never repeat:
 *    every id that left is in the log, and RESTORE moves next_seq past
 *    it), gets SNAPSHOT_INSTALLED for the last slot its state machine
 *    holds, then every persisted record as RABIA_EV_RESTORE in log order,
 *    and takes part at once: it resumes each open slot where its records
 *    left it, so it never contradicts itself, and a whole cluster killed at
 *    once finishes its in-flight slots and loses no acknowledged write.
 *    A record of a slot beyond the window the core now runs with (the
 *    window was lowered since the log was written) cannot be resumed: the
 *    core abstains in every slot up to it instead, as under rule 2, and
 *    learns them from its peers.
 *    tests/model checks this rule (FIX_PERSIST, crashes of all n at once)
 *    and that sending before persisting breaks it.
 *    Embedders without a log (durability = memory) persist nothing and
 *    rely on rule 2 after every restart. A replica whose log was lost
 *    recovers under rule 2 with a new log; the log records that it is
 *    recovering before anything else, and a restart before the HORIZON
 *    record arrives starts the recovery again from scratch.
 *
 * 2. Horizon rule. A replica that may have run before with the same id
 *    but lost its log (no log kept, or its disk was lost) is created with cfg.recovering = true and a fresh
 *    cfg.incarnation greater than any earlier one. While recovering it
 *    sends HORIZON_REQ to every peer and waits for HORIZON replies from
 *    n-f distinct peers other than itself. Each reply carries the highest
 *    slot that peer knows of (any slot it sent or received a message for,
 *    decided, or abstains below). With K the largest reply,
 *    H = K + window; the replica then ABSTAINS in every slot <= H: it sends
 *    no PROPOSAL, STATE or VOTE there, and learns those slots only from
 *    DECISION messages and catch-up. Why this is enough: any slot the
 *    replica sent a consensus message for before it crashed lies within
 *    `window` slots of a slot decided before the crash, and every decided
 *    slot was voted in by n-f replicas, so at least one of any n-f
 *    responders knows a slot at least that high. A replica answers
 *    HORIZON_REQ only once it has its own horizon, so the knowledge
 *    survives any sequence of restarts with at most f replicas recovering
 *    at once. A replica that answers HORIZON_REQ with K also decides every
 *    slot up to K + window right away (null when nothing is queued): an
 *    abstaining replica counts against f until its slots are decided, and
 *    an idle cluster would otherwise keep them open, so that a second
 *    restart could leave more than f abstainers in one slot. (Liveness
 *    only; a second crash inside that short window still can, until the
 *    durable log lets a restarted replica vote again.)
 *
 * 3. Transport duty of the embedder: when a peer connects with a new
 *    incarnation, every byte still unread from the peer's older connection
 *    is discarded BEFORE anything from the new connection is processed
 *    (in particular before HORIZON_REQ is answered). Messages of a dead
 *    incarnation must never be delivered after its successor was heard.
 *
 * 4. A brand-new cluster starts every replica with recovering = false
 *    (there is nothing to contradict). A replica cannot tell that start from
 *    one whose data dir was lost whole without --rejoin; its peers can, if
 *    they heard an earlier life of it: rabiad refuses such a first start
 *    (replica/README.md "A data dir lost"). A whole cluster that lost all
 *    memory at once (every replica killed together) lost its state; with
 *    rule 2 alone (no log) the acknowledged writes survive any f replicas
 *    crashing at once, not all n; with rule 1 they survive all n.
 *
 * 5. Batch ids contain the proxy's incarnation, so a restarted proxy never
 *    reuses the id of a batch its earlier life sent. With a log the
 *    incarnation is the log's, and a restart numbers past every own batch
 *    its log or its restored state knows (replica/replay.c): the log may
 *    have released the segment of the newest own BATCH record.
 * ---------------------------------------------------------------------
 * READ INDEX (linearizable reads without a slot; replica/node.c serves
 * them, core/README.md "Reads")
 *
 * A replica about to answer reads opens a round: it asks every peer for
 * the highest slot it knows of (core_known_slot: any slot it sent or
 * received a consensus message for, decided, or abstains below) and takes
 * the largest of n-f answers, its own included, as the round's index.
 * Every slot decided before the round began was voted in by n-f replicas
 * (a unanimous exchange: proposed by all n), each of which knew that slot
 * when the question reached it, and any two sets of n-f replicas share
 * one: so the index is at least every slot decided before the reads
 * arrived. Reads answered from the state once it applied every slot up to
 * the index therefore see every write acknowledged before they arrived:
 * they are linearizable. A larger index is safe (the reads wait longer).
 * A recovering replica neither opens rounds nor answers them (what it
 * knows is not yet a bound). With a log, a replica restarted from it
 * knows every slot it sent a message for (persisted before sending), so
 * its answers stay bounds across restarts.
 * On the wire a round is a HORIZON_REQ / HORIZON exchange whose nonce has
 * RABIA_READ_NONCE set (incarnations never do): builds without rounds
 * answer it as a recovering replica's question (and drive the slots up
 * to it + window, the only cost), so a mixed cluster still agrees. Every
 * build echoes a question's nonce as it is, except that this one, asked
 * with RABIA_READ_PROBE set, answers with it cleared: a question carries
 * the bit, and an answer that still has it comes from an older build
 * (rounds of the first build that served them, 3c9d238, are answered as
 * rounds too, but it cannot be told apart from the builds before). Such
 * an answer still counts (the same bound), but rabia_core_reads_ok turns
 * false until that peer comes up again (PEER_UP: restarted, perhaps
 * upgraded), so the embedder sends reads through the log instead of
 * making the peer drive a null slot for every round. A question without
 * the bit (from 3c9d238) is answered with the nonce as it came, which is
 * all that build matches.
 * ---------------------------------------------------------------------
 */
#ifndef RABIA_CORE_H
#define RABIA_CORE_H

#include "rabia/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RABIA_MAX_WINDOW 64
#define RABIA_MAX_PENDING 256 /* undecided batches per proxy, at most */
/* A proxy numbers no new batch this far above one of its own still pending
 * (replicas remember 256 seqs per proxy above the lowest undecided one). */
#define RABIA_SEQ_SPAN 192
/* HORIZON_REQ / HORIZON nonces of read-index rounds (READ INDEX above) */
#define RABIA_READ_NONCE (1ull << 63)
#define RABIA_READ_PROBE (1ull << 62) /* set in questions, cleared in answers by builds that serve rounds */
#define RABIA_READ_ROUND_MAX (RABIA_READ_PROBE - 1)
/* No slot gets near this (2^62: 146,000 years at a million slots a
 * second): a peer's message or snapshot naming one is malformed. */
#define RABIA_SLOT_LIMIT (1ull << 62)

enum rabia_policy {
    /* Propose the head of one priority queue ordered by (seq, proxy,
     * incarnation), as the paper does. Works with any window: beyond the
     * lowest open slot, slot s is started only by replica s mod n and the
     * others join (core/README.md, "Pipelining and null slots"). */
    RABIA_POLICY_GLOBAL = 0,
    /* Slot s serves proxy (s mod n): heads match by construction when the
     * proxy's batches reached everyone; a silent proxy's slots decide null
     * in one phase. Needs window >= n. */
    RABIA_POLICY_CLASSES = 1,
};

/* Planted bugs for the simulator's self-test (compiled only with
 * RABIA_TEST_BUGS; a production core ignores the field). */
enum rabia_bug {
    RABIA_BUG_COIN_PER_REPLICA = 1u << 0, /* coin seeded with the replica id */
    RABIA_BUG_MAJORITY_OF_VOTES = 1u << 1,/* decide on a majority of the n-f
                                             counted votes instead of f+1 */
    RABIA_BUG_DOUBLE_COUNT = 1u << 2,     /* count a sender twice in a round */
    RABIA_BUG_READ_SELF = 1u << 3,        /* a read-index round closes at once on the own bound alone */
    /* not a bug: answers read-index rounds as builds before the probe did
     * (the nonce as it came: READ INDEX above), so that the simulator can
     * run a replica of such a build among current ones */
    RABIA_BUG_READ_OLD_ANSWER = 1u << 4,
};

struct rabia_config {
    uint8_t n;                 /* replicas: 3, 5 or 7 */
    uint8_t self;              /* 0..n-1 */
    uint64_t epoch;            /* cluster configuration epoch (coin input) */
    uint64_t cluster_seed;     /* common-coin seed, equal on every replica */
    uint64_t incarnation;      /* grows on every start of this replica */
    uint32_t window;           /* slots in flight, 1..RABIA_MAX_WINDOW */
    uint32_t max_batch_bytes;  /* largest batch body */
    uint32_t max_pending;      /* undecided batches kept per proxy, 1..256 */
    uint32_t log_retain;       /* applied slots kept for peers' catch-up */
    uint64_t log_retain_bytes; /* ... holding at most this many bytes of batch bodies, the oldest going
                                  first (0: no bound; the last applied slot always stays) */
    uint32_t catchup_chunk;    /* decisions sent per catch-up request */
    uint64_t retransmit_us;    /* resend after this long without progress */
    uint8_t policy;            /* enum rabia_policy */
    bool recovering;           /* see the persistence contract, rule 2 */
    uint32_t bugs;             /* enum rabia_bug, test builds only */
};
void rabia_config_default(struct rabia_config *cfg, uint8_t n, uint8_t self);
/* 0, or RABIA_E_CONFIG with a message naming the field and the fix. */
int rabia_config_check(const struct rabia_config *cfg, char *why, size_t why_len);

enum rabia_event_type {
    RABIA_EV_TICK = 1,      /* time passed */
    RABIA_EV_SUBMIT,        /* body: a batch this replica proposes as proxy */
    RABIA_EV_RECEIVE,       /* msg from a peer (msg.from set by the transport) */
    RABIA_EV_PEER_UP,       /* peer: a connection to it (re)opened */
    RABIA_EV_PEER_DOWN,     /* peer: connection lost */
    RABIA_EV_SNAPSHOT_INSTALLED, /* slot: state restored up to this slot */
    RABIA_EV_RESUBMIT,      /* body, msg.id: one of update.retired that the restored
                               state did not apply, queued again under its own id */
    RABIA_EV_RESTORE,       /* msg: a record of update.persist from an earlier life
                               (contract rule 1); only before any other event but
                               SNAPSHOT_INSTALLED. Sends nothing; starts no slot. A
                               BATCH with value 1 is one the restored state applied:
                               next_seq moves past its id, and with its body it is
                               kept for peers' FETCH while a slot open at the crash
                               could decide it again (give the body of own batches
                               applied in the last few windows of slots) */
    RABIA_EV_READ_INDEX,    /* slot: a read-index round id (1 .. RABIA_READ_ROUND_MAX): ask
                               the peers how far they know the slots go (READ INDEX below);
                               replaces a round still open. RABIA_E_FULL while recovering */
};

struct rabia_event {
    uint8_t type;
    uint8_t peer;           /* PEER_UP / PEER_DOWN */
    uint64_t now_us;        /* every event carries the time */
    uint64_t slot;          /* SNAPSHOT_INSTALLED */
    const uint8_t *body;    /* SUBMIT */
    uint32_t body_len;
    struct rabia_msg msg;   /* RECEIVE */
};

struct rabia_send {
    uint8_t to;             /* replica id, or RABIA_TO_ALL */
    struct rabia_msg msg;
};

/* A decided slot, to apply in the order given (slots strictly increasing). */
struct rabia_apply {
    uint64_t slot;
    bool null;              /* nothing to apply */
    bool unanimous;         /* decided here by a unanimous exchange: every replica proposed this
                               batch, each persisting its PROPOSAL before sending it, so once
                               this replica's own PROPOSAL record is durable no crash of any
                               number of replicas can change the outcome (replica/node.c
                               answers then, without waiting for the DECIDED record) */
    bool adopted;           /* learned from a peer's DECISION, not decided here: its sender sent
                               it only behind its own records, and every message it counted had
                               left its sender behind that sender's records, so the outcome is
                               on disks already and no crash of any number of replicas can
                               change it (replica/node.c answers at once) */
    uint8_t holders;        /* not null: replicas known to have received this batch before the
                               decision (each proposed it, with a log persisting it first), this
                               one included: n after a unanimous exchange, else those whose
                               PROPOSAL of it was counted here, never fewer than a majority (a
                               decided batch was proposed by one); RESP's WAIT answers with it */
    struct rabia_batch_id id;
    const uint8_t *body;
    uint32_t body_len;
};

/* What one step produced. Pointers stay valid until the next step. */
struct rabia_update {
    struct rabia_send *sends;
    uint32_t n_sends;
    struct rabia_apply *applies;
    uint32_t n_applies;
    uint8_t snapshot_to_mask;   /* peers that need a snapshot from us */
    /* SNAPSHOT_INSTALLED: this replica's own batches that were still
     * pending and are dropped now (the core cannot tell which of them the
     * snapshot covers). The embedder asks the restored apply layer: a batch
     * it applied is answered from its sessions; one it did not apply goes
     * back with RABIA_EV_RESUBMIT under the same id (a new id would let a
     * copy still in flight elsewhere apply a second time). */
    struct rabia_apply *retired;
    uint32_t n_retired;
    uint64_t next_tick_us;      /* call again with a TICK by then (0 = idle) */
    struct rabia_batch_id submitted; /* SUBMIT: the id given to the batch */
    /* Contract rule 1: durable before any send of this update leaves.
     * PROPOSAL/STATE/VOTE (slot, phase, value, id), BATCH (id, body: the
     * batch this replica proxies) and HORIZON (slot: the end of a recovery
     * under rule 2, abstain up to it after any later restart); from = self. */
    const struct rabia_msg *persist;
    uint32_t n_persist;
    /* READ INDEX: the round RABIA_EV_READ_INDEX opened completed in this
     * step (0: none completed) and its index: every slot decided anywhere
     * before the round began is <= read_slot */
    uint64_t read_round;
    uint64_t read_slot;
};

struct rabia_stats {
    uint64_t slots_decided;
    uint64_t slots_null;
    uint64_t slots_fast;        /* decided in phase 1, or at once by a unanimous exchange */
    uint64_t max_phase;
    uint64_t decisions_adopted; /* learned from DECISION / catch-up */
    uint64_t fetches;
    uint64_t sends_dropped;     /* output full: retransmission recovers */
    uint64_t msgs_ignored;      /* outside the window, stale or duplicate */
    uint64_t anomalies;         /* peer messages that break protocol rules */
    uint64_t retransmits;
    uint64_t catchup_deduped;   /* decisions not sent again to a peer that asked for them twice within
                                   half a retransmit period (handlers.c, core_on_catchup) */
    uint64_t slots_unanimous;   /* of slots_fast: decided at once by a unanimous exchange (no STATE or
                                   VOTE: with durability = wal one group write instead of three) */
    uint64_t proposals_held;    /* PROPOSALs for the slot just past the window, held until it moves
                                   (handlers.c, core_on_consensus) instead of dropped */
    uint64_t read_rounds;       /* read-index rounds opened here (RABIA_EV_READ_INDEX) */
    uint64_t read_rounds_done;  /* ... completed with n-f answers */
    uint64_t read_answers;      /* peers' read-index rounds this replica answered */
    uint64_t read_old_answers;  /* answers to own rounds from builds without rounds (RABIA_READ_PROBE left set) */
};

struct rabia_core;

/* Allocates every table the core will ever use. NULL on bad config or
 * out of memory (check the config first for a message). */
struct rabia_core *rabia_core_create(const struct rabia_config *cfg);
void rabia_core_destroy(struct rabia_core *c);

/* Process one event. Returns 0, or a negative error for an event that was
 * refused (SUBMIT: RABIA_E_FULL when too many batches are pending,
 * RABIA_E_TOOBIG for an oversized body). A refused event changes nothing
 * but update->next_tick_us. Malformed peer behaviour is counted, never
 * fatal. */
int rabia_core_step(struct rabia_core *c, const struct rabia_event *ev,
                    struct rabia_update *out);

/* Read-only introspection for status output and tests. */
uint64_t rabia_core_next_apply(const struct rabia_core *c);
uint64_t rabia_core_known_slot(const struct rabia_core *c);
/* The oldest decided slot a peer can still get from this core (catch-up);
 * a peer further behind needs a snapshot taken at log_first - 1 or later. */
uint64_t rabia_core_log_first(const struct rabia_core *c);
/* Bytes of batch bodies the log holds for its applied slots (what
 * log_retain_bytes bounds). */
uint64_t rabia_core_log_bytes(const struct rabia_core *c);
bool rabia_core_recovering(const struct rabia_core *c);
/* Whether reads may open read-index rounds now: not recovering, and no
 * peer answered a round as an older build since it last came up (READ
 * INDEX above). */
bool rabia_core_reads_ok(const struct rabia_core *c);
uint64_t rabia_core_abstain_below(const struct rabia_core *c); /* abstains in slots <= this */
uint32_t rabia_core_pending(const struct rabia_core *c);       /* batches in the PQ */
/* Own batches queued and not proposed in any slot yet: while there is one,
 * a proxy gains nothing by cutting another small batch (the next slot takes
 * one batch), and keeps filling the open one instead. */
uint32_t rabia_core_own_waiting(const struct rabia_core *c);
/* Own batches not decided yet: waiting for a slot or in one. */
uint32_t rabia_core_own_queued(const struct rabia_core *c);
/* The oldest own batch sequence still pending, or decided in a slot not
 * yet handed out to apply (its DECIDED record is not written yet, and may
 * name the BATCH record instead of holding the body), else the last one
 * given out: an embedder's log keeps every record of these (a restart
 * must move next_seq past every id that ever left; RABIA_EV_RESTORE). */
uint64_t rabia_core_own_keep_seq(const struct rabia_core *c);
uint32_t rabia_core_inflight(const struct rabia_core *c);      /* started, undecided slots */
const struct rabia_stats *rabia_core_stats(const struct rabia_core *c);
const char *rabia_core_last_anomaly(const struct rabia_core *c); /* what the last anomaly was */
/* One line on what the core knows of a batch (for debugging and tests). */
int rabia_core_describe_batch(const struct rabia_core *c, const struct rabia_batch_id *id, char *buf, size_t len);
/* The coin of (epoch, slot, phase) as every replica computes it. */
int rabia_coin(uint64_t cluster_seed, uint64_t epoch, uint64_t slot, uint32_t phase);

/* Trace hook for the simulator's readable slot traces (NULL = off). */
typedef void (*rabia_trace_fn)(void *ctx, uint64_t slot, const char *line);
void rabia_core_set_trace(struct rabia_core *c, rabia_trace_fn fn, void *ctx);
/* Observer of every coin the core flips, so a simulator can check that the
 * coin is common: equal on every replica for a (slot, phase). */
typedef void (*rabia_coin_fn)(void *ctx, uint64_t slot, uint32_t phase, int value);
void rabia_core_set_coin_observer(struct rabia_core *c, rabia_coin_fn fn, void *ctx);
/* Observer of every decision this core makes or adopts, for metrics: the
 * value, the phase it was decided in (adopted: learned from a peer's
 * DECISION or catch-up, phase is where this replica was) and the time since
 * the slot entered this replica's window (first message or own proposal). */
typedef void (*rabia_decide_fn)(void *ctx, uint64_t slot, uint8_t value, uint32_t phase, bool adopted,
                                uint64_t elapsed_us);
void rabia_core_set_decide_observer(struct rabia_core *c, rabia_decide_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
