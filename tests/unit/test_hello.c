/* The HELLO rules of peer links (replica/hello.c): which first frame a
 * replica takes on its peer port, what taking one replaces (core.h rule 3:
 * nothing of an older life after its successor was heard), older lives
 * refused until restart, the reasons' texts, and the planted bug the
 * simulator must catch (sim.bug.keep_old_link). */
#include <string.h>

#include "check.h"
#include "hello.h"

#define CID 0x1234abcdull
#define WALL 1780000000000000ull /* some wall clock, in us */

static struct rabia_msg hello_from(uint8_t from, uint64_t inc)
{
    return (struct rabia_msg){.type = RABIA_MSG_HELLO, .from = from, .u64 = CID, .u64b = inc,
                              .value = RABIA_PROTOCOL_VERSION};
}

static void test_check(void)
{
    struct hello_rules h;
    hello_init(&h, CID, 3, 0);
    struct rabia_msg m = hello_from(1, WALL - 5);
    CHECK_EQ(hello_check(&h, &m, WALL), HELLO_OK);
    m.type = RABIA_MSG_PROPOSAL;
    CHECK_EQ(hello_check(&h, &m, WALL), HELLO_NOT_HELLO);
    m = hello_from(1, WALL);
    m.u64 = CID + 1;
    CHECK_EQ(hello_check(&h, &m, WALL), HELLO_OTHER_CLUSTER);
    m = hello_from(1, WALL);
    m.value = RABIA_PROTOCOL_VERSION + 1;
    CHECK_EQ(hello_check(&h, &m, WALL), HELLO_OTHER_VERSION);
    m = hello_from(0, WALL); /* its own id */
    CHECK_EQ(hello_check(&h, &m, WALL), HELLO_BAD_ID);
    m = hello_from(3, WALL); /* n = 3: ids 0..2 */
    CHECK_EQ(hello_check(&h, &m, WALL), HELLO_BAD_ID);
    m = hello_from(2, WALL + HELLO_AHEAD_US); /* a day ahead: still taken */
    CHECK_EQ(hello_check(&h, &m, WALL), HELLO_OK);
    m = hello_from(2, WALL + HELLO_AHEAD_US + 1);
    CHECK_EQ(hello_check(&h, &m, WALL), HELLO_AHEAD);
    m = hello_from(2, UINT64_MAX);
    CHECK_EQ(hello_check(&h, &m, WALL), HELLO_AHEAD);
    /* every verdict has its reason, naming what was seen */
    char why[400];
    m = hello_from(1, WALL);
    m.u64 = 0x77;
    hello_refusal(&h, HELLO_OTHER_CLUSTER, &m, WALL, why, sizeof why);
    CHECK(strstr(why, "0000000000000077 is not ours (000000001234abcd): check its members list; a machine that "
                      "replaces a member needs the running cluster's id as cluster-id") != NULL);
    m = hello_from(2, WALL + 3 * HELLO_AHEAD_US);
    hello_refusal(&h, HELLO_AHEAD, &m, WALL, why, sizeof why);
    CHECK(strstr(why, "replica 3 announces incarnation") != NULL && strstr(why, ", 259200 s ahead") != NULL);
    m = hello_from(1, WALL);
    m.type = RABIA_MSG_VOTE;
    hello_refusal(&h, HELLO_NOT_HELLO, &m, WALL, why, sizeof why);
    CHECK(strcmp(why, "first frame is VOTE, not HELLO") == 0);
}

static void test_take(void)
{
    struct hello_rules h;
    hello_init(&h, CID, 5, 2);
    CHECK_EQ(hello_conn(&h, 1), HELLO_NO_CONN);
    /* first connection of replica 1's life 100 */
    struct hello_taken t = hello_take(&h, 1, 100, 7);
    CHECK(!t.refused && t.drop == HELLO_NO_CONN && !t.restarted);
    CHECK_EQ(hello_conn(&h, 1), 7);
    /* the same life reconnects while the old connection is still open
     * (its close not seen yet): the old one goes, with its unread bytes */
    t = hello_take(&h, 1, 100, 9);
    CHECK(!t.refused && t.drop == 7 && !t.restarted);
    CHECK(!hello_closed(&h, 1, 7)); /* the old one closing later changes nothing */
    CHECK_EQ(hello_conn(&h, 1), 9);
    /* a new life: replaces, and says it restarted */
    t = hello_take(&h, 1, 101, 4);
    CHECK(!t.refused && t.drop == 9 && t.restarted);
    /* an older life is refused from now on, by the check and by the take
     * (a handshake that began before the newer HELLO came) */
    struct rabia_msg m = hello_from(1, 100);
    CHECK_EQ(hello_check(&h, &m, WALL), HELLO_OLDER);
    char why[400];
    hello_refusal(&h, HELLO_OLDER, &m, WALL, why, sizeof why);
    CHECK(strncmp(why, "replica 2 incarnation 100 is older than 101, ", 45) == 0);
    /* the causes and their fixes, whole (replica.c's buffer is 400 bytes) */
    CHECK(strstr(why, "two processes running as replica 2") && strstr(why, "start it with --rejoin)"));
    t = hello_take(&h, 1, 100, 5);
    CHECK(t.refused && t.drop == HELLO_NO_CONN);
    CHECK_EQ(hello_conn(&h, 1), 4);
    /* closing: only the connection in use counts; the incarnation stays */
    CHECK(!hello_closed(&h, 1, 5));
    CHECK(hello_closed(&h, 1, 4));
    CHECK_EQ(hello_conn(&h, 1), HELLO_NO_CONN);
    CHECK_EQ(hello_check(&h, &m, WALL), HELLO_OLDER);
    t = hello_take(&h, 1, 101, 8); /* the same life after a close: nothing to drop, no restart */
    CHECK(!t.refused && t.drop == HELLO_NO_CONN && !t.restarted);
    /* peers are independent */
    t = hello_take(&h, 4, 50, 11);
    CHECK(!t.refused && t.drop == HELLO_NO_CONN);
    CHECK_EQ(hello_conn(&h, 1), 8);
    CHECK_EQ(hello_conn(&h, 4), 11);
}

/* The planted bug: a new life's connection leaves the old one delivering.
 * The simulator must catch it (sim.bug.keep_old_link). */
static void test_bug_keep_old(void)
{
    struct hello_rules h;
    hello_init(&h, CID, 3, 0);
    h.bugs = HELLO_BUG_KEEP_OLD;
    (void)hello_take(&h, 1, 10, 1);
    struct hello_taken t = hello_take(&h, 1, 11, 2);
    CHECK(!t.refused && t.drop == HELLO_NO_CONN && t.restarted);
}

/* A replica that lost its data dir and starts again without --rejoin is a
 * first start that votes at once (RABIA_MSG_FIRST_START): taken for the
 * first life ever heard from it and that life's reconnects, refused for a
 * later one. The driver asks before it takes a new life (replica.c
 * peer_first_start), so a refused life is never taken: the running life
 * keeps its connection, and an older one (its data dir put back) is not
 * refused as older afterwards. */
static void test_first_start(void)
{
    struct hello_rules h;
    hello_init(&h, CID, 3, 0);
    /* a new cluster: replica 2's first start, never heard before */
    CHECK(hello_first_start_ok(&h, 1, WALL));
    CHECK(!hello_take(&h, 1, WALL, 5).refused);
    CHECK(hello_heard(&h, 1, WALL, WALL)); /* noted: the driver keeps it on disk */
    CHECK_EQ(h.peer[1].first_heard, WALL);
    CHECK(hello_first_start_ok(&h, 1, WALL));
    /* the same life reconnecting says FIRST_START again: taken */
    CHECK(!hello_take(&h, 1, WALL, 6).refused);
    CHECK(!hello_heard(&h, 1, WALL, WALL)); /* nothing new to keep */
    CHECK(hello_first_start_ok(&h, 1, WALL));
    /* restarts of it (no FIRST_START) change nothing kept */
    CHECK(!hello_take(&h, 1, WALL + 1, 7).refused);
    CHECK(!hello_heard(&h, 1, WALL + 1, WALL + 1));
    CHECK_EQ(h.peer[1].first_heard, WALL);
    /* its data dir lost: a first start again, later by the wall clock; its
     * HELLO passes (newer), its FIRST_START is refused before any take */
    uint64_t reborn = WALL + 600000000ull;
    struct rabia_msg m = hello_from(1, reborn);
    CHECK_EQ(hello_check(&h, &m, reborn), HELLO_OK);
    CHECK(!hello_first_start_ok(&h, 1, reborn));
    char why[700];
    hello_first_start_refusal(&h, 1, reborn, reborn, why, sizeof why);
    CHECK(strstr(why, "replica 2 starts as new (incarnation 1780000600000000: an empty data dir, no --rejoin), but "
                      "this replica heard it before (first as incarnation 1780000000000000): its data dir was lost") &&
          strstr(why, "empty its data dir (what it wrote there since counts for nothing: a restart on it is refused too) and start it again with --rejoin and cluster-id 0x000000001234abcd (it then recovers from its peers)"));
    /* the refused life restarted on what it wrote (data-dir/first-start says
     * its first start): still refused (before, a restart was taken) */
    CHECK(!hello_first_start_ok(&h, 1, reborn));
    hello_first_start_refusal(&h, 1, reborn, reborn + 2, why, sizeof why);
    CHECK(strstr(why, "(incarnation 1780000600000000: an empty data dir, no --rejoin; restarted on it since: "
                      "incarnation 1780000600000002)"));
    /* untaken: the running life's connection and incarnation stay, and
     * that life (or its data dir put back, incarnation + 1) is not older */
    CHECK_EQ(hello_conn(&h, 1), 7);
    m = hello_from(1, WALL + 2);
    CHECK_EQ(hello_check(&h, &m, reborn), HELLO_OK);
    CHECK(!hello_take(&h, 1, WALL + 2, 9).refused);
    /* a peer never heard (first_heard 0, the file lost) takes any first start */
    CHECK(hello_first_start_ok(&h, 2, reborn));
    CHECK(!hello_take(&h, 2, reborn, 10).refused);
    CHECK(hello_heard(&h, 2, reborn, reborn));
    CHECK(hello_first_start_ok(&h, 2, reborn));
    CHECK(!hello_first_start_ok(&h, 2, reborn + 1));
    /* first heard at a restart on a data dir that began at a first start
     * (FIRST_START says that start): the data dir's first start is noted,
     * and its later restarts are taken */
    hello_init(&h, CID, 3, 0);
    CHECK(!hello_take(&h, 1, WALL + 5, 11).refused);
    CHECK(hello_heard(&h, 1, WALL + 5, WALL));
    CHECK_EQ(h.peer[1].first_heard, WALL);
    CHECK(hello_first_start_ok(&h, 1, WALL));
    CHECK(!hello_first_start_ok(&h, 1, WALL + 5));
}

int main(void)
{
    RUN(test_check);
    RUN(test_take);
    RUN(test_bug_keep_old);
    RUN(test_first_start);
    return CHECK_DONE();
}
