/*
 * Always-on checks for the invariants that guard data (no oversell, journal
 * order, checksums). assert() covers the rest and vanishes with NDEBUG;
 * VERIFY never does: a broken invariant stops the process before it can
 * acknowledge anything built on it.
 */
#ifndef ALLOT_VERIFY_H
#define ALLOT_VERIFY_H

#include <stdio.h>
#include <stdlib.h>

#define VERIFY(cond)                                                          \
    do {                                                                      \
        if (__builtin_expect(!(cond), 0)) {                                   \
            fprintf(stderr, "allot: invariant failed at %s:%d: %s\n",         \
                    __FILE__, __LINE__, #cond);                               \
            abort();                                                          \
        }                                                                     \
    } while (0)

#endif
