/* rabia-cli: command-line client of a rabia cluster running one of the
 * example state machines (counter, bank, kv). It cannot know which one the
 * replicas run: it encodes the operation the command names and decodes the
 * result the same way. See usage() for the commands and exit codes. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backup.h"
#include "bank.h"
#include "client_tls.h" /* client_split_addr */
#include "counter.h"
#include "kv.h"
#include "rabia/client.h"

#define DEFAULT_ADDRS "127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403"
#define MAX_ADDRS 64
#define BENCH_OUTSTANDING 64

enum exit_code { EX_OK = 0, EX_RESULT = 1, EX_USAGE = 2, EX_UNREACHABLE = 3 };
enum sm_kind { SM_COUNTER, SM_BANK, SM_KV };

static const char *prog = "rabia-cli";

static void usage(FILE *f)
{
    fprintf(f,
        "usage: %s [-a host:port[,host:port...]] [--timeout ms] [--tls --cacert FILE\n"
        "       [--cert FILE --key FILE]] <command>\n"
        "\n"
        "Sends one operation to a rabia cluster over the replicas' native client\n"
        "ports and prints its result. The cluster's state machine must match the\n"
        "command family (the CLI cannot tell which one the replicas run).\n"
        "\n"
        "options:\n"
        "  -a, --addr LIST    replicas, comma separated (default\n"
        "                     " DEFAULT_ADDRS ";\n"
        "                     replica i's native port is 7400+i)\n"
        "  -t, --timeout MS   per-attempt timeout in milliseconds (default 1000); a\n"
        "                     request is tried up to 10 times, moving to the next\n"
        "                     replica after each failure\n"
        "  --tls              TLS 1.3 to replicas with tls-clients = yes\n"
        "  --cacert FILE      the CA that signed the replicas' certificates (with --tls)\n"
        "  --cert FILE, --key FILE  this client's certificate and key, where the replicas\n"
        "                     have tls-auth-clients = yes\n"
        "  --tls-server-name NAME  the name the replicas' certificates must hold\n"
        "                     (default: each address's host; checked against the\n"
        "                     certificate's subjectAltName)\n"
        "  --user NAME        authenticate as this user (replicas with acl-file;\n"
        "                     default: $RABIA_USER, else \"default\")\n"
        "  --pass PASSWORD    authenticate with this password (replicas with\n"
        "                     requirepass or acl-file; default: $RABIA_PASSWORD,\n"
        "                     which keeps it out of the process list)\n"
        "  -h, --help         this text\n"
        "\n"
        "commands:\n"
        "  counter incr | decr | get      counter state machine; prints the value\n"
        "  counter set N\n"
        "  bank create ID BALANCE         bank state machine\n"
        "  bank deposit ID AMOUNT\n"
        "  bank withdraw ID AMOUNT\n"
        "  bank transfer FROM TO AMOUNT\n"
        "  bank balance ID\n"
        "  bank all                       every account, sorted by id\n"
        "  kv get K                       kv state machine; printed like redis-cli\n"
        "  kv set K V\n"
        "  kv del K...\n"
        "  kv keys [PATTERN]              glob, default *\n"
        "  kv txn 'SET a 1' 'INCR a' ...  one atomic transaction; each argument is\n"
        "                                 a command line split on spaces\n"
        "  kv raw CMD ARGS...             any kv command (MGET, INCRBY, SCAN, ...)\n"
        "  status                         STATUS of every address given\n"
        "  backup PATH                    a consistent snapshot of the cluster (the state\n"
        "                                 and sessions at one applied slot) from the first\n"
        "                                 replica given that serves it, written to PATH\n"
        "                                 atomically; prints its slot, size and state hash\n"
        "                                 (rabiad --restore PATH seeds a new cluster); with\n"
        "                                 users configured, only a user with +@all and\n"
        "                                 allkeys may (--user/--pass); --tls as above\n"
        "  backup --verify PATH           check a backup file's checksums; print the same\n"
        "  bench-counter N                N pipelined counter increments (up to %d\n"
        "                                 outstanding); prints ops/s and latency\n"
        "\n"
        "exit status:\n"
        "  0  success\n"
        "  1  the operation returned an error result (or was rejected); backup:\n"
        "     the file could not be written here (no other replica is asked)\n"
        "  2  usage error (backup: PATH is not a file in a writable folder)\n"
        "  3  no replica reachable, timed out, or the session expired; after a\n"
        "     timeout or an expired session of a write the outcome is unknown\n"
        "     (it may or may not have been applied)\n",
        prog, BENCH_OUTSTANDING);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg ? arg : "");
    fprintf(stderr, "\nTry '%s --help'.\n", prog);
    return EX_USAGE;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static bool parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s)
        return false;
    *out = v;
    return true;
}

/* Print bytes, escaping what is not printable ASCII. */
static void print_escaped(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            fputc(p[i], f);
        else if (p[i] == '\\')
            fputs("\\\\", f);
        else
            fprintf(f, "\\x%02x", p[i]);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/* Outcomes */

/* Whether addr's host name does not resolve; *why says so. The library
 * reports a failed lookup as -EHOSTUNREACH, "No route to host", which sends
 * the user looking at routes and firewalls for a misspelt name (found by
 * review). */
static bool lookup_fails(const char *addr, char *why, size_t n)
{
    char host[256], port[16];
    if (client_split_addr(addr, host, sizeof host, port, sizeof port) < 0) /* the library's own parse */
        return false;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, NULL, &hints, &res);
    if (g == 0) {
        freeaddrinfo(res);
        return false;
    }
    snprintf(why, n, "cannot resolve host '%s': %s", host, gai_strerror(g));
    return true;
}

/* Say which of the comma-separated addresses do not resolve. */
static void explain_lookups(const char *list)
{
    char *copy = strdup(list), *save = NULL, why[512];
    for (char *a = copy ? strtok_r(copy, ",", &save) : NULL; a; a = strtok_r(NULL, ",", &save))
        if (lookup_fails(a, why, sizeof why))
            fprintf(stderr, "%s: %s\n", prog, why);
    free(copy);
}

static bool g_tls; /* --tls */

/* A client that never heard a replica, whose connections were closed on it:
 * a replica with tls-clients closes a plaintext connection at once, and
 * "timed out: no replica answered" alone read as replicas down (status and
 * backup said why already) */
static void tls_hint(const struct rabia_client *c, const char *addrs)
{
    int last = c ? rabia_client_last_error(c) : 0;
    if (!c || g_tls || rabia_client_heard(c) || (last != -ECONNRESET && last != -EPIPE))
        return;
    bool several = strchr(addrs, ',') != NULL;
    fprintf(stderr, "%s: every connection was closed by the replica before any answer (%s): %s %s %s (client-listen), "
                    "and %s --tls (tls-clients = yes)?\n",
            prog, rabia_strerror(last), several ? "are" : "is", addrs,
            several ? "replicas' native client ports" : "a replica's native client port",
            several ? "do they want" : "does it want");
}

/* A request that did not complete with a result: message and exit code. */
static int report_failure(int rc, bool write, const char *addrs, const struct rabia_buf *res,
                          const struct rabia_client *c)
{
    /* the replica's reason, when its answer gave one (res may be NULL) */
    bool why = res && res->len > 0;
    if (rc == -ETIMEDOUT) {
        if (write)
            fprintf(stderr, "%s: timed out: outcome unknown (the request reached a replica but "
                            "no answer came back; it may or may not have been applied)\n", prog);
        else
            fprintf(stderr, "%s: timed out: no replica answered\n", prog);
        tls_hint(c, addrs);
        return EX_UNREACHABLE;
    }
    if (rc == RABIA_REPLY_REDIRECT || rc == RABIA_REPLY_BUSY || rc == RABIA_REPLY_UNAVAILABLE) {
        fprintf(stderr, "%s: no replica accepted the request (last answer: %s%s", prog,
                rabia_reply_status_name(rc), why ? ": " : "");
        if (why)
            print_escaped(stderr, res->data, res->len);
        fprintf(stderr, "); it was not applied\n");
        return EX_UNREACHABLE;
    }
    if (rc == RABIA_REPLY_SESSION_EXPIRED) {
        /* the session was evicted or lost while the request was out: an
         * earlier attempt may have been applied (rabia/client.h), so "it
         * was rejected" would invite a rerun that applies it twice */
        if (write)
            fprintf(stderr, "%s: the session expired while the request was out (SESSION_EXPIRED): outcome "
                            "unknown (it may or may not have been applied); check before running it again\n",
                    prog);
        else
            fprintf(stderr, "%s: the session expired while the request was out (SESSION_EXPIRED); run it "
                            "again\n", prog);
        return EX_UNREACHABLE;
    }
    if (rc == RABIA_REPLY_BAD_REQUEST) {
        /* the replica says why ("request of N bytes does not fit in a
         * batch ...: split it, or raise batch-max-bytes"); dropping that
         * left the user without cause or fix (found by review) */
        fprintf(stderr, "%s: the replica rejected the request%s%s", prog, why ? " (BAD_REQUEST): " : ": ",
                why ? "" : rabia_reply_status_name(rc));
        if (why)
            print_escaped(stderr, res->data, res->len);
        fputc('\n', stderr);
        return EX_RESULT;
    }
    if (rc == -ECONNREFUSED || rc == -EHOSTUNREACH || rc == -ENETUNREACH ||
        rc == -ECONNRESET || rc == -EPROTO || rc == -ECONNABORTED || rc == -EPIPE) {
        fprintf(stderr, "%s: no replica reachable (%s): %s; the request was not applied\n", prog,
                addrs, rabia_strerror(rc));
        if (rc == -EHOSTUNREACH)
            explain_lookups(addrs);
        tls_hint(c, addrs);
        return EX_UNREACHABLE;
    }
    if (rc >= 0)
        fprintf(stderr, "%s: unexpected reply status %d (%s)\n", prog, rc,
                rabia_reply_status_name(rc));
    else
        fprintf(stderr, "%s: %s\n", prog, rabia_strerror(rc));
    return EX_UNREACHABLE;
}

static int undecodable(enum sm_kind kind, const struct rabia_buf *res)
{
    static const char *names[] = {"counter", "bank", "kv"};
    fprintf(stderr, "%s: cannot decode the result as a %s result (does the cluster run the %s "
                    "state machine?): ", prog, names[kind], names[kind]);
    print_escaped(stderr, res->data, res->len);
    fputc('\n', stderr);
    return EX_RESULT;
}

static int print_counter(const struct rabia_buf *res)
{
    int64_t v;
    const char *err;
    size_t elen;
    int rc = rabia_counter_decode_result(res->data, res->len, &v, &err, &elen);
    if (rc == 0) {
        printf("%" PRId64 "\n", v);
        return EX_OK;
    }
    if (rc == 1) {
        fprintf(stderr, "%s: error: ", prog);
        print_escaped(stderr, (const uint8_t *)err, elen);
        fputc('\n', stderr);
        return EX_RESULT;
    }
    return undecodable(SM_COUNTER, res);
}

static int print_bank(const struct rabia_buf *res)
{
    struct rabia_bank_result r;
    if (rabia_bank_decode_result(res->data, res->len, &r) < 0)
        return undecodable(SM_BANK, res);
    switch (r.kind) {
    case RABIA_BANK_R_SUCCESS:
        print_escaped(stdout, r.text, r.text_len);
        putchar('\n');
        return EX_OK;
    case RABIA_BANK_R_BALANCE:
        printf("%" PRIu64 "\n", r.balance);
        return EX_OK;
    case RABIA_BANK_R_ALL: {
        size_t pos = 0;
        struct rabia_bank_account a;
        if (r.count == 0)
            printf("(no accounts)\n");
        while (rabia_bank_next_account(&r, &pos, &a) == 1) {
            print_escaped(stdout, a.id, a.id_len);
            printf(" %" PRIu64 "\n", a.balance);
        }
        return EX_OK;
    }
    case RABIA_BANK_R_ERROR:
    default:
        fprintf(stderr, "%s: error: ", prog);
        print_escaped(stderr, r.text, r.text_len);
        fputc('\n', stderr);
        return EX_RESULT;
    }
}

static int print_kv(const struct rabia_buf *res)
{
    struct rabia_buf out = {0};
    size_t used = 0;
    if (rabia_kv_resp_check(res->data, res->len, &used) < 0 || used != res->len ||
        rabia_kv_resp_format(&out, res->data, res->len) < 0) {
        rabia_buf_free(&out);
        return undecodable(SM_KV, res);
    }
    fwrite(out.data, 1, out.len, stdout);
    rabia_buf_free(&out);
    return res->data[0] == '-' ? EX_RESULT : EX_OK;
}

/* A request refused for who the client is (NOAUTH / NOPERM): the
 * replica's message (WRONGPASS / NOAUTH / NOPERM ...). Exit 1: rejected. */
static int report_refusal(int rc, const struct rabia_buf *res)
{
    fprintf(stderr, "%s: refused: ", prog);
    print_escaped(stderr, res->data, res->len);
    fprintf(stderr, rc == RABIA_REPLY_NOAUTH ? " (give --user/--pass or RABIA_PASSWORD)\n" : "\n");
    return EX_RESULT;
}

/* Send op, wait for its outcome, print it. */
static int run_op(struct rabia_client *c, enum sm_kind kind, bool write,
                  const struct rabia_buf *op, const char *addrs)
{
    struct rabia_buf res = {0};
    int rc = rabia_client_call(c, op->data, op->len, &res);
    int ex;
    if (rc == RABIA_REPLY_OK) {
        ex = kind == SM_COUNTER ? print_counter(&res) : kind == SM_BANK ? print_bank(&res)
                                                                          : print_kv(&res);
    } else if (rc == RABIA_REPLY_NOAUTH || rc == RABIA_REPLY_NOPERM) {
        ex = report_refusal(rc, &res);
    } else if (rc == RABIA_REPLY_APPLIED_NO_RESULT) {
        fprintf(stderr, "%s: applied (the replica no longer holds the result)\n", prog);
        ex = EX_OK;
    } else {
        ex = report_failure(rc, write, addrs, &res, c);
    }
    rabia_buf_free(&res);
    return ex;
}

/* ------------------------------------------------------------------ */
/* Commands: build the operation (usage errors return EX_USAGE) */

static int build_counter(int argc, char **argv, struct rabia_buf *op, bool *write)
{
    if (argc < 1)
        return usage_error("counter: missing subcommand (incr, decr, get, set N)", NULL);
    const char *s = argv[0];
    int rc;
    if (!strcmp(s, "incr") || !strcmp(s, "decr") || !strcmp(s, "get")) {
        if (argc != 1)
            return usage_error("counter %s takes no arguments", s);
        enum rabia_counter_op o = !strcmp(s, "incr")   ? RABIA_COUNTER_INC
                                  : !strcmp(s, "decr") ? RABIA_COUNTER_DEC
                                                       : RABIA_COUNTER_GET;
        *write = o != RABIA_COUNTER_GET;
        rc = rabia_counter_encode(op, o, 0);
    } else if (!strcmp(s, "set")) {
        int64_t v;
        if (argc != 2)
            return usage_error("counter set takes one argument: N", NULL);
        if (!parse_i64(argv[1], &v))
            return usage_error("counter set: not a 64-bit integer: %s", argv[1]);
        *write = true;
        rc = rabia_counter_encode(op, RABIA_COUNTER_SET, v);
    } else {
        return usage_error("counter: unknown subcommand: %s", s);
    }
    return rc < 0 ? EX_UNREACHABLE : EX_OK;
}

static int build_bank(int argc, char **argv, struct rabia_buf *op, bool *write)
{
    if (argc < 1)
        return usage_error("bank: missing subcommand", NULL);
    const char *s = argv[0];
    uint64_t amt;
    int rc;
    *write = true;
    if (!strcmp(s, "create") || !strcmp(s, "deposit") || !strcmp(s, "withdraw")) {
        if (argc != 3)
            return usage_error("bank %s takes two arguments: ID AMOUNT", s);
        if (!parse_u64(argv[2], &amt))
            return usage_error("bank: not an unsigned 64-bit amount: %s", argv[2]);
        const char *id = argv[1];
        if (!strcmp(s, "create"))
            rc = rabia_bank_encode_create(op, id, strlen(id), amt);
        else if (!strcmp(s, "deposit"))
            rc = rabia_bank_encode_deposit(op, id, strlen(id), amt);
        else
            rc = rabia_bank_encode_withdraw(op, id, strlen(id), amt);
    } else if (!strcmp(s, "transfer")) {
        if (argc != 4)
            return usage_error("bank transfer takes three arguments: FROM TO AMOUNT", NULL);
        if (!parse_u64(argv[3], &amt))
            return usage_error("bank: not an unsigned 64-bit amount: %s", argv[3]);
        rc = rabia_bank_encode_transfer(op, argv[1], strlen(argv[1]), argv[2], strlen(argv[2]),
                                        amt);
    } else if (!strcmp(s, "balance")) {
        if (argc != 2)
            return usage_error("bank balance takes one argument: ID", NULL);
        *write = false;
        rc = rabia_bank_encode_balance(op, argv[1], strlen(argv[1]));
    } else if (!strcmp(s, "all")) {
        if (argc != 1)
            return usage_error("bank all takes no arguments", NULL);
        *write = false;
        rc = rabia_bank_encode_all(op);
    } else {
        return usage_error("bank: unknown subcommand: %s", s);
    }
    return rc < 0 ? EX_UNREACHABLE : EX_OK;
}

/* Split a command line on spaces into an encoded argv. 0, 1 if empty, or
 * a negative errno. */
static int encode_line(struct rabia_buf *out, const char *line)
{
    char *copy = strdup(line);
    if (!copy)
        return -ENOMEM;
    const char *words[256];
    int n = 0;
    char *save = NULL;
    for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        if (n == (int)(sizeof words / sizeof words[0])) {
            free(copy);
            return -E2BIG;
        }
        words[n++] = w;
    }
    int rc = n == 0 ? 1 : rabia_kv_encode_argv(out, n, words, NULL);
    free(copy);
    return rc;
}

static int build_kv(int argc, char **argv, struct rabia_buf *op, bool *write)
{
    if (argc < 1)
        return usage_error("kv: missing subcommand", NULL);
    const char *s = argv[0];
    int rc;
    *write = true;
    if (!strcmp(s, "get")) {
        if (argc != 2)
            return usage_error("kv get takes one argument: K", NULL);
        const char *a[] = {"GET", argv[1]};
        *write = false;
        rc = rabia_kv_encode_argv(op, 2, a, NULL);
    } else if (!strcmp(s, "set")) {
        if (argc != 3)
            return usage_error("kv set takes two arguments: K V", NULL);
        const char *a[] = {"SET", argv[1], argv[2]};
        rc = rabia_kv_encode_argv(op, 3, a, NULL);
    } else if (!strcmp(s, "del")) {
        if (argc < 2)
            return usage_error("kv del takes one or more keys", NULL);
        argv[0] = (char *)"DEL";
        rc = rabia_kv_encode_argv(op, argc, (const char *const *)argv, NULL);
    } else if (!strcmp(s, "keys")) {
        if (argc > 2)
            return usage_error("kv keys takes at most one argument: PATTERN", NULL);
        const char *a[] = {"KEYS", argc == 2 ? argv[1] : "*"};
        *write = false;
        rc = rabia_kv_encode_argv(op, 2, a, NULL);
    } else if (!strcmp(s, "raw")) {
        if (argc < 2)
            return usage_error("kv raw takes a command and its arguments", NULL);
        rc = rabia_kv_encode_argv(op, argc - 1, (const char *const *)argv + 1, NULL);
    } else if (!strcmp(s, "txn")) {
        int n = argc - 1;
        if (n < 1)
            return usage_error("kv txn takes one or more commands, e.g. 'SET a 1' 'INCR a'",
                               NULL);
        struct rabia_buf *cmds = calloc((size_t)n, sizeof *cmds);
        const uint8_t **ptrs = calloc((size_t)n, sizeof *ptrs);
        size_t *lens = calloc((size_t)n, sizeof *lens);
        rc = cmds && ptrs && lens ? 0 : -ENOMEM;
        for (int i = 0; i < n && rc == 0; i++) {
            rc = encode_line(&cmds[i], argv[i + 1]);
            if (rc == 1) {
                rc = 0;
                for (int j = 0; j < n; j++)
                    rabia_buf_free(&cmds[j]);
                free(cmds);
                free(ptrs);
                free(lens);
                return usage_error("kv txn: empty command: '%s'", argv[i + 1]);
            }
            if (rc == -E2BIG) {
                rc = 0;
                for (int j = 0; j < n; j++)
                    rabia_buf_free(&cmds[j]);
                free(cmds);
                free(ptrs);
                free(lens);
                return usage_error("kv txn: too many words in '%s'", argv[i + 1]);
            }
            if (rc == 0) {
                ptrs[i] = cmds[i].data;
                lens[i] = cmds[i].len;
            }
        }
        if (rc == 0)
            rc = rabia_kv_encode_txn(op, n, ptrs, lens);
        for (int j = 0; cmds && j < n; j++)
            rabia_buf_free(&cmds[j]);
        free(cmds);
        free(ptrs);
        free(lens);
    } else {
        return usage_error("kv: unknown subcommand: %s", s);
    }
    return rc < 0 ? EX_UNREACHABLE : EX_OK;
}

/* ------------------------------------------------------------------ */
/* status, bench-counter */

static int cmd_status(struct rabia_client *c, char **addrs, size_t n, bool tls)
{
    int ex = EX_OK;
    struct rabia_buf text = {0};
    for (size_t i = 0; i < n; i++) {
        printf("== %s ==\n", addrs[i]);
        int rc = rabia_client_status(c, addrs[i], &text);
        if (rc == -EACCES) {
            printf("refused: %.*s (give --user/--pass or RABIA_PASSWORD)\n", (int)text.len, (const char *)text.data);
            ex = EX_RESULT;
            continue;
        }
        char why[512];
        if (rc == -EHOSTUNREACH && lookup_fails(addrs[i], why, sizeof why)) {
            printf("unreachable: %s\n", why);
            ex = EX_UNREACHABLE;
            continue;
        }
        if (rc < 0) {
            /* a replica with tls-clients closes a plaintext connection at
             * once: "unreachable: Connection reset by peer" alone read as a
             * replica down (backup says the same, cmd/backup.c) */
            bool closed = rc == -ECONNRESET || rc == -EPIPE;
            printf("unreachable: %s%s%s%s\n", rabia_strerror(rc), rabia_client_tls_error(c) ? ": " : "",
                   rabia_client_tls_error(c) ? rabia_client_tls_error(c) : "",
                   closed && !tls ? " before any answer: is it a replica's native client port (client-listen), and "
                                    "does it want --tls (tls-clients = yes)?"
                                  : "");
            ex = EX_UNREACHABLE;
            continue;
        }
        fwrite(text.data, 1, text.len, stdout);
        if (text.len == 0 || text.data[text.len - 1] != '\n')
            putchar('\n');
    }
    rabia_buf_free(&text);
    return ex;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmd_bench(struct rabia_client *c, uint64_t n, const char *addrs)
{
    struct rabia_buf op = {0}, res = {0}, refusal = {0};
    double *start = calloc(n, sizeof *start), *lat = calloc(n, sizeof *lat);
    if (!start || !lat || rabia_counter_encode(&op, RABIA_COUNTER_INC, 0) < 0) {
        fprintf(stderr, "%s: out of memory\n", prog);
        free(start);
        free(lat);
        return EX_UNREACHABLE;
    }
    uint64_t submitted = 0, done = 0, base = 0, errors = 0, failed = 0, refused = 0;
    int first_fail = 0, first_refusal = 0, rc_uncork;
    int64_t last_value = 0;
    double t0 = now_s();
    while (done < n) {
        rabia_client_cork(c); /* the refill leaves with one send (client.h CORKING) */
        while (submitted < n && submitted - done < BENCH_OUTSTANDING) {
            uint64_t seq;
            int rc = rabia_client_submit(c, op.data, op.len, &seq);
            if (rc < 0) {
                fprintf(stderr, "%s: submit: %s\n", prog, rabia_strerror(rc));
                goto out;
            }
            if (submitted == 0)
                base = seq;
            start[seq - base] = now_s();
            submitted++;
        }
        if ((rc_uncork = rabia_client_uncork(c)) < 0) {
            fprintf(stderr, "%s: send: %s\n", prog, rabia_strerror(rc_uncork));
            goto out;
        }
        uint64_t seq = 0;
        int rc = rabia_client_wait(c, 0, &res, &seq, -1);
        if (rc == -ENOENT || rc == -ENOMEM || rc == -EINPROGRESS) {
            fprintf(stderr, "%s: wait: %s\n", prog, rabia_strerror(rc));
            goto out;
        }
        lat[done++] = now_s() - start[seq - base];
        int64_t v;
        if (rc == RABIA_REPLY_OK &&
            rabia_counter_decode_result(res.data, res.len, &v, NULL, NULL) == 0) {
            if (v > last_value)
                last_value = v;
        } else if (rc == RABIA_REPLY_OK || rc == RABIA_REPLY_BAD_REQUEST) {
            errors++;
        } else if (rc == RABIA_REPLY_NOAUTH || rc == RABIA_REPLY_NOPERM) {
            /* a rejection, as for a single command (exit 1, the replica's
             * message): it went to report_failure, "unexpected reply
             * status 7 (NOAUTH)", exit 3, which usage() keeps for
             * unreachable, timed out or expired */
            if (!refused++) {
                first_refusal = rc;
                (void)rabia_buf_append(&refusal, res.data, res.len); /* best effort */
            }
        } else if (rc != RABIA_REPLY_APPLIED_NO_RESULT) {
            if (!failed++)
                first_fail = rc;
        }
    }
out:;
    double el = now_s() - t0;
    int ex = EX_OK;
    if (done > 0) {
        qsort(lat, done, sizeof *lat, cmp_double);
        double p50 = lat[(done - 1) * 50 / 100], p99 = lat[(done - 1) * 99 / 100];
        printf("bench-counter: %" PRIu64 " increments in %.3f s: %.0f ops/s\n", done, el,
               el > 0 ? (double)done / el : 0.0);
        printf("latency: p50 %.3f ms, p99 %.3f ms, max %.3f ms (up to %d outstanding)\n",
               p50 * 1e3, p99 * 1e3, lat[done - 1] * 1e3, BENCH_OUTSTANDING);
        printf("highest counter value seen: %" PRId64 "\n", last_value);
    }
    if (errors) {
        fprintf(stderr, "%s: %" PRIu64 " increments returned an error result\n", prog, errors);
        ex = EX_RESULT;
    }
    if (refused) {
        fprintf(stderr, "%s: %" PRIu64 " increment%s refused; the first:\n", prog, refused, refused == 1 ? "" : "s");
        ex = report_refusal(first_refusal, &refusal);
    }
    if (failed) {
        /* report_failure's line names the program itself */
        fprintf(stderr, "%s: %" PRIu64 " increment%s failed; the first:\n", prog, failed, failed == 1 ? "" : "s");
        report_failure(first_fail, true, addrs, NULL, c);
        ex = EX_UNREACHABLE;
    }
    if (done < n)
        ex = EX_UNREACHABLE;
    rabia_buf_free(&op);
    rabia_buf_free(&res);
    rabia_buf_free(&refusal);
    free(start);
    free(lat);
    return ex;
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"addr", required_argument, NULL, 'a'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"tls", no_argument, NULL, 1000},
        {"cacert", required_argument, NULL, 1001},
        {"cert", required_argument, NULL, 1002},
        {"key", required_argument, NULL, 1003},
        {"tls-server-name", required_argument, NULL, 1004},
        {"user", required_argument, NULL, 'U'},
        {"pass", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    bool tls = false;
    const char *tls_ca = NULL, *tls_cert = NULL, *tls_key = NULL, *tls_name = NULL;
    const char *user = getenv("RABIA_USER"), *pass = getenv("RABIA_PASSWORD");
    const char *addr_list = DEFAULT_ADDRS;
    uint32_t timeout_ms = 1000;
    int o;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "+a:t:h", longopts, NULL)) != -1) {
        switch (o) {
        case 'a':
            addr_list = optarg;
            break;
        case 't': {
            uint64_t t;
            if (!parse_u64(optarg, &t) || t == 0 || t > 3600000)
                return usage_error("--timeout: not a number of milliseconds (1..3600000): %s",
                                   optarg);
            timeout_ms = (uint32_t)t;
            break;
        }
        case 'h':
            usage(stdout);
            return EX_OK;
        case 1000:
            tls = g_tls = true;
            break;
        case 1001:
            tls_ca = optarg;
            break;
        case 1002:
            tls_cert = optarg;
            break;
        case 1003:
            tls_key = optarg;
            break;
        case 1004:
            if (!optarg[0])
                return usage_error("--tls-server-name: empty name", NULL);
            tls_name = optarg;
            break;
        case 'U':
            user = optarg;
            break;
        case 'P':
            pass = optarg;
            break;
        default:
            return usage_error("unknown option or missing argument: %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("missing command", NULL);
    char *cmd = argv[optind];
    int cargc = argc - optind - 1;
    char **cargv = argv + optind + 1;

    /* Addresses. */
    char *list = strdup(addr_list);
    char *addrs[MAX_ADDRS];
    size_t n_addrs = 0;
    char *save = NULL;
    for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
        if (n_addrs == MAX_ADDRS) {
            free(list);
            return usage_error("-a: too many addresses", NULL);
        }
        addrs[n_addrs++] = a;
    }
    if (n_addrs == 0) {
        free(list);
        return usage_error("-a: no address given", NULL);
    }
    /* each address as the client library takes it, for backup too (it
     * dials with its own code): "-a foo backup F" ended in exit 3, which
     * says no replica was reachable, where the other commands give this
     * usage error (exit 2); and "-a host:0" was dialed */
    for (size_t i = 0; i < n_addrs; i++) {
        char h[256], p[16];
        if (client_split_addr(addrs[i], h, sizeof h, p, sizeof p) < 0) {
            int bx = usage_error("-a: bad address list (want host:port[,host:port...]): %s", addr_list);
            free(list);
            return bx;
        }
    }
    /* CLIENT_AUTH carries a user of up to 255 bytes (u8 length) and a
     * password of up to 4096: longer ones are refused by rabia_client_open
     * with the -EINVAL of a bad address, which was reported as "-a: bad
     * address list" of good addresses (and by backup only after dialing) */
    if (pass && pass[0]) {
        char n[96];
        size_t ul = user ? strlen(user) : 0, pl = strlen(pass);
        if (ul > 255 || pl > 4096) {
            snprintf(n, sizeof n, "%s: %zu bytes, more than the %d a replica takes",
                     ul > 255 ? "--user / RABIA_USER" : "--pass / RABIA_PASSWORD", ul > 255 ? ul : pl,
                     ul > 255 ? 255 : 4096);
            free(list);
            return usage_error("%s", n);
        }
    }

    if (!strcmp(cmd, "backup")) { /* cmd/backup.c: its own connection (TLS, CLIENT_AUTH as below), no session */
        struct rabia_client_cfg bcfg = {.tls = tls, .tls_ca_file = tls_ca, .tls_cert_file = tls_cert,
                                        .tls_key_file = tls_key, .tls_server_name = tls_name, .user = user,
                                        .password = pass && pass[0] ? pass : NULL};
        int bx;
        if (!tls && (tls_ca || tls_cert || tls_key || tls_name))
            bx = usage_error("--cacert, --cert, --key and --tls-server-name need --tls", NULL);
        else if (cargc == 1 && strcmp(cargv[0], "--verify"))
            bx = cli_backup(addrs, n_addrs, cargv[0], timeout_ms, &bcfg);
        else if (cargc == 2 && !strcmp(cargv[0], "--verify"))
            bx = cli_backup_verify(cargv[1]);
        else
            bx = usage_error("backup takes PATH, or --verify PATH", NULL);
        free(list);
        return bx;
    }
    /* Build the operation first: usage errors need no connection. */
    struct rabia_buf op = {0};
    enum sm_kind kind = SM_COUNTER;
    bool write = false;
    int ex = EX_OK;
    uint64_t bench_n = 0;
    if (!strcmp(cmd, "counter")) {
        ex = build_counter(cargc, cargv, &op, &write);
    } else if (!strcmp(cmd, "bank")) {
        kind = SM_BANK;
        ex = build_bank(cargc, cargv, &op, &write);
    } else if (!strcmp(cmd, "kv")) {
        kind = SM_KV;
        ex = build_kv(cargc, cargv, &op, &write);
    } else if (!strcmp(cmd, "status")) {
        if (cargc != 0)
            ex = usage_error("status takes no arguments", NULL);
    } else if (!strcmp(cmd, "bench-counter")) {
        if (cargc != 1 || !parse_u64(cargv[0], &bench_n) || bench_n == 0 ||
            bench_n > 100000000)
            ex = usage_error("bench-counter takes a count N (1..100000000)", NULL);
    } else if (!strcmp(cmd, "help")) {
        usage(stdout);
        free(list);
        return EX_OK;
    } else {
        ex = usage_error("unknown command: %s", cmd);
    }
    if (ex != EX_OK) {
        if (ex != EX_USAGE)
            fprintf(stderr, "%s: cannot encode the operation: out of memory\n", prog);
        rabia_buf_free(&op);
        free(list);
        return ex;
    }

    struct rabia_client *c = NULL;
    struct rabia_client_cfg cfg = {.addrs = (const char *const *)addrs, .n_addrs = n_addrs,
                                   .client_id = 0, .timeout_ms = timeout_ms,
                                   .max_attempts = 0, .max_outstanding = BENCH_OUTSTANDING,
                                   .tls = tls, .tls_ca_file = tls_ca, .tls_cert_file = tls_cert,
                                   .tls_key_file = tls_key, .tls_server_name = tls_name,
                                   .user = user, .password = pass && pass[0] ? pass : NULL};
    if (!tls && (tls_ca || tls_cert || tls_key || tls_name)) {
        rabia_buf_free(&op);
        free(list);
        return usage_error("--cacert, --cert, --key and --tls-server-name need --tls", NULL);
    }
    if (tls) {
        char why[512];
        if (rabia_client_tls_check(&cfg, why, sizeof why) < 0) {
            fprintf(stderr, "%s: %s\n", prog, why);
            rabia_buf_free(&op);
            free(list);
            return EX_USAGE;
        }
    }
    int rc = rabia_client_open(&c, &cfg);
    if (rc < 0) {
        rabia_buf_free(&op);
        if (rc == -EINVAL) {
            ex = usage_error("-a: bad address list (want host:port[,host:port...]): %s",
                             addr_list);
        } else {
            fprintf(stderr, "%s: %s\n", prog, rabia_strerror(rc));
            ex = EX_UNREACHABLE;
        }
        free(list);
        return ex;
    }
    if (!strcmp(cmd, "status"))
        ex = cmd_status(c, addrs, n_addrs, tls);
    else if (!strcmp(cmd, "bench-counter"))
        ex = cmd_bench(c, bench_n, addr_list);
    else
        ex = run_op(c, kind, write, &op, addr_list);
    if (ex != EX_OK && rabia_client_tls_error(c))
        fprintf(stderr, "%s: %s\n", prog, rabia_client_tls_error(c));
    rabia_client_close(c);
    rabia_buf_free(&op);
    free(list);
    return ex;
}
