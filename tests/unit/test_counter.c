/* The counter example state machine. */
#include <errno.h>
#include <string.h>
#include <xxhash.h>

#include "check.h"
#include "counter.h"

static uint64_t rng_state;
static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Apply op and decode: 0 value, 1 error (reason copied to why). */
static int run(void *sm, enum rabia_counter_op op, int64_t arg, int64_t *value, char *why)
{
    struct rabia_buf o = {0}, r = {0};
    CHECK_EQ(rabia_counter_encode(&o, op, arg), 0);
    CHECK_EQ(rabia_sm_counter.apply(sm, o.data, o.len, &r), 0);
    const char *e = NULL;
    size_t elen = 0;
    int rc = rabia_counter_decode_result(r.data, r.len, value, &e, &elen);
    if (rc == 1 && why) {
        memcpy(why, e, elen);
        why[elen] = 0;
    }
    rabia_buf_free(&o);
    rabia_buf_free(&r);
    return rc;
}

static void test_operations(void)
{
    void *sm = rabia_sm_counter.create();
    int64_t v = -1;
    CHECK_EQ(run(sm, RABIA_COUNTER_GET, 0, &v, NULL), 0);
    CHECK_EQ(v, 0);
    CHECK_EQ(run(sm, RABIA_COUNTER_INC, 0, &v, NULL), 0);
    CHECK_EQ(v, 1);
    CHECK_EQ(run(sm, RABIA_COUNTER_INC, 0, &v, NULL), 0);
    CHECK_EQ(v, 2);
    CHECK_EQ(run(sm, RABIA_COUNTER_DEC, 0, &v, NULL), 0);
    CHECK_EQ(v, 1);
    CHECK_EQ(run(sm, RABIA_COUNTER_SET, -42, &v, NULL), 0);
    CHECK_EQ(v, -42);
    CHECK_EQ(run(sm, RABIA_COUNTER_GET, 0, &v, NULL), 0);
    CHECK_EQ(v, -42);
    CHECK_EQ(rabia_counter_value(sm), -42);
    /* Get is repeatable. */
    int64_t a, b;
    run(sm, RABIA_COUNTER_GET, 0, &a, NULL);
    run(sm, RABIA_COUNTER_GET, 0, &b, NULL);
    CHECK_EQ(a, b);
    rabia_sm_counter.destroy(sm);
}

static void test_overflow(void)
{
    void *sm = rabia_sm_counter.create();
    int64_t v;
    char why[64];
    run(sm, RABIA_COUNTER_SET, INT64_MAX, &v, NULL);
    CHECK_EQ(run(sm, RABIA_COUNTER_INC, 0, &v, why), 1);
    CHECK(strcmp(why, "overflow") == 0);
    CHECK(rabia_counter_value(sm) == INT64_MAX);
    run(sm, RABIA_COUNTER_SET, INT64_MIN, &v, NULL);
    CHECK_EQ(run(sm, RABIA_COUNTER_DEC, 0, &v, why), 1);
    CHECK(rabia_counter_value(sm) == INT64_MIN);
    CHECK_EQ(run(sm, RABIA_COUNTER_INC, 0, &v, NULL), 0);
    CHECK(v == INT64_MIN + 1);
    rabia_sm_counter.destroy(sm);
}

static void test_malformed(void)
{
    void *sm = rabia_sm_counter.create();
    const uint8_t bad[][10] = {{0}, {9}, {1, 0}, {4, 1, 2, 3}, {3, 3}};
    const size_t lens[] = {0, 1, 2, 4, 2};
    int64_t v;
    CHECK_EQ(run(sm, RABIA_COUNTER_SET, 7, &v, NULL), 0);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        struct rabia_buf r = {0};
        CHECK_EQ(rabia_sm_counter.apply(sm, lens[i] ? bad[i] : NULL, lens[i], &r), 0);
        const char *e;
        size_t elen;
        CHECK_EQ(rabia_counter_decode_result(r.data, r.len, NULL, &e, &elen), 1);
        CHECK(elen == strlen("malformed operation") && memcmp(e, "malformed operation", elen) == 0);
        CHECK_EQ(rabia_counter_value(sm), 7);
        rabia_buf_free(&r);
    }
    CHECK_EQ(rabia_counter_decode_result((const uint8_t *)"", 0, NULL, NULL, NULL), -EINVAL);
    CHECK_EQ(rabia_counter_decode_result((const uint8_t *)"\x00\x01", 2, NULL, NULL, NULL), -EINVAL);
    CHECK_EQ(rabia_counter_decode_result((const uint8_t *)"\x02", 1, NULL, NULL, NULL), -EINVAL);
    CHECK_EQ(rabia_counter_decode_result((const uint8_t *)"\x01\x05\0\0\0ab", 7, NULL, NULL, NULL), -EINVAL);
    struct rabia_buf o = {0};
    CHECK_EQ(rabia_counter_encode(&o, (enum rabia_counter_op)9, 0), -EINVAL);
    rabia_buf_free(&o);
    rabia_sm_counter.destroy(sm);
}

static void test_determinism(void)
{
    void *a = rabia_sm_counter.create(), *b = rabia_sm_counter.create();
    struct rabia_buf op = {0}, ra = {0}, rb = {0}, sa = {0}, sb = {0};
    rng_state = 12345;
    for (int i = 0; i < 10000; i++) {
        uint64_t x = rng();
        rabia_buf_clear(&op);
        if (x % 50 == 0)
            rabia_counter_encode(&op, RABIA_COUNTER_SET, (int64_t)rng());
        else
            rabia_counter_encode(&op, (enum rabia_counter_op)(1 + x % 3), 0);
        rabia_buf_clear(&ra);
        rabia_buf_clear(&rb);
        CHECK_EQ(rabia_sm_counter.apply(a, op.data, op.len, &ra), 0);
        CHECK_EQ(rabia_sm_counter.apply(b, op.data, op.len, &rb), 0);
        CHECK(ra.len == rb.len && memcmp(ra.data, rb.data, ra.len) == 0);
    }
    rabia_sm_counter.snapshot(a, &sa);
    rabia_sm_counter.snapshot(b, &sb);
    CHECK(sa.len == 9 && sa.len == sb.len && memcmp(sa.data, sb.data, sa.len) == 0);
    rabia_buf_free(&op);
    rabia_buf_free(&ra);
    rabia_buf_free(&rb);
    rabia_buf_free(&sa);
    rabia_buf_free(&sb);
    rabia_sm_counter.destroy(a);
    rabia_sm_counter.destroy(b);
}

static void test_snapshot(void)
{
    void *a = rabia_sm_counter.create(), *b = rabia_sm_counter.create();
    struct rabia_buf s1 = {0}, s2 = {0};
    int64_t v;
    run(a, RABIA_COUNTER_SET, 42, &v, NULL);
    CHECK_EQ(rabia_sm_counter.snapshot(a, &s1), 0);
    CHECK_EQ(rabia_sm_counter.restore(b, s1.data, s1.len), 0);
    CHECK_EQ(rabia_counter_value(b), 42);
    CHECK_EQ(rabia_sm_counter.snapshot(b, &s2), 0);
    CHECK(s1.len == s2.len && memcmp(s1.data, s2.data, s1.len) == 0);
    /* Corrupt or truncated: rejected, old state kept. */
    run(b, RABIA_COUNTER_SET, 7, &v, NULL);
    CHECK_EQ(rabia_sm_counter.restore(b, s1.data, s1.len - 1), -EINVAL);
    CHECK_EQ(rabia_sm_counter.restore(b, s1.data, 0), -EINVAL);
    s2.data[0] = 2;
    CHECK_EQ(rabia_sm_counter.restore(b, s2.data, s2.len), -EINVAL);
    rabia_buf_put_u8(&s1, 0);
    CHECK_EQ(rabia_sm_counter.restore(b, s1.data, s1.len), -EINVAL);
    CHECK_EQ(rabia_counter_value(b), 7);
    rabia_buf_free(&s1);
    rabia_buf_free(&s2);
    rabia_sm_counter.destroy(a);
    rabia_sm_counter.destroy(b);
}

/* state_hash equals XXH3 of the snapshot, which is what the apply layer
 * hashes for a state machine without the op (core/rsm.c): snapshots and
 * status hashes of older builds stay comparable. */
static void test_state_hash(void)
{
    void *sm = rabia_sm_counter.create();
    struct rabia_buf s = {0};
    rng_state = 11;
    static const int64_t edge[] = {0, -1, 1, INT64_MAX, INT64_MIN};
    for (int i = 0; i < 2000 + 5; i++) {
        int64_t v;
        if (i < 5) run(sm, RABIA_COUNTER_SET, edge[i], &v, NULL);
        else run(sm, (enum rabia_counter_op)(1 + rng() % 4), (int64_t)rng(), &v, NULL);
        rabia_buf_clear(&s);
        CHECK_EQ(rabia_sm_counter.snapshot(sm, &s), 0);
        uint64_t h = 0;
        CHECK_EQ(rabia_sm_counter.state_hash(sm, &h), 0);
        CHECK(h == XXH3_64bits(s.data, s.len));
    }
    rabia_buf_free(&s);
    rabia_sm_counter.destroy(sm);
}

/* query (reads without a slot): GET alone is a read; its answer is what
 * apply would give, and nothing changes. */
static void test_query(void)
{
    void *sm = rabia_sm_counter.create();
    struct rabia_buf o = {0}, q = {0}, a = {0}, s1 = {0}, s2 = {0};
    rng_state = 7;
    for (int i = 0; i < 2000; i++) {
        enum rabia_counter_op op = (enum rabia_counter_op)(1 + rng() % 4);
        rabia_buf_clear(&o);
        CHECK_EQ(rabia_counter_encode(&o, op, (int64_t)(rng() % 1000) - 500), 0);
        int cls = rabia_sm_counter.query(sm, o.data, o.len, 0, NULL);
        CHECK_EQ(cls, op == RABIA_COUNTER_GET ? 0 : 1);
        rabia_buf_clear(&q);
        rabia_buf_clear(&s1);
        CHECK_EQ(rabia_sm_counter.snapshot(sm, &s1), 0);
        CHECK_EQ(rabia_sm_counter.query(sm, o.data, o.len, 123, &q), cls);
        rabia_buf_clear(&s2);
        CHECK_EQ(rabia_sm_counter.snapshot(sm, &s2), 0);
        CHECK(s1.len == s2.len && memcmp(s1.data, s2.data, s1.len) == 0); /* nothing changed */
        rabia_buf_clear(&a);
        CHECK_EQ(rabia_sm_counter.apply(sm, o.data, o.len, &a), 0);
        if (cls == 0) CHECK(q.len == a.len && memcmp(q.data, a.data, a.len) == 0);
        else CHECK_EQ(q.len, 0);
    }
    /* malformed ones go through the log, whose apply answers the error */
    static const uint8_t bad[][2] = {{RABIA_COUNTER_GET, 0}, {9, 0}};
    CHECK_EQ(rabia_sm_counter.query(sm, bad[0], 2, 0, NULL), 1);
    CHECK_EQ(rabia_sm_counter.query(sm, bad[1], 1, 0, NULL), 1);
    CHECK_EQ(rabia_sm_counter.query(sm, bad[0], 0, 0, NULL), 1);
    rabia_buf_free(&o);
    rabia_buf_free(&q);
    rabia_buf_free(&a);
    rabia_buf_free(&s1);
    rabia_buf_free(&s2);
    rabia_sm_counter.destroy(sm);
}

int main(void)
{
    RUN(test_operations);
    RUN(test_state_hash);
    RUN(test_overflow);
    RUN(test_malformed);
    RUN(test_determinism);
    RUN(test_snapshot);
    RUN(test_query);
    return CHECK_DONE();
}
