/* Unit tests for the linearizability checker (tests/sim/linearize.h). */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "linearize.h"

/* ---- helpers ----------------------------------------------------------- */

static size_t add(struct lin_history *h, uint64_t client, uint64_t key,
                  enum lin_kind kind, uint64_t arg, uint64_t arg2,
                  uint64_t result, enum lin_status st, uint64_t inv,
                  uint64_t comp)
{
    struct lin_op op = {
        .client = client, .key = key, .kind = kind, .arg = arg,
        .arg2 = arg2, .result = result, .status = st, .invoke = inv,
        .complete = comp,
    };
    size_t id = lin_history_add(h, &op);
    CHECK(id != SIZE_MAX);
    return id;
}

/* ok / unknown / failed reads, writes and CAS on client c, key k */
static size_t rd(struct lin_history *h, uint64_t c, uint64_t k, uint64_t v,
                 uint64_t inv, uint64_t comp)
{
    return add(h, c, k, LIN_READ, 0, 0, v, LIN_OK, inv, comp);
}
static size_t wr(struct lin_history *h, uint64_t c, uint64_t k, uint64_t v,
                 uint64_t inv, uint64_t comp)
{
    return add(h, c, k, LIN_WRITE, v, 0, 0, LIN_OK, inv, comp);
}
static size_t wr_unknown(struct lin_history *h, uint64_t c, uint64_t k,
                         uint64_t v, uint64_t inv)
{
    return add(h, c, k, LIN_WRITE, v, 0, 0, LIN_UNKNOWN, inv, 0);
}
static size_t wr_fail(struct lin_history *h, uint64_t c, uint64_t k,
                      uint64_t v, uint64_t inv, uint64_t comp)
{
    return add(h, c, k, LIN_WRITE, v, 0, 0, LIN_FAIL, inv, comp);
}
static size_t cas(struct lin_history *h, uint64_t c, uint64_t k, uint64_t e,
                  uint64_t v, bool swapped, uint64_t inv, uint64_t comp)
{
    return add(h, c, k, LIN_CAS, e, v, swapped, LIN_OK, inv, comp);
}

static int verdict(const struct lin_history *h, struct lin_result *r)
{
    int v = lin_check(h, 0, r);
    if (v != LIN_LINEARIZABLE && v != LIN_VIOLATION)
        fprintf(stderr, "  verdict %d: %s\n", v, r->why);
    return v;
}

static double now_s(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- hand-written histories -------------------------------------------- */

static void test_sequential(void)
{
    struct lin_history *h = lin_history_create();
    struct lin_result r;
    CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE); /* empty */
    rd(h, 1, 7, 0, 0, 1);                       /* initial value is 0 */
    wr(h, 1, 7, 10, 2, 3);
    rd(h, 1, 7, 10, 4, 5);
    wr(h, 2, 7, 11, 6, 7);
    rd(h, 1, 7, 11, 8, 9);
    rd(h, 2, 7, 11, 10, 10);
    wr(h, 1, 7, 10, 11, 12); /* a value may be written again */
    rd(h, 3, 7, 10, 13, 14);
    CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
    CHECK(r.ok && !r.gave_up);
    CHECK_EQ(r.keys, 1);
    CHECK_EQ(r.ops_checked, 8);
    printf("  %s\n", r.why);
    lin_history_destroy(h);
}

static void test_concurrent_writes(void)
{
    for (uint64_t seen = 1; seen <= 2; seen++) {
        struct lin_history *h = lin_history_create();
        struct lin_result r;
        wr(h, 1, 1, 1, 0, 10);
        wr(h, 2, 1, 2, 0, 10);
        rd(h, 3, 1, seen, 5, 15); /* overlaps both */
        rd(h, 3, 1, seen, 16, 17); /* after both: either is last */
        CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
        /* once both writes are done the value cannot change any more */
        rd(h, 4, 1, 3 - seen, 18, 19);
        CHECK_EQ(verdict(h, &r), LIN_VIOLATION);
        lin_history_destroy(h);
    }
}

static void test_stale_read(void)
{
    struct lin_history *h = lin_history_create();
    struct lin_result r;
    wr(h, 1, 5, 1, 0, 1);
    wr(h, 2, 5, 2, 2, 3);
    size_t bad = rd(h, 3, 5, 1, 4, 5);
    CHECK_EQ(verdict(h, &r), LIN_VIOLATION);
    CHECK(!r.ok);
    CHECK_EQ(r.bad_key, 5);
    CHECK_EQ(r.bad_op, bad);
    CHECK_EQ(r.bad_time, 5);
    CHECK(strstr(r.why, "key 5") && strstr(r.why, "op 2") &&
          strstr(r.why, "t=5"));
    printf("  %s\n", r.why);
    lin_history_destroy(h);
}

static void test_never_written(void)
{
    struct lin_history *h = lin_history_create();
    struct lin_result r;
    size_t bad = rd(h, 1, 9, 42, 0, 1); /* nothing was ever written */
    CHECK_EQ(verdict(h, &r), LIN_VIOLATION);
    CHECK_EQ(r.bad_op, bad);
    lin_history_destroy(h);

    h = lin_history_create();
    wr(h, 1, 9, 1, 0, 10);
    rd(h, 2, 9, 1, 5, 6);
    bad = rd(h, 2, 9, 99, 7, 8);
    rd(h, 2, 9, 1, 9, 12);
    CHECK_EQ(verdict(h, &r), LIN_VIOLATION);
    CHECK_EQ(r.bad_op, bad);
    CHECK(strstr(r.why, "{1}") != NULL);
    printf("  %s\n", r.why);
    lin_history_destroy(h);
}

static void test_unknown_write(void)
{
    struct lin_history *h = lin_history_create();
    struct lin_result r;
    /* observed much later: it may take effect any time after invoke */
    wr(h, 1, 3, 1, 0, 1);
    wr_unknown(h, 2, 3, 7, 2);
    rd(h, 1, 3, 1, 50, 51);
    wr(h, 1, 3, 8, 52, 53);
    rd(h, 3, 3, 8, 54, 55);
    rd(h, 3, 3, 7, 100, 101);
    rd(h, 1, 3, 7, 102, 103);
    CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
    CHECK_EQ(r.ops_dropped, 0);
    /* ... but it cannot take effect twice */
    size_t bad = rd(h, 1, 3, 8, 104, 105);
    wr(h, 1, 3, 9, 106, 107);
    rd(h, 1, 3, 7, 108, 109);
    CHECK_EQ(verdict(h, &r), LIN_VIOLATION);
    CHECK_EQ(r.bad_op, bad);
    lin_history_destroy(h);

    /* never observed: fine, and dropped up front */
    h = lin_history_create();
    wr(h, 1, 3, 1, 0, 1);
    wr_unknown(h, 2, 3, 2, 2);
    rd(h, 1, 3, 1, 3, 4);
    rd(h, 3, 3, 1, 5, 6);
    CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
    CHECK_EQ(r.ops_dropped, 1);
    /* the same with a failed CAS on the key (no dropping up front) */
    cas(h, 3, 3, 5, 6, false, 7, 8);
    CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
    CHECK_EQ(r.ops_dropped, 0);
    lin_history_destroy(h);

    /* observed before it was invoked */
    h = lin_history_create();
    bad = rd(h, 1, 3, 7, 0, 5);
    wr_unknown(h, 2, 3, 7, 6);
    CHECK_EQ(verdict(h, &r), LIN_VIOLATION);
    CHECK_EQ(r.bad_op, bad);
    lin_history_destroy(h);

    /* unknown reads are ignored whatever they claim */
    h = lin_history_create();
    add(h, 1, 3, LIN_READ, 0, 0, 12345, LIN_UNKNOWN, 0, 1);
    add(h, 1, 3, LIN_READ, 0, 0, 12345, LIN_FAIL, 2, 3);
    CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
    CHECK_EQ(r.ops_dropped, 2);
    lin_history_destroy(h);
}

static void test_failed_write(void)
{
    struct lin_history *h = lin_history_create();
    struct lin_result r;
    wr(h, 1, 4, 1, 0, 1);
    wr_fail(h, 2, 4, 5, 2, 3);
    rd(h, 1, 4, 1, 4, 5);
    CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
    size_t bad = rd(h, 3, 4, 5, 6, 7);
    CHECK_EQ(verdict(h, &r), LIN_VIOLATION);
    CHECK_EQ(r.bad_op, bad);
    lin_history_destroy(h);
}

static void test_new_then_old(void)
{
    struct lin_history *h = lin_history_create();
    struct lin_result r;
    wr(h, 1, 2, 1, 0, 100); /* concurrent with both reads */
    rd(h, 2, 2, 1, 10, 20);
    rd(h, 3, 2, 1, 30, 40);
    CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
    size_t bad = rd(h, 3, 2, 0, 41, 50); /* old value after the new one */
    CHECK_EQ(verdict(h, &r), LIN_VIOLATION);
    CHECK_EQ(r.bad_op, bad);
    printf("  %s\n", r.why);
    lin_history_destroy(h);

    /* old then new is fine */
    h = lin_history_create();
    wr(h, 1, 2, 1, 0, 100);
    rd(h, 2, 2, 0, 10, 20);
    rd(h, 3, 2, 1, 30, 40);
    CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
    lin_history_destroy(h);
}

static void test_time_ties(void)
{
    /* completing at t does not precede an invocation at the same t */
    struct lin_history *h = lin_history_create();
    struct lin_result r;
    wr(h, 1, 1, 1, 0, 10);
    rd(h, 2, 1, 0, 10, 12);
    CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
    rd(h, 2, 1, 0, 11, 12); /* but invoked at 11 it must see 1 */
    CHECK_EQ(verdict(h, &r), LIN_VIOLATION);
    lin_history_destroy(h);
}

static void test_cas(void)
{
    struct lin_history *h = lin_history_create();
    struct lin_result r;
    cas(h, 1, 1, 0, 5, true, 0, 1);   /* 0 -> 5 */
    cas(h, 2, 1, 0, 6, false, 2, 3);  /* holds 5: fails */
    cas(h, 1, 1, 5, 7, true, 4, 5);   /* 5 -> 7 */
    rd(h, 2, 1, 7, 6, 7);
    CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
    /* two concurrent CAS from the same expected value: one wins */
    cas(h, 1, 1, 7, 8, true, 10, 20);
    cas(h, 2, 1, 7, 9, false, 10, 20);
    rd(h, 3, 1, 8, 21, 22);
    CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
    size_t bad = cas(h, 3, 1, 8, 10, false, 23, 24); /* it holds 8 */
    CHECK_EQ(verdict(h, &r), LIN_VIOLATION);
    CHECK_EQ(r.bad_op, bad);
    printf("  %s\n", r.why);
    lin_history_destroy(h);

    h = lin_history_create();
    bad = cas(h, 1, 1, 3, 4, true, 0, 1); /* holds 0, not 3 */
    CHECK_EQ(verdict(h, &r), LIN_VIOLATION);
    CHECK_EQ(r.bad_op, bad);
    lin_history_destroy(h);

    /* an unknown CAS: may or may not have happened */
    h = lin_history_create();
    wr(h, 1, 1, 1, 0, 1);
    add(h, 2, 1, LIN_CAS, 1, 2, 0, LIN_UNKNOWN, 2, 0);
    rd(h, 1, 1, 1, 10, 11);
    rd(h, 1, 1, 2, 12, 13);
    CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
    rd(h, 1, 1, 1, 14, 15); /* cannot undo it */
    CHECK_EQ(verdict(h, &r), LIN_VIOLATION);
    lin_history_destroy(h);
}

static void test_many_keys(void)
{
    struct lin_history *h = lin_history_create();
    struct lin_result r;
    const uint64_t nkeys = 50;
    size_t bad = 0;
    for (uint64_t round = 0; round < 20; round++)
        for (uint64_t k = 0; k < nkeys; k++) {
            uint64_t t = round * 1000 + k * 10;
            uint64_t key = k * 0x9e3779b97f4a7c15ULL; /* spread out */
            wr(h, k % 5, key, round * 100 + k + 1, t, t + 15);
            rd(h, (k + 1) % 5, key, round * 100 + k + 1, t + 16, t + 18);
            if (round == 13 && k == 31) /* stale: sees last round */
                bad = rd(h, 9, key, round * 100 + k + 1 - 100, t + 19,
                         t + 20);
        }
    size_t n = lin_history_len(h);
    struct lin_op *b = lin_history_op(h, bad);
    b->result = 13 * 100 + 31 + 1;
    CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
    CHECK_EQ(r.keys, nkeys);
    CHECK_EQ(r.ops_checked, n);
    b->result -= 100;
    CHECK_EQ(verdict(h, &r), LIN_VIOLATION);
    CHECK(r.bad_key == 31 * 0x9e3779b97f4a7c15ULL);
    CHECK_EQ(r.bad_op, bad);
    CHECK(lin_history_op(h, n) == NULL);
    lin_history_destroy(h);
}

static void test_recording_api(void)
{
    struct lin_history *h = lin_history_create();
    struct lin_result r;
    size_t a = lin_history_invoke(h, 1, LIN_WRITE, 1, 5, 0, 0);
    size_t b = lin_history_invoke(h, 2, LIN_READ, 1, 0, 0, 1);
    size_t c = lin_history_invoke(h, 3, LIN_WRITE, 1, 6, 0, 2); /* lost */
    CHECK_EQ(lin_history_complete(h, a, LIN_OK, 0, 3), 0);
    CHECK_EQ(lin_history_complete(h, b, LIN_OK, 5, 4), 0);
    CHECK_EQ(lin_history_complete(h, 99, LIN_OK, 5, 4), -1);
    CHECK_EQ(lin_history_op(h, c)->status, LIN_UNKNOWN);
    size_t d = lin_history_invoke(h, 2, LIN_READ, 1, 0, 0, 10);
    lin_history_complete(h, d, LIN_OK, 6, 11);
    CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
    char buf[96];
    lin_op_format(lin_history_op(h, c), buf, sizeof buf);
    CHECK(strcmp(buf, "c3 WRITE k1 6 [2,?)") == 0);
    lin_op_format(lin_history_op(h, d), buf, sizeof buf);
    CHECK(strcmp(buf, "c2 READ k1 -> 6 [10,11]") == 0);
    /* an ok op completing before its invocation is rejected */
    lin_history_complete(h, d, LIN_OK, 6, 9);
    CHECK_EQ(lin_check(h, 0, &r), LIN_ERROR);
    CHECK(strstr(r.why, "op 3") != NULL);
    CHECK_EQ(lin_check(h, 0, NULL), LIN_ERROR);
    lin_history_destroy(h);
}

/* ---- generated histories ----------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t below(uint64_t *s, uint64_t n)
{
    return rng_next(s) % n;
}

struct gen_cfg {
    uint64_t seed;
    unsigned clients, keys, nops;
    unsigned pct_read, pct_cas, pct_unknown, pct_fail;
};

struct gop {
    struct lin_op op;
    uint64_t lin; /* true linearization point */
    size_t seq;
    bool effect;
};

static int cmp_gop(const void *a, const void *b)
{
    const struct gop *x = a, *y = b;
    if (x->lin != y->lin)
        return x->lin < y->lin ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A linearizable history: clients run ops one after another with random
 * windows; each op takes effect at a point inside its window (unknown ones
 * maybe later, maybe never; failed ones never).  Results come from applying
 * the ops in linearization order to a real store. */
static struct lin_history *generate(const struct gen_cfg *g)
{
    uint64_t rs = g->seed;
    uint64_t t[16] = { 0 }, last[16] = { 0 }, next_val = 1;
    struct gop *ops = calloc(g->nops, sizeof(*ops));
    for (size_t i = 0; i < g->nops; i++) {
        unsigned c = 0;
        for (unsigned j = 1; j < g->clients; j++)
            if (t[j] < t[c])
                c = j;
        struct gop *o = &ops[i];
        o->seq = i;
        o->op.client = c;
        o->op.key = below(&rs, g->keys);
        unsigned roll = (unsigned)below(&rs, 100);
        o->op.kind = roll < g->pct_read ? LIN_READ
                     : roll < g->pct_read + g->pct_cas ? LIN_CAS
                                                       : LIN_WRITE;
        if (o->op.kind == LIN_WRITE) {
            o->op.arg = next_val++;
            last[o->op.key] = o->op.arg;
        } else if (o->op.kind == LIN_CAS) {
            unsigned e = (unsigned)below(&rs, 4);
            o->op.arg = e == 0 ? 0 : e == 1 ? below(&rs, next_val)
                                            : last[o->op.key];
            o->op.arg2 = next_val++;
        }
        o->op.invoke = t[c] + below(&rs, 3);
        o->lin = o->op.invoke + below(&rs, 8);
        o->op.complete = o->lin + below(&rs, 8);
        roll = (unsigned)below(&rs, 100);
        if (roll < g->pct_unknown) {
            o->op.status = LIN_UNKNOWN;
            o->effect = o->op.kind != LIN_READ && below(&rs, 2);
            o->lin = o->op.invoke + below(&rs, 80);
            o->op.complete = 0;     /* must be ignored */
            o->op.result = 0xBAD;   /* must be ignored */
            t[c] = o->op.invoke + 10 + below(&rs, 10);
        } else if (roll < g->pct_unknown + g->pct_fail) {
            o->op.status = LIN_FAIL;
            o->effect = false;
            o->op.result = 0xBAD;
            t[c] = o->op.complete + 1;
        } else {
            o->op.status = LIN_OK;
            o->effect = true;
            t[c] = o->op.complete + below(&rs, 2); /* may tie */
        }
    }
    struct gop *order = malloc(g->nops * sizeof(*order));
    memcpy(order, ops, g->nops * sizeof(*order));
    qsort(order, g->nops, sizeof(*order), cmp_gop);
    uint64_t store[16] = { 0 };
    for (size_t i = 0; i < g->nops; i++) {
        struct gop *o = &ops[order[i].seq];
        uint64_t *v = &store[o->op.key];
        if (!o->effect)
            continue;
        if (o->op.kind == LIN_READ) {
            o->op.result = *v;
        } else if (o->op.kind == LIN_WRITE) {
            *v = o->op.arg;
        } else {
            bool swap = *v == o->op.arg;
            if (o->op.status == LIN_OK)
                o->op.result = swap;
            if (swap)
                *v = o->op.arg2;
        }
    }
    struct lin_history *h = lin_history_create();
    for (size_t i = 0; i < g->nops; i++)
        lin_history_add(h, &ops[i].op);
    free(order);
    free(ops);
    return h;
}

static bool is_ok_read(const struct lin_op *o)
{
    return o->kind == LIN_READ && o->status == LIN_OK;
}

/* Mutation 1: a random ok read returns a value nobody wrote. */
static size_t mutate_unwritten(struct lin_history *h, uint64_t *rs)
{
    size_t n = lin_history_len(h);
    for (;;) {
        size_t i = below(rs, n);
        struct lin_op *o = lin_history_op(h, i);
        if (is_ok_read(o)) {
            o->result = 0xF000000000000000ULL + i;
            return i;
        }
    }
}

/* Mutation 2: an ok read returns the value of an ok write on its key that
 * was invoked after the read completed. */
static size_t mutate_future(struct lin_history *h, uint64_t *rs)
{
    size_t n = lin_history_len(h);
    for (size_t tries = 0; tries < 100000; tries++) {
        struct lin_op *o = lin_history_op(h, below(rs, n));
        struct lin_op *w = lin_history_op(h, below(rs, n));
        if (is_ok_read(o) && w->kind == LIN_WRITE && w->status == LIN_OK &&
            w->key == o->key && w->invoke > o->complete) {
            o->result = w->arg;
            return (size_t)(o - lin_history_op(h, 0));
        }
    }
    return SIZE_MAX;
}

/* Mutation 3: a stale read: an ok read returns the value of ok write A
 * although ok write B was invoked after A completed and completed before
 * the read was invoked. */
static size_t mutate_stale(struct lin_history *h, uint64_t *rs)
{
    size_t n = lin_history_len(h);
    for (size_t tries = 0; tries < 1000000; tries++) {
        struct lin_op *o = lin_history_op(h, below(rs, n));
        struct lin_op *a = lin_history_op(h, below(rs, n));
        struct lin_op *b = lin_history_op(h, below(rs, n));
        if (is_ok_read(o) && a->kind == LIN_WRITE && b->kind == LIN_WRITE &&
            a->status == LIN_OK && b->status == LIN_OK &&
            a->key == o->key && b->key == o->key &&
            a->complete < b->invoke && b->complete < o->invoke &&
            o->invoke - b->complete < 200) {
            o->result = a->arg;
            return (size_t)(o - lin_history_op(h, 0));
        }
    }
    return SIZE_MAX;
}

static void test_random(void)
{
    double total = 0, worst = 0;
    uint64_t states = 0;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        struct gen_cfg g = {
            .seed = seed, .clients = 5, .keys = 3, .nops = 2000,
            .pct_read = 45, .pct_cas = seed % 2 ? 15 : 0,
            .pct_unknown = 5, .pct_fail = 3,
        };
        struct lin_history *h = generate(&g);
        struct lin_result r;
        double t0 = now_s();
        CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
        double dt = now_s() - t0;
        total += dt;
        worst = dt > worst ? dt : worst;
        states += r.states_explored;
        CHECK_EQ(r.keys, 3);
        uint64_t rs = seed * 7919;
        size_t (*mut[3])(struct lin_history *, uint64_t *) = {
            mutate_unwritten, mutate_future, mutate_stale,
        };
        for (int m = 0; m < 3; m++) {
            struct lin_history *bad = generate(&g);
            size_t id = mut[m](bad, &rs);
            CHECK(id != SIZE_MAX);
            if (id == SIZE_MAX) {
                lin_history_destroy(bad);
                continue;
            }
            t0 = now_s();
            CHECK_EQ(verdict(bad, &r), LIN_VIOLATION);
            dt = now_s() - t0;
            total += dt;
            worst = dt > worst ? dt : worst;
            CHECK_EQ(r.bad_op, id);
            CHECK(r.bad_key == lin_history_op(bad, id)->key);
            if (seed == 1)
                printf("  mutation %d: %s\n", m + 1, r.why);
            lin_history_destroy(bad);
        }
        lin_history_destroy(h);
    }
    printf("  12 seeds x 4 histories of 2000 ops: %.3f s total, worst %.4f "
           "s, %" PRIu64 " states on the good ones\n", total, worst, states);
}

static void test_gave_up(void)
{
    struct gen_cfg g = {
        .seed = 99, .clients = 5, .keys = 1, .nops = 2000,
        .pct_read = 45, .pct_cas = 0, .pct_unknown = 5, .pct_fail = 0,
    };
    struct lin_history *h = generate(&g);
    struct lin_result r;
    CHECK_EQ(lin_check(h, 100, &r), LIN_GAVE_UP);
    CHECK(r.ok && r.gave_up);
    CHECK_EQ(r.gave_up_key, 0);
    CHECK(r.states_explored <= 100);
    printf("  %s\n", r.why);
    CHECK_EQ(lin_check(h, 1000000, &r), LIN_LINEARIZABLE);
    CHECK(r.ok && !r.gave_up);
    lin_history_destroy(h);
}

/* Timing limits are on CPU time (the test machines are shared) and are
 * relaxed in sanitizer builds. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define SLOWDOWN 10.0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SLOWDOWN 10.0
#endif
#endif
#ifndef SLOWDOWN
#define SLOWDOWN 1.0
#endif

static void test_performance(void)
{
    static const char *const names[] = {
        "all ok", "3% unknown, 2% failed", "10% CAS, 3% unknown, 2% failed",
    };
    for (int variant = 0; variant < 3; variant++) {
        struct gen_cfg g = {
            .seed = 1234 + variant, .clients = 5, .keys = 1, .nops = 10000,
            .pct_read = 50, .pct_cas = variant == 2 ? 10 : 0,
            .pct_unknown = variant ? 3 : 0, .pct_fail = variant ? 2 : 0,
        };
        struct lin_history *h = generate(&g);
        struct lin_result r;
        double w0 = now_s();
        clock_t c0 = clock();
        CHECK_EQ(verdict(h, &r), LIN_LINEARIZABLE);
        double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
        printf("  5 clients, 10000 ops, 1 key, %s: %.4f s cpu, %.4f s wall, "
               "%" PRIu64 " states\n", names[variant], cpu, now_s() - w0,
               r.states_explored);
        CHECK(cpu < 1.0 * SLOWDOWN);
        /* A violation is found by exhausting every order before it: this
         * takes longer, most with failed CAS ops, which fit almost
         * anywhere. */
        uint64_t rs = 5;
        size_t bad = mutate_stale(h, &rs);
        w0 = now_s();
        c0 = clock();
        CHECK_EQ(verdict(h, &r), LIN_VIOLATION);
        cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
        CHECK_EQ(r.bad_op, bad);
        printf("    ... with a stale read: %.4f s cpu, %.4f s wall, %" PRIu64
               " states\n", cpu, now_s() - w0, r.states_explored);
        CHECK(cpu < (variant == 2 ? 5.0 : 1.0) * SLOWDOWN);
        lin_history_destroy(h);
    }
}

/* ---- cross-check against an exact reference on small histories -------- */

/* The reference: a plain search over (set of placed ops, value), trying
 * every order: op j may come next unless some unplaced ok op completed
 * before j was invoked; unknown ops may be left out.  Failed pairs are
 * memoized in a hash set (a stamp per slot clears it between histories). */
#define REF_SLOTS (1u << 20)
struct ref_memo {
    uint64_t *key;
    uint32_t *stamp;
    uint32_t now;
};

static bool ref_seen(struct ref_memo *m, uint64_t key, bool add)
{
    size_t i = (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 44);
    for (;; i = (i + 1) & (REF_SLOTS - 1)) {
        if (m->stamp[i] != m->now) {
            if (add) {
                m->stamp[i] = m->now;
                m->key[i] = key;
            }
            return false;
        }
        if (m->key[i] == key)
            return true;
    }
}

static bool reference(struct ref_memo *m, const struct lin_op *ops,
                      size_t n, uint32_t placed, uint64_t state)
{
    bool all = true;
    for (size_t j = 0; j < n; j++)
        if (!(placed >> j & 1) && ops[j].status == LIN_OK)
            all = false;
    if (all)
        return true;
    uint64_t key = (uint64_t)placed << 8 | state; /* values < 256 */
    if (ref_seen(m, key, false))
        return false;
    for (size_t j = 0; j < n; j++) {
        if (placed >> j & 1)
            continue;
        bool blocked = false;
        for (size_t i = 0; i < n && !blocked; i++)
            blocked = !(placed >> i & 1) && ops[i].status == LIN_OK &&
                      ops[i].complete < ops[j].invoke;
        if (blocked)
            continue;
        const struct lin_op *o = &ops[j];
        uint64_t ns = state;
        bool okstep;
        if (o->kind == LIN_READ) {
            okstep = o->result == state;
        } else if (o->kind == LIN_WRITE) {
            okstep = true;
            ns = o->arg;
        } else if (o->status == LIN_UNKNOWN || o->result) {
            okstep = state == o->arg;
            ns = o->arg2;
        } else {
            okstep = state != o->arg;
        }
        if (okstep && reference(m, ops, n, placed | 1u << j, ns))
            return true;
    }
    ref_seen(m, key, true);
    return false;
}

struct xcheck {
    uint64_t seed;
    int iters;
    size_t minn, maxn;  /* ops per history */
    uint64_t nvals;     /* values 0 .. nvals-1: repeats are common */
    uint64_t span;      /* invocations in [0, span) */
    unsigned pct_cas, pct_unknown;
};

/* Random single-key histories: a third with random results, a third from
 * a real execution (unknown ops taking effect or not), a third from one
 * with one result changed. */
static void cross_check(struct ref_memo *m, const struct xcheck *x)
{
    uint64_t rs = x->seed;
    unsigned counts[2] = { 0, 0 };
    for (int iter = 0; iter < x->iters; iter++) {
        size_t n = x->minn + below(&rs, x->maxn - x->minn + 1);
        struct lin_op all[24], ops[24];
        uint64_t lin[24];
        bool effect[24];
        int mode = (int)below(&rs, 3);
        for (size_t i = 0; i < n; i++) {
            struct lin_op o = { .client = i, .key = 1 };
            unsigned k = (unsigned)below(&rs, 100);
            o.kind = k < x->pct_cas                         ? LIN_CAS
                     : k < x->pct_cas + (100 - x->pct_cas) / 2 ? LIN_READ
                                                               : LIN_WRITE;
            o.arg = below(&rs, x->nvals);
            o.arg2 = below(&rs, x->nvals);
            o.result = o.kind == LIN_CAS ? below(&rs, 2)
                                         : below(&rs, x->nvals);
            o.invoke = below(&rs, x->span);
            o.complete = o.invoke + below(&rs, 8);
            unsigned st = (unsigned)below(&rs, 100);
            o.status = st < x->pct_unknown       ? LIN_UNKNOWN
                       : st < x->pct_unknown + 5 ? LIN_FAIL
                                                 : LIN_OK;
            lin[i] = o.invoke + below(&rs, o.complete - o.invoke + 1);
            if (o.status == LIN_UNKNOWN)
                lin[i] = o.invoke + below(&rs, 3 * x->span / 2);
            effect[i] = o.status == LIN_OK ||
                        (o.status == LIN_UNKNOWN && below(&rs, 2));
            all[i] = o;
        }
        if (mode) { /* results from applying the ops in lin order */
            size_t ord[24];
            for (size_t i = 0; i < n; i++)
                ord[i] = i;
            for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && lin[ord[j - 1]] > lin[ord[j]];
                     j--) {
                    size_t t = ord[j];
                    ord[j] = ord[j - 1];
                    ord[j - 1] = t;
                }
            uint64_t v = 0;
            for (size_t q = 0; q < n; q++) {
                struct lin_op *o = &all[ord[q]];
                if (!effect[ord[q]])
                    continue;
                if (o->kind == LIN_READ) {
                    o->result = v;
                } else if (o->kind == LIN_WRITE) {
                    v = o->arg;
                } else {
                    bool swap = v == o->arg;
                    if (o->status == LIN_OK)
                        o->result = swap;
                    if (swap)
                        v = o->arg2;
                }
            }
            if (mode == 2) {
                size_t q = below(&rs, n);
                if (all[q].kind == LIN_CAS)
                    all[q].result ^= 1;
                else
                    all[q].result = below(&rs, x->nvals);
            }
        }
        struct lin_history *h = lin_history_create();
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            lin_history_add(h, &all[i]);
            if (all[i].status == LIN_OK ||
                (all[i].status == LIN_UNKNOWN && all[i].kind != LIN_READ))
                ops[k++] = all[i]; /* what the reference sees */
        }
        m->now++;
        bool expect = reference(m, ops, k, 0, 0);
        struct lin_result r;
        int v = lin_check(h, 0, &r);
        CHECK_EQ(v, expect ? LIN_LINEARIZABLE : LIN_VIOLATION);
        if (v != (expect ? LIN_LINEARIZABLE : LIN_VIOLATION)) {
            for (size_t i = 0; i < lin_history_len(h); i++) {
                char buf[96];
                lin_op_format(lin_history_op(h, i), buf, sizeof buf);
                fprintf(stderr, "    %zu: %s\n", i, buf);
            }
            lin_history_destroy(h);
            break;
        }
        if (!expect) { /* the ops invoked by bad_time already fail */
            CHECK(r.bad_op < n && all[r.bad_op].status == LIN_OK);
            CHECK(r.bad_time == all[r.bad_op].complete);
            k = 0;
            for (size_t i = 0; i < n; i++)
                if (all[i].invoke <= r.bad_time &&
                    (all[i].status == LIN_OK ||
                     (all[i].status == LIN_UNKNOWN &&
                      all[i].kind != LIN_READ)))
                    ops[k++] = all[i];
            m->now++;
            CHECK(!reference(m, ops, k, 0, 0));
        }
        counts[expect]++;
        lin_history_destroy(h);
    }
    printf("  %d histories of %zu-%zu ops agree with the reference (%u "
           "linearizable, %u not)\n", x->iters, x->minn, x->maxn, counts[1],
           counts[0]);
}

static void test_reference(void)
{
    struct ref_memo m = {
        .key = malloc(REF_SLOTS * sizeof(uint64_t)),
        .stamp = calloc(REF_SLOTS, sizeof(uint32_t)),
    };
    static const struct xcheck xs[] = {
        { 42, 20000, 1, 7, 3, 10, 20, 20 },
        { 43, 20000, 1, 8, 5, 10, 20, 20 },
        { 44, 20000, 1, 8, 6, 10, 40, 40 }, /* junk and failed CAS */
        { 45, 3000, 10, 16, 4, 30, 30, 30 },
        { 46, 3000, 12, 20, 6, 40, 40, 40 },
        { 47, 3000, 12, 20, 2, 30, 30, 50 },
    };
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++)
        cross_check(&m, &xs[i]);
    free(m.key);
    free(m.stamp);
}

int main(void)
{
    RUN(test_sequential);
    RUN(test_concurrent_writes);
    RUN(test_stale_read);
    RUN(test_never_written);
    RUN(test_unknown_write);
    RUN(test_failed_write);
    RUN(test_new_then_old);
    RUN(test_time_ties);
    RUN(test_cas);
    RUN(test_many_keys);
    RUN(test_recording_api);
    RUN(test_reference);
    RUN(test_random);
    RUN(test_gave_up);
    RUN(test_performance);
    return CHECK_DONE();
}
