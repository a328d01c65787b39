/* Helpers for the KV store's type tests that look inside the values
 * (test_kv_hash.c, test_kv_set.c): a private store run through kv_run, the
 * raw RESP2 reply of a command line compared byte for byte, and the value
 * at a key. kv_check.h is the same through the public state machine API,
 * for tests that need only the replies. One test file per program: the
 * globals below are that program's. */
#ifndef RABIA_TESTS_KV_STORE_CHECK_H
#define RABIA_TESTS_KV_STORE_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"

/* A store of its own, made as the state machine makes it. */
static inline struct kv_store *store_new(void)
{
    struct kv_store *s = kv_store_new();
    RABIA_ASSERT(s);
    return s;
}

/* Frees the store; every byte it counted must have been given back. */
static inline void store_free(struct kv_store *s)
{
    for (uint32_t i = 0; i < KV_DBS; i++)
        kv_db_flush(s, i);
    kv_scripts_clear(s);
    kv_free(s, s->scratch);
    s->scratch = NULL;
    CHECK_EQ(s->mem, 0);
    CHECK_EQ(s->n_dirty, 0); /* every key's hash term left with it */
    CHECK_EQ(s->key_sum, 0);
    kv_store_free(s);
}

static struct kv_store *st;
static struct rabia_buf out;

/* The reply of argv, NUL-terminated in `out`. */
static inline const char *run_argv(struct kv_store *s, uint32_t n, const char *const *argv,
                            const uint32_t *lens)
{
    uint32_t l[2048];
    RABIA_ASSERT(n <= 2048);
    for (uint32_t i = 0; i < n; i++)
        l[i] = lens ? lens[i] : (uint32_t)strlen(argv[i]);
    rabia_buf_clear(&out);
    CHECK_EQ(kv_run(s, 0, n, (const uint8_t *const *)argv, l, &out, false, false), 0);
    rabia_buf_put_u8(&out, 0);
    out.len--;
    return (const char *)out.data;
}

/* Arguments separated by single spaces (two spaces: an empty argument). */
static inline const char *run_in(struct kv_store *s, const char *line)
{
    static char buf[65536];
    const char *argv[2048];
    uint32_t n = 0;
    snprintf(buf, sizeof buf, "%s", line);
    argv[n++] = buf;
    for (char *p = buf; *p; p++) {
        if (*p == ' ') {
            *p = 0;
            RABIA_ASSERT(n < 2048);
            argv[n++] = p + 1;
        }
    }
    return run_argv(s, n, argv, NULL);
}

static inline void print_escaped(const char *what, const char *p, size_t n)
{
    fprintf(stderr, "  %s \"", what);
    for (size_t i = 0; i < n && i < 2000; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            fputc(ch, stderr);
        else
            fprintf(stderr, "\\x%02x", ch);
    }
    fprintf(stderr, "\"\n");
}

/* The reply of line must be want; a mismatch is reported at file:at. */
static inline void expect(struct kv_store *s, const char *line, const char *want, const char *file, int at)
{
    const char *got = run_in(s, line);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "%s:%d: %.200s\n", file, at, line);
        print_escaped("want", want, strlen(want));
        print_escaped("got ", got, strlen(got));
        check_failures++;
    }
}
#define DO(line, want) expect(st, (line), (want), __FILE__, __LINE__)

/* The value at key (db 0), NULL when absent. */
static inline struct kv_obj *obj(struct kv_store *s, const char *key)
{
    struct kv_ctx c = {.s = s, .db = &s->db[0]};
    struct kv_dent *e = kv_find(&c, (const uint8_t *)key, strlen(key));
    return e ? e->v.p : NULL;
}

/* A reply's bulk strings in order, array headers skipped (a nil bulk is
 * an item with n == -1). Returns how many. */
struct item {
    const char *p;
    long n;
};

static inline size_t items(const char *r, struct item *v, size_t max)
{
    size_t k = 0;
    while (*r) {
        char *end;
        long n = strtol(r + 1, &end, 10);
        RABIA_ASSERT(end[0] == '\r' && end[1] == '\n');
        const char *next = end + 2;
        if (r[0] == '$') {
            RABIA_ASSERT(k < max);
            v[k].p = n >= 0 ? next : NULL;
            v[k++].n = n;
            if (n >= 0)
                next += n + 2;
        } else {
            RABIA_ASSERT(r[0] == '*' || r[0] == ':');
        }
        r = next;
    }
    return k;
}

/* The array header of a reply. */
static inline long header(const char *r)
{
    RABIA_ASSERT(r[0] == '*');
    return strtol(r + 1, NULL, 10);
}

#endif
