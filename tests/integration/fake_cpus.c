/* LD_PRELOAD shim for tls_io_auto.sh: sched_getaffinity reports CPUs 0..7,
 * so that io-threads = auto picks I/O threads (it picks none below 4 CPUs)
 * on a test machine with fewer. Run rabiad with io-threads-pin no: the
 * CPUs it reports need not exist. */
#define _GNU_SOURCE
#include <sched.h>
#include <sys/types.h>

int sched_getaffinity(pid_t pid, size_t size, cpu_set_t *set)
{
    (void)pid;
    CPU_ZERO_S(size, set);
    for (int c = 0; c < 8; c++) CPU_SET_S(c, size, set);
    return 0;
}
