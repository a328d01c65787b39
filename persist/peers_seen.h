/* The incarnation each peer was first heard with, kept in the data
 * directory (see peers_seen.c). */
#ifndef RABIA_PERSIST_PEERS_SEEN_H
#define RABIA_PERSIST_PEERS_SEEN_H
#include <stddef.h>
#include <stdint.h>

#define RABIA_PEERS_SEEN_FILE "peers-seen"

/* Reads dir/peers-seen into seen[0..n) (index = replica id - 1; 0 = never
 * heard; peers above n, from a longer members list, are skipped). No file:
 * all 0. 0, or a negative errno with err naming the file, the cause and
 * the fix (-EINVAL: damaged). */
int rabia_peers_seen_read(const char *dir, uint8_t n, uint64_t *seen, char *err, size_t errlen);
/* Writes seen[0..n) durably (temporary file, fdatasync, rename, fsync of
 * the folder). 0, or a negative errno with err naming the cause. */
int rabia_peers_seen_write(const char *dir, uint8_t n, const uint64_t *seen, char *err, size_t errlen);

/* data-dir/first-start: the incarnation this data dir began with when that
 * start voted at once (an empty data dir, no --rejoin). Every later start
 * on the data dir that votes at once says it again (RABIA_MSG_FIRST_START),
 * so that a life refused as a lost data dir is not taken once restarted on
 * what it wrote meanwhile; a start that recovers from its peers removes it. */
#define RABIA_FIRST_START_FILE "first-start"
/* *birth = the file's incarnation, 0 when there is none. 0, or a negative
 * errno with err naming the file, the cause and the fix. */
int rabia_first_start_read(const char *dir, uint64_t *birth, char *err, size_t errlen);
/* Writes it durably (temporary file, fdatasync, rename, fsync of the folder). */
int rabia_first_start_write(const char *dir, uint64_t birth, char *err, size_t errlen);
/* Removes it durably (none: 0). */
int rabia_first_start_forget(const char *dir, char *err, size_t errlen);
#endif
