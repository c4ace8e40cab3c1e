"""Rejection test: erf GELU and torch.sort are not in torchlean.ir.v1."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        h = F.gelu(self.fc(x))
        s, _ = torch.sort(h, dim=-1)
        return torch.relu(s)
