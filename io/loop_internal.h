/* io/loop_internal.h: the loop's structures, shared by loop.c and
 * threads.c (io-threads: client connections served by other threads' loops,
 * seen by this loop as "remote" connections). Not part of the API. */
#ifndef RABIA_IO_LOOP_INTERNAL_H
#define RABIA_IO_LOOP_INTERNAL_H

#include "loop.h"
#include "tls.h"

#include <liburing.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- sizes: every queue and buffer has a bound ---- */

/* SQ: one SQE per connection per iteration is the common case; when it fills
 * we submit early (loop_sqe), so this bounds batching, not connections. */
#define RIO_SQ_ENTRIES 512u
/* CQ: multishot ops post many CQEs per SQE; a large CQ avoids the kernel's
 * overflow list (which costs and, before 5.19, could block submission). */
#define RIO_CQ_ENTRIES 8192u
/* Provided buffers shared by every connection of the loop (4 MiB in all).
 * Each recv completion takes one whole buffer, and we give it back as soon as
 * on_data has seen it (or its tail was copied), so the ring runs dry only
 * when more than 256 completions wait to be reaped at once; the recv then
 * ends with -ENOBUFS and is re-armed: one extra SQE, no data lost (it stays
 * in the socket). 16 KiB is about what loopback TCP hands over per wake-up;
 * small messages waste buffer space only until the buffer is returned. */
#define RIO_BUF_COUNT 256u
#define RIO_BUF_SIZE (16u * 1024u)
#define RIO_BGID 1 /* buffer group ids are per ring, so one fixed id suffices */
#define RIO_IN_MAX_DEFAULT ((size_t)64 << 20)
#define RIO_OUT_MAX_DEFAULT ((size_t)64 << 20)
/* A connection's buffer above this size is freed when it empties, so one
 * burst does not pin memory forever; below it, capacity is kept so steady
 * traffic never allocates. */
#define RIO_KEEP_BYTES ((size_t)1 << 20)
/* cqe->res is an int: never offer more than this to one send. */
#define RIO_SEND_MAX ((size_t)1 << 30)
/* rio_send_shared: shorter frames are copied (an iovec entry and the
 * reference counting cost more than copying them), and at most this many
 * shared ranges wait in q and in tx each (more are copied) */
#define RIO_SHARE_MIN ((size_t)1024)
#define RIO_SHARE_SEGS 16u
/* rio_conn_set_recv_direct: a recv is posted into the input buffer when it
 * has at least RIO_DIRECT_MIN bytes free, else it first makes room for
 * RIO_DIRECT_ROOM (compacting or growing). The first recv of a connection
 * gets RIO_BUF_SIZE only: a peer link's first message is its HELLO, and a
 * connection that never says anything (anyone may open one to the peer
 * port) then holds 16 KiB, not 256. A recv asks for at most RIO_RECV_MAX
 * (its length is 32 bits in the SQE). */
#define RIO_DIRECT_MIN ((size_t)64 << 10)
#define RIO_DIRECT_ROOM ((size_t)256 << 10)
#define RIO_RECV_MAX ((size_t)1 << 30)

/* A shared range placed in the byte stream just before byte `at` of q (or tx). */
struct rio_seg {
    size_t at;
    const uint8_t *p;
    size_t len;
    const struct rio_shared *sh;
    void *buf;
};
/* Consecutive transient send failures (ENOBUFS/ENOMEM from the network stack)
 * before we give up on a connection instead of spinning. */
#define RIO_SEND_RETRY_MAX 64
/* Accept failures that are about resources (EMFILE...) are retried after a
 * pause, not at once: re-arming immediately would spin on the same error. */
#define RIO_ACCEPT_RETRY_NS 100000000LL

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Each in-flight SQE carries the address of a struct rio_op embedded in its
 * owner (TigerBeetle's caller-owned completions): no allocation per I/O, and
 * the kind says which owner field it is. Owners are freed only when none of
 * their ops (cancels included) is in flight, so a CQE never points at freed
 * or reused memory. */
enum op_kind {
    OP_RECV = 1,
    OP_SEND,
    OP_CONNECT,
    OP_CANCEL,   /* a cancel SQE aimed at one of the conn's ops */
    OP_ACCEPT,
    OP_RETRY,    /* a listener's accept-retry timeout */
    OP_LCANCEL,  /* a cancel SQE aimed at one of the listener's ops */
    OP_WAKE,     /* multishot poll on the wake eventfd */
    OP_WCANCEL,  /* cancel of the wake poll (destroy) */
    OP_FWRITE,   /* a file write (rio_write): the write-ahead log */
    OP_DPOLL,    /* poll on the file-write ring's fd (l->dring): a write finished */
};
struct rio_op {
    uint8_t kind;
};

enum conn_state {
    C_CONNECTING, /* connect SQE queued or in flight */
    C_OPEN,
    C_CLOSING,    /* close requested; terminal callback pending (close queue) */
    C_DEAD,       /* terminal callback done; waiting for ops to drain */
};

struct rio_conn {
    struct rio_loop *loop;
    int fd;
    enum conn_state state;
    int close_err;
    bool was_open;         /* connected or accepted: no on_connect(err) owed */
    bool silent;           /* rejected by on_accept: no terminal callback */
    bool close_after_send;
    bool peer_eof;         /* the peer sent EOF and on_eof kept the conn: no recv is armed again */
    bool on_dirty, on_closeq;
    /* ops in flight; the conn lives while any is set or cancels > 0 */
    bool recv_armed, send_inflight, connect_inflight, connect_done;
    bool recv_cancelled, send_cancelled, connect_cancelled;
    bool recv_direct;      /* one-shot recvs straight into `in` (rio_conn_set_recv_direct), no multishot */
    bool delivering;       /* on_data is reading `in` (in_deliver): no direct recv may be posted */
    unsigned cancels;
    int send_retries;
    struct rio_op op_recv, op_send, op_connect, op_cancel;
    struct rio_conn *dirty_next, *closeq_next;
    struct rio_conn *prev, *next; /* every conn of the loop */
    void *user;
    /* input: bytes on_data left unconsumed, at in[in_off, in_off + in_len) */
    uint8_t *in;
    size_t in_off, in_len, in_cap, in_max;
    /* output: tx is what the in-flight send reads (stable while in flight),
     * q collects everything queued meanwhile; they swap when tx empties */
    uint8_t *tx, *q;
    size_t tx_off, tx_len, tx_cap, q_len, q_cap, out_max;
    /* shared ranges (rio_send_shared) interleaved with q's and tx's bytes:
     * tx_off counts the whole stream (tx_len + ts_bytes); a send with any
     * goes out by sendmsg over `iov` (stable while in flight). The arrays
     * are allocated on the first shared send (peer links only). */
    struct rio_seg *qs, *ts;
    uint32_t n_qs, n_ts;
    size_t qs_bytes, ts_bytes;
    struct iovec *iov;
    struct msghdr msg;
    struct sockaddr_storage addr; /* connect target; kept for the SQE and rio_conn_peer */
    socklen_t addr_len;
    /* TLS (rio_conn_start_tls), NULL for plain TCP. rio_send copies
     * plaintext into pt; reconcile encrypts all of it just before a send
     * starts (per send, not per message: records of up to 16 KiB, as
     * coalesced as the plain path), and the ciphertext joins q. Received
     * ciphertext goes through tls and the plaintext into the usual input
     * path (on_data, in_max). */
    struct rio_tls_conn *tls;
    int fail_after_send;   /* a TLS failure: its alert leaves first, then this close error */
    bool tls_fed;          /* the engine has seen ciphertext (an EOF before any is a probe, not a failure) */
    uint8_t *pt;
    size_t pt_len, pt_cap;
    /* io-threads (threads.c): a client connection whose socket belongs to
     * an I/O thread's loop. No SQE is ever issued for it here: input arrives
     * as messages, and a send hands tx to the thread (send_inflight until it
     * says SENT). NULL for the loop's own connections. */
    struct rio_iothread *remote;
    uint32_t rslot, rgen;  /* the thread's connection slot and generation */
    struct sockaddr_storage rlocal; /* the socket's own address, read by the thread (rio_conn_local) */
    socklen_t rlocal_len;
    bool rclose_sent;      /* the thread was told to close it */
};

struct rio_listener {
    struct rio_loop *loop;
    int fd;
    uint16_t port;
    void *user;
    bool closing, on_dirty;
    bool accept_armed, retry_armed, want_retry;
    bool accept_cancelled, retry_cancelled;
    unsigned cancels;
    struct rio_op op_accept, op_retry, op_cancel;
    struct __kernel_timespec retry_ts;
    bool threaded;         /* accepted by the I/O threads, not by this loop */
    struct rio_listener *prev, *next, *dirty_next;
};

#define RIO_FWRITES 4 /* file writes in flight at once */
struct rio_fwrite {
    struct rio_op op;
    bool busy;
    rio_write_fn done;
    void *ctx;
};

struct rio_loop {
    struct io_uring ring;
    struct rio_fwrite fw[RIO_FWRITES];
    unsigned fw_busy;
    /* File writes go to a ring of their own, created at the first write,
     * so that rio_run_once_file_first can sleep until a write finishes
     * without waking for each network completion; a poll on its fd from
     * the main ring (op_dpoll) wakes the ordinary waits. Without it (its
     * creation failed) writes go to the main ring as before. */
    struct io_uring dring;
    bool dring_ok, dring_tried;
    bool dpoll_armed;
    bool file_wait_spent; /* a sleep through the writes in flight reached its cap: not again until one ends */
    struct rio_op op_dpoll;
    struct rio_handlers h;
    void *ctx;
    /* provided buffers */
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    uint8_t *bufs;
    bool br_registered;
    /* wake */
    int wake_fd;
    _Atomic int wake_pending; /* rio_loop_wake since the last drain: a sleep for several must not begin */
    /* RABIA_IO_WAIT=eventfd: the loop sleeps in ppoll on this eventfd,
     * registered with the ring (the kernel signals it for every completion
     * and deferred task work), instead of in io_uring_enter; -1 otherwise.
     * For valgrind, which holds its scheduler lock across io_uring_enter
     * (io/README.md "I/O threads"). */
    int evwait_fd;
    bool wake_armed, wake_cancelled;
    unsigned wake_cancels;
    struct rio_op op_wake, op_wcancel;
    /* objects */
    struct rio_conn *conns;
    struct rio_listener *listeners;
    struct rio_conn *dirty_head, *dirty_tail;
    struct rio_conn *closeq_head, *closeq_tail;
    struct rio_listener *ldirty;
    size_t in_max, out_max;
    bool destroying;
    bool in_run;     /* inside rio_run_once: callbacks must not re-enter it */
    bool sq_stalled; /* loop_sqe failed this iteration: retry next one */
    unsigned deferred_calls; /* terminal callbacks run by loop_post */
    struct rio_stats st;
    char desc[192];
    uint8_t tls_buf[16384]; /* plaintext of one TLS record on its way to on_data */
    /* io-threads (threads.c) */
    struct rio_iothread **thr;
    unsigned n_thr;
    _Atomic int sleeping;   /* waiting in the kernel: a thread that queues a message wakes it */
    bool thr_stalled;       /* a message to a thread did not fit: retry soon */
};


/* loop.c's internals that threads.c drives for remote connections */
struct rio_conn *rio_conn_new_internal(struct rio_loop *l, int fd, enum conn_state st);
void rio_conn_fail_internal(struct rio_conn *c, int err);
void rio_conn_dirty_internal(struct rio_conn *c);
void rio_conn_input_internal(struct rio_conn *c, const uint8_t *p, size_t n);
void rio_conn_eof_internal(struct rio_conn *c);
void rio_conn_next_send_internal(struct rio_conn *c);
void rio_conn_sent_all_internal(struct rio_conn *c);
int rio_listen_socket_internal(const char *host, uint16_t port, int *fd_out, uint16_t *port_out);
int rio_listener_adopt_internal(struct rio_loop *l, int fd, uint16_t port, void *user, bool threaded,
                                struct rio_listener **out);

/* threads.c, called by loop.c */
unsigned rio_threads_drain(struct rio_loop *l);          /* messages from the threads: callbacks run */
bool rio_threads_pending(struct rio_loop *l);            /* anything waiting from a thread */
void rio_threads_wake(struct rio_loop *l);               /* wake threads that have new work */
bool rio_threads_reconcile(struct rio_conn *c);          /* a remote conn's sends and close; false: ring full, retry */
void rio_threads_stop(struct rio_loop *l);               /* join the threads (rio_loop_destroy) */
void rio_threads_free(struct rio_loop *l);               /* their memory, once no conn refers to them */

#endif
