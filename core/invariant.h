/* Invariant checks that stay on in release builds: a broken invariant means
 * the replica's memory can no longer be trusted, so it stops loudly rather
 * than replicate a wrong state. Never used for conditions a peer or a client
 * can cause: those are counted and refused. */
#ifndef RABIA_INVARIANT_H
#define RABIA_INVARIANT_H

_Noreturn void rabia_invariant_failed(const char *cond, const char *file, int line);

#define RABIA_ASSERT(cond)                                                   \
    do {                                                                     \
        if (__builtin_expect(!(cond), 0))                                    \
            rabia_invariant_failed(#cond, __FILE__, __LINE__);               \
    } while (0)
#endif
