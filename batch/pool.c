/* Fixed buffer pool with reference counts (see pool.h). */
#include "pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "invariant.h"

#define POOL_ALIGN 64u

int buf_pool_init(struct buf_pool *p, size_t buf_size, uint32_t count)
{
    memset(p, 0, sizeof *p);
    if (buf_size == 0 || count == 0 || buf_size > SIZE_MAX - POOL_ALIGN)
        return -EINVAL;
    size_t stride = (buf_size + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
    if (stride > SIZE_MAX / count)
        return -EINVAL;
    p->mem = aligned_alloc(POOL_ALIGN, stride * count);
    p->free_stack = malloc((size_t)count * sizeof *p->free_stack);
    p->refs = calloc(count, sizeof *p->refs);
    if (!p->mem || !p->free_stack || !p->refs) {
        buf_pool_destroy(p);
        return -ENOMEM;
    }
    p->buf_size = buf_size;
    p->stride = stride;
    p->count = count;
    /* Lowest index on top: buffers are handed out in address order first. */
    for (uint32_t i = 0; i < count; i++)
        p->free_stack[i] = count - 1 - i;
    p->n_free = count;
    return 0;
}

void buf_pool_destroy(struct buf_pool *p)
{
    free(p->mem);
    free(p->free_stack);
    free(p->refs);
    memset(p, 0, sizeof *p);
}

/* The index of buf; aborts when buf is not the start of one of p's
 * buffers. */
static uint32_t index_of(const struct buf_pool *p, const void *buf)
{
    uintptr_t base = (uintptr_t)p->mem, at = (uintptr_t)buf;
    RABIA_ASSERT(at >= base && at - base < p->stride * p->count &&
                 "buf_pool: pointer is not inside this pool");
    RABIA_ASSERT((at - base) % p->stride == 0 &&
                 "buf_pool: pointer is not the start of a buffer");
    return (uint32_t)((at - base) / p->stride);
}

void *buf_pool_get(struct buf_pool *p)
{
    if (p->n_free == 0)
        return NULL;
    uint32_t i = p->free_stack[--p->n_free];
    RABIA_ASSERT(p->refs[i] == 0 && "buf_pool: a buffer on the free stack is referenced");
    p->refs[i] = 1;
    return p->mem + (size_t)i * p->stride;
}

void buf_pool_ref(struct buf_pool *p, void *buf)
{
    uint32_t i = index_of(p, buf);
    RABIA_ASSERT(p->refs[i] > 0 && "buf_pool_ref: buffer is free (use after free)");
    RABIA_ASSERT(p->refs[i] < UINT32_MAX && "buf_pool_ref: reference count overflow");
    p->refs[i]++;
}

bool buf_pool_unref(struct buf_pool *p, void *buf)
{
    uint32_t i = index_of(p, buf);
    RABIA_ASSERT(p->refs[i] > 0 && "buf_pool_unref: buffer is already free (double unref)");
    if (--p->refs[i] > 0)
        return false;
    RABIA_ASSERT(p->n_free < p->count && "buf_pool: free stack overflow");
    p->free_stack[p->n_free++] = i;
    return true;
}

uint32_t buf_pool_refs(const struct buf_pool *p, const void *buf)
{
    return p->refs[index_of(p, buf)];
}

uint32_t buf_pool_available(const struct buf_pool *p)
{
    return p->n_free;
}

uint32_t buf_pool_in_use(const struct buf_pool *p)
{
    return p->count - p->n_free;
}

size_t buf_pool_buf_size(const struct buf_pool *p)
{
    return p->buf_size;
}
