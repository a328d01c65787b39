/* The native client library against fake replicas: socket servers in
 * threads that speak the codec and apply requests through a real rabia_rsm
 * with the counter state machine (so sessions and dedup are real). Fakes
 * that stand for replicas of one cluster share one rsm under a mutex. */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "codec.h"
#include "counter.h"
#include "rabia/client.h"
#include "rsm.h"

/* ------------------------------------------------------------------ */
/* The replicated state the fakes share */

struct shared {
    pthread_mutex_t mu;
    struct rabia_rsm *rsm;
};

static void shared_init(struct shared *sh)
{
    pthread_mutex_init(&sh->mu, NULL);
    sh->rsm = rabia_rsm_create(&rabia_sm_counter, NULL);
    CHECK(sh->rsm != NULL);
}

static void shared_free(struct shared *sh)
{
    rabia_rsm_destroy(sh->rsm);
    pthread_mutex_destroy(&sh->mu);
}

static int64_t shared_value(struct shared *sh)
{
    pthread_mutex_lock(&sh->mu);
    int64_t v = rabia_counter_value(rabia_rsm_sm(sh->rsm));
    pthread_mutex_unlock(&sh->mu);
    return v;
}

struct capture {
    int status;
    struct rabia_buf *reply;
};

static void capture_fn(void *ctx, uint64_t client_id, uint64_t seq, int status,
                       const uint8_t *reply, size_t len)
{
    struct capture *cap = ctx;
    cap->status = status;
    rabia_buf_clear(cap->reply);
    if (len)
        rabia_buf_append(cap->reply, reply, len);
}

/* Apply one request as a one-request batch in the next slot. */
static int apply_one(struct shared *sh, const struct rabia_msg *m, struct rabia_buf *reply)
{
    struct rabia_buf body = {0};
    struct rabia_req r = {.client_id = m->u64, .seq = m->slot, .ack = m->u64b,
                          .op = m->body, .op_len = m->body_len};
    CHECK_EQ(rabia_batch_init(&body), 0);
    CHECK_EQ(rabia_batch_append(&body, &r), 0);
    struct capture cap = {.status = -1, .reply = reply};
    pthread_mutex_lock(&sh->mu);
    int rc = rabia_rsm_apply(sh->rsm, rabia_rsm_applied(sh->rsm) + 1, body.data, body.len,
                             capture_fn, &cap);
    pthread_mutex_unlock(&sh->mu);
    CHECK_EQ(rc, 0);
    rabia_buf_free(&body);
    return cap.status;
}

/* ------------------------------------------------------------------ */
/* A fake replica */

enum fake_mode {
    FM_NORMAL,    /* apply and reply */
    FM_DROP,      /* reply to reply_n, apply silent_n without replying, ignore
                     ignore_n, then close the connection and the listener */
    FM_BLACKHOLE, /* read and never answer */
    FM_REDIRECT,  /* answer REDIRECT, apply nothing */
    FM_GARBAGE,   /* answer a request with bytes that are not a frame */
    FM_FLOOD,     /* answer a request or STATUS_REQ with 3 s of accepted
                     CLIENT_AUTH_REPLY frames, a stream that never ends as
                     far as the client can tell */
    FM_EXPIRE,    /* open the session, answer the next request with
                     SESSION_EXPIRED, then answer nothing more */
    FM_UNAVAILABLE, /* answer UNAVAILABLE with UNAVAIL_WHY as the reason, apply
                       nothing; with reply_n != 0 session OPENs are served */
};

#define UNAVAIL_WHY "disk full on the fake's log"

#define FAKE_CONNS 8

struct fconn {
    int fd;
    struct rabia_buf rx;
};

struct fake {
    struct shared *sh;
    int mode;
    int reverse; /* NORMAL: gather 20 ms, then reply to the batch in reverse */
    int reply_n, silent_n, ignore_n;
    int lfd;
    uint16_t port;
    char addr[32];
    pthread_t th;
    atomic_int stop;
    /* Statistics, read after the join (reads: recv calls that returned
     * bytes, read while the fake runs). */
    int seen, applied, replied, reordered, conns;
    atomic_int reads;
    uint64_t last_replied, max_gap;
    struct fconn c[FAKE_CONNS];
    /* Replies of the chunk being handled. */
    uint64_t rcid[256], rseq[256];
    int rstat[256];
    struct rabia_buf rres[256];
};

static int listen_any(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(fd, 16), 0);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

static void send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the client went away */
        p += w;
        n -= (size_t)w;
    }
}

static void send_msg(int fd, const struct rabia_msg *m)
{
    uint8_t buf[4096];
    int n = rabia_msg_encode(m, buf, sizeof buf);
    CHECK(n > 0);
    if (n > 0)
        send_all(fd, buf, (size_t)n);
}

static void fconn_close(struct fconn *fc)
{
    if (fc->fd >= 0)
        close(fc->fd);
    fc->fd = -1;
    rabia_buf_free(&fc->rx);
}

/* FM_FLOOD: 3 s of accepted auth replies, 1 MiB per send, until the client
 * closes. */
static void flood(int fd)
{
    static uint8_t buf[1 << 20];
    static size_t n;
    if (!n) {
        struct rabia_msg a = {.type = RABIA_MSG_CLIENT_AUTH_REPLY, .value = 0};
        int k = rabia_msg_encode(&a, buf, sizeof buf);
        CHECK(k > 0);
        for (n = (size_t)k; n + (size_t)k <= sizeof buf; n += (size_t)k)
            memcpy(buf + n, buf, (size_t)k);
    }
    int64_t end = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    end = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 3000;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 >= end)
            return;
        for (size_t off = 0; off < n;) {
            ssize_t w = send(fd, buf + off, n - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return; /* the client went away */
            off += (size_t)w;
        }
    }
}

#define MAX_CHUNK 256 /* = the reply arrays of struct fake */

/* Handle what arrived on connection fc. Returns 1 when the fake dies. */
static int fake_serve(struct fake *f, struct fconn *fc)
{
    uint8_t tmp[65536];
    ssize_t n = recv(fc->fd, tmp, sizeof tmp, 0);
    if (n <= 0) {
        fconn_close(fc);
        return 0;
    }
    atomic_fetch_add(&f->reads, 1);
    rabia_buf_append(&fc->rx, tmp, (size_t)n);
    if (f->reverse) { /* gather more requests so that replies can be reordered */
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        while ((n = recv(fc->fd, tmp, sizeof tmp, MSG_DONTWAIT)) > 0)
            rabia_buf_append(&fc->rx, tmp, (size_t)n);
    }
    uint64_t *rcid = f->rcid, *rseq = f->rseq;
    int *rstat = f->rstat;
    struct rabia_buf *rres = f->rres;
    int nr = 0, dead = 0;
    size_t off = 0;
    while (fc->rx.len - off >= RABIA_FRAME_HEADER && !dead) {
        size_t flen;
        struct rabia_msg m;
        CHECK_EQ(rabia_frame_peek(fc->rx.data + off, fc->rx.len - off, &flen), 0);
        if (flen > fc->rx.len - off)
            break;
        CHECK_EQ(rabia_msg_decode(fc->rx.data + off, flen, &m), 0);
        off += flen;
        if (f->mode == FM_FLOOD && (m.type == RABIA_MSG_STATUS_REQ || m.type == RABIA_MSG_CLIENT_REQ)) {
            flood(fc->fd);
            fconn_close(fc);
            return 0;
        }
        if (m.type == RABIA_MSG_STATUS_REQ) {
            char text[128];
            snprintf(text, sizeof text, "role: fake\nport: %u\n", f->port);
            struct rabia_msg s = {.type = RABIA_MSG_STATUS, .body = (const uint8_t *)text,
                                  .body_len = (uint32_t)strlen(text)};
            send_msg(fc->fd, &s);
            continue;
        }
        CHECK_EQ(m.type, RABIA_MSG_CLIENT_REQ);
        CHECK_EQ(m.from, 0);
        CHECK(m.u64b <= m.slot && m.slot < m.u64b + RABIA_RSM_WINDOW);
        if (m.slot - m.u64b > f->max_gap)
            f->max_gap = m.slot - m.u64b;
        int k = f->seen++;
        if (f->mode == FM_BLACKHOLE || (f->mode == FM_EXPIRE && k >= 2))
            continue;
        if (f->mode == FM_EXPIRE) {
            uint8_t id[8] = {7, 0, 0, 0, 0, 0, 0, 0x40}; /* RABIA_SESSION_ASSIGNED | 7 */
            struct rabia_msg r = {.type = RABIA_MSG_CLIENT_REPLY, .u64 = m.u64, .slot = m.slot,
                                  .value = k == 0 ? RABIA_REPLY_OK : RABIA_REPLY_SESSION_EXPIRED,
                                  .body = k == 0 ? id : NULL, .body_len = k == 0 ? 8 : 0};
            send_msg(fc->fd, &r);
            continue;
        }
        if (f->mode == FM_GARBAGE) {
            static const uint8_t junk[32] = "this is not a rabia frame......";
            send_all(fc->fd, junk, sizeof junk);
            continue;
        }
        if (nr >= MAX_CHUNK)
            break;
        rcid[nr] = m.u64;
        rseq[nr] = m.slot;
        if (f->mode == FM_REDIRECT) {
            rstat[nr] = RABIA_REPLY_REDIRECT;
            rabia_buf_clear(&rres[nr]);
            nr++;
            continue;
        }
        if (f->mode == FM_UNAVAILABLE && !(f->reply_n && m.body_len == 0)) {
            rstat[nr] = RABIA_REPLY_UNAVAILABLE;
            rabia_buf_clear(&rres[nr]);
            rabia_buf_append(&rres[nr], UNAVAIL_WHY, strlen(UNAVAIL_WHY));
            nr++;
            continue;
        }
        if (f->mode == FM_DROP && k >= f->reply_n + f->silent_n) {
            if (k + 1 >= f->reply_n + f->silent_n + f->ignore_n)
                dead = 1; /* ignored: neither applied nor answered */
            continue;
        }
        rstat[nr] = apply_one(f->sh, &m, &rres[nr]);
        f->applied++;
        if (f->mode == FM_DROP && k >= f->reply_n) {
            if (k + 1 >= f->reply_n + f->silent_n + f->ignore_n)
                dead = 1;
            continue; /* applied, never answered */
        }
        nr++;
    }
    /* Consume what was handled. */
    memmove(fc->rx.data, fc->rx.data + off, fc->rx.len - off);
    fc->rx.len -= off;
    for (int i = 0; i < nr; i++) {
        int j = f->reverse ? nr - 1 - i : i;
        struct rabia_msg r = {.type = RABIA_MSG_CLIENT_REPLY, .u64 = rcid[j], .slot = rseq[j],
                              .value = (uint8_t)rstat[j], .body = rres[j].data,
                              .body_len = (uint32_t)rres[j].len};
        if (f->replied > 0 && rseq[j] < f->last_replied)
            f->reordered++;
        f->last_replied = rseq[j];
        f->replied++;
        send_msg(fc->fd, &r);
    }
    return dead ? 1 : 0;
}

static void *fake_main(void *arg);

static void fake_start(struct fake *f, struct shared *sh, int mode)
{
    memset(f, 0, sizeof *f);
    f->sh = sh;
    f->mode = mode;
    for (int i = 0; i < FAKE_CONNS; i++)
        f->c[i].fd = -1;
    f->lfd = listen_any(&f->port);
    snprintf(f->addr, sizeof f->addr, "127.0.0.1:%u", f->port);
}

static void fake_run(struct fake *f)
{
    CHECK_EQ(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->th, NULL);
    for (int i = 0; i < FAKE_CONNS; i++)
        fconn_close(&f->c[i]);
    for (int i = 0; i < MAX_CHUNK; i++)
        rabia_buf_free(&f->rres[i]);
    if (f->lfd >= 0)
        close(f->lfd);
    f->lfd = -1;
}

static void fake_die(struct fake *f)
{
    for (int i = 0; i < FAKE_CONNS; i++)
        fconn_close(&f->c[i]);
    if (f->lfd >= 0)
        close(f->lfd);
    f->lfd = -1;
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p[1 + FAKE_CONNS];
        int idx[1 + FAKE_CONNS], n = 0;
        if (f->lfd >= 0) {
            p[n] = (struct pollfd){.fd = f->lfd, .events = POLLIN};
            idx[n++] = -1;
        }
        for (int i = 0; i < FAKE_CONNS; i++)
            if (f->c[i].fd >= 0) {
                p[n] = (struct pollfd){.fd = f->c[i].fd, .events = POLLIN};
                idx[n++] = i;
            }
        if (poll(p, (nfds_t)n, 20) <= 0)
            continue;
        for (int k = 0; k < n; k++) {
            if (!p[k].revents)
                continue;
            if (idx[k] < 0) {
                if (f->lfd < 0)
                    break;
                int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                    continue;
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                f->conns++;
                int slot = -1;
                for (int i = 0; i < FAKE_CONNS; i++)
                    if (f->c[i].fd < 0) {
                        slot = i;
                        break;
                    }
                if (slot < 0)
                    close(fd);
                else
                    f->c[slot].fd = fd;
                continue;
            }
            struct fconn *fc = &f->c[idx[k]];
            if (fc->fd != p[k].fd)
                continue; /* closed meanwhile (the fake died) */
            if (fake_serve(f, fc)) {
                fake_die(f);
                break;
            }
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Helpers */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct rabia_client *client(const char *const *addrs, size_t n, uint64_t id,
                                   uint32_t timeout_ms, uint32_t attempts, uint32_t maxout)
{
    struct rabia_client *c = NULL;
    struct rabia_client_cfg cfg = {.addrs = addrs, .n_addrs = n, .client_id = id,
                                   .timeout_ms = timeout_ms, .max_attempts = attempts,
                                   .max_outstanding = maxout};
    CHECK_EQ(rabia_client_open(&c, &cfg), 0);
    return c;
}

static struct rabia_buf inc_op;

/* Decode a counter result; -1 if it is not a success. */
static int64_t value_of(const struct rabia_buf *res)
{
    int64_t v = -1;
    if (rabia_counter_decode_result(res->data, res->len, &v, NULL, NULL) != 0)
        return -1;
    return v;
}

#define MAXV 512
/* Every value 1..n seen exactly once. */
static void mark(uint8_t *seen, int64_t v)
{
    CHECK(v >= 1 && v < MAXV);
    if (v >= 1 && v < MAXV) {
        CHECK_EQ(seen[v], 0);
        seen[v] = 1;
    }
}

static void check_all_seen(const uint8_t *seen, int n)
{
    for (int v = 1; v <= n; v++)
        CHECK_EQ(seen[v], 1);
}

/* One fake replica in `mode`, running, over a fresh shared state. */
static void one_fake(struct shared *sh, struct fake *a, int mode)
{
    shared_init(sh);
    fake_start(a, sh, mode);
    fake_run(a);
}

/* A, which answers 10 requests, applies 5 more silently, ignores 5 and then
 * closes the connection and its listener; B, which answers everything. */
static void drop_pair(struct shared *sh, struct fake *a, struct fake *b)
{
    shared_init(sh);
    fake_start(a, sh, FM_DROP);
    a->reply_n = 10;
    a->silent_n = 5;
    a->ignore_n = 5;
    fake_start(b, sh, FM_NORMAL);
    fake_run(a);
    fake_run(b);
}

/* ------------------------------------------------------------------ */
/* Tests */

/* 64 pipelined requests answered out of order; more than a window's worth
 * with wait(any); nothing lost or applied twice. */
static void test_pipelined(void)
{
    struct shared sh;
    shared_init(&sh);
    struct fake a;
    fake_start(&a, &sh, FM_NORMAL);
    a.reverse = 1;
    fake_run(&a);
    const char *addrs[] = {a.addr};
    struct rabia_client *c = client(addrs, 1, 1, 5000, 3, 0);
    uint8_t seen[MAXV] = {0};
    struct rabia_buf res = {0};

    uint64_t seqs[64];
    for (int i = 0; i < 64; i++) {
        CHECK_EQ(rabia_client_submit(c, inc_op.data, inc_op.len, &seqs[i]), 0);
        CHECK_EQ(seqs[i], (uint64_t)i + 1);
    }
    for (int i = 0; i < 64; i++) {
        uint64_t done = 0;
        CHECK_EQ(rabia_client_wait(c, seqs[i], &res, &done, 10000), RABIA_REPLY_OK);
        CHECK_EQ(done, seqs[i]);
        mark(seen, value_of(&res));
    }
    CHECK_EQ(rabia_client_in_flight(c), 0);

    /* 100 more: submit blocks once 64 are in flight; collect in any order. */
    uint8_t got[256] = {0};
    for (int i = 0; i < 100; i++)
        CHECK_EQ(rabia_client_submit(c, inc_op.data, inc_op.len, NULL), 0);
    for (int i = 0; i < 100; i++) {
        uint64_t done = 0;
        CHECK_EQ(rabia_client_wait(c, 0, &res, &done, 10000), RABIA_REPLY_OK);
        CHECK(done >= 65 && done <= 164);
        if (done >= 65 && done <= 164) {
            CHECK_EQ(got[done - 65], 0);
            got[done - 65] = 1;
        }
        mark(seen, value_of(&res));
    }
    CHECK_EQ(rabia_client_wait(c, 0, &res, NULL, 0), -ENOENT);
    CHECK_EQ(rabia_client_wait(c, 3, &res, NULL, 0), -ENOENT);
    rabia_client_close(c);
    fake_stop(&a);
    check_all_seen(seen, 164);
    CHECK_EQ(shared_value(&sh), 164);
    CHECK(a.reordered > 0);
    CHECK_EQ(a.conns, 1);
    rabia_buf_free(&res);
    shared_free(&sh);
}

/* Corked submits write nothing until the uncork, which writes them all
 * with one send (the fake takes them in with one recv); a wait sends what a
 * cork holds; a cork holding more than a window still blocks on it. */
static void test_cork(void)
{
    struct shared sh;
    struct fake a;
    one_fake(&sh, &a, FM_NORMAL);
    const char *addrs[] = {a.addr};
    struct rabia_client *c = client(addrs, 1, 1, 5000, 3, 0);
    struct rabia_buf res = {0};
    uint8_t seen[MAXV] = {0};
    CHECK_EQ(rabia_client_call(c, inc_op.data, inc_op.len, &res), RABIA_REPLY_OK); /* session open */
    mark(seen, value_of(&res));
    int reads0 = atomic_load(&a.reads);

    rabia_client_cork(c);
    uint64_t seqs[40];
    for (int i = 0; i < 40; i++)
        CHECK_EQ(rabia_client_submit(c, inc_op.data, inc_op.len, &seqs[i]), 0);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK_EQ(atomic_load(&a.reads), reads0); /* nothing written while corked */
    CHECK_EQ(shared_value(&sh), 1);
    CHECK_EQ(rabia_client_uncork(c), 0);
    for (int i = 0; i < 40; i++) {
        CHECK_EQ(rabia_client_wait(c, seqs[i], &res, NULL, 10000), RABIA_REPLY_OK);
        mark(seen, value_of(&res));
    }
    CHECK_EQ(atomic_load(&a.reads), reads0 + 1); /* 40 requests, one send, one recv */
    CHECK_EQ(rabia_client_uncork(c), 0);           /* nothing held: a no-op */

    /* a wait sends what the cork holds, without an uncork */
    rabia_client_cork(c);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(rabia_client_submit(c, inc_op.data, inc_op.len, &seqs[i]), 0);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(rabia_client_wait(c, seqs[i], &res, NULL, 10000), RABIA_REPLY_OK);
        mark(seen, value_of(&res));
    }
    /* more than a window corked: the submit past it sends and waits */
    for (int i = 0; i < 100; i++)
        CHECK_EQ(rabia_client_submit(c, inc_op.data, inc_op.len, NULL), 0);
    CHECK_EQ(rabia_client_uncork(c), 0);
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(rabia_client_wait(c, 0, &res, NULL, 10000), RABIA_REPLY_OK);
        mark(seen, value_of(&res));
    }
    CHECK_EQ(rabia_client_in_flight(c), 0);
    rabia_client_close(c);
    fake_stop(&a);
    check_all_seen(seen, 146);
    CHECK_EQ(shared_value(&sh), 146);
    CHECK_EQ(a.conns, 1);
    rabia_buf_free(&res);
    shared_free(&sh);
}

/* max_outstanding bounds seq - ack on the wire; submit blocks meanwhile. */
static void test_window(void)
{
    struct shared sh;
    shared_init(&sh);
    struct fake a;
    fake_start(&a, &sh, FM_NORMAL);
    a.reverse = 1;
    fake_run(&a);
    const char *addrs[] = {a.addr};
    struct rabia_client *c = client(addrs, 1, 7, 5000, 3, 8);
    for (int i = 0; i < 30; i++) {
        CHECK_EQ(rabia_client_submit(c, inc_op.data, inc_op.len, NULL), 0);
        CHECK(rabia_client_in_flight(c) <= 8);
    }
    uint8_t seen[MAXV] = {0};
    struct rabia_buf res = {0};
    for (int i = 0; i < 30; i++) {
        CHECK_EQ(rabia_client_wait(c, 0, &res, NULL, 10000), RABIA_REPLY_OK);
        mark(seen, value_of(&res));
    }
    rabia_client_close(c);
    fake_stop(&a);
    check_all_seen(seen, 30);
    CHECK(a.max_gap < 8);
    CHECK_EQ(shared_value(&sh), 30);
    rabia_buf_free(&res);
    shared_free(&sh);
}

/* Replica A answers 10 requests, applies 5 more without answering, reads 5
 * it never applies, then drops the connection and stops listening. The
 * client moves to B (same replicated state) and resends what is in flight:
 * every increment takes effect exactly once. */
static void test_failover_drop(void)
{
    struct shared sh;
    struct fake a, b;
    drop_pair(&sh, &a, &b);
    const char *addrs[] = {a.addr, b.addr};
    int64_t t0 = mono_ms();
    struct rabia_client *c = client(addrs, 2, 2 /* 2 % 2 = 0: starts at A */, 3000, 5, 0);
    uint64_t seqs[40];
    for (int i = 0; i < 40; i++)
        CHECK_EQ(rabia_client_submit(c, inc_op.data, inc_op.len, &seqs[i]), 0);
    uint8_t seen[MAXV] = {0};
    struct rabia_buf res = {0};
    for (int i = 0; i < 40; i++) {
        CHECK_EQ(rabia_client_wait(c, seqs[i], &res, NULL, 20000), RABIA_REPLY_OK);
        mark(seen, value_of(&res));
    }
    int64_t took = mono_ms() - t0;
    rabia_client_close(c);
    fake_stop(&a);
    fake_stop(&b);
    check_all_seen(seen, 40);
    CHECK_EQ(shared_value(&sh), 40);
    CHECK_EQ(a.seen, 20);
    CHECK_EQ(a.applied, 15);
    CHECK(b.seen >= 30); /* at most A's 10 answers arrived */
    CHECK(took < 3000);  /* moved on at the disconnect, not after a timeout */
    rabia_buf_free(&res);
    shared_free(&sh);
}

/* An event loop of the caller's own (rabia_client_io / _process /
 * _collect) drives two clients with poll() alone, never waiting inside the
 * library: every request answered exactly once, through a failover (A
 * closes the connection after 10 answers) that moves one client to a new
 * socket (conn_gen changes); a client with nothing in flight asks for
 * nothing; collect does no I/O. */
static void test_event_loop(void)
{
    struct shared sh;
    struct fake a, b;
    drop_pair(&sh, &a, &b);
    const char *addrs[] = {a.addr, b.addr};
    struct rabia_client *cl[2] = {client(addrs, 2, 2 /* starts at A */, 3000, 5, 0),
                                  client(addrs, 2, 3 /* starts at B */, 3000, 5, 0)};
    struct rabia_client_io io;
    rabia_client_io(cl[0], &io);
    CHECK(io.fd == -1 && io.events == 0 && io.timeout_ms == -1); /* nothing in flight */
    struct rabia_buf res = {0};
    CHECK_EQ(rabia_client_collect(cl[0], &res, NULL), -ENOENT);
    uint8_t seen[MAXV] = {0};
    int done[2] = {0, 0}, sent[2] = {0, 0};
    uint64_t gen0[2];
    for (int k = 0; k < 2; k++) {
        rabia_client_cork(cl[k]);
        for (; sent[k] < 40; sent[k]++)
            CHECK_EQ(rabia_client_submit(cl[k], inc_op.data, inc_op.len, NULL), 0);
        CHECK_EQ(rabia_client_uncork(cl[k]), 0);
        CHECK_EQ(rabia_client_collect(cl[k], &res, NULL), -EINPROGRESS);
        rabia_client_io(cl[k], &io);
        gen0[k] = io.conn_gen;
    }
    int64_t t0 = mono_ms();
    while ((done[0] < 40 || done[1] < 40) && mono_ms() - t0 < 20000) {
        struct pollfd p[2];
        int timeout = -1;
        for (int k = 0; k < 2; k++) {
            rabia_client_io(cl[k], &io);
            p[k] = (struct pollfd){.fd = io.fd, .events = io.events}; /* fd -1: poll skips it */
            if (io.timeout_ms >= 0 && (timeout < 0 || io.timeout_ms < timeout))
                timeout = io.timeout_ms;
        }
        CHECK(timeout >= 0); /* something in flight: a deadline */
        int r = poll(p, 2, timeout);
        CHECK(r >= 0);
        for (int k = 0; k < 2; k++) {
            CHECK_EQ(rabia_client_process(cl[k], r > 0 ? p[k].revents : 0), 0);
            int st;
            while ((st = rabia_client_collect(cl[k], &res, NULL)) >= 0) {
                CHECK_EQ(st, RABIA_REPLY_OK);
                mark(seen, value_of(&res));
                done[k]++;
            }
            CHECK(st == -EINPROGRESS || st == -ENOENT);
        }
    }
    CHECK_EQ(done[0], 40);
    CHECK_EQ(done[1], 40);
    rabia_client_io(cl[0], &io);
    CHECK(io.conn_gen > gen0[0]); /* failed over from A to B: a new socket */
    CHECK(io.fd == -1 && io.timeout_ms == -1);
    rabia_client_io(cl[1], &io);
    CHECK_EQ(io.conn_gen, gen0[1]); /* B all along */
    for (int k = 0; k < 2; k++)
        rabia_client_close(cl[k]);
    fake_stop(&a);
    fake_stop(&b);
    check_all_seen(seen, 80);
    CHECK_EQ(shared_value(&sh), 80);
    rabia_buf_free(&res);
    shared_free(&sh);
}

/* A accepts and reads but never answers: after timeout_ms the client moves
 * to B and resends. */
static void test_timeout_failover(void)
{
    struct shared sh;
    shared_init(&sh);
    struct fake a, b;
    fake_start(&a, &sh, FM_BLACKHOLE);
    fake_start(&b, &sh, FM_NORMAL);
    fake_run(&a);
    fake_run(&b);
    const char *addrs[] = {a.addr, b.addr};
    int64_t t0 = mono_ms();
    struct rabia_client *c = client(addrs, 2, 4, 200, 5, 0);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(rabia_client_submit(c, inc_op.data, inc_op.len, NULL), 0);
    uint8_t seen[MAXV] = {0};
    struct rabia_buf res = {0};
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(rabia_client_wait(c, 0, &res, NULL, 10000), RABIA_REPLY_OK);
        mark(seen, value_of(&res));
    }
    int64_t took = mono_ms() - t0;
    rabia_client_close(c);
    fake_stop(&a);
    fake_stop(&b);
    check_all_seen(seen, 10);
    CHECK_EQ(shared_value(&sh), 10);
    CHECK(a.seen >= 1);
    CHECK(took >= 190 && took < 5000);
    rabia_buf_free(&res);
    shared_free(&sh);
}

/* A says REDIRECT, B answers garbage (a malformed frame: disconnect), C
 * serves. */
static void test_redirect_garbage(void)
{
    struct shared sh;
    shared_init(&sh);
    struct fake a, b, d;
    fake_start(&a, &sh, FM_REDIRECT);
    fake_start(&b, &sh, FM_GARBAGE);
    fake_start(&d, &sh, FM_NORMAL);
    fake_run(&a);
    fake_run(&b);
    fake_run(&d);
    const char *addrs[] = {a.addr, b.addr, d.addr};
    struct rabia_client *c = client(addrs, 3, 3 /* starts at A */, 2000, 5, 0);
    uint8_t seen[MAXV] = {0};
    struct rabia_buf res = {0};
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(rabia_client_call(c, inc_op.data, inc_op.len, &res), RABIA_REPLY_OK);
        mark(seen, value_of(&res));
    }
    rabia_client_close(c);
    fake_stop(&a);
    fake_stop(&b);
    fake_stop(&d);
    check_all_seen(seen, 5);
    CHECK_EQ(shared_value(&sh), 5);
    CHECK(a.seen >= 1);
    CHECK(b.seen >= 1);
    CHECK_EQ(d.conns, 1);
    rabia_buf_free(&res);
    shared_free(&sh);
}

/* Attempts run out: -ETIMEDOUT when a replica got the request without
 * answering (outcome unknown); the connect error when none was reached;
 * REDIRECT when every replica refused it. */
static void test_give_up(void)
{
    struct shared sh;
    shared_init(&sh);
    struct rabia_buf res = {0};

    struct fake a, b;
    fake_start(&a, &sh, FM_BLACKHOLE);
    fake_start(&b, &sh, FM_BLACKHOLE);
    fake_run(&a);
    fake_run(&b);
    const char *bh[] = {a.addr, b.addr};
    struct rabia_client *c = client(bh, 2, 0, 100, 3, 0);
    CHECK(rabia_client_id(c) != 0);
    int64_t t0 = mono_ms();
    uint64_t seq = 0, done = 0;
    CHECK_EQ(rabia_client_submit(c, inc_op.data, inc_op.len, &seq), 0);
    CHECK_EQ(rabia_client_wait(c, seq, &res, &done, -1), -ETIMEDOUT);
    CHECK_EQ(done, seq);
    int64_t took = mono_ms() - t0;
    CHECK(took >= 290 && took < 3000);
    CHECK_EQ(rabia_client_in_flight(c), 0);
    rabia_client_close(c);
    fake_stop(&a);
    fake_stop(&b);

    /* Nothing listens there. */
    uint16_t p1, p2;
    int l1 = listen_any(&p1), l2 = listen_any(&p2);
    close(l1);
    close(l2);
    char a1[32], a2[32];
    snprintf(a1, sizeof a1, "127.0.0.1:%u", p1);
    snprintf(a2, sizeof a2, "localhost:%u", p2);
    const char *down[] = {a1, a2};
    c = client(down, 2, 0, 200, 3, 0);
    t0 = mono_ms();
    CHECK_EQ(rabia_client_call(c, inc_op.data, inc_op.len, &res), -ECONNREFUSED);
    CHECK(mono_ms() - t0 < 3000);
    rabia_client_close(c);

    struct fake r1, r2;
    fake_start(&r1, &sh, FM_REDIRECT);
    fake_start(&r2, &sh, FM_REDIRECT);
    fake_run(&r1);
    fake_run(&r2);
    const char *redir[] = {r1.addr, r2.addr};
    c = client(redir, 2, 0, 1000, 4, 0);
    CHECK_EQ(rabia_client_call(c, inc_op.data, inc_op.len, &res), RABIA_REPLY_REDIRECT);
    rabia_client_close(c);
    fake_stop(&r1);
    fake_stop(&r2);
    CHECK_EQ(r1.seen + r2.seen, 4);

    CHECK_EQ(shared_value(&sh), 0);
    rabia_buf_free(&res);
    shared_free(&sh);
}

/* Every replica refuses with UNAVAILABLE and says why (a full disk): when
 * the attempts run out, the result is that reason, whether the refusals
 * answered the session's OPEN (the request waited for it) or the request
 * itself; it was dropped, so a caller could only say "UNAVAILABLE"
 * (found by review). A REDIRECT without a reason leaves the result empty. */
static void test_refusal_reason(void)
{
    struct shared sh;
    shared_init(&sh);
    struct rabia_buf res = {0};
    for (int open_ok = 0; open_ok <= 1; open_ok++) {
        struct fake a, b;
        fake_start(&a, &sh, FM_UNAVAILABLE);
        fake_start(&b, &sh, FM_UNAVAILABLE);
        a.reply_n = b.reply_n = open_ok;
        fake_run(&a);
        fake_run(&b);
        const char *addrs[] = {a.addr, b.addr};
        struct rabia_client *c = client(addrs, 2, 0, 1000, 3, 0);
        rabia_buf_append(&res, "stale", 5); /* replaced by the reason */
        CHECK_EQ(rabia_client_call(c, inc_op.data, inc_op.len, &res), RABIA_REPLY_UNAVAILABLE);
        CHECK(res.len == strlen(UNAVAIL_WHY) && memcmp(res.data, UNAVAIL_WHY, res.len) == 0);
        /* the event loop's collect hands over the same */
        uint64_t seq = 0, done = 0;
        CHECK_EQ(rabia_client_submit(c, inc_op.data, inc_op.len, &seq), 0);
        int rc;
        do {
            struct rabia_client_io io;
            rabia_client_io(c, &io);
            struct pollfd p = {.fd = io.fd, .events = io.events, .revents = 0};
            int r = io.fd >= 0 ? poll(&p, 1, io.timeout_ms) : poll(NULL, 0, io.timeout_ms);
            CHECK_EQ(rabia_client_process(c, r > 0 ? p.revents : 0), 0);
        } while ((rc = rabia_client_collect(c, &res, &done)) == -EINPROGRESS);
        CHECK_EQ(rc, RABIA_REPLY_UNAVAILABLE);
        CHECK_EQ(done, seq);
        CHECK(res.len == strlen(UNAVAIL_WHY) && memcmp(res.data, UNAVAIL_WHY, res.len) == 0);
        rabia_client_close(c);
        fake_stop(&a);
        fake_stop(&b);
    }
    struct fake r1;
    fake_start(&r1, &sh, FM_REDIRECT);
    fake_run(&r1);
    const char *redir[] = {r1.addr};
    struct rabia_client *c = client(redir, 1, 0, 1000, 2, 0);
    CHECK_EQ(rabia_client_call(c, inc_op.data, inc_op.len, &res), RABIA_REPLY_REDIRECT);
    CHECK_EQ(res.len, 0);
    rabia_client_close(c);
    fake_stop(&r1);
    CHECK_EQ(shared_value(&sh), 0);
    rabia_buf_free(&res);
    shared_free(&sh);
}

static void test_status(void)
{
    struct shared sh;
    struct fake a;
    one_fake(&sh, &a, FM_NORMAL);
    const char *addrs[] = {a.addr};
    struct rabia_client *c = client(addrs, 1, 9, 1000, 2, 0);
    struct rabia_buf text = {0};
    char want[64];
    snprintf(want, sizeof want, "role: fake\nport: %u\n", a.port);
    CHECK_EQ(rabia_client_status(c, a.addr, &text), 0);
    CHECK(text.len == strlen(want) && memcmp(text.data, want, text.len) == 0);
    /* The main connection and a status connection side by side. */
    struct rabia_buf res = {0};
    CHECK_EQ(rabia_client_call(c, inc_op.data, inc_op.len, &res), RABIA_REPLY_OK);
    CHECK_EQ(value_of(&res), 1);
    CHECK_EQ(rabia_client_status(c, NULL, &text), 0);
    CHECK(text.len == strlen(want) && memcmp(text.data, want, text.len) == 0);
    uint16_t p;
    close(listen_any(&p));
    char down[32];
    snprintf(down, sizeof down, "127.0.0.1:%u", p);
    CHECK_EQ(rabia_client_status(c, down, &text), -ECONNREFUSED);
    CHECK_EQ(rabia_client_status(c, "bad", &text), -EINVAL);
    rabia_client_close(c);
    fake_stop(&a);
    rabia_buf_free(&text);
    rabia_buf_free(&res);
    shared_free(&sh);
}

/* The session is evicted between two requests: the client is told
 * (SESSION_EXPIRED, nothing applied twice) and goes on in a new session. */
static void test_session_renewal(void)
{
    struct shared sh;
    pthread_mutex_init(&sh.mu, NULL);
    struct rabia_rsm_config rc = {.max_sessions = 2, .max_reply_bytes = 64};
    sh.rsm = rabia_rsm_create(&rabia_sm_counter, &rc);
    struct fake a;
    fake_start(&a, &sh, FM_NORMAL);
    fake_run(&a);
    const char *addrs[] = {a.addr};
    struct rabia_client *c = client(addrs, 1, 0, 1000, 3, 0);
    CHECK((rabia_client_id(c) >> 62) == 0); /* a nonce until the cluster names the session */
    struct rabia_buf res = {0};
    CHECK_EQ(rabia_client_call(c, inc_op.data, inc_op.len, &res), RABIA_REPLY_OK);
    CHECK_EQ(value_of(&res), 1);
    uint64_t first_id = rabia_client_id(c);
    CHECK_EQ(first_id, RABIA_SESSION_ASSIGNED | 1); /* the first OPEN the cluster applied */
    /* two other clients open sessions and take both slots */
    for (uint64_t k = 1; k <= 2; k++) {
        struct rabia_msg m = {.type = RABIA_MSG_CLIENT_REQ, .u64 = 1000 + k, .slot = 1, .u64b = 1};
        CHECK_EQ(apply_one(&sh, &m, &res), RABIA_REPLY_OK);
        CHECK_EQ(res.len, 8);
    }
    CHECK_EQ(rabia_client_call(c, inc_op.data, inc_op.len, &res), RABIA_REPLY_SESSION_EXPIRED);
    CHECK_EQ(shared_value(&sh), 1); /* not applied */
    CHECK(rabia_client_id(c) != first_id);
    CHECK_EQ(rabia_client_call(c, inc_op.data, inc_op.len, &res), RABIA_REPLY_OK);
    CHECK_EQ(value_of(&res), 2);
    CHECK_EQ(rabia_client_id(c), RABIA_SESSION_ASSIGNED | 4);
    rabia_client_close(c);
    fake_stop(&a);
    rabia_buf_free(&res);
    shared_free(&sh);
}

/* After a SESSION_EXPIRED with nothing else in flight nothing is left to
 * do: the new session opens with the next submit, not with an OPEN nobody
 * waits for (collect and wait(0) said -EINPROGRESS instead of -ENOENT, the
 * event loop was asked to watch a socket, and wait(0, -1) blocked for
 * attempts x timeout; found by review). */
static void test_expired_idle(void)
{
    struct shared sh;
    struct fake a;
    one_fake(&sh, &a, FM_EXPIRE);
    const char *addrs[] = {a.addr};
    struct rabia_client *c = client(addrs, 1, 0, 500, 3, 0);
    struct rabia_buf res = {0};
    CHECK_EQ(rabia_client_call(c, inc_op.data, inc_op.len, &res), RABIA_REPLY_SESSION_EXPIRED);
    CHECK_EQ(rabia_client_in_flight(c), 0);
    CHECK_EQ(rabia_client_collect(c, &res, NULL), -ENOENT);
    int64_t t0 = mono_ms();
    CHECK_EQ(rabia_client_wait(c, 0, &res, NULL, -1), -ENOENT);
    CHECK(mono_ms() - t0 < 100);
    struct rabia_client_io io;
    rabia_client_io(c, &io);
    CHECK_EQ(io.fd, -1);
    CHECK_EQ(io.timeout_ms, -1);
    usleep(200 * 1000);
    rabia_client_close(c);
    fake_stop(&a);
    CHECK_EQ(a.seen, 2); /* the OPEN and the request: no OPEN since */
    rabia_buf_free(&res);
    shared_free(&sh);
}

/* Requests submitted at different times run out of attempts at different
 * times: the session's opening, made again when the first one gave up,
 * outlived the last of them, and collect said -EINPROGRESS, wait(0, -1)
 * blocked for its remaining attempts and the event loop was asked to
 * watch a socket, with nothing of the caller's in flight (found by
 * review). */
static void test_orphan_opening(void)
{
    struct shared sh;
    struct fake a;
    one_fake(&sh, &a, FM_BLACKHOLE);
    const char *addrs[] = {a.addr};
    struct rabia_client *c = client(addrs, 1, 0, 200, 3, 0);
    struct rabia_buf res = {0};
    uint64_t s1 = 0, s2 = 0;
    CHECK_EQ(rabia_client_submit(c, inc_op.data, inc_op.len, &s1), 0);
    CHECK_EQ(rabia_client_wait(c, 0, &res, NULL, 300), -EINPROGRESS); /* one attempt spent */
    CHECK_EQ(rabia_client_submit(c, inc_op.data, inc_op.len, &s2), 0);
    CHECK_EQ(rabia_client_wait(c, s1, &res, NULL, -1), -ETIMEDOUT);
    CHECK_EQ(rabia_client_wait(c, s2, &res, NULL, -1), -ETIMEDOUT);
    CHECK_EQ(rabia_client_in_flight(c), 0);
    CHECK_EQ(rabia_client_collect(c, &res, NULL), -ENOENT);
    struct rabia_client_io io;
    rabia_client_io(c, &io);
    CHECK_EQ(io.fd, -1);
    CHECK_EQ(io.timeout_ms, -1);
    int64_t t0 = mono_ms();
    CHECK_EQ(rabia_client_wait(c, 0, &res, NULL, -1), -ENOENT);
    CHECK(mono_ms() - t0 < 100);
    rabia_client_close(c);
    fake_stop(&a);
    rabia_buf_free(&res);
    shared_free(&sh);
}

/* A replica that never stops sending (frames nobody waits for) holds
 * neither a wait nor a status call past its timeout: both returned only
 * when the stream paused, up to 12x past the timeout, or never (found by
 * review). */
static void test_flood(void)
{
    struct shared sh;
    struct fake a;
    one_fake(&sh, &a, FM_FLOOD);
    const char *addrs[] = {a.addr};
    struct rabia_client *c = client(addrs, 1, 0, 300, 1, 0);
    struct rabia_buf text = {0}, res = {0};
    int64_t t0 = mono_ms();
    int rc = rabia_client_status(c, a.addr, &text);
    CHECK(rc == -EPROTO || rc == -ETIMEDOUT);
    CHECK(mono_ms() - t0 < 1000);
    uint64_t seq = 0;
    CHECK_EQ(rabia_client_submit(c, inc_op.data, inc_op.len, &seq), 0); /* its OPEN meets the flood */
    t0 = mono_ms();
    rc = rabia_client_wait(c, seq, &res, NULL, 300);
    CHECK(mono_ms() - t0 < 1000);
    CHECK(rc == -EINPROGRESS || rc == -ETIMEDOUT);
    rabia_client_close(c);
    fake_stop(&a);
    rabia_buf_free(&text);
    rabia_buf_free(&res);
    shared_free(&sh);
}

static void test_api(void)
{
    struct rabia_client *c = NULL;
    const char *good[] = {"127.0.0.1:1"};
    struct rabia_client_cfg cfg = {.addrs = good, .n_addrs = 0};
    CHECK_EQ(rabia_client_open(&c, &cfg), -EINVAL);
    const char *bad[] = {"127.0.0.1:7401", "nohost"};
    cfg = (struct rabia_client_cfg){.addrs = bad, .n_addrs = 2};
    CHECK_EQ(rabia_client_open(&c, &cfg), -EINVAL);
    const char *bad2[] = {"h:0", "h:70000", "h:", ":1", "[::1]1"};
    for (int i = 0; i < 5; i++) {
        cfg = (struct rabia_client_cfg){.addrs = &bad2[i], .n_addrs = 1};
        CHECK_EQ(rabia_client_open(&c, &cfg), -EINVAL);
    }
    cfg = (struct rabia_client_cfg){.addrs = good, .n_addrs = 1, .max_outstanding = 65};
    CHECK_EQ(rabia_client_open(&c, &cfg), -EINVAL);
    const char *v6[] = {"[::1]:7401"};
    cfg = (struct rabia_client_cfg){.addrs = v6, .n_addrs = 1};
    CHECK_EQ(rabia_client_open(&c, &cfg), 0);
    rabia_client_close(c);
    rabia_client_close(NULL);

    /* -EINPROGRESS: the wait's own deadline; the request stays in flight. */
    struct shared sh;
    struct fake a;
    one_fake(&sh, &a, FM_BLACKHOLE);
    const char *addrs[] = {a.addr};
    c = client(addrs, 1, 0, 5000, 2, 0);
    uint64_t seq = 0;
    static uint8_t dummy;
    CHECK_EQ(rabia_client_submit(c, &dummy, (size_t)RABIA_MAX_FRAME, &seq), -EMSGSIZE);
    CHECK_EQ(rabia_client_submit(c, NULL, 1, &seq), -EINVAL);
    CHECK_EQ(rabia_client_submit(c, inc_op.data, inc_op.len, &seq), 0);
    CHECK_EQ(seq, 1);
    struct rabia_buf res = {0};
    CHECK_EQ(rabia_client_wait(c, seq, &res, NULL, 0), -EINPROGRESS);
    int64_t t0 = mono_ms();
    CHECK_EQ(rabia_client_wait(c, seq, &res, NULL, 50), -EINPROGRESS);
    CHECK(mono_ms() - t0 >= 45);
    CHECK_EQ(rabia_client_wait(c, 0, &res, NULL, 10), -EINPROGRESS);
    CHECK_EQ(rabia_client_wait(c, seq + 1, &res, NULL, 10), -ENOENT);
    CHECK_EQ(rabia_client_in_flight(c), 1);
    rabia_client_close(c); /* abandons the request in flight */
    fake_stop(&a);
    CHECK_EQ(a.seen, 1);
    rabia_buf_free(&res);
    shared_free(&sh);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    alarm(120); /* a hang fails the test instead of blocking ctest */
    CHECK_EQ(rabia_counter_encode(&inc_op, RABIA_COUNTER_INC, 0), 0);
    RUN(test_api);
    RUN(test_session_renewal);
    RUN(test_pipelined);
    RUN(test_cork);
    RUN(test_event_loop);
    RUN(test_window);
    RUN(test_failover_drop);
    RUN(test_timeout_failover);
    RUN(test_redirect_garbage);
    RUN(test_give_up);
    RUN(test_refusal_reason);
    RUN(test_status);
    RUN(test_flood);
    RUN(test_expired_idle);
    RUN(test_orphan_opening);
    rabia_buf_free(&inc_op);
    return CHECK_DONE();
}
