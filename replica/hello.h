/* replica/hello.h: the HELLO rules of peer links without I/O, driven by
 * rabiad (replica.c, auth.c) and by the simulator alike.
 *
 * Every replica dials every peer and receives each peer's messages on the
 * connection that peer dialed to it. Such a connection opens with HELLO
 * (cluster id, replica id, protocol version, incarnation). hello_check
 * says whether a HELLO may be taken; hello_take installs its connection as
 * the peer's, and says which older connection of that peer goes with
 * whatever it still held unread: include/rabia/core.h rule 3, messages of
 * a dead incarnation are never delivered after its successor was heard.
 * An incarnation older than the newest one heard from that replica is
 * refused until this replica restarts (a restart must never be undone by a
 * late connection of the life before it).
 *
 * A replica whose data dir was lost and that starts again without --rejoin
 * looks like a new member: a first start, voting at once. What it sent in
 * its life before is gone with its log, so it could vote against it (core.h
 * rule 2). Such a start says so after HELLO (RABIA_MSG_FIRST_START), and a
 * peer that heard it before under another incarnation refuses it: each
 * replica keeps the incarnation it first heard from every peer
 * (persist/peers_seen.c; hello_heard, hello_first_start_ok).
 *
 * No allocation, no system call, no clock read: the driver passes the wall
 * clock and names its connections with any 32-bit value but HELLO_NO_CONN. */
#ifndef RABIA_REPLICA_HELLO_H
#define RABIA_REPLICA_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rabia/types.h"

#define HELLO_NO_CONN UINT32_MAX
/* An incarnation is its replica's first start's wall clock in microseconds
 * plus its restarts (persist/incarnation.c): one more than a day ahead of
 * this machine's clock is refused. Taken as is, a forged HELLO with 2^64-1
 * made every later HELLO of the real replica "older" until this replica
 * restarted. */
#define HELLO_AHEAD_US (86400ull * 1000000u)

enum hello_bug {
    HELLO_BUG_KEEP_OLD = 1u << 0, /* test builds: a new incarnation's connection leaves the old one delivering */
};

struct hello_link {
    uint32_t conn;         /* the peer's incoming connection in use, or HELLO_NO_CONN */
    uint64_t incarnation;  /* the newest incarnation taken from it (0: none yet) */
    uint64_t first_heard;  /* the first incarnation this data dir ever took from it (0: never), kept
                              on disk by the driver (persist/peers_seen.c) */
};

struct hello_rules {
    uint64_t cluster_id;
    uint8_t n, self;
    uint32_t bugs; /* enum hello_bug */
    struct hello_link peer[RABIA_MAX_REPLICAS];
};

enum hello_verdict {
    HELLO_OK = 0,
    HELLO_NOT_HELLO,     /* the first frame is something else */
    HELLO_OTHER_CLUSTER, /* another cluster id: another members list */
    HELLO_OTHER_VERSION, /* another protocol version */
    HELLO_BAD_ID,        /* no such replica, or this replica's own id */
    HELLO_AHEAD,         /* an incarnation over HELLO_AHEAD_US ahead of the wall clock */
    HELLO_OLDER,         /* older than the incarnation already taken from that replica */
};

/* What taking a HELLO did. */
struct hello_taken {
    bool refused;   /* a newer incarnation was taken meanwhile (hello_check passed before a handshake) */
    uint32_t drop;  /* the connection it replaces: close it, discarding what it held unread, before
                       anything of the new one is delivered (HELLO_NO_CONN: none) */
    bool restarted; /* the peer came back with a newer incarnation */
};

void hello_init(struct hello_rules *h, uint64_t cluster_id, uint8_t n, uint8_t self);
/* Whether m, the first frame on a peer-port connection, may be taken;
 * wall_us is this machine's wall clock. */
enum hello_verdict hello_check(const struct hello_rules *h, const struct rabia_msg *m, uint64_t wall_us);
/* The reason of a refusal, for the log line (no trailing period). */
void hello_refusal(const struct hello_rules *h, enum hello_verdict v, const struct rabia_msg *m, uint64_t wall_us,
                   char *buf, size_t len);
/* conn becomes `from`'s connection with `incarnation` (a HELLO that
 * hello_check passed, after the cluster secret's proof when one is set). */
struct hello_taken hello_take(struct hello_rules *h, uint8_t from, uint64_t incarnation, uint32_t conn);
/* conn closed; true if it was `from`'s connection in use. */
bool hello_closed(struct hello_rules *h, uint8_t from, uint32_t conn);
/* `from`'s connection in use, or HELLO_NO_CONN. */
uint32_t hello_conn(const struct hello_rules *h, uint8_t from);
/* `from` was taken with `incarnation` (hello_take did not refuse it):
 * true when it is the first life ever heard from it, noted as `birth` (the
 * incarnation its data dir began with at a first start, said in
 * FIRST_START; else `incarnation`), which the driver then keeps on disk
 * (it is what hello_first_start_ok compares with). */
bool hello_heard(struct hello_rules *h, uint8_t from, uint64_t incarnation, uint64_t birth);
/* `from` says its data dir began at a first start with incarnation
 * `birth` and it votes at once (RABIA_MSG_FIRST_START, at that start and
 * at every restart on that data dir, so that a life refused here is not
 * taken once restarted on what it wrote meanwhile): false when an earlier
 * life of it was heard, i.e. its data dir was lost and it must recover
 * (--rejoin on an empty one). The
 * driver asks before it takes a new life's connection (hello_take), so
 * that a refused life never counts: its connection closes untaken, the
 * running life keeps its own, and the old data dir put back and started
 * (an older incarnation) is not refused as older. */
bool hello_first_start_ok(const struct hello_rules *h, uint8_t from, uint64_t birth);
/* The refusal's reason for the log line (no trailing period); incarnation:
 * the life that said it. */
void hello_first_start_refusal(const struct hello_rules *h, uint8_t from, uint64_t birth, uint64_t incarnation,
                               char *buf, size_t len);

#endif
