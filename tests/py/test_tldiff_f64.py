"""tldiff's error vs float64 and its f64 pass rule; float64 capture end to end; any batch.

The deep models (tests/zoo/resnet18.py at 1x3x224x224, tests/zoo/squeezenet.py at 1x3x64x64 with
an image-scale input) are where a fixed per-node atol/rtol mistook ordinary float32 accumulation
for a divergence: the same run under --rule atol is shown to fail (so the test can fail), under
the default f64 rule it passes, and a planted kernel bug is still found at its node. The error
numbers are checked against NumPy float64 computed here."""
import ctypes as C
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import BUILD, run_tool, tool
from graphs import Graph, run_tlrun, save_npy
from zoo_util import SCRIPT, ZOO_DIR, capture, load_graph

PY = sys.executable


def tldiff(*args, env=None, **kw):
    e = dict(os.environ)
    e["TL_PYTHON"] = PY
    e.pop("TL_TEST_PLANT_BUG", None)
    if env:
        e.update(env)
    return run_tool("tldiff", *args, env=e, **kw)


def report(tmp_path, *args, env=None, name="r.json"):
    rep = tmp_path / name
    r = tldiff(*args, "--json", rep, env=env)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return r, json.loads(rep.read_text())


# ---------------------------------------------------------------------- deep models
# name: (file, class, input shape, input scale): SqueezeNet's input at 4x normal(0, 1) (pixel-like
# magnitudes): its activations then reach the size where the fixed tolerance misfires.
DEEP = {
    "resnet18": ("resnet18.py", "ResNet18", [1, 3, 224, 224], 1.0),
    "squeezenet": ("squeezenet.py", "SqueezeNet", [1, 3, 64, 64], 4.0),
}


@pytest.fixture(scope="module")
def deep(tmp_path_factory):
    base = tmp_path_factory.mktemp("deep")
    out = {}
    for name, (f, cls, shape, scale) in DEEP.items():
        d = base / name
        d.mkdir()
        x = (np.random.default_rng(11).standard_normal(shape) * scale).astype(np.float32)
        xin = save_npy(d / "x.npy", x)
        # captured on this input: ex/input.npy and ex/output_0.npy (the original reference)
        r = subprocess.run([PY, str(SCRIPT), str(ZOO_DIR / f), cls, str(d / "graph.json"), "--example-input", xin,
                            "--save-example", str(d / "ex")], capture_output=True, text=True)
        assert r.returncode == 0, (name, r.stderr)
        out[name] = d
    return out


def deep_args(d):
    return [d / "graph.json", d / "params.bin", d / "ex" / "input.npy"]


@pytest.mark.parametrize("name", sorted(DEEP))
def test_deep_model_per_node_old_rule_false_alarm_new_rule_passes(deep, name, tmp_path):
    d = deep[name]
    # the fixed per-element atol/rtol on every node: a false alarm on these models (outputs fine)
    r_old, j_old = report(tmp_path, *deep_args(d), "--per-node", "--rule", "atol", name="old.json")
    assert r_old.returncode == 1, r_old.stdout
    assert j_old["first_diverging_node"] is not None and j_old["inputs"][0]["nodes"]
    fd = j_old["first_diverging_node"]
    assert fd["stats"]["mismatches"] >= 1 and fd["stats"]["max_abs"] < 1e-4      # ordinary rounding
    # that node's tlrt error vs float64 is in proportion to PyTorch float32's
    vf = fd["vs_float64"]
    assert vf["tlrt_f32"]["max_abs"] <= vf["bound"] and vf["pass"]
    # the f64 rule (default): no node diverges
    r, j = report(tmp_path, *deep_args(d), "--per-node")
    assert r.returncode == 0, r.stdout
    assert "first diverging node: none" in r.stdout and r.stdout.rstrip().endswith("verdict: PASS")
    assert j["config"]["rule"] == "f64" and j["config"]["f64_k"] == 8 and j["config"]["f64_floor_ulps"] == 8
    nodes = j["inputs"][0]["nodes"]
    assert len(nodes) == len(load_graph(d / "graph.json")["nodes"])
    for n in nodes:
        v = n["vs_float64"]
        assert v["reference"] == "emitted_f64" and v["pass"] and n["stats"]["pass"]
        t, p = v["tlrt_f32"], v["pytorch_f32"]
        bound = 8 * p["max_abs"] + 8 * float(np.spacing(np.float32(p["ref_max"])))
        assert v["bound"] == pytest.approx(bound, rel=1e-12)
        assert t["max_abs"] <= bound
    # the node the old rule flagged is there too, and passes
    same = next(n for n in nodes if n["id"] == fd["id"])
    assert same["stats"]["mismatches"] == fd["stats"]["mismatches"] and same["stats"]["pass"]
    # the rule's arithmetic has teeth on this very model: a k and floor far below tlrt's own
    # error ratio would fail it (test_deep_model_planted_bug_found: a real bug does)
    assert any(n["vs_float64"]["tlrt_f32"]["max_abs"] > 0.01 * n["vs_float64"]["pytorch_f32"]["max_abs"] for n in nodes)


@pytest.mark.parametrize("name,tag", [("resnet18", "batch_norm_eval"), ("squeezenet", "concat")])
def test_deep_model_planted_bug_found(deep, name, tag, tmp_path):
    d = deep[name]
    want = min(n["id"] for n in load_graph(d / "graph.json")["nodes"] if n["kind"] == tag)
    r, j = report(tmp_path, *deep_args(d), "--per-node", env={"TL_TEST_PLANT_BUG": tag})
    assert r.returncode == 1
    assert f"first diverging node: {want} ({tag}) on input 0:" in r.stdout
    fd = j["first_diverging_node"]
    assert fd["id"] == want and not fd["vs_float64"]["pass"]
    assert fd["vs_float64"]["tlrt_f32"]["max_abs"] == pytest.approx(1e-2, rel=0.1)
    assert all(n["vs_float64"]["pass"] for n in j["inputs"][0]["nodes"] if n["id"] < want)


# ---------------------------------------------------------------------- planted bugs, zoo models
@pytest.fixture(scope="module")
def zoo_small(tmp_path_factory):
    base = tmp_path_factory.mktemp("zoo_small")
    out = {}
    for name, f, cls, shape in [("mlp", "mlp.py", "MLP", [3, 8]), ("resblock", "resblock.py", "ResNetTiny",
                                                                   [2, 3, 16, 16])]:
        d = base / name
        r = capture(ZOO_DIR / f, cls, d, shape, "--save-example", d / "ex")
        assert r.returncode == 0, r.stderr
        out[name] = d
    return out


def zargs(d):
    return [d / "graph.json", d / "params.bin", d / "ex" / "input.npy"]


@pytest.mark.parametrize("rule", ["f64", "both"])
@pytest.mark.parametrize("mode", ["cumulative", "isolated"])
def test_planted_bug_named_under_f64_rule(zoo_small, rule, mode, tmp_path):
    d = zoo_small["resblock"]
    want = min(n["id"] for n in load_graph(d / "graph.json")["nodes"] if n["kind"] == "batch_norm_eval")
    r, j = report(tmp_path, *zargs(d), "--per-node", "--mode", mode, "--rule", rule,
                  env={"TL_TEST_PLANT_BUG": "batch_norm_eval"})
    assert r.returncode == 1
    assert f"first diverging node: {want} (batch_norm_eval) on input 0:" in r.stdout
    failing = [n for n in j["inputs"][0]["nodes"] if not n["stats"]["pass"]]
    assert failing[0]["id"] == want
    if mode == "isolated":
        assert all(n["tag"] == "batch_norm_eval" for n in failing)
    # the same run without the bug passes under the rule
    r = tldiff(*zargs(d), "--per-node", "--mode", mode, "--rule", rule)
    assert r.returncode == 0, r.stdout


def test_wrong_original_fails_tlrt_vs_original(zoo_small, tmp_path):
    """Under the f64 rule a float32 original must itself be in proportion to PyTorch float32's
    error: an original 0.01 off fails tlrt vs original (and emitted vs original)."""
    d = zoo_small["mlp"]
    ref = tmp_path / "ref"
    ref.mkdir()
    np.save(ref / "output_0.npy", np.load(d / "ex" / "output_0.npy") + np.float32(0.01))
    r, j = report(tmp_path, *zargs(d), "--reference", ref)
    assert r.returncode == 1
    p = j["inputs"][0]["outputs"][0]["pairs"]
    assert p["tlrt_vs_emitted"]["pass"] and not p["tlrt_vs_original"]["pass"]
    assert not p["emitted_vs_original"]["pass"]
    v = j["inputs"][0]["outputs"][0]["vs_float64"]
    assert v["pass"] and v["original_f32"]["max_abs"] == pytest.approx(0.01, rel=1e-3)


# ---------------------------------------------------------------------- any batch
def test_other_batch_file_and_random(zoo_small, tmp_path):
    d = zoo_small["resblock"]                                   # captured at batch 2
    x = np.random.default_rng(3).standard_normal((5, 3, 16, 16)).astype(np.float32)
    xp = save_npy(tmp_path / "x5.npy", x)
    r, j = report(tmp_path, d / "graph.json", d / "params.bin", xp, "--per-node")
    assert r.returncode == 0, r.stdout + r.stderr
    assert j["config"]["input_shape"] == [5, 3, 16, 16]
    assert j["inputs"][0]["outputs"][0]["shape"] == [5, 5]
    assert all(n["shape"][0] == 5 for n in j["inputs"][0]["nodes"] if n["shape"])
    # tlrt's values at batch 5 are tlrun's
    (tmp_path / "run").mkdir()
    want = run_tlrun(tool("tlrun"), d / "graph.json", d / "params.bin", x, tmp_path / "run")[0]
    assert want.shape == (5, 5)
    # --random N --batch B
    r, j = report(tmp_path, d / "graph.json", d / "params.bin", "--random", "2", "--batch", "3", "--per-node",
                  name="b3.json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert j["config"]["input_shape"] == [3, 3, 16, 16] and j["config"]["batch"] == 3
    assert j["summary"][0]["tlrt_vs_emitted"]["numel"] == 2 * 3 * 5
    assert "output 0 (node 12, linear) [3, 5], over 2 inputs:" in r.stdout
    # a planted bug at another batch: found at its node
    want_id = min(n["id"] for n in load_graph(d / "graph.json")["nodes"] if n["kind"] == "relu")
    r, j = report(tmp_path, d / "graph.json", d / "params.bin", "--random", "1", "--batch", "7", "--per-node",
                  env={"TL_TEST_PLANT_BUG": "relu"}, name="b7.json")
    assert r.returncode == 1 and f"first diverging node: {want_id} (relu) on input 0:" in r.stdout
    assert j["first_diverging_node"]["shape"][0] == 7


def test_input_by_content_not_name(zoo_small, tmp_path):
    """A valid .npy not named .npy is the input (by its content), as with tlrun."""
    d = zoo_small["mlp"]
    blob = tmp_path / "example.input"
    blob.write_bytes((d / "ex" / "input.npy").read_bytes())
    r, j = report(tmp_path, d / "graph.json", d / "params.bin", blob)
    assert r.returncode == 0, r.stdout + r.stderr
    assert j["config"]["input"] == str(blob) and j["config"]["reference"] is None   # no output_0.npy there
    r2, j2 = report(tmp_path, d / "graph.json", d / "params.bin", d / "ex" / "input.npy", name="r2.json")
    a, b = j["inputs"][0]["outputs"][0], j2["inputs"][0]["outputs"][0]
    assert a["pairs"]["tlrt_vs_emitted"] == b["pairs"]["tlrt_vs_emitted"]
    assert a["vs_float64"]["tlrt_f32"] == b["vs_float64"]["tlrt_f32"]
    # the same without params.bin's name either: the second argument is told apart by content
    pb = tmp_path / "weights"
    pb.write_bytes((d / "params.bin").read_bytes())
    r = tldiff(d / "graph.json", pb, blob)
    assert r.returncode == 0, r.stdout + r.stderr


def test_batch_bad_inputs(zoo_small, tmp_path):
    d = zoo_small["mlp"]
    gp, bp = d / "graph.json", d / "params.bin"
    r = tldiff(gp, bp, d / "ex" / "input.npy", "--batch", "3")
    assert r.returncode == 2
    assert r.stderr == "tldiff: --batch goes with --random, not with input.npy (its shape is the batch)\n"
    r = tldiff(gp, bp, "--batch", "0")
    assert r.returncode == 2 and r.stderr == "tldiff: --batch: expected an integer >= 1, got '0'\n"
    # a graph that mixes samples (softmax over axis 0) runs only at its own batch
    g = Graph()
    x = g.input([3, 4])
    g.output(g.node("softmax", [x], axis=0))
    gp2, bp2 = g.save(tmp_path)
    args = [gp2] + ([bp2] if bp2 else [])
    r = tldiff(*args, "--random", "1", "--batch", "5")
    assert r.returncode == 2 and r.stderr.startswith("tldiff: --batch 5: ") and r.stderr.count("\n") == 1
    x5 = save_npy(tmp_path / "x5.npy", np.zeros((5, 4), np.float32))
    r = tldiff(*args, x5)
    assert r.returncode == 2 and r.stderr == f"{x5}: shape [5, 4] does not match the graph input node[0] [3, 4]\n"
    r = tldiff(*args, "--rule", "exact")
    assert r.returncode == 2 and r.stderr == "tldiff: --rule: expected f64, atol or both, got 'exact'\n"
    r = tldiff(*args, "--f64-k", "-1")
    assert r.returncode == 2 and r.stderr == "tldiff: --f64-k: expected a number >= 0, got '-1'\n"


# ---------------------------------------------------------------------- float64 capture
def test_float64_capture_end_to_end(tmp_path):
    d = tmp_path / "c64"
    r = capture(ZOO_DIR / "resblock.py", "ResNetTiny", d, [2, 3, 16, 16], "--dtype", "float64",
                "--save-example", d / "ex")
    assert r.returncode == 0, r.stderr
    x = np.load(d / "ex" / "input.npy")
    y = np.load(d / "ex" / "output_0.npy")
    assert x.dtype == np.float64 and y.dtype == np.float64
    hdr = (d / "params.bin").read_bytes()
    n = int.from_bytes(hdr[:8], "little")
    meta = json.loads(hdr[8:8 + n])
    assert {v["dtype"] for k, v in meta.items() if k != "__metadata__"} == {"F64"}
    # tlemit picks DTYPE float64 for F64 params; the module in float64 reproduces the original
    mod_dir = tmp_path / "mod"
    mod_dir.mkdir()
    (mod_dir / "params.bin").write_bytes((d / "params.bin").read_bytes())
    e = run_tool("tlemit", "pytorch", d / "graph.json", mod_dir / "params.bin", "-o", mod_dir / "model.py")
    assert e.returncode == 0, e.stderr
    src = (mod_dir / "model.py").read_text()
    assert "\nDTYPE = torch.float64\n" in src
    import importlib.util
    spec = importlib.util.spec_from_file_location("emitted_c64", mod_dir / "model.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    with torch.no_grad():
        got = m.TorchLeanModel()(torch.from_numpy(x))
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), y, rtol=1e-12, atol=1e-12)
    # --dtype overrides
    e = run_tool("tlemit", "pytorch", d / "graph.json", d / "params.bin", "-o", "-", "--dtype", "torch.float32")
    assert e.returncode == 0 and "\nDTYPE = torch.float32\n" in e.stdout
    # tldiff: emitted (float64) vs original (float64) at float64 tolerance; tlrt by its error vs
    # the original float64 outputs; the one-line note that tlrt computes in float32
    r, j = report(tmp_path, d / "graph.json", d / "params.bin", d / "ex" / "input.npy")
    assert r.returncode == 0, r.stdout
    assert "note: float64 capture: tlrt-f32 is judged by its error vs float64" in r.stdout
    assert sum("note:" in ln for ln in r.stdout.splitlines()) == 1
    assert j["config"]["capture_dtype"] == "float64" and j["config"]["float64_reference"] == "original_f64"
    assert j["config"]["tlrt_dtype"] == "float32"
    o = j["inputs"][0]["outputs"][0]
    eo = o["pairs"]["emitted_vs_original"]
    assert eo["pass"] and eo["max_abs"] <= 1e-12
    v = o["vs_float64"]
    assert v["reference"] == "original_f64" and "original_f32" not in v
    # tlrt's column against the original float64 outputs, recomputed here
    (tmp_path / "run").mkdir()
    tl = run_tlrun(tool("tlrun"), d / "graph.json", d / "params.bin", x.astype(np.float32), tmp_path / "run")[0]
    assert v["tlrt_f32"]["max_abs"] == pytest.approx(np.abs(tl.astype(np.float64) - y).max(), rel=1e-9)
    # a float64 original that is off fails emitted vs original at float64 tolerance
    bad = tmp_path / "bad"
    bad.mkdir()
    np.save(bad / "output_0.npy", y + 1e-6)
    r, j = report(tmp_path, d / "graph.json", d / "params.bin", d / "ex" / "input.npy", "--reference", bad,
                  name="bad.json")
    assert r.returncode == 1
    assert not j["inputs"][0]["outputs"][0]["pairs"]["emitted_vs_original"]["pass"]


# ---------------------------------------------------------------------- numbers vs NumPy float64
def small_graph(tmp_path):
    g = Graph()
    x = g.input([3, 4])
    h = g.linear(x, np.linspace(-1, 1, 20, dtype=np.float32).reshape(5, 4), np.arange(5, dtype=np.float32))
    g.output(g.unary("tanh", h), g.node("softmax", [h], axis=1))
    gp, bp = g.save(tmp_path)
    return g, gp, bp


def np_err(a, r):
    """The error vs float64 as tl_diff.h defines it, in NumPy."""
    a = np.asarray(a, np.float64)
    r = np.asarray(r, np.float64)
    d = np.abs(a - r)
    tiny = np.finfo(np.float32).tiny
    ulp = np.spacing(np.abs(r).astype(np.float32)).astype(np.float64)
    return {"max_abs": d.max(), "max_rel": (d / np.maximum(np.abs(r), tiny)).max(),
            "max_ulp": (d / ulp).max(), "norm": np.linalg.norm(d) / np.linalg.norm(r), "ref_max": np.abs(r).max()}


def test_error_numbers_against_numpy_float64(tmp_path):
    g, gp, bp = small_graph(tmp_path)
    xv = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    ex = tmp_path / "ex"
    ex.mkdir()
    inp = save_npy(ex / "input.npy", xv)
    exact = [np.asarray(r, np.float64) for r in g.reference(xv)]       # NumPy float64 (oracle)
    # an original float32 reference: the oracle rounded, one element perturbed by 3 float32 ULPs
    orig = [r.astype(np.float32) for r in exact]
    orig[0][1, 2] = np.nextafter(np.nextafter(np.nextafter(orig[0][1, 2], np.float32(9)), np.float32(9)),
                                 np.float32(9))
    for j, o in enumerate(orig):
        np.save(ex / f"output_{j}.npy", o)
    r, j = report(tmp_path, gp, bp, inp)
    (tmp_path / "run").mkdir()
    tl = run_tlrun(tool("tlrun"), gp, bp, xv, tmp_path / "run", n_outputs=2)
    # PyTorch float32: the graph's ops in torch, float32
    xt = torch.from_numpy(xv)
    W = torch.from_numpy(np.linspace(-1, 1, 20, dtype=np.float32).reshape(5, 4))
    hb = torch.nn.functional.linear(xt, W, torch.arange(5, dtype=torch.float32))
    torch32 = [torch.tanh(hb).numpy(), torch.softmax(hb, 1).numpy()]
    for k in range(2):
        v = j["inputs"][0]["outputs"][k]["vs_float64"]
        assert v["reference"] == "emitted_f64"
        for col, vals in (("tlrt_f32", tl[k]), ("pytorch_f32", torch32[k]), ("original_f32", orig[k])):
            want = np_err(vals, exact[k])
            for key, w in want.items():
                # the reference is the emitted module in float64, within ~1e-16 of NumPy's
                assert v[col][key] == pytest.approx(w, rel=1e-6, abs=1e-12), (k, col, key)
        bound = 8 * v["pytorch_f32"]["max_abs"] + 8 * float(np.spacing(np.float32(v["pytorch_f32"]["ref_max"])))
        assert v["bound"] == pytest.approx(bound, rel=1e-12)
        assert v["pass"] == (v["tlrt_f32"]["max_abs"] <= v["bound"])
    o0 = j["inputs"][0]["outputs"][0]["vs_float64"]["original_f32"]
    assert o0["max_ulp"] >= 2.5
    # the text report shows the columns side by side
    assert "error vs float64 (the emitted module in float64):" in r.stdout
    for label in ("tlrt-f32", "pytorch-f32", "original-f32"):
        assert f"      {label} " in r.stdout


class Err64(C.Structure):
    _fields_ = [("numel", C.c_int64), ("max_abs", C.c_double), ("max_rel", C.c_double), ("max_ulp", C.c_double),
                ("norm", C.c_double), ("ref_max", C.c_double), ("sum_sq_err", C.c_double),
                ("sum_sq_ref", C.c_double), ("worst", C.c_int64)]


@pytest.mark.no_asan
def test_err64_and_rule_ctypes():
    p = BUILD / "libtlrt_c.so"
    if not p.exists():
        pytest.fail(f"{p} is not built")
    L = C.CDLL(str(p))
    dp = C.POINTER(C.c_double)
    L.tl_err64_compare.argtypes = [dp, dp, C.c_int64, C.POINTER(Err64)]
    L.tl_err64_merge.argtypes = [C.POINTER(Err64), C.POINTER(Err64)]
    L.tl_err64_init.argtypes = [C.POINTER(Err64)]
    L.tl_diff_ulp32.argtypes = [C.c_double]
    L.tl_diff_ulp32.restype = C.c_double
    L.tl_diff_f64_pass.argtypes = [C.POINTER(Err64), C.POINTER(Err64), C.c_double, C.c_double]
    L.tl_diff_f64_pass.restype = C.c_bool
    L.tl_diff_f64_bound.argtypes = [C.POINTER(Err64), C.c_double, C.c_double]
    L.tl_diff_f64_bound.restype = C.c_double

    def err(a, r):
        a = np.ascontiguousarray(a, np.float64)
        r = np.ascontiguousarray(r, np.float64)
        st = Err64()
        L.tl_err64_compare(a.ctypes.data_as(dp), r.ctypes.data_as(dp), a.size, C.byref(st))
        return st

    rng = np.random.default_rng(9)
    r = rng.standard_normal(101) * 10
    a = r.astype(np.float32).astype(np.float64)
    st = err(a, r)
    w = np_err(a, r)
    assert st.numel == 101 and st.max_abs == pytest.approx(w["max_abs"], rel=1e-14)
    assert st.max_rel == pytest.approx(w["max_rel"], rel=1e-14)
    assert st.max_ulp == pytest.approx(w["max_ulp"], rel=1e-14) and st.max_ulp <= 0.5   # correctly rounded
    assert st.norm == pytest.approx(w["norm"], rel=1e-12) and st.ref_max == pytest.approx(w["ref_max"])
    assert st.worst == int(np.argmax(np.abs(a - r)))
    for v in (0.0, 1.0, 3.0, 1e-40, 3e38, -7.5):
        assert L.tl_diff_ulp32(v) == float(np.spacing(np.float32(abs(v))))
    # non-finite: NaN vs NaN and equal infinities are no error, anything else is infinite
    st = err([np.nan, np.inf, 1.0], [np.nan, np.inf, 1.0])
    assert st.max_abs == 0 and st.worst == -1 and st.norm == 0
    st = err([np.nan, 1.0], [1.0, 1.0])
    assert st.max_abs == np.inf and st.worst == 0
    st = err([np.inf], [3.0])
    assert st.max_abs == np.inf and st.max_ulp == np.inf
    # zero reference: the FLT_MIN guard; the norm falls back to ||a - r||
    st = err([1e-3, 0.0], [0.0, 0.0])
    assert st.max_rel == pytest.approx(1e-3 / np.finfo(np.float32).tiny) and st.norm == pytest.approx(1e-3)
    # merge: maxima, and the norm of the concatenation
    r1, r2 = rng.standard_normal(7), rng.standard_normal(9)
    a1, a2 = r1 + 1e-6, r2 - 3e-6
    acc = Err64()
    L.tl_err64_init(C.byref(acc))
    for s in (err(a1, r1), err(a2, r2)):
        L.tl_err64_merge(C.byref(acc), C.byref(s))
    both = np_err(np.concatenate([a1, a2]), np.concatenate([r1, r2]))
    assert acc.numel == 16 and acc.max_abs == pytest.approx(both["max_abs"]) and acc.norm == pytest.approx(both["norm"])
    # the rule: tlrt.max_abs <= k * torch.max_abs + floor * ulp32(torch.ref_max)
    torch_e = err([2.0 + 1e-6], [2.0])
    b = 4 * 1e-6 + 2 * float(np.spacing(np.float32(2.0)))
    assert L.tl_diff_f64_bound(C.byref(torch_e), 4.0, 2.0) == pytest.approx(b, rel=1e-9)
    assert L.tl_diff_f64_pass(C.byref(err([2.0 + 0.99 * b], [2.0])), C.byref(torch_e), 4.0, 2.0)
    assert not L.tl_diff_f64_pass(C.byref(err([2.0 + 1.01 * b], [2.0])), C.byref(torch_e), 4.0, 2.0)
    inf_e = err([np.inf], [2.0])
    assert not L.tl_diff_f64_pass(C.byref(inf_e), C.byref(torch_e), 4.0, 2.0)
    assert L.tl_diff_f64_pass(C.byref(inf_e), C.byref(inf_e), 4.0, 2.0)     # both overflowed


# ---------------------------------------------------------------------- Python API (tlrt.diff)
def test_python_diff_exposes_vs_float64(zoo_small, tmp_path):
    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root / "python"))
    try:
        import tlrt
    finally:
        sys.path.pop(0)
    os.environ.setdefault("TL_BUILD_DIR", str(BUILD))
    d = zoo_small["resblock"]
    r = tlrt.diff(d / "graph.json", d / "ex" / "input.npy", d / "params.bin", per_node=True, python=PY)
    assert r.passed, r.text
    v = r.outputs[0].vs_float64
    assert v.reference == "emitted_f64" and set(v.columns) == {"tlrt_f32", "pytorch_f32", "original_f32"}
    assert v.passed and v.columns["tlrt_f32"].max_abs <= v.bound
    assert set(r.outputs[0].pairs) == {"tlrt_vs_emitted", "tlrt_vs_original", "emitted_vs_original"}
    assert r.config["rule"] == "f64"
    r = tlrt.diff(d / "graph.json", params=d / "params.bin", random=2, batch=3, rule="both", f64_k=4.0,
                  f64_floor=2.0, python=PY)
    assert r.passed and r.config["batch"] == 3 and r.config["input_shape"][0] == 3
    assert r.config["rule"] == "both" and r.config["f64_k"] == 4.0 and r.config["f64_floor_ulps"] == 2.0
    assert r.outputs[0].vs_float64.columns["tlrt_f32"].numel == 2 * 3 * 5
    # a float64 array stays float64 on its way to tldiff: the float64 capture's path
    x64 = np.random.default_rng(2).standard_normal((2, 3, 16, 16))
    r = tlrt.diff(d / "graph.json", x64, d / "params.bin", python=PY)
    assert r.config["capture_dtype"] == "float64" and "note: float64 capture" in r.text
    with pytest.raises(tlrt.BadInputError, match="batch"):
        tlrt.diff(d / "graph.json", x64, d / "params.bin", batch=3)
    with pytest.raises(tlrt.BadInputError, match="--rule"):
        tlrt.diff(d / "graph.json", x64, d / "params.bin", rule="nope", python=PY)


# ---------------------------------------------------------------------- tlrt float64 (report only)
# tldiff runs tlrt a second time in float64 (TL_SESSION_FLOAT64) and reports its agreement with the
# emitted module in float64 ("float64_agreement": max abs, max rel, max float64 ULP, norm).
AGREE_ZOO = ["mlp", "lenet", "resblock", "two_outputs", "transformer"]


@pytest.fixture(scope="module")
def zoo_agree(tmp_path_factory):
    from zoo_util import ROUNDED, ZOO
    base = tmp_path_factory.mktemp("zoo_agree")
    out = {}
    for name in AGREE_ZOO:
        f, cls, shape = ZOO[name]
        d = base / name
        r = capture(ZOO_DIR / f, cls, d, shape, "--save-example", d / "ex", *ROUNDED.get(name, []))
        assert r.returncode == 0, r.stderr
        out[name] = d
    return out


def np_agree(a, r):
    """tl_agree64_compare in NumPy: max abs, max rel (DBL_MIN guard), max float64 ULP, norm."""
    a = np.asarray(a, np.float64).ravel()
    r = np.asarray(r, np.float64).ravel()
    d = np.abs(a - r)
    tiny = np.finfo(np.float64).tiny
    return {"max_abs": d.max(), "max_rel": (d / np.maximum(np.abs(r), tiny)).max(),
            "max_ulp": (d / np.spacing(np.abs(r))).max(), "norm": np.linalg.norm(d) / np.linalg.norm(r)}


def tlrun_f64(d, x64, tmp):
    """tlrt float64 outputs (tlrun --dtype float64) for the float64 input x64."""
    tmp.mkdir(exist_ok=True)
    np.save(tmp / "x64.npy", np.ascontiguousarray(x64, np.float64))
    r = run_tool("tlrun", d / "graph.json", d / "params.bin", tmp / "x64.npy", "--dtype", "float64",
                 "-o", tmp / "y.npy")
    assert r.returncode == 0, r.stderr
    outs = [tmp / "y.npy"] + sorted(tmp.glob("y_*.npy"))
    ys = [np.load(p) for p in outs]
    assert all(y.dtype == np.float64 for y in ys)
    return ys


def real(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


@pytest.mark.parametrize("name", AGREE_ZOO)
def test_tlrt_f64_agrees_with_pytorch_f64(zoo_agree, name, tmp_path):
    """tlrt-f64 vs pytorch-f64 is tiny on every zoo model, and the numbers tldiff reports are the
    ones recomputed here from tlrun --dtype float64 and the emitted module's kept float64 outputs;
    tlrt float64 also agrees with the graph's NumPy float64 evaluation (tests/py/oracle.py)."""
    from zoo_util import ir_eval, read_safetensors
    d = zoo_agree[name]
    r, j = report(tmp_path, *zargs(d), "--keep-temp")
    assert r.returncode == 0, r.stdout + r.stderr
    kept = Path(next(ln for ln in r.stderr.splitlines() if ln.startswith("tldiff: kept ")).split("kept ", 1)[1])
    try:
        assert j["config"]["tlrt_f64"] == {"available": True, "reason": None, "judged": False}
        assert "tlrt float64: a second session (TL_SESSION_FLOAT64)" in r.stdout
        x = np.load(d / "ex" / "input.npy")
        ys = tlrun_f64(d, x.astype(np.float64), tmp_path / "run")
        doc = load_graph(d / "graph.json")
        oracle = [t.numpy() for t in ir_eval(doc, read_safetensors(d / "params.bin"), x.astype(np.float64))]
        outs = j["inputs"][0]["outputs"]
        assert len(outs) == len(ys) == len(oracle)
        for k, o in enumerate(outs):
            ag = o["float64_agreement"]
            assert ag["available"] and ag["reason"] is None and ag["ulp"] == "float64"
            assert "tlrt_f64_vs_original_f64" not in ag              # a float32 capture
            t = ag["tlrt_f64_vs_pytorch_f64"]
            assert all(real(t[f]) for f in ("numel", "max_abs", "max_rel", "max_ulp", "norm", "ref_max"))
            em64 = np.load(kept / f"out64_0_{k}.npy")
            want = np_agree(ys[k], em64)
            assert t["numel"] == ys[k].size and t["ref_max"] == np.abs(em64).max()
            for f in ("max_abs", "max_rel", "max_ulp", "norm"):
                assert t[f] == pytest.approx(want[f], rel=1e-9, abs=1e-300), f
            # small: within 1e-12 of the output's scale, and the same against the NumPy oracle
            scale = np.abs(oracle[k]).max()
            assert t["max_abs"] <= 1e-12 * scale and t["norm"] < 1e-12
            assert np.abs(ys[k] - oracle[k]).max() <= 1e-12 * scale
            s = j["summary"][k]["float64_agreement"]
            assert s["available"] and s["tlrt_f64_vs_pytorch_f64"]["max_abs"] == t["max_abs"]
        assert "tlrt-f64 vs pytorch-f64  max_abs " in r.stdout
    finally:
        import shutil
        shutil.rmtree(kept, ignore_errors=True)


@pytest.mark.parametrize("mode", ["cumulative", "isolated"])
def test_tlrt_f64_per_node_fields(zoo_agree, mode, tmp_path):
    d = zoo_agree["resblock"]
    r, j = report(tmp_path, *zargs(d), "--per-node", "--mode", mode)
    assert r.returncode == 0, r.stdout
    nodes = j["inputs"][0]["nodes"]
    assert len(nodes) == len(load_graph(d / "graph.json")["nodes"])
    for n in nodes:
        ag = n["float64_agreement"]
        assert ag["available"], n
        t = ag["tlrt_f64_vs_pytorch_f64"]
        assert all(real(t[f]) for f in ("max_abs", "max_rel", "max_ulp", "norm", "ref_max"))
        assert t["max_abs"] <= 1e-12 * max(t["ref_max"], 1e-300) + 1e-300
    na = j["nodes_float64_agreement"]
    assert na["available"] and na["worst_node"]["id"] in {n["id"] for n in nodes}
    w = na["worst_node"]
    worst = max(nodes, key=lambda n: n["float64_agreement"]["tlrt_f64_vs_pytorch_f64"]["max_abs"]
                / (n["float64_agreement"]["tlrt_f64_vs_pytorch_f64"]["ref_max"] or 1.0))
    assert w["id"] == worst["id"] and w["tag"] == worst["tag"] and w["rel_to_max"] < 1e-12
    assert na["tlrt_f64_vs_pytorch_f64"]["max_ulp"] == max(
        n["float64_agreement"]["tlrt_f64_vs_pytorch_f64"]["max_ulp"] for n in nodes)
    assert "per-node tlrt-f64 vs pytorch-f64: largest max_abs / max |value| " in r.stdout
    # the input node: tlrt float64 holds the float64 input itself (exactly the emitted module's)
    inp = next(n for n in nodes if n["tag"] == "input")
    assert inp["float64_agreement"]["tlrt_f64_vs_pytorch_f64"]["max_abs"] == 0


@pytest.mark.parametrize("mode", ["cumulative", "isolated"])
def test_tlrt_f64_planted_bug_detected(zoo_agree, mode, tmp_path):
    """The planted-bug switch adds 1e-2 to a node's values in the float64 session too: its
    agreement shows it at that node (and, isolated, only at the nodes with that tag)."""
    d = zoo_agree["resblock"]
    tag = "batch_norm_eval"
    want = min(n["id"] for n in load_graph(d / "graph.json")["nodes"] if n["kind"] == tag)
    r, j = report(tmp_path, *zargs(d), "--per-node", "--mode", mode, env={"TL_TEST_PLANT_BUG": tag})
    assert r.returncode == 1                                  # the float32 side fails the verdict
    nodes = j["inputs"][0]["nodes"]

    def err(n):
        return n["float64_agreement"]["tlrt_f64_vs_pytorch_f64"]

    assert err(next(n for n in nodes if n["id"] == want))["max_abs"] == pytest.approx(1e-2, rel=1e-6)
    for n in nodes:
        if n["id"] < want or (mode == "isolated" and n["tag"] != tag):
            assert err(n)["max_abs"] <= 1e-12 * max(err(n)["ref_max"], 1.0), n
    w = j["nodes_float64_agreement"]["worst_node"]
    assert w["rel_to_max"] > 1e-6
    if mode == "isolated":
        assert w["tag"] == tag
    # the same run without the bug: every node agrees
    r, j = report(tmp_path, *zargs(d), "--per-node", "--mode", mode, name="ok.json")
    assert r.returncode == 0 and j["nodes_float64_agreement"]["worst_node"]["rel_to_max"] < 1e-12


def test_tlrt_f64_batch_and_random(zoo_agree, tmp_path):
    d = zoo_agree["resblock"]
    r, j = report(tmp_path, d / "graph.json", d / "params.bin", "--random", "2", "--batch", "3", "--per-node")
    assert r.returncode == 0, r.stdout
    s = j["summary"][0]["float64_agreement"]
    assert s["available"] and s["tlrt_f64_vs_pytorch_f64"]["numel"] == 2 * 3 * 5
    per_in = [i["outputs"][0]["float64_agreement"]["tlrt_f64_vs_pytorch_f64"]["max_abs"] for i in j["inputs"]]
    assert s["tlrt_f64_vs_pytorch_f64"]["max_abs"] == max(per_in)
    assert "over 2 inputs:" in r.stdout and "    tlrt-f64 vs pytorch-f64" in r.stdout


def f64_limit(d, x):
    """A TL_MEMORY_LIMIT under which tlrun plans the graph in float32 but not in float64 (its
    arena's values are twice the size), probed with tlrun."""
    np.save(d / "probe.npy", x)
    for lim in (int(2 ** (e / 4)) for e in range(40, 120)):
        env = dict(os.environ, TL_MEMORY_LIMIT=str(lim))
        a = subprocess.run([tool("tlrun"), d / "graph.json", d / "params.bin", d / "probe.npy", "-o", d / "p.npy"],
                           capture_output=True, text=True, env=env)
        if a.returncode == 0:
            b = subprocess.run([tool("tlrun"), d / "graph.json", d / "params.bin", d / "probe.npy", "--dtype",
                                "float64", "-o", d / "p.npy"], capture_output=True, text=True, env=env)
            assert b.returncode != 0 and "memory limit" in b.stderr, (lim, b.stderr)
            return lim
    raise AssertionError("no memory limit found")


def test_tlrt_f64_unavailable_is_reported_not_fatal(zoo_agree, tmp_path):
    d = zoo_agree["resblock"]
    (tmp_path / "g").mkdir()
    for f in ("graph.json", "params.bin"):
        (tmp_path / "g" / f).write_bytes((d / f).read_bytes())
    lim = f64_limit(tmp_path / "g", np.load(d / "ex" / "input.npy"))
    for extra in ([], ["--per-node", "--mode", "isolated"]):
        r, j = report(tmp_path, *zargs(d), *extra, env={"TL_MEMORY_LIMIT": str(lim)})
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.rstrip().endswith("verdict: PASS")
        t = j["config"]["tlrt_f64"]
        assert t["available"] is False and "memory limit" in t["reason"]
        assert f"  tlrt float64: unavailable ({t['reason']})\n" in r.stdout
        for o in j["inputs"][0]["outputs"] + j["summary"]:
            ag = o["float64_agreement"]
            assert ag == {"available": False, "reason": t["reason"], "ulp": "float64"}
        # the float32 columns are all there
        assert j["inputs"][0]["outputs"][0]["vs_float64"]["pass"]
        if extra:
            assert all(not n["float64_agreement"]["available"] for n in j["inputs"][0]["nodes"])
            assert j["nodes_float64_agreement"]["available"] is False
            assert "per-node tlrt-f64: unavailable (" in r.stdout


def test_tlrt_f64_vs_original_f64_float64_capture(tmp_path):
    d = tmp_path / "c64"
    r = capture(ZOO_DIR / "resblock.py", "ResNetTiny", d, [2, 3, 16, 16], "--dtype", "float64",
                "--save-example", d / "ex")
    assert r.returncode == 0, r.stderr
    x = np.load(d / "ex" / "input.npy")
    y = np.load(d / "ex" / "output_0.npy")
    r, j = report(tmp_path, d / "graph.json", d / "params.bin", d / "ex" / "input.npy", "--per-node")
    assert r.returncode == 0, r.stdout
    ag = j["inputs"][0]["outputs"][0]["float64_agreement"]
    assert set(ag) >= {"tlrt_f64_vs_pytorch_f64", "tlrt_f64_vs_original_f64"}
    ys = tlrun_f64(d, x, tmp_path / "run")
    want = np_agree(ys[0], y)
    t = ag["tlrt_f64_vs_original_f64"]
    for f in ("max_abs", "max_rel", "max_ulp", "norm"):
        assert t[f] == pytest.approx(want[f], rel=1e-9, abs=1e-300), f
    assert t["max_abs"] <= 1e-12 * np.abs(y).max()
    assert "    tlrt-f64 vs original-f64 max_abs " in r.stdout
    assert "tlrt-f64 vs original-f64 is reported" in r.stdout


def test_python_diff_exposes_float64_agreement(zoo_agree, tmp_path):
    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root / "python"))
    try:
        import tlrt
    finally:
        sys.path.pop(0)
    os.environ.setdefault("TL_BUILD_DIR", str(BUILD))
    d = zoo_agree["mlp"]
    r = tlrt.diff(d / "graph.json", d / "ex" / "input.npy", d / "params.bin", python=PY)
    assert r.passed, r.text
    ag = r.outputs[0].float64_agreement
    assert ag.available and ag.reason is None and set(ag.columns) == {"tlrt_f64_vs_pytorch_f64"}
    e = ag.columns["tlrt_f64_vs_pytorch_f64"]
    assert e.numel == 12 and 0 <= e.max_abs <= 1e-12 * e.ref_max
    assert set(r.outputs[0].pairs) == {"tlrt_vs_emitted", "tlrt_vs_original", "emitted_vs_original"}


@pytest.mark.no_asan  # loads libtlrt_c.so with ctypes: not possible for the ASan build
def test_agree64_ctypes():
    """tl_agree64_compare (tlrt-f64 vs pytorch-f64) against np_agree: float64 ULPs, the DBL_MIN
    guard, the non-finite cases, and tl_diff_ulp64 against np.spacing."""
    p = BUILD / "libtlrt_c.so"
    if not p.exists():
        pytest.fail(f"{p} is not built")
    L = C.CDLL(str(p))
    dp = C.POINTER(C.c_double)
    L.tl_agree64_compare.argtypes = [dp, dp, C.c_int64, C.POINTER(Err64)]
    L.tl_diff_ulp64.argtypes = [C.c_double]
    L.tl_diff_ulp64.restype = C.c_double

    def agree(a, r):
        a = np.ascontiguousarray(a, np.float64)
        r = np.ascontiguousarray(r, np.float64)
        st = Err64()
        L.tl_agree64_compare(a.ctypes.data_as(dp), r.ctypes.data_as(dp), a.size, C.byref(st))
        return st

    rng = np.random.default_rng(5)
    r = rng.standard_normal(37) * 100
    a = r + r * 3e-15 * rng.standard_normal(37)
    st, w = agree(a, r), np_agree(a, r)
    for f in ("max_abs", "max_rel", "max_ulp", "norm"):
        assert getattr(st, f) == pytest.approx(w[f], rel=1e-13), f
    assert st.numel == 37 and st.ref_max == np.abs(r).max() and st.worst == int(np.argmax(np.abs(a - r)))
    # one float64 ULP apart is max_ulp 1 (the float32 scale would give ~2^-29)
    st = agree([np.nextafter(3.0, 4.0)], [3.0])
    assert st.max_ulp == 1.0 and st.max_abs == float(np.spacing(3.0))
    for v in (0.0, 1.0, 3.0, 1e-310, 1e300, -7.5):
        assert L.tl_diff_ulp64(v) == float(np.spacing(abs(v)))
    # DBL_MIN guard on max_rel; an error beyond DBL_MAX ULPs of a zero reference is inf
    st = agree([1e-300, 0.0], [0.0, 0.0])
    assert st.max_rel == pytest.approx(1e-300 / np.finfo(np.float64).tiny)
    assert st.max_ulp == pytest.approx(1e-300 / float(np.spacing(0.0)))
    assert agree([1e-2], [0.0]).max_ulp == np.inf
    st = agree([np.nan, np.inf, 2.0], [np.nan, np.inf, 2.0])
    assert st.max_abs == 0 and st.worst == -1
    st = agree([np.nan], [2.0])
    assert st.max_abs == np.inf and st.max_ulp == np.inf
