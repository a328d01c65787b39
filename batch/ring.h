/* Lock-free single-producer single-consumer ring of pointers, for handing
 * work between two threads (e.g. the network thread and an apply thread).
 *
 * Exactly one thread pushes and exactly one thread pops. The indices run
 * freely (they wrap at SIZE_MAX, which the power-of-two capacity divides);
 * the producer publishes a slot with a release store of `tail`, the
 * consumer frees it with a release store of `head`; each side re-reads the
 * other's index (acquire) only when its cached copy says full/empty, so the
 * common case touches no shared cache line but the slot.
 *
 * Layout: the producer's fields, the consumer's fields and the read-only
 * fields sit on separate 64-byte cache lines (no false sharing). The struct
 * is therefore 64-byte aligned: put it in static or automatic storage, or
 * allocate it with aligned_alloc(64, ...).
 *
 * Header-only C (not C++: _Atomic), C11 atomics, no locks, no syscalls.
 */
#ifndef RABIA_BATCH_RING_H
#define RABIA_BATCH_RING_H

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define SPSC_CACHE_LINE 64

struct spsc_ring {
    /* producer's line */
    alignas(SPSC_CACHE_LINE) _Atomic size_t tail; /* next slot to fill */
    size_t head_cache;                            /* producer's view of head */
    /* consumer's line */
    alignas(SPSC_CACHE_LINE) _Atomic size_t head; /* next slot to take */
    size_t tail_cache;                            /* consumer's view of tail */
    /* read-only after init */
    alignas(SPSC_CACHE_LINE) void **slots;
    size_t mask;                                  /* capacity - 1 */
};

/* capacity: a power of two >= 2. 0, -EINVAL or -ENOMEM. */
static inline int spsc_ring_init(struct spsc_ring *r, size_t capacity)
{
    if (capacity < 2 || (capacity & (capacity - 1)) != 0 ||
        capacity > SIZE_MAX / sizeof(void *) - SPSC_CACHE_LINE)
        return -EINVAL;
    size_t bytes = capacity * sizeof(void *);
    bytes = (bytes + SPSC_CACHE_LINE - 1) / SPSC_CACHE_LINE * SPSC_CACHE_LINE;
    void **slots = (void **)aligned_alloc(SPSC_CACHE_LINE, bytes);
    if (!slots)
        return -ENOMEM;
    atomic_init(&r->tail, 0);
    atomic_init(&r->head, 0);
    r->head_cache = 0;
    r->tail_cache = 0;
    r->slots = slots;
    r->mask = capacity - 1;
    return 0;
}

static inline void spsc_ring_destroy(struct spsc_ring *r)
{
    free(r->slots);
    r->slots = NULL;
}

static inline size_t spsc_ring_capacity(const struct spsc_ring *r)
{
    return r->mask + 1;
}

/* Producer only. false when the ring is full. */
static inline bool spsc_ring_push(struct spsc_ring *r, void *item)
{
    size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t - r->head_cache > r->mask) {
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        if (t - r->head_cache > r->mask)
            return false;
    }
    r->slots[t & r->mask] = item;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return true;
}

/* Consumer only. false when the ring is empty. */
static inline bool spsc_ring_pop(struct spsc_ring *r, void **item)
{
    size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (h == r->tail_cache) {
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (h == r->tail_cache)
            return false;
    }
    *item = r->slots[h & r->mask];
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return true;
}

/* Items in the ring; exact when neither side is running, else a snapshot
 * that may be stale by the time it is used. */
static inline size_t spsc_ring_size(const struct spsc_ring *r)
{
    size_t h = atomic_load_explicit(&((struct spsc_ring *)r)->head, memory_order_acquire);
    size_t t = atomic_load_explicit(&((struct spsc_ring *)r)->tail, memory_order_acquire);
    return t - h;
}

#endif
