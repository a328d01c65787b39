/* The Rabia protocol as a pure step function: SMR layer (pending queues,
 * slot assignment, in-order apply) and weak multi-valued consensus per slot.
 * See include/rabia/core.h for the contract and shared/design/RABIA.md for
 * the rules these files implement. This file: create, destroy, the step
 * entry point and introspection; core_internal.h lists the others. */
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

/* RABIA_SLOT_LIMIT (core.h): without the bound one frame from a faulty or
 * forged peer (no cluster secret) set max_seen near 2^64 for good: the
 * known slot, HORIZON answers and read-index rounds all took it, and
 * `+ window` on it wrapped around (found by review). */

static bool msg_sane(const struct rabia_core *c, const struct rabia_msg *m)
{
    if (m->from >= c->cfg.n || m->from == c->cfg.self) return false;
    if (m->slot >= RABIA_SLOT_LIMIT) return false;
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
    core_bt_reap(c);
    if (ev->now_us > c->now) c->now = ev->now_us; /* time never goes back */
    int rc = 0;
    switch (ev->type) {
    case RABIA_EV_TICK:
        core_on_tick(c);
        core_exchange_waits(c);
        break;
    case RABIA_EV_SUBMIT:
        rc = core_on_submit(c, ev);
        break;
    case RABIA_EV_RECEIVE: {
        const struct rabia_msg *m = &ev->msg;
        if (!msg_sane(c, m)) {
            core_anomaly(c, "message fails sanity checks");
            break;
        }
        switch (m->type) {
        case RABIA_MSG_BATCH: core_on_batch(c, m); break;
        case RABIA_MSG_PROPOSAL:
        case RABIA_MSG_STATE:
        case RABIA_MSG_VOTE: core_on_consensus(c, m); break;
        case RABIA_MSG_DECISION: core_on_decision(c, m); break;
        case RABIA_MSG_FETCH: core_on_fetch(c, m); break;
        case RABIA_MSG_CATCHUP: core_on_catchup(c, m); break;
        case RABIA_MSG_HORIZON_REQ: core_on_horizon_req(c, m); break;
        case RABIA_MSG_HORIZON: core_on_horizon(c, m); break;
        default: c->stats.msgs_ignored++; break; /* not the core's */
        }
        break;
    }
    case RABIA_EV_PEER_UP:
        core_on_peer_up(c, ev->peer);
        break;
    case RABIA_EV_PEER_DOWN:
        core_on_peer_down(c, ev->peer);
        break;
    case RABIA_EV_SNAPSHOT_INSTALLED:
        core_on_snapshot(c, ev->slot);
        break;
    case RABIA_EV_RESUBMIT:
        rc = core_on_resubmit(c, ev);
        break;
    case RABIA_EV_RESTORE:
        rc = core_on_restore(c, ev);
        break;
    case RABIA_EV_READ_INDEX:
        rc = core_on_read_index(c, ev->slot);
        break;
    default:
        rc = RABIA_E_MALFORMED;
        break;
    }
    core_apply_ready(c);
    if (ev->type != RABIA_EV_RESTORE) core_deliver_ahead(c);
    /* no new slot while earlier lives' records are still coming in: a slot
     * started now could propose over a record not yet restored */
    if (rc == 0 && ev->type != RABIA_EV_RESTORE) core_start_slots(c);
    core_apply_ready(c);
    /* still behind a peer after applying what we had: next chunk */
    if (!c->recovering && out->n_applies) {
        for (uint8_t p = 0; p < c->cfg.n; p++) {
            if (p != c->cfg.self && c->peer_known[p] >= c->next_apply + c->cfg.window) {
                c->catchup_us = 0;
                core_maybe_catchup(c, p);
                break;
            }
        }
    }
    uint64_t wait_end = core_body_wait_end(c);
    /* ticks ask for what the peers decide alone, and keep asking while a
     * peer is known to be ahead: an idle cluster says nothing by itself,
     * and a snapshot offered may never arrive (its transfer dropped) */
    uint8_t best = core_best_peer(c);
    bool behind = best != c->cfg.self && c->peer_known[best] >= c->next_apply + c->cfg.window;
    bool busy = c->recovering || c->pq[c->cfg.self].n || c->drive_until >= c->next_apply || wait_end ||
                c->abstain_below >= c->next_apply || behind;
    for (uint32_t w = 0; w < c->cfg.window && !busy; w++)
        busy = c->inst[w].used && c->inst[w].started && !c->inst[w].decided;
    out->next_tick_us = busy ? c->now + c->cfg.retransmit_us / 2 : 0;
    if (wait_end > c->now && wait_end < out->next_tick_us) /* a join waiting for a body: wake when the wait ends */
        out->next_tick_us = wait_end;
    c->out = NULL;
    return rc;
}

uint64_t rabia_core_next_apply(const struct rabia_core *c) { return c->next_apply; }
uint64_t rabia_core_known_slot(const struct rabia_core *c) { return core_known_slot(c); }
uint64_t rabia_core_log_first(const struct rabia_core *c) { return core_log_first(c); }
uint64_t rabia_core_log_bytes(const struct rabia_core *c) { return c->retain_bytes; }
bool rabia_core_recovering(const struct rabia_core *c) { return c->recovering; }
bool rabia_core_reads_ok(const struct rabia_core *c) { return !c->recovering && !c->read_old; }
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
    /* Decided, so out of the queue, but not handed out yet (an earlier slot
     * is open): the embedder has not written its DECIDED record, which may
     * name this batch's BATCH record (replica/node.c decided_by_ref). A
     * snapshot meanwhile released that record (sim seed 5016366, --durable
     * --mix all: window 8, a slot decided 10 ms before the ones below it). */
    for (uint64_t s = c->next_apply; s <= c->next_apply + c->ahead; s++) {
        const struct logent *l = &c->log[s % c->log_size];
        if (l->slot != s || !l->value || l->id.proxy != c->cfg.self) continue;
        if (l->id.incarnation == c->cfg.incarnation && l->id.seq < low) low = l->id.seq;
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

uint32_t rabia_core_own_queued(const struct rabia_core *c) { return c->pq[c->cfg.self].n; }

uint32_t rabia_core_pending(const struct rabia_core *c)
{
    uint32_t k = 0;
    for (uint8_t p = 0; p < c->cfg.n; p++) k += c->pq[p].n;
    return k;
}

int rabia_core_describe_batch(const struct rabia_core *c, const struct rabia_batch_id *id, char *buf, size_t len)
{
    if (id->proxy >= c->cfg.n) return snprintf(buf, len, "proxy out of range");
    int32_t e = core_bt_find(c, id);
    const struct tracker *t = &c->tr[id->proxy];
    return snprintf(buf, len, "%s%s inflight=%u lost=%u tracker(inc=%llu base=%llu) decided=%d pq_len=%u",
                    e >= 0 ? "held" : "absent", e >= 0 && c->bt[e].in_pq ? " in-queue" : "",
                    e >= 0 ? c->bt[e].inflight : 0, e >= 0 ? c->bt[e].lost : 0, (unsigned long long)t->incarnation,
                    (unsigned long long)t->base, core_tr_decided(c, id), c->pq[id->proxy].n);
}

void rabia_core_set_coin_observer(struct rabia_core *c, rabia_coin_fn fn, void *ctx)
{
    c->coin_obs = fn;
    c->coin_ctx = ctx;
}

void rabia_core_set_decide_observer(struct rabia_core *c, rabia_decide_fn fn, void *ctx)
{
    c->decide_obs = fn;
    c->decide_ctx = ctx;
}

void rabia_core_set_trace(struct rabia_core *c, rabia_trace_fn fn, void *ctx)
{
    c->trace = fn;
    c->trace_ctx = ctx;
}
