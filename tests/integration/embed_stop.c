/* embed_stop: what the embedding API's submitters get when the replica
 * stops (include/rabia/replica.h). Every rabia_replica_submit that returned
 * 0 must have its `done` called exactly once, and a thread blocked in
 * rabia_replica_call must return when the replica stops, not wait out its
 * timeout (or for ever) with an -ETIMEDOUT that says nothing of why.
 *
 *  A. queued: a replica of three runs alone (no quorum), so its
 *     application's session never opens and every submission stays in the
 *     queue; a thread blocks in rabia_replica_call with a 20 s timeout.
 *     rabia_replica_stop: every done runs (-ESHUTDOWN), the call returns
 *     -ESHUTDOWN at once, and a submission after the stop is refused.
 *  B. in flight: three replicas, the session opened (and calls with a
 *     negative timeout refused -EINVAL, the replica answering on); 2 and 3
 *     stop, then replica 1 takes increments that enter its log's batches
 *     and can never be decided; it stops: every done runs.
 *  C. never run: a replica created, given submissions, destroyed: every
 *     done runs.
 *  D. a state machine's apply fails (-ENOMEM, state_machine.h: the replica
 *     stops rather than diverge): every replica applies it and stops, and
 *     rabia_replica_run says so with a negative errno, not 0 as after
 *     rabia_replica_stop (rabiad exits 1 then, so its supervisor sees it).
 *
 *   embed_stop PORT_BASE DATA_DIR      exit 0 on success */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "counter.h"
#include "embed_util.h"
#include "rabia/replica.h"

#define N 3
#define K 100

static atomic_int n_done, n_shutdown;

static void done(void *ctx, int status, const uint8_t *res, size_t len)
{
    (void)ctx, (void)res, (void)len;
    atomic_fetch_add(&n_done, 1);
    if (status == -ESHUTDOWN) atomic_fetch_add(&n_shutdown, 1);
}

static void *run(void *r)
{
    rabia_replica_run(r);
    return NULL;
}

/* D's state machine: the counter, whose apply fails for the op 0xEE */
static int poison_apply(void *sm, const uint8_t *op, size_t op_len, struct rabia_buf *reply)
{
    if (op_len == 1 && op[0] == 0xEE) return -ENOMEM;
    return rabia_sm_counter.apply(sm, op, op_len, reply);
}
static struct rabia_sm_ops poison;

struct caller {
    struct rabia_replica *r;
    int rc;
    double took;
};

static void *call_thread(void *arg)
{
    struct caller *c = arg;
    struct rabia_buf op = {0}, res = {0};
    rabia_counter_encode(&op, RABIA_COUNTER_INC, 0);
    double t0 = now_s();
    c->rc = rabia_replica_call(c->r, op.data, op.len, &res, 20000);
    c->took = now_s() - t0;
    rabia_buf_free(&op);
    rabia_buf_free(&res);
    return NULL;
}

static int make_sm(struct rabia_replica **out, int base, int id, const char *dir0, const struct rabia_sm_ops *sm)
{
    return embed_make(out, "embed_stop", base, id, dir0, sm, "error");
}

static int make(struct rabia_replica **out, int base, int id, const char *dir0)
{
    return make_sm(out, base, id, dir0, &rabia_sm_counter);
}

static int submit_k(struct rabia_replica *r, const struct rabia_buf *op)
{
    for (int k = 0; k < K; k++) {
        int rc = rabia_replica_submit(r, op->data, op->len, done, NULL);
        if (rc) {
            fprintf(stderr, "embed_stop: submit: %d\n", rc);
            return 1;
        }
    }
    return 0;
}

/* every done called within 2 s of the stop */
static int wait_done(const char *phase, int want)
{
    double t0 = now_s();
    while (atomic_load(&n_done) < want && now_s() - t0 < 2) usleep(1000);
    int d = atomic_load(&n_done), s = atomic_load(&n_shutdown);
    printf("%s: %d of %d submissions answered (%d with -ESHUTDOWN)\n", phase, d, want, s);
    return d == want && s == want ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: embed_stop PORT_BASE DATA_DIR\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int base = atoi(argv[1]), bad = 0;
    char dir[600];
    struct rabia_buf inc = {0}, get = {0}, res = {0};
    rabia_counter_encode(&inc, RABIA_COUNTER_INC, 0);
    rabia_counter_encode(&get, RABIA_COUNTER_GET, 0);

    /* A: queued behind a session that never opens */
    struct rabia_replica *a;
    snprintf(dir, sizeof dir, "%s/a", argv[2]);
    if (make(&a, base, 1, dir)) return 1;
    pthread_t ta, tc;
    pthread_create(&ta, NULL, run, a);
    if (submit_k(a, &inc)) return 1;
    struct caller c = {.r = a};
    pthread_create(&tc, NULL, call_thread, &c);
    usleep(300000);
    double t0 = now_s();
    rabia_replica_stop(a);
    pthread_join(ta, NULL);
    bad |= wait_done("A (queued)", K);
    pthread_join(tc, NULL);
    printf("A: rabia_replica_call returned %d after %.2f s (%.2f s after the stop)\n", c.rc, c.took, now_s() - t0);
    if (c.rc != -ESHUTDOWN || now_s() - t0 > 5) bad = 1;
    int rc = rabia_replica_submit(a, inc.data, inc.len, done, NULL);
    printf("A: submit after the stop: %d\n", rc);
    if (rc != -ESHUTDOWN) bad = 1;
    rabia_replica_destroy(a);
    if (rc == 0) atomic_fetch_sub(&n_done, 1); /* a wrong acceptance's answer, if destroy gave one */

    /* B: in the log's batches when the quorum goes */
    atomic_store(&n_done, 0);
    atomic_store(&n_shutdown, 0);
    struct rabia_replica *r[N];
    pthread_t th[N];
    snprintf(dir, sizeof dir, "%s/b", argv[2]);
    for (int i = 0; i < N; i++)
        if (make(&r[i], base + 10, i + 1, dir)) return 1;
    for (int i = 0; i < N; i++) pthread_create(&th[i], NULL, run, r[i]);
    int st = -1;
    for (int k = 0; k < 100 && st != RABIA_REPLY_OK; k++) {
        st = rabia_replica_call(r[0], get.data, get.len, &res, 1000);
        if (st != RABIA_REPLY_OK) usleep(50000);
    }
    if (st != RABIA_REPLY_OK) {
        fprintf(stderr, "embed_stop: the cluster does not answer (%d)\n", st);
        return 1;
    }
    /* a negative timeout is refused: it used to make a deadline the wait
     * refused at once, spinning with the call's mutex held, and the
     * replica's thread then blocked for ever answering it */
    const int negative[] = {-1, -999, -1500, -2001};
    for (int j = 0; j < 4; j++) {
        double tn = now_s();
        rc = rabia_replica_call(r[0], get.data, get.len, &res, negative[j]);
        printf("B: rabia_replica_call with timeout %d: %d after %.2f s\n", negative[j], rc, now_s() - tn);
        if (rc != -EINVAL) bad = 1;
    }
    st = rabia_replica_call(r[0], get.data, get.len, &res, 5000);
    printf("B: then a call with timeout 5000: %d\n", st);
    if (st != RABIA_REPLY_OK) bad = 1;
    for (int i = 1; i < N; i++) {
        rabia_replica_stop(r[i]);
        pthread_join(th[i], NULL);
    }
    if (submit_k(r[0], &inc)) return 1;
    usleep(300000);
    struct rabia_replica_status s;
    rabia_replica_get_status(r[0], &s);
    printf("B: replica 1 applied slot %llu with its peers gone\n", (unsigned long long)s.applied);
    rabia_replica_stop(r[0]);
    pthread_join(th[0], NULL);
    bad |= wait_done("B (in flight)", K);
    for (int i = 0; i < N; i++) rabia_replica_destroy(r[i]);

    /* C: never run */
    atomic_store(&n_done, 0);
    atomic_store(&n_shutdown, 0);
    struct rabia_replica *cr;
    snprintf(dir, sizeof dir, "%s/c", argv[2]);
    if (make(&cr, base + 20, 1, dir)) return 1;
    if (submit_k(cr, &inc)) return 1;
    rabia_replica_destroy(cr);
    bad |= wait_done("C (never run)", K);

    /* D: apply fails on every replica */
    poison = rabia_sm_counter;
    poison.name = "poison";
    poison.apply = poison_apply;
    struct runner x[N];
    snprintf(dir, sizeof dir, "%s/d", argv[2]);
    for (int i = 0; i < N; i++) {
        atomic_init(&x[i].rc, 1);
        if (make_sm(&x[i].r, base + 30, i + 1, dir, &poison)) return 1;
    }
    for (int i = 0; i < N; i++) pthread_create(&th[i], NULL, run_rc, &x[i]);
    st = -1;
    for (int k = 0; k < 100 && st != RABIA_REPLY_OK; k++) {
        st = rabia_replica_call(x[0].r, get.data, get.len, &res, 1000);
        if (st != RABIA_REPLY_OK) usleep(50000);
    }
    /* the replicas that learn the decision apply it and stop; one that
     * does not (its peers stopped first) is stopped here */
    const uint8_t bad_op = 0xEE;
    atomic_store(&n_done, 0);
    atomic_store(&n_shutdown, 0);
    rc = rabia_replica_submit(x[0].r, &bad_op, 1, done, NULL);
    if (rc) bad = 1;
    int self_stopped = 0;
    double td = now_s();
    for (int i = 0; i < N; i++) {
        while (now_s() - td < 5 && atomic_load(&x[i].rc) == 1) usleep(10000);
        bool by_itself = atomic_load(&x[i].rc) != 1;
        if (!by_itself) rabia_replica_stop(x[i].r);
        pthread_join(th[i], NULL);
        int xrc = atomic_load(&x[i].rc);
        printf("D: replica %d %s: rabia_replica_run returned %d\n", i + 1,
               by_itself ? "stopped by itself" : "stopped by rabia_replica_stop", xrc);
        self_stopped += by_itself;
        if (by_itself ? xrc >= 0 : xrc != 0) bad = 1;
    }
    if (!self_stopped) bad = 1;
    bad |= wait_done("D (the failing operation)", 1);
    for (int i = 0; i < N; i++) rabia_replica_destroy(x[i].r);

    rabia_buf_free(&inc);
    rabia_buf_free(&get);
    rabia_buf_free(&res);
    printf("%s\n", bad ? "FAIL" : "PASS");
    return bad;
}
