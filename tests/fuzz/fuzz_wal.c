/* libFuzzer target: recovery of the write-ahead log (persist/wal.c,
 * rabia_wal_open) from damaged segment files. test_wal and
 * integration.wal_damage damage a log in chosen ways; this one in any.
 *
 * Once per process a log is written (about 1.5 MiB of groups of 1 to 8
 * records of 20 to 3,000 bytes, over two 1 MiB segments) and kept as
 * the pristine image, with where each group lies. Each input is a list of
 * damages to a copy: flip a byte, zero or fill a range, copy a block over
 * another (a misdirected write), truncate or delete a segment file. The
 * copy is opened, and checked:
 *
 *   - the open never crashes, never reads out of bounds (ASan), and a
 *     refusal says why;
 *   - what it hands back is the written records' prefix, in order, byte
 *     for byte: nothing altered, reordered or invented (from the first
 *     segment left when the first ones were deleted: that is what a
 *     release after a snapshot leaves);
 *   - nothing intact is dropped silently: every group the open left out
 *     was itself damaged (a torn last write may be cut; an intact group
 *     after a damaged one must make the open refuse, wal.c "Recovery");
 *   - recovery converges: a second open finds the same records and no
 *     torn bytes left.
 *
 * FUZZ_WAL_TRACE=1 prints each damage as it is applied (for a crash-*
 * input). The files live under TMPDIR (or /dev/shm, or /tmp), opened buffered (the
 * development flag allow_buffered): O_DIRECT changes how bytes reach the
 * file, not how the scan reads them. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "codec.h"
#include "wal.h"

#define FUZZ_NAME "fuzz_wal"
#include "fuzz.h"

#define SEG (1u << 20)
#define MAX_SEGS 8
#define LOG_BYTES (3u << 19) /* 1.5 MiB of records: two segments and the one made ahead */

struct rec {
    uint8_t type;
    uint64_t slot;
    uint32_t len;
    uint8_t *frame;
};
struct group {
    uint64_t seg, off, bytes; /* header and records, without the padding */
    uint64_t first;           /* index of its first record in recs */
    uint32_t count;
};
/* One segment file: its bytes (size of them; absent when deleted). */
struct file {
    uint64_t no;
    bool present;
    uint64_t size;
    uint8_t *b;
};

static char base[200], tmpl_dir[260], work_dir[260];
static struct rec *recs;
static uint64_t nrecs;
static struct group *groups;
static uint32_t ngroups;
static struct file pristine[MAX_SEGS], cur[MAX_SEGS];
static bool trace; /* FUZZ_WAL_TRACE, read once */
static uint32_t nfiles;

static struct rabia_wal_config config(const char *dir)
{
    return (struct rabia_wal_config){.dir = dir, .segment_bytes = SEG, .cluster_id = 42, .replica = 1,
                                     .batch_incarnation = 7, .allow_buffered = true, .no_sync = true};
}

static int drop_record(void *ctx, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len, char *err,
                       size_t errlen)
{
    (void)ctx, (void)type, (void)slot, (void)frame, (void)len, (void)err, (void)errlen;
    return 0;
}

/* The segment number of the file behind fd (its name). */
static uint64_t seg_of_fd(int fd)
{
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        FAIL("readlink %s: %s", link, strerror(errno));
    path[n] = 0;
    const char *slash = strrchr(path, '/');
    return strtoull(slash ? slash + 1 : path, NULL, 10);
}

static void read_whole(const char *path, struct file *f)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st))
        FAIL("%s: %s", path, strerror(errno));
    f->size = (uint64_t)st.st_size;
    f->b = malloc(f->size ? f->size : 1);
    if (!f->b || pread(fd, f->b, f->size, 0) != (ssize_t)f->size)
        FAIL("reading %s", path);
    f->present = true;
    close(fd);
}

static void remove_base(void);

/* Write the pristine log once: groups of 1-8 records, sizes from a fixed
 * generator, each group written with pwritev2 and completed. */
static void make_template(void)
{
    trace = getenv("FUZZ_WAL_TRACE") != NULL;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(base, sizeof base, "%s/fuzz_wal.XXXXXX", tmp);
    if (!mkdtemp(base))
        FAIL("mkdtemp %s: %s", base, strerror(errno));
    atexit(remove_base);
    snprintf(tmpl_dir, sizeof tmpl_dir, "%s/tmpl", base);
    snprintf(work_dir, sizeof work_dir, "%s/work", base);
    struct rabia_wal_config cfg = config(tmpl_dir);
    struct rabia_wal *w;
    struct rabia_wal_info info;
    char err[1024];
    if (rabia_wal_open(&w, &cfg, drop_record, NULL, &info, err, sizeof err))
        FAIL("creating the template log: %s", err);
    uint64_t x = 0x9E3779B97F4A7C15ull, total = 0, cap = 0, gcap = 0;
    uint8_t *body = malloc(3000);
    while (total < LOG_BYTES) {
        uint32_t per = 1 + (uint32_t)((x >> 7) % 8);
        for (uint32_t i = 0; i < per; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t blen = 20 + (uint32_t)((x >> 33) % 2981);
            for (uint32_t k = 0; k < blen; k++)
                body[k] = (uint8_t)(x >> (k % 56));
            struct rabia_msg m = {.type = RABIA_MSG_BATCH, .from = 1, .has_id = 1,
                                  .id = {.proxy = 1, .incarnation = 7, .seq = nrecs + 1}, .body = body,
                                  .body_len = blen};
            size_t need = rabia_msg_encoded_size(&m);
            uint8_t *frame = malloc(need);
            int flen = frame ? rabia_msg_encode_unsummed(&m, frame, need) : -ENOMEM;
            if (flen <= 0)
                FAIL("encoding a record: %d", flen);
            if (rabia_wal_append(w, RABIA_WAL_BATCH, nrecs + 1, frame, (uint32_t)flen))
                FAIL("append");
            if (nrecs == cap) {
                cap = cap ? 2 * cap : 1024;
                recs = realloc(recs, cap * sizeof *recs);
                if (!recs)
                    FAIL("out of memory");
            }
            recs[nrecs] = (struct rec){.type = RABIA_WAL_BATCH, .slot = nrecs + 1, .len = (uint32_t)flen, .frame = frame};
            nrecs++;
            total += (uint64_t)flen;
        }
        /* seal and write; a seal may split what was appended into several writes */
        while (rabia_wal_pending(w)) {
            struct rabia_wal_write io;
            int rc, tries = 0;
            while ((rc = rabia_wal_seal(w, &io)) == -EAGAIN && tries++ < 5000)
                usleep(1000);
            if (rc != 1)
                FAIL("seal: %d", rc);
            const uint8_t *h = io.buf;
            uint32_t count;
            uint64_t lsn, bytes;
            memcpy(&count, h + 4, 4);
            memcpy(&lsn, h + 8, 8);
            memcpy(&bytes, h + 16, 8);
            if (ngroups == gcap) {
                gcap = gcap ? 2 * gcap : 256;
                groups = realloc(groups, gcap * sizeof *groups);
                if (!groups)
                    FAIL("out of memory");
            }
            groups[ngroups++] = (struct group){.seg = seg_of_fd(io.fd), .off = io.off, .bytes = bytes,
                                               .first = lsn - 1, .count = count};
            struct iovec v = {.iov_base = (void *)io.buf, .iov_len = io.len};
            ssize_t k = pwritev2(io.fd, &v, 1, (off_t)io.off, io.rw_flags);
            if (rabia_wal_written(w, (int)k))
                FAIL("write");
        }
    }
    free(body);
    rabia_wal_close(w);
    /* the files as they are now: every segment, the one made ahead included */
    DIR *d = opendir(tmpl_dir);
    if (!d)
        FAIL("opendir");
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l <= 4 || strcmp(e->d_name + l - 4, ".seg"))
            continue;
        if (nfiles == MAX_SEGS)
            FAIL("more than %d segments", MAX_SEGS);
        char path[600];
        snprintf(path, sizeof path, "%s/%s", tmpl_dir, e->d_name);
        pristine[nfiles].no = strtoull(e->d_name, NULL, 10);
        read_whole(path, &pristine[nfiles++]);
    }
    closedir(d);
    for (uint32_t i = 0; i < nfiles; i++)
        cur[i].b = malloc(SEG);
    uint64_t last = groups[ngroups - 1].first + groups[ngroups - 1].count;
    if (last != nrecs || groups[0].first != 0)
        FAIL("the groups cover records %" PRIu64 "..%" PRIu64 " of %" PRIu64, groups[0].first, last, nrecs);
}

static struct file *file_no(struct file *fs, uint64_t no)
{
    for (uint32_t i = 0; i < nfiles; i++)
        if (fs[i].no == no)
            return &fs[i];
    return NULL;
}

/* Whether any byte of group g differs from the pristine log. */
static bool damaged(const struct group *g)
{
    const struct file *p = file_no(pristine, g->seg), *c = file_no(cur, g->seg);
    if (!p || !c)
        FAIL("segment %" PRIu64 " of a group is not in the template", g->seg);
    if (!c->present || c->size < g->off + g->bytes)
        return true;
    return memcmp(p->b + g->off, c->b + g->off, g->bytes) != 0;
}

/* What an open handed back, checked against recs as it goes. */
struct seen {
    uint64_t base; /* the first record expected (segments deleted from the front: released) */
    uint64_t n;
    bool wrong;
    char why[200];
};

static int check_record(void *ctx, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len, char *err,
                        size_t errlen)
{
    (void)err, (void)errlen;
    struct seen *s = ctx;
    if (!s->wrong) {
        uint64_t k = s->base + s->n;
        const struct rec *r = k < nrecs ? &recs[k] : NULL;
        if (!r)
            snprintf(s->why, sizeof s->why, "record %" PRIu64 " was never written", k);
        else if (r->type != type || r->slot != slot || r->len != len || memcmp(r->frame, frame, len))
            snprintf(s->why, sizeof s->why, "record %" PRIu64 " differs from the one written (slot %" PRIu64
                     ", %u bytes; written: slot %" PRIu64 ", %u bytes)", k, slot, len, r->slot, r->len);
        s->wrong = !r || s->why[0];
    }
    s->n++;
    return 0;
}

/* Delete the files in dir (the log keeps no subfolders). */
static void empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path))
            FAIL("unlink %s: %s", path, strerror(errno));
    }
    closedir(d);
}

static void remove_base(void)
{
    empty_dir(tmpl_dir);
    empty_dir(work_dir);
    rmdir(tmpl_dir);
    rmdir(work_dir);
    rmdir(base);
}

static void write_work(void)
{
    empty_dir(work_dir); /* a shell's rm -rf per input made this 16 runs/s */
    if (mkdir(work_dir, 0750) && errno != EEXIST)
        FAIL("mkdir %s: %s", work_dir, strerror(errno));
    for (uint32_t i = 0; i < nfiles; i++) {
        if (!cur[i].present)
            continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%020" PRIu64 ".seg", work_dir, cur[i].no);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
        if (fd < 0 || (cur[i].size && pwrite(fd, cur[i].b, cur[i].size, 0) != (ssize_t)cur[i].size))
            FAIL("writing %s", path);
        close(fd);
    }
}

/* Damages, 8 bytes each: kind, file, offset (3 bytes, within the file),
 * then kind-specific bytes. */
static void apply(const uint8_t *d, size_t n)
{
    for (size_t at = 0; at + 8 <= n; at += 8) {
        const uint8_t *op = d + at;
        struct file *f = &cur[op[1] % nfiles];
        uint64_t off = ((uint64_t)op[2] | (uint64_t)op[3] << 8 | (uint64_t)op[4] << 16) % SEG;
        /* most damage lands where the groups are: aim at one (op[5]) when op[0] says so */
        if (op[0] & 0x80) {
            const struct group *g = &groups[op[5] % ngroups];
            f = file_no(cur, g->seg);
            off = g->off + (g->bytes ? off % g->bytes : 0);
        }
        if (!f->present)
            continue;
        uint32_t len = 1 + (uint32_t)op[6] * 32;
        if (trace)
            fprintf(stderr, "damage %d to segment %" PRIu64 " (%" PRIu64 " bytes) at %" PRIu64 ", len %u, arg %u, %u\n",
                    op[0] & 7, f->no, f->size, off, len, op[5], op[7]);
        switch (op[0] & 7) {
        case 0: /* a flipped byte */
            if (off < f->size)
                f->b[off] ^= op[7] ? op[7] : 1;
            break;
        case 1: /* a range zeroed (an unwritten block) */
        case 2: /* a range of garbage */
            for (uint64_t i = off; i < off + len && i < f->size; i++)
                f->b[i] = (op[0] & 7) == 1 ? 0 : (uint8_t)(op[7] + i * 131);
            break;
        case 3: { /* a 4096-byte block written at another block's place */
            const struct file *src = &cur[op[7] % nfiles];
            uint64_t from = ((uint64_t)op[5] << 12) % SEG, to = off & ~4095ull;
            if (src->present && from + 4096 <= src->size && to + 4096 <= f->size)
                memmove(f->b + to, src->b + from, 4096);
            break;
        }
        case 4: /* truncated */
            if (off < f->size)
                f->size = off;
            break;
        case 5: /* deleted */
            if (op[7] == 0xD5)
                f->present = false;
            break;
        default: /* the same byte as the pristine log (no damage): a no-op the mutator can use */
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ngroups)
        make_template();
    for (uint32_t i = 0; i < nfiles; i++) {
        cur[i].no = pristine[i].no;
        cur[i].present = true;
        cur[i].size = pristine[i].size;
        memcpy(cur[i].b, pristine[i].b, pristine[i].size);
    }
    apply(data, size > 8 * 64 ? 8 * 64 : size);
    write_work();

    /* Segments deleted from the front look like segments released after a
     * snapshot: the log then begins at the first one left */
    uint64_t first_no = UINT64_MAX, base_rec = 0;
    bool front_gone = false;
    for (uint32_t i = 0; i < nfiles; i++)
        if (cur[i].present && cur[i].no < first_no)
            first_no = cur[i].no;
    for (uint32_t i = 0; i < nfiles; i++)
        front_gone |= !cur[i].present && cur[i].no < first_no;
    if (front_gone) {
        base_rec = nrecs;
        for (uint32_t g = 0; g < ngroups; g++)
            if (groups[g].seg >= first_no) {
                base_rec = groups[g].first;
                break;
            }
    }
    struct rabia_wal_config cfg = config(work_dir);
    struct rabia_wal *w = NULL;
    struct rabia_wal_info info;
    struct seen s = {.base = base_rec};
    char err[1024] = "";
    int rc = rabia_wal_open(&w, &cfg, check_record, &s, &info, err, sizeof err);
    if (s.wrong)
        FAIL("%s (open returned %d: %s)", s.why, rc, err);
    if (rc) {
        if (w || !err[0])
            FAIL("a refusal (%d) without a reason, or with a log", rc);
        return 0;
    }
    /* nothing intact left out: the groups not handed back were damaged */
    for (uint32_t g = 0; g < ngroups; g++)
        if (groups[g].first + groups[g].count > base_rec + s.n && !damaged(&groups[g]))
            FAIL("group %u (segment %" PRIu64 " offset %" PRIu64 ", records %" PRIu64 "..) is intact but was "
                 "left out: the open kept %" PRIu64 " of %" PRIu64 " records, torn bytes %" PRIu64, g, groups[g].seg,
                 groups[g].off, groups[g].first, s.n, nrecs, info.torn_bytes);
    uint64_t kept = s.n;
    rabia_wal_close(w);
    /* recovery converges: the same records again, nothing left to cut */
    s = (struct seen){.base = base_rec};
    rc = rabia_wal_open(&w, &cfg, check_record, &s, &info, err, sizeof err);
    if (rc || s.wrong || s.n != kept || info.torn_bytes)
        FAIL("the second open: %d (%s), %" PRIu64 " records of %" PRIu64 " the first kept, torn bytes %" PRIu64
             " %s", rc, err, s.n, kept, info.torn_bytes, s.why);
    rabia_wal_close(w);
    return 0;
}
