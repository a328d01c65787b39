/* See bench_hist.h for the bucket layout and its error bound. */
#include "bench_hist.h"

#include <assert.h>
#include <math.h>
#include <string.h>

void bench_hist_init(struct bench_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

unsigned bench_hist_index(uint64_t v)
{
    if (v < (1u << BENCH_HIST_SUB_BITS))
        return (unsigned)v; /* exact region: buckets 0..255 */
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    if (msb >= BENCH_HIST_MAX_BITS)
        return BENCH_HIST_BUCKETS - 1;
    /* octave [2^msb, 2^(msb+1)) has HALF buckets of width 2^shift */
    unsigned shift = msb - (BENCH_HIST_SUB_BITS - 1);
    unsigned sub = (unsigned)(v >> shift) - BENCH_HIST_HALF; /* 0..HALF-1 */
    unsigned idx = (shift + 1) * BENCH_HIST_HALF + sub;
    assert(idx < BENCH_HIST_BUCKETS);
    return idx;
}

void bench_hist_bounds(unsigned idx, uint64_t *lo, uint64_t *hi)
{
    assert(idx < BENCH_HIST_BUCKETS);
    if (idx < (1u << BENCH_HIST_SUB_BITS)) {
        *lo = *hi = idx;
        return;
    }
    unsigned shift = idx / BENCH_HIST_HALF - 1, sub = idx % BENCH_HIST_HALF;
    *lo = (uint64_t)(BENCH_HIST_HALF + sub) << shift;
    *hi = *lo + ((uint64_t)1 << shift) - 1;
}

void bench_hist_record(struct bench_hist *h, uint64_t us)
{
    h->b[bench_hist_index(us)]++;
    h->count++;
    h->sum += us;
    if (us < h->min)
        h->min = us;
    if (us > h->max)
        h->max = us;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q <= 0)
        return h->min;
    if (q >= 1)
        return h->max;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t lo, hi;
            bench_hist_bounds(i, &lo, &hi);
            uint64_t v = lo + (hi - lo) / 2;
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max; /* counts and count disagree: cannot happen */
}

double bench_hist_mean(const struct bench_hist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}
