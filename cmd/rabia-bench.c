/* rabia-bench: a load generator for rabia (native protocol and RESP), Redis
 * and etcd, and a sweep of rabiad's batching settings over local clusters.
 * This file: the command line, the result's output (stdout, CSV, JSON) and
 * the sweep (local-cluster.sh per setting, gnuplot). The load itself is in
 * bench_run.c; wire formats in bench_proto.c; the histogram in
 * bench_hist.c. See cmd/README.md. Exit: 0 done without errors, 1 the run
 * could not be made (nothing connected...), 2 usage, 3 done but some
 * requests failed (the results are still printed and written). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_proto.h"
#include "bench_run.h"

extern char **environ;

#define MAX_LIST 32

enum { EX_OK = 0, EX_FAIL = 1, EX_USAGE = 2, EX_ERRORS = 3 };

struct sweep_opts {
    unsigned bmr[MAX_LIST], bto[MAX_LIST], win[MAX_LIST];
    unsigned n_bmr, n_bto, n_win;
    const char *cluster_dir, *out, *durability, *server_cpus, *script;
    uint64_t p99_bound; /* 0 = none */
    unsigned replicas;
};

static const char *csv_path, *json_path, *label = "";
static char addr_text[4096];

static void usage(FILE *f)
{
    fputs(
        "usage: rabia-bench run [options]\n"
        "       rabia-bench sweep [run options] --batch-max-reqs LIST --batch-timeout-us LIST\n"
        "              [--window LIST] --cluster-dir DIR --out PREFIX [--p99-bound-us U]\n"
        "              [--replicas 3] [--durability wal|memory] [--server-cpus LIST]\n"
        "\n"
        "run options:\n"
        "  --proto resp|native|etcd   (default resp)\n"
        "  --addr HOST:PORT[,...]     connections spread round robin over them (native: the\n"
        "                             cluster's native ports, as rabia-cli -a; default\n"
        "                             127.0.0.1:6379 for resp, 127.0.0.1:7401,7402,7403 native,\n"
        "                             127.0.0.1:2379 etcd)\n"
        "  --connections C            (default 50)\n"
        "  --pipeline P               requests in flight per connection (default 1; native <= 64)\n"
        "  --native-cork yes|no       native: the requests issued together written with one send\n"
        "                             (rabia_client_cork; default yes), or one send each\n"
        "  --rate R                   open loop, R requests/s in total, latency from the\n"
        "                             intended send time; omitted: closed loop\n"
        "  --keys N (100000) --key-size B (16) --value-size B (100)\n"
        "  --read-ratio F             fraction of GETs, 0..1 (default 0: all SETs)\n"
        "  --duration S (10) --warmup S (2)   or --requests N: stop after N measured requests\n"
        "  --wait-replicas K          RESP: WAIT K 0 after each SET, part of its latency\n"
        "  --threads T                load-generator threads (default 1)\n"
        "  --csv FILE                 append a row (header when the file is new)\n"
        "  --json FILE                write the result as one JSON object\n"
        "  --label TEXT               copied into the CSV/JSON rows\n"
        "  --quiet                    no progress line (otherwise one a second on stderr)\n"
        "sweep: restarts a local cluster (deploy/local-cluster.sh, or --cluster-script or\n"
        "  $RABIA_LOCAL_CLUSTER) for each combination with RABIA_EXTRA_ARGS carrying the\n"
        "  batch/window keys, runs the load against it, appends PREFIX.csv, draws\n"
        "  PREFIX-throughput.{png,svg} and PREFIX-p99.{png,svg} with gnuplot and prints the\n"
        "  best setting (highest throughput with p99 <= the bound, no errors).\n"
        "stdout's last line: requests=N errors=E seconds=S throughput=X p50_us=.. p90_us=..\n"
        "  p99_us=.. p999_us=.. max_us=..\n"
        "exit: 0 ok, 1 could not run, 2 usage, 3 some requests failed\n",
        f);
}

static int bad(const char *fmt, const char *arg)
{
    fprintf(stderr, "rabia-bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (rabia-bench --help)\n");
    return EX_USAGE;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_dbl(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

static int parse_list(const char *s, unsigned *out, unsigned *n, uint64_t lo, uint64_t hi)
{
    char buf[512];
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    *n = 0;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        uint64_t v;
        if (*n >= MAX_LIST || parse_u64(tok, lo, hi, &v) < 0)
            return -1;
        out[(*n)++] = (unsigned)v;
    }
    return *n ? 0 : -1;
}

static int split_addrs(struct bench_opts *o, const char *list)
{
    static char buf[4096];
    if (strlen(list) >= sizeof buf)
        return -1;
    strcpy(buf, list);
    snprintf(addr_text, sizeof addr_text, "%s", list);
    o->n_addrs = 0;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        const char *colon = strrchr(tok, ':');
        uint64_t port;
        /* the port is checked here: getaddrinfo takes 99999 as 99999 mod 65536
         * (34463) and the run would measure whatever listens there */
        if (o->n_addrs >= BENCH_MAX_ADDRS || !colon || colon == tok || parse_u64(colon + 1, 1, 65535, &port) < 0)
            return -1;
        o->addrs[o->n_addrs++] = tok;
    }
    return o->n_addrs ? 0 : -1;
}

/* text for a CSV cell: no commas, quotes or newlines (gnuplot reads these files) */
static void csv_clean(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < n; i++)
        dst[i] = (src[i] == ',' ? ' ' : src[i] == '"' || src[i] == '\n' || src[i] == '\r' ? '_' : src[i]);
    dst[i] = 0;
}

#define SWEEP_CSV_PREFIX "batch_max_reqs,batch_timeout_us,window," /* a sweep's leading columns */
#define CSV_HEADER                                                                                 \
    "label,proto,addr,connections,pipeline,threads,rate,keys,key_size,value_size,read_ratio,"      \
    "wait_replicas,warmup_s,requests,errors,seconds,throughput,mean_us,p50_us,p90_us,p99_us,"     \
    "p999_us,max_us,warmup_requests,unfinished"

static void csv_fields(FILE *f, const struct bench_opts *o, const struct bench_result *r)
{
    char lab[256], ad[sizeof addr_text];
    csv_clean(lab, sizeof lab, label);
    csv_clean(ad, sizeof ad, addr_text);
    fprintf(f, "%s,%s,%s,%u,%u,%u,%.0f,%" PRIu64 ",%u,%u,%.3f,%u,%.1f,%" PRIu64 ",%" PRIu64
               ",%.3f,%.1f,%.1f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64,
            lab, bench_proto_name(o->proto), ad, o->connections, o->pipeline, o->threads, o->rate, o->keys,
            o->key_size, o->value_size, o->read_ratio, o->wait_replicas, o->warmup, r->requests, r->errors,
            r->seconds, r->throughput, r->mean, r->p50, r->p90, r->p99, r->p999, r->max, r->warmup_requests,
            r->unfinished);
}

/* 0 when path is missing, empty or starts with the header rows with
 * prefix_header get; else a message and -EINVAL: rows under another header
 * would be read into the wrong columns (a file of an older rabia-bench,
 * which had fewer, or of a sweep appended to by a run). Checked before a
 * run or a sweep starts, not after it measured. */
static int csv_header_check(const char *path, const char *prefix_header)
{
    char want[1024], got[1024];
    snprintf(want, sizeof want, "%s%s\n", prefix_header ? prefix_header : "", CSV_HEADER);
    FILE *f = fopen(path, "r");
    if (!f) return 0; /* made by the first row (a path that cannot be made fails there) */
    bool ok = !fgets(got, sizeof got, f) || !strcmp(got, want); /* nothing read: empty */
    fclose(f);
    if (ok) return 0;
    fprintf(stderr,
            "rabia-bench: %s starts with another header than %s rows have: a file of another rabia-bench "
            "version or of another kind of run, whose columns differ; give a new file\n",
            path, prefix_header ? "a sweep's" : "a run's");
    return -EINVAL;
}

/* append one row; prefix/prefix_header: extra leading columns (the sweep's) */
static int csv_append(const char *path, const char *prefix_header, const char *prefix, const struct bench_opts *o,
                      const struct bench_result *r)
{
    struct stat st;
    bool fresh = stat(path, &st) != 0 || st.st_size == 0;
    if (!fresh && csv_header_check(path, prefix_header) < 0) return -EINVAL;
    FILE *f = fopen(path, "a");
    if (!f) {
        fprintf(stderr, "rabia-bench: cannot append to %s: %s\n", path, strerror(errno));
        return -errno;
    }
    if (fresh)
        fprintf(f, "%s%s\n", prefix_header ? prefix_header : "", CSV_HEADER);
    fprintf(f, "%s", prefix ? prefix : "");
    csv_fields(f, o, r);
    fputc('\n', f);
    if (fclose(f) != 0) {
        fprintf(stderr, "rabia-bench: writing %s: %s\n", path, strerror(errno));
        return -EIO;
    }
    return 0;
}

static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80) return 1;
    size_t n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0; /* a NUL ends it here too */
    if (n == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))) return 0;
    if (n == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))) return 0;
    return n;
}

/* A JSON string: quotes, backslashes and control characters escaped, and
 * each byte that is not part of well-formed UTF-8 (a --label from a shell
 * in another locale) written as U+FFFD: JSON is UTF-8, and a parser
 * refused the whole file for one such byte. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char ch = *p;
        size_t n = utf8_len(p);
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\u%04x", ch);
        else if (!n)
            fputs("\\ufffd", f);
        else
            fwrite(p, 1, n, f);
        p += n ? n : 1;
    }
    fputc('"', f);
}

static int json_write(const char *path, const struct bench_opts *o, const struct bench_result *r)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "rabia-bench: cannot write %s: %s\n", path, strerror(errno));
        return -errno;
    }
    fprintf(f, "{\"label\": ");
    json_str(f, label);
    fprintf(f, ", \"proto\": \"%s\", \"addr\": ", bench_proto_name(o->proto));
    json_str(f, addr_text);
    fprintf(f,
            ", \"connections\": %u, \"pipeline\": %u, \"threads\": %u, \"rate\": %.0f, \"keys\": %" PRIu64
            ", \"key_size\": %u, \"value_size\": %u, \"read_ratio\": %.3f, \"wait_replicas\": %u, "
            "\"warmup_s\": %.1f, \"requests\": %" PRIu64 ", \"errors\": %" PRIu64
            ", \"seconds\": %.3f, \"throughput\": %.1f, \"mean_us\": %.1f, \"p50_us\": %" PRIu64
            ", \"p90_us\": %" PRIu64 ", \"p99_us\": %" PRIu64 ", \"p999_us\": %" PRIu64 ", \"max_us\": %" PRIu64
            ", \"warmup_requests\": %" PRIu64 ", \"unfinished\": %" PRIu64 "}\n",
            o->connections, o->pipeline, o->threads, o->rate, o->keys, o->key_size, o->value_size, o->read_ratio,
            o->wait_replicas, o->warmup, r->requests, r->errors, r->seconds, r->throughput, r->mean, r->p50, r->p90,
            r->p99, r->p999, r->max, r->warmup_requests, r->unfinished);
    if (fclose(f) != 0) {
        fprintf(stderr, "rabia-bench: writing %s: %s\n", path, strerror(errno));
        return -EIO;
    }
    return 0;
}

static void print_result(const struct bench_opts *o, const struct bench_result *r)
{
    printf("%s %s, %u connections x pipeline %u, %s", bench_proto_name(o->proto), addr_text, o->connections,
           o->pipeline, o->rate > 0 ? "open loop" : "closed loop");
    if (o->rate > 0)
        printf(" at %.0f/s", o->rate);
    printf(", %.0f%% reads\n", o->read_ratio * 100);
    if (r->unfinished)
        printf("unfinished=%" PRIu64 " (sent or due before the end, unanswered then: in the latencies at their "
               "wait so far, not in requests)\n", r->unfinished);
    printf("requests=%" PRIu64 " errors=%" PRIu64 " seconds=%.3f throughput=%.1f p50_us=%" PRIu64
           " p90_us=%" PRIu64 " p99_us=%" PRIu64 " p999_us=%" PRIu64 " max_us=%" PRIu64 "\n",
           r->requests, r->errors, r->seconds, r->throughput, r->p50, r->p90, r->p99, r->p999, r->max);
    fflush(stdout);
}

/* ---- sweep ---- */

/* the folder of this executable (to find rabiad, rabia-cli and the repo) */
static int exe_dir(char *out, size_t n)
{
    char p[PATH_MAX];
    ssize_t l = readlink("/proc/self/exe", p, sizeof p - 1);
    if (l <= 0)
        return -1;
    p[l] = 0;
    snprintf(out, n, "%s", dirname(p));
    return 0;
}

/* sweep: the signal that asked it to end (SIGINT, SIGTERM, SIGHUP), or 0.
 * The replicas local-cluster.sh starts outlive this process: a SIGTERM or
 * SIGHUP sent to it alone (kill PID, a job runner) does not reach them.
 * Dying at once would leave the cluster running, so the handler only
 * records the signal; the run ends early, the sweep stops the cluster and
 * then dies of the same signal. */
static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

/* run argv with stdout sent to stderr (stdout stays machine-readable); exit status or -1 */
static int spawn_wait(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "rabia-bench: cannot run %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct row {
    unsigned bmr, bto, win;
    struct bench_result r; /* hist unused after the run */
    bool ok;
};

static void plot(const struct sweep_opts *w, const struct row *rows, unsigned n)
{
    char gp[PATH_MAX];
    snprintf(gp, sizeof gp, "%s.gp", w->out);
    FILE *f = fopen(gp, "w");
    if (!f) {
        fprintf(stderr, "rabia-bench: cannot write %s: %s\n", gp, strerror(errno));
        return;
    }
    /* one data block per (timeout, window) series, batch sizes in order */
    unsigned series = 0;
    for (unsigned t = 0; t < w->n_bto; t++)
        for (unsigned v = 0; v < (w->n_win ? w->n_win : 1); v++, series++) {
            fprintf(f, "$s%u << EOD\n", series);
            for (unsigned b = 0; b < w->n_bmr; b++)
                for (unsigned i = 0; i < n; i++)
                    if (rows[i].bmr == w->bmr[b] && rows[i].bto == w->bto[t] &&
                        rows[i].win == (w->n_win ? w->win[v] : 0) && rows[i].ok)
                        fprintf(f, "%u %.1f %" PRIu64 "\n", rows[i].bmr, rows[i].r.throughput, rows[i].r.p99);
            fprintf(f, "EOD\n");
        }
    static const char *what[2][3] = {{"throughput", "requests/s", "2"}, {"p99", "p99 latency (us)", "3"}};
    static const char *term[2][2] = {{"png", "pngcairo size 900,560"}, {"svg", "svg size 900,560 dynamic"}};
    for (int k = 0; k < 2; k++)
        for (int m = 0; m < 2; m++) {
            fprintf(f, "set terminal %s\nset output '%s-%s.%s'\n", term[m][1], w->out, what[k][0], term[m][0]);
            fprintf(f, "set title 'rabia-bench sweep: %s'\nset xlabel 'batch-max-reqs'\nset ylabel '%s'\n",
                    what[k][0], what[k][1]);
            fprintf(f, "set logscale x 2\nset grid\nset key outside right\nset yrange [0:*]\n");
            if (k == 1 && w->p99_bound)
                fprintf(f, "set arrow from graph 0, first %" PRIu64 " to graph 1, first %" PRIu64
                           " nohead dt 2 lc rgb 'red'\n",
                        w->p99_bound, w->p99_bound);
            else
                fprintf(f, "unset arrow\n");
            fprintf(f, "plot ");
            series = 0;
            for (unsigned t = 0; t < w->n_bto; t++)
                for (unsigned v = 0; v < (w->n_win ? w->n_win : 1); v++, series++) {
                    fprintf(f, "%s$s%u using 1:%s with linespoints lw 2 title 'timeout %u us", series ? ", " : "",
                            series, what[k][2], w->bto[t]);
                    if (w->n_win)
                        fprintf(f, ", window %u", w->win[v]);
                    fprintf(f, "'");
                }
            fprintf(f, "\nunset output\n");
        }
    fclose(f);
    char *argv[] = {"gnuplot", gp, NULL};
    int rc = spawn_wait(argv);
    if (rc != 0)
        fprintf(stderr, "rabia-bench: gnuplot %s failed (exit %d): no plots (is gnuplot-nox installed? "
                        "deploy/install-deps.sh)\n", gp, rc);
    else
        fprintf(stderr, "rabia-bench: plots %s-throughput.{png,svg} %s-p99.{png,svg} (script %s)\n", w->out,
                w->out, gp);
}

static int sweep(struct bench_opts *o, const struct sweep_opts *w, bool addr_given)
{
    char dir[PATH_MAX], script[PATH_MAX + 64], tmp[PATH_MAX];
    if (exe_dir(dir, sizeof dir) < 0) {
        fprintf(stderr, "rabia-bench: cannot find my own folder (/proc/self/exe)\n");
        return EX_FAIL;
    }
    if (w->script)
        snprintf(script, sizeof script, "%s", w->script);
    else if (getenv("RABIA_LOCAL_CLUSTER"))
        snprintf(script, sizeof script, "%s", getenv("RABIA_LOCAL_CLUSTER"));
    else
        snprintf(script, sizeof script, "%s/../../deploy/local-cluster.sh", dir);
    if (access(script, R_OK) != 0) {
        fprintf(stderr, "rabia-bench: no local-cluster script at %s: pass --cluster-script "
                        "PATH/deploy/local-cluster.sh\n", script);
        return EX_FAIL;
    }
    /* the cluster uses the rabiad and rabia-cli next to this binary unless told otherwise */
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/rabiad", dir);
    if (!getenv("RABIAD") && access(p, X_OK) == 0)
        setenv("RABIAD", p, 1);
    snprintf(p, sizeof p, "%s/rabia-cli", dir);
    if (!getenv("RABIA_CLI") && access(p, X_OK) == 0)
        setenv("RABIA_CLI", p, 1);
    snprintf(tmp, sizeof tmp, "/tmp/rabia-bench.XXXXXX");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "rabia-bench: mkdtemp: %s\n", strerror(errno));
        return EX_FAIL;
    }
    if (w->server_cpus) {
        /* rabiad pinned with taskset: a wrapper that execs (same PID, so
         * local-cluster.sh's pid files and stop still work) */
        const char *real = getenv("RABIAD");
        char wrap[PATH_MAX + 32];
        snprintf(wrap, sizeof wrap, "%s/rabiad", tmp);
        FILE *f = fopen(wrap, "w");
        if (!f || fprintf(f, "#!/bin/sh\nexec taskset -c '%s' '%s' \"$@\"\n", w->server_cpus,
                          real ? real : "rabiad") < 0 || fclose(f) != 0 || chmod(wrap, 0755) != 0) {
            fprintf(stderr, "rabia-bench: cannot write %s\n", wrap);
            return EX_FAIL;
        }
        setenv("RABIAD", wrap, 1);
    }
    setenv("RABIA_CLUSTER_DIR", w->cluster_dir, 1);
    const char *user_extra = getenv("RABIA_EXTRA_ARGS");
    char user_extra_copy[1024];
    snprintf(user_extra_copy, sizeof user_extra_copy, "%s", user_extra ? user_extra : "");
    static char addrs[BENCH_MAX_ADDRS * 32];
    if (!addr_given) {
        const char *base_env = getenv(o->proto == BP_NATIVE ? "RABIA_CLIENT_BASE" : "RABIA_RESP_BASE");
        unsigned base = base_env ? (unsigned)atoi(base_env) : (o->proto == BP_NATIVE ? 7400 : 6400);
        addrs[0] = 0;
        for (unsigned i = 1; i <= w->replicas; i++)
            snprintf(addrs + strlen(addrs), sizeof addrs - strlen(addrs), "%s127.0.0.1:%u", i > 1 ? "," : "",
                     base + i);
        split_addrs(o, addrs);
    }
    unsigned nwin = w->n_win ? w->n_win : 1, total = w->n_bmr * w->n_bto * nwin, n = 0;
    struct row *rows = calloc(total, sizeof *rows);
    if (!rows)
        return EX_FAIL;
    char csv[PATH_MAX], reps[16];
    snprintf(csv, sizeof csv, "%s.csv", w->out);
    if (csv_header_check(csv, SWEEP_CSV_PREFIX) < 0 || (csv_path && csv_header_check(csv_path, SWEEP_CSV_PREFIX) < 0)) {
        free(rows);
        return EX_FAIL;
    }
    snprintf(reps, sizeof reps, "%u", w->replicas);
    char *stop_argv[] = {"bash", script, "stop", NULL};
    char *start_argv[] = {"bash", script, "start", reps, "kv", NULL};
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    o->interrupted = &got_signal;
    int ex = EX_OK;
    for (unsigned b = 0; b < w->n_bmr && !got_signal; b++)
        for (unsigned t = 0; t < w->n_bto && !got_signal; t++)
            for (unsigned v = 0; v < nwin && !got_signal; v++) {
                struct row *r = &rows[n++];
                r->bmr = w->bmr[b];
                r->bto = w->bto[t];
                r->win = w->n_win ? w->win[v] : 0;
                char extra[2048];
                int l = snprintf(extra, sizeof extra, "%s --batch-max-reqs %u --batch-timeout-us %u",
                                 user_extra_copy, r->bmr, r->bto);
                if (w->n_win)
                    l += snprintf(extra + l, sizeof extra - (size_t)l, " --window %u", r->win);
                if (w->durability)
                    snprintf(extra + l, sizeof extra - (size_t)l, " --durability %s", w->durability);
                setenv("RABIA_EXTRA_ARGS", extra, 1);
                fprintf(stderr, "rabia-bench: sweep %u/%u: batch-max-reqs %u, batch-timeout-us %u%s%.0u\n", n,
                        total, r->bmr, r->bto, w->n_win ? ", window " : "", w->n_win ? r->win : 0);
                (void)spawn_wait(stop_argv);
                int rc = spawn_wait(start_argv);
                if (rc != 0) {
                    fprintf(stderr, "rabia-bench: the cluster did not start with '%s' (exit %d; logs in %s)\n",
                            extra, rc, w->cluster_dir);
                    (void)spawn_wait(stop_argv);
                    ex = EX_FAIL;
                    continue;
                }
                rc = got_signal ? 0 : bench_run(o, &r->r);
                (void)spawn_wait(stop_argv);
                if (got_signal)
                    break; /* cut short: not a measurement of this setting */
                if (rc < 0) {
                    fprintf(stderr, "rabia-bench: the load failed with '%s': %s\n", extra, strerror(-rc));
                    ex = EX_FAIL;
                    continue;
                }
                r->ok = true;
                print_result(o, &r->r);
                char pv[128];
                snprintf(pv, sizeof pv, "%u,%u,%u,", r->bmr, r->bto, r->win);
                if (csv_append(csv, SWEEP_CSV_PREFIX, pv, o, &r->r) < 0)
                    ex = EX_FAIL;
                if (csv_path)
                    (void)csv_append(csv_path, SWEEP_CSV_PREFIX, pv, o, &r->r);
                if (r->r.errors && ex == EX_OK)
                    ex = EX_ERRORS;
            }
    setenv("RABIA_EXTRA_ARGS", user_extra_copy, 1);
    if (got_signal) {
        /* once more: a Ctrl-C also reaches a start or stop script running
         * then, which may have died half-way */
        (void)spawn_wait(stop_argv);
        unsigned done = 0;
        for (unsigned i = 0; i < n; i++)
            done += rows[i].ok;
        fprintf(stderr, "rabia-bench: sweep interrupted by signal %d at setting %u/%u: the cluster in %s is "
                        "stopped; %s has the %u settings measured before\n",
                (int)got_signal, n, total, w->cluster_dir, csv, done);
        char wrap[PATH_MAX + 32];
        snprintf(wrap, sizeof wrap, "%s/rabiad", tmp);
        unlink(wrap);
        rmdir(tmp);
        free(rows);
        int sig = got_signal;
        signal(sig, SIG_DFL);
        raise(sig);
        return EX_FAIL;
    }
    unsigned measured = 0;
    for (unsigned i = 0; i < n; i++)
        measured += rows[i].ok;
    if (measured)
        plot(w, rows, n);
    else /* gnuplot would fail on empty data and the message blame its installation */
        fprintf(stderr, "rabia-bench: no setting was measured: no plots\n");
    const struct row *best = NULL;
    for (unsigned i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        if (!r->ok || r->r.errors || r->r.requests == 0 || (w->p99_bound && r->r.p99 > w->p99_bound))
            continue;
        if (!best || r->r.throughput > best->r.throughput)
            best = r;
    }
    if (best)
        printf("best: batch_max_reqs=%u batch_timeout_us=%u window=%u throughput=%.1f p99_us=%" PRIu64
               " (highest throughput%s)\n",
               best->bmr, best->bto, best->win, best->r.throughput, best->r.p99,
               w->p99_bound ? " with p99 within the bound" : "; no --p99-bound-us given");
    else if (w->p99_bound)
        printf("best: none (no setting ran without errors with p99 <= %" PRIu64 " us)\n", w->p99_bound);
    else
        printf("best: none (no setting ran without errors)\n");
    char wrap[PATH_MAX + 32];
    snprintf(wrap, sizeof wrap, "%s/rabiad", tmp);
    unlink(wrap);
    rmdir(tmp);
    free(rows);
    return ex;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EX_USAGE : EX_OK;
    }
    bool is_sweep = !strcmp(argv[1], "sweep");
    if (!is_sweep && strcmp(argv[1], "run"))
        return bad("unknown command '%s': use run or sweep", argv[1]);
    struct bench_opts o = {.proto = BP_RESP,
                           .connections = 50,
                           .pipeline = 1,
                           .threads = 1,
                           .keys = 100000,
                           .key_size = 16,
                           .value_size = 100,
                           .duration = 10,
                           .warmup = 2};
    struct sweep_opts w = {.replicas = 3};
    const char *addr = NULL;
    enum {
        O_PROTO = 256, O_ADDR, O_CONN, O_PIPE, O_RATE, O_KEYS, O_KSIZE, O_VSIZE, O_READ, O_DUR, O_WARM, O_REQS,
        O_WAIT, O_THR, O_CSV, O_JSON, O_LABEL, O_QUIET, O_BMR, O_BTO, O_WIN, O_CDIR, O_OUT, O_BOUND, O_REPL,
        O_DURA, O_CPUS, O_SCRIPT, O_CORK, O_HELP
    };
    static const struct option lo[] = {
        {"proto", 1, 0, O_PROTO}, {"addr", 1, 0, O_ADDR}, {"connections", 1, 0, O_CONN},
        {"pipeline", 1, 0, O_PIPE}, {"rate", 1, 0, O_RATE}, {"keys", 1, 0, O_KEYS},
        {"key-size", 1, 0, O_KSIZE}, {"value-size", 1, 0, O_VSIZE}, {"read-ratio", 1, 0, O_READ},
        {"duration", 1, 0, O_DUR}, {"warmup", 1, 0, O_WARM}, {"requests", 1, 0, O_REQS},
        {"wait-replicas", 1, 0, O_WAIT}, {"threads", 1, 0, O_THR}, {"csv", 1, 0, O_CSV},
        {"json", 1, 0, O_JSON}, {"label", 1, 0, O_LABEL}, {"quiet", 0, 0, O_QUIET},
        {"batch-max-reqs", 1, 0, O_BMR}, {"batch-timeout-us", 1, 0, O_BTO}, {"window", 1, 0, O_WIN},
        {"cluster-dir", 1, 0, O_CDIR}, {"out", 1, 0, O_OUT}, {"p99-bound-us", 1, 0, O_BOUND},
        {"replicas", 1, 0, O_REPL}, {"durability", 1, 0, O_DURA}, {"server-cpus", 1, 0, O_CPUS},
        {"cluster-script", 1, 0, O_SCRIPT}, {"native-cork", 1, 0, O_CORK}, {"help", 0, 0, O_HELP}, {0, 0, 0, 0}};
    uint64_t u;
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_PROTO:
            if (!strcmp(optarg, "resp"))
                o.proto = BP_RESP;
            else if (!strcmp(optarg, "native"))
                o.proto = BP_NATIVE;
            else if (!strcmp(optarg, "etcd"))
                o.proto = BP_ETCD;
            else
                return bad("--proto '%s': use resp, native or etcd", optarg);
            break;
        case O_ADDR:
            addr = optarg;
            break;
        case O_CONN:
            if (parse_u64(optarg, 1, BENCH_MAX_CONNS, &u) < 0)
                return bad("--connections '%s': must be 1..10000", optarg);
            o.connections = (unsigned)u;
            break;
        case O_PIPE:
            if (parse_u64(optarg, 1, BENCH_MAX_PIPELINE, &u) < 0)
                return bad("--pipeline '%s': must be 1..1024", optarg);
            o.pipeline = (unsigned)u;
            break;
        case O_RATE:
            if (parse_dbl(optarg, 1, 1e9, &o.rate) < 0)
                return bad("--rate '%s': requests per second, 1..1e9", optarg);
            break;
        case O_KEYS:
            if (parse_u64(optarg, 1, UINT64_C(1) << 40, &o.keys) < 0)
                return bad("--keys '%s': must be 1..2^40", optarg);
            break;
        case O_KSIZE:
            if (parse_u64(optarg, 1, 1024, &u) < 0)
                return bad("--key-size '%s': must be 1..1024", optarg);
            o.key_size = (unsigned)u;
            break;
        case O_VSIZE:
            if (parse_u64(optarg, 0, 1 << 20, &u) < 0)
                return bad("--value-size '%s': must be 0..1048576", optarg);
            o.value_size = (unsigned)u;
            break;
        case O_READ:
            if (parse_dbl(optarg, 0, 1, &o.read_ratio) < 0)
                return bad("--read-ratio '%s': must be 0..1", optarg);
            break;
        case O_DUR:
            if (parse_dbl(optarg, 0.1, 86400, &o.duration) < 0)
                return bad("--duration '%s': seconds, 0.1..86400", optarg);
            break;
        case O_WARM:
            if (parse_dbl(optarg, 0, 3600, &o.warmup) < 0)
                return bad("--warmup '%s': seconds, 0..3600", optarg);
            break;
        case O_REQS:
            if (parse_u64(optarg, 1, UINT64_C(1) << 40, &o.requests) < 0)
                return bad("--requests '%s': must be >= 1", optarg);
            break;
        case O_WAIT:
            if (parse_u64(optarg, 1, 1000, &u) < 0)
                return bad("--wait-replicas '%s': must be 1..1000", optarg);
            o.wait_replicas = (unsigned)u;
            break;
        case O_THR:
            if (parse_u64(optarg, 1, BENCH_MAX_THREADS, &u) < 0)
                return bad("--threads '%s': must be 1..64", optarg);
            o.threads = (unsigned)u;
            break;
        case O_CSV:
            csv_path = optarg;
            break;
        case O_JSON:
            json_path = optarg;
            break;
        case O_LABEL:
            label = optarg;
            break;
        case O_QUIET:
            o.quiet = true;
            break;
        case O_BMR:
            if (parse_list(optarg, w.bmr, &w.n_bmr, 1, 65536) < 0)
                return bad("--batch-max-reqs '%s': a comma-separated list of 1..65536", optarg);
            break;
        case O_BTO:
            if (parse_list(optarg, w.bto, &w.n_bto, 0, 1000000) < 0)
                return bad("--batch-timeout-us '%s': a comma-separated list of 0..1000000", optarg);
            break;
        case O_WIN:
            if (parse_list(optarg, w.win, &w.n_win, 1, 1 << 20) < 0)
                return bad("--window '%s': a comma-separated list of window sizes", optarg);
            break;
        case O_CDIR:
            w.cluster_dir = optarg;
            break;
        case O_OUT:
            w.out = optarg;
            break;
        case O_BOUND:
            if (parse_u64(optarg, 1, UINT64_C(1) << 36, &w.p99_bound) < 0)
                return bad("--p99-bound-us '%s': microseconds, >= 1", optarg);
            break;
        case O_REPL:
            if (parse_u64(optarg, 3, 7, &u) < 0 || u % 2 == 0)
                return bad("--replicas '%s': 3, 5 or 7", optarg);
            w.replicas = (unsigned)u;
            break;
        case O_DURA:
            if (strcmp(optarg, "wal") && strcmp(optarg, "memory"))
                return bad("--durability '%s': wal or memory", optarg);
            w.durability = optarg;
            break;
        case O_CPUS:
            w.server_cpus = optarg;
            break;
        case O_SCRIPT:
            w.script = optarg;
            break;
        case O_CORK:
            if (strcmp(optarg, "yes") && strcmp(optarg, "no"))
                return bad("--native-cork '%s': yes or no", optarg);
            o.native_no_cork = !strcmp(optarg, "no");
            break;
        case O_HELP:
            usage(stdout);
            return EX_OK;
        default:
            return bad("%s", "unknown option");
        }
    }
    if (optind < argc)
        return bad("unexpected argument '%s'", argv[optind]);
    if (o.threads > o.connections)
        o.threads = o.connections; /* a thread without connections would idle */
    if (o.proto == BP_NATIVE && o.pipeline > 64)
        return bad("--pipeline %s: the native client keeps at most 64 requests in flight per connection", "> 64");
    if (o.wait_replicas && o.proto != BP_RESP)
        return bad("%s", "--wait-replicas is for --proto resp (Redis primary + replicas)");
    if (o.key_size < bench_key_min_size(o.keys)) {
        fprintf(stderr, "rabia-bench: --key-size %u is too short for %" PRIu64 " keys: at least %zu bytes\n",
                o.key_size, o.keys, bench_key_min_size(o.keys));
        return EX_USAGE;
    }
    if (is_sweep) {
        if (!w.n_bmr || !w.n_bto || !w.cluster_dir || !w.out)
            return bad("%s", "sweep needs --batch-max-reqs, --batch-timeout-us, --cluster-dir and --out");
        if (o.proto == BP_ETCD)
            return bad("%s", "sweep restarts a rabia cluster: use --proto resp or native");
        if (addr && split_addrs(&o, addr) < 0)
            return bad("--addr '%s': HOST:PORT[,HOST:PORT...], each port 1..65535", addr);
        return sweep(&o, &w, addr != NULL);
    }
    if (w.n_bmr || w.n_bto || w.n_win || w.cluster_dir || w.out)
        return bad("%s", "the batch/window/cluster options belong to rabia-bench sweep");
    if (!addr)
        addr = o.proto == BP_RESP ? "127.0.0.1:6379" : o.proto == BP_NATIVE ? "127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403"
                                                                          : "127.0.0.1:2379";
    if (split_addrs(&o, addr) < 0)
        return bad("--addr '%s': HOST:PORT[,HOST:PORT...], each port 1..65535", addr);
    if (csv_path && csv_header_check(csv_path, NULL) < 0)
        return EX_FAIL; /* before the run, not after it measured */
    struct bench_result *r = malloc(sizeof *r);
    if (!r)
        return EX_FAIL;
    int rc = bench_run(&o, r);
    if (rc < 0) {
        free(r);
        return EX_FAIL;
    }
    print_result(&o, r);
    int ex = r->requests == 0 ? EX_FAIL : r->errors ? EX_ERRORS : EX_OK;
    if (r->requests == 0)
        fprintf(stderr, "rabia-bench: no request completed in the measured interval\n");
    if (csv_path && csv_append(csv_path, NULL, NULL, &o, r) < 0)
        ex = EX_FAIL;
    if (json_path && json_write(json_path, &o, r) < 0)
        ex = EX_FAIL;
    free(r);
    return ex;
}
