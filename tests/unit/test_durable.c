/* replica/durable.c's snapshots on disk: a snapshot child that dies
 * before it finished (killed by the OOM killer, kill -9) leaves no
 * temporary file behind once the replica reaped it. The next start's load
 * removes leftovers too, but a replica runs for months and retries a failed
 * snapshot every second: one partial file of up to the whole state each.
 * Uses the data dir's disk: TMPDIR if set, else /var/tmp. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "counter.h"
#include "durable.h"
#include "rsm.h"
#include "snapfile.h"

static char root[512];

static void on_fatal(void *ctx, const char *why)
{
    (void)ctx;
    fprintf(stderr, "fatal: %s\n", why);
    CHECK(!"the log failed");
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_killed_child_leaves_no_temporary_file(void)
{
    char dir[600], snap[700], tmp[760], err[800] = "";
    snprintf(dir, sizeof dir, "%s/killed", root);
    CHECK_EQ(mkdir(dir, 0700), 0);
    const struct rabia_rsm_config rc = {.max_sessions = 16, .max_reply_bytes = 64};
    struct rabia_rsm *rsm = rabia_rsm_create(&rabia_sm_counter, &rc);
    CHECK(rsm != NULL);
    struct durable_cfg cfg = {.data_dir = dir, .cluster_id = 42, .self = 0, .incarnation = 1,
                              .segment_bytes = 1u << 20, .max_log_size = 1ull << 30, .window = 16,
                              .allow_buffered = true};
    struct durable_hooks hooks = {.fatal = on_fatal};
    static struct durable d;
    struct durable_restore out;
    int rc_open = durable_open(&d, &cfg, &hooks, rsm, &out, err, sizeof err);
    CHECK_EQ(rc_open, 0);
    if (rc_open) {
        fprintf(stderr, "durable_open: %s\n", err);
        rabia_rsm_destroy(rsm);
        return;
    }
    durable_restored(&d);
    CHECK_EQ(rabia_rsm_apply_batch(rsm, 1, NULL, NULL, 0, NULL, NULL), 0); /* a null slot: applied 1 */

    /* The child's temporary file is a FIFO nobody reads: its open blocks,
     * a child stopped in the middle of writing it, for as long as the test
     * wants. (A child killed while writing a regular file leaves the same
     * name behind, partly written.) */
    snprintf(snap, sizeof snap, "%s/snap", dir);
    CHECK_EQ(mkdir(snap, 0700), 0);
    snprintf(tmp, sizeof tmp, "%s/%020" PRIu64 ".snap.tmp", snap, (uint64_t)1);
    CHECK_EQ(mkfifo(tmp, 0600), 0);

    durable_snapshot_soon(&d);
    uint64_t now = 1000000;
    durable_tick(&d, rsm, now, 0, false, 0);
    CHECK(durable_snapshot_running(&d));
    pid_t child = d.snap_pid;
    CHECK(child > 0);
    sleep_ms(50); /* it is in the open (or on its way there) */
    if (child > 0) CHECK_EQ(kill(child, SIGKILL), 0);
    for (int i = 0; i < 500 && durable_snapshot_running(&d); i++) {
        sleep_ms(10);
        durable_tick(&d, rsm, now += 10000, 0, false, 0);
    }
    CHECK(!durable_snapshot_running(&d));
    CHECK_EQ(d.sched.failures, 1);
    /* the killed child's temporary file went with it */
    CHECK(access(tmp, F_OK) != 0);
    CHECK_EQ(rabia_snapfile_newest(snap), 0);

    durable_close(&d);
    rabia_rsm_destroy(rsm);
}

int main(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/rabia-test-durable.%d", t && *t ? t : "/var/tmp", (int)getpid());
    mkdir(root, 0700);
    RUN(test_killed_child_leaves_no_temporary_file);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd)) return 1;
    return CHECK_DONE();
}
