/* The Redis-like key-value example state machine. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kv.h"
#include "rabia/types.h"

static uint64_t rng_state;
static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static struct rabia_buf rep; /* the last reply */

static int buf_eq(const struct rabia_buf *a, const struct rabia_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void print_escaped(const char *what, const uint8_t *p, size_t n)
{
    fprintf(stderr, "  %s: \"", what);
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            fputc(p[i], stderr);
        else
            fprintf(stderr, "\\x%02x", p[i]);
    }
    fprintf(stderr, "\"\n");
}

static void apply_op(void *sm, const uint8_t *op, size_t len)
{
    rabia_buf_clear(&rep);
    CHECK_EQ(rabia_sm_kv.apply(sm, op, len, &rep), 0);
    size_t used = 0;
    CHECK_EQ(rabia_kv_resp_check(rep.data, rep.len, &used), 0);
    CHECK_EQ(used, rep.len);
}

static int count_argv(const char *const *argv)
{
    int n = 0;
    while (argv[n])
        n++;
    return n;
}

/* Run a command given as a NULL-terminated argv of C strings. */
static void run_v(void *sm, const char *const *argv)
{
    struct rabia_buf op = {0};
    CHECK_EQ(rabia_kv_encode_argv(&op, count_argv(argv), argv, NULL), 0);
    apply_op(sm, op.data, op.len);
    rabia_buf_free(&op);
}
#define RUNCMD(sm, ...) run_v(sm, (const char *const[]){__VA_ARGS__, NULL})

static void expect_reply(const char *want, size_t want_len, int line)
{
    if (rep.len != want_len || memcmp(rep.data, want, want_len) != 0) {
        fprintf(stderr, "%s:%d: reply mismatch\n", __FILE__, line);
        print_escaped("want", (const uint8_t *)want, want_len);
        print_escaped("got ", rep.data, rep.len);
        check_failures++;
    }
}
/* EXPECT(sm, "reply", "CMD", "arg"...): want is a string literal. */
#define EXPECT(sm, want, ...)                                                 \
    do {                                                                      \
        RUNCMD(sm, __VA_ARGS__);                                              \
        expect_reply(want, sizeof(want) - 1, __LINE__);                       \
    } while (0)

#define EXPECT_REPLY(want) expect_reply(want, sizeof(want) - 1, __LINE__)

static int reply_starts(const char *prefix)
{
    size_t n = strlen(prefix);
    return rep.len >= n && memcmp(rep.data, prefix, n) == 0;
}

static void snap(void *sm, struct rabia_buf *out)
{
    rabia_buf_clear(out);
    CHECK_EQ(rabia_sm_kv.snapshot(sm, out), 0);
}

/* Run a TXN of n commands, each a NULL-terminated argv. */
#define C(...) ((const char *const[]){__VA_ARGS__, NULL})
#define TXN(sm, ...)                                                           \
    run_txn(sm, (int)(sizeof((const char *const *const[]){__VA_ARGS__}) /      \
                      sizeof(const char *const *)),                            \
            (const char *const *const[]){__VA_ARGS__})

static void test_basics(void)
{
    void *sm = rabia_sm_kv.create();
    EXPECT(sm, "+PONG\r\n", "PING");
    EXPECT(sm, "$2\r\nhi\r\n", "ping", "hi");
    EXPECT(sm, "-ERR wrong number of arguments for 'ping' command\r\n", "PING", "a", "b");
    EXPECT(sm, "$5\r\nhello\r\n", "ECHO", "hello");
    EXPECT(sm, "$-1\r\n", "GET", "k");
    EXPECT(sm, "+OK\r\n", "SET", "k", "v");
    EXPECT(sm, "$1\r\nv\r\n", "get", "k");
    EXPECT(sm, "+OK\r\n", "sEt", "k", "");
    EXPECT(sm, "$0\r\n\r\n", "GET", "k");
    EXPECT(sm, ":1\r\n", "DBSIZE");
    EXPECT(sm, "+OK\r\n", "MSET", "a", "1", "b", "2", "a", "3");
    EXPECT(sm, "*4\r\n$1\r\n3\r\n$-1\r\n$1\r\n2\r\n$0\r\n\r\n", "MGET", "a", "x", "b", "k");
    EXPECT(sm, ":3\r\n", "EXISTS", "a", "a", "b", "zz");
    EXPECT(sm, ":2\r\n", "DEL", "a", "a", "b", "zz");
    EXPECT(sm, ":0\r\n", "EXISTS", "a");
    EXPECT(sm, ":1\r\n", "DBSIZE");
    EXPECT(sm, "+OK\r\n", "FLUSHALL");
    EXPECT(sm, ":0\r\n", "DBSIZE");
    EXPECT(sm, "+OK\r\n", "FLUSHALL", "async");
    EXPECT(sm, "-ERR syntax error\r\n", "FLUSHALL", "now");
    EXPECT(sm, "-ERR syntax error\r\n", "FLUSHALL", "sync", "sync");
    rabia_sm_kv.destroy(sm);
}

static void test_errors(void)
{
    void *sm = rabia_sm_kv.create();
    struct rabia_buf s1 = {0}, s2 = {0};
    RUNCMD(sm, "SET", "keep", "me");
    snap(sm, &s1);
    EXPECT(sm, "-ERR wrong number of arguments for 'get' command\r\n", "GET");
    EXPECT(sm, "-ERR wrong number of arguments for 'get' command\r\n", "GET", "a", "b");
    EXPECT(sm, "-ERR wrong number of arguments for 'set' command\r\n", "SET", "a");
    EXPECT(sm, "-ERR wrong number of arguments for 'mset' command\r\n", "MSET", "a", "1", "b");
    EXPECT(sm, "-ERR wrong number of arguments for 'del' command\r\n", "DEL");
    EXPECT(sm, "-ERR wrong number of arguments for 'dbsize' command\r\n", "DBSIZE", "x");
    EXPECT(sm, "-ERR wrong number of arguments for 'incrby' command\r\n", "INCRBY", "x");
    EXPECT(sm, "-ERR unknown command 'FOO', with args beginning with: 'a' 'b c' \r\n", "FOO", "a",
           "b c");
    EXPECT(sm, "-ERR unknown command 'foo', with args beginning with: \r\n", "foo");
    EXPECT(sm, "-ERR unknown command 'x  y', with args beginning with: 'a b' \r\n", "x\r\ny", "a\nb");
    EXPECT(sm, "-ERR unknown command 'EXEC', with args beginning with: \r\n", "EXEC");
    /* Long arguments are cut near 128 bytes, as Redis does. */
    char big[300];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = 0;
    RUNCMD(sm, "nope", big, "second");
    CHECK(reply_starts("-ERR unknown command 'nope', with args beginning with: 'zzz"));
    CHECK(rep.len == strlen("-ERR unknown command 'nope', with args beginning with: ") + 128 + 3 + 2);
    /* Malformed operations. */
    apply_op(sm, NULL, 0);
    expect_reply("-ERR malformed operation\r\n", 26, __LINE__);
    apply_op(sm, (const uint8_t *)"\x01\0\0\0\x05\0\0\0ab", 10);
    expect_reply("-ERR malformed operation\r\n", 26, __LINE__);
    apply_op(sm, (const uint8_t *)"\0\0\0\0\0", 5);
    expect_reply("-ERR malformed operation\r\n", 26, __LINE__);
    apply_op(sm, (const uint8_t *)"\xff\xff\xff\xff\0\0\0\0", 8);
    expect_reply("-ERR malformed operation\r\n", 26, __LINE__);
    apply_op(sm, (const uint8_t *)"\0\0\0\0", 4);
    expect_reply("-ERR empty command\r\n", 20, __LINE__);
    snap(sm, &s2);
    CHECK(buf_eq(&s1, &s2));
    rabia_buf_free(&s1);
    rabia_buf_free(&s2);
    rabia_sm_kv.destroy(sm);
}

static void test_set_options(void)
{
    void *sm = rabia_sm_kv.create();
    EXPECT(sm, "+OK\r\n", "SET", "k", "v1", "NX");
    EXPECT(sm, "$-1\r\n", "SET", "k", "v2", "nx");
    EXPECT(sm, "$2\r\nv1\r\n", "GET", "k");
    EXPECT(sm, "$-1\r\n", "SET", "absent", "v", "XX");
    EXPECT(sm, ":0\r\n", "EXISTS", "absent");
    EXPECT(sm, "+OK\r\n", "SET", "k", "v2", "XX");
    EXPECT(sm, "$2\r\nv2\r\n", "SET", "k", "v3", "GET");
    EXPECT(sm, "$2\r\nv3\r\n", "GET", "k");
    EXPECT(sm, "$-1\r\n", "SET", "new", "n1", "GET");
    EXPECT(sm, "$2\r\nn1\r\n", "GET", "new");
    /* NX GET on an existing key: the old value, and no write. */
    EXPECT(sm, "$2\r\nv3\r\n", "SET", "k", "v4", "NX", "GET");
    EXPECT(sm, "$2\r\nv3\r\n", "GET", "k");
    /* XX GET on a missing key: nil, and no write. */
    EXPECT(sm, "$-1\r\n", "SET", "nokey", "v", "XX", "GET");
    EXPECT(sm, ":0\r\n", "EXISTS", "nokey");
    EXPECT(sm, "$2\r\nv3\r\n", "SET", "k", "v5", "GET", "XX");
    EXPECT(sm, "$2\r\nv5\r\n", "GET", "k");
    EXPECT(sm, "+OK\r\n", "SET", "k", "v6", "KEEPTTL");
    EXPECT(sm, "-ERR syntax error\r\n", "SET", "k", "v", "NX", "XX");
    EXPECT(sm, "+OK\r\n", "SET", "k", "v7", "EX", "10");
    EXPECT(sm, "-ERR syntax error\r\n", "SET", "k", "v", "bogus");
    EXPECT(sm, "$2\r\nv7\r\n", "GET", "k");
    rabia_sm_kv.destroy(sm);
}

static void test_incr(void)
{
    void *sm = rabia_sm_kv.create();
    EXPECT(sm, ":1\r\n", "INCR", "n");
    EXPECT(sm, ":11\r\n", "INCRBY", "n", "10");
    EXPECT(sm, ":10\r\n", "DECR", "n");
    EXPECT(sm, ":-10\r\n", "DECRBY", "n", "20");
    EXPECT(sm, "$3\r\n-10\r\n", "GET", "n");
    EXPECT(sm, ":-1\r\n", "DECR", "fresh");
    const char *not_int = "-ERR value is not an integer or out of range\r\n";
    const char *bad[] = {"abc", " 1", "1 ", "+1", "01", "-0", "", "1.5", "9223372036854775808",
                         "-9223372036854775809", "12345678901234567890123"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        RUNCMD(sm, "SET", "s", bad[i]);
        RUNCMD(sm, "INCR", "s");
        expect_reply(not_int, strlen(not_int), __LINE__);
        RUNCMD(sm, "INCRBY", "n", bad[i]);
        expect_reply(not_int, strlen(not_int), __LINE__);
        RUNCMD(sm, "GET", "s"); /* the value is untouched */
        char want[64];
        int wl = snprintf(want, sizeof want, "$%zu\r\n%s\r\n", strlen(bad[i]), bad[i]);
        expect_reply(want, (size_t)wl, __LINE__);
    }
    EXPECT(sm, "$23\r\n12345678901234567890123\r\n", "GET", "s");
    EXPECT(sm, "+OK\r\n", "SET", "m", "9223372036854775806");
    EXPECT(sm, ":9223372036854775807\r\n", "INCR", "m");
    EXPECT(sm, "-ERR increment or decrement would overflow\r\n", "INCR", "m");
    EXPECT(sm, "$19\r\n9223372036854775807\r\n", "GET", "m");
    EXPECT(sm, "+OK\r\n", "SET", "m", "-9223372036854775808");
    EXPECT(sm, "-ERR increment or decrement would overflow\r\n", "DECR", "m");
    EXPECT(sm, "-ERR increment or decrement would overflow\r\n", "INCRBY", "m", "-1");
    EXPECT(sm, ":-1\r\n", "INCRBY", "m", "9223372036854775807");
    EXPECT(sm, ":-1\r\n", "DECRBY", "m", "0");
    EXPECT(sm, "-ERR decrement would overflow\r\n", "DECRBY", "m", "-9223372036854775808");
    EXPECT(sm, "-ERR increment or decrement would overflow\r\n", "INCRBY", "m",
           "-9223372036854775808");
    EXPECT(sm, "+OK\r\n", "SET", "m", "0");
    EXPECT(sm, ":-9223372036854775808\r\n", "INCRBY", "m", "-9223372036854775808");
    EXPECT(sm, "+OK\r\n", "SET", "z", "0");
    EXPECT(sm, ":1\r\n", "INCR", "z");
    rabia_sm_kv.destroy(sm);
}

/* Parse an array of bulk strings (as KEYS replies) into a joined list
 * "a,b,c" for comparison. */
static char *bulk_list(const uint8_t *p, size_t len, size_t *used)
{
    static char out[1 << 16];
    size_t o = 0, i = 0;
    long n = 0;
    CHECK(len > 0 && p[0] == '*');
    i = 1;
    while (i < len && p[i] != '\r')
        n = n * 10 + (p[i++] - '0');
    i += 2;
    out[0] = 0;
    for (long k = 0; k < n; k++) {
        long bl = 0;
        CHECK(p[i] == '$');
        i++;
        while (p[i] != '\r')
            bl = bl * 10 + (p[i++] - '0');
        i += 2;
        if (k)
            out[o++] = ',';
        memcpy(out + o, p + i, (size_t)bl);
        o += (size_t)bl;
        i += (size_t)bl + 2;
    }
    out[o] = 0;
    if (used)
        *used = i;
    return out;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* KEYS lists in hash order (kv/README.md): compare sorted. */
static void expect_keys(void *sm, const char *pattern, const char *want, int line)
{
    RUNCMD(sm, "KEYS", pattern);
    char list[4096], *parts[64], got[4096];
    snprintf(list, sizeof list, "%s", bulk_list(rep.data, rep.len, NULL));
    int n = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t && n < 64; t = strtok_r(NULL, ",", &save))
        parts[n++] = t;
    qsort(parts, (size_t)n, sizeof parts[0], cmp_str);
    got[0] = 0;
    for (int i = 0; i < n; i++) {
        if (i)
            strcat(got, ",");
        strcat(got, parts[i]);
    }
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "%s:%d: KEYS %s: want [%s] got [%s]\n", __FILE__, line, pattern, want, got);
        check_failures++;
    }
}

static void test_keys_glob(void)
{
    void *sm = rabia_sm_kv.create();
    const char *keys[] = {"hello", "hallo", "hxllo", "hllo", "heeeello", "h*llo", "h?llo",
                          "hbllo", "other", "he", "h[a]llo", "h\\llo"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        RUNCMD(sm, "SET", keys[i], "v");
    expect_keys(sm, "h?llo", "h*llo,h?llo,h\\llo,hallo,hbllo,hello,hxllo", __LINE__);
    expect_keys(sm, "h*llo",
                "h*llo,h?llo,h[a]llo,h\\llo,hallo,hbllo,heeeello,hello,hllo,hxllo", __LINE__);
    expect_keys(sm, "h[ae]llo", "hallo,hello", __LINE__);
    expect_keys(sm, "h[^e]llo", "h*llo,h?llo,h\\llo,hallo,hbllo,hxllo", __LINE__);
    expect_keys(sm, "h[a-b]llo", "hallo,hbllo", __LINE__);
    expect_keys(sm, "h[b-a]llo", "hallo,hbllo", __LINE__);
    expect_keys(sm, "h\\*llo", "h*llo", __LINE__);
    expect_keys(sm, "h\\?llo", "h?llo", __LINE__);
    expect_keys(sm, "h\\[a]llo", "h[a]llo", __LINE__);
    expect_keys(sm, "h[\\\\]llo", "h\\llo", __LINE__);
    expect_keys(sm, "he*", "he,heeeello,hello", __LINE__);
    expect_keys(sm, "nomatch*", "", __LINE__);
    expect_keys(sm, "other", "other", __LINE__);
    expect_keys(sm, "*", "h*llo,h?llo,h[a]llo,h\\llo,hallo,hbllo,he,heeeello,hello,hllo,hxllo,other",
                __LINE__);
    rabia_sm_kv.destroy(sm);
}

static void test_glob_function(void)
{
    struct {
        const char *pat, *str;
        int want;
    } cases[] = {
        {"*", "", 1},          {"*", "abc", 1},        {"a*", "a", 1},         {"a*b", "ab", 1},
        {"a*b", "axxb", 1},    {"a*b", "axxbx", 0},    {"a*b*c", "abbbc", 1},  {"a*b*c", "acb", 0},
        {"?", "", 0},          {"?", "x", 1},          {"??", "x", 0},         {"[abc]", "b", 1},
        {"[abc]", "d", 0},     {"[^abc]", "d", 1},     {"[^abc]", "a", 0},     {"[a-c]x", "bx", 1},
        {"[]", "a", 0},        {"[abc", "b", 1},       {"[abc", "d", 0},       {"\\", "\\", 1},
        {"a\\", "a\\", 1},     {"\\a", "a", 1},        {"***a", "bba", 1},     {"*a*", "xyz", 0},
        {"", "", 1},           {"", "a", 0},           {"a", "", 0},           {"*?*", "", 0},
        {"[a-]", "-", 0},      {"[-a]", "-", 1},       {"*.txt", "f.txt", 1},  {"*.txt", "ftxt", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = rabia_kv_glob_match((const uint8_t *)cases[i].pat, strlen(cases[i].pat),
                                      (const uint8_t *)cases[i].str, strlen(cases[i].str));
        if (got != cases[i].want) {
            fprintf(stderr, "glob '%s' vs '%s': want %d got %d\n", cases[i].pat, cases[i].str,
                    cases[i].want, got);
            check_failures++;
        }
    }
    /* Binary bytes. */
    CHECK(rabia_kv_glob_match((const uint8_t *)"a?c", 3, (const uint8_t *)"a\0c", 3));
    CHECK(rabia_kv_glob_match((const uint8_t *)"[\x80-\xff]", 5, (const uint8_t *)"\x90", 1));
}

/* One SCAN call: returns the next cursor, appends keys to seen counts. */

static void test_resp_helpers(void)
{
    size_t used;
    const char *v = "*2\r\n$3\r\nabc\r\n*1\r\n:5\r\n+tail";
    CHECK_EQ(rabia_kv_resp_check((const uint8_t *)v, strlen(v), &used), 0);
    CHECK_EQ(used, strlen(v) - 5);
    for (size_t n = 0; n < used; n++)
        CHECK_EQ(rabia_kv_resp_check((const uint8_t *)v, n, &used), -EAGAIN);
    CHECK_EQ(rabia_kv_resp_check((const uint8_t *)"x\r\n", 3, &used), -EINVAL);
    CHECK_EQ(rabia_kv_resp_check((const uint8_t *)"$3\r\nabcd\r\n", 10, &used), -EINVAL);
    CHECK_EQ(rabia_kv_resp_check((const uint8_t *)"*-2\r\n", 5, &used), -EINVAL);
    CHECK_EQ(rabia_kv_resp_check((const uint8_t *)"$-1\r\n", 5, &used), 0);
    struct rabia_buf f = {0};
    CHECK_EQ(rabia_kv_resp_format(&f, (const uint8_t *)"-ERR x\r\n", 8), 0);
    CHECK(f.len == 14 && memcmp(f.data, "(error) ERR x\n", 14) == 0);
    rabia_buf_clear(&f);
    CHECK_EQ(rabia_kv_resp_format(&f, (const uint8_t *)":-3\r\n", 5), 0);
    CHECK(f.len == 13 && memcmp(f.data, "(integer) -3\n", 13) == 0);
    rabia_buf_clear(&f);
    CHECK_EQ(rabia_kv_resp_format(&f, (const uint8_t *)"*0\r\n", 4), 0);
    CHECK(f.len == 14 && memcmp(f.data, "(empty array)\n", 14) == 0);
    rabia_buf_free(&f);
}

static void test_binary(void)
{
    void *sm = rabia_sm_kv.create();
    struct rabia_buf op = {0};
    const char *argv[] = {"SET", "k\0\r\n", "v\0\xff"};
    const size_t lens[] = {3, 4, 3};
    CHECK_EQ(rabia_kv_encode_argv(&op, 3, argv, lens), 0);
    apply_op(sm, op.data, op.len);
    expect_reply("+OK\r\n", 5, __LINE__);
    rabia_buf_clear(&op);
    const char *get[] = {"GET", "k\0\r\n"};
    const size_t glens[] = {3, 4};
    rabia_kv_encode_argv(&op, 2, get, glens);
    apply_op(sm, op.data, op.len);
    expect_reply("$3\r\nv\0\xff\r\n", 9, __LINE__);
    RUNCMD(sm, "KEYS", "k?*");
    expect_reply("*1\r\n$4\r\nk\0\r\n\r\n", 14, __LINE__);
    rabia_buf_free(&op);
    rabia_sm_kv.destroy(sm);
}

/* A random command over a small key space. Writes the op into o. */
static void random_cmd(struct rabia_buf *o)
{
    char k1[16], k2[16], v[24];
    snprintf(k1, sizeof k1, "k%d", (int)(rng() % 64));
    snprintf(k2, sizeof k2, "k%d", (int)(rng() % 64));
    if (rng() % 3)
        snprintf(v, sizeof v, "%d", (int)(rng() % 100) - 50);
    else
        snprintf(v, sizeof v, "v%d", (int)(rng() % 100));
    const char *a[8];
    int n = 0;
    switch (rng() % 14) {
    case 0: a[0] = "SET", a[1] = k1, a[2] = v, n = 3; break;
    case 1: a[0] = "SET", a[1] = k1, a[2] = v, a[3] = "NX", a[4] = "GET", n = 5; break;
    case 2: a[0] = "SET", a[1] = k1, a[2] = v, a[3] = "XX", n = 4; break;
    case 3: a[0] = "GET", a[1] = k1, n = 2; break;
    case 4: a[0] = "DEL", a[1] = k1, a[2] = k2, n = 3; break;
    case 5: a[0] = "INCR", a[1] = k1, n = 2; break;
    case 6: a[0] = "DECRBY", a[1] = k1, a[2] = v, n = 3; break;
    case 7: a[0] = "MSET", a[1] = k1, a[2] = v, a[3] = k2, a[4] = "1", n = 5; break;
    case 8: a[0] = "KEYS", a[1] = "k1*", n = 2; break;
    case 9: a[0] = "SCAN", a[1] = v[0] == 'v' ? "3" : v, a[2] = "COUNT", a[3] = "5", n = 4; break;
    case 10: a[0] = "EXISTS", a[1] = k1, a[2] = k2, n = 3; break;
    case 11: a[0] = rng() % 20 ? "DBSIZE" : "FLUSHALL", n = 1; break;
    default: {
        /* A transaction of 1-4 random non-TXN commands. */
        struct rabia_buf parts[4] = {{0}};
        const uint8_t *ops[4] = {0};
        size_t lens[4] = {0};
        int m = 1 + (int)(rng() % 4);
        for (int i = 0; i < m; i++) {
            do {
                rabia_buf_clear(&parts[i]);
                random_cmd(&parts[i]);
            } while (parts[i].len > 7 && memcmp(parts[i].data + 8, "TXN", 3) == 0);
            ops[i] = parts[i].data;
            lens[i] = parts[i].len;
        }
        rabia_kv_encode_txn(o, m, ops, lens);
        for (int i = 0; i < m; i++)
            rabia_buf_free(&parts[i]);
        return;
    }
    }
    rabia_kv_encode_argv(o, n, a, NULL);
}

static void test_determinism(void)
{
    void *a = rabia_sm_kv.create(), *b = rabia_sm_kv.create();
    struct rabia_buf o = {0}, ra = {0}, rb = {0}, sa = {0}, sb = {0};
    int txn_ok = 0, txn_fail = 0;
    rng_state = 2024;
    for (int i = 0; i < 20000; i++) {
        rabia_buf_clear(&o);
        random_cmd(&o);
        rabia_buf_clear(&ra);
        rabia_buf_clear(&rb);
        CHECK_EQ(rabia_sm_kv.apply(a, o.data, o.len, &ra), 0);
        CHECK_EQ(rabia_sm_kv.apply(b, o.data, o.len, &rb), 0);
        CHECK(buf_eq(&ra, &rb));
        if (o.len > 11 && memcmp(o.data + 8, "TXN", 3) == 0)
            ra.data[0] == '*' ? txn_ok++ : txn_fail++; /* runs whole, errors inside */
        if (i % 1000 == 999) {
            /* Snapshot, restore into b: b stays in step. */
            snap(a, &sa);
            CHECK_EQ(rabia_sm_kv.restore(b, sa.data, sa.len), 0);
            snap(b, &sb);
            CHECK(buf_eq(&sa, &sb));
        }
    }
    snap(a, &sa);
    snap(b, &sb);
    CHECK(buf_eq(&sa, &sb));
    CHECK(txn_ok > 100 && txn_fail == 0);
    rabia_buf_free(&o);
    rabia_buf_free(&ra);
    rabia_buf_free(&rb);
    rabia_buf_free(&sa);
    rabia_buf_free(&sb);
    rabia_sm_kv.destroy(a);
    rabia_sm_kv.destroy(b);
}

/* The store against a plain model: random SET/DEL over 500 keys, checking
 * DBSIZE and KEYS *. */
static void test_model(void)
{
    void *sm = rabia_sm_kv.create();
    enum { K = 500 };
    static char names[K][16];
    static int present[K];
    const char *sorted[K];
    rng_state = 31337;
    for (int i = 0; i < K; i++)
        snprintf(names[i], sizeof names[i], "m%d", i);
    for (int round = 0; round < 40; round++) {
        for (int j = 0; j < 500; j++) {
            int k = (int)(rng() % K);
            if (rng() % 2) {
                RUNCMD(sm, "SET", names[k], "v");
                present[k] = 1;
            } else {
                RUNCMD(sm, "DEL", names[k]);
                CHECK_EQ(rep.data[1] - '0', present[k]);
                present[k] = 0;
            }
        }
        int n = 0;
        for (int i = 0; i < K; i++)
            if (present[i])
                sorted[n++] = names[i];
        qsort(sorted, (size_t)n, sizeof sorted[0], cmp_str);
        CHECK_EQ(rabia_kv_count(sm), n);
        /* KEYS lists every present key once (in hash order) */
        RUNCMD(sm, "KEYS", "*");
        char *list = bulk_list(rep.data, rep.len, NULL);
        const char *got[K];
        int idx = 0;
        for (char *tok = strtok(list, ","); tok && idx < K; tok = strtok(NULL, ","))
            got[idx++] = tok;
        qsort(got, (size_t)idx, sizeof got[0], cmp_str);
        CHECK_EQ(idx, n);
        for (int i = 0; i < idx && i < n; i++)
            CHECK(strcmp(got[i], sorted[i]) == 0);
    }
    rabia_sm_kv.destroy(sm);
}

static void test_snapshot(void)
{
    void *a = rabia_sm_kv.create(), *b = rabia_sm_kv.create(), *c = rabia_sm_kv.create();
    struct rabia_buf o = {0}, s1 = {0}, s2 = {0}, bad = {0};
    rng_state = 5;
    for (int i = 0; i < 3000; i++) {
        rabia_buf_clear(&o);
        random_cmd(&o);
        apply_op(a, o.data, o.len);
    }
    RUNCMD(a, "SET", "", "empty key");
    snap(a, &s1);
    CHECK_EQ(rabia_sm_kv.restore(b, s1.data, s1.len), 0);
    snap(b, &s2);
    CHECK(buf_eq(&s1, &s2));
    /* The same content inserted in another order: same bytes. */
    RUNCMD(a, "KEYS", "*");
    struct rabia_buf keys = {0};
    rabia_buf_append(&keys, rep.data, rep.len);
    char *list = bulk_list(keys.data, keys.len, NULL); /* no key contains ',' */
    char *toks[200];
    int n = 0;
    for (char *t = strtok(list, ","); t && n < 200; t = strtok(NULL, ","))
        toks[n++] = strdup(t);
    RUNCMD(c, "SET", "", "empty key");
    for (int i = n - 1; i >= 0; i--) {
        RUNCMD(a, "GET", toks[i]);
        struct rabia_buf val = {0};
        size_t hl = (size_t)(strchr((const char *)rep.data, '\n') - (const char *)rep.data) + 1;
        rabia_buf_append(&val, rep.data + hl, rep.len - hl - 2);
        const char *argv[] = {"SET", toks[i], (const char *)val.data};
        const size_t lens[] = {3, strlen(toks[i]), val.len};
        rabia_buf_clear(&o);
        rabia_kv_encode_argv(&o, 3, argv, lens);
        apply_op(c, o.data, o.len);
        rabia_buf_free(&val);
        free(toks[i]);
    }
    /* the same keys and values, written in another order: the same keys
     * (the snapshots differ in the WATCH versions, which are history) */
    RUNCMD(a, "DBSIZE");
    char na[32];
    snprintf(na, sizeof na, "%.*s", (int)rep.len, (const char *)rep.data);
    RUNCMD(c, "DBSIZE");
    CHECK(strlen(na) == rep.len && memcmp(na, rep.data, rep.len) == 0);
    rabia_buf_free(&keys);

    /* Corrupt snapshots: rejected, b unchanged. */
    for (size_t len = 0; len < s1.len; len += (len < 100 ? 1 : 37))
        CHECK_EQ(rabia_sm_kv.restore(b, s1.data, len), -EINVAL);
    rabia_buf_append(&bad, s1.data, s1.len);
    rabia_buf_put_u8(&bad, 0);
    CHECK_EQ(rabia_sm_kv.restore(b, bad.data, bad.len), -EINVAL);
    bad.len = s1.len;
    bad.data[0] = 1; /* a version no build wrote */
    CHECK_EQ(rabia_sm_kv.restore(b, bad.data, bad.len), -EINVAL);
    bad.data[0] = 9; /* a later build's (it comes with a feature level: kv/snapshot.c) */
    CHECK_EQ(rabia_sm_kv.restore(b, bad.data, bad.len), RABIA_E_FEATURE);
    snap(b, &s2);
    CHECK(buf_eq(&s1, &s2));
    /* Empty store. */
    void *e = rabia_sm_kv.create();
    snap(e, &s2);
    /* version (2: no script was ever cached), clock, counter, 16 empty databases */
    CHECK_EQ(s2.data[0], 2);
    CHECK_EQ(s2.len, 1 + 8 + 8 + 16 * (256 * 8 + 16));
    CHECK_EQ(rabia_sm_kv.restore(b, s2.data, s2.len), 0);
    EXPECT(b, ":0\r\n", "DBSIZE");
    rabia_sm_kv.destroy(e);

    rabia_buf_free(&o);
    rabia_buf_free(&s1);
    rabia_buf_free(&s2);
    rabia_buf_free(&bad);
    rabia_sm_kv.destroy(a);
    rabia_sm_kv.destroy(b);
    rabia_sm_kv.destroy(c);
}

int main(void)
{
    RUN(test_basics);
    RUN(test_errors);
    RUN(test_set_options);
    RUN(test_incr);
    RUN(test_keys_glob);
    RUN(test_glob_function);
    RUN(test_resp_helpers);
    RUN(test_binary);
    RUN(test_determinism);
    RUN(test_model);
    RUN(test_snapshot);
    rabia_buf_free(&rep);
    return CHECK_DONE();
}
