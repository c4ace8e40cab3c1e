// bench_models.cc - each captured model end to end through the public C API
// (tl_model_open once, tl_session_new per batch, tl_session_run timed).
//
// Model directories (each with graph.json and, optionally, params.bin; optionally b64/ with a capture
// at batch 64, used only where the runtime cannot re-batch the batch-1 graph) come from
//   --tl_models=DIR[,DIR...]   or the environment variable TL_BENCH_MODELS (same syntax, ':' also ok)
// scripts/bench.sh captures the zoo into bench/out/models/<name>/ and passes them here.
// Benchmarks: model/<name>/batch:<b>/threads:<t>; counters latency_ms, samples_per_s,
// arena_MiB, params_MiB.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <sys/stat.h>
#include <vector>

extern "C" {
#include "tl_runtime.h"
}

namespace {

struct ModelHandle {
    std::string dir, name;
    tl_model *m = nullptr;
    std::string error;
    // DIR/b<batch>/ holds a capture at that batch, used when the batch-1 graph cannot be
    // re-batched by the runtime (tl_session_new refuses it)
    std::vector<std::pair<int64_t, tl_model *>> recaptured;
    ~ModelHandle() {
        if (m) tl_model_free(m);
        for (auto &r : recaptured) tl_model_free(r.second);
    }
};

int open_dir(const std::string &d, tl_model **m, tl_err *err);

bool file_exists(const std::string &p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0;
}

std::vector<std::unique_ptr<ModelHandle>> &models() {
    static std::vector<std::unique_ptr<ModelHandle>> v;
    return v;
}

void run_model(benchmark::State &st, ModelHandle *h, int64_t batch, int threads) {
    if (!h->m) {
        st.SkipWithError(h->error.c_str());
        for (auto _ : st) {
        }
        return;
    }
    const tl_graph *g = tl_model_graph(h->m);
    tl_shape in = g->nodes[g->input_id].shape;
    if (in.rank >= 1) in.dim[0] = batch;
    tl_err err;
    tl_session *s = nullptr;
    tl_model *used = h->m;
    bool recaptured = false;
    if (tl_session_new(h->m, &in, 0, &s, &err)) {
        std::string first = err.msg;
        s = nullptr;
        for (auto &r : h->recaptured) {
            if (r.first == batch && tl_session_new(r.second, &in, 0, &s, &err) == 0) {
                used = r.second;
                recaptured = true;
                break;
            }
            s = nullptr;
        }
        if (!s) {
            st.SkipWithError(first.c_str());
            for (auto _ : st) {
            }
            return;
        }
    }
    int64_t n = tl_shape_numel(&in);
    std::vector<float> x(static_cast<size_t>(n));
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> d(-1.f, 1.f);
    for (auto &v : x) v = d(rng);
    tl_set_threads(threads);
    for (int i = 0; i < 3; i++) tl_session_run(s, x.data(), &err);  // warm-up
    bool failed = false;
    for (auto _ : st) {
        if (tl_session_run(s, x.data(), &err)) {
            failed = true;
            break;
        }
    }
    if (failed) {
        st.SkipWithError(err.msg);
    } else {
        using C = benchmark::Counter;
        st.counters["latency_ms"] = C(1e-3, C::kIsIterationInvariantRate | C::kInvert);
        st.counters["samples_per_s"] = C(double(batch), C::kIsIterationInvariantRate);
        st.counters["arena_MiB"] = double(tl_session_arena_bytes(s)) / (1024.0 * 1024.0);
        st.counters["params_MiB"] = double(tl_model_param_bytes(used)) / (1024.0 * 1024.0);
        st.counters["recaptured"] = recaptured ? 1 : 0;
        st.counters["threads"] = threads;
        st.counters["batch"] = double(batch);
    }
    tl_session_free(s);
    tl_set_threads(1);
}

std::vector<std::string> split_list(const std::string &s) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == ',' || c == ':') {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

int open_dir(const std::string &d, tl_model **m, tl_err *err) {
    std::string graph = d + "/graph.json", params = d + "/params.bin";
    return tl_model_open(graph.c_str(), file_exists(params) ? params.c_str() : nullptr, m, err);
}

}  // namespace

// Called from main() before benchmark::Initialize: registers model/<name>/... for each dir.
void tl_bench_register_models(const std::string &list_in) {
    std::string list = list_in;
    if (list.empty()) {
        const char *e = std::getenv("TL_BENCH_MODELS");
        if (e) list = e;
    }
    for (const std::string &dir : split_list(list)) {
        auto h = std::make_unique<ModelHandle>();
        h->dir = dir;
        std::string d = dir;
        while (d.size() > 1 && d.back() == '/') d.pop_back();
        size_t slash = d.find_last_of('/');
        h->name = slash == std::string::npos ? d : d.substr(slash + 1);
        tl_err err;
        if (open_dir(d, &h->m, &err)) {
            h->m = nullptr;
            h->error = err.msg;
            std::fprintf(stderr, "tlbench: %s\n", err.msg);
        }
        tl_model *alt = nullptr;
        if (file_exists(d + "/b64/graph.json") && open_dir(d + "/b64", &alt, &err) == 0)
            h->recaptured.push_back({64, alt});
        ModelHandle *raw = h.get();
        models().push_back(std::move(h));
        for (int64_t b : {int64_t(1), int64_t(64)}) {
            for (int t : {1, 2}) {
                std::string name = "model/" + raw->name + "/batch:" + std::to_string(b) +
                    "/threads:" + std::to_string(t);
                benchmark::RegisterBenchmark(name.c_str(), run_model, raw, b, t)->UseRealTime();
            }
        }
    }
}
