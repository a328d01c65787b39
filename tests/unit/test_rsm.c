/* The apply layer: exactly-once sessions, snapshots, determinism. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "check.h"
#include "codec.h"
#include "counter.h"
#include "kv.h"
#include "rsm.h"

static uint64_t rng_state;
static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Replies as the callback saw them. */
struct got {
    uint64_t client, seq;
    int status;
    uint8_t body[64];
    size_t len;
};
struct log {
    struct got g[256];
    int n;
    struct rabia_buf all; /* every reply, serialised, for comparisons */
    long status_count[8];
};

static void on_reply(void *ctx, uint64_t client, uint64_t seq, int status, const uint8_t *p,
                     size_t len)
{
    struct log *l = ctx;
    CHECK(len == 0 || p != NULL);
    if (l->n < 256) {
        struct got *g = &l->g[l->n];
        g->client = client;
        g->seq = seq;
        g->status = status;
        g->len = len;
        if (len)
            memcpy(g->body, p, len < sizeof g->body ? len : sizeof g->body);
    }
    l->n++;
    if (status >= 0 && status < 8)
        l->status_count[status]++;
    rabia_buf_put_u64(&l->all, client);
    rabia_buf_put_u64(&l->all, seq);
    rabia_buf_put_u8(&l->all, (uint8_t)status);
    rabia_buf_put_u64(&l->all, len);
    rabia_buf_append(&l->all, p, len);
}

static void log_reset(struct log *l)
{
    l->n = 0;
}

/* A counter op for a request. */
static struct rabia_buf opbuf[3];
static const uint8_t *cop(enum rabia_counter_op op, uint32_t *len)
{
    struct rabia_buf *b = &opbuf[op - 1];
    if (!b->len)
        rabia_counter_encode(b, op, 0);
    *len = (uint32_t)b->len;
    return b->data;
}

static void add(struct rabia_buf *body, uint64_t client, uint64_t seq, uint64_t ack,
                enum rabia_counter_op op)
{
    struct rabia_req r = {client, seq, ack, NULL, 0};
    r.op = cop(op, &r.op_len);
    CHECK_EQ(rabia_batch_append(body, &r), 0);
}

static int64_t value_of(const struct got *g)
{
    int64_t v = -999;
    CHECK_EQ(rabia_counter_decode_result(g->body, g->len, &v, NULL, NULL), 0);
    return v;
}

/* Apply the body at the next slot, logging replies into l. */
static void apply(struct rabia_rsm *r, struct rabia_buf *body, struct log *l)
{
    log_reset(l);
    CHECK_EQ(rabia_rsm_apply(r, rabia_rsm_applied(r) + 1, body->data, body->len, on_reply, l), 0);
    rabia_batch_init(body);
}

static const struct rabia_rsm_config cfg = {.max_sessions = 16, .max_reply_bytes = 64};

/* Sessions are named by the log (core/rsm.h): the k-th OPEN an apply layer
 * applies opens the session ID(k). open_clients applies n OPENs in one slot
 * and checks that each was answered with its id. */
#define ID(k) (RABIA_SESSION_ASSIGNED | (uint64_t)(k))
#define CONN(k) (RABIA_SESSION_CONN_SCOPED | (k)) /* a connection-scoped client (RESP) */
static void open_clients(struct rabia_rsm *r, int n, struct log *l)
{
    struct rabia_buf body = {0};
    rabia_batch_init(&body);
    for (int k = 0; k < n; k++) {
        struct rabia_req q = {0x100 + (uint64_t)k, 1, 1, NULL, 0};
        CHECK_EQ(rabia_batch_append(&body, &q), 0);
    }
    log_reset(l);
    CHECK_EQ(rabia_rsm_apply(r, rabia_rsm_applied(r) + 1, body.data, body.len, on_reply, l), 0);
    CHECK_EQ(l->n, n);
    for (int k = 0; k < n && k < 256; k++)
        CHECK(l->g[k].status == RABIA_REPLY_OK && l->g[k].len == 8);
    rabia_buf_free(&body);
}

static void test_duplicates(void)
{
    struct rabia_rsm *r = rabia_rsm_create(&rabia_sm_counter, &cfg);
    struct rabia_buf body = {0};
    struct log l = {0};
    open_clients(r, 1, &l);
    const uint64_t A = ID(1);
    rabia_batch_init(&body);
    add(&body, A, 2, 2, RABIA_COUNTER_INC);
    add(&body, A, 3, 2, RABIA_COUNTER_INC);
    add(&body, A, 2, 2, RABIA_COUNTER_INC); /* a retry in the same batch */
    apply(r, &body, &l);
    CHECK_EQ(l.n, 3);
    CHECK(l.g[0].client == A && l.g[0].seq == 2 && l.g[0].status == RABIA_REPLY_OK);
    CHECK_EQ(value_of(&l.g[0]), 1);
    CHECK_EQ(value_of(&l.g[1]), 2);
    CHECK(l.g[2].seq == 2 && l.g[2].status == RABIA_REPLY_OK);
    CHECK_EQ(value_of(&l.g[2]), 1); /* the cached reply, not a new apply */
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(r)), 2);
    /* Retries in a later slot. */
    add(&body, A, 3, 2, RABIA_COUNTER_INC);
    add(&body, A, 2, 2, RABIA_COUNTER_INC);
    apply(r, &body, &l);
    CHECK_EQ(l.n, 2);
    CHECK_EQ(value_of(&l.g[0]), 2);
    CHECK_EQ(value_of(&l.g[1]), 1);
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(r)), 2);
    CHECK_EQ(rabia_rsm_applied(r), 3);
    /* lookup */
    int st;
    const uint8_t *p;
    size_t n;
    CHECK_EQ(rabia_rsm_lookup(r, A, 3, &st, &p, &n), 1);
    CHECK_EQ(st, RABIA_REPLY_OK);
    int64_t v;
    CHECK(rabia_counter_decode_result(p, n, &v, NULL, NULL) == 0 && v == 2);
    CHECK_EQ(rabia_rsm_lookup(r, A, 4, &st, &p, &n), 0);
    CHECK_EQ(rabia_rsm_lookup(r, ID(2), 2, &st, &p, &n), 0);
    CHECK_EQ(rabia_rsm_lookup(r, A, 1000, &st, &p, &n), 0);
    rabia_buf_free(&body);
    rabia_buf_free(&l.all);
    rabia_rsm_destroy(r);
}

static void test_out_of_order(void)
{
    struct rabia_rsm *r = rabia_rsm_create(&rabia_sm_counter, &cfg);
    struct rabia_buf body = {0};
    struct log l = {0};
    open_clients(r, 1, &l); /* the session's base is 2: seq 1 was the OPEN */
    const uint64_t A = ID(1);
    rabia_batch_init(&body);
    /* seq 2 first; then 4 is decided before 3; then 3 and 65 (the window's
     * end: ack + 63) */
    add(&body, A, 2, 2, RABIA_COUNTER_INC);
    apply(r, &body, &l);
    CHECK(l.n == 1 && l.g[0].status == RABIA_REPLY_OK && value_of(&l.g[0]) == 1);
    add(&body, A, 4, 2, RABIA_COUNTER_INC);
    apply(r, &body, &l);
    CHECK(l.n == 1 && l.g[0].status == RABIA_REPLY_OK && value_of(&l.g[0]) == 2);
    add(&body, A, 3, 2, RABIA_COUNTER_INC);
    add(&body, A, 65, 2, RABIA_COUNTER_INC);
    add(&body, A, 66, 2, RABIA_COUNTER_INC); /* ack + 64: a client bug */
    add(&body, A, 4, 5, RABIA_COUNTER_INC);  /* ack > seq: a client bug */
    add(&body, A, 4, 2, RABIA_COUNTER_INC);  /* a retry of seq 4 */
    apply(r, &body, &l);
    CHECK_EQ(l.n, 5);
    CHECK(l.g[0].status == RABIA_REPLY_OK && value_of(&l.g[0]) == 3);
    CHECK(l.g[1].status == RABIA_REPLY_OK && value_of(&l.g[1]) == 4);
    CHECK(l.g[2].status == RABIA_REPLY_BAD_REQUEST && l.g[2].len == 0);
    CHECK(l.g[3].status == RABIA_REPLY_BAD_REQUEST && l.g[3].len == 0);
    CHECK(l.g[4].status == RABIA_REPLY_OK && value_of(&l.g[4]) == 2);
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(r)), 4);

    /* ack = 4: seqs 2 and 3 are forgotten. */
    add(&body, A, 5, 4, RABIA_COUNTER_INC);
    add(&body, A, 3, 2, RABIA_COUNTER_INC); /* stale ack does not move back */
    add(&body, A, 4, 4, RABIA_COUNTER_INC);
    add(&body, A, 67, 4, RABIA_COUNTER_INC); /* now inside the window */
    apply(r, &body, &l);
    CHECK_EQ(l.n, 4);
    CHECK(l.g[0].status == RABIA_REPLY_OK && value_of(&l.g[0]) == 5);
    CHECK(l.g[1].status == RABIA_REPLY_SESSION_EXPIRED && l.g[1].len == 0);
    CHECK(l.g[2].status == RABIA_REPLY_OK && value_of(&l.g[2]) == 2);
    CHECK(l.g[3].status == RABIA_REPLY_OK && value_of(&l.g[3]) == 6);
    int st;
    const uint8_t *p;
    size_t n;
    CHECK_EQ(rabia_rsm_lookup(r, A, 2, &st, &p, &n), 1);
    CHECK(st == RABIA_REPLY_SESSION_EXPIRED && p == NULL && n == 0);
    CHECK_EQ(rabia_rsm_lookup(r, A, 65, &st, &p, &n), 1);
    CHECK_EQ(st, RABIA_REPLY_OK);
    /* A jump of the ack far ahead forgets everything. */
    add(&body, A, 1000, 1000, RABIA_COUNTER_GET);
    add(&body, A, 65, 4, RABIA_COUNTER_INC);
    apply(r, &body, &l);
    CHECK(l.g[0].status == RABIA_REPLY_OK && value_of(&l.g[0]) == 6);
    CHECK(l.g[1].status == RABIA_REPLY_SESSION_EXPIRED);
    CHECK_EQ(rabia_rsm_lookup(r, A, 67, &st, &p, &n), 1);
    CHECK_EQ(st, RABIA_REPLY_SESSION_EXPIRED);
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(r)), 6);
    /* Only an OPEN opens a session: a client unknown here lost its session
     * (evicted, closed) or never had one, and is told so, whatever seq. */
    add(&body, 6, 500, 498, RABIA_COUNTER_INC);
    add(&body, 6, 1, 1, RABIA_COUNTER_INC);
    add(&body, ID(2), 2, 2, RABIA_COUNTER_INC); /* the next id: not opened yet */
    apply(r, &body, &l);
    CHECK(l.g[0].status == RABIA_REPLY_SESSION_EXPIRED && l.g[0].len == 0);
    CHECK(l.g[1].status == RABIA_REPLY_SESSION_EXPIRED && l.g[1].len == 0);
    CHECK(l.g[2].status == RABIA_REPLY_SESSION_EXPIRED && l.g[2].len == 0);
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(r)), 6);
    open_clients(r, 1, &l);
    add(&body, ID(2), 2, 2, RABIA_COUNTER_INC);
    add(&body, ID(2), 3, 2, RABIA_COUNTER_INC);
    apply(r, &body, &l);
    CHECK(l.g[0].status == RABIA_REPLY_OK && value_of(&l.g[0]) == 7);
    CHECK(l.g[1].status == RABIA_REPLY_OK && value_of(&l.g[1]) == 8);
    CHECK_EQ(rabia_rsm_sessions(r), 2);
    rabia_buf_free(&body);
    rabia_buf_free(&l.all);
    rabia_rsm_destroy(r);
}

static void test_large_reply(void)
{
    struct rabia_rsm_config c = {.max_sessions = 4, .max_reply_bytes = 16};
    struct rabia_rsm *r = rabia_rsm_create(&rabia_sm_kv, &c);
    struct rabia_buf body = {0}, op1 = {0}, op2 = {0};
    struct log l = {0};
    const char *big[] = {"ECHO", "0123456789abcdefghij"};
    const char *small[] = {"ECHO", "hi"};
    rabia_kv_encode_argv(&op1, 2, big, NULL);
    rabia_kv_encode_argv(&op2, 2, small, NULL);
    open_clients(r, 1, &l);
    rabia_batch_init(&body);
    struct rabia_req q1 = {ID(1), 2, 2, op1.data, (uint32_t)op1.len};
    struct rabia_req q2 = {ID(1), 3, 2, op2.data, (uint32_t)op2.len};
    rabia_batch_append(&body, &q1);
    rabia_batch_append(&body, &q2);
    rabia_batch_append(&body, &q1);
    rabia_batch_append(&body, &q2);
    apply(r, &body, &l);
    CHECK_EQ(l.n, 4);
    CHECK(l.g[0].status == RABIA_REPLY_OK && l.g[0].len == 27);
    CHECK(l.g[1].status == RABIA_REPLY_OK && l.g[1].len == 8);
    CHECK(l.g[2].status == RABIA_REPLY_APPLIED_NO_RESULT && l.g[2].len == 0);
    CHECK(l.g[3].status == RABIA_REPLY_OK && l.g[3].len == 8 &&
          memcmp(l.g[3].body, "$2\r\nhi\r\n", 8) == 0);
    int st;
    const uint8_t *p;
    size_t n;
    CHECK_EQ(rabia_rsm_lookup(r, ID(1), 2, &st, &p, &n), 1);
    CHECK(st == RABIA_REPLY_APPLIED_NO_RESULT && n == 0);
    /* The snapshot keeps the distinction. */
    struct rabia_buf s = {0};
    CHECK_EQ(rabia_rsm_snapshot(r, &s), 0);
    struct rabia_rsm *r2 = rabia_rsm_create(&rabia_sm_kv, &c);
    CHECK_EQ(rabia_rsm_restore(r2, s.data, s.len), 0);
    CHECK_EQ(rabia_rsm_lookup(r2, ID(1), 2, &st, &p, &n), 1);
    CHECK_EQ(st, RABIA_REPLY_APPLIED_NO_RESULT);
    CHECK_EQ(rabia_rsm_lookup(r2, ID(1), 3, &st, &p, &n), 1);
    CHECK(st == RABIA_REPLY_OK && n == 8 && memcmp(p, "$2\r\nhi\r\n", 8) == 0);
    rabia_rsm_destroy(r2);
    rabia_buf_free(&s);
    rabia_buf_free(&body);
    rabia_buf_free(&op1);
    rabia_buf_free(&op2);
    rabia_buf_free(&l.all);
    rabia_rsm_destroy(r);
}

static int has_session(struct rabia_rsm *r, uint64_t client)
{
    int st;
    const uint8_t *p;
    size_t n;
    /* seq 1 is below every session's base: "expired" means it exists */
    return rabia_rsm_lookup(r, client, 1, &st, &p, &n) == 1;
}

static void test_eviction(void)
{
    struct rabia_rsm_config c = {.max_sessions = 3, .max_reply_bytes = 64};
    struct rabia_rsm *r = rabia_rsm_create(&rabia_sm_counter, &c);
    struct rabia_rsm *twin = NULL;
    struct rabia_buf body = {0}, s = {0};
    struct log l = {0};
    rabia_batch_init(&body);
    open_clients(r, 1, &l); /* slot 1: ID(1) */
    add(&body, ID(1), 2, 2, RABIA_COUNTER_INC);
    apply(r, &body, &l); /* slot 2 */
    open_clients(r, 2, &l); /* slot 3: ID(2), ID(3) */
    CHECK_EQ(rabia_rsm_sessions(r), 3);
    /* A twin restored here must evict exactly as r does. */
    CHECK_EQ(rabia_rsm_snapshot(r, &s), 0);
    twin = rabia_rsm_create(&rabia_sm_counter, &c);
    CHECK_EQ(rabia_rsm_restore(twin, s.data, s.len), 0);

    for (int round = 0; round < 2; round++) {
        struct rabia_rsm *x = round ? twin : r;
        open_clients(x, 1, &l); /* slot 4: ID(4) evicts ID(1), the oldest */
        CHECK(!has_session(x, ID(1)) && has_session(x, ID(2)) && has_session(x, ID(3)) &&
              has_session(x, ID(4)));
        open_clients(x, 1, &l); /* slot 5: ID(2) and ID(3) tie at slot 3: ID(2) goes */
        CHECK(!has_session(x, ID(2)) && has_session(x, ID(3)) && has_session(x, ID(4)) &&
              has_session(x, ID(5)));
        CHECK_EQ(rabia_rsm_sessions(x), 3);
        /* Activity protects a session: ID(3) touched, then ID(6) evicts ID(4). */
        add(&body, ID(3), 2, 2, RABIA_COUNTER_GET);
        apply(x, &body, &l); /* slot 6 */
        CHECK(l.g[0].status == RABIA_REPLY_OK && value_of(&l.g[0]) == 1);
        open_clients(x, 1, &l); /* slot 7 */
        CHECK(!has_session(x, ID(4)) && has_session(x, ID(3)) && has_session(x, ID(5)) &&
              has_session(x, ID(6)));
        /* Evicted ID(1) retries seq 2: refused, never applied a second time
         * (before sessions were named by the log, it was applied again). */
        int64_t before = rabia_counter_value(rabia_rsm_sm(x));
        add(&body, ID(1), 2, 2, RABIA_COUNTER_INC);
        apply(x, &body, &l);
        CHECK_EQ(l.g[0].status, RABIA_REPLY_SESSION_EXPIRED);
        CHECK_EQ(rabia_counter_value(rabia_rsm_sm(x)), before);
        /* Ten OPENs in one batch with max 3 sessions: the last three stay. */
        open_clients(x, 10, &l);
        CHECK_EQ(rabia_rsm_sessions(x), 3);
        CHECK(has_session(x, ID(14)) && has_session(x, ID(15)) && has_session(x, ID(16)));
        /* A connection-scoped session goes before any other, however recent. */
        add(&body, CONN(77), 1, 1, RABIA_COUNTER_GET);
        apply(x, &body, &l);
        CHECK(has_session(x, CONN(77)) && !has_session(x, ID(14)));
        open_clients(x, 1, &l);
        CHECK(!has_session(x, CONN(77)) && has_session(x, ID(15)) && has_session(x, ID(17)));
    }
    CHECK_EQ(rabia_rsm_hash(r), rabia_rsm_hash(twin));
    CHECK(rabia_rsm_hash(r) != 0);
    rabia_rsm_destroy(twin);
    rabia_buf_free(&s);
    rabia_buf_free(&body);
    rabia_buf_free(&l.all);
    rabia_rsm_destroy(r);
}

static void test_slots_and_malformed(void)
{
    struct rabia_rsm *r = rabia_rsm_create(&rabia_sm_counter, &cfg);
    struct rabia_buf body = {0}, s1 = {0}, s2 = {0};
    struct log l = {0};
    CHECK_EQ(rabia_rsm_applied(r), 0);
    CHECK_EQ(rabia_rsm_apply(r, 0, NULL, 0, on_reply, &l), -EINVAL);
    CHECK_EQ(rabia_rsm_apply(r, 2, NULL, 0, on_reply, &l), -EINVAL);
    CHECK_EQ(rabia_rsm_apply(r, 1, NULL, 0, on_reply, &l), 0); /* null slot */
    CHECK_EQ(rabia_rsm_applied(r), 1);
    open_clients(r, 1, &l); /* slot 2 */
    rabia_batch_init(&body);
    add(&body, ID(1), 2, 2, RABIA_COUNTER_INC);
    apply(r, &body, &l);
    CHECK_EQ(rabia_rsm_applied(r), 3);
    CHECK_EQ(rabia_rsm_apply(r, 3, NULL, 0, on_reply, &l), -EINVAL);

    /* A malformed body is a no-op, even when its first request parses. */
    rabia_sm_counter.snapshot(rabia_rsm_sm(r), &s1);
    add(&body, ID(1), 3, 2, RABIA_COUNTER_INC);
    add(&body, ID(1), 4, 2, RABIA_COUNTER_INC);
    log_reset(&l);
    for (size_t cut = 0; cut < body.len; cut++) {
        CHECK_EQ(rabia_rsm_apply(r, rabia_rsm_applied(r) + 1, body.data, cut, on_reply, &l), 0);
    }
    rabia_buf_put_u8(&body, 0); /* a trailing byte */
    CHECK_EQ(rabia_rsm_apply(r, rabia_rsm_applied(r) + 1, body.data, body.len, on_reply, &l), 0);
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3};
    CHECK_EQ(rabia_rsm_apply(r, rabia_rsm_applied(r) + 1, garbage, sizeof garbage, on_reply, &l), 0);
    CHECK_EQ(l.n, 0);
    CHECK_EQ(rabia_rsm_applied(r), 3 + (body.len - 1) + 2);
    rabia_sm_counter.snapshot(rabia_rsm_sm(r), &s2);
    CHECK(s1.len == s2.len && memcmp(s1.data, s2.data, s1.len) == 0);
    CHECK_EQ(rabia_rsm_sessions(r), 1);
    /* An empty batch (count 0) is fine too. */
    rabia_batch_init(&body);
    apply(r, &body, &l);
    CHECK_EQ(l.n, 0);
    rabia_buf_free(&s1);
    rabia_buf_free(&s2);
    rabia_buf_free(&body);
    rabia_buf_free(&l.all);
    rabia_rsm_destroy(r);
    CHECK(rabia_rsm_create(&rabia_sm_counter, &(struct rabia_rsm_config){.max_sessions = 0, .max_reply_bytes = 10}) == NULL);
    r = rabia_rsm_create(&rabia_sm_counter, NULL); /* defaults */
    CHECK(r != NULL);
    rabia_rsm_destroy(r);
}

/* Random client traffic: NC clients, each with its next seq and ack;
 * requests are new ones, retries of outstanding ones (out of order),
 * stale retries, and now and then client bugs. */
enum { NC = 12 };
struct client {
    uint64_t id, next, ack;
};

/* Every 250 slots the clients in use open new sessions (an OPEN each):
 * the k-th OPEN any replica applies is ID(k), so all replicas agree. */
static uint64_t opened;
static void open_batch(struct rabia_buf *body, struct client *cl, int nclients)
{
    rabia_batch_init(body);
    for (int k = 0; k < nclients; k++) {
        struct rabia_req q = {0x500 + (uint64_t)k, 1, 1, NULL, 0};
        CHECK_EQ(rabia_batch_append(body, &q), 0);
        cl[k].id = ID(++opened);
        cl[k].next = cl[k].ack = 2;
    }
}

static void random_batch(struct rabia_buf *body, struct client *cl, int nclients)
{
    rabia_batch_init(body);
    int n = (int)(rng() % 8);
    for (int i = 0; i < n; i++) {
        int k = (int)(rng() % (uint64_t)nclients);
        struct client *c = &cl[k];
        uint64_t x = rng() % 100, seq, ack = c->ack;
        if (x < 45 && c->next - c->ack < 60) {
            seq = c->next++;
        } else if (x < 85) {
            seq = c->ack + rng() % (c->next - c->ack + 1);
            if (seq == c->next)
                seq = c->next++;
        } else if (x < 92) {
            /* a stale retry, sent back when the ack was lower */
            seq = c->ack > 3 ? c->ack - 1 - rng() % 3 : c->ack;
            ack = seq;
        } else if (x < 95) {
            seq = c->ack + 64 + rng() % 3;
        } else {
            seq = c->ack;
            if (c->ack < c->next)
                c->ack += 1 + rng() % (c->next - c->ack);
            ack = c->ack > seq ? seq : c->ack;
        }
        add(body, c->id, seq, ack, (enum rabia_counter_op)(1 + rng() % 3));
    }
    if (rng() % 50 == 0 && body->len > 8)
        body->len -= 3; /* now and then a malformed one */
}

static void test_determinism(void)
{
    struct rabia_rsm_config c = {.max_sessions = 8, .max_reply_bytes = 64};
    struct rabia_rsm *a = rabia_rsm_create(&rabia_sm_counter, &c);
    struct rabia_rsm *b = rabia_rsm_create(&rabia_sm_counter, &c);
    struct rabia_rsm *late = NULL;
    struct rabia_buf body = {0}, s = {0}, s2 = {0};
    struct log la = {0}, lb = {0}, ll = {0};
    struct client cl[NC];
    for (int i = 0; i < NC; i++)
        cl[i].next = cl[i].ack = 1;
    rng_state = 8675309;
    opened = 0;
    for (uint64_t slot = 1; slot <= 5000; slot++) {
        if (slot % 250 == 1) {
            open_batch(&body, cl, slot < 2500 ? 6 : NC);
        } else if (rng() % 10 == 0) {
            rabia_buf_clear(&body);
        } else {
            /* Early on 6 clients (no eviction), later all 12 (eviction). */
            random_batch(&body, cl, slot < 2500 ? 6 : NC);
        }
        const uint8_t *p = body.len ? body.data : NULL;
        CHECK_EQ(rabia_rsm_apply(a, slot, p, body.len, on_reply, &la), 0);
        CHECK_EQ(rabia_rsm_apply(b, slot, p, body.len, on_reply, &lb), 0);
        if (late)
            CHECK_EQ(rabia_rsm_apply(late, slot, p, body.len, on_reply, &ll), 0);
        if (slot % 500 == 0) {
            CHECK_EQ(rabia_rsm_hash(a), rabia_rsm_hash(b));
            CHECK(la.all.len == lb.all.len && memcmp(la.all.data, lb.all.data, la.all.len) == 0);
            rabia_buf_clear(&s);
            rabia_buf_clear(&s2);
            CHECK_EQ(rabia_rsm_snapshot(a, &s), 0);
            CHECK_EQ(rabia_rsm_snapshot(b, &s2), 0);
            CHECK(s.len == s2.len && memcmp(s.data, s2.data, s.len) == 0);
            if (late) {
                CHECK_EQ(rabia_rsm_hash(late), rabia_rsm_hash(a));
                rabia_rsm_destroy(late);
            }
            /* A replica that joins here from a's snapshot. */
            late = rabia_rsm_create(&rabia_sm_counter, &c);
            CHECK_EQ(rabia_rsm_restore(late, s.data, s.len), 0);
            CHECK_EQ(rabia_rsm_applied(late), slot);
            rabia_buf_clear(&s2);
            CHECK_EQ(rabia_rsm_snapshot(late, &s2), 0);
            CHECK(s.len == s2.len && memcmp(s.data, s2.data, s.len) == 0);
            la.all.len = lb.all.len = ll.all.len = 0;
        }
        if (late && ll.all.len) {
            /* late's replies equal a's since it joined. */
            CHECK(ll.all.len == la.all.len && memcmp(ll.all.data, la.all.data, la.all.len) == 0);
        }
    }
    /* The traffic exercised every outcome. */
    CHECK(la.status_count[RABIA_REPLY_OK] > 5000);
    CHECK(la.status_count[RABIA_REPLY_SESSION_EXPIRED] > 100);
    CHECK(la.status_count[RABIA_REPLY_BAD_REQUEST] > 100);
    printf("     ok %ld, expired %ld, bad %ld\n", la.status_count[RABIA_REPLY_OK],
           la.status_count[RABIA_REPLY_SESSION_EXPIRED], la.status_count[RABIA_REPLY_BAD_REQUEST]);
    CHECK_EQ(rabia_rsm_sessions(a), 8); /* 12 clients: evictions happened */
    rabia_rsm_destroy(late);
    rabia_rsm_destroy(a);
    rabia_rsm_destroy(b);
    rabia_buf_free(&body);
    rabia_buf_free(&s);
    rabia_buf_free(&s2);
    rabia_buf_free(&la.all);
    rabia_buf_free(&lb.all);
    rabia_buf_free(&ll.all);
}

/* Exactly-once: with retries and reordering but no eviction, the counter
 * equals the number of distinct INC requests applied. */
static void test_exactly_once(void)
{
    struct rabia_rsm_config c = {.max_sessions = 64, .max_reply_bytes = 64};
    struct rabia_rsm *r = rabia_rsm_create(&rabia_sm_counter, &c);
    struct rabia_buf body = {0};
    struct log l = {0};
    static uint8_t applied[8][4096];
    uint64_t next[8], ack[8];
    int64_t distinct = 0;
    rng_state = 1;
    open_clients(r, 8, &l); /* ID(1) .. ID(8) */
    for (int k = 0; k < 8; k++)
        next[k] = ack[k] = 2;
    for (int slot = 0; slot < 3000; slot++) {
        rabia_batch_init(&body);
        int n = 1 + (int)(rng() % 6);
        for (int i = 0; i < n; i++) {
            int k = (int)(rng() % 8);
            uint64_t seq;
            if (next[k] - ack[k] < 64 && next[k] < 4000 && rng() % 2)
                seq = next[k]++;
            else if (next[k] > ack[k])
                seq = ack[k] + rng() % (next[k] - ack[k]);
            else
                seq = next[k]++;
            add(&body, ID(k + 1), seq, ack[k], RABIA_COUNTER_INC);
        }
        apply(r, &body, &l);
        for (int i = 0; i < l.n && i < 256; i++) {
            struct got *g = &l.g[i];
            int k = (int)(g->client & 0xFF) - 1;
            CHECK_EQ(g->status, RABIA_REPLY_OK);
            if (g->status == RABIA_REPLY_OK && !applied[k][g->seq]) {
                applied[k][g->seq] = 1;
                distinct++;
            }
        }
        /* The client moves its ack past every seq it has replies for. */
        for (int k = 0; k < 8; k++)
            while (ack[k] < next[k] && applied[k][ack[k]])
                ack[k]++;
    }
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(r)), distinct);
    CHECK(distinct > 3000);
    rabia_buf_free(&body);
    rabia_buf_free(&l.all);
    rabia_rsm_destroy(r);
}

/* Recompute a snapshot's trailing checksum after editing it. */
static void reseal(struct rabia_buf *s)
{
    uint64_t h = XXH64(s->data, s->len - 8, 0);
    for (int i = 0; i < 8; i++)
        s->data[s->len - 8 + (size_t)i] = (uint8_t)(h >> (8 * i));
}

static void test_snapshot(void)
{
    struct rabia_rsm_config c = {.max_sessions = 4, .max_reply_bytes = 64};
    struct rabia_rsm *r = rabia_rsm_create(&rabia_sm_counter, &c);
    struct rabia_rsm *r2 = rabia_rsm_create(&rabia_sm_counter, &c);
    struct rabia_buf body = {0}, s = {0}, s2 = {0}, bad = {0};
    struct log l = {0};
    open_clients(r, 2, &l); /* slot 1: ID(1), ID(2) */
    rabia_batch_init(&body);
    add(&body, ID(2), 2, 2, RABIA_COUNTER_INC);
    add(&body, ID(1), 2, 2, RABIA_COUNTER_INC);
    add(&body, ID(1), 6, 2, RABIA_COUNTER_INC);
    apply(r, &body, &l);
    add(&body, ID(2), 4, 3, RABIA_COUNTER_INC);
    apply(r, &body, &l);
    CHECK_EQ(rabia_rsm_snapshot(r, &s), 0);
    CHECK_EQ(rabia_rsm_restore(r2, s.data, s.len), 0);
    CHECK_EQ(rabia_rsm_snapshot(r2, &s2), 0);
    CHECK(s.len == s2.len && memcmp(s.data, s2.data, s.len) == 0);
    CHECK_EQ(rabia_rsm_hash(r), rabia_rsm_hash(r2));
    CHECK_EQ(rabia_rsm_applied(r2), 3);
    CHECK_EQ(rabia_rsm_sessions(r2), 2);
    /* Retries against the restored replica get the cached replies. */
    add(&body, ID(1), 6, 2, RABIA_COUNTER_INC);
    add(&body, ID(2), 2, 2, RABIA_COUNTER_INC);
    apply(r2, &body, &l);
    CHECK(l.g[0].status == RABIA_REPLY_OK && value_of(&l.g[0]) == 3);
    CHECK(l.g[1].status == RABIA_REPLY_SESSION_EXPIRED);
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(r2)), 4);

    /* Corruption is rejected and leaves r2 as it was. */
    uint64_t h = rabia_rsm_hash(r2);
    for (size_t i = 0; i < s.len; i++) {
        rabia_buf_clear(&bad);
        rabia_buf_append(&bad, s.data, s.len);
        bad.data[i] ^= 0x20;
        CHECK_EQ(rabia_rsm_restore(r2, bad.data, bad.len), -EINVAL);
    }
    for (size_t n = 0; n < s.len; n++)
        CHECK_EQ(rabia_rsm_restore(r2, s.data, n), -EINVAL);
    CHECK_EQ(rabia_rsm_hash(r2), h);
    /* Valid checksums over invalid contents. Layout: magic 4, name len 4,
     * "counter" 7, applied 8, OPENs 8, count 8, then session 1 (ID(1)) at 39. */
    size_t s1 = 4 + 4 + 7 + 8 + 8 + 8;
    rabia_buf_clear(&bad);
    rabia_buf_append(&bad, s.data, s.len);
    CHECK_EQ(bad.data[s1], 1);
    bad.data[s1] = 3; /* ID(3) before ID(2): out of order */
    reseal(&bad);
    CHECK_EQ(rabia_rsm_restore(r2, bad.data, bad.len), -EINVAL);
    bad.data[s1] = 1;
    CHECK_EQ(bad.data[s1 + 16], 2); /* its last activity: slot 2 */
    bad.data[s1 + 16] = 99; /* last activity after the applied slot */
    reseal(&bad);
    CHECK_EQ(rabia_rsm_restore(r2, bad.data, bad.len), -EINVAL);
    bad.data[s1 + 16] = 2;
    reseal(&bad);
    CHECK_EQ(rabia_rsm_restore(r2, bad.data, bad.len), 0); /* same bytes: fine */
    CHECK_EQ(rabia_rsm_hash_mismatches(r2), 0);
    uint64_t stored = 0;
    CHECK_EQ(rabia_rsm_snapshot_hash(bad.data, bad.len, &stored), 0);
    CHECK_EQ(rabia_rsm_hash(r2), stored); /* recomputed from the restored state: the stored one */
    bad.data[bad.len - 16] ^= 1; /* the stored state hash (then the checksum) */
    reseal(&bad);
    CHECK_EQ(rabia_rsm_restore(r2, bad.data, bad.len), 0); /* counted, not refused: the state is intact */
    CHECK_EQ(rabia_rsm_hash_mismatches(r2), 1);
    CHECK_EQ(rabia_rsm_hash(r2), stored);
    bad.data[bad.len - 16] ^= 1;
    bad.data[bad.len - 16 - 9] = 7; /* the counter snapshot's version */
    reseal(&bad);
    CHECK_EQ(rabia_rsm_restore(r2, bad.data, bad.len), -EINVAL);
    bad.data[bad.len - 16 - 9] = 1;
    bad.data[8] = 'k'; /* "kounter": another state machine */
    reseal(&bad);
    CHECK_EQ(rabia_rsm_restore(r2, bad.data, bad.len), -EINVAL);
    /* More sessions than this replica's max_sessions. */
    struct rabia_rsm_config small = {.max_sessions = 1, .max_reply_bytes = 64};
    struct rabia_rsm *r3 = rabia_rsm_create(&rabia_sm_counter, &small);
    CHECK_EQ(rabia_rsm_restore(r3, s.data, s.len), -EINVAL);
    rabia_rsm_destroy(r3);
    /* A kv rsm will not take a counter snapshot. */
    r3 = rabia_rsm_create(&rabia_sm_kv, &c);
    CHECK_EQ(rabia_rsm_restore(r3, s.data, s.len), -EINVAL);
    rabia_rsm_destroy(r3);

    /* r2 restored the same bytes above; bring it back to s and compare. */
    CHECK_EQ(rabia_rsm_restore(r2, s.data, s.len), 0);
    rabia_buf_clear(&s2);
    CHECK_EQ(rabia_rsm_snapshot(r2, &s2), 0);
    CHECK(s.len == s2.len && memcmp(s.data, s2.data, s.len) == 0);

    rabia_buf_free(&s);
    rabia_buf_free(&s2);
    rabia_buf_free(&bad);
    rabia_buf_free(&body);
    rabia_buf_free(&l.all);
    rabia_rsm_destroy(r);
    rabia_rsm_destroy(r2);
}

/* An OPEN (empty op, seq 1) opens a session named by the log, without the
 * state machine; seq 0 closes it; a retry after the close is refused,
 * never applied again; a late copy of the OPEN opens an unused session. */
static void test_open_close(void)
{
    struct rabia_rsm *r = rabia_rsm_create(&rabia_sm_counter, &cfg);
    struct rabia_buf body = {0};
    struct log l = {0};
    rabia_batch_init(&body);
    struct rabia_req open = {9, 1, 1, NULL, 0};
    CHECK_EQ(rabia_batch_append(&body, &open), 0);
    apply(r, &body, &l);
    CHECK(l.n == 1 && l.g[0].status == RABIA_REPLY_OK && l.g[0].len == 8 && l.g[0].client == 9);
    uint64_t id = 0;
    for (int i = 7; i >= 0; i--)
        id = id << 8 | l.g[0].body[i];
    CHECK_EQ(id, ID(1));
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(r)), 0);
    add(&body, id, 2, 2, RABIA_COUNTER_INC);
    struct rabia_req noop = {id, 3, 2, NULL, 0}; /* an empty op: OK, no state machine */
    CHECK_EQ(rabia_batch_append(&body, &noop), 0);
    apply(r, &body, &l);
    CHECK(l.n == 2 && l.g[0].status == RABIA_REPLY_OK && value_of(&l.g[0]) == 1);
    CHECK(l.g[1].status == RABIA_REPLY_OK && l.g[1].len == 0);
    CHECK_EQ(rabia_rsm_sessions(r), 1);
    struct rabia_req close = {id, 0, 0, NULL, 0};
    CHECK_EQ(rabia_batch_append(&body, &close), 0);
    CHECK_EQ(rabia_batch_append(&body, &close), 0); /* twice: harmless */
    apply(r, &body, &l);
    CHECK(l.n == 2 && l.g[0].status == RABIA_REPLY_OK && l.g[1].status == RABIA_REPLY_OK);
    CHECK_EQ(rabia_rsm_sessions(r), 0);
    /* a late copy of the OPEN: a new, unused session, not the old one */
    CHECK_EQ(rabia_batch_append(&body, &open), 0);
    apply(r, &body, &l);
    CHECK(l.n == 1 && l.g[0].status == RABIA_REPLY_OK && l.g[0].len == 8 && l.g[0].body[0] == 2);
    add(&body, id, 2, 2, RABIA_COUNTER_INC); /* a late copy of seq 2 */
    apply(r, &body, &l);
    CHECK(l.n == 1 && l.g[0].status == RABIA_REPLY_SESSION_EXPIRED);
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(r)), 1);
    CHECK_EQ(rabia_rsm_sessions(r), 1);
    rabia_buf_free(&body);
    rabia_buf_free(&l.all);
    rabia_rsm_destroy(r);
}


/* Connection churn must not push out a client with its own id that is
 * still retrying (its retry would apply twice); once such a client is
 * evicted after all, its retry is refused, not applied a second time. */
static void test_churn_keeps_native_sessions(void)
{
    struct rabia_rsm_config c = {.max_sessions = 4, .max_reply_bytes = 64};
    struct rabia_rsm *r = rabia_rsm_create(&rabia_sm_counter, &c);
    struct rabia_buf body = {0};
    struct log l = {0};
    open_clients(r, 1, &l);
    rabia_batch_init(&body);
    add(&body, ID(1), 2, 2, RABIA_COUNTER_INC);
    apply(r, &body, &l); /* applied; say the reply was lost */
    CHECK_EQ(value_of(&l.g[0]), 1);
    for (uint64_t k = 1; k <= 100; k++) { /* short connections, never closed */
        add(&body, CONN(k), 1, 1, RABIA_COUNTER_GET);
        apply(r, &body, &l);
    }
    CHECK_EQ(rabia_rsm_sessions(r), 4);
    /* an evicted live connection carries on (it never retries) */
    add(&body, CONN(1), 2, 1, RABIA_COUNTER_GET);
    apply(r, &body, &l);
    CHECK(l.g[0].status == RABIA_REPLY_OK && value_of(&l.g[0]) == 1);
    add(&body, ID(1), 2, 2, RABIA_COUNTER_INC); /* the retry */
    apply(r, &body, &l);
    CHECK(l.g[0].status == RABIA_REPLY_OK && value_of(&l.g[0]) == 1);
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(r)), 1);
    /* Four more clients open sessions: now ID(1) has to go. */
    for (int k = 0; k < 4; k++)
        open_clients(r, 1, &l);
    add(&body, ID(1), 2, 2, RABIA_COUNTER_INC);
    apply(r, &body, &l);
    CHECK_EQ(l.g[0].status, RABIA_REPLY_SESSION_EXPIRED);
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(r)), 1);
    rabia_buf_free(&body);
    rabia_buf_free(&l.all);
    rabia_rsm_destroy(r);
}

/* A batch decided twice is applied once; so is a batch of an earlier life
 * of its proxy decided after the later life's. */
static void test_batch_applied_once(void)
{
    struct rabia_rsm *r = rabia_rsm_create(&rabia_sm_counter, &cfg);
    struct rabia_buf body = {0};
    struct log l = {0};
    rabia_batch_init(&body);
    add(&body, CONN(1), 1, 1, RABIA_COUNTER_INC);
    struct rabia_batch_id a = {.proxy = 2, .incarnation = 5, .seq = 1};
    CHECK_EQ(rabia_rsm_apply_batch(r, 1, &a, body.data, body.len, on_reply, &l), 0);
    /* the connection closes; then the same batch is decided again */
    struct rabia_buf b2 = {0};
    rabia_batch_init(&b2);
    struct rabia_req close = {CONN(1), 0, 0, NULL, 0};
    rabia_batch_append(&b2, &close);
    struct rabia_batch_id bid = {.proxy = 2, .incarnation = 5, .seq = 2};
    CHECK_EQ(rabia_rsm_apply_batch(r, 2, &bid, b2.data, b2.len, on_reply, &l), 0);
    log_reset(&l);
    CHECK_EQ(rabia_rsm_apply_batch(r, 3, &a, body.data, body.len, on_reply, &l), 0);
    CHECK_EQ(l.n, 0);
    CHECK_EQ(rabia_rsm_applied(r), 3);
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(r)), 1);
    /* a snapshot carries what was applied */
    struct rabia_buf s = {0};
    CHECK_EQ(rabia_rsm_snapshot(r, &s), 0);
    uint64_t at = 0;
    CHECK_EQ(rabia_rsm_snapshot_slot(s.data, s.len, &at), 0);
    CHECK_EQ(at, 3);
    struct rabia_rsm *twin = rabia_rsm_create(&rabia_sm_counter, &cfg);
    CHECK_EQ(rabia_rsm_restore(twin, s.data, s.len), 0);
    CHECK_EQ(rabia_rsm_apply_batch(twin, 4, &a, body.data, body.len, on_reply, &l), 0);
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(twin)), 1);
    /* the proxy restarted (incarnation 6): a late batch of life 5 is skipped */
    struct rabia_batch_id n1 = {.proxy = 2, .incarnation = 6, .seq = 1};
    struct rabia_batch_id old = {.proxy = 2, .incarnation = 5, .seq = 3};
    rabia_batch_init(&b2);
    add(&b2, CONN(77), 1, 1, RABIA_COUNTER_INC);
    CHECK_EQ(rabia_rsm_apply_batch(twin, 5, &n1, b2.data, b2.len, on_reply, &l), 0);
    rabia_batch_init(&b2);
    add(&b2, CONN(78), 1, 1, RABIA_COUNTER_INC);
    CHECK_EQ(rabia_rsm_apply_batch(twin, 6, &old, b2.data, b2.len, on_reply, &l), 0);
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(twin)), 2);
    /* far apart seqs of one proxy */
    for (uint64_t q = 2; q < 700; q += 3) {
        struct rabia_batch_id x = {.proxy = 2, .incarnation = 6, .seq = q};
        rabia_batch_init(&b2);
        add(&b2, CONN(77), 2, 2, RABIA_COUNTER_GET);
        CHECK_EQ(rabia_rsm_apply_batch(twin, rabia_rsm_applied(twin) + 1, &x, b2.data, b2.len, NULL, NULL), 0);
    }
    CHECK_EQ(rabia_rsm_snapshot_slot(s.data, s.len - 1, &at), -EINVAL);
    rabia_rsm_destroy(twin);
    rabia_buf_free(&s);
    rabia_buf_free(&b2);
    rabia_buf_free(&body);
    rabia_buf_free(&l.all);
    rabia_rsm_destroy(r);
}

/* All sessions together keep at most max_reply_total reply bytes; the
 * least recently active lose theirs first, and a restored twin decides the
 * same way. */
static void test_reply_budget(void)
{
    struct rabia_rsm_config c = {.max_sessions = 64, .max_reply_bytes = 256, .max_reply_total = 200};
    struct rabia_rsm *r = rabia_rsm_create(&rabia_sm_kv, &c);
    struct rabia_rsm *twin = rabia_rsm_create(&rabia_sm_kv, &c);
    struct rabia_buf body = {0}, op = {0}, s = {0};
    struct log l = {0};
    const char *echo[] = {"ECHO", "0123456789012345678901234567890123456789"}; /* 47-byte reply */
    rabia_kv_encode_argv(&op, 2, echo, NULL);
    for (uint64_t k = 1; k <= 8; k++) {
        rabia_batch_init(&body);
        struct rabia_req q = {CONN(k), 1, 1, op.data, (uint32_t)op.len};
        rabia_batch_append(&body, &q);
        if (k == 5) { /* the twin joins here */
            CHECK_EQ(rabia_rsm_snapshot(r, &s), 0);
            CHECK_EQ(rabia_rsm_restore(twin, s.data, s.len), 0);
        }
        CHECK_EQ(rabia_rsm_apply(r, k, body.data, body.len, on_reply, &l), 0);
        if (k >= 5)
            CHECK_EQ(rabia_rsm_apply(twin, k, body.data, body.len, NULL, NULL), 0);
    }
    CHECK_EQ(rabia_rsm_hash(r), rabia_rsm_hash(twin));
    int st;
    const uint8_t *p;
    size_t n;
    /* 4 replies of 47 bytes fit in 200: clients 5..8 keep theirs */
    CHECK_EQ(rabia_rsm_lookup(r, CONN(4), 1, &st, &p, &n), 1);
    CHECK_EQ(st, RABIA_REPLY_APPLIED_NO_RESULT);
    CHECK_EQ(rabia_rsm_lookup(r, CONN(5), 1, &st, &p, &n), 1);
    CHECK(st == RABIA_REPLY_OK && n == 47);
    CHECK_EQ(rabia_rsm_lookup(twin, CONN(5), 1, &st, &p, &n), 1);
    CHECK(st == RABIA_REPLY_OK && n == 47);
    rabia_buf_free(&s);
    rabia_buf_free(&op);
    rabia_buf_free(&body);
    rabia_buf_free(&l.all);
    rabia_rsm_destroy(r);
    rabia_rsm_destroy(twin);
}

/* Replicas whose reply-cache-bytes differ keep different replies, not a
 * different state: rabia_rsm_hash (which snapshots carry) tells them apart,
 * rabia_rsm_check_hash (what replica/hashcheck.c compares) does not, also
 * for a replica that joined through a snapshot, and still sees a request
 * applied on one only. Before, the checkpoints compared rabia_rsm_hash and
 * the replica with the smaller budget stopped itself. */
static void test_check_hash_budget(void)
{
    struct rabia_rsm_config small = {.max_sessions = 64, .max_reply_bytes = 256, .max_reply_total = 200};
    struct rabia_rsm_config big = {.max_sessions = 64, .max_reply_bytes = 256, .max_reply_total = 1u << 20};
    struct rabia_rsm *a = rabia_rsm_create(&rabia_sm_kv, &small);
    struct rabia_rsm *b = rabia_rsm_create(&rabia_sm_kv, &big);
    struct rabia_rsm *c = rabia_rsm_create(&rabia_sm_kv, &big); /* joins at slot 5 from a's snapshot */
    struct rabia_buf body = {0}, op = {0}, s = {0};
    const char *echo[] = {"ECHO", "0123456789012345678901234567890123456789"}; /* 47-byte reply */
    rabia_kv_encode_argv(&op, 2, echo, NULL);
    CHECK_EQ(rabia_rsm_check_hash(a), rabia_rsm_check_hash(b));
    for (uint64_t k = 1; k <= 8; k++) {
        rabia_batch_init(&body);
        struct rabia_req q = {CONN(k), 1, 1, op.data, (uint32_t)op.len};
        rabia_batch_append(&body, &q);
        if (k == 5) {
            CHECK_EQ(rabia_rsm_snapshot(a, &s), 0);
            CHECK_EQ(rabia_rsm_restore(c, s.data, s.len), 0);
        }
        CHECK_EQ(rabia_rsm_apply(a, k, body.data, body.len, NULL, NULL), 0);
        CHECK_EQ(rabia_rsm_apply(b, k, body.data, body.len, NULL, NULL), 0);
        if (k >= 5)
            CHECK_EQ(rabia_rsm_apply(c, k, body.data, body.len, NULL, NULL), 0);
    }
    CHECK(rabia_rsm_hash(a) != rabia_rsm_hash(b)); /* a dropped replies b keeps */
    CHECK(rabia_rsm_check_hash(a) != 0);
    CHECK_EQ(rabia_rsm_check_hash(a), rabia_rsm_check_hash(b));
    CHECK_EQ(rabia_rsm_check_hash(c), rabia_rsm_check_hash(b));
    /* one more request applied on b only: a difference the check sees */
    rabia_batch_init(&body);
    struct rabia_req q = {CONN(9), 1, 1, op.data, (uint32_t)op.len};
    rabia_batch_append(&body, &q);
    CHECK_EQ(rabia_rsm_apply(b, 9, body.data, body.len, NULL, NULL), 0);
    CHECK_EQ(rabia_rsm_apply(a, 9, NULL, 0, NULL, NULL), 0); /* a null slot */
    CHECK(rabia_rsm_check_hash(a) != rabia_rsm_check_hash(b));
    rabia_buf_free(&s);
    rabia_buf_free(&op);
    rabia_buf_free(&body);
    rabia_rsm_destroy(a);
    rabia_rsm_destroy(b);
    rabia_rsm_destroy(c);
}

/* Kept replies of up to 128 bytes share pooled 128-byte buffers (rsm.c's
 * RSM_SMALL): a buffer restored from a snapshot must be one of them too, or
 * the next, longer reply written into it overflows (ASan sees it). Replies
 * of every size around the limit, each read back while it is kept. */
static void test_reply_buffers(void)
{
    struct rabia_rsm_config c = {.max_sessions = 4, .max_reply_bytes = 512};
    struct rabia_rsm *r = rabia_rsm_create(&rabia_sm_kv, &c);
    struct rabia_buf body = {0}, op = {0}, s = {0};
    struct log l = {0};
    open_clients(r, 1, &l);
    const char *hi[] = {"ECHO", "hi"};
    rabia_kv_encode_argv(&op, 2, hi, NULL);
    rabia_batch_init(&body);
    struct rabia_req q = {ID(1), 2, 2, op.data, (uint32_t)op.len};
    rabia_batch_append(&body, &q);
    apply(r, &body, &l);
    CHECK_EQ(rabia_rsm_snapshot(r, &s), 0);
    struct rabia_rsm *r2 = rabia_rsm_create(&rabia_sm_kv, &c);
    CHECK_EQ(rabia_rsm_restore(r2, s.data, s.len), 0);
    char arg[300];
    memset(arg, 'x', sizeof arg);
    for (uint64_t seq = 3; seq < 3 + 600; seq++) {
        /* ECHO of n bytes answers n + 6..9 bytes: 8 .. 300 around 128 */
        size_t n = (size_t)(seq * 37 % 290) + 1;
        const char *v[] = {"ECHO", arg};
        size_t lens[] = {4, n};
        rabia_buf_clear(&op);
        CHECK_EQ(rabia_kv_encode_argv(&op, 2, v, lens), 0);
        /* ack seq - 1: the previous reply is dropped (its buffer pooled) */
        struct rabia_req q2 = {ID(1), seq, seq - 1, op.data, (uint32_t)op.len};
        rabia_batch_append(&body, &q2);
        apply(r2, &body, &l);
        CHECK_EQ(l.n, 1);
        int st;
        const uint8_t *p;
        size_t len;
        CHECK_EQ(rabia_rsm_lookup(r2, ID(1), seq, &st, &p, &len), 1);
        char head[16];
        int h = snprintf(head, sizeof head, "$%zu\r\n", n);
        CHECK(st == RABIA_REPLY_OK && len == (size_t)h + n + 2);
        CHECK(memcmp(p, head, (size_t)h) == 0 && p[h] == 'x' && p[h + n - 1] == 'x' && p[h + n] == '\r');
    }
    rabia_rsm_destroy(r2);
    rabia_rsm_destroy(r);
    rabia_buf_free(&s);
    rabia_buf_free(&body);
    rabia_buf_free(&op);
    rabia_buf_free(&l.all);
}

int main(void)
{
    RUN(test_duplicates);
    RUN(test_out_of_order);
    RUN(test_large_reply);
    RUN(test_eviction);
    RUN(test_slots_and_malformed);
    RUN(test_determinism);
    RUN(test_exactly_once);
    RUN(test_snapshot);
    RUN(test_open_close);
    RUN(test_churn_keeps_native_sessions);
    RUN(test_batch_applied_once);
    RUN(test_reply_budget);
    RUN(test_check_hash_budget);
    RUN(test_reply_buffers);
    for (int i = 0; i < 3; i++)
        rabia_buf_free(&opbuf[i]);
    return CHECK_DONE();
}
