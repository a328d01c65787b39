/* Reporting of failed invariants (see invariant.h). */
#include "invariant.h"

#include <stdio.h>
#include <stdlib.h>

_Noreturn void rabia_invariant_failed(const char *cond, const char *file, int line)
{
    fprintf(stderr, "rabia: invariant failed at %s:%d: %s\n", file, line, cond);
    abort();
}
