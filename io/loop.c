/* io/loop.c: the io_uring event loop behind io/loop.h (one ring per thread). */
#define _GNU_SOURCE
#include "loop.h"
#include "loop_internal.h"
#include "tls.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void conn_reconcile(struct rio_conn *c);
static int run_once(struct rio_loop *l, uint64_t timeout_us, unsigned min_events, uint64_t file_cap_us);
static unsigned reap_file_writes(struct rio_loop *l);
static void listener_reconcile(struct rio_listener *ls);

uint64_t rio_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static _Thread_local uint64_t turn_us;

uint64_t rio_turn_us(void)
{
    return turn_us ? turn_us : rio_now_us();
}

/* ---- SQEs ---- */

/* An SQE, submitting what is queued if the SQ is full. NULL only if the kernel
 * refuses the submit (then the caller stays dirty and retries next iteration).
 * Submitting here reaps nothing, so no callback can run from inside. */
static struct io_uring_sqe *loop_sqe(struct rio_loop *l)
{
    if (l->sq_stalled)
        return NULL;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
    if (sqe)
        return sqe;
    int r = io_uring_submit(&l->ring);
    if (r >= 0)
        sqe = io_uring_get_sqe(&l->ring);
    if (!sqe) {
        l->sq_stalled = true;
        l->st.sqe_stalls++;
    }
    return sqe;
}

/* ---- provided buffer ring (io_uring_setup_buf_ring arrived in liburing 2.4) ---- */

static int buf_ring_setup(struct rio_loop *l)
{
    l->br_bytes = RIO_BUF_COUNT * sizeof(struct io_uring_buf);
    /* The ring must be page aligned; the kernel pins these pages. */
    void *ring = mmap(NULL, l->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ring == MAP_FAILED)
        return -errno;
    l->br = ring;
    void *bufs = mmap(NULL, (size_t)RIO_BUF_COUNT * RIO_BUF_SIZE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (bufs == MAP_FAILED)
        return -errno;
    l->bufs = bufs;
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)ring;
    reg.ring_entries = RIO_BUF_COUNT;
    reg.bgid = RIO_BGID;
    int r = io_uring_register_buf_ring(&l->ring, &reg, 0);
    if (r < 0)
        return r;
    l->br_registered = true;
    io_uring_buf_ring_init(l->br);
    int mask = io_uring_buf_ring_mask(RIO_BUF_COUNT);
    for (unsigned i = 0; i < RIO_BUF_COUNT; i++)
        io_uring_buf_ring_add(l->br, l->bufs + (size_t)i * RIO_BUF_SIZE, RIO_BUF_SIZE,
                              (unsigned short)i, mask, (int)i);
    io_uring_buf_ring_advance(l->br, RIO_BUF_COUNT);
    return 0;
}

/* Hand buffer bid back to the kernel; it may be picked by the very next recv. */
static void buf_return(struct rio_loop *l, unsigned bid)
{
    assert(bid < RIO_BUF_COUNT);
    io_uring_buf_ring_add(l->br, l->bufs + (size_t)bid * RIO_BUF_SIZE, RIO_BUF_SIZE,
                          (unsigned short)bid, io_uring_buf_ring_mask(RIO_BUF_COUNT), 0);
    io_uring_buf_ring_advance(l->br, 1);
}

/* ---- lists ---- */

static void conn_mark_dirty(struct rio_conn *c)
{
    if (c->on_dirty)
        return;
    struct rio_loop *l = c->loop;
    c->on_dirty = true;
    c->dirty_next = NULL;
    if (l->dirty_tail)
        l->dirty_tail->dirty_next = c;
    else
        l->dirty_head = c;
    l->dirty_tail = c;
}

static void listener_mark_dirty(struct rio_listener *ls)
{
    if (ls->on_dirty)
        return;
    ls->on_dirty = true;
    ls->dirty_next = ls->loop->ldirty;
    ls->loop->ldirty = ls;
}

/* Request the connection's end: the terminal callback runs from loop_post.
 * The first reason wins; later calls are no-ops. */
static void conn_fail(struct rio_conn *c, int err)
{
    if (c->state != C_OPEN && c->state != C_CONNECTING)
        return;
    struct rio_loop *l = c->loop;
    c->state = C_CLOSING;
    c->close_err = err;
    c->on_closeq = true;
    c->closeq_next = NULL;
    if (l->closeq_tail)
        l->closeq_tail->closeq_next = c;
    else
        l->closeq_head = c;
    l->closeq_tail = c;
}

static unsigned conn_refs(const struct rio_conn *c)
{
    return (unsigned)c->recv_armed + (unsigned)c->send_inflight + (unsigned)c->connect_inflight +
           c->cancels;
}

/* The whole stream of tx: its bytes and its shared ranges. */
static size_t tx_total(const struct rio_conn *c) { return c->tx_len + c->ts_bytes; }

static void segs_release(struct rio_seg *segs, uint32_t *n, size_t *bytes)
{
    for (uint32_t i = 0; i < *n; i++)
        segs[i].sh->unref(segs[i].sh->ctx, segs[i].buf);
    *n = 0;
    *bytes = 0;
}

/* Everything a conn still holds: buffers and shared references. */
static void conn_release_output(struct rio_conn *c)
{
    if (c->qs) {
        segs_release(c->qs, &c->n_qs, &c->qs_bytes);
        segs_release(c->ts, &c->n_ts, &c->ts_bytes);
    }
    free(c->qs);
    free(c->ts);
    free(c->iov);
    c->qs = c->ts = NULL;
    c->iov = NULL;
    free(c->tx);
    free(c->q);
    c->tx = c->q = NULL;
}

static void conn_free(struct rio_conn *c)
{
    struct rio_loop *l = c->loop;
    assert(c->state == C_DEAD);
    assert(conn_refs(c) == 0 && !c->on_dirty && !c->on_closeq);
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    /* close() only now: the kernel is done with the socket and our buffers */
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    conn_release_output(c);
    free(c->pt);
    rio_tls_conn_free(c->tls);
    free(c);
}

static struct rio_conn *conn_new(struct rio_loop *l, int fd, enum conn_state st)
{
    struct rio_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = l;
    c->fd = fd;
    c->state = st;
    c->in_max = l->in_max;
    c->out_max = l->out_max;
    c->op_recv.kind = OP_RECV;
    c->op_send.kind = OP_SEND;
    c->op_connect.kind = OP_CONNECT;
    c->op_cancel.kind = OP_CANCEL;
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    l->st.conns_open++;
    return c;
}

/* Latency over loopback is dominated by Nagle + delayed ACK without NODELAY;
 * keepalive lets a dead peer surface eventually even with no traffic. Failures
 * here cost performance, not correctness, so they are not fatal. */
static void sock_tune(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

/* ---- input ---- */

/* Present p[0, n) to on_data while it consumes and the conn still wants
 * input; returns the bytes consumed. */
static size_t conn_deliver(struct rio_conn *c, const uint8_t *p, size_t n)
{
    struct rio_loop *l = c->loop;
    size_t off = 0;
    while (off < n && c->state == C_OPEN && !c->close_after_send) {
        size_t k = l->h.on_data ? l->h.on_data(l->ctx, c, p + off, n - off) : n - off;
        assert(k <= n - off); /* the callee cannot consume bytes it was not given */
        if (k == 0)
            break;
        off += k;
    }
    return off;
}

/* Make room for n more input bytes (n + in_len <= in_max checked by caller). */
static int in_reserve(struct rio_conn *c, size_t n)
{
    if (c->in_off + c->in_len + n <= c->in_cap)
        return 0;
    if (c->in_len + n <= c->in_cap) { /* compacting is enough */
        memmove(c->in, c->in + c->in_off, c->in_len);
        c->in_off = 0;
        return 0;
    }
    size_t need = c->in_len + n;
    size_t cap = c->in_cap ? c->in_cap * 2 : RIO_BUF_SIZE;
    if (cap < need)
        cap = need;
    if (cap > c->in_max && need <= c->in_max)
        cap = c->in_max;
    uint8_t *nb = malloc(cap);
    if (!nb)
        return -ENOMEM;
    if (c->in_len)
        memcpy(nb, c->in + c->in_off, c->in_len);
    free(c->in);
    c->in = nb;
    c->in_cap = cap;
    c->in_off = 0;
    return 0;
}

/* Present what `in` holds to on_data; drop what it consumed. Never while a
 * direct recv writes into `in` (a drained burst's large buffer is freed). */
static void in_deliver(struct rio_conn *c)
{
    /* on_data reads `in` in place. A reconcile while it runs (rio_flush
     * from the callback) must not post the next direct recv: growing `in`
     * would free what on_data reads, and a recv aimed past the bytes not
     * consumed yet would land where the next read no longer looks. */
    c->delivering = true;
    size_t used = conn_deliver(c, c->in + c->in_off, c->in_len);
    c->delivering = false;
    if (c->state != C_OPEN)
        return; /* the buffer is dropped with the conn */
    if (c->recv_direct)
        conn_mark_dirty(c); /* the next recv, in case a reconcile skipped it */
    c->in_off += used;
    c->in_len -= used;
    if (c->in_len == 0) {
        c->in_off = 0;
        if (c->in_cap > RIO_KEEP_BYTES) {
            free(c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
    }
}

static void conn_input_plain(struct rio_conn *c, const uint8_t *p, size_t n)
{
    if (c->in_len == 0) {
        /* Fast path: on_data reads the provided buffer directly, no copy. */
        size_t used = conn_deliver(c, p, n);
        if (c->state != C_OPEN || c->close_after_send || used == n)
            return;
        p += used;
        n -= used;
        if (n > c->in_max) {
            conn_fail(c, -EMSGSIZE);
            return;
        }
        int r = in_reserve(c, n);
        if (r < 0) {
            conn_fail(c, r);
            return;
        }
        memcpy(c->in + c->in_off, p, n);
        c->in_len = n;
        return;
    }
    if (n > c->in_max - c->in_len) {
        conn_fail(c, -EMSGSIZE);
        return;
    }
    int r = in_reserve(c, n);
    if (r < 0) {
        conn_fail(c, r);
        return;
    }
    memcpy(c->in + c->in_off + c->in_len, p, n);
    c->in_len += n;
    in_deliver(c);
}

/* ---- TLS: the engine (tls.c) between the socket and on_data / rio_send ---- */

/* Grow *b (which is never in flight) to hold len + add bytes; doubling, at
 * least `floor`, capped at max unless the need itself is larger. */
static int buf_grow(uint8_t **b, size_t *cap, size_t len, size_t add, size_t max, size_t floor)
{
    if (*cap - len >= add)
        return 0;
    size_t need = len + add;
    size_t nc = *cap ? *cap * 2 : floor;
    if (nc < need)
        nc = need;
    if (nc > max)
        nc = need > max ? need : max;
    uint8_t *nb = realloc(*b, nc);
    if (!nb)
        return -ENOMEM;
    *b = nb;
    *cap = nc;
    return 0;
}

/* Move the ciphertext the engine produced (handshake messages, records,
 * alerts, close_notify) into q. Not held to out_max: it is the handshake
 * or the encryption of plaintext rio_send already admitted under it. */
static void tls_pull(struct rio_conn *c)
{
    size_t n = rio_tls_output_pending(c->tls);
    if (n == 0)
        return;
    if (buf_grow(&c->q, &c->q_cap, c->q_len, n, SIZE_MAX, 4096) < 0) {
        conn_fail(c, -ENOMEM);
        return;
    }
    size_t got = rio_tls_output_take(c->tls, c->q + c->q_len, n);
    assert(got == n);
    c->q_len += got;
    if (!c->send_inflight)
        conn_mark_dirty(c);
}

static void conn_eof(struct rio_conn *c);

/* Drive the engine over what was fed: handshake steps, then plaintext to
 * on_data, until it needs more ciphertext or the conn stops taking input. */
static void tls_run(struct rio_conn *c)
{
    struct rio_loop *l = c->loop;
    while (c->state == C_OPEN && !c->close_after_send) {
        size_t got = 0;
        int s = rio_tls_step(c->tls, l->tls_buf, sizeof l->tls_buf, &got);
        tls_pull(c);
        if (s == RIO_TLS_WANT)
            return;
        if (s == RIO_TLS_DATA) {
            conn_input_plain(c, l->tls_buf, got);
            continue;
        }
        if (s == RIO_TLS_READY) {
            conn_mark_dirty(c); /* plaintext queued meanwhile leaves now */
            if (!c->was_open) {
                /* a dialer's connection is usable only now: on_connect(0)
                 * waits for the handshake, as its failure ends in
                 * on_connect(err) */
                c->was_open = true;
                if (l->h.on_connect)
                    l->h.on_connect(l->ctx, c, 0);
            }
            continue;
        }
        if (s == RIO_TLS_EOF) {
            /* close_notify: the peer sends nothing more, as a TCP FIN says;
             * on_eof may keep the conn for the replies it is owed (TLS lets
             * us write on: only our own close_notify ends our side). Before,
             * this closed at once and a client that sent its commands and
             * then close_notify lost every reply (integration.tls) */
            conn_eof(c);
            return;
        }
        assert(s < 0);
        if (c->q_len > 0 && c->state == C_OPEN) {
            /* let the alert reach the other side, so that it logs why too */
            c->fail_after_send = s;
            c->close_after_send = true;
            conn_mark_dirty(c);
        } else {
            conn_fail(c, s);
        }
        return;
    }
}

/* Encrypt everything rio_send queued (records of 16 KiB), in slices of
 * RIO_TLS_SLICE whose ciphertext moves into q at once: the engine's write
 * BIO stays small instead of growing (and being copied as it grows) to the
 * size of a burst such as a snapshot chunk. */
#define RIO_TLS_SLICE ((size_t)256 << 10)
static void tls_encrypt_pending(struct rio_conn *c)
{
    for (size_t off = 0; off < c->pt_len;) {
        size_t n = c->pt_len - off < RIO_TLS_SLICE ? c->pt_len - off : RIO_TLS_SLICE;
        int r = rio_tls_encrypt(c->tls, c->pt + off, n);
        if (r < 0) {
            c->pt_len = 0;
            conn_fail(c, r);
            return;
        }
        tls_pull(c);
        if (c->state != C_OPEN)
            return;
        off += n;
    }
    c->pt_len = 0;
    if (c->pt_cap > RIO_KEEP_BYTES) {
        free(c->pt);
        c->pt = NULL;
        c->pt_cap = 0;
    }
    if (c->close_after_send)
        rio_tls_shutdown(c->tls); /* close_notify after the last data; idempotent */
    tls_pull(c);
}

static void conn_input(struct rio_conn *c, const uint8_t *p, size_t n)
{
    if (!c->tls) {
        conn_input_plain(c, p, n);
        return;
    }
    c->tls_fed = true;
    int r = rio_tls_feed(c->tls, p, n);
    if (r < 0) {
        conn_fail(c, r);
        return;
    }
    tls_run(c);
}

/* ---- the connection's state machine, level-triggered ---- */

/* Bring the conn's in-flight ops in line with its state: arm recv, start the
 * next send, start the connect, finish close_after_send, cancel ops of a dead
 * conn, free it when nothing is in flight. Runs from loop_post for every conn
 * marked dirty; if an SQE is not available it stays dirty for the next
 * iteration. */
/* The iovec of tx's stream from tx_off: its bytes and shared ranges in
 * order. At most 2 * RIO_SHARE_SEGS + 1 entries. */
static void tx_iov_build(struct rio_conn *c)
{
    assert(c->iov && c->n_ts > 0 && c->n_ts <= RIO_SHARE_SEGS);
    size_t pos = 0, prev = 0, total = 0;
    unsigned k = 0;
    for (uint32_t i = 0; i <= c->n_ts; i++) {
        const uint8_t *piece[2] = {c->tx + prev, NULL};
        size_t len[2] = {(i < c->n_ts ? c->ts[i].at : c->tx_len) - prev, 0};
        if (i < c->n_ts) {
            assert(c->ts[i].at >= prev && c->ts[i].at <= c->tx_len);
            piece[1] = c->ts[i].p;
            len[1] = c->ts[i].len;
            prev = c->ts[i].at;
        }
        for (int j = 0; j < 2; j++) {
            if (!len[j] || pos + len[j] <= c->tx_off) {
                pos += len[j];
                continue;
            }
            size_t skip = c->tx_off > pos ? c->tx_off - pos : 0;
            c->iov[k].iov_base = (void *)(uintptr_t)(piece[j] + skip);
            c->iov[k].iov_len = len[j] - skip;
            total += len[j] - skip;
            k++;
            pos += len[j];
        }
    }
    assert(k >= 1 && k <= 2 * RIO_SHARE_SEGS + 1);
    assert(pos == tx_total(c) && total == tx_total(c) - c->tx_off);
    memset(&c->msg, 0, sizeof c->msg);
    c->msg.msg_iov = c->iov;
    c->msg.msg_iovlen = k;
}

static void conn_reconcile(struct rio_conn *c)
{
    struct rio_loop *l = c->loop;
    struct io_uring_sqe *sqe;
    if (c->remote) { /* an I/O thread's socket: messages, never SQEs (threads.c) */
        if (!rio_threads_reconcile(c)) {
            l->thr_stalled = true; /* its ring is full: retried on a later turn */
            l->sq_stalled = true;  /* loop_post stops re-reconciling this turn */
            goto stalled;
        }
        if (c->state == C_DEAD && conn_refs(c) == 0 && !c->on_closeq)
            conn_free(c);
        return;
    }
    switch (c->state) {
    case C_CONNECTING:
        if (!c->connect_inflight && !c->connect_done) {
            if (!(sqe = loop_sqe(l)))
                goto stalled;
            io_uring_prep_connect(sqe, c->fd, (struct sockaddr *)&c->addr, c->addr_len);
            io_uring_sqe_set_data(sqe, &c->op_connect);
            c->connect_inflight = true;
        }
        return;
    case C_OPEN:
        if (!c->recv_armed && !c->close_after_send && !c->peer_eof && c->recv_direct && !c->delivering) {
            size_t room = c->in_cap - c->in_off - c->in_len;
            if (room < RIO_DIRECT_MIN) {
                if (c->in_len >= c->in_max) {
                    conn_fail(c, -EMSGSIZE); /* nothing consumed up to the input limit */
                    return;
                }
                size_t want = c->in_cap ? RIO_DIRECT_ROOM : RIO_BUF_SIZE; /* the first: a HELLO */
                if (want > c->in_max - c->in_len)
                    want = c->in_max - c->in_len;
                int r = in_reserve(c, want);
                if (r < 0) {
                    conn_fail(c, r);
                    return;
                }
                room = c->in_cap - c->in_off - c->in_len;
            }
            if (room > RIO_RECV_MAX)
                room = RIO_RECV_MAX;
            if (!(sqe = loop_sqe(l)))
                goto stalled;
            /* `in` stays where it is until this completes: nothing else
             * grows, moves or frees it meanwhile (conn_terminal leaves it) */
            io_uring_prep_recv(sqe, c->fd, c->in + c->in_off + c->in_len, room, 0);
            io_uring_sqe_set_data(sqe, &c->op_recv);
            c->recv_armed = true;
        }
        if (!c->recv_armed && !c->close_after_send && !c->peer_eof && !c->recv_direct) {
            if (!(sqe = loop_sqe(l)))
                goto stalled;
            /* Multishot: one SQE keeps delivering into provided buffers until
             * it ends (EOF, error, ENOBUFS, or the kernel drops F_MORE). */
            io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
            sqe->flags |= IOSQE_BUFFER_SELECT;
            sqe->buf_group = RIO_BGID;
            io_uring_sqe_set_data(sqe, &c->op_recv);
            c->recv_armed = true;
        }
        if (!c->send_inflight) {
            if (c->tls && rio_tls_ready(c->tls) && !c->fail_after_send && (c->pt_len || c->close_after_send)) {
                tls_encrypt_pending(c);
                if (c->state != C_OPEN)
                    return;
            }
            rio_conn_next_send_internal(c);
            if (c->tx_off < tx_total(c)) {
                if (!(sqe = loop_sqe(l)))
                    goto stalled;
                if (c->n_ts) {
                    tx_iov_build(c);
                    io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
                    l->st.shared_sends++;
                } else {
                    size_t n = c->tx_len - c->tx_off;
                    if (n > RIO_SEND_MAX)
                        n = RIO_SEND_MAX;
                    /* MSG_NOSIGNAL: a peer that went away yields -EPIPE, not SIGPIPE */
                    io_uring_prep_send(sqe, c->fd, c->tx + c->tx_off, n, MSG_NOSIGNAL);
                }
                io_uring_sqe_set_data(sqe, &c->op_send);
                c->send_inflight = true;
                l->st.sends++;
            } else if (c->close_after_send) {
                conn_fail(c, c->fail_after_send);
            }
        }
        return;
    case C_CLOSING:
        return; /* loop_post runs the terminal callback, then marks it dirty again */
    case C_DEAD:
        /* Cancel whatever is still in flight; the conn is freed after the last
         * CQE (cancels included), so no CQE can reach freed memory. */
        if (c->recv_armed && !c->recv_cancelled) {
            if (!(sqe = loop_sqe(l)))
                goto stalled;
            io_uring_prep_cancel(sqe, &c->op_recv, 0);
            io_uring_sqe_set_data(sqe, &c->op_cancel);
            c->recv_cancelled = true;
            c->cancels++;
        }
        if (c->send_inflight && !c->send_cancelled) {
            if (!(sqe = loop_sqe(l)))
                goto stalled;
            io_uring_prep_cancel(sqe, &c->op_send, 0);
            io_uring_sqe_set_data(sqe, &c->op_cancel);
            c->send_cancelled = true;
            c->cancels++;
        }
        if (c->connect_inflight && !c->connect_cancelled) {
            if (!(sqe = loop_sqe(l)))
                goto stalled;
            io_uring_prep_cancel(sqe, &c->op_connect, 0);
            io_uring_sqe_set_data(sqe, &c->op_cancel);
            c->connect_cancelled = true;
            c->cancels++;
        }
        if (conn_refs(c) == 0 && !c->on_closeq)
            conn_free(c);
        return;
    }
    return;
stalled:
    conn_mark_dirty(c);
}

/* The terminal callback, then discard buffered data (tx stays until free: an
 * in-flight send may still read it). */
static void conn_terminal(struct rio_conn *c)
{
    struct rio_loop *l = c->loop;
    assert(c->state == C_CLOSING);
    c->state = C_DEAD;
    l->st.conns_open--;
    if (!c->silent) {
        /* An outgoing conn that never connected still hears about its connect
         * first (once), so on_connect is never skipped; then every conn ends
         * in on_close, the one place users release their state. */
        if (!c->was_open && l->h.on_connect)
            l->h.on_connect(l->ctx, c, c->close_err ? c->close_err : -ECANCELED);
        if (l->h.on_close)
            l->h.on_close(l->ctx, c, c->close_err);
        l->deferred_calls++;
    }
    if (!c->recv_direct) { /* a direct recv in flight writes into `in`: freed with the conn */
        free(c->in);
        c->in = NULL;
        c->in_cap = c->in_len = c->in_off = 0;
    }
    free(c->q);
    c->q = NULL;
    c->q_cap = c->q_len = 0;
    if (c->qs)
        segs_release(c->qs, &c->n_qs, &c->qs_bytes); /* ts stays: a send in flight may read it */
    free(c->pt);
    c->pt = NULL;
    c->pt_cap = c->pt_len = 0;
    /* close(fd) waits for conn_free, but tell the peer now: shutdown makes it
     * see EOF at once even while our cancels are in flight */
    if (c->fd >= 0)
        (void)shutdown(c->fd, SHUT_RDWR);
    conn_mark_dirty(c);
}

/* ---- listeners ---- */

static void listener_free(struct rio_listener *ls)
{
    struct rio_loop *l = ls->loop;
    if (ls->prev)
        ls->prev->next = ls->next;
    else
        l->listeners = ls->next;
    if (ls->next)
        ls->next->prev = ls->prev;
    close(ls->fd);
    free(ls);
}

static void listener_reconcile(struct rio_listener *ls)
{
    struct rio_loop *l = ls->loop;
    struct io_uring_sqe *sqe;
    if (ls->threaded) { /* the I/O threads accept on their copies of the socket */
        if (ls->closing)
            listener_free(ls);
        return;
    }
    if (ls->closing) {
        if (ls->accept_armed && !ls->accept_cancelled) {
            if (!(sqe = loop_sqe(l)))
                goto stalled;
            io_uring_prep_cancel(sqe, &ls->op_accept, 0);
            io_uring_sqe_set_data(sqe, &ls->op_cancel);
            ls->accept_cancelled = true;
            ls->cancels++;
        }
        if (ls->retry_armed && !ls->retry_cancelled) {
            if (!(sqe = loop_sqe(l)))
                goto stalled;
            io_uring_prep_cancel(sqe, &ls->op_retry, 0);
            io_uring_sqe_set_data(sqe, &ls->op_cancel);
            ls->retry_cancelled = true;
            ls->cancels++;
        }
        if (!ls->accept_armed && !ls->retry_armed && ls->cancels == 0)
            listener_free(ls);
        return;
    }
    if (ls->accept_armed || ls->retry_armed)
        return;
    if (!(sqe = loop_sqe(l)))
        goto stalled;
    if (ls->want_retry) {
        ls->retry_ts.tv_sec = 0;
        ls->retry_ts.tv_nsec = RIO_ACCEPT_RETRY_NS;
        io_uring_prep_timeout(sqe, &ls->retry_ts, 0, 0);
        io_uring_sqe_set_data(sqe, &ls->op_retry);
        ls->retry_armed = true;
        ls->want_retry = false;
    } else {
        /* Blocking accepted sockets: io_uring does the waiting (poll-driven),
         * and non-blocking ones would only add EAGAIN paths. */
        io_uring_prep_multishot_accept(sqe, ls->fd, NULL, NULL, SOCK_CLOEXEC);
        io_uring_sqe_set_data(sqe, &ls->op_accept);
        ls->accept_armed = true;
    }
    return;
stalled:
    listener_mark_dirty(ls);
}

/* ---- the post phase: deferred callbacks and SQE preparation ---- */

static void wake_reconcile(struct rio_loop *l)
{
    struct io_uring_sqe *sqe;
    if (l->destroying) {
        if (l->wake_armed && !l->wake_cancelled && (sqe = loop_sqe(l))) {
            io_uring_prep_cancel(sqe, &l->op_wake, 0);
            io_uring_sqe_set_data(sqe, &l->op_wcancel);
            l->wake_cancelled = true;
            l->wake_cancels++;
        }
        return;
    }
    if (!l->wake_armed && (sqe = loop_sqe(l))) {
        io_uring_prep_poll_multishot(sqe, l->wake_fd, POLLIN);
        io_uring_sqe_set_data(sqe, &l->op_wake);
        l->wake_armed = true;
    }
}

/* Run terminal callbacks queued by rio_close and by errors (if callbacks),
 * then reconcile every dirty conn and listener (which never calls back).
 * Callbacks may queue more of both, so repeat until quiet (each conn closes
 * once, so this ends). */
static void loop_post(struct rio_loop *l, bool callbacks)
{
    l->sq_stalled = false;
    for (;;) {
        while (callbacks && l->closeq_head) {
            struct rio_conn *c = l->closeq_head;
            l->closeq_head = c->closeq_next;
            if (!l->closeq_head)
                l->closeq_tail = NULL;
            c->on_closeq = false;
            c->closeq_next = NULL;
            conn_terminal(c);
        }
        struct rio_conn *list = l->dirty_head;
        l->dirty_head = l->dirty_tail = NULL;
        while (list) {
            struct rio_conn *c = list;
            list = c->dirty_next;
            c->on_dirty = false;
            c->dirty_next = NULL;
            if (l->sq_stalled)
                conn_mark_dirty(c);
            else
                conn_reconcile(c);
        }
        struct rio_listener *ll = l->ldirty;
        l->ldirty = NULL;
        while (ll) {
            struct rio_listener *ls = ll;
            ll = ls->dirty_next;
            ls->on_dirty = false;
            listener_reconcile(ls);
        }
        wake_reconcile(l);
        if ((!callbacks || !l->closeq_head) && (l->sq_stalled || !l->dirty_head))
            break;
    }
}

/* ---- completions ---- */

/* The peer's EOF on an open conn: on_eof may keep it for the replies still
 * owed (a client that shut down its sending side waits for them); else it
 * closes as before. */
static void conn_eof(struct rio_conn *c)
{
    struct rio_loop *l = c->loop;
    /* a second EOF: the TCP FIN after a TLS close_notify that on_eof kept
     * the conn for (the multishot recv was still armed); nothing new */
    if (c->peer_eof && c->tls && c->state == C_OPEN)
        return;
    if (c->state == C_OPEN && !c->close_after_send && !c->peer_eof && l->h.on_eof) {
        c->peer_eof = true; /* before the call: a recv is never armed again */
        if (l->h.on_eof(l->ctx, c) || c->state != C_OPEN)
            return;
    }
    conn_fail(c, 0);
}

static void handle_recv(struct rio_loop *l, struct rio_conn *c, int res, unsigned flags)
{
    if (!(flags & IORING_CQE_F_MORE)) {
        /* The multishot ended (error, EOF, ENOBUFS, or the kernel's choice):
         * reconcile re-arms it if the conn is still open. */
        c->recv_armed = false;
        if (c->state == C_OPEN && res != 0 && !c->recv_direct) /* a direct recv is one-shot */
            l->st.recv_rearms++;
        conn_mark_dirty(c);
    }
    if (flags & IORING_CQE_F_BUFFER) {
        unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
        if (res > 0 && c->state == C_OPEN && !c->close_after_send) {
            l->st.recv_cqes++;
            l->st.recv_bytes += (uint64_t)res;
            conn_input(c, l->bufs + (size_t)bid * RIO_BUF_SIZE, (size_t)res);
        }
        buf_return(l, bid); /* always, even for a dead conn */
    } else if (res > 0) { /* a direct recv: the bytes are in `in` already */
        assert(c->recv_direct);
        assert((size_t)res <= c->in_cap - c->in_off - c->in_len);
        if (c->state == C_OPEN && !c->close_after_send) {
            l->st.recv_cqes++;
            l->st.recv_bytes += (uint64_t)res;
            c->in_len += (size_t)res;
            in_deliver(c); /* this recv has completed: none is in flight */
        }
    }
    if (res > 0)
        return;
    if (res == 0) { /* peer EOF */
        /* mid-handshake: the other side refused us or is not TLS; a
         * connection closed before sending anything (a port probe, a health
         * check) is just a close */
        if (c->tls && !rio_tls_ready(c->tls) && c->state == C_OPEN && (c->tls_fed || !c->was_open)) {
            rio_tls_conn_set_error(c->tls, "the other side closed the connection during the TLS handshake "
                                           "(it refused our certificate, or does not speak TLS)");
            conn_fail(c, -ECONNRESET);
            return;
        }
        conn_eof(c);
        return;
    }
    switch (-res) {
    case ENOBUFS: /* every provided buffer was in use; they are back now */
        l->st.recv_enobufs++;
        break;
    case EINTR:
    case EAGAIN:
        break; /* transient: re-armed by reconcile */
    case ECANCELED:
        break; /* our cancel (dead conn) */
    default: /* ECONNRESET, ETIMEDOUT, EHOSTUNREACH, ENOTCONN, EINVAL... */
        conn_fail(c, res);
        break;
    }
}

static void handle_send(struct rio_loop *l, struct rio_conn *c, int res)
{
    c->send_inflight = false;
    conn_mark_dirty(c);
    if (c->state != C_OPEN)
        return; /* closing: output is discarded */
    if (res > 0) {
        size_t n = (size_t)res;
        assert(n <= tx_total(c) - c->tx_off);
        l->st.send_bytes += n;
        c->send_retries = 0;
        c->tx_off += n;
        if (c->tx_off < tx_total(c)) {
            l->st.short_sends++; /* resumed by reconcile from tx_off */
        } else {
            rio_conn_sent_all_internal(c);
        }
        return;
    }
    if (res == 0) { /* nothing taken from a non-empty send: the socket is unusable */
        conn_fail(c, -EPIPE);
        return;
    }
    switch (-res) {
    case EINTR:
    case EAGAIN:
        return; /* retried by reconcile */
    case ENOBUFS:
    case ENOMEM: /* network stack short of memory: retry, but not forever */
        if (++c->send_retries <= RIO_SEND_RETRY_MAX)
            return;
        conn_fail(c, res);
        return;
    case ECANCELED: /* not ours (we only cancel dead conns): retry */
        return;
    default: /* EPIPE, ECONNRESET, ETIMEDOUT, EHOSTUNREACH... */
        conn_fail(c, res);
        return;
    }
}

static void handle_connect(struct rio_loop *l, struct rio_conn *c, int res)
{
    c->connect_inflight = false;
    c->connect_done = true;
    conn_mark_dirty(c);
    if (c->state != C_CONNECTING)
        return; /* closed meanwhile: terminal callback already queued or run */
    if (res < 0) {
        conn_fail(c, res); /* ECONNREFUSED, ETIMEDOUT, ENETUNREACH, ECANCELED... */
        return;
    }
    c->state = C_OPEN;
    if (c->tls) {
        tls_run(c); /* the ClientHello; on_connect(0) once the handshake completes */
        return;
    }
    c->was_open = true;
    if (l->h.on_connect)
        l->h.on_connect(l->ctx, c, 0);
}

static void handle_accept(struct rio_loop *l, struct rio_listener *ls, int res, unsigned flags)
{
    if (!(flags & IORING_CQE_F_MORE)) {
        ls->accept_armed = false;
        listener_mark_dirty(ls);
    }
    if (res >= 0) {
        int fd = res;
        if (ls->closing || l->destroying) {
            close(fd);
            return;
        }
        l->st.accepts++;
        sock_tune(fd);
        struct rio_conn *c = conn_new(l, fd, C_OPEN);
        if (!c) { /* out of memory: shed this client, keep serving others */
            close(fd);
            l->st.accept_errors++;
            return;
        }
        c->was_open = true;
        c->addr_len = sizeof c->addr;
        if (getpeername(fd, (struct sockaddr *)&c->addr, &c->addr_len) < 0)
            c->addr_len = 0;
        int keep = l->h.on_accept ? l->h.on_accept(l->ctx, ls, c) : 0;
        if (keep < 0) {
            c->silent = true;
            conn_fail(c, 0);
        }
        conn_mark_dirty(c);
        return;
    }
    if (ls->closing)
        return; /* our cancel, or EINVAL from the shutdown in rio_listener_close */
    l->st.accept_errors++;
    switch (-res) {
    case ECANCELED: /* not ours: re-armed by reconcile */
        return;
    case EINTR:
    case EAGAIN:
    case ECONNABORTED: /* the client gave up before we accepted it */
        return;
    default:
        /* EMFILE, ENFILE, ENOBUFS, ENOMEM (resources) or anything unexpected:
         * pause before re-arming, or we would spin on the same error. Clients
         * wait in the backlog meanwhile. */
        fprintf(stderr, "rio: accept on port %u: %s; retrying in 100 ms\n", ls->port, strerror(-res));
        if (!(flags & IORING_CQE_F_MORE))
            ls->want_retry = true;
        return;
    }
}

static void handle_wake(struct rio_loop *l, int res, unsigned flags)
{
    if (!(flags & IORING_CQE_F_MORE))
        l->wake_armed = false;
    if (res < 0)
        return; /* ECANCELED at destroy; anything else: re-armed next post */
    /* Drain the counter so the next poll waits for a new wake (a wake
     * after this store sets the flag again, and writes the counter). */
    atomic_store(&l->wake_pending, 0);
    uint64_t v;
    while (read(l->wake_fd, &v, sizeof v) == (ssize_t)sizeof v) {
    }
    l->st.wakes++;
}

static void dispatch(struct rio_loop *l, uint64_t ud, int res, unsigned flags)
{
    struct rio_op *op = (struct rio_op *)(uintptr_t)ud;
    if (!op || ud == LIBURING_UDATA_TIMEOUT)
        return;
    l->st.cqes++;
    switch (op->kind) {
    case OP_RECV:
        handle_recv(l, container_of(op, struct rio_conn, op_recv), res, flags);
        return;
    case OP_SEND:
        handle_send(l, container_of(op, struct rio_conn, op_send), res);
        return;
    case OP_CONNECT:
        handle_connect(l, container_of(op, struct rio_conn, op_connect), res);
        return;
    case OP_CANCEL: {
        struct rio_conn *c = container_of(op, struct rio_conn, op_cancel);
        assert(c->cancels > 0);
        c->cancels--;
        conn_mark_dirty(c);
        return;
    }
    case OP_ACCEPT:
        handle_accept(l, container_of(op, struct rio_listener, op_accept), res, flags);
        return;
    case OP_RETRY: {
        struct rio_listener *ls = container_of(op, struct rio_listener, op_retry);
        ls->retry_armed = false; /* -ETIME when it fired, -ECANCELED on close */
        listener_mark_dirty(ls);
        return;
    }
    case OP_LCANCEL: {
        struct rio_listener *ls = container_of(op, struct rio_listener, op_cancel);
        assert(ls->cancels > 0);
        ls->cancels--;
        listener_mark_dirty(ls);
        return;
    }
    case OP_WAKE:
        handle_wake(l, res, flags);
        return;
    case OP_WCANCEL:
        l->wake_cancels--;
        return;
    case OP_FWRITE: {
        struct rio_fwrite *f = container_of(op, struct rio_fwrite, op);
        assert(f->busy);
        f->busy = false;
        l->fw_busy--;
        l->file_wait_spent = false;
        f->done(f->ctx, res);
        return;
    }
    case OP_DPOLL:
        /* the write ring has completions (or the poll ended early:
         * -ECANCELED at teardown): reap them; armed again before the next
         * sleep while a write is in flight */
        l->dpoll_armed = false;
        (void)res;
        (void)reap_file_writes(l);
        return;
    default:
        /* A CQE with a buffer must still return it; unknown kinds are bugs. */
        assert(!"rio: completion with unknown op kind");
        return;
    }
}

/* The file writes that finished: their callbacks, in completion order.
 * Bounded by the writes in flight. */
/* Up to max completions of `ring`, one at a time, each copied and marked
 * seen before it is handled, so the CQ never holds an entry we are still
 * reading while callbacks run. Bounded so a flood cannot starve the caller.
 * Returns how many were handled. */
static unsigned reap_ring(struct rio_loop *l, struct io_uring *ring, unsigned max)
{
    unsigned n = 0;
    for (; n < max; n++) {
        struct io_uring_cqe *cqe;
        if (io_uring_peek_cqe(ring, &cqe) != 0 || !cqe)
            break;
        uint64_t ud = cqe->user_data;
        int res = cqe->res;
        unsigned flags = cqe->flags;
        io_uring_cqe_seen(ring, cqe);
        dispatch(l, ud, res, flags);
    }
    return n;
}

static unsigned reap_file_writes(struct rio_loop *l)
{
    return l->dring_ok ? reap_ring(l, &l->dring, RIO_FWRITES) : 0; /* its only SQEs are rio_write's */
}

/* Before a sleep on the main ring with a write in flight on the write
 * ring: a poll on that ring's fd, so that the write's completion ends the
 * sleep. One-shot; it completes at once if a completion is already there. */
static void arm_file_poll(struct rio_loop *l)
{
    if (!l->dring_ok || !l->fw_busy || l->dpoll_armed || l->destroying)
        return;
    struct io_uring_sqe *sqe = loop_sqe(l);
    if (!sqe)
        return; /* the sleep is bounded by its timeout; armed next turn */
    io_uring_prep_poll_add(sqe, l->dring.ring_fd, POLLIN);
    io_uring_sqe_set_data(sqe, &l->op_dpoll);
    l->dpoll_armed = true;
}

/* The wait of RABIA_IO_WAIT=eventfd (l->evwait_fd): drain the eventfd, then
 * submit and run deferred task work; with nothing completed, sleep in ppoll
 * until the kernel signals the eventfd (a completion or task work queued
 * after the drain signals it, so none is missed) or the timeout passes.
 * Returns what io_uring_submit_and_wait_timeout would: >= 0, -ETIME, or a
 * negative errno. */
static int evwait(struct rio_loop *l, const struct __kernel_timespec *kts)
{
    assert(l->evwait_fd >= 0);
    uint64_t v;
    while (read(l->evwait_fd, &v, sizeof v) == (ssize_t)sizeof v)
        ; /* non-blocking: ends with EAGAIN once drained */
    int r = io_uring_submit_and_get_events(&l->ring);
    if (r < 0 || io_uring_cq_ready(&l->ring) > 0)
        return r;
    struct timespec ts = {.tv_sec = (time_t)kts->tv_sec, .tv_nsec = (long)kts->tv_nsec};
    struct pollfd p = {.fd = l->evwait_fd, .events = POLLIN, .revents = 0};
    int pr = ppoll(&p, 1, &ts, NULL);
    if (pr < 0)
        return -errno;
    if (pr == 0)
        return -ETIME;
    return io_uring_submit_and_get_events(&l->ring);
}

int rio_run_once(struct rio_loop *l, uint64_t timeout_us)
{
    return rio_run_once_min(l, timeout_us, 1);
}

int rio_run_once_min(struct rio_loop *l, uint64_t timeout_us, unsigned min_events)
{
    /* A callback calling rio_run_once (or rio_loop_destroy) would dispatch
     * completions under its own caller's feet. */
    assert(!l->in_run);
    l->in_run = true;
    int r = run_once(l, timeout_us, min_events, 0);
    l->in_run = false;
    return r;
}

int rio_run_once_file_first(struct rio_loop *l, uint64_t timeout_us, uint64_t cap_us)
{
    assert(!l->in_run);
    assert(cap_us > 0);
    l->in_run = true;
    int r = run_once(l, timeout_us, 1, cap_us);
    l->in_run = false;
    return r;
}

static int run_once(struct rio_loop *l, uint64_t timeout_us, unsigned min_events, uint64_t file_cap_us)
{
    l->deferred_calls = 0;
    loop_post(l, true); /* sends and closes requested outside the loop */
    unsigned handled = l->deferred_calls;
    /* finished while the caller ran: no sleep this turn (counted, not
     * fw_busy's difference: a callback may start the next write) */
    handled += reap_file_writes(l);
    if (l->n_thr) {
        /* the I/O threads' messages (accepts, input, closes, finished sends):
         * their callbacks run here, as a completion's would */
        unsigned got = rio_threads_drain(l);
        if (got) {
            l->deferred_calls = 0;
            loop_post(l, true);
            handled += got + l->deferred_calls;
        }
        if (l->thr_stalled) { /* a thread's ring was full: retry soon, without spinning */
            l->thr_stalled = false;
            if (timeout_us > 200)
                timeout_us = 200;
        }
        /* Sends and closes queued between turns (the caller's timers, a
         * deferred pipeline) went to the threads in the loop_post above:
         * wake them before this turn sleeps, not after. Woken only at the
         * end of the turn, such a reply waited for the loop's timeout or the
         * thread's own 100 ms (test_reply_between_turns: 100 ms a round
         * trip for a reply queued 20 ms after its request). */
        rio_threads_wake(l);
        if (timeout_us && !handled) {
            /* Sleep only if no thread queued anything meanwhile; a thread
             * that queues after this store sees it and wakes us (Dekker:
             * both sides store, fence, then load the other's). */
            atomic_store(&l->sleeping, 1);
            if (rio_threads_pending(l))
                handled++;
        }
    }
    int r;
    bool slept_on_file = false;
    l->st.turns++;
    if (timeout_us == 0 || handled > 0) {
        /* Submit and run deferred task work (DEFER_TASKRUN posts completions
         * only when we enter the kernel asking for events), without waiting. */
        r = io_uring_submit_and_get_events(&l->ring);
    } else {
        struct __kernel_timespec ts = {
            .tv_sec = (long long)(timeout_us / 1000000u),
            .tv_nsec = (long long)(timeout_us % 1000000u) * 1000,
        };
        struct io_uring_cqe *cqe = NULL;
        l->st.waits++;
        /* once per write: a disk that stalls for seconds gets the ordinary
         * wake-ups after the cap, not a turn every cap */
        bool file_first = file_cap_us && l->dring_ok && l->fw_busy && !l->file_wait_spent && l->evwait_fd < 0 &&
                          !atomic_load(&l->wake_pending);
        if (!file_first)
            arm_file_poll(l); /* the write's completion ends this sleep too */
        if (file_first) {
            /* this turn's sends first (the main ring is not entered again
             * until the write is done), then the sleep on the write ring */
            struct __kernel_timespec fts = ts;
            if (timeout_us > file_cap_us) {
                fts.tv_sec = (long long)(file_cap_us / 1000000u);
                fts.tv_nsec = (long long)(file_cap_us % 1000000u) * 1000;
            }
            r = io_uring_submit(&l->ring);
            if (r >= 0) {
                struct io_uring_cqe *fc = NULL;
                slept_on_file = true;
                l->st.waits_file++;
                int w = io_uring_wait_cqe_timeout(&l->dring, &fc, &fts);
                if (w != 0) {
                    l->st.waits_file_timeouts++; /* -ETIME, -EINTR: the main ring below all the same */
                    l->file_wait_spent = w == -ETIME && timeout_us > file_cap_us; /* the cap, not the caller's timeout */
                }
                /* what the network brought meanwhile, without sleeping */
                r = io_uring_submit_and_get_events(&l->ring);
            }
        } else if (l->evwait_fd >= 0)
            r = evwait(l, &ts);
        else if (min_events > 1 && !l->n_thr) {
            /* Submit first: a send that completes during submission
             * posts its CQE at once, and would count towards min_events.
             * A rio_loop_wake made before this call promises a turn that
             * does not sleep, but its completion may still be queued as
             * task work, which only an enter posts. Anything ready then
             * is handled without sleeping; completions that arrived
             * meanwhile need no enter of their own: the wait counts them. */
            r = 0;
            if (io_uring_sq_ready(&l->ring) || atomic_load(&l->wake_pending))
                r = io_uring_submit_and_get_events(&l->ring);
            if (r >= 0 && io_uring_cq_ready(&l->ring) == 0) {
                l->st.waits_several++;
                r = io_uring_wait_cqes(&l->ring, &cqe, min_events, &ts, NULL);
                /* a timeout with some ready returns 0, not -ETIME */
                if (r == -ETIME || io_uring_cq_ready(&l->ring) < min_events)
                    l->st.waits_several_timeouts++;
            }
        } else
            r = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
    }
    turn_us = rio_now_us();
    if (r < 0) {
        switch (-r) {
        case ETIME:  /* timed out */
        case EINTR:  /* a signal: rio_loop_wake's CQE follows */
        case EAGAIN: /* kernel short of memory for the request: try again next call */
        case EBUSY:  /* CQ overflow backlog: reaping below makes room */
            break;
        default: /* EEXIST (wrong thread), EBADF, EFAULT: the caller's bug or a dead ring */
            return r;
        }
    }
    /* the write's callback before what arrived during it */
    handled += reap_file_writes(l);
    handled += reap_ring(l, &l->ring, RIO_CQ_ENTRIES);
    if (l->n_thr)
        atomic_store(&l->sleeping, 0);
    if (l->n_thr && slept_on_file)
        handled += rio_threads_drain(l); /* what the threads brought during it, this turn too */
    l->deferred_calls = 0;
    loop_post(l, true);
    handled += l->deferred_calls;
    if (l->n_thr)
        rio_threads_wake(l); /* threads with new messages from this turn */
    return (int)handled;
}

int rio_write(struct rio_loop *l, int fd, const void *buf, uint32_t len, uint64_t off, int rw_flags,
              rio_write_fn done, void *ctx)
{
    if (l->destroying)
        return -ECANCELED;
    struct rio_fwrite *f = NULL;
    for (unsigned i = 0; i < RIO_FWRITES && !f; i++)
        if (!l->fw[i].busy)
            f = &l->fw[i];
    if (!f)
        return -EBUSY;
    if (!l->dring_tried) {
        /* the write ring (loop_internal.h), at the first write: loops that
         * never write a file (I/O threads, tests) do without it. Plain
         * flags: a ring whose completions wait as deferred task work for
         * its own enter would never look ready to the main ring's poll. */
        l->dring_tried = true;
        int r = io_uring_queue_init(2 * RIO_FWRITES, &l->dring, 0);
        l->dring_ok = r == 0;
        if (r < 0) /* not fatal: the writes share the main ring, as before it */
            fprintf(stderr, "rio: no ring of its own for file writes (%s): they share the main ring, and a "
                            "sleep through a write is an ordinary one (raise the open-files limit, "
                            "LimitNOFILE)\n", strerror(-r));
    }
    struct io_uring *ring = l->dring_ok ? &l->dring : &l->ring;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) {
        int r = io_uring_submit(ring);
        if (r < 0)
            return r;
        sqe = io_uring_get_sqe(ring);
        if (!sqe)
            return -EAGAIN;
    }
    io_uring_prep_write(sqe, fd, buf, len, off);
    sqe->rw_flags = rw_flags;
    f->op.kind = OP_FWRITE;
    f->busy = true;
    f->done = done;
    f->ctx = ctx;
    l->fw_busy++;
    io_uring_sqe_set_data(sqe, &f->op);
    /* submitted now: a durable write should not wait for the next turn.
     * Leaving it to the turn's one io_uring_enter (with the sends) took the
     * proxy's enters per SET at -P 1 from 0.20 to 0.14 (strace -c) but cost
     * 8% of the throughput (48.5 k -> 44 k SET/s, medians of six runs
     * alternating the builds): measured, not merely argued. */
    int r = io_uring_submit(ring);
    return r < 0 ? r : 0;
}

int rio_flush(struct rio_loop *l)
{
    loop_post(l, false); /* prepare SQEs only: callbacks belong to rio_run_once */
    int r = io_uring_submit(&l->ring);
    return r < 0 ? r : 0;
}

void rio_loop_wake(struct rio_loop *l)
{
    int saved = errno; /* async-signal-safe: leave errno as we found it */
    uint64_t one = 1;
    atomic_store(&l->wake_pending, 1); /* lock-free: safe in a signal handler */
    /* EAGAIN means the counter is saturated: the loop is already woken */
    ssize_t w = write(l->wake_fd, &one, sizeof one);
    (void)w;
    errno = saved;
}

/* ---- addresses ---- */

static int lookup_name(const char *host, uint16_t port, bool passive, struct sockaddr_storage *ss, socklen_t *len,
                       int max);

static int resolve(const char *host, uint16_t port, bool passive, struct sockaddr_storage *ss,
                   socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (!host || !*host || !strcmp(host, "*")) {
        if (!passive)
            return -EINVAL;
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        in4->sin_addr.s_addr = htonl(INADDR_ANY);
        *len = sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        *len = sizeof *in4;
        return 0;
    }
    char tmp[INET6_ADDRSTRLEN + 2];
    const char *h6 = host;
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof tmp) {
        memcpy(tmp, host + 1, hl - 2);
        tmp[hl - 2] = 0;
        h6 = tmp;
    }
    if (inet_pton(AF_INET6, h6, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = sizeof *in6;
        return 0;
    }
    /* A name: synchronous lookup (startup and reconnect paths only). */
    int n = lookup_name(host, port, passive, ss, len, 1);
    return n < 0 ? n : 0;
}

/* getaddrinfo for a name: up to max IPv4/IPv6 stream addresses, in its
 * order, with the port set. The count (>= 1) or a negative errno. */
static int lookup_name(const char *host, uint16_t port, bool passive, struct sockaddr_storage *ss, socklen_t *len,
                       int max)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    int g = getaddrinfo(host, NULL, &hints, &res);
    if (g != 0) {
        switch (g) {
        case EAI_MEMORY: return -ENOMEM;
        case EAI_AGAIN: return -EAGAIN;
        case EAI_SYSTEM: return errno ? -errno : -EADDRNOTAVAIL;
        default: return -EADDRNOTAVAIL;
        }
    }
    int n = 0;
    for (struct addrinfo *a = res; a && n < max; a = a->ai_next) {
        if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) && a->ai_addrlen <= sizeof *ss) {
            memset(&ss[n], 0, sizeof ss[n]);
            memcpy(&ss[n], a->ai_addr, a->ai_addrlen);
            len[n] = a->ai_addrlen;
            if (a->ai_family == AF_INET)
                ((struct sockaddr_in *)&ss[n])->sin_port = htons(port);
            else
                ((struct sockaddr_in6 *)&ss[n])->sin6_port = htons(port);
            n++;
        }
    }
    freeaddrinfo(res);
    return n ? n : -EADDRNOTAVAIL;
}

static int format_addr(const struct sockaddr_storage *ss, socklen_t len, char *buf, size_t n)
{
    char ip[INET6_ADDRSTRLEN];
    int w;
    if (ss->ss_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        if (!inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip))
            return -errno;
        w = snprintf(buf, n, "%s:%u", ip, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        if (!inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip))
            return -errno;
        w = snprintf(buf, n, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else {
        return -EAFNOSUPPORT;
    }
    if (w < 0)
        return -EINVAL;
    return (size_t)w < n ? 0 : -ENOSPC;
}

/* ---- public: connections ---- */

bool rio_host_is_literal(const char *host)
{
    struct in6_addr a6;
    char tmp[INET6_ADDRSTRLEN + 2];
    if (!host || !*host)
        return false;
    if (inet_pton(AF_INET, host, &a6) == 1)
        return true;
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof tmp) {
        memcpy(tmp, host + 1, hl - 2);
        tmp[hl - 2] = 0;
        host = tmp;
    }
    return inet_pton(AF_INET6, host, &a6) == 1;
}

int rio_resolve(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len, int max)
{
    if (max < 1)
        return -EINVAL;
    if (rio_host_is_literal(host)) {
        int r = resolve(host, port, false, ss, len);
        return r < 0 ? r : 1;
    }
    if (!host || !*host)
        return -EINVAL;
    return lookup_name(host, port, false, ss, len, max);
}

int rio_connect(struct rio_loop *l, const char *host, uint16_t port, void *user,
                struct rio_conn **out)
{
    if (l->destroying)
        return -ESHUTDOWN;
    struct sockaddr_storage ss;
    socklen_t len;
    int r = resolve(host, port, false, &ss, &len);
    if (r < 0)
        return r;
    return rio_connect_addr(l, &ss, len, user, out);
}

int rio_connect_addr(struct rio_loop *l, const struct sockaddr_storage *addr, socklen_t len, void *user,
                     struct rio_conn **out)
{
    if (l->destroying)
        return -ESHUTDOWN;
    if (len == 0 || len > (socklen_t)sizeof *addr)
        return -EINVAL;
    struct sockaddr_storage ss = *addr;
    /* Blocking socket: IORING_OP_CONNECT and later ops wait by polling inside
     * io_uring; a non-blocking one would only surface EINPROGRESS/EAGAIN. */
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    sock_tune(fd);
    struct rio_conn *c = conn_new(l, fd, C_CONNECTING);
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    c->addr = ss;
    c->addr_len = len;
    c->user = user;
    conn_mark_dirty(c); /* the connect SQE is prepared by the loop */
    if (out)
        *out = c;
    return 0;
}

int rio_send(struct rio_conn *c, const void *p, size_t len)
{
    if (c->state != C_OPEN && c->state != C_CONNECTING)
        return -ENOTCONN;
    if (c->close_after_send)
        return -ESHUTDOWN;
    if (len == 0)
        return 0;
    size_t pend = rio_conn_pending(c);
    if (len > c->out_max || pend > c->out_max - len)
        return -ENOBUFS;
    if (c->tls) { /* plaintext: encrypted by reconcile when the next send starts */
        if (buf_grow(&c->pt, &c->pt_cap, c->pt_len, len, c->out_max, 4096) < 0)
            return -ENOMEM;
        memcpy(c->pt + c->pt_len, p, len);
        c->pt_len += len;
        if (!c->send_inflight)
            conn_mark_dirty(c);
        return 0;
    }
    if (c->q_cap - c->q_len < len) {
        size_t need = c->q_len + len;
        size_t cap = c->q_cap ? c->q_cap * 2 : 4096;
        if (cap < need)
            cap = need;
        if (cap > c->out_max)
            cap = need > c->out_max ? need : c->out_max;
        uint8_t *nb = realloc(c->q, cap); /* q is never in flight: realloc is safe */
        if (!nb)
            return -ENOMEM;
        c->q = nb;
        c->q_cap = cap;
    }
    memcpy(c->q + c->q_len, p, len);
    c->q_len += len;
    /* While a send is in flight its completion marks the conn dirty anyway. */
    if (!c->send_inflight)
        conn_mark_dirty(c);
    return 0;
}

int rio_send_shared(struct rio_conn *c, const struct rio_shared *sh, void *buf, const void *p, size_t len)
{
    assert(sh && sh->ref && sh->unref && buf && (p || !len));
    if (c->tls || c->remote || len < RIO_SHARE_MIN || c->n_qs == RIO_SHARE_SEGS)
        return rio_send(c, p, len);
    if (c->state != C_OPEN && c->state != C_CONNECTING)
        return -ENOTCONN;
    if (c->close_after_send)
        return -ESHUTDOWN;
    size_t pend = rio_conn_pending(c);
    if (len > c->out_max || pend > c->out_max - len)
        return -ENOBUFS;
    if (!c->qs) { /* once per connection: a peer link */
        c->qs = calloc(RIO_SHARE_SEGS, sizeof(*c->qs));
        c->ts = calloc(RIO_SHARE_SEGS, sizeof(*c->ts));
        c->iov = calloc(2 * RIO_SHARE_SEGS + 1, sizeof(*c->iov));
        if (!c->qs || !c->ts || !c->iov) {
            free(c->qs);
            free(c->ts);
            free(c->iov);
            c->qs = c->ts = NULL;
            c->iov = NULL;
            return rio_send(c, p, len);
        }
    }
    sh->ref(sh->ctx, buf);
    c->qs[c->n_qs++] = (struct rio_seg){.at = c->q_len, .p = p, .len = len, .sh = sh, .buf = buf};
    c->qs_bytes += len;
    c->loop->st.shared_bytes += len;
    if (!c->send_inflight)
        conn_mark_dirty(c);
    return 0;
}

size_t rio_conn_pending(const struct rio_conn *c)
{
    return (c->tx_len + c->ts_bytes - c->tx_off) + c->q_len + c->qs_bytes + c->pt_len;
}

size_t rio_conn_memory(const struct rio_conn *c)
{
    size_t segs = c->qs ? RIO_SHARE_SEGS * 2 * sizeof(*c->qs) + (2 * RIO_SHARE_SEGS + 1) * sizeof(*c->iov) : 0;
    return sizeof *c + c->in_cap + c->tx_cap + c->q_cap + c->pt_cap + segs;
}

void rio_conn_trim_idle(struct rio_conn *c, size_t keep)
{
    if (c->send_inflight || c->q_len || c->n_qs || c->tx_len || c->n_ts || c->pt_len)
        return; /* output waits or is on its way: its buffers are in use */
    if (c->q_cap > keep) {
        free(c->q); /* q is never in flight */
        c->q = NULL;
        c->q_cap = 0;
    }
    if (c->tx_cap > keep) { /* all sent, none in flight: nobody holds tx */
        free(c->tx);
        c->tx = NULL;
        c->tx_cap = c->tx_off = 0;
    }
}

int rio_conn_set_recv_direct(struct rio_conn *c)
{
    if (c->tls || c->remote)
        return -EOPNOTSUPP;
    assert(!c->recv_armed && c->in_len == 0); /* before any input */
    c->recv_direct = true;
    return 0;
}

int rio_conn_start_tls(struct rio_conn *c, const struct rio_tls_ctx *ctx, bool server)
{
    if (c->remote)
        return -EOPNOTSUPP; /* an I/O thread's connection: TLS would belong there */
    if (c->tls)
        return -EALREADY;
    if (c->state != (server ? C_OPEN : C_CONNECTING))
        return -EINVAL;
    /* nothing may have gone out in the clear */
    assert(c->q_len == 0 && c->tx_len == 0 && c->n_qs == 0 && c->n_ts == 0);
    if (c->recv_direct)
        return -EINVAL; /* TLS input goes through the engine, not straight into `in` */
    return rio_tls_conn_new(&c->tls, ctx, server);
}

bool rio_conn_is_tls(const struct rio_conn *c) { return c->tls != NULL; }

int rio_conn_tls_peer_cn(const struct rio_conn *c, char *buf, size_t len)
{
    return c->tls ? rio_tls_conn_peer_cn(c->tls, buf, len) : -ENOENT;
}

const char *rio_conn_tls_error(const struct rio_conn *c) { return c->tls ? rio_tls_conn_error(c->tls) : NULL; }

void rio_close(struct rio_conn *c)
{
    conn_fail(c, 0);
}

void rio_close_after_send(struct rio_conn *c)
{
    if (c->state != C_OPEN && c->state != C_CONNECTING)
        return;
    c->close_after_send = true;
    conn_mark_dirty(c);
}

void rio_conn_set_user(struct rio_conn *c, void *user) { c->user = user; }
void *rio_conn_user(const struct rio_conn *c) { return c->user; }

void rio_conn_set_limits(struct rio_conn *c, size_t in_max, size_t out_max)
{
    if (in_max)
        c->in_max = in_max;
    if (out_max)
        c->out_max = out_max;
}

int rio_conn_peer(const struct rio_conn *c, char *buf, size_t len)
{
    if (c->addr_len == 0)
        return -ENOTCONN;
    return format_addr(&c->addr, c->addr_len, buf, len);
}

int rio_conn_fd(const struct rio_conn *c) { return c->fd; }

int rio_conn_set_user_timeout(struct rio_conn *c, unsigned ms)
{
    if (c->remote || c->fd < 0)
        return -EBADF;
    unsigned ut = ms;
    int idle = ms / 2000 ? (int)(ms / 2000) : 1, intvl = 1, cnt = (int)(ms / 1000) + 1;
    if (setsockopt(c->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof ut) < 0 ||
        setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) < 0 ||
        setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl) < 0 ||
        setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt) < 0)
        return -errno;
    return 0;
}

int rio_conn_local(const struct rio_conn *c, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (c->remote) /* an I/O thread's socket: the address its thread read at accept */
        return c->rlocal_len ? format_addr(&c->rlocal, c->rlocal_len, buf, len) : -ENOTCONN;
    if (c->fd < 0) return -ENOTCONN;
    if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) < 0) return -errno;
    return format_addr(&ss, sl, buf, len);
}

/* ---- public: listeners ---- */

int rio_listen(struct rio_loop *l, const char *host, uint16_t port, void *user,
               struct rio_listener **out)
{
    if (l->destroying)
        return -ESHUTDOWN;
    int fd;
    uint16_t bound;
    int r = rio_listen_socket_internal(host, port, &fd, &bound);
    if (r < 0)
        return r;
    r = rio_listener_adopt_internal(l, fd, bound, user, false, out);
    if (r < 0)
        close(fd);
    return r;
}

int rio_listen_socket_internal(const char *host, uint16_t port, int *fd_out, uint16_t *port_out)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int r = resolve(host, port, true, &ss, &len);
    if (r < 0)
        return r;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    /* SO_REUSEADDR: a restarted replica rebinds at once despite TIME_WAIT */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, SOMAXCONN) < 0) {
        r = -errno;
        close(fd);
        return r;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) < 0) {
        r = -errno;
        close(fd);
        return r;
    }
    *fd_out = fd;
    *port_out = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

/* A listening socket becomes one of the loop's listeners (threaded: kept
 * for the I/O threads, which accept on copies of it). The fd is the
 * listener's from here on, unless this fails. */
int rio_listener_adopt_internal(struct rio_loop *l, int fd, uint16_t port, void *user, bool threaded,
                                struct rio_listener **out)
{
    if (l->destroying)
        return -ESHUTDOWN;
    struct rio_listener *ls = calloc(1, sizeof *ls);
    if (!ls)
        return -ENOMEM;
    ls->loop = l;
    ls->fd = fd;
    ls->user = user;
    ls->threaded = threaded;
    ls->port = port;
    ls->op_accept.kind = OP_ACCEPT;
    ls->op_retry.kind = OP_RETRY;
    ls->op_cancel.kind = OP_LCANCEL;
    ls->next = l->listeners;
    if (l->listeners)
        l->listeners->prev = ls;
    l->listeners = ls;
    listener_mark_dirty(ls); /* the accept SQE is prepared by the loop */
    if (out)
        *out = ls;
    return 0;
}

void *rio_listener_user(struct rio_listener *l) { return l->user; }
uint16_t rio_listener_port(const struct rio_listener *l) { return l->port; }

void rio_listener_close(struct rio_listener *ls)
{
    if (ls->closing)
        return;
    ls->closing = true;
    /* stop new connections now; the fd itself closes after the cancels */
    (void)shutdown(ls->fd, SHUT_RDWR);
    listener_mark_dirty(ls);
}

/* ---- public: loop ---- */

void rio_loop_set_limits(struct rio_loop *l, size_t in_max, size_t out_max)
{
    if (in_max)
        l->in_max = in_max;
    if (out_max)
        l->out_max = out_max;
}

const char *rio_loop_describe(const struct rio_loop *l) { return l->desc; }

void rio_loop_stats(const struct rio_loop *l, struct rio_stats *out) { *out = l->st; }

/* Explain why io_uring_setup failed, with the fix. */
static void explain_setup_error(int r, char *err, size_t errlen)
{
    if (!err || !errlen)
        return;
    if (r == -EPERM) {
        int disabled = -1;
        FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
        if (f) {
            if (fscanf(f, "%d", &disabled) != 1)
                disabled = -1;
            fclose(f);
        }
        if (disabled == 2)
            snprintf(err, errlen, "io_uring is disabled (sysctl kernel.io_uring_disabled=2): "
                                  "set it to 0 (sysctl -w kernel.io_uring_disabled=0)");
        else if (disabled == 1)
            snprintf(err, errlen, "io_uring is restricted (sysctl kernel.io_uring_disabled=1) to "
                                  "root and the group in kernel.io_uring_group: run as a member of "
                                  "that group or set kernel.io_uring_disabled=0");
        else
            snprintf(err, errlen, "io_uring_setup: permission denied though kernel.io_uring_disabled "
                                  "is %s: a seccomp filter blocks io_uring (container runtimes' "
                                  "default profiles do): allow io_uring_setup, io_uring_enter and "
                                  "io_uring_register in the container's seccomp profile",
                     disabled == 0 ? "0" : "absent");
    } else if (r == -ENOSYS) {
        snprintf(err, errlen, "io_uring_setup: not implemented: the kernel lacks CONFIG_IO_URING or "
                              "a seccomp filter hides the syscall: use a kernel >= 6.1 with io_uring "
                              "and allow io_uring_* syscalls in the seccomp profile");
    } else if (r == -ENOMEM) {
        struct rlimit rl;
        char lim[32] = "unknown";
        if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
            if (rl.rlim_cur == RLIM_INFINITY)
                snprintf(lim, sizeof lim, "unlimited");
            else
                snprintf(lim, sizeof lim, "%llu KiB", (unsigned long long)rl.rlim_cur / 1024);
        }
        snprintf(err, errlen, "io_uring: cannot allocate the ring or buffers (ENOMEM; "
                              "RLIMIT_MEMLOCK is %s): raise it (ulimit -l, LimitMEMLOCK=infinity "
                              "in the systemd unit) or free memory", lim);
    } else if (r == -EMFILE || r == -ENFILE) {
        snprintf(err, errlen, "io_uring_setup: out of file descriptors (%s): raise ulimit -n",
                 strerror(-r));
    } else {
        snprintf(err, errlen, "io_uring_setup: %s", strerror(-r));
    }
}

/* Create the ring, preferring SINGLE_ISSUER|DEFER_TASKRUN: completions run
 * only when we ask (no task-work interrupts mid-callback) and the kernel skips
 * locking for a single submitter. Fall back only if the kernel refuses. */
static int ring_create(struct rio_loop *l, char *err, size_t errlen)
{
    static const struct {
        unsigned flags;
        const char *name;
    } tries[] = {
        {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
         "SINGLE_ISSUER|DEFER_TASKRUN"},
        {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL, "COOP_TASKRUN"},
        {0, "plain"},
    };
    int r = -EINVAL;
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        p.flags = tries[i].flags | IORING_SETUP_CQSIZE;
        p.cq_entries = RIO_CQ_ENTRIES;
        r = io_uring_queue_init_params(RIO_SQ_ENTRIES, &l->ring, &p);
        if (r == 0) {
            if (i > 0)
                fprintf(stderr, "rio: the kernel refused %s (EINVAL; needs Linux >= 6.1): using "
                                "%s rings, which cost more per completion\n",
                        tries[0].name, tries[i].name);
            snprintf(l->desc, sizeof l->desc,
                     "io_uring %s, SQ %u, CQ %u, %u x %u KiB provided buffers", tries[i].name,
                     p.sq_entries, p.cq_entries, RIO_BUF_COUNT, RIO_BUF_SIZE / 1024);
            return 0;
        }
        if (r != -EINVAL)
            break; /* only an unknown flag is worth another try */
    }
    explain_setup_error(r, err, errlen);
    return r;
}

static int probe_ops(struct rio_loop *l, char *err, size_t errlen)
{
    static const struct {
        int op;
        const char *name;
    } need[] = {
        {IORING_OP_ACCEPT, "ACCEPT"},    {IORING_OP_CONNECT, "CONNECT"},
        {IORING_OP_RECV, "RECV"},        {IORING_OP_SEND, "SEND"},
        {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}, {IORING_OP_POLL_ADD, "POLL_ADD"},
        {IORING_OP_TIMEOUT, "TIMEOUT"},  {IORING_OP_WRITE, "WRITE"},
        {IORING_OP_SENDMSG, "SENDMSG"}, /* rio_send_shared's iovecs */
    };
    struct io_uring_probe *p = io_uring_get_probe_ring(&l->ring);
    if (!p) {
        snprintf(err, errlen, "io_uring: the kernel cannot report supported opcodes "
                              "(IORING_REGISTER_PROBE needs Linux >= 5.6): use Linux >= 6.1");
        return -EOPNOTSUPP;
    }
    int r = 0;
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        if (!io_uring_opcode_supported(p, need[i].op)) {
            snprintf(err, errlen, "io_uring: the kernel lacks IORING_OP_%s: use Linux >= 6.1",
                     need[i].name);
            r = -EOPNOTSUPP;
            break;
        }
    }
    io_uring_free_probe(p);
    return r;
}

/* Multishot recv and provided buffer rings cannot be probed by opcode (they
 * are flags), so try one on a socketpair: a byte must arrive in a provided
 * buffer with F_MORE still set. */
static int selftest_recv(struct rio_loop *l, char *err, size_t errlen)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        int r = -errno;
        snprintf(err, errlen, "io_uring self test: socketpair: %s", strerror(-r));
        return r;
    }
    static struct rio_op probe_op; /* only its address is used */
    struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
    io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RIO_BGID;
    io_uring_sqe_set_data(sqe, &probe_op);
    int r = (int)write(sv[1], "x", 1);
    r = r == 1 ? 0 : -EIO;
    bool got = false, ended = false;
    uint64_t deadline = rio_now_us() + 2000000u;
    while (r == 0 && (!got || !ended) && rio_now_us() < deadline) {
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 100000000};
        struct io_uring_cqe *cqe = NULL;
        int w = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
        if (w < 0 && w != -ETIME && w != -EINTR) {
            r = w;
            break;
        }
        while (io_uring_peek_cqe(&l->ring, &cqe) == 0 && cqe) {
            int res = cqe->res;
            unsigned flags = cqe->flags;
            bool mine = cqe->user_data == (uint64_t)(uintptr_t)&probe_op;
            io_uring_cqe_seen(&l->ring, cqe);
            if (flags & IORING_CQE_F_BUFFER)
                buf_return(l, flags >> IORING_CQE_BUFFER_SHIFT);
            if (!mine)
                continue;
            if (!(flags & IORING_CQE_F_MORE))
                ended = true;
            if (!got) {
                got = true;
                if (res != 1 || !(flags & IORING_CQE_F_BUFFER)) {
                    snprintf(err, errlen, "io_uring: multishot recv with provided buffers failed "
                                          "(%s): use Linux >= 6.1",
                             res < 0 ? strerror(-res) : "no buffer");
                    r = res < 0 ? res : -EOPNOTSUPP;
                    ended = true;
                    break;
                }
                if (!(flags & IORING_CQE_F_MORE)) {
                    snprintf(err, errlen, "io_uring: recv is not multishot on this kernel: "
                                          "use Linux >= 6.1");
                    r = -EOPNOTSUPP;
                    break;
                }
                /* works: end it by closing the writer (EOF ends the multishot) */
                close(sv[1]);
                sv[1] = -1;
            }
        }
    }
    if (r == 0 && (!got || !ended)) {
        snprintf(err, errlen, "io_uring self test: no completion within 2 s");
        r = -ETIMEDOUT;
    }
    close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    return r;
}

/* RABIA_IO_WAIT (unset or "enter": io_uring_enter waits; "eventfd":
 * evwait, for valgrind): the eventfd registered with the ring when asked. */
static int evwait_setup(struct rio_loop *l, char *err, size_t errlen)
{
    const char *wait_mode = getenv("RABIA_IO_WAIT");
    if (!wait_mode || strcmp(wait_mode, "enter") == 0)
        return 0;
    if (strcmp(wait_mode, "eventfd") != 0) {
        snprintf(err, errlen, "RABIA_IO_WAIT='%s': use enter (the default) or eventfd", wait_mode);
        return -EINVAL;
    }
    l->evwait_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->evwait_fd < 0) {
        int r = -errno;
        snprintf(err, errlen, "RABIA_IO_WAIT=eventfd: eventfd: %s", strerror(-r));
        return r;
    }
    int r = io_uring_register_eventfd(&l->ring, l->evwait_fd);
    if (r < 0) {
        snprintf(err, errlen, "RABIA_IO_WAIT=eventfd: io_uring_register_eventfd: %s", strerror(-r));
        return r;
    }
    size_t dl = strlen(l->desc);
    snprintf(l->desc + dl, sizeof l->desc - dl, ", sleeping in ppoll on an eventfd (RABIA_IO_WAIT)");
    return 0;
}

int rio_loop_create(struct rio_loop **out, const struct rio_handlers *h, void *ctx, char *err,
                    size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = 0;
    *out = NULL;
    struct rio_loop *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "rio: out of memory");
        return -ENOMEM;
    }
    l->h = *h;
    l->ctx = ctx;
    l->wake_fd = -1;
    l->evwait_fd = -1;
    l->in_max = RIO_IN_MAX_DEFAULT;
    l->out_max = RIO_OUT_MAX_DEFAULT;
    l->op_wake.kind = OP_WAKE;
    l->op_wcancel.kind = OP_WCANCEL;
    l->op_dpoll.kind = OP_DPOLL;
    int r = ring_create(l, err, errlen);
    if (r < 0) {
        free(l);
        return r;
    }
    /* Saves the fd lookup on every io_uring_enter; optional. */
    (void)io_uring_register_ring_fd(&l->ring);
    if ((r = probe_ops(l, err, errlen)) < 0)
        goto fail;
    if ((r = buf_ring_setup(l)) < 0) {
        if (r == -ENOMEM)
            explain_setup_error(r, err, errlen);
        else
            snprintf(err, errlen, "io_uring: cannot register the provided buffer ring (%s): "
                                  "use Linux >= 6.1", strerror(-r));
        goto fail;
    }
    if ((r = selftest_recv(l, err, errlen)) < 0)
        goto fail;
    l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->wake_fd < 0) {
        r = -errno;
        snprintf(err, errlen, "eventfd: %s", strerror(-r));
        goto fail;
    }
    if ((r = evwait_setup(l, err, errlen)) < 0)
        goto fail;
    *out = l;
    return 0;
fail:
    if (l->br_registered)
        io_uring_unregister_buf_ring(&l->ring, RIO_BGID);
    io_uring_queue_exit(&l->ring);
    if (l->br)
        munmap(l->br, l->br_bytes);
    if (l->bufs)
        munmap(l->bufs, (size_t)RIO_BUF_COUNT * RIO_BUF_SIZE);
    if (l->wake_fd >= 0)
        close(l->wake_fd);
    if (l->evwait_fd >= 0)
        close(l->evwait_fd);
    free(l);
    return r;
}

void rio_loop_destroy(struct rio_loop *l)
{
    if (!l)
        return;
    assert(!l->in_run); /* not from inside a callback */
    /* the I/O threads first: they close their sockets, and every message
     * they sent is taken (their conns here then end below as the loop's own) */
    if (l->n_thr)
        rio_threads_stop(l);
    l->destroying = true;
    for (struct rio_conn *c = l->conns; c; c = c->next)
        conn_fail(c, -ECANCELED);
    for (struct rio_listener *ls = l->listeners; ls; ls = ls->next)
        rio_listener_close(ls);
    /* Let the cancels run and every op complete, so the kernel is done with
     * our buffers before we free them; bounded in case something hangs. */
    uint64_t deadline = rio_now_us() + RIO_DESTROY_WAIT_US;
    for (;;) {
        loop_post(l, true);
        if (!l->conns && !l->listeners && !l->wake_armed && l->wake_cancels == 0 && !l->fw_busy)
            break;
        if (rio_now_us() >= deadline) {
            fprintf(stderr, "rio: destroy: operations still in flight after 1 s; tearing down\n");
            break;
        }
        rio_run_once(l, 10000);
    }
    /* Tearing down the ring cancels anything left; only then free memory. */
    if (l->br_registered)
        io_uring_unregister_buf_ring(&l->ring, RIO_BGID);
    io_uring_queue_exit(&l->ring); /* cancels the write ring's poll before that ring goes */
    if (l->dring_ok)
        io_uring_queue_exit(&l->dring);
    while (l->conns) {
        struct rio_conn *c = l->conns;
        l->conns = c->next;
        if (c->fd >= 0)
            close(c->fd);
        free(c->in);
        conn_release_output(c);
        free(c->pt);
        rio_tls_conn_free(c->tls);
        free(c);
    }
    while (l->listeners) {
        struct rio_listener *ls = l->listeners;
        l->listeners = ls->next;
        close(ls->fd);
        free(ls);
    }
    rio_threads_free(l);
    munmap(l->br, l->br_bytes);
    munmap(l->bufs, (size_t)RIO_BUF_COUNT * RIO_BUF_SIZE);
    close(l->wake_fd);
    if (l->evwait_fd >= 0)
        close(l->evwait_fd);
    free(l);
}

/* ---- for threads.c (loop_internal.h) ---- */

struct rio_conn *rio_conn_new_internal(struct rio_loop *l, int fd, enum conn_state st)
{
    return conn_new(l, fd, st);
}

void rio_conn_fail_internal(struct rio_conn *c, int err) { conn_fail(c, err); }
void rio_conn_dirty_internal(struct rio_conn *c) { conn_mark_dirty(c); }
void rio_conn_input_internal(struct rio_conn *c, const uint8_t *p, size_t n) { conn_input_plain(c, p, n); }
void rio_conn_eof_internal(struct rio_conn *c) { conn_eof(c); }

/* When tx is drained and output is queued, the queue becomes the next send
 * (everything queued meanwhile leaves together). */
void rio_conn_next_send_internal(struct rio_conn *c)
{
    if (c->tx_off != tx_total(c) || (c->q_len == 0 && c->n_qs == 0))
        return;
    assert(c->n_ts == 0); /* released when the last send finished */
    uint8_t *b = c->tx;
    size_t cap = c->tx_cap;
    c->tx = c->q;
    c->tx_cap = c->q_cap;
    c->tx_off = 0;
    c->tx_len = c->q_len;
    c->q = b;
    c->q_cap = cap;
    c->q_len = 0;
    struct rio_seg *s = c->ts;
    c->ts = c->qs;
    c->qs = s;
    c->n_ts = c->n_qs;
    c->ts_bytes = c->qs_bytes;
    c->n_qs = 0;
    c->qs_bytes = 0;
}

/* Every byte of tx was sent: it empties, and a burst's large buffer goes. */
void rio_conn_sent_all_internal(struct rio_conn *c)
{
    c->tx_off = c->tx_len = 0;
    if (c->n_ts)
        segs_release(c->ts, &c->n_ts, &c->ts_bytes); /* the kernel has their bytes */
    if (c->tx_cap > RIO_KEEP_BYTES) {
        free(c->tx);
        c->tx = NULL;
        c->tx_cap = 0;
    }
}
