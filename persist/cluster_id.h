/* The cluster id kept in the data directory (see cluster_id.c). */
#ifndef RABIA_PERSIST_CLUSTER_ID_H
#define RABIA_PERSIST_CLUSTER_ID_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reads dir/cluster-id: *found is false when there is none (a new data
 * dir, or one an older build wrote). 0, or a negative errno with err
 * naming the file, the cause and the fix (a damaged file). */
int rabia_cluster_id_read(const char *dir, uint64_t *id, bool *found, char *err, size_t errlen);
/* Writes dir/cluster-id durably (temporary file, fdatasync, rename, fsync
 * of the folder). 0, or a negative errno with err naming the cause. */
int rabia_cluster_id_write(const char *dir, uint64_t id, char *err, size_t errlen);
#endif
