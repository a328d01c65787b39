/* The audit log (replica/audit.c) on its own: what a transaction leaves in
 * it, and a rotation that cannot create its next file. Real files in a
 * temporary folder; the replica struct holds only what audit.c reads (its
 * configuration; no node: no client identity). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "../../replica/internal.h" /* kv/ has an internal.h too */

static char dir[256];

/* A KV op: u32 argc, then (u32 length, bytes) per argument, little-endian. */
struct op {
    uint8_t b[1024];
    size_t n;
};
static void put32(struct op *o, uint32_t v)
{
    for (int i = 0; i < 4; i++) o->b[o->n++] = (uint8_t)(v >> (8 * i));
}
static void op_start(struct op *o, uint32_t argc)
{
    o->n = 0;
    put32(o, argc);
}
static void op_arg(struct op *o, const void *p, size_t n)
{
    CHECK(o->n + 4 + n <= sizeof o->b);
    put32(o, (uint32_t)n);
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void op_str(struct op *o, const char *s) { op_arg(o, s, strlen(s)); }

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return strdup("");
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strdup(buf);
}

static struct rabia_replica *open_audit(const char *name, uint64_t max_bytes, uint32_t keep)
{
    struct rabia_replica *r = calloc(1, sizeof *r);
    CHECK(r != NULL);
    r->cfg.log_level = RABIA_LOG_ERROR;
    snprintf(r->cfg.state_machine, sizeof r->cfg.state_machine, "kv");
    snprintf(r->cfg.audit_log, sizeof r->cfg.audit_log, "%s/%s", dir, name);
    r->cfg.audit_log_max_bytes = max_bytes;
    r->cfg.audit_log_keep = keep;
    char err[512];
    int rc = replica_audit_open(r, err, sizeof err);
    if (rc) fprintf(stderr, "replica_audit_open: %s\n", err);
    CHECK_EQ(rc, 0);
    replica_audit_live(r);
    return r;
}

static void close_audit(struct rabia_replica *r)
{
    replica_audit_close(r);
    free(r);
}

/* A transaction is logged only when it ran (an array reply): a refused one
 * (malformed: -ERR) or an aborted one (*-1) leaves nothing, and a TXNW with
 * no arguments at all is no transaction. */
static void test_transactions(void)
{
    struct rabia_replica *r = open_audit("txn.log", 1 << 20, 2);
    struct op set, txn;
    op_start(&set, 3);
    op_str(&set, "SET");
    op_str(&set, "refused:key");
    op_str(&set, "v");
    /* TXNW 00 <SET refused:key v>: the count "00" is malformed, the store
     * answers -ERR and runs nothing */
    op_start(&txn, 3);
    op_str(&txn, "TXNW");
    op_str(&txn, "00");
    op_arg(&txn, set.b, set.n);
    replica_audit_apply(r, 10, 1, 1, txn.b, txn.n, (const uint8_t *)"-ERR malformed TXNW\r\n", 21);
    /* TXNW alone */
    op_start(&txn, 1);
    op_str(&txn, "TXNW");
    replica_audit_apply(r, 11, 1, 2, txn.b, txn.n, (const uint8_t *)"-ERR malformed TXNW\r\n", 21);
    /* TXN <SET aborted:key v> answered *-1 (a watched key changed) */
    op_start(&set, 3);
    op_str(&set, "SET");
    op_str(&set, "aborted:key");
    op_str(&set, "v");
    op_start(&txn, 2);
    op_str(&txn, "TXN");
    op_arg(&txn, set.b, set.n);
    replica_audit_apply(r, 12, 1, 3, txn.b, txn.n, (const uint8_t *)"*-1\r\n", 5);
    /* TXN <SET ran:key v> that ran */
    op_start(&set, 3);
    op_str(&set, "SET");
    op_str(&set, "ran:key");
    op_str(&set, "v");
    op_start(&txn, 2);
    op_str(&txn, "TXN");
    op_arg(&txn, set.b, set.n);
    replica_audit_apply(r, 13, 1, 4, txn.b, txn.n, (const uint8_t *)"*1\r\n+OK\r\n", 9);
    replica_audit_flush(r);
    char path[300];
    snprintf(path, sizeof path, "%s/txn.log", dir);
    char *text = slurp(path);
    CHECK(strstr(text, "refused:key") == NULL);
    CHECK(strstr(text, "aborted:key") == NULL);
    CHECK(strstr(text, "\"args\":[\"ran:key\",\"v\"]") != NULL);
    CHECK(strstr(text, "\"slot\":13") != NULL);
    CHECK(strstr(text, "\"txn\":true") != NULL);
    int lines = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    CHECK_EQ(lines, 1);
    free(text);
    close_audit(r);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "test_audit: replica_audit_flush still running after 10 s (a rotation that spins)\n";
    if (write(2, m, sizeof m - 1)) {}
    _exit(2);
}

/* Past max-bytes a rotation is due, but no descriptor is left to create
 * the next file: the flush drops the lines and returns (it spun forever
 * before), and the rotated history is left as it was (each attempt used to
 * shift it one file further, deleting the oldest). */
static void test_rotation_without_descriptors(void)
{
    struct rabia_replica *r = open_audit("rot.log", 65536, 3);
    char path[300], p1[310];
    snprintf(path, sizeof path, "%s/rot.log", dir);
    snprintf(p1, sizeof p1, "%s.1", path);
    FILE *f = fopen(p1, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("the oldest history\n", f);
        fclose(f);
    }
    struct op set;
    char key[32], val[200];
    memset(val, 'x', sizeof val);
    for (int i = 0; i < 300; i++) { /* about 100 KiB of lines: past 64 KiB */
        op_start(&set, 3);
        op_str(&set, "SET");
        snprintf(key, sizeof key, "k%d", i);
        op_str(&set, key);
        op_arg(&set, val, sizeof val);
        replica_audit_apply(r, 100 + (uint64_t)i, 1, (uint64_t)i + 1, set.b, set.n, (const uint8_t *)"+OK\r\n", 5);
    }
    /* use up every descriptor (under a small limit: the machine's may be huge) */
    struct rlimit old, low;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    low = old;
    low.rlim_cur = 64;
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    int fds[64], n = 0;
    while (n < 64) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) break;
        fds[n++] = fd;
    }
    CHECK(n < 64 && (errno == EMFILE || errno == ENFILE));
    signal(SIGALRM, on_alarm);
    alarm(10);
    replica_audit_flush(r);
    replica_audit_flush(r);
    alarm(0);
    while (n > 0) close(fds[--n]);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    char *one = slurp(p1);
    CHECK(strcmp(one, "the oldest history\n") == 0);
    free(one);
    char p2[310];
    snprintf(p2, sizeof p2, "%s.2", path);
    CHECK(access(p2, F_OK) != 0); /* nothing shifted */
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && sb.st_size <= 65536);
    /* descriptors back: the next lines rotate normally */
    for (int i = 0; i < 10; i++) {
        op_start(&set, 3);
        op_str(&set, "SET");
        snprintf(key, sizeof key, "after%d", i);
        op_str(&set, key);
        op_arg(&set, val, sizeof val);
        replica_audit_apply(r, 1000 + (uint64_t)i, 1, 400 + (uint64_t)i, set.b, set.n, (const uint8_t *)"+OK\r\n", 5);
    }
    replica_audit_flush(r);
    char *now = slurp(path);
    CHECK(strstr(now, "after9") != NULL);
    free(now);
    close_audit(r);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/rabia-test-audit.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_transactions);
    RUN(test_rotation_without_descriptors);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return CHECK_DONE();
}
