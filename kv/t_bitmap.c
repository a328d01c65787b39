/* kv/t_bitmap.c: the bit commands on strings (SETBIT, GETBIT, BITCOUNT,
 * BITPOS, BITOP), as Redis 7.0's bitops.c answers them: the same argument
 * checks in the same order, the same errors, the same edge cases (BITPOS's
 * zero padding to the right when no end is given, BITCOUNT and BITPOS
 * ranges in bytes or bits); BITFIELD and BITFIELD_RO (feature level 4)
 * at the end of the file.
 *
 * Bit 0 is the most significant bit of byte 0. A string grows (zero
 * filled) to hold the highest bit SETBIT touches, up to 512 MiB
 * (proto-max-bulk-len), as a SETRANGE would.
 *
 * The argument helpers reply the error themselves and return false (the
 * command then returns 0), as kv_arg_i64 and kv_type_ok do. */
#include <string.h>

#include "internal.h"

#define ERR_OFFSET "ERR bit offset is not an integer or out of range"
#define ERR_BIT "ERR bit is not an integer or out of range"

static struct kv_obj *obj(const struct kv_dent *e) { return e->v.p; }

/* Redis's getBitOffsetFromArgument: 0 .. 2^32 - 1 (the bit's byte within
 * proto-max-bulk-len). */
static bool arg_offset(struct kv_ctx *c, uint32_t i, uint64_t *off)
{
    int64_t v;
    if (!kv_parse_i64(c->argv[i], c->len[i], &v) || v < 0 || (uint64_t)(v >> 3) >= KV_STR_MAX) {
        kv_reply_err(c, ERR_OFFSET);
        return false;
    }
    *off = (uint64_t)v;
    return true;
}

static uint64_t popcount(const uint8_t *p, uint64_t n)
{
    uint64_t k = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        k += (uint64_t)__builtin_popcountll(w);
    }
    for (; i < n; i++)
        k += (uint64_t)__builtin_popcount(p[i]);
    return k;
}

/* Redis's redisBitpos: the first bit equal to `bit` in n bytes, counted
 * from the first byte's most significant bit; none: -1 for a 1, n * 8 for
 * a 0 (the zero padding right of the string). */
static int64_t first_bit(const uint8_t *p, uint64_t n, int bit)
{
    for (uint64_t i = 0; i < n; i++) {
        uint8_t b = bit ? p[i] : (uint8_t)~p[i];
        if (b)
            return (int64_t)(i * 8 + (uint64_t)__builtin_clz((unsigned)b) - 24);
    }
    return bit ? -1 : (int64_t)(n * 8);
}

/* Start and end (inclusive) of argv[i], argv[i + 1] over total units, as
 * Redis converts them: negative from the end, clamped; start > end when
 * empty. */
static void clamp_range(int64_t *start, int64_t *end, int64_t total)
{
    if (*start < 0)
        *start += total;
    if (*end < 0)
        *end += total;
    if (*start < 0)
        *start = 0;
    if (*end < 0)
        *end = 0;
    if (*end >= total)
        *end = total - 1;
}

/* A BYTE or BIT unit argument, else a syntax error. */
static bool arg_unit(struct kv_ctx *c, uint32_t i, bool *isbit)
{
    *isbit = kv_arg_is(c, i, "bit");
    if (*isbit || kv_arg_is(c, i, "byte"))
        return true;
    kv_reply_err(c, KV_ERR_SYNTAX);
    return false;
}

/* Bits of a range given in bits that lie outside it in its first and last
 * byte (Redis's first_byte_neg_mask and last_byte_neg_mask); start and end
 * become byte indexes. */
static void bit_range_to_bytes(int64_t *start, int64_t *end, uint8_t *first_neg, uint8_t *last_neg)
{
    *first_neg = (uint8_t)(~((1u << (8 - (*start & 7))) - 1) & 0xFF);
    *last_neg = (uint8_t)((1u << (7 - (*end & 7))) - 1);
    *start >>= 3;
    *end >>= 3;
}

/* The string of key argv[1] (*e; NULL: absent, then created empty) made
 * at least need bytes long, zero filled, as Redis's
 * lookupStringForBitCommand: 0 or -ENOMEM (nothing created then). */
static int grow(struct kv_ctx *c, struct kv_dent **e, uint64_t need)
{
    RABIA_ASSERT(need <= KV_STR_MAX + 8 && (!*e || obj(*e)->type == KV_STRING));
    struct kv_obj *o = *e ? obj(*e) : kv_str_new(c->s, NULL, 0), *r;
    if (!o)
        return -ENOMEM;
    if (need > o->len) {
        if (!(r = kv_str_resize(c->s, o, need))) {
            if (!*e)
                kv_obj_free(c->s, o);
            return -ENOMEM;
        }
        o = r;
        if (*e)
            (*e)->v.p = o;
    }
    if (!*e && !(*e = kv_add(c, c->argv[1], c->len[1], o)))
        return -ENOMEM;
    return 0;
}

KV_CMD(setbit)
{
    uint64_t off;
    int64_t on;
    if (!arg_offset(c, 2, &off))
        return 0;
    if (!kv_parse_i64(c->argv[3], c->len[3], &on) || (on & ~1))
        return kv_reply_err(c, ERR_BIT);
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!kv_type_ok(c, e, KV_STRING))
        return 0;
    uint64_t byte = off >> 3, need = byte + 1;
    RABIA_ASSERT(need <= KV_STR_MAX);
    bool dirty = !e || need > obj(e)->len; /* created or grown */
    int rc = grow(c, &e, need);
    if (rc < 0)
        return rc;
    struct kv_obj *o = obj(e);
    const uint8_t mask = (uint8_t)(1u << (7 - (off & 7)));
    const int was = (o->str[byte] & mask) != 0;
    if (was != (int)on) {
        o->str[byte] = (uint8_t)((o->str[byte] & ~mask) | (on ? mask : 0));
        dirty = true;
    }
    if (dirty)
        kv_touch(c, e);
    return kv_reply_int(c, was);
}

KV_CMD(getbit)
{
    uint64_t off;
    if (!arg_offset(c, 2, &off))
        return 0;
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!e)
        return kv_reply_int(c, 0);
    if (!kv_type_ok(c, e, KV_STRING))
        return 0;
    const struct kv_obj *o = obj(e);
    uint64_t byte = off >> 3;
    int bit = byte < o->len && (o->str[byte] & (1u << (7 - (off & 7))));
    return kv_reply_int(c, bit);
}

KV_CMD(bitcount)
{
    /* the key first: a missing key is 0 whatever the arguments (Redis) */
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!e)
        return kv_reply_int(c, 0);
    if (!kv_type_ok(c, e, KV_STRING))
        return 0;
    const struct kv_obj *o = obj(e);
    int64_t start = 0, end = (int64_t)o->len - 1;
    uint8_t first_neg = 0, last_neg = 0;
    if (c->argc == 4 || c->argc == 5) {
        int64_t total = o->len;
        bool isbit = false;
        if (!kv_arg_i64(c, 2, &start) || !kv_arg_i64(c, 3, &end))
            return 0;
        if (start < 0 && end < 0 && start > end)
            return kv_reply_int(c, 0);
        if (c->argc == 5 && !arg_unit(c, 4, &isbit))
            return 0;
        if (isbit)
            total <<= 3;
        clamp_range(&start, &end, total);
        if (isbit && start <= end)
            bit_range_to_bytes(&start, &end, &first_neg, &last_neg);
    } else if (c->argc != 2) {
        return kv_reply_err(c, KV_ERR_SYNTAX);
    }
    if (start > end)
        return kv_reply_int(c, 0);
    RABIA_ASSERT(start >= 0 && end < (int64_t)o->len);
    uint64_t k = popcount(o->str + start, (uint64_t)(end - start + 1));
    if (first_neg)
        k -= (uint64_t)__builtin_popcount(o->str[start] & first_neg);
    if (last_neg)
        k -= (uint64_t)__builtin_popcount(o->str[end] & last_neg);
    return kv_reply_int(c, (int64_t)k);
}

KV_CMD(bitpos)
{
    int64_t bit;
    if (!kv_arg_i64(c, 2, &bit))
        return 0;
    if (bit != 0 && bit != 1)
        return kv_reply_err(c, "ERR The bit argument must be 1 or 0.");
    /* a missing key is an endless run of zeros */
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!e)
        return kv_reply_int(c, bit ? -1 : 0);
    if (!kv_type_ok(c, e, KV_STRING))
        return 0;
    const struct kv_obj *o = obj(e);
    const uint8_t *p = o->str;
    int64_t start = 0, end = (int64_t)o->len - 1;
    bool end_given = false;
    uint8_t first_neg = 0, last_neg = 0;
    if (c->argc >= 4 && c->argc <= 6) {
        int64_t total = o->len;
        bool isbit = false;
        if (!kv_arg_i64(c, 3, &start))
            return 0;
        if (c->argc == 6 && !arg_unit(c, 5, &isbit))
            return 0;
        if (c->argc >= 5) {
            if (!kv_arg_i64(c, 4, &end))
                return 0;
            end_given = true;
        } else {
            end = isbit ? (total << 3) + 7 : total - 1;
        }
        if (isbit)
            total <<= 3;
        clamp_range(&start, &end, total);
        if (isbit && start <= end)
            bit_range_to_bytes(&start, &end, &first_neg, &last_neg);
    } else if (c->argc != 3) {
        return kv_reply_err(c, KV_ERR_SYNTAX);
    }
    /* an empty range holds neither a 0 nor a 1 */
    if (start > end)
        return kv_reply_int(c, -1);
    RABIA_ASSERT(start >= 0 && end < (int64_t)o->len);
    /* Redis's walk, step for step: the first byte masked, the whole bytes,
     * the last byte masked; `start` and `bytes` move with it, and the
     * answer is relative to where it stopped */
    int64_t bytes = end - start + 1, pos;
    uint8_t t;
    if (first_neg) {
        t = bit ? (uint8_t)(p[start] & ~first_neg) : (uint8_t)(p[start] | first_neg);
        if (last_neg && bytes == 1)
            t = bit ? (uint8_t)(t & ~last_neg) : (uint8_t)(t | last_neg);
        pos = first_bit(&t, 1, (int)bit);
        if (bytes == 1 || (pos != -1 && pos != 8))
            goto result;
        start++;
        bytes--;
    }
    int64_t whole = bytes - (last_neg ? 1 : 0);
    if (whole > 0) {
        pos = first_bit(p + start, (uint64_t)whole, (int)bit);
        if (bytes == whole || (pos != -1 && pos != whole * 8))
            goto result;
        start += whole;
        bytes -= whole;
    }
    t = bit ? (uint8_t)(p[end] & ~last_neg) : (uint8_t)(p[end] | last_neg);
    pos = first_bit(&t, 1, (int)bit);
result:
    /* with an explicit end the padding right of the range does not count */
    if (end_given && bit == 0 && pos == bytes * 8)
        return kv_reply_int(c, -1);
    if (pos != -1)
        pos += start * 8;
    return kv_reply_int(c, pos);
}

KV_CMD(bitop)
{
    enum { AND, OR, XOR, NOT } op;
    if (kv_arg_is(c, 1, "and"))
        op = AND;
    else if (kv_arg_is(c, 1, "or"))
        op = OR;
    else if (kv_arg_is(c, 1, "xor"))
        op = XOR;
    else if (kv_arg_is(c, 1, "not"))
        op = NOT;
    else
        return kv_reply_err(c, KV_ERR_SYNTAX);
    if (op == NOT && c->argc != 4)
        return kv_reply_err(c, "ERR BITOP NOT must be called with a single source key.");
    uint32_t nk = c->argc - 3;
    RABIA_ASSERT(nk >= 1);
    /* every source a string or missing (empty), before anything changes */
    const struct kv_obj **src = kv_alloc(c->s, nk * sizeof *src);
    if (!src)
        return -ENOMEM;
    uint64_t maxlen = 0;
    for (uint32_t j = 0; j < nk; j++) {
        struct kv_dent *e = kv_find_arg(c, 3 + j);
        if (!kv_type_ok(c, e, KV_STRING)) {
            kv_free(c->s, src);
            return 0;
        }
        src[j] = e ? obj(e) : NULL;
        if (src[j] && src[j]->len > maxlen)
            maxlen = src[j]->len;
    }
    struct kv_dent *dst = kv_find_arg(c, 2);
    if (!maxlen) { /* every source empty: the destination goes */
        kv_free(c->s, src);
        if (dst)
            kv_delete(c, dst);
        return kv_reply_int(c, 0);
    }
    struct kv_obj *r = kv_str_new(c->s, NULL, 0), *g = r ? kv_str_resize(c->s, r, maxlen) : NULL;
    if (!g) {
        if (r)
            kv_obj_free(c->s, r);
        kv_free(c->s, src);
        return -ENOMEM;
    }
    r = g;
    /* missing bytes of a shorter source are zeros */
    const struct kv_obj *s0 = src[0];
    for (uint64_t i = 0; i < maxlen; i++) {
        uint8_t b = s0 && i < s0->len ? s0->str[i] : 0;
        r->str[i] = op == NOT ? (uint8_t)~b : b;
    }
    for (uint32_t j = 1; j < nk; j++) {
        const struct kv_obj *sj = src[j];
        uint64_t n = sj ? sj->len : 0;
        if (op == AND) {
            for (uint64_t i = 0; i < n; i++)
                r->str[i] &= sj->str[i];
            memset(r->str + n, 0, maxlen - n);
        } else if (op == OR) {
            for (uint64_t i = 0; i < n; i++)
                r->str[i] |= sj->str[i];
        } else {
            for (uint64_t i = 0; i < n; i++)
                r->str[i] ^= sj->str[i];
        }
    }
    kv_free(c->s, src);
    /* the destination, whatever its type, takes the result without a TTL
     * (Redis's setKey); a source it was is freed only now */
    int rc = kv_set(c, c->argv[2], c->len[2], r, false);
    return rc < 0 ? rc : kv_reply_int(c, (int64_t)maxlen);
}

/* ------------------------------------------------------------------ */
/* BITFIELD and BITFIELD_RO (feature level 4), as Redis 7.0's
 * bitfieldGeneric: every operation parsed (and refused with Redis's
 * error) before any runs; a write grows the string first to the farthest
 * bit any write names (even one that then fails on overflow); GETs past
 * the end read zeroes; the reply has one entry per GET, SET and INCRBY.
 * Integers are read and written most significant bit first, from bit
 * `offset` (bit 0 the top bit of byte 0), as SETBIT numbers them. */

enum bf_op { BF_GET, BF_SET, BF_INCRBY };
enum bf_overflow { BF_WRAP, BF_SAT, BF_FAIL };

struct bf_step {
    uint64_t offset;
    int64_t value; /* SET's value, INCRBY's increment */
    uint8_t bits, sign, op, overflow;
};

#define BF_STACK_STEPS 32 /* operations parsed without an allocation */
#define ERR_BF_TYPE "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."

/* Redis's getBitfieldTypeFromArgument: i1..i64, u1..u63 (the digits read
 * up to a NUL, as Redis's strlen does). */
static bool bf_type(struct kv_ctx *c, uint32_t i, uint8_t *sign, uint8_t *bits)
{
    const uint8_t *p = c->argv[i];
    size_t n = c->len[i];
    int64_t v;
    if (n == 0 || (p[0] != 'i' && p[0] != 'u')) {
        kv_reply_err(c, ERR_BF_TYPE);
        return false;
    }
    const uint8_t *nul = memchr(p + 1, 0, n - 1);
    size_t dn = nul ? (size_t)(nul - (p + 1)) : n - 1;
    *sign = p[0] == 'i';
    if (!kv_parse_i64(p + 1, dn, &v) || v < 1 || v > (*sign ? 64 : 63)) {
        kv_reply_err(c, ERR_BF_TYPE);
        return false;
    }
    *bits = (uint8_t)v;
    return true;
}

/* Redis's getBitOffsetFromArgument with its #N form (N * bits; the product
 * wraps as it does in Redis's 64-bit arithmetic before the range check). */
static bool bf_offset(struct kv_ctx *c, uint32_t i, uint8_t bits, uint64_t *off)
{
    bool hash = c->len[i] > 0 && c->argv[i][0] == '#';
    int64_t v;
    if (!kv_parse_i64(c->argv[i] + hash, c->len[i] - hash, &v)) {
        kv_reply_err(c, ERR_OFFSET);
        return false;
    }
    if (hash)
        v = (int64_t)((uint64_t)v * bits);
    if (v < 0 || (uint64_t)(v >> 3) >= KV_STR_MAX) {
        kv_reply_err(c, ERR_OFFSET);
        return false;
    }
    *off = (uint64_t)v;
    return true;
}

/* The `bits`-wide unsigned integer at bit `off` of p[0..n) (zeroes past n). */
static uint64_t bf_get(const uint8_t *p, uint64_t n, uint64_t off, unsigned bits)
{
    RABIA_ASSERT(bits >= 1 && bits <= 64 && (p || n == 0));
    uint64_t v = 0;
    for (unsigned j = 0; j < bits; j++, off++) {
        uint64_t byte = off >> 3;
        unsigned bit = byte < n ? (p[byte] >> (7 - (off & 7))) & 1u : 0;
        v = v << 1 | bit;
    }
    return v;
}

static int64_t bf_get_signed(const uint8_t *p, uint64_t n, uint64_t off, unsigned bits)
{
    uint64_t u = bf_get(p, n, off, bits);
    if (bits < 64 && (u >> (bits - 1) & 1))
        u |= UINT64_MAX << bits; /* the sign extended */
    return (int64_t)u;
}

/* The low `bits` bits of v written at bit `off` of p (the caller grew p). */
static void bf_put(uint8_t *p, uint64_t off, unsigned bits, uint64_t v)
{
    RABIA_ASSERT(bits >= 1 && bits <= 64);
    for (unsigned j = 0; j < bits; j++, off++) {
        unsigned bit = (v >> (bits - 1 - j)) & 1u, sh = 7 - (unsigned)(off & 7);
        p[off >> 3] = (uint8_t)((p[off >> 3] & ~(1u << sh)) | bit << sh);
    }
}

/* Redis's checkUnsignedBitfieldOverflow: 0 in range, else 1 / -1 (above /
 * below) with *limit what WRAP or SAT make of it. */
static int bf_overflow_u(uint64_t value, int64_t incr, unsigned bits, int ow, uint64_t *limit)
{
    RABIA_ASSERT(bits >= 1 && bits <= 63); /* u64 is refused: Redis's reply cannot hold it */
    uint64_t max = (1ull << bits) - 1;
    int64_t maxincr = (int64_t)(max - value), minincr = (int64_t)(0 - value);
    int dir = 0;
    if (value > max || (incr > 0 && incr > maxincr))
        dir = 1;
    else if (incr < 0 && incr < minincr)
        dir = -1;
    if (!dir)
        return 0;
    if (ow == BF_WRAP)
        *limit = (value + (uint64_t)incr) & ~(UINT64_MAX << bits);
    else if (ow == BF_SAT)
        *limit = dir > 0 ? max : 0;
    return dir;
}

/* Redis's checkSignedBitfieldOverflow (its differences computed in 64-bit
 * unsigned arithmetic, as Redis means them). */
static int bf_overflow_s(int64_t value, int64_t incr, unsigned bits, int ow, int64_t *limit)
{
    RABIA_ASSERT(bits >= 1 && bits <= 64);
    int64_t max = bits == 64 ? INT64_MAX : (int64_t)((1ull << (bits - 1)) - 1);
    int64_t min = -max - 1;
    int64_t maxincr = (int64_t)((uint64_t)max - (uint64_t)value);
    int64_t minincr = (int64_t)((uint64_t)min - (uint64_t)value);
    int dir = 0;
    if (value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr))
        dir = 1;
    else if (value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr))
        dir = -1;
    if (!dir)
        return 0;
    if (ow == BF_WRAP) {
        uint64_t r = (uint64_t)value + (uint64_t)incr;
        if (bits < 64) {
            uint64_t mask = UINT64_MAX << bits;
            r = r >> (bits - 1) & 1 ? r | mask : r & ~mask;
        }
        *limit = (int64_t)r;
    } else if (ow == BF_SAT) {
        *limit = dir > 0 ? max : min;
    }
    return dir;
}

static int bitfield_run(struct kv_ctx *c, bool ro, struct bf_step *steps, uint32_t cap);

static int bitfield(struct kv_ctx *c, bool ro)
{
    /* every operation takes at least three arguments (GET type offset) */
    uint32_t cap = (c->argc - 2) / 3;
    struct bf_step small[BF_STACK_STEPS], *steps = small;
    if (cap > BF_STACK_STEPS && !(steps = kv_alloc(c->s, cap * sizeof *steps)))
        return -ENOMEM;
    int rc = bitfield_run(c, ro, steps, cap);
    if (steps != small)
        kv_free(c->s, steps);
    return rc;
}

static int bitfield_run(struct kv_ctx *c, bool ro, struct bf_step *steps, uint32_t cap)
{
    uint32_t n = 0;
    int ow = BF_WRAP;
    bool writes = false;
    uint64_t highest = 0; /* the farthest bit a write names */
    for (uint32_t j = 2; j < c->argc; j++) {
        uint32_t rem = c->argc - j - 1;
        uint8_t op;
        if (kv_arg_is(c, j, "get") && rem >= 2) {
            op = BF_GET;
        } else if (kv_arg_is(c, j, "set") && rem >= 3) {
            op = BF_SET;
        } else if (kv_arg_is(c, j, "incrby") && rem >= 3) {
            op = BF_INCRBY;
        } else if (kv_arg_is(c, j, "overflow") && rem >= 1) {
            j++;
            if (kv_arg_is(c, j, "wrap"))
                ow = BF_WRAP;
            else if (kv_arg_is(c, j, "sat"))
                ow = BF_SAT;
            else if (kv_arg_is(c, j, "fail"))
                ow = BF_FAIL;
            else
                return kv_reply_err(c, "ERR Invalid OVERFLOW type specified");
            continue;
        } else {
            return kv_reply_err(c, KV_ERR_SYNTAX);
        }
        struct bf_step st = {.op = op, .overflow = (uint8_t)ow};
        if (!bf_type(c, j + 1, &st.sign, &st.bits) || !bf_offset(c, j + 2, st.bits, &st.offset))
            return 0;
        if (op != BF_GET) {
            writes = true;
            if (highest < st.offset + st.bits - 1)
                highest = st.offset + st.bits - 1;
            if (!kv_arg_i64(c, j + 3, &st.value))
                return 0;
        }
        RABIA_ASSERT(n < cap);
        steps[n++] = st;
        j += op == BF_GET ? 2 : 3;
    }
    if (writes && ro) /* before the key's type, as in Redis */
        return kv_reply_err(c, "ERR BITFIELD_RO only supports the GET subcommand");
    struct kv_dent *e = kv_find_arg(c, 1);
    if (!kv_type_ok(c, e, KV_STRING))
        return 0;
    /* Created or grown (Redis's lookupStringForBitCommand `dirty`): the
     * WATCH version a created key replaces, for a run that changes nothing */
    bool created = !e, grown = false;
    uint64_t absent_ver = created ? kv_key_version(c, c->argv[1], c->len[1]) : 0;
    if (writes) {
        uint64_t need = (highest >> 3) + 1;
        if (need > KV_STR_MAX) /* the last bits of the range: Redis grows past proto-max-bulk-len */
            return kv_reply_err(c, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        grown = created || need > obj(e)->len;
        int rc = grow(c, &e, need);
        if (rc < 0)
            return rc;
    }
    uint32_t changes = 0; /* writes that did not fail and changed bits, or followed a growth */
    int rc = kv_reply_array(c, n);
    for (uint32_t i = 0; !rc && i < n; i++) {
        const struct bf_step *st = &steps[i];
        const struct kv_obj *o = e ? obj(e) : NULL;
        const uint8_t *p = o ? o->str : NULL;
        uint64_t len = o ? o->len : 0;
        if (st->op == BF_GET) {
            rc = st->sign ? kv_reply_int(c, bf_get_signed(p, len, st->offset, st->bits))
                          : kv_reply_int(c, (int64_t)bf_get(p, len, st->offset, st->bits));
            continue;
        }
        RABIA_ASSERT(e && (st->offset + st->bits + 7) / 8 <= len);
        bool fail;
        uint64_t put;
        int64_t reply;
        if (st->sign) {
            int64_t old = bf_get_signed(p, len, st->offset, st->bits), now, lim = 0;
            int of;
            if (st->op == BF_INCRBY) {
                of = bf_overflow_s(old, st->value, st->bits, st->overflow, &lim);
                now = of ? lim : (int64_t)((uint64_t)old + (uint64_t)st->value);
                reply = now;
            } else {
                of = bf_overflow_s(st->value, 0, st->bits, st->overflow, &lim);
                now = of ? lim : st->value;
                reply = old;
            }
            fail = of && st->overflow == BF_FAIL;
            put = (uint64_t)now;
        } else {
            uint64_t old = bf_get(p, len, st->offset, st->bits), now, lim = 0;
            int of;
            if (st->op == BF_INCRBY) {
                of = bf_overflow_u(old, st->value, st->bits, st->overflow, &lim);
                now = of ? lim : old + (uint64_t)st->value;
                reply = (int64_t)now;
            } else {
                of = bf_overflow_u((uint64_t)st->value, 0, st->bits, st->overflow, &lim);
                now = of ? lim : (uint64_t)st->value;
                reply = (int64_t)old;
            }
            fail = of && st->overflow == BF_FAIL;
            put = now;
        }
        if (fail) {
            rc = kv_reply_null(c);
        } else {
            rc = kv_reply_int(c, reply);
            uint64_t was = bf_get(obj(e)->str, len, st->offset, st->bits);
            bf_put(obj(e)->str, st->offset, st->bits, put);
            changes += grown || was != bf_get(obj(e)->str, len, st->offset, st->bits);
        }
    }
    if (!writes)
        return rc;
    if (c->s->feature_level < KV_LEVEL_BITFIELD_WATCH) {
        kv_touch(c, e); /* every write, a failed one too (before level 7) */
    } else if (changes) {
        kv_touch(c, e);
    } else if (grown) {
        /* Redis 7.0 signals the key only when a write that did not fail
         * changed bits or followed a growth: a run whose writes all failed
         * leaves WATCH intact even though it created or zero-extended the
         * string. The bytes changed, so the state hash must see them; a
         * created key keeps the version its absence had (kv_key_version). */
        if (created)
            e->ver = absent_ver;
        kv_hash_dirty(c->s, e, c->dbi);
    }
    return rc;
}

KV_CMD(bitfield) { return bitfield(c, false); }
KV_CMD(bitfield_ro) { return bitfield(c, true); }
