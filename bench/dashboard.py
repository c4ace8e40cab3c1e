#!/usr/bin/env python3
"""Static, self-contained HTML dashboard (inline SVG, no scripts, no network) from the JSON files
written by tlbench (Google Benchmark --benchmark_out) and bench/compare.py.

  python bench/dashboard.py [--results bench/results] [--out bench/results/dashboard.html]

Reads, when present:  tlbench.json (kernels, sgemm, machine peak, memory bandwidth, models),
tlbench_haswell.json (sgemm with TL_BLAS_CORETYPE=Haswell), compare.json (tlrt vs PyTorch vs ORT).
"""
import argparse
import html
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLORS = {"tlrt": "#d62728", "pytorch": "#1f77b4", "ort": "#2ca02c", "openvino": "#8c564b",
          "scalar": "#7f7f7f", "avx2": "#ff7f0e", "avx512": "#9467bd", "sgemm": "#d62728",
          "SkylakeX": "#9467bd", "Haswell": "#ff7f0e"}
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]


def esc(s):
    return html.escape(str(s), quote=True)


def load(path):
    p = Path(path)
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        return None


def ok_rows(doc):
    if not doc:
        return []
    return [b for b in doc.get("benchmarks", []) if not b.get("error_occurred")
            and b.get("run_type", "iteration") in ("iteration", "aggregate")
            and b.get("aggregate_name", "median") in ("median", "")]


def fmt(v, digits=3):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return "%.0f" % v
    if a >= 100:
        return "%.1f" % v
    if a >= 1:
        return "%.*g" % (digits, v)
    return "%.*g" % (digits, v)


# ----------------------------------------------------------------------------- SVG helpers
def nice_log_ticks(lo, hi):
    ticks = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo * 0.9999 <= v <= hi * 1.0001:
                ticks.append(v)
        e += 1
    if len(ticks) > 8:
        ticks = [t for t in ticks if abs(math.log10(t) - round(math.log10(t))) < 1e-9]
    return ticks


def nice_lin_ticks(hi):
    if hi <= 0:
        return [0]
    step = 10 ** math.floor(math.log10(hi / 5))
    for m in (1, 2, 5, 10):
        if hi / (m * step) <= 6:
            step *= m
            break
    return [i * step for i in range(int(hi / step) + 2) if i * step <= hi * 1.0001]


def tick_label(v):
    if v >= 1e6 or (0 < v < 1e-3):
        return "%.0e" % v
    if v >= 1:
        return "%g" % v
    return "%g" % float("%.3g" % v)


def bar_chart(title, groups, series, values, ylabel, log=True, hlines=(), width=1300, height=340,
              colors=None, annotate=True, rotate=False):
    """Grouped bars. values[(group, series)] -> number or None. hlines: (y, label, color)."""
    colors = colors or {}
    ml, mr, mt, mb = 60, 10, 26, (130 if rotate else 48)
    W, H = width - ml - mr, height - mt - mb
    vals = [v for v in values.values() if v is not None and v > 0]
    vals += [h[0] for h in hlines]
    if not vals or not groups:
        return '<p class="missing">%s: no data</p>' % esc(title)
    if log:
        lo = 10 ** math.floor(math.log10(min(vals) / 1.5))
        hi = 10 ** math.ceil(math.log10(max(vals) * 1.05))
        if hi / lo < 10:
            hi = lo * 10

        def y(v):
            v = max(v, lo)
            return mt + H - H * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        ticks = nice_log_ticks(lo, hi)
    else:
        lo, hi = 0.0, max(vals) * 1.1

        def y(v):
            return mt + H - H * (v - lo) / (hi - lo)
        ticks = nice_lin_ticks(hi)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" class="chart">' % (width, height),
           '<text x="%d" y="18" class="title">%s</text>' % (ml, esc(title))]
    for t in ticks:
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="gl"/>' % (ml, ml + W, y(t), y(t)))
        out.append('<text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>' % (ml - 5, y(t) + 4, tick_label(t)))
    out.append('<text transform="translate(16,%d) rotate(-90)" class="axis" text-anchor="middle">%s</text>' % (mt + H // 2, esc(ylabel)))
    gw = W / len(groups)
    bw = min(40, gw * 0.8 / max(1, len(series)))
    for gi, g in enumerate(groups):
        gx = ml + gi * gw + (gw - bw * len(series)) / 2
        for si, s in enumerate(series):
            v = values.get((g, s))
            if v is None or v <= 0:
                continue
            x = gx + si * bw
            yt = y(v)
            c = colors.get(s, PALETTE[si % len(PALETTE)])
            out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>'
                       % (x, yt, bw - 1, max(0.5, mt + H - yt), c, esc(g), esc(s), fmt(v)))
            if annotate and bw >= 16:
                out.append('<text x="%.1f" y="%.1f" class="val" text-anchor="middle">%s</text>'
                           % (x + bw / 2, yt - 3, fmt(v, 2)))
        label = str(g)
        if rotate:
            out.append('<text transform="translate(%.1f,%d) rotate(-60)" class="tick" text-anchor="end">%s</text>'
                       % (ml + gi * gw + gw / 2 + 3, mt + H + 8, esc(label)))
        else:
            out.append('<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>'
                       % (ml + gi * gw + gw / 2, mt + H + 14, esc(label)))
    for hv, hl, hc in hlines:
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="6,4" stroke-width="1.5"/>'
                   % (ml, ml + W, y(hv), y(hv), hc))
        out.append('<text x="%d" y="%.1f" class="tick" fill="%s" text-anchor="end">%s</text>' % (ml + W - 4, y(hv) - 4, hc, esc(hl)))
    out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" class="axisline"/>' % (ml, ml + W, mt + H, mt + H))
    # legend
    lx = ml
    for si, s in enumerate(series if (len(series) > 1 or not rotate) else []):
        c = colors.get(s, PALETTE[si % len(PALETTE)])
        out.append('<rect x="%d" y="%d" width="11" height="11" fill="%s"/>' % (lx, height - 16, c))
        out.append('<text x="%d" y="%d" class="legend">%s</text>' % (lx + 14, height - 7, esc(s)))
        lx += 30 + 8 * len(str(s))
    out.append("</svg>")
    return "\n".join(out)


def roofline(title, points, peak, bws, width=1300, height=520):
    """points: (ai, gflops, label, color); peak: (gflops, label); bws: [(GB/s, label, color)]."""
    ml, mr, mt, mb = 60, 150, 26, 40
    W, H = width - ml - mr, height - mt - mb
    if not points:
        return '<p class="missing">%s: no data</p>' % esc(title)
    xs = [p[0] for p in points]
    ys = [p[1] for p in points] + ([peak[0]] if peak else [])
    xlo = 10 ** math.floor(math.log10(min(xs + [0.05])))
    xhi = 10 ** math.ceil(math.log10(max(xs + [100])))
    ylo = 10 ** math.floor(math.log10(max(1e-3, min(ys))))
    yhi = 10 ** math.ceil(math.log10(max(ys) * 1.5))

    def X(v):
        return ml + W * (math.log10(v) - math.log10(xlo)) / (math.log10(xhi) - math.log10(xlo))

    def Y(v):
        v = min(max(v, ylo), yhi)
        return mt + H - H * (math.log10(v) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo))
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" class="chart">' % (width, height),
           '<text x="%d" y="18" class="title">%s</text>' % (ml, esc(title))]
    for t in nice_log_ticks(ylo, yhi):
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="gl"/>' % (ml, ml + W, Y(t), Y(t)))
        out.append('<text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>' % (ml - 5, Y(t) + 4, tick_label(t)))
    for t in nice_log_ticks(xlo, xhi):
        out.append('<line y1="%d" y2="%d" x1="%.1f" x2="%.1f" class="gl"/>' % (mt, mt + H, X(t), X(t)))
        out.append('<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>' % (X(t), mt + H + 16, tick_label(t)))
    out.append('<text x="%d" y="%d" class="axis" text-anchor="middle">arithmetic intensity (flop / byte)</text>' % (ml + W // 2, height - 8))
    out.append('<text transform="translate(16,%d) rotate(-90)" class="axis" text-anchor="middle">GFLOP/s</text>' % (mt + H // 2))
    # ceilings
    for gbs, label, c in bws:
        if not peak:
            continue
        ridge = peak[0] / gbs
        x0 = xlo
        x1 = min(ridge, xhi)
        out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>'
                   % (X(x0), Y(gbs * x0), X(x1), Y(gbs * x1), c))
        out.append('<text x="%.1f" y="%.1f" class="tick" fill="%s">%s</text>' % (X(x0) + 4, Y(gbs * x0 * 1.6) - 4, c, esc(label)))
    if peak:
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#000" stroke-width="2"/>' % (ml, ml + W, Y(peak[0]), Y(peak[0])))
        out.append('<text x="%d" y="%.1f" class="tick">%s</text>' % (ml + 6, Y(peak[0]) - 5, esc(peak[1])))
    legend = {}
    for ai, gf, label, c in points:
        out.append('<circle cx="%.1f" cy="%.1f" r="5" fill="%s" fill-opacity="0.85" stroke="#222" stroke-width="0.5"><title>%s: AI %.3g, %.3g GFLOP/s</title></circle>'
                   % (X(ai), Y(gf), c, esc(label), ai, gf))
        if label.startswith("sgemm") and ai == max(p[0] for p in points if p[2].startswith("sgemm")):
            out.append('<text x="%.1f" y="%.1f" class="val" text-anchor="end">%s</text>' % (X(ai) - 7, Y(gf) + 14, "sgemm n=256..1024"))
    for _ai, _gf, label, c in points:
        key = label.split(" ")[0] if not label.startswith("sgemm") else "tl_sgemm 1T"
        legend.setdefault(key, c)
    ly = mt + 10
    for k, c in legend.items():
        out.append('<circle cx="%d" cy="%d" r="5" fill="%s"/>' % (ml + W + 20, ly, c))
        out.append('<text x="%d" y="%d" class="legend">%s</text>' % (ml + W + 30, ly + 4, esc(k)))
        ly += 17
    out.append("</svg>")
    return "\n".join(out)


def table(headers, rows, cls=""):
    out = ['<table class="%s"><tr>%s</tr>' % (cls, "".join("<th>%s</th>" % esc(h) for h in headers))]
    for r in rows:
        out.append("<tr>%s</tr>" % "".join(
            '<td class="%s">%s</td>' % (c[1], esc(c[0])) if isinstance(c, tuple) else "<td>%s</td>" % esc(c)
            for c in r))
    out.append("</table>")
    return "\n".join(out)


# ----------------------------------------------------------------------------- sections
def parse_tlbench(doc):
    d = {"kern": {}, "sgemm": {}, "shape": {}, "sgemv": {}, "peak": {}, "mem": {}, "model": {}}
    for b in ok_rows(doc):
        name = b["name"].replace("/real_time", "")
        parts = name.split("/")
        if parts[0] == "kern" and len(parts) == 4:
            d["kern"][(parts[1], parts[2], int(parts[3]))] = b
        elif parts[0] == "sgemm":
            d["sgemm"][(int(parts[1]), int(parts[2].split(":")[1]))] = b
        elif parts[0] == "sgemm_shape":
            d["shape"][parts[1]] = b
        elif parts[0] == "sgemv":
            d["sgemv"][parts[1]] = b
        elif parts[0] == "peak":
            d["peak"][parts[1]] = b.get("GFLOPS")
        elif parts[0] == "mem":
            key = "/".join(parts[1:])
            d["mem"][key] = b.get("bytes_per_second", 0) / 1e9
        elif parts[0] == "model":
            d["model"][(parts[1], int(parts[2].split(":")[1]), int(parts[3].split(":")[1]))] = b
    return d


def coretype_of(doc, default):
    if not doc:
        return default
    ctx = doc.get("context", {})
    info = ctx.get("tl_blas_info", "")
    for ct in ("SkylakeX", "Haswell", "Zen", "Cooperlake", "SapphireRapids", "Sandybridge"):
        if ct.lower() in info.lower():
            return ct
    return ctx.get("TL_BLAS_CORETYPE") or default


def grid(*items):
    return '<div class="grid">%s</div>' % "".join('<div>%s</div>' % i for i in items)


def ordered(seq):
    out = []
    for x in seq:
        if x not in out:
            out.append(x)
    return out


RUNTIMES = ("tlrt", "pytorch", "ort", "openvino")
PEERS = ("pytorch", "ort", "openvino")


def real_zoo_sections(doc, lay, half):
    """The realistic zoo (compare_real.json, layers_real.json): the tlrt/best-peer table (green <= 1.0,
    red > 1.0), per-model latency bars of all four runtimes, per-layer GFLOP/s against the FMA peak."""
    parts = []
    entries = [b for b in (doc or {}).get("benchmarks", []) if b["name"].startswith("compare/")]
    if entries:
        idx = {}
        for b in entries:
            idx.setdefault((b["model"], b["batch"], b["num_threads"]), {})[b["runtime"]] = b
        rows, ratios = [], {}
        for (m, bt, t), d in idx.items():
            tl = d.get("tlrt")
            if not tl or tl.get("error_occurred"):
                continue
            r = tl.get("ratio_vs_best_peer")
            ratios[(m, "b%d/t%d" % (bt, t))] = r
            cells = []
            for p in PEERS:
                e = d.get(p)
                cells.append(("failed", "bad") if e and e.get("error_occurred") else fmt((e or {}).get("real_time")))
            close = ("yes" if tl.get("assert_close_f32") else "NO") + " / " + (
                "yes" if tl.get("assert_close_f32_exact") else ("NO" if "assert_close_f32_exact" in tl else "-"))
            note = "; ".join(([" --allow-rounding"] if tl.get("allow_rounding") else []) +
                             ["%s: %s" % (p, d[p].get("error_message", "")) for p in PEERS
                              if p in d and d[p].get("error_occurred")])
            rows.append([m, bt, t, fmt(tl["real_time"])] + cells +
                        [tl.get("best_peer") or "-", (fmt(r), "good" if r is not None and r <= 1.0 else "bad"),
                         (close, "good" if "NO" not in close else "bad"),
                         fmt(tl.get("max_abs_diff_vs_pytorch")), fmt(tl.get("max_abs_diff_exact_vs_pytorch")), note])
        n_ok = sum(1 for r in rows if r[8][1] == "good")
        parts.append("<h2>Realistic zoo: tlrt / best peer (green &le; 1.0, red &gt; 1.0): %d of %d rows</h2>"
                     % (n_ok, len(rows)))
        parts.append(table(["model", "batch", "threads", "tlrt us", "PyTorch us", "ORT us", "OpenVINO us",
                            "best peer", "tlrt/best peer", "assert_close f32 (rewrites / exact)",
                            "max |tlrt-eager|", "same, exact", "note"], rows))
        models = ordered(k[0] for k in idx)
        configs = ordered("b%d/t%d" % (k[1], k[2]) for k in sorted(idx, key=lambda k: (k[1], k[2])))
        parts.append(bar_chart("tlrt / best peer (log; dashed = 1.0)", models, configs, ratios, "ratio", log=True,
                               width=1360, height=300, annotate=False, hlines=[(1.0, "parity", "#d62728")]))
        charts = []
        for m in models:
            groups = ["b%d/t%d" % (k[1], k[2]) for k in sorted(k for k in idx if k[0] == m)]
            vals = {("b%d/t%d" % (k[1], k[2]), rt): e["real_time"] for k, d in idx.items() if k[0] == m
                    for rt, e in d.items() if not e.get("error_occurred")}
            charts.append(bar_chart("%s: median us per call (log)" % m, groups, list(RUNTIMES), vals, "microseconds",
                                    log=True, colors=COLORS, width=half, height=260, annotate=False))
        parts.append(grid(*charts))
        parts.append('<p class="note">%s</p>' % esc((doc.get("context") or {}).get("method", "")))
    lr = ok_rows(lay)
    if lr:
        ctx = lay.get("context", {})
        fp = ctx.get("fma_peak_GFLOPS_1thread")
        sums = [b for b in lr if b["name"].startswith("layers/")]
        parts.append("<h2>Realistic zoo: tlrt per-layer GFLOP/s vs the FMA peak (%s GFLOP/s per thread)</h2>" % fmt(fp))
        parts.append(table(["model", "batch", "threads", "fastest run us", "GFLOP/s", "% of FMA peak", "GEMM time",
                            "time by op kind (top 4)", "slowest node"],
                           [[b["model"], b["batch"], b["num_threads"], fmt(b["real_time"]), fmt(b.get("model_GFLOPS")),
                             fmt(b.get("pct_of_fma_peak")), "%.0f%%" % (100 * b.get("gemm_share", 0)),
                             ", ".join("%s %.0f%%" % (k, 100 * v) for k, v in list(b.get("time_share_by_kind", {}).items())[:4]),
                             "; ".join("#%d %s %.0f%%" % (n["node"], n["kind"], 100 * n["share"])
                                       for n in b.get("top_nodes", [])[:2])] for b in sums]))
        nodes = {}
        for b in lr:
            if b["name"].startswith("layer/") and b["flops"] >= 1e6 and b.get("pct_of_fma_peak") is not None:
                nodes.setdefault((b["model"], b["batch"], b["num_threads"]), []).append(b)
        groups, vals = [], {}
        for (m, bt, t), v in nodes.items():
            if t != 1:
                continue
            for b in sorted(v, key=lambda e: -e["real_time"])[:3]:
                g = "%s b%d #%d %s" % (m, bt, b["node"], b["kind"])
                groups.append(g)
                vals[(g, "% of FMA peak")] = b["pct_of_fma_peak"]
        if groups:
            parts.append(bar_chart("the 3 slowest GEMM nodes (>= 1 MFLOP) of each row, 1 thread: % of the FMA peak",
                                   groups, ["% of FMA peak"], vals, "%", log=False, width=1360, height=340,
                                   annotate=False, colors={"% of FMA peak": "#9467bd"}, rotate=True,
                                   hlines=[(100, "FMA peak", "#d62728")]))
    return parts


def _cell(v):
    if isinstance(v, float):
        return fmt(v)
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))[:120]
    return v


def generic_tables(obj, title):
    """Render any JSON as tables: a list of row objects -> one table (columns = union of keys); a dict of
    row objects -> one table with a key column; a dict holding such lists -> one table each; scalars ->
    a key/value table."""
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        cols = ordered(k for r in obj for k in r)
        return ["<h3>%s</h3>" % esc(title) if title else "",
                table(cols, [[_cell(r.get(c, "")) for c in cols] for r in obj])]
    if isinstance(obj, dict):
        if obj and all(isinstance(v, dict) for v in obj.values()) and not any(
                isinstance(x, (dict, list)) and x and isinstance(next(iter(x)) if isinstance(x, list) else None, dict)
                for v in obj.values() for x in v.values()):
            cols = ordered(k for v in obj.values() for k in v)
            return ["<h3>%s</h3>" % esc(title) if title else "",
                    table([""] + cols, [[k] + [_cell(v.get(c, "")) for c in cols] for k, v in obj.items()])]
        out, scal = [], []
        for k, v in obj.items():
            if isinstance(v, (list, dict)) and v:
                out += generic_tables(v, k)
            else:
                scal.append([k, _cell(v)])
        if scal:
            out = [table(["", ""], scal, "kv")] + out
        return out
    return [table(["value"], [[_cell(obj)]])]


def accuracy_section(path):
    """docs/accuracy.json (written by the accuracy benchmark, when present), rendered generically."""
    doc = load(path)
    if doc is None:
        return []
    return ["<h2>Accuracy: tlrt float32 and PyTorch float32 against float64 (docs/accuracy.json)</h2>"] + \
        generic_tables(doc, "")


def build(results_dir):
    R = Path(results_dir)
    tb = load(R / "tlbench.json")
    tbh = load(R / "tlbench_haswell.json")
    cmp_ = load(R / "compare.json")
    lay = load(R / "layers.json")
    K = parse_tlbench(tb)
    KH = parse_tlbench(tbh)
    parts = []
    ctx = (tb or {}).get("context", {})
    cctx = (cmp_ or {}).get("context", {})
    vers = cctx.get("versions", {})
    HALF = 680
    peak1 = K["peak"].get("fma_avx512") or K["peak"].get("fma_avx2")
    sg_peak = max([b.get("GFLOPS", 0) for (n, t), b in K["sgemm"].items() if t == 1] or [0]) or None
    machine = [
        ("CPU", ctx.get("cpu_model") or cctx.get("cpu_model", "?")),
        ("CPUs / MHz", "%s / %s" % (ctx.get("num_cpus") or cctx.get("num_cpus", "?"), ctx.get("mhz_per_cpu", "?"))),
        ("tlrt kernel ISA", ctx.get("tl_best_isa", "?")),
        ("OpenBLAS", ctx.get("tl_blas_info", "?")),
        ("torch / onnxruntime", "%s / %s" % (vers.get("torch", "?"), vers.get("onnxruntime", "?"))),
        ("FP32 FMA peak, 1 thread", (fmt(peak1) + " GFLOP/s") if peak1 else "-"),
        ("tl_sgemm best, 1 thread", (fmt(sg_peak) + " GFLOP/s") if sg_peak else "-"),
        ("DRAM triad, 1 thread", (fmt(K["mem"].get("triad/DRAM")) + " GB/s") if K["mem"].get("triad/DRAM") else "-"),
        ("dates (tlbench / compare)", "%s / %s" % (str(ctx.get("date", "-"))[:16], str(cctx.get("date", "-"))[:16])),
        ("load average (compare start / end)", "%s / %s" % (cctx.get("loadavg_start", "-"), cctx.get("loadavg_end", "-"))),
    ]
    crow = [b for b in ok_rows(cmp_) if b["name"].startswith("compare/")]
    # headline: batch 1, 1 thread, small models; large layers vs the sgemm peak
    head = []
    small = [b for b in crow if b["runtime"] == "tlrt" and b["batch"] == 1 and b["num_threads"] == 1
             and b.get("size", "small") == "small"]
    for b in small:
        rp, ro = b.get("ratio_vs_pytorch"), b.get("ratio_vs_ort")
        head.append([b["model"], fmt(b["real_time"]),
                     (fmt(ro), "good" if ro is not None and ro <= 0.5 else "bad"),
                     (fmt(rp), "good" if rp is not None and rp <= 0.1 else "bad")])
    lrows = [b for b in ok_rows(lay) if b["name"].startswith("layer/")]
    left = "<h2>Machine</h2>" + table(["", ""], machine, "kv")
    right = ("<h2>Headline: small models, batch 1, 1 thread (targets: &le;0.5x ORT, &le;0.1x PyTorch)</h2>" +
             table(["model", "tlrt us", "tlrt/ORT", "tlrt/PyTorch"], head)) if head else ""
    big = [b for b in lrows if b["flops"] >= 50e6 and b.get("pct_of_sgemm_peak")]
    if big:
        if True:
            bestp = max(b["pct_of_sgemm_peak"] for b in big)
            medp = sorted(b["pct_of_sgemm_peak"] for b in big)[len(big) // 2]
            right += ('<p class="note">large GEMM layers (&ge;50 MFLOP, %d of them): median %.0f%%, best %.0f%% '
                      'of the tl_sgemm 1-thread rate (target &ge;85%%)</p>' % (len(big), medp, bestp))
    parts.append(grid(left, right))
    parts += real_zoo_sections(load(R / "compare_real.json"), load(R / "layers_real.json"), HALF)
    parts += accuracy_section(ROOT / "docs" / "accuracy.json")

    # ---- comparison
    if crow:
        models = ordered(b["model"] for b in crow)
        configs = sorted({(b["batch"], b["num_threads"]) for b in crow})
        parts.append("<h2>Base zoo: tlrt vs PyTorch eager vs ONNX Runtime vs OpenVINO (median latency per call)</h2>")
        series = ["b%d/t%d" % c for c in configs]
        charts = []
        for key, target, lbl in (("ratio_vs_ort", 0.5, "tlrt / ORT"), ("ratio_vs_pytorch", 0.1, "tlrt / PyTorch")):
            vals = {}
            for b in crow:
                if b["runtime"] == "tlrt" and key in b:
                    vals[(b["model"], "b%d/t%d" % (b["batch"], b["num_threads"]))] = b[key]
            charts.append(bar_chart("%s latency ratio (log; dashed red = target %.1fx)" % (lbl, target), models,
                                    series, vals, "ratio", log=True, width=HALF, height=300, annotate=False,
                                    hlines=[(target, "target", "#d62728"), (1.0, "parity", "#444")]))
        parts.append(grid(*charts))
        charts = []
        for (bt, th) in configs:
            vals = {(b["model"], b["runtime"]): b["real_time"] for b in crow
                    if b["batch"] == bt and b["num_threads"] == th}
            charts.append(bar_chart("batch %d, %d thread%s: median us (log)" % (bt, th, "s" if th > 1 else ""),
                                    models, ["tlrt", "pytorch", "ort", "openvino"], vals, "microseconds", log=True,
                                    colors=COLORS, width=HALF, height=280, annotate=False))
        parts.append(grid(*charts))
        parts.append('<p class="note">%s</p>' % esc(cctx.get("method", "")))

    # ---- roofline + core types side by side
    charts = []
    if K["kern"] or K["sgemm"]:
        pts = []
        sizes = sorted({k[2] for k in K["kern"]})
        for (kern, isa, n), b in sorted(K["kern"].items()):
            if "GFLOPS" in b and "AI" in b and b["GFLOPS"] > 0:
                pts.append((b["AI"], b["GFLOPS"], "%s %s n=%d" % (isa, kern, n), COLORS.get(isa, "#333")))
        for (n, t), b in sorted(K["sgemm"].items()):
            if t == 1 and "GFLOPS" in b:
                pts.append((b["AI"], b["GFLOPS"], "sgemm %d" % n, COLORS["sgemm"]))
        bws = []
        if "triad/DRAM" in K["mem"]:
            bws.append((K["mem"]["triad/DRAM"], "DRAM %.0f GB/s" % K["mem"]["triad/DRAM"], "#1f77b4"))
        if "triad/L2" in K["mem"]:
            bws.append((K["mem"]["triad/L2"], "L2 %.0f GB/s" % K["mem"]["triad/L2"], "#17becf"))
        charts.append(roofline("roofline, 1 thread (kernels at n=%s floats)" % "/".join(map(str, sizes)), pts,
                               (peak1, "FMA peak %.0f GFLOP/s" % peak1) if peak1 else None, bws,
                               width=HALF, height=380))
    if K["sgemm"]:
        ct1 = coretype_of(tb, "default")
        ct2 = coretype_of(tbh, "Haswell")
        groups = ["n=%d %dT" % k for k in sorted(K["sgemm"])]
        vals = {}
        for k, b in K["sgemm"].items():
            vals[("n=%d %dT" % k, ct1)] = b.get("GFLOPS")
        for k, b in KH["sgemm"].items():
            vals[("n=%d %dT" % k, ct2)] = b.get("GFLOPS")
        hl = [(peak1, "1T FMA peak", "#000"), (2 * peak1, "2T peak", "#555")] if peak1 else []
        charts.append(bar_chart("tl_sgemm GFLOP/s by OpenBLAS core type", groups, [ct1, ct2], vals, "GFLOP/s",
                                log=False, hlines=hl, colors=COLORS, width=HALF, height=380))
    if charts:
        parts.append("<h2>Kernels: roofline and OpenBLAS core type</h2>")
        parts.append(grid(*charts))

    # ---- per-layer efficiency
    if lrows:
        lctx = lay.get("context", {})
        lpeak = lctx.get("sgemm_peak_GFLOPS")
        parts.append("<h2>tlrt GEMM layers vs the sgemm rate (1 thread, per-node median time)</h2>")
        big = [b for b in lrows if b["flops"] >= 1e6]
        groups = ["%s b%d #%d %s" % (b["model"], b["batch"], b["node"], b["kind"]) for b in big]
        vals = {(g, "% of sgemm rate"): b.get("pct_of_sgemm_peak") for g, b in zip(groups, big, strict=True)}
        parts.append(bar_chart("GEMM layers of >= 1 MFLOP: %% of the tl_sgemm 1-thread rate (%s GFLOP/s); dashed = 85%% target"
                               % fmt(lpeak), groups, ["% of sgemm rate"], vals, "%", log=False, width=1360,
                               height=330, hlines=[(85, "85% target", "#d62728")], annotate=False,
                               colors={"% of sgemm rate": "#9467bd"}, rotate=True))
        mods = [b for b in ok_rows(lay) if b["name"].startswith("layers/")]
        rows = []
        for b in mods:
            share = ", ".join("%s %.0f%%" % (k, 100 * v) for k, v in list(b.get("time_share_by_kind", {}).items())[:4])
            rows.append([b["model"], b["batch"], fmt(b["real_time"]), fmt(b.get("sum_of_node_median_us")),
                         fmt(b.get("model_GFLOPS")), fmt(b.get("pct_of_sgemm_peak")), "%.0f%%" % (100 * b.get("gemm_share", 0)),
                         share])
        parts.append(table(["model", "batch", "fastest run us", "sum of node medians us", "GFLOP/s", "% of sgemm",
                            "GEMM time", "time by op kind (top 4)"], rows))
    if K["shape"] or K["sgemv"]:
        rows = []
        for k, b in K["shape"].items():
            rows.append(["tl_sgemm " + k, "%dx%dx%d" % (b.get("M", 0), b.get("N", 0), b.get("K", 0)), fmt(b.get("GFLOPS")),
                         ("%.0f%%" % (100 * b["GFLOPS"] / sg_peak)) if sg_peak else "-", fmt(b["cpu_time"] / 1e3)])
        for k, b in K["sgemv"].items():
            rows.append(["cblas_sgemv " + k, "1024x1024", fmt(b.get("GFLOPS")),
                         ("%.0f%%" % (100 * b["GFLOPS"] / sg_peak)) if sg_peak else "-", fmt(b["cpu_time"] / 1e3)])
        parts.append("<h3>The same GEMM shapes straight into tl_sgemm (1 thread, CPU time)</h3>" +
                     table(["call", "MxNxK", "GFLOP/s", "% of square sgemm", "us"], rows))

    # ---- comparison table + memory
    if crow:
        rows = []
        for b in crow:
            if b["runtime"] != "tlrt":
                continue
            others = {o["runtime"]: o for o in crow if o["model"] == b["model"] and o["batch"] == b["batch"]
                      and o["num_threads"] == b["num_threads"]}
            rp, ro = b.get("ratio_vs_pytorch"), b.get("ratio_vs_ort")
            rows.append([b["model"], b["batch"], b["num_threads"], fmt(b["real_time"]),
                         fmt(others.get("pytorch", {}).get("real_time")), fmt(others.get("ort", {}).get("real_time")),
                         (fmt(ro), "good" if ro <= 0.5 else ("warn" if ro <= 1 else "bad")),
                         (fmt(rp), "good" if rp <= 0.1 else ("warn" if rp <= 1 else "bad")),
                         "yes" if b.get("agree") else "NO", fmt(b.get("max_abs_diff_vs_pytorch")),
                         "yes" if b.get("recaptured_at_batch") else ""])
        parts.append("<h2>All comparison figures</h2>")
        parts.append(table(["model", "batch", "threads", "tlrt us", "PyTorch us", "ORT us", "tlrt/ORT",
                            "tlrt/PyTorch", "agree", "max |tlrt-torch|", "batch-64 capture"], rows))
        probs = cctx.get("problems") or []
        if probs:
            parts.append('<p class="bad">problems: %s</p>' % "<br>".join(esc(p) for p in probs))
    mrow = [b for b in ok_rows(cmp_) if b["name"].startswith("memory/")]
    if mrow:
        charts = []
        models = ordered(b["model"] for b in mrow)
        for bt in sorted({b["batch"] for b in mrow}):
            vals = {(b["model"], b["runtime"]): max(b.get("peak_rss_delta_MiB", 0), 0.05)
                    for b in mrow if b["batch"] == bt}
            charts.append(bar_chart("peak RSS over the imports, batch %d (MiB, log; 0 shown as 0.05)" % bt,
                                    models, ["tlrt", "pytorch", "ort"], vals, "MiB", log=True, colors=COLORS,
                                    width=HALF, height=280, annotate=False))
        parts.append("<h2>Peak memory</h2>" + grid(*charts))
        parts.append('<p class="note">%s</p>' % esc(cctx.get("memory_method", "")))

    # ---- kernels by ISA
    if K["kern"]:
        sizes = sorted({k[2] for k in K["kern"]})
        kerns = ordered(k[0] for k in K["kern"])
        n_mid = sizes[len(sizes) // 2]
        vals = {(k[0], k[1]): b.get("bytes_per_second", 0) / 1e9 for k, b in K["kern"].items() if k[2] == n_mid}
        parts.append("<h2>Kernels by ISA</h2>")
        parts.append(bar_chart("kernel throughput at n=%d floats (GB/s of compulsory traffic, log)" % n_mid,
                               kerns, ["scalar", "avx2", "avx512"], vals, "GB/s", log=True, colors=COLORS,
                               annotate=False, width=1360, height=300))
        rows = []
        for kern in kerns:
            for n in sizes:
                s = K["kern"].get((kern, "scalar", n))
                r = [kern, n]
                for isa in ("scalar", "avx2", "avx512"):
                    b = K["kern"].get((kern, isa, n))
                    r.append(fmt(b["bytes_per_second"] / 1e9) if b else "-")
                for isa in ("avx2", "avx512"):
                    b = K["kern"].get((kern, isa, n))
                    r.append(fmt(b["bytes_per_second"] / s["bytes_per_second"]) + "x" if (b and s) else "-")
                rows.append(r)
        parts.append(table(["kernel", "n", "scalar GB/s", "avx2 GB/s", "avx512 GB/s", "avx2 speedup",
                            "avx512 speedup"], rows))
        rows = [[k, fmt(v) + " GFLOP/s"] for k, v in K["peak"].items()]
        rows += [["%s %s" % tuple(k.split("/")[:2]) + (" (2 threads)" if "threads" in k else " (1 thread)"),
                  fmt(v) + " GB/s"] for k, v in K["mem"].items()]
        parts.append(table(["machine reference", "value"], rows, "kv"))
    if K["sgemm"]:
        ct1, ct2 = coretype_of(tb, "default"), coretype_of(tbh, "Haswell")
        rows = []
        for k in sorted(K["sgemm"]):
            a = K["sgemm"][k].get("GFLOPS")
            b = KH["sgemm"].get(k, {}).get("GFLOPS")
            pk = peak1 * k[1] if peak1 else None
            rows.append([k[0], k[1], fmt(a), fmt(b), fmt(a / b) + "x" if (a and b) else "-",
                         ("%.0f%%" % (100 * a / pk)) if (a and pk) else "-"])
        parts.append(table(["sgemm n", "threads", "%s GFLOP/s" % ct1, "%s GFLOP/s" % ct2, "ratio",
                            "%s %% of FMA peak" % ct1], rows))

    # ---- tlbench models
    if K["model"]:
        parts.append("<h2>tlbench: models through the C API (no Python)</h2>")
        rows = [[k[0], k[1], k[2], fmt(b.get("latency_ms", 0) * 1e3), fmt(b.get("samples_per_s")),
                 fmt(b.get("arena_MiB")), fmt(b.get("params_MiB")), "yes" if b.get("recaptured") else ""]
                for k, b in sorted(K["model"].items())]
        parts.append(table(["model", "batch", "threads", "latency us", "samples/s", "arena MiB", "params MiB",
                            "batch-64 capture"], rows))

    css = """
body{font-family:DejaVu Sans,Arial,sans-serif;margin:14px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:14px 0 4px;border-bottom:1px solid #ccc}
h3{font-size:14px;margin:10px 0 4px}
.grid{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start} .grid>div{flex:0 0 auto;max-width:690px}
.chart{display:block;margin:2px 0}
.title{font-size:13px;font-weight:bold} .tick{font-size:10px;fill:#333} .axis{font-size:11px}
.val{font-size:9px;fill:#333} .legend{font-size:11px}
.gl{stroke:#e4e4e4} .axisline{stroke:#333}
table{border-collapse:collapse;font-size:11px;margin:4px 0}
td,th{border:1px solid #ccc;padding:1px 6px;text-align:right} th{background:#f2f2f2}
table.kv td{text-align:left}
.good{background:#d8f5d0} .warn{background:#fff3c4} .bad{background:#f9d0d0}
.note{font-size:11px;color:#555;max-width:1360px;margin:2px 0} .missing{color:#a00}
"""
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>tlrt benchmarks</title><style>%s</style></head>"
            "<body><h1>tlrt benchmark dashboard</h1>"
            "<p class='note'>bench/dashboard.py from bench/results/*.json (bash scripts/bench.sh). "
            "Targets: batch-1 latency &le; 0.5x ONNX Runtime and &le; 0.1x PyTorch eager on the small models; "
            "&ge; 85%% of the sgemm peak on large linear/conv layers.</p>%s</body></html>") % (css, "\n".join(parts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    out = Path(a.out or Path(a.results) / "dashboard.html")
    out.write_text(build(a.results))
    print("wrote", out)


if __name__ == "__main__":
    main()
