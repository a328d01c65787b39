/* Backups (rabia-cli backup) and restores (rabiad --restore).
 *
 * A backup is a snapshot file (persist/snapfile.c's format: header with the
 * slot, length and checksum, then the apply layer's snapshot: sessions and
 * state machine at exactly one applied slot). A native client asks with
 * BACKUP_REQ; the replica answers with BACKUP_CHUNKs, streamed as snapshot
 * transfers to peers are (transfer.c): SNAP_CHUNK pieces, at most
 * SNAP_TX_QUEUED bytes queued on the connection and SNAP_TX_TURN sent per
 * loop turn, so neither side holds more than that besides the source.
 *
 * The snapshot's slot is at least the read index the replica gets when
 * asked (node_index_ask: every slot a majority knew of), which the state
 * reaches first: a backup holds every write acknowledged before it.
 * The source is never built in the loop with durability = wal: the backup
 * waits for a snapshot file at or after that slot
 * (a forked child writes one if the newest is older: durable_snapshot_soon)
 * and reads that file. With durability = memory it shares transfer.c's one
 * serialized copy (r->snap_out), built in the loop as for peer transfers.
 *
 * A restore seeds a new replica: the backup is checked (checksums), and with
 * wal copied into the empty data dir as its first snapshot; the replica then
 * starts as a first start whose state is at the backup's slot (durable_open
 * loads it; the core starts at slot + 1). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "auth.h"
#include "internal.h"
#include "invariant.h"
#include <xxhash.h>

#define BACKUP_MAX 4                    /* backups served at once */
#define BACKUP_WAIT_US (120u * 1000000u) /* longest wait for a snapshot file */
/* longest wait for the read index: a replica cut off from its peers would
 * otherwise hold rabia-cli the whole 120 s before it asks the next one */
#define BACKUP_INDEX_WAIT_US (10u * 1000000u)

struct backup_tx {
    bool active, streaming;
    uint32_t conn, gen;
    uint64_t want;        /* the snapshot must be at or after this slot */
    uint64_t ticket;      /* node_index_ask's, until its read index raised want (0: none, or had) */
    uint64_t asked_us;
    uint64_t retry_us;    /* the source is looked for again from then (a folder listing, a fork request) */
    int fd;               /* wal: the snapshot file; -1 memory (snap_out) */
    uint64_t slot, off, total;
};

struct replica_backup {
    struct backup_tx tx[BACKUP_MAX];
    uint32_t n_active;
};

static void refuse(struct rabia_replica *r, struct rio_conn *c, const char *why)
{
    struct rabia_msg m = {.type = RABIA_MSG_BACKUP_CHUNK, .value = 1, .body = (const uint8_t *)why,
                          .body_len = (uint32_t)strlen(why)};
    replica_send_frame(r, c, &m);
}

static void tx_end(struct rabia_replica *r, struct backup_tx *t)
{
    if (t->fd >= 0) close(t->fd);
    if (t->streaming && t->fd < 0) {
        RABIA_ASSERT(r->snap_out_readers > 0);
        r->snap_out_readers--;
    }
    t->fd = -1;
    t->active = t->streaming = false;
    r->backup->n_active--;
}

void replica_backup_request(struct rabia_replica *r, uint32_t ci)
{
    struct conn *k = &r->conns[ci];
    char why[256];
    if (!replica_auth_may_backup(r, ci, why, sizeof why)) {
        char who[64] = "?";
        rio_conn_peer(k->c, who, sizeof who);
        replica_log(r, RABIA_LOG_WARN, "backup refused to %s (user '%s'): %s", who, k->user, why);
        refuse(r, k->c, why);
        return;
    }
    if (!r->backup && !(r->backup = calloc(1, sizeof(*r->backup)))) {
        refuse(r, k->c, "out of memory");
        return;
    }
    struct replica_backup *b = r->backup;
    if (rabia_core_recovering(r->core)) {
        refuse(r, k->c, "this replica is recovering its state from its peers: ask another replica");
        return;
    }
    if (rabia_rsm_applied(r->rsm) == 0) {
        /* the initial state: with durability = wal no snapshot child ever
         * writes one at slot 0 (durable.c snapshots only past the last one),
         * so it would wait its 120 s and be refused; say so now instead */
        refuse(r, k->c, "nothing to back up: this replica has applied no slot yet (write something first, or ask "
                        "another replica)");
        return;
    }
    struct backup_tx *t = NULL;
    for (int i = 0; i < BACKUP_MAX; i++) {
        if (b->tx[i].active && b->tx[i].conn == ci && b->tx[i].gen == k->gen) {
            refuse(r, k->c, "a backup is already in progress on this connection");
            return;
        }
        if (!b->tx[i].active && !t) t = &b->tx[i];
    }
    if (!t) {
        refuse(r, k->c, "too many backups in progress on this replica (4): retry later");
        return;
    }
    /* The slot applied here is no bound on what the cluster acknowledged:
     * a replica behind its peers (slow, paused, its peers' messages still
     * unread) served a backup without writes other replicas had
     * acknowledged before it was asked (found by review: SIGSTOP one
     * replica, write through another, back up from the first). The
     * snapshot waits for a read index (as a read does: every slot a
     * majority knew of) and for the state to reach it. */
    *t = (struct backup_tx){.active = true, .conn = ci, .gen = k->gen, .want = rabia_rsm_applied(r->rsm),
                            .ticket = node_index_ask(r->node), .asked_us = rio_now_us(), .fd = -1};
    b->n_active++;
    /* taken at once: the client waits patiently from here on (a snapshot
     * child may take a while), not before (a wrong port answers nothing) */
    struct rabia_msg ack = {.type = RABIA_MSG_BACKUP_CHUNK, .value = 2, .slot = t->want};
    replica_send_frame(r, k->c, &ack);
    char who[64] = "?";
    (void)rio_conn_peer(k->c, who, sizeof who);
    replica_log(r, RABIA_LOG_INFO, "backup asked by %s (user %s): a snapshot at slot %" PRIu64 " or later", who,
                k->user[0] ? k->user : "default", t->want);
}

/* The backup's source, once there is one at or after t->want: true when
 * streaming can start. */
static bool source_ready(struct rabia_replica *r, struct backup_tx *t)
{
    if (t->ticket) { /* first the read index: want is at least every slot a majority knew of when asked */
        uint64_t idx;
        if (!node_index_got(r->node, t->ticket, &idx)) return false;
        if (idx > t->want) t->want = idx;
        t->ticket = 0;
    }
    if (rabia_rsm_applied(r->rsm) < t->want) return false; /* the state reaches it first (a snapshot is taken at it) */
    if (!r->wal) {
        bool busy = replica_snap_out_busy(r);
        if (!r->snap_out.len || r->snap_out_slot < t->want) {
            if (busy && r->snap_out.len) return false; /* others read the older copy: wait for them */
            /* O(state) in the loop, as transfer.c's for peers with durability = memory */
            rabia_buf_clear(&r->snap_out);
            if (rabia_rsm_snapshot(r->rsm, &r->snap_out)) {
                rabia_buf_clear(&r->snap_out);
                return false;
            }
            r->snap_out_slot = rabia_rsm_applied(r->rsm);
        }
        t->fd = -1;
        t->slot = r->snap_out_slot;
        t->total = r->snap_out.len;
        r->snap_out_readers++;
        return true;
    }
    uint64_t newest = rabia_snapfile_newest(r->dur.snap_dir);
    if (newest < t->want || !newest) {
        durable_snapshot_soon(&r->dur); /* a forked child writes one at the applied slot */
        return false;
    }
    int fd;
    uint64_t total;
    if (rabia_snapfile_open(r->dur.snap_dir, newest, &fd, &total)) { /* pruned or damaged meanwhile: another */
        durable_snapshot_soon(&r->dur);
        return false;
    }
    t->fd = fd;
    t->slot = newest;
    t->total = total;
    return true;
}

/* Once per loop turn: start backups whose source is ready, send what flow
 * control allows. */
void replica_backup_pump(struct rabia_replica *r)
{
    struct replica_backup *b = r->backup;
    if (!b || !b->n_active) return;
    for (int i = 0; i < BACKUP_MAX; i++) {
        struct backup_tx *t = &b->tx[i];
        if (!t->active) continue;
        struct conn *k = &r->conns[t->conn];
        if (k->kind != CK_CLIENT || k->gen != t->gen || k->closing) { /* the client went away */
            replica_log(r, RABIA_LOG_WARN, "backup at slot %" PRIu64 ": the client left after %" PRIu64 " of %" PRIu64
                        " bytes", t->slot, t->off, t->total);
            tx_end(r, t);
            continue;
        }
        if (!t->streaming) {
            uint64_t now = rio_now_us();
            if (now < t->retry_us) continue; /* not every loop turn: 20 times a second */
            if (!source_ready(r, t)) {
                t->retry_us = now + 50000;
                if (now - t->asked_us > (t->ticket ? BACKUP_INDEX_WAIT_US : BACKUP_WAIT_US) ||
                    rabia_core_recovering(r->core)) {
                    /* waiting for the read index or the state to reach it: the
                     * peers did not answer, or this replica fell behind */
                    char why[300];
                    if (rabia_core_recovering(r->core))
                        snprintf(why, sizeof why, "this replica began recovering its state from its peers: ask "
                                                  "another replica");
                    else if (t->ticket || rabia_rsm_applied(r->rsm) < t->want)
                        snprintf(why, sizeof why, "this replica could not learn or reach the cluster's slot %s "
                                 "(%s): ask another replica", t->ticket ? "within 10 s" : "within 120 s",
                                 t->ticket ? "fewer than a majority of its peers answered" : "it is behind its peers");
                    else
                        snprintf(why, sizeof why, "no snapshot could be taken within 120 s (see this replica's log: "
                                                  "snapshot failures, a full disk?)");
                    replica_log(r, RABIA_LOG_WARN, "backup refused: %s", why);
                    refuse(r, k->c, why);
                    tx_end(r, t);
                }
                continue;
            }
            t->streaming = true;
            t->off = 0;
            replica_log(r, RABIA_LOG_INFO, "backup: sending the snapshot at slot %" PRIu64 " (%" PRIu64 " bytes)",
                        t->slot, t->total);
        }
        uint64_t sent = 0;
        bool failed = false;
        while (t->off < t->total && sent < SNAP_TX_TURN && rio_conn_pending(k->c) < SNAP_TX_QUEUED) {
            uint64_t n = t->total - t->off < SNAP_CHUNK ? t->total - t->off : SNAP_CHUNK;
            const uint8_t *body;
            if (t->fd >= 0) {
                ssize_t got = pread(t->fd, r->chunk, n, (off_t)(RABIA_SNAPFILE_HEADER + t->off));
                if (got != (ssize_t)n) {
                    char why[200];
                    snprintf(why, sizeof why, "reading the snapshot file at slot %" PRIu64 ": %s", t->slot,
                             got < 0 ? strerror(errno) : "short read");
                    replica_log(r, RABIA_LOG_WARN, "backup: %s", why);
                    refuse(r, k->c, why);
                    failed = true;
                    break;
                }
                body = r->chunk;
            } else {
                body = r->snap_out.data + t->off;
            }
            struct rabia_msg m = {.type = RABIA_MSG_BACKUP_CHUNK, .slot = t->slot, .u64 = t->off, .u64b = t->total,
                                  .body = body, .body_len = (uint32_t)n};
            replica_send_frame(r, k->c, &m);
            t->off += n;
            sent += n;
            if (k->closing) break; /* output full: replica_send_frame closed it */
        }
        if (t->off >= t->total || k->closing || failed) {
            if (t->off >= t->total)
                replica_log(r, RABIA_LOG_INFO, "backup at slot %" PRIu64 " sent (%" PRIu64 " bytes)", t->slot,
                            t->total);
            tx_end(r, t);
        }
    }
}

void replica_backup_free(struct rabia_replica *r)
{
    if (!r->backup) return;
    for (int i = 0; i < BACKUP_MAX; i++)
        if (r->backup->tx[i].active) tx_end(r, &r->backup->tx[i]);
    free(r->backup);
    r->backup = NULL;
}

/* ------------------------------------------------------------------ */
/* restore */

/* Whether dir holds any file (besides . and .., and leftover temporary
 * files: what a restore killed during its copy leaves in snap/, which the
 * next writer replaces and a start removes). */
static bool has_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return false;
    struct dirent *de;
    bool any = false;
    while (!any && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        any = strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && (l < 4 || strcmp(de->d_name + l - 4, ".tmp"));
    }
    closedir(d);
    return any;
}

int replica_restore_check(const struct rabia_replica_config *cfg, const struct rabia_sm_ops *sm,
                          struct rabia_snapfile_info *info, char *err, size_t errlen)
{
    if (cfg->rejoin) {
        snprintf(err, errlen, "--restore and --rejoin together: a restore seeds a NEW cluster from a backup, --rejoin "
                 "rebuilds a replica of a running one from its peers; give one of them");
        return -EINVAL;
    }
    char p[700];
    struct stat sb;
    const char *held = NULL;
    snprintf(p, sizeof p, "%s/incarnation", cfg->data_dir);
    if (!stat(p, &sb)) held = "an incarnation file (it ran before)";
    snprintf(p, sizeof p, "%s/wal", cfg->data_dir);
    if (has_files(p)) held = "a log (wal/)";
    snprintf(p, sizeof p, "%s/snap", cfg->data_dir);
    if (has_files(p)) held = "snapshots (snap/)";
    if (held) {
        snprintf(err, errlen,
                 "data-dir %s already holds state (%s): restore only into an empty data dir, or remove it "
                 "(start without --restore to resume what it holds)",
                 cfg->data_dir, held);
        return -EEXIST;
    }
    char why[900];
    int rc = rabia_snapfile_verify(cfg->restore_from, info, why, sizeof why);
    if (rc) {
        snprintf(err, errlen, "restore: %s", why);
        return rc;
    }
    if (strcmp(info->sm, sm->name ? sm->name : "")) {
        snprintf(err, errlen,
                 "restore: %s is a backup of the '%s' state machine, this replica runs '%s' (state-machine): "
                 "restore it into a cluster of the same state machine",
                 cfg->restore_from, info->sm, sm->name ? sm->name : "");
        return -EINVAL;
    }
    return 0;
}

int rabia_replica_restore_check(const struct rabia_replica_config *c, const struct rabia_sm_ops *sm, uint64_t *slot,
                                uint64_t *bytes, char *err, size_t errlen)
{
    RABIA_ASSERT(c && sm && slot && bytes && c->restore_from[0]);
    struct rabia_snapfile_info info;
    int rc = replica_restore_check(c, sm, &info, err, errlen);
    if (rc) return rc;
    *slot = info.slot;
    *bytes = info.len;
    return 0;
}

uint64_t replica_restored_cluster_id(uint64_t members_id, const struct rabia_snapfile_info *info)
{
    RABIA_ASSERT(info);
    uint64_t in[3] = {members_id, info->slot, info->state_hash};
    uint64_t id = XXH64(in, sizeof in, 0x52657374); /* "Rest" */
    return id ? id : 1; /* 0 means "derive it" in the configuration, and a cluster-id file refuses it */
}

int replica_restore_seed(struct rabia_replica *r, const struct rabia_snapfile_info *info, char *err, size_t errlen)
{
    bool wal = r->cfg.durability == RABIA_DURABILITY_WAL;
    const char *path = r->cfg.restore_from;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "restore: %s: %s", path, strerror(e));
        return -e;
    }
    int rc = 0;
    char why[900] = "";
    if (wal) {
        /* copied, in chunks, into the data dir as its first snapshot; durable_open then loads it */
        char dir[640];
        snprintf(dir, sizeof dir, "%s/snap", r->cfg.data_dir);
        struct rabia_snapfile_writer w;
        rc = rabia_snapfile_begin(&w, dir, info->slot, info->len, 0, why, sizeof why);
        for (uint64_t off = 0; !rc && off < info->len;) {
            size_t n = info->len - off < SNAP_CHUNK ? (size_t)(info->len - off) : SNAP_CHUNK;
            ssize_t k = pread(fd, r->chunk, n, (off_t)(RABIA_SNAPFILE_HEADER + off));
            if (k != (ssize_t)n) {
                rc = k < 0 ? -errno : -EIO;
                snprintf(why, sizeof why, "%s: reading at offset %" PRIu64 ": %s", path, RABIA_SNAPFILE_HEADER + off,
                         k < 0 ? strerror(-rc) : "short read (the file changed?)");
                rabia_snapfile_abort(&w);
                break;
            }
            rc = rabia_snapfile_append(&w, r->chunk, n, why, sizeof why);
            if (rc) rabia_snapfile_abort(&w);
            off += n;
        }
        if (!rc) rc = rabia_snapfile_commit(&w, why, sizeof why);
    } else {
        /* memory: the state straight from the mapped backup (nothing on disk to seed) */
        size_t total = (size_t)info->len + RABIA_SNAPFILE_HEADER;
        uint8_t *m = mmap(NULL, total, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            rc = -errno;
            snprintf(why, sizeof why, "%s: mmap: %s", path, strerror(-rc));
        } else {
            rc = rabia_rsm_restore(r->rsm, m + RABIA_SNAPFILE_HEADER, info->len);
            if (rc)
                snprintf(why, sizeof why, "%s: the state machine refuses the state (%s)", path, rabia_strerror(rc));
            munmap(m, total);
        }
    }
    close(fd);
    if (rc) {
        snprintf(err, errlen, "restore: %s", why);
        return rc;
    }
    r->hash_value = info->state_hash; /* status's state_hash at the backup's slot, without hashing again */
    r->hash_slot = info->slot;
    r->hash_us = rio_now_us();
    replica_log(r, RABIA_LOG_INFO, "restore: seeded from %s at slot %" PRIu64 " (%" PRIu64 " bytes, state hash %016"
                PRIx64 "); the cluster goes on from slot %" PRIu64 " as cluster %016" PRIx64 " (%s)", path, info->slot,
                info->len, info->state_hash, info->slot + 1, r->cluster_id,
                r->cfg.cluster_id ? "cluster-id as configured: replicas restored from other backups are not told apart"
                                  : "from the members and this backup: replicas restored from another are refused");
    return 0;
}
