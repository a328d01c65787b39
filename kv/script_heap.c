/* kv/script_heap.c: the memory of a script run from feature level
 * KV_LEVEL_SCRIPT_HEAP (kv/README.md "Scripts"): the same addresses, in
 * their low 32 bits, on every replica.
 *
 * Why: Lua 5.1 places a table key that is a table, a function or a
 * coroutine by its address (ltable.c hashpointer: the low 32 bits), so
 * pairs() and next() over such keys visit them in an order set by where
 * malloc put them. Addresses differ between processes (ASLR, each
 * replica's own history), and a script whose writes follow that order
 * wrote different values on each replica, and again differently when the
 * log was replayed (found by review: three replicas, three orders, three
 * state hashes). Redis replicates a script's effects and never meets this.
 *
 * How: one arena per thread, 4 GiB of address space aligned to 4 GiB, so
 * an address's low 32 bits are its offset in the arena; and an allocator
 * that is a pure function of the run's sequence of requests: size classes
 * (16-byte steps to 1 KiB, then powers of two), a LIFO free list per
 * class, fresh blocks from a bump pointer; everything forgotten when the
 * run ends. The same script on the same data asks for the same sizes in
 * the same order on every replica (a run's Lua state is fresh), so every
 * block, and every key's place in every table, is the same.
 *
 * A block that shrinks stays where it is (and is later filed under the
 * smaller class: bigger than its class, which is harmless).
 *
 * Address space is reserved without memory (PROT_NONE, MAP_NORESERVE) and
 * made writable as the bump pointer reaches it; a run that used more than
 * KEEP bytes gives the rest back at its end. The run's bound
 * (KV_SCRIPT_MAX_HEAP, counted by the caller on the sizes Lua gives) stays
 * what limits a script; the arena's 4 GiB only runs out for a run that
 * churns every size class to the bound in turn, at the same request on
 * every replica. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define ARENA (1ull << 32)     /* the arena's size and alignment */
#define GROW (1u << 20)        /* made writable in steps of this */
#define KEEP (16u << 20)       /* kept writable (and touched) between runs */
#define SMALL_MAX 1024u        /* 16-byte classes up to here */
#define N_SMALL (SMALL_MAX / 16)
#define N_CLASSES (N_SMALL + 32 - 10) /* then 2^11 .. 2^32 */

struct script_heap {
    uint8_t *base;             /* 4 GiB aligned; NULL: not reserved yet */
    uint64_t top;              /* bump pointer (offset) */
    uint64_t writable;         /* [0, writable) is read-write */
    bool busy;                 /* a run uses it */
    void *free_list[N_CLASSES];
};

static _Thread_local struct script_heap H;

static uint32_t class_of(size_t n, size_t *size)
{
    RABIA_ASSERT(n > 0);
    if (n <= SMALL_MAX) {
        uint32_t k = (uint32_t)((n + 15) / 16);
        *size = (size_t)k * 16;
        return k - 1;
    }
    uint32_t b = 64 - (uint32_t)__builtin_clzll((unsigned long long)(n - 1)); /* 2^b >= n, b >= 11 */
    RABIA_ASSERT(b >= 11 && b <= 32);
    *size = (size_t)1 << b;
    return N_SMALL + b - 11;
}

#define MAP_RESERVE (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)

/* 4 GiB of address space aligned to 4 GiB, or NULL (errno). Asks for
 * exactly 4 GiB first, at an aligned hint next to where the kernel put a
 * first try, so that a process whose address space is limited (ulimit -v,
 * LimitAS=) needs no more than that; twice that, trimmed, only when the
 * hint is taken. */
static uint8_t *arena_map(void)
{
    void *p = mmap(NULL, ARENA, PROT_NONE, MAP_RESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uintptr_t a = (uintptr_t)p;
    if ((a & (ARENA - 1)) == 0)
        return p;
    munmap(p, ARENA);
    uintptr_t hint = (a + ARENA - 1) & ~(uintptr_t)(ARENA - 1);
    p = mmap((void *)hint, ARENA, PROT_NONE, MAP_RESERVE, -1, 0);
    if (p != MAP_FAILED && (uintptr_t)p == hint)
        return p;
    if (p != MAP_FAILED)
        munmap(p, ARENA);
    p = mmap(NULL, 2 * ARENA, PROT_NONE, MAP_RESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    a = (uintptr_t)p;
    uintptr_t base = (a + ARENA - 1) & ~(uintptr_t)(ARENA - 1);
    if (base > a)
        munmap(p, base - a);
    uintptr_t end = a + 2 * ARENA, tail = base + ARENA;
    if (end > tail)
        munmap((void *)tail, end - tail);
    return (uint8_t *)base;
}

static int reserve(void)
{
    uint8_t *b = arena_map();
    if (!b)
        return -errno;
    H.base = b;
    H.top = H.writable = 0;
    return 0;
}

int rabia_kv_script_heap_check(char *err, size_t errlen)
{
    if (H.base)
        return 0;
    uint8_t *b = arena_map();
    if (!b) {
        int e = errno;
        snprintf(err, errlen,
                 "the KV state machine's scripts need 4 GiB of address space (not memory: reserved, used as "
                 "needed) so that a script's tables sit at the same addresses on every replica, and mmap "
                 "refused it: %s; raise the process's address-space limit (ulimit -v, systemd LimitAS=) or "
                 "remove it",
                 strerror(e));
        return -e;
    }
    munmap(b, ARENA);
    return 0;
}

int kv_script_heap_begin(void)
{
    if (H.busy)
        return -EBUSY; /* runs do not nest (a script cannot run a script) */
    if (!H.base) {
        int rc = reserve();
        if (rc)
            return rc;
    }
    RABIA_ASSERT(H.top == 0);
    memset(H.free_list, 0, sizeof H.free_list);
    H.busy = true;
    return 0;
}

void kv_script_heap_end(void)
{
    RABIA_ASSERT(H.busy);
    if (H.writable > KEEP) { /* a big run's memory goes back to the system */
        (void)madvise(H.base + KEEP, H.writable - KEEP, MADV_DONTNEED);
        (void)mprotect(H.base + KEEP, H.writable - KEEP, PROT_NONE);
        H.writable = KEEP;
    }
    H.top = 0;
    memset(H.free_list, 0, sizeof H.free_list);
    H.busy = false;
}

/* A block for n bytes; NULL with *spent true when the arena has no room
 * (the same request on every replica), false when the machine refused
 * memory (not the same: the caller fails the apply). */
static void *take(size_t n, bool *spent)
{
    size_t size;
    uint32_t k = class_of(n, &size);
    void *p = H.free_list[k];
    if (p) {
        memcpy(&H.free_list[k], p, sizeof p);
        return p;
    }
    if (size > ARENA - H.top) {
        *spent = true;
        return NULL;
    }
    uint64_t at = H.top;
    if (at + size > H.writable) {
        uint64_t want = (at + size + GROW - 1) / GROW * GROW;
        if (want > ARENA)
            want = ARENA;
        if (mprotect(H.base + H.writable, want - H.writable, PROT_READ | PROT_WRITE))
            return NULL;
        H.writable = want;
    }
    H.top = at + size;
    return H.base + at;
}

static void give(void *p, size_t n)
{
    size_t size;
    uint32_t k = class_of(n, &size);
    RABIA_ASSERT((uint8_t *)p >= H.base && (uint8_t *)p + size <= H.base + H.top);
    memcpy(p, &H.free_list[k], sizeof p);
    H.free_list[k] = p;
}

void *kv_script_heap_realloc(void *ptr, size_t osize, size_t nsize, bool *spent)
{
    RABIA_ASSERT(H.busy);
    *spent = false;
    if (nsize == 0) {
        if (ptr)
            give(ptr, osize);
        return NULL;
    }
    size_t os, ns;
    if (ptr && (nsize <= osize || class_of(osize, &os) == class_of(nsize, &ns)))
        return ptr; /* the block holds it already. A shrink never moves: a move could fail for
                       the machine's memory on one replica only, and keeping the block there
                       would part its addresses from the others' (found by review) */
    void *q = take(nsize, spent);
    if (!q)
        return NULL;
    if (ptr) {
        memcpy(q, ptr, osize < nsize ? osize : nsize);
        give(ptr, osize);
    }
    return q;
}
