/* The sorted set's hash table + skip list (skiplist.h). The list follows
 * Redis's zskiplist (Pugh's skip list with spans and a level-0 back
 * pointer), with levels taken from the member's hash so that replicas
 * build identical structures. */
#include <math.h>
#include <string.h>

#include "skiplist.h"

static size_t node_size(uint32_t level)
{
    return sizeof(struct kv_zsl_node) + (size_t)level * sizeof(struct kv_zsl_link);
}

static size_t dent_size(const struct kv_dent *e) { return sizeof(*e) + e->klen + 1; }

/* p = 1/4 per level, as Redis: one more level for each trailing pair of
 * 1 bits. The dict indexes by the top bits, so the two are independent. */
static uint32_t level_of(uint64_t hash)
{
    uint32_t level = 1;
    while ((hash & 3) == 3 && level < KV_ZSL_MAXLEVEL) {
        level++;
        hash >>= 2;
    }
    return level;
}

/* Order of node x against (score, member m): <0, 0, >0. Members compare
 * as bytes, a prefix first (Redis's sdscmp). */
static int cmp_node(const struct kv_zsl_node *x, double score, const uint8_t *m, size_t n)
{
    double xs = x->score;
    if (xs < score)
        return -1;
    if (xs > score)
        return 1;
    size_t xn = x->e->klen, k = xn < n ? xn : n;
    int c = k ? memcmp(x->e->key, m, k) : 0;
    if (c)
        return c;
    return xn < n ? -1 : xn > n;
}

static int cmp_nodes(const struct kv_zsl_node *a, const struct kv_zsl_node *b)
{
    return cmp_node(a, b->score, b->e->key, b->e->klen);
}

struct kv_zset *kv_zset_new(struct kv_store *s)
{
    struct kv_zset *z = kv_alloc(s, sizeof(*z));
    if (!z)
        return NULL;
    memset(z, 0, sizeof(*z));
    z->head = kv_alloc(s, node_size(1));
    if (!z->head) {
        kv_free(s, z);
        return NULL;
    }
    memset(z->head, 0, node_size(1));
    kv_dict_init(&z->dict);
    z->level = 1;
    z->head_cap = 1;
    z->bytes = sizeof(*z);
    return z;
}

static void release_member(struct kv_store *s, struct kv_dent *e)
{
    kv_free(s, e->v2);
}

void kv_zset_free(struct kv_store *s, struct kv_zset *z)
{
    if (!z)
        return;
    kv_dict_clear(s, &z->dict, release_member);
    kv_free(s, z->head);
    kv_free(s, z);
}

/* The header counts as wide as the levels in use, not as allocated: the
 * figure depends on the contents only, as on a replica that loaded them. */
uint64_t kv_zset_mem(const struct kv_zset *z)
{
    return z->bytes + node_size(z->level) + kv_dict_table_bytes(&z->dict);
}

struct kv_dent *kv_zset_find(struct kv_store *s, struct kv_zset *z, const uint8_t *m, size_t n)
{
    return kv_dict_find(s, &z->dict, m, n);
}

/* The header grows to the highest level in use; nothing points to it but
 * z, so it may move. */
static int reserve_levels(struct kv_store *s, struct kv_zset *z, uint32_t level)
{
    if (level <= z->head_cap)
        return 0;
    struct kv_zsl_node *h = kv_realloc(s, z->head, node_size(level));
    if (!h)
        return -ENOMEM;
    memset(&h->lv[z->head_cap], 0, (level - z->head_cap) * sizeof(struct kv_zsl_link));
    z->head = h;
    z->head_cap = level;
    return 0;
}

/* Link x (its level set, z->head wide enough) at its place: Redis's
 * zslInsert. */
static void link_node(struct kv_zset *z, struct kv_zsl_node *x)
{
    struct kv_zsl_node *update[KV_ZSL_MAXLEVEL], *p = z->head;
    uint64_t rank[KV_ZSL_MAXLEVEL];
    for (int i = (int)z->level - 1; i >= 0; i--) {
        rank[i] = i == (int)z->level - 1 ? 0 : rank[i + 1];
        while (p->lv[i].fwd && cmp_nodes(p->lv[i].fwd, x) < 0) {
            rank[i] += p->lv[i].span;
            p = p->lv[i].fwd;
        }
        update[i] = p;
    }
    if (x->level > z->level) {
        for (uint32_t i = z->level; i < x->level; i++) {
            RABIA_ASSERT(z->head->lv[i].fwd == NULL);
            rank[i] = 0;
            update[i] = z->head;
            update[i]->lv[i].span = z->len;
        }
        z->level = x->level;
    }
    for (uint32_t i = 0; i < x->level; i++) {
        x->lv[i].fwd = update[i]->lv[i].fwd;
        update[i]->lv[i].fwd = x;
        x->lv[i].span = update[i]->lv[i].span - (rank[0] - rank[i]);
        update[i]->lv[i].span = (rank[0] - rank[i]) + 1;
    }
    for (uint32_t i = x->level; i < z->level; i++)
        update[i]->lv[i].span++;
    x->back = update[0] == z->head ? NULL : update[0];
    if (x->lv[0].fwd)
        x->lv[0].fwd->back = x;
    else
        z->tail = x;
    z->len++;
}

/* update[i]: the last node before x at level i. */
static void find_path(const struct kv_zset *z, const struct kv_zsl_node *x,
                      struct kv_zsl_node **update)
{
    struct kv_zsl_node *p = z->head;
    for (int i = (int)z->level - 1; i >= 0; i--) {
        while (p->lv[i].fwd && cmp_nodes(p->lv[i].fwd, x) < 0)
            p = p->lv[i].fwd;
        update[i] = p;
    }
    RABIA_ASSERT(update[0]->lv[0].fwd == x);
}

/* Redis's zslDeleteNode. Unsigned spans wrap as intended: a NULL link's
 * span is the count after the node, and x's may be 0. */
static void unlink_node(struct kv_zset *z, struct kv_zsl_node *x, struct kv_zsl_node **update)
{
    for (uint32_t i = 0; i < z->level; i++) {
        if (update[i]->lv[i].fwd == x) {
            update[i]->lv[i].span += x->lv[i].span - 1;
            update[i]->lv[i].fwd = x->lv[i].fwd;
        } else {
            update[i]->lv[i].span -= 1;
        }
    }
    if (x->lv[0].fwd)
        x->lv[0].fwd->back = x->back;
    else
        z->tail = x->back;
    while (z->level > 1 && z->head->lv[z->level - 1].fwd == NULL)
        z->level--;
    z->len--;
}

/* A node for e (already in the dict), linked. */
static int index_entry(struct kv_store *s, struct kv_zset *z, struct kv_dent *e)
{
    uint32_t level = level_of(e->hash);
    if (reserve_levels(s, z, level) < 0)
        return -ENOMEM;
    struct kv_zsl_node *x = kv_alloc(s, node_size(level));
    if (!x)
        return -ENOMEM;
    x->e = e;
    x->score = e->v.d;
    x->level = level;
    e->v2 = x;
    link_node(z, x);
    z->bytes += node_size(level);
    return 0;
}

struct kv_dent *kv_zset_dict_add(struct kv_store *s, struct kv_zset *z, const uint8_t *m, size_t n,
                                 double score)
{
    RABIA_ASSERT(!isnan(score));
    struct kv_dent *e = kv_dict_add(s, &z->dict, m, n);
    if (!e)
        return NULL;
    e->v.d = score;
    z->bytes += dent_size(e);
    return e;
}

int kv_zset_insert(struct kv_store *s, struct kv_zset *z, const uint8_t *m, size_t n, double score)
{
    struct kv_dent *e = kv_zset_dict_add(s, z, m, n, score);
    if (!e)
        return -ENOMEM;
    if (index_entry(s, z, e) < 0) {
        z->bytes -= dent_size(e);
        struct kv_dent *u = kv_dict_unlink(s, &z->dict, m, n);
        RABIA_ASSERT(u == e);
        kv_free(s, u);
        return -ENOMEM;
    }
    return 0;
}

static int index_cb(void *arg, struct kv_dent *e)
{
    void **a = arg;
    if (e->v2)
        return 0;
    return index_entry(a[0], a[1], e);
}

int kv_zset_index(struct kv_store *s, struct kv_zset *z)
{
    void *arg[2] = {s, z};
    int err = 0;
    uint64_t cursor = 0;
    do {
        cursor = kv_dict_scan(s, &z->dict, cursor, 1024, index_cb, arg, &err);
    } while (cursor && !err);
    RABIA_ASSERT(err || z->len == kv_dict_size(&z->dict));
    return err;
}

void kv_zset_update(struct kv_zset *z, struct kv_dent *e, double score)
{
    RABIA_ASSERT(!isnan(score));
    struct kv_zsl_node *x = e->v2, *update[KV_ZSL_MAXLEVEL];
    /* Staying between the same neighbours: no relinking (Redis's test). */
    if ((!x->back || x->back->score < score) && (!x->lv[0].fwd || x->lv[0].fwd->score > score)) {
        e->v.d = x->score = score;
        return;
    }
    find_path(z, x, update);
    unlink_node(z, x, update);
    e->v.d = x->score = score;
    link_node(z, x);
}

static void free_unlinked(struct kv_store *s, struct kv_zset *z, struct kv_zsl_node *x)
{
    struct kv_dent *e = x->e, *u = kv_dict_unlink(s, &z->dict, e->key, e->klen);
    RABIA_ASSERT(u == e);
    z->bytes -= dent_size(e) + node_size(x->level);
    kv_free(s, x);
    kv_free(s, e);
}

void kv_zset_delete(struct kv_store *s, struct kv_zset *z, struct kv_dent *e)
{
    struct kv_zsl_node *x = e->v2, *update[KV_ZSL_MAXLEVEL];
    find_path(z, x, update);
    unlink_node(z, x, update);
    free_unlinked(s, z, x);
}

uint64_t kv_zset_rank(const struct kv_zset *z, const struct kv_dent *e)
{
    const struct kv_zsl_node *x = e->v2, *p = z->head;
    uint64_t rank = 0;
    for (int i = (int)z->level - 1; i >= 0; i--) {
        while (p->lv[i].fwd && cmp_nodes(p->lv[i].fwd, x) <= 0) {
            rank += p->lv[i].span;
            p = p->lv[i].fwd;
        }
        if (p == x)
            return rank;
    }
    return 0;
}

struct kv_zsl_node *kv_zset_by_rank(const struct kv_zset *z, uint64_t r)
{
    struct kv_zsl_node *p = z->head;
    uint64_t passed = 0;
    for (int i = (int)z->level - 1; i >= 0; i--) {
        while (p->lv[i].fwd && passed + p->lv[i].span <= r) {
            passed += p->lv[i].span;
            p = p->lv[i].fwd;
        }
        if (passed == r)
            return p == z->head ? NULL : p;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Score ranges.                                                       */

bool kv_zrange_gte_min(double v, const struct kv_zrange *r) { return r->minex ? v > r->min : v >= r->min; }
bool kv_zrange_lte_max(double v, const struct kv_zrange *r) { return r->maxex ? v < r->max : v <= r->max; }

static bool in_range(const struct kv_zset *z, const struct kv_zrange *r)
{
    if (r->min > r->max || (r->min == r->max && (r->minex || r->maxex)))
        return false;
    if (!z->tail || !kv_zrange_gte_min(kv_zsl_score(z->tail), r))
        return false;
    return kv_zrange_lte_max(kv_zsl_score(kv_zset_first(z)), r);
}

struct kv_zsl_node *kv_zset_first_in_range(const struct kv_zset *z, const struct kv_zrange *r)
{
    if (!in_range(z, r))
        return NULL;
    struct kv_zsl_node *p = z->head;
    for (int i = (int)z->level - 1; i >= 0; i--)
        while (p->lv[i].fwd && !kv_zrange_gte_min(kv_zsl_score(p->lv[i].fwd), r))
            p = p->lv[i].fwd;
    p = p->lv[0].fwd;
    RABIA_ASSERT(p != NULL);
    return kv_zrange_lte_max(kv_zsl_score(p), r) ? p : NULL;
}

struct kv_zsl_node *kv_zset_last_in_range(const struct kv_zset *z, const struct kv_zrange *r)
{
    if (!in_range(z, r))
        return NULL;
    struct kv_zsl_node *p = z->head;
    for (int i = (int)z->level - 1; i >= 0; i--)
        while (p->lv[i].fwd && kv_zrange_lte_max(kv_zsl_score(p->lv[i].fwd), r))
            p = p->lv[i].fwd;
    RABIA_ASSERT(p != z->head);
    return kv_zrange_gte_min(kv_zsl_score(p), r) ? p : NULL;
}

/* ------------------------------------------------------------------ */
/* Lex ranges: Redis's sdscmplex, with "-" and "+" as the shared
 * minstring / maxstring (equal only to themselves).                   */

static int lex_cmp(int8_t ka, const uint8_t *a, size_t an, int8_t kb, const uint8_t *b, size_t bn)
{
    if (ka == kb && ka != KV_ZLEX_VALUE)
        return 0;
    if (ka == KV_ZLEX_MINUS || kb == KV_ZLEX_PLUS)
        return -1;
    if (ka == KV_ZLEX_PLUS || kb == KV_ZLEX_MINUS)
        return 1;
    size_t k = an < bn ? an : bn;
    int c = k ? memcmp(a, b, k) : 0;
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

static int lex_cmp_node(const struct kv_zsl_node *x, const struct kv_zlex_bound *b)
{
    return lex_cmp(KV_ZLEX_VALUE, x->e->key, x->e->klen, b->kind, b->p, b->n);
}

bool kv_zlex_gte_min(const struct kv_zsl_node *x, const struct kv_zlex *r)
{
    int c = lex_cmp_node(x, &r->min);
    return r->min.ex ? c > 0 : c >= 0;
}

bool kv_zlex_lte_max(const struct kv_zsl_node *x, const struct kv_zlex *r)
{
    int c = lex_cmp_node(x, &r->max);
    return r->max.ex ? c < 0 : c <= 0;
}

static bool in_lex(const struct kv_zset *z, const struct kv_zlex *r)
{
    int c = lex_cmp(r->min.kind, r->min.p, r->min.n, r->max.kind, r->max.p, r->max.n);
    if (c > 0 || (c == 0 && (r->min.ex || r->max.ex)))
        return false;
    if (!z->tail || !kv_zlex_gte_min(z->tail, r))
        return false;
    return kv_zlex_lte_max(kv_zset_first(z), r);
}

struct kv_zsl_node *kv_zset_first_in_lex(const struct kv_zset *z, const struct kv_zlex *r, bool linear)
{
    if (!in_lex(z, r))
        return NULL;
    struct kv_zsl_node *p;
    if (linear) {
        for (p = kv_zset_first(z); p && !kv_zlex_gte_min(p, r); p = kv_zset_next(p))
            ;
    } else {
        p = z->head;
        for (int i = (int)z->level - 1; i >= 0; i--)
            while (p->lv[i].fwd && !kv_zlex_gte_min(p->lv[i].fwd, r))
                p = p->lv[i].fwd;
        p = p->lv[0].fwd;
    }
    RABIA_ASSERT(p != NULL); /* the tail is >= min */
    return kv_zlex_lte_max(p, r) ? p : NULL;
}

struct kv_zsl_node *kv_zset_last_in_lex(const struct kv_zset *z, const struct kv_zlex *r, bool linear)
{
    if (!in_lex(z, r))
        return NULL;
    struct kv_zsl_node *p;
    if (linear) {
        for (p = z->tail; p && !kv_zlex_lte_max(p, r); p = p->back)
            ;
    } else {
        p = z->head;
        for (int i = (int)z->level - 1; i >= 0; i--)
            while (p->lv[i].fwd && kv_zlex_lte_max(p->lv[i].fwd, r))
                p = p->lv[i].fwd;
        if (p == z->head)
            p = NULL;
    }
    RABIA_ASSERT(p != NULL); /* the first node is <= max */
    return kv_zlex_gte_min(p, r) ? p : NULL;
}

/* ------------------------------------------------------------------ */
/* Range deletion.                                                     */

static uint64_t delete_from(struct kv_store *s, struct kv_zset *z, struct kv_zsl_node **update,
                            uint64_t limit, const struct kv_zrange *r)
{
    struct kv_zsl_node *x = update[0]->lv[0].fwd;
    uint64_t n = 0;
    while (x && n < limit && (!r || kv_zrange_lte_max(kv_zsl_score(x), r))) {
        struct kv_zsl_node *next = x->lv[0].fwd;
        unlink_node(z, x, update);
        free_unlinked(s, z, x);
        n++;
        x = next;
    }
    return n;
}

uint64_t kv_zset_delete_rank(struct kv_store *s, struct kv_zset *z, uint64_t start, uint64_t end)
{
    RABIA_ASSERT(start >= 1 && start <= end && end <= z->len);
    struct kv_zsl_node *update[KV_ZSL_MAXLEVEL], *p = z->head;
    uint64_t passed = 0;
    for (int i = (int)z->level - 1; i >= 0; i--) {
        while (p->lv[i].fwd && passed + p->lv[i].span < start) {
            passed += p->lv[i].span;
            p = p->lv[i].fwd;
        }
        update[i] = p;
    }
    return delete_from(s, z, update, end - start + 1, NULL);
}

uint64_t kv_zset_delete_range(struct kv_store *s, struct kv_zset *z, const struct kv_zrange *r)
{
    struct kv_zsl_node *update[KV_ZSL_MAXLEVEL], *p = z->head;
    for (int i = (int)z->level - 1; i >= 0; i--) {
        while (p->lv[i].fwd && !kv_zrange_gte_min(kv_zsl_score(p->lv[i].fwd), r))
            p = p->lv[i].fwd;
        update[i] = p;
    }
    return delete_from(s, z, update, UINT64_MAX, r);
}
