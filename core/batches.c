/* Batch bodies the core holds (the batch table and its index), which
 * batches are known decided (per-proxy trackers) and the pending queues
 * each proxy's batches wait in (the SMR layer's input). */
#include "rabia/core.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL /* small fixed inputs: let the compiler inline */
#include <xxhash.h>

#include "core_internal.h"
#include "invariant.h"

/* ------------------------------------------------------------------ */
/* batch table */

static uint32_t id_hash(const struct rabia_batch_id *id)
{
    uint64_t in[3] = {id->incarnation, id->seq, id->proxy};
    return (uint32_t)XXH64(in, sizeof in, 0);
}

int32_t core_bt_find(const struct rabia_core *c, const struct rabia_batch_id *id)
{
    uint32_t h = id_hash(id) & c->idx_mask;
    for (uint32_t i = 0; i <= c->idx_mask; i++) {
        int32_t e = c->idx[(h + i) & c->idx_mask];
        if (e < 0) return -1;
        if (rabia_batch_id_eq(&c->bt[e].id, id)) return e;
    }
    return -1;
}

static void idx_remove(struct rabia_core *c, int32_t e)
{
    uint32_t i = id_hash(&c->bt[e].id) & c->idx_mask;
    while (c->idx[i] != e) {
        RABIA_ASSERT(c->idx[i] >= 0);
        i = (i + 1) & c->idx_mask;
    }
    /* backward-shift deletion keeps probe chains intact without tombstones */
    uint32_t j = i;
    for (;;) {
        c->idx[i] = -1;
        for (;;) {
            j = (j + 1) & c->idx_mask;
            if (c->idx[j] < 0) return;
            uint32_t k = id_hash(&c->bt[c->idx[j]].id) & c->idx_mask;
            /* move j to i unless its home k lies cyclically in (i, j] */
            if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
            break;
        }
        c->idx[i] = c->idx[j];
        i = j;
    }
}

int32_t core_bt_alloc(struct rabia_core *c, const struct rabia_batch_id *id,
                        const uint8_t *body, uint32_t len)
{
    if (len > c->cfg.max_batch_bytes || c->bt_used >= c->bt_cap) return -1;
    RABIA_ASSERT(c->n_free > 0);
    int32_t e = c->free_list[--c->n_free]; /* most recently freed: warm memory */
    RABIA_ASSERT(!c->bt[e].used);
    struct bent *b = &c->bt[e];
    uint8_t *data = b->data;
    memset(b, 0, sizeof(*b));
    b->data = data;
    b->used = true;
    b->id = *id;
    b->len = len;
    if (len) memcpy(b->data, body, len);
    c->bt_used++;
    uint32_t h = id_hash(id) & c->idx_mask;
    while (c->idx[h] >= 0) h = (h + 1) & c->idx_mask;
    c->idx[h] = e;
    return e;
}

/* Free the entry if nothing holds it; deferred to the next step so that
 * bodies referenced by this step's output stay intact. */
void core_bt_maybe_free(struct rabia_core *c, int32_t e)
{
    struct bent *b = &c->bt[e];
    if (!b->used || b->zombie || b->in_pq || b->inflight || b->refs || b->pin_until >= c->next_apply) return;
    b->zombie = true;
    RABIA_ASSERT(c->n_zombies < c->bt_cap);
    c->zombies[c->n_zombies++] = e;
}

void core_bt_reap(struct rabia_core *c)
{
    for (uint32_t i = 0; i < c->n_zombies; i++) {
        int32_t e = c->zombies[i];
        struct bent *b = &c->bt[e];
        RABIA_ASSERT(b->used && b->zombie);
        if (b->in_pq || b->inflight || b->refs) { /* picked up again */
            b->zombie = false;
            continue;
        }
        idx_remove(c, e);
        b->used = false;
        b->zombie = false;
        c->bt_used--;
        c->free_list[c->n_free++] = e;
    }
    c->n_zombies = 0;
}

/* ------------------------------------------------------------------ */
/* decided-batch tracker and pending queues */

bool core_tr_decided(const struct rabia_core *c, const struct rabia_batch_id *id)
{
    const struct tracker *t = &c->tr[id->proxy];
    if (id->incarnation < t->incarnation) return true; /* obsolete life */
    if (id->incarnation > t->incarnation) return false;
    if (id->seq < t->base) return true;
    uint64_t d = id->seq - t->base;
    return d < 256 && (t->bits[d / 64] >> (d % 64) & 1);
}

void core_pq_remove(struct rabia_core *c, int32_t e)
{
    struct bent *b = &c->bt[e];
    if (!b->in_pq) return;
    struct pq *q = &c->pq[b->id.proxy];
    for (uint32_t i = 0; i < q->n; i++) {
        if (q->items[i] == e) {
            memmove(&q->items[i], &q->items[i + 1], (q->n - i - 1) * sizeof(int32_t));
            q->n--;
            break;
        }
    }
    b->in_pq = false;
    core_bt_maybe_free(c, e);
}

void core_tr_reset(struct rabia_core *c, uint8_t proxy, uint64_t incarnation)
{
    struct tracker *t = &c->tr[proxy];
    t->incarnation = incarnation;
    t->base = 1; /* sequence numbers start at 1 */
    memset(t->bits, 0, sizeof t->bits);
    /* batches of the proxy's earlier lives are dropped: their clients retry */
    struct pq *q = &c->pq[proxy];
    for (uint32_t i = 0; i < q->n;) {
        int32_t e = q->items[i];
        if (c->bt[e].id.incarnation < incarnation) core_pq_remove(c, e);
        else i++;
    }
}

void core_tr_mark(struct rabia_core *c, const struct rabia_batch_id *id)
{
    struct tracker *t = &c->tr[id->proxy];
    if (id->incarnation > t->incarnation) core_tr_reset(c, id->proxy, id->incarnation);
    if (id->incarnation != t->incarnation || id->seq < t->base) return;
    if (id->seq - t->base >= 256) { /* slide: far older seqs count as decided */
        uint64_t nb = id->seq - 255;
        uint64_t shift = nb - t->base;
        uint64_t nbits[4] = {0};
        for (uint64_t i = shift; i < 256; i++)
            if (t->bits[i / 64] >> (i % 64) & 1) nbits[(i - shift) / 64] |= 1ull << ((i - shift) % 64);
        memcpy(t->bits, nbits, sizeof nbits);
        t->base = nb;
    }
    uint64_t d = id->seq - t->base;
    t->bits[d / 64] |= 1ull << (d % 64);
    while (t->bits[0] & 1) { /* advance the base past the decided prefix */
        for (int i = 0; i < 4; i++) {
            t->bits[i] >>= 1;
            if (i < 3) t->bits[i] |= (t->bits[i + 1] & 1) << 63;
        }
        t->base++;
    }
}

bool core_pq_insert(struct rabia_core *c, int32_t e)
{
    struct bent *b = &c->bt[e];
    struct pq *q = &c->pq[b->id.proxy];
    if (q->n >= PQ_CAP(c)) return false;
    uint32_t i = q->n;
    while (i > 0) {
        const struct rabia_batch_id *p = &c->bt[q->items[i - 1]].id;
        if (p->incarnation < b->id.incarnation ||
            (p->incarnation == b->id.incarnation && p->seq < b->id.seq))
            break;
        i--;
    }
    memmove(&q->items[i + 1], &q->items[i], (q->n - i) * sizeof(int32_t));
    q->items[i] = e;
    q->n++;
    b->in_pq = true;
    return true;
}

/* The next batch of proxy p's queue that I am not proposing elsewhere. */
static int32_t pq_head(struct rabia_core *c, uint8_t p)
{
    struct pq *q = &c->pq[p];
    for (uint32_t i = 0; i < q->n; i++)
        if (!c->bt[q->items[i]].inflight) return q->items[i];
    return -1;
}

int32_t core_choose(struct rabia_core *c, uint64_t slot)
{
    if (c->cfg.policy == RABIA_POLICY_CLASSES) return pq_head(c, (uint8_t)(slot % c->cfg.n));
    int32_t best = -1;
    for (uint8_t p = 0; p < c->cfg.n; p++) {
        int32_t e = pq_head(c, p);
        if (e >= 0 && (best < 0 || core_key_cmp(&c->bt[e].id, &c->bt[best].id) < 0)) best = e;
    }
    return best;
}
