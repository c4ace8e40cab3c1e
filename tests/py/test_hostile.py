"""Hostile and odd inputs (issue 15): special float values, subnormals, a big params.bin, files that
change while they are read, tlrun killed while writing, graphs too big for memory.

  - NaN, +-inf, +-0 and subnormals in INPUTS through every elementwise op (unary and binary) and
    in WEIGHTS (linear, conv, batch norm, layernorm), against PyTorch eager float32: NaN exactly
    where PyTorch has NaN, infinities with PyTorch's sign, finite values within the op's ulp
    bound (docs/kernels.md). No op flushes subnormals to zero (tlrt sets no FTZ/DAZ; neither
    does PyTorch): a subnormal x gives abs/relu/max/add-with-zero x bit for bit.
  - params.bin of ~200 MB: peak RSS of tlrun < 1.3x the file (it is read with pread straight
    into each tensor; the multi-GB figure is scripts/reliability_figures.py bigparams, recorded
    in docs/reliability.md).
  - params.bin truncated, or replaced by a rename, between tlrun's header read and its data
    read (an LD_PRELOAD shim on pread does it at exactly that moment): truncation is one-line
    I/O error naming the file, a replaced file is read whole from the inode already open.
  - tlrun -o killed with SIGKILL while it writes a large output: the previous output file is
    intact and no temporary file is left in the directory (the data goes to an O_TMPFILE).
  - the memory refusal (declared activations larger than memory, refused before allocating) is
    tested in tests/c/test_runtime.c (test_memory_limit, TL_MEMORY_LIMIT) and by the CLI cases
    tests/cli/cases/cli_tlinfo_plan_oom_{graph,shape}; here: tlrun refuses a graph whose activations need 2^40 bytes,
    with exit status 3 and a message naming the node.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import tool
from graphs import Graph, save_npy

F = np.float32
SPECIAL = np.array(
    [
        np.nan,
        np.inf,
        -np.inf,
        0.0,
        -0.0,
        1e-40,
        -1e-40,
        1.4e-45,
        1.17549435e-38,
        3.4e38,
        -3.4e38,
        1.0,
        -1.0,
        0.5,
        20.0,
        88.8,
        -104.0,
        1e-30,
        7.0,
        -7.0,
    ],
    F,
)
ULP = {"exp": 2, "log": 2, "sin": 2, "cos": 2, "tanh": 3, "sigmoid": 4, "softplus": 4}
TORCH_UNARY = {
    "abs": torch.abs,
    "sqrt": torch.sqrt,
    "inv": torch.reciprocal,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "exp": torch.exp,
    "log": torch.log,
    "sin": torch.sin,
    "cos": torch.cos,
    "softplus": torch.nn.functional.softplus,
    "detach": lambda t: t,
}
TORCH_BINARY = {
    "add": torch.add,
    "sub": torch.sub,
    "mul_elem": torch.mul,
    "max_elem": torch.maximum,
    "min_elem": torch.minimum,
}


def ulps(a, b):
    def key(v):
        i = np.asarray(v, F).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(2**31) - i, i)

    return np.abs(key(a) - key(b))


def assert_like_torch(got, ref, ulp, what):
    got, ref = np.asarray(got, F), np.asarray(ref, F)
    assert got.shape == ref.shape, what
    nan = np.isnan(ref)
    assert (np.isnan(got) == nan).all(), f"{what}: NaN at {np.isnan(got)} vs torch {nan} ({got} vs {ref})"
    inf = np.isinf(ref)
    assert (got[inf] == ref[inf]).all(), f"{what}: infinities {got[inf]} vs torch {ref[inf]}"
    fin = ~nan & ~inf
    d = ulps(got[fin], ref[fin])
    assert (d <= ulp).all(), f"{what}: {got[fin][d > ulp]} vs torch {ref[fin][d > ulp]} (> {ulp} ulp)"


def run(g, x, tmp, *extra):
    gp, bp = g.save(tmp)
    inp = save_npy(tmp / "x.npy", x)
    out = tmp / "o.npy"
    r = subprocess.run(
        [tool("tlrun"), gp] + ([bp] if bp else []) + [inp, "-o", str(out), *extra], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    return np.load(out)


# ---------------------------------------------------------------------- special values
@pytest.mark.parametrize("op", sorted(TORCH_UNARY))
def test_unary_special_values(op, tmp_path):
    g = Graph()
    x = g.input([1, SPECIAL.size])
    g.output(g.unary(op, x))
    got = run(g, SPECIAL[None], tmp_path)
    ref = TORCH_UNARY[op](torch.from_numpy(SPECIAL[None].copy())).numpy()
    # the exact ops (abs, relu, sqrt, inv, detach) must match bitwise, subnormals included
    assert_like_torch(got, ref, ULP.get(op, 0), op)
    if op in ("abs", "relu", "detach"):
        sub = (np.abs(SPECIAL) < 1.17549435e-38) & (SPECIAL != 0)
        assert (got[0][sub] == ref[0][sub]).all() and (got[0][sub] != 0).any(), "a subnormal was flushed"


@pytest.mark.parametrize("op", sorted(TORCH_BINARY))
def test_binary_special_values(op, tmp_path):
    a = np.repeat(SPECIAL, SPECIAL.size)[None]  # every pair of specials
    b = np.tile(SPECIAL, SPECIAL.size)[None]
    g = Graph()
    x = g.input(list(a.shape))
    g.output(g.binary(op, x, g.const(b)))
    got = run(g, a, tmp_path)
    ref = TORCH_BINARY[op](torch.from_numpy(a.copy()), torch.from_numpy(b.copy())).numpy()
    assert_like_torch(got, ref, 0, op)  # correctly rounded: bitwise (NaN payload aside)


def test_subnormal_arithmetic_is_not_flushed(tmp_path):
    """1e-20 * 1e-20 = 1e-40 (a subnormal result) and subnormal + subnormal stay subnormal, as in
    PyTorch: no FTZ (results) and no DAZ (inputs)."""
    a = np.array([[1e-20, 1e-40, 3e-39, -1e-45]], F)
    b = np.array([[1e-20, 1e-40, 3e-39, 1e-45]], F)
    for op in ("mul_elem", "add"):
        g = Graph()
        x = g.input([1, 4])
        g.output(g.binary(op, x, g.const(b)))
        got = run(g, a, tmp_path)
        ref = TORCH_BINARY[op](torch.from_numpy(a), torch.from_numpy(b)).numpy()
        assert (got.view(np.int32) == ref.view(np.int32)).all(), (op, got, ref)
        nonzero = 1 if op == "mul_elem" else 3  # 1e-40 * 1e-40 does underflow to 0, in PyTorch too
        assert (got[0][:nonzero] != 0).all(), (op, got)


def test_special_values_in_weights(tmp_path):
    """NaN / inf / subnormal weights in linear and conv: NaN and inf exactly where PyTorch has them."""
    W = np.full((4, 5), 0.5, F)
    W[0, 1], W[1, 2], W[2, 3] = np.nan, np.inf, 1e-40
    b = np.array([0.0, -np.inf, 1e-40, 0.0], F)
    x = np.array([[1.0, 2.0, 0.0, -1.0, 1e-39]], F)
    g = Graph()
    xi = g.input([1, 5])
    g.output(g.linear(xi, W, b))
    got = run(g, x, tmp_path)
    ref = torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(W), torch.from_numpy(b)).numpy()
    nan, inf = np.isnan(ref), np.isinf(ref)
    assert (np.isnan(got) == nan).all() and (got[inf] == ref[inf]).all(), (got, ref)
    np.testing.assert_allclose(got[~nan & ~inf], ref[~nan & ~inf], rtol=1e-6, atol=1e-30)

    Wc = np.full((2, 1, 3), 0.25, F)
    Wc[1, 0, 1] = np.inf
    g = Graph()
    xi = g.input([1, 1, 6])
    g.output(g.conv(xi, Wc, np.zeros(2, F), [1], [1]))
    xc = np.array([[[1.0, -1.0, 0.0, 2.0, 1e-40, 3.0]]], F)
    got = run(g, xc, tmp_path)
    ref = torch.nn.functional.conv1d(torch.from_numpy(xc), torch.from_numpy(Wc), torch.zeros(2), padding=1).numpy()
    nan, inf = np.isnan(ref), np.isinf(ref)
    assert (np.isnan(got) == nan).all() and (got[inf] == ref[inf]).all(), (got, ref)
    np.testing.assert_allclose(got[~nan & ~inf], ref[~nan & ~inf], rtol=1e-6, atol=1e-30)


def test_special_values_in_norm_parameters(tmp_path):
    """batch norm with a zero variance (eps saves it), a NaN mean, an inf gamma; layernorm with a NaN
    gamma entry: NaN/inf positions as PyTorch's."""
    x = np.array([[[1.0, 2.0], [3.0, -1.0], [0.5, 1e-40]]], F)  # [1, 3, 2]
    mean, var = np.array([0.0, np.nan, 1.0], F), np.array([0.0, 1.0, 2.0], F)
    gamma, beta = np.array([1.0, 1.0, np.inf], F), np.array([0.0, 0.0, 0.0], F)
    g = Graph()
    xi = g.input([1, 3, 2])
    g.output(g.batch_norm(xi, 1, gamma, beta, mean, var))
    got = run(g, x, tmp_path, "--exact")
    ref = torch.nn.functional.batch_norm(
        torch.from_numpy(x),
        torch.from_numpy(mean),
        torch.from_numpy(var),
        torch.from_numpy(gamma),
        torch.from_numpy(beta),
        eps=1e-5,
    ).numpy()
    nan, inf = np.isnan(ref), np.isinf(ref)
    assert (np.isnan(got) == nan).all() and (got[inf] == ref[inf]).all(), (got, ref)
    np.testing.assert_allclose(got[~nan & ~inf], ref[~nan & ~inf], rtol=1e-5, atol=1e-6)

    lg = np.array([1.0, np.nan], F)
    g = Graph()
    xi = g.input([1, 3, 2])
    g.output(g.layernorm(xi, 2, lg, np.zeros(2, F)))
    got = run(g, x, tmp_path)
    ref = torch.nn.functional.layer_norm(torch.from_numpy(x), [2], torch.from_numpy(lg), torch.zeros(2)).numpy()
    assert (np.isnan(got) == np.isnan(ref)).all(), (got, ref)


# ---------------------------------------------------------------------- a big params.bin
def peak_rss_of(args):
    """Run args; returns (exit status, stderr, the child's peak RSS in bytes). Measured by
    /usr/bin/time: the rusage of a child forked from THIS process would count pytest's own pages
    (Linux folds the pre-exec memory into ru_maxrss)."""
    tm = shutil.which("time", path="/usr/bin:/bin")
    if not tm:
        pytest.skip("/usr/bin/time is not installed")
    r = subprocess.run(
        [tm, "-f", "TL_MAXRSS_KB=%M", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines = r.stderr.strip().splitlines()
    kb = [int(ln.split("=")[1]) for ln in lines if ln.startswith("TL_MAXRSS_KB=")]
    err = "\n".join(ln for ln in lines if not ln.startswith("TL_MAXRSS_KB=") and not ln.startswith("Command "))
    return r.returncode, err, kb[-1] * 1024


@pytest.mark.no_asan  # the sanitizer runtime's shadow memory and quarantine are not the loader's
def test_big_params_peak_rss(tmp_path):
    rng = np.random.default_rng(0)
    OUT, IN = 5000, 10000  # 200 MB of F32
    W = rng.standard_normal((OUT, IN), dtype=np.float32)
    g = Graph()
    x = g.input([1, IN])
    g.output(g.linear(x, W, np.zeros(OUT, F)))
    gp, bp = g.save(tmp_path)
    del W
    xin = np.ones((1, IN), F)
    inp = save_npy(tmp_path / "x.npy", xin)
    rc, err, rss = peak_rss_of([tool("tlrun"), gp, bp, inp, "-o", str(tmp_path / "y.npy")])
    assert rc == 0, err
    size = os.path.getsize(bp)
    assert rss < 1.3 * size, f"peak RSS {rss / 1e6:.0f} MB for a {size / 1e6:.0f} MB params.bin"
    y = np.load(tmp_path / "y.npy")
    Wr = np.asarray(g.params["linear_1_W"], np.float64)
    np.testing.assert_allclose(y[0], Wr.sum(axis=1), rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------------- files changing under the reader
SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/types.h>
/* On the first pread past the first 4 KiB of the file named by TL_SHIM_FILE (the tensor data,
 * after the header): truncate it to TL_SHIM_TRUNC bytes, or rename TL_SHIM_REPLACE over it. */
static int done;
ssize_t pread(int fd, void *buf, size_t n, off_t off) {
    static ssize_t (*real)(int, void *, size_t, off_t);
    if (!real) real = (ssize_t (*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, "pread");
    const char *f = getenv("TL_SHIM_FILE");
    if (f && !done && off >= 4096) {
        done = 1;
        if (getenv("TL_SHIM_TRUNC")) truncate(f, atol(getenv("TL_SHIM_TRUNC")));
        if (getenv("TL_SHIM_REPLACE")) rename(getenv("TL_SHIM_REPLACE"), f);
    }
    return real(fd, buf, n, off);
}
ssize_t pread64(int fd, void *buf, size_t n, off_t off) { return pread(fd, buf, n, off); }
"""


@pytest.fixture
def shim(tmp_path):
    if os.path.exists(os.path.join(os.path.dirname(tool("tlrun")), "CMakeCache.txt")):
        cache = open(os.path.join(os.path.dirname(tool("tlrun")), "CMakeCache.txt")).read()
        if "TL_SANITIZE:BOOL=ON" in cache or "TL_TSAN:BOOL=ON" in cache:
            pytest.skip("an LD_PRELOAD shim cannot come before the sanitizer runtime")
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler for the pread shim")
    so = tmp_path / "shim.so"
    src = tmp_path / "shim.c"
    src.write_text(SHIM)
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(so), str(src), "-ldl"], check=True)
    return str(so)


def big_linear(tmp_path, name, scale):
    g = Graph()
    x = g.input([1, 64])
    g.output(g.linear(x, np.full((256, 64), scale, F), np.zeros(256, F)))  # 64 KiB of weights
    return g.save(tmp_path, name=name)


def test_params_truncated_while_read(tmp_path, shim):
    gp, bp = big_linear(tmp_path, "g", 0.5)
    inp = save_npy(tmp_path / "x.npy", np.ones((1, 64), F))
    env = dict(os.environ, LD_PRELOAD=shim, TL_SHIM_FILE=bp, TL_SHIM_TRUNC="5000")
    r = subprocess.run(
        [tool("tlrun"), gp, bp, inp, "-o", str(tmp_path / "y.npy")], capture_output=True, text=True, env=env
    )
    assert r.returncode == 1, (r.returncode, r.stderr)  # an I/O error, not a crash (SIGBUS) nor bad input
    line = r.stderr.strip()
    assert line.startswith(f"{bp}: cannot read: file changed while being read") and "\n" not in line, line
    assert not (tmp_path / "y.npy").exists()


def test_params_replaced_while_read(tmp_path, shim):
    gp, bp = big_linear(tmp_path, "g", 0.5)
    _, bp2 = big_linear(tmp_path, "other", 2.0)
    inp = save_npy(tmp_path / "x.npy", np.ones((1, 64), F))
    env = dict(os.environ, LD_PRELOAD=shim, TL_SHIM_FILE=bp, TL_SHIM_REPLACE=bp2)
    r = subprocess.run(
        [tool("tlrun"), gp, bp, inp, "-o", str(tmp_path / "y.npy")], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(bp2), "the shim did not run"
    # the whole file as it was when opened: 64 * 0.5, not a mix with the new file's 64 * 2.0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), np.full((1, 256), 32.0, F))


# ---------------------------------------------------------------------- SIGKILL during tlrun -o
def test_kill_during_output_write_leaves_old_file(tmp_path):
    n = 1 << 27  # a 512 MB output: writing + fsync takes long enough to be caught in the act
    g = Graph()
    x = g.input([1, 1])
    g.output(g.node("broadcast_to", [x], from_shape=[1, 1], to_shape=[1, n], shape=[1, n]))
    gp, _ = g.save(tmp_path)
    inp = save_npy(tmp_path / "x.npy", np.ones((1, 1), F))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "y.npy"
    old = np.arange(10, dtype=F)
    np.save(out, old)
    before = out.read_bytes()
    killed_writing = False
    for delay in (0.05, 0.2, 0.5, 1.0):
        p = subprocess.Popen([tool("tlrun"), gp, inp, "-o", str(out)], stderr=subprocess.PIPE)
        # wait until it is writing: its fd table holds a file in out_dir that is not y.npy
        t0 = time.monotonic()
        while p.poll() is None and time.monotonic() - t0 < 30:
            fds = os.listdir(f"/proc/{p.pid}/fd") if os.path.exists(f"/proc/{p.pid}/fd") else []
            targets = []
            for fd in fds:
                try:
                    targets.append(os.readlink(f"/proc/{p.pid}/fd/{fd}"))
                except OSError:
                    pass
            if any(t.startswith(str(out_dir)) for t in targets):
                time.sleep(delay * 0.1)
                break
            time.sleep(0.002)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
            killed_writing = True
        else:
            p.wait()
        if killed_writing:
            break
        np.save(out, old)  # it finished first: restore and try again, faster
        before = out.read_bytes()
    assert killed_writing, "tlrun always finished before it could be killed"
    assert out.read_bytes() == before, "the previous output was modified"
    assert sorted(os.listdir(out_dir)) == ["y.npy"], f"left behind: {os.listdir(out_dir)}"


# ---------------------------------------------------------------------- memory refusal
def test_activations_beyond_memory_are_refused(tmp_path):
    g = Graph()
    x = g.input([1, 1])
    n = 1 << 38  # 1 TiB of floats: refused by the planner before any allocation
    g.output(g.node("broadcast_to", [x], from_shape=[1, 1], to_shape=[1, n], shape=[1, n]))
    gp, _ = g.save(tmp_path)
    inp = save_npy(tmp_path / "x.npy", np.ones((1, 1), F))
    rc, err, rss = peak_rss_of([tool("tlrun"), gp, inp, "-o", str(tmp_path / "y.npy")])
    assert rc == 3, (rc, err)
    assert "node[1]" in err and "\n" not in err.strip(), err
    assert rss < 512 << 20, f"peak RSS {rss >> 20} MB: it allocated before refusing"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
