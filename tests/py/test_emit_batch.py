"""Emitted modules run at any batch the graph admits, and find params.bin next to themselves.

A zoo model captured at batch 1 is emitted with `tlemit pytorch`; the module is then imported
from another working directory and run at batch 5, and its outputs are compared with tlrun at
batch 5 and with the original PyTorch model (eager) on the same input.
"""
import importlib.util
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

import zoo_util as Z
from conftest import tool
from graphs import run_tlrun

RNG = np.random.default_rng(77)


def load_module(path):
    spec = importlib.util.spec_from_file_location(f"emitted_{path.parent.name}", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


@pytest.mark.parametrize("name", ["mlp", "lenet", "resblock", "transformer", "dwconv"])
def test_emitted_module_runs_at_another_batch(name, tmp_path):
    fname, cls, shape = Z.ZOO[name]
    r = Z.capture(Z.ZOO_DIR / fname, cls, tmp_path, [1] + shape[1:], *Z.ROUNDED.get(name, []))
    assert r.returncode == 0, r.stderr
    gp, bp = tmp_path / "graph.json", tmp_path / "params.bin"
    out = tmp_path / "mod" / "model.py"
    out.parent.mkdir()
    shutil.copy(bp, out.parent / "params.bin")
    e = subprocess.run([tool("tlemit"), "pytorch", str(gp), str(out.parent / "params.bin"),
                                      "-o", str(out)], capture_output=True, text=True)
    assert e.returncode == 0, e.stderr
    n_out = len(Z.load_graph(gp)["output_ids"])
    x = RNG.standard_normal([5] + shape[1:]).astype(np.float32)
    want = run_tlrun(tool("tlrun"), gp, bp, x, tmp_path, n_outputs=n_out)
    moved = tmp_path / "moved"
    out.parent.rename(moved)   # module + params.bin moved together: still found
    cwd = os.getcwd()
    os.chdir(tmp_path)   # the module must not depend on the working directory
    try:
        mod = load_module(moved / "model.py").TorchLeanModel()
        with torch.no_grad():
            got = mod(torch.from_numpy(x))
    finally:
        os.chdir(cwd)
    got = got if isinstance(got, tuple) else (got,)
    eager = Z.eager_outputs(Z.ZOO_DIR / fname, cls, x)
    assert len(got) == len(want) == len(eager)
    for g, w, ref in zip(got, want, eager, strict=True):
        assert tuple(g.shape) == w.shape and w.shape[0] == 5
        torch.testing.assert_close(g, torch.from_numpy(w))
        torch.testing.assert_close(g, ref)
