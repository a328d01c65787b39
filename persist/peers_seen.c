/* data-dir/peers-seen: for every peer, the first incarnation this data dir
 * ever took from it. A replica whose data dir was lost and that starts
 * again without --rejoin comes back as new (a first start, voting at once)
 * and could vote against what it sent before the loss; its peers compare
 * its incarnation with the one kept here and refuse it (replica/hello.h).
 * The file changes at most once per peer in a data dir's life (the first
 * HELLO taken from it), so its synchronous write costs the loop nothing
 * that matters.
 *
 *     rabia peers-seen 1
 *     2 1780000000000000
 *     3 1780000000004242
 *
 * One line per peer heard: its replica id (1-based) and that incarnation,
 * in decimal. */
#include "peers_seen.h"
#include "datadir.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "invariant.h"
#include "rabia/types.h"

#define HEADER "rabia peers-seen 1\n"
enum { FILE_MAX = 2048 }; /* a header and RABIA_MAX_REPLICAS lines of at most 25 bytes */

static int damaged(const char *path, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen,
             "%s is damaged (%s): remove it. It only holds the incarnation this replica first heard from each "
             "peer, so that a peer that lost its data dir and starts again without --rejoin is refused; "
             "removed, such a peer goes unrecognised until this replica hears it again",
             path, what);
    return -EINVAL;
}

/* A decimal u64 of 1 to 20 digits ending at `end`; false if none or too big. */
static bool parse_u64(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    int digits = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        uint64_t d = (uint64_t)(*s - '0');
        if (x > (UINT64_MAX - d) / 10) return false;
        x = x * 10 + d;
        s++;
        if (++digits > 20) return false;
    }
    if (!digits) return false;
    *p = s;
    *v = x;
    return true;
}

int rabia_peers_seen_read(const char *dir, uint8_t n, uint64_t *seen, char *err, size_t errlen)
{
    RABIA_ASSERT(dir && seen && n >= 1 && n <= RABIA_MAX_REPLICAS);
    memset(seen, 0, n * sizeof *seen);
    char path[600], buf[FILE_MAX + 1];
    size_t len;
    int rc = rabia_read_small_file(dir, RABIA_PEERS_SEEN_FILE, buf, sizeof buf, &len, path, sizeof path, err, errlen);
    if (rc <= 0) return rc;
    if (len > FILE_MAX) return damaged(path, "larger than any such file", err, errlen);
    if (len < sizeof HEADER - 1 || memcmp(buf, HEADER, sizeof HEADER - 1))
        return damaged(path, "no 'rabia peers-seen 1' line first", err, errlen);
    const char *p = buf + sizeof HEADER - 1, *end = buf + len;
    bool got[RABIA_MAX_REPLICAS] = {0};
    uint64_t v[RABIA_MAX_REPLICAS] = {0}; /* copied out once the whole file read well */
    while (p < end) {
        uint64_t id, inc;
        if (!parse_u64(&p, end, &id) || p == end || *p++ != ' ' || !parse_u64(&p, end, &inc) || p == end ||
            *p++ != '\n')
            return damaged(path, "a line that is not a replica id and an incarnation", err, errlen);
        if (id < 1 || id > RABIA_MAX_REPLICAS || inc == 0 || got[id - 1])
            return damaged(path, "a replica id out of range, twice, or an incarnation of 0", err, errlen);
        got[id - 1] = true;
        v[id - 1] = inc;
    }
    memcpy(seen, v, n * sizeof *seen);
    return 0;
}

int rabia_peers_seen_write(const char *dir, uint8_t n, const uint64_t *seen, char *err, size_t errlen)
{
    RABIA_ASSERT(dir && seen && n >= 1 && n <= RABIA_MAX_REPLICAS);
    char buf[FILE_MAX];
    size_t len = (size_t)snprintf(buf, sizeof buf, HEADER);
    for (uint8_t i = 0; i < n; i++) {
        if (!seen[i]) continue;
        int k = snprintf(buf + len, sizeof buf - len, "%u %" PRIu64 "\n", i + 1u, seen[i]);
        RABIA_ASSERT(k > 0 && (size_t)k < sizeof buf - len);
        len += (size_t)k;
    }
    return rabia_write_small_file(dir, RABIA_PEERS_SEEN_FILE, buf, len, err, errlen);
}

/* data-dir/first-start (peers_seen.h): one decimal incarnation and a newline. */
int rabia_first_start_read(const char *dir, uint64_t *birth, char *err, size_t errlen)
{
    RABIA_ASSERT(dir && birth);
    *birth = 0;
    char path[600], buf[32];
    size_t len;
    int rc = rabia_read_small_file(dir, RABIA_FIRST_START_FILE, buf, sizeof buf, &len, path, sizeof path, err, errlen);
    if (rc <= 0) return rc;
    const char *p = buf, *end = buf + len;
    uint64_t v;
    if (!parse_u64(&p, end, &v) || v == 0 || p == end || *p != '\n' || p + 1 != end) {
        snprintf(err, errlen,
                 "%s is damaged (not one incarnation on a line): it holds the incarnation this data dir began with "
                 "at a first start; if this replica's data dir may have been lost since that start, empty it and "
                 "start with --rejoin, else remove the file",
                 path);
        return -EINVAL;
    }
    *birth = v;
    return 0;
}

int rabia_first_start_write(const char *dir, uint64_t birth, char *err, size_t errlen)
{
    RABIA_ASSERT(dir && birth);
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%" PRIu64 "\n", birth);
    return rabia_write_small_file(dir, RABIA_FIRST_START_FILE, buf, (size_t)len, err, errlen);
}

int rabia_first_start_forget(const char *dir, char *err, size_t errlen)
{
    RABIA_ASSERT(dir);
    char path[600];
    snprintf(path, sizeof path, "%s/" RABIA_FIRST_START_FILE, dir);
    if (unlink(path)) {
        if (errno == ENOENT) return 0;
        int e = errno;
        snprintf(err, errlen, "%s: cannot remove: %s", path, strerror(e));
        return -e;
    }
    int rc = rabia_fsync_dir(dir);
    if (rc) snprintf(err, errlen, "%s: fsync after removing " RABIA_FIRST_START_FILE ": %s", dir, strerror(-rc));
    return rc;
}
