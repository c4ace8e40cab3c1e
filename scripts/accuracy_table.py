"""Error vs float64 for every zoo model: tlrt float32 and PyTorch float32 side by side.

Captures each model (tests/zoo via tests/py/zoo_util.ZOO, plus the deep models ResNet-18 at
1x3x224x224 and SqueezeNet at 1x3x64x64 with a 4x normal input), runs `tldiff --per-node --json`
on the capture's example input, and writes
  docs/accuracy.json  one record per model and output (the numbers tldiff reported: max abs,
                      max rel, max ULP and norm of tlrt-f32 and pytorch-f32 vs the emitted module in
                      float64; the f64 rule's bound and verdict; the worst node's tlrt/pytorch ratio)
  docs/accuracy.md    the same as a table.
usage: .venv/bin/python scripts/accuracy_table.py [BUILD_DIR]   (default build; needs torch)"""
import json
import os
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
                    "(the emitted module in float32), per zoo model output; tldiff --per-node --json, "
                    "scripts/accuracy_table.py",
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
