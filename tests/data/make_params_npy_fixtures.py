"""Regenerate the tiny .npy / params.bin fixtures (and their plain-text oracles) used by
tests/c/test_params_npy.c, tests/cli/cases/{params,npy}_* and the fuzz seed corpora.

    .venv/bin/python tests/data/make_params_npy_fixtures.py

Oracle files (*.expected.txt): one line per tensor, `name rank dims... values...`, every value the
float32 that NumPy (or PyTorch for bfloat16) converts the stored number to, printed with 9
significant digits (exact for float32). npy files use the name `-`."""
import json
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file as np_save
from safetensors.torch import save_file as torch_save

HERE = Path(__file__).resolve().parent
NPY = HERE / "npy"
PAR = HERE / "params"
rng = np.random.default_rng(20240611)


def fmt(v):
    v = np.float32(v)
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return "%.9g" % float(v)


def line(name, a32):
    a32 = np.asarray(a32, dtype=np.float32)
    return " ".join([name, str(a32.ndim), *map(str, a32.shape), *map(fmt, a32.reshape(-1))])


def write_expected(path, lines):
    path.write_text("\n".join(lines) + "\n")


# ---------------- .npy: valid ----------------
def npy_valid(name, arr, version=None):
    p = NPY / f"{name}.npy"
    with open(p, "wb") as f:
        np.lib.format.write_array(f, arr, version=version, allow_pickle=False)
    write_expected(NPY / f"{name}.expected.txt", [line("-", arr.astype(np.float32))])


npy_valid("f4_2x3", rng.standard_normal((2, 3)).astype(np.float32))
npy_valid("f8_5", np.array([1e-3, -2.5, 3.0e38, 1e-46, np.pi]))   # 1e-46 -> float32 0 (underflow), pi rounds
npy_valid("f2_6", np.array([0.5, -65504, 6e-8, np.inf, -0.0, 1.0009765625], dtype=np.float16))
npy_valid("i4_4", np.array([-7, 0, 16777217, 2**31 - 1], dtype=np.int32))   # 16777217 rounds in float32
npy_valid("i8_2x2", np.array([[-(2**40), 3], [5, 2**53 + 1]], dtype=np.int64))
npy_valid("i2_3", np.array([-32768, 1, 32767], dtype=np.int16))
npy_valid("i1_3", np.array([-128, 0, 127], dtype=np.int8))
npy_valid("u1_5", np.array([0, 1, 127, 128, 255], dtype=np.uint8))
npy_valid("b1_4", np.array([True, False, False, True]))
npy_valid("scalar_f4", np.array(2.75, dtype=np.float32))
npy_valid("empty_0x3", np.zeros((0, 3), dtype=np.float32))
npy_valid("rank4_f4", rng.standard_normal((2, 1, 3, 2)).astype(np.float32))
npy_valid("v2_f4", rng.standard_normal((3,)).astype(np.float32), version=(2, 0))
npy_valid("v3_f8", rng.standard_normal((2, 2)), version=(3, 0))
npy_valid("f4_big_header_pad", rng.standard_normal((1, 7)).astype(np.float32))


# ---------------- .npy: malformed (each one error class) ----------------
def npy_bytes(header_dict_text, data, version=(1, 0), pad=True):
    h = header_dict_text.encode("latin1")
    pre = 10 if version[0] == 1 else 12
    if pad:
        total = (pre + len(h) + 1 + 63) // 64 * 64
        h = h + b" " * (total - pre - len(h) - 1) + b"\n"
    lenfield = struct.pack("<H", len(h)) if version[0] == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes(version) + lenfield + h + data


f4x6 = np.arange(6, dtype=np.float32).tobytes()
bad = {
    "bad_magic": b"\x93NUMPX\x01\x00" + npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", f4x6)[8:],
    "bad_version": npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", f4x6, version=(4, 0)),
    "bad_hlen": b"\x93NUMPY\x01\x00" + struct.pack("<H", 5000) + b"{'descr': '<f4'}",
    "big_endian": npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }",
                            np.arange(6, dtype=">f4").tobytes()),
    "fortran": npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f4x6),
    "complex": npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", f4x6),
    "truncated": npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4x6[:20]),
    "trailing": npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4x6 + b"\0\0\0\0"),
    "shape_overflow": npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", b""),
    "missing_shape": npy_bytes("{'descr': '<f4', 'fortran_order': False, }", f4x6),
    "unknown_key": npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': 1, }", f4x6),
    "dup_key": npy_bytes("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", f4x6),
    "syntax": npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': [6], }", f4x6),
    "one_tuple": npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", f4x6),
    "structured": npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", f4x6),
    "rank9": npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,6), }", f4x6),
    "after_dict": npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), } x", f4x6),
}
# numpy itself writes fortran_order True for an F-contiguous array: keep one such real file too
with open(NPY / "bad_fortran_numpy.npy", "wb") as f:
    np.lib.format.write_array(f, np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
for k, v in bad.items():
    (NPY / f"bad_{k}.npy" if not k.startswith("bad_") else NPY / f"{k}.npy").write_bytes(v)


# ---------------- params.bin ----------------
graph = {
    "format": "torchlean.ir.v1", "input_id": 0, "output_ids": [4],
    "nodes": [
        {"id": 0, "kind": "input", "parents": [], "shape": [2, 4]},
        {"id": 1, "kind": "linear", "parents": [0], "shape": [2, 3], "in_dim": 4, "out_dim": 3},
        {"id": 2, "kind": "const", "parents": [], "shape": [2, 3]},
        {"id": 3, "kind": "add", "parents": [1, 2], "shape": [2, 3]},
        {"id": 4, "kind": "layernorm", "parents": [3], "shape": [2, 3], "axis": 1, "eps": 1e-5},
    ],
}
(PAR / "graph.json").write_text(json.dumps(graph, indent=1) + "\n")
P = {
    "linear_1_W": rng.standard_normal((3, 4)),
    "linear_1_b": rng.standard_normal((3,)),
    "const_2": rng.standard_normal((2, 3)),
    "layernorm_4_gamma": 1 + 0.1 * rng.standard_normal((3,)),
    "layernorm_4_beta": 0.1 * rng.standard_normal((3,)),
}


def params_valid(name, tensors, oracle):
    write_expected(PAR / f"{name}.expected.txt", [line(k, oracle[k]) for k in sorted(oracle)])


for dt, npdt in (("f32", np.float32), ("f64", np.float64), ("f16", np.float16)):
    t = {k: v.astype(npdt) for k, v in P.items()}
    np_save(t, str(PAR / f"params_{dt}.bin"))
    params_valid(f"params_{dt}", t, {k: v.astype(np.float32) for k, v in t.items()})
tb = {k: torch.tensor(v, dtype=torch.bfloat16) for k, v in P.items()}
torch_save(tb, str(PAR / "params_bf16.bin"), metadata={"format": "pt"})
params_valid("params_bf16", tb, {k: v.float().numpy() for k, v in tb.items()})
# mixed dtypes in one file, written by PyTorch
tm = {"linear_1_W": torch.tensor(P["linear_1_W"], dtype=torch.float64),
      "linear_1_b": torch.tensor(P["linear_1_b"], dtype=torch.float16),
      "const_2": torch.tensor(P["const_2"], dtype=torch.float32),
      "layernorm_4_gamma": torch.tensor(P["layernorm_4_gamma"], dtype=torch.bfloat16),
      "layernorm_4_beta": torch.tensor(P["layernorm_4_beta"], dtype=torch.float32)}
torch_save(tm, str(PAR / "params_mixed.bin"))
params_valid("params_mixed", tm, {k: v.float().numpy() for k, v in tm.items()})
# only the linear weights: loads, then fails the completeness check (missing const_2, ...)
np_save({"linear_1_W": P["linear_1_W"].astype(np.float32)}, str(PAR / "params_partial.bin"))


def st_bytes(header, data, pad=True):
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def ent(dtype, shape, b, e):
    return {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}


W = P["linear_1_W"].astype(np.float32).tobytes()       # 48 bytes
bvec = P["linear_1_b"].astype(np.float32).tobytes()    # 12 bytes
pbad = {
    "unknown_name": st_bytes({"foo": ent("F32", [3], 0, 12)}, bvec),
    "wrong_shape": st_bytes({"linear_1_W": ent("F32", [4, 3], 0, 48)}, W),
    "dtype_i32": st_bytes({"linear_1_b": ent("I32", [3], 0, 12)}, bvec),
    "overlap": st_bytes({"linear_1_W": ent("F32", [3, 4], 0, 48), "linear_1_b": ent("F32", [3], 40, 52)}, W + bvec),
    "gap": st_bytes({"linear_1_b": ent("F32", [3], 4, 16)}, b"\0\0\0\0" + bvec),
    "trailing": st_bytes({"linear_1_b": ent("F32", [3], 0, 12)}, bvec + b"\0" * 8),
    "offsets_outside": st_bytes({"linear_1_b": ent("F32", [3], 0, 12)}, bvec[:8]),
    "size_mismatch": st_bytes({"linear_1_b": ent("F32", [3], 0, 8)}, bvec[:8]),
    "numel_overflow": st_bytes({"linear_1_b": ent("F32", [2**31, 2**31, 2**31], 0, 12)}, bvec),
    "bad_json": struct.pack("<Q", 16) + b'{"linear_1_b": [' + bvec,
    "header_len": struct.pack("<Q", 2**40) + b"{}",
    "short": b"\x05\0\0",
    "not_object": struct.pack("<Q", 8) + b"[1, 2]  ",
    "missing_dtype": st_bytes({"linear_1_b": {"shape": [3], "data_offsets": [0, 12]}}, bvec),
    "shape_not_nat": st_bytes({"linear_1_b": ent("F32", [-3], 0, 12)}, bvec),
    "offsets_bad": st_bytes({"linear_1_b": ent("F32", [3], 12, 0)}, bvec),
    "duplicate": struct.pack("<Q", 128) + (b'{"linear_1_b":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},'
                                           b'"linear_1_b":{"dtype":"F32","shape":[3],"data_offsets":[12,24]}}').ljust(128)
                 + bvec + bvec,
    "garbage_after_json": struct.pack("<Q", 16) + b"{}     x        ",
}
for k, v in pbad.items():
    (PAR / f"bad_{k}.bin").write_bytes(v)
print("fixtures written:", len(list(NPY.iterdir())), "npy files,", len(list(PAR.iterdir())), "params files")


# ---------------- command-line error cases: tests/cli/cases/{params,npy}_<class>/ ----------------
# Each case: cmd (tool + args relative to the case dir), expected_stderr (one line), expected_status.
CASES = HERE.parent / "cli" / "cases"
PARAMS_CASES = {  # case -> (params file under tests/data/params, expected message after "params.bin: ")
    "unknown_name": ("bad_unknown_name.bin", 'tensor "foo": no such parameter in graph.json'),
    "wrong_shape": ("bad_wrong_shape.bin", 'tensor "linear_1_W": shape [4, 3] does not match node[1] (expected [3, 4])'),
    "dtype_i32": ("bad_dtype_i32.bin", 'tensor "linear_1_b": dtype I32 is not supported (use F32, F64, F16 or BF16)'),
    "overlap": ("bad_overlap.bin", 'tensor "linear_1_b": data_offsets [40, 52] overlap tensor "linear_1_W" [0, 48]'),
    "gap": ("bad_gap.bin", "data section: bytes [0, 4) belong to no tensor"),
    "trailing": ("bad_trailing.bin", "data section: bytes [12, 20) belong to no tensor"),
    "offsets_outside": ("bad_offsets_outside.bin",
                        'tensor "linear_1_b": data_offsets [0, 12] outside the data section (8 bytes)'),
    "size_mismatch": ("bad_size_mismatch.bin",
                      'tensor "linear_1_b": data_offsets [0, 8] hold 8 bytes, shape [3] of F32 needs 12'),
    "numel_overflow": ("bad_numel_overflow.bin", 'tensor "linear_1_b": shape [2147483648, 2147483648, 2147483648] '
                                                 "has too many elements (max 2^40)"),
    "bad_json": ("bad_bad_json.bin", "header: invalid JSON near byte 15"),
    "header_len": ("bad_header_len.bin", "header length 1099511627776 out of range (file has 10 bytes, limit 100 MB)"),
    "short": ("bad_short.bin", "too short for a safetensors file (3 bytes)"),
    "not_object": ("bad_not_object.bin", "header: expected a JSON object"),
    "missing_dtype": ("bad_missing_dtype.bin", 'tensor "linear_1_b": missing "dtype"'),
    "shape_not_nat": ("bad_shape_not_nat.bin", 'tensor "linear_1_b": shape[0]: expected a natural number'),
    "offsets_reversed": ("bad_offsets_bad.bin", 'tensor "linear_1_b": data_offsets [12, 0]: begin is after end'),
    "duplicate": ("bad_duplicate.bin", 'tensor "linear_1_b" appears twice in the header'),
    "garbage_after_json": ("bad_garbage_after_json.bin", "header: unexpected data after the JSON object at byte 7"),
    "missing_tensor": ("params_partial.bin", 'missing tensor "linear_1_b" for node[1] (linear)'),
    "missing_file": (None, "cannot open: No such file or directory"),
}
NPY_CASES = {  # case -> (npy file under tests/data/npy, expected message after "input.npy: ")
    "bad_magic": ("bad_magic.npy", "not a .npy file (bad magic)"),
    "version": ("bad_version.npy", "header: unsupported .npy format version 4.0"),
    "header_length": ("bad_hlen.npy", "header: length 5000 runs past the end of the file (26 bytes)"),
    "big_endian": ("bad_big_endian.npy", "header: big-endian data ('>f4') is not supported"),
    "fortran_order": ("bad_fortran_numpy.npy", "header: fortran_order True is not supported (write C order)"),
    "dtype": ("bad_complex.npy", "header: dtype '<c8' is not supported (use <f4, <f8, <f2, <i8, <i4, <i2, |i1, |u1 or |b1)"),
    "truncated": ("bad_truncated.npy", "data: truncated: shape [2, 3] of <f4 needs 24 bytes, file has 20"),
    "trailing": ("bad_trailing.npy", "data: 4 trailing bytes after shape [2, 3] of <f4 (24 bytes)"),
    "shape_overflow": ("bad_shape_overflow.npy", "header: shape [4294967296, 4294967296] has too many elements (max 2^40)"),
    "missing_key": ("bad_missing_shape.npy", "header: missing key 'shape'"),
    "unknown_key": ("bad_unknown_key.npy", "header: unknown key 'extra'"),
    "duplicate_key": ("bad_dup_key.npy", "header: duplicate key 'descr'"),
    "syntax": ("bad_syntax.npy", "header: syntax error at byte 50: expected '(' starting the shape tuple, got '['"),
    "structured": ("bad_structured.npy", "header: structured dtypes are not supported"),
    "rank9": ("bad_rank9.npy", "header: shape has more than 8 dims"),
    "missing_file": (None, "cannot open: No such file or directory"),
}


def write_case(name, files, cmd, msg):
    d = CASES / name
    if d.exists():
        for q in d.iterdir():
            q.unlink()
    d.mkdir(parents=True, exist_ok=True)
    for dst, src in files.items():
        (d / dst).write_bytes(Path(src).read_bytes())
    (d / "cmd").write_text(cmd + "\n")
    (d / "expected_stderr").write_text(msg + "\n")
    (d / "expected_status").write_text("2\n")


for k, (src, msg) in PARAMS_CASES.items():
    files = {"graph.json": PAR / "graph.json"}
    if src:
        files["params.bin"] = PAR / src
    write_case(f"params_{k}", files, "tlinfo graph.json params.bin", "params.bin: " + msg)
# no params file and no inline payloads: the graph is named (tlrun checks completeness)
np.save(NPY / "input_2x4.npy", np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4))
write_case("params_no_weight", {"graph.json": PAR / "graph.json", "input.npy": NPY / "input_2x4.npy"},
           "tlrun graph.json input.npy", "graph.json: node[1]: linear has no weight: give params.bin or inline payloads")
for k, (src, msg) in NPY_CASES.items():
    files = {"graph.json": PAR / "graph.json", "params.bin": PAR / "params_f32.bin"}
    if src:
        files["input.npy"] = NPY / src
    write_case(f"npy_{k}", files, "tlrun graph.json params.bin input.npy", "input.npy: " + msg)
print("cli cases:", len(PARAMS_CASES) + 1 + len(NPY_CASES))
