/* kv/t_list.c: the list commands, as Redis 7.0's t_list.c answers them,
 * and the list type's operations.
 *
 * A list is a ring buffer (deque) of element pointers: push and pop at
 * both ends and access by index are O(1); an insertion in the middle moves
 * the shorter side. The buffer doubles when full and halves while a
 * quarter full (never below LIST_MIN_CAP), so a list that grew large and
 * was emptied gives its memory back. The capacity is not state: a restored
 * list gets the smallest that fits, so nothing a client or a snapshot sees
 * may depend on it (MEMORY USAGE counts the elements, not the slots).
 *
 * Blocking pops never block here: the state machine pops when it can and
 * otherwise replies as Redis does on a timeout; the front end parks the
 * client and runs the command again on a KEY_READY event, which every
 * change that adds to a list raises (kv_key_ready).
 *
 * Helpers that may reply an error return 0 to go on, 1 when they replied
 * (the command then returns 0), or -ENOMEM; DONE() turns that into the
 * command's return value. */
#include <stdint.h>
#include <string.h>

#include "internal.h"

#define LIST_MIN_CAP 4
#define DONE(rc) ((rc) < 0 ? (rc) : 0)

enum { LIST_ENC_DEQUE = 0 };
enum { HEAD = 0, TAIL = 1 };

/* One element: its bytes and a NUL, in one allocation. */
struct lelem {
    uint32_t len;
    uint8_t data[];
};

struct list {
    struct lelem **buf;
    uint64_t cap;   /* slots in buf: a power of two >= LIST_MIN_CAP */
    uint64_t head;  /* slot of element 0 */
    uint64_t count; /* elements */
    uint64_t bytes; /* what the elements need (MEMORY USAGE) */
};

/* ------------------------------------------------------------------ */
/* The deque.                                                          */

static struct kv_obj *obj(const struct kv_dent *e)
{
    return e->v.p;
}

static struct list *lst(const struct kv_obj *o)
{
    RABIA_ASSERT(o->type == KV_LIST && o->enc == LIST_ENC_DEQUE);
    return o->ptr;
}

static struct lelem **slot(const struct list *l, uint64_t i)
{
    RABIA_ASSERT(i < l->cap);
    return &l->buf[(l->head + i) & (l->cap - 1)];
}

static struct lelem *at(const struct list *l, uint64_t i)
{
    RABIA_ASSERT(i < l->count);
    return *slot(l, i);
}

static uint64_t elem_bytes(const struct lelem *x)
{
    return sizeof *x + (uint64_t)x->len + 1;
}

static struct lelem *elem_new(struct kv_store *s, const uint8_t *p, size_t n)
{
    RABIA_ASSERT(n <= UINT32_MAX);
    struct lelem *x = kv_alloc(s, sizeof *x + n + 1);
    if (!x)
        return NULL;
    x->len = (uint32_t)n;
    if (n)
        memcpy(x->data, p, n);
    x->data[n] = 0;
    return x;
}

static bool elem_eq(const struct lelem *x, const uint8_t *p, size_t n)
{
    return x->len == n && (n == 0 || memcmp(x->data, p, n) == 0);
}

static struct lelem **slots_new(struct kv_store *s, uint64_t cap)
{
    if (cap > SIZE_MAX / sizeof(struct lelem *))
        return NULL;
    return kv_alloc(s, (size_t)cap * sizeof(struct lelem *));
}

/* Move the elements into a new buffer of cap slots, element 0 first. */
static int list_resize(struct kv_store *s, struct list *l, uint64_t cap)
{
    RABIA_ASSERT(cap >= l->count && cap >= LIST_MIN_CAP && (cap & (cap - 1)) == 0);
    struct lelem **b = slots_new(s, cap);
    if (!b)
        return -ENOMEM;
    for (uint64_t i = 0; i < l->count; i++)
        b[i] = at(l, i);
    kv_free(s, l->buf);
    l->buf = b;
    l->cap = cap;
    l->head = 0;
    return 0;
}

/* Room for n more elements (n is bounded by an argument count). */
static int list_reserve(struct kv_store *s, struct list *l, uint64_t n)
{
    RABIA_ASSERT(n <= UINT32_MAX && l->count <= UINT64_MAX / 4);
    uint64_t cap = l->cap;
    while (cap < l->count + n)
        cap *= 2;
    return cap == l->cap ? 0 : list_resize(s, l, cap);
}

/* After removals. A failed shrink keeps the larger buffer: the capacity is
 * not state, so that is no divergence. */
static void list_shrink(struct kv_store *s, struct list *l)
{
    uint64_t cap = l->cap;
    while (cap > LIST_MIN_CAP && l->count <= cap / 4)
        cap /= 2;
    if (cap < l->cap)
        (void)list_resize(s, l, cap);
}

static void list_push(struct list *l, struct lelem *x, int where)
{
    RABIA_ASSERT(l->count < l->cap);
    if (where == HEAD) {
        l->head = (l->head + l->cap - 1) & (l->cap - 1);
        l->buf[l->head] = x;
    } else {
        *slot(l, l->count) = x;
    }
    l->count++;
    l->bytes += elem_bytes(x);
}

static struct lelem *list_pop(struct list *l, int where)
{
    RABIA_ASSERT(l->count > 0);
    struct lelem *x = at(l, where == HEAD ? 0 : l->count - 1);
    if (where == HEAD)
        l->head = (l->head + 1) & (l->cap - 1);
    l->count--;
    RABIA_ASSERT(l->bytes >= elem_bytes(x));
    l->bytes -= elem_bytes(x);
    return x;
}

/* Insert x before element i (i == count: at the tail), moving the shorter
 * side by one slot. */
static void list_insert(struct list *l, uint64_t i, struct lelem *x)
{
    RABIA_ASSERT(i <= l->count && l->count < l->cap);
    if (i < l->count - i) {
        l->head = (l->head + l->cap - 1) & (l->cap - 1);
        for (uint64_t j = 0; j < i; j++)
            *slot(l, j) = *slot(l, j + 1);
    } else {
        for (uint64_t j = l->count; j > i; j--)
            *slot(l, j) = *slot(l, j - 1);
    }
    *slot(l, i) = x;
    l->count++;
    l->bytes += elem_bytes(x);
}

/* Remove up to max elements equal to p[0..n) (all of them when max is 0),
 * from the head (or from the tail when from_tail); returns how many. The
 * survivors are packed toward the end the scan started from. */
static uint64_t list_remove(struct kv_store *s, struct list *l, const uint8_t *p, size_t n,
                            uint64_t max, bool from_tail)
{
    uint64_t removed = 0, w = from_tail ? l->count : 0;
    for (uint64_t k = 0; k < l->count; k++) {
        uint64_t r = from_tail ? l->count - 1 - k : k;
        struct lelem *x = at(l, r);
        if ((max == 0 || removed < max) && elem_eq(x, p, n)) {
            l->bytes -= elem_bytes(x);
            kv_free(s, x);
            removed++;
        } else if (from_tail) {
            *slot(l, --w) = x;
        } else {
            *slot(l, w++) = x;
        }
    }
    if (from_tail)
        l->head = (l->head + removed) & (l->cap - 1);
    l->count -= removed;
    return removed;
}

/* An empty list object with room for n elements. */
static struct kv_obj *list_new(struct kv_store *s, uint64_t n)
{
    uint64_t cap = LIST_MIN_CAP;
    while (cap < n)
        cap *= 2;
    struct list *l = kv_alloc(s, sizeof *l);
    if (!l)
        return NULL;
    *l = (struct list){.buf = slots_new(s, cap), .cap = cap};
    struct kv_obj *o = l->buf ? kv_obj_new(s, KV_LIST, LIST_ENC_DEQUE, l) : NULL;
    if (!o) {
        kv_free(s, l->buf);
        kv_free(s, l);
    }
    return o;
}

static void list_free(struct kv_store *s, struct kv_obj *o)
{
    struct list *l = lst(o);
    for (uint64_t i = 0; i < l->count; i++)
        kv_free(s, at(l, i));
    kv_free(s, l->buf);
    kv_free(s, l);
    kv_free(s, o);
}

/* For SORT (t_sort.c): element i of a list, a new list, an element at its
 * tail. */
void kv_list_at(const struct kv_obj *o, uint64_t i, const uint8_t **p, size_t *n)
{
    const struct lelem *x = at(lst(o), i);
    *p = x->data;
    *n = x->len;
}

struct kv_obj *kv_list_new(struct kv_store *s, uint64_t n)
{
    return list_new(s, n);
}

int kv_list_append(struct kv_store *s, struct kv_obj *o, const uint8_t *p, size_t n)
{
    struct list *l = lst(o);
    int rc = list_reserve(s, l, 1);
    struct lelem *x = rc ? NULL : elem_new(s, p, n);
    if (!x)
        return -ENOMEM;
    list_push(l, x, TAIL);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Command helpers.                                                    */

static int fail(struct kv_ctx *c, const char *msg)
{
    int rc = kv_reply_err(c, msg);
    return rc < 0 ? rc : 1;
}

/* The list at key argument i (*e NULL when absent), or 1 after WRONGTYPE. */
static int find_list(struct kv_ctx *c, uint32_t i, struct kv_dent **e)
{
    *e = kv_find_arg(c, i);
    return kv_type_ok(c, *e, KV_LIST) ? 0 : 1;
}

static int arg_int(struct kv_ctx *c, uint32_t i, int64_t *v)
{
    return kv_parse_i64(c->argv[i], c->len[i], v) ? 0 : fail(c, KV_ERR_NOTINT);
}

/* Redis's getPositiveLongFromObjectOrReply: one message for "not an
 * integer" and "negative". */
static int arg_nonneg(struct kv_ctx *c, uint32_t i, int64_t *v, const char *msg)
{
    return kv_parse_i64(c->argv[i], c->len[i], v) && *v >= 0 ? 0 : fail(c, msg);
}

static int arg_where(struct kv_ctx *c, uint32_t i, int *where)
{
    if (kv_arg_is(c, i, "left"))
        *where = HEAD;
    else if (kv_arg_is(c, i, "right"))
        *where = TAIL;
    else
        return fail(c, KV_ERR_SYNTAX);
    return 0;
}

static int arg_timeout(struct kv_ctx *c, uint32_t i)
{
    return kv_arg_timeout(c, i) ? 0 : 1;
}

/* Elements were removed from e's list: the key goes when empty, else the
 * buffer may shrink. */
static void removed(struct kv_ctx *c, struct kv_dent *e)
{
    struct list *l = lst(obj(e));
    if (kv_delete_if_empty(c, e, l->count))
        return;
    list_shrink(c->s, l);
    kv_touch(c, e);
}

static int reply_elem(struct kv_ctx *c, const struct lelem *x)
{
    return kv_reply_bulk(c, x->data, x->len);
}

/* Pop one element of e's list and reply it (in BLPOP's form when key). */
static int pop_one(struct kv_ctx *c, struct kv_dent *e, int where, bool with_key, uint32_t key)
{
    struct lelem *x = list_pop(lst(obj(e)), where);
    int rc = with_key ? kv_reply_array(c, 2) : 0;
    if (!rc && with_key)
        rc = kv_reply_bulk(c, c->argv[key], c->len[key]);
    if (!rc)
        rc = reply_elem(c, x);
    kv_free(c->s, x);
    removed(c, e);
    return rc;
}

/* Redis's LRANGE / LTRIM index rules: the elements [*from, *from + *n). */
static void range(int64_t start, int64_t end, uint64_t count, uint64_t *from, uint64_t *n)
{
    int64_t len = (int64_t)count;
    if (start < 0)
        start += len;
    if (end < 0)
        end += len;
    if (start < 0)
        start = 0;
    if (start > end || start >= len) {
        *from = *n = 0;
        return;
    }
    if (end >= len)
        end = len - 1;
    *from = (uint64_t)start;
    *n = (uint64_t)(end - start) + 1;
}

/* Index i (negative: from the tail) as a position, false when outside. */
static bool index_pos(const struct list *l, int64_t i, uint64_t *pos)
{
    if (i < 0)
        i += (int64_t)l->count;
    if (i < 0 || (uint64_t)i >= l->count)
        return false;
    *pos = (uint64_t)i;
    return true;
}

/* ------------------------------------------------------------------ */
/* Pushes and pops.                                                    */

static int push(struct kv_ctx *c, int where, bool only_existing)
{
    struct kv_dent *e;
    int rc = find_list(c, 1, &e);
    if (rc)
        return DONE(rc);
    if (!e && only_existing)
        return kv_reply_int(c, 0);
    uint64_t n = c->argc - 2;
    struct kv_obj *o = e ? obj(e) : list_new(c->s, n);
    if (!o)
        return -ENOMEM;
    struct list *l = lst(o);
    rc = list_reserve(c->s, l, n);
    for (uint32_t i = 2; !rc && i < c->argc; i++) {
        struct lelem *x = elem_new(c->s, c->argv[i], c->len[i]);
        if (x)
            list_push(l, x, where);
        else
            rc = -ENOMEM;
    }
    if (rc) {
        if (!e)
            kv_obj_free(c->s, o);
        return rc;
    }
    uint64_t len = l->count;
    if (e)
        kv_touch(c, e);
    else if (!kv_add(c, c->argv[1], c->len[1], o))
        return -ENOMEM;
    kv_key_ready(c, c->argv[1], c->len[1]);
    return kv_reply_int(c, (int64_t)len);
}

KV_CMD(lpush)
{
    return push(c, HEAD, false);
}

KV_CMD(rpush)
{
    return push(c, TAIL, false);
}

KV_CMD(lpushx)
{
    return push(c, HEAD, true);
}

KV_CMD(rpushx)
{
    return push(c, TAIL, true);
}

/* Pop up to count elements of e's list, replied as an array in pop order. */
static int pop_count(struct kv_ctx *c, struct kv_dent *e, int where, uint64_t count)
{
    struct list *l = lst(obj(e));
    uint64_t n = count < l->count ? count : l->count;
    int rc = kv_reply_array(c, n);
    for (uint64_t i = 0; !rc && i < n; i++) {
        struct lelem *x = list_pop(l, where);
        rc = reply_elem(c, x);
        kv_free(c->s, x);
    }
    removed(c, e);
    return rc;
}

/* LPOP / RPOP key [count]: with a count the reply is an array (nil array
 * for a missing key), the elements in pop order. */
static int pop(struct kv_ctx *c, int where)
{
    if (c->argc > 3)
        return kv_reply_arity(c);
    int64_t count = -1;
    int rc = c->argc == 3 ? arg_nonneg(c, 2, &count, KV_ERR_POSITIVE) : 0;
    struct kv_dent *e;
    if (rc || (rc = find_list(c, 1, &e)))
        return DONE(rc);
    if (!e)
        return count < 0 ? kv_reply_null(c) : kv_reply_null_array(c);
    if (count < 0)
        return pop_one(c, e, where, false, 0);
    if (count == 0)
        return kv_reply_array(c, 0);
    return pop_count(c, e, where, (uint64_t)count);
}

KV_CMD(lpop)
{
    return pop(c, HEAD);
}

KV_CMD(rpop)
{
    return pop(c, TAIL);
}

/* LMPOP numkeys key... LEFT|RIGHT [COUNT count], BLMPOP timeout numkeys
 * ... (feature level 1): up to count elements of the first list among the
 * keys, as [key, [elements]]; a nil array when every key is absent (the
 * front end parks BLMPOP's client then, as BLPOP's); a non-list met
 * before a list is WRONGTYPE. */
static int mpop(struct kv_ctx *c, uint32_t at)
{
    uint32_t nk;
    int which;
    int64_t count;
    if (!kv_mpop_args(c, at, "left", "right", &nk, &which, &count))
        return 0; /* replied */
    for (uint32_t i = at + 1; i < at + 1 + nk; i++) {
        struct kv_dent *e;
        int rc = find_list(c, i, &e);
        if (rc)
            return DONE(rc);
        if (!e)
            continue;
        rc = kv_reply_array(c, 2);
        if (!rc)
            rc = kv_reply_bulk(c, c->argv[i], c->len[i]);
        return rc ? rc : pop_count(c, e, which ? TAIL : HEAD, (uint64_t)count);
    }
    return kv_reply_null_array(c);
}

KV_CMD(lmpop)
{
    return mpop(c, 1);
}

KV_CMD(blmpop)
{
    return mpop(c, 2);
}

/* BLPOP / BRPOP key... timeout: the first non-empty list, in argument
 * order; a non-list met before it is WRONGTYPE. */
static int bpop(struct kv_ctx *c, int where)
{
    int rc = arg_timeout(c, c->argc - 1);
    if (rc)
        return DONE(rc);
    for (uint32_t i = 1; i + 1 < c->argc; i++) {
        struct kv_dent *e;
        if ((rc = find_list(c, i, &e)))
            return DONE(rc);
        if (e)
            return pop_one(c, e, where, true, i);
    }
    return kv_reply_null_array(c);
}

KV_CMD(blpop)
{
    return bpop(c, HEAD);
}

KV_CMD(brpop)
{
    return bpop(c, TAIL);
}

/* LMOVE source destination: Redis's lmoveGenericCommand. The destination
 * is made ready (created, or given a free slot) before the pop, so that
 * nothing can fail once the source has changed. */
static int move(struct kv_ctx *c, int from, int to)
{
    struct kv_dent *src, *dst;
    int rc = find_list(c, 1, &src);
    if (rc)
        return DONE(rc);
    if (!src)
        return kv_reply_null(c);
    /* src is live and the clock stands still within a command, so finding
     * the destination cannot expire src, even when it is the same key. */
    if ((rc = find_list(c, 2, &dst)))
        return DONE(rc);
    struct lelem *x;
    if (dst == src) {
        struct list *l = lst(obj(src));
        x = list_pop(l, from);
        list_push(l, x, to);
        kv_touch(c, src);
        kv_key_ready(c, c->argv[2], c->len[2]);
        return reply_elem(c, x);
    }
    if (dst) {
        if ((rc = list_reserve(c->s, lst(obj(dst)), 1)))
            return rc;
    } else {
        struct kv_obj *o = list_new(c->s, 1);
        if (!o || !(dst = kv_add(c, c->argv[2], c->len[2], o)))
            return -ENOMEM;
    }
    x = list_pop(lst(obj(src)), from);
    list_push(lst(obj(dst)), x, to);
    kv_touch(c, dst);
    kv_key_ready(c, c->argv[2], c->len[2]);
    rc = reply_elem(c, x); /* x now belongs to dst, which stays */
    removed(c, src);
    return rc;
}

KV_CMD(lmove)
{
    int from, to, rc;
    if ((rc = arg_where(c, 3, &from)) || (rc = arg_where(c, 4, &to)))
        return DONE(rc);
    return move(c, from, to);
}

KV_CMD(rpoplpush)
{
    return move(c, TAIL, HEAD);
}

/* BRPOPLPUSH source destination timeout (feature level 9): Redis's
 * brpoplpushCommand, the timeout checked first, then BLMOVE ... RIGHT LEFT. */
KV_CMD(brpoplpush)
{
    int rc = arg_timeout(c, 3);
    if (rc)
        return DONE(rc);
    return move(c, TAIL, HEAD);
}

KV_CMD(blmove)
{
    int from, to, rc;
    if ((rc = arg_where(c, 3, &from)) || (rc = arg_where(c, 4, &to)) || (rc = arg_timeout(c, 5)))
        return DONE(rc);
    return move(c, from, to);
}

/* ------------------------------------------------------------------ */
/* Reads.                                                              */

KV_CMD(llen)
{
    struct kv_dent *e;
    int rc = find_list(c, 1, &e);
    if (rc)
        return DONE(rc);
    return kv_reply_int(c, e ? (int64_t)lst(obj(e))->count : 0);
}

KV_CMD(lrange)
{
    int64_t start, end;
    struct kv_dent *e;
    int rc;
    if ((rc = arg_int(c, 2, &start)) || (rc = arg_int(c, 3, &end)) || (rc = find_list(c, 1, &e)))
        return DONE(rc);
    if (!e)
        return kv_reply_array(c, 0);
    const struct list *l = lst(obj(e));
    uint64_t from, n;
    range(start, end, l->count, &from, &n);
    rc = kv_reply_array(c, n);
    for (uint64_t i = 0; !rc && i < n; i++)
        rc = reply_elem(c, at(l, from + i));
    return rc;
}

/* The key is looked up before the index is parsed (Redis's order: a
 * missing key with a bad index is nil). */
KV_CMD(lindex)
{
    struct kv_dent *e;
    int64_t i;
    int rc = find_list(c, 1, &e);
    if (rc)
        return DONE(rc);
    if (!e)
        return kv_reply_null(c);
    if ((rc = arg_int(c, 2, &i)))
        return DONE(rc);
    const struct list *l = lst(obj(e));
    uint64_t pos;
    return index_pos(l, i, &pos) ? reply_elem(c, at(l, pos)) : kv_reply_null(c);
}

/* LPOS key element [RANK r] [COUNT n] [MAXLEN m], Redis 7.0's lposCommand
 * with its arithmetic: a RANK of LLONG_MIN negates to itself there, so it
 * scans from the tail, every match qualifies and COUNT never stops it
 * (matches - rank + 1 wraps negative). The wrap is reproduced with
 * unsigned arithmetic. */
struct lpos_opts {
    int64_t rank, count, maxlen; /* count -1: not given */
};

static int lpos_args(struct kv_ctx *c, struct lpos_opts *o)
{
    *o = (struct lpos_opts){.rank = 1, .count = -1, .maxlen = 0};
    for (uint32_t j = 3; j < c->argc; j++) {
        bool more = j + 1 < c->argc;
        int rc = 0;
        if (more && kv_arg_is(c, j, "rank")) {
            if ((rc = arg_int(c, ++j, &o->rank)) == 0 && o->rank == 0)
                rc = fail(c, "ERR RANK can't be zero: use 1 to start from the first match, 2 from "
                             "the second ... or use negative to start from the end of the list");
        } else if (more && kv_arg_is(c, j, "count")) {
            rc = arg_nonneg(c, ++j, &o->count, "ERR COUNT can't be negative");
        } else if (more && kv_arg_is(c, j, "maxlen")) {
            rc = arg_nonneg(c, ++j, &o->maxlen, "ERR MAXLEN can't be negative");
        } else {
            rc = fail(c, KV_ERR_SYNTAX);
        }
        if (rc)
            return rc;
    }
    return 0;
}

KV_CMD(lpos)
{
    struct lpos_opts o;
    struct kv_dent *e;
    int rc;
    if ((rc = lpos_args(c, &o)) || (rc = find_list(c, 1, &e)))
        return DONE(rc);
    if (!e)
        return o.count != -1 ? kv_reply_array(c, 0) : kv_reply_null(c);
    bool from_tail = o.rank < 0;
    if (from_tail)
        o.rank = (int64_t)(0 - (uint64_t)o.rank);
    const struct list *l = lst(obj(e));
    const uint8_t *p = c->argv[2];
    size_t n = c->len[2];
    size_t mark = kv_reply_defer(c);
    int64_t matches = 0, found = -1;
    uint64_t replied = 0;
    for (uint64_t k = 0; !rc && k < l->count && (o.maxlen == 0 || k < (uint64_t)o.maxlen); k++) {
        uint64_t pos = from_tail ? l->count - 1 - k : k;
        if (!elem_eq(at(l, pos), p, n) || ++matches < o.rank)
            continue;
        if (o.count == -1) {
            found = (int64_t)pos;
            break;
        }
        rc = kv_reply_int(c, (int64_t)pos);
        replied++;
        if (o.count && (int64_t)((uint64_t)matches - (uint64_t)o.rank + 1) >= o.count)
            break;
    }
    if (rc)
        return rc;
    if (o.count != -1)
        return kv_reply_set_len(c, mark, replied);
    return found >= 0 ? kv_reply_int(c, found) : kv_reply_null(c);
}

/* ------------------------------------------------------------------ */
/* Changes in place.                                                   */

KV_CMD(lset)
{
    struct kv_dent *e = kv_find_arg(c, 1);
    int64_t i;
    int rc;
    if (!e)
        return kv_reply_err(c, KV_ERR_NOSUCHKEY);
    if (!kv_type_ok(c, e, KV_LIST))
        return 0;
    if ((rc = arg_int(c, 2, &i)))
        return DONE(rc);
    struct list *l = lst(obj(e));
    uint64_t pos;
    if (!index_pos(l, i, &pos))
        return kv_reply_err(c, KV_ERR_RANGE);
    struct lelem *x = elem_new(c->s, c->argv[3], c->len[3]);
    if (!x)
        return -ENOMEM;
    struct lelem **sl = slot(l, pos);
    l->bytes = l->bytes - elem_bytes(*sl) + elem_bytes(x);
    kv_free(c->s, *sl);
    *sl = x;
    kv_touch(c, e);
    return kv_reply_ok(c);
}

/* LINSERT key BEFORE|AFTER pivot element: the first pivot from the head. */
KV_CMD(linsert)
{
    bool after;
    if (kv_arg_is(c, 2, "after"))
        after = true;
    else if (kv_arg_is(c, 2, "before"))
        after = false;
    else
        return kv_reply_err(c, KV_ERR_SYNTAX);
    struct kv_dent *e;
    int rc = find_list(c, 1, &e);
    if (rc)
        return DONE(rc);
    if (!e)
        return kv_reply_int(c, 0);
    struct list *l = lst(obj(e));
    uint64_t pos = 0;
    while (pos < l->count && !elem_eq(at(l, pos), c->argv[3], c->len[3]))
        pos++;
    if (pos == l->count)
        return kv_reply_int(c, -1);
    if ((rc = list_reserve(c->s, l, 1)))
        return rc;
    struct lelem *x = elem_new(c->s, c->argv[4], c->len[4]);
    if (!x)
        return -ENOMEM;
    list_insert(l, pos + after, x);
    kv_touch(c, e);
    kv_key_ready(c, c->argv[1], c->len[1]);
    return kv_reply_int(c, (int64_t)l->count);
}

/* LREM key count element: count > 0 from the head, < 0 from the tail, 0
 * all. The count is parsed before the key is looked up (Redis's order). */
KV_CMD(lrem)
{
    int64_t count;
    struct kv_dent *e;
    int rc;
    if ((rc = arg_int(c, 2, &count)) || (rc = find_list(c, 1, &e)))
        return DONE(rc);
    if (!e)
        return kv_reply_int(c, 0);
    uint64_t max = count < 0 ? 0 - (uint64_t)count : (uint64_t)count;
    uint64_t n = list_remove(c->s, lst(obj(e)), c->argv[3], c->len[3], max, count < 0);
    if (n)
        removed(c, e);
    return kv_reply_int(c, (int64_t)n);
}

/* LTRIM key start stop. Redis signals the key as modified even when
 * nothing was trimmed, so it is touched then too (WATCH). */
KV_CMD(ltrim)
{
    int64_t start, end;
    struct kv_dent *e;
    int rc;
    if ((rc = arg_int(c, 2, &start)) || (rc = arg_int(c, 3, &end)) || (rc = find_list(c, 1, &e)))
        return DONE(rc);
    if (e) {
        struct list *l = lst(obj(e));
        uint64_t from, n;
        range(start, end, l->count, &from, &n);
        uint64_t drop_tail = l->count - from - n;
        for (uint64_t i = 0; i < from; i++)
            kv_free(c->s, list_pop(l, HEAD));
        for (uint64_t i = 0; i < drop_tail; i++)
            kv_free(c->s, list_pop(l, TAIL));
        removed(c, e);
    }
    return kv_reply_ok(c);
}

/* ------------------------------------------------------------------ */
/* The type's operations.                                              */

/* u8 enc, u64 count (>= 1: an empty list is never stored), then each
 * element as a string, head first. */
static int list_save(struct kv_store *s, const struct kv_obj *o, struct rabia_buf *out)
{
    (void)s;
    const struct list *l = lst(o);
    int rc = kv_wr_u8(out, o->enc);
    if (!rc)
        rc = kv_wr_u64(out, l->count);
    for (uint64_t i = 0; !rc && i < l->count; i++)
        rc = kv_wr_str(out, at(l, i)->data, at(l, i)->len);
    return rc;
}

static int list_load(struct kv_store *s, struct kv_rd *rd, struct kv_obj **out)
{
    uint8_t enc;
    uint64_t count;
    *out = NULL;
    /* Each element takes at least its 4-byte length. */
    if (!kv_rd_u8(rd, &enc) || enc != LIST_ENC_DEQUE || !kv_rd_u64(rd, &count) || count == 0 ||
        count > (uint64_t)(rd->end - rd->p) / 4)
        return -EINVAL;
    struct kv_obj *o = list_new(s, count);
    if (!o)
        return -ENOMEM;
    struct list *l = lst(o);
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *p;
        uint32_t n;
        if (!kv_rd_str(rd, &p, &n)) {
            list_free(s, o);
            return -EINVAL;
        }
        struct lelem *x = elem_new(s, p, n);
        if (!x) {
            list_free(s, o);
            return -ENOMEM;
        }
        list_push(l, x, TAIL);
    }
    *out = o;
    return 0;
}

static int list_copy(struct kv_store *s, const struct kv_obj *o, struct kv_obj **out)
{
    const struct list *l = lst(o);
    struct kv_obj *r = list_new(s, l->count);
    *out = NULL;
    if (!r)
        return -ENOMEM;
    for (uint64_t i = 0; i < l->count; i++) {
        struct lelem *x = elem_new(s, at(l, i)->data, at(l, i)->len);
        if (!x) {
            list_free(s, r);
            return -ENOMEM;
        }
        list_push(lst(r), x, TAIL);
    }
    *out = r;
    return 0;
}

/* What the elements need, and a slot each: not the buffer's capacity,
 * which depends on the list's history (MEMORY USAGE is a reply). */
static uint64_t list_len(const struct kv_obj *o)
{
    return lst(o)->count;
}

static uint64_t list_mem(const struct kv_obj *o)
{
    const struct list *l = lst(o);
    return sizeof *o + sizeof *l + l->count * sizeof(struct lelem *) + l->bytes;
}

const struct kv_type_ops kv_list_ops = {
    .name = "list",
    .free = list_free,
    .save = list_save,
    .load = list_load,
    .copy = list_copy,
    .mem = list_mem,
    .len = list_len,
};
