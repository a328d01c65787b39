/* Snapshots on disk: <dir>/<20-digit slot>.snap, written as a temporary
 * file, fsync, rename, fsync of the folder; checksummed (see snapfile.c).
 * The newest intact one is loaded at start; the two newest are kept. */
#ifndef RABIA_PERSIST_SNAPFILE_H
#define RABIA_PERSIST_SNAPFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Write data (a state machine snapshot taken at `slot`) durably. Safe to
 * call in a forked child (no allocation beyond a path). 0 or a negative
 * errno with err naming the file and the cause. */
int rabia_snapfile_write(const char *dir, uint64_t slot, const uint8_t *data, size_t len, char *err, size_t errlen);
/* Remove the temporary file rabia_snapfile_write(dir, slot) writes, which a
 * writer killed meanwhile (a snapshot child: durable.c) leaves behind;
 * nothing when there is none. Only that writer uses the name. */
void rabia_snapfile_write_abandoned(const char *dir, uint64_t slot);

/* Streaming form, for a snapshot arriving from a peer in chunks (memory
 * bounded by a chunk): begin, append until `total` bytes, commit (header
 * with the checksum, fsync, the state checked as rabia_snapfile_verify does,
 * rename, fsync of the folder) or abort (the temporary file goes). 0 or a
 * negative errno with err filled (-ENOSPC: the disk is full; -EINVAL: the
 * state is damaged or is not of `slot`, and nothing was renamed). */
struct rabia_snapfile_writer {
    int fd;
    uint64_t slot, total, got;
    uint64_t state[11];           /* XXH64_state_t, opaque here */
    /* path's folder fits dir; tmp is path plus ".TAG.tmp" (at most 15 bytes) */
    char dir[620], tmp[640], path[620];
};
int rabia_snapfile_begin(struct rabia_snapfile_writer *w, const char *dir, uint64_t slot, uint64_t total,
                         unsigned tag, char *err, size_t errlen); /* tag: a distinct temporary file per sender */
int rabia_snapfile_append(struct rabia_snapfile_writer *w, const uint8_t *p, size_t n, char *err, size_t errlen);
int rabia_snapfile_commit(struct rabia_snapfile_writer *w, char *err, size_t errlen);
/* commit in two steps, for a caller that checks the file before it takes
 * the final name (rabia-cli backup: a bad copy never replaces a good one):
 * finish writes the header and fsyncs the temporary file (w->tmp), publish
 * renames it into place and fsyncs the folder; abort after finish removes it */
int rabia_snapfile_finish(struct rabia_snapfile_writer *w, char *err, size_t errlen);
int rabia_snapfile_publish(struct rabia_snapfile_writer *w, char *err, size_t errlen);
void rabia_snapfile_abort(struct rabia_snapfile_writer *w);

/* Map the state bytes of <dir>/<slot>.snap read-only after checking the
 * header and checksum (the page cache holds it, not the heap). 0, or a
 * negative errno with err filled. Unmap with rabia_snapfile_unmap. */
int rabia_snapfile_map(const char *dir, uint64_t slot, const uint8_t **data, size_t *len, char *err, size_t errlen);
void rabia_snapfile_unmap(const uint8_t *data, size_t len);
/* Open <dir>/<slot>.snap for streaming it to a peer: 0 with *fd and the
 * state's length (it starts at RABIA_SNAPFILE_HEADER) once the header checks
 * out, else a negative errno. The receiver checks the content's checksum. */
#define RABIA_SNAPFILE_HEADER 40u
int rabia_snapfile_open(const char *dir, uint64_t slot, int *fd, uint64_t *total);

/* Load the newest intact snapshot: 1 with *data (mapped read-only, release
 * with rabia_snapfile_unmap), *len and *slot; 0 when there is none; a
 * negative errno when the newest file is damaged and no older one is intact
 * (err says which and the fix). A damaged newer file next to an intact older
 * one is reported in err (a warning) and skipped: the log still holds
 * everything after the older one (segments are released only once the newer
 * snapshot is durable and the older one stays until then). A folder or a
 * file that cannot be read (permissions) is a negative errno too, not
 * "none" or "damaged": err names it and the fix. */
int rabia_snapfile_load(const char *dir, const uint8_t **data, size_t *len, uint64_t *slot, char *err,
                        size_t errlen);

/* Backups (rabia-cli backup, rabiad --restore): a backup IS a snapshot
 * file, under any name. begin_path starts one at `path` (temporary file
 * <path>.<tag>.tmp, then append and commit as above: fsync, rename, fsync
 * of the folder). */
int rabia_snapfile_begin_path(struct rabia_snapfile_writer *w, const char *path, uint64_t slot, uint64_t total,
                              unsigned tag, char *err, size_t errlen);
/* Check a snapshot file at any path, reading it in chunks (memory bounded):
 * header, length and checksum, and the state's own header (its slot, the
 * state machine it names). 0 with *info filled, or a negative errno with
 * err naming the file, the offset and what is wrong there. */
struct rabia_snapfile_info {
    uint64_t slot;       /* the slot the state was taken at */
    uint64_t len;        /* bytes of state after the header */
    uint64_t state_hash; /* the state hash stored in the state: status's state_hash at that slot
                            (a state of the older "RSM2" format stores none: its XXH64 then) */
    uint64_t checksum;   /* XXH64 (seed 0) of the state bytes */
    char sm[64];         /* the state machine named in the state ("kv", "counter", ...) */
};
int rabia_snapfile_verify(const char *path, struct rabia_snapfile_info *info, char *err, size_t errlen);

/* Delete all but the `keep` newest snapshot files; returns how many went. */
int rabia_snapfile_prune(const char *dir, unsigned keep);
/* Remove every snapshot file and leftover temporary file from dir (a
 * scratch folder, when no writer is running); how many went. */
int rabia_snapfile_clear(const char *dir);

/* Slot of the newest snapshot file by name (0 if none), without reading it. */
uint64_t rabia_snapfile_newest(const char *dir);

#endif
