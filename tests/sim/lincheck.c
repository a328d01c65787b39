/* lincheck: the simulator's linearizability checker (linearize.h) over a
 * history recorded by real clients against real processes
 * (tests/integration/jepsen.py), so the same exact search judges both.
 *
 *   lincheck [--max-states N] [--show N] FILE
 *
 * FILE: one operation per line, blank lines and lines starting with '#'
 * ignored:
 *
 *   CLIENT KEY KIND ARG ARG2 RESULT STATUS INVOKE COMPLETE
 *
 * all numbers decimal (uint64); KIND is r (read), w (write) or c
 * (compare-and-set); STATUS is ok, unknown (timed out or connection lost:
 * may have taken effect at any point after INVOKE, or never) or fail
 * (certainly had no effect); INVOKE and COMPLETE are one clock's ticks
 * (the recorder's monotonic nanoseconds). See linearize.h for the model:
 * registers start at 0, a read of an absent key is 0.
 *
 * Prints the verdict with the counts; on a violation, the violating key's
 * operations invoked up to the one no order gets past (the last --show of
 * them, default 40). Exit status: 0 linearizable, 1 violation, 2 gave up
 * (the search bound was hit on some key: unverified), 3 bad input. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linearize.h"

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *v = (uint64_t)x;
    return 0;
}

/* One line into *op; NULL or the reason it is malformed. */
static const char *parse_line(char *line, struct lin_op *op)
{
    char *f[10];
    int n = 0;
    for (char *save = NULL, *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
        if (n == 10)
            return "more than 9 fields";
        f[n++] = t;
    }
    if (n != 9)
        return "expected 9 fields: CLIENT KEY KIND ARG ARG2 RESULT STATUS INVOKE COMPLETE";
    memset(op, 0, sizeof *op);
    if (parse_u64(f[0], &op->client) || parse_u64(f[1], &op->key) || parse_u64(f[3], &op->arg) ||
        parse_u64(f[4], &op->arg2) || parse_u64(f[5], &op->result) || parse_u64(f[7], &op->invoke) ||
        parse_u64(f[8], &op->complete))
        return "a number field is not a decimal uint64";
    if (!strcmp(f[2], "r"))
        op->kind = LIN_READ;
    else if (!strcmp(f[2], "w"))
        op->kind = LIN_WRITE;
    else if (!strcmp(f[2], "c"))
        op->kind = LIN_CAS;
    else
        return "KIND must be r, w or c";
    if (!strcmp(f[6], "ok"))
        op->status = LIN_OK;
    else if (!strcmp(f[6], "unknown"))
        op->status = LIN_UNKNOWN;
    else if (!strcmp(f[6], "fail"))
        op->status = LIN_FAIL;
    else
        return "STATUS must be ok, unknown or fail";
    if (op->status == LIN_OK && op->complete < op->invoke)
        return "an ok operation completes before its invocation";
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: lincheck [--max-states N] [--show N] HISTORY-FILE\n"
                    "  (one op per line: CLIENT KEY r|w|c ARG ARG2 RESULT ok|unknown|fail INVOKE COMPLETE)\n");
}

int main(int argc, char **argv)
{
    uint64_t max_states = 20000000, show = 40;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--max-states") && i + 1 < argc) {
            if (parse_u64(argv[++i], &max_states)) {
                usage();
                return 3;
            }
        } else if (!strcmp(argv[i], "--show") && i + 1 < argc) {
            if (parse_u64(argv[++i], &show)) {
                usage();
                return 3;
            }
        } else if (argv[i][0] == '-' || path) {
            usage();
            return 3;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        usage();
        return 3;
    }
    FILE *in = fopen(path, "r");
    if (!in) {
        fprintf(stderr, "lincheck: cannot open %s: %s\n", path, strerror(errno));
        return 3;
    }
    struct lin_history *h = lin_history_create();
    if (!h) {
        fprintf(stderr, "lincheck: out of memory\n");
        fclose(in);
        return 3;
    }
    char line[512];
    size_t lineno = 0, counts[3][3] = {{0}};
    int rc = 0;
    while (fgets(line, sizeof line, in)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            fprintf(stderr, "lincheck: %s:%zu: line longer than %zu bytes\n", path, lineno, sizeof line - 2);
            rc = 3;
            break;
        }
        char *p = line + strspn(line, " \t");
        if (*p == '#' || *p == '\n' || *p == '\r' || !*p)
            continue;
        struct lin_op op;
        const char *why = parse_line(p, &op);
        if (why) {
            fprintf(stderr, "lincheck: %s:%zu: %s\n", path, lineno, why);
            rc = 3;
            break;
        }
        if (lin_history_add(h, &op) == SIZE_MAX) {
            fprintf(stderr, "lincheck: out of memory at %s:%zu\n", path, lineno);
            rc = 3;
            break;
        }
        counts[op.kind][op.status]++;
    }
    if (!rc && ferror(in)) {
        fprintf(stderr, "lincheck: reading %s: %s\n", path, strerror(errno));
        rc = 3;
    }
    fclose(in);
    if (rc) {
        lin_history_destroy(h);
        return rc;
    }
    printf("history %s: %zu ops (read ok %zu, unknown %zu, fail %zu; write ok %zu, unknown %zu, fail %zu; "
           "cas ok %zu, unknown %zu, fail %zu)\n",
           path, lin_history_len(h), counts[LIN_READ][LIN_OK], counts[LIN_READ][LIN_UNKNOWN],
           counts[LIN_READ][LIN_FAIL], counts[LIN_WRITE][LIN_OK], counts[LIN_WRITE][LIN_UNKNOWN],
           counts[LIN_WRITE][LIN_FAIL], counts[LIN_CAS][LIN_OK], counts[LIN_CAS][LIN_UNKNOWN],
           counts[LIN_CAS][LIN_FAIL]);
    struct lin_result r;
    int v = lin_check(h, max_states, &r);
    printf("keys %zu, ops checked %zu, dropped %zu, search steps %" PRIu64 "\n", r.keys, r.ops_checked,
           r.ops_dropped, r.states_explored);
    switch (v) {
    case LIN_LINEARIZABLE:
        printf("linearizable\n");
        rc = 0;
        break;
    case LIN_GAVE_UP:
        printf("gave up on %zu key(s) (first: key %" PRIu64 ") after %" PRIu64
               " search steps each: unverified, no violation found (%s)\n",
               r.keys_gave_up, r.gave_up_key, max_states, r.why);
        rc = 2;
        break;
    case LIN_VIOLATION: {
        printf("NOT linearizable: key %" PRIu64 ": %s\n", r.bad_key, r.why);
        /* the key's ops invoked up to the bad op's completion, the last `show` */
        size_t n = lin_history_len(h), total = 0;
        for (size_t i = 0; i < n; i++) {
            const struct lin_op *o = lin_history_op(h, i);
            total += o->key == r.bad_key && o->invoke <= r.bad_time;
        }
        printf("key %" PRIu64 ": %zu ops invoked at or before tick %" PRIu64 " (the last %" PRIu64
               " by invocation order of the file; * = the op no order gets past):\n",
               r.bad_key, total, r.bad_time, show);
        size_t skip = total > show ? total - (size_t)show : 0, seen = 0;
        for (size_t i = 0; i < n; i++) {
            const struct lin_op *o = lin_history_op(h, i);
            if (o->key != r.bad_key || o->invoke > r.bad_time || seen++ < skip)
                continue;
            char buf[160];
            lin_op_format(o, buf, sizeof buf);
            printf("%s %s\n", i == r.bad_op ? "*" : " ", buf);
        }
        rc = 1;
        break;
    }
    default:
        printf("error: %s\n", r.why);
        rc = 3;
    }
    lin_history_destroy(h);
    return rc;
}
