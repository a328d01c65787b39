/* Recovery from a log without I/O (replica/replay.c): DECIDED_REF records,
 * whose body an earlier record of the log holds (replica/node.c,
 * decided_by_ref), are applied with that body; one whose body is missing
 * is refused with a message, never applied as a no-op. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "codec.h"
#include "counter.h"
#include "replay.h"
#include "rsm.h"

#define SELF 0
#define INC 7 /* own batch incarnation */
#define SESSION (RABIA_SESSION_ASSIGNED | 1u) /* the first OPEN applied opens session 1 (core/rsm.h) */

static const struct rabia_rsm_config cfg = {.max_sessions = 16, .max_reply_bytes = 64};

/* A batch body: an OPEN (seq 0) or an INC by the session at `seq`. */
static void body_of(struct rabia_buf *b, uint64_t seq)
{
    rabia_batch_init(b);
    struct rabia_buf op = {0};
    struct rabia_req q = {0x100, 1, 1, NULL, 0};
    if (seq) {
        CHECK_EQ(rabia_counter_encode(&op, RABIA_COUNTER_INC, 0), 0);
        q = (struct rabia_req){SESSION, seq, seq, op.data, (uint32_t)op.len};
    }
    CHECK_EQ(rabia_batch_append(b, &q), 0);
    rabia_buf_free(&op);
}

/* Feed one record as the log would: the message encoded without its sum. */
static int feed(struct replay *rp, uint8_t type, uint64_t slot, const struct rabia_msg *m, char *err, size_t len)
{
    static uint8_t frame[4096];
    size_t need = rabia_msg_encoded_size(m);
    CHECK(need > 0 && need <= sizeof frame);
    int k = rabia_msg_encode_unsummed(m, frame, need);
    CHECK(k > 0);
    return replay_record(rp, type, slot, frame, (uint32_t)k, err, len);
}

static struct rabia_msg batch(uint8_t proxy, uint64_t seq, const struct rabia_buf *b)
{
    return (struct rabia_msg){.type = RABIA_MSG_BATCH, .from = proxy, .has_id = 1,
                              .id = {.proxy = proxy, .incarnation = INC, .seq = seq}, .body = b->data,
                              .body_len = (uint32_t)b->len};
}

static struct rabia_msg decided(uint64_t slot, uint8_t proxy, uint64_t seq, const struct rabia_buf *b)
{
    struct rabia_msg m = {.type = RABIA_MSG_DECISION, .from = SELF, .slot = slot, .value = 1, .has_id = 1,
                          .id = {.proxy = proxy, .incarnation = INC, .seq = seq}};
    if (b) {
        m.body = b->data;
        m.body_len = (uint32_t)b->len;
    }
    return m;
}

static void test_by_reference(void)
{
    struct rabia_rsm *rsm = rabia_rsm_create(&rabia_sm_counter, &cfg);
    CHECK(rsm != NULL);
    struct replay rp;
    replay_init(&rp, SELF, 1, 0, rsm);
    char err[512] = "";
    struct rabia_buf open = {0}, inc2 = {0}, inc3 = {0}, inc4 = {0};
    body_of(&open, 0);
    body_of(&inc2, 2);
    body_of(&inc3, 3);
    body_of(&inc4, 4);
    /* slot 1: a full DECIDED record (the session opens) */
    struct rabia_msg m = decided(1, 1, 1, &open);
    CHECK_EQ(feed(&rp, NODE_REC_DECIDED, 1, &m, err, sizeof err), 0);
    /* slot 2: an own batch, its body in its BATCH record (keyed by seq) */
    m = batch(SELF, 5, &inc2);
    CHECK_EQ(feed(&rp, NODE_REC_BATCH, 5, &m, err, sizeof err), 0);
    m = decided(2, SELF, 5, NULL);
    CHECK_EQ(feed(&rp, NODE_REC_DECIDED_REF, 2, &m, err, sizeof err), 0);
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(rsm)), 1);
    /* slot 3: another proxy's batch this replica proposed there: a SENT
     * record of the body with that slot */
    m = batch(2, 9, &inc3);
    m.slot = 0; /* the frame has no slot: the record carries it (node.c) */
    CHECK_EQ(feed(&rp, NODE_REC_SENT, 3, &m, err, sizeof err), 0);
    m = decided(3, 2, 9, NULL);
    CHECK_EQ(feed(&rp, NODE_REC_DECIDED_REF, 3, &m, err, sizeof err), 0);
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(rsm)), 2);
    /* slot 4: the own batch decided a second time: a no-op, as it was live */
    m = decided(4, SELF, 5, NULL);
    CHECK_EQ(feed(&rp, NODE_REC_DECIDED_REF, 4, &m, err, sizeof err), 0);
    CHECK_EQ(rabia_rsm_applied(rsm), 4);
    CHECK_EQ(rabia_counter_value(rabia_rsm_sm(rsm)), 2);
    /* slot 5 names another proxy's body logged for a different slot: that
     * record proves nothing about slot 5, so the log is refused */
    m = batch(2, 10, &inc4);
    m.slot = 0;
    CHECK_EQ(feed(&rp, NODE_REC_SENT, 6, &m, err, sizeof err), 0);
    m = decided(5, 2, 10, NULL);
    CHECK_EQ(feed(&rp, NODE_REC_DECIDED_REF, 5, &m, err, sizeof err), -EUCLEAN);
    CHECK(strstr(err, "slot 5 names batch 3.7.10") && strstr(err, "--rejoin"));
    CHECK_EQ(rabia_rsm_applied(rsm), 4);
    /* a DECIDED_REF record that carries a body is not what a build writes */
    m = decided(5, 2, 10, &inc4);
    CHECK_EQ(feed(&rp, NODE_REC_DECIDED_REF, 5, &m, err, sizeof err), -EINVAL);
    replay_free(&rp);
    rabia_rsm_destroy(rsm);
    rabia_buf_free(&open);
    rabia_buf_free(&inc2);
    rabia_buf_free(&inc3);
    rabia_buf_free(&inc4);
}

/* An own batch whose BATCH record is gone (a release that forgot the
 * reference: the simulator's --bug forget-ref) is refused too. */
static void test_missing_own_body(void)
{
    struct rabia_rsm *rsm = rabia_rsm_create(&rabia_sm_counter, &cfg);
    struct replay rp;
    replay_init(&rp, SELF, 1, 0, rsm);
    char err[512] = "";
    struct rabia_msg m = decided(1, SELF, 77, NULL);
    CHECK_EQ(feed(&rp, NODE_REC_DECIDED_REF, 1, &m, err, sizeof err), -EUCLEAN);
    CHECK(strstr(err, "no earlier record of the log holds its body") != NULL);
    CHECK_EQ(rabia_rsm_applied(rsm), 0);
    replay_free(&rp);
    rabia_rsm_destroy(rsm);
}

int main(void)
{
    RUN(test_by_reference);
    RUN(test_missing_own_body);
    return CHECK_DONE();
}
