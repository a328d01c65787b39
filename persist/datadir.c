/* The data directory as a whole (datadir.h). */
#include "datadir.h"

#include <errno.h>
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

int rabia_dir_lock(const char *dir, int *fd_out, char *err, size_t errlen)
{
    if (mkdir(dir, 0750) && errno != EEXIST) {
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
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            snprintf(err, errlen,
                     "data-dir %s is in use by another process (%s is locked): stop the other rabiad, or give this "
                     "one its own data-dir",
                     dir, path);
        else
            snprintf(err, errlen, "%s: flock: %s", path, strerror(e));
        return -(e == EWOULDBLOCK ? EBUSY : e);
    }
    *fd_out = fd;
    return 0;
}

void rabia_dir_unlock(int fd)
{
    if (fd >= 0) close(fd);
}
