/* native_req: one CLIENT_REQ with a session chosen by the caller, for tests
 * that must replay a request exactly (same client id, seq and ack) the way
 * a retrying client would.
 *
 *   native_req HOST:PORT CLIENT_ID SEQ ACK [KV COMMAND ARGS...]
 *
 * No command sends an empty op: with seq 1 that is an OPEN, and the reply
 * names the session ("OK session ID"). Otherwise prints the reply status
 * name and the result (kv results are RESP text) on one line; exit 0 on any
 * reply, 3 when no reply came within 5 s. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "kv.h"

static const char *status_name(int s)
{
    static const char *n[] = {"OK", "REDIRECT", "SESSION_EXPIRED", "BUSY", "BAD_REQUEST", "APPLIED_NO_RESULT"};
    return s >= 0 && s <= 5 ? n[s] : "?";
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: native_req HOST:PORT CLIENT_ID SEQ ACK [KV COMMAND ARGS...]\n");
        return 2;
    }
    char host[256];
    const char *colon = strrchr(argv[1], ':');
    if (!colon || (size_t)(colon - argv[1]) >= sizeof host) {
        fprintf(stderr, "native_req: address '%s' is not HOST:PORT\n", argv[1]);
        return 2;
    }
    memcpy(host, argv[1], (size_t)(colon - argv[1]));
    host[colon - argv[1]] = 0;
    uint64_t cid = strtoull(argv[2], NULL, 0), seq = strtoull(argv[3], NULL, 0), ack = strtoull(argv[4], NULL, 0);
    struct rabia_buf op = {0};
    if (argc > 5 && rabia_kv_encode_argv(&op, argc - 5, (const char *const *)argv + 5, NULL)) {
        fprintf(stderr, "native_req: cannot encode the command\n");
        return 2;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, colon + 1, &hints, &ai)) {
        fprintf(stderr, "native_req: cannot resolve %s\n", argv[1]);
        return 3;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
        fprintf(stderr, "native_req: connect %s: %s\n", argv[1], strerror(errno));
        return 3;
    }
    freeaddrinfo(ai);
    struct rabia_msg m = {.type = RABIA_MSG_CLIENT_REQ, .u64 = cid, .slot = seq, .u64b = ack, .body = op.data,
                          .body_len = (uint32_t)op.len};
    uint8_t frame[65536];
    int n = rabia_msg_encode(&m, frame, sizeof frame);
    if (n < 0 || send(fd, frame, (size_t)n, MSG_NOSIGNAL) != n) {
        fprintf(stderr, "native_req: send failed\n");
        return 3;
    }
    static uint8_t in[1 << 20];
    size_t have = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0) break;
        ssize_t r = recv(fd, in + have, sizeof in - have, 0);
        if (r <= 0) break;
        have += (size_t)r;
        size_t flen;
        while (have >= RABIA_FRAME_HEADER && rabia_frame_peek(in, have, &flen) == 0 && flen <= have) {
            struct rabia_msg rep;
            if (rabia_msg_decode(in, flen, &rep) == 0 && rep.type == RABIA_MSG_CLIENT_REPLY && rep.u64 == cid &&
                rep.slot == seq) {
                if (op.len == 0 && seq == 1 && rep.value == 0 && rep.body_len == 8) {
                    /* an OPEN: the reply names the session (core/rsm.h) */
                    uint64_t id = 0;
                    for (int i = 7; i >= 0; i--) id = id << 8 | rep.body[i];
                    printf("OK session %llu\n", (unsigned long long)id);
                    rabia_buf_free(&op);
                    return 0;
                }
                /* "STATUS result", the result's CRLFs as spaces, none at the end */
                printf("%s", status_name(rep.value));
                int pending = 1;
                for (uint32_t i = 0; i < rep.body_len; i++) {
                    uint8_t ch = rep.body[i];
                    if (ch == '\r' || ch == '\n') {
                        pending = 1;
                        continue;
                    }
                    if (pending) putchar(' ');
                    pending = 0;
                    putchar(ch);
                }
                putchar('\n');
                rabia_buf_free(&op);
                return 0;
            }
            memmove(in, in + flen, have - flen);
            have -= flen;
        }
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > 5) break;
    }
    fprintf(stderr, "native_req: no reply from %s\n", argv[1]);
    rabia_buf_free(&op);
    return 3;
}
