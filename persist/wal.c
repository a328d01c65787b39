/* The write-ahead log (wal.h). On-disk format, every integer little-endian:
 *
 * Segment file  <dir>/<20-digit number>.seg, segment_bytes long, created
 * zero-filled (header first) by the preallocator and renamed into place:
 *
 *   0   8  magic "RABIAWAL"
 *   8   4  version (3)
 *  12   4  block: O_DIRECT alignment the log was written with
 *  16   8  segment number (equal to the file name)
 *  24   8  cluster id
 *  32   8  batch incarnation (the replica's batch id namespace)
 *  40   1  replica (0-based)
 *  41   1  1: segment 1 of a log that began with a recovery from the peers
 *          (core.h rule 2; durable before the first record can be)
 *  56   8  XXH64 of bytes 0..55 (seed WAL_SEED)
 *
 * Data starts at `data` = max(block, 4096). It is a sequence of groups, one
 * per write, each starting on a block boundary and padded with zeros to the
 * next one:
 *
 *   group header (48 bytes): u32 magic "RWG1", u32 record count,
 *     u64 first lsn (records are numbered from 1 across the whole log),
 *     u64 bytes (header + records, without the padding), u64 segment number,
 *     u64 offset of the group in the segment, u64 group checksum: h =
 *     XXH3_64(header bytes 0..39, seed WAL_SEED), then for every record in
 *     order h = XXH3_64(its 8-byte checksum field, seed h)
 *   records: u32 frame length, u8 type (enum rabia_wal_rec), u8 0, u16 0,
 *     u64 slot (for BATCH: the batch's sequence number; for RESERVE: the
 *     highest own sequence number reserved), u64 checksum:
 *     XXH3_64(frame, seed XXH3_64(record header bytes 0..15, seed
 *     WAL_SEED)); then the frame (an encoded rabia_msg, core/codec.h) and
 *     zeros to a multiple of 8.
 *
 * Every byte is hashed once: a group is intact when each of its records'
 * checksums and the group's checksum over the header and those checksums
 * match. (Version 2 hashed each record twice with XXH64, into its own
 * checksum and the group's; with the frames' XXH64 that was 9-12% of a
 * replica's instructions, bench/results/callgrind.md.)
 *
 * A zero group magic on a block boundary ends a segment's data; the log
 * goes on in the next segment when that one starts with the next lsn.
 *
 * Recovery (rabia_wal_open). Only one write is ever in flight, so only the
 * last group can be incomplete after a crash. The scan stops at the first
 * group that is not intact (checksum, numbering, position); if an intact
 * group exists anywhere after that point (in this or a later segment), the
 * damage is not a torn last write but corruption of acknowledged data (a
 * flipped bit, a zeroed block, a misdirected write) and the open fails
 * naming the file and offset. Otherwise the incomplete tail is zeroed and
 * writing resumes there: nothing in it was acknowledged (the replica sends
 * and answers only after a write completes). Nothing is skipped silently.
 *
 * Durability: each group is one O_DIRECT write with RWF_DSYNC into a
 * segment whose blocks were all written before (no metadata changes), which
 * measured fastest here (bench/wal_bench.c; MACHINE.md: RWF_DSYNC 7.8 k/s p50
 * 128 us against 5.6 k/s for a write linked to an fdatasync). */
#define _GNU_SOURCE
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#define XXH_INLINE_ALL /* XXH3 on records of a few hundred bytes: inlined */
#include <xxhash.h>

#include "codec.h"
#include "le.h"
#include "datadir.h"
#include "invariant.h"

#define WAL_SEED 0x5241424957414cull /* "RABIWAL" */
#define SEG_MAGIC "RABIAWAL"
#define SEG_VERSION 4u /* 2: batch bodies carry a time (core/codec.h): a v1 log would replay as no-ops;
                          * 3: XXH3 record checksums, the group's over them;
                          * 4: DECIDED_REF records (a v3 reader would refuse them as malformed) */
#define SEG_VERSION_MIN 3u /* oldest version this build reads: v3 logs hold no record it lacks */
#define GRP_MAGIC 0x31475752u /* "RWG1" */
#define GRP_HDR 48u
#define REC_HDR 24u
#define MAX_SEGMENTS 65536u

/* Where a peer's catch-up read starts inside a segment: for each of
 * SEG_MARKS equal parts, the first group that begins in it and the highest
 * decided slot before that group. A read for slot s starts at the last mark
 * whose decisions before it are all below s (decided records are in slot
 * order), less the bytes the reader wants for the bodies those decisions
 * name, instead of a whole segment back: with 64 MiB segments that was up
 * to 32 reads of 4 MiB (about 40 ms each on a virtio disk) before the first
 * slot, and now 6-8 (bench/catchup_start.sh). */
#define SEG_MARKS 16u

struct seg {
    uint64_t no;
    uint64_t max_slot;      /* highest slot of a SENT or DECIDED record */
    uint64_t max_batch_seq; /* highest sequence of a BATCH record */
    uint64_t max_decided;   /* highest slot of a DECIDED record: where a catch-up's read starts
                               (a SENT record may name a slot decided long before) */
    uint64_t mark_decided[SEG_MARKS]; /* max_decided before the group at mark_off */
    uint32_t mark_off[SEG_MARKS];     /* first group beginning in that part of the segment (0: none yet) */
    bool dirty_after_end;   /* at open: past the log's end, yet not zero (no intact group: checked) */
};

struct gbuf {                /* one group's bytes, block-aligned */
    uint8_t *p;
    size_t len, cap;
    uint32_t n;              /* records */
    uint64_t max_slot, max_batch_seq, max_decided;
};

/* A record's place in what a segment or group holds: the highest BATCH or
 * RESERVE sequence, the highest slot of the others (SENT and DECIDED: what
 * the release rule goes by), and of DECIDED records alone (where a
 * catch-up's read starts). */
static void note_record(uint8_t type, uint64_t slot, uint64_t *max_slot, uint64_t *max_batch_seq,
                        uint64_t *max_decided)
{
    if (type == RABIA_WAL_BATCH || type == RABIA_WAL_RESERVE) {
        if (slot > *max_batch_seq) *max_batch_seq = slot;
        return;
    }
    if (slot > *max_slot) *max_slot = slot;
    if ((type == RABIA_WAL_DECIDED || type == RABIA_WAL_DECIDED_REF) && slot > *max_decided) *max_decided = slot;
}

/* A durable group at `off` of segment sg, before its records count in
 * sg->max_decided: the first in its part of the segment marks it. */
static void seg_mark(struct seg *sg, uint64_t segment_bytes, uint64_t off)
{
    RABIA_ASSERT(off > 0 && off < segment_bytes && segment_bytes <= UINT32_MAX);
    uint32_t j = (uint32_t)(off / (segment_bytes / SEG_MARKS));
    RABIA_ASSERT(j < SEG_MARKS);
    if (sg->mark_off[j]) return;
    sg->mark_off[j] = (uint32_t)off;
    sg->mark_decided[j] = sg->max_decided;
}

struct rabia_wal {
    struct rabia_wal_config cfg;
    char dir[512];
    uint32_t block, data;    /* alignment; first data byte of a segment */
    bool direct;
    uint64_t batch_incarnation;
    struct seg *segs;        /* kept segments, oldest first; the last one is being written */
    uint32_t n_segs;
    int fd;                  /* the segment being written */
    uint64_t pos;            /* next group's offset in it */
    uint64_t next_lsn;
    struct gbuf open, flight;
    struct gbuf pending_rest; /* cut(): records for the write after this one */
    bool in_flight;
    uint64_t flight_lsn;     /* first lsn of the flight group */
    uint64_t flight_seg;     /* segment it goes to */
    uint64_t flight_off;     /* ... and its offset there */
    bool flight_new_seg;     /* it is the first group of a new segment */
    struct rabia_wal_stats st;
    /* preallocator */
    pthread_t thr;
    bool thr_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t want;           /* create segments up to this number */
    uint64_t ready;          /* created up to this number */
    /* released segments [unlink_next, unlink_end) the thread still has to
     * delete, oldest first (rabia_wal_release): unlinking a 64 MiB segment
     * took 25-30 ms on this VM's ext4, and four of them at a snapshot
     * stalled the event loop (and every log write's completion) 110 ms */
    uint64_t unlink_next, unlink_end;
    bool unlink_err_logged;
    bool quit;
    uint8_t *rbuf;           /* rabia_wal_read's group buffer */
    size_t rcap;
    char disk_err[256];
    /* disk_err is not empty (written under mu, read without it): every
     * client write asks, and taking the lock and copying the string each
     * time was 5% of the proxy's instructions at SET -P 16 */
    bool has_disk_err;
    bool stalled;
};

/* ------------------------------------------------------------------ */
/* small helpers */

/* the log's integers are little-endian (core/le.h's rabia_le_*), as the wire's */
static uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }


/* A record's checksum: its 16 header bytes seed the hash of its frame. */
static uint64_t rec_sum(const uint8_t *r, uint32_t len)
{
    uint64_t seed = XXH3_64bits_withSeed(r, 16, WAL_SEED);
    return rabia_xxh3(r + REC_HDR, len, seed); /* codec.h: vector-dispatched for long records */
}

/* A group's checksum from its header bytes 0..39 and, in order, the
 * checksum fields of its n records (which the caller bounds-checked). */
static uint64_t grp_sum(const uint8_t *g, uint32_t n)
{
    uint64_t h = XXH3_64bits_withSeed(g, 40, WAL_SEED);
    size_t p = GRP_HDR;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *r = g + p;
        h = XXH3_64bits_withSeed(r + 16, 8, h);
        p += (size_t)round_up(REC_HDR + (uint64_t)rabia_le_get32(r), 8);
    }
    return h;
}

static void seg_path(const struct rabia_wal *w, uint64_t no, char *out, size_t len)
{
    snprintf(out, len, "%s/%020" PRIu64 ".seg", w->dir, no);
}

/* The number a segment file's name (seg_path's) gives, or 0 for any other
 * name. */
static uint64_t segment_no(const char *nm)
{
    if (strlen(nm) != 24 || strcmp(nm + 20, ".seg") || strspn(nm, "0123456789") != 20) return 0;
    return strtoull(nm, NULL, 10);
}


static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

static int gbuf_reserve(struct gbuf *g, size_t need, uint32_t align)
{
    if (need <= g->cap) return 0;
    size_t cap = g->cap ? g->cap : 64 * 1024;
    while (cap < need) cap *= 2;
    void *p;
    if (posix_memalign(&p, align, cap)) return -ENOMEM;
    if (g->len) memcpy(p, g->p, g->len);
    free(g->p);
    g->p = p;
    g->cap = cap;
    return 0;
}

static void gbuf_reset(struct gbuf *g)
{
    g->len = GRP_HDR; /* room for the group header */
    g->n = 0;
    g->max_slot = 0;
    g->max_batch_seq = 0;
    g->max_decided = 0;
}

/* ------------------------------------------------------------------ */
/* segment headers */

static void seg_header(const struct rabia_wal *w, uint64_t no, uint8_t *h)
{
    memset(h, 0, 64);
    memcpy(h, SEG_MAGIC, 8);
    rabia_le_put32(h + 8, SEG_VERSION);
    rabia_le_put32(h + 12, w->block);
    rabia_le_put64(h + 16, no);
    rabia_le_put64(h + 24, w->cfg.cluster_id);
    rabia_le_put64(h + 32, w->batch_incarnation);
    h[40] = w->cfg.replica;
    h[41] = no == 1 && w->cfg.recovering ? 1 : 0;
    rabia_le_put64(h + 56, XXH64(h, 56, WAL_SEED));
}

/* 0, or -EINVAL with err saying what is wrong with the header. */
static int seg_header_check(const struct rabia_wal *w, const char *path, uint64_t no, const uint8_t *h, size_t len,
                            uint64_t *incarnation, uint32_t *block, char *err, size_t errlen)
{
    if (len < 64 || memcmp(h, SEG_MAGIC, 8) || rabia_le_get64(h + 56) != XXH64(h, 56, WAL_SEED)) {
        snprintf(err, errlen,
                 "%s: not a rabia log segment, or its header is damaged (offset 0). Move the data dir aside and start "
                 "this replica with --rejoin: it rebuilds its state from its peers",
                 path);
        return -EINVAL;
    }
    if (rabia_le_get32(h + 8) < SEG_VERSION_MIN || rabia_le_get32(h + 8) > SEG_VERSION) {
        snprintf(err, errlen, "%s: log format version %u, this build reads %u to %u: run the matching rabiad", path,
                 rabia_le_get32(h + 8), SEG_VERSION_MIN, SEG_VERSION);
        return -EINVAL;
    }
    if (rabia_le_get64(h + 16) != no) {
        snprintf(err, errlen,
                 "%s: the header says segment %" PRIu64 " (a renamed or misplaced file): restore the original name "
                 "or move the data dir aside and start with --rejoin",
                 path, rabia_le_get64(h + 16));
        return -EINVAL;
    }
    if (rabia_le_get64(h + 24) != w->cfg.cluster_id || h[40] != w->cfg.replica) {
        snprintf(err, errlen,
                 "%s: written by replica %u of cluster %016" PRIx64 ", this is replica %u of cluster %016" PRIx64
                 ": wrong data-dir for this replica? (If the members list changed since this log was written, "
                 "set cluster-id 0x%016" PRIx64 ")",
                 path, h[40] + 1, rabia_le_get64(h + 24), w->cfg.replica + 1, w->cfg.cluster_id,
                 rabia_le_get64(h + 24));
        return -EINVAL;
    }
    *incarnation = rabia_le_get64(h + 32);
    *block = rabia_le_get32(h + 12);
    return 0;
}

/* ------------------------------------------------------------------ */
/* preallocation */

/* Zeros into [from, to) of fd, a megabyte at a time, then fdatasync.
 * pause_us > 0 paces it: each megabyte is written back and followed by a
 * pause, because an unthrottled 64 MiB of zeros queued behind the log's
 * commits made their p99 4 ms instead of 0.3 ms (bench/wal_commit.c); paced,
 * a segment takes about 0.2 s, far less than filling one takes at any
 * commit rate. With O_DIRECT (direct: fd was opened with it, from and to
 * are block-aligned) the zeros go from one aligned buffer straight to the
 * disk: through the page cache the kernel copied every zero, which cost
 * each replica 0.25 us of CPU per 100-byte SET at -P 16 (measured with
 * per-thread /proc times), a quarter of what the log cost. 0 or a
 * negative errno. */
static int write_zeros(int fd, uint64_t from, uint64_t to, unsigned pause_us, bool direct, uint32_t block)
{
    static const size_t chunk = 1u << 20;
    RABIA_ASSERT(!direct || (from % block == 0 && to % block == 0));
    void *z = NULL;
    if (posix_memalign(&z, block ? block : 4096, chunk)) return -ENOMEM;
    memset(z, 0, chunk);
    int rc = 0;
    for (uint64_t off = from; !rc && off < to;) {
        size_t n = to - off < chunk ? (size_t)(to - off) : chunk;
        ssize_t k = pwrite(fd, z, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0 || (direct && (uint64_t)k % block)) {
            rc = k < 0 ? -errno : -EIO;
            break;
        }
        if (pause_us) {
            if (!direct && sync_file_range(fd, (off_t)off, k, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                                                  SYNC_FILE_RANGE_WAIT_AFTER))
                rc = -errno;
            usleep(pause_us);
        }
        off += (uint64_t)k;
    }
    free(z);
    if (!rc && fdatasync(fd)) rc = -errno;
    return rc;
}

/* Create segment `no` zero-filled under a temporary name, make it durable
 * and rename it into place. 0 or a negative errno (err filled). */
static int seg_create(struct rabia_wal *w, uint64_t no, char *err, size_t errlen)
{
    char path[600], tmp[620];
    seg_path(w, no, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (w->direct ? O_DIRECT : 0), 0640);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "creating log segment %s: %s", tmp, strerror(e));
        return -e;
    }
    /* the header goes in the first data block (w->data: aligned for O_DIRECT) */
    RABIA_ASSERT(w->data >= 64 && w->cfg.segment_bytes % w->data == 0);
    void *hb = NULL;
    int rc = posix_memalign(&hb, w->block, w->data) ? -ENOMEM : 0;
    if (!rc) {
        memset(hb, 0, w->data);
        seg_header(w, no, hb);
        ssize_t k = pwrite(fd, hb, w->data, 0);
        rc = k == (ssize_t)w->data ? 0 : k < 0 ? -errno : -EIO;
        free(hb);
    }
    if (!rc)
        rc = write_zeros(fd, w->data, w->cfg.segment_bytes, w->cfg.segment_bytes > (8u << 20) ? 2000 : 200, w->direct,
                         w->block);
    close(fd);
    if (!rc && rename(tmp, path)) rc = -errno;
    if (!rc) rc = rabia_fsync_dir(w->dir);
    if (rc) {
        unlink(tmp);
        snprintf(err, errlen, "creating log segment %s (%" PRIu64 " bytes): %s", path, w->cfg.segment_bytes,
                 strerror(-rc));
    }
    return rc;
}

/* The thread's deletion of released segments, oldest first (called with
 * mu held, returns with it held): a crash in between leaves a shorter
 * prefix of old segments, never a hole. false: an unlink failed (logged
 * once; retried in a second, nothing after it deleted meanwhile). */
static bool unlink_released(struct rabia_wal *w)
{
    bool any = false;
    while (w->unlink_next < w->unlink_end) {
        uint64_t no = w->unlink_next;
        pthread_mutex_unlock(&w->mu);
        char path[600];
        seg_path(w, no, path, sizeof path);
        int e = unlink(path) ? errno : 0;
        pthread_mutex_lock(&w->mu);
        if (e && e != ENOENT) {
            if (!w->unlink_err_logged)
                fprintf(stderr, "rabia wal: releasing %s: %s; retrying every second\n", path, strerror(e));
            w->unlink_err_logged = true;
            return false;
        }
        w->unlink_err_logged = false;
        w->unlink_next = no + 1;
        any = true;
    }
    if (any) {
        pthread_mutex_unlock(&w->mu);
        rabia_fsync_dir(w->dir);
        pthread_mutex_lock(&w->mu);
    }
    return true;
}

/* The preallocator's retry wait: a second, or less when signalled (called
 * with mu held). */
static void wait_a_second(struct rabia_wal *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_cond_timedwait(&w->cv, &w->mu, &ts);
}

static void *prealloc_main(void *arg)
{
    struct rabia_wal *w = arg;
    pthread_mutex_lock(&w->mu);
    /* at quit: the deletions asked for are done first (a clean close
     * leaves no released segment behind) */
    while (!w->quit || w->unlink_next < w->unlink_end) {
        /* space first, then new segments; an unlink that fails is retried
         * every second and does not hold the next segment back */
        bool unlinked = w->unlink_next == w->unlink_end || unlink_released(w);
        if (w->quit) break; /* done, or an unlink failing at close: the next start sees an older prefix */
        if (w->ready >= w->want) {
            if (unlinked) pthread_cond_wait(&w->cv, &w->mu);
            else wait_a_second(w);
            continue;
        }
        uint64_t no = w->ready + 1;
        pthread_mutex_unlock(&w->mu);
        char err[256] = "";
        int rc = seg_create(w, no, err, sizeof err);
        pthread_mutex_lock(&w->mu);
        if (!rc) {
            w->ready = no;
            w->disk_err[0] = 0;
            __atomic_store_n(&w->has_disk_err, false, __ATOMIC_RELEASE);
            w->st.segments_created++;
            continue;
        }
        if (strcmp(w->disk_err, err)) fprintf(stderr, "rabia wal: %s; retrying every second\n", err);
        snprintf(w->disk_err, sizeof w->disk_err, "%s", err);
        __atomic_store_n(&w->has_disk_err, w->disk_err[0] != 0, __ATOMIC_RELEASE);
        /* retry in a second (a full disk may get space back), or at once
         * when segments were released meanwhile (their space first) */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        while (!w->quit && (w->unlink_next == w->unlink_end || w->unlink_err_logged)) {
            if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT) break;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void want_segment(struct rabia_wal *w, uint64_t no)
{
    pthread_mutex_lock(&w->mu);
    if (no > w->want) {
        w->want = no;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

static bool segment_ready(struct rabia_wal *w, uint64_t no)
{
    pthread_mutex_lock(&w->mu);
    bool ok = w->ready >= no;
    pthread_mutex_unlock(&w->mu);
    return ok;
}

static int open_segment_fd(struct rabia_wal *w, uint64_t no, char *err, size_t errlen)
{
    char path[600];
    seg_path(w, no, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CLOEXEC | (w->direct ? O_DIRECT : 0));
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "opening log segment %s: %s", path, strerror(e));
        return -e;
    }
    return fd;
}

/* ------------------------------------------------------------------ */
/* probing */

static int probe(struct rabia_wal *w, char *err, size_t errlen)
{
    char path[600];
    snprintf(path, sizeof path, "%s/.probe", w->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0640);
    uint32_t align = 4096;
    if (fd < 0 && errno == EINVAL) {
        if (!w->cfg.allow_buffered) {
            snprintf(err, errlen,
                     "%s: the filesystem does not support O_DIRECT, which the write-ahead log needs; put data-dir on "
                     "ext4 or xfs (tmpfs cannot), or for development only set wal-allow-buffered = yes",
                     w->dir);
            return -EINVAL;
        }
        w->direct = false;
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    } else {
        w->direct = fd >= 0;
    }
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot create a file in the log folder: %s", path, strerror(e));
        return -e;
    }
#ifdef STATX_DIOALIGN
    struct statx sx;
    if (w->direct && statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) &&
        sx.stx_dio_offset_align)
        align = sx.stx_dio_offset_align > 4096 ? sx.stx_dio_offset_align : 4096;
#endif
    int rc = 0;
    if (align > 65536 || (align & (align - 1))) { /* segments are multiples of 64 KiB */
        close(fd);
        unlink(path);
        snprintf(err, errlen, "%s: the filesystem asks O_DIRECT writes to be aligned to %u bytes; the log supports "
                 "powers of two up to 65536: put data-dir on ext4 or xfs", w->dir, align);
        return -EINVAL;
    }
    if (w->direct) { /* an aligned O_DIRECT write must work */
        void *b;
        if (posix_memalign(&b, align, align)) rc = -ENOMEM;
        else {
            memset(b, 0, align);
            if (pwrite(fd, b, align, 0) != (ssize_t)align) {
                rc = -errno;
                snprintf(err, errlen, "%s: an O_DIRECT write of %u bytes failed: %s", path, align, strerror(errno));
            }
            free(b);
        }
    }
    close(fd);
    unlink(path);
    w->block = align;
    w->data = align > 4096 ? align : 4096;
    return rc;
}

/* ------------------------------------------------------------------ */
/* scanning */

/* The header fields of g, `avail` bytes at offset `off` of segment `no`:
 * magic, length within avail, position; not the checksums. Its first lsn,
 * length and record count. */
static bool header_check(const uint8_t *g, uint64_t avail, uint64_t no, uint64_t off, uint64_t *lsn, uint64_t *bytes,
                         uint32_t *n)
{
    if (avail < GRP_HDR || rabia_le_get32(g) != GRP_MAGIC) return false;
    uint64_t len = rabia_le_get64(g + 16);
    if (len < GRP_HDR || len > avail || rabia_le_get64(g + 24) != no || rabia_le_get64(g + 32) != off) return false;
    *lsn = rabia_le_get64(g + 8);
    *bytes = len;
    *n = rabia_le_get32(g + 4);
    return true;
}

/* Is g, `avail` bytes at offset `off` of segment `no`, an intact group
 * (any lsn)? */
static bool group_check(const uint8_t *g, uint64_t avail, uint64_t no, uint64_t off, uint64_t *lsn, uint64_t *bytes,
                        uint32_t *n)
{
    uint64_t len;
    uint32_t cnt;
    if (!header_check(g, avail, no, off, lsn, &len, &cnt)) return false;
    /* every record in bounds and intact, ending where the group ends */
    uint64_t p = GRP_HDR;
    for (uint32_t i = 0; i < cnt; i++) {
        if (p + REC_HDR > len) return false;
        uint32_t rl = rabia_le_get32(g + p);
        if (rl > len - p - REC_HDR || rec_sum(g + p, rl) != rabia_le_get64(g + p + 16)) return false;
        p += round_up(REC_HDR + (uint64_t)rl, 8);
    }
    if (p != len || grp_sum(g, cnt) != rabia_le_get64(g + 40)) return false;
    *bytes = len;
    *n = cnt;
    return true;
}

/* The header of a group whose write began at `off` of segment `no`, with
 * records (a torn write fails the checksums, not this). */
static bool group_header_at(const uint8_t *img, uint64_t size, uint64_t no, uint64_t off, uint64_t *lsn,
                            uint64_t *bytes, uint32_t *n)
{
    return off <= size && header_check(img + off, size - off, no, off, lsn, bytes, n) && *n > 0;
}

/* Is there an intact group at `off` of this segment image (any lsn)? */
static bool group_intact(const uint8_t *img, uint64_t size, uint64_t no, uint64_t off, uint64_t *lsn,
                         uint64_t *bytes, uint32_t *n)
{
    if (off > size) return false;
    return group_check(img + off, size - off, no, off, lsn, bytes, n);
}

/* Reads up to `size` bytes of path into buf: *got of them. *file_size
 * (when not NULL) is the file's own length, which may be larger: a
 * segment longer than wal-segment-bytes must be refused, not read in part. */
static int read_file(const char *path, uint8_t *buf, uint64_t size, uint64_t *got, uint64_t *file_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    if (file_size) {
        struct stat st;
        if (fstat(fd, &st)) {
            int e = errno;
            close(fd);
            return -e;
        }
        *file_size = (uint64_t)st.st_size;
    }
    uint64_t done = 0;
    while (done < size) {
        ssize_t k = pread(fd, buf + done, size - done, (off_t)done);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (k == 0) break;
        done += (uint64_t)k;
    }
    close(fd);
    *got = done;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Segment numbers present in the folder, sorted. Leftover .tmp files of an
 * interrupted preallocation are removed. */
static int list_segments(struct rabia_wal *w, uint64_t **out, uint32_t *n, char *err, size_t errlen)
{
    DIR *d = opendir(w->dir);
    if (!d) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", w->dir, strerror(e));
        return -e;
    }
    uint32_t cap = 16, k = 0;
    uint64_t *v = malloc(cap * sizeof(*v));
    struct dirent *de;
    int rc = v ? 0 : -ENOMEM;
    while (!rc && (de = readdir(d))) {
        const char *nm = de->d_name;
        size_t l = strlen(nm);
        if (l == 28 && !strcmp(nm + 20, ".seg.tmp")) {
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", w->dir, nm);
            unlink(p);
            continue;
        }
        uint64_t no = segment_no(nm);
        if (!no) continue;
        if (k == cap) {
            if (cap >= MAX_SEGMENTS) {
                snprintf(err, errlen, "%s: more than %u log segments: not a rabia log folder?", w->dir, MAX_SEGMENTS);
                rc = -E2BIG;
                break;
            }
            cap *= 2;
            uint64_t *nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            v = nv;
        }
        v[k++] = no;
    }
    closedir(d);
    if (rc) {
        free(v);
        return rc;
    }
    qsort(v, k, sizeof(*v), cmp_u64);
    *out = v;
    *n = k;
    return 0;
}

struct scan {
    uint64_t expect_lsn;     /* 0 = not known yet (first group) */
    uint32_t stop_idx;       /* segment index where the log ends */
    uint64_t stop_off;       /* offset of the first byte after the last intact group */
    bool stop_dirty;         /* the stop point holds bytes that are not an intact group */
    char why[160];
};

/* Walk the records of one intact group, checking each and calling fn. */
static int visit_group(struct rabia_wal *w, const char *path, const uint8_t *g, uint64_t off, uint64_t bytes,
                       uint32_t n, struct seg *sg, rabia_wal_record_fn fn, void *ctx, char *err, size_t errlen)
{
    seg_mark(sg, w->cfg.segment_bytes, off);
    uint64_t p = GRP_HDR;
    for (uint32_t i = 0; i < n; i++) {
        if (p + REC_HDR > bytes) goto bad;
        const uint8_t *r = g + p;
        uint32_t len = rabia_le_get32(r);
        /* group_intact checked its checksum */
        if (len > bytes - p - REC_HDR || r[5] || rabia_le_get32(r + 4) >> 16) goto bad;
        uint8_t type = r[4];
        uint64_t slot = rabia_le_get64(r + 8);
        if (type < RABIA_WAL_SENT || type > RABIA_WAL_DECIDED_REF) goto bad;
        note_record(type, slot, &sg->max_slot, &sg->max_batch_seq, &sg->max_decided);
        int rc = fn ? fn(ctx, type, slot, r + REC_HDR, len, err, errlen) : 0;
        if (rc) return rc;
        p += round_up(REC_HDR + (uint64_t)len, 8);
    }
    if (p != round_up(bytes, 8) && p != bytes) goto bad;
    return 0;
bad:
    /* the group checksum held but a record inside does not parse: written so by a bug */
    snprintf(err, errlen,
             "%s offset %" PRIu64 ": an intact group holds a malformed record (written by a faulty build?). Move the "
             "data dir aside and start this replica with --rejoin",
             path, off + p);
    return -EINVAL;
}

/* ------------------------------------------------------------------ */
/* open / close */


static int zero_range(struct rabia_wal *w, uint64_t no, uint64_t from, uint64_t to, char *err, size_t errlen)
{
    char path[600];
    seg_path(w, no, path, sizeof path);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    int rc = write_zeros(fd, from, to, 0, false, 4096); /* at start: through the page cache */
    close(fd);
    if (rc) snprintf(err, errlen, "%s: zeroing the torn tail: %s", path, strerror(-rc));
    return rc;
}

int rabia_wal_open(struct rabia_wal **out, const struct rabia_wal_config *cfg, rabia_wal_record_fn fn, void *ctx,
                   struct rabia_wal_info *info, char *err, size_t errlen)
{
    *out = NULL;
    memset(info, 0, sizeof(*info));
    if (cfg->segment_bytes < (1u << 20) || cfg->segment_bytes > (1ull << 30) || cfg->segment_bytes % 65536) {
        snprintf(err, errlen, "wal-segment-bytes = %" PRIu64 ": must be a multiple of 64 KiB between 1 MiB and 1 GiB",
                 cfg->segment_bytes);
        return -EINVAL;
    }
    /* Cut short to fit w->dir, the path named another folder: a data-dir
     * of 508 to 511 bytes put the log in data-dir/wa, data-dir/w or the
     * data dir itself, where the rest of rabiad (the removal of a recovery
     * cut short, a restore's check) never looked (found by review) */
    if (strlen(cfg->dir) >= sizeof(((struct rabia_wal *)0)->dir)) {
        snprintf(err, errlen, "%.100s...: the log folder's path is too long (at most %zu bytes): use a shorter data-dir",
                 cfg->dir, sizeof(((struct rabia_wal *)0)->dir) - 1);
        return -ENAMETOOLONG;
    }
    struct rabia_wal *w = calloc(1, sizeof(*w));
    if (!w) return -ENOMEM;
    w->cfg = *cfg;
    snprintf(w->dir, sizeof w->dir, "%s", cfg->dir);
    w->cfg.dir = w->dir;
    w->fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    int rc = 0;
    uint64_t *nos = NULL;
    uint32_t n = 0;
    uint8_t *img = NULL;
    if (rabia_mkdir_durable(w->dir)) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot create the log folder: %s", w->dir, strerror(-rc));
        goto fail;
    }
    if ((rc = probe(w, err, errlen))) goto fail;
    if ((rc = list_segments(w, &nos, &n, err, errlen))) goto fail;
    w->segs = calloc(MAX_SEGMENTS, sizeof(*w->segs));
    img = malloc(cfg->segment_bytes);
    if (!w->segs || !img) {
        rc = -ENOMEM;
        goto fail;
    }
    w->batch_incarnation = cfg->batch_incarnation;
    struct scan sc = {0};
    bool have_inc = false;
    bool ended = false;
    uint32_t last_with_data = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        if (i && nos[i] != nos[i - 1] + 1) {
            /* Segments are made in order and released oldest first: a gap
             * is a file deleted by hand, also after a segment whose data
             * ended cleanly (the lsn check against the segment after the gap
             * then said "the log ended here", and the intact groups past
             * the gap were dropped unseen: found by tests/fuzz/fuzz_wal) */
            snprintf(err, errlen,
                     "%s: log segment %020" PRIu64 ".seg is missing between %" PRIu64 " and %" PRIu64
                     " (deleted by hand?). Restore it, or move the data dir aside and start with --rejoin",
                     w->dir, nos[i - 1] + 1, nos[i - 1], nos[i]);
            rc = -EINVAL;
            goto fail;
        }
        char path[600];
        seg_path(w, nos[i], path, sizeof path);
        uint64_t got = 0, fsize = 0;
        if ((rc = read_file(path, img, cfg->segment_bytes, &got, &fsize))) {
            snprintf(err, errlen, "%s: %s", path, strerror(-rc));
            goto fail;
        }
        uint64_t inc;
        uint32_t blk;
        if ((rc = seg_header_check(w, path, nos[i], img, got, &inc, &blk, err, errlen))) goto fail;
        /* The file's own size, not what was read: only segment_bytes are
         * read, and a longer file (wal-segment-bytes lowered since it was
         * written) passed; the group across that point looked torn and was
         * zeroed, and the writer went on there, dropping acknowledged
         * records (found by review; test_wal test_segment_size_lowered) */
        if (got != cfg->segment_bytes || fsize != cfg->segment_bytes) {
            if (fsize > cfg->segment_bytes) {
                snprintf(err, errlen,
                         "%s is %" PRIu64 " bytes, wal-segment-bytes is %" PRIu64
                         ": set wal-segment-bytes back to the size this log was written with",
                         path, fsize, cfg->segment_bytes);
            } else if (i + 1 == n && got >= w->data) { /* a shorter last segment: the size setting changed? */
                snprintf(err, errlen,
                         "%s is %" PRIu64 " bytes, wal-segment-bytes is %" PRIu64
                         ": set wal-segment-bytes back to the size this log was written with",
                         path, got, cfg->segment_bytes);
            } else {
                snprintf(err, errlen,
                         "%s is %" PRIu64 " bytes, expected %" PRIu64
                         " (truncated by hand, or wal-segment-bytes changed): restore it or set wal-segment-bytes "
                         "back",
                         path, got, cfg->segment_bytes);
            }
            rc = -EINVAL;
            goto fail;
        }
        if (have_inc && inc != w->batch_incarnation) {
            snprintf(err, errlen, "%s: batch incarnation %" PRIu64 " differs from the log's %" PRIu64
                     ": segments of two logs mixed? Move the data dir aside and start with --rejoin",
                     path, inc, w->batch_incarnation);
            rc = -EINVAL;
            goto fail;
        }
        if (blk != w->block) {
            /* groups lie on boundaries of the block the log was written
             * with; scanned in steps of another, the scan missed them and
             * could take acknowledged groups for a torn tail (found by
             * review). Written elsewhere: the data dir moved to a device
             * or filesystem with another O_DIRECT alignment. */
            snprintf(err, errlen,
                     "%s: written with %u-byte blocks, but data-dir's filesystem now asks O_DIRECT writes to be "
                     "aligned to %u bytes (the data dir moved to another device or filesystem?): the log cannot be "
                     "read safely here. Move the data dir back, or move it aside and start this replica with "
                     "--rejoin",
                     path, blk, w->block);
            rc = -EINVAL;
            goto fail;
        }
        if (!have_inc) {
            w->batch_incarnation = inc;
            have_inc = true;
            info->began_recovering = img[41] == 1; /* the first segment kept */
        }
        struct seg *sg = &w->segs[w->n_segs++];
        memset(sg, 0, sizeof(*sg));
        sg->no = nos[i];
        if (ended) continue; /* after the end: only checked for intact groups below */
        uint64_t off = w->data;
        for (;;) {
            uint64_t lsn, bytes;
            uint32_t cnt;
            if (off + GRP_HDR > cfg->segment_bytes || all_zero(img + off, GRP_HDR)) {
                /* this segment's data ends here; the log goes on only if the next
                 * segment starts with the next lsn (checked on the next turn) */
                sc.stop_idx = w->n_segs - 1;
                sc.stop_off = off;
                sc.stop_dirty = off + GRP_HDR <= cfg->segment_bytes &&
                                !all_zero(img + off, (size_t)(cfg->segment_bytes - off < w->block
                                                                  ? cfg->segment_bytes - off
                                                                  : w->block));
                if (sc.stop_dirty) {
                    snprintf(sc.why, sizeof sc.why, "a block that starts with zeros but is not empty");
                    ended = true;
                }
                break;
            }
            if (!group_intact(img, cfg->segment_bytes, nos[i], off, &lsn, &bytes, &cnt) ||
                (sc.expect_lsn && lsn != sc.expect_lsn) || cnt == 0) {
                sc.stop_idx = w->n_segs - 1;
                sc.stop_off = off;
                sc.stop_dirty = true;
                snprintf(sc.why, sizeof sc.why, "%s",
                         rabia_le_get32(img + off) != GRP_MAGIC ? "no group header"
                         : (sc.expect_lsn && group_intact(img, cfg->segment_bytes, nos[i], off, &lsn, &bytes, &cnt))
                             ? "a group out of sequence (misdirected or stale write)"
                             : "a group whose checksum or position does not match");
                ended = true;
                break;
            }
            if ((rc = visit_group(w, path, img + off, off, bytes, cnt, sg, fn, ctx, err, errlen))) goto fail;
            sc.expect_lsn = lsn + cnt;
            info->records += cnt;
            info->groups++;
            last_with_data = w->n_segs - 1;
            off = round_up(off + bytes, w->block);
        }
        /* A segment whose data ended cleanly: the next one must continue it
         * (first group with the next lsn), else the log ended here. */
        if (!ended && i + 1 < n) {
            char np[600];
            seg_path(w, nos[i + 1], np, sizeof np);
            uint8_t *nx = malloc(w->data + GRP_HDR);
            uint64_t g2 = 0;
            bool cont = false;
            if (nx) {
                int fd = open(np, O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                    ssize_t k = pread(fd, nx, w->data + GRP_HDR, 0);
                    close(fd);
                    g2 = k > 0 ? (uint64_t)k : 0;
                }
                /* only the header of the first group is checked here; the full
                 * check happens when that segment is scanned */
                cont = g2 == w->data + GRP_HDR && rabia_le_get32(nx + w->data) == GRP_MAGIC &&
                       rabia_le_get64(nx + w->data + 8) == sc.expect_lsn && rabia_le_get64(nx + w->data + 24) == nos[i + 1];
                free(nx);
            }
            if (!cont) ended = true;
        }
    }
    /* Anything intact after the stop point means the damage is in the middle. */
    bool torn_next = false; /* the segment after a clean end holds bytes */
    /* The group the scan stopped at, if its header is whole: where the
     * write after it would begin and its first lsn. Only one write is ever
     * in flight, so if that write began (its header is on disk, the rest
     * landed or not), the stopped group had completed and was acknowledged:
     * damage, even when nothing intact follows (the later write torn). */
    uint64_t succ_lsn = 0, succ_off = 0;
    if (w->n_segs) {
        for (uint32_t i = sc.stop_idx; i < w->n_segs; i++) {
            char path[600];
            seg_path(w, w->segs[i].no, path, sizeof path);
            uint64_t got = 0;
            if ((rc = read_file(path, img, cfg->segment_bytes, &got, NULL))) {
                snprintf(err, errlen, "%s: %s", path, strerror(-rc));
                goto fail;
            }
            uint64_t hl, hb;
            uint32_t hc;
            if (i == sc.stop_idx && sc.stop_dirty &&
                group_header_at(img, got, w->segs[i].no, sc.stop_off, &hl, &hb, &hc) &&
                (!sc.expect_lsn || hl == sc.expect_lsn)) {
                succ_lsn = hl + hc;
                succ_off = round_up(sc.stop_off + hb, w->block);
            }
            /* from the block after the stop point (a torn group's first block
             * is the stop point itself) */
            uint64_t from = i == sc.stop_idx ? round_up(sc.stop_off + 1, w->block) : w->data;
            for (uint64_t off = from; off + GRP_HDR <= got; off += w->block) {
                uint64_t lsn, bytes;
                uint32_t cnt;
                if (rabia_le_get32(img + off) != GRP_MAGIC) continue;
                if (!group_intact(img, got, w->segs[i].no, off, &lsn, &bytes, &cnt)) continue;
                char sp[600];
                seg_path(w, w->segs[sc.stop_idx].no, sp, sizeof sp);
                snprintf(err, errlen,
                         "%s offset %" PRIu64 ": %s, but intact log records follow at %s offset %" PRIu64
                         " (lsn %" PRIu64 "): acknowledged data is damaged (a bit flip, a zeroed block or a "
                         "misdirected write), not a torn last write. rabiad will not drop or reorder records: restore "
                         "the file from a backup, or move the data dir aside and start this replica with --rejoin so "
                         "it rebuilds its state from its peers",
                         sp, sc.stop_off, sc.stop_dirty ? sc.why : "the log ends", path, off, lsn);
                rc = -EUCLEAN;
                goto fail;
            }
            /* Nothing intact after it here, but the write after it began: in
             * this segment right behind it, or at the start of the next one
             * (a group that did not fit the rest). */
            uint64_t at = i == sc.stop_idx ? succ_off : w->data;
            if (succ_lsn && i <= sc.stop_idx + 1 && group_header_at(img, got, w->segs[i].no, at, &hl, &hb, &hc) &&
                hl == succ_lsn) {
                char sp[600];
                seg_path(w, w->segs[sc.stop_idx].no, sp, sizeof sp);
                snprintf(err, errlen,
                         "%s offset %" PRIu64 ": %s, and the write after it began at %s offset %" PRIu64
                         " (lsn %" PRIu64 "), so that group had completed and was acknowledged: its data is "
                         "damaged (a bit flip, a zeroed block or a misdirected write), not a torn last write. "
                         "rabiad will not drop or reorder records: restore the file from a backup, or move the "
                         "data dir aside and start this replica with --rejoin so it rebuilds its state from its peers",
                         sp, sc.stop_off, sc.why, path, at, hl);
                rc = -EUCLEAN;
                goto fail;
            }
            /* A clean end (a zero block where the next group would start)
             * followed by bytes in this segment: a torn last write whose
             * first block did not land but later ones did. Zeroed with the
             * tail, or the writer, going on at the stop point, would leave
             * them behind a shorter group, and the next open would take them
             * for damage in the middle once later groups follow. */
            if (i == sc.stop_idx && !sc.stop_dirty && sc.stop_off < got &&
                !all_zero(img + sc.stop_off, (size_t)(got - sc.stop_off))) {
                sc.stop_dirty = true;
                snprintf(sc.why, sizeof sc.why, "bytes after a zero block (a write whose first block did not land)");
            }
            /* The writer moves to the next segment when a group does not fit
             * the rest of this one, so a log that ends cleanly here may have
             * lost its last write at the start of the next: that segment,
             * preallocated as zeros, then holds a torn group (none of it
             * intact: checked above). It is the torn tail; without this the
             * writer would reuse a segment the ready pool assumes zero. */
            if (i > sc.stop_idx && !all_zero(img + w->data, (size_t)(got - w->data))) {
                w->segs[i].dirty_after_end = true;
                if (i == sc.stop_idx + 1 && !sc.stop_dirty)
                    torn_next = true;
            }
        }
    }
    if (torn_next) {
        sc.stop_idx++;
        sc.stop_off = w->data;
        sc.stop_dirty = true;
        snprintf(sc.why, sizeof sc.why, "a write torn at the start of a new segment");
    }
    info->existed = n > 0; /* segments were there: whatever was sent is in them */
    if (!have_inc) w->batch_incarnation = cfg->batch_incarnation;
    info->batch_incarnation = w->batch_incarnation;
    w->next_lsn = sc.expect_lsn ? sc.expect_lsn : 1;
    if (w->n_segs == 0) {
        /* a new log: its first segment now, synchronously */
        if ((rc = seg_create(w, 1, err, errlen))) goto fail;
        info->began_recovering = cfg->recovering;
        w->segs[0] = (struct seg){.no = 1};
        w->n_segs = 1;
        w->pos = w->data;
        w->ready = 1;
    } else {
        /* the writer resumes at the stop point; empty preallocated
         * segments after it stay as the ready pool */
        uint32_t cur = sc.stop_idx;
        RABIA_ASSERT(last_with_data == UINT32_MAX || last_with_data <= cur);
        if (sc.stop_dirty) {
            info->torn_bytes = cfg->segment_bytes - sc.stop_off;
            char sp[600];
            seg_path(w, w->segs[cur].no, sp, sizeof sp);
            fprintf(stderr,
                    "rabia wal: %s offset %" PRIu64 ": %s after the last complete write; zeroing it (a write the "
                    "crash interrupted: nothing in it was acknowledged)\n",
                    sp, sc.stop_off, sc.why);
            if ((rc = zero_range(w, w->segs[cur].no, sc.stop_off, cfg->segment_bytes, err, errlen))) goto fail;
        }
        /* Bytes in the preallocated segments after it (none intact) are
         * zeroed too: the writer takes them for zeros, and one open leaves
         * the log clean (a second open cut them before: fuzz_wal) */
        for (uint32_t j = cur + 1; j < w->n_segs; j++) {
            if (!w->segs[j].dirty_after_end) continue;
            char sp[600];
            seg_path(w, w->segs[j].no, sp, sizeof sp);
            fprintf(stderr, "rabia wal: %s: bytes past the end of the log in a segment not written yet; zeroing them\n",
                    sp);
            info->torn_bytes += cfg->segment_bytes - w->data;
            if ((rc = zero_range(w, w->segs[j].no, w->data, cfg->segment_bytes, err, errlen))) goto fail;
        }
        w->pos = sc.stop_off;
        w->ready = w->segs[w->n_segs - 1].no;
        w->n_segs = cur + 1;
    }
    w->fd = open_segment_fd(w, w->segs[w->n_segs - 1].no, err, errlen);
    if (w->fd < 0) {
        rc = w->fd;
        goto fail;
    }
    if (gbuf_reserve(&w->open, 1u << 20, w->block) || gbuf_reserve(&w->flight, 1u << 20, w->block)) {
        rc = -ENOMEM;
        goto fail;
    }
    gbuf_reset(&w->open);
    gbuf_reset(&w->flight);
    w->want = w->segs[w->n_segs - 1].no + 1;
    if (w->want < w->ready) w->want = w->ready;
    if (pthread_create(&w->thr, NULL, prealloc_main, w)) {
        rc = -EAGAIN;
        snprintf(err, errlen, "cannot start the log's preallocation thread");
        goto fail;
    }
    w->thr_started = true;
    for (uint32_t i = 0; i < w->n_segs; i++) w->st.bytes_on_disk += cfg->segment_bytes;
    info->segments = w->n_segs;
    info->block = w->block;
    info->direct = w->direct;
    info->next_lsn = w->next_lsn;
    free(nos);
    free(img);
    *out = w;
    return 0;
fail:
    free(nos);
    free(img);
    rabia_wal_close(w);
    return rc ? rc : -EINVAL;
}

/* Buffers of writes left to the kernel (rabia_wal_abandon_flight), kept
 * reachable from here for the life of the process: a leak checker
 * (LeakSanitizer) reports memory nothing points to. Past the array they
 * are left all the same, unlisted. */
static void *abandoned[16];
static unsigned n_abandoned;

void rabia_wal_abandon_flight(struct rabia_wal *w)
{
    if (!w || !w->in_flight) return;
    /* deliberately never freed (wal.h): an io_uring write punted to a worker
     * copies the buffer only when the device lets it go on, which may be
     * after this process has moved on (seen with fsfreeze: bytes stored into
     * the buffer after the submit, before the thaw, were the ones on disk) */
    unsigned i = __atomic_fetch_add(&n_abandoned, 1u, __ATOMIC_RELAXED); /* replicas of several threads */
    if (i < sizeof abandoned / sizeof abandoned[0]) __atomic_store_n(&abandoned[i], (void *)w->flight.p, __ATOMIC_RELAXED);
    w->flight.p = NULL;
    w->flight.cap = w->flight.len = 0;
}

void rabia_wal_close(struct rabia_wal *w)
{
    if (!w) return;
    if (w->thr_started) {
        pthread_mutex_lock(&w->mu);
        w->quit = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thr, NULL);
    }
    if (w->fd >= 0) close(w->fd);
    free(w->open.p);
    free(w->flight.p);
    free(w->pending_rest.p);
    free(w->rbuf);
    free(w->segs);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name); /* 20 digits: segment names sort as their numbers */
}

/* replica/durable.c starts a recovery from the peers that was cut short
 * over with a new log, removing this one. Removed in the folder's order (a
 * hash order on ext4), a removal cut short (killed, a power cut) could take
 * segment 1, whose header says the log began a recovery, and leave a later
 * one, such as the empty preallocated segment 2: the next start found a
 * log that began no recovery and took part at once ("restart with its log")
 * with nothing in it, without the horizon rule (core.h rule 2) its lost
 * life's messages call for (found by review, reproduced with kill -9 at the
 * second unlink). Newest first, what is left is always a log that starts
 * with segment 1, and the next start begins the recovery again; a file that
 * cannot be removed stops the removal, for the same reason. */
int rabia_wal_remove(const char *dir)
{
    struct dirent **v = NULL;
    int n = scandir(dir, &v, NULL, name_cmp);
    if (n < 0) return errno == ENOENT ? 0 : -errno;
    int rc = 0;
    for (int i = n; i-- > 0;) {
        const char *nm = v[i]->d_name;
        if (!rc && strcmp(nm, ".") && strcmp(nm, "..")) {
            char p[1200];
            snprintf(p, sizeof p, "%s/%s", dir, nm);
            if (unlink(p) && errno != ENOENT) rc = -errno;
        }
        free(v[i]);
    }
    free(v);
    if (!rc && rmdir(dir) && errno != ENOENT) rc = -errno;
    return rc;
}

bool rabia_wal_present(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return false;
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d))) found = segment_no(de->d_name) != 0;
    closedir(d);
    return found;
}

/* ------------------------------------------------------------------ */
/* writing */

int rabia_wal_append(struct rabia_wal *w, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len)
{
    RABIA_ASSERT(type >= RABIA_WAL_SENT && type <= RABIA_WAL_DECIDED_REF);
    struct gbuf *g = &w->open;
    size_t rec = (size_t)round_up(REC_HDR + (uint64_t)len, 8);
    if (gbuf_reserve(g, g->len + rec + w->block, w->block)) return -ENOMEM;
    uint8_t *r = g->p + g->len;
    rabia_le_put32(r, len);
    r[4] = type;
    r[5] = 0;
    r[6] = r[7] = 0;
    rabia_le_put64(r + 8, slot);
    memcpy(r + REC_HDR, frame, len);
    rabia_le_put64(r + 16, rec_sum(r, len));
    memset(r + REC_HDR + len, 0, rec - REC_HDR - len);
    g->len += rec;
    g->n++;
    note_record(type, slot, &g->max_slot, &g->max_batch_seq, &g->max_decided);
    return 0;
}

int rabia_wal_append_msg(struct rabia_wal *w, uint8_t type, uint64_t slot, const struct rabia_msg *m)
{
    size_t need = rabia_msg_encoded_size(m);
    if (!need) return RABIA_E_MALFORMED;
    struct gbuf *g = &w->open;
    size_t rec = (size_t)round_up(REC_HDR + need, 8);
    if (gbuf_reserve(g, g->len + rec + w->block, w->block)) return -ENOMEM;
    /* encode in place, then frame it as a record */
    uint8_t *r = g->p + g->len;
    int k = rabia_msg_encode_unsummed(m, r + REC_HDR, need); /* the record's checksum covers it */
    if (k < 0) return k;
    rabia_le_put32(r, (uint32_t)k);
    r[4] = type;
    r[5] = r[6] = r[7] = 0;
    rabia_le_put64(r + 8, slot);
    rabia_le_put64(r + 16, rec_sum(r, (uint32_t)k));
    rec = (size_t)round_up(REC_HDR + (uint64_t)k, 8);
    memset(r + REC_HDR + k, 0, rec - REC_HDR - (size_t)k);
    g->len += rec;
    g->n++;
    note_record(type, slot, &g->max_slot, &g->max_batch_seq, &g->max_decided);
    return 0;
}

bool rabia_wal_pending(const struct rabia_wal *w) { return w->open.n > 0; }
bool rabia_wal_in_flight(const struct rabia_wal *w) { return w->in_flight; }

/* A group larger than half a segment goes out in parts: the records that
 * fit now, the rest in the next write (rabia_wal_pending stays true, and
 * the caller holds what waits on them until then). prefix() measures the
 * part that goes now (all of it when it fits), cut() moves the rest aside
 * once the write is certain. */
struct prefix {
    size_t len;
    uint32_t n;
    uint64_t max_slot, max_batch_seq, max_decided;
};

static int prefix(const struct rabia_wal *w, struct prefix *pf)
{
    const struct gbuf *g = &w->open;
    uint64_t max = (w->cfg.segment_bytes - w->data) / 2;
    *pf = (struct prefix){.len = g->len, .n = g->n, .max_slot = g->max_slot, .max_batch_seq = g->max_batch_seq,
                          .max_decided = g->max_decided};
    if (round_up(g->len, w->block) <= max) return 0;
    size_t p = GRP_HDR;
    uint32_t k = 0;
    uint64_t ms = 0, mb = 0, md = 0;
    while (k < g->n) {
        const uint8_t *r = g->p + p;
        size_t rec = (size_t)round_up(REC_HDR + (uint64_t)rabia_le_get32(r), 8);
        if (k && round_up(p + rec, w->block) > max) break;
        uint64_t slot = rabia_le_get64(r + 8);
        note_record(r[4], slot, &ms, &mb, &md);
        p += rec;
        k++;
    }
    if (round_up(p, w->block) > w->cfg.segment_bytes - w->data) return -EFBIG; /* one record too large */
    *pf = (struct prefix){.len = p, .n = k, .max_slot = ms, .max_batch_seq = mb, .max_decided = md};
    return 0;
}

static int cut(struct rabia_wal *w, const struct prefix *pf)
{
    struct gbuf *g = &w->open;
    if (pf->n == g->n) return 0;
    struct gbuf rest = {0};
    if (gbuf_reserve(&rest, GRP_HDR + (g->len - pf->len) + w->block, w->block)) return -ENOMEM;
    gbuf_reset(&rest);
    memcpy(rest.p + GRP_HDR, g->p + pf->len, g->len - pf->len);
    rest.len = GRP_HDR + (g->len - pf->len);
    rest.n = g->n - pf->n;
    rest.max_slot = g->max_slot;
    rest.max_batch_seq = g->max_batch_seq;
    rest.max_decided = g->max_decided;
    g->len = pf->len;
    g->n = pf->n;
    g->max_slot = pf->max_slot;
    g->max_batch_seq = pf->max_batch_seq;
    g->max_decided = pf->max_decided;
    w->pending_rest = rest;
    return 0;
}

int rabia_wal_seal(struct rabia_wal *w, struct rabia_wal_write *io)
{
    if (w->in_flight || w->open.n == 0) return 0;
    struct prefix pf;
    if (prefix(w, &pf) < 0) {
        fprintf(stderr, "rabia wal: one record of the group does not fit a %" PRIu64 "-byte segment\n",
                w->cfg.segment_bytes);
        return -EFBIG;
    }
    struct gbuf *g = &w->open;
    uint64_t bytes = pf.len;
    uint64_t padded = round_up(bytes, w->block);
    struct seg *cur = &w->segs[w->n_segs - 1];
    bool new_seg = false;
    if (w->pos + padded > w->cfg.segment_bytes) {
        uint64_t next = cur->no + 1;
        want_segment(w, next + 1);
        if (!segment_ready(w, next)) {
            if (!w->stalled) w->st.segment_waits++;
            w->stalled = true;
            return -EAGAIN;
        }
        if (w->n_segs >= MAX_SEGMENTS) return -E2BIG;
        char err[256];
        int fd = open_segment_fd(w, next, err, sizeof err);
        if (fd < 0) {
            fprintf(stderr, "rabia wal: %s\n", err);
            return fd;
        }
        close(w->fd);
        w->fd = fd;
        w->segs[w->n_segs++] = (struct seg){.no = next};
        w->st.bytes_on_disk += w->cfg.segment_bytes;
        w->pos = w->data;
        cur = &w->segs[w->n_segs - 1];
        new_seg = true;
    }
    w->stalled = false;
    if (cut(w, &pf)) return -ENOMEM;
    uint8_t *h = g->p;
    rabia_le_put32(h, GRP_MAGIC);
    rabia_le_put32(h + 4, g->n);
    rabia_le_put64(h + 8, w->next_lsn);
    rabia_le_put64(h + 16, bytes);
    rabia_le_put64(h + 24, cur->no);
    rabia_le_put64(h + 32, w->pos);
    rabia_le_put64(h + 40, grp_sum(h, g->n));
    memset(g->p + bytes, 0, padded - bytes);
    /* swap: the sealed group flies, a fresh one forms */
    struct gbuf t = w->flight;
    w->flight = w->open;
    w->open = t;
    gbuf_reset(&w->open);
    if (w->pending_rest.p) { /* the part of a large group that waits for the next write */
        free(w->open.p);
        w->open = w->pending_rest;
        memset(&w->pending_rest, 0, sizeof w->pending_rest);
    }
    w->in_flight = true;
    w->flight_lsn = w->next_lsn;
    w->flight_seg = cur->no;
    w->flight_off = w->pos;
    w->flight_new_seg = new_seg;
    io->fd = w->fd;
    io->buf = w->flight.p;
    io->len = (uint32_t)padded;
    io->off = w->pos;
    io->rw_flags = w->cfg.no_sync ? 0 : RWF_DSYNC;
    w->pos += padded;
    w->next_lsn += w->flight.n;
    /* ask for the segment after the next one early: creating one takes a while */
    if (w->pos > w->cfg.segment_bytes / 2) want_segment(w, cur->no + 1);
    w->st.groups++;
    w->st.records += w->flight.n;
    w->st.bytes += padded;
    w->st.pad_bytes += padded - bytes;
    return 1;
}

int rabia_wal_written(struct rabia_wal *w, int res)
{
    RABIA_ASSERT(w->in_flight);
    uint64_t want = round_up(w->flight.len, w->block);
    w->in_flight = false;
    if (res < 0 || (uint64_t)res != want) {
        fprintf(stderr, "rabia wal: a log write of %" PRIu64 " bytes returned %d (%s)\n", want, res,
                res < 0 ? strerror(-res) : "short write");
        return res < 0 ? res : -EIO;
    }
    struct seg *sg = &w->segs[w->n_segs - 1];
    RABIA_ASSERT(sg->no == w->flight_seg);
    seg_mark(sg, w->cfg.segment_bytes, w->flight_off);
    if (w->flight.max_slot > sg->max_slot) sg->max_slot = w->flight.max_slot;
    if (w->flight.max_batch_seq > sg->max_batch_seq) sg->max_batch_seq = w->flight.max_batch_seq;
    if (w->flight.max_decided > sg->max_decided) sg->max_decided = w->flight.max_decided;
    return 0;
}

void rabia_wal_visit_durable(struct rabia_wal *w, rabia_wal_visit_fn fn, void *ctx)
{
    const struct gbuf *g = &w->flight;
    size_t p = GRP_HDR;
    for (uint32_t i = 0; i < g->n; i++) {
        const uint8_t *r = g->p + p;
        uint32_t len = rabia_le_get32(r);
        fn(ctx, r[4], rabia_le_get64(r + 8), r + REC_HDR, len);
        p += (size_t)round_up(REC_HDR + (uint64_t)len, 8);
    }
}

bool rabia_wal_cursor_for(const struct rabia_wal *w, uint64_t slot, uint64_t back, struct rabia_wal_cursor *c)
{
    RABIA_ASSERT(w->n_segs >= 1 && slot >= 1);
    uint32_t k = 0;
    /* the first segment whose decisions reach it: a SENT record of an old
     * slot (an answer to a peer still in it) in a new segment made the read
     * start there and never find the decision (sim --seed 1141143 --mix all
     * --durable: a replica read for, then asked again, for ever) */
    while (k < w->n_segs && w->segs[k].max_decided < slot) k++;
    if (k == w->n_segs) return false; /* nothing durable reaches it yet */
    if (back == RABIA_WAL_BACK_SEGMENT) {
        *c = (struct rabia_wal_cursor){.seg = w->segs[k ? k - 1 : 0].no, .off = 0};
        return true;
    }
    /* in it, the last mark with every decision before it below `slot`:
     * slot's decision comes after (mark 0, the segment's first group, has
     * none before it) */
    const uint64_t S = w->cfg.segment_bytes, part = S / SEG_MARKS;
    uint64_t at = 0; /* offset in segment k; 0: its first group */
    for (uint32_t j = 0; j < SEG_MARKS; j++)
        if (w->segs[k].mark_off[j] && w->segs[k].mark_decided[j] < slot) at = w->segs[k].mark_off[j];
    /* `back` bytes before it, for the bodies slot's decision and the ones
     * after it name: at the last mark at or before that point */
    uint64_t pos = (uint64_t)k * S + (at ? at : w->data); /* the kept segments end to end */
    if (pos <= back) {
        *c = (struct rabia_wal_cursor){.seg = w->segs[0].no, .off = 0};
        return true;
    }
    pos -= back;
    uint32_t i = (uint32_t)(pos / S);
    RABIA_ASSERT(i <= k);
    uint64_t o = pos % S, start = 0;
    for (uint32_t j = 0; j < SEG_MARKS && j * part <= o; j++)
        if (w->segs[i].mark_off[j] && w->segs[i].mark_off[j] <= o) start = w->segs[i].mark_off[j];
    *c = (struct rabia_wal_cursor){.seg = w->segs[i].no, .off = start};
    return true;
}

/* The end of segment `no`'s durable groups (the one being written: up to
 * the write in flight). */
static uint64_t durable_end(const struct rabia_wal *w, uint64_t no)
{
    if (no != w->segs[w->n_segs - 1].no) return w->cfg.segment_bytes;
    uint64_t end = w->pos;
    if (w->in_flight && w->flight_seg == no) end -= round_up(w->flight.len, w->block);
    return end;
}

int rabia_wal_read(struct rabia_wal *w, struct rabia_wal_cursor *c, uint64_t max_bytes, rabia_wal_read_fn fn,
                   void *ctx, char *err, size_t errlen)
{
    uint32_t k = 0;
    while (k < w->n_segs && w->segs[k].no < c->seg) k++;
    if (k == w->n_segs) return 0;
    if (w->segs[k].no != c->seg) c->off = 0; /* released meanwhile: the next kept one */
    c->seg = w->segs[k].no;
    uint64_t done = 0;
    int fd = -1, rc = 1;
    char path[600] = "";
    while (done < max_bytes || !done) {
        uint64_t end = durable_end(w, c->seg), off = c->off ? c->off : w->data;
        if (off + GRP_HDR > end) { /* this segment's durable groups are read */
            if (c->seg == w->segs[w->n_segs - 1].no) {
                rc = 0;
                break;
            }
            if (fd >= 0) close(fd);
            fd = -1;
            c->seg = w->segs[++k].no;
            c->off = 0;
            continue;
        }
        if (fd < 0) {
            seg_path(w, c->seg, path, sizeof path);
            if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
                rc = -errno;
                snprintf(err, errlen, "%s: %s", path, strerror(-rc));
                break;
            }
        }
        uint8_t hdr[GRP_HDR];
        if (pread(fd, hdr, GRP_HDR, (off_t)off) != (ssize_t)GRP_HDR) {
            rc = -EIO;
            snprintf(err, errlen, "%s offset %" PRIu64 ": short read of a group header", path, off);
            break;
        }
        if (rabia_le_get32(hdr) != GRP_MAGIC) { /* zeros: the segment's data ends here */
            c->off = end;
            continue;
        }
        uint64_t len = rabia_le_get64(hdr + 16);
        if (len < GRP_HDR || len > end - off) {
            rc = -EUCLEAN;
            snprintf(err, errlen, "%s offset %" PRIu64 ": a group header announcing %" PRIu64 " bytes", path, off, len);
            break;
        }
        if (len > w->rcap) {
            uint8_t *nb = realloc(w->rbuf, len);
            if (!nb) {
                rc = -ENOMEM;
                snprintf(err, errlen, "out of memory reading %s", path);
                break;
            }
            w->rbuf = nb;
            w->rcap = len;
        }
        uint64_t lsn, bytes;
        uint32_t n;
        if (pread(fd, w->rbuf, len, (off_t)off) != (ssize_t)len ||
            !group_check(w->rbuf, len, c->seg, off, &lsn, &bytes, &n)) {
            rc = -EUCLEAN;
            snprintf(err, errlen, "%s offset %" PRIu64 ": a durable group reads back damaged (the disk?)", path, off);
            break;
        }
        uint64_t p = GRP_HDR;
        bool stop = false;
        for (uint32_t i = 0; i < n && !stop; i++) {
            const uint8_t *r = w->rbuf + p;
            uint32_t rl = rabia_le_get32(r);
            stop = fn(ctx, r[4], rabia_le_get64(r + 8), r + REC_HDR, rl);
            p += round_up(REC_HDR + (uint64_t)rl, 8);
        }
        c->off = off; /* stopped: the next read starts at this group again */
        if (stop) {
            rc = 2;
            break;
        }
        c->off = off + round_up(len, w->block);
        done += len;
    }
    if (fd >= 0) close(fd);
    return rc;
}

int rabia_wal_release(struct rabia_wal *w, uint64_t upto, uint64_t keep_batch_seq)
{
    uint32_t k = 0;
    while (k + 1 < w->n_segs && w->segs[k].max_slot <= upto &&
           (w->segs[k].max_batch_seq == 0 || w->segs[k].max_batch_seq < keep_batch_seq))
        k++;
    if (!k) return 0;
    /* the thread deletes them, oldest first (unlink_released); from now on
     * nothing here reads them: they leave the kept list at once */
    RABIA_ASSERT(w->segs[k - 1].no == w->segs[0].no + k - 1); /* kept segments have no holes */
    pthread_mutex_lock(&w->mu);
    RABIA_ASSERT(w->unlink_next == w->unlink_end || w->unlink_end == w->segs[0].no);
    if (w->unlink_next == w->unlink_end) w->unlink_next = w->segs[0].no;
    w->unlink_end = w->segs[k - 1].no + 1;
    w->st.segments_released += k;
    w->st.bytes_on_disk -= k * w->cfg.segment_bytes;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    memmove(w->segs, w->segs + k, (w->n_segs - k) * sizeof(*w->segs));
    w->n_segs -= k;
    return (int)k;
}

const char *rabia_wal_disk_error(struct rabia_wal *w, char *buf, size_t len)
{
    if (!__atomic_load_n(&w->has_disk_err, __ATOMIC_ACQUIRE)) {
        if (len) buf[0] = 0;
        return buf;
    }
    pthread_mutex_lock(&w->mu);
    snprintf(buf, len, "%s", w->disk_err);
    pthread_mutex_unlock(&w->mu);
    return buf;
}

bool rabia_wal_stalled(const struct rabia_wal *w) { return w->stalled; }

void rabia_wal_stats(const struct rabia_wal *w, struct rabia_wal_stats *out)
{
    /* the preallocator writes segments_created under the lock; the rest is
     * the caller's own thread's */
    pthread_mutex_t *mu = (pthread_mutex_t *)&w->mu;
    pthread_mutex_lock(mu);
    *out = w->st;
    pthread_mutex_unlock(mu);
}
