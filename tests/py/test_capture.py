"""Capture adapter (scripts/export_torchlean_graph.py): zoo models through torch.export and the FX
fallback, checked by tlinfo and tlrun against PyTorch eager; rejections; tlemit capture-script.

Oracles: PyTorch eager (float32, the model rebuilt here with the same seed) and a float64
evaluation of the written graph (zoo_util.ir_eval) that does not depend on tlrt."""
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo_util as Z  # noqa: E402
from conftest import run_tool  # noqa: E402

METHODS = {"export": [], "fx": ["--no-torch-export"]}
# Zoo models that use lowerings which round differently from PyTorch (silu, tanh-GELU, rsqrt,
# x / y, x / sqrt(8), x / a constant tensor): refused by default
# (tests/py/test_capture_exactness.py), captured here with --allow-rounding.
ROUNDED = {k: ["--allow-rounding"] for k in ("activations", "transformer", "dwconv", "two_outputs")}


def _check_outputs(got_list, model_file, cls, x):
    eager = Z.eager_outputs(model_file, cls, x)
    assert len(got_list) == len(eager)
    for got, ref in zip(got_list, eager, strict=False):
        torch.testing.assert_close(torch.as_tensor(np.asarray(got, dtype=np.float32)), ref)


def _tlrun_outputs(out_dir, graph, params, inp, n_out):
    args = [graph] + ([params] if params else []) + [inp, "-o", out_dir / "tl.npy"]
    r = run_tool("tlrun", *args)
    assert r.returncode == 0, r.stderr
    return [np.load(out_dir / ("tl.npy" if k == 0 else f"tl_{k}.npy")) for k in range(n_out)]


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("name", sorted(Z.ZOO))
def test_zoo_capture_runs_in_tlrt(tmp_path, name, method):
    fname, cls, shape = Z.ZOO[name]
    model_file = Z.ZOO_DIR / fname
    r = Z.capture(model_file, cls, tmp_path, shape, "--save-example", tmp_path, *METHODS[method],
                  *ROUNDED.get(name, []))
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    if method == "export":
        assert first == "captured with torch.export"
    else:
        assert first.startswith("captured with FX symbolic tracing")
    graph, params = tmp_path / "graph.json", tmp_path / "params.bin"
    doc = Z.load_graph(graph)
    assert doc["format"] == "torchlean.ir.v1"
    assert [n["id"] for n in doc["nodes"]] == list(range(len(doc["nodes"])))
    assert all(p < n["id"] for n in doc["nodes"] for p in n["parents"])
    assert doc["nodes"][doc["input_id"]]["kind"] == "input"
    assert sum(n["kind"] == "input" for n in doc["nodes"]) == 1

    info = run_tool("tlinfo", graph, params)
    assert info.returncode == 0, info.stderr

    x = np.load(tmp_path / "input.npy")
    assert list(x.shape) == shape and x.dtype == np.float32
    n_out = len(doc["output_ids"])
    saved = [np.load(tmp_path / f"output_{k}.npy") for k in range(n_out)]
    assert not (tmp_path / f"output_{n_out}.npy").exists()
    _check_outputs(saved, model_file, cls, x)                      # --save-example is eager
    _check_outputs(Z.ir_eval(doc, Z.read_safetensors(params), x), model_file, cls, x)
    _check_outputs(_tlrun_outputs(tmp_path, graph, params, tmp_path / "input.npy", n_out),
                   model_file, cls, x)


@pytest.mark.parametrize("name", sorted(Z.ZOO))
def test_zoo_inline_params_need_no_params_bin(tmp_path, name):
    fname, cls, shape = Z.ZOO[name]
    model_file = Z.ZOO_DIR / fname
    r = Z.capture(model_file, cls, tmp_path, shape, "--inline-params", "--save-example", tmp_path,
                  *ROUNDED.get(name, []))
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "params.bin").exists()
    graph = tmp_path / "graph.json"
    doc = Z.load_graph(graph)
    for n in doc["nodes"]:
        if n["kind"] == "linear":
            assert np.asarray(n["weight"]).shape == (n["out_dim"], n["in_dim"])
            assert np.asarray(n["bias"]).shape == (n["out_dim"],)
    info = run_tool("tlinfo", graph)
    assert info.returncode == 0, info.stderr
    x = np.load(tmp_path / "input.npy")
    n_out = len(doc["output_ids"])
    _check_outputs(Z.ir_eval(doc, None, x), model_file, cls, x)
    _check_outputs(_tlrun_outputs(tmp_path, graph, None, tmp_path / "input.npy", n_out),
                   model_file, cls, x)


def test_params_bin_names_shapes_and_zero_bias(tmp_path):
    fname, cls, shape = Z.ZOO["mlp"]
    r = Z.capture(Z.ZOO_DIR / fname, cls, tmp_path, shape, "--params", tmp_path / "w.bin")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "params.bin").exists()
    doc = Z.load_graph(tmp_path / "graph.json")
    tensors = Z.read_safetensors(tmp_path / "w.bin")
    expected = {}
    for n in doc["nodes"]:
        if n["kind"] == "linear":
            expected[f"linear_{n['id']}_W"] = (n["out_dim"], n["in_dim"])
            expected[f"linear_{n['id']}_b"] = (n["out_dim"],)
        elif n["kind"] == "const":
            expected[f"const_{n['id']}"] = tuple(n["value_shape"])
    assert {k: v.shape for k, v in tensors.items()} == expected
    assert all(v.dtype == np.float32 for v in tensors.values())
    # fc3 has bias=False: its linear node carries a zero bias; fc1's weight is the module's.
    model = Z.load_model(Z.ZOO_DIR / fname, cls)
    w3 = model.fc3.weight.detach().numpy()
    fc3_ids = [n["id"] for n in doc["nodes"] if n["kind"] == "linear"
               and np.array_equal(tensors[f"linear_{n['id']}_W"], w3)]
    assert len(fc3_ids) == 2                       # fc3 is applied twice in MLP.forward
    for i in fc3_ids:
        assert np.all(tensors[f"linear_{i}_b"] == 0)
    first = next(n for n in doc["nodes"] if n["kind"] == "linear")
    np.testing.assert_array_equal(tensors[f"linear_{first['id']}_W"], model.fc1.weight.detach().numpy())


def test_conv_and_norm_fields(tmp_path):
    fname, cls, shape = Z.ZOO["dwconv"]
    r = Z.capture(Z.ZOO_DIR / fname, cls, tmp_path, shape, "--allow-rounding")
    assert r.returncode == 0, r.stderr
    doc = Z.load_graph(tmp_path / "graph.json")
    tensors = Z.read_safetensors(tmp_path / "params.bin")
    convs = [n for n in doc["nodes"] if n["kind"] == "conv"]
    dw = convs[0]
    assert (dw["groups"], dw["in_channels"], dw["out_channels"]) == (6, 6, 6)
    assert tensors[f"conv2d_{dw['id']}_kernel"].shape == (6, 1, 3, 3)
    dil = convs[2]
    assert dil["dilation"] == [2, 2] and dil["groups"] == 3 and dil["padding"] == [2, 2]
    c1 = convs[3]          # Conv1d(kernel 4, padding="same"): 1 before, 2 after
    assert (c1["spatial_rank"], c1["padding"], c1["padding_after"]) == (1, [1], [2])
    bn = next(n for n in doc["nodes"] if n["kind"] == "batch_norm_eval")
    assert (bn["channel_axis"], bn["channels"], bn["eps"]) == (1, 6, 1e-5)
    model = Z.load_model(Z.ZOO_DIR / fname, cls)
    np.testing.assert_array_equal(tensors[f"batchnorm_{bn['id']}_var"],
                                  model.bn.running_var.numpy())
    r = Z.capture(Z.ZOO_DIR / "transformer.py", "EncoderLayer", tmp_path / "t", [2, 5, 16],
                  "--allow-rounding")
    assert r.returncode == 0, r.stderr
    lns = [n for n in Z.load_graph(tmp_path / "t" / "graph.json")["nodes"] if n["kind"] == "layernorm"]
    assert [(n["axis"], n["eps"]) for n in lns] == [(2, 1e-5), (2, 1e-6)]


def test_debug_targets_flag(tmp_path):
    fname, cls, shape = Z.ZOO["lenet"]
    r = Z.capture(Z.ZOO_DIR / fname, cls, tmp_path, shape, "--debug-targets")
    assert r.returncode == 0, r.stderr
    targets = [n.get("target") for n in Z.load_graph(tmp_path / "graph.json")["nodes"]]
    assert targets[0] is None                                  # the input node
    assert "aten.conv2d.default" in targets and "aten.max_pool2d.default" in targets
    r = Z.capture(Z.ZOO_DIR / fname, cls, tmp_path / "plain", shape)
    assert all("target" not in n for n in Z.load_graph(tmp_path / "plain" / "graph.json")["nodes"])


# ---- rejections ------------------------------------------------------------------------------

def _assert_nothing_written(d):
    assert Z.files_in(d) == [], Z.files_in(d)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_reject_unsupported_lists_every_op(tmp_path, method):
    out = tmp_path / "out"
    out.mkdir()
    r = Z.capture(Z.ZOO_DIR / "unsupported.py", "Unsupported", out, [2, 4],
                  "--save-example", out, *METHODS[method])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines[0] == "error: cannot lower Unsupported to torchlean.ir.v1: 2 unsupported operation(s):"
    gelu, sort = ("aten.gelu.default", "aten.sort.default") if method == "export" else \
        ("torch.nn.functional.gelu", "torch.sort")
    assert lines[1].startswith(f"  {gelu}: GELU with approximate='none' needs erf")
    assert lines[1].endswith("(at unsupported.py:13: h = F.gelu(self.fc(x)))")
    assert lines[2] == (f"  {sort}: sorting is not in torchlean.ir.v1 "
                        f"(at unsupported.py:14: s, _ = torch.sort(h, dim=-1))")
    assert len(lines) == 3
    _assert_nothing_written(out)


def test_reject_control_flow(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    r = Z.capture(Z.ZOO_DIR / "control_flow.py", "ControlFlow", out, [2, 4])
    assert r.returncode == 2
    msg = r.stderr.strip()
    assert len(msg.splitlines()) == 1
    assert msg.startswith("error: cannot capture ControlFlow: torch.export failed (")
    assert "FX symbolic tracing failed (symbolically traced variables cannot be used as inputs " \
           "to control flow) at control_flow.py:12: if y.sum() > 0:" in msg
    assert msg.endswith("data-dependent Python control flow (if/while on tensor values) cannot "
                        "be represented in torchlean.ir.v1")
    _assert_nothing_written(out)


BAD_OPS = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class BadOps(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 16)

    def forward(self, x):
        h = self.fc(x).view(1, 1, 4, 4)
        a = F.max_pool2d(h, 3, stride=1, padding=1)
        b = F.avg_pool2d(h, 3, stride=1, padding=1, count_include_pad=False)
        c = F.softplus(h, beta=2.0)
        d = F.leaky_relu(h, 1.5)
        e = F.adaptive_avg_pool2d(h, 3)
        f = torch.div(h, 3.0, rounding_mode="floor")
        g = torch.log_softmax(h, dim=-1)
        return a + b + c + d + f + g + e.mean()
'''


def test_reject_lists_all_inexact_configurations(tmp_path):
    (tmp_path / "bad_ops.py").write_text(BAD_OPS)
    out = tmp_path / "out"
    out.mkdir()
    r = Z.capture(tmp_path / "bad_ops.py", "BadOps", out, [1, 4])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines[0] == "error: cannot lower BadOps to torchlean.ir.v1: 6 unsupported operation(s):"
    expect = [
        ("aten.avg_pool2d.default", "padded average pooling with count_include_pad=False",
         "bad_ops.py:15:"),
        ("aten.softplus.default", "softplus with beta=2.0, threshold=20.0", "bad_ops.py:16:"),
        ("aten.leaky_relu.default", "leaky_relu with negative_slope=1.5", "bad_ops.py:17:"),
        ("aten.adaptive_avg_pool2d.default", "adaptive average pooling [4, 4] -> [3, 3] has uneven",
         "bad_ops.py:18:"),
        ("aten.div.Tensor_mode", "division with rounding_mode='floor'", "bad_ops.py:19:"),
        ("aten.log_softmax.int", "log_softmax is not exact in torchlean.ir.v1 and has no bounded "
         "form", "bad_ops.py:20:"),
    ]
    for line, (target, reason, src) in zip(lines[1:], expect, strict=False):
        assert line.startswith(f"  {target}: {reason}"), line
        assert f"(at {src} " in line, line
    _assert_nothing_written(out)


def test_reject_leaves_existing_outputs_untouched(tmp_path):
    graph = tmp_path / "graph.json"
    graph.write_text("previous contents")
    r = Z.capture(Z.ZOO_DIR / "unsupported.py", "Unsupported", tmp_path, [2, 4])
    assert r.returncode == 2
    assert graph.read_text() == "previous contents"
    assert Z.files_in(tmp_path) == ["graph.json"]


TWO_INPUTS = '''
import torch.nn as nn


class TwoIn(nn.Module):
    def forward(self, x, y):
        return x + y
'''


def test_reject_several_inputs(tmp_path):
    (tmp_path / "two_in.py").write_text(TWO_INPUTS)
    out = tmp_path / "out"
    r = subprocess.run([Z.PYTHON, str(Z.SCRIPT), str(tmp_path / "two_in.py"), "TwoIn",
                        str(out / "g.json"), "--example-shape", "2,3", "--example-shape", "2,3"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr == ("error: torchlean.ir.v1 graphs have exactly one input; got 2 example "
                        "inputs for TwoIn (wrap several tensors into one, e.g. torch.cat, inside "
                        "the model)\n")
    r = Z.capture(tmp_path / "two_in.py", "TwoIn", out, [2, 3])
    assert r.returncode == 2
    assert r.stderr == ("error: TwoIn.forward takes 2 tensor inputs (x, y); torchlean.ir.v1 "
                        "graphs have exactly one input\n")
    assert Z.files_in(out) == []


@pytest.mark.parametrize("args,message", [
    (["nope.py", "MLP"], "error: nope.py: no such file\n"),
    (["{zoo}/mlp.py", "Missing"], "error: {zoo}/mlp.py: no class or factory function named Missing\n"),
    (["{zoo}/mlp.py", "MLP", "--example-shape", "2,a"],
     "error: --example-shape '2,a': expected comma-separated sizes, e.g. 1,4\n"),
    (["{zoo}/mlp.py", "MLP", "--inline-params", "--params", "p.bin"],
     "error: --params and --inline-params exclude each other\n"),
    (["{zoo}/mlp.py", "MLP", "--example-shape", "2,5"],
     "error: MLP does not run on an example input of shape (2, 5) (RuntimeError: mat1 and mat2 "
     "shapes cannot be multiplied (2x5 and 8x32)); check --example-shape\n"),
])
def test_bad_command_lines(tmp_path, args, message):
    zoo = str(Z.ZOO_DIR)
    args = [a.format(zoo=zoo) for a in args]
    cmd = [Z.PYTHON, str(Z.SCRIPT), args[0], args[1], str(tmp_path / "g.json")]
    if "--example-shape" not in args:
        cmd += ["--example-shape", "2,8"]
    cmd += args[2:]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == message.format(zoo=zoo)
    assert Z.files_in(tmp_path) == []


def test_not_a_module_factory(tmp_path):
    (tmp_path / "m.py").write_text("def make():\n    return 3\n")
    r = Z.capture(tmp_path / "m.py", "make", tmp_path / "o", [1])
    assert r.returncode == 2
    assert r.stderr == f"error: {tmp_path / 'm.py'}: make() returned int, not an nn.Module\n"


# ---- Python API ------------------------------------------------------------------------------

def _import_script(path, name="tl_capture_api"):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_python_api(tmp_path):
    cap = _import_script(Z.SCRIPT)
    model = Z.load_model(Z.ZOO_DIR / "two_outputs.py", "TwoHeads")
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(5))
    logs = []
    info = cap.export_torchlean_graph(model, x, str(tmp_path / "g.json"), log=logs.append,
                                      allow_rounding=True)
    assert info["method"] == "torch.export" and logs[0] == "captured with torch.export"
    assert sorted(Z.files_in(tmp_path)) == ["g.json", "g.lowering.json", "params.bin"]
    assert json.loads((tmp_path / "g.lowering.json").read_text()) == info["report"]
    doc = Z.load_graph(tmp_path / "g.json")
    assert doc == info["graph"]
    outs = Z.ir_eval(doc, Z.read_safetensors(tmp_path / "params.bin"), x.numpy())
    with torch.no_grad():
        ref = model(x)
    for o, e in zip(outs, ref, strict=False):
        torch.testing.assert_close(o.float(), e)
    with pytest.raises(cap.CaptureError, match="exactly one input; got 2 example inputs"):
        cap.export_torchlean_graph(model, (x, x), str(tmp_path / "h.json"))
    assert not (tmp_path / "h.json").exists()


# ---- tlemit capture-script -------------------------------------------------------------------

def test_tlemit_capture_script_is_the_file():
    r = subprocess.run([run_tool.__globals__["tool"]("tlemit"), "capture-script"],
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == Z.SCRIPT.read_bytes()


def _emit(*opts):
    r = subprocess.run([run_tool.__globals__["tool"]("tlemit"), "capture-script", *opts],
                       capture_output=True, text=True)
    return r


def test_tlemit_capture_script_options(tmp_path):
    base = Z.SCRIPT.read_text()
    r = _emit("--function-name", "capture_my_net", "--no-torch-export", "--debug-targets")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "PREFER_TORCH_EXPORT = False\n" in text and "PREFER_TORCH_EXPORT = True\n" not in text
    assert "INCLUDE_DEBUG_TARGETS = True\n" in text
    assert "def capture_my_net(module, example_inputs," in text
    assert not re.search(r"\bexport_torchlean_graph\b", text)
    # Only those lines change.
    expected = base.replace("PREFER_TORCH_EXPORT = True", "PREFER_TORCH_EXPORT = False") \
        .replace("INCLUDE_DEBUG_TARGETS = False", "INCLUDE_DEBUG_TARGETS = True")
    expected = re.sub(r"\bexport_torchlean_graph\b", "capture_my_net", expected)
    assert text == expected
    # The rewritten script works, uses FX and writes debug targets; its function is importable.
    script = tmp_path / "cap.py"
    script.write_text(text)
    fname, cls, shape = Z.ZOO["mlp"]
    r = Z.capture(Z.ZOO_DIR / fname, cls, tmp_path / "o", shape, script=script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "captured with FX symbolic tracing (torch.export disabled)"
    nodes = Z.load_graph(tmp_path / "o" / "graph.json")["nodes"]
    assert any(n.get("target", "").startswith("call_module:fc1:") for n in nodes)
    assert hasattr(_import_script(script, "tl_capture_renamed"), "capture_my_net")


@pytest.mark.parametrize("name", ["bad-name", "class", "9lives", ""])
def test_tlemit_capture_script_rejects_bad_function_names(name):
    r = _emit("--function-name", name)
    assert r.returncode == 2
    assert r.stdout == ""
    assert f'capture-script: --function-name: "{name}" is not a Python identifier' in r.stderr


# ---- the bundled example ---------------------------------------------------------------------

def test_bundled_example_is_current(tmp_path):
    ex = Z.ROOT / "examples"
    r = Z.capture(ex / "model.py", "DemoMLP", tmp_path, [2, 4], "--save-example", tmp_path)
    assert r.returncode == 0, r.stderr
    for f in ("graph.json", "params.bin", "input.npy"):
        assert (tmp_path / f).read_bytes() == (ex / f).read_bytes(), f
    # PyTorch's own output may differ in the last bits between machines (its BLAS kernels):
    # same shape and dtype, equal within float32 rounding
    got_ref, want_ref = np.load(tmp_path / "output_0.npy"), np.load(ex / "output_0.npy")
    assert got_ref.dtype == want_ref.dtype and got_ref.shape == want_ref.shape
    np.testing.assert_allclose(got_ref, want_ref, rtol=1e-6, atol=1e-7)
    got = _tlrun_outputs(tmp_path, ex / "graph.json", ex / "params.bin", ex / "input.npy", 1)
    _check_outputs(got, ex / "model.py", "DemoMLP", np.load(ex / "input.npy"))
