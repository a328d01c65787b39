/* Cross-replica state checks.
 *
 * Replicas that applied the same slots hold the same state: that is what
 * the log is for. A state machine that is not deterministic (an embedded
 * one that reads the clock or a random number in apply), a bug, memory or a
 * disk that changed bytes under a checksum's nose, or an operator who
 * copied one replica's data dir into another's make them differ, and
 * nothing in the protocol notices: every later slot applies to different
 * states, and each replica answers reads from its own. etcd checks this by
 * comparing its members' store hashes at one revision; this does the same.
 *
 * Every HASHCHECK_EVERY slots (a multiple of it, the same slots on every
 * replica) a replica notes the state hash it has right after applying that
 * slot: rabia_rsm_check_hash, which covers the sessions (not the replies
 * they keep for retries: which ones fit depends on each replica's own
 * reply-cache-bytes) and the state machine's own state_hash op. Only state
 * machines with that op take part (the KV store, the counter, an embedded
 * one that keeps its hash): without it the hash
 * serializes the whole state. It sends its newest notes to each peer in a
 * STATUS frame on the peer link ("hash_checkpoints_v2: SLOT:HASH ...");
 * a build without this counts such a frame among the core's ignored
 * messages (core/rabia.c), so mixed versions in a rolling upgrade keep
 * working, unchecked. A peer's note for a slot this replica also noted is
 * compared at once, or when this replica reaches that slot.
 *
 * A hash that differs is logged (ERROR, naming both hashes and the slot),
 * counted (INFO rabia_hash_checks_differed, /metrics), and /health answers
 * 503. A replica that finds itself alone against a majority of the
 * cluster, those peers agreeing among themselves, stops: its state is the
 * odd one, and serving its reads would serve a state no majority holds (the
 * fix: REBUILD below, the cluster-id file kept). With fewer
 * notes than that (one peer, the other down) it cannot tell who is wrong
 * and keeps running, unhealthy, until a note decides. A replica whose
 * restored snapshot's hash differed from its maker's (rsm's
 * hash_mismatches: the hash itself is in doubt there) never stops for it. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "invariant.h"

#define PREFIX "hash_checkpoints_v2:" /* v1 (e4751da) hashed the replies kept too */
/* The fix for a replica whose state is not the cluster's. The cluster-id
 * file goes along: a cluster restored from a backup has an id of its own
 * (backup.c replica_restored_cluster_id), and an empty data dir derives the
 * members' id, which its peers refuse. */
#define REBUILD                                                                                                        \
    "move its data dir aside, copy its cluster-id file into the new empty one (or set cluster-id to INFO "           \
    "rabia_cluster_id) and start it with --rejoin"

static struct hashcheck_point *at(struct hashcheck_point *ring, uint64_t slot)
{
    return &ring[(slot / HASHCHECK_EVERY) % HASHCHECK_KEEP];
}

void replica_hashcheck_init(struct rabia_replica *r)
{
    memset(&r->hc, 0, sizeof r->hc);
    r->hc.on = r->sm->state_hash != NULL;
}

/* Peers (not self) whose note for slot carries hash h. */
static unsigned peers_with(struct rabia_replica *r, uint64_t slot, uint64_t h)
{
    unsigned k = 0;
    for (uint8_t p = 0; p < r->cfg.n; p++) {
        if (p == r->self) continue;
        const struct hashcheck_point *q = at(r->hc.peer[p], slot);
        if (q->slot == slot && q->hash == h) k++;
    }
    return k;
}

static void compare(struct rabia_replica *r, uint8_t p, uint64_t slot, uint64_t mine, uint64_t theirs)
{
    struct hashcheck *hc = &r->hc;
    RABIA_ASSERT(p < r->cfg.n && p != r->self && slot % HASHCHECK_EVERY == 0);
    unsigned majority = r->cfg.n / 2u + 1u, same = 1u + peers_with(r, slot, mine);
    if (mine == theirs) {
        hc->agreed++;
        if (slot > hc->agreed_slot) hc->agreed_slot = slot;
        /* a majority holds this replica's state there: whoever differs is the
         * odd one. At diverged_slot or any later checkpoint: a peer that was
         * away then (or installed a snapshot past it) never notes that slot,
         * and waiting for that one note kept a replica of the majority
         * unhealthy for ever. */
        if (slot >= hc->diverged_slot && same >= majority && hc->suspect) {
            hc->suspect = false;
            replica_log(r, RABIA_LOG_WARN,
                        "replica %u agrees after slot %" PRIu64 ": %u of %u replicas hold this replica's state; "
                        "those whose state differs must be rebuilt (" REBUILD ")",
                        p + 1, slot, same, r->cfg.n);
        }
        return;
    }
    hc->differed++;
    bool first = !(hc->diverged_peers & (1u << p));
    hc->diverged_peers |= (uint8_t)(1u << p);
    if (!hc->diverged_slot || slot <= hc->diverged_slot) {
        hc->diverged_slot = slot;
        hc->suspect = same < majority;
    }
    if (first && same >= majority)
        replica_log(r, RABIA_LOG_WARN,
                    "replica %u's state differs from this replica's after slot %" PRIu64 " (%u of %u replicas hold "
                    "this replica's state): its state hash is %016" PRIx64 ", ours %016" PRIx64 " (replica %u stops "
                    "when it sees it; rebuild it: " REBUILD ")",
                    p + 1, slot, same, r->cfg.n, theirs, mine, p + 1);
    else if (first)
        replica_log(r, RABIA_LOG_ERROR,
                    "state differs from replica %u's: after slot %" PRIu64 " this replica's state hash is %016" PRIx64
                    ", replica %u's is %016" PRIx64 " (a state machine that is not deterministic, a damaged data "
                    "dir or memory, or a data dir copied from elsewhere); the replica that differs from the "
                    "majority must be rebuilt: " REBUILD,
                    p + 1, slot, mine, p + 1, theirs);
    /* alone against a majority that agrees among itself: this state is the odd one */
    unsigned against = peers_with(r, slot, theirs);
    if (against >= majority && !rabia_rsm_hash_mismatches(r->rsm) && !r->failed) {
        replica_log(r, RABIA_LOG_ERROR,
                    "after slot %" PRIu64 " this replica's state hash %016" PRIx64 " differs from %016" PRIx64
                    ", which %u of its peers hold: its state is not the cluster's (to rebuild it from the "
                    "others: " REBUILD "); stopping this replica",
                    slot, mine, theirs, against);
        r->failed = true;
        __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
    }
}

/* node.h env.applied: slot was just applied (never during a snapshot's install, which skips slots) */
void replica_hashcheck_applied(void *ctx, uint64_t slot)
{
    struct rabia_replica *r = ctx;
    struct hashcheck *hc = &r->hc;
    if (!hc->on || slot % HASHCHECK_EVERY) return;
    RABIA_ASSERT(slot == rabia_rsm_applied(r->rsm));
    uint64_t h = rabia_rsm_check_hash(r->rsm); /* not the replies kept: reply-cache-bytes is each replica's own */
    if (!h) return; /* the state machine's hash failed (out of memory): no note */
    *at(hc->own, slot) = (struct hashcheck_point){.slot = slot, .hash = h};
    if (slot > hc->newest) hc->newest = slot;
    for (uint8_t p = 0; p < r->cfg.n; p++) {
        if (p == r->self) continue;
        const struct hashcheck_point *q = at(hc->peer[p], slot);
        if (q->slot == slot) compare(r, p, slot, h, q->hash);
    }
}

/* A new link to peer p: it may have missed what the last one carried. */
void replica_hashcheck_link_up(struct rabia_replica *r, uint8_t p)
{
    RABIA_ASSERT(p < RABIA_MAX_REPLICAS);
    r->hc.sent[p] = 0;
}

/* Each loop turn: the newest notes to every connected peer that lacks them. O(n). */
void replica_hashcheck_tick(struct rabia_replica *r)
{
    struct hashcheck *hc = &r->hc;
    if (!hc->on || !hc->newest) return;
    for (uint8_t p = 0; p < r->cfg.n; p++) {
        struct peer *pe = &r->peers[p];
        if (p == r->self || !pe->out_ready || hc->sent[p] >= hc->newest) continue;
        char body[sizeof PREFIX + HASHCHECK_SEND * 40];
        size_t n = (size_t)snprintf(body, sizeof body, "%s", PREFIX);
        for (uint64_t s = hc->newest, k = 0; s && k < HASHCHECK_SEND; s -= HASHCHECK_EVERY, k++) {
            const struct hashcheck_point *q = at(hc->own, s);
            if (q->slot != s) continue; /* not noted (a snapshot installed past it) */
            n += (size_t)snprintf(body + n, sizeof body - n, " %" PRIu64 ":%016" PRIx64, s, q->hash);
            RABIA_ASSERT(n < sizeof body);
        }
        struct rabia_msg m = {.type = RABIA_MSG_STATUS, .from = r->self, .body = (const uint8_t *)body,
                              .body_len = (uint32_t)n};
        replica_send_frame(r, r->conns[pe->out].c, &m);
        hc->sent[p] = hc->newest;
    }
}

static bool parse_u64(const char **s, const char *end, int base, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = *s;
    int digits = 0;
    for (; p < end && digits < 20; p++, digits++) {
        int d = *p >= '0' && *p <= '9' ? *p - '0' : base == 16 && *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
        if (d < 0) break;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) return false;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (!digits) return false;
    *s = p;
    *out = v;
    return true;
}

/* A STATUS frame on a peer link: peer p's notes. Nothing of it is trusted
 * beyond its shape: a malformed one is counted and dropped whole. */
void replica_hashcheck_receive(struct rabia_replica *r, uint8_t p, const struct rabia_msg *m)
{
    struct hashcheck *hc = &r->hc;
    RABIA_ASSERT(p < r->cfg.n && p != r->self && m->type == RABIA_MSG_STATUS);
    const char *s = (const char *)m->body, *end = s + m->body_len;
    struct hashcheck_point got[HASHCHECK_KEEP];
    unsigned n = 0;
    bool ok = m->body_len > strlen(PREFIX) && !memcmp(s, PREFIX, strlen(PREFIX));
    if (ok) s += strlen(PREFIX);
    while (ok && s < end) {
        uint64_t slot, h;
        ok = n < HASHCHECK_KEEP && *s++ == ' ' && parse_u64(&s, end, 10, &slot) && s < end && *s++ == ':' &&
             parse_u64(&s, end, 16, &h) && slot && slot % HASHCHECK_EVERY == 0 && slot < RABIA_SLOT_LIMIT;
        if (ok) got[n++] = (struct hashcheck_point){.slot = slot, .hash = h};
    }
    if (!ok || !n) {
        if (!hc->bad_messages++)
            replica_log(r, RABIA_LOG_WARN, "replica %u sent a STATUS frame that is not its hash checkpoints "
                        "(%u bytes): ignored", p + 1, m->body_len);
        return;
    }
    if (!hc->on) return; /* our state machine keeps no hash: nothing to compare */
    for (unsigned i = 0; i < n; i++) {
        struct hashcheck_point *q = at(hc->peer[p], got[i].slot);
        if (q->slot > got[i].slot) continue; /* an older note than the one kept there */
        if (q->slot == got[i].slot && q->hash == got[i].hash) continue; /* sent again on a new link: compared */
        *q = got[i];
        const struct hashcheck_point *mine = at(hc->own, got[i].slot);
        if (mine->slot == got[i].slot) compare(r, p, got[i].slot, mine->hash, got[i].hash);
    }
}
