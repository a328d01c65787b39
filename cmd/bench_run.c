/* rabia-bench's load runner (see bench_run.h and cmd/README.md).
 *
 * Each thread owns a share of the connections. RESP and etcd connections are
 * plain non-blocking sockets on one epoll per thread, with buffers sized at
 * start for `pipeline` requests in flight, so nothing is allocated per
 * request. Native connections are rabia_client handles: the library keeps
 * its socket to itself and does its I/O only inside its calls, so the thread
 * polls every handle with rabia_client_wait(..., 0) and naps 20 us when a
 * whole round found nothing (see cmd/README.md for what that costs).
 *
 * Timing: a request carries the time it was meant to be sent: in a closed
 * loop the moment it is written, in an open loop start + i / rate (i counts
 * the thread's requests), even when it had to wait for a free pipeline slot
 * -- so a stall of the server shows in the tail instead of slowing the
 * generator down (no coordinated omission). A request is measured when that
 * time is at or after the end of the warm-up and its reply came before the
 * end of the run. */
#define _GNU_SOURCE
#include "bench_run.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_proto.h"
#include "kv.h"
#include "rabia/client.h"

#define REQUESTS_MODE_CAP_S 3600 /* --requests without an end in time still stops after an hour */
#define NATIVE_WIN RABIA_CLIENT_MAX_OUTSTANDING
#define NATIVE_SPIN_NS 100000 /* native: poll without sleeping this long after replies came */

const char *bench_proto_name(enum bench_proto p)
{
    return p == BP_RESP ? "resp" : p == BP_NATIVE ? "native" : "etcd";
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct pend {
    uint64_t t; /* intended send time (ns) */
    bool last;  /* this reply completes the request (false: the SET before its WAIT) */
};

struct conn {
    int fd;
    unsigned addr;
    bool dead, want_out;
    unsigned inflight;
    char *out;
    size_t out_off, out_len, out_cap;
    char *in;
    size_t in_len, in_cap;
    struct pend *pq; /* ring of the replies expected, in order */
    unsigned pq_head, pq_n, pq_cap;
    bool req_err; /* an error reply within the request being completed */
    /* native */
    struct rabia_client *cl;
    uint64_t seq[NATIVE_WIN], t[NATIVE_WIN];
    bool used[NATIVE_WIN];
    uint64_t last_seq;
    int reg_fd;        /* the client's socket as registered in the thread's epoll set, or -1 */
    uint64_t reg_gen;  /* ... its rabia_client_io conn_gen */
    short reg_ev;      /* ... the events registered */
    short revents;     /* what epoll reported for it this pass */
};

struct shared {
    const struct bench_opts *o;
    struct sockaddr_storage sa[BENCH_MAX_ADDRS];
    socklen_t salen[BENCH_MAX_ADDRS];
    pthread_barrier_t ready, go;
    uint64_t start, measure_start, end; /* ns */
    _Atomic uint64_t measured_total;
    atomic_bool stop;
    _Atomic unsigned finished; /* threads that left their loop */
    size_t max_req;
    size_t out_cap, in_cap; /* RESP/etcd: each connection's send and receive buffers */
};

struct thr {
    pthread_t th;
    struct shared *s;
    unsigned idx, first, n;
    struct conn *c;
    int ep;
    double rate;      /* this thread's share of --rate */
    uint64_t next_i;  /* open loop: the next request's number */
    unsigned rr;      /* open loop: the next connection to try */
    uint64_t rng;
    char *key, *val;
    struct rabia_buf op, res;
    struct bench_hist hist;
    _Atomic uint64_t done, errs; /* for the progress line (warm-up included) */
    uint64_t measured, errors, warm, last_done;
    uint64_t unfinished; /* sent or due before the end, unanswered then (record_unfinished) */
    int rc;
    bool told_fail;
};

static uint64_t rnd(struct thr *t)
{
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    return t->rng;
}

static bool pick_read(struct thr *t)
{
    double r = t->s->o->read_ratio;
    return r > 0 && (double)(rnd(t) >> 11) * 0x1.0p-53 < r;
}

static void complete(struct thr *t, uint64_t ts, bool err)
{
    const struct shared *s = t->s;
    uint64_t now = now_ns();
    atomic_fetch_add_explicit(&t->done, 1, memory_order_relaxed);
    if (err)
        atomic_fetch_add_explicit(&t->errs, 1, memory_order_relaxed);
    bool in_window = ts >= s->measure_start && now <= s->end;
    if (in_window && s->o->requests) {
        /* --requests N: exactly N are measured (the others in flight then are not) */
        uint64_t before = atomic_fetch_add_explicit(&t->s->measured_total, 1, memory_order_relaxed);
        if (before + 1 >= s->o->requests)
            atomic_store(&t->s->stop, true);
        in_window = before < s->o->requests;
    }
    if (in_window) {
        t->measured++;
        t->errors += err;
        t->last_done = now;
        bench_hist_record(&t->hist, now > ts ? (now - ts) / 1000 : 0);
    } else {
        t->warm++;
    }
}

/* ---- RESP and etcd over sockets ---- */

static void pq_push(struct conn *c, uint64_t ts, bool last)
{
    /* pq_cap = 2 * pipeline and at most pipeline requests of <= 2 replies */
    if (c->pq_n >= c->pq_cap)
        abort();
    c->pq[(c->pq_head + c->pq_n++) % c->pq_cap] = (struct pend){ts, last};
}

static void conn_fail(struct thr *t, struct conn *c, const char *why, int err)
{
    if (!t->told_fail) {
        fprintf(stderr, "rabia-bench: connection to %s failed: %s%s%s (its %u requests in flight count as errors)\n",
                t->s->o->addrs[c->addr], why, err ? ": " : "", err ? strerror(err) : "", c->inflight);
        t->told_fail = true;
    }
    /* the requests in flight are lost: each is an error */
    while (c->pq_n > 0) {
        struct pend p = c->pq[c->pq_head];
        c->pq_head = (c->pq_head + 1) % c->pq_cap;
        c->pq_n--;
        if (p.last)
            complete(t, p.t, true);
    }
    c->inflight = 0;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->dead = true;
}

static void issue(struct thr *t, struct conn *c, uint64_t ts)
{
    const struct bench_opts *o = t->s->o;
    uint64_t k = rnd(t) % o->keys;
    bench_key(t->key, o->key_size, o->keys, k);
    bool rd = pick_read(t);
    if (o->proto == BP_NATIVE) {
        const char *argv[3] = {rd ? "GET" : "SET", t->key, t->val};
        size_t lens[3] = {3, o->key_size, o->value_size};
        rabia_buf_clear(&t->op);
        int rc = rabia_kv_encode_argv(&t->op, rd ? 2 : 3, argv, lens);
        uint64_t seq = 0;
        if (rc == 0)
            rc = rabia_client_submit(c->cl, t->op.data, t->op.len, &seq);
        if (rc < 0) {
            fprintf(stderr, "rabia-bench: native submit failed: %s\n", strerror(-rc));
            complete(t, ts, true);
            return;
        }
        unsigned i = (unsigned)(seq % NATIVE_WIN);
        if (c->used[i])
            abort(); /* the window check in has_room() keeps seqs of one window apart */
        c->used[i] = true;
        c->seq[i] = seq;
        c->t[i] = ts;
        c->last_seq = seq;
        c->inflight++;
        return;
    }
    /* room for one more request: compact the unsent bytes first when needed */
    if (c->out_cap - c->out_len < t->s->max_req) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    char *p = c->out + c->out_len;
    size_t n;
    const char *host = o->addrs[c->addr];
    if (o->proto == BP_RESP) {
        if (rd) {
            n = bench_resp_get(p, t->key, o->key_size);
            pq_push(c, ts, true);
        } else {
            n = bench_resp_set(p, t->key, o->key_size, t->val, o->value_size);
            pq_push(c, ts, o->wait_replicas == 0);
            if (o->wait_replicas) {
                n += bench_resp_wait(p + n, o->wait_replicas);
                pq_push(c, ts, true);
            }
        }
    } else {
        n = rd ? bench_http_range(p, host, t->key, o->key_size)
               : bench_http_put(p, host, t->key, o->key_size, t->val, o->value_size);
        pq_push(c, ts, true);
    }
    if (c->out_len + n > c->out_cap)
        abort(); /* max_req bounds every request */
    c->out_len += n;
    c->inflight++;
}

static bool has_room(const struct thr *t, const struct conn *c)
{
    const struct bench_opts *o = t->s->o;
    if (c->dead || c->inflight >= o->pipeline)
        return false;
    if (o->proto == BP_NATIVE && c->inflight > 0) {
        /* the library blocks in submit when the next seq is a window past
         * the oldest in flight: never ask it to */
        uint64_t low = UINT64_MAX;
        for (unsigned i = 0; i < NATIVE_WIN; i++)
            if (c->used[i] && c->seq[i] < low)
                low = c->seq[i];
        if (c->last_seq + 1 - low >= NATIVE_WIN)
            return false;
    }
    return true;
}

static void flush(struct thr *t, struct conn *c)
{
    while (!c->dead && c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        conn_fail(t, c, "send", errno);
        return;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    bool want = c->out_len > 0;
    if (!c->dead && want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        if (epoll_ctl(t->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
            conn_fail(t, c, "epoll_ctl", errno);
            return;
        }
        c->want_out = want;
    }
}

static bool interrupted(const struct bench_opts *o)
{
    return o->interrupted && *o->interrupted;
}

static bool stopping(struct thr *t)
{
    return atomic_load_explicit(&t->s->stop, memory_order_relaxed) || now_ns() >= t->s->end ||
           interrupted(t->s->o);
}

static void on_readable(struct thr *t, struct conn *c)
{
    const struct bench_opts *o = t->s->o;
    for (int rounds = 0; rounds < 64 && !c->dead; rounds++) {
        if (c->in_len == c->in_cap) {
            conn_fail(t, c, "a reply larger than the receive buffer", 0);
            return;
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r == 0) {
            conn_fail(t, c, "closed by the server", 0);
            return;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_fail(t, c, "recv", errno);
            return;
        }
        c->in_len += (size_t)r;
        size_t pos = 0;
        unsigned completed = 0;
        while (pos < c->in_len) {
            bool is_err;
            long n = o->proto == BP_RESP ? bench_resp_reply(c->in + pos, c->in_len - pos, &is_err)
                                         : bench_http_reply(c->in + pos, c->in_len - pos, &is_err);
            if (n == 0)
                break;
            if (n < 0 || c->pq_n == 0) {
                conn_fail(t, c, n < 0 ? "malformed reply" : "a reply nobody asked for", 0);
                return;
            }
            pos += (size_t)n;
            struct pend p = c->pq[c->pq_head];
            c->pq_head = (c->pq_head + 1) % c->pq_cap;
            c->pq_n--;
            c->req_err |= is_err;
            if (p.last) {
                complete(t, p.t, c->req_err);
                c->req_err = false;
                c->inflight--;
                completed++;
            }
        }
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
        /* closed loop: every reply makes room for the next request */
        if (t->rate == 0 && completed > 0)
            while (!stopping(t) && has_room(t, c))
                issue(t, c, now_ns());
        if ((size_t)r < c->in_cap / 2)
            break; /* the socket is most likely drained */
    }
}

static int connect_one(struct thr *t, struct conn *c)
{
    const struct shared *s = t->s;
    int fd = socket(s->sa[c->addr].ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* blocking connect (on a LAN it is quick; a wrong port fails at once) */
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (const struct sockaddr *)&s->sa[c->addr], s->salen[c->addr]) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    c->fd = fd;
    return 0;
}

static int thr_setup(struct thr *t)
{
    const struct shared *s = t->s;
    const struct bench_opts *o = s->o;
    bench_hist_init(&t->hist);
    t->key = malloc(o->key_size + 1);
    t->val = malloc(o->value_size + 1);
    t->c = calloc(t->n, sizeof *t->c);
    if (!t->key || !t->val || !t->c)
        return -ENOMEM;
    memset(t->val, 'v', o->value_size);
    for (unsigned i = 0; i < t->n; i++) {
        t->c[i].fd = -1; /* thr_free closes only what was opened, even after a failure half-way */
        t->c[i].reg_fd = -1;
    }
    t->ep = epoll_create1(EPOLL_CLOEXEC); /* sockets, or the native clients' (rabia_client_io) */
    if (t->ep < 0)
        return -errno;
    for (unsigned i = 0; i < t->n; i++) {
        struct conn *c = &t->c[i];
        c->fd = -1;
        c->addr = (t->first + i) % o->n_addrs; /* round robin over the addresses */
        if (o->proto == BP_NATIVE) {
            const char *a[BENCH_MAX_ADDRS];
            /* every handle knows the whole cluster (it retries on the next
             * replica); it starts at client_id % n, so give ids that spread */
            for (unsigned j = 0; j < o->n_addrs; j++)
                a[j] = o->addrs[j];
            uint64_t id = ((rnd(t) & ~(uint64_t)0xffff) | (t->first + i)) & ((1ull << 62) - 1);
            id = id - id % o->n_addrs + c->addr;
            if (id == 0)
                id = o->n_addrs;
            struct rabia_client_cfg cfg = {.addrs = a,
                                           .n_addrs = o->n_addrs,
                                           .client_id = id,
                                           .max_outstanding = NATIVE_WIN};
            int rc = rabia_client_open(&c->cl, &cfg);
            if (rc < 0) {
                fprintf(stderr, "rabia-bench: native client for %s: %s\n", o->addrs[c->addr], strerror(-rc));
                return rc;
            }
            continue;
        }
        c->out_cap = s->out_cap;
        c->in_cap = s->in_cap;
        c->pq_cap = 2 * o->pipeline;
        c->out = malloc(c->out_cap);
        c->in = malloc(c->in_cap);
        c->pq = calloc(c->pq_cap, sizeof *c->pq);
        if (!c->out || !c->in || !c->pq) {
            fprintf(stderr, "rabia-bench: out of memory for the buffers of %u connections (%zu bytes each): "
                            "lower --connections, --pipeline or --value-size\n",
                    o->connections, c->out_cap + c->in_cap);
            return -ENOMEM;
        }
        int rc = connect_one(t, c);
        if (rc < 0) {
            fprintf(stderr, "rabia-bench: cannot connect to %s: %s (is the server running? check --addr)\n",
                    o->addrs[c->addr], strerror(-rc));
            return rc;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(t->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            return -errno;
    }
    return 0;
}

static void thr_free(struct thr *t)
{
    for (unsigned i = 0; t->c && i < t->n; i++) {
        struct conn *c = &t->c[i];
        if (c->fd >= 0)
            close(c->fd);
        rabia_client_close(c->cl);
        free(c->out);
        free(c->in);
        free(c->pq);
    }
    free(t->c);
    free(t->key);
    free(t->val);
    rabia_buf_free(&t->op);
    rabia_buf_free(&t->res);
    if (t->ep > 0)
        close(t->ep);
}

/* open loop: issue every request whose time has come (while a connection
 * has room); returns the intended time of the next one, or 0 when it must
 * wait for a free slot */
static uint64_t open_loop_issue(struct thr *t, uint64_t now)
{
    const struct shared *s = t->s;
    for (unsigned guard = 0; guard < 100000; guard++) {
        uint64_t ts = s->start + (uint64_t)((double)t->next_i * 1e9 / t->rate);
        if (ts >= s->end)
            return s->end;
        if (ts > now)
            return ts;
        struct conn *c = NULL;
        for (unsigned k = 0; k < t->n; k++) {
            struct conn *x = &t->c[(t->rr + k) % t->n];
            if (has_room(t, x)) {
                c = x;
                t->rr = (t->rr + k + 1) % t->n;
                break;
            }
        }
        if (!c)
            return 0; /* a backlog: it keeps its intended times */
        issue(t, c, ts);
        t->next_i++;
    }
    return now; /* more are due: come back at once */
}

static bool all_dead(const struct thr *t)
{
    for (unsigned i = 0; i < t->n; i++)
        if (!t->c[i].dead)
            return false;
    return true;
}

/* Keep c's socket registered in the thread's epoll set as the client asks
 * (rabia_client_io); lower *to_ns to its deadline. A socket of an earlier
 * connection (another conn_gen) was closed by the library and left the set
 * with it: its number may be another client's socket now, never touched. */
static int native_sync(struct thr *t, struct conn *c, uint64_t *to_ns)
{
    struct rabia_client_io io;
    rabia_client_io(c->cl, &io);
    if (c->reg_fd >= 0 && (io.conn_gen != c->reg_gen || io.fd != c->reg_fd)) {
        if (io.conn_gen == c->reg_gen) /* the same socket, with nothing to wait for now */
            (void)epoll_ctl(t->ep, EPOLL_CTL_DEL, c->reg_fd, NULL);
        c->reg_fd = -1;
    }
    if (io.fd >= 0) {
        struct epoll_event ev = {.events = (uint32_t)(unsigned short)io.events, .data.ptr = c};
        if (c->reg_fd < 0) {
            if (epoll_ctl(t->ep, EPOLL_CTL_ADD, io.fd, &ev) < 0)
                return -errno;
            c->reg_fd = io.fd;
            c->reg_gen = io.conn_gen;
            c->reg_ev = io.events;
        } else if (io.events != c->reg_ev) {
            if (epoll_ctl(t->ep, EPOLL_CTL_MOD, io.fd, &ev) < 0)
                return -errno;
            c->reg_ev = io.events;
        }
    }
    if (io.timeout_ms >= 0 && (uint64_t)io.timeout_ms * 1000000u < *to_ns)
        *to_ns = (uint64_t)io.timeout_ms * 1000000u;
    return 0;
}

/* Every request of c that completed (rabia_client_collect: no I/O), and
 * the closed loop's next ones in their place: how many completed, or a
 * negative errno. */
static int native_drain(struct thr *t, struct conn *c)
{
    for (int got = 0;; got++) {
        uint64_t seq = 0;
        int rc = rabia_client_collect(c->cl, &t->res, &seq);
        if (rc == -EINPROGRESS || rc == -ENOENT)
            return got;
        if (rc < 0 && seq == 0) {
            fprintf(stderr, "rabia-bench: native collect: %s\n", strerror(-rc));
            return rc;
        }
        unsigned j = (unsigned)(seq % NATIVE_WIN);
        if (!c->used[j] || c->seq[j] != seq)
            abort(); /* the library returned a seq we did not submit */
        c->used[j] = false;
        c->inflight--;
        bool err = rc != RABIA_REPLY_OK || (t->res.len > 0 && t->res.data[0] == '-');
        if (err && !t->told_fail) {
            fprintf(stderr, "rabia-bench: native request failed: %s\n",
                    rc < 0 ? strerror(-rc) : rc != RABIA_REPLY_OK ? rabia_reply_status_name(rc) : "error reply");
            t->told_fail = true;
        }
        complete(t, c->t[j], err);
        while (t->rate == 0 && !stopping(t) && has_room(t, c))
            issue(t, c, now_ns());
    }
}

/* The native clients of the thread, driven by one epoll set over their
 * sockets (client.h EVENT LOOPS): the thread sleeps until a reply, a
 * deadline of a client or the open loop's next request is due. */
static void run_native(struct thr *t)
{
    /* The requests issued for one connection in one pass go out with one
     * send (rabia_client_cork): one TCP segment for the replica to take in,
     * as a RESP pipeline's. */
    const bool cork = !t->s->o->native_no_cork;
    struct epoll_event evs[256];
    int rc = 0;
    if (t->rate == 0)
        for (unsigned i = 0; i < t->n; i++) {
            if (cork)
                rabia_client_cork(t->c[i].cl);
            while (has_room(t, &t->c[i]))
                issue(t, &t->c[i], now_ns());
            if (cork && (rc = rabia_client_uncork(t->c[i].cl)) < 0)
                goto fail;
        }
    uint64_t busy_until = 0; /* spin (no sleep in epoll) until then */
    while (!stopping(t)) {
        uint64_t now = now_ns(), wake = t->s->end;
        if (t->rate > 0) {
            uint64_t next = open_loop_issue(t, now);
            if (next && next < wake)
                wake = next;
        }
        /* at least every 100 ms: --requests and the stop flag are seen in
         * time; and no sleep within NATIVE_SPIN_NS of a pass that completed
         * requests (more replies are on their way: sleeping in epoll and
         * waking cost 3-4% of the throughput at -P 16 against polling) */
        uint64_t to_ns = wake > now && now >= busy_until ? wake - now : 0;
        if (to_ns > 100000000u)
            to_ns = 100000000u;
        for (unsigned i = 0; i < t->n; i++)
            if ((rc = native_sync(t, &t->c[i], &to_ns)) < 0)
                goto fail;
        struct timespec to = {.tv_sec = (time_t)(to_ns / 1000000000u), .tv_nsec = (long)(to_ns % 1000000000u)};
        int n = epoll_pwait2(t->ep, evs, 256, &to, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto fail;
        }
        for (int i = 0; i < n; i++)
            ((struct conn *)evs[i].data.ptr)->revents |= (short)evs[i].events;
        /* every client, not only those with events: process also runs
         * their timers (retries, reconnects), without a system call when
         * nothing is due */
        bool busy = false;
        for (unsigned i = 0; i < t->n; i++) {
            struct conn *c = &t->c[i];
            short re = c->revents;
            c->revents = 0;
            if ((rc = rabia_client_process(c->cl, re)) < 0)
                goto fail;
            if (cork)
                rabia_client_cork(c->cl);
            if ((rc = native_drain(t, c)) < 0)
                goto fail;
            busy |= rc > 0;
            if (cork && (rc = rabia_client_uncork(c->cl)) < 0)
                goto fail;
        }
        if (busy)
            busy_until = now_ns() + NATIVE_SPIN_NS;
    }
    return;
fail:
    fprintf(stderr, "rabia-bench: native clients: %s\n", strerror(-rc));
    t->rc = rc;
}

static void run_sockets(struct thr *t)
{
    struct epoll_event evs[256];
    if (t->rate == 0)
        for (unsigned i = 0; i < t->n; i++) {
            while (has_room(t, &t->c[i]))
                issue(t, &t->c[i], now_ns());
            flush(t, &t->c[i]);
        }
    for (;;) {
        uint64_t now = now_ns();
        if (stopping(t) || all_dead(t))
            break;
        uint64_t wake = t->s->end;
        if (t->rate > 0) {
            uint64_t next = open_loop_issue(t, now);
            if (next && next < wake)
                wake = next;
            for (unsigned i = 0; i < t->n; i++)
                flush(t, &t->c[i]);
        }
        struct timespec to = {0, 0};
        if (wake > now) {
            to.tv_sec = (time_t)((wake - now) / 1000000000ull);
            to.tv_nsec = (long)((wake - now) % 1000000000ull);
        }
        /* at least every 100 ms: --requests and the stop flag are seen in time */
        if (to.tv_sec > 0) {
            to.tv_sec = 0;
            to.tv_nsec = 100000000;
        }
        int n = epoll_pwait2(t->ep, evs, 256, &to, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            t->rc = -errno;
            fprintf(stderr, "rabia-bench: epoll_pwait2: %s\n", strerror(errno));
            return;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->dead)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(t, c);
            if (!c->dead)
                flush(t, c);
        }
    }
}

/* At the end of the run: requests sent (or, in an open loop, due) before
 * the end that got no reply (still in flight, or waiting for a free
 * pipeline slot) go into the histogram with their latency so far (end -
 * intended time), a lower bound. Leaving them out would hide a server that
 * stopped answering: in an open loop the coordinated omission this mode
 * avoids, in a closed loop the connections to a stalled server (one
 * replica of three SIGSTOPped) would vanish from the results, errors 0.
 * The warm-up's count too: one unanswered since then waited through the
 * whole window. They are not counted as completed requests (throughput).
 * A healthy closed loop ends with connections x pipeline of them, each at
 * a fraction of one latency. */
static void record_unfinished(struct thr *t)
{
    const struct shared *s = t->s;
    if (s->o->requests)
        return; /* it ended at the N-th reply, not at a deadline */
    uint64_t end = s->end, n = 0;
    for (unsigned i = 0; i < t->n; i++) {
        const struct conn *c = &t->c[i];
        for (unsigned k = 0; c->pq && k < c->pq_n; k++) {
            const struct pend *p = &c->pq[(c->pq_head + k) % c->pq_cap];
            if (p->last && p->t < end) {
                bench_hist_record(&t->hist, (end - p->t) / 1000);
                n++;
            }
        }
        for (unsigned j = 0; j < NATIVE_WIN; j++)
            if (c->used[j] && c->t[j] < end) {
                bench_hist_record(&t->hist, (end - c->t[j]) / 1000);
                n++;
            }
    }
    for (uint64_t i = t->next_i, guard = 0; t->rate > 0 && guard < 100000000; i++, guard++) { /* the backlog */
        uint64_t ts = s->start + (uint64_t)((double)i * 1e9 / t->rate);
        if (ts >= end)
            break;
        bench_hist_record(&t->hist, (end - ts) / 1000);
        n++;
    }
    t->unfinished = n;
}

static void *thr_main(void *arg)
{
    struct thr *t = arg;
    t->rc = thr_setup(t);
    pthread_barrier_wait(&t->s->ready); /* everyone connected; main sets the start time */
    pthread_barrier_wait(&t->s->go);
    if (t->rc == 0 && !atomic_load(&t->s->stop)) {
        if (t->s->o->proto == BP_NATIVE)
            run_native(t);
        else
            run_sockets(t);
        record_unfinished(t);
    }
    atomic_fetch_add(&t->s->finished, 1);
    return NULL;
}

static int resolve(const char *addr, struct sockaddr_storage *sa, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host || !colon[1])
        return -EINVAL;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    char *h = host;
    if (h[0] == '[' && h[strlen(h) - 1] == ']') {
        h[strlen(h) - 1] = 0;
        h++;
    }
    /* numeric ports only (rabia-bench.c checked 1..65535): no service names */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai = NULL;
    int rc = getaddrinfo(h, colon + 1, &hints, &ai);
    if (rc != 0 || !ai)
        return -EHOSTUNREACH;
    memcpy(sa, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

int bench_run(const struct bench_opts *o, struct bench_result *r)
{
    struct shared *s = calloc(1, sizeof *s);
    struct thr *t = calloc(o->threads, sizeof *t);
    int rc = 0;
    if (!s || !t) {
        free(s);
        free(t);
        fprintf(stderr, "rabia-bench: out of memory\n");
        return -ENOMEM;
    }
    s->o = o;
    for (unsigned i = 0; i < o->n_addrs; i++) {
        rc = resolve(o->addrs[i], &s->sa[i], &s->salen[i]);
        if (rc < 0) {
            fprintf(stderr, "rabia-bench: cannot resolve '%s': use HOST:PORT\n", o->addrs[i]);
            free(s);
            free(t);
            return rc;
        }
    }
    size_t longest_host = 0;
    for (unsigned i = 0; i < o->n_addrs; i++)
        if (strlen(o->addrs[i]) > longest_host)
            longest_host = strlen(o->addrs[i]);
    s->max_req = o->proto == BP_ETCD ? bench_http_max_req(o->addrs[0], o->key_size, o->value_size) + longest_host
                                     : bench_resp_max_req(o->key_size, o->value_size);
    s->out_cap = (size_t)(o->pipeline + 1) * s->max_req;
    s->in_cap = 65536 + (size_t)o->pipeline * (2 * ((size_t)o->key_size + o->value_size) + 1024);
    if (o->proto != BP_NATIVE) {
        /* every connection fills its send buffer at the start: buffers past
         * the machine's memory would end in a long swap-less crawl and the
         * OOM killer, not in an error */
        double need = (double)o->connections * (double)(s->out_cap + s->in_cap);
        double mem = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
        if (mem > 0 && need > mem) {
            fprintf(stderr, "rabia-bench: %u connections x pipeline %u with %u-byte values need %.0f MiB of "
                            "buffers, more than this machine's %.0f MiB of memory: lower --connections, --pipeline "
                            "or --value-size\n",
                    o->connections, o->pipeline, o->value_size, need / 1048576, mem / 1048576);
            free(s);
            free(t);
            return -ENOMEM;
        }
    }
    pthread_barrier_init(&s->ready, NULL, o->threads + 1);
    pthread_barrier_init(&s->go, NULL, o->threads + 1);
    unsigned first = 0, started = 0;
    for (unsigned i = 0; i < o->threads; i++) {
        t[i].s = s;
        t[i].idx = i;
        t[i].first = first;
        t[i].n = o->connections / o->threads + (i < o->connections % o->threads);
        first += t[i].n;
        t[i].rate = o->rate * t[i].n / o->connections;
        t[i].rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)(i + 1) * 0xbf58476d1ce4e5b9ull) ^ now_ns();
        if (pthread_create(&t[i].th, NULL, thr_main, &t[i]) != 0) {
            fprintf(stderr, "rabia-bench: cannot start thread %u\n", i);
            abort(); /* the barriers count on every thread */
        }
        started++;
    }
    pthread_barrier_wait(&s->ready);
    for (unsigned i = 0; i < o->threads; i++)
        if (t[i].rc < 0 && rc == 0)
            rc = t[i].rc;
    if (rc < 0)
        atomic_store(&s->stop, true);
    s->start = now_ns();
    s->measure_start = s->start + (uint64_t)(o->warmup * 1e9);
    s->end = s->measure_start + (uint64_t)((o->requests ? REQUESTS_MODE_CAP_S : o->duration) * 1e9);
    pthread_barrier_wait(&s->go);

    /* progress: one line a second on stderr */
    uint64_t last_done = 0, last_t = s->start;
    while (rc == 0) {
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
        uint64_t now = now_ns();
        if (now >= s->end + 200000000ull || atomic_load(&s->stop) || atomic_load(&s->finished) == o->threads ||
            interrupted(o))
            break;
        if (now - last_t >= 1000000000ull) {
            uint64_t done = 0, errs = 0;
            for (unsigned i = 0; i < o->threads; i++) {
                done += atomic_load_explicit(&t[i].done, memory_order_relaxed);
                errs += atomic_load_explicit(&t[i].errs, memory_order_relaxed);
            }
            if (!o->quiet)
                fprintf(stderr, "rabia-bench: %5.1f s %s: %.0f req/s, %" PRIu64 " done, %" PRIu64 " errors\n",
                        (double)(now - s->start) / 1e9, now < s->measure_start ? "warm-up" : "measuring",
                        (double)(done - last_done) * 1e9 / (double)(now - last_t), done, errs);
            last_done = done;
            last_t = now;
        }
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(t[i].th, NULL);

    memset(r, 0, sizeof *r);
    bench_hist_init(&r->hist);
    uint64_t last = s->measure_start;
    for (unsigned i = 0; i < o->threads; i++) {
        if (t[i].rc < 0 && rc == 0)
            rc = t[i].rc;
        bench_hist_merge(&r->hist, &t[i].hist);
        r->requests += t[i].measured;
        r->errors += t[i].errors;
        r->warmup_requests += t[i].warm;
        r->unfinished += t[i].unfinished;
        if (t[i].last_done > last)
            last = t[i].last_done;
        thr_free(&t[i]);
    }
    r->seconds = o->requests ? (double)(last - s->measure_start) / 1e9 : o->duration;
    r->throughput = r->seconds > 0 ? (double)r->requests / r->seconds : 0;
    r->p50 = bench_hist_quantile(&r->hist, 0.50);
    r->p90 = bench_hist_quantile(&r->hist, 0.90);
    r->p99 = bench_hist_quantile(&r->hist, 0.99);
    r->p999 = bench_hist_quantile(&r->hist, 0.999);
    r->max = r->hist.count ? r->hist.max : 0;
    r->mean = bench_hist_mean(&r->hist);
    pthread_barrier_destroy(&s->ready);
    pthread_barrier_destroy(&s->go);
    free(s);
    free(t);
    return rc;
}
