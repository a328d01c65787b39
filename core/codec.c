/* Wire codec: frames for every message type and batch bodies (see codec.h). */
#include "codec.h"
#include "le.h"

#include <errno.h>
#include <string.h>

#define XXH_INLINE_ALL /* streaming state on the stack, inlined for small frames */
#include <xxhash.h>

/* Integers are little-endian at any alignment: core/le.h. */

/* ---- per-type layouts ---- */

/* Field kinds, in the order they appear in a payload. */
enum {
    F_END = 0,
    F_SLOT,  /* u64 slot */
    F_U64,   /* u64 u64 */
    F_U64B,  /* u64 u64b */
    F_PHASE, /* u16 phase */
    F_VALUE, /* u8 value */
    F_ID,    /* id, always present (BATCH) */
    F_OPTID, /* has_id u8, then id if has_id == 1 */
    F_BODY,  /* u32 length + bytes */
};
#define ID_WIRE 17u /* proxy u8 + incarnation u64 + seq u64 */
#define MAX_FIELDS 5

/* Indexed by type; a type with no fields at all (STATUS_REQ) is marked known
 * separately, since its layout is all F_END. */
static const uint8_t layouts[32][MAX_FIELDS] = {
    [RABIA_MSG_BATCH] = {F_ID, F_BODY},
    [RABIA_MSG_PROPOSAL] = {F_SLOT, F_OPTID},
    [RABIA_MSG_STATE] = {F_SLOT, F_PHASE, F_VALUE, F_OPTID},
    [RABIA_MSG_VOTE] = {F_SLOT, F_PHASE, F_VALUE, F_OPTID},
    [RABIA_MSG_DECISION] = {F_SLOT, F_VALUE, F_OPTID, F_BODY},
    [RABIA_MSG_FETCH] = {F_SLOT, F_OPTID}, /* id: the batch wanted, if known */
    [RABIA_MSG_CATCHUP] = {F_SLOT},
    [RABIA_MSG_HORIZON_REQ] = {F_U64},
    [RABIA_MSG_HORIZON] = {F_U64, F_SLOT},
    [RABIA_MSG_SNAP_REQ] = {F_SLOT},
    [RABIA_MSG_SNAP_CHUNK] = {F_SLOT, F_U64, F_U64B, F_BODY},
    [RABIA_MSG_HELLO] = {F_U64, F_U64B, F_VALUE},
    [RABIA_MSG_PEER_AUTH] = {F_U64, F_VALUE, F_BODY},
    [RABIA_MSG_FIRST_START] = {F_U64},
    [RABIA_MSG_CLIENT_REQ] = {F_U64, F_SLOT, F_U64B, F_BODY},
    [RABIA_MSG_CLIENT_REPLY] = {F_U64, F_SLOT, F_VALUE, F_BODY},
    [RABIA_MSG_STATUS_REQ] = {F_END},
    [RABIA_MSG_STATUS] = {F_BODY},
    [RABIA_MSG_CLIENT_AUTH] = {F_BODY},
    [RABIA_MSG_CLIENT_AUTH_REPLY] = {F_VALUE, F_BODY},
    [RABIA_MSG_BACKUP_REQ] = {F_END},
    [RABIA_MSG_BACKUP_CHUNK] = {F_SLOT, F_U64, F_U64B, F_VALUE, F_BODY},
};

static bool type_known(uint8_t t)
{
    return (t >= RABIA_MSG_BATCH && t <= RABIA_MSG_FIRST_START) ||
           (t >= RABIA_MSG_CLIENT_REQ && t <= RABIA_MSG_CLIENT_AUTH_REPLY) || t == RABIA_MSG_BACKUP_REQ ||
           t == RABIA_MSG_BACKUP_CHUNK;
}

/* Replica-to-replica messages name a replica as sender; client messages do
 * not (a client has no replica id), so `from` is only range-checked here. */
static bool peer_type(uint8_t t)
{
    return t >= RABIA_MSG_BATCH && t <= RABIA_MSG_FIRST_START;
}

static bool has_field(uint8_t t, uint8_t f)
{
    for (int i = 0; i < MAX_FIELDS && layouts[t][i] != F_END; i++)
        if (layouts[t][i] == f)
            return true;
    return false;
}

static bool id_zero(const struct rabia_batch_id *id)
{
    return id->proxy == 0 && id->incarnation == 0 && id->seq == 0;
}

/* Range rules shared by encoder and decoder, so that everything the encoder
 * accepts decodes and vice versa. Assumes a known type. */
static int check_ranges(const struct rabia_msg *m)
{
    bool with_id = has_field(m->type, F_ID) ||
                   (has_field(m->type, F_OPTID) && m->has_id == 1);
    if (has_field(m->type, F_OPTID) && m->has_id > 1)
        return RABIA_E_MALFORMED;
    if (peer_type(m->type)) {
        if (m->from >= RABIA_MAX_REPLICAS)
            return RABIA_E_MALFORMED;
        if (with_id && m->id.proxy >= RABIA_MAX_REPLICAS)
            return RABIA_E_MALFORMED;
    }
    switch (m->type) {
    case RABIA_MSG_STATE:
        if (m->value > RABIA_V1 || m->phase < 1)
            return RABIA_E_MALFORMED;
        break;
    case RABIA_MSG_VOTE:
        if (m->value > RABIA_VQ || m->phase < 1)
            return RABIA_E_MALFORMED;
        break;
    case RABIA_MSG_DECISION:
        /* A null decision names no batch; a batch decision must name one. */
        if (m->value > 1 || m->has_id != m->value)
            return RABIA_E_MALFORMED;
        if (m->value == 0 && m->body_len != 0)
            return RABIA_E_MALFORMED;
        break;
    case RABIA_MSG_CLIENT_REPLY:
        if (m->value > RABIA_REPLY_NOPERM)
            return RABIA_E_MALFORMED;
        break;
    case RABIA_MSG_SNAP_CHUNK:
        /* offset + len <= total, written so that it cannot overflow */
        if (m->body_len > m->u64b || m->u64 > m->u64b - m->body_len)
            return RABIA_E_MALFORMED;
        break;
    case RABIA_MSG_BACKUP_CHUNK: /* a chunk as SNAP_CHUNK's, a refusal (no slot, offset, total),
                                    or the request taken (slot, nothing else) */
        if (m->value > 2 || (m->value == 1 && (m->slot || m->u64 || m->u64b)) ||
            (m->value == 2 && (m->u64 || m->u64b || m->body_len)))
            return RABIA_E_MALFORMED;
        if (m->value == 0 && (m->body_len > m->u64b || m->u64 > m->u64b - m->body_len))
            return RABIA_E_MALFORMED;
        break;
    default:
        break;
    }
    return 0;
}

/* Encoder-only check: every nonzero field must be one the type carries,
 * otherwise encoding would drop it without a trace. */
static int check_unused_zero(const struct rabia_msg *m)
{
    uint8_t t = m->type;
    bool optid = has_field(t, F_OPTID);
    if (m->slot && !has_field(t, F_SLOT))
        return RABIA_E_MALFORMED;
    if (m->u64 && !has_field(t, F_U64))
        return RABIA_E_MALFORMED;
    if (m->u64b && !has_field(t, F_U64B))
        return RABIA_E_MALFORMED;
    if (m->phase && !has_field(t, F_PHASE))
        return RABIA_E_MALFORMED;
    if (m->value && !has_field(t, F_VALUE))
        return RABIA_E_MALFORMED;
    if (m->body_len && !has_field(t, F_BODY))
        return RABIA_E_MALFORMED;
    if (m->body_len && !m->body)
        return RABIA_E_MALFORMED;
    if (has_field(t, F_ID)) {
        if (m->has_id > 1) /* BATCH: id always sent; has_id may say so or not */
            return RABIA_E_MALFORMED;
    } else if (optid) {
        if (m->has_id == 0 && !id_zero(&m->id))
            return RABIA_E_MALFORMED;
    } else if (m->has_id || !id_zero(&m->id)) {
        return RABIA_E_MALFORMED;
    }
    return 0;
}

/* Payload size of a valid message. */
static uint64_t payload_size(const struct rabia_msg *m)
{
    uint64_t n = 0;
    for (int i = 0; i < MAX_FIELDS; i++) {
        switch (layouts[m->type][i]) {
        case F_SLOT:
        case F_U64:
        case F_U64B:
            n += 8;
            break;
        case F_PHASE:
            n += 2;
            break;
        case F_VALUE:
            n += 1;
            break;
        case F_ID:
            n += ID_WIRE;
            break;
        case F_OPTID:
            n += 1 + (m->has_id ? ID_WIRE : 0);
            break;
        case F_BODY:
            n += 4 + (uint64_t)m->body_len;
            break;
        default:
            return n;
        }
    }
    return n;
}

/* 0 and *size, or the reason m cannot be encoded. */
static int encodable(const struct rabia_msg *m, size_t *size)
{
    if (!type_known(m->type))
        return RABIA_E_TYPE;
    int rc = check_unused_zero(m);
    if (rc == 0)
        rc = check_ranges(m);
    if (rc)
        return rc;
    uint64_t total = RABIA_FRAME_HEADER + payload_size(m);
    if (total > RABIA_MAX_FRAME)
        return RABIA_E_TOOBIG;
    *size = (size_t)total;
    return 0;
}

size_t rabia_msg_encoded_size(const struct rabia_msg *m)
{
    size_t n = 0;
    return encodable(m, &n) == 0 ? n : 0;
}

#if defined(__x86_64__) && !defined(RABIA_NO_XXH_DISPATCH)
/* libxxhash's XXH3 with the widest vector unit the CPU has (AVX2, AVX-512),
 * chosen at run time (xxh_x86dispatch.h; declared here because the inlined
 * xxhash.h above renames its own symbols). The same value as the inlined
 * SSE2 code, in fewer instructions for long input: a batch body's log
 * record was 180 instructions per SET on every replica at SET -P 16
 * (bench/callgrind.sh). */
uint64_t XXH3_64bits_withSeed_dispatch(const void *input, size_t len, uint64_t seed);
#define LONG_XXH3(p, n, seed) XXH3_64bits_withSeed_dispatch((p), (n), (seed))
#else
#define LONG_XXH3(p, n, seed) XXH3_64bits_withSeed((p), (n), (seed))
#endif

uint64_t rabia_xxh3(const void *p, size_t n, uint64_t seed)
{
    /* short input: the inlined code, no call through the dispatcher */
    return n > 1024 ? LONG_XXH3(p, n, seed) : XXH3_64bits_withSeed(p, n, seed);
}

uint32_t rabia_frame_checksum(const uint8_t *frame, size_t len)
{
    if (len < RABIA_FRAME_HEADER)
        return 0; /* no header to sum: callers never get here */
    if (frame[3] == RABIA_FRAME_VERSION_XXH64) { /* a version 2 frame (an older peer, client or log) */
        XXH64_state_t st;
        XXH64_reset(&st, RABIA_FRAME_SEED);
        XXH64_update(&st, frame + 4, 8); /* type, from, flags, payload_len */
        XXH64_update(&st, frame + RABIA_FRAME_HEADER, len - RABIA_FRAME_HEADER);
        return (uint32_t)XXH64_digest(&st);
    }
    /* Version 3: XXH3 of the payload, seeded by the header's type, from,
     * flags and length (one pass, no streaming state; a different header
     * gives an unrelated hash). XXH64 over every frame was 9-12% of a
     * replica's instructions (bench/results/callgrind.md). */
    return (uint32_t)rabia_xxh3(frame + RABIA_FRAME_HEADER, len - RABIA_FRAME_HEADER,
                                RABIA_FRAME_SEED ^ rabia_le_get64(frame + 4));
}

static uint8_t *put_id(uint8_t *w, const struct rabia_batch_id *id)
{
    w[0] = id->proxy;
    rabia_le_put64(w + 1, id->incarnation);
    rabia_le_put64(w + 9, id->seq);
    return w + ID_WIRE;
}

static int encode(const struct rabia_msg *m, uint8_t *out, size_t cap, bool sum);

int rabia_msg_encode(const struct rabia_msg *m, uint8_t *out, size_t cap)
{
    return encode(m, out, cap, true);
}

int rabia_msg_encode_unsummed(const struct rabia_msg *m, uint8_t *out, size_t cap)
{
    return encode(m, out, cap, false);
}

static int encode(const struct rabia_msg *m, uint8_t *out, size_t cap, bool sum)
{
    size_t size = 0;
    int rc = encodable(m, &size);
    if (rc)
        return rc;
    if (cap < size)
        return -ENOSPC;

    out[0] = 'R';
    out[1] = 'B';
    out[2] = 'A';
    out[3] = RABIA_PROTOCOL_VERSION;
    out[4] = m->type;
    out[5] = m->from;
    rabia_le_put16(out + 6, 0);
    rabia_le_put32(out + 8, (uint32_t)(size - RABIA_FRAME_HEADER));

    uint8_t *w = out + RABIA_FRAME_HEADER;
    for (int i = 0; i < MAX_FIELDS && layouts[m->type][i] != F_END; i++) {
        switch (layouts[m->type][i]) {
        case F_SLOT:
            rabia_le_put64(w, m->slot);
            w += 8;
            break;
        case F_U64:
            rabia_le_put64(w, m->u64);
            w += 8;
            break;
        case F_U64B:
            rabia_le_put64(w, m->u64b);
            w += 8;
            break;
        case F_PHASE:
            rabia_le_put16(w, m->phase);
            w += 2;
            break;
        case F_VALUE:
            *w++ = m->value;
            break;
        case F_ID:
            w = put_id(w, &m->id);
            break;
        case F_OPTID:
            *w++ = m->has_id;
            if (m->has_id)
                w = put_id(w, &m->id);
            break;
        case F_BODY:
            rabia_le_put32(w, m->body_len);
            w += 4;
            if (m->body_len)
                memcpy(w, m->body, m->body_len);
            w += m->body_len;
            break;
        }
    }
    rabia_le_put32(out + 12, sum ? rabia_frame_checksum(out, size) : 0);
    return (int)size;
}

int rabia_frame_peek(const uint8_t *p, size_t len, size_t *frame_len)
{
    if (len < RABIA_FRAME_HEADER)
        return -EAGAIN;
    if (p[0] != 'R' || p[1] != 'B' || p[2] != 'A')
        return RABIA_E_MALFORMED;
    if (p[3] != RABIA_PROTOCOL_VERSION && p[3] != RABIA_FRAME_VERSION_XXH64)
        return RABIA_E_VERSION;
    if (rabia_le_get16(p + 6) != 0)
        return RABIA_E_MALFORMED;
    uint64_t total = (uint64_t)RABIA_FRAME_HEADER + rabia_le_get32(p + 8);
    if (total > RABIA_MAX_FRAME)
        return RABIA_E_TOOBIG;
    *frame_len = (size_t)total;
    return 0;
}

/* Bounds-checked reader: once a read would pass `end`, `bad` sticks and all
 * further reads return zeroes, so the parser checks once at the end. */
struct rd {
    const uint8_t *p, *end;
    bool bad;
};

static const uint8_t *take(struct rd *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *q = r->p;
    r->p += n;
    return q;
}
static uint8_t rd8(struct rd *r)
{
    const uint8_t *q = take(r, 1);
    return q ? q[0] : 0;
}
static uint16_t rd16(struct rd *r)
{
    const uint8_t *q = take(r, 2);
    return q ? rabia_le_get16(q) : 0;
}
static uint32_t rd32(struct rd *r)
{
    const uint8_t *q = take(r, 4);
    return q ? rabia_le_get32(q) : 0;
}
static uint64_t rd64(struct rd *r)
{
    const uint8_t *q = take(r, 8);
    return q ? rabia_le_get64(q) : 0;
}
static void rd_id(struct rd *r, struct rabia_batch_id *id)
{
    id->proxy = rd8(r);
    id->incarnation = rd64(r);
    id->seq = rd64(r);
}

static int decode(const uint8_t *p, size_t len, struct rabia_msg *out, bool sum);

int rabia_msg_decode(const uint8_t *p, size_t len, struct rabia_msg *out)
{
    return decode(p, len, out, true);
}

int rabia_msg_decode_unsummed(const uint8_t *p, size_t len, struct rabia_msg *out)
{
    return decode(p, len, out, false);
}

static int decode(const uint8_t *p, size_t len, struct rabia_msg *out, bool sum)
{
    struct rabia_msg m;
    memset(&m, 0, sizeof m);
    memset(out, 0, sizeof *out);

    size_t flen = 0;
    int rc = rabia_frame_peek(p, len, &flen);
    if (rc == -EAGAIN)
        return RABIA_E_MALFORMED; /* not even a header: not a frame */
    if (rc)
        return rc;
    if (flen != len)
        return RABIA_E_MALFORMED;
    if (sum && rabia_le_get32(p + 12) != rabia_frame_checksum(p, len))
        return RABIA_E_CHECKSUM;
    m.type = p[4];
    m.from = p[5];
    if (!type_known(m.type))
        return RABIA_E_TYPE;

    struct rd r = {p + RABIA_FRAME_HEADER, p + len, false};
    for (int i = 0; i < MAX_FIELDS && layouts[m.type][i] != F_END; i++) {
        switch (layouts[m.type][i]) {
        case F_SLOT:
            m.slot = rd64(&r);
            break;
        case F_U64:
            m.u64 = rd64(&r);
            break;
        case F_U64B:
            m.u64b = rd64(&r);
            break;
        case F_PHASE:
            m.phase = rd16(&r);
            break;
        case F_VALUE:
            m.value = rd8(&r);
            break;
        case F_ID:
            m.has_id = 1;
            rd_id(&r, &m.id);
            break;
        case F_OPTID:
            m.has_id = rd8(&r);
            if (m.has_id > 1)
                return RABIA_E_MALFORMED;
            if (m.has_id)
                rd_id(&r, &m.id);
            break;
        case F_BODY:
            m.body_len = rd32(&r);
            m.body = take(&r, m.body_len);
            if (m.body_len == 0)
                m.body = NULL; /* same as an encoder's "no body" */
            break;
        }
    }
    if (r.bad || r.p != r.end)
        return RABIA_E_MALFORMED; /* truncated, or bytes left over */
    rc = check_ranges(&m);
    if (rc)
        return rc;
    *out = m;
    return 0;
}

const char *rabia_msg_type_name(uint8_t type)
{
    switch (type) {
    case RABIA_MSG_BATCH: return "BATCH";
    case RABIA_MSG_PROPOSAL: return "PROPOSAL";
    case RABIA_MSG_STATE: return "STATE";
    case RABIA_MSG_VOTE: return "VOTE";
    case RABIA_MSG_DECISION: return "DECISION";
    case RABIA_MSG_FETCH: return "FETCH";
    case RABIA_MSG_CATCHUP: return "CATCHUP";
    case RABIA_MSG_HORIZON_REQ: return "HORIZON_REQ";
    case RABIA_MSG_HORIZON: return "HORIZON";
    case RABIA_MSG_SNAP_REQ: return "SNAP_REQ";
    case RABIA_MSG_SNAP_CHUNK: return "SNAP_CHUNK";
    case RABIA_MSG_HELLO: return "HELLO";
    case RABIA_MSG_CLIENT_REQ: return "CLIENT_REQ";
    case RABIA_MSG_CLIENT_REPLY: return "CLIENT_REPLY";
    case RABIA_MSG_STATUS_REQ: return "STATUS_REQ";
    case RABIA_MSG_STATUS: return "STATUS";
    case RABIA_MSG_PEER_AUTH: return "PEER_AUTH";
    case RABIA_MSG_FIRST_START: return "FIRST_START";
    case RABIA_MSG_CLIENT_AUTH: return "CLIENT_AUTH";
    case RABIA_MSG_CLIENT_AUTH_REPLY: return "CLIENT_AUTH_REPLY";
    case RABIA_MSG_BACKUP_REQ: return "BACKUP_REQ";
    case RABIA_MSG_BACKUP_CHUNK: return "BACKUP_CHUNK";
    default: return "UNKNOWN";
    }
}

/* ---- batch bodies ---- */

int rabia_batch_init(struct rabia_buf *body)
{
    rabia_buf_clear(body);
    if (rabia_buf_reserve(body, RABIA_BATCH_HEADER))
        return -ENOMEM;
    rabia_buf_put_u32(body, 0);
    rabia_buf_put_u64(body, 0); /* time, set when the batch is cut */
    return 0;
}

void rabia_batch_set_time(struct rabia_buf *body, uint64_t time_ms)
{
    if (body->len < RABIA_BATCH_HEADER) /* not a body: nothing to stamp */
        return;
    rabia_le_put64(body->data + 4, time_ms);
}

uint64_t rabia_batch_time(const uint8_t *body, size_t len)
{
    return len < RABIA_BATCH_HEADER ? 0 : rabia_le_get64(body + 4);
}

int rabia_batch_append(struct rabia_buf *body, const struct rabia_req *r)
{
    if (body->len < RABIA_BATCH_HEADER || !body->data || (r->op_len && !r->op))
        return -EINVAL;
    uint32_t count = rabia_le_get32(body->data);
    if (count == UINT32_MAX)
        return RABIA_E_TOOBIG;
    /* Check the size before writing anything so a refused request leaves
     * the body as it was (the proxy then closes the batch and retries). */
    if (body->len > RABIA_MAX_BATCH_BODY ||
        (uint64_t)RABIA_BATCH_REQ_HEADER + r->op_len > RABIA_MAX_BATCH_BODY - body->len)
        return RABIA_E_TOOBIG;
    int rc = rabia_buf_reserve(body, RABIA_BATCH_REQ_HEADER + (size_t)r->op_len);
    if (rc)
        return rc;
    /* Cannot fail after the reserve above. */
    rabia_buf_put_u64(body, r->client_id);
    rabia_buf_put_u64(body, r->seq);
    rabia_buf_put_u64(body, r->ack);
    rabia_buf_put_u32(body, r->op_len);
    if (r->op_len)
        rabia_buf_append(body, r->op, r->op_len);
    rabia_le_put32(body->data, count + 1);
    return 0;
}

uint32_t rabia_batch_count(const uint8_t *body, size_t len)
{
    return len < 4 ? 0 : rabia_le_get32(body);
}

int rabia_batch_iter_init(struct rabia_batch_iter *it, const uint8_t *body, size_t len)
{
    it->p = it->end = body;
    it->left = 0;
    if (len < RABIA_BATCH_HEADER)
        return RABIA_E_MALFORMED;
    uint32_t count = rabia_le_get32(body);
    /* Every request needs at least its fixed header: reject a count that
     * cannot fit before anyone sizes an allocation from it. */
    if ((uint64_t)count * RABIA_BATCH_REQ_HEADER > len - RABIA_BATCH_HEADER)
        return RABIA_E_MALFORMED;
    it->p = body + RABIA_BATCH_HEADER;
    it->end = body + len;
    it->left = count;
    return 0;
}

int rabia_batch_iter_next(struct rabia_batch_iter *it, struct rabia_req *out)
{
    if (it->left == 0)
        return it->p == it->end ? 0 : RABIA_E_MALFORMED;
    size_t avail = (size_t)(it->end - it->p);
    if (avail < RABIA_BATCH_REQ_HEADER)
        return RABIA_E_MALFORMED;
    uint32_t op_len = rabia_le_get32(it->p + 24);
    if (op_len > avail - RABIA_BATCH_REQ_HEADER)
        return RABIA_E_MALFORMED;
    out->client_id = rabia_le_get64(it->p);
    out->seq = rabia_le_get64(it->p + 8);
    out->ack = rabia_le_get64(it->p + 16);
    out->op_len = op_len;
    out->op = op_len ? it->p + RABIA_BATCH_REQ_HEADER : NULL;
    it->p += RABIA_BATCH_REQ_HEADER + op_len;
    it->left--;
    return 1;
}

int rabia_batch_validate(const uint8_t *body, size_t len)
{
    struct rabia_batch_iter it;
    struct rabia_req r;
    int rc = rabia_batch_iter_init(&it, body, len);
    while (rc == 0 && (rc = rabia_batch_iter_next(&it, &r)) == 1)
        rc = 0;
    return rc;
}
