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
