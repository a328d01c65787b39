/* no_uring: runs NO_URING_EXEC with ARGS under a seccomp filter that
 * refuses io_uring_setup with EPERM, as a container's default seccomp
 * profile does (Docker's since 2023). start_refused.sh starts a new cluster
 * so: each replica gets as far as its event loop and stops there.
 *
 *   NO_URING_EXEC=/path/to/rabiad no_uring ARGS...
 *
 * The process that runs is the program itself (exec): /proc/PID/exe names
 * it, and the pid the caller recorded is its pid. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    (void)argc;
    const char *prog = getenv("NO_URING_EXEC");
    if (!prog || !*prog) {
        fprintf(stderr, "no_uring: set NO_URING_EXEC to the program to run\n");
        return 2;
    }
#if defined(__x86_64__)
    const unsigned arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
    const unsigned arch = AUDIT_ARCH_AARCH64;
#else
#error "no_uring: add this architecture's AUDIT_ARCH"
#endif
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), /* another ABI: leave it */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog_f = {.len = (unsigned short)(sizeof f / sizeof f[0]), .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog_f)) {
        fprintf(stderr, "no_uring: installing the seccomp filter: %s\n", strerror(errno));
        return 2;
    }
    argv[0] = (char *)prog;
    execv(prog, argv);
    fprintf(stderr, "no_uring: exec %s: %s\n", prog, strerror(errno));
    return 2;
}
