/* Adaptive batcher: client requests in, batch bodies (core/codec.h format)
 * out, to submit to the consensus core as RABIA_EV_SUBMIT.
 *
 * A batch is cut when
 *   - it is full: the next request would not fit in max_bytes, or it holds
 *     max_reqs requests;
 *   - its oldest request has waited timeout_us;
 *   - adaptive: the core is idle (no slot in flight) and no cut batch is
 *     waiting: then there is nothing to wait for, so the batch goes at once.
 * Light load thus pays no batching delay (every request finds the core idle
 * and leaves alone), and under heavy load requests pile up while a slot is
 * being decided and leave together as one big batch when it is done: the
 * batch size follows the load without any tuning. See batch/README.md for
 * the measurements.
 *
 * Cut batches wait in a small FIFO (max_cut) until the caller has submitted
 * them: batcher_poll() / batcher_peek() give the oldest one, batcher_pop()
 * drops it once the core took it. When the core refuses (RABIA_E_FULL) the
 * caller just leaves it there and retries after the core made progress.
 * When the FIFO is full and the open batch is full too, batcher_add()
 * refuses with -ENOBUFS: stop reading from clients (backpressure).
 *
 * Single-threaded: one batcher per event loop. Pure C, no syscalls, no
 * clock: the caller passes the time. Memory is allocated in batcher_init
 * only ((max_cut + 1) x max_bytes).
 */
#ifndef RABIA_BATCH_BATCHER_H
#define RABIA_BATCH_BATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h" /* struct rabia_req, the batch body format */
#include "rabia/state_machine.h"

#ifdef __cplusplus
extern "C" {
#endif

struct batcher_cfg {
    uint32_t max_bytes;        /* largest batch body (<= RABIA_MAX_BATCH_BODY and
                                  <= the core's max_batch_bytes) */
    uint32_t max_reqs;         /* cut at this many requests (>= 1) */
    uint64_t timeout_us;       /* cut when the oldest request waited this long */
    uint32_t max_cut;          /* cut batches held for the caller (>= 1) */
    size_t max_pending_bytes;  /* requests held (open + cut), counted as
                                  28 + op_len each; 0 = (max_cut + 1) * max_bytes */
    bool adaptive;             /* cut at once when the core is idle */
};

/* max_bytes 64 KiB (the core's default), max_reqs 4096, timeout 500 us,
 * max_cut 4, max_pending_bytes 0 (derived), adaptive. */
void batcher_cfg_default(struct batcher_cfg *cfg);

struct batcher_stats {
    uint64_t batches;        /* batches popped (taken by the core) */
    uint64_t requests;       /* requests in them */
    uint64_t bytes;          /* their body bytes */
    uint64_t cut_full;       /* cuts because max_bytes or max_reqs was reached */
    uint64_t cut_timeout;    /* cuts because the oldest request waited timeout_us */
    uint64_t cut_idle;       /* adaptive cuts: the core was idle */
    uint64_t cut_flush;      /* batcher_flush */
    uint64_t refused;        /* batcher_add returned -ENOBUFS */
    uint64_t wait_us_sum;    /* over cut batches: how long the oldest request waited */
    uint64_t wait_us_max;
    uint32_t max_batch_reqs; /* largest batch popped */
};

struct batcher_slot {
    struct rabia_buf body;
    uint32_t count;
    size_t req_bytes;        /* sum of 28 + op_len */
};

struct batcher {
    struct batcher_cfg cfg;
    struct batcher_slot open;   /* the batch being filled (count 0: empty) */
    uint64_t oldest_us;         /* arrival of the open batch's first request */
    struct batcher_slot *cut;   /* FIFO of cut batches, max_cut slots */
    uint32_t head, n_cut;
    size_t pending_bytes;       /* req_bytes of open + cut */
    struct batcher_stats stats;
    uint64_t wall_ms;           /* stamped on each batch as it is cut */
};

/* 0, RABIA_E_CONFIG for a bad cfg (max_bytes < 12 + 28 or above
 * RABIA_MAX_BATCH_BODY, max_reqs or max_cut 0, max_pending_bytes below
 * max_bytes) or -ENOMEM. */
int batcher_init(struct batcher *b, const struct batcher_cfg *cfg);
void batcher_free(struct batcher *b);

/* Append a request (its op is copied). 0; -ENOBUFS when the pending bound
 * is reached or the open batch is full and no cut slot is free (retry after
 * batcher_pop: backpressure); -EMSGSIZE when the request alone would not
 * fit in max_bytes. A request that fills the batch cuts it at once. */
int batcher_add(struct batcher *b, const struct rabia_req *r, uint64_t now_us);

/* The wall clock (Unix ms) stamped on the batches cut from now on: the
 * state machine's clock (rabia_sm_batch.time_ms). The caller sets it before
 * batcher_add / batcher_poll / batcher_flush; the batcher reads no clock. */
void batcher_set_wall(struct batcher *b, uint64_t wall_ms);

/* Whether batcher_poll would return a batch now. core_idle: no slot of the
 * consensus core in flight (the caller knows). */
bool batcher_ready(const struct batcher *b, uint64_t now_us, bool core_idle);

/* Cut the open batch if it is due (timeout, or adaptive and core_idle with
 * no cut batch waiting), then return the oldest cut batch, or NULL. The
 * body stays valid and unchanged until batcher_pop. */
const struct rabia_buf *batcher_poll(struct batcher *b, uint64_t now_us, bool core_idle);
/* The oldest cut batch without cutting anything, or NULL. */
const struct rabia_buf *batcher_peek(const struct batcher *b);
/* Drop the oldest cut batch: the core accepted it. There must be one. */
void batcher_pop(struct batcher *b);
/* Cut the open batch now if it holds anything (shutdown, tests). 0 or
 * -ENOBUFS when no cut slot is free. */
int batcher_flush(struct batcher *b, uint64_t now_us);

/* When the open batch's timeout expires: the loop's timer. UINT64_MAX when
 * it is empty. (Cut batches refused by the core are retried when the core
 * makes progress, not on a timer.) */
uint64_t batcher_deadline(const struct batcher *b);

/* Requests in the open batch / cut batches waiting. */
uint32_t batcher_open_count(const struct batcher *b);
/* Whether a request with an op of op_len bytes would go into the open batch
 * as it is, not into a new one (batcher_add cuts a batch that cannot take
 * it first): a client whose earlier requests wait in the open batch keeps
 * its order only while its next ones join them (replica/app.c). */
bool batcher_joins_open(const struct batcher *b, size_t op_len);
uint32_t batcher_cut_count(const struct batcher *b);
/* The batch being filled, numbered by the batches cut before it: a client
 * whose requests went in while it was N waits for their answers once it
 * is not N any more (its batch was cut; replica/clients.c, app.c). */
uint64_t batcher_open_no(const struct batcher *b);
const struct batcher_stats *batcher_stats(const struct batcher *b);
/* Average requests per popped batch (0 before the first). */
double batcher_avg_reqs(const struct batcher *b);

#ifdef __cplusplus
}
#endif
#endif
