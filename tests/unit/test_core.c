/* The consensus core driven by hand: one replica (id 0 of 3) and peer
 * messages written by the test, for rules that the simulator reaches only
 * by chance. */
#include <stdbool.h>
#include <string.h>

#include "check.h"
#include "rabia/core.h"

static uint64_t now_us = 1000;

static int step(struct rabia_core *c, struct rabia_event *ev, struct rabia_update *u)
{
    now_us += 1000000; /* far apart: no rate limit applies */
    ev->now_us = now_us;
    return rabia_core_step(c, ev, u);
}

static void receive(struct rabia_core *c, struct rabia_msg m, struct rabia_update *u)
{
    struct rabia_event ev = {.type = RABIA_EV_RECEIVE, .msg = m};
    CHECK_EQ(step(c, &ev, u), 0);
}

static struct rabia_core *make(uint32_t log_retain)
{
    struct rabia_config cfg;
    rabia_config_default(&cfg, 3, 0);
    cfg.log_retain = log_retain;
    struct rabia_core *c = rabia_core_create(&cfg);
    CHECK(c != NULL);
    return c;
}

/* After a snapshot install the log holds nothing below the snapshot, while
 * the retention window (next_apply - log_retain) still reaches below it.
 * Every request for such a slot must be answered with a snapshot offer:
 * before the fix none was, and the asking peer stalled for good (sim seed
 * 633, --mix all). */
static void test_snapshot_gap_offers_snapshot(void)
{
    struct rabia_core *c = make(1024);
    struct rabia_update u;
    struct rabia_event ev = {.type = RABIA_EV_SNAPSHOT_INSTALLED, .slot = 100};
    CHECK_EQ(step(c, &ev, &u), 0);
    CHECK_EQ(rabia_core_next_apply(c), 101);

    /* a peer still working on slot 50 */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 1, .slot = 50}, &u);
    CHECK_EQ(u.snapshot_to_mask, 1u << 1);
    CHECK_EQ(u.n_sends, 0);

    /* a peer catching up from slot 50 */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_CATCHUP, .from = 2, .slot = 50}, &u);
    CHECK_EQ(u.snapshot_to_mask, 1u << 2);

    /* a peer fetching the body of slot 60 */
    struct rabia_msg f = {.type = RABIA_MSG_FETCH, .from = 1, .slot = 60, .has_id = 1,
                          .id = {.proxy = 2, .incarnation = 1, .seq = 7}};
    receive(c, f, &u);
    CHECK_EQ(u.snapshot_to_mask, 1u << 1);
    CHECK_EQ(rabia_core_stats(c)->anomalies, 0);
    rabia_core_destroy(c);
}

/* log_retain_bytes: the applied slots the log keeps hold at most that many
 * bytes of bodies, the oldest going first; a peer asking below gets a
 * snapshot offer, above gets the decisions; a snapshot install starts the
 * count over. */
static void decide_slots(struct rabia_core *c, uint64_t first, uint64_t last, uint32_t body_len,
                         struct rabia_update *u)
{
    static uint8_t body[4096];
    for (uint64_t s = first; s <= last; s++) {
        struct rabia_batch_id id = {.proxy = 1, .incarnation = 1, .seq = s};
        receive(c, (struct rabia_msg){.type = RABIA_MSG_BATCH, .from = 1, .has_id = 1, .id = id, .body = body,
                                      .body_len = body_len},
                u);
        receive(c, (struct rabia_msg){.type = RABIA_MSG_DECISION, .from = 1, .slot = s, .value = 1, .has_id = 1,
                                      .id = id},
                u);
        CHECK_EQ(rabia_core_next_apply(c), s + 1);
    }
}

static bool sends_decision(const struct rabia_update *u, uint8_t to, uint64_t slot)
{
    for (uint32_t i = 0; i < u->n_sends; i++)
        if (u->sends[i].msg.type == RABIA_MSG_DECISION && u->sends[i].to == to && u->sends[i].msg.slot == slot)
            return true;
    return false;
}

static void test_log_retain_bytes(void)
{
    for (int bounded = 0; bounded < 2; bounded++) {
        struct rabia_config cfg;
        rabia_config_default(&cfg, 3, 0);
        cfg.log_retain = 1024;
        cfg.log_retain_bytes = bounded ? 10000 : 0;
        struct rabia_core *c = rabia_core_create(&cfg);
        CHECK(c != NULL);
        struct rabia_update u;
        decide_slots(c, 1, 20, 1000, &u);
        /* 10 bodies of 1,000 bytes fit 10,000: slots 11-20 stay */
        CHECK_EQ(rabia_core_log_first(c), bounded ? 11 : 1);
        receive(c, (struct rabia_msg){.type = RABIA_MSG_CATCHUP, .from = 2, .slot = 5}, &u);
        CHECK_EQ(u.snapshot_to_mask, bounded ? 1u << 2 : 0u);
        CHECK(bounded ? !sends_decision(&u, 2, 5) : sends_decision(&u, 2, 5));
        receive(c, (struct rabia_msg){.type = RABIA_MSG_CATCHUP, .from = 1, .slot = 15}, &u);
        CHECK_EQ(u.snapshot_to_mask, 0u);
        CHECK(sends_decision(&u, 1, 15));
        /* one body larger than the bound: the last applied slot stays */
        decide_slots(c, 21, 21, 4096, &u);
        decide_slots(c, 22, 22, 4096, &u);
        decide_slots(c, 23, 23, 4096, &u);
        CHECK_EQ(rabia_core_log_first(c), bounded ? 22 : 1);
        /* a snapshot install empties the log: the count starts over */
        struct rabia_event ev = {.type = RABIA_EV_SNAPSHOT_INSTALLED, .slot = 100};
        CHECK_EQ(step(c, &ev, &u), 0);
        decide_slots(c, 101, 112, 1000, &u);
        CHECK_EQ(rabia_core_log_first(c), bounded ? 103 : 101);
        CHECK_EQ(rabia_core_stats(c)->anomalies, 0);
        rabia_core_destroy(c);
    }
}

/* A replica that knows a peer is ahead keeps ticking, and each tick asks
 * that peer again (CATCHUP), even when nothing else happens: an idle
 * cluster says nothing by itself, and the snapshot a peer offered may never
 * arrive (its transfer dropped: a stall, a closed link). Before, the core
 * went idle (next_tick_us 0) and the replica stayed behind until the next
 * write; the simulator, once its transfers ran snapstream.c in chunks,
 * ended runs with a replica 115 slots behind (seed 1300105, --mix all). */
static bool sends_catchup(const struct rabia_update *u, uint8_t to)
{
    for (uint32_t i = 0; i < u->n_sends; i++)
        if (u->sends[i].msg.type == RABIA_MSG_CATCHUP && u->sends[i].to == to) return true;
    return false;
}

static void test_behind_keeps_asking(void)
{
    struct rabia_core *c = make(64);
    struct rabia_update u;
    /* peer 2 is at slot 500: far beyond this replica's window */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 2, .slot = 500}, &u);
    CHECK_EQ(rabia_core_next_apply(c), 1);
    for (int k = 0; k < 3; k++) {
        CHECK(u.next_tick_us != 0);
        struct rabia_event ev = {.type = RABIA_EV_TICK};
        CHECK_EQ(step(c, &ev, &u), 0);
        CHECK(sends_catchup(&u, 2));
    }
    /* caught up (a snapshot at the peer's slot): idle again */
    struct rabia_event ev = {.type = RABIA_EV_SNAPSHOT_INSTALLED, .slot = 500};
    CHECK_EQ(step(c, &ev, &u), 0);
    CHECK_EQ(u.next_tick_us, 0);
    rabia_core_destroy(c);
}

/* A message naming a slot no cluster reaches (2^62 and up) is refused and
 * counted: one such frame from a faulty or forged peer set the known slot
 * near 2^64 for good (HORIZON answers, read rounds and `+ window` took it). */
static void test_slot_out_of_range(void)
{
    struct rabia_core *c = make(64);
    struct rabia_update u;
    uint64_t known = rabia_core_known_slot(c);
    const uint8_t types[] = {RABIA_MSG_PROPOSAL, RABIA_MSG_DECISION, RABIA_MSG_FETCH, RABIA_MSG_CATCHUP,
                             RABIA_MSG_HORIZON, RABIA_MSG_HORIZON_REQ};
    for (size_t i = 0; i < sizeof types; i++) {
        receive(c, (struct rabia_msg){.type = types[i], .from = 2, .slot = UINT64_MAX, .phase = 1}, &u);
        receive(c, (struct rabia_msg){.type = types[i], .from = 2, .slot = 1ull << 62, .phase = 1}, &u);
    }
    CHECK_EQ(rabia_core_stats(c)->anomalies, 2 * sizeof types);
    CHECK_EQ(rabia_core_known_slot(c), known);
    CHECK_EQ(u.n_sends, 0);
    rabia_core_destroy(c);
}

/* A peer's BATCH with an empty body is refused and counted: every batch
 * body holds at least its header. Taken, it was proposed here when a peer
 * proposed it, its body record written with no bytes, and a decision of it
 * logged by reference to that record could not be replayed: the replica
 * never started again (found by review). */
static void test_empty_batch_refused(void)
{
    struct rabia_core *c = make(64);
    struct rabia_update u;
    struct rabia_batch_id id = {.proxy = 1, .incarnation = 1, .seq = 1};
    receive(c, (struct rabia_msg){.type = RABIA_MSG_BATCH, .from = 1, .has_id = 1, .id = id}, &u);
    CHECK_EQ(rabia_core_stats(c)->anomalies, 1);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 1, .slot = 1, .has_id = 1, .id = id}, &u);
    for (uint32_t i = 0; i < u.n_persist; i++) /* not proposed here: no body record of it */
        CHECK(!(u.persist[i].type == RABIA_MSG_BATCH && rabia_batch_id_eq(&u.persist[i].id, &id)));
    for (uint32_t i = 0; i < u.n_persist; i++)
        CHECK(!(u.persist[i].type == RABIA_MSG_PROPOSAL && u.persist[i].has_id));
    rabia_core_destroy(c);
}

/* A DECISION's value is 0 or 1; anything else is refused and counted,
 * never logged or applied as a batch. */
static void test_decision_value_out_of_range(void)
{
    struct rabia_core *c = make(64);
    struct rabia_update u;
    struct rabia_batch_id id = {.proxy = 1, .incarnation = 1, .seq = 1};
    static const uint8_t body[] = {0, 0, 0, 0}; /* an empty batch */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_BATCH, .from = 1, .has_id = 1, .id = id, .body = body,
                                  .body_len = sizeof body},
            &u);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_DECISION, .from = 1, .slot = 1, .value = 2, .has_id = 1,
                                  .id = id},
            &u);
    CHECK_EQ(u.n_applies, 0);
    CHECK_EQ(rabia_core_next_apply(c), 1);
    CHECK_EQ(rabia_core_stats(c)->anomalies, 1);
    /* the real decision still goes through */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_DECISION, .from = 1, .slot = 1, .value = 1, .has_id = 1,
                                  .id = id},
            &u);
    CHECK_EQ(u.n_applies, 1);
    CHECK_EQ(u.n_applies ? u.applies[0].null : 1, 0);
    /* adopted: no proposal counted here, a majority had it (WAIT's count) */
    CHECK_EQ(u.n_applies ? u.applies[0].holders : 0, 2);
    CHECK_EQ(rabia_core_next_apply(c), 2);
    rabia_core_destroy(c);
}

/* Phases share a 64-entry ring. A late message of an old phase must not
 * wipe what was counted for the newer phase holding the same entry. */
static void test_old_phase_keeps_newer_counts(void)
{
    struct rabia_core *c = make(64);
    struct rabia_update u;
    struct rabia_batch_id a = {.proxy = 1, .incarnation = 1, .seq = 1};
    struct rabia_batch_id b = {.proxy = 2, .incarnation = 1, .seq = 1};
    /* slot 1: peers propose different batches; replica 0 joins with none */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 1, .slot = 1, .has_id = 1, .id = a}, &u);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 2, .slot = 1, .has_id = 1, .id = b}, &u);
    /* phase 1: states split, votes "?", the coin moves everyone to phase 2 */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_STATE, .from = 1, .slot = 1, .phase = 1, .value = 1}, &u);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_VOTE, .from = 1, .slot = 1, .phase = 1, .value = RABIA_VQ},
            &u);
    CHECK_EQ(rabia_core_stats(c)->slots_decided, 0);
    /* phase 65 shares ring entry 1 with phase 1 and is within reach of
     * phase 2: peer 1's vote there is counted */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_VOTE, .from = 1, .slot = 1, .phase = 65, .value = RABIA_VQ},
            &u);
    uint64_t ignored = rabia_core_stats(c)->msgs_ignored;
    /* a late phase-1 state of peer 2 is stale now */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_STATE, .from = 2, .slot = 1, .phase = 1, .value = 0}, &u);
    CHECK_EQ(rabia_core_stats(c)->msgs_ignored, ignored + 1);
    /* peer 1's phase-65 vote is still remembered: its copy is a duplicate */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_VOTE, .from = 1, .slot = 1, .phase = 65, .value = RABIA_VQ},
            &u);
    CHECK_EQ(rabia_core_stats(c)->msgs_ignored, ignored + 2);
    CHECK_EQ(rabia_core_stats(c)->anomalies, 0);
    rabia_core_destroy(c);
}

/* A snapshot install drops this replica's own pending batches; the update
 * hands them back (id and body) so that their requests are not forgotten. */
static void test_snapshot_returns_own_batches(void)
{
    struct rabia_core *c = make(64);
    struct rabia_update u;
    static const uint8_t b1[] = {0, 0, 0, 0}, b2[] = {0, 0, 0, 0, 0};
    struct rabia_event ev = {.type = RABIA_EV_SUBMIT, .body = b1, .body_len = sizeof b1};
    CHECK_EQ(step(c, &ev, &u), 0);
    struct rabia_batch_id id1 = u.submitted;
    ev.body = b2;
    ev.body_len = sizeof b2;
    CHECK_EQ(step(c, &ev, &u), 0);
    CHECK_EQ(u.n_retired, 0);
    CHECK_EQ(rabia_core_pending(c), 2);
    struct rabia_event snap = {.type = RABIA_EV_SNAPSHOT_INSTALLED, .slot = 500};
    CHECK_EQ(step(c, &snap, &u), 0);
    CHECK_EQ(u.n_retired, 2);
    CHECK_EQ(rabia_core_pending(c), 0);
    if (u.n_retired == 2) {
        CHECK(rabia_batch_id_eq(&u.retired[0].id, &id1));
        CHECK_EQ(u.retired[0].body_len, sizeof b1);
        CHECK_EQ(u.retired[1].body_len, sizeof b2);
        CHECK(memcmp(u.retired[1].body, b2, sizeof b2) == 0);
    }
    /* the embedder's restored state did not apply the first: it comes back
     * under its own id and is broadcast again */
    struct rabia_event re = {.type = RABIA_EV_RESUBMIT, .body = b1, .body_len = sizeof b1};
    re.msg.id = id1;
    CHECK_EQ(step(c, &re, &u), 0);
    CHECK_EQ(rabia_core_pending(c), 1);
    bool sent = false;
    for (uint32_t i = 0; i < u.n_sends; i++)
        sent |= u.sends[i].msg.type == RABIA_MSG_BATCH && rabia_batch_id_eq(&u.sends[i].msg.id, &id1);
    CHECK(sent);
    CHECK_EQ(step(c, &re, &u), 0); /* twice: still one */
    CHECK_EQ(rabia_core_pending(c), 1);
    re.msg.id.proxy = 1; /* not this replica's */
    CHECK_EQ(step(c, &re, &u), RABIA_E_MALFORMED);
    re.msg.id = id1;
    re.msg.id.seq = 99; /* never submitted */
    CHECK_EQ(step(c, &re, &u), RABIA_E_MALFORMED);
    CHECK_EQ(rabia_core_pending(c), 1);
    rabia_core_destroy(c);
}

static const struct rabia_send *find_send(const struct rabia_update *u, uint8_t type, uint16_t phase)
{
    for (uint32_t i = 0; i < u->n_sends; i++)
        if (u->sends[i].msg.type == type && (type == RABIA_MSG_PROPOSAL || u->sends[i].msg.phase == phase))
            return &u->sends[i];
    return NULL;
}

/* An empty batch (count 0) submitted as this replica's: its id. body
 * (at least 4 bytes) must outlive the core's use of it. */
static struct rabia_batch_id submit_empty(struct rabia_core *c, uint8_t *body, struct rabia_update *u)
{
    struct rabia_event sub = {.type = RABIA_EV_SUBMIT, .body = body, .body_len = 4};
    CHECK_EQ(step(c, &sub, u), 0);
    return u->submitted;
}

/* Persistence contract rule 1: every first PROPOSAL/STATE/VOTE and own
 * BATCH is listed in update.persist; a core restarted with those records
 * (RABIA_EV_RESTORE) resumes the slot: it re-sends exactly what it had sent,
 * persists nothing again, never re-proposes, and goes on from there. */
static void test_restore_resumes_slot(void)
{
    struct rabia_core *c = make(64);
    struct rabia_update u;
    uint8_t body[16] = {0};
    struct rabia_batch_id x = submit_empty(c, body, &u);
    /* the batch and the proposal of slot 1 are to be persisted */
    bool batch = false, prop = false;
    struct rabia_msg rec[8];
    uint32_t nrec = 0;
    for (uint32_t i = 0; i < u.n_persist && nrec < 8; i++) {
        rec[nrec] = u.persist[i];
        rec[nrec].body = u.persist[i].body_len ? body : NULL; /* stays valid */
        nrec++;
        batch |= u.persist[i].type == RABIA_MSG_BATCH && rabia_batch_id_eq(&u.persist[i].id, &x);
        prop |= u.persist[i].type == RABIA_MSG_PROPOSAL && u.persist[i].slot == 1 && u.persist[i].has_id;
    }
    CHECK(batch);
    CHECK(prop);
    /* a peer proposes the same: a majority that the third proposal could
     * make unanimous, so the core waits for it a little (instance.c) ... */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 1, .slot = 1, .has_id = 1, .id = x}, &u);
    CHECK(find_send(&u, RABIA_MSG_STATE, 1) == NULL);
    CHECK_EQ(u.n_persist, 0);
    /* ... then the exchange ends with a majority, state 1 */
    struct rabia_event tick = {.type = RABIA_EV_TICK};
    CHECK_EQ(step(c, &tick, &u), 0);
    const struct rabia_send *st = find_send(&u, RABIA_MSG_STATE, 1);
    CHECK(st != NULL && st->msg.value == 1);
    CHECK(u.n_persist == 1 && u.persist[0].type == RABIA_MSG_STATE && u.persist[0].value == 1);
    if (u.n_persist == 1 && nrec < 8) rec[nrec++] = u.persist[0];
    rabia_core_destroy(c);

    /* the restart: same batch incarnation, nothing but the records */
    struct rabia_config cfg;
    rabia_config_default(&cfg, 3, 0);
    cfg.log_retain = 64;
    c = rabia_core_create(&cfg);
    for (uint32_t i = 0; i < nrec; i++) {
        struct rabia_event ev = {.type = RABIA_EV_RESTORE, .msg = rec[i]};
        ev.msg.from = 0;
        CHECK_EQ(step(c, &ev, &u), 0);
        CHECK_EQ(u.n_sends, 0);
        CHECK_EQ(u.n_persist, 0);
    }
    struct rabia_event up = {.type = RABIA_EV_PEER_UP, .peer = 1};
    CHECK_EQ(step(c, &up, &u), 0);
    const struct rabia_send *p = find_send(&u, RABIA_MSG_PROPOSAL, 0);
    CHECK(p != NULL && p->msg.slot == 1 && p->msg.has_id && rabia_batch_id_eq(&p->msg.id, &x));
    st = find_send(&u, RABIA_MSG_STATE, 1);
    CHECK(st != NULL && st->msg.value == 1);
    CHECK(find_send(&u, RABIA_MSG_CATCHUP, 0) != NULL); /* and asks what it missed */
    CHECK_EQ(u.n_persist, 0); /* resends were persisted already */
    /* a new batch gets a new id: next_seq moved past the restored one */
    struct rabia_event sub2 = {.type = RABIA_EV_SUBMIT, .body = body, .body_len = 4};
    CHECK_EQ(step(c, &sub2, &u), 0);
    CHECK(u.submitted.seq > x.seq);
    /* peers' states: the vote follows (1), persisted before it is sent */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_STATE, .from = 1, .slot = 1, .phase = 1, .value = 1, .has_id = 1, .id = x}, &u);
    const struct rabia_send *v = find_send(&u, RABIA_MSG_VOTE, 1);
    CHECK(v != NULL && v->msg.value == 1);
    CHECK(u.n_persist >= 1 && u.persist[0].type == RABIA_MSG_VOTE);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_VOTE, .from = 1, .slot = 1, .phase = 1, .value = 1, .has_id = 1, .id = x}, &u);
    CHECK_EQ(u.n_applies, 1);
    CHECK(u.n_applies == 1 && !u.applies[0].null && rabia_batch_id_eq(&u.applies[0].id, &x));
    CHECK_EQ(rabia_core_stats(c)->anomalies, 0);
    rabia_core_destroy(c);
}

/* A HORIZON record (the end of a --rejoin recovery) restored: slots up to it
 * stay silent after any later restart. */
static void test_restore_horizon_mutes(void)
{
    struct rabia_core *c = make(64);
    struct rabia_update u;
    struct rabia_event ev = {.type = RABIA_EV_RESTORE};
    ev.msg = (struct rabia_msg){.type = RABIA_MSG_HORIZON, .from = 0, .slot = 5};
    CHECK_EQ(step(c, &ev, &u), 0);
    CHECK_EQ(rabia_core_abstain_below(c), 5);
    /* a peer's proposal in slot 1: the core listens, never proposes there */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 1, .slot = 1}, &u);
    CHECK(find_send(&u, RABIA_MSG_PROPOSAL, 0) == NULL);
    CHECK_EQ(u.n_persist, 0);
    rabia_core_destroy(c);
}

/* A record of a slot beyond the window a restarted core runs with (the
 * window lowered in its configuration: the log was written with a larger
 * one) cannot be resumed there; when the window later reaches that slot
 * the core must not send what contradicts the record (contract rule 1).
 * Before, the record was dropped ("beyond the window: nothing to resume")
 * and the core proposed another value in that slot: here, its pending
 * batch where it had proposed null (found by review, 2026-12-06). */
static void test_restore_beyond_window_abstains(void)
{
    struct rabia_config cfg;
    rabia_config_default(&cfg, 3, 0);
    cfg.log_retain = 64;
    cfg.window = 1; /* the earlier life ran with a larger one */
    struct rabia_core *c = rabia_core_create(&cfg);
    CHECK(c != NULL);
    struct rabia_update u;
    struct rabia_event ev = {.type = RABIA_EV_RESTORE};
    /* slot 3: this replica had proposed null (no batch) */
    ev.msg = (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 0, .slot = 3};
    CHECK_EQ(step(c, &ev, &u), 0);
    /* slot 1 (in the window) resumes from its own record as before */
    ev.msg = (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 0, .slot = 1};
    CHECK_EQ(step(c, &ev, &u), 0);
    struct rabia_event up = {.type = RABIA_EV_PEER_UP, .peer = 1};
    CHECK_EQ(step(c, &up, &u), 0);
    const struct rabia_send *p = find_send(&u, RABIA_MSG_PROPOSAL, 0);
    CHECK(p != NULL && p->msg.slot == 1 && !p->msg.has_id); /* slot 1's record re-sent */
    uint8_t body[16] = {0};
    (void)submit_empty(c, body, &u); /* a batch waits: a new proposal would carry it */
    bool contradicted = false, proposed3 = false;
    for (uint64_t s = 1; s <= 3; s++) {
        if (s < 3) /* the peers decided null */
            receive(c, (struct rabia_msg){.type = RABIA_MSG_DECISION, .from = 1, .slot = s}, &u);
        struct rabia_event tick = {.type = RABIA_EV_TICK};
        CHECK_EQ(step(c, &tick, &u), 0);
        for (uint32_t i = 0; i < u.n_sends; i++)
            if (u.sends[i].msg.type == RABIA_MSG_PROPOSAL && u.sends[i].msg.slot == 3) {
                proposed3 = true;
                contradicted |= u.sends[i].msg.has_id;
            }
    }
    CHECK(!contradicted); /* never the batch in slot 3 */
    CHECK(!proposed3);    /* it abstains there: the peers decide slot 3 */
    CHECK(rabia_core_abstain_below(c) >= 3);
    rabia_core_destroy(c);
}

/* Decisions sent to peer `to` in u, lowest and highest slot. */
static uint32_t decisions_to(const struct rabia_update *u, uint8_t to, uint64_t *lo, uint64_t *hi)
{
    uint32_t n = 0;
    *lo = UINT64_MAX;
    *hi = 0;
    for (uint32_t i = 0; i < u->n_sends; i++) {
        const struct rabia_msg *m = &u->sends[i].msg;
        if (m->type != RABIA_MSG_DECISION || u->sends[i].to != to) continue;
        n++;
        if (m->slot < *lo) *lo = m->slot;
        if (m->slot > *hi) *hi = m->slot;
    }
    return n;
}

/* A peer catching up asks again after each slot it applies (rabia.c): a
 * chunk sent moments ago is not sent again, only what lies past it; after
 * half a retransmit period all of it is (a decision may have been lost).
 * Before, each ask got the whole chunk: up to catchup_chunk times over. */
static void test_catchup_not_resent(void)
{
    struct rabia_config cfg;
    rabia_config_default(&cfg, 3, 0);
    struct rabia_core *c = rabia_core_create(&cfg);
    CHECK(c != NULL);
    struct rabia_update u;
    uint64_t t = 5000000, lo, hi;
    for (uint64_t s = 1; s <= 100; s++) { /* 100 null slots decided by the peers */
        struct rabia_event ev = {.type = RABIA_EV_RECEIVE, .now_us = t += 10,
                                 .msg = {.type = RABIA_MSG_DECISION, .from = 1, .slot = s}};
        CHECK_EQ(rabia_core_step(c, &ev, &u), 0);
    }
    CHECK_EQ(rabia_core_next_apply(c), 101);
    uint32_t chunk = cfg.catchup_chunk;
    CHECK(chunk >= 4 && chunk < 50);
    struct rabia_event ask = {.type = RABIA_EV_RECEIVE, .now_us = t += 10,
                              .msg = {.type = RABIA_MSG_CATCHUP, .from = 2, .slot = 1}};
    CHECK_EQ(rabia_core_step(c, &ask, &u), 0);
    CHECK_EQ(decisions_to(&u, 2, &lo, &hi), chunk);
    CHECK(lo == 1 && hi == chunk);
    /* it applied slot 1 and asks again: only slot chunk + 1 is new */
    ask.now_us = t += 10;
    ask.msg.slot = 2;
    CHECK_EQ(rabia_core_step(c, &ask, &u), 0);
    CHECK_EQ(decisions_to(&u, 2, &lo, &hi), 1);
    CHECK_EQ(lo, chunk + 1);
    /* the same ask again: nothing new */
    ask.now_us = t += 10;
    CHECK_EQ(rabia_core_step(c, &ask, &u), 0);
    CHECK_EQ(decisions_to(&u, 2, &lo, &hi), 0);
    CHECK_EQ(rabia_core_stats(c)->catchup_deduped, 2 * (uint64_t)chunk - 1);
    /* another peer's ask is its own */
    ask.now_us = t += 10;
    ask.msg.from = 1;
    CHECK_EQ(rabia_core_step(c, &ask, &u), 0);
    CHECK_EQ(decisions_to(&u, 1, &lo, &hi), chunk);
    /* half a retransmit period later the whole chunk goes again */
    ask.now_us = t += cfg.retransmit_us / 2;
    ask.msg.from = 2;
    CHECK_EQ(rabia_core_step(c, &ask, &u), 0);
    CHECK_EQ(decisions_to(&u, 2, &lo, &hi), chunk);
    CHECK(lo == 2 && hi == chunk + 1);
    rabia_core_destroy(c);
}

static bool sends_type(const struct rabia_update *u, uint8_t type, uint64_t slot)
{
    for (uint32_t i = 0; i < u->n_sends; i++)
        if (u->sends[i].msg.type == type && u->sends[i].msg.slot == slot) return true;
    return false;
}

/* A unanimous exchange decides without a DECISION to all: every replica
 * that proposed decides alone once the n proposals are in. A peer that got
 * them first starts the next slot, and its PROPOSAL there can arrive before
 * the last proposal of this slot: just past the window, it is held and
 * counted when the window gets there. Dropped, the slot waited for the
 * sender's retransmission (3 replicas in memory, 50 clients x 16 pipelined
 * SETs spread over them: 263 k -> 10 k req/s, before the hold existed). */
static void test_unanimous_sends_no_decision_holds_next_proposal(void)
{
    struct rabia_core *c = make(64);
    struct rabia_update u;
    uint8_t body[16] = {0};
    struct rabia_batch_id x = submit_empty(c, body, &u);
    CHECK(sends_type(&u, RABIA_MSG_PROPOSAL, 1));
    /* peer 1's batch, which it proposes in slot 2 once slot 1 is decided there */
    struct rabia_batch_id y = {.proxy = 1, .incarnation = 1, .seq = 1};
    receive(c, (struct rabia_msg){.type = RABIA_MSG_BATCH, .from = 1, .has_id = 1, .id = y, .body = body, .body_len = 4},
            &u);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 1, .slot = 1, .has_id = 1, .id = x}, &u);
    CHECK_EQ(u.n_applies, 0);
    uint64_t held = rabia_core_stats(c)->proposals_held;
    receive(c, (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 1, .slot = 2, .has_id = 1, .id = y}, &u);
    CHECK_EQ(rabia_core_stats(c)->proposals_held, held + 1);
    CHECK_EQ(u.n_sends, 0);
    /* two past the window: dropped as before (the sender is far ahead) */
    uint64_t ignored = rabia_core_stats(c)->msgs_ignored;
    receive(c, (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 2, .slot = 3, .has_id = 1, .id = y}, &u);
    CHECK_EQ(rabia_core_stats(c)->msgs_ignored, ignored + 1);
    CHECK_EQ(rabia_core_stats(c)->proposals_held, held + 1);
    /* the last proposal of slot 1: unanimous, decided and applied, and no
     * DECISION to anyone; slot 2 starts with peer 1's held proposal in */
    uint64_t unan = rabia_core_stats(c)->slots_unanimous;
    receive(c, (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 2, .slot = 1, .has_id = 1, .id = x}, &u);
    CHECK_EQ(rabia_core_stats(c)->slots_unanimous, unan + 1);
    CHECK(u.n_applies == 1 && u.applies[0].slot == 1 && u.applies[0].unanimous);
    CHECK_EQ(u.n_applies ? u.applies[0].holders : 0, 3); /* every replica proposed it */
    CHECK(!sends_type(&u, RABIA_MSG_DECISION, 1));
    CHECK(sends_type(&u, RABIA_MSG_PROPOSAL, 2));
    /* peer 2's proposal of slot 2 makes it unanimous: the held one counted */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 2, .slot = 2, .has_id = 1, .id = y}, &u);
    CHECK(u.n_applies == 1 && u.applies[0].slot == 2 && u.applies[0].unanimous);
    CHECK(!sends_type(&u, RABIA_MSG_DECISION, 2));
    /* a peer that missed a proposal goes on to phase 1: its STATE gets the
     * DECISION back */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_STATE, .from = 1, .slot = 2, .phase = 1, .value = 1, .has_id = 1,
                                  .id = y},
            &u);
    CHECK(sends_type(&u, RABIA_MSG_DECISION, 2));
    /* a held proposal does not outlive its link */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 1, .slot = 4, .has_id = 1, .id = y}, &u);
    CHECK_EQ(rabia_core_stats(c)->proposals_held, held + 2);
    struct rabia_event down = {.type = RABIA_EV_PEER_DOWN, .peer = 1};
    CHECK_EQ(step(c, &down, &u), 0);
    struct rabia_batch_id z = submit_empty(c, body, &u);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 2, .slot = 3, .has_id = 1, .id = z}, &u);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_PROPOSAL, .from = 1, .slot = 3, .has_id = 1, .id = z}, &u);
    CHECK(u.n_applies == 1 && u.applies[0].slot == 3);
    /* peer 1's proposal of slot 4 was dropped: nothing starts slot 4 here */
    CHECK(!sends_type(&u, RABIA_MSG_PROPOSAL, 4));
    rabia_core_destroy(c);
}

/* Read-index rounds (core.h, READ INDEX): the question goes to every peer
 * under a tagged HORIZON_REQ nonce; the round closes with n-f answers
 * (self included) at the largest; answers of another round, a second
 * answer of one peer and a recovering core do not count; answering one
 * starts no slot, where a recovering replica's question does. */
static const struct rabia_send *find_to(const struct rabia_update *u, uint8_t type, uint8_t to)
{
    for (uint32_t i = 0; i < u->n_sends; i++)
        if (u->sends[i].msg.type == type && u->sends[i].to == to) return &u->sends[i];
    return NULL;
}

static void test_read_index(void)
{
    struct rabia_core *c = make(1024);
    struct rabia_update u;
    decide_slots(c, 1, 5, 10, &u);
    struct rabia_event ev = {.type = RABIA_EV_READ_INDEX, .slot = 7};
    CHECK_EQ(step(c, &ev, &u), 0);
    const struct rabia_send *q = find_to(&u, RABIA_MSG_HORIZON_REQ, RABIA_TO_ALL);
    CHECK(q != NULL);
    CHECK_EQ(q->msg.u64, RABIA_READ_NONCE | RABIA_READ_PROBE | 7);
    CHECK_EQ(u.read_round, 0);
    /* another round's answer, then this round's */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON, .from = 1, .slot = 40, .u64 = RABIA_READ_NONCE | 6}, &u);
    CHECK_EQ(u.read_round, 0);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON, .from = 1, .slot = 9, .u64 = RABIA_READ_NONCE | 7}, &u);
    CHECK_EQ(u.read_round, 7);
    CHECK_EQ(u.read_slot, 9); /* the largest of n-f = 2: its own 5 and peer 1's 9 */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON, .from = 2, .slot = 12, .u64 = RABIA_READ_NONCE | 7}, &u);
    CHECK_EQ(u.read_round, 0); /* closed already */
    CHECK_EQ(rabia_core_stats(c)->read_rounds, 1);
    CHECK_EQ(rabia_core_stats(c)->read_rounds_done, 1);

    /* a newer round replaces an open one; one peer counts once */
    ev = (struct rabia_event){.type = RABIA_EV_READ_INDEX, .slot = 8};
    CHECK_EQ(step(c, &ev, &u), 0);
    ev = (struct rabia_event){.type = RABIA_EV_READ_INDEX, .slot = 9};
    CHECK_EQ(step(c, &ev, &u), 0);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON, .from = 2, .slot = 3, .u64 = RABIA_READ_NONCE | 8}, &u);
    CHECK_EQ(u.read_round, 0);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON, .from = 2, .slot = 3, .u64 = RABIA_READ_NONCE | 9}, &u);
    CHECK_EQ(u.read_round, 9);
    CHECK_EQ(u.read_slot, 9); /* its own bound, from peer 1's answer (late answers are not heard) */
    ev = (struct rabia_event){.type = RABIA_EV_READ_INDEX, .slot = 0};
    CHECK_EQ(step(c, &ev, &u), RABIA_E_MALFORMED);

    /* answering a peer's round: its nonce back with the probe bit cleared
     * (this build serves rounds), the own bound, no slot started */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON_REQ, .from = 2,
                                  .u64 = RABIA_READ_NONCE | RABIA_READ_PROBE | 3}, &u);
    q = find_to(&u, RABIA_MSG_HORIZON, 2);
    CHECK(q != NULL);
    CHECK_EQ(q->msg.u64, RABIA_READ_NONCE | 3);
    CHECK_EQ(q->msg.slot, 9);
    /* a question of the first build with rounds (no probe bit): the nonce as it came, which it matches */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON_REQ, .from = 1, .u64 = RABIA_READ_NONCE | 4}, &u);
    q = find_to(&u, RABIA_MSG_HORIZON, 1);
    CHECK(q != NULL);
    CHECK_EQ(q->msg.u64, RABIA_READ_NONCE | 4);
    CHECK(!find_to(&u, RABIA_MSG_PROPOSAL, RABIA_TO_ALL));
    ev = (struct rabia_event){.type = RABIA_EV_TICK};
    CHECK_EQ(step(c, &ev, &u), 0);
    CHECK(!find_to(&u, RABIA_MSG_PROPOSAL, RABIA_TO_ALL));
    CHECK_EQ(rabia_core_stats(c)->read_answers, 2);
    /* the contrast: a recovering replica's question (no tag) drives slots */
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON_REQ, .from = 2, .u64 = 5}, &u);
    CHECK(find_to(&u, RABIA_MSG_PROPOSAL, RABIA_TO_ALL) != NULL);
    rabia_core_destroy(c);

    /* a recovering core neither opens rounds nor answers them */
    struct rabia_config cfg;
    rabia_config_default(&cfg, 3, 0);
    cfg.recovering = true;
    c = rabia_core_create(&cfg);
    CHECK(c != NULL);
    ev = (struct rabia_event){.type = RABIA_EV_READ_INDEX, .slot = 1};
    CHECK_EQ(step(c, &ev, &u), RABIA_E_FULL);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON_REQ, .from = 1, .u64 = RABIA_READ_NONCE | 1}, &u);
    CHECK(!find_to(&u, RABIA_MSG_HORIZON, 1));
    rabia_core_destroy(c);

    /* five replicas: n-f = 3 answers, self included */
    rabia_config_default(&cfg, 5, 0);
    c = rabia_core_create(&cfg);
    CHECK(c != NULL);
    ev = (struct rabia_event){.type = RABIA_EV_READ_INDEX, .slot = 2};
    CHECK_EQ(step(c, &ev, &u), 0);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON, .from = 3, .slot = 4, .u64 = RABIA_READ_NONCE | 2}, &u);
    CHECK_EQ(u.read_round, 0);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON, .from = 4, .slot = 2, .u64 = RABIA_READ_NONCE | 2}, &u);
    CHECK_EQ(u.read_round, 2);
    CHECK_EQ(u.read_slot, 4);
    CHECK(rabia_core_reads_ok(c));
    CHECK_EQ(rabia_core_stats(c)->read_old_answers, 0);

    /* an older build echoes the question as it is (probe bit still set):
     * its bound counts, but rounds stop until it comes up again */
    ev = (struct rabia_event){.type = RABIA_EV_READ_INDEX, .slot = 3};
    CHECK_EQ(step(c, &ev, &u), 0);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON, .from = 1, .slot = 6,
                                  .u64 = RABIA_READ_NONCE | RABIA_READ_PROBE | 3}, &u);
    CHECK_EQ(u.read_round, 0);
    CHECK(!rabia_core_reads_ok(c));
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON, .from = 2, .slot = 5, .u64 = RABIA_READ_NONCE | 3}, &u);
    CHECK_EQ(u.read_round, 3);
    CHECK_EQ(u.read_slot, 6);
    CHECK_EQ(rabia_core_stats(c)->read_old_answers, 1);
    CHECK(!rabia_core_reads_ok(c));
    ev = (struct rabia_event){.type = RABIA_EV_PEER_UP, .peer = 2}; /* another peer: no change */
    CHECK_EQ(step(c, &ev, &u), 0);
    CHECK(!rabia_core_reads_ok(c));
    ev = (struct rabia_event){.type = RABIA_EV_PEER_UP, .peer = 1}; /* restarted, maybe upgraded */
    CHECK_EQ(step(c, &ev, &u), 0);
    CHECK(rabia_core_reads_ok(c));
    /* a late answer (the round closed on the first n-f) tells as well */
    ev = (struct rabia_event){.type = RABIA_EV_READ_INDEX, .slot = 4};
    CHECK_EQ(step(c, &ev, &u), 0);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON, .from = 2, .slot = 5, .u64 = RABIA_READ_NONCE | 4}, &u);
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON, .from = 3, .slot = 5, .u64 = RABIA_READ_NONCE | 4}, &u);
    CHECK_EQ(u.read_round, 4);
    CHECK(rabia_core_reads_ok(c));
    receive(c, (struct rabia_msg){.type = RABIA_MSG_HORIZON, .from = 4, .slot = 5,
                                  .u64 = RABIA_READ_NONCE | RABIA_READ_PROBE | 4}, &u);
    CHECK(!rabia_core_reads_ok(c));
    CHECK_EQ(rabia_core_stats(c)->read_old_answers, 2);
    rabia_core_destroy(c);
}

int main(void)
{
    RUN(test_read_index);
    RUN(test_unanimous_sends_no_decision_holds_next_proposal);
    RUN(test_restore_resumes_slot);
    RUN(test_restore_horizon_mutes);
    RUN(test_restore_beyond_window_abstains);
    RUN(test_snapshot_returns_own_batches);
    RUN(test_snapshot_gap_offers_snapshot);
    RUN(test_log_retain_bytes);
    RUN(test_behind_keeps_asking);
    RUN(test_decision_value_out_of_range);
    RUN(test_empty_batch_refused);
    RUN(test_slot_out_of_range);
    RUN(test_old_phase_keeps_newer_counts);
    RUN(test_catchup_not_resent);
    return CHECK_DONE();
}
