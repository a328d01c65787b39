/* kv/util.c: numbers as Redis parses and prints them, argument names,
 * glob patterns. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Redis's string2ll: an optional '-', no '+', no leading zeros, no
 * spaces, within int64. */
bool kv_parse_i64(const uint8_t *p, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return false;
    if (n == 1 && p[0] == '0') {
        *out = 0;
        return true;
    }
    if (p[0] == '-') {
        neg = true;
        if (++i == n)
            return false;
    }
    if (p[i] < '1' || p[i] > '9')
        return false;
    /* at most 18 digits cannot overflow: the check starts at the 19th (the
     * RESP front end parses four short lengths per SET with this) */
    for (size_t k = 0; i < n; i++, k++) {
        uint32_t d = (uint32_t)p[i] - '0';
        if (d > 9)
            return false;
        if (k >= 18 && v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v;
    }
    return true;
}

bool rabia_kv_parse_int(const uint8_t *p, size_t n, int64_t *out)
{
    return kv_parse_i64(p, n, out);
}

/* strtod / strtold over a bounded copy: Redis refuses empty strings,
 * leading spaces, trailing bytes and NaN (and accepts "inf" in any case). */
static bool to_cstr(const uint8_t *p, size_t n, char *buf, size_t cap)
{
    if (n == 0 || n >= cap || p[0] == ' ' || p[0] == '\t' || p[0] == '\n' || p[0] == '\r' ||
        p[0] == '\v' || p[0] == '\f')
        return false;
    memcpy(buf, p, n);
    buf[n] = 0;
    return memchr(buf, 0, n) == NULL;
}

bool kv_parse_double(const uint8_t *p, size_t n, double *v)
{
    char buf[320];
    if (!to_cstr(p, n, buf, sizeof buf))
        return false;
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (*end || isnan(d) || (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL || fpclassify(d) == FP_ZERO)))
        return false;
    *v = d;
    return true;
}

bool kv_parse_long_double(const uint8_t *p, size_t n, long double *v)
{
    char buf[320];
    if (!to_cstr(p, n, buf, sizeof buf))
        return false;
    char *end;
    errno = 0;
    long double d = strtold(buf, &end);
    if (*end || isnan(d) || (errno == ERANGE && (d == HUGE_VALL || d == -HUGE_VALL || fpclassify(d) == FP_ZERO)))
        return false;
    *v = d;
    return true;
}

bool kv_arg_i64(struct kv_ctx *c, uint32_t i, int64_t *v)
{
    RABIA_ASSERT(i < c->argc);
    if (kv_parse_i64(c->argv[i], c->len[i], v))
        return true;
    kv_reply_err(c, KV_ERR_NOTINT);
    return false;
}

bool kv_rand_count_args(struct kv_ctx *c, const char *with, int64_t *count, bool *withp)
{
    RABIA_ASSERT(c->argc >= 3);
    if (!kv_arg_i64(c, 2, count))
        return false;
    if (*count == INT64_MIN) {
        kv_reply_err(c, "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
        return false;
    }
    if (c->argc > 4 || (c->argc == 4 && !kv_arg_is(c, 3, with))) {
        kv_reply_err(c, KV_ERR_SYNTAX);
        return false;
    }
    *withp = c->argc == 4;
    if (*withp && (*count < -(INT64_MAX / 2) || *count > INT64_MAX / 2)) {
        kv_reply_err(c, "ERR value is out of range");
        return false;
    }
    return true;
}

bool kv_arg_double(struct kv_ctx *c, uint32_t i, double *v)
{
    RABIA_ASSERT(i < c->argc);
    if (kv_parse_double(c->argv[i], c->len[i], v))
        return true;
    kv_reply_err(c, KV_ERR_NOTFLOAT);
    return false;
}

int kv_fmt_i64(char *buf, int64_t v)
{
    return snprintf(buf, 64, "%" PRId64, v);
}

/* addReplyDouble in Redis 7.0: "%.17g", and inf / -inf. */
int kv_fmt_double(char *buf, double d)
{
    if (isinf(d))
        return snprintf(buf, 64, "%s", d > 0 ? "inf" : "-inf");
    return snprintf(buf, 64, "%.17g", d);
}

/* ld2string(LD_STR_HUMAN) in Redis 7.0: "%.17Lf" without trailing zeros
 * (and without a trailing '.'), "-0" printed as "0"; "inf" / "-inf".
 * Returns the length, or 0 when buf (cap bytes) is too small. */
static size_t ld_human(char *buf, size_t cap, long double d)
{
    int n = isinf(d) ? snprintf(buf, cap, "%s", d > 0 ? "inf" : "-inf")
                     : snprintf(buf, cap, "%.17Lf", d);
    if (n <= 0 || (size_t)n >= cap)
        return 0;
    if (!isinf(d) && strchr(buf, '.')) {
        while (buf[n - 1] == '0')
            n--;
        if (buf[n - 1] == '.')
            n--;
        buf[n] = 0;
    }
    if (n == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        buf[1] = 0;
        n = 1;
    }
    return (size_t)n;
}

int kv_fmt_long_double(char *buf, long double d)
{
    size_t n = ld_human(buf, 64, d);
    if (n == 0) /* too long for the human form in 64 bytes: %.17Lg */
        return snprintf(buf, 64, "%.17Lg", d);
    return (int)n;
}

/* Redis formats into MAX_LONG_DOUBLE_CHARS (5 KiB), where every finite
 * long double fits (at most 4933 integer digits + '.' + 17 + sign): 1e300
 * is replied with all its 301 digits, as INCRBYFLOAT stores it. */
#define LD_MAX_CHARS KV_LD_MAX_CHARS

size_t kv_fmt_long_double_human(char *buf, long double d)
{
    size_t n = ld_human(buf, LD_MAX_CHARS, d);
    RABIA_ASSERT(n > 0);
    return n;
}

int kv_reply_long_double(struct kv_ctx *c, long double d)
{
    char buf[LD_MAX_CHARS];
    size_t n = kv_fmt_long_double_human(buf, d);
    return kv_reply_bulk(c, buf, n);
}

bool kv_eq(const uint8_t *p, size_t n, const char *name)
{
    size_t i = 0;
    for (; i < n; i++) {
        uint8_t ch = p[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (uint8_t)(ch + ('a' - 'A'));
        if (!name[i] || ch != (uint8_t)name[i])
            return false;
    }
    return name[i] == 0;
}

bool kv_arg_is(const struct kv_ctx *c, uint32_t i, const char *name)
{
    return i < c->argc && kv_eq(c->argv[i], c->len[i], name);
}

/* Glob matching: Redis's stringmatchlen, case-sensitive. */

/* Does the one-byte pattern element at p (n > 0 bytes left) match c?
 * *adv = the element's length in the pattern. */
static bool glob_one(const uint8_t *p, size_t n, uint8_t c, size_t *adv)
{
    if (p[0] == '?') {
        *adv = 1;
        return true;
    }
    if (p[0] == '\\' && n >= 2) {
        *adv = 2;
        return p[1] == c;
    }
    if (p[0] != '[') {
        *adv = 1;
        return p[0] == c;
    }
    size_t i = 1;
    bool neg = false, match = false;
    if (i < n && p[i] == '^') {
        neg = true;
        i++;
    }
    for (;;) {
        if (i >= n) /* unterminated: the set runs to the pattern's end */
            break;
        if (p[i] == '\\' && n - i >= 2) {
            if (p[i + 1] == c)
                match = true;
            i += 2;
        } else if (p[i] == ']') {
            i++;
            break;
        } else if (n - i >= 3 && p[i + 1] == '-') {
            uint8_t lo = p[i], hi = p[i + 2];
            if (lo > hi) {
                uint8_t t = lo;
                lo = hi;
                hi = t;
            }
            if (c >= lo && c <= hi)
                match = true;
            i += 3;
        } else {
            if (p[i] == c)
                match = true;
            i++;
        }
    }
    *adv = i;
    return neg ? !match : match;
}

/* 1 match, 0 not, -1 more than max_steps turns of the loop. Backtracking
 * to the last '*' makes the worst case O(pattern x string): "*a..ab"
 * against "a..ac", 100,000 bytes each, is 10^10 steps. */
static int glob_run(const uint8_t *p, size_t pl, const uint8_t *s, size_t sl, uint64_t max_steps)
{
    size_t pi = 0, si = 0;
    size_t star_p = SIZE_MAX, star_s = 0; /* where to resume after the last '*' */
    uint64_t steps = 0;
    while (si < sl) {
        if (++steps > max_steps)
            return -1;
        if (pi < pl) {
            size_t adv;
            if (p[pi] == '*') {
                star_p = ++pi;
                star_s = si;
                continue;
            }
            if (glob_one(p + pi, pl - pi, s[si], &adv)) {
                pi += adv;
                si++;
                continue;
            }
        }
        if (star_p == SIZE_MAX)
            return 0;
        pi = star_p; /* let the last '*' absorb one more byte */
        si = ++star_s;
    }
    while (pi < pl && p[pi] == '*')
        pi++;
    return pi == pl;
}

bool kv_glob(const uint8_t *p, size_t pl, const uint8_t *s, size_t sl)
{
    return glob_run(p, pl, s, sl, UINT64_MAX) == 1;
}

int rabia_kv_glob_match(const uint8_t *p, size_t pl, const uint8_t *s, size_t sl)
{
    return kv_glob(p, pl, s, sl);
}

int rabia_kv_glob_match_limited(const uint8_t *p, size_t pl, const uint8_t *s, size_t sl, uint64_t max_steps)
{
    return glob_run(p, pl, s, sl, max_steps);
}

/* Redis 7.0's getTimeoutFromObjectOrReply in seconds: (long long)(t *
 * 1000) must not be negative. A product beyond long long converts to
 * LLONG_MIN on the x86 Redis (inf and 1e20 read as negative there), so
 * it is refused the same way. The waiting itself is the front end's. */
bool kv_arg_timeout(struct kv_ctx *c, uint32_t i)
{
    long double t;
    if (!kv_parse_long_double(c->argv[i], c->len[i], &t))
        return kv_reply_err(c, "ERR timeout is not a float or out of range"), false;
    long double ms = t * 1000.0L;
    if (!(ms > -1.0L && ms < 0x1p63L))
        return kv_reply_err(c, "ERR timeout is negative"), false;
    return true;
}

/* [B]LMPOP / [B]ZMPOP [timeout] numkeys key... WHERE [COUNT count]
 * (Redis 7.0's lmpopGenericCommand and zmpopGenericCommand): numkeys is
 * argument `at`, the keys follow it, WHERE is w0 (*which 0) or w1 (1),
 * *count 1 without COUNT. Redis's order of checks and texts: numkeys (an
 * integer of at least 1), WHERE's place and word, the options, then a
 * blocking form's timeout (argument 1). false after an error reply. */
bool kv_mpop_args(struct kv_ctx *c, uint32_t at, const char *w0, const char *w1, uint32_t *nkeys, int *which,
                  int64_t *count)
{
    int64_t nk, n;
    if (!kv_parse_i64(c->argv[at], c->len[at], &nk) || nk < 1)
        return kv_reply_err(c, "ERR numkeys should be greater than 0"), false;
    if (nk >= (int64_t)(c->argc - at - 1)) /* WHERE would be at at + 1 + numkeys: past the end */
        return kv_reply_err(c, KV_ERR_SYNTAX), false;
    uint32_t wi = at + 1 + (uint32_t)nk;
    if (kv_arg_is(c, wi, w0))
        *which = 0;
    else if (kv_arg_is(c, wi, w1))
        *which = 1;
    else
        return kv_reply_err(c, KV_ERR_SYNTAX), false;
    *count = -1;
    for (uint32_t j = wi + 1; j < c->argc; j++) {
        if (*count == -1 && kv_arg_is(c, j, "count") && j + 1 < c->argc) {
            j++;
            if (!kv_parse_i64(c->argv[j], c->len[j], &n) || n < 1)
                return kv_reply_err(c, "ERR count should be greater than 0"), false;
            *count = n;
        } else {
            return kv_reply_err(c, KV_ERR_SYNTAX), false;
        }
    }
    if (*count == -1)
        *count = 1;
    if (at == 2 && !kv_arg_timeout(c, 1))
        return false;
    *nkeys = (uint32_t)nk;
    return true;
}
