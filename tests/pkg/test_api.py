"""The Python API of the INSTALLED tlrt package (tests/pkg/run.sh installs the wheel into a clean
venv first). Oracles: NumPy float64 (ref.py) for the bundled graph, PyTorch eager for captures."""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import tlrt
from ref import GRAPH, INPUT, PARAMS, ROOT, mlp_reference

ATOL, RTOL = 1e-5, 1e-5


def close(a, b):
    return np.allclose(a, b, rtol=RTOL, atol=ATOL)


@pytest.fixture(scope="module")
def model():
    with tlrt.load(GRAPH, PARAMS) as m:
        yield m


# ---------------------------------------------------------------- the package itself
def test_installed_package_not_source_tree():
    pkg = Path(tlrt.__file__).resolve().parent
    assert not str(pkg).startswith(str(ROOT / "python")), pkg
    assert str(pkg).startswith(str(Path(sys.prefix).resolve())), (pkg, sys.prefix)
    assert tlrt._lib.find_file("libtlrt.so") == pkg / "lib" / "libtlrt.so"
    for t in ("tlrun", "tlinfo", "tlemit", "tldiff"):
        assert tlrt.tool_path(t) == pkg / "bin" / t and os.access(tlrt.tool_path(t), os.X_OK)
    assert (pkg / "_capture.py").read_bytes() == (ROOT / "scripts" / "export_torchlean_graph.py").read_bytes()
    assert (pkg / "include" / "tlrt" / "tlrt.h").is_file() and (pkg / "include" / "tlrt" / "tl_ops.def").is_file()
    assert tlrt.__version__ == "0.1.0"
    ps = tlrt.paths()
    assert ps["lib"] == pkg / "lib" and (ps["pkgconfig"] / "tlrt.pc").is_file()
    assert (ps["cmake_prefix"] / "lib" / "cmake" / "tlrt" / "tlrtConfig.cmake").is_file()


def test_runtime_needs_only_numpy():
    code = f"""
import sys, json
sys.modules['torch'] = None          # import torch fails from here on
import numpy as np, tlrt
m = tlrt.load({str(GRAPH)!r}, {str(PARAMS)!r})
y, = m.run(np.load({str(INPUT)!r}))
try:
    tlrt.capture(object(), None)
    kind = None
except tlrt.UnsupportedError as e:
    kind = str(e)
print(json.dumps({{"y": y.tolist(), "capture": kind, "torch": 'torch' in sys.modules and sys.modules['torch'] is not None}}))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    out = json.loads(p.stdout)
    assert close(np.array(out["y"]), mlp_reference(np.load(INPUT))[0])
    assert "needs PyTorch" in out["capture"] and not out["torch"]


# ---------------------------------------------------------------- running
def test_run_matches_numpy(model):
    x = np.load(INPUT)
    (y,) = model.run(x)
    assert y.dtype == np.float32 and y.shape == (2, 3)
    assert close(y, mlp_reference(x)[0])
    assert model.input_shape == (2, 4) and model.output_ids == (5,) and model.n_nodes == 6
    assert model.param_bytes == 4 * (4 * 16 + 16 + 16 * 16 + 16 + 16 * 3 + 3)


def test_float64_model():
    """dtype="float64": every op in double; float64 in and out, near the float64 oracle (the
    bundled weights are float32 numbers, so only dgemm's summation order separates them)."""
    x = np.random.default_rng(5).standard_normal((3, 4))  # float64, not float32 numbers
    ref = mlp_reference(x, keep_all=True)
    m = tlrt.load(GRAPH, PARAMS, dtype="float64", keep_all=True)
    (y,) = m.run(x)
    assert y.dtype == np.float64 and y.shape == (3, 3)
    np.testing.assert_allclose(y, ref[5], rtol=1e-13, atol=1e-14)
    v = m.node_value(2)
    assert v.dtype == np.float64
    np.testing.assert_allclose(v, ref[2], rtol=1e-13, atol=1e-14)
    (y32,) = tlrt.load(GRAPH, PARAMS).run(x)  # float32: rounds x, so it is farther off
    assert y32.dtype == np.float32 and np.abs(y32 - ref[5]).max() > 100 * np.abs(y - ref[5]).max()
    (yf,) = m.run(x.astype(np.float32))  # float32 input: widened exactly
    np.testing.assert_allclose(yf, mlp_reference(x.astype(np.float32))[0], rtol=1e-13, atol=1e-14)
    with pytest.raises(tlrt.BadInputError, match="dtype: expected 'float32' or 'float64', got 'float16'"):
        tlrt.load(GRAPH, PARAMS, dtype="float16")


def test_any_batch_one_session_per_shape():
    m = tlrt.load(GRAPH, PARAMS)
    rng = np.random.default_rng(0)
    for b in (1, 2, 7, 64, 7):
        x = rng.standard_normal((b, 4)).astype(np.float32)
        x0 = x.copy()
        (y,) = m.run(x)
        assert y.shape == (b, 3) and close(y, mlp_reference(x)[0])
        assert np.array_equal(x, x0)          # input left alone
    assert sorted(s for s, _ in m.sessions) == [(1, 4), (2, 4), (7, 4), (64, 4)]
    x = rng.standard_normal((5, 8))
    ref = mlp_reference(x[:, ::2])[0]
    for v in (x[:, ::2], x[:, ::2].astype(np.float16).astype(np.float64), np.asfortranarray(x[:, ::2])):
        assert close(m.run(v)[0], mlp_reference(v)[0])      # float64 / strided / Fortran: converted
    assert close(m(x[:, ::2].tolist())[0], ref)             # lists too
    m.clear_sessions()
    assert m.sessions == []
    m.close()
    with pytest.raises(tlrt.Error, match="closed"):
        m.run(x[:, ::2])


def test_threads_setting():
    before = tlrt.get_threads()
    try:
        m = tlrt.load(GRAPH, PARAMS, threads=1)
        assert tlrt.get_threads() == 1
        x = np.random.default_rng(1).standard_normal((33, 4)).astype(np.float32)
        y1 = m.run(x)[0]
        tlrt.set_threads(2)
        assert tlrt.get_threads() == 2
        y2 = m.run(x)[0]
        assert close(y2, y1) and close(y1, mlp_reference(x)[0])
        assert y2.tobytes() == y1.tobytes()  # bitwise at any thread count
        # the session planned at 1 thread was replaced by one planned at 2 (same key)
        assert m.sessions == [((33, 4), 0)]
    finally:
        tlrt.set_threads(before)


def test_concurrent_runs_from_threads(model):
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((b, 4)).astype(np.float32) for b in (3, 3, 9, 9, 3, 17)]
    res, errs = [None] * len(xs), []

    def work(i):
        try:
            for _ in range(50):
                res[i] = model.run(xs[i])[0]
        except Exception as e:  # noqa: BLE001
            errs.append(e)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errs
    for x, y in zip(xs, res, strict=True):
        assert close(y, mlp_reference(x)[0])


def _gil_probe(run, x):
    """Counts how often another Python thread ran during each call run(x), with the switch
    interval raised so that only a call that releases the GIL lets it run."""
    import time
    count, stop = [0], threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1
            time.sleep(0.0002)
    old = sys.getswitchinterval()
    t = threading.Thread(target=spin)
    t.start()
    try:
        while count[0] == 0:
            time.sleep(0.001)
        sys.setswitchinterval(30.0)
        during = []
        for _ in range(5):
            c0 = count[0]
            run(x)
            during.append(count[0] - c0)
    finally:
        sys.setswitchinterval(old)
        stop.set()
        t.join()
    return during


def test_run_releases_the_gil(model):
    x = np.random.default_rng(4).standard_normal((60000, 4)).astype(np.float32)
    during = _gil_probe(model.run, x)
    assert max(during) > 0, during
    # the probe itself: a call that holds the GIL (a NumPy-free pure Python loop) lets nothing run
    assert max(_gil_probe(lambda _: sum(range(300000)), None)) == 0


def test_node_value_keep_all():
    x = np.random.default_rng(3).standard_normal((4, 4)).astype(np.float32)
    ref = mlp_reference(x, keep_all=True)
    m = tlrt.load(GRAPH, PARAMS, keep_all=True)
    m.run(x)
    for i in range(6):
        assert close(m.node_value(i), ref[i]), i
    m2 = tlrt.load(GRAPH, PARAMS)
    with pytest.raises(tlrt.Error, match="run the model first"):
        m2.node_value(5)
    m2.run(x)
    assert close(m2.node_value(5), ref[5])          # outputs are readable without keep_all
    with pytest.raises(tlrt.BadInputError, match=r"node\[1\]: value is not kept"):
        m2.node_value(1)
    with pytest.raises(tlrt.BadInputError, match=r"node\[99\]"):
        m.node_value(99)


def test_profile_and_plan(model):
    x = np.load(INPUT)
    with pytest.raises(tlrt.Error, match="not profiled"):
        tlrt.load(GRAPH, PARAMS).profile()
    prof = model.profile(np.concatenate([x] * 8))
    assert [p.id for p in prof] == list(range(6))
    assert [p.tag for p in prof] == ["input", "linear", "relu", "linear", "relu", "linear"]
    # each relu is fused into the linear before it (its epilogue): computed, but not a step of its own
    assert [p.plan for p in prof] == ["input", "run", "fused", "run", "fused", "run"]
    assert prof[1].shape == (16, 16) and prof[5].shape == (16, 3)
    assert all(p.ns >= 0 for p in prof) and sum(p.ns for p in prof[1:]) > 0
    mp = tlrt.load(GRAPH, PARAMS, profile=True)
    mp.run(x)
    assert len(mp.profile()) == 6
    text = model.plan()
    lines = text.strip().splitlines()
    assert lines[0].startswith("plan: 6 nodes") and "arena" in lines[0]
    rows = [ln.split() for ln in lines[2:]]
    assert [r[0] for r in rows] == [str(i) for i in range(6)] and rows[1][1] == "linear"
    assert "[7, 16]" in model.plan((7, 4))
    assert model.arena_bytes((7, 4)) > model.arena_bytes()


# ---------------------------------------------------------------- capture / emit / diff
torch = pytest.importorskip("torch")
nn = torch.nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        return torch.tanh(self.fc(torch.relu(self.conv(x)).flatten(1)))


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return Net().eval()


@pytest.fixture(scope="module")
def graph(net):
    return tlrt.capture(net, torch.randn(2, 2, 6, 6))


def test_capture_runs_like_pytorch(net, graph, tmp_path):
    assert isinstance(graph, tlrt.Graph) and graph.params and graph.input_shape == (2, 2, 6, 6)
    assert graph.method and graph.example_input.shape == (2, 2, 6, 6)
    m = tlrt.load(graph)
    for b in (2, 5):
        x = torch.randn(b, 2, 6, 6)
        with torch.no_grad():
            ref = net(x).numpy()
        assert close(m.run(x.numpy())[0], ref)
    gp = graph.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"graph.json", "params.bin", "input.npy", "output_0.npy"}
    m2 = tlrt.load(gp, tmp_path / "params.bin")
    assert close(m2.run(graph.example_input)[0], graph.example_outputs[0])
    g2 = tlrt.Graph.from_files(gp, tmp_path / "params.bin")
    assert g2.params == graph.params and np.array_equal(g2.example_input, graph.example_input)


def test_capture_inline_params_and_options(net):
    x = torch.randn(1, 2, 6, 6)
    g = tlrt.capture(net, (x,), inline_params=True, prefer_export=False)
    assert g.params is None and "FX" in g.method
    with torch.no_grad():
        assert close(tlrt.load(g).run(x.numpy())[0], net(x).numpy())
    cap = tlrt._capture_api._capture_module()
    import inspect
    if "allow_rounding" in inspect.signature(cap.export_torchlean_graph).parameters:
        g = tlrt.capture(net, x, allow_rounding=True)
        with torch.no_grad():
            assert close(tlrt.load(g).run(x.numpy())[0], net(x).numpy())
    else:
        with pytest.raises(tlrt.UnsupportedError, match="allow_rounding"):
            tlrt.capture(net, x, allow_rounding=True)


def test_capture_rejections():
    class Gelu(nn.Module):
        def forward(self, x):
            return torch.nn.functional.gelu(x) + torch.sort(x)[0]

    with pytest.raises(tlrt.UnsupportedError) as e:
        tlrt.capture(Gelu(), torch.randn(2, 3))
    assert len(e.value.problems) >= 1 and "gelu" in str(e.value) and e.value.kind == 1

    class Two(nn.Module):
        def forward(self, x, y):
            return x + y

    with pytest.raises(tlrt.BadInputError, match="exactly one input"):
        tlrt.capture(Two(), torch.randn(2))
    with pytest.raises(tlrt.BadInputError, match="nn.Module"):
        tlrt.capture(lambda x: x, torch.randn(2))


def test_emit_pytorch_module_matches(net, graph, tmp_path):
    x = torch.randn(3, 2, 6, 6)
    with torch.no_grad():
        ref = net(x)
    for weights in ("inline", "external"):
        src = tlrt.emit_pytorch(graph, class_name="Emitted", weights=weights)
        assert "class Emitted(nn.Module)" in src
        graph.save(tmp_path)
        (tmp_path / "emitted.py").write_text(src)
        ns = {"__file__": str(tmp_path / "emitted.py"), "__name__": "emitted"}
        cwd = os.getcwd()
        os.chdir(tmp_path)
        try:
            exec(compile(src, str(tmp_path / "emitted.py"), "exec"), ns)
            mod = ns["Emitted"]().eval()
        finally:
            os.chdir(cwd)
        with torch.no_grad():
            assert torch.allclose(mod(x), ref, rtol=RTOL, atol=ATOL)
    src = tlrt.emit_pytorch(GRAPH, PARAMS)
    assert str(PARAMS.resolve()) in src


def test_diff_pass_and_mismatch(graph):
    r = tlrt.diff(graph, per_node=True)   # the capture's example input; its PyTorch outputs as reference
    assert r.passed and r.verdict == "pass" and bool(r) and "verdict: PASS" in r.text
    o = r.outputs[0]
    assert set(o.pairs) == {"tlrt_vs_emitted", "tlrt_vs_original", "emitted_vs_original"}
    assert o.pairs["tlrt_vs_original"].max_abs < 1e-5 and o.pairs["tlrt_vs_original"].numel == 10
    assert r.first_diverging_node is None and r.n_inputs == 1 and len(r.inputs[0]["nodes"]) >= 4
    bad = tlrt.Graph(graph.json_text, graph.params, graph.example_input,
                     [graph.example_outputs[0] + np.float32(0.01)])
    r = tlrt.diff(bad)
    assert not r.passed and r.verdict == "fail"
    assert r.outputs[0].pairs["tlrt_vs_original"].mismatches == 10
    assert r.outputs[0].pairs["tlrt_vs_emitted"].passed
    assert abs(r.outputs[0].pairs["tlrt_vs_original"].max_abs - 0.01) < 1e-4
    r = tlrt.diff(GRAPH, params=PARAMS, random=3, seed=7, atol=1e-6)   # files on disk, random inputs
    assert r.passed and r.n_inputs == 3 and r.config["seed"] == 7 and r.config["atol"] == 1e-6
    assert set(r.outputs[0].pairs) == {"tlrt_vs_emitted"}


# ---------------------------------------------------------------- bad input: typed, never a crash
def _write(tmp, name, data):
    p = tmp / name
    p.write_bytes(data)
    return p


def _corpus(tmp, m):
    g, pb = GRAPH.read_bytes(), PARAMS.read_bytes()
    np.save(tmp / "fortran.npy", np.asfortranarray(np.ones((2, 4), np.float32)))
    good_npy = INPUT.read_bytes()
    np.save(tmp / "wrong.npy", np.ones((2, 5), np.float32))
    other = json.loads(g)
    other["nodes"][1]["out_dim"] = 8
    other["nodes"][1]["shape"] = [2, 8]
    other["nodes"][2]["shape"] = [2, 8]
    other["nodes"][3]["in_dim"] = 8
    return [
        ("truncated json", lambda: tlrt.load(_write(tmp, "t.json", g[: len(g) // 2]), PARAMS),
         tlrt.BadInputError, "t.json: invalid JSON"),
        ("empty json", lambda: tlrt.load(_write(tmp, "e.json", b""), PARAMS), tlrt.BadInputError, "e.json"),
        ("not a graph", lambda: tlrt.load(_write(tmp, "a.json", b"[1, 2]"), PARAMS), tlrt.BadInputError, "a.json"),
        ("missing file", lambda: tlrt.load(tmp / "nope.json"), tlrt.BadInputError, "nope.json: cannot open"),
        ("missing params", lambda: tlrt.load(GRAPH), tlrt.BadInputError, "linear has no weight"),
        ("params of another graph", lambda: tlrt.load(_write(tmp, "o.json", json.dumps(other).encode()), PARAMS),
         tlrt.BadInputError, "linear_1_W"),
        ("truncated params", lambda: tlrt.load(GRAPH, _write(tmp, "t.bin", pb[:300])), tlrt.BadInputError, "t.bin"),
        ("garbage npy", lambda: m.run(_write(tmp, "g.npy", b"garbage")), tlrt.BadInputError, "bad magic"),
        ("truncated npy", lambda: m.run(_write(tmp, "t.npy", good_npy[:100])), tlrt.BadInputError, "t.npy: header"),
        ("fortran npy", lambda: m.run(tmp / "fortran.npy"), tlrt.BadInputError, "fortran_order"),
        ("npy of wrong shape", lambda: m.run(tmp / "wrong.npy"), tlrt.BadInputError, "does not match"),
        ("wrong inner dim", lambda: m.run(np.zeros((2, 5), np.float32)), tlrt.BadInputError, "[2, 5]"),
        ("wrong rank", lambda: m.run(np.zeros((2, 4, 1), np.float32)), tlrt.BadInputError, "rank 3"),
        ("scalar input", lambda: m.run(3.0), tlrt.BadInputError, "rank 0"),
        ("complex dtype", lambda: m.run(np.zeros((2, 4), np.complex64)), tlrt.BadInputError, "complex64"),
        ("string dtype", lambda: m.run(np.array([["a"] * 4] * 2)), tlrt.BadInputError, "dtype <U1"),
        ("object input", lambda: m.run([[1, 2], [3]]), tlrt.BadInputError, "input"),
        ("bad graph arg", lambda: tlrt.load(42), tlrt.BadInputError, "got int"),
        ("bad threads", lambda: tlrt.set_threads(0), tlrt.BadInputError, "threads"),
        ("bad class name", lambda: tlrt.emit_pytorch(GRAPH, PARAMS, class_name="1x"), tlrt.BadInputError, "class_name"),
        ("emit missing params", lambda: tlrt.emit_pytorch(GRAPH), tlrt.BadInputError, "linear has no weight"),
        ("diff wrong input", lambda: tlrt.diff(GRAPH, np.zeros((2, 5)), PARAMS), tlrt.BadInputError, "does not match"),
        ("diff bad tolerance", lambda: tlrt.diff(GRAPH, INPUT, PARAMS, atol=-1.0), tlrt.BadInputError, "--atol"),
    ]


def test_bad_input_corpus(tmp_path, model):
    seen = []
    for name, fn, cls, frag in _corpus(tmp_path, model):
        with pytest.raises(cls) as e:
            fn()
        err = e.value
        assert isinstance(err, tlrt.Error) and err.kind == cls.kind, name
        msg = str(err)
        assert msg and "\n" not in msg and frag in msg, (name, msg)
        seen.append(name)
    assert len(seen) == 23
    assert close(model.run(np.load(INPUT))[0], mlp_reference(np.load(INPUT))[0])   # still fine


def test_batch_mixing_graph_is_unsupported():
    class Flat(nn.Module):
        def forward(self, x):
            return torch.relu(x).reshape(-1) * 2.0

    g = tlrt.capture(Flat(), torch.randn(2, 3))
    m = tlrt.load(g)
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
    assert close(m.run(x)[0], np.maximum(x, 0).reshape(-1) * 2)
    with pytest.raises(tlrt.Error) as e:
        m.run(np.zeros((5, 3), np.float32))
    assert "batch 5" in str(e.value) and e.value.kind in (0, 1)


# ---------------------------------------------------------------- console entry points
def test_console_scripts(tmp_path):
    bindir = Path(sys.executable).parent
    p = subprocess.run([bindir / "tlinfo", GRAPH, PARAMS], capture_output=True, text=True)
    assert p.returncode == 0 and "linear" in p.stdout, p.stderr
    out = tmp_path / "y.npy"
    p = subprocess.run([bindir / "tlrun", GRAPH, PARAMS, INPUT, "-o", out], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert close(np.load(out), mlp_reference(np.load(INPUT))[0])
    p = subprocess.run([bindir / "tlrun", GRAPH, PARAMS, tmp_path / "missing.npy"], capture_output=True, text=True)
    assert p.returncode == 2 and "missing.npy" in p.stderr
    p = subprocess.run([bindir / "tlemit", "pytorch", GRAPH, PARAMS, "-o", tmp_path / "m.py"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "class TorchLeanModel" in (tmp_path / "m.py").read_text()
    p = subprocess.run([bindir / "tldiff", GRAPH, PARAMS, tmp_path / "missing.npy"], capture_output=True, text=True)
    assert p.returncode == 2 and "missing.npy" in p.stderr   # (tldiff's PASS path: test_diff_*)
