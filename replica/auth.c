/* Authentication and access control of a replica (auth.h): the cluster
 * secret's challenge-response between peers, users for RESP and native
 * clients, failed authentications logged, counted and slowed down. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "acl.h"
#include "codec.h"
#include "internal.h"
#include "invariant.h"

struct replica_auth {
    struct acl acl;
    char requirepass[256];  /* the default user's password in effect (cfg's, or a reload's): ACL LOAD keeps it */
    bool clients;          /* requirepass or acl-file: users are checked */
    bool required;         /* a new connection must authenticate (acl_auth_required) */
    bool secret;           /* cluster-secret-file: peers prove it */
    uint8_t key[AUTH_SECRET_MAX];
    size_t keylen;
    bool unrestricted[ACL_MAX_USERS]; /* +@all and allkeys, nothing taken back: no checks needed */
    uint64_t failures;     /* failed authentications, peers and clients */
    uint32_t n_held;       /* client connections with a hold_until_us */
    uint32_t n_peer_pending; /* peer connections in the handshake */
    uint64_t next_due;     /* the earliest deadline among them (0: none): the tick scans only then */
    /* client failure log lines, at most AUTH_LOG_PER_S a second: many
     * connections failing at once must not flood the log */
    uint64_t log_window_us;
    uint32_t log_lines, log_suppressed;
};

#define AUTH_LOG_PER_S 20

/* A connection command inside MULTI: the same refusal as io/resp.c's */
#define E_IN_MULTI(name)                                                                                          \
    "ERR '" name "' cannot be queued inside MULTI on this server: it answers the connection's own commands at "   \
    "once, not at EXEC. Send it before MULTI or after EXEC (redis-py: pipeline(transaction=False))"

/* A new window once the last one is over: say how many were not logged. */
static void log_window(struct rabia_replica *r, struct replica_auth *a, uint64_t now)
{
    if (now - a->log_window_us < 1000000) return;
    if (a->log_suppressed)
        replica_log(r, RABIA_LOG_WARN, "%u more failed client authentications in the last second were not "
                    "logged (at most %d lines a second; INFO auth_failures counts all)", a->log_suppressed,
                    AUTH_LOG_PER_S);
    a->log_window_us = now;
    a->log_lines = a->log_suppressed = 0;
}

/* Whether a client failure may be logged now. */
static bool log_allowed(struct rabia_replica *r, struct replica_auth *a)
{
    log_window(r, a, rio_now_us());
    if (a->log_lines < AUTH_LOG_PER_S) {
        a->log_lines++;
        return true;
    }
    a->log_suppressed++;
    return false;
}

static void due_at(struct replica_auth *a, uint64_t t)
{
    if (!a->next_due || t < a->next_due) a->next_due = t;
}

/* Peer handshake steps (PEER_AUTH's value) and connection states. */
enum { PA_NONCE = 1, PA_CHALLENGE = 2, PA_PROOF = 3, PA_REFUSED = 4 };
enum { PS_NONE = 0, PS_DIAL_WAIT = 1, PS_ACC_WAIT_NONCE = 2, PS_ACC_WAIT_PROOF = 3, PS_DEAD = 4 };
/* Why a handshake was refused (PEER_AUTH REFUSED's u64). */
enum { PR_WRONG_SECRET = 1, PR_NO_SECRET_HERE = 2, PR_SECRET_REQUIRED = 3, PR_BAD_MESSAGE = 4 };

static const char *refusal_text(uint64_t why)
{
    switch (why) {
    case PR_WRONG_SECRET: return "wrong secret (check cluster-secret-file on both replicas)";
    case PR_NO_SECRET_HERE:
        return "it has no cluster secret while this replica has one (set the same cluster-secret-file on every replica)";
    case PR_SECRET_REQUIRED:
        return "it requires a cluster secret and this replica has none (set the same cluster-secret-file on every replica)";
    default: return "malformed handshake (is it a rabia replica of the same version?)";
    }
}

/* ------------------------------------------------------------------ */
/* create, destroy */

static int read_secret(struct replica_auth *a, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cluster-secret-file %s: cannot open: %s (create it with 32 random bytes, e.g. "
                              "'head -c 32 /dev/urandom | base64 > %s; chmod 600 %s', the same file on every replica)",
                 path, strerror(errno), path, path);
        return RABIA_E_CONFIG;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "cluster-secret-file %s: not a regular file", path);
        close(fd);
        return RABIA_E_CONFIG;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        snprintf(err, errlen, "cluster-secret-file %s: readable or writable by every user (mode %03o): "
                              "run 'chmod 600 %s'", path, (unsigned)(st.st_mode & 0777), path);
        close(fd);
        return RABIA_E_CONFIG;
    }
    ssize_t n = read(fd, a->key, sizeof a->key);
    int e = errno;
    uint8_t more;
    bool too_long = n == (ssize_t)sizeof a->key && read(fd, &more, 1) == 1;
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "cluster-secret-file %s: cannot read: %s", path, strerror(e));
        return RABIA_E_CONFIG;
    }
    if (too_long) {
        snprintf(err, errlen, "cluster-secret-file %s: longer than %d bytes (a secret of 32 random bytes is enough)",
                 path, AUTH_SECRET_MAX);
        return RABIA_E_CONFIG;
    }
    while (n > 0 && (a->key[n - 1] == '\n' || a->key[n - 1] == '\r')) n--; /* the newline an editor adds */
    if (n < AUTH_SECRET_MIN) {
        snprintf(err, errlen, "cluster-secret-file %s: %s (%zd bytes; at least %d are needed: e.g. "
                              "'head -c 32 /dev/urandom | base64 > %s')",
                 path, n == 0 ? "empty" : "too short", n, AUTH_SECRET_MIN, path);
        return RABIA_E_CONFIG;
    }
    a->keylen = (size_t)n;
    a->secret = true;
    return 0;
}

/* Whether the user may run anything on every key (a non-KV state machine's
 * ops cannot be classified: only such users may submit them). */
static bool unrestricted(const struct acl *acl, int u)
{
    const struct acl_user *us = &acl->users[u];
    if (!us->allkeys || us->nochannels || !us->nrules || us->rules[0].kind != 0 || !us->rules[0].allow) return false;
    for (uint8_t i = 1; i < us->nrules; i++)
        if (!us->rules[i].allow) return false;
    return true;
}

int replica_auth_create(struct rabia_replica *r, char *err, size_t errlen)
{
    struct replica_auth *a = calloc(1, sizeof *a);
    if (!a) return -ENOMEM;
    r->auth = a;
    acl_init(&a->acl, r->cfg.requirepass);
    snprintf(a->requirepass, sizeof a->requirepass, "%s", r->cfg.requirepass);
    if (r->cfg.acl_file[0]) {
        int rc = acl_load_file(&a->acl, r->cfg.acl_file, err, errlen);
        if (rc) return rc;
    }
    a->clients = r->cfg.requirepass[0] || r->cfg.acl_file[0];
    for (uint32_t u = 0; u < a->acl.n; u++) a->unrestricted[u] = unrestricted(&a->acl, (int)u);
    a->required = acl_auth_required(&a->acl);
    if (r->cfg.cluster_secret_file[0]) {
        int rc = read_secret(a, r->cfg.cluster_secret_file, err, errlen);
        if (rc) return rc;
    }
    return 0;
}

int replica_auth_check_config(const struct rabia_replica_config *c, char *err, size_t errlen)
{
    if (!c->cluster_secret_file[0] && !c->acl_file[0]) return 0;
    struct replica_auth *a = calloc(1, sizeof *a);
    if (!a) return -ENOMEM;
    int rc = 0;
    acl_init(&a->acl, c->requirepass);
    if (c->acl_file[0]) rc = acl_load_file(&a->acl, c->acl_file, err, errlen);
    if (!rc && c->cluster_secret_file[0]) rc = read_secret(a, c->cluster_secret_file, err, errlen);
    OPENSSL_cleanse(a->key, sizeof a->key);
    free(a);
    return rc;
}

int replica_auth_users_load(const struct rabia_replica *r, const struct rabia_replica_config *next, struct acl **out,
                            char *err, size_t errlen)
{
    *out = NULL;
    bool clients = next->requirepass[0] || next->acl_file[0];
    if (clients != r->auth->clients) {
        snprintf(err, errlen,
                 clients ? "requirepass or acl-file is set now but was not at start: turning client authentication "
                           "on needs a restart (connections open now were never asked who they are)"
                         : "requirepass and acl-file are unset now but were set at start: turning client "
                           "authentication off needs a restart");
        return RABIA_E_CONFIG;
    }
    if (!clients) return 0; /* no users to reload */
    struct acl *acl = calloc(1, sizeof *acl);
    if (!acl) return -ENOMEM;
    acl_init(acl, next->requirepass);
    int rc = next->acl_file[0] ? acl_load_file(acl, next->acl_file, err, errlen) : 0;
    if (rc) {
        replica_auth_users_free(acl);
        return rc;
    }
    *out = acl;
    return 0;
}

void replica_auth_users_free(struct acl *acl)
{
    if (!acl) return;
    OPENSSL_cleanse(acl, sizeof *acl); /* password digests */
    free(acl);
}

uint32_t replica_auth_users_take(struct rabia_replica *r, const struct acl *acl, const char *requirepass,
                                 uint32_t caller)
{
    struct replica_auth *a = r->auth;
    RABIA_ASSERT(a && a->clients && acl->n >= 1 && acl->n <= ACL_MAX_USERS);
    snprintf(a->requirepass, sizeof a->requirepass, "%s", requirepass);
    /* as Redis's ACL LOAD: a connection of any user but default goes (its
     * user may be gone, disabled or narrower now: it logs in again under the
     * new rules); default's stay and follow its new rules. Closing is
     * deferred to the loop (on_close), so the list does not change here. */
    uint32_t closed = 0;
    for (uint32_t i = 0; i < r->n_live; i++) {
        struct conn *k = &r->conns[r->live[i]];
        if ((k->kind != CK_RESP && k->kind != CK_CLIENT) || !k->c || k->closing || k->au.user <= 0) continue;
        if (r->live[i] == caller) k->quit = true; /* ACL LOAD's own: after its reply */
        else replica_conn_close(r, k->c);
        closed++;
    }
    /* default's connections stay: a transaction queued under the old rules
     * is checked again at EXEC (it ran as queued: found by review). Redis
     * 7.0 answers such a command's place in EXEC's reply with NOPERM and
     * runs the others; here the whole transaction is discarded, so that
     * none of it runs half under the old rules and half under the new */
    for (uint32_t i = 0; i < r->n_live; i++) {
        struct conn *k = &r->conns[r->live[i]];
        if (k->kind == CK_RESP && k->c && !k->closing && k->rs.in_multi) k->au.multi_reloaded = true;
    }
    OPENSSL_cleanse(&a->acl, sizeof a->acl);
    memcpy(&a->acl, acl, sizeof a->acl);
    for (uint32_t u = 0; u < ACL_MAX_USERS; u++) a->unrestricted[u] = u < a->acl.n && unrestricted(&a->acl, (int)u);
    a->required = acl_auth_required(&a->acl);
    return closed;
}

void replica_auth_destroy(struct rabia_replica *r)
{
    if (!r->auth) return;
    OPENSSL_cleanse(r->auth, sizeof *r->auth); /* the secret, the password and its digests */
    free(r->auth);
    r->auth = NULL;
}

bool replica_auth_user_exists(const struct rabia_replica *r, const uint8_t *name, size_t n)
{
    if (n == 7 && memcmp(name, "default", 7) == 0) return true;
    return r->auth && acl_find(&r->auth->acl, name, n) >= 0;
}

uint64_t replica_auth_failures(const struct rabia_replica *r)
{
    return r->auth ? __atomic_load_n(&r->auth->failures, __ATOMIC_RELAXED) : 0;
}

int replica_auth_info(const struct rabia_replica *r, char *buf, size_t len)
{
    int n = snprintf(buf, len, "auth_failures:%" PRIu64 "\r\n", replica_auth_failures(r));
    return n < 0 ? 0 : (size_t)n >= len ? (int)len - 1 : n;
}

static void count_failure(struct replica_auth *a)
{
    __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* connections */

void replica_auth_conn_init(struct rabia_replica *r, uint32_t ci)
{
    struct conn *k = &r->conns[ci];
    struct replica_auth *a = r->auth;
    memset(&k->au, 0, sizeof k->au);
    k->au.user = a->required ? -1 : 0;
    k->rs.auth_checked = a->clients; /* HELLO ... AUTH is checked here, not by resp.c */
    k->rs.user = k->user;            /* CLIENT INFO's user= (the conn outlives its session) */
}

static void unhold(struct rabia_replica *r, struct conn *k)
{
    if (k->au.held) {
        RABIA_ASSERT(r->auth->n_held > 0);
        r->auth->n_held--;
    }
    k->au.held = false;
    k->au.hold_until_us = 0;
}

static void peer_pending(struct rabia_replica *r, struct conn *k, bool on)
{
    if (k->au.pending == on) return;
    k->au.pending = on;
    if (on) r->auth->n_peer_pending++;
    else r->auth->n_peer_pending--;
}

void replica_auth_conn_release(struct rabia_replica *r, uint32_t ci)
{
    struct conn *k = &r->conns[ci];
    if (!r->auth) return;
    unhold(r, k);
    peer_pending(r, k, false);
    if (k->au.parked) OPENSSL_cleanse(k->au.parked, k->au.parked_len); /* a password */
    free(k->au.parked);
    k->au.parked = NULL;
    OPENSSL_cleanse(k->au.nonce_d, sizeof k->au.nonce_d);
    OPENSSL_cleanse(k->au.nonce_a, sizeof k->au.nonce_a);
}

static uint64_t delay_us(uint8_t fails)
{
    uint64_t d = AUTH_DELAY_FIRST_US;
    for (uint8_t i = 1; i < fails && d < AUTH_DELAY_MAX_US; i++) d *= 2;
    return d > AUTH_DELAY_MAX_US ? AUTH_DELAY_MAX_US : d;
}

static void client_addr(struct conn *k, char *who, size_t len)
{
    snprintf(who, len, "?");
    if (k->c) rio_conn_peer(k->c, who, len);
}

/* Print a user name from the wire for a log line: printable, bounded. */
static void safe_name(char *out, size_t cap, const uint8_t *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        if (p[i] >= ' ' && p[i] < 127 && p[i] != '\'' && p[i] != '\\') out[o++] = (char)p[i];
        else o += (size_t)snprintf(out + o, cap - o, "\\x%02x", p[i]);
    }
    out[o < cap ? o : cap - 1] = 0;
}

/* Check name/password for connection ci; on failure log, count and hold.
 * true: authenticated (k->au.user and k->user set). */
static bool try_auth(struct rabia_replica *r, uint32_t ci, const uint8_t *user, size_t ulen, const uint8_t *pass,
                     size_t plen, const char *proto)
{
    struct conn *k = &r->conns[ci];
    struct replica_auth *a = r->auth;
    int u = -1;
    enum acl_auth_result res = plen > ACL_PASS_MAX ? ACL_AUTH_WRONG_PASS
                                                   : acl_authenticate(&a->acl, user, ulen, pass, plen, &u);
    if (res == ACL_AUTH_OK) {
        if (k->au.user != (int16_t)u) k->au.n_owned = 0; /* another user: the sessions were the last one's */
        k->au.user = (int16_t)u;
        snprintf(k->user, sizeof k->user, "%s", a->acl.users[u].name);
        return true; /* failures stay counted: AUTH_MAX_FAILS is per connection */
    }
    char who[64], name[96];
    client_addr(k, who, sizeof who);
    safe_name(name, sizeof name, user, ulen > 60 ? 60 : ulen);
    count_failure(a);
    if (k->au.fails < UINT8_MAX) k->au.fails++;
    uint64_t d = delay_us(k->au.fails);
    if (log_allowed(r, a))
        replica_log(r, RABIA_LOG_WARN, "AUTH failed for user '%s' from %s (%s, %s; failure %u on this connection, "
                    "its next AUTH waits %" PRIu64 " ms)", name, who, acl_auth_result_text(res), proto, k->au.fails,
                    d / 1000);
    if (!k->au.held) r->auth->n_held++;
    k->au.held = true;
    k->au.hold_until_us = rio_now_us() + d;
    due_at(a, k->au.hold_until_us);
    return false;
}

/* ------------------------------------------------------------------ */
/* RESP */

static const char *E_NOAUTH = "NOAUTH Authentication required.";
static const char *E_WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled.";
static const char *E_HELLO_NOAUTH =
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> "
    "option can be used to authenticate the client and select the RESP protocol version at the same time";

static bool eq_ci(const uint8_t *p, size_t n, const char *s)
{
    return strlen(s) == n && !strncasecmp((const char *)p, s, n);
}

/* A refusal: inside MULTI it makes EXEC abort (Redis's rejectCommand);
 * a refused EXEC aborts the transaction at once. */
static int refuse(struct conn *k, struct rabia_buf *out, const char *msg, bool is_exec)
{
    if (is_exec) {
        resp_multi_discard(&k->rs);
        rabia_buf_append(out, "-EXECABORT Transaction discarded because of: ", 45);
    } else {
        if (k->rs.in_multi) k->rs.multi_dirty = true;
        rabia_buf_append(out, "-", 1);
    }
    rabia_buf_append(out, msg, strlen(msg));
    rabia_buf_append(out, "\r\n", 2);
    return 1;
}

static int put_err(struct rabia_buf *out, const char *msg)
{
    resp_put_error(out, msg);
    return 1;
}

/* Too many failures: the reply goes, then the connection closes. */
static void maybe_close(struct rabia_replica *r, struct conn *k)
{
    if (k->au.fails >= AUTH_MAX_FAILS) {
        char who[64];
        client_addr(k, who, sizeof who);
        replica_log(r, RABIA_LOG_WARN, "closing the connection from %s after %u failed AUTHs", who, k->au.fails);
        k->quit = true;
    }
}

/* ACL LOAD: this replica's users from its acl-file again (requirepass as in
 * effect), as a SIGHUP does (reload.c) and as Redis's ACL LOAD: not
 * replicated, each replica has its own file. */
static int acl_load_cmd(struct rabia_replica *r, uint32_t ci, struct rabia_buf *out)
{
    struct conn *k = &r->conns[ci];
    struct replica_auth *a = r->auth;
    if (k->pa.argc != 2) return put_err(out, "ERR wrong number of arguments for 'acl|load' command");
    if (k->au.user < 0) return refuse(k, out, E_NOAUTH, false);
    if (k->rs.in_multi) return refuse(k, out, E_IN_MULTI("acl|load"), false);
    if (a->clients && !acl_cmd_allowed(&a->acl, k->au.user, "acl|load", acl_categories("acl|load", 0, 0, 0, 0)))
        return refuse(k, out, "NOPERM this user has no permissions to run the 'acl|load' command", false);
    if (!r->cfg.acl_file[0])
        return put_err(out, "ERR This replica is not configured to use an ACL file (set acl-file in its "
                            "configuration and restart it)");
    struct rabia_replica_config next;
    memset(&next, 0, sizeof next);
    snprintf(next.requirepass, sizeof next.requirepass, "%s", a->requirepass);
    snprintf(next.acl_file, sizeof next.acl_file, "%s", r->cfg.acl_file);
    struct acl *users = NULL;
    char err[600];
    int rc = replica_auth_users_load(r, &next, &users, err, sizeof err);
    if (rc) {
        char msg[640];
        snprintf(msg, sizeof msg, "ERR %s", err);
        return put_err(out, msg);
    }
    RABIA_ASSERT(users != NULL);
    uint32_t n = users->n, closed = replica_auth_users_take(r, users, next.requirepass, ci);
    replica_auth_users_free(users);
    char who[64];
    client_addr(k, who, sizeof who);
    replica_log(r, RABIA_LOG_INFO,
                "ACL LOAD from %s (user '%s'): %u users from %s; closed %u connection%s of users other than default",
                who, k->user, n, r->cfg.acl_file, closed, closed == 1 ? "" : "s");
    rabia_buf_append(out, "+OK\r\n", 5);
    return 1;
}

int replica_auth_resp(struct rabia_replica *r, uint32_t ci, struct rabia_buf *out)
{
    struct conn *k = &r->conns[ci];
    struct replica_auth *a = r->auth;
    const struct resp_argv *c = &k->pa;
    RABIA_ASSERT(c->argc >= 1);
    const uint8_t *name = c->argv[0];
    size_t nl = c->argv_len[0];
    bool authed = k->au.user >= 0;
    /* ACL: WHOAMI and LOAD (the rest of Redis's ACL is configuration by file) */
    if (eq_ci(name, nl, "acl")) {
        if (c->argc < 2) return put_err(out, "ERR wrong number of arguments for 'acl' command");
        if (eq_ci(c->argv[1], c->argv_len[1], "load")) return acl_load_cmd(r, ci, out);
        if (!eq_ci(c->argv[1], c->argv_len[1], "whoami")) {
            rabia_buf_append(out, "-ERR unknown subcommand '", 25);
            char sub[140];
            safe_name(sub, sizeof sub, c->argv[1], c->argv_len[1] > 128 ? 128 : c->argv_len[1]);
            rabia_buf_append(out, sub, strlen(sub));
            rabia_buf_append(out, "'. Try ACL HELP.\r\n", 18);
            return 1;
        }
        if (c->argc != 2) return put_err(out, "ERR wrong number of arguments for 'acl|whoami' command");
        if (!authed) return refuse(k, out, E_NOAUTH, false);
        if (k->rs.in_multi) /* as resp.c's other connection commands (io/resp.h) */
            return refuse(k, out, E_IN_MULTI("acl|whoami"), false);
        if (a->clients && !acl_cmd_allowed(&a->acl, k->au.user, "acl|whoami", acl_categories("acl|whoami", 0, 0, 0, 0)))
            return refuse(k, out, "NOPERM this user has no permissions to run the 'acl|whoami' command", false);
        resp_put_bulk(out, k->user, strlen(k->user));
        return 1;
    }
    if (!a->clients) return 0; /* no users configured: resp.c's AUTH and HELLO answer */
    /* the common case, a user who may run anything on any key: no lookup */
    if (authed && a->unrestricted[k->au.user] && !eq_ci(name, nl, "auth") && !eq_ci(name, nl, "hello") &&
        !eq_ci(name, nl, "reset"))
        return 0;
    struct resp_cmd_meta m;
    if (!resp_command_meta(c, &m)) return 0; /* unknown command, wrong arity: resp.c's error first, as Redis */
    if (!strcmp(m.fullname, "auth") && !k->rs.in_multi) {
        if (c->argc > 3) return 0; /* "ERR syntax error" */
        if (c->argc == 2 && a->acl.users[0].nopass) return 0; /* resp.c: no password configured for default */
        const uint8_t *user = (const uint8_t *)"default", *pass = c->argv[1];
        size_t ulen = 7, plen = c->argv_len[1];
        if (c->argc == 3) {
            user = c->argv[1];
            ulen = c->argv_len[1];
            pass = c->argv[2];
            plen = c->argv_len[2];
        }
        if (try_auth(r, ci, user, ulen, pass, plen, "RESP")) {
            resp_put_simple(out, "OK");
            return 1;
        }
        put_err(out, E_WRONGPASS);
        maybe_close(r, k);
        return 1;
    }
    if (!strcmp(m.fullname, "hello")) {
        /* HELLO [ver] [AUTH user pass] [SETNAME name]: the credentials here,
         * the rest (version, name, the reply) in resp.c */
        if (c->argc >= 2 && !(c->argv_len[1] == 1 && (c->argv[1][0] == '2' || c->argv[1][0] == '3')))
            return 0; /* resp.c: a bad protocol version is answered before any AUTH, as Redis */
        uint32_t at = 0;
        for (uint32_t j = 2; j < c->argc && !at; j++)
            if (eq_ci(c->argv[j], c->argv_len[j], "auth")) at = j;
        if (at && at + 2 >= c->argc) return 0; /* resp.c: "Syntax error in HELLO option 'AUTH'" */
        if (at) {
            if (!try_auth(r, ci, c->argv[at + 1], c->argv_len[at + 1], c->argv[at + 2], c->argv_len[at + 2],
                          "RESP HELLO")) {
                put_err(out, E_WRONGPASS);
                maybe_close(r, k);
                return 1;
            }
            return 0;
        }
        if (!authed) return put_err(out, E_HELLO_NOAUTH);
        return 0;
    }
    if (!strcmp(m.fullname, "reset")) {
        /* RESET: back to the default user, as a new connection */
        k->au.user = a->required ? -1 : 0;
        snprintf(k->user, sizeof k->user, "default");
        return 0; /* no-auth, and no permission needed (Redis 7.0) */
    }
    if (!strcmp(m.fullname, "quit")) return 0; /* no-auth, and no permission needed (Redis 7.0) */
    if (!authed) return refuse(k, out, E_NOAUTH, m.is_exec);
    uint32_t cats = acl_categories(m.fullname, m.readonly, m.write, m.fast, m.pubsub);
    int rc = acl_check_command(&a->acl, k->au.user, m.fullname, cats, c->argc, c->argv, c->argv_len, m.first, m.last,
                               m.step);
    if (rc == ACL_ALLOWED && m.is_exec && k->rs.in_multi && k->au.multi_reloaded) {
        k->au.multi_reloaded = false;
        const uint8_t *q = k->rs.qops.data;
        for (uint32_t i = 0; i < k->rs.nqueued; q += k->rs.qlen[i], i++) {
            char cmd[64] = "?";
            int qrc = acl_check_kv_op(&a->acl, k->au.user, q, k->rs.qlen[i], cmd, sizeof cmd);
            /* -1: not a KV command (the queued SELECT, which resp.c keeps
             * beside the ops and needs no permission in a transaction):
             * nothing to check again (an ACL LOAD of the same file refused
             * any EXEC with a SELECT: found by review) */
            if (qrc == ACL_ALLOWED || qrc < 0) continue;
            char msg[256];
            snprintf(msg, sizeof msg,
                     "NOPERM ACL rules changed between the moment the transaction was accumulated and the EXEC call: "
                     "'%s' is no longer allowed (%s)",
                     cmd, qrc == ACL_DENIED_KEY       ? "one of its keys"
                          : qrc == ACL_DENIED_CHANNEL ? "its channel"
                                                      : "the command");
            return refuse(k, out, msg, true);
        }
    }
    if (rc == ACL_DENIED_CMD) {
        char msg[160];
        snprintf(msg, sizeof msg, "NOPERM this user has no permissions to run the '%s' command", m.fullname);
        return refuse(k, out, msg, m.is_exec);
    }
    if (rc == ACL_DENIED_KEY)
        return refuse(k, out, "NOPERM this user has no permissions to access one of the keys used as arguments",
                      m.is_exec);
    if (rc == ACL_DENIED_SCRIPT)
        return refuse(k, out, ACL_SCRIPT_DENIED_TEXT, m.is_exec);
    if (rc == ACL_DENIED_SORT_BY || rc == ACL_DENIED_SORT_GET)
        return refuse(k, out, rc == ACL_DENIED_SORT_BY ? ACL_SORT_BY_TEXT : ACL_SORT_GET_TEXT, m.is_exec);
    if (rc == ACL_DENIED_CHANNEL)
        return refuse(k, out, ACL_CHANNEL_TEXT, m.is_exec);
    return 0;
}

/* ------------------------------------------------------------------ */
/* native */

static void native_auth_reply(struct rabia_replica *r, struct conn *k, bool ok, const char *msg)
{
    struct rabia_msg m = {.type = RABIA_MSG_CLIENT_AUTH_REPLY, .value = ok ? 0 : 1, .body = (const uint8_t *)msg,
                          .body_len = (uint32_t)strlen(msg)};
    replica_send_frame(r, k->c, &m);
}

/* body: u8 user length, user, password */
static void native_check(struct rabia_replica *r, uint32_t ci, const uint8_t *b, size_t n)
{
    struct conn *k = &r->conns[ci];
    if (n < 1 || (size_t)b[0] + 1 > n) {
        native_auth_reply(r, k, false, "ERR malformed CLIENT_AUTH (u8 user length, user, password)");
        return;
    }
    size_t ul = b[0];
    const uint8_t *user = ul ? b + 1 : (const uint8_t *)"default";
    if (!ul) ul = 7;
    if (try_auth(r, ci, user, ul, b + 1 + b[0], n - 1 - b[0], "native")) {
        native_auth_reply(r, k, true, "OK");
        return;
    }
    native_auth_reply(r, k, false, E_WRONGPASS);
    if (k->au.fails >= AUTH_MAX_FAILS) {
        char who[64];
        client_addr(k, who, sizeof who);
        replica_log(r, RABIA_LOG_WARN, "closing the connection from %s after %u failed AUTHs", who, k->au.fails);
        rio_close_after_send(k->c);
        k->closing = true;
    }
}

static void native_refuse(struct rabia_replica *r, struct conn *k, const struct rabia_msg *m, int status,
                          const char *msg)
{
    struct rabia_msg rep = {.type = RABIA_MSG_CLIENT_REPLY, .u64 = m->u64, .slot = m->slot, .value = (uint8_t)status,
                            .body = (const uint8_t *)msg, .body_len = (uint32_t)strlen(msg)};
    replica_send_frame(r, k->c, &rep);
}


void replica_auth_native_replied(struct rabia_replica *r, uint32_t ci, uint64_t cid, uint64_t seq, int status,
                                 const uint8_t *res, size_t len)
{
    assert(ci < MAX_CONNS);
    const struct replica_auth *a = r->auth;
    struct conn *k = &r->conns[ci];
    if (!a || !a->clients || k->au.user < 0 || a->unrestricted[k->au.user]) return;
    if (seq != 1 || (cid & ~RABIA_SESSION_NONCE_MASK) || status != RABIA_REPLY_OK || len != 8) return;
    uint64_t id = 0;
    for (int i = 7; i >= 0; i--) id = id << 8 | res[i];
    if (!(id & RABIA_SESSION_ASSIGNED)) return;
    memmove(&k->au.owned[1], &k->au.owned[0], 3 * sizeof k->au.owned[0]); /* newest first, the oldest goes */
    k->au.owned[0] = id;
    if (k->au.n_owned < 4) k->au.n_owned++;
}

bool replica_auth_may_backup(struct rabia_replica *r, uint32_t ci, char *why, size_t len)
{
    assert(ci < MAX_CONNS);
    const struct conn *k = &r->conns[ci];
    const struct replica_auth *a = r->auth;
    if (!a || !a->clients) return true;
    if (k->au.user < 0) {
        snprintf(why, len, "%s", E_NOAUTH);
        return false;
    }
    if (!a->unrestricted[k->au.user]) {
        snprintf(why, len, "NOPERM user '%s' may not take a backup: a backup holds every key, so only a user with "
                           "+@all and allkeys may (rabia-cli --user/--pass)", k->user);
        return false;
    }
    return true;
}

bool replica_auth_native(struct rabia_replica *r, uint32_t ci, const struct rabia_msg *m)
{
    struct conn *k = &r->conns[ci];
    struct replica_auth *a = r->auth;
    if (m->type == RABIA_MSG_CLIENT_AUTH) {
        if (!a->clients) {
            /* nothing to check: accepted as the default user, as Redis's AUTH
             * default <anything> without passwords */
            native_auth_reply(r, k, true, "OK (no users configured)");
            return true;
        }
        if (k->au.hold_until_us) { /* after a failure: checked once the delay is over */
            if (k->au.parked) { /* one at a time: a client that does not wait is closed */
                char who[64];
                client_addr(k, who, sizeof who);
                count_failure(a);
                if (log_allowed(r, a))
                    replica_log(r, RABIA_LOG_WARN, "AUTH failed from %s (another AUTH sent before the last was "
                                "answered; closing)", who);
                replica_conn_close(r, k->c);
                return true;
            }
            k->au.parked = malloc(m->body_len ? m->body_len : 1);
            if (!k->au.parked) {
                replica_conn_close(r, k->c);
                return true;
            }
            memcpy(k->au.parked, m->body, m->body_len);
            k->au.parked_len = m->body_len;
            return true;
        }
        native_check(r, ci, m->body, m->body_len);
        return true;
    }
    if (!a->clients) return false;
    bool authed = k->au.user >= 0;
    if (m->type == RABIA_MSG_STATUS_REQ && !authed) {
        native_auth_reply(r, k, false, k->au.fails ? E_WRONGPASS : E_NOAUTH);
        return true;
    }
    if (m->type != RABIA_MSG_CLIENT_REQ) return false;
    if (!authed) {
        native_refuse(r, k, m, RABIA_REPLY_NOAUTH, k->au.fails ? E_WRONGPASS : E_NOAUTH);
        return true;
    }
    if (a->unrestricted[k->au.user]) return false; /* anything: this user may read and write every key anyway */
    /* A restricted user only uses sessions opened on this connection: the
     * session id and seq come from the wire, and under another client's
     * session a request would be answered from that client's cached
     * replies, take over its waiting answer or burn its sequence numbers. A
     * nonce (neither bit) only opens a session: it is no session's id. A
     * session of another connection (a failover from another replica) is
     * refused as expired: the client library opens a new one. */
    uint64_t cid = m->u64;
    if (cid & RABIA_SESSION_CONN_SCOPED) {
        native_refuse(r, k, m, RABIA_REPLY_NOPERM,
                      "NOPERM connection-scoped session ids are the RESP front end's: open a session (seq 1)");
        return true;
    }
    if (cid & RABIA_SESSION_ASSIGNED) {
        bool own = false;
        for (uint8_t i = 0; i < k->au.n_owned; i++) own |= k->au.owned[i] == cid;
        if (!own) {
            native_refuse(r, k, m, RABIA_REPLY_SESSION_EXPIRED,
                          "session not opened on this connection: a restricted user opens its own (seq 1)");
            return true;
        }
    } else if (m->slot != 1 || m->body_len != 0) {
        native_refuse(r, k, m, RABIA_REPLY_SESSION_EXPIRED, "no such session: open one first (seq 1, empty op)");
        return true;
    }
    if (m->body_len == 0) return false; /* its own session's open or close */
    if (strcmp(r->cfg.state_machine, "kv") != 0) {
        native_refuse(r, k, m, RABIA_REPLY_NOPERM,
                      "NOPERM this user may not submit operations (a counter or bank state machine's operations "
                      "are allowed only to users with +@all and allkeys)");
        return true;
    }
    char cmd[64];
    int rc = acl_check_kv_op(&a->acl, k->au.user, m->body, m->body_len, cmd, sizeof cmd);
    if (rc == ACL_ALLOWED) return false;
    char msg[256];
    if (rc == ACL_DENIED_KEY)
        snprintf(msg, sizeof msg, "NOPERM this user has no permissions to access one of the keys used as arguments");
    else if (rc == ACL_DENIED_CMD)
        snprintf(msg, sizeof msg, "NOPERM this user has no permissions to run the '%s' command", cmd);
    else if (rc == ACL_DENIED_SCRIPT)
        snprintf(msg, sizeof msg, "%s", ACL_SCRIPT_DENIED_TEXT);
    else if (rc == ACL_DENIED_SORT_BY || rc == ACL_DENIED_SORT_GET)
        snprintf(msg, sizeof msg, "%s", rc == ACL_DENIED_SORT_BY ? ACL_SORT_BY_TEXT : ACL_SORT_GET_TEXT);
    else if (rc == ACL_DENIED_CHANNEL)
        snprintf(msg, sizeof msg, "%s", ACL_CHANNEL_TEXT);
    else
        snprintf(msg, sizeof msg, "NOPERM this operation cannot be checked against the user's permissions "
                                  "(malformed or unknown): refused");
    native_refuse(r, k, m, RABIA_REPLY_NOPERM, msg);
    return true;
}

/* ------------------------------------------------------------------ */
/* peers: HELLO, then
 *   dialer -> acceptor  PEER_AUTH NONCE      Nd
 *   acceptor -> dialer  PEER_AUTH CHALLENGE  Na, HMAC(secret, "A" | ...)
 *   dialer -> acceptor  PEER_AUTH PROOF      HMAC(secret, "D" | ...)
 * where ... = cluster id, dialer id, acceptor id, Nd, Na. Either side
 * refusing sends PEER_AUTH REFUSED with the cause and closes. */

static void mac(const struct replica_auth *a, char dir, uint64_t cluster, uint8_t dialer, uint8_t acceptor,
                const uint8_t *nd, const uint8_t *na, uint8_t *out)
{
    uint8_t msg[19 + 1 + 8 + 2 + 2 * AUTH_NONCE];
    size_t o = 0;
    memcpy(msg, "rabia-peer-auth-v1", 18); /* domain separation: this MAC is for nothing else */
    o = 18;
    msg[o++] = 0;
    msg[o++] = (uint8_t)dir;
    for (int i = 0; i < 8; i++) msg[o++] = (uint8_t)(cluster >> (8 * i));
    msg[o++] = dialer;
    msg[o++] = acceptor;
    memcpy(msg + o, nd, AUTH_NONCE);
    o += AUTH_NONCE;
    memcpy(msg + o, na, AUTH_NONCE);
    o += AUTH_NONCE;
    RABIA_ASSERT(o == sizeof msg);
    unsigned len = AUTH_MAC;
    if (!HMAC(EVP_sha256(), a->key, (int)a->keylen, msg, o, out, &len) || len != AUTH_MAC)
        memset(out, 0, AUTH_MAC); /* cannot happen with SHA-256; a zero MAC never verifies a real one */
}

static bool fresh_nonce(uint8_t *n)
{
    size_t got = 0;
    while (got < AUTH_NONCE) {
        ssize_t k = getrandom(n + got, AUTH_NONCE - got, 0);
        if (k < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        got += (size_t)k;
    }
    return true;
}

static void send_auth(struct rabia_replica *r, struct conn *k, uint8_t step, uint64_t why, const uint8_t *body,
                      uint32_t len)
{
    struct rabia_msg m = {.type = RABIA_MSG_PEER_AUTH, .from = r->self, .value = step, .u64 = why, .body = body,
                          .body_len = len};
    replica_send_frame(r, k->c, &m);
}

/* Refuse the handshake: tell the other side why, then close. */
static void peer_refuse(struct rabia_replica *r, struct conn *k, uint64_t why)
{
    send_auth(r, k, PA_REFUSED, why, NULL, 0);
    k->au.pstep = PS_DEAD;
    peer_pending(r, k, false);
    if (k->c) rio_close_after_send(k->c);
    k->closing = true;
}

static void peer_who(struct conn *k, char *who, size_t len)
{
    snprintf(who, len, "?");
    if (k->c) rio_conn_peer(k->c, who, len);
}

bool replica_auth_peer_dial(struct rabia_replica *r, uint32_t ci)
{
    struct conn *k = &r->conns[ci];
    struct replica_auth *a = r->auth;
    if (!a->secret) return false;
    if (!fresh_nonce(k->au.nonce_d)) {
        replica_log(r, RABIA_LOG_ERROR, "getrandom: %s: cannot authenticate to replica %u", strerror(errno),
                    k->peer + 1);
        replica_conn_close(r, k->c);
        return true;
    }
    send_auth(r, k, PA_NONCE, 0, k->au.nonce_d, AUTH_NONCE);
    k->au.pstep = PS_DIAL_WAIT;
    k->au.pdeadline_us = rio_now_us() + AUTH_PEER_TIMEOUT_US;
    due_at(a, k->au.pdeadline_us);
    peer_pending(r, k, true);
    return true;
}

void replica_auth_peer_out_frame(struct rabia_replica *r, uint32_t ci, const struct rabia_msg *m)
{
    struct conn *k = &r->conns[ci];
    struct replica_auth *a = r->auth;
    char who[64];
    peer_who(k, who, sizeof who);
    if (m->value == PA_REFUSED) {
        count_failure(a);
        replica_log(r, RABIA_LOG_WARN, "peer %s failed cluster-secret authentication: %s; it is replica %u (it "
                    "refused our handshake)", who, refusal_text(m->u64), k->peer + 1);
        k->au.pstep = PS_DEAD;
        peer_pending(r, k, false);
        replica_conn_close(r, k->c);
        return;
    }
    if (!a->secret) { /* only a refusal is expected on a link without a secret */
        replica_log(r, RABIA_LOG_WARN, "peer %s (replica %u) sent PEER_AUTH step %u, but this replica has no "
                    "cluster-secret-file (set the same one on every replica): closing", who, k->peer + 1, m->value);
        replica_conn_close(r, k->c);
        return;
    }
    if (k->au.pstep != PS_DIAL_WAIT || m->value != PA_CHALLENGE || m->body_len != AUTH_NONCE + AUTH_MAC) {
        count_failure(a);
        replica_log(r, RABIA_LOG_WARN, "peer %s failed cluster-secret authentication: %s; it is replica %u", who,
                    refusal_text(PR_BAD_MESSAGE), k->peer + 1);
        peer_refuse(r, k, PR_BAD_MESSAGE);
        return;
    }
    memcpy(k->au.nonce_a, m->body, AUTH_NONCE);
    uint8_t want[AUTH_MAC];
    mac(a, 'A', r->cluster_id, r->self, k->peer, k->au.nonce_d, k->au.nonce_a, want);
    if (CRYPTO_memcmp(want, m->body + AUTH_NONCE, AUTH_MAC) != 0) {
        count_failure(a);
        replica_log(r, RABIA_LOG_WARN, "peer %s failed cluster-secret authentication: %s; it is replica %u", who,
                    refusal_text(PR_WRONG_SECRET), k->peer + 1);
        peer_refuse(r, k, PR_WRONG_SECRET);
        return;
    }
    /* the acceptor knows the secret: our proof, and the link is ready */
    uint8_t proof[AUTH_MAC];
    mac(a, 'D', r->cluster_id, r->self, k->peer, k->au.nonce_d, k->au.nonce_a, proof);
    send_auth(r, k, PA_PROOF, 0, proof, AUTH_MAC);
    k->au.pstep = PS_NONE;
    peer_pending(r, k, false);
    replica_peer_out_ready(r, ci);
}

bool replica_auth_peer_hello(struct rabia_replica *r, uint32_t ci, const struct rabia_msg *m)
{
    struct conn *k = &r->conns[ci];
    if (!r->auth->secret) return false;
    k->au.pstep = PS_ACC_WAIT_NONCE;
    k->au.pfrom = m->from;
    k->au.pincarnation = m->u64b;
    k->au.pdeadline_us = rio_now_us() + AUTH_PEER_TIMEOUT_US;
    due_at(r->auth, k->au.pdeadline_us);
    peer_pending(r, k, true);
    return true;
}

void replica_auth_peer_in_frame(struct rabia_replica *r, uint32_t ci, const struct rabia_msg *m)
{
    struct conn *k = &r->conns[ci];
    struct replica_auth *a = r->auth;
    char who[64];
    peer_who(k, who, sizeof who);
    if (k->au.pstep == PS_DEAD) return;
    if (m->type != RABIA_MSG_PEER_AUTH) {
        /* a replica without a secret goes on with consensus messages */
        count_failure(a);
        replica_log(r, RABIA_LOG_WARN, "peer %s failed cluster-secret authentication: %s; it claims to be "
                    "replica %u and sent %s instead of a proof", who, refusal_text(PR_NO_SECRET_HERE),
                    k->au.pfrom + 1, rabia_msg_type_name(m->type));
        peer_refuse(r, k, PR_SECRET_REQUIRED);
        return;
    }
    if (m->value == PA_REFUSED) {
        count_failure(a);
        replica_log(r, RABIA_LOG_WARN, "peer %s failed cluster-secret authentication: %s; it claims to be replica "
                    "%u (it refused our handshake)", who, refusal_text(m->u64), k->au.pfrom + 1);
        k->au.pstep = PS_DEAD;
        peer_pending(r, k, false);
        replica_conn_close(r, k->c);
        return;
    }
    if (k->au.pstep == PS_ACC_WAIT_NONCE && m->value == PA_NONCE && m->body_len == AUTH_NONCE) {
        memcpy(k->au.nonce_d, m->body, AUTH_NONCE);
        if (!fresh_nonce(k->au.nonce_a)) {
            replica_log(r, RABIA_LOG_ERROR, "getrandom: %s: cannot authenticate %s", strerror(errno), who);
            replica_conn_close(r, k->c);
            return;
        }
        uint8_t body[AUTH_NONCE + AUTH_MAC];
        memcpy(body, k->au.nonce_a, AUTH_NONCE);
        mac(a, 'A', r->cluster_id, k->au.pfrom, r->self, k->au.nonce_d, k->au.nonce_a, body + AUTH_NONCE);
        send_auth(r, k, PA_CHALLENGE, 0, body, sizeof body);
        k->au.pstep = PS_ACC_WAIT_PROOF;
        return;
    }
    if (k->au.pstep == PS_ACC_WAIT_PROOF && m->value == PA_PROOF && m->body_len == AUTH_MAC) {
        uint8_t want[AUTH_MAC];
        mac(a, 'D', r->cluster_id, k->au.pfrom, r->self, k->au.nonce_d, k->au.nonce_a, want);
        if (CRYPTO_memcmp(want, m->body, AUTH_MAC) != 0) {
            count_failure(a);
            replica_log(r, RABIA_LOG_WARN, "peer %s failed cluster-secret authentication: %s; it claims to be "
                        "replica %u", who, refusal_text(PR_WRONG_SECRET), k->au.pfrom + 1);
            peer_refuse(r, k, PR_WRONG_SECRET);
            return;
        }
        k->au.pstep = PS_NONE;
        peer_pending(r, k, false);
        replica_log(r, RABIA_LOG_DEBUG, "replica %u at %s proved the cluster secret", k->au.pfrom + 1, who);
        replica_peer_in_install(r, ci, k->au.pfrom, k->au.pincarnation);
        return;
    }
    count_failure(a);
    replica_log(r, RABIA_LOG_WARN, "peer %s failed cluster-secret authentication: %s; it claims to be replica %u",
                who, refusal_text(PR_BAD_MESSAGE), k->au.pfrom + 1);
    peer_refuse(r, k, PR_BAD_MESSAGE);
}

void replica_auth_peer_unexpected(struct rabia_replica *r, uint32_t ci, const struct rabia_msg *m)
{
    struct conn *k = &r->conns[ci];
    char who[64];
    peer_who(k, who, sizeof who);
    if (m->value == PA_REFUSED) { /* it refused us: it has a secret */
        count_failure(r->auth);
        replica_log(r, RABIA_LOG_WARN, "peer %s failed cluster-secret authentication: %s; it is replica %u", who,
                    refusal_text(m->u64), k->peer + 1);
        replica_conn_close(r, k->c);
        return;
    }
    count_failure(r->auth);
    replica_log(r, RABIA_LOG_WARN, "peer %s failed cluster-secret authentication: it asks for one and this replica "
                "has no cluster-secret-file (set the same one on every replica); it is replica %u", who, k->peer + 1);
    peer_refuse(r, k, PR_NO_SECRET_HERE);
}

/* ------------------------------------------------------------------ */
/* deadlines */

uint64_t replica_auth_tick(struct rabia_replica *r, uint64_t now)
{
    struct replica_auth *a = r->auth;
    if (a->log_suppressed) { /* the count of lines not logged comes when their second is over */
        log_window(r, a, now);
        if (a->log_suppressed) due_at(a, a->log_window_us + 1000000);
    }
    if (!a->n_held && !a->n_peer_pending) {
        a->next_due = a->log_suppressed ? a->log_window_us + 1000000 : 0;
        return a->next_due;
    }
    if (a->next_due && now < a->next_due) return a->next_due; /* nothing due yet: no scan */
    uint64_t next = 0;
    /* bounded: the conns in use, and only while something waits */
    struct conn *k;
    for (FOR_LIVE(r, k)) {
        if (!a->n_held && !a->n_peer_pending) break;
        uint32_t i = (uint32_t)(k - r->conns);
        if (k->au.pending && now >= k->au.pdeadline_us) {
            char who[64];
            peer_who(k, who, sizeof who);
            replica_log(r, RABIA_LOG_WARN, "peer %s did not finish cluster-secret authentication within %u s: closing",
                        who, AUTH_PEER_TIMEOUT_US / 1000000u);
            peer_pending(r, k, false);
            k->au.pstep = PS_DEAD;
            if (k->c && !k->closing) replica_conn_close(r, k->c);
            continue;
        }
        if (k->au.pending && (!next || k->au.pdeadline_us < next)) next = k->au.pdeadline_us;
        if (!k->au.held) continue;
        if (now < k->au.hold_until_us) {
            if (!next || k->au.hold_until_us < next) next = k->au.hold_until_us;
            continue;
        }
        unhold(r, k);
        if (k->closing || !k->c) continue;
        if (k->kind == CK_CLIENT && k->au.parked) {
            uint8_t *b = k->au.parked;
            k->au.parked = NULL;
            native_check(r, i, b, k->au.parked_len);
            OPENSSL_cleanse(b, k->au.parked_len);
            free(b);
        } else if (k->kind == CK_RESP && k->in.len && !k->want_pump) {
            k->want_pump = true; /* read what waited */
            r->n_want_pump++;
        }
    }
    if (a->log_suppressed && (!next || a->log_window_us + 1000000 < next)) next = a->log_window_us + 1000000;
    a->next_due = next;
    return next;
}
