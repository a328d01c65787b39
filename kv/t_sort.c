/* kv/t_sort.c: SORT and SORT_RO, as Redis 7.0.15's sort.c answers them
 * (feature level 5).
 *
 * SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
 * [ALPHA] [STORE destination] sorts a list, set or sorted set by its
 * elements' values (numbers, or bytes with ALPHA) or by other keys' values
 * named by a pattern (BY weight_* reads the string weight_<element>;
 * BY h_*->f the field f of the hash h_<element>), and returns or stores
 * the elements or other keys' values (GET). What makes the replies
 * Redis's, byte for byte:
 *   - numbers are read as Redis reads them: strtod up to the first NUL
 *     ("" is 0, "1x" an error, hex and "inf" accepted, NaN and out of range
 *     refused); equal numbers are ordered by the elements' bytes;
 *   - ALPHA compares as strcoll does in the C locale redis-server runs in
 *     (bytes up to the first NUL), or memcmp with STORE, as Redis does; a
 *     missing BY value sorts first;
 *   - with ALPHA and BY, elements whose BY values compare equal stay in the
 *     order the sort leaves them: the stable sort or, with a LIMIT, Redis's
 *     partial quicksort (kv/psort.c). The order before sorting is a list's
 *     own, a set's and a sorted set's hash order: the same on every replica,
 *     not Redis's for a set or a sorted set (kv/README.md "Differences");
 *   - BY a pattern without '*' sorts nothing: a list or a sorted set comes
 *     back in its order, a set in its own, except in a script or with STORE,
 *     where Redis sorts it with ALPHA instead.
 * Keys named by patterns are read (expired ones deleted on the way, as any
 * read does); the sorted key itself is not changed until STORE replaces
 * the destination, so elements are copied once into one block. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "skiplist.h"

struct sort_el {
    uint64_t off;        /* the element in the block: len bytes and a NUL */
    uint32_t len;
    double score;        /* the number it sorts by (not ALPHA) */
    const uint8_t *cmp;  /* ALPHA BY: the value it sorts by (NULL: none) */
    size_t cmp_len;
};

struct sort_ctx {
    const uint8_t *block;
    bool desc, alpha, bypattern, store;
};

/* strcoll in the C locale: bytes as unsigned up to the first NUL of either. */
static int c_strcmp(const uint8_t *a, const uint8_t *b)
{
    for (;; a++, b++) {
        if (*a != *b || !*a)
            return (int)*a - (int)*b;
    }
}

/* compareStringObjects: memcmp of the common length, then the lengths. */
static int bin_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);
    return r ? r : an < bn ? -1 : an > bn ? 1 : 0;
}

/* Redis's sortCompare. The blocks are NUL-terminated (kv_dup, kv_obj str,
 * the copy below), so c_strcmp stops in them. */
static int sort_cmp(const void *pa, const void *pb, void *arg)
{
    const struct sort_el *a = pa, *b = pb;
    const struct sort_ctx *x = arg;
    const uint8_t *ea = x->block + a->off, *eb = x->block + b->off;
    int r;
    if (!x->alpha) {
        r = a->score > b->score ? 1 : a->score < b->score ? -1 : bin_cmp(ea, a->len, eb, b->len);
    } else if (x->bypattern) {
        if (!a->cmp || !b->cmp)
            r = a->cmp == b->cmp ? 0 : !a->cmp ? -1 : 1;
        else
            r = x->store ? bin_cmp(a->cmp, a->cmp_len, b->cmp, b->cmp_len) : c_strcmp(a->cmp, b->cmp);
    } else {
        r = x->store ? bin_cmp(ea, a->len, eb, b->len) : c_strcmp(ea, eb);
    }
    /* Redis's results are strcoll's and memcmp's: only the sign matters */
    r = r > 0 ? 1 : r < 0 ? -1 : 0;
    return x->desc ? -r : r;
}

/* Redis's lookupKeyByPattern: "#" is the element itself; else the first
 * '*' (before any NUL: Redis uses C string functions on the pattern) is
 * replaced by the element, and "->field" after it (with a field) reads
 * that field of a hash; a string key's value otherwise. 1 and *val, 0 for
 * nothing (no '*', no key, another type, no field), or -ENOMEM. *buf holds
 * the key built. */
static int by_pattern(struct kv_ctx *c, const uint8_t *pat, size_t pn, const uint8_t *el, size_t en,
                      struct rabia_buf *buf, const uint8_t **val, size_t *vn)
{
    if (pn >= 1 && pat[0] == '#' && (pn == 1 || pat[1] == 0)) {
        *val = el;
        *vn = en;
        return 1;
    }
    size_t cstr = strnlen((const char *)pat, pn); /* what strchr and strstr see */
    const uint8_t *star = memchr(pat, '*', cstr);
    if (!star)
        return 0;
    size_t sp = (size_t)(star - pat), fieldlen = 0;
    for (size_t i = sp + 1; i + 2 < cstr; i++) /* "->" with a field after it */
        if (pat[i] == '-' && pat[i + 1] == '>') {
            fieldlen = pn - i - 2;
            break;
        }
    size_t postfix = pn - (sp + 1) - (fieldlen ? fieldlen + 2 : 0);
    rabia_buf_clear(buf);
    if (rabia_buf_append(buf, pat, sp) || rabia_buf_append(buf, el, en) || rabia_buf_append(buf, star + 1, postfix))
        return -ENOMEM;
    struct kv_dent *ke = kv_find(c, buf->data, buf->len);
    if (!ke)
        return 0;
    struct kv_obj *o = ke->v.p;
    if (fieldlen)
        return o->type == KV_HASH && kv_hash_get(c->s, o, pat + pn - fieldlen, fieldlen, val, vn);
    if (o->type != KV_STRING)
        return 0;
    *val = o->str;
    *vn = o->len;
    return 1;
}

/* A number as Redis's SORT reads it: strtod of p (NUL-terminated) up to
 * its first NUL, nothing left over, not out of range, not NaN. */
static bool sort_number(const uint8_t *p, double *d)
{
    char *end;
    errno = 0;
    *d = strtod((const char *)p, &end);
    return *end == 0 && errno != ERANGE && !isnan(*d);
}

struct sort_load {
    struct kv_store *s;
    struct sort_el *v;
    uint64_t n, cap;
    struct rabia_buf block;
};

static int load_el(void *arg, const uint8_t *p, size_t n)
{
    struct sort_load *l = arg;
    RABIA_ASSERT(l->n < l->cap && n <= UINT32_MAX);
    l->v[l->n++] = (struct sort_el){.off = l->block.len, .len = (uint32_t)n};
    uint8_t nul = 0;
    return rabia_buf_append(&l->block, p, n) || rabia_buf_append(&l->block, &nul, 1) ? -ENOMEM : 0;
}

static bool has_star(const uint8_t *p, size_t n)
{
    return memchr(p, '*', strnlen((const char *)p, n)) != NULL;
}

static int sort_generic(struct kv_ctx *c, bool readonly)
{
    bool desc = false, alpha = false, dontsort = false;
    int64_t limit_start = 0, limit_count = -1;
    int32_t by = -1, store = -1;
    uint32_t ngets = 0;
    /* the GET patterns' arguments, in order (at most half the arguments) */
    uint32_t *gets = kv_alloc(c->s, (c->argc / 2 + 1) * sizeof *gets);
    if (!gets)
        return -ENOMEM;
    int rc = 0;
    for (uint32_t j = 2; j < c->argc; j++) {
        uint32_t left = c->argc - j - 1;
        if (kv_arg_is(c, j, "asc")) {
            desc = false;
        } else if (kv_arg_is(c, j, "desc")) {
            desc = true;
        } else if (kv_arg_is(c, j, "alpha")) {
            alpha = true;
        } else if (kv_arg_is(c, j, "limit") && left >= 2) {
            if (!kv_arg_i64(c, j + 1, &limit_start) || !kv_arg_i64(c, j + 2, &limit_count))
                goto free_gets;
            j += 2;
        } else if (!readonly && kv_arg_is(c, j, "store") && left >= 1) {
            store = (int32_t)++j;
        } else if (kv_arg_is(c, j, "by") && left >= 1) {
            by = (int32_t)++j;
            if (!has_star(c->argv[j], c->len[j]))
                dontsort = true; /* a constant: nothing to sort by (and stays so after a later BY, as in Redis) */
        } else if (kv_arg_is(c, j, "get") && left >= 1) {
            RABIA_ASSERT(ngets < c->argc / 2 + 1);
            gets[ngets++] = ++j;
        } else {
            rc = kv_reply_err(c, KV_ERR_SYNTAX);
            goto free_gets;
        }
    }
    struct kv_dent *ke = kv_find_arg(c, 1);
    struct kv_obj *o = ke ? ke->v.p : NULL;
    if (o && o->type != KV_LIST && o->type != KV_SET && o->type != KV_ZSET) {
        rc = kv_reply_err(c, KV_ERR_WRONGTYPE);
        goto free_gets;
    }
    if (dontsort && o && o->type == KV_SET && (store >= 0 || c->s->in_script)) {
        dontsort = false; /* a set's order is no order: sorted for the log and for scripts, as Redis does */
        alpha = true;
        by = -1;
    }
    int64_t len = o ? (int64_t)kv_type_ops(o->type)->len(o) : 0, vectorlen = len;
    /* Redis's LIMIT arithmetic, to the letter */
    int64_t start = limit_start < 0 ? 0 : limit_start > len ? len : limit_start;
    int64_t count = limit_count < -1 ? -1 : limit_count > len ? len : limit_count;
    int64_t end = count < 0 ? len - 1 : start + count - 1;
    if (start >= len) {
        start = len - 1;
        end = len - 2;
    }
    if (end >= len)
        end = len - 1;
    /* a list or a sorted set not sorted: its range read in its order (from
     * its end with DESC), positions then counted from the range's start */
    bool direct = o && (o->type == KV_ZSET || o->type == KV_LIST) && dontsort;
    if (direct && (start != 0 || end != len - 1))
        vectorlen = end - start + 1 > 0 ? end - start + 1 : 0;

    struct sort_load l = {.s = c->s, .cap = (uint64_t)vectorlen};
    struct rabia_buf key = {0};
    l.v = kv_alloc(c->s, (l.cap ? l.cap : 1) * sizeof *l.v);
    if (!l.v) {
        rc = -ENOMEM;
        goto free_gets;
    }
    if (!o) {
        /* nothing to load */
    } else if (o->type == KV_LIST) {
        /* whole, in order; or, not sorted, its range from its end with DESC
         * (Redis reads nothing when the range is empty) */
        bool back = direct && desc;
        uint64_t first = !direct ? 0 : back ? (uint64_t)(len - start - 1) : (uint64_t)start;
        for (uint64_t i = 0; i < l.cap && !rc && (!direct || end >= start); i++) {
            const uint8_t *p;
            size_t n;
            kv_list_at(o, back ? first - i : first + i, &p, &n);
            rc = load_el(&l, p, n);
        }
        if (direct && end >= start) {
            end -= start;
            start = 0;
        }
    } else if (o->type == KV_SET) {
        rc = kv_set_each(c->s, o, load_el, &l);
    } else if (direct) {
        const struct kv_zset *z = o->ptr;
        const struct kv_zsl_node *x = desc ? (start > 0 ? kv_zset_by_rank(z, z->len - (uint64_t)start) : z->tail)
                                           : (start > 0 ? kv_zset_by_rank(z, (uint64_t)start + 1) : kv_zset_first(z));
        for (uint64_t i = 0; i < l.cap && !rc; i++) {
            RABIA_ASSERT(x != NULL);
            rc = load_el(&l, x->e->key, x->e->klen);
            x = desc ? x->back : kv_zset_next(x);
        }
        end -= start;
        start = 0;
    } else {
        /* a sorted set to sort: in score order (Redis walks its hash table;
         * only ALPHA BY's equal values can show the difference) */
        const struct kv_zset *z = o->ptr;
        for (const struct kv_zsl_node *x = kv_zset_first(z); x && !rc; x = kv_zset_next(x))
            rc = load_el(&l, x->e->key, x->e->klen);
    }
    if (rc)
        goto out;
    RABIA_ASSERT(l.n == l.cap);
    bool conversion_error = false;
    if (!dontsort) {
        for (uint64_t j = 0; j < l.n; j++) {
            struct sort_el *e = &l.v[j];
            const uint8_t *val = l.block.data + e->off;
            size_t vn = e->len;
            if (by >= 0) {
                rc = by_pattern(c, c->argv[by], c->len[by], val, e->len, &key, &val, &vn);
                if (rc < 0)
                    goto out;
                if (rc == 0) /* no value: 0, or first with ALPHA */
                    continue;
                rc = 0;
            }
            if (alpha) {
                if (by >= 0) {
                    e->cmp = val;
                    e->cmp_len = vn;
                }
            } else if (!sort_number(val, &e->score)) {
                conversion_error = true;
            }
        }
        struct sort_ctx x = {l.block.data, desc, alpha, by >= 0, store >= 0};
        if (start <= end) { /* else nothing is returned, and the order is not seen */
            if (by >= 0 && (start != 0 || end != (int64_t)l.n - 1))
                kv_sort_partial(l.v, l.n, sizeof *l.v, sort_cmp, &x, (size_t)start, (size_t)end);
            else
                rc = kv_sort_stable(c->s, l.v, l.n, sizeof *l.v, sort_cmp, &x);
            if (rc)
                goto out;
        }
    }
    if (conversion_error) {
        rc = kv_reply_err(c, "ERR One or more scores can't be converted into double");
        goto out;
    }
    uint64_t outputlen = end >= start ? (uint64_t)(end - start + 1) * (ngets ? ngets : 1) : 0;
    struct kv_obj *dst = NULL;
    if (store < 0)
        rc = kv_reply_array(c, outputlen);
    else if (!(dst = kv_list_new(c->s, outputlen)))
        rc = -ENOMEM;
    for (int64_t j = start; j <= end && !rc; j++) {
        const struct sort_el *e = &l.v[j];
        const uint8_t *el = l.block.data + e->off;
        if (!ngets)
            rc = dst ? kv_list_append(c->s, dst, el, e->len) : kv_reply_bulk(c, el, e->len);
        for (uint32_t g = 0; g < ngets && !rc; g++) {
            const uint8_t *val;
            size_t vn;
            int found = by_pattern(c, c->argv[gets[g]], c->len[gets[g]], el, e->len, &key, &val, &vn);
            if (found < 0)
                rc = found;
            else if (dst) /* a GET of nothing stores "" */
                rc = kv_list_append(c->s, dst, found ? val : (const uint8_t *)"", found ? vn : 0);
            else
                rc = found ? kv_reply_bulk(c, val, vn) : kv_reply_null(c);
        }
    }
    if (store >= 0 && !rc) {
        if (outputlen) {
            rc = kv_set(c, c->argv[store], c->len[store], dst, false);
            dst = NULL; /* taken over, freed on failure */
            if (!rc)
                kv_key_ready(c, c->argv[store], c->len[store]); /* a list: BLPOP on it retries */
        } else {
            struct kv_dent *de = kv_find_arg(c, (uint32_t)store);
            if (de)
                kv_delete(c, de);
        }
        if (!rc)
            rc = kv_reply_int(c, (int64_t)outputlen);
    }
    if (dst)
        kv_obj_free(c->s, dst);
out:
    rabia_buf_free(&key);
    rabia_buf_free(&l.block);
    kv_free(c->s, l.v);
free_gets:
    kv_free(c->s, gets);
    return rc;
}

KV_CMD(sort) { return sort_generic(c, false); }
KV_CMD(sort_ro) { return sort_generic(c, true); }
