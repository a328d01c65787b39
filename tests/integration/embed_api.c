/* embed_api: the embedding API given what an embedder gets wrong, and a
 * state machine's result too large for the native protocol.
 *
 *  A. rabia_replica_create with no ops, or ops without one of the required
 *     callbacks (create, destroy, apply, snapshot, restore): -EINVAL with
 *     err naming the callback, not a replica that crashed the first time
 *     it needed it (snapshot: within a second of the first applied slot).
 *  B. rabia_replica_submit with op NULL and a length: -EINVAL, not a crash;
 *     rabia_replica_call failing (-EINVAL, -ETIMEDOUT) leaves its result
 *     empty, not holding the previous call's.
 *  C. three replicas with native client ports; a state machine whose
 *     results are as long as the op asks. A 1 MiB result reaches the
 *     client; a 17 MiB one (more than a frame holds, RABIA_MAX_FRAME) is
 *     answered APPLIED_NO_RESULT at once, not dropped so that the client
 *     waited out its timeout_ms and failed over; the client goes on.
 *
 *   embed_api PORT_BASE DATA_DIR      exit 0 on success */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed_util.h"
#include "rabia/client.h"
#include "rabia/replica.h"

static int failed;
#define CHECK(c, ...)                                                                                                  \
    do {                                                                                                               \
        if (!(c)) {                                                                                                    \
            fprintf(stderr, "embed_api: FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
            failed = 1;                                                                                                \
        }                                                                                                              \
    } while (0)

/* the state machine: op "L" + u32 n gives a result of n bytes; any other
 * op counts, and its result is the count (u64) */
struct sm {
    uint64_t count;
};
static void *sm_create(void) { return calloc(1, sizeof(struct sm)); }
static void sm_destroy(void *p) { free(p); }
static int sm_apply(void *p, const uint8_t *op, size_t len, struct rabia_buf *reply)
{
    struct sm *s = p;
    if (len == 5 && op[0] == 'L') {
        uint32_t n = (uint32_t)op[1] | (uint32_t)op[2] << 8 | (uint32_t)op[3] << 16 | (uint32_t)op[4] << 24;
        int rc = rabia_buf_reserve(reply, n);
        if (rc) return rc;
        memset(reply->data + reply->len, 'r', n);
        reply->len += n;
        return 0;
    }
    s->count++;
    return rabia_buf_put_u64(reply, s->count);
}
static int sm_snapshot(void *p, struct rabia_buf *out) { return rabia_buf_put_u64(out, ((struct sm *)p)->count); }
static int sm_restore(void *p, const uint8_t *data, size_t len)
{
    if (len != 8) return -EINVAL;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | data[i];
    ((struct sm *)p)->count = v;
    return 0;
}
static const struct rabia_sm_ops SM = {.name = "embed_api",
                                       .create = sm_create,
                                       .destroy = sm_destroy,
                                       .apply = sm_apply,
                                       .snapshot = sm_snapshot,
                                       .restore = sm_restore};

static void part_a(int base, const char *dir)
{
    char members[256], err[512] = "";
    snprintf(members, sizeof members, "1=127.0.0.1:%d,2=127.0.0.1:%d,3=127.0.0.1:%d", base + 1, base + 2, base + 3);
    struct rabia_replica_config cfg;
    rabia_replica_config_default(&cfg);
    char d[600];
    snprintf(d, sizeof d, "%s/a", dir);
    if (rabia_replica_config_set(&cfg, "id", "1", err, sizeof err) ||
        rabia_replica_config_set(&cfg, "members", members, err, sizeof err) ||
        rabia_replica_config_set(&cfg, "data-dir", d, err, sizeof err) ||
        rabia_replica_config_set(&cfg, "client-listen", "off", err, sizeof err)) {
        CHECK(0, "config: %s", err);
        return;
    }
    cfg.state_machine[0] = 0;
    struct rabia_replica *r = (struct rabia_replica *)&cfg; /* must be set to NULL */
    int rc = rabia_replica_create(&r, &cfg, NULL, err, sizeof err);
    CHECK(rc == -EINVAL && !r && strstr(err, "ops NULL"), "create with no ops: %d (%s)", rc, err);
    if (!rc) rabia_replica_destroy(r);
    static const char *const names[] = {"create", "destroy", "apply", "snapshot", "restore"};
    for (int k = 0; k < 5; k++) {
        struct rabia_sm_ops ops = SM;
        void **slot[] = {(void **)&ops.create, (void **)&ops.destroy, (void **)&ops.apply, (void **)&ops.snapshot,
                         (void **)&ops.restore};
        *slot[k] = NULL;
        err[0] = 0;
        r = NULL;
        rc = rabia_replica_create(&r, &cfg, &ops, err, sizeof err);
        char want[64];
        snprintf(want, sizeof want, "have no %s:", names[k]);
        CHECK(rc == -EINVAL && !r && strstr(err, want), "create without %s: %d (%s)", names[k], rc, err);
        if (!rc) rabia_replica_destroy(r);
    }
    /* the optional ones may be NULL */
    r = NULL;
    rc = rabia_replica_create(&r, &cfg, &SM, err, sizeof err);
    CHECK(rc == 0 && r, "create with the required ops only: %d (%s)", rc, err);
    if (r) {
        /* B */
        rc = rabia_replica_submit(r, NULL, 4, NULL, NULL);
        CHECK(rc == -EINVAL, "submit of op NULL, length 4: %d, want -EINVAL", rc);
        struct rabia_buf res = {0};
        /* a failed call leaves the result empty, not the previous call's
         * (the buffer reused by the caller: it read a stale answer) */
        rabia_buf_append(&res, "stale", 5);
        rc = rabia_replica_call(r, NULL, 4, &res, 100);
        CHECK(rc == -EINVAL && res.len == 0, "call with op NULL, length 4: %d, %zu bytes, want -EINVAL, 0", rc,
              res.len);
        rabia_buf_append(&res, "stale", 5);
        uint8_t one = 'i';
        rc = rabia_replica_call(r, &one, 1, &res, 50); /* never run: it times out */
        CHECK(rc == -ETIMEDOUT && res.len == 0, "call timed out: %d, %zu bytes, want -ETIMEDOUT, 0", rc, res.len);
        rabia_buf_free(&res);
        rabia_replica_destroy(r);
    }
    printf("A, B: create refuses missing callbacks by name; submit refuses op NULL; a failed call's result is empty\n");
}

static int call_large(struct rabia_client *c, uint32_t n, struct rabia_buf *res, double *took)
{
    uint8_t op[5] = {'L', (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    double t0 = now_s();
    int st = rabia_client_call(c, op, sizeof op, res);
    *took = now_s() - t0;
    return st;
}

static void part_c(int base, const char *dir)
{
    struct runner x[3];
    pthread_t t[3];
    int made = 0;
    for (int i = 0; i < 3; i++) {
        char cl[64];
        snprintf(cl, sizeof cl, "127.0.0.1:%d", base + 11 + i);
        const char *extra[] = {"client-listen", cl, NULL};
        if (embed_make_with(&x[i].r, "embed_api", base, i + 1, dir, &SM, "warn", extra)) break;
        atomic_store(&x[i].rc, 1);
        pthread_create(&t[i], NULL, run_rc, &x[i]);
        made++;
    }
    CHECK(made == 3, "could not create the three replicas");
    if (made == 3) {
        char a1[32], a2[32], a3[32];
        snprintf(a1, sizeof a1, "127.0.0.1:%d", base + 11);
        snprintf(a2, sizeof a2, "127.0.0.1:%d", base + 12);
        snprintf(a3, sizeof a3, "127.0.0.1:%d", base + 13);
        const char *addrs[] = {a1, a2, a3};
        /* a timeout far above the answer's time: waiting it out shows */
        struct rabia_client_cfg cc = {.addrs = addrs, .n_addrs = 3, .client_id = 3, .timeout_ms = 8000};
        struct rabia_client *c = NULL;
        int rc = rabia_client_open(&c, &cc);
        CHECK(rc == 0, "client open: %d", rc);
        struct rabia_buf res = {0};
        double took;
        int st = -1;
        for (int k = 0; c && k < 50; k++) { /* the replicas may still be connecting */
            uint8_t op = 'i';
            if ((st = rabia_client_call(c, &op, 1, &res)) == RABIA_REPLY_OK && res.len == 8) break;
            usleep(100000);
        }
        CHECK(st == RABIA_REPLY_OK, "first call: %d", st);
        if (c && st == RABIA_REPLY_OK) {
            st = call_large(c, 1u << 20, &res, &took);
            CHECK(st == RABIA_REPLY_OK && res.len == 1u << 20, "1 MiB result: status %d, %zu bytes", st, res.len);
            st = call_large(c, 17u << 20, &res, &took);
            printf("C: 17 MiB result: status %d (%s), %zu bytes, %.3f s\n", st,
                   st >= 0 ? rabia_reply_status_name(st) : rabia_strerror(st), res.len, took);
            CHECK(st == RABIA_REPLY_APPLIED_NO_RESULT && res.len == 0, "17 MiB result: status %d, %zu bytes", st,
                  res.len);
            CHECK(took < 4.0, "17 MiB result answered in %.3f s: the client waited out its timeout", took);
            uint8_t op = 'i';
            st = rabia_client_call(c, &op, 1, &res);
            CHECK(st == RABIA_REPLY_OK && res.len == 8, "a call after it: %d", st);
        }
        rabia_buf_free(&res);
        rabia_client_close(c);
    }
    for (int i = 0; i < made; i++) rabia_replica_stop(x[i].r);
    for (int i = 0; i < made; i++) {
        pthread_join(t[i], NULL);
        CHECK(atomic_load(&x[i].rc) == 0, "replica %d: run returned %d", i + 1, atomic_load(&x[i].rc));
        rabia_replica_destroy(x[i].r);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: embed_api PORT_BASE DATA_DIR\n");
        return 2;
    }
    int base = atoi(argv[1]);
    part_a(base, argv[2]);
    part_c(base, argv[2]);
    printf("embed_api: %s\n", failed ? "FAILED" : "1 passed, 0 failed");
    return failed;
}
