/* See bench_proto.h. Only what the benchmark sends is encoded and only the
 * replies those requests get are parsed; anything else is a protocol error. */
#define _GNU_SOURCE /* memmem */
#include "bench_proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static unsigned digits(uint64_t x)
{
    unsigned d = 1;
    while (x >= 10) {
        x /= 10;
        d++;
    }
    return d;
}

size_t bench_key_min_size(uint64_t nkeys)
{
    return sizeof BENCH_KEY_PREFIX - 1 + digits(nkeys > 0 ? nkeys - 1 : 0);
}

void bench_key(char *out, size_t key_size, uint64_t nkeys, uint64_t k)
{
    size_t p = sizeof BENCH_KEY_PREFIX - 1;
    memcpy(out, BENCH_KEY_PREFIX, p);
    unsigned d = digits(nkeys > 0 ? nkeys - 1 : 0);
    for (unsigned i = d; i > 0; i--) {
        out[p + i - 1] = (char)('0' + k % 10);
        k /= 10;
    }
    p += d;
    if (key_size > p)
        memset(out + p, 'x', key_size - p);
}

size_t bench_resp_max_req(size_t key_size, size_t value_size)
{
    /* *3\r\n$3\r\nSET\r\n$<k>\r\n<key>\r\n$<v>\r\n<val>\r\n, plus a WAIT */
    return 64 + key_size + value_size + 64;
}

static size_t put_bulk(char *out, const char *s, size_t n)
{
    size_t p = (size_t)sprintf(out, "$%zu\r\n", n);
    memcpy(out + p, s, n);
    p += n;
    out[p++] = '\r';
    out[p++] = '\n';
    return p;
}

size_t bench_resp_set(char *out, const char *key, size_t klen, const char *val, size_t vlen)
{
    size_t p = 0;
    memcpy(out, "*3\r\n$3\r\nSET\r\n", 13);
    p = 13;
    p += put_bulk(out + p, key, klen);
    p += put_bulk(out + p, val, vlen);
    return p;
}

size_t bench_resp_get(char *out, const char *key, size_t klen)
{
    memcpy(out, "*2\r\n$3\r\nGET\r\n", 13);
    return 13 + put_bulk(out + 13, key, klen);
}

size_t bench_resp_wait(char *out, unsigned replicas)
{
    char n[16];
    int l = snprintf(n, sizeof n, "%u", replicas);
    size_t p = 0;
    memcpy(out, "*3\r\n$4\r\nWAIT\r\n", 14);
    p = 14;
    p += put_bulk(out + p, n, (size_t)l);
    p += put_bulk(out + p, "0", 1);
    return p;
}

/* the line at p ending in \r\n: its length without \r\n, or -1 when incomplete */
static long line_len(const char *p, size_t len)
{
    const char *e = memchr(p, '\n', len);
    if (!e)
        return -1;
    if (e == p || e[-1] != '\r')
        return -2;
    return (long)(e - p) - 1;
}

static long parse_i64(const char *p, long n, long long *out)
{
    if (n <= 0 || n > 20)
        return -EPROTO;
    char tmp[24];
    memcpy(tmp, p, (size_t)n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end)
        return -EPROTO;
    *out = v;
    return 0;
}

static long resp_one(const char *p, size_t len, bool *is_error, int depth)
{
    if (len < 1)
        return 0;
    if (depth > 8)
        return -EPROTO;
    long l = line_len(p, len);
    if (l == -1)
        return len > 64 * 1024 ? -EPROTO : 0; /* a header line is never that long */
    if (l < 1)
        return -EPROTO;
    size_t head = (size_t)l + 2;
    long long n;
    switch (p[0]) {
    case '-':
        *is_error = true;
        /* fall through */
    case '+':
    case ':':
        return (long)head;
    case '$':
        if (parse_i64(p + 1, l - 1, &n) < 0 || n < -1)
            return -EPROTO;
        if (n == -1)
            return (long)head;
        if (len < head + (size_t)n + 2)
            return 0;
        if (p[head + n] != '\r' || p[head + n + 1] != '\n')
            return -EPROTO;
        return (long)(head + (size_t)n + 2);
    case '*': {
        if (parse_i64(p + 1, l - 1, &n) < 0 || n < -1 || n > 1000000)
            return -EPROTO;
        size_t used = head;
        for (long long i = 0; i < n; i++) {
            long r = resp_one(p + used, len - used, is_error, depth + 1);
            if (r <= 0)
                return r;
            used += (size_t)r;
        }
        return (long)used;
    }
    default:
        return -EPROTO;
    }
}

long bench_resp_reply(const char *p, size_t len, bool *is_error)
{
    *is_error = false;
    return resp_one(p, len, is_error, 0);
}

static const char b64tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t bench_b64(char *out, const char *in, size_t n)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        out[o++] = b64tab[v >> 18];
        out[o++] = b64tab[(v >> 12) & 63];
        out[o++] = b64tab[(v >> 6) & 63];
        out[o++] = b64tab[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)s[i] << 16;
        out[o++] = b64tab[v >> 18];
        out[o++] = b64tab[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
        out[o++] = b64tab[v >> 18];
        out[o++] = b64tab[(v >> 12) & 63];
        out[o++] = b64tab[(v >> 6) & 63];
        out[o++] = '=';
    }
    return o;
}

size_t bench_http_max_req(const char *host, size_t key_size, size_t value_size)
{
    /* headers (256 + host) then the JSON body: 21 bytes of quoting and the
     * two base64 strings, each 4 bytes per started 3 (bench_http_put
     * builds the body right after that header room) */
    return 256 + strlen(host) + 21 + 4 * ((key_size + 2) / 3) + 4 * ((value_size + 2) / 3) + 16;
}

static size_t http_post(char *out, const char *host, const char *path, const char *body, size_t blen)
{
    size_t p = (size_t)sprintf(out,
                               "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                               "Content-Length: %zu\r\n\r\n",
                               path, host, blen);
    memcpy(out + p, body, blen);
    return p + blen;
}

size_t bench_http_put(char *out, const char *host, const char *key, size_t klen, const char *val,
                      size_t vlen)
{
    /* the body is built at the end of out's room, then moved behind the headers */
    char *body = out + 256 + strlen(host);
    size_t b = 0;
    memcpy(body, "{\"key\":\"", 8);
    b = 8;
    b += bench_b64(body + b, key, klen);
    memcpy(body + b, "\",\"value\":\"", 11);
    b += 11;
    b += bench_b64(body + b, val, vlen);
    memcpy(body + b, "\"}", 2);
    b += 2;
    char hdr[256 + 256];
    size_t h = (size_t)snprintf(hdr, sizeof hdr,
                                "POST /v3/kv/put HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                                "Content-Length: %zu\r\n\r\n",
                                host, b);
    memmove(out + h, body, b);
    memcpy(out, hdr, h);
    return h + b;
}

size_t bench_http_range(char *out, const char *host, const char *key, size_t klen)
{
    char body[64 + 4 * 1024];
    size_t b = 0;
    memcpy(body, "{\"key\":\"", 8);
    b = 8;
    if (klen > 3 * 1024)
        klen = 3 * 1024;
    b += bench_b64(body + b, key, klen);
    memcpy(body + b, "\"}", 2);
    b += 2;
    return http_post(out, host, "/v3/kv/range", body, b);
}

/* A number in base 16 or 10 from p[0..n): leading spaces and tabs, then at
 * least one digit; the rest of the line is ignored. -1 when there is no
 * digit or it exceeds 2^40 (no reply of ours is that large): never reads
 * past n (the input is not NUL-terminated). */
static long long parse_num(const char *p, size_t n, int base)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    long long v = -1;
    for (; i < n; i++) {
        int d = p[i] >= '0' && p[i] <= '9' ? p[i] - '0'
                : base == 16 && p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10
                : base == 16 && p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 10 : -1;
        if (d < 0)
            break;
        v = (v < 0 ? 0 : v) * base + d;
        if (v > (1ll << 40))
            return -1;
    }
    return v;
}

/* chunked body at p: its length through the last chunk's trailer, 0 when incomplete */
static long chunked_len(const char *p, size_t len)
{
    size_t used = 0;
    for (int i = 0; i < 100000; i++) {
        long l = line_len(p + used, len - used);
        if (l == -1)
            return 0;
        if (l < 1)
            return -EPROTO;
        long long sz = parse_num(p + used, (size_t)l, 16);
        if (sz < 0)
            return -EPROTO;
        size_t n = (size_t)sz;
        used += (size_t)l + 2;
        if (n == 0) { /* trailers end with an empty line */
            for (int j = 0; j < 64; j++) {
                long t = line_len(p + used, len - used);
                if (t == -1)
                    return 0;
                if (t < 0)
                    return -EPROTO;
                used += (size_t)t + 2;
                if (t == 0)
                    return (long)used;
            }
            return -EPROTO;
        }
        if (len - used < n + 2)
            return 0;
        used += n + 2;
    }
    return -EPROTO;
}

long bench_http_reply(const char *p, size_t len, bool *is_error)
{
    *is_error = false;
    /* the end of the headers */
    const char *e = NULL;
    for (size_t i = 3; i < len; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r') {
            e = p + i + 1;
            break;
        }
    if (!e)
        return len > 64 * 1024 ? -EPROTO : 0;
    if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0)
        return -EPROTO;
    int status = atoi(p + 9);
    if (status < 200 || status >= 300)
        *is_error = true;
    size_t hlen = (size_t)(e - p);
    long long clen = -1;
    bool chunked = false;
    const char *q = memchr(p, '\n', hlen);
    for (int n = 0; q && q + 1 < e && n < 200; n++) {
        q++;
        const char *nl = memchr(q, '\n', (size_t)(e - q));
        if (!nl)
            break;
        size_t ll = (size_t)(nl - q);
        if (ll >= 15 && !strncasecmp(q, "content-length:", 15))
        {
            clen = parse_num(q + 15, ll - 15, 10);
            if (clen < 0)
                return -EPROTO;
        }
        else if (ll >= 18 && !strncasecmp(q, "transfer-encoding:", 18) && memmem(q, ll, "chunked", 7))
            chunked = true;
        q = nl;
    }
    if (chunked) {
        long c = chunked_len(e, len - hlen);
        return c <= 0 ? c : (long)hlen + c;
    }
    if (clen < 0)
        return -EPROTO;
    if (len < hlen + (size_t)clen)
        return 0;
    return (long)(hlen + (size_t)clen);
}
