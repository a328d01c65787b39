/* The replica runtime: one thread, one io_uring loop, around node.h (the
 * runtime without I/O: core, batcher, waiters, apply). This file: the loop,
 * connections, peers and their HELLO rules, status, create and destroy;
 * clients.c, transfer.c and app.c hold the rest (internal.h).
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
#define _GNU_SOURCE /* sched_getaffinity, CPU_SET */
#include "rabia/replica.h"

#include <errno.h>
#include <sched.h>
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

#include "cluster_id.h"
#include "codec.h"
#include "incarnation.h"
#include "internal.h"
#include "invariant.h"
#include "kv.h"
#include "peers_seen.h"

/* ------------------------------------------------------------------ */
/* logging */

void replica_log(const struct rabia_replica *r, int level, const char *fmt, ...)
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
    RABIA_ASSERT(r->n_live + r->n_free == MAX_CONNS);
    if (!r->n_free) return UINT32_MAX;
    uint32_t i = r->free_ix[--r->n_free];
    struct conn *k = &r->conns[i];
    RABIA_ASSERT(k->kind == CK_FREE);
    uint32_t gen = k->gen + 1;
    memset(k, 0, sizeof(*k));
    k->gen = gen;
    k->kind = kind;
    k->c = c;
    k->live_pos = r->n_live;
    r->live[r->n_live++] = i;
    rio_conn_set_user(c, (void *)(uintptr_t)(i + 1));
    return i;
}

static uint32_t conn_index(struct rio_conn *c)
{
    uintptr_t u = (uintptr_t)rio_conn_user(c);
    return u ? (uint32_t)(u - 1) : UINT32_MAX;
}

/* Close a connection; nothing more of it is processed, even frames still
 * in the buffer being parsed (on_close follows from the loop). */
void replica_conn_close(struct rabia_replica *r, struct rio_conn *c)
{
    uint32_t ci = conn_index(c);
    if (ci != UINT32_MAX) r->conns[ci].closing = true;
    rio_close(c);
}

void replica_conn_release(struct rabia_replica *r, uint32_t i)
{
    struct conn *k = &r->conns[i];
    if (k->want_pump) r->n_want_pump--;
    replica_auth_conn_release(r, i);
    replica_resp_forget(r, k);
    if (k->q) {
        for (uint32_t j = 0; j < k->q_cap; j++) rabia_buf_free(&k->q[j].out);
        replica_resp_free_spares(k);
        free(k->q);
        resp_session_free(&k->rs);
        resp_argv_free(&k->pa);
    }
    rabia_buf_free(&k->in);
    if (k->client_slot) {
        RABIA_ASSERT(r->n_client_conns > 0);
        r->n_client_conns--;
    }
    /* out of the live list (the last one takes its place), onto the free stack */
    uint32_t pos = k->live_pos;
    RABIA_ASSERT(pos < r->n_live && r->live[pos] == i);
    uint32_t last = r->live[--r->n_live];
    r->live[pos] = last;
    r->conns[last].live_pos = pos;
    r->free_ix[r->n_free++] = i;
    RABIA_ASSERT(r->n_live + r->n_free == MAX_CONNS);
    uint32_t gen = k->gen;
    memset(k, 0, sizeof(*k));
    k->gen = gen;
    k->kind = CK_FREE;
}

/* ------------------------------------------------------------------ */
/* sending frames */

void replica_send_frame(struct rabia_replica *r, struct rio_conn *c, const struct rabia_msg *m)
{
    size_t need = rabia_msg_encoded_size(m);
    rabia_buf_clear(&r->scratch);
    if (rabia_buf_reserve(&r->scratch, need)) return;
    int len = rabia_msg_encode(m, r->scratch.data, need);
    if (len < 0) {
        replica_log(r, RABIA_LOG_ERROR, "encode %s: %s", rabia_msg_type_name(m->type), rabia_strerror(len));
        return;
    }
    if (rio_send(c, r->scratch.data, (size_t)len) < 0) {
        replica_log(r, RABIA_LOG_WARN, "connection %p: output buffer full, closing", (void *)c);
        replica_conn_close(r, c);
    }
}

/* ------------------------------------------------------------------ */
/* node.h's environment */
static uint64_t env_now(void *ctx)
{
    (void)ctx;
    return rio_turn_us();
}

/* the wall clock (CLOCK_REALTIME) in microseconds */
static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t env_wall_ms(void *ctx)
{
    (void)ctx;
    return wall_us() / 1000u;
}

/* A frame to one peer or all (rio_send_shared from the node's frame pool
 * when buf is one of its frames, else copied). */
static void send_to_peers(struct rabia_replica *r, uint8_t to, const uint8_t *frame, uint32_t len, void *buf)
{
    for (uint8_t p = 0; p < r->cfg.n; p++) {
        if (p == r->self || (to != RABIA_TO_ALL && to != p) || !r->peers[p].out_ready) continue;
        struct rio_conn *c = r->conns[r->peers[p].out].c;
        int rc = buf ? rio_send_shared(c, &r->frame_share, buf, frame, len) : rio_send(c, frame, len);
        /* -ENOTCONN: the link is ending already (closed at its output limit
         * earlier in this turn, or by the peer), and its on_close says why;
         * recording it here put "Transport endpoint is not connected" in
         * place of the output limit's warning (netns_slow.sh) */
        if (rc < 0 && rc != -ENOTCONN) { /* lost: the core retransmits, the link redials */
            r->conns[r->peers[p].out].close_why = rc;
            replica_conn_close(r, c);
        }
    }
}

static void peers_send(void *ctx, uint8_t to, const uint8_t *frame, uint32_t len)
{
    send_to_peers(ctx, to, frame, len, NULL);
}

/* The node's frame pool, as io/loop's shared buffers: each peer
 * connection holds a reference until the kernel has the frame. */
static void frame_ref(void *ctx, void *buf) { node_frame_ref(ctx, buf); }
static void frame_unref(void *ctx, void *buf) { node_frame_unref(ctx, buf); }

static void peers_send_shared(void *ctx, uint8_t to, const uint8_t *frame, uint32_t len, void *buf)
{
    send_to_peers(ctx, to, frame, len, buf);
}

static void env_fatal(void *ctx, const char *why)
{
    struct rabia_replica *r = ctx;
    replica_log(r, RABIA_LOG_ERROR, "%s; stopping this replica", why);
    r->failed = true;
    __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
}

static void env_note(void *ctx, int level, const char *msg) { replica_log(ctx, level, "%s", msg); }

static void core_step(struct rabia_replica *r, struct rabia_event *ev) { node_step(r->node, ev); }

void replica_enqueue(struct rabia_replica *r, uint64_t cid, uint64_t seq, uint64_t ack, const uint8_t *op,
                            uint32_t len, uint32_t conn, uint32_t resp_slot, rabia_replica_done_fn fn, void *ctx)
{
    /* a client request arrived with its connection's oldest unparsed input
     * (a pipelined RESP command may wait there for earlier replies) */
    uint64_t t = conn < MAX_CONNS && r->conns[conn].in_us ? r->conns[conn].in_us : rio_turn_us();
    struct node_to to = {.conn = conn, .gen = conn < MAX_CONNS ? r->conns[conn].gen : 0, .slot = resp_slot,
                         .fn = fn, .ctx = ctx, .t_us = t};
    node_request(r->node, cid, seq, ack, op, len, &to);
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
    struct rio_conn *c = NULL; /* set on success; GCC -flto cannot see it */
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char why[160];
    /* a name is looked up on lookup.c's thread, never here */
    int rc = replica_lookup(r, p, pe->addr_turn, &ss, &len, why, sizeof why);
    if (rc == 0) { /* in flight: lookup.c wakes the loop with the answer */
        pe->redial_at_us = rio_now_us() + 1000000;
        return;
    }
    const struct rabia_member *m = &r->cfg.members[p];
    if (rc < 0) {
        /* once per failing spell (and when the reason changes), not at every retry */
        if (!pe->lookup_failing || strcmp(pe->lookup_why, why))
            replica_log(r, RABIA_LOG_WARN, "replica %u at %s:%u: cannot look the name up: %s; trying again", p + 1,
                        m->host, m->port, why);
        pe->lookup_failing = true;
        snprintf(pe->lookup_why, sizeof pe->lookup_why, "%s", why);
    } else {
        if (pe->lookup_failing)
            replica_log(r, RABIA_LOG_INFO, "replica %u at %s:%u: the name resolves again", p + 1, m->host, m->port);
        pe->lookup_failing = false;
        rc = rio_connect_addr(r->loop, &ss, len, NULL, &c);
    }
    if (rc < 0) {
        replica_log(r, RABIA_LOG_DEBUG, "dial replica %u: %s", p + 1, rabia_strerror(rc));
        pe->backoff_us = pe->backoff_us ? (pe->backoff_us * 2 > 2000000 ? 2000000 : pe->backoff_us * 2) : 50000;
        pe->redial_at_us = rio_now_us() + pe->backoff_us;
        return;
    }
    uint32_t ci = conn_alloc(r, CK_PEER_OUT, c);
    if (ci == UINT32_MAX) {
        replica_conn_close(r, c);
        return;
    }
    (void)rio_conn_set_user_timeout(c, PEER_USER_TIMEOUT_MS); /* a failure costs the bound, not correctness */
    r->conns[ci].peer = p;
    pe->out = ci;
    pe->out_ready = false;
    pe->redial_at_us = 0;
    if (replica_tls_on_dial(r, c, p) < 0) {
        replica_conn_close(r, c); /* on_close schedules the redial */
        return;
    }
    if (!rio_conn_is_tls(c)) (void)rio_conn_set_recv_direct(c); /* frames of 50-110 KB: no copy out of 16 KiB buffers */
}

/* An incoming peer connection that passed HELLO (and the cluster secret's
 * proof, when one is configured) becomes the peer's. */
static bool peer_in_take(struct rabia_replica *r, uint32_t ci, uint64_t birth);

void replica_peer_in_install(struct rabia_replica *r, uint32_t ci, uint8_t from, uint64_t incarnation)
{
    struct conn *k = &r->conns[ci];
    RABIA_ASSERT(k->kind == CK_PEER_IN_HELLO && from < r->cfg.n && from != r->self);
    RABIA_ASSERT(incarnation != 0);
    k->kind = CK_PEER_IN;
    k->peer = from;
    k->take_inc = incarnation;
    /* A reconnect of the life taken: at once, as always. Another life (a
     * restart, or the first heard since this replica started) is taken at
     * its first frame (peer_in_take): until then nothing of it is
     * delivered and the peer's connection in use goes on, so that a
     * FIRST_START refused (peer_first_start) costs the running life
     * nothing: it dropped that life's link, redial after redial. */
    if (incarnation == r->hello.peer[from].incarnation) {
        (void)peer_in_take(r, ci, 0);
        return;
    }
    /* At most one such connection per peer waits: this one replaces the
     * one waiting before it (nothing of that was delivered; a live peer
     * redials within 2 s, a dead link's never frames). Without it each
     * HELLO of a life not taken yet that sent no frame after it was held
     * for good (the HELLO sweeper only sees connections before HELLO): 300
     * such HELLOs of "replica 2" held 300 connections, up to the 4096
     * every port shares (found by review). The newer connection, not the
     * newer life, stays: a waiting one that never frames must not keep the
     * peer's next life out. */
    uint32_t prev = UINT32_MAX;
    struct conn *q;
    for (FOR_LIVE(r, q)) {
        if (q != k && q->kind == CK_PEER_IN && q->take_inc && q->peer == from && !q->closing) {
            prev = (uint32_t)(q - r->conns);
            break; /* bounded: only one waits at a time */
        }
    }
    if (prev == UINT32_MAX) return;
    struct conn *old = &r->conns[prev];
    if (replica_log_budget(r, &r->refusal_log, "refusals of connections"))
        replica_log(r, RABIA_LOG_WARN,
                    "closing a connection of replica %u (incarnation %" PRIu64 ") that sent nothing after its HELLO: "
                    "a newer one of incarnation %" PRIu64 " replaces it (a redial after a link that went dead, or "
                    "two processes started as replica %u)",
                    from + 1, old->take_inc, incarnation, from + 1);
    old->take_inc = 0;
    old->kind = CK_PEER_IN_HELLO; /* never taken: nothing of it is delivered */
    replica_conn_close(r, old->c);
}

/* data-dir/peers-seen written with every peer's first-heard incarnation.
 * A failed write was given up: a peer is first heard once per data dir, so
 * after a full disk or an EIO at that moment its incarnation never reached
 * the disk, and once this replica restarted, that peer coming back from a
 * lost data dir without --rejoin was taken, with no word beyond the one
 * WARN (found by review). Now the loop tries the write again every second
 * (peers_seen_retry_us) until it succeeds, and says when. */
static void peers_seen_save(struct rabia_replica *r, uint64_t now)
{
    uint64_t seen[RABIA_MAX_REPLICAS] = {0};
    for (uint8_t p = 0; p < r->cfg.n; p++) seen[p] = r->hello.peer[p].first_heard;
    char err[700];
    if (rabia_peers_seen_write(r->cfg.data_dir, r->cfg.n, seen, err, sizeof err)) {
        if (!r->peers_seen_retry_us)
            replica_log(r, RABIA_LOG_WARN,
                        "%s: the peers first heard are not kept on disk yet (trying again every second); were this "
                        "replica restarted now, a peer coming back with its data dir lost and no --rejoin would not "
                        "be recognised",
                        err);
        r->peers_seen_retry_us = now + 1000000;
        return;
    }
    if (r->peers_seen_retry_us)
        replica_log(r, RABIA_LOG_INFO, "%s/" RABIA_PEERS_SEEN_FILE " written: the peers first heard are kept on disk",
                    r->cfg.data_dir);
    r->peers_seen_retry_us = 0;
}

/* The link's first frame after HELLO came: it becomes `from`'s connection
 * (hello_take). birth: the incarnation its data dir began with, from a
 * FIRST_START (0: none said). False if it was refused and closed. */
static bool peer_in_take(struct rabia_replica *r, uint32_t ci, uint64_t birth)
{
    struct conn *k = &r->conns[ci];
    uint8_t from = k->peer;
    uint64_t incarnation = k->take_inc;
    RABIA_ASSERT(k->kind == CK_PEER_IN && incarnation != 0);
    k->take_inc = 0;
    struct hello_taken t = hello_take(&r->hello, from, incarnation, ci);
    if (t.refused) { /* a newer one came in meanwhile */
        replica_log(r, RABIA_LOG_WARN, "refusing replica %u: incarnation %" PRIu64 " is older than %" PRIu64,
                    from + 1, incarnation, r->hello.peer[from].incarnation);
        k->kind = CK_PEER_IN_HELLO; /* nothing of it is delivered */
        replica_conn_close(r, k->c);
        return false;
    }
    if (t.drop != HELLO_NO_CONN) {
        /* the older connection goes first, with whatever it had unread */
        struct conn *old = &r->conns[t.drop];
        RABIA_ASSERT(old->kind == CK_PEER_IN && old->peer == from && !old->take_inc);
        replica_log(r, RABIA_LOG_INFO, "replica %u reconnected (incarnation %" PRIu64 "): dropping its old connection",
             from + 1, incarnation);
        old->kind = CK_PEER_IN_HELLO; /* stop delivering its frames */
        replica_conn_close(r, old->c);
    }
    if (t.restarted)
        replica_log(r, RABIA_LOG_INFO, "replica %u restarted (incarnation %" PRIu64 ")", from + 1, incarnation);
    if (hello_heard(&r->hello, from, incarnation, birth ? birth : incarnation)) /* the first life heard: kept */
        peers_seen_save(r, rio_now_us());
    return true;
}

/* RABIA_MSG_FIRST_START, the first frame after HELLO: the peer's data dir
 * began at a first start (u64: that incarnation) and it votes at once, at
 * that start or a restart on that data dir. Taken for the data dir first
 * heard from it; refused, with the connection, for a later one: its data
 * dir was lost, and what it sent before is gone with it (include/rabia/core.h
 * rule 2; replica/README.md "A data dir lost"). A restart on the data dir
 * of a refused life says it too: what that life wrote there holds nothing
 * of what was lost, and before, a plain restart of it (or a --rejoin, which
 * a log makes a restart) was taken (found by review). The refused
 * connection was never taken: the peer's running life, if any, keeps its
 * link. */
static void peer_first_start(struct rabia_replica *r, uint32_t ci, const struct rabia_msg *m)
{
    struct conn *k = &r->conns[ci];
    uint8_t from = k->peer;
    RABIA_ASSERT(k->kind == CK_PEER_IN && from < r->cfg.n && from != r->self);
    uint64_t inc = k->take_inc ? k->take_inc : r->hello.peer[from].incarnation, birth = m->u64;
    if (!birth || birth > inc) { /* a data dir's first start is never newer than a life on it */
        replica_log(r, RABIA_LOG_WARN, "replica %u sent FIRST_START of incarnation %" PRIu64 " on its connection of "
                    "incarnation %" PRIu64 ": closing", from + 1, birth, inc);
        if (k->take_inc) k->kind = CK_PEER_IN_HELLO;
        replica_conn_close(r, k->c);
        return;
    }
    if (!hello_first_start_ok(&r->hello, from, birth)) {
        char why[800];
        hello_first_start_refusal(&r->hello, from, birth, inc, why, sizeof why);
        if (replica_log_budget(r, &r->refusal_log, "refusals of connections"))
            replica_log(r, RABIA_LOG_ERROR, "refusing replica %u: %s", from + 1, why);
        r->m->first_starts_refused++;
        if (k->take_inc) k->kind = CK_PEER_IN_HELLO; /* never taken: nothing of it is delivered */
        replica_conn_close(r, k->c);
        return;
    }
    if (k->take_inc && !peer_in_take(r, ci, birth)) return;
    replica_log(r, RABIA_LOG_DEBUG, "replica %u votes at once on the data dir of its first start (incarnation %" PRIu64
                ", now %" PRIu64 ")", from + 1, birth, inc);
}

bool replica_log_budget(struct rabia_replica *r, struct log_budget *b, const char *what)
{
    uint64_t now = rio_now_us();
    if (now - b->window_us >= 10000000u) {
        if (b->suppressed)
            replica_log(r, RABIA_LOG_WARN, "%u more %s in the last 10 s not shown", b->suppressed, what);
        b->window_us = now;
        b->count = b->suppressed = 0;
    }
    if (b->count < 20) {
        b->count++;
        return true;
    }
    b->suppressed++;
    return false;
}

/* lines about refused connections (the peer port, too many clients) */
#define CONN_REFUSE(r, ...)                                                                 \
    do {                                                                                   \
        if (replica_log_budget((r), &(r)->refusal_log, "refusals of connections"))         \
            replica_log((r), RABIA_LOG_WARN, __VA_ARGS__);                                 \
    } while (0)

/* A connection to the peer port joins the queue of those that have not
 * said HELLO; a full queue closes its oldest first. */
static void hello_track(struct rabia_replica *r, uint32_t ci)
{
    if (r->hello_n == PEER_HELLO_PENDING) {
        uint32_t h = r->hello_head;
        struct conn *old = &r->conns[r->hello_q[h].ci];
        r->hello_head = (h + 1) % PEER_HELLO_PENDING;
        r->hello_n--;
        if (old->gen == r->hello_q[h].gen && old->kind == CK_PEER_IN_HELLO && !old->closing) {
            char who[64] = "?";
            rio_conn_peer(old->c, who, sizeof who);
            CONN_REFUSE(r, "closing %s: %u connections to the peer port have not said HELLO, and it waited longest",
                        who, PEER_HELLO_PENDING);
            replica_conn_close(r, old->c);
        }
    }
    uint32_t t = (r->hello_head + r->hello_n) % PEER_HELLO_PENDING;
    r->hello_q[t].ci = ci;
    r->hello_q[t].gen = r->conns[ci].gen;
    r->hello_q[t].by_us = rio_now_us() + PEER_HELLO_TIMEOUT_US;
    r->hello_n++;
}

/* Close the connections whose time to say HELLO is up (a cluster-secret
 * handshake under way has its own deadline: auth.c). Returns the next
 * deadline, 0 if none. O(connections that went) per call. */
static uint64_t hello_tick(struct rabia_replica *r, uint64_t now)
{
    while (r->hello_n) {
        uint32_t h = r->hello_head;
        struct conn *k = &r->conns[r->hello_q[h].ci];
        bool waiting = k->gen == r->hello_q[h].gen && k->kind == CK_PEER_IN_HELLO && !k->closing;
        if (waiting && r->hello_q[h].by_us > now) return r->hello_q[h].by_us;
        r->hello_head = (h + 1) % PEER_HELLO_PENDING;
        r->hello_n--;
        if (waiting && !k->au.pstep) {
            char who[64] = "?";
            rio_conn_peer(k->c, who, sizeof who);
            CONN_REFUSE(r, "closing %s: connected to the peer port and said no HELLO within %u s", who,
                        PEER_HELLO_TIMEOUT_US / 1000000u);
            replica_conn_close(r, k->c);
        }
    }
    return 0;
}

static void peer_in_frame(struct rabia_replica *r, uint32_t ci, struct rabia_msg *m)
{
    struct conn *k = &r->conns[ci];
    if (k->kind == CK_PEER_IN_HELLO && k->au.pstep) { /* proving the cluster secret */
        replica_auth_peer_in_frame(r, ci, m);
        return;
    }
    if (k->kind == CK_PEER_IN_HELLO) {
        char who[64] = "?";
        rio_conn_peer(k->c, who, sizeof who);
        uint64_t wall = wall_us();
        enum hello_verdict v = hello_check(&r->hello, m, wall);
        if (v != HELLO_OK) {
            char why[512];
            hello_refusal(&r->hello, v, m, wall, why, sizeof why);
            CONN_REFUSE(r, "refusing %s: %s", who, why);
            replica_conn_close(r, k->c);
            return;
        }
        if (!replica_tls_check_hello(r, k->c, m->from, who)) { /* tls-peers: the certificate's id */
            replica_conn_close(r, k->c);
            return;
        }
        /* with a cluster secret the connection proves it first (auth.c) */
        if (replica_auth_peer_hello(r, ci, m)) return;
        replica_peer_in_install(r, ci, m->from, m->u64b);
        return;
    }
    if (m->type == RABIA_MSG_PEER_AUTH) { /* a replica with a cluster secret, and we have none */
        replica_auth_peer_unexpected(r, ci, m);
        return;
    }
    if (m->type == RABIA_MSG_HELLO || m->from != k->peer) {
        replica_log(r, RABIA_LOG_WARN, "replica %u sent %s claiming to be %u: closing", k->peer + 1,
             rabia_msg_type_name(m->type), m->from + 1);
        replica_conn_close(r, k->c);
        return;
    }
    if (m->type == RABIA_MSG_FIRST_START) {
        peer_first_start(r, ci, m);
        return;
    }
    if (k->take_inc && !peer_in_take(r, ci, 0)) return; /* the link's first frame: it becomes the peer's now */
    if (m->type == RABIA_MSG_SNAP_CHUNK) {
        snapstream_receive(&r->xfer, k->peer, m);
        return;
    }
    if (m->type == RABIA_MSG_STATUS) { /* the peer's state hash checkpoints (hashcheck.c) */
        replica_hashcheck_receive(r, k->peer, m);
        return;
    }
    struct rabia_event ev = {.type = RABIA_EV_RECEIVE, .msg = *m};
    core_step(r, &ev);
}

/* ------------------------------------------------------------------ */
/* io callbacks */

static int h_accept(void *ctx, struct rio_listener *l, struct rio_conn *c)
{
    struct rabia_replica *r = ctx;
    enum ck kind = l == r->l_peer ? CK_PEER_IN_HELLO : l == r->l_client ? CK_CLIENT : l == r->l_metrics ? CK_HTTP : CK_RESP;
    if (kind == CK_HTTP && !metrics_http_room(r)) return -1; /* the metrics port cannot starve the clients */
    bool client = kind == CK_RESP || kind == CK_CLIENT;
    if (client && r->n_client_conns >= MAX_CONNS - CONNS_KEPT_FOR_PEERS) {
        CONN_REFUSE(r, "too many client connections (%u): refusing one (%u of the %d slots stay for the peers)",
                    r->n_client_conns, CONNS_KEPT_FOR_PEERS, MAX_CONNS);
        /* A RESP client reads Redis's error before the close, as from a
         * Redis at maxclients (it saw only the close). Kept without a slot:
         * its data and close find no conn (conn_index) and are dropped.
         * Over TLS the handshake would need the slot: a plain close there. */
        static const char full[] = "-ERR max number of clients reached\r\n";
        if (kind == CK_RESP && !r->cfg.tls_clients && rio_send(c, full, sizeof full - 1) == 0) {
            rio_close_after_send(c);
            return 0;
        }
        return -1;
    }
    uint32_t ci = conn_alloc(r, kind, c);
    if (ci == UINT32_MAX) {
        replica_log(r, RABIA_LOG_WARN, "too many connections (%d): refusing one", MAX_CONNS);
        return -1;
    }
    struct conn *k = &r->conns[ci];
    r->m->conns_accepted++;
    if (client) {
        k->client_slot = true;
        r->n_client_conns++;
    }
    if (kind == CK_HTTP) { /* plain HTTP: Prometheus scrapes it on a private address */
        metrics_http_accept(r, ci);
        return 0;
    }
    if (replica_tls_on_accept(r, kind, c) < 0) {
        replica_conn_release(r, ci);
        return -1;
    }
    /* a peer's frames (BATCH bodies of 50-110 KB at SET -P 16) land in the
     * connection's input buffer directly: no copy out of 16 KiB provided
     * buffers (bench/results/callgrind.md) */
    if (kind == CK_PEER_IN_HELLO && !rio_conn_is_tls(c)) (void)rio_conn_set_recv_direct(c);
    if (kind == CK_PEER_IN_HELLO) {
        (void)rio_conn_set_user_timeout(c, PEER_USER_TIMEOUT_MS); /* a dead peer's link ends: its slot is freed */
        hello_track(r, ci);
    }
    snprintf(k->user, sizeof k->user, "default");
    if (kind == CK_RESP) {
        k->q = calloc(RESP_RING_START, sizeof(*k->q));
        k->q_cap = RESP_RING_START;
        if (!k->q) {
            replica_conn_release(r, ci);
            return -1;
        }
        k->client_id = XXH64(&r->resp_conn_counter, sizeof r->resp_conn_counter, r->incarnation ^ (uint64_t)r->self << 56);
        k->client_id |= 1 | RABIA_SESSION_CONN_SCOPED; /* its session goes first under pressure */
        resp_session_init(&k->rs, k->client_id, 0);
        k->rs.clients = &r->resp_clients;
        if (!strcmp(r->cfg.state_machine, "kv")) k->rs.feature_level = &r->feature_level;
        k->created_us = rio_turn_us();
        resp_argv_init(&k->pa, 0);
        rio_conn_peer(c, k->rs.addr, sizeof k->rs.addr);
        if (rio_conn_local(c, k->rs.laddr, sizeof k->rs.laddr) < 0) k->rs.laddr[0] = 0; /* CLIENT LIST laddr= */
        r->resp_conn_counter++;
        k->next_seq = 1;
        k->open_batch = UINT64_MAX;
    }
    replica_auth_conn_init(r, ci); /* after the RESP session's init: it sets fields of it */
    return 0;
}

static size_t h_data(void *ctx, struct rio_conn *c, const uint8_t *p, size_t len)
{
    struct rabia_replica *r = ctx;
    uint32_t ci = conn_index(c);
    if (ci == UINT32_MAX) return len;
    struct conn *k = &r->conns[ci];
    if (k->kind == CK_HTTP) return metrics_http_data(r, ci, p, len);
    if (k->kind == CK_RESP) {
        if (!k->in.len) k->in_us = rio_turn_us(); /* metrics: the next command's arrival */
        if (k->in.len + len > RESP_MAX_INPUT) {
            replica_log(r, RABIA_LOG_WARN, "RESP client sent more than %u unanswered bytes: closing", RESP_MAX_INPUT);
            replica_conn_close(r, c);
            return len;
        }
        if (rabia_buf_append(&k->in, p, len)) { /* out of memory: dropping the bytes would desync the stream */
            replica_log(r, RABIA_LOG_WARN, "no memory for %zu bytes of a RESP client's input: closing it", len);
            replica_conn_close(r, c);
            return len;
        }
        replica_client_grew(r, k); /* maxmemory-clients: a large unfinished value */
        if (!k->closing) replica_resp_pump(r, ci);
        return len;
    }
    k->in_us = rio_turn_us(); /* metrics: the arrival of the frames below */
    size_t off = 0;
    while (off < len) {
        size_t flen;
        struct rabia_msg m;
        int rc = rabia_frame_peek(p + off, len - off, &flen);
        if (rc == 0 && k->kind == CK_PEER_IN_HELLO && flen > PEER_HELLO_MAX_FRAME) {
            char who[64] = "?";
            rio_conn_peer(c, who, sizeof who);
            CONN_REFUSE(r, "refusing %s: a frame of %zu bytes before HELLO (a HELLO and the cluster-secret proof take "
                        "at most %u): not a replica of this cluster", who, flen, PEER_HELLO_MAX_FRAME);
            replica_conn_close(r, c);
            return len;
        }
        if (rc == 0 && k->kind == CK_CLIENT && k->au.user < 0 && flen > NATIVE_UNAUTH_MAX_FRAME) {
            char who[64] = "?";
            rio_conn_peer(c, who, sizeof who);
            CONN_REFUSE(r, "refusing client %s: a frame of %zu bytes before it authenticated (at most %u until a "
                        "CLIENT_AUTH succeeds, as Redis limits unauthenticated clients): give the client a user and "
                        "password (rabia-cli --user/--pass or RABIA_PASSWORD) so it authenticates first",
                        who, flen, NATIVE_UNAUTH_MAX_FRAME);
            replica_conn_close(r, c);
            return len;
        }
        if (rc == -EAGAIN || (rc == 0 && len - off < flen)) break; /* wait for the rest */
        if (rc == 0) rc = rabia_msg_decode(p + off, flen, &m);
        if (rc < 0) {
            char who[64] = "?";
            rio_conn_peer(c, who, sizeof who);
            replica_log(r, RABIA_LOG_WARN, "bad frame from %s: %s; closing the connection", who, rabia_strerror(rc));
            replica_conn_close(r, c);
            return len;
        }
        off += flen;
        if (k->kind == CK_CLIENT) replica_native_frame(r, ci, &m);
        else if (k->kind == CK_PEER_IN || k->kind == CK_PEER_IN_HELLO) peer_in_frame(r, ci, &m);
        else if (m.type == RABIA_MSG_PEER_AUTH) replica_auth_peer_out_frame(r, ci, &m);
        else {
            replica_log(r, RABIA_LOG_DEBUG, "unexpected %s on an outgoing peer connection", rabia_msg_type_name(m.type));
        }
        if (k->kind == CK_FREE || k->c != c || k->closing) return len; /* closed meanwhile */
    }
    return off;
}

/* The peer's EOF: a RESP client is answered what it sent first; every
 * other connection closes as before. */
static bool h_eof(void *ctx, struct rio_conn *c)
{
    struct rabia_replica *r = ctx;
    uint32_t ci = conn_index(c);
    if (ci == UINT32_MAX || r->conns[ci].kind != CK_RESP) return false;
    return replica_resp_eof(r, ci);
}

static void h_connect(void *ctx, struct rio_conn *c, int err)
{
    struct rabia_replica *r = ctx;
    uint32_t ci = conn_index(c);
    if (ci == UINT32_MAX) return;
    struct conn *k = &r->conns[ci];
    if (err) {
        replica_log(r, RABIA_LOG_DEBUG, "connect to replica %u: %s", k->peer + 1, rabia_strerror(err));
        return; /* on_close follows and schedules the redial */
    }
    if (!replica_tls_check_dialed(r, c, k->peer)) { /* tls-peers: is it the member we dialed? */
        replica_conn_close(r, c);
        return;
    }
    struct rabia_msg hello = {.type = RABIA_MSG_HELLO, .from = r->self, .u64 = r->cluster_id,
                              .u64b = r->incarnation, .value = RABIA_PROTOCOL_VERSION};
    replica_send_frame(r, c, &hello);
    if (replica_auth_peer_dial(r, ci)) return; /* ready once both proved the cluster secret */
    replica_peer_out_ready(r, ci);
}

/* An outgoing peer link is ready: consensus messages may go. */
void replica_peer_out_ready(struct rabia_replica *r, uint32_t ci)
{
    struct conn *k = &r->conns[ci];
    struct peer *pe = &r->peers[k->peer];
    RABIA_ASSERT(k->kind == CK_PEER_OUT && pe->out == ci);
    pe->out_ready = true;
    pe->ready_us = rio_now_us(); /* the backoff is reset once the link has lasted (h_close) */
    if (r->first_start_birth) { /* before any consensus message on this link (hello.h) */
        struct rabia_msg fs = {.type = RABIA_MSG_FIRST_START, .from = r->self, .u64 = r->first_start_birth};
        replica_send_frame(r, k->c, &fs);
    }
    replica_log(r, pe->short_links >= PEER_REFUSED_WARN ? RABIA_LOG_DEBUG : RABIA_LOG_INFO, "connected to replica %u",
                k->peer + 1);
    replica_hashcheck_link_up(r, k->peer);
    struct rabia_event ev = {.type = RABIA_EV_PEER_UP, .peer = k->peer};
    core_step(r, &ev);
}

static void h_close(void *ctx, struct rio_conn *c, int err)
{
    struct rabia_replica *r = ctx;
    uint32_t ci = conn_index(c);
    if (ci == UINT32_MAX) return;
    struct conn *k = &r->conns[ci];
    replica_tls_on_close(r, k, c); /* a TLS failure's reason */
    if (k->kind == CK_PEER_OUT) {
        struct peer *pe = &r->peers[k->peer];
        if (pe->out == ci) {
            if (pe->out_ready) {
                /* closed by the peer right after our HELLO: it refused it (the
                 * reason is in its log, not sent) */
                bool refused = !err && !k->close_why && rio_now_us() - pe->ready_us < PEER_LINK_STABLE_US;
                if (!refused) {
                    pe->short_links = 0;
                    pe->backoff_us = 0;
                } else if (++pe->short_links % (PEER_REFUSED_WARN * 16) == PEER_REFUSED_WARN &&
                           r->first_start_birth) {
                    replica_log(r, RABIA_LOG_WARN,
                                "replica %u closed our connection right after our HELLO, %u times in a row: it "
                                "refuses this replica, and its log says why. This replica's data dir began empty "
                                "without --rejoin (incarnation %" PRIu64 ", data-dir/" RABIA_FIRST_START_FILE "): if "
                                "replica %u heard an earlier life of it, its data dir was lost, and it must not "
                                "vote from nothing: stop it, empty its data dir (what it wrote there since counts "
                                "for nothing) and start it again with --rejoin. Other causes: another cluster "
                                "id (members list or cluster-id), protocol version or TLS certificate",
                                k->peer + 1, pe->short_links, r->first_start_birth, k->peer + 1);
                } else if (pe->short_links % (PEER_REFUSED_WARN * 16) == PEER_REFUSED_WARN) {
                    replica_log(r, RABIA_LOG_WARN,
                                "replica %u closed our connection right after our HELLO, %u times in a row: it "
                                "refuses this replica, and its log says why: another cluster id (members list or "
                                "cluster-id), protocol version or TLS certificate, or an incarnation older than "
                                "one it heard (another process started as replica %u after this one, or this "
                                "data dir was restored from an older copy: stop the other process if any, then "
                                "move this data dir aside and start this replica with --rejoin)",
                                k->peer + 1, pe->short_links, r->self + 1);
                }
                if (refused && pe->short_links >= PEER_REFUSED_WARN)
                    replica_log(r, RABIA_LOG_DEBUG, "lost connection to replica %u: closed by peer", k->peer + 1);
                else if (!err && k->close_why == -ENOBUFS)
                    replica_log(r, RABIA_LOG_WARN,
                                "closed the connection to replica %u: its output limit was reached, the peer "
                                "reads too slowly (stopped, overloaded or a slow network); redialing, it catches "
                                "up from the others", k->peer + 1);
                else
                    replica_log(r, RABIA_LOG_INFO, "lost connection to replica %u: %s", k->peer + 1,
                                err ? rabia_strerror(err) : k->close_why ? rabia_strerror(k->close_why)
                                                                       : "closed by peer");
                struct rabia_event ev = {.type = RABIA_EV_PEER_DOWN, .peer = k->peer};
                core_step(r, &ev);
            }
            if (!pe->out_ready) pe->addr_turn++; /* never up: the next dial tries the name's next address */
            pe->out = UINT32_MAX;
            pe->out_ready = false;
            pe->backoff_us = pe->backoff_us ? (pe->backoff_us * 2 > 2000000 ? 2000000 : pe->backoff_us * 2) : 50000;
            pe->redial_at_us = rio_now_us() + pe->backoff_us;
        }
    } else if (k->kind == CK_PEER_IN) {
        if (hello_closed(&r->hello, k->peer, ci))
            snapstream_link_closed(&r->xfer, k->peer); /* its chunks came on this connection */
    } else if (k->kind == CK_HTTP) {
        metrics_http_closed(r, ci);
    } else if (k->kind == CK_RESP && k->next_seq > 1) {
        if (k->inflight) { /* keep counting its answers; close the session after the last */
            replica_resp_start_drain(r, ci);
            return;
        }
        replica_resp_close_session(r, k->client_id);
    }
    replica_conn_release(r, ci);
}

/* The state hash for status and INFO, and the slot it is for (status
 * reports that slot as applied, so a convergence check compares the two
 * together). rabia_rsm_hash is kept up to date incrementally for a state
 * machine with a state_hash op (the KV store): it costs what changed since
 * the last one, and is hashed live (at once when asked, on_demand; else at
 * most once a second). One without serializes its whole state: an
 * expensive one (over 20 ms) is hashed at most 5% of the time in memory
 * mode, and never on the loop with a log: there the snapshot child's
 * snapshot carries it (1 GiB: about a second of stall every 20 s before),
 * a snapshot being asked for once applied has not moved for a second. */
uint64_t replica_state_hash(struct rabia_replica *r, bool on_demand, uint64_t *slot)
{
    uint64_t now = rio_now_us(), applied = rabia_rsm_applied(r->rsm);
    /* an incremental hash is never O(state): one slow one (a big collection
     * changed since the last) must not move the replica to the snapshot
     * child's hashes for good */
    bool large = !r->sm->state_hash && r->hash_cost_us >= 20000;
    if (applied != r->seen_applied) {
        r->seen_applied = applied;
        r->applied_since_us = now;
    }
    if (r->wal && large) {
        uint64_t hs, hv;
        if (durable_state_hash(&r->dur, &hs, &hv) && hs > r->hash_slot) {
            r->hash_slot = hs;
            r->hash_value = hv;
            r->hash_us = now;
        }
        if (applied != r->hash_slot && now - r->applied_since_us >= 1000000 && !durable_snapshot_running(&r->dur))
            durable_snapshot_soon(&r->dur);
    } else if (applied != r->hash_slot &&
               (on_demand ? !large : now - r->hash_us >= 1000000 && now - r->hash_us >= 20 * r->hash_cost_us)) {
        r->hash_value = rabia_rsm_hash(r->rsm);
        r->hash_cost_us = rio_now_us() - now;
        r->hash_slot = applied;
        r->hash_us = now;
    }
    *slot = r->hash_slot;
    return r->hash_value;
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
    struct node_stats ns;
    node_stats(r->node, &ns);
    st.reads_indexed = ns.reads_indexed;
    st.state_hash = replica_state_hash(r, false, &st.hash_slot);
    uint64_t mm = rabia_rsm_hash_mismatches(r->rsm);
    if (mm != r->hash_mismatches) {
        r->hash_mismatches = mm;
        replica_log(r, RABIA_LOG_ERROR,
                    "a restored snapshot's state hash differs from the one its maker kept (%" PRIu64
                    " so far): the state is the log's and is kept, but status's state_hash cannot be trusted to "
                    "compare replicas; please report it with the replica logs",
                    mm);
    }
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

static int listen_on(struct rabia_replica *r, const char *addr, struct rio_listener **out, const char *key, bool threaded,
                     char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host) hl = sizeof host - 1;
    memcpy(host, addr, hl);
    host[hl] = 0;
    int rc = threaded ? rio_listen_threaded(r->loop, host, (uint16_t)atoi(colon + 1), NULL, out)
                      : rio_listen(r->loop, host, (uint16_t)atoi(colon + 1), NULL, out);
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
    if (!rc && r->cfg.metrics_listen[0]) rc = probe_one(r->cfg.metrics_listen, "metrics-listen", err, errlen);
    return rc;
}

/* io-threads = auto: measured on a 2-vCPU machine with 3 replicas
 * (bench/io_threads.sh), I/O threads cost more than they bring while the
 * consensus thread has no CPU of its own to spare, so auto is 0 below 4
 * CPUs in the process's set; from 4 on, one I/O thread per 4 CPUs (at most
 * 4) leaves the consensus thread a CPU and the kernel's network work room. */
static unsigned io_threads_auto(unsigned cpus) { return cpus < 4 ? 0 : cpus / 4 > 4 ? 4 : cpus / 4; }

/* Starts the I/O threads (io-threads); thread i pinned to the (i+1)-th CPU
 * of the process's set, round robin, the first being left to this thread. */
static int start_io_threads(struct rabia_replica *r, char *err, size_t errlen)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    int ncpu[RIO_MAX_THREADS + 1], n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE && n < (int)RIO_MAX_THREADS + 1; c++)
            if (CPU_ISSET(c, &set)) ncpu[n++] = c;
    unsigned k = r->cfg.io_threads < 0 ? io_threads_auto((unsigned)(n ? n : 1)) : (unsigned)r->cfg.io_threads;
    /* auto is 0 with tls-clients: a connection an I/O thread serves cannot
     * start TLS (rio_conn_start_tls: -EOPNOTSUPP), so from 4 CPUs on every
     * client connection was closed at accept, with the configuration
     * passed by --check-config (io-threads = N > 0 with it is refused) */
    if (k && r->cfg.io_threads < 0 && r->cfg.tls_clients) {
        replica_log(r, RABIA_LOG_INFO,
                    "io-threads 0 (auto, tls-clients): TLS client connections are served on the consensus thread");
        k = 0;
    }
    r->io_threads = k;
    if (!k) return 0;
    int cpus[RIO_MAX_THREADS];
    for (unsigned i = 0; i < k; i++) cpus[i] = r->cfg.io_threads_pin && n ? ncpu[(i + 1) % (unsigned)n] : -1;
    int rc = rio_loop_start_threads(r->loop, k, cpus, err, errlen);
    if (rc) return rc;
    char list[256] = "";
    for (unsigned i = 0, o = 0; i < k && o < sizeof list - 8; i++)
        o += (unsigned)snprintf(list + o, sizeof list - o, "%s%d", i ? "," : "", cpus[i]);
    replica_log(r, RABIA_LOG_INFO, "io-threads %u%s: client connections on their own threads (%s %s)", k,
                r->cfg.io_threads < 0 ? " (auto)" : "", r->cfg.io_threads_pin && n ? "pinned to CPUs" : "unpinned",
                r->cfg.io_threads_pin && n ? list : "");
    return 0;
}

static int open_io(struct rabia_replica *r, char *err, size_t errlen)
{
    struct rio_handlers h = {.on_accept = h_accept, .on_data = h_data, .on_connect = h_connect, .on_close = h_close,
                             .on_eof = h_eof};
    struct rio_loop *loop;
    int rc = rio_loop_create(&loop, &h, r, err, errlen);
    if (rc) return rc;
    pthread_mutex_lock(&r->wake_mu);
    r->loop = loop; /* from now on others may wake it */
    pthread_mutex_unlock(&r->wake_mu);
    if ((rc = start_io_threads(r, err, errlen))) return rc;
    char peer_addr[RABIA_ADDR_MAX];
    peer_listen_addr(r, peer_addr, sizeof peer_addr);
    if ((rc = listen_on(r, peer_addr, &r->l_peer, "peer-listen", false, err, errlen)) ||
        (r->cfg.client_listen[0] && (rc = listen_on(r, r->cfg.client_listen, &r->l_client, "client-listen", true, err, errlen))) ||
        (r->cfg.resp_listen[0] && (rc = listen_on(r, r->cfg.resp_listen, &r->l_resp, "resp-listen", true, err, errlen))) ||
        (rc = metrics_listen(r, err, errlen)))
        return rc;
    return 0;
}

/* The ring belongs to the thread that ran it: tear it down there. */
static void close_io(struct rabia_replica *r)
{
    pthread_mutex_lock(&r->wake_mu);
    struct rio_loop *l = r->loop;
    r->loop = NULL;
    pthread_mutex_unlock(&r->wake_mu);
    if (l) rio_loop_destroy(l); /* on_close runs for every connection */
    r->l_peer = r->l_client = r->l_resp = r->l_metrics = NULL;
    for (int p = 0; p < RABIA_MAX_REPLICAS; p++) {
        r->peers[p].out = UINT32_MAX;
        r->peers[p].out_ready = false;
        r->hello.peer[p].conn = HELLO_NO_CONN;
    }
}

/* maxmemory-clients in bytes: a percentage of the memory this process may
 * use, physical memory or its cgroup's memory.max if lower (a container's
 * limit is what the kernel's OOM killer applies). */
static uint64_t maxmem_clients_resolve(const struct rabia_replica_config *c)
{
    if (!c->maxmemory_clients_pct) return c->maxmemory_clients;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t mem = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 1ull << 30;
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r"); /* cgroup v2; "max" = no limit */
    if (f) {
        unsigned long long lim;
        if (fscanf(f, "%llu", &lim) == 1 && lim && lim < mem) mem = lim;
        fclose(f);
    }
    return mem / 100 * c->maxmemory_clients_pct;
}

int rabia_replica_create(struct rabia_replica **out, const struct rabia_replica_config *cfg,
                         const struct rabia_sm_ops *sm, char *err, size_t errlen)
{
    *out = NULL;
    /* The required callbacks, checked here: one left NULL was called the
     * first time it was needed (snapshot: by the state hash within a
     * second of the first applied slot), a crash of the replica (found by
     * review) */
    if (!sm) {
        snprintf(err, errlen,
                 "no state machine given (ops NULL): pass a struct rabia_sm_ops (include/rabia/state_machine.h)");
        return -EINVAL;
    }
    const char *missing = !sm->create ? "create"
                          : !sm->destroy ? "destroy"
                          : !sm->apply ? "apply"
                          : !sm->snapshot ? "snapshot"
                          : !sm->restore ? "restore"
                                         : NULL;
    if (missing) {
        snprintf(err, errlen,
                 "state machine %s: its ops have no %s: create, destroy, apply, snapshot and restore are required "
                 "(include/rabia/state_machine.h)",
                 sm->name ? sm->name : "(unnamed)", missing);
        return -EINVAL;
    }
    int rc = rabia_replica_config_check(cfg, err, errlen);
    if (rc) return rc;
    /* The KV store's own machinery (SWEEP, FEATURES, its RESP front end
     * and ACL categories) follows the state machine given, not the
     * state-machine key, which only rabiad chooses by: an embedder's own
     * state machine under the key's default "kv" had its state read as a
     * KV store's, a crash at the first loop turn. The state is a KV
     * store's when the KV store's create makes it (a copy of its ops too). */
    bool is_kv = sm->create == rabia_sm_kv.create;
    const char *sm_name = is_kv ? "kv" : sm->name && sm->name[0] && strcmp(sm->name, "kv") ? sm->name : "app";
    if (!is_kv && cfg->resp_listen[0]) {
        snprintf(err, errlen,
                 "resp-listen is set but the state machine is %s: the RESP front end serves the kv state machine "
                 "only (set resp-listen = off)",
                 sm_name);
        return RABIA_E_CONFIG;
    }
    struct rabia_replica *r = calloc(1, sizeof(*r));
    if (!r) return -ENOMEM;
    r->cfg = *cfg;
    if (is_kv != !strcmp(r->cfg.state_machine, "kv"))
        snprintf(r->cfg.state_machine, sizeof r->cfg.state_machine, "%s", sm_name);
    r->lock_fd = -1;
    r->sm = sm;
    replica_hashcheck_init(r);
    r->self = (uint8_t)(cfg->id - 1);
    r->maxmem_clients = maxmem_clients_resolve(cfg);
    resp_argv_init(&r->peek_pa, RESP_MAX_BULK_LIMIT);
    replica_resp_clients_init(r);
    pthread_mutex_init(&r->app_mu, NULL);
    pthread_mutex_init(&r->wake_mu, NULL);
    pthread_mutex_init(&r->st_mu, NULL);
    pthread_mutex_init(&r->reload_mu, NULL);
    for (int p = 0; p < RABIA_MAX_REPLICAS; p++) {
        r->peers[p].out = UINT32_MAX;
        r->peers[p].tx_fd = -1;
    }
    if (replica_lookups_create(r)) {
        rabia_replica_destroy(r);
        return -ENOMEM;
    }
    r->conns = calloc(MAX_CONNS, sizeof(*r->conns));
    for (uint32_t i = 0; i < MAX_CONNS; i++) /* index 0 on top: the lowest first, as the linear search did */
        r->free_ix[r->n_free++] = MAX_CONNS - 1 - i;
    r->chunk = malloc(SNAP_CHUNK);
    if (!r->conns || !r->chunk || metrics_create(r)) {
        rabia_replica_destroy(r);
        return -ENOMEM;
    }
    if ((rc = replica_auth_create(r, err, errlen))) { /* users, the cluster secret */
        rabia_replica_destroy(r);
        return rc;
    }
    if ((rc = rabia_dir_lock(cfg->data_dir, &r->lock_fd, err, errlen))) {
        rabia_replica_destroy(r);
        return rc;
    }
    /* The io_uring ring is created by rabia_replica_run on the thread that
     * runs it (SINGLE_ISSUER | DEFER_TASKRUN rings belong to one thread);
     * here the ports are only checked, so a taken port fails at once.
     * Before anything is written to the data dir (after its lock, which
     * names a second process better): a start refused here after the
     * incarnation file was written made the next start a restart, and with
     * durability memory a new cluster whose replicas were all refused so
     * (a listening address not the machine's) recovered from peers for
     * ever (test_config.sh). The audit log too (opened first: it binds
     * no port). */
    if ((cfg->audit_log[0] && (rc = replica_audit_open(r, err, errlen))) || (rc = probe_ports(r, err, errlen)) ||
        (rc = replica_tls_open(r, err, errlen))) {
        rabia_replica_destroy(r);
        return rc;
    }
    /* A log left by a life with durability = wal is not kept up by one
     * with memory: started with wal again, the replica took that log for
     * its own and took part at once ("restart with its log"), without the
     * votes and state of the memory life, which may contradict them (core.h
     * rule 1; found by review). Refused before the data dir is written:
     * the log may be the only copy of the state (a whole cluster started
     * with memory by mistake). */
    if (cfg->durability == RABIA_DURABILITY_MEMORY) {
        char wd[600];
        snprintf(wd, sizeof wd, "%s/wal", cfg->data_dir);
        if (rabia_wal_present(wd)) {
            snprintf(err, errlen,
                     "data-dir %s holds a write-ahead log (%s: this replica ran with durability = wal): durability = "
                     "memory would leave it behind, and a later start with wal would take it for this replica's "
                     "log although it lacks everything since. Keep durability = wal, or to switch to memory "
                     "remove %s and %s/snap first (the replica then recovers from its peers)",
                     cfg->data_dir, wd, wd, cfg->data_dir);
            rabia_replica_destroy(r);
            return RABIA_E_CONFIG;
        }
    }
    struct rabia_snapfile_info restore = {0}; /* rabiad --restore: checked before the data dir is written */
    if (cfg->restore_from[0] && (rc = replica_restore_check(cfg, sm, &restore, err, errlen))) {
        rabia_replica_destroy(r);
        return rc;
    }
    /* The cluster id: the data dir's once it has one (persist/cluster_id.c),
     * so a members list changed since the cluster began (a machine replaced
     * at another address) keeps it; else given, or derived from members
     * (and, for a restore, from the backup: replica_restored_cluster_id). */
    uint64_t stored_id = 0, derived_id = derive_cluster_id(cfg);
    bool have_stored_id = false; /* set on success; GCC -flto cannot see it */
    if ((rc = rabia_cluster_id_read(cfg->data_dir, &stored_id, &have_stored_id, err, errlen))) {
        rabia_replica_destroy(r);
        return rc;
    }
    if (cfg->restore_from[0]) {
        /* The data dir holds no state (replica_restore_check): a cluster-id
         * file in it is a restore's that was cut short, replaced now. The id
         * is written before the backup is copied in, so that a start without
         * --restore that goes on from a completed copy has it too. */
        derived_id = replica_restored_cluster_id(derived_id, &restore);
        if ((rc = rabia_cluster_id_write(cfg->data_dir, cfg->cluster_id ? cfg->cluster_id : derived_id, err,
                                         errlen))) {
            rabia_replica_destroy(r);
            return rc;
        }
        stored_id = cfg->cluster_id ? cfg->cluster_id : derived_id;
        have_stored_id = true;
    }
    if (have_stored_id && cfg->cluster_id && cfg->cluster_id != stored_id) {
        snprintf(err, errlen,
                 "data-dir %s belongs to cluster %016" PRIx64 " (its cluster-id file), but cluster-id is %016" PRIx64
                 ": the wrong data-dir for this replica, or the wrong cluster-id (remove the key to use the data "
                 "dir's)",
                 cfg->data_dir, stored_id, cfg->cluster_id);
        rabia_replica_destroy(r);
        return RABIA_E_CONFIG;
    }
    r->cluster_id = have_stored_id ? stored_id : cfg->cluster_id ? cfg->cluster_id : derived_id;
    hello_init(&r->hello, r->cluster_id, cfg->n, r->self);
    /* With the log the backup is copied in as the data dir's first snapshot
     * before the incarnation file is written: a restore killed during the
     * copy left that file, and the retry was refused ("it ran before"); the
     * start without --restore that the refusal suggested then recovered
     * from peers with no state, and a new cluster whose every restore was
     * interrupted so never served (found by review). Now an interrupted
     * copy leaves only a temporary file (a retry replaces it), and a copy
     * that completed is the first snapshot a start without --restore goes
     * on from, as a finished restore does. */
    bool seed_first = cfg->restore_from[0] && cfg->durability == RABIA_DURABILITY_WAL;
    if (seed_first && (rc = replica_restore_seed(r, &restore, err, errlen))) {
        rabia_replica_destroy(r);
        return rc;
    }
    bool existed = false; /* set on success; GCC -flto cannot see it */
    rc = rabia_incarnation_next(cfg->data_dir, &r->incarnation, &existed, err, errlen);
    if (rc) {
        rabia_replica_destroy(r);
        return rc;
    }
    /* A first start refused after this point (the log cannot be opened:
     * no O_DIRECT on data-dir's filesystem, a full disk, ...) has sent
     * nothing, but the file it leaves made the next start a restart
     * without a log, which recovers from the peers under the horizon rule:
     * a new cluster whose replicas were all refused so (the same config on
     * each) and then fixed, say with wal-allow-buffered = yes as the
     * refusal suggests, had every replica wait for the others' horizons
     * and never served (found by review). So such a failure removes the
     * file again (rabia_replica_destroy); after a --rejoin it stays. */
    r->first_start_pending = !existed && !cfg->rejoin;
    /* the peers' first-heard incarnations: a peer back from a lost data dir
     * without --rejoin is refused (hello.h) */
    {
        uint64_t seen[RABIA_MAX_REPLICAS] = {0};
        if ((rc = rabia_peers_seen_read(cfg->data_dir, cfg->n, seen, err, errlen))) {
            rabia_replica_destroy(r);
            return rc;
        }
        for (uint8_t p = 0; p < cfg->n; p++)
            if (p != r->self) r->hello.peer[p].first_heard = seen[p];
    }
    struct node_cfg nc = {.self = r->self, .n = cfg->n, .sm = sm, .waiters_cap = WAITERS_CAP};
    nc.rsm = (struct rabia_rsm_config){.max_sessions = cfg->max_sessions, .max_reply_bytes = 4096,
                                       .max_reply_total = cfg->reply_cache_bytes};
    batcher_cfg_default(&nc.batch);
    nc.batch.max_bytes = cfg->batch_max_bytes;
    nc.batch.max_reqs = cfg->batch_max_reqs;
    nc.batch.timeout_us = cfg->batch_timeout_us;
    nc.linger_us = cfg->batch_linger_us;
    /* reads answered by the read index (node_read): room for every RESP
     * connection's pipeline of reads the pump lets in at once, about */
    nc.reads_cap = cfg->read_index ? READS_CAP : 0;
    nc.read_cid = (XXH64(&r->incarnation, sizeof r->incarnation, 0x4EADu + r->self) | 1) | RABIA_SESSION_CONN_SCOPED;
    nc.batch.max_pending_bytes = 64u << 20;
    /* cut batches waiting for the core: with the default 4, clients of
     * 64 KiB values (3 to a batch) were refused BUSY at 32 requests in
     * flight (bench/snapshot_stall.sh); the bytes bound above is what limits */
    nc.batch.max_cut = 64;
    if (cfg->audit_log[0]) { /* audit.c: every applied write, from the apply layer's hook */
        nc.rsm.on_apply = replica_audit_apply;
        nc.rsm.on_apply_ctx = r;
    }
    struct node_env env = {.ctx = r, .now_us = env_now, .wall_ms = env_wall_ms, .send = peers_send, .send_shared = peers_send_shared,
                           .reply = replica_deliver,
                           .snapshot_to = replica_send_snapshot, .fatal = env_fatal, .note = env_note,
                           .submitted = metrics_on_submitted, .applied = replica_hashcheck_applied};
    r->node = node_create(&nc, &env);
    if (!r->node) {
        snprintf(err, errlen, "out of memory creating the replica (batch-max-bytes %u too large?)",
                 cfg->batch_max_bytes);
        rabia_replica_destroy(r);
        return -ENOMEM;
    }
    r->rsm = node_rsm(r->node);
    replica_transfers_init(r);
    snapstream_set_node(&r->xfer, r->node);
    r->frame_share = (struct rio_shared){.ref = frame_ref, .unref = frame_unref, .ctx = r->node};
    /* the state machine's events: Pub/Sub deliveries, blocked pops to retry */
    if (sm->set_events) sm->set_events(rabia_rsm_sm(r->rsm), replica_sm_event, r);
    r->sweep_cid = (XXH64(&r->incarnation, sizeof r->incarnation, 0x5EE9u + r->self) | 1) | RABIA_SESSION_CONN_SCOPED;
    r->feature_cid = (XXH64(&r->incarnation, sizeof r->incarnation, 0xFEA7u + r->self) | 1) | RABIA_SESSION_CONN_SCOPED;
    r->feature_offer = (uint8_t)(cfg->max_feature_level < 0 ? RABIA_KV_FEATURE_LEVEL : cfg->max_feature_level);
    if (cfg->restore_from[0] && !seed_first && (rc = replica_restore_seed(r, &restore, err, errlen))) {
        /* a retry must find the data dir as empty as this start did: a
         * restore is a first start, whose incarnation file the destroy
         * removes (first_start_pending) */
        RABIA_ASSERT(r->first_start_pending);
        rabia_replica_destroy(r);
        return rc;
    }
    /* durability = wal: the state comes back from the snapshot file and the
     * log, and the core resumes its open slots (persistence contract rule 1) */
    struct durable_restore rest = {0};
    uint64_t batch_incarnation = r->incarnation;
    /* without its log, a replica that ran before (or is told to rejoin) may
     * have sent what it no longer knows: the horizon rule (core.h rule 2) */
    bool may_have_run = existed || cfg->rejoin;
    if (cfg->durability == RABIA_DURABILITY_WAL) {
        struct durable_cfg dc = {.data_dir = cfg->data_dir, .cluster_id = r->cluster_id, .self = r->self,
                                 .incarnation = r->incarnation, .segment_bytes = cfg->wal_segment_bytes,
                                 .max_log_size = cfg->max_log_size, .snapshot_interval_s = cfg->snapshot_interval_s,
                                 .window = cfg->window,
                                 .allow_buffered = cfg->wal_allow_buffered,
                                 .recovering = may_have_run}; /* a log made now marks it */
        struct durable_hooks hk = {.ctx = r, .fatal = env_fatal, .wrote = metrics_on_wal_write};
        rc = durable_open(&r->dur, &dc, &hk, r->rsm, &rest, err, errlen);
        if (rc == -EAGAIN && rest.rejoin) { /* an unfinished --rejoin: again, from scratch */
            durable_close(&r->dur);
            rc = node_reset_state(r->node);
            r->rsm = node_rsm(r->node);
            /* a new state machine: its events (Pub/Sub, blocked pops, feature
             * levels) must reach this replica too */
            if (!rc && sm->set_events) sm->set_events(rabia_rsm_sm(r->rsm), replica_sm_event, r);
            dc.recovering = true;
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
    cc.log_retain_bytes = cfg->log_retain_bytes;
    cc.recovering = (!log_intact && may_have_run) || rest.rejoin;
    /* from nothing: a log found without the incarnation file (a data dir
     * copied without that small file) holds what this replica sent before,
     * takes part at once as a restart with it does, and is no lost data
     * dir; said FIRST_START, its peers refused it and the fix they named
     * (--rejoin on an empty dir) threw the log away (found by review) */
    r->first_start_votes = !existed && !cc.recovering && !log_intact;
    /* The data dir's first start, said after HELLO (FIRST_START) at every
     * start on it that votes at once: a life refused as a lost data dir
     * wrote a log and an incarnation file, and a restart on them (or a
     * --rejoin, which a log makes a restart) took part at once, taken by
     * the peers that had refused it, voting from what the refused life
     * wrote (found by review). A start that recovers from its peers ends
     * it: from then on the data dir holds only what the cluster agreed. */
    {
        int frc = 0;
        if (r->first_start_votes) {
            r->first_start_birth = r->incarnation;
            frc = rabia_first_start_write(cfg->data_dir, r->first_start_birth, err, errlen);
        } else if (cc.recovering) {
            frc = rabia_first_start_forget(cfg->data_dir, err, errlen);
        } else {
            frc = rabia_first_start_read(cfg->data_dir, &r->first_start_birth, err, errlen);
            if (!frc && r->first_start_birth > r->incarnation) {
                snprintf(err, errlen,
                         "%s/" RABIA_FIRST_START_FILE " says this data dir began at incarnation %" PRIu64
                         ", after this start's %" PRIu64 ": the file belongs to another data dir; if this "
                         "replica's data dir may have been lost, empty it and start with --rejoin, else remove "
                         "the file",
                         cfg->data_dir, r->first_start_birth, r->incarnation);
                frc = RABIA_E_CONFIG;
            }
        }
        if (frc) {
            if (r->wal) durable_close(&r->dur);
            r->wal = false;
            rabia_replica_destroy(r);
            return frc;
        }
    }
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
    struct node_restore mem_rest = {.applied = restore.slot}; /* memory: a restored state's slot */
    rc = node_start(r->node, &cc, r->wal ? &lg : NULL, r->wal ? &rest.rest : restore.slot ? &mem_rest : NULL);
    if (r->wal) durable_restored(&r->dur);
    if (rc) {
        snprintf(err, errlen, "out of memory starting the replica");
        rabia_replica_destroy(r);
        return rc;
    }
    r->core = node_core(r->node);
    rabia_core_set_decide_observer(r->core, metrics_on_decide, r);
    if (!have_stored_id && (rc = rabia_cluster_id_write(cfg->data_dir, r->cluster_id, err, errlen))) {
        rabia_replica_destroy(r);
        return rc;
    }
    if (have_stored_id && !cfg->cluster_id && stored_id != derived_id)
        replica_log(r, RABIA_LOG_INFO,
                    "members differ from the list this cluster began with (a replaced machine?), or the cluster "
                    "was restored from a backup: keeping the cluster id %016" PRIx64 " from %s/cluster-id",
                    stored_id, cfg->data_dir);
    /* --rejoin on a data dir whose log is intact: a plain restart from the
     * log is what is safe (it holds all this replica sent), and was done
     * without a word: an operator who meant to rebuild the replica from
     * its peers believed it had (found by review) */
    if (cfg->rejoin && log_intact && !cc.recovering)
        replica_log(r, RABIA_LOG_WARN,
                    "--rejoin was not needed: %s holds this replica's log, so this start is a plain restart from it "
                    "(taking part at once, nothing lost). --rejoin is for a data dir that was lost or emptied; to "
                    "rebuild this replica from its peers anyway, stop it, move the data dir aside and start it with "
                    "--rejoin",
                    cfg->data_dir);
    /* The incarnation counts up from the first start's wall clock, never
     * down: a data dir begun on a clock over a day ahead keeps it after the
     * clock is corrected, and every peer refuses each HELLO of it as ahead
     * of its own clock (hello.h HELLO_AHEAD_US) until real time passes it.
     * The peers' refusal asked to fix the clock, already fixed; this names
     * the cause and the way out (found by review). */
    uint64_t wall = wall_us();
    if (r->incarnation > wall + HELLO_AHEAD_US)
        replica_log(r, RABIA_LOG_WARN,
                    "this data dir's incarnation %" PRIu64 " is %" PRIu64 " s ahead of this machine's clock: its "
                    "first start ran on a clock that far ahead. Peers refuse an incarnation over a day ahead of "
                    "their clocks, so they refuse this replica until their clocks pass it. If only this machine's "
                    "clock was off, stop this replica, empty its data dir and start it with --rejoin; if every "
                    "replica's was when the cluster began, seed a new cluster from a backup (rabiad --restore) "
                    "with the clocks right",
                    r->incarnation, (r->incarnation - wall) / 1000000u);
    replica_app_new_session(r);
    publish_status(r);
    replica_log(r, RABIA_LOG_INFO, "replica %u of %u, incarnation %" PRIu64 "%s, cluster %016" PRIx64 ", state machine %s",
         cfg->id, cfg->n, r->incarnation,
         log_intact ? " (restart with its log: taking part at once)"
         : cc.recovering ? " (restart without a log: recovering from peers under the horizon rule)"
                         : " (first start)",
         r->cluster_id, sm->name);
    if (r->maxmem_clients)
        replica_log(r, RABIA_LOG_DEBUG, "maxmemory-clients: %" PRIu64 " bytes for all client connections together%s",
                    r->maxmem_clients, cfg->maxmemory_clients_pct ? " (a share of this machine's memory)" : "");
    r->first_start_pending = false;
    *out = r;
    return 0;
}

int rabia_replica_run(struct rabia_replica *r)
{
    char err[512];
    int rc0 = open_io(r, err, sizeof err);
    if (rc0) {
        replica_log(r, RABIA_LOG_ERROR, "%s", err);
        /* A first start without a log that cannot open its ports (one in
         * use, a typo in an address) sent nothing yet: it dials from the
         * loop. The incarnation file it leaves made the next start a
         * restart without a log, which waits for its peers' horizons; a new
         * memory cluster refused so on every replica (the same config on
         * each) never served once fixed. With a log the next start is a
         * restart with it, which takes part at once. */
        if (r->first_start_votes && !r->wal) rabia_incarnation_forget(r->cfg.data_dir);
        close_io(r);
        replica_app_shutdown(r);
        return rc0;
    }
    if (r->wal) durable_attach(&r->dur, r->node, r->loop);
    /* RABIA_LOG_WAIT=any: wake for every completion during a log write,
     * as before rio_run_once_file_first (for A/B measurements) */
    const char *lw = getenv("RABIA_LOG_WAIT");
    r->log_wait_first = r->wal && !(lw && strcmp(lw, "any") == 0);
    replica_audit_live(r);
    uint64_t last_status = 0;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        replica_tls_poll(r); /* a SIGHUP's reload, on this thread */
        replica_reload_poll(r);
        uint64_t now = rio_now_us();
        /* peers whose name lookup finished: dial now */
        for (uint32_t done = replica_lookups_done(r); done; done &= done - 1)
            r->peers[__builtin_ctz(done)].redial_at_us = 0;
        for (uint8_t p = 0; p < r->cfg.n; p++) {
            struct peer *pe = &r->peers[p];
            if (p != r->self && pe->out == UINT32_MAX && now >= pe->redial_at_us) dial(r, p);
        }
        replica_drain_app(r);
        /* the core's tick, batches, and group commit: everything this turn
         * produced goes in one log write */
        uint64_t due = node_turn(r->node);
        replica_hashcheck_tick(r);
        if (r->peers_seen_retry_us && now >= r->peers_seen_retry_us) peers_seen_save(r, now);
        if (now - last_status >= 100000) {
            publish_status(r);
            last_status = now;
        }
        /* maxmemory-clients: every 100 ms, every 10 ms past half the budget */
        uint64_t mem_every = r->maxmem_clients && r->client_memory > r->maxmem_clients / 2 ? 10000 : 100000;
        if (now - r->clients_mem_check_us >= mem_every) {
            replica_clients_memory_check(r);
            r->clients_mem_check_us = now;
        }
        /* sleep until the next deadline */
        uint64_t next = now + 100000;
        if (due && due < next) next = due;
        if (mem_every < 100000 && now + mem_every < next) next = now + mem_every;
        for (uint8_t p = 0; p < r->cfg.n; p++)
            if (p != r->self && r->peers[p].out == UINT32_MAX && r->peers[p].redial_at_us < next)
                next = r->peers[p].redial_at_us;
        /* transfer-rate's forecast: what the core's log bridges at today's batch sizes */
        if (r->cfg.durability == RABIA_DURABILITY_MEMORY) r->xfer.cfg.log_retain = node_log_span(r->node);
        uint64_t xfer_due = snapstream_turn(&r->xfer); /* a chunk held by transfer-rate */
        if (xfer_due && xfer_due < next) next = xfer_due;
        replica_backup_pump(r);
        replica_kv_sweep(r, now);
        replica_kv_features(r, now);
        metrics_tick(r, now);
        uint64_t auth_due = replica_auth_tick(r, now); /* held AUTHs, peer handshakes */
        if (auth_due && auth_due < next) next = auth_due;
        uint64_t hello_due = hello_tick(r, now); /* peer-port connections that never say HELLO */
        if (hello_due && hello_due < next) next = hello_due;
        if (r->n_blocked) { /* blocked pops' deadlines, to the 10 ms */
            replica_resp_timeouts(r, now);
            if (now + 10000 < next) next = now + 10000;
        }
        if (r->wal) {
            if (now - r->dur_tick_us >= 10000) {
                r->dur_tick_us = now;
                /* the keep seq as of the snapshot already durable: one finishing in
                 * this tick covers more, so this keeps at least what it must */
                uint64_t pin = snapstream_pin(&r->xfer, now), lpin = node_log_pin(r->node, now);
                if (lpin && (!pin || lpin < pin)) pin = lpin;
                durable_tick(&r->dur, r->rsm, now, node_keep_batch_seq(r->node, r->dur.sched.last_slot),
                             rabia_core_recovering(r->core), pin);
            }
            if (now + 10000 < next) next = now + 10000; /* snapshots, a stalled log */
        }
        replica_audit_flush(r); /* this turn's audit lines, before its replies leave */
        now = rio_now_us();
        /* while a batch waits for its clients' next requests, the loop
         * sleeps until as many have come as could complete it (node_wait_events) */
        uint64_t wait_us = next > now ? next - now : 0;
        int rc = r->log_wait_first && node_log_gates(r->node)
                     ? rio_run_once_file_first(r->loop, wait_us, REPLICA_LOG_WAIT_CAP_US)
                     : rio_run_once_min(r->loop, wait_us, node_wait_events(r->node));
        if (rc < 0 && rc != -EINTR && rc != -ETIME) {
            replica_log(r, RABIA_LOG_ERROR, "event loop: %s", rabia_strerror(rc));
            close_io(r);
            replica_app_shutdown(r);
            return rc;
        }
        /* replies made by the loop's callbacks may have unblocked pipelines */
        struct conn *k;
        for (FOR_LIVE(r, k)) {
            if (!r->n_want_pump) break;
            if (!k->want_pump) continue;
            k->want_pump = false;
            r->n_want_pump--;
            if (k->kind == CK_RESP && !k->closing) replica_resp_pump(r, (uint32_t)(k - r->conns));
            else if (k->kind == CK_CLIENT && !k->closing) replica_native_unpark(r, (uint32_t)(k - r->conns));
        }
    }
    replica_log(r, RABIA_LOG_INFO, "stopping (applied up to slot %" PRIu64 ")", rabia_rsm_applied(r->rsm));
    close_io(r);
    replica_app_shutdown(r); /* every submission answered, later ones refused */
    return r->failed ? -EIO : 0; /* a failure, not rabia_replica_stop: the embedder (rabiad's exit status) must know */
}

void rabia_replica_stop(struct rabia_replica *r)
{
    __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
    replica_wake(r);
}

/* trylock, never lock: signal handlers (rabiad's SIGTERM, SIGHUP) call this,
 * and one that interrupts the loop thread while it holds wake_mu (open_io,
 * close_io) would deadlock on it. A failed trylock must not lose the wake:
 * the holder may be another waker whose write the loop has already taken
 * (and whose turn has already drained the queues) before our caller queued
 * its work, which then waited for the loop's next timer (found by review:
 * the reasoning is in the commit). So a waker first says it wants a wake
 * (wake_wanted), and whoever holds the mutex looks again after letting it
 * go: our store comes before our failed trylock, which comes before the
 * holder's unlock and its look. The loop thread holding it (open_io,
 * close_io) needs no wake: it reads the queues on its next turn. */
void replica_wake(struct rabia_replica *r)
{
    __atomic_store_n(&r->wake_wanted, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&r->wake_wanted, __ATOMIC_SEQ_CST) && pthread_mutex_trylock(&r->wake_mu) == 0) {
        __atomic_store_n(&r->wake_wanted, 0, __ATOMIC_SEQ_CST);
        if (r->loop) rio_loop_wake(r->loop);
        pthread_mutex_unlock(&r->wake_mu);
    }
}

void rabia_replica_destroy(struct rabia_replica *r)
{
    if (!r) return;
    replica_lookups_destroy(r); /* first: its thread may wake the loop until then */
    if (r->loop) rio_loop_destroy(r->loop); /* run never returned normally */
    if (r->conns) {
        while (r->n_live) replica_conn_release(r, r->live[r->n_live - 1]);
    }
    snapstream_end_all(&r->xfer); /* closes the files transfers read, removes those they wrote */
    replica_backup_free(r);
    replica_audit_close(r);
    rabia_buf_free(&r->snap_out);
    free(r->chunk);
    replica_app_shutdown(r); /* never run: its submissions are answered here */
    /* after the loop, which waited for the write in flight, bounded */
    bool parked = r->wal && durable_close(&r->dur);
    if (r->first_start_pending) rabia_incarnation_forget(r->cfg.data_dir); /* under the data dir's lock still */
    if (parked) {
        /* The disk has not answered that write. The kernel will still carry
         * it out when the disk comes back, at its offset in the log: a
         * replica made on this data dir meanwhile (an embedder that destroys
         * and re-creates one in the same process) would have written its
         * own groups there, and lose them to it. The LOCK stays held (its
         * descriptor open) until the process exits, which the kernel holds
         * back until the write ends (persist/datadir.c). */
        fprintf(stderr,
                "rabia: replica %u stopped with a write to its log not answered by the disk in %u ms: the "
                "kernel carries it out whenever the disk goes on, so its data dir %s stays locked until this "
                "process exits (nothing written there later can be overwritten by it); check the device "
                "(dmesg)\n",
                (unsigned)r->self + 1, (unsigned)(RIO_DESTROY_WAIT_US / 1000u), r->cfg.data_dir);
    } else {
        rabia_dir_unlock(r->lock_fd);
    }
    node_destroy(r->node);
    rabia_buf_free(&r->scratch);
    rabia_buf_free(&r->pump_op);
    resp_argv_free(&r->peek_pa);
    metrics_destroy(r);
    replica_tls_close(r); /* after the loop: connections hold their own references */
    replica_auth_destroy(r);
    free(r->conns);
    pthread_mutex_destroy(&r->app_mu);
    pthread_mutex_destroy(&r->wake_mu);
    pthread_mutex_destroy(&r->st_mu);
    replica_auth_users_free(r->users_next);
    pthread_mutex_destroy(&r->reload_mu);
    free(r);
}
