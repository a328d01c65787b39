/* kv/script_lua.c: running one script (kv/script.c has the cache and the
 * commands): a fresh Lua 5.1 state per run with Redis's globals (opened as
 * the script names them, read-only), redis.call into the store, Redis's
 * conversions of replies both ways and of errors, and the bounds that stop
 * a run at the same point on every replica (kv/README.md "Scripts"). */
#include <lauxlib.h>
#include <lua-bitop.h>
#include <lua-cjson.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define HOOK_EVERY 10000 /* instructions between two calls of the count hook */
#define CALL_INSNS 100   /* what a redis.call counts as, plus one per 64 bytes of its reply */
#define REPLY_DEPTH 1000 /* nesting of a script's reply (a table holding itself ends here) */

/* ------------------------------------------------------------------ */
/* One run.                                                            */

struct run {
    struct kv_store *s;
    uint32_t dbi;       /* the script's database: SELECT inside changes it */
    bool no_writes;     /* EVAL_RO, or the shebang's no-writes flag */
    bool over;          /* the instruction bound was passed */
    bool oom;           /* the heap bound refused an allocation (the same on every replica) */
    int enomem;         /* -ENOMEM: the store or the machine ran out of memory, the apply fails (kv/internal.h) */
    uint64_t insns;
    bool count_work;    /* feature level KV_LEVEL_SCRIPT_WORK: allocations and library loops count (add_work) */
    bool count_c_work;  /* feature level KV_LEVEL_SCRIPT_C_WORK: patterns (script_match.c, charging meter), commands' keys */
    bool arena;         /* feature level KV_LEVEL_SCRIPT_HEAP: memory from script_heap.c; coroutines and number strings counted */
    struct kv_match_meter meter;
    /* the library's, from level KV_LEVEL_SCRIPT_C_WORK (cjson_decode_counted, cjson_encode_checked) */
    lua_CFunction cjson_decode, cjson_encode;
    lua_State *L;       /* set once the state exists (the allocator may stop the run) */
    size_t heap;
    uint32_t next_id;   /* tostring's names for tables and functions */
    uint32_t opened;    /* the libraries opened so far (enum lib bits) */
    uint64_t rand;      /* math.random's state */
    struct rabia_buf reply; /* a command's reply */
    struct rabia_buf nums;  /* numbers given to redis.call, as text */
};

static struct run *run_of(lua_State *L)
{
    void *ud;
    (void)lua_getallocf(L, &ud);
    return ud;
}

static void run_hook(lua_State *L, lua_Debug *ar);

#define STR2(x) #x
#define STR(x) STR2(x)
#define STOPPED_TEXT                                                                                             \
    "ERR script stopped after " STR(KV_SCRIPT_MAX_INSNS) " Lua instructions: every replica stops a script at "  \
                                                         "this bound, at the same point; split the work into "  \
                                                         "shorter scripts"

static void *run_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct run *r = ud;
    bool spent = false;
    if (nsize == 0) {
        if (r->arena)
            (void)kv_script_heap_realloc(ptr, osize, 0, &spent);
        else
            free(ptr);
        r->heap -= osize;
        return NULL;
    }
    if (nsize > osize && r->heap - osize + nsize > KV_SCRIPT_MAX_HEAP) {
        r->oom = true;
        return NULL;
    }
    if (nsize > osize && r->count_work && r->L) {
        /* the bytes count as work: a new string of n bytes is n bytes
         * copied, whatever the instructions that asked for it */
        r->insns += (nsize - osize + KV_SCRIPT_ALLOC_BYTES - 1) / KV_SCRIPT_ALLOC_BYTES;
        if (r->insns > KV_SCRIPT_MAX_INSNS && !r->over) {
            /* refuse this one (Lua raises a memory error at a safe point)
             * and let the hook raise at every instruction from now on, as
             * when the count passes the bound there */
            r->over = true;
            lua_sethook(r->L, run_hook, LUA_MASKCOUNT, 1);
            return NULL;
        }
    }
    void *p = r->arena ? kv_script_heap_realloc(ptr, osize, nsize, &spent) : realloc(ptr, nsize);
    if (!p && ptr && nsize <= osize)
        p = ptr; /* a shrink cannot fail (Lua 5.1 counts on it): the block stays as it is */
    if (p)
        r->heap = r->heap - osize + nsize;
    else if (spent) /* the arena's room: the same request on every replica */
        r->oom = true;
    else /* the machine's memory, not the bound: not the same on every replica */
        r->enomem = -ENOMEM;
    return p;
}

/* The count is past the bound: raise the stop error, and from now on at
 * every instruction (a pcall loop cannot outlast it). Does not return. */
static void stop_run(lua_State *L, struct run *r)
{
    if (!r->over) {
        r->over = true;
        lua_sethook(L, run_hook, LUA_MASKCOUNT, 1);
    }
    lua_newtable(L);
    lua_pushstring(L, STOPPED_TEXT);
    lua_setfield(L, -2, "err");
    lua_error(L);
}

static void run_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct run *r = run_of(L);
    /* the count this thread's hook was set with: HOOK_EVERY, or for a
     * coroutine from level KV_LEVEL_SCRIPT_HEAP KV_SCRIPT_CORO_EVERY (each
     * thread counts down on its own, so one that ended within HOOK_EVERY
     * was never counted: 1e9 instructions in short coroutines ran 60x the
     * bound's time, found by review); 1 once over */
    r->insns += r->over ? 1 : (uint64_t)lua_gethookcount(L);
    if (r->insns > KV_SCRIPT_MAX_INSNS)
        stop_run(L, r);
}

/* Library functions whose loops in C take time in the size of their
 * arguments, where the instruction count sees one call (table.insert and
 * table.remove at the front shift every element: 40,000 inserts at index 1
 * held the store 12.8 s): from feature level KV_LEVEL_SCRIPT_WORK each
 * call adds what it visits (call_cost). counted_call's upvalue 1: the
 * library's function; upvalue 2: enum charged_kind. */
enum charged_kind {
    CHARGE_INSERT, CHARGE_REMOVE, CHARGE_LEN, CHARGE_SORT, CHARGE_STRINGS, CHARGE_HEAP, CHARGE_PATTERN,
    CHARGE_DIGITS, /* a string's bytes, each one: strtod reads them (10 MB took 20-40 ms here) */
};
#define KV_SCRIPT_ELEM_INSNS 4
#define KV_SCRIPT_PATTERN_DEPTH 200 /* Lua 5.2's MAXCCALLS for its matcher */

/* Add n to the run's count; past the bound, stop it (does not return). */
static void add_work(lua_State *L, struct run *r, uint64_t n)
{
    r->insns += n;
    if (r->insns > KV_SCRIPT_MAX_INSNS)
        stop_run(L, r);
}

/* What a call of kind k costs beyond its one instruction: the elements its
 * loop visits (insert and remove: those after pos, so appending and
 * removing the last cost nothing; maxn: all; sort: n log n), the bytes of
 * its string arguments (the string library reads them: s:sub(1, -2) of a
 * large string copies it even when the result exists already, and then
 * allocates nothing), the heap a collection or a step visits (100 full
 * collections of a million tables took 1.7 s; "count" looks at nothing). */
static uint64_t call_cost(lua_State *L, const struct run *r, int k)
{
    if (k == CHARGE_HEAP)
        return strcmp(luaL_optstring(L, 1, "collect"), "count") ? r->heap / KV_SCRIPT_ALLOC_BYTES : 0;
    if (k == CHARGE_STRINGS || k == CHARGE_PATTERN || k == CHARGE_DIGITS) {
        uint64_t bytes = 0;
        for (int i = 1, top = lua_gettop(L); i <= top; i++)
            if (lua_type(L, i) == LUA_TSTRING)
                bytes += lua_objlen(L, i);
        return k == CHARGE_DIGITS ? bytes : bytes / KV_SCRIPT_ALLOC_BYTES;
    }
    if (lua_type(L, 1) != LUA_TTABLE)
        return 0; /* the library's function refuses it */
    uint64_t n = (uint64_t)lua_objlen(L, 1), cost = 0;
    lua_Number pos;
    switch (k) {
    case CHARGE_INSERT: /* table.insert(t, [pos,] v) */
        pos = lua_gettop(L) == 3 && lua_isnumber(L, 2) ? lua_tonumber(L, 2) : (lua_Number)n + 1;
        cost = pos >= 1 && pos <= (lua_Number)n ? n + 1 - (uint64_t)pos : 0;
        break;
    case CHARGE_REMOVE: /* table.remove(t, [pos]), the last by default */
        pos = lua_isnumber(L, 2) ? lua_tonumber(L, 2) : (lua_Number)n;
        cost = pos >= 1 && pos <= (lua_Number)n ? n - (uint64_t)pos : 0;
        break;
    case CHARGE_LEN:
        cost = n;
        break;
    default: /* CHARGE_SORT */
        for (uint64_t m = n; m > 1; m >>= 1)
            cost += n;
        break;
    }
    return cost * KV_SCRIPT_ELEM_INSNS;
}

/* Lua 5.1's matcher recurses once per capture and quantified item it
 * passes, with no bound: string.find(string.rep('a', 3e5),
 * string.rep('a?', 3e5)) overflowed the C stack and killed the process,
 * on every replica and again at every replay. A pattern with more of them
 * than Lua 5.2's matcher allows in depth (200) is refused with 5.2's
 * message (find with plain = true matches no pattern). */
static void check_pattern(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING || (lua_gettop(L) >= 4 && lua_toboolean(L, 4)))
        return;
    size_t n;
    const char *p = lua_tolstring(L, 2, &n);
    uint32_t depth = 0;
    for (size_t i = 0; i < n; i++)
        depth += p[i] == '(' || p[i] == ')' || p[i] == '?' || p[i] == '*' || p[i] == '+' || p[i] == '-';
    if (depth > KV_SCRIPT_PATTERN_DEPTH)
        luaL_error(L, "pattern too complex");
}

/* The meter of script_match.c's patterns: a step as an instruction. */
static void match_charge(lua_State *L, struct kv_match_meter *m, uint64_t steps)
{
    (void)m;
    add_work(L, run_of(L), steps);
}

static int counted_call(lua_State *L)
{
    struct run *r = run_of(L);
    if (r->count_work) {
        int k = (int)lua_tointeger(L, lua_upvalueindex(2));
        add_work(L, r, call_cost(L, r, k));
        if (k == CHARGE_PATTERN)
            check_pattern(L);
    }
    /* the library's function in this call's frame, not through lua_call:
     * its errors then name it and the script's line as Redis's do ("bad
     * argument #1 to 'insert'"); none of the wrapped ones has upvalues */
    lua_CFunction fn = lua_tocfunction(L, lua_upvalueindex(1));
    RABIA_ASSERT(fn != NULL);
    return fn(L);
}

/* The library table on top of the stack: its function `name` replaced by
 * counted_call of kind k around it. */
static void wrap_counted(lua_State *L, const char *name, int k)
{
    lua_getfield(L, -1, name);
    RABIA_ASSERT(lua_iscfunction(L, -1));
    lua_pushinteger(L, k);
    lua_pushcclosure(L, counted_call, 2);
    lua_setfield(L, -2, name);
}

/* Level 8: every function of the library table on top (math, bit) counts
 * its string arguments' bytes, one instruction each, as tonumber does: a
 * string where a number is wanted is read whole by strtod in C, which the
 * count saw as one call (tonumber of 10 MB of digits took 20-40 ms: found
 * by review). The VM's own conversion (s + 0) stays uncounted
 * (kv/README.md). */
static void wrap_numbers(lua_State *L)
{
    static const char *const names[] = {"abs",   "acos", "asin",  "atan",  "atan2", "ceil",   "cos",    "cosh",
                                        "deg",   "exp",  "floor", "fmod",  "frexp", "ldexp",  "log",    "log10",
                                        "max",   "min",  "modf",  "pow",   "rad",   "sin",    "sinh",   "sqrt",
                                        "tan",   "tanh", "tobit", "tohex", "bnot",  "band",   "bor",    "bxor",
                                        "lshift", "rshift", "arshift", "rol", "ror", "bswap"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        lua_getfield(L, -1, names[i]);
        bool c = lua_iscfunction(L, -1);
        lua_pop(L, 1);
        if (c)
            wrap_counted(L, names[i], CHARGE_DIGITS);
    }
}

/* cjson.decode from level KV_LEVEL_SCRIPT_C_WORK: its input's bytes count
 * (it reads them in C: 20 MB of blanks took 20 ms here). Upvalue 1 is the
 * library's configuration, where decode looks for it. */
static int cjson_decode_counted(lua_State *L)
{
    struct run *r = run_of(L);
    if (lua_type(L, 1) == LUA_TSTRING)
        add_work(L, r, lua_objlen(L, 1) / KV_SCRIPT_ALLOC_BYTES);
    return r->cjson_decode(L);
}

/* Bytes cjson.encode writes for one character of a string, at most. */
static unsigned json_char_bytes(unsigned char ch)
{
    if (ch < 32 || ch == 127)
        return 6; /* \u00XX (or \n and the like: 2) */
    return ch == '"' || ch == '\\' || ch == '/' ? 2 : 1;
}

/* What cjson.encode would write for the value at idx (absolute), at most:
 * strings escaped, numbers 32 bytes, each pair's key, ':' and ','. The
 * walk stops once past KV_SCRIPT_MAX_HEAP (so a table that holds the same
 * table twice, nested 40 deep, costs no more than the bound), at the
 * encoder's nesting bound, and at what the encoder refuses (functions,
 * bad keys: its own error follows). */
static void json_size(lua_State *L, int idx, int depth, uint64_t *total)
{
    if (*total > KV_SCRIPT_MAX_HEAP)
        return;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const unsigned char *p = (const unsigned char *)lua_tolstring(L, idx, &n);
        uint64_t t = 2;
        for (size_t i = 0; i < n; i++)
            t += json_char_bytes(p[i]);
        *total += t;
        return;
    }
    case LUA_TNUMBER:
        *total += 32;
        return;
    case LUA_TBOOLEAN:
    case LUA_TNIL:
    case LUA_TLIGHTUSERDATA: /* cjson.null */
        *total += 5;
        return;
    case LUA_TTABLE:
        break;
    default:
        return;
    }
    if (depth > 1000 || !lua_checkstack(L, 4)) /* cjson's encode_max_depth: it refuses deeper */
        return;
    *total += 2;
    lua_pushnil(L);
    while (*total <= KV_SCRIPT_MAX_HEAP && lua_next(L, idx)) {
        int kt = lua_type(L, -2); /* never lua_tolstring a number key: lua_next would lose its place */
        if (kt == LUA_TSTRING)
            json_size(L, lua_gettop(L) - 1, depth + 1, total);
        else if (kt == LUA_TNUMBER)
            *total += 34;
        *total += 2;
        json_size(L, lua_gettop(L), depth + 1, total);
        lua_pop(L, 1);
    }
    if (*total > KV_SCRIPT_MAX_HEAP)
        lua_pop(L, 1); /* the key lua_next left */
}

/* cjson.encode from level KV_LEVEL_SCRIPT_C_WORK. The encoder builds its
 * result in a buffer of its own (malloc, outside the heap bound) and exits
 * the process past 2 GiB ("BUG: Invalid strbuf length requested"): a table
 * holding one 10 MB string 1,000 times killed every replica, and would at
 * every replay. Its size is taken first: past the heap bound the call is
 * refused, as string.rep's is; below, the walk counts as work. */
static int cjson_encode_checked(lua_State *L)
{
    struct run *r = run_of(L);
    if (lua_gettop(L) == 1) { /* else the encoder's own "expected 1 argument" */
        uint64_t total = 0;
        json_size(L, 1, 1, &total);
        if (total > KV_SCRIPT_MAX_HEAP)
            return luaL_error(L, "cjson.encode: the result would pass the script heap bound of %d bytes",
                              (int)KV_SCRIPT_MAX_HEAP);
        add_work(L, r, total / KV_SCRIPT_ALLOC_BYTES);
    }
    return r->cjson_encode(L);
}

/* The cjson table on top of the stack: its function `name` (the library's
 * saved in *orig) replaced by fn, which keeps the library's configuration
 * in its upvalue 1, where the library's functions look for it. */
static void wrap_cjson(lua_State *L, const char *name, lua_CFunction fn, lua_CFunction *orig)
{
    lua_getfield(L, -1, name);
    *orig = lua_tocfunction(L, -1);
    RABIA_ASSERT(*orig && lua_getupvalue(L, -1, 1));
    lua_pushcclosure(L, fn, 1);
    lua_setfield(L, -3, name);
    lua_pop(L, 1);
}

/* Push Redis's error table {err = "CODE message"} from an error reply or
 * a message: "-CODE msg" keeps its code, a message without '-' gets ERR
 * (Redis 7.0's luaPushErrorBuff). */
static void push_error(lua_State *L, const char *p, size_t n)
{
    while (n && (p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    luaL_Buffer b;
    lua_newtable(L);
    luaL_buffinit(L, &b);
    if (n && p[0] == '-') {
        const char *sp = memchr(p, ' ', n);
        if (!sp) {
            luaL_addstring(&b, "ERR ");
            luaL_addlstring(&b, p + 1, n - 1);
        } else {
            luaL_addlstring(&b, p + 1, (size_t)(sp - p - 1));
            luaL_addlstring(&b, sp, n - (size_t)(sp - p));
        }
    } else {
        luaL_addstring(&b, "ERR ");
        luaL_addlstring(&b, p, n);
    }
    luaL_pushresult(&b);
    lua_setfield(L, -2, "err");
}

static void push_error_c(lua_State *L, const char *msg)
{
    push_error(L, msg, strlen(msg));
}

/* Raise Redis's error table for msg (does not return). */
static int raise_error(lua_State *L, const char *msg)
{
    push_error_c(L, msg);
    return lua_error(L);
}

/* RESP2 reply at *p (written by the store: well formed) as a Lua value,
 * Redis's conversion: integer -> number, bulk -> string, nil -> false,
 * status -> {ok=...}, error -> {err=...}, array -> table. */
static const uint8_t *push_reply(lua_State *L, const uint8_t *p, const uint8_t *end)
{
    RABIA_ASSERT(p < end);
    const uint8_t *nl = memchr(p, '\r', (size_t)(end - p));
    RABIA_ASSERT(nl && nl + 1 < end);
    int64_t v = 0;
    switch (*p) {
    case '+':
        lua_newtable(L);
        lua_pushlstring(L, (const char *)p + 1, (size_t)(nl - p - 1));
        lua_setfield(L, -2, "ok");
        return nl + 2;
    case '-':
        push_error(L, (const char *)p, (size_t)(nl - p));
        return nl + 2;
    case ':':
        (void)kv_parse_i64(p + 1, (size_t)(nl - p - 1), &v);
        lua_pushnumber(L, (lua_Number)v);
        return nl + 2;
    case '$':
        (void)kv_parse_i64(p + 1, (size_t)(nl - p - 1), &v);
        if (v < 0) {
            lua_pushboolean(L, 0);
            return nl + 2;
        }
        RABIA_ASSERT((size_t)(end - nl - 2) >= (size_t)v + 2);
        lua_pushlstring(L, (const char *)nl + 2, (size_t)v);
        return nl + 2 + v + 2;
    case '*':
        (void)kv_parse_i64(p + 1, (size_t)(nl - p - 1), &v);
        if (v < 0) {
            lua_pushboolean(L, 0);
            return nl + 2;
        }
        luaL_checkstack(L, 4, "reached lua stack limit");
        lua_createtable(L, v < (1 << 20) ? (int)v : 0, 0);
        p = nl + 2;
        for (int64_t i = 1; i <= v; i++) {
            p = push_reply(L, p, end);
            lua_rawseti(L, -2, (int)i);
        }
        return p;
    default:
        RABIA_ASSERT(!"a reply the store does not write");
        return end;
    }
}

/* Numbers as Redis 7.0 passes them to commands: "%.17g". */
static int fmt_number(char *buf, size_t cap, lua_Number d)
{
    return snprintf(buf, cap, "%.17g", (double)d);
}

/* The commands the RESP front end answers itself (io/resp.c), with their
 * arities: a script cannot run them (Redis refuses these in scripts too,
 * except INFO and COMMAND, whose answers here are each replica's own).
 * Their arity: -1 when the name is not one of them. */
static int connection_command(const uint8_t *p, size_t n)
{
    static const struct {
        const char *name;
        int arity;
    } cmds[] = {{"multi", 1},      {"exec", 1},        {"discard", 1},      {"watch", -2},      {"auth", -2},
                {"hello", -1},     {"client", -2},     {"config", -2},      {"wait", 3},        {"subscribe", -2},
                {"psubscribe", -2}, {"unsubscribe", -1}, {"punsubscribe", -1}, {"quit", -1},      {"reset", 1},
                {"info", -1},      {"command", -1},    {"acl", -2},         {"monitor", 1},     {"shutdown", -1},
                {"debug", -2}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (kv_eq(p, n, cmds[i].name))
            return cmds[i].arity;
    return 0;
}

static bool arity_ok(int arity, int argc)
{
    return arity >= 0 ? argc == arity : argc >= -arity;
}

/* From level KV_LEVEL_SCRIPT_C_WORK, what running cmd costs beyond
 * CALL_INSNS and its reply (kv/internal.h): the bytes of its arguments
 * (copied into the store: SET of 20 MB took 25 ms), and for a command
 * whose work grows with its keys (KV_F_SCANS), the size of each argument
 * that names a key of the script's database (every argument, so that the
 * keys after a numkeys count too; looked up without changing anything:
 * a key past its expiry and not yet deleted counts as well, alike on
 * every replica); for KEYS, the database's size; for LCS, the cells of its
 * table. */
static uint64_t command_cost(const struct run *r, const struct kv_cmd *cmd, int argc, const uint8_t *const *argv,
                             const uint32_t *len)
{
    RABIA_ASSERT(argc >= 1 && r->dbi < KV_DBS);
    uint64_t bytes = 0, cost = 0;
    for (int i = 0; i < argc; i++)
        bytes += len[i];
    const struct kv_db *db = &r->s->db[r->dbi];
    if (cmd && (cmd->flags & KV_F_SCANS))
        for (int i = 1; i < argc; i++) {
            const struct kv_dent *e = kv_dict_peek(&db->keys, argv[i], len[i]);
            if (!e)
                continue;
            const struct kv_obj *o = e->v.p;
            uint64_t n = kv_type_ops(o->type)->len(o);
            cost += o->type == KV_STRING ? n / KV_SCRIPT_ALLOC_BYTES : n * KV_SCRIPT_KEY_ELEM_INSNS;
        }
    if (cmd && (cmd->flags & KV_F_SCANS_DB))
        cost += kv_dict_size(&db->keys) * KV_SCRIPT_KEY_ELEM_INSNS;
    if (cmd && (cmd->flags & KV_F_LCS) && argc >= 3) {
        uint64_t n[2] = {0, 0};
        for (int i = 0; i < 2; i++) {
            const struct kv_dent *e = kv_dict_peek(&db->keys, argv[i + 1], len[i + 1]);
            const struct kv_obj *o = e ? e->v.p : NULL;
            n[i] = o && o->type == KV_STRING ? o->len : 0;
        }
        cost += (n[0] + 1) * (n[1] + 1);
    }
    if (cmd && (cmd->flags & (KV_F_LIMIT_WALKS | KV_F_SCAN_COUNT)) && argc > 1) {
        /* the elements skipped to a LIMIT's offset, walked one by one as
         * in Redis where the reply may hold one; the entries a SCAN's
         * COUNT visits, where a MATCH may keep none: the database's or
         * the key's size at most */
        uint64_t size;
        if (cmd->flags & KV_F_SCAN_COUNT && cmd->first == 0) {
            size = kv_dict_size(&db->keys);
        } else {
            const struct kv_dent *e = kv_dict_peek(&db->keys, argv[1], len[1]);
            const struct kv_obj *o = e ? e->v.p : NULL;
            size = o ? kv_type_ops(o->type)->len(o) : 0;
        }
        const char *word = cmd->flags & KV_F_SCAN_COUNT ? "count" : "limit";
        int64_t n;
        for (int i = 2; size && i + 1 < argc; i++)
            if (kv_eq(argv[i], len[i], word) && kv_parse_i64(argv[i + 1], len[i + 1], &n) && n > 0) {
                cost += ((uint64_t)n < size ? (uint64_t)n : size) * KV_SCRIPT_KEY_ELEM_INSNS;
                break;
            }
    }
    return cost + bytes / KV_SCRIPT_ALLOC_BYTES;
}

static int redis_call_common(lua_State *L, bool raise)
{
    struct run *r = run_of(L);
    int argc = lua_gettop(L);
    if (argc == 0) {
        push_error_c(L, "Please specify at least one argument for this redis lib call");
        return raise ? lua_error(L) : 1;
    }
    for (int i = 1; i <= argc; i++) {
        int t = lua_type(L, i);
        if (t != LUA_TSTRING && t != LUA_TNUMBER) {
            push_error_c(L, "Lua redis lib command arguments must be strings or integers");
            return raise ? lua_error(L) : 1;
        }
    }
    /* numbers as text first (the buffer may move), then the pointers */
    rabia_buf_clear(&r->nums);
    for (int i = 1; i <= argc; i++)
        if (lua_type(L, i) == LUA_TNUMBER) {
            char num[64];
            int k = fmt_number(num, sizeof num, lua_tonumber(L, i));
            if (rabia_buf_append(&r->nums, num, (size_t)k + 1)) {
                r->enomem = -ENOMEM;
                return luaL_error(L, "out of memory");
            }
        }
    const uint8_t *sv[16];
    uint32_t sl[16];
    const uint8_t **argv = sv;
    uint32_t *len = sl;
    if (argc > 16) {
        argv = lua_newuserdata(L, (size_t)argc * sizeof *argv); /* freed with the state */
        len = lua_newuserdata(L, (size_t)argc * sizeof *len);
    }
    size_t at = 0;
    for (int i = 1; i <= argc; i++) {
        size_t n;
        if (lua_type(L, i) == LUA_TNUMBER) {
            argv[i - 1] = r->nums.data + at;
            n = strlen((const char *)r->nums.data + at);
            at += n + 1;
        } else {
            argv[i - 1] = (const uint8_t *)lua_tolstring(L, i, &n);
        }
        if (n > UINT32_MAX) {
            push_error_c(L, "Lua redis lib command argument too large");
            return raise ? lua_error(L) : 1;
        }
        len[i - 1] = (uint32_t)n;
    }
    rabia_buf_clear(&r->reply);
    const char *refuse = NULL;
    const struct kv_cmd *cmd = NULL;
    if (kv_eq(argv[0], len[0], "select")) { /* the script's own database (Redis 7.0: not the caller's) */
        int64_t db;
        if (argc != 2)
            refuse = "Wrong number of args calling Redis command from script";
        else if (!kv_parse_i64(argv[1], len[1], &db) || db < INT32_MIN || db > INT32_MAX)
            refuse = "value is not an integer or out of range"; /* push_error adds the ERR */
        else if (db < 0 || db >= KV_DBS)
            refuse = "DB index is out of range";
        else {
            r->dbi = (uint32_t)db;
            lua_newtable(L);
            lua_pushstring(L, "OK");
            lua_setfield(L, -2, "ok");
            return 1;
        }
    } else {
        /* Redis's order: known, arity, allowed in scripts, writes */
        cmd = kv_lookup(argv[0], len[0]);
        if (cmd && (kv_cmd_level(cmd) > r->s->feature_level || (cmd->flags & KV_F_INTERNAL)))
            cmd = NULL; /* not a command yet (features.c), or the replicas' own */
        int conn = cmd ? 0 : connection_command(argv[0], len[0]);
        if (!cmd && !conn)
            refuse = "Unknown Redis command called from script";
        else if (!arity_ok(cmd ? cmd->arity : conn, argc))
            refuse = "Wrong number of args calling Redis command from script";
        else if (conn || (cmd->flags & KV_F_NOSCRIPT))
            refuse = "This Redis command is not allowed from script";
        else if ((cmd->flags & KV_F_WRITE) && r->no_writes)
            refuse = "Write commands are not allowed from read-only scripts.";
    }
    if (refuse) {
        push_error_c(L, refuse);
        return raise ? lua_error(L) : 1;
    }
    uint64_t cost = r->count_c_work ? command_cost(r, cmd, argc, argv, len) : 0; /* the keys before it runs */
    int rc = kv_run(r->s, r->dbi, (uint32_t)argc, argv, len, &r->reply, true, true);
    if (rc) {
        r->enomem = rc;
        return luaL_error(L, "out of memory");
    }
    /* the command's work counts toward the instruction bound (the count
     * hook sees it at its next call): a loop of a few instructions around
     * redis.call would otherwise hold the replicas for minutes */
    r->insns += CALL_INSNS + r->reply.len / 64;
    if (cost) /* the keys' work (level KV_LEVEL_SCRIPT_C_WORK): counted at once, as a
               * BITCOUNT of 100 MB takes 19 ms and the hook runs every 2,000 calls */
        add_work(L, r, cost);
    const uint8_t *end = r->reply.data + r->reply.len;
    const uint8_t *next = push_reply(L, r->reply.data, end);
    RABIA_ASSERT(next == end); /* one reply per command */
    if (raise && r->reply.data[0] == '-')
        return lua_error(L);
    return 1;
}

static int redis_call(lua_State *L)
{
    return redis_call_common(L, true);
}

static int redis_pcall(lua_State *L)
{
    return redis_call_common(L, false);
}

static int redis_error_reply(lua_State *L)
{
    size_t n;
    if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TSTRING) {
        push_error_c(L, "wrong number or type of arguments");
        return 1;
    }
    const char *p = lua_tolstring(L, 1, &n);
    n = strlen(p); /* as Redis: up to a NUL */
    if (n && p[0] == '-') {
        push_error(L, p, n);
    } else {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addchar(&b, '-');
        luaL_addlstring(&b, p, n);
        luaL_pushresult(&b);
        size_t m;
        const char *q = lua_tolstring(L, -1, &m);
        push_error(L, q, m);
    }
    return 1;
}

static int redis_status_reply(lua_State *L)
{
    if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TSTRING) {
        push_error_c(L, "wrong number or type of arguments");
        return 1;
    }
    lua_newtable(L);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "ok");
    return 1;
}

static int redis_sha1hex(lua_State *L)
{
    if (lua_gettop(L) != 1) {
        return raise_error(L, "wrong number of arguments");
    }
    size_t n;
    const char *p = lua_tolstring(L, 1, &n);
    struct run *r = run_of(L);
    if (r->count_c_work && p) /* one instruction per byte: 20 MB took 110 ms here */
        add_work(L, r, n);
    char hex[41];
    kv_sha1_hex((const uint8_t *)(p ? p : ""), p ? n : 0, hex);
    lua_pushstring(L, hex);
    return 1;
}

/* redis.log: checked as Redis checks it, written nowhere (the store does
 * no I/O; every replica would write the same line). */
static int redis_log(lua_State *L)
{
    if (lua_gettop(L) < 2) {
        return raise_error(L, "redis.log() requires two arguments or more.");
    }
    if (!lua_isnumber(L, 1)) {
        return raise_error(L, "First argument must be a number (log level).");
    }
    lua_Number lv = lua_tonumber(L, 1);
    if (lv < 0 || lv > 3) {
        return raise_error(L, "Invalid debug level.");
    }
    return 0;
}

static int redis_setresp(lua_State *L)
{
    if (lua_gettop(L) != 1) {
        return raise_error(L, "redis.setresp() requires one argument.");
    }
    lua_Number v = lua_tonumber(L, 1);
    if (v != 2 && v != 3) {
        return raise_error(L, "RESP version must be 2 or 3.");
    }
    if (v == 3) {
        return raise_error(L, "redis.setresp(3) is not supported: scripts see replies as RESP2 (maps as flat arrays, nulls "
                        "as false)");
    }
    return 0;
}

static int redis_set_repl(lua_State *L)
{
    if (lua_gettop(L) != 1) {
        return raise_error(L, "redis.set_repl() requires one argument.");
    }
    lua_Number v = lua_tonumber(L, 1);
    if (v < 0 || v > 3) {
        return raise_error(L, "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.");
    }
    return 0; /* every command of a script is in the log already: nothing to choose */
}

static int redis_true(lua_State *L)
{
    lua_pushboolean(L, 1);
    return 1;
}

static int redis_false(lua_State *L)
{
    lua_pushboolean(L, 0);
    return 1;
}

static int redis_nothing(lua_State *L)
{
    (void)L;
    return 0;
}

/* math.random and math.randomseed: a 64-bit LCG's high bits, restarted
 * from one seed per run (Redis reseeds its own generator per script too),
 * with Lua 5.1's argument rules. */
static double next_rand(struct run *r)
{
    r->rand = r->rand * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(r->rand >> 11) * (1.0 / 9007199254740992.0);
}

static int math_random(lua_State *L)
{
    double x = next_rand(run_of(L));
    switch (lua_gettop(L)) {
    case 0:
        lua_pushnumber(L, x);
        return 1;
    case 1: {
        int u = luaL_checkint(L, 1);
        luaL_argcheck(L, 1 <= u, 1, "interval is empty");
        lua_pushnumber(L, floor(x * u) + 1);
        return 1;
    }
    case 2: {
        int l = luaL_checkint(L, 1), u = luaL_checkint(L, 2);
        luaL_argcheck(L, l <= u, 2, "interval is empty");
        lua_pushnumber(L, floor(x * (u - l + 1)) + l);
        return 1;
    }
    default:
        return luaL_error(L, "wrong number of arguments");
    }
}

static int math_randomseed(lua_State *L)
{
    run_of(L)->rand = (uint64_t)(int64_t)luaL_checkint(L, 1);
    return 0;
}

/* string.rep without its empty-string loop (string.rep("", 1e15) spins in
 * C, where the instruction bound cannot see it) and with the heap bound
 * checked before the work. */
static int string_rep(lua_State *L)
{
    size_t l;
    luaL_checklstring(L, 1, &l);
    lua_Number n = luaL_checknumber(L, 2);
    if (l == 0 || n < 1) {
        lua_pushliteral(L, "");
        return 1;
    }
    if (n * (lua_Number)l > (lua_Number)KV_SCRIPT_MAX_HEAP)
        return luaL_error(L, "string.rep: the result would pass the script heap bound of %d bytes",
                          (int)KV_SCRIPT_MAX_HEAP);
    struct run *r = run_of(L);
    if (r->count_work) /* the result's bytes are written even when it exists already */
        add_work(L, r, (uint64_t)(n * (lua_Number)l) / KV_SCRIPT_ALLOC_BYTES);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* tostring, with tables, functions, threads and userdata named by the
 * order this run first printed them ("table: 0x00000001"), not by their
 * address, which differs between replicas. */
static int base_tostring(lua_State *L)
{
    luaL_checkany(L, 1);
    int t = lua_type(L, 1);
    if ((t == LUA_TTABLE || t == LUA_TFUNCTION || t == LUA_TTHREAD || t == LUA_TUSERDATA) &&
        !luaL_getmetafield(L, 1, "__tostring")) {
        lua_pushvalue(L, lua_upvalueindex(1)); /* object -> number */
        lua_pushvalue(L, 1);
        lua_rawget(L, -2);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushvalue(L, 1);
            lua_pushnumber(L, ++run_of(L)->next_id);
            lua_rawset(L, -3);
            lua_pushvalue(L, 1);
            lua_rawget(L, -2);
        }
        char name[64];
        snprintf(name, sizeof name, "%s: 0x%08x", lua_typename(L, t), (unsigned)lua_tonumber(L, -1));
        lua_pushstring(L, name);
        return 1;
    }
    lua_pushvalue(L, lua_upvalueindex(2)); /* the library's */
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

/* coroutine.create and coroutine.wrap from level KV_LEVEL_SCRIPT_HEAP:
 * the library's, then the new thread's count hook set to
 * KV_SCRIPT_CORO_EVERY (run_hook adds what the thread was set with).
 * wrap's function holds its thread as upvalue 1 (Lua 5.1's auxwrap). */
static void coro_count(lua_State *L, lua_State *co)
{
    struct run *r = run_of(L);
    lua_sethook(co, run_hook, LUA_MASKCOUNT, r->over ? 1 : KV_SCRIPT_CORO_EVERY);
}

/* (the library's function runs in this call's frame, as counted_call
 * does: its errors name it and the script's line as Redis's do) */
static int coro_create(lua_State *L)
{
    lua_CFunction fn = lua_tocfunction(L, lua_upvalueindex(1));
    RABIA_ASSERT(fn != NULL);
    int n = fn(L);
    lua_State *co = n == 1 ? lua_tothread(L, -1) : NULL;
    if (co)
        coro_count(L, co);
    return n;
}

static int coro_wrap(lua_State *L)
{
    lua_CFunction fn = lua_tocfunction(L, lua_upvalueindex(1));
    RABIA_ASSERT(fn != NULL);
    int n = fn(L);
    if (n == 1 && lua_iscfunction(L, -1) && lua_getupvalue(L, -1, 1)) {
        lua_State *co = lua_tothread(L, -1);
        if (co)
            coro_count(L, co);
        lua_pop(L, 1);
    }
    return n;
}

/* pcall as Redis 7.0 replaces it: an error table caught ({err=...}, as
 * redis.call raises) comes back as its message string. */
static int base_pcall(lua_State *L)
{
    int argc = lua_gettop(L);
    luaL_checkany(L, 1);
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    if (lua_pcall(L, argc - 1, LUA_MULTRET, 0)) {
        lua_remove(L, 1);
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "err");
            if (lua_isstring(L, -1))
                lua_replace(L, -2);
            else
                lua_pop(L, 1);
        }
        lua_pushboolean(L, 0);
        lua_insert(L, 1);
    }
    return lua_gettop(L);
}

static void open_lib(lua_State *L, lua_CFunction open, const char *name)
{
    lua_pushcfunction(L, open);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
}

static int globals_newindex(lua_State *L)
{
    return luaL_error(L, "Attempt to modify a readonly table");
}

/* The library table on top of the stack replaced by a read-only view of
 * it (an empty table reading through __index, refusing through
 * __newindex), as Redis's read-only library tables: a script cannot change
 * a library (redis.call = nil is Redis's "Attempt to modify a readonly
 * table"). */
static void guard_table(lua_State *L)
{
    lua_newtable(L); /* the view */
    lua_newtable(L); /* its metatable */
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, globals_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    lua_replace(L, -2);
}

/* The error handler: any error becomes Redis's table {err=, source=,
 * line=} naming where it was raised (the first Lua function up the
 * stack). */
static int on_error(lua_State *L)
{
    if (!lua_istable(L, 1)) {
        const char *m = lua_tostring(L, 1);
        lua_newtable(L);
        lua_pushfstring(L, "ERR %s", m ? m : (lua_isnil(L, 1) ? "nil" : lua_typename(L, lua_type(L, 1))));
        lua_setfield(L, -2, "err");
        lua_replace(L, 1);
    }
    lua_Debug ar;
    for (int level = 1; level <= 2; level++) {
        if (!lua_getstack(L, level, &ar) || !lua_getinfo(L, "Sl", &ar))
            break;
        if (strcmp(ar.what, "C")) {
            lua_pushstring(L, ar.source);
            lua_setfield(L, 1, "source");
            lua_pushnumber(L, ar.currentline);
            lua_setfield(L, 1, "line");
            break;
        }
    }
    lua_settop(L, 1);
    return 1;
}


/* The libraries a script can name, each opened the first time it names
 * it (opening them all costs about 8 us a run, most scripts need one or
 * two): base (pairs, tonumber, pcall, ..., coroutine), string, redis, and
 * those Redis loads besides. They register themselves in the real globals
 * (the hidden table), with Redis's changes applied. */
enum lib { LIB_BASE = 1, LIB_STRING = 2, LIB_REDIS = 4, LIB_TABLE = 8, LIB_MATH = 16, LIB_CJSON = 32, LIB_BIT = 64 };

static const char *const base_names[] = {"assert", "collectgarbage", "dofile", "error", "gcinfo", "getfenv",
                                         "getmetatable", "loadfile", "load", "loadstring", "next", "print",
                                         "rawequal", "rawget", "rawset", "select", "setfenv", "setmetatable",
                                         "tonumber", "tostring", "type", "unpack", "xpcall", "pcall", "ipairs",
                                         "pairs", "newproxy", "_VERSION", "coroutine"};

static uint32_t lib_of(const char *k)
{
    static const struct {
        const char *name;
        uint32_t lib;
    } named[] = {{"string", LIB_STRING}, {"redis", LIB_REDIS}, {"table", LIB_TABLE},
                 {"math", LIB_MATH},     {"cjson", LIB_CJSON}, {"bit", LIB_BIT}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (!strcmp(k, named[i].name))
            return named[i].lib;
    for (size_t i = 0; i < sizeof base_names / sizeof base_names[0]; i++)
        if (!strcmp(k, base_names[i]))
            return LIB_BASE;
    return 0;
}

/* The redis table's entries, each made the first time a script names it
 * (a script uses two or three of them; making all 22 cost about 2 us a
 * run). */
static const struct {
    const char *name;
    lua_CFunction fn; /* NULL: the number v, or the string str */
    double v;
    const char *str;
} redis_entries[] = {
    {"call", redis_call, 0, NULL},
    {"pcall", redis_pcall, 0, NULL},
    {"error_reply", redis_error_reply, 0, NULL},
    {"status_reply", redis_status_reply, 0, NULL},
    {"sha1hex", redis_sha1hex, 0, NULL},
    {"log", redis_log, 0, NULL},
    {"setresp", redis_setresp, 0, NULL},
    {"set_repl", redis_set_repl, 0, NULL},
    {"replicate_commands", redis_true, 0, NULL},
    {"breakpoint", redis_false, 0, NULL},
    {"debug", redis_nothing, 0, NULL},
    {"LOG_DEBUG", NULL, 0, NULL},
    {"LOG_VERBOSE", NULL, 1, NULL},
    {"LOG_NOTICE", NULL, 2, NULL},
    {"LOG_WARNING", NULL, 3, NULL},
    {"REPL_NONE", NULL, 0, NULL},
    {"REPL_AOF", NULL, 1, NULL},
    {"REPL_SLAVE", NULL, 2, NULL},
    {"REPL_REPLICA", NULL, 2, NULL},
    {"REPL_ALL", NULL, 3, NULL},
    {"REDIS_VERSION", NULL, 0, "7.0.0"}, /* what INFO says (replica/metrics.c) */
    {"REDIS_VERSION_NUM", NULL, 0x070000, NULL},
};

/* The real redis table's __index: the entry, made and kept. */
static int redis_index(lua_State *L)
{
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    for (size_t i = 0; k && i < sizeof redis_entries / sizeof redis_entries[0]; i++) {
        if (strcmp(k, redis_entries[i].name))
            continue;
        lua_pushvalue(L, 2);
        if (redis_entries[i].fn)
            lua_pushcfunction(L, redis_entries[i].fn);
        else if (redis_entries[i].str)
            lua_pushstring(L, redis_entries[i].str);
        else
            lua_pushnumber(L, redis_entries[i].v);
        lua_rawset(L, 1);
        lua_pushvalue(L, 2);
        lua_rawget(L, 1);
        return 1;
    }
    lua_pushnil(L);
    return 1;
}

static void open_redis(lua_State *L)
{
    lua_createtable(L, 0, 4);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, redis_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    guard_table(L);
    lua_setglobal(L, "redis");
}

/* Open lib, with the real globals (hidden) as the thread's globals while it
 * registers itself; proxy is what scripts see as _G. */
static void open_lazy(lua_State *L, uint32_t lib, int hidden, int proxy)
{
    struct run *r = run_of(L);
    RABIA_ASSERT(!(r->opened & lib));
    r->opened |= lib;
    lua_pushvalue(L, hidden);
    lua_replace(L, LUA_GLOBALSINDEX);
    switch (lib) {
    case LIB_BASE: {
        open_lib(L, luaopen_base, "");
        static const char *const drop[] = {"print", "dofile", "loadfile", "getfenv", "setfenv", "newproxy"};
        for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++) {
            lua_pushnil(L);
            lua_setglobal(L, drop[i]);
        }
        lua_newtable(L); /* tostring's names: weak keys */
        lua_newtable(L);
        lua_pushliteral(L, "k");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_getglobal(L, "tostring");
        lua_pushcclosure(L, base_tostring, 2);
        lua_setglobal(L, "tostring");
        lua_pushcfunction(L, base_pcall);
        lua_setglobal(L, "pcall");
        lua_pushvalue(L, hidden); /* the real globals */
        wrap_counted(L, "collectgarbage", CHARGE_HEAP);
        if (r->arena) /* level 8: a string's digits are read in C (wrap_numbers) */
            wrap_counted(L, "tonumber", CHARGE_DIGITS);
        lua_pop(L, 1);
        lua_getglobal(L, "coroutine");
        if (r->arena) { /* each new coroutine counted in steps of KV_SCRIPT_CORO_EVERY */
            lua_getfield(L, -1, "create");
            lua_pushcclosure(L, coro_create, 1);
            lua_setfield(L, -2, "create");
            lua_getfield(L, -1, "wrap");
            lua_pushcclosure(L, coro_wrap, 1);
            lua_setfield(L, -2, "wrap");
        }
        guard_table(L);
        lua_setglobal(L, "coroutine");
        lua_pushvalue(L, proxy); /* luaopen_base set _G to the real globals */
        lua_setglobal(L, "_G");
        break;
    }
    case LIB_STRING:
        open_lib(L, luaopen_string, LUA_STRLIBNAME);
        lua_getglobal(L, "string");
        lua_getfield(L, -1, "rep");
        lua_pushcclosure(L, string_rep, 1);
        lua_setfield(L, -2, "rep"); /* in the real table: the strings' methods see it too */
        for (const char *const *f = (const char *const[]){"byte", "format", "lower", "reverse", "sub", "upper", NULL};
             *f; f++)
            wrap_counted(L, *f, CHARGE_STRINGS);
        if (r->count_c_work) /* gfind too: 5.1's alias of gmatch, left unbounded at level 2 */
            kv_match_open(L, &r->meter);
        else
            for (const char *const *f = (const char *const[]){"find", "gmatch", "gsub", "match", NULL}; *f; f++)
                wrap_counted(L, *f, CHARGE_PATTERN);
        guard_table(L);
        lua_setglobal(L, "string");
        break;
    case LIB_REDIS:
        open_redis(L);
        break;
    default: {
        static const struct {
            uint32_t lib;
            const char *name;
            lua_CFunction open;
        } other[] = {{LIB_TABLE, "table", luaopen_table},
                     {LIB_MATH, "math", luaopen_math},
                     {LIB_CJSON, "cjson", luaopen_cjson},
                     {LIB_BIT, "bit", luaopen_bit}};
        for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
            if (other[i].lib != lib)
                continue;
            lua_pushcfunction(L, other[i].open);
            lua_pushstring(L, other[i].name);
            lua_call(L, 1, 1);
            if (lib == LIB_TABLE) {
                wrap_counted(L, "insert", CHARGE_INSERT);
                wrap_counted(L, "remove", CHARGE_REMOVE);
                wrap_counted(L, "maxn", CHARGE_LEN);
                wrap_counted(L, "sort", CHARGE_SORT);
            }
            if (lib == LIB_CJSON && r->count_c_work) {
                wrap_cjson(L, "decode", cjson_decode_counted, &r->cjson_decode);
                wrap_cjson(L, "encode", cjson_encode_checked, &r->cjson_encode);
            }
            if (lib == LIB_MATH) {
                lua_pushcfunction(L, math_random);
                lua_setfield(L, -2, "random");
                lua_pushcfunction(L, math_randomseed);
                lua_setfield(L, -2, "randomseed");
            }
            if (r->arena && (lib == LIB_MATH || lib == LIB_BIT))
                wrap_numbers(L);
            guard_table(L);
            lua_setglobal(L, other[i].name); /* cjson does not register itself */
        }
        break;
    }
    }
    lua_pushvalue(L, proxy);
    lua_replace(L, LUA_GLOBALSINDEX);
}

/* The globals a script sees are an empty table (the proxy) whose __index
 * reads the real ones (upvalue 1), opening a library the first time the
 * script names it, and whose __newindex refuses: assigning any global is
 * an error, as in Redis 7. A name that is not there is Redis's error. */
static int globals_index(lua_State *L)
{
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    if (!lua_isnil(L, -1))
        return 1;
    lua_pop(L, 1);
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    uint32_t lib = k ? lib_of(k) : 0;
    if (lib && !(run_of(L)->opened & lib)) {
        open_lazy(L, lib, lua_upvalueindex(1), 1);
        lua_pushvalue(L, 2);
        lua_rawget(L, lua_upvalueindex(1));
        if (!lua_isnil(L, -1))
            return 1;
        lua_pop(L, 1);
    }
    return luaL_error(L, "Script attempted to access nonexistent global variable '%s'", k ? k : "?");
}

/* The strings' __index until the string library is open (a method call
 * like s:upper() is the first use of it): opens it, which gives strings
 * its own metatable, and answers from it. Upvalues: the real globals, the
 * proxy. */
static int string_index(lua_State *L)
{
    if (!(run_of(L)->opened & LIB_STRING))
        open_lazy(L, LIB_STRING, lua_upvalueindex(1), lua_upvalueindex(2));
    lua_getfield(L, lua_upvalueindex(1), "string");
    lua_pushvalue(L, 2);
    lua_gettable(L, -2); /* through the view */
    return 1;
}

/* The value on top of L as the script's reply, Redis 7.0's rules. 0,
 * -ENOMEM, or 1 when it nests past REPLY_DEPTH. */
static int put_value(lua_State *L, struct kv_ctx *c, int depth)
{
    switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
        size_t n;
        const char *p = lua_tolstring(L, -1, &n);
        return kv_reply_bulk(c, p, n);
    }
    case LUA_TBOOLEAN:
        return lua_toboolean(L, -1) ? kv_reply_int(c, 1) : kv_reply_null(c);
    case LUA_TNUMBER: { /* truncated; out of range or NaN as x86 converts them (Redis casts) */
        double d = (double)lua_tonumber(L, -1);
        return kv_reply_int(c, d > -9223372036854775808.0 && d < 9223372036854775808.0 ? (int64_t)d : INT64_MIN);
    }
    case LUA_TTABLE:
        break;
    default:
        return kv_reply_null(c);
    }
    if (depth >= REPLY_DEPTH || !lua_checkstack(L, 4))
        return 1;
    /* {err=...} and {ok=...}: one line each, up to a NUL (Redis builds
     * them from C strings), CR and LF made spaces (kv_reply_err/status) */
    static const struct {
        const char *field;
        int (*reply)(struct kv_ctx *, const char *);
    } lines[] = {{"err", kv_reply_err}, {"ok", kv_reply_status}};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        lua_pushstring(L, lines[i].field);
        lua_rawget(L, -2);
        if (lua_type(L, -1) == LUA_TSTRING) {
            int rc = lines[i].reply(c, lua_tostring(L, -1));
            lua_pop(L, 1);
            return rc;
        }
        lua_pop(L, 1);
    }
    lua_pushliteral(L, "double");
    lua_rawget(L, -2);
    if (lua_type(L, -1) == LUA_TNUMBER) {
        double d = (double)lua_tonumber(L, -1);
        lua_pop(L, 1);
        return kv_reply_double(c, d);
    }
    lua_pop(L, 1);
    size_t mark = kv_reply_defer(c);
    uint64_t n = 0;
    for (int j = 1;; j++) {
        lua_rawgeti(L, -1, j);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            break;
        }
        int rc = put_value(L, c, depth + 1);
        lua_pop(L, 1);
        if (rc)
            return rc;
        n++;
    }
    return kv_reply_set_len(c, mark, n);
}

/* One run's inputs and outcome, for run_main (under lua_cpcall: every
 * allocation of the state may fail, and must fail into an error reply). */
struct run_job {
    struct kv_ctx *c;
    struct run *r;
    const struct kv_script *sc; /* its compiled code is loaded */
    uint32_t first, nkeys;
    int rc; /* the reply's: 0 or -ENOMEM */
    const char *sha;
};

static int reply_script_error(lua_State *L, struct kv_ctx *c, const char *sha);

/* Global name = the table of c's arguments [from, to). */
static void set_args(lua_State *L, const char *name, const struct kv_ctx *c, uint32_t from, uint32_t to)
{
    RABIA_ASSERT(from <= to && to <= c->argc);
    lua_createtable(L, (int)(to - from), 0);
    for (uint32_t i = from; i < to; i++) {
        lua_pushlstring(L, (const char *)c->argv[i], c->len[i]);
        lua_rawseti(L, -2, (int)(i - from) + 1);
    }
    lua_setglobal(L, name);
}

static int run_main(lua_State *L)
{
    struct run_job *j = lua_touserdata(L, 1);
    struct kv_ctx *c = j->c;
    lua_settop(L, 0);
    /* KEYS and ARGV in the real globals; the proxy scripts see */
    set_args(L, "KEYS", c, j->first, j->first + j->nkeys);
    set_args(L, "ARGV", c, j->first + j->nkeys, c->argc);
    lua_pushvalue(L, LUA_GLOBALSINDEX); /* 1: the real globals */
    lua_newtable(L);                    /* 2: the proxy */
    lua_pushvalue(L, 2);
    lua_setglobal(L, "_G");
    lua_newtable(L);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, globals_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, globals_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, 2);
    lua_pushliteral(L, ""); /* strings' methods: the string library on first use */
    lua_newtable(L);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, string_index, 2);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
    lua_pushvalue(L, 2);
    lua_replace(L, LUA_GLOBALSINDEX);
    lua_settop(L, 0);

    lua_pushcfunction(L, on_error);
    /* our own lua_dump of a function that compiled: never a client's bytes */
    RABIA_ASSERT(j->sc->code && j->sc->code_len >= 1 && j->sc->code[0] == LUA_SIGNATURE[0]);
    if (luaL_loadbuffer(L, (const char *)j->sc->code, j->sc->code_len, "@user_script"))
        return lua_error(L); /* only out of memory */
    lua_sethook(L, run_hook, LUA_MASKCOUNT, HOOK_EVERY);
    int prc = lua_pcall(L, 0, 1, 1);
    lua_sethook(L, NULL, 0, 0);
    if (j->r->enomem || j->r->oom)
        return 0; /* the caller replies */
    if (prc == LUA_ERRMEM && j->r->over) /* the allocator stopped it (no error handler ran) */
        j->rc = kv_reply_errf(c, "%s (script: %s)", STOPPED_TEXT, j->sha);
    else if (prc) /* the error object (on_error's table) on top */
        j->rc = reply_script_error(L, c, j->sha);
    else {
        size_t at = c->out->len;
        if ((j->rc = put_value(L, c, 0)) == 1) {
            c->out->len = at;
            j->rc = kv_reply_err(c, "ERR reached lua stack limit");
        }
    }
    return 0;
}

/* Write the error object on top of L (on_error's {err=, source=, line=})
 * as the reply: "-<err> script: <sha>, on <source>:<line>.". */
static int reply_script_error(lua_State *L, struct kv_ctx *c, const char *sha)
{
    if (!lua_istable(L, -1)) {
        const char *m = lua_tostring(L, -1);
        return kv_reply_errf(c, "ERR Error running script f_%s, %.100s", sha, m ? m : "execution failure");
    }
    lua_getfield(L, -1, "err");
    lua_getfield(L, -2, "source");
    lua_getfield(L, -3, "line");
    const char *e = lua_tostring(L, -3);
    const char *src = lua_tostring(L, -2);
    if (src && lua_isnumber(L, -1))
        return kv_reply_errf(c, "%s script: %s, on %.60s:%d.", e ? e : "", sha, src, (int)lua_tonumber(L, -1));
    return kv_reply_err(c, e ? e : "");
}

/* Run sc (compiled) with KEYS = argv[first .. first+nkeys), ARGV = the
 * rest. Replies. */
int kv_script_run(struct kv_ctx *c, const char *sha, const struct kv_script *sc, bool no_writes, uint32_t first,
                      uint32_t nkeys)
{
    struct run r = {.s = c->s, .dbi = c->dbi, .no_writes = no_writes, .rand = 0x5241424941ull,
                    .count_work = c->s->feature_level >= KV_LEVEL_SCRIPT_WORK,
                    .count_c_work = c->s->feature_level >= KV_LEVEL_SCRIPT_C_WORK,
                    .arena = c->s->feature_level >= KV_LEVEL_SCRIPT_HEAP,
                    .meter = {.charge = match_charge}};
    if (r.arena && kv_script_heap_begin())
        return -ENOMEM; /* no address space for it (runs never nest): the apply fails, as for the machine's memory */
    lua_State *L = lua_newstate(run_alloc, &r);
    if (!L) {
        if (r.arena)
            kv_script_heap_end();
        return -ENOMEM;
    }
    r.L = L;
    struct run_job j = {.c = c, .r = &r, .sc = sc, .first = first, .nkeys = nkeys, .sha = sha};
    size_t at = c->out->len;
    int crc = lua_cpcall(L, run_main, &j);
    int rc;
    if (r.enomem) {
        c->out->len = at;
        rc = r.enomem;
    } else if (r.oom) {
        c->out->len = at;
        rc = kv_reply_errf(c, "ERR script used more than %d bytes of Lua memory: every replica stops it at this "
                                 "bound, at the same point (script: %s)",
                              (int)KV_SCRIPT_MAX_HEAP, sha);
    } else if (crc) {
        c->out->len = at;
        rc = kv_reply_errf(c, "ERR Error running script f_%s", sha);
    } else {
        rc = j.rc;
    }
    if (!r.enomem) /* a run that failed the apply is not counted: the replica stops */
        c->s->script_runs[r.over || r.oom ? KV_SCRIPT_STOPPED
                          : c->out->len > at && c->out->data[at] == '-' ? KV_SCRIPT_ERROR
                                                                      : KV_SCRIPT_OK]++;
    lua_close(L);
    RABIA_ASSERT(r.heap == 0); /* every byte of the state returned */
    if (r.arena)
        kv_script_heap_end();
    rabia_buf_free(&r.reply);
    rabia_buf_free(&r.nums);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Commands.                                                           */

/* Lua's loader, fed the body as text whatever its first byte: a body
 * starting with ESC would otherwise be taken for precompiled code, which
 * Lua 5.1 runs unchecked (Redis's own Lua refuses binary chunks; a space
 * first makes the lexer see it, and reject it, as Redis's does). */
struct text_reader {
    const char *p;
    size_t n;
    int part;
};

static const char *text_read(lua_State *L, void *ud, size_t *size)
{
    (void)L;
    struct text_reader *t = ud;
    if (t->part == 0) {
        t->part = 1;
        if (t->n && t->p[0] == LUA_SIGNATURE[0]) {
            *size = 1;
            return " ";
        }
    }
    if (t->part == 1) {
        t->part = 2;
        *size = t->n;
        return t->p;
    }
    *size = 0;
    return NULL;
}

static int dump_write(lua_State *L, const void *p, size_t n, void *ud)
{
    (void)L;
    return rabia_buf_append(ud, p, n) ? 1 : 0;
}

/* Compile body (its shebang skip bytes long) in a bare state: its code
 * (lua_dump) into *code when code is not NULL; each later run loads that
 * instead of parsing (parsing is most of a run for a script of a few
 * kilobytes). 1 compiled, 0 replied the compiler's error, -ENOMEM. */
int kv_script_compile(struct kv_ctx *c, const uint8_t *body, size_t n, long skip, struct rabia_buf *code)
{
    struct run r = {0};
    lua_State *L = lua_newstate(run_alloc, &r);
    if (!L)
        return -ENOMEM;
    int ok = 1;
    struct text_reader t = {(const char *)body + skip, n - (size_t)skip, 0};
    int lrc = lua_load(L, text_read, &t, "@user_script");
    if (r.enomem) {
        ok = r.enomem;
    } else if (lrc) {
        const char *m = lua_tostring(L, -1);
        int rc = r.oom ? kv_reply_err(c, "ERR script too large to compile within the Lua memory bound")
                       : kv_reply_errf(c, "ERR Error compiling script (new function): %s", m ? m : "?");
        ok = rc ? rc : 0;
    } else if (code && lua_dump(L, dump_write, code)) {
        ok = -ENOMEM;
    }
    lua_close(L);
    return ok;
}

