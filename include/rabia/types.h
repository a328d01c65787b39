/* Shared value types of rabia: ids, the decoded message, error codes. */
#ifndef RABIA_TYPES_H
#define RABIA_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RABIA_MAX_REPLICAS 7

/* Client session ids (core/rsm.h): bit 63 marks a connection-scoped client
 * (a RESP connection; evicted first, opened by its first request), bit 62 a
 * session named by the log (the reply to an OPEN). A client's OPEN nonce
 * has both clear. */
#define RABIA_SESSION_CONN_SCOPED (1ull << 63)
#define RABIA_SESSION_ASSIGNED (1ull << 62)
#define RABIA_SESSION_NONCE_MASK (~(RABIA_SESSION_CONN_SCOPED | RABIA_SESSION_ASSIGNED))
#define RABIA_TO_ALL 0xFFu           /* rabia_send.to: every peer but self */
#define RABIA_PROTOCOL_VERSION 3 /* 2: batch bodies carry the proposer's time; 3: XXH3 frame checksums */
#define RABIA_MAX_FRAME (16u << 20)  /* largest frame the codec accepts */

/* Errors are negative errno values, or these (outside errno's range). */
enum rabia_err {
    RABIA_OK = 0,
    RABIA_E_CHECKSUM = -1001, /* frame checksum mismatch */
    RABIA_E_VERSION = -1002,  /* unknown protocol version */
    RABIA_E_TYPE = -1003,     /* unknown message type */
    RABIA_E_MALFORMED = -1004,/* a field is out of range or lengths disagree */
    RABIA_E_TOOBIG = -1005,   /* frame larger than RABIA_MAX_FRAME */
    RABIA_E_FULL = -1006,     /* a bounded table is full: retry later */
    RABIA_E_CONFIG = -1007,   /* invalid configuration */
    RABIA_E_INVARIANT = -1008,/* an internal invariant failed */
    RABIA_E_FEATURE = -1009,  /* the cluster agreed a feature level this build lacks */
};
const char *rabia_strerror(int err);

/* A batch is named by the replica that formed it (its proxy), the proxy's
 * incarnation (a number that grows every time the proxy process starts, so
 * ids never repeat after a restart that lost memory) and a sequence number
 * that grows by one per batch within the incarnation. */
struct rabia_batch_id {
    uint64_t incarnation;
    uint64_t seq;
    uint8_t proxy;
};

static inline bool rabia_batch_id_eq(const struct rabia_batch_id *a,
                                     const struct rabia_batch_id *b)
{
    return a->proxy == b->proxy && a->seq == b->seq &&
           a->incarnation == b->incarnation;
}

/* Vote/state values on the wire. */
enum { RABIA_V0 = 0, RABIA_V1 = 1, RABIA_VQ = 2 /* "?" */ };

enum rabia_msg_type {
    /* peer <-> peer: consensus */
    RABIA_MSG_BATCH = 1,      /* id, body: a proxy's batch, sent to all */
    RABIA_MSG_PROPOSAL = 2,   /* slot, has_id/id: phase-0 proposal (no id = nothing to propose) */
    RABIA_MSG_STATE = 3,      /* slot, phase, value (0/1), has_id/id: majority batch if known */
    RABIA_MSG_VOTE = 4,       /* slot, phase, value (0/1/?), has_id/id as above */
    RABIA_MSG_DECISION = 5,   /* slot, value (0 = null, 1 = batch id), body optional */
    RABIA_MSG_FETCH = 6,      /* slot, has_id/id: send me the decision of slot, or the
                                 body of batch id (a decided slot waits for it) */
    RABIA_MSG_CATCHUP = 7,    /* slot: send me decisions from this slot on */
    RABIA_MSG_HORIZON_REQ = 8,/* u64 = nonce: a restarted replica asks what slots exist */
    RABIA_MSG_HORIZON = 9,    /* u64 = nonce, slot = highest slot the sender knows of */
    RABIA_MSG_SNAP_REQ = 10,  /* slot = requester's next slot to apply */
    RABIA_MSG_SNAP_CHUNK = 11,/* slot = snapshot's last applied slot, u64 = offset,
                                 u64b = total length, body = chunk; u64b = 0 (no
                                 body): the receiver declines the transfer of slot */
    RABIA_MSG_HELLO = 12,     /* connection handshake: u64 = cluster id, u64b =
                                 incarnation, value = protocol version, from = replica id */
    RABIA_MSG_PEER_AUTH = 13, /* cluster-secret challenge-response after HELLO (replica/README.md):
                                 value = step, body = nonce and/or HMAC proof, u64 = refusal cause */
    RABIA_MSG_FIRST_START = 14,/* u64 = incarnation: sent after HELLO (and the cluster-secret proof)
                                 by a replica at its first start that votes at once (an empty data
                                 dir, no --rejoin). A peer that heard this replica before under
                                 another incarnation refuses it: its data dir was lost, and voting
                                 again it could contradict what it sent (replica/README.md) */
    /* client <-> replica */
    RABIA_MSG_CLIENT_REQ = 20,  /* u64 = client id, slot = client seq, u64b = ack
                                   (lowest seq the client still waits for), body = op */
    RABIA_MSG_CLIENT_REPLY = 21,/* u64 = client id, slot = client seq, value = status
                                   (enum rabia_reply_status), body = result */
    RABIA_MSG_STATUS_REQ = 22,  /* ask a replica for its status */
    RABIA_MSG_STATUS = 23,      /* body = text status (key: value lines) */
    RABIA_MSG_CLIENT_AUTH = 24, /* body = u8 user length, user, password: authenticate the
                                   connection (before requests, when the replica requires it) */
    RABIA_MSG_CLIENT_AUTH_REPLY = 25, /* value = 0 accepted / 1 refused, body = the message */
    /* backups (rabia-cli backup): the state at one applied slot, streamed */
    RABIA_MSG_BACKUP_REQ = 28,  /* ask a replica for a consistent snapshot (empty) */
    RABIA_MSG_BACKUP_CHUNK = 29,/* slot = the snapshot's applied slot, u64 = offset,
                                   u64b = total length, value = 0 and body = chunk;
                                   or value = 1 (refused) and body = why, or value = 2:
                                   taken, a snapshot at slot or later follows */
};

/* Decoded form of every message. Fields unused by a type are zero.
 * `body` points into the buffer that was decoded (or into core memory for
 * messages the core emits) and is valid until that buffer is released. */
struct rabia_msg {
    uint8_t type;
    uint8_t from;    /* sender replica id */
    uint8_t value;
    uint8_t has_id;
    uint16_t phase;
    uint64_t slot;
    uint64_t u64;
    uint64_t u64b;
    struct rabia_batch_id id;
    const uint8_t *body;
    uint32_t body_len;
};

enum rabia_reply_status {
    RABIA_REPLY_OK = 0,        /* body = the state machine's result */
    RABIA_REPLY_REDIRECT = 1,  /* not served here; try another replica */
    RABIA_REPLY_SESSION_EXPIRED = 2, /* seq older than the session remembers */
    RABIA_REPLY_BUSY = 3,      /* queue full; retry later (not applied) */
    RABIA_REPLY_BAD_REQUEST = 4,
    RABIA_REPLY_APPLIED_NO_RESULT = 5, /* a retry of an applied request whose
                                          result was too large to keep, or a
                                          result larger than a frame holds
                                          (RABIA_MAX_FRAME): applied, no result */
    RABIA_REPLY_UNAVAILABLE = 6, /* not applied: this replica cannot persist now
                                    (disk full, log error); body = the reason.
                                    Retry later or on another replica */
    RABIA_REPLY_NOAUTH = 7,      /* not applied: the connection has not authenticated
                                    (CLIENT_AUTH); body = the message */
    RABIA_REPLY_NOPERM = 8,      /* not applied: the user may not run it (ACL); body = why */
};

#ifdef __cplusplus
}
#endif
#endif
