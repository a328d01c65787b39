/* libFuzzer target for the RESP2 request parser (io/resp.c: resp_parse),
 * the first code that touches a client's bytes. The input's first two
 * bytes choose a bulk limit and a chunk size; the rest is the client's
 * stream. It is parsed twice: whole, and fed in chunks as a socket would
 * deliver it (each call with the unconsumed bytes moved to a new buffer,
 * so a parser that kept a pointer into the old one reads freed memory
 * under AddressSanitizer). Checked: the parser never reads outside what
 * it is given, consumed <= len, every argument lies in the caller's bytes
 * or the parser's scratch, the two feedings give the same commands and
 * the same error, and the parser's memory stays within a bound of the
 * input's size. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

#define FUZZ_NAME "fuzz_resp"
#include "fuzz.h"

/* What a feeding saw: every command's argv, flattened (u32 argc, then
 * u32 len + bytes each), and how it ended. */
struct seen {
    struct rabia_buf cmds;
    int ncmds;
    int end; /* 0 (needs more), -EPROTO */
    char err[96];
};

static void record(struct seen *s, const struct resp_argv *a, const uint8_t *p, size_t len)
{
    if (a->argc < 1)
        FAIL("a command with argc %u", a->argc);
    const uint8_t *scr = a->scratch.data;
    size_t scr_len = a->scratch.len;
    if (rabia_buf_put_u32(&s->cmds, a->argc))
        FAIL("out of memory");
    for (uint32_t i = 0; i < a->argc; i++) {
        const uint8_t *x = a->argv[i];
        size_t n = a->argv_len[i];
        bool in_p = n == 0 || (x >= p && x + n <= p + len);
        bool in_scr = n == 0 || (scr && x >= scr && x + n <= scr + scr_len);
        if (!in_p && !in_scr)
            FAIL("argument %u (%zu bytes) lies outside the input and the scratch", i, n);
        if (rabia_buf_put_u32(&s->cmds, (uint32_t)n) || (n && rabia_buf_append(&s->cmds, x, n)))
            FAIL("out of memory");
    }
    s->ncmds++;
}

/* Parse what buf holds until it needs more; drops what was consumed. */
static bool pump(struct resp_argv *a, uint8_t **buf, size_t *len, struct seen *s, size_t limit)
{
    for (;;) {
        size_t used = 0;
        int rc = resp_parse(*buf, *len, &used, a);
        if (used > *len)
            FAIL("consumed %zu of %zu bytes", used, *len);
        if (resp_argv_memory(a) > limit)
            FAIL("the parser holds %zu bytes for %zu bytes of input", resp_argv_memory(a), limit);
        if (rc == 1)
            record(s, a, *buf, *len);
        else if (rc == -EPROTO) {
            s->end = rc;
            memcpy(s->err, a->err, sizeof s->err);
            if (!memchr(a->err, 0, sizeof a->err) || a->err[0] == 0)
                FAIL("a protocol error without a message");
            return false;
        } else if (rc != 0)
            FAIL("resp_parse returned %d", rc);
        /* drop the consumed bytes into a new buffer: the parser may keep
         * offsets, never pointers */
        size_t rest = *len - used;
        uint8_t *next = malloc(rest ? rest : 1);
        if (!next)
            FAIL("out of memory");
        if (rest)
            memcpy(next, *buf + used, rest);
        free(*buf);
        *buf = next;
        *len = rest;
        if (rc == 0)
            return true;
    }
}

static void feed(const uint8_t *data, size_t size, size_t chunk, size_t max_bulk, bool unauth, struct seen *s)
{
    struct resp_argv a;
    resp_argv_init(&a, max_bulk);
    a.unauthenticated = unauth; /* stays set: resp_parse never clears it */
    uint8_t *buf = malloc(1);
    size_t len = 0;
    /* argument tables and unescaped inline arguments: a bounded multiple
     * of the bytes given, plus the fixed start */
    size_t limit = 64 * 1024 + 32 * size;
    if (!buf)
        FAIL("out of memory");
    for (size_t at = 0; at < size;) {
        size_t n = size - at < chunk ? size - at : chunk;
        uint8_t *more = realloc(buf, len + n);
        if (!more)
            FAIL("out of memory");
        buf = more;
        memcpy(buf + len, data + at, n);
        len += n;
        at += n;
        if (!pump(&a, &buf, &len, s, limit))
            break;
    }
    free(buf);
    resp_argv_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* a small bulk limit now and then, so that its refusal is reached */
    size_t max_bulk = data[0] < 32 ? (size_t)data[0] * 3 + 1 : 0;
    size_t chunk = 1 + data[1] % 17;
    bool unauth = data[1] & 0x80; /* a client yet to authenticate: Redis's 10 arguments, 16 KiB bulks */
    data += 2, size -= 2;
    struct seen whole = {0}, chunks = {0};
    feed(data, size, size ? size : 1, max_bulk, unauth, &whole);
    feed(data, size, chunk, max_bulk, unauth, &chunks);
    if (whole.ncmds != chunks.ncmds || whole.cmds.len != chunks.cmds.len ||
        (whole.cmds.len && memcmp(whole.cmds.data, chunks.cmds.data, whole.cmds.len) != 0))
        FAIL("whole: %d commands, in chunks of %zu: %d commands, or other arguments", whole.ncmds,
             chunk, chunks.ncmds);
    if (whole.end != chunks.end || strcmp(whole.err, chunks.err) != 0)
        FAIL("whole ends with %d \"%s\", in chunks of %zu with %d \"%s\"", whole.end, whole.err, chunk,
             chunks.end, chunks.err);
    rabia_buf_free(&whole.cmds);
    rabia_buf_free(&chunks.cmds);
    return 0;
}
