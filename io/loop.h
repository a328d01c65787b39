/* io/loop.h: a single-threaded io_uring event loop for TCP: accept, connect, recv, coalesced sends. */
#ifndef RABIA_IO_LOOP_H
#define RABIA_IO_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * One loop per thread. Create, run and destroy a loop on the same thread: the
 * ring is set up with IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN, so only the
 * creating thread may submit or reap (another thread may only rio_loop_wake).
 *
 * Callbacks run only inside rio_run_once (and rio_loop_destroy), never
 * re-entrantly from rio_send, rio_close, rio_connect or rio_listen.
 *
 * Lifecycle: every connection kept by on_accept or made by rio_connect ends
 * with exactly one on_close, the one place to release per-connection state;
 * after it returns the conn pointer is invalid. A conn from rio_connect also
 * gets exactly one on_connect before that: err 0 when it connected, or a
 * negative errno when it did not (-ECONNREFUSED..., or -ECANCELED if
 * rio_close or rio_loop_destroy came first), in which case on_close follows
 * from the same iteration. A conn rejected by on_accept (< 0) gets no
 * callback at all.
 */
struct rio_loop;
struct rio_conn;
struct rio_listener;

struct rio_handlers {
    /* A listener accepted a connection; return 0 to keep it (set user data with
     * rio_conn_set_user; rio_send may be used here), < 0 to close it. NULL keeps. */
    int (*on_accept)(void *ctx, struct rio_listener *l, struct rio_conn *c);
    /* Bytes arrived. Return how many were consumed (the callee frames messages
     * itself). The loop calls again with the rest while the callee consumes
     * something; the unconsumed tail is kept and presented again, prefixed to
     * the next data, up to the connection's input limit (if a peer exceeds it
     * without the callee consuming, the connection is closed with -EMSGSIZE).
     * p is only valid during the call. After rio_close or rio_close_after_send
     * on this conn, no more data is presented. NULL consumes everything. */
    size_t (*on_data)(void *ctx, struct rio_conn *c, const uint8_t *p, size_t len);
    /* An outgoing connection connected (err 0) or failed (negative errno; the
     * conn is closed: on_close(c, err) follows, then it is freed). */
    void (*on_connect)(void *ctx, struct rio_conn *c, int err);
    /* The connection is closed: peer EOF = 0, closed locally (rio_close,
     * rio_close_after_send) = 0, or a negative errno (-ECONNRESET, -EPIPE,
     * -EMSGSIZE for the input limit, the connect error after a failed
     * on_connect, -ECANCELED from rio_loop_destroy...). Called exactly once,
     * never re-entrantly; the conn is freed after return. */
    void (*on_close)(void *ctx, struct rio_conn *c, int err);
    /* The peer shut its sending side (EOF: shutdown(SHUT_WR), or a close
     * whose FIN arrived first); no more data will come, and everything it
     * sent was presented already. Return true to keep the connection for
     * sending, to be ended later with rio_close or rio_close_after_send
     * (or already ended inside this call): a Redis client that sends its
     * commands and then shuts down writing still gets every reply. false,
     * or NULL, closes it now as any EOF (on_close(0) follows). */
    bool (*on_eof)(void *ctx, struct rio_conn *c);
};

/* Creates the ring (falling back from SINGLE_ISSUER|DEFER_TASKRUN only if the
 * kernel refuses them, logged on stderr), checks every opcode used, registers
 * the provided buffer ring and runs a multishot-recv self test. On failure
 * returns a negative errno and fills err with the cause and the fix. */
int rio_loop_create(struct rio_loop **out, const struct rio_handlers *h, void *ctx,
                    char *err, size_t errlen);
/* Closes every listener and connection (on_close(-ECANCELED) for each live
 * connection, after on_connect(-ECANCELED) if it was still connecting; call it
 * on the loop's thread, not from a callback), waits (bounded, 1 s) for
 * the kernel to finish with their buffers, and frees everything. NULL is a no-op. */
void rio_loop_destroy(struct rio_loop *l);
/* How long rio_loop_destroy waits for the operations in flight to end (the
 * kernel to be done with their buffers) before it tears the ring down; a
 * file write still in flight then goes on in the kernel, and its buffer
 * must outlive it (replica/durable.c, durable_close). */
#define RIO_DESTROY_WAIT_US 1000000u
/* One line naming the ring setup in use, for logs. */
const char *rio_loop_describe(const struct rio_loop *l);

/* Default limits for connections created afterwards (0 leaves one unchanged).
 * Defaults: input 64 MiB, output 64 MiB. */
void rio_loop_set_limits(struct rio_loop *l, size_t in_max, size_t out_max);

/* Listen on host:port (host NULL, "" or "*" = any IPv4 address; numeric IPv4
 * or IPv6, or a name resolved synchronously). SO_REUSEADDR, multishot accept.
 * Port 0 picks a free port (see rio_listener_port). Returns 0 or a negative
 * errno (-EADDRINUSE, -EACCES, -EADDRNOTAVAIL for an unresolvable name...). */
int rio_listen(struct rio_loop *l, const char *host, uint16_t port, void *user,
               struct rio_listener **out);
void *rio_listener_user(struct rio_listener *l);
uint16_t rio_listener_port(const struct rio_listener *l);
/* Stop accepting and close the socket (freed once its operations complete). */
void rio_listener_close(struct rio_listener *l);

/* Start a connect through io_uring (IORING_OP_CONNECT); the result arrives in
 * on_connect. rio_send may queue data before the connection completes.
 * Returns 0 or a negative errno (bad address, socket() failure). */
int rio_connect(struct rio_loop *l, const char *host, uint16_t port, void *user,
                struct rio_conn **out);
/* rio_connect looks a host name up with getaddrinfo, which blocks (for the
 * resolver's whole timeout when DNS does not answer): a loop that must not
 * stall looks names up elsewhere (rio_resolve, on another thread) and
 * connects to the address (rio_connect_addr). */
bool rio_host_is_literal(const char *host); /* an IPv4 or IPv6 address, not a name */
/* Any thread: up to max addresses of host (a literal: itself; a name: what
 * getaddrinfo gives, in its order), the port set. The count (>= 1) or a
 * negative errno (-EAGAIN: no answer from DNS; -EADDRNOTAVAIL: no such
 * name or no address for it). */
int rio_resolve(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len, int max);
int rio_connect_addr(struct rio_loop *l, const struct sockaddr_storage *addr, socklen_t len, void *user,
                     struct rio_conn **out);

/* Copy len bytes into the connection's outgoing buffer. One send is in flight
 * per connection; everything queued meanwhile leaves in the next send, and
 * sends queued during an iteration leave together when the next rio_run_once
 * (or rio_flush) submits. Returns 0, -ENOBUFS if the queue would exceed the
 * output limit (nothing queued; the caller decides, e.g. close a slow client),
 * -ENOTCONN if the conn is closing, -ESHUTDOWN after rio_close_after_send,
 * -ENOMEM if the buffer cannot grow. */
int rio_send(struct rio_conn *c, const void *p, size_t len);
/* A reference-counted buffer rio_send_shared may send from without a copy:
 * the loop takes one reference per shared send (ref) and drops it (unref)
 * once the kernel has every byte of it or the connection is freed. Both
 * run on the loop's thread. The caller must not change the bytes while a
 * reference it did not take itself is held. */
struct rio_shared {
    void (*ref)(void *ctx, void *buf);
    void (*unref)(void *ctx, void *buf);
    void *ctx;
};
/* As rio_send, but the bytes [p, p + len) of the shared buffer buf are
 * sent from where they are (sendmsg with an iovec; the order with
 * rio_send's bytes kept). One frame sent to several peers is then written
 * once. A TLS or I/O-thread connection, a short frame (RIO_SHARE_MIN) or
 * a connection with RIO_SHARE_SEGS of them queued copies instead, as
 * rio_send: the result is the same bytes in the same order. */
int rio_send_shared(struct rio_conn *c, const struct rio_shared *sh, void *buf, const void *p, size_t len);
/* Receive straight into the connection's input buffer (one-shot
 * IORING_OP_RECVs into at least 64 KiB of free space) instead of the
 * multishot recv into the loop's 16 KiB provided buffers, from which a
 * message spanning several buffers is copied into the input buffer. For a
 * link that carries large frames (the replica's peer links): the kernel's
 * copy is the only one. Call it right after rio_connect or in on_accept,
 * before any input. 0, or -EOPNOTSUPP for a TLS or I/O-thread connection
 * (nothing changes). */
int rio_conn_set_recv_direct(struct rio_conn *c);
/* Bytes queued and not yet acknowledged by the kernel. */
size_t rio_conn_pending(const struct rio_conn *c);
/* Heap bytes the connection's buffers hold now (input, output, TLS
 * plaintext: their capacities, not their contents), for a budget across
 * connections such as rabiad's maxmemory-clients. O(1). */
size_t rio_conn_memory(const struct rio_conn *c);
/* A connection with nothing queued or in flight gives back what a burst
 * grew beyond keep bytes in each of its two output buffers (the queue and
 * the buffer being sent swap at every send, so a burst that left in several
 * sends grows both, and each is kept up to RIO_KEEP_BYTES for the next
 * burst): for an idle connection's budget (rabiad's maxmemory-clients
 * check). Nothing while output waits or is in flight. */
void rio_conn_trim_idle(struct rio_conn *c, size_t keep);
/* Close now; queued output is discarded. The terminal callback follows from
 * the loop, never inside this call. Idempotent. */
void rio_close(struct rio_conn *c);
/* Close once all queued output has been sent (e.g. after a QUIT reply); no
 * more input is presented. */
void rio_close_after_send(struct rio_conn *c);
void rio_conn_set_user(struct rio_conn *c, void *user);
void *rio_conn_user(const struct rio_conn *c);
/* Per-connection limits (0 leaves one unchanged). */
void rio_conn_set_limits(struct rio_conn *c, size_t in_max, size_t out_max);
/* "ip:port" ("[ip6]:port"); 0 or a negative errno (-ENOSPC if buf is short). */
int rio_conn_peer(const struct rio_conn *c, char *buf, size_t len);
/* The connection's own address (getsockname: the listener's address for an
 * accepted one; an I/O thread's connection: what its thread read at
 * accept), "ip:port"; 0 or a negative errno. A system call: call it once
 * per connection, not per request. */
int rio_conn_local(const struct rio_conn *c, char *buf, size_t len);
/* A connection whose sent data goes unacknowledged for ms milliseconds
 * (the other side's host gone, or a network that drops its packets) is
 * closed with -ETIMEDOUT (TCP_USER_TIMEOUT: without it the kernel retries
 * for about 15 minutes, at intervals that grow to 2 minutes, so a link
 * stuck in a partition came back up to 2 minutes after it healed); also
 * bounds a connect (its SYNs) and, through keepalive probes from ms/2 of
 * silence on, notices an idle link's end within about ms. 0, or a negative
 * errno (-EBADF: an I/O thread's connection, whose socket is not here). */
int rio_conn_set_user_timeout(struct rio_conn *c, unsigned ms);
/* The socket, for getsockopt only (metrics read TCP_INFO's round-trip
 * time); the loop owns it: never read, write or close it. */
int rio_conn_fd(const struct rio_conn *c);

/* TLS 1.3 on a connection (io/tls.h builds the context): call it in
 * on_accept with server = true, or right after rio_connect with server =
 * false, before anything was sent. Everything else stays the same for the
 * caller: rio_send takes plaintext (encrypted once per send, so messages
 * still coalesce), on_data gets plaintext, the limits hold for plaintext.
 * On an outgoing connection on_connect(0) comes after the handshake; a
 * handshake or record failure closes the connection with -EPROTO
 * (on_connect(-EPROTO) first if it never completed) and the reason in
 * rio_conn_tls_error. The connection keeps its context's reference, so the
 * caller may free or replace the context at any time (reload).
 * 0, -EALREADY, -EINVAL (wrong state), -ENOMEM. */
struct rio_tls_ctx;
int rio_conn_start_tls(struct rio_conn *c, const struct rio_tls_ctx *ctx, bool server);
bool rio_conn_is_tls(const struct rio_conn *c);
/* The verified peer certificate's subject CN (after the handshake):
 * 0, -ENOENT (plain, not yet, none presented), -ENOSPC. */
int rio_conn_tls_peer_cn(const struct rio_conn *c, char *buf, size_t len);
/* Why TLS failed on this connection (valid until on_close returns), or NULL. */
const char *rio_conn_tls_error(const struct rio_conn *c);

/* One iteration: queue the SQEs that deferred work needs, submit and wait
 * until at least one completion arrives or timeout_us passes (0 = do not
 * wait), dispatch every ready completion (callbacks run here), run deferred
 * close callbacks, and prepare the sends queued meanwhile (they are submitted
 * by the next call, in the same system call that waits). Returns the number of
 * completions and deferred callbacks handled (0 on timeout or signal), or a
 * negative errno (-EEXIST: called from a thread other than the creator). */
int rio_run_once(struct rio_loop *l, uint64_t timeout_us);
/* rio_run_once that, when it sleeps, sleeps until min_events completions
 * are ready (or timeout_us passed) instead of the first one: for a caller
 * that would rather act late than wake for each (a batch held until its
 * clients' next requests are in: replica/node.c linger). With
 * DEFER_TASKRUN the kernel wakes the thread only once that many are
 * queued, so the ones before cost no wake-up; every completion counts,
 * whatever it is, so one the caller would want at once (a peer's message,
 * a rio_loop_wake from another thread during the sleep) waits too, at
 * most until the timeout. Completions ready before the sleep (queued
 * meanwhile, a rio_loop_wake made before the call, sends that finished
 * during submission) are handled without sleeping. min_events 1 is
 * rio_run_once; with I/O threads or RABIA_IO_WAIT=eventfd it waits for
 * one, as rio_run_once. */
int rio_run_once_min(struct rio_loop *l, uint64_t timeout_us, unsigned min_events);
/* rio_run_once that, while a file write (rio_write) is in flight, sleeps
 * until it finishes, at most cap_us (and timeout_us), instead of until the
 * first completion of any kind: what arrives from the network meanwhile is
 * handled in the same turn, after the write's callback. For a caller whose
 * every answer and send waits for that write anyway (replica/node.c: sends
 * held behind a log write), so that each peer message or client request
 * arriving during the write costs no wake-up of its own (an I/O thread's
 * message too). With no write in flight, with RABIA_IO_WAIT=eventfd, after
 * a rio_loop_wake, or when the writes share the main ring, it is
 * rio_run_once. */
int rio_run_once_file_first(struct rio_loop *l, uint64_t timeout_us, uint64_t cap_us);
/* A file write through io_uring (IORING_OP_WRITE; rw_flags such as
 * RWF_DSYNC go into the SQE), submitted at once, on the loop's write ring
 * (made at the first call; the main ring if that fails): see
 * rio_run_once_file_first. `done` runs from
 * rio_run_once with the result (bytes written or a negative errno); buf
 * must stay valid until then. At most 4 in flight per loop (-EBUSY).
 * rio_loop_destroy waits (bounded) for writes in flight; their callbacks
 * still run. 0 or a negative errno. */
typedef void (*rio_write_fn)(void *ctx, int res);
int rio_write(struct rio_loop *l, int fd, const void *buf, uint32_t len, uint64_t off, int rw_flags,
              rio_write_fn done, void *ctx);
/* Submit the prepared SQEs now instead of at the next rio_run_once. */
int rio_flush(struct rio_loop *l);
/* CLOCK_MONOTONIC in microseconds. */
uint64_t rio_now_us(void);
/* The monotonic clock as read when this thread's loop last came back from
 * the kernel (one read per loop turn), or rio_now_us() on a thread whose
 * loop has not run. For what is stamped many times a turn (each request's
 * latency, each core step): a clock read per request was 2-2.5% of the
 * servers' CPU at SET -P 16, and nothing happens between two reads of
 * one turn that a finer time would tell apart. */
uint64_t rio_turn_us(void);
/* Async-signal-safe and thread-safe: makes a blocked (or the next)
 * rio_run_once return. Writes an eventfd that the loop polls (multishot). */
void rio_loop_wake(struct rio_loop *l);

/* I/O threads (rabiad's io-threads). Start k threads (at most
 * RIO_MAX_THREADS), each with its own io_uring loop; thread i is pinned to
 * cpus[i] when cpus is given (-1: unpinned). Listeners made afterwards with
 * rio_listen_threaded are accepted, read and written by those threads
 * (each accepts on its own copy of the socket, so a free thread takes the
 * next client), while this loop runs every callback for their connections
 * exactly as for its own (from rio_run_once, same contract): the caller
 * cannot tell them apart, except that rio_conn_fd is -1 and
 * rio_conn_start_tls is refused (-EOPNOTSUPP). The threads and this loop
 * trade messages over lock-free single-producer single-consumer rings and
 * wake each other only when the other side sleeps (threads.c). Call once,
 * on the loop's thread, before the first rio_run_once; rio_loop_destroy
 * joins them. k = 0 does nothing. 0, or a negative errno with err filled. */
#define RIO_MAX_THREADS 64u
int rio_loop_start_threads(struct rio_loop *l, unsigned k, const int *cpus, char *err, size_t errlen);
unsigned rio_loop_threads(const struct rio_loop *l);
/* rio_listen whose connections the I/O threads serve (rio_listen itself
 * without threads). */
int rio_listen_threaded(struct rio_loop *l, const char *host, uint16_t port, void *user,
                        struct rio_listener **out);

/* Counters since creation, for tests, benchmarks and metrics. */
struct rio_stats {
    uint64_t cqes;           /* completions dispatched */
    uint64_t recv_cqes;      /* recv completions carrying data */
    uint64_t recv_bytes;
    uint64_t recv_enobufs;   /* provided buffers ran out; recv re-armed */
    uint64_t recv_rearms;    /* multishot recv re-armed (no IORING_CQE_F_MORE) */
    uint64_t sends;          /* send SQEs issued */
    uint64_t send_bytes;     /* bytes the kernel took */
    uint64_t short_sends;    /* sends that took less than offered, resumed */
    uint64_t shared_sends;   /* sends by sendmsg with shared ranges (rio_send_shared) */
    uint64_t shared_bytes;   /* bytes queued by reference, not copied */
    uint64_t accepts;
    uint64_t accept_errors;
    uint64_t conns_open;     /* connections whose terminal callback has not run yet */
    uint64_t sqe_stalls;     /* no SQE even after submitting; retried next iteration */
    uint64_t wakes;
    uint64_t turns;          /* rio_run_once calls that reached the kernel */
    uint64_t waits;          /* of those, the ones that could block (nothing was ready) */
    uint64_t waits_several;  /* of those, sleeps until several completions (rio_run_once_min) */
    uint64_t waits_several_timeouts; /* ... that ended short of them (the timeout, a signal) */
    uint64_t waits_file;     /* of the waits, sleeps until a file write finished (rio_run_once_file_first) */
    uint64_t waits_file_timeouts; /* ... that ended before it did (the cap, the timeout, a signal) */
};
void rio_loop_stats(const struct rio_loop *l, struct rio_stats *out);

#endif
