/* rabia-bench's histogram (cmd/bench_hist.c): percentiles of random samples
 * against an exact sort, within the bound bench_hist.h states (1/256; the
 * README promises 1%); merge equals recording everything in one; max and
 * min exact; bucket bounds contiguous. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../cmd/bench_hist.h"
#include "check.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* the exact percentile with the histogram's definition: the ceil(q*n)-th smallest */
static uint64_t exact(const uint64_t *sorted, size_t n, double q)
{
    size_t rank = (size_t)ceil(q * (double)n);
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

static int within(uint64_t got, uint64_t want, double rel)
{
    double d = fabs((double)got - (double)want);
    return d <= rel * (double)want || d < 1.0;
}

static void test_buckets_contiguous(void)
{
    uint64_t prev_hi = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        uint64_t lo, hi;
        bench_hist_bounds(i, &lo, &hi);
        if (i > 0)
            CHECK(lo == prev_hi + 1);
        CHECK(hi >= lo);
        /* the width is at most 1/128 of the lower bound (or exact) */
        CHECK(hi == lo || (double)(hi - lo + 1) <= (double)lo / 128.0);
        CHECK(bench_hist_index(lo) == i);
        CHECK(bench_hist_index(hi) == i);
        prev_hi = hi;
    }
    CHECK(bench_hist_index(UINT64_MAX) == BENCH_HIST_BUCKETS - 1);
}

/* distribution d: 0 uniform up to 60 s, 1 log-uniform 1 us..60 s, 2 small (< 300) */
static uint64_t sample(int d)
{
    switch (d) {
    case 0:
        return next() % 60000000ull;
    case 1:
        return (uint64_t)exp((double)(next() % 1000000) / 1e6 * log(6e7));
    default:
        return next() % 300;
    }
}

static void test_percentiles_vs_sort(void)
{
    enum { N = 200000 };
    uint64_t *v = malloc(N * sizeof *v);
    struct bench_hist *h = malloc(sizeof *h);
    CHECK(v && h);
    if (!v || !h)
        return;
    static const double qs[] = {0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999};
    for (int d = 0; d < 3; d++) {
        bench_hist_init(h);
        for (size_t i = 0; i < N; i++) {
            v[i] = sample(d);
            bench_hist_record(h, v[i]);
        }
        qsort(v, N, sizeof *v, cmp_u64);
        CHECK_EQ(h->count, N);
        CHECK_EQ(h->max, v[N - 1]);
        CHECK_EQ(h->min, v[0]);
        CHECK_EQ(bench_hist_quantile(h, 1.0), v[N - 1]);
        for (size_t k = 0; k < sizeof qs / sizeof *qs; k++) {
            uint64_t got = bench_hist_quantile(h, qs[k]), want = exact(v, N, qs[k]);
            if (!within(got, want, 0.01)) {
                fprintf(stderr, "dist %d q %g: got %llu, exact %llu\n", d, qs[k],
                        (unsigned long long)got, (unsigned long long)want);
                CHECK(0);
            }
            /* the tighter bound of the header */
            CHECK(within(got, want, 1.0 / 256));
        }
    }
    free(v);
    free(h);
}

static void test_merge(void)
{
    struct bench_hist *a = malloc(sizeof *a), *b = malloc(sizeof *b), *all = malloc(sizeof *all);
    CHECK(a && b && all);
    if (!a || !b || !all)
        return;
    bench_hist_init(a);
    bench_hist_init(b);
    bench_hist_init(all);
    for (int i = 0; i < 50000; i++) {
        uint64_t x = sample(1);
        bench_hist_record(i % 3 ? a : b, x);
        bench_hist_record(all, x);
    }
    bench_hist_record(b, 123456789ull); /* the max comes from b */
    bench_hist_record(all, 123456789ull);
    bench_hist_merge(a, b);
    CHECK_EQ(a->count, all->count);
    CHECK_EQ(a->sum, all->sum);
    CHECK_EQ(a->max, 123456789ull);
    CHECK_EQ(a->min, all->min);
    CHECK(memcmp(a->b, all->b, sizeof a->b) == 0);
    for (double q = 0.05; q < 1.0; q += 0.05)
        CHECK_EQ(bench_hist_quantile(a, q), bench_hist_quantile(all, q));
    free(a);
    free(b);
    free(all);
}

static void test_empty_and_huge(void)
{
    struct bench_hist *h = malloc(sizeof *h);
    CHECK(h);
    if (!h)
        return;
    bench_hist_init(h);
    CHECK_EQ(bench_hist_quantile(h, 0.5), 0);
    bench_hist_record(h, 1ull << 40); /* beyond the last bucket: max stays exact */
    CHECK_EQ(bench_hist_quantile(h, 0.5), 1ull << 40);
    CHECK_EQ(h->max, 1ull << 40);
    free(h);
}

int main(void)
{
    RUN(test_buckets_contiguous);
    RUN(test_percentiles_vs_sort);
    RUN(test_merge);
    RUN(test_empty_and_huge);
    return CHECK_DONE();
}
