/* io/threads.c: I/O threads (rabiad's io-threads = K). Client connections
 * are accepted, read and written by K threads, each with its own io_uring
 * loop; the loop that created them (the consensus thread's) sees each such
 * connection as an ordinary rio_conn ("remote": no socket of its own) and
 * runs the same callbacks for it, from rio_run_once, as for its own
 * sockets. So the replica above does not know which thread owns a socket.
 *
 * Between the consensus loop and each thread: three single-producer
 * single-consumer rings of fixed-size messages (C11 atomics, no locks):
 *   to_loop  thread -> loop: OPEN (an accepted connection and its addresses),
 *            DATA (bytes received, in one of the thread's buffers), CLOSED,
 *            SENT (a SEND's bytes were taken);
 *   to_thr   loop -> thread: LISTEN (a listening socket to accept on), SEND
 *            (a pointer to the conn's tx buffer: not copied here, copied by
 *            the thread into its socket's queue, then SENT hands it back),
 *            CLOSE, CLOSE_AFTER_SEND;
 *   returns  loop -> thread: DATA buffers given back (its capacity exceeds
 *            the buffers a thread ever owns, so it never fills).
 * Memory is bounded: a thread owns at most THR_BUFS buffers of THR_BUF
 * bytes; when they are all with the loop it waits for one (backpressure on
 * clients, whose bytes stay in the kernel), as it waits when to_loop is
 * full. The loop never waits: a message that does not fit stays with the
 * conn, which is reconciled again 200 us later.
 *
 * Wake-ups cost a system call, so each side sleeps in its own kernel wait
 * only after announcing it (an atomic `sleeping` flag, then a fence, then a
 * last look at its rings), and a producer wakes the other side (eventfd,
 * rio_loop_wake) only when it pushed something this turn and finds the flag
 * set. Under load neither side sleeps and no wake-up is written.
 *
 * Connection identity across threads: the thread's slot index and a
 * generation. A message naming a slot whose generation moved on (the
 * connection closed meanwhile on the other side) is dropped, except that
 * buffers always go back to their owner and a SEND is always answered by
 * SENT, so the loop's conn (alive while its send is in flight) is freed
 * only when the thread no longer reads its tx. */
#define _GNU_SOURCE
#include "loop_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THR_RING 4096u    /* messages per ring (power of two) */
#define THR_SLOTS 16384u  /* connections per thread */
#define THR_BUF RIO_BUF_SIZE
#define THR_BUFS 1024u    /* buffers per thread: 16 MiB at most in flight to the loop */
#define THR_DRAIN 4096u   /* messages the loop takes from one thread per turn */
#define THR_WAIT_NS 20000 /* a thread's pause when the loop is behind */
/* A SEND is acknowledged (SENT) once its socket holds at most this much
 * unsent: until then the loop's conn keeps the bytes "in flight", so
 * rio_conn_pending there still counts them and a caller's flow control
 * (snapshot and backup streams) works as on the loop's own sockets. */
#define THR_ACK_BYTES ((size_t)256 << 10)
/* Every THR_TRIM_US a thread gives back what bursts grew in its idle
 * connections' output buffers beyond THR_TRIM_KEEP (rio_conn_trim_idle),
 * as the replica does for its own connections every 100 ms: the loop's
 * caller trims the loop's side of a connection only, so a thread kept up
 * to 1 MiB per buffer of every client that once took a burst, counted by
 * nobody (200 idle clients after 800 KB each: 159 MB). */
#define THR_TRIM_US 100000u
#define THR_TRIM_KEEP ((size_t)4096)

enum msg_type {
    M_OPEN = 1, M_DATA, M_CLOSED, M_SENT,   /* thread -> loop */
    M_EOF,                                  /* thread -> loop: the peer's EOF, the socket kept for sends */
    M_LISTEN, M_SEND, M_CLOSE, M_CLOSE_AFTER_SEND, /* loop -> thread */
    M_RETURN,                               /* loop -> thread: a buffer back */
};

struct msg {
    uint8_t type;
    int32_t err;              /* M_CLOSED: the close error; M_LISTEN: the fd; M_OPEN: the local address's length */
    uint32_t slot, gen;       /* the thread's connection */
    uint32_t len;             /* bytes at buf; M_OPEN: address length; M_LISTEN: port */
    uint8_t *buf;             /* M_DATA, M_OPEN, M_RETURN: a thread buffer; M_SEND: the conn's tx */
    struct rio_conn *cc;      /* M_SEND, M_SENT: the loop's conn */
    struct rio_listener *ls;  /* M_OPEN, M_LISTEN: the loop's listener */
};

/* The same acquire/release scheme as batch/ring.h's spsc_ring, over fixed
 * structs instead of pointers (no allocation per message); io/ may not use
 * batch/ (io/README.md), so it is not shared. */
struct msg_ring {
    alignas(64) _Atomic size_t tail; /* producer's */
    size_t head_cache;
    alignas(64) _Atomic size_t head; /* consumer's */
    size_t tail_cache;
    alignas(64) struct msg m[THR_RING];
};

static bool ring_push(struct msg_ring *r, const struct msg *m)
{
    size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t - r->head_cache >= THR_RING) {
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        if (t - r->head_cache >= THR_RING)
            return false;
    }
    r->m[t & (THR_RING - 1)] = *m;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return true;
}

static bool ring_pop(struct msg_ring *r, struct msg *out)
{
    size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (h == r->tail_cache) {
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (h == r->tail_cache)
            return false;
    }
    *out = r->m[h & (THR_RING - 1)];
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return true;
}

/* Consumer side, after a seq_cst fence: whether a message waits. */
static bool ring_nonempty(struct msg_ring *r)
{
    return atomic_load(&r->tail) != atomic_load_explicit(&r->head, memory_order_relaxed);
}

struct thr_slot {
    struct rio_conn *c; /* the thread's conn, NULL when free */
    uint32_t gen;
    struct rio_conn *ack_cc; /* a SEND not yet acknowledged (its socket is behind), or NULL */
    uint32_t ack_len;
};

struct loop_slot {
    struct rio_conn *c; /* the loop's conn for the thread's slot, NULL when none */
    uint32_t gen;
};

struct rio_iothread {
    struct msg_ring to_loop, to_thr, returns;
    struct rio_loop *owner;   /* the consensus loop */
    struct rio_loop *l;       /* this thread's loop, created and run on it */
    unsigned idx;
    int cpu;                  /* pinned to it, or -1 */
    pthread_t tid;
    bool started;
    _Atomic int sleeping;     /* this thread waits in the kernel */
    _Atomic int stop;
    _Atomic int exit_ok;      /* the loop no longer wakes this thread's loop: it may destroy it */
    _Atomic int ready;        /* 1 running, -1 its loop could not be created */
    char err[256];
    /* the thread's side */
    struct thr_slot *slots;
    uint32_t *free_slots, n_free_slots;
    uint8_t **bufs, **all_bufs; /* free buffers; every buffer made */
    uint32_t n_bufs, n_all;
    bool pushed;              /* queued to the loop since the last wake */
    uint32_t *acks, n_acks;   /* slots with an unacknowledged SEND */
    uint32_t slots_hw;        /* slots [slots_hw, THR_SLOTS) were never used */
    uint64_t trim_us;         /* the last idle trim */
    /* the loop's side */
    struct loop_slot *cmap;
    bool loop_pushed;         /* the loop queued to this thread this turn */
    bool stopped;             /* joined: nothing more goes to it */
};

static void pause_briefly(void)
{
    struct timespec ts = {0, THR_WAIT_NS};
    nanosleep(&ts, NULL);
}

/* Wake the consensus loop if it sleeps; called after pushes (the fence
 * orders our tail stores before the flag's load: rio_threads_pending's
 * mirror image). */
static void wake_owner(struct rio_iothread *t)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&t->owner->sleeping) && atomic_exchange(&t->owner->sleeping, 0))
        rio_loop_wake(t->owner);
}

/* Thread side: queue a message to the loop, waiting while its ring is full
 * (the loop drains every turn and never waits on us). false only when the
 * thread is told to stop meanwhile. */
static bool push_loop(struct rio_iothread *t, const struct msg *m)
{
    while (!ring_push(&t->to_loop, m)) {
        if (atomic_load(&t->stop))
            return false;
        wake_owner(t);
        pause_briefly();
    }
    t->pushed = true;
    return true;
}

static void take_returns(struct rio_iothread *t)
{
    struct msg m;
    while (ring_pop(&t->returns, &m)) {
        assert(m.type == M_RETURN && t->n_bufs < THR_BUFS);
        t->bufs[t->n_bufs++] = m.buf;
    }
}

/* A free buffer: a returned one, a new one while fewer than THR_BUFS exist,
 * or else wait for the loop to give one back. NULL: stopping, or no memory. */
static uint8_t *buf_get(struct rio_iothread *t)
{
    for (;;) {
        if (t->n_bufs)
            return t->bufs[--t->n_bufs];
        take_returns(t);
        if (t->n_bufs)
            continue;
        if (t->n_all < THR_BUFS) {
            uint8_t *b = malloc(THR_BUF);
            if (!b)
                return NULL;
            t->all_bufs[t->n_all++] = b;
            return b;
        }
        if (atomic_load(&t->stop))
            return NULL;
        wake_owner(t);
        pause_briefly();
    }
}

/* ---- the thread's loop callbacks ---- */

static int t_accept(void *ctx, struct rio_listener *ls, struct rio_conn *c)
{
    struct rio_iothread *t = ctx;
    if (!t->n_free_slots)
        return -1; /* THR_SLOTS connections on this thread: shed the new one */
    uint8_t *b = buf_get(t);
    if (!b)
        return -1;
    uint32_t s = t->free_slots[--t->n_free_slots];
    assert(s < THR_SLOTS && !t->slots[s].c);
    t->slots[s].c = c;
    if (s >= t->slots_hw)
        t->slots_hw = s + 1;
    rio_conn_set_user(c, (void *)(uintptr_t)(s + 1));
    static_assert(2 * sizeof c->addr <= THR_BUF, "both addresses fit a buffer");
    memcpy(b, &c->addr, sizeof c->addr);
    /* the socket's own address too: the loop has no socket to ask (rio_conn_local) */
    struct sockaddr_storage local;
    socklen_t local_len = sizeof local;
    memset(&local, 0, sizeof local);
    if (getsockname(rio_conn_fd(c), (struct sockaddr *)&local, &local_len) < 0)
        local_len = 0;
    memcpy(b + sizeof c->addr, &local, sizeof local);
    struct msg m = {.type = M_OPEN, .slot = s, .gen = t->slots[s].gen, .len = c->addr_len, .buf = b,
                    .ls = rio_listener_user(ls), .err = (int32_t)local_len};
    if (!push_loop(t, &m)) { /* stopping */
        t->bufs[t->n_bufs++] = b;
        t->slots[s].c = NULL;
        t->free_slots[t->n_free_slots++] = s;
        return -1;
    }
    return 0;
}

static size_t t_data(void *ctx, struct rio_conn *c, const uint8_t *p, size_t n)
{
    struct rio_iothread *t = ctx;
    uint32_t s = (uint32_t)(uintptr_t)rio_conn_user(c) - 1;
    assert(s < THR_SLOTS && t->slots[s].c == c);
    for (size_t off = 0; off < n;) {
        uint8_t *b = buf_get(t);
        if (!b) {
            rio_close(c); /* stopping (or out of memory): the bytes cannot be kept */
            return n;
        }
        size_t k = n - off < THR_BUF ? n - off : THR_BUF;
        memcpy(b, p + off, k);
        struct msg m = {.type = M_DATA, .slot = s, .gen = t->slots[s].gen, .len = (uint32_t)k, .buf = b};
        if (!push_loop(t, &m)) {
            t->bufs[t->n_bufs++] = b;
            rio_close(c);
            return n;
        }
        off += k;
    }
    return n;
}

static void t_close(void *ctx, struct rio_conn *c, int err)
{
    struct rio_iothread *t = ctx;
    uint32_t s = (uint32_t)(uintptr_t)rio_conn_user(c) - 1;
    assert(s < THR_SLOTS && t->slots[s].c == c);
    if (t->slots[s].ack_cc) { /* the loop's conn waits for it to be freed */
        struct msg a = {.type = M_SENT, .cc = t->slots[s].ack_cc, .len = t->slots[s].ack_len};
        (void)push_loop(t, &a);
        t->slots[s].ack_cc = NULL; /* t_acks drops the slot from its list */
    }
    struct msg m = {.type = M_CLOSED, .slot = s, .gen = t->slots[s].gen, .err = err};
    (void)push_loop(t, &m); /* lost only when stopping: the loop ends its conns itself */
    t->slots[s].c = NULL;
    t->slots[s].gen++;
    t->free_slots[t->n_free_slots++] = s;
}

/* The peer's EOF: the loop's on_eof decides (its M_CLOSE or
 * M_CLOSE_AFTER_SEND follows); the socket stays for the replies owed. */
static bool t_eof(void *ctx, struct rio_conn *c)
{
    struct rio_iothread *t = ctx;
    if (!t->owner->h.on_eof)
        return false; /* closed now, as every EOF was */
    uint32_t s = (uint32_t)(uintptr_t)rio_conn_user(c) - 1;
    assert(s < THR_SLOTS && t->slots[s].c == c);
    struct msg m = {.type = M_EOF, .slot = s, .gen = t->slots[s].gen};
    return push_loop(t, &m); /* not pushed only when stopping: closed now */
}

/* The conn a loop message names, if that connection still lives. */
static struct rio_conn *t_conn(struct rio_iothread *t, const struct msg *m)
{
    if (m->slot >= THR_SLOTS || t->slots[m->slot].gen != m->gen)
        return NULL;
    return t->slots[m->slot].c;
}

/* Everything the loop sent: sends are copied into the sockets' queues
 * (they leave with this turn's submit), closes requested. */
static void t_take(struct rio_iothread *t)
{
    take_returns(t);
    struct msg m;
    for (unsigned i = 0; i < THR_RING && ring_pop(&t->to_thr, &m); i++) {
        struct rio_conn *c = t_conn(t, &m);
        switch (m.type) {
        case M_LISTEN: {
            int r = rio_listener_adopt_internal(t->l, m.err, (uint16_t)m.len, m.ls, false, NULL);
            if (r < 0) {
                fprintf(stderr, "rio: io thread %u cannot accept on port %u: %s\n", t->idx, m.len, strerror(-r));
                close(m.err);
            }
            break;
        }
        case M_SEND: {
            if (c && rio_send(c, m.buf, m.len) < 0)
                rio_close(c); /* over the output limit (a client that does not read), or closing */
            if (c && rio_conn_pending(c) > THR_ACK_BYTES) { /* acknowledged when the socket catches up */
                assert(!t->slots[m.slot].ack_cc && t->n_acks < THR_SLOTS);
                t->slots[m.slot].ack_cc = m.cc;
                t->slots[m.slot].ack_len = m.len;
                t->acks[t->n_acks++] = m.slot;
                break;
            }
            struct msg a = {.type = M_SENT, .cc = m.cc, .len = m.len};
            (void)push_loop(t, &a);
            break;
        }
        case M_CLOSE:
            if (c)
                rio_close(c);
            break;
        case M_CLOSE_AFTER_SEND:
            if (c)
                rio_close_after_send(c);
            break;
        default:
            assert(!"io thread: unexpected message");
        }
    }
}

/* SENDs held back while their sockets were behind: acknowledged once a
 * socket holds THR_ACK_BYTES or less (t_close acknowledges a closed one's). */
static void t_acks(struct rio_iothread *t)
{
    for (uint32_t i = 0; i < t->n_acks;) {
        struct thr_slot *sl = &t->slots[t->acks[i]];
        if (sl->ack_cc && sl->c && rio_conn_pending(sl->c) > THR_ACK_BYTES) {
            i++;
            continue;
        }
        if (sl->ack_cc) {
            struct msg a = {.type = M_SENT, .cc = sl->ack_cc, .len = sl->ack_len};
            (void)push_loop(t, &a);
            sl->ack_cc = NULL;
        }
        t->acks[i] = t->acks[--t->n_acks];
    }
}

static void *thr_main(void *arg)
{
    struct rio_iothread *t = arg;
    char name[16];
    snprintf(name, sizeof name, "rabia-io%u", t->idx);
    (void)pthread_setname_np(pthread_self(), name);
    if (t->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(t->cpu, &set);
        int r = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
        if (r)
            fprintf(stderr, "rio: io thread %u: cannot pin to CPU %d: %s (running unpinned)\n", t->idx, t->cpu,
                    strerror(r));
    }
    struct rio_handlers h = {.on_accept = t_accept, .on_data = t_data, .on_close = t_close, .on_eof = t_eof};
    int rc = rio_loop_create(&t->l, &h, t, t->err, sizeof t->err);
    if (rc < 0) {
        atomic_store(&t->ready, -1);
        return NULL;
    }
    /* The loop holds each conn to its output limit (its own, or the loop's
     * default) and hands a thread one send at a time, acknowledged once at
     * most THR_ACK_BYTES wait: the thread holds no more than that send and
     * THR_ACK_BYTES, and must not refuse what the loop admitted. Held to
     * the loop's default too, it closed as if the peer had (on_close 0) a
     * conn with a larger limit of its own (test_big_send), and a slow
     * reader handed a send near the limit while THR_ACK_BYTES waited. */
    rio_loop_set_limits(t->l, t->owner->in_max, SIZE_MAX);
    atomic_store(&t->ready, 1);
    while (!atomic_load(&t->stop)) {
        t_take(t);
        uint64_t timeout = 100000;
        atomic_store(&t->sleeping, 1);
        atomic_thread_fence(memory_order_seq_cst);
        if (ring_nonempty(&t->to_thr) || atomic_load(&t->stop)) {
            atomic_store(&t->sleeping, 0);
            timeout = 0;
        }
        (void)rio_run_once(t->l, timeout);
        atomic_store(&t->sleeping, 0);
        if (t->n_acks)
            t_acks(t);
        if (t->pushed) {
            t->pushed = false;
            wake_owner(t);
        }
        uint64_t now = rio_turn_us();
        if (now - t->trim_us >= THR_TRIM_US) { /* nothing while output waits or is in flight */
            t->trim_us = now;
            for (uint32_t s = 0; s < t->slots_hw; s++)
                if (t->slots[s].c)
                    rio_conn_trim_idle(t->slots[s].c, THR_TRIM_KEEP);
        }
    }
    while (!atomic_load(&t->exit_ok)) /* rio_threads_stop may still write our eventfd */
        pause_briefly();
    rio_loop_destroy(t->l); /* its conns' closes reach the loop if the ring has room; it does without */
    return NULL;
}

/* ---- the consensus loop's side ---- */

static void give_back(struct rio_iothread *t, uint8_t *b)
{
    struct msg m = {.type = M_RETURN, .buf = b};
    bool ok = ring_push(&t->returns, &m);
    assert(ok && "returns holds every buffer a thread owns");
    (void)ok;
}

static bool push_thr(struct rio_iothread *t, const struct msg *m)
{
    if (!ring_push(&t->to_thr, m))
        return false;
    t->loop_pushed = true;
    return true;
}

static void on_open(struct rio_loop *l, struct rio_iothread *t, const struct msg *m)
{
    struct rio_conn *c = rio_conn_new_internal(l, -1, C_OPEN);
    if (!c) {
        give_back(t, m->buf);
        struct msg x = {.type = M_CLOSE, .slot = m->slot, .gen = m->gen};
        if (!push_thr(t, &x))
            fprintf(stderr, "rio: out of memory and the ring to io thread %u full: a client stays open\n", t->idx);
        return;
    }
    l->st.accepts++;
    c->remote = t;
    c->rslot = m->slot;
    c->rgen = m->gen;
    c->was_open = true;
    c->addr_len = m->len <= sizeof c->addr ? (socklen_t)m->len : 0;
    memcpy(&c->addr, m->buf, sizeof c->addr);
    c->rlocal_len = m->err > 0 && (size_t)m->err <= sizeof c->rlocal ? (socklen_t)m->err : 0;
    memcpy(&c->rlocal, m->buf + sizeof c->addr, sizeof c->rlocal);
    give_back(t, m->buf);
    assert(m->slot < THR_SLOTS);
    t->cmap[m->slot] = (struct loop_slot){.c = c, .gen = m->gen};
    int keep = l->h.on_accept ? l->h.on_accept(l->ctx, m->ls, c) : 0;
    if (keep < 0) {
        c->silent = true;
        rio_conn_fail_internal(c, 0);
    }
    rio_conn_dirty_internal(c);
}

static struct rio_conn *loop_conn(struct rio_iothread *t, const struct msg *m)
{
    if (m->slot >= THR_SLOTS || !t->cmap[m->slot].c || t->cmap[m->slot].gen != m->gen)
        return NULL;
    return t->cmap[m->slot].c;
}

static void on_sent(struct rio_loop *l, struct rio_conn *c, uint32_t len)
{
    assert(c->remote && c->send_inflight);
    c->send_inflight = false;
    l->st.send_bytes += len;
    rio_conn_sent_all_internal(c);
    rio_conn_dirty_internal(c);
}

unsigned rio_threads_drain(struct rio_loop *l)
{
    unsigned got = 0;
    for (unsigned i = 0; i < l->n_thr; i++) {
        struct rio_iothread *t = l->thr[i];
        if (t->stopped)
            continue;
        struct msg m;
        for (unsigned k = 0; k < THR_DRAIN && ring_pop(&t->to_loop, &m); k++) {
            got++;
            l->st.cqes++;
            switch (m.type) {
            case M_OPEN:
                on_open(l, t, &m);
                break;
            case M_DATA: {
                struct rio_conn *c = loop_conn(t, &m);
                l->st.recv_cqes++;
                l->st.recv_bytes += m.len;
                if (c && c->state == C_OPEN && !c->close_after_send)
                    rio_conn_input_internal(c, m.buf, m.len);
                give_back(t, m.buf);
                break;
            }
            case M_CLOSED: {
                struct rio_conn *c = loop_conn(t, &m);
                if (c) {
                    t->cmap[m.slot].c = NULL;
                    c->rclose_sent = true; /* the thread's side is gone already */
                    rio_conn_fail_internal(c, m.err);
                }
                break;
            }
            case M_EOF: {
                struct rio_conn *c = loop_conn(t, &m);
                if (c)
                    rio_conn_eof_internal(c);
                break;
            }
            case M_SENT:
                on_sent(l, m.cc, m.len);
                break;
            default:
                assert(!"loop: unexpected message from an io thread");
            }
        }
    }
    return got;
}

bool rio_threads_pending(struct rio_loop *l)
{
    atomic_thread_fence(memory_order_seq_cst);
    for (unsigned i = 0; i < l->n_thr; i++)
        if (!l->thr[i]->stopped && ring_nonempty(&l->thr[i]->to_loop))
            return true;
    return false;
}

void rio_threads_wake(struct rio_loop *l)
{
    bool any = false;
    for (unsigned i = 0; i < l->n_thr; i++)
        any |= l->thr[i]->loop_pushed;
    if (!any)
        return;
    atomic_thread_fence(memory_order_seq_cst);
    for (unsigned i = 0; i < l->n_thr; i++) {
        struct rio_iothread *t = l->thr[i];
        if (!t->loop_pushed)
            continue;
        t->loop_pushed = false;
        if (atomic_load(&t->sleeping) && atomic_exchange(&t->sleeping, 0))
            rio_loop_wake(t->l);
    }
}

bool rio_threads_reconcile(struct rio_conn *c)
{
    struct rio_iothread *t = c->remote;
    assert(t && c->fd < 0);
    if (t->stopped)
        return true; /* joined: its sockets are closed, nothing to tell it */
    switch (c->state) {
    case C_OPEN:
        if (c->send_inflight)
            return true; /* SENT marks it dirty again */
        assert(c->n_qs == 0 && c->n_ts == 0); /* rio_send_shared copies for these */
        rio_conn_next_send_internal(c); /* the queue becomes the next send */
        if (c->tx_off < c->tx_len) {
            assert(c->tx_len - c->tx_off <= UINT32_MAX);
            struct msg m = {.type = M_SEND, .slot = c->rslot, .gen = c->rgen, .cc = c, .buf = c->tx + c->tx_off,
                            .len = (uint32_t)(c->tx_len - c->tx_off)};
            if (!push_thr(t, &m))
                return false;
            c->send_inflight = true;
            c->loop->st.sends++;
        } else if (c->close_after_send) {
            struct msg m = {.type = M_CLOSE_AFTER_SEND, .slot = c->rslot, .gen = c->rgen};
            if (!push_thr(t, &m))
                return false;
            c->rclose_sent = true;
            rio_conn_fail_internal(c, c->fail_after_send);
        }
        return true;
    case C_CONNECTING:
        assert(!"a remote conn never connects");
        return true;
    case C_CLOSING:
        return true;
    case C_DEAD:
        if (!c->rclose_sent) {
            struct msg m = {.type = M_CLOSE, .slot = c->rslot, .gen = c->rgen};
            if (!push_thr(t, &m))
                return false;
            c->rclose_sent = true;
        }
        if (c->rslot < THR_SLOTS && t->cmap[c->rslot].c == c)
            t->cmap[c->rslot].c = NULL;
        return true;
    }
    return true;
}

static void thr_free(struct rio_iothread *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->n_all; i++)
        free(t->all_bufs[i]);
    free(t->all_bufs);
    free(t->bufs);
    free(t->slots);
    free(t->free_slots);
    free(t->cmap);
    free(t->acks);
    free(t);
}

/* After the join: the messages the thread left are taken (their callbacks
 * run: closes reach the replica), and the sends it never took are
 * answered here, so every loop conn can be freed. */
static void thr_reap(struct rio_loop *l, struct rio_iothread *t)
{
    while (rio_threads_drain(l))
        ;
    t->stopped = true;
    struct msg m;
    while (ring_pop(&t->to_thr, &m)) {
        if (m.type == M_SEND)
            on_sent(l, m.cc, 0);
        else if (m.type == M_LISTEN)
            close(m.err);
    }
}

void rio_threads_stop(struct rio_loop *l)
{
    for (unsigned i = 0; i < l->n_thr; i++) {
        struct rio_iothread *t = l->thr[i];
        atomic_store(&t->stop, 1);
        if (atomic_load(&t->ready) == 1)
            rio_loop_wake(t->l);
        atomic_store(&t->exit_ok, 1);
    }
    for (unsigned i = 0; i < l->n_thr; i++) {
        struct rio_iothread *t = l->thr[i];
        if (t->started) {
            /* its last closes may wait for room in to_loop: keep draining */
            for (;;) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 1000000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                if (pthread_timedjoin_np(t->tid, NULL, &ts) == 0)
                    break;
                (void)rio_threads_drain(l);
            }
            t->started = false;
        }
        thr_reap(l, t);
    }
}

void rio_threads_free(struct rio_loop *l)
{
    for (unsigned i = 0; i < l->n_thr; i++)
        thr_free(l->thr[i]);
    free(l->thr);
    l->thr = NULL;
    l->n_thr = 0;
}

/* ---- public ---- */

int rio_loop_start_threads(struct rio_loop *l, unsigned k, const int *cpus, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = 0;
    if (l->n_thr || l->in_run || l->destroying || k > RIO_MAX_THREADS) {
        snprintf(err, errlen, "io-threads: %u threads (at most %u, started once, before the loop runs)", k,
                 RIO_MAX_THREADS);
        return -EINVAL;
    }
    if (k == 0)
        return 0;
    l->thr = calloc(k, sizeof *l->thr);
    if (!l->thr)
        goto nomem;
    for (unsigned i = 0; i < k; i++) {
        struct rio_iothread *t = aligned_alloc(64, (sizeof *t + 63) / 64 * 64);
        if (!t)
            goto nomem;
        memset(t, 0, sizeof *t);
        l->thr[i] = t;
        l->n_thr = i + 1;
        t->owner = l;
        t->idx = i;
        t->cpu = cpus ? cpus[i] : -1;
        t->slots = calloc(THR_SLOTS, sizeof *t->slots);
        t->free_slots = calloc(THR_SLOTS, sizeof *t->free_slots);
        t->cmap = calloc(THR_SLOTS, sizeof *t->cmap);
        t->bufs = calloc(THR_BUFS, sizeof *t->bufs);
        t->all_bufs = calloc(THR_BUFS, sizeof *t->all_bufs);
        t->acks = calloc(THR_SLOTS, sizeof *t->acks);
        if (!t->slots || !t->free_slots || !t->cmap || !t->bufs || !t->all_bufs || !t->acks)
            goto nomem;
        for (uint32_t s = 0; s < THR_SLOTS; s++)
            t->free_slots[s] = THR_SLOTS - 1 - s;
        t->n_free_slots = THR_SLOTS;
        int r = pthread_create(&t->tid, NULL, thr_main, t);
        if (r) {
            snprintf(err, errlen, "io-threads: cannot start thread %u: %s", i, strerror(r));
            rio_threads_stop(l);
            rio_threads_free(l);
            return -r;
        }
        t->started = true;
        while (atomic_load(&t->ready) == 0)
            pause_briefly();
        if (atomic_load(&t->ready) < 0) {
            snprintf(err, errlen, "io-threads: thread %u: %s", i, t->err);
            rio_threads_stop(l);
            rio_threads_free(l);
            return -EIO;
        }
    }
    return 0;
nomem:
    snprintf(err, errlen, "io-threads: out of memory");
    rio_threads_stop(l);
    rio_threads_free(l);
    return -ENOMEM;
}

unsigned rio_loop_threads(const struct rio_loop *l) { return l->n_thr; }

int rio_listen_threaded(struct rio_loop *l, const char *host, uint16_t port, void *user,
                        struct rio_listener **out)
{
    if (!l->n_thr)
        return rio_listen(l, host, port, user, out);
    int fd;
    uint16_t bound;
    int r = rio_listen_socket_internal(host, port, &fd, &bound);
    if (r < 0)
        return r;
    struct rio_listener *ls;
    r = rio_listener_adopt_internal(l, fd, bound, user, true, &ls);
    if (r < 0) {
        close(fd);
        return r;
    }
    /* every thread accepts on its own copy of the socket: whichever is free
     * takes the next client */
    for (unsigned i = 0; i < l->n_thr; i++) {
        int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        struct msg m = {.type = M_LISTEN, .err = d, .len = bound, .ls = ls};
        if (d < 0 || !push_thr(l->thr[i], &m)) {
            r = d < 0 ? -errno : -EAGAIN;
            if (d >= 0)
                close(d);
            rio_listener_close(ls);
            return r;
        }
    }
    rio_threads_wake(l);
    if (out)
        *out = ls;
    return 0;
}
