/* Sets (kv/t_set.c): replies checked byte for byte against Redis 7.0.15
 * (the expected strings were produced by a real redis-server), the
 * intset -> dict conversions, hash-order replies of dict sets, the set
 * algebra, SSCAN, SPOP / SRANDMEMBER, determinism across table histories,
 * and the snapshot encoding (round trips, truncations, corruptions). */
#include "kv_store_check.h"

/* The saved encoding of the value at key. */
static void save_of(struct kv_store *s, const char *key, struct rabia_buf *b)
{
    struct kv_obj *o = obj(s, key);
    RABIA_ASSERT(o && o->type == KV_SET);
    rabia_buf_clear(b);
    CHECK_EQ(kv_set_ops.save(s, o, b), 0);
}

/* SADD key m<from> .. m<to-1> (prefix "" for integers) */
static void fill(struct kv_store *s, const char *key, const char *prefix, int from, int to)
{
    char line[128];
    for (int i = from; i < to; i++) {
        snprintf(line, sizeof line, "SADD %s %s%d", key, prefix, i);
        run_in(s, line);
    }
}

/* A reply (a flat array of bulks) as a list of members, copied. */
struct members {
    size_t n;
    char *v[4096];
};

static void members_of(const char *r, struct members *m)
{
    static struct item it[4096];
    m->n = items(r, it, 4096);
    for (size_t i = 0; i < m->n; i++) {
        m->v[i] = malloc((size_t)it[i].n + 1);
        memcpy(m->v[i], it[i].p, (size_t)it[i].n);
        m->v[i][it[i].n] = 0;
    }
}

static void members_free(struct members *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i]);
    m->n = 0;
}

static bool has(const struct members *m, const char *s)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i], s) == 0)
            return true;
    return false;
}

static bool in_hash_order(const struct members *m)
{
    for (size_t i = 1; i < m->n; i++)
        if (kv_hash((const uint8_t *)m->v[i - 1], strlen(m->v[i - 1])) >=
            kv_hash((const uint8_t *)m->v[i], strlen(m->v[i])))
            return false;
    return true;
}

static bool unique(const struct members *m)
{
    for (size_t i = 0; i < m->n; i++)
        for (size_t j = i + 1; j < m->n; j++)
            if (strcmp(m->v[i], m->v[j]) == 0)
                return false;
    return true;
}

/* ------------------------------------------------------------------ */

static void test_basic(void)
{
    st = store_new();
    DO("SADD s 3 1 2 1", ":3\r\n");
    DO("SMEMBERS s", "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    DO("SADD s -5 10", ":2\r\n");
    DO("SMEMBERS s", "*5\r\n$2\r\n-5\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$2\r\n10\r\n");
    DO("SCARD s", ":5\r\n");
    DO("SISMEMBER s 2", ":1\r\n");
    DO("SISMEMBER s 02", ":0\r\n");
    DO("SISMEMBER s x", ":0\r\n");
    DO("SISMEMBER nokey a", ":0\r\n");
    DO("SMISMEMBER s 1 x 10 -5 -6", "*5\r\n:1\r\n:0\r\n:1\r\n:1\r\n:0\r\n");
    DO("SMISMEMBER nokey a b", "*2\r\n:0\r\n:0\r\n");
    DO("SREM s 2 x 02 2", ":1\r\n");
    DO("SMEMBERS s", "*4\r\n$2\r\n-5\r\n$1\r\n1\r\n$1\r\n3\r\n$2\r\n10\r\n");
    DO("SREM nokey a", ":0\r\n");
    DO("SADD t 9223372036854775807 -9223372036854775808 0", ":3\r\n");
    DO("SMEMBERS t", "*3\r\n$20\r\n-9223372036854775808\r\n$1\r\n0\r\n$19\r\n9223372036854775807\r\n");
    DO("SSCAN t 0", "*2\r\n$1\r\n0\r\n*3\r\n$20\r\n-9223372036854775808\r\n$1\r\n0\r\n$19\r\n9223372036854775807\r\n");
    DO("SSCAN t 0 MATCH -*", "*2\r\n$1\r\n0\r\n*1\r\n$20\r\n-9223372036854775808\r\n");
    DO("SSCAN t 7 COUNT 1", "*2\r\n$1\r\n0\r\n*3\r\n$20\r\n-9223372036854775808\r\n$1\r\n0\r\n$19\r\n9223372036854775807\r\n");
    DO("SSCAN t 0 MATCH *7", "*2\r\n$1\r\n0\r\n*1\r\n$19\r\n9223372036854775807\r\n");
    DO("SSCAN nokey 0", "*2\r\n$1\r\n0\r\n*0\r\n");
    DO("SSCAN nokey 0 foo", "*2\r\n$1\r\n0\r\n*0\r\n");
    DO("SSCAN t x", "-ERR invalid cursor\r\n");
    DO("SSCAN t 0 COUNT 0", "-ERR syntax error\r\n");
    DO("SSCAN t 0 foo", "-ERR syntax error\r\n");
    DO("SSCAN t 0 MATCH", "-ERR syntax error\r\n");
    DO("SREM t 0 9223372036854775807 -9223372036854775808", ":3\r\n");
    DO("EXISTS t", ":0\r\n");
    DO("SCARD nokey", ":0\r\n");
    DO("SMEMBERS nokey", "*0\r\n");
    DO("SPOP nokey", "$-1\r\n");
    DO("SPOP nokey 3", "*0\r\n");
    DO("SPOP nokey 0", "*0\r\n");
    DO("SPOP nokey -1", "-ERR value is out of range, must be positive\r\n");
    DO("SPOP nokey x", "-ERR value is out of range, must be positive\r\n");
    DO("SPOP s 1 2", "-ERR syntax error\r\n");
    DO("SPOP s 0", "*0\r\n");
    DO("SPOP s -0", "-ERR value is out of range, must be positive\r\n");
    DO("SPOP s 9223372036854775808", "-ERR value is out of range, must be positive\r\n");
    DO("SRANDMEMBER nokey", "$-1\r\n");
    DO("SRANDMEMBER nokey 3", "*0\r\n");
    DO("SRANDMEMBER nokey -3", "*0\r\n");
    DO("SRANDMEMBER nokey x", "-ERR value is not an integer or out of range\r\n");
    DO("SRANDMEMBER s 1 2", "-ERR syntax error\r\n");
    DO("SRANDMEMBER s -9223372036854775808", "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n");
    DO("SRANDMEMBER s 100", "*4\r\n$2\r\n-5\r\n$1\r\n1\r\n$1\r\n3\r\n$2\r\n10\r\n");
    DO("SRANDMEMBER s 4", "*4\r\n$2\r\n-5\r\n$1\r\n1\r\n$1\r\n3\r\n$2\r\n10\r\n");
    DO("SRANDMEMBER s 0", "*0\r\n");
    DO("SADD one 42", ":1\r\n");
    DO("SRANDMEMBER one -3", "*3\r\n$2\r\n42\r\n$2\r\n42\r\n$2\r\n42\r\n");
    DO("SPOP one", "$2\r\n42\r\n");
    DO("EXISTS one", ":0\r\n");
    DO("SADD one 42", ":1\r\n");
    DO("SPOP one 5", "*1\r\n$2\r\n42\r\n");
    DO("EXISTS one", ":0\r\n");
    DO("SADD one x", ":1\r\n");
    DO("SPOP one 1", "*1\r\n$1\r\nx\r\n");
    DO("EXISTS one", ":0\r\n");
    DO("SADD ss 1 2 3", ":3\r\n");
    DO("SPOP ss 3", "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    DO("EXISTS ss", ":0\r\n");
    DO("HSET h a 1", ":1\r\n");
    DO("SADD h x", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SREM h x", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SISMEMBER h x", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SMISMEMBER h x", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SMEMBERS h", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SCARD h", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SPOP h", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SPOP h 1", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SPOP h -1", "-ERR value is out of range, must be positive\r\n");
    DO("SPOP h x", "-ERR value is out of range, must be positive\r\n");
    DO("SPOP h 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SRANDMEMBER h", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SRANDMEMBER h 1", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SRANDMEMBER h x", "-ERR value is not an integer or out of range\r\n");
    DO("SSCAN h 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SSCAN h x", "-ERR invalid cursor\r\n");
    DO("SSCAN h 0 COUNT 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SADD", "-ERR wrong number of arguments for 'sadd' command\r\n");
    DO("SADD s", "-ERR wrong number of arguments for 'sadd' command\r\n");
    DO("SMISMEMBER s", "-ERR wrong number of arguments for 'smismember' command\r\n");
    DO("SINTERCARD 1", "-ERR wrong number of arguments for 'sintercard' command\r\n");
    DO("SMOVE a b", "-ERR wrong number of arguments for 'smove' command\r\n");
    /* binary members */
    const char *bin[] = {"SADD", "b", "m\0\r\n", ""};
    const uint32_t binl[] = {4, 1, 4, 0};
    CHECK(strcmp(run_argv(st, 4, bin, binl), ":2\r\n") == 0);
    const char *is[] = {"SMISMEMBER", "b", "m\0\r\n", "", "m"};
    const uint32_t isl[] = {10, 1, 4, 0, 1};
    CHECK(strcmp(run_argv(st, 5, is, isl), "*3\r\n:1\r\n:1\r\n:0\r\n") == 0);
    store_free(st);
}

static void test_multi(void)
{
    st = store_new();
    DO("SADD a 1 2 3 4 5", ":5\r\n");
    DO("SADD b 4 5 6 7", ":4\r\n");
    DO("SADD c 5 7 9", ":3\r\n");
    DO("HSET h x 1", ":1\r\n");
    DO("SINTER a b", "*2\r\n$1\r\n4\r\n$1\r\n5\r\n");
    DO("SINTER a b c", "*1\r\n$1\r\n5\r\n");
    DO("SINTER a nokey", "*0\r\n");
    DO("SINTER nokey a", "*0\r\n");
    DO("SINTER a h", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SINTER nokey h", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SINTER h nokey", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SINTER a a", "*5\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n");
    DO("SUNION a b c", "*8\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n$1\r\n6\r\n$1\r\n7\r\n$1\r\n9\r\n");
    DO("SUNION a nokey", "*5\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n");
    DO("SUNION nokey", "*0\r\n");
    DO("SUNION nokey h", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SUNION a h", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SDIFF a b", "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    DO("SDIFF a b c", "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    DO("SDIFF a nokey", "*5\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n");
    DO("SDIFF nokey a", "*0\r\n");
    DO("SDIFF a a", "*0\r\n");
    DO("SDIFF a b a", "*0\r\n");
    DO("SDIFF nokey h", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SDIFF a h", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SINTERSTORE d a b", ":2\r\n");
    DO("SMEMBERS d", "*2\r\n$1\r\n4\r\n$1\r\n5\r\n");
    DO("SINTERSTORE d a nokey", ":0\r\n");
    DO("EXISTS d", ":0\r\n");
    DO("SINTERSTORE h a b", ":2\r\n");
    DO("TYPE h", "+set\r\n");
    DO("SMEMBERS h", "*2\r\n$1\r\n4\r\n$1\r\n5\r\n");
    DO("HSET h x 1", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SINTERSTORE d a h", ":2\r\n");
    DO("SUNIONSTORE d a b", ":7\r\n");
    DO("SMEMBERS d", "*7\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n$1\r\n6\r\n$1\r\n7\r\n");
    DO("SUNIONSTORE d nokey", ":0\r\n");
    DO("EXISTS d", ":0\r\n");
    DO("SUNIONSTORE a a b", ":7\r\n");
    DO("SMEMBERS a", "*7\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n$1\r\n6\r\n$1\r\n7\r\n");
    DO("SDIFFSTORE d a b", ":3\r\n");
    DO("SMEMBERS d", "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    DO("SDIFFSTORE d a a", ":0\r\n");
    DO("EXISTS d", ":0\r\n");
    DO("SDIFFSTORE d a h", ":5\r\n");
    DO("SADD d 1", ":0\r\n");
    DO("SDIFFSTORE d d", ":5\r\n");
    DO("SMEMBERS d", "*5\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n6\r\n$1\r\n7\r\n");
    DO("SINTERCARD 0 a", "-ERR numkeys should be greater than 0\r\n");
    DO("SINTERCARD -1 a", "-ERR numkeys should be greater than 0\r\n");
    DO("SINTERCARD x a", "-ERR numkeys should be greater than 0\r\n");
    DO("SINTERCARD 2 a", "-ERR Number of keys can't be greater than number of args\r\n");
    DO("SINTERCARD 1 a LIMIT", "-ERR syntax error\r\n");
    DO("SINTERCARD 1 a LIMIT -1", "-ERR LIMIT can't be negative\r\n");
    DO("SINTERCARD 1 a LIMIT x", "-ERR LIMIT can't be negative\r\n");
    DO("SINTERCARD 1 a LIMIT 1", ":1\r\n");
    DO("SINTERCARD 1 a FOO 1", "-ERR syntax error\r\n");
    DO("SINTERCARD 1 a h", "-ERR syntax error\r\n");
    DO("SINTERCARD 2 a h", ":2\r\n");
    DO("SINTERCARD 2 nokey h", ":0\r\n");
    DO("SINTERCARD 2 h nokey", ":0\r\n");
    DO("SINTERCARD 1 a LIMIT 0", ":7\r\n");
    DO("SINTERCARD 2 a b", ":4\r\n");
    DO("SINTERCARD 2 a b LIMIT 1", ":1\r\n");
    DO("SINTERCARD 2 a b LIMIT 2 LIMIT 1", ":1\r\n");
    DO("SINTERCARD 2 a nokey", ":0\r\n");
    DO("SINTERCARD 1 a LIMIT 9223372036854775808", "-ERR LIMIT can't be negative\r\n");
    DO("SINTERCARD 9223372036854775808 a", "-ERR numkeys should be greater than 0\r\n");
    DO("SINTERCARD 01 a", "-ERR numkeys should be greater than 0\r\n");
    DO("SMOVE a b 3", ":1\r\n");
    DO("SMOVE a b 3", ":0\r\n");
    DO("SMOVE nokey b 3", ":0\r\n");
    DO("SMOVE a h 2", ":1\r\n");
    DO("SMOVE h a 2", ":1\r\n");
    DO("SMOVE a a 2", ":1\r\n");
    DO("SMOVE a a 99", ":0\r\n");
    DO("SMOVE nokey h 1", ":0\r\n");
    DO("SMOVE a newkey 1", ":1\r\n");
    DO("SMEMBERS newkey", "*1\r\n$1\r\n1\r\n");
    DO("SMOVE newkey a 1", ":1\r\n");
    DO("EXISTS newkey", ":0\r\n");
    DO("SMOVE a b 4", ":1\r\n");
    DO("SMEMBERS a", "*5\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n5\r\n$1\r\n6\r\n$1\r\n7\r\n");
    DO("SMEMBERS b", "*5\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n$1\r\n6\r\n$1\r\n7\r\n");
    DO("SADD w x y", ":2\r\n");
    DO("SMOVE w n y", ":1\r\n");
    DO("SMEMBERS n", "*1\r\n$1\r\ny\r\n");
    DO("SMOVE b n 7", ":1\r\n");
    DO("SCARD n", ":2\r\n");
    DO("SISMEMBER n 7", ":1\r\n");
    DO("SADD bb 1 2", ":2\r\n");
    DO("SMOVE bb n x", ":0\r\n");
    store_free(st);
    st = store_new();
    DO("SADD a 1 2", ":2\r\n");
    DO("HSET hh x 1", ":1\r\n");
    DO("SMOVE a hh 2", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SMOVE hh a 2", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SMOVE hh hh 2", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SMOVE nokey hh 1", ":0\r\n");
    DO("SINTERSTORE d a hh", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SUNIONSTORE d hh", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SDIFFSTORE d nokey hh", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SINTERCARD 2 a hh", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SINTERCARD 1 hh", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    DO("SMEMBERS a", "*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    DO("EXISTS d", ":0\r\n");
    store_free(st);
}

/* An intset holds canonical integers only, at most 512 of them, sorted;
 * anything else makes a dict, for good. */
static void test_encoding(void)
{
    st = store_new();
    const char *noncanon[] = {"007", "-0", "+1", " 1", "1 ", "9223372036854775808",
                              "-9223372036854775809", "1.0", "", "0x1"};
    for (size_t i = 0; i < sizeof noncanon / sizeof noncanon[0]; i++) {
        const char *argv[] = {"SADD", "s", "5", noncanon[i]};
        run_argv(st, 4, argv, NULL);
        CHECK_EQ(obj(st, "s")->enc, 1);
        const char *del[] = {"DEL", "s"};
        run_argv(st, 2, del, NULL);
    }
    /* 512 integers, added out of order: an intset, replied sorted */
    static char line[16384], want[16384];
    size_t at = (size_t)snprintf(line, sizeof line, "SADD s");
    for (int i = 0; i < 512; i++)
        at += (size_t)snprintf(line + at, sizeof line - at, " %d", (i * 37) % 512 - 256);
    DO(line, ":512\r\n");
    CHECK_EQ(obj(st, "s")->enc, 0);
    at = (size_t)snprintf(want, sizeof want, "*512\r\n");
    for (int i = -256; i < 256; i++) {
        char m[16];
        int ml = snprintf(m, sizeof m, "%d", i);
        at += (size_t)snprintf(want + at, sizeof want - at, "$%d\r\n%s\r\n", ml, m);
    }
    DO("SMEMBERS s", want);
    DO("SADD s 0", ":0\r\n");
    CHECK_EQ(obj(st, "s")->enc, 0);
    DO("SADD s 1000", ":1\r\n");
    CHECK_EQ(obj(st, "s")->enc, 1);
    DO("SCARD s", ":513\r\n");
    DO("SREM s 1000", ":1\r\n");
    CHECK_EQ(obj(st, "s")->enc, 1); /* never back */
    DO("SISMEMBER s -256", ":1\r\n");
    DO("SISMEMBER s 256", ":0\r\n");
    /* results are built as new sets: an intset when they can be */
    DO("SUNIONSTORE u s", ":512\r\n");
    CHECK_EQ(obj(st, "u")->enc, 0);
    DO("SMEMBERS u", want);
    DO("SADD big 1000", ":1\r\n");
    DO("SUNIONSTORE u s big", ":513\r\n");
    CHECK_EQ(obj(st, "u")->enc, 1);
    DO("SINTERSTORE i u s", ":512\r\n");
    CHECK_EQ(obj(st, "i")->enc, 0);
    DO("SADD x a 5", ":2\r\n");
    DO("SDIFFSTORE d x u", ":1\r\n");
    CHECK_EQ(obj(st, "d")->enc, 1);
    DO("SMEMBERS d", "*1\r\n$1\r\na\r\n");
    DO("SREM x a", ":1\r\n");
    DO("SDIFFSTORE d x big", ":1\r\n");
    CHECK_EQ(obj(st, "d")->enc, 0);
    /* SMOVE creates the destination from the member */
    DO("SMOVE x m1 5", ":1\r\n");
    CHECK_EQ(obj(st, "m1")->enc, 0);
    DO("SADD x b", ":1\r\n");
    DO("SMOVE x m2 b", ":1\r\n");
    CHECK_EQ(obj(st, "m2")->enc, 1);
    store_free(st);
}

/* Dict sets reply in hash order; the set algebra on dicts and on mixed
 * encodings gives the right members. */
static void test_dict(void)
{
    st = store_new();
    fill(st, "a", "m", 0, 1000);  /* m0..m999 */
    fill(st, "b", "m", 500, 1500); /* m500..m1499 */
    fill(st, "i", "", 0, 300);    /* intset 0..299 */
    fill(st, "mix", "", 0, 100);
    fill(st, "mix", "m", 990, 1010); /* 0..99, m990..m1009: a dict */
    CHECK_EQ(obj(st, "a")->enc, 1);
    CHECK_EQ(obj(st, "i")->enc, 0);
    CHECK_EQ(obj(st, "mix")->enc, 1);
    static struct members m;
    members_of(run_in(st, "SMEMBERS a"), &m);
    CHECK_EQ(m.n, 1000);
    CHECK(in_hash_order(&m));
    members_free(&m);

    members_of(run_in(st, "SINTER a b"), &m);
    CHECK_EQ(m.n, 500);
    CHECK(in_hash_order(&m) && has(&m, "m500") && has(&m, "m999") && !has(&m, "m1000"));
    members_free(&m);
    DO("SINTERCARD 2 a b", ":500\r\n");
    DO("SINTERCARD 2 a b LIMIT 10", ":10\r\n");
    DO("SINTERCARD 3 a b mix", ":10\r\n");
    members_of(run_in(st, "SINTER b mix a"), &m); /* mix is the smallest: its order */
    CHECK_EQ(m.n, 10);
    CHECK(in_hash_order(&m) && has(&m, "m990") && has(&m, "m999"));
    members_free(&m);
    /* the intset is the smallest: sorted; mix is a dict */
    fill(st, "i2", "", 0, 50);
    DO("SINTER mix i2", "*50\r\n$1\r\n0\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n$1\r\n6\r\n$1\r\n7\r\n$1\r\n8\r\n$1\r\n9\r\n$2\r\n10\r\n$2\r\n11\r\n$2\r\n12\r\n$2\r\n13\r\n$2\r\n14\r\n$2\r\n15\r\n$2\r\n16\r\n$2\r\n17\r\n$2\r\n18\r\n$2\r\n19\r\n$2\r\n20\r\n$2\r\n21\r\n$2\r\n22\r\n$2\r\n23\r\n$2\r\n24\r\n$2\r\n25\r\n$2\r\n26\r\n$2\r\n27\r\n$2\r\n28\r\n$2\r\n29\r\n$2\r\n30\r\n$2\r\n31\r\n$2\r\n32\r\n$2\r\n33\r\n$2\r\n34\r\n$2\r\n35\r\n$2\r\n36\r\n$2\r\n37\r\n$2\r\n38\r\n$2\r\n39\r\n$2\r\n40\r\n$2\r\n41\r\n$2\r\n42\r\n$2\r\n43\r\n$2\r\n44\r\n$2\r\n45\r\n$2\r\n46\r\n$2\r\n47\r\n$2\r\n48\r\n$2\r\n49\r\n");
    /* the dict is the smallest (120 < 300): its hash order */
    members_of(run_in(st, "SINTER i mix"), &m);
    CHECK(m.n == 100 && in_hash_order(&m));
    members_free(&m);
    /* the dict is the smallest: its (hash) order, though all are integers */
    DO("SREM i 5", ":1\r\n");
    DO("SADD d2 3 4 5 x", ":4\r\n");
    DO("SREM d2 x", ":1\r\n");
    members_of(run_in(st, "SINTER i d2"), &m);
    CHECK(m.n == 2 && has(&m, "3") && has(&m, "4") && in_hash_order(&m));
    members_free(&m);

    members_of(run_in(st, "SUNION a b"), &m);
    CHECK_EQ(m.n, 1500);
    CHECK(in_hash_order(&m));
    members_free(&m);
    members_of(run_in(st, "SDIFF a b"), &m);
    CHECK_EQ(m.n, 500);
    CHECK(in_hash_order(&m) && has(&m, "m0") && has(&m, "m499") && !has(&m, "m500"));
    members_free(&m);
    members_of(run_in(st, "SDIFF mix a i"), &m);
    CHECK(m.n == 11 && has(&m, "m1000") && has(&m, "m1009") && has(&m, "5") && in_hash_order(&m));
    members_free(&m);
    DO("SDIFFSTORE a a b", ":500\r\n");
    DO("SCARD a", ":500\r\n");
    DO("SISMEMBER a m499", ":1\r\n");
    DO("SISMEMBER a m500", ":0\r\n");
    DO("SINTERSTORE a a b", ":0\r\n");
    DO("EXISTS a", ":0\r\n");
    DO("SUNIONSTORE a b i", ":1299\r\n");
    /* SMOVE between dicts */
    DO("SMOVE b a m600", ":1\r\n"); /* already in a: moved all the same */
    DO("SISMEMBER b m600", ":0\r\n");
    DO("SMOVE a b m600", ":1\r\n");
    DO("SISMEMBER b m600", ":1\r\n");
    DO("SISMEMBER a m600", ":0\r\n");

    /* SSCAN over a dict: COUNT entries a call, each member once */
    fill(st, "z", "k", 0, 1000);
    static char seen[1000];
    char cursor[32] = "0", line[128];
    int total = 0, calls = 0;
    do {
        snprintf(line, sizeof line, "SSCAN z %s COUNT 9", cursor);
        static struct item it[4096];
        size_t n = items(run_in(st, line), it, 4096);
        CHECK(n >= 1);
        snprintf(cursor, sizeof cursor, "%.*s", (int)it[0].n, it[0].p);
        CHECK(strcmp(cursor, "0") == 0 || n - 1 >= 9);
        for (size_t i = 1; i < n; i++) {
            int k = atoi(it[i].p + 1);
            CHECK(!seen[k]);
            seen[k] = 1;
            total++;
        }
        calls++;
    } while (strcmp(cursor, "0") != 0 && calls < 10000);
    CHECK_EQ(total, 1000);
    int matched = 0;
    strcpy(cursor, "0");
    do {
        snprintf(line, sizeof line, "SSCAN z %s MATCH k1?? COUNT 50", cursor);
        static struct item it[4096];
        size_t n = items(run_in(st, line), it, 4096);
        snprintf(cursor, sizeof cursor, "%.*s", (int)it[0].n, it[0].p);
        for (size_t i = 1; i < n; i++) {
            CHECK(it[i].n == 4 && it[i].p[1] == '1');
            matched++;
        }
    } while (strcmp(cursor, "0") != 0);
    CHECK_EQ(matched, 100);
    DO("SSCAN z 0 COUNT 0", "-ERR syntax error\r\n");
    DO("SSCAN z 0 TYPE set", "-ERR syntax error\r\n");
    CHECK(strncmp(run_in(st, "SSCAN z 18446744073709551615"), "*2\r\n$1\r\n0\r\n", 11) == 0);
    store_free(st);
}

/* Checks an SRANDMEMBER / SPOP reply of `want` members of m<0..n-1> (or
 * of the integers 0..n-1). */
static void check_rand(const char *r, long want, bool uniq, int n, bool ints)
{
    static struct members m;
    CHECK_EQ(header(r), want);
    members_of(r, &m);
    CHECK_EQ(m.n, (size_t)want);
    for (size_t i = 0; i < m.n; i++) {
        int k = atoi(m.v[i] + (ints ? 0 : 1));
        CHECK(k >= 0 && k < n && (ints || m.v[i][0] == 'm'));
    }
    if (uniq)
        CHECK(unique(&m));
    members_free(&m);
}

static void test_random(void)
{
    st = store_new();
    fill(st, "i", "", 0, 100);
    fill(st, "d", "m", 0, 1000);
    CHECK_EQ(obj(st, "i")->enc, 0);
    CHECK_EQ(obj(st, "d")->enc, 1);
    for (int rep = 0; rep < 20; rep++) {
        check_rand(run_in(st, "SRANDMEMBER i 10"), 10, true, 100, true);
        check_rand(run_in(st, "SRANDMEMBER i 99"), 99, true, 100, true);
        check_rand(run_in(st, "SRANDMEMBER i -150"), 150, false, 100, true);
        check_rand(run_in(st, "SRANDMEMBER d 10"), 10, true, 1000, false);  /* sparse */
        check_rand(run_in(st, "SRANDMEMBER d 333"), 333, true, 1000, false); /* sparse */
        check_rand(run_in(st, "SRANDMEMBER d 334"), 334, true, 1000, false); /* sampled */
        check_rand(run_in(st, "SRANDMEMBER d 999"), 999, true, 1000, false);
        check_rand(run_in(st, "SRANDMEMBER d -2000"), 2000, false, 1000, false);
        check_rand(run_in(st, "SRANDMEMBER d 5000"), 1000, true, 1000, false);
    }
    /* an intset sample is sorted, a dict sample in hash order */
    static struct members m;
    members_of(run_in(st, "SRANDMEMBER i 50"), &m);
    for (size_t i = 1; i < m.n; i++)
        CHECK(atoi(m.v[i - 1]) < atoi(m.v[i]));
    members_free(&m);
    members_of(run_in(st, "SRANDMEMBER d 20"), &m);
    CHECK(in_hash_order(&m));
    members_free(&m);
    DO("SRANDMEMBER d -1048577", "-ERR value is out of range\r\n");

    /* SPOP: all members come out once, the key goes with the last */
    static char seen[1000];
    int total = 0;
    const char *counts[] = {"SPOP d", "SPOP d 1", "SPOP d 7", "SPOP d 100", "SPOP d 300"};
    for (int rep = 0; total < 1000; rep++) {
        const char *r = run_in(st, counts[rep % 5]);
        members_of(r, &m);
        CHECK(m.n >= 1);
        for (size_t i = 0; i < m.n; i++) {
            int k = atoi(m.v[i] + 1);
            CHECK(!seen[k]);
            seen[k] = 1;
        }
        total += (int)m.n;
        members_free(&m);
        if (total < 1000) {
            char want[32];
            snprintf(want, sizeof want, ":%d\r\n", 1000 - total);
            DO("SCARD d", want);
        }
    }
    CHECK_EQ(total, 1000);
    DO("EXISTS d", ":0\r\n");
    memset(seen, 0, sizeof seen);
    total = 0;
    for (int rep = 0; total < 100; rep++) {
        members_of(run_in(st, rep % 2 ? "SPOP i" : "SPOP i 13"), &m);
        for (size_t i = 0; i < m.n; i++) {
            int k = atoi(m.v[i]);
            CHECK(k >= 0 && k < 100 && !seen[k]);
            seen[k] = 1;
        }
        total += (int)m.n;
        members_free(&m);
    }
    CHECK_EQ(total, 100);
    DO("EXISTS i", ":0\r\n");
    /* members get picked (kv_dict_at favours an entry by the hash gap
     * before it, so uniform picks it is not: about 5% stay unpicked) */
    fill(st, "d", "m", 0, 1000);
    static char hit[1000];
    for (int rep = 0; rep < 20000; rep++)
        hit[atoi(strchr(run_in(st, "SRANDMEMBER d"), 'm') + 1)] = 1;
    int hits = 0;
    for (int i = 0; i < 1000; i++)
        hits += hit[i];
    CHECK(hits > 900);
    store_free(st);
}

/* The same commands give the same replies on a store whose set was built
 * with another history (deletes, a snapshot load). */
static void test_determinism(void)
{
    struct kv_store *a = store_new(), *b = store_new(), *c = store_new();
    fill(a, "s", "m", 0, 3000);
    char line[64];
    for (int i = 1200; i < 3000; i++) {
        snprintf(line, sizeof line, "SREM s m%d", i);
        run_in(a, line);
    }
    for (int i = 1199; i >= 0; i--) {
        snprintf(line, sizeof line, "SADD s m%d", i);
        run_in(b, line);
    }
    struct rabia_buf sa = {0}, sb = {0};
    save_of(a, "s", &sa);
    save_of(b, "s", &sb);
    CHECK(sa.len == sb.len && memcmp(sa.data, sb.data, sa.len) == 0);
    struct kv_rd rd = {sa.data, sa.data + sa.len};
    struct kv_obj *o = NULL;
    CHECK_EQ(kv_set_ops.load(c, &rd, &o), 0);
    struct kv_ctx ctx = {.s = c, .db = &c->db[0]};
    CHECK(kv_add(&ctx, (const uint8_t *)"s", 1, o) != NULL);
    fill(a, "t", "m", 1100, 1300);
    fill(b, "t", "m", 1100, 1300);
    fill(c, "t", "m", 1100, 1300);

    const char *cmds[] = {"SMEMBERS s", "SRANDMEMBER s", "SRANDMEMBER s 5", "SRANDMEMBER s 500",
                          "SRANDMEMBER s -7", "SSCAN s 0 COUNT 20", "SSCAN s 9223372036854775807 COUNT 5",
                          "SINTER s t", "SUNION s t", "SDIFF t s", "SPOP s", "SPOP s 10", "SPOP s 700",
                          "SMEMBERS s"};
    static struct rabia_buf ra;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        a->rng = b->rng = c->rng = 77 + i;
        rabia_buf_clear(&ra);
        run_in(a, cmds[i]);
        rabia_buf_append(&ra, out.data, out.len);
        run_in(b, cmds[i]);
        if (!(out.len == ra.len && memcmp(out.data, ra.data, ra.len) == 0)) {
            fprintf(stderr, "b differs: %s\n", cmds[i]);
            check_failures++;
        }
        run_in(c, cmds[i]);
        if (!(out.len == ra.len && memcmp(out.data, ra.data, ra.len) == 0)) {
            fprintf(stderr, "c differs: %s\n", cmds[i]);
            check_failures++;
        }
    }
    rabia_buf_free(&ra);
    rabia_buf_free(&sa);
    rabia_buf_free(&sb);
    store_free(a);
    store_free(b);
    store_free(c);
}

static int load_bytes(struct kv_store *s, const uint8_t *p, size_t n)
{
    struct kv_rd rd = {p, p + n};
    struct kv_obj *o = NULL;
    int r = kv_set_ops.load(s, &rd, &o);
    if (r == 0)
        kv_obj_free(s, o);
    else
        CHECK(o == NULL);
    return r;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_str(struct rabia_buf *b, const char *s)
{
    rabia_buf_put_u32(b, (uint32_t)strlen(s));
    rabia_buf_append(b, s, strlen(s));
}

static void test_snapshot(void)
{
    st = store_new();
    struct rabia_buf b = {0}, b2 = {0};
    DO("SADD i 5 -3 9", ":3\r\n");
    fill(st, "d", "m", 0, 600);
    const char *keys[] = {"i", "d"};
    for (int k = 0; k < 2; k++) {
        save_of(st, keys[k], &b);
        struct kv_rd rd = {b.data, b.data + b.len};
        struct kv_obj *o = NULL;
        CHECK_EQ(kv_set_ops.load(st, &rd, &o), 0);
        CHECK(rd.p == rd.end);
        CHECK_EQ(o->enc, obj(st, keys[k])->enc);
        rabia_buf_clear(&b2);
        CHECK_EQ(kv_set_ops.save(st, o, &b2), 0);
        CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
        CHECK_EQ(kv_set_ops.mem(o), kv_set_ops.mem(obj(st, keys[k])));
        kv_obj_free(st, o);
        CHECK_EQ(kv_set_ops.copy(st, obj(st, keys[k]), &o), 0);
        rabia_buf_clear(&b2);
        CHECK_EQ(kv_set_ops.save(st, o, &b2), 0);
        CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
        kv_obj_free(st, o);
        uint64_t mem = st->mem;
        for (size_t n = 0; n < b.len; n++)
            CHECK_EQ(load_bytes(st, b.data, n), -EINVAL);
        CHECK_EQ(st->mem, mem);
    }
    /* a copy is independent of its source */
    struct kv_obj *o = NULL;
    CHECK_EQ(kv_set_ops.copy(st, obj(st, "i"), &o), 0);
    struct kv_ctx ctx = {.s = st, .db = &st->db[0]};
    CHECK(kv_add(&ctx, (const uint8_t *)"i2", 2, o) != NULL);
    DO("SADD i2 x", ":1\r\n");
    DO("SMEMBERS i", "*3\r\n$2\r\n-3\r\n$1\r\n5\r\n$1\r\n9\r\n");
    /* the intset encoding: enc 0, count, ascending int64s */
    save_of(st, "i", &b);
    struct rabia_buf want = {0};
    rabia_buf_put_u8(&want, 0);
    rabia_buf_put_u64(&want, 3);
    rabia_buf_put_u64(&want, (uint64_t)-3);
    rabia_buf_put_u64(&want, 5);
    rabia_buf_put_u64(&want, 9);
    CHECK(b.len == want.len && memcmp(b.data, want.data, b.len) == 0);

    uint64_t mem = st->mem;
    uint8_t *p = want.data;
    size_t n = want.len;
    CHECK_EQ(load_bytes(st, p, n), 0);
    p[0] = 2;
    CHECK_EQ(load_bytes(st, p, n), -EINVAL);
    p[0] = 0;
    put_u64(p + 1, 0);
    CHECK_EQ(load_bytes(st, p, n), -EINVAL);
    put_u64(p + 1, 4);
    CHECK_EQ(load_bytes(st, p, n), -EINVAL);
    put_u64(p + 1, UINT64_MAX);
    CHECK_EQ(load_bytes(st, p, n), -EINVAL);
    put_u64(p + 1, 3);
    put_u64(p + 17, (uint64_t)-3); /* a duplicate */
    CHECK_EQ(load_bytes(st, p, n), -EINVAL);
    put_u64(p + 17, (uint64_t)-4); /* out of order */
    CHECK_EQ(load_bytes(st, p, n), -EINVAL);
    put_u64(p + 17, 5);
    CHECK_EQ(load_bytes(st, p, n), 0);
    /* more than 512 integers is not an intset */
    rabia_buf_clear(&b);
    rabia_buf_put_u8(&b, 0);
    rabia_buf_put_u64(&b, 513);
    for (int i = 0; i < 513; i++)
        rabia_buf_put_u64(&b, (uint64_t)i);
    CHECK_EQ(load_bytes(st, b.data, b.len), -EINVAL);
    put_u64(b.data + 1, 512);
    CHECK_EQ(load_bytes(st, b.data, b.len), 0);
    /* dict: hash order, no duplicates */
    rabia_buf_clear(&b);
    rabia_buf_put_u8(&b, 1);
    rabia_buf_put_u64(&b, 2);
    const char *x = "x", *y = "y";
    if (kv_hash((const uint8_t *)x, 1) > kv_hash((const uint8_t *)y, 1))
        x = "y", y = "x";
    put_str(&b, x);
    put_str(&b, y);
    CHECK_EQ(load_bytes(st, b.data, b.len), 0);
    b.data[9 + 4] = (uint8_t)y[0]; /* y y */
    CHECK_EQ(load_bytes(st, b.data, b.len), -EINVAL);
    b.data[9 + 4 + 5] = (uint8_t)x[0]; /* y x */
    CHECK_EQ(load_bytes(st, b.data, b.len), -EINVAL);
    put_u64(b.data + 1, 3); /* a count the bytes cannot hold */
    CHECK_EQ(load_bytes(st, b.data, b.len), -EINVAL);
    CHECK_EQ(st->mem, mem);
    CHECK(kv_set_ops.mem(obj(st, "d")) > kv_set_ops.mem(obj(st, "i")));
    rabia_buf_free(&b);
    rabia_buf_free(&b2);
    rabia_buf_free(&want);
    store_free(st);
}

static void test_sm_snapshot(void)
{
    void *a = rabia_sm_kv.create(), *b = rabia_sm_kv.create();
    const char *cmds[][5] = {{"SADD", "i", "3", "1", "2"}, {"SADD", "d", "x", "y", "z"}};
    for (int i = 0; i < 2; i++) {
        struct rabia_buf op = {0}, rep = {0};
        CHECK_EQ(rabia_kv_encode_argv(&op, 5, cmds[i], NULL), 0);
        CHECK_EQ(rabia_sm_kv.apply(a, op.data, op.len, &rep), 0);
        rabia_buf_free(&op);
        rabia_buf_free(&rep);
    }
    struct rabia_buf s1 = {0}, s2 = {0};
    CHECK_EQ(rabia_sm_kv.snapshot(a, &s1), 0);
    CHECK_EQ(rabia_sm_kv.restore(b, s1.data, s1.len), 0);
    CHECK_EQ(rabia_sm_kv.snapshot(b, &s2), 0);
    CHECK(s1.len == s2.len && memcmp(s1.data, s2.data, s1.len) == 0);
    rabia_buf_free(&s1);
    rabia_buf_free(&s2);
    rabia_sm_kv.destroy(a);
    rabia_sm_kv.destroy(b);
}

int main(void)
{
    RUN(test_basic);
    RUN(test_multi);
    RUN(test_encoding);
    RUN(test_dict);
    RUN(test_random);
    RUN(test_determinism);
    RUN(test_snapshot);
    RUN(test_sm_snapshot);
    rabia_buf_free(&out);
    return CHECK_DONE();
}
