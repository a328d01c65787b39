/* The counter example state machine: see counter.h for the encodings. */
#include "counter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "ex_codec.h"

#define COUNTER_SNAPSHOT_VERSION 1

struct counter {
    int64_t value;
};

static void *counter_create(void)
{
    return calloc(1, sizeof(struct counter));
}

static void counter_destroy(void *sm)
{
    free(sm);
}

static int put_value(struct rabia_buf *reply, int64_t v)
{
    int rc = rabia_buf_put_u8(reply, 0);
    return rc ? rc : rabia_buf_put_u64(reply, (uint64_t)v);
}

static int put_error(struct rabia_buf *reply, const char *why)
{
    size_t n = strlen(why);
    int rc = rabia_buf_put_u8(reply, 1);
    if (!rc)
        rc = rabia_buf_put_u32(reply, (uint32_t)n);
    return rc ? rc : rabia_buf_append(reply, why, n);
}

static int counter_apply(void *sm, const uint8_t *op, size_t op_len, struct rabia_buf *reply)
{
    struct counter *c = sm;
    if (op_len == 0)
        return put_error(reply, "malformed operation");
    switch (op[0]) {
    case RABIA_COUNTER_INC:
        if (op_len != 1)
            break;
        if (c->value == INT64_MAX)
            return put_error(reply, "overflow");
        c->value++;
        return put_value(reply, c->value);
    case RABIA_COUNTER_DEC:
        if (op_len != 1)
            break;
        if (c->value == INT64_MIN)
            return put_error(reply, "overflow");
        c->value--;
        return put_value(reply, c->value);
    case RABIA_COUNTER_GET:
        if (op_len != 1)
            break;
        return put_value(reply, c->value);
    case RABIA_COUNTER_SET:
        if (op_len != 9)
            break;
        c->value = (int64_t)ex_le64(op + 1);
        return put_value(reply, c->value);
    default:
        break;
    }
    return put_error(reply, "malformed operation");
}

/* The snapshot's bytes: the version, then the value (u64, little endian). */
#define COUNTER_SNAPSHOT_LEN 9
static void counter_encode_state(const struct counter *c, uint8_t b[COUNTER_SNAPSHOT_LEN])
{
    b[0] = COUNTER_SNAPSHOT_VERSION;
    for (int i = 0; i < 8; i++)
        b[1 + i] = (uint8_t)((uint64_t)c->value >> (8 * i));
}

static int counter_snapshot(void *sm, struct rabia_buf *out)
{
    uint8_t b[COUNTER_SNAPSHOT_LEN];
    counter_encode_state(sm, b);
    return rabia_buf_append(out, b, sizeof b);
}

static int counter_restore(void *sm, const uint8_t *data, size_t len)
{
    struct counter *c = sm;
    if (len != COUNTER_SNAPSHOT_LEN || data[0] != COUNTER_SNAPSHOT_VERSION)
        return -EINVAL;
    c->value = (int64_t)ex_le64(data + 1);
    return 0;
}

/* The state hash, O(1): exactly what the apply layer takes without this op
 * (XXH3 of the 9-byte snapshot, core/rsm.c), so snapshots and status
 * hashes of builds before it compare equal with it. Having the op is what
 * lets rabiad compare replicas every 1024 slots (replica/hashcheck.c),
 * which it does only for state machines that keep their hash. */
static int counter_state_hash(void *sm, uint64_t *out)
{
    uint8_t b[COUNTER_SNAPSHOT_LEN];
    counter_encode_state(sm, b);
    *out = XXH3_64bits(b, sizeof b);
    return 0;
}

/* Reads without a slot (state_machine.h, query): GET is the one read. A
 * malformed op goes through the log, which answers it with the error. */
static int counter_query(void *sm, const uint8_t *op, size_t op_len, uint64_t now_ms, struct rabia_buf *reply)
{
    (void)now_ms; /* the counter keeps no clock */
    if (op_len != 1 || op[0] != RABIA_COUNTER_GET)
        return 1;
    if (!reply)
        return 0;
    const struct counter *c = sm;
    return put_value(reply, c->value);
}

const struct rabia_sm_ops rabia_sm_counter = {
    .name = "counter",
    .create = counter_create,
    .destroy = counter_destroy,
    .apply = counter_apply,
    .snapshot = counter_snapshot,
    .restore = counter_restore,
    .query = counter_query,
    .state_hash = counter_state_hash,
};

int rabia_counter_encode(struct rabia_buf *out, enum rabia_counter_op op, int64_t value)
{
    switch (op) {
    case RABIA_COUNTER_INC:
    case RABIA_COUNTER_DEC:
    case RABIA_COUNTER_GET:
        return rabia_buf_put_u8(out, (uint8_t)op);
    case RABIA_COUNTER_SET: {
        int rc = rabia_buf_reserve(out, 9);
        if (rc)
            return rc;
        rabia_buf_put_u8(out, (uint8_t)op);
        return rabia_buf_put_u64(out, (uint64_t)value);
    }
    }
    return -EINVAL;
}

int rabia_counter_decode_result(const uint8_t *p, size_t len, int64_t *value,
                                const char **err, size_t *err_len)
{
    struct ex_rd r = ex_rd_init(p, len);
    uint8_t tag;
    if (!ex_get_u8(&r, &tag))
        return -EINVAL;
    if (tag == 0) {
        uint64_t v;
        if (!ex_get_u64(&r, &v) || ex_rd_left(&r))
            return -EINVAL;
        if (value)
            *value = (int64_t)v;
        return 0;
    }
    if (tag == 1) {
        const uint8_t *s;
        uint32_t n;
        if (!ex_get_str(&r, &s, &n) || ex_rd_left(&r))
            return -EINVAL;
        if (err)
            *err = (const char *)s;
        if (err_len)
            *err_len = n;
        return 1;
    }
    return -EINVAL;
}

int64_t rabia_counter_value(const void *sm)
{
    return ((const struct counter *)sm)->value;
}
