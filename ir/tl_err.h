/* tl_err.h - one-line error messages carried out of every fallible call.
 * Convention: a fallible function returns 0 on success and -1 on failure, after
 * filling err->msg with ONE line: "<file>: <where>: <what>", e.g.
 *   graph.json: node[7].perm: expected array of naturals, got "x"
 * Tools print err->msg and exit with status 2 for bad input. */
#ifndef TL_ERR_H
#define TL_ERR_H
#include <stddef.h>

#define TL_ERR_MAX 1024
typedef struct tl_err {
    char msg[TL_ERR_MAX];
} tl_err;

/* printf into err->msg (may be NULL); always returns -1 so callers can `return tl_errf(...)`. */
int tl_errf(tl_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix an existing message: "<prefix>: <old msg>". Returns -1. */
int tl_err_prefix(tl_err *err, const char *prefix);

#endif
