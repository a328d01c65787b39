/* batch/batcher: cut rules (full, timeout, adaptive idle), backpressure,
 * submit retry, body contents, and a synthetic-load simulation that
 * measures the batch sizes and added latency of the adaptive cut. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batcher.h"
#include "check.h"

static struct rabia_req req(uint64_t id, uint64_t seq, const char *op)
{
    struct rabia_req r = {id, seq, seq > 0 ? seq - 1 : 0, (const uint8_t *)op,
                          (uint32_t)strlen(op)};
    return r;
}

static void test_config(void)
{
    struct batcher b;
    struct batcher_cfg cfg;
    batcher_cfg_default(&cfg);
    CHECK_EQ(cfg.max_bytes, 64 * 1024);
    CHECK(cfg.adaptive);
    CHECK_EQ(batcher_init(&b, &cfg), 0);
    CHECK_EQ(b.cfg.max_pending_bytes, 5 * 64 * 1024);
    CHECK(batcher_peek(&b) == NULL);
    CHECK_EQ(batcher_deadline(&b), UINT64_MAX);
    CHECK(!batcher_ready(&b, 0, true));
    CHECK(batcher_poll(&b, 0, true) == NULL);
    batcher_free(&b);

    struct batcher_cfg bad = cfg;
    bad.max_bytes = 31;
    CHECK_EQ(batcher_init(&b, &bad), RABIA_E_CONFIG);
    bad = cfg;
    bad.max_bytes = RABIA_MAX_BATCH_BODY + 1;
    CHECK_EQ(batcher_init(&b, &bad), RABIA_E_CONFIG);
    bad = cfg;
    bad.max_reqs = 0;
    CHECK_EQ(batcher_init(&b, &bad), RABIA_E_CONFIG);
    bad = cfg;
    bad.max_cut = 0;
    CHECK_EQ(batcher_init(&b, &bad), RABIA_E_CONFIG);
    bad = cfg;
    bad.max_pending_bytes = 1000;
    CHECK_EQ(batcher_init(&b, &bad), RABIA_E_CONFIG);
    bad = cfg;
    bad.max_bytes = RABIA_MAX_BATCH_BODY;
    CHECK_EQ(batcher_init(&b, &bad), 0);
    batcher_free(&b);
}

/* The body holds exactly these requests, in order. */
static void check_body(const struct rabia_buf *body, const struct rabia_req *want, uint32_t n)
{
    CHECK_EQ(rabia_batch_validate(body->data, body->len), 0);
    CHECK_EQ(rabia_batch_count(body->data, body->len), n);
    struct rabia_batch_iter it;
    struct rabia_req r;
    CHECK_EQ(rabia_batch_iter_init(&it, body->data, body->len), 0);
    for (uint32_t i = 0; i < n; i++) {
        CHECK_EQ(rabia_batch_iter_next(&it, &r), 1);
        CHECK_EQ(r.client_id, want[i].client_id);
        CHECK_EQ(r.seq, want[i].seq);
        CHECK_EQ(r.ack, want[i].ack);
        CHECK_EQ(r.op_len, want[i].op_len);
        CHECK(r.op_len == 0 || memcmp(r.op, want[i].op, r.op_len) == 0);
    }
    CHECK_EQ(rabia_batch_iter_next(&it, &r), 0);
}

static void test_idle_core_cuts_at_once(void)
{
    struct batcher b;
    struct batcher_cfg cfg;
    batcher_cfg_default(&cfg);
    CHECK_EQ(batcher_init(&b, &cfg), 0);
    char op[8] = "op";
    struct rabia_req r = req(1, 1, op); /* op is copied: change it after */
    CHECK_EQ(batcher_add(&b, &r, 1000), 0);
    op[0] = 'X';
    CHECK(batcher_ready(&b, 1000, true));
    CHECK(!batcher_ready(&b, 1000, false));
    const struct rabia_buf *body = batcher_poll(&b, 1000, true);
    CHECK(body != NULL);
    struct rabia_req want = req(1, 1, "op");
    check_body(body, &want, 1);
    /* a failed submit: the same batch again, unchanged */
    CHECK(batcher_peek(&b) == body);
    CHECK(batcher_poll(&b, 5000, true) == body);
    batcher_pop(&b);
    CHECK(batcher_peek(&b) == NULL);
    CHECK_EQ(batcher_stats(&b)->cut_idle, 1);
    CHECK_EQ(batcher_stats(&b)->batches, 1);
    CHECK_EQ(batcher_stats(&b)->wait_us_max, 0);
    batcher_free(&b);
}

static void test_busy_core_waits_for_timeout(void)
{
    struct batcher b;
    struct batcher_cfg cfg;
    batcher_cfg_default(&cfg);
    cfg.timeout_us = 300;
    CHECK_EQ(batcher_init(&b, &cfg), 0);
    struct rabia_req want[3] = {req(1, 1, "a"), req(2, 7, "bb"), req(1, 2, "")};
    CHECK_EQ(batcher_add(&b, &want[0], 100), 0);
    CHECK_EQ(batcher_deadline(&b), 400);
    CHECK_EQ(batcher_add(&b, &want[1], 150), 0);
    CHECK_EQ(batcher_add(&b, &want[2], 399), 0);
    CHECK_EQ(batcher_deadline(&b), 400); /* the oldest request sets it */
    CHECK(batcher_poll(&b, 399, false) == NULL);
    CHECK(!batcher_ready(&b, 399, false));
    CHECK(batcher_ready(&b, 400, false));
    const struct rabia_buf *body = batcher_poll(&b, 400, false);
    CHECK(body != NULL);
    check_body(body, want, 3);
    CHECK_EQ(batcher_open_count(&b), 0);
    CHECK_EQ(batcher_cut_count(&b), 1);
    CHECK_EQ(batcher_deadline(&b), UINT64_MAX);
    batcher_pop(&b);
    CHECK_EQ(batcher_stats(&b)->cut_timeout, 1);
    CHECK_EQ(batcher_stats(&b)->wait_us_max, 300);
    CHECK_EQ(batcher_stats(&b)->requests, 3);

    /* not adaptive: an idle core does not cut */
    batcher_free(&b);
    cfg.adaptive = false;
    CHECK_EQ(batcher_init(&b, &cfg), 0);
    CHECK_EQ(batcher_add(&b, &want[0], 0), 0);
    CHECK(batcher_poll(&b, 299, true) == NULL);
    CHECK(batcher_poll(&b, 300, true) != NULL);
    batcher_free(&b);
}

static void test_full_cuts(void)
{
    struct batcher b;
    struct batcher_cfg cfg;
    batcher_cfg_default(&cfg);
    cfg.max_reqs = 3;
    CHECK_EQ(batcher_init(&b, &cfg), 0);
    struct rabia_req r = req(1, 1, "x");
    for (int i = 0; i < 3; i++)
        CHECK_EQ(batcher_add(&b, &r, 0), 0);
    CHECK_EQ(batcher_cut_count(&b), 1); /* cut by the third request */
    CHECK_EQ(batcher_stats(&b)->cut_full, 1);
    CHECK_EQ(rabia_batch_count(batcher_peek(&b)->data, batcher_peek(&b)->len), 3);
    batcher_free(&b);

    /* by bytes: body = 12 + n * (28 + op_len). Room for two 10-byte ops and
     * an empty one, not for a third 10-byte op. */
    batcher_cfg_default(&cfg);
    cfg.max_bytes = RABIA_BATCH_HEADER + 2 * (28 + 10) + 30;
    cfg.max_pending_bytes = 10 * cfg.max_bytes;
    CHECK_EQ(batcher_init(&b, &cfg), 0);
    r = req(1, 1, "0123456789");
    CHECK_EQ(batcher_add(&b, &r, 0), 0);
    CHECK_EQ(batcher_add(&b, &r, 0), 0);
    CHECK_EQ(batcher_cut_count(&b), 0);
    CHECK_EQ(batcher_add(&b, &r, 0), 0); /* does not fit: the first two leave */
    CHECK_EQ(batcher_cut_count(&b), 1);
    CHECK_EQ(batcher_open_count(&b), 1);
    CHECK_EQ(batcher_peek(&b)->len, RABIA_BATCH_HEADER + 2 * 38);
    /* one request alone larger than a batch: 12 + 28 + 79 > 110 */
    char op[128];
    memset(op, 'z', sizeof op);
    op[79] = 0;
    struct rabia_req huge = req(1, 2, op);
    CHECK_EQ(batcher_add(&b, &huge, 0), -EMSGSIZE);
    /* the largest request that fits alone: it cuts the open batch, fills
     * one by itself, and that one is cut at once (no room left at all) */
    op[78] = 0;
    struct rabia_req fits = req(1, 3, op);
    CHECK_EQ(batcher_add(&b, &fits, 0), 0);
    CHECK_EQ(batcher_cut_count(&b), 3);
    CHECK_EQ(batcher_open_count(&b), 0);
    batcher_pop(&b);
    batcher_pop(&b);
    CHECK_EQ(batcher_peek(&b)->len, cfg.max_bytes);

    /* a batch with no room even for an empty op is cut at once */
    batcher_free(&b);
    cfg.max_bytes = 4 + 2 * (28 + 10) + 27;
    CHECK_EQ(batcher_init(&b, &cfg), 0);
    r = req(1, 1, "0123456789");
    CHECK_EQ(batcher_add(&b, &r, 0), 0);
    CHECK_EQ(batcher_add(&b, &r, 0), 0);
    CHECK_EQ(batcher_cut_count(&b), 1);
    batcher_free(&b);
}

static void test_backpressure(void)
{
    struct batcher b;
    struct batcher_cfg cfg;
    batcher_cfg_default(&cfg);
    cfg.max_reqs = 2;
    cfg.max_cut = 2;
    CHECK_EQ(batcher_init(&b, &cfg), 0);
    struct rabia_req r = req(1, 1, "v");
    /* the core never takes anything: 2 cut batches + a full open one */
    for (int i = 0; i < 6; i++)
        CHECK_EQ(batcher_add(&b, &r, (uint64_t)i), 0);
    CHECK_EQ(batcher_cut_count(&b), 2);
    CHECK_EQ(batcher_open_count(&b), 2);
    CHECK_EQ(batcher_add(&b, &r, 10), -ENOBUFS);
    CHECK_EQ(batcher_stats(&b)->refused, 1);
    CHECK(batcher_ready(&b, 10, false));
    batcher_pop(&b); /* the core took one: the full open batch is cut */
    CHECK(batcher_poll(&b, 11, false) != NULL);
    CHECK_EQ(batcher_cut_count(&b), 2);
    CHECK_EQ(batcher_open_count(&b), 0);
    CHECK_EQ(batcher_add(&b, &r, 12), 0);
    batcher_free(&b);

    /* the pending-bytes bound */
    batcher_cfg_default(&cfg);
    cfg.max_bytes = 1000;
    cfg.max_pending_bytes = 1000;
    CHECK_EQ(batcher_init(&b, &cfg), 0);
    char op[500];
    memset(op, 'p', sizeof op);
    op[400] = 0;
    r = req(1, 1, op); /* 428 bytes each */
    CHECK_EQ(batcher_add(&b, &r, 0), 0);
    CHECK_EQ(batcher_add(&b, &r, 0), 0);
    CHECK_EQ(batcher_add(&b, &r, 0), -ENOBUFS);
    CHECK_EQ(batcher_flush(&b, 1), 0);
    batcher_pop(&b);
    CHECK_EQ(batcher_add(&b, &r, 2), 0);
    CHECK_EQ(batcher_stats(&b)->cut_flush, 1);
    batcher_free(&b);
}

/* ---------------------------------------------------------------------- */
/* Synthetic load: a consensus core that decides one batch per slot_us
 * (window 1: a slot in flight, later batches wait in its queue of up to 64),
 * requests arriving per_tick at a time every tick_us. One loop iteration per
 * microsecond of simulated time. */

struct sim_result {
    uint64_t reqs, batches;
    double avg_batch;
    uint32_t max_batch;
    double avg_wait_us; /* add -> taken by the core: the batching delay */
    uint64_t max_wait_us;
    double avg_e2e_us;  /* add -> decided */
    uint64_t max_e2e_us;
};

#define SIM_QUEUE 64

static void simulate(const struct batcher_cfg *cfg, uint64_t duration_us, uint32_t tick_us,
                     uint32_t per_tick, uint64_t slot_us, struct sim_result *res)
{
    struct batcher b;
    CHECK_EQ(batcher_init(&b, cfg), 0);
    size_t max_reqs = (size_t)((duration_us + tick_us - 1) / tick_us) * per_tick;
    uint64_t *arrival = malloc(max_reqs * sizeof *arrival);
    /* batches the core holds: [first request, count), in order */
    uint64_t q_first[SIM_QUEUE + 1];
    uint32_t q_count[SIM_QUEUE + 1];
    uint32_t q_head = 0, q_n = 0; /* q_head: in flight when q_n > 0 */
    uint64_t done_at = 0;
    uint64_t n_arrived = 0, n_added = 0, n_submitted = 0, n_decided = 0;
    double wait_sum = 0, e2e_sum = 0;
    uint64_t wait_max = 0, e2e_max = 0;
    char op[33];
    memset(op, 'k', 32);
    op[32] = 0;
    for (uint64_t t = 0; n_decided < max_reqs && t < duration_us * 100; t++) {
        /* the slot in flight decides */
        if (q_n > 0 && t >= done_at) {
            for (uint32_t i = 0; i < q_count[q_head]; i++) {
                uint64_t e2e = t - arrival[q_first[q_head] + i];
                e2e_sum += (double)e2e;
                if (e2e > e2e_max)
                    e2e_max = e2e;
            }
            n_decided += q_count[q_head];
            q_head = (q_head + 1) % (SIM_QUEUE + 1);
            if (--q_n > 0)
                done_at = t + slot_us;
        }
        /* arrivals (a refused request stays with its client: backlog) */
        if (t < duration_us && t % tick_us == 0)
            for (uint32_t i = 0; i < per_tick && n_arrived < max_reqs; i++)
                arrival[n_arrived++] = t;
        while (n_added < n_arrived) {
            struct rabia_req r = req(n_added % 100, n_added, op);
            if (batcher_add(&b, &r, t) != 0)
                break;
            n_added++;
        }
        /* submit whatever is ready while the core takes it */
        const struct rabia_buf *body;
        while ((body = batcher_poll(&b, t, q_n == 0)) && q_n < SIM_QUEUE) {
            uint32_t count = rabia_batch_count(body->data, body->len);
            uint32_t slot = (q_head + q_n) % (SIM_QUEUE + 1);
            q_first[slot] = n_submitted;
            q_count[slot] = count;
            for (uint32_t i = 0; i < count; i++) {
                uint64_t w = t - arrival[n_submitted + i];
                wait_sum += (double)w;
                if (w > wait_max)
                    wait_max = w;
            }
            n_submitted += count;
            if (q_n++ == 0)
                done_at = t + slot_us;
            batcher_pop(&b);
        }
    }
    CHECK_EQ(n_decided, max_reqs);
    res->reqs = n_decided;
    res->batches = batcher_stats(&b)->batches;
    res->avg_batch = batcher_avg_reqs(&b);
    res->max_batch = batcher_stats(&b)->max_batch_reqs;
    res->avg_wait_us = n_decided ? wait_sum / (double)n_decided : 0;
    res->max_wait_us = wait_max;
    res->avg_e2e_us = n_decided ? e2e_sum / (double)n_decided : 0;
    res->max_e2e_us = e2e_max;
    free(arrival);
    batcher_free(&b);
}

static void test_adaptive_simulation(void)
{
    struct batcher_cfg cfg;
    batcher_cfg_default(&cfg);
    cfg.max_bytes = 256 * 1024; /* the core must be configured as large */
    struct {
        const char *load;
        uint32_t tick_us, per_tick;
        uint64_t duration_us;
    } loads[] = {
        {"1 req / 100 us", 100, 1, 1000000},
        {"1 req / us", 1, 1, 100000},
        {"10 req / us", 1, 10, 20000},
    };
    uint64_t slots[] = {50, 200};
    printf("  32-byte ops, max_bytes %u, max_reqs %u, timeout %llu us\n", cfg.max_bytes,
           cfg.max_reqs, (unsigned long long)cfg.timeout_us);
    printf("  %-15s %5s %-8s %8s %10s %9s %9s %9s %9s %9s\n", "load", "slot", "cut", "reqs",
           "batches", "avg batch", "max batch", "avg wait", "max wait", "avg e2e");
    for (size_t s = 0; s < sizeof slots / sizeof slots[0]; s++) {
        for (size_t l = 0; l < sizeof loads / sizeof loads[0]; l++) {
            for (int adaptive = 1; adaptive >= 0; adaptive--) {
                cfg.adaptive = adaptive != 0;
                struct sim_result r;
                simulate(&cfg, loads[l].duration_us, loads[l].tick_us, loads[l].per_tick,
                         slots[s], &r);
                printf("  %-15s %5llu %-8s %8llu %10llu %9.1f %9u %9.1f %9llu %9.1f\n",
                       loads[l].load, (unsigned long long)slots[s],
                       adaptive ? "adaptive" : "timeout", (unsigned long long)r.reqs,
                       (unsigned long long)r.batches, r.avg_batch, r.max_batch, r.avg_wait_us,
                       (unsigned long long)r.max_wait_us, r.avg_e2e_us);
                /* The bound: with the adaptive cut a request waits at most
                 * for the slot in flight, and never beyond the timeout. */
                uint64_t bound = slots[s] < cfg.timeout_us ? slots[s] : cfg.timeout_us;
                if (adaptive)
                    CHECK(r.max_wait_us <= bound);
                else
                    CHECK(r.max_wait_us <= cfg.timeout_us);
                if (adaptive && l == 0 && slots[s] < 100) {
                    /* light load, fast core: no batching delay at all */
                    CHECK_EQ(r.max_wait_us, 0);
                    CHECK(r.avg_batch == 1.0);
                }
                if (adaptive && l == 2)
                    CHECK(r.avg_batch >= 100); /* heavy load: big batches */
            }
        }
    }
    /* Overload: with the core's default 64 KiB batches a 200 us slot moves
     * at most ~1090 such requests, 5.5 per us: at 10 per us the backlog
     * (held back by -ENOBUFS) and the latency grow for as long as it lasts.
     * max_bytes must cover rate x slot time x request size. */
    batcher_cfg_default(&cfg);
    struct sim_result r;
    simulate(&cfg, 20000, 1, 10, 200, &r);
    printf("  %-15s %5u %-8s %8llu %10llu %9.1f %9u %9.1f %9llu %9.1f  (max_bytes 64 KiB: "
           "overloaded)\n",
           "10 req / us", 200, "adaptive", (unsigned long long)r.reqs,
           (unsigned long long)r.batches, r.avg_batch, r.max_batch, r.avg_wait_us,
           (unsigned long long)r.max_wait_us, r.avg_e2e_us);
    CHECK(r.max_wait_us > cfg.timeout_us);
}

/* Cost of the batcher itself: add + poll + pop per request. */
static void test_speed(void)
{
    struct batcher b;
    struct batcher_cfg cfg;
    batcher_cfg_default(&cfg);
    CHECK_EQ(batcher_init(&b, &cfg), 0);
    char op[33];
    memset(op, 'v', 32);
    op[32] = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t n = 2000000, batches = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct rabia_req r = req(i & 63, i, op);
        CHECK_EQ(batcher_add(&b, &r, i / 10), 0);
        if ((i & 255) == 255 && batcher_poll(&b, i / 10, true)) {
            batcher_pop(&b);
            batches++;
        }
        while (batcher_peek(&b)) { /* cut by size */
            batcher_pop(&b);
            batches++;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("  %llu requests (32-byte ops) in %llu batches: %.1f ns per request\n",
           (unsigned long long)n, (unsigned long long)batches, ns / (double)n);
    batcher_free(&b);
}

int main(void)
{
    RUN(test_config);
    RUN(test_idle_core_cuts_at_once);
    RUN(test_busy_core_waits_for_timeout);
    RUN(test_full_cuts);
    RUN(test_backpressure);
    RUN(test_adaptive_simulation);
    RUN(test_speed);
    return CHECK_DONE();
}
