/* replica/internal.h: what the files of rabiad's replica share (replica.c:
 * the loop, connections and peers; clients.c: native and RESP clients and
 * replies; transfer.c: snapshot transfers; app.c: the embedding API's
 * session). The runtime without I/O is node.h's. */
#ifndef RABIA_REPLICA_INTERNAL_H
#define RABIA_REPLICA_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "durable.h"
#include "loop.h"
#include "node.h"
#include "rabia/core.h"
#include "rabia/replica.h"
#include "resp.h"
#include "rsm.h"
#include "snapfile.h"
#include "hello.h"
#include "hashcheck.h"
#include "snapstream.h"

#define MAX_CONNS 4096
/* Incoming peer connections before HELLO (anyone may open one to the peer
 * port): at most this many at once (a new one closes the oldest), each
 * closed if it has not said HELLO within PEER_HELLO_TIMEOUT_US, and none
 * may announce a frame larger than PEER_HELLO_MAX_FRAME (a HELLO or a
 * PEER_AUTH is far smaller): before these, 40 silent connections that
 * each announced a 16 MiB frame held 650 MB for good (review, 2026-12-01). */
#define PEER_HELLO_PENDING 64u
/* Client connections (RESP and native) may take all but this many of the
 * MAX_CONNS slots: the rest stay for the peers' links and their HELLOs
 * (4096 idle clients kept a restarted replica from reconnecting: review,
 * 2026-12-01). */
#define CONNS_KEPT_FOR_PEERS 128u
#define PEER_HELLO_TIMEOUT_US 10000000u
/* A peer link whose frames go unacknowledged this long (a partition, a
 * host gone) is closed and redialed (rio_conn_set_user_timeout). Without
 * it such a link stayed open through the partition while the kernel's
 * retransmissions backed off to 26 s apart and more: the cluster wrote
 * again 20-25 s after a 28 s partition healed, and up to 2 minutes after a
 * longer one (tests/integration/netns_heal.sh). A paused peer's kernel
 * acknowledges until its buffers fill; a peer silent for this long while
 * frames wait is cut either way by the output limit before long. */
#define PEER_USER_TIMEOUT_MS 10000u
#define PEER_HELLO_MAX_FRAME 4096u
/* An outgoing peer link counts as ready once its HELLO is sent (the peer
 * answers nothing without a cluster secret). One the peer closes sooner
 * than this after that was refused: the redial backs off as a failed dial
 * does, and after PEER_REFUSED_WARN of them in a row a WARN says what the
 * peer refuses. Before, each such link reset the backoff: a replica whose
 * peers refused its HELLO (another process running with its id, a data
 * dir from an older copy) redialed each peer every 50 ms for good, with
 * two INFO lines per peer each time and not one saying why (review). */
#define PEER_LINK_STABLE_US 1000000u
#define PEER_REFUSED_WARN 5u
/* A native client that must authenticate may announce no frame larger than
 * this before its CLIENT_AUTH succeeds: a CLIENT_AUTH carries a user name
 * and a password, each held to RESP's unauthenticated bulk limit (16 KiB,
 * Redis's). Before, such a client could announce a 16 MiB frame, and 3,968
 * of them would have held 62 GB of input buffers without a password. */
#define NATIVE_UNAUTH_MAX_FRAME (2u * RESP_UNAUTH_MAX_BULK + 1024u)
#define WAITERS_CAP (1u << 16)     /* requests waiting for their slot, per replica */
#define READS_CAP (1u << 14)       /* reads waiting for the read index at once, per replica (node_read) */
#define RESP_MAX_PENDING 4096      /* replies queued per RESP connection */
/* The ring of reply slots starts this small and doubles up to
 * RESP_MAX_PENDING as a pipeline needs; an idle connection's goes back
 * (replica_clients_memory_check). A ring of 4096 from the start cost every
 * connection 128 KiB once it had walked it, and maxmemory-clients counted
 * 130 KiB for an idle one. */
#define RESP_RING_START 32
#define RESP_IN_IDLE_KEEP (16u << 10) /* an empty input buffer above this goes at the periodic check */
_Static_assert((RESP_MAX_PENDING & (RESP_MAX_PENDING - 1)) == 0 && (RESP_RING_START & (RESP_RING_START - 1)) == 0 &&
                   RESP_RING_START <= RESP_MAX_PENDING,
               "ring sizes are powers of two");
#define RESP_PUBSUB_OUT_MAX (32u << 20) /* a subscriber's unread messages (Redis: client-output-buffer-limit pubsub 32mb) */
#define RESP_IN_KEEP ((size_t)1 << 20)  /* an emptied input buffer larger than this is freed */
#define RESP_SPARE_BUFS 32         /* flushed reply buffers a RESP connection keeps for its next replies */
#define RESP_SPARE_MAX_CAP 65536   /* a larger one is freed: a big reply's memory is not kept */
#define RESP_SLOT_KEEP_CAP 1024    /* with the spares full, a slot keeps a buffer this small only */
#define RESP_PUMP_FLUSH_BYTES (1u << 20) /* replies a pump gathers before it flushes them */
#define RESP_MAX_INPUT (64u << 20) /* bytes buffered per RESP connection */
#define SNAP_CHUNK (1u << 20)
#define SNAP_MAX (1ull << 40)        /* largest snapshot a peer may announce (1 TiB: it goes to disk) */
#define SNAP_TX_QUEUED (8u << 20)    /* snapshot bytes queued on a peer connection at most */
#define SNAP_TX_TURN (4u << 20)      /* ... and sent per loop turn: the cluster keeps serving */
#define APP_QUEUE 4096

/* CK_RESP_DRAIN: a RESP connection that closed while requests of it were
 * still in flight; its slot stays until they are answered, then its
 * session is closed through the log. */
enum ck { CK_FREE, CK_PEER_OUT, CK_PEER_IN_HELLO, CK_PEER_IN, CK_CLIENT, CK_RESP, CK_RESP_DRAIN,
          CK_HTTP /* metrics-listen: one HTTP/1.1 request, then closed (metrics.c) */ };

#define APP_WINDOW 60               /* the application's requests in flight, < RABIA_RSM_WINDOW */

struct resp_slot {         /* one pipelined RESP command's reply, in order */
    bool ready;
    uint8_t post;          /* enum resp_post: what its result becomes */
    uint8_t r3;            /* enum resp3_kind: its RESP3 form (R3_NONE: RESP2);
                              with R3_EXEC, out holds the queued commands'
                              kinds until the result comes */
    uint8_t mkind;         /* metrics: enum m_kind (in the padding: 4096 of */
    uint16_t cmd;          /* these per connection); its command (metrics_cmd_index) */
    bool push;             /* a pubsub message (counted in conn.push_bytes) */
    bool mute;             /* CLIENT REPLY OFF or SKIP: its reply is dropped, not sent */
    struct rabia_buf out;
};
/* up to 4096 per RESP connection: metrics' fields fit in what was padding */
_Static_assert(sizeof(void *) != 8 || sizeof(struct resp_slot) == 32, "struct resp_slot grew");

struct conn {
    enum ck kind;
    uint32_t gen;
    struct rio_conn *c;
    uint8_t peer;          /* peer kinds: core index */
    /* CK_PEER_IN: the incarnation of a HELLO checked but not yet taken
     * (0: taken). The take (hello_take, which drops the peer's older
     * connection) waits for the link's first frame after HELLO: a
     * FIRST_START refused (hello.h) must not cost the running life its link */
    uint64_t take_inc;
    /* RESP */
    struct resp_session rs;
    struct resp_argv pa;   /* parser state */
    struct rabia_buf in;   /* unparsed input */
    struct resp_slot *q;   /* ring of pending replies, q_cap slots (a power of two) */
    uint32_t q_head, q_len, q_cap; /* q_head: a running position (it wraps with uint32); the slot
                                      of position p is q[p & (q_cap - 1)], and waiters keep positions,
                                      so the ring can grow under them (resp_slot_at) */
    /* reply buffers of flushed slots, for the next slots: the ring has 4096
     * slots and a connection walks all of them, so without these each
     * request's slot allocated its buffer once per lap (0.87 allocations
     * per request measured, 20 connections, pipelines of 8) */
    struct rabia_buf spare[RESP_SPARE_BUFS];
    uint32_t n_spare;
    uint64_t client_id, next_seq, group_first;
    uint64_t open_batch;   /* batch number its in-flight requests went into */
    uint32_t inflight;     /* replicated requests without a reply (reads by the read index included) */
    /* Of those, reads taken by the read index (node_read). A command
     * after them that goes through the log waits, parsed, in defer_op (RESP:
     * at reply slot defer_slot; native: defer_slot requests, with those
     * after it, clients.c native_request) until they are answered: it must
     * not apply before a read that came before it was answered. */
    uint32_t fast_inflight;
    bool deferred;
    uint32_t defer_slot;
    struct rabia_buf defer_op;
    size_t push_bytes;     /* pubsub messages in reply slots not flushed yet */
    size_t slot_bytes;     /* replies complete in slots, not flushed yet (pushes included) */
    size_t mem_seen;       /* its memory as last added to rabia_replica.client_memory */
    uint32_t live_pos;     /* its place in rabia_replica.live */
    uint64_t created_us;   /* RESP: accepted at (CLIENT LIST's age) */
    uint32_t http_scanned; /* metrics HTTP: bytes of the unfinished head already checked */
    bool client_slot;      /* counted in rabia_replica.n_client_conns */
    bool quit;
    bool eof;              /* RESP: the client shut its sending side: answer what it sent, then close */
    bool closing;          /* replica_conn_close called: ignore the rest */
    int close_why;         /* a peer link this replica closed: the send's error (-ENOBUFS: output limit) */
    bool want_pump;        /* input waits for replies that just came */
    /* a blocking pop whose last attempt found nothing: parked until a key
     * it waits on becomes non-empty (retry) or its deadline (nil reply) */
    bool blocked, block_retry;
    /* a blocking pop submitted and not finally answered (parked or not):
     * the connection's next commands wait for it, as in Redis, and a
     * second one cannot overwrite its state (block_op, block_slot) */
    bool block_wait;
    uint32_t block_slot;
    uint64_t block_deadline_us; /* 0: none */
    struct rabia_buf block_op;  /* the op, resubmitted as is */
    bool pubsub;           /* counted in pubsub_conns */
    /* who the client is (clients: RESP and native): the user it authenticated
     * as ("default" until AUTH), for access checks, logs and the audit log */
    char user[64];
    uint64_t in_us;        /* metrics: when the oldest unparsed input byte arrived
                              (RESP; native: the last data), a request's arrival */
    /* authentication (auth.c): a client's ACL user and failed AUTHs; a
     * peer's cluster-secret handshake */
    struct conn_auth au;
};

/* The reply slot of running position pos (resp_slot_at(k, k->q_head) is the oldest). */
static inline struct resp_slot *resp_slot_at(struct conn *k, uint32_t pos) { return &k->q[pos & (k->q_cap - 1)]; }

struct app_op {
    uint8_t *op;
    size_t len;
    rabia_replica_done_fn fn;
    void *ctx;
};

struct peer {
    uint32_t out;            /* conn index or UINT32_MAX */
    bool out_ready;
    /* the incoming connection and the newest incarnation: r->hello (hello.h) */
    uint64_t redial_at_us;
    uint64_t backoff_us;
    /* when the link to it last became ready, and how many links in a row
     * it closed within PEER_LINK_STABLE_US of that (it refuses our HELLO) */
    uint64_t ready_us;
    uint32_t short_links;
    /* snapshot transfers (transfer.c over snapstream.c, whose state says
     * which are active): the file one from this peer is written to, one
     * chunk in memory; the snapshot file one to it reads (-1: none, or
     * the shared buffer with durability = memory) */
    struct rabia_snapfile_writer rx;
    int tx_fd;
    /* its member address is a name that does not resolve (lookup.c): the
     * reason, logged once per spell */
    bool lookup_failing;
    char lookup_why[160];
    uint32_t addr_turn;      /* a name's addresses: which one the next dial takes (moves on a failed dial) */
};

/* Rate-limited log lines: at most 20 per 10 s, then one line saying how
 * many were not shown (replica_log_budget). */
struct log_budget {
    uint64_t window_us;
    unsigned count, suppressed;
};

/* The longest the loop sleeps on a log write that gates every send
 * (rio_run_once_file_first) before it wakes for the network again: a
 * PING, an INFO or a scrape waits at most this long behind a slow disk. */
#define REPLICA_LOG_WAIT_CAP_US 2000

struct rabia_replica {
    struct rabia_replica_config cfg;
    struct replica_auth *auth; /* auth.c: users, the cluster secret, failed authentications */
    const struct rabia_sm_ops *sm;
    struct rio_loop *loop;
    unsigned io_threads;      /* I/O threads serving client connections (io-threads, auto resolved) */
    bool log_wait_first;      /* sleep until a gating log write ends (node_log_gates), not per message */
    struct rabia_node *node;  /* the runtime without I/O (node.h) */
    struct rabia_core *core;  /* the node's, for status */
    struct rabia_rsm *rsm;    /* the node's */
    uint64_t incarnation;
    /* a first start between writing the incarnation file and the end of
     * rabia_replica_create: a failure there removes the file again
     * (rabia_replica_destroy), since nothing was sent yet */
    bool first_start_pending;
    /* this life began on an empty data dir and votes at once (no --rejoin):
     * every outgoing peer link says so after HELLO (RABIA_MSG_FIRST_START),
     * so that a peer that heard an earlier life refuses it (hello.h) */
    bool first_start_votes;
    /* the incarnation this data dir began with when that start voted at
     * once (data-dir/first-start), said after HELLO at every start on it
     * that votes at once (0: none, or it recovered from its peers since) */
    uint64_t first_start_birth;
    /* data-dir/peers-seen could not be written (a full disk, EIO): when to
     * try again (0: what is on disk is current); replica.c peers_seen_save */
    uint64_t peers_seen_retry_us;
    uint64_t cluster_id;
    uint8_t self;            /* core index: id - 1 */
    struct peer peers[RABIA_MAX_REPLICAS];
    struct conn *conns;
    /* the conns in use, densely (order is arbitrary; conn.live_pos says
     * where each is), and the free ones as a stack: scans over connections
     * (pumps owed, subscribers, blocked pops, client memory, metrics) visit
     * only those, not all MAX_CONNS: 4096 x 1.8 KB were 7.5 MB of memory
     * walked per scan (conn_alloc / replica_conn_release in replica.c) */
    uint32_t live[MAX_CONNS], n_live;
    uint32_t free_ix[MAX_CONNS], n_free;
    /* incoming peer connections that have not said HELLO, oldest first:
     * each goes at its deadline, the oldest when a new one finds it full
     * (replica.c, hello_track / hello_tick) */
    struct {
        uint32_t ci, gen;
        uint64_t by_us;
    } hello_q[PEER_HELLO_PENDING];
    uint32_t hello_head, hello_n;
    uint32_t n_client_conns;  /* RESP and native connections (CONNS_KEPT_FOR_PEERS) */
    struct log_budget refusal_log; /* lines about refused connections (replica.c) */
    /* maxmemory-clients (clients.c, replica_clients_memory_check) */
    uint64_t maxmem_clients;  /* bytes, resolved at start; 0 = no limit */
    uint64_t client_memory;   /* all client connections' heap bytes: the last full check, plus
                                 what replica_client_grew saw change since */
    uint64_t clients_evicted; /* closed for maxmemory-clients */
    uint64_t clients_killed;  /* closed by CLIENT KILL */
    uint64_t clients_mem_check_us, clients_mem_forced_us;
    struct log_budget evict_log;
    struct resp_clients resp_clients; /* CLIENT LIST's view of the RESP connections (clients.c) */
    uint64_t resp_conn_counter;
    uint32_t n_want_pump;
    uint32_t n_blocked;      /* RESP connections parked in a blocking pop */
    uint32_t pubsub_conns;   /* RESP connections with subscriptions */
    int64_t publish_count;   /* receivers here of the PUBLISH just applied */
    uint64_t held_behind_reads; /* client requests for the log that waited for reads of their connection
                                   taken by the read index before them (clients.c: defer_op, native parking) */
    uint64_t sweep_cid, sweep_seq, sweep_us; /* the expiry sweep's submissions */
    uint64_t sweep_period_us;
    bool sweep_inflight;
    /* KV feature levels (clients.c replica_kv_features, kv/README.md) */
    uint8_t feature_level;   /* the agreed level, as the store last said (RESP sessions read it) */
    uint8_t feature_offer;   /* the level this replica supports: its build's, or max-feature-level */
    struct {
        uint64_t incarnation; /* whose FEATURES was applied last (0: none heard) */
        uint8_t level;
    } feature_heard[RABIA_MAX_REPLICAS];
    uint64_t feature_cid, feature_seq, feature_us, feature_period_us;
    bool feature_inflight, feature_closed;
    uint64_t hash_value, hash_slot, hash_us; /* last published state hash */
    uint64_t hash_cost_us;   /* what the last one took */
    uint64_t hash_mismatches; /* rabia_rsm_hash_mismatches already logged */
    struct hashcheck hc;      /* cross-replica state checks (hashcheck.c) */
    uint64_t seen_applied, applied_since_us; /* applied, and since when it has not moved */
    struct rio_listener *l_peer, *l_client, *l_resp;
    int stop;                /* any thread sets it (rabia_replica_stop): atomic accesses */
    bool failed;             /* the loop thread stopped it (env_fatal): run returns -EIO, not 0 */
    /* application submissions from other threads */
    pthread_mutex_t app_mu;
    /* other threads wake the loop (replica_wake) under wake_mu; the loop
     * thread sets and clears r->loop under it, so a wake never writes to a
     * loop being destroyed */
    pthread_mutex_t wake_mu;
    int wake_wanted; /* a waker that found wake_mu taken: its holder wakes the loop again (atomic) */
    struct app_op app_q[APP_QUEUE];
    uint32_t app_head, app_len;
    uint64_t app_client_id, app_seq;
    uint64_t app_low;        /* lowest application seq not yet answered */
    uint64_t app_done;       /* bit i: seq app_low + i answered */
    uint64_t app_lives;      /* sessions the application has had */
    int app_open;            /* 0: to open, 1: opening, 2: open */
    uint32_t app_reads;      /* its reads taken by the read index, not answered yet (app.c) */
    uint64_t app_batch;      /* the batcher's open batch (cuts before it) when its last request for the log went in */
    bool app_closed;         /* under app_mu: the replica stopped, submissions are refused (app.c) */
    struct replica_lookups *lookups; /* peer names looked up off the loop (lookup.c) */
    /* a reload (rabia_replica_reload, any thread), taken on the loop thread
     * (reload.c): members' addresses and client users */
    pthread_mutex_t reload_mu;
    struct rabia_member members_next[RABIA_MAX_REPLICAS];
    struct acl *users_next;  /* NULL: users not checked */
    char users_from[512];    /* the acl-file they came from ("": requirepass alone) */
    char users_pass[256];    /* the requirepass they were made with */
    int reload_pending;      /* atomic accesses */
    /* status published for other threads */
    pthread_mutex_t st_mu;
    struct rabia_replica_status st;
    struct rabia_buf scratch;
    struct rio_shared frame_share; /* the node's frame pool, for rio_send_shared */
    struct rabia_buf pump_op;  /* replica_resp_pump's encoded op, kept: no allocation per pump */
    bool in_pump;              /* pump_op in use (replica_resp_pump does not nest) */
    struct resp_argv peek_pa;  /* replica_resp_pump's look at a pipeline's commands ahead (reads_ahead) */
    struct snapstream xfer;  /* snapshot transfers in both directions, the rules (snapstream.h) */
    struct hello_rules hello; /* peers' incoming connections and incarnations, the rules (hello.h) */
    /* snapshot transfers out: memory mode serializes the state once into
     * snap_out and every peer's transfer reads it; wal mode reads snapshot
     * files (an open fd per transfer) */
    struct rabia_buf snap_out;
    uint64_t snap_out_slot;
    uint8_t *chunk;          /* SNAP_CHUNK bytes for file reads */
    /* durability = wal (durable.h): the log, group commit, snapshots */
    bool wal;
    struct durable dur;
    int lock_fd;             /* flock on data-dir/LOCK, held while the replica lives */
    uint64_t dur_tick_us;
    /* metrics and health (metrics.c): metrics-listen's listener, the registry */
    struct rio_listener *l_metrics;
    struct metrics *m;
    struct replica_tls *tls; /* tls_links.c: contexts for peers and clients, reload flag */
    /* backup.c: backups being served; snap_out's readers among them
     * (transfer.c keeps snap_out while any reads it) */
    struct replica_backup *backup;
    uint32_t snap_out_readers;
    /* audit.c: the audit log (audit-log = path), NULL when off */
    struct replica_audit *audit;
};

/* replica.c */
void replica_log(const struct rabia_replica *r, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Whether a line may go to the log under budget b now (at most 20 per
 * 10 s; a misconfigured peer redials every 50 ms, and anyone may connect);
 * a new window first logs "N more <what> in the last 10 s not shown". */
bool replica_log_budget(struct rabia_replica *r, struct log_budget *b, const char *what);
void replica_wake(struct rabia_replica *r); /* from any thread */
uint64_t replica_state_hash(struct rabia_replica *r, bool on_demand, uint64_t *slot);
void replica_conn_close(struct rabia_replica *r, struct rio_conn *c);
void replica_conn_release(struct rabia_replica *r, uint32_t i);
/* Each conn in use, as for (FOR_LIVE(r, k)) ...; one released meanwhile
 * may move another into its place (visited again or not at all: callers
 * only do what is harmless twice, and anything missed waits for the next
 * scan). */
#define FOR_LIVE(r, k) uint32_t live_j_ = 0; live_j_ < (r)->n_live && ((k) = &(r)->conns[(r)->live[live_j_]], 1); live_j_++
/* clients.c: the KV state machine's events (Pub/Sub, blocked pops), the
 * blocked pops' deadlines, the expiry sweep */
void replica_sm_event(void *ctx, const struct rabia_sm_event *ev);
void replica_resp_forget(struct rabia_replica *r, struct conn *k);
void replica_resp_timeouts(struct rabia_replica *r, uint64_t now);
void replica_kv_sweep(struct rabia_replica *r, uint64_t now);
void replica_kv_features(struct rabia_replica *r, uint64_t now);
void replica_send_frame(struct rabia_replica *r, struct rio_conn *c, const struct rabia_msg *m);
void replica_enqueue(struct rabia_replica *r, uint64_t cid, uint64_t seq, uint64_t ack, const uint8_t *op, uint32_t len,
                     uint32_t conn, uint32_t resp_slot, rabia_replica_done_fn fn, void *ctx);
/* clients.c */
/* With window > 1 two batches of this replica may be decided in either
 * order: a client whose requests for the log went into batch batch_no
 * (batcher_open_no) keeps its order only if a next request of len bytes
 * joins them there; true when it must wait for their answers instead (the
 * batch was cut, or the request would start a new one). */
bool replica_behind_batch(const struct rabia_replica *r, uint64_t batch_no, size_t len);
void replica_deliver(void *ctx, const struct node_to *w, uint64_t cid, uint64_t seq, int status, const uint8_t *res,
                     size_t len);
void replica_native_frame(struct rabia_replica *r, uint32_t ci, const struct rabia_msg *m);
void replica_native_unpark(struct rabia_replica *r, uint32_t ci);
void replica_resp_pump(struct rabia_replica *r, uint32_t ci);
bool replica_resp_eof(struct rabia_replica *r, uint32_t ci);
size_t replica_client_memory(const struct conn *k, size_t *input, size_t *output);
void replica_clients_memory_check(struct rabia_replica *r); /* maxmemory-clients */
void replica_client_grew(struct rabia_replica *r, struct conn *k);
void replica_resp_clients_init(struct rabia_replica *r);
void replica_resp_free_spares(struct conn *k); /* the spare reply buffers of a RESP connection going away */
void replica_resp_close_session(struct rabia_replica *r, uint64_t cid);
void replica_resp_start_drain(struct rabia_replica *r, uint32_t ci);
/* transfer.c */
void replica_transfers_init(struct rabia_replica *r);
void replica_send_snapshot(void *ctx, uint8_t to); /* node env.snapshot_to */
/* durability = memory: snap_out is read by a transfer to a peer or a backup
 * (a fresh copy waits until none does) */
bool replica_snap_out_busy(const struct rabia_replica *r);
/* metrics.c: the registry, /metrics and /health, INFO (metrics.h) */
#include "metrics.h"
/* backup.c: rabia-cli backup (BACKUP_REQ) and rabiad --restore */
void replica_backup_request(struct rabia_replica *r, uint32_t ci);
void replica_backup_pump(struct rabia_replica *r);
void replica_backup_free(struct rabia_replica *r);
/* before anything is written to the data dir: it must be empty, the backup
 * intact and of this state machine; then, once the apply layer exists,
 * seed it (wal: as the data dir's first snapshot; memory: into the state) */
int replica_restore_check(const struct rabia_replica_config *cfg, const struct rabia_sm_ops *sm,
                          struct rabia_snapfile_info *info, char *err, size_t errlen);
int replica_restore_seed(struct rabia_replica *r, const struct rabia_snapfile_info *info, char *err, size_t errlen);
/* The id of a cluster restored from the backup `info` describes: the
 * members' id mixed with the backup's slot and state hash, so that every
 * replica restored from one backup (or from another taken at the same slot
 * of the same cluster, which holds the same state) agrees on it, and a
 * replica restored from another backup is refused by HELLO instead of
 * deciding again, with other writes, slots it holds (README "Backups"). */
uint64_t replica_restored_cluster_id(uint64_t members_id, const struct rabia_snapfile_info *info);
/* hashcheck.c: the replicas' state hashes compared every HASHCHECK_EVERY slots */
void replica_hashcheck_init(struct rabia_replica *r);
void replica_hashcheck_applied(void *ctx, uint64_t slot); /* node.h env.applied */
void replica_hashcheck_link_up(struct rabia_replica *r, uint8_t p);
void replica_hashcheck_tick(struct rabia_replica *r);
void replica_hashcheck_receive(struct rabia_replica *r, uint8_t p, const struct rabia_msg *m);
/* audit.c: the audit log (audit-log = path) */
int replica_audit_open(struct rabia_replica *r, char *err, size_t errlen);
void replica_audit_live(struct rabia_replica *r);  /* the loop runs: what applies now is not the log's replay */
void replica_audit_flush(struct rabia_replica *r); /* once per loop turn */
void replica_audit_close(struct rabia_replica *r);
int replica_audit_info(struct rabia_replica *r, char *buf, size_t len); /* INFO lines */
void replica_audit_counts(const struct rabia_replica *r, uint64_t *lines, uint64_t *errors, uint64_t *dropped);
void replica_audit_apply(void *ctx, uint64_t slot, uint64_t cid, uint64_t seq, const uint8_t *op, size_t op_len,
                         const uint8_t *res, size_t rlen); /* rsm's on_apply */
/* app.c */
void replica_app_new_session(struct rabia_replica *r);
void replica_app_answered(struct rabia_replica *r, uint64_t seq, int status, const uint8_t *res, size_t len);
void replica_drain_app(struct rabia_replica *r);
void replica_app_shutdown(struct rabia_replica *r);
/* tls_links.c: TLS on peer links and client ports */
int replica_tls_open(struct rabia_replica *r, char *err, size_t errlen);
void replica_tls_close(struct rabia_replica *r);
int replica_tls_on_accept(struct rabia_replica *r, enum ck kind, struct rio_conn *c);
int replica_tls_on_dial(struct rabia_replica *r, struct rio_conn *c, uint8_t peer);
bool replica_tls_check_dialed(struct rabia_replica *r, struct rio_conn *c, uint8_t peer);
bool replica_tls_check_hello(struct rabia_replica *r, struct rio_conn *c, uint8_t claimed, const char *who);
void replica_tls_on_close(struct rabia_replica *r, const struct conn *k, struct rio_conn *c);
void replica_tls_poll(struct rabia_replica *r); /* every loop turn: a reload asked for, stalled handshakes */
void replica_reload_poll(struct rabia_replica *r); /* every loop turn: a reload's addresses and users (reload.c) */
/* lookup.c: peer addresses for dial, names looked up on a thread of their own */
int replica_lookups_create(struct rabia_replica *r);
void replica_lookups_destroy(struct rabia_replica *r);
int replica_lookup(struct rabia_replica *r, uint8_t p, uint32_t turn, struct sockaddr_storage *ss, socklen_t *len,
                   char *why, size_t whylen);
uint32_t replica_lookups_done(struct rabia_replica *r); /* bit p: peer p's lookup finished since the last call */

#endif
