/* The bank example state machine. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bank.h"
#include "check.h"

static uint64_t rng_state;
static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static struct rabia_buf reply;
static struct rabia_bank_result res;

/* Apply the op in o (then clear it) and decode the result into res. */
static void apply(void *sm, struct rabia_buf *o)
{
    rabia_buf_clear(&reply);
    CHECK_EQ(rabia_sm_bank.apply(sm, o->data, o->len, &reply), 0);
    CHECK_EQ(rabia_bank_decode_result(reply.data, reply.len, &res), 0);
    rabia_buf_clear(o);
}

static int text_is(const char *s)
{
    return res.text_len == strlen(s) && memcmp(res.text, s, res.text_len) == 0;
}

static void snap(void *sm, struct rabia_buf *out)
{
    rabia_buf_clear(out);
    CHECK_EQ(rabia_sm_bank.snapshot(sm, out), 0);
}

static int buf_eq(const struct rabia_buf *a, const struct rabia_buf *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void test_operations(void)
{
    void *sm = rabia_sm_bank.create();
    struct rabia_buf o = {0};
    uint64_t bal;

    rabia_bank_encode_create(&o, "alice", 5, 100);
    apply(sm, &o);
    CHECK_EQ(res.kind, RABIA_BANK_R_SUCCESS);
    CHECK(text_is("Account alice created"));
    rabia_bank_encode_create(&o, "alice", 5, 7);
    apply(sm, &o);
    CHECK_EQ(res.kind, RABIA_BANK_R_ERROR);
    CHECK_EQ(res.error, RABIA_BANK_E_EXISTS);
    CHECK(text_is("Account already exists"));
    rabia_bank_encode_create(&o, "bob", 3, 0);
    apply(sm, &o);
    CHECK_EQ(res.kind, RABIA_BANK_R_SUCCESS);

    rabia_bank_encode_deposit(&o, "bob", 3, 50);
    apply(sm, &o);
    CHECK(res.kind == RABIA_BANK_R_SUCCESS && text_is("Deposited 50 to bob"));
    rabia_bank_encode_deposit(&o, "carol", 5, 50);
    apply(sm, &o);
    CHECK(res.kind == RABIA_BANK_R_ERROR && res.error == RABIA_BANK_E_NOT_FOUND);
    CHECK(text_is("Account not found"));

    rabia_bank_encode_withdraw(&o, "alice", 5, 30);
    apply(sm, &o);
    CHECK(res.kind == RABIA_BANK_R_SUCCESS && text_is("Withdrew 30 from alice"));
    rabia_bank_encode_withdraw(&o, "alice", 5, 71);
    apply(sm, &o);
    CHECK(res.kind == RABIA_BANK_R_ERROR && res.error == RABIA_BANK_E_INSUFFICIENT);
    CHECK(text_is("Insufficient funds"));
    rabia_bank_encode_withdraw(&o, "nobody", 6, 1);
    apply(sm, &o);
    CHECK(res.kind == RABIA_BANK_R_ERROR && res.error == RABIA_BANK_E_NOT_FOUND);

    rabia_bank_encode_balance(&o, "alice", 5);
    apply(sm, &o);
    CHECK(res.kind == RABIA_BANK_R_BALANCE && res.balance == 70);
    rabia_bank_encode_balance(&o, "x", 1);
    apply(sm, &o);
    CHECK(res.kind == RABIA_BANK_R_ERROR && res.error == RABIA_BANK_E_NOT_FOUND);

    rabia_bank_encode_transfer(&o, "alice", 5, "bob", 3, 20);
    apply(sm, &o);
    CHECK(res.kind == RABIA_BANK_R_SUCCESS && text_is("Transferred 20 from alice to bob"));
    CHECK(rabia_bank_lookup(sm, "alice", 5, &bal) == 0 && bal == 50);
    CHECK(rabia_bank_lookup(sm, "bob", 3, &bal) == 0 && bal == 70);
    rabia_bank_encode_transfer(&o, "alice", 5, "bob", 3, 51);
    apply(sm, &o);
    CHECK(res.error == RABIA_BANK_E_INSUFFICIENT);
    rabia_bank_encode_transfer(&o, "zed", 3, "bob", 3, 1);
    apply(sm, &o);
    CHECK(res.error == RABIA_BANK_E_NOT_FOUND && text_is("Source account not found"));
    rabia_bank_encode_transfer(&o, "bob", 3, "zed", 3, 1);
    apply(sm, &o);
    CHECK(res.error == RABIA_BANK_E_NOT_FOUND && text_is("Destination account not found"));
    rabia_bank_encode_transfer(&o, "bob", 3, "bob", 3, 70);
    apply(sm, &o);
    CHECK(res.kind == RABIA_BANK_R_SUCCESS);
    CHECK(rabia_bank_lookup(sm, "bob", 3, &bal) == 0 && bal == 70);
    rabia_bank_encode_transfer(&o, "bob", 3, "bob", 3, 71);
    apply(sm, &o);
    CHECK(res.error == RABIA_BANK_E_INSUFFICIENT);

    /* Overflow: deposit and transfer into a full account. */
    rabia_bank_encode_create(&o, "rich", 4, UINT64_MAX - 10);
    apply(sm, &o);
    rabia_bank_encode_deposit(&o, "rich", 4, 11);
    apply(sm, &o);
    CHECK(res.kind == RABIA_BANK_R_ERROR && res.error == RABIA_BANK_E_OVERFLOW);
    rabia_bank_encode_transfer(&o, "bob", 3, "rich", 4, 11);
    apply(sm, &o);
    CHECK(res.kind == RABIA_BANK_R_ERROR && res.error == RABIA_BANK_E_OVERFLOW);
    CHECK(rabia_bank_lookup(sm, "bob", 3, &bal) == 0 && bal == 70);
    rabia_bank_encode_deposit(&o, "rich", 4, 10);
    apply(sm, &o);
    CHECK(res.kind == RABIA_BANK_R_SUCCESS);
    CHECK(rabia_bank_lookup(sm, "rich", 4, &bal) == 0 && bal == UINT64_MAX);

    /* Binary ids, the empty id, prefixes: ALL sorts bytewise. */
    rabia_bank_encode_create(&o, "a\0b", 3, 1);
    apply(sm, &o);
    rabia_bank_encode_create(&o, "", 0, 2);
    apply(sm, &o);
    rabia_bank_encode_create(&o, "a", 1, 3);
    apply(sm, &o);
    rabia_bank_encode_create(&o, "\xff", 1, 4);
    apply(sm, &o);
    rabia_bank_encode_all(&o);
    apply(sm, &o);
    CHECK_EQ(res.kind, RABIA_BANK_R_ALL);
    CHECK_EQ(res.count, 7);
    CHECK_EQ(rabia_bank_count(sm), 7);
    const char *want[] = {"", "a", "a\0b", "alice", "bob", "rich", "\xff"};
    const size_t wlen[] = {0, 1, 3, 5, 3, 4, 1};
    const uint64_t wbal[] = {2, 3, 1, 50, 70, UINT64_MAX, 4};
    size_t pos = 0, k = 0;
    struct rabia_bank_account acct;
    while (rabia_bank_next_account(&res, &pos, &acct)) {
        CHECK(k < 7 && acct.id_len == wlen[k] && memcmp(acct.id, want[k], wlen[k]) == 0);
        CHECK(k < 7 && acct.balance == wbal[k]);
        k++;
    }
    CHECK_EQ(k, 7);
    rabia_buf_free(&o);
    rabia_sm_bank.destroy(sm);
}

static void test_malformed(void)
{
    void *sm = rabia_sm_bank.create();
    struct rabia_buf o = {0}, s1 = {0}, s2 = {0};
    rabia_bank_encode_create(&o, "acct", 4, 10);
    apply(sm, &o);
    snap(sm, &s1);
    struct rabia_buf good = {0};
    rabia_bank_encode_transfer(&good, "acct", 4, "acct", 4, 1);
    /* Every truncation and an extra byte are malformed. */
    for (size_t n = 0; n <= good.len + 1; n++) {
        if (n == good.len)
            continue;
        rabia_buf_clear(&o);
        rabia_buf_append(&o, good.data, good.len);
        rabia_buf_put_u8(&o, 0);
        o.len = n;
        apply(sm, &o);
        CHECK(res.kind == RABIA_BANK_R_ERROR && res.error == RABIA_BANK_E_MALFORMED);
    }
    uint8_t bad_op[] = {0, 7, 255};
    for (size_t i = 0; i < sizeof bad_op; i++) {
        rabia_buf_put_u8(&o, bad_op[i]);
        apply(sm, &o);
        CHECK(res.error == RABIA_BANK_E_MALFORMED);
    }
    /* An id length larger than the op. */
    uint8_t big[] = {RABIA_BANK_BALANCE, 0xff, 0xff, 0xff, 0xff, 'x'};
    rabia_buf_append(&o, big, sizeof big);
    apply(sm, &o);
    CHECK(res.error == RABIA_BANK_E_MALFORMED);
    snap(sm, &s2);
    CHECK(buf_eq(&s1, &s2));
    /* Results that do not decode. */
    struct rabia_bank_result r;
    CHECK_EQ(rabia_bank_decode_result((const uint8_t *)"", 0, &r), -EINVAL);
    CHECK_EQ(rabia_bank_decode_result((const uint8_t *)"\x09", 1, &r), -EINVAL);
    CHECK_EQ(rabia_bank_decode_result((const uint8_t *)"\x01\x01", 2, &r), -EINVAL);
    CHECK_EQ(rabia_bank_decode_result((const uint8_t *)"\x02\x01\0\0\0\0\0\0\0", 9, &r), -EINVAL);
    rabia_buf_free(&o);
    rabia_buf_free(&good);
    rabia_buf_free(&s1);
    rabia_buf_free(&s2);
    rabia_sm_bank.destroy(sm);
}

/* A random operation over accounts "a0".."a{n-1}" (plus a missing one). */
static void random_op(struct rabia_buf *o, int n)
{
    char id1[32], id2[32];
    uint64_t x = rng();
    snprintf(id1, sizeof id1, "a%d", (int)(rng() % (uint64_t)(n + 1)));
    snprintf(id2, sizeof id2, "a%d", (int)(rng() % (uint64_t)(n + 1)));
    uint64_t amount = rng() % 200;
    switch (x % 7) {
    case 0: rabia_bank_encode_create(o, id1, strlen(id1), amount); break;
    case 1: rabia_bank_encode_deposit(o, id1, strlen(id1), amount); break;
    case 2: rabia_bank_encode_withdraw(o, id1, strlen(id1), amount); break;
    case 3: case 4: rabia_bank_encode_transfer(o, id1, strlen(id1), id2, strlen(id2), amount); break;
    case 5: rabia_bank_encode_balance(o, id1, strlen(id1)); break;
    default: rabia_bank_encode_all(o); break;
    }
}

static void test_determinism(void)
{
    void *a = rabia_sm_bank.create(), *b = rabia_sm_bank.create();
    struct rabia_buf o = {0}, ra = {0}, rb = {0}, sa = {0}, sb = {0};
    rng_state = 777;
    for (int i = 0; i < 20000; i++) {
        random_op(&o, 200);
        rabia_buf_clear(&ra);
        rabia_buf_clear(&rb);
        CHECK_EQ(rabia_sm_bank.apply(a, o.data, o.len, &ra), 0);
        CHECK_EQ(rabia_sm_bank.apply(b, o.data, o.len, &rb), 0);
        CHECK(buf_eq(&ra, &rb));
        rabia_buf_clear(&o);
    }
    snap(a, &sa);
    snap(b, &sb);
    CHECK(buf_eq(&sa, &sb));
    CHECK(rabia_bank_count(a) > 100);
    rabia_buf_free(&o);
    rabia_buf_free(&ra);
    rabia_buf_free(&rb);
    rabia_buf_free(&sa);
    rabia_buf_free(&sb);
    rabia_sm_bank.destroy(a);
    rabia_sm_bank.destroy(b);
}

static uint64_t total(void *sm)
{
    struct rabia_buf o = {0};
    rabia_bank_encode_all(&o);
    apply(sm, &o);
    rabia_buf_free(&o);
    CHECK_EQ(res.kind, RABIA_BANK_R_ALL);
    uint64_t sum = 0;
    size_t pos = 0;
    struct rabia_bank_account acct;
    while (rabia_bank_next_account(&res, &pos, &acct))
        sum += acct.balance;
    return sum;
}

static void test_conservation(void)
{
    void *sm = rabia_sm_bank.create();
    struct rabia_buf o = {0};
    const int n = 50;
    uint64_t expect = 0;
    char id1[32], id2[32];
    rng_state = 4242;
    for (int i = 0; i < n; i++) {
        snprintf(id1, sizeof id1, "acct-%d", i);
        uint64_t init = rng() % 1000;
        rabia_bank_encode_create(&o, id1, strlen(id1), init);
        apply(sm, &o);
        expect += init;
    }
    CHECK_EQ(total(sm), expect);
    int ok_transfers = 0, failed = 0;
    for (int i = 0; i < 10000; i++) {
        snprintf(id1, sizeof id1, "acct-%d", (int)(rng() % n));
        snprintf(id2, sizeof id2, "acct-%d", (int)(rng() % n));
        uint64_t amount = rng() % 300;
        if (rng() % 2) {
            rabia_bank_encode_transfer(&o, id1, strlen(id1), id2, strlen(id2), amount);
            apply(sm, &o);
            if (res.kind == RABIA_BANK_R_SUCCESS)
                ok_transfers++;
            else
                failed++;
        } else {
            /* A withdraw/deposit pair: the money leaves and comes back
             * elsewhere, or only the deposit happens if funds lack. */
            rabia_bank_encode_withdraw(&o, id1, strlen(id1), amount);
            apply(sm, &o);
            if (res.kind == RABIA_BANK_R_SUCCESS)
                expect -= amount;
            rabia_bank_encode_deposit(&o, id2, strlen(id2), amount);
            apply(sm, &o);
            CHECK_EQ(res.kind, RABIA_BANK_R_SUCCESS);
            expect += amount;
        }
        if (i % 1000 == 0)
            CHECK_EQ(total(sm), expect);
    }
    CHECK_EQ(total(sm), expect);
    CHECK(ok_transfers > 1000 && failed > 100);
    rabia_buf_free(&o);
    rabia_sm_bank.destroy(sm);
}

static void test_snapshot(void)
{
    void *a = rabia_sm_bank.create(), *b = rabia_sm_bank.create(), *c = rabia_sm_bank.create();
    struct rabia_buf o = {0}, s1 = {0}, s2 = {0}, s3 = {0}, bad = {0};
    rng_state = 99;
    for (int i = 0; i < 3000; i++)
        random_op(&o, 1000), apply(a, &o);
    snap(a, &s1);
    CHECK_EQ(rabia_sm_bank.restore(b, s1.data, s1.len), 0);
    snap(b, &s2);
    CHECK(buf_eq(&s1, &s2));
    CHECK_EQ(rabia_bank_count(b), rabia_bank_count(a));
    /* Same state reached in another order gives the same bytes: create
     * the accounts of a in reverse order into c. */
    rabia_bank_encode_all(&o);
    apply(a, &o);
    struct rabia_buf all = {0};
    rabia_buf_append(&all, reply.data, reply.len);
    struct rabia_bank_result ar;
    CHECK_EQ(rabia_bank_decode_result(all.data, all.len, &ar), 0);
    struct rabia_bank_account *accts = calloc(ar.count, sizeof *accts);
    size_t pos = 0, k = 0;
    while (rabia_bank_next_account(&ar, &pos, &accts[k]))
        k++;
    while (k--) {
        rabia_bank_encode_create(&o, accts[k].id, accts[k].id_len, accts[k].balance);
        apply(c, &o);
    }
    snap(c, &s3);
    CHECK(buf_eq(&s1, &s3));
    free(accts);
    rabia_buf_free(&all);

    /* Empty bank round trip. */
    void *e = rabia_sm_bank.create();
    snap(e, &s3);
    CHECK_EQ(s3.len, 9);
    CHECK_EQ(rabia_sm_bank.restore(c, s3.data, s3.len), 0);
    CHECK_EQ(rabia_bank_count(c), 0);
    rabia_sm_bank.destroy(e);

    /* Corrupt snapshots: rejected, b unchanged. */
    for (size_t n = 0; n < s1.len; n += (n < 64 ? 1 : 97))
        CHECK_EQ(rabia_sm_bank.restore(b, s1.data, n), -EINVAL);
    rabia_buf_append(&bad, s1.data, s1.len);
    rabia_buf_put_u8(&bad, 0);
    CHECK_EQ(rabia_sm_bank.restore(b, bad.data, bad.len), -EINVAL);
    bad.len = s1.len;
    bad.data[0] = 9; /* version */
    CHECK_EQ(rabia_sm_bank.restore(b, bad.data, bad.len), -EINVAL);
    bad.data[0] = 1;
    bad.data[8] = 0x7f; /* absurd count */
    CHECK_EQ(rabia_sm_bank.restore(b, bad.data, bad.len), -EINVAL);
    /* Two accounts out of order, and a duplicate. */
    rabia_buf_clear(&bad);
    rabia_buf_put_u8(&bad, 1);
    rabia_buf_put_u64(&bad, 2);
    rabia_buf_put_u32(&bad, 1), rabia_buf_append(&bad, "b", 1), rabia_buf_put_u64(&bad, 1);
    rabia_buf_put_u32(&bad, 1), rabia_buf_append(&bad, "a", 1), rabia_buf_put_u64(&bad, 1);
    CHECK_EQ(rabia_sm_bank.restore(b, bad.data, bad.len), -EINVAL);
    bad.data[9 + 4 + 1 + 8 + 4] = 'b';
    CHECK_EQ(rabia_sm_bank.restore(b, bad.data, bad.len), -EINVAL);
    bad.data[9 + 4 + 1 + 8 + 4] = 'c';
    CHECK_EQ(rabia_sm_bank.restore(c, bad.data, bad.len), 0); /* now valid */
    CHECK_EQ(rabia_bank_count(c), 2);
    snap(b, &s2);
    CHECK(buf_eq(&s1, &s2));

    rabia_buf_free(&o);
    rabia_buf_free(&s1);
    rabia_buf_free(&s2);
    rabia_buf_free(&s3);
    rabia_buf_free(&bad);
    rabia_sm_bank.destroy(a);
    rabia_sm_bank.destroy(b);
    rabia_sm_bank.destroy(c);
}

/* query (reads without a slot): well-formed BALANCE and ALL are reads,
 * answered as apply would answer them, changing nothing; the rest (and
 * anything malformed) goes through the log. */
static void test_query(void)
{
    void *sm = rabia_sm_bank.create();
    struct rabia_buf o = {0}, q = {0}, a = {0}, s1 = {0}, s2 = {0};
    rng_state = 11;
    static const char *ids[] = {"alice", "bob", "carol", "dave", "eve"};
    for (int i = 0; i < 3000; i++) {
        int kind = (int)(rng() % 6);
        const char *id = ids[rng() % 5], *to = ids[rng() % 5];
        uint64_t amt = rng() % 200;
        rabia_buf_clear(&o);
        switch (kind) {
        case 0: rabia_bank_encode_create(&o, id, strlen(id), amt); break;
        case 1: rabia_bank_encode_deposit(&o, id, strlen(id), amt); break;
        case 2: rabia_bank_encode_withdraw(&o, id, strlen(id), amt); break;
        case 3: rabia_bank_encode_transfer(&o, id, strlen(id), to, strlen(to), amt); break;
        case 4: rabia_bank_encode_balance(&o, id, strlen(id)); break;
        default: rabia_bank_encode_all(&o); break;
        }
        int cls = rabia_sm_bank.query(sm, o.data, o.len, 0, NULL);
        CHECK_EQ(cls, kind >= 4 ? 0 : 1);
        rabia_buf_clear(&q);
        snap(sm, &s1);
        CHECK_EQ(rabia_sm_bank.query(sm, o.data, o.len, 5, &q), cls);
        snap(sm, &s2);
        CHECK(buf_eq(&s1, &s2)); /* nothing changed */
        rabia_buf_clear(&a);
        CHECK_EQ(rabia_sm_bank.apply(sm, o.data, o.len, &a), 0);
        if (cls == 0) CHECK(buf_eq(&q, &a));
        else CHECK_EQ(q.len, 0);
    }
    /* malformed: a BALANCE cut short, ALL with a byte after it, no opcode */
    rabia_buf_clear(&o);
    rabia_bank_encode_balance(&o, "alice", 5);
    CHECK_EQ(rabia_sm_bank.query(sm, o.data, o.len - 1, 0, NULL), 1);
    rabia_buf_clear(&o);
    rabia_bank_encode_all(&o);
    rabia_buf_put_u8(&o, 0);
    CHECK_EQ(rabia_sm_bank.query(sm, o.data, o.len, 0, NULL), 1);
    CHECK_EQ(rabia_sm_bank.query(sm, o.data, 0, 0, NULL), 1);
    rabia_buf_free(&o);
    rabia_buf_free(&q);
    rabia_buf_free(&a);
    rabia_buf_free(&s1);
    rabia_buf_free(&s2);
    rabia_sm_bank.destroy(sm);
}

int main(void)
{
    RUN(test_operations);
    RUN(test_malformed);
    RUN(test_determinism);
    RUN(test_conservation);
    RUN(test_snapshot);
    RUN(test_query);
    rabia_buf_free(&reply);
    return CHECK_DONE();
}
