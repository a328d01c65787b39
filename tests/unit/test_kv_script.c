/* kv/script.c: Lua scripts. Replies as Redis 7.0.15 gives them (the full
 * comparison against a redis-server is tests/kv/difftest.py's scripting
 * family), and what a replicated store needs beyond Redis: the same
 * replies, state and state hash on every replica whatever its history (a
 * store restored from a snapshot, a fresh Lua state per run), bounds that
 * stop a runaway script at the same point everywhere, a bounded cache of
 * EVAL's scripts, and a checked snapshot section. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kv_check.h"

#define T0 1700000000000ull

static void *fresh(void)
{
    return kv_fresh_at(T0);
}

/* The reply of an argv (NULL-terminated), NUL-terminated in a static buffer. */
static const char *run(void *sm, const char *const *argv)
{
    int n = 0;
    while (argv[n])
        n++;
    return kv_reply_argv(sm, n, argv, NULL);
}
/* av's reply is want (whole), or holds it (part). */
static void expect_reply(const char *file, int line, void *sm, const char *const *av, const char *want, bool whole)
{
    const char *got = run(sm, av);
    if (whole ? strcmp(got, want) != 0 : strstr(got, want) == NULL) {
        fprintf(stderr, "%s:%d: %s\n  want %s%s\n  got  %s\n", file, line, av[1], whole ? "" : "a reply with ", want,
                got);
        check_failures++;
    }
}
#define RUN_IS(sm, want, ...) expect_reply(__FILE__, __LINE__, (sm), (const char *[]){__VA_ARGS__, NULL}, (want), true)
#define RUN_HAS(sm, part, ...) expect_reply(__FILE__, __LINE__, (sm), (const char *[]){__VA_ARGS__, NULL}, (part), false)

static uint64_t hash_of(void *sm)
{
    uint64_t h;
    CHECK_EQ(rabia_sm_kv.state_hash(sm, &h), 0);
    return h;
}

static void test_basics(void)
{
    void *sm = fresh();
    RUN_IS(sm, ":1\r\n", "EVAL", "return 1", "0");
    RUN_IS(sm, "*2\r\n$2\r\nk1\r\n$2\r\na1\r\n", "EVAL", "return {KEYS[1], ARGV[1]}", "1", "k1", "a1");
    RUN_IS(sm, "+OK\r\n", "EVAL", "return redis.call('set', KEYS[1], ARGV[1])", "1", "k", "v");
    RUN_IS(sm, "$1\r\nv\r\n", "GET", "k");
    RUN_IS(sm, "-ERR Number of keys can't be greater than number of args\r\n", "EVAL", "return 1", "2", "a");
    RUN_IS(sm, "-ERR Number of keys can't be negative\r\n", "EVAL", "return 1", "-1");
    RUN_IS(sm, "-ERR value is not an integer or out of range\r\n", "EVAL", "return 1", "x");
    /* Redis's conversions both ways */
    RUN_IS(sm, "*4\r\n:1\r\n:2\r\n*2\r\n:3\r\n$1\r\nx\r\n$-1\r\n", "EVAL", "return {1, 2.9, {3, 'x'}, false, nil, 5}",
           "0");
    RUN_IS(sm, "+fine\r\n", "EVAL", "return {ok='fine'}", "0");
    RUN_IS(sm, "-My Error\r\n", "EVAL", "return {err='My Error'}", "0");
    RUN_IS(sm, "$3\r\n1.5\r\n", "EVAL", "return {double=1.5}", "0");
    RUN_IS(sm, ":-9223372036854775808\r\n", "EVAL", "return 1e300", "0");
    RUN_IS(sm, "$7\r\nboolean\r\n", "EVAL", "return type(redis.call('get', 'nokey'))", "0");
    RUN_IS(sm, "$6\r\nstring\r\n", "EVAL", "return redis.call('type', 'k')['ok']", "0");
    /* errors, with where they were raised */
    RUN_IS(sm,
           "-ERR user_script:1: Script attempted to access nonexistent global variable 'foo' script: "
           "47e30a5d10d5694f99208f9adc4fe3bf2450edbd, on @user_script:1.\r\n",
           "EVAL", "return foo", "0");
    RUN_IS(sm,
           "-ERR user_script:1: Attempt to modify a readonly table script: e1934c7d679df0a682fa283afb2bdeec6495d463, "
           "on @user_script:1.\r\n",
           "EVAL", "foo = 1", "0");
    RUN_IS(sm, "-ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'\r\n", "EVAL",
           "return (", "0");
    {
        const char *body = "local x = 1\nreturn redis.call('lpush', 'k', 'x')";
        char sha[41], want[256];
        kv_sha1_hex((const uint8_t *)body, strlen(body), sha);
        snprintf(want, sizeof want, "-WRONGTYPE Operation against a key holding the wrong kind of value script: %s, "
                 "on @user_script:2.\r\n", sha);
        RUN_IS(sm, want, "EVAL", body, "0");
    }
    RUN_IS(sm, "$65\r\nWRONGTYPE Operation against a key holding the wrong kind of value\r\n", "EVAL",
           "return redis.pcall('lpush', 'k', 'x')['err']", "0");
    RUN_HAS(sm, "This Redis command is not allowed from script", "EVAL", "return redis.call('eval', 'return 1', 0)",
            "0");
    RUN_HAS(sm, "Unknown Redis command called from script", "EVAL", "return redis.call('sweep')", "0");
    RUN_HAS(sm, "Write commands are not allowed from read-only scripts.", "EVAL_RO",
            "return redis.call('del', 'k')", "0");
    RUN_HAS(sm, "Write commands are not allowed from read-only scripts.", "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('del', 'k')", "0");
    RUN_IS(sm, "-ERR Unexpected flag in script shebang: bogus\r\n", "EVAL", "#!lua flags=bogus\nreturn 1", "0");
    /* SELECT inside a script is the script's own */
    RUN_IS(sm, ":0\r\n", "EVAL", "redis.call('select', 3) return redis.call('exists', 'k')", "0");
    RUN_IS(sm, ":1\r\n", "EXISTS", "k");
    RUN_IS(sm, "$28\r\nERR DB index is out of range\r\n", "EVAL", "return redis.pcall('select', 99)['err']", "0");
    RUN_IS(sm, "$43\r\nERR value is not an integer or out of range\r\n", "EVAL", "return redis.pcall('select', 'x')['err']", "0");
    /* the hashes */
    RUN_IS(sm, "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n", "EVAL", "return redis.sha1hex('')", "0");
    RUN_IS(sm, "$40\r\na9993e364706816aba3e25717850c26c9cd0d89d\r\n", "EVAL", "return redis.sha1hex('abc')", "0");
    RUN_IS(sm, "$40\r\n34aa973cd4c4daa4f61eeb2bdbad27316534016f\r\n", "EVAL",
           "return redis.sha1hex(string.rep('a', 1000000))", "0");
    /* the libraries Redis scripts load, opened on first use */
    RUN_IS(sm, "$7\r\n[1,2,3]\r\n", "EVAL", "return cjson.encode({1,2,3})", "0");
    RUN_IS(sm, ":8\r\n", "EVAL", "return bit.band(12, 10)", "0");
    RUN_IS(sm, "$3\r\na-b\r\n", "EVAL", "return table.concat({'a','b'}, '-')", "0");
    RUN_HAS(sm, "nonexistent global variable 'os'", "EVAL", "return os.time()", "0");
    RUN_HAS(sm, "nonexistent global variable 'print'", "EVAL", "print(1)", "0");
    RUN_HAS(sm, "nonexistent global variable 'setfenv'", "EVAL", "setfenv(1, {})", "0");
    rabia_sm_kv.destroy(sm);
}

static const char *sha_of(const char *body)
{
    static char sha[41];
    kv_sha1_hex((const uint8_t *)body, strlen(body), sha);
    return sha;
}

static void test_cache(void)
{
    void *sm = fresh();
    const char *sha7 = "59b6ab2fbe0ee4b25733de0f62e6cda4899ef8e9"; /* "return 7" */
    CHECK(!strcmp(sha_of("return 7"), sha7));
    RUN_IS(sm, "-NOSCRIPT No matching script. Please use EVAL.\r\n", "EVALSHA", sha7, "0");
    RUN_IS(sm, "-NOSCRIPT No matching script. Please use EVAL.\r\n", "EVALSHA", "short", "0");
    uint64_t h0 = hash_of(sm);
    RUN_IS(sm, "$40\r\n59b6ab2fbe0ee4b25733de0f62e6cda4899ef8e9\r\n", "SCRIPT", "LOAD", "return 7");
    CHECK(hash_of(sm) != h0); /* the cache is state */
    RUN_IS(sm, ":7\r\n", "EVALSHA", sha7, "0");
    RUN_IS(sm, ":7\r\n", "EVALSHA", "59B6AB2FBE0EE4B25733DE0F62E6CDA4899EF8E9", "0");
    RUN_IS(sm, ":7\r\n", "EVALSHA_RO", sha7, "0");
    RUN_IS(sm, "*3\r\n:1\r\n:0\r\n:1\r\n", "SCRIPT", "EXISTS", sha7, "x", "59B6AB2FBE0EE4B25733DE0F62E6CDA4899EF8E9");
    RUN_IS(sm, "-ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'\r\n",
           "SCRIPT", "LOAD", "return ("); /* that one reply only */
    RUN_IS(sm, "*1\r\n:0\r\n", "SCRIPT", "EXISTS", sha_of("return ("));
    /* EVAL caches what it ran (not what failed to compile) */
    RUN_IS(sm, ":3\r\n", "EVAL", "return 3", "0");
    RUN_IS(sm, ":3\r\n", "EVALSHA", sha_of("return 3"), "0");
    RUN_IS(sm, "-ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'\r\n",
           "EVAL", "return (", "0");
    RUN_IS(sm, "*1\r\n:0\r\n", "SCRIPT", "EXISTS", sha_of("return ("));
    /* EVAL's scripts are bounded, least recently used out first; SCRIPT
     * LOAD's stay */
    char body[64];
    for (int i = 0; i < KV_SCRIPT_EVAL_CACHED + 100; i++) {
        snprintf(body, sizeof body, "return %d", 1000 + i);
        char want[32];
        snprintf(want, sizeof want, ":%d\r\n", 1000 + i);
        RUN_IS(sm, want, "EVAL", body, "0");
        if (i == 150)
            RUN_IS(sm, ":3\r\n", "EVALSHA", sha_of("return 3"), "0"); /* used: not the oldest */
    }
    RUN_IS(sm, ":7\r\n", "EVALSHA", sha7, "0");
    RUN_IS(sm, ":3\r\n", "EVALSHA", sha_of("return 3"), "0");
    RUN_IS(sm, "*1\r\n:0\r\n", "SCRIPT", "EXISTS", sha_of("return 1000"));
    RUN_IS(sm, "*1\r\n:1\r\n", "SCRIPT", "EXISTS", sha_of("return 1599"));
    struct kv_store *st = *(struct kv_store **)sm; /* kv_sm's first field */
    CHECK_EQ(st->n_eval_scripts, KV_SCRIPT_EVAL_CACHED);
    CHECK_EQ(kv_dict_size(&st->scripts), KV_SCRIPT_EVAL_CACHED + 1);
    /* SCRIPT LOAD of a script EVAL cached keeps it from then on */
    RUN_HAS(sm, sha_of("return 1599"), "SCRIPT", "LOAD", "return 1599");
    CHECK_EQ(st->n_eval_scripts, KV_SCRIPT_EVAL_CACHED - 1);
    RUN_IS(sm, "+OK\r\n", "SCRIPT", "FLUSH");
    CHECK_EQ(kv_dict_size(&st->scripts), 0);
    /* snapshots: version 2 (what builds before scripts read) until a
     * script was cached, version 3 from then on, even once flushed (the
     * LRU counter is state) */
    struct rabia_buf snap = {0};
    void *plain = fresh();
    RUN_IS(plain, "+OK\r\n", "SET", "k", "v");
    CHECK_EQ(rabia_sm_kv.snapshot(plain, &snap), 0);
    CHECK_EQ(snap.data[0], 2);
    rabia_buf_clear(&snap);
    CHECK_EQ(rabia_sm_kv.snapshot(sm, &snap), 0);
    CHECK_EQ(snap.data[0], 3);
    void *back = fresh();
    CHECK_EQ(rabia_sm_kv.restore(back, snap.data, snap.len), 0);
    CHECK_EQ(hash_of(back), hash_of(sm));
    CHECK(hash_of(back) != hash_of(plain));
    rabia_buf_free(&snap);
    rabia_sm_kv.destroy(plain);
    rabia_sm_kv.destroy(back);
    RUN_IS(sm, "-ERR SCRIPT FLUSH only support SYNC|ASYNC option\r\n", "SCRIPT", "FLUSH", "x");
    RUN_IS(sm, "-NOTBUSY No scripts in execution right now.\r\n", "SCRIPT", "KILL");
    RUN_IS(sm, "-ERR unknown subcommand 'foo'. Try SCRIPT HELP.\r\n", "SCRIPT", "foo");
    RUN_IS(sm, "-ERR wrong number of arguments for 'script|load' command\r\n", "SCRIPT", "LOAD");
    rabia_sm_kv.destroy(sm);
}

/* Two stores fed the same operations answer alike and hash alike; a third
 * restored from the first's snapshot midway (a fresh Lua state, no
 * history) goes on exactly as they do. */
static void test_replicas_agree(void)
{
    void *a = fresh(), *b = fresh(), *c = NULL;
    static const char *const scripts[] = {
        /* tostring names tables by first sight, not address */
        "local t = {} local u = {} return {tostring(t), tostring(u), tostring(t), tostring(rawget(_G, 'print') == nil)}",
        /* math.random: a fixed seed per run */
        "local r = {} for i = 1, 5 do r[i] = math.random(1000) end return r",
        "math.randomseed(7) return math.random(1000000)",
        /* writes through the store: random commands are the store's own, seeded by the slot */
        "for i = 1, 50 do redis.call('sadd', KEYS[1], i) end return redis.call('spop', KEYS[1], 3)",
        "redis.call('hset', KEYS[1], 'a', ARGV[1]) return redis.call('hincrby', KEYS[1], 'n', 1)",
        "local s = '' for i = 1, 2000 do s = s .. 'x' end return #s",
        "return collectgarbage('count') > 0",
        "return cjson.encode(cjson.decode('{\"a\":[1,2,{\"b\":null}]}'))",
    };
    struct rabia_buf snap = {0};
    for (int round = 0; round < 6; round++) {
        uint64_t slot = 2 + (uint64_t)round;
        kv_at(a, slot, T0 + slot);
        kv_at(b, slot, T0 + slot);
        if (c)
            kv_at(c, slot, T0 + slot);
        for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
            char key[16], arg[16];
            snprintf(key, sizeof key, "k%zu", i);
            snprintf(arg, sizeof arg, "v%d", round);
            const char *av[] = {"EVAL", scripts[i], "1", key, arg, NULL};
            char ra[4096];
            snprintf(ra, sizeof ra, "%s", run(a, av));
            CHECK(ra[0] != '-');
            if (ra[0] == '-')
                fprintf(stderr, "  %s -> %s\n", scripts[i], ra);
            CHECK(!strcmp(ra, run(b, av)));
            if (c)
                CHECK(!strcmp(ra, run(c, av)));
            const char *evs[] = {"EVALSHA", sha_of(scripts[i]), "1", key, arg, NULL};
            snprintf(ra, sizeof ra, "%s", run(a, evs));
            CHECK(ra[0] != '-');
            CHECK(!strcmp(ra, run(b, evs)));
            if (c)
                CHECK(!strcmp(ra, run(c, evs)));
        }
        if (round == 2) { /* c starts from a's snapshot */
            rabia_buf_clear(&snap);
            CHECK_EQ(rabia_sm_kv.snapshot(a, &snap), 0);
            c = fresh();
            CHECK_EQ(rabia_sm_kv.restore(c, snap.data, snap.len), 0);
        }
        CHECK_EQ(hash_of(a), hash_of(b));
        if (c)
            CHECK_EQ(hash_of(a), hash_of(c));
    }
    /* the first replies of the first two scripts, as Redis would not give them */
    const char *av0[] = {"EVAL", scripts[0], "0", NULL};
    CHECK(!strcmp(run(a, av0), "*4\r\n$17\r\ntable: 0x00000001\r\n$17\r\ntable: 0x00000002\r\n$17\r\ntable: "
                               "0x00000001\r\n$4\r\ntrue\r\n"));
    /* a snapshot with scripts is checked: a body that is not its name's is refused */
    rabia_buf_clear(&snap);
    CHECK_EQ(rabia_sm_kv.snapshot(a, &snap), 0);
    const char *needle = "math.randomseed(7)";
    uint8_t *at = memmem(snap.data, snap.len, needle, strlen(needle));
    CHECK(at != NULL);
    if (at) {
        at[0] = 'M';
        void *d = fresh();
        CHECK_EQ(rabia_sm_kv.restore(d, snap.data, snap.len), -EINVAL);
        rabia_sm_kv.destroy(d);
        at[0] = 'm';
    }
    for (size_t len = snap.len - 200; len < snap.len; len += 7) { /* truncated inside the section */
        void *d = fresh();
        CHECK_EQ(rabia_sm_kv.restore(d, snap.data, len), -EINVAL);
        rabia_sm_kv.destroy(d);
    }
    rabia_buf_free(&snap);
    rabia_sm_kv.destroy(a);
    rabia_sm_kv.destroy(b);
    rabia_sm_kv.destroy(c);
}

/* A runaway script stops at the same point on every replica: the
 * instruction bound (a pcall cannot catch its way past it), the heap
 * bound, string.rep's loops in C. The store is untouched beyond what the
 * script wrote before. */
static void test_bounds(void)
{
    void *sm = fresh();
    RUN_HAS(sm, "script stopped after 100000000 Lua instructions", "EVAL", "while true do end", "0");
    RUN_HAS(sm, "script stopped after 100000000 Lua instructions", "EVAL",
            "while true do pcall(function() while true do end end) end", "0");
    RUN_HAS(sm, "script stopped after", "EVAL",
            "redis.call('set', 'before', '1') local co = coroutine.wrap(function() while true do end end) co()", "0");
    RUN_IS(sm, "$1\r\n1\r\n", "GET", "before");
    /* commands count: a loop of a few instructions around redis.call stops too */
    RUN_HAS(sm, "script stopped after", "EVAL", "local i = 0 while true do i = i + 1 redis.call('SET', 'n', i) end", "0");
    const char *n = run(sm, (const char *[]){"GET", "n", NULL});
    long calls = strtol(strchr(n, '\n') + 1, NULL, 10);
    CHECK(calls > 500000 && calls < 1000000); /* 100 instructions each, and the loop's own */
    RUN_HAS(sm, "bytes of Lua memory", "EVAL", "local s = 'x' while true do s = s .. s end", "0");
    RUN_HAS(sm, "bytes of Lua memory", "EVAL", "local t = {} for i = 1, 1e9 do t[i] = i end", "0");
    RUN_IS(sm, "$0\r\n\r\n", "EVAL", "return string.rep('', 1e15)", "0");
    RUN_HAS(sm, "string.rep: the result would pass the script heap bound", "EVAL", "return string.rep('ab', 1e15)",
            "0");
    RUN_IS(sm, "-ERR reached lua stack limit\r\n", "EVAL", "local t = {} t[1] = t return t", "0");
    RUN_IS(sm, ":1\r\n", "EVAL", "return 1", "0"); /* and the next one runs */
    uint64_t ok, error, stopped;
    rabia_kv_script_runs(sm, &ok, &error, &stopped);
    CHECK_EQ(stopped, 6); /* three loops, the commands' loop, two heap bounds */
    CHECK_EQ(error, 2);   /* string.rep's size, the stack limit */
    CHECK_EQ(ok, 2);
    rabia_sm_kv.destroy(sm);
}

/* A store restored from sm's snapshot stops script at the same point as
 * sm (every replica does, whatever its history): both stop, the same
 * state hash after (the script cache's use order, too). */
static void check_restored_stops_alike(void *sm, const char *script)
{
    struct rabia_buf snap = {0};
    CHECK_EQ(rabia_sm_kv.snapshot(sm, &snap), 0);
    void *back = fresh();
    CHECK_EQ(rabia_sm_kv.restore(back, snap.data, snap.len), 0);
    RUN_HAS(back, "script stopped after", "EVAL", script, "0");
    RUN_HAS(sm, "script stopped after", "EVAL", script, "0");
    CHECK_EQ(hash_of(back), hash_of(sm));
    rabia_buf_free(&snap);
    rabia_sm_kv.destroy(back);
}

/* Feature level 2: what a run allocates, the bytes of the string
 * library's string arguments and of string.rep's result, and the
 * elements table.insert, table.remove, table.maxn and table.sort visit in
 * C, and the heap a collectgarbage visits, count toward the instruction
 * bound. A loop that grows a string by concatenation runs one instruction
 * per step but copies the whole string each time: with instructions
 * alone, 40,000 steps of 10 bytes held the store 11 s and a million steps
 * for hours, on every replica at once (found by tests/fuzz/fuzz_kv). Below
 * level 2 runs are counted as before (a rolling upgrade runs both builds:
 * the same script must stop at the same point on all of them). */
static void test_alloc_bound(void)
{
    const char *concat = "local s = '' for i = 1, 1e6 do s = s .. 'xxxxxxxxxx' end return #s";
    /* 5,000 strings of 100 kB: 500 MB allocated in few instructions */
    const char *churn = "local n = 0 for i = 1, 5000 do n = n + #string.rep('x', 100000) end return n";
    /* 10,000 steps: 500 MB copied, 0.56 s here */
    const char *concat10k = "local s = '' for i = 1, 1e4 do s = s .. 'xxxxxxxxxx' end return #s";
    void *sm = fresh();
    RUN_IS(sm, ":2\r\n", "FEATURELEVEL", "2");
    RUN_HAS(sm, "script stopped after 100000000 Lua instructions", "EVAL", concat10k, "0");
    RUN_HAS(sm, "script stopped after 100000000 Lua instructions", "EVAL", concat, "0");
    RUN_HAS(sm, "script stopped after 100000000 Lua instructions", "EVAL", churn, "0");
    /* a pcall does not catch its way past it */
    RUN_HAS(sm, "script stopped after", "EVAL",
            "redis.call('set', 'k', 'v') while true do pcall(function() local s = '' for i = 1, 1e6 do "
            "s = s .. 'xxxxxxxxxx' end end) end",
            "0");
    RUN_IS(sm, "$1\r\nv\r\n", "GET", "k");
    /* what scripts usually do stays far below it */
    RUN_IS(sm, ":2000000\r\n", "EVAL", "local t = {} for i = 1, 200000 do t[i] = 'xxxxxxxxxx' end "
                                        "return #table.concat(t)", "0");
    /* table.insert and table.remove at the front shift every element in
     * C: counted per element (40,000 front inserts held the store 12.8 s);
     * appending and removing the last move nothing and count nothing */
    RUN_HAS(sm, "script stopped after", "EVAL",
            "local big = string.rep('x', 1e7) for i = 1, 1e6 do local x = big:sub(1, -2) end", "0");
    RUN_HAS(sm, "script stopped after", "EVAL",
            "local t = {} for i = 1, 1e5 do table.insert(t, 1, i) end return #t", "0");
    RUN_HAS(sm, "script stopped after", "EVAL",
            "local t = {} for i = 1, 1e5 do t[i] = i end for i = 1, 1e5 do table.remove(t, 1) end", "0");
    RUN_IS(sm, ":0\r\n", "EVAL",
           "local t = {} for i = 1, 1e6 do table.insert(t, i) end for i = 1, 1e6 do table.remove(t) end return #t",
           "0");
    RUN_IS(sm, ":1000\r\n", "EVAL", "local t = {} for i = 1, 1000 do table.insert(t, 1, i) end return t[1]", "0");
    /* the matcher recursed without bound: this pattern overflowed the C
     * stack (SIGSEGV, every replica, every replay); now refused as Lua
     * 5.2 refuses a match deeper than 200 */
    RUN_HAS(sm, "pattern too complex", "EVAL",
            "return string.find(string.rep('a', 300000), string.rep('a?', 300000))", "0");
    RUN_HAS(sm, "pattern too complex", "EVAL", "return ('x'):gsub(string.rep('(', 150) .. string.rep(')', 150), '')",
            "0");
    RUN_IS(sm, "$-1\r\n", "EVAL", "return string.find(string.rep('a', 3e5), string.rep('a?', 3e5), 1, true)",
           "0"); /* plain: no pattern, not found */
    RUN_IS(sm, ":200\r\n", "EVAL", "return #string.match(string.rep('a', 300), string.rep('a?', 200))", "0");
    RUN_IS(sm, "*2\r\n$3\r\nkey\r\n$3\r\nval\r\n", "EVAL", "return {string.match('key=val', '(%w+)=(%w+)')}",
           "0");
    /* a collection visits the heap: 100 of a million tables took 1.7 s */
    RUN_HAS(sm, "script stopped after", "EVAL",
            "local t = {} for i = 1, 1e6 do t[i] = {} end for i = 1, 1e4 do collectgarbage() end", "0");
    RUN_IS(sm, ":1\r\n", "EVAL", "collectgarbage() collectgarbage('step') return collectgarbage('count') > 0 and 1",
           "0");
    RUN_IS(sm, ":-100000\r\n", "EVAL", "local t = {} for i = 1, 1e5 do t[i] = -i end table.sort(t) return t[1]",
           "0");
    uint64_t ok, error, stopped;
    rabia_kv_script_runs(sm, &ok, &error, &stopped);
    CHECK_EQ(stopped, 8);
    CHECK_EQ(ok, 8);
    /* the wrapped functions' errors name them, as Redis's do */
    RUN_HAS(sm, "user_script:1: bad argument #1 to 'insert' (table expected, got nil) script:", "EVAL",
            "table.insert(nil, 1)", "0");
    RUN_HAS(sm, "bad argument #1 to 'sub' (string expected, got no value)", "EVAL", "return string.sub()", "0");
    RUN_HAS(sm, "bad argument #1 to 'collectgarbage' (invalid option 'x')", "EVAL", "collectgarbage('x')", "0");
    check_restored_stops_alike(sm, churn); /* level 2 in the snapshot */
    /* level 1: allocations are not counted */
    void *old = fresh();
    RUN_IS(old, ":1\r\n", "FEATURELEVEL", "1");
    RUN_IS(old, ":100000\r\n", "EVAL", concat10k, "0");
    RUN_IS(old, ":5000\r\n", "EVAL", "local t = {} for i = 1, 5000 do table.insert(t, 1, i) end return #t", "0");
    rabia_sm_kv.destroy(sm);
    rabia_sm_kv.destroy(old);
}

/* Feature level 3: patterns are kv/script_match.c's, each step of the
 * matcher counted as an instruction and nesting bounded at 200. Lua
 * 5.1's matcher backtracks in C, where level 2 counted only the bytes of
 * the arguments: at level 2 the first script below runs for hours, a
 * gmatch('a-b') over 100 kB took 18.2 s and a %b() over 100 kB 2.8 s
 * here, and string.gfind (5.1's old name of gmatch, which level 2 did
 * not wrap) overflowed the C stack with a deep pattern. */
static void test_match_bound(void)
{
    void *sm = fresh();
    RUN_IS(sm, ":3\r\n", "FEATURELEVEL", "3");
    const char *stops[] = {
        "return string.find(string.rep('a', 5000), string.rep('a*', 6) .. 'b')",
        "local n = 0 for w in string.rep('a', 1e5):gmatch('a-b') do n = n + 1 end return n",
        "return string.find(string.rep('(', 1e6), '%b()')",
        "local s = string.rep('a', 1e6) for i = 1, 1e4 do s:gsub('b', '') end",
        /* a pcall does not catch its way past it */
        "while true do pcall(string.find, string.rep('a', 5000), string.rep('a*', 6) .. 'b') end",
    };
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++)
        RUN_HAS(sm, "script stopped after 100000000 Lua instructions", "EVAL", stops[i], "0");
    /* depth: 200 items nested at most, gfind included */
    RUN_HAS(sm, "user_script:1: pattern too complex", "EVAL",
            "return string.gfind(string.rep('a', 300000), string.rep('a?', 300000))()", "0");
    RUN_HAS(sm, "pattern too complex", "EVAL",
            "return string.find(string.rep('a', 300), string.rep('a?', 201))", "0");
    RUN_IS(sm, ":199\r\n", "EVAL", "return #string.match(string.rep('a', 199), string.rep('a?', 199))", "0");
    /* no longer refused for its count of special characters alone (level
     * 2 refused more than 200 of them, nested or not) */
    RUN_IS(sm, "*2\r\n:1\r\n:300\r\n", "EVAL",
           "return {string.find(string.rep('()', 150), string.rep('%(%)', 150))}", "0");
    RUN_IS(sm, ":1\r\n", "EVAL", "return select(2, string.rep('-', 250):gsub(string.rep('%-', 250), ''))", "0");
    /* 5.1's results and messages (tests/fuzz/fuzz_match.c compares them
     * with the library on random inputs) */
    RUN_IS(sm, "*4\r\n:3\r\n:10\r\n$3\r\nkey\r\n$2\r\n42\r\n", "EVAL",
           "return {string.find('  key = 42;', '(%a+)%s*=%s*(%d+)')}", "0");
    RUN_IS(sm, "*2\r\n$13\r\nworld=hello 3\r\n:1\r\n", "EVAL",
           "local s, n = string.gsub('hello world', '(%w+) (%w+)', '%2=%1 ' .. 3) return {s, n}", "0");
    RUN_IS(sm, "$11\r\n<a1> b <c2>\r\n", "EVAL",
           "return (string.gsub('a1 b c2', '(%a)(%d)', function(a, d) return '<' .. a .. d .. '>' end))", "0");
    RUN_IS(sm, "$5\r\nA-b-C\r\n", "EVAL", "return (string.gsub('a-b-c', '%a', {a = 'A', c = 'C'}))", "0");
    RUN_IS(sm, "*3\r\n$3\r\none\r\n$3\r\ntwo\r\n$5\r\nthree\r\n", "EVAL",
           "local t = {} for w in ('one two  three'):gmatch('%a+') do t[#t + 1] = w end return t", "0");
    RUN_HAS(sm, "user_script:1: malformed pattern (missing ']')", "EVAL", "return string.find('a', '[a')", "0");
    RUN_HAS(sm, "invalid capture index", "EVAL", "return string.find('a', '%1')", "0");
    RUN_HAS(sm, "bad argument #3 to 'gsub' (string/function/table expected)", "EVAL",
            "return string.gsub('a', 'a', true)", "0");
    uint64_t ok, error, stopped;
    rabia_kv_script_runs(sm, &ok, &error, &stopped);
    CHECK_EQ(stopped, sizeof stops / sizeof stops[0]);
    /* level 3 in the snapshot; the write before the stop kept, as Redis keeps it */
    check_restored_stops_alike(sm, "redis.call('incr', 'n') local ok = pcall(string.find, string.rep('a', 5000), "
                                   "string.rep('a*', 6) .. 'b') redis.call('incr', 'n') return 1");
    RUN_IS(sm, "$1\r\n1\r\n", "GET", "n");
    /* level 2: 5.1's matcher, with level 2's count of special characters */
    void *old = fresh();
    RUN_IS(old, ":2\r\n", "FEATURELEVEL", "2");
    RUN_HAS(old, "pattern too complex", "EVAL", "return {string.find(string.rep('()', 150), string.rep('%(%)', 150))}",
            "0");
    RUN_IS(old, ":0\r\n", "EVAL", "local n = 0 for w in string.rep('a', 1000):gmatch('a-b') do n = n + 1 end return n",
           "0");
    rabia_sm_kv.destroy(sm);
    rabia_sm_kv.destroy(old);
}

/* Feature level 3, the rest of the work done in C for one instruction:
 * a redis.call counts its arguments' bytes, and for a command whose work
 * grows with its keys (KV_F_SCANS: BITCOUNT, SUNIONSTORE, LREM, ...) their
 * sizes; KEYS the database's; cjson.decode and redis.sha1hex their input.
 * Before, each loop below was counted about 5 instructions per call and
 * ran for hours: a BITCOUNT of 100 MB takes 19 ms here, a SUNIONSTORE of
 * 100,000 members 23 ms, a SET of 20 MB 25 ms, a sha1hex of 20 MB 110 ms
 * (at level 3 each stops within 0.1 to 1.7 s). */
static void test_call_bound(void)
{
    void *sm = fresh();
    RUN_IS(sm, ":3\r\n", "FEATURELEVEL", "3");
    RUN_IS(sm, ":10000001\r\n", "SETRANGE", "big", "10000000", "x");
    RUN_IS(sm, "$-1\r\n", "EVAL", "for i = 1, 1e5 do redis.call('sadd', 's', i) end", "0");
    RUN_IS(sm, "$-1\r\n", "EVAL", "for i = 1, 1000 do redis.call('sadd', 'small', i) end", "0");
    RUN_IS(sm, "$-1\r\n", "EVAL", "for i = 1, 1e5 do redis.call('rpush', 'l', i) end", "0");
    RUN_IS(sm, "$-1\r\n", "EVAL", "for i = 1, 1e5 do redis.call('zadd', 'z', i, i) end", "0");
    const char *loops[] = {
        "for i = 1, 1e6 do redis.call('bitcount', 'big') end",
        "for i = 1, 1e6 do redis.call('sunionstore', 'd', 's') end",
        "for i = 1, 1e6 do redis.call('lrem', 'l', 0, 'x') end",
        "local b = string.rep('x', 1e7) for i = 1, 1e6 do redis.call('set', 'v', b) end",
        "for i = 1, 1e6 do redis.call('keys', 'nomatch*') end",
        "for i = 1, 1e6 do redis.call('zrangebyscore', 'z', '-inf', '+inf', 'LIMIT', 99999, 1) end",
        "for i = 1, 1e6 do redis.call('sscan', 's', 0, 'MATCH', 'none', 'COUNT', 1e9) end",
        "local b = string.rep(' ', 1e7) .. '1' for i = 1, 1e6 do cjson.decode(b) end",
        "local b = string.rep('x', 1e7) for i = 1, 1e6 do redis.sha1hex(b) end",
        /* pcall and redis.pcall do not catch their way past it */
        "while true do pcall(redis.pcall, 'bitcount', 'big') end",
    };
    for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++)
        RUN_HAS(sm, "script stopped after 100000000 Lua instructions", "EVAL", loops[i], "0");
    /* a command that does not scan its keys pays for its reply alone */
    RUN_IS(sm, ":1\r\n", "EVAL",
           "for i = 1, 1e4 do redis.call('sismember', 's', i) redis.call('srandmember', 's') "
           "redis.call('getrange', 'big', 0, 9) redis.call('zrange', 'z', 0, 9) "
           "redis.call('zrangebyscore', 'z', 5, 10, 'LIMIT', 2, 3) redis.call('scan', 0, 'COUNT', 10) end return 1",
           "0");
    RUN_IS(sm, ":1000\r\n", "EVAL",
           "local n for i = 1, 100 do n = redis.call('sunionstore', 'd2', 'small') end return n", "0");
    /* LCS (level 4) counts its table's cells: 2,000 x 2,000 bytes is 4 M
     * a call, 25 calls reach the bound (each took about 10 ms here) */
    RUN_IS(sm, ":4\r\n", "FEATURELEVEL", "4");
    RUN_IS(sm, "+OK\r\n", "EVAL", "redis.call('set', 'la', string.rep('ab', 1000)) "
           "return redis.call('set', 'lb', string.rep('ba', 1000))", "0");
    RUN_IS(sm, ":1999\r\n", "EVAL", "return redis.call('lcs', 'la', 'lb', 'LEN')", "0");
    RUN_HAS(sm, "script stopped after 100000000 Lua instructions", "EVAL",
            "for i = 1, 1e6 do redis.call('lcs', 'la', 'lb', 'LEN') end", "0");
    /* cjson.encode builds its result outside the heap bound and exits the
     * process past 2 GiB ("BUG: Invalid strbuf length requested", exit
     * status 255 at level 2: every replica, at every replay): its size is
     * taken first, the walk stopping at the bound */
    RUN_HAS(sm, "-ERR user_script:1: cjson.encode: the result would pass the script heap bound of 134217728 bytes",
            "EVAL", "local s = string.rep('x', 1e7) local t = {} for i = 1, 1000 do t[i] = s end return cjson.encode(t)",
            "0");
    RUN_HAS(sm, "cjson.encode: the result would pass the script heap bound", "EVAL",
            "local t = {1} for i = 1, 40 do t = {t, t} end return cjson.encode(t)", "0"); /* 2^40 ones */
    RUN_IS(sm, ":50000016\r\n", "EVAL",
           "local s = string.rep('x', 1e7) local t = {} for i = 1, 5 do t[i] = s end return #cjson.encode(t)", "0");
    RUN_IS(sm, "$28\r\n{\"a\":[1,2,\"x\\\"y\"],\"3\":false}\r\n", "EVAL",
           "return cjson.encode({a = {1, 2, 'x\"y'}, [3] = false})", "0");
    RUN_HAS(sm, "-ERR user_script:1: Cannot serialise, excessive nesting (1001)", "EVAL",
            "local t = {} t[1] = t return cjson.encode(t)", "0");
    RUN_HAS(sm, "-ERR user_script:1: bad argument #1 to 'encode' (expected 1 argument)", "EVAL",
            "return cjson.encode(1, 2)", "0");
    /* cjson.decode's errors still name the script's line */
    RUN_HAS(sm, "-ERR user_script:1: Expected value but found invalid token at character 1 script:", "EVAL",
            "return cjson.decode('x')", "0");
    RUN_IS(sm, "*2\r\n:1\r\n:2\r\n", "EVAL", "return cjson.decode('[1,2]')", "0");
    uint64_t ok, error, stopped;
    rabia_kv_script_runs(sm, &ok, &error, &stopped);
    CHECK_EQ(stopped, sizeof loops / sizeof loops[0] + 1); /* the LCS loop's too */
    const char *partial = "for i = 1, 4000 do redis.call('incr', 'n') redis.call('sunionstore', 'd3', 'small') end";
    check_restored_stops_alike(sm, partial);
    /* each turn counts two calls (100 each), the 1,000 members of small and
     * of d3 (freed and rewritten) at 32, and 5 + 21 bytes of arguments / 4:
     * 100M / 64,206 turns, the writes before the stop kept */
    RUN_IS(sm, "$4\r\n1558\r\n", "GET", "n");
    /* level 2 counts 100 per call and its reply: the same script ends */
    void *old = fresh();
    RUN_IS(old, ":2\r\n", "FEATURELEVEL", "2");
    RUN_IS(old, "$-1\r\n", "EVAL", "for i = 1, 1000 do redis.call('sadd', 'small', i) end", "0");
    RUN_IS(old, "$-1\r\n", "EVAL", partial, "0");
    RUN_IS(old, "$4\r\n4000\r\n", "GET", "n");
    rabia_sm_kv.destroy(sm);
    rabia_sm_kv.destroy(old);
}

/* Feature level 8. pairs() over keys that are tables or functions: Lua
 * 5.1 places them by address, and with malloc's addresses the order, and
 * what a script wrote in that order, differed between replicas (each has
 * its own heap history). From level 8 a run's memory comes from
 * kv/script_heap.c, the same offsets in a 4 GiB-aligned arena: the same
 * order whatever the process did before. And a coroutine's instructions
 * count (each thread counted down from 10,000 on its own: short ones were
 * never counted). */
static const char *pairs_script =
    "local t = {} for i = 1, 64 do t[{i}] = i t[function() return i end] = -i end "
    "local out = {} for k, v in pairs(t) do out[#out + 1] = v end "
    "redis.call('set', 'order', table.concat(out, ',')) return #out";

static void test_script_heap(void)
{
    void *a = kv_fresh_level(T0, 8), *b = kv_fresh_level(T0, 8);
    RUN_IS(a, ":128\r\n", "EVAL", pairs_script, "0");
    /* another heap history before b's run: blocks of many sizes held */
    void *hold[200];
    for (int i = 0; i < 200; i++) {
        hold[i] = malloc((size_t)(i * 37 % 700) + 16);
        CHECK(hold[i] != NULL);
    }
    RUN_IS(b, ":0\r\n", "EVAL", "local x = {} for i = 1, 1000 do x[i] = {i} end return 0", "0");
    RUN_IS(b, ":128\r\n", "EVAL", pairs_script, "0");
    char ga[2048], gb[2048];
    snprintf(ga, sizeof ga, "%s", run(a, (const char *[]){"GET", "order", NULL}));
    snprintf(gb, sizeof gb, "%s", run(b, (const char *[]){"GET", "order", NULL}));
    CHECK(strcmp(ga, gb) == 0);
    if (strcmp(ga, gb)) fprintf(stderr, "  a: %.80s...\n  b: %.80s...\n", ga, gb);
    /* (the state hashes differ all the same: b ran one more command) */
    for (int i = 0; i < 200; i++)
        free(hold[i]);
    /* short coroutines count: 200,000 of 3,300 instructions each pass the bound */
    RUN_HAS(a, "script stopped after 100000000 Lua instructions", "EVAL",
            "for i = 1, 200000 do coroutine.wrap(function() for j = 1, 3300 do end end)() end return 1", "0");
    RUN_HAS(a, "script stopped after 100000000 Lua instructions", "EVAL",
            "for i = 1, 200000 do coroutine.resume(coroutine.create(function() for j = 1, 3300 do end end)) end "
            "return 1", "0");
    /* coroutines still work as Lua's: values through resume and yield, wrap's errors */
    RUN_IS(a, "*3\r\n:1\r\n:2\r\n:3\r\n", "EVAL",
           "local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 3 end) "
           "return {co(0), 2, co(1)}", "0");
    RUN_HAS(a, "user_script:1: boom", "EVAL", "coroutine.wrap(function() error('boom') end)()", "0");
    RUN_HAS(a, "user_script:1: bad argument #1 to 'create' (Lua function expected) script:", "EVAL",
            "return coroutine.create(1)", "0");
    RUN_HAS(a, "user_script:1: bad argument #1 to 'wrap' (Lua function expected) script:", "EVAL",
            "return coroutine.wrap(1)", "0");
    RUN_IS(a, ":1\r\n", "EVAL",
           "local ok, e = coroutine.resume(coroutine.create(function() error('x') end)) return ok and 0 or 1", "0");
    /* a long string read as a number counts its bytes (tonumber, math,
     * bit); the VM's own s + 0 still does not (kv/README.md) */
    RUN_HAS(a, "script stopped after 100000000 Lua instructions", "EVAL",
            "local s = string.rep('1', 1e7) for i = 1, 1e6 do local x = tonumber(s) end return 1", "0");
    RUN_HAS(a, "script stopped after 100000000 Lua instructions", "EVAL",
            "local s = string.rep('1', 1e7) for i = 1, 1e6 do local x = math.floor(s) end return 1", "0");
    RUN_HAS(a, "script stopped after 100000000 Lua instructions", "EVAL",
            "local s = string.rep('1', 1e7) for i = 1, 1e6 do local x = bit.tobit(s) end return 1", "0");
    RUN_IS(a, ":42\r\n", "EVAL", "return tonumber('42') + math.floor('0') + bit.tobit('0')", "0");
    /* a shebang without a newline: Redis's error from level 8 (it was
     * taken as the whole script) */
    RUN_IS(a, "-ERR Invalid script shebang\r\n", "EVAL", "#!lua", "0");
    RUN_IS(a, "-ERR Invalid script shebang\r\n", "SCRIPT", "LOAD", "#!lua flags=no-writes");
    RUN_IS(a, ":1\r\n", "EVAL", "#!lua flags=no-writes\nreturn 1", "0");
    /* a big run's memory: past the arena's kept 16 MiB and back */
    RUN_IS(a, ":40000000\r\n", "EVAL", "return #string.rep('x', 40000000)", "0");
    RUN_IS(a, ":128\r\n", "EVAL", pairs_script, "0");
    CHECK(strcmp(run(a, (const char *[]){"GET", "order", NULL}), ga) == 0);
    /* level 7 (the build before): malloc's addresses, and the two orders
     * part (this check is what failed before level 8) */
    void *c = kv_fresh_level(T0, 7), *d = kv_fresh_level(T0, 7);
    RUN_IS(c, ":128\r\n", "EVAL", pairs_script, "0");
    for (int i = 0; i < 200; i++)
        hold[i] = malloc((size_t)(i * 53 % 900) + 16);
    RUN_IS(d, ":0\r\n", "EVAL", "local x = {} for i = 1, 1000 do x[i] = {i} end return 0", "0");
    RUN_IS(d, ":128\r\n", "EVAL", pairs_script, "0");
    snprintf(ga, sizeof ga, "%s", run(c, (const char *[]){"GET", "order", NULL}));
    snprintf(gb, sizeof gb, "%s", run(d, (const char *[]){"GET", "order", NULL}));
    if (!strcmp(ga, gb))
        fprintf(stderr, "  (level 7 happened to give the same order here)\n");
    for (int i = 0; i < 200; i++)
        free(hold[i]);
    rabia_sm_kv.destroy(a);
    rabia_sm_kv.destroy(b);
    rabia_sm_kv.destroy(c);
    rabia_sm_kv.destroy(d);
}

int main(void)
{
    RUN(test_basics);
    RUN(test_cache);
    RUN(test_replicas_agree);
    RUN(test_bounds);
    RUN(test_alloc_bound);
    RUN(test_match_bound);
    RUN(test_call_bound);
    RUN(test_script_heap);
    return CHECK_DONE();
}
