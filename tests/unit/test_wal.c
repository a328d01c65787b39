/* The write-ahead log on a real filesystem with O_DIRECT (the build
 * directory's disk; TMPDIR if set, which must not be tmpfs): group commits,
 * segment rollover, reopen and replay, a torn last write, corruption in the
 * middle (bit flip, zeroed block, misdirected write), release, the data-dir
 * lock, snapshot files. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "codec.h"
#include "snapfile.h"
#include "wal.h"
#include "peers_seen.h"
#include "cluster_id.h"
#include <xxhash.h>

#define SEG (1u << 20)

static char root[256];

struct seen {
    uint64_t n;
    uint64_t last_seq;  /* records carry seq in the id: checked in order */
    bool order_ok;
};

static int on_rec(void *ctx, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len, char *err,
                  size_t errlen)
{
    (void)err, (void)errlen;
    struct seen *s = ctx;
    struct rabia_msg m;
    if (rabia_msg_decode_unsummed(frame, len, &m)) return -EINVAL;
    if (type != RABIA_WAL_BATCH || m.type != RABIA_MSG_BATCH || m.id.seq != slot) s->order_ok = false;
    if (m.id.seq != s->last_seq + 1) s->order_ok = false;
    s->last_seq = m.id.seq;
    s->n++;
    return 0;
}

/* The segment files (*.seg) in the log folder `dir`. */
static int count_segments(const char *dir)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        n += l > 4 && !strcmp(e->d_name + l - 4, ".seg");
    }
    closedir(d);
    return n;
}

static struct rabia_wal *open_log(const char *dir, struct seen *s, struct rabia_wal_info *info, int *rc, char *err,
                                  size_t errlen)
{
    struct rabia_wal_config cfg = {.dir = dir, .segment_bytes = SEG, .cluster_id = 42, .replica = 1,
                                   .batch_incarnation = 7};
    struct rabia_wal *w = NULL;
    memset(s, 0, sizeof(*s));
    s->order_ok = true;
    *rc = rabia_wal_open(&w, &cfg, on_rec, s, info, err, errlen);
    return w;
}

/* Seal the group formed, write it (pwritev2) and, if complete, report the
 * write done; the preallocator gets up to 5 s. 0 or an error. */
static int seal_write(struct rabia_wal *w, bool complete)
{
    struct rabia_wal_write io;
    int rc, tries = 0;
    while ((rc = rabia_wal_seal(w, &io)) == -EAGAIN && tries++ < 5000) usleep(1000);
    if (rc != 1) return rc < 0 ? rc : -EIO; /* the preallocator did not catch up */
    struct iovec v = {.iov_base = (void *)io.buf, .iov_len = io.len};
    ssize_t k = pwritev2(io.fd, &v, 1, (off_t)io.off, io.rw_flags);
    return complete ? rabia_wal_written(w, (int)k) : 0;
}

/* Append records seq first..first+n-1 (body of `body` bytes) in groups of
 * `per` records, each group written and completed. */
static void write_groups(struct rabia_wal *w, uint64_t first, uint64_t n, uint32_t per, uint32_t body)
{
    uint8_t *b = malloc(body + 1);
    for (uint64_t s = first; s < first + n;) {
        for (uint32_t i = 0; i < per && s < first + n; i++, s++) {
            memset(b, (int)(s & 0xff), body);
            struct rabia_msg m = {.type = RABIA_MSG_BATCH, .from = 1, .has_id = 1,
                                  .id = {.proxy = 1, .incarnation = 7, .seq = s}, .body = b, .body_len = body};
            CHECK_EQ(rabia_wal_append_msg(w, RABIA_WAL_BATCH, s, &m), 0);
        }
        int rc = seal_write(w, true);
        CHECK_EQ(rc, 0);
        if (rc) break;
    }
    free(b);
}

static void fresh(char *dir, size_t len, const char *name)
{
    snprintf(dir, len, "%s/%s", root, name);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_EQ(system(cmd), 0);
}

static void seg_file(const char *dir, uint64_t no, char *out, size_t len)
{
    snprintf(out, len, "%s/%020" PRIu64 ".seg", dir, no);
}

static void poke(const char *path, uint64_t off, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0);
    CHECK_EQ(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
    close(fd);
}

static void peek(const char *path, uint64_t off, void *p, size_t n)
{
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(pread(fd, p, n, (off_t)off), (ssize_t)n);
    close(fd);
}

static void test_roundtrip_and_rollover(void)
{
    char dir[300], err[1024] = "";
    fresh(dir, sizeof dir, "roundtrip");
    struct seen s;
    struct rabia_wal_info info;
    int rc;
    struct rabia_wal *w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    CHECK(!info.existed);
    CHECK(info.direct);
    CHECK_EQ(info.batch_incarnation, 7);
    /* 600 records of ~3 KB in groups of 10: about 2 MB, three segments */
    write_groups(w, 1, 600, 10, 3000);
    struct rabia_wal_stats st;
    rabia_wal_stats(w, &st);
    CHECK_EQ(st.groups, 60);
    CHECK_EQ(st.records, 600);
    rabia_wal_close(w);
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    CHECK(info.existed);
    CHECK_EQ(s.n, 600);
    CHECK(s.order_ok);
    CHECK(info.segments >= 2);
    CHECK_EQ(info.torn_bytes, 0);
    /* go on writing after a reopen, then read everything once more */
    write_groups(w, 601, 50, 7, 100);
    rabia_wal_close(w);
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    CHECK_EQ(s.n, 650);
    CHECK(s.order_ok);
    /* a snapshot at slot 400 lets the segments holding only seqs <= 400 go
     * (the test uses the seq as the slot for BATCH records; keep nothing) */
    int segs_before = count_segments(dir);
    int gone = rabia_wal_release(w, UINT64_MAX, 401);
    CHECK(gone >= 1);
    rabia_wal_close(w); /* waits for the thread's deletions */
    CHECK_EQ(count_segments(dir), segs_before - gone);
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    CHECK(s.n < 650 && s.n > 250);
    CHECK_EQ(s.last_seq, 650);
    rabia_wal_close(w);
    if (rc) fprintf(stderr, "%s\n", err);
}

/* Reading the durable log back (a peer's catch-up, replica/logcatch.c):
 * from where a slot's records begin, in order, across segments, a budget
 * per call, a stop that makes the next read see that group again, never
 * the write in flight, and released segments skipped. */
struct readback {
    uint64_t n, last_slot, stop_at, first_decided;
    uint8_t last_type;
    bool order_ok;
};

static bool rb_rec(void *ctx, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len)
{
    struct readback *r = ctx;
    struct rabia_msg m;
    if (rabia_msg_decode_unsummed(frame, len, &m) || (type == RABIA_WAL_DECIDED_REF && m.slot != slot))
        r->order_ok = false;
    /* SENT s, DECIDED_REF s, SENT s+1, ... */
    if (r->n && !(slot == r->last_slot && type == RABIA_WAL_DECIDED_REF && r->last_type == RABIA_WAL_SENT) &&
        !(slot == r->last_slot + 1 && type == RABIA_WAL_SENT && r->last_type == RABIA_WAL_DECIDED_REF))
        r->order_ok = false;
    r->n++;
    r->last_slot = slot;
    r->last_type = type;
    if (type == RABIA_WAL_DECIDED_REF && !r->first_decided) r->first_decided = slot;
    return r->stop_at && slot == r->stop_at && type == RABIA_WAL_DECIDED_REF;
}

static void append_slot(struct rabia_wal *w, uint64_t s)
{
    uint8_t b[1500];
    memset(b, (int)(s & 0xff), sizeof b);
    struct rabia_msg m = {.type = RABIA_MSG_BATCH, .from = 1, .has_id = 1,
                          .id = {.proxy = 0, .incarnation = 7, .seq = s}, .body = b, .body_len = sizeof b};
    CHECK_EQ(rabia_wal_append_msg(w, RABIA_WAL_SENT, s, &m), 0);
    struct rabia_msg d = {.type = RABIA_MSG_DECISION, .from = 1, .slot = s, .value = 1, .has_id = 1, .id = m.id};
    CHECK_EQ(rabia_wal_append_msg(w, RABIA_WAL_DECIDED_REF, s, &d), 0);
}


/* A fresh log in dir (fresh(name)) holding 900 slots, 4 a group, about
 * 2 KiB a slot on disk (groups padded to 4 KiB blocks): 1.8 MB over two
 * 1 MiB segments, the second beginning near slot 510. */
static struct rabia_wal *log_of_900(char *dir, size_t dlen, const char *name, struct seen *s,
                                    struct rabia_wal_info *info, char *err, size_t errlen)
{
    int rc;
    fresh(dir, dlen, name);
    struct rabia_wal *w = open_log(dir, s, info, &rc, err, errlen);
    CHECK_EQ(rc, 0);
    for (uint64_t sl = 1; w && sl <= 900; sl++) {
        append_slot(w, sl);
        if (sl % 4 == 0) CHECK_EQ(seal_write(w, true), 0);
    }
    return w;
}

static void test_read_back(void)
{
    char dir[300], err[1024] = "";
    struct seen s;
    struct rabia_wal_info info;
    int rc;
    struct rabia_wal *w = log_of_900(dir, sizeof dir, "readback", &s, &info, err, sizeof err);
    struct rabia_wal_cursor c;
    CHECK(rabia_wal_cursor_for(w, 1, 0, &c));
    CHECK_EQ(c.seg, 1);
    struct readback r = {.order_ok = true};
    CHECK_EQ(rabia_wal_read(w, &c, UINT64_MAX, rb_rec, &r, err, sizeof err), 0);
    CHECK_EQ(r.n, 1800);
    CHECK(r.order_ok);
    CHECK_EQ(r.last_slot, 900);
    /* slot 800's records are in the second segment: a segment's bytes back
     * start in the first (the bodies a decision names come first) */
    CHECK(rabia_wal_cursor_for(w, 800, SEG, &c));
    CHECK_EQ(c.seg, 1);
    CHECK(rabia_wal_cursor_for(w, 800, RABIA_WAL_BACK_SEGMENT, &c)); /* the widest: that segment's start */
    CHECK_EQ(c.seg, 1);
    CHECK_EQ(c.off, 0);
    CHECK(!rabia_wal_cursor_for(w, 901, 0, &c)); /* nothing reaches it yet */
    /* a budget per call: one group (4 slots, about 12 KB) at a time */
    CHECK(rabia_wal_cursor_for(w, 1, 0, &c));
    r = (struct readback){.order_ok = true};
    int calls = 0;
    while ((rc = rabia_wal_read(w, &c, 4096, rb_rec, &r, err, sizeof err)) == 1 && calls < 1000) calls++;
    CHECK_EQ(rc, 0);
    CHECK_EQ(r.n, 1800);
    CHECK(r.order_ok);
    CHECK(calls >= 200);
    /* stop at slot 301's decision: the next read starts with its group (slots 301-304) again */
    CHECK(rabia_wal_cursor_for(w, 1, 0, &c));
    r = (struct readback){.order_ok = true, .stop_at = 301};
    CHECK_EQ(rabia_wal_read(w, &c, UINT64_MAX, rb_rec, &r, err, sizeof err), 2);
    CHECK_EQ(r.last_slot, 301);
    r = (struct readback){.order_ok = true};
    CHECK_EQ(rabia_wal_read(w, &c, 1, rb_rec, &r, err, sizeof err), 1);
    CHECK_EQ(r.n, 8); /* that group whole */
    CHECK(r.order_ok);
    /* the write in flight is not read */
    for (uint64_t sl = 901; sl <= 904; sl++) append_slot(w, sl);
    CHECK_EQ(seal_write(w, false), 0);
    CHECK(rabia_wal_cursor_for(w, 890, 0, &c));
    r = (struct readback){.order_ok = true};
    CHECK_EQ(rabia_wal_read(w, &c, UINT64_MAX, rb_rec, &r, err, sizeof err), 0);
    CHECK_EQ(r.last_slot, 900);
    rabia_wal_close(w);
    /* reopened, the first segment released */
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    CHECK_EQ(rabia_wal_release(w, 700, 0), 1);
    CHECK(rabia_wal_cursor_for(w, 1, SEG, &c));
    CHECK_EQ(c.seg, 2);
    r = (struct readback){.order_ok = true};
    CHECK_EQ(rabia_wal_read(w, &c, UINT64_MAX, rb_rec, &r, err, sizeof err), 0);
    CHECK(r.n > 0 && r.n < 1800);
    CHECK_EQ(r.last_slot, 904); /* the write whose completion never came reached the disk whole */
    rabia_wal_close(w);
    if (err[0]) fprintf(stderr, "%s\n", err);
}

/* Where a catch-up's read starts (rabia_wal_cursor_for): near the slot, to
 * a sixteenth of a segment, and `back` bytes before it; the same after the
 * log is reopened (the marks are rebuilt from the groups it scans). */
static uint64_t first_decided(struct rabia_wal *w, struct rabia_wal_cursor c, uint64_t *until)
{
    char err[1024] = "";
    struct readback r = {.order_ok = true};
    CHECK_EQ(rabia_wal_read(w, &c, UINT64_MAX, rb_rec, &r, err, sizeof err), 0);
    CHECK(r.order_ok);
    *until = r.last_slot;
    return r.first_decided;
}

static void test_cursor_marks(void)
{
    char dir[300], err[1024] = "";
    struct seen s;
    struct rabia_wal_info info;
    int rc;
    /* a sixteenth of a 1 MiB segment (64 KiB) holds about 32 slots */
    struct rabia_wal *w = log_of_900(dir, sizeof dir, "marks", &s, &info, err, sizeof err);
    uint64_t first[3], until;
    for (int pass = 0; pass < 2; pass++) {
        struct rabia_wal_cursor c;
        /* no bytes back: the read begins at most a sixteenth (and a
         * group) before slot 800's records */
        CHECK(rabia_wal_cursor_for(w, 800, 0, &c));
        CHECK_EQ(c.seg, 2);
        CHECK(c.off > 0);
        first[0] = first_decided(w, c, &until);
        CHECK(first[0] <= 800 && first[0] + 48 >= 800);
        CHECK_EQ(until, 900);
        /* 100 KB back: about 60 slots earlier */
        CHECK(rabia_wal_cursor_for(w, 800, 100000, &c));
        first[1] = first_decided(w, c, &until);
        CHECK(first[1] + 50 <= first[0] && first[1] + 120 >= first[0]);
        /* back across the segment boundary: 20 slots into the second
         * segment, 100 KB back */
        uint64_t b = 2;
        while (b < 900 && rabia_wal_cursor_for(w, b, 0, &c) && c.seg == 1) b++;
        CHECK(b > 300 && b < 800);
        CHECK(rabia_wal_cursor_for(w, b + 20, 100000, &c));
        CHECK_EQ(c.seg, 1);
        first[2] = first_decided(w, c, &until);
        CHECK(first[2] < b && first[2] + 120 >= b + 20);
        /* more bytes back than the log holds: its start */
        CHECK(rabia_wal_cursor_for(w, 100, 1u << 30, &c));
        CHECK_EQ(c.seg, 1);
        CHECK_EQ(c.off, 0);
        /* slot 1: the first group */
        CHECK(rabia_wal_cursor_for(w, 1, 0, &c));
        CHECK_EQ(first_decided(w, c, &until), 1);
        if (pass == 0) { /* the same positions after a reopen */
            rabia_wal_close(w);
            w = open_log(dir, &s, &info, &rc, err, sizeof err);
            CHECK_EQ(rc, 0);
            uint64_t f0 = first[0];
            CHECK(rabia_wal_cursor_for(w, 800, 0, &c));
            uint64_t again = first_decided(w, c, &until);
            CHECK_EQ(again, f0);
        }
    }
    rabia_wal_close(w);
    if (err[0]) fprintf(stderr, "%s\n", err);
}

/* One turn's records larger than half a segment go out in several writes,
 * in order, across segments; the caller sees records pending until the
 * last part is sealed. */
static void test_large_group_split(void)
{
    char dir[300], err[1024] = "";
    fresh(dir, sizeof dir, "split");
    struct seen s;
    struct rabia_wal_info info;
    int rc;
    struct rabia_wal *w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    uint8_t *b = calloc(1, 20000);
    for (uint64_t q = 1; q <= 150; q++) { /* about 3 MB in one group */
        struct rabia_msg m = {.type = RABIA_MSG_BATCH, .from = 1, .has_id = 1,
                              .id = {.proxy = 1, .incarnation = 7, .seq = q}, .body = b, .body_len = 20000};
        CHECK_EQ(rabia_wal_append_msg(w, RABIA_WAL_BATCH, q, &m), 0);
    }
    int writes = 0;
    while (rabia_wal_pending(w)) {
        struct rabia_wal_write io;
        int tries = 0;
        while ((rc = rabia_wal_seal(w, &io)) == -EAGAIN && tries++ < 5000) usleep(1000);
        CHECK_EQ(rc, 1);
        if (rc != 1) break;
        CHECK(io.len <= SEG / 2);
        struct iovec v = {.iov_base = (void *)io.buf, .iov_len = io.len};
        CHECK_EQ(rabia_wal_written(w, (int)pwritev2(io.fd, &v, 1, (off_t)io.off, io.rw_flags)), 0);
        writes++;
    }
    CHECK(writes >= 6);
    free(b);
    rabia_wal_close(w);
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    CHECK_EQ(s.n, 150);
    CHECK(s.order_ok);
    rabia_wal_close(w);
}

static void test_torn_tail(void)
{
    char dir[300], err[1024] = "", path[400];
    fresh(dir, sizeof dir, "torn");
    struct seen s;
    struct rabia_wal_info info;
    int rc;
    struct rabia_wal *w = open_log(dir, &s, &info, &rc, err, sizeof err);
    write_groups(w, 1, 20, 5, 100);     /* 4 one-block groups at 4096.. */
    write_groups(w, 21, 3, 3, 6000);    /* one group of 5 blocks */
    rabia_wal_close(w);
    seg_file(dir, 1, path, sizeof path);
    /* the crash tore the last write: its third block never reached the disk,
     * its fourth holds garbage */
    uint64_t last = 4096 + 4 * 4096;
    uint8_t z[4096] = {0}, g[4096];
    memset(g, 0xA5, sizeof g);
    poke(path, last + 2 * 4096, z, sizeof z);
    poke(path, last + 3 * 4096, g, sizeof g);
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    CHECK_EQ(s.n, 20);                  /* the torn group is gone, the rest kept */
    CHECK(info.torn_bytes > 0);
    uint8_t back[4096];
    peek(path, last + 3 * 4096, back, sizeof back);
    CHECK(memcmp(back, z, sizeof z) == 0); /* zeroed, so it cannot confuse a later scan */
    write_groups(w, 21, 10, 2, 50);     /* the log goes on where the torn write was */
    rabia_wal_close(w);
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    CHECK_EQ(s.n, 30);
    CHECK(s.order_ok);
    CHECK_EQ(info.torn_bytes, 0);
    rabia_wal_close(w);
}

/* A segment file's first bytes, or false while it does not exist yet. */
static bool try_peek(const char *path, uint64_t off, void *p, size_t n)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return false;
    bool ok = pread(fd, p, n, (off_t)off) == (ssize_t)n;
    close(fd);
    return ok;
}

/* The last write was the first one into a new segment (the group did not fit
 * the rest of the previous one) and the crash tore it: the log ends cleanly
 * at the previous segment's last group, and the new segment's bytes are the
 * torn tail, zeroed at recovery like one inside a segment. Three tears: the
 * group header garbage; the header intact but the rest not; the first block
 * lost and a later one garbage. */
static void test_torn_at_segment_start(void)
{
    const char *kinds[] = {"garbage header", "header only", "first block lost"};
    for (int kind = 0; kind < 3; kind++) {
        char dir[300], err[1024] = "", path1[400], path2[400];
        char name[64];
        snprintf(name, sizeof name, "torn-seg-%d", kind);
        fresh(dir, sizeof dir, name);
        struct seen s;
        struct rabia_wal_info info;
        int rc;
        struct rabia_wal *w = open_log(dir, &s, &info, &rc, err, sizeof err);
        CHECK_EQ(rc, 0);
        seg_file(dir, 1, path1, sizeof path1);
        seg_file(dir, 2, path2, sizeof path2);
        /* groups of 3 records of 5,000 bytes (four blocks each) until one
         * lands in segment 2; that one is the write the crash tears */
        uint64_t next = 1, before = 0;
        uint8_t magic[4] = {0};
        while (next < 1000) {
            before = next - 1;
            write_groups(w, next, 3, 3, 5000);
            next += 3;
            if (try_peek(path2, 4096, magic, sizeof magic) && (magic[0] | magic[1] | magic[2] | magic[3])) break;
        }
        CHECK(next < 1000);
        rabia_wal_close(w);
        uint8_t g[4096], z[4096] = {0};
        memset(g, 0x5A, sizeof g);
        if (kind == 0) {
            poke(path2, 4096, g, 64);           /* the header and the first record's start */
        } else if (kind == 1) {
            poke(path2, 4096 + 4096, g, sizeof g); /* the header landed, the next block did not */
        } else {
            poke(path2, 4096, z, sizeof z);      /* the first block never arrived, the third is garbage */
            poke(path2, 4096 + 2 * 4096, g, sizeof g);
        }
        w = open_log(dir, &s, &info, &rc, err, sizeof err);
        CHECK_EQ(rc, 0);
        CHECK_EQ(s.n, before);              /* the torn group is gone, the rest kept */
        CHECK(s.order_ok);
        CHECK(info.torn_bytes > 0);
        uint8_t back[4096];
        for (uint64_t off = 4096; off < 4 * 4096 + 4096; off += 4096) {
            peek(path2, off, back, sizeof back);
            CHECK(memcmp(back, z, sizeof z) == 0); /* zeroed, so a later scan is not confused */
        }
        /* the log goes on in segment 2 with a smaller write than the torn one */
        write_groups(w, before + 1, 2, 2, 50);
        rabia_wal_close(w);
        peek(path2, 4096, magic, sizeof magic);
        CHECK(magic[0] | magic[1] | magic[2] | magic[3]);
        w = open_log(dir, &s, &info, &rc, err, sizeof err);
        CHECK_EQ(rc, 0);
        CHECK_EQ(s.n, before + 2);
        CHECK(s.order_ok);
        CHECK_EQ(info.torn_bytes, 0);       /* nothing of the old tear is left to find */
        rabia_wal_close(w);
        printf("     %s: %" PRIu64 " records kept\n", kinds[kind], s.n);
    }
}

/* Damage in the middle must stop the open with the file and offset named. */
static void expect_refused(const char *dir, const char *what, const char *offset_text)
{
    struct seen s;
    struct rabia_wal_info info;
    int rc;
    char err[1024] = "";
    struct rabia_wal *w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK(w == NULL);
    CHECK_EQ(rc, -EUCLEAN);
    CHECK(strstr(err, offset_text) != NULL);
    CHECK(strstr(err, "--rejoin") != NULL);
    printf("     %s -> %s\n", what, err);
    rabia_wal_close(w);
}

static void test_corruption_in_the_middle(void)
{
    char dir[300], err[1024] = "", path[400];
    struct seen s;
    struct rabia_wal_info info;
    int rc;
    const char *kinds[] = {"bitflip", "zeroed", "misdirected", "zeroed-header"};
    for (int kind = 0; kind < 4; kind++) {
        fresh(dir, sizeof dir, kinds[kind]);
        struct rabia_wal *w = open_log(dir, &s, &info, &rc, err, sizeof err);
        write_groups(w, 1, 40, 5, 100); /* 8 one-block groups at 4096, 8192, ... */
        rabia_wal_close(w);
        seg_file(dir, 1, path, sizeof path);
        uint64_t g3 = 4096 + 2 * 4096;
        if (kind == 0) { /* one bit of a record in group 3 */
            uint8_t b;
            peek(path, g3 + 200, &b, 1);
            b ^= 0x10;
            poke(path, g3 + 200, &b, 1);
        } else if (kind == 1) { /* group 3's block zeroed, tail of it garbage-free */
            uint8_t z[4096] = {0};
            poke(path, g3, z, sizeof z);
        } else if (kind == 2) { /* group 6 written over group 3's place */
            uint8_t b[4096];
            peek(path, 4096 + 5 * 4096, b, sizeof b);
            poke(path, g3, b, sizeof b);
        } else { /* only the first bytes of group 3 zeroed */
            uint8_t z[64] = {0};
            poke(path, g3, z, sizeof z);
        }
        char off[64];
        snprintf(off, sizeof off, "offset %" PRIu64, g3);
        expect_refused(dir, kinds[kind], off);
    }
}

/* A torn last write, and bytes in the segment made ahead (never written
 * to: a write misdirected there, a disk error): one open zeroes both, so
 * that the writer finds that segment as zeros when it gets there and a
 * second open has nothing left to cut (it cut them only then: fuzz_wal). */
static void test_torn_tail_and_garbage_ahead(void)
{
    char dir[300], err[1024] = "", path[400];
    fresh(dir, sizeof dir, "ahead");
    struct seen s;
    struct rabia_wal_info info;
    int rc;
    struct rabia_wal *w = open_log(dir, &s, &info, &rc, err, sizeof err);
    write_groups(w, 1, 20, 5, 100); /* 4 one-block groups at 4096.. */
    for (int i = 0; i < 5000 && !try_peek((seg_file(dir, 2, path, sizeof path), path), 0, err, 8); i++)
        usleep(1000); /* the segment made ahead */
    rabia_wal_close(w);
    seg_file(dir, 1, path, sizeof path);
    uint8_t g[4096];
    memset(g, 0xA5, sizeof g);
    poke(path, 4096 + 3 * 4096 + 100, g, 64); /* the last group torn */
    seg_file(dir, 2, path, sizeof path);
    poke(path, 50000, g, sizeof g);
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    CHECK_EQ(s.n, 15);
    CHECK(info.torn_bytes > SEG / 2); /* the tail of segment 1 and segment 2's data */
    uint8_t back[4096], z[4096] = {0};
    peek(path, 50000 - 50000 % 4096, back, sizeof back);
    CHECK(memcmp(back, z, sizeof z) == 0);
    rabia_wal_close(w);
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    CHECK_EQ(s.n, 15);
    CHECK_EQ(info.torn_bytes, 0);
    write_groups(w, 16, 300, 10, 3000); /* on into segment 2 and past it */
    rabia_wal_close(w);
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    CHECK_EQ(s.n, 315);
    CHECK(s.order_ok);
    rabia_wal_close(w);
}

/* A torn last write whose first block (the group header) did not land but
 * a later block did. The scan sees a zero block where the next group would
 * start, a clean end; the later block must be zeroed with the tail all the
 * same. Left there, the writer went on at the stop point with a shorter
 * group, moved to the next segment with the one after (it did not fit),
 * and the next open found the stale block behind intact groups and refused
 * to start: "acknowledged data is damaged" (found by review). */
static void test_torn_first_block(void)
{
    char dir[300], err[1024] = "", path[400];
    fresh(dir, sizeof dir, "torn-first");
    struct seen s;
    struct rabia_wal_info info;
    int rc;
    struct rabia_wal *w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    write_groups(w, 1, 235, 1, 100);   /* one-block groups in blocks 1..235 */
    write_groups(w, 236, 1, 1, 60000); /* one group of 15 blocks from block 236 */
    rabia_wal_close(w);
    seg_file(dir, 1, path, sizeof path);
    uint8_t z[4096] = {0}, g[4096], back[4096];
    memset(g, 0xC3, sizeof g);
    poke(path, 236 * 4096, z, sizeof z);        /* its first block never arrived */
    poke(path, (236 + 10) * 4096, g, sizeof g); /* its eleventh did */
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    CHECK_EQ(s.n, 235);
    CHECK(info.torn_bytes > 0);
    peek(path, (236 + 10) * 4096, back, sizeof back);
    CHECK(memcmp(back, z, sizeof z) == 0); /* zeroed with the tail */
    write_groups(w, 236, 1, 1, 100);       /* block 236 */
    write_groups(w, 237, 1, 1, 90000);     /* 23 blocks: on in segment 2 */
    rabia_wal_close(w);
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    if (rc) printf("     %s\n", err);
    CHECK_EQ(s.n, 237);
    CHECK(s.order_ok);
    CHECK_EQ(info.torn_bytes, 0);
    rabia_wal_close(w);
}

/* The last-but-one group damaged and the last write torn: nothing intact
 * follows the damage, but the torn write's header is there, and only one
 * write is ever in flight, so the damaged group had completed and was
 * acknowledged. Refused, naming it; it was cut as a torn tail with the
 * torn write (found by review). Also at a segment boundary: the torn
 * write the first of the next segment. */
static void test_damage_before_a_torn_write(void)
{
    char dir[300], err[1024] = "", path[400];
    struct seen s;
    struct rabia_wal_info info;
    int rc;
    fresh(dir, sizeof dir, "damage-then-torn");
    struct rabia_wal *w = open_log(dir, &s, &info, &rc, err, sizeof err);
    write_groups(w, 1, 40, 5, 100); /* 8 one-block groups at 4096, 8192, ... */
    rabia_wal_close(w);
    seg_file(dir, 1, path, sizeof path);
    uint64_t g7 = 4096 + 6 * 4096, g8 = 4096 + 7 * 4096;
    uint8_t b, junk[64];
    peek(path, g7 + 200, &b, 1);
    b ^= 0x04;
    poke(path, g7 + 200, &b, 1);   /* a bit of group 7 flipped */
    memset(junk, 0x77, sizeof junk);
    poke(path, g8 + 300, junk, sizeof junk); /* group 8, the last write, torn after its header */
    char off[64];
    snprintf(off, sizeof off, "offset %" PRIu64, g7);
    expect_refused(dir, "damage, then a torn write", off);

    /* the same across a segment boundary: groups of 3 x 5,000 bytes until
     * one lands in segment 2; the one before it damaged, that one torn */
    fresh(dir, sizeof dir, "damage-then-torn-seg");
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    char path2[400];
    seg_file(dir, 1, path, sizeof path);
    seg_file(dir, 2, path2, sizeof path2);
    uint64_t next = 1;
    uint8_t magic[4] = {0};
    while (next < 1000) {
        write_groups(w, next, 3, 3, 5000);
        next += 3;
        if (try_peek(path2, 4096, magic, sizeof magic) && (magic[0] | magic[1] | magic[2] | magic[3])) break;
    }
    CHECK(next < 1000);
    rabia_wal_close(w);
    /* the last group of segment 1: groups of four blocks from block 1 */
    uint64_t last1 = 4096;
    for (uint8_t h[4]; last1 + 4 * 4096 < SEG; last1 += 4 * 4096) {
        peek(path, last1 + 4 * 4096, h, sizeof h);
        if (!(h[0] | h[1] | h[2] | h[3])) break;
    }
    peek(path, last1 + 100, &b, 1);
    b ^= 0x01;
    poke(path, last1 + 100, &b, 1);
    poke(path2, 4096 + 4096 + 10, junk, sizeof junk);
    snprintf(off, sizeof off, "offset %" PRIu64, last1);
    expect_refused(dir, "damage, then a torn write in the next segment", off);
}

/* A segment in the middle deleted by hand: refused, naming it. When the
 * segment before it ended cleanly (the writer had moved on because the
 * next group did not fit), the scan compared the next lsn with the
 * segment after the gap, concluded the log ended there, and dropped the
 * intact records past the gap without a word (tests/fuzz/fuzz_wal). */
static void test_missing_middle_segment(void)
{
    char dir[300], err[1024] = "", path[400];
    fresh(dir, sizeof dir, "missing");
    struct seen s;
    struct rabia_wal_info info;
    int rc;
    struct rabia_wal *w = open_log(dir, &s, &info, &rc, err, sizeof err);
    write_groups(w, 1, 600, 10, 3000); /* three segments */
    rabia_wal_close(w);
    seg_file(dir, 2, path, sizeof path);
    CHECK_EQ(unlink(path), 0);
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK(w == NULL);
    CHECK_EQ(rc, -EINVAL);
    CHECK(strstr(err, "00000000000000000002.seg is missing between 1 and 3") != NULL);
    printf("     %s\n", err);
    rabia_wal_close(w);
}

/* unlink as libc's, except that the call numbered unlink_fail_at (counted
 * in unlink_calls from when it is set) fails with EIO: a removal cut short
 * there, as kill -9 or a power cut would. Takes libc's place for the whole
 * test program. */
static int unlink_fail_at, unlink_calls;
int unlink(const char *path)
{
    if (unlink_fail_at && ++unlink_calls == unlink_fail_at) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_unlinkat, AT_FDCWD, path, 0);
}

/* A recovery from the peers cut short is started over with a new log
 * (replica/durable.c): the old one is removed. Cut short at any file,
 * what is left still begins with segment 1, which says the log began a
 * recovery, so the next start begins it again. Removed in the folder's
 * order, a removal cut short after segment 1 left the empty preallocated
 * segment 2: a log that began no recovery, and the replica took part at
 * once without the horizon rule (reproduced with kill -9 at the second
 * unlink). */
static void test_remove_keeps_first_segment(void)
{
    char dir[300], err[1024] = "";
    struct rabia_wal_config cfg = {.segment_bytes = SEG, .cluster_id = 42, .replica = 1, .batch_incarnation = 7,
                                   .recovering = true};
    for (int cut = 1; cut <= 6; cut++) {
        fresh(dir, sizeof dir, "remove");
        cfg.dir = dir;
        struct seen s = {.order_ok = true};
        struct rabia_wal_info info;
        struct rabia_wal *w = NULL;
        CHECK_EQ(rabia_wal_open(&w, &cfg, on_rec, &s, &info, err, sizeof err), 0);
        write_groups(w, 1, 600, 10, 3000); /* three segments (and maybe the next one, preallocated) */
        rabia_wal_close(w);
        int files = count_segments(dir);
        CHECK(files >= 3);
        unlink_calls = 0;
        unlink_fail_at = cut;
        int rc = rabia_wal_remove(dir);
        unlink_fail_at = 0;
        CHECK_EQ(rc, cut <= files ? -EIO : 0);
        memset(&s, 0, sizeof s);
        s.order_ok = true;
        w = NULL;
        rc = rabia_wal_open(&w, &cfg, on_rec, &s, &info, err, sizeof err);
        if (rc) printf("     cut at unlink %d: %s\n", cut, err);
        CHECK_EQ(rc, 0); /* no hole */
        CHECK(!info.existed || info.began_recovering);
        rabia_wal_close(w);
    }
}

static void test_dir_lock(void)
{
    char dir[300], err[512];
    fresh(dir, sizeof dir, "lock");
    int a = -1, b = -1;
    CHECK_EQ(rabia_dir_lock(dir, &a, err, sizeof err), 0);
    CHECK_EQ(rabia_dir_lock(dir, &b, err, sizeof err), -EBUSY);
    CHECK(strstr(err, "in use by another process") != NULL);
    rabia_dir_unlock(a);
    CHECK_EQ(rabia_dir_lock(dir, &b, err, sizeof err), 0);
    rabia_dir_unlock(b);
}

/* data-dir/peers-seen (persist/peers_seen.c): the incarnation first heard
 * from each peer, kept across restarts; a damaged file is refused naming it
 * and the fix, never read as partly right. */
static void put_file(const char *dir, const char *text)
{
    char path[400];
    snprintf(path, sizeof path, "%s/" RABIA_PEERS_SEEN_FILE, dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void test_peers_seen(void)
{
    char dir[300], err[800];
    fresh(dir, sizeof dir, "peers_seen");
    CHECK_EQ(mkdir(dir, 0750), 0);
    uint64_t seen[RABIA_MAX_REPLICAS] = {1, 2, 3};
    CHECK_EQ(rabia_peers_seen_read(dir, 3, seen, err, sizeof err), 0); /* no file: none heard */
    CHECK(seen[0] == 0 && seen[1] == 0 && seen[2] == 0);
    uint64_t w[RABIA_MAX_REPLICAS] = {0, 1780000000000000ull, UINT64_MAX};
    CHECK_EQ(rabia_peers_seen_write(dir, 3, w, err, sizeof err), 0);
    CHECK_EQ(rabia_peers_seen_read(dir, 3, seen, err, sizeof err), 0);
    CHECK(seen[0] == 0 && seen[1] == 1780000000000000ull && seen[2] == UINT64_MAX);
    /* a members list grown to 5: the same; shrunk to 2: replica 3 skipped */
    CHECK_EQ(rabia_peers_seen_read(dir, 5, seen, err, sizeof err), 0);
    CHECK(seen[1] == 1780000000000000ull && seen[2] == UINT64_MAX && seen[3] == 0 && seen[4] == 0);
    CHECK_EQ(rabia_peers_seen_read(dir, 2, seen, err, sizeof err), 0);
    CHECK(seen[0] == 0 && seen[1] == 1780000000000000ull);
    static const char *const bad[] = {
        "",                                             /* empty */
        "rabia peers-seen 2\n",                         /* another format */
        "rabia peers-seen 1\n2 17\n3",                  /* cut short */
        "rabia peers-seen 1\n2 17",                      /* no newline */
        "rabia peers-seen 1\n2  17\n",                  /* two spaces */
        "rabia peers-seen 1\n0 17\n",                   /* no replica 0 */
        "rabia peers-seen 1\n8 17\n",                   /* past RABIA_MAX_REPLICAS */
        "rabia peers-seen 1\n2 0\n",                    /* incarnation 0 */
        "rabia peers-seen 1\n2 17\n2 18\n",             /* twice */
        "rabia peers-seen 1\n2 18446744073709551616\n", /* 2^64 */
        "rabia peers-seen 1\n2 -1\n",
        "rabia peers-seen 1\n2 17\nx\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put_file(dir, bad[i]);
        seen[1] = 5;
        err[0] = 0;
        CHECK_EQ(rabia_peers_seen_read(dir, 3, seen, err, sizeof err), -EINVAL);
        CHECK(strstr(err, "/peers-seen is damaged (") && strstr(err, "): remove it."));
        CHECK_EQ(seen[1], 0); /* nothing half read */
    }
    /* bigger than any such file */
    char big[4000];
    memset(big, '7', sizeof big - 1);
    big[sizeof big - 1] = 0;
    memcpy(big, "rabia peers-seen 1\n", 19);
    put_file(dir, big);
    CHECK_EQ(rabia_peers_seen_read(dir, 3, seen, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "larger than any such file") != NULL);
    /* unreadable: the error names the file and what to check (as root a
     * mode does not stop a read: a folder in its place does) */
    char path[400];
    snprintf(path, sizeof path, "%s/" RABIA_PEERS_SEEN_FILE, dir);
    CHECK_EQ(unlink(path), 0);
    CHECK_EQ(mkdir(path, 0700), 0);
    CHECK(rabia_peers_seen_read(dir, 3, seen, err, sizeof err) < 0);
    CHECK(strstr(err, "peers-seen") != NULL);
    /* and the write says what failed */
    CHECK(rabia_peers_seen_write(dir, 3, w, err, sizeof err) < 0);
    CHECK(strstr(err, "peers-seen") != NULL);
    rmdir(path);
}

/* data-dir/cluster-id (persist/cluster_id.c, read through
 * rabia_read_small_file): absent, written and read back, and damaged ones
 * refused, a longer file included. */
static void test_cluster_id_file(void)
{
    char dir[300], path[400], err[800];
    fresh(dir, sizeof dir, "cluster_id");
    CHECK_EQ(mkdir(dir, 0750), 0);
    uint64_t id = 7;
    bool found = true;
    CHECK_EQ(rabia_cluster_id_read(dir, &id, &found, err, sizeof err), 0);
    CHECK(!found && id == 0);
    CHECK_EQ(rabia_cluster_id_write(dir, 0x00c0ffee12345678ull, err, sizeof err), 0);
    CHECK_EQ(rabia_cluster_id_read(dir, &id, &found, err, sizeof err), 0);
    CHECK(found && id == 0x00c0ffee12345678ull);
    snprintf(path, sizeof path, "%s/cluster-id", dir);
    static const char *const bad[] = {"00c0ffee123456789\n", "00c0ffee1234567\n", "00c0ffeeXX345678\n",
                                      "0000000000000000\n", "00c0ffee12345678", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        if (!f) return;
        fputs(bad[i], f);
        fclose(f);
        err[0] = 0;
        CHECK_EQ(rabia_cluster_id_read(dir, &id, &found, err, sizeof err), -EINVAL);
        CHECK(!found && strstr(err, "cluster-id is damaged") != NULL);
    }
    /* unreadable (a folder in its place): the error names the file */
    CHECK_EQ(unlink(path), 0);
    CHECK_EQ(mkdir(path, 0700), 0);
    CHECK(rabia_cluster_id_read(dir, &id, &found, err, sizeof err) < 0);
    CHECK(strstr(err, "cluster-id") != NULL);
    rmdir(path);
}

static void test_wrong_replica(void)
{
    char dir[300], err[1024] = "";
    fresh(dir, sizeof dir, "wrong");
    struct seen s;
    struct rabia_wal_info info;
    int rc;
    struct rabia_wal *w = open_log(dir, &s, &info, &rc, err, sizeof err);
    write_groups(w, 1, 3, 3, 10);
    rabia_wal_close(w);
    struct rabia_wal_config cfg = {.dir = dir, .segment_bytes = SEG, .cluster_id = 42, .replica = 2,
                                   .batch_incarnation = 7};
    rc = rabia_wal_open(&w, &cfg, on_rec, &s, &info, err, sizeof err);
    CHECK(rc < 0);
    CHECK(strstr(err, "wrong data-dir") != NULL);
}

/* A log made by a recovery says so in its first segment, durably before
 * any record: a restart finds the mark even when no record ever landed,
 * and a log made otherwise has none. */
static void test_recovery_mark(void)
{
    char dir[300], err[1024] = "";
    fresh(dir, sizeof dir, "mark");
    struct rabia_wal_config cfg = {.dir = dir, .segment_bytes = SEG, .cluster_id = 42, .replica = 1,
                                   .batch_incarnation = 7, .recovering = true};
    struct seen s = {.order_ok = true};
    struct rabia_wal_info info;
    struct rabia_wal *w = NULL;
    CHECK_EQ(rabia_wal_open(&w, &cfg, on_rec, &s, &info, err, sizeof err), 0);
    CHECK(!info.existed && info.began_recovering);
    rabia_wal_close(w); /* no record was written */
    cfg.recovering = false; /* what the config says now does not matter: the log says */
    CHECK_EQ(rabia_wal_open(&w, &cfg, on_rec, &s, &info, err, sizeof err), 0);
    CHECK(info.existed && info.began_recovering && info.records == 0);
    rabia_wal_close(w);
    int rc;
    fresh(dir, sizeof dir, "nomark");
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    CHECK(!info.began_recovering);
    rabia_wal_close(w);
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK(rc == 0 && info.existed && !info.began_recovering);
    rabia_wal_close(w);
}

/* Format versions: a DECIDED_REF record (v4) reads back; a segment whose
 * header says v3 (no such records) is read too; v2 is refused by name. */
static int count_types(void *ctx, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len, char *err,
                       size_t errlen)
{
    (void)slot, (void)frame, (void)len, (void)err, (void)errlen;
    uint32_t *by_type = ctx;
    by_type[type < 8 ? type : 0]++;
    return 0;
}

static void set_version(const char *path, uint32_t v)
{
    uint8_t h[64];
    peek(path, 0, h, sizeof h);
    memcpy(h + 8, &v, 4); /* little-endian, as wal.c's put32 */
    uint64_t sum = XXH64(h, 56, 0x5241424957414cull);
    memcpy(h + 56, &sum, 8);
    poke(path, 0, h, sizeof h);
}

/* A log written with another O_DIRECT alignment than the data dir's
 * filesystem now asks (the dir moved): refused, naming both. The scan
 * stepped by the new block size and could take groups for a torn tail. */
static void test_block_size_changed(void)
{
    char dir[300], path[400], err[1024] = "";
    fresh(dir, sizeof dir, "blocksize");
    struct seen s;
    struct rabia_wal_info info;
    int rc;
    struct rabia_wal *w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK_EQ(rc, 0);
    uint32_t block = info.block;
    write_groups(w, 1, 20, 5, 100);
    rabia_wal_close(w);
    seg_file(dir, 1, path, sizeof path);
    uint8_t h[64];
    peek(path, 0, h, sizeof h);
    uint32_t other = block == 512 ? 4096 : 512; /* as if written where the alignment was other */
    memcpy(h + 12, &other, 4);
    uint64_t sum = XXH64(h, 56, 0x5241424957414cull);
    memcpy(h + 56, &sum, 8);
    poke(path, 0, h, sizeof h);
    w = open_log(dir, &s, &info, &rc, err, sizeof err);
    CHECK(w == NULL);
    CHECK_EQ(rc, -EINVAL);
    CHECK(strstr(err, "blocks") != NULL && strstr(err, "--rejoin") != NULL);
    printf("     %s\n", err);
    rabia_wal_close(w);
}

/* A segment file longer than wal-segment-bytes (the setting lowered since
 * the log was written): refused, naming the file and the setting. Only a
 * shorter file was refused: the scan read the first wal-segment-bytes of
 * each file, took the group across that point for a torn last write and
 * zeroed it, and the writer went on there, so acknowledged records were
 * dropped (and the zeroed range then made the log unreadable with the
 * right setting too). */
static void test_segment_size_lowered(void)
{
    char dir[300], path[400], err[1024] = "";
    fresh(dir, sizeof dir, "seglowered");
    struct seen s;
    struct rabia_wal_info info;
    int rc;
    struct rabia_wal_config big = {.dir = dir, .segment_bytes = 2 * SEG, .cluster_id = 42, .replica = 1,
                                   .batch_incarnation = 7};
    struct rabia_wal *w = NULL;
    CHECK_EQ(rabia_wal_open(&w, &big, on_rec, &s, &info, err, sizeof err), 0);
    /* 400 records of ~3 KB: about 1.3 MB, all in segment 1 of 2 MiB */
    write_groups(w, 1, 400, 10, 3000);
    rabia_wal_close(w);
    seg_file(dir, 1, path, sizeof path);
    w = open_log(dir, &s, &info, &rc, err, sizeof err); /* wal-segment-bytes = 1 MiB */
    CHECK(w == NULL);
    CHECK_EQ(rc, -EINVAL);
    CHECK(strstr(err, path) != NULL && strstr(err, "wal-segment-bytes") != NULL);
    printf("     %s\n", err);
    rabia_wal_close(w);
    /* the setting back: every record, nothing cut */
    memset(&s, 0, sizeof s);
    s.order_ok = true;
    w = NULL;
    rc = rabia_wal_open(&w, &big, on_rec, &s, &info, err, sizeof err);
    CHECK_EQ(rc, 0);
    if (rc) fprintf(stderr, "%s\n", err);
    CHECK_EQ(s.n, 400);
    CHECK(s.order_ok);
    CHECK_EQ(info.torn_bytes, 0);
    rabia_wal_close(w);
}

static void test_format_versions(void)
{
    char dir[300], path[400], err[1024] = "";
    fresh(dir, sizeof dir, "versions");
    struct rabia_wal_config cfg = {.dir = dir, .segment_bytes = SEG, .cluster_id = 42, .replica = 1,
                                   .batch_incarnation = 7};
    uint32_t by_type[8] = {0};
    struct rabia_wal_info info;
    struct rabia_wal *w = NULL;
    CHECK_EQ(rabia_wal_open(&w, &cfg, count_types, by_type, &info, err, sizeof err), 0);
    write_groups(w, 1, 3, 3, 200);
    struct rabia_msg d = {.type = RABIA_MSG_DECISION, .from = 1, .slot = 9, .value = 1, .has_id = 1,
                          .id = {.proxy = 1, .incarnation = 7, .seq = 2}};
    CHECK_EQ(rabia_wal_append_msg(w, RABIA_WAL_DECIDED_REF, 9, &d), 0);
    struct rabia_wal_write io;
    int rc, tries = 0;
    while ((rc = rabia_wal_seal(w, &io)) == -EAGAIN && tries++ < 5000) usleep(1000);
    CHECK_EQ(rc, 1);
    struct iovec v = {.iov_base = (void *)io.buf, .iov_len = io.len};
    CHECK_EQ(rabia_wal_written(w, (int)pwritev2(io.fd, &v, 1, (off_t)io.off, io.rw_flags)), 0);
    rabia_wal_close(w);
    CHECK_EQ(rabia_wal_open(&w, &cfg, count_types, by_type, &info, err, sizeof err), 0);
    CHECK_EQ(by_type[RABIA_WAL_BATCH], 3);
    CHECK_EQ(by_type[RABIA_WAL_DECIDED_REF], 1);
    rabia_wal_close(w);
    seg_file(dir, 1, path, sizeof path);
    set_version(path, 3);
    memset(by_type, 0, sizeof by_type);
    CHECK_EQ(rabia_wal_open(&w, &cfg, count_types, by_type, &info, err, sizeof err), 0);
    CHECK_EQ(by_type[RABIA_WAL_BATCH], 3);
    rabia_wal_close(w);
    set_version(path, 2);
    w = NULL;
    CHECK(rabia_wal_open(&w, &cfg, count_types, by_type, &info, err, sizeof err) < 0);
    CHECK(strstr(err, "log format version 2, this build reads 3 to 4") != NULL);
    if (w) rabia_wal_close(w);
}

#if defined(__x86_64__)
/* persist/wal.c hashes long records with libxxhash's run-time dispatched
 * XXH3 (AVX2/AVX-512): it must give the portable code's value, or logs
 * written by one build would not read in another. */
uint64_t XXH3_64bits_withSeed_dispatch(const void *input, size_t len, uint64_t seed);
static void test_xxh3_dispatch(void)
{
    size_t cap = 70000;
    uint8_t *b = malloc(cap);
    for (size_t i = 0; i < cap; i++) b[i] = (uint8_t)(i * 131 + (i >> 7));
    for (size_t n = 1000; n < cap; n = n * 3 / 2 + 7) {
        for (size_t off = 0; off < 3; off++) {
            uint64_t seed = n * 0x9e3779b97f4a7c15ull + off;
            CHECK_EQ(XXH3_64bits_withSeed_dispatch(b + off, n - off, seed), XXH3_64bits_withSeed(b + off, n - off, seed));
        }
    }
    free(b);
}
#endif

static void test_snapfile(void)
{
    char dir[300], err[1024] = "", path[400];
    fresh(dir, sizeof dir, "snap");
    uint8_t a[1000], b[3000];
    memset(a, 1, sizeof a);
    memset(b, 2, sizeof b);
    CHECK_EQ(rabia_snapfile_write(dir, 10, a, sizeof a, err, sizeof err), 0);
    CHECK_EQ(rabia_snapfile_write(dir, 20, b, sizeof b, err, sizeof err), 0);
    const uint8_t *d = NULL;
    size_t len = 0;
    uint64_t slot = 0;
    CHECK_EQ(rabia_snapfile_load(dir, &d, &len, &slot, err, sizeof err), 1);
    CHECK_EQ(slot, 20);
    CHECK_EQ(len, sizeof b);
    rabia_snapfile_unmap(d, len);
    /* a damaged newest file: the older one is used, and said so */
    snprintf(path, sizeof path, "%s/%020d.snap", dir, 20);
    uint8_t x = 9;
    poke(path, 100, &x, 1);
    CHECK_EQ(rabia_snapfile_load(dir, &d, &len, &slot, err, sizeof err), 1);
    CHECK_EQ(slot, 10);
    CHECK(strstr(err, "damaged") != NULL);
    rabia_snapfile_unmap(d, len);
    snprintf(path, sizeof path, "%s/%020d.snap", dir, 10);
    poke(path, 50, &x, 1);
    CHECK_EQ(rabia_snapfile_load(dir, &d, &len, &slot, err, sizeof err), -EUCLEAN);
    CHECK(strstr(err, "--rejoin") != NULL);
    CHECK_EQ(rabia_snapfile_write(dir, 30, a, sizeof a, err, sizeof err), 0);
    CHECK_EQ(rabia_snapfile_prune(dir, 1), 2);
    CHECK_EQ(rabia_snapfile_newest(dir), 30);
}

/* A snapshot folder or file that cannot be read is not "no snapshot" or
 * "damaged": the load refuses, naming it and the fix (permissions). The
 * folder was taken for empty and a file for damaged: the start went on
 * without them (found by review). As root no mode denies a read, so a
 * folder that is a plain file (ENOTDIR) and a file name that is a symlink
 * loop (ELOOP) stand for a folder and a file of another owner. */
static void test_snapfile_unreadable(void)
{
    char dir[300], err[1024] = "", path[700], sub[400];
    fresh(dir, sizeof dir, "snapunread");
    CHECK_EQ(mkdir(dir, 0700), 0);
    snprintf(sub, sizeof sub, "%s/snap", dir);
    int fd = open(sub, O_WRONLY | O_CREAT | O_TRUNC, 0640); /* a file where the folder goes */
    CHECK(fd >= 0);
    close(fd);
    const uint8_t *d = NULL;
    size_t len = 0;
    uint64_t slot = 0;
    CHECK_EQ(rabia_snapfile_load(sub, &d, &len, &slot, err, sizeof err), -ENOTDIR);
    CHECK(strstr(err, "cannot read the snapshot folder") != NULL);
    CHECK(strstr(err, "permissions") != NULL);
    /* a folder with none is still "none" */
    snprintf(sub, sizeof sub, "%s/none", dir);
    CHECK_EQ(rabia_snapfile_load(sub, &d, &len, &slot, err, sizeof err), 0);
    /* the newest file cannot be opened, an older one is intact: refused, not skipped */
    snprintf(sub, sizeof sub, "%s/s", dir);
    uint8_t a[100];
    memset(a, 1, sizeof a);
    CHECK_EQ(rabia_snapfile_write(sub, 10, a, sizeof a, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/%020d.snap", sub, 20);
    CHECK_EQ(symlink(path, path), 0); /* opening it: ELOOP */
    CHECK_EQ(rabia_snapfile_load(sub, &d, &len, &slot, err, sizeof err), -ELOOP);
    CHECK(strstr(err, "00000000000000000020.snap") != NULL);
    CHECK(strstr(err, "cannot read it") != NULL);
}

/* sync_file_range as the kernel's, except that while srange_eio is set a
 * wait (SYNC_FILE_RANGE_WAIT_AFTER) reports EIO once: what the kernel does
 * when a chunk's write-back failed, and the file's error is marked seen so
 * the fsync after it returns 0 (reproduced with an ext4 on a loop device
 * whose backing tmpfs was full: rabia_snapfile_write returned 0 and the
 * file read back damaged after a remount). This definition takes the place
 * of libc's for the whole test program. */
static bool srange_eio;
int sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
    if (srange_eio && (flags & SYNC_FILE_RANGE_WAIT_AFTER)) {
        srange_eio = false;
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_sync_file_range, fd, off, n, flags);
}

/* A snapshot whose write-back failed in the middle (the paced writer's
 * wait reported it, the fsync then could not) is not renamed into place:
 * the log would be released behind a file that reads back damaged. */
static void test_snapfile_writeback_error(void)
{
    char dir[300], err[1024] = "", path[400];
    fresh(dir, sizeof dir, "snap-eio");
    size_t n = 7u << 20; /* four 2 MiB chunks: the writer waits on three */
    uint8_t *b = malloc(n);
    CHECK(b != NULL);
    memset(b, 5, n);
    srange_eio = true;
    int rc = rabia_snapfile_write(dir, 40, b, n, err, sizeof err);
    srange_eio = false;
    CHECK_EQ(rc, -EIO);
    CHECK(strstr(err, "Input/output error") != NULL);
    snprintf(path, sizeof path, "%s/%020d.snap", dir, 40);
    CHECK(access(path, F_OK) != 0); /* not published */
    CHECK_EQ(rabia_snapfile_newest(dir), 0);
    snprintf(path, sizeof path, "%s/%020d.snap.tmp", dir, 40);
    CHECK(access(path, F_OK) != 0); /* and no temporary file left */
    /* the next try, on a disk that works again, succeeds */
    CHECK_EQ(rabia_snapfile_write(dir, 40, b, n, err, sizeof err), 0);
    CHECK_EQ(rabia_snapfile_newest(dir), 40);
    free(b);
}

/* Backups (rabia-cli backup, rabiad --restore): a snapshot file at any
 * path, written in pieces, checked in 1 MiB reads, every damage named with
 * its offset. The state is shaped as core/rsm.c's: u32 magic, u32 name
 * length, name, u64 slot, ..., XXH64 (seed 0) of everything before it. */
static size_t fake_state(uint8_t *p, size_t n, uint64_t slot, bool good_trailer)
{
    memset(p, 0, n);
    uint32_t magic = 0x52534d31, nl = 2;
    memcpy(p, &magic, 4);
    memcpy(p + 4, &nl, 4);
    memcpy(p + 8, "kv", 2);
    memcpy(p + 10, &slot, 8);
    for (size_t i = 18; i < n - 8; i++) p[i] = (uint8_t)(i * 7 + i / 4096);
    uint64_t h = XXH64(p, n - 8, 0) ^ (good_trailer ? 0 : 1);
    memcpy(p + n - 8, &h, 8);
    return n;
}

/* Written as given, damaged or not (finish and publish: commit would
 * refuse a damaged state), for rabia_snapfile_verify to find. */
static int write_backup(const char *path, uint64_t slot, const uint8_t *p, size_t n)
{
    struct rabia_snapfile_writer w;
    char err[1024];
    int rc = rabia_snapfile_begin_path(&w, path, slot, n, 1, err, sizeof err);
    for (size_t off = 0; !rc && off < n; off += 700000) /* pieces across the reader's 1 MiB chunks */
        rc = rabia_snapfile_append(&w, p + off, n - off < 700000 ? n - off : 700000, err, sizeof err);
    if (!rc) rc = rabia_snapfile_finish(&w, err, sizeof err);
    if (!rc) rc = rabia_snapfile_publish(&w, err, sizeof err);
    else rabia_snapfile_abort(&w);
    return rc;
}

/* A snapshot received from a peer (begin, append, commit) whose state is
 * damaged (the peer's file rotted on its disk: the file checksum is
 * computed over the bytes as they came) or not of the slot announced is
 * refused by commit and never takes the snapshot's name: renamed first, it
 * was the replica's newest snapshot until the install refused it, and a
 * replica killed before that file's removal refused to start. */
static void test_snapfile_commit_checks_state(void)
{
    char dir[300], err[1024] = "", path[400], tmp[420];
    fresh(dir, sizeof dir, "snap-rx");
    size_t n = 300000;
    uint8_t *st = malloc(n);
    CHECK(st != NULL);
    snprintf(path, sizeof path, "%s/%020d.snap", dir, 50);
    snprintf(tmp, sizeof tmp, "%s.2.tmp", path);
    for (int k = 0; k < 3; k++) {
        /* 0: the state's own checksum wrong; 1: a state of slot 49 sent as 50;
         * 2: intact */
        fake_state(st, n, k == 1 ? 49 : 50, k != 0);
        struct rabia_snapfile_writer w;
        CHECK_EQ(rabia_snapfile_begin(&w, dir, 50, n, 2, err, sizeof err), 0);
        for (size_t off = 0; off < n; off += 65536)
            CHECK_EQ(rabia_snapfile_append(&w, st + off, n - off < 65536 ? n - off : 65536, err, sizeof err), 0);
        int rc = rabia_snapfile_commit(&w, err, sizeof err);
        if (k < 2) {
            CHECK_EQ(rc, -EINVAL);
            CHECK(strstr(err, k == 0 ? "does not match its own checksum" : "the state says slot 49") != NULL);
            CHECK(access(path, F_OK) != 0); /* not this replica's snapshot */
            CHECK(access(tmp, F_OK) != 0);  /* and nothing left behind */
            CHECK_EQ(rabia_snapfile_newest(dir), 0);
        } else {
            CHECK_EQ(rc, 0);
            CHECK_EQ(rabia_snapfile_newest(dir), 50);
        }
    }
    free(st);
}

static void test_snapfile_backup(void)
{
    char dir[300], err[1024] = "", path[400];
    fresh(dir, sizeof dir, "backup");
    mkdir(dir, 0700); /* the folder of the backup exists: begin_path does not make it */
    snprintf(path, sizeof path, "%s/b.snap", dir);
    size_t n = (2u << 20) + 12345; /* the 8-byte trailer straddles no chunk boundary, and does below */
    uint8_t *st = malloc(n);
    CHECK(st != NULL);
    fake_state(st, n, 77, true);
    CHECK_EQ(write_backup(path, 77, st, n), 0);
    struct rabia_snapfile_info info;
    CHECK_EQ(rabia_snapfile_verify(path, &info, err, sizeof err), 0);
    CHECK_EQ(info.slot, 77);
    CHECK_EQ(info.len, n);
    CHECK(info.state_hash == XXH64(st, n, 0));
    CHECK(strcmp(info.sm, "kv") == 0);
    /* in two steps (rabia-cli backup): finished, the temporary file checks
     * out and PATH is still the old backup; aborted, PATH stays it and the
     * temporary file goes; published, PATH is the new one */
    {
        struct rabia_snapfile_writer w;
        uint8_t small[100];
        fake_state(small, sizeof small, 99, true);
        CHECK_EQ(rabia_snapfile_begin_path(&w, path, 99, sizeof small, 1, err, sizeof err), 0);
        CHECK_EQ(rabia_snapfile_append(&w, small, sizeof small, err, sizeof err), 0);
        CHECK_EQ(rabia_snapfile_finish(&w, err, sizeof err), 0);
        struct rabia_snapfile_info ti;
        CHECK_EQ(rabia_snapfile_verify(w.tmp, &ti, err, sizeof err), 0);
        CHECK_EQ(ti.slot, 99);
        CHECK_EQ(rabia_snapfile_verify(path, &info, err, sizeof err), 0);
        CHECK_EQ(info.slot, 77); /* not replaced yet */
        char tmp[sizeof w.tmp];
        snprintf(tmp, sizeof tmp, "%s", w.tmp);
        rabia_snapfile_abort(&w);
        CHECK(access(tmp, F_OK) != 0);
        CHECK_EQ(rabia_snapfile_verify(path, &info, err, sizeof err), 0);
        CHECK_EQ(info.slot, 77);
        CHECK_EQ(rabia_snapfile_begin_path(&w, path, 99, sizeof small, 1, err, sizeof err), 0);
        CHECK_EQ(rabia_snapfile_append(&w, small, sizeof small, err, sizeof err), 0);
        CHECK_EQ(rabia_snapfile_finish(&w, err, sizeof err), 0);
        CHECK_EQ(rabia_snapfile_publish(&w, err, sizeof err), 0);
        CHECK_EQ(rabia_snapfile_verify(path, &info, err, sizeof err), 0);
        CHECK_EQ(info.slot, 99);
        CHECK_EQ(write_backup(path, 77, st, n), 0); /* as before, for what follows */
    }
    /* the trailer across a 1 MiB read boundary: bytes 40 + (1 MiB - 4) ... */
    size_t n2 = (1u << 20) + 4;
    fake_state(st, n2, 5, true);
    CHECK_EQ(write_backup(path, 5, st, n2), 0);
    CHECK_EQ(rabia_snapfile_verify(path, &info, err, sizeof err), 0);
    /* the state's own checksum wrong, the file's right (damaged at the source) */
    fake_state(st, n, 77, false);
    CHECK_EQ(write_backup(path, 77, st, n), 0);
    CHECK(rabia_snapfile_verify(path, &info, err, sizeof err) < 0);
    CHECK(strstr(err, "does not match its own checksum") != NULL);
    /* mislabelled: the header says 78, the state 77 */
    fake_state(st, n, 77, true);
    CHECK_EQ(write_backup(path, 78, st, n), 0);
    CHECK(rabia_snapfile_verify(path, &info, err, sizeof err) < 0);
    CHECK(strstr(err, "the state says slot 77, the header (offset 8) slot 78") != NULL);
    /* a flipped byte in the state, the magic, the header checksum */
    CHECK_EQ(write_backup(path, 77, st, n), 0);
    uint8_t x = 0xee;
    poke(path, 40 + 1000000, &x, 1);
    CHECK(rabia_snapfile_verify(path, &info, err, sizeof err) < 0);
    CHECK(strstr(err, "do not match the checksum at offset 24") != NULL);
    CHECK_EQ(write_backup(path, 77, st, n), 0);
    poke(path, 0, &x, 1);
    CHECK(rabia_snapfile_verify(path, &info, err, sizeof err) < 0);
    CHECK(strstr(err, "offset 0: not a rabia snapshot") != NULL);
    CHECK_EQ(write_backup(path, 77, st, n), 0);
    poke(path, 12, &x, 1);
    CHECK(rabia_snapfile_verify(path, &info, err, sizeof err) < 0);
    CHECK(strstr(err, "offset 32: the header checksum") != NULL);
    /* truncated, and too long */
    CHECK_EQ(write_backup(path, 77, st, n), 0);
    CHECK_EQ(truncate(path, (off_t)(40 + n - 100)), 0);
    CHECK(rabia_snapfile_verify(path, &info, err, sizeof err) < 0);
    char want[200];
    snprintf(want, sizeof want, "truncated at offset %zu", 40 + n - 100);
    CHECK(strstr(err, want) != NULL);
    CHECK(strstr(err, "100 bytes short") != NULL);
    CHECK_EQ(truncate(path, 20), 0);
    CHECK(rabia_snapfile_verify(path, &info, err, sizeof err) < 0);
    CHECK(strstr(err, "truncated at offset 20") != NULL);
    CHECK_EQ(write_backup(path, 77, st, n), 0);
    CHECK_EQ(truncate(path, (off_t)(40 + n + 3)), 0);
    CHECK(rabia_snapfile_verify(path, &info, err, sizeof err) < 0);
    CHECK(strstr(err, "3 unexpected bytes") != NULL);
    /* no temporary file is left behind */
    char tmp[500];
    snprintf(tmp, sizeof tmp, "%s.1.tmp", path);
    CHECK(access(tmp, F_OK) != 0);
    free(st);
}

/* Paths near the writer's limits: a backup whose folder is longer than
 * 600 bytes (its fsync after the rename went to a cut-short folder name
 * and failed, after PATH had been replaced), and a snapshot folder too long
 * for a snapshot's name (refused, not written under a cut-short name). */
static void deepen(char *deep, size_t to)
{
    size_t n = strlen(deep);
    while (n < to) { /* components of at most 200 bytes */
        size_t add = to - n - 1 < 200 ? to - n - 1 : 200;
        if (to - n - 1 - add == 1) add--; /* no empty last component */
        deep[n++] = '/';
        memset(deep + n, 'd', add);
        n += add;
        deep[n] = 0;
        CHECK(mkdir(deep, 0700) == 0 || errno == EEXIST);
    }
    CHECK_EQ(strlen(deep), to);
}

static void test_snapfile_long_paths(void)
{
    char deep[700], path[720], err[1024] = "";
    fresh(deep, 300, "longpath");
    mkdir(deep, 0700);
    uint8_t small[100];
    fake_state(small, sizeof small, 9, true);
    struct rabia_snapfile_writer w;
    deepen(deep, 593); /* 593 + 27 bytes of name and NUL: fits exactly */
    CHECK_EQ(rabia_snapfile_begin(&w, deep, 9, sizeof small, 1, err, sizeof err), 0);
    CHECK_EQ(rabia_snapfile_append(&w, small, sizeof small, err, sizeof err), 0);
    CHECK_EQ(rabia_snapfile_commit(&w, err, sizeof err), 0);
    CHECK_EQ(rabia_snapfile_newest(deep), 9);
    deepen(deep, 610);
    CHECK_EQ(rabia_snapfile_begin(&w, deep, 9, sizeof small, 1, err, sizeof err), -ENAMETOOLONG);
    CHECK(strstr(err, "snapshot folder path too long") != NULL);
    snprintf(path, sizeof path, "%s/b.snap", deep);
    CHECK_EQ(write_backup(path, 9, small, sizeof small), 0);
    struct rabia_snapfile_info info;
    CHECK_EQ(rabia_snapfile_verify(path, &info, err, sizeof err), 0);
    CHECK_EQ(info.slot, 9);
}

/* The log's folder: a path too long for the log's own buffer is refused,
 * not cut short to another folder (a data-dir of 508 to 511 bytes put the
 * log in data-dir/wa, data-dir/w or the data dir itself, where nothing
 * else looked; found by review). */
static void test_wal_long_path(void)
{
    char deep[700], wal_dir[720], err[1024] = "";
    struct rabia_wal_config wc = {.segment_bytes = SEG, .cluster_id = 7, .replica = 0, .batch_incarnation = 1};
    struct rabia_wal *wl = NULL;
    struct rabia_wal_info wi;
    fresh(deep, 300, "longwal1");
    mkdir(deep, 0700);
    deepen(deep, 508);
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", deep); /* 512 bytes */
    wc.dir = wal_dir;
    CHECK_EQ(rabia_wal_open(&wl, &wc, NULL, NULL, &wi, err, sizeof err), -ENAMETOOLONG);
    CHECK(wl == NULL);
    CHECK(strstr(err, "path is too long") != NULL);
    CHECK_EQ(count_segments(deep), 0); /* nothing in the data dir itself */
    rabia_wal_close(wl);
    fresh(deep, 300, "longwal2");
    mkdir(deep, 0700);
    deepen(deep, 507);
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", deep); /* 511 bytes: fits */
    CHECK_EQ(rabia_wal_open(&wl, &wc, NULL, NULL, &wi, err, sizeof err), 0);
    rabia_wal_close(wl);
    CHECK(count_segments(wal_dir) >= 1);
}

int main(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/rabia-test-wal.%d", t && *t ? t : "/var/tmp", (int)getpid());
    mkdir(root, 0700);
    RUN(test_roundtrip_and_rollover);
    RUN(test_large_group_split);
    RUN(test_read_back);
    RUN(test_cursor_marks);
    RUN(test_torn_tail);
    RUN(test_torn_at_segment_start);
    RUN(test_corruption_in_the_middle);
    RUN(test_missing_middle_segment);
    RUN(test_remove_keeps_first_segment);
    RUN(test_torn_tail_and_garbage_ahead);
    RUN(test_torn_first_block);
    RUN(test_damage_before_a_torn_write);
    RUN(test_dir_lock);
    RUN(test_peers_seen);
    RUN(test_cluster_id_file);
    RUN(test_wrong_replica);
    RUN(test_recovery_mark);
    RUN(test_format_versions);
    RUN(test_block_size_changed);
    RUN(test_segment_size_lowered);
#if defined(__x86_64__)
    RUN(test_xxh3_dispatch);
#endif
    RUN(test_snapfile);
    RUN(test_snapfile_unreadable);
    RUN(test_snapfile_writeback_error);
    RUN(test_snapfile_backup);
    RUN(test_snapfile_commit_checks_state);
    RUN(test_snapfile_long_paths);
    RUN(test_wal_long_path);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd)) return 1;
    return CHECK_DONE();
}
