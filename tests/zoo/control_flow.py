"""Rejection test: data-dependent Python control flow."""
import torch.nn as nn


class ControlFlow(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        if y.sum() > 0:
            return y * 2.0
        return -y
