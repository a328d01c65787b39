/* What a step emits (sends, persist records, traces, anomalies) and the
 * common coin. */
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
/* helpers */

void core_tracef_on(struct rabia_core *c, uint64_t slot, const char *fmt, ...)
{
    RABIA_ASSERT(c->trace);
    char line[256];
    int k = snprintf(line, sizeof line, "r%u ", c->cfg.self);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + k, sizeof line - (size_t)k, fmt, ap);
    va_end(ap);
    c->trace(c->trace_ctx, slot, line);
}

/* A peer broke a protocol rule (or, in tests, a planted bug did): count it,
 * remember what, never trust it. */
void core_anomaly(struct rabia_core *c, const char *what)
{
    c->stats.anomalies++;
    c->last_anomaly = what;
}

const char *core_idstr(const struct rabia_batch_id *id, bool has, char *buf, size_t len)
{
    if (!has) return "none";
    snprintf(buf, len, "%u.%llu.%llu", id->proxy, (unsigned long long)id->incarnation,
             (unsigned long long)id->seq);
    return buf;
}

int rabia_coin(uint64_t cluster_seed, uint64_t epoch, uint64_t slot, uint32_t phase)
{
    uint64_t in[3] = {epoch, slot, phase};
    return (int)(XXH64(in, sizeof in, cluster_seed) >> 63);
}

int core_coin(struct rabia_core *c, uint64_t slot, uint32_t phase)
{
    uint64_t seed = c->cfg.cluster_seed;
#ifdef RABIA_TEST_BUGS
    if (c->cfg.bugs & RABIA_BUG_COIN_PER_REPLICA) seed ^= 0x9E3779B97F4A7C15ull * (c->cfg.self + 1);
#endif
    return rabia_coin(seed, c->cfg.epoch, slot, phase);
}

int core_key_cmp(const struct rabia_batch_id *a, const struct rabia_batch_id *b)
{
    if (a->seq != b->seq) return a->seq < b->seq ? -1 : 1;
    if (a->proxy != b->proxy) return a->proxy < b->proxy ? -1 : 1;
    if (a->incarnation != b->incarnation) return a->incarnation < b->incarnation ? -1 : 1;
    return 0;
}

struct rabia_send *core_emit(struct rabia_core *c, uint8_t to, uint8_t type, uint64_t slot)
{
    struct rabia_update *o = c->out;
    if (o->n_sends >= c->sends_cap) {
        c->stats.sends_dropped++;
        return NULL;
    }
    struct rabia_send *s = &c->sends[o->n_sends++];
    memset(s, 0, sizeof(*s));
    s->to = to;
    s->msg.type = type;
    s->msg.from = c->cfg.self;
    s->msg.slot = slot;
    if (slot > c->max_seen && type >= RABIA_MSG_PROPOSAL && type <= RABIA_MSG_DECISION) c->max_seen = slot;
    return s;
}

/* Persistence contract rule 1: record a message this replica sends for
 * the first time and must never contradict after a restart. Recorded even
 * when core_emit() had no room for the send itself: the content is decided the
 * moment it is chosen (p->sent is set), and its retransmission must find it
 * durable. */
void core_persist(struct rabia_core *c, const struct rabia_msg *m)
{
    struct rabia_update *o = c->out;
    RABIA_ASSERT(o->n_persist < c->sends_cap); /* one per first send, at most sends_cap per step */
    RABIA_ASSERT(m->type == RABIA_MSG_BATCH || m->type == RABIA_MSG_HORIZON ||
                 (m->slot >= c->next_apply && m->type >= RABIA_MSG_PROPOSAL && m->type <= RABIA_MSG_VOTE));
    c->persist[o->n_persist] = *m;
    c->persist[o->n_persist].from = c->cfg.self;
    o->n_persist++;
}
