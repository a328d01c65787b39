// Apply-layer micro-benchmark: rabia_rsm_apply of one decided batch of 16
// KV SET requests through the example KV state machine (rabia_sm_kv),
// sessions included. See bench/README.md.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "bench_util.h"

extern "C" {
#include "codec.h"
#include "kv.h"
#include "rsm.h"
}

using rabia_bench::die;

namespace {

constexpr uint32_t kOps = 16;      // requests per batch
constexpr uint32_t kKeys = 4096;   // distinct keys: the store holds this many
constexpr uint32_t kBatches = 1024; // batches prebuilt per round

struct Replies {
    uint64_t ok = 0, other = 0;
};

void on_reply(void *ctx, uint64_t, uint64_t, int status, const uint8_t *, size_t)
{
    Replies *r = static_cast<Replies *>(ctx);
    if (status == RABIA_REPLY_OK) {
        r->ok++;
    } else {
        r->other++;
    }
}

// Round r: batch b holds requests from the 16 clients (sessions ID 1..16,
// opened first), each with seq = ack = r * kBatches + b + 2 (a client with
// one request in flight; seq 1 was its OPEN),
// op "SET key:NNNNNN <16 bytes>" cycling through kKeys keys.
void build_round(std::vector<std::vector<uint8_t>> &out, uint64_t round)
{
    struct rabia_buf body, op;
    std::memset(&body, 0, sizeof body);
    std::memset(&op, 0, sizeof op);
    out.resize(kBatches);
    for (uint32_t b = 0; b < kBatches; b++) {
        if (rabia_batch_init(&body) != 0) {
            die("rabia_batch_init failed");
        }
        uint64_t seq = round * kBatches + b + 2;
        for (uint32_t i = 0; i < kOps; i++) {
            char key[32], val[17];
            std::snprintf(key, sizeof key, "key:%06u", (unsigned)((b * kOps + i) % kKeys));
            std::snprintf(val, sizeof val, "v%015llu", (unsigned long long)(seq * kOps + i));
            const char *argv[3] = {"SET", key, val};
            rabia_buf_clear(&op);
            if (rabia_kv_encode_argv(&op, 3, argv, nullptr) != 0) {
                die("rabia_kv_encode_argv failed");
            }
            struct rabia_req r;
            r.client_id = RABIA_SESSION_ASSIGNED | (i + 1); // the (i+1)-th OPEN's session
            r.seq = seq;
            r.ack = seq;
            r.op = op.data;
            r.op_len = (uint32_t)op.len;
            if (rabia_batch_append(&body, &r) != 0) {
                die("rabia_batch_append failed");
            }
        }
        out[b].assign(body.data, body.data + body.len);
    }
    rabia_buf_free(&body);
    rabia_buf_free(&op);
}

void BM_RsmApplyKvSet16(benchmark::State &state)
{
    struct rabia_rsm *rsm = rabia_rsm_create(&rabia_sm_kv, nullptr); // 4096 sessions
    if (!rsm) {
        die("rabia_rsm_create failed");
    }
    Replies rep;
    std::vector<std::vector<uint8_t>> batches;
    uint64_t round = 0, slot = 0;
    // Warm-up (untimed): the 16 clients open their sessions (OPEN: empty op,
    // seq 1; the k-th OPEN names session RABIA_SESSION_ASSIGNED | k), then a
    // round creates all kKeys keys, so the timed batches overwrite existing
    // keys in a 4096-key store.
    {
        struct rabia_buf open;
        std::memset(&open, 0, sizeof open);
        rabia_batch_init(&open);
        for (uint32_t i = 0; i < kOps; i++) {
            struct rabia_req r = {};
            r.client_id = 0x1000 + i;
            r.seq = r.ack = 1;
            if (rabia_batch_append(&open, &r) != 0) {
                die("rabia_batch_append failed");
            }
        }
        if (rabia_rsm_apply(rsm, ++slot, open.data, open.len, on_reply, &rep) != 0) {
            die("opening the sessions failed");
        }
        rabia_buf_free(&open);
    }
    build_round(batches, round++);
    for (const std::vector<uint8_t> &b : batches) {
        if (rabia_rsm_apply(rsm, ++slot, b.data(), b.size(), on_reply, &rep) != 0) {
            die("warm-up apply failed");
        }
    }
    build_round(batches, round++);
    size_t next = 0;
    uint64_t bytes = 0;
    rep = Replies();
    for (auto _ : state) {
        if (next == kBatches) { // once per 1024 iterations
            state.PauseTiming();
            build_round(batches, round++);
            next = 0;
            state.ResumeTiming();
        }
        const std::vector<uint8_t> &b = batches[next++];
        int rc = rabia_rsm_apply(rsm, ++slot, b.data(), b.size(), on_reply, &rep);
        if (rc != 0) {
            die("rabia_rsm_apply: %d", rc);
        }
        bytes += b.size();
    }
    if (rep.other != 0 || rep.ok != (uint64_t)state.iterations() * kOps ||
        rabia_rsm_applied(rsm) != slot || rabia_kv_count(rabia_rsm_sm(rsm)) != kKeys ||
        rabia_rsm_sessions(rsm) != kOps) {
        die("apply check failed: %llu ok, %llu other replies, %llu keys",
            (unsigned long long)rep.ok, (unsigned long long)rep.other,
            (unsigned long long)rabia_kv_count(rabia_rsm_sm(rsm)));
    }
    state.SetItemsProcessed((int64_t)state.iterations() * kOps); // items = ops
    state.SetBytesProcessed((int64_t)bytes);
    state.counters["batches/s"] = benchmark::Counter((double)state.iterations(), benchmark::Counter::kIsRate);
    rabia_rsm_destroy(rsm);
}

BENCHMARK(BM_RsmApplyKvSet16)->Name("RSM/apply_batch/kv_SET_x16");

} // namespace

namespace {

// The state hash that status, INFO and convergence checks ask for: one
// batch of 16 SETs applied, then rabia_rsm_hash, in a store of N keys
// with 100-byte values. "incremental" is the KV store's state_hash op
// (per-key terms, kv/state_hash.c); "snapshot" is the same store without
// the op, hashed as before (serialize everything, XXH3): the cost the
// event loop paid once a second.
void BM_RsmStateHash(benchmark::State &state, bool incremental)
{
    static struct rabia_sm_ops no_op; // rabia_sm_kv without state_hash
    no_op = rabia_sm_kv;
    no_op.state_hash = nullptr;
    const uint32_t keys = (uint32_t)state.range(0);
    struct rabia_rsm *rsm = rabia_rsm_create(incremental ? &rabia_sm_kv : &no_op, nullptr);
    if (!rsm) {
        die("rabia_rsm_create failed");
    }
    void *kv = rabia_rsm_sm(rsm);
    struct rabia_buf op, rep, body;
    std::memset(&op, 0, sizeof op);
    std::memset(&rep, 0, sizeof rep);
    std::memset(&body, 0, sizeof body);
    char key[32], val[101];
    std::memset(val, 'v', 100);
    val[100] = 0;
    for (uint32_t k = 0; k < keys; k++) { // the keyspace, straight into the store
        std::snprintf(key, sizeof key, "key:%012u", k);
        const char *argv[3] = {"SET", key, val};
        rabia_buf_clear(&op);
        rabia_buf_clear(&rep);
        if (rabia_kv_encode_argv(&op, 3, argv, nullptr) != 0 || rabia_sm_kv.apply(kv, op.data, op.len, &rep) != 0) {
            die("loading the store failed");
        }
    }
    uint64_t slot = 0, seq = 0, sink = 0, n = 0;
    Replies r;
    for (auto _ : state) {
        state.PauseTiming();
        rabia_batch_init(&body);
        seq++;
        for (uint32_t i = 0; i < kOps; i++) {
            std::snprintf(key, sizeof key, "key:%012u", (unsigned)((seq * 7919 + i * 104729) % keys));
            const char *argv[3] = {"SET", key, val};
            rabia_buf_clear(&op);
            rabia_kv_encode_argv(&op, 3, argv, nullptr);
            struct rabia_req q = {};
            q.client_id = RABIA_SESSION_CONN_SCOPED | (i + 1);
            q.seq = seq;
            q.ack = seq;
            q.op = op.data;
            q.op_len = (uint32_t)op.len;
            rabia_batch_append(&body, &q);
        }
        if (rabia_rsm_apply(rsm, ++slot, body.data, body.len, on_reply, &r) != 0) {
            die("apply failed");
        }
        state.ResumeTiming();
        sink += rabia_rsm_hash(rsm);
        n++;
    }
    benchmark::DoNotOptimize(sink);
    if (rabia_kv_count(kv) != keys || r.other != 0) {
        die("state hash benchmark: %llu keys, %llu bad replies", (unsigned long long)rabia_kv_count(kv),
            (unsigned long long)r.other);
    }
    state.SetItemsProcessed((int64_t)n);
    rabia_buf_free(&op);
    rabia_buf_free(&rep);
    rabia_buf_free(&body);
    rabia_rsm_destroy(rsm);
}

} // namespace

BENCHMARK_CAPTURE(BM_RsmStateHash, incremental, true)->Name("RSM/state_hash/incremental")->Arg(10000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_RsmStateHash, snapshot, false)->Name("RSM/state_hash/snapshot")->Arg(10000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMicrosecond);
