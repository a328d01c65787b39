/* tests/io/bench_io.c: loopback ping-pong latency and one-way coalesced throughput through io/loop. */
/*
 * Two processes, pinned by the caller (taskset -c), as io/README.md shows:
 *   bench_io server PORT [--spin]           serves until SIGINT/SIGTERM
 *   bench_io pingpong HOST PORT [N] [--spin] N round trips of one 64-byte message
 *   bench_io flood HOST PORT [N]            N 64-byte messages one way, one rio_send each
 * and the same without io_uring, as the baseline measured side by side under
 * the same machine load (blocking sockets, one send()/recv() per message):
 *   bench_io plain-server PORT, plain-pingpong HOST PORT [N], plain-flood HOST PORT [N]
 * A connection's first byte picks the server's behaviour: 'P' echoes
 * everything; 'F' reads an 8-byte count, then counts 64-byte messages and
 * answers 8 bytes when all have arrived.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"

#define MSG 64

static struct rio_loop *g_loop;
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    g_stop = 1;
    rio_loop_wake(g_loop); /* async-signal-safe */
}

/* CPU time this process used, in microseconds: on a shared, loaded machine
 * wall time measures the neighbours too; CPU per message measures us. */
static uint64_t cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- server ---- */

struct sconn {
    int mode; /* 0 = undecided, 'P', 'F' */
    uint8_t hdr[8];
    size_t hdr_len;
    uint64_t want, got;
};

static int s_accept(void *ctx, struct rio_listener *l, struct rio_conn *c)
{
    struct sconn *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    rio_conn_set_user(c, s);
    return 0;
}

static size_t s_data(void *ctx, struct rio_conn *c, const uint8_t *p, size_t len)
{
    struct sconn *s = rio_conn_user(c);
    size_t off = 0;
    if (!s->mode) {
        s->mode = p[0];
        off = 1;
    }
    if (s->mode == 'P') {
        if (rio_send(c, p + off, len - off) < 0)
            rio_close(c);
        return len;
    }
    if (s->mode != 'F') {
        rio_close(c);
        return len;
    }
    while (s->hdr_len < 8 && off < len)
        s->hdr[s->hdr_len++] = p[off++];
    if (s->hdr_len == 8 && !s->want) {
        memcpy(&s->want, s->hdr, 8);
        s->want *= MSG;
    }
    s->got += len - off;
    if (s->want && s->got >= s->want) {
        uint64_t n = s->got / MSG;
        if (rio_send(c, &n, 8) < 0)
            rio_close(c);
        s->got = 0;
        s->want = 0;
        s->hdr_len = 0;
    }
    return len;
}

static void s_close(void *ctx, struct rio_conn *c, int err)
{
    free(rio_conn_user(c));
}

static int run_server(uint16_t port, bool spin)
{
    struct rio_handlers h = {.on_accept = s_accept, .on_data = s_data, .on_close = s_close};
    char err[256];
    if (rio_loop_create(&g_loop, &h, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "bench_io: %s\n", err);
        return 1;
    }
    struct rio_listener *ls;
    int r = rio_listen(g_loop, "127.0.0.1", port, NULL, &ls);
    if (r < 0) {
        fprintf(stderr, "bench_io: listen on port %u: %s\n", port, strerror(-r));
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fprintf(stderr, "bench_io server on 127.0.0.1:%u (%s)\n", rio_listener_port(ls), rio_loop_describe(g_loop));
    while (!g_stop) {
        r = rio_run_once(g_loop, spin ? 0 : 1000000);
        if (r < 0) {
            fprintf(stderr, "bench_io: rio_run_once: %s\n", strerror(-r));
            break;
        }
    }
    rio_loop_destroy(g_loop);
    return 0;
}

/* ---- clients ---- */

struct cstate {
    bool connected, closed;
    int err;
    uint64_t got;
};

static size_t c_data(void *ctx, struct rio_conn *c, const uint8_t *p, size_t len)
{
    ((struct cstate *)ctx)->got += len;
    return len;
}
static void c_connect(void *ctx, struct rio_conn *c, int err)
{
    struct cstate *st = ctx;
    st->err = err;
    if (err)
        st->closed = true;
    else
        st->connected = true;
}
static void c_close(void *ctx, struct rio_conn *c, int err)
{
    struct cstate *st = ctx;
    st->closed = true;
    st->err = err;
}

static struct rio_conn *client_open(struct cstate *st, const char *host, uint16_t port, char mode)
{
    struct rio_handlers h = {.on_data = c_data, .on_connect = c_connect, .on_close = c_close};
    char err[256];
    if (rio_loop_create(&g_loop, &h, st, err, sizeof err) < 0) {
        fprintf(stderr, "bench_io: %s\n", err);
        exit(1);
    }
    struct rio_conn *c;
    int r = rio_connect(g_loop, host, port, NULL, &c);
    if (r < 0) {
        fprintf(stderr, "bench_io: connect: %s\n", strerror(-r));
        exit(1);
    }
    while (!st->connected && !st->closed)
        rio_run_once(g_loop, 1000000);
    if (!st->connected) {
        fprintf(stderr, "bench_io: connect to %s:%u: %s\n", host, port, strerror(-st->err));
        exit(1);
    }
    rio_send(c, &mode, 1);
    return c;
}

static int run_pingpong(const char *host, uint16_t port, long n, bool spin)
{
    struct cstate st = {0};
    struct rio_conn *c = client_open(&st, host, port, 'P');
    uint8_t msg[MSG];
    memset(msg, 'p', sizeof msg);
    long warm = n / 10 + 100;
    uint64_t *rtt = malloc(sizeof *rtt * (size_t)n);
    uint64_t cpu0 = 0;
    for (long i = -warm; i < n; i++) {
        if (i == 0)
            cpu0 = cpu_us();
        uint64_t want = st.got + MSG;
        uint64_t t0 = rio_now_us();
        rio_send(c, msg, sizeof msg);
        while (st.got < want && !st.closed)
            rio_run_once(g_loop, spin ? 0 : 1000000);
        if (st.closed) {
            fprintf(stderr, "bench_io: connection closed: %s\n", strerror(-st.err));
            return 1;
        }
        if (i >= 0)
            rtt[i] = rio_now_us() - t0;
    }
    double cpu = (double)(cpu_us() - cpu0) / (double)n;
    qsort(rtt, (size_t)n, sizeof *rtt, cmp_u64);
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += (double)rtt[i];
    printf("pingpong %ld x %d B: median %llu us, p90 %llu us, p99 %llu us, mean %.1f us, "
           "client cpu %.1f us/rt%s\n", n, MSG,
           (unsigned long long)rtt[n / 2], (unsigned long long)rtt[n * 9 / 10],
           (unsigned long long)rtt[n * 99 / 100], sum / (double)n, cpu, spin ? " (spinning)" : "");
    free(rtt);
    rio_close(c);
    rio_run_once(g_loop, 0);
    rio_loop_destroy(g_loop);
    return 0;
}

static int run_flood(const char *host, uint16_t port, long n)
{
    struct cstate st = {0};
    struct rio_conn *c = client_open(&st, host, port, 'F');
    uint64_t count = (uint64_t)n;
    rio_send(c, &count, 8);
    uint8_t msg[MSG];
    memset(msg, 'f', sizeof msg);
    struct rio_stats s0, s1;
    rio_loop_stats(g_loop, &s0);
    uint64_t t0 = rio_now_us(), cpu0 = cpu_us();
    long sent = 0;
    /* One rio_send per message; the loop coalesces whatever is queued while a
     * send is in flight. The window bounds memory, as a real sender must. */
    while (st.got < 8 && !st.closed) {
        while (sent < n && rio_conn_pending(c) < 256 * 1024) {
            rio_send(c, msg, sizeof msg);
            sent++;
        }
        rio_run_once(g_loop, 1000000);
    }
    uint64_t dt = rio_now_us() - t0, cpu = cpu_us() - cpu0;
    rio_loop_stats(g_loop, &s1);
    if (st.closed) {
        fprintf(stderr, "bench_io: connection closed: %s\n", strerror(-st.err));
        return 1;
    }
    uint64_t sends = s1.sends - s0.sends;
    printf("flood %ld x %d B: %.2f M msgs/s (%.0f MiB/s), %llu sends, %.0f msgs per send, "
           "sender cpu %.0f ns/msg\n", n, MSG,
           (double)n / (double)dt, (double)n * MSG / (double)dt * 1e6 / (1 << 20),
           (unsigned long long)sends, (double)n / (double)(sends ? sends : 1),
           (double)cpu * 1000 / (double)n);
    rio_close(c);
    rio_run_once(g_loop, 0);
    rio_loop_destroy(g_loop);
    return 0;
}

/* ---- baseline: blocking sockets, one system call per message ---- */

static int plain_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static bool read_full(int fd, void *p, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t r = read(fd, (char *)p + off, n - off);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return false;
        }
        off += (size_t)r;
    }
    return true;
}

static bool write_full(int fd, const void *p, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t r = send(fd, (const char *)p + off, n - off, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        off += (size_t)r;
    }
    return true;
}

/* One client at a time, served in this process: enough for the baseline. */
static int run_plain_server(uint16_t port)
{
    int ls = plain_socket();
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 16) < 0) {
        perror("bench_io plain-server");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            return errno == EINTR ? 0 : 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char mode;
        if (!read_full(fd, &mode, 1)) {
            close(fd);
            continue;
        }
        uint8_t msg[MSG];
        if (mode == 'P') {
            while (read_full(fd, msg, MSG) && write_full(fd, msg, MSG)) {
            }
        } else if (mode == 'F') {
            uint64_t want;
            static uint8_t buf[256 * 1024];
            while (read_full(fd, &want, 8)) {
                uint64_t got = 0;
                want *= MSG;
                while (got < want) {
                    ssize_t r = read(fd, buf, sizeof buf);
                    if (r <= 0)
                        break;
                    got += (uint64_t)r;
                }
                uint64_t nmsg = got / MSG;
                if (!write_full(fd, &nmsg, 8))
                    break;
            }
        }
        close(fd);
    }
}

static int plain_connect(const char *host, uint16_t port, char mode)
{
    int fd = plain_socket();
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("bench_io connect");
        exit(1);
    }
    write_full(fd, &mode, 1);
    return fd;
}

static int run_plain_pingpong(const char *host, uint16_t port, long n)
{
    int fd = plain_connect(host, port, 'P');
    uint8_t msg[MSG];
    memset(msg, 'p', sizeof msg);
    long warm = n / 10 + 100;
    uint64_t *rtt = malloc(sizeof *rtt * (size_t)n);
    uint64_t cpu0 = 0;
    for (long i = -warm; i < n; i++) {
        if (i == 0)
            cpu0 = cpu_us();
        uint64_t t0 = rio_now_us();
        if (!write_full(fd, msg, MSG) || !read_full(fd, msg, MSG)) {
            fprintf(stderr, "bench_io: connection lost\n");
            return 1;
        }
        if (i >= 0)
            rtt[i] = rio_now_us() - t0;
    }
    double cpu = (double)(cpu_us() - cpu0) / (double)n;
    qsort(rtt, (size_t)n, sizeof *rtt, cmp_u64);
    printf("plain-pingpong %ld x %d B: median %llu us, p90 %llu us, p99 %llu us, client cpu %.1f us/rt\n",
           n, MSG, (unsigned long long)rtt[n / 2], (unsigned long long)rtt[n * 9 / 10],
           (unsigned long long)rtt[n * 99 / 100], cpu);
    free(rtt);
    close(fd);
    return 0;
}

static int run_plain_flood(const char *host, uint16_t port, long n)
{
    int fd = plain_connect(host, port, 'F');
    uint64_t count = (uint64_t)n;
    write_full(fd, &count, 8);
    uint8_t msg[MSG];
    memset(msg, 'f', sizeof msg);
    uint64_t t0 = rio_now_us(), cpu0 = cpu_us();
    for (long i = 0; i < n; i++)
        if (!write_full(fd, msg, MSG))
            return 1;
    uint64_t ack;
    if (!read_full(fd, &ack, 8))
        return 1;
    uint64_t dt = rio_now_us() - t0, cpu = cpu_us() - cpu0;
    printf("plain-flood %ld x %d B: %.2f M msgs/s, one send() per message, sender cpu %.0f ns/msg\n",
           n, MSG, (double)n / (double)dt, (double)cpu * 1000 / (double)n);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    bool spin = false;
    int na = 0;
    char *args[8];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--spin"))
            spin = true;
        else if (na < 8)
            args[na++] = argv[i];
    }
    if (na >= 2 && !strcmp(args[0], "server"))
        return run_server((uint16_t)atoi(args[1]), spin);
    if (na >= 3 && !strcmp(args[0], "pingpong"))
        return run_pingpong(args[1], (uint16_t)atoi(args[2]), na > 3 ? atol(args[3]) : 20000, spin);
    if (na >= 3 && !strcmp(args[0], "flood"))
        return run_flood(args[1], (uint16_t)atoi(args[2]), na > 3 ? atol(args[3]) : 10000000);
    if (na >= 2 && !strcmp(args[0], "plain-server"))
        return run_plain_server((uint16_t)atoi(args[1]));
    if (na >= 3 && !strcmp(args[0], "plain-pingpong"))
        return run_plain_pingpong(args[1], (uint16_t)atoi(args[2]), na > 3 ? atol(args[3]) : 20000);
    if (na >= 3 && !strcmp(args[0], "plain-flood"))
        return run_plain_flood(args[1], (uint16_t)atoi(args[2]), na > 3 ? atol(args[3]) : 2000000);
    fprintf(stderr, "usage: bench_io server PORT [--spin]\n"
                    "       bench_io pingpong HOST PORT [N] [--spin]\n"
                    "       bench_io flood HOST PORT [N]\n"
                    "       bench_io plain-server PORT | plain-pingpong HOST PORT [N] | plain-flood HOST PORT [N]\n");
    return 2;
}
