/* kv/t_hll.c: HyperLogLog (PFADD, PFCOUNT, PFMERGE), kept as Redis 7.0's
 * hyperloglog.c keeps it, byte for byte: an HLL is a string, so GET, DUMP
 * of a backup, COPY and a SET of those bytes into redis-server must mean
 * the same on both sides. tests/kv/difftest.py compares the strings, not
 * only the counts, against redis-server 7.0.15.
 *
 * The string: a 16-byte header ("HYLL", the encoding, 3 unused bytes, the
 * cached cardinality as 8 bytes little endian whose top bit says "stale"),
 * then 16,384 six-bit registers, either dense (12,288 bytes, packed from
 * each byte's least significant bit) or sparse: opcodes ZERO (00xxxxxx: 1-64
 * zero registers), XZERO (01xxxxxx yyyyyyyy: 1-16,384 zero registers) and
 * VAL (1vvvvvxx: 1-4 registers of value 1-32). Redis's sparse form depends
 * on the order registers were set in (a split opcode is merged only with
 * the opcodes just around it), so the update below does exactly what
 * Redis's hllSparseSet does, step for step, rather than re-encoding.
 *
 * A register is set from an element by MurmurHash64A (seed 0xadc83b19):
 * the low 14 bits pick the register, the run of zeroes above them (plus
 * one) is its candidate value. PFCOUNT estimates the cardinality by Otmar
 * Ertl's improved estimator (arXiv:1702.01284) over the registers'
 * histogram, with the same floating point operations in the same order as
 * Redis, so every replica and redis-server give the same integer.
 *
 * Bad input: any string can be SET and then given to these commands, so
 * every read of an opcode is bounded by the string's length. Redis reads
 * the byte after the string (its sds terminator) for an XZERO cut in half
 * at the very end; here such a string is corrupt ("INVALIDOBJ"). Otherwise
 * a corrupt sparse string is detected where Redis detects it: PFADD stops
 * at the first element whose register it cannot find (what earlier elements
 * set stays, as in Redis), PFCOUNT and PFMERGE refuse it whole.
 *
 * Not here: PFDEBUG and PFSELFTEST (Redis's debugging commands), and the
 * hll-sparse-max-bytes setting: the sparse form is promoted past 3,000
 * bytes, Redis's default, on every replica (a per-replica setting would
 * part their states). Cost: PFMERGE into a sparse destination sets the
 * registers one at a time as Redis 7.0 does, but each walk goes on from
 * where the last one found its opcode (struct walk_from) instead of from
 * the first: the same bytes, one pass over the string instead of one per
 * register set. */
#include <math.h>
#include <string.h>

#include "le.h"
#include "internal.h"

#define HLL_P 14
#define HLL_Q (64 - HLL_P) /* bits of the hash above the register index */
#define HLL_REGS (1u << HLL_P)
#define HLL_HDR 16
#define HLL_DENSE_LEN (HLL_HDR + HLL_REGS * 6 / 8)
#define HLL_ENC_DENSE 0
#define HLL_ENC_SPARSE 1
#define HLL_SPARSE_MAX_BYTES 3000 /* Redis's hll-sparse-max-bytes default */
#define HLL_VAL_MAX 32            /* a sparse VAL's largest value */
#define HLL_CARD_STALE 0x80       /* in header byte 15: the cached cardinality is stale */
#define HLL_ALPHA_INF 0.721347520444481703680 /* 0.5 / ln(2) */

#define ERR_NOT_HLL "WRONGTYPE Key is not a valid HyperLogLog string value."
#define ERR_CORRUPT "INVALIDOBJ Corrupted HLL object detected"

_Static_assert(HLL_DENSE_LEN == 12304, "Redis's HLL_DENSE_SIZE");

static struct kv_obj *obj(const struct kv_dent *e) { return e->v.p; }

/* ------------------------------------------------------------------ */
/* Hashing an element. */

static uint64_t murmur64a(const uint8_t *p, size_t n, uint64_t seed)
{
    const uint64_t m = 0xc6a4a7935bd1e995ull;
    const int r = 47;
    uint64_t h = seed ^ ((uint64_t)n * m);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t k = rabia_le_get64(p + i);
        k *= m;
        k ^= k >> r;
        k *= m;
        h ^= k;
        h *= m;
    }
    switch (n & 7) {
    case 7: h ^= (uint64_t)p[i + 6] << 48; /* fall through */
    case 6: h ^= (uint64_t)p[i + 5] << 40; /* fall through */
    case 5: h ^= (uint64_t)p[i + 4] << 32; /* fall through */
    case 4: h ^= (uint64_t)p[i + 3] << 24; /* fall through */
    case 3: h ^= (uint64_t)p[i + 2] << 16; /* fall through */
    case 2: h ^= (uint64_t)p[i + 1] << 8;  /* fall through */
    case 1:
        h ^= (uint64_t)p[i];
        h *= m;
    }
    h ^= h >> r;
    h *= m;
    h ^= h >> r;
    return h;
}

/* The register an element falls in (*reg) and its candidate value: 1 +
 * the zeroes above the index bits, 1..HLL_Q + 1 (Redis's hllPatLen). */
static uint8_t element_value(const uint8_t *p, size_t n, uint32_t *reg)
{
    uint64_t h = murmur64a(p, n, 0xadc83b19ull);
    *reg = (uint32_t)(h & (HLL_REGS - 1));
    h >>= HLL_P;
    h |= 1ull << HLL_Q; /* the run ends by bit HLL_Q at the latest */
    uint8_t v = (uint8_t)(__builtin_ctzll(h) + 1);
    RABIA_ASSERT(*reg < HLL_REGS && v >= 1 && v <= HLL_Q + 1);
    return v;
}

/* ------------------------------------------------------------------ */
/* Dense registers: six bits each, register i from bit 6i of the area,
 * least significant bits first. The area's 12,288 bytes are followed by
 * the string's terminating NUL, which the last register's second byte
 * reads (and its set leaves unchanged), as in Redis. */

static uint8_t dense_get(const uint8_t *r, uint32_t i)
{
    RABIA_ASSERT(i < HLL_REGS);
    uint32_t byte = i * 6 / 8, fb = i * 6 & 7;
    return (uint8_t)(((unsigned)r[byte] >> fb | (unsigned)r[byte + 1] << (8 - fb)) & 63);
}

static void dense_put(uint8_t *r, uint32_t i, uint8_t v)
{
    RABIA_ASSERT(i < HLL_REGS && v <= 63);
    uint32_t byte = i * 6 / 8, fb = i * 6 & 7, fb8 = 8 - fb;
    r[byte] = (uint8_t)((r[byte] & ~(63u << fb)) | (unsigned)v << fb);
    r[byte + 1] = (uint8_t)((r[byte + 1] & ~(63u >> fb8)) | (unsigned)v >> fb8);
}

/* Raise register i of a dense HLL to v: 1 if it was lower. */
static int dense_set(uint8_t *r, uint32_t i, uint8_t v)
{
    if (dense_get(r, i) >= v)
        return 0;
    dense_put(r, i, v);
    return 1;
}

/* ------------------------------------------------------------------ */
/* Sparse opcodes. */

static bool op_is_zero(uint8_t b) { return (b & 0xc0) == 0; }
static bool op_is_xzero(uint8_t b) { return (b & 0xc0) == 0x40; }
static bool op_is_val(uint8_t b) { return (b & 0x80) != 0; }
static uint8_t op_val_value(uint8_t b) { return (uint8_t)(((b >> 2) & 0x1f) + 1); }
static uint32_t op_val_len(uint8_t b) { return (b & 3u) + 1; }

static uint8_t op_val(uint32_t value, uint32_t len)
{
    RABIA_ASSERT(value >= 1 && value <= HLL_VAL_MAX && len >= 1 && len <= 4);
    return (uint8_t)(0x80 | (value - 1) << 2 | (len - 1));
}

/* The opcode at s[at] (at < end): its registers (*span) and bytes; 0 when
 * it is an XZERO cut off by the end. */
static uint32_t op_decode(const uint8_t *s, size_t at, size_t end, uint32_t *span)
{
    RABIA_ASSERT(at < end);
    uint8_t b = s[at];
    if (op_is_zero(b)) {
        *span = (b & 0x3fu) + 1;
        return 1;
    }
    if (op_is_val(b)) {
        *span = op_val_len(b);
        return 1;
    }
    if (at + 1 >= end)
        return 0;
    *span = (((b & 0x3fu) << 8) | s[at + 1]) + 1;
    return 2;
}

/* A run of len zero registers as one opcode at out: ZERO up to 64, else
 * XZERO; its bytes. */
static int put_zeros(uint8_t *out, uint32_t len)
{
    RABIA_ASSERT(len >= 1 && len <= HLL_REGS);
    if (len > 64) {
        out[0] = (uint8_t)(0x40 | (len - 1) >> 8);
        out[1] = (uint8_t)((len - 1) & 0xff);
        return 2;
    }
    out[0] = (uint8_t)(len - 1);
    return 1;
}

/* The registers of a sparse HLL (bytes HLL_HDR .. len of s) raised into
 * r (r[i] = max(r[i], register i)); false when its opcodes do not cover
 * exactly HLL_REGS registers (corrupt: r is then partly raised). */
static bool sparse_max(const uint8_t *s, size_t len, uint8_t *r)
{
    uint32_t i = 0, span;
    for (size_t at = HLL_HDR; at < len;) {
        uint32_t n = op_decode(s, at, len, &span);
        if (!n || span > HLL_REGS - i)
            return false;
        if (op_is_val(s[at])) {
            uint8_t v = op_val_value(s[at]);
            for (uint32_t k = 0; k < span; k++)
                if (r[i + k] < v)
                    r[i + k] = v;
        }
        i += span;
        at += n;
    }
    return i == HLL_REGS;
}

/* ------------------------------------------------------------------ */
/* The object. */

/* A new empty HLL: sparse, XZERO opcodes covering every register (Redis's
 * createHLLObject); the cached cardinality 0 and fresh. */
static struct kv_obj *hll_new(struct kv_store *s)
{
    _Static_assert(HLL_REGS <= 16384, "one XZERO covers every register");
    uint8_t b[HLL_HDR + 2] = {'H', 'Y', 'L', 'L', HLL_ENC_SPARSE};
    int n = put_zeros(b + HLL_HDR, HLL_REGS);
    RABIA_ASSERT(n == 2);
    return kv_str_new(s, b, sizeof b);
}

/* e's value is an HLL (Redis's isHLLObjectOrReply: a string, the magic, a
 * known encoding, a dense one of exactly its size); else the error is
 * replied and false returned. */
static bool hll_ok(struct kv_ctx *c, const struct kv_dent *e)
{
    RABIA_ASSERT(e);
    if (!kv_type_ok(c, e, KV_STRING))
        return false;
    const struct kv_obj *o = obj(e);
    if (o->len < HLL_HDR || memcmp(o->str, "HYLL", 4) != 0 || o->str[4] > HLL_ENC_SPARSE ||
        (o->str[4] == HLL_ENC_DENSE && o->len != HLL_DENSE_LEN)) {
        kv_reply_err(c, ERR_NOT_HLL);
        return false;
    }
    return true;
}

static void set_stale(struct kv_obj *o) { o->str[15] |= HLL_CARD_STALE; }

/* The object's bytes made exactly n long (grown with zeroes, or cut): the
 * entry is pointed at the result. A cut never fails (the block stays a
 * little larger if the allocator cannot shrink it). 0 or -ENOMEM. */
static int set_len(struct kv_store *s, struct kv_dent *e, size_t n)
{
    struct kv_obj *o = obj(e);
    struct kv_obj *r = kv_str_resize(s, o, n);
    if (r) {
        e->v.p = r;
        return 0;
    }
    if (n > o->len)
        return -ENOMEM;
    o->len = (uint32_t)n;
    o->str[n] = 0;
    return 0;
}

/* Every register of HLL o raised into r[HLL_REGS] (Redis's hllMerge);
 * false: a corrupt sparse HLL (r partly raised). */
static bool hll_max(const struct kv_obj *o, uint8_t *r)
{
    if (o->str[4] == HLL_ENC_SPARSE)
        return sparse_max(o->str, o->len, r);
    RABIA_ASSERT(o->len == HLL_DENSE_LEN);
    for (uint32_t i = 0; i < HLL_REGS; i++) {
        uint8_t v = dense_get(o->str + HLL_HDR, i);
        if (v > r[i])
            r[i] = v;
    }
    return true;
}

/* Every register into r[HLL_REGS]; false: a corrupt sparse HLL. */
static bool hll_registers(const struct kv_obj *o, uint8_t *r)
{
    memset(r, 0, HLL_REGS);
    return hll_max(o, r);
}

/* A sparse HLL made dense in place (Redis's hllSparseToDense: the header
 * kept, cached cardinality included, the encoding byte changed). 1, 0 when
 * it is corrupt (unchanged), or -ENOMEM. */
static int to_dense(struct kv_store *s, struct kv_dent *e)
{
    RABIA_ASSERT(obj(e)->str[4] == HLL_ENC_SPARSE);
    uint8_t r[HLL_REGS];
    if (!hll_registers(obj(e), r))
        return 0;
    int rc = set_len(s, e, HLL_DENSE_LEN);
    if (rc < 0)
        return rc;
    struct kv_obj *o = obj(e);
    o->str[4] = HLL_ENC_DENSE;
    memset(o->str + HLL_HDR, 0, HLL_DENSE_LEN - HLL_HDR);
    for (uint32_t i = 0; i < HLL_REGS; i++)
        if (r[i])
            dense_put(o->str + HLL_HDR, i, r[i]);
    return 1;
}

/* Where a walk for a higher register may start instead of at the first
 * opcode (PFMERGE sets registers in increasing order): the opcode at `at`,
 * whose first register is `first`, and the one before it (`prev`, SIZE_MAX:
 * none). A set changes bytes only from the opcode before the one holding
 * its register on (its merge step starts there and keeps that opcode's
 * start), so that opcode, its first register and everything before it
 * still hold for the next walk. ok false: walk from the start. */
struct walk_from {
    size_t at, prev;
    uint32_t first;
    bool ok;
};

/* Raise register idx of a sparse HLL to v (Redis's hllSparseSet, step for
 * step, so that the bytes come out as Redis's): 1 raised, 0 it was not
 * lower, -1 corrupt (nothing changed), -ENOMEM. Promotes the HLL to dense
 * when v does not fit a VAL or the string would pass
 * HLL_SPARSE_MAX_BYTES. wf (may be NULL): where to start the walk, updated
 * for the next set of a higher register. */
static int sparse_set(struct kv_store *s, struct kv_dent *e, uint32_t idx, uint8_t v, struct walk_from *wf)
{
    RABIA_ASSERT(idx < HLL_REGS && v >= 1 && v <= 63);
    struct kv_obj *o = obj(e);
    RABIA_ASSERT(o->str[4] == HLL_ENC_SPARSE && o->str[o->len] == 0);
    if (v > HLL_VAL_MAX)
        goto promote;
    /* Step 1: the opcode covering idx (at p, its first register `first`),
     * and the one before it (prev; none: SIZE_MAX). Also the opcode before
     * prev and prev's first register (for wf), known once the walk moved. */
    size_t end = o->len, p = HLL_HDR, prev = SIZE_MAX, pprev = SIZE_MAX;
    uint32_t first = 0, span = 0, oplen = 0, prev_first = 0;
    bool moved = true; /* from the start, prev (none) needs nothing */
    if (wf && wf->ok) {
        RABIA_ASSERT(wf->first <= idx && wf->at >= HLL_HDR && wf->at < end);
        p = wf->at;
        first = wf->first;
        prev = wf->prev;
        moved = false;
    }
    while (p < end) {
        if (!(oplen = op_decode(o->str, p, end, &span)))
            return -1;
        if (idx < first + span)
            break;
        pprev = prev;
        prev = p;
        prev_first = first;
        moved = true;
        p += oplen;
        first += span;
    }
    if (p >= end)
        return -1; /* the opcodes end before idx */
    if (wf) {
        if (prev == SIZE_MAX)
            *wf = (struct walk_from){.at = HLL_HDR, .prev = SIZE_MAX, .first = 0, .ok = true};
        else
            *wf = (struct walk_from){.at = prev, .prev = pprev, .first = prev_first, .ok = moved};
    }
    const uint8_t b = o->str[p];
    const size_t next = p + oplen; /* where the opcodes after it start (may be end) */
    /* Step 2: a VAL at v or above needs nothing; a one-register VAL or
     * ZERO is rewritten in place; anything else is split into at most
     * three opcodes (XZERO VAL XZERO: 5 bytes). */
    if (op_is_val(b)) {
        if (op_val_value(b) >= v)
            return 0;
        if (span == 1) {
            o->str[p] = op_val(v, 1);
            goto updated;
        }
    }
    if (op_is_zero(b) && span == 1) {
        o->str[p] = op_val(v, 1);
        goto updated;
    }
    uint8_t seq[5];
    int n = 0;
    const uint32_t last = first + span - 1;
    if (!op_is_val(b)) {
        if (idx != first)
            n += put_zeros(seq + n, idx - first);
        seq[n++] = op_val(v, 1);
        if (idx != last)
            n += put_zeros(seq + n, last - idx);
    } else {
        uint8_t cur = op_val_value(b);
        if (idx != first)
            seq[n++] = op_val(cur, idx - first);
        seq[n++] = op_val(v, 1);
        if (idx != last)
            seq[n++] = op_val(cur, last - idx);
    }
    /* Step 3: the sequence in place of the opcode, what follows moved. */
    const long delta = (long)n - (long)oplen;
    if (delta > 0 && end + (size_t)delta > HLL_SPARSE_MAX_BYTES)
        goto promote;
    if (delta > 0) {
        int rc = set_len(s, e, end + (size_t)delta);
        if (rc < 0)
            return rc;
        o = obj(e);
    }
    if (delta && next < end)
        memmove(o->str + next + delta, o->str + next, end - next);
    memcpy(o->str + p, seq, (size_t)n);
    end = (size_t)((long)end + delta);
    o->str[end] = 0; /* a shorter string is cut once, after step 4 */
updated:
    /* Step 4: adjacent VALs of one value merged, over at most five
     * opcodes from prev (the string's NUL moves down with the bytes). */
    RABIA_ASSERT(end <= o->len && o->str[end] == 0);
    size_t q = prev == SIZE_MAX ? HLL_HDR : prev;
    for (int scan = 5; q < end && scan-- > 0;) {
        uint8_t c0 = o->str[q];
        if (op_is_xzero(c0)) {
            q += 2;
            continue;
        }
        if (op_is_zero(c0)) {
            q++;
            continue;
        }
        if (q + 1 < end && op_is_val(o->str[q + 1]) && op_val_value(c0) == op_val_value(o->str[q + 1])) {
            uint32_t len = op_val_len(c0) + op_val_len(o->str[q + 1]);
            if (len <= 4) {
                o->str[q + 1] = op_val(op_val_value(c0), len);
                memmove(o->str + q, o->str + q + 1, end - q); /* the NUL too */
                end--;
                continue; /* the merged opcode may merge with the next */
            }
        }
        q++;
    }
    if (end < o->len) { /* a split into fewer bytes, or merges */
        (void)set_len(s, e, end);
        o = obj(e);
    }
    set_stale(o);
    return 1;
promote: {
    int rc = to_dense(s, e);
    if (rc <= 0)
        return rc < 0 ? rc : -1;
    rc = dense_set(obj(e)->str + HLL_HDR, idx, v);
    RABIA_ASSERT(rc == 1); /* the sparse form could not hold v there */
    return 1;
}
}

/* Raise register idx of e's HLL to v: 1 raised, 0 not lower, -1 corrupt,
 * -ENOMEM (wf: sparse_set's). */
static int hll_set(struct kv_store *s, struct kv_dent *e, uint32_t idx, uint8_t v, struct walk_from *wf)
{
    if (obj(e)->str[4] == HLL_ENC_DENSE)
        return dense_set(obj(e)->str + HLL_HDR, idx, v);
    return sparse_set(s, e, idx, v, wf);
}

/* ------------------------------------------------------------------ */
/* Estimating the cardinality (Ertl's estimator, as Redis's hllCount: the
 * same operations in the same order, so the same doubles). This file is
 * built with -ffp-contract=off: a fused multiply-add would round
 * differently from redis-server and from a replica built without it. */

static double sigma(double x)
{
    if (x == 1.)
        return INFINITY;
    double zp, y = 1, z = x;
    do {
        x *= x;
        zp = z;
        z += x * y;
        y += y;
    } while (zp != z);
    return z;
}

static double tau(double x)
{
    if (x == 0. || x == 1.)
        return 0.;
    double zp, y = 1.0, z = 1 - x;
    do {
        x = sqrt(x);
        zp = z;
        y *= 0.5;
        z -= pow(1 - x, 2) * y;
    } while (zp != z);
    return z / 3;
}

/* The estimate from the registers r (values above HLL_Q + 1 count in no
 * bucket but the histogram's, as in Redis). */
static uint64_t estimate(const uint8_t *r)
{
    uint32_t h[64] = {0};
    for (uint32_t i = 0; i < HLL_REGS; i++)
        h[r[i] & 63]++;
    double m = HLL_REGS;
    double z = m * tau((m - h[HLL_Q + 1]) / m);
    for (int j = HLL_Q; j >= 1; --j) {
        z += h[j];
        z *= 0.5;
    }
    z += m * sigma(h[0] / m);
    double e = HLL_ALPHA_INF * m * m / z;
    /* Every register at HLL_Q + 1 (only a crafted string) makes z 0 and e
     * infinite: Redis's llroundl and conversion to uint64_t then give
     * 2^63 on x86-64; said here without the undefined conversion. */
    if (!(e < 0x1p63))
        return 1ull << 63;
    double rounded = (double)llroundl(e); /* Redis's E, a double */
    return (uint64_t)rounded;
}

/* ------------------------------------------------------------------ */
/* Commands. */

KV_CMD(pfadd)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    int updated = 0;
    if (!e) {
        struct kv_obj *o = hll_new(c->s);
        if (!o || !(e = kv_add(c, c->argv[1], c->len[1], o)))
            return -ENOMEM;
        updated++;
    } else if (!hll_ok(c, e)) {
        return 0;
    }
    for (uint32_t j = 2; j < c->argc; j++) {
        uint32_t idx;
        uint8_t v = element_value(c->argv[j], c->len[j], &idx);
        int rc = hll_set(c->s, e, idx, v, NULL); /* elements fall anywhere: each walk from the start */
        if (rc == -1) {
            /* Redis keeps what the elements before set, stale cache and
             * all, and replies the error */
            if (updated)
                kv_touch(c, e);
            return kv_reply_err(c, ERR_CORRUPT);
        }
        if (rc < 0)
            return rc;
        updated += rc;
    }
    if (updated) {
        set_stale(obj(e));
        kv_touch(c, e);
    }
    return kv_reply_int(c, updated ? 1 : 0);
}

/* The registers of the HLLs named by arguments 1.. raised into max (zeroed
 * first; an absent key counts as empty), as Redis's hllMerge over them:
 * 1, or 0 after an error reply (not an HLL, corrupt), or -ENOMEM. *dense:
 * one of them is dense. */
static int merge_sources(struct kv_ctx *c, uint8_t *max, bool *dense)
{
    memset(max, 0, HLL_REGS);
    *dense = false;
    for (uint32_t j = 1; j < c->argc; j++) {
        struct kv_dent *e = kv_find_arg(c, j);
        if (!e)
            continue;
        if (!hll_ok(c, e))
            return 0;
        *dense |= obj(e)->str[4] == HLL_ENC_DENSE;
        if (!hll_max(obj(e), max)) {
            int rc = kv_reply_err(c, ERR_CORRUPT);
            return rc < 0 ? rc : 0;
        }
    }
    return 1;
}

KV_CMD(pfcount)
{
    if (c->argc > 2) { /* the cardinality of the union: nothing is cached */
        uint8_t max[HLL_REGS];
        bool dense;
        int rc = merge_sources(c, max, &dense);
        return rc <= 0 ? rc : kv_reply_int(c, (int64_t)estimate(max));
    }
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!e)
        return kv_reply_int(c, 0);
    if (!hll_ok(c, e))
        return 0;
    struct kv_obj *o = obj(e);
    uint64_t card;
    if (!(o->str[15] & HLL_CARD_STALE)) {
        card = rabia_le_get64(o->str + 8);
    } else {
        /* recomputed and cached: the string changes, as in Redis (which
         * replicates it), so WATCH sees it and the state hash takes it */
        uint8_t r[HLL_REGS];
        if (!hll_registers(o, r))
            return kv_reply_err(c, ERR_CORRUPT);
        card = estimate(r);
        rabia_le_put64(o->str + 8, card);
        kv_touch(c, e);
    }
    return kv_reply_int(c, (int64_t)card);
}

KV_CMD(pfmerge)
{
    uint8_t max[HLL_REGS];
    bool use_dense;
    int rc = merge_sources(c, max, &use_dense); /* the destination is a source too */
    if (rc <= 0)
        return rc;
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!e) {
        struct kv_obj *o = hll_new(c->s);
        if (!o || !(e = kv_add(c, c->argv[1], c->len[1], o)))
            return -ENOMEM;
    }
    if (use_dense && obj(e)->str[4] == HLL_ENC_SPARSE) {
        rc = to_dense(c->s, e);
        if (rc < 0)
            return rc;
        RABIA_ASSERT(rc == 1); /* it was merged as a source above */
    }
    struct walk_from wf = {.ok = false}; /* registers in increasing order: each walk goes on from the last */
    for (uint32_t i = 0; i < HLL_REGS; i++) {
        if (!max[i])
            continue;
        rc = hll_set(c->s, e, i, max[i], &wf);
        RABIA_ASSERT(rc != -1); /* it was merged as a source above */
        if (rc < 0)
            return rc;
    }
    set_stale(obj(e));
    kv_touch(c, e);
    return kv_reply_ok(c);
}
