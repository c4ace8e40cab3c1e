/* tl_err.h - one-line, typed errors carried out of every fallible call.
 * Convention: a fallible function returns 0 on success and -1 on failure, after filling
 * err->msg with ONE line: "<file>: <where>: <what>", e.g.
 *   graph.json: node[7].perm: expected array of naturals, got "x"
 * and err->kind with the category. Every tool maps the category to its exit status the same way
 * (tl_err_exit_status): bad input and unsupported -> 2, I/O and internal failures -> 1,
 * out of memory -> 3. */
#ifndef TL_ERR_H
#define TL_ERR_H
#include <stddef.h>

typedef enum tl_err_kind {
    TL_ERR_BAD_INPUT = 0, /* malformed or inconsistent file / argument (the default) */
    TL_ERR_UNSUPPORTED,   /* well-formed, but tlrt does not do it (op, layout, batch, dtype) */
    TL_ERR_OOM,           /* an allocation failed or a plan needs more memory than allowed */
    TL_ERR_IO,            /* reading or writing a file failed for reasons outside the input */
    TL_ERR_INTERNAL,      /* a broken invariant: a bug in tlrt */
    TL_ERR_KIND_COUNT
} tl_err_kind;

#define TL_ERR_MAX 1024
typedef struct tl_err {
    char msg[TL_ERR_MAX]; /* first, so `tl_err e = { 0 };` zero-initializes */
    tl_err_kind kind;
} tl_err;

/* printf into err->msg (err may be NULL) with kind TL_ERR_BAD_INPUT; always returns -1 so
 * callers can `return tl_errf(...)`. */
int tl_errf(tl_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with an explicit category. */
int tl_errk(tl_err *err, tl_err_kind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* tl_errk with a va_list (for wrappers that add a prefix with tl_err_prefix). */
#include <stdarg.h>
int tl_verrk(tl_err *err, tl_err_kind kind, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
/* tl_errk(err, TL_ERR_OOM, ...). */
int tl_erroom(tl_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Set the category of an error already written; returns -1. */
int tl_err_as(tl_err *err, tl_err_kind kind);
/* Prefix an existing message: "<prefix>: <old msg>" (the kind is kept). Returns -1. */
int tl_err_prefix(tl_err *err, const char *prefix);
/* Exit status of a tool for this error: 2 bad input / unsupported, 3 out of memory, 1 else. */
int tl_err_exit_status(const tl_err *err);
/* "bad input", "unsupported", "out of memory", "I/O error", "internal error". */
const char *tl_err_kind_name(tl_err_kind kind);

#endif
