/* embed_diverge: replicas whose states differ are found, and the odd one
 * stops (replica/hashcheck.c).
 *
 * Three replicas in one process run a small state machine with a state_hash
 * op (a tally of increments). Replica 3's copy is not deterministic: once
 * its tally reaches SKEW_AT it adds one more than it was asked, the way an
 * embedded state machine that read the clock or a random number in apply
 * would drift. Increments go through replica 1, one slot each, past two
 * checkpoints (every 1024 slots). Then:
 *   - replica 3 stops by itself (rabia_replica_run returns -EIO) with an
 *     ERROR naming the slot, both hashes and the fix (--rejoin);
 *   - replicas 1 and 2 log that replica 3 differs and that two of three
 *     hold their state, keep serving (an increment through each is
 *     answered) and agree with each other;
 *   - before the skew, the checkpoint at slot 1024 agreed everywhere (no
 *     line about a difference before the one at 2048).
 * Without the check (before 2026-12-05) replica 3 served its drifted tally
 * for ever, nothing logged.
 * B (late_majority): replica 1, alone with replica 3 when the states part,
 * is healthy again once replica 2, started later from a snapshot past that
 * checkpoint, agrees with it at the next one.
 *
 *   embed_diverge PORT_BASE DATA_DIR      exit 0 on success */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "embed_util.h"
#include "rabia/replica.h"

#define N 3
#define OPS 2400      /* increments through replica 1: past the checkpoints at 1024 and 2048 */
#define SKEW_AT 1500  /* replica 3's tally skips a number here */

struct tally {
    int64_t v;
};

static void *tally_create(void) { return calloc(1, sizeof(struct tally)); }
static void tally_destroy(void *sm) { free(sm); }

static int put_v(struct rabia_buf *reply, int64_t v) { return rabia_buf_put_u64(reply, (uint64_t)v); }

static int tally_apply(void *sm, const uint8_t *op, size_t len, struct rabia_buf *reply)
{
    struct tally *t = sm;
    if (len == 1 && op[0] == 'i') t->v++;
    return put_v(reply, t->v);
}

static int skewed_apply(void *sm, const uint8_t *op, size_t len, struct rabia_buf *reply)
{
    struct tally *t = sm;
    if (len == 1 && op[0] == 'i' && t->v == SKEW_AT) t->v++; /* not deterministic: this replica only */
    return tally_apply(sm, op, len, reply);
}

static int tally_snapshot(void *sm, struct rabia_buf *out) { return put_v(out, ((struct tally *)sm)->v); }

static int tally_restore(void *sm, const uint8_t *data, size_t len)
{
    if (len != 8) return -EINVAL;
    int64_t v;
    memcpy(&v, data, 8);
    ((struct tally *)sm)->v = v;
    return 0;
}

static int tally_hash(void *sm, uint64_t *out)
{
    uint64_t x = (uint64_t)((struct tally *)sm)->v + 0x9e3779b97f4a7c15ull;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    *out = x ^ (x >> 29);
    return 0;
}

static const struct rabia_sm_ops tally_ops = {.name = "tally", .create = tally_create, .destroy = tally_destroy,
                                              .apply = tally_apply, .snapshot = tally_snapshot,
                                              .restore = tally_restore, .state_hash = tally_hash};
static const struct rabia_sm_ops skewed_ops = {.name = "tally", .create = tally_create, .destroy = tally_destroy,
                                               .apply = skewed_apply, .snapshot = tally_snapshot,
                                               .restore = tally_restore, .state_hash = tally_hash};

static int make(struct rabia_replica **out, int base, int id, const char *dir0, const struct rabia_sm_ops *sm)
{
    return embed_make(out, "embed_diverge", base, id, dir0, sm, "warn");
}

/* The same with log-retain 16: a replica that falls behind catches up by a
 * snapshot, never applying (and noting) the slots it skips. */
static int make_short_log(struct rabia_replica **out, int base, int id, const char *dir0,
                          const struct rabia_sm_ops *sm)
{
    static const char *const extra[] = {"log-retain", "16", "durability", "memory", NULL};
    return embed_make_with(out, "embed_diverge", base, id, dir0, sm, "warn", extra);
}

/* one increment through r, answered within 5 s: its tally, or -1 */
static int64_t inc(struct rabia_replica *r)
{
    struct rabia_buf res = {0};
    int64_t v = -1;
    if (rabia_replica_call(r, "i", 1, &res, 5000) == 0 && res.len == 8) memcpy(&v, res.data, 8);
    rabia_buf_free(&res);
    return v;
}

/* the log's lines (the replicas' stderr went to path) that contain all of a and b */
static int lines_with(const char *path, const char *a, const char *b, char *first, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[2048];
    int k = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, a) && (!b || strstr(line, b))) {
            if (!k++ && first) snprintf(first, cap, "%s", line);
        }
    fclose(f);
    return k;
}

/* B: replica 2 is away when replica 3's state drifts, so replica 1 sees one
 * peer differ and cannot tell which state is the odd one (state_diverged,
 * /health 503). Replica 3 is then taken out, and replica 2 comes back
 * through a snapshot from replica 1 past slot 2048, a checkpoint it never
 * notes, and agrees with replica 1 at the next one: two of three hold
 * replica 1's state, which must say so and be healthy again. Before
 * 2026-12-05 only a note for the very slot that first differed cleared
 * that, and replica 1 stayed unhealthy for ever. Returns 1 on failure. */
static int late_majority(int base, const char *dir)
{
    mkdir(dir, 0700);
    char logpath[600];
    snprintf(logpath, sizeof logpath, "%s/replicas.log", dir);
    int saved = embed_log_to(logpath);
    if (saved < 0) return 1;
    struct runner x[N];
    pthread_t th[N];
    for (int i = 0; i < N; i += 2) { /* replica 2 not started yet */
        if (make_short_log(&x[i].r, base, i + 1, dir, i == 2 ? &skewed_ops : &tally_ops)) return 1;
        atomic_store(&x[i].rc, 1);
        pthread_create(&th[i], NULL, run_rc, &x[i]);
    }
    int done = 0, more = 0;
    while (done < OPS && inc(x[0].r) >= 0) done++;
    rabia_replica_stop(x[2].r); /* replica 3 taken out */
    pthread_join(th[2], NULL);
    rabia_replica_destroy(x[2].r);
    int rc2 = make_short_log(&x[1].r, base, 2, dir, &tally_ops); /* replica 2 starts: replica 1's snapshot */
    if (!rc2) {
        atomic_store(&x[1].rc, 1);
        pthread_create(&th[1], NULL, run_rc, &x[1]);
        int64_t v = 0; /* one slot per increment: the tally is at most the slot */
        while (v < 3200 && (v = inc(x[0].r)) >= 0) more++; /* past the checkpoint at 3072 */
    }
    double t0 = now_s();
    while (!lines_with(logpath, "r1 ", "replica 2 agrees after slot", NULL, 0) && now_s() - t0 < 5) usleep(10000);
    int r1rc = atomic_load(&x[0].rc);
    rabia_replica_stop(x[0].r);
    pthread_join(th[0], NULL);
    rabia_replica_destroy(x[0].r);
    if (!rc2) {
        rabia_replica_stop(x[1].r);
        pthread_join(th[1], NULL);
        rabia_replica_destroy(x[1].r);
    }
    embed_log_back(saved);
    printf("B: %d increments before replica 2 started, %d after\n", done, more);
    char line[2048] = "";
    int bad = done != OPS || more < 800 || r1rc != 1;
    if (bad) printf("FAIL: B did not run as planned (replica 1: %d)\n", r1rc);
    struct {
        const char *a, *b, *what;
    } expect[] = {
        {"ERROR r1 ", "state differs from replica 3's", "B: replica 1 finds replica 3 differ, alone"},
        {"r1 ", "replica 2 agrees after slot", "B: replica 1 healthy again once replica 2 agrees at a later slot"},
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        int k = lines_with(logpath, expect[i].a, expect[i].b, line, sizeof line);
        printf("%s: %s (%d line%s)%s%s", k ? "ok" : "FAIL", expect[i].what, k, k == 1 ? "" : "s", k ? ": " : "\n",
               k ? line : "");
        if (!k) bad = 1;
    }
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: embed_diverge PORT_BASE DATA_DIR\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int base = atoi(argv[1]), bad = 0;
    const char *dir = argv[2];
    mkdir(dir, 0700);
    /* the replicas log to stderr: into a file this test reads back */
    char logpath[600];
    snprintf(logpath, sizeof logpath, "%s/replicas.log", dir);
    int saved = embed_log_to(logpath);
    if (saved < 0) return 2;

    struct runner x[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        if (make(&x[i].r, base, i + 1, dir, i == 2 ? &skewed_ops : &tally_ops)) return 1;
        atomic_store(&x[i].rc, 1);
        pthread_create(&th[i], NULL, run_rc, &x[i]);
    }
    double t0 = now_s();
    int64_t last = 0;
    int done = 0;
    for (; done < OPS; done++) {
        int64_t v = inc(x[0].r);
        if (v < 0) break;
        last = v;
    }
    struct rabia_replica_status st1;
    rabia_replica_get_status(x[0].r, &st1);
    printf("%d increments through replica 1 in %.1f s (tally %lld, applied slot %llu)\n", done, now_s() - t0,
           (long long)last, (unsigned long long)st1.applied);
    if (done != OPS || st1.applied < 2048) {
        printf("FAIL: not past slot 2048\n");
        bad = 1;
    }
    /* replica 3 stops itself once both peers' checkpoint at 2048 reached it */
    t0 = now_s();
    while (atomic_load(&x[2].rc) == 1 && now_s() - t0 < 10) usleep(10000);
    int rc3 = atomic_load(&x[2].rc);
    printf("replica 3 (not deterministic): rabia_replica_run returned %d (%s) %.2f s after the last increment\n", rc3,
           rc3 == 1 ? "still running" : strerror(-rc3), now_s() - t0);
    if (rc3 != -EIO) {
        printf("FAIL: replica 3 should stop with -EIO\n");
        bad = 1;
    }
    /* 1 and 2 go on: an increment through each, the same tally after */
    int64_t a = inc(x[0].r), b = inc(x[1].r);
    printf("after it: an increment through replica 1 -> %lld, through replica 2 -> %lld\n", (long long)a,
           (long long)b);
    if (a != last + 1 || b != last + 2) {
        printf("FAIL: replicas 1 and 2 should keep serving (expected %lld and %lld)\n", (long long)last + 1,
               (long long)last + 2);
        bad = 1;
    }
    for (int i = 0; i < 2; i++)
        if (atomic_load(&x[i].rc) != 1) {
            printf("FAIL: replica %d stopped (%d)\n", i + 1, atomic_load(&x[i].rc));
            bad = 1;
        }
    for (int i = 0; i < N; i++) rabia_replica_stop(x[i].r);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        rabia_replica_destroy(x[i].r);
    }
    embed_log_back(saved);

    char line[2048] = "";
    struct {
        const char *a, *b, *what;
        int want; /* -1: at least one */
    } expect[] = {
        {"ERROR r3 after slot 2048 this replica's state hash", "which 2 of its peers hold", "replica 3 stops", -1},
        {"--rejoin", "stopping this replica", "... and names the fix", -1},
        /* ... keeping the cluster id: a restored cluster's is not the members' */
        {"copy its cluster-id file into the new empty one", "stopping this replica", "... which keeps the cluster id", -1},
        /* 1 and 2 each learn that 2 of 3 hold their state: at once when the
         * other's checkpoint came first, else once it comes (after an ERROR
         * that only knew replica 3 differed) */
        {"r1 ", "2 of 3 replicas hold this replica's state", "replica 1: its state is the majority's", -1},
        {"r2 ", "2 of 3 replicas hold this replica's state", "replica 2: its state is the majority's", -1},
        {"r1 ", "replica 3", "replica 1 names replica 3", -1},
        {"r2 ", "replica 3", "replica 2 names replica 3", -1},
        {"after slot 1024", NULL, "the checkpoint before the skew agreed", 0},
        {"ERROR r1 after slot", NULL, "replica 1 does not stop", 0},
        {"ERROR r2 after slot", NULL, "replica 2 does not stop", 0},
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        int k = lines_with(logpath, expect[i].a, expect[i].b, line, sizeof line);
        bool ok = expect[i].want < 0 ? k > 0 : k == expect[i].want;
        printf("%s: %s (%d line%s)%s%s", ok ? "ok" : "FAIL", expect[i].what, k, k == 1 ? "" : "s",
               k ? ": " : "\n", k ? line : "");
        if (!ok) bad = 1;
    }
    char late[400];
    snprintf(late, sizeof late, "%s/late", dir);
    if (late_majority(base + 10, late)) {
        bad = 1;
        snprintf(logpath, sizeof logpath, "%s/replicas.log", late);
    }
    if (bad) {
        printf("--- %s:\n", logpath);
        FILE *f = fopen(logpath, "r");
        char l[2048];
        for (int n = 0; f && fgets(l, sizeof l, f) && n < 40; n++) fputs(l, stdout);
        if (f) fclose(f);
    }
    printf("%s\n", bad ? "FAIL" : "PASS");
    return bad;
}
