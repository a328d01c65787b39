/* A peer's catch-up from the log (replica/logcatch.c): DECIDED records sent
 * as they are, DECIDED_REF records with the body of the record they name
 * (own batches by id, another proxy's only from the slot this replica
 * proposed it in), a gap or a body no longer kept ends the request, the
 * ring forgets the oldest bodies, and the planted bug sends a wrong body. */
#include <string.h>

#include "check.h"
#include "logcatch.h"
#include "node.h"

#define SELF 1
#define INC 7

struct out {
    struct rabia_msg m[16];
    uint8_t body[16][1100];
    int n;
};

static void emit(void *ctx, const struct rabia_msg *m)
{
    struct out *o = ctx;
    CHECK(o->n < 16);
    if (o->n >= 16) return;
    o->m[o->n] = *m;
    if (m->body_len) memcpy(o->body[o->n], m->body, m->body_len);
    o->n++;
}

struct rec {
    uint8_t type;
    uint64_t slot;
    struct rabia_msg m;
};

static struct rec body_rec(uint8_t type, uint64_t slot, uint8_t proxy, uint64_t seq, const char *body)
{
    struct rec r = {.type = type, .slot = slot};
    r.m = (struct rabia_msg){.type = RABIA_MSG_BATCH, .from = SELF, .has_id = 1, .id = {.proxy = proxy, .incarnation = INC, .seq = seq},
                             .body = (const uint8_t *)body, .body_len = (uint32_t)strlen(body)};
    return r;
}

static struct rec decided(uint64_t slot, bool ref, uint8_t proxy, uint64_t seq, const char *body)
{
    struct rec r = {.type = ref ? NODE_REC_DECIDED_REF : NODE_REC_DECIDED, .slot = slot};
    r.m = (struct rabia_msg){.type = RABIA_MSG_DECISION, .from = SELF, .slot = slot, .value = proxy != 0xff};
    if (proxy != 0xff) {
        r.m.has_id = 1;
        r.m.id = (struct rabia_batch_id){.proxy = proxy, .incarnation = INC, .seq = seq};
    }
    if (body) {
        r.m.body = (const uint8_t *)body;
        r.m.body_len = (uint32_t)strlen(body);
    }
    return r;
}

static int feed_all(struct logcatch *lc, const struct rec *v, int n, struct out *o)
{
    int k = 0;
    for (; k < n; k++)
        if (logcatch_feed(lc, v[k].type, v[k].slot, &v[k].m, emit, o)) break;
    return k;
}

static struct rec LOG[8];

static void make_log(void)
{
    LOG[0] = body_rec(NODE_REC_BATCH, 5, SELF, 5, "own-five");     /* own batch seq 5 */
    LOG[1] = body_rec(NODE_REC_SENT, 3, 2, 9, "other-nine");        /* replica 2's batch, proposed in slot 3 */
    LOG[2] = decided(1, false, 0xff, 0, NULL);                      /* null */
    LOG[3] = decided(2, false, 0, 4, "with-body");                  /* DECIDED with its body */
    LOG[4] = decided(3, true, 2, 9, NULL);                          /* by reference: replica 2's */
    LOG[5] = decided(4, true, SELF, 5, NULL);                       /* by reference: own */
    LOG[6] = decided(6, false, 0xff, 0, NULL);                      /* slot 5 is not in this log */
    LOG[7] = decided(7, true, 2, 9, NULL);                          /* replica 2's batch again, not proposed in 7 */
}

static void test_serve(void)
{
    make_log();
    struct logcatch lc;
    CHECK_EQ(logcatch_init(&lc, SELF, 1u << 16), 0);
    struct out o = {0};
    logcatch_begin(&lc, 1, 5, false);
    feed_all(&lc, LOG, 8, &o);
    CHECK(lc.ended);
    CHECK_EQ(lc.served, 4);
    CHECK_EQ(o.n, 4);
    CHECK(o.m[0].slot == 1 && !o.m[0].value && !o.m[0].body_len);
    CHECK(o.m[1].slot == 2 && o.m[1].body_len == 9 && !memcmp(o.body[1], "with-body", 9));
    CHECK(o.m[2].slot == 3 && o.m[2].body_len == 10 && !memcmp(o.body[2], "other-nine", 10));
    CHECK(o.m[3].slot == 4 && o.m[3].body_len == 8 && !memcmp(o.body[3], "own-five", 8));
    for (int i = 0; i < o.n; i++) CHECK(o.m[i].type == RABIA_MSG_DECISION && o.m[i].from == SELF);
    /* a part of it, from the middle */
    o.n = 0;
    logcatch_begin(&lc, 3, 4, false);
    feed_all(&lc, LOG, 8, &o);
    CHECK(lc.ended && lc.served == 1 && o.n == 1 && o.m[0].slot == 3);
    /* slot 5 is not in this log: nothing, and says where the log goes on */
    o.n = 0;
    logcatch_begin(&lc, 5, 9, false);
    feed_all(&lc, LOG, 8, &o);
    CHECK(lc.ended && lc.served == 0 && lc.gap_at == 6 && o.n == 0);
    /* slot 7 names replica 2's batch, which this replica proposed in slot 3
     * only: not that body (replay.c's rule), so the request ends there */
    o.n = 0;
    logcatch_begin(&lc, 6, 9, false);
    feed_all(&lc, LOG, 8, &o);
    CHECK(lc.ended && lc.served == 1 && lc.no_body && o.n == 1 && o.m[0].slot == 6);
    logcatch_free(&lc);
}

/* The ring keeps the newest bodies; the oldest go as it wraps. */
static void test_ring(void)
{
    struct logcatch lc;
    CHECK_EQ(logcatch_init(&lc, SELF, 4096), 0);
    static char bodies[10][1001];
    struct rec v[12];
    for (int i = 0; i < 10; i++) {
        memset(bodies[i], 'a' + i, 1000);
        bodies[i][1000] = 0;
        v[i] = body_rec(NODE_REC_BATCH, (uint64_t)(i + 1), SELF, (uint64_t)(i + 1), bodies[i]);
    }
    v[10] = decided(1, true, SELF, 10, NULL); /* the newest body: kept */
    v[11] = decided(2, true, SELF, 1, NULL);  /* the oldest: overwritten */
    struct out o = {0};
    logcatch_begin(&lc, 1, 3, false);
    feed_all(&lc, v, 12, &o);
    CHECK(lc.ended && lc.served == 1 && lc.no_body);
    CHECK(o.n == 1 && o.m[0].body_len == 1000 && o.body[0][0] == 'j' && o.body[0][999] == 'j');
    logcatch_free(&lc);
}

/* The planted bug: a DECIDED_REF takes its proxy's newest body. */
static void test_bug_any_body(void)
{
    struct rec v[3] = {body_rec(NODE_REC_BATCH, 1, SELF, 1, "first"), body_rec(NODE_REC_BATCH, 2, SELF, 2, "second"),
                       decided(1, true, SELF, 1, NULL)};
    struct logcatch lc;
    CHECK_EQ(logcatch_init(&lc, SELF, 4096), 0);
    lc.bugs = LOGCATCH_BUG_ANY_BODY;
    struct out o = {0};
    logcatch_begin(&lc, 1, 2, false);
    feed_all(&lc, v, 3, &o);
    CHECK(o.n == 1 && o.m[0].body_len == 6 && !memcmp(o.body[0], "second", 6));
    lc.bugs = 0;
    o.n = 0;
    logcatch_begin(&lc, 1, 2, false);
    feed_all(&lc, v, 3, &o);
    CHECK(o.n == 1 && o.m[0].body_len == 5 && !memcmp(o.body[0], "first", 5));
    logcatch_free(&lc);
}

int main(void)
{
    RUN(test_serve);
    RUN(test_ring);
    RUN(test_bug_any_body);
    return CHECK_DONE();
}
