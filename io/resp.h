/* RESP2/RESP3 front end of a KV replica: the request parser and the
 * per-connection command dispatcher, so that redis-cli, redis-benchmark
 * (pipelined) and Redis client libraries can talk to a rabia cluster
 * running the KV state machine (kv/kv.h).
 *
 * Pure C, no syscalls: the daemon's io_uring loop owns the sockets and the
 * buffers and calls in here with the bytes it read. Per connection it keeps
 * one struct resp_argv (parser state) and one struct resp_session.
 *
 * The loop, per connection:
 *
 *     for (;;) {
 *         size_t used;
 *         int rc = resp_parse(buf, len, &used, &argv);
 *         if (rc < 0) {                       // -EPROTO: reply, then close
 *             resp_parse_error_reply(&argv, &out);   (rc == -ENOMEM: close)
 *             ... write out, close ...
 *         }
 *         drop the first `used` bytes of buf (also when rc == 0);
 *         if (rc == 0) break;                 // wait for more bytes
 *         switch (resp_handle(&session, &argv, &out, &op)) {
 *         case RESP_LOCAL:     queue `out` as this command's reply
 *         case RESP_REPLICATE: submit `op` through consensus; the state
 *                              machine's result is this command's reply
 *         case RESP_INFO:      append the INFO reply (resp_put_bulk; in
 *                              RESP3 resp_put_verbatim) to out
 *         case RESP_QUIT:      write `out` (+OK), then close
 *         case RESP_CLOSE:     close (out of memory)
 *         }
 *     }
 *
 * Replies must reach the client in command order: a local reply that
 * follows a replicated command waits for that command's result.
 *
 * Reads (GET, MGET, KEYS, SCAN, EXISTS, DBSIZE) are replicated too: every
 * command goes through consensus, so the store is linearizable.
 *
 * The connection's own state stays here: the SELECTed database (each
 * replicated op runs in it: "@DB n op"), MULTI's queue (EXEC sends one TXN
 * op; TXNW with the versions of WATCHed keys, which WATCH reads through the
 * log first: resp_session.barrier), Pub/Sub subscriptions (PUBLISH goes
 * through the log; the caller delivers each applied message to its
 * subscribers: resp_pubsub_deliver), and blocking pops (the caller parks a
 * client whose pop found nothing and retries when a key is ready:
 * RESP_POST_BLOCK, resp_block_waits_on).
 *
 * RESP3: a connection speaks RESP2 until HELLO 3 (HELLO 2 and RESET go
 * back): resp_session.proto. The connection's own replies are then written
 * in RESP3 here (HELLO's map, CONFIG GET's map, pushes for Pub/Sub, nulls,
 * verbatim CLIENT INFO...). Replicated results stay RESP2: they are the
 * state machine's, the same for every connection. The caller converts each
 * one with resp3_convert (resp3_convert_exec for EXEC), by the kind
 * resp_handle recorded for the command (resp_session.r3: R3_NONE on a
 * RESP2 connection, so nothing to do), as Redis 7.0 answers it in RESP3:
 * HGETALL a map, SMEMBERS a set, ZSCORE a double, ZRANGE ... WITHSCORES
 * [member, score] pairs, every nil a null. The caller formats INFO as a
 * verbatim string ("=<n+4>\r\ntxt:...") on a RESP3 connection.
 *
 * DIFFERENCES FROM REDIS (the store's own are in kv/README.md)
 *  - Inside MULTI only replicated commands, PING, ECHO and SELECT are
 *    queued. The other connection commands (CLIENT, CONFIG, COMMAND, HELLO,
 *    AUTH, INFO, SUBSCRIBE...) are refused with "-ERR Command not allowed
 *    inside a transaction" and abort the transaction (Redis queues some of
 *    them). MULTI, EXEC, DISCARD, WATCH, QUIT and RESET act immediately.
 *  - RESP3: a Pub/Sub push is written after the replies to every command
 *    read before it was published (Redis may push it between them), and
 *    CLIENT TRACKING (client-side caching) is not supported.
 *  - WAIT goes through the log and answers with the replicas the node
 *    counted for that slot (RESP_POST_WAIT; kv/README.md); it never blocks
 *    longer than one decision.
 *  - A request whose encoded operation would exceed the session's max_op
 *    (the largest op a batch can carry) is refused with an error reply.
 *  - The protocol parser is stricter than Redis's in two places: a bulk
 *    string must be followed by CRLF and every header line must end in
 *    CRLF (Redis skips two bytes without looking); and an inline command
 *    line or a "*N" / "$N" header line longer than 64 KiB is an error even
 *    when it arrived whole (Redis only checks lines still incomplete).
 */
#ifndef RABIA_IO_RESP_H
#define RABIA_IO_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rabia/state_machine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------- */
/* Parser                                                                  */

#define RESP_MAX_ARGS (1024u * 1024u)          /* arguments per command */
#define RESP_MAX_BULK_LIMIT (512u << 20)       /* Redis's proto-max-bulk-len */
#define RESP_DEFAULT_MAX_BULK (64u << 20)
#define RESP_MAX_INLINE (64u * 1024u)          /* inline line / header line */
/* Redis's limits (since 6.2.6, CVE-2021-32675) for a client that must
 * authenticate and has not: an array of at most 10 arguments, bulks of at
 * most 16 KiB, so that nobody without a password makes a replica buffer a
 * 512 MB bulk or a million-argument array (resp_argv.unauthenticated) */
#define RESP_UNAUTH_MAX_ARGS 10u
#define RESP_UNAUTH_MAX_BULK 16384u
/* What one connection may keep of its subscriptions' channel and pattern
 * names, and of its WATCHed keys, in bytes (besides their counts, 65536 and
 * 4096): capped by count only, each SUBSCRIBE of a 50 MB name kept 50 MB
 * (review, 2026-12-01). */
#define RESP_SUBS_MAX_BYTES (16u << 20)
#define RESP_WATCH_MAX_BYTES (1u << 20)

/* One parsed command, and the parser's state between calls. */
struct resp_argv {
    /* The command, when resp_parse returned 1: argc >= 1 arguments. For a
     * RESP array argv[i] points into the caller's bytes (valid until the
     * caller drops them); for an inline command into this struct's own
     * scratch memory (valid until the next resp_parse). Binary-safe. */
    uint32_t argc;
    const uint8_t **argv;
    size_t *argv_len;
    /* When resp_parse returned -EPROTO: Redis's message without the "ERR "
     * prefix, e.g. "Protocol error: invalid bulk length". */
    char err[96];
    /* After a 0 return: when nonzero, resp_parse cannot finish before the
     * buffer holds this many bytes (counted from the p of the next call):
     * lets the caller size its receive buffer for a large bulk. */
    size_t want;
    /* Largest bulk string accepted, set by resp_argv_init. */
    size_t max_bulk;
    /* Set by the caller before each resp_parse: the client has yet to
     * authenticate, RESP_UNAUTH_MAX_ARGS and RESP_UNAUTH_MAX_BULK apply
     * ("Protocol error: unauthenticated multibulk length" / "... bulk
     * length", as Redis). Not for inline commands: their line is bounded by
     * RESP_MAX_INLINE already. */
    bool unauthenticated;

    /* Private. Offsets are relative to the start of the partial command. */
    uint8_t st;          /* 0 idle, 1 array, 2 inline */
    int64_t nargs;       /* array: declared count, -1 before its header */
    int64_t bulk;        /* array: length of the bulk being read, -1 none */
    size_t pos;          /* array: offset of the next unparsed byte */
    size_t scan;         /* where the search for the line end resumes */
    size_t *off;         /* argument offsets (array) or scratch offsets */
    uint32_t cap;        /* capacity of argv, argv_len, off */
    struct rabia_buf scratch; /* unescaped inline arguments */
};

/* max_bulk: 0 for RESP_DEFAULT_MAX_BULK; larger than RESP_MAX_BULK_LIMIT is
 * clamped to it. Allocates nothing. */
void resp_argv_init(struct resp_argv *a, size_t max_bulk);
/* Forget a partial command (the caller dropped its bytes). */
void resp_argv_reset(struct resp_argv *a);
void resp_argv_free(struct resp_argv *a);
/* Heap bytes the parser holds (argument arrays, inline scratch). O(1). */
size_t resp_argv_memory(const struct resp_argv *a);

/* Parse the next command at the start of p[0..len).
 *   1       a command is in `out`; *consumed = the bytes it (and any empty
 *           commands before it: "*0", "*-1", blank inline lines) took.
 *   0       more bytes are needed. *consumed = bytes the caller may drop
 *           now (empty commands). The partial command stays in `out`: call
 *           again with the SAME remaining bytes at the start of p (they may
 *           have moved: only offsets are kept) and more appended. Work done
 *           is not repeated, so a byte-at-a-time client costs O(n).
 *   -EPROTO protocol error, message in out->err: reply it
 *           (resp_parse_error_reply) and close the connection, as Redis
 *           does. The state is reset.
 *   -ENOMEM out of memory; the state is reset.
 * A command starting with '*' is a RESP array of bulk strings; anything
 * else is an inline command (a line split as Redis's sdssplitargs does:
 * blanks separate arguments, "..." with \n \r \t \b \a \xHH escapes,
 * '...' with \'). Never reads outside p[0..len). */
int resp_parse(const uint8_t *p, size_t len, size_t *consumed, struct resp_argv *out);

/* Append "-ERR <out->err>\r\n". 0 or -ENOMEM. */
int resp_parse_error_reply(const struct resp_argv *a, struct rabia_buf *out);

/* ---------------------------------------------------------------------- */
/* Session and dispatcher                                                  */

/* What resp_handle decided. */
enum resp_action {
    RESP_LOCAL = 0,     /* reply now with the bytes appended to local_reply */
    RESP_REPLICATE = 1, /* op holds a KV operation: submit it; its result is
                           the reply */
    RESP_QUIT = 2,      /* write local_reply ("+OK\r\n"), then close */
    RESP_CLOSE = 3,     /* close now (out of memory) */
    RESP_INFO = 4,      /* INFO: the caller appends the reply (a bulk string
                           of "field:value\r\n" lines; a verbatim string when
                           proto is 3) to local_reply */
};

#define RESP_SERVER_NAME "redis"
#define RESP_SERVER_VERSION "7.0.0" /* what HELLO reports: the Redis API level */

/* What the caller does with a replicated command's result before it is
 * the reply (resp_session.post after RESP_REPLICATE). */
enum resp_post {
    RESP_POST_NONE = 0,
    RESP_POST_WATCH = 1,   /* WATCH: give the result to resp_watch_result; reply +OK */
    RESP_POST_PUBLISH = 2, /* PUBLISH: reply with the local receivers (":n") */
    RESP_POST_EXEC_DB = 4, /* an EXEC with a SELECT inside: unless it was
                              aborted (nil), the connection moves to
                              resp_session.exec_db (resp_exec_result) */
    RESP_POST_BLOCK = 3,   /* a blocking pop: a nil result means "park the
                              client" until a key is ready or the timeout */
    RESP_POST_WAIT = 5,    /* WAIT: reply with the other replicas that have the
                              connection's writes (":n"; the node knows) */
};

struct resp_watch {        /* one WATCHed key */
    uint32_t db;
    uint32_t len;
    uint64_t ver;          /* from WATCHVER */
    uint8_t *key;
};

/* How a replicated command's RESP2 result becomes its RESP3 reply
 * (resp3_convert), as Redis 7.0 answers in RESP3. In every kind a nil bulk
 * or nil array ("$-1", "*-1"), at any depth, becomes a null ("_"); errors,
 * integers and simple strings stay as they are. */
enum resp3_kind {
    R3_NONE = 0,         /* a RESP2 connection: the result as it is */
    R3_PLAIN = 1,        /* only the nulls (GET, MGET, LPOP, EXEC without kinds...) */
    R3_MAP = 2,          /* a flat field/value array becomes a map (HGETALL) */
    R3_SET = 3,          /* an array becomes a set (SMEMBERS SINTER SUNION SDIFF,
                            SPOP with a count) */
    R3_DOUBLE = 4,       /* a bulk string becomes a double (ZSCORE ZINCRBY,
                            ZADD ... INCR); INCRBYFLOAT stays a bulk, as in Redis */
    R3_DOUBLE_ARRAY = 5, /* each bulk of an array becomes a double (ZMSCORE) */
    R3_SCORED = 6,       /* a flat member/score array becomes an array of
                            [member, double] pairs (ZRANGE-family WITHSCORES,
                            ZPOPMIN/ZPOPMAX with a count, ZRANDMEMBER WITHSCORES) */
    R3_PAIRS = 7,        /* a flat field/value array becomes an array of
                            [field, value] pairs (HRANDFIELD WITHVALUES) */
    R3_TAIL_DOUBLE = 8,  /* an array's last element becomes a double
                            (ZPOPMIN/ZPOPMAX without a count, BZPOPMIN/BZPOPMAX) */
    R3_MPOP = 9,         /* [key, [[member, score]...]]: the scores become
                            doubles (ZMPOP, BZMPOP) */
    R3_EXEC = 10,        /* EXEC: each element by its queued command's kind
                            (resp3_convert_exec); without them, R3_PLAIN */
    R3_GEOPOS = 11,      /* an array of [lon, lat] arrays: the coordinates
                            become doubles (GEOPOS) */
    R3_GEOCOORD = 12,    /* an array of [member, ..., [lon, lat]]: the
                            coordinates become doubles (GEORADIUS, GEOSEARCH
                            ... WITHCOORD); distances stay bulks, as in Redis */
};

struct resp_session;
/* What CLIENT INFO and CLIENT LIST show of a connection beyond its session
 * (Redis's fields), from the server that owns the connections. */
struct resp_client_stats {
    uint64_t age_s, idle_s;
    uint64_t qbuf, qbuf_free; /* unparsed input, and room left in its buffer */
    uint64_t argv_mem;        /* the parser's arrays */
    uint64_t omem, oll;       /* output bytes not yet sent, and replies waiting */
    uint64_t tot_mem;         /* everything the connection holds (maxmemory-clients counts this) */
    char flags[8];            /* beyond x (MULTI) and P (subscribed): b = blocked; "" = none */
};
/* Optional (resp_session.clients): the server's view of its connections.
 * Without it CLIENT LIST shows only the calling connection, with zeros,
 * and CLIENT KILL finds no other. */
struct resp_clients {
    void *ctx;
    void (*stats)(void *ctx, const struct resp_session *s, struct resp_client_stats *out);
    /* calls fn(arg, session) for every client connection, the caller's included */
    void (*each)(void *ctx, void (*fn)(void *arg, const struct resp_session *s), void *arg);
    /* may be NULL: CLIENT KILL closes s (never the caller: it closes after
     * its reply, RESP_QUIT), from inside each's fn; s stays valid until
     * each returns */
    void (*kill)(void *ctx, const struct resp_session *s);
    /* may be NULL: CLIENT UNBLOCK answers s's blocking pop parked for its
     * key now, as its timeout would (error: Redis's UNBLOCKED error
     * instead); false when s is not parked. From inside each's fn. */
    bool (*unblock)(void *ctx, const struct resp_session *s, bool error);
    /* may be NULL (only "default" exists): CLIENT KILL USER's name is a user */
    bool (*user_exists)(void *ctx, const uint8_t *name, size_t len);
    /* CONFIG GET maxclients: the client connections the server takes (0:
     * Redis's default, 10000) */
    uint32_t maxclients;
};

struct resp_session {
    uint64_t id;        /* CLIENT ID, HELLO's id */
    uint32_t db;        /* SELECTed database */
    uint32_t multi_db;  /* the database after EXEC (SELECT queued in MULTI) */
    uint32_t exec_db;   /* RESP_POST_EXEC_DB: where the EXEC in flight leaves it */
    uint8_t proto;      /* 2 or 3: RESP2 until HELLO 3 */
    /* set by resp_handle with RESP_REPLICATE: */
    uint8_t post;       /* enum resp_post */
    uint8_t r3;         /* enum resp3_kind: R3_NONE on a RESP2 connection */
    /* with r3 == R3_EXEC: the queued commands' kinds, one byte each, for
     * resp3_convert_exec (valid until the next EXEC) */
    struct rabia_buf exec_kinds;
    struct rabia_buf enc; /* a command's op before put_in_db wraps it (SELECTed database) */
    bool barrier;       /* handle nothing more until every reply is in (WATCH) */
    uint64_t block_timeout_ms; /* RESP_POST_BLOCK: 0 = forever */
    /* WATCH */
    struct resp_watch *watch;
    uint32_t nwatch, watch_cap;
    size_t watch_bytes; /* their key names' bytes (resp_session_memory) */
    /* Pub/Sub: channels and patterns, back to back as u32 length + bytes in
     * the order subscribed (an unsubscribed one keeps its place, its length
     * marked, until the list is compacted), each list with a hash index */
    struct rabia_buf subs, psubs;
    uint32_t nsubs, npsubs;
    struct resp_sub_index { uint32_t *slot; uint32_t cap, used, dead_bytes; } subs_idx, psubs_idx;
    size_t max_op;      /* largest operation handed to consensus */
    bool in_multi;
    bool multi_dirty;   /* an error while queueing: EXEC aborts */
    uint32_t nqueued;
    size_t txn_bytes;   /* encoded size of the TXN the queue would make */
    struct rabia_buf qops;   /* queued argv operations, back to back */
    size_t *qlen;            /* their lengths */
    struct rabia_buf qkinds; /* their enum resp3_kind, one byte each */
    uint32_t qcap;
    struct rabia_buf name;   /* CLIENT SETNAME; len 0 = no name */
    bool no_evict;           /* CLIENT NO-EVICT ON: never closed for maxmemory-clients */
    /* CLIENT REPLY: OFF drops every reply until ON; SKIP drops its own and
     * the next command's. The front end drops them (reply_skip: this
     * command's, moved on from reply_skip_next after each command). */
    bool reply_off, reply_skip, reply_skip_next;
    char addr[64];      /* optional, shown by CLIENT INFO ("" = unknown) */
    char laddr[64];
    /* set by the caller: HELLO's AUTH user pass was checked by it (the
     * replica's users, replica/auth.c); otherwise only "default" passes */
    bool auth_checked;
    const char *user;   /* optional: the authenticated user, for CLIENT INFO (NULL: "default") */
    const struct resp_clients *clients; /* optional: CLIENT LIST's every connection and figures */
    const char *last_cmd; /* the last command's name (CLIENT LIST's cmd=), NULL before any */
    /* set by the caller: the cluster's agreed feature level (kv/kv.h), read
     * atomically (it changes on the consensus thread); a command of a
     * higher level is refused before it is replicated. NULL: no check */
    const uint8_t *feature_level;
};

/* The default max_op: the largest op that fits alone in a batch body. */
size_t resp_default_max_op(void);
/* max_op 0 = resp_default_max_op(). Allocates nothing. */
void resp_session_init(struct resp_session *s, uint64_t id, size_t max_op);
void resp_session_free(struct resp_session *s);
/* Heap bytes the session holds (WATCHed keys, subscriptions, a MULTI's
 * queue, buffers' capacities), for a replica's client memory budget. O(1). */
size_t resp_session_memory(const struct resp_session *s);

/* Handle one parsed command (argc >= 1). Appends the local reply to
 * local_reply and/or the operation to op (both are only appended to; on
 * RESP_CLOSE they are left as they were). Returns an enum resp_action.
 * Command names are matched without regard to ASCII case. */
int resp_handle(struct resp_session *s, const struct resp_argv *cmd,
                struct rabia_buf *local_reply, struct rabia_buf *op);

/* The result of an EXEC with RESP_POST_EXEC_DB: move to exec_db unless
 * it was aborted. */
void resp_exec_result(struct resp_session *s, const uint8_t *res, size_t len);
/* The result of a WATCHVER (RESP_POST_WATCH): record the versions. */
void resp_watch_result(struct resp_session *s, const uint8_t *res, size_t len);
/* Whether s receives a message published on channel ch; appends the
 * push(es) ("message", and "pmessage" per matching pattern: arrays in
 * RESP2, push types ">" in RESP3) to out and returns how many (0 or
 * -ENOMEM). */
int resp_pubsub_deliver(const struct resp_session *s, const uint8_t *ch, size_t chn, const uint8_t *msg,
                        size_t msgn, struct rabia_buf *out);
/* Pattern matches resp_pubsub_deliver gave up on (too many steps: the
 * message was not delivered to that pattern), since the process began. */
uint64_t resp_pubsub_giveups(void);
/* For a blocking pop's op: whether the key (db, k) is one it waits on. */
bool resp_block_waits_on(const uint8_t *op, size_t n, uint32_t db, const uint8_t *k, size_t kn);

/* What an access check needs of a command (replica/auth.c): 1 and m
 * filled for a known command (subcommand resolved) with a valid arity; 0
 * for anything resp_handle answers with an error itself (unknown command
 * or subcommand, wrong arity), as Redis checks those before permissions. */
struct resp_cmd_meta {
    const char *fullname;  /* "get", "config|get" */
    bool readonly, write, fast, pubsub;
    bool is_exec;          /* EXEC: a refusal aborts the transaction */
    int first, last, step; /* key positions (COMMAND INFO) */
};
int resp_command_meta(const struct resp_argv *c, struct resp_cmd_meta *m);
/* Whether an ACL rule's command name ("get", "config|get", any case) names
 * a command of this server, at any feature level: 1 yes, 0 no such
 * command, -1 the command has no subcommands, -2 no such subcommand. */
int resp_command_known(const char *name);
/* Discard the MULTI queue (a refused EXEC, as Redis's execCommandAbort). */
void resp_multi_discard(struct resp_session *s);

/* Number of top-level commands known (COMMAND COUNT). */
unsigned resp_command_count(void);

/* Append the RESP3 form of the one RESP2 value r2[0..len) (a replicated
 * command's result) for a command of the given enum resp3_kind. Pure: never
 * reads outside r2[0..len), nesting deeper than 32 arrays is not followed;
 * anything it cannot parse (not exactly one RESP2 value, a non-RESP2 type
 * byte, a map with an odd count, a double that is not a number...) is
 * appended unchanged, and so is everything for R3_NONE. 0 or -ENOMEM (out
 * then holds what it held before). */
int resp3_convert(uint8_t kind, const uint8_t *r2, size_t len, struct rabia_buf *out);
/* EXEC's result: element i converted by kinds[i] when the array has
 * exactly nkinds elements, else as R3_PLAIN. Same rules. */
int resp3_convert_exec(const uint8_t *kinds, size_t nkinds, const uint8_t *r2, size_t len,
                       struct rabia_buf *out);

/* ---------------------------------------------------------------------- */
/* RESP2 writers (0 or -ENOMEM), for the caller's own replies (also valid
 * RESP3: RESP3 clients read RESP2's types).                              */

int resp_put_simple(struct rabia_buf *out, const char *s);  /* +s\r\n */
int resp_put_error(struct rabia_buf *out, const char *s);   /* -s\r\n ("ERR ...") */
int resp_put_int(struct rabia_buf *out, int64_t v);         /* :v\r\n */
int resp_put_bulk(struct rabia_buf *out, const void *p, size_t n);
int resp_put_null(struct rabia_buf *out);                   /* $-1\r\n */
int resp_put_array(struct rabia_buf *out, uint64_t n);      /* *n\r\n */
/* RESP3's verbatim text: "=<n+4>\r\ntxt:" p[0..n) "\r\n" (INFO, CLIENT INFO) */
int resp_put_verbatim(struct rabia_buf *out, const void *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif
