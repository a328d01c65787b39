/* The durability layer (durable.h): group commit of the core's persist
 * records and decisions, sends held until their records are durable,
 * recovery from snapshot file + log, snapshots by a forked child. */
#define _GNU_SOURCE
#include "durable.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec.h"
#include "invariant.h"
#include "loop.h"
#include "snapfile.h"

/* ------------------------------------------------------------------ */
/* recovery */

#define RECENT_OWN 512 /* own batches' decided slots remembered by the scan */

struct scan_ctx {
    struct durable *d;
    struct rabia_rsm *rsm;
    struct {
        uint64_t seq, slot;
    } recent[RECENT_OWN];          /* ring: where own batches were decided */
    uint32_t n_recent;
    uint64_t max_own_seq;     /* highest own batch seq in the log */
    uint64_t applied_records; /* DECIDED records applied */
    uint32_t prune_at;
};

/* Keep a copy of a record for RABIA_EV_RESTORE; bodies go into the arena and
 * are linked up once the scan is over (the arena moves while it grows). */
static int keep(struct durable *d, const struct rabia_msg *m)
{
    if (d->rn == d->rcap) {
        uint32_t cap = d->rcap ? d->rcap * 2 : 256;
        struct rabia_msg *v = realloc(d->rmsgs, cap * sizeof(*v));
        if (!v) return -ENOMEM;
        d->rmsgs = v;
        d->rcap = cap;
    }
    struct rabia_msg c = *m;
    if (m->body_len) {
        size_t off = d->arena.len;
        if (rabia_buf_append(&d->arena, m->body, m->body_len)) return -ENOMEM;
        c.body = (const uint8_t *)(uintptr_t)off;
    } else {
        c.body = NULL;
    }
    d->rmsgs[d->rn++] = c;
    return 0;
}

/* The slot an own batch was decided in, as far as the scan saw: 0 when
 * unknown (decided inside the snapshot, or long ago). */
static uint64_t decided_at(const struct scan_ctx *s, uint64_t seq)
{
    uint32_t n = s->n_recent < RECENT_OWN ? s->n_recent : RECENT_OWN;
    for (uint32_t k = 0; k < n; k++)
        if (s->recent[k].seq == seq) return s->recent[k].slot;
    return 0;
}

/* An applied own batch is kept (for peers' FETCH, RABIA_EV_RESTORE value 1)
 * while a slot open at the crash could decide it again. */
static bool recent_own(const struct scan_ctx *s, const struct rabia_msg *m, uint64_t applied)
{
    uint64_t at = decided_at(s, m->id.seq);
    if (!at) at = s->d->last_snap_slot; /* inside the snapshot: at most there */
    return at + 2ull * s->d->cfg.window > applied;
}

/* Drop records the rebuilt state has passed: sent records of applied
 * slots, own batches applied (but recently). Keeps the list bounded by
 * what is open. */
static int prune(struct durable *d, struct scan_ctx *sc, struct rabia_rsm *rsm)
{
    uint64_t applied = rabia_rsm_applied(rsm);
    struct rabia_buf arena = {0};
    uint32_t k = 0;
    for (uint32_t i = 0; i < d->rn; i++) {
        struct rabia_msg m = d->rmsgs[i];
        bool own = m.type == RABIA_MSG_BATCH && m.id.proxy == d->cfg.self;
        bool drop = own ? rabia_rsm_batch_applied(rsm, &m.id) && !recent_own(sc, &m, applied) : m.slot <= applied;
        if (drop) continue;
        if (m.body_len) {
            size_t off = arena.len;
            if (rabia_buf_append(&arena, d->arena.data + (uintptr_t)m.body, m.body_len)) {
                rabia_buf_free(&arena);
                return -ENOMEM;
            }
            m.body = (const uint8_t *)(uintptr_t)off;
        }
        d->rmsgs[k++] = m;
    }
    d->rn = k;
    rabia_buf_free(&d->arena);
    d->arena = arena;
    return 0;
}

static int on_record(void *ctx, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len, char *err,
                     size_t errlen)
{
    struct scan_ctx *s = ctx;
    struct durable *d = s->d;
    struct rabia_msg m;
    int rc = rabia_msg_decode(frame, len, &m);
    if (rc) {
        snprintf(err, errlen, "a log record of slot %" PRIu64 " does not decode (%s): written by a faulty build? "
                 "Move the data dir aside and start this replica with --rejoin", slot, rabia_strerror(rc));
        return -EINVAL;
    }
    uint64_t applied = rabia_rsm_applied(s->rsm);
    switch (type) {
    case RABIA_WAL_DECIDED:
        if (m.type != RABIA_MSG_DECISION || m.slot != slot) break;
        if (slot <= applied) return 0;
        if (slot != applied + 1) {
            snprintf(err, errlen,
                     "the log holds slot %" PRIu64 " but the state ends at slot %" PRIu64
                     ": the snapshot file covering the slots between is missing (deleted by hand?). Restore it from "
                     "%s, or move the data dir aside and start this replica with --rejoin",
                     slot, applied, d->snap_dir);
            return -EUCLEAN;
        }
        rc = rabia_rsm_apply_batch(s->rsm, slot, m.value ? &m.id : NULL, m.value ? m.body : NULL,
                                   m.value ? m.body_len : 0, NULL, NULL);
        if (rc) {
            snprintf(err, errlen, "replaying slot %" PRIu64 " from the log: %s", slot, rabia_strerror(rc));
            return rc;
        }
        s->applied_records++;
        if (m.value && m.id.proxy == d->cfg.self) {
            s->recent[s->n_recent % RECENT_OWN].seq = m.id.seq;
            s->recent[s->n_recent % RECENT_OWN].slot = slot;
            s->n_recent++;
        }
        if (d->rn >= s->prune_at) {
            if (prune(d, s, s->rsm)) return -ENOMEM;
            s->prune_at = d->rn * 2 + 1024;
        }
        return 0;
    case RABIA_WAL_SENT:
        if (m.type == RABIA_MSG_HORIZON_REQ) { /* this log began with a recovery (rule 2) */
            d->rejoin_pending = true;
            return 0;
        }
        if (m.type == RABIA_MSG_HORIZON && m.slot == slot) { /* ... which ended here */
            d->rejoin_pending = false;
            if (slot > d->horizon) d->horizon = slot;
            return 0;
        }
        if (m.type == RABIA_MSG_BATCH && m.has_id && m.id.proxy != d->cfg.self) {
            /* another proxy's batch this replica proposed in slot `slot` */
            if (slot <= applied) return 0;
            m.slot = slot;
            m.from = d->cfg.self;
            return keep(d, &m) ? -ENOMEM : 0;
        }
        if (m.type < RABIA_MSG_PROPOSAL || m.type > RABIA_MSG_VOTE || m.slot != slot) break;
        if (slot <= applied) return 0;
        m.from = d->cfg.self;
        return keep(d, &m) ? -ENOMEM : 0;
    case RABIA_WAL_BATCH:
        if (m.type != RABIA_MSG_BATCH || !m.has_id || m.id.seq != slot) break;
        if (m.id.proxy != d->cfg.self) break;
        if (m.id.seq > s->max_own_seq) s->max_own_seq = m.id.seq;
        m.from = d->cfg.self;
        return keep(d, &m) ? -ENOMEM : 0;
    default:
        break;
    }
    snprintf(err, errlen, "a log record (type %u, slot %" PRIu64 ", %s) is not what this build writes: move the "
             "data dir aside and start this replica with --rejoin", type, slot, rabia_msg_type_name(m.type));
    return -EINVAL;
}

/* Remove a folder of plain files (the log's or the snapshots'). */
static int remove_files(const char *dir)
{
    DIR *dd = opendir(dir);
    if (!dd) return errno == ENOENT ? 0 : -errno;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(dd))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (unlink(p) && errno != ENOENT) rc = -errno;
    }
    closedir(dd);
    if (!rc && rmdir(dir) && errno != ENOENT) rc = -errno;
    return rc;
}

static int open_log(struct durable *d, const struct durable_cfg *cfg, struct rabia_rsm *rsm,
                    struct durable_restore *out, struct scan_ctx *scp, char *err, size_t errlen);

int durable_open(struct durable *d, const struct durable_cfg *cfg, const struct durable_hooks *hooks,
                 struct rabia_rsm *rsm, struct durable_restore *out, char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    memset(out, 0, sizeof(*out));
    d->cfg = *cfg;
    d->hooks = *hooks;
    snprintf(d->snap_dir, sizeof d->snap_dir, "%s/snap", cfg->data_dir);
    snprintf(d->wal_dir, sizeof d->wal_dir, "%s/wal", cfg->data_dir);
    /* 1. the newest intact snapshot, restored straight from the mapped file */
    const uint8_t *data = NULL;
    size_t len = 0;
    uint64_t slot = 0;
    char why[800] = "";
    int rc = rabia_snapfile_load(d->snap_dir, &data, &len, &slot, why, sizeof why);
    if (rc < 0) {
        snprintf(err, errlen, "%s", why);
        return rc;
    }
    if (why[0]) fprintf(stderr, "rabia: snapshot: %s\n", why);
    if (rc == 1) {
        uint64_t own = 0;
        rc = rabia_rsm_snapshot_slot(data, len, &own);
        if (!rc && own == slot) rc = rabia_rsm_restore(rsm, data, len);
        else if (!rc) rc = -EINVAL;
        rabia_snapfile_unmap(data, len);
        if (rc) {
            snprintf(err, errlen,
                     "%s/%020" PRIu64 ".snap: intact but the state machine refuses it (%s): a snapshot of another "
                     "state machine? Check state-machine, or move the data dir aside and start with --rejoin",
                     d->snap_dir, slot, rabia_strerror(rc));
            return rc;
        }
        d->last_snap_slot = slot;
    }
    /* 2. the log on top of it (the scan's state is large: on the heap) */
    struct scan_ctx *scp = calloc(1, sizeof(*scp));
    if (!scp) return -ENOMEM;
    scp->d = d;
    scp->rsm = rsm;
    scp->prune_at = 4096;
    rc = open_log(d, cfg, rsm, out, scp, err, errlen);
    free(scp);
    return rc;
}

static int open_log(struct durable *d, const struct durable_cfg *cfg, struct rabia_rsm *rsm,
                    struct durable_restore *out, struct scan_ctx *scp, char *err, size_t errlen)
{
#define sc (*scp)
    int rc;
    struct rabia_wal_config wc = {.dir = d->wal_dir, .segment_bytes = cfg->segment_bytes,
                                  .cluster_id = cfg->cluster_id, .replica = cfg->self,
                                  .batch_incarnation = cfg->incarnation, .allow_buffered = cfg->allow_buffered};
    struct rabia_wal_info info;
    rc = rabia_wal_open(&d->wal, &wc, on_record, &sc, &info, err, errlen);
    if (rc) return rc;
    if (d->rejoin_pending) {
        /* A recovery from the peers (--rejoin, rule 2) was cut short: what
         * this log holds is only what was learned meanwhile. Start over with
         * a new log (a new batch id namespace and HORIZON_REQ nonce). */
        fprintf(stderr, "rabia: %s: a recovery from the peers did not finish before the last stop: starting it "
                "again with a new log\n", d->wal_dir);
        rabia_wal_close(d->wal);
        d->wal = NULL;
        if (remove_files(d->wal_dir) || remove_files(d->snap_dir)) {
            snprintf(err, errlen, "cannot remove %s and %s to restart the recovery: remove them by hand and start "
                     "with --rejoin", d->wal_dir, d->snap_dir);
            return -EIO;
        }
        d->rn = 0;
        rabia_buf_clear(&d->arena);
        d->horizon = 0;
        d->last_snap_slot = 0;
        out->rejoin = true;
        return -EAGAIN; /* the caller creates a fresh apply layer and opens again */
    }
    if ((rc = prune(d, &sc, rsm))) return rc;
    /* 3. what the core gets back: own batches first (proposals name them),
     * then the sent records in log order; a decided own batch only moves the
     * core's next sequence number past the highest one ever sent */
    struct rabia_msg *v = calloc((size_t)d->rn + 1, sizeof(*v));
    if (!v) return -ENOMEM;
    uint32_t k = 0;
    bool have_max = false;
    for (uint32_t i = 0; i < d->rn; i++) {
        if (d->rmsgs[i].type != RABIA_MSG_BATCH || d->rmsgs[i].id.proxy != cfg->self) continue;
        v[k] = d->rmsgs[i];
        if (rabia_rsm_batch_applied(rsm, &v[k].id)) v[k].value = 1; /* kept for FETCH only */
        if (v[k].id.seq == sc.max_own_seq) have_max = true;
        k++;
    }
    if (sc.max_own_seq && !have_max) {
        v[k++] = (struct rabia_msg){.type = RABIA_MSG_BATCH, .from = cfg->self, .has_id = 1, .value = 1,
                                    .id = {.proxy = cfg->self, .incarnation = info.batch_incarnation,
                                           .seq = sc.max_own_seq}};
    }
    for (uint32_t i = 0; i < d->rn; i++) /* then in log order: other proxies' bodies before the proposals naming them */
        if (d->rmsgs[i].type != RABIA_MSG_BATCH || d->rmsgs[i].id.proxy != cfg->self) v[k++] = d->rmsgs[i];
    for (uint32_t i = 0; i < k; i++)
        if (v[i].body_len) v[i].body = d->arena.data + (uintptr_t)v[i].body;
    free(d->rmsgs);
    d->rmsgs = v;
    d->rn = d->rcap = k;
    out->msgs = v;
    out->n = k;
    out->applied = rabia_rsm_applied(rsm);
    out->log_existed = info.existed;
    out->batch_incarnation = info.batch_incarnation;
    out->horizon = d->horizon;
    struct rabia_wal_stats ws;
    rabia_wal_stats(d->wal, &ws);
    d->log_bytes_at_snap = ws.bytes;
    fprintf(stderr,
            "rabia: log %s: %" PRIu64 " records in %" PRIu64 " segment(s), %s, block %u; state at slot %" PRIu64
            " (snapshot %" PRIu64 " + %" PRIu64 " decided slots replayed); %u record(s) of open slots and own "
            "batches to resume%s\n",
            d->wal_dir, info.records, info.segments, info.direct ? "O_DIRECT" : "buffered (development only)",
            info.block, out->applied, d->last_snap_slot, sc.applied_records, k,
            info.torn_bytes ? "; a torn last write was cut off" : "");
    return 0;
#undef sc
}

void durable_close(struct durable *d)
{
    if (d->snap_pid > 0) {
        int st;
        waitpid(d->snap_pid, &st, 0); /* a snapshot half written is a .tmp file: removed at next start */
        d->snap_pid = 0;
    }
    rabia_wal_close(d->wal);
    d->wal = NULL;
    rabia_buf_free(&d->held_open);
    rabia_buf_free(&d->held_flight);
    rabia_buf_free(&d->arena);
    free(d->rmsgs);
    d->rmsgs = NULL;
}

/* ------------------------------------------------------------------ */
/* the write path */

int durable_mark_recovering(struct durable *d, uint64_t nonce)
{
    struct rabia_msg m = {.type = RABIA_MSG_HORIZON_REQ, .from = d->cfg.self, .u64 = nonce};
    return rabia_wal_append_msg(d->wal, RABIA_WAL_SENT, 0, &m);
}

static int hold(struct durable *d, uint8_t to, const struct rabia_msg *m)
{
    size_t need = rabia_msg_encoded_size(m);
    if (!need) return 0; /* cannot be encoded: the direct path logs and drops it too */
    struct rabia_buf *b = &d->held_open;
    if (rabia_buf_reserve(b, b->len + 5 + need)) return -ENOMEM;
    uint8_t *p = b->data + b->len;
    int k = rabia_msg_encode(m, p + 5, need);
    if (k < 0) return 0;
    p[0] = to;
    uint32_t l = (uint32_t)k;
    memcpy(p + 1, &l, 4);
    b->len += 5 + (size_t)k;
    return 0;
}

int durable_update(struct durable *d, const struct rabia_update *u)
{
    if (d->failed) return -EIO;
    int rc = 0;
    for (uint32_t i = 0; i < u->n_persist && !rc; i++) {
        const struct rabia_msg *m = &u->persist[i];
        if (m->type == RABIA_MSG_BATCH && m->id.proxy != d->cfg.self) { /* a body it proposes: SENT, by slot */
            struct rabia_msg b = *m;
            b.slot = 0; /* the frame has no slot: the record carries it */
            rc = rabia_wal_append_msg(d->wal, RABIA_WAL_SENT, m->slot, &b);
            continue;
        }
        rc = m->type == RABIA_MSG_BATCH ? rabia_wal_append_msg(d->wal, RABIA_WAL_BATCH, m->id.seq, m)
                                        : rabia_wal_append_msg(d->wal, RABIA_WAL_SENT, m->slot, m);
        if (m->type == RABIA_MSG_HORIZON && m->slot > d->horizon) d->horizon = m->slot;
    }
    for (uint32_t i = 0; i < u->n_applies && !rc; i++) {
        const struct rabia_apply *a = &u->applies[i];
        struct rabia_msg m = {.type = RABIA_MSG_DECISION, .from = d->cfg.self, .slot = a->slot};
        if (!a->null) {
            m.value = 1;
            m.has_id = 1;
            m.id = a->id;
            m.body = a->body;
            m.body_len = a->body_len;
        }
        rc = rabia_wal_append_msg(d->wal, RABIA_WAL_DECIDED, a->slot, &m);
    }
    for (uint32_t i = 0; i < u->n_sends && !rc; i++) rc = hold(d, u->sends[i].to, &u->sends[i].msg);
    return rc;
}

static void release(struct durable *d, struct rabia_buf *b)
{
    for (size_t p = 0; p + 5 <= b->len;) {
        uint32_t l;
        memcpy(&l, b->data + p + 1, 4);
        d->hooks.send(d->hooks.ctx, b->data[p], b->data + p + 5, l);
        p += 5 + l;
    }
    rabia_buf_clear(b);
}

static void visit(void *ctx, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len)
{
    struct durable *d = ctx;
    if (type != RABIA_WAL_DECIDED || d->failed) return;
    struct rabia_msg m;
    if (rabia_msg_decode(frame, len, &m)) {
        d->failed = true;
        d->hooks.fatal(d->hooks.ctx, "a decision just written to the log does not decode (memory corruption?)");
        return;
    }
    int rc = d->hooks.apply(d->hooks.ctx, slot, m.value ? &m.id : NULL, m.value ? m.body : NULL,
                            m.value ? m.body_len : 0);
    if (rc) d->failed = true; /* the hook said why */
}

static void written(void *ctx, int res)
{
    struct durable *d = ctx;
    RABIA_ASSERT(d->write_busy);
    d->write_busy = false;
    uint64_t us = rio_now_us() - d->write_started_us;
    d->last_write_us = us;
    if (us > d->max_write_us) d->max_write_us = us;
    if (rabia_wal_written(d->wal, res)) {
        char why[256];
        snprintf(why, sizeof why,
                 "a write to the log failed (%s): the disk cannot be trusted to hold what was acknowledged; "
                 "check the device (dmesg), then restart",
                 res < 0 ? strerror(-res) : "short write");
        d->failed = true;
        d->hooks.fatal(d->hooks.ctx, why);
        return;
    }
    rabia_wal_visit_durable(d->wal, visit, d); /* replies now report durable decisions */
    if (!d->failed) release(d, &d->held_flight);
}

void durable_flush(struct durable *d, struct rio_loop *loop)
{
    if (d->write_busy || d->failed) return;
    struct rabia_wal_write io;
    int rc = rabia_wal_seal(d->wal, &io);
    if (rc == 0) {
        /* nothing to write: sends held only behind the write that just
         * finished leave now */
        if (d->held_open.len) release(d, &d->held_open);
        return;
    }
    if (rc == -EAGAIN) return; /* waiting for a segment: durable_refusal says why */
    if (rc < 0) {
        char why[200];
        snprintf(why, sizeof why, "the log cannot take the next write (%s)", strerror(-rc));
        d->failed = true;
        d->hooks.fatal(d->hooks.ctx, why);
        return;
    }
    /* the sends wait for every record before them: when a large group goes
     * out in parts, they stay held until its last part */
    RABIA_ASSERT(d->held_flight.len == 0);
    if (!rabia_wal_pending(d->wal)) {
        struct rabia_buf t = d->held_flight;
        d->held_flight = d->held_open;
        d->held_open = t;
        rabia_buf_clear(&d->held_open);
    }
    d->write_busy = true;
    d->write_started_us = rio_now_us();
    rc = rio_write(loop, io.fd, io.buf, io.len, io.off, io.rw_flags, written, d);
    if (rc) {
        d->write_busy = false;
        char why[200];
        snprintf(why, sizeof why, "submitting a log write failed (%s)", strerror(-rc));
        d->failed = true;
        d->hooks.fatal(d->hooks.ctx, why);
    }
}

/* ------------------------------------------------------------------ */
/* snapshots */

void durable_snapshot_adopted(struct durable *d, uint64_t slot)
{
    if (slot > d->last_snap_slot) d->last_snap_slot = slot;
    rabia_snapfile_prune(d->snap_dir, 2);
}

void durable_snapshot_soon(struct durable *d) { d->snap_forced = true; }

void durable_tick(struct durable *d, struct rabia_rsm *rsm, uint64_t now, uint64_t keep_batch_seq, bool recovering)
{
    if (d->snap_pid > 0) {
        int st;
        pid_t p = waitpid(d->snap_pid, &st, WNOHANG);
        if (p == 0) return;
        d->snap_pid = 0;
        if (p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            d->snapshots_taken++;
            if (d->snap_slot > d->last_snap_slot) d->last_snap_slot = d->snap_slot;
            rabia_snapfile_prune(d->snap_dir, 2);
            /* the log prefix the snapshot covers goes; the segment holding the
             * newest own batch stays (next_seq survives a restart) */
            int gone = rabia_wal_release(d->wal, d->last_snap_slot, keep_batch_seq);
            fprintf(stderr,
                    "rabia: snapshot at slot %" PRIu64 " written in %.1f s (fork stalled the loop %" PRIu64
                    " us); %d log segment(s) released\n",
                    d->snap_slot, (double)(now - d->snap_started_us) / 1e6, d->last_fork_us, gone);
        } else {
            d->snapshot_failures++;
            fprintf(stderr, "rabia: the snapshot at slot %" PRIu64 " failed (see the message above); retrying later\n",
                    d->snap_slot);
        }
        d->last_snap_us = now;
        return;
    }
    uint64_t applied = rabia_rsm_applied(rsm);
    /* while recovering the log must keep its first record (it says so) */
    if (recovering || applied <= d->last_snap_slot) return;
    struct rabia_wal_stats ws;
    rabia_wal_stats(d->wal, &ws);
    bool by_size = ws.bytes - d->log_bytes_at_snap >= d->cfg.max_log_size || d->snap_forced;
    bool by_time = d->cfg.snapshot_interval_s &&
                   now - d->last_snap_us >= (uint64_t)d->cfg.snapshot_interval_s * 1000000u;
    if (!d->last_snap_us) d->last_snap_us = now; /* the interval counts from the start */
    if (!by_size && !(by_time && d->last_snap_us != now)) return;
    if (d->snapshot_failures && now - d->last_snap_us < 1000000u) return; /* after a failure: at most once a second */
    uint64_t t0 = rio_now_us();
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* the child: the state as of `applied`, written durably; never returns.
         * It must not outlive the replica holding what the replica holds:
         * the data-dir flock (a restart after kill -9 found it taken by a
         * snapshot child still writing), the listening sockets, the ring. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        close_range(3, ~0u, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        struct rabia_buf b = {0};
        char err[800];
        int rc = rabia_rsm_snapshot(rsm, &b);
        if (rc) fprintf(stderr, "rabia: snapshot at slot %" PRIu64 ": %s\n", applied, rabia_strerror(rc));
        else if ((rc = rabia_snapfile_write(d->snap_dir, applied, b.data, b.len, err, sizeof err)))
            fprintf(stderr, "rabia: %s\n", err);
        _exit(rc ? 1 : 0);
    }
    d->last_fork_us = rio_now_us() - t0;
    if (d->last_fork_us > d->max_fork_us) d->max_fork_us = d->last_fork_us;
    if (pid < 0) {
        d->snapshot_failures++;
        d->last_snap_us = now;
        fprintf(stderr, "rabia: fork for a snapshot: %s\n", strerror(errno));
        return;
    }
    d->snap_pid = pid;
    d->snap_forced = false;
    d->snap_slot = applied;
    d->snap_keep_seq = keep_batch_seq;
    d->snap_started_us = now;
    d->log_bytes_at_snap = ws.bytes;
}

const char *durable_refusal(struct durable *d)
{
    if (d->failed) return "the write-ahead log failed; this replica is stopping";
    rabia_wal_disk_error(d->wal, d->disk_err, sizeof d->disk_err);
    if (d->disk_err[0]) return d->disk_err;
    if (rabia_wal_stalled(d->wal)) return "the write-ahead log is waiting for its next segment file";
    return "";
}

int durable_status(struct durable *d, char *buf, size_t len)
{
    struct rabia_wal_stats ws;
    rabia_wal_stats(d->wal, &ws);
    return snprintf(buf, len,
                    "wal_groups:%" PRIu64 "\r\nwal_records:%" PRIu64 "\r\nwal_bytes:%" PRIu64
                    "\r\nwal_pad_bytes:%" PRIu64 "\r\nwal_bytes_on_disk:%" PRIu64 "\r\nwal_segments_released:%" PRIu64
                    "\r\nwal_segment_waits:%" PRIu64 "\r\nwal_last_write_us:%" PRIu64 "\r\nwal_max_write_us:%" PRIu64
                    "\r\nsnapshots:%" PRIu64 "\r\nsnapshot_failures:%" PRIu64 "\r\nlast_snapshot_slot:%" PRIu64
                    "\r\nsnapshot_in_progress:%d\r\nlast_fork_us:%" PRIu64 "\r\nmax_fork_us:%" PRIu64
                    "\r\ndisk_error:%s\r\n",
                    ws.groups, ws.records, ws.bytes, ws.pad_bytes, ws.bytes_on_disk, ws.segments_released,
                    ws.segment_waits, d->last_write_us, d->max_write_us, d->snapshots_taken, d->snapshot_failures,
                    d->last_snap_slot, d->snap_pid > 0, d->last_fork_us, d->max_fork_us, durable_refusal(d));
}
