"""Checks the output of examples/embed (`embed graph.json params.bin input.npy`) against the
NumPy float64 reference and PyTorch's saved output (examples/output_0.npy).
usage: check_embed.py OUTPUT_TEXT_FILE"""
import sys

import numpy as np

from ref import EXAMPLES, INPUT, mlp_reference


def parse(text):
    outs, cur = [], None
    for line in text.splitlines():
        if line.startswith("output "):
            _, idx, shape = line.split(" ", 2)
            assert int(idx) == len(outs), line
            cur = (tuple(int(d) for d in shape.strip("[]").split(",") if d.strip()), [])
            outs.append(cur)
        else:
            cur[1].append(float(line))
    return [np.array(v, dtype=np.float64).reshape(s) for s, v in outs]


def main():
    got = parse(open(sys.argv[1]).read())
    ref = mlp_reference(np.load(INPUT))
    assert len(got) == len(ref) == 1, (len(got), len(ref))
    assert got[0].shape == ref[0].shape, (got[0].shape, ref[0].shape)
    err = float(np.abs(got[0] - ref[0]).max())
    assert np.allclose(got[0], ref[0], rtol=1e-5, atol=1e-6), f"max abs error vs NumPy {err}"
    torch_out = np.load(EXAMPLES / "output_0.npy")
    assert np.allclose(got[0], torch_out, rtol=1e-5, atol=1e-6)
    print(f"embed output {list(got[0].shape)} matches NumPy float64 (max abs {err:.2e}) and PyTorch")


if __name__ == "__main__":
    main()
