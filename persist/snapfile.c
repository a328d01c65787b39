/* Snapshot files (snapfile.h). Format, little-endian:
 *   0  8  magic "RABIASNP"
 *   8  8  slot the state was taken at (equal to the file name)
 *  16  8  length of the state bytes
 *  24  8  XXH64 of the state bytes (seed SNAP_SEED)
 *  32  8  XXH64 of bytes 0..31
 *  40  .. the state (rabia_rsm_snapshot's bytes, which name the state machine)
 */
#define _GNU_SOURCE
#include "snapfile.h"
#include "datadir.h"
#include "invariant.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#define SNAP_SEED 0x52414249414e5053ull
#define SNAP_HDR RABIA_SNAPFILE_HEADER
#define MAX_FILES 1024


/* The header, written by the two writers and read by map, open and verify. */
struct snap_hdr {
    uint64_t slot, len, dc; /* dc: XXH64 of the state bytes */
};

static void hdr_encode(uint8_t h[SNAP_HDR], const struct snap_hdr *v)
{
    memcpy(h, "RABIASNP", 8);
    memcpy(h + 8, &v->slot, 8);
    memcpy(h + 16, &v->len, 8);
    memcpy(h + 24, &v->dc, 8);
    uint64_t hc = XXH64(h, 32, SNAP_SEED);
    memcpy(h + 32, &hc, 8);
}

enum { HDR_OK = 0, HDR_MAGIC = 1, HDR_CHECKSUM = 2 };
static int hdr_decode(const uint8_t h[SNAP_HDR], struct snap_hdr *v)
{
    if (memcmp(h, "RABIASNP", 8)) return HDR_MAGIC;
    uint64_t hc;
    memcpy(&v->slot, h + 8, 8);
    memcpy(&v->len, h + 16, 8);
    memcpy(&v->dc, h + 24, 8);
    memcpy(&hc, h + 32, 8);
    return hc == XXH64(h, 32, SNAP_SEED) ? HDR_OK : HDR_CHECKSUM;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return k < 0 ? -errno : -EIO;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* A large snapshot written at once left up to the whole state dirty in the
 * page cache and then one fsync flushed it: the disk queue filled and the
 * log's small synchronous writes on the same disk waited behind it (probe
 * requests stalled for seconds with a 1 GiB state, bench/snapshot_stall.sh).
 * Written in 2 MiB chunks instead, each chunk's writeback started at once and the
 * previous one waited for, so at most two chunks are ever in flight.
 * The wait reports a write-back error (EIO, ENOSPC) and marks it seen for
 * this file: the fsync after it then returns 0 although those pages never
 * reached the disk (they stay readable from the page cache until evicted).
 * Ignored, a snapshot whose chunks failed was renamed into place as
 * durable, the log released behind it, and after a reboot it read back
 * damaged (found by review: an ext4 on a loop device whose backing store
 * was full). An error there fails the snapshot; a filesystem without
 * sync_file_range (EINVAL, ESPIPE, ENOSYS) leaves it to the fsync. */
static bool srange_failed(int rc)
{
    return rc < 0 && errno != EINVAL && errno != ESPIPE && errno != ENOSYS;
}

#define PACE_CHUNK (2u << 20)
static int write_paced(int fd, off_t at, const uint8_t *p, size_t len)
{
    off_t prev = -1;
    size_t prev_len = 0;
    while (len) {
        size_t n = len < PACE_CHUNK ? len : PACE_CHUNK;
        int rc = write_all(fd, p, n);
        if (rc) return rc;
        (void)sync_file_range(fd, at, (off_t)n, SYNC_FILE_RANGE_WRITE);
        if (prev >= 0 &&
            srange_failed(sync_file_range(fd, prev, (off_t)prev_len,
                                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                              SYNC_FILE_RANGE_WAIT_AFTER)))
            return -errno;
        prev = at;
        prev_len = n;
        at += (off_t)n;
        p += n;
        len -= n;
    }
    return 0; /* the caller's fsync makes it durable (sync_file_range does not flush metadata or caches) */
}

_Static_assert(sizeof(((struct rabia_snapfile_writer *)0)->state) >= sizeof(XXH64_state_t), "XXH64 state size");

static int begin_open(struct rabia_snapfile_writer *w, uint64_t slot, uint64_t total, char *err, size_t errlen);

int rabia_snapfile_begin(struct rabia_snapfile_writer *w, const char *dir, uint64_t slot, uint64_t total,
                         unsigned tag, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    /* the file's name is the folder plus 26 bytes: refuse rather than
     * write (and later rename onto) a cut-short name */
    if (strlen(dir) + 27 > sizeof w->path) {
        snprintf(err, errlen, "%.100s...: snapshot folder path too long (at most %zu bytes)", dir,
                 sizeof w->path - 27);
        return -ENAMETOOLONG;
    }
    if (rabia_mkdir_durable(dir)) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot create the snapshot folder: %s", dir, strerror(e));
        return -e;
    }
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    snprintf(w->path, sizeof w->path, "%s/%020" PRIu64 ".snap", dir, slot);
    snprintf(w->tmp, sizeof w->tmp, "%s.%u.tmp", w->path, tag); /* one per sender */
    return begin_open(w, slot, total, err, errlen);
}

int rabia_snapfile_begin_path(struct rabia_snapfile_writer *w, const char *path, uint64_t slot, uint64_t total,
                              unsigned tag, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    if (strlen(path) + 1 > sizeof w->path) {
        snprintf(err, errlen, "%.100s...: path too long (at most %zu bytes)", path, sizeof w->path - 1);
        return -ENAMETOOLONG;
    }
    snprintf(w->path, sizeof w->path, "%s", path);
    const char *slash = strrchr(path, '/'); /* the folder, fsynced after the rename */
    if (!slash) snprintf(w->dir, sizeof w->dir, ".");
    else if (slash == path) snprintf(w->dir, sizeof w->dir, "/");
    else snprintf(w->dir, sizeof w->dir, "%.*s", (int)(slash - path), path);
    snprintf(w->tmp, sizeof w->tmp, "%s.%u.tmp", w->path, tag);
    return begin_open(w, slot, total, err, errlen);
}

static int begin_open(struct rabia_snapfile_writer *w, uint64_t slot, uint64_t total, char *err, size_t errlen)
{
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (w->fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", w->tmp, strerror(e));
        return -e;
    }
    w->slot = slot;
    w->total = total;
    XXH64_reset((XXH64_state_t *)w->state, SNAP_SEED);
    uint8_t h[SNAP_HDR] = {0}; /* written for real at commit */
    int rc = write_all(w->fd, h, sizeof h);
    if (rc) {
        snprintf(err, errlen, "%s: %s", w->tmp, strerror(-rc));
        rabia_snapfile_abort(w);
    }
    return rc;
}

int rabia_snapfile_append(struct rabia_snapfile_writer *w, const uint8_t *p, size_t n, char *err, size_t errlen)
{
    if (w->fd < 0 || w->got + n > w->total) {
        snprintf(err, errlen, "snapshot %s: more bytes than announced", w->path);
        return -EINVAL;
    }
    int rc = write_all(w->fd, p, n);
    if (rc) {
        /* the folder's filesystem, not always data-dir's: rabia-cli backup
         * writes PATH's folder (it said "data-dir's filesystem" there too,
         * the wrong place to free; found by review) */
        snprintf(err, errlen, "writing %s: %s%s%s%s", w->tmp, strerror(-rc),
                 rc == -ENOSPC ? " (free space on the filesystem of " : "", rc == -ENOSPC ? w->dir : "",
                 rc == -ENOSPC ? ")" : "");
        return rc;
    }
    XXH64_update((XXH64_state_t *)w->state, p, n);
    w->got += n;
    return 0;
}

int rabia_snapfile_finish(struct rabia_snapfile_writer *w, char *err, size_t errlen)
{
    if (w->fd < 0 || w->got != w->total) {
        snprintf(err, errlen, "snapshot %s: %" PRIu64 " of %" PRIu64 " bytes", w->path, w->got, w->total);
        return -EINVAL;
    }
    uint8_t h[SNAP_HDR];
    hdr_encode(h, &(struct snap_hdr){w->slot, w->total, XXH64_digest((XXH64_state_t *)w->state)});
    int rc = pwrite(w->fd, h, sizeof h, 0) == (ssize_t)sizeof h ? 0 : -EIO;
    if (!rc && fsync(w->fd)) rc = -errno;
    close(w->fd);
    w->fd = -2; /* finished: rabia_snapfile_publish or _abort next */
    if (rc) {
        unlink(w->tmp);
        w->fd = -1;
        snprintf(err, errlen, "writing snapshot %s: %s", w->path, strerror(-rc));
    }
    return rc;
}

int rabia_snapfile_publish(struct rabia_snapfile_writer *w, char *err, size_t errlen)
{
    RABIA_ASSERT(w->fd == -2);
    w->fd = -1;
    int rc = rename(w->tmp, w->path) ? -errno : 0;
    if (!rc) rc = rabia_fsync_dir(w->dir);
    if (rc) {
        unlink(w->tmp);
        snprintf(err, errlen, "writing snapshot %s: %s", w->path, strerror(-rc));
    }
    return rc;
}

/* The state is checked (its own checksum and slot, rabia_snapfile_verify)
 * before the rename: the file checksum is computed here over the bytes as
 * they came, so a peer streaming a snapshot whose state was damaged on its
 * disk (rabia_snapfile_open checks only the header) made an "intact" file.
 * Renamed into place first, it was this replica's newest snapshot until the
 * install refused it and removed it: killed in between (or a power cut
 * after the removal, which no fsync of the folder followed), the replica
 * then refused to start ("intact but the state machine refuses it"; found
 * by review, reproduced with kill -9 before that unlink). The check reads
 * the file back once more: from the page cache, a fraction of what the
 * install that follows costs. */
int rabia_snapfile_commit(struct rabia_snapfile_writer *w, char *err, size_t errlen)
{
    int rc = rabia_snapfile_finish(w, err, errlen);
    if (rc) return rc;
    struct rabia_snapfile_info info;
    if ((rc = rabia_snapfile_verify(w->tmp, &info, err, errlen))) {
        rabia_snapfile_abort(w);
        return rc;
    }
    return rabia_snapfile_publish(w, err, errlen);
}

void rabia_snapfile_abort(struct rabia_snapfile_writer *w)
{
    if (w->fd >= 0) close(w->fd);
    if (w->fd >= 0 || w->fd == -2) unlink(w->tmp); /* open, or finished and not published */
    w->fd = -1;
}

/* Open dir's snapshot of slot with an intact header for that slot and the
 * file's length: 0 (*fd open), -errno from open (*fd -1), or -EINVAL with
 * *fd still open (the caller closes it). */
static int open_checked(const char *path, uint64_t slot, int *fd, struct snap_hdr *v)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) return -errno;
    struct stat sb;
    uint8_t h[SNAP_HDR];
    if (fstat(*fd, &sb) || sb.st_size < (off_t)SNAP_HDR || pread(*fd, h, SNAP_HDR, 0) != SNAP_HDR ||
        hdr_decode(h, v) != HDR_OK || v->slot != slot || v->len != (uint64_t)sb.st_size - SNAP_HDR)
        return -EINVAL;
    return 0;
}

int rabia_snapfile_map(const char *dir, uint64_t slot, const uint8_t **data, size_t *len, char *err, size_t errlen)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%020" PRIu64 ".snap", dir, slot);
    int fd;
    struct snap_hdr v = {0};
    int rc = open_checked(path, slot, &fd, &v);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    uint64_t l = v.len, dc = v.dc;
    size_t total = (size_t)(SNAP_HDR + l);
    uint8_t *m = NULL;
    if (!rc) {
        m = mmap(NULL, total, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            rc = -errno;
            m = NULL;
        }
    }
    close(fd);
    if (!rc && XXH64(m + SNAP_HDR, l, SNAP_SEED) != dc) rc = -EINVAL;
    if (rc) {
        if (m) munmap(m, total);
        snprintf(err, errlen, "%s: %s", path,
                 rc == -EINVAL ? "damaged (header, length or checksum does not match)" : strerror(-rc));
        return rc;
    }
    *data = m + SNAP_HDR;
    *len = l;
    return 0;
}

void rabia_snapfile_unmap(const uint8_t *data, size_t len)
{
    if (data) munmap((void *)(data - SNAP_HDR), len + SNAP_HDR);
}

int rabia_snapfile_open(const char *dir, uint64_t slot, int *fd_out, uint64_t *total)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%020" PRIu64 ".snap", dir, slot);
    int fd;
    struct snap_hdr v;
    int rc = open_checked(path, slot, &fd, &v);
    if (rc) {
        if (fd >= 0) close(fd);
        return rc;
    }
    *fd_out = fd;
    *total = v.len;
    return 0;
}

/* The file rabia_snapfile_write(dir, slot) makes, and the temporary file
 * it writes first. */
static void write_paths(const char *dir, uint64_t slot, char path[600], char tmp[620])
{
    snprintf(path, 600, "%s/%020" PRIu64 ".snap", dir, slot);
    snprintf(tmp, 620, "%s.tmp", path);
}

void rabia_snapfile_write_abandoned(const char *dir, uint64_t slot)
{
    char path[600], tmp[620];
    write_paths(dir, slot, path, tmp);
    (void)unlink(tmp);
}

int rabia_snapfile_write(const char *dir, uint64_t slot, const uint8_t *data, size_t len, char *err, size_t errlen)
{
    if (rabia_mkdir_durable(dir)) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot create the snapshot folder: %s", dir, strerror(e));
        return -e;
    }
    char path[600], tmp[620];
    write_paths(dir, slot, path, tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(e));
        return -e;
    }
    uint8_t h[SNAP_HDR];
    hdr_encode(h, &(struct snap_hdr){slot, len, XXH64(data, len, SNAP_SEED)});
    int rc = write_all(fd, h, sizeof h);
    if (!rc) rc = write_paced(fd, SNAP_HDR, data, len);
    if (!rc && fsync(fd)) rc = -errno;
    close(fd);
    if (!rc && rename(tmp, path)) rc = -errno;
    if (!rc) rc = rabia_fsync_dir(dir);
    if (rc) {
        unlink(tmp);
        snprintf(err, errlen, "writing snapshot %s (%zu bytes): %s%s", path, len, strerror(-rc),
                 rc == -ENOSPC ? " (free space on the data-dir's filesystem)" : "");
    }
    return rc;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x > y ? -1 : x < y;
}

/* Slots of the snapshot files, newest first. With cleaned (at start only:
 * a snapshot child may be writing one now), leftover .tmp files go,
 * counted there. A folder that cannot be read lists none; *open_err (when
 * not NULL) gets why (0: read, or there is no folder). */
static uint32_t list(const char *dir, uint64_t *v, uint32_t cap, uint32_t *cleaned, int *open_err)
{
    if (open_err) *open_err = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (open_err && errno != ENOENT) *open_err = errno;
        return 0;
    }
    uint32_t k = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        size_t l = strlen(nm);
        if (cleaned && l > 25 && !strncmp(nm + 20, ".snap", 5) && !strcmp(nm + l - 4, ".tmp")) {
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir, nm);
            if (!unlink(p)) (*cleaned)++;
            continue;
        }
        if (l != 25 || strcmp(nm + 20, ".snap")) continue;
        char *end;
        uint64_t slot = strtoull(nm, &end, 10);
        if (end != nm + 20 || k == cap) continue;
        v[k++] = slot;
    }
    closedir(d);
    qsort(v, k, sizeof(*v), cmp_desc);
    return k;
}

uint64_t rabia_snapfile_newest(const char *dir)
{
    uint64_t v[MAX_FILES];
    return list(dir, v, MAX_FILES, NULL, NULL) ? v[0] : 0;
}

int rabia_snapfile_load(const char *dir, const uint8_t **data, size_t *len, uint64_t *slot, char *err,
                        size_t errlen)
{
    uint64_t v[MAX_FILES];
    uint32_t cleaned = 0;
    int oe = 0;
    uint32_t k = list(dir, v, MAX_FILES, &cleaned, &oe);
    if (err && errlen) err[0] = 0;
    /* A folder or a file that cannot be read (another owner after a copy or
     * a restore as root, a mode): the fix is its permissions. Taken for
     * "no snapshot" and "damaged", the start went on without it, and once
     * the log was released up to it refused with "the snapshot file ... is
     * missing (deleted by hand?)", or advised --rejoin (found by review) */
    if (oe) {
        snprintf(err, errlen,
                 "%s: cannot read the snapshot folder: %s: fix its ownership or permissions (the replica's user "
                 "must read and write all of data-dir), then start again",
                 dir, strerror(oe));
        return -oe;
    }
    char first[700] = "";
    for (uint32_t i = 0; i < k; i++) {
        char why[700];
        int rc = rabia_snapfile_map(dir, v[i], data, len, why, sizeof why);
        if (!rc) {
            *slot = v[i];
            if (first[0]) snprintf(err, errlen, "skipped %s; using the older snapshot at slot %" PRIu64, first, v[i]);
            return 1;
        }
        if (rc != -EINVAL) { /* not damage: open() or mmap() refused */
            snprintf(err, errlen, "%s: cannot read it: %s, then start again", why,
                     rc == -EACCES || rc == -EPERM
                         ? "fix its ownership or permissions (the replica's user must read and write all of data-dir)"
                         : "fix that cause");
            return rc;
        }
        if (!first[0]) snprintf(first, sizeof first, "%s", why);
    }
    if (k) {
        snprintf(err, errlen,
                 "%s, and no older intact snapshot is left: restore the file from a backup, or move the data dir "
                 "aside and start this replica with --rejoin so it rebuilds its state from its peers",
                 first);
        return -EUCLEAN;
    }
    return 0;
}

int rabia_snapfile_prune(const char *dir, unsigned keep)
{
    uint64_t v[MAX_FILES];
    uint32_t k = list(dir, v, MAX_FILES, NULL, NULL);
    int n = 0;
    for (uint32_t i = keep; i < k; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%020" PRIu64 ".snap", dir, v[i]);
        if (!unlink(path)) n++;
    }
    if (n) rabia_fsync_dir(dir);
    return n;
}

int rabia_snapfile_clear(const char *dir)
{
    uint64_t v[MAX_FILES];
    uint32_t cleaned = 0;
    (void)list(dir, v, MAX_FILES, &cleaned, NULL);
    return (int)cleaned + rabia_snapfile_prune(dir, 0);
}

/* ------------------------------------------------------------------ */
/* backups: checking a snapshot file at any path */

#define VERIFY_CHUNK (1u << 20)

int rabia_snapfile_verify(const char *path, struct rabia_snapfile_info *info, char *err, size_t errlen)
{
    memset(info, 0, sizeof(*info));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -EINVAL;
    }
    uint64_t size = (uint64_t)sb.st_size;
    uint8_t h[SNAP_HDR];
    int rc = -EINVAL;
    uint8_t *buf = NULL;
    if (size < SNAP_HDR || pread(fd, h, SNAP_HDR, 0) != SNAP_HDR) {
        snprintf(err, errlen, "%s: truncated at offset %" PRIu64 ": a snapshot file starts with a %u-byte header",
                 path, size, SNAP_HDR);
        goto out;
    }
    struct snap_hdr v;
    int hr = hdr_decode(h, &v);
    if (hr == HDR_MAGIC) {
        snprintf(err, errlen, "%s: offset 0: not a rabia snapshot or backup (no RABIASNP magic)", path);
        goto out;
    }
    uint64_t slot = v.slot, len = v.len, dc = v.dc;
    if (hr == HDR_CHECKSUM) {
        snprintf(err, errlen, "%s: offset 32: the header checksum does not match bytes 0..31 (damaged header)", path);
        goto out;
    }
    if (size - SNAP_HDR != len) {
        if (size - SNAP_HDR < len)
            snprintf(err, errlen,
                     "%s: truncated at offset %" PRIu64 ": the header (offset 16) announces %" PRIu64
                     " state bytes, the file ends %" PRIu64 " bytes short",
                     path, size, len, len - (size - SNAP_HDR));
        else
            snprintf(err, errlen,
                     "%s: %" PRIu64 " unexpected bytes after offset %" PRIu64 " (the header at offset 16 announces %" PRIu64
                     " state bytes)",
                     path, size - SNAP_HDR - len, SNAP_HDR + len, len);
        goto out;
    }
    if (!(buf = malloc(VERIFY_CHUNK))) {
        rc = -ENOMEM;
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    XXH64_state_t file_st, state_st, inner_st;
    XXH64_reset(&file_st, SNAP_SEED);
    XXH64_reset(&state_st, 0);
    XXH64_reset(&inner_st, 0); /* the state's own checksum: its last 8 bytes, over the rest */
    uint64_t inner_end = len >= 8 ? len - 8 : 0;
    uint64_t hash_at = len >= 16 ? len - 16 : 0; /* "RSM3": the state hash, then the checksum */
    uint8_t tail[8] = {0}, stored[8] = {0};
    uint8_t head[80]; /* the state's own header: magic, name length, name, slot */
    size_t head_len = 0;
    for (uint64_t off = 0; off < len;) {
        size_t n = len - off < VERIFY_CHUNK ? (size_t)(len - off) : VERIFY_CHUNK;
        ssize_t k = pread(fd, buf, n, (off_t)(SNAP_HDR + off));
        if (k != (ssize_t)n) {
            rc = k < 0 ? -errno : -EIO;
            snprintf(err, errlen, "%s: reading at offset %" PRIu64 ": %s", path, SNAP_HDR + off,
                     k < 0 ? strerror(errno) : "short read");
            goto out;
        }
        XXH64_update(&file_st, buf, n);
        XXH64_update(&state_st, buf, n);
        if (off < inner_end) XXH64_update(&inner_st, buf, (size_t)(inner_end - off < n ? inner_end - off : n));
        uint64_t from = off + n >= 8 ? off + n - 8 : 0; /* this chunk's last 8 bytes, some maybe the tail's */
        if (from < off) from = off;
        for (uint64_t i = from; i < off + n; i++)
            if (i >= inner_end) tail[i - inner_end] = buf[i - off];
        uint64_t hfrom = off + n >= 16 ? off + n - 16 : 0;
        if (hfrom < off) hfrom = off;
        for (uint64_t i = hfrom; i < off + n; i++)
            if (len >= 16 && i >= hash_at && i < inner_end) stored[i - hash_at] = buf[i - off];
        if (head_len < sizeof head) {
            size_t c = sizeof head - head_len < n ? sizeof head - head_len : n;
            memcpy(head + head_len, buf, c);
            head_len += c;
        }
        off += n;
    }
    if (XXH64_digest(&file_st) != dc) {
        snprintf(err, errlen,
                 "%s: the state bytes (offsets %u to %" PRIu64 ") do not match the checksum at offset 24: the file "
                 "is damaged somewhere in that range",
                 path, SNAP_HDR, size);
        goto out;
    }
    /* a file checksum over damaged bytes (a backup streamed from a replica
     * whose own file was damaged) is caught by the state's own checksum */
    uint64_t inner = 0;
    for (int i = 0; i < 8; i++) inner |= (uint64_t)tail[i] << (8 * i);
    if (len < 8 || XXH64_digest(&inner_st) != inner) {
        snprintf(err, errlen,
                 "%s: the state (offsets %u to %" PRIu64 ") does not match its own checksum at offset %" PRIu64
                 ": it was damaged before this file was written",
                 path, SNAP_HDR, size, size - 8);
        goto out;
    }
    /* the state's header (core/rsm.c): u32 magic, u32 name length, name, u64 applied slot */
    uint32_t nl = 0;
    if (head_len >= 8) memcpy(&nl, head + 4, 4);
    uint64_t own = 0;
    if (head_len < 8 || nl >= sizeof info->sm || 8 + (size_t)nl + 8 > head_len) {
        snprintf(err, errlen, "%s: offset %u: the state does not start with a state machine's name and slot", path,
                 SNAP_HDR);
        goto out;
    }
    memcpy(&own, head + 8 + nl, 8);
    if (own != slot) {
        snprintf(err, errlen,
                 "%s: offset %u: the state says slot %" PRIu64 ", the header (offset 8) slot %" PRIu64
                 " (mislabelled file)",
                 path, SNAP_HDR + 8 + nl, own, slot);
        goto out;
    }
    info->slot = slot;
    info->len = len;
    info->checksum = XXH64_digest(&state_st);
    info->state_hash = info->checksum;
    if (head_len >= 4 && !memcmp(head, "RSM3", 4) && len >= 16) {
        info->state_hash = 0;
        for (int i = 0; i < 8; i++) info->state_hash |= (uint64_t)stored[i] << (8 * i);
    }
    memcpy(info->sm, head + 8, nl);
    info->sm[nl] = 0;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}
