/* rabia-bench's latency histogram: HDR-style log-linear buckets over
 * microseconds. Values below 2^BENCH_HIST_SUB_BITS are exact; above, every
 * power of two [2^k, 2^(k+1)) is split into 2^(BENCH_HIST_SUB_BITS - 1)
 * equal buckets, so a bucket is at most 1/128 of its lower bound wide. A
 * percentile reports its bucket's midpoint, clamped to [min, max]: relative
 * error <= 1/256 (< 0.4%), well inside the 1% the README promises. Values
 * up to 2^36 us (19 h) get their own bucket; larger ones fall in the last
 * one (max stays exact). Fixed size, no allocation after init: recording is
 * an index computation and an increment. */
#ifndef RABIA_BENCH_HIST_H
#define RABIA_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 8                          /* 256 exact values, then 128 per octave */
#define BENCH_HIST_MAX_BITS 36                         /* 2^36 us, about 19 hours */
#define BENCH_HIST_HALF (1u << (BENCH_HIST_SUB_BITS - 1))
#define BENCH_HIST_BUCKETS ((BENCH_HIST_MAX_BITS - BENCH_HIST_SUB_BITS + 2) * BENCH_HIST_HALF)

struct bench_hist {
    uint64_t count;
    uint64_t min, max; /* exact; min = UINT64_MAX while empty */
    uint64_t sum;      /* for the mean */
    uint64_t b[BENCH_HIST_BUCKETS];
};

void bench_hist_init(struct bench_hist *h);
void bench_hist_record(struct bench_hist *h, uint64_t us);
/* dst += src (the threads' histograms into one). */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/* The value at quantile q (0..1): the smallest recorded value v such that
 * at least ceil(q * count) values are <= v, up to the bucket's width;
 * q >= 1 gives max exactly, q <= 0 min. 0 when empty. */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);
double bench_hist_mean(const struct bench_hist *h);

/* exposed for the unit test: bucket index of v and the bucket's [lo, hi] */
unsigned bench_hist_index(uint64_t v);
void bench_hist_bounds(unsigned idx, uint64_t *lo, uint64_t *hi);

#endif
