/* embed_frozen: a replica destroyed while its log write is still in the
 * kernel's hands (a disk that stopped answering) must not let anything
 * write to its data dir before that write lands.
 *
 * An io_uring write that cannot go on (here: the filesystem frozen with
 * fsfreeze, as a stalled device or a snapshot tool does) is parked in a
 * kernel worker and reads its buffer only when the disk lets it go on, at
 * its offset in the log; rio_loop_destroy stops waiting for it after
 * RIO_DESTROY_WAIT_US. Before, rabia_replica_destroy then freed the buffer
 * and unlocked the data dir: a replica created again on that dir in the
 * same process (an embedder restarting its replica) recovered the log
 * without that write and appended its own groups at the same offset, for
 * the late write to overwrite when the disk came back (and the freed buffer
 * could hold anything by then).
 *
 *   embed_frozen PORT_BASE MOUNT LOG freeze
 *     three counter replicas with their data dirs in MOUNT (a filesystem of
 *     its own: the test freezes it), K acknowledged increments, fsfreeze -f,
 *     one more increment (its log writes stall), destroy every replica
 *     (stderr to LOG), then create replica 1 again on its data dir: it must
 *     be refused, naming the write in flight; thaw.
 *   embed_frozen PORT_BASE MOUNT LOG check
 *     a new process: the three replicas from their data dirs hold every
 *     acknowledged increment and take a new one.
 * exit 0 on success */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "counter.h"
#include "embed_util.h"
#include "rabia/replica.h"

#define N 3
#define K 50

static const char *g_mnt;
static int g_base;

static int make(struct rabia_replica **out, int id)
{
    /* small segments: three logs fit the small filesystem */
    static const char *const extra[] = {"wal-segment-bytes", "4194304", NULL};
    return embed_make_with(out, "embed_frozen", g_base, id, g_mnt, &rabia_sm_counter, "warn", extra);
}

static int freeze(const char *how)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "fsfreeze %s '%s'", how, g_mnt);
    int rc = system(cmd);
    printf("%s: exit %d\n", cmd, rc);
    return rc;
}

static atomic_int n_done;
static void done(void *ctx, int status, const uint8_t *res, size_t len)
{
    (void)ctx, (void)status, (void)res, (void)len;
    atomic_fetch_add(&n_done, 1);
}

/* the counter's value through replica r (a read by the read index), or -1 */
static int64_t get(struct rabia_replica *r, int timeout_ms)
{
    struct rabia_buf op = {0}, res = {0};
    rabia_counter_encode(&op, RABIA_COUNTER_GET, 0);
    int64_t v = -1;
    if (rabia_replica_call(r, op.data, op.len, &res, timeout_ms) == 0 &&
        rabia_counter_decode_result(res.data, res.len, &v, NULL, NULL) != 0)
        v = -1;
    rabia_buf_free(&op);
    rabia_buf_free(&res);
    return v;
}

static int inc(struct rabia_replica *r)
{
    struct rabia_buf op = {0}, res = {0};
    rabia_counter_encode(&op, RABIA_COUNTER_INC, 0);
    int rc = rabia_replica_call(r, op.data, op.len, &res, 10000);
    rabia_buf_free(&op);
    rabia_buf_free(&res);
    return rc;
}

/* the session opens once the cluster decides a slot */
static int wait_session(struct rabia_replica *r)
{
    double t0 = now_s();
    while (get(r, 1000) < 0)
        if (now_s() - t0 > 30) {
            fprintf(stderr, "embed_frozen: replica 1 answered no read in 30 s\n");
            return 1;
        }
    return 0;
}

/* One replica's life on a thread that does not end with it, as in an
 * embedder that runs, destroys and makes its replica again in one thread:
 * a thread's exit waits for its io_uring writes (the kernel cancels or
 * finishes them first), so a thread that ends after the run would hide the
 * hazard until the disk answers. Replica 1 is made again on its data dir
 * right after its destroy; every thread ends once the filesystem thawed. */
struct life {
    int id;
    struct rabia_replica *r;
    double destroy_took;
    int again_rc; /* replica 1 made again: 0 (then destroyed), or make's */
    atomic_int stage; /* 1 destroyed, 2 made again (replica 1) */
    atomic_int *thawed;
};

static void *life_run(void *arg)
{
    struct life *x = arg;
    rabia_replica_run(x->r);
    double t0 = now_s();
    rabia_replica_destroy(x->r);
    x->destroy_took = now_s() - t0;
    atomic_store(&x->stage, 1);
    if (x->id == 1) {
        struct rabia_replica *again = NULL;
        x->again_rc = make(&again, 1);
        if (x->again_rc == 0) rabia_replica_destroy(again);
        atomic_store(&x->stage, 2);
    }
    while (!atomic_load(x->thawed)) usleep(10000);
    return NULL;
}

static int file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[2048];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static int run_freeze(const char *log)
{
    struct life x[N];
    pthread_t t[N];
    atomic_int thawed = 0;
    int bad = 0;
    for (int i = 0; i < N; i++) {
        x[i] = (struct life){.id = i + 1, .thawed = &thawed};
        if (make(&x[i].r, i + 1)) return 1;
    }
    for (int i = 0; i < N; i++) pthread_create(&t[i], NULL, life_run, &x[i]);
    if (wait_session(x[0].r)) return 1;
    int64_t before = get(x[0].r, 5000);
    for (int k = 0; k < K; k++)
        if (inc(x[k % N].r)) {
            fprintf(stderr, "embed_frozen: increment %d not acknowledged\n", k);
            return 1;
        }
    int64_t acked = get(x[0].r, 5000);
    printf("counter %lld -> %lld after %d acknowledged increments\n", (long long)before, (long long)acked, K);
    if (acked != before + K) return 1;
    int saved = embed_log_to(log);
    if (freeze("-f")) return 1;
    /* the next slot's records go to the logs; their writes stall */
    struct rabia_buf op = {0};
    rabia_counter_encode(&op, RABIA_COUNTER_INC, 0);
    for (int i = 0; i < N; i++) rabia_replica_submit(x[i].r, op.data, op.len, done, NULL);
    rabia_buf_free(&op);
    usleep(500000);
    for (int i = 0; i < N; i++) rabia_replica_stop(x[i].r);
    /* every destroy, and replica 1 made again: before the fix that could
     * wait on the frozen filesystem (its start writes files there) */
    double t0 = now_s();
    int all = 0;
    while (!all && now_s() - t0 < 15) {
        usleep(10000);
        all = atomic_load(&x[0].stage) == 2 && atomic_load(&x[1].stage) >= 1 && atomic_load(&x[2].stage) >= 1;
    }
    if (freeze("-u")) bad = 1;
    atomic_store(&thawed, 1);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL); /* their exits wait for the parked writes */
    if (saved >= 0) embed_log_back(saved);
    printf("destroyed the replicas in %.2f, %.2f, %.2f s; %d of %d submissions answered (the stop answers them)\n",
           x[0].destroy_took, x[1].destroy_took, x[2].destroy_took, atomic_load(&n_done), N);
    const char *said = "replica 1 stopped with a write to its log not answered";
    if (file_has(log, said)) {
        printf("ok: the log says \"%s ...\"\n", said);
    } else {
        printf("FAIL: no \"%s\" in %s\n", said, log);
        bad = 1;
    }
    if (x[0].again_rc == 0) {
        printf("FAIL: replica 1 was made again on its data dir %s while the destroyed one's log write was "
               "still parked: its groups could be overwritten when that write lands\n",
               all ? "at once" : "once the filesystem thawed");
        bad = 1;
    } else if (file_has(log, "destroyed with a log write still in flight")) {
        /* its start waits on the frozen filesystem (the data dir's fsync)
         * before it meets the lock */
        printf("ok: replica 1 made again on its data dir was refused (%s): the data dir stays locked\n",
               all ? "before the thaw" : "after the thaw");
    } else {
        printf("FAIL: replica 1 made again was refused, but not for the write in flight (see %s)\n", log);
        bad = 1;
    }
    sleep(1); /* the parked writes land now */
    return bad;
}

static int run_check(void)
{
    struct runner x[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        if (make(&x[i].r, i + 1)) return 1;
        atomic_store(&x[i].rc, 1);
        pthread_create(&t[i], NULL, run_rc, &x[i]);
    }
    int bad = wait_session(x[0].r);
    int64_t v = get(x[0].r, 5000);
    int rc = inc(x[1].r);
    int64_t w = get(x[2].r, 5000);
    printf("after the restart: counter %lld (at least the %d acknowledged increments), a new increment: %d, "
           "then %lld\n",
           (long long)v, K, rc, (long long)w);
    for (int i = 0; i < N; i++) rabia_replica_stop(x[i].r);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) rabia_replica_destroy(x[i].r);
    return bad || v < K || rc != 0 || w != v + 1;
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[4], "freeze") && strcmp(argv[4], "check"))) {
        fprintf(stderr, "usage: embed_frozen PORT_BASE MOUNT LOG freeze|check\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_base = atoi(argv[1]);
    g_mnt = argv[2];
    int bad = strcmp(argv[4], "freeze") ? run_check() : run_freeze(argv[3]);
    printf("%s\n", bad ? "FAILED" : "passed");
    return bad;
}
