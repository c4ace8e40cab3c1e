"""Error vs float64 for every zoo model: tlrt float32 and PyTorch float32 side by side.

Captures each model (tests/zoo via tests/py/zoo_util.ZOO, plus the deep models ResNet-18 at
1x3x224x224 and SqueezeNet at 1x3x64x64 with a 4x normal input), runs `tldiff --per-node --json`
on the capture's example input, and writes
  docs/accuracy.json  one record per model and output (the numbers tldiff reported: max abs,
                      max rel, max ULP and norm of tlrt-f32 and pytorch-f32 vs the emitted module in
                      float64; the f64 rule's bound and verdict; the worst node's tlrt/pytorch ratio;
                      tlrt float64's agreement with PyTorch float64, per output and its worst node;
                      the time of a float64 run relative to float32, tlrun --repeat)
  docs/accuracy.md    the same as a table.
usage: .venv/bin/python scripts/accuracy_table.py [BUILD_DIR]   (default build; needs torch)
Timing: tlrun --threads 1 --repeat N on the example input, float32 (the default plan) and
--dtype float64, OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset; the minimum of the N runs. Set
TL_ACC_REPEAT to change N (default 200; 10 for the deep models)."""
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "py"))
import zoo_util as Z  # noqa: E402

# name: (file, class, shape, capture flags, input scale)
DEEP = {
    "resnet18@224": ("resnet18.py", "ResNet18", [1, 3, 224, 224], [], 1.0),
    "squeezenet@64": ("squeezenet.py", "SqueezeNet", [1, 3, 64, 64], [], 4.0),
}


def models():
    for name, (f, cls, shape) in Z.ZOO.items():
        yield name, f, cls, shape, Z.ROUNDED.get(name, []), 1.0
    for name, (f, cls, shape, flags, scale) in DEEP.items():
        yield name, f, cls, shape, flags, scale


def tlrun_ms(build, d, repeat, *extra):
    """min and median of tlrun --repeat, in ms (one thread: the least sensitive to a shared machine)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    r = subprocess.run([str(build / "tlrun"), str(d / "graph.json"), str(d / "params.bin"), str(d / "ex" / "input.npy"),
                        "--threads", "1", "--repeat", str(repeat), *extra], capture_output=True, text=True, env=env)
    m = re.search(r"repeat \d+: min ([0-9.e+-]+) ms, median ([0-9.e+-]+) ms", r.stdout)
    if r.returncode != 0 or not m:
        raise SystemExit(f"{d.name}: tlrun {' '.join(extra)} failed: {r.stderr.strip()}")
    return float(m.group(1)), float(m.group(2))


def timing(build, d, deep):
    n = int(os.environ.get("TL_ACC_REPEAT", "10" if deep else "200"))
    f32 = tlrun_ms(build, d, n)
    f64 = tlrun_ms(build, d, n, "--dtype", "float64")
    return {"repeat": n, "threads": 1, "f32_min_ms": f32[0], "f32_median_ms": f32[1], "f64_min_ms": f64[0],
            "f64_median_ms": f64[1], "f64_over_f32": f64[0] / f32[0]}


def run(build, name, f, cls, shape, flags, scale, tmp):
    d = Path(tmp) / name.replace("@", "_")
    d.mkdir(parents=True)
    x = (np.random.default_rng(11).standard_normal(shape) * scale).astype(np.float32)
    np.save(d / "x.npy", x)
    r = subprocess.run([sys.executable, str(Z.SCRIPT), str(Z.ZOO_DIR / f), cls, str(d / "graph.json"),
                        "--example-input", str(d / "x.npy"), "--save-example", str(d / "ex"), *flags],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{name}: capture failed: {r.stderr.strip()}")
    rep = d / "r.json"
    env = dict(os.environ, TL_PYTHON=sys.executable)
    env.pop("TL_TEST_PLANT_BUG", None)
    r = subprocess.run([str(build / "tldiff"), str(d / "graph.json"), str(d / "params.bin"),
                        str(d / "ex" / "input.npy"), "--per-node", "--json", str(rep)],
                       capture_output=True, text=True, env=env)
    if r.returncode not in (0, 1) or not rep.exists():
        raise SystemExit(f"{name}: tldiff failed: {r.stderr.strip()}")
    j = json.loads(rep.read_text())
    nodes = j["inputs"][0]["nodes"]
    t = timing(build, d, name in DEEP)
    na = j["nodes_float64_agreement"]
    if not na["available"]:
        raise SystemExit(f"{name}: tlrt float64 unavailable: {na['reason']}")
    w64 = na["worst_node"]
    worst = max(nodes, key=lambda n: n["vs_float64"]["tlrt_f32"]["max_abs"] / n["vs_float64"]["bound"]
                if n["vs_float64"]["bound"] > 0 else 0.0)
    out = []
    for o in j["inputs"][0]["outputs"]:
        v = o["vs_float64"]
        out.append({
            "model": name, "input_shape": shape, "output": o["index"], "shape": o["shape"],
            "tlrt_f32": v["tlrt_f32"], "pytorch_f32": v["pytorch_f32"], "bound": v["bound"],
            "pass": v["pass"],
            "worst_node": {"id": worst["id"], "tag": worst["tag"],
                           "tlrt_max_abs": worst["vs_float64"]["tlrt_f32"]["max_abs"],
                           "pytorch_max_abs": worst["vs_float64"]["pytorch_f32"]["max_abs"],
                           "bound": worst["vs_float64"]["bound"]},
            "nodes_diverging": sum(not n["stats"]["pass"] for n in nodes), "nodes": len(nodes),
            # the per-element atol/rtol rule (tldiff --rule atol) would flag these nodes
            "nodes_atol_flags": sum(n["stats"]["mismatches"] > 0 for n in nodes),
            # tlrt float64 vs PyTorch float64 (the emitted module in float64): max ULP in float64 ULPs
            "tlrt_f64_vs_pytorch_f64": o["float64_agreement"]["tlrt_f64_vs_pytorch_f64"],
            "f64_worst_node": {"id": w64["id"], "tag": w64["tag"], "rel_to_max": w64["rel_to_max"],
                               "max_ulp64": w64["tlrt_f64_vs_pytorch_f64"]["max_ulp"]},
            "time": t,
            # the same as scalars, for the dashboard's generic table (it shows nested objects truncated)
            "f64_vs_pytorch_f64_max_rel": o["float64_agreement"]["tlrt_f64_vs_pytorch_f64"]["max_rel"],
            "f64_over_f32_time": t["f64_over_f32"],
        })
    return out, j["config"]


def g(v):
    return f"{v:.3g}" if isinstance(v, (int, float)) else str(v)


def main(argv):
    build = Path(argv[1]) if len(argv) > 1 else ROOT / "build"
    rows, cfg = [], None
    with tempfile.TemporaryDirectory(prefix="tlrt.acc.") as tmp:
        for m in models():
            got, cfg = run(build, *m, tmp)
            rows += got
            print(f"{m[0]}: done", file=sys.stderr)
    doc = {"about": "error vs float64 (the emitted module run in float64) of tlrt float32 and PyTorch float32 "
                    "(the emitted module in float32), per zoo model output; tlrt float64 vs PyTorch float64 "
                    "(max_ulp in float64 ULPs); the time of a float64 tlrun relative to float32; "
                    "tldiff --per-node --json, tlrun --repeat, scripts/accuracy_table.py",
           "timing": {"machine": os.environ.get("TL_ACC_MACHINE", f"{os.cpu_count()} cores, shared with other jobs"),
                      "how": "tlrun --threads 1 --repeat N, min of N; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset"},
           "rule": {"name": cfg["rule"], "k": cfg["f64_k"], "floor_ulps": cfg["f64_floor_ulps"]},
           "rows": rows}
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "accuracy.json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = ["| model | output | tlrt max abs | pytorch max abs | tlrt max ULP | pytorch max ULP | tlrt norm | "
             "pytorch norm | worst node: tlrt / pytorch max abs (bound) | nodes diverging (f64 rule) | "
             "nodes flagged by --rule atol |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t, p, w = r["tlrt_f32"], r["pytorch_f32"], r["worst_node"]
        lines.append(f"| {r['model']} | {r['output']} {r['shape']} | {g(t['max_abs'])} | {g(p['max_abs'])} | "
                     f"{g(t['max_ulp'])} | {g(p['max_ulp'])} | {g(t['norm'])} | {g(p['norm'])} | "
                     f"{w['id']} ({w['tag']}): {g(w['tlrt_max_abs'])} / {g(w['pytorch_max_abs'])} "
                     f"({g(w['bound'])}) | {r['nodes_diverging']}/{r['nodes']} | {r['nodes_atol_flags']}/{r['nodes']} |")
    lines += ["", "| model | output | tlrt-f64 vs pytorch-f64 max abs | max rel | max ULP (float64) | norm | "
              "worst node: max abs / max abs value (max ULP64) | float32 ms | float64 ms | float64 / float32 |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, w, t = r["tlrt_f64_vs_pytorch_f64"], r["f64_worst_node"], r["time"]
        lines.append(f"| {r['model']} | {r['output']} {r['shape']} | {g(a['max_abs'])} | {g(a['max_rel'])} | "
                     f"{g(a['max_ulp'])} | {g(a['norm'])} | {w['id']} ({w['tag']}): {g(w['rel_to_max'])} "
                     f"({g(w['max_ulp64'])}) | {g(t['f32_min_ms'])} | {g(t['f64_min_ms'])} | "
                     f"{t['f64_over_f32']:.2f} |")
    table = "\n".join(lines) + "\n"
    md = ROOT / "docs" / "accuracy.md"
    text = md.read_text() if md.exists() else ""
    begin, end = "<!-- accuracy table: scripts/accuracy_table.py -->", "<!-- end accuracy table -->"
    if begin in text and end in text:
        text = text[:text.index(begin) + len(begin)] + "\n" + table + text[text.index(end):]
    else:
        text += f"\n{begin}\n{table}{end}\n"
    md.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
