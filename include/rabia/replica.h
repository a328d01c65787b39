/* Embedding API: run a Rabia replica around your own state machine.
 *
 * A replica is one thread: an io_uring loop that talks to its peers and to
 * clients, the consensus core, the batcher and the apply layer with your
 * state machine (include/rabia/state_machine.h). The guide's "first SMR
 * application" in C:
 *
 *     struct rabia_replica_config cfg;
 *     rabia_replica_config_default(&cfg);
 *     rabia_replica_config_set(&cfg, "id", "1", err, sizeof err);
 *     rabia_replica_config_set(&cfg, "members",
 *         "1=10.0.0.1:7501,2=10.0.0.2:7501,3=10.0.0.3:7501", err, sizeof err);
 *     struct rabia_replica *r;
 *     if (rabia_replica_create(&r, &cfg, &my_sm_ops, err, sizeof err)) die(err);
 *     pthread_create(&t, NULL, run_thread, r);       // calls rabia_replica_run
 *     rabia_replica_call(r, op, op_len, &result, 5000); // any other thread
 *     rabia_replica_stop(r); pthread_join(t, NULL); rabia_replica_destroy(r);
 *
 * Replica ids in configs are 1..n (human numbering); the core uses 0..n-1.
 */
#ifndef RABIA_REPLICA_H
#define RABIA_REPLICA_H

#include "rabia/state_machine.h"
#include "rabia/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RABIA_ADDR_MAX 272

struct rabia_member {
    uint8_t id;                  /* 1..n */
    char host[256];
    uint16_t port;               /* peer port */
};

enum rabia_log_level { RABIA_LOG_ERROR = 0, RABIA_LOG_WARN, RABIA_LOG_INFO, RABIA_LOG_DEBUG };

/* Every field has a config-file key of the same name with '-' for '_'
 * (e.g. batch-max-bytes); rabiad accepts each as --key=value too. */
struct rabia_replica_config {
    uint8_t id;                          /* id: this replica, 1..n */
    uint8_t n;                           /* set from members */
    struct rabia_member members[RABIA_MAX_REPLICAS]; /* members: 1=host:port,2=... */
    char peer_listen[RABIA_ADDR_MAX];    /* peer-listen: default 0.0.0.0:<own member port> */
    char client_listen[RABIA_ADDR_MAX];  /* client-listen: native protocol, "" = off */
    char resp_listen[RABIA_ADDR_MAX];    /* resp-listen: RESP2 (kv only), "" = off */
    char data_dir[512];                  /* data-dir: incarnation file (and later the log) */
    char state_machine[32];              /* state-machine: kv | counter | bank (rabiad picks the state
                                            machine by it; rabia_replica_create names the one it is
                                            given: the KV store's machinery runs for rabia_sm_kv's only) */
    uint32_t batch_max_bytes;            /* batch-max-bytes */
    uint32_t batch_max_reqs;             /* batch-max-reqs */
    uint32_t batch_timeout_us;           /* batch-timeout-us: longest a request waits to fill a batch */
    uint32_t batch_linger_us;            /* batch-linger-us: with window 1, the next batch waits while an own batch
                                            is undecided and, with several proxies, up to this long for the clients
                                            answered from the last (default 200; 0: off) */
    bool read_index;                     /* read-index: reads answered by the read index, without a slot of
                                            their own (core/README.md "Reads"; default yes) */
    uint32_t window;                     /* window: slots in flight (1 with policy global) */
    uint8_t policy;                      /* policy: global | classes */
    uint64_t cluster_id;                 /* cluster-id: 0 = derived from the member list */
    uint32_t max_sessions;               /* max-sessions: client sessions remembered */
    uint64_t reply_cache_bytes;          /* reply-cache-bytes: replies kept for retries, all
                                            sessions together (core/rsm.h) */
    uint32_t log_retain;                 /* log-retain: decided slots kept for peers' catch-up
                                            (further behind: a snapshot) */
    uint64_t log_retain_bytes;           /* log-retain-bytes: ... holding at most this many bytes of
                                            batch bodies (0 = no bound) */
    uint64_t transfer_rate;              /* transfer-rate: bytes per second all snapshot transfers
                                            out of this replica may send together (0 = no cap) */
    uint32_t retransmit_ms;              /* retransmit-ms */
    int max_feature_level;               /* max-feature-level: the highest KV feature level this
                                            replica lets the cluster agree (kv/README.md "Feature
                                            levels"); -1 (default) = its build's */
    int log_level;                       /* log-level: error | warn | info | debug */
    bool rejoin;                         /* rejoin: yes = recover from peers even without an
                                            incarnation file (the data dir was lost) */
    uint8_t durability;                  /* durability: wal (default) | memory (enum rabia_durability) */
    uint64_t wal_segment_bytes;          /* wal-segment-bytes: size of one log segment file */
    uint64_t max_log_size;               /* max-log-size: log bytes written since the last snapshot
                                            that trigger a new one (the log prefix it covers goes) */
    uint32_t snapshot_interval_s;        /* snapshot-interval-s: a snapshot at least this often when
                                            anything was applied (0 = only by max-log-size) */
    bool wal_allow_buffered;             /* wal-allow-buffered: development only, a data-dir on a
                                            filesystem without O_DIRECT (tmpfs) */
    int32_t io_threads;                  /* io-threads: client connections (accept, read, write)
                                            on this many threads of their own, each with its own
                                            io_uring; 0 = the consensus thread does all; -1 = auto
                                            (the default: replica/README.md says how) */
    bool io_threads_pin;                 /* io-threads-pin: pin I/O thread i to the (i+1)-th CPU
                                            of the process's CPU set (default yes) */
    uint64_t maxmemory_clients;          /* maxmemory-clients: heap bytes all client connections together
                                            may hold (buffers, pipelines, subscriptions); beyond it the
                                            largest are closed, as Redis's maxmemory-clients. 0 = no
                                            limit; see maxmemory_clients_pct */
    uint8_t maxmemory_clients_pct;       /* maxmemory-clients as "N%": of physical memory, resolved
                                            at start (default 10%; 0 = maxmemory_clients in bytes) */
    /* operations and security (replica/README.md "Operations") */
    char metrics_listen[RABIA_ADDR_MAX]; /* metrics-listen: HTTP /metrics and /health, "" = off */
    char cluster_secret_file[512];       /* cluster-secret-file: peers prove membership with the
                                            secret in this file (challenge-response in HELLO) */
    char requirepass[256];               /* requirepass: the default user's password (as redis.conf) */
    char acl_file[512];                  /* acl-file: users, Redis ACL syntax ("user NAME on >pass ~pattern +@read") */
    char tls_cert_file[512];             /* tls-cert-file: this replica's certificate (PEM) */
    char tls_key_file[512];              /* tls-key-file: its private key (PEM) */
    char tls_ca_cert_file[512];          /* tls-ca-cert-file: the cluster CA (PEM) */
    bool tls_peers;                      /* tls-peers: peer links over TLS 1.3, mutually authenticated */
    bool tls_clients;                    /* tls-clients: both client ports over TLS 1.3 */
    bool tls_auth_clients;               /* tls-auth-clients: clients must present a CA-signed certificate */
    char audit_log[512];                 /* audit-log: every applied write, with client and slot, "" = off */
    uint64_t audit_log_max_bytes;        /* audit-log-max-bytes: rotate past this size */
    uint32_t audit_log_keep;             /* audit-log-keep: rotated files kept */
    char restore_from[512];              /* restore-from: seed a new cluster from a backup file (rabiad --restore) */
};

enum rabia_durability {
    RABIA_DURABILITY_WAL = 0,    /* every reply waits for the decision on disk; survives any crash */
    RABIA_DURABILITY_MEMORY = 1, /* the paper's setting: state in memory, survives f crashes at once */
};

void rabia_replica_config_default(struct rabia_replica_config *c);
/* Set one key; err names the key and the fix on failure (RABIA_E_CONFIG). */
int rabia_replica_config_set(struct rabia_replica_config *c, const char *key, const char *value, char *err,
                             size_t errlen);
/* Load "key value" / "key = value" lines ('#' comments; the last one wins). */
int rabia_replica_config_load(struct rabia_replica_config *c, const char *path, char *err, size_t errlen);
/* Whole-config checks (id among members, ports, sizes). */
int rabia_replica_config_check(const struct rabia_replica_config *c, char *err, size_t errlen);
/* The checks rabia_replica_create makes of restore-from before it writes
 * anything (for rabiad --check-config): the data dir holds no state yet,
 * the file reads whole and verifies (checksum), and it is a backup of sm.
 * 0 with *slot the backup's slot and *bytes its state's size, or a negative
 * errno with err naming the file and the fix. */
int rabia_replica_restore_check(const struct rabia_replica_config *c, const struct rabia_sm_ops *sm, uint64_t *slot,
                                uint64_t *bytes, char *err, size_t errlen);
/* Print the effective configuration in config-file form. */
void rabia_replica_config_print(const struct rabia_replica_config *c, void *file /* FILE* */);

struct rabia_replica;

/* 0, or a negative errno / RABIA_E_CONFIG with err naming the cause and the
 * fix: -EINVAL when sm is NULL or lacks one of its required callbacks
 * (create, destroy, apply, snapshot, restore). */
int rabia_replica_create(struct rabia_replica **out, const struct rabia_replica_config *cfg,
                         const struct rabia_sm_ops *sm, char *err, size_t errlen);
/* Runs the replica on the calling thread until rabia_replica_stop (then 0),
 * or until a failure it cannot go on from stops it: -EIO after a log write
 * that failed or a state machine's apply that returned an error (its ERROR
 * log line names which), another negative errno when its sockets or event
 * loop fail. */
int rabia_replica_run(struct rabia_replica *r);
/* Any thread, or a signal handler. */
void rabia_replica_stop(struct rabia_replica *r);
/* Any thread, or a signal handler (rabiad: SIGHUP): reload tls-cert-file,
 * tls-key-file and tls-ca-cert-file for new connections (open ones keep
 * theirs); a failed reload is logged and the previous certificates stay. */
void rabia_replica_reload_tls(struct rabia_replica *r);
/* Any thread except a signal handler (rabiad: its SIGHUP thread, after
 * reading the configuration again): take from next
 *  - the other members' peer addresses, so that a machine which replaced a
 *    member at another address is dialed there without restarting this
 *    replica (README "Replacing a machine"): links to a member whose
 *    address changed are closed and dialed again at the new one;
 *  - the client users (requirepass, acl-file read again), as Redis's ACL
 *    LOAD: connections of users other than default are closed.
 * The number of members, this replica's id and own address, the cluster id,
 * and whether clients authenticate at all cannot change: RABIA_E_CONFIG (or
 * an acl-file error) with err saying why, and nothing is taken. The change
 * is applied on the replica's thread, which logs it. */
int rabia_replica_reload(struct rabia_replica *r, const struct rabia_replica_config *next, char *err, size_t errlen);
/* Frees the replica and unlocks its data dir. A write to the log that the
 * disk had not answered when the run ended (1 s after the stop: a stalled
 * device, a frozen filesystem) is still carried out by the kernel when the
 * disk goes on, at its place in the log: its buffer is then left allocated
 * and the data dir stays LOCKED until the process exits (stderr says so),
 * so a replica made again on it in this process is refused ("in use")
 * instead of writing where that late write lands. The exit of the thread
 * that ran the replica waits in the kernel for such a write.
 * (tests/integration/frozen_log.sh) */
void rabia_replica_destroy(struct rabia_replica *r);

/* Submit an operation from any thread. `done` runs on the replica's thread
 * once the operation was applied (status RABIA_REPLY_OK and the result) or
 * refused (status != OK; the result is empty, or for
 * RABIA_REPLY_BAD_REQUEST and RABIA_REPLY_UNAVAILABLE may be text saying
 * why: an op larger than batch-max-bytes, a log that cannot be written;
 * RABIA_REPLY_SESSION_EXPIRED means
 * the application's session was evicted for lack of max-sessions and the
 * outcome is unknown), or with status -ESHUTDOWN when the replica stopped
 * first (rabia_replica_stop, or a failure that stopped it): the outcome is
 * unknown. Every accepted operation's done runs exactly once: by the end of
 * rabia_replica_run, or in rabia_replica_destroy for a replica never run.
 * Each operation is applied at most once. Returns 0,
 * -ENOBUFS when the submission queue is full, -ESHUTDOWN once the replica
 * stopped, -EINVAL for an empty op
 * (empty ops are reserved: they open sessions) or op NULL, or -EPERM for one of the
 * KV store's own operations (SWEEP, FEATURES, FEATURELEVEL: the replicas
 * submit them themselves; kv/README.md "Feature levels"). Operations take
 * effect in the order submitted (with window > 1, where this replica's
 * batches can be decided in either order, those for the log go one batch
 * at a time: the next waits for the answers of the last). A read (the state machine's query says
 * so) is answered by the read index (core.h, READ INDEX: no slot of its
 * own, linearizable) when every operation of this application in flight
 * is such a read; one for the log behind them waits for their answers. */
typedef void (*rabia_replica_done_fn)(void *ctx, int status, const uint8_t *result, size_t len);
int rabia_replica_submit(struct rabia_replica *r, const void *op, size_t len, rabia_replica_done_fn done,
                         void *ctx);
/* Blocking form for threads other than the replica's: returns the status,
 * -ESHUTDOWN as soon as the replica stops (outcome unknown), or -ETIMEDOUT
 * (outcome unknown) after timeout_ms; -EINVAL (nothing submitted) for a
 * negative timeout_ms; -ENOMEM when the operation was applied but its
 * result could not be kept (out of memory; result is empty). On return
 * *result holds the result as done would get it (its earlier memory freed,
 * not reused), and is empty after every failure (a negative status). */
int rabia_replica_call(struct rabia_replica *r, const void *op, size_t len, struct rabia_buf *result,
                       int timeout_ms);

struct rabia_replica_status {
    uint8_t id, n;
    bool recovering;
    uint8_t peers_up;        /* bit i-1: connected to replica i */
    uint64_t incarnation;
    uint64_t applied;        /* last applied slot */
    uint64_t known;          /* highest slot known of */
    uint64_t state_hash;     /* hash of the replicated state at slot hash_slot: live for a
                                state machine with a state_hash op (kept incrementally);
                                otherwise refreshed at most once a second, as it costs a
                                snapshot (replica.c replica_state_hash) */
    uint64_t hash_slot;
    uint64_t slots_decided, slots_null, slots_fast, max_phase;
    uint64_t reads_indexed;  /* reads answered by the read index, every client kind (INFO reads_indexed) */
};
/* Thread-safe snapshot of the replica's status (refreshed every loop turn). */
void rabia_replica_get_status(struct rabia_replica *r, struct rabia_replica_status *st);

#ifdef __cplusplus
}
#endif
#endif
