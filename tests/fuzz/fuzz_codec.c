/* libFuzzer target for the wire codec: decode never crashes or over-reads,
 * and whatever decodes re-encodes to the very same bytes. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define FUZZ_NAME "fuzz_codec"
#include "fuzz.h"

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static bool msg_eq(const struct rabia_msg *a, const struct rabia_msg *b)
{
    return a->type == b->type && a->from == b->from && a->value == b->value &&
           a->has_id == b->has_id && a->phase == b->phase && a->slot == b->slot &&
           a->u64 == b->u64 && a->u64b == b->u64b &&
           rabia_batch_id_eq(&a->id, &b->id) && a->body_len == b->body_len &&
           (a->body_len == 0 || memcmp(a->body, b->body, a->body_len) == 0);
}

/* Walk a batch body; if it validates, rebuild it with the append API and
 * require identical bytes (the batch encoding is canonical too). */
static void check_batch(const uint8_t *body, size_t len)
{
    struct rabia_batch_iter it;
    struct rabia_req r;
    int valid = rabia_batch_validate(body, len);
    if (rabia_batch_iter_init(&it, body, len) != 0) {
        if (valid == 0)
            FAIL("validate accepted a body iter_init refused");
        return;
    }
    struct rabia_buf again = {0};
    if (valid == 0 && rabia_batch_init(&again) != 0)
        FAIL("batch_init failed");
    if (valid == 0)
        rabia_batch_set_time(&again, rabia_batch_time(body, len));
    uint32_t seen = 0;
    int rc;
    while ((rc = rabia_batch_iter_next(&it, &r)) == 1) {
        if (r.op_len && (r.op < body || r.op + r.op_len > body + len))
            FAIL("op points outside the body");
        if (valid == 0 && rabia_batch_append(&again, &r) != 0)
            FAIL("batch_append refused a request that parsed");
        seen++;
    }
    if ((rc == 0) != (valid == 0))
        FAIL("iterator and validate disagree");
    if (valid == 0) {
        if (seen != rabia_batch_count(body, len))
            FAIL("count %u but %u requests", rabia_batch_count(body, len), seen);
        if (again.len != len || memcmp(again.data, body, len) != 0)
            FAIL("batch body does not re-encode to the same bytes");
    }
    rabia_buf_free(&again);
}

/* Everything a successful decode of frame[0..len) must satisfy. */
static void check_decoded(const uint8_t *frame, size_t len, const struct rabia_msg *d)
{
    size_t flen = 0;
    if (rabia_frame_peek(frame, len, &flen) != 0 || flen != len)
        FAIL("peek disagrees with a successful decode");
    if (d->body_len && (d->body < frame || d->body + d->body_len > frame + len))
        FAIL("body points outside the frame");
    size_t sz = rabia_msg_encoded_size(d);
    if (sz != len)
        FAIL("encoded_size %zu, frame was %zu (type %s)", sz, len,
             rabia_msg_type_name(d->type));
    uint8_t *again = malloc(len); /* exact size: ASan sees any overflow */
    if (!again)
        abort();
    if (rabia_msg_encode(d, again, len - 1) != -ENOSPC)
        FAIL("encode into a short buffer did not say -ENOSPC");
    int n = rabia_msg_encode(d, again, len);
    if (n < 0 || (size_t)n != len)
        FAIL("re-encode returned %d for a %zu-byte frame", n, len);
    if (frame[3] == RABIA_FRAME_VERSION_XXH64) {
        /* an older version's frame: re-encoded as the current one, the
         * same bytes but for the version and the checksum */
        if (again[3] != RABIA_PROTOCOL_VERSION || memcmp(again, frame, 3) != 0 ||
            memcmp(again + 4, frame + 4, 8) != 0 || memcmp(again + 16, frame + 16, len - 16) != 0)
            FAIL("a version 2 frame re-encoded differs (type %s)", rabia_msg_type_name(d->type));
    } else if (memcmp(again, frame, len) != 0) {
        FAIL("re-encoded bytes differ (type %s)", rabia_msg_type_name(d->type));
    }
    struct rabia_msg d2;
    if (rabia_msg_decode(again, len, &d2) != 0 || !msg_eq(d, &d2))
        FAIL("decode(encode(m)) != m (type %s)", rabia_msg_type_name(d->type));
    if (d->type == RABIA_MSG_BATCH)
        check_batch(d->body, d->body_len);
    free(again);
}

static void try_decode(const uint8_t *p, size_t len)
{
    struct rabia_msg d;
    int rc = rabia_msg_decode(p, len, &d);
    if (rc == 0) {
        check_decoded(p, len, &d);
    } else {
        static const struct rabia_msg zero;
        if (rc > 0)
            FAIL("decode returned positive %d", rc);
        if (memcmp(&d, &zero, sizeof d) != 0)
            FAIL("failed decode left *out non-zero");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t flen = 0;
    int rc = rabia_frame_peek(data, size, &flen);
    if ((rc == -EAGAIN) != (size < RABIA_FRAME_HEADER))
        FAIL("peek said %d for %zu bytes", rc, size);
    if (rc == 0 && (flen < RABIA_FRAME_HEADER || flen > RABIA_MAX_FRAME))
        FAIL("peek gave frame length %zu", flen);

    /* The input as a whole, and as a stream that starts with a frame. */
    try_decode(data, size);
    if (rc == 0 && flen < size)
        try_decode(data, flen);

    /* Random bytes almost never carry a right length and checksum, which
     * would leave the field checks unexplored: fix both in a copy. */
    if (size >= RABIA_FRAME_HEADER && size - RABIA_FRAME_HEADER <= UINT32_MAX) {
        uint8_t *fixed = malloc(size);
        if (!fixed)
            abort();
        memcpy(fixed, data, size);
        put32(fixed + 8, (uint32_t)(size - RABIA_FRAME_HEADER));
        put32(fixed + 12, rabia_frame_checksum(fixed, size));
        try_decode(fixed, size);
        free(fixed);
    }

    check_batch(data, size);
    if (size > RABIA_FRAME_HEADER) /* a batch body after a frame header */
        check_batch(data + RABIA_FRAME_HEADER, size - RABIA_FRAME_HEADER);
    return 0;
}
