#!/usr/bin/env python3
"""Write the figure tables of docs/benchmarks.md from bench/results/*.json.

Only the text between the markers
    <!-- BEGIN GENERATED: bench/report.py -->  and  <!-- END GENERATED -->
is replaced; the hand-written analysis around it stays.

  python bench/report.py [--results bench/results] [--doc docs/benchmarks.md]
"""
import argparse
import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- BEGIN GENERATED: bench/report.py -->"
END = "<!-- END GENERATED -->"
README_BEGIN = "<!-- BEGIN GENERATED: bench/report.py --readme -->"
README_END = "<!-- END GENERATED (README) -->"


def load(p):
    try:
        return json.loads(Path(p).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def rows(doc):
    return [b for b in (doc or {}).get("benchmarks", []) if not b.get("error_occurred")]


def f(v, nd=1):
    """Numbers for tables: 3 significant digits, no exponent for the usual ranges."""
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    a = abs(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return "%.3g" % v


def r2(v):
    return "-" if v is None else "%.2f" % v


def md_table(headers, body):
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in body]
    return "\n".join(out)


def cpu_flags_summary():
    try:
        flags = next(l for l in open("/proc/cpuinfo") if l.startswith("flags")).split(":")[1].split()
    except (OSError, StopIteration):
        return "?"
    keep = [x for x in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16", "amx_tile") if x in flags]
    return " ".join(keep)


def openblas_pkg():
    try:
        r = subprocess.run(["pkg-config", "--modversion", "openblas"], capture_output=True, text=True)
        return r.stdout.strip() or "?"
    except OSError:
        return "?"


PEERS = ("pytorch", "ort", "openvino")
PEER_LABEL = {"pytorch": "PyTorch", "ort": "ORT", "openvino": "OpenVINO", "tlrt": "tlrt"}


def compare_index(doc):
    """{(model, batch, threads): {runtime: entry}} over compare/ entries, failed ones included."""
    idx = {}
    for b in (doc or {}).get("benchmarks", []):
        if b["name"].startswith("compare/"):
            idx.setdefault((b["model"], b["batch"], b["num_threads"]), {})[b["runtime"]] = b
    return idx


def cell(e):
    if e is None:
        return "-"
    if e.get("error_occurred"):
        return "failed"
    return f(e["real_time"])


def layer_index(doc):
    return {(b["model"], b["batch"], b["num_threads"]): b for b in rows(doc) if b["name"].startswith("layers/")}


def why_slow(summary):
    """The slowest nodes of tlrt's per-node profile for one row, as text."""
    if not summary:
        return "no per-node profile for this row (bench/layers.py)"
    parts = []
    for n in summary.get("top_nodes", [])[:3]:
        gf = n.get("GFLOPS")
        fp = summary.get("fma_peak_GFLOPS")
        eff = (" %.0f GFLOP/s = %.0f%% of FMA peak" % (gf, 100 * gf / fp)) if (gf and fp) else \
            ((" %.0f GFLOP/s" % gf) if gf else "")
        parts.append("node %d %s%s %s %.0f%%%s" % (n["node"], n["kind"], (" " + n["conv"]) if n.get("conv") else "",
                                                  "x".join(map(str, n["shape"])), 100 * n["share"], eff))
    kinds = ", ".join("%s %.0f%%" % (k, 100 * x) for k, x in list(summary.get("time_share_by_kind", {}).items())[:3])
    return "slowest nodes: %s; time by op: %s" % ("; ".join(parts), kinds)


def peer_section(doc, lay, title, real=False):
    idx = compare_index(doc)
    if not idx:
        return []
    ctx = (doc or {}).get("context", {})
    L = layer_index(lay)
    out = ["\n### %s (median us per call, one process, interleaved)\n" % title]
    if ctx.get("quick"):
        out.append("*A `--quick` run (short timing, fewer batches) on %s at load average %s-%s: smoke-test "
                   "figures, not the measurement.*\n" % (ctx.get("date", "?"), ctx.get("loadavg_start", "?"),
                                                         ctx.get("loadavg_end", "?")))
    body, misses, acc = [], [], {}
    for (m, bt, t), d in idx.items():
        tl = d.get("tlrt")
        if tl is None or tl.get("error_occurred"):
            continue
        r = tl.get("ratio_vs_best_peer")
        rs = "-" if r is None else (("**%s**" % r2(r)) if r <= 1.0 else "%s miss" % r2(r))
        notes = []
        if tl.get("allow_rounding"):
            notes.append("--allow-rounding")
        if tl.get("recaptured_at_batch"):
            notes.append("captured at b%d" % bt)
        fails = ["%s: %s" % (PEER_LABEL[p], d[p].get("error_message", "")) for p in PEERS
                 if p in d and d[p].get("error_occurred")]
        notes += fails
        close = "yes" if tl.get("assert_close_f32") else "NO"
        if "assert_close_f32_exact" in tl:
            close += " / " + ("yes" if tl["assert_close_f32_exact"] else "NO")
        body.append([m, bt, t, f(tl["real_time"])] + [cell(d.get(p)) for p in PEERS] +
                    [PEER_LABEL.get(tl.get("best_peer"), "-"), rs, close, "; ".join(notes)])
        a = acc.setdefault(m, {"rw": 0.0, "ex": None, "ok": True, "ok_ex": True})
        a["rw"] = max(a["rw"], tl.get("max_abs_diff_vs_pytorch") or 0.0)
        if tl.get("max_abs_diff_exact_vs_pytorch") is not None:
            a["ex"] = max(a["ex"] or 0.0, tl["max_abs_diff_exact_vs_pytorch"])
        a["ok"] &= bool(tl.get("assert_close_f32"))
        a["ok_ex"] &= bool(tl.get("assert_close_f32_exact", True))
        if r is not None and r > 1.0:
            bp = d.get(tl.get("best_peer"), {})
            misses.append("- **%s batch %d threads %d**: tlrt %s us vs %s %s us (%.2fx): %s" % (
                m, bt, t, f(tl["real_time"]), PEER_LABEL.get(tl.get("best_peer")), f(bp.get("real_time")),
                r, why_slow(L.get((m, bt, t)))))
    out.append(md_table(["model", "batch", "threads", "tlrt", "PyTorch", "ORT", "OpenVINO", "best peer",
                         "tlrt/best peer", "assert_close f32 (rewrites / exact)", "note"], body))
    n_ok = sum(1 for r in body if r[8].startswith("**"))
    out.append("\n%d of %d rows meet tlrt/best-peer <= 1.0 (bold). Peers: %s. Method: %s." % (
        n_ok, len(body), ", ".join(PEER_LABEL[p] for p in PEERS), ctx.get("method", "")))
    probs = ctx.get("problems") or []
    if probs:
        out.append("\nProblems the run recorded (a failed peer is also shown in its row):\n")
        out.append("\n".join("- " + p.replace("|", "/") for p in probs[:40]))
        if len(probs) > 40:
            out.append("- ... %d more in the JSON's context.problems" % (len(probs) - 40))
    if real and acc:
        out.append("\n#### Accuracy against PyTorch eager (max abs error over the rows above)\n")
        out.append(md_table(["model", "max abs err, rewrites on", "max abs err, TL_SESSION_EXACT",
                             "assert_close f32 defaults (rewrites / exact)"],
                            [[m, "%.3g" % a["rw"], "-" if a["ex"] is None else "%.3g" % a["ex"],
                              "%s / %s" % ("pass" if a["ok"] else "FAIL", "pass" if a["ok_ex"] else "FAIL")]
                             for m, a in acc.items()]))
    if real:
        out.append("\n#### Rows that miss (tlrt/best-peer > 1.0) and why\n")
        out.append("\n".join(misses) if misses else "None: every row meets the target.")
        if misses:
            out.append("\nThe per-node profile is tlrt's TL_SESSION_PROFILE (bench/layers.py) for the same "
                       "(model, batch, threads); shares are of the sum of node medians.")
    return out


def layer_section(lay, title, per_row=3, min_mflop=1.0):
    lr = rows(lay)
    if not lr:
        return []
    ctx = lay.get("context", {})
    out = ["\n### %s (FMA peak %s GFLOP/s per thread)\n" % (title, f(ctx.get("fma_peak_GFLOPS_1thread")))]
    S = [b for b in lr if b["name"].startswith("layers/")]
    out.append(md_table(["model", "batch", "threads", "fastest run us", "model GFLOP/s", "% of FMA peak",
                         "GEMM share", "top op kinds by time"],
                        [[b["model"], b["batch"], b["num_threads"], f(b["real_time"]), f(b.get("model_GFLOPS")),
                          "-" if b.get("pct_of_fma_peak") is None else "%.0f%%" % b["pct_of_fma_peak"],
                          "%.0f%%" % (100 * b.get("gemm_share", 0)),
                          ", ".join("%s %.0f%%" % (k, 100 * x) for k, x in list(b.get("time_share_by_kind", {}).items())[:4])]
                         for b in S]))
    nodes = {}
    for b in lr:
        if b["name"].startswith("layer/") and b["flops"] >= min_mflop * 1e6:
            nodes.setdefault((b["model"], b["batch"], b["num_threads"]), []).append(b)
    body = []
    for v in nodes.values():
        for b in sorted(v, key=lambda e: -e["real_time"])[:per_row]:
            body.append([b["model"], b["batch"], b["num_threads"], "%d %s" % (b["node"], b["kind"]),
                         b.get("conv") or "", "x".join(map(str, b["shape"])), f(b["flops"] / 1e6), f(b["real_time"]),
                         "%.0f%%" % (100 * b.get("share", 0)), f(b["GFLOPS"]),
                         "-" if b.get("pct_of_fma_peak") is None else "%.0f%%" % b["pct_of_fma_peak"]])
    out.append("\nThe %d slowest linear / conv / matmul nodes of each row (>= %g MFLOP):\n" % (per_row, min_mflop))
    out.append(md_table(["model", "batch", "threads", "node", "conv (cin x cout, kernel, stride, groups)", "output",
                         "MFLOP", "median us", "share", "GFLOP/s", "% of FMA peak"], body))
    return out


def readme_summary(R):
    """The README's benchmark block: tlrt/best-peer of the realistic zoo as a model x (batch, threads)
    grid, and the rows that miss."""
    doc = load(R / "compare_real.json")
    idx = compare_index(doc)
    if not idx:
        return "(no bench/results/compare_real.json: run `bash scripts/bench.sh --zoo real --docs`)\n"
    ctx = doc.get("context", {})
    v = ctx.get("versions", {})
    models = list(dict.fromkeys(k[0] for k in idx))
    batches = sorted({k[1] for k in idx})
    threads = sorted({k[2] for k in idx})
    cols = [(b, t) for b in batches for t in threads]
    body, miss, n = [], [], 0
    for m in models:
        row = [m]
        for b, t in cols:
            tl = idx.get((m, b, t), {}).get("tlrt")
            r = (tl or {}).get("ratio_vs_best_peer")
            if r is None:
                row.append("")
                continue
            n += 1
            row.append(("**%.2f**" % r) if r <= 1.0 else "%.2f" % r)
            if r > 1.0:
                miss.append("%s b%d t%d (%.2fx %s)" % (m, b, t, r, PEER_LABEL.get(tl.get("best_peer"))))
        body.append(row)
    out = ["tlrt / best of (PyTorch eager, ONNX Runtime, OpenVINO), median per call, realistic zoo "
           "(bench/zoo_real.py); bold <= 1.0. %s, %s cores, torch %s, onnxruntime %s, openvino %s, %s, "
           "load average %s-%s%s:\n" % (ctx.get("cpu_model", "?"), ctx.get("num_cpus", "?"), v.get("torch", "?"),
                                         v.get("onnxruntime", "?"), v.get("openvino", "?"), str(ctx.get("date", "?")),
                                         ctx.get("loadavg_start", "?"), ctx.get("loadavg_end", "?"),
                                         " (a --quick smoke run)" if ctx.get("quick") else ""),
           md_table(["model"] + ["b%d t%d" % c for c in cols], body),
           "\n%d of %d rows meet the target (the others are the rows that miss). Why, per row, with tlrt's "
           "per-node profile: [docs/benchmarks.md](docs/benchmarks.md#rows-that-miss-tlrtbest-peer--10-and-why)."
           % (n - len(miss), n)]
    return "\n".join(out) + "\n"


def generate(R):
    tb, th, cmp_, lay = (load(R / n) for n in ("tlbench.json", "tlbench_haswell.json", "compare.json", "layers.json"))
    out = []
    # a --zoo real run has no base-zoo files: its own peaks and comparison describe the machine
    ctx = (tb or load(R / "tlbench_peaks.json") or {}).get("context", {})
    cctx = (cmp_ or load(R / "compare_real.json") or {}).get("context", {})
    v = cctx.get("versions", {})
    out.append("### Machine and versions\n")
    out.append(md_table(["", ""], [
        ["CPU (/proc/cpuinfo)", ctx.get("cpu_model", cctx.get("cpu_model", "?"))],
        ["cores / SIMD", "%s / %s" % (ctx.get("num_cpus", "?"), cpu_flags_summary())],
        ["caches (Google Benchmark)", ", ".join("L%d %s %dKiB" % (c["level"], c["type"][0], c["size"] // 1024)
                                                for c in ctx.get("caches", []))],
        ["OpenBLAS", "%s (pkg-config %s)" % (ctx.get("tl_blas_info", "?"), openblas_pkg())],
        ["torch / onnxruntime / numpy", "%s / %s / %s" % (v.get("torch", "?"), v.get("onnxruntime", "?"), v.get("numpy", "?"))],
        ["tlbench run", "%s, load average %s" % (ctx.get("date", "?"), " ".join("%.2f" % x for x in ctx.get("load_avg", [])))],
        ["compare run", "%s, load average %s at start, %s at end" % (cctx.get("date", "?"), cctx.get("loadavg_start", "?"), cctx.get("loadavg_end", "?"))],
    ]))
    # machine references
    K = {b["name"].replace("/real_time", ""): b for b in rows(tb)}
    H = {b["name"].replace("/real_time", ""): b for b in rows(th)}
    refs = []
    for n, lbl in (("peak/fma_avx512", "FP32 FMA peak, AVX-512, 1 thread"), ("peak/fma_avx2", "FP32 FMA peak, AVX2, 1 thread")):
        if n in K:
            refs.append([lbl, f(K[n]["GFLOPS"]) + " GFLOP/s"])
    for n, lbl in (("mem/triad/L2", "triad, L2-resident (3x256 KiB), 1 thread"), ("mem/triad/DRAM", "triad, 3x256 MiB, 1 thread"),
                   ("mem/triad/DRAM/threads:2", "triad, 3x256 MiB, 2 threads"), ("mem/memcpy/DRAM", "memcpy 256 MiB (read+write)")):
        if n in K:
            refs.append([lbl, f(K[n]["bytes_per_second"] / 1e9) + " GB/s"])
    if refs:
        out.append("\n### Machine references (roofline)\n")
        out.append(md_table(["measure", "value"], refs))
    sg = [(n, b) for n, b in K.items() if n.startswith("sgemm/")]
    if sg:
        pk = K.get("peak/fma_avx512", {}).get("GFLOPS")
        out.append("\n### tl_sgemm (C = A B^T, square n) by OpenBLAS core type\n")
        body = []
        for n, b in sorted(sg, key=lambda x: (int(x[0].split("/")[1]), x[0])):
            t = int(n.split("threads:")[1])
            hb = H.get(n, {}).get("GFLOPS")
            body.append([n.split("/")[1], t, f(b["GFLOPS"]), f(hb), r2(b["GFLOPS"] / hb) + "x" if hb else "-",
                         ("%.0f%%" % (100 * b["GFLOPS"] / (pk * t))) if pk else "-"])
        out.append(md_table(["n", "threads", "SkylakeX GFLOP/s", "Haswell GFLOP/s", "SkylakeX/Haswell", "SkylakeX % of FMA peak x threads"], body))
    shp = [(n, b) for n, b in K.items() if n.startswith("sgemm_shape/") or n.startswith("sgemv/")]
    if shp:
        best = max([b["GFLOPS"] for n, b in K.items() if n.startswith("sgemm/") and "threads:1" in n] or [0])
        out.append("\n### The zoo's layer GEMMs straight into OpenBLAS (1 thread, CPU time)\n")
        body = []
        for n, b in shp:
            mnk = "%dx%dx%d" % (b.get("M", 1), b.get("N", 1024), b.get("K", 1024))
            body.append([n, mnk, f(b["GFLOPS"]), ("%.0f%%" % (100 * b["GFLOPS"] / best)) if best else "-", f(b["cpu_time"] / 1e3)])
        out.append(md_table(["call", "MxNxK", "GFLOP/s", "% of best square sgemm", "us"], body))
    kern = [(n, b) for n, b in K.items() if n.startswith("kern/") and n.endswith("/262144")]
    if kern:
        out.append("\n### Kernels at n = 262144 floats (1 MiB per operand), GB/s of compulsory traffic\n")
        by = {}
        for n, b in kern:
            _, k, isa, _ = n.split("/")
            by.setdefault(k, {})[isa] = b["bytes_per_second"] / 1e9
        body = [[k, f(d.get("scalar")), f(d.get("avx2")), f(d.get("avx512")),
                 (f(d["avx512"] / d["scalar"]) + "x") if d.get("scalar") and d.get("avx512") else "-"]
                for k, d in by.items()]
        out.append(md_table(["kernel", "scalar", "avx2", "avx512", "avx512/scalar"], body))
    # comparison: the base zoo (compare.json) and the realistic zoo (compare_real.json)
    out += peer_section(cmp_, lay, "tlrt vs PyTorch eager vs ONNX Runtime vs OpenVINO, base zoo")
    real = load(R / "compare_real.json")
    lay_real = load(R / "layers_real.json")
    out += peer_section(real, lay_real, "Realistic zoo (bench/zoo_real.py): tlrt / best peer", real=True)
    out += layer_section(lay_real, "Realistic zoo: per-layer GFLOP/s of tlrt against the FMA peak")
    mr = [b for b in rows(cmp_) if b["name"].startswith("memory/")]
    if mr:
        out.append("\n### Peak memory (MiB over a process with the same imports)\n")
        idx = {}
        for b in mr:
            idx.setdefault((b["model"], b["batch"]), {})[b["runtime"]] = b.get("peak_rss_delta_MiB")
        body = [[m, bt, f(d.get("tlrt")), f(d.get("pytorch")), f(d.get("ort"))] for (m, bt), d in idx.items()]
        out.append(md_table(["model", "batch", "tlrt", "PyTorch", "ORT"], body))
        out.append("\nMethod: %s. Idle process with the same imports: %s MiB peak RSS." % (
            cctx.get("memory_method", ""), f(cctx.get("idle_baseline_peak_MiB"))))
    lr = rows(lay)
    if lr:
        lctx = lay.get("context", {})
        out.append("\n### tlrt per-layer GEMM efficiency (1 thread, per-node median over runs; sgemm rate %s GFLOP/s)\n"
                   % f(lctx.get("sgemm_peak_GFLOPS")))
        body = [[b["model"], b["batch"], "%d %s" % (b["node"], b["kind"]), str(b["shape"]), f(b["flops"] / 1e6),
                 f(b["real_time"]), f(b["GFLOPS"]), ("**%.0f%%**" if (b.get("pct_of_sgemm_peak") or 0) >= 85 else "%.0f%%")
                 % (b.get("pct_of_sgemm_peak") or 0)]
                for b in lr if b["name"].startswith("layer/") and b["flops"] >= 10e6]
        out.append(md_table(["model", "batch", "node", "output", "MFLOP", "median us", "GFLOP/s", "% of sgemm rate"], body))
        body = [[b["model"], b["batch"], f(b["real_time"]), f(b.get("sum_of_node_median_us")), "%.0f%%" % (100 * b.get("gemm_share", 0)),
                 ", ".join("%s %.0f%%" % (k, 100 * x) for k, x in list(b.get("time_share_by_kind", {}).items())[:4])]
                for b in lr if b["name"].startswith("layers/")]
        out.append("\nWhere the time goes (per model, batch, 1 thread):\n")
        out.append(md_table(["model", "batch", "fastest run us", "sum of node medians us", "GEMM share", "top op kinds by time"], body))
    mo = [(n, b) for n, b in K.items() if n.startswith("model/")]
    if mo:
        out.append("\n### tlbench: tl_session_run from C (no Python), real time\n")
        body = [[n.split("/")[1], int(b.get("batch", 0)), int(b.get("threads", 0)), f(b.get("latency_ms", 0) * 1e3), f(b.get("samples_per_s")),
                 f(b.get("arena_MiB")), "b64 capture" if b.get("recaptured") else ""] for n, b in mo]
        out.append(md_table(["model", "batch", "threads", "latency us", "samples/s", "arena MiB", "note"], body))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--readme", default=None, help="also rewrite README.md's generated benchmark block")
    a = ap.parse_args()
    if a.readme:
        rd = Path(a.readme)
        t = rd.read_text()
        if README_BEGIN in t and README_END in t:
            gen = readme_summary(Path(a.results))
            t = re.sub(re.escape(README_BEGIN) + ".*?" + re.escape(README_END),
                       lambda m: README_BEGIN + "\n" + gen + README_END, t, flags=re.S)
            rd.write_text(t)
            print("wrote", rd)
        else:
            print("report.py: %s has no %s ... %s block; left alone" % (rd, README_BEGIN, README_END))
    doc = Path(a.doc)
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\n%s\n%s\n" % (BEGIN, END)
    if BEGIN not in text or END not in text:
        text += "\n%s\n%s\n" % (BEGIN, END)
    gen = generate(Path(a.results))
    text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda m: BEGIN + "\n" + gen + END, text, flags=re.S)
    doc.write_text(text)
    print("wrote", doc)


if __name__ == "__main__":
    main()
