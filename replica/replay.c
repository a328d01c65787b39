/* Recovery from a log without I/O (replay.h). */
#include "replay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "invariant.h"

void replay_init(struct replay *rp, uint8_t self, uint32_t window, uint64_t snap_slot, struct rabia_rsm *rsm)
{
    memset(rp, 0, sizeof(*rp));
    rp->self = self;
    rp->window = window;
    rp->snap_slot = snap_slot;
    rp->rsm = rsm;
    rp->prune_at = 4096;
}

void replay_free(struct replay *rp)
{
    rabia_buf_free(&rp->arena);
    free(rp->msgs);
    rp->msgs = NULL;
    rp->n = rp->cap = 0;
}

/* Keep a copy of a record for RABIA_EV_RESTORE; bodies go into the arena and
 * are linked up once the scan is over (the arena moves while it grows). */
static int keep(struct replay *rp, const struct rabia_msg *m)
{
    if (rp->n == rp->cap) {
        uint32_t cap = rp->cap ? rp->cap * 2 : 256;
        struct rabia_msg *v = realloc(rp->msgs, cap * sizeof(*v));
        if (!v) return -ENOMEM;
        rp->msgs = v;
        rp->cap = cap;
    }
    struct rabia_msg c = *m;
    if (m->body_len) {
        size_t off = rp->arena.len;
        if (rabia_buf_append(&rp->arena, m->body, m->body_len)) return -ENOMEM;
        c.body = (const uint8_t *)(uintptr_t)off;
    } else {
        c.body = NULL;
    }
    rp->msgs[rp->n++] = c;
    return 0;
}

/* The slot an own batch was decided in, as far as the replay saw: 0 when
 * unknown (decided inside the snapshot, or long ago). */
static uint64_t decided_at(const struct replay *rp, uint64_t seq)
{
    uint32_t n = rp->n_recent < REPLAY_RECENT_OWN ? rp->n_recent : REPLAY_RECENT_OWN;
    for (uint32_t k = 0; k < n; k++)
        if (rp->recent[k].seq == seq) return rp->recent[k].slot;
    return 0;
}

/* An applied own batch is kept (for peers' FETCH, RABIA_EV_RESTORE value 1)
 * while a slot open at the crash could decide it again. */
static bool recent_own(const struct replay *rp, const struct rabia_msg *m, uint64_t applied)
{
    uint64_t at = decided_at(rp, m->id.seq);
    if (!at) at = rp->snap_slot; /* inside the snapshot: at most there */
    return at + 2ull * rp->window > applied;
}

/* Drop records the rebuilt state has passed: sent records of applied
 * slots, own batches applied (but recently). Keeps the list bounded by
 * what is open. */
static int prune(struct replay *rp)
{
    uint64_t applied = rabia_rsm_applied(rp->rsm);
    struct rabia_buf arena = {0};
    uint32_t k = 0;
    for (uint32_t i = 0; i < rp->n; i++) {
        struct rabia_msg m = rp->msgs[i];
        bool own = m.type == RABIA_MSG_BATCH && m.id.proxy == rp->self;
        bool drop = own ? rabia_rsm_batch_applied(rp->rsm, &m.id) && !recent_own(rp, &m, applied) : m.slot <= applied;
        if (drop) continue;
        if (m.body_len) {
            size_t off = arena.len;
            if (rabia_buf_append(&arena, rp->arena.data + (uintptr_t)m.body, m.body_len)) {
                rabia_buf_free(&arena);
                return -ENOMEM;
            }
            m.body = (const uint8_t *)(uintptr_t)off;
        }
        rp->msgs[k++] = m;
    }
    rp->n = k;
    rabia_buf_free(&rp->arena);
    rp->arena = arena;
    return 0;
}

/* The body a DECIDED_REF record of `slot` names (node.c, decided_by_ref):
 * this replica's BATCH record of it (own), or the SENT record of it it
 * proposed in that slot (another proxy's), kept in the arena. Searched
 * from the newest: the record is usually a few behind. NULL: none. */
static const uint8_t *ref_body(const struct replay *rp, const struct rabia_batch_id *id, uint64_t slot,
                               uint32_t *len)
{
    bool own = id->proxy == rp->self;
    for (uint32_t i = rp->n; i-- > 0;) {
        const struct rabia_msg *k = &rp->msgs[i];
        if (k->type != RABIA_MSG_BATCH || !k->has_id || !rabia_batch_id_eq(&k->id, id)) continue;
        if (!own && k->slot != slot) continue;
        if (!k->body_len) continue; /* cannot happen: a body record always has one */
        *len = k->body_len;
        return rp->arena.data + (uintptr_t)k->body;
    }
    return NULL;
}

int replay_record(struct replay *rp, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len, char *err,
                  size_t errlen)
{
    if (type == NODE_REC_RESERVE) { /* own seqs up to `slot` may have left with no BATCH record (node.c) */
        if (slot > rp->max_own_seq) rp->max_own_seq = slot;
        return 0;
    }
    struct rabia_msg m;
    int rc = rabia_msg_decode_unsummed(frame, len, &m); /* the log checked the record's checksum */
    if (rc) {
        snprintf(err, errlen, "a log record of slot %" PRIu64 " does not decode (%s): written by a faulty build? "
                 "Move the data dir aside and start this replica with --rejoin", slot, rabia_strerror(rc));
        return -EINVAL;
    }
    uint64_t applied = rabia_rsm_applied(rp->rsm);
    switch (type) {
    case NODE_REC_DECIDED_REF:
    case NODE_REC_DECIDED:
        if (m.type != RABIA_MSG_DECISION || m.slot != slot) break;
        if (type == NODE_REC_DECIDED_REF && (!m.value || !m.has_id || m.body_len)) break;
        if (slot <= applied) return 0;
        if (type == NODE_REC_DECIDED_REF && slot == applied + 1) {
            if (rabia_rsm_batch_applied(rp->rsm, &m.id)) {
                /* decided a second time: applied once already, a no-op now as
                 * it was then (its body record may be pruned) */
                m.body = NULL;
            } else if (!(m.body = ref_body(rp, &m.id, slot, &m.body_len))) {
                snprintf(err, errlen,
                         "the log's decision of slot %" PRIu64 " names batch %u.%" PRIu64 ".%" PRIu64 " but no "
                         "earlier record of the log holds its body (released by a faulty build, or the segment "
                         "holding it was deleted by hand): move the data dir aside and start this replica with "
                         "--rejoin",
                         slot, m.id.proxy + 1u, m.id.incarnation, m.id.seq);
                return -EUCLEAN;
            }
        }
        if (slot != applied + 1) {
            snprintf(err, errlen,
                     "the log holds slot %" PRIu64 " but the state ends at slot %" PRIu64
                     ": the snapshot file covering the slots between is missing (deleted by hand?) or was "
                     "skipped as damaged (a warning above says so; the log was released up to it). Restore it, "
                     "or move the data dir aside and start this replica with --rejoin",
                     slot, applied);
            return -EUCLEAN;
        }
        rc = rabia_rsm_apply_batch(rp->rsm, slot, m.value ? &m.id : NULL, m.value ? m.body : NULL,
                                   m.value ? m.body_len : 0, NULL, NULL);
        if (rc) {
            snprintf(err, errlen, "replaying slot %" PRIu64 " from the log: %s", slot, rabia_strerror(rc));
            return rc;
        }
        rp->applied_records++;
        if (type == NODE_REC_DECIDED_REF) rp->applied_by_ref++;
        if (m.value && m.id.proxy == rp->self) {
            rp->recent[rp->n_recent % REPLAY_RECENT_OWN].seq = m.id.seq;
            rp->recent[rp->n_recent % REPLAY_RECENT_OWN].slot = slot;
            rp->n_recent++;
        }
        if (rp->n >= rp->prune_at) {
            if (prune(rp)) return -ENOMEM;
            rp->prune_at = rp->n * 2 + 1024;
        }
        return 0;
    case NODE_REC_SENT:
        if (m.type == RABIA_MSG_HORIZON_REQ) { /* this log began with a recovery (rule 2) */
            rp->rejoin_pending = true;
            return 0;
        }
        if (m.type == RABIA_MSG_HORIZON && m.slot == slot) { /* ... which ended here */
            rp->rejoin_pending = false;
            rp->horizon_seen = true;
            if (slot > rp->horizon) rp->horizon = slot;
            return 0;
        }
        if (m.type == RABIA_MSG_BATCH && m.has_id && m.id.proxy != rp->self) {
            /* another proxy's batch this replica proposed in slot `slot` */
            if (slot <= applied) return 0;
            m.slot = slot;
            m.from = rp->self;
            return keep(rp, &m) ? -ENOMEM : 0;
        }
        if (m.type < RABIA_MSG_PROPOSAL || m.type > RABIA_MSG_VOTE || m.slot != slot) break;
        if (slot <= applied) return 0;
        m.from = rp->self;
        return keep(rp, &m) ? -ENOMEM : 0;
    case NODE_REC_BATCH:
        if (m.type != RABIA_MSG_BATCH || !m.has_id || m.id.seq != slot) break;
        if (m.id.proxy != rp->self) break;
        if (m.id.seq > rp->max_own_seq) rp->max_own_seq = m.id.seq;
        m.from = rp->self;
        return keep(rp, &m) ? -ENOMEM : 0;
    default:
        break;
    }
    snprintf(err, errlen, "a log record (type %u, slot %" PRIu64 ", %s) is not what this build writes: move the "
             "data dir aside and start this replica with --rejoin", type, slot, rabia_msg_type_name(m.type));
    return -EINVAL;
}

int replay_finish(struct replay *rp, uint64_t batch_incarnation, struct node_restore *out)
{
    int rc = prune(rp);
    if (rc) return rc;
    /* The log keeps the segment of the newest own BATCH only while the
     * core's next seq (a Lamport clock that follows peers' seqs) has not
     * passed it; once released, the restored state still knows which own
     * seqs were applied. Numbering the next batch at or below them reused
     * an applied id: the apply layer skipped that batch as a duplicate and
     * its clients were never answered (integration.crash_all, 1 run in
     * 4-10). */
    uint64_t high = rabia_rsm_batch_high(rp->rsm, rp->self, batch_incarnation);
    if (high > rp->max_own_seq) rp->max_own_seq = high;
    /* own batches first (proposals name them), then the sent records in log
     * order; a decided own batch only moves the core's next sequence number
     * past the highest one ever sent */
    struct rabia_msg *v = calloc((size_t)rp->n + 1, sizeof(*v));
    if (!v) return -ENOMEM;
    uint32_t k = 0;
    bool have_max = false;
    for (uint32_t i = 0; i < rp->n; i++) {
        if (rp->msgs[i].type != RABIA_MSG_BATCH || rp->msgs[i].id.proxy != rp->self) continue;
        v[k] = rp->msgs[i];
        if (rabia_rsm_batch_applied(rp->rsm, &v[k].id)) v[k].value = 1; /* kept for FETCH only */
        if (v[k].id.seq == rp->max_own_seq) have_max = true;
        k++;
    }
    if (rp->max_own_seq && !have_max) {
        v[k++] = (struct rabia_msg){.type = RABIA_MSG_BATCH, .from = rp->self, .has_id = 1, .value = 1,
                                    .id = {.proxy = rp->self, .incarnation = batch_incarnation,
                                           .seq = rp->max_own_seq}};
    }
    for (uint32_t i = 0; i < rp->n; i++) /* in log order: other proxies' bodies before the proposals naming them */
        if (rp->msgs[i].type != RABIA_MSG_BATCH || rp->msgs[i].id.proxy != rp->self) v[k++] = rp->msgs[i];
    RABIA_ASSERT(k <= rp->n + 1);
    for (uint32_t i = 0; i < k; i++)
        if (v[i].body_len) v[i].body = rp->arena.data + (uintptr_t)v[i].body;
    free(rp->msgs);
    rp->msgs = v;
    rp->n = rp->cap = k;
    out->msgs = v;
    out->n = k;
    out->applied = rabia_rsm_applied(rp->rsm);
    out->horizon = rp->horizon;
    return 0;
}
