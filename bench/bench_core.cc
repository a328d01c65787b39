// Consensus-core micro-benchmarks: whole slots through n in-memory cores
// (direct struct passing or through the codec), and pending-queue (PQ)
// operations of one core driven through rabia_core_step. See
// bench/README.md for what each name measures.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"

extern "C" {
#include "codec.h"
#include "rabia/core.h"
}

using rabia_bench::die;

namespace {

// ---------------------------------------------------------------------
// A cluster of n cores joined by a FIFO in-memory router.

class Cluster {
public:
    Cluster(uint8_t n, bool via_codec) : n_(n), codec_(via_codec), ring_(kRing)
    {
        for (uint8_t i = 0; i < n; i++) {
            struct rabia_config cfg;
            rabia_config_default(&cfg, n, i); // window 1, policy global
            char why[200];
            if (rabia_config_check(&cfg, why, sizeof why) != 0) {
                die("config: %s", why);
            }
            struct rabia_core *c = rabia_core_create(&cfg);
            if (!c) {
                die("rabia_core_create failed");
            }
            cores_.push_back(c);
        }
        tally_.assign(n, Tally());
    }
    ~Cluster()
    {
        for (struct rabia_core *c : cores_) {
            rabia_core_destroy(c);
        }
    }
    Cluster(const Cluster &) = delete;
    Cluster &operator=(const Cluster &) = delete;

    // Per core: what it applied, in order.
    struct Tally {
        uint64_t last_slot = 0;
        uint64_t nulls = 0;
        uint64_t batches = 0;
        bool last_null = false;
        struct rabia_batch_id last_id = {0, 0, 0};
    };

    struct rabia_batch_id submit(uint8_t i, const std::vector<uint8_t> &body)
    {
        struct rabia_event ev;
        std::memset(&ev, 0, sizeof ev);
        ev.type = RABIA_EV_SUBMIT;
        ev.now_us = ++now_;
        ev.body = body.data();
        ev.body_len = (uint32_t)body.size();
        int rc = rabia_core_step(cores_[i], &ev, &upd_);
        if (rc != 0) {
            die("SUBMIT at core %u refused: %s", i, rabia_strerror(rc));
        }
        struct rabia_batch_id id = upd_.submitted;
        post(i, upd_);
        return id;
    }

    // Deliver queued messages in FIFO order, routing whatever each step
    // sends, until nothing is queued. Returns the messages delivered.
    uint64_t drain(uint64_t max_msgs)
    {
        uint64_t k = 0;
        while (head_ != tail_) {
            if (++k > max_msgs) {
                die("router: more than %llu messages without going idle",
                    (unsigned long long)max_msgs);
            }
            Packet &p = ring_[head_++ & (kRing - 1)];
            struct rabia_event ev;
            std::memset(&ev, 0, sizeof ev);
            ev.type = RABIA_EV_RECEIVE;
            ev.now_us = ++now_;
            if (codec_) {
                int rc = rabia_msg_decode(p.buf.data(), p.len, &ev.msg);
                if (rc != 0) {
                    die("decode: %s", rabia_strerror(rc));
                }
            } else {
                ev.msg = p.msg;
            }
            int rc = rabia_core_step(cores_[p.to], &ev, &upd_);
            if (rc != 0) {
                die("RECEIVE at core %u: %s", p.to, rabia_strerror(rc));
            }
            post(p.to, upd_); // copies bodies before the core steps again
        }
        return k;
    }

    struct rabia_core *core(uint8_t i) { return cores_[i]; }
    const Tally &tally(uint8_t i) const { return tally_[i]; }
    uint8_t n() const { return n_; }

private:
    static constexpr uint64_t kRing = 4096;
    struct Packet {
        uint8_t to = 0;
        struct rabia_msg msg;     // direct mode
        std::vector<uint8_t> buf; // direct: body copy; codec: the frame
        size_t len = 0;
    };

    Packet &push(uint8_t to)
    {
        if (tail_ - head_ >= kRing) {
            die("router queue overflow");
        }
        Packet &p = ring_[tail_++ & (kRing - 1)];
        p.to = to;
        return p;
    }

    static void put(std::vector<uint8_t> &buf, size_t &len, const uint8_t *data, size_t n)
    {
        if (buf.size() < n) {
            buf.resize(n); // grows only: no zeroing once warm
        }
        if (n) {
            std::memcpy(buf.data(), data, n);
        }
        len = n;
    }

    void post(uint8_t from, const struct rabia_update &u)
    {
        for (uint32_t s = 0; s < u.n_sends; s++) {
            const struct rabia_send &snd = u.sends[s];
            size_t size = 0;
            if (codec_) { // encode once, then copy to every destination
                size = rabia_msg_encoded_size(&snd.msg);
                if (size == 0) {
                    die("core %u emitted an unencodable %s", from, rabia_msg_type_name(snd.msg.type));
                }
                if (scratch_.size() < size) {
                    scratch_.resize(size);
                }
                int rc = rabia_msg_encode(&snd.msg, scratch_.data(), size);
                if (rc != (int)size) {
                    die("encode: %d", rc);
                }
            }
            for (uint8_t d = 0; d < n_; d++) {
                if (d == from || (snd.to != RABIA_TO_ALL && snd.to != d)) {
                    continue;
                }
                Packet &p = push(d);
                if (codec_) {
                    put(p.buf, p.len, scratch_.data(), size);
                } else {
                    p.msg = snd.msg;
                    put(p.buf, p.len, snd.msg.body, snd.msg.body_len);
                    p.msg.body = snd.msg.body_len ? p.buf.data() : nullptr;
                }
            }
        }
        Tally &t = tally_[from];
        for (uint32_t a = 0; a < u.n_applies; a++) {
            const struct rabia_apply &ap = u.applies[a];
            if (ap.slot != t.last_slot + 1) {
                die("core %u applied slot %llu after %llu", from, (unsigned long long)ap.slot,
                    (unsigned long long)t.last_slot);
            }
            t.last_slot = ap.slot;
            t.last_null = ap.null;
            t.last_id = ap.id;
            if (ap.null) {
                t.nulls++;
            } else {
                t.batches++;
            }
        }
    }

    uint8_t n_;
    bool codec_;
    std::vector<struct rabia_core *> cores_;
    std::vector<Tally> tally_;
    std::vector<Packet> ring_;
    uint64_t head_ = 0, tail_ = 0;
    uint64_t now_ = 0;
    struct rabia_update upd_;
    std::vector<uint8_t> scratch_;
};

// Slots run before timing starts. A core keeps the bodies of its last
// log_retain (1024) applied slots, each in its own max_batch_bytes (64 KiB)
// arena entry, so until ~1024 slots have gone by every batch lands in
// memory never touched before (page faults). The steady state of a running
// replica recycles warm entries, which is what the benchmarks time.
constexpr uint32_t kWarmSlots = 1200;

// One uncontended slot: SUBMIT a 16 x 16 B batch (708 B body) at core 0,
// deliver everything until idle; every core must have applied exactly that
// batch in the next slot.
void BM_Slot(benchmark::State &state, uint8_t n, bool codec)
{
    Cluster cl(n, codec);
    std::vector<uint8_t> body = rabia_bench::make_batch_body(16, 16, 1);
    auto one_slot = [&]() -> uint64_t {
        uint64_t slot = cl.tally(0).last_slot + 1;
        struct rabia_batch_id id = cl.submit(0, body);
        uint64_t msgs = cl.drain(100000);
        for (uint8_t i = 0; i < n; i++) {
            const Cluster::Tally &t = cl.tally(i);
            if (t.last_slot != slot || t.last_null || !rabia_batch_id_eq(&t.last_id, &id) ||
                rabia_core_next_apply(cl.core(i)) != slot + 1 || rabia_core_pending(cl.core(i)) != 0) {
                die("slot %llu not applied with the submitted batch at core %u",
                    (unsigned long long)slot, i);
            }
        }
        return msgs;
    };
    for (uint32_t i = 0; i < kWarmSlots; i++) {
        one_slot();
    }
    const struct rabia_stats st0 = *rabia_core_stats(cl.core(0));
    uint64_t msgs = 0;
    for (auto _ : state) {
        msgs += one_slot();
    }
    const struct rabia_stats *st = rabia_core_stats(cl.core(0));
    uint64_t decided = st->slots_decided - st0.slots_decided;
    state.SetItemsProcessed((int64_t)state.iterations()); // items = slots
    state.counters["msgs/slot"] = (double)msgs / (double)state.iterations();
    state.counters["fast_frac"] = decided ? (double)(st->slots_fast - st0.slots_fast) / (double)decided : 0.0;
}

// Contended: every core SUBMITs a different batch at the same time (before
// hearing the others), then deliver until idle. All n batches must end up
// applied at every core; slots decided null on the way count as slots.
void BM_SlotContended(benchmark::State &state, uint8_t n, bool codec)
{
    Cluster cl(n, codec);
    std::vector<std::vector<uint8_t>> bodies;
    for (uint8_t i = 0; i < n; i++) {
        bodies.push_back(rabia_bench::make_batch_body(16, 16, 100 + i));
    }
    uint64_t msgs = 0, slots = 0, nulls = 0;
    auto one_round = [&]() {
        uint64_t start = cl.tally(0).last_slot;
        uint64_t null0 = cl.tally(0).nulls;
        std::vector<uint64_t> batches0(n);
        for (uint8_t i = 0; i < n; i++) {
            batches0[i] = cl.tally(i).batches;
        }
        for (uint8_t i = 0; i < n; i++) {
            cl.submit(i, bodies[i]);
        }
        msgs += cl.drain(1000000);
        uint64_t end = cl.tally(0).last_slot;
        for (uint8_t i = 0; i < n; i++) {
            const Cluster::Tally &t = cl.tally(i);
            if (t.last_slot != end || t.batches - batches0[i] != n || rabia_core_pending(cl.core(i)) != 0) {
                die("contended round: core %u applied up to %llu (core 0: %llu), %llu of %u batches, %u pending",
                    i, (unsigned long long)t.last_slot, (unsigned long long)end,
                    (unsigned long long)(t.batches - batches0[i]), n, rabia_core_pending(cl.core(i)));
            }
        }
        slots += end - start;
        nulls += cl.tally(0).nulls - null0;
    };
    while (cl.tally(0).last_slot < kWarmSlots) {
        one_round();
    }
    msgs = slots = nulls = 0;
    for (auto _ : state) {
        one_round();
    }
    state.SetItemsProcessed((int64_t)slots); // items = decided slots (null included)
    state.counters["time/slot"] =
        benchmark::Counter((double)slots, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    state.counters["slots/round"] = (double)slots / (double)state.iterations();
    state.counters["null_frac"] = slots ? (double)nulls / (double)slots : 0.0;
    state.counters["msgs/slot"] = slots ? (double)msgs / (double)slots : 0.0;
}

// ---------------------------------------------------------------------
// Pending-queue operations of one core (n = 3, self = 0, window 1,
// max_pending = depth), driven only by events: no peer ever answers, so
// slots are decided by a DECISION message from peer 1 naming the head.
//
// depth:D = batches in the queue right after the insert (D - 1 before).
// Insert steps: own = SUBMIT event (copy the 708-byte body into the batch
// table, insert at the tail of the own queue, emit the BATCH broadcast);
// peer = RECEIVE of peer 1's BATCH (copy the body, insert into proxy 1's
// queue). With depth 1 the queue was empty, so the insert step also starts
// the slot (choose the head, emit PROPOSAL); with D > 1 a slot is already
// running. Decide step: RECEIVE DECISION(slot = next, head batch) from
// peer 1 = decide + apply the head, remove it from the queue, and (D > 1)
// start the next slot.
//   *_then_DECISION_cycle: insert step + decide step, automatic timing.
//   *_step_only: the insert step alone, timed with steady_clock around the
//   one rabia_core_step call (manual time; the decide step runs untimed).

enum class PqSource { Own, Peer };
enum class PqTimed { Cycle, InsertStep };

using Clock = std::chrono::steady_clock;

void BM_Pq(benchmark::State &state, PqSource src, PqTimed timed)
{
    const uint32_t depth = (uint32_t)state.range(0);
    struct rabia_config cfg;
    rabia_config_default(&cfg, 3, 0);
    cfg.max_pending = depth;
    struct rabia_core *c = rabia_core_create(&cfg);
    if (!c) {
        die("rabia_core_create failed");
    }
    std::vector<uint8_t> body = rabia_bench::make_batch_body(16, 16, 5);
    const uint8_t proxy = src == PqSource::Own ? 0 : 1;
    uint64_t now = 0;
    struct rabia_update u;

    struct rabia_event ins; // SUBMIT, or RECEIVE of peer 1's BATCH
    std::memset(&ins, 0, sizeof ins);
    if (src == PqSource::Own) {
        ins.type = RABIA_EV_SUBMIT;
        ins.body = body.data();
        ins.body_len = (uint32_t)body.size();
    } else {
        ins.type = RABIA_EV_RECEIVE;
        ins.msg.type = RABIA_MSG_BATCH;
        ins.msg.from = 1;
        ins.msg.has_id = 1;
        ins.msg.id.proxy = 1;
        ins.msg.id.incarnation = 1;
        ins.msg.body = body.data();
        ins.msg.body_len = (uint32_t)body.size();
    }
    struct rabia_event dec; // RECEIVE DECISION from peer 1: slot -> head batch
    std::memset(&dec, 0, sizeof dec);
    dec.type = RABIA_EV_RECEIVE;
    dec.msg.type = RABIA_MSG_DECISION;
    dec.msg.from = 1;
    dec.msg.value = 1;
    dec.msg.has_id = 1;
    dec.msg.id.proxy = proxy;
    dec.msg.id.incarnation = 1;

    uint64_t next_seq = 1; // next batch inserted
    uint64_t head_seq = 1; // oldest pending batch
    auto insert = [&]() {
        ins.now_us = ++now;
        ins.msg.id.seq = next_seq; // ignored by SUBMIT (the core numbers it)
        int rc = rabia_core_step(c, &ins, &u);
        if (rc != 0 || (src == PqSource::Own && u.submitted.seq != next_seq)) {
            die("insert of seq %llu failed: %s", (unsigned long long)next_seq, rabia_strerror(rc));
        }
        next_seq++;
    };
    auto decide = [&]() {
        dec.now_us = ++now;
        dec.msg.slot = rabia_core_next_apply(c);
        dec.msg.id.seq = head_seq;
        int rc = rabia_core_step(c, &dec, &u);
        if (rc != 0 || u.n_applies != 1 || u.applies[0].null || u.applies[0].id.seq != head_seq) {
            die("DECISION of seq %llu did not apply it", (unsigned long long)head_seq);
        }
        head_seq++;
    };

    for (uint32_t i = 0; i + 1 < depth; i++) { // fill to depth - 1
        insert();
    }
    for (uint32_t i = 0; i < kWarmSlots; i++) { // warm the batch table (see kWarmSlots)
        insert();
        decide();
    }
    if (rabia_core_pending(c) != depth - 1) {
        die("fill: %u pending, expected %u", rabia_core_pending(c), depth - 1);
    }
    for (auto _ : state) {
        if (timed == PqTimed::Cycle) {
            insert(); // depth - 1 -> depth
            decide(); // depth -> depth - 1
        } else {
            Clock::time_point t0 = Clock::now();
            insert();
            Clock::time_point t1 = Clock::now();
            decide();
            state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
        }
    }
    if (rabia_core_pending(c) != depth - 1 || rabia_core_stats(c)->anomalies != 0) {
        die("after the run: %u pending (expected %u), %llu anomalies", rabia_core_pending(c), depth - 1,
            (unsigned long long)rabia_core_stats(c)->anomalies);
    }
    rabia_core_destroy(c);
}

// Two back-to-back steady_clock::now() calls. A *_step_only interval
// carries roughly one call's worth of this (half the figure) on top of
// the step itself.
void BM_ClockPair(benchmark::State &state)
{
    for (auto _ : state) {
        Clock::time_point t0 = Clock::now();
        Clock::time_point t1 = Clock::now();
        benchmark::DoNotOptimize(t0);
        benchmark::DoNotOptimize(t1);
    }
}

[[maybe_unused]] const int registered = [] {
    benchmark::RegisterBenchmark("Slot/uncontended/n:3/direct", BM_Slot, 3, false);
    benchmark::RegisterBenchmark("Slot/uncontended/n:3/via_codec", BM_Slot, 3, true);
    benchmark::RegisterBenchmark("Slot/uncontended/n:5/direct", BM_Slot, 5, false);
    benchmark::RegisterBenchmark("Slot/uncontended/n:5/via_codec", BM_Slot, 5, true);
    benchmark::RegisterBenchmark("Slot/contended_all_submit/n:3/direct", BM_SlotContended, 3, false);
    benchmark::RegisterBenchmark("Slot/contended_all_submit/n:3/via_codec", BM_SlotContended, 3, true);

    struct {
        const char *name;
        PqSource src;
        PqTimed timed;
    } pq[] = {
        {"PQ/own/SUBMIT_then_DECISION_cycle", PqSource::Own, PqTimed::Cycle},
        {"PQ/own/SUBMIT_step_only", PqSource::Own, PqTimed::InsertStep},
        {"PQ/peer/BATCH_then_DECISION_cycle", PqSource::Peer, PqTimed::Cycle},
        {"PQ/peer/BATCH_step_only", PqSource::Peer, PqTimed::InsertStep},
    };
    for (const auto &b : pq) {
        benchmark::internal::Benchmark *r = benchmark::RegisterBenchmark(b.name, BM_Pq, b.src, b.timed);
        r->ArgName("depth")->Arg(1)->Arg(16)->Arg(64);
        if (b.timed != PqTimed::Cycle) {
            r->UseManualTime();
        }
    }
    benchmark::RegisterBenchmark("PQ/clock_overhead/steady_clock_now_x2", BM_ClockPair);
    return 0;
}();

} // namespace
