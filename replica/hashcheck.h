/* Cross-replica state checks (hashcheck.c): every HASHCHECK_EVERY slots a
 * replica notes its state hash, sends its newest notes to its peers and
 * compares theirs with its own, as etcd's corruption check compares hashes
 * of its members' stores at one revision. */
#ifndef RABIA_REPLICA_HASHCHECK_H
#define RABIA_REPLICA_HASHCHECK_H
#include <stdbool.h>
#include <stdint.h>

#include "rabia/types.h"

#define HASHCHECK_EVERY 1024u /* slots between two checkpoints */
#define HASHCHECK_KEEP 16u    /* checkpoints kept, own and each peer's */
#define HASHCHECK_SEND 4u     /* the newest ones sent in one message */

struct hashcheck_point {
    uint64_t slot, hash; /* slot 0: empty */
};

struct hashcheck {
    bool on; /* the state machine keeps its hash (state_hash op): O(1) a checkpoint */
    struct hashcheck_point own[HASHCHECK_KEEP];            /* by slot / EVERY % KEEP */
    struct hashcheck_point peer[RABIA_MAX_REPLICAS][HASHCHECK_KEEP];
    uint64_t sent[RABIA_MAX_REPLICAS]; /* newest own checkpoint sent on the peer's current link */
    uint64_t newest;                   /* newest own checkpoint's slot */
    uint64_t agreed, differed;         /* comparisons, for INFO and /metrics */
    uint64_t agreed_slot;              /* the newest slot a peer agreed on */
    uint64_t diverged_slot;            /* the first slot found to differ (0: none) */
    uint8_t diverged_peers;            /* bit p: peer p's hash differed from ours */
    bool suspect; /* at diverged_slot no majority is known to hold this replica's state: /health 503 */
    uint64_t bad_messages;             /* peers' checkpoint messages that did not parse */
};
#endif
