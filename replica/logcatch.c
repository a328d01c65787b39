/* A peer's catch-up from this replica's log (logcatch.h): pure, shared by
 * rabiad and the simulator. */
#include "logcatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "invariant.h"
#include "node.h"

int logcatch_init(struct logcatch *lc, uint8_t self, uint64_t ring_bytes)
{
    RABIA_ASSERT(ring_bytes > 0);
    memset(lc, 0, sizeof *lc);
    lc->self = self;
    lc->ring = malloc(ring_bytes);
    if (!lc->ring) return -ENOMEM;
    lc->ring_cap = ring_bytes;
    lc->ended = true;
    return 0;
}

void logcatch_free(struct logcatch *lc)
{
    free(lc->ring);
    lc->ring = NULL;
}

void logcatch_begin(struct logcatch *lc, uint64_t from, uint64_t until, bool keep)
{
    RABIA_ASSERT(from >= 1 && until > from && lc->ring);
    if (!keep) lc->nb_first = lc->nb_count = 0;
    lc->next = from;
    lc->until = until;
    lc->served = 0;
    lc->ended = false;
    lc->gap_at = 0;
    lc->no_body = false;
}

/* The oldest remembered body goes. */
static void body_pop(struct logcatch *lc)
{
    RABIA_ASSERT(lc->nb_count > 0);
    lc->nb_first = (lc->nb_first + 1) % LOGCATCH_BODIES;
    lc->nb_count--;
}

/* Remember a body record's bytes; older ones it overwrites are forgotten.
 * slot: the record's (a SENT record of another proxy's batch: the slot this
 * replica proposed it in; the BATCH message itself carries none). */
static void body_keep(struct logcatch *lc, const struct rabia_msg *m, uint64_t slot)
{
    uint64_t len = m->body_len;
    if (len > lc->ring_cap) return; /* cannot be kept: a decision naming it ends the request */
    uint64_t at = lc->taken, pos = at % lc->ring_cap;
    if (pos + len > lc->ring_cap) { /* contiguous: skip the ring's tail */
        at += lc->ring_cap - pos;
        pos = 0;
    }
    lc->taken = at + len;
    /* forget what the new bytes overwrite, and the oldest when the table is full */
    while (lc->nb_count && lc->bodies[lc->nb_first].at + lc->ring_cap < lc->taken) body_pop(lc);
    if (lc->nb_count == LOGCATCH_BODIES) body_pop(lc);
    memcpy(lc->ring + pos, m->body, len);
    struct logcatch_body *b = &lc->bodies[(lc->nb_first + lc->nb_count) % LOGCATCH_BODIES];
    *b = (struct logcatch_body){.id = m->id, .slot = slot, .at = at, .len = (uint32_t)len};
    lc->nb_count++;
    RABIA_ASSERT(lc->nb_count <= LOGCATCH_BODIES);
}

/* The body a DECIDED_REF of `slot` names: this replica's own BATCH record
 * of the batch (any slot), or the record of another proxy's batch it
 * proposed in that very slot (replay.c's rule). Newest first. */
static const uint8_t *body_find(const struct logcatch *lc, const struct rabia_batch_id *id, uint64_t slot,
                                uint32_t *len)
{
    bool own = id->proxy == lc->self;
    for (uint32_t k = lc->nb_count; k-- > 0;) {
        const struct logcatch_body *b = &lc->bodies[(lc->nb_first + k) % LOGCATCH_BODIES];
        if (lc->bugs & LOGCATCH_BUG_ANY_BODY) {
            if (b->id.proxy != id->proxy) continue;
        } else if (!rabia_batch_id_eq(&b->id, id) || (!own && b->slot != slot)) {
            continue;
        }
        RABIA_ASSERT(b->at + lc->ring_cap >= lc->taken); /* not overwritten (body_keep forgets those) */
        *len = b->len;
        return lc->ring + b->at % lc->ring_cap;
    }
    return NULL;
}

bool logcatch_feed(struct logcatch *lc, uint8_t type, uint64_t slot, const struct rabia_msg *m,
                   logcatch_emit_fn emit, void *ctx)
{
    if (lc->ended) return true;
    if (m->type == RABIA_MSG_BATCH && m->has_id && m->body_len && (type == NODE_REC_BATCH || type == NODE_REC_SENT)) {
        body_keep(lc, m, slot);
        return false;
    }
    if ((type != NODE_REC_DECIDED && type != NODE_REC_DECIDED_REF) || m->type != RABIA_MSG_DECISION ||
        m->slot != slot || slot < lc->next)
        return false;
    if (slot > lc->next) { /* the log does not hold lc->next (released, or a snapshot installed over it) */
        lc->ended = true;
        lc->gap_at = slot;
        return true;
    }
    struct rabia_msg d = *m;
    d.from = lc->self;
    if (type == NODE_REC_DECIDED_REF) {
        if (!m->value || !m->has_id || m->body_len || !(d.body = body_find(lc, &m->id, slot, &d.body_len))) {
            lc->ended = true; /* the body is not among those kept: the peer asks again, and gets a snapshot */
            lc->no_body = true;
            return true;
        }
    }
    emit(ctx, &d);
    lc->next++;
    lc->served++;
    if (lc->next == lc->until) lc->ended = true;
    return lc->ended;
}
