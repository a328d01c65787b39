/* The cluster id kept in the data directory: data-dir/cluster-id, one line
 * of 16 hex digits. A cluster's id is given (cluster-id) or derived from its
 * members list at its first start (and from the backup, for a cluster
 * restored from one: replica/backup.c replica_restored_cluster_id); it is
 * in every log segment's header, in
 * every HELLO, and it seeds the common coin, so it must never change. Kept
 * here, it is read back at every later start instead of derived again:
 * a members list that changed since (a machine replaced at another address,
 * README "Replacing a machine") keeps the cluster its id. */
#include "cluster_id.h"
#include "datadir.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum { ID_LINE = 17 }; /* 16 hex digits and a newline */

int rabia_cluster_id_read(const char *dir, uint64_t *id, bool *found, char *err, size_t errlen)
{
    *found = false;
    *id = 0;
    char path[600], buf[ID_LINE + 1]; /* one more: a longer file shows */
    size_t k;
    int rc = rabia_read_small_file(dir, "cluster-id", buf, sizeof buf, &k, path, sizeof path, err, errlen);
    if (rc <= 0) return rc;
    bool ok = k == ID_LINE && buf[16] == '\n';
    uint64_t v = 0;
    for (int i = 0; ok && i < 16; i++) {
        char c = buf[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) ok = false;
        v = v << 4 | (uint64_t)(d & 15);
    }
    if (!ok || v == 0) {
        snprintf(err, errlen,
                 "%s is damaged (expected the cluster's id as 16 hex digits on one line): write the id back into "
                 "it (a peer's INFO server shows it as rabia_cluster_id), or move the data dir aside and start this "
                 "replica with --rejoin and cluster-id set to it",
                 path);
        return -EINVAL;
    }
    *id = v;
    *found = true;
    return 0;
}

int rabia_cluster_id_write(const char *dir, uint64_t id, char *err, size_t errlen)
{
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%016" PRIx64 "\n", id);
    return rabia_write_small_file(dir, "cluster-id", buf, (size_t)len, err, errlen);
}
