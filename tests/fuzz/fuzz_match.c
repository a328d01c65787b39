/* libFuzzer target: kv/script_match.c (the patterns scripts use from
 * feature level 3) against Lua 5.1's own string library, which it must
 * equal: two Lua states, one with the library as shipped, one with
 * find, match, gmatch, gfind and gsub replaced by kv_match_open; the same
 * call in each; the results (values and types, or the error message)
 * must be the same.
 *
 * Input: byte 0 picks the call (find, find plain, match, gmatch, gsub with
 * a string, a table or a function), byte 1 the init or max argument (or
 * none), byte 2 the pattern's length, then the pattern, a byte with the
 * replacement's length, the replacement, and the subject (the rest).
 *
 * Our matcher runs first, with a budget of steps (its meter raises past
 * it): a call over budget, or one refused as "pattern too complex" (5.1
 * has no depth bound and may overflow the stack), is not run through the
 * library, which would take as long or crash. Everything else must agree
 * byte for byte. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

#define FUZZ_NAME "fuzz_match"
#include "fuzz.h"

#define BUDGET_STEPS 2000000 /* about 10 ms of matching */
#define OVER_BUDGET "fuzz_match: over budget"

struct meter {
    struct kv_match_meter m;
    uint64_t steps;
};

static void charge(lua_State *L, struct kv_match_meter *m, uint64_t steps)
{
    struct meter *me = (struct meter *)m;
    me->steps += steps;
    if (me->steps > BUDGET_STEPS)
        luaL_error(L, OVER_BUDGET);
}

/* The same in both states: gsub's replacement function and table, and
 * the call, its results written out as text by Lua (with no pattern
 * function, so the text is made alike in both). */
static const char PRELUDE[] =
    "function fuzz_repl(...)\n"
    "  local n = select('#', ...)\n"
    "  local a = ...\n"
    "  if a == 'x' then return {} end\n"
    "  if n % 3 == 0 then return nil end\n"
    "  if n % 3 == 1 and type(a) == 'number' then return a * 2 end\n"
    "  local t = {}\n"
    "  for i = 1, n do t[i] = tostring((select(i, ...))) end\n"
    "  return '<' .. table.concat(t, ',') .. '>'\n"
    "end\n"
    "fuzz_table = {a = 'A', b = false, ab = 'AB', [1] = 'one', [2] = 2, x = {}, ['%'] = 'pct'}\n"
    "local function ser(...)\n"
    "  local n, t = select('#', ...), {}\n"
    "  for i = 1, n do\n"
    "    local v = (select(i, ...))\n"
    "    if type(v) == 'string' then t[i] = 's' .. #v .. ':' .. v\n"
    "    elseif type(v) == 'number' then t[i] = string.format('n%.17g', v)\n"
    "    else t[i] = type(v) end\n"
    "  end\n"
    "  return n .. '|' .. table.concat(t, ';')\n"
    "end\n"
    "function fuzz_run(op, subj, pat, repl, arg)\n"
    "  if op == 0 then return ser(string.find(subj, pat, arg))\n"
    "  elseif op == 1 then return ser(string.find(subj, pat, arg or 1, true))\n"
    "  elseif op == 2 then return ser(string.match(subj, pat, arg))\n"
    "  elseif op == 3 or op == 7 then\n"
    "    local it = (op == 3 and string.gmatch or string.gfind)(subj, pat)\n"
    "    local out = {}\n"
    "    for k = 1, 64 do\n"
    "      local r = ser(it())\n"
    "      out[k] = r\n"
    "      if r == '0|' or r == '1|nil' then break end\n"
    "    end\n"
    "    return table.concat(out, '/')\n"
    "  elseif op == 4 then return ser(string.gsub(subj, pat, repl, arg))\n"
    "  elseif op == 5 then return ser(string.gsub(subj, pat, fuzz_table, arg))\n"
    "  else return ser(string.gsub(subj, pat, fuzz_repl, arg)) end\n"
    "end\n";

static lua_State *new_state(struct meter *me)
{
    lua_State *L = luaL_newstate();
    if (!L)
        FAIL("out of memory");
    luaL_openlibs(L);
    if (luaL_dostring(L, PRELUDE))
        FAIL("prelude: %s", lua_tostring(L, -1));
    if (me) {
        lua_getglobal(L, "string");
        kv_match_open(L, &me->m);
        lua_pop(L, 1);
    }
    return L;
}

struct call {
    int op;
    bool has_arg;
    int arg;
    const uint8_t *pat, *repl, *subj;
    size_t pat_len, repl_len, subj_len;
};

/* The call in L: true when it returned (the text in out), false when it
 * raised (the message in out). */
static bool run(lua_State *L, const struct call *c, char **out, size_t *out_len)
{
    lua_settop(L, 0);
    lua_getglobal(L, "fuzz_run");
    lua_pushinteger(L, c->op);
    lua_pushlstring(L, (const char *)c->subj, c->subj_len);
    lua_pushlstring(L, (const char *)c->pat, c->pat_len);
    lua_pushlstring(L, (const char *)c->repl, c->repl_len);
    if (c->has_arg)
        lua_pushinteger(L, c->arg);
    else
        lua_pushnil(L);
    int rc = lua_pcall(L, 5, 1, 0);
    size_t n = 0;
    const char *s = lua_tolstring(L, -1, &n);
    if (!s)
        FAIL("op %d: a result that is not a string", c->op);
    *out = malloc(n + 1);
    if (!*out)
        FAIL("out of memory");
    memcpy(*out, s, n);
    (*out)[n] = 0;
    *out_len = n;
    lua_settop(L, 0);
    return rc == 0;
}

static lua_State *lib_state, *our_state;
static struct meter our_meter = {.m = {.charge = charge}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    if (!lib_state) {
        lib_state = new_state(NULL);
        our_state = new_state(&our_meter);
    }
    struct call c = {.op = data[0] % 8, .has_arg = data[1] != 0x80, .arg = (int8_t)data[1]};
    size_t at = 2;
    c.pat_len = data[at++];
    if (c.pat_len > size - at)
        c.pat_len = size - at;
    c.pat = data + at;
    at += c.pat_len;
    c.repl_len = at < size ? data[at++] : 0;
    if (c.repl_len > size - at)
        c.repl_len = size - at;
    c.repl = data + at;
    at += c.repl_len;
    c.subj = data + at;
    c.subj_len = size - at;

    our_meter.steps = 0;
    char *ours, *lib;
    size_t ours_len, lib_len;
    bool ours_ok = run(our_state, &c, &ours, &ours_len);
    if (!ours_ok && (strstr(ours, OVER_BUDGET) || strstr(ours, "pattern too complex"))) {
        free(ours); /* the library would take as long, or overflow its stack */
        return 0;
    }
    bool lib_ok = run(lib_state, &c, &lib, &lib_len);
    if (ours_ok != lib_ok || ours_len != lib_len || memcmp(ours, lib, ours_len) != 0)
        FAIL("op %d: ours %s [%s], Lua 5.1's %s [%s]", c.op, ours_ok ? "returned" : "raised", ours,
             lib_ok ? "returned" : "raised", lib);
    free(ours);
    free(lib);
    /* the garbage of a run (gsub's strings) is the states' own business */
    lua_gc(lib_state, LUA_GCSTEP, 0);
    lua_gc(our_state, LUA_GCSTEP, 0);
    return 0;
}
