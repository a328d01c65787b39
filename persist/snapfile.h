/* Snapshots on disk: <dir>/<20-digit slot>.snap, written as a temporary
 * file, fsync, rename, fsync of the folder; checksummed (see snapfile.c).
 * The newest intact one is loaded at start; the two newest are kept. */
#ifndef RABIA_PERSIST_SNAPFILE_H
#define RABIA_PERSIST_SNAPFILE_H

#include <stddef.h>
#include <stdint.h>

/* Write data (a state machine snapshot taken at `slot`) durably. Safe to
 * call in a forked child (no allocation beyond a path). 0 or a negative
 * errno with err naming the file and the cause. */
int rabia_snapfile_write(const char *dir, uint64_t slot, const uint8_t *data, size_t len, char *err, size_t errlen);

/* Load the newest intact snapshot: 1 with *data (malloc'd, caller frees),
 * *len and *slot; 0 when there is none; a negative errno when the newest
 * file is damaged and no older one is intact (err says which and the fix).
 * A damaged newer file next to an intact older one is reported in err (a
 * warning) and skipped: the log still holds everything after the older one
 * (segments are released only once the newer snapshot is durable and the
 * older one stays until then). */
int rabia_snapfile_load(const char *dir, uint8_t **data, size_t *len, uint64_t *slot, char *err, size_t errlen);

/* Delete all but the `keep` newest snapshot files; returns how many went. */
int rabia_snapfile_prune(const char *dir, unsigned keep);

/* Slot of the newest snapshot file by name (0 if none), without reading it. */
uint64_t rabia_snapfile_newest(const char *dir);

#endif
