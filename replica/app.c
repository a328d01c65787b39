/* The embedding API's session (rabia_replica_submit, rabia_replica_call):
 * requests from other threads, through a queue, in one session of the log. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "internal.h"
#include "kv.h"

/* ------------------------------------------------------------------ */
/* the application's session */

/* The application's session: opened by an empty request (seq 1) before
 * anything else, so that no retry can ever apply twice (rsm.h); its ack is
 * the lowest seq not yet answered, and at most APP_WINDOW requests are in
 * flight, so that a later batch decided before an earlier one never makes
 * the earlier one's requests expire. */
void replica_app_new_session(struct rabia_replica *r)
{
    uint64_t seed[3] = {r->incarnation, r->cluster_id, r->app_lives++};
    /* the OPEN's nonce; the session's id comes back in its reply (rsm.h) */
    r->app_client_id = (XXH64(seed, sizeof seed, 0xA99u + r->self) | 1) & RABIA_SESSION_NONCE_MASK;
    r->app_seq = 0;
    r->app_low = 1;
    r->app_done = 0;
    r->app_open = 0;
}

void replica_app_answered(struct rabia_replica *r, uint64_t seq, int status, const uint8_t *res, size_t len)
{
    if (seq == 1 && r->app_open == 1) {
        if (status != RABIA_REPLY_OK || len != 8) { /* refused (BUSY): open again, in a fresh session */
            replica_app_new_session(r);
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
        replica_log(r, RABIA_LOG_WARN, "the application's session was evicted (raise max-sessions): opening a new one");
        replica_app_new_session(r);
        return;
    }
    r->app_done |= 1ull << (seq - r->app_low);
    while (r->app_done & 1) {
        r->app_done >>= 1;
        r->app_low++;
    }
}

void replica_drain_app(struct rabia_replica *r)
{
    if (r->app_open == 0) {
        pthread_mutex_lock(&r->app_mu);
        bool any = r->app_len > 0;
        pthread_mutex_unlock(&r->app_mu);
        if (!any) return; /* no session until the application needs one */
        r->app_open = 1;
        r->app_seq = 1;
        replica_enqueue(r, r->app_client_id, 1, 1, NULL, 0, MAX_CONNS, 0, NULL, NULL);
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
        op = r->app_q[r->app_head]; /* only this thread takes from the queue: it stays while we look */
        pthread_mutex_unlock(&r->app_mu);
        uint64_t seq = r->app_seq + 1;
        /* Reads by the read index, in order with the rest as a native
         * connection's (clients.c native_request): a read goes by the index
         * when every request of the session in flight is such a read, and
         * a request for the log behind such reads stays in the queue until
         * they are answered. */
        uint64_t in_flight = r->app_seq + 1 - r->app_low - (uint64_t)__builtin_popcountll(r->app_done);
        bool indexed = false;
        if (r->cfg.read_index && r->app_reads == in_flight) {
            struct node_to to = {.conn = MAX_CONNS, .fn = op.fn, .ctx = op.ctx, .t_us = rio_turn_us()};
            r->app_reads++; /* first: an answer given at once finds it counted */
            indexed = node_read(r->node, r->app_client_id, seq, r->app_low, op.op, (uint32_t)op.len, &to);
            if (!indexed) r->app_reads--;
        }
        if (!indexed && r->app_reads) return; /* behind reads not answered yet: the next turn looks again */
        /* With window > 1 two batches of this replica can be decided in
         * either order (a slot that ends null proposes its batch again
         * after a later one): a request joins the application's requests
         * in the log only in the batch they wait in, which is applied
         * whole and in order; once it was cut, the rest waits for their
         * answers, as a RESP pipeline does (clients.c replica_resp_pump).
         * Without it "in the order submitted" failed: window 8, policy
         * classes, an increment answered 713 after the one submitted
         * before it was answered 2744. Window 1 proposes this replica's
         * batches one at a time, in order. */
        if (!indexed && in_flight && replica_behind_batch(r, r->app_batch, op.len))
            return; /* the next turn after their answers looks again */
        pthread_mutex_lock(&r->app_mu);
        r->app_head = (r->app_head + 1) % APP_QUEUE;
        r->app_len--;
        pthread_mutex_unlock(&r->app_mu);
        r->app_seq = seq;
        if (!indexed) r->app_batch = batcher_open_no(node_batcher(r->node)); /* before: a request that fills the batch cuts it */
        if (!indexed)
            replica_enqueue(r, r->app_client_id, seq, r->app_low, op.op, (uint32_t)op.len, MAX_CONNS, 0, op.fn,
                            op.ctx);
        free(op.op);
    }
}

/* The replica stops for good (the end of rabia_replica_run, or destroy of
 * one never run): later submissions are refused, and every one taken is
 * answered -ESHUTDOWN, those still queued first (in order), then those the
 * node holds; without it their done never ran and rabia_replica_call
 * waited out its whole timeout. On the replica's thread, or the
 * destroying one once no run is left. Idempotent. */
void replica_app_shutdown(struct rabia_replica *r)
{
    pthread_mutex_lock(&r->app_mu);
    r->app_closed = true;
    pthread_mutex_unlock(&r->app_mu);
    /* closed: nothing is added, and only this thread takes */
    while (r->app_len) {
        struct app_op op = r->app_q[r->app_head];
        pthread_mutex_lock(&r->app_mu);
        r->app_head = (r->app_head + 1) % APP_QUEUE;
        r->app_len--;
        pthread_mutex_unlock(&r->app_mu);
        free(op.op);
        if (op.fn) op.fn(op.ctx, -ESHUTDOWN, NULL, 0);
    }
    if (r->node) node_abandon(r->node, MAX_CONNS, -ESHUTDOWN);
}

int rabia_replica_submit(struct rabia_replica *r, const void *op, size_t len, rabia_replica_done_fn done, void *ctx)
{
    if (len == 0 || len > UINT32_MAX) return -EINVAL; /* an empty op opens a session (rsm.h) */
    if (!op) return -EINVAL;                           /* was a crash in the memcpy below */
    /* SWEEP, FEATURES, FEATURELEVEL are the replicas' own (kv/README.md "Feature levels") */
    if (!strcmp(r->cfg.state_machine, "kv") && rabia_kv_op_internal(op, len)) return -EPERM;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return -ENOMEM;
    memcpy(copy, op, len);
    pthread_mutex_lock(&r->app_mu);
    if (r->app_closed || r->app_len >= APP_QUEUE) {
        int rc = r->app_closed ? -ESHUTDOWN : -ENOBUFS;
        pthread_mutex_unlock(&r->app_mu);
        free(copy);
        return rc;
    }
    r->app_q[(r->app_head + r->app_len) % APP_QUEUE] = (struct app_op){copy, len, done, ctx};
    r->app_len++;
    pthread_mutex_unlock(&r->app_mu);
    replica_wake(r);
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
    /* applied, but its result could not be kept: the caller must not read
     * an empty result as the answer (state_machine.h's -ENOMEM) */
    if (len && rabia_buf_append(&w->res, res, len)) w->status = -ENOMEM;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int rabia_replica_call(struct rabia_replica *r, const void *op, size_t len, struct rabia_buf *result, int timeout_ms)
{
    /* emptied first (its memory kept: op may point into it): a call that
     * failed (-ETIMEDOUT, -ENOBUFS, ...) left the previous call's result
     * there, which a caller reusing the buffer read as this one's answer */
    if (result) rabia_buf_clear(result);
    /* a negative one made a deadline with tv_nsec < 0: the wait below
     * failed EINVAL at once, spinning with w->mu held, and the replica's
     * thread blocked for ever in call_done */
    if (timeout_ms < 0) return -EINVAL;
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
    if (result) { /* handed over, not copied: a second copy could fail too */
        rabia_buf_free(result);
        *result = w->res;
        w->res = (struct rabia_buf){0};
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    rabia_buf_free(&w->res);
    free(w);
    return rc;
}
