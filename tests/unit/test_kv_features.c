/* kv/features.c: feature levels. A command of a level above the agreed one
 * answers exactly what a build without it answers (so replicas of both
 * builds keep equal states), FEATURELEVEL raises the level at one point of
 * the log and never lowers it, a level above the build's stops the replica
 * (RABIA_E_FEATURE, from the apply and from a restore), and a store at
 * level 0 writes the snapshot and computes the hash that builds before
 * levels did. LMPOP and ZMPOP (level 1) reply as Redis 7.0.15 does
 * (tests/kv/difftest.py compares them with a redis-server). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kv_check.h"
#include "rabia/types.h"

#define T0 1700000000000ull

static uint64_t hash_of(void *sm)
{
    uint64_t h = 0;
    CHECK_EQ(rabia_sm_kv.state_hash(sm, &h), 0);
    return h;
}

/* Apply an op; its return code (the reply in *rep). */
static int apply_argv(void *sm, int n, const char *const *argv, struct rabia_buf *rep)
{
    struct rabia_buf op = {0};
    CHECK_EQ(rabia_kv_encode_argv(&op, n, argv, NULL), 0);
    rabia_buf_clear(rep);
    int rc = rabia_sm_kv.apply(sm, op.data, op.len, rep);
    rabia_buf_free(&op);
    return rc;
}

struct heard {
    int n;
    struct rabia_sm_event ev;
};

static void on_event(void *arg, const struct rabia_sm_event *ev)
{
    struct heard *h = arg;
    if (ev->kind != RABIA_SM_EV_FEATURES) return;
    h->n++;
    h->ev = *ev;
}

#define UNKNOWN_LMPOP "-ERR unknown command 'LMPOP', with args beginning with: '1' 'l' 'LEFT' \r\n"

/* Level 0: LMPOP and ZMPOP are unknown (a build without them answers the
 * same), everywhere a command can be named; FEATURES changes nothing. */
static void test_level0(void)
{
    void *sm = kv_fresh_at(T0);
    KV_DO(sm, "RPUSH l a b c", ":3\r\n");
    KV_DO(sm, "LMPOP 1 l LEFT", UNKNOWN_LMPOP);
    KV_DO(sm, "ZMPOP 1 z MIN", "-ERR unknown command 'ZMPOP', with args beginning with: '1' 'z' 'MIN' \r\n");
    /* in a script: Redis's text for an unknown command */
    const char *got = kv_reply(sm, "EVAL return(redis.pcall('lmpop','1','l','left')['err']) 0");
    CHECK(strstr(got, "Unknown Redis command called from script") != NULL);
    /* in a transaction */
    struct rabia_buf a = {0}, txn = {0}, rep = {0};
    const char *lm[] = {"LMPOP", "1", "l", "LEFT"};
    CHECK_EQ(rabia_kv_encode_argv(&a, 4, lm, NULL), 0);
    const uint8_t *ops[] = {a.data};
    const size_t lens[] = {a.len};
    CHECK_EQ(rabia_kv_encode_txn(&txn, 1, ops, lens), 0);
    CHECK_EQ(rabia_sm_kv.apply(sm, txn.data, txn.len, &rep), 0);
    CHECK(rep.len > 4 && !memcmp(rep.data, "*1\r\n-ERR unknown command 'LMPOP'", 32));
    KV_DO(sm, "LRANGE l 0 -1", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
    /* FEATURES: an event for the replica's runtime, no state, and the
     * answer of a build without levels, byte for byte (the reply is kept
     * in its session, which snapshots and the state hash cover) */
    uint64_t h0 = hash_of(sm);
    struct heard h = {0};
    rabia_sm_kv.set_events(sm, on_event, &h);
    KV_DO(sm, "FEATURES 2 1700000000123456 1", "-ERR unknown command 'FEATURES', with args beginning with: '2' '1700000000123456' '1' \r\n");
    CHECK_EQ(h.n, 1);
    CHECK_EQ(h.ev.db, 2u);
    CHECK_EQ(h.ev.u1, 1700000000123456ull);
    CHECK_EQ(h.ev.u2, 1u);
    KV_DO(sm, "FEATURES 8 1 1", "-ERR unknown command 'FEATURES', with args beginning with: '8' '1' '1' \r\n");
    KV_DO(sm, "FEATURES 1 1", "-ERR unknown command 'FEATURES', with args beginning with: '1' '1' \r\n");
    CHECK_EQ(h.n, 1); /* malformed: no event */
    CHECK_EQ(rabia_kv_feature_level(sm), 0u);
    CHECK_EQ(hash_of(sm), h0);
    /* the snapshot is what builds before levels write: version 2 without scripts */
    void *plain = kv_fresh_at(T0);
    KV_DO(plain, "FEATURES 1 5 1", "-ERR unknown command 'FEATURES', with args beginning with: '1' '5' '1' \r\n");
    struct rabia_buf snap = {0};
    CHECK_EQ(rabia_sm_kv.snapshot(plain, &snap), 0);
    CHECK_EQ(snap.data[0], 2);
    void *other = kv_fresh_at(T0);
    CHECK_EQ(hash_of(plain), hash_of(other)); /* FEATURES left no trace */
    rabia_sm_kv.destroy(other);
    rabia_sm_kv.destroy(plain);
    rabia_buf_free(&snap);
    rabia_buf_free(&a);
    rabia_buf_free(&txn);
    rabia_buf_free(&rep);
    rabia_sm_kv.destroy(sm);
}

/* FEATURELEVEL raises the level once, for good; the snapshot (version 4)
 * and the hash carry it; a restored store agrees. */
static void test_raise(void)
{
    void *sm = kv_fresh_at(T0);
    KV_DO(sm, "RPUSH l a b c d", ":4\r\n");
    uint64_t h0 = hash_of(sm);
    KV_DO(sm, "FEATURELEVEL 1", ":1\r\n");
    CHECK_EQ(rabia_kv_feature_level(sm), 1u);
    CHECK(hash_of(sm) != h0);
    KV_DO(sm, "FEATURELEVEL 0", ":1\r\n"); /* never lowered */
    KV_DO(sm, "FEATURELEVEL x", "-ERR value is not an integer or out of range\r\n");
    KV_DO(sm, "FEATURELEVEL 300", "-ERR FEATURELEVEL level: out of range\r\n");
    KV_DO(sm, "LMPOP 2 nokey l LEFT COUNT 2", "*2\r\n$1\r\nl\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    struct rabia_buf snap = {0};
    CHECK_EQ(rabia_sm_kv.snapshot(sm, &snap), 0);
    CHECK_EQ(snap.data[0], 4);
    CHECK_EQ(snap.data[snap.len - 1], 1);
    void *back = kv_fresh_at(T0);
    CHECK_EQ(rabia_sm_kv.restore(back, snap.data, snap.len), 0);
    CHECK_EQ(rabia_kv_feature_level(back), 1u);
    CHECK_EQ(hash_of(back), hash_of(sm));
    KV_DO(back, "LMPOP 1 l RIGHT", "*2\r\n$1\r\nl\r\n*1\r\n$1\r\nd\r\n");
    /* a level this build lacks: the apply fails (the replica stops), the
     * state stays */
    struct rabia_buf rep = {0};
    char above[8];
    snprintf(above, sizeof above, "%d", RABIA_KV_FEATURE_LEVEL + 1);
    const char *two[] = {"FEATURELEVEL", above};
    CHECK_EQ(apply_argv(sm, 2, two, &rep), RABIA_E_FEATURE);
    CHECK_EQ(rabia_kv_feature_level(sm), 1u);
    /* ... and so does a snapshot that carries one */
    snap.data[snap.len - 1] = RABIA_KV_FEATURE_LEVEL + 1;
    CHECK_EQ(rabia_sm_kv.restore(back, snap.data, snap.len), RABIA_E_FEATURE);
    snap.data[snap.len - 1] = 0; /* version 4 never holds level 0 */
    CHECK_EQ(rabia_sm_kv.restore(back, snap.data, snap.len), -EINVAL);
    snap.data[snap.len - 1] = 1;
    snap.data[0] = 5; /* a later build's version: it comes with a level */
    CHECK_EQ(rabia_sm_kv.restore(back, snap.data, snap.len), RABIA_E_FEATURE);
    KV_DO(back, "LLEN l", ":1\r\n"); /* unchanged by the refused restores */
    rabia_buf_free(&snap);
    rabia_buf_free(&rep);
    rabia_sm_kv.destroy(back);
    rabia_sm_kv.destroy(sm);
}

/* The replicas' own operations run only as a whole operation (never
 * inside a transaction or @DB), and the front ends can tell them. */
static void test_internal(void)
{
    void *sm = kv_fresh_at(T0);
    struct rabia_buf a = {0}, w = {0}, rep = {0};
    const char *fl[] = {"FEATURELEVEL", "1"};
    CHECK_EQ(rabia_kv_encode_argv(&a, 2, fl, NULL), 0);
    CHECK(rabia_kv_op_internal(a.data, a.len));
    const uint8_t *ops[] = {a.data};
    const size_t lens[] = {a.len};
    CHECK_EQ(rabia_kv_encode_txn(&w, 1, ops, lens), 0);
    CHECK_EQ(rabia_sm_kv.apply(sm, w.data, w.len, &rep), 0);
    CHECK(rep.len > 4 && !memcmp(rep.data, "*1\r\n-ERR unknown command 'FEATURELEVEL'", 39));
    rabia_buf_clear(&w);
    const char *db[] = {"@DB", "0", NULL};
    size_t dbl[] = {3, 1, a.len};
    db[2] = (const char *)a.data;
    CHECK_EQ(rabia_kv_encode_argv(&w, 3, db, dbl), 0);
    CHECK(!rabia_kv_op_internal(w.data, w.len)); /* not at the top: the store refuses it itself */
    rabia_buf_clear(&rep);
    CHECK_EQ(rabia_sm_kv.apply(sm, w.data, w.len, &rep), 0);
    CHECK(rep.len > 30 && !memcmp(rep.data, "-ERR unknown command 'FEATURELEVEL'", 35));
    CHECK_EQ(rabia_kv_feature_level(sm), 0u);
    /* a nested SWEEP runs at level 0 (as builds before levels ran it) and
     * is unknown from level 1 on */
    const char *swp[] = {"SWEEP", "10"};
    rabia_buf_clear(&a);
    CHECK_EQ(rabia_kv_encode_argv(&a, 2, swp, NULL), 0);
    const uint8_t *sops[] = {a.data};
    const size_t slens[] = {a.len};
    rabia_buf_clear(&w);
    CHECK_EQ(rabia_kv_encode_txn(&w, 1, sops, slens), 0);
    rabia_buf_clear(&rep);
    CHECK_EQ(rabia_sm_kv.apply(sm, w.data, w.len, &rep), 0);
    CHECK_EQ(rep.len, 8u);
    CHECK(!memcmp(rep.data, "*1\r\n:0\r\n", 8));
    KV_DO(sm, "FEATURELEVEL 1", ":1\r\n");
    rabia_buf_clear(&rep);
    CHECK_EQ(rabia_sm_kv.apply(sm, w.data, w.len, &rep), 0);
    CHECK(rep.len > 4 && !memcmp(rep.data, "*1\r\n-ERR unknown command 'SWEEP'", 32));
    const char *sw[] = {"SWEEP"}, *fe[] = {"features", "1", "1", "1"}, *get[] = {"GET", "k"};
    rabia_buf_clear(&w);
    CHECK_EQ(rabia_kv_encode_argv(&w, 1, sw, NULL), 0);
    CHECK(rabia_kv_op_internal(w.data, w.len));
    rabia_buf_clear(&w);
    CHECK_EQ(rabia_kv_encode_argv(&w, 4, fe, NULL), 0);
    CHECK(rabia_kv_op_internal(w.data, w.len));
    rabia_buf_clear(&w);
    CHECK_EQ(rabia_kv_encode_argv(&w, 2, get, NULL), 0);
    CHECK(!rabia_kv_op_internal(w.data, w.len));
    CHECK(!rabia_kv_op_internal(w.data, 5)); /* truncated */
    /* the command table tells a front end each command's level */
    CHECK_EQ(rabia_kv_lookup((const uint8_t *)"lmpop", 5)->level, 1u);
    CHECK_EQ(rabia_kv_lookup((const uint8_t *)"ZMPOP", 5)->level, 1u);
    CHECK_EQ(rabia_kv_lookup((const uint8_t *)"lpop", 4)->level, 0u);
    CHECK(rabia_kv_lookup((const uint8_t *)"featurelevel", 12)->flags & RABIA_KV_CMD_INTERNAL);
    rabia_buf_free(&a);
    rabia_buf_free(&w);
    rabia_buf_free(&rep);
    rabia_sm_kv.destroy(sm);
}

/* LMPOP and ZMPOP at level 1: Redis 7.0.15's replies and errors. */
static void test_mpop(void)
{
    void *sm = kv_fresh_at(T0);
    KV_DO(sm, "FEATURELEVEL 1", ":1\r\n");
    KV_DO(sm, "LMPOP 1 l LEFT", "*-1\r\n");
    KV_DO(sm, "LMPOP 0 l LEFT", "-ERR numkeys should be greater than 0\r\n");
    KV_DO(sm, "LMPOP x l LEFT", "-ERR numkeys should be greater than 0\r\n");
    KV_DO(sm, "LMPOP 2 l LEFT", "-ERR syntax error\r\n");
    KV_DO(sm, "LMPOP 1 l MIDDLE", "-ERR syntax error\r\n");
    KV_DO(sm, "LMPOP 1 l LEFT COUNT 0", "-ERR count should be greater than 0\r\n");
    KV_DO(sm, "LMPOP 1 l LEFT COUNT", "-ERR syntax error\r\n");
    KV_DO(sm, "LMPOP 1 l LEFT COUNT 1 COUNT 1", "-ERR syntax error\r\n");
    KV_DO(sm, "LMPOP 1 l", "-ERR wrong number of arguments for 'lmpop' command\r\n");
    KV_DO(sm, "SET s v", "+OK\r\n");
    KV_DO(sm, "RPUSH l a b", ":2\r\n");
    KV_DO(sm, "LMPOP 2 s l LEFT", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    KV_DO(sm, "LMPOP 2 l s right COUNT 5", "*2\r\n$1\r\nl\r\n*2\r\n$1\r\nb\r\n$1\r\na\r\n");
    KV_DO(sm, "EXISTS l", ":0\r\n"); /* emptied: gone */
    KV_DO(sm, "ZADD z 1 a 2 b 3 c", ":3\r\n");
    KV_DO(sm, "ZMPOP 1 z MIN", "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    KV_DO(sm, "ZMPOP 2 nokey z max COUNT 9",
          "*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
    KV_DO(sm, "ZMPOP 1 z MIN", "*-1\r\n");
    KV_DO(sm, "ZMPOP 1 s MIN", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    KV_DO(sm, "ZMPOP 1 s LEFT", "-ERR syntax error\r\n");
    KV_DO(sm, "ZMPOP -1 s MIN", "-ERR numkeys should be greater than 0\r\n");
    /* the blocking forms: as applied (the front end parks a client whose
     * answer is the nil array); the timeout checked after the options */
    KV_DO(sm, "DEL s", ":1\r\n");
    KV_DO(sm, "ZADD z 1 a 2 b 3 c", ":3\r\n");
    KV_DO(sm, "RPUSH l x y", ":2\r\n");
    KV_DO(sm, "SET s v", "+OK\r\n");
    KV_DO(sm, "BZPOPMIN nz z 0", "*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n");
    KV_DO(sm, "BZPOPMAX z 0.5", "*3\r\n$1\r\nz\r\n$1\r\nc\r\n$1\r\n3\r\n");
    KV_DO(sm, "BZPOPMIN s z 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    KV_DO(sm, "BZPOPMIN z x", "-ERR timeout is not a float or out of range\r\n");
    KV_DO(sm, "BZPOPMIN nz 1", "*-1\r\n");
    KV_DO(sm, "BLMPOP 0 2 nl l RIGHT COUNT 5", "*2\r\n$1\r\nl\r\n*2\r\n$1\r\ny\r\n$1\r\nx\r\n");
    KV_DO(sm, "BZMPOP 0 1 z MIN COUNT 1", "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
    KV_DO(sm, "BLMPOP x 1 l LEFT", "-ERR timeout is not a float or out of range\r\n");
    KV_DO(sm, "BZMPOP -1 1 z MIN", "-ERR timeout is negative\r\n");
    KV_DO(sm, "BLMPOP x 0 l LEFT", "-ERR numkeys should be greater than 0\r\n");
    KV_DO(sm, "BZMPOP -1 1 z MIN COUNT 0", "-ERR count should be greater than 0\r\n");
    KV_DO(sm, "BLMPOP 1 1 nl LEFT", "*-1\r\n");
    rabia_sm_kv.destroy(sm);
}

int main(void)
{
    RUN(test_level0);
    RUN(test_raise);
    RUN(test_internal);
    RUN(test_mpop);
    return CHECK_DONE();
}
