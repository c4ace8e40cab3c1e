"""The capture adapter's exactness policy and the lowerings behind it: every non-exact lowering is
classified (exact-for-finite / rounded with its ulp bound), rounded ones are refused unless
--allow-rounding, and the lowering report (graph.lowering.json + stdout) says which were used and
where. Checked bit for bit against PyTorch eager through build/tlrun where the lowering is exact."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo_util as Z  # noqa: E402
from conftest import tool  # noqa: E402


def _write(tmp_path, text, name="m.py"):
    (tmp_path / name).write_text(text)
    return tmp_path / name


def _run(d, x, n_out=1, tag="x", graph="graph.json"):
    np.save(d / f"{tag}.npy", x)
    r = subprocess.run([tool("tlrun"), str(d / graph), str(d / "params.bin"), str(d / f"{tag}.npy"),
                        "-o", str(d / f"{tag}_out.npy")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return [np.load(d / (f"{tag}_out.npy" if k == 0 else f"{tag}_out_{k}.npy")) for k in range(n_out)]


def _eager(model_file, cls, x):
    return [t.numpy() for t in Z.eager_outputs(model_file, cls, x)]


def _ulp(a, b):
    ia = a.astype(np.float32).view(np.int32).astype(np.int64)
    ib = b.astype(np.float32).view(np.int32).astype(np.int64)
    ia = np.where(ia < 0, -(ia & 0x7FFFFFFF), ia)
    ib = np.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    return int(np.abs(ia - ib).max())


def _report(d):
    return json.loads((d / "graph.lowering.json").read_text())


DIV = '''
import torch
import torch.nn as nn


class Div(nn.Module):
    def forward(self, x):
        return x / 3.0, x / 8.0, 1.0 / (x.abs() + 1.0)
'''


def test_division_by_a_constant_is_rounded_and_refused_by_default(tmp_path):
    m = _write(tmp_path, DIV)
    out = tmp_path / "out"
    r = Z.capture(m, "Div", out, [4, 33])
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "error: cannot lower Div to torchlean.ir.v1: 1 unsupported operation(s):",
        "  aten.div.Tensor: x / 3.0 (the IR has no division; x * (1/c) with 1/c rounded once) "
        "has no exact form in torchlean.ir.v1; the closest lowering is rounded (within 1 ulp of "
        "PyTorch): --allow-rounding admits it (at m.py:8: return x / 3.0, x / 8.0, "
        "1.0 / (x.abs() + 1.0))"]
    assert Z.files_in(out) == []

    r = Z.capture(m, "Div", out, [4, 33], "--allow-rounding")
    assert r.returncode == 0, r.stderr
    rep = _report(out)
    assert rep["allow_rounding"] is True and rep["counts"] == {"exact-for-finite": 0, "rounded": 1}
    (e,) = rep["lowerings"]
    assert (e["class"], e["ulp"], e["op"], e["module"]) == ("rounded", 1, "aten.div.Tensor", None)
    assert e["source"] == "m.py:8: return x / 3.0, x / 8.0, 1.0 / (x.abs() + 1.0)"
    nodes = Z.load_graph(out / "graph.json")["nodes"]
    assert [nodes[i]["kind"] for i in e["nodes"]] == ["const", "broadcast_to", "mul_elem"]
    lines = r.stdout.splitlines()
    assert lines[2] == (f"lowering report {out / 'graph.lowering.json'}: 0 exact-for-finite, "
                        f"1 rounded (the rest exact):")
    assert lines[3].startswith("  rounded (<= 1 ulp): aten.div.Tensor: x / 3.0 (the IR has no "
                               "division")
    x = np.random.default_rng(0).standard_normal([4, 33]).astype(np.float32) * 10
    got, ref = _run(out, x, 3), _eager(m, "Div", x)
    assert _ulp(got[0], ref[0]) <= 1 and not np.array_equal(got[0], ref[0])   # really rounded
    np.testing.assert_array_equal(got[1], ref[1])      # x / 2^k == x * 2^-k exactly
    np.testing.assert_array_equal(got[2], ref[2])      # 1 / y == inv(y)


POW = '''
import torch
import torch.nn as nn


class Pow(nn.Module):
    def forward(self, x):
        y = x.abs() + 1.0
        return y ** -0.5 + y ** 2 + y ** -1 + torch.rsqrt(y)
'''


def test_pow_minus_half_and_rsqrt_are_rounded(tmp_path):
    m = _write(tmp_path, POW)
    r = Z.capture(m, "Pow", tmp_path / "o", [2, 3])
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 3
    assert lines[1].startswith("  aten.pow.Tensor_Scalar: pow(x, -0.5) -> inv(sqrt(x)) (PyTorch's "
                               "rsqrt kernel rounds differently) has no exact form")
    assert "rounded (within 2 ulp of PyTorch): --allow-rounding admits it" in lines[1]
    assert lines[2].startswith("  aten.rsqrt.default: rsqrt(x) -> inv(sqrt(x))")


SLICES = '''
import torch
import torch.nn as nn


class Slices(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 12)
        self.qkv = nn.Linear(6, 3 * 6)
        self.conv = nn.Conv2d(2, 6, 3, padding=1)

    def forward(self, x):                       # x: [B, N, 6]
        B, N, C = x.shape
        full = self.fc(x)
        q, k, v = self.fc(x).chunk(3, -1)
        a, b = self.fc(x).split([5, 7], dim=2)
        qkv = self.qkv(x).reshape(B, N, 3, 2, 3).permute(2, 0, 3, 1, 4)
        t0, t1, t2 = qkv.unbind(0)
        qkv_full = self.qkv(x)
        c = self.conv(x.reshape(B, 2, N, 3))
        c1 = c[:, 2:4]
        return full, k, b, t1, qkv_full, c, c1
'''


METHODS = {"export": [], "fx": ["--no-torch-export"]}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_feature_axis_slices_are_sliced_producers_bit_for_bit(tmp_path, method):
    m = _write(tmp_path, SLICES)
    r = Z.capture(m, "Slices", tmp_path, [2, 4, 6], *METHODS[method])
    assert r.returncode == 0, r.stderr
    assert "every lowering is exact" in r.stdout
    nodes = Z.load_graph(tmp_path / "graph.json")["nodes"]
    assert sorted(n["out_dim"] for n in nodes if n["kind"] == "linear") == [4, 6, 7, 12, 18]
    assert sorted(n["out_channels"] for n in nodes if n["kind"] == "conv") == [2, 6]
    x = np.random.default_rng(3).standard_normal([2, 4, 6]).astype(np.float32)
    full, k, b, t1, qkv_full, c, c1 = _run(tmp_path, x, 7)
    # within tlrt: the sliced producer computes the same dot products as the full one
    np.testing.assert_array_equal(k, full[..., 4:8])
    np.testing.assert_array_equal(b, full[..., 5:])
    np.testing.assert_array_equal(t1, qkv_full.reshape(2, 4, 3, 2, 3).transpose(2, 0, 3, 1, 4)[1])
    np.testing.assert_array_equal(c1, c[:, 2:4])
    for got, ref in zip((full, k, b, t1, qkv_full, c, c1), _eager(m, "Slices", x), strict=False):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


INDEX = '''
import torch
import torch.nn as nn


class Index(nn.Module):
    def forward(self, x):                       # x: [B, 5, 3]
        return x[:, 0], x[:, ::2], x[:, -1], x[:, 1:3], x[..., 1]
'''


@pytest.mark.parametrize("method", sorted(METHODS))
def test_index_and_slice_of_a_plain_value(tmp_path, method):
    m = _write(tmp_path, INDEX)
    r = Z.capture(m, "Index", tmp_path, [2, 5, 3], *METHODS[method])
    assert r.returncode == 0, r.stderr
    rep = _report(tmp_path)
    # x[:, 0] and x[:, ::2] are one-element max pools (exact); the others selection matrices
    ops = ["aten.select.int", "aten.slice.Tensor", "aten.select.int"] if method == "export" else \
        ["operator.getitem"] * 3
    assert [(e["class"], e["op"]) for e in rep["lowerings"]] == \
        [("exact-for-finite", op) for op in ops]
    assert rep["lowerings"][0]["what"].startswith("index -1 along axis 1 as a linear layer with "
                                                  "a 0/1 selection matrix")
    kinds = [n["kind"] for n in Z.load_graph(tmp_path / "graph.json")["nodes"]]
    assert kinds.count("max_pool") == 2 and kinds.count("linear") == 3
    for batch in (2, 7):
        x = np.random.default_rng(batch).standard_normal([batch, 5, 3]).astype(np.float32)
        for got, ref in zip(_run(tmp_path, x, 5, tag=f"b{batch}"), _eager(m, "Index", x), strict=False):
            np.testing.assert_array_equal(got, ref)       # finite input: bit for bit


POOL = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Pools(nn.Module):
    def forward(self, x):                       # raw input: negative values
        return (F.max_pool2d(x, 3, 2, 1), F.max_pool2d(x, 2, 2, ceil_mode=True),
                F.avg_pool2d(x, 2, 2, count_include_pad=False))
'''


def test_padded_max_pool_ceil_mode_and_count_include_pad(tmp_path):
    m = _write(tmp_path, POOL)
    r = Z.capture(m, "Pools", tmp_path, [2, 3, 8, 8])
    assert r.returncode == 0, r.stderr
    x = np.random.default_rng(5).standard_normal([2, 3, 8, 8]).astype(np.float32)
    got, ref = _run(tmp_path, x, 3), _eager(m, "Pools", x)
    np.testing.assert_array_equal(got[0], ref[0])   # padded cells skipped = PyTorch's -inf padding
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-6, atol=1e-7)
    r = Z.capture(m, "Pools", tmp_path / "odd", [2, 3, 7, 7])
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("  aten.max_pool2d.default: max pooling with ceil_mode=True on "
                               "spatial size [7, 7] adds partial windows (output [4, 4], floor "
                               "mode [3, 3]); torchlean.ir.v1 pools in floor mode")


CLS = '''
import torch
import torch.nn as nn


class ClsToken(nn.Module):
    def __init__(self):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, 4))
        self.fc = nn.Linear(4, 4)

    def forward(self, x):                       # x: [B, 3, 4]
        return self.fc(x) * self.cls_token.expand(x.shape[0], -1, -1)
'''


def test_expanded_constant_rebatches(tmp_path):
    m = _write(tmp_path, CLS)
    r = Z.capture(m, "ClsToken", tmp_path, [2, 3, 4])
    assert r.returncode == 0, r.stderr
    nodes = Z.load_graph(tmp_path / "graph.json")["nodes"]
    consts = [n for n in nodes if n["kind"] == "const"]
    assert [c["shape"] for c in consts] == [[1, 1, 4]]     # one sample, not the captured batch
    assert any(n["kind"] == "broadcast_to" and n["from_shape"] == [1, 1, 4] and
               n["to_shape"] == [2, 1, 4] for n in nodes)
    for batch in (2, 5):
        x = np.random.default_rng(batch).standard_normal([batch, 3, 4]).astype(np.float32)
        (got,), (ref,) = _run(tmp_path, x, tag=f"b{batch}"), _eager(m, "ClsToken", x)
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


INPLACE = '''
import torch
import torch.nn as nn


class InPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        out = self.fc(x)
        out += x
        out.relu_()
        out *= 2.0
        return out


class MutatesBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("seen", torch.zeros(4))

    def forward(self, x):
        self.seen += x.sum(0)
        return x * 2.0
'''


def test_inplace_ops_are_functionalized_and_state_mutation_refused(tmp_path):
    m = _write(tmp_path, INPLACE)
    r = Z.capture(m, "InPlace", tmp_path, [3, 4])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "captured with torch.export"
    kinds = [n["kind"] for n in Z.load_graph(tmp_path / "graph.json")["nodes"]]
    assert kinds[1:] == ["linear", "add", "relu", "const", "broadcast_to", "mul_elem"]
    x = np.random.default_rng(0).standard_normal([3, 4]).astype(np.float32)
    np.testing.assert_allclose(_run(tmp_path, x)[0], _eager(m, "InPlace", x)[0], rtol=1e-6,
                               atol=1e-6)
    r = Z.capture(m, "MutatesBuffer", tmp_path / "mut", [3, 4])
    assert r.returncode == 2
    assert r.stderr == ("error: the model mutates its state in forward (buffer_mutation seen); "
                        "torchlean.ir.v1 graphs are pure\n")


# ---- command line --------------------------------------------------------------------------

def test_example_input_npy(tmp_path):
    x = np.arange(24, dtype=np.float32).reshape(3, 8) / 7.0
    np.save(tmp_path / "in.npy", x)
    r = subprocess.run([Z.PYTHON, str(Z.SCRIPT), str(Z.ZOO_DIR / "mlp.py"), "MLP",
                        str(tmp_path / "g.json"), "--example-input", str(tmp_path / "in.npy"),
                        "--save-example", str(tmp_path / "ex")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "ex" / "input.npy"), x)
    ref = _eager(Z.ZOO_DIR / "mlp.py", "MLP", x)[0]
    np.testing.assert_array_equal(np.load(tmp_path / "ex" / "output_0.npy"), ref)


@pytest.mark.parametrize("case", ["missing_dir", "dir_as_graph", "save_example_file",
                                  "no_example", "both_examples", "bad_npy"])
def test_command_line_errors_are_one_line(tmp_path, case):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "bad.npy").write_text("not numpy")
    graph = {"missing_dir": tmp_path / "nope" / "g.json", "dir_as_graph": tmp_path}.get(
        case, tmp_path / "g.json")
    cmd = [Z.PYTHON, str(Z.SCRIPT), str(Z.ZOO_DIR / "mlp.py"), "MLP", str(graph)]
    cmd += {"save_example_file": ["--example-shape", "2,8", "--save-example",
                                  str(tmp_path / "file.txt")],
            "no_example": [],
            "both_examples": ["--example-shape", "2,8", "--example-input", "x.npy"],
            "bad_npy": ["--example-input", str(tmp_path / "bad.npy")]}.get(
        case, ["--example-shape", "2,8"])
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2
    want = {
        "missing_dir": f"error: {graph}: directory {tmp_path / 'nope'} does not exist\n",
        "dir_as_graph": f"error: {tmp_path}: the graph path is a directory\n",
        "save_example_file": f"error: --save-example {tmp_path / 'file.txt'}: not a directory\n",
        "no_example": "error: give the example input as --example-shape or --example-input "
                      "(exactly one of them)\n",
        "both_examples": "error: give the example input as --example-shape or --example-input "
                         "(exactly one of them)\n",
    }.get(case)
    if want:
        assert r.stderr == want
    else:
        assert r.stderr.startswith(f"error: --example-input {tmp_path / 'bad.npy'}: not a .npy "
                                   f"file (")
        assert len(r.stderr.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npy", "file.txt"]


SDPA = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Sdpa(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("keep", (torch.rand(5, 5) > 0.3) | torch.eye(5, dtype=torch.bool))
        self.register_buffer("bias", torch.randn(5, 5))

    def forward(self, x):                       # x: [B, 2, 5, 4]: heads, tokens, head dim
        a = F.scaled_dot_product_attention(x, x, x, attn_mask=self.keep)
        b = F.scaled_dot_product_attention(x, x * 2.0, x, attn_mask=self.bias)
        c = F.scaled_dot_product_attention(x, x, x, is_causal=True, scale=0.3)
        return a, b, c
'''


def test_sdpa_masks_rounded_and_close_to_eager(tmp_path):
    m = _write(tmp_path, SDPA)
    r = Z.capture(m, "Sdpa", tmp_path / "o", [2, 2, 5, 4])
    assert r.returncode == 2
    assert r.stderr.count("aten.scaled_dot_product_attention.default: scaled_dot_product_"
                          "attention as matmul/softmax/matmul") == 3
    r = Z.capture(m, "Sdpa", tmp_path, [2, 2, 5, 4], "--allow-rounding")
    assert r.returncode == 0, r.stderr
    rep = _report(tmp_path)
    assert rep["counts"] == {"exact-for-finite": 0, "rounded": 3}
    assert all(e["ulp"] is None and e["bound"].startswith("not ulp-bounded") for e in rep["lowerings"])
    for batch in (2, 3):
        x = np.random.default_rng(batch).standard_normal([batch, 2, 5, 4]).astype(np.float32)
        for got, ref in zip(_run(tmp_path, x, 3, tag=f"b{batch}"), _eager(m, "Sdpa", x), strict=False):
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
