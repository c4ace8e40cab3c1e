"""Regenerate the libFuzzer seed corpora fuzz/corpus/{graph,params,npy}/ from the test fixtures
(tests/data/, see tests/data/make_params_npy_fixtures.py) plus hand-written graphs that reach most
op rows, inline payloads, legacy spellings and the usual malformations.

    .venv/bin/python fuzz/make_seeds.py"""
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
C = ROOT / "fuzz" / "corpus"


def reset(d):
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


npy = reset(C / "npy")
for p in sorted((ROOT / "tests/data/npy").glob("*.npy")):
    shutil.copy(p, npy / p.name)
par = reset(C / "params")
for p in sorted((ROOT / "tests/data/params").glob("*.bin")):
    shutil.copy(p, par / p.name)


def n(i, kind, parents, shape, **kw):
    d = {"id": i, "kind": kind, "parents": parents, "shape": shape}
    d.update(kw)
    return d


def g(nodes, out, inp=0):
    return {"format": "torchlean.ir.v1", "input_id": inp, "output_ids": out, "nodes": nodes}


W43 = [[0.1 * (r * 4 + c) - 0.5 for c in range(4)] for r in range(3)]
graphs = {
    "params_graph": json.loads((ROOT / "tests/data/params/graph.json").read_text()),
    "mlp_inline": g([n(0, "input", [], [2, 4]),
                     n(1, "linear", [0], [2, 3], in_dim=4, out_dim=3, weight=W43, bias=[0.1, -0.2, 0.3]),
                     n(2, "relu", [1], [2, 3]),
                     n(3, "linear", [2], [2, 2], in_dim=3, out_dim=2, weight=[[1, 0, -1], [0.5, 0.5, 0.5]], bias=[0, 1]),
                     n(4, "softmax", [3], [2, 2], axis=1)], [4]),
    "conv_pool_bn": g([n(0, "input", [], [1, 2, 5, 5]),
                       n(1, "conv", [0], [1, 3, 5, 5], spatial_rank=2, kernel=[3, 3], stride=[1, 1], padding=[1, 1],
                         dilation=[1, 1], groups=1, channel_axis=1, in_channels=2, out_channels=3,
                         input_spatial=[5, 5]),
                       n(2, "max_pool", [1], [1, 3, 2, 2], spatial_rank=2, kernel=[2, 2], stride=[2, 2], padding=[0, 0]),
                       n(3, "batch_norm_eval", [2], [1, 3, 2, 2], channel_axis=1, channels=3, eps=1e-5),
                       n(4, "avg_pool", [3], [1, 3, 1, 1], spatial_rank=2, kernel=[2, 2], stride=[2, 2], padding=[0, 0]),
                       n(5, "flatten", [4], [3], value_shape=[1, 3, 1, 1])], [5]),
    "legacy_conv2d": g([n(0, "input", [], [1, 1, 4, 4]),
                        n(1, "conv2d", [0], [1, 2, 4, 4], inC=1, outC=2, kH=3, kW=3, stride=1, padding=1,
                          weight=[[[[0.0] * 3] * 3]] * 2, bias=[0, 0]),
                        n(2, "max_pool2d", [1], [1, 2, 2, 2], kH=2, kW=2, stride=2),
                        n(3, "swap_first_two", [2], [2, 1, 2, 2])], [3]),
    "shapes": g([n(0, "input", [], [2, 3]),
                 n(1, "permute", [0], [3, 2], perm=[1, 0]),
                 n(2, "transpose", [1], [2, 3], axis1=0, axis2=1),
                 n(3, "reshape", [2], [6], in_shape=[2, 3], out_shape=[6]),
                 n(4, "broadcast_to", [3], [2, 6], from_shape=[6], to_shape=[2, 6]),
                 n(5, "reduce_sum", [4], [2], axes=[1], keepdim=False),
                 n(6, "reduce_mean", [4], [1, 6], axes=[0], keepdim=True),
                 n(7, "concat", [5, 5], [4], axis=0),
                 n(8, "sum", [7], []),
                 n(9, "detach", [8], [])], [9, 6]),
    "elementwise": g([n(0, "input", [], [2, 2]),
                      n(1, "const", [], [2, 2], values=[1, 2, 3, 4]),
                      n(2, "add", [0, 1], [2, 2]), n(3, "sub", [2, 0], [2, 2]), n(4, "mul_elem", [3, 1], [2, 2]),
                      n(5, "max_elem", [4, 0], [2, 2]), n(6, "min_elem", [5, 1], [2, 2]), n(7, "abs", [6], [2, 2]),
                      n(8, "sqrt", [7], [2, 2]), n(9, "inv", [8], [2, 2]), n(10, "tanh", [9], [2, 2]),
                      n(11, "sigmoid", [10], [2, 2]), n(12, "exp", [11], [2, 2]), n(13, "log", [12], [2, 2]),
                      n(14, "sin", [13], [2, 2]), n(15, "cos", [14], [2, 2]), n(16, "softplus", [15], [2, 2]),
                      n(17, "const", [], [], values=[1e-6]), n(18, "safe_log", [16, 17], [2, 2]),
                      n(19, "matmul", [18, 1], [2, 2]), n(20, "mse_loss", [19, 0], []),
                      n(21, "rand_uniform", [], [2, 2], seed=7), n(22, "bernoulli_mask", [17], [], seed=3)],
                     [20, 22]),
    "layernorm_inline": g([n(0, "input", [], [2, 3]),
                           n(1, "layernorm", [0], [2, 3], axis=1, eps=1e-5, gamma=[1, 1, 1], beta=[0, 0, 0])], [1]),
    "mha": g([n(0, "input", [], [1, 2, 2]),
              n(1, "multihead_attention", [0, 0, 0], [1, 2, 2], value_kind="tuple", tuple_shapes=[[1, 2, 2], [1, 2, 2]],
                embed_dim=2, num_heads=1, batch_first=True, dropout_zero=True, scale=0.7071067811865476,
                q_weight=[[1, 0], [0, 1]], k_weight=[[1, 0], [0, 1]], v_weight=[[1, 0], [0, 1]],
                out_weight=[[1, 0], [0, 1]], q_bias=[0, 0], k_bias=[0, 0], v_bias=[0, 0], out_bias=[0, 0]),
              n(2, "tuple_getitem", [1], [1, 2, 2], index=0)], [2]),
    # malformed
    "bad_format": {"format": "torchlean.ir.v2", "input_id": 0, "output_ids": [0], "nodes": [n(0, "input", [], [1])]},
    "bad_parent_order": g([n(0, "input", [], [2]), n(1, "relu", [2], [2]), n(2, "relu", [0], [2])], [2]),
    "bad_arity": g([n(0, "input", [], [2]), n(1, "add", [0], [2])], [1]),
    "bad_shape": g([n(0, "input", [], [2]), n(1, "relu", [0], [3])], [1]),
    "bad_custom": g([n(0, "input", [], [2]), n(1, "custom", [0], [2])], [1]),
    "bad_perm": g([n(0, "input", [], [2, 3]), n(1, "permute", [0], [3, 2], perm=[1, "x"])], [1]),
    "bad_weight": g([n(0, "input", [], [1, 2]),
                     n(1, "linear", [0], [1, 2], in_dim=2, out_dim=2, weight=[[1, 2], [3]], bias=[0, 0])], [1]),
    "empty_nodes": g([], [0]),
}
gd = reset(C / "graph")
for k, v in graphs.items():
    (gd / f"{k}.json").write_text(json.dumps(v))
(gd / "truncated.json").write_text(json.dumps(graphs["mlp_inline"])[:150])
(gd / "not_object.json").write_text("[1, 2, 3]")
print({d.name: len(list(d.iterdir())) for d in (npy, par, gd)})
