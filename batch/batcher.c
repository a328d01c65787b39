/* Adaptive batcher (see batcher.h). */
#include "batcher.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "invariant.h"

void batcher_cfg_default(struct batcher_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_bytes = 64 * 1024;
    cfg->max_reqs = 4096;
    cfg->timeout_us = 500;
    cfg->max_cut = 4;
    cfg->max_pending_bytes = 0;
    cfg->adaptive = true;
}

static int slot_init(struct batcher_slot *s, uint32_t max_bytes)
{
    memset(s, 0, sizeof *s);
    if (rabia_buf_reserve(&s->body, max_bytes))
        return -ENOMEM;
    return rabia_batch_init(&s->body);
}

int batcher_init(struct batcher *b, const struct batcher_cfg *cfg)
{
    memset(b, 0, sizeof *b);
    if (cfg->max_bytes < RABIA_BATCH_HEADER + RABIA_BATCH_REQ_HEADER || cfg->max_bytes > RABIA_MAX_BATCH_BODY ||
        cfg->max_reqs == 0 || cfg->max_cut == 0)
        return RABIA_E_CONFIG;
    b->cfg = *cfg;
    if (b->cfg.max_pending_bytes == 0)
        b->cfg.max_pending_bytes = (size_t)(cfg->max_cut + 1) * cfg->max_bytes;
    if (b->cfg.max_pending_bytes < cfg->max_bytes)
        return RABIA_E_CONFIG;
    b->cut = calloc(cfg->max_cut, sizeof *b->cut);
    if (!b->cut)
        return -ENOMEM;
    int rc = slot_init(&b->open, cfg->max_bytes);
    for (uint32_t i = 0; !rc && i < cfg->max_cut; i++)
        rc = slot_init(&b->cut[i], cfg->max_bytes);
    if (rc) {
        batcher_free(b);
        return -ENOMEM;
    }
    return 0;
}

void batcher_free(struct batcher *b)
{
    rabia_buf_free(&b->open.body);
    if (b->cut)
        for (uint32_t i = 0; i < b->cfg.max_cut; i++)
            rabia_buf_free(&b->cut[i].body);
    free(b->cut);
    b->cut = NULL;
    b->n_cut = 0;
}

/* Move the open batch to the cut FIFO (swapping buffers: no copy, no
 * allocation). -ENOBUFS when the FIFO is full. */
static int cut_open(struct batcher *b, uint64_t now_us, uint64_t *reason)
{
    RABIA_ASSERT(b->open.count > 0);
    if (b->n_cut == b->cfg.max_cut)
        return -ENOBUFS;
    struct batcher_slot *dst = &b->cut[(b->head + b->n_cut) % b->cfg.max_cut];
    struct batcher_slot tmp = *dst;
    rabia_batch_set_time(&b->open.body, b->wall_ms);
    *dst = b->open;
    b->open = tmp;
    b->open.count = 0;
    b->open.req_bytes = 0;
    int rc = rabia_batch_init(&b->open.body); /* capacity kept: cannot fail */
    RABIA_ASSERT(rc == 0);
    b->n_cut++;
    (*reason)++;
    uint64_t wait = now_us > b->oldest_us ? now_us - b->oldest_us : 0;
    b->stats.wait_us_sum += wait;
    if (wait > b->stats.wait_us_max)
        b->stats.wait_us_max = wait;
    return 0;
}

int batcher_add(struct batcher *b, const struct rabia_req *r, uint64_t now_us)
{
    size_t need = RABIA_BATCH_REQ_HEADER + (size_t)r->op_len;
    if (RABIA_BATCH_HEADER + need > b->cfg.max_bytes)
        return -EMSGSIZE;
    if (b->pending_bytes + need > b->cfg.max_pending_bytes) {
        b->stats.refused++;
        return -ENOBUFS;
    }
    /* The open batch cannot take it (too many requests, or too many bytes):
     * it leaves first. */
    if (b->open.count > 0 &&
        (b->open.count >= b->cfg.max_reqs || b->open.body.len + need > b->cfg.max_bytes) &&
        cut_open(b, now_us, &b->stats.cut_full) < 0) {
        b->stats.refused++;
        return -ENOBUFS;
    }
    int rc = rabia_batch_append(&b->open.body, r);
    if (rc)
        return rc == RABIA_E_TOOBIG ? -EMSGSIZE : rc;
    if (b->open.count++ == 0)
        b->oldest_us = now_us;
    b->open.req_bytes += need;
    b->pending_bytes += need;
    /* Full (no room even for an empty op): cut now if a slot is free; if
     * not, it is cut as soon as one is (batcher_poll). */
    if (b->open.count >= b->cfg.max_reqs ||
        b->open.body.len + RABIA_BATCH_REQ_HEADER > b->cfg.max_bytes)
        (void)cut_open(b, now_us, &b->stats.cut_full);
    return 0;
}

static bool open_full(const struct batcher *b)
{
    return b->open.count >= b->cfg.max_reqs ||
           b->open.body.len + RABIA_BATCH_REQ_HEADER > b->cfg.max_bytes;
}

static bool timed_out(const struct batcher *b, uint64_t now_us)
{
    return now_us >= b->oldest_us && now_us - b->oldest_us >= b->cfg.timeout_us;
}

bool batcher_ready(const struct batcher *b, uint64_t now_us, bool core_idle)
{
    if (b->n_cut > 0)
        return true;
    return b->open.count > 0 &&
           (open_full(b) || timed_out(b, now_us) || (b->cfg.adaptive && core_idle));
}

const struct rabia_buf *batcher_poll(struct batcher *b, uint64_t now_us, bool core_idle)
{
    if (b->open.count > 0 && b->n_cut < b->cfg.max_cut) {
        if (open_full(b))
            (void)cut_open(b, now_us, &b->stats.cut_full);
        else if (timed_out(b, now_us))
            (void)cut_open(b, now_us, &b->stats.cut_timeout);
        else if (b->cfg.adaptive && core_idle && b->n_cut == 0)
            (void)cut_open(b, now_us, &b->stats.cut_idle);
    }
    return batcher_peek(b);
}

const struct rabia_buf *batcher_peek(const struct batcher *b)
{
    return b->n_cut ? &b->cut[b->head].body : NULL;
}

void batcher_pop(struct batcher *b)
{
    RABIA_ASSERT(b->n_cut > 0 && "batcher_pop without a cut batch");
    struct batcher_slot *s = &b->cut[b->head];
    RABIA_ASSERT(b->pending_bytes >= s->req_bytes);
    b->pending_bytes -= s->req_bytes;
    b->stats.batches++;
    b->stats.requests += s->count;
    b->stats.bytes += s->body.len;
    if (s->count > b->stats.max_batch_reqs)
        b->stats.max_batch_reqs = s->count;
    s->count = 0;
    s->req_bytes = 0;
    int rc = rabia_batch_init(&s->body);
    RABIA_ASSERT(rc == 0);
    b->head = (b->head + 1) % b->cfg.max_cut;
    b->n_cut--;
}

int batcher_flush(struct batcher *b, uint64_t now_us)
{
    if (b->open.count == 0)
        return 0;
    return cut_open(b, now_us, &b->stats.cut_flush);
}

uint64_t batcher_deadline(const struct batcher *b)
{
    if (b->open.count == 0)
        return UINT64_MAX;
    return b->oldest_us > UINT64_MAX - b->cfg.timeout_us ? UINT64_MAX
                                                         : b->oldest_us + b->cfg.timeout_us;
}

void batcher_set_wall(struct batcher *b, uint64_t wall_ms)
{
    b->wall_ms = wall_ms;
}

uint32_t batcher_open_count(const struct batcher *b)
{
    return b->open.count;
}

bool batcher_joins_open(const struct batcher *b, size_t op_len)
{
    return b->open.count > 0 && b->open.count < b->cfg.max_reqs &&
           op_len <= b->cfg.max_bytes && b->open.body.len + RABIA_BATCH_REQ_HEADER + op_len <= b->cfg.max_bytes;
}

uint64_t batcher_open_no(const struct batcher *b)
{
    return b->stats.cut_full + b->stats.cut_timeout + b->stats.cut_idle + b->stats.cut_flush;
}

uint32_t batcher_cut_count(const struct batcher *b)
{
    return b->n_cut;
}

const struct batcher_stats *batcher_stats(const struct batcher *b)
{
    return &b->stats;
}

double batcher_avg_reqs(const struct batcher *b)
{
    return b->stats.batches ? (double)b->stats.requests / (double)b->stats.batches : 0.0;
}
