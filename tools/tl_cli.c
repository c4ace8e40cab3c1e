/* tl_cli.c - the tools' command-line parser, usage line and --help text (see tl_cli.h). */
#include "tl_cli.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define HELP_WIDTH 100 /* --help wraps descriptions to this many columns */
#define MAX_POS 16     /* more positionals than any tool declares: the extra one is reported */
#define MAX_OPTS 64    /* options per table (tl_cli_parse refuses a longer table) */

static void prefix(const tl_cli *cli, FILE *f) {
    fprintf(f, "%s: ", cli->tool);
    if (cli->command) fprintf(f, "%s: ", cli->command);
}

static void verror(const tl_cli *cli, const char *fmt, va_list ap) {
    prefix(cli, stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int tl_cli_usage_error(const tl_cli *cli, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    verror(cli, fmt, ap);
    va_end(ap);
    return 2;
}

int tl_cli_fail(const tl_err *err) {
    fprintf(stderr, "%s\n", err->msg);
    return tl_err_exit_status(err);
}

bool tl_cli_is_npy(const char *path) {
    size_t n = strlen(path);
    if (n >= 4 && strcmp(path + n - 4, ".npy") == 0) return true;
    unsigned char magic[6] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    return got == sizeof magic && memcmp(magic, "\x93NUMPY", 6) == 0;
}

/* ------------------------------------------------------------------ usage and help */
/* How an option is written in the usage line: its alias when it has one. */
static const char *shown(const tl_cli_opt *o) { return o->alias ? o->alias : o->name; }

static const char *meta(const tl_cli_opt *o) {
    if (o->kind == TL_CLI_CHOICE) return o->choices;
    return o->meta ? o->meta : "VALUE";
}

static void opt_usage(const tl_cli_opt *o, FILE *f) {
    fputs(shown(o), f);
    if (o->kind != TL_CLI_FLAG) fprintf(f, " %s", meta(o));
    if (o->meta2) fprintf(f, " %s", o->meta2);
}

void tl_cli_usage(const tl_cli *cli, FILE *f) {
    fprintf(f, "usage: %s", cli->tool);
    if (cli->command) fprintf(f, " %s", cli->command);
    for (const tl_cli_pos *p = cli->pos; p && p->name; p++)
        fprintf(f, (p->flags & TL_CLI_OPTIONAL) ? " [%s]" : " %s", p->name);
    for (const tl_cli_opt *o = cli->opts; o && o->name; o++) {
        fputs(o->required ? " " : " [", f);
        opt_usage(o, f);
        if (!o->required) fputc(']', f);
    }
    fputc('\n', f);
}

/* Words of `text` from column `col` on, wrapped at HELP_WIDTH; '\x1f' is a space that does not
 * break (the range notes stay on one line). */
static void wrap(FILE *f, int col, const char *text) {
    int x = col;
    for (const char *w = text; *w;) {
        while (*w == ' ') w++;
        size_t len = strcspn(w, " ");
        if (!len) break;
        if (x > col && x + 1 + (int)len > HELP_WIDTH) {
            fprintf(f, "\n%*s", col, "");
            x = col;
        }
        if (x > col) {
            fputc(' ', f);
            x++;
        }
        for (size_t i = 0; i < len; i++) fputc(w[i] == '\x1f' ? ' ' : w[i], f);
        x += (int)len;
        w += len;
    }
    fputc('\n', f);
}

/* "  left   text ...": a left column too wide for `col` gets a line of its own. */
static void help_item(FILE *f, const char *left, int col, const char *text, const char *extra) {
    int used = fprintf(f, "  %s", left);
    if (used + 2 > col) {
        fputc('\n', f);
        used = 0;
    }
    fprintf(f, "%*s", col - used, "");
    char buf[1024];
    int k = snprintf(buf, sizeof buf, "%s", text ? text : "");
    for (const char *e = extra; e && *e && k >= 0 && (size_t)k + 1 < sizeof buf; e++)
        buf[k++] = (*e == ' ' && e != extra) ? '\x1f' : *e;
    if (k >= 0 && (size_t)k < sizeof buf) buf[k] = 0;
    wrap(f, col, buf);
}

static void opt_left(const tl_cli_opt *o, char *buf, size_t n) {
    int k = o->alias ? snprintf(buf, n, "%s, %s", o->alias, o->name) : snprintf(buf, n, "%s", o->name);
    if (k < 0 || (size_t)k >= n) return;
    if (o->kind != TL_CLI_FLAG) k += snprintf(buf + k, n - (size_t)k, " %s", meta(o));
    if (o->meta2 && k >= 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, " %s", o->meta2);
}

/* What the parser will check, said in the help so the two cannot disagree. */
static void opt_extra(const tl_cli_opt *o, char *buf, size_t n) {
    buf[0] = 0;
    if (o->kind == TL_CLI_INT && o->max) snprintf(buf, n, " (an integer in [%lld, %lld])", o->min, o->max);
    else if (o->kind == TL_CLI_INT) snprintf(buf, n, " (an integer >= %lld)", o->min);
    else if (o->kind == TL_CLI_REAL) snprintf(buf, n, " (a number >= %lld)", o->min);
    if (o->required) snprintf(buf + strlen(buf), n - strlen(buf), " (required)");
}

void tl_cli_help(const tl_cli *cli, FILE *f) {
    tl_cli_usage(cli, f);
    if (cli->about) {
        fputc('\n', f);
        wrap(f, 0, cli->about);
    }
    int col = 0;
    char left[256], extra[96];
    for (const tl_cli_pos *p = cli->pos; p && p->name; p++)
        if ((int)strlen(p->name) + 4 > col) col = (int)strlen(p->name) + 4;
    for (const tl_cli_opt *o = cli->opts; o && o->name; o++) {
        opt_left(o, left, sizeof left);
        if ((int)strlen(left) + 4 > col) col = (int)strlen(left) + 4;
    }
    if (col > 30) col = 30;
    if (cli->pos && cli->pos->name) {
        fprintf(f, "\narguments:\n");
        for (const tl_cli_pos *p = cli->pos; p->name; p++)
            help_item(f, p->name, col, p->help, (p->flags & TL_CLI_OPTIONAL) ? " (optional)" : NULL);
    }
    fprintf(f, "\noptions:\n");
    for (const tl_cli_opt *o = cli->opts; o && o->name; o++) {
        opt_left(o, left, sizeof left);
        opt_extra(o, extra, sizeof extra);
        help_item(f, left, col, o->help, extra);
    }
    help_item(f, "-h, --help", col, "print this help and exit", NULL);
    if (cli->notes) {
        fputc('\n', f);
        wrap(f, 0, cli->notes);
    }
}

/* ------------------------------------------------------------------ values */
/* Each returns 0, or -1 with the message (without the tool prefix) in msg. */
static int parse_int(const tl_cli_opt *o, const char *spell, const char *v, char *msg, size_t n) {
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    long long max = o->max ? o->max : 0;
    /* strtoll would also skip leading blanks and take a '+': the argument must be the number */
    bool plain = (*v >= '0' && *v <= '9') || (*v == '-' && v[1] >= '0' && v[1] <= '9');
    if (!plain || *end || errno || x < o->min || (max && x > max)) {
        if (max) snprintf(msg, n, "%s: expected an integer in [%lld, %lld], got '%s'", spell, o->min, max, v);
        else snprintf(msg, n, "%s: expected an integer >= %lld, got '%s'", spell, o->min, v);
        return -1;
    }
    *(long long *)o->dest = x;
    return 0;
}

static int parse_real(const tl_cli_opt *o, const char *spell, const char *v, char *msg, size_t n) {
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || isspace((unsigned char)*v) || *end || errno || !isfinite(x) || x < (double)o->min) {
        snprintf(msg, n, "%s: expected a number >= %lld, got '%s'", spell, o->min, v);
        return -1;
    }
    *(double *)o->dest = x;
    return 0;
}

static int parse_choice(const tl_cli_opt *o, const char *spell, const char *v, char *msg, size_t n) {
    int idx = 0, count = 1;
    for (const char *c = o->choices; *c; c++) count += *c == '|';
    for (const char *c = o->choices;; idx++) {
        size_t len = strcspn(c, "|");
        if (strlen(v) == len && strncmp(c, v, len) == 0) {
            *(int *)o->dest = idx;
            return 0;
        }
        if (!c[len]) break;
        c += len + 1;
    }
    /* "expected a, b or c, got 'x'" */
    int k = snprintf(msg, n, "%s: expected ", spell);
    idx = 0;
    for (const char *c = o->choices; k >= 0 && (size_t)k < n; idx++) {
        size_t len = strcspn(c, "|");
        const char *sep = idx == 0 ? "" : idx == count - 1 ? " or " : ", ";
        k += snprintf(msg + k, n - (size_t)k, "%s%.*s", sep, (int)len, c);
        if (!c[len]) break;
        c += len + 1;
    }
    if (k >= 0 && (size_t)k < n) snprintf(msg + k, n - (size_t)k, ", got '%s'", v);
    return -1;
}

static int parse_shape(const tl_cli_opt *o, const char *spell, const char *v, char *msg, size_t n) {
    tl_shape s = {0};
    const char *c = v;
    while (*c) {
        char *end = NULL;
        errno = 0;
        long long d = (*c >= '0' && *c <= '9') ? strtoll(c, &end, 10) : -1;
        if (d < 0 || errno || s.rank == TL_MAX_RANK || (*end && *end != ',') || (*end == ',' && !end[1])) goto bad;
        s.dim[s.rank++] = d;
        c = *end ? end + 1 : end;
    }
    if (s.rank == 0) goto bad;
    int64_t numel;
    if (tl_shape_numel_checked(&s, &numel)) {
        snprintf(msg, n, "%s: shape %s has too many elements (max 2^40)", spell, TL_SHAPE_STR(&s));
        return -1;
    }
    *(tl_shape *)o->dest = s;
    return 0;
bad:
    snprintf(msg, n, "%s: expected 1 to %d comma-separated naturals (e.g. 1,3,32,32), got '%s'", spell, TL_MAX_RANK,
             v);
    return -1;
}

static int parse_value(const tl_cli_opt *o, const char *spell, const char *v, char *msg, size_t n) {
    switch (o->kind) {
    case TL_CLI_FLAG: return 0;
    case TL_CLI_INT: return parse_int(o, spell, v, msg, n);
    case TL_CLI_REAL: return parse_real(o, spell, v, msg, n);
    case TL_CLI_CHOICE: return parse_choice(o, spell, v, msg, n);
    case TL_CLI_SHAPE: return parse_shape(o, spell, v, msg, n);
    case TL_CLI_PATH:
        if (!*v) {
            snprintf(msg, n, "%s: expected a file name, got ''", spell);
            return -1;
        }
        /* fall through */
    case TL_CLI_STR: *(const char **)o->dest = v; return 0;
    }
    return 0;
}

/* ------------------------------------------------------------------ parse */
static const tl_cli_opt *find(const tl_cli *cli, const char *a) {
    for (const tl_cli_opt *o = cli->opts; o && o->name; o++)
        if (strcmp(o->name, a) == 0 || (o->alias && strcmp(o->alias, a) == 0)) return o;
    return NULL;
}

/* Does positional `a` go into optional slot `p` when the count alone does not decide? */
static bool fits(const tl_cli_pos *p, const char *a) {
    if (p->flags & TL_CLI_PARAMS) return !tl_cli_is_npy(a);
    if (p->flags & TL_CLI_NPY) return tl_cli_is_npy(a);
    return true;
}

int tl_cli_parse(const tl_cli *cli, int n, char **args) {
    /* Errors are collected, not returned at once, so that --help anywhere still wins. */
    char msg[TL_ERR_MAX] = "";
    const char *posv[MAX_POS];
    int npos = 0;
    bool help = false, dashdash = false;
    const tl_cli_opt *alone = NULL;
    bool given[MAX_OPTS] = {false};
    int n_opts = 0;
    while (cli->opts && cli->opts[n_opts].name) n_opts++;
    if (n_opts > MAX_OPTS) { /* a bug in the tool's table, not in its arguments */
        tl_cli_usage_error(cli, "internal error: more than %d options", MAX_OPTS);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        const char *a = args[i];
        if (!dashdash && strcmp(a, "--") == 0) {
            dashdash = true;
            continue;
        }
        if (dashdash || a[0] != '-' || !a[1]) {
            if (npos < MAX_POS) posv[npos++] = a;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help = true;
            continue;
        }
        const tl_cli_opt *o = find(cli, a);
        if (!o) {
            if (!*msg) snprintf(msg, sizeof msg, "unknown option '%s'", a);
            continue;
        }
        int nval = o->kind == TL_CLI_FLAG ? 0 : o->meta2 ? 2 : 1;
        if (i + nval >= n) {
            if (!*msg) {
                if (nval == 2) snprintf(msg, sizeof msg, "%s needs %s and %s", a, meta(o), o->meta2);
                else snprintf(msg, sizeof msg, "%s needs a value", a);
            }
            break;
        }
        char vmsg[TL_ERR_MAX];
        if (nval && parse_value(o, a, args[i + 1], vmsg, sizeof vmsg)) {
            if (!*msg) snprintf(msg, sizeof msg, "%s", vmsg);
        } else if (o->kind == TL_CLI_FLAG) {
            *(bool *)o->dest = true;
        }
        if (nval == 2) *o->dest2 = args[i + 2];
        given[o - cli->opts] = true;
        if (o->seen) *o->seen = true;
        if (o->alone) alone = o;
        i += nval;
    }
    if (help) {
        tl_cli_help(cli, stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (*msg) return tl_cli_usage_error(cli, "%s", msg);
    if (alone) {
        if (npos) return tl_cli_usage_error(cli, "%s takes no arguments, got '%s'", alone->name, posv[0]);
        return -1;
    }
    int n_decl = 0, n_req = 0;
    for (const tl_cli_pos *p = cli->pos; p && p->name; p++, n_decl++) n_req += !(p->flags & TL_CLI_OPTIONAL);
    if (npos < n_req) {
        tl_cli_usage(cli, stderr);
        return 2;
    }
    if (npos > n_decl) return tl_cli_usage_error(cli, "unexpected argument '%s'", posv[n_decl]);
    for (const tl_cli_opt *o = cli->opts; o && o->name; o++) {
        if (o->required && !given[o - cli->opts]) {
            prefix(cli, stderr);
            fputs("missing ", stderr);
            opt_usage(o, stderr);
            fputc('\n', stderr);
            return 2;
        }
    }
    /* Fill the slots left to right; an optional slot takes the next argument when the count says
     * it must (more arguments left over than optional slots after it) or, when the count leaves a
     * choice, when the argument fits it (tl_cli.h: the [params.bin] rule). */
    int spare = npos - n_req, opt_after = n_decl - n_req, j = 0;
    for (const tl_cli_pos *p = cli->pos; p && p->name; p++) {
        if (!(p->flags & TL_CLI_OPTIONAL)) {
            *p->dest = posv[j++];
            continue;
        }
        opt_after--;
        if (spare > 0 && (spare > opt_after || fits(p, posv[j]))) {
            *p->dest = posv[j++];
            spare--;
        }
    }
    return -1;
}
