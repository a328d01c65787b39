/* An application that embeds a rabia replica with its own state machine,
 * built out of tree against the installed library (pkg-config rabia): the
 * C form of the guide's "Building your first SMR application".
 *
 * The state machine is a max register: an operation is a u64 (little
 * endian); applying it keeps the largest value seen and returns it.
 *
 *   maxreg ID MEMBERS OPS DATA_DIR
 * runs replica ID of the cluster MEMBERS (1=host:port,...), submits OPS
 * values (ID * 1000000 + k) from the application thread, waits until every
 * replica's values arrived (the register reaches the largest one any
 * replica submits), prints "final <max> applied <slot>" and keeps serving
 * its peers until SIGTERM. */
/* usleep, sigset_t, sigtimedwait: POSIX and BSD, not ISO C; without this a
 * build with -std=c17 (not gnu17) failed to compile */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rabia/replica.h>
#include <rabia/state_machine.h>

struct maxreg {
    uint64_t max;
};

static void *mr_create(void) { return calloc(1, sizeof(struct maxreg)); }
static void mr_destroy(void *p) { free(p); }

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int mr_apply(void *p, const uint8_t *op, size_t len, struct rabia_buf *reply)
{
    struct maxreg *m = p;
    if (len == 8) {
        uint64_t v = get_u64(op);
        if (v > m->max) m->max = v;
    } /* anything else is a read: deterministic either way */
    return rabia_buf_put_u64(reply, m->max);
}

static int mr_snapshot(void *p, struct rabia_buf *out) { return rabia_buf_put_u64(out, ((struct maxreg *)p)->max); }

static int mr_restore(void *p, const uint8_t *data, size_t len)
{
    if (len != 8) return -EINVAL;
    ((struct maxreg *)p)->max = get_u64(data);
    return 0;
}

static const struct rabia_sm_ops MAXREG = {.name = "maxreg", .create = mr_create, .destroy = mr_destroy, .apply = mr_apply, .snapshot = mr_snapshot, .restore = mr_restore};

static void *run(void *r)
{
    rabia_replica_run(r);
    return NULL;
}

static int call(struct rabia_replica *r, uint64_t v, bool read, uint64_t *out)
{
    uint8_t op[8];
    for (int i = 0; i < 8; i++) op[i] = (uint8_t)(v >> (8 * i));
    struct rabia_buf res = {0};
    for (int attempt = 0; attempt < 100; attempt++) { /* peers may still be starting */
        int st = rabia_replica_call(r, op, read ? 1 : 8, &res, 2000);
        if (st == 0 && res.len == 8) {
            *out = get_u64(res.data);
            rabia_buf_free(&res);
            return 0;
        }
        usleep(100000);
    }
    rabia_buf_free(&res);
    return -1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: maxreg ID MEMBERS OPS DATA_DIR\n");
        return 2;
    }
    int id = atoi(argv[1]), ops = atoi(argv[3]);
    struct rabia_replica_config cfg;
    char err[512];
    rabia_replica_config_default(&cfg);
    if (rabia_replica_config_set(&cfg, "id", argv[1], err, sizeof err) ||
        rabia_replica_config_set(&cfg, "members", argv[2], err, sizeof err) ||
        rabia_replica_config_set(&cfg, "data-dir", argv[4], err, sizeof err) ||
        rabia_replica_config_set(&cfg, "client-listen", "off", err, sizeof err) ||
        rabia_replica_config_set(&cfg, "log-level", "warn", err, sizeof err)) {
        fprintf(stderr, "maxreg: %s\n", err);
        return 2;
    }
    cfg.state_machine[0] = 0; /* our own state machine, not one of rabiad's */
    /* no client port: the application is the only client */
    struct rabia_replica *r;
    if (rabia_replica_create(&r, &cfg, &MAXREG, err, sizeof err)) {
        fprintf(stderr, "maxreg: %s\n", err);
        return 1;
    }
    /* SIGTERM is taken with sigtimedwait below: block it in every thread */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    pthread_t t;
    pthread_create(&t, NULL, run, r);
    uint64_t seen = 0, top = (uint64_t)cfg.n * 1000000 + (uint64_t)ops - 1;
    int rc = 0;
    for (int k = 0; k < ops; k++) {
        uint64_t v = (uint64_t)id * 1000000 + (uint64_t)k;
        if (call(r, v, false, &seen) || seen < v) {
            fprintf(stderr, "maxreg %d: op %d failed or returned %" PRIu64 " < %" PRIu64 "\n", id, k, seen, v);
            rc = 1;
            break;
        }
    }
    /* wait for every replica's values (the largest comes from replica n) */
    for (int i = 0; !rc && i < 300 && seen != top; i++) {
        if (call(r, 0, true, &seen)) rc = 1;
        else if (seen != top) usleep(100000);
    }
    struct rabia_replica_status st;
    rabia_replica_get_status(r, &st);
    printf("final %" PRIu64 " applied %" PRIu64 "\n", seen, st.applied);
    fflush(stdout);
    /* stay up so that slower replicas can finish with our help, until
     * SIGTERM (the replica stops the loop) or a minute passes */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    struct timespec limit = {60, 0};
    sigtimedwait(&set, NULL, &limit);
    rabia_replica_stop(r);
    pthread_join(t, NULL);
    rabia_replica_destroy(r);
    return rc || seen != top;
}
