/* The apply layer: runs decided batches through a state machine, with
 * exactly-once client sessions. Everything here is replicated state: two
 * replicas that applied the same slots hold equal sessions and equal state
 * machines, and their snapshots (and rabia_rsm_hash) are byte-equal.
 *
 * SESSIONS. Every request carries (client id, seq, ack):
 *   - seq grows by 1 per new request of that client (the OPEN below is
 *     seq 1, the session's requests 2, 3, ...); a retry reuses its seq;
 *   - ack is the lowest seq the client still waits for: it holds the
 *     replies of every lower seq, which may therefore be forgotten.
 * Requests of one client may be decided out of order (in different batches
 * and slots), so a session remembers, per client, its window base (the
 * highest ack seen; acks never move it back) and, for each seq in
 * [base, base + 64), whether it was applied and its reply.
 *
 * A batch is identified by its id (proxy, incarnation, seq): a batch decided
 * a second time (two in-flight slots carried it) is skipped whole, and so is
 * a batch of an earlier life of its proxy decided after a later life's.
 * Per proxy the last 256 batch seqs are remembered.
 *
 * Sessions are named by the log. A client opens one with an OPEN: a
 * request with an empty op and seq 1 under an id of its own choosing (a
 * nonce, bit 63 clear; it names nothing but this request). Applying it
 * creates a session whose id is RABIA_SESSION_ASSIGNED | k for the k-th
 * OPEN ever applied (replicated, so equal everywhere) and answers OK with
 * that id as 8 little-endian bytes. The client then sends seq 2, 3, ...
 * under that id. An OPEN applied twice (a retry) opens two sessions; the
 * client uses the one it heard of, the other is never used and is evicted
 * first. Because ids are never reused, a session that is gone stays gone.
 * Connection-scoped clients (id bit 63: RESP connections) need no OPEN:
 * their session opens with their first request.
 *
 * For each request of a batch, in batch order:
 *   0. seq == 0 closes the client's session (its connection closed): the
 *      session and its replies are forgotten. fn gets RABIA_REPLY_OK.
 *   1. ack > seq or seq >= ack + 64 (client bugs: a client never runs more
 *      than 64 requests ahead of its ack): RABIA_REPLY_BAD_REQUEST, not
 *      applied, the session is not touched (nor created).
 *   2. No session, not connection-scoped: an OPEN opens one (above); any
 *      other request gets RABIA_REPLY_SESSION_EXPIRED and is not applied:
 *      the session was evicted or closed, so whether this request was
 *      applied before is unknown. The client must open a new session and
 *      treat its outstanding requests as of unknown outcome.
 *   3. No session, connection-scoped: one opens with base = ack. (Such a
 *      client never retries, and a replica submits a connection's close
 *      only after every request of it was answered, so an evicted live
 *      RESP connection carries on instead of failing.) If ack > base, base
 *      moves up to ack and the replies below it are forgotten.
 *   4. seq < base: RABIA_REPLY_SESSION_EXPIRED, not applied. (Since
 *      base >= ack, seq < base + 64 holds here.)
 *   5. (client, seq) already applied: not applied again; fn gets the cached
 *      reply with its original status (RABIA_REPLY_OK), or
 *      RABIA_REPLY_APPLIED_NO_RESULT and no body when the reply was not
 *      kept (larger than max_reply_bytes, or dropped for the byte budget).
 *   6. Otherwise the op is applied: fn gets RABIA_REPLY_OK and the state
 *      machine's result, which is kept for retries when it is at most
 *      max_reply_bytes long. An empty op is never given to the state
 *      machine: it answers OK with no body.
 * Every request from steps 3-6 counts as activity of its client in the
 * slot being applied.
 *
 * EXACTLY-ONCE, precisely: a request (session, seq) changes the state at
 * most once, ever. Its session exists from its OPEN until it is closed
 * (seq 0) or evicted; a retry while it exists gets the cached reply, a
 * retry after it is gone gets SESSION_EXPIRED, never a second apply.
 * A batch is the unit that travels, and a batch is applied at most once
 * (the tracker above; a proxy that gets a dropped batch back after a
 * snapshot install queues it again under the same id), so a request that
 * is never copied into a second batch by its proxy is applied at most once
 * even without a session, which is what step 3 relies on.
 *
 * EVICTION. The table holds at most max_sessions clients. A new client
 * arriving at a full table evicts a connection-scoped session (client id
 * with bit 63 set: RESP connections, whose requests are never retried on
 * another connection) if there is one, else any session (an OPENed session
 * never used is the least recently active); among those, the
 * one whose last activity is oldest (ties: the smallest client id). So
 * clients with their own ids are evicted only when every connection-scoped
 * session is gone: max_sessions should exceed the number of such clients
 * active at once plus the connections open at once (Raft-based systems
 * bound sessions the same way). The configuration must be equal on every
 * replica.
 *
 * MEMORY: each session keeps at most 64 replies of at most max_reply_bytes;
 * all sessions together keep at most max_reply_total reply bytes (over it,
 * the replies of the least recently active sessions are dropped first and
 * answer APPLIED_NO_RESULT to a retry). Bookkeeping is about 1.6 KiB per
 * session, so the worst case is max_sessions x 1.6 KiB + max_reply_total.
 *
 * DETERMINISM: no pointer, clock or hash-table order reaches a reply or a
 * snapshot (snapshots list sessions sorted by client id). */
#ifndef RABIA_RSM_H
#define RABIA_RSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rabia/state_machine.h"
#include "rabia/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RABIA_RSM_WINDOW 64 /* seqs a session tracks above its ack */

#define RABIA_RSM_DEFAULT_REPLY_TOTAL (64ull << 20)

struct rabia_rsm_config {
    uint32_t max_sessions;    /* >= 1 */
    uint32_t max_reply_bytes; /* largest reply kept for retries */
    uint64_t max_reply_total; /* reply bytes kept over all sessions; 0: 64 MiB */
    /* Optional (NULL: none): told of every operation the state machine
     * applied (not of duplicates, refusals, OPENs, closes or empty ops),
     * right after it ran and before its reply goes out, with its slot, its
     * client's session and seq, and the reply (valid during the call only).
     * The audit log's hook (replica/audit.c); it must not touch the rsm. */
    void (*on_apply)(void *ctx, uint64_t slot, uint64_t client_id, uint64_t seq, const uint8_t *op, size_t op_len,
                     const uint8_t *reply, size_t reply_len);
    void *on_apply_ctx;
};

/* NULL on allocation failure or max_sessions == 0. cfg NULL: defaults
 * (4096 sessions, 4096-byte replies). */
struct rabia_rsm *rabia_rsm_create(const struct rabia_sm_ops *ops, const struct rabia_rsm_config *cfg);
void rabia_rsm_destroy(struct rabia_rsm *r);

/* Called for every request as it is applied (or found to be a duplicate,
 * expired or bad); status is an enum rabia_reply_status; reply points to
 * memory valid only during the call (NULL when len is 0). */
typedef void (*rabia_rsm_reply_fn)(void *ctx, uint64_t client_id, uint64_t seq, int status,
                                   const uint8_t *reply, size_t len);

/* Apply the decided batch of `slot`. Slots must come strictly in order:
 * slot == rabia_rsm_applied() + 1, else -EINVAL and nothing changes. A
 * null slot is applied with body NULL, len 0 and only advances the
 * counter. A malformed body (see codec.h) is applied as a no-op: every
 * replica does the same; the slot advances, fn is not called, 0 is
 * returned. Returns 0, or a negative errno for a failure that is not
 * deterministic (-ENOMEM, or the state machine's own): the state may then
 * be partly changed and the replica must stop (or restore a snapshot).
 * fn may be NULL. */
int rabia_rsm_apply(struct rabia_rsm *r, uint64_t slot, const uint8_t *body, size_t len,
                    rabia_rsm_reply_fn fn, void *ctx);

/* The same for a batch with its id: a batch id applied before is skipped
 * (the slot still advances, fn is not called). id NULL: no such check. */
int rabia_rsm_apply_batch(struct rabia_rsm *r, uint64_t slot, const struct rabia_batch_id *id,
                          const uint8_t *body, size_t len, rabia_rsm_reply_fn fn, void *ctx);

/* Whether a batch was applied (as far as the tracker remembers: the last
 * 256 batch seqs of its proxy; older ones count as applied). For a proxy
 * replica after a snapshot install: which of its dropped batches the
 * restored state covers. */
bool rabia_rsm_batch_applied(const struct rabia_rsm *r, const struct rabia_batch_id *id);
/* The highest batch sequence number of (proxy, incarnation) this state
 * counts as applied (every seq at or below it is, by batch_applied, or was
 * skipped for good), 0 when none. A proxy restarting from a log must number
 * its next batch above it: a reused id would be skipped as applied and its
 * clients never answered. */
uint64_t rabia_rsm_batch_high(const struct rabia_rsm *r, uint8_t proxy, uint64_t incarnation);

/* The last applied slot, 0 at start. */
uint64_t rabia_rsm_applied(const struct rabia_rsm *r);

/* Look up a request without applying it. Returns 1 when there is an
 * answer: *status RABIA_REPLY_OK with the cached reply (valid until the
 * next apply/restore), RABIA_REPLY_APPLIED_NO_RESULT (applied, reply not
 * kept), or RABIA_REPLY_SESSION_EXPIRED (seq is below the session's base;
 * *reply NULL, *len 0). Returns 0 if (client, seq) has not been applied
 * (including an unknown client and seq beyond the window). */
int rabia_rsm_lookup(const struct rabia_rsm *r, uint64_t client_id, uint64_t seq, int *status,
                     const uint8_t **reply, size_t *len);

/* Append the canonical snapshot to out: applied slot, sessions, the state
 * machine's snapshot and a checksum. 0 or -ENOMEM (out is then as before).
 *
 * Format (little-endian):
 *   u32 magic "RSM3" (0x334d5352), u32 name length, state machine name,
 *   u64 applied slot, u64 OPENs applied, u64 session count, then per session in increasing
 *   client id order:
 *     u64 client id, u64 base, u64 last activity slot,
 *     u64 applied mask (bit i: seq base + i applied),
 *     per set bit, lowest first: u8 kept (1: u32 length + reply bytes
 *     follow; 0: applied without a kept result)
 *   u32 batch tracker count, then per proxy with one, in increasing proxy
 *     order: u8 proxy, u64 incarnation, u64 base, 4 x u64 bits (bit i:
 *     batch seq base + i applied)
 *   u64 state machine snapshot length, its bytes,
 *   u64 the state hash (rabia_rsm_hash at this slot),
 *   u64 XXH64 (seed 0) of every byte before it.
 * "RSM2" snapshots (no state hash) are still restored. */
int rabia_rsm_snapshot(struct rabia_rsm *r, struct rabia_buf *out);

/* Replace everything with a snapshot: all or nothing. -EINVAL for corrupt,
 * truncated or foreign data (a checksum, magic, name or ordering mismatch,
 * more sessions than max_sessions, a state machine that rejects its part),
 * -ENOMEM; the previous state is then unchanged. After a restore the
 * state hash is recomputed from the restored state and compared with the
 * one stored in the snapshot: a difference (a bug in the incremental
 * bookkeeping of the replica that took it) is counted
 * (rabia_rsm_hash_mismatches), not refused. */
int rabia_rsm_restore(struct rabia_rsm *r, const uint8_t *data, size_t len);

/* The applied slot a snapshot was taken at, read from its header after
 * checking its checksum: 0, or -EINVAL for corrupt or foreign data. */
int rabia_rsm_snapshot_slot(const uint8_t *data, size_t len, uint64_t *slot);

/* The state hash: equal on replicas with equal state at equal applied
 * slot. Kept up to date as requests apply, so asking costs what changed
 * since the last ask, not the state's size: the sessions' part is a sum of
 * per-session and per-reply terms updated on every apply, the state
 * machine's comes from its state_hash op (the KV store sums per-key
 * terms), or, for one without, XXH3 of its snapshot (O(state)). 0 on
 * -ENOMEM. */
uint64_t rabia_rsm_hash(struct rabia_rsm *r);
/* The same without the replies the sessions keep for retries (which ones
 * are kept depends on each replica's reply-cache-bytes, not on the log):
 * what replicas compare with each other (replica/hashcheck.c). 0 on
 * -ENOMEM. */
uint64_t rabia_rsm_check_hash(struct rabia_rsm *r);
/* Restores whose recomputed state hash differed from the one stored in
 * the snapshot (see rabia_rsm_restore). */
uint64_t rabia_rsm_hash_mismatches(const struct rabia_rsm *r);
/* The state hash stored in a snapshot's bytes (its maker's rabia_rsm_hash
 * at its slot), without checking the checksum: 0, or -EINVAL when the
 * bytes are not an "RSM3" snapshot. */
int rabia_rsm_snapshot_hash(const uint8_t *data, size_t len, uint64_t *hash);

/* The state machine instance, for tests and local read-only inspection. */
void *rabia_rsm_sm(struct rabia_rsm *r);

/* Number of sessions held, and the reply bytes they keep (status, tests). */
uint32_t rabia_rsm_sessions(const struct rabia_rsm *r);
uint64_t rabia_rsm_reply_bytes(const struct rabia_rsm *r);

#ifdef __cplusplus
}
#endif
#endif
