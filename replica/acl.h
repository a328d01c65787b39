/* replica/acl.h: users and their permissions (requirepass, acl-file), as
 * Redis 7.0's ACL in a subset: pure (no I/O but reading the file at start,
 * no clock), so tests/unit/test_acl.c drives it directly; auth.c applies it
 * to RESP and native connections.
 *
 * A user line, in Redis's ACL file syntax (one per line, '#' comments):
 *
 *   user NAME rule...
 *
 * rules, applied left to right on a user that starts disabled, without
 * passwords, keys or commands (Redis's "reset"):
 *   on | off                 may authenticate or not
 *   >password | <password    add / remove a password (only its SHA-256 is kept)
 *   #<64 hex digits>         add a password by its SHA-256
 *   nopass | resetpass       any password works / no passwords (and not nopass)
 *   ~pattern | allkeys | resetkeys   keys the user may name (glob, as KEYS); allkeys = ~*
 *   +@cat | -@cat            allow / deny a category: all, read, write, keyspace,
 *                            fast, slow, pubsub, connection, transaction,
 *                            dangerous, admin
 *   +cmd | -cmd              allow / deny one command ("config|get" for a subcommand,
 *                            "config" for all of them); a name that is no command
 *                            or subcommand here is refused (as Redis does)
 *   allcommands | nocommands = +@all | -@all
 *   allchannels | &*         every channel (what a user starts with here: Redis
 *                            7.0 starts with none, acl-pubsub-default)
 *   resetchannels            no channel: PUBLISH, SUBSCRIBE, PSUBSCRIBE, SPUBLISH
 *                            and SSUBSCRIBE refused (ACL_DENIED_CHANNEL); channel
 *                            patterns (&pattern) are not supported
 *   reset                    back to the starting point
 * Anything else is refused with the file, line and the fix.
 *
 * The default user exists always: "on nopass ~* +@all" unless requirepass
 * gives it a password, or the file has its own "user default ..." line. A
 * connection must authenticate when the default user has a password or is
 * off (Redis's rule). */
#ifndef RABIA_REPLICA_ACL_H
#define RABIA_REPLICA_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACL_MAX_USERS 64
#define ACL_NAME_MAX 63
#define ACL_MAX_PASSES 8
#define ACL_MAX_PATTERNS 32
#define ACL_PATTERN_MAX 256
#define ACL_MAX_RULES 64
#define ACL_PASS_MAX 512  /* longest password accepted on the wire */

/* Command categories (Redis's, a subset). */
enum {
    ACL_CAT_READ = 1u << 0,
    ACL_CAT_WRITE = 1u << 1,
    ACL_CAT_FAST = 1u << 2,
    ACL_CAT_SLOW = 1u << 3,
    ACL_CAT_PUBSUB = 1u << 4,
    ACL_CAT_CONNECTION = 1u << 5,
    ACL_CAT_TRANSACTION = 1u << 6,
    ACL_CAT_DANGEROUS = 1u << 7,
    ACL_CAT_ADMIN = 1u << 8,
    ACL_CAT_KEYSPACE = 1u << 9,
    ACL_CAT_SCRIPTING = 1u << 10,
};

struct acl_rule {
    bool allow;
    uint8_t kind;          /* 0: @all, 1: categories, 2: a command, 3: a command and its subcommands */
    uint32_t cats;
    char cmd[48];
};

struct acl_user {
    char name[ACL_NAME_MAX + 1];
    bool on, nopass, allkeys;
    bool nochannels;       /* resetchannels: no Pub/Sub channel at all */
    uint8_t npass, npat, nrules;
    uint8_t pass[ACL_MAX_PASSES][32];  /* SHA-256 of each password */
    uint16_t patlen[ACL_MAX_PATTERNS];
    char pat[ACL_MAX_PATTERNS][ACL_PATTERN_MAX];
    struct acl_rule rules[ACL_MAX_RULES];
};

struct acl {
    uint32_t n;            /* users[0] is "default" */
    struct acl_user users[ACL_MAX_USERS];
};

/* The default user only ("on nopass ~* +@all"); requirepass ("" = none)
 * gives it that password instead of nopass. */
void acl_init(struct acl *a, const char *requirepass);
/* One line of an ACL file (comments and blank lines are fine). 0, or
 * RABIA_E_CONFIG with err naming the rule and the fix. */
/* Whether acl.c's list of Redis's command names is in strcmp order (its
 * lookup is a binary search; test_acl). */
bool acl_redis_names_sorted(void);
int acl_parse_line(struct acl *a, const char *line, char *err, size_t errlen);
/* Every line of path; err starts with "path:line: ". */
int acl_load_file(struct acl *a, const char *path, char *err, size_t errlen);

/* Whether a new connection must authenticate (default user off or with a password). */
bool acl_auth_required(const struct acl *a);
/* Index of the user, or -1. */
int acl_find(const struct acl *a, const uint8_t *name, size_t n);

enum acl_auth_result { ACL_AUTH_OK = 0, ACL_AUTH_NO_USER, ACL_AUTH_DISABLED, ACL_AUTH_WRONG_PASS };
/* Check name/password; *user gets the index when ACL_AUTH_OK. Constant
 * time in the password (compares SHA-256 digests with CRYPTO_memcmp). */
enum acl_auth_result acl_authenticate(const struct acl *a, const uint8_t *name, size_t nlen, const uint8_t *pass,
                                      size_t plen, int *user);
const char *acl_auth_result_text(enum acl_auth_result r);

/* The categories of a command by its full name ("get", "config|get") and
 * its flags (kv/kv.h's read-only / write / fast / pubsub). */
uint32_t acl_categories(const char *fullname, bool readonly, bool write, bool fast, bool pubsub);
/* Whether user u may run the command (rules applied in order). */
bool acl_cmd_allowed(const struct acl *a, int u, const char *fullname, uint32_t cats);
/* Whether user u may name key[0..n). */
bool acl_key_allowed(const struct acl *a, int u, const uint8_t *key, size_t n);

enum {
    ACL_ALLOWED = 0,
    ACL_DENIED_CMD = 1,
    ACL_DENIED_KEY = 2,
    ACL_DENIED_SCRIPT = 3,
    ACL_DENIED_SORT_BY = 4,  /* SORT ... BY a pattern, by a user without access to every key */
    ACL_DENIED_SORT_GET = 5, /* SORT ... GET, likewise (Redis 7.0's errors: ACL_SORT_*_TEXT) */
    ACL_DENIED_CHANNEL = 6,  /* a channel command by a user with resetchannels */
};
#define ACL_CHANNEL_TEXT "NOPERM this user has no permissions to access one of the channels used as arguments"
#define ACL_SORT_BY_TEXT "ERR BY option of SORT denied due to insufficient ACL permissions."
#define ACL_SORT_GET_TEXT "ERR GET option of SORT denied due to insufficient ACL permissions."
/* ACL_DENIED_SCRIPT: a script (EVAL, EVALSHA and their _RO forms) by a
 * user with key patterns or command rules short of everything. A script's
 * redis.call runs inside the state machine, at the point the log decides,
 * on every replica, where the user's rules are not known (they are each
 * replica's configuration, and could differ between replicas): its
 * commands and keys cannot be checked there as Redis checks them, so only
 * users allowed every command and every key may run scripts. */
#define ACL_SCRIPT_DENIED_TEXT                                                                                   \
    "NOPERM scripts run with every permission on every replica: only a user with +@all and allkeys may run them " \
    "(this user has command rules or key patterns)"
/* A whole command: its permission, then each of its keys (first, last,
 * step as COMMAND INFO, last < 0 counting from the end; the movable-key
 * commands ZUNIONSTORE, ZINTERSTORE and SINTERCARD by their numkeys;
 * the scripting commands as ACL_DENIED_SCRIPT says).
 * argv[0] is the command name. */
int acl_check_command(const struct acl *a, int u, const char *fullname, uint32_t cats, uint32_t argc,
                      const uint8_t *const *argv, const size_t *lens, int first, int last, int step);
/* A native-protocol KV operation (kv/kv.h's encoded argv, @DB, TXN, TXNW):
 * each command in it checked as above. ACL_ALLOWED, ACL_DENIED_CMD,
 * ACL_DENIED_KEY or ACL_DENIED_SCRIPT (cmd gets the refused command's name), or -1 when the op
 * does not parse (the state machine answers it). */
int acl_check_kv_op(const struct acl *a, int u, const uint8_t *op, size_t len, char *cmd, size_t cmdlen);

#endif
