/* replica/replay.h: recovery from a log, without I/O. The log's records, in
 * order, rebuild the state on top of the newest snapshot (decided slots are
 * applied) and leave what the core must get back (RABIA_EV_RESTORE): the
 * records of slots still open and this replica's own batches. rabiad feeds
 * it from the write-ahead log's scan (durable.c), the simulator from its
 * simulated disk: the same recovery in both. */
#ifndef RABIA_REPLICA_REPLAY_H
#define RABIA_REPLICA_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node.h"
#include "rabia/types.h"
#include "rsm.h"

#define REPLAY_RECENT_OWN 512 /* own batches' decided slots remembered */

struct replay {
    uint8_t self;
    uint32_t window;          /* slots in flight: how long an applied own batch stays fetchable */
    uint64_t snap_slot;       /* the snapshot the state was restored from (0: none) */
    struct rabia_rsm *rsm;
    /* kept records; bodies in the arena, linked up by replay_finish */
    struct rabia_buf arena;
    struct rabia_msg *msgs;
    uint32_t n, cap;
    uint32_t prune_at;
    struct {
        uint64_t seq, slot;
    } recent[REPLAY_RECENT_OWN]; /* ring: where own batches were decided */
    uint32_t n_recent;
    uint64_t max_own_seq;     /* highest own batch seq in the log */
    uint64_t applied_records; /* DECIDED records applied */
    uint64_t applied_by_ref;  /* ... of them DECIDED_REF records, their body found in an earlier record */
    uint64_t horizon;         /* a finished recovery's horizon (HORIZON record) */
    bool rejoin_pending;      /* the log began with a recovery that has not ended */
    bool horizon_seen;        /* a HORIZON record (the end of that recovery) was replayed */
};

/* rsm holds the snapshot's state (snap_slot, or empty with 0). */
void replay_init(struct replay *rp, uint8_t self, uint32_t window, uint64_t snap_slot, struct rabia_rsm *rsm);
void replay_free(struct replay *rp);
/* One record (type enum node_rec, slot, the encoded frame), in log order.
 * 0, or a negative error with err naming the cause and the fix (a gap
 * after the snapshot, a record this build does not write). */
int replay_record(struct replay *rp, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len, char *err,
                  size_t errlen);
/* The end of the log: fills out (valid until replay_free). batch_incarnation:
 * the log's batch id namespace. 0 or -ENOMEM. */
int replay_finish(struct replay *rp, uint64_t batch_incarnation, struct node_restore *out);

#endif
