/* embed_session: the embedding API's own client session (issue: review
 * fixes, item 4). Three replicas run in this process (one thread each,
 * real io_uring loops and TCP on 127.0.0.1), window 8 with policy classes
 * so that a replica's batches can be decided out of order; every replica's
 * application submits OPS counter increments as fast as the queue takes
 * them, so far more than 64 are in flight. Every submission must come back
 * RABIA_REPLY_OK and the counter must end at exactly 3 x OPS on every
 * replica: no request expired, none applied twice. (Before the fix the
 * application's ack was seq - 60 whatever was still outstanding, so a later
 * batch decided first made earlier requests expire: never applied.)
 * Each replica's increments must also take effect in the order submitted
 * (replica.h): the value each one answers grows with its place in the
 * submission order. (Before the fix a request joined the next batch while
 * earlier ones waited in a batch already cut, and a slot that ended null
 * proposed that batch again after the next: an increment answered 713
 * after the one submitted before it answered 2744.)
 *
 * Then the application's reads by the read index: 200 rounds of GET,
 * INCREMENT, GET, GET submitted at once through replica 1, while replicas
 * 2 and 3 take increments of their own, must answer in order (the first
 * GET below the increment's value, the others at least it), and at least
 * 200 reads must go by the index (rabia_replica_status).
 *
 * Last, native clients (include/rabia/client.h: "a connection's requests
 * take effect in the order sent"): one per replica, each keeping 32
 * increments in flight, all three at once; each one's answers must grow
 * in the order sent. (Before the fix about 1 in 300 did not, as above.)
 *
 *   embed_session PORT_BASE OPS DATA_DIR      exit 0 on success */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "counter.h"
#include "rabia/client.h"
#include "rabia/replica.h"

#define N 3
static atomic_long n_done, n_ok, by_status[8];

static void *run(void *r)
{
    rabia_replica_run(r);
    return NULL;
}

/* the first phase's answers: the counter each increment answered, by
 * replica and submission order (ctx), -1 for one not answered OK */
static _Atomic int64_t *answered;

static void done(void *ctx, int status, const uint8_t *res, size_t len)
{
    int64_t v = -1;
    if (status != RABIA_REPLY_OK || rabia_counter_decode_result(res, len, &v, NULL, NULL) != 0) v = -1;
    atomic_store(&answered[(intptr_t)ctx], v);
    atomic_fetch_add(&n_done, 1);
    if (status == RABIA_REPLY_OK) atomic_fetch_add(&n_ok, 1);
    if (status >= 0 && status < 8) atomic_fetch_add(&by_status[status], 1);
}

/* the application's reads phase: each op's counter value, by its place in the round */
static atomic_int app_n;
static atomic_llong app_val[4];

static void app_done(void *ctx, int status, const uint8_t *res, size_t len)
{
    int64_t v = -1;
    if (status != RABIA_REPLY_OK || rabia_counter_decode_result(res, len, &v, NULL, NULL) != 0) v = -2;
    atomic_store(&app_val[(intptr_t)ctx], v);
    atomic_fetch_add(&app_n, 1);
}

static atomic_int bg_stop;

static void bg_done(void *ctx, int status, const uint8_t *res, size_t len)
{
    (void)ctx, (void)status, (void)res, (void)len;
}

/* increments through the replicas in arg (two) until bg_stop */
static void *background(void *arg)
{
    struct rabia_replica **rs = arg;
    struct rabia_buf inc = {0};
    rabia_counter_encode(&inc, RABIA_COUNTER_INC, 0);
    for (unsigned k = 0; !atomic_load(&bg_stop); k++) {
        if (rabia_replica_submit(rs[k % 2], inc.data, inc.len, bg_done, NULL) == -ENOBUFS) usleep(500);
        if (k % 8 == 7) usleep(300);
    }
    rabia_buf_free(&inc);
    return NULL;
}

/* the native clients' phase: client i on replica i's client port */
#define NATIVE_OPS 3000
static int native_base;
static atomic_long native_inversions, native_bad;

static void native_record(int64_t *val, uint64_t first, uint64_t ds, int st, const struct rabia_buf *res)
{
    int64_t v = -1;
    if (st != RABIA_REPLY_OK || rabia_counter_decode_result(res->data, res->len, &v, NULL, NULL) != 0) v = -1;
    if (ds >= first && ds - first < NATIVE_OPS) val[ds - first] = v;
}

static void *native_client(void *arg)
{
    int i = (int)(intptr_t)arg;
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", native_base + 11 + i);
    const char *addrs[] = {addr};
    struct rabia_client_cfg cc = {.addrs = addrs, .n_addrs = 1, .client_id = (uint64_t)(1000 + i), .timeout_ms = 5000};
    struct rabia_client *c = NULL;
    int64_t *val = calloc(NATIVE_OPS, sizeof *val);
    struct rabia_buf inc = {0}, res = {0};
    rabia_counter_encode(&inc, RABIA_COUNTER_INC, 0);
    if (!val || rabia_client_open(&c, &cc)) {
        atomic_fetch_add(&native_bad, 1);
        free(val);
        return NULL;
    }
    uint64_t first = 0, ds = 0;
    for (long k = 0; k < NATIVE_OPS; k++) {
        if (rabia_client_in_flight(c) >= 32) {
            int st = rabia_client_wait(c, 0, &res, &ds, -1);
            native_record(val, first, ds, st, &res);
        }
        uint64_t seq;
        if (rabia_client_submit(c, inc.data, inc.len, &seq)) break;
        if (!first) first = seq;
    }
    for (int st; (st = rabia_client_wait(c, 0, &res, &ds, -1)) != -ENOENT;) native_record(val, first, ds, st, &res);
    long inversions = 0, bad = 0;
    int64_t prev = -1;
    for (long k = 0; k < NATIVE_OPS; k++) {
        if (val[k] < 0) {
            bad++;
            continue;
        }
        if (val[k] <= prev && inversions++ < 3)
            printf("native client %d: increment %ld answered %" PRId64 ", the one sent before it %" PRId64 "\n", i + 1,
                   k, val[k], prev);
        prev = val[k];
    }
    atomic_fetch_add(&native_inversions, inversions);
    atomic_fetch_add(&native_bad, bad);
    rabia_client_close(c);
    rabia_buf_free(&inc);
    rabia_buf_free(&res);
    free(val);
    return NULL;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: embed_session PORT_BASE OPS DATA_DIR\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress survives a timeout kill */
    int base = atoi(argv[1]);
    long ops = atol(argv[2]);
    char members[256], err[512];
    snprintf(members, sizeof members, "1=127.0.0.1:%d,2=127.0.0.1:%d,3=127.0.0.1:%d", base + 1, base + 2, base + 3);
    struct rabia_replica *r[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        struct rabia_replica_config cfg;
        char id[8], dir[600], cl[32];
        snprintf(id, sizeof id, "%d", i + 1);
        snprintf(cl, sizeof cl, "127.0.0.1:%d", base + 11 + i);
        snprintf(dir, sizeof dir, "%s/r%d", argv[3], i + 1);
        rabia_replica_config_default(&cfg);
        if (rabia_replica_config_set(&cfg, "id", id, err, sizeof err) ||
            rabia_replica_config_set(&cfg, "members", members, err, sizeof err) ||
            rabia_replica_config_set(&cfg, "data-dir", dir, err, sizeof err) ||
            rabia_replica_config_set(&cfg, "client-listen", cl, err, sizeof err) ||
            rabia_replica_config_set(&cfg, "window", "8", err, sizeof err) ||
            rabia_replica_config_set(&cfg, "policy", "classes", err, sizeof err) ||
            rabia_replica_config_set(&cfg, "batch-max-reqs", "16", err, sizeof err) ||
            rabia_replica_config_set(&cfg, "log-retain", getenv("EMBED_LOG_RETAIN") ? getenv("EMBED_LOG_RETAIN") : "1024", err, sizeof err) ||
            rabia_replica_config_set(&cfg, "log-level", "warn", err, sizeof err)) {
            fprintf(stderr, "embed_session: %s\n", err);
            return 2;
        }
        cfg.state_machine[0] = 0;
        if (rabia_replica_create(&r[i], &cfg, &rabia_sm_counter, err, sizeof err)) {
            fprintf(stderr, "embed_session: replica %d: %s\n", i + 1, err);
            return 1;
        }
    }
    for (int i = 0; i < N; i++) pthread_create(&th[i], NULL, run, r[i]);
    struct rabia_buf inc = {0}, get = {0}, res = {0};
    rabia_counter_encode(&inc, RABIA_COUNTER_INC, 0);
    rabia_counter_encode(&get, RABIA_COUNTER_GET, 0);
    /* wait for the cluster: one call through replica 1 */
    int st = -1;
    for (int k = 0; k < 100 && st != RABIA_REPLY_OK; k++) {
        st = rabia_replica_call(r[0], get.data, get.len, &res, 1000);
        if (st != RABIA_REPLY_OK) usleep(50000);
    }
    if (st != RABIA_REPLY_OK) {
        fprintf(stderr, "embed_session: the cluster does not answer (%d)\n", st);
        return 1;
    }
    answered = calloc((size_t)N * (size_t)ops, sizeof *answered);
    if (!answered) return 1;
    double t0 = now_s();
    long submitted = 0;
    for (long k = 0; k < ops; k++) {
        for (int i = 0; i < N; i++) {
            int rc;
            while ((rc = rabia_replica_submit(r[i], inc.data, inc.len, done, (void *)(intptr_t)(i * ops + k))) ==
                   -ENOBUFS)
                usleep(200);
            if (rc) {
                fprintf(stderr, "embed_session: submit: %d\n", rc);
                return 1;
            }
            submitted++;
        }
    }
    while (atomic_load(&n_done) < submitted && now_s() - t0 < 120) usleep(10000);
    double took = now_s() - t0;
    int bad = 0;
    printf("submitted %ld, answered %ld in %.2f s: ok %ld, session_expired %ld, busy %ld, bad_request %ld, "
           "applied_no_result %ld\n",
           submitted, atomic_load(&n_done), took, atomic_load(&n_ok), atomic_load(&by_status[RABIA_REPLY_SESSION_EXPIRED]),
           atomic_load(&by_status[RABIA_REPLY_BUSY]), atomic_load(&by_status[RABIA_REPLY_BAD_REQUEST]),
           atomic_load(&by_status[RABIA_REPLY_APPLIED_NO_RESULT]));
    if (atomic_load(&n_ok) != submitted) bad = 1;
    for (int i = 0; i < N; i++) { /* in the order submitted */
        long inversions = 0;
        int64_t prev = -1;
        for (long k = 0; k < ops; k++) {
            int64_t v = atomic_load(&answered[i * ops + k]);
            if (v < 0) continue; /* counted above */
            if (v <= prev && inversions++ < 3)
                printf("replica %d: increment %ld answered %" PRId64 ", the one submitted before it %" PRId64 "\n",
                       i + 1, k, v, prev);
            prev = v;
        }
        printf("replica %d: %ld increments out of the order submitted\n", i + 1, inversions);
        if (inversions) bad = 1;
    }
    /* every replica's counter: exactly 3 x OPS */
    for (int i = 0; i < N; i++) {
        int64_t v = -1;
        for (int k = 0; k < 50; k++) {
            st = rabia_replica_call(r[i], get.data, get.len, &res, 2000);
            if (st == RABIA_REPLY_OK && rabia_counter_decode_result(res.data, res.len, &v, NULL, NULL) == 0 &&
                v == submitted)
                break;
            usleep(100000);
        }
        printf("replica %d: counter %" PRId64 " (expected %ld)\n", i + 1, v, submitted);
        if (v != submitted) bad = 1;
    }
    /* The application's reads by the read index (app.c): rounds of GET;
     * INCREMENT; GET; GET submitted at once through replica 1, in order:
     * the first GET sees the counter before the increment, the others
     * after it, and replica 1 answers reads by the index. */
    struct rabia_replica_status s0, s1;
    rabia_replica_get_status(r[0], &s0);
    /* increments through replicas 2 and 3 meanwhile: a read's index then
     * often names a slot in progress, where an increment behind the read
     * would land were it not held back */
    pthread_t bg;
    struct rabia_replica *others[2] = {r[1], r[2]};
    pthread_create(&bg, NULL, background, others);
    for (long k = 0; k < 200 && !bad; k++) {
        const struct rabia_buf *round_ops[4] = {&get, &inc, &get, &get};
        atomic_store(&app_n, 0);
        for (int j = 0; j < 4; j++) {
            int rc;
            while ((rc = rabia_replica_submit(r[0], round_ops[j]->data, round_ops[j]->len, app_done, (void *)(intptr_t)j)) ==
                   -ENOBUFS)
                usleep(200);
            if (rc) {
                fprintf(stderr, "embed_session: submit: %d\n", rc);
                return 1;
            }
        }
        double tr = now_s();
        while (atomic_load(&app_n) < 4 && now_s() - tr < 10) usleep(100);
        /* the increment's own value v: the read before it saw less, those after it at least v */
        int64_t g0 = atomic_load(&app_val[0]), v = atomic_load(&app_val[1]), g2 = atomic_load(&app_val[2]),
                g3 = atomic_load(&app_val[3]);
        if (atomic_load(&app_n) < 4 || g0 < 0 || !(g0 < v && v <= g2 && g2 <= g3)) {
            printf("app reads: round %ld out of order: GET %" PRId64 ", INCREMENT %" PRId64 ", GET %" PRId64
                   ", GET %" PRId64 " (%d answered)\n", k, g0, v, g2, g3, atomic_load(&app_n));
            bad = 1;
        }
    }
    atomic_store(&bg_stop, 1);
    pthread_join(bg, NULL);
    usleep(200000); /* the status is published every 100 ms */
    rabia_replica_get_status(r[0], &s1);
    printf("app reads: 200 rounds of GET, INCREMENT, GET, GET with increments elsewhere, in order%s; %" PRIu64
           " reads by the read index\n",
           bad ? " FAILED" : "", s1.reads_indexed - s0.reads_indexed);
    if (s1.reads_indexed - s0.reads_indexed < 200) bad = 1;
    if (!bad) {
        native_base = base;
        pthread_t nc[N];
        for (int i = 0; i < N; i++) pthread_create(&nc[i], NULL, native_client, (void *)(intptr_t)i);
        for (int i = 0; i < N; i++) pthread_join(nc[i], NULL);
        printf("native clients: %d x %d pipelined increments, %ld out of the order sent, %ld not answered OK\n", N,
               NATIVE_OPS, atomic_load(&native_inversions), atomic_load(&native_bad));
        if (atomic_load(&native_inversions) || atomic_load(&native_bad)) bad = 1;
    }
    for (int i = 0; i < N; i++) rabia_replica_stop(r[i]);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        rabia_replica_destroy(r[i]);
    }
    rabia_buf_free(&inc);
    rabia_buf_free(&get);
    rabia_buf_free(&res);
    free(answered);
    printf("%s\n", bad ? "FAIL" : "PASS");
    return bad;
}
