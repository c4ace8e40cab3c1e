/* tl_cli.h - the one command-line parser of the tlrt tools (tlrun, tlinfo, tlemit, tldiff).
 *
 * A tool declares one table of positional arguments and one table of options; from those two
 * tables come the parsing, the usage line and the --help text, so a tool's usage exists once (in
 * its tables) and cannot drift from what it accepts.
 *
 * What every tool therefore does the same way:
 *   -h, --help        anywhere: the help text (usage line, description, arguments, options) on
 *                     stdout, exit status 0.
 *   usage errors      one line "TOOL: what" (or "TOOL: COMMAND: what") on stderr, exit status 2:
 *                       unknown option '--x'          -o needs a value
 *                       --threads: expected an integer in [1, 1024], got 'x'
 *                       --atol: expected a number >= 0, got '-1'
 *                       --isa: expected scalar, avx2 or avx512, got 'sse'
 *                       unexpected argument 'extra'   missing -o model.py
 *                     too few positional arguments (e.g. none at all): the usage line alone.
 *   option values     the next argument, taken as it is (so "-o -" names stdout where a tool
 *                     allows it); "--" ends the options (later arguments are positional).
 *   numbers           integers: strtoll, base 10, the whole argument, within [min, max];
 *                     reals: strtod, the whole argument, finite, >= min. Nothing else reads
 *                     numbers from the command line.
 *   [params.bin]      the positional arguments are graph.json, then the optional params.bin, then
 *                     the tool's own (input.npy). params.bin may be left out when the graph
 *                     carries its weights inline (TorchLean's own files). Which arguments were
 *                     given is decided by their count when the count decides (tlrun: 2 or 3,
 *                     tlinfo and tlemit pytorch: 1 or 2, tldiff: 1 or 3); when it does not
 *                     (tldiff graph.json X), X is the input if its name ends in ".npy" or its
 *                     first bytes are the .npy magic ("\x93NUMPY"), and params.bin otherwise.
 *
 * Exit statuses after a parse: tl_err_exit_status (ir/tl_err.h) for every error a tool meets
 * later (2 bad input / unsupported, 3 out of memory, 1 I/O or internal); tl_cli_fail prints the
 * one line and returns it. */
#ifndef TL_CLI_H
#define TL_CLI_H
#include <stdbool.h>
#include <stdio.h>
#include "tl_err.h"
#include "tl_shape.h"

typedef enum tl_cli_kind {
    TL_CLI_FLAG,   /* no value: *(bool *)dest = true */
    TL_CLI_INT,    /* *(long long *)dest, within [min, max] (max 0: no upper bound) */
    TL_CLI_REAL,   /* *(double *)dest, finite and >= min */
    TL_CLI_STR,    /* *(const char **)dest, any text */
    TL_CLI_PATH,   /* *(const char **)dest, a file name: must not be empty */
    TL_CLI_CHOICE, /* *(int *)dest = index of the value in choices ("a|b|c") */
    TL_CLI_SHAPE,  /* *(tl_shape *)dest from "1,3,32,32": 1..TL_MAX_RANK naturals */
} tl_cli_kind;

typedef struct tl_cli_opt {
    const char *name;  /* "--threads"; NULL ends the table */
    const char *alias; /* "-o", or NULL; the usage line shows the alias when there is one */
    const char *meta;  /* the value's name in usage and help ("N"); CHOICE: from choices */
    tl_cli_kind kind;
    void *dest;
    const char *help;    /* one sentence for --help (wrapped there) */
    long long min, max;  /* INT: the range; REAL: min only */
    const char *choices; /* CHOICE: "scalar|avx2|avx512" */
    const char *meta2;   /* a second value (a path), e.g. --dump-node ID out.npy */
    const char **dest2;
    bool *seen;    /* set to true when the option is given (optional) */
    bool required; /* must be given: "TOOL: missing -o model.py" otherwise */
    bool alone;    /* a complete action on its own (tlinfo --ops): no positionals then */
} tl_cli_opt;

enum {
    TL_CLI_OPTIONAL = 1, /* may be left out */
    TL_CLI_PARAMS = 2,   /* the [params.bin] slot: taken unless the argument looks like .npy */
    TL_CLI_NPY = 4,      /* an input .npy slot: taken only by an argument that looks like .npy */
};

typedef struct tl_cli_pos {
    const char *name;  /* "graph.json"; NULL ends the table */
    const char **dest; /* left untouched (NULL-initialise it) when the argument is not given */
    int flags;         /* TL_CLI_OPTIONAL | TL_CLI_PARAMS | TL_CLI_NPY */
    const char *help;
} tl_cli_pos;

typedef struct tl_cli {
    const char *tool;       /* "tlemit" */
    const char *command;    /* "pytorch", or NULL for a tool without subcommands */
    const char *about;      /* one line: what the tool does (first line of --help after usage) */
    const tl_cli_pos *pos;  /* terminated by { NULL } */
    const tl_cli_opt *opts; /* terminated by { NULL } */
    const char *notes;      /* text printed at the end of --help (exit statuses, ...), or NULL */
} tl_cli;

/* Parse args[0..n) (the arguments after the program name, or after the subcommand). Returns -1
 * when the tool should go on, else the exit status to return now: 0 after --help (printed on
 * stdout), 2 after a usage error (printed on stderr). */
int tl_cli_parse(const tl_cli *cli, int n, char **args);
/* The usage line ("usage: tlrun graph.json [params.bin] input.npy [-o out.npy] ...\n"). */
void tl_cli_usage(const tl_cli *cli, FILE *f);
/* The whole --help text. */
void tl_cli_help(const tl_cli *cli, FILE *f);
/* A usage error the tables cannot express (e.g. "--mode needs --per-node"): prints
 * "TOOL: [COMMAND: ]what" on stderr and returns 2. */
int tl_cli_usage_error(const tl_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print err's one line on stderr; returns tl_err_exit_status(err). */
int tl_cli_fail(const tl_err *err);
/* Does this argument name an .npy file: name ending in ".npy", or first bytes "\x93NUMPY". */
bool tl_cli_is_npy(const char *path);

#endif
