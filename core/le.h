/* core/le.h: little-endian loads and stores at any alignment, for the wire
 * and log formats. memcpy of a fixed size compiles to one move (and a byte
 * swap on a big-endian host). The byte-by-byte loops these replace were
 * not merged by GCC -O2: rabia_batch_iter_next took 220 instructions per
 * request, three calls per request per replica (validate, the apply's
 * prefetch hint, the apply), 14% of a follower's instructions at SET
 * -P 16 (bench/callgrind.sh). */
#ifndef RABIA_CORE_LE_H
#define RABIA_CORE_LE_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define RABIA_LE16(v) __builtin_bswap16(v)
#define RABIA_LE32(v) __builtin_bswap32(v)
#define RABIA_LE64(v) __builtin_bswap64(v)
#else
#define RABIA_LE16(v) (v)
#define RABIA_LE32(v) (v)
#define RABIA_LE64(v) (v)
#endif

static inline uint16_t rabia_le_get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return RABIA_LE16(v);
}
static inline uint32_t rabia_le_get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return RABIA_LE32(v);
}
static inline uint64_t rabia_le_get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return RABIA_LE64(v);
}
static inline void rabia_le_put16(uint8_t *p, uint16_t v)
{
    v = RABIA_LE16(v);
    memcpy(p, &v, sizeof v);
}
static inline void rabia_le_put32(uint8_t *p, uint32_t v)
{
    v = RABIA_LE32(v);
    memcpy(p, &v, sizeof v);
}
static inline void rabia_le_put64(uint8_t *p, uint64_t v)
{
    v = RABIA_LE64(v);
    memcpy(p, &v, sizeof v);
}

#endif
