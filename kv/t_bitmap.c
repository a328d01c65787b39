/* kv/t_bitmap.c: the bit commands on strings (SETBIT, GETBIT, BITCOUNT,
 * BITPOS, BITOP), as Redis 7.0's bitops.c answers them: the same argument
 * checks in the same order, the same errors, the same edge cases (BITPOS's
 * zero padding to the right when no end is given, BITCOUNT and BITPOS
 * ranges in bytes or bits). BITFIELD is not implemented.
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
    struct kv_obj *o = e ? obj(e) : kv_str_new(c->s, NULL, 0), *r;
    if (!o)
        return -ENOMEM;
    if (need > o->len) {
        if (!(r = kv_str_resize(c->s, o, need))) {
            if (!e)
                kv_obj_free(c->s, o);
            return -ENOMEM;
        }
        o = r;
        if (e)
            e->v.p = o;
        else if (!(e = kv_add(c, c->argv[1], c->len[1], o)))
            return -ENOMEM;
    }
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
