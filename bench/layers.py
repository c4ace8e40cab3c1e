#!/usr/bin/env python3
"""Per-layer efficiency of tlrt: GFLOP/s of every linear / conv / matmul node against the FMA peak
(tlbench's peak/fma: t threads x the 1-thread figure) and the measured single-thread sgemm rate, and
where the time of each model goes (share per op kind, the slowest nodes).

Uses the C API through ctypes with TL_SESSION_PROFILE (tl_session_node_ns): each model is run
repeatedly; every node reports its MEDIAN time over the runs (comparable with Google Benchmark's
mean sgemm rate; the minimum is kept too as GFLOPS_best_run). Whole-model figures use the fastest run.
Flop counts (multiply-add = 2): linear 2*rows*in*out, conv 2*numel(out)*in_channels/groups*prod(kernel),
matmul 2*numel(out)*K.

  python bench/layers.py [--zoo real] [--models resnet18_64,...] [--batches 1,16] [--threads 1,2]
      [--quick] [--peak-from bench/results/tlbench.json] [--out bench/results/layers.json]
"""
import argparse
import collections
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

import tlrt_ctypes as tc  # noqa: E402
import zoo  # noqa: E402

GEMM_OPS = ("linear", "conv", "matmul")


def node_flops(node, out_shape, parent_shapes):
    k = node["kind"]
    numel = math.prod(out_shape) if out_shape else 1
    if k == "linear":
        return 2 * (numel // node["out_dim"]) * node["in_dim"] * node["out_dim"]
    if k == "conv":
        return 2 * numel * (node["in_channels"] // node.get("groups", 1)) * math.prod(node["kernel"])
    if k == "matmul" and parent_shapes and parent_shapes[0]:
        return 2 * numel * parent_shapes[0][-1]
    return 0


def sgemm_peak(path):
    """Best 1-thread tl_sgemm GFLOP/s in a tlbench JSON (square sizes), or None."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    best = None
    for b in doc.get("benchmarks", []):
        if b["name"].startswith("sgemm/") and "threads:1" in b["name"] and not b.get("error_occurred"):
            best = max(best or 0, b.get("GFLOPS", 0))
    return best


def fma_peak(path):
    """Best single-thread FMA peak GFLOP/s in a tlbench JSON (peak/fma_avx512, peak/fma_avx2), or None."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    vals = [b.get("GFLOPS", 0) for b in doc.get("benchmarks", [])
            if b["name"].startswith("peak/fma") and not b.get("error_occurred")]
    return max(vals) if vals else None


def profile_model(lib, mdir, batch, threads, min_runs, budget):
    g = json.loads((mdir / "graph.json").read_text())
    model = tc.Model(lib, mdir / "graph.json", str(mdir / "params.bin"))
    in_shape = (batch,) + tuple(g["nodes"][g["input_id"]]["shape"][1:])
    recaptured = False
    lib.set_threads(threads)  # before the session: it is planned for this thread count
    try:
        sess = tc.Session(model, in_shape, flags=tc.Session.PROFILE)
    except tc.TlrtError:
        alt = mdir / ("b%d" % batch)
        model.close()
        if not (alt / "graph.json").exists():  # not re-batchable: capture at this batch (same weights)
            spec = zoo.get(mdir.name)
            zoo.capture_batch(spec, zoo.load_module(spec, mdir), mdir, batch)
        g = json.loads((alt / "graph.json").read_text())
        model = tc.Model(lib, alt / "graph.json", str(alt / "params.bin"))
        sess = tc.Session(model, in_shape, flags=tc.Session.PROFILE)
        recaptured = True
    x = np.random.default_rng(0).standard_normal(in_shape).astype(np.float32)
    go = sess.bind(x)
    lib.set_threads(threads)
    for _ in range(2):
        go()
    n = len(g["nodes"])
    best = [None] * n
    samples = [[] for _ in range(n)]
    totals = []
    runs = 0
    t_end = time.perf_counter() + budget
    while runs < min_runs or time.perf_counter() < t_end:
        t0 = time.perf_counter_ns()
        go()
        totals.append(time.perf_counter_ns() - t0)
        for i in range(n):
            v = sess.node_ns(i)
            if v >= 0:
                samples[i].append(v)
                if best[i] is None or v < best[i]:
                    best[i] = v
        runs += 1
        if runs >= 2000:
            break
    shapes = [sess.node_shape(i) for i in range(n)]
    rows = []
    for i, node in enumerate(g["nodes"]):
        ps = [shapes[p] for p in node["parents"]]
        med = sorted(samples[i])[len(samples[i]) // 2] if samples[i] else 0
        row = {"id": i, "kind": node["kind"], "shape": list(shapes[i] or ()),
               "ns": med, "min_ns": best[i] or 0, "flops": node_flops(node, shapes[i], ps)}
        if node["kind"] == "conv":
            row["conv"] = "%dx%d k%s s%s g%d" % (node["in_channels"], node["out_channels"],
                                                 "x".join(map(str, node["kernel"])),
                                                 "x".join(map(str, node.get("stride", [1]))), node.get("groups", 1))
        rows.append(row)
    sess.close()
    model.close()
    return rows, sorted(totals)[0], sorted(totals)[len(totals) // 2], runs, recaptured


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", default="base", choices=("base", "real", "all"))
    ap.add_argument("--models", default="", help="comma list (default: every captured model of --zoo)")
    ap.add_argument("--batches", default="", help="comma list (default: each model's list in zoo.py)")
    ap.add_argument("--threads", default="1", help="comma list of thread counts")
    ap.add_argument("--quick", action="store_true", help="each model's quick batches (zoo.py)")
    ap.add_argument("--work-dir", default=str(ROOT / "bench" / "out" / "models"))
    ap.add_argument("--peak-from", default=str(ROOT / "bench" / "results" / "tlbench.json"))
    ap.add_argument("--peak", type=float, default=None, help="sgemm peak GFLOP/s (else from --peak-from)")
    ap.add_argument("--fma-peak", type=float, default=None,
                    help="1-thread FMA peak GFLOP/s (else peak/fma_* from --peak-from)")
    ap.add_argument("--min-runs", type=int, default=5)
    ap.add_argument("--budget", type=float, default=1.0)
    ap.add_argument("--top", type=int, default=5, help="slowest nodes kept per (model, batch, threads)")
    ap.add_argument("--build-dir", default=os.environ.get("TL_BUILD_DIR", ""))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "layers.json"))
    a = ap.parse_args()
    lib = tc.Lib(tc.find_lib(a.build_dir or None))
    peak = a.peak or sgemm_peak(a.peak_from)
    fpeak1 = a.fma_peak or fma_peak(a.peak_from)
    specs = {s.name: s for s in zoo.specs("all")}
    names = a.models.split(",") if a.models else [s.name for s in zoo.specs(a.zoo)]
    thread_list = [int(t) for t in a.threads.split(",")]
    benchmarks = []
    for name in names:
        mdir = Path(a.work_dir) / name
        if not (mdir / "graph.json").exists():
            print("layers.py: %s: not captured (run bench/compare.py --capture-only)" % mdir, file=sys.stderr)
            continue
        sp = specs.get(name)
        if a.batches:
            batches = [int(x) for x in a.batches.split(",")]
        elif sp is not None:
            batches = list((sp.quick_batches or sp.batches[:2]) if a.quick else sp.batches)
        else:
            batches = [1, 64]
        for b in batches:
            for t in thread_list:
                try:
                    rows, tmin, tmed, runs, recap = profile_model(lib, mdir, b, t, a.min_runs, a.budget)
                except Exception as e:  # one row's failure is reported; the other rows go on
                    print("layers.py: %s batch %d threads %d: %s" % (name, b, t, str(e).strip().splitlines()[-1:]),
                          file=sys.stderr)
                    continue
                benchmarks += summarize(name, b, t, rows, tmin, tmed, runs, recap, peak, fpeak1, a.top)
    ctx = {"executable": "bench/layers.py", "sgemm_peak_GFLOPS": peak,
           "sgemm_peak_source": "--peak" if a.peak else a.peak_from,
           "fma_peak_GFLOPS_1thread": fpeak1,
           "fma_peak_source": "--fma-peak" if a.fma_peak else a.peak_from,
           "tl_blas_info": lib.blas_info(), "threads": thread_list,
           "loadavg": open("/proc/loadavg").read().split()[0],
           "method": "TL_SESSION_PROFILE per-node times, median (and min) over >= %d runs and >= %.1fs; "
                     "whole-model time = fastest run; FMA peak at t threads = t x the 1-thread "
                     "peak/fma figure of tlbench" % (a.min_runs, a.budget)}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"context": ctx, "benchmarks": benchmarks}, indent=1))
    print("wrote", out)


def summarize(name, b, t, rows, tmin, tmed, runs, recap, peak, fpeak1, top):
    """Google-Benchmark entries for one profiled (model, batch, threads): a summary (time share per
    op kind, the `top` slowest nodes) and one entry per linear / conv / matmul node."""
    fpeak = fpeak1 * t if fpeak1 else None
    tag = "%s/batch:%d/threads:%d" % (name, b, t)
    node_sum = sum(r["ns"] for r in rows)
    gemm_ns = sum(r["ns"] for r in rows if r["kind"] in GEMM_OPS)
    flops = sum(r["flops"] for r in rows)
    by_kind = collections.Counter()
    for r in rows:
        by_kind[r["kind"]] += r["ns"]
    slow = sorted((r for r in rows if r["ns"] > 0), key=lambda r: -r["ns"])[:top]
    summary = {
        "name": "layers/" + tag, "run_name": "layers/" + tag,
        "run_type": "iteration", "iterations": runs, "repetitions": 1, "threads": 1,
        "real_time": tmin / 1e3, "cpu_time": tmin / 1e3, "time_unit": "us",
        "model": name, "batch": b, "num_threads": t, "recaptured_at_batch": recap,
        "median_run_us": tmed / 1e3, "sum_of_node_median_us": node_sum / 1e3,
        "gemm_share": gemm_ns / node_sum if node_sum else 0,
        "model_GFLOPS": flops / tmin if tmin else 0, "flops": flops,
        "pct_of_sgemm_peak": (100 * flops / tmin / peak) if (peak and tmin) else None,
        "pct_of_fma_peak": (100 * flops / tmin / fpeak) if (fpeak and tmin) else None,
        "fma_peak_GFLOPS": fpeak,
        "time_share_by_kind": {k: v / node_sum for k, v in by_kind.most_common()} if node_sum else {},
        "top_nodes": [{"node": r["id"], "kind": r["kind"], "shape": r["shape"], "us": r["ns"] / 1e3, "conv": r.get("conv"),
                       "share": r["ns"] / node_sum if node_sum else 0,
                       "GFLOPS": (r["flops"] / r["ns"]) if r["flops"] else None} for r in slow],
        "n_nodes": len(rows),
    }
    out = [summary]
    print("%-16s b=%-4d t=%d min run %10.1f us  median %10.1f us  gemm share %3.0f%%  model %6.1f GFLOP/s%s" % (
        name, b, t, tmin / 1e3, tmed / 1e3, 100 * summary["gemm_share"], summary["model_GFLOPS"],
        ("  (%.0f%% of FMA peak)" % summary["pct_of_fma_peak"]) if summary["pct_of_fma_peak"] else ""))
    for r in rows:
        if r["kind"] not in GEMM_OPS or not r["ns"]:
            continue
        gf = r["flops"] / r["ns"]
        gf_best = r["flops"] / r["min_ns"] if r["min_ns"] else None
        nm = "layer/%s/node:%d:%s" % (tag, r["id"], r["kind"])
        e = {"name": nm, "run_name": nm,
             "run_type": "iteration", "iterations": runs, "repetitions": 1, "threads": 1,
             "real_time": r["ns"] / 1e3, "cpu_time": r["ns"] / 1e3, "time_unit": "us",
             "model": name, "batch": b, "num_threads": t, "node": r["id"], "kind": r["kind"],
             "shape": r["shape"], "flops": r["flops"], "GFLOPS": gf, "GFLOPS_best_run": gf_best,
             "min_us": r["min_ns"] / 1e3, "share": r["ns"] / node_sum if node_sum else 0,
             "pct_of_sgemm_peak": (100 * gf / peak) if peak else None,
             "pct_of_fma_peak": (100 * gf / fpeak) if fpeak else None}
        if r["kind"] == "conv":
            e["conv"] = r.get("conv")
        out.append(e)
        if r["flops"] >= 1e6 and e["share"] >= 0.05:
            print("    node %3d %-7s %-20s %9.1f us  %6.1f GFLOP/s%s" % (
                r["id"], r["kind"], r["shape"], r["ns"] / 1e3, gf,
                ("  %3.0f%% of FMA peak" % e["pct_of_fma_peak"]) if fpeak else ""))
    return out


if __name__ == "__main__":
    main()
