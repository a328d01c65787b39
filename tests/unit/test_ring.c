/* batch/ring.h: SPSC ring semantics on one thread (full, empty, order,
 * index wrap-around), then two threads passing 10M items in order. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "check.h"
#include "ring.h"

static struct spsc_ring ring; /* static: 64-byte aligned as the type requires */

static void test_single_thread(void)
{
    struct spsc_ring r;
    CHECK_EQ(spsc_ring_init(&r, 0), -EINVAL);
    CHECK_EQ(spsc_ring_init(&r, 1), -EINVAL);
    CHECK_EQ(spsc_ring_init(&r, 6), -EINVAL);
    CHECK_EQ(offsetof(struct spsc_ring, head) - offsetof(struct spsc_ring, tail), 64);
    CHECK_EQ(offsetof(struct spsc_ring, slots) - offsetof(struct spsc_ring, head), 64);
    CHECK_EQ(spsc_ring_init(&r, 8), 0);
    CHECK_EQ(spsc_ring_capacity(&r), 8);
    void *v;
    CHECK(!spsc_ring_pop(&r, &v));
    for (uintptr_t i = 1; i <= 8; i++)
        CHECK(spsc_ring_push(&r, (void *)i));
    CHECK(!spsc_ring_push(&r, (void *)9));
    CHECK_EQ(spsc_ring_size(&r), 8);
    for (uintptr_t i = 1; i <= 8; i++) {
        CHECK(spsc_ring_pop(&r, &v));
        CHECK_EQ((uintptr_t)v, i);
    }
    CHECK(!spsc_ring_pop(&r, &v));
    CHECK(spsc_ring_push(&r, NULL)); /* NULL is an item like any other */
    CHECK(spsc_ring_pop(&r, &v));
    CHECK(v == NULL);

    /* free-running indices wrap at SIZE_MAX */
    size_t start = SIZE_MAX - 5;
    atomic_store(&r.head, start);
    atomic_store(&r.tail, start);
    r.head_cache = r.tail_cache = start;
    for (uintptr_t round = 0; round < 4; round++) {
        for (uintptr_t i = 0; i < 8; i++)
            CHECK(spsc_ring_push(&r, (void *)(round * 100 + i)));
        CHECK(!spsc_ring_push(&r, (void *)1));
        for (uintptr_t i = 0; i < 8; i++) {
            CHECK(spsc_ring_pop(&r, &v));
            CHECK_EQ((uintptr_t)v, round * 100 + i);
        }
        CHECK(!spsc_ring_pop(&r, &v));
    }
    CHECK(atomic_load(&r.tail) < start); /* it did wrap */
    spsc_ring_destroy(&r);
}

#define ITEMS 10000000ull

static void *producer(void *arg)
{
    (void)arg;
    for (uintptr_t i = 1; i <= ITEMS; i++) {
        unsigned spins = 0;
        while (!spsc_ring_push(&ring, (void *)i))
            if (++spins % 64 == 0)
                sched_yield(); /* the consumer may share our core */
    }
    return NULL;
}

static void test_two_threads(void)
{
    CHECK_EQ(spsc_ring_init(&ring, 1024), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, producer, NULL), 0);
    uintptr_t expect = 1;
    uint64_t bad = 0, empty_polls = 0;
    while (expect <= ITEMS) {
        void *v;
        if (!spsc_ring_pop(&ring, &v)) {
            if (++empty_polls % 64 == 0)
                sched_yield();
            continue;
        }
        if ((uintptr_t)v != expect)
            bad++;
        expect++;
    }
    CHECK_EQ(pthread_join(th, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK_EQ(bad, 0);
    void *v;
    CHECK(!spsc_ring_pop(&ring, &v));
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("  %llu items in order through a 1024-slot ring: %.2f s, %.1f M items/s\n",
           ITEMS, s, (double)ITEMS / s / 1e6);
    spsc_ring_destroy(&ring);
}

int main(void)
{
    RUN(test_single_thread);
    RUN(test_two_threads);
    return CHECK_DONE();
}
