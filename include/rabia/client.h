/* The native client library: submits operations to a rabia cluster over the
 * replicas' native TCP ports, with exactly-once retries.
 *
 * WIRE. One TCP connection to one replica at a time, carrying codec frames
 * (core/codec.h) with from = 0. A request is CLIENT_REQ {u64 = client id,
 * slot = seq, u64b = ack, body = op}; the replica answers CLIENT_REPLY
 * {u64 = client id, slot = seq, value = status, body = result}, possibly out
 * of order. STATUS_REQ / STATUS use a separate short-lived connection.
 *
 * SESSIONS (see core/rsm.h). A session is opened by an empty request
 * with seq 1 (sent before anything else; nothing else is sent until it is
 * answered), so that no retry can ever be applied twice, even if the
 * cluster evicts the session meanwhile. The caller's requests follow with
 * seq 2, 3, ...; a retry reuses its seq, so the replicas' session table
 * applies each request at most once. ack (sent with every request, retries
 * included) is the lowest seq still in flight, or the next seq when none is.
 * If the cluster evicted the session (more clients than its max-sessions),
 * every request sent in it and still in flight completes with
 * RABIA_REPLY_SESSION_EXPIRED (outcome unknown, never applied twice), and
 * the client goes on with a new session: a new random client id, requests
 * not sent yet carried over. The seq handed out by rabia_client_submit is
 * the caller's handle and grows for the client's whole life; it is not the
 * seq on the wire. Ops are never empty (-EINVAL): empty ops open sessions.
 * rabia_client_close closes the session (best effort: requests still in
 * flight then have an unknown outcome, as they would anyway).

 * READS. An op the cluster's state machine classifies as a read (its
 * query: kv GET and the other read-only commands, counter GET, bank
 * BALANCE and ALL) is answered by the replica's read index (core.h, READ
 * INDEX) when nothing of this connection is in the log: no slot of its
 * own, linearizable all the same. A connection's requests still take
 * effect in the order sent (a write sent after a read that waits for its
 * index waits too; a read sent after a write waits for it; with window > 1
 * a request waits while earlier ones are in a batch already cut). A read of a
 * round that does not complete within a second goes through the log under
 * its seq. Reads by the index leave the session untouched in the log: a
 * client that only reads can find its session evicted first when the
 * cluster has more clients than max-sessions (its next write then
 * completes SESSION_EXPIRED, as above). read-index = no on the replicas
 * sends every read through the log.
 *
 * WINDOW. A new seq is only sent while seq - (lowest seq in flight) <
 * max_outstanding (<= RABIA_RSM_WINDOW = 64), which also bounds the number
 * in flight. rabia_client_submit BLOCKS when the window is full: it drives
 * I/O until the oldest request in flight completes (or fails), then
 * returns. Completed results are held by the client until collected with
 * rabia_client_wait (each submitted seq should be collected once; results
 * never collected are freed by rabia_client_close).
 *
 * RETRIES. The client starts with replica client_id % n_addrs (random when
 * the id is random). It moves to the next replica (round robin), reconnects
 * and resends EVERY request in flight with the same (client id, seq) when:
 *   - a request in flight has had no reply for timeout_ms on the current
 *     connection (or the connect did not finish within timeout_ms);
 *   - the connection fails: connect refused, reset, EOF, a malformed frame
 *     or an unexpected message from the replica;
 *   - a reply says RABIA_REPLY_REDIRECT or RABIA_REPLY_BUSY (the request
 *     was not applied there); the client then waits a short backoff first
 *     (10 ms, doubling with every consecutive failure, at most 1 s; failed
 *     connects back off the same way from the second consecutive failure).
 * Each such move counts as one attempt for every request in flight; a
 * request whose attempts reach max_attempts fails (see rabia_client_wait).
 * The final statuses (OK, SESSION_EXPIRED, BAD_REQUEST, APPLIED_NO_RESULT)
 * are returned to the caller as they are.
 *
 * CORKING. Each submit writes its request to the socket at once: one
 * send(2), and one TCP segment for the replica to receive, per request.
 * A caller that submits several together (a pipeline) can cork them:
 * between rabia_client_cork and rabia_client_uncork, submits only queue
 * their requests, and the uncork writes all of them with one send. A wait
 * (or a submit blocked on the window, or a call) writes what is queued
 * before it waits, so a cork never holds back a request somebody waits
 * for; so does rabia_client_process, and rabia_client_io asks for it at
 * once (timeout 0) while a cork holds requests (uncork before going back
 * to the event loop); a connect or failover sends every request in flight
 * as always.
 *
 * I/O happens only inside rabia_client_submit / _wait / _call / _status
 * / _process (plain non-blocking sockets and poll(); no threads). A client
 * is not thread-safe: use one per thread. SIGPIPE is never raised
 * (MSG_NOSIGNAL).
 *
 * EVENT LOOPS. A program with its own loop (poll, epoll, libevent...)
 * can drive many clients without blocking: after every call on a client,
 * ask rabia_client_io what it waits for (a socket and its events, and a
 * timeout), watch that, and call rabia_client_process with the events
 * that came (0 when the timeout passed); then take the completed
 * requests with rabia_client_collect, which never does I/O. The socket
 * changes when the client reconnects or fails over: io.conn_gen changes
 * with it, so a loop that registered an earlier socket must register the
 * new one (the old one is closed, and its number may be reused, even by
 * another client's socket: never modify a registration whose conn_gen is
 * not the client's current one). Submits and waits still work as above
 * (a submit with a full window still blocks). With TLS a new connection's
 * handshake runs inside process, for at most timeout_ms. An address given
 * by host name is looked up (getaddrinfo) inside process at every connect,
 * which blocks for as long as the resolver takes (its whole timeout when
 * DNS does not answer): a loop that must never block gives IP addresses,
 * or looks names up itself on another thread.
 *
 * Errors are negative errno values (see each function). */
#ifndef RABIA_CLIENT_H
#define RABIA_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rabia/state_machine.h"
#include "rabia/types.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rabia_client;

struct rabia_client_cfg {
    const char *const *addrs; /* "host:port" (or "[v6addr]:port") of the replicas'
                                 native ports; copied by open */
    size_t n_addrs;           /* >= 1 */
    uint64_t client_id;       /* the nonce of the first session OPEN; 0 = random
                                 (getrandom); bits 62 and 63 must be clear */
    uint32_t timeout_ms;      /* per attempt; 0 = default 1000 */
    uint32_t max_attempts;    /* 0 = default 10 */
    uint32_t max_outstanding; /* 0 = default 64; at most RABIA_CLIENT_MAX_OUTSTANDING */
    /* TLS 1.3 to replicas with tls-clients = yes (OpenSSL): the replica's
     * certificate is verified against tls_ca_file, and must name the host
     * dialed (an address's host part: a DNS name against the certificate's
     * DNS names, an IP address against its IP addresses; subjectAltName) or
     * tls_server_name when that is set (copied by open; for addresses the
     * certificates do not hold). tls_cert_file and tls_key_file (both or
     * neither) are this client's certificate, needed where
     * tls-auth-clients = yes. Paths are read at open. */
    bool tls;
    const char *tls_ca_file;
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_server_name;
    /* authentication (replicas with requirepass / acl-file): every connection
     * first sends CLIENT_AUTH with these (copied by open); password NULL: none.
     * A refused one makes requests complete RABIA_REPLY_NOAUTH with the
     * replica's message as the result; a user's forbidden command
     * RABIA_REPLY_NOPERM. user NULL or "": "default". */
    const char *user;
    const char *password;
};

#define RABIA_CLIENT_MAX_OUTSTANDING 64 /* = RABIA_RSM_WINDOW */

/* Create a client. No I/O happens here (the first submit connects); every
 * address must parse as host:port. 0, -EINVAL for a bad configuration or
 * address, -ENOMEM, or the error of getrandom. */
int rabia_client_open(struct rabia_client **out, const struct rabia_client_cfg *cfg);
/* With cfg->tls: open returns -EPROTO when the TLS files are unusable; this
 * says why (0, or -EPROTO with err filled: the file and OpenSSL's reason). */
int rabia_client_tls_check(const struct rabia_client_cfg *cfg, char *err, size_t errlen);
/* The last TLS failure on this client (handshake refused, certificate not
 * verified...), or NULL. */
const char *rabia_client_tls_error(const struct rabia_client *c);
/* Whether any replica ever answered this client (a frame came in), and the
 * last connect or transport error (negative errno; 0: none). A client that
 * never heard a replica and whose connections were closed on it
 * (-ECONNRESET, -EPIPE) may be speaking plaintext to a port that wants TLS
 * (tls-clients = yes): rabia-cli says so. */
bool rabia_client_heard(const struct rabia_client *c);
int rabia_client_last_error(const struct rabia_client *c);
/* Close the connection and free everything, results not collected too.
 * Requests in flight are abandoned (their outcome is unknown). NULL is a
 * no-op. */
void rabia_client_close(struct rabia_client *c);

/* Start one operation; *seq (may be NULL) receives its handle, its seq
 * (never 0). Blocks while the window is full (see WINDOW above). The op is
 * copied. 0, -EMSGSIZE when the op cannot fit in a frame or a batch,
 * -ENOMEM, or -EINVAL (op NULL with len > 0). */
int rabia_client_submit(struct rabia_client *c, const void *op, size_t len, uint64_t *seq);

/* Corking (see CORKING above): after rabia_client_cork, submits queue
 * their requests without writing them; rabia_client_uncork writes all
 * that were queued, in one send (0, -ENOMEM; a failed send fails over as
 * any send does). Submits between the two still block on a full window. */
void rabia_client_cork(struct rabia_client *c);
int rabia_client_uncork(struct rabia_client *c);

/* Event loops (see EVENT LOOPS above). */
struct rabia_client_io {
    int fd;            /* the socket to watch, or -1: nothing (only the timeout) */
    short events;      /* POLLIN, POLLOUT (poll(2)'s bits; epoll's EPOLLIN and
                          EPOLLOUT have the same values) */
    int timeout_ms;    /* call rabia_client_process within this many ms even if
                          the socket says nothing (0: now); -1: no deadline
                          (nothing in flight) */
    uint64_t conn_gen; /* changes with every new socket */
};
void rabia_client_io(const struct rabia_client *c, struct rabia_client_io *io);
/* The I/O the events returned for io.fd allow (revents: POLLIN, POLLOUT,
 * POLLERR, POLLHUP; 0: none, the timeout passed), and every timer due:
 * reads and handles replies, writes what waits, reconnects, fails over.
 * Never blocks (but see TLS above). 0, or -ENOMEM. */
int rabia_client_process(struct rabia_client *c, short revents);
/* The request that completed first, as rabia_client_wait(c, 0, result,
 * done_seq, ...) returns it, without any I/O: its status (>= 0, or
 * -ETIMEDOUT / a connect error for a request that gave up, as wait),
 * -EINPROGRESS when none has completed yet, -ENOENT when none is left to
 * collect. */
int rabia_client_collect(struct rabia_client *c, struct rabia_buf *result, uint64_t *done_seq);

/* Wait for the request seq, or for any request when seq == 0 (the one that
 * completed first), for at most timeout_ms (< 0: until it completes or
 * fails, which max_attempts bounds). On completion the request is
 * collected (forgotten by the client), *done_seq (may be NULL) gets its
 * seq and its result replaces the contents of *result (may be NULL: the
 * result is discarded; result->data may be reallocated). Returns:
 *   >= 0  the reply status (enum rabia_reply_status): RABIA_REPLY_OK with
 *         the state machine's result, SESSION_EXPIRED, BAD_REQUEST,
 *         APPLIED_NO_RESULT (applied; result empty), or REDIRECT / BUSY /
 *         UNAVAILABLE when the attempts ran out and every replica that
 *         received the request answered that it did not apply it (NOT
 *         applied; the result is the last such answer's reason, e.g. why
 *         the replica cannot persist, or empty);
 *   -ETIMEDOUT   the attempts ran out and the request reached at least one
 *                replica without a definitive answer: the OUTCOME IS
 *                UNKNOWN (it may or may not have been applied);
 *   -ECONNREFUSED, -EHOSTUNREACH, ... the attempts ran out and the request
 *                never reached a replica (every connect failed): NOT applied;
 *   -EINPROGRESS timeout_ms passed first: the request is still in flight
 *                (nothing was collected; wait again later);
 *   -ENOENT      seq is not a request of this client that is still to be
 *                collected (seq == 0: there is none);
 *   -ENOMEM or another negative errno for a local failure.
 * For the negative results *result is left as it was (except -ETIMEDOUT
 * and the connect errors, which collect the request: *result is emptied
 * and *done_seq set). */
int rabia_client_wait(struct rabia_client *c, uint64_t seq, struct rabia_buf *result,
                      uint64_t *done_seq, int timeout_ms);

/* submit + wait(seq, result, NULL, -1). */
int rabia_client_call(struct rabia_client *c, const void *op, size_t len, struct rabia_buf *result);

/* STATUS needs the connection authenticated when the replica requires it:
 * a refusal is -EACCES with the replica's message in *text. */
/* STATUS of one replica over its own short-lived connection (addr NULL: the
 * replica the client currently uses). The text ("key: value" lines)
 * replaces the contents of *text. Takes at most the client's timeout_ms.
 * 0, -ETIMEDOUT, a connect errno, -EPROTO for an unexpected or malformed
 * answer, -EINVAL for a bad address, -ENOMEM. */
int rabia_client_status(struct rabia_client *c, const char *addr, struct rabia_buf *text);

/* The client id in use (the random one when cfg.client_id was 0). */
uint64_t rabia_client_id(const struct rabia_client *c);
/* Number of requests in flight (submitted, not yet completed or failed). */
size_t rabia_client_in_flight(const struct rabia_client *c);
/* "OK", "REDIRECT", "SESSION_EXPIRED", "BUSY", "BAD_REQUEST",
 * "APPLIED_NO_RESULT", "UNAVAILABLE", "NOAUTH", "NOPERM"; "UNKNOWN" for
 * other values (a negative errno: rabia_strerror). */
const char *rabia_reply_status_name(int status);

#ifdef __cplusplus
}
#endif
#endif
