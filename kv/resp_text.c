/* kv/resp_text.c: checking and printing RESP2 replies (rabia-cli). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Decimal digits only (leading zeros allowed), within u64. */
static bool str_to_u64(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static int put_cstr(struct rabia_buf *out, const char *s)
{
    return rabia_buf_append(out, s, strlen(s));
}

/* Parse "<int>\r\n" at p[*i]: 0, -EAGAIN (no CRLF yet) or -EINVAL. */
static int resp_read_int(const uint8_t *p, size_t len, size_t *i, int64_t *v)
{
    size_t j = *i;
    while (j < len && p[j] != '\r')
        j++;
    if (j + 1 >= len)
        return -EAGAIN;
    if (p[j + 1] != '\n')
        return -EINVAL;
    const uint8_t *s = p + *i;
    size_t n = j - *i;
    /* Accept "-1" and non-negative numbers, leading zeros included. */
    if (n >= 1 && s[0] == '-') {
        uint64_t u;
        if (!str_to_u64(s + 1, n - 1, &u) || u > (uint64_t)INT64_MAX + 1)
            return -EINVAL;
        *v = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    } else {
        uint64_t u;
        if (!str_to_u64(s, n, &u) || u > (uint64_t)INT64_MAX)
            return -EINVAL;
        *v = (int64_t)u;
    }
    *i = j + 2;
    return 0;
}

/* A simple line's end: the index just past its CRLF. */
static int resp_skip_line(const uint8_t *p, size_t len, size_t *i)
{
    size_t j = *i;
    while (j < len && p[j] != '\r' && p[j] != '\n')
        j++;
    if (j + 1 >= len)
        return -EAGAIN;
    if (p[j] != '\r' || p[j + 1] != '\n')
        return -EINVAL;
    *i = j + 2;
    return 0;
}

int rabia_kv_resp_check(const uint8_t *p, size_t len, size_t *used)
{
    uint64_t pending = 1;
    size_t i = 0;
    while (pending) {
        int64_t v;
        int rc;
        if (i >= len)
            return -EAGAIN;
        uint8_t t = p[i++];
        pending--;
        switch (t) {
        case '+':
        case '-':
            if ((rc = resp_skip_line(p, len, &i)))
                return rc;
            break;
        case ':':
            if ((rc = resp_read_int(p, len, &i, &v)))
                return rc;
            break;
        case '$':
            if ((rc = resp_read_int(p, len, &i, &v)))
                return rc;
            if (v < -1)
                return -EINVAL;
            if (v >= 0) {
                if ((uint64_t)v > SIZE_MAX - 2 || len - i < (size_t)v + 2)
                    return (uint64_t)v > SIZE_MAX - 2 ? -EINVAL : -EAGAIN;
                if (p[i + (size_t)v] != '\r' || p[i + (size_t)v + 1] != '\n')
                    return -EINVAL;
                i += (size_t)v + 2;
            }
            break;
        case '*':
            if ((rc = resp_read_int(p, len, &i, &v)))
                return rc;
            if (v < -1)
                return -EINVAL;
            if (v > 0) {
                if ((uint64_t)v > UINT64_MAX - pending)
                    return -EINVAL;
                pending += (uint64_t)v;
            }
            break;
        default:
            return -EINVAL;
        }
    }
    *used = i;
    return 0;
}

static int fmt_quoted(struct rabia_buf *out, const uint8_t *s, size_t n)
{
    int rc = put_cstr(out, "\"");
    for (size_t i = 0; !rc && i < n; i++) {
        char e[8];
        uint8_t ch = s[i];
        switch (ch) {
        case '\\': rc = put_cstr(out, "\\\\"); break;
        case '"': rc = put_cstr(out, "\\\""); break;
        case '\n': rc = put_cstr(out, "\\n"); break;
        case '\r': rc = put_cstr(out, "\\r"); break;
        case '\t': rc = put_cstr(out, "\\t"); break;
        case '\a': rc = put_cstr(out, "\\a"); break;
        case '\b': rc = put_cstr(out, "\\b"); break;
        default:
            if (ch >= 0x20 && ch < 0x7f) {
                rc = rabia_buf_put_u8(out, ch);
            } else {
                snprintf(e, sizeof e, "\\x%02x", ch);
                rc = put_cstr(out, e);
            }
        }
    }
    return rc ? rc : put_cstr(out, "\"");
}

/* Format the value at p[*i] (already checked by rabia_kv_resp_check). */
static int fmt_value(struct rabia_buf *out, const uint8_t *p, size_t len, size_t *i,
                     size_t indent, int depth)
{
    int64_t v;
    int rc;
    size_t s;
    uint8_t t = p[(*i)++];
    if (depth > 64)
        return -EINVAL;
    switch (t) {
    case '+':
    case '-':
        s = *i;
        if ((rc = resp_skip_line(p, len, i)))
            return rc;
        if (t == '-' && (rc = put_cstr(out, "(error) ")))
            return rc;
        if ((rc = rabia_buf_append(out, p + s, *i - s - 2)))
            return rc;
        return put_cstr(out, "\n");
    case ':': {
        char num[40];
        if ((rc = resp_read_int(p, len, i, &v)))
            return rc;
        snprintf(num, sizeof num, "(integer) %" PRId64 "\n", v);
        return put_cstr(out, num);
    }
    case '$':
        if ((rc = resp_read_int(p, len, i, &v)))
            return rc;
        if (v < 0)
            return put_cstr(out, "(nil)\n");
        s = *i;
        *i += (size_t)v + 2;
        if ((rc = fmt_quoted(out, p + s, (size_t)v)))
            return rc;
        return put_cstr(out, "\n");
    case '*': {
        if ((rc = resp_read_int(p, len, i, &v)))
            return rc;
        if (v < 0)
            return put_cstr(out, "(nil)\n");
        if (v == 0)
            return put_cstr(out, "(empty array)\n");
        char num[32];
        int width = snprintf(num, sizeof num, "%" PRId64, v);
        for (int64_t k = 0; k < v; k++) {
            if (k > 0)
                for (size_t j = 0; j < indent; j++)
                    if ((rc = put_cstr(out, " ")))
                        return rc;
            int n = snprintf(num, sizeof num, "%*" PRId64 ") ", width, k + 1);
            if ((rc = put_cstr(out, num)))
                return rc;
            if ((rc = fmt_value(out, p, len, i, indent + (size_t)n, depth + 1)))
                return rc;
        }
        return 0;
    }
    }
    return -EINVAL;
}

int rabia_kv_resp_format(struct rabia_buf *out, const uint8_t *p, size_t len)
{
    size_t used, i = 0;
    int rc = rabia_kv_resp_check(p, len, &used);
    if (rc)
        return rc == -EAGAIN ? -EINVAL : rc;
    size_t at = out->len;
    rc = fmt_value(out, p, used, &i, 0, 0);
    if (rc)
        out->len = at;
    return rc;
}
