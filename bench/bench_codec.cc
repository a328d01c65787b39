// Codec micro-benchmarks: frame encode/decode per message kind, batch body
// building and iteration. See bench/README.md for what each name measures.
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"

extern "C" {
#include "codec.h"
#include "kv.h"
}

using rabia_bench::die;

namespace {

struct MsgCase {
    std::string name;
    struct rabia_msg msg;
    std::vector<uint8_t> body; // msg.body points here
};

struct rabia_batch_id sample_id()
{
    struct rabia_batch_id id;
    std::memset(&id, 0, sizeof id);
    id.proxy = 1;
    id.incarnation = 3;
    id.seq = 123456;
    return id;
}

// Every case, alive until exit (the registered benchmarks point to them).
std::vector<std::unique_ptr<MsgCase>> &all_cases()
{
    static std::vector<std::unique_ptr<MsgCase>> cases;
    return cases;
}

// The message of each case, with realistic field values. Built once.
MsgCase *make_case(const std::string &kind)
{
    all_cases().push_back(std::make_unique<MsgCase>());
    MsgCase *c = all_cases().back().get();
    std::memset(&c->msg, 0, sizeof c->msg);
    struct rabia_msg &m = c->msg;
    m.from = 1;
    if (kind == "STATE" || kind == "VOTE") {
        m.type = kind == "STATE" ? RABIA_MSG_STATE : RABIA_MSG_VOTE;
        m.slot = 987654;
        m.phase = 1;
        m.value = 1;
        m.has_id = 1;
        m.id = sample_id();
    } else if (kind == "PROPOSAL") {
        m.type = RABIA_MSG_PROPOSAL;
        m.slot = 987654;
        m.has_id = 1;
        m.id = sample_id();
    } else if (kind.rfind("BATCH_", 0) == 0) {
        size_t len = std::stoul(kind.substr(6)); // bytes of body
        m.type = RABIA_MSG_BATCH;
        m.has_id = 1;
        m.id = sample_id();
        c->body.resize(len);
        rabia_bench::fill_bytes(c->body.data(), len, 7);
    } else if (kind == "CLIENT_REQ") {
        // body: a KV "SET key:000042 <16 bytes>" operation (45 bytes)
        struct rabia_buf op;
        std::memset(&op, 0, sizeof op);
        const char *argv[3] = {"SET", "key:000042", "0123456789abcdef"};
        if (rabia_kv_encode_argv(&op, 3, argv, nullptr) != 0) {
            die("rabia_kv_encode_argv failed");
        }
        c->body.assign(op.data, op.data + op.len);
        rabia_buf_free(&op);
        m.type = RABIA_MSG_CLIENT_REQ;
        m.from = 0;
        m.u64 = 0x1122334455667788ull; // client id
        m.slot = 42;                   // client seq
        m.u64b = 40;                   // ack
    } else {
        die("unknown codec case %s", kind.c_str());
    }
    if (!c->body.empty()) {
        m.body = c->body.data();
        m.body_len = (uint32_t)c->body.size();
    }
    c->name = kind;
    return c;
}

void BM_Encode(benchmark::State &state, MsgCase *c)
{
    size_t size = rabia_msg_encoded_size(&c->msg);
    if (size == 0) {
        die("%s: rabia_msg_encoded_size says it cannot be encoded", c->name.c_str());
    }
    std::vector<uint8_t> out(size);
    for (auto _ : state) {
        int n = rabia_msg_encode(&c->msg, out.data(), out.size());
        benchmark::DoNotOptimize(n);
        benchmark::ClobberMemory();
        if (n != (int)size) {
            die("%s: encode returned %d, expected %zu", c->name.c_str(), n, size);
        }
    }
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)size);
    state.counters["frame_bytes"] = (double)size;
}

void BM_Decode(benchmark::State &state, MsgCase *c)
{
    size_t size = rabia_msg_encoded_size(&c->msg);
    std::vector<uint8_t> frame(size);
    if (size == 0 || rabia_msg_encode(&c->msg, frame.data(), size) != (int)size) {
        die("%s: cannot encode", c->name.c_str());
    }
    struct rabia_msg m;
    for (auto _ : state) {
        benchmark::DoNotOptimize(frame.data());
        int rc = rabia_msg_decode(frame.data(), frame.size(), &m);
        benchmark::DoNotOptimize(rc);
        benchmark::DoNotOptimize(m);
        if (rc != 0) {
            die("%s: decode returned %d", c->name.c_str(), rc);
        }
    }
    if (m.type != c->msg.type || m.body_len != c->msg.body_len) {
        die("%s: decoded message differs", c->name.c_str());
    }
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)size);
    state.counters["frame_bytes"] = (double)size;
}

// rabia_batch_init + N x rabia_batch_append of 16-byte ops into a reused
// buffer (no allocation after the first iteration).
void BM_BatchBuild(benchmark::State &state)
{
    const uint32_t n = (uint32_t)state.range(0);
    uint8_t op[16];
    rabia_bench::fill_bytes(op, sizeof op, 1);
    struct rabia_buf body;
    std::memset(&body, 0, sizeof body);
    for (auto _ : state) {
        if (rabia_batch_init(&body) != 0) {
            die("rabia_batch_init failed");
        }
        for (uint32_t i = 0; i < n; i++) {
            struct rabia_req r;
            r.client_id = i + 1;
            r.seq = 7;
            r.ack = 7;
            r.op = op;
            r.op_len = sizeof op;
            if (rabia_batch_append(&body, &r) != 0) {
                die("rabia_batch_append failed");
            }
        }
        benchmark::DoNotOptimize(body.data);
        benchmark::ClobberMemory();
    }
    if (rabia_batch_count(body.data, body.len) != n) {
        die("batch count mismatch");
    }
    state.SetItemsProcessed((int64_t)state.iterations() * n);
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)body.len);
    state.counters["body_bytes"] = (double)body.len;
    rabia_buf_free(&body);
}

// rabia_batch_iter_init + rabia_batch_iter_next over every request of a body
// of N 16-byte ops (what the apply layer does before calling the state
// machine).
void BM_BatchIterate(benchmark::State &state)
{
    const uint32_t n = (uint32_t)state.range(0);
    std::vector<uint8_t> body = rabia_bench::make_batch_body(n, 16, 3);
    uint64_t sum = 0;
    for (auto _ : state) {
        struct rabia_batch_iter it;
        if (rabia_batch_iter_init(&it, body.data(), body.size()) != 0) {
            die("rabia_batch_iter_init failed");
        }
        struct rabia_req r;
        int rc;
        uint32_t seen = 0;
        while ((rc = rabia_batch_iter_next(&it, &r)) == 1) {
            sum += r.client_id + r.op_len + r.op[0];
            seen++;
        }
        if (rc != 0 || seen != n) {
            die("batch iteration failed (rc %d, %u of %u)", rc, seen, n);
        }
        benchmark::DoNotOptimize(sum);
    }
    state.SetItemsProcessed((int64_t)state.iterations() * n);
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)body.size());
}

[[maybe_unused]] const int registered = [] {
    // STATE is left out: it has VOTE's exact layout and size (45 bytes).
    const char *kinds[] = {"VOTE",       "PROPOSAL",    "BATCH_256", "BATCH_4096",
                           "BATCH_65536", "CLIENT_REQ"};
    for (const char *k : kinds) {
        MsgCase *c = make_case(k);
        benchmark::RegisterBenchmark((std::string("Codec/Encode/") + k).c_str(), BM_Encode, c);
        benchmark::RegisterBenchmark((std::string("Codec/Decode/") + k).c_str(), BM_Decode, c);
    }
    benchmark::RegisterBenchmark("Codec/BatchBuild/ops16B", BM_BatchBuild)->Arg(16)->Arg(256);
    benchmark::RegisterBenchmark("Codec/BatchIterate/ops16B", BM_BatchIterate)->Arg(16)->Arg(256);
    return 0;
}();

} // namespace
