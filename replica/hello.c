/* The HELLO rules of peer links (hello.h): pure, shared by rabiad and the
 * simulator. */
#include "hello.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "invariant.h"

void hello_init(struct hello_rules *h, uint64_t cluster_id, uint8_t n, uint8_t self)
{
    RABIA_ASSERT(n >= 1 && n <= RABIA_MAX_REPLICAS && self < n);
    memset(h, 0, sizeof *h);
    h->cluster_id = cluster_id;
    h->n = n;
    h->self = self;
    for (uint8_t p = 0; p < RABIA_MAX_REPLICAS; p++) h->peer[p].conn = HELLO_NO_CONN;
}

enum hello_verdict hello_check(const struct hello_rules *h, const struct rabia_msg *m, uint64_t wall_us)
{
    RABIA_ASSERT(h->n >= 1 && h->self < h->n);
    if (m->type != RABIA_MSG_HELLO) return HELLO_NOT_HELLO;
    if (m->u64 != h->cluster_id) return HELLO_OTHER_CLUSTER;
    if (m->value != RABIA_PROTOCOL_VERSION) return HELLO_OTHER_VERSION;
    if (m->from >= h->n || m->from == h->self) return HELLO_BAD_ID;
    if (m->u64b > wall_us + HELLO_AHEAD_US) return HELLO_AHEAD;
    if (m->u64b < h->peer[m->from].incarnation) return HELLO_OLDER;
    return HELLO_OK;
}

void hello_refusal(const struct hello_rules *h, enum hello_verdict v, const struct rabia_msg *m, uint64_t wall_us,
                   char *buf, size_t len)
{
    RABIA_ASSERT(buf && len > 0);
    switch (v) {
    case HELLO_OK: snprintf(buf, len, "taken"); break;
    case HELLO_NOT_HELLO: snprintf(buf, len, "first frame is %s, not HELLO", rabia_msg_type_name(m->type)); break;
    case HELLO_OTHER_CLUSTER:
        snprintf(buf, len,
                 "cluster id %016" PRIx64 " is not ours (%016" PRIx64 "): check its members list; a machine that "
                 "replaces a member needs the running cluster's id as cluster-id (INFO server rabia_cluster_id); "
                 "replicas restored (--restore) from different backups get different ids: restore every replica "
                 "from the same file",
                 m->u64, h->cluster_id);
        break;
    case HELLO_OTHER_VERSION:
        snprintf(buf, len, "protocol version %u, we speak %u", m->value, RABIA_PROTOCOL_VERSION);
        break;
    case HELLO_BAD_ID: snprintf(buf, len, "claims replica id %u", m->from + 1); break;
    case HELLO_AHEAD:
        snprintf(buf, len,
                 "replica %u announces incarnation %" PRIu64 ", %" PRIu64 " s ahead of this machine's clock; an "
                 "incarnation is the replica's first start's wall clock in microseconds plus its restarts, so one "
                 "of the two clocks is off by over a day (fix it), or this is not that replica",
                 m->from + 1, m->u64b, (m->u64b - wall_us) / 1000000u);
        break;
    case HELLO_OLDER:
        /* the refused replica only sees its connection close: say here what
         * it means and what to do */
        snprintf(buf, len,
                 "replica %u incarnation %" PRIu64 " is older than %" PRIu64
                 ", the newest taken from it: a late connection of an earlier life (once, harmless), two "
                 "processes running as replica %u (the one started last is taken: stop the other; to keep the "
                 "older, start it with an empty data dir and --rejoin), or its data dir restored from an older "
                 "copy (move it aside and start it with --rejoin)",
                 m->from + 1, m->u64b, h->peer[m->from].incarnation, m->from + 1);
        break;
    default: snprintf(buf, len, "verdict %d", (int)v); break;
    }
}

struct hello_taken hello_take(struct hello_rules *h, uint8_t from, uint64_t incarnation, uint32_t conn)
{
    RABIA_ASSERT(from < h->n && from != h->self);
    RABIA_ASSERT(conn != HELLO_NO_CONN);
    struct hello_link *l = &h->peer[from];
    struct hello_taken t = {.drop = HELLO_NO_CONN};
    RABIA_ASSERT(l->conn != conn); /* a connection says HELLO once */
    if (incarnation < l->incarnation) { /* a newer one came in while this one proved the secret */
        t.refused = true;
        return t;
    }
    /* The older connection goes first, with whatever it had unread: once a
     * newer life was heard, nothing of the older may be delivered (rule 3).
     * A reconnect of the same life replaces its connection the same way. */
    if (l->conn != HELLO_NO_CONN && !(h->bugs & HELLO_BUG_KEEP_OLD)) t.drop = l->conn;
    t.restarted = l->incarnation && incarnation > l->incarnation;
    l->conn = conn;
    l->incarnation = incarnation;
    RABIA_ASSERT(t.drop != conn);
    return t;
}

bool hello_closed(struct hello_rules *h, uint8_t from, uint32_t conn)
{
    RABIA_ASSERT(from < h->n);
    struct hello_link *l = &h->peer[from];
    if (conn == HELLO_NO_CONN || l->conn != conn) return false;
    l->conn = HELLO_NO_CONN; /* the incarnation stays: older lives remain refused */
    return true;
}

uint32_t hello_conn(const struct hello_rules *h, uint8_t from)
{
    RABIA_ASSERT(from < h->n);
    return h->peer[from].conn;
}

bool hello_heard(struct hello_rules *h, uint8_t from, uint64_t incarnation, uint64_t birth)
{
    RABIA_ASSERT(from < h->n && from != h->self);
    RABIA_ASSERT(incarnation != 0 && birth != 0 && birth <= incarnation);
    struct hello_link *l = &h->peer[from];
    RABIA_ASSERT(l->incarnation == incarnation); /* after hello_take */
    if (l->first_heard) return false;
    l->first_heard = birth;
    return true;
}

bool hello_first_start_ok(const struct hello_rules *h, uint8_t from, uint64_t birth)
{
    RABIA_ASSERT(from < h->n && from != h->self);
    const struct hello_link *l = &h->peer[from];
    /* never heard, or the data dir first heard (its first start, a
     * reconnect or a restart on it): anything else is a data dir that
     * began again from nothing after an earlier life was heard */
    return l->first_heard == 0 || l->first_heard == birth;
}

void hello_first_start_refusal(const struct hello_rules *h, uint8_t from, uint64_t birth, uint64_t incarnation,
                               char *buf, size_t len)
{
    RABIA_ASSERT(from < h->n && buf && len > 0);
    char since[64] = "";
    if (incarnation != birth) snprintf(since, sizeof since, "; restarted on it since: incarnation %" PRIu64, incarnation);
    snprintf(buf, len,
             "replica %u starts as new (incarnation %" PRIu64 ": an empty data dir, no --rejoin%s), but this replica "
             "heard it before (first as incarnation %" PRIu64 "): its data dir was lost or emptied, and voting "
             "from nothing it could contradict what it sent before the loss. Stop it, empty its data dir (what it "
             "wrote there since counts for nothing: a restart on it is refused too) and start it again with "
             "--rejoin and cluster-id 0x%016" PRIx64 " (it then recovers from its peers); a data dir that was only "
             "moved: put it back",
             from + 1, birth, since, h->peer[from].first_heard, h->cluster_id);
}
