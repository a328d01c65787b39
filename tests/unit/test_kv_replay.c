/* Replay determinism of the KV store: every replica must give the same
 * replies and the same snapshot bytes from the same operations, whatever
 * its history. Store A applies a random stream of commands of every type
 * (members and values crossing every encoding threshold, expiry with a
 * moving log clock, SWEEP, random picks, SCAN-family cursors taken from
 * earlier replies, transactions with and without WATCH, several
 * databases); store B applies the same stream but is restored from A's
 * snapshot every so often (so its hash tables have other sizes and no
 * deletion history); their replies and snapshots must be equal. At the
 * end a store C that replays A's whole history from empty must have A's
 * snapshot. The incremental state hash (kv/state_hash.c) is checked all
 * along: A's (kept up to date through its whole history), B's (through
 * restores) and C's must be equal whenever their snapshots are, and a
 * store just restored (every term computed from the snapshot's bytes) must
 * agree with the one whose snapshot it is. Several seeds; `test_kv_replay OPS FIRST COUNT` runs more by
 * hand (e.g. 40000 1 100). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "kv.h"
#include "kv_check.h"

#define T0 UINT64_C(1767225600000) /* 1 Jan 2026, in ms */

/* ------------------------------------------------------------------ */
/* The generator.                                                      */

#define MAXARGS 24
#define ARGLEN 96
#define NCURSORS 32
#define NWATCH 16

struct watched {
    char db[4], key[16], ver[24];
};

struct gen {
    uint64_t st;
    /* one command being built */
    int argc;
    char a[MAXARGS][ARGLEN];
    size_t len[MAXARGS];
    /* cursors seen in SCAN-family replies, versions seen in WATCHVER's */
    char cursors[NCURSORS][24];
    int ncursors;
    struct watched w[NWATCH];
    int nw;
    /* growing phases keep removals rare, so that collections get big;
     * the others shrink them again */
    bool grow;
};

static uint64_t rnd(struct gen *g)
{
    /* xorshift64* */
    g->st ^= g->st >> 12;
    g->st ^= g->st << 25;
    g->st ^= g->st >> 27;
    return g->st * 0x2545f4914f6cdd1dull;
}

static unsigned below(struct gen *g, unsigned n)
{
    return (unsigned)(rnd(g) % n);
}

static bool chance(struct gen *g, unsigned percent)
{
    return below(g, 100) < percent;
}

static void arg(struct gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void arg(struct gen *g, const char *fmt, ...)
{
    if (g->argc >= MAXARGS)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g->a[g->argc], ARGLEN, fmt, ap);
    va_end(ap);
    g->len[g->argc++] = n < ARGLEN ? (size_t)n : ARGLEN - 1;
}

/* A key of a type's pool (few keys, so that collections grow big), now
 * and then one of another type's pool (WRONGTYPE, RENAME across types). */
static void key(struct gen *g, char type)
{
    static const char types[] = "tlshz";
    /* (not for string commands: SET would turn every key into a string) */
    if (type != 't' && chance(g, 4))
        type = types[below(g, 5)];
    if (type == 't' && chance(g, 40))
        arg(g, "k%u", below(g, 300)); /* many small string keys: the keyspace grows and shrinks */
    else
        arg(g, "%c%u", type, below(g, type == 't' ? 12 : 3));
}

/* A long run of one character and a number: longer than 64 bytes. */
static void long_arg(struct gen *g, char c, unsigned n)
{
    char buf[ARGLEN];
    memset(buf, c, 70);
    snprintf(buf + 70, sizeof buf - 70, "%u", n);
    arg(g, "%s", buf);
}

/* A member or field: mostly integers up to `range` (intsets, and past
 * the 128 / 512 thresholds), some words, some long, a few odd ones. */
static void member(struct gen *g, unsigned range)
{
    unsigned r = below(g, 100), n = below(g, range);
    if (r < 70)
        arg(g, "%u", n);
    else if (r < 88)
        arg(g, "m%u", n % 64);
    else if (r < 92)
        long_arg(g, 'L', n % 16);
    else if (r < 94)
        arg(g, "-%u", n);
    else if (r < 96)
        arg(g, "0%u", n % 10); /* not a canonical integer */
    else if (r < 98)
        arg(g, "9223372036854775807");
    else
        arg(g, "%s", "");
}

static void value(struct gen *g)
{
    unsigned r = below(g, 100);
    if (r < 60)
        arg(g, "%u", below(g, 1000));
    else if (r < 75)
        arg(g, "v%u", below(g, 50));
    else if (r < 85)
        arg(g, "%u.%u", below(g, 100), below(g, 100));
    else if (r < 93)
        long_arg(g, 'V', below(g, 8));
    else
        arg(g, "%s", "");
}

static void score(struct gen *g)
{
    static const char *const special[] = {"0", "-0", "1", "1.5", "-2", "inf", "-inf", "3", "1e300", "(1"};
    if (chance(g, 50))
        arg(g, "%s", special[below(g, 9)]); /* no "(1": not a score */
    else
        arg(g, "%d", (int)below(g, 40) - 10);
}

static void score_bound(struct gen *g)
{
    static const char *const b[] = {"-inf", "+inf", "0", "(0", "1", "(1.5", "3", "(10", "-2", "20"};
    arg(g, "%s", b[below(g, 10)]);
}

static void lex_bound(struct gen *g)
{
    static const char *const b[] = {"-", "+", "[1", "(1", "[5", "(m3", "[m", "[2", "(50", "[9"};
    arg(g, "%s", b[below(g, 10)]);
}

static void count_arg(struct gen *g)
{
    static const int counts[] = {0, 1, 2, 3, 5, 10, 50, 200, 600, -1, -3, -10, -700};
    arg(g, "%d", counts[below(g, 13)]);
}

static void cursor(struct gen *g)
{
    unsigned r = below(g, 100);
    if (r < 30 || g->ncursors == 0)
        arg(g, "0");
    else if (r < 92)
        arg(g, "%s", g->cursors[below(g, (unsigned)g->ncursors)]);
    else
        arg(g, "%" PRIu64, rnd(g));
}

static void scan_opts(struct gen *g, bool type)
{
    if (chance(g, 60)) {
        arg(g, "COUNT");
        arg(g, "%u", 1 + below(g, chance(g, 80) ? 20 : 300));
    }
    if (chance(g, 25)) {
        static const char *const pats[] = {"*1*", "m*", "?", "*[0-4]", "k1*", "h*"};
        arg(g, "MATCH");
        arg(g, "%s", pats[below(g, 6)]);
    }
    if (type && chance(g, 20)) {
        static const char *const types[] = {"string", "list", "set", "zset", "hash", "nosuch"};
        arg(g, "TYPE");
        arg(g, "%s", types[below(g, 6)]);
    }
}

static void any_key(struct gen *g);
static void victim_key(struct gen *g);
static bool skip_removal(struct gen *g);

static void gen_string(struct gen *g)
{
    switch (below(g, 12)) {
    case 0: arg(g, "SET"); key(g, 't'); value(g); break;
    case 1:
        arg(g, "SET"); key(g, 't'); value(g);
        arg(g, chance(g, 50) ? "PX" : "EX");
        arg(g, "%u", 1 + below(g, 400));
        break;
    case 2: arg(g, "GET"); key(g, 't'); break;
    case 3: arg(g, "APPEND"); key(g, 't'); value(g); break;
    case 4: arg(g, "INCRBY"); key(g, 't'); arg(g, "%d", (int)below(g, 100) - 50); break;
    case 5: arg(g, "SETRANGE"); key(g, 't'); arg(g, "%u", below(g, 80)); value(g); break;
    case 6: arg(g, "GETRANGE"); key(g, 't'); arg(g, "%d", (int)below(g, 20) - 10); arg(g, "%d", (int)below(g, 20) - 5); break;
    case 7: arg(g, "GETDEL"); key(g, 't'); break;
    case 8: arg(g, "GETEX"); key(g, 't'); arg(g, "PX"); arg(g, "%u", 1 + below(g, 300)); break;
    case 9: arg(g, "MSET"); key(g, 't'); value(g); key(g, 't'); value(g); break;
    case 10: arg(g, "INCRBYFLOAT"); key(g, 't'); arg(g, "%u.5", below(g, 9)); break;
    default: arg(g, "STRLEN"); key(g, 't'); break;
    }
}

static void gen_hash(struct gen *g)
{
    switch (below(g, 20)) {
    case 0: case 1: case 2: case 3:
        arg(g, "HSET"); key(g, 'h');
        for (unsigned i = 0, n = 1 + below(g, 16); i < n; i++) {
            member(g, 700);
            value(g);
        }
        break;
    case 4: arg(g, "HSETNX"); key(g, 'h'); member(g, 700); value(g); break;
    case 5: case 6:
        if (skip_removal(g)) {
            arg(g, "HSET"); key(g, 'h'); member(g, 700); value(g);
            break;
        }
        arg(g, "HDEL"); key(g, 'h');
        for (unsigned i = 0, n = 1 + below(g, 8); i < n; i++)
            member(g, 700);
        break;
    case 7: arg(g, "HGET"); key(g, 'h'); member(g, 700); break;
    case 8: arg(g, "HGETALL"); key(g, 'h'); break;
    case 9: arg(g, "HINCRBY"); key(g, 'h'); member(g, 40); arg(g, "%d", (int)below(g, 100) - 50); break;
    case 10: arg(g, "HINCRBYFLOAT"); key(g, 'h'); member(g, 40); arg(g, "%u.25", below(g, 9)); break;
    case 11: case 12: arg(g, "HSCAN"); key(g, 'h'); cursor(g); scan_opts(g, false); break;
    case 13: case 14:
        arg(g, "HRANDFIELD"); key(g, 'h');
        if (chance(g, 80)) {
            count_arg(g);
            if (chance(g, 50))
                arg(g, "WITHVALUES");
        }
        break;
    case 15: arg(g, "HKEYS"); key(g, 'h'); break;
    case 16: arg(g, "HMGET"); key(g, 'h'); member(g, 700); member(g, 700); break;
    case 17: arg(g, "HLEN"); key(g, 'h'); break;
    case 18: arg(g, "HVALS"); key(g, 'h'); break;
    default: arg(g, "HSTRLEN"); key(g, 'h'); member(g, 700); break;
    }
}

static void gen_set(struct gen *g)
{
    switch (below(g, 22)) {
    case 0: case 1: case 2: case 3:
        arg(g, "SADD"); key(g, 's');
        for (unsigned i = 0, n = 1 + below(g, 12); i < n; i++)
            member(g, 700);
        break;
    case 4: case 5:
        if (skip_removal(g)) {
            arg(g, "SADD"); key(g, 's'); member(g, 700); member(g, 700);
            break;
        }
        arg(g, "SREM"); key(g, 's');
        for (unsigned i = 0, n = 1 + below(g, 8); i < n; i++)
            member(g, 700);
        break;
    case 6:
        if (skip_removal(g)) {
            arg(g, "SADD"); key(g, 's'); member(g, 700);
            break;
        }
        arg(g, "SPOP"); key(g, 's'); if (chance(g, 60)) arg(g, "%u", below(g, 12)); break;
    case 7: case 8: arg(g, "SRANDMEMBER"); key(g, 's'); if (chance(g, 80)) count_arg(g); break;
    case 9: case 10: arg(g, "SSCAN"); key(g, 's'); cursor(g); scan_opts(g, false); break;
    case 11: arg(g, "SMEMBERS"); key(g, 's'); break;
    case 12: arg(g, "SINTERSTORE"); if (g->grow) arg(g, "tmp%u", below(g, 3)); else key(g, 's'); key(g, 's'); key(g, 's'); break;
    case 13: arg(g, "SUNIONSTORE"); key(g, 's'); key(g, 's'); key(g, 's'); break;
    case 14: arg(g, "SDIFFSTORE"); if (g->grow) arg(g, "tmp%u", below(g, 3)); else key(g, 's'); key(g, 's'); key(g, 's'); break;
    case 15: arg(g, "SINTER"); key(g, 's'); key(g, 's'); break;
    case 16: arg(g, "SUNION"); key(g, 's'); key(g, 's'); break;
    case 17: arg(g, "SDIFF"); key(g, 's'); key(g, 's'); break;
    case 18: arg(g, "SINTERCARD"); arg(g, "2"); key(g, 's'); key(g, 's'); arg(g, "LIMIT"); arg(g, "%u", below(g, 20)); break;
    case 19: arg(g, "SMOVE"); key(g, 's'); key(g, 's'); member(g, 700); break;
    case 20: arg(g, "SISMEMBER"); key(g, 's'); member(g, 700); break;
    default: arg(g, "SCARD"); key(g, 's'); break;
    }
}

static void gen_list(struct gen *g)
{
    static const char *const ends[] = {"LEFT", "RIGHT"};
    switch (below(g, 20)) {
    case 0: case 1: case 2: case 3:
        arg(g, chance(g, 50) ? "LPUSH" : "RPUSH"); key(g, 'l');
        for (unsigned i = 0, n = 1 + below(g, chance(g, 15) ? 20 : 6); i < n; i++)
            value(g);
        break;
    case 4: case 5:
        if (skip_removal(g)) {
            arg(g, "RPUSH"); key(g, 'l'); value(g);
            break;
        }
        arg(g, chance(g, 50) ? "LPOP" : "RPOP"); key(g, 'l');
        if (chance(g, 50))
            arg(g, "%u", below(g, 8));
        break;
    case 6: arg(g, "LRANGE"); key(g, 'l'); arg(g, "%d", (int)below(g, 20) - 10); arg(g, "%d", (int)below(g, 30) - 10); break;
    case 7: arg(g, "LTRIM"); key(g, 'l'); arg(g, "%d", (int)below(g, 6) - 2); arg(g, "%d", g->grow ? -1 : (int)below(g, 60) - 5); break;
    case 8: arg(g, "LREM"); key(g, 'l'); arg(g, "%d", (int)below(g, 7) - 3); value(g); break;
    case 9: arg(g, "LINSERT"); key(g, 'l'); arg(g, chance(g, 50) ? "BEFORE" : "AFTER"); value(g); value(g); break;
    case 10: arg(g, "LSET"); key(g, 'l'); arg(g, "%d", (int)below(g, 10) - 5); value(g); break;
    case 11: case 12:
        arg(g, "LMOVE"); key(g, 'l'); key(g, 'l'); arg(g, "%s", ends[below(g, 2)]); arg(g, "%s", ends[below(g, 2)]);
        break;
    case 13: arg(g, "RPOPLPUSH"); key(g, 'l'); key(g, 'l'); break;
    case 14: arg(g, "LPOS"); key(g, 'l'); value(g); if (chance(g, 50)) { arg(g, "COUNT"); arg(g, "%u", below(g, 4)); } break;
    case 15: arg(g, "LINDEX"); key(g, 'l'); arg(g, "%d", (int)below(g, 20) - 10); break;
    case 16: arg(g, "BLPOP"); key(g, 'l'); key(g, 'l'); arg(g, "0"); break;
    case 17: arg(g, "BLMOVE"); key(g, 'l'); key(g, 'l'); arg(g, "RIGHT"); arg(g, "LEFT"); arg(g, "0.5"); break;
    default: arg(g, "LLEN"); key(g, 'l'); break;
    }
}

static void gen_zset(struct gen *g)
{
    static const char *const aggs[] = {"SUM", "MIN", "MAX"};
    switch (below(g, 30)) {
    case 0: case 1: case 2: case 3: case 4:
        arg(g, "ZADD"); key(g, 'z');
        if (chance(g, 15))
            arg(g, "%s", chance(g, 50) ? "NX" : chance(g, 50) ? "GT" : "CH");
        for (unsigned i = 0, n = 1 + below(g, 6); i < n; i++) {
            score(g);
            member(g, 200);
        }
        break;
    case 5: arg(g, "ZINCRBY"); key(g, 'z'); score(g); member(g, 200); break;
    case 6: case 7:
        if (skip_removal(g)) {
            arg(g, "ZADD"); key(g, 'z'); score(g); member(g, 200);
            break;
        }
        arg(g, "ZREM"); key(g, 'z');
        for (unsigned i = 0, n = 1 + below(g, 6); i < n; i++)
            member(g, 200);
        break;
    case 8: arg(g, "ZRANGE"); key(g, 'z'); arg(g, "%d", (int)below(g, 10) - 3); arg(g, "%d", (int)below(g, 200) - 20); if (chance(g, 50)) arg(g, "WITHSCORES"); break;
    case 9:
        arg(g, "ZRANGEBYSCORE"); key(g, 'z'); score_bound(g); score_bound(g);
        if (chance(g, 40)) { arg(g, "LIMIT"); arg(g, "%u", below(g, 5)); arg(g, "%d", (int)below(g, 10) - 1); }
        break;
    case 10: arg(g, "ZREVRANGEBYSCORE"); key(g, 'z'); score_bound(g); score_bound(g); arg(g, "WITHSCORES"); break;
    case 11: arg(g, "ZRANGEBYLEX"); key(g, 'z'); lex_bound(g); lex_bound(g); break;
    case 12: arg(g, "ZREVRANGEBYLEX"); key(g, 'z'); lex_bound(g); lex_bound(g); break;
    case 13: arg(g, "ZLEXCOUNT"); key(g, 'z'); lex_bound(g); lex_bound(g); break;
    case 14: arg(g, "ZCOUNT"); key(g, 'z'); score_bound(g); score_bound(g); break;
    case 15: arg(g, "ZRANK"); key(g, 'z'); member(g, 200); break;
    case 16: arg(g, chance(g, 50) ? "ZPOPMIN" : "ZPOPMAX"); key(g, skip_removal(g) ? 'x' : 'z'); if (chance(g, 50)) arg(g, "%u", below(g, 5)); break;
    case 17: arg(g, "ZREMRANGEBYRANK"); key(g, skip_removal(g) ? 'x' : 'z'); arg(g, "%d", (int)below(g, 5)); arg(g, "%d", (int)below(g, 8)); break;
    case 18: arg(g, "ZREMRANGEBYSCORE"); key(g, skip_removal(g) ? 'x' : 'z'); score_bound(g); score_bound(g); break;
    case 19: case 20: arg(g, "ZSCAN"); key(g, 'z'); cursor(g); scan_opts(g, false); break;
    case 21: case 22: {
        bool inter = chance(g, 50);
        arg(g, inter ? "ZINTERSTORE" : "ZUNIONSTORE");
        if (g->grow && inter)
            arg(g, "tmp%u", below(g, 3));
        else
            key(g, 'z');
        unsigned n = 1 + below(g, 3);
        arg(g, "%u", n);
        for (unsigned i = 0; i < n; i++)
            key(g, chance(g, 30) ? 's' : 'z'); /* plain sets count with score 1 */
        if (chance(g, 30)) {
            arg(g, "WEIGHTS");
            for (unsigned i = 0; i < n; i++)
                arg(g, "%d", (int)below(g, 5) - 1);
        }
        if (chance(g, 30)) {
            arg(g, "AGGREGATE");
            arg(g, "%s", aggs[below(g, 3)]);
        }
        break;
    }
    case 23: arg(g, "ZRANGESTORE"); arg(g, "tmp%u", below(g, 3)); key(g, 'z'); score_bound(g); score_bound(g); arg(g, "BYSCORE"); break;
    case 24: arg(g, "ZRANGESTORE"); if (g->grow) arg(g, "tmp%u", below(g, 3)); else key(g, 'z'); key(g, 'z'); arg(g, "0"); arg(g, "%d", (int)below(g, 300) - 1); break;
    case 25: arg(g, "ZMSCORE"); key(g, 'z'); member(g, 200); member(g, 200); break;
    case 26: arg(g, "ZCARD"); key(g, 'z'); break;
    case 27: arg(g, "ZREVRANGE"); key(g, 'z'); arg(g, "0"); arg(g, "-1"); arg(g, "WITHSCORES"); break;
    default: arg(g, "ZSCORE"); key(g, 'z'); member(g, 200); break;
    }
}

static void any_key(struct gen *g)
{
    key(g, "tlshz"[below(g, 5)]);
}

/* The key of a command that deletes or replaces it: while growing, a
 * string key. */
static void victim_key(struct gen *g)
{
    if (g->grow)
        key(g, 't');
    else
        any_key(g);
}

/* While growing, most removals give way to additions. */
static bool skip_removal(struct gen *g)
{
    return g->grow && chance(g, 75);
}

static void gen_keys(struct gen *g)
{
    switch (below(g, 24)) {
    case 0:
        arg(g, "DEL");
        if (g->grow && chance(g, 10))
            key(g, "lshz"[below(g, 4)]); /* now and then a fresh start */
        else
            victim_key(g);
        break;
    case 1: arg(g, "EXISTS"); any_key(g); any_key(g); break;
    case 2: arg(g, "TYPE"); any_key(g); break;
    case 3: arg(g, chance(g, 50) ? "RENAME" : "RENAMENX"); victim_key(g); victim_key(g); break;
    case 4: arg(g, "COPY"); any_key(g); victim_key(g); if (chance(g, 50)) arg(g, "REPLACE"); break;
    case 5: arg(g, "MOVE"); victim_key(g); arg(g, "%u", below(g, 3)); break;
    case 6: case 7: arg(g, "PEXPIRE"); any_key(g); arg(g, "%u", g->grow ? 2000 + below(g, 60000) : below(g, 600)); break;
    case 8: arg(g, "EXPIRE"); victim_key(g); arg(g, "%u", below(g, 3)); if (chance(g, 30)) arg(g, chance(g, 50) ? "GT" : "LT"); break;
    case 9: arg(g, "PERSIST"); any_key(g); break;
    case 10: arg(g, "PTTL"); any_key(g); break;
    case 11: case 12: case 13: arg(g, "SCAN"); cursor(g); scan_opts(g, true); break;
    case 14: case 15: arg(g, "RANDOMKEY"); break;
    case 16: case 17: arg(g, "SWEEP"); arg(g, "%u", 1 + below(g, chance(g, 70) ? 5 : 300)); break;
    case 18: arg(g, "DBSIZE"); break;
    case 19: arg(g, "KEYS"); arg(g, chance(g, 50) ? "*" : "k1*"); break;
    case 20: arg(g, "TIME"); break;
    case 21: arg(g, "PEXPIREAT"); victim_key(g); arg(g, "%" PRIu64, T0 + below(g, 100000)); break;
    case 22: arg(g, "COPY"); any_key(g); victim_key(g); arg(g, "DB"); arg(g, "%u", below(g, 3)); break;
    default:
        /* rare: emptying a database */
        if (!g->grow && chance(g, 3))
            arg(g, "FLUSHDB");
        else
            arg(g, "ECHO"), arg(g, "x");
        break;
    }
}

/* One plain command into g->a. */
static void gen_command(struct gen *g)
{
    g->argc = 0;
    switch (below(g, 14)) {
    case 0: case 1: gen_string(g); break;
    case 2: case 3: case 4: gen_hash(g); break;
    case 5: case 6: case 7: gen_set(g); break;
    case 8: case 13: gen_list(g); break;
    case 9: case 10: gen_zset(g); break;
    default: gen_keys(g); break;
    }
}

static void encode_cmd(struct gen *g, struct rabia_buf *out)
{
    const char *argv[MAXARGS];
    for (int i = 0; i < g->argc; i++)
        argv[i] = g->a[i];
    CHECK_EQ(rabia_kv_encode_argv(out, g->argc, argv, g->len), 0);
}

/* A plain command, now and then run in another database (@DB n op). */
static void gen_simple(struct gen *g, struct rabia_buf *out)
{
    struct rabia_buf op = {0};
    gen_command(g);
    encode_cmd(g, &op);
    if (chance(g, 20)) {
        char db[4];
        snprintf(db, sizeof db, "%u", below(g, 3));
        const char *argv[3] = {"@DB", db, (const char *)op.data};
        size_t lens[3] = {3, strlen(db), op.len};
        CHECK_EQ(rabia_kv_encode_argv(out, 3, argv, lens), 0);
    } else {
        CHECK_EQ(rabia_buf_append(out, op.data, op.len), 0);
    }
    rabia_buf_free(&op);
}

/* One operation: a command, a transaction (TXN, or TXNW with versions
 * from earlier WATCHVER replies, some stale), or a WATCHVER. */
static void gen_op(struct gen *g, struct rabia_buf *out)
{
    unsigned r = below(g, 100);
    if (r < 90) {
        gen_simple(g, out);
        return;
    }
    if (r < 94) {
        g->argc = 0;
        arg(g, "WATCHVER");
        for (unsigned i = 0, n = 1 + below(g, 3); i < n; i++)
            any_key(g);
        struct rabia_buf op = {0};
        encode_cmd(g, &op);
        char db[4];
        snprintf(db, sizeof db, "%u", below(g, 3));
        const char *argv[3] = {"@DB", db, (const char *)op.data};
        size_t lens[3] = {3, strlen(db), op.len};
        CHECK_EQ(rabia_kv_encode_argv(out, 3, argv, lens), 0);
        rabia_buf_free(&op);
        return;
    }
    /* the commands of a transaction, a SELECT among them now and then */
    struct rabia_buf sub[6] = {{0}};
    unsigned n = 1 + below(g, 5);
    for (unsigned i = 0; i < n; i++) {
        if (chance(g, 10)) {
            char db[4];
            snprintf(db, sizeof db, "%u", below(g, 3));
            const char *argv[2] = {"SELECT", db};
            CHECK_EQ(rabia_kv_encode_argv(&sub[i], 2, argv, NULL), 0);
        } else {
            gen_simple(g, &sub[i]);
        }
    }
    if (r < 97 || g->nw == 0) {
        const uint8_t *ops[6];
        size_t lens[6];
        for (unsigned i = 0; i < n; i++)
            ops[i] = sub[i].data, lens[i] = sub[i].len;
        CHECK_EQ(rabia_kv_encode_txn(out, (int)n, ops, lens), 0);
    } else {
        unsigned nw = 1 + below(g, 2);
        const char *argv[2 + 3 * 2 + 6];
        size_t lens[2 + 3 * 2 + 6];
        char nbuf[4];
        snprintf(nbuf, sizeof nbuf, "%u", nw);
        int k = 0;
        argv[k] = "TXNW", lens[k++] = 4;
        argv[k] = nbuf, lens[k++] = strlen(nbuf);
        for (unsigned i = 0; i < nw; i++) {
            const struct watched *w = &g->w[below(g, (unsigned)g->nw)];
            argv[k] = w->db, lens[k++] = strlen(w->db);
            argv[k] = w->key, lens[k++] = strlen(w->key);
            argv[k] = w->ver, lens[k++] = strlen(w->ver);
        }
        for (unsigned i = 0; i < n; i++)
            argv[k] = (const char *)sub[i].data, lens[k++] = sub[i].len;
        CHECK_EQ(rabia_kv_encode_argv(out, k, argv, lens), 0);
    }
    for (unsigned i = 0; i < 6; i++)
        rabia_buf_free(&sub[i]);
}

/* Learn from A's reply: SCAN-family cursors, WATCHVER versions. */
static void learn(struct gen *g, const struct rabia_buf *op, struct rabia_buf *rep)
{
    /* NUL-terminated for sscanf, the NUL not counted */
    CHECK_EQ(rabia_buf_put_u8(rep, 0), 0);
    rep->len--;
    /* a cursor: the reply starts *2 $n cursor */
    char cur[24];
    if (rep->len > 8 && memcmp(rep->data, "*2\r\n$", 5) == 0 &&
        sscanf((const char *)rep->data, "*2\r\n$%*u\r\n%23[0-9]\r\n", cur) == 1 && strcmp(cur, "0") != 0) {
        int at = g->ncursors < NCURSORS ? g->ncursors++ : (int)below(g, NCURSORS);
        snprintf(g->cursors[at], sizeof g->cursors[at], "%s", cur);
    }
    /* WATCHVER (sent as @DB n WATCHVER key...): the versions, key by key */
    uint32_t argc, l0, l1, l2;
    if (op->len < 12)
        return;
    memcpy(&argc, op->data, 4);
    memcpy(&l0, op->data + 4, 4);
    if (argc != 3 || l0 != 3 || memcmp(op->data + 8, "@DB", 3) != 0)
        return;
    const uint8_t *p = op->data + 11;
    memcpy(&l1, p, 4);
    char db[4];
    snprintf(db, sizeof db, "%.*s", (int)l1, (const char *)p + 4);
    p += 4 + l1;
    memcpy(&l2, p, 4);
    const uint8_t *in = p + 4;
    uint32_t n, ln;
    memcpy(&n, in, 4);
    memcpy(&ln, in + 4, 4);
    if (ln != 8 || memcmp(in + 8, "WATCHVER", 8) != 0)
        return;
    const uint8_t *k = in + 16;
    const char *r = (const char *)rep->data;
    if (*r != '*')
        return;
    r = strstr(r, "\r\n") + 2;
    for (uint32_t i = 1; i < n; i++) {
        uint32_t kl;
        memcpy(&kl, k, 4);
        struct watched *w = &g->w[g->nw < NWATCH ? g->nw++ : (int)below(g, NWATCH)];
        snprintf(w->db, sizeof w->db, "%s", db);
        snprintf(w->key, sizeof w->key, "%.*s", (int)kl, (const char *)k + 4);
        CHECK_EQ(sscanf(r, ":%23[0-9]", w->ver), 1);
        r = strstr(r, "\r\n") + 2;
        k += 4 + kl;
    }
}

/* ------------------------------------------------------------------ */
/* Running.                                                            */

static void show_op(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && i < 400; i++)
        fputc(p[i] >= 32 && p[i] < 127 ? p[i] : '.', stderr);
    fputc('\n', stderr);
}

static void show_reply(const char *who, const struct rabia_buf *r)
{
    fprintf(stderr, "  %s (%zu bytes): ", who, r->len);
    show_op(r->data, r->len < 600 ? r->len : 600);
}

static bool same(const struct rabia_buf *a, const struct rabia_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* History records: 'B' u64 slot u64 time, or 'O' u32 len op. */
static void record_begin(struct rabia_buf *h, uint64_t slot, uint64_t t)
{
    rabia_buf_put_u8(h, 'B');
    rabia_buf_put_u64(h, slot);
    rabia_buf_put_u64(h, t);
}

static void record_op(struct rabia_buf *h, const struct rabia_buf *op)
{
    rabia_buf_put_u8(h, 'O');
    rabia_buf_put_u32(h, (uint32_t)op->len);
    rabia_buf_append(h, op->data, op->len);
}

static void *replay(const struct rabia_buf *h)
{
    void *c = rabia_sm_kv.create();
    struct rabia_buf rep = {0};
    for (size_t at = 0; at < h->len;) {
        uint8_t kind = h->data[at++];
        if (kind == 'B') {
            struct rabia_sm_batch b;
            memcpy(&b.slot, h->data + at, 8);
            memcpy(&b.time_ms, h->data + at + 8, 8);
            at += 16;
            rabia_sm_kv.begin(c, &b);
        } else {
            uint32_t n;
            memcpy(&n, h->data + at, 4);
            at += 4;
            rabia_buf_clear(&rep);
            CHECK_EQ(rabia_sm_kv.apply(c, h->data + at, n, &rep), 0);
            at += n;
        }
    }
    rabia_buf_free(&rep);
    return c;
}

static uint64_t state_hash(void *sm)
{
    uint64_t h = 0;
    CHECK_EQ(rabia_sm_kv.state_hash(sm, &h), 0);
    return h;
}

/* One seed: false at the first difference (reported). */
static bool run_seed(uint64_t seed, int nops)
{
    struct gen g = {.st = seed * 0x9e3779b97f4a7c15ull + 1};
    void *A = rabia_sm_kv.create(), *B = rabia_sm_kv.create();
    struct rabia_buf op = {0}, ra = {0}, rb = {0}, sa = {0}, sb = {0}, hist = {0};
    uint64_t slot = 0, t = T0;
    int next_batch = 0, next_restore = 50, restores = 0;
    bool ok = true;
    for (int i = 0; i < nops && ok; i++) {
        if (i == next_batch) {
            /* the clock mostly creeps, sometimes jumps, sometimes a stamp lags */
            unsigned r = below(&g, 100);
            t += r < 80 ? below(&g, 30) : r < 95 ? below(&g, 400) : 0;
            uint64_t stamp = r >= 97 ? t - 500 : t;
            struct rabia_sm_batch b = {.slot = ++slot, .time_ms = stamp};
            rabia_sm_kv.begin(A, &b);
            rabia_sm_kv.begin(B, &b);
            record_begin(&hist, b.slot, b.time_ms);
            next_batch = i + 1 + (int)below(&g, 8);
        }
        if (i == next_restore) {
            rabia_buf_clear(&sa);
            rabia_buf_clear(&sb);
            CHECK_EQ(rabia_sm_kv.snapshot(A, &sa), 0);
            CHECK_EQ(rabia_sm_kv.snapshot(B, &sb), 0);
            if (!same(&sa, &sb)) {
                fprintf(stderr, "seed %" PRIu64 " op %d: snapshots differ (%zu / %zu bytes)\n", seed, i, sa.len,
                        sb.len);
                ok = false;
                break;
            }
            if (state_hash(A) != state_hash(B)) {
                fprintf(stderr, "seed %" PRIu64 " op %d: equal snapshots, different state hashes\n", seed, i);
                ok = false;
                break;
            }
            CHECK_EQ(rabia_sm_kv.restore(B, sa.data, sa.len), 0);
            if (state_hash(A) != state_hash(B)) {
                fprintf(stderr, "seed %" PRIu64 " op %d: the restored store's hash differs from its source's\n", seed,
                        i);
                ok = false;
                break;
            }
            /* restoring is idempotent: the restored store saves the same bytes */
            rabia_buf_clear(&sb);
            CHECK_EQ(rabia_sm_kv.snapshot(B, &sb), 0);
            CHECK(same(&sa, &sb));
            restores++;
            next_restore = i + 20 + (int)below(&g, 400);
        }
        rabia_buf_clear(&op);
        g.grow = i / 3000 % 4 != 3;
        gen_op(&g, &op);
        record_op(&hist, &op);
        rabia_buf_clear(&ra);
        rabia_buf_clear(&rb);
        CHECK_EQ(rabia_sm_kv.apply(A, op.data, op.len, &ra), 0);
        CHECK_EQ(rabia_sm_kv.apply(B, op.data, op.len, &rb), 0);
        if (!same(&ra, &rb)) {
            fprintf(stderr, "seed %" PRIu64 " op %d (%d restores): replies differ for ", seed, i, restores);
            show_op(op.data, op.len);
            show_reply("A", &ra);
            show_reply("B", &rb);
            ok = false;
        }
        learn(&g, &op, &ra);
        if (ok && i % 7 == 0 && state_hash(A) != state_hash(B)) {
            fprintf(stderr, "seed %" PRIu64 " op %d (%d restores): state hashes differ after ", seed, i, restores);
            show_op(op.data, op.len);
            ok = false;
        }
    }
    if (ok) {
        void *C = replay(&hist);
        rabia_buf_clear(&sa);
        struct rabia_buf sc = {0};
        CHECK_EQ(rabia_sm_kv.snapshot(A, &sa), 0);
        CHECK_EQ(rabia_sm_kv.snapshot(C, &sc), 0);
        if (!same(&sa, &sc)) {
            fprintf(stderr, "seed %" PRIu64 ": the replayed store's snapshot differs\n", seed);
            ok = false;
        } else if (state_hash(A) != state_hash(C)) {
            fprintf(stderr, "seed %" PRIu64 ": the replayed store's state hash differs\n", seed);
            ok = false;
        }
        rabia_buf_free(&sc);
        rabia_sm_kv.destroy(C);
    }
    rabia_buf_free(&op);
    rabia_buf_free(&ra);
    rabia_buf_free(&rb);
    rabia_buf_free(&sa);
    rabia_buf_free(&sb);
    rabia_buf_free(&hist);
    rabia_sm_kv.destroy(A);
    rabia_sm_kv.destroy(B);
    return ok;
}

static int nops = 12000;

static void test_replay_seeds(void)
{
    for (uint64_t seed = 1; seed <= 4; seed++)
        CHECK(run_seed(seed, nops));
}

int main(int argc, char **argv)
{
    /* test_kv_replay [ops [first-seed count]]: longer runs by hand */
    if (argc > 1)
        nops = atoi(argv[1]);
    if (argc > 3) {
        uint64_t first = strtoull(argv[2], NULL, 10), n = strtoull(argv[3], NULL, 10);
        int bad = 0;
        for (uint64_t s = first; s < first + n; s++)
            bad += !run_seed(s, nops);
        printf("%d of %" PRIu64 " seeds differ\n", bad, n);
        return bad != 0;
    }
    RUN(test_replay_seeds);
    return CHECK_DONE();
}
