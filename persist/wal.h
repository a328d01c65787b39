/* The write-ahead log: segment files written with O_DIRECT in group
 * commits, scanned and repaired at start (see wal.c for the format).
 *
 * The log does no I/O on the write path itself: rabia_wal_seal hands the
 * caller one aligned write (fd, buffer, length, offset, flags) and the
 * caller submits it (rabiad: io_uring WRITE with RWF_DSYNC; tests: pwritev2)
 * and reports the result with rabia_wal_written. Exactly one write is in
 * flight at a time; records appended meanwhile form the next group. Segment
 * files are created and zero-filled ahead of need by a background thread
 * (writes into never-written extents cost about 3x: shared/design/MACHINE.md),
 * which is also where a full disk shows first (rabia_wal_disk_error).
 *
 * Not thread-safe: one thread appends, seals and completes. */
#ifndef RABIA_PERSIST_WAL_H
#define RABIA_PERSIST_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rabia/types.h"
#include "datadir.h"

enum rabia_wal_rec {
    RABIA_WAL_SENT = 1,    /* a consensus message this replica sent (PROPOSAL, STATE, VOTE) */
    RABIA_WAL_BATCH = 2,   /* a batch this replica proxies (BATCH frame with body) */
    RABIA_WAL_DECIDED = 3, /* a decided slot in apply order (DECISION frame with body) */
    RABIA_WAL_RESERVE = 4, /* own batch sequence numbers reserved up to `slot` (replica/node.c) */
    RABIA_WAL_DECIDED_REF = 5, /* a decided slot whose body an earlier record of this log holds
                                  (DECISION frame without body; replica/node.c) */
};

struct rabia_wal_config {
    const char *dir;            /* the log's folder (created if missing) */
    uint64_t segment_bytes;     /* size of one segment file */
    uint64_t cluster_id;        /* written into every segment header, checked on open */
    uint8_t replica;            /* 0-based id, the same */
    uint64_t batch_incarnation; /* for a new log; an existing log keeps its own */
    bool allow_buffered;        /* development only: accept a filesystem without O_DIRECT */
    bool no_sync;               /* development only: no RWF_DSYNC (not durable) */
    bool recovering;            /* a new log begins a recovery from the peers (core.h rule 2):
                                   its first segment's header says so, durably, before any record */
};

/* What the scan at open found, for logs and tests. */
struct rabia_wal_info {
    bool existed;               /* a log was there (a restart with its log) */
    bool began_recovering;      /* its first segment was created by a recovery (config.recovering) */
    uint64_t batch_incarnation; /* the log's batch id namespace */
    uint64_t records, groups, segments;
    uint64_t torn_bytes;        /* zeroed after the last complete group (a torn last write) */
    uint32_t block;             /* O_DIRECT alignment in use */
    bool direct;                /* O_DIRECT in use */
    uint64_t next_lsn;
};

/* Called for every record found, in log order. Return 0 to go on, or a
 * negative error to stop the open (err filled by the callee). */
typedef int (*rabia_wal_record_fn)(void *ctx, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len,
                                   char *err, size_t errlen);

struct rabia_wal;

/* Opens (or creates) the log in cfg->dir: probes O_DIRECT and its
 * alignment, reads every segment, hands each record to fn, truncates a torn
 * last write and refuses a log damaged anywhere else (err names the file,
 * the offset and the fix). Starts the preallocation thread. */
int rabia_wal_open(struct rabia_wal **out, const struct rabia_wal_config *cfg, rabia_wal_record_fn fn, void *ctx,
                   struct rabia_wal_info *info, char *err, size_t errlen);
void rabia_wal_close(struct rabia_wal *w);
/* The write of the sealed group never completed (the caller's loop gave up
 * waiting for it: a disk that stopped answering). The kernel still holds
 * its buffer and reads it whenever the disk comes back, so the buffer is
 * left allocated for the life of the process instead of being freed by
 * rabia_wal_close: freed, its memory could be reused and the next bytes
 * written there would land in the log. Call before rabia_wal_close. */
void rabia_wal_abandon_flight(struct rabia_wal *w);
/* Remove a closed log's files, the newest segment first, and its folder:
 * a removal cut short leaves segments 1..j, never a log that lost its first
 * segment (the one that says the log began a recovery). It stops at the
 * first file it cannot remove. 0 or a negative errno. */
int rabia_wal_remove(const char *dir);
/* Does dir hold a log segment (a log this data dir kept)? false when it
 * cannot be read or holds none. */
bool rabia_wal_present(const char *dir);

/* Append one record to the group being formed. frame is an encoded
 * rabia_msg (core/codec.h). 0 or -ENOMEM. */
int rabia_wal_append(struct rabia_wal *w, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len);
/* Append m encoded (the common case). 0, -ENOMEM or a codec error. */
int rabia_wal_append_msg(struct rabia_wal *w, uint8_t type, uint64_t slot, const struct rabia_msg *m);

struct rabia_wal_write {
    int fd;
    const void *buf;
    uint32_t len;
    uint64_t off;
    int rw_flags;               /* RWF_DSYNC unless no_sync */
};
/* Records waiting for the next write. */
bool rabia_wal_pending(const struct rabia_wal *w);
bool rabia_wal_in_flight(const struct rabia_wal *w);
/* Seal the group being formed into the next write: 1 and *io filled, 0
 * when there is nothing to write or a write is in flight, -EAGAIN while
 * the next segment is not ready yet (the preallocator is behind, or the disk
 * is full: rabia_wal_disk_error), or another negative error. */
int rabia_wal_seal(struct rabia_wal *w, struct rabia_wal_write *io);
/* The write from rabia_wal_seal finished with res (bytes written or a
 * negative errno). 0 when the group is durable; otherwise a negative
 * error: the log cannot be trusted any more (the caller must stop). */
int rabia_wal_written(struct rabia_wal *w, int res);
/* Walk the records of the group just made durable (valid after
 * rabia_wal_written returned 0 and until the next rabia_wal_seal). */
typedef void (*rabia_wal_visit_fn)(void *ctx, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len);
void rabia_wal_visit_durable(struct rabia_wal *w, rabia_wal_visit_fn fn, void *ctx);

/* Reading the durable log back while it is written (a peer's catch-up:
 * replica/logcatch.c). A cursor names a segment and the offset of its next
 * group (0: its first). */
struct rabia_wal_cursor {
    uint64_t seg, off;
};
/* Position c to read the records of `slot` and after: about `back` bytes
 * of log before the first group that can hold slot's decision (found to a
 * sixteenth of a segment; the bodies its decided records name come before
 * them), or the first kept segment's start. false: no durable record
 * reaches `slot` yet. Whether the log still holds `slot` itself the reader
 * sees (the first decided record it finds is past it). */
bool rabia_wal_cursor_for(const struct rabia_wal *w, uint64_t slot, uint64_t back, struct rabia_wal_cursor *c);
/* back: from the start of the segment before the first that reaches
 * `slot` (the widest start short of the whole log; a read that found a
 * decision's body missing at a nearer start tries this one) */
#define RABIA_WAL_BACK_SEGMENT UINT64_MAX
/* Hand the durable records from c on to fn, in log order, group by group,
 * until about max_bytes were read (at least one group) or fn returns true,
 * and move c past the groups read whole; a released segment is skipped
 * for the next kept one. 1: more may follow, 2: fn stopped (c stays at the
 * start of that group: the next read sees it again), 0: at the end of what
 * is durable, < 0: a read failed or a durable group reads back damaged
 * (err names the file and offset). Buffered reads of one group at a time
 * (pread): the caller bounds the work per call with max_bytes. */
typedef bool (*rabia_wal_read_fn)(void *ctx, uint8_t type, uint64_t slot, const uint8_t *frame, uint32_t len);
int rabia_wal_read(struct rabia_wal *w, struct rabia_wal_cursor *c, uint64_t max_bytes, rabia_wal_read_fn fn,
                   void *ctx, char *err, size_t errlen);
/* Release every segment whose records all lie at or below slot `upto`
 * (a durable snapshot covers them) and that holds no BATCH or RESERVE
 * record with a sequence >= keep_batch_seq (an own batch still pending,
 * one a DECIDED_REF record of a later slot names, or the reservation that
 * covers the next one: node_keep_batch_seq). Returns how many segments
 * were released: they leave the log at once, and the preallocation
 * thread deletes their files, oldest first, before it creates the next
 * segment (an unlink of a 64 MiB file took 25-30 ms here: not on the
 * caller's loop); rabia_wal_close waits for those deletions. */
int rabia_wal_release(struct rabia_wal *w, uint64_t upto, uint64_t keep_batch_seq);

/* "" or the reason the log cannot grow (e.g. no space for the next
 * segment); cleared by itself once the preallocator succeeds again. */
const char *rabia_wal_disk_error(struct rabia_wal *w, char *buf, size_t len);
/* True while no write can proceed without a new segment that is missing. */
bool rabia_wal_stalled(const struct rabia_wal *w);

struct rabia_wal_stats {
    uint64_t groups, records, bytes, pad_bytes;
    uint64_t segments_created, segments_released, segment_waits;
    uint64_t bytes_on_disk;     /* segment files currently kept */
};
void rabia_wal_stats(const struct rabia_wal *w, struct rabia_wal_stats *out);


#endif
