/* Replica configuration: defaults, one key at a time (config file lines and
 * --long-options share this code), whole-config checks. Errors name the key
 * and say how to fix it. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rabia/core.h"
#include "rabia/replica.h"

#include "auth.h"
#include "kv.h"

void rabia_replica_config_default(struct rabia_replica_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->data_dir, sizeof c->data_dir, "./rabia-data");
    snprintf(c->state_machine, sizeof c->state_machine, "kv");
    c->batch_max_bytes = 256 * 1024;
    c->batch_max_reqs = 1024;
    c->batch_timeout_us = 200;
    c->read_index = true;
    c->batch_linger_us = 200; /* core/README.md "Batch linger": +20-27% SET/s at -P 1 with clients spread */
    c->window = 1;
    c->io_threads = -1;
    c->io_threads_pin = true;
    c->policy = RABIA_POLICY_GLOBAL;
    c->max_sessions = 65536;
    c->reply_cache_bytes = 64ull << 20;
    c->log_retain = 1024;
    c->log_retain_bytes = 16u << 20;
    c->retransmit_ms = 20;
    c->max_feature_level = -1;
    c->log_level = RABIA_LOG_INFO;
    c->durability = RABIA_DURABILITY_WAL;
    c->wal_segment_bytes = 64ull << 20;
    c->max_log_size = 256ull << 20;
    c->snapshot_interval_s = 300;
    c->audit_log_max_bytes = 64ull << 20;
    c->audit_log_keep = 4;
    c->maxmemory_clients_pct = 10;
}

#define ERR(...)                                           \
    do {                                                   \
        if (err && errlen) snprintf(err, errlen, __VA_ARGS__); \
        return RABIA_E_CONFIG;                             \
    } while (0)

/* Decimal, or hex with 0x (cluster-id as INFO shows it). Not strtoull's
 * base 0: a leading zero made it octal, so "window 010" ran with 8 and
 * "snapshot-interval-s 0600" with 384, silently. */
static int parse_u64(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!v) return -1;
    int base = 10;
    if (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
        base = 16;
        v += 2;
    }
    if (!(base == 16 ? isxdigit((unsigned char)*v) : isdigit((unsigned char)*v))) return -1; /* no sign, no space */
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, base);
    if (errno || *end || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

/* "host:port" with an optional [v6] host; port 1..65535. */
static int parse_addr(const char *v, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v) return -1;
    size_t hl = (size_t)(colon - v);
    const char *h = v;
    if (*h == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostlen) return -1;
    /* a bracket left over ("[::1:7401", a ']' missing) was part of the
     * host: passed here and by --check-config, refused at the start as
     * "cannot resolve" */
    if (memchr(h, '[', hl) || memchr(h, ']', hl)) return -1;
    uint64_t p;
    if (parse_u64(colon + 1, 1, 65535, &p)) return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (uint16_t)p;
    return 0;
}

static int set_listen(char *dst, const char *key, const char *v, char *err, size_t errlen)
{
    char host[256];
    uint16_t port;
    if (!*v || !strcmp(v, "off")) {
        dst[0] = 0;
        return 0;
    }
    if (parse_addr(v, host, sizeof host, &port))
        ERR("%s = '%s': expected host:port (e.g. 127.0.0.1:7401) or 'off'", key, v);
    /* kept as host:port without the brackets of "[v6]:port": the listeners
     * split at the last ':' and resolved "[::1]", so such an address was
     * accepted here (and by --check-config) and refused at start with
     * "cannot resolve: Name or service not known" */
    snprintf(dst, RABIA_ADDR_MAX, "%s:%u", host, port);
    return 0;
}

static int set_bool(bool *dst, const char *key, const char *v, char *err, size_t errlen)
{
    if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1")) *dst = true;
    else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0")) *dst = false;
    else ERR("%s = '%s': use yes or no", key, v);
    return 0;
}

/* A file path (may be "" to unset); what it names is checked when the
 * replica starts, where the error can say what is wrong with the file. */
static int set_path(char *dst, size_t cap, const char *key, const char *v, char *err, size_t errlen)
{
    if (strlen(v) >= cap) ERR("%s: path too long (under %zu bytes)", key, cap);
    snprintf(dst, cap, "%s", v);
    return 0;
}

/* Bytes with an optional k/kb/m/mb/g/gb suffix (as redis.conf: 1k = 1000,
 * 1kb = 1024), at most 2^50. */
static int parse_bytes(const char *v, uint64_t *out)
{
    size_t n = strlen(v), d = 0;
    char num[32];
    if (!n || n >= sizeof num) return -1;
    while (d < n && isdigit((unsigned char)v[d])) d++;
    static const struct { const char *s; uint64_t mul; } units[] = {
        {"", 1}, {"k", 1000}, {"kb", 1024}, {"m", 1000000}, {"mb", 1u << 20}, {"g", 1000000000}, {"gb", 1u << 30}};
    uint64_t mul = 0, x;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcasecmp(v + d, units[i].s)) mul = units[i].mul;
    memcpy(num, v, d);
    num[d] = 0;
    if (!d || !mul || parse_u64(num, 0, (1ull << 50) / mul, &x)) return -1;
    *out = x * mul;
    return 0;
}

/* A byte count (parse_bytes: a plain number, or with a k/kb/m/mb/g/gb
 * suffix) within lo..hi. Every byte-valued key takes the suffixes: with
 * some taking them and others not, "max-log-size 1gb" was refused while
 * "log-retain-bytes 16mb" was accepted. */
static int parse_bytes_in(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t x;
    if (parse_bytes(v, &x) || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

/* maxmemory-clients: "0" (no limit), "N%" of physical memory (1..100), or
 * bytes (parse_bytes), at least 1 MiB: less would close ordinary clients. */
static int set_maxmemory_clients(struct rabia_replica_config *c, const char *v, char *err, size_t errlen)
{
    size_t n = strlen(v);
    char num[32];
    if (!n || n >= sizeof num) ERR("maxmemory-clients = '%s': use 0 (no limit), N%% of memory (e.g. 10%%) or bytes (e.g. 1gb)", v);
    if (v[n - 1] == '%') {
        uint64_t pct;
        memcpy(num, v, n - 1);
        num[n - 1] = 0;
        if (parse_u64(num, 1, 100, &pct)) ERR("maxmemory-clients = '%s': a percentage must be 1%%..100%% of physical memory", v);
        c->maxmemory_clients_pct = (uint8_t)pct;
        c->maxmemory_clients = 0;
        return 0;
    }
    uint64_t x;
    if (parse_bytes(v, &x))
        ERR("maxmemory-clients = '%s': use 0 (no limit), N%% of memory (e.g. 10%%) or bytes (e.g. 1gb)", v);
    if (x && x < (1u << 20)) ERR("maxmemory-clients = '%s': at least 1mb (or 0 for no limit)", v);
    c->maxmemory_clients = x;
    c->maxmemory_clients_pct = 0;
    return 0;
}

static int set_members(struct rabia_replica_config *c, const char *v, char *err, size_t errlen)
{
    struct rabia_member m[RABIA_MAX_REPLICAS + 1];
    memset(m, 0, sizeof m);
    int n = 0;
    char buf[2048];
    if (strlen(v) >= sizeof buf) ERR("members: list too long");
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        char *eq = strchr(tok, '=');
        uint64_t id;
        if (!eq) ERR("members: '%s' is not id=host:port (e.g. 1=10.0.0.1:7501)", tok);
        *eq = 0;
        if (parse_u64(tok, 1, RABIA_MAX_REPLICAS, &id))
            ERR("members: id '%s' must be 1..%d", tok, RABIA_MAX_REPLICAS);
        if (n >= RABIA_MAX_REPLICAS) ERR("members: more than %d replicas", RABIA_MAX_REPLICAS);
        if (parse_addr(eq + 1, m[n].host, sizeof m[n].host, &m[n].port))
            ERR("members: '%s' for replica %" PRIu64 " is not host:port", eq + 1, id);
        m[n].id = (uint8_t)id;
        n++;
    }
    if (n != 3 && n != 5 && n != 7) ERR("members: %d given; a cluster has 3, 5 or 7 replicas", n);
    /* ids must be exactly 1..n, each once */
    struct rabia_member sorted[RABIA_MAX_REPLICAS];
    uint8_t seen = 0;
    for (int i = 0; i < n; i++) {
        if (m[i].id > n) ERR("members: ids must be 1..%d, found %u", n, m[i].id);
        if (seen & (1u << m[i].id)) ERR("members: replica %u listed twice", m[i].id);
        seen |= (uint8_t)(1u << m[i].id);
        sorted[m[i].id - 1] = m[i];
    }
    /* a copied line left unedited: two replicas at one address passed, and
     * the cluster ran with one replica that no peer could reach */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (sorted[i].port == sorted[j].port && !strcasecmp(sorted[i].host, sorted[j].host))
                ERR("members: replicas %u and %u have the same address %s:%u: give each replica its own", i + 1,
                    j + 1, sorted[i].host, sorted[i].port);
    memcpy(c->members, sorted, sizeof(struct rabia_member) * (size_t)n);
    c->n = (uint8_t)n;
    return 0;
}

int rabia_replica_config_set(struct rabia_replica_config *c, const char *key, const char *v, char *err,
                             size_t errlen)
{
    char k[64];
    size_t i;
    for (i = 0; key[i] && i < sizeof k - 1; i++) k[i] = key[i] == '_' ? '-' : (char)tolower((unsigned char)key[i]);
    k[i] = 0;
    uint64_t x;
    if (!strcmp(k, "id")) {
        if (parse_u64(v, 1, RABIA_MAX_REPLICAS, &x)) ERR("id = '%s': must be 1..%d (this replica's number in members)", v, RABIA_MAX_REPLICAS);
        c->id = (uint8_t)x;
    } else if (!strcmp(k, "members")) {
        return set_members(c, v, err, errlen);
    } else if (!strcmp(k, "peer-listen")) {
        return set_listen(c->peer_listen, k, v, err, errlen);
    } else if (!strcmp(k, "client-listen")) {
        return set_listen(c->client_listen, k, v, err, errlen);
    } else if (!strcmp(k, "resp-listen")) {
        return set_listen(c->resp_listen, k, v, err, errlen);
    } else if (!strcmp(k, "data-dir")) {
        /* 4 bytes short of the field: the log's folder, data-dir/wal, must
         * fit it too (persist/wal.c) */
        if (!*v || strlen(v) + 4 >= sizeof c->data_dir)
            ERR("data-dir: give a directory path (under %zu bytes)", sizeof c->data_dir - 4);
        snprintf(c->data_dir, sizeof c->data_dir, "%s", v);
    } else if (!strcmp(k, "state-machine")) {
        if (strcmp(v, "kv") && strcmp(v, "counter") && strcmp(v, "bank"))
            ERR("state-machine = '%s': use kv, counter or bank", v);
        snprintf(c->state_machine, sizeof c->state_machine, "%s", v);
    } else if (!strcmp(k, "batch-max-bytes")) {
        if (parse_bytes_in(v, 1024, 8u << 20, &x)) ERR("batch-max-bytes = '%s': must be 1024..8388608 (1kb..8mb)", v);
        c->batch_max_bytes = (uint32_t)x;
    } else if (!strcmp(k, "batch-max-reqs")) {
        if (parse_u64(v, 1, 65536, &x)) ERR("batch-max-reqs = '%s': must be 1..65536", v);
        c->batch_max_reqs = (uint32_t)x;
    } else if (!strcmp(k, "batch-timeout-us")) {
        if (parse_u64(v, 0, 1000000, &x)) ERR("batch-timeout-us = '%s': must be 0..1000000", v);
        c->batch_timeout_us = (uint32_t)x;
    } else if (!strcmp(k, "batch-linger-us")) {
        if (parse_u64(v, 0, 100000, &x)) ERR("batch-linger-us = '%s': must be 0..100000", v);
        c->batch_linger_us = (uint32_t)x;
    } else if (!strcmp(k, "window")) {
        if (parse_u64(v, 1, RABIA_MAX_WINDOW, &x)) ERR("window = '%s': must be 1..%d", v, RABIA_MAX_WINDOW);
        c->window = (uint32_t)x;
    } else if (!strcmp(k, "policy")) {
        if (!strcmp(v, "global")) c->policy = RABIA_POLICY_GLOBAL;
        else if (!strcmp(v, "classes")) c->policy = RABIA_POLICY_CLASSES;
        else ERR("policy = '%s': use global (any window) or classes (window >= replicas)", v);
    } else if (!strcmp(k, "cluster-id")) {
        if (parse_u64(v, 0, UINT64_MAX, &x)) ERR("cluster-id = '%s': must be a number (0 = derive from members)", v);
        c->cluster_id = x;
    } else if (!strcmp(k, "max-sessions")) {
        if (parse_u64(v, 16, 1u << 22, &x)) ERR("max-sessions = '%s': must be 16..4194304", v);
        c->max_sessions = (uint32_t)x;
    } else if (!strcmp(k, "reply-cache-bytes")) {
        if (parse_bytes_in(v, 1u << 16, 1ull << 40, &x))
            ERR("reply-cache-bytes = '%s': must be 65536..1099511627776 (64kb..1024gb) bytes of replies kept for retries",
                v);
        c->reply_cache_bytes = x;
    } else if (!strcmp(k, "log-retain")) {
        if (parse_u64(v, 16, 1u << 20, &x))
            ERR("log-retain = '%s': must be 16..1048576 (decided slots kept for peers that fall behind)", v);
        c->log_retain = (uint32_t)x;
    } else if (!strcmp(k, "log-retain-bytes")) {
        if (parse_bytes(v, &x) || (x && x < (1u << 20)))
            ERR("log-retain-bytes = '%s': use 0 (no bound) or at least 1mb of batch bodies kept in memory for peers "
                "that fall behind (e.g. 64mb)", v);
        c->log_retain_bytes = x;
    } else if (!strcmp(k, "transfer-rate")) {
        /* at least one 1 MiB chunk a second: a receiver drops a transfer
         * that moved nothing for 30 s */
        if (parse_bytes(v, &x) || (x && x < (1u << 20)))
            ERR("transfer-rate = '%s': use 0 (no cap) or bytes per second of at least 1mb (e.g. 64mb)", v);
        c->transfer_rate = x;
    } else if (!strcmp(k, "max-feature-level")) {
        if (!strcmp(v, "build")) {
            c->max_feature_level = -1;
        } else {
            if (parse_u64(v, 0, 255, &x))
                ERR("max-feature-level = '%s': must be a number 0..%d or 'build'", v, RABIA_KV_FEATURE_LEVEL);
            if (x > RABIA_KV_FEATURE_LEVEL)
                ERR("max-feature-level = %s: this build supports feature level %d at most (rabiad --version); "
                    "leave it unset to allow the build's level",
                    v, RABIA_KV_FEATURE_LEVEL);
            c->max_feature_level = (int)x;
        }
    } else if (!strcmp(k, "retransmit-ms")) {
        if (parse_u64(v, 1, 60000, &x)) ERR("retransmit-ms = '%s': must be 1..60000", v);
        c->retransmit_ms = (uint32_t)x;
    } else if (!strcmp(k, "log-level")) {
        if (!strcmp(v, "error")) c->log_level = RABIA_LOG_ERROR;
        else if (!strcmp(v, "warn")) c->log_level = RABIA_LOG_WARN;
        else if (!strcmp(v, "info")) c->log_level = RABIA_LOG_INFO;
        else if (!strcmp(v, "debug")) c->log_level = RABIA_LOG_DEBUG;
        else ERR("log-level = '%s': use error, warn, info or debug", v);
    } else if (!strcmp(k, "rejoin")) {
        if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1")) c->rejoin = true;
        else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0")) c->rejoin = false;
        else ERR("rejoin = '%s': use yes or no", v);
    } else if (!strcmp(k, "durability")) {
        if (!strcmp(v, "wal")) c->durability = RABIA_DURABILITY_WAL;
        else if (!strcmp(v, "memory")) c->durability = RABIA_DURABILITY_MEMORY;
        else ERR("durability = '%s': use wal (a write-ahead log on disk) or memory (the paper's setting)", v);
    } else if (!strcmp(k, "wal-segment-bytes")) {
        if (parse_bytes_in(v, 1u << 20, 1ull << 30, &x) || x % 65536)
            ERR("wal-segment-bytes = '%s': must be a multiple of 65536 between 1048576 and 1073741824 (1mb..1gb)", v);
        c->wal_segment_bytes = x;
    } else if (!strcmp(k, "max-log-size")) {
        if (parse_bytes_in(v, 1u << 20, 1ull << 44, &x))
            ERR("max-log-size = '%s': must be 1048576..17592186044416 bytes (1mb..16384gb)", v);
        c->max_log_size = x;
    } else if (!strcmp(k, "maxmemory-clients")) {
        return set_maxmemory_clients(c, v, err, errlen);
    } else if (!strcmp(k, "snapshot-interval-s")) {
        if (parse_u64(v, 0, 86400 * 7, &x)) ERR("snapshot-interval-s = '%s': must be 0..604800 (0 = by max-log-size only)", v);
        c->snapshot_interval_s = (uint32_t)x;
    } else if (!strcmp(k, "io-threads")) {
        if (!strcmp(v, "auto")) c->io_threads = -1;
        else if (parse_u64(v, 0, 64, &x)) ERR("io-threads = '%s': must be auto or 0..64 (threads serving client connections)", v);
        else c->io_threads = (int32_t)x;
    } else if (!strcmp(k, "io-threads-pin")) {
        return set_bool(&c->io_threads_pin, k, v, err, errlen);
    } else if (!strcmp(k, "read-index")) {
        return set_bool(&c->read_index, k, v, err, errlen);
    } else if (!strcmp(k, "wal-allow-buffered")) {
        return set_bool(&c->wal_allow_buffered, k, v, err, errlen);
    } else if (!strcmp(k, "metrics-listen")) {
        return set_listen(c->metrics_listen, k, v, err, errlen);
    } else if (!strcmp(k, "cluster-secret-file")) {
        return set_path(c->cluster_secret_file, sizeof c->cluster_secret_file, k, v, err, errlen);
    } else if (!strcmp(k, "requirepass")) {
        if (strlen(v) >= sizeof c->requirepass) ERR("requirepass: longer than %zu bytes", sizeof c->requirepass - 1);
        snprintf(c->requirepass, sizeof c->requirepass, "%s", v);
    } else if (!strcmp(k, "acl-file")) {
        return set_path(c->acl_file, sizeof c->acl_file, k, v, err, errlen);
    } else if (!strcmp(k, "tls-cert-file")) {
        return set_path(c->tls_cert_file, sizeof c->tls_cert_file, k, v, err, errlen);
    } else if (!strcmp(k, "tls-key-file")) {
        return set_path(c->tls_key_file, sizeof c->tls_key_file, k, v, err, errlen);
    } else if (!strcmp(k, "tls-ca-cert-file")) {
        return set_path(c->tls_ca_cert_file, sizeof c->tls_ca_cert_file, k, v, err, errlen);
    } else if (!strcmp(k, "tls-peers")) {
        return set_bool(&c->tls_peers, k, v, err, errlen);
    } else if (!strcmp(k, "tls-clients")) {
        return set_bool(&c->tls_clients, k, v, err, errlen);
    } else if (!strcmp(k, "tls-auth-clients")) {
        return set_bool(&c->tls_auth_clients, k, v, err, errlen);
    } else if (!strcmp(k, "audit-log")) {
        /* "off", as --help says (it was taken as a file named off) */
        return set_path(c->audit_log, sizeof c->audit_log, k, strcmp(v, "off") ? v : "", err, errlen);
    } else if (!strcmp(k, "audit-log-max-bytes")) {
        if (parse_bytes_in(v, 1u << 16, 1ull << 40, &x))
            ERR("audit-log-max-bytes = '%s': must be 65536..1099511627776 (64kb..1024gb)", v);
        c->audit_log_max_bytes = x;
    } else if (!strcmp(k, "audit-log-keep")) {
        if (parse_u64(v, 1, 1000, &x)) ERR("audit-log-keep = '%s': must be 1..1000 (rotated files kept)", v);
        c->audit_log_keep = (uint32_t)x;
    } else if (!strcmp(k, "restore-from")) {
        return set_path(c->restore_from, sizeof c->restore_from, k, v, err, errlen);
    } else {
        ERR("unknown key '%s' (see rabiad --help for the list)", key);
    }
    return 0;
}

int rabia_replica_config_load(struct rabia_replica_config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) ERR("config file %s: %s", path, strerror(errno));
    char line[4096];
    int lineno = 0, rc = 0;
    long at = ftell(f); /* -1 where the file cannot tell (a pipe) */
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        long next = ftell(f);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            rc = RABIA_E_CONFIG;
            break;
        }
        /* a line that ends before its newline without the file ending
         * holds a NUL byte, which fgets cannot tell from the line's end:
         * the rest of the line was dropped without a word, and a file of
         * NULs (--config /dev/zero) was read for ever. On the last line,
         * without a newline, only the bytes read tell: "requirepass
         * abc<NUL>def" at the end of the file was the password abc */
        bool nul = at >= 0 && next >= 0 && (size_t)(next - at) != len;
        at = next;
        if (((!len || line[len - 1] != '\n') && !feof(f)) || nul) {
            snprintf(err, errlen, "%s:%d: a NUL byte in the line (is it a text file?)", path, lineno);
            rc = RABIA_E_CONFIG;
            break;
        }
        char *p = line;
        /* a UTF-8 byte order mark (some editors write one): it was part of
         * the first key, refused as "unknown key 'id'" with the mark unseen */
        if (lineno == 1 && !strncmp(p, "\xEF\xBB\xBF", 3)) p += 3;
        /* a comment starts at a '#' first on the line or after a space:
         * one inside a value is the value's ("requirepass s3cr#t" was
         * taken as "s3cr", silently) */
        for (char *h = p; (h = strchr(h, '#')); h++) {
            if (h == p || isspace((unsigned char)h[-1])) {
                *h = 0;
                break;
            }
        }
        while (isspace((unsigned char)*p)) p++;
        char *e = p + strlen(p);
        while (e > p && isspace((unsigned char)e[-1])) *--e = 0;
        if (!*p) continue;
        char *key = p;
        while (*p && !isspace((unsigned char)*p) && *p != '=') p++;
        bool eq = *p == '=';
        if (*p) *p++ = 0;
        /* "key value", "key = value" or "key=value": one '=' is the
         * separator, another is the value's ("data-dir = =d" ran in "d") */
        while (isspace((unsigned char)*p)) p++;
        if (!eq && *p == '=') p++;
        while (isspace((unsigned char)*p)) p++;
        /* redis.conf quotes its values; this file does not, and a quoted
         * value kept its quotes: data-dir "/var/lib/rabia" was a relative
         * directory named with them (an empty data dir: a first start),
         * requirepass "x" a password of three characters */
        size_t vl = strlen(p);
        if (vl >= 2 && (p[0] == '"' || p[0] == '\'') && p[vl - 1] == p[0]) {
            snprintf(err, errlen,
                     "%s:%d: %s: a quoted value; values in this file are taken as written, quotes included: "
                     "write it without the quotes",
                     path, lineno, key);
            rc = RABIA_E_CONFIG;
            break;
        }
        char sub[512];
        if (rabia_replica_config_set(c, key, p, sub, sizeof sub)) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, sub);
            rc = RABIA_E_CONFIG;
            break;
        }
    }
    /* a read error ends fgets as the end of the file does: a directory
     * (fopen takes one, fgets fails with EISDIR) was read as an empty file */
    if (!rc && ferror(f)) {
        snprintf(err, errlen, "config file %s: %s (give the path of a config file)", path, strerror(errno));
        rc = RABIA_E_CONFIG;
    }
    fclose(f);
    return rc;
}

/* Whether listening on a and b ("host:port", as set_listen keeps them) would
 * collide: the same port on the same host, or on a wildcard that takes the
 * other's address too (0.0.0.0: every IPv4 address and names; "::": every
 * address). */
static bool wildcard_takes(const char *w, size_t lw, const char *o, size_t lo)
{
    if (lw == 2 && !strncmp(w, "::", 2)) return true;
    return lw == 7 && !strncmp(w, "0.0.0.0", 7) && !memchr(o, ':', lo); /* not an IPv6 address */
}

static bool same_listen(const char *a, const char *b)
{
    const char *ca = strrchr(a, ':'), *cb = strrchr(b, ':');
    if (!ca || !cb || strcmp(ca, cb)) return false;
    size_t la = (size_t)(ca - a), lb = (size_t)(cb - b);
    return (la == lb && !strncasecmp(a, b, la)) || wildcard_takes(a, la, b, lb) || wildcard_takes(b, lb, a, la);
}

int rabia_replica_config_check(const struct rabia_replica_config *c, char *err, size_t errlen)
{
    if (!c->n) ERR("members is not set: list every replica as members = 1=host:port,2=host:port,3=host:port");
    if (!c->id) ERR("id is not set: give this replica's number (1..%u) from members", c->n);
    if (c->id > c->n) ERR("id = %u is not among members (1..%u)", c->id, c->n);
    /* Two listeners on one port: the start binds each alone to probe it, so
     * the second failed only in rabia_replica_run, after the replica was
     * created (its incarnation file written), as "another process uses the
     * port"; and --check-config passed the configuration. */
    char peer[RABIA_ADDR_MAX];
    if (c->peer_listen[0]) snprintf(peer, sizeof peer, "%s", c->peer_listen);
    else snprintf(peer, sizeof peer, "0.0.0.0:%u", c->members[c->id - 1].port); /* as replica.c listens */
    const char *ls[][2] = {{"peer-listen", peer}, {"client-listen", c->client_listen},
                           {"resp-listen", c->resp_listen}, {"metrics-listen", c->metrics_listen}};
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            if (ls[i][1][0] && ls[j][1][0] && same_listen(ls[i][1], ls[j][1]))
                ERR("%s %s and %s %s are the same port: give each listener its own port", ls[i][0], ls[i][1],
                    ls[j][0], ls[j][1]);
    if (c->policy == RABIA_POLICY_CLASSES && c->window < c->n)
        ERR("window = %u with policy classes: needs window >= %u (the number of replicas)", c->window, c->n);
    int arc = replica_auth_check_config(c, err, errlen); /* the secret and ACL files (auth.c) */
    if (arc) return arc;
    if (c->resp_listen[0] && strcmp(c->state_machine, "kv"))
        ERR("resp-listen is set but state-machine = %s: the RESP front end serves the kv state machine only (set resp-listen = off)", c->state_machine);
    if ((c->tls_peers || c->tls_clients) && (!c->tls_cert_file[0] || !c->tls_key_file[0] || !c->tls_ca_cert_file[0]))
        ERR("tls-%s = yes needs tls-cert-file, tls-key-file and tls-ca-cert-file (deploy/make-test-certs.sh makes "
            "a test CA and certificates)", c->tls_peers ? "peers" : "clients");
    if (c->tls_auth_clients && !c->tls_clients) ERR("tls-auth-clients = yes needs tls-clients = yes");
    if (c->tls_clients && c->io_threads > 0)
        ERR("io-threads = %d with tls-clients = yes: TLS on client ports runs on the consensus thread only "
            "for now; set io-threads = 0 (or auto)", c->io_threads);
    int trc = replica_tls_check_config(c, err, errlen); /* the certificate, key and CA files (tls_links.c) */
    if (trc) return trc;
    if (c->durability == RABIA_DURABILITY_WAL && (uint64_t)c->batch_max_bytes * 4 > c->wal_segment_bytes)
        ERR("wal-segment-bytes = %" PRIu64 " is too small for batch-max-bytes %u: a log record holds a whole "
            "batch and must fit a quarter of a segment; raise wal-segment-bytes to at least %" PRIu64,
            c->wal_segment_bytes, c->batch_max_bytes, ((uint64_t)c->batch_max_bytes * 4 + 65535) / 65536 * 65536);
    return 0;
}

void rabia_replica_config_print(const struct rabia_replica_config *c, void *file)
{
    FILE *f = file;
    static const char *lv[] = {"error", "warn", "info", "debug"};
    fprintf(f, "id %u\nmembers ", c->id);
    for (uint8_t i = 0; i < c->n; i++)
        fprintf(f, "%s%u=%s:%u", i ? "," : "", c->members[i].id, c->members[i].host, c->members[i].port);
    fprintf(f, "\npeer-listen %s\nclient-listen %s\nresp-listen %s\ndata-dir %s\nstate-machine %s\n",
            c->peer_listen[0] ? c->peer_listen : "(member address)", c->client_listen[0] ? c->client_listen : "off",
            c->resp_listen[0] ? c->resp_listen : "off", c->data_dir, c->state_machine);
    fprintf(f, "batch-max-bytes %u\nbatch-max-reqs %u\nbatch-timeout-us %u\nbatch-linger-us %u\nwindow %u\npolicy %s\n",
            c->batch_max_bytes, c->batch_max_reqs, c->batch_timeout_us, c->batch_linger_us, c->window,
            c->policy ? "classes" : "global");
    /* in hex as INFO's rabia_cluster_id and every log line show it, so a
     * replacement's cluster-id can be compared with a survivor's (it was
     * decimal, and "0" when unset) */
    if (c->cluster_id) fprintf(f, "cluster-id 0x%016" PRIx64 "\n", c->cluster_id);
    else fprintf(f, "cluster-id (derived from members at the first start, then kept in data-dir/cluster-id)\n");
    fprintf(f, "max-sessions %u\nreply-cache-bytes %" PRIu64 "\nlog-retain %u\nretransmit-ms %u\nlog-level %s\n",
            c->max_sessions, c->reply_cache_bytes, c->log_retain, c->retransmit_ms, lv[c->log_level & 3]);
    fprintf(f, "log-retain-bytes %" PRIu64 "\ntransfer-rate %" PRIu64 "\n", c->log_retain_bytes, c->transfer_rate);
    if (c->max_feature_level < 0) fprintf(f, "max-feature-level build (%d)\n", RABIA_KV_FEATURE_LEVEL);
    else fprintf(f, "max-feature-level %d\n", c->max_feature_level);
    fprintf(f, "durability %s\nwal-segment-bytes %" PRIu64 "\nmax-log-size %" PRIu64 "\nsnapshot-interval-s %u\n",
            c->durability == RABIA_DURABILITY_MEMORY ? "memory" : "wal", c->wal_segment_bytes, c->max_log_size,
            c->snapshot_interval_s);
    if (c->wal_allow_buffered) fprintf(f, "wal-allow-buffered yes\n");
    fprintf(f, "read-index %s\n", c->read_index ? "yes" : "no");
    if (c->maxmemory_clients_pct) fprintf(f, "maxmemory-clients %u%%\n", c->maxmemory_clients_pct);
    else fprintf(f, "maxmemory-clients %" PRIu64 "\n", c->maxmemory_clients);
    if (c->io_threads < 0) fprintf(f, "io-threads auto\n");
    else fprintf(f, "io-threads %d\n", c->io_threads);
    fprintf(f, "io-threads-pin %s\n", c->io_threads_pin ? "yes" : "no");
    fprintf(f, "metrics-listen %s\n", c->metrics_listen[0] ? c->metrics_listen : "off");
    if (c->cluster_secret_file[0]) fprintf(f, "cluster-secret-file %s\n", c->cluster_secret_file);
    if (c->requirepass[0]) fprintf(f, "requirepass (set)\n");
    if (c->acl_file[0]) fprintf(f, "acl-file %s\n", c->acl_file);
    if (c->tls_peers || c->tls_clients)
        fprintf(f, "tls-peers %s\ntls-clients %s\ntls-auth-clients %s\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\n",
                c->tls_peers ? "yes" : "no", c->tls_clients ? "yes" : "no", c->tls_auth_clients ? "yes" : "no",
                c->tls_cert_file, c->tls_key_file, c->tls_ca_cert_file);
    if (c->audit_log[0])
        fprintf(f, "audit-log %s\naudit-log-max-bytes %" PRIu64 "\naudit-log-keep %u\n", c->audit_log,
                c->audit_log_max_bytes, c->audit_log_keep);
    if (c->restore_from[0]) fprintf(f, "restore-from %s\n", c->restore_from);
}
