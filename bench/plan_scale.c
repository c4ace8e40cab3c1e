/* plan_scale.c - how planning time grows with graph size (tlplanbench).
 *
 *   tlplanbench [--width W] [--budget S] [N ...]     (default N: 1000 10000 100000 1000000)
 *
 * For each N and each graph kind it builds, in memory, the graph JSON of N nodes
 *   chain:    input -> relu -> tanh -> relu -> ...            (every value dies at the next node)
 *   residual: the same, with node i = add(node i-1, node i-4) for every i % 4 == 0
 *             (a skip value lives across four nodes)
 * of shape [1, W], then times: tl_graph_parse_json (cJSON parse + field checks + validation),
 * tl_session_new (the whole plan), one tl_session_run, and the arena planner alone
 * (tl_memplan over the same lifetimes: every value from its node to its last reader, the output
 * to the end; then tl_memplan_check). Each N runs in a child process, so the peak RSS column
 * (getrusage) belongs to that N alone. A kind's next size is skipped when its tl_session_new CPU
 * time, extrapolated quadratically to that size, exceeds the budget (default 60 s): quadratic
 * planning is what this benchmark exists to catch, and it should not take an hour to say so.
 * Speed targets live here, never in tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "tl_import.h"
#include "tl_memplan.h"
#include "tl_runtime.h"
#include "tl_strbuf.h"

static double clock_s(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU seconds of this process (user + system): on a shared machine wall time also counts the
 * time other processes held the cores; CPU time is what the code itself cost */
static double cpu_s(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

enum { CHAIN, RESIDUAL, KINDS };
static const char *kind_name[KINDS] = {"chain", "residual"};

static bool is_add(int kind, int64_t i) { return kind == RESIDUAL && i >= 4 && i % 4 == 0; }

static char *graph_json(int kind, int64_t n, int64_t w, size_t *len) {
    tl_strbuf b = TL_STRBUF_INIT;
    tl_sb_printf(&b, "{\"format\":\"torchlean.ir.v1\",\"input_id\":0,\"output_ids\":[%lld],\"nodes\":[\n",
                 (long long)(n - 1));
    tl_sb_printf(&b, "{\"id\":0,\"kind\":\"input\",\"parents\":[],\"shape\":[1,%lld]}", (long long)w);
    for (int64_t i = 1; i < n; i++) {
        if (is_add(kind, i))
            tl_sb_printf(&b, ",\n{\"id\":%lld,\"kind\":\"add\",\"parents\":[%lld,%lld],\"shape\":[1,%lld]}",
                         (long long)i, (long long)(i - 1), (long long)(i - 4), (long long)w);
        else
            tl_sb_printf(&b, ",\n{\"id\":%lld,\"kind\":\"%s\",\"parents\":[%lld],\"shape\":[1,%lld]}", (long long)i,
                         i % 2 ? "relu" : "tanh", (long long)(i - 1), (long long)w);
    }
    tl_sb_printf(&b, "\n]}\n");
    return tl_sb_take(&b, len);
}

/* The planner alone over the graph's lifetimes (no in-place merging: an upper bound on work). */
static int plan_only(int kind, int64_t n, int64_t w, double *t_place, double *t_check, int64_t *arena) {
    tl_err err = {0};
    tl_memplan *p = tl_memplan_new();
    if (!p) return -1;
    for (int64_t i = 0; i < n; i++) {
        int64_t last = i == n - 1 ? TL_MEMPLAN_LIVE_END : i + 1;
        if (kind == RESIDUAL && i + 4 < n && is_add(kind, i + 4)) last = i + 4;
        if (tl_memplan_add(p, i, last, w * 4, &err) < 0) goto fail;
    }
    double t0 = now_s();
    if (tl_memplan_place(p, TL_MEMPLAN_NO_LIMIT, arena, &err)) goto fail;
    double t1 = now_s();
    if (tl_memplan_check(p, &err)) goto fail;
    *t_place = t1 - t0;
    *t_check = now_s() - t1;
    tl_memplan_free(p);
    return 0;
fail:
    fprintf(stderr, "tlplanbench: %s\n", err.msg);
    tl_memplan_free(p);
    return -1;
}

/* One row; runs in a child. Prints the row; exit status 0, or 2 with the error printed. */
static int row(int kind, int64_t n, int64_t next, int64_t w, double budget) {
    size_t len = 0;
    char *json = graph_json(kind, n, w, &len);
    if (!json) {
        fprintf(stderr, "tlplanbench: out of memory building the JSON\n");
        return 2;
    }
    tl_err err = {0};
    tl_graph *g = NULL;
    tl_model *m = NULL;
    tl_session *s = NULL;
    double t0 = now_s(), c0 = cpu_s();
    if (tl_graph_parse_json(json, len, "chain.json", &g, &err)) goto fail;
    double t_parse = now_s() - t0, c_parse = cpu_s() - c0;
    free(json);
    json = NULL;
    if (tl_model_from_graph(g, &m, &err)) goto fail;
    g = NULL;
    tl_shape in = {2, {1, w}};
    t0 = now_s();
    c0 = cpu_s();
    if (tl_session_new(m, &in, 0, &s, &err)) goto fail;
    double t_new = now_s() - t0, c_new = cpu_s() - c0;
    float *x = malloc(sizeof(float) * (size_t)w);
    if (!x) goto fail;
    for (int64_t i = 0; i < w; i++) x[i] = (float)(i % 7) * 0.25f - 0.5f;
    t0 = now_s();
    if (tl_session_run(s, x, &err)) goto fail;
    double t_run = now_s() - t0;
    free(x);
    int64_t arena = tl_session_arena_bytes(s);
    tl_session_free(s);
    tl_model_free(m);
    double t_place = 0, t_check = 0;
    int64_t arena2 = 0;
    if (plan_only(kind, n, w, &t_place, &t_check, &arena2)) return 2;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%-9s %8lld %8.3f %8.3f %8.3f %8.3f %8.4f %7lld %8.4f %8.4f %8lld %8.1f\n", kind_name[kind], (long long)n,
           t_parse, c_parse, t_new, c_new, t_run, (long long)arena, t_place, t_check, (long long)arena2,
           (double)ru.ru_maxrss / 1024.0);
    fflush(stdout);
    double grow = next > n ? (double)next / (double)n : 1.0;
    return c_new * grow * grow > budget ? 1 : 0; /* 1: tell the parent to skip the larger sizes */
fail:
    fprintf(stderr, "tlplanbench: %s n=%lld: %s\n", kind_name[kind], (long long)n, err.msg);
    free(json);
    tl_graph_free(g);
    tl_session_free(s);
    tl_model_free(m);
    return 2;
}

int main(int argc, char **argv) {
    int64_t w = 64;
    double budget = 60.0;
    int64_t sizes[32];
    int ns = 0;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--width") && a + 1 < argc) w = atoll(argv[++a]);
        else if (!strcmp(argv[a], "--budget") && a + 1 < argc) budget = atof(argv[++a]);
        else if (ns < 32 && atoll(argv[a]) >= 8) sizes[ns++] = atoll(argv[a]);
        else {
            fprintf(stderr, "usage: tlplanbench [--width W] [--budget SECONDS] [N >= 8 ...]\n");
            return 2;
        }
    }
    if (w <= 0) w = 64;
    if (!ns) {
        int64_t d[] = {1000, 10000, 100000, 1000000};
        memcpy(sizes, d, sizeof d);
        ns = 4;
    }
    printf(
        "graph [1, %lld] float32 per node; seconds (wall, and cpu = user+sys of the process); arena in bytes;\n"
        "parse = tl_graph_parse_json (parse + validate), new = tl_session_new, run = one tl_session_run,\n"
        "memplan/check = tl_memplan_place/tl_memplan_check alone on the same lifetimes (no in-place);\n"
        "rss = peak MiB of that size's process\n",
        (long long)w);
    printf("%-9s %8s %8s %8s %8s %8s %8s %7s %8s %8s %8s %8s\n", "kind", "nodes", "parse", "parse_cpu", "new",
           "new_cpu", "run", "arena", "memplan", "check", "arena_mp", "rss_MiB");
    int rc = 0;
    for (int kind = 0; kind < KINDS; kind++) {
        bool skip = false;
        for (int k = 0; k < ns; k++) {
            if (skip) {
                printf("%-9s %8lld   skipped (session_new extrapolated from the last size: over %.0f s)\n",
                       kind_name[kind], (long long)sizes[k], budget);
                continue;
            }
            fflush(stdout);
            pid_t pid = fork();
            if (pid < 0) {
                perror("fork");
                return 1;
            }
            if (pid == 0) _exit(row(kind, sizes[k], k + 1 < ns ? sizes[k + 1] : 0, w, budget));
            int st = 0;
            waitpid(pid, &st, 0);
            int code = WIFEXITED(st) ? WEXITSTATUS(st) : 2;
            if (code == 1) skip = true;
            if (code == 2) rc = 1;
        }
    }
    return rc;
}
