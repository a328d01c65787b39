/* struct rabia_buf: a growable byte buffer (see rabia/state_machine.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "le.h"
#include "rabia/state_machine.h"

int rabia_buf_reserve(struct rabia_buf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX - b->len)
        return -ENOMEM;
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int rabia_buf_append(struct rabia_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = rabia_buf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Fixed-size puts store in place (one move): through rabia_buf_append
 * each was a call to memcpy of 1-8 bytes. */
int rabia_buf_put_u8(struct rabia_buf *b, uint8_t v)
{
    int rc = rabia_buf_reserve(b, 1);
    if (!rc)
        b->data[b->len++] = v;
    return rc;
}

int rabia_buf_put_u32(struct rabia_buf *b, uint32_t v)
{
    int rc = rabia_buf_reserve(b, 4);
    if (!rc) {
        rabia_le_put32(b->data + b->len, v);
        b->len += 4;
    }
    return rc;
}

int rabia_buf_put_u64(struct rabia_buf *b, uint64_t v)
{
    int rc = rabia_buf_reserve(b, 8);
    if (!rc) {
        rabia_le_put64(b->data + b->len, v);
        b->len += 8;
    }
    return rc;
}

void rabia_buf_clear(struct rabia_buf *b)
{
    b->len = 0;
}

void rabia_buf_free(struct rabia_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
