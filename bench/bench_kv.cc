// Per-type micro-benchmarks of the KV state machine (kv/): operations per
// second of rabia_sm_kv.apply, in-process, on operations encoded before
// the timed loop (rabia_kv_encode_argv), replies into one reused
// rabia_buf. bench/kv_vs_redis.sh puts them next to redis-server's
// figures from redis-benchmark (bench/results/kv_micro.md).
//
// The store holds what a small production keyspace would: 100,000 keys of
// 16 bytes ("key:%012u", the shape of redis-benchmark's key:__rand_int__)
// with 100-byte values, accessed in a pseudo-random order; the collections
// under test live next to them. Every reply is checked against the start
// of the one expected (a hit, an integer, an array of the right length):
// an error (an unknown or unimplemented command, WRONGTYPE, a syntax
// error) or a miss aborts with a message naming the reply, so a broken or
// missing command never produces a number.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"

extern "C" {
#include "kv.h"
}

using rabia_bench::die;

namespace {

constexpr uint32_t kKeys = 100000;        // keys in every store
constexpr size_t kValLen = 100;           // bytes per value (strings, list elements, big hash)
constexpr size_t kSmallValLen = 32;       // small hashes: compact-encoded (<= 64 bytes)
constexpr uint32_t kSmallFields = 4;      // fields per small hash
constexpr uint32_t kHashFields = 100;     // the big hash
constexpr uint32_t kListLen = 1000;       // the list
constexpr uint32_t kIntsetLen = 100;      // the small integer set
constexpr uint32_t kSetLen = 10000;       // the large set
constexpr uint32_t kZsetLen = 10000;      // the sorted set
constexpr uint32_t kOpsDefault = 1 << 16; // distinct ops prebuilt per benchmark, cycled
constexpr uint32_t kOpsMulti = 1 << 12;   // ... for MSET / TXN (10 and 5 keys per op)
constexpr uint64_t kClockMs = 1700000000000ull; // the log's clock: nothing expires

// splitmix64: the same sequence on every run.
struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed) {}
    uint64_t next()
    {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    uint32_t below(uint32_t n) { return (uint32_t)(next() % n); }
};

std::string fmt(const char *f, uint32_t i)
{
    char b[64];
    std::snprintf(b, sizeof b, f, i);
    return b;
}

// 16-byte names.
std::string key(uint32_t i) { return fmt("key:%012u", i); }
std::string field(uint32_t i) { return fmt("field:%010u", i); }
std::string member(uint32_t i) { return fmt("member:%09u", i); }
// Scores of 7 digits, so that ZSCORE's reply has a known length.
std::string score(uint64_t r) { return fmt("%u", (uint32_t)(1000000 + r % 9000000)); }

// n printable bytes that differ with seed.
std::string value(uint64_t seed, size_t n)
{
    std::string v(n, 'x');
    Rng r(seed);
    for (size_t i = 0; i < n; i++) {
        v[i] = (char)('a' + r.below(26));
    }
    return v;
}

using Argv = std::vector<std::string>;

void encode(struct rabia_buf *out, const Argv &a)
{
    std::vector<const char *> p;
    std::vector<size_t> n;
    for (const std::string &s : a) {
        p.push_back(s.data());
        n.push_back(s.size());
    }
    if (rabia_kv_encode_argv(out, (int)a.size(), p.data(), n.data()) != 0) {
        die("rabia_kv_encode_argv failed");
    }
}

// Encoded operations, back to back in one buffer.
class Ops {
  public:
    void add(const Argv &a)
    {
        struct rabia_buf b;
        std::memset(&b, 0, sizeof b);
        encode(&b, a);
        push(b.data, b.len);
        rabia_buf_free(&b);
    }
    // One TXN operation (MULTI ... EXEC) running each of cmds in order.
    void add_txn(const std::vector<Argv> &cmds)
    {
        std::vector<struct rabia_buf> sub(cmds.size());
        std::vector<const uint8_t *> p;
        std::vector<size_t> n;
        for (size_t i = 0; i < cmds.size(); i++) {
            std::memset(&sub[i], 0, sizeof sub[i]);
            encode(&sub[i], cmds[i]);
            p.push_back(sub[i].data);
            n.push_back(sub[i].len);
        }
        struct rabia_buf b;
        std::memset(&b, 0, sizeof b);
        if (rabia_kv_encode_txn(&b, (int)cmds.size(), p.data(), n.data()) != 0) {
            die("rabia_kv_encode_txn failed");
        }
        push(b.data, b.len);
        rabia_buf_free(&b);
        for (struct rabia_buf &s : sub) {
            rabia_buf_free(&s);
        }
    }
    size_t size() const { return off_.size(); }
    const uint8_t *op(size_t i) const { return bytes_.data() + off_[i]; }
    size_t len(size_t i) const { return (i + 1 < off_.size() ? off_[i + 1] : bytes_.size()) - off_[i]; }

  private:
    void push(const uint8_t *p, size_t n)
    {
        off_.push_back(bytes_.size());
        bytes_.insert(bytes_.end(), p, p + n);
    }
    std::vector<uint8_t> bytes_;
    std::vector<size_t> off_;
};

// Which file implements a benchmark's commands: named when a reply is
// wrong.
const char *family_hint(const char *bench)
{
    static const char *const map[][2] = {
        {"KV/hash/", "kv/t_hash.c"}, {"KV/list/", "kv/t_list.c"}, {"KV/set/", "kv/t_set.c"},
        {"KV/zset/", "kv/t_zset.c"}, {"KV/string/", "kv/t_string.c"}, {"KV/txn/", "kv/t_string.c, kv/command.c"},
        {"KV/keys/", "kv/t_keys.c"}, {"KV/geo/", "kv/t_geo.c"}, {"KV/sort/", "kv/t_sort.c"},
    };
    for (const auto &m : map) {
        if (std::strncmp(bench, m[0], std::strlen(m[0])) == 0) {
            return m[1];
        }
    }
    return "kv/";
}

[[noreturn]] __attribute__((noinline, cold)) void bad_reply(const char *bench, const struct rabia_buf &r,
                                                              const char *want, size_t want_len)
{
    size_t show = r.len < 160 ? r.len : 160;
    std::string got, exp;
    for (size_t i = 0; i < show; i++) {
        char ch = (char)r.data[i];
        got += ch == '\r' ? std::string("\\r") : ch == '\n' ? std::string("\\n") : std::string(1, ch);
    }
    for (size_t i = 0; i < want_len; i++) {
        char ch = want[i];
        exp += ch == '\r' ? std::string("\\r") : ch == '\n' ? std::string("\\n") : std::string(1, ch);
    }
    die("%s: expected a reply starting \"%s\", got \"%s\"%s (%s)", bench, exp.c_str(), got.c_str(),
        r.len > show ? "..." : "", family_hint(bench));
}

// A state machine and a reused reply buffer.
class Store {
  public:
    Store()
    {
        sm_ = rabia_sm_kv.create();
        if (!sm_) {
            die("rabia_sm_kv.create failed");
        }
        std::memset(&reply_, 0, sizeof reply_);
        struct rabia_sm_batch b = {1, kClockMs};
        rabia_sm_kv.begin(sm_, &b);
    }
    ~Store()
    {
        rabia_sm_kv.destroy(sm_);
        rabia_buf_free(&reply_);
    }
    Store(const Store &) = delete;
    Store &operator=(const Store &) = delete;

    // Apply op; abort unless the reply starts with want.
    inline void apply(const char *bench, const uint8_t *op, size_t n, const char *want, size_t want_len)
    {
        rabia_buf_clear(&reply_);
        int rc = rabia_sm_kv.apply(sm_, op, n, &reply_);
        if (rc != 0) {
            die("%s: apply returned %d", bench, rc);
        }
        if (reply_.len < want_len || std::memcmp(reply_.data, want, want_len) != 0) {
            bad_reply(bench, reply_, want, want_len);
        }
    }
    // Untimed: op i of ops / one command.
    void must(const char *bench, const Ops &ops, size_t i, const char *want)
    {
        apply(bench, ops.op(i), ops.len(i), want, std::strlen(want));
    }
    void must(const char *bench, const Argv &a, const char *want)
    {
        Ops ops;
        ops.add(a);
        must(bench, ops, 0, want);
    }
    uint64_t keys() const { return rabia_kv_count(sm_); }
    uint32_t built = 0; // collections added (Coll bits)

  private:
    void *sm_;
    struct rabia_buf reply_;
};

// 100,000 keys with 100-byte values.
void fill_strings(Store &s, const char *bench)
{
    for (uint32_t i = 0; i < kKeys; i++) {
        s.must(bench, {"SET", key(i), value(i, kValLen)}, "+OK\r\n");
    }
}

// Every store is built once per process and kept: Google Benchmark calls a
// benchmark function several times (to size the iteration count), and
// 100,000 keys take a while to insert.
Store &strings_store(const char *bench)
{
    static std::unique_ptr<Store> s;
    if (!s) {
        s = std::make_unique<Store>();
        fill_strings(*s, bench);
    }
    return *s;
}

// Collections, added to the strings store on first use (a handful of keys
// more: the keyspace stays 100,000 keys).
enum Coll : uint32_t { HASH_BIG = 1, LIST = 2, INTSET = 4, SET_BIG = 8, ZSET = 16 };
const char *const kHashBig = "hash:big";
const char *const kList = "list:big";
const char *const kIntset = "set:ints";
const char *const kSetBig = "set:big";
const char *const kZset = "zset:big";

Argv list_fill(const char *cmd, uint32_t from, uint32_t n)
{
    Argv a = {cmd, kList};
    for (uint32_t i = from; i < from + n; i++) {
        a.push_back(value(1000000 + i, kValLen));
    }
    return a;
}
Argv set_big_fill()
{
    Argv a = {"SADD", kSetBig};
    for (uint32_t i = 0; i < kSetLen; i++) {
        a.push_back(member(i));
    }
    return a;
}
std::string zscore_of(uint32_t i) { return score(Rng(7000000 + i).next()); }
Argv zset_fill()
{
    Argv a = {"ZADD", kZset};
    for (uint32_t i = 0; i < kZsetLen; i++) {
        a.push_back(zscore_of(i));
        a.push_back(member(i));
    }
    return a;
}

Store &with(uint32_t colls, const char *bench)
{
    Store &s = strings_store(bench);
    uint32_t missing = colls & ~s.built;
    if (missing & HASH_BIG) {
        Argv a = {"HSET", kHashBig};
        for (uint32_t i = 0; i < kHashFields; i++) {
            a.push_back(field(i));
            a.push_back(value(2000000 + i, kValLen));
        }
        s.must(bench, a, ":100\r\n");
    }
    if (missing & LIST) {
        s.must(bench, list_fill("RPUSH", 0, kListLen), ":1000\r\n");
    }
    if (missing & INTSET) {
        Argv a = {"SADD", kIntset};
        for (uint32_t i = 0; i < kIntsetLen; i++) {
            a.push_back(std::to_string(i));
        }
        s.must(bench, a, ":100\r\n");
    }
    if (missing & SET_BIG) {
        s.must(bench, set_big_fill(), ":10000\r\n");
    }
    if (missing & ZSET) {
        s.must(bench, zset_fill(), ":10000\r\n");
    }
    s.built |= missing;
    return s;
}

// 100,000 keys holding integers (INCR).
Store &counters_store(const char *bench)
{
    static std::unique_ptr<Store> s;
    if (!s) {
        s = std::make_unique<Store>();
        for (uint32_t i = 0; i < kKeys; i++) {
            s->must(bench, {"SET", key(i), std::to_string(i)}, "+OK\r\n");
        }
    }
    return *s;
}

// 100,000 keys with 100-byte values, each with a TTL of an hour.
Store &ttl_store(const char *bench)
{
    static std::unique_ptr<Store> s;
    if (!s) {
        s = std::make_unique<Store>();
        for (uint32_t i = 0; i < kKeys; i++) {
            s->must(bench, {"SET", key(i), value(i, kValLen), "EX", "3600"}, "+OK\r\n");
        }
    }
    return *s;
}

// 100,000 keys, each a hash of 4 fields with 32-byte values (compact).
Store &small_hashes_store(const char *bench)
{
    static std::unique_ptr<Store> s;
    if (!s) {
        s = std::make_unique<Store>();
        for (uint32_t i = 0; i < kKeys; i++) {
            Argv a = {"HSET", key(i)};
            for (uint32_t f = 0; f < kSmallFields; f++) {
                a.push_back(field(f));
                a.push_back(value(3000000 + i * kSmallFields + f, kSmallValLen));
            }
            s->must(bench, a, ":4\r\n");
        }
    }
    return *s;
}

// The timed loop: apply ops[0], ops[1], ... (cycling), each reply checked
// against want. Every `every` iterations (0: never) `between` runs with
// the timer paused: it keeps a collection at its size (pops refill, pushes
// trim), so what is measured is the steady state.
void run(benchmark::State &state, const char *bench, Store &s, const Ops &ops, const char *want, uint64_t every = 0,
         const std::function<void()> &between = {})
{
    const size_t want_len = std::strlen(want);
    const size_t n = ops.size();
    size_t i = 0;
    uint64_t since = 0;
    if (n == 0) {
        die("%s: no operations", bench);
    }
    for (auto _ : state) {
        if (every && since == every) {
            state.PauseTiming();
            between();
            since = 0;
            state.ResumeTiming();
        }
        s.apply(bench, ops.op(i), ops.len(i), want, want_len);
        if (++i == n) {
            i = 0;
        }
        since++;
    }
    state.SetItemsProcessed((int64_t)state.iterations());
    state.counters["keys"] = (double)s.keys();
}

// The ops of a benchmark, built once (the function runs several times).
template <class F> const Ops &cached(std::unique_ptr<Ops> &slot, uint32_t count, uint64_t seed, F make)
{
    if (!slot) {
        slot = std::make_unique<Ops>();
        Rng r(seed);
        for (uint32_t i = 0; i < count; i++) {
            make(*slot, r, i);
        }
    }
    return *slot;
}

#define OPS(count, seed, ...)                                          \
    static std::unique_ptr<Ops> ops_slot;                               \
    const Ops &ops = cached(ops_slot, (count), (seed), [&](Ops &o, Rng &r, uint32_t i) { \
        (void)r;                                                        \
        (void)i;                                                        \
        __VA_ARGS__;                                                    \
    })

// ---------------------------------------------------------------- strings

void BM_Set(benchmark::State &state, const char *bench)
{
    Store &s = strings_store(bench);
    OPS(kOpsDefault, 1, o.add({"SET", key(r.below(kKeys)), value(r.next(), kValLen)}));
    run(state, bench, s, ops, "+OK\r\n");
}

void BM_GetHit(benchmark::State &state, const char *bench)
{
    Store &s = strings_store(bench);
    OPS(kOpsDefault, 2, o.add({"GET", key(r.below(kKeys))}));
    run(state, bench, s, ops, "$100\r\n");
}

void BM_Incr(benchmark::State &state, const char *bench)
{
    Store &s = counters_store(bench);
    OPS(kOpsDefault, 3, o.add({"INCR", key(r.below(kKeys))}));
    run(state, bench, s, ops, ":");
}

void BM_Mset10(benchmark::State &state, const char *bench)
{
    Store &s = strings_store(bench);
    OPS(kOpsMulti, 4, {
        Argv a = {"MSET"};
        for (int k = 0; k < 10; k++) {
            a.push_back(key(r.below(kKeys)));
            a.push_back(value(r.next(), kValLen));
        }
        o.add(a);
    });
    run(state, bench, s, ops, "+OK\r\n");
}

// MULTI, 5 x SET, EXEC as the RESP front end sends it: one TXN operation.
void BM_Txn5Set(benchmark::State &state, const char *bench)
{
    Store &s = strings_store(bench);
    OPS(kOpsMulti, 5, {
        std::vector<Argv> cmds;
        for (int k = 0; k < 5; k++) {
            cmds.push_back({"SET", key(r.below(kKeys)), value(r.next(), kValLen)});
        }
        o.add_txn(cmds);
    });
    run(state, bench, s, ops, "*5\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n");
}

// ---------------------------------------------------------------- expiry

void BM_Expire(benchmark::State &state, const char *bench)
{
    Store &s = ttl_store(bench);
    OPS(kOpsDefault, 6, o.add({"EXPIRE", key(r.below(kKeys)), "3600"}));
    run(state, bench, s, ops, ":1\r\n");
}

void BM_Ttl(benchmark::State &state, const char *bench)
{
    Store &s = ttl_store(bench);
    OPS(kOpsDefault, 7, o.add({"TTL", key(r.below(kKeys))}));
    run(state, bench, s, ops, ":3600\r\n"); // the clock does not move
}

// ---------------------------------------------------------------- hashes

// Overwrite a field (":0": it existed) / read one (a hit).
void BM_HsetBig(benchmark::State &state, const char *bench)
{
    Store &s = with(HASH_BIG, bench);
    OPS(kOpsDefault, 8, o.add({"HSET", kHashBig, field(r.below(kHashFields)), value(r.next(), kValLen)}));
    run(state, bench, s, ops, ":0\r\n");
}

void BM_HgetBig(benchmark::State &state, const char *bench)
{
    Store &s = with(HASH_BIG, bench);
    OPS(kOpsDefault, 9, o.add({"HGET", kHashBig, field(r.below(kHashFields))}));
    run(state, bench, s, ops, "$100\r\n");
}

void BM_HsetSmall(benchmark::State &state, const char *bench)
{
    Store &s = small_hashes_store(bench);
    OPS(kOpsDefault, 10,
        o.add({"HSET", key(r.below(kKeys)), field(r.below(kSmallFields)), value(r.next(), kSmallValLen)}));
    run(state, bench, s, ops, ":0\r\n");
}

void BM_HgetSmall(benchmark::State &state, const char *bench)
{
    Store &s = small_hashes_store(bench);
    OPS(kOpsDefault, 11, o.add({"HGET", key(r.below(kKeys)), field(r.below(kSmallFields))}));
    run(state, bench, s, ops, "$32\r\n");
}

// ---------------------------------------------------------------- lists

// The list back at its 1,000 elements (untimed, at the start of each run).
void list_reset(Store &s, const char *bench)
{
    s.must(bench, {"DEL", kList}, ":");
    s.must(bench, list_fill("RPUSH", 0, kListLen), ":1000\r\n");
}

// Pushes: the list grows from 1,000 to 2,000, then is trimmed back.
void push_bench(benchmark::State &state, const char *bench, const char *cmd, uint64_t seed)
{
    Store &s = with(LIST, bench);
    list_reset(s, bench);
    static std::unique_ptr<Ops> lp, rp;
    const Ops &ops = cached(std::strcmp(cmd, "LPUSH") == 0 ? lp : rp, kOpsDefault, seed,
                            [&](Ops &o, Rng &r, uint32_t) { o.add({cmd, kList, value(r.next(), kValLen)}); });
    bool left = std::strcmp(cmd, "LPUSH") == 0;
    run(state, bench, s, ops, ":", kListLen, [&] {
        s.must(bench, {"LTRIM", kList, left ? "0" : "-1000", left ? "999" : "-1"}, "+OK\r\n");
    });
}

void BM_Lpush(benchmark::State &state, const char *bench) { push_bench(state, bench, "LPUSH", 12); }
void BM_Rpush(benchmark::State &state, const char *bench) { push_bench(state, bench, "RPUSH", 13); }

// Pops: the list shrinks from 1,000 to 500, then is refilled at the other end.
void pop_bench(benchmark::State &state, const char *bench, const char *cmd)
{
    Store &s = with(LIST, bench);
    list_reset(s, bench);
    bool left = std::strcmp(cmd, "LPOP") == 0;
    Ops ops;
    ops.add({cmd, kList});
    const uint32_t half = kListLen / 2;
    Ops refill;
    refill.add(list_fill(left ? "RPUSH" : "LPUSH", 0, half));
    run(state, bench, s, ops, "$100\r\n", half, [&] { s.must(bench, refill, 0, ":1000\r\n"); });
}

void BM_Lpop(benchmark::State &state, const char *bench) { pop_bench(state, bench, "LPOP"); }
void BM_Rpop(benchmark::State &state, const char *bench) { pop_bench(state, bench, "RPOP"); }

void BM_Lrange100(benchmark::State &state, const char *bench)
{
    Store &s = with(LIST, bench);
    list_reset(s, bench);
    Ops ops;
    ops.add({"LRANGE", kList, "0", "99"});
    run(state, bench, s, ops, "*100\r\n$100\r\n");
}

// The store at this build's feature level, as a cluster of this build
// runs (commands of later levels exist only from theirs).
void build_level(Store &s, const char *bench)
{
    char level[8], want[16];
    std::snprintf(level, sizeof level, "%d", RABIA_KV_FEATURE_LEVEL);
    std::snprintf(want, sizeof want, ":%d\r\n", RABIA_KV_FEATURE_LEVEL);
    s.must(bench, {"FEATURELEVEL", level}, want);
}

// SORT (feature level 5) of the 1,000 values of 100 bytes, ALPHA, the first
// 10: every value copied and the whole list sorted (Redis sorts it all too
// without a BY), and of the intset's 100 integers as numbers.

void BM_SortAlpha(benchmark::State &state, const char *bench)
{
    Store &s = with(LIST, bench);
    build_level(s, bench);
    list_reset(s, bench);
    Ops ops;
    ops.add({"SORT", kList, "ALPHA", "LIMIT", "0", "10"});
    run(state, bench, s, ops, "*10\r\n$100\r\n");
}

void BM_SortIntset(benchmark::State &state, const char *bench)
{
    Store &s = with(INTSET, bench);
    build_level(s, bench);
    Ops ops;
    ops.add({"SORT", kIntset, "DESC"});
    run(state, bench, s, ops, "*100\r\n$2\r\n99\r\n");
}

// ---------------------------------------------------------------- sets

// SADD of a member already there (":0": the set stays at its size).
void BM_SaddIntset(benchmark::State &state, const char *bench)
{
    Store &s = with(INTSET, bench);
    OPS(kOpsDefault, 14, o.add({"SADD", kIntset, std::to_string(r.below(kIntsetLen))}));
    run(state, bench, s, ops, ":0\r\n");
}

void BM_SismemberIntset(benchmark::State &state, const char *bench)
{
    Store &s = with(INTSET, bench);
    OPS(kOpsDefault, 15, o.add({"SISMEMBER", kIntset, std::to_string(r.below(kIntsetLen))}));
    run(state, bench, s, ops, ":1\r\n");
}

void BM_SmembersIntset(benchmark::State &state, const char *bench)
{
    Store &s = with(INTSET, bench);
    Ops ops;
    ops.add({"SMEMBERS", kIntset});
    run(state, bench, s, ops, "*100\r\n$");
}

void BM_SaddBig(benchmark::State &state, const char *bench)
{
    Store &s = with(SET_BIG, bench);
    s.must(bench, set_big_fill(), ":"); // back to 10,000 members (SPOP may have run)
    OPS(kOpsDefault, 16, o.add({"SADD", kSetBig, member(r.below(kSetLen))}));
    run(state, bench, s, ops, ":0\r\n");
}

void BM_SismemberBig(benchmark::State &state, const char *bench)
{
    Store &s = with(SET_BIG, bench);
    s.must(bench, set_big_fill(), ":");
    OPS(kOpsDefault, 17, o.add({"SISMEMBER", kSetBig, member(r.below(kSetLen))}));
    run(state, bench, s, ops, ":1\r\n");
}

void BM_SmembersBig(benchmark::State &state, const char *bench)
{
    Store &s = with(SET_BIG, bench);
    s.must(bench, set_big_fill(), ":");
    Ops ops;
    ops.add({"SMEMBERS", kSetBig});
    run(state, bench, s, ops, "*10000\r\n$16\r\n");
}

// SPOP: 10,000 members down to 5,000, then every member added back.
void BM_SpopBig(benchmark::State &state, const char *bench)
{
    Store &s = with(SET_BIG, bench);
    static std::unique_ptr<Ops> fill;
    const Ops &refill = cached(fill, 1, 0, [](Ops &o, Rng &, uint32_t) { o.add(set_big_fill()); });
    s.must(bench, refill, 0, ":");
    Ops ops;
    ops.add({"SPOP", kSetBig});
    run(state, bench, s, ops, "$16\r\n", kSetLen / 2,
        [&] { s.must(bench, refill, 0, ":5000\r\n"); });
}

// ---------------------------------------------------------------- sorted sets

// The sorted set back at its 10,000 members and their first scores.
const Ops &zset_refill()
{
    static std::unique_ptr<Ops> fill;
    return cached(fill, 1, 0, [](Ops &o, Rng &, uint32_t) { o.add(zset_fill()); });
}

Store &zset_store(const char *bench)
{
    Store &s = with(ZSET, bench);
    const Ops &refill = zset_refill();
    s.must(bench, refill, 0, ":");
    return s;
}

// A new score for a member already there (":0": none added).
void BM_Zadd(benchmark::State &state, const char *bench)
{
    Store &s = zset_store(bench);
    OPS(kOpsDefault, 18, o.add({"ZADD", kZset, score(r.next()), member(r.below(kZsetLen))}));
    run(state, bench, s, ops, ":0\r\n");
}

void BM_Zscore(benchmark::State &state, const char *bench)
{
    Store &s = zset_store(bench);
    OPS(kOpsDefault, 19, o.add({"ZSCORE", kZset, member(r.below(kZsetLen))}));
    run(state, bench, s, ops, "$7\r\n");
}

void BM_Zrange100(benchmark::State &state, const char *bench)
{
    Store &s = zset_store(bench);
    Ops ops;
    ops.add({"ZRANGE", kZset, "0", "99", "WITHSCORES"});
    run(state, bench, s, ops, "*200\r\n$16\r\n");
}

void BM_Zrank(benchmark::State &state, const char *bench)
{
    Store &s = zset_store(bench);
    OPS(kOpsDefault, 20, o.add({"ZRANK", kZset, member(r.below(kZsetLen))}));
    run(state, bench, s, ops, ":");
}

// ZPOPMIN: 10,000 members down to 5,000, then every member added back.
void BM_Zpopmin(benchmark::State &state, const char *bench)
{
    Store &s = zset_store(bench);
    const Ops &refill = zset_refill();
    Ops ops;
    ops.add({"ZPOPMIN", kZset});
    run(state, bench, s, ops, "*2\r\n$16\r\n", kZsetLen / 2,
        [&] { s.must(bench, refill, 0, ":5000\r\n"); });
}

// ---------------------------------------------------------------- geo

// 10,000 places spread over 3 x 2 degrees of Sicily (about 265 x 220 km:
// 0.17 per km2, some 50 within 10 km of a point inside), at this build's
// feature level (the geo commands are level 5). Searches are centred in the
// inner part, so that a 10 km radius always holds more than 10.
const char *const kGeo = "geo:big";
constexpr uint32_t kGeoLen = 10000;
// A coordinate in [lo, lo + span), 6 decimals.
std::string geo_lon(Rng &r, double lo, double span)
{
    char b[32];
    std::snprintf(b, sizeof b, "%.6f", lo + span * (double)r.below(1000000) / 1e6);
    return b;
}

Argv geo_fill()
{
    Argv a = {"GEOADD", kGeo};
    Rng r(8000000);
    for (uint32_t i = 0; i < kGeoLen; i++) {
        a.push_back(geo_lon(r, 13.0, 3.0));
        a.push_back(geo_lon(r, 36.5, 2.0));
        a.push_back(member(i));
    }
    return a;
}

Store &geo_store(const char *bench)
{
    Store &s = strings_store(bench);
    static bool filled;
    if (!filled) {
        build_level(s, bench);
        s.must(bench, geo_fill(), ":10000\r\n");
        filled = true;
    }
    return s;
}

// A new place for a member already there (":0": none added).
void BM_Geoadd(benchmark::State &state, const char *bench)
{
    Store &s = geo_store(bench);
    OPS(kOpsDefault, 30, o.add({"GEOADD", kGeo, geo_lon(r, 13.0, 3.0), geo_lon(r, 36.5, 2.0), member(r.below(kGeoLen))}));
    run(state, bench, s, ops, ":0\r\n");
}

void BM_Geopos(benchmark::State &state, const char *bench)
{
    Store &s = geo_store(bench);
    OPS(kOpsDefault, 31, o.add({"GEOPOS", kGeo, member(r.below(kGeoLen))}));
    run(state, bench, s, ops, "*1\r\n*2\r\n$");
}

// The 10 nearest within 10 km: nine cells read, ~50 distances, Redis's
// partial sort.
void BM_GeosearchNearest10(benchmark::State &state, const char *bench)
{
    Store &s = geo_store(bench);
    OPS(kOpsDefault, 32, o.add({"GEOSEARCH", kGeo, "FROMLONLAT", geo_lon(r, 13.5, 2.0), geo_lon(r, 37.0, 1.0),
                               "BYRADIUS", "10", "km", "ASC", "COUNT", "10", "WITHDIST"}));
    run(state, bench, s, ops, "*10\r\n*2\r\n$16\r\nmember:");
}

// Everything in a 20 x 20 km box, unsorted (~70 members).
void BM_GeosearchBox(benchmark::State &state, const char *bench)
{
    Store &s = geo_store(bench);
    OPS(kOpsDefault, 33, o.add({"GEOSEARCH", kGeo, "FROMLONLAT", geo_lon(r, 13.5, 2.0), geo_lon(r, 37.0, 1.0),
                               "BYBOX", "20", "20", "km"}));
    run(state, bench, s, ops, "*");
}

// ---------------------------------------------------------------- scripts

// EVALSHA of a loaded script: the floor (a fresh Lua state per run,
// kv/README.md "Scripts"), and a GET through redis.call.
void script_loaded(Store &s, const char *bench, const char *body)
{
    // level 3 counts the work done in C (kv/README.md "Scripts")
    build_level(s, bench);
    Ops load;
    load.add({"SCRIPT", "LOAD", body});
    s.must(bench, load, 0, "$40\r\n");
}

void BM_EvalshaReturn1(benchmark::State &state, const char *bench)
{
    Store &s = strings_store(bench);
    script_loaded(s, bench, "return 1");
    Ops ops;
    ops.add({"EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"});
    run(state, bench, s, ops, ":1\r\n");
}

void BM_EvalshaGet(benchmark::State &state, const char *bench)
{
    Store &s = strings_store(bench);
    script_loaded(s, bench, "return redis.call('GET', KEYS[1])");
    OPS(kOpsDefault, 21, o.add({"EVALSHA", "d3c21d0c2b9ca22f82737626a27bcaf5d288f99f", "1", key(r.below(kKeys))}));
    run(state, bench, s, ops, "$100\r\n");
}

// Each function gets its own name, for the messages of a failed check.
using BenchFn = void (*)(benchmark::State &, const char *);
const struct {
    const char *name;
    BenchFn fn;
} kBenchmarks[] = {
    {"KV/string/SET", BM_Set},
    {"KV/string/GET_hit", BM_GetHit},
    {"KV/string/INCR", BM_Incr},
    {"KV/string/MSET_10keys", BM_Mset10},
    {"KV/txn/TXN_5xSET", BM_Txn5Set},
    {"KV/keys/EXPIRE", BM_Expire},
    {"KV/keys/TTL", BM_Ttl},
    {"KV/hash/HSET/fields:100", BM_HsetBig},
    {"KV/hash/HGET/fields:100", BM_HgetBig},
    {"KV/hash/HSET/small_x100k", BM_HsetSmall},
    {"KV/hash/HGET/small_x100k", BM_HgetSmall},
    {"KV/list/LPUSH/len:1000", BM_Lpush},
    {"KV/list/RPUSH/len:1000", BM_Rpush},
    {"KV/list/LPOP/len:1000", BM_Lpop},
    {"KV/list/RPOP/len:1000", BM_Rpop},
    {"KV/list/LRANGE_0_99/len:1000", BM_Lrange100},
    {"KV/set/SADD/intset:100", BM_SaddIntset},
    {"KV/set/SISMEMBER/intset:100", BM_SismemberIntset},
    {"KV/set/SMEMBERS/intset:100", BM_SmembersIntset},
    {"KV/set/SADD/members:10000", BM_SaddBig},
    {"KV/set/SISMEMBER/members:10000", BM_SismemberBig},
    {"KV/set/SMEMBERS/members:10000", BM_SmembersBig},
    {"KV/set/SPOP/members:10000", BM_SpopBig},
    {"KV/zset/ZADD/members:10000", BM_Zadd},
    {"KV/zset/ZSCORE/members:10000", BM_Zscore},
    {"KV/zset/ZRANGE_0_99_WITHSCORES/members:10000", BM_Zrange100},
    {"KV/zset/ZRANK/members:10000", BM_Zrank},
    {"KV/zset/ZPOPMIN/members:10000", BM_Zpopmin},
    {"KV/sort/SORT_ALPHA_LIMIT_0_10/len:1000", BM_SortAlpha},
    {"KV/sort/SORT_DESC/intset:100", BM_SortIntset},
    {"KV/geo/GEOADD/members:10000", BM_Geoadd},
    {"KV/geo/GEOPOS/members:10000", BM_Geopos},
    {"KV/geo/GEOSEARCH_10km_COUNT_10/members:10000", BM_GeosearchNearest10},
    {"KV/geo/GEOSEARCH_BYBOX_20km/members:10000", BM_GeosearchBox},
    {"KV/script/EVALSHA_return_1", BM_EvalshaReturn1},
    {"KV/script/EVALSHA_GET", BM_EvalshaGet},
};

[[maybe_unused]] const int registered = [] {
    for (const auto &b : kBenchmarks) {
        benchmark::RegisterBenchmark(b.name, b.fn, b.name);
    }
    return 0;
}();

} // namespace
