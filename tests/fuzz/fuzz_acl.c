/* libFuzzer target for what an operator's ACL file and a client's native
 * operations meet before anything runs: ACL file lines (replica/acl.c, as
 * acl-file, SIGHUP and ACL LOAD read them into a running replica) and the
 * check of a native-protocol operation against each user's rules
 * (acl_check_kv_op: a client's bytes, before the state machine sees
 * them). The input is text up to the first NUL byte (lines; those
 * starting "user " go to acl_parse_line, the others are skipped), then
 * operations separated by NUL bytes: each is checked raw, as an argv
 * (arguments split at 0x01 bytes), and inside TXN and @DB wrappers.
 * Checked: parsing returns 0 or RABIA_E_CONFIG with a message; a check
 * returns one of its documented values, and a command refused alone is
 * refused inside a transaction and under @DB too. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "kv.h"
#include "rabia/types.h"

#define FUZZ_NAME "fuzz_acl"
#include "fuzz.h"

static void check_err(int rc, const char *err, size_t errlen, const char *what)
{
    if (rc == 0)
        return;
    if (rc != RABIA_E_CONFIG)
        FAIL("%s returned %d", what, rc);
    if (!memchr(err, 0, errlen) || err[0] == 0)
        FAIL("%s refused a line without saying why", what);
}

static void check_op(const struct acl *a, const uint8_t *op, size_t len, int *alone)
{
    for (uint32_t u = 0; u < a->n; u++) {
        char cmd[64];
        int rc = acl_check_kv_op(a, (int)u, op, len, cmd, sizeof cmd);
        if (rc < -1 || rc > ACL_DENIED_SCRIPT)
            FAIL("acl_check_kv_op returned %d", rc);
        if (rc > 0 && !memchr(cmd, 0, sizeof cmd))
            FAIL("a refused command's name is not terminated");
        if (alone)
            alone[u] = rc;
    }
}

/* op wrapped (TXN, @DB) is refused to every user refused the op alone. */
static void check_wrapped(const struct acl *a, const struct rabia_buf *wrap, const int *alone, const char *how)
{
    int wrapped[ACL_MAX_USERS];
    check_op(a, wrap->data, wrap->len, wrapped);
    for (uint32_t u = 0; u < a->n; u++)
        if (alone[u] > 0 && wrapped[u] == ACL_ALLOWED)
            FAIL("user %u: a command refused alone (%d) is allowed %s", u, alone[u], how);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t text_len = nul ? (size_t)(nul - data) : size;
    char *text = malloc(text_len + 1);
    if (!text)
        return 0;
    memcpy(text, data, text_len);
    text[text_len] = 0;

    static struct acl acl;
    acl_init(&acl, text_len > 0 && (text[0] & 1) ? "secret" : "");
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        if (strncmp(line, "user ", 5) == 0 || strncmp(line, "user\t", 5) == 0) {
            char err[256];
            memset(err, 0x55, sizeof err);
            check_err(acl_parse_line(&acl, line, err, sizeof err), err, sizeof err, "acl_parse_line");
        }
    }
    free(text);
    if (acl.n < 1 || acl.n > ACL_MAX_USERS)
        FAIL("%u users", acl.n);

    /* the operations */
    const uint8_t *p = nul ? nul + 1 : data + size, *end = data + size;
    struct rabia_buf op = {0}, wrap = {0};
    int alone[ACL_MAX_USERS];
    while (p < end) {
        const uint8_t *e = memchr(p, 0, (size_t)(end - p));
        if (!e)
            e = end;
        size_t n = (size_t)(e - p);
        check_op(&acl, p, n, NULL); /* raw bytes */
        /* as an argv: arguments split at 0x01 */
        const char *argv[32];
        size_t lens[32];
        int argc = 0;
        const uint8_t *s = p;
        while (argc < 32) {
            const uint8_t *sep = memchr(s, 1, (size_t)(e - s));
            argv[argc] = (const char *)s;
            lens[argc++] = (size_t)((sep ? sep : e) - s);
            if (!sep)
                break;
            s = sep + 1;
        }
        rabia_buf_clear(&op);
        if (rabia_kv_encode_argv(&op, argc, argv, lens) != 0)
            FAIL("encode_argv failed");
        check_op(&acl, op.data, op.len, alone);
        /* inside a transaction of one, and in database 3: refused alone,
         * refused there too */
        const uint8_t *ops[1] = {op.data};
        size_t op_lens[1] = {op.len};
        rabia_buf_clear(&wrap);
        if (rabia_kv_encode_txn(&wrap, 1, ops, op_lens) != 0)
            FAIL("encode_txn failed");
        check_wrapped(&acl, &wrap, alone, "in a transaction");
        const char *db[3] = {"@DB", "3", (const char *)op.data};
        size_t db_lens[3] = {3, 1, op.len};
        rabia_buf_clear(&wrap);
        if (rabia_kv_encode_argv(&wrap, 3, db, db_lens) != 0)
            FAIL("encode_argv failed");
        check_wrapped(&acl, &wrap, alone, "under @DB");
        p = e + 1;
    }
    rabia_buf_free(&op);
    rabia_buf_free(&wrap);
    return 0;
}
