/* Messages from peers: batches, PROPOSAL/STATE/VOTE, decisions, fetch and
 * catch-up, and the horizon exchange of a recovering replica (rule 2). */
#include "rabia/core.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "invariant.h"

/* ------------------------------------------------------------------ */
/* message handlers */

/* What a peer's message says of it: it knows `slot`, so a catch-up may
 * ask it (peer_known). */
static void note_peer_known(struct rabia_core *c, uint8_t from, uint64_t slot)
{
    if (slot > c->peer_known[from]) c->peer_known[from] = slot;
}

/* ... and that this replica knows of the slot too (max_seen,
 * core_known_slot: core.h, READ INDEX), for what a peer knows of the
 * slot itself: a consensus message, a DECISION, a HORIZON answer. A FETCH
 * or a CATCHUP only names a slot: counted here, one frame of a faulty
 * peer naming slot 2^61 made every read of every replica wait 1 s for an
 * index no slot reached (read answers spread it), /health said
 * "lagging", and a --rejoin took it as its horizon: it abstained there
 * while its peers drove null slots towards it (found by review,
 * integration.peer_faults). */
static void note_peer(struct rabia_core *c, uint8_t from, uint64_t slot)
{
    note_peer_known(c, from, slot);
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
    struct logent *l = core_log_get(c, slot);
    if (!l) {
        /* Every applied slot at or above core_log_first() is in the log; below
         * it only a snapshot can help. */
        RABIA_ASSERT(slot >= c->next_apply || slot < core_log_first(c));
        if (slot < c->next_apply) offer_snapshot(c, to);
        return;
    }
    struct rabia_send *s = core_emit(c, to, RABIA_MSG_DECISION, slot);
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

uint8_t core_best_peer(const struct rabia_core *c)
{
    uint8_t best = c->cfg.self;
    for (uint8_t p = 0; p < c->cfg.n; p++)
        if (c->peer_known[p] > c->peer_known[best]) best = p;
    return best;
}

void core_maybe_catchup(struct rabia_core *c, uint8_t peer)
{
    if (c->now - c->catchup_us < c->cfg.retransmit_us && c->catchup_us) return;
    c->catchup_us = c->now;
    struct rabia_send *s = core_emit(c, peer, RABIA_MSG_CATCHUP, c->next_apply);
    (void)s;
}

/* Is a decided slot waiting for this batch's body? */
static bool awaited(struct rabia_core *c, const struct rabia_batch_id *id)
{
    for (uint64_t s = c->next_apply; s < c->next_apply + c->ahead; s++) {
        struct logent *l = core_log_get(c, s);
        if (l && l->value && l->entry < 0 && rabia_batch_id_eq(&l->id, id)) return true;
    }
    return false;
}

/* Give a newly stored body to every decided slot waiting for it. */
static void attach_waiting(struct rabia_core *c, int32_t e)
{
    for (uint64_t s = c->next_apply; s < c->next_apply + c->ahead; s++) {
        struct logent *l = core_log_get(c, s);
        if (l && l->value && l->entry < 0 && rabia_batch_id_eq(&l->id, &c->bt[e].id)) core_log_attach(c, l, e);
    }
}

void core_on_batch(struct rabia_core *c, const struct rabia_msg *m)
{
    /* Empty is malformed too: a proxy's batch body holds at least its
     * header (core/codec.h), and the log keeps none of an empty one. Taken,
     * a peer's empty BATCH that this replica proposed and then decided by
     * a unanimous exchange was logged as a decision by reference to a body
     * record with no bytes, which replay cannot find: the replica never
     * started again ("no earlier record of the log holds its body"; found
     * by review). */
    if (m->id.proxy >= c->cfg.n || m->body_len > c->cfg.max_batch_bytes || !m->body_len) {
        core_anomaly(c, "batch from an unknown proxy, empty or too large");
        return;
    }
    int32_t e = core_bt_find(c, &m->id);
    if (e >= 0) return;
    if (awaited(c, &m->id)) { /* a body some decided slot waits for */
        e = core_bt_alloc(c, &m->id, m->body, m->body_len);
        if (e >= 0) attach_waiting(c, e);
        return;
    }
    /* my own batches come back only as fetch replies; unless a decided slot
     * waits for it (above), an echo is stale (e.g. decided in a snapshot) */
    if (m->id.proxy == c->cfg.self || core_tr_decided(c, &m->id)) {
        c->stats.msgs_ignored++;
        return;
    }
    if (m->id.incarnation > c->tr[m->id.proxy].incarnation) core_tr_reset(c, m->id.proxy, m->id.incarnation);
    if (c->pq[m->id.proxy].n >= c->cfg.max_pending) {
        c->stats.msgs_ignored++;
        return;
    }
    e = core_bt_alloc(c, &m->id, m->body, m->body_len);
    if (e < 0) {
        c->stats.msgs_ignored++;
        return;
    }
    core_pq_insert(c, e);
}

void core_on_consensus(struct rabia_core *c, const struct rabia_msg *m)
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
    struct inst *in = core_inst_get(c, m->slot);
    if (!in && m->type == RABIA_MSG_PROPOSAL && m->slot == c->next_apply + c->cfg.window && from != c->cfg.self) {
        /* The sender decided the slot before it and started this one; so do
         * I, as soon as the proposals still on their way arrive (a
         * unanimous exchange sends no DECISION: instance.c, core_decide).
         * Dropped, it came back only with the sender's retransmission, up
         * to a retransmit period (20 ms by default) later: measured, 50
         * clients x 16 pipelined SETs over 3 replicas in memory, 263 k ->
         * 10 k req/s and slots of 16-19 ms without this. Holding it is
         * only a later delivery: its slot counts in max_seen already
         * (note_peer, the horizon rule). A link event of its sender drops
         * it (core_on_peer_up, core_on_peer_down). */
        c->held_prop[from] = *m;
        c->held_prop[from].body = NULL;
        c->held_prop[from].body_len = 0;
        c->held_mask |= (uint8_t)(1u << from);
        c->stats.proposals_held++;
        return;
    }
    if (!in) { /* beyond my window: I am behind */
        c->stats.msgs_ignored++;
        core_maybe_catchup(c, from);
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
            if (in->prop_counted < c->cfg.n) {
                in->props[in->prop_counted] = m->id;
                in->props_has[in->prop_counted] = m->has_id;
                in->prop_counted++;
            }
        }
    } else if (m->type == RABIA_MSG_STATE || m->type == RABIA_MSG_VOTE) {
        core_learn_id(c, in, m);
        if (in->decided) {
            /* the sender still works on a slot I decided: tell it */
            if (c->last_reply_slot[from] != m->slot || c->now - c->last_reply_us[from] >= c->cfg.retransmit_us / 2) {
                c->last_reply_slot[from] = m->slot;
                c->last_reply_us[from] = c->now;
                struct rabia_send *s = core_emit(c, from, RABIA_MSG_DECISION, in->slot);
                if (s) {
                    s->msg.value = in->value;
                    if (in->value) core_fill_id(in, &s->msg);
                }
            }
            return;
        }
        /* phases far ahead of mine are dropped; the sender resends them */
        if (m->phase >= in->phase + PH_RING || (in->phase >= PH_RING && m->phase <= in->phase - PH_RING)) {
            c->stats.msgs_ignored++;
            return;
        }
        struct phase *p = core_ph_get(in, m->phase, true);
        if (!p) { /* older than the phase its ring entry holds now */
            c->stats.msgs_ignored++;
            return;
        }
        if (m->type == RABIA_MSG_STATE) {
            if (m->value > 1) {
                core_anomaly(c, "STATE value out of range");
                return;
            }
            core_count(c, &p->st, from, m->value);
        } else {
            core_count(c, &p->vt, from, m->value);
        }
    }
    core_start_slots(c); /* joining: a peer started this slot */
    core_progress(c, in);
}

/* Deliver the held PROPOSALs the window reached (rabia_core_step, after
 * applying); drop those it passed. */
void core_deliver_ahead(struct rabia_core *c)
{
    for (uint8_t p = 0; p < c->cfg.n && c->held_mask; p++) {
        if (!(c->held_mask & (1u << p))) continue;
        RABIA_ASSERT(p != c->cfg.self && c->held_prop[p].type == RABIA_MSG_PROPOSAL && c->held_prop[p].from == p);
        if (c->held_prop[p].slot >= c->next_apply + c->cfg.window) continue; /* not yet */
        c->held_mask &= (uint8_t)~(1u << p);
        if (c->held_prop[p].slot < c->next_apply) continue; /* decided meanwhile (catch-up, a snapshot) */
        struct rabia_msg m = c->held_prop[p];
        core_on_consensus(c, &m);
    }
}

void core_on_decision(struct rabia_core *c, const struct rabia_msg *m)
{
    note_peer(c, m->from, m->slot);
    if (m->slot < c->next_apply) return;
    if (m->slot >= c->next_apply + c->ahead) {
        core_maybe_catchup(c, m->from);
        return;
    }
    if (m->value && !m->has_id) {
        core_anomaly(c, "DECISION 1 without a batch id");
        return;
    }
    /* decided by this message, not here before it (replica/node.c may
     * answer such a slot at once: rabia_apply.adopted) */
    bool fresh_decision = !core_log_get(c, m->slot);
    int32_t fresh = -1;
    if (m->value && m->body && core_bt_find(c, &m->id) < 0) {
        if (m->id.proxy >= c->cfg.n || m->body_len > c->cfg.max_batch_bytes) {
            core_anomaly(c, "DECISION batch from an unknown proxy or too large");
            return;
        }
        fresh = core_bt_alloc(c, &m->id, m->body, m->body_len); /* if full, fetched later */
    }
    struct inst *in = core_inst_get(c, m->slot);
    if (in) {
        core_learn_id(c, in, m);
        if (in->decided && in->value != m->value) core_anomaly(c, "a DECISION contradicts our decision");
        core_decide(c, in, m->value, true);
    } else {
        core_log_decide(c, m->slot, m->value, &m->id);
        c->stats.slots_decided++;
        c->stats.decisions_adopted++;
        if (!m->value) c->stats.slots_null++;
    }
    struct logent *dl = core_log_get(c, m->slot);
    if (fresh_decision && dl) dl->by_peer = true;
    if (fresh >= 0) {
        attach_waiting(c, fresh);
        core_bt_maybe_free(c, fresh); /* unless the log took it */
    }
}

void core_on_fetch(struct rabia_core *c, const struct rabia_msg *m)
{
    note_peer_known(c, m->from, m->slot);
    struct logent *l = core_log_get(c, m->slot);
    if (l && l->value && l->entry >= 0) {
        reply_decision(c, m->from, m->slot, true);
        return;
    }
    if (!l && m->slot < core_log_first(c)) { /* compacted away: only a snapshot helps */
        offer_snapshot(c, m->from);
        return;
    }
    if (!m->has_id) return;
    int32_t e = core_bt_find(c, &m->id);
    if (e < 0) return;
    struct rabia_send *s = core_emit(c, m->from, RABIA_MSG_BATCH, 0);
    if (!s) return;
    s->msg.has_id = 1;
    s->msg.id = c->bt[e].id;
    s->msg.body = c->bt[e].data;
    s->msg.body_len = c->bt[e].len;
}

void core_on_catchup(struct rabia_core *c, const struct rabia_msg *m)
{
    uint64_t from = m->slot ? m->slot : 1;
    /* the asker has applied everything below `from`: if that is more than
     * we have, we are the one behind (a restart with its log into a cluster
     * that moved on while idle: nothing else would tell us) */
    if (from > 1) note_peer_known(c, m->from, from - 1);
    /* And no more than that: it cannot serve a catch-up past `from`. What
     * it spoke of before may be gone (a data directory lost and rebuilt
     * under --rejoin starts over at slot 1), and two replicas that each
     * still believed the other ahead asked only each other, for ever,
     * while the third held the decisions (sim --seed 700037 --mix all
     * --durable --linger 200). Links are FIFO, so this is the asker's
     * latest word. */
    c->peer_known[m->from] = from - 1;
    if (from > c->next_apply && !c->recovering) {
        c->catchup_us = 0;
        core_maybe_catchup(c, m->from);
    }
    if (from < core_log_first(c)) {
        offer_snapshot(c, m->from);
        return;
    }
    /* The asker applies a chunk one decision per step and asks again after
     * each slot it applies (rabia.c, still behind after applying), so the
     * same chunk was asked for once per slot: up to catchup_chunk times
     * over. What went to this peer in the last half retransmit period is
     * not sent again, only what lies past it; a decision lost on the way
     * is, once the asker's ticks ask again (retransmit_us later). As
     * replica/node.c does for catch-up from the log. */
    uint64_t end = from + c->cfg.catchup_chunk, s0 = from;
    if (end > c->next_apply) end = c->next_apply;
    uint8_t p = m->from;
    RABIA_ASSERT(p < c->cfg.n);
    if (from < c->cu_sent_until[p] && c->now - c->cu_sent_us[p] < c->cfg.retransmit_us / 2) {
        s0 = c->cu_sent_until[p];
        c->stats.catchup_deduped += s0 < end ? s0 - from : end - from;
    }
    for (uint64_t s = s0; s < end; s++) reply_decision(c, p, s, true);
    if (end > s0) {
        c->cu_sent_until[p] = end;
        c->cu_sent_us[p] = c->now;
    }
}

uint64_t core_known_slot(const struct rabia_core *c)
{
    uint64_t k = c->max_seen;
    if (c->next_apply - 1 > k) k = c->next_apply - 1;
    if (c->abstain_below > k) k = c->abstain_below;
    return k;
}

void core_on_horizon_req(struct rabia_core *c, const struct rabia_msg *m)
{
    if (c->recovering) return; /* answer only once my own horizon is known */
    uint64_t k = core_known_slot(c);
    struct rabia_send *s = core_emit(c, m->from, RABIA_MSG_HORIZON, k);
    if (s) s->msg.u64 = m->u64;
    if (m->u64 & RABIA_READ_NONCE) { /* a read-index round (core.h): nobody abstains after it */
        if (s) s->msg.u64 &= ~RABIA_READ_PROBE; /* this build serves rounds (core.h) */
#ifdef RABIA_TEST_BUGS
        if (s && (c->cfg.bugs & RABIA_BUG_READ_OLD_ANSWER)) s->msg.u64 = m->u64; /* as an older build */
#endif
        c->stats.read_answers++;
        return;
    }
    /* The asker will abstain up to (the largest answer) + window. Decide
     * those slots now, null if nothing is queued, while enough replicas
     * take part: an idle cluster would otherwise keep them open, and a
     * second restart would then leave more than f abstainers in them
     * (found by integration.restart_idle). */
    if (k + c->cfg.window > c->drive_until) c->drive_until = k + c->cfg.window;
}

/* A read-index round (core.h, READ INDEX): the asker's own bound counts
 * as one answer; each peer counts once; n-f answers close it. */
int core_on_read_index(struct rabia_core *c, uint64_t round)
{
    RABIA_ASSERT(c->nf >= 2 && c->nf <= c->cfg.n);
    if (round == 0 || round > RABIA_READ_ROUND_MAX) return RABIA_E_MALFORMED;
    if (c->recovering) return RABIA_E_FULL; /* what it knows is no bound yet */
    RABIA_ASSERT(!(c->read_old & (1u << c->cfg.self)));
    c->ri_round = round;
    c->ri_mask = (uint8_t)(1u << c->cfg.self);
    c->ri_max = core_known_slot(c);
    c->stats.read_rounds++;
#ifdef RABIA_TEST_BUGS
    if (c->cfg.bugs & RABIA_BUG_READ_SELF) { /* planted: no peer asked */
        c->out->read_round = round;
        c->out->read_slot = c->ri_max;
        c->ri_round = 0;
        return 0;
    }
#endif
    struct rabia_send *s = core_emit(c, RABIA_TO_ALL, RABIA_MSG_HORIZON_REQ, 0);
    if (s) s->msg.u64 = RABIA_READ_NONCE | RABIA_READ_PROBE | round; /* lost: the embedder opens another round */
    return 0;
}

static void read_answer(struct rabia_core *c, const struct rabia_msg *m)
{
    RABIA_ASSERT(m->u64 & RABIA_READ_NONCE);
    uint8_t bit = (uint8_t)(1u << m->from);
    if (m->u64 & RABIA_READ_PROBE) { /* an older build: it may have driven slots after the question (core.h); */
        c->read_old |= bit;        /* told by a late answer too (a round closes on the first n-f) */
        c->stats.read_old_answers++;
    }
    if (!c->ri_round || (m->u64 & RABIA_READ_ROUND_MAX) != c->ri_round) return; /* an older round's */
    if (c->ri_mask & bit) return;
    c->ri_mask |= bit;
    if (m->slot > c->ri_max) c->ri_max = m->slot;
    note_peer(c, m->from, m->slot); /* a peer far ahead: catch up from it */
    if (__builtin_popcount(c->ri_mask) < c->nf) return;
    RABIA_ASSERT(c->out->read_round == 0);
    c->out->read_round = c->ri_round;
    c->out->read_slot = c->ri_max;
    c->stats.read_rounds_done++;
    c->ri_round = 0;
    c->ri_mask = 0;
}

void core_on_horizon(struct rabia_core *c, const struct rabia_msg *m)
{
    if (m->u64 & RABIA_READ_NONCE) {
        read_answer(c, m);
        return;
    }
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
    core_persist(c, &hm);
    core_tracef(c, 0, "recovered: abstain in slots <= %llu", (unsigned long long)c->abstain_below);
    /* instances created while recovering were muted; above the horizon
     * nothing of mine can exist, so those may take part after all */
    for (uint32_t w = 0; w < c->cfg.window; w++) {
        struct inst *in = &c->inst[w];
        if (in->used && in->slot > c->abstain_below && !in->started) in->mute = false;
    }
    /* learn what was decided meanwhile */
    c->catchup_us = 0;
    core_maybe_catchup(c, m->from);
}
