/* kv/skiplist.h: the sorted set's structure (t_zset.c): a hash table
 * member -> entry and a skip list of the entries ordered by (score, member
 * bytes), with span counts so that rank lookups are O(log n).
 *
 * A node's level is a function of its member alone (the low bits of
 * kv_hash), never of a random source: the whole structure, and so the cost
 * of every operation, is the same on every replica. */
#ifndef RABIA_KV_SKIPLIST_H
#define RABIA_KV_SKIPLIST_H

#include "internal.h"

#define KV_ZSL_MAXLEVEL 32

struct kv_zsl_node;
struct kv_zsl_link {
    struct kv_zsl_node *fwd;
    /* Nodes passed when following fwd; for a NULL fwd, the nodes after
     * this one (so insertion and deletion adjust every level alike). */
    uint64_t span;
};
struct kv_zsl_node {
    struct kv_dent *e;         /* member e->key/e->klen, score e->v.d; NULL in the header */
    struct kv_zsl_node *back;  /* level-0 predecessor, NULL for the first node */
    double score;              /* e->v.d, here too: a search reads nodes only, but on ties */
    uint32_t level;
    struct kv_zsl_link lv[];
};

struct kv_zset {
    struct kv_dict dict;       /* member -> entry: v.d score, v2 node */
    struct kv_zsl_node *head;  /* levels only */
    struct kv_zsl_node *tail;
    uint64_t len;
    uint32_t level;            /* levels in use, >= 1 */
    uint32_t head_cap;         /* levels allocated in head */
    uint64_t bytes;            /* held by z, its nodes and entries */
};

/* A score range: min/max inclusive unless the matching flag is set. */
struct kv_zrange {
    double min, max;
    bool minex, maxex;
};

/* A lex range bound: "-" (below everything), "+" (above everything), or
 * bytes with "[" (inclusive) / "(" (exclusive). */
enum kv_zlex_kind { KV_ZLEX_MINUS = -1, KV_ZLEX_VALUE = 0, KV_ZLEX_PLUS = 1 };
struct kv_zlex_bound {
    const uint8_t *p;
    size_t n;
    int8_t kind;
    bool ex;
};
struct kv_zlex {
    struct kv_zlex_bound min, max;
};

struct kv_zset *kv_zset_new(struct kv_store *s);
void kv_zset_free(struct kv_store *s, struct kv_zset *z);
/* Bytes held, tables included (the dict's own estimate). */
uint64_t kv_zset_mem(const struct kv_zset *z);

struct kv_dent *kv_zset_find(struct kv_store *s, struct kv_zset *z, const uint8_t *m, size_t n);
/* Add member m (absent) with score (not NaN). 0 or -ENOMEM (then z is as
 * before). */
int kv_zset_insert(struct kv_store *s, struct kv_zset *z, const uint8_t *m, size_t n, double score);
/* Give e (a member of z) a new score (not NaN). Cannot fail. */
void kv_zset_update(struct kv_zset *z, struct kv_dent *e, double score);
/* Remove and free member e. */
void kv_zset_delete(struct kv_store *s, struct kv_zset *z, struct kv_dent *e);

/* Entries in the dict only (no node yet, len not counted): an accumulator
 * for ZUNIONSTORE. kv_zset_index then links every such entry. */
struct kv_dent *kv_zset_dict_add(struct kv_store *s, struct kv_zset *z, const uint8_t *m, size_t n,
                                 double score);
int kv_zset_index(struct kv_store *s, struct kv_zset *z);

static inline struct kv_zsl_node *kv_zset_first(const struct kv_zset *z) { return z->head->lv[0].fwd; }
static inline struct kv_zsl_node *kv_zset_next(const struct kv_zsl_node *x) { return x->lv[0].fwd; }
static inline double kv_zsl_score(const struct kv_zsl_node *x) { return x->score; }

/* 1-based rank of member e (0 if not in z). */
uint64_t kv_zset_rank(const struct kv_zset *z, const struct kv_dent *e);
/* The node of 1-based rank r, or NULL. */
struct kv_zsl_node *kv_zset_by_rank(const struct kv_zset *z, uint64_t r);

bool kv_zrange_gte_min(double v, const struct kv_zrange *r);
bool kv_zrange_lte_max(double v, const struct kv_zrange *r);
/* First / last node whose score is in r, or NULL. */
struct kv_zsl_node *kv_zset_first_in_range(const struct kv_zset *z, const struct kv_zrange *r);
struct kv_zsl_node *kv_zset_last_in_range(const struct kv_zset *z, const struct kv_zrange *r);

bool kv_zlex_gte_min(const struct kv_zsl_node *x, const struct kv_zlex *r);
bool kv_zlex_lte_max(const struct kv_zsl_node *x, const struct kv_zlex *r);
/* First / last node in lex range r. Lex ranges are meant for sets whose
 * scores are all equal; otherwise the predicates are not monotonic in
 * skip-list order and, as in Redis, the answer depends on the search:
 * `linear` scans from the end (what Redis does for its compact
 * encoding), otherwise the skip list is searched (Redis's skiplist
 * encoding). */
struct kv_zsl_node *kv_zset_first_in_lex(const struct kv_zset *z, const struct kv_zlex *r, bool linear);
struct kv_zsl_node *kv_zset_last_in_lex(const struct kv_zset *z, const struct kv_zlex *r, bool linear);

/* Remove the members of 1-based ranks start..end (1 <= start <= end <=
 * len); returns how many. */
uint64_t kv_zset_delete_rank(struct kv_store *s, struct kv_zset *z, uint64_t start, uint64_t end);
/* Remove the members with a score in r; returns how many. */
uint64_t kv_zset_delete_range(struct kv_store *s, struct kv_zset *z, const struct kv_zrange *r);

#endif
