/* The state machine interface: the C form of the guide's StateMachine trait.
 *
 * A state machine is deterministic: the same operations applied in the same
 * order to the same state give the same state and the same results on every
 * replica. It must not read clocks, random sources, addresses of its own
 * memory or anything else that differs between replicas. Errors that depend
 * only on the operation and the state (unknown account, bad encoding) are
 * results, written into the reply; they never abort the process. */
#ifndef RABIA_STATE_MACHINE_H
#define RABIA_STATE_MACHINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A growable byte buffer (malloc'd). Zero-initialise before first use. */
struct rabia_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};
int rabia_buf_reserve(struct rabia_buf *b, size_t extra); /* 0 or -ENOMEM */
int rabia_buf_append(struct rabia_buf *b, const void *p, size_t n);
int rabia_buf_put_u8(struct rabia_buf *b, uint8_t v);
int rabia_buf_put_u32(struct rabia_buf *b, uint32_t v); /* little-endian */
int rabia_buf_put_u64(struct rabia_buf *b, uint64_t v); /* little-endian */
void rabia_buf_clear(struct rabia_buf *b);               /* len = 0, keep memory */
void rabia_buf_free(struct rabia_buf *b);

/* What a state machine is told about the batch whose operations it is about
 * to apply: the same on every replica, because it comes from the log. */
struct rabia_sm_batch {
    uint64_t slot;    /* the slot being applied */
    /* The proposing replica's wall clock (Unix ms) when it cut the batch,
     * 0 when it gave none. Batches from different replicas are not ordered
     * by it: a state machine that needs a clock keeps the largest it saw
     * (the KV store does), which every replica computes alike. */
    uint64_t time_ms;
};

/* Events a state machine reports to its own replica while applying: every
 * replica sees the same events in the same order, and acts on them locally
 * (deliver a published message to its subscribers, wake a client blocked
 * on a key). They are not state and not part of any reply. */
enum rabia_sm_event_kind {
    RABIA_SM_EV_PUBLISH = 1,   /* a = channel, b = message */
    RABIA_SM_EV_KEY_READY = 2, /* a = key (in database db) that became non-empty */
    RABIA_SM_EV_FEATURES = 3,  /* the KV store's FEATURES: replica db's incarnation u1 runs a
                                  build that supports feature level u2 (kv/README.md "Feature levels") */
};
struct rabia_sm_event {
    uint32_t kind; /* enum rabia_sm_event_kind */
    uint32_t db;
    const uint8_t *a; /* valid during the call only */
    size_t a_len;
    const uint8_t *b;
    size_t b_len;
    uint64_t u1, u2;
};
typedef void (*rabia_sm_event_fn)(void *arg, const struct rabia_sm_event *ev);

/* Fill it with designated initializers (.name = ..., .apply = ...): fields
 * are added at the end as the interface grows, and new ones are optional. */
struct rabia_sm_ops {
    const char *name;
    /* Create an empty state machine. NULL on allocation failure. */
    void *(*create)(void);
    void (*destroy)(void *sm);
    /* Apply one operation and append its result to `reply`. Returns 0, or a
     * negative errno only for failures that are not deterministic (-ENOMEM):
     * the replica stops rather than diverge. A malformed operation is a
     * deterministic error: return 0 with an error result. */
    int (*apply)(void *sm, const uint8_t *op, size_t op_len, struct rabia_buf *reply);
    /* Append a canonical encoding of the whole state to `out`: two replicas
     * with equal state produce equal bytes (the state hash is taken of it).
     * With durability = wal (the default) the snapshots that let the log be
     * released call it in a child process forked from the replica's thread
     * (replica/README.md), where no other thread of the process exists: it
     * must not take a lock that another thread may hold (a mutex the
     * application's threads share with the state machine: the child would
     * wait for ever, no snapshot would complete and the log would grow
     * until the disk is full; the replica warns after 60 s, and INFO
     * persistence snapshot_running_seconds shows the child's age) or wait
     * for another thread, and what it changes in memory there is not seen
     * by the process. It is also called
     * on the replica's thread (the state hash without a state_hash op,
     * durability = memory's transfers to peers). A negative errno fails
     * only what it was called for (a snapshot is logged and tried again
     * later; the state machine goes on). */
    int (*snapshot)(void *sm, struct rabia_buf *out);
    /* Replace the state with a snapshot. On error (-EINVAL for corrupt or
     * truncated data, -ENOMEM) the previous state is unchanged. */
    int (*restore)(void *sm, const uint8_t *data, size_t len);
    /* Optional (NULL: not called). Called before the operations of each
     * applied batch, with what the log says about it (its time). */
    void (*begin)(void *sm, const struct rabia_sm_batch *b);
    /* Optional. Where events go from now on (fn NULL: nowhere). */
    void (*set_events)(void *sm, rabia_sm_event_fn fn, void *arg);
    /* Optional (NULL: the state hash is taken of the snapshot, O(state)).
     * A hash of the whole state that is equal on replicas with equal
     * state, whatever the order of the operations that built it, and is
     * kept up to date as operations apply, so that asking costs about
     * what changed since the last ask, not the state's size (the KV store
     * sums per-key hashes). Replicas compare it in status and INFO; the
     * value is stored in snapshots and checked when one is restored. 0, or
     * a negative errno (-ENOMEM). */
    int (*state_hash)(void *sm, uint64_t *out);
    /* Optional. A hint that `op` will be applied soon: the apply layer calls
     * it a few operations ahead (RABIA_SM_PREFETCH_AHEAD) while applying a
     * batch, so that the memory applying it touches can be fetched while
     * earlier operations run (the KV store prefetches the key's hash bucket,
     * then its entry, then its value: with 100,000 keys three replicas on
     * one core otherwise waited on the cache for most of each SET). It must
     * change nothing anyone can observe, and `op` may be malformed. */
    void (*prefetch)(void *sm, const uint8_t *op, size_t op_len);
    /* Optional (NULL: every operation goes through the log). Reads answered
     * without a slot (the read index: core.h, READ INDEX). With reply NULL:
     * 0 when op is a read this state machine answers here now, 1 when it
     * must go through the log (a write, or a read it does not serve this
     * way). With reply: run op against the current state and append its
     * result, exactly what apply would append at this point, changing
     * nothing anyone can observe (the state, its hash, what later
     * operations return): 0; 1 (nothing appended) when it must go through
     * the log after all (the KV store: an answer that depends on a clock
     * the log has not reached, an expiry between the last batch's time and
     * now_ms); a negative errno (-ENOMEM). now_ms: this replica's wall
     * clock when the read came (what a batch cut then would carry; Unix
     * ms, 0 when none). */
    int (*query)(void *sm, const uint8_t *op, size_t op_len, uint64_t now_ms, struct rabia_buf *reply);
};

/* How many operations ahead of the one being applied prefetch is called. */
#define RABIA_SM_PREFETCH_AHEAD 16

#ifdef __cplusplus
}
#endif
#endif
