/* Helpers shared by the embedding API's tests (embed_*.c): three replicas
 * in one process on 127.0.0.1, each run on a thread of its own. */
#ifndef RABIA_TESTS_EMBED_UTIL_H
#define RABIA_TESTS_EMBED_UTIL_H
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rabia/replica.h"

/* a replica and what rabia_replica_run returned (1 while it runs) */
struct runner {
    struct rabia_replica *r;
    atomic_int rc;
};

static inline void *run_rc(void *arg)
{
    struct runner *x = arg;
    atomic_store(&x->rc, rabia_replica_run(x->r));
    return NULL;
}

static inline double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Replica `id` of three (peer ports base+1..3) with its data in
 * dir0/r<id>, no client port, logging at log_level, and the settings in
 * extra (key, value, ..., NULL; or NULL): 0, or 1 (2 for a bad setting)
 * with the reason on stderr, prefixed by who. */
static inline int embed_make_with(struct rabia_replica **out, const char *who, int base, int id, const char *dir0,
                                  const struct rabia_sm_ops *sm, const char *log_level, const char *const *extra)
{
    char members[256], err[512], sid[16], dir[600];
    snprintf(members, sizeof members, "1=127.0.0.1:%d,2=127.0.0.1:%d,3=127.0.0.1:%d", base + 1, base + 2, base + 3);
    snprintf(sid, sizeof sid, "%d", id);
    mkdir(dir0, 0700);
    snprintf(dir, sizeof dir, "%s/r%d", dir0, id);
    struct rabia_replica_config cfg;
    rabia_replica_config_default(&cfg);
    if (rabia_replica_config_set(&cfg, "id", sid, err, sizeof err) ||
        rabia_replica_config_set(&cfg, "members", members, err, sizeof err) ||
        rabia_replica_config_set(&cfg, "data-dir", dir, err, sizeof err) ||
        rabia_replica_config_set(&cfg, "client-listen", "off", err, sizeof err) ||
        rabia_replica_config_set(&cfg, "log-level", log_level, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", who, err);
        return 2;
    }
    for (; extra && extra[0]; extra += 2)
        if (rabia_replica_config_set(&cfg, extra[0], extra[1], err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", who, err);
            return 2;
        }
    cfg.state_machine[0] = 0;
    if (rabia_replica_create(out, &cfg, sm, err, sizeof err)) {
        fprintf(stderr, "%s: replica %d: %s\n", who, id, err);
        return 1;
    }
    return 0;
}
static inline int embed_make(struct rabia_replica **out, const char *who, int base, int id, const char *dir0,
                             const struct rabia_sm_ops *sm, const char *log_level)
{
    return embed_make_with(out, who, base, id, dir0, sm, log_level, NULL);
}

/* stderr (where the replicas log) into the file at path, for the test to
 * read back: the old stderr's descriptor to give embed_log_back, or -1 */
static inline int embed_log_to(const char *path)
{
    fflush(stderr);
    int saved = dup(2), lf = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (saved < 0 || lf < 0 || dup2(lf, 2) < 0) {
        perror(path);
        if (saved >= 0) close(saved);
        if (lf >= 0) close(lf);
        return -1;
    }
    close(lf);
    return saved;
}

static inline void embed_log_back(int saved)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
}
#endif
