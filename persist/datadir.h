/* The data directory as a whole (datadir.c): its lock, and making a
 * rename or a new file in it durable. */
#ifndef RABIA_PERSIST_DATADIR_H
#define RABIA_PERSIST_DATADIR_H
#include <stddef.h>

/* Takes an exclusive flock on dir/LOCK (created). The fd stays open (and
 * the lock held) until the process exits or rabia_dir_unlock. */
int rabia_dir_lock(const char *dir, int *fd, char *err, size_t errlen);
void rabia_dir_unlock(int fd);
/* dir/name holds exactly buf[0..len) durably, or what it held before: a
 * temporary file, fdatasync, rename, fsync of the folder. 0, or -errno
 * with err naming the file and the likely cause. */
int rabia_write_small_file(const char *dir, const char *name, const void *buf, size_t len, char *err,
                           size_t errlen);
/* Reads dir/name into buf[0..cap) (the path into path[0..pathlen), for
 * the caller's messages): 1 with *len set, 0 when there is no such file,
 * or a negative errno with err naming the file and the cause. Bounded:
 * stops at cap bytes (a caller gives one more than the largest such file,
 * so that a longer one shows). */
int rabia_read_small_file(const char *dir, const char *name, char *buf, size_t cap, size_t *len, char *path,
                          size_t pathlen, char *err, size_t errlen);
/* fsync of the folder itself (after a rename or a new file). 0 or -errno. */
int rabia_fsync_dir(const char *dir);
/* mkdir(dir, 0750); when it made the folder, an fsync of the folder that
 * holds it, so that the new name survives a power cut with the files
 * later made durable in it. 0 (made now, or there already) or -errno
 * (errno is set too). */
int rabia_mkdir_durable(const char *dir);
#endif
