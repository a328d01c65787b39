/* batch/pool: get/ref/unref, exhaustion, alignment, a random walk against a
 * model, and misuse aborting with a message (checked in a child process). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "pool.h"

static void test_basic(void)
{
    struct buf_pool p;
    CHECK_EQ(buf_pool_init(&p, 0, 4), -EINVAL);
    CHECK_EQ(buf_pool_init(&p, 100, 0), -EINVAL);
    CHECK_EQ(buf_pool_init(&p, SIZE_MAX / 2, 4), -EINVAL);
    CHECK_EQ(buf_pool_init(&p, 100, 4), 0);
    CHECK_EQ(buf_pool_buf_size(&p), 100);
    CHECK_EQ(buf_pool_available(&p), 4);
    uint8_t *b[4];
    for (int i = 0; i < 4; i++) {
        b[i] = buf_pool_get(&p);
        CHECK(b[i] != NULL);
        CHECK_EQ((uintptr_t)b[i] % 64, 0);
        CHECK_EQ(buf_pool_refs(&p, b[i]), 1);
        memset(b[i], i, 100); /* writable, no overlap (ASan builds check) */
        for (int j = 0; j < i; j++)
            CHECK(b[i] != b[j]);
    }
    CHECK(buf_pool_get(&p) == NULL);
    CHECK_EQ(buf_pool_in_use(&p), 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(b[i][99], i);

    /* one buffer sent to three peers: the last unref frees it */
    buf_pool_ref(&p, b[1]);
    buf_pool_ref(&p, b[1]);
    CHECK_EQ(buf_pool_refs(&p, b[1]), 3);
    CHECK(!buf_pool_unref(&p, b[1]));
    CHECK(!buf_pool_unref(&p, b[1]));
    CHECK_EQ(buf_pool_available(&p), 0);
    CHECK(buf_pool_unref(&p, b[1]));
    CHECK_EQ(buf_pool_available(&p), 1);
    CHECK_EQ(buf_pool_refs(&p, b[1]), 0);
    CHECK(buf_pool_get(&p) == b[1]); /* LIFO: the warmest buffer first */
    for (int i = 0; i < 4; i++)
        CHECK(buf_pool_unref(&p, b[i]));
    CHECK_EQ(buf_pool_available(&p), 4);
    buf_pool_destroy(&p);
}

/* Random get/ref/unref against a model of the reference counts. */
static void test_random_walk(void)
{
    enum { N = 16 };
    struct buf_pool p;
    CHECK_EQ(buf_pool_init(&p, 256, N), 0);
    void *held[N * 8];
    uint32_t model[N] = {0};
    size_t n_held = 0;
    uint64_t x = 88172645463325252ull;
    for (int step = 0; step < 200000; step++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int action = (int)(x % 3);
        if (action == 0) {
            void *b = buf_pool_get(&p);
            uint32_t in_use = 0;
            for (int i = 0; i < N; i++)
                in_use += model[i] > 0;
            CHECK_EQ(b == NULL, in_use == N);
            if (b && n_held < N * 8) {
                size_t i = ((uint8_t *)b - p.mem) / p.stride;
                CHECK_EQ(model[i], 0);
                model[i] = 1;
                held[n_held++] = b;
            } else if (b) {
                CHECK(buf_pool_unref(&p, b));
            }
        } else if (action == 1 && n_held && n_held < N * 8) {
            void *b = held[(x >> 8) % n_held];
            buf_pool_ref(&p, b);
            model[((uint8_t *)b - p.mem) / p.stride]++;
            held[n_held++] = b;
        } else if (n_held) {
            size_t k = (x >> 8) % n_held;
            void *b = held[k];
            held[k] = held[--n_held];
            size_t i = ((uint8_t *)b - p.mem) / p.stride;
            bool last = buf_pool_unref(&p, b);
            CHECK_EQ(last, --model[i] == 0);
        }
        if (step % 1000 == 0) {
            uint32_t free_model = 0;
            for (int i = 0; i < N; i++) {
                free_model += model[i] == 0;
                CHECK_EQ(p.refs[i], model[i]);
            }
            CHECK_EQ(buf_pool_available(&p), free_model);
        }
    }
    buf_pool_destroy(&p);
}

/* Run fn in a child; it must die of SIGABRT with `msg` on stderr. */
static void expect_abort(void (*fn)(struct buf_pool *p), const char *msg)
{
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        struct buf_pool p;
        if (buf_pool_init(&p, 64, 2) != 0)
            _exit(3);
        fn(&p);
        _exit(0); /* not reached when the invariant holds */
    }
    close(fds[1]);
    char out[1024];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof out - 1 && (k = read(fds[0], out + n, sizeof out - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = 0;
    close(fds[0]);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(strstr(out, "invariant failed") != NULL);
    if (!strstr(out, msg)) {
        fprintf(stderr, "expected \"%s\" in: %s\n", msg, out);
        check_failures++;
    }
}

static void double_unref(struct buf_pool *p)
{
    void *b = buf_pool_get(p);
    buf_pool_unref(p, b);
    buf_pool_unref(p, b);
}

static void ref_free(struct buf_pool *p)
{
    void *b = buf_pool_get(p);
    buf_pool_unref(p, b);
    buf_pool_ref(p, b);
}

static void foreign(struct buf_pool *p)
{
    static uint8_t other[64];
    buf_pool_unref(p, other);
}

static void misaligned(struct buf_pool *p)
{
    uint8_t *b = buf_pool_get(p);
    buf_pool_unref(p, b + 1);
}

static void test_misuse_aborts(void)
{
    expect_abort(double_unref, "double unref");
    expect_abort(ref_free, "use after free");
    expect_abort(foreign, "not inside this pool");
    expect_abort(misaligned, "not the start of a buffer");
}

int main(void)
{
    RUN(test_basic);
    RUN(test_random_walk);
    RUN(test_misuse_aborts);
    return CHECK_DONE();
}
