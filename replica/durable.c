/* The durability layer (durable.h): group commit of the core's persist
 * records and decisions, sends held until their records are durable,
 * recovery from snapshot file + log, snapshots by a forked child. */
#define _GNU_SOURCE
#include "durable.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "codec.h"
#include "invariant.h"
#include "loop.h"
#include "snapfile.h"

_Static_assert((int)RABIA_WAL_SENT == (int)NODE_REC_SENT && (int)RABIA_WAL_BATCH == (int)NODE_REC_BATCH &&
                   (int)RABIA_WAL_DECIDED == (int)NODE_REC_DECIDED && (int)RABIA_WAL_RESERVE == (int)NODE_REC_RESERVE &&
                   (int)RABIA_WAL_DECIDED_REF == (int)NODE_REC_DECIDED_REF,
               "node.h and wal.h name the same record types");

/* ------------------------------------------------------------------ */
/* recovery */

/* Remove a folder of plain files (the snapshots'; the log's goes in an
 * order of its own: rabia_wal_remove). */
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

static int on_record(void *ctx, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len, char *err,
                     size_t errlen)
{
    return replay_record(ctx, type, slot, frame, len, err, errlen);
}

static int open_log(struct durable *d, const struct durable_cfg *cfg, struct durable_restore *out, char *err,
                    size_t errlen);

int durable_open(struct durable *d, const struct durable_cfg *cfg, const struct durable_hooks *hooks,
                 struct rabia_rsm *rsm, struct durable_restore *out, char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    d->snap_pipe = -1;
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
        if (rc == RABIA_E_FEATURE) { /* a newer build's state: kv/README.md "Feature levels" */
            snprintf(err, errlen, "%s/%020" PRIu64 ".snap: %s", d->snap_dir, slot, rabia_strerror(rc));
            return rc;
        }
        if (rc) {
            snprintf(err, errlen,
                     "%s/%020" PRIu64 ".snap: intact but the state machine refuses it (%s): a snapshot of another "
                     "state machine? Check state-machine, or move the data dir aside and start with --rejoin",
                     d->snap_dir, slot, rabia_strerror(rc));
            return rc;
        }
        d->sched.last_slot = slot;
    }
    /* 2. the log on top of it (replay.c: the same recovery the simulator runs) */
    d->replay = calloc(1, sizeof(*d->replay)); /* large: not on the stack */
    if (!d->replay) return -ENOMEM;
    replay_init(d->replay, cfg->self, cfg->window, d->sched.last_slot, rsm);
    return open_log(d, cfg, out, err, errlen);
}

static int open_log(struct durable *d, const struct durable_cfg *cfg, struct durable_restore *out, char *err,
                    size_t errlen)
{
    struct replay *rp = d->replay;
    struct rabia_wal_config wc = {.dir = d->wal_dir, .segment_bytes = cfg->segment_bytes,
                                  .cluster_id = cfg->cluster_id, .replica = cfg->self,
                                  .batch_incarnation = cfg->incarnation, .allow_buffered = cfg->allow_buffered,
                                  .recovering = cfg->recovering};
    struct rabia_wal_info info;
    int rc = rabia_wal_open(&d->wal, &wc, on_record, rp, &info, err, errlen);
    if (rc) return rc;
    /* A log whose first segment says it began a recovery, with no HORIZON
     * record: the recovery was cut short, maybe before its HORIZON_REQ
     * record was written (a full disk). Without the mark such a log looked
     * like an intact one with nothing in it, and the replica took part at
     * once, contradicting what its life before the lost log had sent
     * (simulator seed 810257, crash mix). */
    if (info.existed && info.began_recovering && !rp->horizon_seen) rp->rejoin_pending = true;
    if (rp->rejoin_pending) {
        /* A recovery from the peers (--rejoin, rule 2) was cut short: what
         * this log holds is only what was learned meanwhile. Start over with
         * a new log (a new batch id namespace and HORIZON_REQ nonce). */
        fprintf(stderr, "rabia: %s: a recovery from the peers did not finish before the last stop: starting it "
                "again with a new log\n", d->wal_dir);
        rabia_wal_close(d->wal);
        d->wal = NULL;
        if (rabia_wal_remove(d->wal_dir) || remove_files(d->snap_dir)) {
            snprintf(err, errlen, "cannot remove %s and %s to restart the recovery: remove them by hand and start "
                     "with --rejoin", d->wal_dir, d->snap_dir);
            return -EIO;
        }
        d->sched.last_slot = 0;
        out->rejoin = true;
        return -EAGAIN; /* the caller creates a fresh apply layer and opens again */
    }
    if ((rc = replay_finish(rp, info.batch_incarnation, &out->rest))) return rc;
    out->log_existed = info.existed;
    out->batch_incarnation = info.batch_incarnation;
    struct rabia_wal_stats ws;
    rabia_wal_stats(d->wal, &ws);
    struct snapsched_cfg sc = {.max_log_bytes = cfg->max_log_size,
                               .interval_us = (uint64_t)cfg->snapshot_interval_s * 1000000u,
                               .retry_us = 1000000u,      /* after a failure: 1 s, */
                               .retry_max_us = 32000000u}; /* doubling to 32 s while they keep failing */
    snapsched_init(&d->sched, &sc, d->sched.last_slot, ws.bytes);
    fprintf(stderr,
            "rabia: log %s: %" PRIu64 " records in %" PRIu64 " segment(s), %s, block %u; state at slot %" PRIu64
            " (snapshot %" PRIu64 " + %" PRIu64 " decided slots replayed, %" PRIu64 " by reference); %u record(s) of "
            "open slots and own batches to resume%s\n",
            d->wal_dir, info.records, info.segments, info.direct ? "O_DIRECT" : "buffered (development only)",
            info.block, out->rest.applied, d->sched.last_slot, rp->applied_records, rp->applied_by_ref, out->rest.n,
            info.torn_bytes ? "; a torn last write was cut off" : "");
    return 0;
}

void durable_restored(struct durable *d)
{
    if (!d->replay) return;
    replay_free(d->replay);
    free(d->replay);
    d->replay = NULL;
}

bool durable_close(struct durable *d)
{
    bool left = d->wal && d->write_busy; /* written() never ran: rio_loop_destroy gave up on it */
    if (left) rabia_wal_abandon_flight(d->wal);
    d->write_busy = false;
    if (d->snap_pid > 0) {
        int st;
        waitpid(d->snap_pid, &st, 0); /* a snapshot half written is a .tmp file: removed at next start */
        d->snap_pid = 0;
    }
    if (d->snap_pipe >= 0) close(d->snap_pipe);
    d->snap_pipe = -1;
    rabia_wal_close(d->wal);
    d->wal = NULL;
    for (uint32_t p = 0; p < RABIA_MAX_REPLICAS; p++) {
        if (!d->catchup[p]) continue;
        logcatch_free(&d->catchup[p]->lc);
        free(d->catchup[p]);
        d->catchup[p] = NULL;
    }
    durable_restored(d);
    return left;
}

/* ------------------------------------------------------------------ */
/* the write path: the node's log (node.h) */

static int log_append(void *ctx, uint8_t type, uint64_t slot, const struct rabia_msg *m)
{
    struct durable *d = ctx;
    return rabia_wal_append_msg(d->wal, type, slot, m);
}

static void visit(void *ctx, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len)
{
    struct durable *d = ctx;
    /* DECIDED_REF records are of slots applied already (node.c) */
    if (type != RABIA_WAL_DECIDED || d->failed) return;
    struct rabia_msg m;
    if (rabia_msg_decode_unsummed(frame, len, &m)) { /* wal.c checked the record's checksum */
        d->failed = true;
        d->hooks.fatal(d->hooks.ctx, "a decision just written to the log does not decode (memory corruption?)");
        return;
    }
    node_log_decided(d->node, slot, m.value ? &m.id : NULL, m.value ? m.body : NULL, m.value ? m.body_len : 0);
}

static void written(void *ctx, int res)
{
    struct durable *d = ctx;
    RABIA_ASSERT(d->write_busy);
    d->write_busy = false;
    uint64_t us = rio_now_us() - d->write_started_us;
    d->last_write_us = us;
    if (us > d->max_write_us) d->max_write_us = us;
    if (d->write_warned_us) { /* write_watch said it stalled: say it ended */
        fprintf(stderr, "rabia: the log write the disk had not answered completed after %.1f s (%s)\n",
                (double)us / 1e6, res >= 0 ? "written" : strerror(-res));
        d->write_warned_us = 0;
    }
    if (d->hooks.wrote) d->hooks.wrote(d->hooks.ctx, us, d->write_dsync, res);
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
    if (!d->failed) node_log_written(d->node);
}

static int log_write(void *ctx)
{
    struct durable *d = ctx;
    RABIA_ASSERT(d->loop && d->node && !d->write_busy);
    if (d->failed) return -EIO;
    struct rabia_wal_write io;
    int rc = rabia_wal_seal(d->wal, &io);
    if (rc == 0) return NODE_WRITE_NONE;
    if (rc == -EAGAIN) return rc; /* waiting for a segment: durable_refusal says why */
    if (rc < 0) {
        char why[200];
        snprintf(why, sizeof why, "the log cannot take the next write (%s)", strerror(-rc));
        d->failed = true;
        d->hooks.fatal(d->hooks.ctx, why);
        return rc;
    }
    int part = rabia_wal_pending(d->wal) ? NODE_WRITE_PART : NODE_WRITE_ALL;
    d->write_busy = true;
    d->write_started_us = rio_now_us();
    d->write_dsync = io.rw_flags != 0; /* wal.h: RWF_DSYNC unless the log does not sync */
    rc = rio_write(d->loop, io.fd, io.buf, io.len, io.off, io.rw_flags, written, d);
    if (rc) {
        d->write_busy = false;
        char why[200];
        snprintf(why, sizeof why, "submitting a log write failed (%s)", strerror(-rc));
        d->failed = true;
        d->hooks.fatal(d->hooks.ctx, why);
        return rc;
    }
    return part;
}

static const char *log_refusal(void *ctx) { return durable_refusal(ctx); }

static int log_catchup(void *ctx, uint8_t peer, uint64_t from, uint64_t until, logcatch_emit_fn emit, void *ectx)
{
    return durable_catchup(ctx, peer, from, until, emit, ectx);
}

/* Every decided slot after the newest snapshot file is in the log: a
 * snapshot releases the log only up to its own slot (less while pinned),
 * and one installed from a peer is followed by the slots after it. */
static bool log_holds(void *ctx, uint64_t from)
{
    const struct durable *d = ctx;
    return from > d->sched.last_slot;
}

void durable_log(struct durable *d, struct node_log *out)
{
    *out = (struct node_log){.ctx = d, .append = log_append, .write = log_write, .refusal = log_refusal,
                             .catchup = log_catchup, .holds = log_holds};
}

void durable_attach(struct durable *d, struct rabia_node *node, struct rio_loop *loop)
{
    d->node = node;
    d->loop = loop;
}

/* ------------------------------------------------------------------ */
/* snapshots */

void durable_snapshot_adopted(struct durable *d, uint64_t slot)
{
    snapsched_adopted(&d->sched, slot);
    rabia_snapfile_prune(d->snap_dir, 2);
}

void durable_snapshot_soon(struct durable *d) { snapsched_soon(&d->sched); }

uint64_t durable_snapshot_running_us(const struct durable *d, uint64_t now)
{
    if (d->snap_pid <= 0 || !d->sched.running) return 0;
    return now > d->sched.running_us ? now - d->sched.running_us : 0;
}

/* A snapshot child that does not end holds the log: nothing is released
 * until it does, and the log grows until the disk is full, silently. A
 * snapshot callback that takes a lock the application's threads held at
 * the fork hangs it for ever (include/rabia/state_machine.h; found by
 * review), as does a stopped child or a disk that stopped answering. Say
 * so after DURABLE_SNAPSHOT_WARN_S, then every DURABLE_SNAPSHOT_REWARN_S;
 * INFO persistence snapshot_running_seconds and /metrics
 * rabia_snapshot_running_seconds show the age meanwhile.
 * RABIA_SNAPSHOT_WARN_S overrides the first (tests). */
#define DURABLE_SNAPSHOT_WARN_S 60u
#define DURABLE_SNAPSHOT_REWARN_S 600u

/* The first warning's delay of a watch (seconds): the environment's `env`
 * when it is a positive number (tests), else dflt; read once into *cache.
 * The cache is the process's, shared by every replica embedded in it, each
 * on its own thread: atomic (a plain one was a data race, ThreadSanitizer
 * on integration.embed_session); two that fill it at once store the same. */
static uint64_t warn_after_us(const char *env, unsigned dflt, long *cache)
{
    long v = __atomic_load_n(cache, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv(env);
        v = e && atol(e) > 0 ? atol(e) : (long)dflt;
        __atomic_store_n(cache, v, __ATOMIC_RELAXED);
    }
    return (uint64_t)v * 1000000u;
}

/* Whether something that has run for `age` is to be warned of now: past
 * warn_us, and not warned of within the last rewarn_s (*warned_us: when it
 * last was, 0: never; set when it is). */
static bool warn_due(uint64_t age, uint64_t warn_us, unsigned rewarn_s, uint64_t *warned_us, uint64_t now)
{
    if (age < warn_us) return false;
    if (*warned_us && now - *warned_us < rewarn_s * 1000000ull) return false;
    *warned_us = now;
    return true;
}

static void snapshot_watch(struct durable *d, uint64_t now)
{
    RABIA_ASSERT(d->snap_pid > 0);
    static long warn_s = -1;
    uint64_t age = durable_snapshot_running_us(d, now);
    if (!warn_due(age, warn_after_us("RABIA_SNAPSHOT_WARN_S", DURABLE_SNAPSHOT_WARN_S, &warn_s),
                  DURABLE_SNAPSHOT_REWARN_S, &d->snap_warned_us, now))
        return;
    fprintf(stderr,
            "rabia: WARNING: the snapshot at slot %" PRIu64 " has run for %" PRIu64 " s (child process %d) and the "
            "log is not released until it ends: a snapshot callback waiting for a lock the application's threads "
            "held at the fork (include/rabia/state_machine.h), a stopped child (kill -CONT %d) or a disk that "
            "stopped answering; if it never ends, kill %d: the replica takes another one later\n",
            d->sched.running_slot, age / 1000000u, (int)d->snap_pid, (int)d->snap_pid, (int)d->snap_pid);
}

/* A log write the disk does not answer (a failing or stalled device, a
 * path failover, a frozen filesystem) holds every vote and reply of this
 * replica behind it, silently: its peers go on without it, its own clients
 * wait, and nothing said why. Warn after DURABLE_WRITE_WARN_S (then every
 * DURABLE_WRITE_REWARN_S); /health turns 503 meanwhile, INFO persistence
 * wal_write_waiting_us and /metrics rabia_wal_write_waiting_seconds give
 * the age. A write that answers within it took at most seconds of a device
 * queue; RABIA_WAL_STALL_WARN_S overrides the first (tests). */
#define DURABLE_WRITE_WARN_S 5u
#define DURABLE_WRITE_REWARN_S 60u
static uint64_t write_warn_us(void)
{
    static long warn_s = -1;
    return warn_after_us("RABIA_WAL_STALL_WARN_S", DURABLE_WRITE_WARN_S, &warn_s);
}

uint64_t durable_write_age_us(const struct durable *d, uint64_t now)
{
    if (!d->write_busy) return 0;
    return now > d->write_started_us ? now - d->write_started_us : 0;
}

bool durable_write_stalled(const struct durable *d, uint64_t now, uint64_t *age)
{
    *age = durable_write_age_us(d, now);
    return *age >= write_warn_us();
}

static void write_watch(struct durable *d, uint64_t now)
{
    uint64_t age = durable_write_age_us(d, now);
    if (!warn_due(age, write_warn_us(), DURABLE_WRITE_REWARN_S, &d->write_warned_us, now)) return;
    fprintf(stderr,
            "rabia: WARNING: a write to the log has waited %.1f s for the disk: this replica's votes and replies "
            "wait behind it (its peers go on without it); check the device (dmesg, iostat): a failing or "
            "stalled disk, a path failover, or a frozen filesystem (fsfreeze -u)\n",
            (double)age / 1e6);
}

void durable_tick(struct durable *d, struct rabia_rsm *rsm, uint64_t now, uint64_t keep_batch_seq, bool recovering,
                  uint64_t pin)
{
    write_watch(d, now);
    if (d->snap_pid > 0) {
        int st;
        pid_t p = waitpid(d->snap_pid, &st, WNOHANG);
        if (p == 0) {
            snapshot_watch(d, now);
            return;
        }
        d->snap_pid = 0;
        d->snap_warned_us = 0;
        uint64_t sh[2] = {0, 0}; /* the child's (slot, state hash) */
        bool got = d->snap_pipe >= 0 && read(d->snap_pipe, sh, sizeof sh) == (ssize_t)sizeof sh;
        if (d->snap_pipe >= 0) close(d->snap_pipe);
        d->snap_pipe = -1;
        bool ok = p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        uint64_t slot = d->sched.running_slot, began = d->sched.running_us;
        uint64_t upto = snapsched_finished(&d->sched, ok, now);
        if (ok) {
            if (got && sh[0] == slot) {
                d->hash_slot = sh[0];
                d->hash_value = sh[1];
            }
            rabia_snapfile_prune(d->snap_dir, 2);
            /* the log prefix the snapshot covers goes; the segment holding the
             * newest own batch stays (next_seq survives a restart), and so
             * do the slots a peer still needs from the log */
            if (pin && upto >= pin) upto = pin - 1;
            int gone = rabia_wal_release(d->wal, upto, keep_batch_seq);
            fprintf(stderr,
                    "rabia: snapshot at slot %" PRIu64 " written in %.1f s (fork stalled the loop %" PRIu64
                    " us); %d log segment(s) released\n",
                    slot, (double)(now - began) / 1e6, d->last_fork_us, gone);
        } else {
            /* A child that failed by itself removed its temporary file; one
             * killed while writing it (the OOM killer, kill -9) did not, and
             * only the next start's load cleaned the folder: a replica
             * running for months left one partial file of up to the whole
             * state per killed child, retried every second (found by
             * review; test_durable). The name is the child's alone
             * (rabia_snapfile_write; received files carry a sender's tag),
             * and the child is reaped: nobody writes it now. */
            if (p > 0) rabia_snapfile_write_abandoned(d->snap_dir, slot);
            fprintf(stderr,
                    "rabia: the snapshot at slot %" PRIu64 " failed (see the message above), %u in a row; the next "
                    "try in %.0f s at the earliest\n",
                    slot, d->sched.failed_in_row, (double)snapsched_retry_wait(&d->sched) / 1e6);
        }
        return;
    }
    uint64_t applied = rabia_rsm_applied(rsm);
    struct rabia_wal_stats ws;
    rabia_wal_stats(d->wal, &ws);
    if (!snapsched_due(&d->sched, applied, ws.bytes, now, recovering)) return; /* snapsched.c: the rule */
    uint64_t t0 = rio_now_us();
    pid_t parent = getpid();
    int pfd[2] = {-1, -1}; /* the child says the state hash back: the loop never hashes a large state */
    if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK)) pfd[0] = pfd[1] = -1;
    pid_t pid = fork();
    if (pid == 0) {
        /* the child: the state as of `applied`, written durably; never returns.
         * It must not outlive the replica holding what the replica holds:
         * the data-dir flock (a restart after kill -9 found it taken by a
         * snapshot child still writing), the listening sockets, the ring. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        if (pfd[1] >= 0 && dup2(pfd[1], 3) < 0) _exit(1);
        close_range(pfd[1] >= 0 ? 4 : 3, ~0u, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        struct rabia_buf b = {0};
        char err[800];
        int rc = rabia_rsm_snapshot(rsm, &b);
        if (rc) fprintf(stderr, "rabia: snapshot at slot %" PRIu64 ": %s\n", applied, rabia_strerror(rc));
        else if ((rc = rabia_snapfile_write(d->snap_dir, applied, b.data, b.len, err, sizeof err)))
            fprintf(stderr, "rabia: %s\n", err);
        uint64_t sh[2] = {applied, 0};
        if (!rc && pfd[1] >= 0 && !rabia_rsm_snapshot_hash(b.data, b.len, &sh[1])) { /* stored in the snapshot */
            if (write(3, sh, sizeof sh) != (ssize_t)sizeof sh) _exit(1);
        }
        _exit(rc ? 1 : 0);
    }
    if (pfd[1] >= 0) close(pfd[1]);
    d->last_fork_us = rio_now_us() - t0;
    if (d->last_fork_us > d->max_fork_us) d->max_fork_us = d->last_fork_us;
    snapsched_began(&d->sched, applied, ws.bytes, now);
    if (pid < 0) {
        int e = errno;
        if (pfd[0] >= 0) close(pfd[0]);
        (void)snapsched_finished(&d->sched, false, now);
        fprintf(stderr, "rabia: fork for a snapshot: %s\n", strerror(e));
        return;
    }
    d->snap_pid = pid;
    d->snap_pipe = pfd[0];
}

/* ------------------------------------------------------------------ */
/* peers' catch-up from the log */

struct catchup_feed {
    struct logcatch *lc;
    logcatch_emit_fn emit;
    void *ctx;
};

static bool catchup_record(void *ctx, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len)
{
    struct catchup_feed *f = ctx;
    if (type == NODE_REC_RESERVE) return false;
    struct rabia_msg m;
    if (rabia_msg_decode_unsummed(frame, len, &m)) return false; /* replay refuses such a log at start */
    return logcatch_feed(f->lc, type, slot, &m, f->emit, f->ctx);
}

int durable_catchup(struct durable *d, uint8_t peer, uint64_t from, uint64_t until, logcatch_emit_fn emit,
                    void *ctx)
{
    RABIA_ASSERT(from >= 1 && until > from);
    RABIA_ASSERT(peer < RABIA_MAX_REPLICAS && peer != d->cfg.self);
    struct durable_catchup *c = d->catchup[peer];
    if (!c) { /* this peer's first catch-up from the log: its ring, once */
        if (!(c = calloc(1, sizeof(*c)))) return 0;
        if (logcatch_init(&c->lc, d->cfg.self, DURABLE_CATCHUP_RING)) {
            free(c);
            return 0; /* out of memory: the peer gets a snapshot */
        }
        d->catchup[peer] = c;
    }
    d->catchup_requests++;
    /* the peer asks again from where the last request ended, or from the
     * same slot while the read is still on its way: the read goes on */
    bool keep = c->on && c->lc.next == from, wide = c->wide_from == from;
    /* the read starts a ring's worth of log before `from` (bodies further
     * back would mostly be gone from the ring by the time their decision
     * came), or, once that start missed a body, a segment back */
    if (!keep && !rabia_wal_cursor_for(d->wal, from, wide ? RABIA_WAL_BACK_SEGMENT : DURABLE_CATCHUP_RING, &c->at)) {
        c->on = false;
        d->catchup_refused++;
        return 0;
    }
    logcatch_begin(&c->lc, from, until, keep);
    struct catchup_feed f = {.lc = &c->lc, .emit = emit, .ctx = ctx};
    char err[700] = "";
    int rc = rabia_wal_read(d->wal, &c->at, DURABLE_CATCHUP_READ, catchup_record, &f, err, sizeof err);
    if (rc < 0) fprintf(stderr, "rabia: a peer's catch-up from the log: %s\n", err);
    uint64_t served = c->lc.served;
    d->catchup_slots += served;
    if (served) {
        c->on = rc >= 0;
        return (int)served;
    }
    if (rc == 1 && !c->lc.ended) { /* read up to the budget, not there yet */
        c->on = true;
        return -EAGAIN;
    }
    if (rc >= 0 && c->lc.no_body && !wide) {
        /* a body older than the start: again from a segment back (the
         * node goes on at its next turn). Without it a peer behind a log
         * with no snapshot to send stalled for good (sim --seed 1960008
         * --mix all --durable). */
        c->wide_from = from;
        c->on = false;
        return -EAGAIN;
    }
    c->on = false; /* the log does not hold `from` (or the read failed) */
    d->catchup_refused++;
    /* a gap is expected (released, or before an installed snapshot); the
     * rest is said once per 1,000 (the peer asks again every few ms) */
    if ((rc < 0 || c->lc.no_body) && d->catchup_odd++ % 1000 == 0)
        fprintf(stderr, "rabia: a peer's catch-up from slot %" PRIu64 " found %s in the log: it is offered a "
                "snapshot instead (%" PRIu64 " such)\n", from, rc < 0 ? "a read error" : "a decision whose batch "
                "body is not among the bodies kept", d->catchup_odd);
    return 0;
}

bool durable_state_hash(const struct durable *d, uint64_t *slot, uint64_t *hash)
{
    if (!d->hash_slot) return false;
    *slot = d->hash_slot;
    *hash = d->hash_value;
    return true;
}

bool durable_snapshot_running(const struct durable *d) { return d->snap_pid > 0; }

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
                    "\r\nwal_write_waiting_us:%" PRIu64
                    "\r\nsnapshots:%" PRIu64 "\r\nsnapshot_failures:%" PRIu64 "\r\nlast_snapshot_slot:%" PRIu64
                    "\r\nsnapshot_in_progress:%d\r\nsnapshot_running_seconds:%" PRIu64
                    "\r\nlast_fork_us:%" PRIu64 "\r\nmax_fork_us:%" PRIu64
                    "\r\nwal_catchup_slots:%" PRIu64 "\r\nwal_catchup_requests:%" PRIu64
                    "\r\nwal_catchup_refused:%" PRIu64 "\r\ndisk_error:%s\r\n",
                    ws.groups, ws.records, ws.bytes, ws.pad_bytes, ws.bytes_on_disk, ws.segments_released,
                    ws.segment_waits, d->last_write_us, d->max_write_us, durable_write_age_us(d, rio_now_us()),
                    d->sched.taken, d->sched.failures,
                    d->sched.last_slot, d->snap_pid > 0, durable_snapshot_running_us(d, rio_now_us()) / 1000000u,
                    d->last_fork_us, d->max_fork_us, d->catchup_slots,
                    d->catchup_requests, d->catchup_refused, durable_refusal(d));
}
