/* kv/script.c: Lua scripts: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT
 * (LOAD, EXISTS, FLUSH, KILL, HELP), as Redis 7.0 runs them (Lua 5.1 with
 * its cjson and bit libraries, redis.call / pcall / error_reply /
 * status_reply / sha1hex / log, the same replies and errors).
 *
 * A script is an operation of the log like any command: every replica runs
 * it at the same point and must compute the same reply and the same
 * changes. So each run gets a fresh Lua state, dropped after it: nothing a
 * script leaves behind (a global, a string in the interning table, the
 * garbage collector's progress) can make the next run differ between a
 * replica that ran every script and one restored from a snapshot a minute
 * ago. What that costs and buys (bench/README.md "Scripts"): about 2.5 us
 * of setting up per run (the code compiled once per replica, libraries
 * opened as a script names them); in exchange the two bounds below are
 * exact on every replica, because a fresh state's allocations and
 * instructions depend only on the script, its arguments and the store:
 *   - KV_SCRIPT_MAX_INSNS Lua instructions (a count hook): a script that
 *     loops forever stops with an error at the same instruction everywhere
 *     (Redis would answer BUSY and wait for SCRIPT KILL, which a replicated
 *     log cannot offer: the operation is replayed after every restart);
 *   - KV_SCRIPT_MAX_HEAP bytes of Lua heap.
 * The other sources of difference are removed as Redis removes them, or
 * more: no os, io, debug, print, loadfile, dofile, getfenv, setfenv,
 * newproxy; math.random is a fixed-seed generator restarted per run;
 * tostring of a table or function names it by order of first sight, not
 * by address. What cannot be removed is the script's own choice to walk a
 * table keyed by tables or functions with pairs() (Lua orders those by
 * address): scripts must not depend on that order, as in Redis.
 *
 * The script cache (SHA-1 of the body -> body) is state: EVALSHA must find
 * a script on every replica or on none. It is saved in snapshots and is
 * part of the state hash. Scripts cached by EVAL are bounded (Redis 7.4's
 * rule): beyond KV_SCRIPT_EVAL_CACHED the least recently used is dropped;
 * those of SCRIPT LOAD stay until SCRIPT FLUSH.
 *
 * This file: the cache and the commands; script_lua.c runs a script. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "internal.h"

/* ------------------------------------------------------------------ */
/* The cache.                                                          */

static void sha_lower(const uint8_t *p, char out[41])
{
    for (int i = 0; i < 40; i++)
        out[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] | 0x20 : p[i]);
    out[40] = 0;
}

static struct kv_script *script_of(const struct kv_dent *e)
{
    return e->v.p;
}

static uint64_t script_term(const struct kv_dent *e)
{
    uint8_t b[40 + 1 + 8];
    memcpy(b, e->key, 40);
    b[40] = script_of(e)->loaded;
    memcpy(b + 41, &e->ver, 8);
    return XXH3_64bits_withSeed(b, sizeof b, 0x5343524950ull); /* "SCRIP" */
}

static void script_release(struct kv_store *s, struct kv_dent *e)
{
    struct kv_script *sc = script_of(e);
    kv_free(s, sc->code);
    kv_free(s, sc);
}

/* e was used now: its LRU stamp moves, and its term in the hash with it. */
static void script_touch(struct kv_store *s, struct kv_dent *e)
{
    s->script_sum -= script_term(e);
    e->ver = ++s->script_seq;
    s->script_sum += script_term(e);
}

static void script_unlink(struct kv_store *s, struct kv_dent *e)
{
    s->script_sum -= script_term(e);
    if (!script_of(e)->loaded)
        s->n_eval_scripts--;
    struct kv_dent *x = kv_dict_unlink(s, &s->scripts, e->key, e->klen);
    RABIA_ASSERT(x == e);
    script_release(s, e);
    kv_free(s, e);
}

struct lru_walk {
    struct kv_dent *oldest;
};

static int lru_visit(void *arg, struct kv_dent *e)
{
    struct lru_walk *w = arg;
    if (!script_of(e)->loaded && (!w->oldest || e->ver < w->oldest->ver))
        w->oldest = e;
    return 0;
}

/* Add body under sha (absent) with its last use ver. NULL: -ENOMEM. */
static struct kv_dent *script_insert(struct kv_store *s, const uint8_t *sha, const uint8_t *body, size_t n,
                                     bool loaded, uint64_t ver)
{
    RABIA_ASSERT(n <= UINT32_MAX);
    struct kv_script *sc = kv_alloc(s, sizeof *sc + n + 1);
    if (!sc)
        return NULL;
    *sc = (struct kv_script){.len = (uint32_t)n, .loaded = loaded};
    memcpy(sc->body, body, n);
    sc->body[n] = 0;
    struct kv_dent *e = kv_dict_add(s, &s->scripts, sha, 40);
    if (!e) {
        kv_free(s, sc);
        return NULL;
    }
    e->v.p = sc;
    e->ver = ver;
    if (!loaded)
        s->n_eval_scripts++;
    s->script_sum += script_term(e);
    return e;
}

/* Cache body under sha (absent): by SCRIPT LOAD (kept) or by EVAL (the
 * least recently used of those dropped beyond the bound). NULL: -ENOMEM. */
static struct kv_dent *script_add(struct kv_store *s, const char *sha, const uint8_t *body, size_t n, bool loaded)
{
    if (!loaded && s->n_eval_scripts >= KV_SCRIPT_EVAL_CACHED) {
        struct lru_walk w = {0};
        int err = 0;
        uint64_t cur = 0;
        do
            cur = kv_dict_scan(s, &s->scripts, cur, 1024, lru_visit, &w, &err);
        while (cur && !err);
        if (err)
            return NULL;
        RABIA_ASSERT(w.oldest);
        script_unlink(s, w.oldest);
    }
    return script_insert(s, (const uint8_t *)sha, body, n, loaded, ++s->script_seq);
}

static struct kv_dent *script_find(struct kv_store *s, const uint8_t *sha, size_t n)
{
    if (n != 40)
        return NULL;
    char low[41];
    sha_lower(sha, low);
    return kv_dict_find(s, &s->scripts, (const uint8_t *)low, 40);
}

void kv_scripts_clear(struct kv_store *s)
{
    kv_dict_clear(s, &s->scripts, script_release);
    s->n_eval_scripts = 0;
    s->script_sum = 0;
}

/* Snapshot section: u64 sequence, u64 count, then per script in hash
 * order: str sha, u8 loaded, u64 last use, str body (the compiled code
 * is each replica's own: not saved). */
struct save_walk {
    struct rabia_buf *out;
};

static int save_visit(void *arg, struct kv_dent *e)
{
    struct save_walk *w = arg;
    const struct kv_script *sc = script_of(e);
    int rc;
    if ((rc = kv_wr_str(w->out, e->key, 40)) || (rc = kv_wr_u8(w->out, sc->loaded)) ||
        (rc = kv_wr_u64(w->out, e->ver)) || (rc = kv_wr_str(w->out, sc->body, sc->len)))
        return rc;
    return 0;
}

int kv_scripts_save(struct kv_store *s, struct rabia_buf *out)
{
    int rc;
    if ((rc = kv_wr_u64(out, s->script_seq)) || (rc = kv_wr_u64(out, kv_dict_size(&s->scripts))))
        return rc;
    struct save_walk w = {out};
    uint64_t cur = 0;
    do {
        int err = 0;
        cur = kv_dict_scan(s, &s->scripts, cur, 1024, save_visit, &w, &err);
        if (err)
            return err;
    } while (cur);
    return 0;
}

int kv_scripts_load(struct kv_store *s, struct kv_rd *r)
{
    uint64_t seq, n;
    if (!kv_rd_u64(r, &seq) || !kv_rd_u64(r, &n) || n > (uint64_t)(r->end - r->p) / 57) /* 57: smallest record */
        return -EINVAL;
    s->script_seq = seq;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *sha, *body;
        uint32_t shan, bn;
        uint8_t loaded;
        uint64_t ver;
        if (!kv_rd_str(r, &sha, &shan) || shan != 40 || !kv_rd_u8(r, &loaded) || loaded > 1 || !kv_rd_u64(r, &ver) ||
            ver > seq || !kv_rd_str(r, &body, &bn))
            return -EINVAL;
        char want[41];
        kv_sha1_hex(body, bn, want);
        if (memcmp(want, sha, 40) || kv_dict_find(s, &s->scripts, sha, 40))
            return -EINVAL; /* not the body's name, or a script twice */
        if (!script_insert(s, sha, body, bn, loaded, ver))
            return -ENOMEM;
    }
    return 0;
}

/* The shebang of a Redis 7 script: "#!lua" and optional flags=a,b. Its
 * length (to skip: the newline stays, so line numbers do not move) or -1
 * with err set. level8: a shebang without a newline is refused, as Redis
 * 7.0 refuses it (before, taken as the whole script: found by review). */
static long shebang(const uint8_t *p, size_t n, bool level8, bool *no_writes, char *err, size_t errlen)
{
    *no_writes = false;
    if (n < 2 || p[0] != '#' || p[1] != '!')
        return 0;
    const uint8_t *nl = memchr(p, '\n', n);
    if (!nl && level8) {
        snprintf(err, errlen, "ERR Invalid script shebang");
        return -1;
    }
    size_t len = nl ? (size_t)(nl - p) : n;
    /* words separated by spaces: the first is #!<engine> */
    size_t i = 0;
    size_t w0 = i;
    while (i < len && p[i] != ' ')
        i++;
    if (i - w0 != 5 || memcmp(p, "#!lua", 5)) {
        snprintf(err, errlen, "ERR Unexpected engine in script shebang: %.*s", (int)(i - w0 > 100 ? 100 : i - w0),
                 (const char *)p);
        return -1;
    }
    while (i < len) {
        while (i < len && p[i] == ' ')
            i++;
        size_t ws = i;
        while (i < len && p[i] != ' ')
            i++;
        if (i == ws)
            break;
        const uint8_t *w = p + ws;
        size_t wl = i - ws;
        if (wl < 6 || memcmp(w, "flags=", 6)) {
            snprintf(err, errlen, "ERR Unknown lua shebang option: %.*s", (int)(wl > 100 ? 100 : wl), (const char *)w);
            return -1;
        }
        size_t f = 6;
        while (f < wl) {
            size_t fs = f;
            while (f < wl && w[f] != ',')
                f++;
            const uint8_t *fl = w + fs;
            size_t fn = f - fs;
            if (fn == 9 && !memcmp(fl, "no-writes", 9))
                *no_writes = true;
            else if (!((fn == 9 && !memcmp(fl, "allow-oom", 9)) || (fn == 11 && !memcmp(fl, "allow-stale", 11)) ||
                       (fn == 10 && !memcmp(fl, "no-cluster", 10)) ||
                       (fn == 21 && !memcmp(fl, "allow-cross-slot-keys", 21)))) {
                snprintf(err, errlen, "ERR Unexpected flag in script shebang: %.*s", (int)(fn > 100 ? 100 : fn),
                         (const char *)fl);
                return -1;
            }
            if (f < wl)
                f++;
        }
    }
    return (long)len;
}

/* The script sha (body, its shebang skip bytes long) cached with its
 * compiled code, in *e: added when absent (by SCRIPT LOAD when loaded),
 * compiled when its code is missing (a replica restored from a snapshot
 * compiles on first use; the same Lua compiles what compiled before). 1,
 * 0 when the compiler's error was replied (nothing cached), -ENOMEM. */
static int script_ready(struct kv_ctx *c, const char *sha, const uint8_t *body, size_t n, long skip, bool loaded,
                        struct kv_dent **e)
{
    if (*e && script_of(*e)->code)
        return 1;
    struct rabia_buf code = {0};
    int rc = kv_script_compile(c, body, n, skip, &code);
    if (rc > 0 && !*e && !(*e = script_add(c->s, sha, body, n, loaded)))
        rc = -ENOMEM;
    struct kv_script *sc = rc > 0 ? script_of(*e) : NULL;
    if (sc && !(sc->code = kv_alloc(c->s, code.len)))
        rc = -ENOMEM;
    if (rc > 0) {
        memcpy(sc->code, code.data, code.len);
        sc->code_len = code.len;
    }
    rabia_buf_free(&code);
    return rc;
}

/* numkeys of EVAL-family argument 2: false when an error was replied. */
static bool numkeys_arg(struct kv_ctx *c, uint32_t *nk)
{
    int64_t v;
    if (!kv_arg_i64(c, 2, &v))
        return false;
    if (v > (int64_t)c->argc - 3) {
        kv_reply_err(c, "ERR Number of keys can't be greater than number of args");
        return false;
    }
    if (v < 0) {
        kv_reply_err(c, "ERR Number of keys can't be negative");
        return false;
    }
    *nk = (uint32_t)v;
    return true;
}

static int eval_generic(struct kv_ctx *c, bool by_sha, bool ro)
{
    uint32_t nk;
    if (by_sha && c->len[1] != 40) /* Redis answers this before looking at numkeys */
        return kv_reply_err(c, "NOSCRIPT No matching script. Please use EVAL.");
    if (!numkeys_arg(c, &nk))
        return 0;
    struct kv_dent *e;
    char sha[41];
    if (by_sha) {
        e = script_find(c->s, c->argv[1], c->len[1]);
        if (!e)
            return kv_reply_err(c, "NOSCRIPT No matching script. Please use EVAL.");
        memcpy(sha, e->key, 40);
        sha[40] = 0;
    } else {
        kv_sha1_hex(c->argv[1], c->len[1], sha);
        e = kv_dict_find(c->s, &c->s->scripts, (const uint8_t *)sha, 40);
    }
    const uint8_t *body = e ? script_of(e)->body : c->argv[1];
    size_t n = e ? script_of(e)->len : c->len[1];
    char err[160];
    bool no_writes;
    long skip = shebang(body, n, c->s->feature_level >= KV_LEVEL_FLUSH_WATCH, &no_writes, err, sizeof err);
    if (skip < 0)
        return kv_reply_err(c, err);
    if (e)
        script_touch(c->s, e);
    int rc = script_ready(c, sha, body, n, skip, false, &e); /* nothing is cached when it does not compile */
    if (rc <= 0)
        return rc;
    c->s->in_script++; /* SORT sorts a set it would return unsorted (t_sort.c) */
    rc = kv_script_run(c, sha, script_of(e), no_writes || ro, 3, nk);
    c->s->in_script--;
    return rc;
}

KV_CMD(eval) { return eval_generic(c, false, false); }
KV_CMD(evalsha) { return eval_generic(c, true, false); }
KV_CMD(eval_ro) { return eval_generic(c, false, true); }
KV_CMD(evalsha_ro) { return eval_generic(c, true, true); }

static const char *const script_help[] = {
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Print this help.",
};

static int script_arity(struct kv_ctx *c, const char *sub)
{
    return kv_reply_errf(c, "ERR wrong number of arguments for 'script|%s' command", sub);
}

KV_CMD(script)
{
    if (kv_arg_is(c, 1, "load")) {
        if (c->argc != 3)
            return script_arity(c, "load");
        char sha[41], err[160];
        bool no_writes;
        kv_sha1_hex(c->argv[2], c->len[2], sha);
        long skip = shebang(c->argv[2], c->len[2], c->s->feature_level >= KV_LEVEL_FLUSH_WATCH, &no_writes, err,
                            sizeof err);
        if (skip < 0)
            return kv_reply_err(c, err);
        struct kv_dent *e = kv_dict_find(c->s, &c->s->scripts, (const uint8_t *)sha, 40);
        if (e && !script_of(e)->loaded) { /* from EVAL: kept from now on */
            c->s->script_sum -= script_term(e);
            script_of(e)->loaded = true;
            c->s->n_eval_scripts--;
            c->s->script_sum += script_term(e);
        } else if (!e) {
            int rc = script_ready(c, sha, c->argv[2], c->len[2], skip, true, &e);
            if (rc <= 0)
                return rc;
        }
        return kv_reply_bulk(c, sha, 40);
    }
    if (kv_arg_is(c, 1, "exists")) {
        if (c->argc < 3)
            return script_arity(c, "exists");
        int rc = kv_reply_array(c, c->argc - 2);
        for (uint32_t i = 2; !rc && i < c->argc; i++)
            rc = kv_reply_int(c, script_find(c->s, c->argv[i], c->len[i]) != NULL);
        return rc;
    }
    if (kv_arg_is(c, 1, "flush")) {
        /* Redis 7.0: any other argument list, a longer one too (difftest seed 302) */
        if (c->argc > 3 || (c->argc == 3 && !kv_arg_is(c, 2, "async") && !kv_arg_is(c, 2, "sync")))
            return kv_reply_err(c, "ERR SCRIPT FLUSH only support SYNC|ASYNC option");
        kv_scripts_clear(c->s);
        return kv_reply_ok(c);
    }
    if (kv_arg_is(c, 1, "kill")) {
        if (c->argc != 2)
            return script_arity(c, "kill");
        return kv_reply_err(c, "NOTBUSY No scripts in execution right now.");
    }
    if (kv_arg_is(c, 1, "help")) {
        if (c->argc != 2)
            return script_arity(c, "help");
        size_t n = sizeof script_help / sizeof script_help[0];
        int rc = kv_reply_array(c, n);
        for (size_t i = 0; !rc && i < n; i++)
            rc = kv_reply_status(c, script_help[i]);
        return rc;
    }
    if (kv_arg_is(c, 1, "debug"))
        return kv_reply_err(c, "ERR SCRIPT DEBUG is not supported: a script runs on every replica, at the point "
                               "the log decides");
    size_t n = c->len[1] > 128 ? 128 : c->len[1];
    char sub[129];
    memcpy(sub, c->argv[1], n);
    sub[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (sub[i] == '\r' || sub[i] == '\n')
            sub[i] = ' ';
    return kv_reply_errf(c, "ERR unknown subcommand '%s'. Try SCRIPT HELP.", sub);
}
