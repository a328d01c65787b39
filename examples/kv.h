/* Example state machine: a Redis-like key-value store (the guide's
 * KVStoreSMR with transactions). Keys and values are binary-safe byte
 * strings (any bytes, length < 2^32). Uses only the public rabia headers.
 *
 * OPERATION: an argv, little-endian:
 *   u32 argc, then argc x (u32 len, len bytes)
 * and nothing after. argv[0] is the command name, matched without regard
 * to ASCII case. rabia_kv_encode_argv() writes one.
 *
 * RESULT: the RESP2 encoding of the reply, exactly as a Redis server would
 * send it, so a RESP front end can forward it unchanged:
 *   +OK\r\n   -ERR ...\r\n   :42\r\n   $3\r\nbar\r\n   $-1\r\n   *2\r\n...
 * A malformed operation replies "-ERR malformed operation", an argc of 0
 * "-ERR empty command". Errors never change the state.
 *
 * Commands (Redis semantics unless noted; "wrong number of arguments" and
 * "unknown command" errors use Redis's exact texts):
 *   GET key                          bulk or nil
 *   SET key value [NX|XX] [GET]      +OK, or nil when NX/XX prevented the
 *                                    write; with GET the old value (or nil).
 *                                    KEEPTTL is accepted and ignored (there
 *                                    are no expiries: time is not
 *                                    deterministic); EX/PX/... are
 *                                    "ERR syntax error".
 *   DEL key...  EXISTS key...        integer (EXISTS counts repeats)
 *   INCR / DECR key, INCRBY / DECRBY key n
 *                                    integer; the value must be a canonical
 *                                    decimal int64 ("ERR value is not an
 *                                    integer or out of range"), overflow is
 *                                    "ERR increment or decrement would
 *                                    overflow"
 *   MGET key...                      array of bulk or nil
 *   MSET key value [key value...]    +OK
 *   KEYS pattern                     array of matching keys, sorted bytewise
 *   SCAN cursor [MATCH p] [COUNT n]  [next cursor, keys]. The cursor is a
 *                                    position in sorted key order: SCAN
 *                                    examines the n (default 10) keys from
 *                                    that position and returns those
 *                                    matching p; the next cursor is 0 after
 *                                    the last key. A full scan of an
 *                                    unchanging store returns every key once.
 *                                    Keys deleted or added before the cursor
 *                                    during a scan shift positions, so
 *                                    unlike Redis a key present throughout
 *                                    may then be skipped or repeated.
 *   DBSIZE                           integer
 *   FLUSHALL [ASYNC|SYNC]            +OK
 *   PING [message]  ECHO message     +PONG / bulk
 *   TXN op...                        (not a Redis command) a transaction,
 *                                    the MULTI ... EXEC of a RESP front end:
 *                                    each argument is itself an encoded argv
 *                                    operation. The commands run in order
 *                                    and atomically: if any of them fails
 *                                    (its reply is an error: wrong arity,
 *                                    unknown command, INCR of a
 *                                    non-integer, a syntax error, a
 *                                    malformed argv, a nested TXN) nothing
 *                                    changes and the reply is
 *                                      -EXECABORT Transaction discarded:
 *                                       command <i> (<name>) failed: <error>
 *                                    with i the failing command's 0-based
 *                                    index among the TXN's commands.
 *                                    Otherwise the reply is an array of the
 *                                    commands' replies.
 *
 * Glob patterns (KEYS, SCAN MATCH) are Redis's: * any run of bytes, ? one
 * byte, [abc] [^abc] [a-z] a set, \x the byte x literally.
 *
 * SNAPSHOT: u8 version (1), u64 count, then count x (u32 klen, key,
 * u32 vlen, value) in strictly increasing key order (bytewise, a proper
 * prefix first): canonical, so equal stores give equal bytes. Restore
 * checks all of it and leaves the old state untouched on error.
 *
 * The store is an AVL tree with subtree sizes (ordered keys for KEYS,
 * SCAN positions and snapshots; O(log n) lookups). A transaction keeps an
 * undo log; rolling back never allocates. */
#ifndef RABIA_EXAMPLES_KV_H
#define RABIA_EXAMPLES_KV_H

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

/* Local read-only inspection: number of keys. */
uint64_t rabia_kv_count(const void *sm);

/* Redis glob match (also used by KEYS and SCAN): 1 if str matches. */
/* Parse a canonical decimal int64 as Redis's string2ll does (optional '-',
 * no '+', no leading zeros or spaces): true and *out, or false. */
bool rabia_kv_parse_int(const uint8_t *p, size_t n, int64_t *out);
int rabia_kv_glob_match(const uint8_t *pat, size_t pat_len, const uint8_t *str, size_t str_len);

#ifdef __cplusplus
}
#endif
#endif
