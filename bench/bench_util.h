// Helpers shared by the micro-benchmarks (C++17, header only).
#ifndef RABIA_BENCH_UTIL_H
#define RABIA_BENCH_UTIL_H

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" {
#include "codec.h"
#include "rabia/state_machine.h"
#include "rabia/types.h"
}

namespace rabia_bench {

// A benchmark that measured something other than what it claims must not
// produce a number: every setup and every consistency check ends here.
[[noreturn]] __attribute__((format(printf, 1, 2))) inline void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    std::fputs("rabia_microbench: FATAL: ", stderr);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
    std::abort();
}

// Deterministic filler bytes (splitmix64).
inline void fill_bytes(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0) {
            s += 0x9e3779b97f4a7c15ull;
        }
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        p[i] = (uint8_t)((z ^ (z >> 31)) >> (8 * (i % 8)));
    }
}

// A batch body of `ops` requests with `op_len`-byte opaque ops (one client
// per request, seq 1, ack 1). 16 x 16 B gives a 708-byte body.
inline std::vector<uint8_t> make_batch_body(uint32_t ops, uint32_t op_len, uint64_t seed)
{
    std::vector<uint8_t> op(op_len ? op_len : 1);
    struct rabia_buf body;
    std::memset(&body, 0, sizeof body);
    if (rabia_batch_init(&body) != 0) {
        die("rabia_batch_init failed");
    }
    for (uint32_t i = 0; i < ops; i++) {
        fill_bytes(op.data(), op_len, seed + i);
        struct rabia_req r;
        std::memset(&r, 0, sizeof r);
        r.client_id = seed * 1000 + i + 1;
        r.seq = 1;
        r.ack = 1;
        r.op = op.data();
        r.op_len = op_len;
        if (rabia_batch_append(&body, &r) != 0) {
            die("rabia_batch_append failed");
        }
    }
    std::vector<uint8_t> out(body.data, body.data + body.len);
    rabia_buf_free(&body);
    return out;
}

}  // namespace rabia_bench

#endif
