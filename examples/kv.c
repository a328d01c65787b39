/* The Redis-like key-value example state machine: see kv.h. */
#include "kv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ex_codec.h"

#define KV_SNAPSHOT_VERSION 1
#define KV_MAX_DEPTH 128 /* an AVL tree of 2^64 nodes is < 93 high */
#define KV_SCAN_DEFAULT_COUNT 10

/* ------------------------------------------------------------------ */
/* The ordered store: an AVL tree with subtree sizes.                  */

struct node {
    struct node *l, *r;
    uint64_t size;   /* nodes in this subtree */
    int height;      /* 1 for a leaf */
    uint32_t klen, vlen;
    uint8_t *val;    /* malloc'd, at least 1 byte */
    uint8_t key[];
};

static int height(const struct node *n) { return n ? n->height : 0; }
static uint64_t size(const struct node *n) { return n ? n->size : 0; }

static void update(struct node *n)
{
    int hl = height(n->l), hr = height(n->r);
    n->height = 1 + (hl > hr ? hl : hr);
    n->size = 1 + size(n->l) + size(n->r);
}

static int cmp_key(const uint8_t *k, uint32_t klen, const struct node *n)
{
    return ex_keycmp(k, klen, n->key, n->klen);
}

static struct node *rot_right(struct node *y)
{
    struct node *x = y->l;
    y->l = x->r;
    x->r = y;
    update(y);
    update(x);
    return x;
}

static struct node *rot_left(struct node *x)
{
    struct node *y = x->r;
    x->r = y->l;
    y->l = x;
    update(x);
    update(y);
    return y;
}

static struct node *rebalance(struct node *n)
{
    update(n);
    int bf = height(n->l) - height(n->r);
    if (bf > 1) {
        if (height(n->l->l) < height(n->l->r))
            n->l = rot_left(n->l);
        return rot_right(n);
    }
    if (bf < -1) {
        if (height(n->r->r) < height(n->r->l))
            n->r = rot_right(n->r);
        return rot_left(n);
    }
    return n;
}

static struct node *tree_find(struct node *t, const uint8_t *k, uint32_t klen)
{
    while (t) {
        int c = cmp_key(k, klen, t);
        if (c == 0)
            return t;
        t = c < 0 ? t->l : t->r;
    }
    return NULL;
}

/* Insert n, whose key is not in t. Never allocates. */
static struct node *tree_insert(struct node *t, struct node *n)
{
    if (!t) {
        n->l = n->r = NULL;
        update(n);
        return n;
    }
    if (cmp_key(n->key, n->klen, t) < 0)
        t->l = tree_insert(t->l, n);
    else
        t->r = tree_insert(t->r, n);
    return rebalance(t);
}

static struct node *tree_remove_min(struct node *t, struct node **min)
{
    if (!t->l) {
        *min = t;
        return t->r;
    }
    t->l = tree_remove_min(t->l, min);
    return rebalance(t);
}

/* Unlink the node with key k (if any) into *out. Never allocates. */
static struct node *tree_remove(struct node *t, const uint8_t *k, uint32_t klen, struct node **out)
{
    if (!t)
        return NULL;
    int c = cmp_key(k, klen, t);
    if (c < 0) {
        t->l = tree_remove(t->l, k, klen, out);
    } else if (c > 0) {
        t->r = tree_remove(t->r, k, klen, out);
    } else {
        *out = t;
        if (!t->l || !t->r)
            return t->l ? t->l : t->r;
        struct node *m;
        struct node *r = tree_remove_min(t->r, &m);
        m->l = t->l;
        m->r = r;
        return rebalance(m);
    }
    return rebalance(t);
}

static void node_free(struct node *n)
{
    if (n) {
        free(n->val);
        free(n);
    }
}

static void tree_free(struct node *t)
{
    if (!t)
        return;
    tree_free(t->l);
    tree_free(t->r);
    node_free(t);
}

/* A balanced tree over v[lo, hi), which is sorted. */
static struct node *tree_build(struct node **v, size_t lo, size_t hi)
{
    if (lo >= hi)
        return NULL;
    size_t mid = lo + (hi - lo) / 2;
    struct node *n = v[mid];
    n->l = tree_build(v, lo, mid);
    n->r = tree_build(v, mid + 1, hi);
    update(n);
    return n;
}

static uint8_t *dup_bytes(const uint8_t *p, uint32_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

/* A node owning copies of key and value (unlinked). */
static struct node *node_new(const uint8_t *k, uint32_t klen, const uint8_t *v, uint32_t vlen)
{
    struct node *n = malloc(sizeof *n + (klen ? klen : 1));
    if (!n)
        return NULL;
    if (!(n->val = dup_bytes(v, vlen))) {
        free(n);
        return NULL;
    }
    if (klen)
        memcpy(n->key, k, klen);
    n->klen = klen;
    n->vlen = vlen;
    n->l = n->r = NULL;
    return n;
}

/* In-order iteration with an explicit stack. */
struct iter {
    struct node *stk[KV_MAX_DEPTH];
    int n;
};

static void it_push_left(struct iter *it, struct node *t)
{
    for (; t; t = t->l)
        it->stk[it->n++] = t;
}

static void it_first(struct iter *it, struct node *root)
{
    it->n = 0;
    it_push_left(it, root);
}

/* Position at the first key >= k. */
static void it_seek_ge(struct iter *it, struct node *t, const uint8_t *k, uint32_t klen)
{
    it->n = 0;
    while (t) {
        if (cmp_key(k, klen, t) <= 0) {
            it->stk[it->n++] = t;
            t = t->l;
        } else {
            t = t->r;
        }
    }
}

/* Position at the key of 0-based rank idx (at the end if idx >= size). */
static void it_seek_index(struct iter *it, struct node *t, uint64_t idx)
{
    it->n = 0;
    while (t) {
        uint64_t ls = size(t->l);
        if (idx < ls) {
            it->stk[it->n++] = t;
            t = t->l;
        } else if (idx == ls) {
            it->stk[it->n++] = t;
            return;
        } else {
            idx -= ls + 1;
            t = t->r;
        }
    }
}

static struct node *it_next(struct iter *it)
{
    if (!it->n)
        return NULL;
    struct node *n = it->stk[--it->n];
    it_push_left(it, n->r);
    return n;
}

/* ------------------------------------------------------------------ */
/* The state machine with its transaction undo log.                   */

enum undo_kind { U_INSERTED, U_REPLACED, U_REMOVED, U_FLUSHED };

struct undo {
    enum undo_kind kind;
    struct node *node;  /* FLUSHED: the root of the whole old tree */
    uint8_t *old_val;   /* REPLACED */
    uint32_t old_vlen;
};

struct kv {
    struct node *root;
    bool in_txn;        /* mutations are logged in undo[] */
    struct undo *undo;
    size_t n_undo, cap_undo;
};

static void *kv_create(void)
{
    return calloc(1, sizeof(struct kv));
}

static void kv_destroy(void *sm)
{
    struct kv *kv = sm;
    if (!kv)
        return;
    tree_free(kv->root);
    free(kv->undo);
    free(kv);
}

/* Room for one more undo entry (before a mutation, so that a failed
 * allocation leaves nothing half done). */
static int undo_reserve(struct kv *kv)
{
    if (!kv->in_txn || kv->n_undo < kv->cap_undo)
        return 0;
    size_t cap = kv->cap_undo ? kv->cap_undo * 2 : 16;
    struct undo *u = realloc(kv->undo, cap * sizeof *u);
    if (!u)
        return -ENOMEM;
    kv->undo = u;
    kv->cap_undo = cap;
    return 0;
}

static void undo_push(struct kv *kv, enum undo_kind kind, struct node *n, uint8_t *old_val,
                      uint32_t old_vlen)
{
    struct undo u = {kind, n, old_val, old_vlen};
    kv->undo[kv->n_undo++] = u;
}

/* Undo every logged mutation, newest first. Never allocates: every node a
 * later entry refers to is back in place when its entry is undone. */
static void txn_rollback(struct kv *kv)
{
    while (kv->n_undo) {
        struct undo *u = &kv->undo[--kv->n_undo];
        struct node *rm = NULL;
        switch (u->kind) {
        case U_INSERTED:
            kv->root = tree_remove(kv->root, u->node->key, u->node->klen, &rm);
            node_free(rm);
            break;
        case U_REPLACED:
            free(u->node->val);
            u->node->val = u->old_val;
            u->node->vlen = u->old_vlen;
            break;
        case U_REMOVED:
            kv->root = tree_insert(kv->root, u->node);
            break;
        case U_FLUSHED:
            tree_free(kv->root);
            kv->root = u->node;
            break;
        }
    }
    kv->in_txn = false;
}

/* Keep every mutation: free what the log kept for undoing. */
static void txn_commit(struct kv *kv)
{
    for (size_t i = 0; i < kv->n_undo; i++) {
        struct undo *u = &kv->undo[i];
        switch (u->kind) {
        case U_INSERTED:
            break;
        case U_REPLACED:
            free(u->old_val);
            break;
        case U_REMOVED:
            node_free(u->node);
            break;
        case U_FLUSHED:
            tree_free(u->node);
            break;
        }
    }
    kv->n_undo = 0;
    kv->in_txn = false;
}

static int kv_set(struct kv *kv, const uint8_t *k, uint32_t klen, const uint8_t *v, uint32_t vlen)
{
    struct node *n = tree_find(kv->root, k, klen);
    int rc = undo_reserve(kv);
    if (rc)
        return rc;
    if (n) {
        uint8_t *nv = dup_bytes(v, vlen);
        if (!nv)
            return -ENOMEM;
        if (kv->in_txn)
            undo_push(kv, U_REPLACED, n, n->val, n->vlen);
        else
            free(n->val);
        n->val = nv;
        n->vlen = vlen;
    } else {
        if (!(n = node_new(k, klen, v, vlen)))
            return -ENOMEM;
        kv->root = tree_insert(kv->root, n);
        if (kv->in_txn)
            undo_push(kv, U_INSERTED, n, NULL, 0);
    }
    return 0;
}

/* 1 if k was there and is deleted, 0 if absent, or -ENOMEM. */
static int kv_del(struct kv *kv, const uint8_t *k, uint32_t klen)
{
    if (!tree_find(kv->root, k, klen))
        return 0;
    int rc = undo_reserve(kv);
    if (rc)
        return rc;
    struct node *rm = NULL;
    kv->root = tree_remove(kv->root, k, klen, &rm);
    if (kv->in_txn)
        undo_push(kv, U_REMOVED, rm, NULL, 0);
    else
        node_free(rm);
    return 1;
}

static int kv_flush(struct kv *kv)
{
    int rc = undo_reserve(kv);
    if (rc)
        return rc;
    if (kv->in_txn)
        undo_push(kv, U_FLUSHED, kv->root, NULL, 0);
    else
        tree_free(kv->root);
    kv->root = NULL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* RESP2 replies.                                                      */

static int put_cstr(struct rabia_buf *out, const char *s)
{
    return rabia_buf_append(out, s, strlen(s));
}

static int resp_line(struct rabia_buf *out, char type, const char *s)
{
    int rc = rabia_buf_put_u8(out, (uint8_t)type);
    if (!rc)
        rc = put_cstr(out, s);
    return rc ? rc : put_cstr(out, "\r\n");
}

static int resp_ok(struct rabia_buf *out) { return resp_line(out, '+', "OK"); }
static int resp_err(struct rabia_buf *out, const char *msg) { return resp_line(out, '-', msg); }
static int resp_null(struct rabia_buf *out) { return put_cstr(out, "$-1\r\n"); }

static int resp_num(struct rabia_buf *out, char type, int64_t v)
{
    char num[32];
    snprintf(num, sizeof num, "%c%" PRId64 "\r\n", type, v);
    return put_cstr(out, num);
}

static int resp_int(struct rabia_buf *out, int64_t v) { return resp_num(out, ':', v); }
static int resp_array(struct rabia_buf *out, uint64_t n) { return resp_num(out, '*', (int64_t)n); }

static int resp_bulk(struct rabia_buf *out, const uint8_t *p, size_t n)
{
    int rc = rabia_buf_reserve(out, n + 32);
    if (rc)
        return rc;
    resp_num(out, '$', (int64_t)n);
    rabia_buf_append(out, p, n);
    return put_cstr(out, "\r\n");
}

/* Insert "*count\r\n" at out->data[at] (before items already written). */
static int resp_insert_array_header(struct rabia_buf *out, size_t at, uint64_t count)
{
    char hdr[32];
    int n = snprintf(hdr, sizeof hdr, "*%" PRIu64 "\r\n", count);
    int rc = rabia_buf_reserve(out, (size_t)n);
    if (rc)
        return rc;
    memmove(out->data + at + n, out->data + at, out->len - at);
    memcpy(out->data + at, hdr, (size_t)n);
    out->len += (size_t)n;
    return 0;
}

/* Append user bytes to an error line: CR and LF become spaces (as Redis
 * does) so that the line stays one RESP simple error. */
static int put_sanitized(struct rabia_buf *out, const uint8_t *p, size_t n)
{
    size_t at = out->len;
    int rc = rabia_buf_append(out, p, n);
    if (rc)
        return rc;
    for (size_t i = at; i < out->len; i++)
        if (out->data[i] == '\r' || out->data[i] == '\n')
            out->data[i] = ' ';
    return 0;
}

/* ------------------------------------------------------------------ */
/* Parsing.                                                            */

struct args {
    uint32_t argc;
    const uint8_t **v;
    uint32_t *len;
    const uint8_t *sv[16];
    uint32_t sl[16];
};

static void args_free(struct args *a)
{
    if (a->v != a->sv) {
        free(a->v);
        free(a->len);
    }
}

/* 0, 1 for a malformed argv, or -ENOMEM. */
static int args_parse(struct args *a, const uint8_t *op, size_t op_len)
{
    struct ex_rd r = ex_rd_init(op, op_len);
    uint32_t argc;
    a->argc = 0;
    a->v = a->sv;
    a->len = a->sl;
    if (!ex_get_u32(&r, &argc) || argc > ex_rd_left(&r) / 4)
        return 1;
    if (argc > 16) {
        a->v = malloc(argc * sizeof *a->v);
        a->len = malloc(argc * sizeof *a->len);
        if (!a->v || !a->len) {
            free(a->v);
            free(a->len);
            a->v = a->sv;
            return -ENOMEM;
        }
    }
    for (uint32_t i = 0; i < argc; i++) {
        if (!ex_get_str(&r, &a->v[i], &a->len[i])) {
            args_free(a);
            a->v = a->sv;
            return 1;
        }
    }
    if (ex_rd_left(&r)) {
        args_free(a);
        a->v = a->sv;
        return 1;
    }
    a->argc = argc;
    return 0;
}

static char ascii_lower(uint8_t c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

/* Case-insensitive (ASCII only, locale-free) compare with a lowercase name. */
static bool eq_ci(const uint8_t *p, size_t n, const char *name)
{
    size_t i = 0;
    for (; i < n; i++)
        if (!name[i] || ascii_lower(p[i]) != name[i])
            return false;
    return name[i] == '\0';
}

/* Redis's string2ll: an optional '-', no '+', no leading zeros, no
 * spaces, within int64. */
bool rabia_kv_parse_int(const uint8_t *p, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return false;
    if (n == 1 && p[0] == '0') {
        *out = 0;
        return true;
    }
    if (p[0] == '-') {
        neg = true;
        if (++i == n)
            return false;
    }
    if (p[i] < '1' || p[i] > '9')
        return false;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v;
    }
    return true;
}

/* Decimal digits only (leading zeros allowed), within u64. */
static bool str_to_u64(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* ------------------------------------------------------------------ */
/* Glob matching (Redis's stringmatchlen, case-sensitive).            */

/* Does the one-byte pattern element at p (n > 0 bytes left) match c?
 * *adv = the element's length in the pattern. */
static bool glob_one(const uint8_t *p, size_t n, uint8_t c, size_t *adv)
{
    if (p[0] == '?') {
        *adv = 1;
        return true;
    }
    if (p[0] == '\\' && n >= 2) {
        *adv = 2;
        return p[1] == c;
    }
    if (p[0] != '[') {
        *adv = 1;
        return p[0] == c;
    }
    size_t i = 1;
    bool neg = false, match = false;
    if (i < n && p[i] == '^') {
        neg = true;
        i++;
    }
    for (;;) {
        if (i >= n) /* unterminated: the set runs to the pattern's end */
            break;
        if (p[i] == '\\' && n - i >= 2) {
            if (p[i + 1] == c)
                match = true;
            i += 2;
        } else if (p[i] == ']') {
            i++;
            break;
        } else if (n - i >= 3 && p[i + 1] == '-') {
            uint8_t lo = p[i], hi = p[i + 2];
            if (lo > hi) {
                uint8_t t = lo;
                lo = hi;
                hi = t;
            }
            if (c >= lo && c <= hi)
                match = true;
            i += 3;
        } else {
            if (p[i] == c)
                match = true;
            i++;
        }
    }
    *adv = i;
    return neg ? !match : match;
}

int rabia_kv_glob_match(const uint8_t *p, size_t pl, const uint8_t *s, size_t sl)
{
    size_t pi = 0, si = 0;
    size_t star_p = SIZE_MAX, star_s = 0; /* where to resume after the last '*' */
    while (si < sl) {
        if (pi < pl) {
            size_t adv;
            if (p[pi] == '*') {
                star_p = ++pi;
                star_s = si;
                continue;
            }
            if (glob_one(p + pi, pl - pi, s[si], &adv)) {
                pi += adv;
                si++;
                continue;
            }
        }
        if (star_p == SIZE_MAX)
            return 0;
        pi = star_p; /* let the last '*' absorb one more byte */
        si = ++star_s;
    }
    while (pi < pl && p[pi] == '*')
        pi++;
    return pi == pl;
}

/* Length of the literal prefix every match of the pattern starts with. */
static size_t glob_prefix(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] != '*' && p[i] != '?' && p[i] != '[' && p[i] != '\\')
        i++;
    return i;
}

/* ------------------------------------------------------------------ */
/* Commands. Each writes exactly one RESP reply; returns 0 or -ENOMEM. */

#define E_NOT_INT "ERR value is not an integer or out of range"
#define E_SYNTAX "ERR syntax error"

struct ctx {
    struct kv *kv;
    const struct args *a;
    struct rabia_buf *out;
};

#define ARG(i) (c->a->v[i])
#define LEN(i) (c->a->len[i])

static int reply_value(struct rabia_buf *out, const struct node *n)
{
    return n ? resp_bulk(out, n->val, n->vlen) : resp_null(out);
}

static int cmd_get(struct ctx *c)
{
    return reply_value(c->out, tree_find(c->kv->root, ARG(1), LEN(1)));
}

static int cmd_set(struct ctx *c)
{
    bool nx = false, xx = false, get = false;
    for (uint32_t i = 3; i < c->a->argc; i++) {
        if (eq_ci(ARG(i), LEN(i), "nx") && !xx)
            nx = true;
        else if (eq_ci(ARG(i), LEN(i), "xx") && !nx)
            xx = true;
        else if (eq_ci(ARG(i), LEN(i), "get"))
            get = true;
        else if (!eq_ci(ARG(i), LEN(i), "keepttl"))
            return resp_err(c->out, E_SYNTAX);
    }
    struct node *n = tree_find(c->kv->root, ARG(1), LEN(1));
    int rc;
    if (get && (rc = reply_value(c->out, n))) /* before the old value goes */
        return rc;
    if ((nx && n) || (xx && !n))
        return get ? 0 : resp_null(c->out);
    if ((rc = kv_set(c->kv, ARG(1), LEN(1), ARG(2), LEN(2))))
        return rc;
    return get ? 0 : resp_ok(c->out);
}

static int cmd_del(struct ctx *c)
{
    int64_t n = 0;
    for (uint32_t i = 1; i < c->a->argc; i++) {
        int rc = kv_del(c->kv, ARG(i), LEN(i));
        if (rc < 0)
            return rc;
        n += rc;
    }
    return resp_int(c->out, n);
}

static int cmd_exists(struct ctx *c)
{
    int64_t n = 0;
    for (uint32_t i = 1; i < c->a->argc; i++)
        n += tree_find(c->kv->root, ARG(i), LEN(i)) != NULL;
    return resp_int(c->out, n);
}

static int incr_by(struct ctx *c, int64_t by)
{
    struct node *n = tree_find(c->kv->root, ARG(1), LEN(1));
    int64_t v = 0;
    if (n && !rabia_kv_parse_int(n->val, n->vlen, &v))
        return resp_err(c->out, E_NOT_INT);
    if ((by < 0 && v < 0 && by < INT64_MIN - v) || (by > 0 && v > 0 && by > INT64_MAX - v))
        return resp_err(c->out, "ERR increment or decrement would overflow");
    v += by;
    char num[24];
    int len = snprintf(num, sizeof num, "%" PRId64, v);
    int rc = kv_set(c->kv, ARG(1), LEN(1), (const uint8_t *)num, (uint32_t)len);
    return rc ? rc : resp_int(c->out, v);
}

static int cmd_incr(struct ctx *c) { return incr_by(c, 1); }
static int cmd_decr(struct ctx *c) { return incr_by(c, -1); }

static int cmd_incrby(struct ctx *c)
{
    int64_t by;
    if (!rabia_kv_parse_int(ARG(2), LEN(2), &by))
        return resp_err(c->out, E_NOT_INT);
    return incr_by(c, by);
}

static int cmd_decrby(struct ctx *c)
{
    int64_t by;
    if (!rabia_kv_parse_int(ARG(2), LEN(2), &by))
        return resp_err(c->out, E_NOT_INT);
    if (by == INT64_MIN)
        return resp_err(c->out, "ERR decrement would overflow");
    return incr_by(c, -by);
}

static int cmd_mget(struct ctx *c)
{
    int rc = resp_array(c->out, c->a->argc - 1);
    for (uint32_t i = 1; !rc && i < c->a->argc; i++)
        rc = reply_value(c->out, tree_find(c->kv->root, ARG(i), LEN(i)));
    return rc;
}

static int arity_error(struct rabia_buf *out, const char *name)
{
    int rc = put_cstr(out, "-ERR wrong number of arguments for '");
    if (!rc)
        rc = put_cstr(out, name);
    return rc ? rc : put_cstr(out, "' command\r\n");
}

static int cmd_mset(struct ctx *c)
{
    if (c->a->argc % 2 == 0)
        return arity_error(c->out, "mset");
    for (uint32_t i = 1; i < c->a->argc; i += 2) {
        int rc = kv_set(c->kv, ARG(i), LEN(i), ARG(i + 1), LEN(i + 1));
        if (rc)
            return rc;
    }
    return resp_ok(c->out);
}

static int cmd_keys(struct ctx *c)
{
    const uint8_t *pat = ARG(1);
    uint32_t plen = LEN(1);
    uint32_t pre = (uint32_t)glob_prefix(pat, plen);
    struct iter it;
    struct node *n;
    uint64_t count = 0;
    size_t at = c->out->len;
    it_seek_ge(&it, c->kv->root, pat, pre);
    while ((n = it_next(&it))) {
        if (n->klen < pre || (pre && memcmp(n->key, pat, pre) != 0))
            break; /* past every key with the literal prefix */
        if (rabia_kv_glob_match(pat, plen, n->key, n->klen)) {
            int rc = resp_bulk(c->out, n->key, n->klen);
            if (rc)
                return rc;
            count++;
        }
    }
    return resp_insert_array_header(c->out, at, count);
}

static int cmd_scan(struct ctx *c)
{
    uint64_t cursor, count = KV_SCAN_DEFAULT_COUNT;
    const uint8_t *pat = NULL;
    uint32_t plen = 0;
    if (!str_to_u64(ARG(1), LEN(1), &cursor))
        return resp_err(c->out, "ERR invalid cursor");
    for (uint32_t i = 2; i < c->a->argc; i += 2) {
        if (i + 1 >= c->a->argc)
            return resp_err(c->out, E_SYNTAX);
        if (eq_ci(ARG(i), LEN(i), "count")) {
            int64_t v;
            if (!rabia_kv_parse_int(ARG(i + 1), LEN(i + 1), &v))
                return resp_err(c->out, E_NOT_INT);
            if (v < 1)
                return resp_err(c->out, E_SYNTAX);
            count = (uint64_t)v;
        } else if (eq_ci(ARG(i), LEN(i), "match")) {
            pat = ARG(i + 1);
            plen = LEN(i + 1);
        } else {
            return resp_err(c->out, E_SYNTAX);
        }
    }
    uint64_t total = size(c->kv->root);
    uint64_t next = 0;
    if (cursor < total && count < total - cursor)
        next = cursor + count;
    char num[24];
    int len = snprintf(num, sizeof num, "%" PRIu64, next);
    int rc = resp_array(c->out, 2);
    if (!rc)
        rc = resp_bulk(c->out, (const uint8_t *)num, (size_t)len);
    if (rc)
        return rc;
    size_t at = c->out->len;
    uint64_t found = 0;
    struct iter it;
    struct node *n;
    it_seek_index(&it, c->kv->root, cursor);
    for (uint64_t k = 0; k < count && (n = it_next(&it)); k++) {
        if (pat && !rabia_kv_glob_match(pat, plen, n->key, n->klen))
            continue;
        if ((rc = resp_bulk(c->out, n->key, n->klen)))
            return rc;
        found++;
    }
    return resp_insert_array_header(c->out, at, found);
}

static int cmd_dbsize(struct ctx *c)
{
    return resp_int(c->out, (int64_t)size(c->kv->root));
}

static int cmd_flushall(struct ctx *c)
{
    if (c->a->argc > 2 ||
        (c->a->argc == 2 && !eq_ci(ARG(1), LEN(1), "sync") && !eq_ci(ARG(1), LEN(1), "async")))
        return resp_err(c->out, E_SYNTAX);
    int rc = kv_flush(c->kv);
    return rc ? rc : resp_ok(c->out);
}

static int cmd_ping(struct ctx *c)
{
    if (c->a->argc > 2)
        return arity_error(c->out, "ping");
    if (c->a->argc == 2)
        return resp_bulk(c->out, ARG(1), LEN(1));
    return resp_line(c->out, '+', "PONG");
}

static int cmd_echo(struct ctx *c)
{
    return resp_bulk(c->out, ARG(1), LEN(1));
}

static int cmd_txn(struct ctx *c);

struct cmd {
    const char *name; /* lowercase */
    int arity;        /* Redis's: n exactly n args (name included), -n at least n */
    int (*fn)(struct ctx *c);
};

static const struct cmd commands[] = {
    {"get", 2, cmd_get},         {"set", -3, cmd_set},       {"del", -2, cmd_del},
    {"exists", -2, cmd_exists},  {"incr", 2, cmd_incr},      {"decr", 2, cmd_decr},
    {"incrby", 3, cmd_incrby},   {"decrby", 3, cmd_decrby},  {"mget", -2, cmd_mget},
    {"mset", -3, cmd_mset},      {"keys", 2, cmd_keys},      {"scan", -2, cmd_scan},
    {"dbsize", 1, cmd_dbsize},   {"flushall", -1, cmd_flushall},
    {"ping", -1, cmd_ping},      {"echo", 2, cmd_echo},      {"txn", -1, cmd_txn},
};

/* Redis's text: "ERR unknown command '<name>', with args beginning with:
 * '<a1>' '<a2>' " with at most about 128 bytes of arguments. */
static int unknown_command(const struct args *a, struct rabia_buf *out)
{
    int rc = put_cstr(out, "-ERR unknown command '");
    if (!rc)
        rc = put_sanitized(out, a->v[0], a->len[0] < 128 ? a->len[0] : 128);
    if (!rc)
        rc = put_cstr(out, "', with args beginning with: ");
    size_t args = 0;
    for (uint32_t i = 1; !rc && i < a->argc && args < 128; i++) {
        size_t n = a->len[i] < 128 - args ? a->len[i] : 128 - args;
        if (!(rc = put_cstr(out, "'")) && !(rc = put_sanitized(out, a->v[i], n)))
            rc = put_cstr(out, "' ");
        args += n + 3;
    }
    return rc ? rc : put_cstr(out, "\r\n");
}

/* Run one parsed command, writing exactly one reply. */
static int kv_exec(struct kv *kv, const struct args *a, struct rabia_buf *out)
{
    if (a->argc == 0)
        return resp_err(out, "ERR empty command");
    const struct cmd *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (eq_ci(a->v[0], a->len[0], commands[i].name)) {
            cmd = &commands[i];
            break;
        }
    }
    if (!cmd)
        return unknown_command(a, out);
    if ((cmd->arity > 0 && a->argc != (uint32_t)cmd->arity) ||
        (cmd->arity < 0 && a->argc < (uint32_t)-cmd->arity))
        return arity_error(out, cmd->name);
    if (cmd->fn == cmd_txn && kv->in_txn)
        return resp_err(out, "ERR TXN calls can not be nested");
    struct ctx c = {kv, a, out};
    return cmd->fn(&c);
}

/* The reply of an aborted transaction, in tmp. */
static int txn_abort_reply(struct rabia_buf *tmp, uint32_t index, const uint8_t *name,
                           size_t name_len, const uint8_t *err, size_t err_len)
{
    char num[48];
    snprintf(num, sizeof num, "command %" PRIu32 " (", index);
    int rc = put_cstr(tmp, "-EXECABORT Transaction discarded: ");
    if (!rc)
        rc = put_cstr(tmp, num);
    if (!rc)
        rc = put_sanitized(tmp, name, name_len < 128 ? name_len : 128);
    if (!rc)
        rc = put_cstr(tmp, ") failed: ");
    if (!rc)
        rc = put_sanitized(tmp, err, err_len);
    return rc ? rc : put_cstr(tmp, "\r\n");
}

static int cmd_txn(struct ctx *c)
{
    struct kv *kv = c->kv;
    struct rabia_buf *out = c->out;
    uint32_t n = c->a->argc - 1;
    size_t start = out->len;
    int rc = resp_array(out, n);
    if (rc)
        return rc;
    kv->in_txn = true;
    kv->n_undo = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct args sub;
        const uint8_t *name = (const uint8_t *)"?", *err;
        size_t name_len = 1, err_len;
        size_t at = out->len;
        rc = args_parse(&sub, ARG(i + 1), LEN(i + 1));
        if (rc < 0)
            break;
        if (rc == 0) {
            rc = kv_exec(kv, &sub, out);
            if (rc < 0) {
                args_free(&sub);
                break;
            }
            if (out->data[at] != '-') {
                args_free(&sub);
                continue;
            }
            if (sub.argc) {
                name = sub.v[0];
                name_len = sub.len[0];
            }
            err = out->data + at + 1;
            err_len = out->len - at - 3; /* without '-' and CRLF */
        } else {
            err = (const uint8_t *)"ERR malformed operation";
            err_len = strlen((const char *)err);
        }
        /* Abort: undo everything, reply with one error instead. */
        struct rabia_buf tmp = {0};
        rc = txn_abort_reply(&tmp, i, name, name_len, err, err_len);
        args_free(&sub);
        txn_rollback(kv);
        out->len = start;
        if (!rc)
            rc = rabia_buf_append(out, tmp.data, tmp.len);
        rabia_buf_free(&tmp);
        return rc;
    }
    if (rc < 0) {
        txn_rollback(kv);
        out->len = start;
        return rc;
    }
    txn_commit(kv);
    return 0;
}

/* ------------------------------------------------------------------ */
/* The rabia_sm_ops.                                                   */

static int kv_apply(void *sm, const uint8_t *op, size_t op_len, struct rabia_buf *reply)
{
    struct kv *kv = sm;
    struct args a;
    int rc = args_parse(&a, op, op_len);
    if (rc < 0)
        return rc;
    if (rc > 0)
        return resp_err(reply, "ERR malformed operation");
    rc = kv_exec(kv, &a, reply);
    args_free(&a);
    return rc;
}

static int kv_snapshot(void *sm, struct rabia_buf *out)
{
    struct kv *kv = sm;
    struct iter it;
    struct node *n;
    int rc = rabia_buf_put_u8(out, KV_SNAPSHOT_VERSION);
    if (!rc)
        rc = rabia_buf_put_u64(out, size(kv->root));
    it_first(&it, kv->root);
    while (!rc && (n = it_next(&it))) {
        if ((rc = rabia_buf_reserve(out, 8 + (size_t)n->klen + n->vlen)))
            break;
        rabia_buf_put_u32(out, n->klen);
        rabia_buf_append(out, n->key, n->klen);
        rabia_buf_put_u32(out, n->vlen);
        rabia_buf_append(out, n->val, n->vlen);
    }
    return rc;
}

static int kv_restore(void *sm, const uint8_t *data, size_t len)
{
    struct kv *kv = sm;
    struct ex_rd r = ex_rd_init(data, len);
    uint8_t version;
    uint64_t count;
    if (!ex_get_u8(&r, &version) || version != KV_SNAPSHOT_VERSION || !ex_get_u64(&r, &count) ||
        count > ex_rd_left(&r) / 8) /* an entry takes at least 8 bytes */
        return -EINVAL;
    struct node **v = NULL;
    if (count && !(v = malloc((size_t)count * sizeof *v)))
        return -ENOMEM;
    uint64_t built = 0;
    int rc = 0;
    for (; built < count; built++) {
        const uint8_t *k, *val;
        uint32_t klen, vlen;
        if (!ex_get_str(&r, &k, &klen) || !ex_get_str(&r, &val, &vlen) ||
            (built > 0 && cmp_key(k, klen, v[built - 1]) <= 0)) {
            rc = -EINVAL;
            break;
        }
        if (!(v[built] = node_new(k, klen, val, vlen))) {
            rc = -ENOMEM;
            break;
        }
    }
    if (!rc && ex_rd_left(&r))
        rc = -EINVAL;
    if (rc) {
        for (uint64_t i = 0; i < built; i++)
            node_free(v[i]);
        free(v);
        return rc;
    }
    tree_free(kv->root);
    kv->root = tree_build(v, 0, (size_t)count);
    free(v);
    return 0;
}

const struct rabia_sm_ops rabia_sm_kv = {
    .name = "kv",
    .create = kv_create,
    .destroy = kv_destroy,
    .apply = kv_apply,
    .snapshot = kv_snapshot,
    .restore = kv_restore,
};

uint64_t rabia_kv_count(const void *sm)
{
    return size(((const struct kv *)sm)->root);
}

/* ------------------------------------------------------------------ */
/* Client helpers.                                                     */

int rabia_kv_encode_argv(struct rabia_buf *out, int argc, const char *const *argv,
                         const size_t *lens)
{
    if (argc < 0)
        return -EINVAL;
    size_t at = out->len;
    int rc = rabia_buf_put_u32(out, (uint32_t)argc);
    for (int i = 0; !rc && i < argc; i++) {
        size_t n = lens ? lens[i] : strlen(argv[i]);
        if (n > UINT32_MAX) {
            rc = -EINVAL;
            break;
        }
        rc = rabia_buf_put_u32(out, (uint32_t)n);
        if (!rc)
            rc = rabia_buf_append(out, argv[i], n);
    }
    if (rc)
        out->len = at;
    return rc;
}

int rabia_kv_encode_txn(struct rabia_buf *out, int n, const uint8_t *const *ops,
                        const size_t *op_lens)
{
    if (n < 0)
        return -EINVAL;
    size_t at = out->len;
    int rc = rabia_buf_put_u32(out, (uint32_t)n + 1);
    if (!rc)
        rc = rabia_buf_put_u32(out, 3);
    if (!rc)
        rc = rabia_buf_append(out, "TXN", 3);
    for (int i = 0; !rc && i < n; i++) {
        if (op_lens[i] > UINT32_MAX) {
            rc = -EINVAL;
            break;
        }
        rc = rabia_buf_put_u32(out, (uint32_t)op_lens[i]);
        if (!rc)
            rc = rabia_buf_append(out, ops[i], op_lens[i]);
    }
    if (rc)
        out->len = at;
    return rc;
}

/* Parse "<int>\r\n" at p[*i]: 0, -EAGAIN (no CRLF yet) or -EINVAL. */
static int resp_read_int(const uint8_t *p, size_t len, size_t *i, int64_t *v)
{
    size_t j = *i;
    while (j < len && p[j] != '\r')
        j++;
    if (j + 1 >= len)
        return -EAGAIN;
    if (p[j + 1] != '\n')
        return -EINVAL;
    const uint8_t *s = p + *i;
    size_t n = j - *i;
    /* Accept "-1" and non-negative numbers, leading zeros included. */
    if (n >= 1 && s[0] == '-') {
        uint64_t u;
        if (!str_to_u64(s + 1, n - 1, &u) || u > (uint64_t)INT64_MAX + 1)
            return -EINVAL;
        *v = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    } else {
        uint64_t u;
        if (!str_to_u64(s, n, &u) || u > (uint64_t)INT64_MAX)
            return -EINVAL;
        *v = (int64_t)u;
    }
    *i = j + 2;
    return 0;
}

/* A simple line's end: the index just past its CRLF. */
static int resp_skip_line(const uint8_t *p, size_t len, size_t *i)
{
    size_t j = *i;
    while (j < len && p[j] != '\r' && p[j] != '\n')
        j++;
    if (j + 1 >= len)
        return -EAGAIN;
    if (p[j] != '\r' || p[j + 1] != '\n')
        return -EINVAL;
    *i = j + 2;
    return 0;
}

int rabia_kv_resp_check(const uint8_t *p, size_t len, size_t *used)
{
    uint64_t pending = 1;
    size_t i = 0;
    while (pending) {
        int64_t v;
        int rc;
        if (i >= len)
            return -EAGAIN;
        uint8_t t = p[i++];
        pending--;
        switch (t) {
        case '+':
        case '-':
            if ((rc = resp_skip_line(p, len, &i)))
                return rc;
            break;
        case ':':
            if ((rc = resp_read_int(p, len, &i, &v)))
                return rc;
            break;
        case '$':
            if ((rc = resp_read_int(p, len, &i, &v)))
                return rc;
            if (v < -1)
                return -EINVAL;
            if (v >= 0) {
                if ((uint64_t)v > SIZE_MAX - 2 || len - i < (size_t)v + 2)
                    return (uint64_t)v > SIZE_MAX - 2 ? -EINVAL : -EAGAIN;
                if (p[i + (size_t)v] != '\r' || p[i + (size_t)v + 1] != '\n')
                    return -EINVAL;
                i += (size_t)v + 2;
            }
            break;
        case '*':
            if ((rc = resp_read_int(p, len, &i, &v)))
                return rc;
            if (v < -1)
                return -EINVAL;
            if (v > 0) {
                if ((uint64_t)v > UINT64_MAX - pending)
                    return -EINVAL;
                pending += (uint64_t)v;
            }
            break;
        default:
            return -EINVAL;
        }
    }
    *used = i;
    return 0;
}

static int fmt_quoted(struct rabia_buf *out, const uint8_t *s, size_t n)
{
    int rc = put_cstr(out, "\"");
    for (size_t i = 0; !rc && i < n; i++) {
        char e[8];
        uint8_t ch = s[i];
        switch (ch) {
        case '\\': rc = put_cstr(out, "\\\\"); break;
        case '"': rc = put_cstr(out, "\\\""); break;
        case '\n': rc = put_cstr(out, "\\n"); break;
        case '\r': rc = put_cstr(out, "\\r"); break;
        case '\t': rc = put_cstr(out, "\\t"); break;
        case '\a': rc = put_cstr(out, "\\a"); break;
        case '\b': rc = put_cstr(out, "\\b"); break;
        default:
            if (ch >= 0x20 && ch < 0x7f) {
                rc = rabia_buf_put_u8(out, ch);
            } else {
                snprintf(e, sizeof e, "\\x%02x", ch);
                rc = put_cstr(out, e);
            }
        }
    }
    return rc ? rc : put_cstr(out, "\"");
}

/* Format the value at p[*i] (already checked by rabia_kv_resp_check). */
static int fmt_value(struct rabia_buf *out, const uint8_t *p, size_t len, size_t *i,
                     size_t indent, int depth)
{
    int64_t v;
    int rc;
    size_t s;
    uint8_t t = p[(*i)++];
    if (depth > 64)
        return -EINVAL;
    switch (t) {
    case '+':
    case '-':
        s = *i;
        if ((rc = resp_skip_line(p, len, i)))
            return rc;
        if (t == '-' && (rc = put_cstr(out, "(error) ")))
            return rc;
        if ((rc = rabia_buf_append(out, p + s, *i - s - 2)))
            return rc;
        return put_cstr(out, "\n");
    case ':': {
        char num[40];
        if ((rc = resp_read_int(p, len, i, &v)))
            return rc;
        snprintf(num, sizeof num, "(integer) %" PRId64 "\n", v);
        return put_cstr(out, num);
    }
    case '$':
        if ((rc = resp_read_int(p, len, i, &v)))
            return rc;
        if (v < 0)
            return put_cstr(out, "(nil)\n");
        s = *i;
        *i += (size_t)v + 2;
        if ((rc = fmt_quoted(out, p + s, (size_t)v)))
            return rc;
        return put_cstr(out, "\n");
    case '*': {
        if ((rc = resp_read_int(p, len, i, &v)))
            return rc;
        if (v < 0)
            return put_cstr(out, "(nil)\n");
        if (v == 0)
            return put_cstr(out, "(empty array)\n");
        char num[32];
        int width = snprintf(num, sizeof num, "%" PRId64, v);
        for (int64_t k = 0; k < v; k++) {
            if (k > 0)
                for (size_t j = 0; j < indent; j++)
                    if ((rc = put_cstr(out, " ")))
                        return rc;
            int n = snprintf(num, sizeof num, "%*" PRId64 ") ", width, k + 1);
            if ((rc = put_cstr(out, num)))
                return rc;
            if ((rc = fmt_value(out, p, len, i, indent + (size_t)n, depth + 1)))
                return rc;
        }
        return 0;
    }
    }
    return -EINVAL;
}

int rabia_kv_resp_format(struct rabia_buf *out, const uint8_t *p, size_t len)
{
    size_t used, i = 0;
    int rc = rabia_kv_resp_check(p, len, &used);
    if (rc)
        return rc == -EAGAIN ? -EINVAL : rc;
    size_t at = out->len;
    rc = fmt_value(out, p, used, &i, 0, 0);
    if (rc)
        out->len = at;
    return rc;
}
