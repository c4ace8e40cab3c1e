"""Round trips between tlrt's .npy / params.bin code (through libtlrt_c.so, ctypes) and the Python
readers/writers that define those formats: numpy.load / np.save and safetensors (numpy + torch)."""
import ctypes as C
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file as st_np_load, save_file as st_np_save
from safetensors.torch import load_file as st_torch_load

from conftest import BUILD, ROOT

TL_MAX_RANK = 8


class Err(C.Structure):
    _fields_ = [("msg", C.c_char * 1024)]


# Loads libtlrt_c.so into the Python process with ctypes: not possible for the ASan build (the
# sanitizer runtime must come first); the C tests cover the same readers under ASan.
pytestmark = pytest.mark.no_asan


class Shape(C.Structure):
    _fields_ = [("rank", C.c_int), ("dim", C.c_int64 * TL_MAX_RANK)]


class Tensor(C.Structure):
    _fields_ = [("shape", Shape), ("data", C.POINTER(C.c_float)), ("owned", C.c_bool)]


@pytest.fixture(scope="module")
def lib():
    p = BUILD / "libtlrt_c.so"
    if not p.exists():
        pytest.fail(f"{p} is not built: run cmake --build {BUILD}")
    L = C.CDLL(str(p))
    L.tl_npy_save.argtypes = [C.c_char_p, C.POINTER(Shape), C.POINTER(C.c_float), C.POINTER(Err)]
    L.tl_npy_load.argtypes = [C.c_char_p, C.POINTER(C.POINTER(Tensor)), C.POINTER(Err)]
    L.tl_tensor_free.argtypes = [C.POINTER(Tensor)]
    L.tl_graph_load_json.argtypes = [C.c_char_p, C.POINTER(C.c_void_p), C.POINTER(Err)]
    L.tl_params_load.argtypes = [C.c_void_p, C.c_char_p, C.POINTER(Err)]
    L.tl_params_save.argtypes = [C.c_void_p, C.c_char_p, C.POINTER(Err)]
    L.tl_params_check_complete.argtypes = [C.c_void_p, C.c_char_p, C.POINTER(Err)]
    L.tl_graph_free.argtypes = [C.c_void_p]
    return L


def c_npy_save(lib, path, arr):
    arr = np.array(arr, dtype=np.float32, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    s = Shape(arr.ndim, (C.c_int64 * TL_MAX_RANK)(*arr.shape))
    e = Err()
    rc = lib.tl_npy_save(str(path).encode(), C.byref(s), arr.ctypes.data_as(C.POINTER(C.c_float)), C.byref(e))
    assert rc == 0, e.msg.decode()


def c_npy_load(lib, path):
    t = C.POINTER(Tensor)()
    e = Err()
    rc = lib.tl_npy_load(str(path).encode(), C.byref(t), C.byref(e))
    if rc != 0:
        return None, e.msg.decode()
    shape = tuple(t.contents.shape.dim[i] for i in range(t.contents.shape.rank))
    n = int(np.prod(shape)) if shape else 1
    vals = np.ctypeslib.as_array(t.contents.data, shape=(max(n, 1),))[:n].copy().reshape(shape)
    lib.tl_tensor_free(t)
    return vals, None


SHAPES = [(), (1,), (7,), (2, 3), (0, 4), (3, 1, 2), (1, 2, 1, 2, 1, 2, 1, 2)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_npy_save_is_read_by_numpy(lib, tmp_path, shape):
    rng = np.random.default_rng(len(shape))
    a = np.asarray(rng.standard_normal(shape), dtype=np.float32)
    p = tmp_path / "x.npy"
    c_npy_save(lib, p, a)
    b = np.load(p, allow_pickle=False)
    assert b.dtype == np.float32 and b.shape == a.shape and b.flags.c_contiguous
    np.testing.assert_array_equal(b, a)
    assert [q.name for q in tmp_path.iterdir()] == ["x.npy"]  # no temporary file left behind


def test_npy_save_replaces_existing_file(lib, tmp_path):
    p = tmp_path / "x.npy"
    np.save(p, np.arange(100, dtype=np.float64))
    c_npy_save(lib, p, np.array([1.5, -2.0], dtype=np.float32))
    np.testing.assert_array_equal(np.load(p), np.array([1.5, -2.0], dtype=np.float32))


DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_]


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).str)
def test_npy_load_numpy_written(lib, tmp_path, dtype, version):
    rng = np.random.default_rng(7)
    a = (rng.standard_normal((3, 5)) * 100).astype(dtype)
    p = tmp_path / "a.npy"
    with open(p, "wb") as f:
        np.lib.format.write_array(f, a, version=version)
    got, err = c_npy_load(lib, p)
    assert err is None, err
    np.testing.assert_array_equal(got, a.astype(np.float32))  # NumPy's own conversion is the oracle


def test_npy_load_rejects_numpy_fortran_and_big_endian(lib, tmp_path):
    p = tmp_path / "f.npy"
    np.save(p, np.asfortranarray(np.ones((2, 3), dtype=np.float32)))
    assert c_npy_load(lib, p)[1] == f"{p}: header: fortran_order True is not supported (write C order)"
    np.save(p, np.ones(3, dtype=">f4"))
    assert c_npy_load(lib, p)[1] == f"{p}: header: big-endian data ('>f4') is not supported"


GRAPH = ROOT / "tests/data/params/graph.json"
NAMES = {"linear_1_W": (3, 4), "linear_1_b": (3,), "const_2": (2, 3), "layernorm_4_gamma": (3,),
         "layernorm_4_beta": (3,)}


def load_graph(lib):
    g = C.c_void_p()
    e = Err()
    assert lib.tl_graph_load_json(str(GRAPH).encode(), C.byref(g), C.byref(e)) == 0, e.msg.decode()
    return g


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16], ids=lambda d: np.dtype(d).str)
def test_params_round_trip_through_safetensors(lib, tmp_path, dtype):
    rng = np.random.default_rng(11)
    src = {k: rng.standard_normal(s).astype(dtype) for k, s in NAMES.items()}
    pin, pout = tmp_path / "in.bin", tmp_path / "out.bin"
    st_np_save(src, str(pin))
    g = load_graph(lib)
    e = Err()
    try:
        assert lib.tl_params_load(g, str(pin).encode(), C.byref(e)) == 0, e.msg.decode()
        assert lib.tl_params_check_complete(g, str(pin).encode(), C.byref(e)) == 0, e.msg.decode()
        assert lib.tl_params_save(g, str(pout).encode(), C.byref(e)) == 0, e.msg.decode()
    finally:
        lib.tl_graph_free(g)
    back = st_np_load(str(pout))
    assert sorted(back) == sorted(NAMES)
    for k, v in src.items():
        assert back[k].dtype == np.float32 and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k], v.astype(np.float32))
    tb = st_torch_load(str(pout))
    for k, v in src.items():
        assert torch.equal(tb[k], torch.from_numpy(v.astype(np.float32)))
    # the header: names sorted, offsets contiguous, data section 8-byte aligned
    raw = pout.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert (8 + n) % 8 == 0
    hdr = json.loads(raw[8:8 + n])
    assert hdr.pop("__metadata__") == {"format": "pt"}
    assert list(hdr) == sorted(hdr)
    ends = 0
    for k in sorted(hdr, key=lambda k: hdr[k]["data_offsets"][0]):
        b, en = hdr[k]["data_offsets"]
        assert b == ends and hdr[k]["dtype"] == "F32"
        ends = en
    assert 8 + n + ends == len(raw)


def test_params_written_by_torch_bf16(lib, tmp_path):
    from safetensors.torch import save_file as st_torch_save
    src = {k: torch.randn(s, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16) for k, s in NAMES.items()}
    pin, pout = tmp_path / "in.bin", tmp_path / "out.bin"
    st_torch_save(src, str(pin))
    g = load_graph(lib)
    e = Err()
    try:
        assert lib.tl_params_load(g, str(pin).encode(), C.byref(e)) == 0, e.msg.decode()
        assert lib.tl_params_save(g, str(pout).encode(), C.byref(e)) == 0, e.msg.decode()
    finally:
        lib.tl_graph_free(g)
    back = st_torch_load(str(pout))
    for k, v in src.items():
        assert torch.equal(back[k], v.float())
