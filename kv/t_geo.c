/* kv/t_geo.c: the geo commands, as Redis 7.0.15's geo.c, geohash.c and
 * geohash_helper.c answer them (feature level 5).
 *
 * A geo set is a sorted set: each member's score is its position as a
 * 52-bit geohash (26 bits of longitude and 26 of latitude, interleaved),
 * so GEOADD is a ZADD and every sorted-set command works on a geo set.
 * What has to match Redis bit for bit, and so is done in the same double
 * operations in the same order (the file is built with -ffp-contract=off,
 * kv/CMakeLists.txt, so no fused multiply-add rounds differently):
 *   - the score of a position (GEOADD), and the position of a score: the
 *     centre of its cell, clamped to the valid range (GEOPOS's replies);
 *   - the haversine distance, and whether a point is inside a radius or a
 *     box: which members a search returns, and the distances it stores;
 *   - the nine cells a search reads (its step and the neighbours it
 *     skips): with ANY, and without a sort, which members and in what
 *     order;
 *   - the sorts (kv/psort.c): a full sort is a stable one (glibc's qsort,
 *     a merge sort), a COUNT below the matches Redis's partial quicksort,
 *     so members at equal distances come back in Redis's order.
 * The libm functions (sin, cos, asin, sqrt, llrint) are glibc's on every
 * replica: replicas of one cluster run one build (kv/README.md). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "skiplist.h"

#define GEO_LONG_MIN -180.0
#define GEO_LONG_MAX 180.0
#define GEO_LAT_MIN -85.05112878
#define GEO_LAT_MAX 85.05112878
#define GEO_STEP_MAX 26 /* 52 bits: what a double holds exactly */

#define D_R (M_PI / 180.0)
static const double EARTH_RADIUS_IN_METERS = 6372797.560856;
static const double MERCATOR_MAX = 20037726.37;

static double deg_rad(double ang) { return ang * D_R; }
static double rad_deg(double ang) { return ang / D_R; }

/* ------------------------------------------------------------------ */
/* Geohash cells.                                                      */

struct geo_range {
    double min, max;
};
struct geo_bits {
    uint64_t bits;
    uint8_t step; /* bits per coordinate; 0 with bits 0: no cell */
};
struct geo_area {
    struct geo_range lon, lat;
};

static const struct geo_range LON_RANGE = {GEO_LONG_MIN, GEO_LONG_MAX};
static const struct geo_range LAT_RANGE = {GEO_LAT_MIN, GEO_LAT_MAX};

static bool cell_none(struct geo_bits h) { return h.bits == 0 && h.step == 0; }

/* Spread the low 32 bits of v over the even bit positions. */
static uint64_t spread(uint32_t v)
{
    uint64_t x = v;
    x = (x | (x << 16)) & 0x0000FFFF0000FFFFull;
    x = (x | (x << 8)) & 0x00FF00FF00FF00FFull;
    x = (x | (x << 4)) & 0x0F0F0F0F0F0F0F0Full;
    x = (x | (x << 2)) & 0x3333333333333333ull;
    x = (x | (x << 1)) & 0x5555555555555555ull;
    return x;
}

/* The even bit positions of v, packed into 32 bits. */
static uint32_t squeeze(uint64_t v)
{
    uint64_t x = v & 0x5555555555555555ull;
    x = (x | (x >> 1)) & 0x3333333333333333ull;
    x = (x | (x >> 2)) & 0x0F0F0F0F0F0F0F0Full;
    x = (x | (x >> 4)) & 0x00FF00FF00FF00FFull;
    x = (x | (x >> 8)) & 0x0000FFFF0000FFFFull;
    x = (x | (x >> 16)) & 0x00000000FFFFFFFFull;
    return (uint32_t)x;
}

/* The cell of step `step` holding (lon, lat) in the ranges given, latitude
 * in the even bits: false (h unchanged) outside the valid range. */
static bool cell_encode(struct geo_range lon_r, struct geo_range lat_r, double lon, double lat, uint8_t step,
                        struct geo_bits *h)
{
    RABIA_ASSERT(step >= 1 && step <= 32);
    if (lon > GEO_LONG_MAX || lon < GEO_LONG_MIN || lat > GEO_LAT_MAX || lat < GEO_LAT_MIN)
        return false;
    if (lat < lat_r.min || lat > lat_r.max || lon < lon_r.min || lon > lon_r.max)
        return false;
    double lat_off = (lat - lat_r.min) / (lat_r.max - lat_r.min);
    double lon_off = (lon - lon_r.min) / (lon_r.max - lon_r.min);
    lat_off *= (double)(1ull << step);
    lon_off *= (double)(1ull << step);
    /* in [0, 2^step]: the conversion truncates, as Redis's does */
    h->bits = spread((uint32_t)lat_off) | spread((uint32_t)lon_off) << 1;
    h->step = step;
    return true;
}

static struct geo_area cell_decode(struct geo_bits h)
{
    RABIA_ASSERT(!cell_none(h));
    uint32_t ilat = squeeze(h.bits), ilon = squeeze(h.bits >> 1);
    double lat_scale = LAT_RANGE.max - LAT_RANGE.min;
    double lon_scale = LON_RANGE.max - LON_RANGE.min;
    double cells = (double)(1ull << h.step);
    struct geo_area a;
    a.lat.min = LAT_RANGE.min + (ilat * 1.0 / cells) * lat_scale;
    a.lat.max = LAT_RANGE.min + ((uint32_t)(ilat + 1) * 1.0 / cells) * lat_scale; /* wraps as Redis's */
    a.lon.min = LON_RANGE.min + (ilon * 1.0 / cells) * lon_scale;
    a.lon.max = LON_RANGE.min + ((uint32_t)(ilon + 1) * 1.0 / cells) * lon_scale;
    return a;
}

/* The centre of a cell, clamped to the valid range. */
static void area_centre(const struct geo_area *a, double xy[2])
{
    xy[0] = (a->lon.min + a->lon.max) / 2;
    xy[0] = xy[0] > GEO_LONG_MAX ? GEO_LONG_MAX : xy[0] < GEO_LONG_MIN ? GEO_LONG_MIN : xy[0];
    xy[1] = (a->lat.min + a->lat.max) / 2;
    xy[1] = xy[1] > GEO_LAT_MAX ? GEO_LAT_MAX : xy[1] < GEO_LAT_MIN ? GEO_LAT_MIN : xy[1];
}

/* What `(uint64_t)score` gives on x86-64 (cvttsd2si), which is how Redis
 * turns any score, not only a geohash, into bits: scores of a sorted set
 * that GEOADD did not write (negative, fractional, huge) decode the same
 * way here. C leaves those conversions undefined, so they are spelled out. */
static uint64_t score_bits(double d)
{
    const double two63 = 9223372036854775808.0;
    if (d >= two63) /* from 2^63: d - 2^63 converted, top bit set; 2^64 and up: 0 */
        return d - two63 >= two63 ? 0 : (uint64_t)(int64_t)(d - two63) ^ (1ull << 63);
    if (d > -two63) /* truncation toward zero, the result's bits reinterpreted */
        return (uint64_t)(int64_t)d;
    return 1ull << 63; /* -2^63 and below: the "integer indefinite" */
}

/* A member's position from its score (Redis's decodeGeohash). */
static void score_position(double score, double xy[2])
{
    struct geo_bits h = {score_bits(score), GEO_STEP_MAX};
    struct geo_area a = cell_decode(h);
    area_centre(&a, xy);
}

/* A position's score: its 52-bit geohash. */
static uint64_t position_score(const double xy[2])
{
    struct geo_bits h;
    bool ok = cell_encode(LON_RANGE, LAT_RANGE, xy[0], xy[1], GEO_STEP_MAX, &h);
    RABIA_ASSERT(ok); /* checked by the caller (geo_lonlat) */
    return h.bits;
}

/* One cell east / west (along the longitude bits, the odd positions:
 * lon true) or north / south (the latitude bits, the even ones), d > 0 or
 * < 0: the coordinate's bits counted up or down, carries skipping the
 * other coordinate's bits, wrapping around at the range's ends. */
static void move(struct geo_bits *h, bool lon, int d)
{
    const uint64_t odd = 0xaaaaaaaaaaaaaaaaull, even = 0x5555555555555555ull;
    uint64_t mine = lon ? odd : even, keep = h->bits & ~mine, v = h->bits & mine;
    uint64_t zz = (lon ? even : odd) >> (64 - h->step * 2); /* the other bits: a carry runs through them */
    v = d > 0 ? v + (zz + 1) : (v | zz) - (zz + 1);
    v &= mine >> (64 - h->step * 2);
    h->bits = keep | v;
}

/* The nine cells in the order Redis reads them. */
enum { N_SELF, N_NORTH, N_SOUTH, N_EAST, N_WEST, N_NE, N_NW, N_SE, N_SW, N_CELLS };

static void neighbours(struct geo_bits h, struct geo_bits n[N_CELLS])
{
    static const int8_t dx[N_CELLS] = {0, 0, 0, 1, -1, 1, -1, 1, -1};
    static const int8_t dy[N_CELLS] = {0, 1, -1, 0, 0, 1, 1, -1, -1};
    for (int i = 0; i < N_CELLS; i++) {
        n[i] = h;
        if (dx[i])
            move(&n[i], true, dx[i]);
        if (dy[i])
            move(&n[i], false, dy[i]);
    }
}

/* ------------------------------------------------------------------ */
/* Distances and shapes.                                               */

static double lat_distance(double lat1d, double lat2d)
{
    return EARTH_RADIUS_IN_METERS * fabs(deg_rad(lat2d) - deg_rad(lat1d));
}

/* The haversine distance in metres; the meridian case as Redis 7.0.6
 * shortened it (asin(sin x) = x). */
static double distance(double lon1d, double lat1d, double lon2d, double lat2d)
{
    double lon1r = deg_rad(lon1d), lon2r = deg_rad(lon2d);
    double v = sin((lon2r - lon1r) / 2);
    if (v == 0.0)
        return lat_distance(lat1d, lat2d);
    double lat1r = deg_rad(lat1d), lat2r = deg_rad(lat2d);
    double u = sin((lat2r - lat1r) / 2);
    double a = u * u + cos(lat1r) * cos(lat2r) * v * v;
    return 2.0 * EARTH_RADIUS_IN_METERS * asin(sqrt(a));
}

enum geo_shape_kind { SHAPE_NONE, SHAPE_CIRCLE, SHAPE_BOX };
struct geo_shape {
    enum geo_shape_kind kind;
    double xy[2];        /* the centre */
    double conversion;   /* metres per unit */
    double radius;       /* SHAPE_CIRCLE, in units */
    double width, height; /* SHAPE_BOX, in units */
    double bounds[4];    /* min lon, min lat, max lon, max lat */
};

static void bounding_box(struct geo_shape *s)
{
    double lon = s->xy[0], lat = s->xy[1];
    double height = s->conversion * (s->kind == SHAPE_CIRCLE ? s->radius : s->height / 2);
    double width = s->conversion * (s->kind == SHAPE_CIRCLE ? s->radius : s->width / 2);
    const double lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    const double lon_delta_top = rad_deg(width / EARTH_RADIUS_IN_METERS / cos(deg_rad(lat + lat_delta)));
    const double lon_delta_bottom = rad_deg(width / EARTH_RADIUS_IN_METERS / cos(deg_rad(lat - lat_delta)));
    /* the wider side of the box is the one nearer the equator */
    bool south = lat < 0;
    s->bounds[0] = south ? lon - lon_delta_bottom : lon - lon_delta_top;
    s->bounds[2] = south ? lon + lon_delta_bottom : lon + lon_delta_top;
    s->bounds[1] = lat - lat_delta;
    s->bounds[3] = lat + lat_delta;
}

static uint8_t steps_for_radius(double range_meters, double lat)
{
    if (range_meters == 0)
        return 26;
    int step = 1;
    while (range_meters < MERCATOR_MAX) { /* at most ~85 rounds: doubles from 5e-324 */
        range_meters *= 2;
        step++;
    }
    step -= 2;
    if (lat > 66 || lat < -66) {
        step--;
        if (lat > 80 || lat < -80)
            step--;
    }
    return (uint8_t)(step < 1 ? 1 : step > 26 ? 26 : step);
}

/* The cells covering the shape: n[N_SELF] holds the centre; a neighbour
 * outside the bounding box is left out ({0, 0}). Redis's
 * geohashCalculateAreasByShapeWGS84. */
static void covering_cells(struct geo_shape *s, struct geo_bits n[N_CELLS])
{
    bounding_box(s);
    double min_lon = s->bounds[0], min_lat = s->bounds[1], max_lon = s->bounds[2], max_lat = s->bounds[3];
    double r = s->kind == SHAPE_CIRCLE ? s->radius
                                       : sqrt((s->width / 2) * (s->width / 2) + (s->height / 2) * (s->height / 2));
    r *= s->conversion;
    uint8_t steps = steps_for_radius(r, s->xy[1]);
    struct geo_bits h = {0, 0};
    bool ok = cell_encode(LON_RANGE, LAT_RANGE, s->xy[0], s->xy[1], steps, &h);
    RABIA_ASSERT(ok); /* the centre was checked (geo_lonlat, or a member's decoded position) */
    neighbours(h, n);
    struct geo_area area = cell_decode(h);
    /* a neighbour nearer than the box's edge: one step coarser */
    struct geo_area no = cell_decode(n[N_NORTH]), so = cell_decode(n[N_SOUTH]);
    struct geo_area ea = cell_decode(n[N_EAST]), we = cell_decode(n[N_WEST]);
    bool coarser = no.lat.max < max_lat || so.lat.min > min_lat || ea.lon.max < max_lon || we.lon.min > min_lon;
    if (steps > 1 && coarser) {
        steps--;
        ok = cell_encode(LON_RANGE, LAT_RANGE, s->xy[0], s->xy[1], steps, &h);
        RABIA_ASSERT(ok);
        neighbours(h, n);
        area = cell_decode(h);
    }
    if (steps >= 2) {
        static const struct geo_bits none = {0, 0};
        if (area.lat.min < min_lat)
            n[N_SOUTH] = n[N_SW] = n[N_SE] = none;
        if (area.lat.max > max_lat)
            n[N_NORTH] = n[N_NE] = n[N_NW] = none;
        if (area.lon.min < min_lon)
            n[N_WEST] = n[N_SW] = n[N_NW] = none;
        if (area.lon.max > max_lon)
            n[N_EAST] = n[N_SE] = n[N_NE] = none;
    }
}

/* Whether the point xy is in the shape; *dist its distance from the
 * centre in metres. */
static bool in_shape(const struct geo_shape *s, const double xy[2], double *dist)
{
    if (s->kind == SHAPE_CIRCLE) {
        *dist = distance(s->xy[0], s->xy[1], xy[0], xy[1]);
        return *dist <= s->radius * s->conversion;
    }
    double w = s->width * s->conversion, h = s->height * s->conversion;
    if (lat_distance(xy[1], s->xy[1]) > h / 2)
        return false;
    if (distance(xy[0], xy[1], s->xy[0], xy[1]) > w / 2)
        return false;
    *dist = distance(s->xy[0], s->xy[1], xy[0], xy[1]);
    return true;
}

/* ------------------------------------------------------------------ */
/* The points a search found.                                          */

struct geo_pt {
    double lon, lat, dist, score;
    const struct kv_dent *e; /* the member (key, klen): the set is not changed while the array lives */
};

struct geo_arr {
    struct kv_store *s;
    struct geo_pt *v;
    size_t n, cap;
};

static int arr_push(struct geo_arr *a, struct geo_pt p)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        struct geo_pt *v = kv_realloc(a->s, a->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = p;
    return 0;
}

/* The members of cell h inside the shape, in score order, appended;
 * stops once `limit` points are held (0: no limit). */
static int cell_members(struct kv_zset *z, struct geo_bits h, const struct geo_shape *s, struct geo_arr *a,
                        uint64_t limit)
{
    /* the scores of the cell: its bits followed by any 52 - 2 step bits */
    uint64_t lo = h.bits << (52 - h.step * 2), hi = (h.bits + 1) << (52 - h.step * 2);
    struct kv_zrange r = {(double)lo, (double)hi, false, true};
    for (struct kv_zsl_node *x = kv_zset_first_in_range(z, &r); x && kv_zrange_lte_max(x->score, &r);
         x = kv_zset_next(x)) {
        double xy[2], dist = 0;
        score_position(x->score, xy);
        if (in_shape(s, xy, &dist)) {
            int rc = arr_push(a, (struct geo_pt){xy[0], xy[1], dist, x->score, x->e});
            if (rc)
                return rc;
        }
        if (a->n && limit && a->n >= limit)
            break;
    }
    return 0;
}

/* Every cell of n that is present, skipping one equal to the last read
 * (a huge radius makes neighbours coincide). */
static int search(struct kv_zset *z, const struct geo_bits n[N_CELLS], const struct geo_shape *s, struct geo_arr *a,
                  uint64_t limit)
{
    int last = 0;
    for (int i = 0; i < N_CELLS; i++) {
        if (cell_none(n[i]))
            continue;
        if (last && n[i].bits == n[last].bits && n[i].step == n[last].step)
            continue;
        if (a->n && limit && a->n >= limit)
            break;
        int rc = cell_members(z, n[i], s, a, limit);
        if (rc)
            return rc;
        last = i;
    }
    return 0;
}

/* -1, 0, 1 as Redis's sort_gp_asc; *desc reverses it (sort_gp_desc). */
static int pt_cmp(const void *pa, const void *pb, void *desc)
{
    const struct geo_pt *a = pa, *b = pb;
    int r = a->dist > b->dist ? 1 : a->dist == b->dist ? 0 : -1;
    return *(const bool *)desc ? -r : r;
}

/* ------------------------------------------------------------------ */
/* Arguments.                                                          */

/* A longitude and a latitude at arguments i, i + 1, checked as Redis's
 * extractLongLatOrReply. */
static bool geo_lonlat(struct kv_ctx *c, uint32_t i, double xy[2])
{
    if (!kv_arg_double(c, i, &xy[0]) || !kv_arg_double(c, i + 1, &xy[1]))
        return false;
    if (xy[0] < GEO_LONG_MIN || xy[0] > GEO_LONG_MAX || xy[1] < GEO_LAT_MIN || xy[1] > GEO_LAT_MAX) {
        kv_reply_errf(c, "ERR invalid longitude,latitude pair %f,%f", xy[0], xy[1]);
        return false;
    }
    return true;
}

/* Metres per unit (argument i), or a negative value after the error reply. */
static double geo_unit(struct kv_ctx *c, uint32_t i)
{
    if (kv_arg_is(c, i, "m"))
        return 1;
    if (kv_arg_is(c, i, "km"))
        return 1000;
    if (kv_arg_is(c, i, "ft"))
        return 0.3048;
    if (kv_arg_is(c, i, "mi"))
        return 1609.34;
    kv_reply_err(c, "ERR unsupported unit provided. please use M, KM, FT, MI");
    return -1;
}

/* A double at argument i, or the error msg (Redis's
 * getDoubleFromObjectOrReply with a message). */
static bool geo_number(struct kv_ctx *c, uint32_t i, const char *msg, double *v)
{
    if (kv_parse_double(c->argv[i], c->len[i], v))
        return true;
    kv_reply_err(c, msg);
    return false;
}

/* <radius> <unit> at argument i. */
static bool geo_radius(struct kv_ctx *c, uint32_t i, struct geo_shape *s)
{
    double d;
    if (!geo_number(c, i, "ERR need numeric radius", &d))
        return false;
    if (d < 0) {
        kv_reply_err(c, "ERR radius cannot be negative");
        return false;
    }
    s->radius = d;
    double conv = geo_unit(c, i + 1);
    if (conv < 0)
        return false;
    s->conversion = conv;
    return true;
}

/* <width> <height> <unit> at argument i. */
static bool geo_box(struct kv_ctx *c, uint32_t i, struct geo_shape *s)
{
    double w, h;
    if (!geo_number(c, i, "ERR need numeric width", &w) || !geo_number(c, i + 1, "ERR need numeric height", &h))
        return false;
    if (h < 0 || w < 0) {
        kv_reply_err(c, "ERR height or width cannot be negative");
        return false;
    }
    s->width = w;
    s->height = h;
    double conv = geo_unit(c, i + 2);
    if (conv < 0)
        return false;
    s->conversion = conv;
    return true;
}

/* The set at key argument i: *z NULL when absent; false after WRONGTYPE. */
static bool geo_set(struct kv_ctx *c, uint32_t i, struct kv_zset **z)
{
    struct kv_dent *ke = kv_find_arg(c, i);
    if (!kv_type_ok(c, ke, KV_ZSET))
        return false;
    *z = ke ? ((struct kv_obj *)ke->v.p)->ptr : NULL;
    return true;
}

/* Member argument i's position: false when it is not in z. */
static bool member_position(struct kv_ctx *c, struct kv_zset *z, uint32_t i, double xy[2])
{
    struct kv_dent *e = kv_zset_find(c->s, z, c->argv[i], c->len[i]);
    if (!e)
        return false;
    score_position(e->v.d, xy);
    return true;
}

/* ------------------------------------------------------------------ */
/* Commands.                                                           */

/* GEOADD key [NX|XX] [CH] lon lat member [...]: a ZADD of the scores. */
KV_CMD(geoadd)
{
    bool nx = false, xx = false;
    uint32_t first = 2;
    for (; first < c->argc; first++) {
        if (kv_arg_is(c, first, "nx"))
            nx = true;
        else if (kv_arg_is(c, first, "xx"))
            xx = true;
        else if (!kv_arg_is(c, first, "ch"))
            break;
    }
    if ((c->argc - first) % 3 || (nx && xx))
        return kv_reply_err(c, KV_ERR_SYNTAX);
    uint32_t elements = (c->argc - first) / 3, argc = first + elements * 2;
    for (uint32_t i = 0; i < elements; i++) { /* every position checked before anything is built */
        double xy[2];
        if (!geo_lonlat(c, first + i * 3, xy))
            return 0;
    }
    /* ZADD key [options] score member ...: the scores' digits in one block */
    const uint8_t **argv = kv_alloc(c->s, argc * sizeof *argv);
    uint32_t *len = kv_alloc(c->s, argc * sizeof *len);
    char *digits = kv_alloc(c->s, (size_t)elements * 24 + 1);
    int rc = -ENOMEM;
    if (argv && len && digits) {
        static const uint8_t zadd[] = "zadd";
        argv[0] = zadd;
        len[0] = 4;
        for (uint32_t i = 1; i < first; i++) {
            argv[i] = c->argv[i];
            len[i] = c->len[i];
        }
        for (uint32_t i = 0; i < elements; i++) {
            double xy[2];
            bool ok = kv_parse_double(c->argv[first + i * 3], c->len[first + i * 3], &xy[0]) &&
                      kv_parse_double(c->argv[first + i * 3 + 1], c->len[first + i * 3 + 1], &xy[1]);
            RABIA_ASSERT(ok);
            char *d = digits + (size_t)i * 24;
            int n = snprintf(d, 24, "%llu", (unsigned long long)position_score(xy));
            RABIA_ASSERT(n > 0 && n < 24);
            argv[first + i * 2] = (const uint8_t *)d;
            len[first + i * 2] = (uint32_t)n;
            argv[first + i * 2 + 1] = c->argv[first + i * 3 + 2];
            len[first + i * 2 + 1] = c->len[first + i * 3 + 2];
        }
        struct kv_ctx z = *c;
        z.argc = argc;
        z.argv = argv;
        z.len = len;
        rc = kv_cmd_zadd(&z);
    }
    kv_free(c->s, digits);
    kv_free(c->s, len);
    kv_free(c->s, argv);
    return rc;
}

/* A distance as GEODIST and WITHDIST reply it: Redis 7.0.7's
 * fixedpoint_d2string(d, 4), the distance times 10^4 rounded to an integer
 * (llrint: to nearest, ties to even; not what "%.4f" gives on a tie), then
 * the point put in. Never negative, at most half the earth's circumference
 * in feet. */
static int reply_distance(struct kv_ctx *c, double d)
{
    char buf[64];
    int n;
    if (d == 0) {
        n = snprintf(buf, sizeof buf, "0.0000");
    } else {
        long long v = llrint(d * 10000.0);
        RABIA_ASSERT(v >= 0);
        n = snprintf(buf, sizeof buf, "%lld.%04lld", v / 10000, v % 10000);
    }
    return kv_reply_bulk(c, buf, (size_t)n);
}

KV_CMD(geodist)
{
    double to_meter = 1;
    if (c->argc == 5) {
        to_meter = geo_unit(c, 4);
        if (to_meter < 0)
            return 0;
    } else if (c->argc > 5) {
        return kv_reply_err(c, KV_ERR_SYNTAX);
    }
    struct kv_zset *z;
    if (!geo_set(c, 1, &z))
        return 0;
    double a[2], b[2];
    if (!z || !member_position(c, z, 2, a) || !member_position(c, z, 3, b))
        return kv_reply_null(c);
    return reply_distance(c, distance(a[0], a[1], b[0], b[1]) / to_meter);
}

/* A coordinate as Redis's addReplyHumanLongDouble: %.17Lf, trailing zeros
 * dropped. */
static int reply_coord(struct kv_ctx *c, double v)
{
    char buf[64];
    int n = kv_fmt_long_double(buf, (long double)v);
    return kv_reply_bulk(c, buf, (size_t)n);
}

KV_CMD(geopos)
{
    struct kv_zset *z;
    if (!geo_set(c, 1, &z))
        return 0;
    int rc = kv_reply_array(c, c->argc - 2);
    for (uint32_t i = 2; i < c->argc && !rc; i++) {
        double xy[2];
        if (!z || !member_position(c, z, i, xy)) {
            rc = kv_reply_null_array(c);
            continue;
        }
        rc = kv_reply_array(c, 2);
        if (!rc)
            rc = reply_coord(c, xy[0]);
        if (!rc)
            rc = reply_coord(c, xy[1]);
    }
    return rc;
}

KV_CMD(geohash)
{
    static const char alphabet[] = "0123456789bcdefghjkmnpqrstuvwxyz";
    struct kv_zset *z;
    if (!geo_set(c, 1, &z))
        return 0;
    int rc = kv_reply_array(c, c->argc - 2);
    for (uint32_t i = 2; i < c->argc && !rc; i++) {
        double xy[2];
        if (!z || !member_position(c, z, i, xy)) {
            rc = kv_reply_null(c);
            continue;
        }
        /* the standard geohash: latitude over -90..90, not -85..85 */
        struct geo_bits h;
        bool ok = cell_encode((struct geo_range){-180, 180}, (struct geo_range){-90, 90}, xy[0], xy[1], 26, &h);
        RABIA_ASSERT(ok); /* xy is clamped to the valid range */
        char buf[11];
        for (int k = 0; k < 11; k++) /* 52 bits: the eleventh character is taken as zero bits */
            buf[k] = alphabet[k == 10 ? 0 : (h.bits >> (52 - (k + 1) * 5)) & 0x1f];
        rc = kv_reply_bulk(c, buf, sizeof buf);
    }
    return rc;
}

enum {
    GEO_COORDS = 1,    /* GEORADIUS: around lon lat */
    GEO_MEMBER = 2,    /* GEORADIUSBYMEMBER: around a member */
    GEO_NOSTORE = 4,   /* the _RO forms: no STORE / STOREDIST */
    GEO_SEARCH = 8,    /* GEOSEARCH's arguments */
    GEO_SEARCHSTORE = 16,
};

/* Redis's georadiusGeneric: the source set is key argument src. */
static int georadius_generic(struct kv_ctx *c, uint32_t src, int flags)
{
    struct kv_zset *z;
    if (!geo_set(c, src, &z))
        return 0;
    struct geo_shape shape = {.kind = SHAPE_NONE};
    uint32_t base;
    int32_t store = -1; /* the destination's argument */
    bool storedist = false;
    if (flags & GEO_COORDS) {
        base = 6;
        shape.kind = SHAPE_CIRCLE;
        if (!geo_lonlat(c, 2, shape.xy) || !geo_radius(c, 4, &shape))
            return 0;
    } else if (flags & GEO_MEMBER) {
        base = 5;
        if (z) { /* absent: the arguments are not checked, the reply says so */
            shape.kind = SHAPE_CIRCLE;
            if (!member_position(c, z, 2, shape.xy))
                return kv_reply_err(c, "ERR could not decode requested zset member");
            if (!geo_radius(c, 3, &shape))
                return 0;
        }
    } else {
        RABIA_ASSERT(flags & GEO_SEARCH);
        base = 2;
        if (flags & GEO_SEARCHSTORE) {
            base = 3;
            store = 1;
        }
    }
    bool withdist = false, withhash = false, withcoord = false, any = false;
    bool frommember = false, fromloc = false, byradius = false, bybox = false;
    int sort = 0; /* 1 ascending, 2 descending */
    int64_t count = 0;
    for (uint32_t i = base; i < c->argc; i++) {
        uint32_t left = c->argc - i - 1; /* arguments after this one */
        if (kv_arg_is(c, i, "withdist")) {
            withdist = true;
        } else if (kv_arg_is(c, i, "withhash")) {
            withhash = true;
        } else if (kv_arg_is(c, i, "withcoord")) {
            withcoord = true;
        } else if (kv_arg_is(c, i, "any")) {
            any = true;
        } else if (kv_arg_is(c, i, "asc")) {
            sort = 1;
        } else if (kv_arg_is(c, i, "desc")) {
            sort = 2;
        } else if (kv_arg_is(c, i, "count") && left >= 1) {
            if (!kv_arg_i64(c, i + 1, &count))
                return 0;
            if (count <= 0)
                return kv_reply_err(c, "ERR COUNT must be > 0");
            i++;
        } else if ((kv_arg_is(c, i, "store") || kv_arg_is(c, i, "storedist")) && left >= 1 &&
                   !(flags & (GEO_NOSTORE | GEO_SEARCH))) {
            storedist = kv_arg_is(c, i, "storedist");
            store = (int32_t)(i + 1);
            i++;
        } else if (kv_arg_is(c, i, "storedist") && (flags & GEO_SEARCH) && (flags & GEO_SEARCHSTORE)) {
            storedist = true;
        } else if (kv_arg_is(c, i, "frommember") && left >= 1 && (flags & GEO_SEARCH) && !fromloc) {
            if (z && !member_position(c, z, i + 1, shape.xy))
                return kv_reply_err(c, "ERR could not decode requested zset member");
            frommember = true;
            i++;
        } else if (kv_arg_is(c, i, "fromlonlat") && left >= 2 && (flags & GEO_SEARCH) && !frommember) {
            if (!geo_lonlat(c, i + 1, shape.xy))
                return 0;
            fromloc = true;
            i += 2;
        } else if (kv_arg_is(c, i, "byradius") && left >= 2 && (flags & GEO_SEARCH) && !bybox) {
            if (!geo_radius(c, i + 1, &shape))
                return 0;
            shape.kind = SHAPE_CIRCLE;
            byradius = true;
            i += 2;
        } else if (kv_arg_is(c, i, "bybox") && left >= 3 && (flags & GEO_SEARCH) && !byradius) {
            if (!geo_box(c, i + 1, &shape))
                return 0;
            shape.kind = SHAPE_BOX;
            bybox = true;
            i += 3;
        } else {
            return kv_reply_err(c, KV_ERR_SYNTAX);
        }
    }
    if (store >= 0 && (withdist || withhash || withcoord))
        return kv_reply_errf(c, "ERR %s is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
                             (flags & GEO_SEARCHSTORE) ? "GEOSEARCHSTORE" : "STORE option in GEORADIUS");
    /* the command's name as the client spelled it, as Redis prints it */
    if ((flags & GEO_SEARCH) && !(frommember || fromloc))
        return kv_reply_errf(c, "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for %.*s",
                             (int)c->len[0], (const char *)c->argv[0]);
    if ((flags & GEO_SEARCH) && !(byradius || bybox))
        return kv_reply_errf(c, "ERR exactly one of BYRADIUS and BYBOX can be specified for %.*s",
                             (int)c->len[0], (const char *)c->argv[0]);
    if (any && !count)
        return kv_reply_err(c, "ERR the ANY argument requires COUNT argument");
    if (!z) {
        if (store < 0)
            return kv_reply_array(c, 0);
        struct kv_dent *de = kv_find_arg(c, (uint32_t)store);
        if (de)
            kv_delete(c, de);
        return kv_reply_int(c, 0);
    }
    if (count && !sort && !any)
        sort = 1; /* the nearest COUNT */

    struct geo_bits cells[N_CELLS];
    covering_cells(&shape, cells);
    struct geo_arr a = {.s = c->s};
    int rc = search(z, cells, &shape, &a, any ? (uint64_t)count : 0);
    if (rc)
        goto out;
    if (a.n == 0 && store < 0) {
        rc = kv_reply_array(c, 0);
        goto out;
    }
    size_t n = count && (uint64_t)count < a.n ? (size_t)count : a.n;
    if (sort) { /* Redis: qsort when every match is returned, else pqsort up to COUNT */
        bool desc = sort == 2;
        if (n == a.n)
            rc = kv_sort_stable(c->s, a.v, a.n, sizeof *a.v, pt_cmp, &desc);
        else
            kv_sort_partial(a.v, a.n, sizeof *a.v, pt_cmp, &desc, 0, n - 1);
        if (rc)
            goto out;
    }
    if (store < 0) {
        uint32_t opts = (uint32_t)withdist + (uint32_t)withhash + (uint32_t)withcoord;
        rc = kv_reply_array(c, n);
        for (size_t i = 0; i < n && !rc; i++) {
            const struct geo_pt *p = &a.v[i];
            if (opts)
                rc = kv_reply_array(c, opts + 1);
            if (!rc)
                rc = kv_reply_bulk(c, p->e->key, p->e->klen);
            if (!rc && withdist)
                rc = reply_distance(c, p->dist / shape.conversion);
            if (!rc && withhash) /* Redis's (long long)score: these scores are in [0, 2^52] */
                rc = kv_reply_int(c, (int64_t)p->score);
            if (!rc && withcoord) {
                rc = kv_reply_array(c, 2);
                if (!rc)
                    rc = reply_coord(c, p->lon);
                if (!rc)
                    rc = reply_coord(c, p->lat);
            }
        }
        goto out;
    }
    /* the destination: a sorted set of the members, scored by hash or
     * distance (kv_zset_store replaces or deletes the key and replies) */
    struct kv_obj *o = kv_zset_obj_new(c->s);
    if (!o) {
        rc = -ENOMEM;
        goto out;
    }
    struct kv_zset *dz = o->ptr;
    for (size_t i = 0; i < n; i++) {
        const struct geo_pt *p = &a.v[i];
        double score = storedist ? p->dist / shape.conversion : p->score;
        /* the members are distinct (each cell read once, the cells disjoint) */
        RABIA_ASSERT(!kv_zset_find(c->s, dz, p->e->key, p->e->klen));
        if ((rc = kv_zset_insert(c->s, dz, p->e->key, p->e->klen, score))) {
            kv_obj_free(c->s, o);
            goto out;
        }
    }
    rc = kv_zset_store(c, (uint32_t)store, o);
out:
    kv_free(c->s, a.v);
    return rc;
}

KV_CMD(georadius) { return georadius_generic(c, 1, GEO_COORDS); }
KV_CMD(georadius_ro) { return georadius_generic(c, 1, GEO_COORDS | GEO_NOSTORE); }
KV_CMD(georadiusbymember) { return georadius_generic(c, 1, GEO_MEMBER); }
KV_CMD(georadiusbymember_ro) { return georadius_generic(c, 1, GEO_MEMBER | GEO_NOSTORE); }
KV_CMD(geosearch) { return georadius_generic(c, 1, GEO_SEARCH); }
KV_CMD(geosearchstore) { return georadius_generic(c, 2, GEO_SEARCH | GEO_SEARCHSTORE); }
