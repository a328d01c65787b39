/* kv/features.c: feature levels (kv/README.md "Feature levels").
 *
 * A command that one build of a cluster knows and another does not is
 * decided like any other operation: the older replicas answer "unknown
 * command" and change nothing, the newer ones carry it out, and their
 * states part. So a command added after the first build with levels
 * carries a level (command.c's table) and stays unknown on every replica
 * until the cluster agreed that level through the log: then every replica
 * runs a build that has it.
 *
 * Two operations, submitted by the replicas themselves (replica/clients.c),
 * never by clients (the front ends refuse KV_F_INTERNAL commands):
 *
 *   FEATURES replica incarnation level
 *       replica (that incarnation of it) runs a build supporting `level`.
 *       Changes nothing, and answers what older builds answer: it reaches
 *       every replica's runtime as an event, and a replica that has heard
 *       every member's current incarnation support level L proposes
 *       FEATURELEVEL L.
 *   FEATURELEVEL level
 *       the agreed level becomes max(agreed, level): state, in snapshots
 *       (version 4) and in the state hash once above 0. A replica whose
 *       build lacks `level` cannot carry out what comes after: its apply
 *       fails with RABIA_E_FEATURE and the replica stops (as etcd stops a
 *       member older than its cluster version) instead of diverging. */
#include "internal.h"
#include "rabia/types.h"

/* Its reply is what a build without levels answers, byte for byte: the
 * reply is kept in its session (core/rsm.c), which snapshots and the state
 * hash cover, and a replica offering a level runs beside older builds. */
KV_CMD(features)
{
    int64_t id, inc, level;
    if (c->argc == 4 && kv_parse_i64(c->argv[1], c->len[1], &id) && kv_parse_i64(c->argv[2], c->len[2], &inc) &&
        kv_parse_i64(c->argv[3], c->len[3], &level) && id >= 1 && id <= RABIA_MAX_REPLICAS && inc >= 0 &&
        level >= 0 && level <= UINT8_MAX && c->s->ev_fn) {
        struct rabia_sm_event ev = {.kind = RABIA_SM_EV_FEATURES, .db = (uint32_t)id, .u1 = (uint64_t)inc,
                                    .u2 = (uint64_t)level};
        c->s->ev_fn(c->s->ev_arg, &ev);
    }
    return kv_reply_unknown(c);
}

KV_CMD(featurelevel)
{
    int64_t level;
    if (!kv_arg_i64(c, 1, &level))
        return 0; /* replied */
    if (level < 0 || level > UINT8_MAX)
        return kv_reply_err(c, "ERR FEATURELEVEL level: out of range");
    if (level > RABIA_KV_FEATURE_LEVEL)
        return RABIA_E_FEATURE; /* every newer replica goes on; this one stops (its caller says why) */
    if (level > c->s->feature_level)
        c->s->feature_level = (uint8_t)level;
    return kv_reply_int(c, c->s->feature_level);
}
