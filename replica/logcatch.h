/* replica/logcatch.h: a peer's catch-up served from this replica's log,
 * without I/O, driven by durable.c (rabia_wal_read over the write-ahead
 * log) and by the simulator (its disk) alike.
 *
 * The core keeps the last log-retain decided slots in memory for peers
 * that fall behind; a peer further behind got a whole snapshot. The log
 * holds every decided slot since the newest snapshot, so a peer behind
 * the retained log but not behind the log's first decided slot gets the
 * same DECISION messages the core would have sent, read back from the log:
 * a DECIDED record as it is, a DECIDED_REF record with the body of the
 * BATCH record it names (this replica's own BATCH record, or the SENT
 * record of another proxy's batch it proposed in that slot), found among
 * the bodies the feed saw last (`ring` bytes of them; the body record
 * comes shortly before its decision).
 *
 * The driver feeds records in log order from a point before the first slot
 * wanted (a segment early, so that the bodies come first) until
 * logcatch_feed says the request is served or cannot be. A request stops
 * short (fewer slots than asked) when the log does not hold the next slot
 * (released, or a gap where a peer's snapshot was installed) or a body is
 * not among those kept: the peer asks again and, from a slot the log does
 * not serve, is offered a snapshot.
 *
 * Memory: the ring, allocated once. */
#ifndef RABIA_REPLICA_LOGCATCH_H
#define RABIA_REPLICA_LOGCATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rabia/types.h"

#define LOGCATCH_BODIES 4096 /* bodies remembered at most (their bytes: the ring) */

struct logcatch_body {
    struct rabia_batch_id id;
    uint64_t slot;     /* the record's slot (another proxy's batch: where this replica proposed it) */
    uint64_t at;       /* its first byte, counted over everything the ring took */
    uint32_t len;
};

typedef void (*logcatch_emit_fn)(void *ctx, const struct rabia_msg *m);

enum logcatch_bug {
    LOGCATCH_BUG_ANY_BODY = 1u << 0, /* test builds: a DECIDED_REF takes the newest body of its proxy, whatever
                                        batch it is (the simulator must catch the replicas diverging) */
};

struct logcatch {
    uint8_t self;
    uint32_t bugs;         /* enum logcatch_bug */
    uint8_t *ring;
    uint64_t ring_cap;
    uint64_t taken;        /* bytes the ring took so far (positions grow; the ring keeps the last ring_cap) */
    struct logcatch_body bodies[LOGCATCH_BODIES];
    uint32_t nb_first, nb_count;
    uint64_t next, until;  /* serving [next, until) */
    uint64_t served;       /* slots sent for this request */
    bool ended;            /* served in full, or cannot go on: */
    uint64_t gap_at;       /* ... the log's next decided slot was this one, past `next` (0: not a gap) */
    bool no_body;          /* ... the body `next` names was not among those kept */
};

/* 0, or -ENOMEM. */
int logcatch_init(struct logcatch *lc, uint8_t self, uint64_t ring_bytes);
void logcatch_free(struct logcatch *lc);
/* A request for slots [from, until); the bodies seen so far stay when the
 * feed goes on from where it stopped (keep: the driver continues the same
 * read), else they go. */
void logcatch_begin(struct logcatch *lc, uint64_t from, uint64_t until, bool keep);
/* One record of the log (type enum node_rec, its slot field, its message
 * decoded; the body is read during the call only). DECISION messages go out
 * through emit, in slot order. Returns true when the request has ended
 * (lc->served says how many slots went). */
bool logcatch_feed(struct logcatch *lc, uint8_t type, uint64_t slot, const struct rabia_msg *m,
                   logcatch_emit_fn emit, void *ctx);

#endif
