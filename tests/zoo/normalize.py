"""VNN-COMP style: a Normalize layer `(x - mean) / std` with per-channel buffers in front of a
small CNN (as in the ERAN / VNN-COMP CIFAR models). Division by std has no exact form in
torchlean.ir.v1: refused by default, admitted (rounded, <= 1 ulp) with --allow-rounding.
`NormalizedCNNPow2` divides by powers of two, which is exact."""
import torch
import torch.nn as nn


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class NormalizedCNN(nn.Module):
    def __init__(self, std=(0.2023, 0.1994, 0.2010)):
        super().__init__()
        self.norm = Normalize([0.4914, 0.4822, 0.4465], list(std))
        self.conv1 = nn.Conv2d(3, 8, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 4, stride=2, padding=1)
        self.fc1 = nn.Linear(8 * 2 * 2, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        x = self.norm(x)
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = x.flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))


class NormalizedCNNPow2(NormalizedCNN):
    def __init__(self):
        super().__init__(std=(0.25, 0.25, 0.125))
