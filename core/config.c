/* Consensus settings: defaults and checks with messages that name the fix. */
#include "rabia/core.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "invariant.h"

/* ------------------------------------------------------------------ */
/* configuration */

void rabia_config_default(struct rabia_config *cfg, uint8_t n, uint8_t self)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->n = n;
    cfg->self = self;
    cfg->epoch = 1;
    cfg->cluster_seed = 0x5261626961ull; /* "Rabia" */
    cfg->incarnation = 1;
    cfg->window = 1;
    cfg->max_batch_bytes = 64 * 1024;
    cfg->max_pending = 64;
    cfg->log_retain = 1024;
    cfg->catchup_chunk = 32;
    cfg->retransmit_us = 20000;
    cfg->policy = RABIA_POLICY_GLOBAL;
}

int rabia_config_check(const struct rabia_config *cfg, char *why, size_t len)
{
#define BAD(...)                                  \
    do {                                          \
        if (why && len) snprintf(why, len, __VA_ARGS__); \
        return RABIA_E_CONFIG;                    \
    } while (0)
    if (cfg->n != 3 && cfg->n != 5 && cfg->n != 7)
        BAD("n = %u: a cluster has 3, 5 or 7 replicas", cfg->n);
    if (cfg->self >= cfg->n)
        BAD("self = %u: replica id must be below n = %u", cfg->self, cfg->n);
    if (cfg->window < 1 || cfg->window > RABIA_MAX_WINDOW)
        BAD("window = %u: must be 1..%u", cfg->window, RABIA_MAX_WINDOW);
    if (cfg->policy > RABIA_POLICY_CLASSES)
        BAD("policy = %u: use 0 (global) or 1 (classes)", cfg->policy);
    if (cfg->policy == RABIA_POLICY_CLASSES && cfg->window < cfg->n)
        BAD("policy classes needs window >= n (window = %u, n = %u)", cfg->window, cfg->n);
    if (cfg->max_pending < 1 || cfg->max_pending > RABIA_MAX_PENDING)
        BAD("max_pending = %u: must be 1..%u", cfg->max_pending, RABIA_MAX_PENDING);
    if (cfg->max_batch_bytes < 16 || cfg->max_batch_bytes > RABIA_MAX_FRAME - 256)
        BAD("max_batch_bytes = %u: must be 16..%u", cfg->max_batch_bytes, RABIA_MAX_FRAME - 256);
    if (cfg->log_retain < 1 || cfg->log_retain > (1u << 20))
        BAD("log_retain = %u: must be 1..%u", cfg->log_retain, 1u << 20);
    if (cfg->catchup_chunk < 1 || cfg->catchup_chunk > 4096)
        BAD("catchup_chunk = %u: must be 1..4096", cfg->catchup_chunk);
    if (cfg->retransmit_us < 100)
        BAD("retransmit_us = %llu: must be at least 100", (unsigned long long)cfg->retransmit_us);
    if (cfg->incarnation == 0) BAD("incarnation must be > 0");
    if (cfg->incarnation & RABIA_READ_NONCE) BAD("incarnation must be below 2^63 (read-index rounds use the top bit)");
    return 0;
#undef BAD
}
