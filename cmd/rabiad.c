/* rabiad: the replica daemon, a thin program over include/rabia/replica.h
 * with the example state machines (kv, counter, bank). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bank.h"
#include "counter.h"
#include "kv.h"
#include "rabia/replica.h"

static struct rabia_replica *g_replica; /* atomic accesses */
static pthread_mutex_t g_hup_mu = PTHREAD_MUTEX_INITIALIZER; /* held while the SIGHUP thread uses it */
static bool g_hup_early; /* a SIGHUP came before the replica existed (g_hup_mu) */

static void on_signal(int sig)
{
    (void)sig;
    struct rabia_replica *r = __atomic_load_n(&g_replica, __ATOMIC_ACQUIRE);
    if (r) rabia_replica_stop(r); /* async-signal-safe */
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rabiad [--config FILE] [--KEY=VALUE ...] [--check-config] [--version] [--help]\n"
            "\n"
            "Runs one replica of a Rabia cluster. Every key can be given in the config\n"
            "file (\"key value\" lines, '#' comments: first on a line or after a space;\n"
            "no quotes; the last one wins) or as --key=value\n"
            "(command-line options win over the file).\n"
            "\n"
            "keys:\n"
            "  (byte sizes: a number or k/kb/m/mb/g/gb, as redis.conf: 1k = 1000, 1kb = 1024)\n"
            "  id                this replica's number in members (1..n)            required\n"
            "  members           1=host:port,2=host:port,...  3, 5 or 7 replicas     required\n"
            "                    (the peer address of each replica; on SIGHUP the others'\n"
            "                    addresses are read again: README \"Replacing a machine\")\n"
            "  peer-listen       host:port for peers (default 0.0.0.0:<own member port>)\n"
            "  client-listen     host:port for the native protocol (rabia-cli), or off\n"
            "  resp-listen       host:port for RESP2 (redis-cli), kv only, or off\n"
            "  data-dir          the log, snapshots and incarnation file (default ./rabia-data);\n"
            "                    needs O_DIRECT (ext4, xfs; not tmpfs)\n"
            "  durability        wal (default: every reply and every consensus message waits for\n"
            "                    the disk; survives any crash of all replicas) | memory (the\n"
            "                    paper's setting: survives f replicas crashing at once)\n"
            "  wal-segment-bytes size of one log segment file (default 64mb; kept for the life of\n"
            "                    the data dir: its log is refused under another value)\n"
            "  max-log-size      log bytes since the last snapshot that trigger one (default 256mb)\n"
            "  snapshot-interval-s  a snapshot at least this often when anything applied (default 300,\n"
            "                    0 = by size only)\n"
            "  wal-allow-buffered  yes = accept a data-dir without O_DIRECT (development only)\n"
            "  state-machine     kv | counter | bank (default kv)\n"
            "  batch-max-bytes   largest batch body (default 256kb)\n"
            "  batch-max-reqs    most requests per batch (default 1024)\n"
            "  batch-timeout-us  longest a request waits for its batch to fill (default 200)\n"
            "  batch-linger-us   window 1: the next batch waits while an own batch is\n"
            "                    undecided and, with clients on several replicas, this long\n"
            "                    for the clients the last one answered (default 200,\n"
            "                    measured best here; 0 = off; core/README.md)\n"
            "  io-threads        threads that accept, read and write client connections, each\n"
            "                    with its own io_uring (0 = the consensus thread does all;\n"
            "                    default auto: 0 on fewer than 4 CPUs, see replica/README.md)\n"
            "  io-threads-pin    yes (default) = pin I/O thread i to the (i+1)-th allowed CPU\n"
            "  read-index        yes (default) = reads are answered once the state reaches the\n"
            "                    slots a majority knows of (one message round, no slot, no log\n"
            "                    write); no = every read is a slot of the log, as writes\n"
            "  window            slots in flight (default 1)\n"
            "  policy            global (window 1) | classes (window >= replicas)\n"
            "  cluster-id        number shared by all replicas (default: derived from members at\n"
            "                    the cluster's first start, then kept in data-dir/cluster-id)\n"
            "  max-sessions      client sessions remembered for exactly-once (default 65536)\n"
            "  maxmemory-clients heap all client connections may hold together; beyond it the\n"
            "                    largest are closed (default 10%% of RAM; N%%, bytes, 1gb; 0 = no limit)\n"
            "  reply-cache-bytes replies kept for retries, all sessions together (default 64mb)\n"
            "  log-retain        decided slots kept for peers that fall behind (default 1024)\n"
            "  log-retain-bytes  ... holding at most this many bytes of batch bodies (default 16mb; 0: no bound)\n"
            "  transfer-rate     bytes/s all snapshot transfers to peers may send together\n"
            "                    (default 0 = no cap; e.g. 64mb; at least 1mb)\n"
            "  retransmit-ms     resend stalled consensus messages after (default 20)\n"
            "  max-feature-level kv: the highest feature level this replica lets the cluster agree\n"
            "                    (default: the build's, --version; 0..%d: hold it during an upgrade\n"
            "                    you may still roll back; kv/README.md \"Feature levels\")\n"
            "  log-level         error | warn | info | debug (default info)\n"
            "\n"
            "operations and security:\n"
            "  metrics-listen    host:port for HTTP /metrics (Prometheus) and /health, or off\n"
            "  cluster-secret-file  file with the cluster's shared secret: peers prove membership\n"
            "                    by challenge-response in HELLO (the secret never travels)\n"
            "  requirepass       password of the default user (RESP AUTH, native protocol)\n"
            "  acl-file          users in Redis ACL syntax: user NAME on >PASS ~PATTERN +@read ...\n"
            "                    (requirepass and acl-file are read again on SIGHUP, as ACL LOAD)\n"
            "  tls-peers         yes = peer links over TLS 1.3 with mutual authentication\n"
            "  tls-clients       yes = the client ports (native and RESP) over TLS 1.3\n"
            "  tls-auth-clients  yes = clients must present a certificate from the CA\n"
            "  tls-cert-file, tls-key-file, tls-ca-cert-file   PEM files (reloaded on SIGHUP)\n"
            "  audit-log         file: every applied write with client identity and slot, or off\n"
            "  audit-log-max-bytes  rotate the audit log past this size (default 64mb)\n"
            "  audit-log-keep    rotated audit files kept (default 4)\n"
            "  restore-from      a backup file (rabia-cli backup): seed a new cluster from it\n"
            "\n"
            "  --restore FILE    same as restore-from = FILE\n"
            "  --rejoin          this replica's data dir was lost: recover from peers\n"
            "                    (never start a wiped replica without it)\n"
            "  --check-config    validate the configuration and exit (0 = valid)\n",
            RABIA_KV_FEATURE_LEVEL);
}

static const struct rabia_sm_ops *pick_sm(const char *name)
{
    if (!strcmp(name, "counter")) return &rabia_sm_counter;
    if (!strcmp(name, "bank")) return &rabia_sm_bank;
    return &rabia_sm_kv;
}

/* What the command line asks besides running. */
enum action { RUN, CHECK, DONE };

/* The VALUE of "--key VALUE" at argv[i]: 0, or 2 with err set when there is
 * none. Another option there is no value: with the value left out
 * ("--requirepass $PASS --check-config", PASS unset) the option was taken
 * as it, and the replica started with that password instead of checking;
 * "--data-dir $D --rejoin" ran a new replica in a folder named --rejoin,
 * without --rejoin. A value that starts with "--" is given as --key=VALUE. */
static int option_value(int argc, char **argv, int i, const char *key, const char **val, char *err, size_t errlen)
{
    if (i >= argc) {
        snprintf(err, errlen, "option --%s needs a value", key);
        return 2;
    }
    if (!strncmp(argv[i], "--", 2)) {
        snprintf(err, errlen,
                 "option --%s needs a value, not the option '%.100s' (was the value left out? a value that starts "
                 "with '--' is given as --%s=VALUE)",
                 key, argv[i], key);
        return 2;
    }
    *val = argv[i];
    return 0;
}

/* The configuration from the file (--config) and the options over it, the
 * same at start and at every SIGHUP. 0 and *act, or 2 with err set. */
static int read_config(int argc, char **argv, struct rabia_replica_config *cfg, enum action *act, char *err,
                       size_t errlen)
{
    rabia_replica_config_default(cfg);
    *act = RUN;
    /* the config file first, so that options override it */
    for (int i = 1; i < argc; i++) {
        const char *path = NULL;
        if (!strcmp(argv[i], "--config") && i + 1 < argc && strncmp(argv[i + 1], "--", 2)) path = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9)) path = argv[i] + 9;
        if (path && rabia_replica_config_load(cfg, path, err, errlen)) return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config")) {
            /* the first loop had no file to read: say so, not run without it */
            const char *path;
            if (option_value(argc, argv, ++i, "config", &path, err, errlen)) return 2;
            continue;
        }
        if (!strncmp(a, "--config=", 9)) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            *act = DONE;
            return 0;
        }
        if (!strcmp(a, "--version")) {
            printf("rabiad 0.1.0 (protocol %d) (feature level %d)\n", RABIA_PROTOCOL_VERSION, RABIA_KV_FEATURE_LEVEL);
            *act = DONE;
            return 0;
        }
        if (!strcmp(a, "--check-config")) {
            *act = CHECK;
            continue;
        }
        if (!strcmp(a, "--restore")) {
            const char *path;
            if (option_value(argc, argv, ++i, "restore", &path, err, errlen)) return 2;
            if (rabia_replica_config_set(cfg, "restore-from", path, err, errlen)) return 2;
            continue;
        }
        if (!strcmp(a, "--rejoin")) {
            cfg->rejoin = true;
            continue;
        }
        if (strncmp(a, "--", 2)) {
            /* redis-server takes its file so ("rabiad rabiad.conf"): say how
             * it is given here, not only "see --help" */
            snprintf(err, errlen,
                     "unexpected argument '%.200s' (a config file is given as --config FILE, a key as --key=value: "
                     "see --help)",
                     a);
            return 2;
        }
        char key[64];
        const char *eq = strchr(a + 2, '=');
        const char *val;
        if (eq) {
            size_t kl = (size_t)(eq - a - 2);
            if (kl >= sizeof key) kl = sizeof key - 1;
            memcpy(key, a + 2, kl);
            key[kl] = 0;
            val = eq + 1;
        } else {
            snprintf(key, sizeof key, "%s", a + 2);
            if (option_value(argc, argv, ++i, key, &val, err, errlen)) return 2;
        }
        /* --restore=FILE as --restore FILE (it was "unknown key 'restore'") */
        if (!strcmp(key, "restore")) snprintf(key, sizeof key, "restore-from");
        if (rabia_replica_config_set(cfg, key, val, err, errlen)) return 2;
    }
    return 0;
}

/* SIGHUP, taken by this thread (blocked in all others, sigwait): reload the
 * TLS certificates, and read the configuration again for the members'
 * addresses (a machine replaced at another address: README "Replacing a
 * machine") and the client users (requirepass, acl-file: as ACL LOAD).
 * Other keys take effect at the next restart (each one changed is warned
 * about, naming it). */
struct hup_ctx {
    int argc;
    char **argv;
    sigset_t set;
    struct rabia_replica_config started; /* as read at start: what runs */
};

/* The value of `key` in a rabia_replica_config_print text: its line's rest,
 * or NULL where the key is not printed (unset). */
static const char *printed_value(const char *text, const char *key, size_t klen, size_t *vlen)
{
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, key, klen) || l[klen] != ' ') continue;
        const char *v = l + klen + 1, *e = strchr(v, '\n');
        *vlen = e ? (size_t)(e - v) : strlen(v);
        return v;
    }
    return NULL;
}

/* A WARN for every key that differs from the running configuration but is
 * not taken by a reload (all but members, requirepass and acl-file: TLS
 * files are read again at the paths the replica started with). They were
 * ignored without a word: an operator who changed log-level or
 * maxmemory-clients and sent SIGHUP believed them in effect (found by
 * review). Compared through rabia_replica_config_print, so a key added
 * there is covered; SIGHUP only, so its allocations cost nothing. */
static void warn_not_reloaded(const struct rabia_replica_config *was, const struct rabia_replica_config *now)
{
    static const char *const taken[] = {"members", "requirepass", "acl-file", "cluster-id", "id"};
    char *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    FILE *fa = open_memstream(&a, &al), *fb = open_memstream(&b, &bl);
    if (!fa || !fb) {
        if (fa) fclose(fa);
        if (fb) fclose(fb);
        free(a);
        free(b);
        fprintf(stderr, "rabiad: reload (SIGHUP): out of memory comparing the configuration with the running one\n");
        return;
    }
    rabia_replica_config_print(was, fa);
    rabia_replica_config_print(now, fb);
    fclose(fa);
    fclose(fb);
    /* every key of either text once: those of a, then those only in b */
    for (int pass = 0; pass < 2; pass++) {
        const char *text = pass ? b : a;
        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
            size_t klen = strcspn(l, " \n"), ol = 0, nl = 0;
            if (!klen || l[klen] != ' ') continue;
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int)klen, l);
            bool skip = false;
            for (size_t t = 0; t < sizeof taken / sizeof taken[0]; t++) skip |= !strcmp(key, taken[t]);
            const char *o = printed_value(a, key, klen, &ol), *n = printed_value(b, key, klen, &nl);
            if (skip || (pass && o) || (o && n && ol == nl && !memcmp(o, n, ol))) continue;
            fprintf(stderr,
                    "rabiad: reload (SIGHUP): WARN %s changed (%.*s -> %.*s) but is not taken while running: the "
                    "running value stays; restart this replica for it to take effect\n",
                    key, o ? (int)ol : 7, o ? o : "(unset)", n ? (int)nl : 7, n ? n : "(unset)");
        }
    }
    free(a);
    free(b);
}

static void *hup_main(void *arg)
{
    struct hup_ctx *h = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(&h->set, &sig)) continue;
        pthread_mutex_lock(&g_hup_mu);
        struct rabia_replica *r = __atomic_load_n(&g_replica, __ATOMIC_ACQUIRE);
        if (r) {
            struct rabia_replica_config next;
            enum action act;
            char err[1024];
            int rc = read_config(h->argc, h->argv, &next, &act, err, sizeof err);
            if (!rc) rc = rabia_replica_config_check(&next, err, sizeof err);
            if (!rc) rc = rabia_replica_reload(r, &next, err, sizeof err);
            /* the certificates too only with the rest: all or nothing (they
             * were reloaded first, also when the configuration was refused
             * with "the running configuration stays") */
            if (!rc) rabia_replica_reload_tls(r);
            if (!rc) warn_not_reloaded(&h->started, &next);
            else fprintf(stderr, "rabiad: reload (SIGHUP): %s; the running configuration stays\n", err);
        } else {
            /* still starting (a log replayed, the data dir's lock awaited):
             * the configuration may have changed since it was read; taken
             * once the replica runs (it was dropped without a word) */
            g_hup_early = true;
        }
        pthread_mutex_unlock(&g_hup_mu);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct rabia_replica_config cfg;
    char err[1024];
    enum action act;
    if (read_config(argc, argv, &cfg, &act, err, sizeof err)) {
        fprintf(stderr, "rabiad: %s\n", err);
        return 2;
    }
    if (act == DONE) return 0;
    int check = act == CHECK;
    if (rabia_replica_config_check(&cfg, err, sizeof err)) {
        fprintf(stderr, "rabiad: invalid configuration: %s\n", err);
        return 2;
    }
    if (!cfg.client_listen[0] && !cfg.resp_listen[0]) {
        fprintf(stderr, "rabiad: invalid configuration: client-listen and resp-listen are both off: clients could "
                        "not reach this replica (set client-listen = 127.0.0.1:7401, for example)\n");
        return 2;
    }
    if (check && cfg.restore_from[0]) { /* what the start would refuse, before the operator relies on it */
        uint64_t slot = 0, bytes = 0;
        if (rabia_replica_restore_check(&cfg, pick_sm(cfg.state_machine), &slot, &bytes, err, sizeof err)) {
            fprintf(stderr, "rabiad: invalid configuration: %s\n", err);
            return 2;
        }
        printf("restore-from %s: verified, a '%s' state at slot %llu (%llu bytes); data-dir %s is empty\n",
               cfg.restore_from, cfg.state_machine, (unsigned long long)slot, (unsigned long long)bytes, cfg.data_dir);
    }
    if (check) {
        printf("configuration is valid:\n");
        rabia_replica_config_print(&cfg, stdout);
        return 0;
    }
    /* SIGHUP goes to the reload thread only: blocked here, before any
     * thread starts, so every thread inherits the mask */
    static struct hup_ctx hup;
    hup.argc = argc;
    hup.argv = argv;
    hup.started = cfg;
    sigemptyset(&hup.set);
    sigaddset(&hup.set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hup.set, NULL);
    pthread_t hup_thread;
    if (pthread_create(&hup_thread, NULL, hup_main, &hup)) {
        fprintf(stderr, "rabiad: cannot start the SIGHUP thread\n");
        return 1;
    }
    pthread_detach(hup_thread);
    if (pick_sm(cfg.state_machine) == &rabia_sm_kv && rabia_kv_script_heap_check(err, sizeof err)) {
        fprintf(stderr, "rabiad: %s\n", err);
        return 1;
    }
    struct rabia_replica *r;
    int rc = rabia_replica_create(&r, &cfg, pick_sm(cfg.state_machine), err, sizeof err);
    if (rc) {
        fprintf(stderr, "rabiad: %s\n", err);
        return 1;
    }
    pthread_mutex_lock(&g_hup_mu);
    __atomic_store_n(&g_replica, r, __ATOMIC_RELEASE);
    bool hup_early = g_hup_early;
    pthread_mutex_unlock(&g_hup_mu);
    if (hup_early) {
        fprintf(stderr, "rabiad: a SIGHUP came while starting: reloading now\n");
        kill(getpid(), SIGHUP); /* blocked here: the SIGHUP thread takes it */
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    rc = rabia_replica_run(r);
    /* the SIGHUP thread may be using r: it finishes that reload first (the
     * lock), then finds no replica */
    pthread_mutex_lock(&g_hup_mu);
    __atomic_store_n(&g_replica, NULL, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&g_hup_mu);
    rabia_replica_destroy(r);
    return rc ? 1 : 0;
}
