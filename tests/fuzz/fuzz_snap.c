/* fuzz_snap: the apply layer's snapshot reader (core/rsm.c
 * rabia_rsm_restore, with the KV store's restore behind it): what a replica
 * loads from its snapshot file at start and installs from a peer's
 * transfer. A checksum guards the bytes against damage, not against a
 * faulty or hostile maker, so this fuzzer damages a real snapshot and then
 * fixes the checksum up: the parser behind it is what gets fuzzed.
 *
 * Template (built once): an rsm over the KV store with max_sessions 12
 * applies batches of two proxies: OPENed sessions and connection-scoped
 * ones, requests retried (a duplicate), an out-of-window request, a
 * session closed, replies kept and one too large to keep; then it is
 * snapshotted. The input is a list of 4-byte edits on the template's bytes
 * before its checksum: [op][pos lo][pos hi][value], op % 6: 0 set the byte
 * at pos, 1 xor it, 2 insert a byte before it, 3 delete it, 4 cut the
 * bytes at pos off, 5 set the 8 bytes at pos to a little-endian number
 * from a small table (0, 1, 64, 2^32, 2^62, 2^63, 2^64-1, value). Then the
 * checksum is recomputed.
 *
 * Checked:
 *  - restore into an rsm holding the template's state either accepts or
 *    refuses with -EINVAL; a refused restore leaves that state exactly as
 *    it was (its snapshot is the template, byte for byte): all or nothing;
 *  - the template itself (no edits) restores to the same bytes;
 *  - an accepted one's snapshot S restores into a fresh rsm, whose own
 *    snapshot is S again and whose state hash is the same;
 *  - then both apply the same batches (requests of the template's clients
 *    around their windows, retries, new clients, a close) and answer alike,
 *    and end with equal snapshots and hashes;
 *  - AddressSanitizer and UBSan: nothing read out of bounds, no overflow,
 *    no leak. */
#define FUZZ_NAME "fuzz_snap"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH64_state_t on the stack */
#include <xxhash.h>

#include "codec.h"
#include "fuzz.h"
#include "kv.h"
#include "rabia/types.h"
#include "rsm.h"

#define MAX_SESSIONS 12u
#define MAX_REPLY 64u

static struct rabia_rsm_config cfg = {.max_sessions = MAX_SESSIONS, .max_reply_bytes = MAX_REPLY,
                                      .max_reply_total = 4096};
static struct rabia_buf tmpl;   /* the template snapshot */
static uint64_t opened_ids[3];  /* the sessions the template's OPENs got */

static void put_req(struct rabia_buf *b, uint64_t client, uint64_t seq, uint64_t ack, int argc,
                    const char *const *argv)
{
    struct rabia_buf op = {0};
    if (argc && rabia_kv_encode_argv(&op, argc, argv, NULL))
        FAIL("encode");
    struct rabia_req q = {.client_id = client, .seq = seq, .ack = ack, .op = op.data, .op_len = (uint32_t)op.len};
    if (rabia_batch_append(b, &q))
        FAIL("batch append");
    rabia_buf_free(&op);
}

/* Replies hashed in order (status, client, seq, bytes): two rsms answered
 * alike iff their hashes are equal. */
static void on_reply(void *ctx, uint64_t client, uint64_t seq, int status, const uint8_t *p, size_t len)
{
    XXH64_state_t *h = ctx;
    uint64_t head[4] = {client, seq, (uint64_t)(int64_t)status, len};
    XXH64_update(h, head, sizeof head);
    if (len)
        XXH64_update(h, p, len);
}

static void on_open(void *ctx, uint64_t client, uint64_t seq, int status, const uint8_t *p, size_t len)
{
    (void)seq;
    size_t *k = ctx;
    if (!(client & RABIA_SESSION_ASSIGNED) && status == RABIA_REPLY_OK && len == 8 && *k < 3) {
        uint64_t id = 0;
        for (int i = 0; i < 8; i++)
            id |= (uint64_t)p[i] << (8 * i);
        opened_ids[(*k)++] = id;
    }
}

static int apply(struct rabia_rsm *r, uint8_t proxy, uint64_t bseq, const struct rabia_buf *body,
                 rabia_rsm_reply_fn fn, void *ctx)
{
    struct rabia_batch_id id = {.incarnation = 7 + proxy, .seq = bseq, .proxy = proxy};
    return rabia_rsm_apply_batch(r, rabia_rsm_applied(r) + 1, &id, body->data, body->len, fn, ctx);
}

#define ARGV(...) (sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)), (const char *[]){__VA_ARGS__}

static void build_template(void)
{
    struct rabia_rsm *r = rabia_rsm_create(&rabia_sm_kv, &cfg);
    if (!r)
        FAIL("rsm create");
    struct rabia_buf b = {0};
    size_t k = 0;
    /* three OPENs (nonces 11, 12, 13) */
    rabia_batch_init(&b);
    for (uint64_t n = 11; n <= 13; n++)
        put_req(&b, n, 1, 1, 0, NULL);
    if (apply(r, 1, 1, &b, on_open, &k) || k != 3)
        FAIL("opens: %zu", k);
    const uint64_t c1 = RABIA_SESSION_CONN_SCOPED | 5, c2 = RABIA_SESSION_CONN_SCOPED | 9;
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    rabia_batch_init(&b);
    put_req(&b, opened_ids[0], 2, 2, ARGV("SET", "a", "1"));
    put_req(&b, opened_ids[0], 3, 2, ARGV("INCR", "a"));
    put_req(&b, opened_ids[1], 2, 2, ARGV("RPUSH", "l", "x", "y", "z"));
    put_req(&b, c1, 1, 1, ARGV("SET", "b", big));
    put_req(&b, c1, 2, 1, ARGV("GET", "b"));        /* a reply too large to keep */
    put_req(&b, c2, 4, 3, ARGV("HSET", "h", "f", "v"));
    put_req(&b, opened_ids[0], 3, 2, ARGV("INCR", "a")); /* a retry: the cached reply */
    put_req(&b, opened_ids[2], 99, 2, ARGV("SET", "z", "1")); /* out of the window */
    if (apply(r, 1, 2, &b, NULL, NULL))
        FAIL("batch 2");
    rabia_batch_init(&b);
    put_req(&b, opened_ids[1], 3, 3, ARGV("SADD", "s", "m1", "m2"));
    put_req(&b, c2, 0, 0, 0, NULL); /* c2's connection closed */
    put_req(&b, opened_ids[2], 2, 2, ARGV("ZADD", "zs", "1.5", "m"));
    put_req(&b, opened_ids[2], 4, 2, ARGV("GET", "a")); /* seq 3 not applied: a gap */
    if (apply(r, 2, 1, &b, NULL, NULL))
        FAIL("batch 3");
    if (apply(r, 2, 1, &b, NULL, NULL)) /* decided again: skipped whole */
        FAIL("batch 3 again");
    if (rabia_rsm_snapshot(r, &tmpl))
        FAIL("template snapshot");
    rabia_buf_free(&b);
    rabia_rsm_destroy(r);
}

/* Batches applied after a restore, to both rsms: the template's clients
 * around their windows, retries, new clients, a close. */
static uint64_t drive(struct rabia_rsm *r)
{
    XXH64_state_t h;
    XXH64_reset(&h, 0);
    struct rabia_buf b = {0};
    const uint64_t c1 = RABIA_SESSION_CONN_SCOPED | 5;
    rabia_batch_init(&b);
    put_req(&b, opened_ids[0], 3, 2, ARGV("INCR", "a"));
    put_req(&b, opened_ids[0], 4, 3, ARGV("INCR", "a"));
    put_req(&b, opened_ids[1], 70, 10, ARGV("GET", "a"));
    put_req(&b, opened_ids[2], 3, 2, ARGV("LRANGE", "l", "0", "-1"));
    put_req(&b, c1, 2, 2, ARGV("GET", "b"));
    put_req(&b, c1, 3, 3, ARGV("DEL", "b"));
    put_req(&b, 21, 1, 1, 0, NULL); /* an OPEN */
    put_req(&b, RABIA_SESSION_ASSIGNED | 2, 5, 5, ARGV("SET", "q", "1"));
    int rc = apply(r, 1, 3, &b, on_reply, &h);
    XXH64_update(&h, &rc, sizeof rc);
    rabia_batch_init(&b);
    for (uint64_t i = 0; i < 14; i++) /* more connections than sessions: evictions */
        put_req(&b, RABIA_SESSION_CONN_SCOPED | (100 + i), 1, 1, ARGV("INCR", "ctr"));
    put_req(&b, opened_ids[1], 0, 0, 0, NULL);
    rc = apply(r, 3, 1, &b, on_reply, &h);
    XXH64_update(&h, &rc, sizeof rc);
    rabia_buf_free(&b);
    uint64_t s = rabia_rsm_hash(r);
    XXH64_update(&h, &s, sizeof s);
    return XXH64_digest(&h);
}

static void snap(struct rabia_rsm *r, struct rabia_buf *out)
{
    out->len = 0;
    if (rabia_rsm_snapshot(r, out))
        FAIL("snapshot failed");
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    if (!tmpl.len)
        build_template();
    /* the damaged copy, without its checksum (recomputed below) */
    size_t len = tmpl.len - 8, cap = len + n / 4 + 8;
    uint8_t *d = malloc(cap + 8);
    if (!d)
        return 0;
    memcpy(d, tmpl.data, len);
    for (size_t i = 0; i + 4 <= n; i += 4) {
        uint8_t op = in[i] % 6, v = in[i + 3];
        size_t pos = (size_t)(in[i + 1] | in[i + 2] << 8);
        if (op == 2) { /* insert before pos */
            pos %= len + 1;
            memmove(d + pos + 1, d + pos, len - pos);
            d[pos] = v;
            len++;
            continue;
        }
        if (!len)
            break;
        pos %= len;
        if (op == 0) {
            d[pos] = v;
        } else if (op == 1) {
            d[pos] ^= v ? v : 1;
        } else if (op == 3) {
            memmove(d + pos, d + pos + 1, len - pos - 1);
            len--;
        } else if (op == 4) {
            len = pos;
        } else if (pos + 8 <= len) {
            static const uint64_t nums[8] = {0, 1, 64, 1ull << 32, 1ull << 62, 1ull << 63, UINT64_MAX, 0};
            uint64_t x = (v & 7) == 7 ? v >> 3 : nums[v & 7];
            for (int b = 0; b < 8; b++)
                d[pos + (size_t)b] = (uint8_t)(x >> (8 * b));
        }
    }
    uint64_t sum = XXH64(d, len, 0);
    for (int b = 0; b < 8; b++)
        d[len + (size_t)b] = (uint8_t)(sum >> (8 * b));
    len += 8;

    struct rabia_rsm *a = rabia_rsm_create(&rabia_sm_kv, &cfg), *b = rabia_rsm_create(&rabia_sm_kv, &cfg);
    if (!a || !b)
        FAIL("rsm create");
    if (rabia_rsm_restore(a, tmpl.data, tmpl.len))
        FAIL("the template does not restore");
    struct rabia_buf s1 = {0}, s2 = {0};
    int rc = rabia_rsm_restore(a, d, len);
    if (rc) {
        if (rc != -EINVAL)
            FAIL("restore returned %d (only 0 or -EINVAL expected)", rc);
        snap(a, &s1);
        if (s1.len != tmpl.len || memcmp(s1.data, tmpl.data, tmpl.len))
            FAIL("a refused restore changed the state (%zu -> %zu snapshot bytes)", tmpl.len, s1.len);
    } else {
        snap(a, &s1);
        if (n < 4 && (s1.len != tmpl.len || memcmp(s1.data, tmpl.data, tmpl.len)))
            FAIL("the template restored and snapshotted again is not the template (%zu -> %zu bytes)", tmpl.len,
                 s1.len);
        if ((rc = rabia_rsm_restore(b, s1.data, s1.len)))
            FAIL("an accepted state's own snapshot is refused (%d)", rc);
        snap(b, &s2);
        if (s1.len != s2.len || memcmp(s1.data, s2.data, s1.len))
            FAIL("snapshot, restore, snapshot: %zu then %zu bytes, not equal", s1.len, s2.len);
        if (rabia_rsm_hash(a) != rabia_rsm_hash(b))
            FAIL("equal snapshots, different state hashes");
        uint64_t ha = drive(a), hb = drive(b);
        if (ha != hb)
            FAIL("the two restored states answer the same batches differently");
        snap(a, &s1);
        snap(b, &s2);
        if (s1.len != s2.len || memcmp(s1.data, s2.data, s1.len))
            FAIL("after the same batches the snapshots differ (%zu / %zu bytes)", s1.len, s2.len);
    }
    rabia_buf_free(&s1);
    rabia_buf_free(&s2);
    rabia_rsm_destroy(a);
    rabia_rsm_destroy(b);
    free(d);
    return 0;
}
