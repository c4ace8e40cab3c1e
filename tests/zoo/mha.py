"""nn.MultiheadAttention as researchers call it: self-attention, several heads, batch-first;
`MHA4` with need_weights=False (PyTorch then calls scaled_dot_product_attention inside),
`MHA4Weights` with the default need_weights=True (explicit bmm/softmax inside PyTorch) returning
both the output and the head-averaged weights. Random weights, fixed seed."""
import torch.nn as nn


class MHA4(nn.Module):
    def __init__(self, d=16, heads=4):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.fc = nn.Linear(d, 3)

    def forward(self, x):
        y, _ = self.attn(x, x, x, need_weights=False)
        return self.fc(x + y)


class MHA4Weights(nn.Module):
    def __init__(self, d=16, heads=4):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)

    def forward(self, x):
        y, w = self.attn(x, x, x)
        return y, w


class MHA1(nn.Module):
    """Single-head, batch-first self-attention: on the FX path (--no-torch-export) captured as
    TorchLean's script does, a multihead_attention tuple node + tuple_getitem."""

    def __init__(self, d=16, bias=True):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, 1, batch_first=True, bias=bias)
        self.fc = nn.Linear(d, 3)

    def forward(self, x):
        y, _ = self.attn(x, x, x)
        return self.fc(y)


def mha1_no_bias():
    return MHA1(bias=False)
