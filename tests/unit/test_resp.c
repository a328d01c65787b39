/* io/resp: the RESP2 parser (every shape, split at every byte, malformed and
 * oversized input), the dispatcher (Redis's texts, MULTI/EXEC/DISCARD,
 * connection commands), end to end with the real KV state machine, and
 * RESP3 (HELLO 3, the connection's own RESP3 replies, resp3_convert on
 * every kind against Redis 7.0.15's bytes, malformed and random input). */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kv.h"
#include "resp.h"

#define LIT(s) (const uint8_t *)(s), (sizeof(s) - 1)

/* Compare bytes, printing both (escaped) on a mismatch. */
static void print_escaped(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && i < 400; i++) {
        if (p[i] == '\r')
            fputs("\\r", stderr);
        else if (p[i] == '\n')
            fputs("\\n", stderr);
        else if (p[i] < 32 || p[i] > 126)
            fprintf(stderr, "\\x%02x", p[i]);
        else
            fputc(p[i], stderr);
    }
    if (n > 400)
        fputs("...", stderr);
}

static void check_bytes(const char *file, int line, const uint8_t *got, size_t got_len,
                        const uint8_t *want, size_t want_len)
{
    if (got_len == want_len && (got_len == 0 || memcmp(got, want, got_len) == 0))
        return;
    fprintf(stderr, "%s:%d: bytes differ\n  got:  ", file, line);
    print_escaped(got, got_len);
    fprintf(stderr, "\n  want: ");
    print_escaped(want, want_len);
    fprintf(stderr, "\n");
    check_failures++;
}
#define CHECK_BUF(buf, s) check_bytes(__FILE__, __LINE__, (buf)->data, (buf)->len, LIT(s))
#define CHECK_MEM(p, n, s) check_bytes(__FILE__, __LINE__, (p), (n), LIT(s))

/* ---------------------------------------------------------------------- */
/* Parser                                                                  */

static bool same(const struct rabia_buf *a, const struct rabia_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* A rendering of parsed commands: per command "argc:" then "len=bytes|",
 * then ";"; an error as "E<message>;". Binary-safe. */
static void render_cmd(struct rabia_buf *out, const struct resp_argv *a)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%u:", a->argc);
    rabia_buf_append(out, tmp, strlen(tmp));
    for (uint32_t i = 0; i < a->argc; i++) {
        snprintf(tmp, sizeof tmp, "%zu=", a->argv_len[i]);
        rabia_buf_append(out, tmp, strlen(tmp));
        rabia_buf_append(out, a->argv[i], a->argv_len[i]);
        rabia_buf_append(out, "|", 1);
    }
    rabia_buf_append(out, ";", 1);
}

/* Feed p[0..n) in chunks whose ends are given by cuts (ascending, the last
 * one n), the way a connection would: a receive buffer that grows, is
 * compacted after each command and MOVES (a fresh copy per call, so a
 * pointer kept across calls would be caught by ASan). Returns the rc of
 * the last resp_parse (negative on an error). */
static int feed(const uint8_t *p, size_t n, const size_t *cuts, size_t ncuts, size_t max_bulk,
                struct rabia_buf *out)
{
    struct resp_argv a;
    resp_argv_init(&a, max_bulk);
    uint8_t *held = NULL; /* unconsumed bytes */
    size_t held_len = 0, at = 0;
    int rc = 0;
    for (size_t c = 0; c < ncuts && rc >= 0; c++) {
        size_t end = cuts[c];
        uint8_t *buf = malloc(held_len + (end - at) + 1);
        if (held_len)
            memcpy(buf, held, held_len);
        if (end > at)
            memcpy(buf + held_len, p + at, end - at);
        size_t len = held_len + (end - at);
        free(held);
        at = end;
        size_t off = 0;
        for (;;) {
            size_t used = 0;
            rc = resp_parse(buf + off, len - off, &used, &a);
            if (rc < 0) {
                rabia_buf_append(out, "E", 1);
                rabia_buf_append(out, a.err, strlen(a.err));
                rabia_buf_append(out, ";", 1);
                break;
            }
            CHECK(used <= len - off);
            off += used;
            if (rc == 0)
                break;
            render_cmd(out, &a);
        }
        held_len = rc < 0 ? 0 : len - off;
        held = malloc(held_len + 1);
        if (held_len)
            memcpy(held, buf + off, held_len);
        free(buf);
    }
    free(held);
    resp_argv_free(&a);
    return rc;
}

static int feed_whole(const uint8_t *p, size_t n, struct rabia_buf *out)
{
    size_t cut = n;
    return feed(p, n, &cut, 1, 0, out);
}

/* Whole, split at every boundary, and one byte at a time must agree. */
static void check_splits(const uint8_t *p, size_t n, const uint8_t *want, size_t want_len)
{
    struct rabia_buf whole = {0};
    feed_whole(p, n, &whole);
    check_bytes(__FILE__, __LINE__, whole.data, whole.len, want, want_len);
    for (size_t k = 0; k <= n; k++) {
        size_t cuts[2] = {k, n};
        struct rabia_buf got = {0};
        feed(p, n, cuts, 2, 0, &got);
        if (!same(&got, &whole)) {
            fprintf(stderr, "split at %zu differs\n", k);
            check_bytes(__FILE__, __LINE__, got.data, got.len, whole.data, whole.len);
        }
        rabia_buf_free(&got);
    }
    size_t *cuts = malloc((n ? n : 1) * sizeof *cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    struct rabia_buf bytewise = {0};
    feed(p, n, cuts, n, 0, &bytewise);
    check_bytes(__FILE__, __LINE__, bytewise.data, bytewise.len, whole.data, whole.len);
    free(cuts);
    rabia_buf_free(&bytewise);
    rabia_buf_free(&whole);
}
#define SPLITS(in, want) check_splits(LIT(in), LIT(want))

static void test_parse_array(void)
{
    SPLITS("*1\r\n$4\r\nPING\r\n", "1:4=PING|;");
    SPLITS("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$0\r\n\r\n", "3:3=SET|1=a|0=|;");
    /* pipelined, back to back, with empty arrays between */
    SPLITS("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n",
           "2:3=GET|1=k|;1:4=PING|;");
    /* binary-safe: CR, LF, NUL, 0xff inside values */
    SPLITS("*2\r\n$4\r\nECHO\r\n$6\r\n\r\n\0\xff$*\r\n", "2:4=ECHO|6=\r\n\0\xff$*|;");
    /* a partial command stays partial */
    SPLITS("*2\r\n$3\r\nGET\r\n$1\r\n", "");
}

static void test_parse_inline(void)
{
    SPLITS("PING\r\n", "1:4=PING|;");
    SPLITS("PING\n", "1:4=PING|;");
    SPLITS("  set  a\t  b \r\n", "3:3=set|1=a|1=b|;");
    SPLITS("\r\n\n   \r\nPING\r\n", "1:4=PING|;"); /* blank lines are skipped */
    SPLITS("SET \"a b\" 'c\\'d'\r\n", "3:3=SET|3=a b|3=c'd|;");
    SPLITS("ECHO \"\\x41\\n\\t\\\\\\\"\" \"\"\r\n", "3:4=ECHO|5=A\n\t\\\"|0=|;");
    SPLITS("ECHO a\"b c\"d\r\n", "EProtocol error: unbalanced quotes in request;");
    SPLITS("ECHO a\"b c\" d\r\n", "3:4=ECHO|4=ab c|1=d|;"); /* a quote may open mid-word */
    /* inline and arrays mixed */
    SPLITS("PING\r\n*1\r\n$4\r\nPING\r\nECHO x\r\n", "1:4=PING|;1:4=PING|;2:4=ECHO|1=x|;");
    /* a NUL ends the line's arguments (sdssplitargs works on C strings) */
    SPLITS("ECHO ab\0cd\r\nPING\r\n", "2:4=ECHO|2=ab|;1:4=PING|;");
}

static void test_parse_errors(void)
{
    SPLITS("PING \"a\r\n", "EProtocol error: unbalanced quotes in request;");
    SPLITS("ECHO \"a\"b\r\n", "EProtocol error: unbalanced quotes in request;");
    SPLITS("ECHO 'a\r\n", "EProtocol error: unbalanced quotes in request;");
    SPLITS("*x\r\n", "EProtocol error: invalid multibulk length;");
    SPLITS("*+1\r\n", "EProtocol error: invalid multibulk length;");
    SPLITS("*01\r\n", "EProtocol error: invalid multibulk length;");
    SPLITS("* 1\r\n", "EProtocol error: invalid multibulk length;");
    SPLITS("*\r\n", "EProtocol error: invalid multibulk length;");
    SPLITS("*1048577\r\n", "EProtocol error: invalid multibulk length;");
    SPLITS("*99999999999999999999999\r\n", "EProtocol error: invalid multibulk length;");
    SPLITS("*1\r\n$-1\r\n", "EProtocol error: invalid bulk length;");
    SPLITS("*1\r\n$-0\r\n", "EProtocol error: invalid bulk length;");
    SPLITS("*1\r\n$04\r\nPING\r\n", "EProtocol error: invalid bulk length;");
    SPLITS("*1\r\n$abc\r\n", "EProtocol error: invalid bulk length;");
    SPLITS("*1\r\n$\r\n", "EProtocol error: invalid bulk length;");
    SPLITS("*1\r\n$67108865\r\n", "EProtocol error: invalid bulk length;");  /* > 64 MiB */
    SPLITS("*1\r\n$536870913\r\n", "EProtocol error: invalid bulk length;"); /* > 512 MiB */
    SPLITS("*1\r\n$9223372036854775808\r\n", "EProtocol error: invalid bulk length;");
    SPLITS("*2\r\n+get\r\n", "EProtocol error: expected '$', got '+';");
    SPLITS("*2\r\n\r\n", "EProtocol error: expected '$', got ' ';");
    SPLITS("*1\r\n$4\r\nPINGxx", "EProtocol error: expected CRLF after bulk string;");
    SPLITS("*1\rx", "EProtocol error: expected LF after CR;");
    SPLITS("*1\r\n$4\rx", "EProtocol error: expected LF after CR;");
    /* commands before the error are still delivered */
    SPLITS("PING\r\n*1\r\n$x\r\n", "1:4=PING|;EProtocol error: invalid bulk length;");
}

static void test_parse_limits(void)
{
    struct resp_argv a;
    size_t used;
    /* 1M arguments is the most: the header is accepted, the parser waits */
    resp_argv_init(&a, 0);
    CHECK_EQ(a.max_bulk, RESP_DEFAULT_MAX_BULK);
    CHECK_EQ(resp_parse(LIT("*1048576\r\n"), &used, &a), 0);
    resp_argv_free(&a);
    /* a 64 MiB bulk is accepted: want says how many bytes are needed */
    resp_argv_init(&a, 0);
    CHECK_EQ(resp_parse(LIT("*1\r\n$67108864\r\n"), &used, &a), 0);
    CHECK_EQ(a.want, 15 + 67108864 + 2);
    resp_argv_free(&a);
    /* the configured maximum is clamped to Redis's 512 MiB */
    resp_argv_init(&a, (size_t)1 << 40);
    CHECK_EQ(a.max_bulk, RESP_MAX_BULK_LIMIT);
    CHECK_EQ(resp_parse(LIT("*1\r\n$536870912\r\n"), &used, &a), 0);
    resp_argv_free(&a);
    resp_argv_init(&a, 10);
    CHECK_EQ(resp_parse(LIT("*1\r\n$11\r\n"), &used, &a), -EPROTO);
    CHECK(strcmp(a.err, "Protocol error: invalid bulk length") == 0);
    CHECK_EQ(resp_parse(LIT("*1\r\n$10\r\n0123456789\r\n"), &used, &a), 1);
    resp_argv_free(&a);

    /* header and inline lines are bounded at 64 KiB, found or not */
    size_t big = RESP_MAX_INLINE + 10;
    uint8_t *p = malloc(big + 2);
    memset(p, '1', big);
    p[0] = '*';
    resp_argv_init(&a, 0);
    CHECK_EQ(resp_parse(p, big, &used, &a), -EPROTO);
    CHECK(strcmp(a.err, "Protocol error: too big mbulk count string") == 0);
    memcpy(p, "*1\r\n$", 5);
    CHECK_EQ(resp_parse(p, big, &used, &a), -EPROTO);
    CHECK(strcmp(a.err, "Protocol error: too big bulk count string") == 0);
    memset(p, 'a', big);
    CHECK_EQ(resp_parse(p, big, &used, &a), -EPROTO);
    CHECK(strcmp(a.err, "Protocol error: too big inline request") == 0);
    p[big] = '\n';
    CHECK_EQ(resp_parse(p, big + 1, &used, &a), -EPROTO);
    CHECK(strcmp(a.err, "Protocol error: too big inline request") == 0);
    /* just under the bound is fine */
    memset(p, 'a', RESP_MAX_INLINE - 1);
    p[RESP_MAX_INLINE - 1] = '\n';
    CHECK_EQ(resp_parse(p, RESP_MAX_INLINE, &used, &a), 1);
    CHECK_EQ(a.argc, 1);
    CHECK_EQ(a.argv_len[0], RESP_MAX_INLINE - 1);
    resp_argv_free(&a);
    free(p);

    /* many arguments: the argv arrays grow, then shrink between commands */
    struct rabia_buf in = {0};
    char hdr[32];
    uint32_t n = 100000;
    snprintf(hdr, sizeof hdr, "*%u\r\n", n);
    rabia_buf_append(&in, hdr, strlen(hdr));
    for (uint32_t i = 0; i < n; i++)
        rabia_buf_append(&in, "$1\r\nx\r\n", 7);
    rabia_buf_append(&in, "PING\r\n", 6);
    resp_argv_init(&a, 0);
    CHECK_EQ(resp_parse(in.data, in.len, &used, &a), 1);
    CHECK_EQ(a.argc, n);
    CHECK_EQ(used, in.len - 6);
    CHECK_EQ(resp_parse(in.data + used, 6, &used, &a), 1);
    CHECK_EQ(a.argc, 1);
    CHECK(a.cap <= 1024);
    resp_argv_free(&a);
    rabia_buf_free(&in);

    /* a client that has yet to authenticate: Redis's 10 arguments and
     * 16 KiB bulks; at the bound is fine, one past it is refused at the
     * header, before any of its bytes are waited for */
    resp_argv_init(&a, 0);
    a.unauthenticated = true;
    CHECK_EQ(resp_parse(LIT("*11\r\n"), &used, &a), -EPROTO);
    CHECK(strcmp(a.err, "Protocol error: unauthenticated multibulk length") == 0);
    resp_argv_reset(&a);
    CHECK_EQ(resp_parse(LIT("*10\r\n"), &used, &a), 0);
    resp_argv_reset(&a);
    CHECK_EQ(resp_parse(LIT("*2\r\n$4\r\nAUTH\r\n$16385\r\n"), &used, &a), -EPROTO);
    CHECK(strcmp(a.err, "Protocol error: unauthenticated bulk length") == 0);
    resp_argv_reset(&a);
    CHECK_EQ(resp_parse(LIT("*2\r\n$4\r\nAUTH\r\n$16384\r\n"), &used, &a), 0);
    CHECK_EQ(a.want, 22 + 16384 + 2);
    resp_argv_reset(&a);
    /* the general bounds keep their own texts */
    CHECK_EQ(resp_parse(LIT("*2000000\r\n"), &used, &a), -EPROTO);
    CHECK(strcmp(a.err, "Protocol error: invalid multibulk length") == 0);
    resp_argv_reset(&a);
    /* authenticated: the same bytes parse */
    a.unauthenticated = false;
    CHECK_EQ(resp_parse(LIT("*11\r\n"), &used, &a), 0);
    resp_argv_reset(&a);
    CHECK_EQ(resp_parse(LIT("*2\r\n$4\r\nAUTH\r\n$16385\r\n"), &used, &a), 0);
    resp_argv_free(&a);

    /* consumed on a 0 return: empty commands may be dropped already */
    resp_argv_init(&a, 0);
    CHECK_EQ(resp_parse(LIT("*0\r\n\r\n*1\r\n$4\r\nPI"), &used, &a), 0);
    CHECK_EQ(used, 6);
    CHECK_EQ(resp_parse(LIT("*1\r\n$4\r\nPING\r\n"), &used, &a), 1);
    CHECK_EQ(used, 14);
    resp_argv_free(&a);
}

/* Random garbage and mutations of valid streams: never a crash or an
 * over-read (ASan builds check), and byte-at-a-time feeding agrees with
 * whole feeding. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void test_parse_random(void)
{
    static const char *pieces[] = {
        "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "PING\r\n", "*0\r\n", "*-1\r\n", "\r\n",
        "SET \"a b\" 'c'\r\n", "*1\r\n$0\r\n\r\n", "$", "*", "\r", "\n", "\"", "'", "\\x4",
        "-1", "12", "\0", "\xff", " "};
    size_t np = sizeof pieces / sizeof pieces[0];
    for (int iter = 0; iter < 3000; iter++) {
        struct rabia_buf in = {0};
        int k = (int)(rnd() % 12);
        for (int i = 0; i < k; i++) {
            const char *s = pieces[rnd() % np];
            rabia_buf_append(&in, s, s[0] ? strlen(s) : 1);
        }
        if (in.len && rnd() % 2)
            in.data[rnd() % in.len] = (uint8_t)rnd();
        struct rabia_buf whole = {0}, bytewise = {0};
        feed_whole(in.data, in.len, &whole);
        size_t *cuts = malloc((in.len + 1) * sizeof *cuts);
        for (size_t i = 0; i < in.len; i++)
            cuts[i] = i + 1;
        feed(in.data, in.len, cuts, in.len, 0, &bytewise);
        if (!same(&whole, &bytewise)) {
            fprintf(stderr, "random input %d: ", iter);
            print_escaped(in.data, in.len);
            fprintf(stderr, "\n");
            check_bytes(__FILE__, __LINE__, bytewise.data, bytewise.len, whole.data, whole.len);
        }
        free(cuts);
        rabia_buf_free(&in);
        rabia_buf_free(&whole);
        rabia_buf_free(&bytewise);
    }
}

/* ---------------------------------------------------------------------- */
/* A RESP3 reader for the checks: RESP2 is a subset                        */

/* The length of the one complete RESP3 value at the start of p[0..len):
 * 0 and *used, or -EINVAL (malformed or incomplete). Strict: every line
 * ends in CRLF, lengths are canonical decimals. */
static int resp3_value(const uint8_t *p, size_t len, size_t *used, int depth)
{
    if (len < 3 || depth > 64)
        return -EINVAL;
    const uint8_t *cr = memchr(p + 1, '\r', len - 1);
    if (!cr || (size_t)(cr - p) + 1 >= len || cr[1] != '\n')
        return -EINVAL;
    size_t hl = (size_t)(cr - p) - 1, next = (size_t)(cr - p) + 2;
    int64_t n = 0;
    bool num = rabia_kv_parse_int(p + 1, hl, &n);
    switch (p[0]) {
    case '+': case '-': case '(':
        if (memchr(p + 1, '\n', hl))
            return -EINVAL;
        *used = next;
        return 0;
    case ':':
        if (!num)
            return -EINVAL;
        *used = next;
        return 0;
    case '_':
        if (hl)
            return -EINVAL;
        *used = next;
        return 0;
    case '#':
        if (hl != 1 || (p[1] != 't' && p[1] != 'f'))
            return -EINVAL;
        *used = next;
        return 0;
    case ',': {
        if (hl == 0)
            return -EINVAL;
        char tmp[64], *end;
        if (hl >= sizeof tmp)
            return -EINVAL;
        memcpy(tmp, p + 1, hl);
        tmp[hl] = 0;
        (void)strtod(tmp, &end);
        if (*end)
            return -EINVAL;
        *used = next;
        return 0;
    }
    case '$': case '=': case '!':
        if (!num || n < (p[0] == '$' ? -1 : 0))
            return -EINVAL;
        if (n == -1) { /* RESP2's nil, still accepted by RESP3 clients */
            *used = next;
            return 0;
        }
        if ((uint64_t)n > len - next || len - next - (size_t)n < 2 || p[next + n] != '\r' || p[next + n + 1] != '\n')
            return -EINVAL;
        if (p[0] == '=' && (n < 4 || p[next + 3] != ':'))
            return -EINVAL;
        *used = next + (size_t)n + 2;
        return 0;
    case '*': case '~': case '>': case '%': {
        if (!num || n < (p[0] == '*' ? -1 : 0))
            return -EINVAL;
        size_t at = next;
        uint64_t items = n < 0 ? 0 : (uint64_t)n * (p[0] == '%' ? 2 : 1);
        for (uint64_t i = 0; i < items; i++) {
            size_t u;
            if (resp3_value(p + at, len - at, &u, depth + 1))
                return -EINVAL;
            at += u;
        }
        *used = at;
        return 0;
    }
    default:
        return -EINVAL;
    }
}

/* p[0..len) is RESP3 values, back to back, and at least one. */
static bool resp3_ok(const uint8_t *p, size_t len)
{
    size_t at = 0;
    do {
        size_t u;
        if (resp3_value(p + at, len - at, &u, 0))
            return false;
        at += u;
    } while (at < len);
    return true;
}

/* ---------------------------------------------------------------------- */
/* Dispatcher                                                              */

/* Run one inline command line through the dispatcher. */
struct run {
    int action;
    struct rabia_buf reply; /* local reply */
    struct rabia_buf op;
};

static int run_cmd(struct resp_session *s, const uint8_t *line, size_t n, struct run *r)
{
    struct resp_argv a;
    size_t used;
    resp_argv_init(&a, 0);
    rabia_buf_clear(&r->reply);
    rabia_buf_clear(&r->op);
    r->action = -1;
    int rc = resp_parse(line, n, &used, &a);
    CHECK_EQ(rc, 1);
    if (rc == 1) {
        r->action = resp_handle(s, &a, &r->reply, &r->op);
        /* every local reply is well-formed RESP2 values, one per reply
         * (SUBSCRIBE a b answers once per channel); RESP3 ones on a RESP3
         * connection (HELLO 3's own reply included) */
        if ((r->action == RESP_LOCAL || r->action == RESP_QUIT) && s->proto == 3) {
            CHECK(resp3_ok(r->reply.data, r->reply.len));
        } else if (r->action == RESP_LOCAL || r->action == RESP_QUIT) {
            size_t at = 0, rlen = 0;
            do {
                CHECK_EQ(rabia_kv_resp_check(r->reply.data + at, r->reply.len - at, &rlen), 0);
                at += rlen;
            } while (rlen && at < r->reply.len);
            CHECK_EQ(at, r->reply.len);
        } else {
            CHECK_EQ(r->reply.len, 0);
        }
        if (r->action != RESP_REPLICATE)
            CHECK_EQ(r->op.len, 0);
    }
    resp_argv_free(&a);
    return r->action;
}
#define RUN_CMD(s, line, r) run_cmd((s), LIT(line "\r\n"), (r))
/* A local command and its exact reply. */
#define EXPECT_LOCAL(s, line, want)                                           \
    do {                                                                      \
        CHECK_EQ(RUN_CMD(s, line, &r), RESP_LOCAL);                           \
        CHECK_BUF(&r.reply, want);                                            \
    } while (0)

static void run_free(struct run *r)
{
    rabia_buf_free(&r->reply);
    rabia_buf_free(&r->op);
}

/* Apply an op to the state machine, reply in out (cleared first). */
static void apply(void *sm, const struct rabia_buf *op, struct rabia_buf *out)
{
    rabia_buf_clear(out);
    CHECK_EQ(rabia_sm_kv.apply(sm, op->data, op->len, out), 0);
}

/* Replicate a command and check the state machine's reply. */
#define EXPECT_REPL(s, sm, line, want)                                        \
    do {                                                                      \
        CHECK_EQ(RUN_CMD(s, line, &r), RESP_REPLICATE);                       \
        apply(sm, &r.op, &res);                                               \
        CHECK_BUF(&res, want);                                                \
    } while (0)

static void test_errors_texts(void)
{
    struct resp_session s;
    struct run r = {0};
    resp_session_init(&s, 7, 0);
    EXPECT_LOCAL(&s, "get", "-ERR wrong number of arguments for 'get' command\r\n");
    EXPECT_LOCAL(&s, "GET a b", "-ERR wrong number of arguments for 'get' command\r\n");
    EXPECT_LOCAL(&s, "SeT a", "-ERR wrong number of arguments for 'set' command\r\n");
    EXPECT_LOCAL(&s, "foo a b",
                 "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n");
    EXPECT_LOCAL(&s, "foo", "-ERR unknown command 'foo', with args beginning with: \r\n");
    EXPECT_LOCAL(&s, "\"fo\\ro\" \"x\\ny\"",
                 "-ERR unknown command 'fo o', with args beginning with: 'x y' \r\n");
    /* Redis 7.0.15 prints the name and each argument with %.*s: they end at
     * a NUL byte, and the 128-byte budget counts what was printed (before,
     * the NUL and the bytes after it were copied: 'fo\0o', 'a\0b', and
     * the long argument's y's instead of the z's) */
    EXPECT_LOCAL(&s, "\"fo\\x00o\" \"a\\x00b\" c",
                 "-ERR unknown command 'fo', with args beginning with: 'a' 'c' \r\n");
    {
        char line[400], want[400];
        int n = snprintf(line, sizeof line, "foo \"%0100d\\x00%0100d\" %050d\r\n", 0, 0, 0);
        snprintf(want, sizeof want, "-ERR unknown command 'foo', with args beginning with: '%0100d' '%025d' \r\n", 0, 0);
        CHECK_EQ(run_cmd(&s, (const uint8_t *)line, (size_t)n, &r), RESP_LOCAL);
        check_bytes(__FILE__, __LINE__, r.reply.data, r.reply.len, (const uint8_t *)want, strlen(want));
    }
    EXPECT_LOCAL(&s, "config foo", "-ERR unknown subcommand 'foo'. Try CONFIG HELP.\r\n");
    EXPECT_LOCAL(&s, "CoNfIg foo", "-ERR unknown subcommand 'foo'. Try CONFIG HELP.\r\n");
    /* Redis prints the subcommand with %.128s: it ends at a NUL byte (before,
     * 'f\0oo' came back) */
    EXPECT_LOCAL(&s, "config \"f\\x00oo\"", "-ERR unknown subcommand 'f'. Try CONFIG HELP.\r\n");
    EXPECT_LOCAL(&s, "config", "-ERR wrong number of arguments for 'config' command\r\n");
    EXPECT_LOCAL(&s, "config get", "-ERR wrong number of arguments for 'config|get' command\r\n");
    EXPECT_LOCAL(&s, "command count x",
                 "-ERR wrong number of arguments for 'command|count' command\r\n");
    EXPECT_LOCAL(&s, "command foo", "-ERR unknown subcommand 'foo'. Try COMMAND HELP.\r\n");
    EXPECT_LOCAL(&s, "client", "-ERR wrong number of arguments for 'client' command\r\n");
    EXPECT_LOCAL(&s, "client foo", "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n");
    EXPECT_LOCAL(&s, "PING a b", "-ERR wrong number of arguments for 'ping' command\r\n");
    EXPECT_LOCAL(&s, "ECHO", "-ERR wrong number of arguments for 'echo' command\r\n");
    EXPECT_LOCAL(&s, "EXEC", "-ERR EXEC without MULTI\r\n");
    EXPECT_LOCAL(&s, "DISCARD", "-ERR DISCARD without MULTI\r\n");

    /* the unknown-command text is the state machine's, byte for byte, also
     * for long arguments (cut at about 128 bytes) */
    void *sm = rabia_sm_kv.create();
    static const char *const cases[] = {
        "nosuch",
        "nosuch a",
        ("x 0123456789012345678901234567890123456789012345678901234567"
         "89012345678901234567890123456789012345678901234567890123456789"
         "0123456789 b c d e f g h"),
        ("y aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb c d e"),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rabia_buf line = {0}, op = {0}, res = {0};
        rabia_buf_append(&line, cases[i], strlen(cases[i]));
        rabia_buf_append(&line, "\r\n", 2);
        CHECK_EQ(run_cmd(&s, line.data, line.len, &r), RESP_LOCAL);
        struct resp_argv a;
        size_t used;
        resp_argv_init(&a, 0);
        CHECK_EQ(resp_parse(line.data, line.len, &used, &a), 1);
        rabia_kv_encode_argv(&op, (int)a.argc, (const char *const *)a.argv, a.argv_len);
        apply(sm, &op, &res);
        check_bytes(__FILE__, __LINE__, r.reply.data, r.reply.len, res.data, res.len);
        resp_argv_free(&a);
        rabia_buf_free(&line);
        rabia_buf_free(&op);
        rabia_buf_free(&res);
    }
    rabia_sm_kv.destroy(sm);
    run_free(&r);
    resp_session_free(&s);
}

static void test_connection_commands(void)
{
    struct resp_session s;
    struct run r = {0};
    resp_session_init(&s, 42, 0);
    EXPECT_LOCAL(&s, "PING", "+PONG\r\n");
    EXPECT_LOCAL(&s, "ping hi", "$2\r\nhi\r\n");
    EXPECT_LOCAL(&s, "ECHO \"a\\r\\nb\"", "$4\r\na\r\nb\r\n");
    EXPECT_LOCAL(&s, "SELECT 0", "+OK\r\n");
    EXPECT_LOCAL(&s, "SELECT 16", "-ERR DB index is out of range\r\n");
    EXPECT_LOCAL(&s, "SELECT -1", "-ERR DB index is out of range\r\n");
    EXPECT_LOCAL(&s, "SELECT 00", "-ERR value is not an integer or out of range\r\n");
    EXPECT_LOCAL(&s, "SELECT x", "-ERR value is not an integer or out of range\r\n");
    EXPECT_LOCAL(&s, "COMMAND DOCS", "*0\r\n");
    EXPECT_LOCAL(&s, "command docs get set", "*0\r\n");
    char count[32];
    snprintf(count, sizeof count, ":%u\r\n", resp_command_count());
    CHECK_EQ(RUN_CMD(&s, "COMMAND COUNT", &r), RESP_LOCAL);
    check_bytes(__FILE__, __LINE__, r.reply.data, r.reply.len, (const uint8_t *)count,
                strlen(count));
    CHECK_EQ(RUN_CMD(&s, "COMMAND", &r), RESP_LOCAL); /* well-formed: run_cmd checks */
    snprintf(count, sizeof count, "*%u\r\n*10\r\n", resp_command_count());
    CHECK(r.reply.len > strlen(count) && memcmp(r.reply.data, count, strlen(count)) == 0);
    CHECK_EQ(RUN_CMD(&s, "COMMAND INFO get config|get nosuch", &r), RESP_LOCAL);
    CHECK(r.reply.len > 40 &&
          memcmp(r.reply.data, LIT("*3\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n"
                                   ":1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*0\r\n*0\r\n*10\r\n$10\r\n"
                                   "config|get\r\n:-3\r\n")) == 0);
    CHECK(memcmp(r.reply.data + r.reply.len - 5, "$-1\r\n", 5) == 0);
    CHECK_EQ(RUN_CMD(&s, "COMMAND LIST", &r), RESP_LOCAL);
    CHECK_EQ(RUN_CMD(&s, "COMMAND HELP", &r), RESP_LOCAL);
    CHECK_EQ(RUN_CMD(&s, "CONFIG HELP", &r), RESP_LOCAL);
    CHECK_EQ(RUN_CMD(&s, "CLIENT HELP", &r), RESP_LOCAL);

    /* what redis-benchmark asks at start */
    EXPECT_LOCAL(&s, "CONFIG GET save", "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    EXPECT_LOCAL(&s, "CONFIG GET appendonly", "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    EXPECT_LOCAL(&s, "config get SAV* appendonly save",
                 "*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    EXPECT_LOCAL(&s, "CONFIG GET nosuch", "*0\r\n");
    /* maxclients: the server's (resp_clients), Redis's default without one */
    EXPECT_LOCAL(&s, "CONFIG GET maxclients", "*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n");
    {
        struct resp_clients cl = {.maxclients = 3968};
        const struct resp_clients *was = s.clients;
        s.clients = &cl;
        EXPECT_LOCAL(&s, "CONFIG GET MAXCLIENTS", "*2\r\n$10\r\nmaxclients\r\n$4\r\n3968\r\n");
        s.clients = was;
    }
    CHECK_EQ(RUN_CMD(&s, "CONFIG GET *", &r), RESP_LOCAL);
    EXPECT_LOCAL(&s, "CONFIG SET foo bar",
                 "-ERR Unknown option or number of arguments for CONFIG SET - 'foo'\r\n");
    /* the argument ends at a NUL byte, as Redis's %s prints it (before,
     * 'f\0oo'); HELLO's option and CLIENT LIST's type the same way */
    EXPECT_LOCAL(&s, "CONFIG SET \"f\\x00oo\" bar",
                 "-ERR Unknown option or number of arguments for CONFIG SET - 'f'\r\n");
    EXPECT_LOCAL(&s, "HELLO 2 \"F\\x00OO\"", "-ERR Syntax error in HELLO option 'F'\r\n");
    EXPECT_LOCAL(&s, "CLIENT LIST TYPE \"a\\x00b\"", "-ERR Unknown client type 'a'\r\n");
    /* a Redis parameter: named as not settable here, not as unknown */
    EXPECT_LOCAL(&s, "CONFIG SET Notify-Keyspace-Events Ex",
                 "-ERR CONFIG SET 'notify-keyspace-events' is not supported: rabiad takes its settings at start from "
                 "its config file or command line, alike on every replica (rabiad --help lists them), never from "
                 "clients; keyspace notifications are not sent\r\n");
    EXPECT_LOCAL(&s, "CONFIG SET foo bar baz",
                 "-ERR wrong number of arguments for 'config|set' command\r\n");
    EXPECT_LOCAL(&s, "CONFIG RESETSTAT", "+OK\r\n");

    EXPECT_LOCAL(&s, "CLIENT ID", ":42\r\n");
    EXPECT_LOCAL(&s, "CLIENT GETNAME", "$-1\r\n");
    EXPECT_LOCAL(&s, "CLIENT SETNAME \"a b\"",
                 "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    EXPECT_LOCAL(&s, "CLIENT SETNAME app1", "+OK\r\n");
    EXPECT_LOCAL(&s, "client getname", "$4\r\napp1\r\n");
    EXPECT_LOCAL(&s, "CLIENT SETINFO LIB-NAME redis-py", "+OK\r\n");
    EXPECT_LOCAL(&s, "CLIENT SETINFO lib-ver 5.0.0", "+OK\r\n");
    EXPECT_LOCAL(&s, "CLIENT SETINFO x y", "-ERR Unrecognized option 'x'\r\n");
    CHECK_EQ(RUN_CMD(&s, "CLIENT INFO", &r), RESP_LOCAL);
    CHECK(memmem(r.reply.data, r.reply.len, "\r\nid=42 addr=", 13) != NULL);
    CHECK(memmem(r.reply.data, r.reply.len, " name=app1 ", 11) != NULL);
    CHECK(memmem(r.reply.data, r.reply.len, " resp=2\n\r\n", 10) != NULL);
    CHECK_EQ(RUN_CMD(&s, "CLIENT LIST", &r), RESP_LOCAL);
    EXPECT_LOCAL(&s, "CLIENT SETNAME \"\"", "+OK\r\n"); /* empty clears */
    EXPECT_LOCAL(&s, "CLIENT GETNAME", "$-1\r\n");

    EXPECT_LOCAL(&s, "HELLO",
                 "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n"
                 "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:42\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n"
                 "$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n");
    CHECK_EQ(RUN_CMD(&s, "HELLO 2 AUTH default secret SETNAME cli", &r), RESP_LOCAL);
    CHECK(memcmp(r.reply.data, "*14\r\n", 5) == 0);
    EXPECT_LOCAL(&s, "CLIENT GETNAME", "$3\r\ncli\r\n");
    EXPECT_LOCAL(&s, "HELLO 4", "-NOPROTO unsupported protocol version\r\n");
    EXPECT_LOCAL(&s, "HELLO 1", "-NOPROTO unsupported protocol version\r\n");
    EXPECT_LOCAL(&s, "HELLO -3", "-NOPROTO unsupported protocol version\r\n");
    EXPECT_LOCAL(&s, "HELLO x", "-ERR Protocol version is not an integer or out of range\r\n");
    EXPECT_LOCAL(&s, "HELLO 2 foo", "-ERR Syntax error in HELLO option 'foo'\r\n");
    EXPECT_LOCAL(&s, "HELLO 2 AUTH default", "-ERR Syntax error in HELLO option 'AUTH'\r\n");
    EXPECT_LOCAL(&s, "HELLO 2 AUTH bob pw",
                 "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    EXPECT_LOCAL(&s, "HELLO 2 SETNAME \"a b\"",
                 "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    EXPECT_LOCAL(&s, "AUTH pw",
                 "-ERR AUTH <password> called without any password configured for the default "
                 "user. Are you sure your configuration is correct?\r\n");
    EXPECT_LOCAL(&s, "AUTH default pw", "+OK\r\n");
    EXPECT_LOCAL(&s, "AUTH bob pw",
                 "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    EXPECT_LOCAL(&s, "AUTH a b c", "-ERR syntax error\r\n");
    EXPECT_LOCAL(&s, "RESET", "+RESET\r\n");
    EXPECT_LOCAL(&s, "CLIENT GETNAME", "$-1\r\n");

    CHECK_EQ(RUN_CMD(&s, "INFO", &r), RESP_INFO);
    CHECK_EQ(RUN_CMD(&s, "info keyspace", &r), RESP_INFO);
    CHECK_EQ(RUN_CMD(&s, "QUIT", &r), RESP_QUIT);
    CHECK_BUF(&r.reply, "+OK\r\n");
    CHECK_EQ(RUN_CMD(&s, "quit now", &r), RESP_QUIT);
    run_free(&r);
    resp_session_free(&s);
}

static void test_replicated_ops(void)
{
    struct resp_session s;
    struct run r = {0};
    struct rabia_buf res = {0};
    void *sm = rabia_sm_kv.create();
    resp_session_init(&s, 1, 0);

    /* the op is the argv encoding of exactly what the client sent */
    CHECK_EQ(RUN_CMD(&s, "set key \"v a l\"", &r), RESP_REPLICATE);
    struct rabia_buf want = {0};
    const char *argv[] = {"set", "key", "v a l"};
    rabia_kv_encode_argv(&want, 3, argv, NULL);
    check_bytes(__FILE__, __LINE__, r.op.data, r.op.len, want.data, want.len);
    rabia_buf_free(&want);
    apply(sm, &r.op, &res);
    CHECK_BUF(&res, "+OK\r\n");

    EXPECT_REPL(&s, sm, "GET key", "$5\r\nv a l\r\n");
    EXPECT_REPL(&s, sm, "GET nokey", "$-1\r\n");
    EXPECT_REPL(&s, sm, "SET key x NX", "$-1\r\n");
    EXPECT_REPL(&s, sm, "SET key y XX GET", "$5\r\nv a l\r\n");
    EXPECT_REPL(&s, sm, "INCR n", ":1\r\n");
    EXPECT_REPL(&s, sm, "INCRBY n 41", ":42\r\n");
    EXPECT_REPL(&s, sm, "DECR n", ":41\r\n");
    EXPECT_REPL(&s, sm, "DECRBY n 40", ":1\r\n");
    EXPECT_REPL(&s, sm, "INCR key", "-ERR value is not an integer or out of range\r\n");
    EXPECT_REPL(&s, sm, "MSET a 1 b 2", "+OK\r\n");
    EXPECT_REPL(&s, sm, "MGET a b c", "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n");
    EXPECT_REPL(&s, sm, "EXISTS a b c a", ":3\r\n");
    EXPECT_REPL(&s, sm, "KEYS ?", "*3\r\n$1\r\na\r\n$1\r\nn\r\n$1\r\nb\r\n"); /* hash order */
    EXPECT_REPL(&s, sm, "SCAN 0 COUNT 10 MATCH ?", "*2\r\n$1\r\n0\r\n*3\r\n$1\r\na\r\n$1\r\nn\r\n$1\r\nb\r\n");
    EXPECT_REPL(&s, sm, "DBSIZE", ":4\r\n");
    EXPECT_REPL(&s, sm, "DEL a b c", ":2\r\n");
    EXPECT_REPL(&s, sm, "SET k v EX 10 NX", "+OK\r\n");
    EXPECT_REPL(&s, sm, "TTL k", ":10\r\n");
    EXPECT_REPL(&s, sm, "FLUSHDB", "+OK\r\n");
    EXPECT_REPL(&s, sm, "DBSIZE", ":0\r\n");
    EXPECT_REPL(&s, sm, "FLUSHALL ASYNC", "+OK\r\n");

    /* an op too large for a batch is refused locally */
    struct resp_session small;
    resp_session_init(&small, 2, 64);
    /* 4 + (4+3) + (4+1) + (4+45) = 65 */
    CHECK_EQ(RUN_CMD(&small, "SET k 012345678901234567890123456789012345678901234", &r),
             RESP_LOCAL);
    CHECK_BUF(&r.reply, "-ERR request too large to replicate: 65 bytes encoded, the limit is 64: split it\r\n");
    CHECK_EQ(RUN_CMD(&small, "SET k 01234567890123456789012345678901234567890123", &r),
             RESP_REPLICATE);
    CHECK_EQ(r.op.len, 64);
    resp_session_free(&small);

    rabia_buf_free(&res);
    rabia_sm_kv.destroy(sm);
    run_free(&r);
    resp_session_free(&s);
}

static void test_multi(void)
{
    struct resp_session s;
    struct run r = {0};
    struct rabia_buf res = {0};
    void *sm = rabia_sm_kv.create();
    resp_session_init(&s, 1, 0);

    /* MULTI SET INCR EXEC: one TXN op, its reply the array */
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "SET a 1", "+QUEUED\r\n");
    EXPECT_LOCAL(&s, "INCR a", "+QUEUED\r\n");
    EXPECT_LOCAL(&s, "ping", "+QUEUED\r\n"); /* queued, as in Redis */
    EXPECT_LOCAL(&s, "ECHO x", "+QUEUED\r\n");
    EXPECT_LOCAL(&s, "GET a", "+QUEUED\r\n");
    EXPECT_REPL(&s, sm, "EXEC", "*5\r\n+OK\r\n:2\r\n+PONG\r\n$1\r\nx\r\n$1\r\n2\r\n");
    EXPECT_LOCAL(&s, "EXEC", "-ERR EXEC without MULTI\r\n");

    /* empty transaction */
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "EXEC", "*0\r\n");

    /* nested MULTI is an error but does not abort the transaction */
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "MULTI", "-ERR MULTI calls can not be nested\r\n");
    EXPECT_LOCAL(&s, "INCR a", "+QUEUED\r\n");
    EXPECT_REPL(&s, sm, "EXEC", "*1\r\n:3\r\n");

    /* errors while queueing: EXEC aborts */
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "foo", "-ERR unknown command 'foo', with args beginning with: \r\n");
    EXPECT_LOCAL(&s, "SET a b", "+QUEUED\r\n");
    EXPECT_LOCAL(&s, "EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n");
    EXPECT_REPL(&s, sm, "GET a", "$1\r\n3\r\n"); /* nothing ran */

    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "GET", "-ERR wrong number of arguments for 'get' command\r\n");
    EXPECT_LOCAL(&s, "EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n");

    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "MULTI x", "-ERR wrong number of arguments for 'multi' command\r\n");
    EXPECT_LOCAL(&s, "EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n");

    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "SELECT 16", "+QUEUED\r\n"); /* checked at EXEC, as Redis */
    EXPECT_LOCAL(&s, "SELECT 1.5", "+QUEUED\r\n");
    EXPECT_REPL(&s, sm, "EXEC", "*2\r\n-ERR DB index is out of range\r\n-ERR value is not an integer or out of range\r\n");
    CHECK_EQ(s.db, 0);
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "SUBSCRIBE c",
                 "-ERR 'subscribe' cannot be queued inside MULTI on this server: it answers the connection's own commands "
                 "at once, not at EXEC. Send it before MULTI or after EXEC (redis-py: "
                 "pipeline(transaction=False))\r\n");
    EXPECT_LOCAL(&s, "EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n");

    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "CONFIG GET save",
                 "-ERR 'config|get' cannot be queued inside MULTI on this server: it answers the connection's own commands "
                 "at once, not at EXEC. Send it before MULTI or after EXEC (redis-py: "
                 "pipeline(transaction=False))\r\n");
    EXPECT_LOCAL(&s, "INFO",
                 "-ERR 'info' cannot be queued inside MULTI on this server: it answers the connection's own commands "
                 "at once, not at EXEC. Send it before MULTI or after EXEC (redis-py: "
                 "pipeline(transaction=False))\r\n");
    EXPECT_LOCAL(&s, "DISCARD", "+OK\r\n");

    /* a rejected EXEC aborts at once (Redis 7) */
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "SET a b", "+QUEUED\r\n");
    EXPECT_LOCAL(&s, "EXEC x", "-EXECABORT Transaction discarded because of: wrong number of "
                               "arguments for 'exec' command\r\n");
    EXPECT_LOCAL(&s, "EXEC", "-ERR EXEC without MULTI\r\n");

    /* DISCARD drops the queue */
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "SET a discarded", "+QUEUED\r\n");
    EXPECT_LOCAL(&s, "DISCARD", "+OK\r\n");
    EXPECT_LOCAL(&s, "DISCARD", "-ERR DISCARD without MULTI\r\n");
    EXPECT_REPL(&s, sm, "GET a", "$1\r\n3\r\n");

    /* a run-time failure is that command's reply; the others run (Redis) */
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "SET a x", "+QUEUED\r\n");
    EXPECT_LOCAL(&s, "INCR a", "+QUEUED\r\n");
    EXPECT_REPL(&s, sm, "EXEC", "*2\r\n+OK\r\n-ERR value is not an integer or out of range\r\n");
    EXPECT_REPL(&s, sm, "GET a", "$1\r\nx\r\n");

    /* SELECT in MULTI: the queued commands that follow run in that
     * database, and the connection stays there after EXEC */
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "SELECT 2", "+QUEUED\r\n");
    EXPECT_LOCAL(&s, "SET a two", "+QUEUED\r\n");
    EXPECT_REPL(&s, sm, "EXEC", "*2\r\n+OK\r\n+OK\r\n");
    CHECK_EQ(s.post, RESP_POST_EXEC_DB);
    CHECK(s.barrier);
    CHECK_EQ(s.db, 0); /* not before the answer: a WATCH could abort it */
    resp_exec_result(&s, res.data, res.len);
    CHECK_EQ(s.db, 2);
    EXPECT_REPL(&s, sm, "GET a", "$3\r\ntwo\r\n");
    /* aborted (nil): the SELECT did not run, the connection stays */
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "SELECT 5", "+QUEUED\r\n");
    CHECK_EQ(RUN_CMD(&s, "EXEC", &r), RESP_REPLICATE);
    resp_exec_result(&s, (const uint8_t *)"*-1\r\n", 5);
    CHECK_EQ(s.db, 2);
    /* UNWATCH inside MULTI is queued, as in Redis */
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "UNWATCH", "+QUEUED\r\n");
    EXPECT_REPL(&s, sm, "EXEC", "*1\r\n+OK\r\n");
    EXPECT_LOCAL(&s, "SELECT 0", "+OK\r\n");
    EXPECT_REPL(&s, sm, "GET a", "$1\r\nx\r\n");

    /* QUIT and RESET act inside MULTI */
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "RESET", "+RESET\r\n");
    EXPECT_LOCAL(&s, "EXEC", "-ERR EXEC without MULTI\r\n");
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    CHECK_EQ(RUN_CMD(&s, "QUIT", &r), RESP_QUIT);
    CHECK_BUF(&r.reply, "+OK\r\n");

    /* the queue is bounded by max_op: too much makes EXEC abort */
    struct resp_session small;
    resp_session_init(&small, 2, 100);
    EXPECT_LOCAL(&small, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&small, "SET a 0123456789012345678901234567890123456789", "+QUEUED\r\n");
    EXPECT_LOCAL(&small, "SET b 0123456789012345678901234567890123456789",
                 "-ERR transaction too large to replicate: 139 bytes encoded, the limit is 100: split it\r\n");
    EXPECT_LOCAL(&small, "EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n");
    EXPECT_LOCAL(&small, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&small, "SET a 0123456789012345678901234567890123456789", "+QUEUED\r\n");
    EXPECT_LOCAL(&small, "SET b 0", "+QUEUED\r\n"); /* 11 + (4+60) + (4+21): exactly 100 */
    CHECK_EQ(RUN_CMD(&small, "EXEC", &r), RESP_REPLICATE);
    CHECK_EQ(r.op.len, 100);
    apply(sm, &r.op, &res);
    CHECK_BUF(&res, "*2\r\n+OK\r\n+OK\r\n");
    resp_session_free(&small);

    rabia_buf_free(&res);
    rabia_sm_kv.destroy(sm);
    run_free(&r);
    resp_session_free(&s);
}

/* A whole connection: a byte stream in, the reply stream out, replicated
 * ops applied to the state machine in order (a one-replica "cluster"). */
static void serve(struct resp_session *s, void *sm, const uint8_t *in, size_t n,
                  size_t chunk, struct rabia_buf *replies)
{
    struct resp_argv a;
    struct rabia_buf buf = {0}, op = {0};
    resp_argv_init(&a, 0);
    size_t at = 0;
    bool closed = false;
    while (at < n && !closed) {
        size_t k = n - at < chunk ? n - at : chunk;
        rabia_buf_append(&buf, in + at, k);
        at += k;
        for (;;) {
            size_t used;
            int rc = resp_parse(buf.data, buf.len, &used, &a);
            if (rc < 0) {
                resp_parse_error_reply(&a, replies);
                closed = true;
                break;
            }
            if (rc == 1) {
                rabia_buf_clear(&op);
                int act = resp_handle(s, &a, replies, &op);
                if (act == RESP_REPLICATE)
                    CHECK_EQ(rabia_sm_kv.apply(sm, op.data, op.len, replies), 0);
                else if (act == RESP_INFO)
                    resp_put_bulk(replies, "# Server\r\n", 10);
                else if (act == RESP_QUIT || act == RESP_CLOSE)
                    closed = true;
            }
            memmove(buf.data, buf.data + used, buf.len - used); /* drop consumed */
            buf.len -= used;
            if (rc == 0 || closed)
                break;
        }
    }
    resp_argv_free(&a);
    rabia_buf_free(&buf);
    rabia_buf_free(&op);
}

static void test_end_to_end(void)
{
    /* redis-cli's start, redis-benchmark's start, then a -P 16 style
     * pipeline of SET/GET/INCR, a transaction, inline PING, and QUIT with
     * a command after it that must not run. */
    struct rabia_buf in = {0}, want = {0};
#define IN(s) rabia_buf_append(&in, s, sizeof(s) - 1)
#define WANT(s) rabia_buf_append(&want, s, sizeof(s) - 1)
    IN("*2\r\n$7\r\nCOMMAND\r\n$4\r\nDOCS\r\n");
    WANT("*0\r\n");
    IN("*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n");
    WANT("*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    IN("*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$10\r\nappendonly\r\n");
    WANT("*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    IN("PING\r\n");
    WANT("+PONG\r\n");
    for (int i = 0; i < 16; i++) {
        char cmd[128], rep[64];
        int n = snprintf(cmd, sizeof cmd, "*3\r\n$3\r\nSET\r\n$%d\r\nkey:%d\r\n$3\r\nxxx\r\n",
                         i < 10 ? 5 : 6, i);
        rabia_buf_append(&in, cmd, (size_t)n);
        WANT("+OK\r\n");
        n = snprintf(cmd, sizeof cmd, "*2\r\n$3\r\nGET\r\n$%d\r\nkey:%d\r\n", i < 10 ? 5 : 6, i);
        rabia_buf_append(&in, cmd, (size_t)n);
        WANT("$3\r\nxxx\r\n");
        IN("*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n");
        n = snprintf(rep, sizeof rep, ":%d\r\n", i + 1);
        rabia_buf_append(&want, rep, (size_t)n);
    }
    IN("MULTI\r\nSET t 1\r\nINCR t\r\nEXEC\r\n");
    WANT("+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:2\r\n");
    IN("*1\r\n$4\r\nINFO\r\n");
    WANT("$10\r\n# Server\r\n\r\n");
    IN("DBSIZE\r\n");
    WANT(":18\r\n");
    IN("QUIT\r\nSET after quit\r\n");
    WANT("+OK\r\n");

    size_t chunks[] = {1, 2, 7, 64, 1 << 20};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        struct resp_session s;
        resp_session_init(&s, 9, 0);
        void *sm = rabia_sm_kv.create();
        struct rabia_buf out = {0};
        serve(&s, sm, in.data, in.len, chunks[c], &out);
        check_bytes(__FILE__, __LINE__, out.data, out.len, want.data, want.len);
        CHECK_EQ(rabia_kv_count(sm), 18);
        rabia_buf_free(&out);
        rabia_sm_kv.destroy(sm);
        resp_session_free(&s);
    }

    /* a protocol error: the commands before it are served, then the error */
    {
        struct resp_session s;
        resp_session_init(&s, 9, 0);
        void *sm = rabia_sm_kv.create();
        struct rabia_buf out = {0};
        serve(&s, sm, LIT("SET a 1\r\n*1\r\n$-5\r\nGET a\r\n"), 3, &out);
        CHECK_BUF(&out, "+OK\r\n-ERR Protocol error: invalid bulk length\r\n");
        rabia_buf_free(&out);
        rabia_sm_kv.destroy(sm);
        resp_session_free(&s);
    }
    rabia_buf_free(&in);
    rabia_buf_free(&want);
#undef IN
#undef WANT
}

/* WAIT goes through the log as a DBSIZE in the connection's database
 * (its answer dropped: RESP_POST_WAIT; the caller replies with the
 * replicas the node counted), after checking its arguments as Redis does;
 * inside MULTI it is refused like the other connection commands. */
static void test_wait(void)
{
    struct resp_session s;
    struct run r = {0};
    struct rabia_buf res = {0};
    void *sm = rabia_sm_kv.create();
    resp_session_init(&s, 1, 0);
    EXPECT_REPL(&s, sm, "SET k 1", "+OK\r\n");
    s.post = RESP_POST_NONE;
    EXPECT_REPL(&s, sm, "WAIT 2 0", ":1\r\n"); /* DBSIZE's answer, which the caller drops */
    CHECK_EQ(s.post, RESP_POST_WAIT);
    EXPECT_LOCAL(&s, "SELECT 3", "+OK\r\n");
    CHECK_EQ(RUN_CMD(&s, "WAIT 1 100", &r), RESP_REPLICATE);
    apply(sm, &r.op, &res);
    CHECK_BUF(&res, ":0\r\n"); /* database 3 is empty: the op ran there */
    EXPECT_LOCAL(&s, "WAIT x 0", "-ERR value is not an integer or out of range\r\n");
    EXPECT_LOCAL(&s, "WAIT 1 y", "-ERR value is not an integer or out of range\r\n");
    EXPECT_LOCAL(&s, "WAIT 1 -1", "-ERR timeout is negative\r\n");
    EXPECT_LOCAL(&s, "WAIT 1", "-ERR wrong number of arguments for 'wait' command\r\n");
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    CHECK_EQ(RUN_CMD(&s, "WAIT 1 0", &r), RESP_LOCAL);
    CHECK(r.reply.len > 4 && !memcmp(r.reply.data, "-ERR", 4));
    rabia_sm_kv.destroy(sm);
    rabia_buf_free(&res);
    resp_session_free(&s);
    run_free(&r);
}

/* WATCH reads the keys' versions through the log (a barrier: nothing after
 * it is handled before they are in), EXEC carries them (TXNW), and the
 * store aborts with a nil array when one moved. */
static void test_watch(void)
{
    struct resp_session s, other;
    struct run r = {0};
    struct rabia_buf res = {0};
    void *sm = rabia_sm_kv.create();
    resp_session_init(&s, 1, 0);
    resp_session_init(&other, 2, 0);
    EXPECT_REPL(&s, sm, "SET k 1", "+OK\r\n");
    CHECK_EQ(RUN_CMD(&s, "WATCH k nokey", &r), RESP_REPLICATE);
    CHECK_EQ(s.post, RESP_POST_WATCH);
    CHECK(s.barrier);
    apply(sm, &r.op, &res);
    CHECK(res.len > 4 && res.data[0] == '*' && res.data[1] == '2');
    resp_watch_result(&s, res.data, res.len);
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "WATCH k", "-ERR WATCH inside MULTI is not allowed\r\n");
    EXPECT_LOCAL(&s, "SET k 2", "+QUEUED\r\n");
    CHECK_EQ(RUN_CMD(&s, "EXEC", &r), RESP_REPLICATE);
    struct rabia_buf exec = {0};
    rabia_buf_append(&exec, r.op.data, r.op.len);
    EXPECT_REPL(&other, sm, "SET k changed", "+OK\r\n"); /* another client, in between */
    apply(sm, &exec, &res);
    CHECK_BUF(&res, "*-1\r\n");
    EXPECT_REPL(&s, sm, "GET k", "$7\r\nchanged\r\n");
    /* unchanged: it runs; EXEC and UNWATCH forget the keys */
    CHECK_EQ(RUN_CMD(&s, "WATCH k", &r), RESP_REPLICATE);
    apply(sm, &r.op, &res);
    resp_watch_result(&s, res.data, res.len);
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "INCR n", "+QUEUED\r\n");
    EXPECT_REPL(&s, sm, "EXEC", "*1\r\n:1\r\n");
    CHECK_EQ(s.nwatch, 0);
    EXPECT_LOCAL(&s, "UNWATCH", "+OK\r\n");
    rabia_buf_free(&exec);
    rabia_buf_free(&res);
    resp_session_free(&s);
    resp_session_free(&other);
    rabia_sm_kv.destroy(sm);
    run_free(&r);
}

/* Subscriptions are the connection's; in subscribed mode only the
 * subscription commands, PING, QUIT and RESET are allowed; messages are
 * pushed to matching channels and patterns. */
static void test_pubsub(void)
{
    struct resp_session s;
    struct run r = {0};
    resp_session_init(&s, 3, 0);
    EXPECT_LOCAL(&s, "UNSUBSCRIBE", "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    EXPECT_LOCAL(&s, "SUBSCRIBE a b a",
                 "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
                 "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n");
    EXPECT_LOCAL(&s, "PSUBSCRIBE n*", "*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:3\r\n");
    EXPECT_LOCAL(&s, "GET x", "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
                              "RESET are allowed in this context\r\n");
    /* as Redis 7.0.15: the subcommand's full name; arity and unknown
     * subcommands answered first (it said 'client' for all of them) */
    EXPECT_LOCAL(&s, "CLIENT ID", "-ERR Can't execute 'client|id': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                                  "QUIT / RESET are allowed in this context\r\n");
    EXPECT_LOCAL(&s, "CONFIG GET x", "-ERR Can't execute 'config|get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                                     "PING / QUIT / RESET are allowed in this context\r\n");
    EXPECT_LOCAL(&s, "CLIENT", "-ERR wrong number of arguments for 'client' command\r\n");
    EXPECT_LOCAL(&s, "CLIENT FOO", "-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n");
    EXPECT_LOCAL(&s, "CLIENT ID x", "-ERR wrong number of arguments for 'client|id' command\r\n");
    EXPECT_LOCAL(&s, "GET", "-ERR wrong number of arguments for 'get' command\r\n");
    EXPECT_LOCAL(&s, "PING", "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    struct rabia_buf out = {0};
    CHECK_EQ(resp_pubsub_deliver(&s, (const uint8_t *)"a", 1, (const uint8_t *)"hi", 2, &out), 1);
    CHECK_BUF(&out, "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n");
    rabia_buf_clear(&out);
    CHECK_EQ(resp_pubsub_deliver(&s, (const uint8_t *)"news", 4, (const uint8_t *)"x", 1, &out), 1);
    CHECK_BUF(&out, "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$1\r\nx\r\n");
    rabia_buf_clear(&out);
    CHECK_EQ(resp_pubsub_deliver(&s, (const uint8_t *)"zzz", 3, (const uint8_t *)"x", 1, &out), 0);
    CHECK_EQ(out.len, 0);
    EXPECT_LOCAL(&s, "UNSUBSCRIBE", "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n"
                                    "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n");
    EXPECT_LOCAL(&s, "PUNSUBSCRIBE n*", "*3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:0\r\n");
    EXPECT_LOCAL(&s, "PING", "+PONG\r\n");
    CHECK_EQ(RUN_CMD(&s, "PUBLISH a hi", &r), RESP_REPLICATE);
    CHECK_EQ(s.post, RESP_POST_PUBLISH);
    rabia_buf_free(&out);
    resp_session_free(&s);
    run_free(&r);
}

/* The subscription lists against a plain model: random SUBSCRIBE,
 * UNSUBSCRIBE (some names, or all) and PSUBSCRIBE / PUNSUBSCRIBE over a
 * pool of names, checking every reply's count, the order UNSUBSCRIBE
 * without arguments lists them in, and what a PUBLISH delivers; then
 * 65,536 channels in one SUBSCRIBE and out in one UNSUBSCRIBE (their
 * linear scans made such a command quadratic: 7.6 s of the loop). */
static void test_pubsub_lists(void)
{
    enum { POOL = 300, MAXSEL = 8 };
    struct resp_session s;
    struct run r = {0};
    struct rabia_buf cmd = {0}, want = {0}, out = {0};
    uint64_t rng = 0x5eed;
    for (int pattern = 0; pattern < 2; pattern++) {
        resp_session_init(&s, 11, 0);
        int model[POOL], n = 0; /* the names subscribed, in order */
        for (int step = 0; step < 4000; step++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            int what = (int)(rng >> 60) % 8; /* 0..4 subscribe, 5..6 some out, 7 all out */
            int k = 1 + (int)((rng >> 40) % MAXSEL);
            char h[64];
            rabia_buf_clear(&cmd);
            rabia_buf_clear(&want);
            const char *verb = what <= 4 ? (pattern ? "PSUBSCRIBE" : "SUBSCRIBE")
                                         : (pattern ? "PUNSUBSCRIBE" : "UNSUBSCRIBE");
            const char *kind = what <= 4 ? (pattern ? "psubscribe" : "subscribe")
                                         : (pattern ? "punsubscribe" : "unsubscribe");
            if (what == 7) k = 0;
            int len = snprintf(h, sizeof h, "*%d\r\n$%zu\r\n%s\r\n", k + 1, strlen(verb), verb);
            rabia_buf_append(&cmd, h, (size_t)len);
            for (int i = 0; i < k; i++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                int name = (int)((rng >> 33) % POOL);
                char nm[32];
                int nl = snprintf(nm, sizeof nm, "%sch:%d", pattern ? "p*" : "", name);
                len = snprintf(h, sizeof h, "$%d\r\n%s\r\n", nl, nm);
                rabia_buf_append(&cmd, h, (size_t)len);
                int at = -1;
                for (int j = 0; j < n; j++)
                    if (model[j] == name) at = j;
                if (what <= 4 && at < 0) model[n++] = name;
                if (what > 4 && at >= 0) {
                    memmove(&model[at], &model[at + 1], (size_t)(n - at - 1) * sizeof model[0]);
                    n--;
                }
                len = snprintf(h, sizeof h, "*3\r\n$%zu\r\n%s\r\n$%d\r\n%s\r\n:%d\r\n", strlen(kind), kind, nl,
                               nm, n);
                rabia_buf_append(&want, h, (size_t)len);
            }
            if (what == 7) { /* all, first subscribed first */
                if (!n) {
                    len = snprintf(h, sizeof h, "*3\r\n$%zu\r\n%s\r\n$-1\r\n:0\r\n", strlen(kind), kind);
                    rabia_buf_append(&want, h, (size_t)len);
                }
                for (int j = 0; j < n; j++) {
                    char nm[32];
                    int nl = snprintf(nm, sizeof nm, "%sch:%d", pattern ? "p*" : "", model[j]);
                    len = snprintf(h, sizeof h, "*3\r\n$%zu\r\n%s\r\n$%d\r\n%s\r\n:%d\r\n", strlen(kind), kind,
                                   nl, nm, n - j - 1);
                    rabia_buf_append(&want, h, (size_t)len);
                }
                n = 0;
            }
            CHECK_EQ(run_cmd(&s, cmd.data, cmd.len, &r), RESP_LOCAL);
            CHECK_EQ(r.reply.len, want.len);
            CHECK(r.reply.len == want.len && memcmp(r.reply.data, want.data, want.len) == 0);
            CHECK_EQ(pattern ? s.npsubs : s.nsubs, (uint32_t)n);
            /* a PUBLISH to one pool channel reaches this connection iff subscribed */
            int probe = (int)((rng >> 20) % POOL);
            char ch[32];
            int cl = snprintf(ch, sizeof ch, "%sch:%d", pattern ? "p-" : "", probe);
            bool in = false;
            for (int j = 0; j < n; j++)
                in |= model[j] == probe;
            rabia_buf_clear(&out);
            CHECK_EQ(resp_pubsub_deliver(&s, (const uint8_t *)ch, (size_t)cl, (const uint8_t *)"m", 1, &out),
                     in ? 1 : 0);
            if (check_failures) break;
        }
        resp_session_free(&s);
    }

    /* 65,536 channels in one command, out in one command */
    resp_session_init(&s, 12, 0);
    enum { MANY = 65536 };
    rabia_buf_clear(&cmd);
    char h[64];
    int len = snprintf(h, sizeof h, "*%d\r\n$9\r\nSUBSCRIBE\r\n", MANY + 1);
    rabia_buf_append(&cmd, h, (size_t)len);
    for (int i = 0; i < MANY; i++) {
        len = snprintf(h, sizeof h, "$8\r\n%08x\r\n", (unsigned)i * 2654435761u);
        rabia_buf_append(&cmd, h, (size_t)len);
    }
    CHECK_EQ(run_cmd(&s, cmd.data, cmd.len, &r), RESP_LOCAL);
    CHECK_EQ(s.nsubs, MANY);
    rabia_buf_clear(&out);
    snprintf(h, sizeof h, "%08x", 4097u * 2654435761u);
    CHECK_EQ(resp_pubsub_deliver(&s, (const uint8_t *)h, 8, (const uint8_t *)"m", 1, &out), 1);
    rabia_buf_clear(&cmd);
    len = snprintf(h, sizeof h, "*%d\r\n$11\r\nUNSUBSCRIBE\r\n", MANY + 1);
    rabia_buf_append(&cmd, h, (size_t)len);
    for (int i = 0; i < MANY; i++) {
        len = snprintf(h, sizeof h, "$8\r\n%08x\r\n", (unsigned)i * 2654435761u);
        rabia_buf_append(&cmd, h, (size_t)len);
    }
    CHECK_EQ(run_cmd(&s, cmd.data, cmd.len, &r), RESP_LOCAL);
    CHECK_EQ(s.nsubs, 0);
    CHECK_EQ(s.subs_idx.cap, 0); /* all gone: list and index freed */

    /* a pattern whose match against a channel would take pattern x name
     * steps (here about LONG^2 / 2 = 32 M) is given up on, counted, not delivered; a pattern
     * beside it still gets the message */
    enum { LONG = 8000 };
    rabia_buf_clear(&cmd);
    len = snprintf(h, sizeof h, "*3\r\n$10\r\nPSUBSCRIBE\r\n$%d\r\n*", LONG + 2);
    rabia_buf_append(&cmd, h, (size_t)len);
    for (int i = 0; i < LONG; i++) rabia_buf_append(&cmd, "a", 1);
    rabia_buf_append(&cmd, "b\r\n$2\r\na*\r\n", 11);
    CHECK_EQ(run_cmd(&s, cmd.data, cmd.len, &r), RESP_LOCAL);
    CHECK_EQ(s.npsubs, 2);
    uint8_t *chan = malloc(LONG + 1);
    memset(chan, 'a', LONG);
    chan[LONG] = 'c';
    uint64_t gave_up = resp_pubsub_giveups();
    rabia_buf_clear(&out);
    CHECK_EQ(resp_pubsub_deliver(&s, chan, LONG + 1, (const uint8_t *)"m", 1, &out), 1); /* a* only */
    CHECK_EQ(resp_pubsub_giveups(), gave_up + 1);
    chan[LONG] = 'b'; /* a match found within the bound is delivered: this one takes LONG steps */
    rabia_buf_clear(&out);
    CHECK_EQ(resp_pubsub_deliver(&s, chan, LONG + 1, (const uint8_t *)"m", 1, &out), 2);
    CHECK_EQ(resp_pubsub_giveups(), gave_up + 1);
    free(chan);
    rabia_buf_free(&cmd);
    rabia_buf_free(&want);
    rabia_buf_free(&out);
    resp_session_free(&s);
    run_free(&r);
}

/* A command in RESP array form: name, then `n` arguments of `len` bytes of
 * `fill` each, the k-th one's first byte set to 'a' + k (distinct names). */
static void array_cmd(struct rabia_buf *b, const char *name, int n, size_t len, char fill)
{
    char h[64];
    rabia_buf_clear(b);
    int k = snprintf(h, sizeof h, "*%d\r\n$%zu\r\n%s\r\n", n + 1, strlen(name), name);
    rabia_buf_append(b, h, (size_t)k);
    for (int i = 0; i < n; i++) {
        k = snprintf(h, sizeof h, "$%zu\r\n", len);
        rabia_buf_append(b, h, (size_t)k);
        size_t at = b->len;
        for (size_t j = 0; j < len; j++)
            rabia_buf_append(b, &fill, 1);
        b->data[at] = (uint8_t)('a' + i);
        rabia_buf_append(b, "\r\n", 2);
    }
}

/* What a connection keeps of its subscriptions' names and WATCHed keys is
 * bounded in bytes, not only in count (RESP_SUBS_MAX_BYTES,
 * RESP_WATCH_MAX_BYTES): each SUBSCRIBE of a 50 MB name kept 50 MB. */
static void test_session_byte_limits(void)
{
    struct resp_session s;
    struct run r = {0};
    struct rabia_buf cmd = {0};
    resp_session_init(&s, 5, 0);
    array_cmd(&cmd, "SUBSCRIBE", 3, 5u << 20, 'c'); /* 15 MiB of names: taken */
    CHECK_EQ(run_cmd(&s, cmd.data, cmd.len, &r), RESP_LOCAL);
    CHECK_EQ(s.nsubs, 3);
    array_cmd(&cmd, "PSUBSCRIBE", 1, 2u << 20, 'p'); /* 2 MiB more: over 16 MiB */
    CHECK_EQ(run_cmd(&s, cmd.data, cmd.len, &r), RESP_LOCAL);
    CHECK_BUF(&r.reply, "-ERR subscriptions too large (at most 16 MiB of channel and pattern names per connection)\r\n");
    CHECK_EQ(s.npsubs, 0);
    CHECK(resp_session_memory(&s) >= 15u << 20); /* what maxmemory-clients counts */
    resp_session_free(&s);
    resp_session_init(&s, 6, 0);
    array_cmd(&cmd, "WATCH", 4, 200u << 10, 'w'); /* 800 KiB of keys: taken */
    CHECK_EQ(run_cmd(&s, cmd.data, cmd.len, &r), RESP_REPLICATE);
    CHECK_EQ(s.nwatch, 4);
    array_cmd(&cmd, "WATCH", 2, 200u << 10, 'v'); /* 400 KiB more: over 1 MiB */
    CHECK_EQ(run_cmd(&s, cmd.data, cmd.len, &r), RESP_LOCAL);
    CHECK_BUF(&r.reply, "-ERR WATCHed keys too large (at most 1 MiB of key names per connection)\r\n");
    CHECK_EQ(s.nwatch, 4);
    CHECK_EQ(s.watch_bytes, 4u * (200u << 10));
    CHECK(resp_session_memory(&s) >= 800u << 10);
    CHECK_EQ(RUN_CMD(&s, "UNWATCH", &r), RESP_LOCAL);
    CHECK_EQ(s.watch_bytes, 0);
    rabia_buf_free(&cmd);
    resp_session_free(&s);
    run_free(&r);
}

/* CLIENT LIST with the server's view (struct resp_clients): every
 * connection's line, with the figures the server gives; CLIENT INFO only
 * the caller's; without a view, the caller's line with zeros. */
struct fake_clients {
    struct resp_session *all[3]; /* the first NULL ends them */
    const struct resp_session *killed[8];
    int n_killed;
};

static void fake_stats(void *ctx, const struct resp_session *s, struct resp_client_stats *out)
{
    (void)ctx;
    out->qbuf = s->id * 10;
    out->omem = s->id * 100;
    out->tot_mem = s->id * 1000;
    out->age_s = 7;
    snprintf(out->flags, sizeof out->flags, "%s", s->id == 2 ? "b" : "");
}

static void fake_each(void *ctx, void (*fn)(void *arg, const struct resp_session *s), void *arg)
{
    struct fake_clients *f = ctx;
    for (int i = 0; i < 3 && f->all[i]; i++) fn(arg, f->all[i]);
}

static void fake_kill(void *ctx, const struct resp_session *s)
{
    struct fake_clients *f = ctx;
    if (f->n_killed < 8) f->killed[f->n_killed++] = s;
}

static bool fake_user_exists(void *ctx, const uint8_t *name, size_t n)
{
    (void)ctx;
    return (n == 7 && !memcmp(name, "default", 7)) || (n == 3 && !memcmp(name, "app", 3));
}

static void test_client_list(void)
{
    struct resp_session a, b;
    struct run r = {0};
    resp_session_init(&a, 1, 0);
    resp_session_init(&b, 2, 0);
    CHECK_EQ(RUN_CMD(&a, "CLIENT LIST", &r), RESP_LOCAL); /* no view: its own line, zeros */
    CHECK(memmem(r.reply.data, r.reply.len, " qbuf=0 ", 8) && memmem(r.reply.data, r.reply.len, " tot-mem=0 ", 11));
    struct fake_clients f = {.all = {&a, &b}};
    struct resp_clients view = {.ctx = &f, .stats = fake_stats, .each = fake_each};
    a.clients = b.clients = &view;
    CHECK_EQ(RUN_CMD(&b, "GET k", &r), RESP_REPLICATE); /* its last command */
    CHECK_EQ(RUN_CMD(&a, "CLIENT LIST", &r), RESP_LOCAL);
    const char *l1 = "id=1 addr= laddr= fd=-1 name= age=7 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 "
                     "qbuf=10 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=100 tot-mem=1000 "
                     "events=r cmd=client|list user=default redir=-1 resp=2\n";
    const char *l2 = "id=2 addr= laddr= fd=-1 name= age=7 idle=0 flags=b db=0 sub=0 psub=0 ssub=0 multi=-1 "
                     "qbuf=20 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=200 tot-mem=2000 "
                     "events=r cmd=get user=default redir=-1 resp=2\n";
    CHECK(memmem(r.reply.data, r.reply.len, l1, strlen(l1)) != NULL);
    CHECK(memmem(r.reply.data, r.reply.len, l2, strlen(l2)) != NULL);
    CHECK_EQ(RUN_CMD(&a, "CLIENT LIST ID 2", &r), RESP_LOCAL);
    CHECK(memmem(r.reply.data, r.reply.len, "id=2 ", 5) && !memmem(r.reply.data, r.reply.len, "id=1 ", 5));
    CHECK_EQ(RUN_CMD(&a, "CLIENT LIST TYPE normal ID 1 2", &r), RESP_LOCAL);
    CHECK(memmem(r.reply.data, r.reply.len, "id=2 ", 5) && memmem(r.reply.data, r.reply.len, "id=1 ", 5));
    EXPECT_LOCAL(&a, "CLIENT LIST TYPE pubsub", "$0\r\n\r\n");
    EXPECT_LOCAL(&a, "CLIENT LIST TYPE master", "$0\r\n\r\n");
    EXPECT_LOCAL(&a, "CLIENT LIST TYPE nosuch", "-ERR Unknown client type 'nosuch'\r\n");
    EXPECT_LOCAL(&a, "CLIENT LIST ID x", "-ERR Invalid client ID\r\n");
    EXPECT_LOCAL(&a, "CLIENT LIST FOO", "-ERR syntax error\r\n");
    CHECK_EQ(RUN_CMD(&b, "CLIENT INFO", &r), RESP_LOCAL); /* the caller's only */
    CHECK(memmem(r.reply.data, r.reply.len, "id=2 ", 5) && !memmem(r.reply.data, r.reply.len, "id=1 ", 5));
    CHECK(memmem(r.reply.data, r.reply.len, " cmd=client|info ", 17) != NULL);
    resp_session_free(&a);
    resp_session_free(&b);
    run_free(&r);
}

/* CLIENT KILL's two forms, filters and errors as redis-server 7.0.15's
 * (checked against it), through a fake view that records what it closed;
 * CLIENT NO-EVICT and its flag. */
static void test_client_kill(void)
{
    struct resp_session a, b, c;
    struct run r = {0};
    resp_session_init(&a, 1, 0);
    resp_session_init(&b, 2, 0);
    resp_session_init(&c, 3, 0);
    snprintf(a.addr, sizeof a.addr, "10.0.0.1:1000");
    snprintf(b.addr, sizeof b.addr, "10.0.0.2:2000");
    snprintf(c.addr, sizeof c.addr, "10.0.0.3:3000");
    c.user = "app";
    c.nsubs = 1; /* a subscriber */
    struct fake_clients f = {.all = {&a, &b, &c}};
    struct resp_clients view = {.ctx = &f, .stats = fake_stats, .each = fake_each, .kill = fake_kill,
                                .user_exists = fake_user_exists};
    a.clients = b.clients = c.clients = &view;
    /* errors (and nothing closed) */
    EXPECT_LOCAL(&a, "CLIENT KILL 1.2.3.4:5", "-ERR No such client\r\n");
    EXPECT_LOCAL(&a, "CLIENT KILL ID", "-ERR No such client\r\n"); /* the old form: an address "ID" */
    EXPECT_LOCAL(&a, "CLIENT KILL ID x", "-ERR client-id should be greater than 0\r\n");
    EXPECT_LOCAL(&a, "CLIENT KILL ID 0", "-ERR client-id should be greater than 0\r\n");
    EXPECT_LOCAL(&a, "CLIENT KILL TYPE nosuch", "-ERR Unknown client type 'nosuch'\r\n");
    EXPECT_LOCAL(&a, "CLIENT KILL USER nosuch", "-ERR No such user 'nosuch'\r\n");
    EXPECT_LOCAL(&a, "CLIENT KILL SKIPME maybe", "-ERR syntax error\r\n");
    EXPECT_LOCAL(&a, "CLIENT KILL FOO bar", "-ERR syntax error\r\n");
    EXPECT_LOCAL(&a, "CLIENT KILL ID 2 TYPE", "-ERR syntax error\r\n");
    EXPECT_LOCAL(&a, "CLIENT KILL MAXAGE 5", "-ERR syntax error\r\n"); /* Redis 7.4's, not 7.0's */
    CHECK_EQ(f.n_killed, 0);
    /* filters that match nobody */
    EXPECT_LOCAL(&a, "CLIENT KILL ID 999", ":0\r\n");
    EXPECT_LOCAL(&a, "CLIENT KILL TYPE master", ":0\r\n");
    EXPECT_LOCAL(&a, "CLIENT KILL LADDR 1.2.3.4:5", ":0\r\n");
    EXPECT_LOCAL(&a, "CLIENT KILL USER default ADDR 10.0.0.3:3000", ":0\r\n"); /* c is "app" */
    EXPECT_LOCAL(&a, "CLIENT KILL ID 1", ":0\r\n");                           /* itself: SKIPME yes */
    CHECK_EQ(f.n_killed, 0);
    /* matches */
    EXPECT_LOCAL(&a, "CLIENT KILL TYPE pubsub", ":1\r\n");
    CHECK(f.n_killed == 1 && f.killed[0] == &c);
    EXPECT_LOCAL(&a, "CLIENT KILL 10.0.0.2:2000", "+OK\r\n"); /* the old form */
    CHECK(f.n_killed == 2 && f.killed[1] == &b);
    EXPECT_LOCAL(&a, "CLIENT KILL USER app TYPE normal", ":0\r\n");
    EXPECT_LOCAL(&a, "CLIENT KILL type NORMAL", ":1\r\n"); /* b (the fake does not remove it) */
    /* itself: closed after its reply, never through the view */
    f.n_killed = 0;
    CHECK_EQ(RUN_CMD(&a, "CLIENT KILL ID 1 SKIPME no", &r), RESP_QUIT);
    CHECK(r.reply.len == 4 && memcmp(r.reply.data, ":1\r\n", 4) == 0);
    CHECK_EQ(RUN_CMD(&a, "CLIENT KILL 10.0.0.1:1000", &r), RESP_QUIT);
    CHECK(r.reply.len == 5 && memcmp(r.reply.data, "+OK\r\n", 5) == 0);
    CHECK_EQ(f.n_killed, 0);
    /* NO-EVICT */
    EXPECT_LOCAL(&b, "CLIENT NO-EVICT maybe", "-ERR syntax error\r\n");
    EXPECT_LOCAL(&b, "CLIENT NO-EVICT on", "+OK\r\n");
    CHECK(b.no_evict);
    CHECK_EQ(RUN_CMD(&b, "CLIENT INFO", &r), RESP_LOCAL);
    CHECK(memmem(r.reply.data, r.reply.len, " flags=be ", 10) != NULL); /* the fake says b; e: no-evict */
    EXPECT_LOCAL(&b, "CLIENT NO-EVICT OFF", "+OK\r\n");
    CHECK(!b.no_evict);
    EXPECT_LOCAL(&b, "CLIENT NO-EVICT on", "+OK\r\n");
    EXPECT_LOCAL(&b, "RESET", "+RESET\r\n"); /* RESET turns it off, as Redis's */
    CHECK(!b.no_evict);
    resp_session_free(&a);
    resp_session_free(&b);
    resp_session_free(&c);
    run_free(&r);
}

/* A blocking pop is replicated with RESP_POST_BLOCK and its timeout; the
 * caller finds which keys it waits on; SELECT wraps ops in @DB. */
static void test_blocking_and_db(void)
{
    struct resp_session s;
    struct run r = {0};
    resp_session_init(&s, 4, 0);
    CHECK_EQ(RUN_CMD(&s, "BLPOP a b 1.5", &r), RESP_REPLICATE);
    CHECK_EQ(s.post, RESP_POST_BLOCK);
    CHECK_EQ(s.block_timeout_ms, 1500);
    CHECK(resp_block_waits_on(r.op.data, r.op.len, 0, (const uint8_t *)"b", 1));
    CHECK(!resp_block_waits_on(r.op.data, r.op.len, 0, (const uint8_t *)"1.5", 3));
    CHECK(!resp_block_waits_on(r.op.data, r.op.len, 1, (const uint8_t *)"a", 1));
    EXPECT_LOCAL(&s, "SELECT 7", "+OK\r\n");
    CHECK_EQ(RUN_CMD(&s, "BLMOVE src dst LEFT RIGHT 0", &r), RESP_REPLICATE);
    CHECK_EQ(s.block_timeout_ms, 0);
    CHECK(resp_block_waits_on(r.op.data, r.op.len, 7, (const uint8_t *)"src", 3));
    CHECK(!resp_block_waits_on(r.op.data, r.op.len, 7, (const uint8_t *)"dst", 3));
    CHECK(!resp_block_waits_on(r.op.data, r.op.len, 0, (const uint8_t *)"src", 3));
    /* the op is "@DB 7 <op>" */
    CHECK(r.op.len > 12 && memcmp(r.op.data + 8, "@DB", 3) == 0);
    CHECK_EQ(RUN_CMD(&s, "GET x", &r), RESP_REPLICATE);
    CHECK_EQ(s.post, RESP_POST_NONE);
    resp_session_free(&s);
    run_free(&r);
}

/* ---------------------------------------------------------------------- */
/* RESP3                                                                   */

/* HELLO's reply as Redis 7.0.15 sends it (but the version: the API level
 * this front end reports), for id 42. */
#define HELLO_FIELDS(proto)                                                                  \
    "$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n:" proto \
    "\r\n$2\r\nid\r\n:42\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n" \
    "$7\r\nmodules\r\n*0\r\n"
#define HELLO3 "%7\r\n" HELLO_FIELDS("3")
#define HELLO2 "*14\r\n" HELLO_FIELDS("2")

/* HELLO 3 switches to RESP3 and answers a map, HELLO 2 back; a refused
 * HELLO changes nothing; RESET returns to RESP2. */
static void test_resp3_hello(void)
{
    struct resp_session s;
    struct run r = {0};
    resp_session_init(&s, 42, 0);
    CHECK_EQ(s.proto, 2);
    EXPECT_LOCAL(&s, "HELLO", HELLO2);
    EXPECT_LOCAL(&s, "HELLO 3", HELLO3);
    CHECK_EQ(s.proto, 3);
    EXPECT_LOCAL(&s, "HELLO", HELLO3); /* no version: the current one */
    EXPECT_LOCAL(&s, "hello 2 foo", "-ERR Syntax error in HELLO option 'foo'\r\n");
    EXPECT_LOCAL(&s, "HELLO 4", "-NOPROTO unsupported protocol version\r\n");
    EXPECT_LOCAL(&s, "HELLO two", "-ERR Protocol version is not an integer or out of range\r\n");
    EXPECT_LOCAL(&s, "HELLO 2 AUTH bob pw", "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    EXPECT_LOCAL(&s, "HELLO 2 SETNAME \"a b\"",
                 "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    CHECK_EQ(s.proto, 3);
    EXPECT_LOCAL(&s, "HELLO 2", HELLO2);
    CHECK_EQ(s.proto, 2);
    EXPECT_LOCAL(&s, "CLIENT GETNAME", "$-1\r\n");
    EXPECT_LOCAL(&s, "HELLO 3 AUTH default pw SETNAME app", HELLO3);
    EXPECT_LOCAL(&s, "CLIENT GETNAME", "$3\r\napp\r\n");
    CHECK_EQ(RUN_CMD(&s, "CLIENT INFO", &r), RESP_LOCAL);
    CHECK(memmem(r.reply.data, r.reply.len, " resp=3\n\r\n", 10) != NULL);
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "HELLO 2",
                 "-ERR 'hello' cannot be queued inside MULTI on this server: it answers the connection's own commands "
                 "at once, not at EXEC. Send it before MULTI or after EXEC (redis-py: "
                 "pipeline(transaction=False))\r\n");
    EXPECT_LOCAL(&s, "DISCARD", "+OK\r\n");
    CHECK_EQ(s.proto, 3);
    EXPECT_LOCAL(&s, "RESET", "+RESET\r\n");
    CHECK_EQ(s.proto, 2);
    EXPECT_LOCAL(&s, "CLIENT GETNAME", "$-1\r\n");
    EXPECT_LOCAL(&s, "HELLO", HELLO2);
    /* a replicated command's kind is recorded only on a RESP3 connection */
    CHECK_EQ(RUN_CMD(&s, "HGETALL h", &r), RESP_REPLICATE);
    CHECK_EQ(s.r3, R3_NONE);
    EXPECT_LOCAL(&s, "HELLO 3", HELLO3);
    CHECK_EQ(RUN_CMD(&s, "HGETALL h", &r), RESP_REPLICATE);
    CHECK_EQ(s.r3, R3_MAP);
    CHECK_EQ(RUN_CMD(&s, "LCS a b IDX WITHMATCHLEN", &r), RESP_REPLICATE); /* {"matches": ..., "len": n} */
    CHECK_EQ(s.r3, R3_MAP);
    CHECK_EQ(RUN_CMD(&s, "LCS a b LEN", &r), RESP_REPLICATE);
    CHECK_EQ(s.r3, R3_PLAIN);
    CHECK_EQ(RUN_CMD(&s, "GEOPOS g a b", &r), RESP_REPLICATE);
    CHECK_EQ(s.r3, R3_GEOPOS);
    CHECK_EQ(RUN_CMD(&s, "GEORADIUS g 15 37 1 km WITHDIST withcoord", &r), RESP_REPLICATE);
    CHECK_EQ(s.r3, R3_GEOCOORD);
    CHECK_EQ(RUN_CMD(&s, "GEORADIUS g 15 37 1 km STORE withcoord", &r), RESP_REPLICATE); /* a key so named */
    CHECK_EQ(s.r3, R3_PLAIN);
    CHECK_EQ(RUN_CMD(&s, "GEORADIUSBYMEMBER_RO g m 1 km WITHCOORD", &r), RESP_REPLICATE);
    CHECK_EQ(s.r3, R3_GEOCOORD);
    CHECK_EQ(RUN_CMD(&s, "GEOSEARCH g FROMMEMBER withcoord BYBOX 1 1 km WITHDIST", &r), RESP_REPLICATE);
    CHECK_EQ(s.r3, R3_PLAIN); /* a member so named */
    CHECK_EQ(RUN_CMD(&s, "GEOSEARCH g FROMMEMBER m BYBOX 1 1 km COUNT 2 WITHCOORD", &r), RESP_REPLICATE);
    CHECK_EQ(s.r3, R3_GEOCOORD);
    EXPECT_LOCAL(&s, "PING", "+PONG\r\n");
    CHECK_EQ(s.r3, R3_NONE); /* reset by every command */
    run_free(&r);
    resp_session_free(&s);
}

/* The connection's own replies in RESP3, as Redis 7.0.15 sends them. */
static void test_resp3_local(void)
{
    struct resp_session s;
    struct run r = {0};
    resp_session_init(&s, 5, 0);
    CHECK_EQ(RUN_CMD(&s, "HELLO 3", &r), RESP_LOCAL);
    EXPECT_LOCAL(&s, "CONFIG GET save", "%1\r\n$4\r\nsave\r\n$0\r\n\r\n");
    EXPECT_LOCAL(&s, "config get SAV* appendonly save",
                 "%2\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    EXPECT_LOCAL(&s, "CONFIG GET nothing", "%0\r\n");
    CHECK_EQ(RUN_CMD(&s, "CONFIG GET *", &r), RESP_LOCAL);
    CHECK(r.reply.len > 3 && r.reply.data[0] == '%');
    EXPECT_LOCAL(&s, "COMMAND DOCS", "%0\r\n");
    EXPECT_LOCAL(&s, "COMMAND DOCS get", "%0\r\n");
    /* flags, ACL categories, tips and key specs are sets; no subcommands
     * an empty set; an unknown command a null */
    EXPECT_LOCAL(&s, "COMMAND INFO get nosuch",
                 "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
                 "~0\r\n~0\r\n~0\r\n~0\r\n_\r\n");
    CHECK_EQ(RUN_CMD(&s, "COMMAND INFO config", &r), RESP_LOCAL);
    CHECK(r.reply.len > 60 && memcmp(r.reply.data, LIT("*1\r\n*10\r\n$6\r\nconfig\r\n:-2\r\n~0\r\n:0\r\n:0\r\n:0\r\n"
                                                       "~0\r\n~0\r\n~0\r\n*4\r\n*10\r\n$10\r\nconfig|get\r\n")) == 0);
    CHECK_EQ(RUN_CMD(&s, "COMMAND", &r), RESP_LOCAL); /* resp3_ok checked by run_cmd */
    EXPECT_LOCAL(&s, "CLIENT GETNAME", "_\r\n");
    CHECK_EQ(RUN_CMD(&s, "CLIENT INFO", &r), RESP_LOCAL); /* verbatim text */
    {
        const char *head = "txt:id=5 addr=";
        CHECK(r.reply.len > 20 && r.reply.data[0] == '=' &&
              memmem(r.reply.data, r.reply.len, head, strlen(head)) != NULL);
        CHECK(memmem(r.reply.data, r.reply.len, " resp=3\n\r\n", 10) != NULL);
    }
    CHECK_EQ(RUN_CMD(&s, "CLIENT LIST", &r), RESP_LOCAL);
    CHECK(r.reply.len && r.reply.data[0] == '=');
    EXPECT_LOCAL(&s, "ECHO hi", "$2\r\nhi\r\n");
    CHECK_EQ(RUN_CMD(&s, "INFO", &r), RESP_INFO);

    /* Pub/Sub: pushes; a RESP3 connection may run anything while subscribed */
    EXPECT_LOCAL(&s, "UNSUBSCRIBE", ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n");
    EXPECT_LOCAL(&s, "SUBSCRIBE a b",
                 ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n>3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n");
    EXPECT_LOCAL(&s, "PSUBSCRIBE n*", ">3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:3\r\n");
    EXPECT_LOCAL(&s, "PING", "+PONG\r\n");
    EXPECT_LOCAL(&s, "PING x", "$1\r\nx\r\n");
    CHECK_EQ(RUN_CMD(&s, "GET nope", &r), RESP_REPLICATE);
    CHECK_EQ(s.r3, R3_PLAIN);
    EXPECT_LOCAL(&s, "CONFIG GET save", "%1\r\n$4\r\nsave\r\n$0\r\n\r\n");
    struct rabia_buf out = {0};
    CHECK_EQ(resp_pubsub_deliver(&s, (const uint8_t *)"a", 1, (const uint8_t *)"hi", 2, &out), 1);
    CHECK_BUF(&out, ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n");
    rabia_buf_clear(&out);
    CHECK_EQ(resp_pubsub_deliver(&s, (const uint8_t *)"news", 4, (const uint8_t *)"x", 1, &out), 1);
    CHECK_BUF(&out, ">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$1\r\nx\r\n");
    EXPECT_LOCAL(&s, "PUNSUBSCRIBE", ">3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:2\r\n");
    EXPECT_LOCAL(&s, "PUNSUBSCRIBE", ">3\r\n$12\r\npunsubscribe\r\n_\r\n:2\r\n");
    EXPECT_LOCAL(&s, "UNSUBSCRIBE b", ">3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n");
    /* back to RESP2 while subscribed: RESP2's subscribed mode */
    CHECK_EQ(RUN_CMD(&s, "HELLO 2", &r), RESP_LOCAL);
    EXPECT_LOCAL(&s, "PING", "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    EXPECT_LOCAL(&s, "GET x", "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
                              "RESET are allowed in this context\r\n");
    rabia_buf_clear(&out);
    CHECK_EQ(resp_pubsub_deliver(&s, (const uint8_t *)"a", 1, (const uint8_t *)"hi", 2, &out), 1);
    CHECK_BUF(&out, "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n");
    EXPECT_LOCAL(&s, "RESET", "+RESET\r\n");
    CHECK_EQ(s.nsubs + s.npsubs, 0);
    rabia_buf_free(&out);
    run_free(&r);
    resp_session_free(&s);
}

struct r3_case {
    uint8_t kind;
    const char *in, *want; /* want NULL: copied unchanged */
};

/* resp3_convert on every kind: RESP2 results as the store (and Redis 7.0)
 * writes them, and Redis 7.0.15's RESP3 bytes for the same replies. */
static const struct r3_case r3_cases[] = {
    /* R3_NONE: a RESP2 connection */
    {R3_NONE, "$-1\r\n", NULL},
    {R3_NONE, "*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n", NULL},
    /* nulls at any depth, the rest as it is */
    {R3_PLAIN, "$-1\r\n", "_\r\n"},
    {R3_PLAIN, "*-1\r\n", "_\r\n"},
    {R3_PLAIN, "+OK\r\n", NULL},
    {R3_PLAIN, ":-5\r\n", NULL},
    {R3_PLAIN, "-ERR value is not an integer or out of range\r\n", NULL},
    {R3_PLAIN, "$0\r\n\r\n", NULL},
    {R3_PLAIN, "$3\r\na\r\n\r\n", NULL}, /* a binary bulk */
    {R3_PLAIN, "*0\r\n", NULL},
    {R3_PLAIN, "*2\r\n$-1\r\n$-1\r\n", "*2\r\n_\r\n_\r\n"},                     /* MGET a missing */
    {R3_PLAIN, "*3\r\n$1\r\n1\r\n$-1\r\n:2\r\n", "*3\r\n$1\r\n1\r\n_\r\n:2\r\n"},
    {R3_PLAIN, "*2\r\n$1\r\n0\r\n*2\r\n*-1\r\n*1\r\n$-1\r\n", "*2\r\n$1\r\n0\r\n*2\r\n_\r\n*1\r\n_\r\n"},
    /* HGETALL */
    {R3_MAP, "*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n",
     "%2\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n"},
    {R3_MAP, "*0\r\n", "%0\r\n"},
    {R3_MAP, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", NULL},
    {R3_MAP, "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", NULL}, /* odd: not a map */
    /* SMEMBERS SINTER SUNION SDIFF, SPOP with a count */
    {R3_SET, "*3\r\n$1\r\nc\r\n$1\r\nb\r\n$1\r\na\r\n", "~3\r\n$1\r\nc\r\n$1\r\nb\r\n$1\r\na\r\n"},
    {R3_SET, "*0\r\n", "~0\r\n"},
    {R3_SET, "$-1\r\n", "_\r\n"},
    /* ZSCORE ZINCRBY ZADD INCR */
    {R3_DOUBLE, "$1\r\n2\r\n", ",2\r\n"},
    {R3_DOUBLE, "$18\r\n2.6000000000000001\r\n", ",2.6000000000000001\r\n"},
    {R3_DOUBLE, "$19\r\n0.10000000000000001\r\n", ",0.10000000000000001\r\n"},
    {R3_DOUBLE, "$3\r\ninf\r\n", ",inf\r\n"},
    {R3_DOUBLE, "$4\r\n-inf\r\n", ",-inf\r\n"},
    {R3_DOUBLE, "$-1\r\n", "_\r\n"},
    {R3_DOUBLE, "-ERR value is not a valid float\r\n", NULL},
    {R3_DOUBLE, ":1\r\n", NULL},
    {R3_DOUBLE, "$0\r\n\r\n", NULL},         /* not a double */
    {R3_DOUBLE, "$3\r\n1\r2\r\n", NULL},     /* not one line */
    {R3_DOUBLE, "$3\r\n1\n2\r\n", NULL},
    {R3_DOUBLE, "$1\r\nx\r\n", NULL},         /* not a number */
    {R3_DOUBLE, "$3\r\nnan\r\n", NULL},
    {R3_DOUBLE, "$2\r\n1.\r\n", NULL},
    {R3_DOUBLE, "$2\r\n1e\r\n", NULL},
    {R3_DOUBLE, "$5\r\n-1e-5\r\n", ",-1e-5\r\n"},
    {R3_DOUBLE, "$22\r\n1.0000000000000001e+20\r\n", ",1.0000000000000001e+20\r\n"},
    /* ZMSCORE */
    {R3_DOUBLE_ARRAY, "*3\r\n$1\r\n2\r\n$-1\r\n$18\r\n2.6000000000000001\r\n",
     "*3\r\n,2\r\n_\r\n,2.6000000000000001\r\n"},
    {R3_DOUBLE_ARRAY, "*0\r\n", NULL},
    /* ZRANGE ... WITHSCORES and friends */
    {R3_SCORED, "*4\r\n$1\r\na\r\n$1\r\n2\r\n$1\r\nb\r\n$18\r\n2.6000000000000001\r\n",
     "*2\r\n*2\r\n$1\r\na\r\n,2\r\n*2\r\n$1\r\nb\r\n,2.6000000000000001\r\n"},
    {R3_SCORED, "*4\r\n$1\r\ny\r\n$4\r\n-inf\r\n$1\r\nx\r\n$3\r\ninf\r\n",
     "*2\r\n*2\r\n$1\r\ny\r\n,-inf\r\n*2\r\n$1\r\nx\r\n,inf\r\n"},
    {R3_SCORED, "*0\r\n", NULL},
    {R3_SCORED, "*1\r\n$1\r\na\r\n", NULL}, /* odd */
    /* HRANDFIELD WITHVALUES */
    {R3_PAIRS, "*4\r\n$2\r\nfl\r\n$3\r\n1.5\r\n$2\r\nf1\r\n$2\r\nv1\r\n",
     "*2\r\n*2\r\n$2\r\nfl\r\n$3\r\n1.5\r\n*2\r\n$2\r\nf1\r\n$2\r\nv1\r\n"},
    {R3_PAIRS, "*0\r\n", NULL},
    /* ZPOPMIN without a count, BZPOPMIN */
    {R3_TAIL_DOUBLE, "*2\r\n$1\r\na\r\n$1\r\n2\r\n", "*2\r\n$1\r\na\r\n,2\r\n"},
    {R3_TAIL_DOUBLE, "*3\r\n$1\r\nq\r\n$1\r\na\r\n$1\r\n1\r\n", "*3\r\n$1\r\nq\r\n$1\r\na\r\n,1\r\n"},
    {R3_TAIL_DOUBLE, "*0\r\n", NULL},
    {R3_TAIL_DOUBLE, "*-1\r\n", "_\r\n"},
    /* ZMPOP BZMPOP */
    {R3_MPOP, "*2\r\n$1\r\nq\r\n*1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n", "*2\r\n$1\r\nq\r\n*1\r\n*2\r\n$1\r\nb\r\n,2\r\n"},
    {R3_MPOP, "*-1\r\n", "_\r\n"},
    /* GEOPOS, and WITHCOORD's results (redis-server 7.0.15, HELLO 3): the
     * coordinates become doubles, distances stay bulks */
    {R3_GEOPOS, "*3\r\n*2\r\n$20\r\n13.36138933897018433\r\n$20\r\n38.11555639549629859\r\n*-1\r\n*2\r\n$19\r\n0.99999994039535522\r\n$18\r\n2.0000001856465488\r\n",
     "*3\r\n*2\r\n,13.36138933897018433\r\n,38.11555639549629859\r\n_\r\n*2\r\n,0.99999994039535522\r\n,2.0000001856465488\r\n"},
    {R3_GEOPOS, "*0\r\n", NULL},
    {R3_GEOCOORD, "*2\r\n*4\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n:3479099956230698\r\n*2\r\n$20\r\n13.36138933897018433\r\n$20\r\n38.11555639549629859\r\n*2\r\n$7\r\nCatania\r\n*2\r\n$20\r\n15.08726745843887329\r\n$20\r\n37.50266842333162032\r\n",
     "*2\r\n*4\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n:3479099956230698\r\n*2\r\n,13.36138933897018433\r\n,38.11555639549629859\r\n*2\r\n$7\r\nCatania\r\n*2\r\n,15.08726745843887329\r\n,37.50266842333162032\r\n"},
    {R3_GEOCOORD, "*0\r\n", NULL},
    {R3_GEOCOORD, "-ERR could not decode requested zset member\r\n", NULL},
    /* EXEC without the kinds: only the nulls */
    {R3_EXEC, "*3\r\n*6\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n$2\r\nfl\r\n$3\r\n1.5\r\n$-1\r\n$-1\r\n",
     "*3\r\n*6\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n$2\r\nfl\r\n$3\r\n1.5\r\n_\r\n_\r\n"},
    {R3_EXEC, "*-1\r\n", "_\r\n"}, /* a WATCHed key changed */
    {R3_EXEC, "-EXECABORT Transaction discarded because of previous errors.\r\n", NULL},
    /* what cannot be parsed is copied unchanged, whatever the kind */
    {R3_PLAIN, "", NULL},
    {R3_PLAIN, "$", NULL},
    {R3_PLAIN, "$-1\r", NULL},
    {R3_PLAIN, "$-1\r\nX", NULL},          /* bytes after the value */
    {R3_PLAIN, "$-1\r\n$-1\r\n", NULL},    /* two values */
    {R3_PLAIN, "$3\r\nab\r\n", NULL},
    {R3_PLAIN, "$2\r\nab\n\n", NULL},
    {R3_PLAIN, "$-2\r\n", NULL},
    {R3_PLAIN, "*-2\r\n", NULL},
    {R3_PLAIN, "$01\r\na\r\n", NULL},
    {R3_PLAIN, "$ 1\r\na\r\n", NULL},
    {R3_PLAIN, "*2\r\n$1\r\na\r\n", NULL}, /* truncated */
    {R3_PLAIN, "*99999999999999999999\r\n", NULL},
    {R3_PLAIN, "*9223372036854775807\r\n$-1\r\n", NULL},
    {R3_PLAIN, "*1\r\n%0\r\n", NULL},      /* not RESP2 */
    {R3_PLAIN, "_\r\n", NULL},
    {R3_PLAIN, ":1x\r\n", NULL},
    {R3_PLAIN, "+a\nb\r\n", NULL},
    {R3_PLAIN, ":5\n", NULL},
    {R3_PLAIN, "\r\n", NULL},
    {R3_MAP, "*2\r\n$1\r\na\r\n", NULL},
    {R3_SCORED, "*2\r\n$1\r\na\r\n$0\r\n\r\n", NULL}, /* a score that is not a double */
    {0x7f, "*1\r\n$-1\r\n", "*1\r\n_\r\n"},          /* an unknown kind: only the nulls */
};

static void r3_check_case(const struct r3_case *c)
{
    size_t n = strlen(c->in);
    const char *want = c->want ? c->want : c->in;
    /* an exact-size copy: ASan sees any read past the end */
    uint8_t *in = malloc(n ? n : 1);
    memcpy(in, c->in, n);
    struct rabia_buf out = {0};
    rabia_buf_append(&out, "prefix", 6); /* appended to, never cleared */
    CHECK_EQ(resp3_convert(c->kind, in, n, &out), 0);
    if (out.len < 6 || memcmp(out.data, "prefix", 6) != 0) {
        CHECK(!"resp3_convert cleared its output");
    } else {
        check_bytes(__FILE__, __LINE__, out.data + 6, out.len - 6, (const uint8_t *)want, strlen(want));
        if (c->want)
            CHECK(resp3_ok(out.data + 6, out.len - 6));
    }
    rabia_buf_free(&out);
    free(in);
}

static void test_resp3_convert(void)
{
    for (size_t i = 0; i < sizeof r3_cases / sizeof r3_cases[0]; i++) {
        int before = check_failures;
        r3_check_case(&r3_cases[i]);
        if (check_failures != before)
            fprintf(stderr, "  (case %zu, kind %u)\n", i, r3_cases[i].kind);
    }
    struct rabia_buf out = {0};
    /* EXEC with its queued commands' kinds: HGETALL GET ZSCORE, as Redis
     * 7.0.15 answers MULTI HGETALL h, GET nope, ZSCORE z a, EXEC */
    const char *exec = "*3\r\n*6\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n$2\r\nfl\r\n$3\r\n1.5\r\n"
                       "$-1\r\n$-1\r\n";
    const uint8_t kinds[] = {R3_MAP, R3_PLAIN, R3_DOUBLE};
    CHECK_EQ(resp3_convert_exec(kinds, 3, (const uint8_t *)exec, strlen(exec), &out), 0);
    CHECK_BUF(&out, "*3\r\n%3\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n$2\r\nfl\r\n$3\r\n1.5\r\n_\r\n_\r\n");
    rabia_buf_clear(&out);
    const char *exec2 = "*4\r\n$1\r\n3\r\n*2\r\n$1\r\na\r\n$1\r\n2\r\n-ERR x\r\n*2\r\n$1\r\nb\r\n$1\r\nc\r\n";
    const uint8_t kinds2[] = {R3_DOUBLE, R3_SCORED, R3_MAP, R3_SET};
    CHECK_EQ(resp3_convert_exec(kinds2, 4, (const uint8_t *)exec2, strlen(exec2), &out), 0);
    CHECK_BUF(&out, "*4\r\n,3\r\n*1\r\n*2\r\n$1\r\na\r\n,2\r\n-ERR x\r\n~2\r\n$1\r\nb\r\n$1\r\nc\r\n");
    rabia_buf_clear(&out);
    /* kinds that do not match the elements: only the nulls */
    CHECK_EQ(resp3_convert_exec(kinds, 2, (const uint8_t *)exec, strlen(exec), &out), 0);
    CHECK_BUF(&out, "*3\r\n*6\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n$2\r\nfl\r\n$3\r\n1.5\r\n_\r\n_\r\n");
    rabia_buf_clear(&out);
    /* the kinds of a nested EXEC-like array are not followed */
    const uint8_t kinds3[] = {R3_EXEC};
    CHECK_EQ(resp3_convert_exec(kinds3, 1, LIT("*1\r\n*1\r\n$1\r\n1\r\n"), &out), 0);
    CHECK_BUF(&out, "*1\r\n*1\r\n$1\r\n1\r\n");
    rabia_buf_clear(&out);
    CHECK_EQ(resp3_convert_exec(NULL, 0, LIT("*0\r\n"), &out), 0);
    CHECK_BUF(&out, "*0\r\n");

    /* nesting: 32 arrays deep are converted, deeper ones copied unchanged */
    for (int depth = 30; depth <= 40; depth++) {
        struct rabia_buf in = {0}, want = {0};
        for (int i = 0; i < depth; i++) {
            rabia_buf_append(&in, "*1\r\n", 4);
            rabia_buf_append(&want, "*1\r\n", 4);
        }
        rabia_buf_append(&in, "$-1\r\n", 5);
        rabia_buf_append(&want, "_\r\n", 3);
        rabia_buf_clear(&out);
        CHECK_EQ(resp3_convert(R3_PLAIN, in.data, in.len, &out), 0);
        if (depth <= 32)
            check_bytes(__FILE__, __LINE__, out.data, out.len, want.data, want.len);
        else
            check_bytes(__FILE__, __LINE__, out.data, out.len, in.data, in.len);
        rabia_buf_free(&in);
        rabia_buf_free(&want);
    }
    rabia_buf_free(&out);
}

/* Random bytes and damaged replies never crash the conversion (ASan: an
 * exact-size input buffer), and what it changes is well-formed RESP3; a
 * strict prefix of a reply is never one value, so it is copied unchanged. */
static void test_resp3_convert_random(void)
{
    static const char *pieces[] = {"*", "$", ":", "+", "-", "%", "_", "\r\n", "\r", "\n", "-1", "0", "1",
                                   "2", "3", "12", "a", "inf", "*2\r\n", "$1\r\nx\r\n", "$-1\r\n",
                                   "*-1\r\n", ":7\r\n", "+OK\r\n", "\0", "\xff"};
    size_t np = sizeof pieces / sizeof pieces[0];
    size_t ncases = sizeof r3_cases / sizeof r3_cases[0];
    struct rabia_buf out = {0};
    for (int iter = 0; iter < 60000; iter++) {
        struct rabia_buf in = {0};
        if (iter % 3 == 0) { /* pieces */
            int k = (int)(rnd() % 16);
            for (int i = 0; i < k; i++) {
                const char *p = pieces[rnd() % np];
                rabia_buf_append(&in, p, p[0] ? strlen(p) : 1);
            }
        } else if (iter % 3 == 1) { /* raw bytes */
            size_t k = rnd() % 48;
            for (size_t i = 0; i < k; i++) {
                uint8_t b = (uint8_t)rnd();
                rabia_buf_append(&in, &b, 1);
            }
        } else { /* a valid reply, damaged */
            const char *p = r3_cases[rnd() % ncases].in;
            rabia_buf_append(&in, p, strlen(p));
            int k = 1 + (int)(rnd() % 3);
            for (int i = 0; i < k && in.len; i++) {
                size_t at = rnd() % in.len;
                switch (rnd() % 3) {
                case 0: in.data[at] = (uint8_t)rnd(); break;
                case 1: in.len = at; break;
                default: memmove(in.data + at, in.data + at + 1, in.len - at - 1); in.len--; break;
                }
            }
        }
        uint8_t *exact = malloc(in.len ? in.len : 1);
        if (in.len)
            memcpy(exact, in.data, in.len);
        uint8_t kind = (uint8_t)(rnd() % 15); /* every kind, and two unknown ones */
        rabia_buf_clear(&out);
        int rc;
        if (kind == R3_EXEC) {
            uint8_t kinds[4];
            size_t nk = rnd() % 5;
            for (size_t i = 0; i < nk; i++)
                kinds[i] = (uint8_t)(rnd() % 15);
            rc = resp3_convert_exec(kinds, nk, exact, in.len, &out);
        } else {
            rc = resp3_convert(kind, exact, in.len, &out);
        }
        CHECK_EQ(rc, 0);
        bool same_bytes = out.len == in.len && (in.len == 0 || memcmp(out.data, in.data, in.len) == 0);
        if (!same_bytes && !resp3_ok(out.data, out.len)) {
            fprintf(stderr, "random conversion %d (kind %u) of: ", iter, kind);
            print_escaped(in.data, in.len);
            fprintf(stderr, "\n  gave: ");
            print_escaped(out.data, out.len);
            fprintf(stderr, "\n");
            check_failures++;
        }
        free(exact);
        rabia_buf_free(&in);
    }
    /* every strict prefix of every convertible case is copied unchanged */
    for (size_t i = 0; i < ncases; i++) {
        if (!r3_cases[i].want)
            continue;
        size_t n = strlen(r3_cases[i].in);
        for (size_t k = 0; k < n; k++) {
            uint8_t *exact = malloc(k ? k : 1);
            memcpy(exact, r3_cases[i].in, k);
            rabia_buf_clear(&out);
            CHECK_EQ(resp3_convert(r3_cases[i].kind, exact, k, &out), 0);
            check_bytes(__FILE__, __LINE__, out.data, out.len, exact, k);
            free(exact);
        }
    }
    rabia_buf_free(&out);
}

/* The reply a RESP3 connection gets for a replicated command: the state
 * machine's RESP2 result converted by the kind resp_handle recorded. */
static void r3_reply(const struct resp_session *s, const struct rabia_buf *res, struct rabia_buf *out)
{
    rabia_buf_clear(out);
    if (s->r3 == R3_EXEC)
        CHECK_EQ(resp3_convert_exec(s->exec_kinds.data, s->exec_kinds.len, res->data, res->len, out), 0);
    else
        CHECK_EQ(resp3_convert(s->r3, res->data, res->len, out), 0);
}

#define EXPECT_R3(s, sm, line, want)                                          \
    do {                                                                      \
        CHECK_EQ(RUN_CMD(s, line, &r), RESP_REPLICATE);                       \
        apply(sm, &r.op, &res);                                               \
        r3_reply(s, &res, &conv);                                             \
        CHECK_BUF(&conv, want);                                               \
        CHECK(resp3_ok(conv.data, conv.len));                                 \
    } while (0)

/* Replicated commands on a RESP3 connection, end to end with the store:
 * each reply byte for byte as Redis 7.0.15 answered the same commands with
 * HELLO 3 (sets of one element or of integers, whose order is Redis's
 * too). */
static void test_resp3_replicated(void)
{
    struct resp_session s, other;
    struct run r = {0};
    struct rabia_buf res = {0}, conv = {0};
    void *sm = rabia_sm_kv.create();
    resp_session_init(&s, 1, 0);
    resp_session_init(&other, 2, 0);
    CHECK_EQ(RUN_CMD(&s, "HELLO 3", &r), RESP_LOCAL);

    EXPECT_R3(&s, sm, "GET missing", "_\r\n");
    EXPECT_R3(&s, sm, "MGET a missing", "*2\r\n_\r\n_\r\n");
    EXPECT_R3(&s, sm, "HSET h f1 v1 f2 v2", ":2\r\n");
    EXPECT_R3(&s, sm, "HGETALL h", "%2\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n");
    EXPECT_R3(&s, sm, "hgetall nokey", "%0\r\n");
    EXPECT_R3(&s, sm, "SADD s 3 1 2", ":3\r\n");
    EXPECT_R3(&s, sm, "SMEMBERS s", "~3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    EXPECT_R3(&s, sm, "SMEMBERS nokey", "~0\r\n");
    EXPECT_R3(&s, sm, "SADD one x", ":1\r\n");
    EXPECT_R3(&s, sm, "SINTER one nokey", "~0\r\n");
    EXPECT_R3(&s, sm, "SUNION one", "~1\r\n$1\r\nx\r\n");
    EXPECT_R3(&s, sm, "SDIFF one nokey", "~1\r\n$1\r\nx\r\n");
    EXPECT_R3(&s, sm, "SPOP nokey 2", "~0\r\n");
    EXPECT_R3(&s, sm, "SRANDMEMBER nokey 2", "*0\r\n");
    EXPECT_R3(&s, sm, "SRANDMEMBER nokey", "_\r\n");
    EXPECT_R3(&s, sm, "SMISMEMBER one x z", "*2\r\n:1\r\n:0\r\n");
    EXPECT_R3(&s, sm, "ZADD z 1 a 2.5 b", ":2\r\n");
    EXPECT_R3(&s, sm, "ZADD z INCR 1 a", ",2\r\n");
    EXPECT_R3(&s, sm, "ZADD z NX INCR 1 a", "_\r\n");
    EXPECT_R3(&s, sm, "ZADD z XX INCR 0.1 nosuch", "_\r\n");
    EXPECT_R3(&s, sm, "ZSCORE z a", ",2\r\n");
    EXPECT_R3(&s, sm, "ZSCORE z nosuch", "_\r\n");
    EXPECT_R3(&s, sm, "ZINCRBY z 0.1 b", ",2.6000000000000001\r\n");
    EXPECT_R3(&s, sm, "ZMSCORE z a nosuch b", "*3\r\n,2\r\n_\r\n,2.6000000000000001\r\n");
    EXPECT_R3(&s, sm, "ZRANGE z 0 -1", "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    EXPECT_R3(&s, sm, "ZRANGE z 0 -1 WITHSCORES",
              "*2\r\n*2\r\n$1\r\na\r\n,2\r\n*2\r\n$1\r\nb\r\n,2.6000000000000001\r\n");
    EXPECT_R3(&s, sm, "ZRANGE z 0 -1 REV withscores",
              "*2\r\n*2\r\n$1\r\nb\r\n,2.6000000000000001\r\n*2\r\n$1\r\na\r\n,2\r\n");
    EXPECT_R3(&s, sm, "ZRANGE z -inf +inf BYSCORE WITHSCORES",
              "*2\r\n*2\r\n$1\r\na\r\n,2\r\n*2\r\n$1\r\nb\r\n,2.6000000000000001\r\n");
    EXPECT_R3(&s, sm, "ZRANGEBYSCORE z -inf +inf WITHSCORES",
              "*2\r\n*2\r\n$1\r\na\r\n,2\r\n*2\r\n$1\r\nb\r\n,2.6000000000000001\r\n");
    EXPECT_R3(&s, sm, "ZREVRANGE z 0 -1 WITHSCORES",
              "*2\r\n*2\r\n$1\r\nb\r\n,2.6000000000000001\r\n*2\r\n$1\r\na\r\n,2\r\n");
    EXPECT_R3(&s, sm, "ZREVRANGEBYSCORE z +inf -inf WITHSCORES LIMIT 0 1",
              "*1\r\n*2\r\n$1\r\nb\r\n,2.6000000000000001\r\n");
    EXPECT_R3(&s, sm, "ZRANGE nokey 0 -1 WITHSCORES", "*0\r\n");
    EXPECT_R3(&s, sm, "ZRANK z a", ":0\r\n");
    EXPECT_R3(&s, sm, "ZRANK z nosuch", "_\r\n");
    EXPECT_R3(&s, sm, "ZSCAN z 0",
              "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n2\r\n$1\r\nb\r\n$18\r\n2.6000000000000001\r\n");
    EXPECT_R3(&s, sm, "ZADD z 3 c 4 d 5 e", ":3\r\n");
    EXPECT_R3(&s, sm, "ZPOPMIN z", "*2\r\n$1\r\na\r\n,2\r\n");
    EXPECT_R3(&s, sm, "ZPOPMAX z", "*2\r\n$1\r\ne\r\n,5\r\n");
    EXPECT_R3(&s, sm, "ZPOPMIN z 1", "*1\r\n*2\r\n$1\r\nb\r\n,2.6000000000000001\r\n");
    EXPECT_R3(&s, sm, "ZPOPMIN z 0", "*0\r\n");
    EXPECT_R3(&s, sm, "ZPOPMIN nokey", "*0\r\n");
    EXPECT_R3(&s, sm, "ZPOPMIN nokey 2", "*0\r\n");
    EXPECT_R3(&s, sm, "ZADD inf +inf x -inf y", ":2\r\n");
    EXPECT_R3(&s, sm, "ZRANGE inf 0 -1 WITHSCORES", "*2\r\n*2\r\n$1\r\ny\r\n,-inf\r\n*2\r\n$1\r\nx\r\n,inf\r\n");
    EXPECT_R3(&s, sm, "ZSCORE inf x", ",inf\r\n");
    EXPECT_R3(&s, sm, "ZADD z 0.1 f", ":1\r\n");
    EXPECT_R3(&s, sm, "ZSCORE z f", ",0.10000000000000001\r\n");
    EXPECT_R3(&s, sm, "INCRBYFLOAT fl 1.5", "$3\r\n1.5\r\n");
    EXPECT_R3(&s, sm, "HINCRBYFLOAT h fl 1.5", "$3\r\n1.5\r\n");
    EXPECT_R3(&s, sm, "HSET h1 f v", ":1\r\n");
    EXPECT_R3(&s, sm, "HRANDFIELD h1 1 WITHVALUES", "*1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    EXPECT_R3(&s, sm, "HRANDFIELD h1 -2 WITHVALUES", "*2\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    EXPECT_R3(&s, sm, "HRANDFIELD h1 1", "*1\r\n$1\r\nf\r\n");
    EXPECT_R3(&s, sm, "HRANDFIELD nokey 2 WITHVALUES", "*0\r\n");
    EXPECT_R3(&s, sm, "HRANDFIELD nokey", "_\r\n");
    EXPECT_R3(&s, sm, "LPOP nolist", "_\r\n");
    EXPECT_R3(&s, sm, "LPOP nolist 2", "_\r\n");
    EXPECT_R3(&s, sm, "RPUSH l a b", ":2\r\n");
    EXPECT_R3(&s, sm, "LPOS l z", "_\r\n");
    EXPECT_R3(&s, sm, "LPOS l a COUNT 0", "*1\r\n:0\r\n");
    EXPECT_R3(&s, sm, "BLPOP nolist 0.1", "_\r\n"); /* what a timed-out pop answers */
    EXPECT_R3(&s, sm, "TYPE h", "+hash\r\n");
    EXPECT_R3(&s, sm, "GET h", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");

    /* MULTI ... EXEC: each element by its queued command's kind */
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "HGETALL h", "+QUEUED\r\n");
    EXPECT_LOCAL(&s, "GET nope", "+QUEUED\r\n");
    EXPECT_LOCAL(&s, "ZSCORE z a", "+QUEUED\r\n");
    EXPECT_R3(&s, sm, "EXEC",
              "*3\r\n%3\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n$2\r\nfl\r\n$3\r\n1.5\r\n_\r\n_\r\n");
    CHECK_EQ(s.r3, R3_EXEC);
    CHECK_EQ(s.exec_kinds.len, 3);
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "ZADD q INCR 1 a", "+QUEUED\r\n");
    EXPECT_LOCAL(&s, "PING", "+QUEUED\r\n");
    EXPECT_LOCAL(&s, "SMEMBERS one", "+QUEUED\r\n");
    EXPECT_LOCAL(&s, "ZRANGE q 0 -1 WITHSCORES", "+QUEUED\r\n");
    EXPECT_LOCAL(&s, "INCR h", "+QUEUED\r\n");
    EXPECT_R3(&s, sm, "EXEC",
              "*5\r\n,1\r\n+PONG\r\n~1\r\n$1\r\nx\r\n*1\r\n*2\r\n$1\r\na\r\n,1\r\n"
              "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    /* a WATCHed key changed: a null */
    CHECK_EQ(RUN_CMD(&s, "WATCH k", &r), RESP_REPLICATE);
    apply(sm, &r.op, &res);
    resp_watch_result(&s, res.data, res.len);
    EXPECT_LOCAL(&s, "MULTI", "+OK\r\n");
    EXPECT_LOCAL(&s, "GET k", "+QUEUED\r\n");
    CHECK_EQ(RUN_CMD(&s, "EXEC", &r), RESP_REPLICATE);
    struct rabia_buf exec = {0};
    rabia_buf_append(&exec, r.op.data, r.op.len);
    EXPECT_REPL(&other, sm, "SET k changed", "+OK\r\n");
    apply(sm, &exec, &res);
    r3_reply(&s, &res, &conv);
    CHECK_BUF(&conv, "_\r\n");
    rabia_buf_free(&exec);

    /* the same on a RESP2 connection: nothing to convert */
    EXPECT_LOCAL(&s, "HELLO 2", "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n");
    CHECK_EQ(RUN_CMD(&s, "HGETALL h1", &r), RESP_REPLICATE);
    CHECK_EQ(s.r3, R3_NONE);
    apply(sm, &r.op, &res);
    r3_reply(&s, &res, &conv);
    CHECK_BUF(&conv, "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");

    rabia_buf_free(&res);
    rabia_buf_free(&conv);
    resp_session_free(&s);
    resp_session_free(&other);
    rabia_sm_kv.destroy(sm);
    run_free(&r);
}

int main(void)
{
    RUN(test_parse_array);
    RUN(test_parse_inline);
    RUN(test_parse_errors);
    RUN(test_parse_limits);
    RUN(test_parse_random);
    RUN(test_errors_texts);
    RUN(test_connection_commands);
    RUN(test_replicated_ops);
    RUN(test_multi);
    RUN(test_end_to_end);
    RUN(test_watch);
    RUN(test_wait);
    RUN(test_pubsub);
    RUN(test_pubsub_lists);
    RUN(test_session_byte_limits);
    RUN(test_client_list);
    RUN(test_client_kill);
    RUN(test_blocking_and_db);
    RUN(test_resp3_hello);
    RUN(test_resp3_local);
    RUN(test_resp3_convert);
    RUN(test_resp3_convert_random);
    RUN(test_resp3_replicated);
    return CHECK_DONE();
}
