"""Regenerate the small reference graphs in this folder (TorchLean-style inline payloads).

    .venv/bin/python tests/data/graphs/make_graphs.py

Weights come from seeded torch modules; each graph's expected output for a seeded input is
written next to it as <name>.input.json / <name>.expected.json (nested lists, float32 values
computed by PyTorch) so runtime tests can compare against the oracle.
"""
import json
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent


def t(x):
    return x.detach().to(torch.float32).tolist()


def dump(name, doc, x, y):
    head = {k: v for k, v in doc.items() if k != "nodes"}
    lines = ",\n".join("  " + json.dumps(n) for n in doc["nodes"])
    text = json.dumps(head)[:-1] + ', "nodes": [\n' + lines + "\n]}\n"
    json.loads(text)
    (HERE / f"{name}.json").write_text(text)
    (HERE / f"{name}.input.json").write_text(json.dumps(t(x)) + "\n")
    (HERE / f"{name}.expected.json").write_text(json.dumps(t(y)) + "\n")


def mlp():
    torch.manual_seed(0)
    l1, l2 = nn.Linear(4, 8), nn.Linear(8, 3)
    x = torch.randn(2, 4)
    y = F.softmax(l2(F.relu(l1(x))), dim=1)
    nodes = [
        {"id": 0, "kind": "input", "parents": [], "shape": [2, 4]},
        {"id": 1, "kind": "linear", "parents": [0], "shape": [2, 8], "in_dim": 4, "out_dim": 8,
         "weight": t(l1.weight), "bias": t(l1.bias), "target": "aten.linear.default"},
        {"id": 2, "kind": "relu", "parents": [1], "shape": [2, 8]},
        {"id": 3, "kind": "linear", "parents": [2], "shape": [2, 3], "in_dim": 8, "out_dim": 3,
         "weight": t(l2.weight), "bias": t(l2.bias)},
        {"id": 4, "kind": "softmax", "parents": [3], "shape": [2, 3], "axis": 1},
    ]
    dump("mlp", {"format": "torchlean.ir.v1", "input_id": 0, "output_ids": [4], "nodes": nodes}, x, y)


def cnn():
    torch.manual_seed(1)
    conv, bn, fc = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Linear(64, 5)
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-0.2, 0.2)
    bn.eval()
    x = torch.randn(1, 3, 8, 8)
    h = F.max_pool2d(F.relu(bn(conv(x))), 2, 2)
    y = fc(h.flatten())
    conv_attrs = {"spatial_rank": 2, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1],
                  "padding_after": [1, 1], "dilation": [1, 1], "groups": 1, "channel_axis": 1,
                  "in_channels": 3, "out_channels": 4, "input_spatial": [8, 8]}
    nodes = [
        {"id": 0, "kind": "input", "parents": [], "shape": [1, 3, 8, 8]},
        {"id": 1, "kind": "conv", "parents": [0], "shape": [1, 4, 8, 8], **conv_attrs,
         "weight": t(conv.weight), "bias": t(conv.bias)},
        {"id": 2, "kind": "batch_norm_eval", "parents": [1], "shape": [1, 4, 8, 8], "channel_axis": 1,
         "channels": 4, "eps": bn.eps, "gamma": t(bn.weight), "beta": t(bn.bias),
         "mean": t(bn.running_mean), "var": t(bn.running_var)},
        {"id": 3, "kind": "relu", "parents": [2], "shape": [1, 4, 8, 8]},
        {"id": 4, "kind": "max_pool", "parents": [3], "shape": [1, 4, 4, 4], "spatial_rank": 2,
         "kernel": [2, 2], "stride": [2, 2], "padding": [0, 0]},
        {"id": 5, "kind": "flatten", "parents": [4], "shape": [64], "value_shape": [1, 4, 4, 4]},
        {"id": 6, "kind": "linear", "parents": [5], "shape": [5], "in_dim": 64, "out_dim": 5,
         "weight": t(fc.weight), "bias": t(fc.bias)},
    ]
    dump("cnn", {"format": "torchlean.ir.v1", "input_id": 0, "output_ids": [6], "nodes": nodes}, x, y)


def mha():
    torch.manual_seed(2)
    E = 8
    m = nn.MultiheadAttention(E, 1, batch_first=True, dropout=0.0).eval()
    ln = nn.LayerNorm(E)
    ln.weight.data.uniform_(0.5, 1.5)
    ln.bias.data.uniform_(-0.2, 0.2)
    x = torch.randn(1, 4, E)
    a, w = m(x, x, x)
    y = ln(a)
    qw, kw, vw = m.in_proj_weight.chunk(3)
    qb, kb, vb = m.in_proj_bias.chunk(3)
    nodes = [
        {"id": 0, "kind": "input", "parents": [], "shape": [1, 4, E]},
        {"id": 1, "kind": "multihead_attention", "parents": [0, 0, 0], "value_kind": "tuple",
         "tuple_shapes": [[1, 4, E], [1, 4, 4]], "embed_dim": E, "num_heads": 1, "batch_first": True,
         "dropout_zero": True, "scale": 1.0 / E ** 0.5,
         "q_weight": t(qw), "k_weight": t(kw), "v_weight": t(vw), "out_weight": t(m.out_proj.weight),
         "q_bias": t(qb), "k_bias": t(kb), "v_bias": t(vb), "out_bias": t(m.out_proj.bias)},
        {"id": 2, "kind": "tuple_getitem", "parents": [1], "shape": [1, 4, E], "index": 0},
        {"id": 3, "kind": "layernorm", "parents": [2], "shape": [1, 4, E], "axis": 2, "eps": ln.eps,
         "gamma": t(ln.weight), "beta": t(ln.bias)},
    ]
    dump("mha", {"format": "torchlean.ir.v1", "input_id": 0, "output_ids": [3], "nodes": nodes}, x, y)


def legacy_cnn():
    """Old IR spellings: conv2d / max_pool2d over a CHW input, swap_first_two, output_id."""
    torch.manual_seed(3)
    conv = nn.Conv2d(3, 2, 3)
    x = torch.randn(3, 6, 6)
    y = F.max_pool2d(conv(x), 2, 2).transpose(0, 1)
    nodes = [
        {"id": 0, "kind": "input", "parents": [], "shape": [3, 6, 6]},
        {"id": 1, "kind": "conv2d", "parents": [0], "shape": [2, 4, 4], "inC": 3, "outC": 2, "kH": 3,
         "kW": 3, "stride": 1, "padding": 0, "weight": t(conv.weight), "bias": t(conv.bias)},
        {"id": 2, "kind": "max_pool2d", "parents": [1], "shape": [2, 2, 2], "kH": 2, "kW": 2, "stride": 2},
        {"id": 3, "kind": "swap_first_two", "parents": [2], "shape": [2, 2, 2]},
    ]
    dump("legacy_cnn", {"format": "torchlean.ir.v1", "input_id": 0, "output_id": 3, "nodes": nodes}, x, y)


if __name__ == "__main__":
    mlp()
    cnn()
    mha()
    legacy_cnn()
