/* Local events: the tick (retransmission, rebroadcast, catch-up), a peer
 * connected, a snapshot installed, batches submitted or resubmitted, and
 * the log's records restored after a restart (rule 1). */
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
/* resending */

static void resend_inst(struct rabia_core *c, struct inst *in, uint8_t to)
{
    if (!in->started || in->mute) return;
    core_send_proposal(c, in, to);
    if (in->phase == 0) return;
    uint16_t lo = in->phase >= PH_RING ? (uint16_t)(in->phase - PH_RING + 1) : 1;
    for (uint16_t ph = lo; ph <= in->phase; ph++) {
        struct phase *p = core_ph_get(in, ph, false);
        if (!p) continue;
        if (p->sent & 1) {
            struct rabia_send *s = core_emit(c, to, RABIA_MSG_STATE, in->slot);
            if (s) {
                s->msg.phase = ph;
                s->msg.value = p->my_state;
                core_fill_id(in, &s->msg);
            }
        }
        if (p->sent & 2) {
            struct rabia_send *s = core_emit(c, to, RABIA_MSG_VOTE, in->slot);
            if (s) {
                s->msg.phase = ph;
                s->msg.value = p->my_vote;
                core_fill_id(in, &s->msg);
            }
        }
    }
}

static void send_own_batch(struct rabia_core *c, int32_t e, uint8_t to)
{
    struct rabia_send *s = core_emit(c, to, RABIA_MSG_BATCH, 0);
    if (!s) return;
    s->msg.has_id = 1;
    s->msg.id = c->bt[e].id;
    s->msg.body = c->bt[e].data;
    s->msg.body_len = c->bt[e].len;
    c->bt[e].sent_us = c->now;
}

void core_on_tick(struct rabia_core *c)
{
    uint64_t rt = c->cfg.retransmit_us;
    if (c->recovering) {
        if (c->now - c->horizon_sent_us >= rt || !c->horizon_sent_us) {
            struct rabia_send *s = core_emit(c, RABIA_TO_ALL, RABIA_MSG_HORIZON_REQ, 0);
            if (s) s->msg.u64 = c->cfg.incarnation;
            c->horizon_sent_us = c->now ? c->now : 1;
        }
        return;
    }
    /* a slot this replica abstains in is decided by the peers alone: with
     * nothing started here, waiting for it is stalling too */
    bool stalled = c->abstain_below >= c->next_apply;
    for (uint64_t s = c->next_apply; s < c->next_apply + c->cfg.window; s++) {
        struct inst *in = core_inst_get(c, s);
        if (!in->started || in->decided || c->now - in->last_us < rt) continue;
        stalled = true;
        in->last_us = c->now;
        c->stats.retransmits++;
        resend_inst(c, in, RABIA_TO_ALL);
        core_tracef(c, s, "resend (phase %u round %u)", in->phase, in->round);
    }
    for (uint64_t s = c->next_apply; s < c->next_apply + c->ahead; s++) {
        struct logent *l = core_log_get(c, s);
        if (l && l->value && l->entry < 0 && c->now - l->fetch_us >= rt) core_send_fetch(c, l);
    }
    /* own batches not decided after a while: a peer may have lost them */
    struct pq *q = &c->pq[c->cfg.self];
    for (uint32_t i = 0; i < q->n; i++) {
        int32_t e = q->items[i];
        if (c->now - c->bt[e].sent_us >= REBROADCAST_TICKS * rt) send_own_batch(c, e, RABIA_TO_ALL);
    }
    /* behind a peer, or stuck on a slot no one talks about any more */
    uint8_t best = core_best_peer(c);
    if (best != c->cfg.self && (c->peer_known[best] >= c->next_apply + c->cfg.window ||
                                (stalled && c->peer_known[best] >= c->next_apply))) {
        core_maybe_catchup(c, best);
    } else if (stalled && c->cfg.n > 1 && (!c->catchup_us || c->now - c->catchup_us >= rt)) {
        /* Stuck, and no peer known to be ahead: what we know of them may be
         * older than what they decided meanwhile (a CATCHUP a peer sent
         * while it was behind sets what we know of it, handlers.c; a pause
         * or a partition kept its later messages from us), and a peer whose
         * core log no longer holds our slot answers our retransmissions
         * with nothing while its own log may serve them (replica/node.c
         * offers no snapshot then): each waited for the other (sim --seed
         * 1030014 --mix pause --durable --n 5). Ask each peer in turn, one
         * per retransmit period; one that is ahead answers with decisions. */
        uint8_t p = c->catchup_rr;
        do p = (uint8_t)((p + 1) % c->cfg.n);
        while (p == c->cfg.self);
        c->catchup_rr = p;
        core_maybe_catchup(c, p);
    }
}

/* Nothing held from a peer (handlers.c, the PROPOSAL just past the
 * window) crosses one of its link events: rule 3's spirit, kept simple. */
static void drop_held(struct rabia_core *c, uint8_t peer)
{
    RABIA_ASSERT(peer < c->cfg.n);
    c->held_mask &= (uint8_t)~(1u << peer);
}

void core_on_peer_down(struct rabia_core *c, uint8_t peer)
{
    if (peer >= c->cfg.n || peer == c->cfg.self) return;
    drop_held(c, peer);
}

void core_on_peer_up(struct rabia_core *c, uint8_t peer)
{
    if (peer >= c->cfg.n || peer == c->cfg.self) return;
    drop_held(c, peer);
    c->read_old &= (uint8_t)~(1u << peer); /* restarted: maybe upgraded; its next answer tells */
    if (c->recovering) {
        struct rabia_send *s = core_emit(c, peer, RABIA_MSG_HORIZON_REQ, 0);
        if (s) s->msg.u64 = c->cfg.incarnation;
        return;
    }
    /* A replica restarted with its log knows nothing of what the others
     * decided meanwhile, and an idle cluster says nothing by itself: ask
     * each peer as it comes up (it answers with decisions from our next
     * slot on, or a snapshot offer; nothing when we are level). */
    struct rabia_send *cu = core_emit(c, peer, RABIA_MSG_CATCHUP, c->next_apply);
    (void)cu;
    /* whatever was in flight on the old connection is lost: resend */
    struct pq *q = &c->pq[c->cfg.self];
    for (uint32_t i = 0; i < q->n; i++) send_own_batch(c, q->items[i], peer);
    for (uint64_t s = c->next_apply; s < c->next_apply + c->cfg.window; s++) {
        struct inst *in = core_inst_get(c, s);
        if (in->started && !in->decided) resend_inst(c, in, peer);
    }
}

void core_on_snapshot(struct rabia_core *c, uint64_t slot)
{
    if (slot < c->next_apply) return;
    /* Slots up to the snapshot are done. Later ones keep everything: this
     * replica may already have sent states and votes there, and forgetting
     * them would let it vote again differently (found by sim seed 6124). */
    for (uint32_t i = 0; i < c->log_size; i++)
        if (c->log[i].slot && c->log[i].slot <= slot) core_log_clear(c, &c->log[i]);
    c->retain_bytes = 0; /* every applied slot was below next_apply <= slot */
    for (uint32_t w = 0; w < c->cfg.window; w++) {
        struct inst *in = &c->inst[w];
        if (!in->used || in->slot > slot) continue;
        core_release_proposal(c, in);
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
        while (c->pq[p].n) core_pq_remove(c, c->pq[p].items[0]);
    /* my own earlier batches are decided or dropped now: never again */
    struct tracker *mine = &c->tr[c->cfg.self];
    if (mine->incarnation != c->cfg.incarnation) core_tr_reset(c, c->cfg.self, c->cfg.incarnation);
    if (mine->base < c->next_seq) {
        mine->base = c->next_seq;
        memset(mine->bits, 0, sizeof mine->bits);
    }
    c->next_apply = slot + 1;
    c->log_low = slot + 1;
    if (slot > c->max_seen) c->max_seen = slot;
    core_tracef(c, slot, "snapshot installed up to slot %llu", (unsigned long long)slot);
    /* A peer that spoke of a later slot has decided what follows: ask now.
     * The ticks' catch-up waits for a peer a window ahead or a started
     * slot that stalls, and neither comes when the one slot left is one
     * this replica abstains in (a --rejoin's horizon: the slot after the
     * snapshot, decided by the peers while this replica still held no
     * state, so it dropped their DECISION): it waited for ever, one slot
     * behind an idle cluster (integration.metrics, once in three CI runs). */
    uint8_t best = core_best_peer(c);
    if (best != c->cfg.self && c->peer_known[best] >= c->next_apply) {
        c->catchup_us = 0;
        core_maybe_catchup(c, best);
    }
}

/* A batch handed back by a snapshot install (update.retired) that the
 * restored state did not apply: pending again, under its own id. */
int core_on_resubmit(struct rabia_core *c, const struct rabia_event *ev)
{
    const struct rabia_batch_id *id = &ev->msg.id;
    if (ev->body_len > c->cfg.max_batch_bytes) return RABIA_E_TOOBIG;
    if (id->proxy != c->cfg.self || id->incarnation != c->cfg.incarnation || id->seq == 0 || id->seq >= c->next_seq)
        return RABIA_E_MALFORMED; /* not one of mine */
    int32_t e = core_bt_find(c, id);
    if (e >= 0 && c->bt[e].in_pq) return 0;
    if (c->pq[c->cfg.self].n >= c->cfg.max_pending) return RABIA_E_FULL;
    if (e < 0) {
        e = core_bt_alloc(c, id, ev->body, ev->body_len);
        if (e < 0) return RABIA_E_FULL;
    }
    core_pq_insert(c, e); /* an entry still held (a kept slot proposes it) is queued again too */
    struct rabia_msg bm = {.type = RABIA_MSG_BATCH, .has_id = 1, .id = *id, .body = c->bt[e].data,
                           .body_len = c->bt[e].len};
    core_persist(c, &bm); /* again: the log prefix that held it may be released by now */
    send_own_batch(c, e, RABIA_TO_ALL);
    return 0;
}

int core_on_submit(struct rabia_core *c, const struct rabia_event *ev)
{
    if (ev->body_len > c->cfg.max_batch_bytes) return RABIA_E_TOOBIG;
    uint8_t self = c->cfg.self;
    if (c->pq[self].n >= c->cfg.max_pending || c->bt_used >= c->bt_cap) return RABIA_E_FULL;
    /* Every replica remembers 256 seqs of a proxy above the lowest not yet
     * decided (core_tr_mark, and the apply layer's trackers): a decided seq
     * 256 or more above a pending one slides the window, and the pending
     * batch counts as decided everywhere, never to be decided or applied
     * (its proxy kept proposing it into null slots: simulator seed 800217,
     * a restart that numbered past its seq reservation while a restored
     * batch waited). So no new batch 192 or more above a pending own one;
     * the pending one is at the head of the queue and goes first. */
    for (uint32_t i = 0; i < c->pq[self].n; i++) {
        const struct bent *b = &c->bt[c->pq[self].items[i]];
        if (b->id.incarnation == c->cfg.incarnation && c->next_seq >= b->id.seq + RABIA_SEQ_SPAN)
            return RABIA_E_FULL;
    }
    struct rabia_batch_id id = {.proxy = self, .incarnation = c->cfg.incarnation, .seq = c->next_seq};
    int32_t e = core_bt_alloc(c, &id, ev->body, ev->body_len);
    if (e < 0) return RABIA_E_FULL;
    c->next_seq++;
    core_pq_insert(c, e);
    c->out->submitted = id;
    struct rabia_msg bm = {.type = RABIA_MSG_BATCH, .has_id = 1, .id = id, .body = c->bt[e].data,
                           .body_len = c->bt[e].len};
    core_persist(c, &bm); /* after a whole-cluster crash only this copy may be left */
    send_own_batch(c, e, RABIA_TO_ALL);
    return 0;
}

/* RABIA_EV_RESTORE: one message this replica persisted in an earlier life
 * (update.persist), handed back in the order it was persisted, after a
 * SNAPSHOT_INSTALLED for the last applied slot and before any other event.
 * The instance resumes where the message left it, so the replica never
 * sends anything that contradicts it (contract rule 1). */
int core_on_restore(struct rabia_core *c, const struct rabia_event *ev)
{
    const struct rabia_msg *m = &ev->msg;
    if (m->from != c->cfg.self) return RABIA_E_MALFORMED;
    if (m->type == RABIA_MSG_BATCH && m->has_id && m->id.proxy != c->cfg.self) {
        /* a batch of another proxy this replica proposed in a slot still open:
         * kept for the slot and for peers' FETCH until that slot is done */
        if (m->id.proxy >= c->cfg.n || m->body_len > c->cfg.max_batch_bytes) return RABIA_E_MALFORMED;
        if (core_bt_find(c, &m->id) >= 0 || c->n_pinned >= PIN_CAP(c)) return 0;
        int32_t e = core_bt_alloc(c, &m->id, m->body, m->body_len);
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
            core_tr_mark(c, id);
            return 0;
        }
        if (m->value == 1) {
            /* Applied, but a slot still open may have it proposed by a
             * majority and decide it again: then the peers FETCH its body,
             * and after a whole-cluster crash this log holds the only copy. */
            core_tr_mark(c, id);
            if (core_bt_find(c, id) >= 0 || c->n_pinned >= PIN_CAP(c)) return 0;
            int32_t e = core_bt_alloc(c, id, m->body, m->body_len);
            if (e < 0) return RABIA_E_FULL;
            c->bt[e].pin_until = c->next_apply + c->cfg.window;
            if (c->bt[e].pin_until > c->pin_max) c->pin_max = c->bt[e].pin_until;
            c->pinned[c->n_pinned++] = e;
            return 0;
        }
        if (core_tr_decided(c, id) || core_bt_find(c, id) >= 0) return 0;
        if (c->pq[c->cfg.self].n >= PQ_CAP(c)) return RABIA_E_FULL;
        int32_t e = core_bt_alloc(c, id, m->body, m->body_len);
        if (e < 0) return RABIA_E_FULL;
        core_pq_insert(c, e);
        c->bt[e].sent_us = c->now; /* PEER_UP sends it */
        return 0;
    }
    if (m->type == RABIA_MSG_HORIZON) { /* abstain up to an earlier life's horizon */
        if (m->slot > c->abstain_below) c->abstain_below = m->slot;
        if (m->slot > c->horizon_restored) c->horizon_restored = m->slot;
        if (m->slot > c->max_seen) c->max_seen = m->slot;
        return 0;
    }
    if (m->type < RABIA_MSG_PROPOSAL || m->type > RABIA_MSG_VOTE || m->slot == 0) return RABIA_E_MALFORMED;
    if (m->type != RABIA_MSG_PROPOSAL && (m->phase == 0 || m->value > RABIA_VQ)) return RABIA_E_MALFORMED;
    if (m->has_id && m->id.proxy >= c->cfg.n) return RABIA_E_MALFORMED;
    if (m->slot > c->max_seen) c->max_seen = m->slot;
    struct inst *in = core_inst_get(c, m->slot);
    if (!in && m->slot >= c->next_apply + c->cfg.window) {
        /* Beyond this life's window: the log was written with a larger one
         * (the setting was lowered). The slot cannot resume here, and when
         * the window reaches it a fresh start could send what contradicts
         * this record (rule 1: before, it proposed its pending batch where
         * it had proposed null). Abstain up to it, as up to a recovery's
         * horizon: the peers decide those slots (test_core
         * test_restore_beyond_window_abstains). */
        if (m->slot > c->abstain_below) {
            c->abstain_below = m->slot;
            core_tracef(c, m->slot, "restored record beyond window %u: abstain in slots <= %llu", c->cfg.window,
                        (unsigned long long)m->slot);
        }
        return 0;
    }
    if (!in || in->decided) return 0; /* applied already: nothing to resume */
    if (in->mute) {
        /* muted only by a record beyond the window restored before this
         * one (above): this slot has its own record and resumes it, which
         * contradicts nothing (a restored horizon has no own records below
         * it: the log began with that recovery) */
        RABIA_ASSERT(!c->recovering && m->slot > c->horizon_restored);
        in->mute = false;
    }
    RABIA_ASSERT(!in->mute);
    if (m->type == RABIA_MSG_PROPOSAL) {
        if (in->started) return 0;
        in->started = true;
        in->my_has = m->has_id;
        in->my_id = m->id;
        int32_t e = m->has_id ? core_bt_find(c, &m->id) : -1;
        if (e >= 0) {
            in->my_entry = e;
            c->bt[e].inflight++;
        }
        uint8_t self = c->cfg.self;
        in->prop_mask |= (uint8_t)(1u << self);
        if (in->prop_counted < c->cfg.n) {
            in->props[in->prop_counted] = in->my_id;
            in->props_has[in->prop_counted] = in->my_has;
            in->prop_counted++;
        }
        return 0;
    }
    in->started = true; /* past the exchange (its PROPOSAL record may be in a released segment) */
    core_learn_id(c, in, m);
    struct phase *p = core_ph_get(in, m->phase, true);
    if (!p) return 0; /* older than the ring: superseded */
    bool state = m->type == RABIA_MSG_STATE;
    if (state) {
        if (p->sent & 1) return 0;
        if (m->value > 1) return RABIA_E_MALFORMED;
        p->my_state = m->value;
        p->sent |= 1;
        core_count(c, &p->st, c->cfg.self, m->value);
    } else {
        if (p->sent & 2) return 0;
        p->my_vote = m->value;
        p->sent |= 2;
        core_count(c, &p->vt, c->cfg.self, m->value);
    }
    if (m->phase > in->phase || (m->phase == in->phase && in->round < (state ? 1 : 2))) {
        in->phase = m->phase;
        in->round = state ? 1 : 2;
        if (state) in->state = m->value;
    }
    return 0;
}
