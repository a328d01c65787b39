/* Fixed buffer pool with reference counts: send one buffer (an encoded
 * frame, a batch) to several peers without copying it; each pending send
 * holds a reference and the last unref returns the buffer.
 *
 * All memory is allocated in buf_pool_init: `count` buffers of `buf_size`
 * bytes (each starting on a 64-byte boundary), a free stack and the
 * reference counts. get/ref/unref are O(1) and never allocate.
 *
 * Misuse (unref or ref of a free buffer, i.e. a double free; a pointer that
 * is not the start of one of this pool's buffers; a reference count
 * overflow) is an invariant failure: the process aborts with a message,
 * also in release builds (core/invariant.h), because it means memory that
 * may be in flight to a peer could be handed out twice.
 *
 * Single-threaded: the event loop that owns the pool calls every function.
 * A buffer handed to another thread comes back to the owner for its unref.
 */
#ifndef RABIA_BATCH_POOL_H
#define RABIA_BATCH_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct buf_pool {
    uint8_t *mem;         /* count x stride bytes */
    size_t buf_size;      /* what the caller asked for */
    size_t stride;        /* buf_size rounded up to 64 */
    uint32_t count;
    uint32_t n_free;
    uint32_t *free_stack; /* indices of free buffers, n_free of them */
    uint32_t *refs;       /* 0 = free */
};

/* 0, -EINVAL (buf_size or count 0, or too large in total) or -ENOMEM. */
int buf_pool_init(struct buf_pool *p, size_t buf_size, uint32_t count);
/* Frees the memory, whether or not buffers are still referenced. */
void buf_pool_destroy(struct buf_pool *p);

/* A free buffer with reference count 1, or NULL when all are in use. */
void *buf_pool_get(struct buf_pool *p);
/* One more reference to a buffer in use. */
void buf_pool_ref(struct buf_pool *p, void *buf);
/* Drop a reference; true when it was the last and the buffer is free
 * again. */
bool buf_pool_unref(struct buf_pool *p, void *buf);

uint32_t buf_pool_refs(const struct buf_pool *p, const void *buf);
uint32_t buf_pool_available(const struct buf_pool *p); /* free buffers */
uint32_t buf_pool_in_use(const struct buf_pool *p);
size_t buf_pool_buf_size(const struct buf_pool *p);

#ifdef __cplusplus
}
#endif
#endif
