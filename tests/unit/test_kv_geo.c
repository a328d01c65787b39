/* kv/t_geo.c: the geo commands reply and store what Redis 7.0.15 does.
 * The two tables below were read from redis-server 7.0.15 with the same
 * command lines (tests/kv/difftest.py compares the two at random too):
 * positions and their scores, distances in every unit, geohashes, the
 * scores GEOADD does not write (negative, fractional, huge), searches by
 * radius and by box with every option and error, the stores, WRONGTYPE;
 * and members at equal distances, which come back in the order Redis's
 * sorts leave them (a stable sort for all matches, Redis's partial
 * quicksort for COUNT below them). Then: random sets, where COUNT n gives
 * the n nearest whatever the ties; searches of 20,000 members laid out to
 * make a quicksort go deep; the feature level gating the commands; the
 * state hash after stores is the one a restore computes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kv_check.h"

#define T0 1700000000000ull

static void test_replies(void)
{
    void *sm = kv_fresh_level(T0, 5);
    static const char *const table[][2] = {
        {"FLUSHALL",
         "+OK\r\n"},
        /* GEOADD is a ZADD of 52-bit geohash scores */
        {"GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
         ":2\r\n"},
        {"ZRANGE Sicily 0 -1 WITHSCORES",
         "*4\r\n$7\r\nPalermo\r\n$16\r\n3479099956230698\r\n$7\r\nCatania\r\n$16\r\n3479447370796909\r\n"},
        {"GEOADD Sicily NX 13.361389 38.115556 Palermo 15 37 Noto",
         ":1\r\n"},
        {"GEOADD Sicily XX CH 13.4 38.1 Palermo 15 37 Ragusa",
         ":1\r\n"},
        {"GEOADD Sicily CH ch 13.361389 38.115556 Palermo",
         ":1\r\n"},
        {"GEOADD Sicily NX XX 1 1 a",
         "-ERR syntax error\r\n"},
        {"GEOADD Sicily GT 1 1 a",
         "-ERR syntax error\r\n"},
        {"GEOADD Sicily 1 1",
         "-ERR wrong number of arguments for 'geoadd' command\r\n"},
        {"GEOADD Sicily ch ch ch",
         "-ERR syntax error\r\n"},
        {"GEOADD Sicily 181 10 a",
         "-ERR invalid longitude,latitude pair 181.000000,10.000000\r\n"},
        {"GEOADD Sicily 10 85.06 a",
         "-ERR invalid longitude,latitude pair 10.000000,85.060000\r\n"},
        {"GEOADD Sicily 1 1 ok 200 0 bad",
         "-ERR invalid longitude,latitude pair 200.000000,0.000000\r\n"},
        {"GEOADD Sicily inf 0 a",
         "-ERR invalid longitude,latitude pair inf,0.000000\r\n"},
        {"GEOADD Sicily -180.0000001 0 a",
         "-ERR invalid longitude,latitude pair -180.000000,0.000000\r\n"},
        /* the edges and corners of the valid range */
        {"GEOADD edge 180 85.05112878 ne -180 -85.05112878 sw 0 0 zero -0.0001 0.0001 nw0",
         ":4\r\n"},
        {"ZRANGE edge 0 -1 WITHSCORES",
         "*8\r\n$2\r\nsw\r\n$1\r\n0\r\n$3\r\nnw0\r\n$16\r\n1876499844738231\r\n$4\r\nzero\r\n$16\r\n3377699720527872\r\n$2\r\nne\r\n$17\r\n13510798882111488\r\n"},
        {"GEOPOS edge ne sw zero nw0 missing",
         "*5\r\n*2\r\n$3\r\n180\r\n$19\r\n85.0511287799999991\r\n*2\r\n$22\r\n-179.99999731779098511\r\n$21\r\n-85.05112751263942528\r\n*2\r\n$19\r\n0.00000268220901489\r\n$19\r\n0.00000126736058093\r\n*2\r\n$20\r\n-0.00009924173355103\r\n$19\r\n0.00010012148579364\r\n*-1\r\n"},
        {"GEOHASH edge ne sw zero nw0 missing",
         "*5\r\n$11\r\nbp05b5048p0\r\n$11\r\n00bh0hbj200\r\n$11\r\ns0000000000\r\n$11\r\nebpbpbpbtd0\r\n$-1\r\n"},
        /* positions, distances and geohashes */
        {"GEOPOS Sicily Palermo Catania Noto NonExisting",
         "*4\r\n*2\r\n$20\r\n13.36138933897018433\r\n$20\r\n38.11555639549629859\r\n*2\r\n$20\r\n15.08726745843887329\r\n$20\r\n37.50266842333162032\r\n*2\r\n$20\r\n14.99999910593032837\r\n$20\r\n37.00000026605963654\r\n*-1\r\n"},
        {"GEOPOS Sicily",
         "*0\r\n"},
        {"GEOPOS nokey a b",
         "*2\r\n*-1\r\n*-1\r\n"},
        {"GEODIST Sicily Palermo Catania",
         "$11\r\n166274.1516\r\n"},
        {"GEODIST Sicily Palermo Catania km",
         "$8\r\n166.2742\r\n"},
        {"GEODIST Sicily Palermo Catania MI",
         "$8\r\n103.3182\r\n"},
        {"GEODIST Sicily Palermo Catania ft",
         "$11\r\n545518.8700\r\n"},
        {"GEODIST Sicily Palermo Palermo",
         "$6\r\n0.0000\r\n"},
        {"GEODIST Sicily Palermo nope",
         "$-1\r\n"},
        {"GEODIST nokey a b",
         "$-1\r\n"},
        {"GEODIST Sicily a b parsec",
         "-ERR unsupported unit provided. please use M, KM, FT, MI\r\n"},
        {"GEODIST nokey a b parsec",
         "-ERR unsupported unit provided. please use M, KM, FT, MI\r\n"},
        {"GEODIST Sicily a b km x",
         "-ERR syntax error\r\n"},
        {"GEODIST edge zero nw0",
         "$7\r\n15.7928\r\n"},
        {"GEODIST edge ne sw",
         "$13\r\n18919844.5891\r\n"},
        {"GEOHASH Sicily Palermo Catania nope",
         "*3\r\n$11\r\nsqc8b49rny0\r\n$11\r\nsqdtr74hyu0\r\n$-1\r\n"},
        {"GEOHASH Sicily",
         "*0\r\n"},
        /* scores GEOADD does not write decode too (x86-64's conversion of a double to 64 bits) */
        {"ZADD weird -5 neg 1.5 frac 1e300 huge inf pinf -inf ninf 4503599627370496 p52 -0.5 negfrac 9.3e18 big63",
         ":8\r\n"},
        {"GEOPOS weird neg frac huge pinf ninf p52 negfrac big63",
         "*8\r\n*2\r\n$3\r\n180\r\n$19\r\n85.0511287799999991\r\n*2\r\n$22\r\n-179.99999731779098511\r\n$21\r\n-85.05112497791824921\r\n*2\r\n$22\r\n-179.99999731779098511\r\n$21\r\n-85.05112751263942528\r\n*2\r\n$22\r\n-179.99999731779098511\r\n$21\r\n-85.05112751263942528\r\n*2\r\n$3\r\n180\r\n$21\r\n-85.05112751263942528\r\n*2\r\n$22\r\n-179.99999731779098511\r\n$19\r\n85.0511287799999991\r\n*2\r\n$22\r\n-179.99999731779098511\r\n$21\r\n-85.05112751263942528\r\n*2\r\n$3\r\n180\r\n$19\r\n85.0511287799999991\r\n"},
        {"GEOHASH weird neg frac huge pinf ninf p52 negfrac big63",
         "*8\r\n$11\r\nbp05b5048p0\r\n$11\r\n00bh0hbj210\r\n$11\r\n00bh0hbj200\r\n$11\r\n00bh0hbj200\r\n$11\r\n00bh0hbj200\r\n$11\r\nbp05b5048p0\r\n$11\r\n00bh0hbj200\r\n$11\r\nbp05b5048p0\r\n"},
        {"GEODIST weird neg huge",
         "$13\r\n18919844.5891\r\n"},
        {"GEODIST weird frac p52 km",
         "$10\r\n18919.8443\r\n"},
        /* searches */
        {"GEORADIUS Sicily 15 37 100 km",
         "*2\r\n$4\r\nNoto\r\n$7\r\nCatania\r\n"},
        {"GEORADIUS Sicily 15 37 200 km WITHDIST",
         "*3\r\n*2\r\n$4\r\nNoto\r\n$6\r\n0.0001\r\n*2\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n*2\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n"},
        {"GEORADIUS Sicily 15 37 200 km WITHCOORD",
         "*3\r\n*2\r\n$4\r\nNoto\r\n*2\r\n$20\r\n14.99999910593032837\r\n$20\r\n37.00000026605963654\r\n*2\r\n$7\r\nPalermo\r\n*2\r\n$20\r\n13.36138933897018433\r\n$20\r\n38.11555639549629859\r\n*2\r\n$7\r\nCatania\r\n*2\r\n$20\r\n15.08726745843887329\r\n$20\r\n37.50266842333162032\r\n"},
        {"GEORADIUS Sicily 15 37 200 km WITHDIST WITHCOORD WITHHASH",
         "*3\r\n*4\r\n$4\r\nNoto\r\n$6\r\n0.0001\r\n:3476504601741708\r\n*2\r\n$20\r\n14.99999910593032837\r\n$20\r\n37.00000026605963654\r\n*4\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n:3479099956230698\r\n*2\r\n$20\r\n13.36138933897018433\r\n$20\r\n38.11555639549629859\r\n*4\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n:3479447370796909\r\n*2\r\n$20\r\n15.08726745843887329\r\n$20\r\n37.50266842333162032\r\n"},
        {"GEORADIUS Sicily 15 37 200 km WITHDIST COUNT 1",
         "*1\r\n*2\r\n$4\r\nNoto\r\n$6\r\n0.0001\r\n"},
        {"GEORADIUS Sicily 15 37 200 km WITHDIST COUNT 1 ANY",
         "*1\r\n*2\r\n$4\r\nNoto\r\n$6\r\n0.0001\r\n"},
        {"GEORADIUS Sicily 15 37 200 km DESC",
         "*3\r\n$7\r\nPalermo\r\n$7\r\nCatania\r\n$4\r\nNoto\r\n"},
        {"GEORADIUS Sicily 15 37 200 km ASC COUNT 2 DESC",
         "*2\r\n$7\r\nPalermo\r\n$7\r\nCatania\r\n"},
        {"GEORADIUS Sicily 15 37 200 km ANY",
         "-ERR the ANY argument requires COUNT argument\r\n"},
        {"GEORADIUS Sicily 15 37 200 km COUNT 0",
         "-ERR COUNT must be > 0\r\n"},
        {"GEORADIUS Sicily 15 37 200 km COUNT x",
         "-ERR value is not an integer or out of range\r\n"},
        {"GEORADIUS Sicily 15 37 200 km COUNT",
         "-ERR syntax error\r\n"},
        {"GEORADIUS Sicily 15 37 -1 km",
         "-ERR radius cannot be negative\r\n"},
        {"GEORADIUS Sicily 15 37 a km",
         "-ERR need numeric radius\r\n"},
        {"GEORADIUS Sicily 15 37 1 au",
         "-ERR unsupported unit provided. please use M, KM, FT, MI\r\n"},
        {"GEORADIUS Sicily 200 37 1 km",
         "-ERR invalid longitude,latitude pair 200.000000,37.000000\r\n"},
        {"GEORADIUS Sicily 15 37 0 km WITHDIST",
         "*0\r\n"},
        {"GEORADIUS Sicily 15 37 20000 km",
         "*3\r\n$4\r\nNoto\r\n$7\r\nPalermo\r\n$7\r\nCatania\r\n"},
        {"GEORADIUS nokey 15 37 1 km",
         "*0\r\n"},
        {"GEORADIUS nokey 15 37 1 km STORE dst",
         ":0\r\n"},
        {"GEORADIUS Sicily 15 37 200 km STORE dst",
         ":3\r\n"},
        {"ZRANGE dst 0 -1 WITHSCORES",
         "*6\r\n$4\r\nNoto\r\n$16\r\n3476504601741708\r\n$7\r\nPalermo\r\n$16\r\n3479099956230698\r\n$7\r\nCatania\r\n$16\r\n3479447370796909\r\n"},
        {"GEORADIUS Sicily 15 37 200 km STOREDIST dst2 DESC COUNT 1",
         ":1\r\n"},
        {"ZRANGE dst2 0 -1 WITHSCORES",
         "*2\r\n$7\r\nPalermo\r\n$18\r\n190.44242984775784\r\n"},
        {"GEORADIUS Sicily 15 37 200 km STORE dst WITHDIST",
         "-ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options\r\n"},
        {"GEORADIUS Sicily 1 1 1 km STORE dst",
         ":0\r\n"},
        {"EXISTS dst",
         ":0\r\n"},
        {"GEORADIUS_RO Sicily 15 37 200 km STORE dst",
         "-ERR syntax error\r\n"},
        {"GEORADIUS_RO Sicily 15 37 200 km WITHDIST",
         "*3\r\n*2\r\n$4\r\nNoto\r\n$6\r\n0.0001\r\n*2\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n*2\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n"},
        {"GEORADIUSBYMEMBER Sicily Palermo 200 km WITHDIST",
         "*3\r\n*2\r\n$7\r\nPalermo\r\n$6\r\n0.0000\r\n*2\r\n$7\r\nCatania\r\n$8\r\n166.2742\r\n*2\r\n$4\r\nNoto\r\n$8\r\n190.4424\r\n"},
        {"GEORADIUSBYMEMBER Sicily nope 200 km WITHDIST",
         "-ERR could not decode requested zset member\r\n"},
        {"GEORADIUSBYMEMBER nokey nope abc km WITHDIST",
         "*0\r\n"},
        {"GEORADIUSBYMEMBER nokey nope 10 km STORE x",
         ":0\r\n"},
        {"GEORADIUSBYMEMBER_RO Sicily Catania 100 mi WITHDIST WITHHASH",
         "*2\r\n*3\r\n$7\r\nCatania\r\n$6\r\n0.0000\r\n:3479447370796909\r\n*3\r\n$4\r\nNoto\r\n$7\r\n35.0710\r\n:3476504601741708\r\n"},
        {"GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km ASC WITHDIST",
         "*3\r\n*2\r\n$4\r\nNoto\r\n$6\r\n0.0001\r\n*2\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n*2\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n"},
        {"GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 400 400 km ASC WITHCOORD WITHDIST",
         "*3\r\n*3\r\n$4\r\nNoto\r\n$6\r\n0.0001\r\n*2\r\n$20\r\n14.99999910593032837\r\n$20\r\n37.00000026605963654\r\n*3\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n*2\r\n$20\r\n15.08726745843887329\r\n$20\r\n37.50266842333162032\r\n*3\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n*2\r\n$20\r\n13.36138933897018433\r\n$20\r\n38.11555639549629859\r\n"},
        {"GEOSEARCH Sicily FROMMEMBER Palermo BYBOX 400 400 km DESC WITHCOORD WITHDIST",
         "*3\r\n*3\r\n$4\r\nNoto\r\n$8\r\n190.4424\r\n*2\r\n$20\r\n14.99999910593032837\r\n$20\r\n37.00000026605963654\r\n*3\r\n$7\r\nCatania\r\n$8\r\n166.2742\r\n*2\r\n$20\r\n15.08726745843887329\r\n$20\r\n37.50266842333162032\r\n*3\r\n$7\r\nPalermo\r\n$6\r\n0.0000\r\n*2\r\n$20\r\n13.36138933897018433\r\n$20\r\n38.11555639549629859\r\n"},
        {"GEOSEARCH Sicily BYBOX 300 80 km FROMMEMBER Catania",
         "*1\r\n$7\r\nCatania\r\n"},
        {"GEOSEARCH Sicily FROMMEMBER Palermo FROMLONLAT 15 37 BYBOX 400 400 km",
         "-ERR syntax error\r\n"},
        {"GEOSEARCH Sicily FROMLONLAT 15 37 FROMMEMBER Palermo BYBOX 400 400 km",
         "-ERR syntax error\r\n"},
        {"geosearch Sicily BYBOX 400 400 km",
         "-ERR wrong number of arguments for 'geosearch' command\r\n"},
        {"GeoSearch Sicily FROMLONLAT 15 37 WITHDIST",
         "-ERR wrong number of arguments for 'geosearch' command\r\n"},
        {"GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 10 km BYBOX 1 1 km",
         "-ERR syntax error\r\n"},
        {"GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX -1 1 km",
         "-ERR height or width cannot be negative\r\n"},
        {"GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 1 x km",
         "-ERR need numeric height\r\n"},
        {"GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 1 1 yd",
         "-ERR unsupported unit provided. please use M, KM, FT, MI\r\n"},
        {"GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km STORE x",
         "-ERR syntax error\r\n"},
        {"GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST",
         "-ERR syntax error\r\n"},
        {"GEOSEARCH nokey FROMMEMBER nope BYRADIUS 1 km",
         "*0\r\n"},
        {"GEOSEARCH Sicily FROMMEMBER nope BYRADIUS 1 km",
         "-ERR could not decode requested zset member\r\n"},
        {"GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km ANY",
         "-ERR the ANY argument requires COUNT argument\r\n"},
        {"GEOSEARCHSTORE d3 Sicily FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST",
         ":3\r\n"},
        {"ZRANGE d3 0 -1 WITHSCORES",
         "*6\r\n$4\r\nNoto\r\n$22\r\n8.4753771541937767e-05\r\n$7\r\nCatania\r\n$18\r\n56.441257870158204\r\n$7\r\nPalermo\r\n$18\r\n190.44242984775784\r\n"},
        {"GEOSEARCHSTORE d3 Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST",
         "-ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options\r\n"},
        {"GEOSEARCHSTORE d3 Sicily FROMLONLAT 15 37 BYRADIUS 1 km",
         ":1\r\n"},
        {"EXISTS d3",
         ":1\r\n"},
        {"GEOSEARCHSTORE Sicily Sicily FROMMEMBER Catania BYRADIUS 1 km",
         ":1\r\n"},
        {"ZRANGE Sicily 0 -1",
         "*1\r\n$7\r\nCatania\r\n"},
        {"GEOSEARCHSTORE d4 nokey FROMLONLAT 15 37 BYRADIUS 1 km",
         ":0\r\n"},
        /* WRONGTYPE before anything else */
        {"SET str x",
         "+OK\r\n"},
        {"GEOADD str 1 1 a",
         "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
        {"GEOADD str 1 100 a",
         "-ERR invalid longitude,latitude pair 1.000000,100.000000\r\n"},
        {"GEOPOS str a",
         "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
        {"GEOHASH str a",
         "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
        {"GEODIST str a b",
         "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
        {"GEODIST str a b parsec",
         "-ERR unsupported unit provided. please use M, KM, FT, MI\r\n"},
        {"GEORADIUS str 15 37 200 km",
         "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
        {"GEORADIUS str 15 370 200 km",
         "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
        {"GEOSEARCH str FROMLONLAT 15 37 BYRADIUS 1 km",
         "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
        {"GEOSEARCHSTORE d5 str FROMLONLAT 15 37 BYRADIUS 1 km",
         "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
        {"GEORADIUS Sicily 15 37 200 km STORE str",
         ":1\r\n"},
        {"TYPE str",
         "+zset\r\n"},
    };
    KV_DO_TABLE(sm, table);
    rabia_sm_kv.destroy(kv_restored_alike(sm));
    rabia_sm_kv.destroy(sm);
    printf("ok   test_replies     (%zu command lines as redis-server 7.0.15 answers them)\n",
           sizeof table / sizeof table[0]);
}

static void test_ties(void)
{
    void *sm = kv_fresh_level(T0, 5);
    static const char *const table[][2] = {
        {"FLUSHALL",
         "+OK\r\n"},
        /* fifty members on one place, then two near it: COUNT below the matches is Redis's partial sort */
        {"GEOADD tie 14.25 37.5 t1 14.25 37.5 t2 14.25 37.5 t3 14.25 37.5 t4 14.25 37.5 t5 14.25 37.5 t6 14.25 37.5 t7 14.25 37.5 t8 14.25 37.5 t9 14.25 37.5 t10 14.25 37.5 t11 14.25 37.5 t12 14.25 37.5 t13 14.25 37.5 t14 14.25 37.5 t15 14.25 37.5 t16 14.25 37.5 t17 14.25 37.5 t18 14.25 37.5 t19 14.25 37.5 t20 14.25 37.5 t21 14.25 37.5 t22 14.25 37.5 t23 14.25 37.5 t24 14.25 37.5 t25 14.25 37.5 t26 14.25 37.5 t27 14.25 37.5 t28 14.25 37.5 t29 14.25 37.5 t30 14.25 37.5 t31 14.25 37.5 t32 14.25 37.5 t33 14.25 37.5 t34 14.25 37.5 t35 14.25 37.5 t36 14.25 37.5 t37 14.25 37.5 t38 14.25 37.5 t39 14.25 37.5 t40 14.25 37.5 t41 14.25 37.5 t42 14.25 37.5 t43 14.25 37.5 t44 14.25 37.5 t45 14.25 37.5 t46 14.25 37.5 t47 14.25 37.5 t48 14.25 37.5 t49 14.25 37.5 t50",
         ":50\r\n"},
        {"GEOADD tie 14.3 37.5 near 14.2 37.5 near2",
         ":2\r\n"},
        {"GEOSEARCH tie FROMLONLAT 14.25 37.5 BYRADIUS 100 km COUNT 1 ASC",
         "*1\r\n$3\r\nt44\r\n"},
        {"GEOSEARCH tie FROMLONLAT 14.25 37.5 BYRADIUS 100 km COUNT 1 DESC",
         "*1\r\n$5\r\nnear2\r\n"},
        {"GEOSEARCH tie FROMLONLAT 14.25 37.5 BYRADIUS 100 km COUNT 7 ASC",
         "*7\r\n$3\r\nt44\r\n$2\r\nt1\r\n$3\r\nt10\r\n$3\r\nt11\r\n$3\r\nt12\r\n$3\r\nt13\r\n$3\r\nt14\r\n"},
        {"GEOSEARCH tie FROMLONLAT 14.25 37.5 BYRADIUS 100 km COUNT 7 DESC",
         "*7\r\n$5\r\nnear2\r\n$4\r\nnear\r\n$3\r\nt10\r\n$3\r\nt11\r\n$3\r\nt12\r\n$3\r\nt13\r\n$3\r\nt14\r\n"},
        {"GEOSEARCH tie FROMLONLAT 14.25 37.5 BYRADIUS 100 km COUNT 8 ASC",
         "*8\r\n$3\r\nt44\r\n$2\r\nt1\r\n$3\r\nt10\r\n$3\r\nt11\r\n$3\r\nt12\r\n$3\r\nt13\r\n$3\r\nt14\r\n$3\r\nt15\r\n"},
        {"GEOSEARCH tie FROMLONLAT 14.25 37.5 BYRADIUS 100 km COUNT 8 DESC",
         "*8\r\n$5\r\nnear2\r\n$4\r\nnear\r\n$3\r\nt10\r\n$3\r\nt11\r\n$3\r\nt12\r\n$3\r\nt13\r\n$3\r\nt14\r\n$3\r\nt15\r\n"},
        {"GEOSEARCH tie FROMLONLAT 14.25 37.5 BYRADIUS 100 km COUNT 10 ASC",
         "*10\r\n$3\r\nt44\r\n$2\r\nt1\r\n$3\r\nt10\r\n$3\r\nt11\r\n$3\r\nt12\r\n$3\r\nt13\r\n$3\r\nt14\r\n$3\r\nt15\r\n$3\r\nt16\r\n$3\r\nt17\r\n"},
        {"GEOSEARCH tie FROMLONLAT 14.25 37.5 BYRADIUS 100 km COUNT 10 DESC",
         "*10\r\n$5\r\nnear2\r\n$4\r\nnear\r\n$3\r\nt10\r\n$3\r\nt11\r\n$3\r\nt12\r\n$3\r\nt13\r\n$3\r\nt14\r\n$3\r\nt15\r\n$3\r\nt16\r\n$3\r\nt17\r\n"},
        {"GEOSEARCH tie FROMLONLAT 14.25 37.5 BYRADIUS 100 km COUNT 41 ASC",
         "*41\r\n$3\r\nt44\r\n$2\r\nt1\r\n$3\r\nt10\r\n$3\r\nt11\r\n$3\r\nt12\r\n$3\r\nt13\r\n$3\r\nt14\r\n$3\r\nt15\r\n$3\r\nt16\r\n$3\r\nt17\r\n$3\r\nt18\r\n$3\r\nt19\r\n$2\r\nt2\r\n$3\r\nt20\r\n$3\r\nt21\r\n$3\r\nt22\r\n$3\r\nt23\r\n$3\r\nt24\r\n$3\r\nt25\r\n$3\r\nt26\r\n$3\r\nt27\r\n$3\r\nt28\r\n$3\r\nt29\r\n$2\r\nt3\r\n$3\r\nt30\r\n$3\r\nt31\r\n$3\r\nt32\r\n$3\r\nt33\r\n$3\r\nt34\r\n$3\r\nt35\r\n$3\r\nt36\r\n$3\r\nt37\r\n$3\r\nt38\r\n$3\r\nt39\r\n$2\r\nt4\r\n$3\r\nt40\r\n$3\r\nt41\r\n$3\r\nt42\r\n$3\r\nt43\r\n$2\r\nt8\r\n$2\r\nt9\r\n"},
        {"GEOSEARCH tie FROMLONLAT 14.25 37.5 BYRADIUS 100 km COUNT 41 DESC",
         "*41\r\n$5\r\nnear2\r\n$4\r\nnear\r\n$3\r\nt10\r\n$3\r\nt11\r\n$3\r\nt12\r\n$3\r\nt13\r\n$3\r\nt14\r\n$3\r\nt15\r\n$3\r\nt16\r\n$3\r\nt17\r\n$3\r\nt18\r\n$3\r\nt19\r\n$2\r\nt2\r\n$3\r\nt20\r\n$3\r\nt21\r\n$3\r\nt22\r\n$3\r\nt23\r\n$3\r\nt24\r\n$3\r\nt25\r\n$3\r\nt26\r\n$3\r\nt27\r\n$3\r\nt28\r\n$3\r\nt29\r\n$2\r\nt3\r\n$3\r\nt30\r\n$3\r\nt31\r\n$3\r\nt32\r\n$3\r\nt33\r\n$3\r\nt34\r\n$3\r\nt35\r\n$3\r\nt36\r\n$3\r\nt37\r\n$3\r\nt38\r\n$3\r\nt39\r\n$2\r\nt4\r\n$3\r\nt40\r\n$3\r\nt41\r\n$3\r\nt42\r\n$3\r\nt43\r\n$3\r\nt44\r\n$3\r\nt45\r\n"},
        {"GEOSEARCH tie FROMLONLAT 14.25 37.5 BYRADIUS 100 km COUNT 51 ASC",
         "*51\r\n$3\r\nt44\r\n$2\r\nt1\r\n$3\r\nt10\r\n$3\r\nt11\r\n$3\r\nt12\r\n$3\r\nt13\r\n$3\r\nt14\r\n$3\r\nt15\r\n$3\r\nt16\r\n$3\r\nt17\r\n$3\r\nt18\r\n$3\r\nt19\r\n$2\r\nt2\r\n$3\r\nt20\r\n$3\r\nt21\r\n$3\r\nt22\r\n$3\r\nt23\r\n$3\r\nt24\r\n$3\r\nt25\r\n$3\r\nt26\r\n$3\r\nt27\r\n$3\r\nt28\r\n$3\r\nt29\r\n$2\r\nt3\r\n$3\r\nt30\r\n$3\r\nt31\r\n$3\r\nt32\r\n$3\r\nt33\r\n$3\r\nt34\r\n$3\r\nt35\r\n$3\r\nt36\r\n$3\r\nt37\r\n$3\r\nt38\r\n$3\r\nt39\r\n$2\r\nt4\r\n$3\r\nt40\r\n$3\r\nt41\r\n$3\r\nt42\r\n$3\r\nt43\r\n$2\r\nt8\r\n$2\r\nt9\r\n$3\r\nt45\r\n$3\r\nt46\r\n$3\r\nt47\r\n$3\r\nt48\r\n$3\r\nt49\r\n$2\r\nt5\r\n$3\r\nt50\r\n$2\r\nt6\r\n$2\r\nt7\r\n$4\r\nnear\r\n"},
        {"GEOSEARCH tie FROMLONLAT 14.25 37.5 BYRADIUS 100 km COUNT 51 DESC",
         "*51\r\n$5\r\nnear2\r\n$4\r\nnear\r\n$3\r\nt10\r\n$3\r\nt11\r\n$3\r\nt12\r\n$3\r\nt13\r\n$3\r\nt14\r\n$3\r\nt15\r\n$3\r\nt16\r\n$3\r\nt17\r\n$3\r\nt18\r\n$3\r\nt19\r\n$2\r\nt2\r\n$3\r\nt20\r\n$3\r\nt21\r\n$3\r\nt22\r\n$3\r\nt23\r\n$3\r\nt24\r\n$3\r\nt25\r\n$3\r\nt26\r\n$3\r\nt27\r\n$3\r\nt28\r\n$3\r\nt29\r\n$2\r\nt3\r\n$3\r\nt30\r\n$3\r\nt31\r\n$3\r\nt32\r\n$3\r\nt33\r\n$3\r\nt34\r\n$3\r\nt35\r\n$3\r\nt36\r\n$3\r\nt37\r\n$3\r\nt38\r\n$3\r\nt39\r\n$2\r\nt4\r\n$3\r\nt40\r\n$3\r\nt41\r\n$3\r\nt42\r\n$3\r\nt43\r\n$3\r\nt44\r\n$3\r\nt45\r\n$3\r\nt46\r\n$3\r\nt47\r\n$3\r\nt48\r\n$3\r\nt49\r\n$3\r\nt50\r\n$2\r\nt6\r\n$2\r\nt7\r\n$2\r\nt8\r\n$2\r\nt9\r\n$2\r\nt5\r\n"},
        {"GEOSEARCH tie FROMLONLAT 14.25 37.5 BYRADIUS 100 km DESC",
         "*52\r\n$5\r\nnear2\r\n$4\r\nnear\r\n$2\r\nt1\r\n$3\r\nt10\r\n$3\r\nt11\r\n$3\r\nt12\r\n$3\r\nt13\r\n$3\r\nt14\r\n$3\r\nt15\r\n$3\r\nt16\r\n$3\r\nt17\r\n$3\r\nt18\r\n$3\r\nt19\r\n$2\r\nt2\r\n$3\r\nt20\r\n$3\r\nt21\r\n$3\r\nt22\r\n$3\r\nt23\r\n$3\r\nt24\r\n$3\r\nt25\r\n$3\r\nt26\r\n$3\r\nt27\r\n$3\r\nt28\r\n$3\r\nt29\r\n$2\r\nt3\r\n$3\r\nt30\r\n$3\r\nt31\r\n$3\r\nt32\r\n$3\r\nt33\r\n$3\r\nt34\r\n$3\r\nt35\r\n$3\r\nt36\r\n$3\r\nt37\r\n$3\r\nt38\r\n$3\r\nt39\r\n$2\r\nt4\r\n$3\r\nt40\r\n$3\r\nt41\r\n$3\r\nt42\r\n$3\r\nt43\r\n$3\r\nt44\r\n$3\r\nt45\r\n$3\r\nt46\r\n$3\r\nt47\r\n$3\r\nt48\r\n$3\r\nt49\r\n$2\r\nt5\r\n$3\r\nt50\r\n$2\r\nt6\r\n$2\r\nt7\r\n$2\r\nt8\r\n$2\r\nt9\r\n"},
        /* two hundred members on five places (the ninther's pivots, parts recursed into and not) */
        {"GEOADD five 15 37 p0 14.25 37.5 p1 14.0 38.8 p2 13.5 37.9 p3 13.5 37.9 p4 13.9 36.7 p5 13.5 37.9 p6 15 37 p7 13.9 36.7 p8 13.5 37.9 p9 13.9 36.7 p10 14.25 37.5 p11 13.5 37.9 p12 13.5 37.9 p13 14.0 38.8 p14 14.0 38.8 p15 13.5 37.9 p16 14.25 37.5 p17 13.5 37.9 p18 13.9 36.7 p19 14.0 38.8 p20 13.5 37.9 p21 13.9 36.7 p22 13.5 37.9 p23 14.25 37.5 p24 13.9 36.7 p25 13.5 37.9 p26 13.9 36.7 p27 13.9 36.7 p28 14.0 38.8 p29 13.5 37.9 p30 14.25 37.5 p31 13.5 37.9 p32 13.9 36.7 p33 14.25 37.5 p34 15 37 p35 14.0 38.8 p36 14.25 37.5 p37 13.9 36.7 p38 13.5 37.9 p39 13.9 36.7 p40 15 37 p41 13.9 36.7 p42 14.25 37.5 p43 13.5 37.9 p44 13.9 36.7 p45 13.9 36.7 p46 14.25 37.5 p47 15 37 p48 13.5 37.9 p49",
         ":50\r\n"},
        {"GEOADD five 13.9 36.7 p50 13.5 37.9 p51 13.9 36.7 p52 13.5 37.9 p53 13.9 36.7 p54 14.25 37.5 p55 14.0 38.8 p56 13.9 36.7 p57 14.0 38.8 p58 15 37 p59 14.0 38.8 p60 13.9 36.7 p61 14.0 38.8 p62 15 37 p63 15 37 p64 14.25 37.5 p65 14.25 37.5 p66 14.25 37.5 p67 13.5 37.9 p68 13.9 36.7 p69 15 37 p70 13.9 36.7 p71 14.0 38.8 p72 15 37 p73 14.0 38.8 p74 15 37 p75 13.9 36.7 p76 13.5 37.9 p77 13.5 37.9 p78 13.9 36.7 p79 14.0 38.8 p80 14.25 37.5 p81 15 37 p82 14.25 37.5 p83 14.0 38.8 p84 14.0 38.8 p85 13.5 37.9 p86 13.5 37.9 p87 13.9 36.7 p88 13.9 36.7 p89 15 37 p90 15 37 p91 15 37 p92 13.9 36.7 p93 14.0 38.8 p94 13.9 36.7 p95 14.0 38.8 p96 13.5 37.9 p97 13.5 37.9 p98 15 37 p99",
         ":50\r\n"},
        {"GEOADD five 14.0 38.8 p100 13.5 37.9 p101 13.5 37.9 p102 15 37 p103 13.9 36.7 p104 14.0 38.8 p105 15 37 p106 14.0 38.8 p107 15 37 p108 13.5 37.9 p109 14.0 38.8 p110 15 37 p111 14.25 37.5 p112 13.9 36.7 p113 13.5 37.9 p114 14.0 38.8 p115 13.5 37.9 p116 14.25 37.5 p117 15 37 p118 14.25 37.5 p119 14.25 37.5 p120 14.0 38.8 p121 14.0 38.8 p122 14.0 38.8 p123 13.5 37.9 p124 14.25 37.5 p125 14.0 38.8 p126 14.0 38.8 p127 13.9 36.7 p128 15 37 p129 14.25 37.5 p130 14.0 38.8 p131 13.9 36.7 p132 15 37 p133 14.0 38.8 p134 15 37 p135 14.0 38.8 p136 14.25 37.5 p137 14.25 37.5 p138 13.5 37.9 p139 14.25 37.5 p140 14.25 37.5 p141 14.25 37.5 p142 14.25 37.5 p143 13.5 37.9 p144 14.0 38.8 p145 13.9 36.7 p146 14.25 37.5 p147 15 37 p148 15 37 p149",
         ":50\r\n"},
        {"GEOADD five 13.5 37.9 p150 14.25 37.5 p151 14.0 38.8 p152 13.9 36.7 p153 15 37 p154 13.9 36.7 p155 13.9 36.7 p156 15 37 p157 14.25 37.5 p158 13.9 36.7 p159 13.9 36.7 p160 13.5 37.9 p161 14.0 38.8 p162 13.9 36.7 p163 14.0 38.8 p164 14.0 38.8 p165 14.0 38.8 p166 14.0 38.8 p167 13.5 37.9 p168 14.0 38.8 p169 14.0 38.8 p170 13.5 37.9 p171 14.25 37.5 p172 13.5 37.9 p173 14.25 37.5 p174 14.0 38.8 p175 14.25 37.5 p176 13.5 37.9 p177 15 37 p178 13.9 36.7 p179 13.5 37.9 p180 13.5 37.9 p181 13.5 37.9 p182 13.9 36.7 p183 14.25 37.5 p184 13.9 36.7 p185 13.5 37.9 p186 15 37 p187 13.9 36.7 p188 13.5 37.9 p189 13.5 37.9 p190 14.25 37.5 p191 13.9 36.7 p192 14.0 38.8 p193 14.25 37.5 p194 15 37 p195 15 37 p196 13.9 36.7 p197 15 37 p198 14.0 38.8 p199",
         ":50\r\n"},
        {"GEORADIUS five 14.5 37.6 500 km COUNT 3 ASC",
         "*3\r\n$3\r\np17\r\n$4\r\np174\r\n$4\r\np176\r\n"},
        {"GEORADIUS five 14.5 37.6 500 km COUNT 3 DESC",
         "*3\r\n$3\r\np94\r\n$4\r\np100\r\n$4\r\np105\r\n"},
        {"GEORADIUS five 14.5 37.6 500 km COUNT 40 ASC",
         "*40\r\n$3\r\np17\r\n$4\r\np174\r\n$4\r\np176\r\n$4\r\np184\r\n$4\r\np191\r\n$4\r\np194\r\n$3\r\np24\r\n$3\r\np31\r\n$3\r\np34\r\n$3\r\np83\r\n$3\r\np81\r\n$3\r\np67\r\n$3\r\np66\r\n$3\r\np65\r\n$3\r\np55\r\n$3\r\np47\r\n$3\r\np43\r\n$3\r\np37\r\n$2\r\np1\r\n$3\r\np11\r\n$4\r\np112\r\n$4\r\np117\r\n$4\r\np119\r\n$4\r\np120\r\n$4\r\np125\r\n$4\r\np130\r\n$4\r\np137\r\n$4\r\np138\r\n$4\r\np140\r\n$4\r\np141\r\n$4\r\np142\r\n$4\r\np143\r\n$4\r\np147\r\n$4\r\np151\r\n$4\r\np158\r\n$4\r\np172\r\n$4\r\np148\r\n$4\r\np133\r\n$4\r\np129\r\n$4\r\np118\r\n"},
        {"GEORADIUS five 14.5 37.6 500 km COUNT 40 DESC",
         "*40\r\n$3\r\np94\r\n$4\r\np100\r\n$4\r\np105\r\n$4\r\np107\r\n$4\r\np110\r\n$4\r\np115\r\n$4\r\np121\r\n$4\r\np122\r\n$4\r\np123\r\n$4\r\np126\r\n$4\r\np127\r\n$4\r\np131\r\n$4\r\np134\r\n$4\r\np136\r\n$3\r\np14\r\n$4\r\np145\r\n$3\r\np15\r\n$4\r\np152\r\n$4\r\np162\r\n$4\r\np164\r\n$4\r\np165\r\n$4\r\np166\r\n$4\r\np167\r\n$4\r\np169\r\n$4\r\np170\r\n$4\r\np175\r\n$4\r\np193\r\n$4\r\np199\r\n$2\r\np2\r\n$3\r\np20\r\n$3\r\np29\r\n$3\r\np36\r\n$3\r\np56\r\n$3\r\np58\r\n$3\r\np60\r\n$3\r\np62\r\n$3\r\np72\r\n$3\r\np74\r\n$3\r\np80\r\n$3\r\np84\r\n"},
        {"GEORADIUS five 14.5 37.6 500 km COUNT 41 ASC",
         "*41\r\n$3\r\np17\r\n$4\r\np174\r\n$4\r\np176\r\n$4\r\np184\r\n$4\r\np191\r\n$4\r\np194\r\n$3\r\np24\r\n$3\r\np31\r\n$3\r\np34\r\n$3\r\np83\r\n$3\r\np81\r\n$3\r\np67\r\n$3\r\np66\r\n$3\r\np65\r\n$3\r\np55\r\n$3\r\np47\r\n$3\r\np43\r\n$3\r\np37\r\n$2\r\np1\r\n$3\r\np11\r\n$4\r\np112\r\n$4\r\np117\r\n$4\r\np119\r\n$4\r\np120\r\n$4\r\np125\r\n$4\r\np130\r\n$4\r\np137\r\n$4\r\np138\r\n$4\r\np140\r\n$4\r\np141\r\n$4\r\np142\r\n$4\r\np143\r\n$4\r\np147\r\n$4\r\np151\r\n$4\r\np158\r\n$4\r\np172\r\n$4\r\np148\r\n$4\r\np133\r\n$4\r\np129\r\n$4\r\np118\r\n$4\r\np111\r\n"},
        {"GEORADIUS five 14.5 37.6 500 km COUNT 41 DESC",
         "*41\r\n$3\r\np94\r\n$4\r\np100\r\n$4\r\np105\r\n$4\r\np107\r\n$4\r\np110\r\n$4\r\np115\r\n$4\r\np121\r\n$4\r\np122\r\n$4\r\np123\r\n$4\r\np126\r\n$4\r\np127\r\n$4\r\np131\r\n$4\r\np134\r\n$4\r\np136\r\n$3\r\np14\r\n$4\r\np145\r\n$3\r\np15\r\n$4\r\np152\r\n$4\r\np162\r\n$4\r\np164\r\n$4\r\np165\r\n$4\r\np166\r\n$4\r\np167\r\n$4\r\np169\r\n$4\r\np170\r\n$4\r\np175\r\n$4\r\np193\r\n$4\r\np199\r\n$2\r\np2\r\n$3\r\np20\r\n$3\r\np29\r\n$3\r\np36\r\n$3\r\np56\r\n$3\r\np58\r\n$3\r\np60\r\n$3\r\np62\r\n$3\r\np72\r\n$3\r\np74\r\n$3\r\np80\r\n$3\r\np84\r\n$3\r\np85\r\n"},
        {"GEORADIUS five 14.5 37.6 500 km COUNT 100 ASC",
         "*100\r\n$3\r\np17\r\n$4\r\np174\r\n$4\r\np176\r\n$4\r\np184\r\n$4\r\np191\r\n$4\r\np194\r\n$3\r\np24\r\n$3\r\np31\r\n$3\r\np34\r\n$3\r\np83\r\n$3\r\np81\r\n$3\r\np67\r\n$3\r\np66\r\n$3\r\np65\r\n$3\r\np55\r\n$3\r\np47\r\n$3\r\np43\r\n$3\r\np37\r\n$2\r\np1\r\n$3\r\np11\r\n$4\r\np112\r\n$4\r\np117\r\n$4\r\np119\r\n$4\r\np120\r\n$4\r\np125\r\n$4\r\np130\r\n$4\r\np137\r\n$4\r\np138\r\n$4\r\np140\r\n$4\r\np141\r\n$4\r\np142\r\n$4\r\np143\r\n$4\r\np147\r\n$4\r\np151\r\n$4\r\np158\r\n$4\r\np172\r\n$4\r\np148\r\n$4\r\np133\r\n$4\r\np129\r\n$4\r\np118\r\n$4\r\np111\r\n$4\r\np108\r\n$4\r\np106\r\n$4\r\np103\r\n$2\r\np0\r\n$3\r\np99\r\n$3\r\np92\r\n$3\r\np91\r\n$3\r\np90\r\n$3\r\np82\r\n$3\r\np75\r\n$3\r\np73\r\n$3\r\np70\r\n$2\r\np7\r\n$3\r\np64\r\n$3\r\np63\r\n$3\r\np59\r\n$3\r\np48\r\n$3\r\np41\r\n$3\r\np35\r\n$4\r\np198\r\n$4\r\np196\r\n$4\r\np195\r\n$4\r\np187\r\n$4\r\np178\r\n$4\r\np157\r\n$4\r\np154\r\n$4\r\np149\r\n$4\r\np135\r\n$4\r\np101\r\n$4\r\np102\r\n$4\r\np109\r\n$4\r\np114\r\n$4\r\np116\r\n$3\r\np12\r\n$4\r\np124\r\n$3\r\np13\r\n$4\r\np139\r\n$4\r\np144\r\n$4\r\np150\r\n$3\r\np16\r\n$4\r\np161\r\n$4\r\np168\r\n$4\r\np171\r\n$4\r\np173\r\n$4\r\np177\r\n$3\r\np18\r\n$4\r\np180\r\n$4\r\np181\r\n$4\r\np182\r\n$4\r\np186\r\n$4\r\np189\r\n$4\r\np190\r\n$3\r\np21\r\n$3\r\np23\r\n$3\r\np26\r\n$2\r\np3\r\n$3\r\np30\r\n$3\r\np32\r\n$3\r\np39\r\n"},
        {"GEORADIUS five 14.5 37.6 500 km COUNT 100 DESC",
         "*100\r\n$3\r\np94\r\n$4\r\np100\r\n$4\r\np105\r\n$4\r\np107\r\n$4\r\np110\r\n$4\r\np115\r\n$4\r\np121\r\n$4\r\np122\r\n$4\r\np123\r\n$4\r\np126\r\n$4\r\np127\r\n$4\r\np131\r\n$4\r\np134\r\n$4\r\np136\r\n$3\r\np14\r\n$4\r\np145\r\n$3\r\np15\r\n$4\r\np152\r\n$4\r\np162\r\n$4\r\np164\r\n$4\r\np165\r\n$4\r\np166\r\n$4\r\np167\r\n$4\r\np169\r\n$4\r\np170\r\n$4\r\np175\r\n$4\r\np193\r\n$4\r\np199\r\n$2\r\np2\r\n$3\r\np20\r\n$3\r\np29\r\n$3\r\np36\r\n$3\r\np56\r\n$3\r\np58\r\n$3\r\np60\r\n$3\r\np62\r\n$3\r\np72\r\n$3\r\np74\r\n$3\r\np80\r\n$3\r\np84\r\n$3\r\np85\r\n$3\r\np96\r\n$4\r\np146\r\n$4\r\np155\r\n$4\r\np153\r\n$3\r\np95\r\n$3\r\np93\r\n$3\r\np89\r\n$3\r\np88\r\n$2\r\np8\r\n$3\r\np79\r\n$3\r\np76\r\n$3\r\np71\r\n$3\r\np69\r\n$3\r\np61\r\n$3\r\np57\r\n$3\r\np54\r\n$3\r\np52\r\n$3\r\np50\r\n$2\r\np5\r\n$3\r\np46\r\n$3\r\np45\r\n$3\r\np42\r\n$3\r\np40\r\n$3\r\np38\r\n$3\r\np33\r\n$3\r\np28\r\n$3\r\np27\r\n$3\r\np25\r\n$3\r\np22\r\n$4\r\np197\r\n$4\r\np192\r\n$3\r\np19\r\n$4\r\np188\r\n$4\r\np185\r\n$4\r\np183\r\n$4\r\np179\r\n$4\r\np163\r\n$4\r\np160\r\n$4\r\np159\r\n$4\r\np156\r\n$3\r\np10\r\n$4\r\np104\r\n$4\r\np113\r\n$4\r\np128\r\n$4\r\np132\r\n$3\r\np23\r\n$4\r\np102\r\n$4\r\np109\r\n$4\r\np114\r\n$4\r\np116\r\n$3\r\np12\r\n$4\r\np124\r\n$3\r\np13\r\n$4\r\np139\r\n$4\r\np144\r\n$4\r\np150\r\n$3\r\np16\r\n$4\r\np161\r\n$4\r\np168\r\n"},
        {"GEORADIUS five 14.5 37.6 500 km COUNT 199 ASC",
         "*199\r\n$3\r\np17\r\n$4\r\np174\r\n$4\r\np176\r\n$4\r\np184\r\n$4\r\np191\r\n$4\r\np194\r\n$3\r\np24\r\n$3\r\np31\r\n$3\r\np34\r\n$3\r\np83\r\n$3\r\np81\r\n$3\r\np67\r\n$3\r\np66\r\n$3\r\np65\r\n$3\r\np55\r\n$3\r\np47\r\n$3\r\np43\r\n$3\r\np37\r\n$2\r\np1\r\n$3\r\np11\r\n$4\r\np112\r\n$4\r\np117\r\n$4\r\np119\r\n$4\r\np120\r\n$4\r\np125\r\n$4\r\np130\r\n$4\r\np137\r\n$4\r\np138\r\n$4\r\np140\r\n$4\r\np141\r\n$4\r\np142\r\n$4\r\np143\r\n$4\r\np147\r\n$4\r\np151\r\n$4\r\np158\r\n$4\r\np172\r\n$4\r\np148\r\n$4\r\np133\r\n$4\r\np129\r\n$4\r\np118\r\n$4\r\np111\r\n$4\r\np108\r\n$4\r\np106\r\n$4\r\np103\r\n$2\r\np0\r\n$3\r\np99\r\n$3\r\np92\r\n$3\r\np91\r\n$3\r\np90\r\n$3\r\np82\r\n$3\r\np75\r\n$3\r\np73\r\n$3\r\np70\r\n$2\r\np7\r\n$3\r\np64\r\n$3\r\np63\r\n$3\r\np59\r\n$3\r\np48\r\n$3\r\np41\r\n$3\r\np35\r\n$4\r\np198\r\n$4\r\np196\r\n$4\r\np195\r\n$4\r\np187\r\n$4\r\np178\r\n$4\r\np157\r\n$4\r\np154\r\n$4\r\np149\r\n$4\r\np135\r\n$4\r\np101\r\n$4\r\np102\r\n$4\r\np109\r\n$4\r\np114\r\n$4\r\np116\r\n$3\r\np12\r\n$4\r\np124\r\n$3\r\np13\r\n$4\r\np139\r\n$4\r\np144\r\n$4\r\np150\r\n$3\r\np16\r\n$4\r\np161\r\n$4\r\np168\r\n$4\r\np171\r\n$4\r\np173\r\n$4\r\np177\r\n$3\r\np18\r\n$4\r\np180\r\n$4\r\np181\r\n$4\r\np182\r\n$4\r\np186\r\n$4\r\np189\r\n$4\r\np190\r\n$3\r\np21\r\n$3\r\np23\r\n$3\r\np26\r\n$2\r\np3\r\n$3\r\np30\r\n$3\r\np32\r\n$3\r\np39\r\n$2\r\np4\r\n$3\r\np44\r\n$3\r\np49\r\n$3\r\np51\r\n$3\r\np53\r\n$2\r\np6\r\n$3\r\np68\r\n$3\r\np77\r\n$3\r\np78\r\n$3\r\np86\r\n$3\r\np87\r\n$2\r\np9\r\n$3\r\np97\r\n$3\r\np98\r\n$4\r\np163\r\n$4\r\np104\r\n$4\r\np113\r\n$4\r\np128\r\n$4\r\np132\r\n$4\r\np146\r\n$4\r\np153\r\n$4\r\np155\r\n$4\r\np156\r\n$4\r\np159\r\n$4\r\np160\r\n$4\r\np179\r\n$4\r\np183\r\n$4\r\np185\r\n$4\r\np188\r\n$3\r\np19\r\n$4\r\np192\r\n$4\r\np197\r\n$3\r\np22\r\n$3\r\np25\r\n$3\r\np27\r\n$3\r\np28\r\n$3\r\np33\r\n$3\r\np38\r\n$3\r\np40\r\n$3\r\np42\r\n$3\r\np45\r\n$3\r\np46\r\n$2\r\np5\r\n$3\r\np50\r\n$3\r\np52\r\n$3\r\np54\r\n$3\r\np57\r\n$3\r\np61\r\n$3\r\np69\r\n$3\r\np71\r\n$3\r\np76\r\n$3\r\np79\r\n$2\r\np8\r\n$3\r\np88\r\n$3\r\np89\r\n$3\r\np93\r\n$3\r\np95\r\n$3\r\np10\r\n$4\r\np131\r\n$3\r\np85\r\n$3\r\np84\r\n$3\r\np80\r\n$3\r\np74\r\n$3\r\np72\r\n$3\r\np62\r\n$3\r\np60\r\n$4\r\np127\r\n$4\r\np126\r\n$4\r\np123\r\n$4\r\np122\r\n$4\r\np121\r\n$4\r\np115\r\n$4\r\np110\r\n$4\r\np107\r\n$4\r\np105\r\n$4\r\np100\r\n$3\r\np58\r\n$3\r\np96\r\n$3\r\np56\r\n$3\r\np36\r\n$3\r\np29\r\n$3\r\np20\r\n$2\r\np2\r\n$4\r\np199\r\n$4\r\np193\r\n$4\r\np175\r\n$4\r\np170\r\n$4\r\np169\r\n$4\r\np167\r\n$4\r\np166\r\n$4\r\np165\r\n$4\r\np164\r\n$4\r\np162\r\n$4\r\np152\r\n$3\r\np15\r\n$4\r\np145\r\n$3\r\np14\r\n$4\r\np136\r\n$4\r\np134\r\n"},
        {"GEORADIUS five 14.5 37.6 500 km COUNT 199 DESC",
         "*199\r\n$3\r\np94\r\n$4\r\np100\r\n$4\r\np105\r\n$4\r\np107\r\n$4\r\np110\r\n$4\r\np115\r\n$4\r\np121\r\n$4\r\np122\r\n$4\r\np123\r\n$4\r\np126\r\n$4\r\np127\r\n$4\r\np131\r\n$4\r\np134\r\n$4\r\np136\r\n$3\r\np14\r\n$4\r\np145\r\n$3\r\np15\r\n$4\r\np152\r\n$4\r\np162\r\n$4\r\np164\r\n$4\r\np165\r\n$4\r\np166\r\n$4\r\np167\r\n$4\r\np169\r\n$4\r\np170\r\n$4\r\np175\r\n$4\r\np193\r\n$4\r\np199\r\n$2\r\np2\r\n$3\r\np20\r\n$3\r\np29\r\n$3\r\np36\r\n$3\r\np56\r\n$3\r\np58\r\n$3\r\np60\r\n$3\r\np62\r\n$3\r\np72\r\n$3\r\np74\r\n$3\r\np80\r\n$3\r\np84\r\n$3\r\np85\r\n$3\r\np96\r\n$4\r\np146\r\n$4\r\np155\r\n$4\r\np153\r\n$3\r\np95\r\n$3\r\np93\r\n$3\r\np89\r\n$3\r\np88\r\n$2\r\np8\r\n$3\r\np79\r\n$3\r\np76\r\n$3\r\np71\r\n$3\r\np69\r\n$3\r\np61\r\n$3\r\np57\r\n$3\r\np54\r\n$3\r\np52\r\n$3\r\np50\r\n$2\r\np5\r\n$3\r\np46\r\n$3\r\np45\r\n$3\r\np42\r\n$3\r\np40\r\n$3\r\np38\r\n$3\r\np33\r\n$3\r\np28\r\n$3\r\np27\r\n$3\r\np25\r\n$3\r\np22\r\n$4\r\np197\r\n$4\r\np192\r\n$3\r\np19\r\n$4\r\np188\r\n$4\r\np185\r\n$4\r\np183\r\n$4\r\np179\r\n$4\r\np163\r\n$4\r\np160\r\n$4\r\np159\r\n$4\r\np156\r\n$3\r\np10\r\n$4\r\np104\r\n$4\r\np113\r\n$4\r\np128\r\n$4\r\np132\r\n$3\r\np23\r\n$4\r\np102\r\n$4\r\np109\r\n$4\r\np114\r\n$4\r\np116\r\n$3\r\np12\r\n$4\r\np124\r\n$3\r\np13\r\n$4\r\np139\r\n$4\r\np144\r\n$4\r\np150\r\n$3\r\np16\r\n$4\r\np161\r\n$4\r\np168\r\n$4\r\np171\r\n$4\r\np173\r\n$4\r\np177\r\n$3\r\np18\r\n$4\r\np180\r\n$4\r\np181\r\n$4\r\np182\r\n$4\r\np186\r\n$4\r\np189\r\n$4\r\np190\r\n$3\r\np21\r\n$4\r\np101\r\n$3\r\np26\r\n$2\r\np3\r\n$3\r\np30\r\n$3\r\np32\r\n$3\r\np39\r\n$2\r\np4\r\n$3\r\np44\r\n$3\r\np49\r\n$3\r\np51\r\n$3\r\np53\r\n$2\r\np6\r\n$3\r\np68\r\n$3\r\np77\r\n$3\r\np78\r\n$3\r\np86\r\n$3\r\np87\r\n$2\r\np9\r\n$3\r\np97\r\n$3\r\np98\r\n$3\r\np99\r\n$4\r\np103\r\n$4\r\np106\r\n$4\r\np108\r\n$4\r\np111\r\n$4\r\np118\r\n$4\r\np129\r\n$4\r\np133\r\n$4\r\np135\r\n$4\r\np148\r\n$4\r\np149\r\n$4\r\np154\r\n$4\r\np157\r\n$4\r\np178\r\n$4\r\np187\r\n$4\r\np195\r\n$4\r\np196\r\n$4\r\np198\r\n$3\r\np35\r\n$3\r\np41\r\n$3\r\np48\r\n$3\r\np59\r\n$3\r\np63\r\n$3\r\np64\r\n$2\r\np7\r\n$3\r\np70\r\n$3\r\np73\r\n$3\r\np75\r\n$3\r\np82\r\n$3\r\np90\r\n$3\r\np91\r\n$3\r\np92\r\n$2\r\np0\r\n$4\r\np112\r\n$3\r\np83\r\n$2\r\np1\r\n$3\r\np11\r\n$3\r\np81\r\n$3\r\np67\r\n$3\r\np66\r\n$3\r\np65\r\n$3\r\np55\r\n$3\r\np47\r\n$3\r\np43\r\n$3\r\np37\r\n$3\r\np34\r\n$3\r\np31\r\n$3\r\np24\r\n$4\r\np194\r\n$4\r\np191\r\n$4\r\np184\r\n$4\r\np176\r\n$4\r\np174\r\n$4\r\np172\r\n$3\r\np17\r\n$4\r\np158\r\n$4\r\np151\r\n$4\r\np147\r\n$4\r\np143\r\n$4\r\np142\r\n$4\r\np141\r\n$4\r\np140\r\n$4\r\np138\r\n$4\r\np137\r\n$4\r\np130\r\n$4\r\np125\r\n$4\r\np120\r\n$4\r\np119\r\n"},
        {"GEOSEARCHSTORE fivedist five FROMLONLAT 14.5 37.6 BYBOX 300 300 km COUNT 60 STOREDIST",
         ":60\r\n"},
        {"ZRANGE fivedist 0 -1 WITHSCORES",
         "*120\r\n$2\r\np1\r\n$18\r\n24.692622660459268\r\n$3\r\np11\r\n$18\r\n24.692622660459268\r\n$4\r\np112\r\n$18\r\n24.692622660459268\r\n$4\r\np117\r\n$18\r\n24.692622660459268\r\n$4\r\np119\r\n$18\r\n24.692622660459268\r\n$4\r\np120\r\n$18\r\n24.692622660459268\r\n$4\r\np125\r\n$18\r\n24.692622660459268\r\n$4\r\np130\r\n$18\r\n24.692622660459268\r\n$4\r\np137\r\n$18\r\n24.692622660459268\r\n$4\r\np138\r\n$18\r\n24.692622660459268\r\n$4\r\np140\r\n$18\r\n24.692622660459268\r\n$4\r\np141\r\n$18\r\n24.692622660459268\r\n$4\r\np142\r\n$18\r\n24.692622660459268\r\n$4\r\np143\r\n$18\r\n24.692622660459268\r\n$4\r\np147\r\n$18\r\n24.692622660459268\r\n$4\r\np151\r\n$18\r\n24.692622660459268\r\n$4\r\np158\r\n$18\r\n24.692622660459268\r\n$3\r\np17\r\n$18\r\n24.692622660459268\r\n$4\r\np172\r\n$18\r\n24.692622660459268\r\n$4\r\np174\r\n$18\r\n24.692622660459268\r\n$4\r\np176\r\n$18\r\n24.692622660459268\r\n$4\r\np184\r\n$18\r\n24.692622660459268\r\n$4\r\np191\r\n$18\r\n24.692622660459268\r\n$4\r\np194\r\n$18\r\n24.692622660459268\r\n$3\r\np24\r\n$18\r\n24.692622660459268\r\n$3\r\np31\r\n$18\r\n24.692622660459268\r\n$3\r\np34\r\n$18\r\n24.692622660459268\r\n$3\r\np37\r\n$18\r\n24.692622660459268\r\n$3\r\np43\r\n$18\r\n24.692622660459268\r\n$3\r\np47\r\n$18\r\n24.692622660459268\r\n$3\r\np55\r\n$18\r\n24.692622660459268\r\n$3\r\np65\r\n$18\r\n24.692622660459268\r\n$3\r\np66\r\n$18\r\n24.692622660459268\r\n$3\r\np67\r\n$18\r\n24.692622660459268\r\n$3\r\np81\r\n$18\r\n24.692622660459268\r\n$3\r\np83\r\n$18\r\n24.692622660459268\r\n$2\r\np0\r\n$18\r\n80.066659610917924\r\n$4\r\np103\r\n$18\r\n80.066659610917924\r\n$4\r\np106\r\n$18\r\n80.066659610917924\r\n$4\r\np108\r\n$18\r\n80.066659610917924\r\n$4\r\np111\r\n$18\r\n80.066659610917924\r\n$4\r\np118\r\n$18\r\n80.066659610917924\r\n$4\r\np129\r\n$18\r\n80.066659610917924\r\n$4\r\np133\r\n$18\r\n80.066659610917924\r\n$4\r\np148\r\n$18\r\n80.066659610917924\r\n$3\r\np35\r\n$18\r\n80.066659610917924\r\n$3\r\np41\r\n$18\r\n80.066659610917924\r\n$3\r\np48\r\n$18\r\n80.066659610917924\r\n$3\r\np59\r\n$18\r\n80.066659610917924\r\n$3\r\np63\r\n$18\r\n80.066659610917924\r\n$3\r\np64\r\n$18\r\n80.066659610917924\r\n$2\r\np7\r\n$18\r\n80.066659610917924\r\n$3\r\np70\r\n$18\r\n80.066659610917924\r\n$3\r\np73\r\n$18\r\n80.066659610917924\r\n$3\r\np75\r\n$18\r\n80.066659610917924\r\n$3\r\np82\r\n$18\r\n80.066659610917924\r\n$3\r\np90\r\n$18\r\n80.066659610917924\r\n$3\r\np91\r\n$18\r\n80.066659610917924\r\n$3\r\np92\r\n$18\r\n80.066659610917924\r\n$3\r\np99\r\n$18\r\n80.066659610917924\r\n"},
    };
    KV_DO_TABLE(sm, table);
    rabia_sm_kv.destroy(kv_restored_alike(sm));
    rabia_sm_kv.destroy(sm);
    printf("ok   test_ties        (members at equal distances, COUNT below and above the matches: Redis's order)\n");
}

/* The distances of a WITHDIST reply (an array of [member, "d.dddd"]), in
 * order; their number. */
static size_t distances(const char *rep, double *out, size_t cap)
{
    CHECK(rep[0] == '*');
    size_t n = strtoul(rep + 1, NULL, 10), k = 0;
    const char *p = rep;
    for (size_t i = 0; i < n; i++) {
        p = strstr(p + 1, "*2\r\n$");
        CHECK(p != NULL);
        p = strchr(p + 4, '\n') + 1;  /* the member's length line */
        p = strchr(p, '\n') + 1;      /* the member */
        p = strchr(p, '\n') + 1;      /* the distance's length line */
        CHECK(k < cap);
        out[k++] = strtod(p, NULL);
    }
    return k;
}

/* COUNT n of a search returns the n nearest (farthest with DESC): the
 * first n of the whole sorted answer, distance for distance, whatever the
 * ties (random sets on a few places, and spread ones). */
static void test_count_nearest(void)
{
    static double all[600], part[600];
    static char line[4096];
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 40; round++) {
        void *sm = kv_fresh_level(T0, 5);
        int places = 1 + round % 6, members = 20 + (round * 37) % 400;
        for (int m = 0; m < members;) {
            int len = snprintf(line, sizeof line, "GEOADD g");
            for (int j = 0; j < 50 && m < members; j++, m++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                int pl = (int)((rng >> 33) % (uint64_t)places);
                double lon = round % 2 ? 14.0 + pl * 0.1 : 13.0 + (double)((rng >> 20) % 3000) / 1000.0;
                double lat = round % 2 ? 37.5 + pl * 0.05 : 37.0 + (double)((rng >> 40) % 2000) / 1000.0;
                len += snprintf(line + len, sizeof line - (size_t)len, " %.4f %.4f m%d", lon, lat, m);
            }
            CHECK(kv_reply(sm, line)[0] == ':');
        }
        for (int desc = 0; desc < 2; desc++) {
            snprintf(line, sizeof line, "GEORADIUS g 14.3 37.6 400 km WITHDIST %s", desc ? "DESC" : "ASC");
            size_t n = distances(kv_reply(sm, line), all, 600);
            CHECK_EQ(n, (size_t)members);
            for (int count = 1; count <= members; count += 1 + count / 3) {
                snprintf(line, sizeof line, "GEORADIUS g 14.3 37.6 400 km WITHDIST COUNT %d %s", count,
                         desc ? "DESC" : "ASC");
                size_t k = distances(kv_reply(sm, line), part, 600);
                CHECK_EQ(k, (size_t)count);
                for (size_t i = 0; i < k; i++)
                    CHECK(part[i] == all[i]);
            }
        }
        rabia_sm_kv.destroy(sm);
    }
    printf("ok   test_count_nearest (40 sets of 20-400 members: COUNT n = the first n of the full sort)\n");
}

/* 20,000 members in layouts a quicksort handles worst (all equal, already
 * sorted, reversed, organ pipe): COUNT searches finish, bounded (kv/t_geo.c
 * partial_sort keeps at most log2(n) parts waiting, where Redis recurses). */
static void test_deep_sort(void)
{
    static char line[4096];
    for (int layout = 0; layout < 4; layout++) {
        void *sm = kv_fresh_level(T0, 5);
        for (int m = 0; m < 20000;) {
            int len = snprintf(line, sizeof line, "GEOADD g");
            for (int j = 0; j < 50; j++, m++) {
                int d = layout == 0 ? 0 : layout == 1 ? m : layout == 2 ? 20000 - m : (m < 10000 ? m : 20000 - m);
                len += snprintf(line + len, sizeof line - (size_t)len, " %.6f 37.5 m%d", 14.0 + d * 0.00005, m);
            }
            CHECK(kv_reply(sm, line)[0] == ':');
        }
        const char *rep = kv_reply(sm, "GEOSEARCH g FROMLONLAT 14.0 37.5 BYBOX 500 500 km COUNT 10");
        CHECK(strncmp(rep, "*10\r\n", 5) == 0);
        rep = kv_reply(sm, "GEOSEARCH g FROMLONLAT 14.0 37.5 BYBOX 500 500 km COUNT 19999 DESC");
        CHECK(strncmp(rep, "*19999\r\n", 8) == 0);
        rabia_sm_kv.destroy(sm);
    }
    printf("ok   test_deep_sort   (20,000 members: all equal, sorted, reversed, organ pipe)\n");
}

/* Below feature level 5 the geo commands do not exist, as on a build
 * without them (kv/README.md "Feature levels"). */
static void test_level(void)
{
    void *sm = kv_fresh_at(T0);
    KV_DO(sm, "FEATURELEVEL 4", ":4\r\n");
    KV_DO(sm, "GEOADD g 1 2 m", "-ERR unknown command 'GEOADD', with args beginning with: 'g' '1' '2' 'm' \r\n");
    KV_DO(sm, "GEOSEARCH g FROMLONLAT 1 2 BYRADIUS 1 km",
          "-ERR unknown command 'GEOSEARCH', with args beginning with: 'g' 'FROMLONLAT' '1' '2' 'BYRADIUS' '1' 'km' \r\n");
    KV_DO(sm, "EVAL return(redis.pcall('geopos','g','m')['err']) 0", "$44\r\nERR Unknown Redis command called from script\r\n");
    KV_DO(sm, "EXISTS g", ":0\r\n");
    KV_DO(sm, "FEATURELEVEL 5", ":5\r\n");
    KV_DO(sm, "GEOADD g 1 2 m", ":1\r\n");
    KV_DO(sm, "GEOPOS g m", "*1\r\n*2\r\n$19\r\n0.99999994039535522\r\n$18\r\n2.0000001856465488\r\n");
    rabia_sm_kv.destroy(sm);
    printf("ok   test_level       (unknown at level 4, in scripts too; there at 5)\n");
}

int main(void)
{
    test_replies();
    test_ties();
    test_count_nearest();
    test_deep_sort();
    test_level();
    return 0;
}
