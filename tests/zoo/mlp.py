"""MLP: linear layers, relu/tanh/sigmoid/softplus, eval dropout, a Python-scalar mul."""
import torch
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, 16, bias=False)
        self.head = nn.Linear(16, 4)
        self.drop = nn.Dropout(0.25)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        h = self.drop(torch.tanh(self.fc2(h)))
        h = torch.sigmoid(self.fc3(h)) * 2.0 + nn.functional.softplus(self.fc3(h))
        return self.head(h)
