#!/usr/bin/env python3
"""tlrt vs PyTorch eager vs ONNX Runtime on the model zoo, in ONE process, interleaved.

For every zoo model, batch (1, 64) and thread count (1, 2):
  * tlrt      : libtlrt_c.so through ctypes (tl_model_open / tl_session_new once,
                tl_session_run timed: one foreign call, no process start)
  * PyTorch   : eager module under torch.inference_mode(), torch.set_num_threads(t)
  * ORT       : the same module exported with torch.onnx.export (dynamo=False: the new exporter
                needs onnxscript), intra_op_num_threads=t, inter_op_num_threads=1,
                session.intra_op.allow_spinning="0"
All three are first checked to agree numerically on the same input; then after a warm-up the
three are timed round-robin, one call each per round (the order rotates every round), and the
median of each is reported with ratios tlrt/PyTorch and tlrt/ORT.

Peak memory: each (model, runtime, batch) runs in a fresh subprocess that first does the same
imports as every other child (torch, onnxruntime, numpy, libtlrt_c.so), records ru_maxrss, then
loads and runs the model; reported is ru_maxrss(after) - ru_maxrss(after imports), i.e. the extra
peak resident memory the runtime needed for weights, plans, arenas and temporaries.

Output: Google-Benchmark-style JSON ({"context": ..., "benchmarks": [...]}) in bench/results/.
Also usable as `compare.py --capture-only DIR`: capture the zoo (graph.json + params.bin per
model) for tlbench's model benchmarks.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

# OpenMP pools of tlrt (libgomp) and PyTorch would otherwise spin after each call and steal the
# core from the runtime timed next in the round-robin; ORT's spinning is disabled explicitly.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

import zoo  # noqa: E402  (bench/zoo.py: the zoo list + capture)

RUNTIMES = ("tlrt", "pytorch", "ort")


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


# ----------------------------------------------------------------------------- runtimes
class Runners:
    """The three runtimes for one model at one batch; each .fn[rt]() runs one inference."""

    def __init__(self, spec, module, model_dir, onnx_path, batch, lib, seed=0):
        import onnxruntime as ort
        import torch
        import tlrt_ctypes as tc

        self.spec = spec
        shape = (batch,) + tuple(spec.example_shape[1:])
        rng = np.random.default_rng(seed)
        self.x = np.ascontiguousarray(rng.standard_normal(shape).astype(np.float32))
        if spec.input_low is not None:
            self.x = np.ascontiguousarray(
                rng.uniform(spec.input_low, spec.input_high, shape).astype(np.float32))
        self.module = module
        self.xt = torch.from_numpy(self.x)
        # tlrt
        params = model_dir / "params.bin"
        self.tl_model = tc.Model(lib, model_dir / "graph.json",
                                 str(params) if params.exists() else None)
        self.recaptured = False
        try:
            self.tl_sess = tc.Session(self.tl_model, shape)
        except tc.TlrtError as e:
            # the runtime cannot re-batch this batch-1 graph: use the capture at this batch
            alt = model_dir / ("b%d" % batch)
            if not (alt / "graph.json").exists():
                raise
            self.rebatch_error = str(e)
            self.tl_model.close()
            self.tl_model = tc.Model(lib, alt / "graph.json", str(alt / "params.bin"))
            self.tl_sess = tc.Session(self.tl_model, shape)
            self.recaptured = True
        self.tl_run = self.tl_sess.bind(self.x)
        # ORT: one session per thread count (created lazily)
        self._ort = ort
        self.onnx_path = onnx_path
        self.ort_sess = {}
        self.lib = lib
        self.torch = torch

    def ort_session(self, threads):
        if threads not in self.ort_sess:
            so = self._ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.ort_sess[threads] = self._ort.InferenceSession(
                str(self.onnx_path), so, providers=["CPUExecutionProvider"])
        return self.ort_sess[threads]

    def functions(self, threads):
        torch = self.torch
        torch.set_num_threads(threads)
        self.lib.set_threads(threads)
        sess = self.ort_session(threads)
        feed = {sess.get_inputs()[0].name: self.x}
        mod, xt = self.module, self.xt

        def run_torch():
            with torch.inference_mode():
                return mod(xt)

        def run_ort():
            return sess.run(None, feed)

        return {"tlrt": self.tl_run, "pytorch": run_torch, "ort": run_ort}

    def outputs(self, threads):
        fns = self.functions(threads)
        fns["tlrt"]()
        out_tl = self.tl_sess.outputs()
        out_pt = fns["pytorch"]()
        if not isinstance(out_pt, (tuple, list)):
            out_pt = (out_pt,)
        out_pt = [o.detach().numpy() for o in out_pt]
        out_ort = [np.asarray(o) for o in fns["ort"]()]
        return out_tl, out_pt, out_ort

    def close(self):
        self.tl_sess.close()
        self.tl_model.close()


def agreement(out_tl, out_pt, out_ort, rtol=1e-3, atol=1e-4):
    """Max abs differences tlrt-vs-PyTorch and ORT-vs-PyTorch, and whether all agree."""
    if not (len(out_tl) == len(out_pt) == len(out_ort)):
        return {"agree": False, "why": "output count tlrt %d, torch %d, ort %d" % (
            len(out_tl), len(out_pt), len(out_ort))}
    d_tl = d_ort = 0.0
    ok = True
    for a, b, c in zip(out_tl, out_pt, out_ort, strict=True):
        if a.shape != b.shape or c.shape != b.shape:
            return {"agree": False, "why": "shape tlrt %s torch %s ort %s" % (a.shape, b.shape, c.shape)}
        bd = b.astype(np.float64)
        d_tl = max(d_tl, float(np.max(np.abs(a - bd))) if a.size else 0.0)
        d_ort = max(d_ort, float(np.max(np.abs(c - bd))) if c.size else 0.0)
        ok = ok and np.allclose(a, bd, rtol=rtol, atol=atol) and np.allclose(c, bd, rtol=rtol, atol=atol)
    return {"agree": bool(ok), "max_abs_diff_tlrt": d_tl, "max_abs_diff_ort": d_ort}


def time_interleaved(fns, warmup, min_iters, max_iters, budget_s):
    """Round-robin: each round calls every runtime once (rotating order). Returns ns lists."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    times = {n: [] for n in names}
    clock = time.perf_counter_ns
    t_end = time.perf_counter() + budget_s
    r = 0
    t_hard = time.perf_counter() + 3 * budget_s
    # at least min_iters rounds and budget_s seconds; slow configs stop after 3x the budget
    # (but never below 5 rounds)
    while r < max_iters and (r < min_iters or time.perf_counter() < t_end):
        if r >= 5 and time.perf_counter() > t_hard:
            break
        k = r % len(names)
        for n in names[k:] + names[:k]:
            f = fns[n]
            t0 = clock()
            f()
            times[n].append(clock() - t0)
        r += 1
    return times


# ----------------------------------------------------------------------------- memory child
def peak_rss_kib():
    """The process's peak resident set (kB): VmHWM, the high-water mark getrusage() reports as
    ru_maxrss. Read from /proc because ru_maxrss also carries the PARENT's peak across
    fork+exec (Linux keeps it in the signal struct), which would hide every child's own peak."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss



def mem_child(args):
    """Runs in a fresh process: same imports for every runtime, then one runtime's model."""
    import onnxruntime as ort
    import torch
    import tlrt_ctypes as tc

    lib = tc.Lib(tc.find_lib(args.build_dir))
    spec = zoo.get(args.mem_child[0])
    runtime, batch = args.mem_child[1], int(args.mem_child[2])
    model_dir = Path(args.mem_child[3])
    torch.set_num_threads(1)
    lib.set_threads(1)
    shape = (batch,) + tuple(spec.example_shape[1:])
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    base = peak_rss_kib()
    if runtime == "baseline":
        pass
    elif runtime == "pytorch":
        module = zoo.load_module(spec, model_dir)
        xt = torch.from_numpy(x)
        with torch.inference_mode():
            for _ in range(5):
                module(xt)
    elif runtime == "ort":
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(str(model_dir / "model.onnx"), so,
                                    providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: x}
        for _ in range(5):
            sess.run(None, feed)
    elif runtime == "tlrt":
        params = model_dir / "params.bin"
        m = tc.Model(lib, model_dir / "graph.json", str(params) if params.exists() else None)
        try:
            s = tc.Session(m, shape)
        except tc.TlrtError:
            m.close()
            alt = model_dir / ("b%d" % batch)
            m = tc.Model(lib, alt / "graph.json", str(alt / "params.bin"))
            s = tc.Session(m, shape)
        go = s.bind(x)
        for _ in range(5):
            go()
    peak = peak_rss_kib()
    print(json.dumps({"base_kib": base, "peak_kib": peak,
                      "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def measure_memory(spec, runtime, batch, model_dir, build_dir):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--mem-child", spec.name, runtime,
           str(batch), str(model_dir)]
    if build_dir:
        cmd += ["--build-dir", str(build_dir)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1]}
    d = json.loads(r.stdout.strip().splitlines()[-1])
    return {"base_MiB": d["base_kib"] / 1024.0, "peak_MiB": d["peak_kib"] / 1024.0,
            "delta_MiB": (d["peak_kib"] - d["base_kib"]) / 1024.0}


# ----------------------------------------------------------------------------- main
def versions(lib):
    import onnxruntime as ort
    import torch
    return {"torch": torch.__version__, "onnxruntime": ort.__version__,
            "numpy": np.__version__, "python": platform.python_version(),
            "tl_blas_info": lib.blas_info(), "libtlrt_c": lib.path}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="", help="comma list of zoo names (default: all)")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--min-iters", type=int, default=50)
    ap.add_argument("--max-iters", type=int, default=2000)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds of timing per config")
    ap.add_argument("--work-dir", default=str(ROOT / "bench" / "out" / "models"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "compare.json"))
    ap.add_argument("--build-dir", default=os.environ.get("TL_BUILD_DIR", ""))
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-batches", default="1,64")
    ap.add_argument("--quick", action="store_true", help="fewer iterations, memory at batch 64 only")
    ap.add_argument("--capture-only", metavar="DIR", help="only capture the zoo into DIR/<name>/")
    ap.add_argument("--reuse-capture", action="store_true",
                    help="use the captures already in --work-dir (from --capture-only)")
    ap.add_argument("--list", action="store_true", help="print the zoo names and exit")
    ap.add_argument("--mem-child", nargs=4, metavar=("MODEL", "RUNTIME", "BATCH", "DIR"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.mem_child:
        return mem_child(args)
    if args.list:
        print("\n".join(s.name for s in zoo.specs()))
        return 0
    specs = zoo.specs()
    if args.models:
        want = args.models.split(",")
        specs = [s for s in specs if s.name in want]
    if args.capture_only:
        ok = True
        for s in specs:
            try:
                zoo.capture(s, Path(args.capture_only) / s.name)
                print("captured", s.name)
            except Exception as e:  # report and go on with the others
                ok = False
                print("capture failed: %s: %s" % (s.name, str(e).splitlines()[-1] if str(e) else type(e).__name__),
                      file=sys.stderr)
        return 0 if ok else 1

    if args.quick:
        args.budget = min(args.budget, 0.6)
        args.min_iters = min(args.min_iters, 20)
        args.warmup = min(args.warmup, 5)
        args.memory_batches = "64"

    import tlrt_ctypes as tc
    import torch  # noqa: F401  (kept: torch loads before libtlrt_c.so, as in the measured runs)

    lib = tc.Lib(tc.find_lib(args.build_dir or None))
    load_start = loadavg()
    batches = [int(b) for b in args.batches.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    work = Path(args.work_dir)
    benchmarks = []
    problems = []

    for spec in specs:
        mdir = work / spec.name
        try:
            if args.reuse_capture and (mdir / "model.onnx").exists() and (mdir / "state_dict.pt").exists():
                module = zoo.load_module(spec, mdir)
            else:
                module = zoo.capture(spec, mdir)  # graph.json + params.bin + model.onnx, same weights
        except Exception as e:
            problems.append("%s: capture/export failed: %s" % (spec.name, str(e).strip().splitlines()[-1]))
            print(problems[-1], file=sys.stderr)
            continue
        for b in batches:
            try:
                R = Runners(spec, module, mdir, mdir / "model.onnx", b, lib)
            except Exception as e:
                problems.append("%s batch %d: setup failed: %s" % (spec.name, b, str(e).strip().splitlines()[-1]))
                print(problems[-1], file=sys.stderr)
                continue
            for t in threads:
                try:
                    agree = agreement(*R.outputs(t))
                except Exception as e:
                    problems.append("%s batch %d threads %d: run failed: %s" % (
                        spec.name, b, t, str(e).strip().splitlines()[-1]))
                    print(problems[-1], file=sys.stderr)
                    continue
                if not agree["agree"]:
                    problems.append("%s batch %d threads %d: outputs disagree: %s" % (
                        spec.name, b, t, json.dumps(agree)))
                    print(problems[-1], file=sys.stderr)
                fns = R.functions(t)
                ts = time_interleaved(fns, args.warmup, args.min_iters, args.max_iters, args.budget)
                med = {rt: statistics.median(v) / 1e3 for rt, v in ts.items()}  # us
                for rt in RUNTIMES:
                    v = sorted(ts[rt])
                    e = {
                        "name": "compare/%s/batch:%d/threads:%d/%s" % (spec.name, b, t, rt),
                        "run_name": "compare/%s/batch:%d/threads:%d/%s" % (spec.name, b, t, rt),
                        "run_type": "aggregate", "aggregate_name": "median",
                        "repetitions": 1, "threads": 1,
                        "iterations": len(v),
                        "real_time": med[rt], "cpu_time": med[rt], "time_unit": "us",
                        "model": spec.name, "size": spec.size, "runtime": rt, "batch": b, "num_threads": t,
                        "p10_us": v[len(v) // 10] / 1e3, "p90_us": v[(9 * len(v)) // 10] / 1e3,
                        "min_us": v[0] / 1e3,
                        "samples_per_s": b / (med[rt] * 1e-6),
                        "agree": agree["agree"],
                    }
                    if rt == "tlrt":
                        e["ratio_vs_pytorch"] = med["tlrt"] / med["pytorch"]
                        e["ratio_vs_ort"] = med["tlrt"] / med["ort"]
                        e["max_abs_diff_vs_pytorch"] = agree.get("max_abs_diff_tlrt")
                        e["arena_bytes"] = R.tl_sess.arena_bytes()
                        e["param_bytes"] = R.tl_model.param_bytes()
                        e["recaptured_at_batch"] = R.recaptured
                    if rt == "ort":
                        e["max_abs_diff_vs_pytorch"] = agree.get("max_abs_diff_ort")
                    benchmarks.append(e)
                print("%-22s b=%-3d t=%d  tlrt %9.1f us  torch %9.1f us  ort %9.1f us  "
                      "tlrt/torch %.3f  tlrt/ort %.3f  agree=%s" % (
                          spec.name, b, t, med["tlrt"], med["pytorch"], med["ort"],
                          med["tlrt"] / med["pytorch"], med["tlrt"] / med["ort"], agree["agree"]),
                      flush=True)
            R.close()

    if not args.no_memory:
        mem_batches = [int(b) for b in args.memory_batches.split(",")]
        base = measure_memory(specs[0], "baseline", 1, work / specs[0].name, args.build_dir) if specs else {}
        for spec in specs:
            mdir = work / spec.name
            if not (mdir / "model.onnx").exists():
                continue
            for b in mem_batches:
                row = {}
                for rt in RUNTIMES:
                    m = measure_memory(spec, rt, b, mdir, args.build_dir)
                    row[rt] = m
                    e = {"name": "memory/%s/batch:%d/%s" % (spec.name, b, rt),
                         "run_name": "memory/%s/batch:%d/%s" % (spec.name, b, rt),
                         "run_type": "iteration", "iterations": 1, "repetitions": 1, "threads": 1,
                         "real_time": 0, "cpu_time": 0, "time_unit": "us",
                         "model": spec.name, "runtime": rt, "batch": b}
                    if "error" in m:
                        e["error_occurred"] = True
                        e["error_message"] = m["error"]
                    else:
                        e["peak_rss_delta_MiB"] = m["delta_MiB"]
                        e["peak_rss_MiB"] = m["peak_MiB"]
                    benchmarks.append(e)
                print("%-22s b=%-3d peak RSS delta MiB: %s" % (spec.name, b, "  ".join(
                    "%s %s" % (rt, ("%.1f" % row[rt]["delta_MiB"]) if "delta_MiB" in row[rt] else "ERR")
                    for rt in RUNTIMES)), flush=True)
    else:
        base = {}

    ctx = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "loadavg_start": load_start, "loadavg_end": loadavg(),
        "host_name": platform.node(),
        "executable": "bench/compare.py",
        "num_cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "library_build_type": "release",
        "versions": versions(lib),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", ""),
        "method": ("one process; tlrt via ctypes (tl_session_run), PyTorch eager under "
                   "inference_mode, ORT CPU EP (torch.onnx.export dynamo=False, opset %d, "
                   "inter_op 1, allow_spinning 0); warm-up %d rounds, then round-robin rounds "
                   "(rotating order) for >= %d rounds and >= %.1fs (max %d); times are medians "
                   "in microseconds of wall clock per call including the Python call overhead "
                   "(same for all three)" % (zoo.OPSET, args.warmup, args.min_iters, args.budget,
                                              args.max_iters)),
        "memory_method": ("fresh subprocess per (model, runtime, batch), same imports in every "
                          "child (torch, onnxruntime, numpy, libtlrt_c.so); value = peak RSS "
                          "(VmHWM = what ru_maxrss reports, read from /proc/self/status because "
                          "ru_maxrss inherits the parent's peak across fork+exec) after loading the "
                          "model and 5 runs, minus the same right after the imports "
                          "(idle_baseline_peak_MiB: an idle child with the same imports); threads 1; "
                          "allocations served from heap pages the imports already touched do not "
                          "show, so deltas under ~0.1 MiB read as 0"),
        "idle_baseline_peak_MiB": base.get("peak_MiB"),
        "problems": problems,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"context": ctx, "benchmarks": benchmarks}, indent=1))
    print("wrote", out)
    if problems:
        print("problems:\n  " + "\n  ".join(problems), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main() or 0)
