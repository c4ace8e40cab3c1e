// bench_main.cc - entry point of tlbench (Google Benchmark). The kernel and model benchmarks
// register themselves from bench_kernels.cc / bench_models.cc; this file adds the machine context
// (CPU model, active ISA, OpenBLAS build + core type) to the JSON "context" block.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

extern "C" {
#include "kernels/tl_kernels.h"
}

namespace {
std::string cpu_model() {
    FILE *f = std::fopen("/proc/cpuinfo", "r");
    if (!f) return "unknown";
    char line[512];
    std::string out = "unknown";
    while (std::fgets(line, sizeof line, f)) {
        if (std::strncmp(line, "model name", 10) == 0) {
            const char *c = std::strchr(line, ':');
            if (c) {
                out = c + 1;
                while (!out.empty() && (out.front() == ' ')) out.erase(out.begin());
                while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
            }
            break;
        }
    }
    std::fclose(f);
    return out;
}
}  // namespace

void tl_bench_register_models(const std::string &list);  // bench_models.cc

int main(int argc, char **argv) {
    // our own flag, removed before Google Benchmark sees the arguments
    std::string models;
    int w = 1;
    for (int i = 1; i < argc; i++) {
        if (std::strncmp(argv[i], "--tl_models=", 12) == 0) models = argv[i] + 12;
        else argv[w++] = argv[i];
    }
    argc = w;
    tl_bench_register_models(models);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::AddCustomContext("cpu_model", cpu_model());
    const tl_kernel_table *best = tl_kernels_for(tl_kernels_best_isa());
    benchmark::AddCustomContext("tl_best_isa", best && best->name ? best->name : "?");
    benchmark::AddCustomContext("tl_blas_info", tl_blas_info());
    const char *ct = std::getenv("OPENBLAS_CORETYPE");
    benchmark::AddCustomContext("OPENBLAS_CORETYPE", ct ? ct : "");
    const char *fct = std::getenv("TL_BLAS_CORETYPE");
    benchmark::AddCustomContext("TL_BLAS_CORETYPE", fct ? fct : "");
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
