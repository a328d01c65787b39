/* Clients of a replica: native frames and RESP connections (parsing,
 * pipelines kept in order, replies in order), and answering them
 * (replica_deliver, node.h's reply). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "auth.h"
#include "internal.h"
#include "invariant.h"
#include "kv.h"
#include <strings.h>

/* ------------------------------------------------------------------ */
/* replies */

/* Room for one more reply slot: the ring doubles when full, up to
 * RESP_MAX_PENDING. Every slot of a full ring is in use, so each moves to
 * its position's place in the larger one and waiters' positions stay
 * valid. false: RESP_MAX_PENDING replies wait already (or no memory). */
static bool slot_room(struct conn *k)
{
    RABIA_ASSERT(k->q && k->q_len <= k->q_cap);
    if (k->q_len < k->q_cap) return true;
    if (k->q_cap >= RESP_MAX_PENDING) return false;
    uint32_t ncap = k->q_cap * 2;
    struct resp_slot *nq = calloc(ncap, sizeof *nq);
    if (!nq) return false; /* the pump waits, as with a full ring */
    for (uint32_t j = 0; j < k->q_cap; j++) {
        uint32_t pos = k->q_head + j;
        nq[pos & (ncap - 1)] = k->q[pos & (k->q_cap - 1)];
    }
    free(k->q);
    k->q = nq;
    k->q_cap = ncap;
    return true;
}

/* An idle connection gives back what a burst grew: its ring goes back to
 * RESP_RING_START slots, with the reply buffers its slots kept (1 KiB each
 * at most), and an empty input buffer larger than RESP_IN_IDLE_KEEP goes
 * (as Redis resizes an idle client's query buffer). After a pipeline of
 * 4000 GETs a connection held 145 KB idle: 128 KiB of it input buffer. */
static void idle_trim(struct conn *k)
{
    if (!k->in.len && k->in.cap > RESP_IN_IDLE_KEEP) rabia_buf_free(&k->in);
    if (!k->q || k->q_len || k->q_cap <= RESP_RING_START) return;
    struct resp_slot *nq = calloc(RESP_RING_START, sizeof *nq);
    if (!nq) return;
    for (uint32_t j = 0; j < k->q_cap; j++) rabia_buf_free(&k->q[j].out);
    free(k->q);
    k->q = nq;
    k->q_cap = RESP_RING_START;
}

/* The next free slot of the ring (slot_room said there is one), its reply
 * buffer empty: a spare one when the slot has none (see struct conn's spare). */
static struct resp_slot *slot_next(struct conn *k)
{
    RABIA_ASSERT(k->q_len < k->q_cap);
    struct resp_slot *s = resp_slot_at(k, k->q_head + k->q_len);
    if (!s->out.cap && k->n_spare)
        s->out = k->spare[--k->n_spare];
    rabia_buf_clear(&s->out);
    RABIA_ASSERT(!s->push); /* flushed slots are cleared (resp_flush) */
    return s;
}

/* A slot's reply is complete: it leaves in order (resp_flush). Until then
 * its bytes count in the connection's memory (maxmemory-clients). */
static void slot_ready(struct conn *k, struct resp_slot *s)
{
    RABIA_ASSERT(!s->ready);
    s->ready = true;
    k->slot_bytes += s->out.len;
}

/* A flushed slot's buffer goes back to the spares (while there is room and
 * it is not a large one's), so the slots in flight share a few buffers.
 * With the spares full, the slot keeps it only if it is small
 * (RESP_SLOT_KEEP_CAP): kept up to 64 KiB, a connection that had walked
 * its 4096 slots with large replies held 58 MB while idle (review). */
static void slot_recycle(struct conn *k, struct resp_slot *s)
{
    if (s->out.cap && s->out.cap <= RESP_SPARE_MAX_CAP && k->n_spare < RESP_SPARE_BUFS) {
        k->spare[k->n_spare++] = s->out;
        s->out = (struct rabia_buf){0};
    }
    if (s->out.cap > RESP_SLOT_KEEP_CAP) rabia_buf_free(&s->out); /* a big reply's memory is not kept */
    rabia_buf_clear(&s->out);
}

void replica_resp_free_spares(struct conn *k)
{
    for (uint32_t i = 0; i < k->n_spare; i++) rabia_buf_free(&k->spare[i]);
    k->n_spare = 0;
}

static void resp_flush(struct rabia_replica *r, struct conn *k)
{
    if (k->closing) return; /* closed for maxmemory-clients, or its output limit: nothing more leaves */
    while (k->q_len && resp_slot_at(k, k->q_head)->ready) {
        struct resp_slot *s = resp_slot_at(k, k->q_head);
        if (s->push) {
            RABIA_ASSERT(k->push_bytes >= s->out.len);
            k->push_bytes -= s->out.len;
            s->push = false;
        }
        RABIA_ASSERT(k->slot_bytes >= s->out.len);
        k->slot_bytes -= s->out.len;
        bool mute = s->mute;
        s->mute = false;
        if (!mute && rio_send(k->c, s->out.data, s->out.len) < 0) {
            replica_log(r, RABIA_LOG_WARN,
                        "client %s: a reply of %zu bytes does not fit in its output buffer (%zu bytes waiting, at "
                        "most 64 MiB): closing it",
                        k->rs.addr, s->out.len, rio_conn_pending(k->c));
            replica_conn_close(r, k->c);
            return;
        }
        slot_recycle(k, s);
        s->ready = false;
        k->q_head++;
        k->q_len--;
    }
    if (!k->q_len && k->quit) rio_close_after_send(k->c);
    replica_client_grew(r, k);
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
    if (status == RABIA_REPLY_BAD_REQUEST && len) { /* the replica says why (node.c) */
        rabia_buf_append(out, "-ERR ", 5);
        for (size_t i = 0; i < len; i++) {
            uint8_t c = res[i] == '\r' || res[i] == '\n' ? ' ' : res[i];
            rabia_buf_append(out, &c, 1);
        }
        rabia_buf_append(out, "\r\n", 2);
        return;
    }
    const char *msg = status == RABIA_REPLY_SESSION_EXPIRED ? "-ERR session expired\r\n"
                      : status == RABIA_REPLY_BUSY           ? "-BUSY replica overloaded, retry\r\n"
                                                             : "-ERR request refused by the replica\r\n";
    rabia_buf_append(out, msg, strlen(msg));
}

static void resp_drained(struct rabia_replica *r, uint32_t ci);

/* A nil reply: a blocking pop that found nothing (BLPOP's "*-1", BLMOVE's "$-1"). */
static bool is_nil(const uint8_t *res, size_t len)
{
    return len == 5 && (memcmp(res, "*-1\r\n", 5) == 0 || memcmp(res, "$-1\r\n", 5) == 0);
}

/* Answer one request (node.h's reply): to a native client, into a RESP
 * connection's reply queue, or to the application's callback (conn ==
 * MAX_CONNS). */
void replica_deliver(void *ctx, const struct node_to *w, uint64_t cid, uint64_t seq, int status, const uint8_t *res,
                    size_t len)
{
    struct rabia_replica *r = ctx;
    if (w->conn == MAX_CONNS) {
        if (w->read && r->app_reads && !--r->app_reads)
            replica_wake(r); /* only the application's reads go by the index without a conn; requests may wait
                                behind them in its queue (app.c): the next turn must not sleep first */
        if (cid == r->app_client_id && seq) metrics_request_done(r, MF_APP, MK_OTHER, M_CMD_NONE, w->t_us, status, res, len);
        if (cid == r->app_client_id) replica_app_answered(r, seq, status, res, len);
        if (w->fn) w->fn(w->ctx, status, res, len);
        return;
    }
    struct conn *k = &r->conns[w->conn];
    if (k->kind == CK_FREE || k->gen != w->gen) return; /* client went away */
    if (w->read && k->fast_inflight) {
        k->fast_inflight--;
        if (!k->fast_inflight && k->deferred && !k->want_pump) { /* the command behind the reads may go */
            k->want_pump = true;
            r->n_want_pump++;
        }
    }
    if (k->kind == CK_RESP_DRAIN || (k->kind == CK_RESP && k->closing)) {
        if (k->inflight) k->inflight--;
        if (k->kind == CK_RESP_DRAIN && !k->inflight) resp_drained(r, w->conn);
        return;
    }
    if (k->closing) return;
    if (k->kind == CK_CLIENT) {
        if (seq && k->inflight) k->inflight--;
        if (!k->inflight && k->deferred && !k->want_pump) { /* parked behind a batch (window > 1): they may go */
            k->want_pump = true;
            r->n_want_pump++;
        }
        /* w->slot (RESP's reply slot) carries metrics_op_tag for a native request */
        metrics_request_done(r, MF_NATIVE, (int)(w->slot >> 16), (uint16_t)w->slot, w->t_us, status, res, len);
        replica_auth_native_replied(r, w->conn, cid, seq, status, res, len); /* an OPEN: the session is its */
        struct rabia_msg m = {.type = RABIA_MSG_CLIENT_REPLY, .u64 = cid, .slot = seq,
                              .value = (uint8_t)status, .body = res, .body_len = (uint32_t)len};
        if (len > RABIA_MAX_FRAME || !rabia_msg_encoded_size(&m)) {
            /* A result no frame holds: it was dropped with an ERROR that
             * named no cause, and the client waited out its timeout_ms,
             * failed over and got APPLIED_NO_RESULT from the next replica
             * (a read by the index: the same on every replica, then
             * -ETIMEDOUT; found by review). That answer now, at once. */
            replica_log(r, RABIA_LOG_WARN,
                        "the result of client %016" PRIx64 "'s request %" PRIu64 " is %zu bytes, too large for a "
                        "frame (%u bytes with its header): answered APPLIED_NO_RESULT (applied, result dropped); "
                        "the state machine's results must stay below that size",
                        cid, seq, len, (unsigned)RABIA_MAX_FRAME);
            m.value = RABIA_REPLY_APPLIED_NO_RESULT;
            m.body = NULL;
            m.body_len = 0;
        }
        replica_send_frame(r, k->c, &m);
        replica_client_grew(r, k);
    } else if (k->kind == CK_RESP) {
        struct resp_slot *s = resp_slot_at(k, w->slot);
        if (k->inflight) k->inflight--;
        if (s->post == RESP_POST_BLOCK) RABIA_ASSERT(k->block_wait && !k->blocked);
        if (status == RABIA_REPLY_OK && s->post == RESP_POST_BLOCK && is_nil(res, len)) {
            if (k->eof) { /* the client shut its side: Redis drops a blocked client at EOF */
                replica_conn_close(r, k->c);
                return;
            }
            /* nothing to pop yet: park (the pump stops) until a key is ready */
            k->blocked = true;
            k->block_slot = w->slot;
            r->n_blocked++;
            return;
        }
        if (s->post == RESP_POST_BLOCK) k->block_wait = false; /* answered: the next commands go */
        metrics_request_done(r, MF_RESP, s->mkind, s->cmd, w->t_us, status, res, len);
        struct rabia_buf kinds = {0}; /* EXEC's, kept in out until now */
        if (s->r3 == R3_EXEC) {
            kinds = s->out;
            s->out = (struct rabia_buf){0};
        }
        rabia_buf_clear(&s->out);
        if (status == RABIA_REPLY_OK && s->post == RESP_POST_EXEC_DB)
            resp_exec_result(&k->rs, res, len); /* SELECT in MULTI: if it ran */
        if (status != RABIA_REPLY_OK) {
            resp_status_error(&s->out, status, res, len);
        } else if (s->post == RESP_POST_WATCH && len && res[0] == '*') {
            resp_watch_result(&k->rs, res, len);
            rabia_buf_append(&s->out, "+OK\r\n", 5);
        } else if (s->post == RESP_POST_WAIT) {
            char num[32];
            int n = snprintf(num, sizeof num, ":%u\r\n", (unsigned)node_reply_holders(r->node) - 1u);
            rabia_buf_append(&s->out, num, (size_t)n);
        } else if (s->post == RESP_POST_PUBLISH && len && res[0] == ':') {
            char num[32];
            int n = snprintf(num, sizeof num, ":%" PRId64 "\r\n", r->publish_count);
            rabia_buf_append(&s->out, num, (size_t)n);
        } else if (s->r3 == R3_EXEC) { /* a RESP3 connection: Redis 7.0's RESP3 reply */
            resp3_convert_exec(kinds.data, kinds.len, res, len, &s->out);
        } else {
            resp3_convert(s->r3, res, len, &s->out); /* R3_NONE: as it is */
        }
        rabia_buf_free(&kinds);
        slot_ready(k, s);
        resp_flush(r, k);
        if (!k->inflight && (k->in.len || (k->eof && !k->quit)) && !k->want_pump) {
            /* parse the rest after this turn (after the client's EOF, the pump closes it once all is answered) */
            k->want_pump = true;
            r->n_want_pump++;
        }
    }
}

/* Native requests and the read index. A read (the state machine's query
 * says so) goes by the read index (node_read) when nothing of its
 * connection is in the log; it is answered in order with the other reads
 * node_read holds, or through the log under its own (client id, seq) if
 * its round does not complete. A request that must go through the log
 * while reads of its connection wait for their index is parked, with
 * every request after it, until those reads are answered: a connection's
 * requests take effect in the order they came, as through the log alone
 * (a pipelined GET k; SET k v sees the value before the SET). With
 * window > 1 a request for the log is parked likewise while requests of
 * its connection wait in a batch already cut, until they are answered:
 * two batches of this replica can be decided in either order (a slot
 * that ends null proposes its batch again after a later one), one batch
 * is applied whole and in order (as a RESP pipeline, replica_resp_pump).
 * Parked: cid u64, seq u64, ack u64, length u32, op; at most
 * NATIVE_PARK_MAX requests (a client keeps at most RABIA_RSM_WINDOW in
 * flight) and RESP_MAX_INPUT bytes, beyond which the connection is closed. */
#define NATIVE_PARK_MAX (2u * RABIA_RSM_WINDOW)
#define NATIVE_PARK_HDR 28u

bool replica_behind_batch(const struct rabia_replica *r, uint64_t batch_no, size_t len)
{
    if (r->cfg.window <= 1) return false; /* this replica's batches are proposed one at a time, in order */
    const struct batcher *bt = node_batcher(r->node);
    return batch_no != batcher_open_no(bt) || !batcher_joins_open(bt, len);
}

/* Whether a native request of len bytes for the log must wait for the
 * answers of its connection's requests in the log (replica_behind_batch). */
static bool native_behind_batch(struct rabia_replica *r, const struct conn *k, uint64_t seq, uint32_t len)
{
    return seq && k->inflight != k->fast_inflight && replica_behind_batch(r, k->open_batch, len);
}

static void native_request(struct rabia_replica *r, uint32_t ci, uint64_t cid, uint64_t seq, uint64_t ack,
                           const uint8_t *op, uint32_t len)
{
    struct conn *k = &r->conns[ci];
    RABIA_ASSERT(k->kind == CK_CLIENT && !k->closing);
    RABIA_ASSERT(k->fast_inflight <= k->inflight);
    /* parked: reads ahead, requests in the log (window > 1), or unparked soon */
    RABIA_ASSERT(!k->deferred || k->fast_inflight || k->inflight || k->want_pump);
    uint32_t tag = k->deferred ? 0 : metrics_op_tag(r, op, len); /* parked: tagged when it leaves the park */
    if (!k->deferred && r->cfg.read_index && seq && len && k->inflight == k->fast_inflight) {
        struct node_to to = {.conn = ci, .gen = k->gen, .slot = tag, .t_us = k->in_us ? k->in_us : rio_turn_us()};
        k->inflight++; /* first: an answer given at once finds them counted */
        k->fast_inflight++;
        if (node_read(r->node, cid, seq, ack, op, len, &to)) return;
        k->inflight--;
        k->fast_inflight--;
    }
    bool behind_batch = !k->deferred && !k->fast_inflight && native_behind_batch(r, k, seq, len);
    if (k->deferred || k->fast_inflight || behind_batch) { /* behind reads (or a batch) not answered yet: parked */
        if (k->defer_slot >= NATIVE_PARK_MAX || k->defer_op.len + NATIVE_PARK_HDR + len > RESP_MAX_INPUT) {
            char who[64] = "?";
            rio_conn_peer(k->c, who, sizeof who);
            replica_log(r, RABIA_LOG_WARN,
                        "native client %s sent over %u requests (or %u MiB) while its reads waited for their read "
                        "index: closing it (a client keeps at most %u requests in flight)",
                        who, NATIVE_PARK_MAX, RESP_MAX_INPUT >> 20, RABIA_RSM_WINDOW);
            replica_conn_close(r, k->c);
            return;
        }
        uint8_t h[NATIVE_PARK_HDR];
        memcpy(h, &cid, 8);
        memcpy(h + 8, &seq, 8);
        memcpy(h + 16, &ack, 8);
        memcpy(h + 24, &len, 4);
        if (rabia_buf_append(&k->defer_op, h, sizeof h) || (len && rabia_buf_append(&k->defer_op, op, len))) {
            replica_log(r, RABIA_LOG_WARN, "out of memory parking a native request: closing the connection");
            replica_conn_close(r, k->c);
            return;
        }
        k->defer_slot++; /* native: the number parked */
        k->deferred = true;
        if (!behind_batch) r->held_behind_reads++;
        replica_client_grew(r, k); /* maxmemory-clients counts what is parked */
        return;
    }
    if (seq) k->inflight++; /* seq 0 (a session close) is never answered */
    k->open_batch = batcher_open_no(node_batcher(r->node)); /* before: a request that fills the batch cuts it */
    replica_enqueue(r, cid, seq, ack, op, len, ci, tag, NULL, NULL);
}

/* The reads a native connection's parked requests waited for are
 * answered: take the parked ones in order (from the loop, after the turn:
 * never inside a reply). */
void replica_native_unpark(struct rabia_replica *r, uint32_t ci)
{
    struct conn *k = &r->conns[ci];
    RABIA_ASSERT(k->kind == CK_CLIENT);
    if (!k->deferred || k->fast_inflight || k->closing) return;
    /* parked behind a batch (window > 1): its answers come first */
    if (k->inflight && r->cfg.window > 1) return;
    struct rabia_buf parked = k->defer_op; /* those parked again go into a new buffer, after the rest */
    uint32_t n = k->defer_slot;
    k->defer_op = (struct rabia_buf){0};
    k->defer_slot = 0;
    k->deferred = false;
    size_t off = 0;
    for (uint32_t i = 0; i < n && !k->closing; i++) {
        RABIA_ASSERT(off + NATIVE_PARK_HDR <= parked.len);
        uint64_t cid, seq, ack;
        uint32_t len;
        memcpy(&cid, parked.data + off, 8);
        memcpy(&seq, parked.data + off + 8, 8);
        memcpy(&ack, parked.data + off + 16, 8);
        memcpy(&len, parked.data + off + 24, 4);
        off += NATIVE_PARK_HDR;
        RABIA_ASSERT(off + len <= parked.len);
        native_request(r, ci, cid, seq, ack, parked.data + off, len);
        off += len;
    }
    RABIA_ASSERT(k->closing || off == parked.len);
    if (k->deferred || k->defer_op.data) { /* parked again: those wait in the new buffer */
        rabia_buf_free(&parked);
    } else { /* keep its memory for the next time */
        k->defer_op = parked;
        rabia_buf_clear(&k->defer_op);
    }
}

void replica_native_frame(struct rabia_replica *r, uint32_t ci, const struct rabia_msg *m)
{
    struct conn *k = &r->conns[ci];
    if (replica_auth_native(r, ci, m)) return; /* CLIENT_AUTH; NOAUTH, NOPERM (auth.c) */
    if (m->type == RABIA_MSG_CLIENT_REQ && !strcmp(r->cfg.state_machine, "kv") &&
        rabia_kv_op_internal(m->body, m->body_len)) {
        /* FEATURELEVEL from a client could stop every replica whose build lacks that level */
        static const char no[] = "-ERR unknown command: SWEEP, FEATURES and FEATURELEVEL are the replicas' own "
                                 "operations\r\n";
        struct rabia_msg rep = {.type = RABIA_MSG_CLIENT_REPLY, .u64 = m->u64, .slot = m->slot,
                                .value = RABIA_REPLY_OK, .body = (const uint8_t *)no, .body_len = sizeof no - 1};
        replica_send_frame(r, k->c, &rep);
    } else if (m->type == RABIA_MSG_CLIENT_REQ) {
        native_request(r, ci, m->u64, m->slot, m->u64b, m->body, m->body_len);
    } else if (m->type == RABIA_MSG_STATUS_REQ) {
        struct rabia_replica_status st;
        rabia_replica_get_status(r, &st);
        char text[4096]; /* 7 members with 255-byte host names fit */
        uint64_t hslot;
        uint64_t hash = replica_state_hash(r, true, &hslot);
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
        if (n >= 0 && n < (int)sizeof text - 1) /* hashcheck.c */
            n += snprintf(text + n, sizeof text - (size_t)n,
                          "hash_checks: %" PRIu64 " agreed (newest slot %" PRIu64 "), %" PRIu64 " differed%s\n",
                          r->hc.agreed, r->hc.agreed_slot, r->hc.differed,
                          !r->hc.diverged_peers ? ""
                          : r->hc.suspect      ? ": this replica's state differs from a peer's (see the log)"
                                               : ": a peer's state differs from the majority's (see the log)");
        for (uint8_t p = 0; p < r->cfg.n && n >= 0 && n < (int)sizeof text - 1; p++)
            n += snprintf(text + n, sizeof text - (size_t)n, "member_%u: %s:%u %s\n", p + 1, r->cfg.members[p].host,
                          r->cfg.members[p].port,
                          p == r->self ? "self" : r->peers[p].out_ready ? "reachable" : "unreachable");
        /* snprintf counts what did not fit: never send past the buffer */
        if (n < 0) n = 0;
        if ((size_t)n >= sizeof text) n = (int)sizeof text - 1;
        struct rabia_msg rep = {.type = RABIA_MSG_STATUS, .body = (const uint8_t *)text, .body_len = (uint32_t)n};
        replica_send_frame(r, k->c, &rep);
    } else if (m->type == RABIA_MSG_BACKUP_REQ) { /* rabia-cli backup: backup.c streams it */
        replica_backup_request(r, ci);
    } else {
        replica_log(r, RABIA_LOG_WARN, "client sent a %s frame; closing it", rabia_msg_type_name(m->type));
        replica_conn_close(r, k->c);
    }
}

/* ------------------------------------------------------------------ */
/* RESP */

/* INFO [section ...]: the text is metrics.c's (Redis's sections and rabia's). */
static void resp_info(struct rabia_replica *r, struct rabia_buf *out, const uint8_t *const *want,
                      const size_t *want_len, uint32_t wn, bool verbatim)
{
    metrics_info(r, &r->m->info, want, want_len, wn);
    if (verbatim) resp_put_verbatim(out, r->m->info.data, r->m->info.len); /* RESP3, as Redis 7.0 */
    else resp_put_bulk(out, r->m->info.data, r->m->info.len);
}

/* A parked blocking pop tries again: the same op, a new request. */
static void resubmit_blocked(struct rabia_replica *r, uint32_t ci)
{
    struct conn *k = &r->conns[ci];
    RABIA_ASSERT(k->blocked && k->block_retry && r->n_blocked > 0);
    k->blocked = k->block_retry = false;
    r->n_blocked--;
    uint64_t seq = k->next_seq++;
    if (!k->inflight) k->group_first = seq;
    k->inflight++;
    k->open_batch = batcher_open_no(node_batcher(r->node));
    replica_enqueue(r, k->client_id, seq, k->group_first, k->block_op.data, (uint32_t)k->block_op.len, ci,
                    k->block_slot, NULL, NULL);
}

/* Whether the reads of a pipeline go by the read index: every complete
 * command in p[0..len) (those after the one parsed) is a read it may
 * answer (a KV command that only reads), and, when there are such
 * commands, this replica's open batch is empty. A pipeline that mixes
 * writes in goes through the log whole, one slot, as it did before reads
 * were answered by the index: its reads first by a round and then its
 * writes by a slot is two waits in a row where one would do (SET and GET
 * in equal parts, -P 16: 0.65-0.76x the throughput). A pipeline of reads
 * while writes fill the open batch rides the slot that batch takes
 * anyway: with 90% GETs at -P 16 (most pipelines mixed) the rounds of the
 * few all-read ones cost 0.68-0.79x the throughput in memory
 * (bench/README.md "Reads"). A lone read, the latency-bound case, always
 * goes by the index. The bytes after the last complete command are not
 * looked at; a write among them that arrives later waits for the reads
 * before it (defer_op). Nor those past READS_AHEAD_MAX commands or bytes:
 * every pump that takes a read looked again, so a client that sent one
 * long pipeline of GETs (2.5 M, 50 MB, in 4,096-command pumps) cost work
 * quadratic in its length: 68 s of the loop, PING on another connection
 * waiting 637 ms (found by review). A write past the bound waits for the
 * reads before it (defer_op), as one that arrives later. */
#define READS_AHEAD_MAX_CMDS 256u
#define READS_AHEAD_MAX_BYTES ((size_t)64 << 10)
static bool reads_ahead(struct rabia_replica *r, const uint8_t *p, size_t len)
{
    struct resp_argv *pa = &r->peek_pa;
    bool reads = true, more = false;
    if (len > READS_AHEAD_MAX_BYTES) len = READS_AHEAD_MAX_BYTES; /* a command cut here counts as incomplete */
    uint32_t cmds = 0;
    for (size_t off = 0, used = 0; reads && off < len && cmds < READS_AHEAD_MAX_CMDS; off += used, cmds++) {
        int rc = resp_parse(p + off, len - off, &used, pa);
        if (rc == 0) break; /* the rest is not complete yet */
        if (rc < 0) {
            reads = false;
            break;
        }
        const struct rabia_kv_cmd_info *ci = rabia_kv_lookup(pa->argv[0], pa->argv_len[0]);
        reads = ci && (ci->flags & RABIA_KV_CMD_READONLY) && !(ci->flags & RABIA_KV_CMD_WRITE);
        more = true;
    }
    resp_argv_reset(pa);
    if (reads && more && batcher_open_count(node_batcher(r->node))) reads = false; /* a slot goes anyway */
    if (resp_argv_memory(pa) > (64u << 10)) { /* a huge command's arrays: not kept */
        resp_argv_free(pa);
        resp_argv_init(pa, RESP_MAX_BULK_LIMIT);
    }
    return reads;
}

/* A replicated command into the log: the next seq of the connection's
 * session, into the batch being filled. */
static void resp_submit(struct rabia_replica *r, uint32_t ci, const uint8_t *op, uint32_t len, uint32_t slot)
{
    struct conn *k = &r->conns[ci];
    RABIA_ASSERT(!k->fast_inflight);
    uint64_t seq = k->next_seq++;
    /* every earlier group was answered before this one began, so the
     * group's first seq is the lowest the connection still waits for */
    if (!k->inflight) k->group_first = seq;
    k->inflight++;
    k->open_batch = batcher_open_no(node_batcher(r->node));
    replica_enqueue(r, k->client_id, seq, k->group_first, op, len, ci, slot, NULL, NULL);
}

/* CLIENT REPLY (resp.h): whether the command just parsed is answered; a
 * SKIP's silence moves on to the next command. */
static bool reply_muted(struct resp_session *rs)
{
    bool mute = rs->reply_off || rs->reply_skip;
    rs->reply_skip = rs->reply_skip_next;
    rs->reply_skip_next = false;
    return mute;
}

/* Parse and dispatch as many commands as ordering allows. A connection's
 * replicated commands all go into the batch being filled; once that batch
 * was cut, further commands wait for its replies, so a pipeline applies in
 * order (a batch is applied atomically, in order). Reads the read index
 * answers (node_read) go when nothing of the connection is in the log:
 * they are answered in order among themselves, and a command after them
 * that goes through the log waits until they are answered (defer_op), so
 * a pipeline still runs in order. */
void replica_resp_pump(struct rabia_replica *r, uint32_t ci)
{
    struct conn *k = &r->conns[ci];
    size_t off = 0;
    RABIA_ASSERT(!r->in_pump);
    r->in_pump = true;
    struct rabia_buf op = r->pump_op; /* kept between pumps (its capacity) */
    int ahead = -1; /* reads_ahead for this pump: -1 not looked yet */
    bool partial = false; /* what is left of the input is not a whole command */
    if (k->blocked && k->block_retry) resubmit_blocked(r, ci);
    if (k->deferred && !k->fast_inflight && !k->closing) { /* the reads before it were answered */
        k->deferred = false;
        resp_submit(r, ci, k->defer_op.data, (uint32_t)k->defer_op.len, k->defer_slot);
    }
    while (off < k->in.len && !k->quit && !k->closing) {
        uint32_t logged = k->inflight - k->fast_inflight; /* requests of the connection in the log */
        /* as Redis: a blocked client's next commands wait; also while its
         * first attempt is in the log (two pipelined pops shared one
         * block_op and block_slot: the first was never answered) */
        if (k->blocked || k->block_wait) break;
        if (k->deferred) break; /* a command waits for the reads before it */
        if (k->au.hold_until_us) break; /* after a failed AUTH: read on once the delay is over (auth.c) */
        if (k->rs.barrier && k->inflight) break; /* WATCH: its versions first */
        if (logged && k->open_batch != batcher_open_no(node_batcher(r->node))) break; /* wait for replies */
        if (logged >= RABIA_RSM_WINDOW - 4) break; /* stay inside the session window */
        if (!slot_room(k)) break; /* RESP_MAX_PENDING replies wait: read on as they leave */
        size_t used = 0;
        k->pa.unauthenticated = k->au.user < 0; /* an AUTH earlier in this pump lifts it for what follows */
        int rc = resp_parse(k->in.data + off, k->in.len - off, &used, &k->pa);
        off += used;
        if (rc == 0) {
            partial = true;
            break;
        }
        uint32_t slot = k->q_head + k->q_len; /* its running position: what its waiter keeps */
        struct resp_slot *s = slot_next(k);
        if (rc < 0) { /* Redis replies with the protocol error, then closes */
            r->m->errors[ME_PROTOCOL]++;
            if (rc == -EPROTO) resp_parse_error_reply(&k->pa, &s->out);
            s->mute = reply_muted(&k->rs);
            slot_ready(k, s);
            k->q_len++;
            k->quit = true;
            break;
        }
        if (replica_auth_resp(r, ci, &s->out)) { /* AUTH, ACL WHOAMI, NOAUTH, NOPERM (auth.c) */
            k->q_len++;
            s->post = RESP_POST_NONE;
            s->r3 = R3_NONE;
            s->mute = reply_muted(&k->rs);
            slot_ready(k, s);
            continue;
        }
        rabia_buf_clear(&op);
        bool subscribed = k->rs.nsubs || k->rs.npsubs;
        int what = resp_handle(&k->rs, &k->pa, &s->out, &op);
        k->q_len++;
        s->mute = reply_muted(&k->rs);
        s->cmd = (uint16_t)metrics_cmd_index(k->pa.argv[0], k->pa.argv_len[0], what == RESP_REPLICATE, &s->mkind);
        s->post = what == RESP_REPLICATE ? k->rs.post : RESP_POST_NONE;
        s->r3 = what == RESP_REPLICATE ? k->rs.r3 : R3_NONE;
        if (s->r3 == R3_EXEC) /* out is unused until the result: it keeps the kinds */
            rabia_buf_append(&s->out, k->rs.exec_kinds.data, k->rs.exec_kinds.len);
        if (subscribed != (k->rs.nsubs || k->rs.npsubs)) {
            k->pubsub = !subscribed;
            if (subscribed) r->pubsub_conns--;
            else r->pubsub_conns++;
        }
        if (what == RESP_REPLICATE && s->post == RESP_POST_BLOCK) {
            RABIA_ASSERT(!k->block_wait && !k->blocked);
            k->block_wait = true;
            rabia_buf_clear(&k->block_op);
            rabia_buf_append(&k->block_op, op.data, op.len);
            k->block_retry = false;
            k->block_deadline_us = k->rs.block_timeout_ms ? rio_now_us() + k->rs.block_timeout_ms * 1000 : 0;
        }
        if (what == RESP_REPLICATE) {
            s->ready = false;
            struct node_to to = {.conn = ci, .gen = k->gen, .slot = slot, .t_us = k->in_us ? k->in_us : rio_turn_us()};
            if (s->post == RESP_POST_NONE && k->inflight == k->fast_inflight && r->cfg.read_index &&
                (ahead < 0 ? (ahead = reads_ahead(r, k->in.data + off, k->in.len - off)) : ahead) &&
                node_read(r->node, k->client_id, 0, 0, op.data, (uint32_t)op.len, &to)) {
                k->inflight++;
                k->fast_inflight++;
            } else if (k->fast_inflight) { /* behind reads not answered yet: waits for them */
                rabia_buf_clear(&k->defer_op);
                if (rabia_buf_append(&k->defer_op, op.data, op.len)) {
                    resp_put_error(&s->out, "ERR out of memory");
                    slot_ready(k, s);
                } else {
                    k->deferred = true;
                    k->defer_slot = slot;
                    r->held_behind_reads++;
                }
            } else {
                resp_submit(r, ci, op.data, (uint32_t)op.len, slot);
            }
        } else if (what == RESP_INFO) {
            resp_info(r, &s->out, k->pa.argv + 1, k->pa.argv_len + 1, k->pa.argc - 1, k->rs.proto == 3);
            slot_ready(k, s);
        } else if (what == RESP_CLOSE) {
            slot_ready(k, s);
            replica_conn_close(r, k->c);
            break;
        } else if (what == RESP_QUIT) {
            slot_ready(k, s);
            k->quit = true;
        } else {
            slot_ready(k, s);
        }
        if (what != RESP_REPLICATE) metrics_local_done(r, s->cmd, k->in_us, &s->out, 0);
        /* a pipeline of large local replies (GETs of big values) leaves as
         * it goes, under the output limit, instead of gathering in the
         * slots until the pump ends; behind a reply not ready yet they stay,
         * counted for maxmemory-clients (resp_flush ends with
         * replica_client_grew) */
        if (k->slot_bytes > RESP_PUMP_FLUSH_BYTES) resp_flush(r, k);
    }
    r->pump_op = op;
    r->in_pump = false;
    /* after the client's EOF nothing more comes: once every whole command
     * it sent is parsed, close after their replies (resp_flush) */
    if (k->eof && (partial || off >= k->in.len)) k->quit = true;
    if (off) { /* the parser keeps offsets from the start of what is left */
        memmove(k->in.data, k->in.data + off, k->in.len - off);
        k->in.len -= off;
    }
    if (!k->in.len && k->in.cap > RESP_IN_KEEP) rabia_buf_free(&k->in); /* a burst's buffer is not kept */
    resp_flush(r, k);
}

/* The client shut its sending side (shutdown(SHUT_WR), or a close whose
 * FIN came first): as Redis, the commands it sent are answered, then the
 * connection closes; they were dropped unanswered (a SET applied, its +OK
 * lost; found by review). A parked blocking pop closes it at once, as
 * Redis frees a blocked client at EOF. true: kept for the replies (the
 * loop's on_eof). */
bool replica_resp_eof(struct rabia_replica *r, uint32_t ci)
{
    struct conn *k = &r->conns[ci];
    if (k->closing || k->blocked) return false;
    k->eof = true;
    replica_resp_pump(r, ci); /* sets quit once the input is parsed; resp_flush closes after the replies */
    return true;
}

/* ------------------------------------------------------------------ */
/* RESP sessions: one per connection, closed through the log */

/* A RESP connection's requests cannot be retried on another connection, so
 * its session is useless once the connection is gone: close it through the
 * log (every replica forgets it at the same slot). Without this every
 * short-lived connection left a session behind, with up to 64 cached
 * replies: 1.6 GB per replica after 200,000 GETs of 4 KB values. */
void replica_resp_close_session(struct rabia_replica *r, uint64_t cid)
{
    /* if the batcher is full it is lost (counted): bounded all the same,
     * connection-scoped sessions are evicted first */
    replica_enqueue(r, cid, 0, 0, NULL, 0, MAX_CONNS, 0, NULL, NULL);
}

void replica_resp_start_drain(struct rabia_replica *r, uint32_t ci)
{
    struct conn *k = &r->conns[ci];
    if (k->want_pump) {
        k->want_pump = false;
        r->n_want_pump--;
    }
    for (uint32_t j = 0; j < k->q_cap; j++) rabia_buf_free(&k->q[j].out);
    replica_resp_free_spares(k);
    free(k->q);
    k->q = NULL;
    k->q_cap = 0;
    replica_resp_forget(r, k);
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
    replica_resp_close_session(r, k->client_id);
    replica_conn_release(r, ci);
}

/* ------------------------------------------------------------------ */
/* The KV store's events, blocked pops, the expiry sweep */

/* A RESP connection going away stops counting as blocked or subscribed. */
void replica_resp_forget(struct rabia_replica *r, struct conn *k)
{
    if (k->blocked) {
        k->blocked = false;
        r->n_blocked--;
    }
    k->block_wait = false;
    if (k->pubsub) {
        k->pubsub = false;
        r->pubsub_conns--;
    }
    rabia_buf_free(&k->block_op);
    rabia_buf_free(&k->defer_op); /* never submitted: nobody waits for it */
    k->deferred = false;
}

/* Called while a slot is applied: only queue work (messages into reply
 * queues, flags for the pump), never submit. */
void replica_sm_event(void *ctx, const struct rabia_sm_event *ev)
{
    struct rabia_replica *r = ctx;
    if (ev->kind == RABIA_SM_EV_PUBLISH) {
        int64_t count = 0;
        struct conn *k;
        for (FOR_LIVE(r, k)) {
            if (!r->pubsub_conns) break;
            if (k->kind != CK_RESP || k->closing || !k->pubsub) continue;
            /* A subscriber that does not read: as Redis's client-output-buffer-limit
             * pubsub (32 MB). Messages queued behind a reply that is not ready (a
             * parked blocking pop, RESP3) count too: they never reached the
             * connection's output limit, and one such subscriber held 865 MB. */
            size_t held = k->push_bytes + rio_conn_pending(k->c);
            if (!slot_room(k) || held > RESP_PUBSUB_OUT_MAX) {
                replica_log(r, RABIA_LOG_WARN,
                            "subscriber %s does not read its messages (%zu bytes and %u replies waiting; at most "
                            "%u bytes): closing it",
                            k->rs.addr, held, k->q_len, RESP_PUBSUB_OUT_MAX);
                replica_conn_close(r, k->c);
                continue;
            }
            struct resp_slot *s = slot_next(k);
            int n = resp_pubsub_deliver(&k->rs, ev->a, ev->a_len, ev->b, ev->b_len, &s->out);
            if (n <= 0) continue;
            s->push = true;
            s->mute = k->rs.reply_off; /* CLIENT REPLY OFF drops messages too, as Redis */
            k->push_bytes += s->out.len;
            slot_ready(k, s);
            s->post = RESP_POST_NONE;
            s->r3 = R3_NONE;
            k->q_len++;
            count += n;
            resp_flush(r, k);
        }
        r->publish_count = count;
    } else if (ev->kind == RABIA_SM_EV_FEATURES) {
        if (ev->db >= 1 && ev->db <= r->cfg.n) { /* FEATURES: that incarnation of replica db supports u2 */
            r->feature_heard[ev->db - 1].incarnation = ev->u1;
            r->feature_heard[ev->db - 1].level = (uint8_t)(ev->u2 > UINT8_MAX ? UINT8_MAX : ev->u2);
        }
    } else if (ev->kind == RABIA_SM_EV_KEY_READY) {
        struct conn *k;
        for (FOR_LIVE(r, k)) {
            if (!r->n_blocked) break;
            if (k->kind != CK_RESP || !k->blocked || k->block_retry) continue;
            if (!resp_block_waits_on(k->block_op.data, k->block_op.len, ev->db, ev->a, ev->a_len)) continue;
            k->block_retry = true;
            if (!k->want_pump) {
                k->want_pump = true;
                r->n_want_pump++;
            }
        }
    }
}

/* A parked blocking pop answered without popping: its timeout's nil, or
 * (CLIENT UNBLOCK ... ERROR) an error; the connection's next commands go. */
static void blocked_answer(struct rabia_replica *r, struct conn *k, const char *error)
{
    struct resp_slot *s = resp_slot_at(k, k->block_slot);
    rabia_buf_clear(&s->out);
    /* a timed-out blocking pop answers a nil array, BLMOVE's too (Redis
     * 7.0: only inside MULTI does BLMOVE answer a nil bulk); RESP3 a null */
    if (error) rabia_buf_append(&s->out, error, strlen(error));
    else if (s->r3) rabia_buf_append(&s->out, "_\r\n", 3);
    else rabia_buf_append(&s->out, "*-1\r\n", 5);
    slot_ready(k, s);
    k->blocked = false;
    k->block_wait = false;
    r->n_blocked--;
    resp_flush(r, k);
    if (k->in.len && !k->want_pump) {
        k->want_pump = true;
        r->n_want_pump++;
    }
}

/* Blocked pops past their deadline answer nil, as Redis's timeout. */
void replica_resp_timeouts(struct rabia_replica *r, uint64_t now)
{
    struct conn *k;
    for (FOR_LIVE(r, k)) {
        if (!r->n_blocked) break;
        if (k->kind != CK_RESP || !k->blocked || k->block_retry || !k->block_deadline_us ||
            now < k->block_deadline_us)
            continue;
        blocked_answer(r, k, NULL);
    }
}

/* A SWEEP's answer: sweeping again soon only pays while it reclaims keys.
 * Keys that expire in a while (a long TTL) would otherwise cost a slot
 * every 250 ms from every replica, for nothing. */
static void sweep_done(void *ctx, int status, const uint8_t *res, size_t len)
{
    struct rabia_replica *r = ctx;
    bool idle = status == RABIA_REPLY_OK && len == 4 && memcmp(res, ":0\r\n", 4) == 0;
    r->sweep_period_us = idle ? (r->sweep_period_us >= 2500000 ? 5000000 : r->sweep_period_us * 2) : 250000;
    r->sweep_inflight = false;
}

/* Keys with an expiry are reclaimed by SWEEP operations through the log
 * (kv/server.c) while there are any; reads of an expired key never need
 * them (lazy expiry). One replica sweeps: the lowest-numbered one among
 * those this replica reaches (itself included), so a partition at worst
 * makes two sweep; every 250 ms while sweeps reclaim keys, backing off to
 * 5 s while they find nothing. */
void replica_kv_sweep(struct rabia_replica *r, uint64_t now)
{
    if (strcmp(r->cfg.state_machine, "kv") != 0) return;
    if (r->sweep_inflight && now - r->sweep_us < 10000000) return; /* an answer can be lost (a waiter dropped) */
    if (!r->sweep_period_us) r->sweep_period_us = 250000;
    if (now - r->sweep_us < r->sweep_period_us) return;
    r->sweep_us = now;
    for (uint8_t p = 0; p < r->self; p++)
        if (r->peers[p].out_ready) return; /* a lower-numbered replica sweeps */
    if (rabia_core_recovering(r->core) || !rabia_kv_expiring(rabia_rsm_sm(r->rsm))) return;
    static const char *const argv[] = {"SWEEP", "1000"};
    struct rabia_buf b = {0};
    if (rabia_kv_encode_argv(&b, 2, argv, NULL) == 0) {
        uint64_t seq = ++r->sweep_seq;
        r->sweep_inflight = true;
        /* a connection-scoped session that never retries: ack = seq */
        replica_enqueue(r, r->sweep_cid, seq, seq, b.data, (uint32_t)b.len, MAX_CONNS, 0, sweep_done, r);
    }
    rabia_buf_free(&b);
}

static void features_done(void *ctx, int status, const uint8_t *res, size_t len)
{
    (void)status, (void)res, (void)len;
    struct rabia_replica *r = ctx;
    r->feature_inflight = false;
}

static void features_submit(struct rabia_replica *r, int argc, const char *const *argv, uint64_t now)
{
    struct rabia_buf b = {0};
    if (rabia_kv_encode_argv(&b, argc, argv, NULL) == 0) {
        uint64_t seq = ++r->feature_seq;
        r->feature_inflight = true;
        r->feature_us = now;
        /* a connection-scoped session that never retries: ack = seq */
        replica_enqueue(r, r->feature_cid, seq, seq, b.data, (uint32_t)b.len, MAX_CONNS, 0, features_done, r);
    }
    rabia_buf_free(&b);
}

/* KV feature levels (kv/features.c, kv/README.md "Feature levels"). While
 * the agreed level is below what this replica supports, it submits
 * FEATURES (its id, incarnation and level: at once, then backing off from
 * 1 s to 30 s, so an upgrade that stops half way costs a slot per replica
 * per half minute), and every replica hears every FEATURES applied. A
 * replica that heard every member's current incarnation (its own; the
 * peers' from their HELLO) support level L above the agreed one proposes
 * FEATURELEVEL L. A member restarted with another build is heard anew
 * before it counts (its HELLO carries a new incarnation), and a member
 * that is not connected now does not count. */
void replica_kv_features(struct rabia_replica *r, uint64_t now)
{
    if (strcmp(r->cfg.state_machine, "kv") != 0) return;
    unsigned agreed = rabia_kv_feature_level(rabia_rsm_sm(r->rsm));
    RABIA_ASSERT(agreed <= RABIA_KV_FEATURE_LEVEL); /* the apply stops the replica first */
    __atomic_store_n(&r->feature_level, (uint8_t)agreed, __ATOMIC_RELAXED);
    if (agreed >= r->feature_offer && r->feature_seq && !r->feature_inflight && !r->feature_closed) {
        /* done for this incarnation (the agreed level never drops): its
         * session goes, through the log, as a RESP connection's does */
        replica_resp_close_session(r, r->feature_cid);
        r->feature_closed = true;
    }
    if (agreed >= r->feature_offer || rabia_core_recovering(r->core)) return;
    if (r->feature_inflight && now - r->feature_us < 10000000) return; /* an answer can be lost (a waiter dropped) */
    unsigned level = r->feature_offer;
    bool all = true;
    for (uint8_t p = 0; p < r->cfg.n && all; p++) {
        /* a peer that is down now may be coming back with another build
         * (a rollback, a hold): only connected members count */
        bool up = p == r->self || (r->hello.peer[p].conn != HELLO_NO_CONN && r->peers[p].out_ready);
        uint64_t inc = p == r->self ? r->incarnation : r->hello.peer[p].incarnation;
        all = up && inc && r->feature_heard[p].incarnation == inc;
        if (all && r->feature_heard[p].level < level) level = r->feature_heard[p].level;
    }
    char a1[24], a2[24], a3[24];
    if (all && level > agreed) {
        snprintf(a1, sizeof a1, "%u", level);
        const char *argv[] = {"FEATURELEVEL", a1};
        replica_log(r, RABIA_LOG_INFO,
                    "every replica runs a build of feature level %u or later: proposing it (the cluster was at %u)",
                    level, agreed);
        features_submit(r, 2, argv, now);
        return;
    }
    if (!r->feature_period_us) r->feature_period_us = 1000000;
    if (r->feature_us && now - r->feature_us < r->feature_period_us) return;
    if (r->feature_us) r->feature_period_us = r->feature_period_us >= 15000000 ? 30000000 : r->feature_period_us * 2;
    snprintf(a1, sizeof a1, "%u", r->self + 1u);
    snprintf(a2, sizeof a2, "%" PRIu64, r->incarnation);
    snprintf(a3, sizeof a3, "%u", (unsigned)r->feature_offer);
    const char *argv[] = {"FEATURES", a1, a2, a3};
    features_submit(r, 4, argv, now);
}

/* ------------------------------------------------------------------ */
/* maxmemory-clients: one budget for every client connection together */

/* What a connection's memory moves with from one request to the next
 * (unparsed input, completed replies not handed to io/ yet, io/'s buffers):
 * O(1), for replica_client_grew's running total. */
static size_t client_memory_fast(const struct conn *k)
{
    return k->in.cap + k->slot_bytes + k->defer_op.cap + (k->c ? rio_conn_memory(k->c) : 0);
}

/* Heap bytes a client connection holds now: the above, and the ring of
 * reply slots, spare reply buffers, its session (WATCHed keys,
 * subscriptions, a MULTI's queue) and the parser's arrays. O(1) but for
 * the spares (at most RESP_SPARE_BUFS). */
size_t replica_client_memory(const struct conn *k, size_t *input, size_t *output)
{
    RABIA_ASSERT(k->kind == CK_RESP || k->kind == CK_RESP_DRAIN || k->kind == CK_CLIENT);
    size_t m = sizeof *k + k->block_op.cap + client_memory_fast(k);
    if (k->q) {
        m += (size_t)k->q_cap * sizeof *k->q + resp_session_memory(&k->rs) + resp_argv_memory(&k->pa);
        for (uint32_t i = 0; i < k->n_spare; i++) m += k->spare[i].cap;
    }
    if (input) *input = k->in.cap;
    if (output) *output = k->slot_bytes + (k->c ? rio_conn_pending(k->c) : 0);
    return m;
}

static void human_bytes(char *b, size_t cap, uint64_t x)
{
    if (x >= (1ull << 30)) snprintf(b, cap, "%.1f GiB", (double)x / (double)(1ull << 30));
    else if (x >= (1u << 20)) snprintf(b, cap, "%.1f MiB", (double)x / (double)(1u << 20));
    else if (x >= 1024) snprintf(b, cap, "%.1f KiB", (double)x / 1024.0);
    else snprintf(b, cap, "%" PRIu64 " B", x);
}

/* A connection's buffers may have grown (input appended, a reply queued):
 * its change goes into the running total, and a total over the budget
 * checks at once rather than at the next 100 ms tick: one pump of
 * pipelined GETs queues up to 64 MiB of replies within a turn. A full
 * check at most once a millisecond, so that a total hovering at the
 * budget does not cost O(connections) per request. */
void replica_client_grew(struct rabia_replica *r, struct conn *k)
{
    if (!r->maxmem_clients || k->closing) return;
    size_t m = client_memory_fast(k);
    if (m >= k->mem_seen) r->client_memory += m - k->mem_seen;
    else r->client_memory -= r->client_memory > k->mem_seen - m ? k->mem_seen - m : r->client_memory;
    k->mem_seen = m;
    if (r->client_memory <= r->maxmem_clients) return;
    uint64_t now = rio_turn_us();
    if (now - r->clients_mem_forced_us >= 1000) {
        r->clients_mem_forced_us = now;
        replica_clients_memory_check(r);
    }
}

/* Sums every client connection's memory into r->client_memory and, over
 * r->maxmem_clients, closes the largest until the rest fit, as Redis's
 * maxmemory-clients (which evicts the clients using the most memory
 * first). Runs every 100 ms, every 10 ms once the total passed half the
 * budget (replica.c's loop), and when replica_client_grew's running total
 * passes the budget. Connections already closing are not counted: their
 * memory goes within a loop turn or two. O(connections). */
void replica_clients_memory_check(struct rabia_replica *r)
{
    uint64_t total = 0;
    struct conn *k;
    for (FOR_LIVE(r, k)) {
        if (k->kind == CK_RESP && !k->closing) { /* what a burst grew, back */
            idle_trim(k);
            if (!k->q_len && k->c) rio_conn_trim_idle(k->c, 4096);
        }
        if ((k->kind == CK_RESP || k->kind == CK_CLIENT) && !k->closing) {
            total += replica_client_memory(k, NULL, NULL);
            k->mem_seen = client_memory_fast(k);
        }
    }
    r->client_memory = total;
    /* at most one pass per eviction, and one eviction per connection */
    for (uint32_t round = 0; r->maxmem_clients && total > r->maxmem_clients && round < MAX_CONNS; round++) {
        struct conn *victim = NULL;
        size_t most = 0;
        for (FOR_LIVE(r, k)) {
            if ((k->kind != CK_RESP && k->kind != CK_CLIENT) || k->closing) continue; /* closed: freed soon */
            if (k->kind == CK_RESP && k->rs.no_evict) continue; /* CLIENT NO-EVICT ON: counted, never closed */
            size_t m = replica_client_memory(k, NULL, NULL);
            if (m > most) {
                most = m;
                victim = k;
            }
        }
        if (!victim) break; /* only closing ones left: their memory goes as the loop frees them */
        k = victim;
        size_t in = 0, out = 0;
        replica_client_memory(k, &in, &out);
        r->clients_evicted++;
        if (replica_log_budget(r, &r->evict_log, "clients closed for maxmemory-clients")) {
            char who[64] = "?", t[32], lim[32], held[32], hi[32], ho[32];
            if (k->kind == CK_RESP) snprintf(who, sizeof who, "%s", k->rs.addr);
            else rio_conn_peer(k->c, who, sizeof who);
            human_bytes(t, sizeof t, total);
            human_bytes(lim, sizeof lim, r->maxmem_clients);
            human_bytes(held, sizeof held, most);
            human_bytes(hi, sizeof hi, in);
            human_bytes(ho, sizeof ho, out);
            replica_log(r, RABIA_LOG_WARN,
                        "closing client %s (user %s): client connections hold %s together, over maxmemory-clients "
                        "%s, and it holds the most, %s (input %s, replies and output %s). Raise maxmemory-clients, "
                        "or have clients read their replies and send smaller pipelines and values",
                        who, k->user[0] ? k->user : "default", t, lim, held, hi, ho);
        }
        replica_conn_close(r, k->c);
        total = total > most ? total - most : 0;
    }
}

/* ------------------------------------------------------------------ */
/* CLIENT INFO / CLIENT LIST (io/resp.h's struct resp_clients) */

static void client_stats(void *ctx, const struct resp_session *s, struct resp_client_stats *out)
{
    struct rabia_replica *r = ctx;
    const struct conn *k = (const struct conn *)((const char *)s - offsetof(struct conn, rs));
    RABIA_ASSERT(k >= r->conns && k < r->conns + MAX_CONNS && k->kind == CK_RESP);
    uint64_t now = rio_turn_us();
    out->age_s = k->created_us && now > k->created_us ? (now - k->created_us) / 1000000 : 0;
    uint64_t last = k->in_us ? k->in_us : k->created_us;
    out->idle_s = last && now > last ? (now - last) / 1000000 : 0;
    out->qbuf = k->in.len;
    out->qbuf_free = k->in.cap - k->in.len;
    out->argv_mem = resp_argv_memory(&k->pa);
    out->omem = k->slot_bytes + (k->c ? rio_conn_pending(k->c) : 0);
    out->oll = k->q_len;
    out->tot_mem = replica_client_memory(k, NULL, NULL);
    snprintf(out->flags, sizeof out->flags, "%s", k->blocked ? "b" : "");
}

static void each_client(void *ctx, void (*fn)(void *arg, const struct resp_session *s), void *arg)
{
    struct rabia_replica *r = ctx;
    struct conn *k;
    for (FOR_LIVE(r, k))
        if (k->kind == CK_RESP && !k->closing) fn(arg, &k->rs);
}

/* CLIENT KILL: closed as if the client had gone (its requests in flight
 * are answered to nobody and its session closed through the log); the live
 * list keeps it until io/ has closed it, so each_client's walk goes on. */
static void kill_client(void *ctx, const struct resp_session *s)
{
    struct rabia_replica *r = ctx;
    struct conn *k = (struct conn *)((const char *)s - offsetof(struct conn, rs));
    RABIA_ASSERT(k >= r->conns && k < r->conns + MAX_CONNS && k->kind == CK_RESP);
    r->clients_killed++;
    replica_conn_close(r, k->c);
}

/* CLIENT UNBLOCK: a pop parked for its key answers now. One in the log
 * (its first try, or a retry after a key it waits on was written) is left
 * alone: that try pops or parks it (0, as Redis answers for a client that
 * is not blocked). */
static bool unblock_client(void *ctx, const struct resp_session *s, bool error)
{
    struct rabia_replica *r = ctx;
    struct conn *k = (struct conn *)((const char *)s - offsetof(struct conn, rs));
    RABIA_ASSERT(k >= r->conns && k < r->conns + MAX_CONNS && k->kind == CK_RESP);
    if (!k->blocked || k->block_retry || k->closing)
        return false;
    blocked_answer(r, k, error ? "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n" : NULL);
    return true;
}

static bool user_exists(void *ctx, const uint8_t *name, size_t n) { return replica_auth_user_exists(ctx, name, n); }

void replica_resp_clients_init(struct rabia_replica *r)
{
    r->resp_clients = (struct resp_clients){
        .ctx = r, .stats = client_stats, .each = each_client, .kill = kill_client, .unblock = unblock_client,
        .user_exists = user_exists,
        .maxclients = MAX_CONNS - CONNS_KEPT_FOR_PEERS}; /* as INFO's maxclients */
}
