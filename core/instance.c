/* One consensus instance per slot in the window: the weak multi-valued
 * consensus of the Rabia paper (proposal exchange, then phases of a state
 * round and a vote round, the common coin when undecided), starting slots
 * and applying decided ones in order. */
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
/* consensus instances */

/* The ring entry of a phase. Creating one may only replace an OLDER phase:
 * a late message of an old phase must never wipe what was counted for the
 * newer phase sharing its entry (NULL then: the message is stale). */
struct phase *core_ph_get(struct inst *in, uint16_t phase, bool create)
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

struct inst *core_inst_get(struct rabia_core *c, uint64_t slot)
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
    in->first_us = c->now;
    struct logent *l = core_log_get(c, slot);
    if (l) { /* decided already, e.g. by catch-up */
        in->decided = true;
        in->value = l->value;
        in->known_id = l->value;
        in->maj_id = l->id;
        in->started = true;
    }
    return in;
}

void core_learn_id(struct rabia_core *c, struct inst *in, const struct rabia_msg *m)
{
    if (!m->has_id) return;
    if (!in->known_id) {
        in->known_id = true;
        in->maj_id = m->id;
    } else if (!rabia_batch_id_eq(&in->maj_id, &m->id)) {
        core_anomaly(c, "a peer's majority batch differs from ours");
    }
}

void core_fill_id(const struct inst *in, struct rabia_msg *m)
{
    if (in->known_id) {
        m->has_id = 1;
        m->id = in->maj_id;
    }
}

/* My proposal for the slot is over: free it for later slots, or drop a
 * peer's batch that keeps losing (its proxy re-sends it if still pending). */
void core_release_proposal(struct rabia_core *c, struct inst *in)
{
    if (in->my_entry < 0) return;
    struct bent *b = &c->bt[in->my_entry];
    RABIA_ASSERT(b->inflight > 0);
    b->inflight--;
    bool won = in->decided && in->value && rabia_batch_id_eq(&in->maj_id, &b->id);
    if (!won && b->in_pq && b->id.proxy != c->cfg.self && ++b->lost >= LOST_DROP) core_pq_remove(c, in->my_entry);
    core_bt_maybe_free(c, in->my_entry);
    in->my_entry = -1;
}

void core_decide(struct rabia_core *c, struct inst *in, uint8_t value, bool adopted)
{
    char ib[64];
    if (in->decided) return;
    in->decided = true;
    in->value = value;
    c->stats.slots_decided++;
    if (!value) c->stats.slots_null++;
    if (adopted) c->stats.decisions_adopted++;
    else if (in->phase <= 1) c->stats.slots_fast++; /* phase 0: a unanimous exchange */
    if (in->phase > c->stats.max_phase) c->stats.max_phase = in->phase;
    core_tracef(c, in->slot, "decide %u %s in phase %u%s", value, core_idstr(&in->maj_id, value, ib, sizeof ib),
           in->phase, adopted ? " (adopted)" : "");
    if (value && !in->known_id) {
        /* Cannot happen when every message carries the id its sender knows;
         * counted, and the slot waits for a peer's DECISION. */
        core_anomaly(c, "decided 1 without knowing the batch");
        in->decided = false;
        c->stats.slots_decided--;
        return;
    }
    core_log_decide(c, in->slot, value, &in->maj_id);
    if (c->decide_obs)
        c->decide_obs(c->decide_ctx, in->slot, value, in->phase, adopted, c->now - in->first_us);
    core_release_proposal(c, in);
    /* After a unanimous exchange every replica holds (or gets) the same n
     * proposals and decides alone: a DECISION to all would be two messages
     * per replica per slot that nobody needs. One that missed a proposal
     * goes on to phase 1; its STATE gets a DECISION back (core_on_consensus). */
    if (!adopted && !in->mute && !in->unanimous) {
        struct rabia_send *s = core_emit(c, RABIA_TO_ALL, RABIA_MSG_DECISION, in->slot);
        if (s) {
            s->msg.value = value;
            if (value) core_fill_id(in, &s->msg);
        }
    }
}

/* First sends of a state or vote: persisted (rule 1), then sent. */
static void send_state(struct rabia_core *c, struct inst *in, struct phase *p)
{
    struct rabia_msg m = {.type = RABIA_MSG_STATE, .slot = in->slot, .phase = p->phase, .value = p->my_state};
    core_fill_id(in, &m);
    core_persist(c, &m);
    struct rabia_send *s = core_emit(c, RABIA_TO_ALL, RABIA_MSG_STATE, in->slot);
    if (!s) return;
    s->msg.phase = m.phase;
    s->msg.value = m.value;
    s->msg.has_id = m.has_id;
    s->msg.id = m.id;
}

static void send_vote(struct rabia_core *c, struct inst *in, struct phase *p)
{
    struct rabia_msg m = {.type = RABIA_MSG_VOTE, .slot = in->slot, .phase = p->phase, .value = p->my_vote};
    core_fill_id(in, &m);
    core_persist(c, &m);
    struct rabia_send *s = core_emit(c, RABIA_TO_ALL, RABIA_MSG_VOTE, in->slot);
    if (!s) return;
    s->msg.phase = m.phase;
    s->msg.value = m.value;
    s->msg.has_id = m.has_id;
    s->msg.id = m.id;
}

void core_send_proposal(struct rabia_core *c, struct inst *in, uint8_t to)
{
    struct rabia_send *s = core_emit(c, to, RABIA_MSG_PROPOSAL, in->slot);
    if (!s) return;
    s->msg.has_id = in->my_has;
    if (in->my_has) s->msg.id = in->my_id;
}

/* Count one message of a round: only the first n-f distinct senders. */
bool core_count(struct rabia_core *c, struct round *r, uint8_t from, uint8_t value)
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
    struct phase *p = core_ph_get(in, phase, true);
    RABIA_ASSERT(p != NULL);
    p->my_state = state;
    if (!in->mute) {
        p->sent |= 1;
        send_state(c, in, p);
        core_count(c, &p->st, c->cfg.self, state);
    }
}

/* Advance the instance as far as the counted messages allow. */
/* Every replica proposed the same batch (n proposals in, one id). */
static bool unanimous(const struct rabia_core *c, const struct inst *in)
{
    if (in->prop_counted < c->cfg.n || !in->props_has[0]) return false;
    for (uint8_t i = 1; i < in->prop_counted; i++)
        if (!in->props_has[i] || !rabia_batch_id_eq(&in->props[0], &in->props[i])) return false;
    return true;
}

void core_progress(struct rabia_core *c, struct inst *in)
{
    char ib[64];
    /* All n proposals are in: replicas answer, so the exchange may wait for
     * a unanimity again (round 0 below), about as long as this took. */
    if (in->started && in->prop_counted >= c->cfg.n && !in->full_seen) {
        in->full_seen = true;
        c->unan_wait_off = false;
        uint64_t lag = c->now - in->start_us;
        c->full_lag_us = c->full_lag_us ? (c->full_lag_us * 7 + lag) / 8 : lag;
    }
    /* A unanimous exchange decides the slot at once. When all n replicas
     * proposed batch v, every set of n-f proposals any replica counts is
     * all v, so every state is 1, every phase-1 vote is 1, and every
     * replica that finishes phase 1 decides v: no other outcome exists,
     * and proposals are persisted before they leave, so none can be taken
     * back by a restart. Deciding now skips the STATE and VOTE rounds:
     * two message delays, and with durability = wal two group writes in
     * series, in the common case of one proxy's batch (joiners adopt it).
     * Replicas that miss a proposal decide as before, with the same value;
     * this one sends no DECISION unasked (core_decide), but answers their
     * STATE with one. */
    if (!in->decided && in->started && !in->mute && unanimous(c, in)) {
        if (!in->known_id) {
            in->known_id = true;
            in->maj_id = in->props[0];
        } else if (!rabia_batch_id_eq(&in->maj_id, &in->props[0])) {
            core_anomaly(c, "a unanimous exchange names another batch than the majority's");
            return;
        }
        core_tracef(c, in->slot, "exchange unanimous: %s", core_idstr(&in->maj_id, 1, ib, sizeof ib));
        in->unanimous = true;
        c->stats.slots_unanimous++;
        core_decide(c, in, 1, false);
        return;
    }
    for (int guard = 0; guard < 4 * PH_RING && !in->decided; guard++) {
        if (in->round == 0) {
            if (!in->started || in->prop_counted < c->nf) return;
            /* state = 1 iff one batch was proposed by a majority */
            uint8_t st = 0, top = 0;
            for (uint8_t i = 0; i < in->prop_counted && !st; i++) {
                if (!in->props_has[i]) continue;
                uint8_t k = 0;
                for (uint8_t j = 0; j < in->prop_counted; j++)
                    if (in->props_has[j] && rabia_batch_id_eq(&in->props[i], &in->props[j])) k++;
                if (k > top) top = k;
                if (k >= c->maj) {
                    st = 1;
                    if (!in->known_id) {
                        in->known_id = true;
                        in->maj_id = in->props[i];
                    } else if (!rabia_batch_id_eq(&in->maj_id, &in->props[i])) {
                        core_anomaly(c, "two batches with a majority in one slot");
                    }
                }
            }
            /* No majority among the first n-f, but the proposals still on
             * their way could make one (n = 5: 1.1.68 from 4 replicas, yet
             * the first 3 in were 2-1 and the slot went null; 8.8% null
             * slots in the simulator's calm mix, clients spread). Wait for
             * them a little: as long as gathering the first n-f took, at
             * least 50 us, at most a quarter of the retransmission period.
             * Safe: the state is still computed once, from at least n-f
             * proposals (any set of n-f or more has the quorum properties
             * the phases rely on); waiting is only being slow, and a peer
             * that never proposes costs only this bounded wait. */
            /* A majority whose every proposal so far names one batch may
             * still become unanimous, which decides at once: no STATE and
             * VOTE rounds, and with durability = wal no STATE and VOTE
             * group writes. A follower of one proxy's load sent STATE in
             * every slot, from its own proposal and the proxy's, just
             * before the third arrived (SET -P 1: 1.85 log writes per slot
             * per follower). Wait for the rest as above. When such a wait
             * runs out, a replica is down or slow: stop waiting for
             * unanimity until a slot counts all n proposals again, so a
             * dead replica costs at most one wait. */
            bool maybe_unanimous = st && top == in->prop_counted && in->prop_counted < c->cfg.n && !c->unan_wait_off;
            if ((!st && in->prop_counted < c->cfg.n && top + (c->cfg.n - in->prop_counted) >= c->maj) ||
                maybe_unanimous) {
                if (!in->xwait_until) {
                    uint64_t took = c->now - in->start_us, max = c->cfg.retransmit_us / 4, wait = took;
                    /* for unanimity: at least until the n-th proposal's usual lag and half again */
                    uint64_t usual = c->full_lag_us + c->full_lag_us / 2;
                    if (maybe_unanimous && usual > took && usual - took > wait) wait = usual - took;
                    in->xwait_until = c->now + (wait < 50 ? 50 : wait > max ? max : wait);
                }
                if (c->now < in->xwait_until) return;
                if (maybe_unanimous) c->unan_wait_off = true;
            }
            core_tracef(c, in->slot, "exchange done: state %u (majority %s)", st,
                   core_idstr(&in->maj_id, st, ib, sizeof ib));
            in->last_us = c->now;
            enter_phase(c, in, 1, st);
            continue;
        }
        struct phase *p = core_ph_get(in, in->phase, true);
        RABIA_ASSERT(p != NULL); /* the current phase is the newest one */
        if (in->round == 1) {
            if (p->st.counted < c->nf) return;
            uint8_t v = RABIA_VQ;
            if (p->st.cnt[0] >= c->maj) v = 0;
            else if (p->st.cnt[1] >= c->maj) v = 1;
            core_tracef(c, in->slot, "phase %u states 0:%u 1:%u -> vote %c", in->phase, p->st.cnt[0],
                   p->st.cnt[1], v == RABIA_VQ ? '?' : '0' + v);
            in->round = 2;
            in->last_us = c->now;
            p->my_vote = v;
            if (!in->mute) {
                p->sent |= 2;
                send_vote(c, in, p);
                core_count(c, &p->vt, c->cfg.self, v);
            }
            continue;
        }
        /* round 2: votes */
        if (p->vt.counted < c->nf) return;
        uint8_t need = c->f1;
#ifdef RABIA_TEST_BUGS
        if (c->cfg.bugs & RABIA_BUG_MAJORITY_OF_VOTES) need = (uint8_t)(c->nf / 2 + 1);
#endif
        if (p->vt.cnt[0] && p->vt.cnt[1]) core_anomaly(c, "votes for 0 and 1 in one phase"); /* impossible among honest peers */
        core_tracef(c, in->slot, "phase %u votes 0:%u 1:%u ?:%u", in->phase, p->vt.cnt[0], p->vt.cnt[1],
               p->vt.cnt[RABIA_VQ]);
        in->last_us = c->now;
        if (p->vt.cnt[1] >= need) {
            core_decide(c, in, 1, false);
            return;
        }
        if (p->vt.cnt[0] >= need) {
            core_decide(c, in, 0, false);
            return;
        }
        uint8_t st;
        if (p->vt.cnt[1]) st = 1;
        else if (p->vt.cnt[0]) st = 0;
        else {
            st = (uint8_t)core_coin(c, in->slot, in->phase);
            core_tracef(c, in->slot, "phase %u coin %u", in->phase, st);
            if (c->coin_obs) c->coin_obs(c->coin_ctx, in->slot, in->phase, st);
        }
        if (in->phase + 1u >= 0xFFFFu) return; /* 2^-65535: stop, peers' DECISION ends it */
        enter_phase(c, in, (uint16_t)(in->phase + 1), st);
    }
}

/* Joining a slot whose proposals name a batch I do not hold yet: its body
 * is on its way (a proxy sends it to all before proposing it, but under
 * load a large body on the proxy's link arrives after a small proposal on
 * another peer's). Proposing something else then would waste the slot:
 * measured on a 3-replica cluster with 50 clients x 16 pipelined SETs on
 * one replica, 60% of slots were null for this. So wait for the body, a
 * bounded time (a quarter of the retransmission period), then propose
 * what I hold. Waiting is only being slow: always safe. */
static bool wait_for_body(struct rabia_core *c, struct inst *in)
{
    if (in->mute) return false;
    bool missing = false;
    for (uint8_t i = 0; i < in->prop_counted; i++) {
        if (!in->props_has[i]) continue;
        int32_t k = core_bt_find(c, &in->props[i]);
        if (k >= 0) return false; /* one I hold: propose it */
        if (!core_tr_decided(c, &in->props[i])) missing = true;
    }
    if (!missing) return false;
    if (!in->body_wait_until) in->body_wait_until = c->now + c->cfg.retransmit_us / 4;
    return c->now < in->body_wait_until;
}

uint64_t core_body_wait_end(const struct rabia_core *c)
{
    uint64_t end = 0;
    for (uint32_t w = 0; w < c->cfg.window; w++) {
        const struct inst *in = &c->inst[w];
        if (in->used && !in->started && !in->decided && in->body_wait_until &&
            (!end || in->body_wait_until < end))
            end = in->body_wait_until;
        if (in->used && in->started && !in->decided && in->round == 0 && in->xwait_until &&
            (!end || in->xwait_until < end))
            end = in->xwait_until;
    }
    return end;
}

void core_exchange_waits(struct rabia_core *c)
{
    for (uint32_t w = 0; w < c->cfg.window; w++) {
        struct inst *in = &c->inst[w];
        if (in->used && in->started && !in->decided && in->round == 0 && in->xwait_until &&
            c->now >= in->xwait_until)
            core_progress(c, in);
    }
}

static void start_inst(struct rabia_core *c, struct inst *in)
{
    char ib[64];
    if (in->started) return;
    if (wait_for_body(c, in)) return;
    in->started = true;
    in->last_us = c->now;
    in->start_us = c->now;
    if (in->slot > c->max_seen) c->max_seen = in->slot;
    if (in->mute) {
        core_tracef(c, in->slot, "listening (abstain below %llu)", (unsigned long long)c->abstain_below);
        core_progress(c, in);
        return;
    }
    /* Joining a slot a peer started: propose what it proposed when I hold
     * that batch and am not proposing it elsewhere. Any batch of mine is a
     * valid proposal; matching the initiator is what avoids null slots when
     * replicas' queues differ (measured: see core/README.md). */
    int32_t e = -1;
    for (uint8_t i = 0; i < in->prop_counted; i++) {
        if (!in->props_has[i]) continue;
        int32_t k = core_bt_find(c, &in->props[i]);
        /* with a window, also a batch I propose in another open slot: the
         * peers that started this slot proposed it here, and a batch
         * decided twice is applied once (the apply layer skips it) while
         * a mismatch wastes the slot for everyone */
        if (k >= 0 && c->bt[k].in_pq && (!c->bt[k].inflight || c->cfg.window > 1) &&
            (e < 0 || core_key_cmp(&c->bt[k].id, &c->bt[e].id) < 0))
            e = k;
    }
    if (e < 0) e = core_choose(c, in->slot);
    if (e >= 0) {
        in->my_entry = e;
        in->my_has = true;
        in->my_id = c->bt[e].id;
        c->bt[e].inflight++;
    }
    core_tracef(c, in->slot, "propose %s", core_idstr(&in->my_id, in->my_has, ib, sizeof ib));
    if (e >= 0 && c->bt[e].id.proxy != c->cfg.self) {
        /* Another proxy's batch: its body goes to this log too. A slot decides
         * a batch only if a majority proposed it there, so after any crash,
         * and any f lost disks (its proxy's among them), a copy survives. */
        struct rabia_msg bm = {.type = RABIA_MSG_BATCH, .slot = in->slot, .has_id = 1, .id = c->bt[e].id,
                               .body = c->bt[e].data, .body_len = c->bt[e].len};
        core_persist(c, &bm);
    }
    struct rabia_msg pm = {.type = RABIA_MSG_PROPOSAL, .slot = in->slot, .has_id = in->my_has, .id = in->my_id};
    core_persist(c, &pm);
    core_send_proposal(c, in, RABIA_TO_ALL);
    /* count my own proposal like a peer's */
    uint8_t self = c->cfg.self;
    if (!(in->prop_mask & (1u << self))) {
        in->prop_mask |= (uint8_t)(1u << self);
        if (in->prop_counted < c->cfg.n) {
            in->props[in->prop_counted] = in->my_id;
            in->props_has[in->prop_counted] = in->my_has;
            in->prop_counted++;
        }
    }
    core_progress(c, in);
}

/* Start slots of the window in order while there is something to propose
 * or a peer already started a later slot. */
void core_start_slots(struct rabia_core *c)
{
    if (c->recovering) return;
    uint64_t end = c->next_apply + c->cfg.window;
    uint64_t last = 0;
    for (uint64_t s = c->next_apply; s < end; s++) {
        struct inst *in = core_inst_get(c, s);
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
            struct inst *in = core_inst_get(c, s);
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
        /* Window 1: whoever holds a batch starts the slot. A wider window
         * (pipelining): every replica holds every proxy's pending batches
         * (they are sent to all on submit), so one replica can propose for
         * all of them; concurrent starts with different queue heads are
         * what wastes slots (core/README.md). So beyond the lowest open
         * slot, slot s is started only by its initiator, replica s mod n,
         * once it has started every slot below s (joining a slot adopts the
         * initiator's batch and marks it in flight, so the next initiator
         * picks the next batch). Everyone else joins on its proposal. The
         * lowest open slot (nothing in flight below it) anyone with a
         * batch starts: a light load runs as with window 1, and a slot
         * whose initiator is down or has nothing waits until it is the
         * lowest. */
        bool chain = c->cfg.window > 1, below_decided = true;
        for (uint64_t s = c->next_apply; s < end && avail; s++) {
            struct inst *in = core_inst_get(c, s);
            if (in->started) {
                below_decided = below_decided && in->decided;
                continue;
            }
            if (chain && s > last && !below_decided && s % c->cfg.n != c->cfg.self)
                break; /* its initiator's turn; slots start in order */
            below_decided = false;
            avail--;
            last = s > last ? s : last;
        }
    }
    for (uint64_t s = c->next_apply; s <= last && s < end; s++) {
        struct inst *in = core_inst_get(c, s);
        if (!in->started && !in->decided) start_inst(c, in);
    }
}

/* Apply decided slots in order, then retire what peers no longer need. */
void core_apply_ready(struct rabia_core *c)
{
    for (;;) {
        struct logent *l = core_log_get(c, c->next_apply);
        if (!l || (l->value && l->entry < 0)) break;
        struct rabia_update *o = c->out;
        RABIA_ASSERT(o->n_applies < c->applies_cap);
        struct rabia_apply *a = &c->applies[o->n_applies++];
        memset(a, 0, sizeof(*a));
        RABIA_ASSERT(!l->value || l->entry >= 0);
        c->retain_bytes += l->value ? c->bt[l->entry].len : 0;
        a->slot = l->slot;
        a->null = !l->value;
        a->adopted = l->by_peer && l->value;
        if (l->value) {
            struct bent *b = &c->bt[l->entry];
            a->id = b->id;
            a->body = b->data;
            a->body_len = b->len;
        }
        struct inst *in = &c->inst[c->next_apply % c->cfg.window];
        uint8_t counted = 0;
        if (l->value && in->used && in->slot == c->next_apply)
            for (uint8_t i = 0; i < in->prop_counted; i++)
                counted += in->props_has[i] && rabia_batch_id_eq(&in->props[i], &a->id);
        RABIA_ASSERT(counted <= c->cfg.n);
        if (l->value) a->holders = counted > c->maj ? counted : c->maj;
        if (in->used && in->slot == c->next_apply) {
            a->unanimous = in->decided && in->unanimous && l->value;
            RABIA_ASSERT(!a->unanimous || a->holders == c->cfg.n);
            if (!in->decided) { /* learned from the log (catch-up) */
                in->decided = true;
                in->value = l->value;
                in->maj_id = l->id;
                in->known_id = l->value;
            }
            core_release_proposal(c, in);
            in->used = false;
        }
        c->next_apply++;
        if (c->n_pinned && c->next_apply > c->pin_max) { /* every slot that could decide them is done */
            for (uint32_t k = 0; k < c->n_pinned; k++) {
                c->bt[c->pinned[k]].pin_until = 0;
                core_bt_maybe_free(c, c->pinned[k]);
            }
            c->n_pinned = 0;
        }
        uint64_t first = core_log_retain_first(c);
        if (first > 1) core_log_drop_applied(c, first - 1);
        core_log_trim_bytes(c);
    }
}
