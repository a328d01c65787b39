/* replica/acl.c: the ACL file parser (good lines, every refused rule with
 * its message), authentication, command and key permissions (RESP argv
 * and native KV operations, MULTI as TXN, @DB, the movable-key commands). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acl.h"
#include "check.h"
#include "kv.h"
#include "rabia/types.h"

static struct acl A;

static int parse(const char *line, char *err, size_t n)
{
    err[0] = 0;
    return acl_parse_line(&A, line, err, n);
}

static bool auth_ok(const char *user, const char *pass)
{
    int u = -1;
    return acl_authenticate(&A, (const uint8_t *)user, strlen(user), (const uint8_t *)pass, strlen(pass), &u) ==
           ACL_AUTH_OK;
}

static int cmd(const char *user, int argc, const char *const *argv)
{
    int u = acl_find(&A, (const uint8_t *)user, strlen(user));
    CHECK(u >= 0);
    if (u < 0) return -2;
    const struct rabia_kv_cmd_info *k = rabia_kv_lookup((const uint8_t *)argv[0], strlen(argv[0]));
    CHECK(k != NULL);
    if (!k) return -2;
    const uint8_t *av[16];
    size_t lens[16];
    for (int i = 0; i < argc; i++) {
        av[i] = (const uint8_t *)argv[i];
        lens[i] = strlen(argv[i]);
    }
    uint32_t cats = acl_categories(k->name, k->flags & RABIA_KV_CMD_READONLY, k->flags & RABIA_KV_CMD_WRITE,
                                   k->flags & RABIA_KV_CMD_FAST, k->flags & RABIA_KV_CMD_PUBSUB);
    return acl_check_command(&A, u, k->name, cats, (uint32_t)argc, av, lens, k->first, k->last, k->step);
}

static int op(const char *user, struct rabia_buf *b, char *name)
{
    int u = acl_find(&A, (const uint8_t *)user, strlen(user));
    return acl_check_kv_op(&A, u, b->data, b->len, name, 64);
}

static void test_defaults(void)
{
    acl_init(&A, "");
    CHECK(!acl_auth_required(&A));
    CHECK(auth_ok("default", "anything")); /* nopass */
    acl_init(&A, "s3cret");
    CHECK(acl_auth_required(&A));
    CHECK(auth_ok("default", "s3cret"));
    CHECK(!auth_ok("default", "s3cre"));
    CHECK(!auth_ok("nobody", "s3cret"));
    const char *set[] = {"set", "k", "v"};
    CHECK_EQ(cmd("default", 3, set), ACL_ALLOWED);
}

static void test_good_lines(void)
{
    char err[512];
    acl_init(&A, "defpw");
    CHECK_EQ(parse("# a comment", err, sizeof err), 0);
    CHECK_EQ(parse("   ", err, sizeof err), 0);
    CHECK_EQ(parse("user ro on >ropw ~* +@read +@connection", err, sizeof err), 0);
    CHECK_EQ(parse("user app on >apppw >second ~app:* ~cache:? +@all -flushall", err, sizeof err), 0);
    CHECK_EQ(parse("user off1 off >offpw allkeys allcommands", err, sizeof err), 0);
    /* #sha256 of "hashed" (printf %s hashed | sha256sum) */
    CHECK_EQ(parse("user h on #1a06df824ed741b53c785079a6347f00eec5af82f9850775409ca69dff4068a6 ~* +@all", err,
                   sizeof err), 0);
    CHECK_EQ(parse("user np on nopass ~* +@all -@write", err, sizeof err), 0);
    CHECK_EQ(parse("user sub on >p ~* +config|get -@all +get", err, sizeof err), 0);
    CHECK_EQ(parse("user rm on >a >b <a ~* +@all", err, sizeof err), 0);
    CHECK_EQ(A.n, 8);
    CHECK(auth_ok("ro", "ropw"));
    CHECK(!auth_ok("ro", "apppw"));
    CHECK(auth_ok("app", "apppw"));
    CHECK(auth_ok("app", "second"));
    CHECK(!auth_ok("off1", "offpw")); /* off */
    int u = -1;
    CHECK_EQ(acl_authenticate(&A, (const uint8_t *)"off1", 4, (const uint8_t *)"offpw", 5, &u), ACL_AUTH_DISABLED);
    CHECK_EQ(acl_authenticate(&A, (const uint8_t *)"off1", 4, (const uint8_t *)"x", 1, &u), ACL_AUTH_WRONG_PASS);
    CHECK(auth_ok("np", "whatever"));
    CHECK(auth_ok("h", "hashed"));
    CHECK(!auth_ok("rm", "a"));
    CHECK(auth_ok("rm", "b"));
    CHECK(auth_ok("default", "defpw")); /* requirepass kept: the file has no default line */
    /* a later line for the same user replaces it */
    CHECK_EQ(parse("user app on >newpw ~app:* +@read", err, sizeof err), 0);
    CHECK_EQ(A.n, 8);
    CHECK(!auth_ok("app", "apppw"));
    CHECK(auth_ok("app", "newpw"));
    CHECK_EQ(parse("user default on nopass ~* +@all", err, sizeof err), 0);
    CHECK(!acl_auth_required(&A));
    CHECK_EQ(parse("user default off", err, sizeof err), 0);
    CHECK(acl_auth_required(&A));
}

/* acl_load_file of a file holding bytes[0..n) (NULs included) into a fresh
 * table; want: a text the error must hold, with "%s" for the file's path
 * (NULL: the load must succeed). */
static void load_bytes(const char *bytes, size_t n, const char *want)
{
    char path[] = "/tmp/test_acl.XXXXXX", err[512], w[256];
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    CHECK_EQ(write(fd, bytes, n), (long long)n);
    close(fd);
    acl_init(&A, "");
    int rc = acl_load_file(&A, path, err, sizeof err);
    if (!want) {
        CHECK_EQ(rc, 0);
        if (rc) fprintf(stderr, "got: %s\n", err);
    } else {
        CHECK_EQ(rc, RABIA_E_CONFIG);
        snprintf(w, sizeof w, want, path);
        CHECK(strstr(err, w) != NULL);
        if (!strstr(err, w)) fprintf(stderr, "got: %s\n", err);
    }
    unlink(path);
}

static void test_bad_lines(void)
{
    static const struct {
        const char *line, *want;
    } bad[] = {
        {"usr bob on", "not 'user'"},
        {"user", "without a name"},
        {"user bob on +@nosuchcat", "unknown command category '@nosuchcat'"},
        {"user bob on %R~foo", "unknown ACL rule '%R~foo'"},
        {"user bob on &chan:*", "unknown ACL rule '&chan:*'"},
        {"user bob on #abc", "SHA-256 in 64 hex digits"},
        {"user bob on <neverset", "does not have"},
        {"user bob on ~", "empty"},
        {"user bob on selector", "unknown ACL rule 'selector'"},
        /* a command name this server does not have was a rule matching
         * nothing: "-flushal" left FLUSHALL allowed (found by review) */
        {"user bob on >p ~* +@all -flushal", "'-flushal': no command 'flushal' here"},
        {"user bob on >p ~* +GETT", "no command 'gett' here"},
        {"user bob on >p ~* +config|gett", "no such subcommand of 'config'"},
        {"user bob on >p ~* +get|x", "no subcommands for 'get'"},
        {"user bob on >p ~* +acl|setusr", "no such subcommand of 'acl'"},
        {"user bob on >p ~* +@all -debugg", "no command 'debugg' here nor in Redis"},
        {"user bob on >p ~* +|get", "no command '' here"},
    };
    char err[512];
    /* Redis's commands this server lacks, as Redis ACL files name them to
     * harden a user: rules matching nothing here (they cannot run), taken */
    CHECK(acl_redis_names_sorted());
    acl_init(&A, "");
    CHECK_EQ(parse("user ops on >p ~* +@all -debug -monitor -shutdown -config|rewrite -acl|setuser -cluster|info "
                   "-object|encoding", err, sizeof err), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        acl_init(&A, "");
        int rc = parse(bad[i].line, err, sizeof err);
        CHECK_EQ(rc, RABIA_E_CONFIG);
        if (!strstr(err, bad[i].want)) {
            fprintf(stderr, "line '%s': message '%s' lacks '%s'\n", bad[i].line, err, bad[i].want);
            CHECK(0);
        }
        CHECK_EQ(A.n, 1); /* a refused line adds nobody */
    }
    /* a file: the error names file and line */
    char path[] = "/tmp/test_acl.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *text = "user a on >x ~* +@all\n# fine\nuser b on >y ~* +@al\n";
    CHECK_EQ(write(fd, text, strlen(text)), (long long)strlen(text));
    close(fd);
    acl_init(&A, "");
    CHECK_EQ(acl_load_file(&A, path, err, sizeof err), RABIA_E_CONFIG);
    char want[128];
    snprintf(want, sizeof want, "%s:3: user 'b': unknown command category '@al'", path);
    CHECK(strstr(err, want) != NULL);
    if (!strstr(err, want)) fprintf(stderr, "got: %s\n", err);
    unlink(path);
    CHECK_EQ(acl_load_file(&A, "/nonexistent/acl", err, sizeof err), RABIA_E_CONFIG);
    CHECK(strstr(err, "cannot open") != NULL);
    /* a directory: the cause named (it was "read error") */
    CHECK_EQ(acl_load_file(&A, "/tmp", err, sizeof err), RABIA_E_CONFIG);
    CHECK(strstr(err, "Is a directory") != NULL);
    if (!strstr(err, "Is a directory")) fprintf(stderr, "got: %s\n", err);
    /* a NUL byte in a short line: named as such (it was "line longer than
     * 8190 bytes") */
    static const char nul[] = "user a on >x ~* +@all\0junk\nuser b on\n";
    load_bytes(nul, sizeof nul - 1, "%s:1: a NUL byte in the line");
    /* ... also on the last line without a newline: the password was "x" */
    static const char nul_last[] = "user a on >y ~* +@all\nuser b on >x\0junk ~* +@all";
    load_bytes(nul_last, sizeof nul_last - 1, "%s:2: a NUL byte in the line");
    /* a UTF-8 byte order mark before the first line, as the config file
     * takes it (it was "line starts with '<BOM>user', not 'user'") */
    static const char bom[] = "\xEF\xBB\xBFuser a on >x ~* +@all\nuser b on >y ~* +@read\n";
    load_bytes(bom, sizeof bom - 1, NULL);
    CHECK_EQ(A.n, 3);
    CHECK(auth_ok("a", "x"));
}

static void test_permissions(void)
{
    char err[512];
    acl_init(&A, "pw");
    CHECK_EQ(parse("user ro on >p ~* +@read", err, sizeof err), 0);
    CHECK_EQ(parse("user app on >p ~app:* ~cache:? +@all -flushall", err, sizeof err), 0);
    CHECK_EQ(parse("user nw on >p ~* +@all -@write +del", err, sizeof err), 0);
    CHECK_EQ(parse("user gk on >p ~g* +@all", err, sizeof err), 0); /* keys that match SORT's keywords */
    const char *get[] = {"get", "k"}, *set[] = {"set", "app:1", "v"}, *seto[] = {"set", "other:1", "v"};
    const char *mset_ok[] = {"mset", "app:1", "v", "cache:x", "w"}, *mset_bad[] = {"mset", "app:1", "v", "cache:xy", "w"};
    const char *mset_valkey[] = {"mset", "app:1", "other:1"}; /* a value that looks like a key is not a key */
    const char *zu_ok[] = {"zunionstore", "app:d", "2", "app:a", "app:b"};
    const char *zu_bad[] = {"zunionstore", "app:d", "2", "app:a", "x:b"};
    const char *zu_weights[] = {"zunionstore", "app:d", "1", "app:a", "WEIGHTS", "x"};
    const char *sic[] = {"sintercard", "2", "app:a", "b"};
    const char *zun_ok[] = {"zunion", "2", "app:a", "app:b", "WITHSCORES"}, *zdi_bad[] = {"zdiff", "2", "app:a", "x:b"};
    const char *zds_bad[] = {"zdiffstore", "x:d", "1", "app:a"}, *zic_bad[] = {"zintercard", "1", "x:a", "LIMIT", "1"};
    const char *flush[] = {"flushall"}, *del[] = {"del", "k"};
    /* LMPOP / ZMPOP: numkeys at 1, then the keys; WHERE and COUNT are no keys */
    const char *lmp_ok[] = {"lmpop", "2", "app:a", "app:b", "LEFT", "COUNT", "2"};
    const char *lmp_bad[] = {"lmpop", "2", "app:a", "x:b", "LEFT"}, *zmp_bad[] = {"zmpop", "1", "x:a", "MIN"};
    const char *blmp_ok[] = {"blmpop", "x:0", "1", "app:a", "LEFT"}, *bzmp_bad[] = {"bzmpop", "0", "1", "x:a", "MIN"};
    const char *bzp_bad[] = {"bzpopmin", "app:a", "x:b", "0"}, *bzp_ok[] = {"bzpopmax", "app:a", "0"};
    CHECK_EQ(cmd("ro", 2, get), ACL_ALLOWED);
    CHECK_EQ(cmd("ro", 3, set), ACL_DENIED_CMD);
    CHECK_EQ(cmd("app", 3, set), ACL_ALLOWED);
    CHECK_EQ(cmd("app", 3, seto), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 5, mset_ok), ACL_ALLOWED);
    CHECK_EQ(cmd("app", 5, mset_bad), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 3, mset_valkey), ACL_ALLOWED);
    CHECK_EQ(cmd("app", 5, zu_ok), ACL_ALLOWED);
    CHECK_EQ(cmd("app", 5, zu_bad), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 6, zu_weights), ACL_ALLOWED);
    CHECK_EQ(cmd("app", 4, sic), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 5, zun_ok), ACL_ALLOWED); /* WITHSCORES after the keys is no key */
    CHECK_EQ(cmd("app", 4, zdi_bad), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 4, zds_bad), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 5, zic_bad), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 7, lmp_ok), ACL_ALLOWED);
    CHECK_EQ(cmd("app", 5, lmp_bad), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 4, zmp_bad), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 5, blmp_ok), ACL_ALLOWED); /* the timeout is no key */
    CHECK_EQ(cmd("app", 5, bzmp_bad), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 4, bzp_bad), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 3, bzp_ok), ACL_ALLOWED);
    CHECK_EQ(cmd("app", 1, flush), ACL_DENIED_CMD);
    /* GEORADIUS / GEORADIUSBYMEMBER: the key after every STORE and
     * STOREDIST from their options on (the store writes the last one);
     * GEOSEARCHSTORE: keys 1 and 2 */
    const char *gr_ok[] = {"georadius", "app:g", "15", "37", "1", "km", "STORE", "app:d"};
    const char *gr_bad[] = {"georadius", "app:g", "15", "37", "1", "km", "COUNT", "1", "store", "x:d"};
    const char *grd_bad[] = {"georadius", "app:g", "15", "37", "1", "km", "STORE", "app:d", "STOREDIST", "x:d"};
    const char *gr_twice[] = {"georadius", "app:g", "15", "37", "1", "km", "STORE", "app:d", "STORE", "x:d"};
    const char *grm_bad[] = {"georadiusbymember", "app:g", "m", "1", "km", "STOREDIST", "x:d"};
    const char *grm_member[] = {"georadiusbymember", "app:g", "store", "1", "km"}; /* a member, not an option */
    const char *gss_bad[] = {"geosearchstore", "x:d", "app:g", "FROMMEMBER", "m", "BYRADIUS", "1", "km"};
    const char *gs_ok[] = {"geosearch", "app:g", "FROMMEMBER", "x:m", "BYRADIUS", "1", "km"};
    CHECK_EQ(cmd("app", 8, gr_ok), ACL_ALLOWED);
    CHECK_EQ(cmd("app", 10, gr_bad), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 10, grd_bad), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 10, gr_twice), ACL_DENIED_KEY); /* the store writes x:d (the first STORE was checked) */
    CHECK_EQ(cmd("app", 7, grm_bad), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 5, grm_member), ACL_ALLOWED);
    CHECK_EQ(cmd("app", 8, gss_bad), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 7, gs_ok), ACL_ALLOWED);
    /* SORT: the last STORE's key (LIMIT, GET and BY arguments skipped);
     * BY a pattern and GET refused a user without every key, in parse
     * order, unless a parse error comes first (the store replies it) */
    const char *so_ok[] = {"sort", "app:l", "LIMIT", "0", "5", "DESC", "STORE", "app:d"};
    const char *so_dst[] = {"sort", "app:l", "STORE", "app:d", "STORE", "x:d"};
    const char *so_first[] = {"sort", "app:l", "STORE", "x:d", "STORE", "app:d"};
    const char *so_getstore[] = {"sort", "app:l", "BY", "store", "ALPHA"}; /* BY's pattern, not an option */
    const char *so_by[] = {"sort", "app:l", "BY", "w_*", "GET", "#"};
    const char *so_const[] = {"sort", "app:l", "BY", "nosort", "GET", "#"};
    const char *so_err[] = {"sort", "app:l", "LIMIT", "x", "1", "BY", "w_*"};
    const char *so_ro[] = {"sort_ro", "app:l", "STORE", "x:d"};
    CHECK_EQ(cmd("app", 8, so_ok), ACL_ALLOWED);
    CHECK_EQ(cmd("app", 6, so_dst), ACL_DENIED_KEY);
    CHECK_EQ(cmd("app", 6, so_first), ACL_ALLOWED); /* the last STORE wins, as SORT takes it */
    CHECK_EQ(cmd("app", 5, so_getstore), ACL_ALLOWED);
    CHECK_EQ(cmd("app", 6, so_by), ACL_DENIED_SORT_BY);
    CHECK_EQ(cmd("app", 6, so_const), ACL_DENIED_SORT_GET);
    CHECK_EQ(cmd("app", 7, so_err), ACL_ALLOWED);
    CHECK_EQ(cmd("app", 4, so_ro), ACL_ALLOWED); /* no STORE in SORT_RO: its syntax error */
    /* STORE's own argument is consumed, as the store reads it: "get" is
     * STORE's key here, not a GET (the check took it for the destination
     * and skipped the second STORE, which the store writes) */
    const char *so_kw[] = {"sort", "g:l", "STORE", "get", "STORE", "secret"};
    const char *so_kw_ok[] = {"sort", "g:l", "STORE", "secret", "STORE", "get"};
    const char *so_lim[] = {"sort", "g:l", "STORE", "limit", "STORE", "secret"};
    CHECK_EQ(cmd("gk", 6, so_kw), ACL_DENIED_KEY);
    CHECK_EQ(cmd("gk", 6, so_kw_ok), ACL_ALLOWED); /* the last STORE's key is what is written */
    CHECK_EQ(cmd("gk", 6, so_lim), ACL_DENIED_KEY);
    CHECK_EQ(cmd("nw", 6, so_by), ACL_DENIED_CMD);
    CHECK_EQ(cmd("nw", 3, seto), ACL_DENIED_CMD);
    CHECK_EQ(cmd("nw", 2, del), ACL_ALLOWED);
    CHECK_EQ(cmd("nw", 2, get), ACL_ALLOWED);
    /* subcommand rules */
    CHECK_EQ(parse("user cfg on >p ~* -@all +config|get +client", err, sizeof err), 0);
    int u = acl_find(&A, (const uint8_t *)"cfg", 3);
    CHECK(acl_cmd_allowed(&A, u, "config|get", acl_categories("config|get", 0, 0, 0, 0)));
    CHECK(!acl_cmd_allowed(&A, u, "config|set", acl_categories("config|set", 0, 0, 0, 0)));
    CHECK(acl_cmd_allowed(&A, u, "client|info", acl_categories("client|info", 0, 0, 0, 0)));
    CHECK(!acl_cmd_allowed(&A, u, "get", acl_categories("get", 1, 0, 1, 0)));
    /* CLIENT LIST, KILL and NO-EVICT are @admin @dangerous (Redis 7.0's
     * COMMAND INFO), CLIENT INFO and ID are not: a user without @admin may
     * not see or close other users' connections */
    CHECK_EQ(parse("user ops on >p ~* +@all -@admin", err, sizeof err), 0);
    u = acl_find(&A, (const uint8_t *)"ops", 3);
    static const char *const admin[] = {"client|list", "client|kill", "client|no-evict"};
    for (int i = 0; i < 3; i++) {
        uint32_t c = acl_categories(admin[i], 0, 0, 0, 0);
        CHECK((c & ACL_CAT_ADMIN) && (c & ACL_CAT_DANGEROUS) && (c & ACL_CAT_CONNECTION) && (c & ACL_CAT_SLOW));
        CHECK(!acl_cmd_allowed(&A, u, admin[i], c));
    }
    CHECK(acl_cmd_allowed(&A, u, "client|info", acl_categories("client|info", 0, 0, 0, 0)));
    CHECK(acl_cmd_allowed(&A, u, "client|id", acl_categories("client|id", 0, 0, 0, 0)));
    CHECK_EQ(acl_categories("client|id", 0, 0, 0, 0), ACL_CAT_SLOW | ACL_CAT_CONNECTION);
    /* ACL LOAD replaces every user: @admin @dangerous as in Redis; WHOAMI not */
    CHECK_EQ(acl_categories("acl|load", 0, 0, 0, 0), ACL_CAT_SLOW | ACL_CAT_ADMIN | ACL_CAT_DANGEROUS);
    CHECK(!acl_cmd_allowed(&A, u, "acl|load", acl_categories("acl|load", 0, 0, 0, 0)));
    CHECK(acl_cmd_allowed(&A, u, "acl|whoami", acl_categories("acl|whoami", 0, 0, 0, 0)));
}

/* @keyspace is Redis 7.0's: the type-agnostic key and database commands
 * (DEL, EXPIRE, TYPE, SCAN, FLUSHDB...), not every read and write. */
static void test_keyspace(void)
{
    char err[512];
    acl_init(&A, "pw");
    CHECK_EQ(parse("user ks on >p ~* +@keyspace", err, sizeof err), 0);
    CHECK_EQ(parse("user nks on >p ~* +@all -@keyspace", err, sizeof err), 0);
    const char *set[] = {"set", "k", "v"}, *get[] = {"get", "k"}, *hset[] = {"hset", "h", "f", "v"};
    const char *incr[] = {"incr", "n"}, *pub[] = {"publish", "c", "m"};
    const char *del[] = {"del", "k"}, *type[] = {"type", "k"}, *expire[] = {"expire", "k", "10"};
    const char *ren[] = {"rename", "a", "b"}, *exists[] = {"exists", "k"}, *flushdb[] = {"flushdb"};
    const char *const *data[] = {set, get, hset, incr};
    const int data_n[] = {3, 2, 4, 2};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(cmd("ks", data_n[i], data[i]), ACL_DENIED_CMD);
        CHECK_EQ(cmd("nks", data_n[i], data[i]), ACL_ALLOWED);
    }
    const char *const *keyspace[] = {del, type, expire, ren, exists, flushdb};
    const int keyspace_n[] = {2, 2, 3, 3, 2, 1};
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(cmd("ks", keyspace_n[i], keyspace[i]), ACL_ALLOWED);
        CHECK_EQ(cmd("nks", keyspace_n[i], keyspace[i]), ACL_DENIED_CMD);
    }
    CHECK_EQ(cmd("nks", 3, pub), ACL_ALLOWED);
    CHECK(acl_categories("object|encoding", 1, 0, 0, 0) & ACL_CAT_KEYSPACE);
    CHECK(!(acl_categories("getdel", 0, 1, 1, 0) & ACL_CAT_KEYSPACE));
    /* Redis 7.0's: KEYS, FLUSHALL, FLUSHDB @slow (they had no speed, so
     * "-@slow" allowed them); SORT, SORT_RO @dangerous; CONFIG HELP only
     * @slow */
    CHECK_EQ(acl_categories("keys", 1, 0, 0, 0), ACL_CAT_KEYSPACE | ACL_CAT_READ | ACL_CAT_SLOW | ACL_CAT_DANGEROUS);
    CHECK_EQ(acl_categories("flushall", 0, 1, 0, 0), ACL_CAT_KEYSPACE | ACL_CAT_WRITE | ACL_CAT_SLOW | ACL_CAT_DANGEROUS);
    CHECK_EQ(acl_categories("flushdb", 0, 1, 0, 0), ACL_CAT_KEYSPACE | ACL_CAT_WRITE | ACL_CAT_SLOW | ACL_CAT_DANGEROUS);
    CHECK_EQ(acl_categories("sort", 0, 1, 0, 0), ACL_CAT_WRITE | ACL_CAT_SLOW | ACL_CAT_DANGEROUS);
    CHECK_EQ(acl_categories("sort_ro", 1, 0, 0, 0), ACL_CAT_READ | ACL_CAT_SLOW | ACL_CAT_DANGEROUS);
    CHECK_EQ(acl_categories("config|help", 0, 0, 0, 0), ACL_CAT_SLOW);
}

/* resetchannels: no channel (it was accepted and ignored); allchannels
 * or &* after it give them back. A user without channels is not
 * unrestricted: no scripts (a script could publish). */
static void test_channels(void)
{
    char err[512], name[64];
    acl_init(&A, "pw");
    CHECK_EQ(parse("user rc on >p ~* resetchannels +@all", err, sizeof err), 0);
    CHECK_EQ(parse("user back on >p ~* resetchannels &* +@all", err, sizeof err), 0);
    const char *pub[] = {"publish", "news", "hi"}, *get[] = {"get", "k"};
    const char *ev[] = {"eval", "return 1", "0"};
    CHECK_EQ(cmd("rc", 3, pub), ACL_DENIED_CHANNEL);
    CHECK_EQ(cmd("rc", 2, get), ACL_ALLOWED);
    CHECK_EQ(cmd("rc", 3, ev), ACL_DENIED_SCRIPT);
    CHECK_EQ(cmd("back", 3, pub), ACL_ALLOWED);
    CHECK_EQ(cmd("default", 3, pub), ACL_ALLOWED);
    int u = acl_find(&A, (const uint8_t *)"rc", 2);
    const uint8_t *sub[] = {(const uint8_t *)"subscribe", (const uint8_t *)"news"};
    size_t sl[] = {9, 4};
    CHECK_EQ(acl_check_command(&A, u, "subscribe", acl_categories("subscribe", 0, 0, 0, 1), 2, sub, sl, 0, 0, 0),
             ACL_DENIED_CHANNEL);
    const uint8_t *unsub[] = {(const uint8_t *)"unsubscribe", (const uint8_t *)"news"};
    size_t ul[] = {11, 4};
    CHECK_EQ(acl_check_command(&A, u, "unsubscribe", acl_categories("unsubscribe", 0, 0, 0, 1), 2, unsub, ul, 0, 0, 0),
             ACL_ALLOWED);
    struct rabia_buf b = {0};
    CHECK_EQ(rabia_kv_encode_argv(&b, 3, (const char *[]){"PUBLISH", "news", "hi"}, NULL), 0);
    CHECK_EQ(op("rc", &b, name), ACL_DENIED_CHANNEL); /* as a native op */
    CHECK_EQ(op("back", &b, name), ACL_ALLOWED);
    rabia_buf_free(&b);
}

/* Scripts: @slow @scripting (EVAL_RO not @read), and only for users
 * allowed everything (a script's commands run inside the state machine,
 * where the user's rules are not known). */
static void test_scripts(void)
{
    char err[512];
    acl_init(&A, "pw");
    CHECK_EQ(parse("user all on >p ~* +@all", err, sizeof err), 0);
    CHECK_EQ(parse("user keys on >p ~app:* +@all", err, sizeof err), 0);
    CHECK_EQ(parse("user minus on >p ~* +@all -flushall", err, sizeof err), 0);
    CHECK_EQ(parse("user noscript on >p ~* +@all -@scripting", err, sizeof err), 0);
    CHECK_EQ(parse("user sc on >p ~* -@all +@scripting +get", err, sizeof err), 0);
    CHECK_EQ(parse("user again on >p ~* -flushall +@all", err, sizeof err), 0);
    const char *ev[] = {"eval", "return 1", "0"}, *evro[] = {"eval_ro", "return 1", "0"};
    const char *evsha[] = {"evalsha", "59b6ab2fbe0ee4b25733de0f62e6cda4899ef8e9", "0"};
    const char *load[] = {"script", "load", "return 7"};
    CHECK_EQ(acl_categories("eval", false, false, false, false), ACL_CAT_SLOW | ACL_CAT_SCRIPTING);
    CHECK_EQ(acl_categories("eval_ro", true, false, false, false), ACL_CAT_SLOW | ACL_CAT_SCRIPTING);
    CHECK_EQ(cmd("all", 3, ev), ACL_ALLOWED);
    CHECK_EQ(cmd("all", 3, evro), ACL_ALLOWED);
    CHECK_EQ(cmd("all", 3, evsha), ACL_ALLOWED);
    CHECK_EQ(cmd("again", 3, ev), ACL_ALLOWED); /* +@all after the denial: everything */
    CHECK_EQ(cmd("keys", 3, ev), ACL_DENIED_SCRIPT);
    CHECK_EQ(cmd("keys", 3, evsha), ACL_DENIED_SCRIPT);
    CHECK_EQ(cmd("minus", 3, ev), ACL_DENIED_SCRIPT);
    CHECK_EQ(cmd("minus", 3, evro), ACL_DENIED_SCRIPT);
    CHECK_EQ(cmd("noscript", 3, ev), ACL_DENIED_CMD);
    CHECK_EQ(cmd("noscript", 3, load), ACL_DENIED_CMD);
    CHECK_EQ(cmd("sc", 3, ev), ACL_DENIED_SCRIPT);
    CHECK_EQ(cmd("sc", 3, load), ACL_ALLOWED); /* SCRIPT LOAD runs nothing */
    /* the native protocol: inside a transaction too */
    struct rabia_buf e = {0}, t = {0};
    char name[64];
    CHECK_EQ(rabia_kv_encode_argv(&e, 3, ev, NULL), 0);
    const uint8_t *ops[1] = {e.data};
    size_t lens[1] = {e.len};
    CHECK_EQ(rabia_kv_encode_txn(&t, 1, ops, lens), 0);
    CHECK_EQ(op("all", &t, name), ACL_ALLOWED);
    CHECK_EQ(op("minus", &t, name), ACL_DENIED_SCRIPT);
    CHECK_EQ(op("keys", &e, name), ACL_DENIED_SCRIPT);
    rabia_buf_free(&e);
    rabia_buf_free(&t);
}

static void test_native_ops(void)
{
    char err[512], name[64];
    acl_init(&A, "pw");
    CHECK_EQ(parse("user ro on >p ~* +@read", err, sizeof err), 0);
    CHECK_EQ(parse("user app on >p ~app:* +@all", err, sizeof err), 0);
    struct rabia_buf a = {0}, b = {0}, t = {0}, db = {0};
    const char *get[] = {"GET", "app:1"}, *set[] = {"SET", "other:1", "v"};
    CHECK_EQ(rabia_kv_encode_argv(&a, 2, get, NULL), 0);
    CHECK_EQ(rabia_kv_encode_argv(&b, 3, set, NULL), 0);
    CHECK_EQ(op("ro", &a, name), ACL_ALLOWED);
    CHECK_EQ(op("ro", &b, name), ACL_DENIED_CMD);
    CHECK(!strcmp(name, "set"));
    CHECK_EQ(op("app", &a, name), ACL_ALLOWED);
    CHECK_EQ(op("app", &b, name), ACL_DENIED_KEY);
    /* subcommand rules apply to a native op as to RESP's "script|flush" */
    CHECK_EQ(parse("user nf on >p ~* +@all -script|flush", err, sizeof err), 0);
    struct rabia_buf sc = {0};
    const char *sflush[] = {"SCRIPT", "FLUSH"}, *sexists[] = {"SCRIPT", "EXISTS", "abc"};
    CHECK_EQ(rabia_kv_encode_argv(&sc, 2, sflush, NULL), 0);
    CHECK_EQ(op("nf", &sc, name), ACL_DENIED_CMD);
    CHECK(!strcmp(name, "script|flush"));
    CHECK_EQ(op("default", &sc, name), ACL_ALLOWED);
    rabia_buf_clear(&sc);
    CHECK_EQ(rabia_kv_encode_argv(&sc, 3, sexists, NULL), 0);
    CHECK_EQ(op("nf", &sc, name), ACL_ALLOWED);
    rabia_buf_free(&sc);
    /* GEORADIUS's STORE destination, as a native op too */
    struct rabia_buf g = {0};
    const char *geo[] = {"GEORADIUS", "app:g", "15", "37", "1", "km", "STOREDIST", "x:d"};
    CHECK_EQ(rabia_kv_encode_argv(&g, 8, geo, NULL), 0);
    CHECK_EQ(op("app", &g, name), ACL_DENIED_KEY);
    geo[7] = "app:d";
    rabia_buf_clear(&g);
    CHECK_EQ(rabia_kv_encode_argv(&g, 8, geo, NULL), 0);
    CHECK_EQ(op("app", &g, name), ACL_ALLOWED);
    /* SORT's checks as a native op too */
    const char *so[] = {"SORT", "app:l", "GET", "app:*"}, *sst[] = {"SORT", "app:l", "STORE", "x:d"};
    rabia_buf_clear(&g);
    CHECK_EQ(rabia_kv_encode_argv(&g, 4, so, NULL), 0);
    CHECK_EQ(op("app", &g, name), ACL_DENIED_SORT_GET);
    CHECK_EQ(op("default", &g, name), ACL_ALLOWED);
    rabia_buf_clear(&g);
    CHECK_EQ(rabia_kv_encode_argv(&g, 4, sst, NULL), 0);
    CHECK_EQ(op("app", &g, name), ACL_DENIED_KEY);
    rabia_buf_free(&g);
    /* a transaction: each command checked */
    const uint8_t *ops[2] = {a.data, b.data};
    size_t lens[2] = {a.len, b.len};
    CHECK_EQ(rabia_kv_encode_txn(&t, 2, ops, lens), 0);
    CHECK_EQ(op("app", &t, name), ACL_DENIED_KEY);
    CHECK_EQ(op("ro", &t, name), ACL_DENIED_CMD);
    /* @DB n op */
    const char *dbv[] = {"@DB", "3", NULL};
    size_t dbl[] = {3, 1, b.len};
    dbv[2] = (const char *)b.data;
    CHECK_EQ(rabia_kv_encode_argv(&db, 3, dbv, dbl), 0);
    CHECK_EQ(op("app", &db, name), ACL_DENIED_KEY);
    CHECK_EQ(op("default", &db, name), ACL_ALLOWED);
    /* malformed: -1 (the caller refuses it for a restricted user) */
    uint8_t junk[] = {2, 0, 0, 0, 9, 0, 0, 0, 'x'};
    struct rabia_buf j = {junk, sizeof junk, sizeof junk};
    CHECK_EQ(op("app", &j, name), -1);
    rabia_buf_free(&a);
    rabia_buf_free(&b);
    rabia_buf_free(&t);
    rabia_buf_free(&db);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_good_lines);
    RUN(test_bad_lines);
    RUN(test_permissions);
    RUN(test_keyspace);
    RUN(test_channels);
    RUN(test_native_ops);
    RUN(test_scripts);
    return CHECK_DONE();
}
