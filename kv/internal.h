/* kv/internal.h: what the files of the Redis-compatible store share.
 *
 * The store is a deterministic state machine (include/rabia/state_machine.h):
 * every replica applies the same operations in the same order and must
 * produce the same replies and the same snapshot bytes. So nothing here may
 * depend on pointers, allocation addresses, a clock or a random source:
 *   - time is the log's (kv_ctx.now_ms, from the batches' stamps);
 *   - randomness comes from kv_rand(), seeded by the slot;
 *   - hash tables use one fixed hash function and are iterated in hash
 *     order (kv_dict_scan), which depends only on their contents, not on
 *     their size, their rehashing progress or the insertion history.
 *
 * Every allocation goes through kv_alloc / kv_realloc / kv_free with the
 * store, which counts the bytes held (INFO memory). Allocation failure is
 * reported as -ENOMEM all the way up; the replica then stops (a partial
 * change is allowed then: the state is discarded).
 *
 * Command functions: int fn(struct kv_ctx *c). They read c->argv[i] /
 * c->len[i] (argc >= the command's arity, checked before), write exactly
 * one RESP2 reply to c->out through the kv_reply_* functions, and return 0
 * or -ENOMEM. A command that fails (syntax, WRONGTYPE, ...) replies the
 * error and changes nothing: check everything before the first change.
 * Every change to a key's value calls kv_touch (WATCH versions); a change
 * that makes a list non-empty calls kv_key_ready (blocked pops). */
#ifndef RABIA_KV_INTERNAL_H
#define RABIA_KV_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "invariant.h"
#include "kv.h"
#include "rabia/state_machine.h"

/* ------------------------------------------------------------------ */
/* Allocation (counted per store).                                     */

struct kv_store;
void *kv_alloc(struct kv_store *s, size_t n);             /* NULL on failure */
void *kv_realloc(struct kv_store *s, void *p, size_t n);  /* NULL: p unchanged */
void kv_free(struct kv_store *s, void *p);                /* p may be NULL */
uint8_t *kv_dup(struct kv_store *s, const uint8_t *p, size_t n); /* n + 1 bytes, NUL added */

/* ------------------------------------------------------------------ */
/* Hash tables (dict.c).                                               */

/* One fixed 64-bit hash (XXH3, fixed seed): equal on every replica. */
uint64_t kv_hash(const uint8_t *p, size_t n);

/* An entry. The owner decides what v and x mean:
 *   keyspace: v.p = struct kv_obj *, x = expiry (Unix ms, 0 none),
 *             ver = WATCH version;
 *   hash:     v.p = value bytes (kv_dup'ed), x = value length;
 *   set:      nothing;
 *   zset:     v.d = score, v2 = its skip-list node. */
struct kv_dent {
    struct kv_dent *next; /* chain */
    uint64_t hash;        /* kv_hash(key) */
    union {
        void *p;
        double d;
    } v;
    void *v2;
    uint64_t x;
    uint64_t ver;
    uint32_t klen;
    uint8_t key[]; /* klen bytes and a NUL (not counted) */
};

/* A chained hash table indexed by the TOP bits of the hash, so that bucket
 * order is hash order; grown (load 1) and shrunk (below 1/8) by incremental
 * rehashing: each find/add/unlink moves one bucket. */
struct kv_dict {
    struct kv_dent **t[2];
    uint8_t bits[2];   /* t[i] has 1 << bits[i] buckets (t[i] NULL: 0) */
    uint64_t used[2];  /* entries in t[i] */
    int64_t rehash;    /* -1: not rehashing; else next t[0] bucket to move */
};

void kv_dict_init(struct kv_dict *d);
uint64_t kv_dict_size(const struct kv_dict *d);
/* The entry for key, or NULL. */
struct kv_dent *kv_dict_find(struct kv_store *s, struct kv_dict *d, const uint8_t *k, size_t n);
/* The same without the incremental rehash step: changes nothing. */
const struct kv_dent *kv_dict_peek(const struct kv_dict *d, const uint8_t *k, size_t n);
/* Cache hints for a key of hash h, changing nothing (kv_prefetch runs them
 * as a pipeline, a few operations apart): 1 the bucket slots, 2 the first
 * entry of each bucket, 3 the value of the entry with hash h. Stages 2 and
 * 3 read what the stage before fetched. */
void kv_dict_prefetch(const struct kv_dict *d, uint64_t h, int stage);
/* Add key (the caller knows it is absent): a zeroed entry (v, v2, x, ver
 * 0) with the key copied in, or NULL on allocation failure. */
struct kv_dent *kv_dict_add(struct kv_store *s, struct kv_dict *d, const uint8_t *k, size_t n);
/* Unlink key's entry and return it (NULL if absent); free it with kv_free
 * after releasing what it owns. */
struct kv_dent *kv_dict_unlink(struct kv_store *s, struct kv_dict *d, const uint8_t *k, size_t n);
/* Free every entry (calling release(s, e) first when not NULL) and the
 * tables; d is empty (and reusable) after. */
void kv_dict_clear(struct kv_store *s, struct kv_dict *d,
                   void (*release)(struct kv_store *s, struct kv_dent *e));
/* Visit entries in increasing (hash, key) order starting at hash `cursor`
 * until `count` were visited, and then those with the same hash as the last
 * (entries with equal hash are never split across calls). Returns the next
 * cursor (the last hash visited + 1), 0 when the end was reached. Where it
 * stops depends only on the entries, never on the table sizes. fn returns 0 to go on, or a negative errno to stop (returned
 * through *err). The dict must not change during the walk. A full scan
 * from 0 visits every entry present throughout exactly once, whatever
 * changes happen between calls. -ENOMEM possible (scratch space). */
uint64_t kv_dict_scan(struct kv_store *s, struct kv_dict *d, uint64_t cursor, uint64_t count,
                      int (*fn)(void *arg, struct kv_dent *e), void *arg, int *err);
/* The entry at or after hash r in hash order (wrapping around), NULL when
 * empty: a deterministic "random" entry for a random r. */
struct kv_dent *kv_dict_at(struct kv_store *s, struct kv_dict *d, uint64_t r);
/* Bytes held by the tables (not the entries). */
uint64_t kv_dict_table_bytes(const struct kv_dict *d);

/* ------------------------------------------------------------------ */
/* Snapshot reading (snapshot.c): bounds-checked, little-endian.        */

struct kv_rd {
    const uint8_t *p, *end;
};
bool kv_rd_u8(struct kv_rd *r, uint8_t *v);
bool kv_rd_u32(struct kv_rd *r, uint32_t *v);
bool kv_rd_u64(struct kv_rd *r, uint64_t *v);
bool kv_rd_f64(struct kv_rd *r, double *v); /* IEEE bits as u64; NaN refused */
/* u32 length then bytes: *p points into the snapshot. */
bool kv_rd_str(struct kv_rd *r, const uint8_t **p, uint32_t *n);
/* Writers: 0 or -ENOMEM. */
int kv_wr_u8(struct rabia_buf *b, uint8_t v);
int kv_wr_u32(struct rabia_buf *b, uint32_t v);
int kv_wr_u64(struct rabia_buf *b, uint64_t v);
int kv_wr_f64(struct rabia_buf *b, double v);
int kv_wr_str(struct rabia_buf *b, const uint8_t *p, uint32_t n);

/* ------------------------------------------------------------------ */
/* Values.                                                             */

enum kv_type { KV_STRING = 0, KV_LIST = 1, KV_SET = 2, KV_ZSET = 3, KV_HASH = 4, KV_NTYPES = 5 };

struct kv_obj {
    uint8_t type; /* enum kv_type */
    uint8_t enc;  /* the type's encoding (its own enum), in snapshots */
    uint32_t len; /* KV_STRING: bytes in str */
    void *ptr;    /* other types: the type's structure */
    uint64_t hsum; /* this key's term in kv_store.key_sum while the object
                      is a key's value (0 when just attached: state_hash.c) */
    uint8_t str[]; /* KV_STRING: len bytes and a NUL */
};

/* What each type provides (kv_types[type], filled by the type's file). */
struct kv_type_ops {
    const char *name; /* TYPE's reply: "string", "list", ... */
    void (*free)(struct kv_store *s, struct kv_obj *o); /* frees o too */
    /* Canonical encoding after the type byte: equal values, equal bytes
     * (the encoding byte o->enc included). 0 or -ENOMEM. */
    int (*save)(struct kv_store *s, const struct kv_obj *o, struct rabia_buf *out);
    /* Decode what save wrote (rd advanced past it). 0, -EINVAL for corrupt
     * data (nothing leaked), -ENOMEM. */
    int (*load)(struct kv_store *s, struct kv_rd *rd, struct kv_obj **out);
    /* A deep copy (COPY). 0 or -ENOMEM. */
    int (*copy)(struct kv_store *s, const struct kv_obj *o, struct kv_obj **out);
    /* Bytes held (INFO memory, MEMORY USAGE). */
    uint64_t (*mem)(const struct kv_obj *o);
    /* Its elements (a string: its bytes), in O(1). */
    uint64_t (*len)(const struct kv_obj *o);
};
extern const struct kv_type_ops kv_string_ops, kv_list_ops, kv_set_ops, kv_zset_ops, kv_hash_ops;
const struct kv_type_ops *kv_type_ops(uint8_t type);

/* A string object holding p[0..n). NULL on allocation failure. */
struct kv_obj *kv_str_new(struct kv_store *s, const uint8_t *p, size_t n);
/* o resized to n bytes (new bytes zero), or NULL with o unchanged. The
 * caller points the key's entry at the result. */
struct kv_obj *kv_str_resize(struct kv_store *s, struct kv_obj *o, size_t n);
#ifndef KV_STR_MAX /* the fuzz targets lower it, as the script bounds below */
#define KV_STR_MAX (512ull * 1024 * 1024) /* a string's bytes at most: Redis's proto-max-bulk-len default */
#endif
/* A non-string object of type t with encoding enc and structure ptr. */
struct kv_obj *kv_obj_new(struct kv_store *s, uint8_t type, uint8_t enc, void *ptr);
void kv_obj_free(struct kv_store *s, struct kv_obj *o);

/* ------------------------------------------------------------------ */
/* Sets for other types (t_set.c): ZUNIONSTORE / ZINTERSTORE take plain   */
/* sets (every member scoring 1, as in Redis). set is a KV_SET object.    */

uint64_t kv_set_card(const struct kv_obj *set);
bool kv_set_has(struct kv_store *s, struct kv_obj *set, const uint8_t *p, size_t n);
/* Visit every member in the set's order (integers ascending, else hash
 * order): fn returns 0 to go on, or a negative errno that stops the walk
 * and is returned. While it runs the set must not change nor be looked up
 * (a lookup may rehash the table being walked). */
int kv_set_each(struct kv_store *s, struct kv_obj *set,
                int (*fn)(void *arg, const uint8_t *p, size_t n), void *arg);

/* ------------------------------------------------------------------ */
/* The store and its databases (store.c).                              */

#define KV_DBS 16
#define KV_GONE_SLOTS 256

struct kv_db {
    struct kv_dict keys;    /* key -> struct kv_obj * (v.p), expiry (x), version (ver) */
    struct kv_dict expires; /* the keys with an expiry: v.p = their keyspace entry */
    /* versions of absent keys: a deleted key bumps its slot (by hash), so a
     * WATCHed absent key reads as changed when a key of its slot was
     * deleted since: exact but for 1/KV_GONE_SLOTS false aborts */
    uint64_t gone[KV_GONE_SLOTS];
    uint64_t sweep;         /* where the expiry sweep goes on (a kv_dict_scan cursor) */
};

struct kv_store {
    struct kv_db db[KV_DBS];
    uint64_t now_ms;       /* the log's clock: max of the batch stamps seen */
    uint64_t slot;         /* the slot being applied (seeds kv_rand) */
    uint64_t rng;          /* kv_rand state: reset from the slot per batch */
    uint64_t version;      /* WATCH versions: bumped by each change */
    uint64_t mem;          /* bytes held (kv_alloc) */
    uint64_t allocs;       /* kv_alloc and kv_realloc calls: the state's own allocations */
    rabia_sm_event_fn ev_fn;
    void *ev_arg;
    void *scratch;         /* kv_dict_scan's sort space */
    size_t scratch_cap;
    bool flush_hit[KV_GONE_SLOTS]; /* kv_db_flush: the slots of the keys it deleted */
    uint64_t expired_keys; /* keys reclaimed by expiry (INFO stats) */
    /* The incremental state hash (state_hash.c): key_sum is the sum of
     * every key's term (kv_obj.hsum); a key changed since its term was
     * computed is listed in dirty (its keyspace entry's v2 holds its index
     * + 1) until kv_hash_settle recomputes it. */
    uint64_t key_sum;
    struct kv_dirty {
        struct kv_dent *e;
        uint32_t db;
    } *dirty;
    size_t n_dirty, dirty_cap;
    struct rabia_buf hbuf; /* one key's record, the header: hashed, then dropped */
    bool hash_rescan;      /* the dirty list could not grow: the next settle recomputes every key */
    /* The script cache (script.c): SHA-1 hex -> body (v.p, x bytes), v2
     * marks those of SCRIPT LOAD, ver is the last use (script_seq). */
    struct kv_dict scripts;
    uint64_t script_seq;
    uint64_t script_sum;     /* the state hash's term for the cache */
    uint32_t n_eval_scripts; /* cached by EVAL (bounded: KV_SCRIPT_EVAL_CACHED) */
    /* Scripts run, by outcome (enum kv_script_outcome): this replica's
     * counts, not state (carried across a restore; rabia_scripts_total). */
    uint64_t script_runs[3];
    /* The cluster's agreed feature level (features.c): commands of a
     * higher level do not exist yet. 0 until a FEATURELEVEL operation
     * raises it; never lowered. */
    uint8_t feature_level;
    /* The command running now (kv_run) tried to reply more than
     * KV_REPLY_MAX bytes: its reply writes are dropped from then on and
     * kv_run answers an error instead. Not state. */
    bool reply_over;
    /* Scripts running now (0 or 1: a script cannot call EVAL). Not state:
     * SORT asks it, as Redis's SORT asks whether its client is a script. */
    uint8_t in_script;
    /* A read answered outside the log runs now (kv_query): an expired key
     * reads as absent but stays, tables take no rehash step, and nothing
     * that changes the state may run (asserted by kv_touch, kv_event). */
    bool query;
    /* ... as of query_now (the replica's wall clock when the read came, Unix
     * ms): a key whose expiry falls between the log's clock (now_ms) and
     * it, or a TTL that counts from now, would answer by a clock the log
     * has not reached: query_clock is set and the read goes through the
     * log, whose batch carries the time (kv_expired, ttl_generic). */
    uint64_t query_now;
    bool query_clock;
};

struct kv_store *kv_store_new(void); /* NULL on allocation failure */
/* Whether key e has expired by the log's clock (Redis: now > when). In a
 * query (kv_query) a key the log's clock has not expired yet but the
 * reader's (query_now) has sets query_clock: the answer is the log's. */
bool kv_expired(struct kv_store *s, const struct kv_dent *e);

/* ------------------------------------------------------------------ */
/* Scripts (script.c).                                                 */

enum kv_script_outcome { KV_SCRIPT_OK = 0, KV_SCRIPT_ERROR = 1, KV_SCRIPT_STOPPED = 2 };
/* The two bounds are part of what every replica computes alike: a build
 * for the cluster never changes them. The fuzz targets (tests/fuzz) lower
 * them so that a script that loops forever costs them milliseconds. */
#ifndef KV_SCRIPT_MAX_INSNS
#define KV_SCRIPT_MAX_INSNS 100000000 /* Lua instructions a run may execute */
#endif
#ifndef KV_SCRIPT_MAX_HEAP
#define KV_SCRIPT_MAX_HEAP (128u << 20) /* bytes a run's Lua state may hold */
#endif
/* From feature level KV_LEVEL_SCRIPT_WORK, what a run allocates and the
 * library's loops in C count toward KV_SCRIPT_MAX_INSNS, one instruction
 * per KV_SCRIPT_ALLOC_BYTES bytes (kv/README.md "Scripts"): a loop that
 * concatenates a growing string runs one instruction per step but copies
 * the whole string each time (40,000 steps of 10 bytes took 11 s here). */
#define KV_LEVEL_SCRIPT_WORK 2
#define KV_SCRIPT_ALLOC_BYTES 4
/* From feature level KV_LEVEL_SCRIPT_C_WORK, the rest of the work done in
 * C for one instruction counts too (kv/README.md "Scripts"): string.find,
 * match, gmatch, gfind and gsub are script_match.c's, Lua 5.1's patterns
 * with every step the matcher takes counted as one instruction (a step
 * took 2.6 ns here, an instruction of a counting loop 1.9 ns) and nested
 * at most KV_MATCH_DEPTH deep (5.1's own backtracked unseen by the count,
 * and recursed until the C stack overflowed); a redis.call counts its
 * arguments' bytes (KV_SCRIPT_ALLOC_BYTES each) and, for a KV_F_SCANS
 * command, the size of every key it names: KV_SCRIPT_KEY_ELEM_INSNS per
 * element (SUNIONSTORE of a 100,000-member set took 23 ms here), a
 * string's bytes / KV_SCRIPT_ALLOC_BYTES (BITCOUNT of 100 MB: 19 ms);
 * cjson.decode its input's bytes / KV_SCRIPT_ALLOC_BYTES, redis.sha1hex one
 * per byte (20 MB took 110 ms); cjson.encode is refused past the heap
 * bound before it starts (past 2 GiB it exited the process). */
#define KV_LEVEL_SCRIPT_C_WORK 3
/* From feature level KV_LEVEL_READ_INDEX every replica answers read-index
 * rounds (core.h, READ INDEX), and reads are answered without a slot
 * (kv_query in command.c): before it, an older replica would take a
 * round for a recovering replica's question and drive null slots. */
#define KV_LEVEL_READ_INDEX 6
/* From feature level KV_LEVEL_BITFIELD_WATCH a BITFIELD signals its key
 * (WATCH's version) as Redis 7.0 does: only when a write that did not fail
 * changed bits or followed the string's creation or growth. Before it every
 * BITFIELD with a write did, and an EXEC watching the key aborted where
 * Redis's goes through (an OVERFLOW FAIL, a SET of the same value). */
#define KV_LEVEL_BITFIELD_WATCH 7
/* From feature level KV_LEVEL_SCRIPT_HEAP a script run's memory comes from
 * kv/script_heap.c: every block at the same address (low 32 bits) on every
 * replica, so that pairs() and next() visit keys that are tables or
 * functions in the same order everywhere (before it, realloc's addresses:
 * a script writing in that order diverged the replicas); and a coroutine's
 * instructions count in steps of KV_SCRIPT_CORO_EVERY (before it, one that
 * ended within 10,000 instructions was never counted). */
#define KV_LEVEL_SCRIPT_HEAP 8
/* Also from level 8 (KV_LEVEL_FLUSH_WATCH), FLUSHDB and FLUSHALL change
 * the version of an absent key only where they deleted a key of its slot:
 * as Redis 7.0 touches only WATCHed keys that existed, an EXEC watching an
 * absent key goes through a flush of an empty database (before it, every
 * flush aborted every such EXEC). And a script whose shebang line has no
 * newline is refused as Redis does ("Invalid script shebang"). */
#define KV_LEVEL_FLUSH_WATCH 8
/* From feature level KV_LEVEL_EXPIRE_OPTION, EXPIRE's "Unsupported option"
 * error quotes the option whole (up to a NUL byte), as Redis 7.0's %s; below
 * it the store's answer cut it at 64 bytes, and a mixed cluster must answer
 * alike (the reply is in the session, which the state hash covers). */
#define KV_LEVEL_EXPIRE_OPTION 9
/* From feature level KV_LEVEL_REPLY_BOUND an operation's reply (a command,
 * a transaction's, a script's, a script's redis.call) is at most
 * KV_REPLY_MAX bytes: a command whose reply would pass it runs to its end
 * (the same writes) and answers an error instead. Every replica builds every
 * reply in memory, so one EXEC of 500 MGETs of a 4 MB string (2 GB)
 * stopped every replica that could not allocate it, again at each replay
 * of the log; below the level a mixed cluster builds such replies as
 * before (a script's redis.call would see the reply there, the error here). */
#define KV_LEVEL_REPLY_BOUND 10
/* A GET of the longest string fits (only the embedding API could take it:
 * a RESP connection holds at most 64 MiB of output, a native frame 16 MiB). */
#define KV_REPLY_MAX (KV_STR_MAX + (64u << 10))
#define KV_SCRIPT_CORO_EVERY 100
/* script_heap.c: begin before a run's state is made (0, -EBUSY nested,
 * -errno when no address space), realloc as Lua's allocator (*spent: NULL
 * because the arena is full, the same on every replica; else the
 * machine's memory), end after lua_close. */
int kv_script_heap_begin(void);
void *kv_script_heap_realloc(void *ptr, size_t osize, size_t nsize, bool *spent);
void kv_script_heap_end(void);
#define KV_SCRIPT_KEY_ELEM_INSNS 32
#define KV_SCRIPT_EVAL_CACHED 500     /* scripts cached by EVAL (Redis 7.4's bound) */
/* A cached script (kv_dent.v.p of the cache; ver is its last use). */
struct kv_script {
    uint8_t *code;   /* compiled (lua_dump): this replica's own, not state */
    size_t code_len;
    uint32_t len;    /* body bytes */
    bool loaded;     /* by SCRIPT LOAD: kept until SCRIPT FLUSH */
    uint8_t body[];  /* len bytes and a NUL */
};

struct kv_ctx;
/* Compile body (its shebang, skip bytes, left out) in a bare Lua state:
 * its code (lua_dump) appended to code when not NULL. 1 compiled, 0 the
 * compiler's error replied, -ENOMEM (script_lua.c). */
int kv_script_compile(struct kv_ctx *c, const uint8_t *body, size_t n, long skip, struct rabia_buf *code);
/* Run sc's code with KEYS = argv[first .. first+nkeys) and ARGV the rest,
 * writes refused when no_writes; replies (one reply). 0 or -ENOMEM. */
int kv_script_run(struct kv_ctx *c, const char *sha, const struct kv_script *sc, bool no_writes, uint32_t first,
                  uint32_t nkeys);
/* SHA-1 of p[0..n) in lowercase hex (sha1.c). */
void kv_sha1_hex(const uint8_t *p, size_t n, char out[41]);
void kv_scripts_clear(struct kv_store *s);
/* The cache's snapshot section (0 or -ENOMEM) and its checked reading
 * (0, -EINVAL, -ENOMEM). */
int kv_scripts_save(struct kv_store *s, struct rabia_buf *out);
int kv_scripts_load(struct kv_store *s, struct kv_rd *r);

/* Lua 5.1's patterns, counted and bounded (script_match.c). */
struct lua_State;
struct kv_match_meter {
    /* steps the matcher took since the last call: may stop the run (raise
     * a Lua error), so the matcher holds nothing across a call */
    void (*charge)(struct lua_State *L, struct kv_match_meter *m, uint64_t steps);
};
#define KV_MATCH_DEPTH 200        /* items nested: Lua 5.2's MAXCCALLS, "pattern too complex" */
/* The string library's table on top of the stack: its find, match, gmatch,
 * gfind and gsub replaced by script_match.c's, charging m. */
void kv_match_open(struct lua_State *L, struct kv_match_meter *m);

/* ------------------------------------------------------------------ */
/* The incremental state hash (state_hash.c).                          */

/* Keys whose terms wait to be recomputed beyond this are settled after
 * the command that listed them (kv_apply): the list stays small, and a key
 * written many times in a row is hashed once. Small, because a settle
 * reads each key's entry and value again: at 1024, with 100,000 keys and
 * three replicas on one core, those had left the cache and settling cost
 * 8% of the CPU (perf record -e cpu-clock, SET -P 16); 32 keys' worth is
 * still in it. */
#define KV_DIRTY_SETTLE 32
/* A key's snapshot record (key, expiry, version, type, value: what
 * kv_store_save writes for it) appended to out. 0 or -ENOMEM. */
int kv_save_record(struct kv_store *s, const struct kv_dent *e, struct rabia_buf *out);
/* A string key's record, the bytes kv_save_record writes, built in rec
 * (cap at least 512); its length, or 0 when it does not fit (the caller
 * goes through kv_save_record). */
size_t kv_string_record(const struct kv_dent *e, uint8_t *rec, size_t cap);
/* The term of a key of database db whose snapshot record is rec[0..n). */
uint64_t kv_record_term(uint32_t db, const uint8_t *rec, size_t n);
/* Key e of database db changed: its term is recomputed by the next
 * settle (when the list cannot grow, the next settle recomputes every
 * key: slow once, never wrong). */
void kv_hash_dirty(struct kv_store *s, struct kv_dent *e, uint32_t db);
/* e's value o stops being a key's (deleted, replaced, moved): its term
 * leaves the sum and e leaves the dirty list. */
void kv_hash_detach(struct kv_store *s, struct kv_dent *e, struct kv_obj *o);
/* Recompute the terms of every listed key. 0 or -ENOMEM (the list is
 * then kept: a later settle finishes). */
int kv_hash_settle(struct kv_store *s);
/* The state hash: equal stores, equal hashes, whatever their history;
 * costs the listed keys' records plus a fixed header. 0 or -ENOMEM. */
int kv_store_hash(struct kv_store *s, uint64_t *out);
void kv_store_free(struct kv_store *s);
/* Canonical snapshot of everything (snapshot.c). 0 or -ENOMEM. */
int kv_store_save(struct kv_store *s, struct rabia_buf *out);
/* A new store from a snapshot: 0 and *out, -EINVAL (corrupt), -ENOMEM. */
int kv_store_load(const uint8_t *p, size_t n, struct kv_store **out);

/* One command's context. */
struct kv_ctx {
    struct kv_store *s;
    struct kv_db *db;
    uint32_t dbi;          /* index of db */
    uint32_t argc;
    const uint8_t *const *argv;
    const uint32_t *len;
    struct rabia_buf *out; /* the reply goes here */
    bool in_exec;          /* inside EXEC: blocking commands do not block */
};

/* The live entry of key in c->db, or NULL. An expired key is deleted
 * here first (lazy expiry: every replica deletes it at the same point). */
struct kv_dent *kv_find(struct kv_ctx *c, const uint8_t *k, size_t n);
/* The same, for key argument i. */
struct kv_dent *kv_find_arg(struct kv_ctx *c, uint32_t i);
/* Whether e (may be NULL) is absent or of type t; if not, replies
 * WRONGTYPE and returns false. */
bool kv_type_ok(struct kv_ctx *c, const struct kv_dent *e, uint8_t t);
/* Add key (absent: check with kv_find first) holding o (taken over, freed
 * on failure); no expiry. The new entry, or NULL on -ENOMEM. Touches. */
struct kv_dent *kv_add(struct kv_ctx *c, const uint8_t *k, size_t n, struct kv_obj *o);
/* Replace e's value with o (the old one is freed; o taken over). Keeps
 * the expiry when keep_ttl, else clears it. Touches. */
void kv_replace(struct kv_ctx *c, struct kv_dent *e, struct kv_obj *o, bool keep_ttl);
/* Set key to o whether or not it exists (SET): kv_add or kv_replace. */
int kv_set(struct kv_ctx *c, const uint8_t *k, size_t n, struct kv_obj *o, bool keep_ttl);
/* Delete e (and its value, its expiry). Bumps its slot of db->gone. */
void kv_delete(struct kv_ctx *c, struct kv_dent *e);
/* Delete e when its collection became empty (call after removing
 * members): true when deleted. */
bool kv_delete_if_empty(struct kv_ctx *c, struct kv_dent *e, uint64_t members);
/* Set or clear (ms 0) e's expiry. 0 or -ENOMEM. Touches. */
int kv_set_expire(struct kv_ctx *c, struct kv_dent *e, uint64_t ms);
/* The key's value changed (WATCH). */
void kv_touch(struct kv_ctx *c, struct kv_dent *e);
/* A list key became non-empty: wake clients blocked on it. */
void kv_key_ready(struct kv_ctx *c, const uint8_t *k, size_t n);
/* The WATCH version of key in db: its entry's, or its db->gone slot when
 * absent (so a key deleted, or created and deleted, reads as changed). */
uint64_t kv_key_version(struct kv_ctx *c, const uint8_t *k, size_t n);
/* Report an event to the local replica (rabia_sm_event). */
void kv_event(struct kv_store *s, uint32_t kind, uint32_t db, const uint8_t *a, size_t an,
              const uint8_t *b, size_t bn);
/* The next pseudo-random 64-bit number: the same sequence on every replica
 * (seeded by the slot at each batch). */
uint64_t kv_rand(struct kv_store *s);
/* Empty database i (FLUSHDB): every key deleted, versions bumped. */
void kv_db_flush(struct kv_store *s, uint32_t i);
/* Delete up to `budget` expired keys of db i, going on from db->sweep.
 * Returns how many were deleted. */
uint64_t kv_db_sweep(struct kv_store *s, uint32_t i, uint64_t budget);

/* ------------------------------------------------------------------ */
/* Replies (reply.c): RESP2, as Redis 7.0 sends them. 0 or -ENOMEM.    */

int kv_reply_ok(struct kv_ctx *c);                      /* +OK */
int kv_reply_status(struct kv_ctx *c, const char *s);  /* +s */
int kv_reply_err(struct kv_ctx *c, const char *msg);   /* -msg ("ERR ...", "WRONGTYPE ...") */
int kv_reply_errf(struct kv_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int kv_reply_int(struct kv_ctx *c, int64_t v);         /* :v */
int kv_reply_bulk(struct kv_ctx *c, const void *p, size_t n);
int kv_reply_cstr(struct kv_ctx *c, const char *s);    /* bulk */
int kv_reply_null(struct kv_ctx *c);                   /* $-1 (nil bulk) */
int kv_reply_null_array(struct kv_ctx *c);             /* *-1 (nil array) */
int kv_reply_array(struct kv_ctx *c, uint64_t n);      /* *n header */
/* A double as a bulk string, as Redis 7.0's addReplyDouble: "%.17g",
 * "inf" / "-inf". */
int kv_reply_double(struct kv_ctx *c, double d);
/* An array whose length is known only at the end: kv_reply_defer returns a
 * mark, kv_reply_set_len writes the header there. */
size_t kv_reply_defer(struct kv_ctx *c);
int kv_reply_set_len(struct kv_ctx *c, size_t mark, uint64_t n);
int kv_reply_arity(struct kv_ctx *c);                  /* wrong number of arguments for '<cmd>' */

#define KV_ERR_WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"
#define KV_ERR_SYNTAX "ERR syntax error"
#define KV_ERR_NOTINT "ERR value is not an integer or out of range"
#define KV_ERR_NOTFLOAT "ERR value is not a valid float"
#define KV_ERR_OVERFLOW "ERR increment or decrement would overflow"
#define KV_ERR_NOSUCHKEY "ERR no such key"
#define KV_ERR_RANGE "ERR index out of range"
#define KV_ERR_POSITIVE "ERR value is out of range, must be positive"

/* ------------------------------------------------------------------ */
/* Numbers and names (util.c).                                         */

/* Redis's string2ll (also rabia_kv_parse_int). */
bool kv_parse_i64(const uint8_t *p, size_t n, int64_t *v);
/* Redis's string2ld / strtod rules for scores and floats: decimal or
 * "inf"/"+inf"/"-inf" (any case), no spaces, not NaN. */
bool kv_parse_double(const uint8_t *p, size_t n, double *v);
bool kv_parse_long_double(const uint8_t *p, size_t n, long double *v);
/* Parse argument i as an integer / double, replying KV_ERR_NOTINT /
 * KV_ERR_NOTFLOAT on failure (returns false then). */
bool kv_arg_i64(struct kv_ctx *c, uint32_t i, int64_t *v);
/* HRANDFIELD's and ZRANDMEMBER's count (argument 2, -2^63 refused as
 * Redis's getRangeLong) and option `with` (argument 3: WITHVALUES,
 * WITHSCORES; a count of half the range at most with it): false when an
 * error was replied. */
bool kv_rand_count_args(struct kv_ctx *c, const char *with, int64_t *count, bool *withp);
bool kv_arg_double(struct kv_ctx *c, uint32_t i, double *v);
/* Format like Redis's ll2string / "%.17g" / long double "%.17Lf" with
 * trailing zeros removed (INCRBYFLOAT). Return the length written (buf
 * >= 64 bytes). */
int kv_fmt_i64(char *buf, int64_t v);
int kv_fmt_double(char *buf, double d);
int kv_fmt_long_double(char *buf, long double d);
/* Redis's ld2string(LD_STR_HUMAN) of d into buf (KV_LD_MAX_CHARS bytes):
 * its length (every finite long double fits). */
#define KV_LD_MAX_CHARS 5120
size_t kv_fmt_long_double_human(char *buf, long double d);
int kv_reply_long_double(struct kv_ctx *c, long double d); /* the same, any length, as a bulk reply */
/* Case-insensitive compare of argument bytes with a lowercase ASCII name. */
bool kv_eq(const uint8_t *p, size_t n, const char *lower_name);
bool kv_arg_is(const struct kv_ctx *c, uint32_t i, const char *lower_name);
/* [B]LMPOP / [B]ZMPOP's arguments (util.c): numkeys is argument `at` (1,
 * or 2 after a blocking form's timeout), the keys follow it, *which says
 * which of w0 / w1 the WHERE argument is, *count >= 1. false after an
 * error reply. */
bool kv_mpop_args(struct kv_ctx *c, uint32_t at, const char *w0, const char *w1, uint32_t *nkeys, int *which,
                  int64_t *count);
/* A blocking command's timeout (argument i), checked as Redis 7.0 does;
 * false after an error reply. */
bool kv_arg_timeout(struct kv_ctx *c, uint32_t i);
/* Redis glob match (rabia_kv_glob_match). */
bool kv_glob(const uint8_t *pat, size_t pn, const uint8_t *s, size_t sn);

/* ------------------------------------------------------------------ */
/* Commands (command.c holds the table; each type file its functions).  */

enum kv_cmd_flag {
    KV_F_WRITE = 1u << 0,    /* may change the state */
    KV_F_READONLY = 1u << 1,
    KV_F_DENYOOM = 1u << 2,
    KV_F_FAST = 1u << 3,
    KV_F_BLOCKING = 1u << 4, /* a blocking pop: the front end may park the client */
    KV_F_PUBSUB = 1u << 5,
    KV_F_NOMULTI = 1u << 6,  /* refused inside EXEC */
    KV_F_NOSCRIPT = 1u << 7, /* refused inside a script (redis.call) */
    KV_F_INTERNAL = 1u << 8, /* the replicas' own (SWEEP, FEATURES, FEATURELEVEL): not a Redis command */
    /* Its work grows with the size of the keys it names, not only with its
     * reply (BITCOUNT, SUNIONSTORE, LREM, ...): from feature level
     * KV_LEVEL_SCRIPT_C_WORK a script's redis.call of it counts them. */
    KV_F_SCANS = 1u << 9,
    KV_F_SCANS_DB = 1u << 10, /* the same for the whole database (KEYS) */
    KV_F_LIMIT_WALKS = 1u << 11, /* LIMIT offset count walks offset elements of key 1 (ZRANGEBYSCORE, ...) */
    KV_F_SCAN_COUNT = 1u << 12,  /* COUNT n visits n entries of the database (SCAN) or of key 1 (SSCAN, ...) */
    /* LCS: a table of (len1 + 1) x (len2 + 1) cells of keys 1 and 2, one
     * instruction each for a script (a 10,000-byte pair is 100 M cells) */
    KV_F_LCS = 1u << 13,
};

struct kv_cmd {
    const char *name; /* lowercase */
    int arity;        /* Redis's: n exactly, -n at least n (name included) */
    uint32_t flags;   /* enum kv_cmd_flag */
    int8_t first, last, step; /* key positions, as COMMAND INFO reports them */
    int (*fn)(struct kv_ctx *c);
};

/* Redis's "ERR unknown command 'x', with args beginning with: ..." for
 * c's arguments: what a build without the command answers. */
int kv_reply_unknown(struct kv_ctx *c);
/* The command named p[0..n) (any case), or NULL. */
const struct kv_cmd *kv_lookup(const uint8_t *p, size_t n);
/* The feature level that introduced cmd (command.c's `levels`; 0 for every
 * command of the builds before levels existed): above the store's
 * feature_level it is unknown (features.c). */
unsigned kv_cmd_level(const struct kv_cmd *cmd);
/* Run one command (argv[0] its name) in database dbi: the name (unknown
 * above the agreed feature level, and for the replicas' own operations
 * when nested in a transaction, @DB or a script) and arity checks, then
 * fn. 0 or -ENOMEM. */
int kv_run(struct kv_store *s, uint32_t dbi, uint32_t argc, const uint8_t *const *argv,
           const uint32_t *len, struct rabia_buf *out, bool in_exec, bool nested);

/* The command functions, by file. */
#define KV_CMD(name) int kv_cmd_##name(struct kv_ctx *c)
/* t_string.c */
KV_CMD(get); KV_CMD(set); KV_CMD(setnx); KV_CMD(setex); KV_CMD(psetex); KV_CMD(getset);
KV_CMD(getdel); KV_CMD(getex); KV_CMD(mget); KV_CMD(mset); KV_CMD(msetnx); KV_CMD(append);
KV_CMD(strlen); KV_CMD(getrange); KV_CMD(setrange); KV_CMD(incr); KV_CMD(decr);
KV_CMD(incrby); KV_CMD(decrby); KV_CMD(incrbyfloat); KV_CMD(lcs);
/* t_bitmap.c */
KV_CMD(setbit); KV_CMD(getbit); KV_CMD(bitcount); KV_CMD(bitpos); KV_CMD(bitop); KV_CMD(bitfield);
KV_CMD(bitfield_ro);
/* t_hll.c */
KV_CMD(pfadd); KV_CMD(pfcount); KV_CMD(pfmerge);
/* t_keys.c: keyspace and expiry */
KV_CMD(del); KV_CMD(unlink); KV_CMD(exists); KV_CMD(type); KV_CMD(rename); KV_CMD(renamenx); KV_CMD(keys);
KV_CMD(scan); KV_CMD(randomkey); KV_CMD(dbsize); KV_CMD(flushdb); KV_CMD(flushall);
KV_CMD(move); KV_CMD(copy); KV_CMD(touch); KV_CMD(expire); KV_CMD(pexpire);
KV_CMD(expireat); KV_CMD(pexpireat); KV_CMD(ttl); KV_CMD(pttl); KV_CMD(expiretime);
KV_CMD(pexpiretime); KV_CMD(persist);
/* server.c */
KV_CMD(ping); KV_CMD(echo); KV_CMD(time); KV_CMD(publish); KV_CMD(sweep); KV_CMD(unwatch);
/* features.c */
KV_CMD(features); KV_CMD(featurelevel);
/* t_hash.c */
KV_CMD(hset); KV_CMD(hsetnx); KV_CMD(hget); KV_CMD(hmget); KV_CMD(hmset); KV_CMD(hdel);
KV_CMD(hlen); KV_CMD(hexists); KV_CMD(hkeys); KV_CMD(hvals); KV_CMD(hgetall);
KV_CMD(hincrby); KV_CMD(hincrbyfloat); KV_CMD(hstrlen); KV_CMD(hscan); KV_CMD(hrandfield);
/* t_list.c */
KV_CMD(lpush); KV_CMD(rpush); KV_CMD(lpushx); KV_CMD(rpushx); KV_CMD(lpop); KV_CMD(lmpop); KV_CMD(blmpop); KV_CMD(rpop);
KV_CMD(llen); KV_CMD(lrange); KV_CMD(lindex); KV_CMD(lset); KV_CMD(linsert); KV_CMD(lrem);
KV_CMD(ltrim); KV_CMD(lpos); KV_CMD(lmove); KV_CMD(rpoplpush); KV_CMD(blpop);
KV_CMD(brpop); KV_CMD(blmove); KV_CMD(brpoplpush);
/* t_set.c */
KV_CMD(sadd); KV_CMD(srem); KV_CMD(sismember); KV_CMD(smismember); KV_CMD(smembers);
KV_CMD(scard); KV_CMD(spop); KV_CMD(srandmember); KV_CMD(sinter); KV_CMD(sunion);
KV_CMD(sdiff); KV_CMD(sinterstore); KV_CMD(sunionstore); KV_CMD(sdiffstore);
KV_CMD(sintercard); KV_CMD(smove); KV_CMD(sscan);
/* t_zset.c */
KV_CMD(zadd); KV_CMD(zrem); KV_CMD(zscore); KV_CMD(zmscore); KV_CMD(zincrby); KV_CMD(zcard);
KV_CMD(zcount); KV_CMD(zrange); KV_CMD(zrangestore); KV_CMD(zrevrange);
KV_CMD(zrangebyscore); KV_CMD(zrevrangebyscore); KV_CMD(zrangebylex);
KV_CMD(zrevrangebylex); KV_CMD(zunion); KV_CMD(zinter); KV_CMD(zdiff); KV_CMD(zdiffstore); KV_CMD(zintercard); KV_CMD(zrandmember); KV_CMD(zrank); KV_CMD(zrevrank); KV_CMD(zpopmin); KV_CMD(zmpop); KV_CMD(bzmpop); KV_CMD(bzpopmin); KV_CMD(bzpopmax); KV_CMD(zpopmax);
KV_CMD(zremrangebyrank); KV_CMD(zremrangebyscore); KV_CMD(zremrangebylex); KV_CMD(zunionstore);
KV_CMD(zinterstore); KV_CMD(zscan); KV_CMD(zlexcount);
/* t_hash.c, for SORT: the value of field f of hash o (NUL-terminated, in
 * place); false when absent. */
bool kv_hash_get(struct kv_store *s, struct kv_obj *o, const uint8_t *f, size_t fn, const uint8_t **v, size_t *vn);
/* t_list.c, for SORT: element i (< the list's length) of list o, in place;
 * an empty list with room for n; an element at the tail (0 or -ENOMEM). */
void kv_list_at(const struct kv_obj *o, uint64_t i, const uint8_t **p, size_t *n);
struct kv_obj *kv_list_new(struct kv_store *s, uint64_t n);
int kv_list_append(struct kv_store *s, struct kv_obj *o, const uint8_t *p, size_t n);
/* psort.c: the sorts whose order of equal elements replies show, as
 * Redis's. cmp returns <0, 0, >0; elements of at most 64 bytes.
 * kv_sort_stable: glibc's qsort (a merge sort: equal elements keep their
 * order), 0 or -ENOMEM (n elements of scratch). kv_sort_partial: Redis's
 * pqsort, positions lrange..rrange (lrange <= rrange < n) end up as a full
 * sort would leave them, the others partly sorted, equal elements where
 * Redis's moves leave them; no allocation, bounded stack. */
typedef int (*kv_cmp_fn)(const void *a, const void *b, void *arg);
int kv_sort_stable(struct kv_store *s, void *base, size_t n, size_t size, kv_cmp_fn cmp, void *arg);
void kv_sort_partial(void *base, size_t n, size_t size, kv_cmp_fn cmp, void *arg, size_t lrange, size_t rrange);
/* t_sort.c */
KV_CMD(sort); KV_CMD(sort_ro);
/* t_geo.c */
KV_CMD(geoadd); KV_CMD(geodist); KV_CMD(geohash); KV_CMD(geopos); KV_CMD(georadius); KV_CMD(georadius_ro);
KV_CMD(georadiusbymember); KV_CMD(georadiusbymember_ro); KV_CMD(geosearch); KV_CMD(geosearchstore);
/* t_zset.c, for t_geo.c: an empty sorted set (kv_obj) to fill with
 * kv_zset_insert, and its store into key argument di (settled to the
 * encoding Redis converts a built set to; the key deleted when the set is
 * empty; replies the count; o taken over). */
struct kv_obj *kv_zset_obj_new(struct kv_store *s);
int kv_zset_store(struct kv_ctx *c, uint32_t di, struct kv_obj *o);
/* script.c */
KV_CMD(eval); KV_CMD(evalsha); KV_CMD(eval_ro); KV_CMD(evalsha_ro); KV_CMD(script);

/* SCAN-family argument parsing shared by SCAN, HSCAN, SSCAN, ZSCAN:
 * arguments from index i: [MATCH pattern] [COUNT n] [TYPE t] (TYPE only
 * when allow_type). Replies the error and returns false on bad input. */
struct kv_scan_opts {
    const uint8_t *match;
    size_t match_len; /* match NULL: every element */
    uint64_t count;   /* default 10 */
    int type;         /* -1: any */
};
bool kv_scan_args(struct kv_ctx *c, uint32_t i, bool allow_type, struct kv_scan_opts *o);
/* What HSCAN, SSCAN and ZSCAN return: the entries opt->match takes, in
 * the order visited (v: kv_alloc'd, n of them; the caller kv_frees v, also
 * on error). kv_scan_take is the visitor for kv_dict_scan (0 or -ENOMEM). */
struct kv_scan_acc {
    struct kv_store *s;
    const struct kv_scan_opts *opt;
    struct kv_dent **v;
    uint64_t n, cap;
};
int kv_scan_take(void *acc, struct kv_dent *e);
/* A table walked from cursor (a hash value) by kv_dict_scan for
 * opt->count entries: *next is the cursor to go on from (0: the end).
 * Where it stops depends on the contents only, so every replica replies
 * alike. 0 or -ENOMEM. */
int kv_dict_scan_match(struct kv_store *s, struct kv_dict *d, uint64_t cursor, struct kv_scan_acc *a, uint64_t *next);
/* Parse argument i as a SCAN cursor (unsigned decimal); replies "ERR
 * invalid cursor" and returns false when it is not one. */
bool kv_arg_cursor(struct kv_ctx *c, uint32_t i, uint64_t *cursor);

#endif
