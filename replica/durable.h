/* replica/durable.c: rabiad's write-ahead log for the node (node.h), for
 * durability = wal (include/rabia/core.h, persistence contract rule 1):
 *
 *  - the node's log (durable_log): records go into the write-ahead log's
 *    open group; a write is one O_DIRECT write with RWF_DSYNC through
 *    io_uring; on completion its decided records go back to the node
 *    (node_log_decided), which applies them and lets the sends held behind
 *    them leave (node_log_written);
 *  - at start the newest snapshot file and the log rebuild the state
 *    (replay.c), and the records of slots still open are handed back to the
 *    core (node_start);
 *  - snapshots are written by a forked child (the loop does not stall for
 *    a large state) when snapsched.c says (the log grew by max-log-size,
 *    snapshot-interval-s passed, one was asked for), and the log prefix
 *    they cover is released.
 *
 * With durability = memory none of this runs. */
#ifndef RABIA_REPLICA_DURABLE_H
#define RABIA_REPLICA_DURABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rabia/core.h"
#include "rabia/types.h"
#include "node.h"
#include "logcatch.h"
#include "replay.h"
#include "snapsched.h"
#include "rsm.h"
#include "wal.h"

struct rio_loop;

struct durable_hooks {
    void *ctx;
    /* the log failed (EIO...): the replica must stop */
    void (*fatal)(void *ctx, const char *why);
    /* may be NULL: a log write completed (metrics): how long it took, whether
     * it carried RWF_DSYNC (the sync), its result */
    void (*wrote)(void *ctx, uint64_t us, bool dsync, int res);
};

struct durable_cfg {
    const char *data_dir;
    uint64_t cluster_id;
    uint8_t self;
    uint64_t incarnation;          /* this start's; a new log takes it as its batch incarnation */
    uint64_t segment_bytes, max_log_size;
    uint32_t snapshot_interval_s;
    uint32_t window;               /* slots in flight: how long a restored own batch stays fetchable */
    bool allow_buffered;
    bool recovering;               /* a log created now begins a recovery from the peers (rule 2) */
};

/* What the log holds for the core, handed to node_start. */
struct durable_restore {
    struct node_restore rest;      /* valid until durable_restored */
    bool log_existed;              /* the replica may take part at once */
    uint64_t batch_incarnation;
    bool rejoin;                   /* durable_open: -EAGAIN, an unfinished recovery: start it again */
};

struct durable {
    struct durable_cfg cfg;
    struct durable_hooks hooks;
    struct rabia_wal *wal;
    char snap_dir[600], wal_dir[600];
    struct rabia_node *node;       /* durable_attach */
    struct rio_loop *loop;
    bool write_busy;
    uint64_t write_warned_us;      /* the write in flight's last "not answered" warning (0: none yet) */
    bool failed;
    /* snapshots */
    pid_t snap_pid;
    int snap_pipe;                 /* read end: the child's (slot, state hash), or -1 */
    uint64_t hash_slot, hash_value;/* the state hash at the newest snapshot (0, 0: none) */
    struct snapsched sched;        /* when (snapsched.c, the simulator's rule too); the newest snapshot's slot */
    uint64_t last_fork_us;         /* how long the last fork() stalled the loop */
    uint64_t snap_warned_us;       /* the running child's last "still running" warning (0: none yet) */
    uint64_t max_fork_us;
    struct replay *replay;         /* recovery, until durable_restored */
    /* peers' catch-up from the log (logcatch.h): a read position per peer,
     * allocated at its first request (ring included: DURABLE_CATCHUP_RING) */
    struct durable_catchup *catchup[RABIA_MAX_REPLICAS];
    uint64_t catchup_slots, catchup_requests, catchup_refused; /* slots served; requests; ones the log could not */
    uint64_t catchup_odd;          /* requests that met a read error or a body not kept */
    uint64_t write_started_us, last_write_us, max_write_us;
    bool write_dsync;              /* the write in flight carries RWF_DSYNC */
    char disk_err[256];
};

/* Load the newest snapshot into rsm, replay the log into it and collect
 * what the core must get back. 0 or a negative error with err naming the
 * file and the fix; -EAGAIN with out->rejoin: an unfinished recovery's log
 * was removed, call again with a fresh rsm and start recovering. */
int durable_open(struct durable *d, const struct durable_cfg *cfg, const struct durable_hooks *hooks,
                 struct rabia_rsm *rsm, struct durable_restore *out, char *err, size_t errlen);
/* Returns whether a log write was still in flight (the loop was destroyed
 * before the disk answered it): its buffer is then left allocated
 * (rabia_wal_abandon_flight), and the caller must keep the data dir locked
 * so that no replica made later in this process writes where it will land. */
bool durable_close(struct durable *d);
/* node_start took what durable_open gave back: free it. */
void durable_restored(struct durable *d);
/* The node's log (node.h), and where completions go: the node and the loop
 * that runs the writes (before the first node_turn). */
void durable_log(struct durable *d, struct node_log *out);
void durable_attach(struct durable *d, struct rabia_node *node, struct rio_loop *loop);
/* A snapshot from a peer, already written as this replica's snapshot file
 * (before anything after it is logged), is the state now. */
void durable_snapshot_adopted(struct durable *d, uint64_t slot);
/* A peer needs a snapshot newer than the files: take one at the next tick. */
void durable_snapshot_soon(struct durable *d);
/* Periodic work (at most every few ms): reap the snapshot child, start one
 * when due. keep_batch_seq: the oldest own batch the core still holds;
 * pin: the first slot peers still need from the log (a snapshot sent to
 * one, a catch-up served: snapstream_pin, node_log_pin; 0: none), kept
 * when a snapshot releases the log's prefix. */
void durable_tick(struct durable *d, struct rabia_rsm *rsm, uint64_t now_us, uint64_t keep_batch_seq, bool recovering,
                  uint64_t pin);
/* The state hash (rabia_rsm_hash) at the newest snapshot this replica
 * wrote, computed by the snapshot child: false when none yet. */
bool durable_state_hash(const struct durable *d, uint64_t *slot, uint64_t *hash);
/* Peer `peer`'s catch-up from the log: DECISION messages for slots
 * [from, until) through emit, read back from the write-ahead log
 * (logcatch.h). The number of slots sent (maybe fewer than asked), 0 when
 * the log does not hold `from` (the peer needs a snapshot), -EAGAIN while
 * still reading towards it (at most DURABLE_CATCHUP_READ bytes per call:
 * node.c calls again at its next loop turn, as does the peer's next ask
 * for the same slot, and the read goes on from where it stopped; it starts
 * DURABLE_CATCHUP_RING bytes of log before the first group that can hold
 * `from`'s decision, rabia_wal_cursor_for). Each peer has its own read position and bodies:
 * at most n - 1 rings of DURABLE_CATCHUP_RING bytes, for the peers that
 * ever caught up from this log. */
#define DURABLE_CATCHUP_READ (4u << 20)
#define DURABLE_CATCHUP_RING (16u << 20)
struct durable_catchup {
    struct logcatch lc;
    bool on;                       /* the cursor continues the request lc.next names */
    struct rabia_wal_cursor at;
    uint64_t wide_from;            /* a read for this slot starts a segment back (RABIA_WAL_BACK_SEGMENT) */
};
int durable_catchup(struct durable *d, uint8_t peer, uint64_t from, uint64_t until, logcatch_emit_fn emit,
                    void *ctx);
/* Whether a snapshot child is running. */
bool durable_snapshot_running(const struct durable *d);
/* "" or why client writes are refused now (a full disk). */
const char *durable_refusal(struct durable *d);
/* How long the snapshot child now running has run (0: none). */
uint64_t durable_snapshot_running_us(const struct durable *d, uint64_t now);
/* How long the log write in flight has waited for the disk (0: none), and
 * whether that is past the stall warning (durable.c, write_watch; *age gets
 * it): the replica is then unhealthy (/health), its votes and replies held. */
uint64_t durable_write_age_us(const struct durable *d, uint64_t now);
bool durable_write_stalled(const struct durable *d, uint64_t now, uint64_t *age);
/* One text block of key: value lines for status output. */
int durable_status(struct durable *d, char *buf, size_t len);

#endif
