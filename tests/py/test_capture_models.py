"""Models written the way researchers write them (tests/zoo: torchvision ResNet, timm ViT, nanoGPT,
nn.MultiheadAttention, a VNN-COMP Normalize layer): captured or rejected (the reason asserted),
then run by build/tlrun and compared with PyTorch eager at the captured batch and at another."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo_util as Z  # noqa: E402
from conftest import tool  # noqa: E402

# name: (file, factory, example shape, capture flags, expected report entries (class, op),
#        re-batches in tlrun? (True, or the refusal message tlrun gives today))
CAPTURED = {
    "tv_resnet": ("tv_resnet.py", "ResNet", [2, 3, 16, 16], [],
                  [("exact-for-finite", "aten.max_pool2d.default")], True),
    "vit_relu": ("vit.py", "vit_relu", [2, 3, 8, 8], [], [],
                 # concat along axis 1 of the class token (const [1,1,C] -> broadcast_to [B,1,C],
                 # uniform per sample) and the patches: the token meets every sample
                 True),
    "nanogpt_flash": ("nanogpt.py", "block_flash_tanh_gelu", [2, 8, 16], ["--allow-rounding"],
                      [("rounded", "aten.scaled_dot_product_attention.default"),
                       ("rounded", "aten.gelu.default")], True),
    "nanogpt_masked": ("nanogpt.py", "block_masked_relu", [2, 8, 16], [],
                       [("exact-for-finite", "aten.masked_fill.Scalar")], True),
    "mha4": ("mha.py", "MHA4", [2, 5, 16], ["--allow-rounding"],
             [("rounded", "aten.scaled_dot_product_attention.default")],
             # PyTorch's MultiheadAttention works sequence-first inside: the batch leaves axis 0.
             "node[1] (transpose) mixes the batch axis (captured batch 2)"),
    "mha4_weights": ("mha.py", "MHA4Weights", [2, 5, 16], [], [],
                     "node[1] (transpose) mixes the batch axis (captured batch 2)"),
    "normalize": ("normalize.py", "NormalizedCNN", [2, 3, 8, 8], ["--allow-rounding"],
                  [("rounded", "aten.div.Tensor")], True),
    "normalize_pow2": ("normalize.py", "NormalizedCNNPow2", [2, 3, 8, 8], [], [], True),
}


def _tlrun(d, x, tag):
    np.save(d / f"x{tag}.npy", x)
    return subprocess.run([tool("tlrun"), str(d / "graph.json"), str(d / "params.bin"),
                           str(d / f"x{tag}.npy"), "-o", str(d / f"y{tag}.npy")],
                          capture_output=True, text=True)


def _outputs(d, tag, n):
    return [np.load(d / (f"y{tag}.npy" if k == 0 else f"y{tag}_{k}.npy")) for k in range(n)]


def _compare(d, model_file, cls, x, tag, n):
    errs = []
    for got, ref in zip(_outputs(d, tag, n), Z.eager_outputs(model_file, cls, x), strict=False):
        torch.testing.assert_close(torch.from_numpy(got), ref)
        errs.append(float(np.abs(got - ref.numpy()).max()))
    return errs


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_model_captured_and_runs(tmp_path, name):
    fname, cls, shape, flags, report, rebatch = CAPTURED[name]
    model_file = Z.ZOO_DIR / fname
    r = Z.capture(model_file, cls, tmp_path, shape, *flags)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "captured with torch.export"
    rep = json.loads((tmp_path / "graph.lowering.json").read_text())
    assert rep["allow_rounding"] == bool(flags)
    assert sorted({(e["class"], e["op"]) for e in rep["lowerings"]}) == sorted(report)
    doc = Z.load_graph(tmp_path / "graph.json")
    n_out = len(doc["output_ids"])
    # at the captured batch
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    t = _tlrun(tmp_path, x, "a")
    assert t.returncode == 0, t.stderr
    errs = _compare(tmp_path, model_file, cls, x, "a", n_out)
    assert max(errs) < 1e-5, errs
    # at another batch
    x2 = np.random.default_rng(2).standard_normal([shape[0] + 3] + shape[1:]).astype(np.float32)
    t = _tlrun(tmp_path, x2, "b")
    if rebatch is True:
        assert t.returncode == 0, t.stderr
        _compare(tmp_path, model_file, cls, x2, "b", n_out)
    else:
        assert t.returncode == 2
        assert rebatch in t.stderr, t.stderr


def test_resnet_inplace_add_is_functionalized(tmp_path):
    """torchvision's `out += identity` and ReLU(inplace=True): captured by torch.export (the
    graph functionalized), the residual an add of the block input."""
    r = Z.capture(Z.ZOO_DIR / "tv_resnet.py", "ResNet", tmp_path, [1, 3, 16, 16])
    assert r.returncode == 0, r.stderr
    kinds = [n["kind"] for n in Z.load_graph(tmp_path / "graph.json")["nodes"]]
    assert kinds.count("add") == 2 and kinds.count("max_pool") == 1
    # an input of 8x8 takes the other branch of the shape-based `if` (no max pool)
    r = Z.capture(Z.ZOO_DIR / "tv_resnet.py", "ResNet", tmp_path / "small", [1, 3, 8, 8])
    assert r.returncode == 0, r.stderr
    kinds = [n["kind"] for n in Z.load_graph(tmp_path / "small" / "graph.json")["nodes"]]
    assert "max_pool" not in kinds


def test_resnet_fx_only_names_shape_control_flow(tmp_path):
    r = Z.capture(Z.ZOO_DIR / "tv_resnet.py", "ResNet", tmp_path, [1, 3, 16, 16],
                  "--no-torch-export")
    assert r.returncode == 2
    msg = r.stderr.strip()
    assert msg.startswith("error: cannot capture ResNet: FX symbolic tracing failed (")
    assert "at tv_resnet.py:81: if x.shape[-1] > 8:" in msg
    assert msg.endswith("FX cannot follow Python control flow on traced values (torch.export "
                        "follows control flow on shapes)")
    assert "data-dependent" not in msg
    assert Z.files_in(tmp_path) == []


REJECTED = {
    "vit_erf_gelu": ("vit.py", "ViT", [1, 3, 8, 8], [
        "  aten.gelu.default: GELU with approximate='none' needs erf, which torchlean.ir.v1 does "
        "not have (GELU(approximate='tanh') is supported) (at vit.py:39: return "
        "self.fc2(self.act(self.fc1(x))); module blocks.0.mlp.act (GELU))",
        "  aten.gelu.default: GELU with approximate='none' needs erf, which torchlean.ir.v1 does "
        "not have (GELU(approximate='tanh') is supported) (at vit.py:39: return "
        "self.fc2(self.act(self.fc1(x))); module blocks.1.mlp.act (GELU))"]),
    "nanogpt": ("nanogpt.py", "Block", [1, 8, 16], [
        "  aten.scaled_dot_product_attention.default: scaled_dot_product_attention as "
        "matmul/softmax/matmul in the order of PyTorch's math backend",
        "  aten.gelu.default: GELU with approximate='none' needs erf"]),
    "mha4": ("mha.py", "MHA4", [1, 5, 16], [
        "  aten.scaled_dot_product_attention.default: scaled_dot_product_attention as "
        "matmul/softmax/matmul"]),
    "normalize": ("normalize.py", "NormalizedCNN", [1, 3, 8, 8], [
        "  aten.div.Tensor: x / c for a constant tensor c (the IR has no division; x * (1/c) "
        "with 1/c rounded once) has no exact form in torchlean.ir.v1; the closest lowering is "
        "rounded (within 1 ulp of PyTorch): --allow-rounding admits it (at normalize.py:16: "
        "return (x - self.mean) / self.std; module norm (Normalize))"]),
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_model_rejected_with_reason(tmp_path, name):
    fname, cls, shape, lines = REJECTED[name]
    r = Z.capture(Z.ZOO_DIR / fname, cls, tmp_path, shape)
    assert r.returncode == 2
    got = r.stderr.strip().splitlines()
    assert got[0].startswith(f"error: cannot lower {cls} to torchlean.ir.v1: {len(lines)} "
                             f"unsupported operation(s):")
    assert len(got) == len(lines) + 1, got
    for g, want in zip(got[1:], lines, strict=False):
        assert g.startswith(want), (g, want)
    if name in ("nanogpt", "mha4"):
        assert "--allow-rounding admits it" in got[1]
    if name == "mha4":     # the user never wrote SDPA: the message names where it came from
        assert got[1].endswith("module attn (MultiheadAttention))")
    assert Z.files_in(tmp_path) == []


KEEP_REJECTING = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class StillRejected(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.lstm = nn.LSTM(4, 4, batch_first=True)

    def forward(self, x):
        a = F.gelu(x)
        b = torch.remainder(x, 2.0)
        c = self.emb(x.abs().long()).sum(1)
        d, _ = self.lstm(x.unsqueeze(0))
        e = x.half().float()
        return a + b + c + d[0] + e
'''


def test_still_rejected(tmp_path):
    (tmp_path / "m.py").write_text(KEEP_REJECTING)
    out = tmp_path / "out"
    r = Z.capture(tmp_path / "m.py", "StillRejected", out, [3, 4])
    assert r.returncode == 2
    text = r.stderr
    lines = text.strip().splitlines()
    assert lines[0] == ("error: cannot lower StillRejected to torchlean.ir.v1: 6 unsupported "
                        "operation(s):")
    want = ["  aten.gelu.default: GELU with approximate='none' needs erf, which torchlean.ir.v1 "
            "does not have (GELU(approximate='tanh') is supported) (at m.py:14: a = F.gelu(x))",
            "  aten.remainder.Scalar: remainder (floor modulo) is not in torchlean.ir.v1 (at "
            "m.py:15: b = torch.remainder(x, 2.0))",
            "  aten.to.dtype: conversion to torch.int64 changes the scalar type (at m.py:16: "
            "c = self.emb(x.abs().long()).sum(1))",
            "  aten.embedding.default: embedding lookups (integer gather) are not in "
            "torchlean.ir.v1 (at m.py:16: c = self.emb(x.abs().long()).sum(1); module emb "
            "(Embedding))",
            "  aten.lstm.input: recurrent layers (LSTM) are not in torchlean.ir.v1 (at m.py:17: "
            "d, _ = self.lstm(x.unsqueeze(0)); module lstm (LSTM))",
            "  aten.to.dtype: conversion to torch.float16 changes the scalar type (at m.py:18: "
            "e = x.half().float())"]
    assert lines[1:] == want
    assert Z.files_in(out) == []


@pytest.mark.parametrize("form", ["small", "inline"])
@pytest.mark.parametrize("cls", ["MHA1", "mha1_no_bias"])
def test_single_head_mha_as_torchlean_tuple_node(tmp_path, cls, form):
    """TorchLean conformance: FX capture writes nn.MultiheadAttention as a multihead_attention
    tuple node + tuple_getitem (payload inline, or in params.bin as
    multihead_attention_<id>_q_weight ...), which tlrun lowers and runs."""
    model_file = Z.ZOO_DIR / "mha.py"
    extra = ["--inline-params"] if form == "inline" else []
    r = Z.capture(model_file, cls, tmp_path, [2, 5, 16], "--no-torch-export", *extra)
    assert r.returncode == 0, r.stderr
    doc = Z.load_graph(tmp_path / "graph.json")
    assert [n["kind"] for n in doc["nodes"]] == ["input", "multihead_attention", "tuple_getitem",
                                                 "linear"]
    mha = doc["nodes"][1]
    assert (mha["parents"], mha["value_kind"], mha["tuple_shapes"]) == \
        ([0, 0, 0], "tuple", [[2, 5, 16], [2, 5, 5]])
    assert (mha["embed_dim"], mha["num_heads"], mha["batch_first"], mha["dropout_zero"],
            mha["scale"], mha["bias"]) == (16, 1, True, True, 0.25, cls == "MHA1")
    assert "shape" not in mha and doc["nodes"][2]["index"] == 0
    model = Z.load_model(model_file, cls)
    w = model.attn.in_proj_weight.detach().numpy()
    if form == "inline":
        assert not (tmp_path / "params.bin").exists()
        np.testing.assert_array_equal(np.asarray(mha["k_weight"], dtype=np.float32), w[16:32])
        params = []
    else:
        assert "k_weight" not in mha
        tensors = Z.read_safetensors(tmp_path / "params.bin")
        # names carry the file's ids; the attention's payloads keep TorchLean's field names
        np.testing.assert_array_equal(tensors["multihead_attention_1_k_weight"], w[16:32])
        np.testing.assert_array_equal(tensors["multihead_attention_1_out_weight"],
                                      model.attn.out_proj.weight.detach().numpy())
        np.testing.assert_array_equal(tensors["linear_3_W"], model.fc.weight.detach().numpy())
        assert not any(k.startswith("linear_") and k != "linear_3_W" and k != "linear_3_b"
                       for k in tensors), sorted(tensors)
        params = [str(tmp_path / "params.bin")]
    rep = json.loads((tmp_path / "graph.lowering.json").read_text())
    assert [(e["class"], e["op"]) for e in rep["lowerings"]] == \
        [("exact-for-finite", "MultiheadAttention module self.attn")]
    x = np.random.default_rng(4).standard_normal([2, 5, 16]).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    t = subprocess.run([tool("tlrun"), str(tmp_path / "graph.json"), *params,
                        str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")],
                       capture_output=True, text=True)
    assert t.returncode == 0, t.stderr
    (ref,) = Z.eager_outputs(model_file, cls, x)
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "y.npy")), ref)


def test_multi_head_mha_on_the_fx_path_is_refused_with_the_reason(tmp_path):
    r = Z.capture(Z.ZOO_DIR / "mha.py", "MHA4Weights", tmp_path, [2, 5, 16], "--no-torch-export")
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert lines[1].startswith("  MultiheadAttention module self.attn: nn.MultiheadAttention with "
                               "num_heads=4 (TorchLean's multihead_attention node lowers one head; "
                               "torch.export, the default, captures several heads exactly) is "
                               "outside TorchLean's multihead_attention lowering")
