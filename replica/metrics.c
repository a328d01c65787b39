/* Metrics and health (metrics.h): the registry, the metrics-listen HTTP
 * endpoint served by the replica's io_uring loop, and the INFO text.
 *
 * Bucket bounds (seconds unless said) and why:
 *  - request latency: 100 us .. 10 s. A request in memory mode takes
 *    0.3 ms, one durable slot 1.2-1.5 ms (replica/README.md), a loaded
 *    cluster on a slow disk tens of ms; seconds mean a stall.
 *  - log write and fsync: 100 us .. 8.192 s, doubling from 1 ms as etcd's
 *    wal_fsync_duration_seconds, so the alert thresholds (etcd's 0.5 s
 *    and 1 s for p99) fall on bucket bounds.
 *  - batch size: 1 .. 4096 requests (batch-max-reqs' range), 64 B .. 16 MiB
 *    (batch-max-bytes' range); batch wait 10 us .. 1 s (batch-timeout-us is
 *    200 us by default: the interesting part is below 10 ms).
 *  - slot decision time: as request latency; phases per slot: 1 .. 32 (a
 *    slot decides in phase 1 without contention; each further phase is a
 *    coin flip, so above 8 almost never happens).
 *  - peer round-trip time: 50 us .. 1 s (loopback to another datacenter). */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "codec.h"
#include "heap.h"
#include "internal.h"
#include "invariant.h"
#include "kv.h"

static const double LE_LATENCY[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
static const double LE_WAL[] = {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032,
                                0.064,  0.128,   0.256,  0.512, 1.024, 2.048, 4.096, 8.192};
static const double LE_BATCH_REQS[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
static const double LE_BATCH_BYTES[] = {64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216};
static const double LE_BATCH_WAIT[] = {0.00001, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002,
                                       0.005,   0.01,    0.02,   0.05,   0.1,    1};
static const double LE_PHASES[] = {1, 2, 3, 4, 5, 6, 8, 10, 16, 32};
static const double LE_RTT[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1};
#define NB(a) (uint32_t)(sizeof a / sizeof a[0])

#define HTTP_MAX_REQUEST 8192      /* a scrape's request is a few hundred bytes */
#define HTTP_IDLE_US 10000000ull   /* an unfinished request is dropped after 10 s */
#define RTT_PERIOD_US 1000000ull   /* peer round-trip times sampled once a second */

static const char *const front_names[MF_N] = {"resp", "native", "app"};
static const char *const kind_names[MK_N] = {"read", "write", "local", "other"};
static const char *const err_names[ME_N] = {"disk", "busy", "session_expired", "refused", "command", "protocol"};
static const int http_codes[M_HTTP_N] = {200, 400, 404, 405, 408, 503};

/* The connection's own commands (io/resp.c's table), for commandstats:
 * after the KV commands in struct metrics.cmds. */
static const char *const local_cmds[] = {"ping",      "echo",   "multi",      "exec",        "discard",
                                         "quit",      "reset",  "select",     "watch",       "unwatch",
                                         "subscribe", "psubscribe", "unsubscribe", "punsubscribe", "auth",
                                         "hello",     "command", "config",    "client",      "info"};
#define N_LOCAL_CMDS (sizeof local_cmds / sizeof local_cmds[0])

static void mhist_init(struct mhist *h, const double *le, uint32_t nb)
{
    RABIA_ASSERT(nb <= MH_MAX_BUCKETS);
    memset(h, 0, sizeof *h);
    h->le = le;
    h->nb = nb;
}

static void mhist_observe(struct mhist *h, double v)
{
    uint32_t i = 0;
    while (i < h->nb && v > h->le[i]) i++; /* at most 20 compares */
    h->b[i]++;
    h->count++;
    h->sum += v;
}

/* ------------------------------------------------------------------ */
/* lifecycle */

int metrics_create(struct rabia_replica *r)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (!m) return -ENOMEM;
    m->ncmds = rabia_kv_ncommands() + (uint32_t)N_LOCAL_CMDS;
    m->cmds = calloc(m->ncmds, sizeof *m->cmds);
    if (!m->cmds) {
        free(m);
        return -ENOMEM;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_time = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    m->start_us = rio_now_us();
    for (int f = 0; f < MF_N; f++)
        for (int k = 0; k < MK_N; k++) mhist_init(&m->req_lat[f][k], LE_LATENCY, NB(LE_LATENCY));
    mhist_init(&m->wal_write, LE_WAL, NB(LE_WAL));
    mhist_init(&m->wal_fsync, LE_WAL, NB(LE_WAL));
    mhist_init(&m->batch_reqs, LE_BATCH_REQS, NB(LE_BATCH_REQS));
    mhist_init(&m->batch_bytes, LE_BATCH_BYTES, NB(LE_BATCH_BYTES));
    mhist_init(&m->batch_wait, LE_BATCH_WAIT, NB(LE_BATCH_WAIT));
    mhist_init(&m->slot_time, LE_LATENCY, NB(LE_LATENCY));
    mhist_init(&m->slot_phases, LE_PHASES, NB(LE_PHASES));
    for (int p = 0; p < RABIA_MAX_REPLICAS; p++) mhist_init(&m->peer_rtt[p], LE_RTT, NB(LE_RTT));
    r->m = m;
    return 0;
}

void metrics_destroy(struct rabia_replica *r)
{
    if (!r->m) return;
    rabia_buf_free(&r->m->out);
    rabia_buf_free(&r->m->info);
    free(r->m->cmds);
    free(r->m);
    r->m = NULL;
}

int metrics_listen(struct rabia_replica *r, char *err, size_t errlen)
{
    const char *addr = r->cfg.metrics_listen;
    if (!addr[0]) return 0;
    char host[256];
    const char *colon = strrchr(addr, ':');
    RABIA_ASSERT(colon); /* config.c checked host:port */
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host) hl = sizeof host - 1;
    memcpy(host, addr, hl);
    host[hl] = 0;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') { /* [::1]:9100 */
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    int rc = rio_listen(r->loop, host, (uint16_t)atoi(colon + 1), NULL, &r->l_metrics);
    if (rc < 0) {
        snprintf(err, errlen, "metrics-listen %s: cannot listen: %s%s", addr, rabia_strerror(rc),
                 rc == -EADDRINUSE ? " (another process uses the port: stop it or choose another port)" : "");
        return rc;
    }
    replica_log(r, RABIA_LOG_INFO, "metrics and health on http://%s/metrics and /health", addr);
    return 0;
}

/* ------------------------------------------------------------------ */
/* observations */

uint16_t metrics_cmd_index(const uint8_t *name, size_t len, bool replicated, uint8_t *kind)
{
    const struct rabia_kv_cmd_info *k = rabia_kv_lookup(name, len);
    if (k) {
        *kind = !replicated ? MK_LOCAL : (k->flags & RABIA_KV_CMD_READONLY) ? MK_READ : MK_WRITE;
        return (uint16_t)(k - rabia_kv_command(0));
    }
    /* a replicated command outside the KV table is EXEC (its queued
     * commands): counted as a write, the conservative side */
    *kind = replicated ? MK_WRITE : MK_LOCAL;
    for (unsigned i = 0; i < N_LOCAL_CMDS; i++)
        if (strlen(local_cmds[i]) == len && !strncasecmp(local_cmds[i], (const char *)name, len))
            return (uint16_t)(rabia_kv_ncommands() + i);
    return M_CMD_NONE; /* unknown: Redis does not count those either */
}

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

uint32_t metrics_op_tag(const struct rabia_replica *r, const uint8_t *op, size_t len)
{
    uint32_t other = (uint32_t)MK_OTHER << 16 | M_CMD_NONE;
    if (strcmp(r->cfg.state_machine, "kv") != 0) return other;
    for (int depth = 0; depth < 2; depth++) { /* "@DB n op": the op inside, once */
        if (len < 8 || rd32(op) < 1) return other;
        uint32_t argc = rd32(op), nl = rd32(op + 4);
        if (nl > len - 8) return other;
        const uint8_t *name = op + 8;
        if (nl == 3 && !memcmp(name, "@DB", 3) && argc == 3) {
            size_t off = 8 + nl; /* skip n */
            if (len - off < 4 || rd32(op + off) > len - off - 4) return other;
            off += 4 + rd32(op + off);
            if (len - off < 4 || rd32(op + off) > len - off - 4) return other;
            op += off + 4;
            len = rd32(op - 4);
            continue;
        }
        if ((nl == 3 && !strncasecmp((const char *)name, "TXN", 3)) ||
            (nl == 4 && !strncasecmp((const char *)name, "TXNW", 4)))
            return (uint32_t)MK_WRITE << 16 | M_CMD_NONE;
        uint8_t kind;
        uint16_t idx = metrics_cmd_index(name, nl, true, &kind);
        return (uint32_t)kind << 16 | idx;
    }
    return other;
}

static unsigned lat_bucket(uint64_t us)
{
    if (us < 8) return (unsigned)us;
    unsigned e = 63u - (unsigned)__builtin_clzll(us); /* 2^e <= us */
    if (e > 35) return MC_LAT_BUCKETS - 1;
    return 8 + (e - 3) * 8 + (unsigned)((us >> (e - 3)) & 7);
}

static uint64_t lat_bucket_upper(unsigned i)
{
    if (i < 8) return i;
    unsigned e = (i - 8) / 8 + 3, sub = (i - 8) % 8;
    return ((8ull + sub + 1) << (e - 3)) - 1;
}

static void cmd_done(struct metrics *m, uint16_t cmd, uint64_t us, bool failed)
{
    if (cmd == M_CMD_NONE) return;
    RABIA_ASSERT(cmd < m->ncmds);
    struct mcmd *c = &m->cmds[cmd];
    c->calls++;
    c->usec += us;
    c->failed += failed;
    c->lat[lat_bucket(us)]++;
}

void metrics_request_done(struct rabia_replica *r, int front, int kind, uint16_t cmd, uint64_t t_us, int status,
                          const uint8_t *res, size_t len)
{
    struct metrics *m = r->m;
    RABIA_ASSERT(front >= 0 && front < MF_N && kind >= 0 && kind < MK_N);
    uint64_t now = rio_turn_us(), us = t_us && now > t_us ? now - t_us : 0;
    m->requests[front][kind]++;
    mhist_observe(&m->req_lat[front][kind], (double)us / 1e6);
    bool failed = true;
    switch (status) {
    case RABIA_REPLY_OK:
    case RABIA_REPLY_APPLIED_NO_RESULT:
        failed = front == MF_RESP && len && res[0] == '-';
        if (failed) m->errors[ME_COMMAND]++;
        break;
    case RABIA_REPLY_UNAVAILABLE: m->errors[ME_DISK]++; break;
    case RABIA_REPLY_BUSY: m->errors[ME_BUSY]++; break;
    case RABIA_REPLY_SESSION_EXPIRED: m->errors[ME_SESSION]++; break;
    default: m->errors[ME_REFUSED]++; break;
    }
    cmd_done(m, cmd, us, failed);
}

void metrics_local_done(struct rabia_replica *r, uint16_t cmd, uint64_t t_us, const struct rabia_buf *reply,
                        size_t reply_from)
{
    struct metrics *m = r->m;
    uint64_t now = rio_turn_us(), us = t_us && now > t_us ? now - t_us : 0;
    m->requests[MF_RESP][MK_LOCAL]++;
    bool failed = reply->len > reply_from && reply->data[reply_from] == '-';
    if (failed) m->errors[ME_COMMAND]++;
    cmd_done(m, cmd, us, failed);
}

void metrics_on_submitted(void *ctx, const struct rabia_batch_id *id, const uint8_t *body, uint32_t len)
{
    (void)id;
    struct rabia_replica *r = ctx;
    struct metrics *m = r->m;
    mhist_observe(&m->batch_reqs, rabia_batch_count(body, len));
    mhist_observe(&m->batch_bytes, len);
    /* the batcher adds each cut batch's wait (its oldest request's) to a
     * sum: the cuts since the last submission share what was added (one
     * cut per submission almost always: then it is exact) */
    const struct batcher_stats *bs = batcher_stats(node_batcher(r->node));
    uint64_t cuts = bs->cut_full + bs->cut_timeout + bs->cut_idle + bs->cut_flush;
    if (cuts > m->batch_cuts_seen && bs->wait_us_sum >= m->batch_wait_seen) {
        uint64_t n = cuts - m->batch_cuts_seen;
        double each = (double)(bs->wait_us_sum - m->batch_wait_seen) / (double)n / 1e6;
        for (uint64_t i = 0; i < n && i < 64; i++) mhist_observe(&m->batch_wait, each);
    }
    m->batch_cuts_seen = cuts;
    m->batch_wait_seen = bs->wait_us_sum;
}

void metrics_on_decide(void *ctx, uint64_t slot, uint8_t value, uint32_t phase, bool adopted, uint64_t elapsed_us)
{
    (void)slot;
    (void)value;
    struct rabia_replica *r = ctx;
    r->m->slots_decided_seen++;
    mhist_observe(&r->m->slot_time, (double)elapsed_us / 1e6);
    if (!adopted) mhist_observe(&r->m->slot_phases, phase); /* adopted: not decided here, no phase of its own */
}

void metrics_on_wal_write(void *ctx, uint64_t us, bool dsync, int res)
{
    struct rabia_replica *r = ctx;
    if (res < 0) r->m->wal_write_errors++;
    mhist_observe(&r->m->wal_write, (double)us / 1e6);
    /* the log's writes carry RWF_DSYNC: the write is the sync (one system
     * call, no separate fdatasync), so its duration is the fsync's */
    if (dsync) mhist_observe(&r->m->wal_fsync, (double)us / 1e6);
}

/* ------------------------------------------------------------------ */
/* health */

static uint32_t peers_up(const struct rabia_replica *r)
{
    uint32_t up = 0;
    for (uint8_t p = 0; p < r->cfg.n; p++)
        if (p != r->self && r->peers[p].out_ready) up++;
    return up;
}

bool metrics_health(struct rabia_replica *r, char *why, size_t len)
{
    uint32_t up = peers_up(r) + 1, need = r->cfg.n / 2u + 1;
    uint64_t applied = rabia_rsm_applied(r->rsm), known = rabia_core_known_slot(r->core);
    uint64_t max_lag = r->cfg.log_retain > 1000 ? r->cfg.log_retain : 1000;
    const char *refusal = node_refusal(r->node);
    if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        snprintf(why, len, "stopping");
        return false;
    }
    if (up < need) {
        snprintf(why, len, "no majority: connected to %u of %u replicas (itself included), %u needed", up,
                 r->cfg.n, need);
        return false;
    }
    uint64_t write_age;
    if (r->wal && durable_write_stalled(&r->dur, rio_now_us(), &write_age)) {
        snprintf(why, len, "a write to the log has waited %.1f s for the disk (see the WARNING log line)",
                 (double)write_age / 1e6);
        return false;
    }
    if (r->hc.suspect) { /* hashcheck.c: its state or theirs is not the cluster's, no majority known */
        snprintf(why, len, "state differs from replica %u's after slot %" PRIu64 " (see the ERROR log line)",
                 (unsigned)__builtin_ctz(r->hc.diverged_peers) + 1, r->hc.diverged_slot);
        return false;
    }
    uint8_t from;
    if (snapstream_receiving(&r->xfer, &from)) {
        snprintf(why, len, "receiving a snapshot from replica %u", from + 1);
        return false;
    }
    if (rabia_core_recovering(r->core)) {
        snprintf(why, len, "recovering: rebuilding its log from peers after a restart without one");
        return false;
    }
    if (refusal && refusal[0]) {
        snprintf(why, len, "refusing writes: %s", refusal);
        return false;
    }
    if (known > applied && known - applied > max_lag) {
        snprintf(why, len, "lagging: applied slot %" PRIu64 " is %" PRIu64 " behind slot %" PRIu64
                           " (more than %" PRIu64 ")", applied, known - applied, known, max_lag);
        return false;
    }
    snprintf(why, len, "ok");
    return true;
}

/* ------------------------------------------------------------------ */
/* rendering */

static void put(struct rabia_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct rabia_buf *b, const char *fmt, ...)
{
    if (b->cap - b->len < 256 && rabia_buf_reserve(b, 4096)) return; /* out of memory: cut */
    for (int tries = 0; tries < 2; tries++) {
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf((char *)b->data + b->len, room, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        if (rabia_buf_reserve(b, (size_t)n + 1 > 4096 ? (size_t)n + 1 : 4096)) return; /* out of memory: cut */
    }
}

static void family(struct rabia_buf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void scalar(struct rabia_buf *b, const char *name, const char *type, const char *help, double v)
{
    family(b, name, type, help);
    put(b, "%s %.17g\n", name, v);
}

static void hist(struct rabia_buf *b, const char *name, const char *labels, const struct mhist *h)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (uint32_t i = 0; i < h->nb; i++) {
        cum += h->b[i];
        /* %.15g: the bound as written in LE_* (%g's 6 digits printed
         * 1048576 as 1.04858e+06, a different bound) */
        put(b, "%s_bucket{%s%sle=\"%.15g\"} %" PRIu64 "\n", name, labels, sep, h->le[i], cum);
    }
    cum += h->b[h->nb];
    RABIA_ASSERT(cum == h->count);
    put(b, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, cum);
    if (labels[0]) {
        put(b, "%s_sum{%s} %.17g\n%s_count{%s} %" PRIu64 "\n", name, labels, h->sum, name, labels, h->count);
    } else {
        put(b, "%s_sum %.17g\n%s_count %" PRIu64 "\n", name, h->sum, name, h->count);
    }
}

static void proc_memory(uint64_t *rss, uint64_t *vsz)
{
    *rss = *vsz = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return;
    unsigned long long size = 0, res = 0;
    if (fscanf(f, "%llu %llu", &size, &res) == 2) {
        long page = sysconf(_SC_PAGESIZE);
        *rss = res * (uint64_t)page;
        *vsz = size * (uint64_t)page;
    }
    fclose(f);
}

static void count_conns(const struct rabia_replica *r, uint32_t out[8])
{
    memset(out, 0, 8 * sizeof out[0]);
    for (uint32_t j = 0; j < r->n_live; j++) {
        enum ck k = r->conns[r->live[j]].kind;
        if (k != CK_FREE && (unsigned)k < 8) out[k]++;
    }
}

static void render_metrics(struct rabia_replica *r, struct rabia_buf *b)
{
    struct metrics *m = r->m;
    const struct rabia_stats *cs = rabia_core_stats(r->core);
    struct node_stats ns;
    node_stats(r->node, &ns);
    uint64_t applied = rabia_rsm_applied(r->rsm), known = rabia_core_known_slot(r->core);
    char lbl[128], why[300];
    bool healthy = metrics_health(r, why, sizeof why);

    family(b, "rabia_build_info", "gauge", "Build and configuration of this replica (value 1).");
    put(b, "rabia_build_info{version=\"0.1.0\",state_machine=\"%s\",durability=\"%s\"} 1\n", r->cfg.state_machine,
        r->wal ? "wal" : "memory");
    scalar(b, "rabia_process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.",
           m->start_time);
    uint64_t rss, vsz;
    proc_memory(&rss, &vsz);
    scalar(b, "rabia_process_resident_memory_bytes", "gauge", "Resident memory (/proc/self/statm).", (double)rss);
    scalar(b, "rabia_process_virtual_memory_bytes", "gauge", "Virtual memory (/proc/self/statm).", (double)vsz);
    struct heap_stats hs;
    if (heap_stats(&hs)) { /* only on jemalloc (RABIA_JEMALLOC=ON): see heap.h */
        scalar(b, "rabia_heap_allocations_total", "counter",
               "Heap allocations (malloc, calloc, realloc) since start, all threads "
               "(jemalloc statistics; absent without jemalloc).",
               (double)hs.allocations);
        scalar(b, "rabia_heap_allocated_bytes", "gauge",
               "Bytes in live heap allocations (jemalloc stats.allocated; absent without jemalloc).",
               (double)hs.allocated_bytes);
    }
    scalar(b, "rabia_replica_id", "gauge", "This replica's id (1..n).", r->cfg.id);
    scalar(b, "rabia_cluster_members", "gauge", "Replicas in the cluster.", r->cfg.n);
    scalar(b, "rabia_healthy", "gauge", "1 when /health answers 200 (serving), 0 when 503.", healthy);
    scalar(b, "rabia_has_majority", "gauge", "1 when connected to a majority (itself included).",
           peers_up(r) + 1 >= r->cfg.n / 2u + 1);
    scalar(b, "rabia_peers_connected", "gauge", "Peers this replica's outgoing links reach.", peers_up(r));
    family(b, "rabia_peer_up", "gauge", "1 when the outgoing link to the peer is connected.");
    for (uint8_t p = 0; p < r->cfg.n; p++)
        if (p != r->self) put(b, "rabia_peer_up{peer=\"%u\"} %d\n", p + 1, r->peers[p].out_ready ? 1 : 0);
    scalar(b, "rabia_recovering", "gauge", "1 while recovering from peers (restart without a log).",
           rabia_core_recovering(r->core));

    /* requests */
    family(b, "rabia_requests_total", "counter",
           "Client requests answered, by front end and kind (read/write: replicated; local: answered by the "
           "connection; other: not classified).");
    for (int f = 0; f < MF_N; f++)
        for (int k = 0; k < MK_N; k++)
            put(b, "rabia_requests_total{frontend=\"%s\",kind=\"%s\"} %" PRIu64 "\n", front_names[f], kind_names[k],
                m->requests[f][k]);
    family(b, "rabia_request_errors_total", "counter", "Requests answered with an error, by cause.");
    for (int e = 0; e < ME_N; e++)
        put(b, "rabia_request_errors_total{cause=\"%s\"} %" PRIu64 "\n", err_names[e], m->errors[e]);
    family(b, "rabia_request_duration_seconds", "histogram",
           "Replicated request latency from arrival to reply, by front end and kind.");
    for (int f = 0; f < MF_N; f++)
        for (int k = 0; k < MK_N; k++) {
            if (k == MK_LOCAL) continue;
            snprintf(lbl, sizeof lbl, "frontend=\"%s\",kind=\"%s\"", front_names[f], kind_names[k]);
            hist(b, "rabia_request_duration_seconds", lbl, &m->req_lat[f][k]);
        }

    /* batches */
    family(b, "rabia_batch_requests", "histogram", "Requests per batch this replica proposed.");
    hist(b, "rabia_batch_requests", "", &m->batch_reqs);
    family(b, "rabia_batch_size_bytes", "histogram", "Body bytes per batch this replica proposed.");
    hist(b, "rabia_batch_size_bytes", "", &m->batch_bytes);
    family(b, "rabia_batch_wait_seconds", "histogram", "How long a batch's oldest request waited until the cut.");
    hist(b, "rabia_batch_wait_seconds", "", &m->batch_wait);
    const struct batcher *bt = node_batcher(r->node);
    scalar(b, "rabia_pending_batches", "gauge", "Batches waiting for a slot in the core's queues.",
           rabia_core_pending(r->core));
    scalar(b, "rabia_batcher_queued_batches", "gauge", "Batches cut and not yet taken by the core.",
           batcher_cut_count(bt));
    scalar(b, "rabia_batcher_open_requests", "gauge", "Requests in the batch being filled.", batcher_open_count(bt));
    scalar(b, "rabia_waiters", "gauge", "Requests waiting for their slot to be applied.", ns.waiters);
    scalar(b, "rabia_hash_checks_agreed_total", "counter",
           "Peers' state hash checkpoints (every 1024 slots) found equal to this replica's.", (double)r->hc.agreed);
    scalar(b, "rabia_hash_checks_differed_total", "counter",
           "Peers' state hash checkpoints found different from this replica's: replicas whose states differ.",
           (double)r->hc.differed);
    scalar(b, "rabia_reads_indexed_total", "counter",
           "Reads answered by the read index: no slot of their own, one message round shared by the reads "
           "that came in one loop turn (read-index).", (double)ns.reads_indexed);
    scalar(b, "rabia_reads_logged_total", "counter",
           "Reads the read index took that went through the log after all (not answered within 1 s, or recovering).",
           (double)ns.reads_logged);
    scalar(b, "rabia_read_rounds_total", "counter", "Read-index rounds this replica opened.", (double)ns.read_rounds);
    scalar(b, "rabia_read_rounds_retried_total", "counter",
           "Read-index rounds opened again: no n-f answers within the retransmit period.",
           (double)ns.read_rounds_retried);
    scalar(b, "rabia_reads_waiting", "gauge", "Reads waiting for their read index or for the state to reach it.",
           ns.reads_waiting);
    scalar(b, "rabia_requests_held_behind_reads_total", "counter",
           "Client requests for the log that waited for reads of their connection taken by the read index before "
           "them (a connection's requests take effect in order).", (double)r->held_behind_reads);
    scalar(b, "rabia_read_answers_from_older_builds_total", "counter",
           "Answers to this replica's read-index rounds from builds that do not serve rounds: reads go through the "
           "log until that peer comes up again (a rolling upgrade).", (double)rabia_core_stats(r->core)->read_old_answers);
    scalar(b, "rabia_batch_linger_cohort_total", "counter",
           "Open batches held after this replica's own decision, with a log and no other proxy's batch pending, "
           "until the clients it answered sent again (batch-linger-us bounds it).", (double)ns.linger_cohort);

    /* slots */
    scalar(b, "rabia_slots_decided_total", "counter", "Slots decided (null ones included).",
           (double)cs->slots_decided);
    scalar(b, "rabia_slots_null_total", "counter", "Slots decided null (no batch).", (double)cs->slots_null);
    scalar(b, "rabia_slots_fast_total", "counter", "Slots decided in phase 1 (the fast path).",
           (double)cs->slots_fast);
    scalar(b, "rabia_slots_unanimous_total", "counter",
           "Slots decided at once by a unanimous proposal exchange (no state or vote round).",
           (double)cs->slots_unanimous);
    scalar(b, "rabia_slots_adopted_total", "counter", "Decisions learned from peers (DECISION, catch-up).",
           (double)cs->decisions_adopted);
    scalar(b, "rabia_retransmits_total", "counter", "Consensus messages retransmitted.", (double)cs->retransmits);
    scalar(b, "rabia_proposals_held_total", "counter",
           "Peer proposals for the slot just past the window, held until it moves (not dropped).",
           (double)cs->proposals_held);
    scalar(b, "rabia_anomalies_total", "counter", "Peer messages that broke protocol rules.",
           (double)cs->anomalies);
    scalar(b, "rabia_messages_ignored_total", "counter", "Peer messages outside the window, stale or duplicate.",
           (double)cs->msgs_ignored);
    scalar(b, "rabia_sends_dropped_total", "counter", "Sends dropped (output full); retransmission recovers.",
           (double)cs->sends_dropped);
    scalar(b, "rabia_fetches_total", "counter", "Batch bodies fetched from peers.", (double)cs->fetches);
    scalar(b, "rabia_slot_max_phase", "gauge", "Highest phase any slot needed.", (double)cs->max_phase);
    family(b, "rabia_slot_decision_duration_seconds", "histogram",
           "Time from a slot entering this replica's window to its decision.");
    hist(b, "rabia_slot_decision_duration_seconds", "", &m->slot_time);
    family(b, "rabia_slot_phases", "histogram", "Phase each slot decided here was decided in.");
    hist(b, "rabia_slot_phases", "", &m->slot_phases);
    scalar(b, "rabia_applied_slot", "gauge", "Last slot applied to the state machine.", (double)applied);
    scalar(b, "rabia_known_slot", "gauge", "Highest slot this replica knows of (its own or its peers').",
           (double)known);
    scalar(b, "rabia_lag_slots", "gauge", "Slots between the highest known and the applied one.",
           (double)(known > applied ? known - applied : 0));
    scalar(b, "rabia_slots_inflight", "gauge", "Slots started and not decided.", rabia_core_inflight(r->core));

    /* the log and snapshots */
    if (r->wal) {
        struct rabia_wal_stats ws;
        rabia_wal_stats(r->dur.wal, &ws);
        scalar(b, "rabia_log_size_bytes", "gauge", "Log segment files on disk.", (double)ws.bytes_on_disk);
        scalar(b, "rabia_wal_written_bytes_total", "counter", "Record bytes written to the log.", (double)ws.bytes);
        scalar(b, "rabia_wal_groups_total", "counter", "Group writes to the log.", (double)ws.groups);
        scalar(b, "rabia_wal_segment_waits_total", "counter", "Times the log waited for its next segment file.",
               (double)ws.segment_waits);
        struct node_stats nst;
        node_stats(r->node, &nst);
        scalar(b, "rabia_wal_decided_by_ref_total", "counter",
               "Decided slots logged by reference: the body in an earlier record, not written again.",
               (double)nst.decided_by_ref);
        scalar(b, "rabia_snapshots_taken_total", "counter", "Snapshots this replica wrote.",
               (double)r->dur.sched.taken);
        scalar(b, "rabia_snapshot_failures_total", "counter", "Snapshots that failed.",
               (double)r->dur.sched.failures);
        scalar(b, "rabia_wal_write_waiting_seconds", "gauge",
               "How long the log write in flight has waited for the disk (0: none); votes and replies wait behind it.",
               (double)durable_write_age_us(&r->dur, rio_now_us()) / 1e6);
        scalar(b, "rabia_snapshot_running_seconds", "gauge",
               "How long the snapshot now being written has run (0: none); the log is not released meanwhile.",
               (double)durable_snapshot_running_us(&r->dur, rio_now_us()) / 1e6);
        scalar(b, "rabia_wal_catchup_slots_total", "counter",
               "Decided slots sent to peers behind the retained log, read back from the write-ahead log.",
               (double)r->dur.catchup_slots);
        scalar(b, "rabia_wal_catchup_refused_total", "counter",
               "Peer catch-up requests the write-ahead log did not hold (the peer is offered a snapshot).",
               (double)r->dur.catchup_refused);
    } else {
        scalar(b, "rabia_log_size_bytes", "gauge", "Log segment files on disk (durability = memory: none).", 0);
    }
    const char *refusal = node_refusal(r->node);
    scalar(b, "rabia_wal_refusing_writes", "gauge", "1 while client writes are refused (full disk, log failure).",
           refusal && refusal[0]);
    scalar(b, "rabia_wal_write_errors_total", "counter", "Log writes that failed.", (double)m->wal_write_errors);
    scalar(b, "rabia_requests_refused_disk_total", "counter", "Requests refused because the log cannot be written.",
           (double)ns.refused_unavailable);
    family(b, "rabia_wal_write_duration_seconds", "histogram", "Group writes to the log, submission to completion.");
    hist(b, "rabia_wal_write_duration_seconds", "", &m->wal_write);
    family(b, "rabia_wal_fsync_duration_seconds", "histogram",
           "Durable log writes (RWF_DSYNC: the write is the sync), submission to completion.");
    hist(b, "rabia_wal_fsync_duration_seconds", "", &m->wal_fsync);
    scalar(b, "rabia_snapshots_installed_total", "counter", "Snapshots from peers installed here.",
           (double)r->xfer.st.installed);
    scalar(b, "rabia_state_transfers_sent_total", "counter", "Snapshot transfers started to peers.",
           (double)r->xfer.st.sent);
    scalar(b, "rabia_state_transfer_sent_bytes_total", "counter", "Snapshot bytes sent to peers.",
           (double)r->xfer.st.bytes_sent);
    scalar(b, "rabia_state_transfers_received_total", "counter", "Snapshot transfers received from peers.",
           (double)r->xfer.st.received);
    scalar(b, "rabia_state_transfers_dropped_total", "counter",
           "Snapshot transfers from peers dropped before their install (a stall, a closed link, a file error, "
           "caught up meanwhile).",
           (double)r->xfer.st.dropped);
    scalar(b, "rabia_state_transfers_declined_total", "counter",
           "Snapshot transfers from peers declined here (receiving another, caught up, no room): the sender stops.",
           (double)r->xfer.st.declined);
    scalar(b, "rabia_state_transfers_stopped_total", "counter",
           "Snapshot transfers to peers stopped because the peer declined them.", (double)r->xfer.st.stopped);
    scalar(b, "rabia_state_transfer_rate_waits_total", "counter",
           "Snapshot chunks that waited for transfer-rate's cap.", (double)r->xfer.st.rate_waits);
    scalar(b, "rabia_state_transfers_rate_lifted_total", "counter",
           "Snapshot transfers sent at full speed: at transfer-rate they would arrive further behind than "
           "log-retain keeps.", (double)r->xfer.st.rate_lifted);
    scalar(b, "rabia_state_transfers_cap_queued_total", "counter",
           "Snapshot transfers that waited to start: under transfer-rate only as many run at once as keep each "
           "one's chunks inside the receiver's stall limit.", (double)r->xfer.st.cap_queued);
    uint64_t al, ae, ad;
    replica_audit_counts(r, &al, &ae, &ad);
    scalar(b, "rabia_audit_log_lines_total", "counter", "Lines written to the audit log (audit-log).", (double)al);
    scalar(b, "rabia_audit_log_errors_total", "counter", "Audit log writes that failed (ENOSPC, EIO...).", (double)ae);
    scalar(b, "rabia_audit_log_lines_dropped_total", "counter", "Audit lines lost to failed writes or a full buffer.",
           (double)ad);
    scalar(b, "rabia_auth_failures_total", "counter",
           "Failed authentications: wrong passwords (RESP, native) and peers failing the cluster-secret handshake.",
           (double)replica_auth_failures(r));

    /* state, sessions, connections */
    if (!strcmp(r->cfg.state_machine, "kv")) {
        const void *sm = rabia_rsm_sm(r->rsm);
        scalar(b, "rabia_state_size_bytes", "gauge", "Bytes the KV store accounts for its data.",
               (double)rabia_kv_memory(sm));
        scalar(b, "rabia_keys", "gauge", "Keys in the KV store, all databases.", (double)rabia_kv_count(sm));
        scalar(b, "rabia_state_allocations_total", "counter",
               "Allocations the KV store made for its data (part of rabia_heap_allocations_total).",
               (double)rabia_kv_allocations(sm));
        uint64_t ok, error, stopped;
        rabia_kv_script_runs(sm, &ok, &error, &stopped);
        family(b, "rabia_scripts_total", "counter",
               "Scripts (EVAL, EVALSHA, ...) this replica ran, by outcome: ok, error (the script's error reply), "
               "stopped (at the instruction or heap bound every replica applies).");
        put(b, "rabia_scripts_total{outcome=\"ok\"} %" PRIu64 "\nrabia_scripts_total{outcome=\"error\"} %" PRIu64
               "\nrabia_scripts_total{outcome=\"stopped\"} %" PRIu64 "\n",
            ok, error, stopped);
        family(b, "rabia_feature_level", "gauge",
               "KV feature levels (kv/README.md): agreed (the cluster's, through the log), offered (what this "
               "replica lets it rise to: its build's or max-feature-level), build (this build's).");
        put(b, "rabia_feature_level{kind=\"agreed\"} %u\nrabia_feature_level{kind=\"offered\"} %u\n"
               "rabia_feature_level{kind=\"build\"} %d\n",
            rabia_kv_feature_level(sm), (unsigned)r->feature_offer, RABIA_KV_FEATURE_LEVEL);
    }
    scalar(b, "rabia_sessions", "gauge", "Client sessions remembered.", rabia_rsm_sessions(r->rsm));
    scalar(b, "rabia_session_reply_bytes", "gauge", "Bytes of replies kept for retries.",
           (double)rabia_rsm_reply_bytes(r->rsm));
    uint32_t nc[8];
    count_conns(r, nc);
    family(b, "rabia_connections", "gauge", "Open connections by kind.");
    put(b, "rabia_connections{kind=\"peer_out\"} %u\n", nc[CK_PEER_OUT]);
    put(b, "rabia_connections{kind=\"peer_in\"} %u\n", nc[CK_PEER_IN] + nc[CK_PEER_IN_HELLO]);
    put(b, "rabia_connections{kind=\"native\"} %u\n", nc[CK_CLIENT]);
    put(b, "rabia_connections{kind=\"resp\"} %u\n", nc[CK_RESP] + nc[CK_RESP_DRAIN]);
    put(b, "rabia_connections{kind=\"http\"} %u\n", nc[CK_HTTP]);
    scalar(b, "rabia_connections_accepted_total", "counter", "Connections accepted on every port.",
           (double)m->conns_accepted);
    scalar(b, "rabia_peer_first_starts_refused_total", "counter",
           "Peer connections refused because the peer began again on an empty data dir without --rejoin after "
           "an earlier life was heard (its data dir was lost: restart it with --rejoin).",
           (double)m->first_starts_refused);
    scalar(b, "rabia_blocked_clients", "gauge", "RESP clients parked in a blocking pop.", r->n_blocked);
    scalar(b, "rabia_client_memory_bytes", "gauge",
           "Heap bytes all client connections hold together (buffers, pipelines, subscriptions), as "
           "maxmemory-clients counts them.", (double)r->client_memory);
    scalar(b, "rabia_client_memory_limit_bytes", "gauge", "maxmemory-clients in bytes (0: no limit).",
           (double)r->maxmem_clients);
    scalar(b, "rabia_clients_evicted_total", "counter",
           "Client connections closed because all clients together held more than maxmemory-clients.",
           (double)r->clients_evicted);
    scalar(b, "rabia_clients_killed_total", "counter",
           "Client connections closed by another's CLIENT KILL (one that kills itself is not counted).",
           (double)r->clients_killed);
    struct rio_stats rs;
    rio_loop_stats(r->loop, &rs);
    scalar(b, "rabia_network_receive_bytes_total", "counter", "Bytes received on every connection.",
           (double)rs.recv_bytes);
    scalar(b, "rabia_network_transmit_bytes_total", "counter", "Bytes sent on every connection.",
           (double)rs.send_bytes);
    scalar(b, "rabia_network_transmit_shared_bytes_total", "counter",
           "Bytes of peer frames sent from the frame pool without a copy per connection.", (double)rs.shared_bytes);
    family(b, "rabia_peer_rtt_seconds", "histogram",
           "Peer round-trip time: the kernel's smoothed TCP RTT of the link to the peer, sampled once a second.");
    for (uint8_t p = 0; p < r->cfg.n; p++) {
        if (p == r->self) continue;
        snprintf(lbl, sizeof lbl, "peer=\"%u\"", p + 1);
        hist(b, "rabia_peer_rtt_seconds", lbl, &m->peer_rtt[p]);
    }
    scalar(b, "rabia_http_connections_refused_total", "counter",
           "Connections to metrics-listen refused: 64 were open already.", (double)m->http_refused);
    family(b, "rabia_http_requests_total", "counter", "Requests to metrics-listen by status code.");
    for (int i = 0; i < M_HTTP_N; i++)
        put(b, "rabia_http_requests_total{code=\"%d\"} %" PRIu64 "\n", http_codes[i], m->http[i]);
}

/* ------------------------------------------------------------------ */
/* HTTP */

bool metrics_http_room(struct rabia_replica *r)
{
    if (r->m->n_http < METRICS_HTTP_CONNS) return true;
    r->m->http_refused++;
    return false;
}

void metrics_http_accept(struct rabia_replica *r, uint32_t ci)
{
    struct conn *k = &r->conns[ci];
    /* the loop closes past twice the request limit; this side answers 400 first */
    rio_conn_set_limits(k->c, 2 * HTTP_MAX_REQUEST, 0);
    k->in_us = rio_now_us();
    r->m->n_http++;
}

void metrics_http_closed(struct rabia_replica *r, uint32_t ci)
{
    (void)ci;
    RABIA_ASSERT(r->m->n_http > 0);
    r->m->n_http--;
}

static void http_reply(struct rabia_replica *r, struct conn *k, int code_i, const char *ctype, const void *body,
                       size_t len, bool head, const char *extra)
{
    static const char *const reason[M_HTTP_N] = {"OK", "Bad Request", "Not Found", "Method Not Allowed",
                                                 "Request Timeout", "Service Unavailable"};
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n"
                     "Cache-Control: no-store\r\n%s\r\n",
                     http_codes[code_i], reason[code_i], ctype, len, extra ? extra : "");
    r->m->http[code_i]++;
    if (rio_send(k->c, hdr, (size_t)n) < 0 || (!head && len && rio_send(k->c, body, len) < 0)) {
        replica_conn_close(r, k->c);
        return;
    }
    k->closing = true; /* nothing more is read */
    rio_close_after_send(k->c);
}

/* head: the request was a HEAD, whose answer carries no body (RFC 9110
 * 9.3.2), errors included: the message is sent only to other methods. */
static void http_error(struct rabia_replica *r, struct conn *k, int code_i, const char *msg, bool head)
{
    char body[256];
    int n = snprintf(body, sizeof body, "%s\n", msg);
    http_reply(r, k, code_i, "text/plain; charset=utf-8", body, (size_t)n, head,
               code_i == M_HTTP_405 ? "Allow: GET, HEAD\r\n" : NULL);
}

/* A request line or header byte: printable ASCII, tab, or CR LF. */
static bool http_byte_ok(uint8_t c) { return (c >= 0x20 && c < 0x7f) || c == '\t' || c == '\r' || c == '\n'; }

static const uint8_t *find_crlfcrlf(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') return p + i;
    return NULL;
}

size_t metrics_http_data(struct rabia_replica *r, uint32_t ci, const uint8_t *p, size_t len)
{
    struct conn *k = &r->conns[ci];
    if (k->closing) return len;
    size_t scan = len < HTTP_MAX_REQUEST ? len : HTTP_MAX_REQUEST;
    /* what an earlier call checked of this head is not checked again: a
     * head arriving a byte at a time cost O(n^2) on the loop thread (64
     * such connections took 30% of a core: found by review) */
    size_t from = k->http_scanned;
    k->http_scanned = 0;
    if (from > scan)
        from = 0; /* (the input only grows while a head waits: never, but no assertion on a client's bytes) */
    for (size_t i = from; i < scan; i++) {
        if (!http_byte_ok(p[i])) { /* garbage: no need to wait for the end */
            http_error(r, k, M_HTTP_400, "bad request: a byte that is not printable ASCII in the request head", false);
            return len;
        }
        /* Lines end in CRLF. A head whose lines end in a bare LF (printf
         * 'GET /health HTTP/1.0\n\n' | nc) never brings the CRLFCRLF waited
         * for below: it got 408 "no complete request" after 10 s instead of
         * this. Checked on the LF's side (the byte before is always in p:
         * the input is kept until the head ends), so a CRLF split across
         * two reads is one. */
        if ((p[i] == '\n') != (i > 0 && p[i - 1] == '\r')) {
            http_error(r, k, M_HTTP_400, "bad request: a line not ending in CRLF (a bare LF or CR)", false);
            return len;
        }
    }
    size_t back = from < 3 ? from : 3; /* a CRLFCRLF across the old end */
    const uint8_t *end = find_crlfcrlf(p + from - back, scan - from + back);
    if (!end) {
        if (len >= HTTP_MAX_REQUEST)
            http_error(r, k, M_HTTP_400, "bad request: request head longer than 8192 bytes", false);
        else
            k->http_scanned = (uint32_t)scan; /* wait for the rest */
        return len >= HTTP_MAX_REQUEST ? len : 0;
    }
    size_t head_len = (size_t)(end - p) + 2; /* lines, each ending in CRLF */
    /* request line: METHOD SP TARGET SP HTTP/1.x */
    const uint8_t *eol = memchr(p, '\r', head_len);
    RABIA_ASSERT(eol);
    size_t ll = (size_t)(eol - p);
    char line[HTTP_MAX_REQUEST + 1];
    memcpy(line, p, ll);
    line[ll] = 0;
    char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    /* the absolute form (GET http://host:port/metrics), which a server must
     * accept (RFC 9112 3.2.2): its path is what follows the authority */
    size_t abs = !sp1 ? 0 : !strncasecmp(sp1 + 1, "http://", 7) ? 7 : !strncasecmp(sp1 + 1, "https://", 8) ? 8 : 0;
    if (eol[1] != '\n' || !sp1 || !sp2 || sp1 == line || strchr(sp2 + 1, ' ') ||
        (strcmp(sp2 + 1, "HTTP/1.1") && strcmp(sp2 + 1, "HTTP/1.0")) || (sp1[1] != '/' && !abs)) {
        http_error(r, k, M_HTTP_400, "bad request: expected a request line 'GET /metrics HTTP/1.1'", false);
        return len;
    }
    *sp1 = *sp2 = 0;
    const char *method = line, *target = sp1 + 1;
    if (abs) {
        target = sp1 + 1 + abs + strcspn(sp1 + 1 + abs, "/?");
        if (*target != '/') target = "/"; /* no path: "/" (RFC 9112 3.2.2), not served here */
    }
    bool head = !strcmp(method, "HEAD"); /* from here on, errors to a HEAD carry no body */
    /* headers: each "Name: value"; a body is refused (nothing here takes one) */
    for (const uint8_t *h = eol + 2; h < p + head_len;) {
        const uint8_t *he = memchr(h, '\r', (size_t)(p + head_len - h));
        RABIA_ASSERT(he);
        size_t hl = (size_t)(he - h);
        const uint8_t *colon = memchr(h, ':', hl);
        if (!colon || colon == h || he[1] != '\n') {
            http_error(r, k, M_HTTP_400, "bad request: a header line without 'Name: value'", head);
            return len;
        }
        size_t nl = (size_t)(colon - h);
        if ((nl == 14 && !strncasecmp((const char *)h, "content-length", 14)) ||
            (nl == 17 && !strncasecmp((const char *)h, "transfer-encoding", 17))) {
            const uint8_t *v = colon + 1, *ve = he;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            /* a field value's whitespace after it is not part of it either
             * (RFC 9112 5): "Content-Length: 0 " is no body */
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            if (nl == 17 || ve - v != 1 || *v != '0') {
                http_error(r, k, M_HTTP_400, "bad request: this endpoint takes no request body", head);
                return len;
            }
        }
        h = he + 2;
    }
    if (strcmp(method, "GET") && !head) {
        http_error(r, k, M_HTTP_405, "method not allowed: use GET", false);
        return len;
    }
    size_t tl = strcspn(target, "?"); /* a query string is ignored */
    if (tl == 8 && !strncmp(target, "/metrics", 8)) {
        struct rabia_buf *b = &r->m->out;
        b->len = 0; /* the buffer stays: no allocation after the first scrape */
        render_metrics(r, b);
        http_reply(r, k, M_HTTP_200, "text/plain; version=0.0.4; charset=utf-8", b->data, b->len, head, NULL);
    } else if (tl == 7 && !strncmp(target, "/health", 7)) {
        char why[300];
        bool ok = metrics_health(r, why, sizeof why);
        size_t wl = strlen(why);
        why[wl++] = '\n';
        http_reply(r, k, ok ? M_HTTP_200 : M_HTTP_503, "text/plain; charset=utf-8", why, wl, head, NULL);
    } else {
        http_error(r, k, M_HTTP_404, "not found: this endpoint serves /metrics and /health", head);
    }
    return len;
}

static void sample_rtt(struct rabia_replica *r)
{
    for (uint8_t p = 0; p < r->cfg.n; p++) {
        if (p == r->self || !r->peers[p].out_ready) continue;
        struct tcp_info ti;
        socklen_t tl = sizeof ti;
        int fd = rio_conn_fd(r->conns[r->peers[p].out].c);
        if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) || tl < sizeof ti || !ti.tcpi_rtt) continue;
        mhist_observe(&r->m->peer_rtt[p], ti.tcpi_rtt / 1e6);
    }
}

void metrics_tick(struct rabia_replica *r, uint64_t now)
{
    struct metrics *m = r->m;
    if (now - m->rtt_at_us >= RTT_PERIOD_US) {
        m->rtt_at_us = now;
        sample_rtt(r);
    }
    if (!m->n_http || now - m->http_tick_us < 1000000) return;
    m->http_tick_us = now;
    uint32_t seen = 0;
    struct conn *k;
    for (FOR_LIVE(r, k)) {
        if (seen >= m->n_http) break;
        if (k->kind != CK_HTTP) continue;
        seen++;
        if (!k->closing && now - k->in_us >= HTTP_IDLE_US)
            http_error(r, k, M_HTTP_408, "request timeout: no complete request within 10 s", false);
    }
}

/* ------------------------------------------------------------------ */
/* INFO */

/* INFO's arguments: sections, "default", "all" or "everything", as many as
 * given (Redis 7.0; before only the first was read, so INFO server
 * memory, which exporters send, answered the server section alone: found
 * by review); none: the default ones. */
static bool want_section(const char *name, const uint8_t *const *want, const size_t *want_len, uint32_t wn)
{
    if (!wn) return strcasecmp(name, "commandstats") && strcasecmp(name, "latencystats"); /* as Redis */
    for (uint32_t i = 0; i < wn; i++) {
        const char *a = (const char *)want[i];
        size_t n = want_len[i];
        if ((n == 3 && !strncasecmp(a, "all", 3)) || (n == 10 && !strncasecmp(a, "everything", 10))) return true;
        if (n == 7 && !strncasecmp(a, "default", 7) && strcasecmp(name, "commandstats") &&
            strcasecmp(name, "latencystats"))
            return true;
        if (strlen(name) == n && !strncasecmp(name, a, n)) return true;
    }
    return false;
}

/* A section's header ("# Title", a blank line before all but the first), if wanted. */
static bool sect(struct rabia_buf *b, const char *title, const uint8_t *const *want, const size_t *want_len,
                 uint32_t wn)
{
    if (!want_section(title, want, want_len, wn)) return false;
    put(b, "%s# %s\r\n", b->len ? "\r\n" : "", title);
    return true;
}

static void human(char *out, size_t len, uint64_t v)
{
    if (v >= (1ull << 30)) snprintf(out, len, "%.2fG", v / (double)(1ull << 30));
    else if (v >= (1ull << 20)) snprintf(out, len, "%.2fM", v / (double)(1ull << 20));
    else if (v >= 1024) snprintf(out, len, "%.2fK", v / 1024.0);
    else snprintf(out, len, "%" PRIu64 "B", v);
}

static uint64_t peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

static const char *cmd_name(const struct metrics *m, uint32_t i)
{
    uint32_t nkv = m->ncmds - (uint32_t)N_LOCAL_CMDS;
    return i < nkv ? rabia_kv_command(i)->name : local_cmds[i - nkv];
}

static double percentile(const struct mcmd *c, double q)
{
    uint64_t target = (uint64_t)(q * (double)c->calls + 0.999999), cum = 0;
    if (!target) target = 1;
    for (unsigned i = 0; i < MC_LAT_BUCKETS; i++) {
        cum += c->lat[i];
        if (cum >= target) return (double)lat_bucket_upper(i);
    }
    return (double)lat_bucket_upper(MC_LAT_BUCKETS - 1);
}

void metrics_info(struct rabia_replica *r, struct rabia_buf *b, const uint8_t *const *want, const size_t *want_len,
                  uint32_t wn)
{
    struct metrics *m = r->m;
    struct rabia_replica_status st;
    rabia_replica_get_status(r, &st);
    struct node_stats ns;
    node_stats(r->node, &ns);
    bool kv = !strcmp(r->cfg.state_machine, "kv");
    const void *sm = rabia_rsm_sm(r->rsm);
    uint64_t now = rio_now_us(), up_s = (now - m->start_us) / 1000000;
    uint64_t applied = rabia_rsm_applied(r->rsm), known = rabia_core_known_slot(r->core);
    b->len = 0;
    /* redis_mode and role as HELLO answers them (standalone, master):
     * every replica takes writes. Tools read them to find the server to
     * write to (HAProxy's usual Redis check expects "role:master", exporters
     * label by role); "rabia" and "rabia-replica" made every replica look
     * like none (found by review). health says whether this one serves. */
    if (sect(b, "Server", want, want_len, wn)) {
        put(b, "redis_version:7.0.0\r\nrabia_version:0.1.0\r\nredis_mode:standalone\r\nos:Linux\r\n"
               "arch_bits:%d\r\nmultiplexing_api:io_uring\r\nprocess_id:%ld\r\nrun_id:%016" PRIx64 "\r\n"
               "tcp_port:%s\r\nuptime_in_seconds:%" PRIu64 "\r\nuptime_in_days:%" PRIu64
               "\r\nstate_machine:%s\r\nmetrics_listen:%s\r\nio_threads_active:%u\r\nrabia_cluster_id:0x%016" PRIx64
               "\r\n",
            (int)(sizeof(void *) * 8), (long)getpid(), r->incarnation ^ r->cluster_id,
            r->cfg.resp_listen[0] ? strrchr(r->cfg.resp_listen, ':') + 1 : "0", up_s, up_s / 86400,
            r->cfg.state_machine, r->cfg.metrics_listen, r->io_threads, r->cluster_id);
        if (kv) /* kv/README.md "Feature levels" */
            put(b, "rabia_feature_level:%u\r\nrabia_build_feature_level:%d\r\nrabia_offered_feature_level:%u\r\n",
                rabia_kv_feature_level(sm), RABIA_KV_FEATURE_LEVEL, (unsigned)r->feature_offer);
    }
    uint32_t nc[8];
    count_conns(r, nc);
    if (sect(b, "Clients", want, want_len, wn)) {
        put(b, "connected_clients:%u\r\nresp_clients:%u\r\nnative_clients:%u\r\nmaxclients:%u\r\n"
               "blocked_clients:%u\r\npubsub_clients:%u\r\n",
            nc[CK_RESP] + nc[CK_CLIENT], nc[CK_RESP], nc[CK_CLIENT], MAX_CONNS - CONNS_KEPT_FOR_PEERS, r->n_blocked,
            r->pubsub_conns); /* maxclients: what clients may take (the rest is kept for the peers) */
        put(b, "maxmemory_clients:%" PRIu64 "\r\n", r->maxmem_clients);
        /* PSUBSCRIBE pattern matches given up on (io/resp.c RESP_PUBSUB_MATCH_STEPS) */
        put(b, "pubsub_pattern_giveups:%" PRIu64 "\r\n", resp_pubsub_giveups());
    }
    if (sect(b, "Memory", want, want_len, wn)) {
        uint64_t rss, vsz, peak = peak_rss();
        proc_memory(&rss, &vsz);
        char h1[32], h2[32];
        /* used_memory: the resident set. Redis reports its allocator's
         * live bytes; here most of those are pools allocated at start whose
         * untouched pages cost nothing (jemalloc's stats.allocated said 441
         * MB of a fresh replica holding 11 MB), so the resident set is the
         * nearer figure. It is the field dashboards and client libraries
         * read (Sidekiq's web UI; BullMQ and Sidekiq check maxmemory_policy
         * at start and warn of eviction when it is missing): without them
         * they showed nothing or warned. Nothing is evicted here (CONFIG
         * GET maxmemory-policy answers noeviction too). */
        human(h1, sizeof h1, rss);
        human(h2, sizeof h2, peak);
        put(b, "used_memory:%" PRIu64 "\r\nused_memory_human:%s\r\n", rss, h1);
        put(b, "used_memory_rss:%" PRIu64 "\r\nused_memory_rss_human:%s\r\nused_memory_peak:%" PRIu64
               "\r\nused_memory_peak_human:%s\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\n"
               "maxmemory_policy:noeviction\r\n",
            rss, h1, peak, h2);
        put(b, "mem_clients_normal:%" PRIu64 "\r\n", r->client_memory);
        if (kv) {
            uint64_t keys = rabia_kv_count(sm), mem = rabia_kv_memory(sm);
            put(b, "used_memory_dataset:%" PRIu64 "\r\ndataset_bytes_per_key:%" PRIu64 "\r\n", mem,
                keys ? mem / keys : 0);
            put(b, "number_of_cached_scripts:%" PRIu64 "\r\n", rabia_kv_scripts(sm));
        }
    }
    if (sect(b, "Persistence", want, want_len, wn)) {
        put(b, "loading:0\r\ndurability:%s\r\nrequests_refused_disk:%" PRIu64 "\r\n",
            r->wal ? "wal" : "memory", ns.refused_unavailable);
        if (r->wal) {
            char text[2048];
            int n = durable_status(&r->dur, text, sizeof text);
            if (n > 0) put(b, "%.*s", n < (int)sizeof text ? n : (int)sizeof text - 1, text);
            put(b, "wal_fsync_count:%" PRIu64 "\r\n", m->wal_fsync.count);
        }
        char audit[512];
        int an = replica_audit_info(r, audit, sizeof audit);
        put(b, "%.*s", an, audit);
        put(b, "snapshots_installed:%" PRIu64 "\r\nstate_transfers_sent:%" PRIu64
               "\r\nstate_transfer_sent_bytes:%" PRIu64 "\r\nstate_transfers_stopped:%" PRIu64
               "\r\nstate_transfers_received:%" PRIu64 "\r\nstate_transfers_declined:%" PRIu64
               "\r\nstate_transfers_dropped:%" PRIu64 "\r\nstate_transfer_rate:%" PRIu64
               "\r\nstate_transfer_rate_waits:%" PRIu64 "\r\nstate_transfer_rate_lifted:%" PRIu64
               "\r\nstate_transfers_cap_queued:%" PRIu64 "\r\n",
            r->xfer.st.installed, r->xfer.st.sent, r->xfer.st.bytes_sent, r->xfer.st.stopped, r->xfer.st.received,
            r->xfer.st.declined, r->xfer.st.dropped, r->xfer.cfg.rate, r->xfer.st.rate_waits, r->xfer.st.rate_lifted,
            r->xfer.st.cap_queued);
    }
    if (sect(b, "Stats", want, want_len, wn)) {
        struct rio_stats rs;
        rio_loop_stats(r->loop, &rs);
        uint64_t total = 0, errs = 0;
        for (int f = 0; f < MF_N; f++)
            for (int k = 0; k < MK_N; k++) total += m->requests[f][k];
        for (int e = 0; e < ME_N; e++) errs += m->errors[e];
        put(b, "total_connections_received:%" PRIu64 "\r\ntotal_commands_processed:%" PRIu64
               "\r\ntotal_net_input_bytes:%" PRIu64 "\r\ntotal_net_output_bytes:%" PRIu64
               "\r\ntotal_error_replies:%" PRIu64 "\r\n",
            m->conns_accepted, total, rs.recv_bytes, rs.send_bytes, errs);
        put(b, "evicted_clients:%" PRIu64 "\r\n", r->clients_evicted);
        put(b, "peer_first_starts_refused:%" PRIu64 "\r\n", m->first_starts_refused);
        /* the event loop's own counts (this thread's ring): what a slot or a
         * request costs in sends, receive completions and sleeps */
        put(b, "io_sends:%" PRIu64 "\r\nio_recv_completions:%" PRIu64 "\r\nio_loop_turns:%" PRIu64
               "\r\nio_loop_waits:%" PRIu64 "\r\nio_loop_waits_several:%" PRIu64 "\r\nio_loop_waits_several_timeouts:%" PRIu64 "\r\n",
            rs.sends, rs.recv_cqes, rs.turns, rs.waits, rs.waits_several, rs.waits_several_timeouts);
        put(b, "io_loop_waits_log:%" PRIu64 "\r\nio_loop_waits_log_timeouts:%" PRIu64 "\r\n", rs.waits_file,
            rs.waits_file_timeouts);
        for (int e = 0; e < ME_N; e++) put(b, "errors_%s:%" PRIu64 "\r\n", err_names[e], m->errors[e]);
        const struct rabia_stats *cs = rabia_core_stats(r->core);
        put(b, "slots_fast:%" PRIu64 "\r\nslots_unanimous:%" PRIu64 "\r\nslots_adopted:%" PRIu64
               "\r\nretransmits:%" PRIu64 "\r\nproposals_held:%" PRIu64 "\r\nanomalies:%" PRIu64
               "\r\nmax_phase:%" PRIu64 "\r\n",
            cs->slots_fast, cs->slots_unanimous, cs->decisions_adopted, cs->retransmits, cs->proposals_held,
            cs->anomalies, cs->max_phase);
        char auth[128];
        int an = replica_auth_info(r, auth, sizeof auth);
        put(b, "%.*s", an, auth);
    }
    if (sect(b, "Replication", want, want_len, wn)) {
        uint64_t hslot;
        put(b, "role:master\r\nconnected_slaves:0\r\nreplica_id:%u\r\nmembers:%u\r\nincarnation:%" PRIu64
               "\r\nrecovering:%d\r\nslots_applied:%" PRIu64 "\r\nslots_known:%" PRIu64 "\r\nlag_slots:%" PRIu64
               "\r\nslots_decided:%" PRIu64 "\r\nslots_null:%" PRIu64 "\r\nstate_hash:%016" PRIx64
               "\r\nconnected_peers:%u\r\n",
            st.id, st.n, st.incarnation, st.recovering, applied, known, known > applied ? known - applied : 0,
            st.slots_decided, st.slots_null, replica_state_hash(r, true, &hslot), peers_up(r));
        for (uint8_t p = 0; p < r->cfg.n; p++)
            put(b, "member_%u:%s:%u,%s\r\n", p + 1, r->cfg.members[p].host, r->cfg.members[p].port,
                p == r->self ? "self" : r->peers[p].out_ready ? "up" : "down");
        char why[300];
        bool ok = metrics_health(r, why, sizeof why);
        put(b, "health:%s\r\nhealth_reason:%s\r\n", ok ? "ok" : "fail", why);
    }
    if (sect(b, "Sessions", want, want_len, wn)) { /* rabia's own: the apply layer's client sessions */
        put(b, "sessions:%u\r\nsession_reply_bytes:%" PRIu64 "\r\nsessions_closed:%" PRIu64
               "\r\nsessions_close_lost:%" PRIu64 "\r\nrequests_resubmitted:%" PRIu64 "\r\nwaiters:%u\r\n"
               "slots_answered_early:%" PRIu64 "\r\nwal_decided_by_ref:%" PRIu64 "\r\n"
               "wal_catchup_fetches_held:%" PRIu64 "\r\nwal_catchup_reads_continued:%" PRIu64
               "\r\nbatches_lingered_for_cohort:%" PRIu64 "\r\n"
            "frames_shared:%" PRIu64 "\r\nframes_copied:%" PRIu64 "\r\nframes_in_use:%u\r\n",
            rabia_rsm_sessions(r->rsm), rabia_rsm_reply_bytes(r->rsm), ns.sessions_closed, ns.sessions_close_lost,
            ns.resubmitted, ns.waiters, ns.answered_early, ns.decided_by_ref, ns.catchup_log_fetch_held,
            ns.catchup_log_continued, ns.linger_cohort, ns.frames_shared, ns.frames_copied, ns.frames_in_use);
        put(b, "hash_checks_agreed:%" PRIu64 "\r\nhash_checks_differed:%" PRIu64 "\r\nhash_check_slot:%" PRIu64
               "\r\nstate_diverged:%d\r\n", r->hc.agreed, r->hc.differed, r->hc.agreed_slot, r->hc.suspect);
        put(b, "reads_indexed:%" PRIu64 "\r\nreads_logged:%" PRIu64 "\r\nread_rounds:%" PRIu64
               "\r\nread_rounds_retried:%" PRIu64 "\r\nreads_waiting:%u\r\nread_rounds_answered:%" PRIu64
               "\r\nread_answers_from_older_builds:%" PRIu64 "\r\nread_index_paused:%d\r\n"
               "requests_held_behind_reads:%" PRIu64 "\r\n",
            ns.reads_indexed, ns.reads_logged, ns.read_rounds, ns.read_rounds_retried, ns.reads_waiting,
            rabia_core_stats(r->core)->read_answers, rabia_core_stats(r->core)->read_old_answers,
            !rabia_core_reads_ok(r->core) && !rabia_core_recovering(r->core), r->held_behind_reads);
    }
    if (sect(b, "Commandstats", want, want_len, wn)) {
                for (uint32_t i = 0; i < m->ncmds; i++) {
            const struct mcmd *c = &m->cmds[i];
            if (!c->calls) continue;
            put(b, "cmdstat_%s:calls=%" PRIu64 ",usec=%" PRIu64 ",usec_per_call=%.2f,rejected_calls=0,failed_calls=%" PRIu64
                   "\r\n",
                cmd_name(m, i), c->calls, c->usec, (double)c->usec / (double)c->calls, c->failed);
        }
    }
    if (sect(b, "Latencystats", want, want_len, wn)) {
                for (uint32_t i = 0; i < m->ncmds; i++) {
            const struct mcmd *c = &m->cmds[i];
            if (!c->calls) continue;
            put(b, "latency_percentiles_usec_%s:p50=%.3f,p99=%.3f,p99.9=%.3f\r\n", cmd_name(m, i),
                percentile(c, 0.5), percentile(c, 0.99), percentile(c, 0.999));
        }
    }
    if (sect(b, "Keyspace", want, want_len, wn)) {
                for (uint32_t db = 0; kv && db < 16; db++) {
            uint64_t keys, e;
            rabia_kv_db_info(sm, db, &keys, &e);
            if (keys) put(b, "db%u:keys=%" PRIu64 ",expires=%" PRIu64 ",avg_ttl=0\r\n", db, keys, e);
        }
    }
}
