/* What the fuzz targets share. Define FUZZ_NAME (the target's name, a
 * string literal) before including. */
#ifndef RABIA_TESTS_FUZZ_H
#define RABIA_TESTS_FUZZ_H
#include <stdio.h>
#include <stdlib.h>

/* A finding: say what, and abort (libFuzzer saves the input as crash-*). */
#define FAIL(...)                                                              \
    do {                                                                       \
        fprintf(stderr, FUZZ_NAME ": " __VA_ARGS__);                           \
        fputc('\n', stderr);                                                   \
        abort();                                                               \
    } while (0)
#endif
