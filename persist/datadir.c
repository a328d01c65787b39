/* The data directory as a whole (datadir.h). */
#include "datadir.h"

#include <errno.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int rabia_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

/* A folder's files made durable (fsync of each, and of the folder) are
 * found after a power cut only if the folder's own name in its parent is
 * durable too: POSIX asks for an fsync of the parent after the mkdir.
 * ext4 and xfs order their journal so that it survives without one, other
 * filesystems need not (found by review: snap/, wal/ and the data dir were
 * never made durable in their parents). */
int rabia_mkdir_durable(const char *dir)
{
    if (mkdir(dir, 0750)) {
        if (errno == EEXIST) return 0;
        return -errno;
    }
    char parent[1024];
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--; /* "a/b/" is "a/b" */
    const char *slash = NULL;
    for (size_t i = 0; i < n; i++)
        if (dir[i] == '/') slash = dir + i;
    if (!slash)
        snprintf(parent, sizeof parent, ".");
    else if (slash == dir)
        snprintf(parent, sizeof parent, "/");
    else
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - dir), dir);
    int rc = rabia_fsync_dir(parent);
    if (rc) errno = -rc;
    return rc;
}

int rabia_dir_lock(const char *dir, int *fd_out, char *err, size_t errlen)
{
    if (rabia_mkdir_durable(dir)) {
        int e = errno;
        snprintf(err, errlen, "data-dir %s: cannot create: %s (create it or fix permissions)", dir, strerror(e));
        return -e;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s (is the data dir writable?)", path, strerror(e));
        return -e;
    }
    /* A process killed with -9 releases the lock only once its io_uring
     * workers (which share its files) finish the disk I/O in flight: on a
     * slow disk that takes a moment after the process is gone, and a
     * restart at once met a lock still held (integration.crash_all, 50
     * rounds). So a held lock is tried again for up to 5 s before the
     * data dir counts as in use by another live process. */
    int tries = 0;
    while (flock(fd, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK && tries < 100) {
        if (tries++ == 0)
            fprintf(stderr, "rabiad: data-dir %s is locked; waiting up to 5 s in case its holder is a process "
                            "that is exiting\n", dir);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            snprintf(err, errlen,
                     "data-dir %s is in use by another process (%s is locked): stop the other rabiad, or give this "
                     "one its own data-dir (in a program that embeds rabia: a replica of this process that was "
                     "destroyed with a log write still in flight keeps it locked until the process exits; its "
                     "log says so)",
                     dir, path);
        else
            snprintf(err, errlen, "%s: flock: %s", path, strerror(e));
        return -(e == EWOULDBLOCK ? EBUSY : e);
    }
    *fd_out = fd;
    return 0;
}

int rabia_read_small_file(const char *dir, const char *name, char *buf, size_t cap, size_t *len, char *path,
                          size_t pathlen, char *err, size_t errlen)
{
    snprintf(path, pathlen, "%s/%s", dir, name);
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        int e = errno;
        snprintf(err, errlen, "%s: %s (check the data dir's owner and permissions)", path, strerror(e));
        return -e;
    }
    for (;;) {
        ssize_t k = read(fd, buf + *len, cap - *len);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            int e = errno;
            close(fd);
            snprintf(err, errlen, "%s: %s", path, strerror(e));
            return -e;
        }
        if (k == 0) break;
        *len += (size_t)k;
        if (*len == cap) break;
    }
    close(fd);
    return 1;
}

int rabia_write_small_file(const char *dir, const char *name, const void *buf, size_t len, char *err,
                           size_t errlen)
{
    char path[600], tmp[620];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s (is the data dir writable and the disk not full?)", tmp, strerror(e));
        return -e;
    }
    int rc = 0;
    ssize_t k = write(fd, buf, len);
    if (k != (ssize_t)len) rc = k < 0 ? -errno : -EIO;
    else if (fdatasync(fd)) rc = -errno;
    close(fd);
    if (!rc && rename(tmp, path)) rc = -errno;
    if (!rc) rc = rabia_fsync_dir(dir);
    if (rc) {
        snprintf(err, errlen, "writing %s: %s (is the disk full or read-only?)", path, strerror(-rc));
        unlink(tmp);
    }
    return rc;
}

void rabia_dir_unlock(int fd)
{
    if (fd >= 0) close(fd);
}
