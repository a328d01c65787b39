/* kv/script_match.c: Lua 5.1's patterns (string.find, match, gmatch, gfind
 * and gsub) for scripts from feature level KV_LEVEL_SCRIPT_MATCH, with
 * their work counted and their depth bounded (kv/README.md "Scripts").
 *
 * Why not the library's own: its matcher (lstrlib.c) runs in C, where the
 * instruction count does not see it, and backtracks without bound:
 * string.find(string.rep('a', 5000), string.rep('a*', 6) .. 'b') visits
 * about 5000^6 / 720 positions, which is every replica held for years,
 * again at every replay of the log. Level 2 charged only the bytes of the
 * arguments. Here each step the matcher takes (a pattern item tried at a
 * position, a character tested against a class, a byte compared) is
 * counted and handed to the run's meter, which stops the run at the
 * instruction bound on every replica at the same point; and a match nests
 * at most KV_MATCH_DEPTH items deep (Lua 5.2's bound and message), where
 * 5.1's recursed until the C stack overflowed.
 *
 * Everything else is 5.1's behaviour: the same results and the same error
 * messages for every subject, pattern and argument (tests/fuzz/fuzz_match.c
 * compares this file with the library on random inputs), including 5.1's
 * reading of the pattern as a C string (a NUL ends it) and its treatment
 * of '^' in gmatch (an ordinary character). Character classes are the C
 * locale's, which is what rabiad runs in: written out here so that no
 * setlocale anywhere can make replicas disagree. */
#define _GNU_SOURCE /* memmem */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "internal.h"

#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)
#define MAX_CAPTURES 32 /* LUA_MAXCAPTURES */
#define L_ESC '%'
#define SPECIALS "^$*+?.([%-"
#define FLUSH_STEPS 4096 /* steps counted between two calls of the meter */

struct match_state {
    const char *src_init, *src_end;
    lua_State *L;
    struct kv_match_meter *meter;
    uint64_t steps; /* not yet handed to the meter */
    int depth_left;
    int level; /* captures open or closed */
    struct {
        const char *init;
        ptrdiff_t len; /* or CAP_UNFINISHED, CAP_POSITION */
    } capture[MAX_CAPTURES];
};

static void ms_init(struct match_state *ms, lua_State *L, struct kv_match_meter *m, const char *s, size_t n)
{
    ms->src_init = s;
    ms->src_end = s + n;
    ms->L = L;
    ms->meter = m;
    ms->steps = 0;
    ms->depth_left = KV_MATCH_DEPTH;
    ms->level = 0;
}

/* Hand what was counted to the meter (which may stop the run: a Lua error,
 * so nothing here holds a resource across a call). */
static void flush_steps(struct match_state *ms)
{
    uint64_t n = ms->steps;
    ms->steps = 0;
    if (n)
        ms->meter->charge(ms->L, ms->meter, n);
}

static inline void count(struct match_state *ms, uint64_t n)
{
    ms->steps += n;
    if (ms->steps >= FLUSH_STEPS)
        flush_steps(ms);
}

/* The C locale's <ctype.h>, for bytes 0..255. */
static bool c_lower(int c) { return c >= 'a' && c <= 'z'; }
static bool c_upper(int c) { return c >= 'A' && c <= 'Z'; }
static bool c_alpha(int c) { return c_lower(c) || c_upper(c); }
static bool c_digit(int c) { return c >= '0' && c <= '9'; }
static bool c_alnum(int c) { return c_alpha(c) || c_digit(c); }
static bool c_space(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static bool c_cntrl(int c) { return c < 32 || c == 127; }
static bool c_punct(int c) { return c > 32 && c < 127 && !c_alnum(c); }
static bool c_xdigit(int c) { return c_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static int c_tolower(int c) { return c_upper(c) ? c + ('a' - 'A') : c; }

static int uc(char c) { return (unsigned char)c; }

/* Where the single-character class at p ends (p points past it). */
static const char *class_end(struct match_state *ms, const char *p)
{
    switch (*p++) {
    case L_ESC:
        if (*p == '\0')
            luaL_error(ms->L, "malformed pattern (ends with '%%')");
        return p + 1;
    case '[':
        if (*p == '^')
            p++;
        do { /* the closing ']': the first character is never it */
            if (*p == '\0')
                luaL_error(ms->L, "malformed pattern (missing ']')");
            if (*(p++) == L_ESC && *p != '\0')
                p++; /* an escape, as in %] */
        } while (*p != ']');
        return p + 1;
    default:
        return p;
    }
}

static bool match_class(int c, int cl)
{
    bool res;
    switch (c_tolower(cl)) {
    case 'a': res = c_alpha(c); break;
    case 'c': res = c_cntrl(c); break;
    case 'd': res = c_digit(c); break;
    case 'l': res = c_lower(c); break;
    case 'p': res = c_punct(c); break;
    case 's': res = c_space(c); break;
    case 'u': res = c_upper(c); break;
    case 'w': res = c_alnum(c); break;
    case 'x': res = c_xdigit(c); break;
    case 'z': res = c == 0; break;
    default: return cl == c;
    }
    return c_lower(cl) ? res : !res;
}

/* p at '[', ec at its ']'. Costs the class's length. */
static bool match_bracket(struct match_state *ms, int c, const char *p, const char *ec)
{
    count(ms, (uint64_t)(ec - p));
    bool sig = true;
    if (*(p + 1) == '^') {
        sig = false;
        p++;
    }
    while (++p < ec) {
        if (*p == L_ESC) {
            p++;
            if (match_class(c, uc(*p)))
                return sig;
        } else if (*(p + 1) == '-' && p + 2 < ec) {
            p += 2;
            if (uc(*(p - 2)) <= c && c <= uc(*p))
                return sig;
        } else if (uc(*p) == c) {
            return sig;
        }
    }
    return !sig;
}

/* Whether the character at s (before src_end) matches the class [p, ep). */
static bool single_match(struct match_state *ms, const char *s, const char *p, const char *ep)
{
    if (s >= ms->src_end)
        return false;
    count(ms, 1);
    int c = uc(*s);
    switch (*p) {
    case '.': return true;
    case L_ESC: return match_class(c, uc(*(p + 1)));
    case '[': return match_bracket(ms, c, p, ep - 1);
    default: return uc(*p) == c;
    }
}

static const char *match(struct match_state *ms, const char *s, const char *p);

static const char *match_balance(struct match_state *ms, const char *s, const char *p)
{
    if (*p == '\0' || *(p + 1) == '\0')
        luaL_error(ms->L, "unbalanced pattern");
    if (s >= ms->src_end || *s != *p)
        return NULL;
    char b = *p, e = *(p + 1);
    int cont = 1;
    const char *from = s;
    while (++s < ms->src_end) {
        if (*s == e) {
            if (--cont == 0) {
                count(ms, (uint64_t)(s - from));
                return s + 1;
            }
        } else if (*s == b) {
            cont++;
        }
    }
    count(ms, (uint64_t)(s - from));
    return NULL; /* the subject ends out of balance */
}

static const char *max_expand(struct match_state *ms, const char *s, const char *p, const char *ep)
{
    ptrdiff_t i = 0; /* the most repetitions */
    while (single_match(ms, s + i, p, ep))
        i++;
    for (; i >= 0; i--) { /* fewer until the rest matches */
        const char *res = match(ms, s + i, ep + 1);
        if (res)
            return res;
    }
    return NULL;
}

static const char *min_expand(struct match_state *ms, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *res = match(ms, s, ep + 1);
        if (res)
            return res;
        if (!single_match(ms, s, p, ep))
            return NULL;
        s++; /* one more repetition */
    }
}

static const char *start_capture(struct match_state *ms, const char *s, const char *p, ptrdiff_t what)
{
    int level = ms->level;
    if (level >= MAX_CAPTURES)
        luaL_error(ms->L, "too many captures");
    ms->capture[level].init = s;
    ms->capture[level].len = what;
    ms->level = level + 1;
    const char *res = match(ms, s, p);
    if (!res)
        ms->level--; /* undone */
    return res;
}

static int capture_to_close(struct match_state *ms)
{
    for (int level = ms->level - 1; level >= 0; level--)
        if (ms->capture[level].len == CAP_UNFINISHED)
            return level;
    return luaL_error(ms->L, "invalid pattern capture");
}

static const char *end_capture(struct match_state *ms, const char *s, const char *p)
{
    int l = capture_to_close(ms);
    ms->capture[l].len = s - ms->capture[l].init;
    const char *res = match(ms, s, p);
    if (!res)
        ms->capture[l].len = CAP_UNFINISHED; /* undone */
    return res;
}

static int check_capture(struct match_state *ms, int l)
{
    l -= '1';
    if (l < 0 || l >= ms->level || ms->capture[l].len == CAP_UNFINISHED)
        return luaL_error(ms->L, "invalid capture index");
    return l;
}

/* %1..%9: the capture's text again. 5.1 compares a position capture as
 * the length it stores (CAP_POSITION, as a size: never enough subject). */
static const char *match_capture(struct match_state *ms, const char *s, int l)
{
    l = check_capture(ms, l);
    size_t len = (size_t)ms->capture[l].len;
    if ((size_t)(ms->src_end - s) < len)
        return NULL;
    count(ms, len / 8); /* a mismatch may be found at the last byte */
    return memcmp(ms->capture[l].init, s, len) == 0 ? s + len : NULL;
}

static const char *do_match(struct match_state *ms, const char *s, const char *p)
{
    for (;;) { /* each turn: the pattern item at p tried at s */
        count(ms, 1);
        switch (*p) {
        case '(':
            if (*(p + 1) == ')')
                return start_capture(ms, s, p + 2, CAP_POSITION);
            return start_capture(ms, s, p + 1, CAP_UNFINISHED);
        case ')':
            return end_capture(ms, s, p + 1);
        case '\0': /* the pattern's end (5.1 stops at a NUL in it) */
            return s;
        case '$':
            if (*(p + 1) == '\0')
                return s == ms->src_end ? s : NULL;
            break; /* an ordinary character */
        case L_ESC:
            if (*(p + 1) == 'b') {
                s = match_balance(ms, s, p + 2);
                if (!s)
                    return NULL;
                p += 4;
                continue;
            }
            if (*(p + 1) == 'f') {
                p += 2;
                if (*p != '[')
                    luaL_error(ms->L, "missing '[' after '%%f' in pattern");
                const char *ep = class_end(ms, p);
                int prev = s == ms->src_init ? 0 : uc(*(s - 1));
                int cur = s < ms->src_end ? uc(*s) : 0; /* 5.1 reads the string's terminating NUL */
                if (match_bracket(ms, prev, p, ep - 1) || !match_bracket(ms, cur, p, ep - 1))
                    return NULL;
                p = ep;
                continue;
            }
            if (c_digit(uc(*(p + 1)))) {
                s = match_capture(ms, s, uc(*(p + 1)));
                if (!s)
                    return NULL;
                p += 2;
                continue;
            }
            break; /* a class such as %a */
        default:
            break;
        }
        /* a single-character class, maybe quantified */
        const char *ep = class_end(ms, p);
        bool m = single_match(ms, s, p, ep);
        switch (*ep) {
        case '?': {
            const char *res;
            if (m && (res = match(ms, s + 1, ep + 1)) != NULL)
                return res;
            p = ep + 1;
            continue;
        }
        case '*':
            return max_expand(ms, s, p, ep);
        case '+':
            return m ? max_expand(ms, s + 1, p, ep) : NULL;
        case '-':
            return min_expand(ms, s, p, ep);
        default:
            if (!m)
                return NULL;
            s++;
            p = ep;
            continue;
        }
    }
}

/* One level deeper into the pattern: 5.1 recursed here without a bound. */
static const char *match(struct match_state *ms, const char *s, const char *p)
{
    if (ms->depth_left-- == 0)
        luaL_error(ms->L, "pattern too complex");
    const char *res = do_match(ms, s, p);
    ms->depth_left++;
    return res;
}

static void push_one_capture(struct match_state *ms, int i, const char *s, const char *e)
{
    if (i >= ms->level) {
        if (i != 0)
            luaL_error(ms->L, "invalid capture index");
        lua_pushlstring(ms->L, s, (size_t)(e - s)); /* the whole match */
        return;
    }
    ptrdiff_t l = ms->capture[i].len;
    if (l == CAP_UNFINISHED)
        luaL_error(ms->L, "unfinished capture");
    if (l == CAP_POSITION)
        lua_pushinteger(ms->L, ms->capture[i].init - ms->src_init + 1);
    else
        lua_pushlstring(ms->L, ms->capture[i].init, (size_t)l);
}

static int push_captures(struct match_state *ms, const char *s, const char *e)
{
    int n = ms->level == 0 && s ? 1 : ms->level;
    luaL_checkstack(ms->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_one_capture(ms, i, s, e);
    return n;
}

static struct kv_match_meter *meter_of(lua_State *L)
{
    struct kv_match_meter *m = lua_touserdata(L, lua_upvalueindex(1));
    RABIA_ASSERT(m != NULL && m->charge != NULL);
    return m;
}

/* 5.1's posrelat: a negative position counts from the end. */
static ptrdiff_t relative_pos(lua_Integer pos, size_t len)
{
    if (pos < 0)
        pos += (lua_Integer)len + 1;
    return pos >= 0 ? (ptrdiff_t)pos : 0;
}

/* The first place p occurs in s[0..l1) (5.1's lmemfind gives the same):
 * glibc's memmem is linear where 5.1's memchr-and-compare loop was not;
 * it counts as reading what precedes the find and the needle. */
static const char *find_plain(struct match_state *ms, const char *s, size_t l1, const char *p, size_t l2)
{
    if (l2 == 0)
        return s;
    if (l2 > l1)
        return NULL;
    const char *at = memmem(s, l1, p, l2);
    count(ms, ((at ? (size_t)(at - s) + l2 : l1) + l2) / 8);
    return at;
}

static int find_or_match(lua_State *L, bool find)
{
    size_t l1, l2;
    const char *s = luaL_checklstring(L, 1, &l1);
    const char *p = luaL_checklstring(L, 2, &l2);
    ptrdiff_t init = relative_pos(luaL_optinteger(L, 3, 1), l1) - 1;
    if (init < 0)
        init = 0;
    else if ((size_t)init > l1)
        init = (ptrdiff_t)l1;
    struct match_state ms;
    ms_init(&ms, L, meter_of(L), s, l1);
    if (find && (lua_toboolean(L, 4) || strpbrk(p, SPECIALS) == NULL)) {
        const char *at = find_plain(&ms, s + init, l1 - (size_t)init, p, l2);
        flush_steps(&ms);
        if (at) {
            lua_pushinteger(L, at - s + 1);
            lua_pushinteger(L, (lua_Integer)(at - s + (ptrdiff_t)l2));
            return 2;
        }
    } else {
        bool anchor = *p == '^';
        p += anchor;
        const char *s1 = s + init;
        do {
            ms.level = 0;
            const char *res = match(&ms, s1, p);
            if (res) {
                flush_steps(&ms);
                if (find) {
                    lua_pushinteger(L, s1 - s + 1);
                    lua_pushinteger(L, res - s);
                    return push_captures(&ms, NULL, NULL) + 2;
                }
                return push_captures(&ms, s1, res);
            }
        } while (s1++ < ms.src_end && !anchor);
        flush_steps(&ms);
    }
    lua_pushnil(L);
    return 1;
}

static int str_find(lua_State *L)
{
    return find_or_match(L, true);
}

static int str_match(lua_State *L)
{
    return find_or_match(L, false);
}

/* gmatch's iterator: upvalues the meter, the subject, the pattern, where
 * the next search starts. */
static int gmatch_next(lua_State *L)
{
    size_t ls;
    const char *s = lua_tolstring(L, lua_upvalueindex(2), &ls);
    const char *p = lua_tostring(L, lua_upvalueindex(3));
    struct match_state ms;
    ms_init(&ms, L, meter_of(L), s, ls);
    for (const char *src = s + (size_t)lua_tointeger(L, lua_upvalueindex(4)); src <= ms.src_end; src++) {
        ms.level = 0;
        const char *e = match(&ms, src, p);
        if (e) {
            flush_steps(&ms);
            lua_Integer next = e - s;
            if (e == src)
                next++; /* an empty match: on by one at least */
            lua_pushinteger(L, next);
            lua_replace(L, lua_upvalueindex(4));
            return push_captures(&ms, src, e);
        }
    }
    flush_steps(&ms);
    return 0;
}

static int str_gmatch(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, gmatch_next, 4);
    return 1;
}

/* gsub's replacement string: %0..%9 captures, %x the character x. */
static void add_replacement(struct match_state *ms, luaL_Buffer *b, const char *s, const char *e)
{
    size_t l;
    const char *news = lua_tolstring(ms->L, 3, &l);
    count(ms, l / 8);
    for (size_t i = 0; i < l; i++) {
        if (news[i] != L_ESC) {
            luaL_addchar(b, news[i]);
            continue;
        }
        i++; /* the escaped character (5.1 reads the terminating NUL after a final '%') */
        if (!c_digit(uc(news[i]))) {
            luaL_addchar(b, news[i]);
        } else if (news[i] == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else {
            push_one_capture(ms, news[i] - '1', s, e);
            luaL_addvalue(b);
        }
    }
}

static void add_value(struct match_state *ms, luaL_Buffer *b, const char *s, const char *e)
{
    lua_State *L = ms->L;
    switch (lua_type(L, 3)) {
    case LUA_TNUMBER:
    case LUA_TSTRING:
        add_replacement(ms, b, s, e);
        return;
    case LUA_TFUNCTION: {
        flush_steps(ms); /* counted before the function's own instructions */
        lua_pushvalue(L, 3);
        int n = push_captures(ms, s, e);
        lua_call(L, n, 1);
        break;
    }
    case LUA_TTABLE:
        push_one_capture(ms, 0, s, e);
        lua_gettable(L, 3);
        break;
    default:
        RABIA_ASSERT(!"gsub checked the replacement's type");
    }
    if (!lua_toboolean(L, -1)) { /* nil or false: the match stays */
        lua_pop(L, 1);
        lua_pushlstring(L, s, (size_t)(e - s));
    } else if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    }
    luaL_addvalue(b);
}

static int str_gsub(lua_State *L)
{
    size_t srcl;
    const char *src = luaL_checklstring(L, 1, &srcl);
    const char *p = luaL_checkstring(L, 2);
    int tr = lua_type(L, 3);
    int max_s = luaL_optint(L, 4, (int)(srcl + 1));
    bool anchor = *p == '^';
    p += anchor;
    luaL_argcheck(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
                  "string/function/table expected");
    struct match_state ms;
    ms_init(&ms, L, meter_of(L), src, srcl);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int n = 0;
    while (n < max_s) {
        ms.level = 0;
        const char *e = match(&ms, src, p);
        if (e) {
            n++;
            add_value(&ms, &b, src, e);
        }
        if (e && e > src) /* a non-empty match: go past it */
            src = e;
        else if (src < ms.src_end)
            luaL_addchar(&b, *src++);
        else
            break;
        if (anchor)
            break;
    }
    flush_steps(&ms);
    luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
    luaL_pushresult(&b);
    lua_pushinteger(L, n);
    return 2;
}

void kv_match_open(lua_State *L, struct kv_match_meter *m)
{
    RABIA_ASSERT(lua_istable(L, -1) && m != NULL && m->charge != NULL);
    static const struct {
        const char *name;
        lua_CFunction fn;
    } fns[] = {{"find", str_find},   {"match", str_match}, {"gmatch", str_gmatch},
               {"gfind", str_gmatch}, {"gsub", str_gsub}};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        lua_pushlightuserdata(L, m);
        lua_pushcclosure(L, fns[i].fn, 1);
        lua_setfield(L, -2, fns[i].name);
    }
}
