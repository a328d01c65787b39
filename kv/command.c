/* kv/command.c: the command table, dispatch, transactions (TXN, TXNW,
 * WATCHVER), databases (@DB) and the rabia_sm_ops of the store. */
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#include "internal.h"
#include "le.h"

/* Sorted by name (checked once at create): lookups are a binary search.
 * Arities, flags and key positions are Redis 7.0's COMMAND INFO. */
static const struct kv_cmd commands[] = {
    {"append", 3, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_append},
    {"bitcount", -2, KV_F_READONLY | KV_F_SCANS, 1, 1, 1, kv_cmd_bitcount},
    {"bitfield", -2, KV_F_WRITE | KV_F_DENYOOM, 1, 1, 1, kv_cmd_bitfield},
    {"bitfield_ro", -2, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_bitfield_ro},
    {"bitop", -4, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 2, -1, 1, kv_cmd_bitop},
    {"bitpos", -3, KV_F_READONLY | KV_F_SCANS, 1, 1, 1, kv_cmd_bitpos},
    {"blmove", 6, KV_F_WRITE | KV_F_DENYOOM | KV_F_BLOCKING | KV_F_NOSCRIPT, 1, 2, 1, kv_cmd_blmove},
    {"blmpop", -5, KV_F_WRITE | KV_F_BLOCKING, 0, 0, 0, kv_cmd_blmpop},
    {"blpop", -3, KV_F_WRITE | KV_F_BLOCKING | KV_F_NOSCRIPT, 1, -2, 1, kv_cmd_blpop},
    {"brpop", -3, KV_F_WRITE | KV_F_BLOCKING | KV_F_NOSCRIPT, 1, -2, 1, kv_cmd_brpop},
    {"brpoplpush", 4, KV_F_WRITE | KV_F_DENYOOM | KV_F_BLOCKING | KV_F_NOSCRIPT, 1, 2, 1, kv_cmd_brpoplpush},
    {"bzmpop", -5, KV_F_WRITE | KV_F_BLOCKING, 0, 0, 0, kv_cmd_bzmpop},
    {"bzpopmax", -3, KV_F_WRITE | KV_F_BLOCKING | KV_F_NOSCRIPT | KV_F_FAST, 1, -2, 1, kv_cmd_bzpopmax},
    {"bzpopmin", -3, KV_F_WRITE | KV_F_BLOCKING | KV_F_NOSCRIPT | KV_F_FAST, 1, -2, 1, kv_cmd_bzpopmin},
    {"copy", -3, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 1, 2, 1, kv_cmd_copy},
    {"dbsize", 1, KV_F_READONLY | KV_F_FAST, 0, 0, 0, kv_cmd_dbsize},
    {"decr", 2, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_decr},
    {"decrby", 3, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_decrby},
    {"del", -2, KV_F_WRITE | KV_F_SCANS, 1, -1, 1, kv_cmd_del},
    {"echo", 2, KV_F_FAST, 0, 0, 0, kv_cmd_echo},
    {"eval", -3, KV_F_NOSCRIPT, 0, 0, 0, kv_cmd_eval},
    {"eval_ro", -3, KV_F_NOSCRIPT | KV_F_READONLY, 0, 0, 0, kv_cmd_eval_ro},
    {"evalsha", -3, KV_F_NOSCRIPT, 0, 0, 0, kv_cmd_evalsha},
    {"evalsha_ro", -3, KV_F_NOSCRIPT | KV_F_READONLY, 0, 0, 0, kv_cmd_evalsha_ro},
    {"exists", -2, KV_F_READONLY | KV_F_FAST, 1, -1, 1, kv_cmd_exists},
    {"expire", -3, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_expire},
    {"expireat", -3, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_expireat},
    {"expiretime", 2, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_expiretime},
    {"featurelevel", 2, KV_F_WRITE | KV_F_INTERNAL | KV_F_NOSCRIPT, 0, 0, 0, kv_cmd_featurelevel},
    {"features", -1, KV_F_INTERNAL | KV_F_NOSCRIPT, 0, 0, 0, kv_cmd_features},
    {"flushall", -1, KV_F_WRITE, 0, 0, 0, kv_cmd_flushall},
    {"flushdb", -1, KV_F_WRITE, 0, 0, 0, kv_cmd_flushdb},
    /* geo (t_geo.c): a search reads up to nine ranges of its set (KV_F_SCANS) */
    {"geoadd", -5, KV_F_WRITE | KV_F_DENYOOM, 1, 1, 1, kv_cmd_geoadd},
    {"geodist", -4, KV_F_READONLY, 1, 1, 1, kv_cmd_geodist},
    {"geohash", -2, KV_F_READONLY, 1, 1, 1, kv_cmd_geohash},
    {"geopos", -2, KV_F_READONLY, 1, 1, 1, kv_cmd_geopos},
    {"georadius", -6, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 1, 1, 1, kv_cmd_georadius},
    {"georadius_ro", -6, KV_F_READONLY | KV_F_SCANS, 1, 1, 1, kv_cmd_georadius_ro},
    {"georadiusbymember", -5, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 1, 1, 1, kv_cmd_georadiusbymember},
    {"georadiusbymember_ro", -5, KV_F_READONLY | KV_F_SCANS, 1, 1, 1, kv_cmd_georadiusbymember_ro},
    {"geosearch", -7, KV_F_READONLY | KV_F_SCANS, 1, 1, 1, kv_cmd_geosearch},
    {"geosearchstore", -8, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 1, 2, 1, kv_cmd_geosearchstore},
    {"get", 2, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_get},
    {"getbit", 3, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_getbit},
    {"getdel", 2, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_getdel},
    {"getex", -2, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_getex},
    {"getrange", 4, KV_F_READONLY, 1, 1, 1, kv_cmd_getrange},
    {"getset", 3, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_getset},
    {"hdel", -3, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_hdel},
    {"hexists", 3, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_hexists},
    {"hget", 3, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_hget},
    {"hgetall", 2, KV_F_READONLY, 1, 1, 1, kv_cmd_hgetall},
    {"hincrby", 4, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_hincrby},
    {"hincrbyfloat", 4, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_hincrbyfloat},
    {"hkeys", 2, KV_F_READONLY, 1, 1, 1, kv_cmd_hkeys},
    {"hlen", 2, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_hlen},
    {"hmget", -3, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_hmget},
    {"hmset", -4, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_hmset},
    {"hrandfield", -2, KV_F_READONLY, 1, 1, 1, kv_cmd_hrandfield},
    {"hscan", -3, KV_F_READONLY | KV_F_SCAN_COUNT, 1, 1, 1, kv_cmd_hscan},
    {"hset", -4, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_hset},
    {"hsetnx", 4, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_hsetnx},
    {"hstrlen", 3, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_hstrlen},
    {"hvals", 2, KV_F_READONLY, 1, 1, 1, kv_cmd_hvals},
    {"incr", 2, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_incr},
    {"incrby", 3, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_incrby},
    {"incrbyfloat", 3, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_incrbyfloat},
    {"keys", 2, KV_F_READONLY | KV_F_SCANS_DB, 0, 0, 0, kv_cmd_keys},
    {"lcs", -3, KV_F_READONLY | KV_F_LCS, 1, 2, 1, kv_cmd_lcs},
    {"lindex", 3, KV_F_READONLY, 1, 1, 1, kv_cmd_lindex},
    {"linsert", 5, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 1, 1, 1, kv_cmd_linsert},
    {"llen", 2, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_llen},
    {"lmove", 5, KV_F_WRITE | KV_F_DENYOOM, 1, 2, 1, kv_cmd_lmove},
    {"lmpop", -4, KV_F_WRITE, 0, 0, 0, kv_cmd_lmpop},
    {"lpop", -2, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_lpop},
    {"lpos", -3, KV_F_READONLY | KV_F_SCANS, 1, 1, 1, kv_cmd_lpos},
    {"lpush", -3, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_lpush},
    {"lpushx", -3, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_lpushx},
    {"lrange", 4, KV_F_READONLY, 1, 1, 1, kv_cmd_lrange},
    {"lrem", 4, KV_F_WRITE | KV_F_SCANS, 1, 1, 1, kv_cmd_lrem},
    {"lset", 4, KV_F_WRITE | KV_F_DENYOOM, 1, 1, 1, kv_cmd_lset},
    {"ltrim", 4, KV_F_WRITE | KV_F_SCANS, 1, 1, 1, kv_cmd_ltrim},
    {"mget", -2, KV_F_READONLY | KV_F_FAST, 1, -1, 1, kv_cmd_mget},
    {"move", 3, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_move},
    {"mset", -3, KV_F_WRITE | KV_F_DENYOOM, 1, -1, 2, kv_cmd_mset},
    {"msetnx", -3, KV_F_WRITE | KV_F_DENYOOM, 1, -1, 2, kv_cmd_msetnx},
    {"persist", 2, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_persist},
    {"pexpire", -3, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_pexpire},
    {"pexpireat", -3, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_pexpireat},
    {"pexpiretime", 2, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_pexpiretime},
    {"pfadd", -2, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_pfadd},
    {"pfcount", -2, KV_F_READONLY | KV_F_SCANS, 1, -1, 1, kv_cmd_pfcount},
    {"pfmerge", -2, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 1, -1, 1, kv_cmd_pfmerge},
    {"ping", -1, KV_F_FAST, 0, 0, 0, kv_cmd_ping},
    {"psetex", 4, KV_F_WRITE | KV_F_DENYOOM, 1, 1, 1, kv_cmd_psetex},
    {"pttl", 2, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_pttl},
    {"publish", 3, KV_F_FAST | KV_F_PUBSUB, 0, 0, 0, kv_cmd_publish},
    {"randomkey", 1, KV_F_READONLY, 0, 0, 0, kv_cmd_randomkey},
    {"rename", 3, KV_F_WRITE, 1, 2, 1, kv_cmd_rename},
    {"renamenx", 3, KV_F_WRITE | KV_F_FAST, 1, 2, 1, kv_cmd_renamenx},
    {"rpop", -2, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_rpop},
    {"rpoplpush", 3, KV_F_WRITE | KV_F_DENYOOM, 1, 2, 1, kv_cmd_rpoplpush},
    {"rpush", -3, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_rpush},
    {"rpushx", -3, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_rpushx},
    {"sadd", -3, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_sadd},
    {"scan", -2, KV_F_READONLY | KV_F_SCAN_COUNT, 0, 0, 0, kv_cmd_scan},
    {"scard", 2, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_scard},
    {"script", -2, KV_F_NOSCRIPT, 0, 0, 0, kv_cmd_script},
    {"sdiff", -2, KV_F_READONLY | KV_F_SCANS, 1, -1, 1, kv_cmd_sdiff},
    {"sdiffstore", -3, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 1, -1, 1, kv_cmd_sdiffstore},
    {"set", -3, KV_F_WRITE | KV_F_DENYOOM, 1, 1, 1, kv_cmd_set},
    {"setbit", 4, KV_F_WRITE | KV_F_DENYOOM, 1, 1, 1, kv_cmd_setbit},
    {"setex", 4, KV_F_WRITE | KV_F_DENYOOM, 1, 1, 1, kv_cmd_setex},
    {"setnx", 3, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_setnx},
    {"setrange", 4, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 1, 1, 1, kv_cmd_setrange},
    {"sinter", -2, KV_F_READONLY | KV_F_SCANS, 1, -1, 1, kv_cmd_sinter},
    {"sintercard", -3, KV_F_READONLY | KV_F_SCANS, 0, 0, 0, kv_cmd_sintercard},
    {"sinterstore", -3, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 1, -1, 1, kv_cmd_sinterstore},
    {"sismember", 3, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_sismember},
    {"smembers", 2, KV_F_READONLY, 1, 1, 1, kv_cmd_smembers},
    {"smismember", -3, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_smismember},
    {"smove", 4, KV_F_WRITE | KV_F_FAST, 1, 2, 1, kv_cmd_smove},
    {"sort", -2, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 1, 1, 1, kv_cmd_sort},
    {"sort_ro", -2, KV_F_READONLY | KV_F_SCANS, 1, 1, 1, kv_cmd_sort_ro},
    {"spop", -2, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_spop},
    {"srandmember", -2, KV_F_READONLY, 1, 1, 1, kv_cmd_srandmember},
    {"srem", -3, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_srem},
    {"sscan", -3, KV_F_READONLY | KV_F_SCAN_COUNT, 1, 1, 1, kv_cmd_sscan},
    {"strlen", 2, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_strlen},
    {"substr", 4, KV_F_READONLY, 1, 1, 1, kv_cmd_getrange}, /* GETRANGE's old name, as in Redis */
    {"sunion", -2, KV_F_READONLY | KV_F_SCANS, 1, -1, 1, kv_cmd_sunion},
    {"sunionstore", -3, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 1, -1, 1, kv_cmd_sunionstore},
    {"sweep", -1, KV_F_WRITE | KV_F_INTERNAL | KV_F_NOSCRIPT, 0, 0, 0, kv_cmd_sweep},
    {"time", 1, KV_F_FAST, 0, 0, 0, kv_cmd_time},
    {"touch", -2, KV_F_READONLY | KV_F_FAST, 1, -1, 1, kv_cmd_touch},
    {"ttl", 2, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_ttl},
    {"type", 2, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_type},
    {"unlink", -2, KV_F_WRITE | KV_F_FAST | KV_F_SCANS, 1, -1, 1, kv_cmd_unlink},
    {"unwatch", 1, KV_F_FAST | KV_F_NOSCRIPT, 0, 0, 0, kv_cmd_unwatch},
    {"zadd", -4, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_zadd},
    {"zcard", 2, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_zcard},
    {"zcount", 4, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_zcount},
    {"zdiff", -3, KV_F_READONLY | KV_F_SCANS, 0, 0, 0, kv_cmd_zdiff},
    {"zdiffstore", -4, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 1, 1, 1, kv_cmd_zdiffstore},
    {"zincrby", 4, KV_F_WRITE | KV_F_DENYOOM | KV_F_FAST, 1, 1, 1, kv_cmd_zincrby},
    {"zinter", -3, KV_F_READONLY | KV_F_SCANS, 0, 0, 0, kv_cmd_zinter},
    {"zintercard", -3, KV_F_READONLY | KV_F_SCANS, 0, 0, 0, kv_cmd_zintercard},
    {"zinterstore", -4, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 1, 1, 1, kv_cmd_zinterstore},
    {"zlexcount", 4, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_zlexcount},
    {"zmpop", -4, KV_F_WRITE, 0, 0, 0, kv_cmd_zmpop},
    {"zmscore", -3, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_zmscore},
    {"zpopmax", -2, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_zpopmax},
    {"zpopmin", -2, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_zpopmin},
    {"zrandmember", -2, KV_F_READONLY, 1, 1, 1, kv_cmd_zrandmember},
    {"zrange", -4, KV_F_READONLY | KV_F_LIMIT_WALKS, 1, 1, 1, kv_cmd_zrange},
    {"zrangebylex", -4, KV_F_READONLY | KV_F_LIMIT_WALKS, 1, 1, 1, kv_cmd_zrangebylex},
    {"zrangebyscore", -4, KV_F_READONLY | KV_F_LIMIT_WALKS, 1, 1, 1, kv_cmd_zrangebyscore},
    {"zrangestore", -5, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 1, 2, 1, kv_cmd_zrangestore},
    {"zrank", 3, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_zrank},
    {"zrem", -3, KV_F_WRITE | KV_F_FAST, 1, 1, 1, kv_cmd_zrem},
    {"zremrangebylex", 4, KV_F_WRITE | KV_F_SCANS, 1, 1, 1, kv_cmd_zremrangebylex},
    {"zremrangebyrank", 4, KV_F_WRITE | KV_F_SCANS, 1, 1, 1, kv_cmd_zremrangebyrank},
    {"zremrangebyscore", 4, KV_F_WRITE | KV_F_SCANS, 1, 1, 1, kv_cmd_zremrangebyscore},
    {"zrevrange", -4, KV_F_READONLY, 1, 1, 1, kv_cmd_zrevrange},
    {"zrevrangebylex", -4, KV_F_READONLY | KV_F_LIMIT_WALKS, 1, 1, 1, kv_cmd_zrevrangebylex},
    {"zrevrangebyscore", -4, KV_F_READONLY | KV_F_LIMIT_WALKS, 1, 1, 1, kv_cmd_zrevrangebyscore},
    {"zrevrank", 3, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_zrevrank},
    {"zscan", -3, KV_F_READONLY | KV_F_SCAN_COUNT, 1, 1, 1, kv_cmd_zscan},
    {"zscore", 3, KV_F_READONLY | KV_F_FAST, 1, 1, 1, kv_cmd_zscore},
    {"zunion", -3, KV_F_READONLY | KV_F_SCANS, 0, 0, 0, kv_cmd_zunion},
    {"zunionstore", -4, KV_F_WRITE | KV_F_DENYOOM | KV_F_SCANS, 1, 1, 1, kv_cmd_zunionstore},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* What each feature level added (features.c, kv/README.md "Feature
 * levels"): a command not listed is level 0, known to every build since
 * levels exist. A command added from now on goes here with the level of
 * the build that adds it (RABIA_KV_FEATURE_LEVEL, raised with it). */
static const struct {
    const char *name;
    uint8_t level;
} levels[] = {
    {"bitfield", 4},
    {"bitfield_ro", 4},
    {"blmpop", 1},
    {"brpoplpush", 9},
    {"bzmpop", 1},
    {"bzpopmax", 1},
    {"bzpopmin", 1},
    {"geoadd", 5},
    {"geodist", 5},
    {"geohash", 5},
    {"geopos", 5},
    {"georadius", 5},
    {"georadius_ro", 5},
    {"georadiusbymember", 5},
    {"georadiusbymember_ro", 5},
    {"geosearch", 5},
    {"geosearchstore", 5},
    {"lcs", 4},
    {"lmpop", 1},
    {"pfadd", 4},
    {"pfcount", 4},
    {"pfmerge", 4},
    {"sort", 5},
    {"sort_ro", 5},
    {"zmpop", 1},
    {"zremrangebylex", 9},
};
static uint8_t cmd_level[N_COMMANDS];
static const struct kv_cmd *lookup_ready(const uint8_t *p, size_t n);

/* Command lookup by name, case-insensitive: an open-addressing table of
 * the lowercase names, built once. A binary search over the ~150 names
 * with a case-folding compare was 6.6% of a proxy replica's instructions
 * under SET load (bench/callgrind.sh). */
#define NAME_MAX_LEN 31
#define HTAB 1024 /* power of two, over 4x the commands */
static int16_t htab[HTAB]; /* command index + 1, 0: empty */
static uint8_t name_len[N_COMMANDS]; /* strlen of each name: no strlen per probe */
static pthread_once_t htab_once = PTHREAD_ONCE_INIT;
static bool htab_ready; /* read with acquire: pthread_once is a call per lookup */

static uint32_t name_hash(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void htab_init(void)
{
    _Static_assert(N_COMMANDS < HTAB / 4, "grow HTAB");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        size_t n = strlen(commands[i].name);
        RABIA_ASSERT(n <= NAME_MAX_LEN);
        uint32_t h = name_hash((const uint8_t *)commands[i].name, n) & (HTAB - 1);
        while (htab[h])
            h = (h + 1) & (HTAB - 1);
        htab[h] = (int16_t)(i + 1);
        name_len[i] = (uint8_t)n;
    }
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        RABIA_ASSERT(levels[i].level >= 1 && levels[i].level <= RABIA_KV_FEATURE_LEVEL);
        const struct kv_cmd *c = lookup_ready((const uint8_t *)levels[i].name, strlen(levels[i].name));
        RABIA_ASSERT(c);
        cmd_level[c - commands] = levels[i].level;
    }
    __atomic_store_n(&htab_ready, true, __ATOMIC_RELEASE);
}

static const struct kv_cmd *lookup(const uint8_t *p, size_t n);

const struct kv_cmd *kv_lookup(const uint8_t *p, size_t n)
{
    return lookup(p, n);
}

static const struct kv_cmd *lookup(const uint8_t *p, size_t n)
{
    if (!__atomic_load_n(&htab_ready, __ATOMIC_ACQUIRE))
        pthread_once(&htab_once, htab_init);
    return lookup_ready(p, n);
}

unsigned kv_cmd_level(const struct kv_cmd *cmd)
{
    RABIA_ASSERT(cmd >= commands && cmd < commands + N_COMMANDS);
    if (!__atomic_load_n(&htab_ready, __ATOMIC_ACQUIRE))
        pthread_once(&htab_once, htab_init);
    return cmd_level[cmd - commands];
}

static const struct kv_cmd *lookup_ready(const uint8_t *p, size_t n)
{
    if (n == 0 || n > NAME_MAX_LEN)
        return NULL;
    uint8_t low[NAME_MAX_LEN];
    for (size_t i = 0; i < n; i++)
        low[i] = p[i] >= 'A' && p[i] <= 'Z' ? (uint8_t)(p[i] + ('a' - 'A')) : p[i];
    for (uint32_t h = name_hash(low, n) & (HTAB - 1), k = 0; htab[h] && k < HTAB; h = (h + 1) & (HTAB - 1), k++) {
        const struct kv_cmd *c = &commands[htab[h] - 1];
        if (name_len[htab[h] - 1] == n && !memcmp(c->name, low, n))
            return c;
    }
    return NULL;
}


unsigned rabia_kv_ncommands(void)
{
    return (unsigned)N_COMMANDS;
}

/* struct kv_cmd starts like struct rabia_kv_cmd_info but its key
 * positions are int8_t: build the public view once. */
static struct rabia_kv_cmd_info infos[N_COMMANDS];

static void infos_init(void)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        RABIA_ASSERT(i == 0 || strcmp(commands[i - 1].name, commands[i].name) < 0);
        infos[i] = (struct rabia_kv_cmd_info){commands[i].name, commands[i].arity, commands[i].flags,
                                              commands[i].first, commands[i].last, commands[i].step,
                                              kv_cmd_level(&commands[i])};
    }
}

static pthread_once_t infos_once = PTHREAD_ONCE_INIT;

const struct rabia_kv_cmd_info *rabia_kv_command(unsigned i)
{
    pthread_once(&infos_once, infos_init);
    return i < N_COMMANDS ? &infos[i] : NULL;
}

const struct rabia_kv_cmd_info *rabia_kv_lookup(const uint8_t *p, size_t n)
{
    pthread_once(&infos_once, infos_init);
    const struct kv_cmd *c = lookup(p, n);
    return c ? &infos[c - commands] : NULL;
}

/* ------------------------------------------------------------------ */
/* Decoding an argv operation. */

struct args {
    uint32_t argc;
    const uint8_t **v;
    uint32_t *len;
    const uint8_t *sv[16];
    uint32_t sl[16];
};

static void args_free(struct args *a)
{
    if (a->v != a->sv) {
        free(a->v);
        free(a->len);
    }
    a->v = a->sv;
    a->len = a->sl;
    a->argc = 0;
}

/* 0, 1 for a malformed argv, or -ENOMEM. Arguments point into op. */
static int args_parse(struct args *a, const uint8_t *op, size_t n)
{
    a->argc = 0;
    a->v = a->sv;
    a->len = a->sl;
    if (n < 4)
        return 1;
    uint32_t argc = rabia_le_get32(op);
    size_t at = 4;
    if (argc > (n - 4) / 4)
        return 1;
    if (argc > 16) {
        a->v = malloc(argc * sizeof *a->v);
        a->len = malloc(argc * sizeof *a->len);
        if (!a->v || !a->len) {
            free(a->v == a->sv ? NULL : a->v);
            free(a->len == a->sl ? NULL : a->len);
            a->v = a->sv;
            a->len = a->sl;
            return -ENOMEM;
        }
    }
    for (uint32_t i = 0; i < argc; i++) {
        if (n - at < 4)
            goto bad;
        uint32_t l = rabia_le_get32(op + at);
        at += 4;
        if (l > n - at)
            goto bad;
        a->v[i] = op + at;
        a->len[i] = l;
        at += l;
    }
    if (at != n)
        goto bad;
    a->argc = argc;
    return 0;
bad:
    args_free(a);
    return 1;
}

/* ------------------------------------------------------------------ */
/* Dispatch. */

int kv_reply_unknown(struct kv_ctx *c)
{
    /* Redis: ERR unknown command 'x', with args beginning with: 'a' 'b' */
    struct rabia_buf *o = c->out;
    int rc = rabia_buf_append(o, "-ERR unknown command '", 22);
    size_t n0 = c->len[0] > 128 ? 128 : c->len[0];
    size_t at = o->len;
    if (!rc)
        rc = rabia_buf_append(o, c->argv[0], n0);
    if (!rc)
        rc = rabia_buf_append(o, "', with args beginning with: ", 29);
    size_t args = 0; /* about 128 bytes of arguments, as Redis */
    for (uint32_t i = 1; !rc && i < c->argc && args < 128; i++) {
        size_t n = c->len[i] < 128 - args ? c->len[i] : 128 - args;
        if (!(rc = rabia_buf_put_u8(o, '\'')) && !(rc = rabia_buf_append(o, c->argv[i], n)))
            rc = rabia_buf_append(o, "' ", 2);
        args += n + 3;
    }
    for (size_t i = at; !rc && i < o->len; i++)
        if (o->data[i] == '\r' || o->data[i] == '\n')
            o->data[i] = ' ';
    return rc ? rc : rabia_buf_append(o, "\r\n", 2);
}

static bool arity_ok(int arity, uint32_t argc)
{
    return arity >= 0 ? argc == (uint32_t)arity : argc >= (uint32_t)-arity;
}

/* Whether cmd exists for store s: a command above the agreed feature level
 * does not exist yet (the answer is a build without it's, features.c); the
 * replicas' own operations only run as a whole operation (builds before
 * levels ran a nested SWEEP: so does a store at level 0). */
static bool cmd_runs(const struct kv_store *s, const struct kv_cmd *cmd, bool nested)
{
    if (cmd_level[cmd - commands] > s->feature_level) /* lookup built the table */
        return false;
    return !nested || !(cmd->flags & KV_F_INTERNAL) || (cmd->fn == kv_cmd_sweep && s->feature_level == 0);
}

static int reply_err(struct rabia_buf *out, const char *msg);

int kv_run(struct kv_store *s, uint32_t dbi, uint32_t argc, const uint8_t *const *argv,
           const uint32_t *len, struct rabia_buf *out, bool in_exec, bool nested)
{
    RABIA_ASSERT(dbi < KV_DBS);
    struct kv_ctx c = {.s = s, .db = &s->db[dbi], .dbi = dbi, .argc = argc, .argv = argv,
                       .len = len, .out = out, .in_exec = in_exec};
    if (argc == 0)
        return kv_reply_err(&c, "ERR empty command");
    const struct kv_cmd *cmd = lookup(argv[0], len[0]);
    if (!cmd || !cmd_runs(s, cmd, nested))
        return kv_reply_unknown(&c);
    if (!arity_ok(cmd->arity, argc))
        return kv_reply_arity(&c);
    size_t before = out->len;
    bool over = s->reply_over; /* a script's redis.call runs inside EVAL's command */
    s->reply_over = false;
    int rc = cmd->fn(&c);
    if (s->reply_over && rc >= 0) { /* (reply.c room) written whole: a transaction's may pass the bound a little */
        char msg[200];
        snprintf(msg, sizeof msg,
                 "ERR reply too large: more than %llu bytes, which every replica would build in memory: "
                 "ask for less per command (LRANGE, ZRANGE or SCAN in parts, fewer keys per MGET)",
                 (unsigned long long)KV_REPLY_MAX);
        out->len = before;
        rc = reply_err(out, msg);
    }
    s->reply_over = over;
    RABIA_ASSERT(rc < 0 || out->len > before); /* every command replies */
    return rc;
}

/* ------------------------------------------------------------------ */
/* Operations that are not Redis commands. */

struct kv_sm {
    struct kv_store *s;
    rabia_sm_event_fn ev_fn; /* kept here too: a restore replaces s */
    void *ev_arg;
    /* kv_prefetch's pipeline: the hashes of the last keys hinted */
    uint64_t pf_hash[16];
    uint8_t pf_ok[16];
    uint32_t pf_head;
};

static int run_op(struct kv_store *s, uint32_t dbi, const uint8_t *op, size_t n, struct rabia_buf *out,
                  bool in_exec, int depth);

static int reply_err(struct rabia_buf *out, const char *msg)
{
    int rc = rabia_buf_append(out, "-", 1);
    if (!rc)
        rc = rabia_buf_append(out, msg, strlen(msg));
    return rc ? rc : rabia_buf_append(out, "\r\n", 2);
}

static bool parse_db(const uint8_t *p, size_t n, uint32_t *dbi)
{
    int64_t v;
    if (!kv_parse_i64(p, n, &v) || v < 0 || v >= KV_DBS)
        return false;
    *dbi = (uint32_t)v;
    return true;
}

/* The commands of a transaction, from argument `first` on: each an
 * encoded argv op, run in order; SELECT inside changes the database of
 * those that follow (Redis runs a queued SELECT at EXEC). */
static int run_txn(struct kv_store *s, uint32_t dbi, const struct args *a, uint32_t first,
                   struct rabia_buf *out, int depth)
{
    int rc = kv_reply_array(&(struct kv_ctx){.out = out}, a->argc - first);
    for (uint32_t i = first; !rc && i < a->argc; i++) {
        struct args sub;
        int prc = args_parse(&sub, a->v[i], a->len[i]);
        if (prc < 0)
            return prc;
        if (prc > 0) {
            rc = reply_err(out, "ERR malformed operation");
            continue;
        }
        if (sub.argc == 2 && kv_eq(sub.v[0], sub.len[0], "select")) {
            int64_t v;
            if (!kv_parse_i64(sub.v[1], sub.len[1], &v) || v < INT32_MIN || v > INT32_MAX)
                rc = reply_err(out, "ERR value is not an integer or out of range");
            else
                rc = parse_db(sub.v[1], sub.len[1], &dbi) ? rabia_buf_append(out, "+OK\r\n", 5)
                                                           : reply_err(out, "ERR DB index is out of range");
        } else if (sub.argc >= 1 && (kv_eq(sub.v[0], sub.len[0], "txn") || kv_eq(sub.v[0], sub.len[0], "txnw"))) {
            rc = reply_err(out, "ERR MULTI calls can not be nested");
        } else {
            rc = run_op(s, dbi, a->v[i], a->len[i], out, true, depth + 1);
        }
        args_free(&sub);
    }
    return rc;
}

/* TXNW n (db key version)*n op...: the transaction runs only if no watched
 * key changed since WATCHVER read its version. */
static int run_txnw(struct kv_store *s, uint32_t dbi, const struct args *a, struct rabia_buf *out, int depth)
{
    int64_t n;
    if (a->argc < 2 || !kv_parse_i64(a->v[1], a->len[1], &n) || n < 0 || (uint64_t)n > (a->argc - 2) / 3)
        return reply_err(out, "ERR malformed TXNW");
    struct rabia_buf scratch = {0};
    bool changed = false;
    for (int64_t i = 0; i < n && !changed; i++) {
        uint32_t kdb;
        int64_t ver;
        uint32_t at = 2 + (uint32_t)i * 3;
        if (!parse_db(a->v[at], a->len[at], &kdb) || !kv_parse_i64(a->v[at + 2], a->len[at + 2], &ver))
            return reply_err(out, "ERR malformed TXNW");
        struct kv_ctx c = {.s = s, .db = &s->db[kdb], .dbi = kdb, .out = &scratch};
        changed = kv_key_version(&c, a->v[at + 1], a->len[at + 1]) != (uint64_t)ver;
    }
    rabia_buf_free(&scratch);
    if (changed)
        return rabia_buf_append(out, "*-1\r\n", 5);
    return run_txn(s, dbi, a, 2 + (uint32_t)n * 3, out, depth);
}

static int run_watchver(struct kv_store *s, uint32_t dbi, const struct args *a, struct rabia_buf *out)
{
    struct kv_ctx c = {.s = s, .db = &s->db[dbi], .dbi = dbi, .out = out};
    int rc = kv_reply_array(&c, a->argc - 1);
    for (uint32_t i = 1; !rc && i < a->argc; i++)
        rc = kv_reply_int(&c, (int64_t)kv_key_version(&c, a->v[i], a->len[i]));
    return rc;
}

/* The replicas' own operations (SWEEP, FEATURES, FEATURELEVEL), for the
 * front ends to refuse from clients (nested ones kv_run refuses). */
bool rabia_kv_op_internal(const uint8_t *op, size_t n)
{
    if (n < 8)
        return false;
    uint32_t argc = rabia_le_get32(op), l0 = rabia_le_get32(op + 4);
    const struct kv_cmd *k = argc >= 1 && l0 <= n - 8 ? lookup(op + 8, l0) : NULL;
    return k && (k->flags & KV_F_INTERNAL);
}

static int run_op(struct kv_store *s, uint32_t dbi, const uint8_t *op, size_t n, struct rabia_buf *out,
                  bool in_exec, int depth)
{
    struct args a;
    int rc = args_parse(&a, op, n);
    if (rc)
        return rc < 0 ? rc : reply_err(out, "ERR malformed operation");
    /* the operations of the apply layer's own (@db, txn, txnw, watchver;
     * select refused), told by first letter and length: any other command
     * goes to kv_run without five name compares (about 2% of a replica's
     * instructions at SET -P 16, callgrind) */
    size_t l0 = a.argc ? a.len[0] : 0;
    uint8_t c0 = l0 ? (uint8_t)(a.v[0][0] | 0x20) : 0;
    bool own = (c0 == ('@' | 0x20) && l0 == 3) || (c0 == 't' && (l0 == 3 || l0 == 4)) || (c0 == 'w' && l0 == 8) ||
               (c0 == 's' && l0 == 6);
    if (a.argc == 0) {
        rc = reply_err(out, "ERR empty command");
    } else if (depth > 4) {
        rc = reply_err(out, "ERR operation nested too deeply");
    } else if (!own) {
        rc = kv_run(s, dbi, a.argc, a.v, a.len, out, in_exec, depth > 0);
    } else if (kv_eq(a.v[0], a.len[0], "@db")) {
        uint32_t d;
        if (a.argc != 3 || !parse_db(a.v[1], a.len[1], &d))
            rc = reply_err(out, "ERR DB index is out of range");
        else
            rc = run_op(s, d, a.v[2], a.len[2], out, in_exec, depth + 1);
    } else if (!in_exec && kv_eq(a.v[0], a.len[0], "txn")) {
        rc = run_txn(s, dbi, &a, 1, out, depth);
    } else if (!in_exec && kv_eq(a.v[0], a.len[0], "txnw")) {
        rc = run_txnw(s, dbi, &a, out, depth);
    } else if (kv_eq(a.v[0], a.len[0], "watchver")) {
        rc = run_watchver(s, dbi, &a, out);
    } else if (kv_eq(a.v[0], a.len[0], "select")) {
        rc = reply_err(out, "ERR SELECT is kept per connection: send the operation as @DB n op");
    } else {
        rc = kv_run(s, dbi, a.argc, a.v, a.len, out, in_exec, depth > 0);
    }
    args_free(&a);
    return rc;
}

/* ------------------------------------------------------------------ */
/* SCAN-family arguments. */

/* Redis parses cursors with strtoul and checks the byte where it stopped:
 * a NUL byte ends the cursor (what follows is not looked at), "" is 0, a
 * sign is allowed ("-1" wraps), no leading space, nothing else after the
 * digits, no overflow. Done by hand: no length limit (leading zeros). */
bool kv_arg_cursor(struct kv_ctx *c, uint32_t i, uint64_t *cursor)
{
    const uint8_t *p = c->argv[i];
    size_t n = c->len[i];
    const uint8_t *nul = n ? memchr(p, 0, n) : NULL;
    if (nul)
        n = (size_t)(nul - p);
    uint64_t v = 0;
    bool ok = true;
    if (n > 0) {
        size_t j = p[0] == '+' || p[0] == '-' ? 1 : 0;
        ok = j < n; /* a sign alone converts nothing */
        for (; ok && j < n; j++) {
            unsigned d = (unsigned)(p[j] - '0');
            ok = d <= 9 && v <= (UINT64_MAX - d) / 10;
            v = v * 10 + d;
        }
        if (p[0] == '-')
            v = 0 - v;
    }
    if (!ok)
        kv_reply_err(c, "ERR invalid cursor");
    *cursor = ok ? v : 0;
    return ok;
}

bool kv_scan_args(struct kv_ctx *c, uint32_t i, bool allow_type, struct kv_scan_opts *o)
{
    o->match = NULL;
    o->match_len = 0;
    o->count = 10;
    o->type = -1;
    for (; i < c->argc; i += 2) {
        if (i + 1 >= c->argc) {
            kv_reply_err(c, KV_ERR_SYNTAX);
            return false;
        }
        if (kv_arg_is(c, i, "match")) {
            o->match = c->argv[i + 1];
            o->match_len = c->len[i + 1];
            /* "*" matches everything: skip the matcher */
            if (o->match_len == 1 && o->match[0] == '*')
                o->match = NULL;
        } else if (kv_arg_is(c, i, "count")) {
            int64_t v;
            if (!kv_arg_i64(c, i + 1, &v))
                return false;
            if (v < 1) {
                kv_reply_err(c, KV_ERR_SYNTAX);
                return false;
            }
            o->count = (uint64_t)v;
        } else if (allow_type && kv_arg_is(c, i, "type")) {
            o->type = -2; /* an unknown type name matches nothing, as in Redis */
            for (uint8_t t = 0; t < KV_NTYPES; t++)
                if (kv_eq(c->argv[i + 1], c->len[i + 1], kv_type_ops(t)->name))
                    o->type = t;
        } else {
            kv_reply_err(c, KV_ERR_SYNTAX);
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* The state machine. */

static void *kv_create(void)
{
    pthread_once(&infos_once, infos_init);
    struct kv_sm *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (!(m->s = kv_store_new())) {
        free(m);
        return NULL;
    }
    return m;
}

static void kv_destroy(void *sm)
{
    struct kv_sm *m = sm;
    if (!m)
        return;
    kv_store_free(m->s);
    free(m);
}

static int kv_apply(void *sm, const uint8_t *op, size_t n, struct rabia_buf *reply)
{
    struct kv_sm *m = sm;
    int rc = run_op(m->s, 0, op, n, reply, false, 0);
    /* keep the state hash's dirty list short (kv/state_hash.c); a failure
     * leaves it listed for the next settle */
    if (!rc && m->s->n_dirty >= KV_DIRTY_SETTLE)
        (void)kv_hash_settle(m->s);
    return rc;
}

/* Whether op (an argv, or @DB n argv) is a read kv_query answers: a
 * read-only command of the agreed level, not PFCOUNT (it caches a stale
 * cardinality in the string) nor a script (EVAL_RO caches its body), once
 * the cluster agreed KV_LEVEL_READ_INDEX. True: *dbi is its database and
 * a holds the command (the caller frees it); false: a holds nothing. */
static bool query_op(const struct kv_store *s, const uint8_t *op, size_t n, uint32_t *dbi, struct args *a, int depth)
{
    if (s->feature_level < KV_LEVEL_READ_INDEX || depth > 1)
        return false;
    int rc = args_parse(a, op, n);
    if (rc)
        return false;
    bool ok = false;
    if (a->argc == 3 && kv_eq(a->v[0], a->len[0], "@db")) {
        uint32_t d;
        if (parse_db(a->v[1], a->len[1], &d)) {
            const uint8_t *inner = a->v[2];
            size_t in = a->len[2];
            args_free(a);
            *dbi = d;
            return query_op(s, inner, in, dbi, a, depth + 1);
        }
    } else if (a->argc >= 1) {
        const struct kv_cmd *cmd = lookup(a->v[0], a->len[0]);
        ok = cmd && cmd_runs(s, cmd, false) && (cmd->flags & KV_F_READONLY) && !(cmd->flags & KV_F_WRITE) &&
             cmd->fn != kv_cmd_pfcount && cmd->fn != kv_cmd_eval_ro && cmd->fn != kv_cmd_evalsha_ro;
    }
    if (!ok)
        args_free(a);
    return ok;
}

static int kv_query(void *sm, const uint8_t *op, size_t n, uint64_t now_ms, struct rabia_buf *reply)
{
    struct kv_sm *m = sm;
    struct kv_store *s = m->s;
    RABIA_ASSERT(!s->query);
    struct args a;
    uint32_t dbi = 0;
    if (!query_op(s, op, n, &dbi, &a, 0))
        return 1;
    if (!reply) {
        args_free(&a);
        return 0;
    }
    /* Nothing may change: the random commands draw from a copy of the
     * generator (any member is a valid answer), and the version (bumped by
     * every change, WATCH's) is checked after. */
    uint64_t rng = s->rng, version = s->version, keys = rabia_kv_count(m);
    size_t dirty = s->n_dirty;
    size_t at = reply->len;
    s->query = true;
    s->query_now = now_ms;
    s->query_clock = false;
    int rc = kv_run(s, dbi, a.argc, a.v, a.len, reply, false, false);
    s->query = false;
    s->rng = rng;
    RABIA_ASSERT(s->version == version && s->n_dirty == dirty && rabia_kv_count(m) == keys);
    args_free(&a);
    if (rc == 0 && s->query_clock) { /* the log's clock lags the reader's where the answer depends on it */
        reply->len = at;
        return 1;
    }
    return rc;
}

static int kv_snapshot(void *sm, struct rabia_buf *out)
{
    struct kv_sm *m = sm;
    return kv_store_save(m->s, out);
}

static int kv_restore(void *sm, const uint8_t *data, size_t len)
{
    struct kv_sm *m = sm;
    struct kv_store *s;
    int rc = kv_store_load(data, len, &s);
    if (rc)
        return rc;
    s->ev_fn = m->ev_fn;
    s->ev_arg = m->ev_arg;
    memcpy(s->script_runs, m->s->script_runs, sizeof s->script_runs); /* this replica's counts, not state */
    /* rabia_state_allocations_total is a counter: the loaded store counted
     * only the load's allocations, so it fell at every snapshot install
     * (20,002 -> 1,008 in integration.metrics_http); the load's are made
     * here too, so they add to the old store's */
    s->allocs += m->s->allocs;
    s->slot = m->s->slot;
    s->rng = m->s->rng;
    kv_store_free(m->s);
    m->s = s;
    return 0;
}

static int kv_state_hash(void *sm, uint64_t *out)
{
    struct kv_sm *m = sm;
    return kv_store_hash(m->s, out);
}

static void kv_begin(void *sm, const struct rabia_sm_batch *b)
{
    struct kv_sm *m = sm;
    /* The log's clock never goes back, whatever the proposers' clocks say. */
    if (b->time_ms > m->s->now_ms)
        m->s->now_ms = b->time_ms;
    m->s->slot = b->slot;
    m->s->rng = b->slot * 0x9e3779b97f4a7c15ull ^ 0x5241424941ull;
}

static void kv_set_events(void *sm, rabia_sm_event_fn fn, void *arg)
{
    struct kv_sm *m = sm;
    m->ev_fn = m->s->ev_fn = fn;
    m->ev_arg = m->s->ev_arg = arg;
}

/* The first key of an operation (argv[1]; for most commands the key they
 * touch, for the others a harmless wrong guess) is hinted in three stages
 * as later operations are hinted: its bucket now, its entry six hints
 * later, its value twelve hints later, four operations before it is
 * applied (RABIA_SM_PREFETCH_AHEAD is 16): each stage reads what the
 * previous one fetched. Only database 0 is hinted. Reads only: the tables
 * are looked up afresh at every stage, so a rehash in between is harmless,
 * and a prefetch of a stale address never faults. */
static void kv_prefetch(void *sm, const uint8_t *op, size_t n)
{
    struct kv_sm *m = sm;
    const struct kv_dict *d = &m->s->db[0].keys;
    uint32_t at = m->pf_head++ % 16;
    m->pf_ok[at] = 0;
    if (n >= 8) {
        uint32_t argc = rabia_le_get32(op), l0 = rabia_le_get32(op + 4);
        if (argc >= 2 && l0 <= n - 8 && n - 8 - l0 >= 4) {
            uint32_t l1 = rabia_le_get32(op + 8 + l0);
            if (l1 <= n - 12 - l0) {
                m->pf_hash[at] = kv_hash(op + 12 + l0, l1);
                m->pf_ok[at] = 1;
                kv_dict_prefetch(d, m->pf_hash[at], 1);
            }
        }
    }
    uint32_t s2 = (m->pf_head - 1 - 6) % 16, s3 = (m->pf_head - 1 - 12) % 16;
    if (m->pf_ok[s2])
        kv_dict_prefetch(d, m->pf_hash[s2], 2);
    if (m->pf_ok[s3])
        kv_dict_prefetch(d, m->pf_hash[s3], 3);
}

const struct rabia_sm_ops rabia_sm_kv = {
    .name = "kv",
    .create = kv_create,
    .destroy = kv_destroy,
    .apply = kv_apply,
    .snapshot = kv_snapshot,
    .restore = kv_restore,
    .begin = kv_begin,
    .set_events = kv_set_events,
    .state_hash = kv_state_hash,
    .prefetch = kv_prefetch,
    .query = kv_query,
};

uint64_t rabia_kv_count(const void *sm)
{
    const struct kv_sm *m = sm;
    uint64_t n = 0;
    for (int i = 0; i < KV_DBS; i++)
        n += kv_dict_size(&m->s->db[i].keys);
    return n;
}

uint64_t rabia_kv_expiring(const void *sm)
{
    const struct kv_sm *m = sm;
    uint64_t n = 0;
    for (int i = 0; i < KV_DBS; i++)
        n += kv_dict_size(&m->s->db[i].expires);
    return n;
}

uint64_t rabia_kv_memory(const void *sm)
{
    const struct kv_sm *m = sm;
    return m->s->mem;
}

void rabia_kv_script_runs(const void *sm, uint64_t *ok, uint64_t *error, uint64_t *stopped)
{
    const struct kv_sm *m = sm;
    *ok = m->s->script_runs[KV_SCRIPT_OK];
    *error = m->s->script_runs[KV_SCRIPT_ERROR];
    *stopped = m->s->script_runs[KV_SCRIPT_STOPPED];
}

uint64_t rabia_kv_scripts(const void *sm)
{
    const struct kv_sm *m = sm;
    return kv_dict_size(&m->s->scripts);
}

unsigned rabia_kv_feature_level(const void *sm)
{
    const struct kv_sm *m = sm;
    return m->s->feature_level;
}

bool rabia_kv_cmd_runs(const void *sm, const struct rabia_kv_cmd_info *ci, bool nested)
{
    const struct kv_sm *m = sm;
    pthread_once(&infos_once, infos_init);
    RABIA_ASSERT(ci >= infos && ci < infos + N_COMMANDS);
    return cmd_runs(m->s, &commands[ci - infos], nested);
}

uint64_t rabia_kv_allocations(const void *sm)
{
    const struct kv_sm *m = sm;
    return m->s->allocs;
}

void rabia_kv_db_info(const void *sm, uint32_t db, uint64_t *keys, uint64_t *expires)
{
    const struct kv_sm *m = sm;
    *keys = *expires = 0;
    if (db >= KV_DBS)
        return;
    *keys = kv_dict_size(&m->s->db[db].keys);
    *expires = kv_dict_size(&m->s->db[db].expires);
}

/* ------------------------------------------------------------------ */
/* Encoding operations. */

int rabia_kv_encode_argv(struct rabia_buf *out, int argc, const char *const *argv, const size_t *lens)
{
    if (argc < 0)
        return -EINVAL;
    size_t at = out->len;
    int rc = rabia_buf_put_u32(out, (uint32_t)argc);
    for (int i = 0; !rc && i < argc; i++) {
        size_t n = lens ? lens[i] : strlen(argv[i]);
        if (n > UINT32_MAX) {
            rc = -EINVAL;
            break;
        }
        if (!(rc = rabia_buf_put_u32(out, (uint32_t)n)) && n)
            rc = rabia_buf_append(out, argv[i], n);
    }
    if (rc)
        out->len = at;
    return rc;
}

int rabia_kv_encode_txn(struct rabia_buf *out, int n, const uint8_t *const *ops, const size_t *op_lens)
{
    if (n < 0 || n == INT32_MAX)
        return -EINVAL;
    size_t at = out->len;
    int rc = rabia_buf_put_u32(out, (uint32_t)n + 1);
    if (!rc && !(rc = rabia_buf_put_u32(out, 3)))
        rc = rabia_buf_append(out, "TXN", 3);
    for (int i = 0; !rc && i < n; i++) {
        if (op_lens[i] > UINT32_MAX) {
            rc = -EINVAL;
            break;
        }
        if (!(rc = rabia_buf_put_u32(out, (uint32_t)op_lens[i])) && op_lens[i])
            rc = rabia_buf_append(out, ops[i], op_lens[i]);
    }
    if (rc)
        out->len = at;
    return rc;
}
