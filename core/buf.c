/* struct rabia_buf: a growable byte buffer (see rabia/state_machine.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

int rabia_buf_put_u8(struct rabia_buf *b, uint8_t v)
{
    return rabia_buf_append(b, &v, 1);
}

int rabia_buf_put_u32(struct rabia_buf *b, uint32_t v)
{
    uint8_t le[4];
    for (int i = 0; i < 4; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    return rabia_buf_append(b, le, sizeof le);
}

int rabia_buf_put_u64(struct rabia_buf *b, uint64_t v)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    return rabia_buf_append(b, le, sizeof le);
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
