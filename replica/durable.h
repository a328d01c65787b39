/* replica/durable.c: the replica's durability layer between the core and
 * the network, for durability = wal (include/rabia/core.h, persistence
 * contract rule 1):
 *
 *  - every core update's persist records and decided slots go into the
 *    write-ahead log's open group; the update's sends are held behind it;
 *  - once per loop turn the open group is sealed and written (one O_DIRECT
 *    write with RWF_DSYNC through io_uring) while the next group forms;
 *  - when a write completes, its decided slots are applied (so every reply
 *    reports a decision that is on disk) and the sends held behind it
 *    leave, in order;
 *  - at start the newest snapshot file and the log rebuild the state, and
 *    the records of slots still open are handed back to the core
 *    (RABIA_EV_RESTORE);
 *  - snapshots are written by a forked child (the loop does not stall for
 *    a large state) when the log grew by max-log-size or snapshot-interval-s
 *    passed, and the log prefix they cover is released.
 *
 * With durability = memory none of this runs: sends leave and slots apply
 * at once, as in the paper. */
#ifndef RABIA_REPLICA_DURABLE_H
#define RABIA_REPLICA_DURABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rabia/core.h"
#include "rabia/types.h"
#include "rsm.h"
#include "wal.h"

struct rio_loop;

struct durable_hooks {
    void *ctx;
    /* a held frame leaves: to a peer index, or RABIA_TO_ALL */
    void (*send)(void *ctx, uint8_t to, const uint8_t *frame, uint32_t len);
    /* a decided slot is durable: apply it (null: id NULL). 0 or a negative
     * error that stops the replica */
    int (*apply)(void *ctx, uint64_t slot, const struct rabia_batch_id *id, const uint8_t *body, uint32_t len);
    /* the log failed (EIO...): the replica must stop */
    void (*fatal)(void *ctx, const char *why);
};

struct durable_cfg {
    const char *data_dir;
    uint64_t cluster_id;
    uint8_t self;
    uint64_t incarnation;          /* this start's; a new log takes it as its batch incarnation */
    uint64_t segment_bytes, max_log_size;
    uint32_t snapshot_interval_s;
    uint32_t max_pending;
    uint32_t window;               /* slots in flight: how long a restored own batch stays fetchable */
    bool allow_buffered;
};

/* What the log holds for the core, handed back with RABIA_EV_RESTORE. */
struct durable_restore {
    struct rabia_msg *msgs;        /* own batches first, then sent records in log order */
    uint32_t n;
    uint64_t applied;              /* last slot the rebuilt state holds */
    bool log_existed;              /* the replica may take part at once */
    uint64_t batch_incarnation;
    uint64_t horizon;              /* abstain up to here (a finished --rejoin's horizon) */
    bool rejoin;                   /* durable_open: -EAGAIN, an unfinished recovery: start it again */
};

struct durable {
    struct durable_cfg cfg;
    struct durable_hooks hooks;
    struct rabia_wal *wal;
    char snap_dir[600], wal_dir[600];
    /* sends held behind the group being formed (open) and the one in flight */
    struct rabia_buf held_open, held_flight;
    bool write_busy;
    bool failed;
    /* snapshots */
    pid_t snap_pid;
    uint64_t snap_slot;            /* slot the running child snapshots */
    uint64_t snap_keep_seq;
    uint64_t snap_started_us, last_snap_us;
    uint64_t log_bytes_at_snap;    /* wal bytes written when the last snapshot started */
    uint64_t last_snap_slot;
    bool snap_forced;              /* durable_snapshot_soon */
    uint64_t snapshots_taken, snapshot_failures;
    uint64_t last_fork_us;         /* how long the last fork() stalled the loop */
    uint64_t max_fork_us;
    /* restore arena */
    struct rabia_buf arena;
    struct rabia_msg *rmsgs;
    uint32_t rn, rcap;
    uint64_t write_started_us, last_write_us, max_write_us;
    char disk_err[256];
    bool rejoin_pending;           /* scan: the log began with a recovery that has not ended */
    uint64_t horizon;
};

/* Load the newest snapshot into rsm, replay the log into it and collect
 * what the core must get back. 0 or a negative error with err naming the
 * file and the fix; -EAGAIN with out->rejoin: an unfinished recovery's log
 * was removed, call again with a fresh rsm and start recovering. */
int durable_open(struct durable *d, const struct durable_cfg *cfg, const struct durable_hooks *hooks,
                 struct rabia_rsm *rsm, struct durable_restore *out, char *err, size_t errlen);
void durable_close(struct durable *d);
/* A replica that recovers under rule 2 says so in its log before anything
 * else; a restart before the core's HORIZON record starts over. */
int durable_mark_recovering(struct durable *d, uint64_t nonce);

/* One core update: persist records and decided slots into the log, sends
 * held behind them. 0, or a negative error (out of memory: stop). */
int durable_update(struct durable *d, const struct rabia_update *u);
/* Called once per loop turn: start the next group write if none is in
 * flight. */
void durable_flush(struct durable *d, struct rio_loop *loop);
/* A snapshot from a peer, already written as this replica's snapshot file
 * (before anything after it is logged), is the state now. */
void durable_snapshot_adopted(struct durable *d, uint64_t slot);
/* A peer needs a snapshot newer than the files: take one at the next tick. */
void durable_snapshot_soon(struct durable *d);
/* Periodic work (at most every few ms): reap the snapshot child, start one
 * when due. keep_batch_seq: the oldest own batch the core still holds. */
void durable_tick(struct durable *d, struct rabia_rsm *rsm, uint64_t now_us, uint64_t keep_batch_seq, bool recovering);
/* "" or why client writes are refused now (a full disk). */
const char *durable_refusal(struct durable *d);
/* One text block of key: value lines for status output. */
int durable_status(struct durable *d, char *buf, size_t len);

#endif
