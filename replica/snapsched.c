/* When to snapshot (snapsched.h): pure, shared by rabiad and the simulator. */
#include "snapsched.h"

#include <string.h>

#include "invariant.h"

void snapsched_init(struct snapsched *s, const struct snapsched_cfg *cfg, uint64_t last_slot, uint64_t log_bytes)
{
    RABIA_ASSERT(cfg->max_log_bytes > 0);
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->last_slot = last_slot;
    s->log_at_start = log_bytes;
}

bool snapsched_due(struct snapsched *s, uint64_t applied, uint64_t log_bytes, uint64_t now_us, bool recovering)
{
    RABIA_ASSERT(log_bytes >= s->log_at_start);
    if (s->running) return false;
    /* while recovering the log must keep its first record (it says so) */
    if (recovering || applied <= s->last_slot) return false;
    bool by_size = log_bytes - s->log_at_start >= s->cfg.max_log_bytes || s->forced;
    if (!s->last_us) s->last_us = now_us; /* the interval counts from the start */
    RABIA_ASSERT(now_us >= s->last_us); /* a monotonic clock */
    bool by_time = s->cfg.interval_us && now_us - s->last_us >= s->cfg.interval_us;
    if (!by_size && !by_time) return false;
    if (s->failed_in_row && now_us - s->last_us < snapsched_retry_wait(s)) return false;
    return true;
}

uint64_t snapsched_retry_wait(const struct snapsched *s)
{
    if (!s->failed_in_row) return 0;
    uint64_t w = s->cfg.retry_us;
    /* bounded: at most 63 doublings, and none past retry_max_us */
    for (uint32_t i = 1; i < s->failed_in_row && i < 63 && w < s->cfg.retry_max_us; i++) w *= 2;
    if (s->cfg.retry_max_us > s->cfg.retry_us && w > s->cfg.retry_max_us) w = s->cfg.retry_max_us;
    RABIA_ASSERT(w >= s->cfg.retry_us);
    return w;
}

void snapsched_began(struct snapsched *s, uint64_t applied, uint64_t log_bytes, uint64_t now_us)
{
    RABIA_ASSERT(!s->running && applied > s->last_slot);
    s->running = true;
    s->running_slot = applied;
    s->running_us = now_us;
    s->running_log = log_bytes;
    s->running_forced = s->forced;
    s->forced = false;
}

uint64_t snapsched_finished(struct snapsched *s, bool ok, uint64_t now_us)
{
    RABIA_ASSERT(s->running);
    s->running = false;
    s->last_us = now_us; /* the interval counts from the end of the last one */
    if (!ok) {
        /* as if it had not begun (the log's growth still counts), but no
         * retry for retry_us */
        s->failures++;
        s->failed_in_row++;
        s->forced |= s->running_forced;
        return 0;
    }
    s->taken++;
    s->failed_in_row = 0;
    s->log_at_start = s->running_log;
    if (s->running_slot > s->last_slot) s->last_slot = s->running_slot;
    return s->last_slot;
}

void snapsched_adopted(struct snapsched *s, uint64_t slot)
{
    if (slot > s->last_slot) s->last_slot = slot;
    /* a peer's snapshot written to the snap folder: what made this
     * replica's own fail (a full disk, the folder) is gone, as after a
     * success; the backoff (up to retry_max_us) stayed, and the next own
     * snapshot waited it out after the cause was fixed (found by review) */
    s->failed_in_row = 0;
}

void snapsched_soon(struct snapsched *s) { s->forced = true; }
