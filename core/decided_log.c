/* The decided log: decided slots kept for in-order apply and for peers'
 * catch-up, and fetching a decided batch's body. */
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
/* decided log */

struct logent *core_log_get(struct rabia_core *c, uint64_t slot)
{
    struct logent *l = &c->log[slot % c->log_size];
    return l->slot == slot ? l : NULL;
}

/* The retention window: applied slots kept for peers' catch-up. */
uint64_t core_log_retain_first(const struct rabia_core *c)
{
    return c->next_apply > c->cfg.log_retain ? c->next_apply - c->cfg.log_retain : 1;
}

/* The lowest applied slot the log really holds. A snapshot install empties
 * the log below its slot, so after one the retention window can reach
 * below what is there: every request for such a slot must get a snapshot
 * offer, or the asker waits for ever (sim seed 633, --mix all). */
uint64_t core_log_first(const struct rabia_core *c)
{
    uint64_t f = core_log_retain_first(c);
    return f > c->log_low ? f : c->log_low;
}

void core_log_clear(struct rabia_core *c, struct logent *l)
{
    if (l->slot && l->entry >= 0) {
        struct bent *b = &c->bt[l->entry];
        RABIA_ASSERT(b->refs > 0);
        b->refs--;
        core_bt_maybe_free(c, l->entry);
    }
    memset(l, 0, sizeof(*l));
    l->entry = -1;
}

/* An applied slot leaves the log (retention): its body no longer counts. */
void core_log_drop_applied(struct rabia_core *c, uint64_t slot)
{
    RABIA_ASSERT(slot < c->next_apply);
    struct logent *l = core_log_get(c, slot);
    if (!l) return;
    if (l->value && l->entry >= 0) {
        uint32_t len = c->bt[l->entry].len;
        RABIA_ASSERT(c->retain_bytes >= len);
        c->retain_bytes -= len;
    }
    core_log_clear(c, l);
}

/* log_retain_bytes: the oldest applied slots go until the bodies the log
 * holds fit (the last applied one stays). Each slot goes once, so the work
 * is bounded by the applies. The bodies are what a replica's memory holds
 * for peers' catch-up: 1,024 slots of SET -P 16 batches (about 110 KB each)
 * were 115 MB per replica, touched page by page as the core's arena filled
 * (0.19 page faults per SET on a fresh cluster, about 15 us each on this
 * VM; with 16 MiB, 6.0 -> 5.0 us of CPU per SET fresh and 4.2-4.7 ->
 * 3.1-3.5 us warm: bench/fresh_vs_warm.sh). Slots below come from the
 * write-ahead log or a snapshot. */
void core_log_trim_bytes(struct rabia_core *c)
{
    if (!c->cfg.log_retain_bytes || c->retain_bytes <= c->cfg.log_retain_bytes) return;
    uint64_t lo = core_log_first(c);
    while (c->retain_bytes > c->cfg.log_retain_bytes && lo + 1 < c->next_apply) core_log_drop_applied(c, lo++);
    if (lo > c->log_low) c->log_low = lo;
    RABIA_ASSERT(core_log_first(c) == lo && lo < c->next_apply);
}

void core_log_attach(struct rabia_core *c, struct logent *l, int32_t e)
{
    RABIA_ASSERT(l->entry < 0 && e >= 0);
    l->entry = e;
    c->bt[e].refs++;
    core_tr_mark(c, &l->id);
    core_pq_remove(c, e);
    /* Keep proxies' sequence numbers in step (a Lamport clock) so that the
     * GLOBAL order (seq, proxy) stays fair to every proxy; only while none of
     * my batches is pending, so peers' trackers never skip a pending one. */
    if (l->id.seq >= c->next_seq && c->pq[c->cfg.self].n == 0) c->next_seq = l->id.seq + 1;
}

void core_send_fetch(struct rabia_core *c, struct logent *l)
{
    struct rabia_send *s = core_emit(c, RABIA_TO_ALL, RABIA_MSG_FETCH, l->slot);
    if (s) {
        s->msg.has_id = 1;
        s->msg.id = l->id;
    }
    l->fetch_us = c->now;
    c->stats.fetches++;
}

/* Record a decision. The log is the single source of truth for apply. */
void core_log_decide(struct rabia_core *c, uint64_t slot, uint8_t value,
                       const struct rabia_batch_id *id)
{
    if (slot < c->next_apply || slot >= c->next_apply + c->ahead) return;
    struct logent *l = &c->log[slot % c->log_size];
    if (l->slot == slot) {
        if (l->value != value || (value && !rabia_batch_id_eq(&l->id, id))) core_anomaly(c, "a decision differs from the one logged");
        return;
    }
    core_log_clear(c, l);
    l->slot = slot;
    l->value = value;
    if (value) {
        l->id = *id;
        int32_t e = core_bt_find(c, id);
        if (e >= 0) core_log_attach(c, l, e);
        else core_send_fetch(c, l);
    }
}
