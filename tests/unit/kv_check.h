/* Helpers for the KV store's unit tests: run a command line against a
 * store and compare the raw RESP2 reply. Arguments are separated by single
 * spaces; use kv_do_argv for arguments with spaces or binary bytes. */
#ifndef RABIA_TESTS_KV_CHECK_H
#define RABIA_TESTS_KV_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kv.h"

/* The reply of argv (n args) applied to sm, in a static buffer (valid
 * until the next call), NUL-terminated. */
static inline const char *kv_reply_argv(void *sm, int n, const char *const *argv, const size_t *lens)
{
    static struct rabia_buf rep;
    struct rabia_buf op = {0};
    CHECK_EQ(rabia_kv_encode_argv(&op, n, argv, lens), 0);
    rabia_buf_clear(&rep);
    CHECK_EQ(rabia_sm_kv.apply(sm, op.data, op.len, &rep), 0);
    rabia_buf_put_u8(&rep, 0);
    rabia_buf_free(&op);
    return (const char *)rep.data;
}

/* op = the encoded operation of a space-separated command line (at most
 * 256 arguments). */
static inline void kv_encode_line(struct rabia_buf *op, const char *line)
{
    char buf[4096];
    const char *argv[256];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && n < 256; t = strtok_r(NULL, " ", &save))
        argv[n++] = t;
    rabia_buf_clear(op);
    CHECK_EQ(rabia_kv_encode_argv(op, n, argv, NULL), 0);
}

/* The reply of a space-separated command line. */
static inline const char *kv_reply(void *sm, const char *line)
{
    static struct rabia_buf op;
    kv_encode_line(&op, line);
    static struct rabia_buf rep;
    rabia_buf_clear(&rep);
    CHECK_EQ(rabia_sm_kv.apply(sm, op.data, op.len, &rep), 0);
    rabia_buf_put_u8(&rep, 0);
    return (const char *)rep.data;
}

/* Advance the store's clock: as if the next batch was stamped time_ms. */
static inline void kv_at(void *sm, uint64_t slot, uint64_t time_ms)
{
    struct rabia_sm_batch b = {.slot = slot, .time_ms = time_ms};
    rabia_sm_kv.begin(sm, &b);
}

/* A new store whose clock reads t0 (Unix ms): as if a first batch was
 * stamped then. */
static inline void *kv_fresh_at(uint64_t t0)
{
    void *sm = rabia_sm_kv.create();
    if (!sm)
        abort();
    kv_at(sm, 1, t0);
    return sm;
}

/* A store restored from sm's snapshot, whose state hash (computed from the
 * bytes it read) must equal the one sm kept up to date across its changes
 * (in place ones included); the caller destroys it. */
static inline void *kv_restored_alike(void *sm)
{
    struct rabia_buf snap = {0};
    CHECK_EQ(rabia_sm_kv.snapshot(sm, &snap), 0);
    void *other = rabia_sm_kv.create();
    if (!other)
        abort();
    CHECK_EQ(rabia_sm_kv.restore(other, snap.data, snap.len), 0);
    uint64_t h1 = 0, h2 = 1;
    CHECK_EQ(rabia_sm_kv.state_hash(sm, &h1), 0);
    CHECK_EQ(rabia_sm_kv.state_hash(other, &h2), 0);
    CHECK_EQ(h1, h2);
    rabia_buf_free(&snap);
    return other;
}

/* Check that line's reply is exactly `want` (RESP2, e.g. ":1\r\n"). */
#define KV_DO(sm, line, want)                                                                \
    do {                                                                                     \
        const char *got_ = kv_reply((sm), (line));                                           \
        if (strcmp(got_, (want)) != 0) {                                                     \
            fprintf(stderr, "%s:%d: %s\n  want %s\n  got  %s\n", __FILE__, __LINE__, (line), \
                    (want), got_);                                                           \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

/* Every line of a table {line, want} in order (KV_DO each). */
#define KV_DO_TABLE(sm, table)                                         \
    do {                                                               \
        for (size_t i_ = 0; i_ < sizeof(table) / sizeof((table)[0]); i_++) \
            KV_DO((sm), (table)[i_][0], (table)[i_][1]);               \
    } while (0)

/* A new store (kv_fresh_at) whose cluster agreed feature level `level`. */
static inline void *kv_fresh_level(uint64_t t0, int level)
{
    void *sm = kv_fresh_at(t0);
    char line[32], want[16];
    snprintf(line, sizeof line, "FEATURELEVEL %d", level);
    snprintf(want, sizeof want, ":%d\r\n", level);
    KV_DO(sm, line, want);
    return sm;
}

#endif
