/* The Redis-compatible key-value state machine (kv/README.md): strings,
 * hashes, lists, sets and sorted sets in 16 databases, expiry by the log's
 * clock, transactions with WATCH, Pub/Sub through the log. Every replica
 * computes the same replies and the same state.
 *
 * OPERATION: an argv, little-endian:
 *   u32 argc, then argc x (u32 len, len bytes)
 * and nothing after. argv[0] is the command name, matched without regard
 * to ASCII case. rabia_kv_encode_argv() writes one. Three names are not
 * Redis commands; the RESP front end (io/resp.c) sends them:
 *   @DB n op            run op (itself an encoded argv) in database n
 *                       (0..15; without it, database 0)
 *   TXN op...           MULTI ... EXEC: each argument an encoded argv op,
 *                       run in order with nothing in between; the reply is
 *                       the array of their replies (an error among them does
 *                       not stop the others, as in Redis)
 *   TXNW n key ver ... op...   the same with WATCH: n watched keys with
 *                       the versions WATCHVER gave; if any changed since,
 *                       nothing runs and the reply is a nil array
 *   WATCHVER key...     the keys' current versions (array of integers)
 *
 * RESULT: the RESP2 encoding of the reply, exactly as Redis 7.0 would send
 * it, so a RESP front end forwards it unchanged. A malformed operation
 * replies "-ERR malformed operation", an argc of 0 "-ERR empty command".
 *
 * Commands and their differences from Redis: kv/README.md. */
#ifndef RABIA_KV_KV_H
#define RABIA_KV_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rabia/state_machine.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const struct rabia_sm_ops rabia_sm_kv;

/* Append the argv operation (argc >= 0 strings). lens may be NULL: then
 * every argv[i] is a NUL-terminated string. 0, -ENOMEM, or -EINVAL when a
 * length does not fit in u32 or argc < 0. */
int rabia_kv_encode_argv(struct rabia_buf *out, int argc, const char *const *argv,
                         const size_t *lens);
/* Append a TXN operation whose commands are the n encoded argv operations
 * ops[i] (each ops_len[i] bytes long, e.g. made by rabia_kv_encode_argv). */
int rabia_kv_encode_txn(struct rabia_buf *out, int n, const uint8_t *const *ops,
                        const size_t *op_lens);

/* The length of the one complete RESP2 value at the start of p (nested
 * arrays included): 0 and *used set, -EAGAIN if p holds only a prefix of
 * one, -EINVAL if p does not start with a RESP2 value. */
int rabia_kv_resp_check(const uint8_t *p, size_t len, size_t *used);
/* Append a human-readable rendering of the RESP2 value in p, as redis-cli
 * prints it ("OK", "(integer) 3", "\"bar\"", "(nil)", "(error) ERR ...",
 * numbered array items), with a final newline. 0, -ENOMEM or -EINVAL. */
int rabia_kv_resp_format(struct rabia_buf *out, const uint8_t *p, size_t len);

/* Local read-only inspection: number of keys (all databases). */
uint64_t rabia_kv_count(const void *sm);
/* Keys with an expiry (all databases): when nonzero, the replica submits
 * a periodic SWEEP operation that reclaims expired keys. */
uint64_t rabia_kv_expiring(const void *sm);
/* Bytes held by the store (keys, values, tables). */
uint64_t rabia_kv_memory(const void *sm);
/* Allocations the store made for its data since it was created (every
 * kv_alloc and kv_realloc): what a SET that stores a new value costs, told
 * apart from the replica's own per-request allocations (rabia_heap_*). */
uint64_t rabia_kv_allocations(const void *sm);
/* Scripts in the script cache (INFO memory's number_of_cached_scripts). */
uint64_t rabia_kv_scripts(const void *sm);
/* Scripts this replica ran since it started, by outcome: replied a
 * value, replied an error, stopped at the instruction or heap bound
 * (kv/README.md "Scripts"). */
void rabia_kv_script_runs(const void *sm, uint64_t *ok, uint64_t *error, uint64_t *stopped);
/* Whether op (an encoded argv operation) is one of the replicas' own
 * (SWEEP, FEATURES, FEATURELEVEL): a front end refuses it from a client. */
bool rabia_kv_op_internal(const uint8_t *op, size_t len);

/* Feature levels (kv/README.md "Feature levels"). A command added after
 * the first build with levels carries the level of the build that added
 * it and does not exist (unknown command) until the cluster agreed that
 * level through the log: every replica then runs a build that has it,
 * so every replica carries it out, instead of the older ones answering
 * "unknown command" while the newer change their state. */
#define RABIA_KV_FEATURE_LEVEL 10 /* this build's (2: scripts' allocations count; 3: their patterns; 4: PFADD PFCOUNT PFMERGE BITFIELD BITFIELD_RO LCS; 5: the geo commands and SORT; 6: reads answered by the read index; 7: BITFIELD signals WATCH as Redis does; 8: scripts' memory at the same addresses on every replica, coroutines counted; 9: ZREMRANGEBYLEX BRPOPLPUSH, EXPIRE's unsupported option quoted whole; 10: replies bounded at KV_REPLY_MAX; kv/README.md) */
/* Whether this process can give script runs their arena (kv/script_heap.c:
 * 4 GiB of address space): 0, or -errno with err naming the cause and the
 * fix. rabiad asks at start; without it every script would fail its apply
 * and stop the replica. */
int rabia_kv_script_heap_check(char *err, size_t errlen);
/* The level the cluster agreed (0 until a FEATURELEVEL operation). */
unsigned rabia_kv_feature_level(const void *sm);
/* Whether command ci (from rabia_kv_lookup) runs in this store now
 * (nested: in a transaction, @DB or a script), or is answered "unknown
 * command": above the agreed level, or a replicas' own operation nested.
 * Only such commands (ci->level > 0, or RABIA_KV_CMD_INTERNAL and nested)
 * can be hidden. */
struct rabia_kv_cmd_info;
bool rabia_kv_cmd_runs(const void *sm, const struct rabia_kv_cmd_info *ci, bool nested);
/* Keys and keys with an expiry in database db (INFO keyspace). */
void rabia_kv_db_info(const void *sm, uint32_t db, uint64_t *keys, uint64_t *expires);

/* The command table, for a front end: name (lowercase), Redis arity,
 * flags, key positions. */
enum {
    RABIA_KV_CMD_WRITE = 1u << 0,
    RABIA_KV_CMD_READONLY = 1u << 1,
    RABIA_KV_CMD_DENYOOM = 1u << 2,
    RABIA_KV_CMD_FAST = 1u << 3,
    RABIA_KV_CMD_BLOCKING = 1u << 4,
    RABIA_KV_CMD_PUBSUB = 1u << 5,
    RABIA_KV_CMD_NOMULTI = 1u << 6,
    RABIA_KV_CMD_INTERNAL = 1u << 8, /* the replicas' own operation, not a client's command */
};
struct rabia_kv_cmd_info {
    const char *name;
    int arity;
    uint32_t flags;
    int first, last, step;
    unsigned level; /* the feature level that introduced it */
};
/* The i-th command (0 <= i < rabia_kv_ncommands()). */
unsigned rabia_kv_ncommands(void);
const struct rabia_kv_cmd_info *rabia_kv_command(unsigned i);
/* The command called p[0..n) (any case), or NULL. */
const struct rabia_kv_cmd_info *rabia_kv_lookup(const uint8_t *p, size_t n);

/* Redis glob match (also used by KEYS and SCAN): 1 if str matches. */
/* Parse a canonical decimal int64 as Redis's string2ll does (optional '-',
 * no '+', no leading zeros or spaces): true and *out, or false. */
bool rabia_kv_parse_int(const uint8_t *p, size_t n, int64_t *out);
int rabia_kv_glob_match(const uint8_t *pat, size_t pat_len, const uint8_t *str, size_t str_len);
/* The same, giving up after max_steps (the worst case is O(pattern x
 * string)): 1 match, 0 not, -1 gave up. For matching outside the state
 * machine (Pub/Sub patterns), where a give-up is not replicated state. */
int rabia_kv_glob_match_limited(const uint8_t *pat, size_t pat_len, const uint8_t *str, size_t str_len,
                                uint64_t max_steps);

#ifdef __cplusplus
}
#endif
#endif
