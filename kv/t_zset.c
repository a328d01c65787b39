/* kv/t_zset.c: sorted sets, as Redis 7.0's commands reply (RESP2).
 *
 * One structure for every size (skiplist.h). The encoding byte still
 * records what Redis would use, because it shows in replies: a set Redis
 * keeps as a listpack (at most 128 members of at most 64 bytes, and never
 * converted back once larger) is ZSET_SMALL here, and then
 *   - ZSCAN returns every member at once with cursor 0 (Redis walks the
 *     hash table of the other encoding: there ours is in hash order);
 *   - a score of -0 is stored as 0 (the listpack keeps "-0" as the
 *     integer 0);
 *   - lex ranges are searched linearly (this matters only for sets with
 *     mixed scores, where Redis's answer depends on its encoding).
 *
 * Inputs of ZUNIONSTORE / ZINTERSTORE may be plain sets, every member
 * scoring 1 (as in Redis), read through t_set.c's kv_set_* functions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiplist.h"

enum { ZSET_SMALL = 0, ZSET_SKIPLIST = 1 };
#define ZSET_SMALL_ENTRIES 128 /* zset-max-listpack-entries */
#define ZSET_SMALL_VALUE 64    /* zset-max-listpack-value */

#define ERR_NAN "ERR resulting score is not a number (NaN)"
#define ERR_NOTFLOAT_RANGE "ERR min or max is not a float"
#define ERR_NOTLEX_RANGE "ERR min or max not valid string range item"

static struct kv_zset *zs(const struct kv_obj *o) { return o->ptr; }

static struct kv_obj *zobj_new(struct kv_store *s, uint8_t enc)
{
    struct kv_zset *z = kv_zset_new(s);
    if (!z)
        return NULL;
    struct kv_obj *o = kv_obj_new(s, KV_ZSET, enc, z);
    if (!o)
        kv_zset_free(s, z);
    return o;
}

/* The score as stored: a listpack turns "-0" into the integer 0. */
static double stored_score(const struct kv_obj *o, double d)
{
    return o->enc == ZSET_SMALL && d == 0 ? 0.0 : d;
}

/* Add a member known to be absent, converting a small set first when it
 * outgrows the listpack limits (Redis's zsetAdd). */
static int add_new(struct kv_store *s, struct kv_obj *o, const uint8_t *m, size_t n, double score)
{
    struct kv_zset *z = zs(o);
    if (o->enc == ZSET_SMALL && (z->len + 1 > ZSET_SMALL_ENTRIES || n > ZSET_SMALL_VALUE))
        o->enc = ZSET_SKIPLIST;
    return kv_zset_insert(s, z, m, n, stored_score(o, score));
}

static int reply_node(struct kv_ctx *c, const struct kv_zsl_node *x, bool withscores)
{
    int rc = kv_reply_bulk(c, x->e->key, x->e->klen);
    if (!rc && withscores)
        rc = kv_reply_double(c, kv_zsl_score(x));
    return rc;
}

/* Key argument i: *ke NULL when absent; false (WRONGTYPE replied) when it
 * holds another type. */
static bool lookup(struct kv_ctx *c, uint32_t i, struct kv_dent **ke)
{
    *ke = kv_find_arg(c, i);
    return kv_type_ok(c, *ke, KV_ZSET);
}

static struct kv_obj *obj_of(const struct kv_dent *ke) { return ke->v.p; }

/* Members were removed from key ke's set. */
static void removed(struct kv_ctx *c, struct kv_dent *ke)
{
    uint64_t left = zs(obj_of(ke))->len;
    kv_touch(c, ke);
    kv_delete_if_empty(c, ke, left);
}

/* ------------------------------------------------------------------ */
/* ZADD, ZINCRBY.                                                      */

enum { ZA_NX = 1, ZA_XX = 2, ZA_GT = 4, ZA_LT = 8, ZA_INCR = 16, ZA_CH = 32 };
enum { ZA_NOP = 1, ZA_NAN = 2, ZA_ADDED = 4, ZA_UPDATED = 8 };

/* Redis's zsetAdd: *out gets ZA_* results, *newscore the score now held
 * (as computed: before a small set's -0 becomes 0). 0 or -ENOMEM. */
static int zset_add(struct kv_store *s, struct kv_obj *o, double score, const uint8_t *m, size_t n,
                    int in, int *out, double *newscore)
{
    struct kv_dent *e = kv_zset_find(s, zs(o), m, n);
    if (!e) {
        if (in & ZA_XX) {
            *out |= ZA_NOP;
            return 0;
        }
        int rc = add_new(s, o, m, n, score);
        if (rc)
            return rc;
        *newscore = score;
        *out |= ZA_ADDED;
        return 0;
    }
    if (in & ZA_NX) {
        *out |= ZA_NOP;
        return 0;
    }
    double cur = e->v.d;
    if (in & ZA_INCR) {
        score += cur;
        if (isnan(score)) {
            *out |= ZA_NAN;
            return 0;
        }
    }
    if (((in & ZA_LT) && score >= cur) || ((in & ZA_GT) && score <= cur)) {
        *out |= ZA_NOP;
        return 0;
    }
    *newscore = score;
    if (score != cur) {
        kv_zset_update(zs(o), e, stored_score(o, score));
        *out |= ZA_UPDATED;
    }
    return 0;
}

/* Options from argument 2 on; the index of the first score. */
static uint32_t zadd_flags(struct kv_ctx *c, int *flags)
{
    static const struct {
        const char *name;
        int flag;
    } opts[] = {{"nx", ZA_NX}, {"xx", ZA_XX}, {"ch", ZA_CH}, {"incr", ZA_INCR}, {"gt", ZA_GT}, {"lt", ZA_LT}};
    uint32_t i = 2;
    for (; i < c->argc; i++) {
        size_t k = 0;
        while (k < sizeof opts / sizeof opts[0] && !kv_arg_is(c, i, opts[k].name))
            k++;
        if (k == sizeof opts / sizeof opts[0])
            break;
        *flags |= opts[k].flag;
    }
    return i;
}

/* Every check before the first change; replies the error and returns
 * false on bad input. */
static bool zadd_check(struct kv_ctx *c, uint32_t first, int flags)
{
    uint32_t left = c->argc - first;
    if (left == 0 || left % 2) {
        kv_reply_err(c, KV_ERR_SYNTAX);
        return false;
    }
    const char *err = NULL;
    if ((flags & ZA_NX) && (flags & ZA_XX))
        err = "ERR XX and NX options at the same time are not compatible";
    else if (((flags & ZA_GT) && (flags & ZA_NX)) || ((flags & ZA_LT) && (flags & ZA_NX)) ||
             ((flags & ZA_GT) && (flags & ZA_LT)))
        err = "ERR GT, LT, and/or NX options at the same time are not compatible";
    else if ((flags & ZA_INCR) && left > 2)
        err = "ERR INCR option supports a single increment-element pair";
    if (err) {
        kv_reply_err(c, err);
        return false;
    }
    double d;
    for (uint32_t i = first; i < c->argc; i += 2)
        if (!kv_arg_double(c, i, &d))
            return false;
    return true;
}

static int zadd_reply(struct kv_ctx *c, int flags, uint64_t added, uint64_t updated, uint64_t processed,
                      double score)
{
    if (flags & ZA_INCR)
        return processed ? kv_reply_double(c, score) : kv_reply_null(c);
    return kv_reply_int(c, (int64_t)((flags & ZA_CH) ? added + updated : added));
}

static int zadd_generic(struct kv_ctx *c, int flags)
{
    uint32_t first = zadd_flags(c, &flags);
    if (!zadd_check(c, first, flags))
        return 0;
    struct kv_dent *ke;
    if (!lookup(c, 1, &ke))
        return 0;
    if (!ke && (flags & ZA_XX))
        return zadd_reply(c, flags, 0, 0, 0, 0);
    struct kv_obj *o = ke ? obj_of(ke) : NULL;
    if (!o) {
        o = zobj_new(c->s, c->len[first + 1] > ZSET_SMALL_VALUE ? ZSET_SKIPLIST : ZSET_SMALL);
        if (!o)
            return -ENOMEM;
    }
    uint64_t added = 0, updated = 0, processed = 0;
    double score = 0;
    for (uint32_t i = first; i < c->argc; i += 2) {
        double d;
        bool parsed = kv_parse_double(c->argv[i], c->len[i], &d);
        RABIA_ASSERT(parsed); /* zadd_check */
        int out = 0, rc = zset_add(c->s, o, d, c->argv[i + 1], c->len[i + 1], flags, &out, &score);
        if (rc) {
            if (!ke)
                kv_obj_free(c->s, o);
            return rc;
        }
        if (out & ZA_NAN) { /* INCR: one member, already there, nothing changed */
            RABIA_ASSERT(ke != NULL && added + updated == 0);
            return kv_reply_err(c, ERR_NAN);
        }
        added += (out & ZA_ADDED) != 0;
        updated += (out & ZA_UPDATED) != 0;
        processed += (out & ZA_NOP) == 0;
    }
    if (!ke) {
        RABIA_ASSERT(zs(o)->len > 0);
        if (!kv_add(c, c->argv[1], c->len[1], o))
            return -ENOMEM;
        kv_key_ready(c, c->argv[1], c->len[1]); /* clients parked in BZPOPMIN / BZMPOP on it retry */
    } else if (added || updated) {
        kv_touch(c, ke);
    }
    return zadd_reply(c, flags, added, updated, processed, score);
}

KV_CMD(zadd) { return zadd_generic(c, 0); }
KV_CMD(zincrby) { return zadd_generic(c, ZA_INCR); }

/* ------------------------------------------------------------------ */
/* Single members.                                                     */

KV_CMD(zrem)
{
    struct kv_dent *ke;
    if (!lookup(c, 1, &ke))
        return 0;
    if (!ke)
        return kv_reply_int(c, 0);
    struct kv_zset *z = zs(obj_of(ke));
    int64_t deleted = 0;
    for (uint32_t i = 2; i < c->argc && z->len; i++) {
        struct kv_dent *e = kv_zset_find(c->s, z, c->argv[i], c->len[i]);
        if (e) {
            kv_zset_delete(c->s, z, e);
            deleted++;
        }
    }
    if (deleted)
        removed(c, ke);
    return kv_reply_int(c, deleted);
}

KV_CMD(zscore)
{
    struct kv_dent *ke;
    if (!lookup(c, 1, &ke))
        return 0;
    struct kv_dent *e = ke ? kv_zset_find(c->s, zs(obj_of(ke)), c->argv[2], c->len[2]) : NULL;
    return e ? kv_reply_double(c, e->v.d) : kv_reply_null(c);
}

KV_CMD(zmscore)
{
    struct kv_dent *ke;
    if (!lookup(c, 1, &ke))
        return 0;
    int rc = kv_reply_array(c, c->argc - 2);
    for (uint32_t i = 2; i < c->argc && !rc; i++) {
        struct kv_dent *e = ke ? kv_zset_find(c->s, zs(obj_of(ke)), c->argv[i], c->len[i]) : NULL;
        rc = e ? kv_reply_double(c, e->v.d) : kv_reply_null(c);
    }
    return rc;
}

KV_CMD(zcard)
{
    struct kv_dent *ke;
    if (!lookup(c, 1, &ke))
        return 0;
    return kv_reply_int(c, ke ? (int64_t)zs(obj_of(ke))->len : 0);
}

static int zrank_generic(struct kv_ctx *c, bool rev)
{
    struct kv_dent *ke;
    if (!lookup(c, 1, &ke))
        return 0;
    if (!ke)
        return kv_reply_null(c);
    struct kv_zset *z = zs(obj_of(ke));
    struct kv_dent *e = kv_zset_find(c->s, z, c->argv[2], c->len[2]);
    if (!e)
        return kv_reply_null(c);
    uint64_t r = kv_zset_rank(z, e);
    RABIA_ASSERT(r >= 1);
    return kv_reply_int(c, (int64_t)(rev ? z->len - r : r - 1));
}

KV_CMD(zrank) { return zrank_generic(c, false); }
KV_CMD(zrevrank) { return zrank_generic(c, true); }

/* ZRANDMEMBER key [count [WITHSCORES]], as Redis 7.0: a negative count may
 * repeat members (random ranks), a positive one gives distinct members
 * (all of them when count >= the size; else Knuth's selection sampling,
 * in score order); random by kv_rand, the same on every replica. As for
 * HRANDFIELD, a negative count beyond 2^20 is refused (kv/README.md). */
#define ZSET_RAND_MAX_REPEAT (1u << 20)

KV_CMD(zrandmember)
{
    int64_t count = 1;
    bool withscores = false, with_count = c->argc >= 3;
    if (with_count && !kv_rand_count_args(c, "withscores", &count, &withscores))
        return 0;
    struct kv_dent *ke;
    if (!lookup(c, 1, &ke))
        return 0;
    if (!with_count) {
        if (!ke)
            return kv_reply_null(c);
        const struct kv_zset *z = zs(obj_of(ke));
        RABIA_ASSERT(z->len > 0);
        return reply_node(c, kv_zset_by_rank(z, 1 + kv_rand(c->s) % z->len), false);
    }
    if (!ke || count == 0)
        return kv_reply_array(c, 0);
    const struct kv_zset *z = zs(obj_of(ke));
    uint64_t size = z->len, per = withscores ? 2 : 1;
    int rc;
    if (count < 0 || count == 1) { /* random members, repeats allowed */
        uint64_t n = count < 0 ? (uint64_t)-count : 1;
        if (n > ZSET_RAND_MAX_REPEAT)
            return kv_reply_err(c, "ERR value is out of range");
        if ((rc = kv_reply_array(c, n * per)))
            return rc;
        for (uint64_t i = 0; i < n; i++)
            if ((rc = reply_node(c, kv_zset_by_rank(z, 1 + kv_rand(c->s) % size), withscores)))
                return rc;
        return 0;
    }
    uint64_t want = (uint64_t)count < size ? (uint64_t)count : size, left = size;
    if ((rc = kv_reply_array(c, want * per)))
        return rc;
    for (const struct kv_zsl_node *x = kv_zset_first(z); x && want; x = kv_zset_next(x), left--) {
        if (want < left && kv_rand(c->s) % left >= want)
            continue;
        want--;
        if ((rc = reply_node(c, x, withscores)))
            return rc;
    }
    RABIA_ASSERT(want == 0);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Range arguments.                                                    */

/* Redis's zslParseRange on one bound: strtod over the argument as a C
 * string (so it stops at a NUL byte, and takes leading spaces, hex, "inf"
 * and an empty string as 0), "(" for exclusive, NaN refused. 1 valid, 0
 * not, -ENOMEM. */
static int parse_score_bound(struct kv_ctx *c, uint32_t i, double *v, bool *ex)
{
    const uint8_t *p = c->argv[i];
    size_t n = c->len[i];
    *ex = n > 0 && p[0] == '(';
    if (*ex) {
        p++;
        n--;
    }
    char local[128], *buf = local;
    if (n >= sizeof local) {
        buf = (char *)kv_dup(c->s, p, n);
        if (!buf)
            return -ENOMEM;
    } else {
        if (n)
            memcpy(local, p, n);
        local[n] = 0;
    }
    char *end;
    *v = strtod(buf, &end);
    bool ok = *end == 0 && !isnan(*v);
    if (buf != local)
        kv_free(c->s, buf);
    return ok;
}

/* 1 valid (r set), 0 (error replied), -ENOMEM. */
static int parse_score_range(struct kv_ctx *c, uint32_t imin, uint32_t imax, struct kv_zrange *r)
{
    int a = parse_score_bound(c, imin, &r->min, &r->minex);
    if (a < 0)
        return a;
    int b = a ? parse_score_bound(c, imax, &r->max, &r->maxex) : 0;
    if (b < 0)
        return b;
    return b ? 1 : kv_reply_err(c, ERR_NOTFLOAT_RANGE);
}

/* Redis's zslParseLexRangeItem ("+" and "-" are tested as C strings). */
static bool parse_lex_bound(const uint8_t *p, size_t n, struct kv_zlex_bound *b)
{
    if (n == 0)
        return false;
    b->p = p + 1;
    b->n = n - 1;
    switch (p[0]) {
    case '+':
    case '-':
        b->kind = p[0] == '+' ? KV_ZLEX_PLUS : KV_ZLEX_MINUS;
        b->ex = true;
        b->n = 0;
        return n == 1 || p[1] == 0;
    case '(':
    case '[':
        b->kind = KV_ZLEX_VALUE;
        b->ex = p[0] == '(';
        return true;
    default:
        return false;
    }
}

/* true valid; false: error replied (check the reply's rc via *rc). */
static bool parse_lex_range(struct kv_ctx *c, uint32_t imin, uint32_t imax, struct kv_zlex *r, int *rc)
{
    if (parse_lex_bound(c->argv[imin], c->len[imin], &r->min) &&
        parse_lex_bound(c->argv[imax], c->len[imax], &r->max))
        return true;
    *rc = kv_reply_err(c, ERR_NOTLEX_RANGE);
    return false;
}

/* ------------------------------------------------------------------ */
/* ZCOUNT, ZLEXCOUNT.                                                   */

/* Redis's count from the ranks of the first and last node in range (it
 * wraps like Redis's when a lex range over mixed scores finds them out of
 * order). */
static uint64_t count_between(const struct kv_zset *z, const struct kv_zsl_node *a,
                              const struct kv_zsl_node *b)
{
    if (!a)
        return 0;
    uint64_t count = z->len - (kv_zset_rank(z, a->e) - 1);
    if (b)
        count -= z->len - kv_zset_rank(z, b->e);
    return count;
}

KV_CMD(zcount)
{
    struct kv_zrange r;
    int ok = parse_score_range(c, 2, 3, &r);
    if (ok <= 0)
        return ok;
    struct kv_dent *ke;
    if (!lookup(c, 1, &ke))
        return 0;
    if (!ke)
        return kv_reply_int(c, 0);
    const struct kv_zset *z = zs(obj_of(ke));
    struct kv_zsl_node *a = kv_zset_first_in_range(z, &r);
    return kv_reply_int(c, (int64_t)count_between(z, a, a ? kv_zset_last_in_range(z, &r) : NULL));
}

/* ZLEXCOUNT and ZREMRANGEBYLEX key min max: the range parsed and the key
 * found; false when the command is answered already (*rc: a bad range, a
 * wrong type, or 0 for a missing key). */
static bool lex_command_start(struct kv_ctx *c, struct kv_zlex *r, struct kv_dent **ke, int *rc)
{
    *rc = 0;
    if (!parse_lex_range(c, 2, 3, r, rc))
        return false;
    if (!lookup(c, 1, ke))
        return false;
    if (!*ke) {
        *rc = kv_reply_int(c, 0);
        return false;
    }
    return true;
}

/* The members of a lex range, found as ZLEXCOUNT and ZREMRANGEBYLEX both
 * find them (a compact set scanned from its start, a skip list searched and
 * counted by span): how many, and the first (NULL: none). */
static uint64_t lex_range(const struct kv_obj *o, const struct kv_zlex *r, struct kv_zsl_node **first)
{
    const struct kv_zset *z = zs(o);
    bool linear = o->enc == ZSET_SMALL;
    struct kv_zsl_node *a = kv_zset_first_in_lex(z, r, linear);
    *first = a;
    if (!linear)
        return count_between(z, a, a ? kv_zset_last_in_lex(z, r, false) : NULL);
    uint64_t n = 0;
    for (; a && kv_zlex_lte_max(a, r); a = kv_zset_next(a))
        n++;
    return n;
}

KV_CMD(zlexcount)
{
    struct kv_zlex r;
    struct kv_dent *ke;
    int rc;
    if (!lex_command_start(c, &r, &ke, &rc))
        return rc;
    struct kv_zsl_node *a;
    return kv_reply_int(c, (int64_t)lex_range(obj_of(ke), &r, &a));
}

/* ------------------------------------------------------------------ */
/* ZRANGE and its family.                                              */

enum zr_by { ZR_AUTO, ZR_RANK, ZR_SCORE, ZR_LEX };
enum zr_dir { ZD_AUTO, ZD_FWD, ZD_REV };

/* Where a range goes: the reply, or (ZRANGESTORE) a new set. */
struct zr_out {
    struct kv_ctx *c;
    struct kv_obj *dst; /* NULL: reply */
    bool withscores;
    size_t mark;        /* deferred array header */
    uint64_t n;
};

static int zr_begin(struct zr_out *w, int64_t known)
{
    if (w->dst) {
        /* Redis 7.0.15 sizes the new set by a known length (zsetTypeCreate) */
        if (known > ZSET_SMALL_ENTRIES)
            w->dst->enc = ZSET_SKIPLIST;
        return 0;
    }
    if (known >= 0)
        return kv_reply_array(w->c, (uint64_t)known * (w->withscores ? 2 : 1));
    w->mark = kv_reply_defer(w->c);
    return 0;
}

static int zr_end(struct zr_out *w, bool deferred)
{
    if (w->dst || !deferred)
        return 0;
    return kv_reply_set_len(w->c, w->mark, w->n * (w->withscores ? 2 : 1));
}

static int zr_emit(struct zr_out *w, const struct kv_zsl_node *x)
{
    w->n++;
    if (!w->dst)
        return reply_node(w->c, x, w->withscores);
    return add_new(w->c->s, w->dst, x->e->key, x->e->klen, kv_zsl_score(x));
}

static struct kv_zsl_node *step(const struct kv_zsl_node *x, bool rev)
{
    return rev ? x->back : kv_zset_next(x);
}

/* Redis's `while (ln && offset--)`: a negative offset walks off the end. */
static struct kv_zsl_node *skip(struct kv_zsl_node *x, int64_t offset, bool rev)
{
    if (offset < 0)
        return NULL;
    for (; x && offset > 0; offset--)
        x = step(x, rev);
    return x;
}

static int zr_rank(struct zr_out *w, const struct kv_zset *z, int64_t start, int64_t end, bool rev)
{
    int64_t len = (int64_t)z->len;
    if (start < 0)
        start += len;
    if (end < 0)
        end += len;
    if (start < 0)
        start = 0;
    if (start > end || start >= len)
        return zr_begin(w, 0);
    if (end >= len)
        end = len - 1;
    int64_t n = end - start + 1;
    int rc = zr_begin(w, n);
    struct kv_zsl_node *x;
    if (rev)
        x = start > 0 ? kv_zset_by_rank(z, (uint64_t)(len - start)) : z->tail;
    else
        x = start > 0 ? kv_zset_by_rank(z, (uint64_t)start + 1) : kv_zset_first(z);
    for (; n > 0 && !rc; n--) {
        RABIA_ASSERT(x != NULL);
        rc = zr_emit(w, x);
        x = step(x, rev);
    }
    return rc;
}

/* A limit below 0 is none. */
static uint64_t limit_of(int64_t limit) { return limit < 0 ? UINT64_MAX : (uint64_t)limit; }

static int zr_score(struct zr_out *w, const struct kv_zset *z, const struct kv_zrange *r, int64_t offset,
                    int64_t limit, bool rev)
{
    int rc = zr_begin(w, -1);
    struct kv_zsl_node *x = NULL;
    if (!(offset > 0 && (uint64_t)offset >= z->len))
        x = rev ? kv_zset_last_in_range(z, r) : kv_zset_first_in_range(z, r);
    x = skip(x, offset, rev);
    for (uint64_t left = limit_of(limit); x && left && !rc; left--) {
        double d = kv_zsl_score(x);
        if (rev ? !kv_zrange_gte_min(d, r) : !kv_zrange_lte_max(d, r))
            break;
        rc = zr_emit(w, x);
        x = step(x, rev);
    }
    return rc ? rc : zr_end(w, true);
}

static int zr_lex(struct zr_out *w, const struct kv_obj *o, const struct kv_zlex *r, int64_t offset,
                  int64_t limit, bool rev)
{
    const struct kv_zset *z = zs(o);
    bool linear = o->enc == ZSET_SMALL;
    int rc = zr_begin(w, -1);
    struct kv_zsl_node *x = rev ? kv_zset_last_in_lex(z, r, linear) : kv_zset_first_in_lex(z, r, linear);
    x = skip(x, offset, rev);
    for (uint64_t left = limit_of(limit); x && left && !rc; left--) {
        if (rev ? !kv_zlex_gte_min(x, r) : !kv_zlex_lte_max(x, r))
            break;
        rc = zr_emit(w, x);
        x = step(x, rev);
    }
    return rc ? rc : zr_end(w, true);
}

/* A store's result goes to key argument di (deleted when empty); o is
 * taken over. Replies the count. */
static int store_result(struct kv_ctx *c, uint32_t di, struct kv_obj *o)
{
    uint64_t n = zs(o)->len;
    if (n) {
        int rc = kv_set(c, c->argv[di], c->len[di], o, false);
        if (!rc)
            kv_key_ready(c, c->argv[di], c->len[di]);
        return rc ? rc : kv_reply_int(c, (int64_t)n);
    }
    kv_obj_free(c->s, o);
    struct kv_dent *ke = kv_find_arg(c, di);
    if (ke)
        kv_delete(c, ke);
    return kv_reply_int(c, 0);
}

/* For t_geo.c: an empty sorted set to fill with kv_zset_insert, and its
 * store into key argument di as ZRANGESTORE's (the encoding settled as
 * Redis converts a built set; replaced or deleted when empty; replies the
 * count). o is taken over. */
static void settle_encoding(struct kv_obj *o);
struct kv_obj *kv_zset_obj_new(struct kv_store *s) { return zobj_new(s, ZSET_SKIPLIST); }

int kv_zset_store(struct kv_ctx *c, uint32_t di, struct kv_obj *o)
{
    RABIA_ASSERT(o->type == KV_ZSET && o->enc == ZSET_SKIPLIST);
    settle_encoding(o);
    return store_result(c, di, o);
}

struct zr_args {
    enum zr_by by;
    enum zr_dir dir;
    bool withscores;
    int64_t offset, limit;
    int64_t start, end;
    struct kv_zrange score;
    struct kv_zlex lex;
};

/* The options after <key> <min> <max> (Redis's zrangeGenericCommand, step
 * 1): false when an error was replied (*rc its result). */
static bool zr_options(struct kv_ctx *c, uint32_t ki, bool store, struct zr_args *a, int *rc)
{
    for (uint32_t j = ki + 3; j < c->argc; j++) {
        uint32_t left = c->argc - j - 1;
        if (!store && kv_arg_is(c, j, "withscores")) {
            a->withscores = true;
        } else if (kv_arg_is(c, j, "limit") && left >= 2) {
            if (!kv_arg_i64(c, j + 1, &a->offset) || !kv_arg_i64(c, j + 2, &a->limit))
                return false;
            j += 2;
        } else if (a->dir == ZD_AUTO && kv_arg_is(c, j, "rev")) {
            a->dir = ZD_REV;
        } else if (a->by == ZR_AUTO && kv_arg_is(c, j, "bylex")) {
            a->by = ZR_LEX;
        } else if (a->by == ZR_AUTO && kv_arg_is(c, j, "byscore")) {
            a->by = ZR_SCORE;
        } else {
            *rc = kv_reply_err(c, KV_ERR_SYNTAX);
            return false;
        }
    }
    if (a->dir == ZD_AUTO)
        a->dir = ZD_FWD;
    if (a->by == ZR_AUTO)
        a->by = ZR_RANK;
    const char *err = NULL;
    if (a->limit != -1 && a->by == ZR_RANK)
        err = "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX";
    else if (a->withscores && a->by == ZR_LEX)
        err = "ERR syntax error, WITHSCORES not supported in combination with BYLEX";
    if (err) {
        *rc = kv_reply_err(c, err);
        return false;
    }
    return true;
}

/* The range itself (step 2); REV ranges by score or lex come as max min. */
static bool zr_bounds(struct kv_ctx *c, uint32_t ki, struct zr_args *a, int *rc)
{
    uint32_t imin = ki + 1, imax = ki + 2;
    if (a->dir == ZD_REV && a->by != ZR_RANK) {
        imin = ki + 2;
        imax = ki + 1;
    }
    switch (a->by) {
    case ZR_SCORE: {
        int ok = parse_score_range(c, imin, imax, &a->score);
        *rc = ok < 0 ? ok : 0;
        return ok == 1;
    }
    case ZR_LEX:
        return parse_lex_range(c, imin, imax, &a->lex, rc);
    default:
        return kv_arg_i64(c, imin, &a->start) && kv_arg_i64(c, imax, &a->end);
    }
}

static int zr_run(struct zr_out *w, const struct kv_obj *o, const struct zr_args *a)
{
    bool rev = a->dir == ZD_REV;
    switch (a->by) {
    case ZR_SCORE:
        return zr_score(w, zs(o), &a->score, a->offset, a->limit, rev);
    case ZR_LEX:
        return zr_lex(w, o, &a->lex, a->offset, a->limit, rev);
    default:
        return zr_rank(w, zs(o), a->start, a->end, rev);
    }
}

/* ZRANGE, ZRANGESTORE (store: key at argument 2, destination 1) and the
 * older commands (by and dir fixed). */
static int zrange_generic(struct kv_ctx *c, uint32_t ki, bool store, enum zr_by by, enum zr_dir dir)
{
    struct zr_args a = {.by = by, .dir = dir, .limit = -1};
    int rc = 0;
    if (!zr_options(c, ki, store, &a, &rc) || !zr_bounds(c, ki, &a, &rc))
        return rc;
    struct kv_dent *ke;
    if (!lookup(c, ki, &ke))
        return 0;
    struct zr_out w = {.c = c, .withscores = a.withscores || store};
    if (store) {
        w.dst = zobj_new(c->s, ZSET_SMALL); /* unless zr_begin knows better */
        if (!w.dst)
            return -ENOMEM;
    } else if (!ke) {
        return kv_reply_array(c, 0);
    }
    if (ke)
        rc = zr_run(&w, obj_of(ke), &a);
    if (!store)
        return rc;
    if (rc) {
        kv_obj_free(c->s, w.dst);
        return rc;
    }
    return store_result(c, 1, w.dst);
}

KV_CMD(zrange) { return zrange_generic(c, 1, false, ZR_AUTO, ZD_AUTO); }
KV_CMD(zrangestore) { return zrange_generic(c, 2, true, ZR_AUTO, ZD_AUTO); }
KV_CMD(zrevrange) { return zrange_generic(c, 1, false, ZR_RANK, ZD_REV); }
KV_CMD(zrangebyscore) { return zrange_generic(c, 1, false, ZR_SCORE, ZD_FWD); }
KV_CMD(zrevrangebyscore) { return zrange_generic(c, 1, false, ZR_SCORE, ZD_REV); }
KV_CMD(zrangebylex) { return zrange_generic(c, 1, false, ZR_LEX, ZD_FWD); }
KV_CMD(zrevrangebylex) { return zrange_generic(c, 1, false, ZR_LEX, ZD_REV); }

/* ------------------------------------------------------------------ */
/* Removal.                                                            */

/* Pop n members (n <= the set's size) from the min or the max end of ke's
 * set, each replied as member, score (as one [member, score] array when
 * paired); the key goes when the set is empty. */
static int pop_members(struct kv_ctx *c, struct kv_dent *ke, bool max, uint64_t n, bool paired)
{
    struct kv_zset *z = zs(obj_of(ke));
    RABIA_ASSERT(n <= z->len);
    int rc = 0;
    for (; n > 0 && !rc; n--) {
        struct kv_zsl_node *x = max ? z->tail : kv_zset_first(z);
        if (paired)
            rc = kv_reply_array(c, 2);
        if (!rc)
            rc = reply_node(c, x, true);
        kv_zset_delete(c->s, z, x->e);
    }
    removed(c, ke);
    return rc;
}

static int zpop_generic(struct kv_ctx *c, bool max)
{
    if (c->argc > 3)
        return kv_reply_err(c, KV_ERR_SYNTAX);
    int64_t count = -1;
    if (c->argc == 3 && (!kv_parse_i64(c->argv[2], c->len[2], &count) || count < 0))
        return kv_reply_err(c, KV_ERR_POSITIVE);
    struct kv_dent *ke;
    if (!lookup(c, 1, &ke))
        return 0;
    if (!ke || count == 0)
        return kv_reply_array(c, 0);
    struct kv_zset *z = zs(obj_of(ke));
    uint64_t n = count < 0 ? 1 : (uint64_t)count;
    if (n > z->len)
        n = z->len;
    int rc = kv_reply_array(c, 2 * n);
    return rc ? rc : pop_members(c, ke, max, n, false);
}

/* The first sorted set among key arguments [from, to): 1 and *ke, *at;
 * 0 when every key is absent; -1 after WRONGTYPE for a key holding another
 * type met before it (Redis's order for the multi-key pops). */
static int first_zset(struct kv_ctx *c, uint32_t from, uint32_t to, struct kv_dent **ke, uint32_t *at)
{
    for (uint32_t i = from; i < to; i++) {
        if (!lookup(c, i, ke))
            return -1;
        if (*ke) {
            *at = i;
            return 1;
        }
    }
    return 0;
}

/* ZMPOP numkeys key... MIN|MAX [COUNT count], BZMPOP timeout numkeys ...
 * (feature level 1): up to count members of the first sorted set among
 * the keys, as [key, [[member, score]...]]; a nil array when every key is
 * absent (the front end parks BZMPOP's client then); a non-zset met
 * before a zset is WRONGTYPE. */
static int zmpop_generic(struct kv_ctx *c, uint32_t at)
{
    uint32_t nk;
    int max;
    int64_t count;
    if (!kv_mpop_args(c, at, "min", "max", &nk, &max, &count))
        return 0; /* replied */
    struct kv_dent *ke;
    uint32_t i;
    int found = first_zset(c, at + 1, at + 1 + nk, &ke, &i);
    if (found <= 0)
        return found < 0 ? 0 : kv_reply_null_array(c);
    struct kv_zset *z = zs(obj_of(ke));
    uint64_t n = (uint64_t)count < z->len ? (uint64_t)count : z->len;
    int rc = kv_reply_array(c, 2);
    if (!rc)
        rc = kv_reply_bulk(c, c->argv[i], c->len[i]);
    if (!rc)
        rc = kv_reply_array(c, n);
    return rc ? rc : pop_members(c, ke, max, n, true);
}

KV_CMD(zmpop) { return zmpop_generic(c, 1); }
KV_CMD(bzmpop) { return zmpop_generic(c, 2); }

/* BZPOPMIN / BZPOPMAX key... timeout (feature level 1): [key, member,
 * score] of the first sorted set among the keys; a nil array when every
 * key is absent (the front end parks the client); a non-zset met before a
 * zset is WRONGTYPE. */
static int bzpop(struct kv_ctx *c, bool max)
{
    if (!kv_arg_timeout(c, c->argc - 1))
        return 0; /* replied */
    struct kv_dent *ke;
    uint32_t i;
    int found = first_zset(c, 1, c->argc - 1, &ke, &i);
    if (found <= 0)
        return found < 0 ? 0 : kv_reply_null_array(c);
    int rc = kv_reply_array(c, 3);
    if (!rc)
        rc = kv_reply_bulk(c, c->argv[i], c->len[i]);
    return rc ? rc : pop_members(c, ke, max, 1, false);
}

KV_CMD(bzpopmin) { return bzpop(c, false); }
KV_CMD(bzpopmax) { return bzpop(c, true); }

KV_CMD(zpopmin) { return zpop_generic(c, false); }
KV_CMD(zpopmax) { return zpop_generic(c, true); }

KV_CMD(zremrangebyrank)
{
    int64_t start, end;
    if (!kv_arg_i64(c, 2, &start) || !kv_arg_i64(c, 3, &end))
        return 0;
    struct kv_dent *ke;
    if (!lookup(c, 1, &ke))
        return 0;
    if (!ke)
        return kv_reply_int(c, 0);
    struct kv_zset *z = zs(obj_of(ke));
    int64_t len = (int64_t)z->len;
    if (start < 0)
        start += len;
    if (end < 0)
        end += len;
    if (start < 0)
        start = 0;
    if (start > end || start >= len)
        return kv_reply_int(c, 0);
    if (end >= len)
        end = len - 1;
    uint64_t n = kv_zset_delete_rank(c->s, z, (uint64_t)start + 1, (uint64_t)end + 1);
    removed(c, ke);
    return kv_reply_int(c, (int64_t)n);
}

KV_CMD(zremrangebyscore)
{
    struct kv_zrange r;
    int ok = parse_score_range(c, 2, 3, &r);
    if (ok <= 0)
        return ok;
    struct kv_dent *ke;
    if (!lookup(c, 1, &ke))
        return 0;
    if (!ke)
        return kv_reply_int(c, 0);
    uint64_t n = kv_zset_delete_range(c->s, zs(obj_of(ke)), &r);
    if (n)
        removed(c, ke);
    return kv_reply_int(c, (int64_t)n);
}

/* ZREMRANGEBYLEX (feature level 9: a build without it answers "unknown
 * command"). Redis's zzlDeleteRangeByLex / zslDeleteRangeByLex: the members
 * from the first one >= min, while they are <= max. Found as ZLEXCOUNT
 * finds them (lex_range), so a set whose scores differ, where lex ranges are unspecified, loses the
 * members ZLEXCOUNT would count. They are consecutive: removed by rank. */
KV_CMD(zremrangebylex)
{
    struct kv_zlex r;
    struct kv_dent *ke;
    int rc;
    if (!lex_command_start(c, &r, &ke, &rc))
        return rc;
    const struct kv_obj *o = obj_of(ke);
    struct kv_zset *z = zs(o);
    struct kv_zsl_node *a;
    uint64_t n = lex_range(o, &r, &a);
    if (!n)
        return kv_reply_int(c, 0);
    uint64_t first = kv_zset_rank(z, a->e);
    n = kv_zset_delete_rank(c->s, z, first, first + n - 1);
    removed(c, ke);
    return kv_reply_int(c, (int64_t)n);
}

/* ------------------------------------------------------------------ */
/* ZUNION, ZINTER, ZDIFF (and their STORE forms), ZINTERCARD.         */

enum { AGG_SUM, AGG_MIN, AGG_MAX };

/* A source: a sorted set, a plain set (scores 1), or neither (an absent
 * key: empty). */
struct zsrc {
    struct kv_zset *z;
    struct kv_obj *set;
    double weight;
    uint32_t arg;
};

static uint64_t src_len(const struct zsrc *a)
{
    return a->z ? a->z->len : a->set ? kv_set_card(a->set) : 0;
}

static bool same_src(const struct zsrc *a, const struct zsrc *b)
{
    return a->z ? a->z == b->z : a->set && a->set == b->set;
}

/* Whether src holds member m, and its score there. */
static bool src_find(struct kv_store *s, const struct zsrc *src, const uint8_t *m, size_t n, double *score)
{
    if (src->z) {
        struct kv_dent *e = kv_zset_find(s, src->z, m, n);
        if (e)
            *score = e->v.d;
        return e != NULL;
    }
    *score = 1.0;
    return src->set && kv_set_has(s, src->set, m, n);
}

/* Each member of src with its score, in src's order: fn returns 0 or a
 * negative errno (which stops the walk and is returned). */
typedef int (*src_visit_fn)(void *arg, const uint8_t *m, size_t n, double score);

struct set_visit {
    src_visit_fn fn;
    void *arg;
};

static int set_member(void *arg, const uint8_t *m, size_t n)
{
    struct set_visit *v = arg;
    return v->fn(v->arg, m, n, 1.0);
}

static int src_each(struct kv_store *s, const struct zsrc *src, src_visit_fn fn, void *arg)
{
    if (src->set) {
        struct set_visit v = {fn, arg};
        return kv_set_each(s, src->set, set_member, &v);
    }
    for (const struct kv_zsl_node *x = src->z ? kv_zset_first(src->z) : NULL; x; x = kv_zset_next(x)) {
        int rc = fn(arg, x->e->key, x->e->klen, kv_zsl_score(x));
        if (rc)
            return rc;
    }
    return 0;
}

/* Smallest first; equal sizes keep their argument order (as the stable
 * qsort Redis runs on), which fixes the order of floating-point sums. */
static int src_cmp(const void *pa, const void *pb)
{
    const struct zsrc *a = pa, *b = pb;
    uint64_t la = src_len(a), lb = src_len(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    return a->arg < b->arg ? -1 : a->arg > b->arg;
}

static void aggregate(double *target, double v, int agg)
{
    if (agg == AGG_SUM) {
        *target += v;
        if (isnan(*target)) /* inf + -inf */
            *target = 0;
    } else if (agg == AGG_MIN) {
        *target = v < *target ? v : *target;
    } else {
        *target = v > *target ? v : *target;
    }
}

enum zop_kind { ZOP_UNION, ZOP_INTER, ZOP_DIFF };

/* The options after the keys, as Redis 7.0's zunionInterDiffGenericCommand
 * takes them: WEIGHTS and AGGREGATE (not for a difference or a count),
 * WITHSCORES (replies only), LIMIT (ZINTERCARD). False when an error was
 * replied (*rc its result). */
static bool zop_options(struct kv_ctx *c, uint32_t j, struct zsrc *src, uint32_t nsrc, enum zop_kind op, bool store,
                        bool card, int *agg, bool *withscores, int64_t *limit, int *rc)
{
    while (j < c->argc) {
        uint32_t left = c->argc - j;
        bool scored = op != ZOP_DIFF && !card;
        if (scored && left >= nsrc + 1 && kv_arg_is(c, j, "weights")) {
            j++;
            for (uint32_t i = 0; i < nsrc; i++, j++) {
                if (!kv_parse_double(c->argv[j], c->len[j], &src[i].weight)) {
                    *rc = kv_reply_err(c, "ERR weight value is not a float");
                    return false;
                }
            }
        } else if (scored && left >= 2 && kv_arg_is(c, j, "aggregate")) {
            if (kv_arg_is(c, j + 1, "sum"))
                *agg = AGG_SUM;
            else if (kv_arg_is(c, j + 1, "min"))
                *agg = AGG_MIN;
            else if (kv_arg_is(c, j + 1, "max"))
                *agg = AGG_MAX;
            else
                break;
            j += 2;
        } else if (!store && !card && kv_arg_is(c, j, "withscores")) {
            *withscores = true;
            j++;
        } else if (card && left >= 2 && kv_arg_is(c, j, "limit")) {
            /* Redis's getPositiveLongFromObjectOrReply with this message:
             * a LIMIT that is not a number says so too */
            if (!kv_parse_i64(c->argv[j + 1], c->len[j + 1], limit) || *limit < 0) {
                *rc = kv_reply_err(c, "ERR LIMIT can't be negative");
                return false;
            }
            j += 2;
        } else {
            break;
        }
    }
    if (j == c->argc)
        return true;
    *rc = kv_reply_err(c, KV_ERR_SYNTAX);
    return false;
}

static size_t max_member(const struct kv_zset *z)
{
    size_t m = 0;
    for (const struct kv_zsl_node *x = kv_zset_first(z); x; x = kv_zset_next(x))
        m = x->e->klen > m ? x->e->klen : m;
    return m;
}

/* Redis builds the result as a skiplist, then converts it to a listpack
 * when small enough (zsetConvertToListpackIfNeeded): -0 becomes 0. */
static void settle_encoding(struct kv_obj *o)
{
    struct kv_zset *z = zs(o);
    if (z->len > ZSET_SMALL_ENTRIES || max_member(z) > ZSET_SMALL_VALUE)
        return;
    o->enc = ZSET_SMALL;
    for (struct kv_zsl_node *x = kv_zset_first(z); x; x = kv_zset_next(x))
        if (x->score == 0) /* -0 or 0: the same place */
            kv_zset_update(z, x->e, 0.0);
}

struct zop {
    struct kv_store *s;
    const struct zsrc *src; /* ZUNIONSTORE: the one walked; ZINTERSTORE: all */
    uint32_t nsrc;
    int agg;
    struct kv_zset *dst;
};

static int inter_member(void *arg, const uint8_t *m, size_t n, double score0)
{
    const struct zop *op = arg;
    double score = op->src[0].weight * score0;
    if (isnan(score))
        score = 0;
    for (uint32_t j = 1; j < op->nsrc; j++) {
        /* sorted by size: src[0] non-empty, so are the others. The walked
         * source holds m (and is not looked up while it is walked). */
        double sj = score0;
        if (!same_src(&op->src[j], &op->src[0]) && !src_find(op->s, &op->src[j], m, n, &sj))
            return 0;
        aggregate(&score, sj * op->src[j].weight, op->agg);
    }
    return kv_zset_insert(op->s, op->dst, m, n, score);
}

static int zinter(struct kv_store *s, const struct zsrc *src, uint32_t nsrc, int agg, struct kv_zset *dst)
{
    if (!src_len(&src[0]))
        return 0;
    struct zop op = {s, src, nsrc, agg, dst};
    return src_each(s, &src[0], inter_member, &op);
}

static int union_member(void *arg, const uint8_t *m, size_t n, double score)
{
    const struct zop *op = arg;
    score *= op->src->weight;
    if (isnan(score))
        score = 0;
    struct kv_dent *e = kv_zset_find(op->s, op->dst, m, n);
    if (e)
        aggregate(&e->v.d, score, op->agg);
    else if (!kv_zset_dict_add(op->s, op->dst, m, n, score))
        return -ENOMEM;
    return 0;
}

static int zunion(struct kv_store *s, const struct zsrc *src, uint32_t nsrc, int agg, struct kv_zset *dst)
{
    for (uint32_t i = 0; i < nsrc; i++) {
        struct zop op = {s, &src[i], 1, agg, dst};
        int rc = src_each(s, &src[i], union_member, &op);
        if (rc)
            return rc;
    }
    return kv_zset_index(s, dst);
}

/* The members of src[0] in none of the others, with src[0]'s scores. A
 * source that is src[0] again holds every member, and is not looked up
 * while src[0] is walked (a lookup moves a set's incremental rehash on
 * under the walk). */
static int diff_member(void *arg, const uint8_t *m, size_t n, double score)
{
    const struct zop *op = arg;
    double unused;
    for (uint32_t j = 1; j < op->nsrc; j++)
        if (same_src(&op->src[j], &op->src[0]) || src_find(op->s, &op->src[j], m, n, &unused))
            return 0;
    return kv_zset_insert(op->s, op->dst, m, n, score);
}

static int zdiff(struct kv_store *s, const struct zsrc *src, uint32_t nsrc, int agg, struct kv_zset *dst)
{
    struct zop op = {s, src, nsrc, agg, dst};
    return src_each(s, &src[0], diff_member, &op);
}

/* ZINTERCARD: the members of src[0] (the smallest) in every other one,
 * counted up to limit (0: no limit). */
struct zcard {
    struct kv_store *s;
    const struct zsrc *src;
    uint32_t nsrc;
    uint64_t n, limit;
};

static int card_member(void *arg, const uint8_t *m, size_t n, double score)
{
    struct zcard *k = arg;
    (void)score;
    if (k->limit && k->n >= k->limit)
        return 0;
    double unused;
    for (uint32_t j = 1; j < k->nsrc; j++)
        if (!same_src(&k->src[j], &k->src[0]) && !src_find(k->s, &k->src[j], m, n, &unused))
            return 0;
    k->n++;
    return 0;
}

/* Sources from argument `first`, sorted sets or sets: false when an error
 * was replied. */
static bool zstore_sources(struct kv_ctx *c, uint32_t first, struct zsrc *src, uint32_t nsrc)
{
    for (uint32_t i = 0; i < nsrc; i++) {
        struct kv_dent *ke = kv_find_arg(c, first + i);
        struct kv_obj *o = ke ? obj_of(ke) : NULL;
        if (o && o->type != KV_ZSET && o->type != KV_SET) {
            kv_reply_err(c, KV_ERR_WRONGTYPE);
            return false;
        }
        src[i] = (struct zsrc){.z = o && o->type == KV_ZSET ? zs(o) : NULL,
                               .set = o && o->type == KV_SET ? o : NULL,
                               .weight = 1.0,
                               .arg = i};
    }
    return true;
}

/* ZUNIONSTORE ZINTERSTORE ZDIFFSTORE (store: the destination at argument
 * 1, numkeys at 2), ZUNION ZINTER ZDIFF (numkeys at 1, WITHSCORES) and
 * ZINTERCARD (card: a count, LIMIT), as Redis 7.0's
 * zunionInterDiffGenericCommand: numkeys, the keys' types, then the
 * options; sources smallest first except for a difference (src[0] is the
 * one the others are taken from). */
static int zsetop_generic(struct kv_ctx *c, const char *name, enum zop_kind op, bool store, bool card)
{
    const uint32_t ni = store ? 2 : 1;
    int64_t nkeys;
    if (!kv_arg_i64(c, ni, &nkeys))
        return 0;
    if (nkeys < 1)
        return kv_reply_errf(c, "ERR at least 1 input key is needed for '%s' command", name);
    if (nkeys > (int64_t)c->argc - (ni + 1))
        return kv_reply_err(c, KV_ERR_SYNTAX);
    uint32_t nsrc = (uint32_t)nkeys;
    struct zsrc *src = kv_alloc(c->s, nsrc * sizeof *src);
    if (!src)
        return -ENOMEM;
    int agg = AGG_SUM, rc = 0;
    bool withscores = false;
    int64_t limit = 0;
    if (!zstore_sources(c, ni + 1, src, nsrc) ||
        !zop_options(c, ni + 1 + nsrc, src, nsrc, op, store, card, &agg, &withscores, &limit, &rc)) {
        kv_free(c->s, src);
        return rc;
    }
    if (op != ZOP_DIFF)
        qsort(src, nsrc, sizeof *src, src_cmp);
    if (card) {
        struct zcard k = {c->s, src, nsrc, 0, (uint64_t)limit};
        rc = src_len(&src[0]) ? src_each(c->s, &src[0], card_member, &k) : 0;
        kv_free(c->s, src);
        return rc ? rc : kv_reply_int(c, (int64_t)k.n);
    }
    struct kv_obj *o = zobj_new(c->s, ZSET_SKIPLIST);
    if (!o)
        rc = -ENOMEM;
    else
        rc = (op == ZOP_INTER ? zinter : op == ZOP_UNION ? zunion : zdiff)(c->s, src, nsrc, agg, zs(o));
    kv_free(c->s, src);
    if (rc) {
        kv_obj_free(c->s, o);
        return rc;
    }
    if (store) {
        settle_encoding(o);
        return store_result(c, 1, o);
    }
    /* the result in score order, as Redis replies from its skiplist */
    const struct kv_zset *z = zs(o);
    rc = kv_reply_array(c, z->len * (withscores ? 2 : 1));
    for (const struct kv_zsl_node *x = kv_zset_first(z); x && !rc; x = kv_zset_next(x))
        rc = reply_node(c, x, withscores);
    kv_obj_free(c->s, o);
    return rc;
}

KV_CMD(zunionstore) { return zsetop_generic(c, "zunionstore", ZOP_UNION, true, false); }
KV_CMD(zinterstore) { return zsetop_generic(c, "zinterstore", ZOP_INTER, true, false); }
KV_CMD(zdiffstore) { return zsetop_generic(c, "zdiffstore", ZOP_DIFF, true, false); }
KV_CMD(zunion) { return zsetop_generic(c, "zunion", ZOP_UNION, false, false); }
KV_CMD(zinter) { return zsetop_generic(c, "zinter", ZOP_INTER, false, false); }
KV_CMD(zdiff) { return zsetop_generic(c, "zdiff", ZOP_DIFF, false, false); }
KV_CMD(zintercard) { return zsetop_generic(c, "zintercard", ZOP_INTER, false, true); }

/* ------------------------------------------------------------------ */
/* ZSCAN.                                                              */

static int zscan_reply(struct kv_ctx *c, uint64_t cursor, const struct kv_scan_acc *w)
{
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%llu", (unsigned long long)cursor);
    int rc = kv_reply_array(c, 2);
    rc = rc ? rc : kv_reply_bulk(c, buf, (size_t)len);
    rc = rc ? rc : kv_reply_array(c, 2 * w->n);
    for (uint64_t i = 0; i < w->n && !rc; i++) {
        rc = kv_reply_bulk(c, w->v[i]->key, w->v[i]->klen);
        rc = rc ? rc : kv_reply_double(c, w->v[i]->v.d);
    }
    return rc;
}

KV_CMD(zscan)
{
    uint64_t cursor;
    if (!kv_arg_cursor(c, 2, &cursor))
        return 0;
    struct kv_dent *ke;
    if (!lookup(c, 1, &ke))
        return 0;
    if (!ke) {
        struct kv_scan_acc none = {0};
        return zscan_reply(c, 0, &none);
    }
    struct kv_scan_opts opts;
    if (!kv_scan_args(c, 3, false, &opts))
        return 0;
    const struct kv_obj *o = obj_of(ke);
    struct kv_zset *z = zs(o);
    struct kv_scan_acc w = {.s = c->s, .opt = &opts};
    int err = 0;
    uint64_t next = 0;
    if (o->enc == ZSET_SMALL) { /* Redis returns a listpack whole, in order */
        for (struct kv_zsl_node *x = kv_zset_first(z); x && !err; x = kv_zset_next(x))
            err = kv_scan_take(&w, x->e);
    } else {
        err = kv_dict_scan_match(c->s, &z->dict, cursor, &w, &next);
    }
    int rc = err ? err : zscan_reply(c, next, &w);
    kv_free(c->s, w.v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The type.                                                           */

static void zset_free(struct kv_store *s, struct kv_obj *o)
{
    kv_zset_free(s, zs(o));
    kv_free(s, o);
}

/* enc, count, then (score, member) in order. */
static int zset_save(struct kv_store *s, const struct kv_obj *o, struct rabia_buf *out)
{
    const struct kv_zset *z = zs(o);
    int rc = kv_wr_u8(out, o->enc);
    rc = rc ? rc : kv_wr_u64(out, z->len);
    for (const struct kv_zsl_node *x = kv_zset_first(z); x && !rc; x = kv_zset_next(x)) {
        rc = kv_wr_f64(out, kv_zsl_score(x));
        rc = rc ? rc : kv_wr_str(out, x->e->key, x->e->klen);
    }
    return rc;
}

/* Whether (d, m) may follow the last member loaded (NULL: none yet):
 * strictly after it, and what a small set can hold. */
static bool load_ok(const struct kv_obj *o, const struct kv_zsl_node *last, double d, const uint8_t *m,
                    uint32_t n)
{
    if (o->enc == ZSET_SMALL && (zs(o)->len >= ZSET_SMALL_ENTRIES || n > ZSET_SMALL_VALUE ||
                                 (d == 0 && signbit(d))))
        return false;
    if (!last)
        return true;
    double ld = kv_zsl_score(last);
    if (ld != d)
        return ld < d;
    size_t ln = last->e->klen, k = ln < n ? ln : n;
    int cmp = k ? memcmp(last->e->key, m, k) : 0;
    return cmp < 0 || (cmp == 0 && ln < n);
}

static int load_members(struct kv_store *s, struct kv_rd *rd, struct kv_obj *o, uint64_t count)
{
    struct kv_zset *z = zs(o);
    for (uint64_t i = 0; i < count; i++) {
        double d;
        const uint8_t *m;
        uint32_t n;
        if (!kv_rd_f64(rd, &d) || !kv_rd_str(rd, &m, &n) || !load_ok(o, z->tail, d, m, n))
            return -EINVAL;
        /* ordered but a member again with another score */
        if (kv_zset_find(s, z, m, n))
            return -EINVAL;
        int rc = kv_zset_insert(s, z, m, n, d);
        if (rc)
            return rc;
    }
    return 0;
}

static int zset_load(struct kv_store *s, struct kv_rd *rd, struct kv_obj **out)
{
    uint8_t enc;
    uint64_t count;
    if (!kv_rd_u8(rd, &enc) || enc > ZSET_SKIPLIST || !kv_rd_u64(rd, &count))
        return -EINVAL;
    /* a member takes at least 12 bytes (score, length); empty sets are not kept */
    if (count == 0 || count > (uint64_t)(rd->end - rd->p) / 12)
        return -EINVAL;
    struct kv_obj *o = zobj_new(s, enc);
    if (!o)
        return -ENOMEM;
    int rc = load_members(s, rd, o, count);
    if (rc) {
        zset_free(s, o);
        return rc;
    }
    *out = o;
    return 0;
}

static int zset_copy(struct kv_store *s, const struct kv_obj *o, struct kv_obj **out)
{
    struct kv_obj *n = zobj_new(s, o->enc);
    if (!n)
        return -ENOMEM;
    for (const struct kv_zsl_node *x = kv_zset_first(zs(o)); x; x = kv_zset_next(x)) {
        if (kv_zset_insert(s, zs(n), x->e->key, x->e->klen, kv_zsl_score(x))) {
            zset_free(s, n);
            return -ENOMEM;
        }
    }
    *out = n;
    return 0;
}

static uint64_t zset_mem(const struct kv_obj *o) { return sizeof(*o) + kv_zset_mem(zs(o)); }
static uint64_t zset_len(const struct kv_obj *o) { return zs(o)->len; }

const struct kv_type_ops kv_zset_ops = {
    .name = "zset",
    .free = zset_free,
    .save = zset_save,
    .load = zset_load,
    .copy = zset_copy,
    .mem = zset_mem,
    .len = zset_len,
};
