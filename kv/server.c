/* kv/server.c: commands about the server rather than a type: PING, ECHO,
 * TIME (the log's clock), PUBLISH (through the log) and SWEEP (the
 * replicated expiry sweep). */
#include <string.h>

#include "internal.h"

KV_CMD(ping)
{
    if (c->argc > 2)
        return kv_reply_arity(c);
    if (c->argc == 2)
        return kv_reply_bulk(c, c->argv[1], c->len[1]);
    return kv_reply_status(c, "PONG");
}

KV_CMD(echo)
{
    return kv_reply_bulk(c, c->argv[1], c->len[1]);
}

/* The log's clock, not the replica's: every replica answers alike. */
KV_CMD(time)
{
    char s[32], us[32];
    int sn = kv_fmt_i64(s, (int64_t)(c->s->now_ms / 1000));
    int un = kv_fmt_i64(us, (int64_t)(c->s->now_ms % 1000 * 1000));
    int rc = kv_reply_array(c, 2);
    if (!rc)
        rc = kv_reply_bulk(c, s, (size_t)sn);
    return rc ? rc : kv_reply_bulk(c, us, (size_t)un);
}

/* Every replica delivers the message to its own subscribers, in log
 * order. The count of receivers is not replicated state (subscriptions are
 * per connection, per replica): the reply is 0 here and the front end of
 * the replica that took the PUBLISH answers with its own count. */
KV_CMD(publish)
{
    kv_event(c->s, RABIA_SM_EV_PUBLISH, c->dbi, c->argv[1], c->len[1], c->argv[2], c->len[2]);
    return kv_reply_int(c, 0);
}

/* SWEEP [budget]: reclaim up to budget (default 200) expired keys over
 * all databases. Replicas submit it while keys have expiries; it is an
 * operation like any other, so every replica deletes the same keys at the
 * same point of the log. */
KV_CMD(sweep)
{
    int64_t budget = 200;
    if (c->argc > 2)
        return kv_reply_arity(c);
    if (c->argc == 2 && !kv_arg_i64(c, 1, &budget))
        return 0; /* replied */
    if (budget < 1 || budget > 100000)
        return kv_reply_err(c, "ERR SWEEP budget must be 1..100000");
    uint64_t done = 0;
    for (uint32_t i = 0; i < KV_DBS && done < (uint64_t)budget; i++)
        done += kv_db_sweep(c->s, i, (uint64_t)budget - done);
    return kv_reply_int(c, (int64_t)done);
}

/* UNWATCH queued inside MULTI reaches the store in the transaction: there is
 * nothing to do then (EXEC forgets the watched keys anyway), but its place
 * in EXEC's reply is an OK, as in Redis. */
KV_CMD(unwatch)
{
    return kv_reply_ok(c);
}
