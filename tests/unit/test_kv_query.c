/* The KV store's reads answered outside the log (rabia_sm_kv.query, the
 * read index: core.h READ INDEX): which operations it takes, that each
 * answers what the same command applied through the log answers, and that
 * none changes anything (the snapshot's bytes, the state hash, the key
 * count), an expired key and SCAN's reclaiming included. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "kv_check.h"

#define T0 1700000000000ull

/* query's verdict on a line (reply NULL): 0 a read it answers, 1 the log */
static int classify(void *sm, const char *line)
{
    struct rabia_buf op = {0};
    kv_encode_line(&op, line);
    int rc = rabia_sm_kv.query(sm, op.data, op.len, 0, NULL);
    rabia_buf_free(&op);
    return rc;
}

/* the reader's wall clock for queried() (the store's clock reads T0) */
static uint64_t query_now = T0;

static const char *queried(void *sm, const char *line)
{
    static struct rabia_buf rep;
    struct rabia_buf op = {0};
    kv_encode_line(&op, line);
    rabia_buf_clear(&rep);
    CHECK_EQ(rabia_sm_kv.query(sm, op.data, op.len, query_now, &rep), 0);
    rabia_buf_put_u8(&rep, 0);
    rabia_buf_free(&op);
    return (const char *)rep.data;
}

static void snap_of(void *sm, struct rabia_buf *out)
{
    rabia_buf_clear(out);
    CHECK_EQ(rabia_sm_kv.snapshot(sm, out), 0);
}

static uint64_t hash_of(void *sm)
{
    uint64_t h = 0;
    CHECK_EQ(rabia_sm_kv.state_hash(sm, &h), 0);
    return h;
}

static void fill(void *sm)
{
    static const char *const lines[] = {
        "SET s hello", "SET n 41", "HSET h f1 v1 f2 v2 f3 v3", "RPUSH l a b c d e", "SADD st x y z",
        "ZADD z 1 one 2 two 3 three", "GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
        "PFADD hll a b c", "SETBIT bits 7 1", "SET ttl v", "PEXPIRE ttl 100000", "MSET k1 1 k2 2 k3 3",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) kv_reply(sm, lines[i]);
    /* database 3, through @DB as the RESP front end sends it */
    struct rabia_buf in = {0}, op = {0}, rep = {0};
    kv_encode_line(&in, "SET d3 three");
    const char *argv[3] = {"@DB", "3", (const char *)in.data};
    size_t lens[3] = {3, 1, in.len};
    CHECK_EQ(rabia_kv_encode_argv(&op, 3, argv, lens), 0);
    CHECK_EQ(rabia_sm_kv.apply(sm, op.data, op.len, &rep), 0);
    rabia_buf_free(&in);
    rabia_buf_free(&op);
    rabia_buf_free(&rep);
}

/* Reads: the query's reply equals the log's (applied to a copy restored
 * from a snapshot, at the same clock), and the store is left as it was. */
static const char *const READS[] = {
    "GET s", "GET missing", "MGET s n missing", "STRLEN s", "GETRANGE s 1 3", "EXISTS s n missing", "TYPE h",
    "PTTL s", "EXPIRETIME ttl", "HGET h f2", "HGETALL h", "HKEYS h", "HVALS h", "HLEN h", "HMGET h f1 x",
    "HEXISTS h f3", "HSTRLEN h f1", "LRANGE l 0 -1", "LLEN l", "LINDEX l 2", "LPOS l c", "SMEMBERS st", "SCARD st",
    "SISMEMBER st y", "SMISMEMBER st x q", "SINTER st st", "SUNION st st", "SDIFF st st", "ZRANGE z 0 -1 WITHSCORES",
    "ZSCORE z two", "ZRANK z three", "ZCARD z", "ZCOUNT z 1 2", "ZRANGEBYSCORE z 2 +inf", "ZREVRANGE z 0 0",
    "GEOPOS g Palermo", "GEODIST g Palermo Catania km", "GEOSEARCH g FROMMEMBER Palermo BYRADIUS 200 km ASC",
    "GETBIT bits 7", "BITCOUNT bits", "BITPOS bits 1", "KEYS k*", "SCAN 0 COUNT 100", "SORT_RO l ALPHA",
    "LCS s s", "HSCAN h 0", "SSCAN st 0", "ZSCAN z 0", "GET n extra", "NOSUCHCOMMAND",
};

static void test_reads_answer_as_the_log(void)
{
    void *sm = kv_fresh_level(T0, RABIA_KV_FEATURE_LEVEL);
    fill(sm);
    struct rabia_buf before = {0}, after = {0};
    snap_of(sm, &before);
    uint64_t h0 = hash_of(sm), keys0 = rabia_kv_count(sm);
    for (size_t i = 0; i < sizeof READS / sizeof READS[0]; i++) {
        if (i == sizeof READS / sizeof READS[0] - 2) { /* an arity error is an answer too */
            CHECK_EQ(classify(sm, READS[i]), 0);
        } else if (i == sizeof READS / sizeof READS[0] - 1) { /* unknown: the log answers it */
            CHECK_EQ(classify(sm, READS[i]), 1);
            continue;
        } else {
            CHECK_EQ(classify(sm, READS[i]), 0);
        }
        char want[8192];
        void *copy = kv_restored_alike(sm);
        snprintf(want, sizeof want, "%s", kv_reply(copy, READS[i]));
        rabia_sm_kv.destroy(copy);
        const char *got = queried(sm, READS[i]);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "%s\n  log   %s\n  query %s\n", READS[i], want, got);
            CHECK(0);
        }
    }
    /* the random ones answer from a copy of the generator: a member, and nothing moves */
    for (int i = 0; i < 20; i++) {
        CHECK(strstr(queried(sm, "RANDOMKEY"), "$") != NULL);
        const char *m = queried(sm, "SRANDMEMBER st");
        CHECK(!strcmp(m, "$1\r\nx\r\n") || !strcmp(m, "$1\r\ny\r\n") || !strcmp(m, "$1\r\nz\r\n"));
        CHECK(strstr(queried(sm, "HRANDFIELD h 2"), "*2\r\n") != NULL);
        CHECK(strstr(queried(sm, "ZRANDMEMBER z"), "$") != NULL);
    }
    snap_of(sm, &after);
    CHECK_EQ(after.len, before.len);
    CHECK(memcmp(after.data, before.data, before.len) == 0);
    CHECK_EQ(hash_of(sm), h0);
    CHECK_EQ(rabia_kv_count(sm), keys0);
    /* database 3 through @DB; a bad @DB goes to the log (it answers the error) */
    struct rabia_buf in = {0}, op = {0}, rep = {0};
    kv_encode_line(&in, "GET d3");
    const char *argv[3] = {"@DB", "3", (const char *)in.data};
    size_t lens[3] = {3, 1, in.len};
    CHECK_EQ(rabia_kv_encode_argv(&op, 3, argv, lens), 0);
    CHECK_EQ(rabia_sm_kv.query(sm, op.data, op.len, T0, &rep), 0);
    CHECK_EQ(rep.len, strlen("$5\r\nthree\r\n"));
    CHECK(memcmp(rep.data, "$5\r\nthree\r\n", rep.len) == 0);
    argv[1] = "16";
    lens[1] = 2;
    rabia_buf_clear(&op);
    CHECK_EQ(rabia_kv_encode_argv(&op, 3, argv, lens), 0);
    CHECK_EQ(rabia_sm_kv.query(sm, op.data, op.len, 0, NULL), 1);
    rabia_buf_free(&in);
    rabia_buf_free(&op);
    rabia_buf_free(&rep);
    rabia_buf_free(&before);
    rabia_buf_free(&after);
    rabia_sm_kv.destroy(sm);
}

/* Writes, PFCOUNT (it caches the cardinality in the string), scripts
 * (EVAL_RO caches its body), transactions, WATCH's versions and the
 * replicas' own operations go through the log; below feature level 6
 * everything does (an older replica would take a round for a recovering
 * replica's question). */
static void test_what_goes_through_the_log(void)
{
    void *sm = kv_fresh_level(T0, RABIA_KV_FEATURE_LEVEL);
    fill(sm);
    static const char *const LOG[] = {
        "SET s x", "INCR n", "DEL s", "EXPIRE s 10", "PFCOUNT hll", "EVAL_RO return 1 0", "EVALSHA_RO abc 0",
        "TXN", "WATCHVER s", "SWEEP 0 10", "BLPOP l 0", "GETDEL s", "GETEX s", "SUBSCRIBE c", "PUBLISH c m",
        "SPOP st", "SORT l", "GEORADIUS g 15 37 200 km", "ZRANGESTORE d z 0 -1",
    };
    for (size_t i = 0; i < sizeof LOG / sizeof LOG[0]; i++) {
        if (classify(sm, LOG[i]) != 1) {
            fprintf(stderr, "%s: taken as a read\n", LOG[i]);
            CHECK(0);
        }
    }
    rabia_sm_kv.destroy(sm);
    sm = kv_fresh_level(T0, 5);
    kv_reply(sm, "SET s hello");
    CHECK_EQ(classify(sm, "GET s"), 1);
    rabia_sm_kv.destroy(sm);
}

/* An expired key reads as absent and stays until the log reclaims it
 * (a write that finds it, a SCAN that meets it, or the sweep): a SCAN
 * that meets one goes through the log, which deletes it as Redis's SCAN
 * does (so DBSIZE stops counting it); one that meets none is answered. */
static void test_expired_key_stays(void)
{
    void *sm = kv_fresh_level(T0, RABIA_KV_FEATURE_LEVEL);
    kv_reply(sm, "SET a 1");
    kv_reply(sm, "SET b 2");
    kv_reply(sm, "PEXPIRE a 50");
    kv_at(sm, 9, T0 + 100);
    uint64_t keys = rabia_kv_count(sm), h = hash_of(sm);
    CHECK(!strcmp(queried(sm, "GET a"), "$-1\r\n"));
    CHECK(!strcmp(queried(sm, "EXISTS a b"), ":1\r\n"));
    CHECK(!strcmp(queried(sm, "TTL a"), ":-2\r\n"));
    struct rabia_buf op = {0}, rep = {0};
    kv_encode_line(&op, "SCAN 0 COUNT 10");
    CHECK_EQ(rabia_sm_kv.query(sm, op.data, op.len, query_now, &rep), 1); /* meets a: the log's */
    CHECK_EQ(rep.len, 0);
    CHECK_EQ(rabia_kv_count(sm), keys);
    CHECK_EQ(hash_of(sm), h);
    KV_DO(sm, "GET a", "$-1\r\n"); /* the log's read reclaims it */
    CHECK_EQ(rabia_kv_count(sm), keys - 1);
    CHECK(strstr(queried(sm, "SCAN 0 COUNT 10"), "$1\r\nb\r\n") != NULL); /* none expired: answered */
    kv_reply(sm, "SET c 3");
    kv_reply(sm, "PEXPIRE c 50");
    kv_at(sm, 10, T0 + 200);
    CHECK_EQ(rabia_kv_count(sm), keys);
    kv_reply(sm, "SCAN 0 COUNT 10"); /* through the log: it deletes c */
    CHECK_EQ(rabia_kv_count(sm), keys - 1);
    rabia_buf_free(&op);
    rabia_buf_free(&rep);
    rabia_sm_kv.destroy(sm);
}

/* The log's clock (the last batch's time) lags the reader's when idle: an
 * answer that depends on which of them is right goes through the log,
 * whose batch carries the reader's time. A key whose expiry lies between
 * the two, and a TTL that counts from now; a key the log's clock expired
 * already, or far from expiring, is answered here. */
static int query_rc(void *sm, const char *line, uint64_t now)
{
    struct rabia_buf op = {0}, rep = {0};
    kv_encode_line(&op, line);
    int rc = rabia_sm_kv.query(sm, op.data, op.len, now, &rep);
    if (rc == 1) CHECK_EQ(rep.len, 0); /* nothing appended */
    rabia_buf_free(&op);
    rabia_buf_free(&rep);
    return rc;
}

static void test_clock(void)
{
    void *sm = kv_fresh_level(T0, RABIA_KV_FEATURE_LEVEL);
    kv_reply(sm, "SET a 1");
    kv_reply(sm, "PEXPIRE a 50");
    kv_reply(sm, "SET b 2");
    kv_reply(sm, "PEXPIRE b 3600000");
    kv_reply(sm, "SET c 3");
    CHECK_EQ(query_rc(sm, "GET a", T0 + 10), 0); /* alive by both clocks */
    CHECK_EQ(query_rc(sm, "GET a", T0 + 100), 1); /* expired by the reader's only */
    CHECK_EQ(query_rc(sm, "EXISTS a b c", T0 + 100), 1);
    CHECK_EQ(query_rc(sm, "SCAN 0", T0 + 100), 1);
    CHECK_EQ(query_rc(sm, "GET b", T0 + 100), 0);
    CHECK_EQ(query_rc(sm, "EXPIRETIME b", T0 + 100), 0);
    CHECK_EQ(query_rc(sm, "TTL b", T0 + 10), 1); /* counts from now */
    CHECK_EQ(query_rc(sm, "PTTL c", T0 + 10), 0); /* no expiry: -1 */
    /* DBSIZE counts keys expired and not reclaimed yet: the log's count,
     * where this replica's pending SWEEP goes first */
    CHECK_EQ(query_rc(sm, "DBSIZE", T0 + 10), 1);
    void *plain = kv_fresh_level(T0, RABIA_KV_FEATURE_LEVEL);
    kv_reply(plain, "SET c 3");
    CHECK_EQ(query_rc(plain, "DBSIZE", T0 + 10), 0);
    rabia_sm_kv.destroy(plain);
    query_now = T0 + 100;
    CHECK(!strcmp(queried(sm, "GET c"), "$1\r\n3\r\n"));
    kv_at(sm, 5, T0 + 100); /* a batch moves the log's clock past a's expiry */
    CHECK(!strcmp(queried(sm, "GET a"), "$-1\r\n"));
    CHECK(!strcmp(queried(sm, "EXISTS a b c"), ":2\r\n"));
    query_now = T0;
    rabia_sm_kv.destroy(sm);
}

int main(void)
{
    RUN(test_clock);
    RUN(test_reads_answer_as_the_log);
    RUN(test_what_goes_through_the_log);
    RUN(test_expired_key_stays);
    return CHECK_DONE();
}
