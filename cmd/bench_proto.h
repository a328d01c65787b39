/* rabia-bench's wire formats: the requests it writes and the replies it
 * parses for RESP (Redis and rabiad's RESP port), etcd v3.4's HTTP/JSON
 * gateway, and the KV operations of the native protocol (sent through the
 * client library, see rabia-bench.c). Encoders write into caller buffers
 * (no allocation per request); parsers look at a receive buffer and say how
 * many bytes one whole reply takes. */
#ifndef RABIA_BENCH_PROTO_H
#define RABIA_BENCH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_KEY_PREFIX "rb:"

/* The key for number k (< nkeys): BENCH_KEY_PREFIX, k zero-padded to the
 * digits of nkeys - 1, then 'x' up to key_size bytes. Writes key_size
 * bytes (no NUL). bench_key_min_size says how short key_size may be. */
size_t bench_key_min_size(uint64_t nkeys);
void bench_key(char *out, size_t key_size, uint64_t nkeys, uint64_t k);

/* Longest request of each protocol for these sizes (buffer sizing). */
size_t bench_resp_max_req(size_t key_size, size_t value_size);
size_t bench_http_max_req(const char *host, size_t key_size, size_t value_size);

/* RESP2 arrays. Return the bytes written. */
size_t bench_resp_set(char *out, const char *key, size_t klen, const char *val, size_t vlen);
size_t bench_resp_get(char *out, const char *key, size_t klen);
size_t bench_resp_wait(char *out, unsigned replicas);

/* One RESP2 reply at p: > 0 its length (*is_error set for '-'), 0 when p
 * holds only a prefix of one, -EPROTO when p is not RESP (the connection
 * is then unusable). Nested arrays are followed to a bounded depth. */
long bench_resp_reply(const char *p, size_t len, bool *is_error);

/* etcd v3 gateway requests (HTTP/1.1, keep-alive): POST /v3/kv/put with
 * {"key": b64, "value": b64}, POST /v3/kv/range with {"key": b64}. */
size_t bench_http_put(char *out, const char *host, const char *key, size_t klen, const char *val,
                      size_t vlen);
size_t bench_http_range(char *out, const char *host, const char *key, size_t klen);

/* One HTTP/1.1 response at p: > 0 its length (headers and body, by
 * Content-Length or chunked), *is_error set unless the status is 2xx; 0
 * when incomplete; -EPROTO when malformed or without a length. */
long bench_http_reply(const char *p, size_t len, bool *is_error);

size_t bench_b64(char *out, const char *in, size_t n);

#endif
