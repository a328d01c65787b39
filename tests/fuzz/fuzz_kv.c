/* libFuzzer target for the KV state machine (kv/), the code every replica
 * runs on every decided operation: a crash there is a poison pill that
 * takes down all replicas at once and again at every restart, and a
 * difference between replicas is a silent fork. The input is read as a
 * program (first byte even) or as a snapshot to restore (odd).
 *
 * Program: a stream of commands built from the command table, with
 * arguments drawn from a small key pool (so that commands meet on the
 * same keys), a dictionary of option words, numbers and Lua snippets,
 * and raw bytes from the input; also batch starts that move the log's
 * clock (expiry), transactions (TXN, TXNW with the versions of keys
 * k0..k3 in database 0 from the last WATCHVER),
 * @DB wrappers, and restores. Store A applies every command; store B the
 * same, but is restored from A's snapshot whenever the program says so.
 * Both start at this build's feature level. Checked: apply returns 0
 * with a single RESP2 value as reply (or RABIA_E_FEATURE on both, for a
 * FEATURELEVEL above the build's: a replica stops there, so does the
 * program); A's
 * and B's replies are equal; their snapshots and incremental state hashes
 * are equal at each restore and at the end; a third store restored from
 * A's final snapshot saves the same bytes and has the same hash.
 *
 * Snapshot: the bytes after the mode byte are a snapshot's key records of
 * database 0 (the harness writes the header and the other databases, so
 * the fuzzer's bytes go to what restore has to check); or, with the
 * second byte 0xff, a whole snapshot. restore must refuse it or accept
 * it; an accepted one must save, restore and save again to the same
 * bytes and hash, and survive a few commands on its keys. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "rabia/types.h"

#define FUZZ_NAME "fuzz_kv"
#include "fuzz.h"

#define MAXARGS 16
#define MAXTXN 6
#define T0 UINT64_C(1767225600000) /* 1 Jan 2026, in ms */

struct in {
    const uint8_t *p, *end;
};

static unsigned take(struct in *in)
{
    return in->p < in->end ? *in->p++ : 0;
}

static bool more(const struct in *in)
{
    return in->p < in->end;
}

/* Option words, numbers and values the commands look for. */
static const char *const words[] = {
    "NX", "XX", "GT", "LT", "CH", "INCR", "EX", "PX", "EXAT", "PXAT", "KEEPTTL", "GET",
    "PERSIST", "WITHSCORES", "WITHSCORE", "LIMIT", "BYSCORE", "BYLEX", "REV", "MATCH",
    "COUNT", "TYPE", "string", "list", "set", "zset", "hash", "LEFT", "RIGHT", "BEFORE",
    "AFTER", "WEIGHTS", "AGGREGATE", "SUM", "MIN", "MAX", "STORE", "ALPHA", "BY", "DESC",
    "ASC", "LEN", "IDX", "MINMATCHLEN", "WITHMATCHLEN", "RANK", "MAXLEN", "REPLACE", "DB",
    "FIELDS", "BIT", "BYTE", "OVERFLOW", "WRAP", "SAT", "FAIL", "u8", "i16", "u63", "#1",
    "AND", "OR", "XOR", "NOT", "WITHVALUES", "ID", "ABSTTL", "IDLETIME", "FREQ", "SCHEMA",
    "0", "1", "2", "3", "-1", "-2", "10", "100", "1000", "-100", "65536", "4294967296",
    "9223372036854775807", "-9223372036854775808", "9223372036854775808", "1.5", "-0.5",
    "1e3", "0x10", "+inf", "-inf", "inf", "nan", "(1", "(-1", "[a", "(a", "[", "-", "+",
    "*", "?", "k*", "[a-z]*", "\\", "", " ", "a", "abc", "\xff\x00\x01", "1 2",
    "return 1", "return redis.call('set',KEYS[1],ARGV[1])",
    "return redis.call('get',KEYS[1])", "return redis.pcall('incr',KEYS[1])",
    "return {1,2,{3,'x'},redis.error_reply('e'),redis.status_reply('s')}",
    "return redis.call('lpush',KEYS[1],unpack(ARGV))",
    "local n=0 for i=1,100000 do n=n+i end return n", "while true do end",
    "local t={} for i=1,1e8 do t[i]=i end", "return cjson.encode({a=1,b={1,2}})",
    "return cjson.decode(ARGV[1])", "return bit.band(tonumber(ARGV[1]) or 0,255)",
    "return redis.sha1hex(ARGV[1])", "return struct.pack('>I',1)",
    "redis.setresp(3) return redis.call('hgetall',KEYS[1])", "error('x')",
    "return redis.call('eval','return 1','0')", "return redis.call('multi')",
    "return 3.99", "return tostring(nil)", "return redis.call('del',unpack(KEYS))",
    "#!lua flags=no-writes\nreturn redis.call('get',KEYS[1])",
    "#!lua name=lib\nredis.register_function('f',function(k,a) return 1 end)",
};
#define NWORDS (sizeof words / sizeof words[0])

/* HyperLogLog strings (kv/t_hll.c) to SET and then PFADD, PFCOUNT or
 * PFMERGE: an empty sparse one, one with a fresh cached count, sparse
 * with VALs, opcodes that cover too few or too many registers, an XZERO
 * cut in half at the end, a bad encoding, a dense header of the wrong
 * length. */
#define HLL_HDR_SPARSE "HYLL\x01\0\0\0"
static const struct {
    const char *p;
    size_t n;
} hll_blobs[] = {
    {HLL_HDR_SPARSE "\0\0\0\0\0\0\0\0\x7f\xff", 18},
    {HLL_HDR_SPARSE "\x05\0\0\0\0\0\0\0\x7f\xff", 18},
    {HLL_HDR_SPARSE "\0\0\0\0\0\0\0\x80\x88\x7f\xfa\x8b", 20},
    {HLL_HDR_SPARSE "\0\0\0\0\0\0\0\x80\x7f\xfe", 18},
    {HLL_HDR_SPARSE "\0\0\0\0\0\0\0\x80\x7f\xff\x80", 19},
    {HLL_HDR_SPARSE "\0\0\0\0\0\0\0\x80\x3f\x7f", 18},
    {"HYLL\x02\0\0\0\0\0\0\0\0\0\0\0\x7f\xff", 18},
    {"HYLL\0\0\0\0\0\0\0\0\0\0\0\x80\x7f\xff", 18},
};
#define NHLL (sizeof hll_blobs / sizeof hll_blobs[0])

struct prog {
    struct in in;
    int argc;
    const uint8_t *arg[MAXARGS];
    size_t len[MAXARGS];
    char num[MAXARGS][24];
    char key[MAXARGS][4];
    struct rabia_buf op, ra, rb, sa, sb;
    char ver[4][24]; /* versions the last WATCHVER reply gave */
    int nver;
    uint64_t slot, t;
    void *A, *B;
    bool stopped; /* an apply failed as a replica's does (RABIA_E_FEATURE): the program ends */
};

/* One argument into slot i. */
static void gen_arg(struct prog *g, int i)
{
    unsigned kind = take(&g->in);
    if (kind < 96) { /* a key of the pool */
        g->key[i][0] = 'k';
        g->key[i][1] = (char)('0' + kind % 6);
        g->key[i][2] = 0;
        g->arg[i] = (const uint8_t *)g->key[i];
        g->len[i] = 2;
    } else if (kind < 192) {
        const char *w = words[take(&g->in) % NWORDS];
        g->arg[i] = (const uint8_t *)w;
        g->len[i] = strlen(w);
    } else if (kind < 224) { /* a number, mostly small */
        unsigned a = take(&g->in), b = take(&g->in);
        long long v = kind & 1 ? -(long long)(a << 8 | b) : (long long)(a << 8 | b);
        if (kind & 2)
            v = v * 1000003;
        snprintf(g->num[i], sizeof g->num[i], "%lld", v);
        g->arg[i] = (const uint8_t *)g->num[i];
        g->len[i] = strlen(g->num[i]);
    } else if (kind == 255) { /* a HyperLogLog string */
        unsigned b = take(&g->in) % (NHLL + 1);
        if (b == NHLL) { /* dense, registers 0-63 (above 51 only a crafted one has) */
            static uint8_t dense[16 + 12288 + 1] = "HYLL";
            dense[15] = 0x80;
            for (size_t k = 16; k < 16 + 12288; k++)
                dense[k] = (uint8_t)(k * 37 + (k >> 3));
            g->arg[i] = dense;
            g->len[i] = 16 + 12288;
        } else {
            g->arg[i] = (const uint8_t *)hll_blobs[b].p;
            g->len[i] = hll_blobs[b].n;
        }
    } else { /* raw bytes of the input */
        size_t n = take(&g->in);
        size_t have = (size_t)(g->in.end - g->in.p);
        if (n > have)
            n = have;
        g->arg[i] = g->in.p;
        g->len[i] = n;
        g->in.p += n;
    }
}

/* One command (argv) into out: a name from the table, or (after a 0xff
 * byte) one the input spells out; then its arguments. */
static void gen_cmd(struct prog *g, struct rabia_buf *out)
{
    unsigned first = take(&g->in);
    if (first == 0xff) { /* by name, with a count of arguments: what the seeds use (kv_seeds.py) */
        size_t n = take(&g->in) % 32;
        if (n > (size_t)(g->in.end - g->in.p))
            n = (size_t)(g->in.end - g->in.p);
        g->arg[0] = g->in.p;
        g->len[0] = n;
        g->in.p += n;
        g->argc = 1;
        int nargs = (int)(take(&g->in) % MAXARGS);
        for (int i = 0; i < nargs && more(&g->in); i++)
            gen_arg(g, g->argc++);
        if (n == 8 && memcmp(g->arg[0], "watchver", 8) == 0)
            g->nver = 0;
        if (rabia_kv_encode_argv(out, g->argc, (const char *const *)g->arg, g->len) != 0)
            FAIL("encode_argv failed");
        return;
    }
    unsigned pick = first | take(&g->in) << 8;
    unsigned ncmd = rabia_kv_ncommands();
    const struct rabia_kv_cmd_info *ci = rabia_kv_command(pick % ncmd);
    g->argc = 1;
    g->arg[0] = (const uint8_t *)ci->name;
    g->len[0] = strlen(ci->name);
    unsigned want = take(&g->in);
    int nargs;
    if (want < 160 && ci->arity > 0)
        nargs = ci->arity - 1; /* the exact count */
    else if (want < 200 && ci->arity < 0)
        nargs = -ci->arity - 1 + (int)(want % 4); /* at least */
    else
        nargs = (int)(want % MAXARGS);
    if (nargs > MAXARGS - 1)
        nargs = MAXARGS - 1;
    for (int i = 0; i < nargs && more(&g->in); i++)
        gen_arg(g, g->argc++);
    if (strcmp(ci->name, "watchver") == 0)
        g->nver = 0;
    if (rabia_kv_encode_argv(out, g->argc, (const char *const *)g->arg, g->len) != 0)
        FAIL("encode_argv failed");
}

static void check_reply(const struct rabia_buf *r)
{
    size_t used = 0;
    if (rabia_kv_resp_check(r->data, r->len, &used) != 0 || used != r->len)
        FAIL("the reply is not one RESP2 value (%zu bytes)", r->len);
}

static uint64_t hash_of(void *sm)
{
    uint64_t h = 0;
    if (rabia_sm_kv.state_hash(sm, &h) != 0)
        FAIL("state_hash failed");
    return h;
}

static bool trace;

static bool same(const struct rabia_buf *a, const struct rabia_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Apply op to A and B; their replies must agree. WATCHVER's integers are
 * kept for a later TXNW. */
static void apply_both(struct prog *g, const struct rabia_buf *op)
{
    rabia_buf_clear(&g->ra);
    rabia_buf_clear(&g->rb);
    int ra = rabia_sm_kv.apply(g->A, op->data, op->len, &g->ra);
    int rb = rabia_sm_kv.apply(g->B, op->data, op->len, &g->rb);
    if (ra != rb)
        FAIL("apply returned %d on A, %d on B", ra, rb);
    if (ra == RABIA_E_FEATURE) { /* FEATURELEVEL above this build's: a replica stops here */
        g->stopped = true;
        return;
    }
    if (ra != 0)
        FAIL("apply failed: %d", ra);
    check_reply(&g->ra);
    if (trace) /* FUZZ_KV_TRACE=1: each reply's start, to see what a seed does */
        fprintf(stderr, "%.*s\n", (int)(g->ra.len < 60 ? g->ra.len : 60), (const char *)g->ra.data);
    if (!same(&g->ra, &g->rb))
        FAIL("replies differ: A %zu bytes \"%.*s\", B %zu bytes \"%.*s\"", g->ra.len,
             (int)(g->ra.len < 80 ? g->ra.len : 80), (const char *)g->ra.data, g->rb.len,
             (int)(g->rb.len < 80 ? g->rb.len : 80), (const char *)g->rb.data);
    /* ":123\r\n" items of an array reply: versions for TXNW */
    if (g->ra.len > 4 && g->ra.data[0] == '*' && g->nver == 0) {
        const char *p = (const char *)g->ra.data, *end = p + g->ra.len;
        while (g->nver < 4 && (p = memchr(p, ':', (size_t)(end - p))) != NULL) {
            const char *e = memchr(p, '\r', (size_t)(end - p));
            if (!e || e - p - 1 >= 23)
                break;
            memcpy(g->ver[g->nver], p + 1, (size_t)(e - p - 1));
            g->ver[g->nver][e - p - 1] = 0;
            g->nver++;
            p = e;
        }
    }
}

/* A's snapshot into B; hashes and bytes checked both ways. */
static void restore_b(struct prog *g)
{
    rabia_buf_clear(&g->sa);
    rabia_buf_clear(&g->sb);
    if (rabia_sm_kv.snapshot(g->A, &g->sa) != 0 || rabia_sm_kv.snapshot(g->B, &g->sb) != 0)
        FAIL("snapshot failed");
    if (!same(&g->sa, &g->sb))
        FAIL("A's and B's snapshots differ (%zu / %zu bytes)", g->sa.len, g->sb.len);
    uint64_t ha = hash_of(g->A);
    if (ha != hash_of(g->B))
        FAIL("equal snapshots, different state hashes");
    if (rabia_sm_kv.restore(g->B, g->sa.data, g->sa.len) != 0)
        FAIL("B refused A's snapshot");
    if (hash_of(g->B) != ha)
        FAIL("the restored store's hash differs from its source's");
    rabia_buf_clear(&g->sb);
    if (rabia_sm_kv.snapshot(g->B, &g->sb) != 0 || !same(&g->sa, &g->sb))
        FAIL("the restored store saves other bytes");
}

/* The argv "FEATURELEVEL <this build's level>" into out. */
static void encode_own_level(struct rabia_buf *out)
{
    char own_level[8];
    snprintf(own_level, sizeof own_level, "%d", RABIA_KV_FEATURE_LEVEL);
    const char *set_level[2] = {"FEATURELEVEL", own_level};
    if (rabia_kv_encode_argv(out, 2, set_level, NULL) != 0)
        FAIL("encode_argv failed");
}

/* With FUZZ_KV_SEEDS=dir set, a program's final state is written there as
 * an input of the snapshot mode (database 0's key records), when only
 * database 0 holds keys and no script is cached: seeds with every type's
 * real encoding for restore to be fuzzed from. Run the target over
 * kv_seeds with FUZZ_KV_SEEDS=dir -runs=N, then fuzz from dir too. */
static void write_seed(const struct rabia_buf *snap)
{
    const char *dir = getenv("FUZZ_KV_SEEDS");
    if (!dir)
        return;
    /* what follows the 16 databases in an empty store at this level (the
     * script cache, the level): the same bytes end snap when no script is
     * cached */
    struct rabia_buf empty = {0}, op = {0}, rep = {0};
    encode_own_level(&op);
    void *e = rabia_sm_kv.create();
    if (!e || rabia_sm_kv.apply(e, op.data, op.len, &rep) || rabia_sm_kv.snapshot(e, &empty))
        FAIL("an empty store's snapshot failed");
    rabia_sm_kv.destroy(e);
    const size_t head = 1 + 8 + 8, db = 256 * 8 + 8 + 8;
    size_t tail = empty.len - head - 16 * db;
    bool fits = snap->len >= head + 16 * db + tail && snap->data[0] == empty.data[0] &&
                memcmp(snap->data + snap->len - tail, empty.data + empty.len - tail, tail) == 0;
    rabia_buf_free(&empty);
    rabia_buf_free(&op);
    rabia_buf_free(&rep);
    if (!fits)
        return;
    const uint8_t *cnt = snap->data + head + 256 * 8 + 8;
    uint64_t count = 0;
    for (int i = 7; i >= 0; i--)
        count = count << 8 | cnt[i];
    size_t recs = snap->len - head - 16 * db - tail;
    if (count == 0 || count > 255 || recs > 4000)
        return;
    uint8_t seed[2 + 4000];
    seed[0] = 1;
    seed[1] = (uint8_t)count;
    memcpy(seed + 2, cnt + 8, recs);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < recs + 2; i++)
        h = (h ^ seed[i]) * 1099511628211ull;
    char path[4096];
    snprintf(path, sizeof path, "%s/snap-%016llx", dir, (unsigned long long)h);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(seed, 1, recs + 2, f);
        fclose(f);
    }
}

static void run_program(const uint8_t *data, size_t size)
{
    struct prog *g = calloc(1, sizeof *g);
    if (!g)
        return;
    g->in = (struct in){data, data + size};
    g->t = T0;
    g->A = rabia_sm_kv.create();
    g->B = rabia_sm_kv.create();
    if (!g->A || !g->B)
        FAIL("create failed");
    struct rabia_sm_batch b = {.slot = ++g->slot, .time_ms = g->t};
    rabia_sm_kv.begin(g->A, &b);
    rabia_sm_kv.begin(g->B, &b);
    /* at this build's feature level, as a cluster of one build runs (below
     * level 2 a script's allocations are not counted, and a loop that
     * grows a string holds the store for minutes: kv/README.md "Scripts") */
    encode_own_level(&g->op);
    apply_both(g, &g->op);
    for (int steps = 0; more(&g->in) && steps < 256 && !g->stopped; steps++) {
        unsigned what = take(&g->in);
        rabia_buf_clear(&g->op);
        if (what < 16) { /* a new batch: the clock creeps, jumps, or lags */
            unsigned d = take(&g->in);
            uint64_t stamp = g->t;
            if (what < 8)
                g->t += d;
            else if (what < 14)
                g->t += (uint64_t)d * 1000;
            else
                stamp = g->t - d;
            b = (struct rabia_sm_batch){.slot = ++g->slot, .time_ms = stamp};
            rabia_sm_kv.begin(g->A, &b);
            rabia_sm_kv.begin(g->B, &b);
            continue;
        }
        if (what < 24) {
            restore_b(g);
            continue;
        }
        if (what < 40) { /* a transaction, with WATCH versions half the time */
            const uint8_t *ops[MAXTXN];
            size_t lens[MAXTXN];
            struct rabia_buf parts[MAXTXN] = {{0}};
            int n = 1 + (int)(take(&g->in) % MAXTXN);
            for (int i = 0; i < n; i++) {
                gen_cmd(g, &parts[i]);
                ops[i] = parts[i].data;
                lens[i] = parts[i].len;
            }
            if (what < 32 || g->nver == 0) {
                if (rabia_kv_encode_txn(&g->op, n, ops, lens) != 0)
                    FAIL("encode_txn failed");
            } else {
                /* TXNW n (db key ver)... op... */
                const char *argv[2 + 3 * 4 + MAXTXN];
                size_t alen[2 + 3 * 4 + MAXTXN];
                char nbuf[4];
                int w = g->nver, c = 0;
                snprintf(nbuf, sizeof nbuf, "%d", w);
                argv[c] = "TXNW", alen[c++] = 4;
                argv[c] = nbuf, alen[c++] = strlen(nbuf);
                for (int i = 0; i < w; i++) {
                    static const char *const wk[] = {"k0", "k1", "k2", "k3"};
                    argv[c] = "0", alen[c++] = 1;
                    argv[c] = wk[i], alen[c++] = 2;
                    argv[c] = g->ver[i], alen[c++] = strlen(g->ver[i]);
                }
                for (int i = 0; i < n; i++)
                    argv[c] = (const char *)ops[i], alen[c++] = lens[i];
                if (rabia_kv_encode_argv(&g->op, c, argv, alen) != 0)
                    FAIL("encode_argv failed");
            }
            for (int i = 0; i < n; i++)
                rabia_buf_free(&parts[i]);
            apply_both(g, &g->op);
            continue;
        }
        if (what < 48) { /* @DB n op */
            struct rabia_buf inner = {0};
            gen_cmd(g, &inner);
            char db[4];
            snprintf(db, sizeof db, "%u", take(&g->in) % 17); /* 16: refused */
            const char *argv[3] = {"@DB", db, (const char *)inner.data};
            size_t alen[3] = {3, strlen(db), inner.len};
            if (rabia_kv_encode_argv(&g->op, 3, argv, alen) != 0)
                FAIL("encode_argv failed");
            rabia_buf_free(&inner);
            apply_both(g, &g->op);
            continue;
        }
        if (what < 52) { /* bytes that are not an encoded argv at all */
            size_t n = take(&g->in) % 32;
            if (n > (size_t)(g->in.end - g->in.p))
                n = (size_t)(g->in.end - g->in.p);
            if (rabia_buf_append(&g->op, g->in.p, n) != 0)
                FAIL("append failed");
            g->in.p += n;
            apply_both(g, &g->op);
            continue;
        }
        gen_cmd(g, &g->op);
        apply_both(g, &g->op);
    }
    restore_b(g);
    /* a third store from A's final snapshot */
    void *C = rabia_sm_kv.create();
    if (!C)
        FAIL("create failed");
    if (rabia_sm_kv.restore(C, g->sa.data, g->sa.len) != 0)
        FAIL("a fresh store refused A's snapshot");
    if (hash_of(C) != hash_of(g->A))
        FAIL("a fresh store restored from A's snapshot has another hash");
    rabia_buf_clear(&g->sb);
    if (rabia_sm_kv.snapshot(C, &g->sb) != 0 || !same(&g->sa, &g->sb))
        FAIL("a fresh store restored from A's snapshot saves other bytes");
    rabia_sm_kv.destroy(C);
    write_seed(&g->sa);
    rabia_sm_kv.destroy(g->A);
    rabia_sm_kv.destroy(g->B);
    rabia_buf_free(&g->op);
    rabia_buf_free(&g->ra);
    rabia_buf_free(&g->rb);
    rabia_buf_free(&g->sa);
    rabia_buf_free(&g->sb);
    free(g);
}

/* Commands that read and change whatever a restored store holds. */
static const char *const probes[][4] = {
    {"type", "k0"}, {"get", "k0"}, {"append", "k0", "x"}, {"lrange", "k0", "0", "-1"},
    {"lpush", "k0", "x"}, {"rpop", "k0"}, {"smembers", "k0"}, {"sadd", "k0", "x"},
    {"spop", "k0"}, {"zrange", "k0", "0", "-1"}, {"zadd", "k0", "1", "x"},
    {"zpopmin", "k0"}, {"hgetall", "k0"}, {"hset", "k0", "x", "y"}, {"hdel", "k0", "x"},
    {"dbsize"}, {"keys", "*"}, {"scan", "0"}, {"randomkey"}, {"ttl", "k0"},
    {"sweep"}, {"object", "encoding", "k0"}, {"dump", "k0"}, {"del", "k0"},
};

static void run_restore(const uint8_t *data, size_t size)
{
    struct rabia_buf snap = {0}, again = {0}, rep = {0}, op = {0};
    const uint8_t *key = NULL; /* the first key record's name, probed below */
    size_t key_len = 0;
    if (size > 0 && data[0] == 0xff) { /* a whole snapshot */
        if (rabia_buf_append(&snap, data + 1, size - 1) != 0)
            FAIL("append failed");
    } else {
        /* version 2, clock, version counter 2^40 (above any key's), then
         * database 0 with the input's key records, then 15 empty ones */
        uint8_t count = size > 0 ? data[0] : 0;
        if (size > 0)
            data++, size--;
        if (size >= 4) {
            uint32_t n = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                         (uint32_t)data[3] << 24;
            if (n <= size - 4)
                key = data + 4, key_len = n;
        }
        if (rabia_buf_put_u8(&snap, 2) || rabia_buf_put_u64(&snap, T0) ||
            rabia_buf_put_u64(&snap, UINT64_C(1) << 40))
            FAIL("append failed");
        for (int db = 0; db < 16; db++) {
            for (int k = 0; k < 256; k++)
                if (rabia_buf_put_u64(&snap, 0))
                    FAIL("append failed");
            if (rabia_buf_put_u64(&snap, 0) || rabia_buf_put_u64(&snap, db == 0 ? count : 0))
                FAIL("append failed");
            if (db == 0 && rabia_buf_append(&snap, data, size))
                FAIL("append failed");
        }
    }
    void *sm = rabia_sm_kv.create(), *D = rabia_sm_kv.create();
    if (!sm || !D)
        FAIL("create failed");
    int rc = rabia_sm_kv.restore(sm, snap.data, snap.len);
    if (trace)
        fprintf(stderr, "restore of %zu bytes: %d\n", snap.len, rc);
    if (rc > 0)
        FAIL("restore returned %d", rc);
    if (rc == 0) {
        if (rabia_sm_kv.snapshot(sm, &again) != 0)
            FAIL("an accepted snapshot does not save");
        if (rabia_sm_kv.restore(D, again.data, again.len) != 0)
            FAIL("the save of an accepted snapshot is refused");
        if (hash_of(D) != hash_of(sm))
            FAIL("an accepted snapshot and its save restore to other hashes");
        rabia_buf_clear(&snap);
        if (rabia_sm_kv.snapshot(D, &snap) != 0 || !same(&snap, &again))
            FAIL("an accepted snapshot's save is not a fixed point");
        /* the restored keys take commands: the store's own invariants are
         * asserted inside (kv/), and the hashes must still agree */
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
            const char *argv[4];
            size_t lens[4];
            int c = 0;
            while (c < 4 && probes[i][c]) {
                argv[c] = probes[i][c];
                lens[c] = strlen(probes[i][c]);
                if (strcmp(argv[c], "k0") == 0 && key) /* the restored key */
                    argv[c] = (const char *)key, lens[c] = key_len;
                c++;
            }
            rabia_buf_clear(&op);
            if (rabia_kv_encode_argv(&op, c, argv, lens) != 0)
                FAIL("encode_argv failed");
            rabia_buf_clear(&rep);
            if (rabia_sm_kv.apply(sm, op.data, op.len, &rep) != 0)
                FAIL("apply failed on a restored store");
            check_reply(&rep);
            rabia_buf_clear(&rep);
            if (rabia_sm_kv.apply(D, op.data, op.len, &rep) != 0)
                FAIL("apply failed on a restored store");
        }
        if (hash_of(D) != hash_of(sm))
            FAIL("two stores restored from the same state differ after the same commands");
    }
    rabia_sm_kv.destroy(sm);
    rabia_sm_kv.destroy(D);
    rabia_buf_free(&snap);
    rabia_buf_free(&again);
    rabia_buf_free(&rep);
    rabia_buf_free(&op);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static int init;
    if (!init) {
        init = 1;
        trace = getenv("FUZZ_KV_TRACE") != NULL;
    }
    if (data[0] & 1)
        run_restore(data + 1, size - 1);
    else
        run_program(data + 1, size - 1);
    return 0;
}
