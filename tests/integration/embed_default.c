/* embed_default: include/rabia/replica.h's own example, configured as it
 * shows (rabia_replica_config_default, then id, members, data-dir: the
 * state-machine key left at its default, "kv"), with a state machine of
 * the application's own (the counter). Three replicas in this process must
 * start, answer increments and stop. (Before the fix the KV store's
 * machinery ran for the key's "kv" and read the counter's state as a KV
 * store's: a crash at the first loop turn.) A resp-listen with a state
 * machine other than the KV store's is refused at create, naming it.
 *
 *   embed_default PORT_BASE DATA_DIR      exit 0 on success */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "counter.h"
#include "rabia/replica.h"

#define N 3

static void *run(void *r)
{
    rabia_replica_run(r);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: embed_default PORT_BASE DATA_DIR\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int base = atoi(argv[1]), bad = 0;
    char members[256], err[512], dir[600];
    snprintf(members, sizeof members, "1=127.0.0.1:%d,2=127.0.0.1:%d,3=127.0.0.1:%d", base + 1, base + 2, base + 3);
    struct rabia_replica *r[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        struct rabia_replica_config cfg;
        char id[8];
        snprintf(id, sizeof id, "%d", i + 1);
        snprintf(dir, sizeof dir, "%s/r%d", argv[2], i + 1);
        rabia_replica_config_default(&cfg);
        if (rabia_replica_config_set(&cfg, "id", id, err, sizeof err) ||
            rabia_replica_config_set(&cfg, "members", members, err, sizeof err) ||
            rabia_replica_config_set(&cfg, "data-dir", dir, err, sizeof err) ||
            rabia_replica_config_set(&cfg, "log-level", "warn", err, sizeof err)) {
            fprintf(stderr, "embed_default: %s\n", err);
            return 2;
        }
        if (i == 0) { /* the RESP front end is the KV store's */
            struct rabia_replica_config resp = cfg;
            struct rabia_replica *x = NULL;
            char rl[64];
            snprintf(rl, sizeof rl, "127.0.0.1:%d", base + 4);
            rabia_replica_config_set(&resp, "resp-listen", rl, err, sizeof err);
            int rc = rabia_replica_create(&x, &resp, &rabia_sm_counter, err, sizeof err);
            printf("resp-listen with the counter: %d (%s)\n", rc, rc ? err : "accepted");
            if (!rc || !strstr(err, "resp-listen")) bad = 1;
            if (!rc) rabia_replica_destroy(x);
        }
        if (rabia_replica_create(&r[i], &cfg, &rabia_sm_counter, err, sizeof err)) {
            fprintf(stderr, "embed_default: replica %d: %s\n", i + 1, err);
            return 1;
        }
    }
    for (int i = 0; i < N; i++) pthread_create(&th[i], NULL, run, r[i]);
    struct rabia_buf inc = {0}, res = {0};
    rabia_counter_encode(&inc, RABIA_COUNTER_INC, 0);
    int st = -1;
    for (int k = 0; k < 100 && st != RABIA_REPLY_OK; k++) {
        st = rabia_replica_call(r[0], inc.data, inc.len, &res, 1000);
        if (st != RABIA_REPLY_OK) usleep(50000);
    }
    int64_t v = -1;
    for (int k = 0; st == RABIA_REPLY_OK && k < 99; k++)
        st = rabia_replica_call(r[k % N], inc.data, inc.len, &res, 5000);
    if (st != RABIA_REPLY_OK || rabia_counter_decode_result(res.data, res.len, &v, NULL, NULL) != 0 || v != 100)
        bad = 1;
    printf("100 increments through the 3 replicas: last status %d, counter %lld\n", st, (long long)v);
    for (int i = 0; i < N; i++) rabia_replica_stop(r[i]);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        rabia_replica_destroy(r[i]);
    }
    rabia_buf_free(&inc);
    rabia_buf_free(&res);
    printf("%s\n", bad ? "FAIL" : "PASS");
    return bad;
}
