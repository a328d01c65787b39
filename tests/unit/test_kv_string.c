/* kv/t_string.c: the string commands' replies (checked against Redis
 * 7.0.15), expiry options by the log's clock, WATCH versions, binary
 * values, and the string type's snapshot encoding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kv_check.h"

#define T0 1700000000000ull /* the log's clock in these tests (Unix ms) */

static void *fresh(void)
{
    return kv_fresh_at(T0);
}

/* Replies compared byte for byte (they may hold NULs). */
static struct rabia_buf rep;
static void run_bin(void *sm, int n, const char *const *argv, const size_t *lens)
{
    struct rabia_buf op = {0};
    CHECK_EQ(rabia_kv_encode_argv(&op, n, argv, lens), 0);
    rabia_buf_clear(&rep);
    CHECK_EQ(rabia_sm_kv.apply(sm, op.data, op.len, &rep), 0);
    rabia_buf_free(&op);
}
#define EXPECT_BIN(want)                                                                   \
    do {                                                                                   \
        if (rep.len != sizeof(want) - 1 || memcmp(rep.data, want, rep.len) != 0) {         \
            fprintf(stderr, "%s:%d: binary reply mismatch (%zu bytes)\n", __FILE__, __LINE__, \
                    rep.len);                                                              \
            check_failures++;                                                              \
        }                                                                                  \
    } while (0)

/* A table of command lines and the exact replies Redis 7.0.15 gives, run
 * in order on one store (tests/unit/README: the same table was run
 * against redis-server after FLUSHALL). No expiry time is read back here:
 * that depends on the clock. */
static const char *const basic[][2] = {
    {"GET k", "$-1\r\n"},
    {"SET k v", "+OK\r\n"},
    {"GET k", "$1\r\nv\r\n"},
    {"set K V", "+OK\r\n"},
    {"GET K", "$1\r\nV\r\n"},
    {"SET k v2 NX", "$-1\r\n"},
    {"SET k v2 XX", "+OK\r\n"},
    {"SET k2 v XX", "$-1\r\n"},
    {"SET k2 v xx get", "$-1\r\n"},
    {"EXISTS k2", ":0\r\n"},
    {"SET k v3 GET", "$2\r\nv2\r\n"},
    {"SET k v4 NX GET", "$2\r\nv3\r\n"},
    {"GET k", "$2\r\nv3\r\n"},
    {"SET k v4 XX GET", "$2\r\nv3\r\n"},
    {"SET k3 v NX GET", "$-1\r\n"},
    {"GET k3", "$1\r\nv\r\n"},
    {"SET k v NX XX", "-ERR syntax error\r\n"},
    {"SET k v XX NX", "-ERR syntax error\r\n"},
    {"SET k v NX NX", "$-1\r\n"},
    {"SET k v XX XX", "+OK\r\n"},
    {"SET k v EX 10 PX 10", "-ERR syntax error\r\n"},
    {"SET k v EX 10 EXAT 10", "-ERR syntax error\r\n"},
    {"SET k v PXAT 10 EX 10", "-ERR syntax error\r\n"},
    {"SET k v KEEPTTL EX 10", "-ERR syntax error\r\n"},
    {"SET k v EX 10 KEEPTTL", "-ERR syntax error\r\n"},
    {"SET k v EX", "-ERR syntax error\r\n"},
    {"SET k v PERSIST", "-ERR syntax error\r\n"},
    {"SET k v FOO", "-ERR syntax error\r\n"},
    {"SET k v EX 0", "-ERR invalid expire time in 'set' command\r\n"},
    {"SET k v EX -1", "-ERR invalid expire time in 'set' command\r\n"},
    {"SET k v PX 0", "-ERR invalid expire time in 'set' command\r\n"},
    {"SET k v EXAT 0", "-ERR invalid expire time in 'set' command\r\n"},
    {"SET k v PXAT -5", "-ERR invalid expire time in 'set' command\r\n"},
    {"SET k v EX 9223372036854775807", "-ERR invalid expire time in 'set' command\r\n"},
    {"SET k v EX 9223372036854776", "-ERR invalid expire time in 'set' command\r\n"},
    {"SET k v EXAT 9223372036854775807", "-ERR invalid expire time in 'set' command\r\n"},
    {"SET k v PX 9223372036854775807", "-ERR invalid expire time in 'set' command\r\n"},
    {"SET k v EX abc", "-ERR value is not an integer or out of range\r\n"},
    {"SET k v EX 1.5", "-ERR value is not an integer or out of range\r\n"},
    {"SET k v GET EX 0", "-ERR invalid expire time in 'set' command\r\n"},
    {"GET k", "$1\r\nv\r\n"},
    {"SET k v EX 10 EX 20", "+OK\r\n"},
    {"SET k w KEEPTTL KEEPTTL", "+OK\r\n"},
    {"SET k v PXAT 9223372036854775807", "+OK\r\n"},
    {"GET k", "$1\r\nv\r\n"},
    {"SET k v", "+OK\r\n"},
    {"SETNX k x", ":0\r\n"},
    {"SETNX n x", ":1\r\n"},
    {"GET n", "$1\r\nx\r\n"},
    {"SETEX k 0 v", "-ERR invalid expire time in 'setex' command\r\n"},
    {"SETEX k -1 v", "-ERR invalid expire time in 'setex' command\r\n"},
    {"SETEX k abc v", "-ERR value is not an integer or out of range\r\n"},
    {"PSETEX k 0 v", "-ERR invalid expire time in 'psetex' command\r\n"},
    {"PSETEX k -5 v", "-ERR invalid expire time in 'psetex' command\r\n"},
    {"SETEX k 100 sv", "+OK\r\n"},
    {"PSETEX k 100000 pv", "+OK\r\n"},
    {"GET k", "$2\r\npv\r\n"},
    {"GETSET k gs", "$2\r\npv\r\n"},
    {"GETSET nk gs", "$-1\r\n"},
    {"GET nk", "$2\r\ngs\r\n"},
    {"GETDEL nk", "$2\r\ngs\r\n"},
    {"GETDEL nk", "$-1\r\n"},
    {"EXISTS nk", ":0\r\n"},
    {"GETEX nokey", "$-1\r\n"},
    {"GETEX nokey EX 0", "$-1\r\n"},
    {"GETEX nokey FOO", "-ERR syntax error\r\n"},
    {"GETEX k", "$2\r\ngs\r\n"},
    {"GETEX k EX 0", "-ERR invalid expire time in 'getex' command\r\n"},
    {"GETEX k PX -1", "-ERR invalid expire time in 'getex' command\r\n"},
    {"GETEX k EX x", "-ERR value is not an integer or out of range\r\n"},
    {"GETEX k PERSIST EX 10", "-ERR syntax error\r\n"},
    {"GETEX k EX 10 PERSIST", "-ERR syntax error\r\n"},
    {"GETEX k PERSIST PERSIST", "$2\r\ngs\r\n"},
    {"GETEX k EX 10 EX 20", "$2\r\ngs\r\n"},
    {"GETEX k KEEPTTL", "-ERR syntax error\r\n"},
    {"GETEX k NX", "-ERR syntax error\r\n"},
    {"GETEX k GET", "-ERR syntax error\r\n"},
    {"GETEX k EX", "-ERR syntax error\r\n"},
    {"GETEX k EXAT 1", "$2\r\ngs\r\n"},
    {"EXISTS k", ":0\r\n"},
    {"SET k v", "+OK\r\n"},
    {"GETEX k PXAT 1", "$1\r\nv\r\n"},
    {"EXISTS k", ":0\r\n"},
    {"MSET a", "-ERR wrong number of arguments for 'mset' command\r\n"},
    {"MSET a 1 b", "-ERR wrong number of arguments for 'mset' command\r\n"},
    {"MSETNX a 1 b", "-ERR wrong number of arguments for 'msetnx' command\r\n"},
    {"EXISTS a", ":0\r\n"},
    {"MSET a 1 b 2 a 3", "+OK\r\n"},
    {"MGET a b c", "*3\r\n$1\r\n3\r\n$1\r\n2\r\n$-1\r\n"},
    {"MSETNX c 1 a 2", ":0\r\n"},
    {"EXISTS c", ":0\r\n"},
    {"MSETNX c 1 d 2 c 5", ":1\r\n"},
    {"MGET c d", "*2\r\n$1\r\n5\r\n$1\r\n2\r\n"},
    {"STRLEN nokey", ":0\r\n"},
    {"STRLEN c", ":1\r\n"},
    {"APPEND ap hello", ":5\r\n"},
    {"APPEND ap _world", ":11\r\n"},
    {"GET ap", "$11\r\nhello_world\r\n"},
    {"STRLEN ap", ":11\r\n"},
    {"GETRANGE nokey 0 1", "$0\r\n\r\n"},
    {"GETRANGE ap 0 4", "$5\r\nhello\r\n"},
    {"GETRANGE ap -5 -1", "$5\r\nworld\r\n"},
    {"GETRANGE ap -1 -5", "$0\r\n\r\n"},
    {"GETRANGE ap -100 -200", "$0\r\n\r\n"},
    {"GETRANGE ap -100 2", "$3\r\nhel\r\n"},
    {"GETRANGE ap 6 100", "$5\r\nworld\r\n"},
    {"GETRANGE ap 11 11", "$0\r\n\r\n"},
    {"GETRANGE ap 10 10", "$1\r\nd\r\n"},
    {"GETRANGE ap 3 2", "$0\r\n\r\n"},
    {"GETRANGE ap 0 -100", "$1\r\nh\r\n"},
    {"GETRANGE ap -9223372036854775808 9223372036854775807", "$11\r\nhello_world\r\n"},
    {"GETRANGE ap x 1", "-ERR value is not an integer or out of range\r\n"},
    {"GETRANGE ap 1 y", "-ERR value is not an integer or out of range\r\n"},
    {"SETRANGE ap -1 x", "-ERR offset is out of range\r\n"},
    {"SETRANGE ap x x", "-ERR value is not an integer or out of range\r\n"},
    {"SETRANGE ap 0 H", ":11\r\n"},
    {"SETRANGE ap 6 W", ":11\r\n"},
    {"SETRANGE ap 11 !", ":12\r\n"},
    {"GET ap", "$12\r\nHello_World!\r\n"},
    {"SETRANGE ap 536870912 x", "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"},
    {"SETRANGE nr 536870912 x", "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"},
    {"SETRANGE nr 9223372036854775807 x", "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"},
    {"EXISTS nr", ":0\r\n"},
    {"SETRANGE nr 2 ab", ":4\r\n"},
    {"STRLEN nr", ":4\r\n"},
    {"INCR i", ":1\r\n"},
    {"INCRBY i 10", ":11\r\n"},
    {"DECR i", ":10\r\n"},
    {"DECRBY i 20", ":-10\r\n"},
    {"INCRBY i -5", ":-15\r\n"},
    {"GET i", "$3\r\n-15\r\n"},
    {"INCRBY i x", "-ERR value is not an integer or out of range\r\n"},
    {"INCRBY i 922337203685477580700", "-ERR value is not an integer or out of range\r\n"},
    {"DECRBY i -9223372036854775808", "-ERR decrement would overflow\r\n"},
    {"INCR ap", "-ERR value is not an integer or out of range\r\n"},
    {"SET i 9223372036854775807", "+OK\r\n"},
    {"INCR i", "-ERR increment or decrement would overflow\r\n"},
    {"INCRBY i 0", ":9223372036854775807\r\n"},
    {"DECRBY i 9223372036854775807", ":0\r\n"},
    {"SET i -9223372036854775808", "+OK\r\n"},
    {"DECR i", "-ERR increment or decrement would overflow\r\n"},
    {"INCRBY i -1", "-ERR increment or decrement would overflow\r\n"},
    {"INCR i", ":-9223372036854775807\r\n"},
    {"SET i -0", "+OK\r\n"},
    {"INCR i", "-ERR value is not an integer or out of range\r\n"},
    {"SET i 007", "+OK\r\n"},
    {"INCR i", "-ERR value is not an integer or out of range\r\n"},
    {"SET i +7", "+OK\r\n"},
    {"INCR i", "-ERR value is not an integer or out of range\r\n"},
    {"GET i", "$2\r\n+7\r\n"},
    {"INCRBYFLOAT f 10.5", "$4\r\n10.5\r\n"},
    {"INCRBYFLOAT f -0.5", "$2\r\n10\r\n"},
    {"INCRBYFLOAT f 1.0e1", "$2\r\n20\r\n"},
    {"INCRBYFLOAT f -30", "$3\r\n-10\r\n"},
    {"SET f 0.1", "+OK\r\n"},
    {"INCRBYFLOAT f 0.2", "$3\r\n0.3\r\n"},
    {"INCRBYFLOAT f -0.3", "$1\r\n0\r\n"},
    {"SET f 3.0e3", "+OK\r\n"},
    {"INCRBYFLOAT f 1.5", "$6\r\n3001.5\r\n"},
    {"SET f 5.0000", "+OK\r\n"},
    {"INCRBYFLOAT f 0", "$1\r\n5\r\n"},
    {"SET f 1e-30", "+OK\r\n"},
    {"INCRBYFLOAT f 0", "$1\r\n0\r\n"},
    {"SET f -1e-30", "+OK\r\n"},
    {"INCRBYFLOAT f 0", "$1\r\n0\r\n"},
    {"SET f 0x10", "+OK\r\n"},
    {"INCRBYFLOAT f 1", "$2\r\n17\r\n"},
    {"INCRBYFLOAT f inf", "-ERR increment would produce NaN or Infinity\r\n"},
    {"INCRBYFLOAT f -INF", "-ERR increment would produce NaN or Infinity\r\n"},
    {"INCRBYFLOAT f nan", "-ERR value is not a valid float\r\n"},
    {"INCRBYFLOAT f 1e5000", "-ERR value is not a valid float\r\n"},
    {"INCRBYFLOAT f abc", "-ERR value is not a valid float\r\n"},
    {"INCRBYFLOAT f 1,5", "-ERR value is not a valid float\r\n"},
    {"INCRBYFLOAT nokey x", "-ERR value is not a valid float\r\n"},
    {"GET f", "$2\r\n17\r\n"},
    {"INCRBYFLOAT ap 1", "-ERR value is not a valid float\r\n"},
    {"SET f 1e100", "+OK\r\n"},
    {"INCRBYFLOAT f 0",
     "$100\r\n9999999999999999999669353532207342619498699019828496079271391541752018669482644324418977"
     "840117055488\r\n"},
    {"SET f 1e300", "+OK\r\n"},
    {"INCRBYFLOAT f 1e300",
     "$301\r\n2000000000000000000017994648159118387741047888546581495876520164642531293192361871511698"
     "30416750099438070074501722854967180718511236934596782619252104149729257465427128368730658816851"
     "02152120335794533058647400611027658952419890805895455637792412123585352232541948213011343747722"
     "11380178849830208012288\r\n"},
    {"GETRANGE f 0 10", "$11\r\n20000000000\r\n"},
    {"DEL a b c d f i k n K ap nr k3", ":11\r\n"},
};

static void test_table(void)
{
    void *sm = fresh();
    KV_DO_TABLE(sm, basic);
    KV_DO(sm, "DBSIZE", ":0\r\n");
    rabia_sm_kv.destroy(sm);
}

/* Expiry options, read back with PTTL, on the log's clock. A key whose
 * expiry is T is still there at T and gone after. */
static void test_expiry(void)
{
    void *sm = fresh();
    KV_DO(sm, "SET k v EX 10", "+OK\r\n");
    KV_DO(sm, "PTTL k", ":10000\r\n");
    KV_DO(sm, "SET k v PX 1500", "+OK\r\n");
    KV_DO(sm, "PTTL k", ":1500\r\n");
    KV_DO(sm, "SET k v2 KEEPTTL", "+OK\r\n");
    KV_DO(sm, "PTTL k", ":1500\r\n");
    KV_DO(sm, "SET k v3", "+OK\r\n");
    KV_DO(sm, "PTTL k", ":-1\r\n");
    KV_DO(sm, "SET k v EXAT 1700000003", "+OK\r\n");
    KV_DO(sm, "PTTL k", ":3000\r\n");
    KV_DO(sm, "SET k v PXAT 1700000000500", "+OK\r\n");
    KV_DO(sm, "PTTL k", ":500\r\n");
    /* a failed SET changes nothing, TTL included */
    KV_DO(sm, "SET k x EX 0", "-ERR invalid expire time in 'set' command\r\n");
    KV_DO(sm, "SET k x NX EX 5", "$-1\r\n");
    KV_DO(sm, "PTTL k", ":500\r\n");
    KV_DO(sm, "GET k", "$1\r\nv\r\n");
    kv_at(sm, 2, T0 + 500);
    KV_DO(sm, "GET k", "$1\r\nv\r\n");
    kv_at(sm, 3, T0 + 501);
    KV_DO(sm, "GET k", "$-1\r\n");
    KV_DO(sm, "EXISTS k", ":0\r\n");
    uint64_t now = T0 + 501;

    /* past absolute times: SET stores an already expired key */
    KV_DO(sm, "SET p v EXAT 1", "+OK\r\n");
    KV_DO(sm, "GET p", "$-1\r\n");
    KV_DO(sm, "SETEX s 2 v", "+OK\r\n");
    KV_DO(sm, "PTTL s", ":2000\r\n");
    KV_DO(sm, "PSETEX s 20 v", "+OK\r\n");
    KV_DO(sm, "PTTL s", ":20\r\n");
    KV_DO(sm, "SETEX s 9223372036854776 v", "-ERR invalid expire time in 'setex' command\r\n");
    KV_DO(sm, "PSETEX s 9223372036854775807 v", "-ERR invalid expire time in 'psetex' command\r\n");
    /* the largest PX that still fits once now is added */
    char line[128];
    snprintf(line, sizeof line, "PSETEX s %llu v", (unsigned long long)(INT64_MAX - now));
    KV_DO(sm, line, "+OK\r\n");
    snprintf(line, sizeof line, "PSETEX s %llu v", (unsigned long long)(INT64_MAX - now + 1));
    KV_DO(sm, line, "-ERR invalid expire time in 'psetex' command\r\n");
    KV_DO(sm, "GETSET s gs", "$1\r\nv\r\n");
    KV_DO(sm, "PTTL s", ":-1\r\n"); /* GETSET drops the TTL */

    /* GETEX sets, replaces and drops the expiry */
    KV_DO(sm, "SET g v", "+OK\r\n");
    KV_DO(sm, "GETEX g EX 5", "$1\r\nv\r\n");
    KV_DO(sm, "PTTL g", ":5000\r\n");
    KV_DO(sm, "GETEX g PX 7", "$1\r\nv\r\n");
    KV_DO(sm, "PTTL g", ":7\r\n");
    KV_DO(sm, "GETEX g", "$1\r\nv\r\n");
    KV_DO(sm, "PTTL g", ":7\r\n");
    KV_DO(sm, "GETEX g PERSIST", "$1\r\nv\r\n");
    KV_DO(sm, "PTTL g", ":-1\r\n");
    KV_DO(sm, "GETEX g PERSIST", "$1\r\nv\r\n");
    snprintf(line, sizeof line, "GETEX g PXAT %llu", (unsigned long long)now + 1);
    KV_DO(sm, line, "$1\r\nv\r\n");
    KV_DO(sm, "PTTL g", ":1\r\n");
    snprintf(line, sizeof line, "GETEX g PXAT %llu", (unsigned long long)now);
    KV_DO(sm, line, "$1\r\nv\r\n"); /* at now: already expired, deleted */
    KV_DO(sm, "EXISTS g", ":0\r\n");

    /* changes in place keep the TTL; INCR and INCRBYFLOAT too */
    KV_DO(sm, "SET t 1 PX 900", "+OK\r\n");
    KV_DO(sm, "INCR t", ":2\r\n");
    KV_DO(sm, "INCRBYFLOAT t 0.5", "$3\r\n2.5\r\n");
    KV_DO(sm, "APPEND t 0", ":4\r\n");
    KV_DO(sm, "SETRANGE t 0 3", ":4\r\n");
    KV_DO(sm, "PTTL t", ":900\r\n");
    KV_DO(sm, "GET t", "$4\r\n3.50\r\n");
    KV_DO(sm, "MSET t x", "+OK\r\n");
    KV_DO(sm, "PTTL t", ":-1\r\n");
    /* an expired key reads as absent to every command */
    KV_DO(sm, "SET e 5 PX 1", "+OK\r\n");
    kv_at(sm, 4, now + 2);
    KV_DO(sm, "INCR e", ":1\r\n");
    KV_DO(sm, "PTTL e", ":-1\r\n");
    KV_DO(sm, "SET e abc PX 1", "+OK\r\n");
    kv_at(sm, 5, now + 4);
    KV_DO(sm, "APPEND e x", ":1\r\n");
    KV_DO(sm, "SET e abc PX 1", "+OK\r\n");
    kv_at(sm, 6, now + 6);
    KV_DO(sm, "SETNX e y", ":1\r\n");
    KV_DO(sm, "SET e abc PX 1", "+OK\r\n");
    kv_at(sm, 7, now + 8);
    KV_DO(sm, "SET e z XX", "$-1\r\n");
    KV_DO(sm, "STRLEN e", ":0\r\n");
    rabia_sm_kv.destroy(sm);
}

/* A key of another type, made with whichever type's commands exist. */
static const char *other_type(void *sm, const char *key)
{
    static const char *const makers[][2] = {
        {"LPUSH", "a"}, {"SADD", "a"}, {"ZADD", "1 a"}, {"HSET", "f v"}};
    char line[128];
    for (size_t i = 0; i < sizeof makers / sizeof makers[0]; i++) {
        snprintf(line, sizeof line, "%s %s %s", makers[i][0], key, makers[i][1]);
        if (strcmp(kv_reply(sm, line), ":1\r\n") == 0)
            return makers[i][0];
    }
    return NULL;
}

static void test_wrongtype(void)
{
    void *sm = fresh();
    if (!other_type(sm, "L")) {
        printf("     (no other type yet: WRONGTYPE cases skipped)\n");
        rabia_sm_kv.destroy(sm);
        return;
    }
    const char *wt = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    static const char *const cmds[] = {
        "GET L", "SET L v GET", "SET L v NX GET", "GETSET L v", "GETDEL L", "GETEX L",
        "GETEX L EX 0", "GETEX L PERSIST", "STRLEN L", "GETRANGE L 0 1", "APPEND L x",
        "SETRANGE L 0 x", "INCR L", "DECR L", "INCRBY L 1", "DECRBY L 1",
        "INCRBYFLOAT L 1", "INCRBYFLOAT L x",
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        KV_DO(sm, cmds[i], wt);
    /* argument errors come first where Redis checks them first */
    KV_DO(sm, "INCRBY L x", "-ERR value is not an integer or out of range\r\n");
    KV_DO(sm, "GETRANGE L x 0", "-ERR value is not an integer or out of range\r\n");
    KV_DO(sm, "SETRANGE L -1 x", "-ERR offset is out of range\r\n");
    KV_DO(sm, "SET L v EX 0 GET", "-ERR invalid expire time in 'set' command\r\n");
    KV_DO(sm, "GETEX L FOO", "-ERR syntax error\r\n");
    KV_DO(sm, "MGET L nokey", "*2\r\n$-1\r\n$-1\r\n");
    const char *sr[] = {"SETRANGE", "L", "0", ""};
    run_bin(sm, 4, sr, NULL);
    EXPECT_BIN("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    KV_DO(sm, "SETNX L v", ":0\r\n");
    KV_DO(sm, "MSETNX L v", ":0\r\n");
    /* SET overwrites whatever type */
    KV_DO(sm, "SET L v", "+OK\r\n");
    KV_DO(sm, "TYPE L", "+string\r\n");
    KV_DO(sm, "GET L", "$1\r\nv\r\n");
    if (other_type(sm, "M")) {
        KV_DO(sm, "MSET M v", "+OK\r\n");
        KV_DO(sm, "GET M", "$1\r\nv\r\n");
    }
    rabia_sm_kv.destroy(sm);
}

/* Values with any bytes: NULs, CR LF, empty. */
static void test_binary(void)
{
    void *sm = fresh();
    const char *set[] = {"SET", "b", "a\0b\r\nc"};
    size_t setl[] = {3, 1, 6};
    run_bin(sm, 3, set, setl);
    EXPECT_BIN("+OK\r\n");
    const char *get[] = {"GET", "b"};
    run_bin(sm, 2, get, NULL);
    EXPECT_BIN("$6\r\na\0b\r\nc\r\n");
    const char *app[] = {"APPEND", "b", "\0"};
    size_t appl[] = {6, 1, 1};
    run_bin(sm, 3, app, appl);
    EXPECT_BIN(":7\r\n");
    const char *gr[] = {"GETRANGE", "b", "1", "-1"};
    run_bin(sm, 4, gr, NULL);
    EXPECT_BIN("$6\r\n\0b\r\nc\0\r\n");
    const char *sr[] = {"SETRANGE", "z", "3", "ab"};
    run_bin(sm, 4, sr, NULL);
    EXPECT_BIN(":5\r\n");
    const char *gz[] = {"GET", "z"};
    run_bin(sm, 2, gz, NULL);
    EXPECT_BIN("$5\r\n\0\0\0ab\r\n");
    const char *sr2[] = {"SETRANGE", "z", "7", "c"};
    run_bin(sm, 4, sr2, NULL);
    EXPECT_BIN(":8\r\n");
    run_bin(sm, 2, gz, NULL);
    EXPECT_BIN("$8\r\n\0\0\0ab\0\0c\r\n");
    /* empty values and keys */
    const char *se[] = {"SET", "", ""};
    run_bin(sm, 3, se, NULL);
    EXPECT_BIN("+OK\r\n");
    const char *ge[] = {"GET", ""};
    run_bin(sm, 2, ge, NULL);
    EXPECT_BIN("$0\r\n\r\n");
    const char *ae[] = {"APPEND", "", ""};
    run_bin(sm, 3, ae, NULL);
    EXPECT_BIN(":0\r\n");
    const char *sre[] = {"SETRANGE", "nokey", "5", ""};
    run_bin(sm, 4, sre, NULL);
    EXPECT_BIN(":0\r\n");
    const char *sre2[] = {"SETRANGE", "b", "100", ""};
    run_bin(sm, 4, sre2, NULL);
    EXPECT_BIN(":7\r\n");
    const char *ex[] = {"EXISTS", "nokey"};
    run_bin(sm, 2, ex, NULL);
    EXPECT_BIN(":0\r\n");
    /* options are compared as C strings, as Redis does */
    const char *nx[] = {"SET", "b", "x", "nx\0junk"};
    size_t nxl[] = {3, 1, 1, 7};
    run_bin(sm, 4, nx, nxl);
    EXPECT_BIN("$-1\r\n");
    /* an integer with a NUL after it is not one */
    const char *sn[] = {"SET", "n", "1\0"};
    size_t snl[] = {3, 1, 2};
    run_bin(sm, 3, sn, snl);
    const char *in[] = {"INCR", "n"};
    run_bin(sm, 2, in, NULL);
    EXPECT_BIN("-ERR value is not an integer or out of range\r\n");
    const char *inf[] = {"INCRBYFLOAT", "n", "1"};
    run_bin(sm, 3, inf, NULL);
    EXPECT_BIN("-ERR value is not a valid float\r\n");
    rabia_sm_kv.destroy(sm);
}

/* INCRBYFLOAT prints every digit of big values and reads them back. */
static void test_big_floats(void)
{
    void *sm = fresh();
    KV_DO(sm, "SET f 1e400", "+OK\r\n");
    const char *r = kv_reply(sm, "INCRBYFLOAT f 0");
    CHECK(strncmp(r, "$401\r\n1", 7) == 0);
    r = kv_reply(sm, "INCRBYFLOAT f 1e400");
    CHECK(strncmp(r, "$401\r\n2", 7) == 0);
    KV_DO(sm, "STRLEN f", ":401\r\n");
    r = kv_reply(sm, "INCRBYFLOAT f 1e4930");
    CHECK(strncmp(r, "$4931\r\n1", 8) == 0);
    r = kv_reply(sm, "INCRBYFLOAT f 1e4930");
    CHECK(strncmp(r, "$4931\r\n2", 8) == 0);
    KV_DO(sm, "SET g 1.18e4932", "+OK\r\n");
    KV_DO(sm, "INCRBYFLOAT g 1.18e4932", "-ERR increment would produce NaN or Infinity\r\n");
    KV_DO(sm, "GET g", "$9\r\n1.18e4932\r\n");
    KV_DO(sm, "INCRBYFLOAT g -1.18e4932", "$1\r\n0\r\n");
    rabia_sm_kv.destroy(sm);
}

/* WATCH versions: every change moves the key's version, reads and
 * refused commands do not. */
static uint64_t version(void *sm, const char *key)
{
    char line[64];
    snprintf(line, sizeof line, "WATCHVER %s", key);
    const char *r = kv_reply(sm, line);
    unsigned long long v = 0;
    CHECK(sscanf(r, "*1\r\n:%llu", &v) == 1);
    return v;
}

static void test_versions(void)
{
    void *sm = fresh();
    static const char *const change[] = {
        "SET w 1", "SET w 2 KEEPTTL", "SET w 3 EX 100", "GETEX w PERSIST", "GETEX w PX 100",
        "INCR w", "DECRBY w 2", "INCRBYFLOAT w 1.5", "APPEND w x", "SETRANGE w 0 y",
        "GETSET w 5", "MSET w 6", "SET w 7 XX GET",
    };
    static const char *const keep[] = {
        "GET w", "SET w 0 NX", "SETNX w 1", "MSETNX w 1", "STRLEN w", "GETRANGE w 0 1",
        "MGET w", "GETEX w", "GETEX w PERSIST", "SET w 1 EX 0", "INCRBY w x",
        "INCR w1 x",
    };
    KV_DO(sm, "SET w 0", "+OK\r\n");
    for (size_t i = 0; i < sizeof change / sizeof change[0]; i++) {
        uint64_t v = version(sm, "w");
        kv_reply(sm, change[i]);
        if (version(sm, "w") == v) {
            fprintf(stderr, "version unchanged by %s\n", change[i]);
            check_failures++;
        }
    }
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        uint64_t v = version(sm, "w");
        kv_reply(sm, keep[i]);
        if (version(sm, "w") != v) {
            fprintf(stderr, "version changed by %s\n", keep[i]);
            check_failures++;
        }
    }
    /* empty arguments: APPEND touches (as Redis), SETRANGE does not */
    uint64_t v = version(sm, "w");
    const char *app[] = {"APPEND", "w", ""};
    run_bin(sm, 3, app, NULL);
    EXPECT_BIN(":1\r\n");
    CHECK(version(sm, "w") != v);
    v = version(sm, "w");
    const char *sr[] = {"SETRANGE", "w", "0", ""};
    run_bin(sm, 4, sr, NULL);
    EXPECT_BIN(":1\r\n");
    CHECK(version(sm, "w") == v);
    KV_DO(sm, "GETDEL w", "$1\r\n7\r\n");
    CHECK(version(sm, "w") != v);
    rabia_sm_kv.destroy(sm);
}

/* The bit commands (kv/t_bitmap.c), replies as Redis 7.0.15 gives them
 * (the same lines were run against redis-server; tests/kv/difftest.py
 * compares random ones): SETBIT grows the string and answers the old bit,
 * BITCOUNT and BITPOS take byte or bit ranges, BITPOS pads with zeros to
 * the right only when no end is given, BITOP treats missing keys as empty
 * and deletes the destination when every source is. A SETBIT that changes
 * nothing leaves the key's version alone, and the state hash after bit
 * writes equals that of the same bytes written with SET. */
/* BITFIELD and BITFIELD_RO (feature level 4): Redis 7.0.15's replies to
 * the same lines, overflow kinds, #N offsets, the errors in Redis's
 * order, a failed write still growing the string, the bytes written. */
static const char *const bitfield_table[][2] = {
    {"BITFIELD k SET i8 0 127 INCRBY i8 0 1 OVERFLOW SAT INCRBY i8 0 1 OVERFLOW FAIL INCRBY i8 0 1 GET i8 0",
     "*5\r\n:0\r\n:-128\r\n:-127\r\n:-126\r\n:-126\r\n"},
    {"BITFIELD k2 SET u63 0 9223372036854775807 INCRBY u63 0 1 GET u63 0", "*3\r\n:0\r\n:0\r\n:0\r\n"},
    {"BITFIELD k3 SET i64 0 -9223372036854775808 INCRBY i64 0 -1 OVERFLOW SAT INCRBY i64 0 -1 GET i64 0",
     "*4\r\n:0\r\n:9223372036854775807\r\n:9223372036854775806\r\n:9223372036854775806\r\n"},
    {"BITFIELD k4 OVERFLOW FAIL SET u8 #3 300 GET u8 #3 SET u8 #3 -1", "*3\r\n$-1\r\n:0\r\n$-1\r\n"},
    {"STRLEN k4", ":4\r\n"},
    {"BITFIELD k5 GET u64 0",
     "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"},
    {"BITFIELD k5 GET i65 0",
     "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"},
    {"BITFIELD k5 GET u8 -1", "-ERR bit offset is not an integer or out of range\r\n"},
    {"BITFIELD k5 OVERFLOW nope", "-ERR Invalid OVERFLOW type specified\r\n"},
    {"BITFIELD k5 FOO", "-ERR syntax error\r\n"},
    {"BITFIELD k5 GET u8", "-ERR syntax error\r\n"},
    {"BITFIELD_RO k5 SET u8 0 1", "-ERR BITFIELD_RO only supports the GET subcommand\r\n"},
    {"BITFIELD_RO k5 GET u8 0 GET i4 2", "*2\r\n:0\r\n:0\r\n"},
    {"BITFIELD k5", "*0\r\n"},
    {"EXISTS k5", ":0\r\n"},
    {"BITFIELD k6 SET u8 0 x", "-ERR value is not an integer or out of range\r\n"},
    {"BITFIELD k6 GET u8 4294967296", "-ERR bit offset is not an integer or out of range\r\n"},
    {"BITFIELD k6 GET u8 4294967295", "*1\r\n:0\r\n"},
    {"BITFIELD k7 OVERFLOW FAIL INCRBY u2 100 4 GET u2 100", "*2\r\n$-1\r\n:0\r\n"},
    {"STRLEN k7", ":13\r\n"},
    {"BITFIELD k8 INCRBY i5 100 9223372036854775807 INCRBY u5 100 -9223372036854775808 GET i5 100",
     "*3\r\n:-1\r\n:31\r\n:-1\r\n"},
    {"SET s hello", "+OK\r\n"},
    {"BITFIELD s GET u8 0 GET i8 8 GET u4 4 GET i3 37 SET u1 0 1 GET u8 0 INCRBY u16 #2 65535",
     "*7\r\n:104\r\n:101\r\n:8\r\n:-1\r\n:0\r\n:232\r\n:28415\r\n"},
    {"SADD set a", ":1\r\n"},
    {"BITFIELD_RO set SET u8 0 1", "-ERR BITFIELD_RO only supports the GET subcommand\r\n"},
    {"BITFIELD set GET u8 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
    {"BITFIELD k9 INCRBY i16 #1 -1 OVERFLOW WRAP INCRBY u3 0 -1", "*2\r\n:-1\r\n:7\r\n"},
};

static void test_bitfield(void)
{
    void *sm = fresh();
    KV_DO(sm, "BITFIELD k GET u8 0", "-ERR unknown command 'BITFIELD', with args beginning with: 'k' 'GET' 'u8' '0' \r\n");
    KV_DO(sm, "FEATURELEVEL 4", ":4\r\n");
    KV_DO_TABLE(sm, bitfield_table);
    const char *get_k[] = {"GET", "k"}, *get_s[] = {"GET", "s"}, *get_k9[] = {"GET", "k9"};
    run_bin(sm, 2, get_k, NULL);
    EXPECT_BIN("$1\r\n\x82\r\n");
    run_bin(sm, 2, get_s, NULL);
    EXPECT_BIN("$6\r\n\xe8" "elln\xff\r\n");
    run_bin(sm, 2, get_k9, NULL);
    EXPECT_BIN("$4\r\n\xe0\x00\xff\xff\r\n");
    uint64_t settled; /* s's term settled, then changed in place */
    CHECK_EQ(rabia_sm_kv.state_hash(sm, &settled), 0);
    KV_DO(sm, "BITFIELD s INCRBY u8 0 1", "*1\r\n:233\r\n");
    /* the state hash kept across the in-place writes is a restore's */
    void *other = kv_restored_alike(sm);
    rabia_sm_kv.destroy(other);
    rabia_sm_kv.destroy(sm);
}

/* BITFIELD and WATCH: each case was run against redis-server 7.0.15 (WATCH
 * k, the command from another connection, then MULTI PING EXEC); `signals`
 * says whether that EXEC aborted. From feature level 7 the key's version
 * moves exactly then; at level 6 (and 4, 5) every BITFIELD with a write
 * moved it, as builds before level 7 did, so a mixed cluster stays equal. */
static const struct {
    const char *setup, *cmd, *reply;
    bool signals;
} bitfield_watch[] = {
    {"SET k 5", "BITFIELD k INCRBY u8 0 0", "*1\r\n:53\r\n", false},
    {"SET k 5", "BITFIELD k INCRBY u8 0 256", "*1\r\n:53\r\n", false}, /* wraps to the same */
    {"SET k 5", "BITFIELD k INCRBY u8 0 1", "*1\r\n:54\r\n", true},
    {"SET k 5", "BITFIELD k SET u8 0 53", "*1\r\n:53\r\n", false},
    {"SET k 5", "BITFIELD k SET u8 0 309", "*1\r\n:53\r\n", false}, /* 309 wraps to 53 */
    {"SET k 5", "BITFIELD k OVERFLOW FAIL INCRBY u8 0 300", "*1\r\n$-1\r\n", false},
    {"SET k 5", "BITFIELD k OVERFLOW SAT INCRBY u8 0 300", "*1\r\n:255\r\n", true},
    {"SET k 5", "BITFIELD k INCRBY u8 0 1 INCRBY u8 0 -1", "*2\r\n:54\r\n:53\r\n", true},
    {"SET k 5", "BITFIELD k GET u8 0", "*1\r\n:53\r\n", false},
    {"SET k 5", "BITFIELD k OVERFLOW FAIL INCRBY u8 8 300", "*1\r\n$-1\r\n", false}, /* grown, failed */
    {"SET k 5", "BITFIELD k SET u8 8 0", "*1\r\n:0\r\n", true},                      /* grown */
    {NULL, "BITFIELD k OVERFLOW FAIL INCRBY u8 0 300", "*1\r\n$-1\r\n", false},       /* created, failed */
    {NULL, "BITFIELD k SET u8 0 0", "*1\r\n:0\r\n", true},                            /* created */
    {NULL, "BITFIELD k GET u8 0", "*1\r\n:0\r\n", false},
};

static void test_bitfield_watch(void)
{
    for (int level = 6; level <= 7; level++) {
        for (size_t i = 0; i < sizeof bitfield_watch / sizeof bitfield_watch[0]; i++) {
            void *sm = kv_fresh_level(T0, level);
            if (bitfield_watch[i].setup)
                KV_DO(sm, bitfield_watch[i].setup, "+OK\r\n");
            uint64_t v = version(sm, "k");
            uint64_t before;
            CHECK_EQ(rabia_sm_kv.state_hash(sm, &before), 0);
            KV_DO(sm, bitfield_watch[i].cmd, bitfield_watch[i].reply);
            bool wrote = strstr(bitfield_watch[i].cmd, "GET") == NULL;
            bool want = level >= 7 ? bitfield_watch[i].signals : wrote;
            if ((version(sm, "k") != v) != want) {
                fprintf(stderr, "  level %d: %s %s the version (Redis 7.0.15: %s)\n", level,
                        bitfield_watch[i].cmd, want ? "kept" : "moved",
                        bitfield_watch[i].signals ? "signals" : "does not signal");
                check_failures++;
            }
            /* a created or grown string is state even when WATCH is not
             * signalled: the hash sees it, and a restore agrees */
            void *other = kv_restored_alike(sm);
            rabia_sm_kv.destroy(other);
            rabia_sm_kv.destroy(sm);
        }
    }
}

/* LCS (feature level 4): Redis 7.0.15's replies (its documentation's
 * example, a longer pair with many ranges, the errors). */
static const char *const lcs_table[][2] = {
    {"SET key1 ohmytext", "+OK\r\n"},
    {"SET key2 mynewtext", "+OK\r\n"},
    {"LCS key1 key2", "$6\r\nmytext\r\n"},
    {"LCS key1 key2 LEN", ":6\r\n"},
    {"LCS key1 key2 IDX", "*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n"
                          ":0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"},
    {"LCS key1 key2 IDX MINMATCHLEN 4", "*4\r\n$7\r\nmatches\r\n*1\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n$3\r\nlen\r\n:6\r\n"},
    {"LCS key1 key2 IDX MINMATCHLEN 4 WITHMATCHLEN",
     "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n"},
    {"LCS key1 key2 LEN IDX", "-ERR If you want both the length and indexes, please just use IDX.\r\n"},
    {"LCS key1 key2 MINMATCHLEN", "-ERR syntax error\r\n"},
    {"LCS key1 key2 MINMATCHLEN x", "-ERR value is not an integer or out of range\r\n"},
    {"LCS key1 key2 FOO", "-ERR syntax error\r\n"},
    {"LCS key1 nokey", "$0\r\n\r\n"},
    {"LCS key1 nokey IDX", "*4\r\n$7\r\nmatches\r\n*0\r\n$3\r\nlen\r\n:0\r\n"},
    {"SADD s m", ":1\r\n"},
    {"LCS key1 s", "-ERR The specified keys must contain string values\r\n"},
    {"SET a ACCGGTCGAGTGCGCGGAAGCCGGCCGAA", "+OK\r\n"},
    {"SET b GTCGTTCGGAATGCCGTTGCTCTGTAAA", "+OK\r\n"},
    {"LCS a b IDX WITHMATCHLEN",
     "*4\r\n$7\r\nmatches\r\n*8\r\n*3\r\n*2\r\n:27\r\n:28\r\n*2\r\n:26\r\n:27\r\n:2\r\n*3\r\n*2\r\n:26\r\n:26\r\n*2\r\n"
     ":23\r\n:23\r\n:1\r\n*3\r\n*2\r\n:25\r\n:25\r\n*2\r\n:21\r\n:21\r\n:1\r\n*3\r\n*2\r\n:23\r\n:24\r\n*2\r\n:18\r\n"
     ":19\r\n:2\r\n*3\r\n*2\r\n:19\r\n:22\r\n*2\r\n:12\r\n:15\r\n:4\r\n*3\r\n*2\r\n:14\r\n:18\r\n*2\r\n:6\r\n:10\r\n"
     ":5\r\n*3\r\n*2\r\n:9\r\n:10\r\n*2\r\n:3\r\n:4\r\n:2\r\n*3\r\n*2\r\n:4\r\n:6\r\n*2\r\n:0\r\n:2\r\n:3\r\n$3\r\n"
     "len\r\n:20\r\n"},
    {"LCS a b", "$20\r\nGTCGTCGGAAGCCGGCCGAA\r\n"},
};

static void test_lcs(void)
{
    void *sm = fresh();
    KV_DO(sm, "LCS a b", "-ERR unknown command 'LCS', with args beginning with: 'a' 'b' \r\n");
    KV_DO(sm, "FEATURELEVEL 4", ":4\r\n");
    KV_DO_TABLE(sm, lcs_table);
    /* a table past 512 MiB is refused before it is allocated */
    static char big[12001];
    memset(big, 'a', sizeof big - 1);
    const char *set1[] = {"SET", "big1", big}, *set2[] = {"SET", "big2", big};
    KV_DO(sm, "FLUSHALL", "+OK\r\n");
    CHECK(strcmp(kv_reply_argv(sm, 3, set1, NULL), "+OK\r\n") == 0);
    CHECK(strcmp(kv_reply_argv(sm, 3, set2, NULL), "+OK\r\n") == 0);
    KV_DO(sm, "LCS big1 big2 LEN", "-ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len\r\n");
    rabia_sm_kv.destroy(sm);
}

static void test_bits(void)
{
    void *sm = fresh();
    KV_DO(sm, "SETBIT b 7 1", ":0\r\n");
    KV_DO(sm, "GET b", "$1\r\n\x01\r\n");
    KV_DO(sm, "SETBIT b 7 1", ":1\r\n");
    KV_DO(sm, "SETBIT b 9 1", ":0\r\n");
    KV_DO(sm, "STRLEN b", ":2\r\n");
    KV_DO(sm, "GETBIT b 9", ":1\r\n");
    KV_DO(sm, "GETBIT b 1000", ":0\r\n");
    KV_DO(sm, "GETBIT nokey 3", ":0\r\n");
    KV_DO(sm, "SETBIT b 1 2", "-ERR bit is not an integer or out of range\r\n");
    KV_DO(sm, "SETBIT b -1 1", "-ERR bit offset is not an integer or out of range\r\n");
    KV_DO(sm, "SETBIT b 4294967296 1", "-ERR bit offset is not an integer or out of range\r\n");
    KV_DO(sm, "GETBIT b x", "-ERR bit offset is not an integer or out of range\r\n");
    uint64_t v = version(sm, "b");
    KV_DO(sm, "SETBIT b 9 1", ":1\r\n"); /* no change */
    CHECK_EQ(version(sm, "b"), v);
    KV_DO(sm, "SETBIT b 9 0", ":1\r\n");
    CHECK(version(sm, "b") != v);
    KV_DO(sm, "SET s foobar", "+OK\r\n");
    KV_DO(sm, "BITCOUNT s", ":26\r\n");
    KV_DO(sm, "BITCOUNT s 1 1", ":6\r\n");
    KV_DO(sm, "BITCOUNT s 5 30 BIT", ":17\r\n");
    KV_DO(sm, "BITCOUNT s -1 -5", ":0\r\n");
    KV_DO(sm, "BITCOUNT s 1", "-ERR syntax error\r\n");
    KV_DO(sm, "BITCOUNT nokey 1", ":0\r\n"); /* the key first, as Redis */
    KV_DO(sm, "BITCOUNT s 0 1 bits", "-ERR syntax error\r\n");
    KV_DO(sm, "SET z \xff\xf0", "+OK\r\n");
    KV_DO(sm, "BITPOS z 0", ":12\r\n");
    KV_DO(sm, "BITPOS z 1 1", ":8\r\n");
    KV_DO(sm, "BITPOS z 1 2", ":-1\r\n");
    KV_DO(sm, "BITPOS z 0 0 7 BIT", ":-1\r\n");
    KV_DO(sm, "BITPOS z 0 3 13 BIT", ":12\r\n");
    KV_DO(sm, "SET ones \xff", "+OK\r\n");
    KV_DO(sm, "BITPOS ones 0", ":8\r\n");    /* no end: the padding */
    KV_DO(sm, "BITPOS ones 0 0 -1", ":-1\r\n"); /* an end: none */
    KV_DO(sm, "BITPOS nokey 0", ":0\r\n");
    KV_DO(sm, "BITPOS nokey 1", ":-1\r\n");
    KV_DO(sm, "BITPOS z 2", "-ERR The bit argument must be 1 or 0.\r\n");
    KV_DO(sm, "BITOP AND d s z", ":6\r\n");
    KV_DO(sm, "GET d", "$6\r\nf`\x00\x00\x00\x00\r\n");
    KV_DO(sm, "BITOP NOT d z", ":2\r\n");
    KV_DO(sm, "GET d", "$2\r\n\x00\x0f\r\n");
    KV_DO(sm, "BITOP NOT d z s", "-ERR BITOP NOT must be called with a single source key.\r\n");
    KV_DO(sm, "BITOP NAND d z", "-ERR syntax error\r\n");
    KV_DO(sm, "BITOP OR d nokey", ":0\r\n");
    KV_DO(sm, "EXISTS d", ":0\r\n");
    KV_DO(sm, "LPUSH l x", ":1\r\n");
    KV_DO(sm, "SETBIT l 1 1", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    KV_DO(sm, "BITOP XOR d s l", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    KV_DO(sm, "BITOP XOR l s s", ":6\r\n"); /* the destination's type does not matter */
    KV_DO(sm, "TYPE l", "+string\r\n");
    /* bit by bit, the bytes of a SET */
    static const int bits[] = {1, 7, 9, 10, 14};
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
        char line[32];
        snprintf(line, sizeof line, "SETBIT q %d 1", bits[i]);
        KV_DO(sm, line, ":0\r\n");
        uint64_t h; /* asked between writes: each one must update what it settled */
        CHECK_EQ(rabia_sm_kv.state_hash(sm, &h), 0);
    }
    KV_DO(sm, "GET q", "$2\r\nAb\r\n");
    /* the state hash kept up to date by the bit writes (changed in place)
     * is the one a restore computes from the bytes: it checks the stored
     * one against it */
    void *other = kv_restored_alike(sm);
    KV_DO(other, "BITCOUNT q", ":5\r\n");
    rabia_sm_kv.destroy(other);
    rabia_sm_kv.destroy(sm);
}

/* The type's operations directly: save/load round trips, every
 * truncation and a bad encoding byte refused, copy, mem. */
static void test_ops(void)
{
    struct kv_store *s = kv_store_new();
    const struct kv_type_ops *t = kv_type_ops(KV_STRING);
    CHECK(t == &kv_string_ops);
    CHECK(strcmp(t->name, "string") == 0);
    static const struct {
        const char *p;
        size_t n;
    } vals[] = {{"", 0}, {"x", 1}, {"a\0b\r\n", 5}, {"12345678901234567890", 20}};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        struct kv_obj *o = kv_str_new(s, (const uint8_t *)vals[i].p, vals[i].n);
        CHECK(o != NULL);
        if (!o)
            continue;
        CHECK_EQ(t->mem(o), sizeof *o + vals[i].n + 1);
        struct rabia_buf b = {0};
        CHECK_EQ(t->save(s, o, &b), 0);
        CHECK_EQ(b.len, 1 + 4 + vals[i].n);
        struct kv_rd rd = {b.data, b.data + b.len};
        struct kv_obj *l = NULL;
        CHECK_EQ(t->load(s, &rd, &l), 0);
        CHECK(rd.p == rd.end);
        CHECK(l && l->type == KV_STRING && l->enc == 0 && l->len == vals[i].n &&
              memcmp(l->str, vals[i].p, vals[i].n) == 0 && l->str[l->len] == 0);
        struct kv_obj *cp = NULL;
        CHECK_EQ(t->copy(s, o, &cp), 0);
        CHECK(cp && cp != o && cp->len == o->len && memcmp(cp->str, o->str, o->len) == 0);
        /* equal values, equal bytes */
        struct rabia_buf b2 = {0};
        CHECK_EQ(t->save(s, l, &b2), 0);
        CHECK(b2.len == b.len && memcmp(b2.data, b.data, b.len) == 0);
        for (size_t cut = 0; cut < b.len; cut++) {
            struct kv_rd tr = {b.data, b.data + cut};
            struct kv_obj *x = (struct kv_obj *)1;
            CHECK_EQ(t->load(s, &tr, &x), -EINVAL);
            CHECK(x == NULL);
        }
        b.data[0] = 1; /* an encoding strings do not have */
        struct kv_rd bad = {b.data, b.data + b.len};
        struct kv_obj *x = NULL;
        CHECK_EQ(t->load(s, &bad, &x), -EINVAL);
        t->free(s, o);
        t->free(s, l);
        t->free(s, cp);
        rabia_buf_free(&b);
        rabia_buf_free(&b2);
    }
    kv_store_free(s);
}

/* A snapshot of strings (TTLs included) restores to a store that answers
 * alike and snapshots to the same bytes. */
static void test_snapshot(void)
{
    void *a = fresh();
    KV_DO(a, "MSET s1 hello s2 world n 41", "+OK\r\n");
    KV_DO(a, "SET t v PX 5000", "+OK\r\n");
    KV_DO(a, "INCR n", ":42\r\n");
    KV_DO(a, "APPEND s1 !", ":6\r\n");
    KV_DO(a, "SETRANGE big 1000 x", ":1001\r\n");
    struct rabia_buf sa = {0}, sb = {0};
    CHECK_EQ(rabia_sm_kv.snapshot(a, &sa), 0);
    void *b = rabia_sm_kv.create();
    CHECK_EQ(rabia_sm_kv.restore(b, sa.data, sa.len), 0);
    CHECK_EQ(rabia_sm_kv.snapshot(b, &sb), 0);
    CHECK(sa.len == sb.len && memcmp(sa.data, sb.data, sa.len) == 0);
    KV_DO(b, "MGET s1 s2 n t", "*4\r\n$6\r\nhello!\r\n$5\r\nworld\r\n$2\r\n42\r\n$1\r\nv\r\n");
    KV_DO(b, "PTTL t", ":5000\r\n");
    KV_DO(b, "STRLEN big", ":1001\r\n");
    /* a truncated snapshot is refused and the state kept */
    for (size_t cut = 0; cut < sa.len; cut += 7)
        CHECK(rabia_sm_kv.restore(b, sa.data, cut) != 0);
    KV_DO(b, "GET s2", "$5\r\nworld\r\n");
    rabia_buf_free(&sa);
    rabia_buf_free(&sb);
    rabia_sm_kv.destroy(a);
    rabia_sm_kv.destroy(b);
}

int main(void)
{
    RUN(test_table);
    RUN(test_expiry);
    RUN(test_wrongtype);
    RUN(test_binary);
    RUN(test_big_floats);
    RUN(test_versions);
    RUN(test_bits);
    RUN(test_bitfield);
    RUN(test_bitfield_watch);
    RUN(test_lcs);
    RUN(test_ops);
    RUN(test_snapshot);
    rabia_buf_free(&rep);
    return CHECK_DONE();
}
