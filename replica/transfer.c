/* Snapshot transfers between replicas, both directions, over snapshot files
 * and peer connections: a peer behind the retained log gets the state in
 * chunks with flow control; a replica receiving one writes it to a snapshot
 * file and installs it. The rules (when a transfer starts, flows, is
 * dropped) are snapstream.c's, which the simulator runs too. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "internal.h"
#include "invariant.h"

/* ------------------------------------------------------------------ */
/* snapshot transfers: replica/snapstream.c's rules over snapshot files
 * and peer connections */

/* The source of a transfer to `to`: with durability = memory one
 * serialized copy of the state, shared by every transfer (and backups) and
 * taken again once nobody reads it; with wal the newest snapshot file (one
 * is taken, forked, when there is none yet). */
static int tx_open(void *ctx, uint8_t to, uint64_t *slot, uint64_t *total)
{
    struct rabia_replica *r = ctx;
    struct peer *pe = &r->peers[to];
    if (!r->wal) {
        if (!replica_snap_out_busy(r) || !r->snap_out.len) {
            rabia_buf_clear(&r->snap_out);
            int rc = rabia_rsm_snapshot(r->rsm, &r->snap_out);
            if (rc) { /* the state machine's snapshot error, or the memory for it */
                replica_log(r, RABIA_LOG_ERROR, "snapshot for a peer: %s; offered again later", rabia_strerror(rc));
                rabia_buf_clear(&r->snap_out);
                return -EAGAIN;
            }
            r->snap_out_slot = rabia_rsm_applied(r->rsm);
        }
        if (!r->snap_out_slot) return -EAGAIN; /* nothing applied yet: nothing to send */
        *slot = r->snap_out_slot;
        *total = r->snap_out.len;
        pe->tx_fd = -1;
        return 0;
    }
    /* The newest snapshot file, however far behind the retained log: the
     * peer catches up after it from this replica's log (replica/logcatch.c),
     * which holds every slot after its newest snapshot and keeps them
     * while the transfer lasts and 5 s after (snapstream_pin), then while it
     * serves that peer's catch-up (node_log_pin). Before,
     * a file behind the retained log was useless to the peer, and a fresh
     * snapshot was forked for it; under load (log-retain 16 at 150 k SET/s,
     * a 128 MiB state) each was behind again once written, and the senders
     * forked 234 each in 80 s while the cluster fell to a tenth of its
     * writes (bench/README.md, transfer_load.sh). */
    uint64_t newest = rabia_snapfile_newest(r->dur.snap_dir);
    if (!newest || (newest == r->xfer.tx[to].declined_slot && newest == r->xfer.tx[to].completed_slot)) {
        /* none yet, or the peer got this one whole and now declines it (it
         * installed it and could not catch up after it): one at the
         * applied slot */
        durable_snapshot_soon(&r->dur);
        return -EAGAIN;
    }
    int fd = -1; /* open: a prune during the transfer does not matter */
    if (rabia_snapfile_open(r->dur.snap_dir, newest, &fd, total)) { /* damaged: take another */
        durable_snapshot_soon(&r->dur);
        return -EAGAIN;
    }
    if (!*total) { /* a state is never empty (its header): damaged too */
        close(fd);
        durable_snapshot_soon(&r->dur);
        return -EAGAIN;
    }
    pe->tx_fd = fd;
    *slot = newest;
    return 0;
}

static const uint8_t *tx_read(void *ctx, uint8_t to, uint64_t off, uint32_t n, char *why, size_t whylen)
{
    struct rabia_replica *r = ctx;
    struct peer *pe = &r->peers[to];
    RABIA_ASSERT(n <= SNAP_CHUNK);
    if (pe->tx_fd < 0) {
        RABIA_ASSERT(off + n <= r->snap_out.len);
        return r->snap_out.data + off;
    }
    ssize_t k = pread(pe->tx_fd, r->chunk, n, (off_t)(RABIA_SNAPFILE_HEADER + off));
    if (k == (ssize_t)n) return r->chunk;
    snprintf(why, whylen, "reading its file: %s", k < 0 ? strerror(errno) : "short read");
    return NULL;
}

static void tx_close(void *ctx, uint8_t to)
{
    struct rabia_replica *r = ctx;
    struct peer *pe = &r->peers[to];
    if (pe->tx_fd >= 0) close(pe->tx_fd);
    pe->tx_fd = -1;
}

static bool link_ready(void *ctx, uint8_t p)
{
    const struct rabia_replica *r = ctx;
    return r->peers[p].out != UINT32_MAX && r->peers[p].out_ready;
}

static uint64_t link_pending(void *ctx, uint8_t p)
{
    struct rabia_replica *r = ctx;
    RABIA_ASSERT(link_ready(r, p)); /* snapstream asks link_ready first */
    return rio_conn_pending(r->conns[r->peers[p].out].c);
}

static void link_send(void *ctx, uint8_t p, const struct rabia_msg *m)
{
    struct rabia_replica *r = ctx;
    RABIA_ASSERT(link_ready(r, p));
    replica_send_frame(r, r->conns[r->peers[p].out].c, m);
}

static void rx_dir(const struct rabia_replica *r, char *out, size_t len)
{
    if (r->wal) snprintf(out, len, "%s", r->dur.snap_dir);
    else snprintf(out, len, "%s/incoming", r->cfg.data_dir); /* memory: a scratch file, removed after */
}

static uint64_t rx_space(void *ctx, char *dir, size_t dirlen)
{
    struct rabia_replica *r = ctx;
    rx_dir(r, dir, dirlen);
    struct statvfs fs;
    if (statvfs(dir, &fs)) return UINT64_MAX; /* unknown: the writes say */
    return (uint64_t)fs.f_bavail * fs.f_frsize;
}

static int rx_begin(void *ctx, uint8_t from, uint64_t slot, uint64_t total, char *why, size_t whylen)
{
    struct rabia_replica *r = ctx;
    char dir[640];
    rx_dir(r, dir, sizeof dir);
    return rabia_snapfile_begin(&r->peers[from].rx, dir, slot, total, from, why, whylen);
}

static int rx_append(void *ctx, uint8_t from, const uint8_t *p, uint32_t n, char *why, size_t whylen)
{
    struct rabia_replica *r = ctx;
    return rabia_snapfile_append(&r->peers[from].rx, p, n, why, whylen);
}

static int rx_commit(void *ctx, uint8_t from, char *why, size_t whylen)
{
    struct rabia_replica *r = ctx;
    return rabia_snapfile_commit(&r->peers[from].rx, why, whylen);
}

static void rx_abort(void *ctx, uint8_t from)
{
    struct rabia_replica *r = ctx;
    rabia_snapfile_abort(&r->peers[from].rx);
}

/* The received file of `slot`, mapped and installed; a wal replica keeps it
 * as its snapshot, a memory one removes it. */
static int rx_install(void *ctx, uint8_t from, uint64_t slot)
{
    struct rabia_replica *r = ctx;
    char why[900], dir[640];
    rx_dir(r, dir, sizeof dir);
    const uint8_t *data = NULL;
    size_t len = 0;
    int rc = rabia_snapfile_map(dir, slot, &data, &len, why, sizeof why);
    if (rc) {
        replica_log(r, RABIA_LOG_WARN, "snapshot from replica %u not installed: %s", from + 1, why);
    } else if ((rc = node_install_snapshot(r->node, data, len, slot)) == -EINVAL) {
        uint64_t own = 0;
        (void)rabia_rsm_snapshot_slot(data, len, &own);
        if (own == slot)
            replica_log(r, RABIA_LOG_WARN,
                        "snapshot from replica %u refused: taken at slot %" PRIu64 " as announced, but its state "
                        "does not restore (corrupt contents; the peer's state or software needs a look)",
                        from + 1, slot);
        else
            replica_log(r, RABIA_LOG_WARN,
                        "snapshot from replica %u refused: announced for slot %" PRIu64 " but %s %" PRIu64
                        " (a corrupt or mislabelled snapshot; the peer's state or software needs a look)",
                        from + 1, slot, own ? "taken at slot" : "unreadable, slot", own);
    } else if (rc && rc != -EALREADY) { /* -EALREADY: caught up meanwhile */
        replica_log(r, RABIA_LOG_WARN, "snapshot from replica %u refused: %s", from + 1, rabia_strerror(rc));
    }
    if (!rc) { /* its hash, without serializing the state again (the install is O(state) already) */
        uint64_t h = 0;
        /* stored in it and checked against the restored state by the
         * install; a peer of an older version stores none ("RSM2") */
        if (rabia_rsm_snapshot_hash(data, len, &h)) h = rabia_rsm_hash(r->rsm);
        r->hash_value = h;
        r->hash_slot = slot;
        r->hash_us = rio_now_us();
    }
    rabia_snapfile_unmap(data, len);
    char path[700];
    snprintf(path, sizeof path, "%s/%020" PRIu64 ".snap", dir, slot);
    if (rc || !r->wal) unlink(path); /* wal: the file is this replica's snapshot now */
    if (rc) return rc;
    if (r->wal) durable_snapshot_adopted(&r->dur, slot);
    replica_log(r, RABIA_LOG_INFO, "installed snapshot from replica %u at slot %" PRIu64 " (%zu bytes)", from + 1, slot, len);
    /* An OPEN's answer (the session's id) is not kept anywhere: if the
     * snapshot covers the application's OPEN, open again (a native client
     * does the same by retrying its OPEN). Its session then stays unused. */
    if (r->app_open == 1) {
        node_forget(r->node, r->app_client_id, 1);
        replica_log(r, RABIA_LOG_INFO, "snapshot install while the application's session was opening: opening it again");
        replica_app_new_session(r);
    }
    return 0;
}

static void xfer_note(void *ctx, int level, const char *msg) { replica_log(ctx, level, "%s", msg); }
static uint64_t xfer_now(void *ctx)
{
    (void)ctx;
    return rio_turn_us(); /* the loop turn's: no clock read per turn for the transfers */
}

/* With durability = memory a received snapshot is a scratch file in
 * data_dir/incoming, removed once installed; a crash in the middle of a
 * transfer, or between its commit and that removal, left it there for good
 * (up to a whole state; found by review). Removed at start: nothing in
 * that folder outlives the process that wrote it. The data dir is ours
 * (locked) by now. */
static void clean_incoming(struct rabia_replica *r)
{
    /* (with the log, received files go to snap/, whose load removes .tmp
     * files; incoming/ is then unused and emptied all the same) */
    char dir[640];
    snprintf(dir, sizeof dir, "%s/incoming", r->cfg.data_dir);
    int n = rabia_snapfile_clear(dir);
    if (n) replica_log(r, RABIA_LOG_INFO, "removed %d leftover received snapshot file(s) from %s", n, dir);
}

void replica_transfers_init(struct rabia_replica *r)
{
    clean_incoming(r);
    /* at most SNAP_TX_QUEUED bytes wait on a peer connection and
     * SNAP_TX_TURN leave per loop turn, so neither side holds more than
     * that of a snapshot in memory besides the source, and the cluster
     * keeps serving; a transfer in that moved no byte for 30 s is dropped
     * (a sender that stalls must not hold the one receiving slot and the
     * file for good), one idle for 2 s gives way to another peer's; a
     * peer that declined a transfer is offered none for 10 s (the core
     * offers again while it is behind; a sender with durability = memory
     * serializes the state for each transfer it starts, so not more often) */
    struct snapstream_cfg c = {.chunk = SNAP_CHUNK, .max = SNAP_MAX, .queued = SNAP_TX_QUEUED,
                               .per_turn = SNAP_TX_TURN, .stall_us = 30000000u, .yield_us = 2000000u,
                               .decline_backoff_us = 10000000u, .rate = r->cfg.transfer_rate,
                               /* with the log a capped transfer's peer catches up from the log,
                                  pinned meanwhile: nothing to lift for */
                               .log_retain = r->cfg.durability == RABIA_DURABILITY_WAL ? 0 : r->cfg.log_retain,
                               /* the peer asks for the slots after the snapshot as soon as it is
                                  installed (node_log_pin holds them from then on) */
                               .pin_us = 5000000u};
    struct snapstream_env e = {.ctx = r, .now_us = xfer_now, .note = xfer_note, .link_ready = link_ready,
                               .link_pending = link_pending, .source_open = tx_open, .source_read = tx_read,
                               .source_close = tx_close, .send = link_send, .space_free = rx_space,
                               .file_begin = rx_begin, .file_append = rx_append, .file_commit = rx_commit,
                               .file_abort = rx_abort, .install = rx_install};
    snapstream_init(&r->xfer, &c, &e, r->self, r->cfg.n);
}

void replica_send_snapshot(void *ctx, uint8_t to) { snapstream_want(&((struct rabia_replica *)ctx)->xfer, to); }

bool replica_snap_out_busy(const struct rabia_replica *r)
{
    return r->snap_out_readers > 0 || snapstream_sending(&r->xfer);
}
