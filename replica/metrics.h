/* replica/metrics.h: rabiad's metrics registry, its HTTP endpoint
 * (metrics-listen: GET /metrics in the Prometheus text format, GET /health)
 * and the Redis-style INFO text.
 *
 * Everything here is preallocated when the replica is created: an
 * observation is an array index and a few adds on the loop's thread, never
 * an allocation. Values that cost a system call or a walk (memory, TCP
 * round-trip times, connection counts) are read when scraped or once a
 * second, never per request; nothing walks the state (O(metrics), not
 * O(keys)). The bucket bounds of every histogram are in metrics.c, next to
 * the metric, with the reason for them. */
#ifndef RABIA_REPLICA_METRICS_H
#define RABIA_REPLICA_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rabia/state_machine.h"
#include "rabia/types.h"

struct rabia_replica;
struct rabia_batch_id;

#define MH_MAX_BUCKETS 20
/* A fixed-bucket histogram (Prometheus: cumulative at render time). */
struct mhist {
    const double *le; /* upper bounds, ascending; +Inf is implicit */
    uint32_t nb;
    uint64_t b[MH_MAX_BUCKETS + 1]; /* per bucket (not cumulative); [nb]: above the last bound */
    uint64_t count;
    double sum;
};

enum m_front { MF_RESP, MF_NATIVE, MF_APP, MF_N };
/* read / write: replicated KV commands by the command table's flags
 * (readonly or not), from RESP or the native protocol; local: answered by
 * the RESP connection itself (PING, INFO, CONFIG...); other: an op the
 * replica cannot classify (another state machine's, a session's OPEN, the
 * embedding API's) */
enum m_kind { MK_READ, MK_WRITE, MK_LOCAL, MK_OTHER, MK_N };
/* why a request was answered with an error */
enum m_err {
    ME_DISK,     /* the log cannot be written (full disk): MISCONF */
    ME_BUSY,     /* the batcher or waiter table was full: BUSY */
    ME_SESSION,  /* the client's session was evicted */
    ME_REFUSED,  /* any other refusal by the replica */
    ME_COMMAND,  /* the command ran and answered an error (WRONGTYPE, syntax...) */
    ME_PROTOCOL, /* a RESP protocol error: the connection is closed */
    ME_N
};
#define M_CMD_NONE 0xFFFFu

/* Redis's per-command stats (INFO commandstats, latencystats): calls,
 * time, failures and a log-linear latency histogram in microseconds (8
 * sub-buckets per power of two: a percentile is reported as its bucket's
 * upper bound, at most 12.5% high). */
#define MC_LAT_BUCKETS (8 + 33 * 8)
struct mcmd {
    uint64_t calls, usec, failed;
    uint32_t lat[MC_LAT_BUCKETS];
};

enum { M_HTTP_200, M_HTTP_400, M_HTTP_404, M_HTTP_405, M_HTTP_408, M_HTTP_503, M_HTTP_N };

struct metrics {
    double start_time;          /* Unix seconds */
    uint64_t start_us;          /* rio_now_us at creation */
    uint64_t requests[MF_N][MK_N];
    uint64_t errors[ME_N];
    struct mhist req_lat[MF_N][MK_N];
    struct mhist wal_write, wal_fsync;
    uint64_t wal_write_errors;
    struct mhist batch_reqs, batch_bytes, batch_wait;
    uint64_t batch_cuts_seen, batch_wait_seen; /* batcher stats already observed */
    struct mhist slot_time, slot_phases;
    uint64_t slots_decided_seen;  /* decisions the observer saw */
    struct mhist peer_rtt[RABIA_MAX_REPLICAS];
    uint64_t rtt_at_us;
    uint64_t conns_accepted;
    uint64_t first_starts_refused; /* peers refused for a FIRST_START after an earlier life (hello.h) */
    uint64_t http[M_HTTP_N];
    uint32_t n_http;            /* CK_HTTP connections open */
    uint64_t http_refused;      /* metrics connections refused: METRICS_HTTP_CONNS open */
    uint64_t http_tick_us;
    struct mcmd *cmds;          /* [ncmds]: the KV commands, then the local ones */
    uint32_t ncmds;
    struct rabia_buf out;       /* the last scrape's text, reused */
    struct rabia_buf info;      /* the last INFO's text, reused */
};

/* Allocate r->m (before node_create: its observers point here). 0 or -ENOMEM. */
int metrics_create(struct rabia_replica *r);
void metrics_destroy(struct rabia_replica *r);
/* Open metrics-listen on the loop (after the loop exists). 0, or a
 * negative errno with err naming the key, the address and the fix. */
int metrics_listen(struct rabia_replica *r, char *err, size_t errlen);

/* A RESP command's index for commandstats and its kind. */
uint16_t metrics_cmd_index(const uint8_t *name, size_t len, bool replicated, uint8_t *kind);
/* A native request's op, for the kv state machine: its command's index
 * and kind from argv[0] (kv.h's OPERATION format; @DB looked through, TXN
 * a write); anything else (another state machine, a session's OPEN, a
 * malformed op) is M_CMD_NONE and MK_OTHER. Packed as kind << 16 | index. */
uint32_t metrics_op_tag(const struct rabia_replica *r, const uint8_t *op, size_t len);
/* A request answered: front end, kind, command (M_CMD_NONE: none), when it
 * arrived, and the answer (status enum rabia_reply_status; a RESP result
 * starting with '-' is a command error). */
void metrics_request_done(struct rabia_replica *r, int front, int kind, uint16_t cmd, uint64_t t_us, int status,
                          const uint8_t *res, size_t len);
/* A RESP command answered by the connection itself. */
void metrics_local_done(struct rabia_replica *r, uint16_t cmd, uint64_t t_us, const struct rabia_buf *reply,
                        size_t reply_from);

/* node.h's and the core's observers, durable.c's write hook */
void metrics_on_submitted(void *ctx, const struct rabia_batch_id *id, const uint8_t *body, uint32_t len);
void metrics_on_decide(void *ctx, uint64_t slot, uint8_t value, uint32_t phase, bool adopted, uint64_t elapsed_us);
void metrics_on_wal_write(void *ctx, uint64_t us, bool dsync, int res);

/* metrics-listen connections (replica.c's callbacks hand them over) */
/* Whether another metrics connection may open (at most METRICS_HTTP_CONNS
 * at once: they share the replica's connection table with the clients). */
#define METRICS_HTTP_CONNS 64
bool metrics_http_room(struct rabia_replica *r);
void metrics_http_accept(struct rabia_replica *r, uint32_t ci);
size_t metrics_http_data(struct rabia_replica *r, uint32_t ci, const uint8_t *p, size_t len);
void metrics_http_closed(struct rabia_replica *r, uint32_t ci);
/* Once per loop turn: idle HTTP connections closed, peer RTTs sampled (both
 * at most once a second). */
void metrics_tick(struct rabia_replica *r, uint64_t now);

/* Whether the replica serves: true, or false with a one-line reason. */
bool metrics_health(struct rabia_replica *r, char *why, size_t len);
/* The text of RESP INFO [section ...] into out (replaced): want[0..wn) the
 * arguments after INFO. */
void metrics_info(struct rabia_replica *r, struct rabia_buf *out, const uint8_t *const *want, const size_t *want_len,
                  uint32_t wn);

#endif
