/* replica/snapsched.h: when a replica with a log writes a snapshot of its
 * state, without I/O: driven by rabiad (durable.c, over a forked child and
 * the write-ahead log) and by the simulator (over its disk) alike.
 *
 * A snapshot starts when something was applied since the newest snapshot
 * and the log grew by max_log_bytes since the last one that succeeded
 * began, or interval_us passed since the last one ended (counted from the
 * first call), or
 * one was asked for (snapsched_soon: a peer or a backup needs a newer
 * file). Never while the replica recovers from its peers (the log must
 * keep its first record, which says so) nor while one runs. After a failed
 * one, none starts for retry_us, doubled after each failure in a row up to
 * retry_max_us (each try forks and serializes the whole state: with a full
 * disk and a large state, tries a second apart kept a core busy and the
 * loop stalling on forks for as long as the disk stayed full). Once a snapshot is durable the log prefix
 * it covers may go (snapsched_finished says up to which slot). A snapshot
 * from a peer, installed as this replica's newest file, counts as one
 * (snapsched_adopted). */
#ifndef RABIA_REPLICA_SNAPSCHED_H
#define RABIA_REPLICA_SNAPSCHED_H

#include <stdbool.h>
#include <stdint.h>

struct snapsched_cfg {
    uint64_t max_log_bytes; /* log bytes since the last snapshot began that call for one */
    uint64_t interval_us;   /* one at least this often when anything was applied (0: by size only) */
    uint64_t retry_us;      /* after a failure, the next no sooner */
    uint64_t retry_max_us;  /* the wait doubles after each failure in a row up to this (<= retry_us: no growth) */
};

struct snapsched {
    struct snapsched_cfg cfg;
    uint64_t last_slot;     /* the newest snapshot file's slot (its own, or a peer's installed) */
    uint64_t log_at_start;  /* log bytes when the last snapshot that succeeded began */
    uint64_t last_us;       /* when the last one ended (0: none yet) */
    bool forced;            /* snapsched_soon */
    bool running;           /* one is being written: of running_slot, begun at running_us */
    uint64_t running_slot, running_us, running_log;
    bool running_forced;
    uint64_t taken, failures;
    uint32_t failed_in_row; /* failures since the last success */
};

void snapsched_init(struct snapsched *s, const struct snapsched_cfg *cfg, uint64_t last_slot, uint64_t log_bytes);
/* Whether to begin a snapshot of `applied` now (then snapsched_began). */
bool snapsched_due(struct snapsched *s, uint64_t applied, uint64_t log_bytes, uint64_t now_us, bool recovering);
void snapsched_began(struct snapsched *s, uint64_t applied, uint64_t log_bytes, uint64_t now_us);
/* The snapshot begun ended: durable (ok) or not. Returns the slot the log
 * may be released up to (the newest snapshot's), 0 after a failure. */
uint64_t snapsched_finished(struct snapsched *s, bool ok, uint64_t now_us);
/* How long after the last failure the next try may begin (0: none failed
 * since the last success). */
uint64_t snapsched_retry_wait(const struct snapsched *s);
/* A peer's snapshot of `slot` is this replica's newest file now. */
void snapsched_adopted(struct snapsched *s, uint64_t slot);
/* Take one at the next chance (something needs a file at the applied slot). */
void snapsched_soon(struct snapsched *s);

#endif
