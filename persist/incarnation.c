/* The incarnation file: a number that grows every time a replica starts,
 * stored durably in its data directory. It tells a first start (no file:
 * a new cluster member, nothing to contradict) from a restart (the core
 * must recover under the horizon rule), and makes batch ids unique across
 * restarts. Written as: temporary file, fsync, rename, fsync directory. */
#include "incarnation.h"
#include "datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


int rabia_incarnation_next(const char *dir, uint64_t *incarnation, bool *existed, char *err, size_t errlen)
{
    if (rabia_mkdir_durable(dir)) {
        snprintf(err, errlen, "data-dir %s: cannot create: %s (create it or fix permissions)", dir, strerror(errno));
        return -errno;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/incarnation", dir);
    uint64_t prev = 0;
    *existed = false;
    FILE *f = fopen(path, "r");
    if (f) {
        char line[64] = {0};
        char *end = NULL;
        if (fgets(line, sizeof line, f)) prev = strtoull(line, &end, 10);
        fclose(f);
        if (!end || end == line || (*end && *end != '\n') || prev == 0 || prev == UINT64_MAX) {
            snprintf(err, errlen,
                     "%s is corrupt (expected one positive number): restore it, or remove the whole data dir and "
                     "start this replica with --rejoin so it recovers from its peers",
                     path);
            return -EINVAL;
        }
        *existed = true;
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    /* A first start takes the wall clock (microseconds) instead of 1: a
     * replica whose data dir was lost starts again from "no file", and its
     * peers refuse an incarnation lower than the one they remember (and
     * would treat its new batch ids as an obsolete life). Restarts count up
     * from there. */
    uint64_t next = prev + 1;
    if (!*existed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
        if (now_us > next) next = now_us;
    }
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%" PRIu64 "\n", next);
    int rc = rabia_write_small_file(dir, "incarnation", buf, (size_t)len, err, errlen);
    if (rc) return rc;
    *incarnation = next;
    return 0;
}

void rabia_incarnation_forget(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/incarnation", dir);
    if (!unlink(path)) rabia_fsync_dir(dir);
}
