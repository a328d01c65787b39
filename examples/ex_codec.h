/* Little-endian reading helpers shared by the example state machines.
 * Header-only; uses nothing but libc (writing goes through rabia_buf). */
#ifndef RABIA_EXAMPLES_EX_CODEC_H
#define RABIA_EXAMPLES_EX_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A bounds-checked cursor: every get fails (returns false) instead of
 * reading past `end`, and a failed read leaves the cursor where it was. */
struct ex_rd {
    const uint8_t *p, *end;
};

static inline struct ex_rd ex_rd_init(const uint8_t *p, size_t len)
{
    struct ex_rd r = {p, p + len};
    return r;
}

static inline size_t ex_rd_left(const struct ex_rd *r)
{
    return (size_t)(r->end - r->p);
}

static inline uint32_t ex_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline uint64_t ex_le64(const uint8_t *p)
{
    return (uint64_t)ex_le32(p) | (uint64_t)ex_le32(p + 4) << 32;
}

static inline bool ex_get_u8(struct ex_rd *r, uint8_t *v)
{
    if (ex_rd_left(r) < 1)
        return false;
    *v = *r->p++;
    return true;
}

static inline bool ex_get_u32(struct ex_rd *r, uint32_t *v)
{
    if (ex_rd_left(r) < 4)
        return false;
    *v = ex_le32(r->p);
    r->p += 4;
    return true;
}

static inline bool ex_get_u64(struct ex_rd *r, uint64_t *v)
{
    if (ex_rd_left(r) < 8)
        return false;
    *v = ex_le64(r->p);
    r->p += 8;
    return true;
}

/* A string: u32 length, then that many bytes (not NUL-terminated). */
static inline bool ex_get_str(struct ex_rd *r, const uint8_t **s, uint32_t *len)
{
    uint32_t n;
    if (ex_rd_left(r) < 4)
        return false;
    n = ex_le32(r->p);
    if (ex_rd_left(r) - 4 < n)
        return false;
    *s = r->p + 4;
    *len = n;
    r->p += 4 + (size_t)n;
    return true;
}

/* memcmp order, a proper prefix sorting first. */
static inline int ex_keycmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

#endif
