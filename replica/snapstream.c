/* Snapshot transfers between replicas, the rules without the I/O
 * (snapstream.h): rabiad's transfer.c and the simulator drive this. */
#include "snapstream.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "invariant.h"
#include "node.h"
#include "rabia/replica.h"
#include "rsm.h"

static void note(struct snapstream *s, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(struct snapstream *s, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->env.note(s->env.ctx, level, msg);
}

void snapstream_init(struct snapstream *s, const struct snapstream_cfg *cfg, const struct snapstream_env *env,
                     uint8_t self, uint8_t n)
{
    RABIA_ASSERT(n >= 1 && n <= RABIA_MAX_REPLICAS && self < n);
    RABIA_ASSERT(cfg->chunk > 0 && cfg->per_turn >= cfg->chunk && cfg->queued > 0 && cfg->max > 0 &&
                 cfg->stall_us > 0 && cfg->yield_us > 0 && cfg->decline_backoff_us > 0);
    /* a capped sender still sends a chunk well within the receiver's stall
     * limit, and rate * 1 s cannot overflow (refill) */
    RABIA_ASSERT(!cfg->rate || (cfg->rate <= SNAPSTREAM_RATE_MAX &&
                                (uint64_t)cfg->chunk * 1000000u / cfg->rate < cfg->stall_us / 2));
    RABIA_ASSERT(env->now_us && env->note && env->link_ready && env->link_pending && env->source_open &&
                 env->source_read && env->source_close && env->send && env->space_free && env->file_begin &&
                 env->file_append && env->file_commit && env->file_abort && env->install);
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->env = *env;
    s->self = self;
    s->n = n;
}

void snapstream_set_node(struct snapstream *s, struct rabia_node *node) { s->node = node; }

/* The rate cap: a token bucket shared by every transfer out of this
 * replica. It holds at most a twentieth of a second's bytes, or one chunk
 * if that is more, so a transfer that waited sends no burst beyond that. */
static uint64_t rate_burst(const struct snapstream *s)
{
    uint64_t b = s->cfg.rate / 20;
    return b > s->cfg.chunk ? b : s->cfg.chunk;
}

/* The slots this replica applies per second, sustained: the lower of the
 * last two windows of at least a second each (the rate cap's forecast
 * below). A burst, such as the null slots a rejoining replica's horizon
 * makes its peers decide, is not taken for the load. */
static void slot_rate_update(struct snapstream *s, uint64_t now, uint64_t applied)
{
    if (!s->win_us || applied < s->win_slot) { /* first turn, or a snapshot installed below it */
        s->win_us = now;
        s->win_slot = applied;
        return;
    }
    if (now - s->win_us < 1000000u) return;
    uint64_t r = (applied - s->win_slot) * 1000000u / (now - s->win_us);
    s->slot_rate = r < s->win_last ? r : s->win_last;
    s->win_last = r;
    s->win_us = now;
    s->win_slot = applied;
}

/* Transfers under the cap at once, at most. They share one bucket: k of
 * them served in turn each get a chunk every k chunk times, and the
 * receiver drops a transfer that brought no byte for stall_us (its limit
 * is the same setting as ours); half of it is left for the link's own
 * delay. A wanted transfer beyond this waits to start, which costs its
 * peer nothing meanwhile (no file, no receiving slot). Without the bound,
 * four transfers out of one simulated replica at 256 KiB/s in 4 KiB
 * chunks each waited past the 100 ms stall limit, were dropped and began
 * again from byte 0, for good (rabia_sim --seed 1603676 --mix all). */
static uint32_t capped_max(const struct snapstream *s)
{
    RABIA_ASSERT(s->cfg.rate);
    uint64_t chunk_us = (uint64_t)s->cfg.chunk * 1000000u / s->cfg.rate;
    uint64_t k = chunk_us ? s->cfg.stall_us / 2 / chunk_us : RABIA_MAX_REPLICAS;
    RABIA_ASSERT(k >= 1); /* snapstream_init: a chunk takes under stall_us / 2 */
    return k < RABIA_MAX_REPLICAS ? (uint32_t)k : RABIA_MAX_REPLICAS;
}

static uint32_t capped_running(const struct snapstream *s)
{
    uint32_t k = 0;
    for (uint8_t p = 0; p < s->n; p++) k += s->tx[p].active && !s->tx[p].uncapped;
    return k;
}

/* Whether holding peer p's transfer to the cap would bring its snapshot to
 * the peer too far behind to catch up: at the slot rate measured, more
 * than 3/4 of log-retain slots past the snapshot by the time its last byte
 * leaves. The peer would install it, find the slots after it gone from
 * every peer's retained log, and need another snapshot, at the same rate,
 * for ever (bench/transfer_load.sh: 512 MiB at 16 MiB/s under 100 k SET/s).
 * Such a transfer goes at full speed, with one line saying why. */
static bool rate_lifted(struct snapstream *s, uint8_t p, uint64_t applied)
{
    struct snapstream_tx *t = &s->tx[p];
    if (t->uncapped) return true;
    if (!s->cfg.log_retain) return false;
    uint64_t left = t->total - t->off;
    uint32_t k = capped_running(s); /* this one among them: they share the rate */
    RABIA_ASSERT(t->active && k >= 1);
    uint64_t rate = s->cfg.rate / k;
    uint64_t more = s->slot_rate * (left / rate) + s->slot_rate * (left % rate) / rate;
    uint64_t behind = (applied > t->slot ? applied - t->slot : 0) + more;
    if (behind <= s->cfg.log_retain / 4 * 3) return false;
    t->uncapped = true;
    s->st.rate_lifted++;
    note(s, RABIA_LOG_WARN,
         "snapshot of slot %" PRIu64 " for replica %u: at transfer-rate %" PRIu64 " bytes/s (%u transfers share "
         "it) its last %" PRIu64 " bytes take %" PRIu64 " s, and at %" PRIu64 " slots/s it would arrive %" PRIu64
         " slots behind, past "
         "what log-retain (%" PRIu64 ") keeps for its catch-up: sent at full speed (raise log-retain, or "
         "transfer-rate)",
         t->slot, p + 1, s->cfg.rate, k, left, left / rate, s->slot_rate, behind, s->cfg.log_retain);
    return true;
}

static void rate_refill(struct snapstream *s, uint64_t now)
{
    if (!s->cfg.rate || now <= s->credit_us) return;
    uint64_t dt = now - s->credit_us;
    if (dt > 1000000u) dt = 1000000u; /* rate <= SNAPSTREAM_RATE_MAX: no overflow */
    uint64_t add = s->cfg.rate * dt / 1000000u, cap = rate_burst(s);
    if (s->credit + add >= cap) { /* full: time beyond it is not saved up */
        s->credit = cap;
        s->credit_us = now;
    } else { /* the time of the bytes credited; a fraction of a byte waits for the next refill */
        s->credit += add;
        s->credit_us = now - dt + add * 1000000u / s->cfg.rate;
    }
    RABIA_ASSERT(s->credit <= cap && s->credit_us <= now);
}

static void tx_end(struct snapstream *s, uint8_t p)
{
    RABIA_ASSERT(s->tx[p].active);
    s->tx[p].active = false;
    s->tx[p].pin_until = s->env.now_us(s->env.ctx) + s->cfg.pin_us; /* the peer catches up after it */
    s->env.source_close(s->env.ctx, p);
}

uint64_t snapstream_pin(const struct snapstream *s, uint64_t now)
{
    uint64_t pin = 0;
    for (uint8_t p = 0; p < s->n; p++) {
        const struct snapstream_tx *t = &s->tx[p];
        if (!t->slot || (!t->active && now >= t->pin_until)) continue;
        if (!pin || t->slot + 1 < pin) pin = t->slot + 1;
    }
    return pin;
}

static void rx_drop_at(struct snapstream *s, uint8_t from, int level, const char *why)
{
    if (!s->rx[from].active) return;
    note(s, level, "snapshot from replica %u dropped at %" PRIu64 " of %" PRIu64 " bytes: %s", from + 1,
         s->rx[from].got, s->rx[from].total, why);
    s->env.file_abort(s->env.ctx, from);
    s->rx[from].active = false;
    s->st.dropped++;
}

static void rx_drop(struct snapstream *s, uint8_t from, const char *why) { rx_drop_at(s, from, RABIA_LOG_WARN, why); }

void snapstream_end_all(struct snapstream *s)
{
    for (uint8_t p = 0; p < s->n; p++) {
        if (s->tx[p].active) tx_end(s, p);
        s->tx[p].wanted = false;
        if (s->rx[p].active) s->env.file_abort(s->env.ctx, p);
        s->rx[p].active = false;
    }
}

void snapstream_want(struct snapstream *s, uint8_t peer)
{
    RABIA_ASSERT(peer < s->n && peer != s->self);
    if (s->tx[peer].active) return; /* one transfer per peer at a time */
    if (s->env.now_us(s->env.ctx) < s->tx[peer].quiet_until) return; /* it declined one: it asks again later */
    s->tx[peer].wanted = true;
}

void snapstream_link_closed(struct snapstream *s, uint8_t from)
{
    if (from >= s->n) return;
    rx_drop(s, from, "the peer's connection closed (it sends the snapshot again from the start)");
}

/* Whether peer p has a transfer that may send this turn: a wanted one
 * starts once its source is ready (under the cap, while fewer than
 * capped_max run); one whose link went down ends (the peer asks again
 * once it is back). */
static bool tx_live(struct snapstream *s, uint8_t p)
{
    struct snapstream_tx *t = &s->tx[p];
    if (!t->active && !t->wanted) return false;
    if (!s->env.link_ready(s->env.ctx, p)) {
        if (t->active) tx_end(s, p);
        t->wanted = t->cap_queued = false;
        return false;
    }
    if (t->active) return true;
    if (s->cfg.rate && capped_running(s) >= capped_max(s)) { /* next turn after one ends */
        if (!t->cap_queued) s->st.cap_queued++;
        t->cap_queued = true;
        return false;
    }
    t->cap_queued = false; /* its turn: a source not ready yet is no reason to turn again at once */
    uint64_t slot = 0, total = 0;
    if (s->env.source_open(s->env.ctx, p, &slot, &total)) return false; /* not yet: next turn */
    RABIA_ASSERT(slot > 0 && total > 0);
    *t = (struct snapstream_tx){.active = true, .slot = slot, .total = total, .served = ++s->served_seq,
                                .declined_slot = t->declined_slot, .completed_slot = t->completed_slot};
    s->st.sent++;
    note(s, RABIA_LOG_INFO, "sending snapshot at slot %" PRIu64 " (%" PRIu64 " bytes) to replica %u", slot, total,
         p + 1);
    return true;
}

enum tx_step { TX_SENT, TX_WAIT, TX_CAPPED, TX_ENDED };

/* One chunk to peer p, if its link takes it and the cap allows. The link
 * is asked each time: a send may close it (rabiad closes a connection
 * whose output buffer is full). */
static enum tx_step tx_chunk(struct snapstream *s, uint8_t p, uint64_t applied, uint32_t *sent)
{
    struct snapstream_tx *t = &s->tx[p];
    RABIA_ASSERT(t->active && t->off < t->total);
    if (!s->env.link_ready(s->env.ctx, p) || s->env.link_pending(s->env.ctx, p) >= s->cfg.queued) return TX_WAIT;
    uint64_t left = t->total - t->off;
    uint32_t n = left < s->cfg.chunk ? (uint32_t)left : s->cfg.chunk;
    bool capped = s->cfg.rate && !rate_lifted(s, p, applied);
    if (capped && s->credit < n) { /* the cap: wait for the bytes' time */
        uint64_t wait = (n - s->credit) * 1000000u / s->cfg.rate + 1;
        if (!s->rate_due || s->credit_us + wait < s->rate_due) s->rate_due = s->credit_us + wait;
        if (!t->held) s->st.rate_waits++; /* once per chunk, however many turns it waits */
        t->held = true;
        return TX_CAPPED;
    }
    char why[512] = "";
    const uint8_t *body = s->env.source_read(s->env.ctx, p, t->off, n, why, sizeof why);
    if (!body) {
        note(s, RABIA_LOG_WARN, "snapshot for replica %u: reading its source at %" PRIu64 ": %s", p + 1, t->off, why);
        tx_end(s, p);
        return TX_ENDED;
    }
    struct rabia_msg m = {.type = RABIA_MSG_SNAP_CHUNK, .from = s->self, .slot = t->slot, .u64 = t->off,
                          .u64b = t->total, .body = body, .body_len = n};
    s->env.send(s->env.ctx, p, &m);
    t->off += n;
    t->held = false;
    t->served = ++s->served_seq;
    *sent = n;
    s->st.bytes_sent += n;
    if (capped) s->credit -= n;
    RABIA_ASSERT(t->off <= t->total);
    if (t->off < t->total) return TX_SENT;
    t->completed_slot = t->slot;
    tx_end(s, p);
    return TX_ENDED;
}

/* This turn's chunks: at most per_turn bytes to each peer, while its link
 * takes them. Under the cap one chunk at a time to the transfer served
 * longest ago, so the shared bucket goes round the transfers in turn (a
 * rotation by loop turn instead let one wait many chunk times when turns
 * came at the wrong rhythm); a transfer the cap was lifted for takes no
 * credit and keeps sending. */
static void tx_send(struct snapstream *s, uint64_t applied)
{
    uint64_t sent[RABIA_MAX_REPLICAS] = {0};
    bool done[RABIA_MAX_REPLICAS] = {false};
    for (uint8_t p = 0; p < s->n; p++) done[p] = p == s->self || !s->tx[p].active;
    /* each pass sends a chunk or retires a peer */
    uint64_t bound = (uint64_t)s->n * (s->cfg.per_turn / s->cfg.chunk + 2);
    for (uint64_t pass = 0;; pass++) {
        RABIA_ASSERT(pass <= bound);
        int best = -1;
        for (uint8_t p = 0; p < s->n; p++)
            if (!done[p] && (best < 0 || s->tx[p].served < s->tx[best].served)) best = p;
        if (best < 0) return;
        uint8_t p = (uint8_t)best;
        uint32_t n = 0;
        enum tx_step r = tx_chunk(s, p, applied, &n);
        sent[p] += n;
        if (r != TX_SENT || sent[p] >= s->cfg.per_turn) done[p] = true;
        if (r == TX_CAPPED) /* the rest wait their turn too (a shorter last chunk would jump the queue) */
            for (uint8_t q = 0; q < s->n; q++) done[q] |= !s->tx[q].uncapped;
    }
}

static void rx_decline(struct snapstream *s, uint8_t from, uint64_t slot);

/* The slot this replica's state has applied (the driver's view if it
 * gives one, else the node's). */
static uint64_t applied_slot(const struct snapstream *s)
{
    return s->env.applied ? s->env.applied(s->env.ctx) : s->node ? rabia_rsm_applied(node_rsm(s->node)) : 0;
}

/* Whether a transfer of `slot` would bring nothing: the state (or the
 * log, through the core) is there already. */
static bool slot_reached(const struct snapstream *s, uint64_t slot)
{
    RABIA_ASSERT(s->node);
    return slot <= applied_slot(s) || slot < rabia_core_next_apply(node_core(s->node));
}

uint64_t snapstream_turn(struct snapstream *s)
{
    uint64_t now = s->env.now_us(s->env.ctx);
    uint64_t applied = applied_slot(s);
    rate_refill(s, now);
    slot_rate_update(s, now, applied);
    if (applied > s->progress_applied) {
        if (s->progress_applied) s->progress_us = now; /* not the first look */
        s->progress_applied = applied;
    } else if (applied < s->progress_applied) { /* a new apply layer (a restart in the simulator) */
        s->progress_applied = applied;
    }
    s->rate_due = 0;
    for (uint8_t p = 0; p < s->n; p++)
        if (p != s->self) (void)tx_live(s, p);
    tx_send(s, applied);
    for (uint8_t p = 0; p < s->n; p++) {
        if (p == s->self || !s->rx[p].active) continue;
        /* now > last: no unsigned wrap when the clock is behind the last chunk */
        if (now > s->rx[p].last_us && now - s->rx[p].last_us >= s->cfg.stall_us) {
            rx_drop(s, p, "no bytes for the stall limit (a sender that stopped sending)");
        } else if (s->rx[p].slot <= applied) { /* the log or another snapshot got here first */
            uint64_t slot = s->rx[p].slot;
            rx_drop_at(s, p, RABIA_LOG_INFO, "this replica caught up past it meanwhile");
            rx_decline(s, p, slot);
        }
    }
    /* a transfer that ended this turn leaves room for one waiting to start */
    if (s->cfg.rate && capped_running(s) < capped_max(s))
        for (uint8_t p = 0; p < s->n; p++)
            if (p != s->self && s->tx[p].wanted && s->tx[p].cap_queued && !s->tx[p].active) return now + 1;
    if (!s->rate_due) return 0;
    return s->rate_due > now ? s->rate_due : now + 1;
}

/* The transfer of `slot` from `from` is not taken here: its sender stops. */
static void rx_decline(struct snapstream *s, uint8_t from, uint64_t slot)
{
    s->st.declined++;
    if (!s->env.link_ready(s->env.ctx, from)) return; /* it streams on; the chunks are ignored */
    struct rabia_msg m = {.type = RABIA_MSG_SNAP_CHUNK, .from = s->self, .slot = slot};
    s->env.send(s->env.ctx, from, &m);
}

/* A decline whose reason may pass within yield_us (this replica was
 * applying slots: the log may be bringing it up to date, or that was the
 * backlog of a pause and nothing follows): the decline, then a second
 * message asking to be offered again after yield_us instead of
 * decline_backoff_us. Without it a replica resumed after a pause (SIGSTOP,
 * a stalled VM) behind every peer's retained log declined both peers'
 * offers while it drained its backlog and then waited 10 s for the next
 * one. The second message is a chunk that ends where it starts (offset =
 * total = 1, no bytes): valid on the wire and ignored by builds before it,
 * which keep the long backoff. */
static void rx_decline_soon(struct snapstream *s, uint8_t from, uint64_t slot)
{
    rx_decline(s, from, slot);
    if (!s->env.link_ready(s->env.ctx, from)) return;
    struct rabia_msg m = {.type = RABIA_MSG_SNAP_CHUNK, .from = s->self, .slot = slot, .u64 = 1, .u64b = 1};
    s->env.send(s->env.ctx, from, &m);
}

/* The peer that declined our transfer of m->slot may take one after
 * yield_us (rx_decline_soon): a shorter quiet period, never a longer one. */
static void tx_retry_soon(struct snapstream *s, uint8_t p, const struct rabia_msg *m, uint64_t now)
{
    RABIA_ASSERT(p < s->n && p != s->self && s->cfg.yield_us > 0);
    struct snapstream_tx *t = &s->tx[p];
    if (t->declined_slot != m->slot || t->quiet_until <= now + s->cfg.yield_us) return;
    t->quiet_until = now + s->cfg.yield_us;
    s->st.retry_soon++;
}

/* A peer declined our transfer of m->slot: stop it, offer it nothing for a while. */
static void tx_declined(struct snapstream *s, uint8_t p, const struct rabia_msg *m, uint64_t now)
{
    s->tx[p].quiet_until = now + s->cfg.decline_backoff_us;
    s->tx[p].declined_slot = m->slot;
    s->tx[p].wanted = false;
    if (!s->tx[p].active || s->tx[p].slot != m->slot) return; /* finished, or another transfer: nothing to stop */
    note(s, RABIA_LOG_INFO,
         "replica %u declined the snapshot at slot %" PRIu64 " (it takes another, or caught up): stopped after %" PRIu64
         " of %" PRIu64 " bytes",
         p + 1, m->slot, s->tx[p].off, s->tx[p].total);
    s->st.stopped++;
    tx_end(s, p);
}

/* Whether every peer this replica is connected to offered it a snapshot
 * within yield_us. A peer offers one only when its log cannot bring the
 * slots asked for (replica/node.c skips the offer while it serves them
 * from its log), so then nobody is catching this replica up through a
 * log, whatever it is applying now. */
static bool all_offered(const struct snapstream *s, uint64_t now)
{
    for (uint8_t q = 0; q < s->n; q++) {
        if (q == s->self || !s->env.link_ready(s->env.ctx, q)) continue;
        if (!s->offer_us[q] || now - s->offer_us[q] >= s->cfg.yield_us) return false;
    }
    return true;
}

/* A chunk at offset 0: a new transfer, if this replica wants it. */
static void rx_begin(struct snapstream *s, uint8_t from, const struct rabia_msg *m, uint64_t now)
{
    if (s->rx[from].active) { /* a new transfer replaces an unfinished one */
        s->env.file_abort(s->env.ctx, from);
        s->rx[from].active = false;
    }
    if (m->slot >= RABIA_SLOT_LIMIT) {
        /* Installed, its slot became the apply layer's and the core's: at
         * 2^64 - 1 the core's next slot wrapped to 0, and the replica applied
         * nothing ever again, restarts included (its snapshot file holds
         * the slot; found by review) */
        note(s, RABIA_LOG_WARN,
             "snapshot from replica %u refused: slot %" PRIu64 " is past any slot a cluster reaches (2^62): a "
             "faulty or forged peer",
             from + 1, m->slot);
        rx_decline(s, from, m->slot);
        return;
    }
    if (slot_reached(s, m->slot)) {
        rx_decline(s, from, m->slot); /* caught up meanwhile */
        return;
    }
    if (m->u64b > s->cfg.max || m->u64b == 0) { /* 0 with a body: malformed (the codec refuses it too) */
        note(s, RABIA_LOG_WARN, "snapshot from replica %u refused: %" PRIu64 " bytes announced, 1 to %" PRIu64,
             from + 1, m->u64b, s->cfg.max);
        rx_decline(s, from, m->slot);
        return;
    }
    /* Behind and applying slots now (a catch-up from a peer's log after an
     * earlier snapshot, or from the retained log): another snapshot would
     * cost the whole state again for what the log brings anyway. A replica
     * making no progress, or one that is level with what it has heard of,
     * takes it. */
    uint64_t applied_now = applied_slot(s);
    s->offer_us[from] = now ? now : 1;
    if (s->progress_us && now - s->progress_us < s->cfg.yield_us &&
        rabia_core_known_slot(node_core(s->node)) > applied_now + SNAPSTREAM_BEHIND && !all_offered(s, now)) {
        note(s, RABIA_LOG_INFO,
             "snapshot from replica %u at slot %" PRIu64 " declined: this replica is catching up through the log "
             "(applied %" PRIu64 "; offered again in %" PRIu64 " ms if it stops)",
             from + 1, m->slot, applied_now, s->cfg.yield_us / 1000);
        rx_decline_soon(s, from, m->slot);
        return;
    }
    for (uint8_t q = 0; q < s->n; q++) /* one transfer at a time; a stalled one gives way */
        if (q != from && s->rx[q].active && now - s->rx[q].last_us < s->cfg.yield_us) {
            rx_decline(s, from, m->slot);
            return;
        }
    char where[640] = "";
    uint64_t space = s->env.space_free(s->env.ctx, where, sizeof where);
    if (space < m->u64b) {
        note(s, RABIA_LOG_WARN,
             "snapshot from replica %u refused: %" PRIu64 " bytes announced, %" PRIu64
             " free in %s (free space there; the peer offers it again)",
             from + 1, m->u64b, space, where);
        rx_decline(s, from, m->slot);
        return;
    }
    char why[900] = "";
    if (s->env.file_begin(s->env.ctx, from, m->slot, m->u64b, why, sizeof why)) {
        note(s, RABIA_LOG_WARN, "snapshot from replica %u not received: %s", from + 1, why);
        rx_decline(s, from, m->slot);
        return;
    }
    s->rx[from] = (struct snapstream_rx){.active = true, .slot = m->slot, .total = m->u64b, .last_us = now};
    s->st.received++;
    note(s, RABIA_LOG_INFO, "receiving a snapshot at slot %" PRIu64 " (%" PRIu64 " bytes) from replica %u", m->slot,
         m->u64b, from + 1);
}

void snapstream_receive(struct snapstream *s, uint8_t from, const struct rabia_msg *m)
{
    RABIA_ASSERT(m->type == RABIA_MSG_SNAP_CHUNK);
    if (from >= s->n || from == s->self) return; /* a peer index the driver checked; never trusted to crash us */
    uint64_t now = s->env.now_us(s->env.ctx);
    if (m->u64 == 0 && m->u64b == 0 && m->body_len == 0) { /* no transfer announces 0 bytes: a decline */
        tx_declined(s, from, m, now);
        return;
    }
    if (m->u64 == 1 && m->u64b == 1 && m->body_len == 0) { /* no sender sends an empty chunk: retry soon */
        tx_retry_soon(s, from, m, now);
        return;
    }
    if (m->u64 == 0) rx_begin(s, from, m, now);
    struct snapstream_rx *rx = &s->rx[from];
    if (!rx->active || m->slot != rx->slot || m->u64 != rx->got || m->u64b != rx->total) return;
    if (m->body_len == 0) { /* a sender never sends one: progress is bytes, not chunks */
        rx_drop(s, from, "an empty chunk");
        return;
    }
    if (m->body_len > rx->total - rx->got) {
        rx_drop(s, from, "a chunk past the size announced");
        return;
    }
    rx->last_us = now;
    char why[900] = "";
    if (s->env.file_append(s->env.ctx, from, m->body, m->body_len, why, sizeof why)) {
        rx_drop(s, from, why);
        return;
    }
    rx->got += m->body_len;
    if (rx->got < rx->total) return;
    rx->active = false;
    /* Another peer's transfer of this slot (one that took over while this
     * one idled) or the log may have got here first, since the last turn
     * looked. Committing would rename this file over the snapshot file
     * the replica now has, and the install's refusal (-EALREADY) then
     * removed it: a replica whose log does not reach back past that slot
     * (found by review; test_snapstream test_stale_same_slot). */
    if (slot_reached(s, rx->slot)) {
        s->env.file_abort(s->env.ctx, from);
        note(s, RABIA_LOG_INFO,
             "snapshot from replica %u at slot %" PRIu64 " not installed: this replica got there meanwhile", from + 1,
             rx->slot);
        s->st.dropped++;
        return;
    }
    /* A file that does not verify or install is declined: the sender then
     * makes a new snapshot rather than offer the same one again (its
     * newest file, damaged on its disk, went whole to this replica and
     * failed here again, transfer after transfer: found by review). A local
     * failure (fsync) costs the sender that snapshot and 10 s, no more. */
    if (s->env.file_commit(s->env.ctx, from, why, sizeof why)) {
        note(s, RABIA_LOG_WARN, "snapshot from replica %u not installed: %s", from + 1, why);
        s->st.dropped++;
        rx_decline(s, from, rx->slot);
        return;
    }
    int rc = s->env.install(s->env.ctx, from, rx->slot);
    if (rc == 0) s->st.installed++;
    else if (rc != -EALREADY) rx_decline(s, from, rx->slot); /* -EALREADY: caught up meanwhile */
    /* its log brings the slots after this one now: its offer of the
     * transfer just installed says nothing about that (all_offered) */
    s->offer_us[from] = 0;
}

bool snapstream_receiving(const struct snapstream *s, uint8_t *from)
{
    for (uint8_t p = 0; p < s->n; p++)
        if (s->rx[p].active) {
            if (from) *from = p;
            return true;
        }
    return false;
}

bool snapstream_sending(const struct snapstream *s)
{
    for (uint8_t p = 0; p < s->n; p++)
        if (s->tx[p].active) return true;
    return false;
}
