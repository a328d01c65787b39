/* Unit tests of the wire codec (core/codec.c) and batch bodies. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codec.h"
#include "le.h"
#define XXH_INLINE_ALL /* XXH64_state_t on the stack */
#include <xxhash.h>

/* ---- helpers ---- */

static uint64_t rng_state = 0x0123456789abcdefull; /* fixed: reproducible */

static uint64_t rnd(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint64_t rnd_below(uint64_t n) { return rnd() % n; }

/* Random values that look like real ones often, extremes sometimes. */
static uint64_t rnd_u64(void)
{
    switch (rnd_below(4)) {
    case 0: return 0;
    case 1: return UINT64_MAX - rnd_below(3);
    case 2: return rnd_below(1000);
    default: return rnd();
    }
}

static uint8_t body_pool[70000];

static void set_body(struct rabia_msg *m)
{
    uint32_t n;
    switch (rnd_below(4)) {
    case 0: n = 0; break;
    case 1: n = (uint32_t)rnd_below(8); break;
    case 2: n = (uint32_t)rnd_below(300); break;
    default: n = (uint32_t)rnd_below(sizeof body_pool); break;
    }
    m->body_len = n;
    m->body = n ? body_pool + rnd_below(sizeof body_pool - n + 1) : NULL;
}

static void set_id(struct rabia_msg *m)
{
    m->id.proxy = (uint8_t)rnd_below(RABIA_MAX_REPLICAS);
    m->id.incarnation = rnd_u64();
    m->id.seq = rnd_u64();
}

static void set_opt_id(struct rabia_msg *m)
{
    m->has_id = (uint8_t)rnd_below(2);
    if (m->has_id)
        set_id(m);
}

static const uint8_t all_types[] = {
    RABIA_MSG_BATCH,      RABIA_MSG_PROPOSAL,     RABIA_MSG_STATE,
    RABIA_MSG_VOTE,       RABIA_MSG_DECISION,     RABIA_MSG_FETCH,
    RABIA_MSG_CATCHUP,    RABIA_MSG_HORIZON_REQ,  RABIA_MSG_HORIZON,
    RABIA_MSG_SNAP_REQ,   RABIA_MSG_SNAP_CHUNK,   RABIA_MSG_HELLO,
    RABIA_MSG_CLIENT_REQ, RABIA_MSG_CLIENT_REPLY, RABIA_MSG_STATUS_REQ,
    RABIA_MSG_STATUS,     RABIA_MSG_PEER_AUTH,    RABIA_MSG_CLIENT_AUTH,
    RABIA_MSG_CLIENT_AUTH_REPLY, RABIA_MSG_BACKUP_REQ, RABIA_MSG_BACKUP_CHUNK,
    RABIA_MSG_FIRST_START,
};
#define NTYPES (sizeof all_types / sizeof all_types[0])

/* A random valid message of the given type: only its own fields set. */
static struct rabia_msg random_msg(uint8_t type)
{
    struct rabia_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.from = (uint8_t)(type < RABIA_MSG_CLIENT_REQ ? rnd_below(RABIA_MAX_REPLICAS)
                                                   : rnd_below(256));
    switch (type) {
    case RABIA_MSG_BATCH:
        m.has_id = 1;
        set_id(&m);
        set_body(&m);
        break;
    case RABIA_MSG_PROPOSAL:
        m.slot = rnd_u64();
        set_opt_id(&m);
        break;
    case RABIA_MSG_STATE:
    case RABIA_MSG_VOTE:
        m.slot = rnd_u64();
        m.phase = (uint16_t)(1 + rnd_below(UINT16_MAX));
        m.value = (uint8_t)rnd_below(type == RABIA_MSG_STATE ? 2 : 3);
        set_opt_id(&m);
        break;
    case RABIA_MSG_DECISION:
        m.slot = rnd_u64();
        m.value = (uint8_t)rnd_below(2);
        if (m.value) {
            m.has_id = 1;
            set_id(&m);
            set_body(&m);
        }
        break;
    case RABIA_MSG_FETCH:
        m.slot = rnd_u64();
        set_opt_id(&m);
        break;
    case RABIA_MSG_CATCHUP:
    case RABIA_MSG_SNAP_REQ:
        m.slot = rnd_u64();
        break;
    case RABIA_MSG_HORIZON_REQ:
        m.u64 = rnd_u64();
        break;
    case RABIA_MSG_HORIZON:
        m.u64 = rnd_u64();
        m.slot = rnd_u64();
        break;
    case RABIA_MSG_SNAP_CHUNK:
        m.slot = rnd_u64();
        set_body(&m);
        m.u64b = m.body_len + rnd_below(1u << 20);
        m.u64 = rnd_below(m.u64b - m.body_len + 1);
        break;
    case RABIA_MSG_HELLO:
        m.u64 = rnd_u64();
        m.u64b = rnd_u64();
        m.value = RABIA_PROTOCOL_VERSION;
        break;
    case RABIA_MSG_FIRST_START:
        m.u64 = rnd_u64();
        break;
    case RABIA_MSG_CLIENT_REQ:
        m.u64 = rnd_u64();
        m.slot = rnd_u64();
        m.u64b = rnd_u64();
        set_body(&m);
        break;
    case RABIA_MSG_CLIENT_REPLY:
        m.u64 = rnd_u64();
        m.slot = rnd_u64();
        m.value = (uint8_t)rnd_below(RABIA_REPLY_NOPERM + 1);
        set_body(&m);
        break;
    case RABIA_MSG_STATUS_REQ:
        break;
    case RABIA_MSG_STATUS:
    case RABIA_MSG_CLIENT_AUTH:
        set_body(&m);
        break;
    case RABIA_MSG_PEER_AUTH:
        m.u64 = rnd_u64();
        m.value = (uint8_t)rnd_below(256);
        set_body(&m);
        break;
    case RABIA_MSG_CLIENT_AUTH_REPLY:
        m.value = (uint8_t)rnd_below(256);
        set_body(&m);
        break;
    case RABIA_MSG_BACKUP_REQ:
        break;
    case RABIA_MSG_BACKUP_CHUNK:
        m.value = (uint8_t)rnd_below(3);
        if (m.value == 2) { /* taken: the slot only */
            m.slot = rnd_u64();
            break;
        }
        set_body(&m);
        if (m.value == 0) { /* a chunk; 1: a refusal, body only */
            m.slot = rnd_u64();
            m.u64b = m.body_len + rnd_below(1u << 20);
            m.u64 = rnd_below(m.u64b - m.body_len + 1);
        }
        break;
    }
    return m;
}

static bool msg_eq(const struct rabia_msg *a, const struct rabia_msg *b)
{
    return a->type == b->type && a->from == b->from && a->value == b->value &&
           a->has_id == b->has_id && a->phase == b->phase && a->slot == b->slot &&
           a->u64 == b->u64 && a->u64b == b->u64b &&
           rabia_batch_id_eq(&a->id, &b->id) && a->body_len == b->body_len &&
           (a->body_len == 0 || memcmp(a->body, b->body, a->body_len) == 0);
}

static uint8_t frame[RABIA_FRAME_HEADER + 80000];
static uint8_t frame2[RABIA_FRAME_HEADER + 80000];

static void put32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void reseal(uint8_t *f, size_t len)
{
    put32le(f + 12, rabia_frame_checksum(f, len));
}

/* Encode m into frame[]; returns the length (checks it succeeded). */
static size_t enc(const struct rabia_msg *m)
{
    int n = rabia_msg_encode(m, frame, sizeof frame);
    CHECK(n > 0);
    return n > 0 ? (size_t)n : 0;
}

/* Encode a message, poke one payload byte and reseal: decode must fail with
 * `want` (the poke is a range violation, not corruption). */
static void poke_expect(const struct rabia_msg *m, size_t payload_off, uint8_t v, int want)
{
    size_t n = enc(m);
    struct rabia_msg d;
    CHECK(n > RABIA_FRAME_HEADER + payload_off);
    frame[RABIA_FRAME_HEADER + payload_off] = v;
    reseal(frame, n);
    CHECK_EQ(rabia_msg_decode(frame, n, &d), want);
}

/* ---- tests ---- */

static void test_roundtrip_all_types(void)
{
    for (size_t t = 0; t < NTYPES; t++) {
        for (int i = 0; i < 300; i++) {
            struct rabia_msg m = random_msg(all_types[t]), d;
            size_t sz = rabia_msg_encoded_size(&m);
            CHECK(sz >= RABIA_FRAME_HEADER);
            CHECK_EQ(rabia_msg_encode(&m, frame, sz - 1), -ENOSPC);
            int n = rabia_msg_encode(&m, frame, sz);
            CHECK_EQ(n, (long long)sz);
            if (n <= 0)
                continue;
            size_t flen = 0;
            CHECK_EQ(rabia_frame_peek(frame, sz, &flen), 0);
            CHECK_EQ(flen, sz);
            CHECK_EQ(rabia_msg_decode(frame, sz, &d), 0);
            CHECK(msg_eq(&m, &d));
            if (d.body_len)
                CHECK(d.body >= frame + RABIA_FRAME_HEADER && d.body + d.body_len <= frame + sz);
            /* Canonical: re-encoding the decoded message gives the same bytes. */
            CHECK_EQ(rabia_msg_encode(&d, frame2, sizeof frame2), n);
            CHECK(memcmp(frame, frame2, sz) == 0);
        }
    }
}

/* Unsummed frames (the log's): same bytes but a zero checksum field; they
 * decode only through rabia_msg_decode_unsummed, which takes summed ones
 * too, and still checks everything but the checksum. */
static void test_unsummed(void)
{
    for (size_t t = 0; t < NTYPES; t++) {
        for (int i = 0; i < 50; i++) {
            struct rabia_msg m = random_msg(all_types[t]), d;
            size_t sz = rabia_msg_encoded_size(&m);
            int n = rabia_msg_encode_unsummed(&m, frame, sz);
            CHECK_EQ(n, (long long)sz);
            if (n <= 0)
                continue;
            CHECK_EQ(get32le(frame + 12), 0);
            CHECK_EQ(rabia_msg_encode(&m, frame2, sz), n);
            CHECK(memcmp(frame, frame2, 12) == 0 && memcmp(frame + 16, frame2 + 16, sz - 16) == 0);
            if (rabia_frame_checksum(frame, sz) != 0)
                CHECK_EQ(rabia_msg_decode(frame, sz, &d), RABIA_E_CHECKSUM);
            CHECK_EQ(rabia_msg_decode_unsummed(frame, sz, &d), 0);
            CHECK(msg_eq(&m, &d));
            CHECK_EQ(rabia_msg_decode_unsummed(frame2, sz, &d), 0);
            CHECK_EQ(rabia_msg_decode_unsummed(frame, sz - 1, &d), RABIA_E_MALFORMED);
        }
    }
}

static void test_header_layout(void)
{
    struct rabia_msg m = {.type = RABIA_MSG_CATCHUP, .from = 3, .slot = 0x1122334455667788ull};
    size_t n = enc(&m);
    CHECK_EQ(n, 24);
    const uint8_t want[] = {'R', 'B', 'A', RABIA_PROTOCOL_VERSION, RABIA_MSG_CATCHUP, 3, 0, 0,
                            8, 0, 0, 0};
    CHECK(memcmp(frame, want, sizeof want) == 0);
    const uint8_t slot[] = {0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
    CHECK(memcmp(frame + 16, slot, 8) == 0);
    /* Absent id: PROPOSAL without one is slot + has_id byte only. */
    struct rabia_msg p = {.type = RABIA_MSG_PROPOSAL, .slot = 1};
    CHECK_EQ(rabia_msg_encoded_size(&p), 16 + 9);
    p.has_id = 1;
    CHECK_EQ(rabia_msg_encoded_size(&p), 16 + 9 + 17);
}

static void test_truncation(void)
{
    for (size_t t = 0; t < NTYPES; t++) {
        for (int i = 0; i < 4; i++) {
            struct rabia_msg m = random_msg(all_types[t]), d;
            if (m.body_len > 200) /* keep the quadratic loop short */
                m.body_len = 200;
            if (m.type == RABIA_MSG_SNAP_CHUNK)
                m.u64 = 0;
            size_t n = enc(&m);
            for (size_t k = 0; k < n; k++) {
                size_t flen = 0;
                CHECK(rabia_msg_decode(frame, k, &d) < 0);
                int rc = rabia_frame_peek(frame, k, &flen);
                if (k < RABIA_FRAME_HEADER)
                    CHECK_EQ(rc, -EAGAIN);
                else
                    CHECK(rc == 0 && flen == n && flen > k);
            }
        }
    }
}

static void test_bit_flips(void)
{
    for (size_t t = 0; t < NTYPES; t++) {
        struct rabia_msg m = random_msg(all_types[t]), d;
        if (m.body_len > 64)
            m.body_len = 64;
        if (m.type == RABIA_MSG_SNAP_CHUNK)
            m.u64 = 0;
        size_t n = enc(&m);
        for (size_t bit = 0; bit < n * 8; bit++) {
            frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            int rc = rabia_msg_decode(frame, n, &d);
            CHECK(rc < 0);
            /* Outside magic, version, flags and length the checksum is what
             * catches it. */
            size_t byte = bit / 8;
            if (byte == 4 || byte == 5 || byte >= 12)
                CHECK_EQ(rc, RABIA_E_CHECKSUM);
            frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        CHECK_EQ(rabia_msg_decode(frame, n, &d), 0);
    }
}

static void test_wrong_version(void)
{
    struct rabia_msg m = random_msg(RABIA_MSG_VOTE), d;
    size_t n = enc(&m), flen;
    for (int v = 0; v < 256; v++) {
        if (v == RABIA_PROTOCOL_VERSION || v == RABIA_FRAME_VERSION_XXH64)
            continue;
        frame[3] = (uint8_t)v;
        reseal(frame, n);
        CHECK_EQ(rabia_frame_peek(frame, n, &flen), RABIA_E_VERSION);
        CHECK_EQ(rabia_msg_decode(frame, n, &d), RABIA_E_VERSION);
    }
}

/* Version 3 frames carry XXH3 of the payload seeded by the header; version
 * 2 frames (XXH64 over header and payload) are still read, never written:
 * an older client's frames and log records written before the change. */
static void test_checksum_versions(void)
{
    struct rabia_msg m = random_msg(RABIA_MSG_BATCH), d;
    size_t n = enc(&m);
    CHECK_EQ(frame[3], RABIA_PROTOCOL_VERSION);
    CHECK_EQ(RABIA_PROTOCOL_VERSION, 3);
    uint32_t v3 = (uint32_t)XXH3_64bits_withSeed(frame + 16, n - 16, RABIA_FRAME_SEED ^ rabia_le_get64(frame + 4));
    CHECK_EQ(rabia_le_get32(frame + 12), v3);
    XXH64_state_t st;
    XXH64_reset(&st, RABIA_FRAME_SEED);
    XXH64_update(&st, frame + 4, 8);
    XXH64_update(&st, frame + 16, n - 16);
    uint32_t v2 = (uint32_t)XXH64_digest(&st);
    CHECK(v2 != v3);
    /* a version 2 frame with its own checksum: read, the same message */
    frame[3] = RABIA_FRAME_VERSION_XXH64;
    put32le(frame + 12, v2);
    CHECK_EQ(rabia_msg_decode(frame, n, &d), 0);
    CHECK_EQ(d.type, m.type);
    CHECK(rabia_batch_id_eq(&d.id, &m.id) && d.body_len == m.body_len && !memcmp(d.body, m.body, m.body_len));
    /* each version's checksum is wrong for the other */
    put32le(frame + 12, v3);
    CHECK_EQ(rabia_msg_decode(frame, n, &d), RABIA_E_CHECKSUM);
    frame[3] = RABIA_PROTOCOL_VERSION;
    put32le(frame + 12, v2);
    CHECK_EQ(rabia_msg_decode(frame, n, &d), RABIA_E_CHECKSUM);
    /* the header is in the version 3 sum: another sender, another sum */
    put32le(frame + 12, v3);
    frame[5] ^= 1;
    CHECK_EQ(rabia_msg_decode(frame, n, &d), RABIA_E_CHECKSUM);
    frame[5] ^= 1;
    /* a log record's frame (unsummed) written by version 2: replayed */
    frame[3] = RABIA_FRAME_VERSION_XXH64;
    put32le(frame + 12, 0);
    CHECK_EQ(rabia_msg_decode_unsummed(frame, n, &d), 0);
    CHECK(rabia_batch_id_eq(&d.id, &m.id) && d.body_len == m.body_len && !memcmp(d.body, m.body, m.body_len));
    /* the long-input dispatch gives XXH3's value */
    static uint8_t big[70000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 131 + 7);
    for (size_t len = 0; len <= sizeof big; len = len < 2048 ? len + 97 : len * 3)
        CHECK_EQ(rabia_xxh3(big, len, 12345), XXH3_64bits_withSeed(big, len, 12345));
}

static void test_bad_magic_and_flags(void)
{
    struct rabia_msg m = random_msg(RABIA_MSG_STATE), d;
    size_t n = enc(&m), flen;
    frame[1] = 'X';
    reseal(frame, n);
    CHECK_EQ(rabia_frame_peek(frame, n, &flen), RABIA_E_MALFORMED);
    CHECK_EQ(rabia_msg_decode(frame, n, &d), RABIA_E_MALFORMED);
    n = enc(&m);
    frame[7] = 0x80;
    reseal(frame, n);
    CHECK_EQ(rabia_frame_peek(frame, n, &flen), RABIA_E_MALFORMED);
    CHECK_EQ(rabia_msg_decode(frame, n, &d), RABIA_E_MALFORMED);
}

static void test_unknown_type(void)
{
    struct rabia_msg m = {.type = RABIA_MSG_STATUS_REQ}, d;
    size_t n = enc(&m);
    int unknown = 0;
    for (int t = 0; t < 256; t++) {
        if (strcmp(rabia_msg_type_name((uint8_t)t), "UNKNOWN") != 0)
            continue;
        unknown++;
        frame[4] = (uint8_t)t;
        reseal(frame, n);
        CHECK_EQ(rabia_msg_decode(frame, n, &d), RABIA_E_TYPE);
        struct rabia_msg e = {.type = (uint8_t)t};
        CHECK_EQ(rabia_msg_encode(&e, frame2, sizeof frame2), RABIA_E_TYPE);
        CHECK_EQ(rabia_msg_encoded_size(&e), 0);
    }
    CHECK_EQ(unknown, 256 - (int)NTYPES);
}

static void test_trailing_bytes(void)
{
    for (size_t t = 0; t < NTYPES; t++) {
        struct rabia_msg m = random_msg(all_types[t]), d;
        size_t n = enc(&m);
        frame[n] = 0;
        /* A buffer longer than the frame it holds. */
        CHECK_EQ(rabia_msg_decode(frame, n + 1, &d), RABIA_E_MALFORMED);
        /* A frame whose payload has one byte more than its fields. */
        put32le(frame + 8, (uint32_t)(n + 1 - RABIA_FRAME_HEADER));
        reseal(frame, n + 1);
        CHECK_EQ(rabia_msg_decode(frame, n + 1, &d), RABIA_E_MALFORMED);
        /* One byte less (cuts the last field, which is then short). */
        if (n == RABIA_FRAME_HEADER)
            continue; /* empty payload: nothing to cut */
        put32le(frame + 8, (uint32_t)(n - 1 - RABIA_FRAME_HEADER));
        reseal(frame, n - 1);
        CHECK_EQ(rabia_msg_decode(frame, n - 1, &d), RABIA_E_MALFORMED);
    }
}

static void test_oversize(void)
{
    uint8_t h[RABIA_FRAME_HEADER] = {'R', 'B', 'A', RABIA_PROTOCOL_VERSION, RABIA_MSG_STATUS};
    size_t flen = 0;
    struct rabia_msg d;
    put32le(h + 8, RABIA_MAX_FRAME - RABIA_FRAME_HEADER);
    CHECK_EQ(rabia_frame_peek(h, sizeof h, &flen), 0);
    CHECK_EQ(flen, RABIA_MAX_FRAME);
    put32le(h + 8, RABIA_MAX_FRAME - RABIA_FRAME_HEADER + 1);
    CHECK_EQ(rabia_frame_peek(h, sizeof h, &flen), RABIA_E_TOOBIG);
    CHECK_EQ(rabia_msg_decode(h, sizeof h, &d), RABIA_E_TOOBIG);
    put32le(h + 8, UINT32_MAX);
    CHECK_EQ(rabia_frame_peek(h, sizeof h, &flen), RABIA_E_TOOBIG);

    /* The encoder checks the size before it touches the body. */
    struct rabia_msg m = {.type = RABIA_MSG_STATUS, .body = body_pool,
                          .body_len = RABIA_MAX_FRAME - RABIA_FRAME_HEADER - 4};
    CHECK_EQ(rabia_msg_encoded_size(&m), RABIA_MAX_FRAME);
    m.body_len++;
    CHECK_EQ(rabia_msg_encoded_size(&m), 0);
    CHECK_EQ(rabia_msg_encode(&m, frame, sizeof frame), RABIA_E_TOOBIG);
    m.body_len = UINT32_MAX;
    CHECK_EQ(rabia_msg_encode(&m, frame, sizeof frame), RABIA_E_TOOBIG);
}

static void test_body_len_mismatch(void)
{
    static const uint8_t types[] = {RABIA_MSG_BATCH, RABIA_MSG_DECISION, RABIA_MSG_SNAP_CHUNK,
                                    RABIA_MSG_CLIENT_REQ, RABIA_MSG_CLIENT_REPLY,
                                    RABIA_MSG_STATUS};
    for (size_t t = 0; t < sizeof types; t++) {
        struct rabia_msg m, d;
        do
            m = random_msg(types[t]);
        while (m.type == RABIA_MSG_DECISION && m.value == 0);
        m.body = body_pool;
        m.body_len = 10;
        if (m.type == RABIA_MSG_SNAP_CHUNK)
            m.u64 = 0, m.u64b = 100;
        size_t n = enc(&m);
        size_t lenpos = n - 10 - 4; /* the body is last in every layout */
        const uint32_t bad[] = {0, 9, 11, 1000, UINT32_MAX};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            put32le(frame + lenpos, bad[i]);
            reseal(frame, n);
            CHECK_EQ(rabia_msg_decode(frame, n, &d), RABIA_E_MALFORMED);
        }
        put32le(frame + lenpos, 10);
        reseal(frame, n);
        CHECK_EQ(rabia_msg_decode(frame, n, &d), 0);
    }
}

static void test_field_ranges(void)
{
    struct rabia_msg m = {.type = RABIA_MSG_STATE, .slot = 5, .phase = 1, .value = 1};
    /* STATE payload: slot 0..7, phase 8..9, value 10, has_id 11 */
    poke_expect(&m, 10, 2, RABIA_E_MALFORMED);
    poke_expect(&m, 11, 2, RABIA_E_MALFORMED);
    poke_expect(&m, 8, 0, RABIA_E_MALFORMED); /* phase 0 */
    m.type = RABIA_MSG_VOTE;
    poke_expect(&m, 10, 2, 0); /* "?" is a vote */
    poke_expect(&m, 10, 3, RABIA_E_MALFORMED);
    /* has_id 0 -> 1 without the id bytes: the payload is short */
    poke_expect(&m, 11, 1, RABIA_E_MALFORMED);

    /* DECISION payload: slot 0..7, value 8, has_id 9, [id], body */
    struct rabia_msg dec = {.type = RABIA_MSG_DECISION, .slot = 9};
    poke_expect(&dec, 8, 1, RABIA_E_MALFORMED);  /* value 1 without an id */
    poke_expect(&dec, 8, 2, RABIA_E_MALFORMED);
    dec.value = 1, dec.has_id = 1, dec.id.proxy = 2;
    poke_expect(&dec, 8, 0, RABIA_E_MALFORMED);  /* null decision with an id */
    poke_expect(&dec, 10, RABIA_MAX_REPLICAS, RABIA_E_MALFORMED); /* proxy */

    struct rabia_msg rep = {.type = RABIA_MSG_CLIENT_REPLY, .value = RABIA_REPLY_OK};
    poke_expect(&rep, 16, RABIA_REPLY_NOPERM, 0);
    poke_expect(&rep, 16, RABIA_REPLY_NOPERM + 1, RABIA_E_MALFORMED);

    /* SNAP_CHUNK: offset + len must stay within total */
    struct rabia_msg sc = {.type = RABIA_MSG_SNAP_CHUNK, .u64 = 90, .u64b = 100,
                           .body = body_pool, .body_len = 10};
    poke_expect(&sc, 8, 91, RABIA_E_MALFORMED);
    poke_expect(&sc, 15, 0xff, RABIA_E_MALFORMED); /* offset near 2^64 */

    /* `from` must be a replica id in peer messages only. */
    struct rabia_msg f = {.type = RABIA_MSG_FETCH}, d;
    size_t n = enc(&f);
    frame[5] = RABIA_MAX_REPLICAS;
    reseal(frame, n);
    CHECK_EQ(rabia_msg_decode(frame, n, &d), RABIA_E_MALFORMED);
    struct rabia_msg cr = {.type = RABIA_MSG_CLIENT_REQ, .from = 200};
    n = enc(&cr);
    CHECK_EQ(rabia_msg_decode(frame, n, &d), 0);
    CHECK_EQ(d.from, 200);
}

static void test_encode_rejects(void)
{
    struct rabia_msg m;
#define REJECT(...)                                                            \
    do {                                                                       \
        m = (struct rabia_msg){__VA_ARGS__};                                   \
        CHECK(rabia_msg_encode(&m, frame, sizeof frame) < 0);                  \
        CHECK_EQ(rabia_msg_encoded_size(&m), 0);                               \
    } while (0)
    REJECT(.type = RABIA_MSG_STATE, .phase = 0);
    REJECT(.type = RABIA_MSG_STATE, .phase = 1, .value = 2);
    REJECT(.type = RABIA_MSG_VOTE, .phase = 1, .value = 3);
    REJECT(.type = RABIA_MSG_PROPOSAL, .has_id = 2);
    REJECT(.type = RABIA_MSG_PROPOSAL, .id.seq = 4); /* id without has_id */
    REJECT(.type = RABIA_MSG_DECISION, .value = 1);
    REJECT(.type = RABIA_MSG_DECISION, .has_id = 1);
    REJECT(.type = RABIA_MSG_DECISION, .body = body_pool, .body_len = 1);
    REJECT(.type = RABIA_MSG_FETCH, .u64 = 1);      /* field FETCH lacks */
    REJECT(.type = RABIA_MSG_CATCHUP, .has_id = 1);
    REJECT(.type = RABIA_MSG_CATCHUP, .id.proxy = 1);
    REJECT(.type = RABIA_MSG_BATCH, .phase = 1);
    REJECT(.type = RABIA_MSG_STATUS_REQ, .body = body_pool, .body_len = 1);
    REJECT(.type = RABIA_MSG_STATUS, .body_len = 1); /* NULL body */
    REJECT(.type = RABIA_MSG_FETCH, .from = RABIA_MAX_REPLICAS);
    REJECT(.type = RABIA_MSG_BATCH, .id.proxy = RABIA_MAX_REPLICAS);
    REJECT(.type = RABIA_MSG_CLIENT_REPLY, .value = RABIA_REPLY_NOPERM + 1);
    REJECT(.type = RABIA_MSG_SNAP_CHUNK, .u64 = 1, .u64b = 10, .body = body_pool,
           .body_len = 10);
    REJECT(.type = RABIA_MSG_BACKUP_CHUNK, .u64 = 1, .u64b = 10, .body = body_pool,
           .body_len = 10);
    REJECT(.type = RABIA_MSG_BACKUP_CHUNK, .value = 3);
    REJECT(.type = RABIA_MSG_BACKUP_CHUNK, .value = 2, .u64b = 1);
    REJECT(.type = RABIA_MSG_BACKUP_CHUNK, .value = 1, .slot = 5); /* a refusal names no slot */
    REJECT(.type = RABIA_MSG_BACKUP_REQ, .u64 = 1);
#undef REJECT
    /* BATCH always carries its id, whatever has_id says; it decodes as 1. */
    struct rabia_msg b = {.type = RABIA_MSG_BATCH, .id = {.incarnation = 2, .seq = 3, .proxy = 1}}, d;
    size_t n = enc(&b);
    CHECK_EQ(rabia_msg_decode(frame, n, &d), 0);
    CHECK_EQ(d.has_id, 1);
    CHECK(rabia_batch_id_eq(&b.id, &d.id));
}

static void test_names_and_errors(void)
{
    CHECK(strcmp(rabia_msg_type_name(RABIA_MSG_VOTE), "VOTE") == 0);
    CHECK(strcmp(rabia_msg_type_name(RABIA_MSG_CLIENT_REPLY), "CLIENT_REPLY") == 0);
    CHECK(strcmp(rabia_msg_type_name(0), "UNKNOWN") == 0);
    for (size_t t = 0; t < NTYPES; t++)
        CHECK(strcmp(rabia_msg_type_name(all_types[t]), "UNKNOWN") != 0);
    CHECK(strcmp(rabia_strerror(RABIA_E_CHECKSUM), "frame checksum mismatch") == 0);
    for (int e = RABIA_E_INVARIANT; e <= RABIA_E_CHECKSUM; e++)
        CHECK(strcmp(rabia_strerror(e), "unknown error") != 0);
    CHECK(strcmp(rabia_strerror(-ENOMEM), strerror(ENOMEM)) == 0);
    CHECK(rabia_strerror(12345) != NULL);
}

/* ---- batch bodies ---- */

static struct rabia_req random_req(void)
{
    struct rabia_req r = {.client_id = rnd_u64(), .seq = rnd_u64(), .ack = rnd_u64()};
    r.op_len = (uint32_t)(rnd_below(3) == 0 ? 0 : rnd_below(200));
    r.op = r.op_len ? body_pool + rnd_below(sizeof body_pool - r.op_len) : NULL;
    return r;
}

static bool req_eq(const struct rabia_req *a, const struct rabia_req *b)
{
    return a->client_id == b->client_id && a->seq == b->seq && a->ack == b->ack &&
           a->op_len == b->op_len && (a->op_len == 0 || memcmp(a->op, b->op, a->op_len) == 0);
}

static void test_batch_roundtrip(void)
{
    struct rabia_buf body = {0};
    struct rabia_req reqs[64], r;
    for (int round = 0; round < 50; round++) {
        uint32_t n = (uint32_t)rnd_below(64);
        CHECK_EQ(rabia_batch_init(&body), 0);
        CHECK_EQ(body.len, RABIA_BATCH_HEADER);
        for (uint32_t i = 0; i < n; i++) {
            reqs[i] = random_req();
            CHECK_EQ(rabia_batch_append(&body, &reqs[i]), 0);
        }
        CHECK_EQ(rabia_batch_count(body.data, body.len), n);
        CHECK_EQ(rabia_batch_validate(body.data, body.len), 0);
        struct rabia_batch_iter it;
        CHECK_EQ(rabia_batch_iter_init(&it, body.data, body.len), 0);
        for (uint32_t i = 0; i < n; i++) {
            CHECK_EQ(rabia_batch_iter_next(&it, &r), 1);
            CHECK(req_eq(&r, &reqs[i]));
        }
        CHECK_EQ(rabia_batch_iter_next(&it, &r), 0);
        CHECK_EQ(rabia_batch_iter_next(&it, &r), 0);

        /* Carried in a BATCH message, it comes out intact. */
        struct rabia_msg m = {.type = RABIA_MSG_BATCH, .has_id = 1,
                              .id = {.proxy = 1, .incarnation = 7, .seq = (uint64_t)round},
                              .body = body.data, .body_len = (uint32_t)body.len}, d;
        size_t fl = enc(&m);
        CHECK_EQ(rabia_msg_decode(frame, fl, &d), 0);
        CHECK(msg_eq(&m, &d));
        CHECK_EQ(rabia_batch_validate(d.body, d.body_len), 0);
    }
    rabia_buf_free(&body);
}

static void test_batch_bad(void)
{
    struct rabia_buf body = {0};
    struct rabia_batch_iter it;
    struct rabia_req r;
    CHECK_EQ(rabia_batch_init(&body), 0);
    for (int i = 0; i < 5; i++) {
        r = random_req();
        if (i == 2)
            r.op_len = 0, r.op = NULL;
        CHECK_EQ(rabia_batch_append(&body, &r), 0);
    }
    uint8_t *b = body.data;
    size_t len = body.len;

    /* Every truncation. */
    for (size_t k = 0; k < len; k++)
        CHECK_EQ(rabia_batch_validate(b, k), RABIA_E_MALFORMED);
    CHECK_EQ(rabia_batch_validate(NULL, 0), RABIA_E_MALFORMED);
    CHECK_EQ(rabia_batch_count(b, 3), 0);

    /* Trailing bytes. */
    CHECK_EQ(rabia_buf_put_u8(&body, 0), 0);
    b = body.data;
    CHECK_EQ(rabia_batch_validate(b, len + 1), RABIA_E_MALFORMED);

    /* Count disagreeing with the requests. */
    b[0] = 4;
    CHECK_EQ(rabia_batch_validate(b, len), RABIA_E_MALFORMED); /* trailing */
    b[0] = 6;
    CHECK_EQ(rabia_batch_validate(b, len), RABIA_E_MALFORMED); /* short */
    put32le(b, UINT32_MAX); /* cannot fit: refused before iterating */
    CHECK_EQ(rabia_batch_iter_init(&it, b, len), RABIA_E_MALFORMED);
    put32le(b, 5);
    CHECK_EQ(rabia_batch_validate(b, len), 0);

    /* A garbled op_len in the first request. */
    uint8_t saved[4];
    memcpy(saved, b + RABIA_BATCH_HEADER + 24, 4);
    uint32_t op_len = (uint32_t)saved[0] | (uint32_t)saved[1] << 8 |
                      (uint32_t)saved[2] << 16 | (uint32_t)saved[3] << 24;
    const uint32_t bad[] = {UINT32_MAX, (uint32_t)len, op_len + 1, op_len - 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put32le(b + RABIA_BATCH_HEADER + 24, bad[i]);
        CHECK_EQ(rabia_batch_validate(b, len), RABIA_E_MALFORMED);
    }
    memcpy(b + RABIA_BATCH_HEADER + 24, saved, 4);
    CHECK_EQ(rabia_batch_validate(b, len), 0);

    /* Random garbage: never crashes, and what validates iterates cleanly. */
    uint8_t junk[256];
    for (int round = 0; round < 20000; round++) {
        size_t n = rnd_below(sizeof junk);
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rnd();
        if (n >= 4 && rnd_below(2))
            put32le(junk, (uint32_t)rnd_below(4));
        if (rabia_batch_validate(junk, n) == 0) {
            CHECK_EQ(rabia_batch_iter_init(&it, junk, n), 0);
            uint32_t seen = 0;
            while (rabia_batch_iter_next(&it, &r) == 1)
                seen++;
            CHECK_EQ(seen, rabia_batch_count(junk, n));
        }
    }

    /* Append errors leave the body unchanged. */
    struct rabia_buf fresh = {0};
    r = (struct rabia_req){.op_len = 1};
    CHECK_EQ(rabia_batch_append(&fresh, &r), -EINVAL); /* not initialised */
    CHECK_EQ(rabia_batch_init(&fresh), 0);
    CHECK_EQ(rabia_batch_append(&fresh, &r), -EINVAL); /* NULL op */
    r.op = body_pool;
    r.op_len = RABIA_MAX_BATCH_BODY; /* checked before the op is read */
    CHECK_EQ(rabia_batch_append(&fresh, &r), RABIA_E_TOOBIG);
    CHECK_EQ(fresh.len, RABIA_BATCH_HEADER);
    CHECK_EQ(rabia_batch_count(fresh.data, fresh.len), 0);
    CHECK_EQ(rabia_batch_validate(fresh.data, fresh.len), 0);
    rabia_buf_free(&fresh);
    rabia_buf_free(&body);
}

/* Random bytes and mutated frames: decode never crashes and whatever it
 * accepts re-encodes to the same bytes. */
static void test_random_frames(void)
{
    struct rabia_msg d;
    for (int round = 0; round < 20000; round++) {
        struct rabia_msg m = random_msg(all_types[rnd_below(NTYPES)]);
        if (m.body_len > 100)
            m.body_len = 100;
        if (m.type == RABIA_MSG_SNAP_CHUNK)
            m.u64 = 0;
        size_t n = enc(&m);
        size_t flips = 1 + rnd_below(3);
        for (size_t i = 0; i < flips; i++) /* anywhere after the magic */
            frame[4 + rnd_below(n - 4)] ^= (uint8_t)(1 + rnd_below(255));
        reseal(frame, n);
        if (rabia_msg_decode(frame, n, &d) == 0) {
            CHECK_EQ(rabia_msg_encode(&d, frame2, sizeof frame2), (long long)n);
            CHECK(memcmp(frame, frame2, n) == 0);
        }
    }
}

int main(void)
{
    for (size_t i = 0; i < sizeof body_pool; i++)
        body_pool[i] = (uint8_t)rnd();
    RUN(test_roundtrip_all_types);
    RUN(test_unsummed);
    RUN(test_header_layout);
    RUN(test_truncation);
    RUN(test_bit_flips);
    RUN(test_wrong_version);
    RUN(test_checksum_versions);
    RUN(test_bad_magic_and_flags);
    RUN(test_unknown_type);
    RUN(test_trailing_bytes);
    RUN(test_oversize);
    RUN(test_body_len_mismatch);
    RUN(test_field_ranges);
    RUN(test_encode_rejects);
    RUN(test_names_and_errors);
    RUN(test_batch_roundtrip);
    RUN(test_batch_bad);
    RUN(test_random_frames);
    return CHECK_DONE();
}
