"""Grab bag of lowerings: exp/log/sqrt/abs/sin/cos, neg, rsub, scalar div, pow, permute,
unsqueeze/squeeze, expand, mean/sum, clamp, maximum, an mse_loss against a buffer."""
import torch
import torch.nn as nn


class MiscOps(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(5, 5)
        self.register_buffer("target", torch.randn(2, 5))
        self.bias = nn.Parameter(torch.randn(5))

    def forward(self, x):                                   # x: [2, 5]
        a = torch.log(torch.abs(x) + 1.0) + torch.sqrt(torch.exp(-x))
        b = torch.sin(x) * torch.cos(x) - (1.0 - x) / 4.0
        c = (-a + b.pow(2)).unsqueeze(0).permute(0, 2, 1).squeeze(0)     # [5, 2]
        d = c.t() + self.bias                                             # broadcast param
        e = torch.clamp(d, min=-1.5) + torch.maximum(d, x).mean(dim=0)    # [2, 5] + [5]
        f = self.lin(e).expand(3, 2, 5).sum(dim=0)                        # [2, 5]
        loss = nn.functional.mse_loss(f, self.target)
        return f, loss
