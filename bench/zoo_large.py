"""Bench-only models with large linear / conv layers (GEMM-bound at batch 64), used to ask how
close tlrt gets to the sgemm peak on real layers. Captured like the tests/zoo models."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class MLPLarge(nn.Module):
    """1024 -> 1024 -> 1024 -> 10: two 1024x1024 GEMMs per sample."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(1024, 1024)
        self.fc2 = nn.Linear(1024, 1024)
        self.head = nn.Linear(1024, 10)

    def forward(self, x):                                   # x: [N, 1024]
        return self.head(F.relu(self.fc2(F.relu(self.fc1(x)))))


class CNNLarge(nn.Module):
    """32x32 images, 32 -> 64 -> 64 channels of 3x3 convs (im2col GEMMs of K=288/576)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):                                   # x: [N, 32, 32, 32]
        x = F.relu(self.conv1(x))
        x = self.pool(F.relu(self.conv2(x)))                # [N, 64, 16, 16]
        x = F.relu(self.conv3(x))                           # [N, 128, 16, 16]
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)
