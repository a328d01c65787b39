/* Snapshot transfers between replicas, both directions: a peer behind the
 * retained log gets the state in chunks with flow control; a replica
 * receiving one writes it to a snapshot file and installs it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "codec.h"
#include "internal.h"

/* ------------------------------------------------------------------ */
/* snapshot transfers */

/* Snapshot transfers, streamed: a peer that needs a snapshot gets it in
 * SNAP_CHUNK pieces while the loop goes on serving; at most SNAP_TX_QUEUED
 * bytes wait on its connection and SNAP_TX_TURN leave per loop turn, so
 * neither side ever holds more than that of it in memory besides the source
 * (a snapshot file here, or one serialized copy of the state shared by all
 * transfers with durability = memory). The receiver writes the chunks
 * straight to a snapshot file and restores from it mapped. */
static bool tx_source_ready(struct rabia_replica *r, struct peer *pe)
{
    if (!r->wal) {
        bool busy = r->snap_out_readers > 0; /* backups (backup.c) read it too */
        for (uint8_t p = 0; p < r->cfg.n; p++) busy |= r->peers[p].tx_active;
        if (!busy || !r->snap_out.len) { /* a fresh copy when nobody reads the old one */
            rabia_buf_clear(&r->snap_out);
            if (rabia_rsm_snapshot(r->rsm, &r->snap_out)) {
                replica_log(r, RABIA_LOG_ERROR, "snapshot for a peer: out of memory");
                rabia_buf_clear(&r->snap_out);
                return false;
            }
            r->snap_out_slot = rabia_rsm_applied(r->rsm);
        }
        pe->tx_slot = r->snap_out_slot;
        pe->tx_total = r->snap_out.len;
        pe->tx_fd = -1;
        return true;
    }
    /* the newest snapshot file, if the core's log goes on from it; else a
     * fresh one is taken (forked) and the transfer waits for it */
    uint64_t newest = rabia_snapfile_newest(r->dur.snap_dir);
    if (!newest || newest + 1 < rabia_core_log_first(r->core)) {
        durable_snapshot_soon(&r->dur);
        return false;
    }
    int fd; /* open: a prune during the transfer does not matter */
    uint64_t total;
    if (rabia_snapfile_open(r->dur.snap_dir, newest, &fd, &total)) { /* damaged: take another */
        durable_snapshot_soon(&r->dur);
        return false;
    }
    pe->tx_fd = fd;
    pe->tx_total = total;
    pe->tx_slot = newest;
    return true;
}

static void tx_end(struct peer *pe)
{
    if (pe->tx_fd >= 0) close(pe->tx_fd);
    pe->tx_fd = -1;
    pe->tx_active = false;
}

void replica_send_snapshot(void *ctx, uint8_t to)
{
    struct rabia_replica *r = ctx;
    struct peer *pe = &r->peers[to];
    if (pe->tx_active) return; /* one transfer per peer at a time */
    pe->tx_wanted = true;
}

/* Once per loop turn: start wanted transfers, send what flow control allows. */
void replica_pump_snapshots(struct rabia_replica *r)
{
    for (uint8_t p = 0; p < r->cfg.n; p++) {
        struct peer *pe = &r->peers[p];
        if (!pe->tx_active && !pe->tx_wanted) continue;
        if (!pe->out_ready) { /* the peer asks again once it is back */
            if (pe->tx_active) tx_end(pe);
            pe->tx_wanted = false;
            continue;
        }
        if (!pe->tx_active) {
            if (!tx_source_ready(r, pe)) continue;
            pe->tx_wanted = false;
            pe->tx_active = true;
            pe->tx_off = 0;
            r->m->transfers_sent++;
            replica_log(r, RABIA_LOG_INFO, "sending snapshot at slot %" PRIu64 " (%" PRIu64 " bytes) to replica %u",
                 pe->tx_slot, pe->tx_total, p + 1);
        }
        struct rio_conn *c = r->conns[pe->out].c;
        uint64_t sent = 0;
        while (pe->tx_off < pe->tx_total && sent < SNAP_TX_TURN && rio_conn_pending(c) < SNAP_TX_QUEUED) {
            uint64_t n = pe->tx_total - pe->tx_off < SNAP_CHUNK ? pe->tx_total - pe->tx_off : SNAP_CHUNK;
            const uint8_t *body;
            if (pe->tx_fd >= 0) {
                ssize_t k = pread(pe->tx_fd, r->chunk, n, (off_t)(RABIA_SNAPFILE_HEADER + pe->tx_off));
                if (k != (ssize_t)n) {
                    replica_log(r, RABIA_LOG_WARN, "snapshot for replica %u: reading its file: %s", p + 1,
                         k < 0 ? strerror(errno) : "short read");
                    tx_end(pe);
                    break;
                }
                body = r->chunk;
            } else {
                body = r->snap_out.data + pe->tx_off;
            }
            struct rabia_msg m = {.type = RABIA_MSG_SNAP_CHUNK, .from = r->self, .slot = pe->tx_slot,
                                  .u64 = pe->tx_off, .u64b = pe->tx_total, .body = body, .body_len = (uint32_t)n};
            replica_send_frame(r, c, &m);
            pe->tx_off += n;
            sent += n;
            r->m->transfer_bytes_sent += n;
        }
        if (pe->tx_active && pe->tx_off >= pe->tx_total) tx_end(pe);
    }
}

static void rx_dir(const struct rabia_replica *r, char *out, size_t len)
{
    if (r->wal) snprintf(out, len, "%s", r->dur.snap_dir);
    else snprintf(out, len, "%s/incoming", r->cfg.data_dir); /* memory: a scratch file, removed after */
}

/* A transfer into this replica that moved no byte for this long is dropped
 * (its temporary file with it): a sender that stalls, or repeats empty
 * chunks, must not hold the one receiving slot and the file for good. */
#define RX_STALL_US 30000000u

static void rx_drop(struct rabia_replica *r, uint8_t from, const char *why)
{
    struct peer *pe = &r->peers[from];
    if (!pe->rx_active) return;
    replica_log(r, RABIA_LOG_WARN, "snapshot from replica %u dropped at %" PRIu64 " of %" PRIu64 " bytes: %s",
                from + 1, pe->rx.got, pe->rx.total, why);
    rabia_snapfile_abort(&pe->rx);
    pe->rx_active = false;
}

void replica_snapshot_rx_closed(struct rabia_replica *r, uint8_t from)
{
    rx_drop(r, from, "the peer's connection closed (it sends the snapshot again from the start)");
}

void replica_snapshot_rx_tick(struct rabia_replica *r, uint64_t now)
{
    for (uint8_t p = 0; p < r->cfg.n; p++)
        if (r->peers[p].rx_active && now > r->peers[p].rx_last_us && now - r->peers[p].rx_last_us >= RX_STALL_US)
            rx_drop(r, p, "no bytes for 30 s");
}

void replica_receive_snapshot(struct rabia_replica *r, uint8_t from, const struct rabia_msg *m)
{
    struct peer *pe = &r->peers[from];
    char why[900], dir[640];
    rx_dir(r, dir, sizeof dir);
    if (m->u64 == 0) { /* a new transfer replaces an unfinished one */
        if (pe->rx_active) rabia_snapfile_abort(&pe->rx);
        pe->rx_active = false;
        if (m->slot <= rabia_rsm_applied(r->rsm) || m->slot < rabia_core_next_apply(r->core)) return;
        if (m->u64b > SNAP_MAX) {
            replica_log(r, RABIA_LOG_WARN, "snapshot from replica %u refused: %" PRIu64 " bytes announced, at most %llu",
                 from + 1, m->u64b, (unsigned long long)SNAP_MAX);
            return;
        }
        for (uint8_t q = 0; q < r->cfg.n; q++) { /* one transfer at a time; a stalled one gives way */
            struct peer *o = &r->peers[q];
            if (q != from && o->rx_active && rio_now_us() - o->rx_last_us < 2000000) return;
        }
        struct statvfs fs;
        if (statvfs(dir, &fs) == 0 && (uint64_t)fs.f_bavail * fs.f_frsize < m->u64b) {
            replica_log(r, RABIA_LOG_WARN,
                        "snapshot from replica %u refused: %" PRIu64 " bytes announced, %llu free in %s (free "
                        "space there; the peer offers it again)",
                        from + 1, m->u64b, (unsigned long long)fs.f_bavail * fs.f_frsize, dir);
            return;
        }
        if (rabia_snapfile_begin(&pe->rx, dir, m->slot, m->u64b, from, why, sizeof why)) {
            replica_log(r, RABIA_LOG_WARN, "snapshot from replica %u not received: %s", from + 1, why);
            return;
        }
        pe->rx_active = true;
        pe->rx_last_us = rio_now_us();
        r->m->transfers_received++;
        replica_log(r, RABIA_LOG_INFO, "receiving a snapshot at slot %" PRIu64 " (%" PRIu64 " bytes) from replica %u",
             m->slot, m->u64b, from + 1);
    }
    if (!pe->rx_active || m->slot != pe->rx.slot || m->u64 != pe->rx.got || m->u64b != pe->rx.total) return;
    if (m->body_len == 0) { /* a sender never sends one: progress is bytes, not chunks */
        rx_drop(r, from, "an empty chunk");
        return;
    }
    pe->rx_last_us = rio_now_us();
    if (rabia_snapfile_append(&pe->rx, m->body, m->body_len, why, sizeof why)) {
        rx_drop(r, from, why);
        return;
    }
    if (pe->rx.got < pe->rx.total) return;
    uint64_t slot = pe->rx.slot;
    pe->rx_active = false;
    if (rabia_snapfile_commit(&pe->rx, why, sizeof why)) {
        replica_log(r, RABIA_LOG_WARN, "snapshot from replica %u not installed: %s", from + 1, why);
        return;
    }
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
    if (rc) return;
    if (r->wal) durable_snapshot_adopted(&r->dur, slot);
    r->m->snapshots_installed++;
    replica_log(r, RABIA_LOG_INFO, "installed snapshot from replica %u at slot %" PRIu64 " (%zu bytes)", from + 1, slot, len);
    /* An OPEN's answer (the session's id) is not kept anywhere: if the
     * snapshot covers the application's OPEN, open again (a native client
     * does the same by retrying its OPEN). Its session then stays unused. */
    if (r->app_open == 1) {
        node_forget(r->node, r->app_client_id, 1);
        replica_log(r, RABIA_LOG_INFO, "snapshot install while the application's session was opening: opening it again");
        replica_app_new_session(r);
    }
}
