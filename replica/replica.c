/* The replica runtime: one thread, one io_uring loop, around the pure core.
 *
 *   peers  --frames--> core --sends--> peers
 *   clients (native, RESP) --requests--> batcher --batches--> core
 *   core --decided slots--> apply layer (sessions + state machine) --> replies
 *
 * Peer links: every replica dials every peer and sends only on the
 * connection it dialed; it receives on the connections peers dialed to it.
 * Each connection opens with HELLO (cluster id, replica id, protocol
 * version, incarnation). A newer incarnation of a peer replaces the older
 * incoming connection at once, discarding what was unread on it (rule 3 of
 * the persistence contract in include/rabia/core.h). */
#include "rabia/replica.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netdb.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "codec.h"
#include "durable.h"
#include "node.h"
#include "snapfile.h"
#include "incarnation.h"
#include "invariant.h"
#include "loop.h"
#include "rabia/core.h"
#include "resp.h"
#include "rsm.h"

#define MAX_CONNS 4096
#define WAITERS_CAP (1u << 16)     /* requests waiting for their slot, per replica */
#define RESP_MAX_PENDING 4096      /* replies queued per RESP connection */
#define RESP_MAX_INPUT (64u << 20) /* bytes buffered per RESP connection */
#define SNAP_CHUNK (1u << 20)
#define SNAP_MAX (1ull << 40)        /* largest snapshot a peer may announce (1 TiB: it goes to disk) */
#define SNAP_TX_QUEUED (8u << 20)    /* snapshot bytes queued on a peer connection at most */
#define SNAP_TX_TURN (4u << 20)      /* ... and sent per loop turn: the cluster keeps serving */
#define APP_QUEUE 4096

/* CK_RESP_DRAIN: a RESP connection that closed while requests of it were
 * still in flight; its slot stays until they are answered, then its
 * session is closed through the log. */
enum ck { CK_FREE, CK_PEER_OUT, CK_PEER_IN_HELLO, CK_PEER_IN, CK_CLIENT, CK_RESP, CK_RESP_DRAIN };

#define APP_WINDOW 60               /* the application's requests in flight, < RABIA_RSM_WINDOW */

struct resp_slot {         /* one pipelined RESP command's reply, in order */
    bool ready;
    struct rabia_buf out;
};

struct conn {
    enum ck kind;
    uint32_t gen;
    struct rio_conn *c;
    uint8_t peer;          /* peer kinds: core index */
    /* RESP */
    struct resp_session rs;
    struct resp_argv pa;   /* parser state */
    struct rabia_buf in;   /* unparsed input */
    struct resp_slot *q;   /* ring of pending replies */
    uint32_t q_head, q_len;
    uint64_t client_id, next_seq, group_first;
    uint64_t open_batch;   /* batch number its in-flight requests went into */
    uint32_t inflight;     /* replicated requests without a reply */
    bool quit;
    bool closing;          /* conn_close called: ignore the rest */
    bool want_pump;        /* input waits for replies that just came */
};

struct app_op {
    uint8_t *op;
    size_t len;
    rabia_replica_done_fn fn;
    void *ctx;
};

struct peer {
    uint32_t out;            /* conn index or UINT32_MAX */
    bool out_ready;
    uint32_t in;             /* conn index or UINT32_MAX */
    uint64_t in_incarnation;
    uint64_t redial_at_us;
    uint64_t backoff_us;
    /* snapshot being received: straight to a file, one chunk in memory */
    struct rabia_snapfile_writer rx;
    bool rx_active;
    uint64_t rx_last_us;     /* last chunk taken */
    /* snapshot being sent: from a snapshot file (wal) or the shared buffer */
    bool tx_active, tx_wanted;
    int tx_fd;
    uint64_t tx_slot, tx_off, tx_total;
};

struct rabia_replica {
    struct rabia_replica_config cfg;
    const struct rabia_sm_ops *sm;
    struct rio_loop *loop;
    struct rabia_node *node;  /* the runtime without I/O (node.h) */
    struct rabia_core *core;  /* the node's, for status */
    struct rabia_rsm *rsm;    /* the node's */
    uint64_t incarnation;
    uint64_t cluster_id;
    uint8_t self;            /* core index: id - 1 */
    struct peer peers[RABIA_MAX_REPLICAS];
    struct conn *conns;
    uint64_t resp_conn_counter;
    uint32_t n_want_pump;
    uint64_t hash_value, hash_slot, hash_us; /* last published state hash */
    uint64_t hash_cost_us;   /* what the last one took */
    struct rio_listener *l_peer, *l_client, *l_resp;
    volatile int stop;
    /* application submissions from other threads */
    pthread_mutex_t app_mu;
    struct app_op app_q[APP_QUEUE];
    uint32_t app_head, app_len;
    uint64_t app_client_id, app_seq;
    uint64_t app_low;        /* lowest application seq not yet answered */
    uint64_t app_done;       /* bit i: seq app_low + i answered */
    uint64_t app_lives;      /* sessions the application has had */
    int app_open;            /* 0: to open, 1: opening, 2: open */
    /* status published for other threads */
    pthread_mutex_t st_mu;
    struct rabia_replica_status st;
    struct rabia_buf scratch;
    /* snapshot transfers out: memory mode serializes the state once into
     * snap_out and every peer's transfer reads it; wal mode reads snapshot
     * files (an open fd per transfer) */
    struct rabia_buf snap_out;
    uint64_t snap_out_slot;
    uint8_t *chunk;          /* SNAP_CHUNK bytes for file reads */
    /* durability = wal (durable.h): the log, group commit, snapshots */
    bool wal;
    struct durable dur;
    int lock_fd;             /* flock on data-dir/LOCK, held while the replica lives */
    uint64_t dur_tick_us;
};

/* ------------------------------------------------------------------ */
/* logging */

static void rlog(const struct rabia_replica *r, int level, const char *fmt, ...)
{
    if (level > r->cfg.log_level) return;
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s r%u %s\n", tm.tm_year + 1900, tm.tm_mon + 1,
            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, names[level & 3], r->cfg.id, msg);
}

/* ------------------------------------------------------------------ */
/* connections */

static uint32_t conn_alloc(struct rabia_replica *r, enum ck kind, struct rio_conn *c)
{
    for (uint32_t i = 0; i < MAX_CONNS; i++) {
        struct conn *k = &r->conns[i];
        if (k->kind != CK_FREE) continue;
        uint32_t gen = k->gen + 1;
        memset(k, 0, sizeof(*k));
        k->gen = gen;
        k->kind = kind;
        k->c = c;
        rio_conn_set_user(c, (void *)(uintptr_t)(i + 1));
        return i;
    }
    return UINT32_MAX;
}

static uint32_t conn_index(struct rio_conn *c)
{
    uintptr_t u = (uintptr_t)rio_conn_user(c);
    return u ? (uint32_t)(u - 1) : UINT32_MAX;
}

/* Close a connection; nothing more of it is processed, even frames still
 * in the buffer being parsed (on_close follows from the loop). */
static void conn_close(struct rabia_replica *r, struct rio_conn *c)
{
    uint32_t ci = conn_index(c);
    if (ci != UINT32_MAX) r->conns[ci].closing = true;
    rio_close(c);
}

static void conn_release(struct rabia_replica *r, uint32_t i)
{
    struct conn *k = &r->conns[i];
    if (k->want_pump) r->n_want_pump--;
    if (k->q) {
        for (uint32_t j = 0; j < RESP_MAX_PENDING; j++) rabia_buf_free(&k->q[j].out);
        free(k->q);
        resp_session_free(&k->rs);
        resp_argv_free(&k->pa);
    }
    rabia_buf_free(&k->in);
    uint32_t gen = k->gen;
    memset(k, 0, sizeof(*k));
    k->gen = gen;
    k->kind = CK_FREE;
}

/* ------------------------------------------------------------------ */
/* sending frames */

static void send_frame(struct rabia_replica *r, struct rio_conn *c, const struct rabia_msg *m)
{
    size_t need = rabia_msg_encoded_size(m);
    rabia_buf_clear(&r->scratch);
    if (rabia_buf_reserve(&r->scratch, need)) return;
    int len = rabia_msg_encode(m, r->scratch.data, need);
    if (len < 0) {
        rlog(r, RABIA_LOG_ERROR, "encode %s: %s", rabia_msg_type_name(m->type), rabia_strerror(len));
        return;
    }
    if (rio_send(c, r->scratch.data, (size_t)len) < 0) {
        rlog(r, RABIA_LOG_WARN, "connection %p: output buffer full, closing", (void *)c);
        conn_close(r, c);
    }
}

/* ------------------------------------------------------------------ */
/* replies */

static void resp_flush(struct rabia_replica *r, struct conn *k)
{
    while (k->q_len && k->q[k->q_head].ready) {
        struct resp_slot *s = &k->q[k->q_head];
        if (rio_send(k->c, s->out.data, s->out.len) < 0) {
            conn_close(r, k->c);
            return;
        }
        rabia_buf_clear(&s->out);
        s->ready = false;
        k->q_head = (k->q_head + 1) % RESP_MAX_PENDING;
        k->q_len--;
    }
    if (!k->q_len && k->quit) rio_close_after_send(k->c);
}

static void resp_status_error(struct rabia_buf *out, int status, const uint8_t *res, size_t len)
{
    if (status == RABIA_REPLY_UNAVAILABLE) { /* as Redis's MISCONF: the cause, and that it resumes */
        const char *a = "-MISCONF rabia cannot persist to disk: ";
        const char *b = ". Requests are refused until it can again; it resumes by itself\r\n";
        rabia_buf_append(out, a, strlen(a));
        for (size_t i = 0; i < len; i++) { /* one line */
            uint8_t c = res[i] == '\r' || res[i] == '\n' ? ' ' : res[i];
            rabia_buf_append(out, &c, 1);
        }
        rabia_buf_append(out, b, strlen(b));
        return;
    }
    const char *msg = status == RABIA_REPLY_SESSION_EXPIRED ? "-ERR session expired\r\n"
                      : status == RABIA_REPLY_BUSY           ? "-BUSY replica overloaded, retry\r\n"
                                                             : "-ERR request refused by the replica\r\n";
    rabia_buf_append(out, msg, strlen(msg));
}

static void resp_drained(struct rabia_replica *r, uint32_t ci);
static void app_answered(struct rabia_replica *r, uint64_t seq, int status, const uint8_t *res, size_t len);
static void app_new_session(struct rabia_replica *r);

/* Answer one request (node.h's reply): to a native client, into a RESP
 * connection's reply queue, or to the application's callback (conn ==
 * MAX_CONNS). */
static void deliver(void *ctx, const struct node_to *w, uint64_t cid, uint64_t seq, int status, const uint8_t *res,
                    size_t len)
{
    struct rabia_replica *r = ctx;
    if (w->conn == MAX_CONNS) {
        if (cid == r->app_client_id) app_answered(r, seq, status, res, len);
        if (w->fn) w->fn(w->ctx, status, res, len);
        return;
    }
    struct conn *k = &r->conns[w->conn];
    if (k->kind == CK_FREE || k->gen != w->gen) return; /* client went away */
    if (k->kind == CK_RESP_DRAIN || (k->kind == CK_RESP && k->closing)) {
        if (k->inflight) k->inflight--;
        if (k->kind == CK_RESP_DRAIN && !k->inflight) resp_drained(r, w->conn);
        return;
    }
    if (k->closing) return;
    if (k->kind == CK_CLIENT) {
        struct rabia_msg m = {.type = RABIA_MSG_CLIENT_REPLY, .u64 = cid, .slot = seq,
                              .value = (uint8_t)status, .body = res, .body_len = (uint32_t)len};
        send_frame(r, k->c, &m);
    } else if (k->kind == CK_RESP) {
        struct resp_slot *s = &k->q[w->slot];
        rabia_buf_clear(&s->out);
        if (status == RABIA_REPLY_OK) rabia_buf_append(&s->out, res, len);
        else resp_status_error(&s->out, status, res, len);
        s->ready = true;
        if (k->inflight) k->inflight--;
        resp_flush(r, k);
        if (!k->inflight && k->in.len && !k->want_pump) { /* parse the rest after this turn */
            k->want_pump = true;
            r->n_want_pump++;
        }
    }
}

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
        bool busy = false;
        for (uint8_t p = 0; p < r->cfg.n; p++) busy |= r->peers[p].tx_active;
        if (!busy || !r->snap_out.len) { /* a fresh copy when nobody reads the old one */
            rabia_buf_clear(&r->snap_out);
            if (rabia_rsm_snapshot(r->rsm, &r->snap_out)) {
                rlog(r, RABIA_LOG_ERROR, "snapshot for a peer: out of memory");
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

static void send_snapshot(void *ctx, uint8_t to)
{
    struct rabia_replica *r = ctx;
    struct peer *pe = &r->peers[to];
    if (pe->tx_active) return; /* one transfer per peer at a time */
    pe->tx_wanted = true;
}

/* Once per loop turn: start wanted transfers, send what flow control allows. */
static void pump_snapshots(struct rabia_replica *r)
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
            rlog(r, RABIA_LOG_INFO, "sending snapshot at slot %" PRIu64 " (%" PRIu64 " bytes) to replica %u",
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
                    rlog(r, RABIA_LOG_WARN, "snapshot for replica %u: reading its file: %s", p + 1,
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
            send_frame(r, c, &m);
            pe->tx_off += n;
            sent += n;
        }
        if (pe->tx_active && pe->tx_off >= pe->tx_total) tx_end(pe);
    }
}

/* A snapshot chunk from a peer: to the file, and at the end into the state. */
static void receive_snapshot(struct rabia_replica *r, uint8_t from, const struct rabia_msg *m);

/* node.h's environment */
static uint64_t env_now(void *ctx)
{
    (void)ctx;
    return rio_now_us();
}

static void peers_send(void *ctx, uint8_t to, const uint8_t *frame, uint32_t len)
{
    struct rabia_replica *r = ctx;
    for (uint8_t p = 0; p < r->cfg.n; p++) {
        if (p == r->self || (to != RABIA_TO_ALL && to != p) || !r->peers[p].out_ready) continue;
        struct rio_conn *c = r->conns[r->peers[p].out].c;
        if (rio_send(c, frame, len) < 0) conn_close(r, c); /* lost: the core retransmits */
    }
}

static void env_fatal(void *ctx, const char *why)
{
    struct rabia_replica *r = ctx;
    rlog(r, RABIA_LOG_ERROR, "%s; stopping this replica", why);
    r->stop = 1;
}

static void env_note(void *ctx, int level, const char *msg) { rlog(ctx, level, "%s", msg); }

static void core_step(struct rabia_replica *r, struct rabia_event *ev) { node_step(r->node, ev); }

static void enqueue_request(struct rabia_replica *r, uint64_t cid, uint64_t seq, uint64_t ack, const uint8_t *op,
                            uint32_t len, uint32_t conn, uint32_t resp_slot, rabia_replica_done_fn fn, void *ctx)
{
    struct node_to to = {.conn = conn, .gen = conn < MAX_CONNS ? r->conns[conn].gen : 0, .slot = resp_slot,
                         .fn = fn, .ctx = ctx};
    node_request(r->node, cid, seq, ack, op, len, &to);
}

/* The state hash for status and INFO: it serializes the whole state, so a
 * large state would stall the loop on every status request (a 1 GiB KV took
 * about a second per hash, and status polls then timed out). Computed live
 * while that is cheap, else the last value, which publish_status refreshes
 * once the state stops changing; *slot says which slot it is for. */
static uint64_t state_hash(struct rabia_replica *r, uint64_t *slot)
{
    uint64_t applied = rabia_rsm_applied(r->rsm);
    if (r->hash_slot != applied && r->hash_cost_us < 20000) {
        uint64_t t0 = rio_now_us();
        r->hash_value = rabia_rsm_hash(r->rsm);
        r->hash_cost_us = rio_now_us() - t0;
        r->hash_slot = applied;
        r->hash_us = t0;
    }
    *slot = r->hash_slot;
    return r->hash_value;
}

static void on_native_frame(struct rabia_replica *r, uint32_t ci, const struct rabia_msg *m)
{
    struct conn *k = &r->conns[ci];
    if (m->type == RABIA_MSG_CLIENT_REQ) {
        enqueue_request(r, m->u64, m->slot, m->u64b, m->body, m->body_len, ci, 0, NULL, NULL);
    } else if (m->type == RABIA_MSG_STATUS_REQ) {
        struct rabia_replica_status st;
        rabia_replica_get_status(r, &st);
        char text[2048];
        uint64_t hslot;
        uint64_t hash = state_hash(r, &hslot);
        /* applied is reported as the hash's slot when the hash lags (large
         * state): a convergence check compares the two together */
        int n = snprintf(text, sizeof text,
                         "id: %u\nmembers: %u\nincarnation: %" PRIu64 "\nrecovering: %s\napplied: %" PRIu64
                         "\nknown: %" PRIu64 "\nstate_hash: %016" PRIx64 "\nslots_decided: %" PRIu64
                         "\nslots_null: %" PRIu64 "\nslots_fast: %" PRIu64 "\nmax_phase: %" PRIu64
                         "\nstate_machine: %s\n",
                         st.id, st.n, st.incarnation, st.recovering ? "yes" : "no", hslot,
                         st.known, hash, st.slots_decided, st.slots_null, st.slots_fast, st.max_phase,
                         r->cfg.state_machine);
        for (uint8_t p = 0; p < r->cfg.n && n < (int)sizeof text - 100; p++)
            n += snprintf(text + n, sizeof text - (size_t)n, "member_%u: %s:%u %s\n", p + 1, r->cfg.members[p].host,
                          r->cfg.members[p].port,
                          p == r->self ? "self" : r->peers[p].out_ready ? "reachable" : "unreachable");
        struct rabia_msg rep = {.type = RABIA_MSG_STATUS, .body = (const uint8_t *)text, .body_len = (uint32_t)n};
        send_frame(r, k->c, &rep);
    } else {
        rlog(r, RABIA_LOG_WARN, "client sent a %s frame; closing it", rabia_msg_type_name(m->type));
        conn_close(r, k->c);
    }
}

/* ------------------------------------------------------------------ */
/* RESP */

static void resp_info(struct rabia_replica *r, struct rabia_buf *out)
{
    uint64_t hslot;
    struct rabia_replica_status st;
    rabia_replica_get_status(r, &st);
    struct node_stats ns;
    node_stats(r->node, &ns);
    char text[4096];
    int n = snprintf(text, sizeof text,
                     "# Server\r\nrabia_version:0.1.0\r\nprocess_id:%ld\r\n# Replication\r\nrole:rabia-replica\r\n"
                     "replica_id:%u\r\nmembers:%u\r\nincarnation:%" PRIu64 "\r\nrecovering:%d\r\nslots_applied:%" PRIu64
                     "\r\nslots_known:%" PRIu64 "\r\nslots_decided:%" PRIu64 "\r\nslots_null:%" PRIu64
                     "\r\nstate_hash:%016" PRIx64 "\r\n# Sessions\r\nsessions:%u\r\nsession_reply_bytes:%" PRIu64
                     "\r\nsessions_closed:%" PRIu64 "\r\nsessions_close_lost:%" PRIu64
                     "\r\nrequests_resubmitted:%" PRIu64 "\r\nwaiters:%u\r\n",
                     (long)getpid(), st.id, st.n, st.incarnation, st.recovering, rabia_rsm_applied(r->rsm), st.known,
                     st.slots_decided, st.slots_null, state_hash(r, &hslot), rabia_rsm_sessions(r->rsm),
                     rabia_rsm_reply_bytes(r->rsm), ns.sessions_closed, ns.sessions_close_lost, ns.resubmitted,
                     ns.waiters);
    for (uint8_t p = 0; p < r->cfg.n && n < (int)sizeof text - 100; p++)
        n += snprintf(text + n, sizeof text - (size_t)n, "member_%u:%s:%u,%s\r\n", p + 1, r->cfg.members[p].host,
                      r->cfg.members[p].port, p == r->self ? "self" : r->peers[p].out_ready ? "up" : "down");
    if (n < (int)sizeof text - 200) {
        n += snprintf(text + n, sizeof text - (size_t)n, "# Persistence\r\ndurability:%s\r\nrequests_refused_disk:%" PRIu64 "\r\n",
                      r->wal ? "wal" : "memory", ns.refused_unavailable);
        if (r->wal && n < (int)sizeof text - 100) n += durable_status(&r->dur, text + n, sizeof text - (size_t)n);
        if (n >= (int)sizeof text) n = (int)sizeof text - 1;
    }
    char hdr[32];
    int h = snprintf(hdr, sizeof hdr, "$%d\r\n", n);
    rabia_buf_append(out, hdr, (size_t)h);
    rabia_buf_append(out, text, (size_t)n);
    rabia_buf_append(out, "\r\n", 2);
}

/* Number of the batch being filled: how many were cut before it. */
static uint64_t open_batch_no(const struct batcher *b)
{
    const struct batcher_stats *s = batcher_stats(b);
    return s->cut_full + s->cut_timeout + s->cut_idle + s->cut_flush;
}

/* Parse and dispatch as many commands as ordering allows. A connection's
 * replicated commands all go into the batch being filled; once that batch
 * was cut, further commands wait for its replies, so a pipeline applies in
 * order (a batch is applied atomically, in order). */
static void resp_pump(struct rabia_replica *r, uint32_t ci)
{
    struct conn *k = &r->conns[ci];
    size_t off = 0;
    struct rabia_buf op = {0};
    while (off < k->in.len && !k->quit) {
        if (k->inflight && k->open_batch != open_batch_no(node_batcher(r->node))) break; /* wait for replies */
        if (k->inflight >= RABIA_RSM_WINDOW - 4) break; /* stay inside the session window */
        if (k->q_len >= RESP_MAX_PENDING) break;
        size_t used = 0;
        int rc = resp_parse(k->in.data + off, k->in.len - off, &used, &k->pa);
        off += used;
        if (rc == 0) break;
        uint32_t slot = (k->q_head + k->q_len) % RESP_MAX_PENDING;
        struct resp_slot *s = &k->q[slot];
        rabia_buf_clear(&s->out);
        if (rc < 0) { /* Redis replies with the protocol error, then closes */
            if (rc == -EPROTO) resp_parse_error_reply(&k->pa, &s->out);
            s->ready = true;
            k->q_len++;
            k->quit = true;
            break;
        }
        rabia_buf_clear(&op);
        int what = resp_handle(&k->rs, &k->pa, &s->out, &op);
        k->q_len++;
        if (what == RESP_REPLICATE) {
            uint64_t seq = k->next_seq++;
            /* every earlier group was answered before this one began, so the
             * group's first seq is the lowest the connection still waits for */
            if (!k->inflight) k->group_first = seq;
            s->ready = false;
            k->inflight++;
            k->open_batch = open_batch_no(node_batcher(r->node));
            enqueue_request(r, k->client_id, seq, k->group_first, op.data, (uint32_t)op.len, ci, slot, NULL, NULL);
        } else if (what == RESP_INFO) {
            resp_info(r, &s->out);
            s->ready = true;
        } else if (what == RESP_CLOSE) {
            s->ready = true;
            conn_close(r, k->c);
            break;
        } else if (what == RESP_QUIT) {
            s->ready = true;
            k->quit = true;
        } else {
            s->ready = true;
        }
    }
    rabia_buf_free(&op);
    if (off) { /* the parser keeps offsets from the start of what is left */
        memmove(k->in.data, k->in.data + off, k->in.len - off);
        k->in.len -= off;
    }
    resp_flush(r, k);
}

/* ------------------------------------------------------------------ */
/* peers */

static uint64_t derive_cluster_id(const struct rabia_replica_config *c)
{
    XXH64_state_t st;
    XXH64_reset(&st, 0x52616269);
    for (uint8_t i = 0; i < c->n; i++) {
        XXH64_update(&st, &c->members[i].id, 1);
        XXH64_update(&st, c->members[i].host, strlen(c->members[i].host));
        XXH64_update(&st, &c->members[i].port, 2);
    }
    return XXH64_digest(&st);
}

static void dial(struct rabia_replica *r, uint8_t p)
{
    struct peer *pe = &r->peers[p];
    struct rio_conn *c;
    int rc = rio_connect(r->loop, r->cfg.members[p].host, r->cfg.members[p].port, NULL, &c);
    if (rc < 0) {
        rlog(r, RABIA_LOG_DEBUG, "dial replica %u: %s", p + 1, rabia_strerror(rc));
        pe->backoff_us = pe->backoff_us ? (pe->backoff_us * 2 > 2000000 ? 2000000 : pe->backoff_us * 2) : 50000;
        pe->redial_at_us = rio_now_us() + pe->backoff_us;
        return;
    }
    uint32_t ci = conn_alloc(r, CK_PEER_OUT, c);
    if (ci == UINT32_MAX) {
        conn_close(r, c);
        return;
    }
    r->conns[ci].peer = p;
    pe->out = ci;
    pe->out_ready = false;
    pe->redial_at_us = 0;
}

static void peer_in_frame(struct rabia_replica *r, uint32_t ci, struct rabia_msg *m)
{
    struct conn *k = &r->conns[ci];
    if (k->kind == CK_PEER_IN_HELLO) {
        char who[64] = "?";
        rio_conn_peer(k->c, who, sizeof who);
        if (m->type != RABIA_MSG_HELLO) {
            rlog(r, RABIA_LOG_WARN, "refusing %s: first frame is %s, not HELLO", who, rabia_msg_type_name(m->type));
            conn_close(r, k->c);
            return;
        }
        if (m->u64 != r->cluster_id) {
            rlog(r, RABIA_LOG_WARN,
                 "refusing %s: cluster id %016" PRIx64 " is not ours (%016" PRIx64 "): check its members list",
                 who, m->u64, r->cluster_id);
            conn_close(r, k->c);
            return;
        }
        if (m->value != RABIA_PROTOCOL_VERSION) {
            rlog(r, RABIA_LOG_WARN, "refusing %s: protocol version %u, we speak %u", who, m->value,
                 RABIA_PROTOCOL_VERSION);
            conn_close(r, k->c);
            return;
        }
        if (m->from >= r->cfg.n || m->from == r->self) {
            rlog(r, RABIA_LOG_WARN, "refusing %s: claims replica id %u", who, m->from + 1);
            conn_close(r, k->c);
            return;
        }
        struct peer *pe = &r->peers[m->from];
        if (m->u64b < pe->in_incarnation) {
            rlog(r, RABIA_LOG_WARN, "refusing %s: replica %u incarnation %" PRIu64 " is older than %" PRIu64, who,
                 m->from + 1, m->u64b, pe->in_incarnation);
            conn_close(r, k->c);
            return;
        }
        if (pe->in != UINT32_MAX) {
            /* the older connection goes first, with whatever it had unread */
            struct conn *old = &r->conns[pe->in];
            rlog(r, RABIA_LOG_INFO, "replica %u reconnected (incarnation %" PRIu64 "): dropping its old connection",
                 m->from + 1, m->u64b);
            old->kind = CK_PEER_IN_HELLO; /* stop delivering its frames */
            conn_close(r, old->c);
        }
        if (m->u64b > pe->in_incarnation && pe->in_incarnation)
            rlog(r, RABIA_LOG_INFO, "replica %u restarted (incarnation %" PRIu64 ")", m->from + 1, m->u64b);
        pe->in = ci;
        pe->in_incarnation = m->u64b;
        k->kind = CK_PEER_IN;
        k->peer = m->from;
        return;
    }
    if (m->type == RABIA_MSG_HELLO || m->from != k->peer) {
        rlog(r, RABIA_LOG_WARN, "replica %u sent %s claiming to be %u: closing", k->peer + 1,
             rabia_msg_type_name(m->type), m->from + 1);
        conn_close(r, k->c);
        return;
    }
    if (m->type == RABIA_MSG_SNAP_CHUNK) {
        receive_snapshot(r, k->peer, m);
        return;
    }
    struct rabia_event ev = {.type = RABIA_EV_RECEIVE, .msg = *m};
    core_step(r, &ev);
}

static void rx_dir(const struct rabia_replica *r, char *out, size_t len)
{
    if (r->wal) snprintf(out, len, "%s", r->dur.snap_dir);
    else snprintf(out, len, "%s/incoming", r->cfg.data_dir); /* memory: a scratch file, removed after */
}

static void receive_snapshot(struct rabia_replica *r, uint8_t from, const struct rabia_msg *m)
{
    struct peer *pe = &r->peers[from];
    char why[900], dir[640];
    rx_dir(r, dir, sizeof dir);
    if (m->u64 == 0) { /* a new transfer replaces an unfinished one */
        if (pe->rx_active) rabia_snapfile_abort(&pe->rx);
        pe->rx_active = false;
        if (m->slot <= rabia_rsm_applied(r->rsm) || m->slot < rabia_core_next_apply(r->core)) return;
        if (m->u64b > SNAP_MAX) {
            rlog(r, RABIA_LOG_WARN, "snapshot from replica %u refused: %" PRIu64 " bytes announced, at most %llu",
                 from + 1, m->u64b, (unsigned long long)SNAP_MAX);
            return;
        }
        for (uint8_t q = 0; q < r->cfg.n; q++) { /* one transfer at a time; a stalled one gives way */
            struct peer *o = &r->peers[q];
            if (q != from && o->rx_active && rio_now_us() - o->rx_last_us < 2000000) return;
        }
        if (rabia_snapfile_begin(&pe->rx, dir, m->slot, m->u64b, from, why, sizeof why)) {
            rlog(r, RABIA_LOG_WARN, "snapshot from replica %u not received: %s", from + 1, why);
            return;
        }
        pe->rx_active = true;
        pe->rx_last_us = rio_now_us();
        rlog(r, RABIA_LOG_INFO, "receiving a snapshot at slot %" PRIu64 " (%" PRIu64 " bytes) from replica %u",
             m->slot, m->u64b, from + 1);
    }
    if (!pe->rx_active || m->slot != pe->rx.slot || m->u64 != pe->rx.got || m->u64b != pe->rx.total) return;
    pe->rx_last_us = rio_now_us();
    if (rabia_snapfile_append(&pe->rx, m->body, m->body_len, why, sizeof why)) {
        rlog(r, RABIA_LOG_WARN, "snapshot from replica %u dropped: %s", from + 1, why);
        rabia_snapfile_abort(&pe->rx);
        pe->rx_active = false;
        return;
    }
    if (pe->rx.got < pe->rx.total) return;
    uint64_t slot = pe->rx.slot;
    pe->rx_active = false;
    if (rabia_snapfile_commit(&pe->rx, why, sizeof why)) {
        rlog(r, RABIA_LOG_WARN, "snapshot from replica %u not installed: %s", from + 1, why);
        return;
    }
    const uint8_t *data = NULL;
    size_t len = 0;
    int rc = rabia_snapfile_map(dir, slot, &data, &len, why, sizeof why);
    if (rc) {
        rlog(r, RABIA_LOG_WARN, "snapshot from replica %u not installed: %s", from + 1, why);
    } else if ((rc = node_install_snapshot(r->node, data, len, slot)) == -EINVAL) {
        uint64_t own = 0;
        (void)rabia_rsm_snapshot_slot(data, len, &own);
        rlog(r, RABIA_LOG_WARN,
             "snapshot from replica %u refused: announced for slot %" PRIu64 " but %s %" PRIu64
             " (a corrupt or mislabelled snapshot; the peer's state or software needs a look)",
             from + 1, slot, own ? "taken at slot" : "unreadable, slot", own);
    } else if (rc && rc != -EALREADY) { /* -EALREADY: caught up meanwhile */
        rlog(r, RABIA_LOG_WARN, "snapshot from replica %u refused: %s", from + 1, rabia_strerror(rc));
    }
    rabia_snapfile_unmap(data, len);
    char path[700];
    snprintf(path, sizeof path, "%s/%020" PRIu64 ".snap", dir, slot);
    if (rc || !r->wal) unlink(path); /* wal: the file is this replica's snapshot now */
    if (rc) return;
    if (r->wal) durable_snapshot_adopted(&r->dur, slot);
    rlog(r, RABIA_LOG_INFO, "installed snapshot from replica %u at slot %" PRIu64 " (%zu bytes)", from + 1, slot, len);
    /* An OPEN's answer (the session's id) is not kept anywhere: if the
     * snapshot covers the application's OPEN, open again (a native client
     * does the same by retrying its OPEN). Its session then stays unused. */
    if (r->app_open == 1) {
        node_forget(r->node, r->app_client_id, 1);
        rlog(r, RABIA_LOG_INFO, "snapshot install while the application's session was opening: opening it again");
        app_new_session(r);
    }
}

/* ------------------------------------------------------------------ */
/* RESP sessions: one per connection, closed through the log */

/* A RESP connection's requests cannot be retried on another connection, so
 * its session is useless once the connection is gone: close it through the
 * log (every replica forgets it at the same slot). Without this every
 * short-lived connection left a session behind, with up to 64 cached
 * replies: 1.6 GB per replica after 200,000 GETs of 4 KB values. */
static void resp_close_session(struct rabia_replica *r, uint64_t cid)
{
    /* if the batcher is full it is lost (counted): bounded all the same,
     * connection-scoped sessions are evicted first */
    enqueue_request(r, cid, 0, 0, NULL, 0, MAX_CONNS, 0, NULL, NULL);
}

static void resp_start_drain(struct rabia_replica *r, uint32_t ci)
{
    struct conn *k = &r->conns[ci];
    if (k->want_pump) {
        k->want_pump = false;
        r->n_want_pump--;
    }
    for (uint32_t j = 0; j < RESP_MAX_PENDING; j++) rabia_buf_free(&k->q[j].out);
    free(k->q);
    k->q = NULL;
    resp_session_free(&k->rs);
    resp_argv_free(&k->pa);
    rabia_buf_free(&k->in);
    k->kind = CK_RESP_DRAIN;
    k->c = NULL;
}

static void resp_drained(struct rabia_replica *r, uint32_t ci)
{
    struct conn *k = &r->conns[ci];
    RABIA_ASSERT(k->kind == CK_RESP_DRAIN && k->inflight == 0);
    resp_close_session(r, k->client_id);
    conn_release(r, ci);
}

/* ------------------------------------------------------------------ */
/* io callbacks */

static int h_accept(void *ctx, struct rio_listener *l, struct rio_conn *c)
{
    struct rabia_replica *r = ctx;
    enum ck kind = l == r->l_peer ? CK_PEER_IN_HELLO : l == r->l_client ? CK_CLIENT : CK_RESP;
    uint32_t ci = conn_alloc(r, kind, c);
    if (ci == UINT32_MAX) {
        rlog(r, RABIA_LOG_WARN, "too many connections (%d): refusing one", MAX_CONNS);
        return -1;
    }
    struct conn *k = &r->conns[ci];
    if (kind == CK_RESP) {
        k->q = calloc(RESP_MAX_PENDING, sizeof(*k->q));
        if (!k->q) {
            conn_release(r, ci);
            return -1;
        }
        k->client_id = XXH64(&r->resp_conn_counter, sizeof r->resp_conn_counter, r->incarnation ^ (uint64_t)r->self << 56);
        k->client_id |= 1 | RABIA_SESSION_CONN_SCOPED; /* its session goes first under pressure */
        resp_session_init(&k->rs, k->client_id, 0);
        resp_argv_init(&k->pa, 0);
        rio_conn_peer(c, k->rs.addr, sizeof k->rs.addr);
        r->resp_conn_counter++;
        k->next_seq = 1;
        k->open_batch = UINT64_MAX;
    }
    return 0;
}

static size_t h_data(void *ctx, struct rio_conn *c, const uint8_t *p, size_t len)
{
    struct rabia_replica *r = ctx;
    uint32_t ci = conn_index(c);
    if (ci == UINT32_MAX) return len;
    struct conn *k = &r->conns[ci];
    if (k->kind == CK_RESP) {
        if (k->in.len + len > RESP_MAX_INPUT) {
            rlog(r, RABIA_LOG_WARN, "RESP client sent more than %u unanswered bytes: closing", RESP_MAX_INPUT);
            conn_close(r, c);
            return len;
        }
        rabia_buf_append(&k->in, p, len);
        resp_pump(r, ci);
        return len;
    }
    size_t off = 0;
    while (off < len) {
        size_t flen;
        struct rabia_msg m;
        int rc = rabia_frame_peek(p + off, len - off, &flen);
        if (rc == -EAGAIN || (rc == 0 && len - off < flen)) break; /* wait for the rest */
        if (rc == 0) rc = rabia_msg_decode(p + off, flen, &m);
        if (rc < 0) {
            char who[64] = "?";
            rio_conn_peer(c, who, sizeof who);
            rlog(r, RABIA_LOG_WARN, "bad frame from %s: %s; closing the connection", who, rabia_strerror(rc));
            conn_close(r, c);
            return len;
        }
        off += flen;
        if (k->kind == CK_CLIENT) on_native_frame(r, ci, &m);
        else if (k->kind == CK_PEER_IN || k->kind == CK_PEER_IN_HELLO) peer_in_frame(r, ci, &m);
        else {
            rlog(r, RABIA_LOG_DEBUG, "unexpected %s on an outgoing peer connection", rabia_msg_type_name(m.type));
        }
        if (k->kind == CK_FREE || k->c != c || k->closing) return len; /* closed meanwhile */
    }
    return off;
}

static void h_connect(void *ctx, struct rio_conn *c, int err)
{
    struct rabia_replica *r = ctx;
    uint32_t ci = conn_index(c);
    if (ci == UINT32_MAX) return;
    struct conn *k = &r->conns[ci];
    struct peer *pe = &r->peers[k->peer];
    if (err) {
        rlog(r, RABIA_LOG_DEBUG, "connect to replica %u: %s", k->peer + 1, rabia_strerror(err));
        return; /* on_close follows and schedules the redial */
    }
    struct rabia_msg hello = {.type = RABIA_MSG_HELLO, .from = r->self, .u64 = r->cluster_id,
                              .u64b = r->incarnation, .value = RABIA_PROTOCOL_VERSION};
    send_frame(r, c, &hello);
    pe->out_ready = true;
    pe->backoff_us = 0;
    rlog(r, RABIA_LOG_INFO, "connected to replica %u", k->peer + 1);
    struct rabia_event ev = {.type = RABIA_EV_PEER_UP, .peer = k->peer};
    core_step(r, &ev);
}

static void h_close(void *ctx, struct rio_conn *c, int err)
{
    struct rabia_replica *r = ctx;
    uint32_t ci = conn_index(c);
    if (ci == UINT32_MAX) return;
    struct conn *k = &r->conns[ci];
    if (k->kind == CK_PEER_OUT) {
        struct peer *pe = &r->peers[k->peer];
        if (pe->out == ci) {
            if (pe->out_ready) {
                rlog(r, RABIA_LOG_INFO, "lost connection to replica %u: %s", k->peer + 1,
                     err ? rabia_strerror(err) : "closed by peer");
                struct rabia_event ev = {.type = RABIA_EV_PEER_DOWN, .peer = k->peer};
                core_step(r, &ev);
            }
            pe->out = UINT32_MAX;
            pe->out_ready = false;
            pe->backoff_us = pe->backoff_us ? (pe->backoff_us * 2 > 2000000 ? 2000000 : pe->backoff_us * 2) : 50000;
            pe->redial_at_us = rio_now_us() + pe->backoff_us;
        }
    } else if (k->kind == CK_PEER_IN) {
        struct peer *pe = &r->peers[k->peer];
        if (pe->in == ci) pe->in = UINT32_MAX;
    } else if (k->kind == CK_RESP && k->next_seq > 1) {
        if (k->inflight) { /* keep counting its answers; close the session after the last */
            resp_start_drain(r, ci);
            return;
        }
        resp_close_session(r, k->client_id);
    }
    conn_release(r, ci);
}

/* ------------------------------------------------------------------ */
/* batches, application queue, status */

/* The application's session: opened by an empty request (seq 1) before
 * anything else, so that no retry can ever apply twice (rsm.h); its ack is
 * the lowest seq not yet answered, and at most APP_WINDOW requests are in
 * flight, so that a later batch decided before an earlier one never makes
 * the earlier one's requests expire. */
static void app_new_session(struct rabia_replica *r)
{
    uint64_t seed[3] = {r->incarnation, r->cluster_id, r->app_lives++};
    /* the OPEN's nonce; the session's id comes back in its reply (rsm.h) */
    r->app_client_id = (XXH64(seed, sizeof seed, 0xA99u + r->self) | 1) & RABIA_SESSION_NONCE_MASK;
    r->app_seq = 0;
    r->app_low = 1;
    r->app_done = 0;
    r->app_open = 0;
}

static void app_answered(struct rabia_replica *r, uint64_t seq, int status, const uint8_t *res, size_t len)
{
    if (seq == 1 && r->app_open == 1) {
        if (status != RABIA_REPLY_OK || len != 8) { /* refused (BUSY): open again, in a fresh session */
            app_new_session(r);
            return;
        }
        uint64_t id = 0;
        for (int i = 7; i >= 0; i--) id = id << 8 | res[i];
        r->app_client_id = id; /* named by the log */
        r->app_open = 2;
    }
    if (seq < r->app_low || seq >= r->app_low + 64) return;
    if (status == RABIA_REPLY_SESSION_EXPIRED) {
        /* evicted: the session is gone, a new one serves what comes next */
        rlog(r, RABIA_LOG_WARN, "the application's session was evicted (raise max-sessions): opening a new one");
        app_new_session(r);
        return;
    }
    r->app_done |= 1ull << (seq - r->app_low);
    while (r->app_done & 1) {
        r->app_done >>= 1;
        r->app_low++;
    }
}

static void drain_app(struct rabia_replica *r)
{
    if (r->app_open == 0) {
        pthread_mutex_lock(&r->app_mu);
        bool any = r->app_len > 0;
        pthread_mutex_unlock(&r->app_mu);
        if (!any) return; /* no session until the application needs one */
        r->app_open = 1;
        r->app_seq = 1;
        enqueue_request(r, r->app_client_id, 1, 1, NULL, 0, MAX_CONNS, 0, NULL, NULL);
    }
    if (r->app_open != 2) return; /* its requests wait for the session */
    for (;;) {
        struct app_op op;
        if (r->app_seq + 1 - r->app_low >= APP_WINDOW) return; /* the rest waits */
        pthread_mutex_lock(&r->app_mu);
        if (!r->app_len) {
            pthread_mutex_unlock(&r->app_mu);
            return;
        }
        op = r->app_q[r->app_head];
        r->app_head = (r->app_head + 1) % APP_QUEUE;
        r->app_len--;
        pthread_mutex_unlock(&r->app_mu);
        uint64_t seq = ++r->app_seq;
        enqueue_request(r, r->app_client_id, seq, r->app_low, op.op, (uint32_t)op.len, MAX_CONNS, 0, op.fn, op.ctx);
        free(op.op);
    }
}

static void publish_status(struct rabia_replica *r)
{
    struct rabia_replica_status st = {0};
    st.id = r->cfg.id;
    st.n = r->cfg.n;
    st.recovering = rabia_core_recovering(r->core);
    for (uint8_t p = 0; p < r->cfg.n; p++)
        if (p != r->self && r->peers[p].out_ready) st.peers_up |= (uint8_t)(1u << p);
    st.incarnation = r->incarnation;
    st.applied = rabia_rsm_applied(r->rsm);
    st.known = rabia_core_known_slot(r->core);
    const struct rabia_stats *s = rabia_core_stats(r->core);
    st.slots_decided = s->slots_decided;
    st.slots_null = s->slots_null;
    st.slots_fast = s->slots_fast;
    st.max_phase = s->max_phase;
    /* the hash costs a full snapshot: at most once a second, and only when
     * something was applied; published together with its slot */
    uint64_t now = rio_now_us();
    /* at most once a second, and for a large state at most 5% of the time */
    if (st.applied != r->hash_slot && now - r->hash_us >= 1000000 && now - r->hash_us >= 20 * r->hash_cost_us) {
        r->hash_value = rabia_rsm_hash(r->rsm);
        r->hash_cost_us = rio_now_us() - now;
        r->hash_slot = st.applied;
        r->hash_us = now;
    }
    st.state_hash = r->hash_value;
    st.hash_slot = r->hash_slot;
    pthread_mutex_lock(&r->st_mu);
    r->st = st;
    pthread_mutex_unlock(&r->st_mu);
}

void rabia_replica_get_status(struct rabia_replica *r, struct rabia_replica_status *st)
{
    pthread_mutex_lock(&r->st_mu);
    *st = r->st;
    pthread_mutex_unlock(&r->st_mu);
}

/* ------------------------------------------------------------------ */
/* lifecycle */

static int listen_on(struct rabia_replica *r, const char *addr, struct rio_listener **out, const char *key, char *err,
                     size_t errlen)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host) hl = sizeof host - 1;
    memcpy(host, addr, hl);
    host[hl] = 0;
    int rc = rio_listen(r->loop, host, (uint16_t)atoi(colon + 1), NULL, out);
    if (rc < 0) {
        snprintf(err, errlen, "%s %s: cannot listen: %s%s", key, addr, rabia_strerror(rc),
                 rc == -EADDRINUSE ? " (another process uses the port: stop it or choose another port)" : "");
        return rc;
    }
    return 0;
}

static void peer_listen_addr(const struct rabia_replica *r, char *out, size_t len)
{
    if (r->cfg.peer_listen[0]) snprintf(out, len, "%s", r->cfg.peer_listen);
    else snprintf(out, len, "0.0.0.0:%u", r->cfg.members[r->self].port);
}

/* Bind each listening address once and let go: a port in use or an
 * address that is not ours is reported by rabia_replica_create. */
static int probe_one(const char *addr, const char *key, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host) hl = sizeof host - 1;
    memcpy(host, addr, hl);
    host[hl] = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    int g = getaddrinfo(host, colon + 1, &hints, &ai);
    if (g) {
        snprintf(err, errlen, "%s %s: cannot resolve: %s", key, addr, gai_strerror(g));
        return RABIA_E_CONFIG;
    }
    int rc = 0;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0) rc = -errno;
    else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) || bind(fd, ai->ai_addr, ai->ai_addrlen))
        rc = -errno;
    if (fd >= 0) close(fd);
    freeaddrinfo(ai);
    if (rc)
        snprintf(err, errlen, "%s %s: cannot listen: %s%s", key, addr, strerror(-rc),
                 rc == -EADDRINUSE ? " (another process uses the port: stop it or choose another port)"
                 : rc == -EADDRNOTAVAIL ? " (the address is not one of this machine's)" : "");
    return rc;
}

static int probe_ports(struct rabia_replica *r, char *err, size_t errlen)
{
    char peer_addr[RABIA_ADDR_MAX];
    peer_listen_addr(r, peer_addr, sizeof peer_addr);
    int rc = probe_one(peer_addr, "peer-listen", err, errlen);
    if (!rc && r->cfg.client_listen[0]) rc = probe_one(r->cfg.client_listen, "client-listen", err, errlen);
    if (!rc && r->cfg.resp_listen[0]) rc = probe_one(r->cfg.resp_listen, "resp-listen", err, errlen);
    return rc;
}

static int open_io(struct rabia_replica *r, char *err, size_t errlen)
{
    struct rio_handlers h = {.on_accept = h_accept, .on_data = h_data, .on_connect = h_connect, .on_close = h_close};
    struct rio_loop *loop;
    int rc = rio_loop_create(&loop, &h, r, err, errlen);
    if (rc) return rc;
    __atomic_store_n(&r->loop, loop, __ATOMIC_RELEASE); /* from now on others may wake it */
    char peer_addr[RABIA_ADDR_MAX];
    peer_listen_addr(r, peer_addr, sizeof peer_addr);
    if ((rc = listen_on(r, peer_addr, &r->l_peer, "peer-listen", err, errlen)) ||
        (r->cfg.client_listen[0] && (rc = listen_on(r, r->cfg.client_listen, &r->l_client, "client-listen", err, errlen))) ||
        (r->cfg.resp_listen[0] && (rc = listen_on(r, r->cfg.resp_listen, &r->l_resp, "resp-listen", err, errlen))))
        return rc;
    return 0;
}

/* The ring belongs to the thread that ran it: tear it down there. */
static void close_io(struct rabia_replica *r)
{
    struct rio_loop *l = __atomic_exchange_n(&r->loop, NULL, __ATOMIC_ACQ_REL);
    if (l) rio_loop_destroy(l); /* on_close runs for every connection */
    r->l_peer = r->l_client = r->l_resp = NULL;
    for (int p = 0; p < RABIA_MAX_REPLICAS; p++) {
        r->peers[p].out = r->peers[p].in = UINT32_MAX;
        r->peers[p].out_ready = false;
    }
}

int rabia_replica_create(struct rabia_replica **out, const struct rabia_replica_config *cfg,
                         const struct rabia_sm_ops *sm, char *err, size_t errlen)
{
    *out = NULL;
    int rc = rabia_replica_config_check(cfg, err, errlen);
    if (rc) return rc;
    struct rabia_replica *r = calloc(1, sizeof(*r));
    if (!r) return -ENOMEM;
    r->cfg = *cfg;
    r->lock_fd = -1;
    r->sm = sm;
    r->self = (uint8_t)(cfg->id - 1);
    r->cluster_id = cfg->cluster_id ? cfg->cluster_id : derive_cluster_id(cfg);
    pthread_mutex_init(&r->app_mu, NULL);
    pthread_mutex_init(&r->st_mu, NULL);
    for (int p = 0; p < RABIA_MAX_REPLICAS; p++) {
        r->peers[p].out = r->peers[p].in = UINT32_MAX;
        r->peers[p].tx_fd = -1;
    }
    r->conns = calloc(MAX_CONNS, sizeof(*r->conns));
    r->chunk = malloc(SNAP_CHUNK);
    if (!r->conns || !r->chunk) {
        rabia_replica_destroy(r);
        return -ENOMEM;
    }
    if ((rc = rabia_dir_lock(cfg->data_dir, &r->lock_fd, err, errlen))) {
        rabia_replica_destroy(r);
        return rc;
    }
    bool existed;
    rc = rabia_incarnation_next(cfg->data_dir, &r->incarnation, &existed, err, errlen);
    if (rc) {
        rabia_replica_destroy(r);
        return rc;
    }
    struct node_cfg nc = {.self = r->self, .n = cfg->n, .sm = sm, .waiters_cap = WAITERS_CAP};
    nc.rsm = (struct rabia_rsm_config){.max_sessions = cfg->max_sessions, .max_reply_bytes = 4096,
                                       .max_reply_total = cfg->reply_cache_bytes};
    batcher_cfg_default(&nc.batch);
    nc.batch.max_bytes = cfg->batch_max_bytes;
    nc.batch.max_reqs = cfg->batch_max_reqs;
    nc.batch.timeout_us = cfg->batch_timeout_us;
    nc.batch.max_pending_bytes = 64u << 20;
    struct node_env env = {.ctx = r, .now_us = env_now, .send = peers_send, .reply = deliver,
                           .snapshot_to = send_snapshot, .fatal = env_fatal, .note = env_note};
    r->node = node_create(&nc, &env);
    if (!r->node) {
        snprintf(err, errlen, "out of memory creating the replica (batch-max-bytes %u too large?)",
                 cfg->batch_max_bytes);
        rabia_replica_destroy(r);
        return -ENOMEM;
    }
    r->rsm = node_rsm(r->node);
    /* durability = wal: the state comes back from the snapshot file and the
     * log, and the core resumes its open slots (persistence contract rule 1) */
    struct durable_restore rest = {0};
    uint64_t batch_incarnation = r->incarnation;
    if (cfg->durability == RABIA_DURABILITY_WAL) {
        struct durable_cfg dc = {.data_dir = cfg->data_dir, .cluster_id = r->cluster_id, .self = r->self,
                                 .incarnation = r->incarnation, .segment_bytes = cfg->wal_segment_bytes,
                                 .max_log_size = cfg->max_log_size, .snapshot_interval_s = cfg->snapshot_interval_s,
                                 .max_pending = RABIA_MAX_PENDING, .window = cfg->window,
                                 .allow_buffered = cfg->wal_allow_buffered};
        struct durable_hooks hk = {.ctx = r, .fatal = env_fatal};
        rc = durable_open(&r->dur, &dc, &hk, r->rsm, &rest, err, errlen);
        if (rc == -EAGAIN && rest.rejoin) { /* an unfinished --rejoin: again, from scratch */
            durable_close(&r->dur);
            rc = node_reset_state(r->node);
            r->rsm = node_rsm(r->node);
            if (!rc) rc = durable_open(&r->dur, &dc, &hk, r->rsm, &rest, err, errlen);
            rest.rejoin = true;
        }
        if (rc) {
            durable_close(&r->dur);
            rabia_replica_destroy(r);
            return rc;
        }
        r->wal = true;
        batch_incarnation = rest.batch_incarnation;
    }
    /* the horizon rule only where the log was lost (or never kept) */
    bool log_intact = r->wal && rest.log_existed;
    struct rabia_config cc;
    rabia_config_default(&cc, cfg->n, r->self);
    cc.epoch = 1;
    cc.cluster_seed = r->cluster_id;
    cc.incarnation = batch_incarnation;
    cc.window = cfg->window;
    cc.policy = cfg->policy;
    cc.max_batch_bytes = cfg->batch_max_bytes;
    cc.retransmit_us = (uint64_t)cfg->retransmit_ms * 1000;
    cc.log_retain = cfg->log_retain;
    cc.recovering = (!log_intact && (existed || cfg->rejoin)) || rest.rejoin;
    char why[256];
    if (rabia_config_check(&cc, why, sizeof why)) {
        snprintf(err, errlen, "consensus settings: %s", why);
        if (r->wal) durable_close(&r->dur);
        r->wal = false;
        rabia_replica_destroy(r);
        return RABIA_E_CONFIG;
    }
    struct node_log lg;
    if (r->wal) durable_log(&r->dur, &lg);
    rc = node_start(r->node, &cc, r->wal ? &lg : NULL, r->wal ? &rest.rest : NULL);
    if (r->wal) durable_restored(&r->dur);
    if (rc) {
        snprintf(err, errlen, "out of memory starting the replica");
        rabia_replica_destroy(r);
        return rc;
    }
    r->core = node_core(r->node);
    /* The io_uring ring is created by rabia_replica_run on the thread that
     * runs it (SINGLE_ISSUER | DEFER_TASKRUN rings belong to one thread);
     * here the ports are only checked, so a taken port fails at once. */
    if ((rc = probe_ports(r, err, errlen))) {
        rabia_replica_destroy(r);
        return rc;
    }
    app_new_session(r);
    publish_status(r);
    rlog(r, RABIA_LOG_INFO, "replica %u of %u, incarnation %" PRIu64 "%s, cluster %016" PRIx64 ", state machine %s",
         cfg->id, cfg->n, r->incarnation,
         log_intact ? " (restart with its log: taking part at once)"
         : cc.recovering ? " (restart without a log: recovering from peers under the horizon rule)"
                         : " (first start)",
         r->cluster_id, sm->name);
    *out = r;
    return 0;
}

int rabia_replica_run(struct rabia_replica *r)
{
    char err[512];
    int rc0 = open_io(r, err, sizeof err);
    if (rc0) {
        rlog(r, RABIA_LOG_ERROR, "%s", err);
        close_io(r);
        return rc0;
    }
    if (r->wal) durable_attach(&r->dur, r->node, r->loop);
    uint64_t last_status = 0;
    while (!r->stop) {
        uint64_t now = rio_now_us();
        for (uint8_t p = 0; p < r->cfg.n; p++) {
            struct peer *pe = &r->peers[p];
            if (p != r->self && pe->out == UINT32_MAX && now >= pe->redial_at_us) dial(r, p);
        }
        drain_app(r);
        /* the core's tick, batches, and group commit: everything this turn
         * produced goes in one log write */
        uint64_t due = node_turn(r->node);
        if (now - last_status >= 100000) {
            publish_status(r);
            last_status = now;
        }
        /* sleep until the next deadline */
        uint64_t next = now + 100000;
        if (due && due < next) next = due;
        for (uint8_t p = 0; p < r->cfg.n; p++)
            if (p != r->self && r->peers[p].out == UINT32_MAX && r->peers[p].redial_at_us < next)
                next = r->peers[p].redial_at_us;
        pump_snapshots(r);
        if (r->wal) {
            if (now - r->dur_tick_us >= 10000) {
                r->dur_tick_us = now;
                durable_tick(&r->dur, r->rsm, now, rabia_core_own_keep_seq(r->core), rabia_core_recovering(r->core));
            }
            if (now + 10000 < next) next = now + 10000; /* snapshots, a stalled log */
        }
        now = rio_now_us();
        int rc = rio_run_once(r->loop, next > now ? next - now : 0);
        if (rc < 0 && rc != -EINTR && rc != -ETIME) {
            rlog(r, RABIA_LOG_ERROR, "event loop: %s", rabia_strerror(rc));
            close_io(r);
            return rc;
        }
        /* replies made by the loop's callbacks may have unblocked pipelines */
        for (uint32_t i = 0; r->n_want_pump && i < MAX_CONNS; i++) {
            struct conn *k = &r->conns[i];
            if (!k->want_pump) continue;
            k->want_pump = false;
            r->n_want_pump--;
            if (k->kind == CK_RESP && !k->closing) resp_pump(r, i);
        }
    }
    rlog(r, RABIA_LOG_INFO, "stopping (applied up to slot %" PRIu64 ")", rabia_rsm_applied(r->rsm));
    close_io(r);
    return 0;
}

void rabia_replica_stop(struct rabia_replica *r)
{
    r->stop = 1;
    struct rio_loop *l = __atomic_load_n(&r->loop, __ATOMIC_ACQUIRE);
    if (l) rio_loop_wake(l);
}

void rabia_replica_destroy(struct rabia_replica *r)
{
    if (!r) return;
    if (r->loop) rio_loop_destroy(r->loop); /* run never returned normally */
    if (r->conns) {
        for (uint32_t i = 0; i < MAX_CONNS; i++)
            if (r->conns[i].kind != CK_FREE) conn_release(r, i);
    }
    for (int p = 0; p < RABIA_MAX_REPLICAS; p++) {
        if (r->peers[p].rx_active) rabia_snapfile_abort(&r->peers[p].rx);
        if (r->peers[p].tx_fd >= 0) close(r->peers[p].tx_fd);
    }
    rabia_buf_free(&r->snap_out);
    free(r->chunk);
    for (uint32_t i = 0; i < r->app_len; i++) free(r->app_q[(r->app_head + i) % APP_QUEUE].op);
    if (r->wal) durable_close(&r->dur); /* after the loop: no write in flight */
    rabia_dir_unlock(r->lock_fd);
    node_destroy(r->node);
    rabia_buf_free(&r->scratch);
    free(r->conns);
    pthread_mutex_destroy(&r->app_mu);
    pthread_mutex_destroy(&r->st_mu);
    free(r);
}

int rabia_replica_submit(struct rabia_replica *r, const void *op, size_t len, rabia_replica_done_fn done, void *ctx)
{
    if (len == 0 || len > UINT32_MAX) return -EINVAL; /* an empty op opens a session (rsm.h) */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return -ENOMEM;
    memcpy(copy, op, len);
    pthread_mutex_lock(&r->app_mu);
    if (r->app_len >= APP_QUEUE) {
        pthread_mutex_unlock(&r->app_mu);
        free(copy);
        return -ENOBUFS;
    }
    r->app_q[(r->app_head + r->app_len) % APP_QUEUE] = (struct app_op){copy, len, done, ctx};
    r->app_len++;
    pthread_mutex_unlock(&r->app_mu);
    struct rio_loop *l = __atomic_load_n(&r->loop, __ATOMIC_ACQUIRE);
    if (l) rio_loop_wake(l);
    return 0;
}

struct call_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done, abandoned;
    int status;
    struct rabia_buf res;
};

static void call_done(void *ctx, int status, const uint8_t *res, size_t len)
{
    struct call_wait *w = ctx;
    pthread_mutex_lock(&w->mu);
    if (w->abandoned) { /* the caller timed out: we own it now */
        pthread_mutex_unlock(&w->mu);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        rabia_buf_free(&w->res);
        free(w);
        return;
    }
    w->status = status;
    if (len) rabia_buf_append(&w->res, res, len);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int rabia_replica_call(struct rabia_replica *r, const void *op, size_t len, struct rabia_buf *result, int timeout_ms)
{
    struct call_wait *w = calloc(1, sizeof(*w));
    if (!w) return -ENOMEM;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = rabia_replica_submit(r, op, len, call_done, w);
    if (rc) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return rc;
    }
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) == ETIMEDOUT) break;
    if (!w->done) {
        w->abandoned = true; /* call_done frees it */
        pthread_mutex_unlock(&w->mu);
        return -ETIMEDOUT;
    }
    pthread_mutex_unlock(&w->mu);
    rc = w->status;
    if (result) {
        rabia_buf_clear(result);
        rabia_buf_append(result, w->res.data, w->res.len);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    rabia_buf_free(&w->res);
    free(w);
    return rc;
}
