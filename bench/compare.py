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

RUNTIMES = ("tlrt", "pytorch", "ort", "openvino")
PEERS = ("pytorch", "ort", "openvino")
MEM_RUNTIMES = ("tlrt", "pytorch", "ort")


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
ATOL32, RTOL32 = 1e-5, 1.3e-6  # torch.testing.assert_close defaults for float32
PEER_RTOL, PEER_ATOL = 1e-3, 1e-4  # peers (ORT, OpenVINO) fuse and reassociate: a looser check


def close32(a, ref):
    """torch.testing.assert_close's float32 rule, elementwise |a - ref| <= atol + rtol * |ref|."""
    return bool(a.shape == ref.shape and np.all(np.abs(a.astype(np.float64) - ref) <= ATOL32 + RTOL32 * np.abs(ref)))


def _last_line(e):
    return (str(e).strip().splitlines() or [type(e).__name__])[-1][:300]


class Runners:
    """The runtimes for one model at one batch; functions(t)[rt]() runs one inference.
    A peer whose setup fails is kept in self.failed[rt] (reported as failed for the row)."""

    def __init__(self, spec, module, model_dir, onnx_path, batch, lib, seed=0, openvino=True):
        import torch
        import tlrt_ctypes as tc

        self.spec = spec
        self.tc = tc
        shape = (batch,) + tuple(spec.example_shape[1:])
        self.shape = shape
        rng = np.random.default_rng(seed)
        self.x = np.ascontiguousarray(rng.standard_normal(shape).astype(np.float32))
        if spec.input_low is not None:
            self.x = np.ascontiguousarray(rng.uniform(spec.input_low, spec.input_high, shape).astype(np.float32))
        self.module = module
        self.xt = torch.from_numpy(self.x)
        self.lib = lib
        self.torch = torch
        self.failed = {}
        # tlrt
        self.tl_dir = model_dir
        self.recaptured = False
        self.tl_model, self.tl_sess = self._tl_session(0, allow_recapture=True)
        self.tl_run = self.tl_sess.bind(self.x)
        # peers: ORT and OpenVINO sessions per thread count (created lazily)
        self.onnx_path = onnx_path
        self.ort_sess = {}
        self.ov_req = {}
        self.ov_how = None
        self.use_ov = openvino

    def _tl_session(self, flags, allow_recapture=False):
        tc = self.tc
        d = self.tl_dir
        params = d / "params.bin"
        model = tc.Model(self.lib, d / "graph.json", str(params) if params.exists() else None)
        try:
            return model, tc.Session(model, self.shape, flags)
        except tc.TlrtError as e:
            # the runtime cannot re-batch this batch-1 graph: use (or make) the capture at this batch
            model.close()
            if not allow_recapture and not self.recaptured:
                raise
            alt = self.tl_dir / ("b%d" % self.shape[0])
            if not (alt / "graph.json").exists():
                import zoo

                zoo.capture_batch(self.spec, self.module, self.tl_dir, self.shape[0])
            self.rebatch_error = str(e)
            self.tl_dir = alt
            self.recaptured = True
            model = tc.Model(self.lib, alt / "graph.json", str(alt / "params.bin"))
            return model, tc.Session(model, self.shape, flags)

    def ort_session(self, threads):
        import onnxruntime as ort

        if threads not in self.ort_sess:
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.ort_sess[threads] = ort.InferenceSession(str(self.onnx_path), so, providers=["CPUExecutionProvider"])
        return self.ort_sess[threads]

    def ov_request(self, threads):
        """OpenVINO CPU plugin on the same ONNX file as ORT (read_model; the model is reshaped to
        this batch so the plugin plans a static shape), INFERENCE_PRECISION_HINT=f32,
        INFERENCE_NUM_THREADS=t, one infer request reused. If the ONNX import fails,
        openvino.convert_model from the torch module is tried (self.ov_how says which)."""
        import openvino as ov

        if threads not in self.ov_req:
            core = ov.Core()
            try:
                model = core.read_model(str(self.onnx_path))
                self.ov_how = "onnx"
            except Exception:
                model = ov.convert_model(self.module, example_input=self.xt)
                self.ov_how = "convert_model"
            model.reshape({model.inputs[0]: ov.PartialShape(list(self.shape))})
            cfg = {
                "INFERENCE_PRECISION_HINT": "f32",
                "INFERENCE_NUM_THREADS": str(threads),
                "PERFORMANCE_HINT": "LATENCY",
                "NUM_STREAMS": "1",
            }
            cm = core.compile_model(model, "CPU", cfg)
            self.ov_req[threads] = cm.create_infer_request()
        return self.ov_req[threads]

    def functions(self, threads):
        """{runtime: zero-argument runner} for the runtimes that have not failed."""
        torch = self.torch
        torch.set_num_threads(threads)
        self.lib.set_threads(threads)
        mod, xt, x = self.module, self.xt, self.x
        fns = {"tlrt": self.tl_run}

        def run_torch():
            with torch.inference_mode():
                return mod(xt)

        fns["pytorch"] = run_torch
        if "ort" not in self.failed:
            try:
                sess = self.ort_session(threads)
                feed = {sess.get_inputs()[0].name: x}
                fns["ort"] = lambda: sess.run(None, feed)
            except Exception as e:
                self.failed["ort"] = "setup: " + _last_line(e)
        if self.use_ov and "openvino" not in self.failed:
            try:
                req = self.ov_request(threads)
                fns["openvino"] = lambda: req.infer({0: x}, share_inputs=True)
            except Exception as e:
                self.failed["openvino"] = "setup: " + _last_line(e)
        elif not self.use_ov:
            self.failed.setdefault("openvino", "not run (--no-openvino)")
        return fns

    def outputs(self, threads):
        """One run of each runtime: {runtime: [np arrays]}; a peer that raises is marked failed."""
        fns = self.functions(threads)
        outs = {}
        fns["tlrt"]()
        outs["tlrt"] = self.tl_sess.outputs()
        o = fns["pytorch"]()
        o = o if isinstance(o, (tuple, list)) else (o,)
        outs["pytorch"] = [t.detach().numpy().copy() for t in o]
        for rt in ("ort", "openvino"):
            if rt not in fns:
                continue
            try:
                r = fns[rt]()
                if rt == "openvino":
                    req = self.ov_req[threads]
                    r = [req.get_output_tensor(i).data for i in range(len(req.model_outputs))]
                outs[rt] = [np.array(v, dtype=np.float32) for v in r]
            except Exception as e:
                self.failed[rt] = "run: " + _last_line(e)
        return outs

    def exact_outputs(self):
        """tlrt's outputs with TL_SESSION_EXACT (no plan-time rewrites), threads as set."""
        m, s = self._tl_session(self.tc.Session.EXACT, allow_recapture=True)
        try:
            s.bind(self.x)()
            return s.outputs()
        finally:
            s.close()
            m.close()

    def close(self):
        self.tl_sess.close()
        self.tl_model.close()


def max_abs(outs, ref):
    if len(outs) != len(ref) or any(a.shape != b.shape for a, b in zip(outs, ref, strict=False)):
        return None
    return max(
        (float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0) for a, b in zip(outs, ref, strict=True)
    )


def agreement(outs, failed, exact=None):
    """Per runtime: max |out - eager| and whether it agrees (tlrt: assert_close float32 defaults,
    rewrites on and, when given, with TL_SESSION_EXACT; peers: rtol 1e-3, atol 1e-4). A peer
    whose outputs disagree (or have another shape) is marked failed."""
    ref = [o.astype(np.float64) for o in outs["pytorch"]]
    res = {}
    for rt, o in outs.items():
        if rt == "pytorch":
            continue
        d = max_abs(o, ref)
        if rt == "tlrt":
            ok = d is not None and all(close32(a, b) for a, b in zip(o, ref, strict=True))
        else:
            ok = d is not None and all(
                np.allclose(a, b, rtol=PEER_RTOL, atol=PEER_ATOL) for a, b in zip(o, ref, strict=True)
            )
            if not ok:
                failed[rt] = (
                    ("outputs disagree with eager (max abs %.3g)" % d)
                    if d is not None
                    else "output count/shape differs from eager"
                )
        res[rt] = {"max_abs": d, "agree": bool(ok)}
    if exact is not None:
        d = max_abs(exact, ref)
        res["tlrt_exact"] = {
            "max_abs": d,
            "agree": bool(d is not None and all(close32(a, b) for a, b in zip(exact, ref, strict=True))),
        }
    return res


def time_interleaved(fns, warmup, min_iters, max_iters, budget_s):
    """Round-robin: each round calls every runtime once (rotating order). Returns ns lists."""
    names = list(fns)
    t_warm = time.perf_counter() + budget_s / 2  # slow models: warm-up ends after budget/2 s
    for i in range(warmup):
        for n in names:
            fns[n]()
        if i >= 1 and time.perf_counter() > t_warm:
            break
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
        sess = ort.InferenceSession(str(model_dir / "model.onnx"), so, providers=["CPUExecutionProvider"])
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
    print(
        json.dumps(
            {"base_kib": base, "peak_kib": peak, "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
        )
    )


def measure_memory(spec, runtime, batch, model_dir, build_dir):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--mem-child", spec.name, runtime, str(batch), str(model_dir)]
    if build_dir:
        cmd += ["--build-dir", str(build_dir)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1]}
    d = json.loads(r.stdout.strip().splitlines()[-1])
    return {
        "base_MiB": d["base_kib"] / 1024.0,
        "peak_MiB": d["peak_kib"] / 1024.0,
        "delta_MiB": (d["peak_kib"] - d["base_kib"]) / 1024.0,
    }


# ----------------------------------------------------------------------------- main
def versions(lib):
    import onnxruntime as ort
    import torch

    try:
        import openvino as ov

        ov_v = ov.__version__.split("-")[0]
    except ImportError:
        ov_v = None
    return {
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "openvino": ov_v,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "tl_blas_info": lib.blas_info(),
        "libtlrt_c": lib.path,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--zoo",
        default="base",
        choices=("base", "real", "all"),
        help="base: tests/zoo + zoo_large; real: bench/zoo_real.py; all: both",
    )
    ap.add_argument("--models", default="", help="comma list of zoo names (default: all of --zoo)")
    ap.add_argument("--batches", default="", help="comma list (default: each model's own list, zoo.py)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--min-iters", type=int, default=50)
    ap.add_argument("--max-iters", type=int, default=2000)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds of timing per config")
    ap.add_argument("--work-dir", default=str(ROOT / "bench" / "out" / "models"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "compare.json"))
    ap.add_argument("--build-dir", default=os.environ.get("TL_BUILD_DIR", ""))
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-openvino", action="store_true", help="leave OpenVINO out (reported as not run)")
    ap.add_argument("--no-exact", action="store_true", help="skip the TL_SESSION_EXACT accuracy check")
    ap.add_argument("--memory-batches", default="1,64")
    ap.add_argument("--quick", action="store_true", help="fewer iterations, memory at batch 64 only")
    ap.add_argument("--capture-only", metavar="DIR", help="only capture the zoo into DIR/<name>/")
    ap.add_argument(
        "--reuse-capture", action="store_true", help="use the captures already in --work-dir (from --capture-only)"
    )
    ap.add_argument("--list", action="store_true", help="print the zoo names and exit")
    ap.add_argument("--mem-child", nargs=4, metavar=("MODEL", "RUNTIME", "BATCH", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.mem_child:
        return mem_child(args)
    if args.list:
        print(
            "\n".join("%s %s batches=%s" % (s.name, s.zoo, ",".join(map(str, s.batches))) for s in zoo.specs(args.zoo))
        )
        return 0
    specs = zoo.specs(args.zoo)
    if args.models:
        want = args.models.split(",")
        unknown = set(want) - {s.name for s in zoo.specs("all")}
        if unknown:
            print("compare.py: unknown models: %s (see --list --zoo all)" % ",".join(sorted(unknown)), file=sys.stderr)
            return 2
        specs = [s for s in zoo.specs("all") if s.name in want]
    if args.capture_only:
        ok = True
        for s in specs:
            try:
                zoo.capture(s, Path(args.capture_only) / s.name)
                print("captured", s.name)
            except Exception as e:  # report and go on with the others
                ok = False
                print(
                    "capture failed: %s: %s" % (s.name, str(e).splitlines()[-1] if str(e) else type(e).__name__),
                    file=sys.stderr,
                )
        return 0 if ok else 1

    if args.quick:
        args.budget = min(args.budget, 0.6)
        args.min_iters = min(args.min_iters, 10)
        args.warmup = min(args.warmup, 3)
        args.memory_batches = "64"

    import tlrt_ctypes as tc
    import torch  # noqa: F401  (kept: torch loads before libtlrt_c.so, as in the measured runs)

    lib = tc.Lib(tc.find_lib(args.build_dir or None))
    load_start = loadavg()
    batches = [int(b) for b in args.batches.split(",")] if args.batches else None
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
            problems.append("%s: capture/export failed: %s" % (spec.name, _last_line(e)))
            print(problems[-1], file=sys.stderr)
            continue
        for b in batches or ((spec.quick_batches or spec.batches[:2]) if args.quick else spec.batches):
            # tlrt plans a session for the thread count set when it is created (scratch slots,
            # micro-batch children: docs/threads.md), so it is created at the largest count; a
            # smaller count runs the same plan on fewer threads
            lib.set_threads(max(threads))
            try:
                R = Runners(spec, module, mdir, mdir / "model.onnx", b, lib, openvino=not args.no_openvino)
            except Exception as e:
                problems.append("%s batch %d: setup failed: %s" % (spec.name, b, _last_line(e)))
                print(problems[-1], file=sys.stderr)
                continue
            exact = None
            for t in threads:
                try:
                    outs = R.outputs(t)
                    if exact is None and not args.no_exact:
                        try:
                            exact = R.exact_outputs()
                        except Exception as e:  # reported; the row is still timed
                            problems.append("%s batch %d: TL_SESSION_EXACT session failed: %s" % (
                                spec.name, b, _last_line(e)))
                            print(problems[-1], file=sys.stderr)
                            exact = False
                    agree = agreement(outs, R.failed, exact or None)
                except Exception as e:
                    problems.append("%s batch %d threads %d: run failed: %s" % (spec.name, b, t, _last_line(e)))
                    print(problems[-1], file=sys.stderr)
                    continue
                if not agree["tlrt"]["agree"] or not agree.get("tlrt_exact", {"agree": True})["agree"]:
                    problems.append(
                        "%s batch %d threads %d: tlrt differs from eager beyond assert_close "
                        "float32 defaults: %s" % (spec.name, b, t, json.dumps(agree))
                    )
                    print(problems[-1], file=sys.stderr)
                fns = {rt: f for rt, f in R.functions(t).items() if rt not in R.failed}
                ts = time_interleaved(fns, args.warmup, args.min_iters, args.max_iters, args.budget)
                med = {rt: statistics.median(v) / 1e3 for rt, v in ts.items()}  # us
                peers = {rt: med[rt] for rt in PEERS if rt in med}
                best_rt = min(peers, key=peers.get) if peers else None
                tag = "%s/batch:%d/threads:%d" % (spec.name, b, t)
                for rt in RUNTIMES:
                    e = {
                        "name": "compare/%s/%s" % (tag, rt),
                        "run_name": "compare/%s/%s" % (tag, rt),
                        "run_type": "aggregate",
                        "aggregate_name": "median",
                        "repetitions": 1,
                        "threads": 1,
                        "model": spec.name,
                        "zoo": spec.zoo,
                        "size": spec.size,
                        "runtime": rt,
                        "batch": b,
                        "num_threads": t,
                        "time_unit": "us",
                    }
                    if rt not in med:
                        e.update(
                            {
                                "error_occurred": True,
                                "iterations": 0,
                                "real_time": 0,
                                "cpu_time": 0,
                                "error_message": R.failed.get(rt, "not run"),
                            }
                        )
                        if rt in R.failed:
                            problems.append("%s: %s failed: %s" % (tag, rt, R.failed[rt]))
                        benchmarks.append(e)
                        continue
                    v = sorted(ts[rt])
                    e.update(
                        {
                            "iterations": len(v),
                            "real_time": med[rt],
                            "cpu_time": med[rt],
                            "p10_us": v[len(v) // 10] / 1e3,
                            "p90_us": v[(9 * len(v)) // 10] / 1e3,
                            "min_us": v[0] / 1e3,
                            "samples_per_s": b / (med[rt] * 1e-6),
                            "agree": agree.get(rt, {"agree": True})["agree"],
                            "max_abs_diff_vs_pytorch": agree.get(rt, {}).get("max_abs"),
                        }
                    )
                    if rt == "tlrt":
                        for p in PEERS:
                            e["ratio_vs_" + p] = med["tlrt"] / med[p] if p in med else None
                        e["best_peer"] = best_rt
                        e["ratio_vs_best_peer"] = med["tlrt"] / peers[best_rt] if best_rt else None
                        e["assert_close_f32"] = agree["tlrt"]["agree"]
                        if "tlrt_exact" in agree:
                            e["max_abs_diff_exact_vs_pytorch"] = agree["tlrt_exact"]["max_abs"]
                            e["assert_close_f32_exact"] = agree["tlrt_exact"]["agree"]
                        e["arena_bytes"] = R.tl_sess.arena_bytes()
                        e["param_bytes"] = R.tl_model.param_bytes()
                        e["recaptured_at_batch"] = R.recaptured
                        e["allow_rounding"] = spec.allow_rounding
                    if rt == "openvino":
                        e["openvino_import"] = R.ov_how
                    benchmarks.append(e)
                print(
                    "%-16s b=%-4d t=%d  %s  tlrt/best-peer %s (%s)  close=%s/%s"
                    % (
                        spec.name,
                        b,
                        t,
                        "  ".join(
                            "%s %s" % (rt, ("%9.1f us" % med[rt]) if rt in med else "   FAILED  ") for rt in RUNTIMES
                        ),
                        ("%.3f" % (med["tlrt"] / peers[best_rt])) if best_rt else "-",
                        best_rt,
                        agree["tlrt"]["agree"],
                        agree.get("tlrt_exact", {}).get("agree", "-"),
                    ),
                    flush=True,
                )
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
                for rt in MEM_RUNTIMES:
                    m = measure_memory(spec, rt, b, mdir, args.build_dir)
                    row[rt] = m
                    e = {
                        "name": "memory/%s/batch:%d/%s" % (spec.name, b, rt),
                        "run_name": "memory/%s/batch:%d/%s" % (spec.name, b, rt),
                        "run_type": "iteration",
                        "iterations": 1,
                        "repetitions": 1,
                        "threads": 1,
                        "real_time": 0,
                        "cpu_time": 0,
                        "time_unit": "us",
                        "model": spec.name,
                        "runtime": rt,
                        "batch": b,
                    }
                    if "error" in m:
                        e["error_occurred"] = True
                        e["error_message"] = m["error"]
                    else:
                        e["peak_rss_delta_MiB"] = m["delta_MiB"]
                        e["peak_rss_MiB"] = m["peak_MiB"]
                    benchmarks.append(e)
                print(
                    "%-22s b=%-3d peak RSS delta MiB: %s"
                    % (
                        spec.name,
                        b,
                        "  ".join(
                            "%s %s" % (rt, ("%.1f" % row[rt]["delta_MiB"]) if "delta_MiB" in row[rt] else "ERR")
                            for rt in MEM_RUNTIMES
                        ),
                    ),
                    flush=True,
                )
    else:
        base = {}

    ctx = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "host_name": platform.node(),
        "executable": "bench/compare.py",
        "num_cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "library_build_type": "release",
        "versions": versions(lib),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", ""),
        "method": (
            "one process; tlrt via ctypes (tl_session_run), PyTorch eager under "
            "inference_mode, ORT CPU EP (torch.onnx.export dynamo=False, opset %d, "
            "inter_op 1, allow_spinning 0), OpenVINO CPU plugin (core.read_model on the same ONNX "
            "file, reshaped to the batch, INFERENCE_PRECISION_HINT=f32, INFERENCE_NUM_THREADS=t, "
            "PERFORMANCE_HINT=LATENCY, NUM_STREAMS=1, one infer request reused); tlrt checked "
            "against eager with assert_close float32 defaults (rtol 1.3e-6, atol 1e-5) with "
            "rewrites on and with TL_SESSION_EXACT, peers with rtol 1e-3 atol 1e-4; warm-up %d rounds, then round-robin rounds "
            "(rotating order) for >= %d rounds and >= %.1fs (max %d); times are medians "
            "in microseconds of wall clock per call including the Python call overhead "
            "(same for all four)" % (zoo.OPSET, args.warmup, args.min_iters, args.budget, args.max_iters)
        ),
        "memory_method": (
            "fresh subprocess per (model, runtime, batch), same imports in every "
            "child (torch, onnxruntime, numpy, libtlrt_c.so); value = peak RSS "
            "(VmHWM = what ru_maxrss reports, read from /proc/self/status because "
            "ru_maxrss inherits the parent's peak across fork+exec) after loading the "
            "model and 5 runs, minus the same right after the imports "
            "(idle_baseline_peak_MiB: an idle child with the same imports); threads 1; "
            "allocations served from heap pages the imports already touched do not "
            "show, so deltas under ~0.1 MiB read as 0"
        ),
        "idle_baseline_peak_MiB": base.get("peak_MiB"),
        "quick": bool(args.quick),
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
