"""tldiff: tlrt (in process) vs the emitted PyTorch module (python subprocess) vs the original
PyTorch outputs, on the capture zoo and the bundled example; planted bugs found by node in both
per-node modes; the JSON report checked against NumPy; random inputs and progress; bad inputs."""
import ctypes as C
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import BUILD, ROOT, run_tool, tool
from graphs import Graph, save_npy
from zoo_util import ROUNDED, ZOO, ZOO_DIR, capture

PY = sys.executable


def tldiff(*args, env=None, **kw):
    e = dict(os.environ)
    e["TL_PYTHON"] = PY
    e.pop("TL_TEST_PLANT_BUG", None)
    if env:
        e.update(env)
    return run_tool("tldiff", *args, env=e, **kw)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Every zoo model captured once (graph.json, params.bin, ex/input.npy, ex/output_*.npy)."""
    base = tmp_path_factory.mktemp("zoo")
    out = {}
    for name, (f, cls, shape) in ZOO.items():
        d = base / name
        r = capture(ZOO_DIR / f, cls, d, shape, "--save-example", d / "ex", *ROUNDED.get(name, []))
        assert r.returncode == 0, (name, r.stderr)
        out[name] = d
    return out


def args_of(d):
    return [d / "graph.json", d / "params.bin", d / "ex" / "input.npy"]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_passes(zoo, name, tmp_path):
    d = zoo[name]
    rep = tmp_path / "r.json"
    r = tldiff(*args_of(d), "--json", rep)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.rstrip().endswith("verdict: PASS")
    assert f"reference outputs: {d / 'ex'}" in r.stdout        # found next to input.npy
    j = json.loads(rep.read_text())
    assert j["verdict"] == "pass"
    n_out = len(json.loads((d / "graph.json").read_text())["output_ids"])
    outs = j["inputs"][0]["outputs"]
    assert len(outs) == n_out
    for o in outs:
        assert set(o["pairs"]) == {"tlrt_vs_emitted", "tlrt_vs_original", "emitted_vs_original"}
        for st in o["pairs"].values():
            assert st["pass"] and st["mismatches"] == 0 and st["max_abs"] <= 1e-4
    # per node, both modes
    for mode in ["cumulative", "isolated"]:
        r = tldiff(*args_of(d), "--per-node", "--mode", mode)
        assert r.returncode == 0, (mode, r.stdout + r.stderr)
        assert "first diverging node: none" in r.stdout


def bundled_examples():
    return sorted(p.parent for p in (ROOT / "examples").glob("**/graph.json"))


def test_bundled_example_passes(tmp_path):
    exs = bundled_examples()
    assert exs, "no bundled example (examples/**/graph.json)"
    for d in exs:
        params = d / "params.bin"
        inputs = sorted(d.glob("**/input.npy"))
        args = [d / "graph.json"] + ([params] if params.exists() else [])
        args += [inputs[0]] if inputs else ["--random", "3"]
        r = tldiff(*args, "--per-node")
        assert r.returncode == 0, (d, r.stdout + r.stderr)
        assert "verdict: PASS" in r.stdout


# ---------------------------------------------------------------------- planted bugs
def first_id(graph_json, tag):
    return min(n["id"] for n in json.loads(Path(graph_json).read_text())["nodes"] if n["kind"] == tag)


@pytest.mark.parametrize("name,tag", [("mlp", "relu"), ("lenet", "max_pool"), ("transformer", "softmax"),
                                      ("resblock", "batch_norm_eval")])
@pytest.mark.parametrize("mode", ["cumulative", "isolated"])
def test_planted_bug_found(zoo, name, tag, mode, tmp_path):
    d = zoo[name]
    want = first_id(d / "graph.json", tag)
    rep = tmp_path / "r.json"
    r = tldiff(*args_of(d), "--per-node", "--mode", mode, "--json", rep, env={"TL_TEST_PLANT_BUG": tag})
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"first diverging node: {want} ({tag}) on input 0:" in r.stdout
    assert r.stdout.rstrip().endswith("verdict: MISMATCH")
    j = json.loads(rep.read_text())
    assert j["verdict"] == "fail"
    fd = j["first_diverging_node"]
    assert fd["id"] == want and fd["tag"] == tag and fd["input"] == 0
    assert fd["stats"]["mismatches"] > 0 and abs(fd["stats"]["max_abs"] - 1e-2) < 1e-3
    failing = [n for n in j["inputs"][0]["nodes"] if not n["stats"]["pass"]]
    assert failing[0]["id"] == want
    if mode == "isolated":
        # each node sees the emitted module's parents: only the planted nodes diverge
        assert failing and all(n["tag"] == tag for n in failing)
    # without --per-node the outputs still mismatch (exit 1) unless the bug is invisible there
    r2 = tldiff(*args_of(d), env={"TL_TEST_PLANT_BUG": tag})
    assert r2.returncode in (0, 1)


def test_planted_bug_cumulative_propagates(zoo):
    d = zoo["mlp"]
    r_c = tldiff(*args_of(d), "--per-node", "--mode", "cumulative", env={"TL_TEST_PLANT_BUG": "relu"})
    r_i = tldiff(*args_of(d), "--per-node", "--mode", "isolated", env={"TL_TEST_PLANT_BUG": "relu"})
    n_c = int(re.search(r"(\d+) diverging", r_c.stdout).group(1))
    n_i = int(re.search(r"(\d+) diverging", r_i.stdout).group(1))
    n_relu = sum(n["kind"] == "relu" for n in json.loads((d / "graph.json").read_text())["nodes"])
    assert n_i == n_relu and n_c > n_i


# ---------------------------------------------------------------------- JSON report vs NumPy
def small_graph(tmp_path):
    g = Graph()
    x = g.input([3, 4])
    h = g.linear(x, np.linspace(-1, 1, 20, dtype=np.float32).reshape(5, 4), np.arange(5, dtype=np.float32))
    g.output(g.unary("tanh", h), g.node("softmax", [h], axis=1))
    gp, bp = g.save(tmp_path)
    return g, gp, bp


def test_json_report_against_numpy(tmp_path):
    g, gp, bp = small_graph(tmp_path)
    xv = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    ex = tmp_path / "ex"
    ex.mkdir()
    inp = save_npy(ex / "input.npy", xv)
    # a fake "original" reference: the float64 oracle, rounded, plus a known perturbation
    refs = [np.asarray(r, np.float32) for r in g.reference(xv)]
    refs[0] = refs[0].copy()
    refs[0][2, 3] += np.float32(0.5)
    refs[1] = refs[1].copy()
    refs[1][1, 0] = np.nan
    for j, r in enumerate(refs):
        np.save(ex / f"output_{j}.npy", r)
    rep = tmp_path / "r.json"
    r = tldiff(gp, bp, inp, "--json", rep, "--atol", "1e-4", "--rtol", "0")
    assert r.returncode == 1, r.stdout + r.stderr
    j = json.loads(rep.read_text())
    assert j["config"]["atol"] == 1e-4 and j["config"]["rtol"] == 0 and j["config"]["ulp"] is None
    assert j["config"]["reference"] == str(ex) and j["config"]["input"] == inp
    assert j["config"]["per_node"] is False and j["config"]["mode"] is None
    assert j["config"]["input_shape"] == [3, 4] and j["config"]["output_ids"] == g.output_ids
    assert j["verdict"] == "fail" and j["first_diverging_node"] is None and j["n_inputs"] == 1
    # tlrt's own outputs (tlrun) to recompute every statistic in NumPy
    from graphs import run_tlrun
    (tmp_path / "run").mkdir()
    tl = run_tlrun(tool("tlrun"), gp, bp, xv, tmp_path / "run", n_outputs=2)
    o0 = j["inputs"][0]["outputs"][0]
    assert o0["node"] == g.output_ids[0] and o0["shape"] == [3, 5]
    st = o0["pairs"]["tlrt_vs_original"]
    diff = np.abs(tl[0].astype(np.float64) - refs[0].astype(np.float64))
    assert st["max_abs"] == pytest.approx(diff.max(), rel=1e-12)
    assert st["max_rel"] == pytest.approx((diff / np.abs(refs[0].astype(np.float64))).max(), rel=1e-12)
    assert st["mismatches"] == int((diff > 1e-4).sum()) == 1
    assert st["worst_index"] == [2, 3] and st["pass"] is False and st["numel"] == 15
    u = tl[0].view(np.int32).astype(np.int64), refs[0].view(np.int32).astype(np.int64)
    ordered = [np.where(v >= 0, v, -(v & 0x7FFFFFFF)) for v in u]
    assert st["max_ulp"] == int(np.abs(ordered[0] - ordered[1]).max())
    # NaN in the reference vs a number: a mismatch at [1, 0]; tlrt vs emitted is unaffected
    s1 = j["inputs"][0]["outputs"][1]["pairs"]
    assert s1["tlrt_vs_original"]["mismatches"] == 1 and s1["tlrt_vs_original"]["worst_index"] == [1, 0]
    assert s1["tlrt_vs_original"]["max_abs"] == "inf" and s1["tlrt_vs_original"]["max_ulp"] == "inf"
    assert s1["tlrt_vs_emitted"]["pass"] and s1["emitted_vs_original"]["mismatches"] == 1
    assert j["summary"][0]["tlrt_vs_original"]["mismatches"] == 1
    # text report names the same
    assert "mismatches 1/15 worst [2, 3]  MISMATCH" in r.stdout


def test_explicit_reference_and_tolerances(tmp_path):
    g, gp, bp = small_graph(tmp_path)
    xv = np.random.default_rng(6).standard_normal((3, 4)).astype(np.float32)
    inp = save_npy(tmp_path / "input.npy", xv)
    refd = tmp_path / "refs"
    refd.mkdir()
    refs = [np.asarray(r, np.float32) for r in g.reference(xv)]
    bumped = [np.nextafter(r, np.float32(np.inf)) for r in refs]
    bumped = [np.nextafter(b, np.float32(np.inf)) for b in bumped]     # 2 ULPs up, every element
    for j, r in enumerate(bumped):
        np.save(refd / f"output_{j}.npy", r)
    strict = ["--atol", "0", "--rtol", "0"]
    # 2 ULPs away from the float32-rounded oracle; tlrt itself is within a few ULPs of it
    r = tldiff(gp, bp, inp, "--reference", refd, *strict, "--json", tmp_path / "a.json")
    assert r.returncode == 1
    r = tldiff(gp, bp, inp, "--reference", refd, *strict, "--ulp", "1000", "--json", tmp_path / "b.json")
    assert r.returncode == 0, r.stdout
    jb = json.loads((tmp_path / "b.json").read_text())
    assert jb["config"]["ulp"] == 1000
    for o in jb["inputs"][0]["outputs"]:
        assert o["pairs"]["emitted_vs_original"]["max_ulp"] >= 1
    r = tldiff(gp, bp, inp, "--reference", refd, *strict, "--ulp", "0")
    assert r.returncode == 1


# ---------------------------------------------------------------------- random inputs, progress
def test_random_inputs_and_progress(tmp_path):
    g, gp, bp = small_graph(tmp_path)
    rep = tmp_path / "r.json"
    r = tldiff(gp, bp, "--random", "5", "--seed", "3", "--json", rep, "--per-node")
    assert r.returncode == 0, r.stdout + r.stderr
    # stderr is a pipe: plain periodic lines
    assert [ln for ln in r.stderr.splitlines()] == [f"tldiff: {k}/5 inputs compared" for k in range(1, 6)]
    assert "random x5 (seed 3)" in r.stdout and "over 5 inputs" in r.stdout
    j = json.loads(rep.read_text())
    assert j["n_inputs"] == 5 and len(j["inputs"]) == 5
    assert j["config"]["random"] == 5 and j["config"]["seed"] == 3 and j["config"]["input"] is None
    assert all(len(i["nodes"]) == len(g.nodes) for i in j["inputs"])
    assert j["summary"][0]["tlrt_vs_emitted"]["numel"] == 5 * 15
    # same seed -> same report; another seed -> other inputs
    tldiff(gp, bp, "--random", "5", "--seed", "3", "--json", tmp_path / "same.json", "--per-node")
    tldiff(gp, bp, "--random", "5", "--seed", "4", "--json", tmp_path / "other.json", "--per-node")
    same = json.loads((tmp_path / "same.json").read_text())
    other = json.loads((tmp_path / "other.json").read_text())
    assert same["inputs"] == j["inputs"]
    assert other["inputs"] != j["inputs"]
    # one input: no progress at all
    r = tldiff(gp, bp, "--random", "1")
    assert r.returncode == 0 and r.stderr == ""


def test_progress_bar_on_a_tty(tmp_path):
    g, gp, bp = small_graph(tmp_path)
    master, slave = pty.openpty()
    env = dict(os.environ, TL_PYTHON=PY)
    env.pop("TL_TEST_PLANT_BUG", None)
    p = subprocess.Popen([tool("tldiff"), gp, bp, "--random", "4"], stdout=subprocess.PIPE, stderr=slave,
                         env=env)
    os.close(slave)
    out, _ = p.communicate(timeout=300)
    chunks = b""
    while True:
        try:
            c = os.read(master, 4096)
        except OSError:
            break
        if not c:
            break
        chunks += c
    os.close(master)
    assert p.returncode == 0, out
    err = chunks.decode()
    assert "\rtldiff [" in err and "] 4/4 inputs" in err and "] 1/4 inputs" in err
    assert "inputs compared" not in err


# ---------------------------------------------------------------------- comparison rule (ctypes)
class Tol(C.Structure):
    _fields_ = [("atol", C.c_double), ("rtol", C.c_double), ("ulp", C.c_int64)]


class Stats(C.Structure):
    _fields_ = [("numel", C.c_int64), ("mismatches", C.c_int64), ("max_abs", C.c_double), ("max_rel", C.c_double),
                ("max_ulp", C.c_int64), ("worst", C.c_int64), ("pass_", C.c_bool)]


@pytest.mark.no_asan
def test_compare_rule_nan_inf_ulp():
    p = BUILD / "libtlrt_c.so"
    if not p.exists():
        pytest.fail(f"{p} is not built")
    L = C.CDLL(str(p))
    fp = C.POINTER(C.c_float)
    L.tl_diff_compare.argtypes = [fp, fp, C.c_int64, C.POINTER(Tol), C.POINTER(Stats)]
    L.tl_diff_ulp.argtypes = [C.c_float, C.c_float]
    L.tl_diff_ulp.restype = C.c_int64

    def cmp(a, e, atol=1e-5, rtol=1.3e-6, ulp=-1):
        a = np.ascontiguousarray(a, np.float32)
        e = np.ascontiguousarray(e, np.float32)
        st = Stats()
        L.tl_diff_compare(a.ctypes.data_as(fp), e.ctypes.data_as(fp), a.size, C.byref(Tol(atol, rtol, ulp)),
                          C.byref(st))
        return st

    nan, inf = np.nan, np.inf
    assert cmp([nan, inf, -inf, 1.0], [nan, inf, -inf, 1.0]).pass_
    st = cmp([nan, 1.0], [1.0, nan])
    assert st.mismatches == 2 and st.max_abs == inf and st.max_ulp == 2 ** 63 - 1
    assert cmp([inf], [3e38]).mismatches == 1
    assert cmp([inf], [-inf]).mismatches == 1
    # |a - e| <= atol + rtol * |e|, e the reference (asymmetric like torch.testing.assert_close)
    assert cmp([1.0 + 1.9e-5], [1.0], atol=1e-5, rtol=1e-5).pass_
    assert not cmp([1.0 + 2.1e-5], [1.0], atol=1e-5, rtol=1e-5).pass_
    assert cmp([100.0], [101.0], atol=0, rtol=0.01).pass_
    assert not cmp([101.0], [100.0], atol=0, rtol=0.0099).pass_
    # ULPs: +0 == -0, across zero counts both sides, ULP rule rescues tiny relative errors
    assert L.tl_diff_ulp(0.0, -0.0) == 0
    assert L.tl_diff_ulp(np.float32(1.0), np.nextafter(np.float32(1.0), np.float32(2))) == 1
    assert L.tl_diff_ulp(np.float32(1e-45), np.float32(-1e-45)) == 2
    one_up = np.nextafter(np.float32(1.0), np.float32(2))
    assert not cmp([one_up], [1.0], atol=0, rtol=0).pass_
    assert cmp([one_up], [1.0], atol=0, rtol=0, ulp=1).pass_
    # worst index: the largest excess over the tolerance among mismatches
    st = cmp([0, 5, 1, 0], [0, 0, 0.999, 4.5], atol=0.01, rtol=0)
    assert st.mismatches == 2 and st.worst == 1 and st.max_abs == pytest.approx(5)
    st = cmp([1, 2, 3], [1, 2, 3])
    assert st.pass_ and st.worst == -1 and st.max_abs == 0 and st.max_rel == 0


# ---------------------------------------------------------------------- bad input: exit 2
def bad(args, message, tmp_path=None, env=None):
    r = tldiff(*args, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr == message + "\n"
    return r


def test_bad_inputs(tmp_path):
    g, gp, bp = small_graph(tmp_path)
    wrong = save_npy(tmp_path / "wrong.npy", np.zeros((4, 3), np.float32))
    ok = save_npy(tmp_path / "ok.npy", np.zeros((3, 4), np.float32))
    bad([gp, bp, wrong], f"{wrong}: shape [4, 3] does not match the graph input node[0] [3, 4]")
    bad([gp, bp, "--random", "0"], "tldiff: --random: expected an integer >= 1, got '0'")
    bad([gp, bp, "--random", "x"], "tldiff: --random: expected an integer >= 1, got 'x'")
    bad([gp, bp, "--atol", "-1"], "tldiff: --atol: expected a number >= 0, got '-1'")
    bad([gp, bp, "--rtol", "abc"], "tldiff: --rtol: expected a number >= 0, got 'abc'")
    bad([gp, bp, "--ulp", "1.5"], "tldiff: --ulp: expected an integer >= 0, got '1.5'")
    bad([gp, bp, "--mode", "sideways", "--per-node"], "tldiff: --mode: expected isolated or cumulative, got 'sideways'")
    bad([gp, bp, "--mode", "isolated"], "tldiff: --mode needs --per-node")
    bad([gp, bp, ok, "--random", "2"], "tldiff: give either input.npy or --random N, not both")
    bad([gp, bp, "--reference", tmp_path], "tldiff: --reference needs an input.npy (the input the reference outputs belong to)")
    bad([gp, bp, "--frob"], "tldiff: unknown option '--frob'")
    bad([gp, bp, ok, "extra"], "tldiff: unexpected argument 'extra'")
    bad([gp, bp, "--json"], "tldiff: --json needs a value")
    bad([gp, bp, "--python", "/nonexistent/python9"],
        "tldiff: cannot run python \"/nonexistent/python9\": No such file or directory")
    # the python side fails (a module that cannot import torch): exit 2 with its last line
    fake = tmp_path / "fakepy"
    fake.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named torch' >&2\nexit 1\n")
    fake.chmod(0o755)
    bad([gp, bp, "--python", fake],
        f"tldiff: python ({fake}) failed running the emitted module (exit 1): ModuleNotFoundError: No module named torch")
    # reference directory without the outputs
    empty = tmp_path / "empty"
    empty.mkdir()
    r = tldiff(gp, bp, ok, "--reference", empty)
    assert r.returncode == 2 and r.stderr.startswith(f"{empty}/output_0.npy: ") and r.stderr.count("\n") == 1
    # a reference of the wrong shape
    refd = tmp_path / "refd"
    refd.mkdir()
    np.save(refd / "output_0.npy", np.zeros((2, 2), np.float32))
    np.save(refd / "output_1.npy", np.zeros((3, 5), np.float32))
    bad([gp, bp, ok, "--reference", refd], f"tldiff: {refd}/output_0.npy: shape [2, 2] does not match output 0 (node 2) [3, 5]")
    np.save(refd / "output_0.npy", np.zeros((3, 5), np.float32))
    np.save(refd / "output_2.npy", np.zeros((3, 5), np.float32))
    bad([gp, bp, ok, "--reference", refd], f"tldiff: {refd}/output_2.npy: the reference has more outputs than the graph's 2")
    # broken graph / params / npy: the loaders' one-line messages
    r = tldiff(tmp_path / "nope.json", bp)
    assert r.returncode == 2 and r.stderr.startswith(f"{tmp_path / 'nope.json'}: ") and r.stderr.count("\n") == 1
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"not an npy")
    r = tldiff(gp, bp, junk)
    assert r.returncode == 2 and r.stderr.startswith(f"{junk}: ") and r.stderr.count("\n") == 1
    r = tldiff()
    assert r.returncode == 2 and r.stderr.startswith("usage: tldiff")
