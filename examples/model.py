"""The bundled demo model: a tiny MLP (4 -> 16 -> 16 -> 3) with ReLU.

Capture it, run it natively and compare with PyTorch:
    python3 scripts/export_torchlean_graph.py examples/model.py DemoMLP examples/graph.json \
        --example-shape 2,4 --save-example examples
    build/tlrun examples/graph.json examples/params.bin examples/input.npy -o out.npy
    build/tldiff examples/graph.json examples/params.bin examples/input.npy --reference examples
"""
import torch.nn as nn


class DemoMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(4, 16), nn.ReLU(),
            nn.Linear(16, 16), nn.ReLU(),
            nn.Linear(16, 3),
        )

    def forward(self, x):
        return self.net(x)
