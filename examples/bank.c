/* The bank example state machine: see bank.h for the encodings.
 *
 * Accounts live in an open-addressing hash table (linear probing, XXH64 of
 * the id with a fixed seed, power-of-two capacity, at most 3/4 full).
 * Accounts are never deleted, so no tombstones are needed. The table's
 * order never reaches a result or a snapshot: those sort by id. */
#include "bank.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "ex_codec.h"

#define BANK_SNAPSHOT_VERSION 1
#define BANK_HASH_SEED 0x62616e6bull /* "bank"; any fixed value */

struct acct {
    uint8_t *id;       /* malloc'd, NULL marks an empty table entry */
    uint32_t id_len;
    uint64_t hash;
    uint64_t balance;
};

struct bank {
    struct acct *tab;
    size_t cap;        /* 0 or a power of two */
    size_t count;
};

static uint64_t id_hash(const uint8_t *id, size_t len)
{
    return XXH64(id, len, BANK_HASH_SEED);
}

static void *bank_create(void)
{
    return calloc(1, sizeof(struct bank));
}

static void table_free(struct acct *tab, size_t cap)
{
    for (size_t i = 0; i < cap; i++)
        free(tab[i].id);
    free(tab);
}

static void bank_destroy(void *sm)
{
    struct bank *b = sm;
    if (!b)
        return;
    table_free(b->tab, b->cap);
    free(b);
}

static struct acct *bank_find(const struct bank *b, const uint8_t *id, size_t len)
{
    if (!b->cap)
        return NULL;
    uint64_t h = id_hash(id, len);
    size_t mask = b->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        struct acct *a = &b->tab[i];
        if (!a->id)
            return NULL;
        if (a->hash == h && a->id_len == len && (len == 0 || memcmp(a->id, id, len) == 0))
            return a;
    }
}

/* Place an entry into a table known to have room and not to hold its id. */
static void table_place(struct acct *tab, size_t cap, const struct acct *e)
{
    size_t mask = cap - 1;
    size_t i = (size_t)e->hash & mask;
    while (tab[i].id)
        i = (i + 1) & mask;
    tab[i] = *e;
}

/* Make room for one more account. */
static int bank_reserve(struct bank *b, size_t more)
{
    size_t need = b->count + more;
    size_t cap = b->cap ? b->cap : 16;
    while (need > cap / 4 * 3) {
        if (cap > SIZE_MAX / 2 / sizeof(struct acct))
            return -ENOMEM;
        cap *= 2;
    }
    if (cap == b->cap)
        return 0;
    struct acct *tab = calloc(cap, sizeof *tab);
    if (!tab)
        return -ENOMEM;
    for (size_t i = 0; i < b->cap; i++)
        if (b->tab[i].id)
            table_place(tab, cap, &b->tab[i]);
    free(b->tab);
    b->tab = tab;
    b->cap = cap;
    return 0;
}

/* ---- results ---- */

static int put_str(struct rabia_buf *out, const void *s, size_t n)
{
    int rc = rabia_buf_put_u32(out, (uint32_t)n);
    return rc ? rc : rabia_buf_append(out, s, n);
}

static int put_error(struct rabia_buf *reply, enum rabia_bank_error code, const char *why)
{
    int rc = rabia_buf_put_u8(reply, RABIA_BANK_R_ERROR);
    if (!rc)
        rc = rabia_buf_put_u8(reply, (uint8_t)code);
    return rc ? rc : put_str(reply, why, strlen(why));
}

/* SUCCESS with the message "<a><amount><b><id1>[<c><id2>]": the message
 * is assembled in place after a length placeholder. */
static int put_success(struct rabia_buf *reply, const char *a, const uint64_t *amount,
                       const char *b, const uint8_t *id1, uint32_t len1, const char *c,
                       const uint8_t *id2, uint32_t len2)
{
    char num[24] = "";
    int rc = rabia_buf_put_u8(reply, RABIA_BANK_R_SUCCESS);
    if (rc)
        return rc;
    size_t at = reply->len;
    if ((rc = rabia_buf_put_u32(reply, 0)))
        return rc;
    if (amount)
        snprintf(num, sizeof num, "%" PRIu64, *amount);
    if ((rc = rabia_buf_append(reply, a, strlen(a))) ||
        (rc = rabia_buf_append(reply, num, strlen(num))) ||
        (rc = rabia_buf_append(reply, b, strlen(b))) ||
        (rc = rabia_buf_append(reply, id1, len1)))
        return rc;
    if (c && ((rc = rabia_buf_append(reply, c, strlen(c))) ||
              (rc = rabia_buf_append(reply, id2, len2))))
        return rc;
    size_t n = reply->len - at - 4;
    if (n > UINT32_MAX) { /* ids are < 4 GiB each; two of them could pass it */
        n = UINT32_MAX;
        reply->len = at + 4 + n;
    }
    for (int i = 0; i < 4; i++)
        reply->data[at + (size_t)i] = (uint8_t)(n >> (8 * i));
    return 0;
}

static int cmp_acct_ptr(const void *x, const void *y)
{
    const struct acct *a = *(const struct acct *const *)x;
    const struct acct *b = *(const struct acct *const *)y;
    return ex_keycmp(a->id, a->id_len, b->id, b->id_len);
}

/* Pointers to the accounts sorted by id (NULL for an empty bank). */
static int sorted_accounts(const struct bank *b, const struct acct ***out)
{
    *out = NULL;
    if (!b->count)
        return 0;
    const struct acct **v = malloc(b->count * sizeof *v);
    if (!v)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < b->cap; i++)
        if (b->tab[i].id)
            v[n++] = &b->tab[i];
    qsort(v, n, sizeof *v, cmp_acct_ptr);
    *out = v;
    return 0;
}

/* u64 count, then (str id, u64 balance) in id order. */
static int put_account_list(const struct bank *b, struct rabia_buf *out)
{
    const struct acct **v;
    int rc = sorted_accounts(b, &v);
    if (rc)
        return rc;
    rc = rabia_buf_put_u64(out, b->count);
    for (size_t i = 0; !rc && i < b->count; i++) {
        rc = put_str(out, v[i]->id, v[i]->id_len);
        if (!rc)
            rc = rabia_buf_put_u64(out, v[i]->balance);
    }
    free(v);
    return rc;
}

/* ---- apply ---- */

static int op_create(struct bank *b, const uint8_t *id, uint32_t len, uint64_t initial,
                     struct rabia_buf *reply)
{
    if (bank_find(b, id, len))
        return put_error(reply, RABIA_BANK_E_EXISTS, "Account already exists");
    int rc = bank_reserve(b, 1);
    if (rc)
        return rc;
    struct acct e = {.id = malloc(len ? len : 1), .id_len = len, .hash = id_hash(id, len),
                     .balance = initial};
    if (!e.id)
        return -ENOMEM;
    if (len)
        memcpy(e.id, id, len);
    /* Reserve the reply's room first so that a failure cannot leave an
     * account created without its reply. */
    if ((rc = rabia_buf_reserve(reply, 32 + (size_t)len))) {
        free(e.id);
        return rc;
    }
    table_place(b->tab, b->cap, &e);
    b->count++;
    return put_success(reply, "Account ", NULL, "", id, len, " created", NULL, 0);
}

static int bank_apply(void *sm, const uint8_t *op, size_t op_len, struct rabia_buf *reply)
{
    struct bank *b = sm;
    struct ex_rd r = ex_rd_init(op, op_len);
    uint8_t code;
    const uint8_t *id = NULL, *to = NULL;
    uint32_t len = 0, to_len = 0;
    uint64_t amount = 0;
    struct acct *a, *t;

    if (!ex_get_u8(&r, &code))
        goto malformed;
    switch (code) {
    case RABIA_BANK_CREATE:
    case RABIA_BANK_DEPOSIT:
    case RABIA_BANK_WITHDRAW:
        if (!ex_get_str(&r, &id, &len) || !ex_get_u64(&r, &amount))
            goto malformed;
        break;
    case RABIA_BANK_TRANSFER:
        if (!ex_get_str(&r, &id, &len) || !ex_get_str(&r, &to, &to_len) ||
            !ex_get_u64(&r, &amount))
            goto malformed;
        break;
    case RABIA_BANK_BALANCE:
        if (!ex_get_str(&r, &id, &len))
            goto malformed;
        break;
    case RABIA_BANK_ALL:
        break;
    default:
        goto malformed;
    }
    if (ex_rd_left(&r))
        goto malformed;

    switch (code) {
    case RABIA_BANK_CREATE:
        return op_create(b, id, len, amount, reply);
    case RABIA_BANK_DEPOSIT:
        if (!(a = bank_find(b, id, len)))
            return put_error(reply, RABIA_BANK_E_NOT_FOUND, "Account not found");
        if (a->balance > UINT64_MAX - amount)
            return put_error(reply, RABIA_BANK_E_OVERFLOW, "Balance overflow");
        a->balance += amount;
        return put_success(reply, "Deposited ", &amount, " to ", id, len, NULL, NULL, 0);
    case RABIA_BANK_WITHDRAW:
        if (!(a = bank_find(b, id, len)))
            return put_error(reply, RABIA_BANK_E_NOT_FOUND, "Account not found");
        if (a->balance < amount)
            return put_error(reply, RABIA_BANK_E_INSUFFICIENT, "Insufficient funds");
        a->balance -= amount;
        return put_success(reply, "Withdrew ", &amount, " from ", id, len, NULL, NULL, 0);
    case RABIA_BANK_TRANSFER:
        if (!(a = bank_find(b, id, len)))
            return put_error(reply, RABIA_BANK_E_NOT_FOUND, "Source account not found");
        if (a->balance < amount)
            return put_error(reply, RABIA_BANK_E_INSUFFICIENT, "Insufficient funds");
        if (!(t = bank_find(b, to, to_len)))
            return put_error(reply, RABIA_BANK_E_NOT_FOUND, "Destination account not found");
        if (t != a) {
            if (t->balance > UINT64_MAX - amount)
                return put_error(reply, RABIA_BANK_E_OVERFLOW, "Balance overflow");
            a->balance -= amount;
            t->balance += amount;
        }
        return put_success(reply, "Transferred ", &amount, " from ", id, len, " to ", to, to_len);
    case RABIA_BANK_BALANCE: {
        if (!(a = bank_find(b, id, len)))
            return put_error(reply, RABIA_BANK_E_NOT_FOUND, "Account not found");
        int rc = rabia_buf_put_u8(reply, RABIA_BANK_R_BALANCE);
        return rc ? rc : rabia_buf_put_u64(reply, a->balance);
    }
    case RABIA_BANK_ALL: {
        int rc = rabia_buf_put_u8(reply, RABIA_BANK_R_ALL);
        return rc ? rc : put_account_list(b, reply);
    }
    }
malformed:
    return put_error(reply, RABIA_BANK_E_MALFORMED, "Malformed operation");
}

/* ---- snapshot ---- */

static int bank_snapshot(void *sm, struct rabia_buf *out)
{
    int rc = rabia_buf_put_u8(out, BANK_SNAPSHOT_VERSION);
    return rc ? rc : put_account_list(sm, out);
}

static int bank_restore(void *sm, const uint8_t *data, size_t len)
{
    struct bank *b = sm;
    struct ex_rd r = ex_rd_init(data, len);
    uint8_t version;
    uint64_t count;
    if (!ex_get_u8(&r, &version) || version != BANK_SNAPSHOT_VERSION ||
        !ex_get_u64(&r, &count))
        return -EINVAL;
    /* Each account takes at least 12 bytes: rejects absurd counts before
     * sizing anything by them. */
    if (count > ex_rd_left(&r) / 12)
        return -EINVAL;
    struct bank nb = {0};
    int rc = bank_reserve(&nb, (size_t)count);
    if (rc)
        return rc;
    const uint8_t *prev = NULL;
    uint32_t prev_len = 0;
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *id;
        uint32_t id_len;
        uint64_t bal;
        if (!ex_get_str(&r, &id, &id_len) || !ex_get_u64(&r, &bal) ||
            (i > 0 && ex_keycmp(prev, prev_len, id, id_len) >= 0)) {
            rc = -EINVAL;
            goto fail;
        }
        struct acct e = {.id = malloc(id_len ? id_len : 1), .id_len = id_len,
                         .hash = id_hash(id, id_len), .balance = bal};
        if (!e.id) {
            rc = -ENOMEM;
            goto fail;
        }
        if (id_len)
            memcpy(e.id, id, id_len);
        table_place(nb.tab, nb.cap, &e);
        nb.count++;
        prev = id;
        prev_len = id_len;
    }
    if (ex_rd_left(&r)) {
        rc = -EINVAL;
        goto fail;
    }
    table_free(b->tab, b->cap);
    *b = nb;
    return 0;
fail:
    table_free(nb.tab, nb.cap);
    return rc;
}

/* Reads without a slot (state_machine.h, query): a well-formed BALANCE or
 * ALL, answered by apply itself, which changes nothing for those two.
 * Anything else (malformed ones included) goes through the log. */
static int bank_query(void *sm, const uint8_t *op, size_t op_len, uint64_t now_ms, struct rabia_buf *reply)
{
    (void)now_ms; /* the bank keeps no clock */
    struct ex_rd r = ex_rd_init(op, op_len);
    uint8_t code;
    const uint8_t *id;
    uint32_t len;
    if (!ex_get_u8(&r, &code))
        return 1;
    if (code == RABIA_BANK_BALANCE) {
        if (!ex_get_str(&r, &id, &len))
            return 1;
    } else if (code != RABIA_BANK_ALL) {
        return 1;
    }
    if (ex_rd_left(&r))
        return 1;
    return reply ? bank_apply(sm, op, op_len, reply) : 0;
}

const struct rabia_sm_ops rabia_sm_bank = {
    .name = "bank",
    .create = bank_create,
    .destroy = bank_destroy,
    .apply = bank_apply,
    .snapshot = bank_snapshot,
    .restore = bank_restore,
    .query = bank_query,
};

/* ---- client helpers ---- */

static int encode(struct rabia_buf *out, uint8_t code, const void *id, size_t id_len,
                  const void *to, size_t to_len, int has_amount, uint64_t amount)
{
    if (id_len > UINT32_MAX || to_len > UINT32_MAX)
        return -EINVAL;
    size_t at = out->len;
    int rc = rabia_buf_put_u8(out, code);
    if (!rc && id)
        rc = put_str(out, id, id_len);
    if (!rc && to)
        rc = put_str(out, to, to_len);
    if (!rc && has_amount)
        rc = rabia_buf_put_u64(out, amount);
    if (rc)
        out->len = at;
    return rc;
}

int rabia_bank_encode_create(struct rabia_buf *out, const void *id, size_t id_len, uint64_t initial)
{
    return encode(out, RABIA_BANK_CREATE, id ? id : "", id_len, NULL, 0, 1, initial);
}

int rabia_bank_encode_deposit(struct rabia_buf *out, const void *id, size_t id_len, uint64_t amount)
{
    return encode(out, RABIA_BANK_DEPOSIT, id ? id : "", id_len, NULL, 0, 1, amount);
}

int rabia_bank_encode_withdraw(struct rabia_buf *out, const void *id, size_t id_len, uint64_t amount)
{
    return encode(out, RABIA_BANK_WITHDRAW, id ? id : "", id_len, NULL, 0, 1, amount);
}

int rabia_bank_encode_transfer(struct rabia_buf *out, const void *from, size_t from_len,
                               const void *to, size_t to_len, uint64_t amount)
{
    return encode(out, RABIA_BANK_TRANSFER, from ? from : "", from_len, to ? to : "", to_len,
                  1, amount);
}

int rabia_bank_encode_balance(struct rabia_buf *out, const void *id, size_t id_len)
{
    return encode(out, RABIA_BANK_BALANCE, id ? id : "", id_len, NULL, 0, 0, 0);
}

int rabia_bank_encode_all(struct rabia_buf *out)
{
    return encode(out, RABIA_BANK_ALL, NULL, 0, NULL, 0, 0, 0);
}

int rabia_bank_decode_result(const uint8_t *p, size_t len, struct rabia_bank_result *out)
{
    struct ex_rd r = ex_rd_init(p, len);
    uint8_t kind;
    memset(out, 0, sizeof *out);
    if (!ex_get_u8(&r, &kind))
        return -EINVAL;
    out->kind = kind;
    switch (kind) {
    case RABIA_BANK_R_SUCCESS:
        if (!ex_get_str(&r, &out->text, &out->text_len))
            return -EINVAL;
        break;
    case RABIA_BANK_R_BALANCE:
        if (!ex_get_u64(&r, &out->balance))
            return -EINVAL;
        break;
    case RABIA_BANK_R_ALL:
        if (!ex_get_u64(&r, &out->count))
            return -EINVAL;
        out->accounts = r.p;
        for (uint64_t i = 0; i < out->count; i++) {
            const uint8_t *id;
            uint32_t n;
            uint64_t bal;
            if (!ex_get_str(&r, &id, &n) || !ex_get_u64(&r, &bal))
                return -EINVAL;
        }
        out->accounts_len = (size_t)(r.p - out->accounts);
        break;
    case RABIA_BANK_R_ERROR:
        if (!ex_get_u8(&r, &out->error) || !ex_get_str(&r, &out->text, &out->text_len))
            return -EINVAL;
        break;
    default:
        return -EINVAL;
    }
    return ex_rd_left(&r) ? -EINVAL : 0;
}

int rabia_bank_next_account(const struct rabia_bank_result *res, size_t *pos,
                            struct rabia_bank_account *acct)
{
    if (res->kind != RABIA_BANK_R_ALL || *pos >= res->accounts_len)
        return 0;
    struct ex_rd r = ex_rd_init(res->accounts + *pos, res->accounts_len - *pos);
    if (!ex_get_str(&r, &acct->id, &acct->id_len) || !ex_get_u64(&r, &acct->balance))
        return 0;
    *pos = (size_t)(r.p - res->accounts);
    return 1;
}

uint64_t rabia_bank_count(const void *sm)
{
    return ((const struct bank *)sm)->count;
}

int rabia_bank_lookup(const void *sm, const void *id, size_t id_len, uint64_t *balance)
{
    const struct acct *a = bank_find(sm, id_len ? id : (const void *)"", id_len);
    if (!a)
        return -ENOENT;
    *balance = a->balance;
    return 0;
}
