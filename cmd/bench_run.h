/* rabia-bench's load runner: the options of one run and its result. The
 * runner (bench_run.c) drives the connections of every thread; rabia-bench.c
 * parses the command line, prints and writes the results, and runs sweeps. */
#ifndef RABIA_BENCH_RUN_H
#define RABIA_BENCH_RUN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench_hist.h"

#define BENCH_MAX_ADDRS 64
#define BENCH_MAX_CONNS 10000
#define BENCH_MAX_PIPELINE 1024
#define BENCH_MAX_THREADS 64

enum bench_proto { BP_RESP, BP_NATIVE, BP_ETCD };

struct bench_opts {
    enum bench_proto proto;
    char *addrs[BENCH_MAX_ADDRS];
    unsigned n_addrs;
    unsigned connections, pipeline, threads;
    double rate; /* requests/s in total; 0 = closed loop */
    uint64_t keys;
    unsigned key_size, value_size;
    double read_ratio;
    double duration, warmup; /* seconds */
    uint64_t requests;       /* > 0: stop after this many measured requests */
    unsigned wait_replicas;  /* RESP: WAIT K 0 after each SET; 0 = none */
    bool quiet;
    bool native_no_cork; /* native: every submit sends at once (rabia_client_cork unused) */
    /* non-NULL: the run ends early once *interrupted is non-zero (sweep's
     * SIGINT/SIGTERM handler sets it, to stop its cluster before exiting) */
    const volatile sig_atomic_t *interrupted;
};

struct bench_result {
    uint64_t requests; /* measured requests completed (error replies included) */
    uint64_t errors;   /* error replies, plus requests lost with a connection */
    double seconds;    /* the measured interval */
    double throughput; /* requests / seconds */
    uint64_t p50, p90, p99, p999, max; /* microseconds */
    double mean;
    uint64_t warmup_requests;
    uint64_t unfinished; /* sent (open loop: due) before the end, unanswered then: in the
                            histogram at their latency so far, not in requests */
    struct bench_hist hist;
};

/* Run the load described by o. 0 with *r filled, or a negative errno with
 * a message on stderr (nothing could connect, out of memory...). */
int bench_run(const struct bench_opts *o, struct bench_result *r);

const char *bench_proto_name(enum bench_proto p);

#endif
