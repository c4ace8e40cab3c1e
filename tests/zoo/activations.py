"""Exact compositions: gelu(tanh), silu, leaky_relu, hardtanh/relu6, softplus, pow forms,
rsqrt, division by a tensor, stack; conv3d + padded avg_pool3d (count_include_pad) + 1x1
adaptive pool. Built by a zero-argument factory function."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Activations(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(2, 3, kernel_size=(2, 3, 3), padding=(0, 1, 1))
        self.fc = nn.Linear(3, 6)

    def forward(self, x):                                   # x: [N, 2, 3, 6, 6]
        y = self.conv(x)                                    # [N, 3, 2, 6, 6]
        y = F.avg_pool3d(y, kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        y = F.adaptive_avg_pool3d(y, 1).flatten(1)          # [N, 3]
        h = self.fc(y)                                      # [N, 6]
        acts = [
            F.gelu(h, approximate="tanh"), F.silu(h), F.leaky_relu(h, 0.2), F.relu6(h * 4.0),
            F.hardtanh(h, -0.5, 0.5), F.softplus(h), h.pow(2), h ** 3,
            torch.rsqrt(h.abs() + 1.0), h / (h.abs() + 2.0), 1.0 / (h.abs() + 1.0),
            torch.sqrt(h.abs() + 0.5).pow(-1), torch.sigmoid(-h),
        ]
        return torch.stack(acts, dim=1)                     # [N, 13, 6]


def make_activations():
    return Activations()
