/* wal_commit: durable commits per second and commit latency of the
 * write-ahead log, next to the ways it could make a write durable, on one
 * preallocated file in DIR (the disk under test; not tmpfs).
 *
 *   rabia_wal_bench DIR [SECONDS_PER_CASE] [BLOCK]
 *
 * Cases, each one write at a time (queue depth 1), sequential, BLOCK bytes
 * (default 4096) into a file written with zeros first:
 *   pwrite+fdatasync      O_DIRECT pwrite then fdatasync (what fio --fdatasync=1 does)
 *   uring RWF_DSYNC       io_uring WRITE with RWF_DSYNC (O_DIRECT)          <- the log uses this
 *   ... fixed buf         the same as WRITE_FIXED from a registered buffer (no page pinning
 *                         per write: what it would save the log, bench/README.md)
 *   uring write+fsync     io_uring WRITE linked to FSYNC(DATASYNC) (O_DIRECT)
 *   uring O_DSYNC         io_uring WRITE on a file opened O_DIRECT|O_DSYNC
 *   wal (rabia_wal)       the log itself: one ~200-byte record per group, sealed, written
 *                         through the io/ loop (rio_write, RWF_DSYNC) and completed
 *   wal, 64 KiB groups    the same with 16 KiB..64 KiB groups (group commit)
 * Prints one line per case: commits/s, p50, p99 and max latency in us, and
 * the process's CPU (user+sys, all threads: io_uring's workers and, in the
 * wal cases, the log's zero-filling thread) per commit. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "loop.h"
#include "wal.h"

#define FILE_BYTES (256ull << 20)

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t *lat;
static size_t nlat, caplat;
static void rec(uint64_t us)
{
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 65536;
        lat = realloc(lat, caplat * sizeof(*lat));
        if (!lat) abort();
    }
    lat[nlat++] = (uint32_t)us;
}

/* user+sys seconds of this process (io_uring's workers are its threads) */
static double cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) abort();
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double cpu_start;

static void report(const char *name, double secs, uint32_t bytes)
{
    double cpu = cpu_s() - cpu_start;
    qsort(lat, nlat, sizeof(*lat), cmp);
    printf("%-26s %6u B  %9.0f commits/s  p50 %6u us  p99 %6u us  max %7u us  CPU %5.1f us/commit  (%zu commits)\n",
           name, bytes, (double)nlat / secs, nlat ? lat[nlat / 2] : 0, nlat ? lat[nlat * 99 / 100] : 0,
           nlat ? lat[nlat - 1] : 0, nlat ? cpu * 1e6 / (double)nlat : 0, nlat);
    fflush(stdout);
    nlat = 0;
}

static void zero_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    char *z = calloc(1, 1 << 20);
    for (uint64_t off = 0; off < FILE_BYTES; off += 1 << 20)
        if (pwrite(fd, z, 1 << 20, (off_t)off) != 1 << 20) {
            perror("zero fill");
            exit(1);
        }
    fdatasync(fd);
    close(fd);
    free(z);
}

enum how { PWRITE_FDATASYNC, URING_RWF_DSYNC, URING_RWF_DSYNC_FIXED, URING_LINKED_FSYNC, URING_O_DSYNC };

static void raw_case(const char *path, enum how how, double secs, uint32_t bs, const char *name)
{
    int fd = open(path, O_WRONLY | O_DIRECT | (how == URING_O_DSYNC ? O_DSYNC : 0));
    if (fd < 0) {
        perror("open O_DIRECT");
        exit(1);
    }
    void *buf;
    if (posix_memalign(&buf, 4096, bs)) abort();
    memset(buf, 0x5a, bs);
    struct io_uring ring;
    if (io_uring_queue_init(8, &ring, 0)) abort();
    if (how == URING_RWF_DSYNC_FIXED) {
        struct iovec iov = {.iov_base = buf, .iov_len = bs};
        int rc = io_uring_register_buffers(&ring, &iov, 1);
        if (rc) { /* e.g. RLIMIT_MEMLOCK on an older kernel: the other cases still count */
            printf("%-26s skipped: registering the buffer failed (%s)\n", name, strerror(-rc));
            io_uring_queue_exit(&ring);
            free(buf);
            close(fd);
            return;
        }
    }
    cpu_start = cpu_s();
    uint64_t t_end = now_us() + (uint64_t)(secs * 1e6), off = 0, t0 = now_us();
    while (now_us() < t_end) {
        uint64_t s = now_us();
        if (how == PWRITE_FDATASYNC) {
            if (pwrite(fd, buf, bs, (off_t)off) != (ssize_t)bs || fdatasync(fd)) abort();
        } else {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            if (how == URING_RWF_DSYNC_FIXED)
                io_uring_prep_write_fixed(sqe, fd, buf, bs, off, 0);
            else
                io_uring_prep_write(sqe, fd, buf, bs, off);
            if (how == URING_RWF_DSYNC || how == URING_RWF_DSYNC_FIXED) sqe->rw_flags = RWF_DSYNC;
            int want = 1;
            if (how == URING_LINKED_FSYNC) {
                sqe->flags |= IOSQE_IO_LINK;
                sqe = io_uring_get_sqe(&ring);
                io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
                want = 2;
            }
            io_uring_submit_and_wait(&ring, (unsigned)want);
            for (int i = 0; i < want; i++) {
                struct io_uring_cqe *cqe;
                if (io_uring_wait_cqe(&ring, &cqe)) abort();
                if (cqe->res < 0) {
                    fprintf(stderr, "%s: %s\n", name, strerror(-cqe->res));
                    exit(1);
                }
                io_uring_cqe_seen(&ring, cqe);
            }
        }
        rec(now_us() - s);
        off += bs;
        if (off + bs > FILE_BYTES) off = 0;
    }
    report(name, (double)(now_us() - t0) / 1e6, bs);
    io_uring_queue_exit(&ring);
    free(buf);
    close(fd);
}

static int done_res;
static bool done_flag;
static void on_done(void *ctx, int res)
{
    (void)ctx;
    done_res = res;
    done_flag = true;
}

static void wal_case(const char *dir, double secs, uint32_t rec_bytes, uint32_t recs_per_group, const char *name)
{
    char d[600], cmd[700];
    snprintf(d, sizeof d, "%s/wal", dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (system(cmd)) abort();
    struct rabia_wal_config cfg = {.dir = d, .segment_bytes = 64u << 20, .cluster_id = 1, .replica = 0,
                                   .batch_incarnation = 1};
    struct rabia_wal *w;
    struct rabia_wal_info info;
    char err[1024];
    if (rabia_wal_open(&w, &cfg, NULL, NULL, &info, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    struct rio_handlers h = {0};
    struct rio_loop *loop;
    if (rio_loop_create(&loop, &h, NULL, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    uint8_t *body = calloc(1, rec_bytes);
    cpu_start = cpu_s();
    uint64_t t_end = now_us() + (uint64_t)(secs * 1e6), t0 = now_us(), seq = 0;
    uint32_t bytes = 0;
    while (now_us() < t_end) {
        uint64_t s = now_us();
        for (uint32_t i = 0; i < recs_per_group; i++) {
            ++seq; /* not inside the initializer: its expressions are unsequenced (clang -Wunsequenced) */
            struct rabia_msg m = {.type = RABIA_MSG_DECISION, .slot = seq, .value = 1, .has_id = 1,
                                  .id = {.proxy = 0, .incarnation = 1, .seq = seq}, .body = body,
                                  .body_len = rec_bytes};
            if (rabia_wal_append_msg(w, RABIA_WAL_DECIDED, seq, &m)) abort();
        }
        struct rabia_wal_write io;
        int rc;
        while ((rc = rabia_wal_seal(w, &io)) == -EAGAIN) usleep(200); /* the preallocator is behind */
        if (rc != 1) abort();
        bytes = io.len;
        done_flag = false;
        if (rio_write(loop, io.fd, io.buf, io.len, io.off, io.rw_flags, on_done, NULL)) abort();
        while (!done_flag) rio_run_once(loop, 1000000);
        if (rabia_wal_written(w, done_res)) abort();
        rec(now_us() - s);
    }
    report(name, (double)(now_us() - t0) / 1e6, bytes);
    free(body);
    rio_loop_destroy(loop);
    rabia_wal_close(w);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [SECONDS_PER_CASE] [BLOCK]\n", argv[0]);
        return 2;
    }
    double secs = argc > 2 ? atof(argv[2]) : 3;
    uint32_t bs = argc > 3 ? (uint32_t)atoi(argv[3]) : 4096;
    char path[600];
    snprintf(path, sizeof path, "%s/raw.dat", argv[1]);
    mkdir(argv[1], 0750);
    zero_file(path);
    raw_case(path, PWRITE_FDATASYNC, secs, bs, "pwrite+fdatasync");
    raw_case(path, URING_RWF_DSYNC, secs, bs, "uring RWF_DSYNC");
    raw_case(path, URING_RWF_DSYNC_FIXED, secs, bs, "uring RWF_DSYNC fixed buf");
    raw_case(path, URING_LINKED_FSYNC, secs, bs, "uring write+fsync linked");
    raw_case(path, URING_O_DSYNC, secs, bs, "uring O_DSYNC");
    unlink(path);
    wal_case(argv[1], secs, 200, 1, "wal (rabia_wal)");
    wal_case(argv[1], secs, 200, 60, "wal, 60 records/group");
    wal_case(argv[1], secs, 1000, 60, "wal, 60 x 1 KB/group");
    free(lat);
    return 0;
}
