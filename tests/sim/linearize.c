/* Linearizability checker for key-value histories: see linearize.h. */
#include "linearize.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NIL SIZE_MAX

#if defined(__GNUC__)
#define LIN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LIN_PRINTF(a, b)
#endif

/* Appends to buf[*len..n), truncating silently (messages are best effort);
 * *len stays below n. */
static void LIN_PRINTF(4, 5)
appendf(char *buf, size_t n, size_t *len, const char *f, ...)
{
    if (*len + 1 >= n)
        return;
    va_list ap;
    va_start(ap, f);
    int w = vsnprintf(buf + *len, n - *len, f, ap);
    va_end(ap);
    if (w > 0)
        *len = *len + (size_t)w < n ? *len + (size_t)w : n - 1;
}

/* ---- history ---------------------------------------------------------- */

struct lin_history {
    struct lin_op *ops;
    size_t n, cap;
};

struct lin_history *lin_history_create(void)
{
    return calloc(1, sizeof(struct lin_history));
}

void lin_history_destroy(struct lin_history *h)
{
    if (!h)
        return;
    free(h->ops);
    free(h);
}

size_t lin_history_add(struct lin_history *h, const struct lin_op *op)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        if (cap > SIZE_MAX / sizeof(*h->ops))
            return SIZE_MAX;
        struct lin_op *p = realloc(h->ops, cap * sizeof(*p));
        if (!p)
            return SIZE_MAX;
        h->ops = p;
        h->cap = cap;
    }
    h->ops[h->n] = *op;
    return h->n++;
}

size_t lin_history_invoke(struct lin_history *h, uint64_t client,
                          enum lin_kind kind, uint64_t key, uint64_t arg,
                          uint64_t arg2, uint64_t invoke)
{
    struct lin_op op = {
        .client = client, .key = key, .kind = kind, .arg = arg,
        .arg2 = arg2, .result = 0, .status = LIN_UNKNOWN,
        .invoke = invoke, .complete = UINT64_MAX,
    };
    return lin_history_add(h, &op);
}

int lin_history_complete(struct lin_history *h, size_t id,
                         enum lin_status status, uint64_t result,
                         uint64_t complete)
{
    if (id >= h->n)
        return -1;
    h->ops[id].status = status;
    h->ops[id].result = result;
    h->ops[id].complete = complete;
    return 0;
}

size_t lin_history_len(const struct lin_history *h)
{
    return h->n;
}

struct lin_op *lin_history_op(const struct lin_history *h, size_t i)
{
    return i < h->n ? &h->ops[i] : NULL;
}

int lin_op_format(const struct lin_op *op, char *buf, size_t n)
{
    char res[32], win[48];
    bool ok = op->status == LIN_OK;
    if (ok)
        snprintf(win, sizeof win, "[%" PRIu64 ",%" PRIu64 "]", op->invoke,
                 op->complete);
    else
        snprintf(win, sizeof win, "[%" PRIu64 ",?)%s", op->invoke,
                 op->status == LIN_FAIL ? " failed" : "");
    switch (op->kind) {
    case LIN_READ:
        if (ok)
            snprintf(res, sizeof res, "%" PRIu64, op->result);
        else
            snprintf(res, sizeof res, "?");
        return snprintf(buf, n, "c%" PRIu64 " READ k%" PRIu64 " -> %s %s",
                        op->client, op->key, res, win);
    case LIN_WRITE:
        return snprintf(buf, n, "c%" PRIu64 " WRITE k%" PRIu64 " %" PRIu64
                        " %s", op->client, op->key, op->arg, win);
    case LIN_CAS:
        return snprintf(buf, n, "c%" PRIu64 " CAS k%" PRIu64 " %" PRIu64
                        "->%" PRIu64 " -> %s %s", op->client, op->key,
                        op->arg, op->arg2,
                        ok ? (op->result ? "ok" : "no") : "?", win);
    }
    return snprintf(buf, n, "c%" PRIu64 " op kind %d", op->client,
                    (int)op->kind);
}

/* ---- per-key search ---------------------------------------------------- */

/* ---- per-key search ---------------------------------------------------- */

/* Values.  Only the values some op compares the register with (results of
 * ok reads, expected values of CAS ops) can be told apart: every other
 * value is mapped to one "unread" value per key.  Likewise a value all of
 * whose observers are already linearized can no longer be told apart from
 * unread, so the search maps it to unread from then on (as the register's
 * value and as a value written), which merges many configurations.
 *
 * Junk writes.  An unknown write of an unread value can only ever set the
 * register to unread, at any time after its invocation; such pending
 * writes are interchangeable, so at each configuration the search tries
 * only the first one.  Those statically unread (class C_JUNK) are then
 * always used as a prefix in invocation order, so a configuration records
 * just their count.  Unread is only useful to pass a failed CAS; with no
 * failed CAS left, junk writes are not tried at all. */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Op classes, in this order in search.ops. */
enum { C_OK, C_UNK, C_JUNK };

struct kop {
    const struct lin_op *op;
    size_t gid; /* index in the history */
    size_t wi;  /* value it writes (WRITE arg, CAS arg2): index in vals,
                   NIL for unread */
    size_t oi;  /* value it compares with (READ result, CAS arg): index in
                   vals, or NIL */
    int cls;
};

struct ent {
    uint64_t time;
    size_t op;
    size_t prev, next;
    bool ret;
};

struct frame {
    size_t entry;   /* call entry that was lifted */
    uint64_t state; /* register value before it (canonical) */
    uint64_t raw;   /* and as written, for messages */
    bool junk_seen; /* the scan had reached a junk write by then */
};

/* Failed configurations.  A configuration is (ok set S, value, set U of
 * used unknown ops that are not junk writes under S, count J of used junk
 * writes): used junk writes were all invoked, unused ones are
 * interchangeable, so only their number matters.  Keys: (S, value); each
 * key has a list of (U, J).  A stored failure (U', J') prunes (U, J) when
 * U' is a subset of U and J' <= J: with more unknown ops already used
 * there are fewer choices left, since an unknown op can always be left
 * out.  Only configurations whose whole subtree failed are stored (and
 * only those reached by an ok op, see search_key); for exact matches this
 * is equivalent to Porcupine's insertion on visit, since a configuration
 * never recurs on its own DFS path. */
struct fkey {
    uint64_t hash, state;
    size_t off, len; /* encoding of S in the arena */
    size_t first;    /* first payload + 1; 0 = none */
};

struct fpay {
    size_t next; /* next payload + 1 */
    size_t uoff; /* nwu words of U in the arena */
    size_t junk;
};

struct fcache {
    size_t *slots; /* key index + 1; 0 = empty */
    size_t cap;
    struct fkey *k;
    size_t nk, kcap;
    struct fpay *p;
    size_t np, pcap;
    uint64_t *arena;
    size_t alen, acap;
};

struct search {
    struct kop *ops; /* C_OK ops, C_UNK ops, C_JUNK ops, each by invoke */
    size_t n, n_ok, n_unk, n_junk;
    size_t nw_ok, nwu; /* bitset words for C_OK and for C_UNK ops */
    uint64_t *vals;    /* observed values, sorted */
    size_t *live;      /* [i]: observers of vals[i] not yet linearized */
    size_t nvals;
    size_t fcas_left;  /* ok failed CAS ops not yet linearized */
    size_t *wstart;    /* C_UNK writes of vals[i]: wlist[wstart[i] ..  */
    size_t *wlist;     /*   wstart[i + 1]), as bit numbers in U */
    uint64_t *jl;      /* nwu words: C_UNK ops that are junk writes now */
    uint64_t *upay;    /* scratch: nwu words */
    uint64_t unread;   /* the canonical unobserved value */
    size_t junk_used;
    struct ent *E; /* 2n entries in time order, then head and tail */
    size_t head, tail;
    size_t *callent; /* [op]: call entry, [n + op]: return entry */
    uint64_t *bits;  /* nw_ok words (S), then nwu words (U) */
    uint64_t *enc;   /* scratch: 2 + nw_ok words */
    struct frame *stack;
    struct fcache fc;
    /* the furthest return event the search got stuck at */
    size_t best;
    uint64_t best_states[6];
    size_t nbest;
    bool best_more;
};

static void mark(struct search *s, size_t i, bool on)
{
    const struct kop *k = &s->ops[i];
    if (k->cls == C_JUNK) {
        if (on)
            s->junk_used++;
        else
            s->junk_used--;
        return;
    }
    size_t j = k->cls == C_OK ? i : i - s->n_ok;
    size_t w = (k->cls == C_OK ? 0 : s->nw_ok) + j / 64;
    s->bits[w] ^= (uint64_t)1 << (j % 64);
}

/* Encodes S as lo, hi, words[lo..hi): words before lo are all ones and
 * words from hi on are zero (the linearized ok ops are a prefix in call
 * order plus a window of concurrent ones), so entries stay small. */
static size_t encode(struct search *s)
{
    size_t lo = 0, hi = s->nw_ok;
    while (lo < hi && s->bits[lo] == UINT64_MAX)
        lo++;
    while (hi > lo && s->bits[hi - 1] == 0)
        hi--;
    s->enc[0] = lo;
    s->enc[1] = hi;
    memcpy(s->enc + 2, s->bits + lo, (hi - lo) * sizeof(uint64_t));
    return 2 + hi - lo;
}

static inline uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_cfg(const uint64_t *enc, size_t len, uint64_t state)
{
    uint64_t h = mix(state ^ 0x9e3779b97f4a7c15ULL);
    for (size_t i = 0; i < len; i++)
        h = mix(h ^ (enc[i] + 0x9e3779b97f4a7c15ULL + (h << 6)));
    return h;
}

/* The key of (current S, state): its index, or NIL; *slot is where it is
 * or where it would go. */
static size_t fc_find(struct search *s, uint64_t state, size_t len,
                      uint64_t h, size_t *slot)
{
    struct fcache *c = &s->fc;
    for (size_t i = h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        size_t x = c->slots[i];
        if (!x) {
            *slot = i;
            return NIL;
        }
        const struct fkey *k = &c->k[x - 1];
        if (k->hash == h && k->state == state && k->len == len &&
            !memcmp(c->arena + k->off, s->enc, len * sizeof(uint64_t))) {
            *slot = i;
            return x - 1;
        }
    }
}

/* Does failure (U', J') prune (U, J)? */
static bool covers(const struct search *s, const uint64_t *u1, size_t j1,
                   const uint64_t *u2, size_t j2)
{
    if (j1 > j2)
        return false;
    for (size_t w = 0; w < s->nwu; w++)
        if (u1[w] & ~u2[w])
            return false;
    return true;
}

/* The current (U, J) into s->upay; returns J. */
static size_t payload(struct search *s)
{
    const uint64_t *u = s->bits + s->nw_ok;
    size_t j = s->junk_used;
    for (size_t w = 0; w < s->nwu; w++) {
        s->upay[w] = u[w] & ~s->jl[w];
        uint64_t x = u[w] & s->jl[w];
        while (x) {
            x &= x - 1;
            j++;
        }
    }
    return j;
}

/* Is the current configuration with this state pruned by a failure? */
static bool fc_pruned(struct search *s, uint64_t state)
{
    struct fcache *c = &s->fc;
    if (!c->nk)
        return false;
    size_t len = encode(s), slot;
    size_t ki = fc_find(s, state, len, hash_cfg(s->enc, len, state), &slot);
    if (ki == NIL)
        return false;
    size_t j = payload(s);
    for (size_t p = c->k[ki].first; p; p = c->p[p - 1].next)
        if (covers(s, c->arena + c->p[p - 1].uoff, c->p[p - 1].junk,
                   s->upay, j))
            return true;
    return false;
}

static int grow(void **p, size_t *cap, size_t need, size_t size,
                size_t first)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : first;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * size);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

static int fc_rehash(struct fcache *c)
{
    size_t cap = c->cap ? c->cap * 2 : 1024;
    size_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t k = 0; k < c->nk; k++) {
        size_t i = c->k[k].hash & (cap - 1);
        while (slots[i])
            i = (i + 1) & (cap - 1);
        slots[i] = k + 1;
    }
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
    return 0;
}

/* Records the current configuration with this state as failed. */
static int fc_insert(struct search *s, uint64_t state)
{
    struct fcache *c = &s->fc;
    if ((c->nk + 1) * 2 > c->cap && fc_rehash(c))
        return -1;
    size_t len = encode(s), slot;
    uint64_t h = hash_cfg(s->enc, len, state);
    size_t ki = fc_find(s, state, len, h, &slot);
    size_t j = payload(s);
    const uint64_t *u = s->upay;
    if (grow((void **)&c->arena, &c->acap, c->alen + len + s->nwu,
             sizeof(uint64_t), 4096) ||
        grow((void **)&c->p, &c->pcap, c->np + 1, sizeof(*c->p), 1024) ||
        grow((void **)&c->k, &c->kcap, c->nk + 1, sizeof(*c->k), 1024))
        return -1;
    if (ki == NIL) {
        ki = c->nk++;
        c->k[ki] = (struct fkey){ .hash = h, .state = state, .off = c->alen,
                                  .len = len, .first = 0 };
        memcpy(c->arena + c->alen, s->enc, len * sizeof(uint64_t));
        c->alen += len;
        c->slots[slot] = ki + 1;
    } else {
        /* drop failures the new one covers; keep it if one covers it */
        size_t *link = &c->k[ki].first;
        while (*link) {
            struct fpay *p = &c->p[*link - 1];
            const uint64_t *pu = c->arena + p->uoff;
            if (covers(s, pu, p->junk, u, j))
                return 0;
            if (covers(s, u, j, pu, p->junk))
                *link = p->next;
            else
                link = &p->next;
        }
    }
    c->p[c->np] = (struct fpay){ .next = c->k[ki].first, .uoff = c->alen,
                                 .junk = j };
    c->k[ki].first = ++c->np;
    memcpy(c->arena + c->alen, u, s->nwu * sizeof(uint64_t));
    c->alen += s->nwu;
    return 0;
}

/* Linearizing (d = -1) or un-linearizing (d = +1) an observer of vals[v]:
 * when the last observer is gone, its unknown writers become junk. */
static void observe(struct search *s, size_t v, int d)
{
    if (d < 0 ? --s->live[v] != 0 : s->live[v]++ != 0)
        return;
    for (size_t i = s->wstart[v]; i < s->wstart[v + 1]; i++)
        s->jl[s->wlist[i] / 64] ^= (uint64_t)1 << (s->wlist[i] % 64);
}

/* The value op k writes, canonical now. */
static uint64_t written(const struct search *s, const struct kop *k)
{
    return k->wi != NIL && s->live[k->wi] ? s->vals[k->wi] : s->unread;
}

/* Is k an unknown write that can only write unread now? */
static bool junk_now(const struct search *s, const struct kop *k)
{
    return k->cls == C_JUNK ||
           (k->cls == C_UNK && k->op->kind == LIN_WRITE &&
            (k->wi == NIL || !s->live[k->wi]));
}

/* Applies op k to register value st (canonical).  Returns false if it
 * cannot take effect there with its recorded result; else *ns is the
 * canonical value after it (once k is linearized).  An unknown op that
 * would change nothing is refused too: leaving it out is equivalent. */
static bool step(const struct search *s, const struct kop *k, uint64_t st,
                 uint64_t *ns)
{
    const struct lin_op *o = k->op;
    bool unknown = k->cls != C_OK;
    bool ok;
    switch (o->kind) {
    case LIN_READ:
        *ns = st;
        ok = o->result == st;
        break;
    case LIN_WRITE:
        *ns = written(s, k);
        ok = !unknown || *ns != st;
        break;
    case LIN_CAS:
        if (unknown || o->result) {
            *ns = written(s, k);
            ok = st == o->arg && (!unknown || *ns != st);
        } else {
            *ns = st;
            ok = st != o->arg;
        }
        break;
    default:
        return false;
    }
    /* k may be the last observer of the value it leaves */
    if (ok && k->oi != NIL && s->live[k->oi] == 1 && *ns == s->vals[k->oi])
        *ns = s->unread;
    return ok;
}

/* The value op k leaves, as written (for messages). */
static uint64_t raw_after(const struct kop *k, uint64_t raw)
{
    const struct lin_op *o = k->op;
    if (o->kind == LIN_WRITE)
        return o->arg;
    if (o->kind == LIN_CAS && (k->cls != C_OK || o->result))
        return o->arg2;
    return raw;
}

static void lift(struct search *s, size_t c)
{
    struct ent *E = s->E;
    size_t r = s->callent[s->n + E[c].op];
    E[E[c].prev].next = E[c].next;
    E[E[c].next].prev = E[c].prev;
    E[E[r].prev].next = E[r].next;
    E[E[r].next].prev = E[r].prev;
}

static void unlift(struct search *s, size_t c)
{
    struct ent *E = s->E;
    size_t r = s->callent[s->n + E[c].op];
    E[E[r].prev].next = r;
    E[E[r].next].prev = r;
    E[E[c].prev].next = c;
    E[E[c].next].prev = c;
}

static void note_stuck(struct search *s, size_t entry, uint64_t raw)
{
    if (s->best == NIL || entry > s->best) {
        s->best = entry;
        s->nbest = 0;
        s->best_more = false;
    } else if (entry < s->best) {
        return;
    }
    for (size_t i = 0; i < s->nbest; i++)
        if (s->best_states[i] == raw)
            return;
    if (s->nbest < sizeof s->best_states / sizeof s->best_states[0])
        s->best_states[s->nbest++] = raw;
    else
        s->best_more = true;
}

static int cmp_kop(const void *a, const void *b)
{
    const struct kop *x = a, *y = b;
    if (x->cls != y->cls)
        return x->cls < y->cls ? -1 : 1;
    if (x->op->invoke != y->op->invoke)
        return x->op->invoke < y->op->invoke ? -1 : 1;
    return x->gid < y->gid ? -1 : x->gid > y->gid;
}

static int cmp_ent(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    if (x->ret != y->ret) /* calls before returns at the same tick */
        return x->ret ? 1 : -1;
    return x->op < y->op ? -1 : x->op > y->op;
}

enum { K_OK, K_BAD, K_GAVE_UP, K_NOMEM };

static void search_free(struct search *s)
{
    free(s->E);
    free(s->callent);
    free(s->bits);
    free(s->enc);
    free(s->stack);
    free(s->vals);
    free(s->live);
    free(s->wstart);
    free(s->wlist);
    free(s->jl);
    free(s->upay);
    free(s->fc.slots);
    free(s->fc.k);
    free(s->fc.p);
    free(s->fc.arena);
}

/* Searches one key; the caller sets ops (sorted by cmp_kop), the counts,
 * vals, live, fcas_left and unread. */
static int search_key(struct search *s, uint64_t max_states,
                      uint64_t *states)
{
    size_t n = s->n;
    s->nw_ok = (s->n_ok + 63) / 64;
    s->nwu = (s->n_unk + 63) / 64;
    s->E = malloc((2 * n + 2) * sizeof(*s->E));
    s->callent = malloc((2 * n + 1) * sizeof(*s->callent));
    s->bits = calloc(s->nw_ok + s->nwu + 1, sizeof(uint64_t));
    s->enc = malloc((s->nw_ok + 2) * sizeof(uint64_t));
    s->stack = malloc((n + 1) * sizeof(*s->stack));
    s->jl = calloc(s->nwu + 1, sizeof(uint64_t));
    s->upay = calloc(s->nwu + 1, sizeof(uint64_t));
    s->wstart = calloc(s->nvals + 2, sizeof(size_t));
    s->wlist = malloc((s->n_unk + 1) * sizeof(size_t));
    if (!s->E || !s->callent || !s->bits || !s->enc || !s->stack ||
        !s->jl || !s->upay || !s->wstart || !s->wlist || fc_rehash(&s->fc))
        return K_NOMEM;
    /* the unknown writers of each value (counting sort) */
    for (size_t i = s->n_ok; i < s->n_ok + s->n_unk; i++)
        if (s->ops[i].op->kind == LIN_WRITE)
            s->wstart[s->ops[i].wi + 2]++;
    for (size_t v = 0; v < s->nvals; v++)
        s->wstart[v + 2] += s->wstart[v + 1];
    for (size_t i = s->n_ok; i < s->n_ok + s->n_unk; i++)
        if (s->ops[i].op->kind == LIN_WRITE)
            s->wlist[s->wstart[s->ops[i].wi + 1]++] = i - s->n_ok;
    struct ent *E = s->E;
    for (size_t i = 0; i < n; i++) {
        E[2 * i] = (struct ent){ .time = s->ops[i].op->invoke, .op = i };
        E[2 * i + 1] = (struct ent){
            .time = s->ops[i].cls == C_OK ? s->ops[i].op->complete
                                          : UINT64_MAX,
            .op = i, .ret = true };
    }
    qsort(E, 2 * n, sizeof(*E), cmp_ent);
    s->head = 2 * n;
    s->tail = 2 * n + 1;
    for (size_t i = 0; i < 2 * n; i++) {
        E[i].prev = i ? i - 1 : s->head;
        E[i].next = i + 1 < 2 * n ? i + 1 : s->tail;
        s->callent[(E[i].ret ? n : 0) + E[i].op] = i;
    }
    /* the tail is a return so that a scan always stops at one */
    E[s->head] = (struct ent){ .time = 0, .op = NIL, .ret = false,
                               .prev = NIL, .next = n ? 0 : s->tail };
    E[s->tail] = (struct ent){ .time = UINT64_MAX, .op = NIL, .ret = true,
                               .prev = n ? 2 * n - 1 : s->head,
                               .next = NIL };

    uint64_t *zero = bsearch(&(uint64_t){ 0 }, s->vals, s->nvals,
                             sizeof(uint64_t), cmp_u64);
    uint64_t state = zero ? 0 : s->unread, raw = 0;
    size_t sp = 0, nlin_ok = 0, entry = E[s->head].next;
    size_t first_junk = s->n_ok + s->n_unk;
    (void)first_junk; /* read only by an assert: unused where NDEBUG removes it (RelWithDebInfo) */
    bool phase_unk = false; /* second pass over the calls: unknown ops */
    bool junk_seen = false; /* this pass has reached a junk write */
    for (;;) {
        if (nlin_ok == s->n_ok)
            return K_OK;
        if (E[entry].ret) { /* nothing more before this return */
            if (!phase_unk && s->n_ok < n) {
                phase_unk = true;
                junk_seen = false;
                entry = E[s->head].next;
                continue;
            }
            note_stuck(s, entry, raw);
            if (sp == 0)
                return K_BAD;
            /* Only configurations reached by an ok op are recorded: after
             * an unknown op blind writes are not tried (see below), so
             * such a configuration may fail here and yet be good. */
            if (s->ops[E[s->stack[sp - 1].entry].op].cls == C_OK &&
                fc_insert(s, state))
                return K_NOMEM;
            struct frame *f = &s->stack[--sp];
            size_t c = f->entry;
            state = f->state;
            raw = f->raw;
            junk_seen = f->junk_seen;
            const struct kop *k = &s->ops[E[c].op];
            mark(s, E[c].op, false);
            unlift(s, c);
            if (k->cls == C_OK)
                nlin_ok--;
            if (k->oi != NIL)
                observe(s, k->oi, +1);
            if (k->op->kind == LIN_CAS && k->cls == C_OK && !k->op->result)
                s->fcas_left++;
            phase_unk = k->cls != C_OK;
            entry = E[c].next;
            continue;
        }
        size_t i = E[entry].op;
        const struct kop *k = &s->ops[i];
        bool try = phase_unk ? k->cls != C_OK : k->cls == C_OK;
        if (try && junk_now(s, k)) {
            /* only the first junk write, and only if a failed CAS left */
            try = !junk_seen && s->fcas_left;
            junk_seen = true;
            assert(!try || k->cls != C_JUNK ||
                   i == first_junk + s->junk_used);
        }
        /* Right after an unknown op, a blind write would hide its effect:
         * the same write without it (a sibling, explored anyway) leaves
         * more choices. */
        if (k->op->kind == LIN_WRITE && sp &&
            s->ops[E[s->stack[sp - 1].entry].op].cls != C_OK)
            try = false;
        uint64_t ns;
        if (try && step(s, k, state, &ns)) {
            mark(s, i, true);
            if (!fc_pruned(s, ns)) {
                if (max_states && *states >= max_states)
                    return K_GAVE_UP;
                ++*states;
                s->stack[sp++] = (struct frame){ .entry = entry,
                                                 .state = state, .raw = raw,
                                                 .junk_seen = junk_seen };
                state = ns;
                raw = raw_after(k, raw);
                lift(s, entry);
                if (k->cls == C_OK)
                    nlin_ok++;
                if (k->oi != NIL)
                    observe(s, k->oi, -1);
                if (k->op->kind == LIN_CAS && k->cls == C_OK &&
                    !k->op->result)
                    s->fcas_left--;
                entry = E[s->head].next;
                phase_unk = false;
                continue;
            }
            mark(s, i, false);
        }
        entry = E[entry].next;
    }
}

/* ---- driver ------------------------------------------------------------ */

struct keyed {
    uint64_t key;
    size_t gid;
};

static int cmp_keyed(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->gid < y->gid ? -1 : x->gid > y->gid;
}

static void explain(const struct search *s, uint64_t key,
                    struct lin_result *r)
{
    size_t len = 0;
    r->bad_key = key;
    if (s->best >= 2 * s->n) { /* cannot happen: an ok op blocks */
        appendf(r->why, sizeof r->why, &len,
                "key %" PRIu64 ": not linearizable", key);
        return;
    }
    const struct kop *k = &s->ops[s->E[s->best].op];
    char opbuf[96], vals[80];
    lin_op_format(k->op, opbuf, sizeof opbuf);
    size_t m = 0;
    vals[0] = 0;
    for (size_t i = 0; i < s->nbest; i++)
        appendf(vals, sizeof vals, &m, "%s%" PRIu64, i ? "," : "",
                s->best_states[i]);
    if (s->best_more)
        appendf(vals, sizeof vals, &m, ",...");
    r->bad_op = k->gid;
    r->bad_time = k->op->complete;
    appendf(r->why, sizeof r->why, &len,
            "key %" PRIu64 ": op %zu (%s) cannot be linearized: the "
            "register can only hold {%s} then; the ops invoked by t=%" PRIu64
            " are already not linearizable",
            key, k->gid, opbuf, vals, k->op->complete);
}

static size_t val_index(const struct search *s, uint64_t v)
{
    const uint64_t *x = bsearch(&v, s->vals, s->nvals, sizeof(v), cmp_u64);
    return x ? (size_t)(x - s->vals) : NIL;
}

/* Fills s with the ops ks[a..b) of one key; 0 or -1 (out of memory). */
static int prepare_key(const struct lin_history *h, const struct keyed *ks,
                       size_t a, size_t b, struct kop *kops,
                       struct search *s, size_t *dropped)
{
    *s = (struct search){ .ops = kops, .best = NIL };
    s->vals = malloc((b - a + 1) * sizeof(*s->vals));
    s->live = calloc(b - a + 1, sizeof(*s->live));
    if (!s->vals || !s->live)
        return -1;
    for (size_t i = a; i < b; i++) {
        const struct lin_op *o = &h->ops[ks[i].gid];
        if (o->kind == LIN_READ)
            s->vals[s->nvals++] = o->result;
        else if (o->kind == LIN_CAS)
            s->vals[s->nvals++] = o->arg;
        if (o->kind == LIN_CAS && o->status == LIN_OK && !o->result)
            s->fcas_left++;
    }
    qsort(s->vals, s->nvals, sizeof(*s->vals), cmp_u64);
    size_t m = 0;
    for (size_t i = 0; i < s->nvals; i++)
        if (!m || s->vals[m - 1] != s->vals[i])
            s->vals[m++] = s->vals[i];
    s->nvals = m;
    s->unread = UINT64_MAX;
    while (val_index(s, s->unread) != NIL)
        s->unread--;
    for (size_t i = a; i < b; i++) {
        const struct lin_op *o = &h->ops[ks[i].gid];
        struct kop k = { .op = o, .gid = ks[i].gid, .cls = C_OK,
                         .wi = NIL, .oi = NIL };
        if (o->kind == LIN_WRITE)
            k.wi = val_index(s, o->arg);
        else if (o->kind == LIN_CAS)
            k.wi = val_index(s, o->arg2);
        if (o->kind != LIN_WRITE) {
            k.oi = val_index(s, o->kind == LIN_READ ? o->result : o->arg);
            s->live[k.oi]++;
        }
        if (o->status == LIN_UNKNOWN) {
            k.cls = C_UNK;
            if (o->kind == LIN_WRITE && k.wi == NIL) {
                /* unread is only useful to pass a failed CAS */
                if (!s->fcas_left) {
                    ++*dropped;
                    continue;
                }
                k.cls = C_JUNK;
            }
        }
        kops[s->n++] = k;
        s->n_ok += k.cls == C_OK;
        s->n_unk += k.cls == C_UNK;
        s->n_junk += k.cls == C_JUNK;
    }
    qsort(kops, s->n, sizeof(*kops), cmp_kop);
    return 0;
}

int lin_check(const struct lin_history *h, uint64_t max_states_per_key,
              struct lin_result *out)
{
    struct lin_result dummy;
    struct lin_result *r = out ? out : &dummy;
    size_t len = 0;
    memset(r, 0, sizeof(*r));
    r->ok = true;
    r->bad_op = SIZE_MAX;

    for (size_t i = 0; i < h->n; i++) {
        const struct lin_op *o = &h->ops[i];
        const char *err = NULL;
        if ((unsigned)o->kind > LIN_CAS)
            err = "bad kind";
        else if ((unsigned)o->status > LIN_FAIL)
            err = "bad status";
        else if (o->status == LIN_OK && o->complete < o->invoke)
            err = "completes before it is invoked";
        if (err) {
            appendf(r->why, sizeof r->why, &len, "invalid op %zu: %s", i,
                    err);
            return LIN_ERROR;
        }
    }

    struct keyed *ks = malloc((h->n + 1) * sizeof(*ks));
    struct kop *kops = malloc((h->n + 1) * sizeof(*kops));
    int verdict = LIN_LINEARIZABLE;
    if (!ks || !kops)
        goto nomem;
    size_t nk = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct lin_op *o = &h->ops[i];
        if (o->status == LIN_FAIL ||
            (o->status == LIN_UNKNOWN && o->kind == LIN_READ))
            r->ops_dropped++;
        else
            ks[nk++] = (struct keyed){ o->key, i };
    }
    qsort(ks, nk, sizeof(*ks), cmp_keyed);

    for (size_t a = 0, b; a < nk; a = b) {
        uint64_t key = ks[a].key;
        for (b = a; b < nk && ks[b].key == key; b++)
            ;
        struct search s;
        if (prepare_key(h, ks, a, b, kops, &s, &r->ops_dropped)) {
            search_free(&s);
            goto nomem;
        }
        r->keys++;
        r->ops_checked += s.n;
        uint64_t states = 0;
        int rc = search_key(&s, max_states_per_key, &states);
        r->states_explored += states;
        if (rc == K_BAD)
            explain(&s, key, r);
        search_free(&s);
        if (rc == K_NOMEM)
            goto nomem;
        if (rc == K_GAVE_UP && !r->keys_gave_up++) {
            r->gave_up = true;
            r->gave_up_key = key;
        }
        if (rc == K_BAD) {
            r->ok = false;
            verdict = LIN_VIOLATION;
            break;
        }
    }
    if (verdict == LIN_LINEARIZABLE && r->gave_up) {
        verdict = LIN_GAVE_UP;
        appendf(r->why, sizeof r->why, &len,
                "gave up on %zu of %zu keys (first: key %" PRIu64
                ") after %" PRIu64 " states each; no violation in the "
                "others", r->keys_gave_up, r->keys, r->gave_up_key,
                max_states_per_key);
    } else if (verdict == LIN_LINEARIZABLE) {
        appendf(r->why, sizeof r->why, &len,
                "linearizable: %zu keys, %zu ops checked, %zu dropped, "
                "%" PRIu64 " states", r->keys, r->ops_checked,
                r->ops_dropped, r->states_explored);
    }
    free(ks);
    free(kops);
    return verdict;
nomem:
    free(ks);
    free(kops);
    r->ok = true;
    appendf(r->why, sizeof r->why, &len, "out of memory");
    return LIN_ERROR;
}
