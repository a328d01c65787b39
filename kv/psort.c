/* kv/psort.c: the two sorts of Redis whose handling of equal elements a
 * reply can show (GEOSEARCH's members at one distance, SORT ... BY ...
 * ALPHA's elements with one weight), done the way redis-server does them,
 * so that those come back in its order:
 *   - kv_sort_stable: glibc's qsort, which Redis calls, is a merge sort
 *     when it can allocate (every size a command here sorts): stable;
 *   - kv_sort_partial: Redis's pqsort (pqsort.c, from NetBSD's qsort:
 *     Bentley and McIlroy's), which sorts only the parts overlapping a
 *     range of positions. Its element moves are Redis's, so equal elements
 *     end up where they end up there. */
#include <string.h>

#include "internal.h"

/* A scratch element for swaps, on the stack: the sorted structures are small. */
#define PSORT_ELEM_MAX 64

int kv_sort_stable(struct kv_store *s, void *base, size_t n, size_t size, kv_cmp_fn cmp, void *arg)
{
    RABIA_ASSERT(size > 0 && size <= PSORT_ELEM_MAX);
    if (n < 2)
        return 0;
    uint8_t *v = base, *tmp = kv_alloc(s, n * size);
    if (!tmp)
        return -ENOMEM;
    /* bottom-up: runs of w, merged pairwise, the left run first on ties */
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                size_t from = cmp(v + j * size, v + i * size, arg) < 0 ? j++ : i++;
                memcpy(tmp + k++ * size, v + from * size, size);
            }
            memcpy(tmp + k * size, v + i * size, (mid - i) * size);
            k += mid - i;
            memcpy(tmp + k * size, v + j * size, (hi - j) * size);
        }
        memcpy(v, tmp, n * size);
    }
    kv_free(s, tmp);
    return 0;
}

static void swap_at(uint8_t *v, size_t size, size_t i, size_t j)
{
    uint8_t t[PSORT_ELEM_MAX];
    memcpy(t, v + i * size, size);
    memcpy(v + i * size, v + j * size, size);
    memcpy(v + j * size, t, size);
}

/* Swap the k elements from i with the k from j (the runs may not overlap). */
static void swap_run(uint8_t *v, size_t size, size_t i, size_t j, size_t k)
{
    for (size_t m = 0; m < k; m++)
        swap_at(v, size, i + m, j + m);
}

static size_t med3(const uint8_t *v, size_t size, size_t a, size_t b, size_t c, kv_cmp_fn cmp, void *arg)
{
    const uint8_t *pa = v + a * size, *pb = v + b * size, *pc = v + c * size;
    if (cmp(pa, pb, arg) < 0)
        return cmp(pb, pc, arg) < 0 ? b : cmp(pa, pc, arg) < 0 ? c : a;
    return cmp(pb, pc, arg) > 0 ? b : cmp(pa, pc, arg) < 0 ? a : c;
}

/* Redis recurses into the left part and loops on the right one; the two
 * parts are disjoint and each is partitioned the same whatever is done
 * first, so here the larger waits on a stack and the smaller is done
 * first: at most log2(n) wait, where Redis's recursion can go n deep on
 * elements placed for it. */
#define PSORT_STACK 64

void kv_sort_partial(void *base, size_t n, size_t size, kv_cmp_fn cmp, void *arg, size_t lrange, size_t rrange)
{
    RABIA_ASSERT(size > 0 && size <= PSORT_ELEM_MAX);
    RABIA_ASSERT(lrange <= rrange && rrange < n);
    uint8_t *v = base;
    struct {
        size_t lo, n;
    } stack[PSORT_STACK];
    size_t depth = 0, lo = 0;
#define AT(i) (v + (i) * size)
    for (;;) {
        /* [lo, lo + n): partition it, or sort it when small */
        if (n < 7) {
            for (size_t m = lo + 1; m < lo + n; m++)
                for (size_t l = m; l > lo && cmp(AT(l - 1), AT(l), arg) > 0; l--)
                    swap_at(v, size, l, l - 1);
            n = 0;
        } else {
            size_t pm = lo + n / 2;
            if (n > 7) {
                size_t pl = lo, pn = lo + n - 1;
                if (n > 40) {
                    size_t d = n / 8;
                    pl = med3(v, size, pl, pl + d, pl + 2 * d, cmp, arg);
                    pm = med3(v, size, pm - d, pm, pm + d, cmp, arg);
                    pn = med3(v, size, pn - 2 * d, pn - d, pn, cmp, arg);
                }
                pm = med3(v, size, pl, pm, pn, cmp, arg);
            }
            swap_at(v, size, lo, pm);
            /* [lo]: the pivot; (lo, pa) and (pd, end): equal to it;
             * [pa, pb): less; (pc, pd]: greater */
            size_t pa = lo + 1, pb = lo + 1, pc = lo + n - 1, pd = lo + n - 1;
            for (;;) {
                int r;
                while (pb <= pc && (r = cmp(AT(pb), AT(lo), arg)) <= 0) {
                    if (r == 0)
                        swap_at(v, size, pa++, pb);
                    pb++;
                }
                while (pb <= pc && (r = cmp(AT(pc), AT(lo), arg)) >= 0) {
                    if (r == 0)
                        swap_at(v, size, pc, pd--);
                    pc--;
                }
                if (pb > pc)
                    break;
                swap_at(v, size, pb++, pc--);
            }
            size_t end = lo + n;
            size_t r = pa - lo < pb - pa ? pa - lo : pb - pa;
            swap_run(v, size, lo, pb - r, r);
            r = pd - pc < end - pd - 1 ? pd - pc : end - pd - 1;
            swap_run(v, size, pb, end - r, r);
            /* the less part [lo, lo + nl), the greater [end - ng, end):
             * each sorted only when it has two or more and meets the range */
            size_t nl = pb - pa, ng = pd - pc, glo = end - ng;
            bool do_l = nl > 1 && !(lrange > lo + nl - 1 || rrange < lo);
            bool do_g = ng > 1 && !(lrange > glo + ng - 1 || rrange < glo);
            if (do_l && do_g) {
                RABIA_ASSERT(depth < PSORT_STACK); /* each wait halves what this path goes on with */
                if (nl >= ng) {
                    stack[depth].lo = lo, stack[depth].n = nl, depth++;
                    lo = glo, n = ng;
                } else {
                    stack[depth].lo = glo, stack[depth].n = ng, depth++;
                    n = nl;
                }
                continue;
            }
            if (do_l) {
                n = nl;
                continue;
            }
            if (do_g) {
                lo = glo, n = ng;
                continue;
            }
            n = 0;
        }
        if (depth == 0)
            return;
        depth--;
        lo = stack[depth].lo, n = stack[depth].n;
    }
#undef AT
}
