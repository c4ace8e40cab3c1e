"""LeNet-style CNN: conv + relu + max pool (one padded, after relu), flatten, linear head."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(4, 8, kernel_size=3)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(8 * 3 * 3, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):                                   # x: [N, 1, 12, 12]
        x = self.pool(F.relu(self.conv1(x)))                # [N, 4, 6, 6]
        x = F.max_pool2d(F.relu(self.conv2(x)), 3, stride=1, padding=1)   # [N, 8, 4, 4]
        x = F.max_pool2d(x, 2, stride=1)                     # [N, 8, 3, 3]
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)
