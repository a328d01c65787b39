/* replica/snapstream.h: snapshot transfers between replicas without I/O,
 * driven by rabiad (replica/transfer.c: snapshot files, peer connections)
 * and by the simulator (its disk and network): the same rules in both.
 *
 * Sending: a peer behind the retained log (node env.snapshot_to) is wanted;
 * each loop turn (snapstream_turn) a wanted transfer starts once the driver
 * has a source (a snapshot file, or a serialized copy of the state), and
 * SNAP_CHUNK messages leave while the peer's link holds less than `queued`
 * bytes, at most `per_turn` bytes per turn: the sender never holds more than
 * a chunk besides its source, and the cluster keeps serving. With `rate`
 * set, every transfer out of the replica together sends at most that many
 * bytes a second (a token bucket holding 50 ms of bytes or one chunk),
 * trading a longer transfer for the cluster's writes while it runs. A
 * transfer the cap would bring too far behind to catch up from the
 * retained log (log_retain) goes at full speed instead. A link that
 * goes down ends the transfer; the peer asks again once it is back.
 *
 * Receiving: a chunk at offset 0 starts a transfer (replacing an unfinished
 * one from that peer) when its slot is ahead of this replica, its size is
 * at most `max` and fits the free space, and no other peer's transfer is
 * active (one that moved nothing for `yield_us` gives way); later chunks
 * must continue it exactly (slot, offset, total), are appended to a file,
 * and the last one commits the file and installs it. An empty chunk, the
 * link closing or `stall_us` without a byte drops the transfer and its
 * file. Memory on this side: one chunk.
 *
 * Declining: every peer that sees a replica behind offers it a snapshot, so
 * two or more may start streaming the same state at once, and a receiver
 * takes one. A transfer it does not take (another is active, it caught up,
 * no room for it) is declined with a SNAP_CHUNK of total 0 for that slot
 * (u64 = u64b = 0, no body); its sender stops and offers that peer nothing
 * for `decline_backoff_us`. Without it every sender streamed the whole
 * state (a 160 MiB state crossed the network twice in
 * integration.snapshot_big). A replica of an older version takes the notice
 * for an empty transfer and drops it. A replica that declines because it is
 * applying slots (catching up through the log, or draining what arrived
 * during a pause) follows the decline with a chunk of offset = total = 1
 * and no body: its sender may offer again after `yield_us`, when the
 * receiver takes it if it made no progress meanwhile. It declines for that
 * reason only while some connected peer has not offered a snapshot within
 * `yield_us`: a peer offers one only when its log cannot bring the slots
 * (replica/node.c), so once every peer has, none is catching it up.
 *
 * No allocation, no system call, no clock read: the driver gives all of
 * that through struct snapstream_env. */
#ifndef RABIA_REPLICA_SNAPSTREAM_H
#define RABIA_REPLICA_SNAPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rabia/core.h"
#include "rabia/types.h"

struct rabia_node;

struct snapstream_cfg {
    uint32_t chunk;    /* bytes per SNAP_CHUNK (the last may be shorter) */
    uint64_t max;      /* largest snapshot a peer may announce */
    uint64_t queued;   /* a chunk leaves only while the link holds less than this */
    uint64_t per_turn; /* bytes sent to one peer per loop turn at most */
    uint64_t stall_us; /* an incoming transfer that moved no byte this long is dropped */
    uint64_t yield_us; /* ... and one idle this long gives way to another peer's */
    uint64_t decline_backoff_us; /* a declined sender offers that peer nothing for this long */
    uint64_t rate;     /* bytes per second for all transfers out of this replica together (0: no cap);
                          at most SNAPSTREAM_RATE_MAX, and a chunk takes under stall_us / 2 */
    uint64_t log_retain; /* the core's log-retain: a capped transfer that would arrive further behind
                            goes at full speed (0: never lifted: a log that serves catch-up bridges it) */
    uint64_t pin_us;   /* snapstream_pin keeps a transfer's slot this long after it ended */
};
#define SNAPSTREAM_RATE_MAX (1ull << 40) /* 1 TiB/s */
/* A receiver this many slots behind what it has heard of, and applying
 * slots, is catching up through a log: it declines other snapshots. */
#define SNAPSTREAM_BEHIND 64u

struct snapstream_env {
    void *ctx;
    uint64_t (*now_us)(void *ctx);
    void (*note)(void *ctx, int level, const char *msg); /* enum rabia_log_level */
    uint64_t (*applied)(void *ctx); /* optional (tests): the slot applied, instead of the node's */
    /* sending */
    bool (*link_ready)(void *ctx, uint8_t peer);        /* the link to peer is up (HELLO done) */
    uint64_t (*link_pending)(void *ctx, uint8_t peer);  /* bytes queued on it, not yet taken by the kernel */
    /* The source for a transfer to peer: 0 with *slot and *total set; -EAGAIN
     * when not ready yet (a snapshot being taken: asked again next turn). */
    int (*source_open)(void *ctx, uint8_t peer, uint64_t *slot, uint64_t *total);
    /* n bytes at off of peer's source, valid until the next call; NULL: a
     * read failed (why says so; the transfer ends) */
    const uint8_t *(*source_read)(void *ctx, uint8_t peer, uint64_t off, uint32_t n, char *why, size_t whylen);
    void (*source_close)(void *ctx, uint8_t peer);
    void (*send)(void *ctx, uint8_t peer, const struct rabia_msg *m);
    /* receiving: the file a transfer is written to (one per peer at most) */
    /* bytes free where it goes (UINT64_MAX: unknown), and where that is (for the log) */
    uint64_t (*space_free)(void *ctx, char *where, size_t wherelen);
    int (*file_begin)(void *ctx, uint8_t from, uint64_t slot, uint64_t total, char *why, size_t whylen);
    int (*file_append)(void *ctx, uint8_t from, const uint8_t *p, uint32_t n, char *why, size_t whylen);
    int (*file_commit)(void *ctx, uint8_t from, char *why, size_t whylen); /* durable under its final name */
    void (*file_abort)(void *ctx, uint8_t from);                            /* removed */
    /* The committed file of `slot` installed (node_install_snapshot's
     * result: 0, -EALREADY, -EINVAL, ...); the driver logs what failed. */
    int (*install)(void *ctx, uint8_t from, uint64_t slot);
};

struct snapstream_stats {
    uint64_t sent;      /* transfers started to peers */
    uint64_t bytes_sent;
    uint64_t received;  /* transfers started from peers */
    uint64_t installed; /* ... installed here */
    uint64_t dropped;   /* ... dropped on the way (a stall, a closed link, an empty chunk, a file error,
                           caught up past it meanwhile) */
    uint64_t declined;  /* transfers from peers declined here (not taken: see above) */
    uint64_t stopped;   /* transfers to peers that they declined, stopped before the end */
    uint64_t retry_soon; /* declines whose peer asked to be offered again after yield_us */
    uint64_t rate_waits; /* chunks that waited for the rate cap */
    uint64_t rate_lifted; /* transfers sent at full speed: at the cap they would arrive too far behind */
    uint64_t cap_queued;  /* transfers that waited to start: the cap's share of each running one
                             would have come too rarely for the receiver's stall limit */
};

struct snapstream_tx {
    bool wanted, active;
    uint64_t slot, off, total;
    uint64_t quiet_until; /* declined: no transfer to this peer before then */
    bool held;            /* its next chunk waits for the rate cap (counted once) */
    bool uncapped;        /* the cap would make it useless: it goes at full speed */
    bool cap_queued;      /* wanted, waiting to start: as many capped transfers run as the stall
                             limit allows (counted once) */
    uint64_t served;      /* when its last chunk left (or it started), in snapstream.served_seq:
                             the transfer served longest ago goes first */
    uint64_t pin_until;   /* ended: snapstream_pin keeps its slot until then */
    uint64_t declined_slot; /* the slot of the last transfer the peer declined */
    uint64_t completed_slot; /* ... and of the last one sent whole (source_open: a file the peer got whole
                                and now declines, it is past: only a newer one can help it) */
};
struct snapstream_rx {
    bool active;
    uint64_t slot, got, total, last_us;
};

struct snapstream {
    struct snapstream_cfg cfg;
    struct snapstream_env env;
    struct rabia_node *node; /* where a snapshot goes: its applied slot and the core's next */
    uint8_t self, n;
    struct snapstream_tx tx[RABIA_MAX_REPLICAS];
    struct snapstream_rx rx[RABIA_MAX_REPLICAS];
    struct snapstream_stats st;
    uint64_t credit, credit_us; /* the rate cap's bucket: bytes that may leave, as of credit_us */
    uint64_t served_seq;        /* counts chunks sent and transfers started (snapstream_tx.served) */
    uint64_t rate_due;          /* this turn: when the bucket holds a waiting chunk (0: none waits) */
    uint64_t slot_rate;         /* slots applied per second, the lower of the last two windows */
    uint64_t win_us, win_slot;  /* ... the window being measured: its start */
    uint64_t win_last;          /* ... the rate of the last one */
    uint64_t progress_applied, progress_us; /* the slot applied, and when it last moved (a receiver
                                               applying slots declines a snapshot: rx_begin) */
    uint64_t offer_us[RABIA_MAX_REPLICAS];  /* when each peer last offered one (0: never) */
};

/* Set up (no allocation). The node may be set later (snapstream_set_node)
 * but before the first chunk is received. */
void snapstream_init(struct snapstream *s, const struct snapstream_cfg *cfg, const struct snapstream_env *env,
                     uint8_t self, uint8_t n);
void snapstream_set_node(struct snapstream *s, struct rabia_node *node);
/* Ends every transfer (their sources closed, files aborted): the driver's
 * destroy, or a crash in the simulator. */
void snapstream_end_all(struct snapstream *s);
/* peer needs a snapshot (node env.snapshot_to): one transfer per peer at a time */
void snapstream_want(struct snapstream *s, uint8_t peer);
/* A SNAP_CHUNK from peer `from` (its link is the one the chunks come on),
 * or its notice declining a transfer of ours. */
void snapstream_receive(struct snapstream *s, uint8_t from, const struct rabia_msg *m);
/* The link from `from` closed: a transfer from it is dropped (the peer sends
 * it again from the start). */
void snapstream_link_closed(struct snapstream *s, uint8_t from);
/* Once per loop turn: start wanted transfers, send what flow control and
 * the rate cap allow, drop stalled incoming ones. Returns when to run
 * again for a chunk held by the cap (0: none is). */
uint64_t snapstream_turn(struct snapstream *s);
/* The first slot a log serving catch-up must keep (0: none): the one after
 * the snapshot of each transfer out that is active or ended less than
 * pin_us ago. Its peer installs that snapshot and then catches up from
 * the slot after it (replica/logcatch.c), so the log must not release
 * those slots meanwhile, even when a newer snapshot of this replica's own
 * covers them. */
uint64_t snapstream_pin(const struct snapstream *s, uint64_t now);
/* A transfer into this replica is active (health: not serving yet). */
bool snapstream_receiving(const struct snapstream *s, uint8_t *from);
/* Some transfer out of this replica reads its source. */
bool snapstream_sending(const struct snapstream *s);

#endif
