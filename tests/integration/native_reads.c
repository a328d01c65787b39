/* native_reads: a native client's pipelined requests keep their order when
 * reads go by the read index (replica/clients.c native_request). Through
 * the public client library (client.h), ROUNDS rounds, each submitted
 * whole before any reply is waited for, then checked:
 *
 *   kv:      GET k; SET k v<i>; GET k; GET k    -> v<i-1> (nil at first), OK, v<i>, v<i>
 *            every fourth round GET k; GET k; GET k (reads only: all v<i-1>)
 *   counter: GET; INCREMENT; GET; GET           -> i, i+1, i+1, i+1
 *            every fourth round GET; GET; GET    (all equal)
 *
 * Odd rounds are corked (client.h CORKING: the round in one send), even
 * rounds are not. The first read of a round finds nothing of its connection in the log and
 * goes by the read index; the SET or INCREMENT behind it must not take
 * effect before that read is answered, and the reads behind the write must
 * see it. Prints "native_reads: ROUNDS rounds, N requests, 0 out of order"
 * and exits 0; 1 on the first wrong answer (printed), 2 on bad usage or a
 * failed request.
 *
 *   native_reads HOST:PORT kv|counter ROUNDS [KEY]
 *
 * And the bound on what waits behind a read (a client past its window):
 *
 *   native_reads HOST:PORT flood N
 *
 * sends a GET and N SETs in one write on a raw connection (no session:
 * the SETs answer SESSION_EXPIRED) and reads until the replica closes the
 * connection or 5 s pass; prints "flood: N+1 requests, R replies, closed" or
 * "..., open" and exits 0.
 */
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "counter.h"
#include "kv.h"
#include "rabia/client.h"

#define MAX_IN_ROUND 4

static struct rabia_client *cli;
static struct rabia_buf op, res;

static uint64_t submit(void)
{
    uint64_t seq = 0;
    int rc = rabia_client_submit(cli, op.data, op.len, &seq);
    if (rc) {
        fprintf(stderr, "native_reads: submit: %d\n", rc);
        exit(2);
    }
    return seq;
}

static void wait_ok(uint64_t seq)
{
    int st = rabia_client_wait(cli, seq, &res, NULL, 10000);
    if (st != RABIA_REPLY_OK) {
        fprintf(stderr, "native_reads: request %" PRIu64 ": status %d (%s)\n", seq, st,
                st >= 0 ? rabia_reply_status_name(st) : "error");
        exit(2);
    }
}

static uint64_t kv(const char *a0, const char *a1, const char *a2)
{
    const char *argv[3] = {a0, a1, a2};
    rabia_buf_clear(&op);
    if (rabia_kv_encode_argv(&op, a2 ? 3 : a1 ? 2 : 1, argv, NULL)) {
        fprintf(stderr, "native_reads: encode failed\n");
        exit(2);
    }
    return submit();
}

static uint64_t counter(enum rabia_counter_op o)
{
    rabia_buf_clear(&op);
    if (rabia_counter_encode(&op, o, 0)) exit(2);
    return submit();
}

/* The RESP text a GET of v answers: "$<len>\r\nv\r\n", or "$-1\r\n". */
static void bulk(char *out, size_t n, const char *v)
{
    if (v) snprintf(out, n, "$%zu\r\n%s\r\n", strlen(v), v);
    else snprintf(out, n, "$-1\r\n");
}

static int flood(const char *addr, long n)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host || n < 1 || n > 100000) return 2;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, colon + 1, &hints, &ai)) return 2;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
        perror("native_reads: connect");
        return 2;
    }
    freeaddrinfo(ai);
    struct rabia_buf out = {0};
    uint8_t frame[4096];
    const uint64_t cid = 0x1234567ull;
    for (long i = 0; i <= n; i++) { /* seq 2: the GET, then the SETs */
        const char *get[2] = {"GET", "flood"}, *set[3] = {"SET", "flood", "x"};
        rabia_buf_clear(&op);
        if (rabia_kv_encode_argv(&op, i ? 3 : 2, i ? set : get, NULL)) return 2;
        struct rabia_msg m = {.type = RABIA_MSG_CLIENT_REQ, .u64 = cid, .slot = 2 + (uint64_t)i, .u64b = 2,
                              .body = op.data, .body_len = (uint32_t)op.len};
        int k = rabia_msg_encode(&m, frame, sizeof frame);
        if (k < 0 || rabia_buf_append(&out, frame, (size_t)k)) return 2;
    }
    for (size_t off = 0; off < out.len;) {
        ssize_t w = send(fd, out.data + off, out.len - off, MSG_NOSIGNAL);
        if (w <= 0) break; /* closed meanwhile */
        off += (size_t)w;
    }
    static uint8_t in[1 << 20];
    size_t have = 0;
    long replies = 0;
    bool closed = false;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec >= 5 || replies > n) break;
        if (poll(&p, 1, 200) <= 0) continue;
        ssize_t r = recv(fd, in + have, sizeof in - have, 0);
        if (r <= 0) {
            closed = true;
            break;
        }
        have += (size_t)r;
        size_t flen;
        while (have >= RABIA_FRAME_HEADER && rabia_frame_peek(in, have, &flen) == 0 && flen <= have) {
            replies++;
            memmove(in, in + flen, have - flen);
            have -= flen;
        }
    }
    printf("flood: %ld requests, %ld replies, %s\n", n + 1, replies, closed ? "closed" : "open");
    close(fd);
    rabia_buf_free(&out);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[2], "flood")) return flood(argv[1], atol(argv[3]));
    if (argc < 4 || (strcmp(argv[2], "kv") && strcmp(argv[2], "counter"))) {
        fprintf(stderr, "usage: native_reads HOST:PORT kv|counter ROUNDS [KEY]\n       native_reads HOST:PORT flood N\n");
        return 2;
    }
    bool is_kv = !strcmp(argv[2], "kv");
    long rounds = atol(argv[3]);
    const char *key = argc > 4 ? argv[4] : "native_reads";
    const char *addrs[1] = {argv[1]};
    struct rabia_client_cfg cfg = {.addrs = addrs, .n_addrs = 1, .timeout_ms = 2000};
    if (rabia_client_open(&cli, &cfg)) {
        fprintf(stderr, "native_reads: bad address %s\n", argv[1]);
        return 2;
    }
    long requests = 0;
    int64_t base = 0;
    if (!is_kv) { /* where the counter stands now */
        wait_ok(counter(RABIA_COUNTER_GET));
        const char *e;
        size_t el;
        if (rabia_counter_decode_result(res.data, res.len, &base, &e, &el) != 0) return 2;
    }
    char prev[64] = "", cur[64], want[96];
    for (long i = 0; i < rounds; i++) {
        uint64_t seq[MAX_IN_ROUND];
        bool reads_only = i % 4 == 3;
        int n = reads_only ? 3 : 4;
        snprintf(cur, sizeof cur, "v%ld", i);
        /* odd rounds corked (client.h CORKING): the round's requests reach
         * the replica in one segment, a read and the write behind it in
         * one receive; even rounds one send per request */
        bool corked = i % 2 == 1;
        if (corked) rabia_client_cork(cli);
        for (int j = 0; j < n; j++) {
            bool write = !reads_only && j == 1;
            if (is_kv) seq[j] = write ? kv("SET", key, cur) : kv("GET", key, NULL);
            else seq[j] = counter(write ? RABIA_COUNTER_INC : RABIA_COUNTER_GET);
        }
        if (corked && rabia_client_uncork(cli) < 0) {
            fprintf(stderr, "native_reads: uncork failed\n");
            return 2;
        }
        for (int j = 0; j < n; j++) {
            wait_ok(seq[j]);
            requests++;
            bool after_write = !reads_only && j >= 1;
            bool bad;
            if (is_kv) {
                if (!reads_only && j == 1) snprintf(want, sizeof want, "+OK\r\n");
                else bulk(want, sizeof want, after_write ? cur : prev[0] ? prev : NULL);
                bad = res.len != strlen(want) || memcmp(res.data, want, res.len) != 0;
            } else {
                int64_t v;
                const char *e;
                size_t el;
                int64_t w = base + (after_write ? 1 : 0);
                bad = rabia_counter_decode_result(res.data, res.len, &v, &e, &el) != 0 || v != w;
                snprintf(want, sizeof want, "%" PRId64, w);
            }
            if (bad) {
                fprintf(stderr, "native_reads: round %ld, request %d of %d (%s): answered '%.*s', expected '%s'\n", i,
                        j + 1, n, reads_only ? "reads only" : j == 0 ? "the read before the write" :
                        j == 1 ? "the write" : "a read after the write",
                        (int)(res.len > 60 ? 60 : res.len), (const char *)res.data, want);
                return 1;
            }
        }
        if (!reads_only) {
            snprintf(prev, sizeof prev, "%s", cur);
            base++;
        }
    }
    printf("native_reads: %ld rounds, %ld requests, 0 out of order\n", rounds, requests);
    rabia_buf_free(&op);
    rabia_buf_free(&res);
    rabia_client_close(cli);
    return 0;
}
