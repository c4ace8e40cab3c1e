"""MobileNet-style block: depthwise conv (groups=C) + BN + ReLU6, pointwise conv + SiLU,
hardtanh/leaky_relu, average pooling, adaptive pool with exact windows, and a conv1d branch."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class DWBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(6, 6, 3, padding=1, groups=6)
        self.bn = nn.BatchNorm2d(6)
        self.pw = nn.Conv2d(6, 12, 1)
        self.dil = nn.Conv2d(12, 12, 3, padding=2, dilation=2, groups=3)
        self.conv1d = nn.Conv1d(12, 4, 4, padding="same")   # asymmetric: 1 before, 2 after
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.3, 0.3)
            self.bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x):                                   # x: [N, 6, 8, 8]
        y = F.relu6(self.bn(self.dw(x)))
        y = F.silu(self.pw(y))
        y = F.leaky_relu(self.dil(y), 0.1)
        y = F.hardtanh(y, -2.0, 2.0)
        y = F.avg_pool2d(y, 2)                              # [N, 12, 4, 4]
        y = F.adaptive_avg_pool2d(y, (2, 2))                # [N, 12, 2, 2] (exact windows)
        z = self.conv1d(y.flatten(2))                       # [N, 4, 4]
        return z
