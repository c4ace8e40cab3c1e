/* tl_check.h - the minimal assertion counter shared by the C unit tests. Each test's main ends
 * prints "N passed, M failed" from the counters and exits nonzero on failure. */
#ifndef TL_CHECK_H
#define TL_CHECK_H
#include <stdio.h>

static int passed, failed;
#define CHECK(c) \
    do { \
        if (c) passed++; \
        else { \
            failed++; \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
        } \
    } while (0)

#endif
