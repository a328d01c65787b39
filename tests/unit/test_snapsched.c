/* When a replica with a log snapshots (replica/snapsched.c), the rule
 * durable.c and the simulator both run: by log size, by interval, on
 * request; never while recovering, while one runs, or with nothing new
 * applied; a failure retried after retry_us with the log's growth still
 * counted; a peer's snapshot adopted as the newest. */
#include "check.h"
#include "snapsched.h"

#define S 1000000ull /* a second, in us */

static const struct snapsched_cfg CFG = {.max_log_bytes = 1000, .interval_us = 60 * S, .retry_us = S};

static void test_by_size(void)
{
    struct snapsched s;
    snapsched_init(&s, &CFG, 0, 500); /* the log held 500 bytes at start */
    CHECK(!snapsched_due(&s, 10, 1499, 1 * S, false)); /* grew 999 */
    CHECK(snapsched_due(&s, 10, 1500, 1 * S, false));
    CHECK(!snapsched_due(&s, 10, 1500, 1 * S, true)); /* recovering: the log keeps its first record */
    CHECK(!snapsched_due(&s, 0, 1500, 1 * S, false)); /* nothing applied past the newest snapshot */
    snapsched_began(&s, 10, 1500, 1 * S);
    CHECK(!snapsched_due(&s, 20, 5000, 2 * S, false)); /* one at a time */
    CHECK_EQ(snapsched_finished(&s, true, 2 * S), 10);
    CHECK_EQ(s.taken, 1);
    CHECK(!snapsched_due(&s, 20, 2499, 3 * S, false)); /* counted from where that one began */
    CHECK(snapsched_due(&s, 20, 2500, 3 * S, false));
    CHECK(!snapsched_due(&s, 10, 9999, 3 * S, false)); /* applied not past 10 */
}

static void test_by_time_and_soon(void)
{
    struct snapsched s;
    snapsched_init(&s, &CFG, 7, 0);
    CHECK(!snapsched_due(&s, 8, 0, 100 * S, false)); /* the interval counts from the first call */
    CHECK(!snapsched_due(&s, 8, 0, 159 * S, false));
    CHECK(snapsched_due(&s, 8, 0, 160 * S, false));
    snapsched_began(&s, 8, 0, 160 * S);
    CHECK_EQ(snapsched_finished(&s, true, 165 * S), 8);
    CHECK(!snapsched_due(&s, 9, 0, 224 * S, false)); /* from the end of the last one */
    CHECK(snapsched_due(&s, 9, 0, 225 * S, false));
    snapsched_soon(&s); /* a transfer needs a newer file */
    CHECK(snapsched_due(&s, 9, 0, 166 * S, false));
    snapsched_began(&s, 9, 0, 166 * S);
    CHECK(!s.forced);
    CHECK_EQ(snapsched_finished(&s, true, 167 * S), 9);
    CHECK(!snapsched_due(&s, 10, 0, 168 * S, false));
}

static void test_failure_and_adopted(void)
{
    struct snapsched s;
    snapsched_init(&s, &CFG, 0, 0);
    snapsched_soon(&s);
    CHECK(snapsched_due(&s, 5, 2000, 10 * S, false));
    snapsched_began(&s, 5, 2000, 10 * S);
    CHECK_EQ(snapsched_finished(&s, false, 11 * S), 0); /* nothing to release */
    CHECK_EQ(s.failures, 1);
    CHECK_EQ(s.last_slot, 0);
    CHECK(s.forced); /* still asked for */
    CHECK(!snapsched_due(&s, 5, 2000, 11 * S + S - 1, false)); /* retry_us */
    CHECK(snapsched_due(&s, 5, 2000, 12 * S, false));
    /* a peer's snapshot of slot 30 became the newest file */
    snapsched_adopted(&s, 30);
    CHECK(!snapsched_due(&s, 30, 9000, 20 * S, false));
    CHECK(snapsched_due(&s, 31, 9000, 20 * S, false));
    snapsched_began(&s, 31, 9000, 20 * S);
    snapsched_adopted(&s, 40); /* installed while the child wrote 31 */
    CHECK_EQ(snapsched_finished(&s, true, 21 * S), 40); /* the newest stays the newest */
    snapsched_adopted(&s, 35);
    CHECK_EQ(s.last_slot, 40);
}

/* Failures in a row back off: retry_us, doubled each time up to
 * retry_max_us; a success starts over. */
static void test_backoff(void)
{
    const struct snapsched_cfg cfg = {.max_log_bytes = 1000, .interval_us = 60 * S, .retry_us = S,
                                      .retry_max_us = 8 * S};
    struct snapsched s;
    snapsched_init(&s, &cfg, 0, 0);
    uint64_t now = 10 * S;
    CHECK_EQ(snapsched_retry_wait(&s), 0);
    const uint64_t waits[] = {1 * S, 2 * S, 4 * S, 8 * S, 8 * S, 8 * S};
    for (unsigned i = 0; i < sizeof waits / sizeof waits[0]; i++) {
        CHECK(snapsched_due(&s, 5, 2000, now, false));
        snapsched_began(&s, 5, 2000, now);
        now += S / 2; /* the child ran half a second and failed */
        CHECK_EQ(snapsched_finished(&s, false, now), 0);
        CHECK_EQ(s.failed_in_row, i + 1);
        CHECK_EQ(snapsched_retry_wait(&s), waits[i]);
        CHECK(!snapsched_due(&s, 5, 2000, now + waits[i] - 1, false));
        now += waits[i];
    }
    CHECK(snapsched_due(&s, 5, 2000, now, false));
    snapsched_began(&s, 5, 2000, now);
    CHECK_EQ(snapsched_finished(&s, true, now + S), 5);
    CHECK_EQ(s.failed_in_row, 0);
    CHECK_EQ(s.failures, 6);
    CHECK_EQ(snapsched_retry_wait(&s), 0);
    /* the next failure waits retry_us again */
    snapsched_soon(&s);
    CHECK(snapsched_due(&s, 6, 2000, now + 2 * S, false));
    snapsched_began(&s, 6, 2000, now + 2 * S);
    CHECK_EQ(snapsched_finished(&s, false, now + 3 * S), 0);
    CHECK_EQ(snapsched_retry_wait(&s), S);
    /* failures backed off, then a peer's snapshot installed: the backoff
     * starts over as after a success (the folder takes files again) */
    for (int i = 0; i < 4; i++) {
        snapsched_soon(&s);
        snapsched_began(&s, 6, 2000, now + (uint64_t)(4 + i) * S);
        (void)snapsched_finished(&s, false, now + (uint64_t)(4 + i) * S);
    }
    CHECK_EQ(snapsched_retry_wait(&s), 8 * S);
    snapsched_adopted(&s, 7);
    CHECK_EQ(s.failed_in_row, 0);
    CHECK_EQ(snapsched_retry_wait(&s), 0);
    snapsched_soon(&s);
    CHECK(snapsched_due(&s, 8, 2000, now + 7 * S + 1, false));
    /* no growth when retry_max_us is not above retry_us (the simulator's) */
    struct snapsched f;
    snapsched_init(&f, &CFG, 0, 0);
    for (int i = 0; i < 70; i++) {
        snapsched_soon(&f);
        snapsched_began(&f, 5, 2000, (uint64_t)(i + 1) * 10 * S);
        (void)snapsched_finished(&f, false, (uint64_t)(i + 1) * 10 * S);
    }
    CHECK_EQ(snapsched_retry_wait(&f), S);
}

int main(void)
{
    RUN(test_backoff);
    RUN(test_by_size);
    RUN(test_by_time_and_soon);
    RUN(test_failure_and_adopted);
    return CHECK_DONE();
}
