# %% [markdown]
# # tlrt from Python: capture a PyTorch module, run it natively, check it, emit it
# Run as a script (`python examples/notebook_example.py`) or cell by cell (the `# %%` markers are
# Jupyter / VS Code cells). Needs `pip install '.[capture]'` (tlrt + torch==2.13.0).

# %%
import tempfile

import numpy as np
import torch
import torch.nn as nn

import tlrt


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv(x)))
        return torch.softmax(self.fc(x.flatten(1)), dim=-1)


torch.manual_seed(0)
model = SmallCNN().eval()

# %% [markdown]
# ## 1. Capture: nn.Module -> torchlean.ir.v1 graph (in memory)

# %%
g = tlrt.capture(model, torch.randn(1, 3, 16, 16))
print(g, "captured with", g.method)

# %% [markdown]
# ## 2. Run it with tlrt: NumPy in, NumPy out, any batch the graph admits

# %%
m = tlrt.load(g, threads=2)
x = np.random.default_rng(0).standard_normal((32, 3, 16, 16)).astype(np.float32)
(y,) = m.run(x)
with torch.no_grad():
    ref = model(torch.from_numpy(x)).numpy()
print("output", y.shape, "max |tlrt - PyTorch| =", float(np.abs(y - ref).max()))
assert np.allclose(y, ref, rtol=1e-5, atol=1e-6)

# %% [markdown]
# ## 3. Look inside: the memory plan and per-node times

# %%
print(m.plan(x.shape))
for p in sorted(m.profile(x), key=lambda p: -p.ns)[:3]:
    print(f"node {p.id:3d} {p.tag:10s} {p.plan:6s} {str(list(p.shape)):18s} {p.ns / 1e3:8.1f} us")

# %% [markdown]
# ## 4. Check it: tlrt vs the emitted PyTorch module vs the original model (tldiff)

# %%
report = tlrt.diff(g, per_node=True)
print(report.text)
print("verdict:", report.verdict)

# %% [markdown]
# ## 5. Emit a standalone PyTorch module, and save the graph for the command-line tools

# %%
src = tlrt.emit_pytorch(g, class_name="SmallCNNFromIR", weights="inline")
print("\n".join(src.splitlines()[:12]), "\n...")
with tempfile.TemporaryDirectory() as d:
    path = g.save(d)     # graph.json, params.bin, input.npy, output_0.npy
    print("saved", path, "-> try: tlinfo", path, f"{d}/params.bin")

# %% [markdown]
# ## 6. Errors are typed and carry tlrt's one-line message

# %%
try:
    m.run(np.zeros((2, 3, 15, 16), np.float32))
except tlrt.Error as e:
    print(type(e).__name__, "|", e.kind_name, "|", e)
