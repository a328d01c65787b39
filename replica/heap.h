/* replica/heap.h: the process heap's allocation counts, for /metrics. */
#ifndef RABIA_REPLICA_HEAP_H
#define RABIA_REPLICA_HEAP_H

#include <stdbool.h>
#include <stdint.h>

struct heap_stats {
    uint64_t allocations;     /* malloc/calloc/realloc calls served since start */
    uint64_t allocated_bytes; /* bytes in live allocations now */
};

/* Reads jemalloc's statistics. Returns false (and *out untouched) when the
 * process does not run on jemalloc (RABIA_JEMALLOC=OFF, sanitizer builds,
 * an embedding application with another allocator): the metrics are then
 * left out rather than reported as zero. Flushes the calling thread's
 * cache of small blocks first, so its counts are exact (see heap.c). */
bool heap_stats(struct heap_stats *out);

#endif
